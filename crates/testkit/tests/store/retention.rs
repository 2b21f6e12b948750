//! Retention: old health, arrival and help records and the reported marks go;
//! recent ones, reports still waiting for their task, volunteer offers and the
//! per-grid counters stay; the notes and photos of health tasks that ended
//! before the cut-off go and the tasks become anonymous, their steps stay;
//! the purge and its counts-only audit entry commit together.

use std::sync::{Arc, LazyLock};

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use epigrid_domain::tasks::{EventState, Source, household_actor_name};
use epigrid_store::{
    AuditQuery, AuditRecord, IntakeWrite, PurgeCounts, PurgeScope, ReportQuery, ReportRecord,
    ReportedResident, Store, TaskPhotoRecord, TaskWrite,
};
use epigrid_testkit::{Chain, area_task, household, now, resident, task_step};
use uuid::Uuid;

fn date(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
}

fn report(
    h: &epigrid_store::HouseholdRecord,
    kind: &str,
    day: NaiveDate,
    residents: &[Uuid],
    tasks_pending: bool,
) -> IntakeWrite {
    let id = Uuid::now_v7();
    IntakeWrite {
        report: ReportRecord {
            id,
            kind: kind.into(),
            household_id: h.id,
            path: h.path,
            day,
            created_at: now(),
            idempotency_key: format!("retention:{id}"),
            reference: format!("R-{}", id.simple()),
            source: "resident".into(),
            actor_account_id: None,
            payload: format!(r#"{{"kind":"{kind}"}}"#),
            flagged: 0,
            tasks_pending,
        },
        residents: residents.iter().map(|&resident_id| ReportedResident { resident_id }).collect(),
    }
}

/// The categories whose ended tasks lose their notes and photos here.
static HEALTH: LazyLock<Vec<String>> = LazyLock::new(|| vec!["fever_follow_up".to_owned()]);

fn scope(before: NaiveDate) -> PurgeScope<'static> {
    PurgeScope { before, health_categories: &HEALTH }
}

/// The resident the tasks below are about, and their household.
static SOMEONE: LazyLock<(Uuid, Uuid)> = LazyLock::new(|| (Uuid::now_v7(), Uuid::now_v7()));

