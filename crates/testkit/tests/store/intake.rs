//! Intake: batches committed in one transaction, idempotency keys within a
//! batch and across batches, per-grid per-day counters raised on write, the
//! "not reported" list, and the task catch-up flag.

use std::sync::Arc;

use chrono::{NaiveDate, Utc};
use epigrid_store::{
    AuditQuery, AuditRecord, BatchAudit, IntakeOutcome, IntakeWrite, PendingAudit, ReportQuery,
    ReportRecord, ReportedResident, Store,
};
use epigrid_testkit::{Chain, household, now, resident};

use crate::support::{reopen_postgres_after, reopen_sqlite_after};
use uuid::Uuid;

fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 29).unwrap()
}

fn write(
    h: &epigrid_store::HouseholdRecord,
    kind: &str,
    key: &str,
    residents: &[Uuid],
    flagged: u32,
) -> IntakeWrite {
    let id = Uuid::now_v7();
    IntakeWrite {
        report: ReportRecord {
            id,
            kind: kind.into(),
            household_id: h.id,
            path: h.path,
            day: day(),
            created_at: now(),
            idempotency_key: key.to_owned(),
            reference: format!("JK-20261129-{}", &id.simple().to_string()[24..]),
            source: "resident".into(),
            actor_account_id: None,
            payload: r#"{"kind":"health","entries":[]}"#.into(),
            flagged,
            tasks_pending: flagged > 0,
        },
        residents: residents.iter().map(|&resident_id| ReportedResident { resident_id }).collect(),
    }
}

fn audit_entry() -> AuditRecord {
    AuditRecord {
        id: Uuid::now_v7(),
        at: Utc::now(),
        actor_user_id: None,
        actor_name: "intake".into(),
        actor_role: None,
        action: "intake.batch".into(),
        target_kind: None,
        target_id: None,
        community_id: None,
        client_addr: None,
        outcome: "ok".into(),
        detail: r#"{"submissions":3}"#.into(),
    }
}

