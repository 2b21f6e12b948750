//! Task figures the office pages read in one grouped query each: per-grid
//! counts for the dashboard and evaluation counts per group, checked against
//! the domain's own definition (`Metrics::over`); and the bulk insert the
//! benches seed with.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use epigrid_domain::tasks::{EventState, Metrics, Period, Priority, Stage, TaskSummary};
use epigrid_domain::{AreaKind, AreaPath, Role};
use epigrid_store::tasks::AuditedTaskStep;
use epigrid_store::{
    AuditQuery, AuditRecord, ChainVerdict, EvaluationCounts, EvaluationKey, GridTaskFigures, Store,
    TaskHistoryRecord, TaskQuery, TaskRecord, TaskWrite,
};
use epigrid_testkit::{Chain, now, user};
use uuid::Uuid;

fn task(path: AreaPath, state: EventState, at: DateTime<Utc>) -> TaskRecord {
    TaskRecord {
        id: Uuid::now_v7(),
        category: "door_to_door_check".into(),
        priority: Priority::Normal,
        state,
        source_kind: "system_rule".into(),
        source_detail: r#"{"kind":"system_rule","rule":"test"}"#.into(),
        subject_kind: "area".into(),
        subject_id: path.grid.or(path.community).unwrap(),
        path,
        assignee_account_id: None,
        reserve_pool_community_id: None,
        stage: state.stage(),
        stage_started_at: state.stage().map(|_| at),
        stage_deadline: state.stage().map(|_| at + TimeDelta::hours(4)),
        escalation_level: 0,
        filed_at: None,
        handled_at: None,
        handled_by: None,
        handle_deadline: None,
        handling_seconds: None,
        closed_at: None,
        reopened: 0,
        created_at: at,
        updated_at: at,
        version: 1,
        idempotency_key: None,
    }
}

fn first_step(t: &TaskRecord) -> TaskHistoryRecord {
    TaskHistoryRecord {
        id: Uuid::now_v7(),
        task_id: t.id,
        community_id: t.path.community.unwrap(),
        transition: "report".into(),
        from_state: None,
        to_state: t.state,
        actor_account_id: None,
        actor_name: "system".into(),
        at: t.created_at,
        note: None,
        idempotency_key: None,
    }
}

async fn escalate(store: &Arc<dyn Store>, t: &TaskRecord, at: DateTime<Utc>) -> TaskRecord {
    let mut next = t.clone();
    next.escalation_level += 1;
    next.version += 1;
    let step = TaskHistoryRecord {
        transition: "escalate".into(),
        from_state: Some(t.state),
        at,
        ..first_step(t)
    };
    assert_eq!(store.apply_task_step(&next, t.version, &step).await.unwrap(), TaskWrite::Applied);
    next
}

fn by_grid(mut rows: Vec<GridTaskFigures>) -> Vec<GridTaskFigures> {
    rows.sort_by_key(|r| (r.community_id, r.grid_id));
    rows
}

fn summary(t: &TaskRecord) -> TaskSummary {
    TaskSummary {
        task_id: t.id,
        worker: t.handled_by.or(t.assignee_account_id),
        grid: t.path.grid.unwrap(),
        community: t.path.community.unwrap(),
        filed_at: t.filed_at.map(|d| d.naive_utc()),
        handled_at: t.handled_at.map(|d| d.naive_utc()),
        handle_deadline: if t.handled_at.is_some() {
            t.handle_deadline.map(|d| d.naive_utc())
        } else if t.stage == Some(Stage::Handle) {
            t.stage_deadline.map(|d| d.naive_utc())
        } else {
            None
        },
        handling_time: t.handling_seconds.map(TimeDelta::seconds),
        closed_at: t.closed_at.map(|d| d.naive_utc()),
        reopened: t.reopened,
    }
}

fn as_counts(group_id: Uuid, m: &Metrics) -> EvaluationCounts {
    EvaluationCounts {
        group_id,
        handled: m.handled.into(),
        handled_on_time: m.handled_on_time.into(),
        filed: m.filed.into(),
        filed_and_closed: m.filed_and_closed.into(),
        closed: m.closed.into(),
        closed_after_rework: m.closed_after_rework.into(),
        overdue: m.overdue.into(),
        timed: m.timed.into(),
        total_handling_seconds: m.total_handling_time.num_seconds(),
    }
}