/// A task of `category` in `state` about `SOMEONE`, reported by them
/// through self-service, last changed (and, unless rejected or open,
/// closed) at `ended`, stored with two noted steps and one without.
/// With `photo`, the last step carries a photo. Returns the task's id.
async fn task_with_notes(
    store: &dyn Store,
    chain: &Chain,
    category: &str,
    state: EventState,
    ended: DateTime<Utc>,
    photo: bool,
) -> Uuid {
    let created = ended - TimeDelta::hours(3);
    let (resident, household) = *SOMEONE;
    let mut task = area_task(chain, category, state, ended);
    task.created_at = created;
    task.subject_kind = "resident".into();
    task.subject_id = resident;
    task.source_kind = "resident".into();
    task.source_detail = format!(r#"{{"kind":"resident","resident_id":"{resident}"}}"#);
    task.idempotency_key = Some(format!("intake:{}:{resident}", Uuid::now_v7()));
    let mut reported = task_step(&task, "report", Some("JK-20261101-0001"), created);
    reported.actor_name = household_actor_name(household);
    store.insert_task(&task, &reported).await.unwrap();
    let later_steps = [("accept", None), ("report_handled", Some("体温 38.6 °C，已送发热门诊"))];
    for (version, (transition, note)) in (1..).zip(later_steps) {
        let s = task_step(&task, transition, note, ended);
        let photos: Vec<TaskPhotoRecord> = (photo && note.is_some())
            .then(|| TaskPhotoRecord {
                id: Uuid::now_v7(),
                task_id: task.id,
                history_id: s.id,
                community_id: chain.community.id,
                content_type: "image/jpeg".into(),
                data: b"\xff\xd8\xff\xe0 door".to_vec(),
                created_at: ended,
            })
            .into_iter()
            .collect();
        task.version = version + 1;
        let written = store.apply_task_step_with_photos(&task, version, &s, &photos).await.unwrap();
        assert_eq!(written, TaskWrite::Applied);
    }
    task.id
}

/// The notes of the task's steps, oldest first, and how many photos it has.
async fn notes_and_photos(store: &dyn Store, task: Uuid) -> (Vec<Option<String>>, usize) {
    let notes = store.list_task_history(task).await.unwrap().into_iter().map(|s| s.note).collect();
    (notes, store.list_task_photos(task).await.unwrap().len())
}

fn purge_entry() -> AuditRecord {
    AuditRecord {
        id: Uuid::now_v7(),
        at: Utc::now(),
        actor_user_id: None,
        actor_name: "system".into(),
        actor_role: None,
        action: "retention.purge".into(),
        target_kind: None,
        target_id: None,
        community_id: None,
        client_addr: None,
        outcome: "ok".into(),
        detail: "{}".into(),
    }
}

epigrid_testkit::store_contract_tests! {
    async fn a_purge_deletes_old_personal_records_and_keeps_the_aggregates(store: Arc<dyn Store>) {
        let chain = Chain::insert(&*store, "Retention").await;
        let h = household(&chain.unit, "301");
        store.insert_household(&h).await.unwrap();
        let a = resident(&h, "王五");
        store.insert_resident(&a).await.unwrap();

        let old = date(1);
        let writes = vec![
            report(&h, "health", old, &[a.id], false),
            report(&h, "arrival", old, &[a.id], false),
            report(&h, "help", old, &[], false),
            // Still waiting for its task: its purpose has not ended.
            report(&h, "health", old, &[], true),
            report(&h, "volunteer", old, &[], false),
            // The cut-off day itself is kept.
            report(&h, "health", date(10), &[a.id], false),
        ];
        store.write_intake_batch(&writes, None).await.unwrap();

        let expected = PurgeCounts { health_reports: 1, arrivals: 1, help_requests: 1, reported_marks: 1, ..PurgeCounts::default() };
        assert_eq!(store.count_purgeable(scope(date(10))).await.unwrap(), expected);
        let purged = store.purge_personal_records(scope(date(10)), &purge_entry()).await.unwrap();
        assert_eq!(purged, expected);

        let left = store
            .list_reports(&ReportQuery { household_id: Some(h.id), limit: 10, ..Default::default() })
            .await
            .unwrap();
        let mut kept: Vec<_> = left.iter().map(|r| (r.kind.as_str(), r.day, r.tasks_pending)).collect();
        kept.sort();
        assert_eq!(
            kept,
            vec![("health", old, true), ("health", date(10), false), ("volunteer", old, false)]
        );
        // The per-grid counters of the purged day are untouched.
        let counters = store.grid_day_counters(&[chain.grid.id], old).await.unwrap();
        assert_eq!((counters[0].health_reports, counters[0].arrivals, counters[0].help_requests), (2, 1, 1));
        assert_eq!(counters[0].residents_reported, 1);
        // The reported mark of the kept day is still there: not in the unreported list.
        assert!(store.unreported_residents(chain.grid.id, date(10), None, 10).await.unwrap().is_empty());

        // A second purge finds nothing: idempotent.
        assert_eq!(store.purge_personal_records(scope(date(10)), &purge_entry()).await.unwrap(), PurgeCounts::default());

        let entries = store
            .list_audit(&AuditQuery { action: Some("retention.purge".into()), limit: 10, ..Default::default() })
            .await
            .unwrap();
        assert_eq!(entries.len(), 2);
        let detail: serde_json::Value = serde_json::from_str(&entries[1].detail).unwrap();
        assert_eq!(detail["deleted"]["health_reports"], 1);
        assert_eq!(detail["deleted"]["reported_marks"], 1);
        assert_eq!(detail["before"], "2026-11-10");
        assert!(!entries[1].detail.contains("王五"), "counts only, never contents");
        assert!(matches!(store.verify_audit_chain().await.unwrap(), epigrid_store::ChainVerdict::Intact { .. }));
    }

    async fn a_purge_deletes_the_rows_of_old_match_lists_and_keeps_their_counts(store: Arc<dyn Store>) {
        let chain = Chain::insert(&*store, "RetentionLists").await;
        let old = match_list(&chain, date(1).and_hms_opt(9, 0, 0).unwrap().and_utc());
        let recent = match_list(&chain, date(10).and_hms_opt(9, 0, 0).unwrap().and_utc());
        for list in [&old, &recent] {
            let rows = [match_row(list, 2), match_row(list, 3)];
            store.save_match_list(list, &rows, &purge_entry()).await.unwrap();
        }
        assert_eq!(store.count_purgeable(scope(date(10))).await.unwrap().match_rows, 2);
        let purged = store.purge_personal_records(scope(date(10)), &purge_entry()).await.unwrap();
        assert_eq!(purged.match_rows, 2);
        assert!(store.match_rows(old.id).await.unwrap().is_empty(), "the old list's people are gone");
        assert_eq!(store.get_match_list(old.id).await.unwrap().unwrap().total, 2, "its counts stay");
        assert_eq!(store.match_rows(recent.id).await.unwrap().len(), 2, "a recent list is kept");
    }

    async fn a_purge_clears_the_notes_and_photos_of_ended_health_tasks_only(store: Arc<dyn Store>) {
        let chain = Chain::insert(&*store, "RetentionTasks").await;
        let s = &*store;
        let long_ago = date(1).and_hms_opt(10, 0, 0).unwrap().and_utc();
        let fever = "fever_follow_up";
        let closed = task_with_notes(s, &chain, fever, EventState::Closed, long_ago, true).await;
        let evaluated = task_with_notes(s, &chain, fever, EventState::Evaluated, long_ago, false).await;
        let rejected = task_with_notes(s, &chain, fever, EventState::Rejected, long_ago, true).await;
        // Still open, however old: its work is not done.
        let open = task_with_notes(s, &chain, fever, EventState::InProgress, long_ago, true).await;
        // Closed on the cut-off day itself: kept.
        let on_the_day = date(10).and_hms_opt(0, 30, 0).unwrap().and_utc();
        let recent = task_with_notes(s, &chain, fever, EventState::Closed, on_the_day, true).await;
        // Not a health category.
        let litter = task_with_notes(s, &chain, "sanitation_report", EventState::Closed, long_ago, true).await;

        let expected = PurgeCounts { task_notes: 6, task_photos: 2, task_subjects: 3, ..PurgeCounts::default() };
        assert_eq!(store.count_purgeable(scope(date(10))).await.unwrap(), expected);
        let nothing = PurgeScope { before: date(10), health_categories: &[] };
        assert_eq!(store.count_purgeable(nothing).await.unwrap(), PurgeCounts::default());
        let purged = store.purge_personal_records(scope(date(10)), &purge_entry()).await.unwrap();
        assert_eq!(purged, expected);

        let (resident, household) = *SOMEONE;
        for (task, state) in [(closed, EventState::Closed), (evaluated, EventState::Evaluated), (rejected, EventState::Rejected)] {
            assert_eq!(notes_and_photos(s, task).await, (vec![None, None, None], 0), "{state:?}");
            // The task and its steps stay, for the evaluation, in the grid
            // and with the times they had; nobody is named any more.
            let t = store.get_task(task).await.unwrap().unwrap();
            assert_eq!(t.state, state);
            assert_eq!((t.subject_kind.as_str(), t.subject_id), ("area", chain.grid.id), "{state:?}");
            assert_eq!((t.path.grid, t.path.building, t.path.unit), (Some(chain.grid.id), None, None));
            assert_eq!(t.source_detail, Source::ANONYMOUS_RESIDENT_JSON);
            assert_eq!(t.idempotency_key, None);
            assert_eq!(t.version, 4, "a page open on it must reload");
            assert_eq!(t.closed_at.is_some(), state != EventState::Rejected);
            let steps = store.list_task_history(task).await.unwrap();
            assert_eq!(steps.len(), 3);
            assert_eq!(steps[0].actor_name, household_actor_name(Uuid::nil()));
            assert_eq!(steps[1].actor_name, "王网格", "staff stay named: their work is evaluated");
        }
        let kept = (vec![Some("JK-20261101-0001".to_owned()), None, Some("体温 38.6 °C，已送发热门诊".to_owned())], 1);
        for task in [open, recent, litter] {
            assert_eq!(notes_and_photos(s, task).await, kept);
            let t = store.get_task(task).await.unwrap().unwrap();
            assert_eq!((t.subject_kind.as_str(), t.subject_id), ("resident", resident));
            assert_eq!(t.path.unit, Some(chain.unit.id));
            assert!(t.source_detail.contains(&resident.to_string()));
            assert!(t.idempotency_key.is_some());
            let steps = store.list_task_history(task).await.unwrap();
            assert_eq!(steps[0].actor_name, household_actor_name(household));
        }

        // Again: nothing left to clear.
        assert_eq!(store.purge_personal_records(scope(date(10)), &purge_entry()).await.unwrap(), PurgeCounts::default());
        let entries = store
            .list_audit(&AuditQuery { action: Some("retention.purge".into()), limit: 10, ..Default::default() })
            .await
            .unwrap();
        let detail: serde_json::Value = serde_json::from_str(&entries[1].detail).unwrap();
        assert_eq!(detail["deleted"]["task_notes"], 6);
        assert_eq!(detail["deleted"]["task_photos"], 2);
        assert_eq!(detail["deleted"]["task_subjects"], 3);
        assert!(!entries[1].detail.contains("38.6"), "counts only, never contents");
        assert!(!entries[1].detail.contains(&resident.to_string()));
    }

}

fn match_list(chain: &Chain, created: chrono::DateTime<Utc>) -> epigrid_store::MatchListRecord {
    epigrid_store::MatchListRecord {
        id: Uuid::now_v7(),
        name: "协查名单.xlsx".into(),
        uploaded_by: None,
        uploaded_by_name: "office".into(),
        scope_kind: Some(epigrid_domain::AreaKind::Community),
        scope_area_id: Some(chain.community.id),
        headers: "[]".into(),
        total: 2,
        exact: 0,
        probable: 0,
        unmatched: 2,
        created_at: created,
        updated_at: created,
    }
}

fn match_row(list: &epigrid_store::MatchListRecord, n: i64) -> epigrid_store::MatchRowRecord {
    epigrid_store::MatchRowRecord {
        list_id: list.id,
        row_number: n,
        cells: "sealed".into(),
        class: "none".into(),
        resident_id: None,
        grid_id: None,
        task_id: None,
        reason: "matching.reason.not_found".into(),
        task_state: None,
    }
}
