//! The office's task pages: the board's filters, keyset pages and scope,
//! the step forms (CSRF, a reassignment needs a reason, an illegal step is
//! refused in words), reporting an event, the evaluation page and its
//! audited CSV, and the dashboard's task figures against the tasks made.

use epigrid_domain::tasks::{EventState, Priority, Subject, Transition};
use epigrid_service::chrono::{TimeDelta, Utc};
use epigrid_service::tasks::{ReportEvent, TaskView, TransitionRequest};
use epigrid_service::{Actor, Service};
use epigrid_store::{AuditQuery, TaskHistoryRecord, TaskWrite};
use reqwest::StatusCode;
use uuid::Uuid;

use crate::support::{ADMIN, App, PASSWORD, WORKER_A, WORKER_B, post_form};

async fn actor(service: &Service, username: &str) -> Actor {
    let user = service.store().get_user_by_username(username).await.unwrap().unwrap();
    Actor {
        user_id: Some(user.id),
        username: user.username,
        role: user.role,
        scope: Some(user.scope),
        client_addr: None,
    }
}

/// A task about `subject`, reported by the system and, with `file`,
/// verified and filed, so it is dispatched to the grid's worker.
async fn task(service: &Service, category: &str, subject: Subject, file: bool) -> TaskView {
    let system = Actor::system();
    let event = ReportEvent {
        category: category.into(),
        priority: Some(Priority::High),
        subject,
        note: None,
        idempotency_key: None,
    };
    let mut view = service.report_event(&system, event).await.unwrap();
    if file {
        for transition in [Transition::Verify, Transition::File] {
            let request = TransitionRequest { transition, note: None, idempotency_key: None };
            view = service.transition_task(&system, view.id, request).await.unwrap().task;
        }
    }
    view
}

async fn step(service: &Service, who: &Actor, id: Uuid, transition: Transition) -> TaskView {
    let request = TransitionRequest { transition, note: None, idempotency_key: None };
    service.transition_task(who, id, request).await.unwrap().task
}

/// Moves a task's stage deadline into the past, as time passing would.
async fn make_overdue(service: &Service, id: Uuid) {
    let store = service.store();
    let t = store.get_task(id).await.unwrap().unwrap();
    let mut late = t.clone();
    late.stage_deadline = Some(Utc::now() - TimeDelta::hours(1));
    late.version += 1;
    let note = TaskHistoryRecord {
        id: Uuid::now_v7(),
        task_id: id,
        community_id: t.path.community.unwrap(),
        transition: "test".into(),
        from_state: Some(t.state),
        to_state: t.state,
        actor_account_id: None,
        actor_name: "test".into(),
        at: Utc::now(),
        note: None,
        idempotency_key: None,
    };
    assert_eq!(store.apply_task_step(&late, t.version, &note).await.unwrap(), TaskWrite::Applied);
}

/// The task ids linked from a board page, in order.
fn linked_tasks(html: &str) -> Vec<String> {
    html.split("class=\"task-link\" href=\"/tasks/")
        .skip(1)
        .map(|s| s[..s.find('"').unwrap()].to_owned())
        .collect()
}

