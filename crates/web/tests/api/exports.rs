//! Exports over HTTP: the JSON API's downloads (masked GET, unmasked POST
//! with a reason), their headers (RFC 5987 file names, no-store), scope and
//! permission answers, and the exports page's form with its CSRF token.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{ADMIN, App, MEDIC, VOLUNTEER, WORKER_A, post_form};

const BOM: &[u8] = b"\xEF\xBB\xBF";

#[tokio::test]
async fn masked_csv_download_has_bom_headers_and_no_clear_values() {
    let app = App::spawn().await;
    let admin = app.login(ADMIN).await;
    let url = format!("/api/v1/exports/residents?area_id={}&format=csv", app.seed.community);
    let response = admin.get(app.url(&url)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "text/csv; charset=utf-8");
    assert_eq!(headers["cache-control"], "no-store");
    let disposition = headers["content-disposition"].to_str().unwrap();
    assert!(disposition.starts_with("attachment; filename=\""), "{disposition}");
    // 黄河社区 percent-encoded as UTF-8.
    assert!(
        disposition.contains("filename*=UTF-8''%E9%BB%84%E6%B2%B3%E7%A4%BE%E5%8C%BA"),
        "{disposition}"
    );
    let body = response.bytes().await.unwrap();
    assert!(body.starts_with(BOM));
    let text = std::str::from_utf8(&body[3..]).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "姓名,性别,出生日期,证件类型,证件号码,联系电话,社区,网格,楼栋,单元,房号,与户主关系,户籍/流动,标签"
    );
    let scope = epigrid_domain::Scope {
        kind: epigrid_domain::AreaKind::Community,
        area_id: app.seed.community,
    };
    let count = app.service.store().level_counts(Some(scope)).await.unwrap().residents;
    assert_eq!(lines.len() as i64, 1 + count, "{text}");
    assert!(text.contains("王*英") && text.contains("110105********002X"), "{text}");
    assert!(!text.contains("11010519491231002X") && !text.contains("13800138000"));
}

#[tokio::test]
async fn unmasked_export_is_a_post_with_a_reason_for_permitted_roles() {
    let app = App::spawn().await;
    let admin = app.login(ADMIN).await;
    let body = json!({ "area_id": app.seed.grid_a, "format": "csv", "reason": "report_upward" });
    let response =
        admin.post(app.url("/api/v1/exports/residents")).json(&body).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = String::from_utf8(response.bytes().await.unwrap()[3..].to_vec()).unwrap();
    assert!(
        text.contains("王秀英,女,1949-12-31,居民身份证,11010519491231002X,13800138000"),
        "{text}"
    );
    // No reason: refused, naming the field.
    let response = admin
        .post(app.url("/api/v1/exports/residents"))
        .json(&json!({ "area_id": app.seed.grid_a }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let error: serde_json::Value = response.json().await.unwrap();
    assert_eq!(error["error"]["field"], "reason");
    assert_eq!(error["error"]["message"], "不脱敏导出须选择理由");
    // A grid worker may not unmask, even in their own grid.
    let worker = app.login(WORKER_A).await;
    let response =
        worker.post(app.url("/api/v1/exports/residents")).json(&body).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // The audit log has the export with its reason and count, and the refusal.
    let audit: serde_json::Value = admin
        .get(app.url("/api/v1/audit?action=export.residents"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entries = audit["items"].as_array().or(audit.as_array()).unwrap().clone();
    let outcomes: Vec<&str> = entries.iter().map(|e| e["outcome"].as_str().unwrap()).collect();
    assert!(outcomes.contains(&"ok") && outcomes.contains(&"denied"), "{audit}");
    let serialized = audit.to_string();
    assert!(serialized.contains("report_upward"));
    assert!(!serialized.contains("11010519491231002X"));
}

#[tokio::test]
async fn out_of_scope_is_not_found_and_volunteers_may_not_export() {
    let app = App::spawn().await;
    let worker = app.login(WORKER_A).await;
    for path in ["residents", "tasks", "daily-report"] {
        let url = format!("/api/v1/exports/{path}?area_id={}", app.seed.grid_b);
        let response = worker.get(app.url(&url)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        let own = format!("/api/v1/exports/{path}?area_id={}", app.seed.grid_a);
        let response = worker.get(app.url(&own)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
    let volunteer = app.login(VOLUNTEER).await;
    let url = format!("/api/v1/exports/residents?area_id={}", app.seed.community);
    assert_eq!(volunteer.get(app.url(&url)).send().await.unwrap().status(), StatusCode::FORBIDDEN);
    let page = volunteer.get(app.url("/exports")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::FORBIDDEN);
    let medic = app.login(MEDIC).await;
    let html = medic.get(app.url("/")).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("href=\"/exports\""), "the link is in the chrome for roles that export");
    let url = format!("/api/v1/exports/residents?area_id={}&format=pdf", app.seed.community);
    let response = medic.get(app.url(&url)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn daily_report_downloads_as_xlsx_and_bad_dates_are_refused() {
    let app = App::spawn().await;
    let admin = app.login(ADMIN).await;
    let url = format!("/api/v1/exports/daily-report?area_id={}", app.seed.sub_district);
    let response = admin.get(app.url(&url)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    );
    let bytes = response.bytes().await.unwrap();
    assert!(bytes.starts_with(b"PK"), "an .xlsx is a zip");
    let url = format!("{url}&date=2026-13-40");
    let response = admin.get(app.url(&url)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let error: serde_json::Value = response.json().await.unwrap();
    assert_eq!(error["error"]["field"], "date");
}

#[tokio::test]
async fn the_page_form_exports_with_its_csrf_token() {
    let app = App::spawn().await;
    let admin = app.login(ADMIN).await;
    let html = admin.get(app.url("/exports")).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("name=\"_csrf\""));
    assert!(html.contains("id=\"export-reason\""), "admins may unmask");
    assert!(html.contains("黄河社区（371602001001）"));
    let area = app.seed.community.to_string();
    let response = post_form(
        &admin,
        &app,
        "/exports",
        &[("what", "tasks"), ("area_id", &area), ("format", "xlsx")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-disposition"].to_str().unwrap().contains("UTF-8''"));
    // Unmasked without a reason: the form again, naming the field.
    let response = post_form(
        &admin,
        &app,
        "/exports",
        &[("what", "residents"), ("area_id", &area), ("format", "csv"), ("mode", "unmasked")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.text().await.unwrap().contains("不脱敏导出须选择理由"));
    // A grid worker's form has no unmask choice.
    let worker = app.login(WORKER_A).await;
    let html = worker.get(app.url("/exports")).send().await.unwrap().text().await.unwrap();
    assert!(!html.contains("id=\"export-reason\""));
    // Without the CSRF token the post is refused.
    let session = app.session(ADMIN, crate::support::PASSWORD).await;
    let bare = session.client(None, false);
    let response = post_form(
        &bare,
        &app,
        "/exports",
        &[("what", "residents"), ("area_id", &area), ("format", "csv")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}
