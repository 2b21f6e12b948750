//! The resident self-service pages (`/s/{token}`), the printable QR sheets,
//! "who has not reported today", the dashboard's reported share and the
//! grid worker's door-to-door report, through HTML forms without script.

use epigrid_service::{Actor, Settings};
use reqwest::StatusCode;
use uuid::Uuid;

use crate::support::{ADMIN, App, WORKER_A, WORKER_B, form_body};

/// The building of household A (王秀英 ID …002X and 张伟, no ID number).
async fn building_a(app: &App) -> Uuid {
    let household =
        app.service.get_household(&Actor::system(), app.seed.household_a).await.unwrap();
    household.building_id.unwrap()
}

async fn token_a(app: &App) -> String {
    app.service.building_token(building_a(app).await)
}

/// The value of the input `name` inside the element with id `form`.
fn field(html: &str, form: &str, name: &str) -> String {
    let start = html.find(&format!("id=\"{form}\"")).unwrap_or_else(|| panic!("no #{form}"));
    let rest = &html[start..];
    let end = rest.find("</form>").unwrap_or(rest.len());
    let form_html = &rest[..end];
    let at = form_html
        .find(&format!("name=\"{name}\" value=\""))
        .unwrap_or_else(|| panic!("no {name} in #{form}"));
    let value = &form_html[at + name.len() + 15..];
    value[..value.find('"').unwrap()].to_owned()
}

/// The text of the element with `id`.
fn text_of(html: &str, id: &str) -> String {
    let start = html.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no #{id} in {html}"));
    let rest = &html[start..];
    let open = rest.find('>').unwrap() + 1;
    let close = rest[open..].find('<').unwrap();
    rest[open..open + close].trim().to_owned()
}

/// The index `i` of the health form's `m{i}` block of the member shown as `name`.
fn member(html: &str, name: &str) -> String {
    let at = html.find(&format!("<legend>{name}</legend>")).unwrap_or_else(|| panic!("no {name}"));
    let rest = &html[at..];
    let m = rest.find("name=\"m").unwrap() + 7;
    rest[m..m + rest[m..].find('"').unwrap()].to_owned()
}

async fn post(
    client: &reqwest::Client,
    app: &App,
    path: &str,
    pairs: &[(&str, &str)],
) -> (StatusCode, String) {
    let response = client
        .post(app.url(path))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(pairs))
        .send()
        .await
        .unwrap();
    (response.status(), response.text().await.unwrap())
}

