//! The staff HTML pages over plain HTTP: areas, households, residents
//! (search, details, edit, unmask) and accounts. Each page for the right
//! user, scope as 404 pages, forms with errors next to their field in the
//! visitor's language, and no external resources anywhere.

use epigrid_service::Actor;
use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, LOCATION};

use crate::support::{ADMIN, App, MEDIC, VOLUNTEER, WORKER_A, form_body, new_resident, post_form};

/// A logged-in client that does not follow redirects, to see them.
async fn no_redirect(app: &App, username: &str) -> reqwest::Client {
    app.login_no_redirect(username).await
}

async fn page(client: &reqwest::Client, app: &App, path: &str) -> (StatusCode, String) {
    let response = client.get(app.url(path)).send().await.unwrap();
    let status = response.status();
    (status, response.text().await.unwrap())
}

/// A resident as the JSON API returns them, to check what was saved.
async fn api_resident(app: &App, id: uuid::Uuid) -> serde_json::Value {
    let admin = app.login(ADMIN).await;
    admin
        .get(app.url(&format!("/api/v1/residents/{id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The edit form of 王秀英 as the page fills it, with `changes` applied.
fn wang_form<'a>(changes: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut pairs = vec![
        ("name", "王秀英"),
        ("id_number", ""),
        ("phone", ""),
        ("sex", "female"),
        ("birth_date", "1949-12-31"),
        ("relation", "head"),
        ("arrived_on", ""),
        ("origin", ""),
        ("tags", "aged_80_plus"),
        ("tags", "elderly_alone"),
    ];
    for (key, value) in changes {
        match pairs.iter_mut().find(|(k, _)| k == key && *k != "tags") {
            Some(pair) => pair.1 = value,
            None => pairs.push((key, value)),
        }
    }
    pairs
}

#[tokio::test]
async fn a_community_page_lists_its_grids_staff_and_links_to_its_dashboard() {
    let app = App::spawn().await;
    let admin = app.login(ADMIN).await;
    let s = app.seed;
    let (status, html) = page(&admin, &app, &format!("/areas/{}", s.community)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("黄河社区"), "{html}");
    assert!(html.contains(r#"<ul id="children""#), "{html}");
    for grid in [s.grid_a, s.grid_b] {
        assert!(html.contains(&format!(r#"<a class="area-link" href="/areas/{grid}">"#)), "{html}");
    }
    assert!(html.contains(&format!(r#"href="/areas/{}""#, s.sub_district)), "breadcrumb up");
    assert!(html.contains(&format!(r#"href="/?area={}""#, s.community)), "dashboard link");
    assert!(html.contains(r#"<section class="card" id="staff""#), "{html}");
    assert!(html.contains("medic") && html.contains("医务人员"), "community staff: {html}");

    let (status, grid) = page(&admin, &app, &format!("/areas/{}", s.grid_a)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(grid.contains(r#"id="staff""#) && grid.contains("worker_a") && grid.contains("网格员"));
    assert!(grid.contains("1号楼"), "the grid's building");
}

#[tokio::test]
async fn staff_phones_are_tel_links() {
    let app = App::spawn().await;
    let admin = app.login(ADMIN).await;
    let worker_a = app
        .service
        .list_users(&Actor::system(), None, 50)
        .await
        .unwrap()
        .items
        .into_iter()
        .find(|u| u.username == WORKER_A)
        .unwrap();
    app.service
        .update_user(
            &Actor::system(),
            worker_a.id,
            epigrid_service::accounts::UserChanges {
                phone: Some("13700001111".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let (_, html) = page(&admin, &app, &format!("/areas/{}", app.seed.grid_a)).await;
    assert!(html.contains(r#"href="tel:13700001111""#), "{html}");
}

#[tokio::test]
async fn a_building_lists_units_and_their_households_and_a_unit_its_households() {
    let app = App::spawn().await;
    let worker_b = app.login(crate::support::WORKER_B).await;
    let s = app.seed;
    let (status, html) = page(&worker_b, &app, &format!("/areas/{}", s.building_b)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains(&format!(r#"<a class="area-link" href="/areas/{}">"#, s.unit_b)),
        "{html}"
    );
    let household_link =
        format!(r#"<a class="household-link" href="/households/{}">101</a>"#, s.household_b);
    assert!(html.contains(&household_link), "{html}");
    assert!(!html.contains(r#"id="staff""#), "no staff section for a building");

    let (status, unit) = page(&worker_b, &app, &format!("/areas/{}", s.unit_b)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(unit.contains(r#"<ul id="children""#) && unit.contains(&household_link), "{unit}");
    // The worker's breadcrumbs start at their grid.
    assert!(unit.contains(&format!(r#"href="/areas/{}""#, s.grid_b)));
    assert!(!unit.contains(&format!(r#"href="/areas/{}""#, s.community)), "above the scope");
}

#[tokio::test]
async fn a_volunteer_sees_areas_but_no_households_or_residents() {
    let app = App::spawn().await;
    let volunteer = app.login(VOLUNTEER).await;
    let s = app.seed;
    let (status, html) = page(&volunteer, &app, &format!("/areas/{}", s.building_b)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!html.contains("household-link"), "{html}");
    let (status, _) = page(&volunteer, &app, "/residents").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = page(&volunteer, &app, &format!("/households/{}", s.household_b)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_grid_worker_gets_404_pages_for_the_other_grid() {
    let app = App::spawn().await;
    let worker = app.login(WORKER_A).await;
    let s = app.seed;
    for path in [
        format!("/areas/{}", s.community),
        format!("/areas/{}", s.grid_b),
        format!("/areas/{}", s.building_b),
        format!("/areas/{}", s.unit_b),
        format!("/households/{}", s.household_b),
        format!("/residents/{}", s.resident_b),
        format!("/residents/{}/edit", s.resident_b),
        "/areas/not-a-uuid".to_owned(),
    ] {
        let (status, html) = page(&worker, &app, &path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(html.contains("未找到，或不在您的管辖范围内"), "{path}: a full page: {html}");
        assert!(html.contains("<html"), "{path}");
    }
    let response =
        post_form(&worker, &app, &format!("/residents/{}/edit", s.resident_b), &[]).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    // Their own grid answers.
    for path in [format!("/areas/{}", s.grid_a), format!("/households/{}", s.household_a)] {
        assert_eq!(page(&worker, &app, &path).await.0, StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn a_household_page_lists_members_with_masked_numbers() {
    let app = App::spawn().await;
    let admin = app.login(ADMIN).await;
    let s = app.seed;
    let (status, html) = page(&admin, &app, &format!("/households/{}", s.household_a)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(r#"<table id="members""#), "{html}");
    assert!(html.contains(&format!(
        r#"<a class="resident-link" href="/residents/{}">王秀英</a>"#,
        s.resident_a
    )));
    assert!(html.contains("张伟"));
    assert!(html.contains("110105********002X") && html.contains("138****8000"));
    assert!(!html.contains("11010519491231002X") && !html.contains("13800138000"));
    assert!(html.contains("户主") && html.contains("孙子女/外孙子女"), "relations translated");
    assert!(html.contains("80岁以上老人") && html.contains("独居老人"), "tags translated");
    assert!(html.contains("101室"));
    assert!(html.contains(&format!(r#"href="/areas/{}""#, s.grid_a)), "breadcrumbs to the grid");
    // The head of the household comes first.
    assert!(html.find("王秀英").unwrap() < html.find("张伟").unwrap());
}

#[tokio::test]
async fn residents_are_searched_by_name_tag_and_area_with_links() {
    let app = App::spawn().await;
    let admin = app.login(ADMIN).await;
    let s = app.seed;
    let (status, html) = page(&admin, &app, "/residents?name=%E7%8E%8B").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(r#"<table id="results" class="stack">"#), "{html}");
    assert!(html.contains(r#"<tr class="resident-row">"#));
    assert!(html.contains(&format!(
        r#"<a class="resident-link" href="/residents/{}">王秀英</a>"#,
        s.resident_a
    )));
    assert!(html.contains(&format!(r#"href="/households/{}""#, s.household_a)), "household link");
    assert!(html.contains("110105********002X") && !html.contains("李建国"));
    assert!(html.contains(r#"<input id="search-name" name="name" value="王""#), "kept: {html}");
    assert!(html.contains(r#"method="post" action="/residents/search""#), "ID searches are POSTed");

    let (_, tagged) = page(&admin, &app, "/residents?tag=aged_80_plus").await;
    assert!(tagged.contains("王秀英") && !tagged.contains("张伟"));
    let (_, in_b) = page(&admin, &app, &format!("/residents?area={}", s.grid_b)).await;
    assert!(in_b.contains("李建国") && !in_b.contains("王秀英"));
    assert!(in_b.contains(&format!(r#"<option value="{}" selected>"#, s.grid_b)), "area kept");
}

#[tokio::test]
async fn residents_are_found_by_id_number_and_phone_through_a_post() {
    let app = App::spawn().await;
    let admin = app.login(ADMIN).await;
    let found =
        post_form(&admin, &app, "/residents/search", &[("id_number", "11010519491231002x")]).await;
    assert_eq!(found.status(), StatusCode::OK);
    let html = found.text().await.unwrap();
    assert!(html.contains("resident-link") && html.contains("王秀英") && !html.contains("李建国"));
    let by_phone = post_form(&admin, &app, "/residents/search", &[("phone", "13912345678")]).await;
    let html = by_phone.text().await.unwrap();
    assert!(html.contains("李建国") && !html.contains("王秀英"));
}

#[tokio::test]
async fn a_malformed_id_number_in_the_search_is_shown_next_to_its_field() {
    let app = App::spawn().await;
    let admin = app.login(ADMIN).await;
    let response =
        post_form(&admin, &app, "/residents/search", &[("id_number", "110101202311012171")]).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.unwrap();
    assert!(
        html.contains(r#"<p class="field-error" id="id_number-error">身份证号码校验位不正确</p>"#),
        "{html}"
    );
    assert!(html.contains(r#"aria-invalid="true" aria-describedby="id_number-error""#));
    let phone = post_form(&admin, &app, "/residents/search", &[("phone", "12345")]).await;
    assert_eq!(phone.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(phone.text().await.unwrap().contains(r#"id="phone-error""#));
}

#[tokio::test]
async fn search_results_page_on_with_a_cursor_link() {
    let app = App::spawn().await;
    let system = Actor::system();
    for i in 0..60 {
        let mut r = new_resident(app.seed.household_a, &format!("赵{i:02}"));
        r.relation = epigrid_domain::Relation::Other;
        r.sex = Some(epigrid_domain::Sex::Male);
        r.birth_date = epigrid_service::chrono::NaiveDate::from_ymd_opt(1990, 1, 1);
        app.service.create_resident(&system, r).await.unwrap();
    }
    let admin = app.login(ADMIN).await;
    let (_, first) = page(&admin, &app, "/residents?name=%E8%B5%B5").await;
    let rows = first.matches(r#"<tr class="resident-row">"#).count();
    assert_eq!(rows, 50, "a page of 50");
    let start = first.find(r#"id="next-page" rel="next" href=""#).expect("a next link");
    let href = &first[start + r#"id="next-page" rel="next" href=""#.len()..];
    let href = href[..href.find('"').unwrap()].replace("&#38;", "&").replace("&amp;", "&");
    assert!(href.starts_with("/residents?") && href.contains("cursor="), "{href}");
    assert!(href.contains("name="), "filters travel with the cursor: {href}");
    let (status, second) = page(&admin, &app, &href).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(second.matches(r#"<tr class="resident-row">"#).count(), 10);
    assert!(first.contains(">赵00<") && !second.contains(">赵00<"), "no resident twice");
    assert!(second.contains(">赵59<") && !second.contains(r#"id="next-page""#));
}

#[tokio::test]
async fn resident_details_show_masked_numbers_household_and_edit_link() {
    let app = App::spawn().await;
    let s = app.seed;
    let worker = app.login(WORKER_A).await;
    let (status, html) = page(&worker, &app, &format!("/residents/{}", s.resident_a)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("110105********002X") && html.contains("138****8000"));
    assert!(!html.contains("11010519491231002X"));
    assert!(html.contains("1949-12-31") && html.contains("户籍人口"));
    assert!(html.contains(&format!(r#"href="/residents/{}/edit""#, s.resident_a)), "edit link");
    assert!(html.contains(&format!(r#"href="/households/{}""#, s.household_a)));
    assert!(html.contains("张伟"), "the other member");
    assert!(!html.contains("unmask-form"), "a grid worker may not unmask");

    let medic = app.login(MEDIC).await;
    let (status, html) = page(&medic, &app, &format!("/residents/{}", s.resident_a)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!html.contains("/edit\""), "no edit link for medical staff");
    let (status, _) = page(&medic, &app, &format!("/residents/{}/edit", s.resident_a)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn an_admin_unmasks_with_a_reason_and_the_answer_is_not_cached() {
    let app = App::spawn().await;
    let s = app.seed;
    let admin = app.login(ADMIN).await;
    let (_, html) = page(&admin, &app, &format!("/residents/{}", s.resident_a)).await;
    assert!(html.contains(r#"id="unmask-form""#) && html.contains(r#"id="unmask-reason""#));
    assert!(html.contains("上门核验身份"), "reasons translated");

    let path = format!("/residents/{}/unmask", s.resident_a);
    let response =
        post_form(&admin, &app, &path, &[("field", "id_number"), ("reason", "verify_identity")])
            .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
    let html = response.text().await.unwrap();
    assert!(html.contains("11010519491231002X"), "{html}");

    let no_reason = post_form(&admin, &app, &path, &[("field", "phone"), ("reason", "")]).await;
    assert_eq!(no_reason.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = no_reason.text().await.unwrap();
    assert!(html.contains(r#"id="unmask-reason-error""#) && !html.contains("13800138000"));

    let worker = app.login(WORKER_A).await;
    let refused =
        post_form(&worker, &app, &path, &[("field", "phone"), ("reason", "contact_resident")])
            .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(!refused.text().await.unwrap().contains("13800138000"));
}

#[tokio::test]
async fn the_edit_form_never_holds_clear_numbers() {
    let app = App::spawn().await;
    let worker = app.login(WORKER_A).await;
    let (status, html) =
        page(&worker, &app, &format!("/residents/{}/edit", app.seed.resident_a)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(r#"<form id="resident-form" method="post""#), "{html}");
    assert!(html.contains(r#"<input id="id_number" name="id_number" value="""#), "empty: {html}");
    assert!(html.contains(r#"placeholder="110105********002X""#));
    assert!(html.contains(r#"<button id="save" type="submit">"#));
    assert!(html.contains(r#"type="date" value="1949-12-31""#));
    assert!(
        html.contains(r#"value="aged_80_plus" checked"#) && html.contains(r#"value="disabled">"#)
    );
    assert!(!html.contains("11010519491231002X") && !html.contains("13800138000"));
    for field in
        ["name", "id_number", "phone", "sex", "birth_date", "relation", "arrived_on", "origin"]
    {
        assert!(html.contains(&format!(r#"<label for="{field}">"#)), "label for {field}");
    }
}

#[tokio::test]
async fn an_invalid_id_number_is_422_in_chinese_next_to_the_field_and_nothing_changes() {
    let app = App::spawn().await;
    let s = app.seed;
    let before = api_resident(&app, s.resident_a).await;
    let worker = app.login(WORKER_A).await;
    let path = format!("/residents/{}/edit", s.resident_a);
    let response = post_form(
        &worker,
        &app,
        &path,
        &wang_form(&[("name", "王秀兰"), ("id_number", "110101202311012171")]),
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.unwrap();
    let error = r#"<p class="field-error" id="id_number-error">身份证号码校验位不正确</p>"#;
    let input = html.find(r#"<input id="id_number""#).expect("the field");
    let message = html.find(error).expect("the message next to the field");
    assert!(message > input && message - input < 600, "right after the field");
    assert!(html.contains(r#"aria-invalid="true" aria-describedby="id_number-error""#));
    assert!(html.contains(r#"value="110101202311012171""#), "the input is kept");
    assert!(html.contains(r#"value="王秀兰""#), "every input is kept");
    assert_eq!(api_resident(&app, s.resident_a).await, before, "nothing changed");

    // The same in English for an English visitor.
    worker.get(app.url("/lang/en?next=/")).send().await.unwrap();
    let english =
        post_form(&worker, &app, &path, &wang_form(&[("id_number", "110101202311012171")])).await;
    assert_eq!(english.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = english.text().await.unwrap();
    assert!(html.contains(r#"id="id_number-error">"#) && !html.contains("身份证号码校验位不正确"));
    assert!(html.contains(r#"<html lang="en">"#));
}

#[tokio::test]
async fn other_field_errors_land_next_to_their_fields() {
    let app = App::spawn().await;
    let worker = app.login(WORKER_A).await;
    let path = format!("/residents/{}/edit", app.seed.resident_a);
    for (changes, field) in [
        (vec![("name", "  ")], "name"),
        (vec![("phone", "1234")], "phone"),
        (vec![("birth_date", "not a date")], "birth_date"),
        (vec![("birth_date", "1950-01-01")], "birth_date"),
        (vec![("floating", "1"), ("arrived_on", "2024-01-01")], "origin"),
        (vec![("floating", "1"), ("origin", "临沂")], "arrived_on"),
    ] {
        let response = post_form(&worker, &app, &path, &wang_form(&changes)).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{changes:?}");
        let html = response.text().await.unwrap();
        assert!(
            html.contains(&format!(r#"<p class="field-error" id="{field}-error">"#)),
            "{changes:?}: {html}"
        );
        assert!(html.contains(&format!(r#"aria-describedby="{field}-error""#)), "{changes:?}");
    }
}

#[tokio::test]
async fn a_valid_edit_redirects_with_a_notice_and_is_saved() {
    let app = App::spawn().await;
    let s = app.seed;
    let worker = no_redirect(&app, WORKER_A).await;
    let path = format!("/residents/{}/edit", s.resident_a);
    let response = post_form(
        &worker,
        &app,
        &path,
        &wang_form(&[
            ("name", "王秀兰"),
            ("phone", "13700001111"),
            ("relation", "parent"),
            ("floating", "1"),
            ("arrived_on", "2020-05-01"),
            ("origin", "山东省临沂市"),
            ("tags", "chronic_disease"),
        ]),
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = response.headers()[LOCATION].to_str().unwrap().to_owned();
    assert_eq!(location, format!("/residents/{}?saved=1", s.resident_a));
    let saved = api_resident(&app, s.resident_a).await;
    assert_eq!(saved["name"], "王秀兰");
    assert_eq!(saved["phone"], "137****1111");
    assert_eq!(saved["id_number"], "110105********002X", "an empty ID box keeps the number");
    assert_eq!(saved["relation"], "parent");
    assert_eq!(saved["residence"], "floating");
    assert_eq!(saved["arrived_on"], "2020-05-01");
    assert_eq!(
        saved["tags"],
        serde_json::json!(["aged_80_plus", "chronic_disease", "elderly_alone"])
    );

    let (status, html) = page(&worker, &app, &location).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(r#"<p class="notice""#) && html.contains("已保存"));
    assert!(
        html.contains("2020-05-01") && html.contains("山东省临沂市") && html.contains("流动人口")
    );

    // A new ID number re-derives sex and birth date.
    let response = post_form(
        &worker,
        &app,
        &path,
        &wang_form(&[("name", "王秀兰"), ("id_number", "440524188001010014")]),
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let saved = api_resident(&app, s.resident_a).await;
    assert_eq!(saved["sex"], "male");
    assert_eq!(saved["birth_date"], "1880-01-01");
}

#[tokio::test]
async fn an_unreadable_form_shows_the_form_again() {
    let app = App::spawn().await;
    let worker = app.login(WORKER_A).await;
    let response = worker
        .post(app.url(&format!("/residents/{}/edit", app.seed.resident_a)))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let html = response.text().await.unwrap();
    assert!(html.contains(r#"id="resident-form""#) && html.contains(r#"class="error""#), "{html}");
}

#[tokio::test]
async fn pages_speak_english_when_chosen() {
    let app = App::spawn().await;
    let admin = app.login(ADMIN).await;
    admin.get(app.url("/lang/en?next=/")).send().await.unwrap();
    let s = app.seed;
    for (path, english) in [
        (format!("/areas/{}", s.community), "Who looks after it"),
        (format!("/households/{}", s.household_a), "Grandchild"),
        ("/residents".to_owned(), "Find residents"),
        (format!("/residents/{}", s.resident_a), "Relation to head"),
        (format!("/residents/{}/edit", s.resident_a), "Leave empty to keep"),
        ("/accounts".to_owned(), "Grid worker"),
        ("/accounts/new".to_owned(), "Initial password"),
    ] {
        let (status, html) = page(&admin, &app, &path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(html.contains(english), "{path}: {html}");
        assert!(html.contains(r#"<html lang="en">"#), "{path}");
    }
    let (_, html) = page(&admin, &app, &format!("/households/{}", s.household_a)).await;
    assert!(html.contains("Aged 80+") && html.contains("Head"));
}

#[tokio::test]
async fn pages_without_a_session_redirect_to_the_login() {
    let app = App::spawn().await;
    let client =
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let s = app.seed;
    for path in [
        format!("/areas/{}", s.community),
        format!("/households/{}", s.household_a),
        "/residents?name=%E7%8E%8B".to_owned(),
        format!("/residents/{}", s.resident_a),
        format!("/residents/{}/edit", s.resident_a),
        "/accounts".to_owned(),
        "/accounts/new".to_owned(),
    ] {
        let response = client.get(app.url(&path)).send().await.unwrap();
        assert!(response.status().is_redirection(), "{path}: {}", response.status());
        let location = response.headers()[LOCATION].to_str().unwrap();
        let next: String = form_urlencoded::byte_serialize(path.as_bytes()).collect();
        assert_eq!(location, format!("/login?next={next}"), "{path}");
    }
    let response = client
        .post(app.url(&format!("/residents/{}/edit", s.resident_a)))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(&wang_form(&[("name", "X")])))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_redirection());
    assert_eq!(api_resident(&app, s.resident_a).await["name"], "王秀英");
}

#[tokio::test]
async fn account_pages_are_refused_to_a_grid_worker() {
    let app = App::spawn().await;
    let worker = app.login(WORKER_A).await;
    let admin_id = app
        .service
        .list_users(&Actor::system(), None, 50)
        .await
        .unwrap()
        .items
        .into_iter()
        .find(|u| u.username == ADMIN)
        .unwrap()
        .id;
    for path in
        ["/accounts".to_owned(), "/accounts/new".to_owned(), format!("/accounts/{admin_id}")]
    {
        let (status, html) = page(&worker, &app, &path).await;
        assert!(
            matches!(status, StatusCode::FORBIDDEN | StatusCode::NOT_FOUND),
            "{path}: {status}"
        );
        assert!(!html.contains("account-form"), "{path}");
    }
    let response = post_form(
        &worker,
        &app,
        "/accounts/new",
        &[("username", "sneaky"), ("display_name", "x"), ("role", "grid_worker")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let (_, home) = page(&worker, &app, "/residents").await;
    assert!(!home.contains(r#"href="/accounts""#), "no accounts link in the nav");
}

#[tokio::test]
async fn an_admin_lists_creates_changes_and_disables_accounts_through_the_forms() {
    let app = App::spawn().await;
    let s = app.seed;
    let admin = no_redirect(&app, ADMIN).await;
    let (status, list) = page(&admin, &app, "/accounts").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        list.contains("worker_a") && list.contains("网格员") && list.contains("第一网格"),
        "{list}"
    );
    assert!(list.contains(r#"class="account-link""#));

    let (status, form) = page(&admin, &app, "/accounts/new").await;
    assert_eq!(status, StatusCode::OK);
    assert!(form.contains(r#"id="account-form""#));
    for area in [s.sub_district, s.community, s.grid_a, s.grid_b] {
        assert!(form.contains(&format!(r#"<option value="{area}""#)), "scope choice {area}");
    }
    assert!(form.contains(r#"<option value="grid_worker""#) && form.contains("网格长"));

    let grid_a = s.grid_a.to_string();
    let community = s.community.to_string();
    let account = |username: &'static str, scope: &str, password: &'static str| {
        vec![
            ("username", username),
            ("display_name", "赵网格"),
            ("phone", "13600001234"),
            ("role", "grid_worker"),
            ("scope_area_id", scope),
            ("password", password),
        ]
        .into_iter()
        .map(|(k, v)| (k, v.to_owned()))
        .collect::<Vec<_>>()
    };
    let send = |pairs: Vec<(&'static str, String)>| {
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let body = form_body(&pairs);
        let admin = admin.clone();
        let url = app.url("/accounts/new");
        async move {
            admin
                .post(url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .unwrap()
        }
    };

    let bad_name = send(account("x", &grid_a, "long-enough-1")).await;
    assert_eq!(bad_name.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = bad_name.text().await.unwrap();
    assert!(html.contains(r#"<p class="field-error" id="username-error">用户名应为"#), "{html}");
    assert!(html.contains(r#"value="赵网格""#), "input kept");
    let wrong_level = send(account("worker_c", &community, "long-enough-1")).await;
    assert_eq!(wrong_level.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(wrong_level.text().await.unwrap().contains(r#"id="scope_area_id-error""#));
    let short = send(account("worker_c", &grid_a, "short")).await;
    assert!(short.text().await.unwrap().contains(r#"id="password-error""#));

    let created = send(account("worker_c", &grid_a, "long-enough-1")).await;
    assert_eq!(created.status(), StatusCode::SEE_OTHER);
    let location = created.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(
        location.starts_with("/accounts/") && location.ends_with("?saved=created"),
        "{location}"
    );
    app.login_as("worker_c", "long-enough-1").await;

    let (status, html) = page(&admin, &app, &location).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("账号已创建") && html.contains(r#"value="赵网格""#));
    assert!(html.contains("data-confirm=") && html.contains(r#"id="status-form""#));
    let account_path = location.split('?').next().unwrap().to_owned();

    let renamed = post_form(
        &admin,
        &app,
        &account_path,
        &[
            ("action", "profile"),
            ("display_name", "赵小网"),
            ("phone", ""),
            ("role", "grid_worker"),
            ("scope_area_id", &s.grid_b.to_string()),
        ],
    )
    .await;
    assert_eq!(renamed.status(), StatusCode::SEE_OTHER);
    let (_, html) = page(&admin, &app, &account_path).await;
    assert!(html.contains(r#"value="赵小网""#) && html.contains("第二网格"));

    let disabled = post_form(&admin, &app, &account_path, &[("action", "disable")]).await;
    assert_eq!(disabled.status(), StatusCode::SEE_OTHER);
    let refused = app
        .anonymous()
        .post(app.url("/api/v1/login"))
        .json(&serde_json::json!({ "username": "worker_c", "password": "long-enough-1" }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED, "a disabled account cannot log in");

    let reset =
        post_form(&admin, &app, &account_path, &[("action", "password"), ("password", "x")]).await;
    assert_eq!(reset.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(reset.text().await.unwrap().contains(r#"id="password-error">密码至少8位"#));
}

/// Every `src`, `href` and `action` attribute value in a page.
fn link_targets(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in ["src=\"", "href=\"", "action=\"", "src='", "href='"] {
        let mut rest = html;
        while let Some(at) = rest.find(attr) {
            rest = &rest[at + attr.len()..];
            let quote = attr.chars().last().unwrap();
            let end = rest.find(quote).unwrap_or(rest.len());
            out.push(rest[..end].to_owned());
        }
    }
    out
}

#[tokio::test]
async fn no_page_loads_anything_from_elsewhere() {
    let app = App::spawn().await;
    let s = app.seed;
    let admin = app.login(ADMIN).await;
    for path in [
        format!("/areas/{}", s.sub_district),
        format!("/areas/{}", s.community),
        format!("/areas/{}", s.grid_a),
        format!("/areas/{}", s.building_b),
        format!("/areas/{}", s.unit_b),
        format!("/households/{}", s.household_a),
        "/residents".to_owned(),
        format!("/residents/{}", s.resident_a),
        format!("/residents/{}/edit", s.resident_a),
        "/accounts".to_owned(),
        "/accounts/new".to_owned(),
        format!("/areas/{}", uuid::Uuid::nil()),
    ] {
        let (_, html) = page(&admin, &app, &path).await;
        let targets = link_targets(&html);
        assert!(!targets.is_empty(), "{path}");
        for target in targets {
            let lower = target.to_ascii_lowercase();
            assert!(
                !lower.starts_with("http:")
                    && !lower.starts_with("https:")
                    && !lower.starts_with("//"),
                "{path} links to {target}"
            );
        }
        assert!(!html.contains("http://") && !html.contains("https://"), "{path}");
    }
}