async fn page(client: &reqwest::Client, app: &App, path: &str) -> (StatusCode, String) {
    let response = client.get(app.url(path)).send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

/// The figure inside the element with `id`: `<… id="x"…><span class="n">N</span>`.
fn figure(html: &str, id: &str) -> i64 {
    let at = html.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no {id}"));
    let rest = &html[at..];
    let start = rest.find("<span class=\"n\">").unwrap() + "<span class=\"n\">".len();
    rest[start..start + rest[start..].find('<').unwrap()].parse().unwrap()
}

#[tokio::test]
async fn the_board_filters_by_state_category_grid_and_overdue_and_pages() {
    let app = App::spawn().await;
    let s = &app.service;
    let a1 = task(s, "fever_follow_up", Subject::Household(app.seed.household_a), true).await;
    let a2 = task(s, "help_request", Subject::Area(app.seed.grid_a), false).await;
    let b1 = task(s, "fever_follow_up", Subject::Household(app.seed.household_b), true).await;
    make_overdue(s, b1.id).await;
    let admin = app.login(ADMIN).await;

    let (status, html) = page(&admin, &app, "/tasks").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(linked_tasks(&html), [a1.id, a2.id, b1.id].map(|i| i.to_string()));
    assert!(html.contains("发热人员跟进") && html.contains("居民求助"), "categories translated");
    assert!(html.contains("已派遣") && html.contains("待核实"), "states translated");
    assert!(html.contains("第一网格") && html.contains(WORKER_A), "grid and assignee named");

    let only = |path: &'static str| {
        let admin = admin.clone();
        let app = &app;
        async move { linked_tasks(&page(&admin, app, path).await.1) }
    };
    assert_eq!(only("/tasks?state=reported").await, [a2.id.to_string()]);
    assert_eq!(only("/tasks?state=open").await.len(), 3);
    assert_eq!(
        only("/tasks?category=fever_follow_up").await,
        [a1.id, b1.id].map(|i| i.to_string())
    );
    let by_grid = page(&admin, &app, &format!("/tasks?grid={}", app.seed.grid_b)).await.1;
    assert_eq!(linked_tasks(&by_grid), [b1.id.to_string()]);
    let overdue = page(&admin, &app, "/tasks?overdue=1").await.1;
    assert_eq!(linked_tasks(&overdue), [b1.id.to_string()]);
    assert!(overdue.contains("class=\"task-row overdue\"") && overdue.contains("已超时"));
    let (status, html) = page(&admin, &app, "/tasks?state=nonsense").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("没有这个任务状态"), "{html}");

    // A grid worker's board holds their grid only; the grid select too.
    let worker_b = app.login(WORKER_B).await;
    let html = page(&worker_b, &app, "/tasks").await.1;
    assert_eq!(linked_tasks(&html), [b1.id.to_string()]);
    assert!(!html.contains(&app.seed.grid_a.to_string()), "grid A is not offered");

    // Keyset pages of 50: 53 more tasks make two full pages.
    for _ in 0..50 {
        task(s, "door_to_door_check", Subject::Area(app.seed.grid_a), false).await;
    }
    let first = page(&admin, &app, "/tasks").await.1;
    let ids = linked_tasks(&first);
    assert_eq!(ids.len(), 50);
    let next = first.split("id=\"next-page\" rel=\"next\" href=\"").nth(1).expect("a next page");
    let next = next[..next.find('"').unwrap()].replace("&amp;", "&").replace("&#38;", "&");
    let second = page(&admin, &app, &next).await.1;
    let more = linked_tasks(&second);
    assert_eq!(more.len(), 3);
    assert!(!second.contains("id=\"next-page\""), "the last page has no next link");
    assert!(more.iter().all(|id| !ids.contains(id)), "no task twice");
}

