//! The retention purge through the service: the cut-off follows
//! `retention_days` and the configured zone's "today", a dry run deletes
//! nothing, and the real run is audited as counts under the system's name.
//! Runs on SQLite, and on PostgreSQL when `EPIGRID_TEST_PG` names a database.

use std::sync::Arc;

use epigrid_domain::tasks::{EventState, Subject};
use epigrid_service::tasks::HealthDataRetention;
use epigrid_service::{FieldCipher, SecretKey, Service, Settings};
use epigrid_store::{
    AuditQuery, IntakeWrite, PurgeCounts, ReportQuery, ReportRecord, ReportedResident, Store,
};
use epigrid_testkit::{Chain, area_task, household, now, resident, task_step};
use uuid::Uuid;

fn service(store: Arc<dyn Store>, retention_days: u32) -> Service {
    let key = SecretKey::from_hex(&"42".repeat(32)).unwrap();
    let settings = Settings { retention_days, ..Settings::default() };
    Service::new(store, FieldCipher::new(&key), settings)
}

fn health_report(
    h: &epigrid_store::HouseholdRecord,
    day: chrono::NaiveDate,
    resident: Uuid,
) -> IntakeWrite {
    let id = Uuid::now_v7();
    IntakeWrite {
        report: ReportRecord {
            id,
            kind: "health".into(),
            household_id: h.id,
            path: h.path,
            day,
            created_at: now(),
            idempotency_key: format!("purge-test:{id}"),
            reference: format!("R-{}", id.simple()),
            source: "resident".into(),
            actor_account_id: None,
            payload: r#"{"kind":"health"}"#.into(),
            flagged: 0,
            tasks_pending: false,
        },
        residents: vec![ReportedResident { resident_id: resident }],
    }
}

/// A task of `category` about `resident`, closed at `closed`, with a note on
/// its one step.
async fn closed_task_with_note(
    store: &dyn Store,
    chain: &Chain,
    category: &str,
    resident: Uuid,
    closed: chrono::DateTime<chrono::Utc>,
) -> Uuid {
    let mut task = area_task(chain, category, EventState::Closed, closed);
    task.subject_kind = Subject::Resident(resident).kind_str().into();
    task.subject_id = resident;
    let step = task_step(&task, "close", Some("体温 37.9 °C"), closed);
    store.insert_task(&task, &step).await.unwrap();
    task.id
}

async fn retention_of(service: &Service, task: Uuid) -> Option<HealthDataRetention> {
    let system = epigrid_service::Actor::system();
    service.task_detail(&system, task).await.unwrap().retention
}

async fn note_of(store: &dyn Store, task: Uuid) -> Option<String> {
    store.list_task_history(task).await.unwrap().remove(0).note
}

async fn purge_follows_retention_days(store: Arc<dyn Store>) {
    let service = service(store.clone(), 28);
    let chain = Chain::insert(&*store, "Purge").await;
    let h = household(&chain.unit, "808");
    store.insert_household(&h).await.unwrap();
    let r = resident(&h, "赵六");
    store.insert_resident(&r).await.unwrap();

    let today = service.today();
    let cut_off = service.retention_cut_off();
    assert_eq!(today - cut_off, chrono::TimeDelta::days(28));
    let day_before_cut_off = cut_off.pred_opt().unwrap();
    store
        .write_intake_batch(
            &[
                health_report(&h, day_before_cut_off, r.id),
                health_report(&h, cut_off, r.id),
                health_report(&h, today, r.id),
            ],
            None,
        )
        .await
        .unwrap();

    // The default catalogue says fever follow-ups hold health data and
    // sanitation reports do not; only the first loses its note.
    let ended = day_before_cut_off.and_hms_opt(23, 0, 0).unwrap().and_utc();
    let fever = closed_task_with_note(&*store, &chain, "fever_follow_up", r.id, ended).await;
    let litter = closed_task_with_note(&*store, &chain, "sanitation_report", r.id, ended).await;

    let dry = service.purge_expired("epigrid purge", true).await.unwrap();
    assert!(dry.dry_run);
    assert_eq!(dry.before, cut_off);
    let one_day = PurgeCounts {
        health_reports: 1,
        reported_marks: 1,
        task_notes: 1,
        task_subjects: 1,
        ..PurgeCounts::default()
    };
    assert_eq!(dry.counts, one_day);
    let query = ReportQuery { household_id: Some(h.id), limit: 10, ..Default::default() };
    assert_eq!(store.list_reports(&query).await.unwrap().len(), 3, "a dry run deletes nothing");

    let done = service.purge_expired("daily retention job", false).await.unwrap();
    assert_eq!(done.counts, one_day);
    let days: Vec<_> = store.list_reports(&query).await.unwrap().iter().map(|r| r.day).collect();
    assert!(days.iter().all(|d| *d >= cut_off), "{days:?}");
    assert_eq!(days.len(), 2);
    assert_eq!(note_of(&*store, fever).await, None);
    assert_eq!(note_of(&*store, litter).await.as_deref(), Some("体温 37.9 °C"));
    // The fever task is no longer about 赵六, but about the grid; its page
    // still reads.
    let system = epigrid_service::Actor::system();
    let detail = service.task_detail(&system, fever).await.unwrap();
    assert_eq!(detail.task.subject, Subject::Area(chain.grid.id));
    let detail = service.task_detail(&system, litter).await.unwrap();
    assert_eq!(detail.task.subject, Subject::Resident(r.id), "not a health category");

    // The task page says how long the notes are kept, by the same rule.
    assert_eq!(
        retention_of(&service, fever).await,
        Some(HealthDataRetention::Expired { days: 28 })
    );
    assert_eq!(retention_of(&service, litter).await, None, "not a health category");
    let ended_on_cut_off = cut_off.and_hms_opt(12, 0, 0).unwrap().and_utc();
    let kept =
        closed_task_with_note(&*store, &chain, "fever_follow_up", r.id, ended_on_cut_off).await;
    assert_eq!(
        retention_of(&service, kept).await,
        Some(HealthDataRetention::Until { until: today })
    );
    assert_eq!(service.purge_expired("epigrid purge", true).await.unwrap().counts.task_notes, 0);

    let audit = store
        .list_audit(&AuditQuery {
            action: Some("retention.purge".into()),
            limit: 5,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(audit.len(), 1, "the dry run is not a purge");
    assert_eq!(audit[0].actor_name, "daily retention job");
    assert!(audit[0].detail.contains("\"health_reports\":1"), "{}", audit[0].detail);
}

#[test]
fn purge_follows_retention_days_on_sqlite() {
    epigrid_testkit::run_on_sqlite(purge_follows_retention_days);
}

#[test]
fn purge_follows_retention_days_on_postgres() {
    epigrid_testkit::run_on_postgres(purge_follows_retention_days);
}
