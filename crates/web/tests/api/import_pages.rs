//! The import pages: a multipart upload with its CSRF field, the plan with
//! its counts and translated errors, the confirm that writes in the
//! background, the progress page, and who may do it.

use epigrid_domain::identity::check_character;
use epigrid_store::ResidentQuery;
use reqwest::StatusCode;

use crate::support::{ADMIN, App, PASSWORD, VOLUNTEER};

fn multipart(csrf: &str, mode: &str, file_name: &str, content: &str) -> (String, Vec<u8>) {
    let boundary = "----epigridImportBoundary9QZ";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"_csrf\"\r\n\r\n{csrf}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\n\
         Content-Type: text/csv\r\n\r\n{content}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"mode\"\r\n\r\n{mode}\r\n\
         --{boundary}--\r\n"
    );
    (format!("multipart/form-data; boundary={boundary}"), body.into_bytes())
}

fn id(first17: &str) -> String {
    let bytes: [u8; 17] = first17.as_bytes().try_into().unwrap();
    format!("{first17}{}", check_character(&bytes))
}

/// A value between `after` and the next `<`, e.g. a count in its `<dd>`.
fn text_after<'a>(html: &'a str, after: &str) -> &'a str {
    let start = html.find(after).unwrap_or_else(|| panic!("no {after} in {html}")) + after.len();
    html[start..].split('<').next().unwrap()
}

async fn resident_names(app: &App) -> Vec<String> {
    let query = ResidentQuery { limit: 100, ..ResidentQuery::default() };
    let rows = app.service.store().search_residents(&query).await.unwrap();
    rows.into_iter().map(|r| r.name.as_str().to_owned()).collect()
}

#[tokio::test]
async fn an_office_uploads_checks_and_confirms_an_import() {
    let app = App::spawn().await;
    let session = app.session(ADMIN, PASSWORD).await;
    let admin = session.client(None, true);
    let page = admin.get(app.url("/imports")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("从表格导入居民") && html.contains("enctype=\"multipart/form-data\""));
    assert!(html.contains("href=\"/imports\""), "the chrome links the page");

    let good = id("11010519900101002");
    let mut bad = id("11010519900101010");
    // A wrong check character.
    let last = if bad.ends_with('1') { '2' } else { '1' };
    bad.replace_range(17.., &last.to_string());
    let csv = format!(
        "姓名,身份证号,网格,楼栋,单元,房号\n\
         赵晓燕,{good},第一网格,1号楼,1单元,201\n\
         钱多多,{bad},第一网格,1号楼,1单元,202\n"
    );
    let (content_type, body) = multipart(&session.csrf, "valid_only", "居民.csv", &csv);
    let plan = admin
        .post(app.url("/imports"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(plan.status(), StatusCode::OK);
    let html = plan.text().await.unwrap();
    assert_eq!(text_after(&html, "id=\"import-inserts\">"), "1", "{html}");
    assert_eq!(text_after(&html, "id=\"import-rejected\">"), "1", "{html}");
    assert!(html.contains("身份证号码校验位不正确"), "the translated reason: {html}");
    assert!(html.contains("<td data-label=\"行号\">3</td>"), "the row as Excel numbers it");
    assert!(!html.contains(&bad), "the page does not echo ID numbers");
    let id_start = html.find("/imports/").unwrap();
    let report_at = html.find("/errors.xlsx").expect("a report link");
    let confirm_at = html.find("/confirm\"").expect("a confirm form");
    assert!(id_start < report_at);
    let plan_id = html[..confirm_at].rsplit("/imports/").next().unwrap().to_owned();

    let report =
        admin.get(app.url(&format!("/imports/{plan_id}/errors.xlsx"))).send().await.unwrap();
    assert_eq!(report.status(), StatusCode::OK);
    assert!(report.bytes().await.unwrap().starts_with(b"PK"));
    assert!(!resident_names(&app).await.contains(&"赵晓燕".to_owned()), "a plan writes nothing");

    // Without the CSRF field the confirm is refused and nothing is written.
    let refused = admin
        .post(app.url(&format!("/imports/{plan_id}/confirm")))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("_csrf={}", "wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);

    let no_redirect = session.client(None, false);
    let started = no_redirect
        .post(app.url(&format!("/imports/{plan_id}/confirm")))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("_csrf={}", session.csrf))
        .send()
        .await
        .unwrap();
    assert!(started.status().is_redirection(), "{}", started.status());
    let run = started.headers()["location"].to_str().unwrap().to_owned();
    assert!(run.starts_with("/imports/run/"), "{run}");

    let mut html = String::new();
    for _ in 0..200 {
        html = admin.get(app.url(&run)).send().await.unwrap().text().await.unwrap();
        if !html.contains("http-equiv=\"refresh\"") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(html.contains("导入完成"), "{html}");
    assert_eq!(text_after(&html, "id=\"import-inserted\">"), "1", "{html}");
    let names = resident_names(&app).await;
    assert!(names.contains(&"赵晓燕".to_owned()), "{names:?}");
    assert!(!names.contains(&"钱多多".to_owned()), "the bad row is not written");

    // A plan is confirmed once.
    let again = admin
        .post(app.url(&format!("/imports/{plan_id}/confirm")))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("_csrf={}", session.csrf))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_upload_without_csrf_and_a_volunteer_are_refused() {
    let app = App::spawn().await;
    let session = app.session(ADMIN, PASSWORD).await;
    let admin = session.client(None, true);
    let csv = format!(
        "姓名,身份证号,网格,楼栋,单元,房号\n孙一,{},第一网格,1号楼,1单元,203\n",
        id("11010519900101029")
    );
    let (content_type, body) = multipart("wrong", "all_or_nothing", "a.csv", &csv);
    let refused = admin
        .post(app.url("/imports"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);

    let volunteer = app.session(VOLUNTEER, PASSWORD).await;
    let client = volunteer.client(None, true);
    let page = client.get(app.url("/imports")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::FORBIDDEN);
    assert!(!page.text().await.unwrap().contains("href=\"/imports\""), "no link for them");
    let (content_type, body) = multipart(&volunteer.csrf, "all_or_nothing", "a.csv", &csv);
    let upload = client
        .post(app.url("/imports"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), StatusCode::FORBIDDEN);
    assert!(!resident_names(&app).await.contains(&"孙一".to_owned()));
}