#[tokio::test]
async fn another_grids_task_is_404_and_steps_need_the_csrf_token() {
    let app = App::spawn().await;
    let t =
        task(&app.service, "fever_follow_up", Subject::Household(app.seed.household_a), true).await;
    let path = format!("/tasks/{}", t.id);
    let worker_b = app.login(WORKER_B).await;
    assert_eq!(page(&worker_b, &app, &path).await.0, StatusCode::NOT_FOUND);
    let refused =
        post_form(&worker_b, &app, &format!("{path}/transitions"), &[("kind", "accept")]).await;
    assert_eq!(refused.status(), StatusCode::NOT_FOUND);

    // Worker A holds it: the page offers "accept" and nothing of a supervisor.
    let session = app.session(WORKER_A, PASSWORD).await;
    let browser = session.client(None, false);
    let (status, html) = page(&browser, &app, &path).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("id=\"step-accept\"") && !html.contains("id=\"step-close\""), "{html}");
    assert!(html.contains(&format!("name=\"_csrf\" value=\"{}\"", session.csrf)));
    let forged = browser
        .post(app.url(&format!("{path}/transitions")))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("kind=accept")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN, "no token, no step");
    let stored = app.service.store().get_task(t.id).await.unwrap().unwrap();
    assert_eq!(stored.state, EventState::Dispatched);

    let key = "form-key-1";
    let body = crate::support::form_body(&[
        ("_csrf", &session.csrf),
        ("kind", "accept"),
        ("key", key),
        ("note", "马上上门"),
    ]);
    let send = || {
        browser
            .post(app.url(&format!("{path}/transitions")))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.clone())
            .send()
    };
    let done = send().await.unwrap();
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert_eq!(done.headers()["location"], format!("{path}?done=accept"));
    // The same form sent twice (a double click) applies once.
    let again = send().await.unwrap();
    assert_eq!(again.headers()["location"], format!("{path}?replayed=1"));
    let stored = app.service.store().get_task(t.id).await.unwrap().unwrap();
    assert_eq!(stored.state, EventState::InProgress);
    let history = app.service.store().list_task_history(t.id).await.unwrap();
    assert_eq!(history.iter().filter(|h| h.transition == "accept").count(), 1);
    let html = page(&browser, &app, &format!("{path}?done=accept")).await.1;
    assert!(html.contains("已完成：接单") && html.contains("马上上门"), "{html}");

    // A report of handling with a photo: the office page links the photo
    // from its step (a link, so viewing stays an audited, deliberate act).
    let worker = actor(&app.service, WORKER_A).await;
    let request = TransitionRequest {
        transition: Transition::ReportHandled,
        note: Some("已送药".into()),
        idempotency_key: None,
    };
    let jpeg = [vec![0xFF, 0xD8, 0xFF, 0xE0], vec![0; 64]].concat();
    app.service.transition_task_with_photos(&worker, t.id, request, vec![jpeg]).await.unwrap();
    let admin = app.login(ADMIN).await;
    let html = page(&admin, &app, &path).await.1;
    let link = html.split("class=\"photo-link\" href=\"").nth(1).expect("a photo link");
    let link = &link[..link.find('"').unwrap()];
    assert!(link.starts_with(&format!("{path}/photos/")), "{link}");
    assert!(html.contains("照片 1"), "{html}");
    let photo = admin.get(app.url(link)).send().await.unwrap();
    assert_eq!(photo.status(), StatusCode::OK);
    assert_eq!(photo.headers()["content-type"], "image/jpeg");
}