epigrid_testkit::store_contract_tests! {
    async fn a_batch_commits_reports_counters_and_its_audit_entry_together(store: Arc<dyn Store>) {
        let chain = Chain::insert(&*store, "Intake").await;
        let h = household(&chain.unit, "502");
        store.insert_household(&h).await.unwrap();
        let (a, b) = (resident(&h, "张三"), resident(&h, "李四"));
        store.insert_resident(&a).await.unwrap();
        store.insert_resident(&b).await.unwrap();

        let first = write(&h, "health", "key-0001", &[a.id, b.id], 1);
        let same_key = write(&h, "health", "key-0001", &[a.id], 0);
        let help = write(&h, "help", "key-0002", &[], 0);
        let outcomes = store
            .write_intake_batch(
                &[first.clone(), same_key, help.clone()],
                Some(BatchAudit { writer: Uuid::now_v7(), summary: &audit_entry(), append: true }),
            )
            .await
            .unwrap();
        assert_eq!(outcomes.len(), 3);
        assert_eq!(outcomes[0], IntakeOutcome::Stored { id: first.report.id, reference: first.report.reference.clone() });
        // A duplicate within the same batch gets the first one's answer.
        assert_eq!(outcomes[1], IntakeOutcome::Duplicate { id: first.report.id, reference: first.report.reference.clone() });
        assert!(matches!(outcomes[2], IntakeOutcome::Stored { .. }));

        // And across batches (a retry after a restart).
        let retry = write(&h, "health", "key-0001", &[a.id, b.id], 1);
        let again = store.write_intake_batch(&[retry], None).await.unwrap();
        assert_eq!(again[0].reference(), first.report.reference);
        assert_eq!(again[0].id(), first.report.id);

        let stored = store.get_report(first.report.id).await.unwrap().unwrap();
        assert_eq!(stored, first.report);
        // Several at once, as a worker's task list reads them; an unknown
        // (or purged) id is left out.
        let second_id = outcomes[2].id();
        let mut many = store.get_reports(&[second_id, Uuid::now_v7(), first.report.id]).await.unwrap();
        many.sort_by_key(|r| r.id);
        assert_eq!(many.iter().map(|r| r.id).collect::<Vec<_>>(), vec![first.report.id, second_id]);
        assert_eq!(many[0], first.report);
        assert!(store.get_reports(&[]).await.unwrap().is_empty());
        assert_eq!(store.get_report_by_key(h.id, &first.report.idempotency_key).await.unwrap(), Some(first.report.clone()));
        // A key belongs to its household: the same key from another household is another report.
        let neighbour = household(&chain.unit, "102");
        store.insert_household(&neighbour).await.unwrap();
        let mut theirs = write(&neighbour, "volunteer", "key-0001", &[], 0);
        theirs.report.idempotency_key = first.report.idempotency_key.clone();
        let outcome = store.write_intake_batch(std::slice::from_ref(&theirs), None).await.unwrap();
        assert_eq!(outcome, vec![IntakeOutcome::Stored { id: theirs.report.id, reference: theirs.report.reference.clone() }]);
        assert_eq!(store.get_report_by_key(neighbour.id, &first.report.idempotency_key).await.unwrap(), Some(theirs.report.clone()));
        assert_eq!(store.get_report_by_key(h.id, &first.report.idempotency_key).await.unwrap(), Some(first.report.clone()));
        let all = store.list_reports(&ReportQuery { household_id: Some(h.id), limit: 10, ..Default::default() }).await.unwrap();
        assert_eq!(all.len(), 2);
        let helps = store.list_reports(&ReportQuery { kind: Some("help".into()), limit: 10, ..Default::default() }).await.unwrap();
        assert_eq!(helps.len(), 1);

        let grid = chain.grid.id;
        let counters = store.grid_day_counters(&[grid], day()).await.unwrap();
        assert_eq!(counters.len(), 1);
        let c = counters[0];
        assert_eq!((c.residents_reported, c.health_reports, c.flagged, c.help_requests), (2, 1, 1, 1));
        assert_eq!(c.community_id, chain.community.id);
        // A second report for a resident already counted today raises
        // the report count, not the resident count.
        store.write_intake_batch(&[write(&h, "health", "key-0003", &[a.id], 0)], None).await.unwrap();
        let c = store.grid_day_counters(&[grid], day()).await.unwrap()[0];
        assert_eq!((c.residents_reported, c.health_reports), (2, 2));
        let by_community = store.community_day_counters(Some(chain.community.id), day()).await.unwrap();
        assert_eq!(by_community, vec![c]);
        assert!(store.grid_day_counters(&[grid], day().succ_opt().unwrap()).await.unwrap().is_empty());

        let audit = store.list_audit(&AuditQuery { limit: 10, ..Default::default() }).await.unwrap();
        assert_eq!(audit.iter().filter(|e| e.action == "intake.batch").count(), 1);
        assert!(matches!(store.verify_audit_chain().await.unwrap(), epigrid_store::ChainVerdict::Intact { .. }));
    }

    async fn a_batch_keeps_its_writers_audit_summary_pending_or_appends_it(store: Arc<dyn Store>) {
        let chain = Chain::insert(&*store, "Pending").await;
        let h = household(&chain.unit, "808");
        store.insert_household(&h).await.unwrap();
        let a = resident(&h, "周八");
        store.insert_resident(&a).await.unwrap();
        let (writer, other) = (Uuid::now_v7(), Uuid::now_v7());
        let entry = audit_entry();
        let summary = |n: u32| AuditRecord { detail: format!(r#"{{"submissions":{n}}}"#), ..entry.clone() };
        let intake_entries = || async {
            let all = store.list_audit(&AuditQuery { limit: 50, ..Default::default() }).await.unwrap();
            all.into_iter().filter(|e| e.action == "intake.batch").map(|e| e.detail).collect::<Vec<_>>()
        };
        let pending = || async {
            store.pending_audit().await.unwrap().into_iter().map(|(w, e)| (w, e.detail)).collect::<Vec<_>>()
        };

        // Kept pending: nothing in the chain; a second batch replaces it.
        let (one, two) = (summary(1), summary(2));
        store.write_intake_batch(&[write(&h, "health", "p-1", &[a.id], 0)], Some(BatchAudit { writer, summary: &one, append: false })).await.unwrap();
        assert_eq!(pending().await, vec![(writer, one.detail.clone())]);
        store.write_intake_batch(&[write(&h, "health", "p-2", &[a.id], 0)], Some(BatchAudit { writer, summary: &two, append: false })).await.unwrap();
        assert_eq!(pending().await, vec![(writer, two.detail.clone())]);
        assert!(intake_entries().await.is_empty());
        let theirs = AuditRecord { id: Uuid::now_v7(), detail: r#"{"submissions":7}"#.into(), ..entry.clone() };
        store.write_intake_batch(&[write(&h, "help", "p-3", &[], 0)], Some(BatchAudit { writer: other, summary: &theirs, append: false })).await.unwrap();
        assert_eq!(store.pending_audit().await.unwrap().len(), 2);

        // Appended: into the chain, and the writer's pending one is gone
        // (the other writer's stays).
        let three = summary(3);
        store.write_intake_batch(&[write(&h, "health", "p-4", &[a.id], 0)], Some(BatchAudit { writer, summary: &three, append: true })).await.unwrap();
        assert_eq!(intake_entries().await, vec![three.detail.clone()]);
        assert_eq!(pending().await, vec![(other, theirs.detail.clone())]);

        // A batch that fails (its entry's id is already in the chain)
        // stores neither its reports nor any change to the summaries.
        let failing = write(&h, "health", "p-5", &[a.id], 0);
        let err = store.write_intake_batch(std::slice::from_ref(&failing), Some(BatchAudit { writer: other, summary: &three, append: true })).await;
        assert!(err.is_err());
        assert_eq!(store.get_report(failing.report.id).await.unwrap(), None);
        assert_eq!(intake_entries().await.len(), 1);
        assert_eq!(pending().await, vec![(other, theirs.detail.clone())]);

        // The catch-up appends only other writers' summaries, and only old ones.
        let later = Utc::now() + chrono::Duration::minutes(1);
        let earlier = Utc::now() - chrono::Duration::hours(1);
        assert_eq!(store.append_pending_audit(PendingAudit::StaleBefore { before: earlier, except: writer }).await.unwrap(), 0);
        assert_eq!(store.append_pending_audit(PendingAudit::StaleBefore { before: later, except: other }).await.unwrap(), 0);
        assert_eq!(store.append_pending_audit(PendingAudit::StaleBefore { before: later, except: writer }).await.unwrap(), 1);
        assert!(pending().await.is_empty());
        assert_eq!(intake_entries().await.len(), 2);

        // A writer appends its own when idle.
        let four = AuditRecord { id: Uuid::now_v7(), ..summary(4) };
        store.write_intake_batch(&[write(&h, "health", "p-6", &[a.id], 0)], Some(BatchAudit { writer, summary: &four, append: false })).await.unwrap();
        assert_eq!(store.append_pending_audit(PendingAudit::Of(other)).await.unwrap(), 0);
        assert_eq!(store.append_pending_audit(PendingAudit::Of(writer)).await.unwrap(), 1);
        assert!(intake_entries().await.contains(&four.detail));
        assert!(pending().await.is_empty());
        assert!(matches!(store.verify_audit_chain().await.unwrap(), epigrid_store::ChainVerdict::Intact { .. }));
        // Every report of the successful batches is stored.
        let all = store.list_reports(&ReportQuery { household_id: Some(h.id), limit: 10, ..Default::default() }).await.unwrap();
        assert_eq!(all.len(), 5);
    }

    async fn a_batch_mixing_new_and_stored_keys_answers_each_and_counts_only_the_new(store: Arc<dyn Store>) {
        // On PostgreSQL a batch that keeps its audit summary pending is one
        // statement, which fails as a whole on a key stored before and is
        // then written step by step, its keys looked up; on SQLite each
        // insert says whether it stored its row. Both backends take this
        // path here, and nothing of the failed statement may remain.
        let writer = Uuid::now_v7();
        let entry = audit_entry();
        let pending = |n: u32| AuditRecord { detail: format!(r#"{{"submissions":{n}}}"#), ..entry.clone() };
        let (first_summary, mixed_summary) = (pending(1), pending(5));
        let chain = Chain::insert(&*store, "Mixed").await;
        let h = household(&chain.unit, "303");
        store.insert_household(&h).await.unwrap();
        let (a, b, c) = (resident(&h, "赵一"), resident(&h, "钱二"), resident(&h, "孙三"));
        for r in [&a, &b, &c] {
            store.insert_resident(r).await.unwrap();
        }
        let earlier = write(&h, "health", "key-2000", &[a.id], 1);
        let kept = Some(BatchAudit { writer, summary: &first_summary, append: false });
        store.write_intake_batch(std::slice::from_ref(&earlier), kept).await.unwrap();
        let counters = store.grid_day_counters(&[chain.grid.id], day()).await.unwrap()[0];
        assert_eq!((counters.residents_reported, counters.health_reports, counters.flagged), (1, 1, 1));

        let fresh_b = write(&h, "health", "key-2001", &[b.id], 0);
        let retry_a = write(&h, "health", "key-2000", &[a.id], 1);
        let fresh_c = write(&h, "help", "key-2002", &[], 0);
        let twice_b = write(&h, "health", "key-2001", &[b.id, c.id], 1);
        let kept = Some(BatchAudit { writer, summary: &mixed_summary, append: false });
        let outcomes = store
            .write_intake_batch(&[fresh_b.clone(), retry_a, fresh_c.clone(), twice_b], kept)
            .await
            .unwrap();
        assert_eq!(
            outcomes,
            vec![
                IntakeOutcome::Stored { id: fresh_b.report.id, reference: fresh_b.report.reference.clone() },
                IntakeOutcome::Duplicate { id: earlier.report.id, reference: earlier.report.reference.clone() },
                IntakeOutcome::Stored { id: fresh_c.report.id, reference: fresh_c.report.reference.clone() },
                IntakeOutcome::Duplicate { id: fresh_b.report.id, reference: fresh_b.report.reference.clone() },
            ]
        );
        // Three reports in all, the retried one unchanged.
        let all = store.list_reports(&ReportQuery { household_id: Some(h.id), limit: 10, ..Default::default() }).await.unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(store.get_report(earlier.report.id).await.unwrap().unwrap(), earlier.report);
        // Counters: a and b reported (c only in the refused duplicate), two
        // health reports, one flagged (the earlier one), one help request.
        let counters = store.grid_day_counters(&[chain.grid.id], day()).await.unwrap()[0];
        assert_eq!(
            (counters.residents_reported, counters.health_reports, counters.flagged, counters.help_requests),
            (2, 2, 1, 1)
        );
        let left = store.unreported_residents(chain.grid.id, day(), None, 10).await.unwrap();
        assert_eq!(left.iter().map(|r| r.id).collect::<Vec<_>>(), vec![c.id]);
        // The writer's pending summary is the mixed batch's, kept once.
        let kept: Vec<_> = store.pending_audit().await.unwrap().into_iter().map(|(w, e)| (w, e.detail)).collect();
        assert_eq!(kept, vec![(writer, mixed_summary.detail.clone())]);
    }

    async fn the_unreported_list_and_the_task_catch_up_flag(store: Arc<dyn Store>) {
        let chain = Chain::insert(&*store, "Unreported").await;
        let h = household(&chain.unit, "101");
        store.insert_household(&h).await.unwrap();
        let members: Vec<_> = ["甲一", "乙二", "丙三"].iter().map(|n| resident(&h, n)).collect();
        for m in &members {
            store.insert_resident(m).await.unwrap();
        }
        let all = store.unreported_residents(chain.grid.id, day(), None, 10).await.unwrap();
        assert_eq!(all.len(), 3);
        let fever = write(&h, "health", "key-1000", &[members[1].id], 1);
        store.write_intake_batch(std::slice::from_ref(&fever), None).await.unwrap();
        let left = store.unreported_residents(chain.grid.id, day(), None, 10).await.unwrap();
        let mut expected = vec![members[0].id, members[2].id];
        expected.sort();
        assert_eq!(left.iter().map(|r| r.id).collect::<Vec<_>>(), expected);
        // The household's own marks, as its self-service menu reads them.
        let ids: Vec<_> = members.iter().map(|m| m.id).collect();
        assert_eq!(store.reported_among(chain.grid.id, day(), &ids).await.unwrap(), vec![members[1].id]);
        assert!(store.reported_among(chain.grid.id, day().succ_opt().unwrap(), &ids).await.unwrap().is_empty());
        assert!(store.reported_among(chain.grid.id, day(), &[]).await.unwrap().is_empty());
        let page = store.unreported_residents(chain.grid.id, day(), None, 1).await.unwrap();
        let next = store.unreported_residents(chain.grid.id, day(), Some(page[0].id), 10).await.unwrap();
        assert_eq!(page.len() + next.len(), 2);
        // Another day: everyone again.
        let tomorrow = day().succ_opt().unwrap();
        assert_eq!(store.unreported_residents(chain.grid.id, tomorrow, None, 10).await.unwrap().len(), 3);

        let pending = store.reports_pending_tasks(None, 10).await.unwrap();
        assert_eq!(pending.iter().map(|r| r.id).collect::<Vec<_>>(), vec![fever.report.id]);
        store.clear_tasks_pending(&[fever.report.id]).await.unwrap();
        assert!(store.reports_pending_tasks(None, 10).await.unwrap().is_empty());
        assert!(!store.get_report(fever.report.id).await.unwrap().unwrap().tasks_pending);
    }

    async fn door_to_door_reports_are_listed_by_grid_and_day_apart_from_residents_own(store: Arc<dyn Store>) {
        let chain = Chain::insert(&*store, "Door").await;
        let h = household(&chain.unit, "101");
        store.insert_household(&h).await.unwrap();
        let own = write(&h, "health", "key-own", &[], 0);
        let mut at_door = write(&h, "health", "key-door", &[], 0);
        at_door.report.source = "staff".into();
        let mut arrival = write(&h, "arrival", "key-arrival", &[], 0);
        arrival.report.source = "staff".into();
        store.write_intake_batch(&[own.clone(), at_door.clone(), arrival], None).await.unwrap();
        let query = |staff_only, kind: &str| ReportQuery {
            grid_id: Some(chain.grid.id),
            day: Some(day()),
            kind: Some(kind.into()),
            staff_only,
            limit: 10,
            ..Default::default()
        };
        let door = store.list_reports(&query(true, "health")).await.unwrap();
        assert_eq!(door, vec![at_door.report.clone()]);
        let mut every: Vec<_> = store.list_reports(&query(false, "health")).await.unwrap().into_iter().map(|r| r.id).collect();
        every.sort();
        let mut expected = vec![own.report.id, at_door.report.id];
        expected.sort();
        assert_eq!(every, expected, "without the filter, residents' own reports are listed too");
        let other_day = ReportQuery { day: day().succ_opt(), ..query(true, "health") };
        assert!(store.list_reports(&other_day).await.unwrap().is_empty());
    }

    async fn a_kept_intake_turn_never_holds_other_writes_back_for_long(store: Arc<dyn Store>) {
        let chain = Chain::insert(&*store, "Turn").await;
        let h = household(&chain.unit, "101");
        store.insert_household(&h).await.unwrap();
        let soon = std::time::Duration::from_secs(2);
        // Batches back to back keep the turn (on SQLite): another write
        // waits, but only until the next batch finds the turn old.
        store.keep_intake_turn(true);
        store.write_intake_batch(&[write(&h, "health", "turn-1", &[], 0)], None).await.unwrap();
        let other = {
            let store = store.clone();
            let next = household(&chain.unit, "102");
            tokio::spawn(async move { store.insert_household(&next).await })
        };
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        store.write_intake_batch(&[write(&h, "health", "turn-2", &[], 0)], None).await.unwrap();
        tokio::time::timeout(soon, other).await.expect("another write got its turn").unwrap().unwrap();
        // Told to keep nothing, the store gives the turn back at once.
        store.write_intake_batch(&[write(&h, "health", "turn-3", &[], 0)], None).await.unwrap();
        store.keep_intake_turn(false);
        let after = household(&chain.unit, "103");
        tokio::time::timeout(soon, store.insert_household(&after)).await.expect("the turn was given back").unwrap();
        // Off (the default): nothing is kept after a batch.
        store.write_intake_batch(&[write(&h, "health", "turn-4", &[], 0)], None).await.unwrap();
        let last = household(&chain.unit, "104");
        tokio::time::timeout(soon, store.insert_household(&last)).await.expect("nothing kept").unwrap();
    }
}

/// Takes the database back to migration 16: a stored key with its
/// household prefix, in the index that led with the household.
fn back_to_migration_16(schema: Option<&str>) -> Vec<String> {
    let table = |name: &str| schema.map_or(name.to_owned(), |s| format!("{s}.{name}"));
    // SQLite's migration 19 (the storage room) runs again too; PostgreSQL
    // has no such migration.
    let sqlite_only = schema.is_none().then(|| "DROP TABLE storage_room".to_owned());
    let mut statements = vec![
        format!("DROP INDEX {}", table("intake_reports_key_household")),
        format!(
            "UPDATE {} SET idempotency_key = '{PREFIX_HOUSEHOLD}:' || idempotency_key",
            table("intake_reports")
        ),
        format!(
            "CREATE UNIQUE INDEX intake_reports_household_key ON {} (household_id, idempotency_key)",
            table("intake_reports")
        ),
        // Migration 18 runs again too.
        format!("DROP INDEX {}", table("tasks_subject_created")),
        format!("DELETE FROM {} WHERE version >= 17", table("_sqlx_migrations")),
    ];
    statements.extend(sqlite_only);
    statements
}

/// The household of the migration test, fixed so that its prefix can be
/// spelt in SQL.
const PREFIX_HOUSEHOLD: &str = "01234567-89ab-7cde-8f01-23456789abcd";

/// A report stored with the old prefixed key, then migration 17: the key
/// loses its prefix, a retry with the plain key finds the original, and a
/// new key is stored.
async fn old_keys_lose_their_prefix(
    reopened: &dyn Store,
    h: &epigrid_store::HouseholdRecord,
    first: &IntakeWrite,
) {
    let stored = reopened
        .get_report_by_key(h.id, "key-0001")
        .await
        .unwrap()
        .expect("found by the plain key");
    assert_eq!(stored.id, first.report.id);
    assert_eq!(stored.idempotency_key, "key-0001");
    let retry = write(h, "health", "key-0001", &[], 0);
    let again = reopened.write_intake_batch(&[retry], None).await.unwrap();
    assert_eq!(
        again[0],
        IntakeOutcome::Duplicate { id: first.report.id, reference: first.report.reference.clone() }
    );
    let fresh = write(h, "health", "key-0002", &[], 0);
    let stored = reopened.write_intake_batch(std::slice::from_ref(&fresh), None).await.unwrap();
    assert_eq!(
        stored[0],
        IntakeOutcome::Stored { id: fresh.report.id, reference: fresh.report.reference.clone() }
    );
}

async fn stored_before_migration_17(
    store: &dyn Store,
) -> (epigrid_store::HouseholdRecord, IntakeWrite) {
    let chain = Chain::insert(store, "Migration 17").await;
    let mut h = household(&chain.unit, "502");
    h.id = Uuid::parse_str(PREFIX_HOUSEHOLD).unwrap();
    store.insert_household(&h).await.unwrap();
    let first = write(&h, "health", "key-0001", &[], 0);
    store.write_intake_batch(std::slice::from_ref(&first), None).await.unwrap();
    (h, first)
}

#[tokio::test]
async fn sqlite_migration_17_strips_the_household_prefix_from_stored_keys() {
    let (store, guard) = epigrid_testkit::fresh_sqlite().await;
    let (h, first) = stored_before_migration_17(&*store).await;
    drop(store);
    let path = guard.dir().join("epigrid.db");
    let reopened = reopen_sqlite_after(&path, back_to_migration_16(None)).await;
    old_keys_lose_their_prefix(&reopened, &h, &first).await;
}

#[tokio::test]
async fn postgres_migration_17_strips_the_household_prefix_from_stored_keys() {
    let Some((store, guard)) = epigrid_testkit::fresh_postgres().await else {
        eprintln!("skipped: EPIGRID_TEST_PG is not set");
        return;
    };
    let (h, first) = stored_before_migration_17(&*store).await;
    let reopened =
        reopen_postgres_after(guard.schema(), back_to_migration_16(Some(guard.schema()))).await;
    old_keys_lose_their_prefix(&reopened, &h, &first).await;
    reopened.close().await;
    drop(store);
    guard.cleanup().await;
}

/// Room kept ahead in a SQLite file (`keep_room`): filled a MiB a call,
/// then freed in one; reports written afterwards take its free pages, so
/// the file does not grow under them; filled again once half is used.
#[tokio::test]
async fn sqlite_keeps_room_ahead_that_later_writes_reuse() {
    let (store, guard) = epigrid_testkit::fresh_sqlite().await;
    let path = guard.dir().join("epigrid.db");
    let chain = Chain::insert(&*store, "Room").await;
    let h = household(&chain.unit, "301");
    store.insert_household(&h).await.unwrap();
    assert_eq!(store.keep_room(0).await.unwrap(), 0, "no room asked, none kept");

    let target: u64 = 3 << 20;
    let fill = |store: Arc<dyn Store>| async move {
        let mut steps = Vec::new();
        loop {
            let bytes = store.keep_room(target).await.unwrap();
            if bytes == 0 {
                return steps;
            }
            steps.push(bytes);
            assert!(steps.len() <= 4, "three slices and the freeing: {steps:?}");
        }
    };
    assert_eq!(fill(store.clone()).await, vec![1 << 20, 1 << 20, 1 << 20, target]);
    let filled = epigrid_testkit::sqlite_pages(&path).await;
    let (pages, free) = (filled.pages, filled.free);
    assert!(filled.free_bytes() >= target, "{free} free pages");

    // Reports of 4 KiB take the free pages, not new ones.
    let big = |n: usize| {
        let mut report = write(&h, "health", &format!("room-{n:03}"), &[], 0);
        report.report.payload =
            format!(r#"{{"kind":"health","entries":[],"note":"{}"}}"#, "x".repeat(4000));
        report
    };
    let batch: Vec<IntakeWrite> = (0..100).map(big).collect();
    store.write_intake_batch(&batch, None).await.unwrap();
    let epigrid_testkit::SqlitePages { pages: pages_after, free: free_after, .. } =
        epigrid_testkit::sqlite_pages(&path).await;
    assert_eq!(pages_after, pages, "the reports took free pages");
    assert!(free_after < free, "{free_after} free pages after the reports, {free} before");
    assert!(fill(store.clone()).await.is_empty(), "more than half is still free");

    // Once more than half is used, filled again.
    let batch: Vec<IntakeWrite> = (100..400).map(big).collect();
    store.write_intake_batch(&batch, None).await.unwrap();
    let low = epigrid_testkit::sqlite_pages(&path).await;
    assert!(low.free_bytes() < target / 2, "{} free pages", low.free);
    assert_eq!(fill(store.clone()).await, vec![1 << 20, 1 << 20, 1 << 20, target]);
    let refilled = epigrid_testkit::sqlite_pages(&path).await;
    assert!(refilled.free_bytes() >= target, "{} free pages", refilled.free);
}

#[tokio::test]
async fn postgres_keeps_no_room() {
    let Some((store, guard)) = epigrid_testkit::fresh_postgres().await else {
        eprintln!("skipped: EPIGRID_TEST_PG is not set");
        return;
    };
    assert_eq!(store.keep_room(3 << 20).await.unwrap(), 0, "PostgreSQL extends its own files");
    drop(store);
    guard.cleanup().await;
}
