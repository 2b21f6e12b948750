//! Tasks of the closed loop and their history.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use epigrid_domain::AreaKind;
use epigrid_domain::tasks::{EventState, Priority};
use epigrid_store::{
    Store, StoreError, TaskHistoryRecord, TaskQuery, TaskRecord, TaskWrite, WorkloadRow,
};
use epigrid_testkit::{Chain, area_task, now, task_step};
use uuid::Uuid;

fn task(chain: &Chain, at: DateTime<Utc>, key: Option<&str>) -> TaskRecord {
    TaskRecord {
        source_detail: r#"{"kind":"staff","account_id":"00000000-0000-0000-0000-000000000001"}"#
            .into(),
        stage_deadline: Some(at + TimeDelta::hours(4)),
        idempotency_key: key.map(str::to_owned),
        ..area_task(chain, "fever_follow_up", EventState::Reported, at)
    }
}

fn step(
    t: &TaskRecord,
    transition: &str,
    from: Option<EventState>,
    key: Option<&str>,
) -> TaskHistoryRecord {
    TaskHistoryRecord {
        from_state: from,
        idempotency_key: key.map(str::to_owned),
        ..task_step(t, transition, Some("备注"), t.updated_at)
    }
}

async fn insert(store: &Arc<dyn Store>, t: &TaskRecord) {
    store.insert_task(t, &step(t, "report", None, None)).await.unwrap();
}

/// Moves a stored task to `state` with an assignee, through `apply_task_step`.
async fn advance(
    store: &Arc<dyn Store>,
    t: &TaskRecord,
    state: EventState,
    assignee: Option<Uuid>,
) -> TaskRecord {
    let mut next = t.clone();
    next.state = state;
    next.assignee_account_id = assignee;
    next.version += 1;
    let outcome = store
        .apply_task_step(&next, t.version, &step(&next, "dispatch", Some(t.state), None))
        .await;
    assert_eq!(outcome.unwrap(), TaskWrite::Applied);
    next
}