async fn get(client: &reqwest::Client, app: &App, path: &str) -> (StatusCode, String) {
    let response = client.get(app.url(path)).send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

/// A phone that scanned building A's code and identified as 王秀英.
async fn identified(app: &App) -> (reqwest::Client, String) {
    let token = token_a(app).await;
    let phone = app.anonymous();
    let household = app.seed.household_a.to_string();
    let (status, html) = post(
        &phone,
        app,
        &format!("/s/{token}/identify"),
        &[("household_id", &household), ("name", "王秀英"), ("id_last4", "002x")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("每日健康填报"), "the menu after identifying: {html}");
    (phone, token)
}

async fn reports_a(app: &App) -> usize {
    app.service.household_reports(&Actor::system(), app.seed.household_a).await.unwrap().len()
}

#[tokio::test]
async fn a_resident_reports_through_the_forms_and_a_resubmission_is_not_doubled() {
    let app = App::spawn().await;
    let token = token_a(&app).await;
    let phone = app.anonymous();

    // The scanned page: the building and its households as labels, no names.
    let (status, html) = get(&phone, &app, &format!("/s/{token}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(text_of(&html, "building-name"), "1号楼");
    assert!(html.contains("1单元 101"), "the household label: {html}");
    assert!(!html.contains("王秀英") && !html.contains("张伟"), "no names before identifying");

    // Identify; the pass comes back as an HttpOnly, Strict cookie on /s/.
    let household = app.seed.household_a.to_string();
    let raw =
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let response = raw
        .post(app.url(&format!("/s/{token}/identify")))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(&[("household_id", &household), ("name", "王秀英"), ("id_last4", "002X")]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let cookie = response.headers()["set-cookie"].to_str().unwrap().to_owned();
    for part in ["epigrid_pass=", "Path=/s/", "HttpOnly", "SameSite=Strict", "Max-Age="] {
        assert!(cookie.contains(part), "{part} in {cookie}");
    }
    assert_eq!(response.headers()["location"], format!("/s/{token}/menu"));

    let (phone, token) = identified(&app).await;
    // Nobody has reported today yet: the menu says so for each member.
    let (_, menu) = get(&phone, &app, &format!("/s/{token}/menu")).await;
    assert_eq!(menu.matches("class=\"s-no\"").count(), 2, "{menu}");
    assert!(menu.contains("未报告") && !menu.contains("today-all"), "{menu}");
    let (status, html) = get(&phone, &app, &format!("/s/{token}/health")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("王*英") && html.contains("张*"), "members masked: {html}");
    assert!(!html.contains("王秀英"), "never a full name");
    assert!(html.contains("name=\"inc0\" value=\"1\" checked"), "everyone included: {html}");
    assert!(!html.contains("今天已报告"), "{html}");
    let key = field(&html, "health-form", "idempotency_key");
    let pass_token = field(&html, "health-form", "_s");
    let (m0, m1) = (field(&html, "health-form", "m0"), field(&html, "health-form", "m1"));
    let body = [
        ("_s", pass_token.as_str()),
        ("idempotency_key", key.as_str()),
        ("m0", m0.as_str()),
        ("inc0", "1"),
        ("t0", "36.6"),
        ("w0", "at_home"),
        ("m1", m1.as_str()),
        ("inc1", "1"),
        ("t1", "38.2"),
        ("s1", "cough"),
        ("w1", "at_home"),
    ];
    let (status, html) = post(&phone, &app, &format!("/s/{token}/health"), &body).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    let reference = text_of(&html, "reference");
    assert!(reference.starts_with("JK-"), "{reference}");
    assert!(html.contains("提交成功"), "{html}");
    // A fever: what to do now, and by when the grid worker will call.
    assert!(html.contains("请居家休息、佩戴口罩") && html.contains("请立即拨打 120"), "{html}");
    assert!(html.contains("网格员将在") && html.contains("前与您联系"), "{html}");
    // Both members reported: the menu marks them, and thanks the family.
    let (_, menu) = get(&phone, &app, &format!("/s/{token}/menu")).await;
    assert_eq!(menu.matches("class=\"s-yes\"").count(), 2, "{menu}");
    assert!(menu.contains("✓ 已报告") && menu.contains("全家今天都已报告"), "{menu}");
    // A relative opening the form now finds both marked and left out.
    let (_, form) = get(&phone, &app, &format!("/s/{token}/health")).await;
    assert_eq!(form.matches("今天已报告，如需更新请勾选").count(), 2, "{form}");
    assert!(!form.contains("name=\"inc0\" value=\"1\" checked"), "{form}");
    assert!(!form.contains("name=\"inc1\" value=\"1\" checked"), "{form}");

    // The same form again (a double tap, a retry): the same reference, once.
    let (status, again) = post(&phone, &app, &format!("/s/{token}/health"), &body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(text_of(&again, "reference"), reference);
    assert!(again.contains("未重复登记"), "{again}");
    // … and as the script sends it.
    let json: serde_json::Value = phone
        .post(app.url(&format!("/s/{token}/health")))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/json")
        .body(form_body(&body))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(json["reference"], reference.as_str());
    assert_eq!(json["replayed"], true);
    let next = json["next"].as_array().expect("the script shows what to expect");
    assert_eq!(next.len(), 2, "{json}");
    assert!(next[1].as_str().unwrap().starts_with("网格员将在"), "{json}");
    assert_eq!(reports_a(&app).await, 1, "one report for three submissions");

    // "Everyone normal" is its own form with its own key.
    let (_, html) = get(&phone, &app, &format!("/s/{token}/health")).await;
    let normal = [
        ("_s", field(&html, "normal-form", "_s")),
        ("idempotency_key", field(&html, "normal-form", "idempotency_key")),
        ("all_normal", "1".to_owned()),
    ];
    let normal: Vec<(&str, &str)> = normal.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, html) = post(&phone, &app, &format!("/s/{token}/health"), &normal).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert_ne!(text_of(&html, "reference"), reference);
    assert!(!html.contains("class=\"s-next\""), "nothing follows an all-normal report: {html}");
    assert_eq!(reports_a(&app).await, 2);

    // The other three forms.
    for (kind, extra) in [
        ("arrival", vec![("origin", "420000"), ("travel", "train")]),
        ("help", vec![("kind", "medicine"), ("urgency", "soon"), ("note", "降压药")]),
        ("volunteer", vec![("skills", "delivery"), ("availability", "weekend")]),
    ] {
        let (status, html) = get(&phone, &app, &format!("/s/{token}/{kind}")).await;
        assert_eq!(status, StatusCode::OK, "{kind}");
        let form = format!("{kind}-form");
        let mut pairs = vec![
            ("_s".to_owned(), field(&html, &form, "_s")),
            ("idempotency_key".to_owned(), field(&html, &form, "idempotency_key")),
            ("resident_id".to_owned(), app.seed.resident_a.to_string()),
        ];
        if kind == "arrival" {
            pairs.push(("arrived_on".into(), app.service.today().format("%Y-%m-%d").to_string()));
        }
        pairs.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let pairs: Vec<(&str, &str)> =
            pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let (status, html) = post(&phone, &app, &format!("/s/{token}/{kind}"), &pairs).await;
        assert_eq!(status, StatusCode::OK, "{kind}: {html}");
        let prefix = match kind {
            "arrival" => "FH-",
            "help" => "QZ-",
            _ => "ZY-",
        };
        assert!(text_of(&html, "reference").starts_with(prefix), "{kind}");
    }
    assert_eq!(reports_a(&app).await, 5);
}

#[tokio::test]
async fn bad_input_gets_a_clear_chinese_message_and_nothing_is_stored() {
    let app = App::spawn().await;
    let token = token_a(&app).await;
    let household = app.seed.household_a.to_string();
    let phone = app.anonymous();
    let identify = |name: &'static str, digits: &'static str, household: String| {
        let phone = phone.clone();
        let path = format!("/s/{token}/identify");
        let app = &app;
        async move {
            post(
                &phone,
                app,
                &path,
                &[("household_id", &household), ("name", name), ("id_last4", digits)],
            )
            .await
        }
    };
    for (name, digits, household, message) in [
        ("王秀兰", "002X", household.clone(), "姓名或身份证号后四位与登记信息不符"),
        ("王秀英", "0021", household.clone(), "姓名或身份证号后四位与登记信息不符"),
        ("王秀英", "002X", Uuid::now_v7().to_string(), "户：未找到该户，请重新选择房号"),
        ("", "002X", household.clone(), "姓名：请填写姓名"),
        ("王秀英", "12", household.clone(), "身份证号后四位：请填写4位"),
    ] {
        let (status, html) = identify(name, digits, household).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{name} {digits}");
        assert!(text_of(&html, "form-error").contains(message), "{message}: {html}");
        assert!(!html.contains("name=\"id_last4\" value"), "the digits typed are not echoed");
    }
    // An unknown building token.
    let (status, html) =
        get(&phone, &app, "/s/00112233445566778899aabbccddeeff00112233445566778899").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(html.contains("二维码无效"), "{html}");

    let (phone, token) = identified(&app).await;
    let (_, html) = get(&phone, &app, &format!("/s/{token}/health")).await;
    let pass_token = field(&html, "health-form", "_s");
    let key = field(&html, "health-form", "idempotency_key");
    let i = member(&html, "王*英");
    let (mi, ti, wi, inci) = (format!("m{i}"), format!("t{i}"), format!("w{i}"), format!("inc{i}"));
    let m0 = field(&html, "health-form", &mi);
    for (temperature, message) in
        [("45", "体温：数值不在合理范围内"), ("abc", "体温：请填写数字"), ("", "体温：请填写体温")]
    {
        let (status, html) = post(
            &phone,
            &app,
            &format!("/s/{token}/health"),
            &[
                ("_s", &pass_token),
                ("idempotency_key", &key),
                (&mi, &m0),
                (&inci, "1"),
                (&ti, temperature),
                (&wi, "at_home"),
            ],
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{temperature:?}");
        let error = text_of(&html, "form-error");
        assert!(
            error.starts_with("王*英：") && error.contains(message),
            "{temperature:?}: {error}"
        );
        // The form comes back with what was typed and the same key.
        assert_eq!(field(&html, "health-form", "idempotency_key"), key);
    }
    // A missing field of another form.
    let (_, html) = get(&phone, &app, &format!("/s/{token}/arrival")).await;
    let (status, html) = post(
        &phone,
        &app,
        &format!("/s/{token}/arrival"),
        &[
            ("_s", &field(&html, "arrival-form", "_s")),
            ("idempotency_key", &field(&html, "arrival-form", "idempotency_key")),
            ("resident_id", &app.seed.resident_a.to_string()),
            ("arrived_on", "2026-01-01"),
            ("travel", "train"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(text_of(&html, "form-error").contains("来源地"), "{html}");
    // Without the pass-bound token: refused.
    let (status, _) = post(
        &phone,
        &app,
        &format!("/s/{token}/health"),
        &[("idempotency_key", &key), (&mi, &m0), (&inci, "1"), (&ti, "36.5"), (&wi, "at_home")],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(reports_a(&app).await, 0, "nothing stored from bad input");

    // Without a pass the forms lead back to the building's page.
    let (status, html) = get(&app.anonymous(), &app, &format!("/s/{token}/health")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("identify-form"), "back to identification");
}

#[tokio::test]
async fn repeated_failures_are_refused_for_some_minutes() {
    let app = App::spawn().await;
    let token = token_a(&app).await;
    let household = app.seed.household_a.to_string();
    let phone = app.anonymous();
    let path = format!("/s/{token}/identify");
    for _ in 0..5 {
        let (status, _) = post(
            &phone,
            &app,
            &path,
            &[("household_id", &household), ("name", "王秀英"), ("id_last4", "9999")],
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    }
    // Now even the right digits wait.
    let (status, html) = post(
        &phone,
        &app,
        &path,
        &[("household_id", &household), ("name", "王秀英"), ("id_last4", "002X")],
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let message = text_of(&html, "form-error");
    assert!(message.contains("分钟后再试"), "{message}");
    assert!(message.contains("15") || message.contains("14"), "the minutes named: {message}");
}

#[tokio::test]
async fn qr_sheets_carry_the_self_service_address_for_staff_in_scope() {
    let app = App::spawn().await;
    let building = building_a(&app).await;
    let url = app.url(&format!("/s/{}", app.service.building_token(building)));
    let admin = app.login(ADMIN).await;
    let (status, html) = get(&admin, &app, &format!("/areas/{building}/qr")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(&url), "the address printed: {url}");
    let svg = epigrid_web::pages::qr::qr_svg(&url).unwrap();
    assert!(svg.starts_with("<svg") && html.contains(&svg), "the code of exactly that address");
    assert!(html.contains("扫码填报每日健康状况"));
    assert_eq!(html.matches("class=\"qr-sheet\"").count(), 1);

    // A community: every building, one page each.
    let (status, html) = get(&admin, &app, &format!("/areas/{}/qr", app.seed.community)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(html.matches("class=\"qr-sheet\"").count(), 2, "two buildings");
    // The area page links to it.
    let (_, area) = get(&admin, &app, &format!("/areas/{building}")).await;
    assert!(area.contains(&format!("href=\"/areas/{building}/qr\"")));

    // Out of scope: as if it did not exist.
    let worker_b = app.login(WORKER_B).await;
    let (status, _) = get(&worker_b, &app, &format!("/areas/{building}/qr")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let worker_a = app.login(WORKER_A).await;
    let (status, _) = get(&worker_a, &app, &format!("/areas/{building}/qr")).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn qr_sheets_use_the_configured_public_address() {
    let settings = Settings {
        public_base_url: Some("https://epigrid.example.cn".into()),
        ..Settings::default()
    };
    let app = App::spawn_with(settings).await;
    let building = building_a(&app).await;
    let admin = app.login(ADMIN).await;
    let (_, html) = get(&admin, &app, &format!("/areas/{building}/qr")).await;
    let url = format!("https://epigrid.example.cn/s/{}", app.service.building_token(building));
    assert!(html.contains(&epigrid_web::pages::qr::qr_svg(&url).unwrap()));
}

#[tokio::test]
async fn who_has_not_reported_and_the_dashboard_share_follow_the_reports() {
    let app = App::spawn().await;
    let grid = app.seed.grid_a;
    let worker = app.login(WORKER_A).await;
    let (status, html) = get(&worker, &app, &format!("/grids/{grid}/unreported")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(text_of(&html, "reported-share"), "0.0%");
    assert_eq!(html.matches("class=\"unreported-row\"").count(), 2, "{html}");
    assert!(html.contains("王*英") && !html.contains("王秀英"), "names masked");
    assert!(html.contains("1号楼 1单元 101"), "the household");
    assert!(html.contains(&format!("/residents/{}", app.seed.resident_a)));
    assert!(
        html.contains(&format!("href=\"/m/households/{}\"", app.seed.household_a)),
        "a grid worker can report at the door from the list"
    );
    let (_, dashboard) = get(&worker, &app, "/").await;
    let row = &dashboard[dashboard.find("class=\"grid-reporting-row\"").unwrap()..];
    assert!(row.contains(&format!("data-area-id=\"{grid}\"")));
    assert!(row[..row.find("</tr>").unwrap()].contains("0.0%"));

    // A resident reports for 王秀英 only.
    let (phone, token) = identified(&app).await;
    let (_, html) = get(&phone, &app, &format!("/s/{token}/health")).await;
    let (status, _) = post(
        &phone,
        &app,
        &format!("/s/{token}/health"),
        &[
            ("_s", &field(&html, "health-form", "_s")),
            ("idempotency_key", &field(&html, "health-form", "idempotency_key")),
            ("m0", &field(&html, "health-form", "m0")),
            ("inc0", "1"),
            ("t0", "36.4"),
            ("w0", "at_home"),
            // The other member's block, not ticked: not reported.
            ("m1", &field(&html, "health-form", "m1")),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, html) = get(&worker, &app, &format!("/grids/{grid}/unreported")).await;
    assert_eq!(text_of(&html, "reported-share"), "50.0%");
    assert_eq!(html.matches("class=\"unreported-row\"").count(), 1);
    let (_, dashboard) = get(&worker, &app, "/?measure=reported").await;
    let row = &dashboard[dashboard.find("class=\"grid-reporting-row\"").unwrap()..];
    assert!(row[..row.find("</tr>").unwrap()].contains("50.0%"), "{row}");
    assert!(dashboard.contains("今日已填报 50.0%"), "the map's hover text");
    let cell = |row: &str, class: &str| {
        let at = row.find(&format!("<td class=\"inline {class}")).unwrap();
        let text = &row[at..];
        text[text.find('>').unwrap() + 1..text.find("</td>").unwrap()].to_owned()
    };
    assert_eq!((cell(row, "flagged"), cell(row, "help")), ("0".to_owned(), "0".to_owned()));

    // A request for help, and a fever: the day's columns count them, the
    // fever in red.
    let (_, html) = get(&phone, &app, &format!("/s/{token}/help")).await;
    let help = [
        ("_s", field(&html, "help-form", "_s")),
        ("idempotency_key", field(&html, "help-form", "idempotency_key")),
        ("resident_id", app.seed.resident_a.to_string()),
        ("kind", "food".to_owned()),
        ("urgency", "soon".to_owned()),
    ];
    let help: Vec<(&str, &str)> = help.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, _) = post(&phone, &app, &format!("/s/{token}/help"), &help).await;
    assert_eq!(status, StatusCode::OK);
    let (_, html) = get(&phone, &app, &format!("/s/{token}/health")).await;
    let fever = [
        ("_s", field(&html, "health-form", "_s")),
        ("idempotency_key", field(&html, "health-form", "idempotency_key")),
        ("m1", field(&html, "health-form", "m1")),
        ("inc1", "1".to_owned()),
        ("t1", "38.4".to_owned()),
        ("w1", "at_home".to_owned()),
    ];
    let fever: Vec<(&str, &str)> = fever.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, _) = post(&phone, &app, &format!("/s/{token}/health"), &fever).await;
    assert_eq!(status, StatusCode::OK);
    let (_, dashboard) = get(&worker, &app, "/").await;
    let row = &dashboard[dashboard.find("class=\"grid-reporting-row\"").unwrap()..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert_eq!(
        (cell(row, "flagged"), cell(row, "help")),
        ("1".to_owned(), "1".to_owned()),
        "{row}"
    );
    assert!(row.contains("class=\"inline flagged alert\""), "{row}");
    // …and the map can show where: a measure of its own.
    let (_, map) = get(&worker, &app, "/?measure=flagged").await;
    assert!(map.contains("今日发热或有症状 1 人次"), "the map's hover text");
    assert!(map.contains("id=\"measure-flagged\" aria-current=\"true\""), "the tab chosen");

    // Out of scope: 404.
    let worker_b = app.login(WORKER_B).await;
    let (status, _) = get(&worker_b, &app, &format!("/grids/{grid}/unreported")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_grid_worker_reports_a_whole_household_normal_at_the_door() {
    let app = App::spawn().await;
    let worker = app.login(WORKER_A).await;
    let path = format!("/m/households/{}", app.seed.household_a);
    let (status, html) = get(&worker, &app, &path).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("全户正常") && html.contains("王秀英"));
    assert_eq!(text_of(&html, "reported-today"), "今天已报告 0 / 2 人");
    let key = field(&html, "whole-normal", "idempotency_key");
    let body = [("idempotency_key", key.as_str()), ("whole_household_normal", "1")];
    let (status, html) = post(&worker, &app, &path, &body).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    let notice = text_of(&html, "health-notice");
    assert!(notice.contains("JK-"), "{notice}");
    let (_, again) = post(&worker, &app, &path, &body).await;
    assert_eq!(text_of(&again, "health-notice"), notice, "the same reference");
    // The page now marks the household's members as reported.
    let (_, page) = get(&worker, &app, &path).await;
    assert_eq!(text_of(&page, "reported-today"), "今天已报告 2 / 2 人");
    assert_eq!(page.matches("class=\"m-reported-mark\"").count(), 2, "{page}");
    assert_eq!(reports_a(&app).await, 1);
    let (_, list) = get(&worker, &app, &format!("/grids/{}/unreported", app.seed.grid_a)).await;
    assert_eq!(text_of(&list, "reported-share"), "100.0%");

    // One person with a bad temperature: a clear message, nothing stored.
    let (status, html) = post(
        &worker,
        &app,
        &path,
        &[
            ("idempotency_key", "k-bad-temperature-1"),
            ("resident_id", &app.seed.resident_a.to_string()),
            ("temperature", "abc"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(text_of(&html, "health-error").contains("体温：请填写数字"));
    assert_eq!(reports_a(&app).await, 1);

    let worker_b = app.login(WORKER_B).await;
    let (status, _) = get(&worker_b, &app, &path).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn one_address_sending_too_fast_is_asked_to_wait() {
    let mut settings = Settings::default();
    settings.intake.public.rate_per_client = 1;
    settings.intake.public.burst_per_client = 3;
    let app = App::spawn_with(settings).await;
    let token = token_a(&app).await;
    let phone = app.anonymous();
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let response = phone.get(app.url(&format!("/s/{token}"))).send().await.unwrap();
        let status = response.status();
        if status == StatusCode::TOO_MANY_REQUESTS {
            let wait: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
            assert!(wait >= 1);
            assert!(response.text().await.unwrap().contains("操作过于频繁"));
        }
        statuses.push(status);
    }
    assert_eq!(&statuses[..3], [StatusCode::OK; 3], "the burst passes");
    assert_eq!(statuses[4], StatusCode::TOO_MANY_REQUESTS, "{statuses:?}");
    // The script's request gets JSON it can retry.
    let response = phone
        .post(app.url(&format!("/s/{token}/health")))
        .header("accept", "application/json")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("idempotency_key=k-too-fast-0001")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key("retry-after"));
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "intake.rate_limited");
}

#[tokio::test]
async fn the_script_is_told_to_identify_again_when_the_pass_is_gone() {
    let app = App::spawn().await;
    let token = token_a(&app).await;
    let response = app
        .anonymous()
        .post(app.url(&format!("/s/{token}/health")))
        .header("accept", "application/json")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("idempotency_key=k-no-pass-00001&all_normal=1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["location"], format!("/s/{token}"));
    assert_eq!(body["error"]["message"], "身份验证已失效，请重新验证身份");
    assert_eq!(reports_a(&app).await, 0);
}

#[tokio::test]
async fn a_staff_phone_with_a_session_can_use_the_resident_pages_too() {
    let app = App::spawn().await;
    let token = token_a(&app).await;
    let session = app.session(WORKER_A, crate::support::PASSWORD).await;
    // A browser: the session cookie, no CSRF header; the forms carry it.
    let phone = session.client(None, true);
    let (_, html) = get(&phone, &app, &format!("/s/{token}")).await;
    let csrf = field(&html, "identify-form", "_csrf");
    assert_eq!(csrf, session.csrf, "the session's token in the form");
    let household = app.seed.household_a.to_string();
    let identify = [("household_id", household.as_str()), ("name", "王秀英"), ("id_last4", "002X")];
    let (status, _) = post(&phone, &app, &format!("/s/{token}/identify"), &identify).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a cookie-carrying post without the token");
    let mut with_token = identify.to_vec();
    with_token.push(("_csrf", &csrf));
    let (status, html) = post(&phone, &app, &format!("/s/{token}/identify"), &with_token).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("menu-health"));
}

#[tokio::test]
async fn the_resident_pages_switch_to_english() {
    let app = App::spawn().await;
    let token = token_a(&app).await;
    let phone = app.anonymous();
    let (_, html) = get(&phone, &app, &format!("/s/{token}")).await;
    assert!(html.contains("身份验证") && html.contains(&format!("/lang/en?next=%2Fs%2F{token}")));
    let (status, html) = get(&phone, &app, &format!("/lang/en?next=%2Fs%2F{token}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<html lang=\"en\">") && html.contains("Identify yourself"), "{html}");
    // Errors too.
    let household = app.seed.household_a.to_string();
    let (_, html) = post(
        &phone,
        &app,
        &format!("/s/{token}/identify"),
        &[("household_id", &household), ("name", "王秀英"), ("id_last4", "0000")],
    )
    .await;
    assert!(!text_of(&html, "form-error").contains("姓名"), "{html}");
}
