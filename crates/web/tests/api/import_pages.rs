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

/// The mapping step: a file whose ID column has an unknown header and whose
/// first phone column holds landlines. The plan shows how each column was
/// understood with a select per column; the user points the columns at the
/// right fields, sees the new counts, and the import writes the right values.
#[tokio::test]
async fn a_wrongly_understood_column_is_corrected_before_anything_is_written() {
    let app = App::spawn().await;
    let session = app.session(ADMIN, PASSWORD).await;
    let admin = session.client(None, true);
    let number = id("11010519900101037");
    let csv = format!(
        "姓名,证件,网格,楼栋,单元,房号,联系电话,手机号\n\
         周映射,{number},第一网格,1号楼,1单元,206,0531-88776655,13912345678\n"
    );
    let (content_type, body) = multipart(&session.csrf, "all_or_nothing", "映射.csv", &csv);
    let plan = admin
        .post(app.url("/imports"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(plan.status(), StatusCode::OK);
    let html = plan.text().await.unwrap();
    // No ID column was recognised: the mapping step says so, with no
    // counts and no confirm, and the columns as detected.
    assert_eq!(
        text_after(&html, "id=\"import-mapping-error\">"),
        "证件号码: 缺少必需的列",
        "{html}"
    );
    assert!(!html.contains("id=\"import-inserts\"") && !html.contains("/confirm\""), "{html}");
    let selected = |html: &str, column: usize| -> String {
        let select = html
            .split(&format!("name=\"col{column}\">"))
            .nth(1)
            .unwrap_or_else(|| panic!("no select col{column}: {html}"));
        let select = select.split("</select>").next().unwrap();
        let before = select.split(" selected>").next().unwrap();
        before.rsplit("value=\"").next().unwrap().split('"').next().unwrap().to_owned()
    };
    assert_eq!(selected(&html, 0), "name");
    assert_eq!(selected(&html, 1), "ignore");
    assert_eq!(selected(&html, 6), "phone", "the first phone column wins");
    assert_eq!(selected(&html, 7), "ignore");
    assert!(html.contains("<option value=\"id_number\">证件号码</option>"), "{html}");
    let action = html.split("action=\"/imports/").nth(1).unwrap();
    let plan_id = action.split("/mapping\"").next().unwrap().to_owned();
    // The values are plain ASCII: no form encoding needed.
    let remap = |fields: [&str; 8], csrf: &str| {
        let mut body = format!("_csrf={csrf}");
        for (i, field) in fields.iter().enumerate() {
            body.push_str(&format!("&col{i}={field}"));
        }
        admin
            .post(app.url(&format!("/imports/{plan_id}/mapping")))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let fixed_id = ["name", "id_number", "grid", "building", "unit", "room", "phone", "ignore"];

    // Without the CSRF field the mapping is not taken.
    let refused = remap(fixed_id, "wrong").await.unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);

    // The ID column fixed: every row is checked now, and the landline in
    // the column still read as the phone is an error.
    let html = remap(fixed_id, &session.csrf).await.unwrap().text().await.unwrap();
    assert!(!html.contains("import-mapping-error"), "{html}");
    assert_eq!(text_after(&html, "id=\"import-inserts\">"), "0", "{html}");
    assert_eq!(text_after(&html, "id=\"import-rejected\">"), "1", "{html}");
    assert!(html.contains("<td data-label=\"列名\">联系电话</td>"), "{html}");
    assert_eq!(selected(&html, 1), "id_number", "the page keeps the user's choice");

    // One field for two columns is refused with the field named.
    let twice = ["name", "id_number", "grid", "building", "unit", "room", "phone", "phone"];
    let html = remap(twice, &session.csrf).await.unwrap().text().await.unwrap();
    assert_eq!(
        text_after(&html, "id=\"import-mapping-error\">"),
        "联系电话: 同一字段只能对应一列，这个字段被选给了多列",
        "{html}"
    );

    // The landline column ignored, the mobile column read as the phone.
    let right = ["name", "id_number", "grid", "building", "unit", "room", "ignore", "phone"];
    let html = remap(right, &session.csrf).await.unwrap().text().await.unwrap();
    assert_eq!(text_after(&html, "id=\"import-inserts\">"), "1", "{html}");
    assert_eq!(text_after(&html, "id=\"import-rejected\">"), "0", "{html}");
    assert_eq!(selected(&html, 6), "ignore");
    assert_eq!(selected(&html, 7), "phone");
    assert!(!resident_names(&app).await.contains(&"周映射".to_owned()), "nothing written yet");

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
    let mut html = String::new();
    for _ in 0..200 {
        html = admin.get(app.url(&run)).send().await.unwrap().text().await.unwrap();
        if !html.contains("http-equiv=\"refresh\"") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(text_after(&html, "id=\"import-inserted\">"), "1", "{html}");

    // Written with the values of the columns the user chose.
    let blind = app.service.cipher().blind_index("id_number", &number);
    let query = ResidentQuery { id_blind_index: Some(blind), limit: 2, ..ResidentQuery::default() };
    let found = app.service.store().search_residents(&query).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].name.as_str(), "周映射");
    let phone = app.service.cipher().open(found[0].phone.as_ref().unwrap()).unwrap();
    assert_eq!(phone, "13912345678");
}
