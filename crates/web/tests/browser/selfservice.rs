//! Resident self-service by QR code in real Chromium at 360 px (issue #6):
//! a resident opens the building's address (as a scan would), picks the
//! household, identifies, and reports a fever for one member through the
//! page's script. The office verifies and files the fever follow-up task
//! (the closed loop's first steps; filing dispatches it automatically to a
//! grid worker of the grid), and that worker logs in on the phone and finds
//! it on `/m/`, and sees the grid's reported share on the dashboard go up.

use std::time::{Duration, Instant};

use epigrid_domain::tasks::{Assignee, Subject};
use epigrid_domain::{AreaKind, Relation, Sex};
use epigrid_service::Actor;
use epigrid_service::chrono::NaiveDate;
use epigrid_service::registry::{NewHousehold, NewResident};
use epigrid_service::tasks::BoardFilter;
use uuid::Uuid;

use crate::support::{ADMIN_PASSWORD, App, ONE_BROWSER, PHONE, chromedriver, with_browser};

const ROOM: &str = "9901";

fn resident(household: Uuid, name: &str, id_number: Option<String>, sex: Sex) -> NewResident {
    NewResident {
        household_id: household,
        name: name.to_owned(),
        sex: Some(sex),
        birth_date: None,
        id_number,
        phone: None,
        relation: Relation::Head,
        floating: false,
        arrived_on: None,
        origin: None,
        tags: Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resident_reports_a_fever_by_qr_and_the_grid_worker_sees_the_task() {
    let Some(driver) = chromedriver() else {
        return;
    };
    let _one = ONE_BROWSER.lock().await;
    let started = Instant::now();
    let app = App::spawn().await;
    let service = app.service.clone();
    let system = Actor::system();

    // A new household in the first grid worker's grid, with two members,
    // one of them with a known ID number.
    let login = service.login(crate::WORKER, &app.password(crate::WORKER), None).await.unwrap();
    let grid = login.actor.scope.unwrap().area_id;
    let building = service.area_children(&system, grid).await.unwrap()[0].area.clone();
    assert_eq!(building.kind, AreaKind::Building);
    let unit = service.area_children(&system, building.id).await.unwrap()[0].area.id;
    let household = service
        .create_household(&system, NewHousehold { unit_id: unit, room: ROOM.into() })
        .await
        .unwrap()
        .id;
    let birth = NaiveDate::from_ymd_opt(1980, 5, 5).unwrap();
    let id_number = crate::unused_id_number(&service, birth, Sex::Male).await;
    let feverish = service
        .create_resident(&system, resident(household, "孙晓明", Some(id_number.clone()), Sex::Male))
        .await
        .unwrap()
        .id;
    let mut child = resident(household, "孙小雨", None, Sex::Female);
    child.relation = Relation::Child;
    child.birth_date = Some(NaiveDate::from_ymd_opt(2015, 6, 1).unwrap());
    service.create_resident(&system, child).await.unwrap();
    let token = service.building_token(building.id);
    let before = service
        .reporting_by_grid(&system)
        .await
        .unwrap()
        .into_iter()
        .find(|g| g.grid_id == grid)
        .unwrap();
    let last4 = id_number[14..].to_owned();
    let admin = service.login("admin", ADMIN_PASSWORD, None).await.unwrap().actor;
    let app_passwords: Vec<(String, String)> =
        app.accounts.iter().map(|a| (a.username.clone(), a.password.clone())).collect();
    let setup = started.elapsed();

    with_browser(&driver, &app.origin, PHONE, move |browser| async move {
        // 1. The scan: the building's self-service address.
        let page = browser.goto(&format!("/s/{token}")).await;
        assert_eq!((page.status, page.lang.as_str()), (200, "zh-CN"));
        assert_eq!(browser.text("#building-name").await, building.name);
        browser.screenshot("selfservice-building-360").await;

        // 2. Pick the household and identify.
        let select = browser.find("#household").await;
        select.select_by_value(&household.to_string()).await.unwrap();
        browser.fill("#name", "孙晓明").await;
        browser.fill("#id_last4", &last4).await;
        let page = browser.click_css("#identify").await;
        if !page.href.ends_with("/menu") {
            let body = browser.text("main").await;
            panic!("identification refused ({}): {body}", page.status);
        }
        assert!(page.href.ends_with(&format!("/s/{token}/menu")), "the menu, not {}", page.href);
        let label = browser.text("#household-label").await;
        assert!(label.ends_with(ROOM), "the household's label: {label}");
        browser.screenshot("selfservice-menu-360").await;

        // 3. The daily report: a fever for 孙晓明, normal for 孙小雨.
        browser.click_css("#menu-health").await;
        let block = |name: &'static str| {
            let browser = &browser;
            async move {
                let js = format!(
                    "return [...document.querySelectorAll('fieldset.s-member-block')]\
                     .find(f => f.querySelector('legend').textContent.trim() === '{name}').id;"
                );
                let id = browser.client.execute(&js, vec![]).await.unwrap();
                id.as_str().unwrap().trim_start_matches("member-").to_owned()
            }
        };
        let (fever, other) = (block("孙*明").await, block("孙*雨").await);
        browser.fill(&format!("#t{fever}"), "38.2").await;
        browser.fill(&format!("#t{other}"), "36.5").await;
        browser.screenshot("selfservice-health-360").await;
        browser.find("#submit").await.click().await.unwrap();
        // A second, impatient tap while the first is on its way.
        browser
            .client
            .execute("document.getElementById('health-form').requestSubmit();", vec![])
            .await
            .unwrap();
        // The script sends it and shows the reference on the same page.
        let deadline = Instant::now() + Duration::from_secs(20);
        let reference = loop {
            let done = browser
                .client
                .execute(
                    "const d = document.getElementById('done'); \
                     return d && !d.hidden ? document.getElementById('reference').textContent : '';",
                    vec![],
                )
                .await
                .unwrap();
            let text = done.as_str().unwrap_or_default().to_owned();
            if !text.is_empty() {
                break text;
            }
            assert!(Instant::now() < deadline, "no reference shown after submitting");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert!(reference.starts_with("JK-"), "{reference}");
        let forms_shown = browser
            .client
            .execute(
                "return [...document.querySelectorAll('form.s-send')]\
                 .filter(f => f.getBoundingClientRect().height > 0).length;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(forms_shown.as_u64(), Some(0), "the forms give way to the confirmation");
        // …with what to do about the fever and when the grid worker will call.
        let next = browser
            .client
            .execute(
                "return [...document.querySelectorAll('#done .s-next')].map(p => p.textContent);",
                vec![],
            )
            .await
            .unwrap();
        let next: Vec<String> = serde_json::from_value(next).unwrap();
        assert_eq!(next.len(), 2, "{next:?}");
        assert!(next[0].contains("120") && next[1].starts_with("网格员将在"), "{next:?}");
        let stored = service.household_reports(&system, household).await.unwrap();
        assert_eq!(stored.len(), 1, "one report from two taps");
        assert_eq!(stored[0].reference, reference);
        browser.landed().await;
        browser.screenshot("selfservice-done-360").await;

        // 4. The rule made a fever follow-up task in the grid and the system
        // verified, filed and dispatched it to a grid worker: no office step.
        let deadline = Instant::now() + Duration::from_secs(20);
        let (task, account_id) = loop {
            let board = service
                .task_board(
                    &admin,
                    BoardFilter {
                        category: Some("fever_follow_up".into()),
                        grid: Some(grid),
                        limit: 100,
                        ..BoardFilter::default()
                    },
                )
                .await
                .unwrap();
            let found = board.into_iter().find(|t| t.subject == Subject::Resident(feverish));
            if let Some(task) = found
                && let Some(Assignee::Worker { account_id }) = task.assignee
            {
                break (task, account_id);
            }
            assert!(Instant::now() < deadline, "no dispatched fever follow-up task for the resident");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(task.state.as_str(), "dispatched");
        // Back on the menu, the family sees both reported today and the
        // fever taken up by a grid worker.
        browser.goto(&format!("/s/{token}/menu")).await;
        let today = browser.text("#today").await;
        assert_eq!(today.matches("✓ 已报告").count(), 2, "{today}");
        let requests = browser.text("#requests").await;
        assert!(requests.contains("网格员处理中") && requests.contains(&reference), "{requests}");
        browser.screenshot("selfservice-menu-after-360").await;
        let worker = service.get_user(&Actor::system(), account_id).await.unwrap().username;
        let password = app_passwords.iter().find(|(u, _)| *u == worker).unwrap().1.clone();

        // 5. The grid worker logs in: the dashboard's reported share for
        // the grid went up by the two members.
        browser.goto("/login").await;
        browser.log_in(&worker, &password).await;
        let row = format!("#grid-reporting tr[data-area-id='{grid}']");
        let reported: i64 = browser.text(&format!("{row} td.reported")).await.parse().unwrap();
        assert_eq!(reported, before.reported + 2, "two more residents reported today");
        let share = browser.text(&format!("{row} td.reported-share")).await;
        let expected = format!("{:.1}%", (before.reported + 2) as f64 * 100.0 / before.residents as f64);
        assert_eq!(share, expected);
        browser.screenshot("dashboard-reported-360").await;
        browser.goto("/?measure=reported").await;
        browser.find("svg.map-svg a.map-area").await;

        // … and the fever task is on their phone page.
        browser.goto("/m/").await;
        let card = browser.find(&format!("#task-{}", task.id)).await;
        let text = card.text().await.unwrap();
        assert!(text.contains("发热人员跟进") && text.contains(ROOM), "the fever task card: {text}");
        browser.screenshot("m-fever-task-360").await;
        // Its page says what the resident reported about that member.
        browser.goto(&format!("/m/tasks/{}", task.id)).await;
        let reported = browser.text("#task-reported").await;
        assert!(reported.contains("体温") && reported.contains("38.2 °C"), "{reported}");
        browser.screenshot("m-fever-task-page-360").await;

        // The door-to-door page of that household, for the next round.
        browser.goto(&format!("/m/households/{household}")).await;
        browser.find("#all-normal").await;
        browser.finish();
    })
    .await;
    eprintln!("self-service journey: setup {setup:.1?}, total {:.1?}", started.elapsed());
}