epigrid_testkit::store_contract_tests! {
    async fn a_household_s_own_tasks_come_newest_first(store: Arc<dyn Store>) {
        let chain = Chain::insert(&*store, "本户").await;
        let (member, household, neighbour) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let about = |subject: Uuid, source: &str, minutes_ago: i64| {
            let mut t = task(&chain, now() - TimeDelta::minutes(minutes_ago), None);
            t.subject_id = subject;
            t.source_kind = source.into();
            t
        };
        let older = about(member, "resident", 60);
        let newer = about(household, "resident", 5);
        for t in [
            &older,
            &newer,
            &about(member, "staff", 1),
            &about(neighbour, "resident", 1),
            &about(member, "resident", 60 * 24 * 30),
        ] {
            insert(&store, t).await;
        }
        let since = now() - TimeDelta::days(14);
        let found = store.tasks_about(&[member, household], "resident", since, 10).await.unwrap();
        let ids: Vec<Uuid> = found.iter().map(|t| t.id).collect();
        assert_eq!(ids, [newer.id, older.id], "own, the resident's, recent, newest first");
        let one = store.tasks_about(&[member, household], "resident", since, 1).await.unwrap();
        assert_eq!(one.len(), 1);
        assert!(store.tasks_about(&[], "resident", since, 10).await.unwrap().is_empty());
    }

    async fn tasks_round_trip_with_their_first_history_row(store: Arc<dyn Store>) {
        let chain = Chain::insert(&*store, "任务").await;
        let t = task(&chain, now(), Some("report-1"));
        insert(&store, &t).await;
        assert_eq!(store.get_task(t.id).await.unwrap(), Some(t.clone()));
        assert_eq!(store.get_task_by_idempotency_key("report-1").await.unwrap(), Some(t.clone()));
        assert_eq!(store.get_task(Uuid::now_v7()).await.unwrap(), None);
        let history = store.list_task_history(t.id).await.unwrap();
        assert_eq!(history.len(), 1);
        assert_eq!(history[0].transition, "report");
        assert_eq!(history[0].from_state, None);

        let mut again = task(&chain, now(), Some("report-1"));
        again.idempotency_key = Some("report-1".into());
        let err = store.insert_task(&again, &step(&again, "report", None, None)).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
        assert_eq!(store.get_task(again.id).await.unwrap(), None, "nothing of a refused insert is kept");
    }

    async fn a_step_is_compare_and_set_and_idempotent(store: Arc<dyn Store>) {
        let chain = Chain::insert(&*store, "步骤").await;
        let t = task(&chain, now(), None);
        insert(&store, &t).await;

        let mut verified = t.clone();
        verified.state = EventState::Verified;
        verified.version = 2;
        let first = step(&verified, "verify", Some(EventState::Reported), Some("k-1"));
        assert_eq!(store.apply_task_step(&verified, 1, &first).await.unwrap(), TaskWrite::Applied);
        assert_eq!(store.get_task(t.id).await.unwrap(), Some(verified.clone()));

        // The same key again: the recorded step, nothing written.
        let mut twice = verified.clone();
        twice.version = 3;
        let replay = step(&twice, "verify", Some(EventState::Reported), Some("k-1"));
        assert_eq!(
            store.apply_task_step(&twice, 2, &replay).await.unwrap(),
            TaskWrite::Replayed(first.clone())
        );
        assert_eq!(store.get_task(t.id).await.unwrap().unwrap().version, 2);

        // A stale version writes nothing.
        let stale = step(&twice, "file", Some(EventState::Verified), Some("k-2"));
        assert_eq!(store.apply_task_step(&twice, 1, &stale).await.unwrap(), TaskWrite::Stale);
        let history = store.list_task_history(t.id).await.unwrap();
        assert_eq!(history.iter().map(|h| h.transition.as_str()).collect::<Vec<_>>(), ["report", "verify"]);
    }

    async fn board_filters_and_keyset_pages(store: Arc<dyn Store>) {
        let chain = Chain::insert(&*store, "看板").await;
        let other = chain.insert_sibling_grid(&*store, "看板二").await;
        let worker = Uuid::now_v7();
        let start = now();
        let mut ids = Vec::new();
        for i in 0..5 {
            let mut t = task(if i % 2 == 0 { &chain } else { &other }, start, None);
            t.stage_deadline = Some(start + TimeDelta::hours(i));
            if i == 4 {
                t.category = "door_to_door_check".into();
            }
            insert(&store, &t).await;
            if i == 0 {
                advance(&store, &t, EventState::Dispatched, Some(worker)).await;
            }
            ids.push(t.id);
        }
        let list = |q: TaskQuery| {
            let store = store.clone();
            async move { store.list_tasks(&q).await.unwrap().into_iter().map(|t| t.id).collect::<Vec<_>>() }
        };
        assert_eq!(list(TaskQuery { limit: 10, ..TaskQuery::default() }).await, ids);
        let page1 = list(TaskQuery { limit: 2, ..TaskQuery::default() }).await;
        let page2 = list(TaskQuery { limit: 2, after: page1.last().copied(), ..TaskQuery::default() }).await;
        assert_eq!([page1, page2].concat(), ids[..4]);
        assert_eq!(
            list(TaskQuery { within: Some(other.scope(AreaKind::Grid)), limit: 10, ..TaskQuery::default() }).await,
            [ids[1], ids[3]]
        );
        assert_eq!(list(TaskQuery { grid: Some(chain.grid.id), limit: 10, ..TaskQuery::default() }).await, [ids[0], ids[2], ids[4]]);
        assert_eq!(list(TaskQuery { states: vec![EventState::Dispatched, EventState::InProgress], limit: 10, ..TaskQuery::default() }).await, [ids[0]]);
        assert_eq!(list(TaskQuery { assignee: Some(worker), limit: 10, ..TaskQuery::default() }).await, [ids[0]]);
        assert_eq!(list(TaskQuery { category: Some("door_to_door_check".into()), limit: 10, ..TaskQuery::default() }).await, [ids[4]]);
        assert_eq!(
            list(TaskQuery { overdue_at: Some(start + TimeDelta::minutes(90)), limit: 10, ..TaskQuery::default() }).await,
            [ids[0], ids[1]]
        );
    }

    async fn workload_and_escalation_candidates(store: Arc<dyn Store>) {
        let chain = Chain::insert(&*store, "负荷").await;
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let start = now();
        for (worker, priority) in [(a, Priority::Urgent), (a, Priority::Normal), (a, Priority::Normal), (b, Priority::Low)] {
            let mut t = task(&chain, start, None);
            t.priority = priority;
            insert(&store, &t).await;
            advance(&store, &t, EventState::Dispatched, Some(worker)).await;
        }
        let mut closed = task(&chain, start, None);
        insert(&store, &closed).await;
        closed = advance(&store, &closed, EventState::Closed, Some(b)).await;
        let mut rows = store.grid_workload(chain.grid.id).await.unwrap();
        rows.sort_by_key(|r| (r.account_id, r.priority));
        let mut expected = vec![
            WorkloadRow { account_id: a, priority: Priority::Urgent, count: 1 },
            WorkloadRow { account_id: a, priority: Priority::Normal, count: 2 },
            WorkloadRow { account_id: b, priority: Priority::Low, count: 1 },
        ];
        expected.sort_by_key(|r| (r.account_id, r.priority));
        assert_eq!(rows, expected);
        assert!(store.grid_workload(Uuid::now_v7()).await.unwrap().is_empty());

        // Deadlines are start + 4 h: due after that, except the closed one.
        let later = start + TimeDelta::hours(5);
        assert!(store.tasks_due_for_escalation(start, 2, None, 100).await.unwrap().is_empty());
        let due = store.tasks_due_for_escalation(later, 2, None, 100).await.unwrap();
        assert_eq!(due.len(), 4);
        assert!(due.iter().all(|t| t.id != closed.id));
        let page = store.tasks_due_for_escalation(later, 2, Some(due[1].id), 1).await.unwrap();
        assert_eq!(page[0].id, due[2].id);
        // A task at the top level is no longer a candidate.
        let mut top = due[0].clone();
        top.escalation_level = 2;
        top.version += 1;
        let outcome = store.apply_task_step(&top, due[0].version, &step(&top, "escalate", Some(top.state), None)).await;
        assert_eq!(outcome.unwrap(), TaskWrite::Applied);
        assert_eq!(store.tasks_due_for_escalation(later, 2, None, 100).await.unwrap().len(), 3);
        assert_eq!(store.tasks_due_for_escalation(later, 3, None, 100).await.unwrap().len(), 4);
    }
}