#[tokio::test]
async fn reassignment_needs_a_reason_and_illegal_steps_are_refused_in_words() {
    let app = App::spawn().await;
    let t =
        task(&app.service, "fever_follow_up", Subject::Household(app.seed.household_a), true).await;
    let path = format!("/tasks/{}", t.id);
    let admin = app.login(ADMIN).await;
    let html = page(&admin, &app, &path).await.1;
    assert!(html.contains("id=\"step-reassign\""), "{html}");
    let worker_b = app.service.store().get_user_by_username(WORKER_B).await.unwrap().unwrap();
    let to_b = format!("worker:{}", worker_b.id);
    assert!(html.contains(&format!("value=\"{to_b}\"")), "worker B is offered");

    let response = post_form(
        &admin,
        &app,
        &format!("{path}/transitions"),
        &[("kind", "reassign"), ("assignee", &to_b), ("reason", "  ")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.unwrap();
    assert!(html.contains("请填写原因"), "{html}");
    let stored = app.service.store().get_task(t.id).await.unwrap().unwrap();
    assert_ne!(stored.assignee_account_id, Some(worker_b.id), "nothing was applied");
    let steps = app.service.store().list_task_history(t.id).await.unwrap().len();

    // A step the state does not allow: the rule's reason, in English too.
    let response =
        post_form(&admin, &app, &format!("{path}/transitions"), &[("kind", "close")]).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.text().await.unwrap().contains("任务当前状态下不能进行这一步"));
    let english = admin
        .post(app.url(&format!("{path}/transitions")))
        .header("accept-language", "en")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("kind=evaluate&score=5")
        .send()
        .await
        .unwrap();
    assert_eq!(english.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(english.text().await.unwrap().contains("This step is not possible"));
    assert_eq!(app.service.store().list_task_history(t.id).await.unwrap().len(), steps);

    // With a reason it goes through, and the history says who and why.
    let response = post_form(
        &admin,
        &app,
        &format!("{path}/transitions"),
        &[("kind", "reassign"), ("assignee", &to_b), ("reason", "网格员请假")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK, "followed to the task page");
    let html = response.text().await.unwrap();
    assert!(html.contains("网格员请假") && html.contains("改派"), "{html}");
    let stored = app.service.store().get_task(t.id).await.unwrap().unwrap();
    assert_eq!(stored.assignee_account_id, Some(worker_b.id));
}

#[tokio::test]
async fn staff_report_an_event_from_the_form() {
    let app = App::spawn().await;
    let admin = app.login(ADMIN).await;
    let (status, html) = page(&admin, &app, "/tasks/new").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("入户排查"), "categories offered");
    let grid_a = app.seed.grid_a.to_string();
    let missing = post_form(
        &admin,
        &app,
        "/tasks",
        &[("category", "help_request"), ("subject_kind", "area")],
    )
    .await;
    assert_eq!(missing.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(missing.text().await.unwrap().contains("请选择事件对象"));
    let bad = post_form(
        &admin,
        &app,
        "/tasks",
        &[("category", "help_request"), ("subject_kind", "household"), ("subject_id", "12-34")],
    )
    .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let made = post_form(
        &admin,
        &app,
        "/tasks",
        &[
            ("category", "help_request"),
            ("priority", "urgent"),
            ("subject_kind", "area"),
            ("area", &grid_a),
            ("note", "独居老人求助买药"),
            ("key", "report-form-1"),
        ],
    )
    .await;
    assert_eq!(made.status(), StatusCode::OK);
    let html = made.text().await.unwrap();
    assert!(html.contains("事件已上报") && html.contains("独居老人求助买药"), "{html}");
    let tasks = app.service.store().list_tasks(&Default::default()).await.unwrap();
    assert_eq!(tasks.len(), 1);
    assert_eq!((tasks[0].priority, tasks[0].path.grid), (Priority::Urgent, Some(app.seed.grid_a)));

    // A worker of grid B cannot report about grid A.
    let worker_b = app.login(WORKER_B).await;
    let response = post_form(
        &worker_b,
        &app,
        "/tasks",
        &[("category", "help_request"), ("subject_kind", "area"), ("area", &grid_a)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.text().await.unwrap().contains("不在您的管辖范围"));
    assert_eq!(app.service.store().list_tasks(&Default::default()).await.unwrap().len(), 1);
}

#[tokio::test]
async fn evaluation_page_chart_and_an_audited_csv() {
    let app = App::spawn().await;
    let s = &app.service;
    let admin_actor = actor(s, ADMIN).await;
    let worker = actor(s, WORKER_A).await;
    let t = task(s, "fever_follow_up", Subject::Household(app.seed.household_a), true).await;
    step(s, &worker, t.id, Transition::Accept).await;
    step(s, &worker, t.id, Transition::ReportHandled).await;
    step(s, &admin_actor, t.id, Transition::Close).await;

    let admin = app.login(ADMIN).await;
    let (status, html) = page(&admin, &app, "/evaluation?group=grid").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("第一网格") && html.contains("100.0%"), "{html}");
    assert!(html.contains("<svg class=\"chart-svg\""), "the chart is drawn on the server");
    let (status, html) = page(&admin, &app, "/evaluation?from=2026-13-01").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("日期格式应为"), "{html}");

    let href = html_csv_href(&page(&admin, &app, "/evaluation?group=grid").await.1);
    let response = admin.get(app.url(&href)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/csv; charset=utf-8");
    assert!(response.headers()["content-disposition"].to_str().unwrap().starts_with("attachment"));
    let bytes = response.bytes().await.unwrap();
    assert_eq!(&bytes[..3], b"\xEF\xBB\xBF", "UTF-8 with a byte-order mark");
    let text = String::from_utf8(bytes[3..].to_vec()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("\"网格\",\"id\""), "{text}");
    let row = lines.iter().find(|l| l.contains("第一网格")).expect("grid A's row");
    let fields: Vec<&str> = row.split(',').collect();
    assert_eq!(fields[1], app.seed.grid_a.to_string());
    assert_eq!((fields[4], fields[5]), ("1", "1.0000"), "{row}");

    let audit = s
        .store()
        .list_audit(&AuditQuery {
            action: Some("export.evaluation".into()),
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].actor_name, ADMIN);
    let detail: serde_json::Value = serde_json::from_str(&audit[0].detail).unwrap();
    assert_eq!((detail["group_by"].as_str(), detail["rows"].as_u64()), (Some("grid"), Some(1)));

    // A grid worker is not evaluated through this page, nor exports.
    let worker_client = app.login(WORKER_A).await;
    assert_eq!(page(&worker_client, &app, "/evaluation").await.0, StatusCode::FORBIDDEN);
    assert_eq!(page(&worker_client, &app, &href).await.0, StatusCode::FORBIDDEN);
}

fn html_csv_href(html: &str) -> String {
    let at = html.find("id=\"download-csv\" href=\"").expect("a download link");
    let rest = &html[at + "id=\"download-csv\" href=\"".len()..];
    rest[..rest.find('"').unwrap()].replace("&amp;", "&").replace("&#38;", "&")
}

#[tokio::test]
async fn dashboard_task_figures_match_the_tasks_made() {
    let app = App::spawn().await;
    let s = &app.service;
    let admin_actor = actor(s, ADMIN).await;
    let worker = actor(s, WORKER_A).await;
    // Grid A: two open (one overdue) and one closed today; grid B: one open.
    let a1 = task(s, "fever_follow_up", Subject::Household(app.seed.household_a), true).await;
    make_overdue(s, a1.id).await;
    task(s, "help_request", Subject::Area(app.seed.grid_a), false).await;
    let done = task(s, "retest_visit", Subject::Household(app.seed.household_a), true).await;
    step(s, &worker, done.id, Transition::Accept).await;
    step(s, &worker, done.id, Transition::ReportHandled).await;
    step(s, &admin_actor, done.id, Transition::Close).await;
    task(s, "help_request", Subject::Household(app.seed.household_b), true).await;
    // The escalation pass escalates the overdue one, once.
    let counts = s.escalation_pass(Utc::now()).await.unwrap();
    assert!(counts.to_grid_leader >= 1, "{counts:?}");

    let admin = app.login(ADMIN).await;
    let (status, html) = page(&admin, &app, "/").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(figure(&html, "figure-open"), 3);
    assert_eq!(figure(&html, "figure-overdue"), 1);
    assert_eq!(figure(&html, "figure-closed-today"), 1);
    assert_eq!(figure(&html, "figure-escalated"), 1);
    assert_eq!(figure(&html, "figure-escalations-today"), 1);
    let row = |grid: Uuid| {
        let at = html.find(&format!("data-grid-id=\"{grid}\"")).expect("a row per grid");
        html[at..at + html[at..].find("</tr>").unwrap()].to_owned()
    };
    let a = row(app.seed.grid_a);
    assert!(a.contains("class=\"inline open\" data-label=\"未办结任务\">2<"), "{a}");
    assert!(a.contains("overdue=1\">1</a>") && a.contains(">1</td>"), "{a}");
    let b = row(app.seed.grid_b);
    assert!(b.contains("class=\"inline open\" data-label=\"未办结任务\">1<"), "{b}");

    // The map coloured by overdue tasks names the figures in its tooltips.
    let (_, map) =
        page(&admin, &app, &format!("/?area={}&measure=overdue_tasks", app.seed.community)).await;
    assert!(map.contains("data-measure=\"overdue_tasks\""), "{map}");
    assert!(map.contains("第一网格：未办结 2 件，超时 1 件，今日结案 1 件"), "{map}");

    // A grid worker's dashboard counts their grid only.
    let worker_b = app.login(WORKER_B).await;
    let html = page(&worker_b, &app, "/").await.1;
    assert_eq!(figure(&html, "figure-open"), 1);
    assert_eq!(figure(&html, "figure-overdue"), 0);
}