epigrid_testkit::store_contract_tests! {
    async fn bulk_inserted_tasks_are_stored_with_their_history(store: Arc<dyn Store>) {
        let chain = Chain::insert(&*store, "批量").await;
        let at = now();
        let tasks: Vec<(TaskRecord, TaskHistoryRecord)> = (0..1_203)
            .map(|_| {
                let t = task(chain.grid.path, EventState::Dispatched, at);
                let h = first_step(&t);
                (t, h)
            })
            .collect();
        store.insert_tasks_bulk(&tasks).await.unwrap();
        let (t, h) = &tasks[700];
        assert_eq!(store.get_task(t.id).await.unwrap().as_ref(), Some(t));
        assert_eq!(store.list_task_history(t.id).await.unwrap(), vec![h.clone()]);
        let mut seen = 0;
        let mut after = None;
        loop {
            let page = store.list_tasks(&TaskQuery { after, limit: 500, ..TaskQuery::default() }).await.unwrap();
            seen += page.len();
            after = page.last().map(|t| t.id);
            if page.len() < 500 {
                break;
            }
        }
        assert_eq!(seen, 1_203);

        // All or none: a batch with a reused idempotency key leaves nothing.
        let mut a = task(chain.grid.path, EventState::Reported, at);
        a.idempotency_key = Some("same".into());
        let mut b = task(chain.grid.path, EventState::Reported, at);
        b.idempotency_key = Some("same".into());
        let batch = vec![(a.clone(), first_step(&a)), (b.clone(), first_step(&b))];
        assert!(store.insert_tasks_bulk(&batch).await.is_err());
        assert_eq!(store.get_task(a.id).await.unwrap(), None);
    }

    async fn grid_task_figures_count_open_overdue_closed_and_escalated(store: Arc<dyn Store>) {
        let chain = Chain::insert(&*store, "统计").await;
        let other = chain.insert_sibling_grid(&*store, "统计二").await;
        let (grid_a, grid_b) = (chain.grid.path, other.grid.path);
        let community = chain.community.path;
        let at = now();
        let day_start = at - TimeDelta::hours(2);
        let late = at - TimeDelta::hours(6);
        let mut rows = Vec::new();
        // Grid A: three open (one past its deadline), one closed today, one
        // closed yesterday, one rejected.
        rows.push(task(grid_a, EventState::Dispatched, at));
        rows.push(task(grid_a, EventState::InProgress, at));
        rows.push(task(grid_a, EventState::Filed, late));
        let mut closed_today = task(grid_a, EventState::Closed, late);
        closed_today.closed_at = Some(at - TimeDelta::hours(1));
        rows.push(closed_today);
        let mut closed_before = task(grid_a, EventState::Closed, late);
        closed_before.closed_at = Some(at - TimeDelta::hours(30));
        rows.push(closed_before);
        rows.push(task(grid_a, EventState::Rejected, at));
        // Grid B: two open, both late; one of them escalated twice today.
        rows.push(task(grid_b, EventState::Reported, late));
        rows.push(task(grid_b, EventState::HandledReported, late));
        // The community itself: one open task with no grid.
        rows.push(task(community, EventState::Reported, at));
        let batch: Vec<_> = rows.iter().map(|t| (t.clone(), first_step(t))).collect();
        store.insert_tasks_bulk(&batch).await.unwrap();
        let escalated = escalate(&store, &rows[6], at - TimeDelta::hours(3)).await;
        let escalated = escalate(&store, &escalated, at - TimeDelta::minutes(5)).await;
        escalate(&store, &escalated, at - TimeDelta::minutes(1)).await;

        let figures = by_grid(store.grid_task_figures(None, at, day_start).await.unwrap());
        let c = chain.community.id;
        let mut expected = by_grid(vec![
            GridTaskFigures { community_id: c, grid_id: Some(chain.grid.id), open: 3, overdue: 1, closed_today: 1, escalated_open: 0, escalations_today: 0 },
            GridTaskFigures { community_id: c, grid_id: Some(other.grid.id), open: 2, overdue: 2, closed_today: 0, escalated_open: 1, escalations_today: 2 },
            GridTaskFigures { community_id: c, grid_id: None, open: 1, overdue: 0, closed_today: 0, escalated_open: 0, escalations_today: 0 },
        ]);
        assert_eq!(figures, expected);
        let within_b = store
            .grid_task_figures(Some(other.scope(AreaKind::Grid)), at, day_start)
            .await
            .unwrap();
        expected.retain(|f| f.grid_id == Some(other.grid.id));
        assert_eq!(within_b, expected);
        let elsewhere = Chain::insert(&*store, "别处").await;
        assert!(store.grid_task_figures(Some(elsewhere.scope(AreaKind::Community)), at, day_start).await.unwrap().is_empty());
    }

    async fn evaluation_counts_match_the_domain_definition(store: Arc<dyn Store>) {
        let chain = Chain::insert(&*store, "考核").await;
        let other = chain.insert_sibling_grid(&*store, "考核二").await;
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let base = now() - TimeDelta::days(10);
        let from = base;
        let to = base + TimeDelta::days(7);
        let clock = base + TimeDelta::days(5);
        let h = TimeDelta::hours;
        let mut rows = Vec::new();
        // Every combination that matters: on time, late, before and after
        // the period, unhandled past and before the deadline, rework.
        for (i, grid) in [chain.grid.path, other.grid.path].into_iter().enumerate() {
            for k in 0..12i64 {
                let state = match k % 4 {
                    0 => EventState::InProgress,
                    1 => EventState::HandledReported,
                    2 => EventState::Closed,
                    _ => EventState::Dispatched,
                };
                let mut t = task(grid, state, base + h(k * 13 - 30));
                t.assignee_account_id = Some(if (k + i as i64) % 3 == 0 { b } else { a });
                t.filed_at = Some(base + h(k * 13 - 30));
                if matches!(state, EventState::InProgress | EventState::Dispatched) {
                    t.stage = Some(Stage::Handle);
                    t.stage_deadline = Some(base + h(k * 11 - 10));
                } else {
                    t.handled_at = Some(base + h(k * 12));
                    t.handled_by = Some(if k % 5 == 0 { b } else { a });
                    t.handle_deadline = if k == 5 { None } else { Some(base + h(k * 12 + 24 - k * 4)) };
                    t.handling_seconds = (k != 9).then_some(3_600 * k);
                }
                if state == EventState::Closed {
                    t.closed_at = Some(base + h(k * 14));
                    t.reopened = u32::try_from(k % 3).unwrap();
                    t.stage = None;
                    t.stage_deadline = None;
                }
                rows.push(t);
            }
        }
        // No worker at all: left out by worker, counted by grid.
        let mut pool = task(chain.grid.path, EventState::Filed, base);
        pool.filed_at = Some(base + h(1));
        rows.push(pool);
        let batch: Vec<_> = rows.iter().map(|t| (t.clone(), first_step(t))).collect();
        store.insert_tasks_bulk(&batch).await.unwrap();

        let period = Period::new(from.naive_utc(), to.naive_utc()).unwrap();
        let summaries: Vec<TaskSummary> = rows.iter().map(summary).collect();
        for (key, group_by) in [
            (EvaluationKey::Worker, epigrid_domain::tasks::GroupBy::Worker),
            (EvaluationKey::Grid, epigrid_domain::tasks::GroupBy::Grid),
            (EvaluationKey::Community, epigrid_domain::tasks::GroupBy::Community),
        ] {
            let expected: Vec<EvaluationCounts> =
                epigrid_domain::tasks::evaluate(&summaries, period, clock.naive_utc(), group_by)
                    .iter()
                    .map(|(id, m)| as_counts(*id, m))
                    .collect();
            let got = store.task_evaluation(None, key, from, to, clock).await.unwrap();
            assert_eq!(got, expected, "{key:?}");
            if key == EvaluationKey::Grid {
                // The data exercises every figure, late and on time alike.
                let total = |f: fn(&EvaluationCounts) -> i64| got.iter().map(f).sum::<i64>();
                assert!(total(|g| g.handled) > total(|g| g.handled_on_time), "{got:?}");
                assert!(total(|g| g.handled_on_time) > 0 && total(|g| g.overdue) > 0, "{got:?}");
                assert!(total(|g| g.filed) > total(|g| g.filed_and_closed), "{got:?}");
                assert!(total(|g| g.filed_and_closed) > 0, "{got:?}");
                assert!(total(|g| g.closed) > total(|g| g.closed_after_rework), "{got:?}");
                assert!(total(|g| g.closed_after_rework) > 0, "{got:?}");
                assert!(total(|g| g.handled) > total(|g| g.timed), "{got:?}");
            }
        }
        let only_b = store
            .task_evaluation(Some(other.scope(AreaKind::Grid)), EvaluationKey::Grid, from, to, clock)
            .await
            .unwrap();
        assert_eq!(only_b.len(), 1);
        assert_eq!(only_b[0].group_id, other.grid.id);
    }

    async fn several_accounts_are_read_at_once(store: Arc<dyn Store>) {
        let chain = Chain::insert(&*store, "账号").await;
        let one = user("figures_one", Role::GridWorker, &chain.grid);
        let two = user("figures_two", Role::GridLeader, &chain.grid);
        store.insert_user(&one).await.unwrap();
        store.insert_user(&two).await.unwrap();
        let mut found = store.get_users(&[two.id, Uuid::now_v7(), one.id]).await.unwrap();
        found.sort_by(|x, y| x.username.cmp(&y.username));
        assert_eq!(found, vec![one, two]);
        assert!(store.get_users(&[]).await.unwrap().is_empty());
    }

    async fn a_batch_of_steps_is_written_with_its_audit_entries_at_once(store: Arc<dyn Store>) {
        let chain = Chain::insert(&*store, "批次").await;
        let at = now();
        let rows: Vec<TaskRecord> = (0..3).map(|_| task(chain.unit.path, EventState::Dispatched, at)).collect();
        let batch: Vec<_> = rows.iter().map(|t| (t.clone(), first_step(t))).collect();
        store.insert_tasks_bulk(&batch).await.unwrap();
        // The third task's escalation was recorded before, under its key.
        let mut done = rows[2].clone();
        done.escalation_level = 1;
        done.version = 2;
        let keyed = |t: &TaskRecord, key: &str| TaskHistoryRecord {
            transition: "escalate".into(),
            from_state: Some(t.state),
            idempotency_key: Some(key.into()),
            ..first_step(t)
        };
        assert_eq!(store.apply_task_step(&done, 1, &keyed(&done, "esc-2")).await.unwrap(), TaskWrite::Applied);
        let entry = |t: &TaskRecord| AuditRecord {
            id: Uuid::now_v7(),
            at,
            actor_user_id: None,
            actor_name: "system".into(),
            actor_role: None,
            action: "task.escalate".into(),
            target_kind: Some("task".into()),
            target_id: Some(t.id),
            community_id: t.path.community,
            client_addr: None,
            outcome: "ok".into(),
            detail: "{}".into(),
        };
        let step = |t: &TaskRecord, expected: i64, key: &str| {
            let mut next = t.clone();
            next.escalation_level = 1;
            next.version = expected + 1;
            AuditedTaskStep { step: keyed(&next, key), task: next, expected_version: expected, audit: vec![entry(t), entry(t)] }
        };
        let steps = vec![step(&rows[0], 1, "esc-0"), step(&rows[1], 7, "esc-1"), step(&done, 2, "esc-2")];
        let writes = store.apply_task_steps_audited(&steps).await.unwrap();
        assert_eq!(writes[0], TaskWrite::Applied);
        assert_eq!(writes[1], TaskWrite::Stale, "a moved-on version writes nothing");
        assert!(matches!(writes[2], TaskWrite::Replayed(_)), "{:?}", writes[2]);
        assert_eq!(store.get_task(rows[0].id).await.unwrap().unwrap().escalation_level, 1);
        assert_eq!(store.get_task(rows[1].id).await.unwrap().unwrap().escalation_level, 0);
        let audit = store
            .list_audit(&AuditQuery { action: Some("task.escalate".into()), limit: 10, ..AuditQuery::default() })
            .await
            .unwrap();
        assert_eq!(audit.len(), 2, "only the applied step's entries");
        assert!(audit.iter().all(|e| e.target_id == Some(rows[0].id)));
        assert!(matches!(store.verify_audit_chain().await.unwrap(), ChainVerdict::Intact { .. }));
        assert!(store.apply_task_steps_audited(&[]).await.unwrap().is_empty());
    }
}
