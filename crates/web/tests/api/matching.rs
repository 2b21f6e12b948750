//! The list-matching pages: a multipart upload with its CSRF field, the
//! overview with its counts, a list page with masked rows and the
//! unmatched ones apart, the .xlsx download, and who may do it.

use reqwest::StatusCode;

use crate::support::{ADMIN, App, PASSWORD, WORKER_A};

fn multipart(csrf: &str, file_name: &str, content: &str) -> (String, Vec<u8>) {
    let boundary = "----epigridTestBoundary7MA4YWxk";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"_csrf\"\r\n\r\n{csrf}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\n\
         Content-Type: text/csv\r\n\r\n{content}\r\n--{boundary}--\r\n"
    );
    (format!("multipart/form-data; boundary={boundary}"), body.into_bytes())
}

#[tokio::test]
async fn an_office_uploads_a_list_and_downloads_the_result() {
    let app = App::spawn().await;
    let session = app.session(ADMIN, PASSWORD).await;
    // No CSRF header: the token rides in the multipart form, as a browser sends it.
    let admin = session.client(None, true);
    let page = admin.get(app.url("/matching")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("协查名单") && html.contains("enctype=\"multipart/form-data\""));

    let list = "姓名,身份证号,联系电话,来源地,抵达日期,备注\n\
                王秀英,11010519491231002X,,武汉,2026-11-01,\n\
                李建国,,13912345678,上海,2026-11-02,车站\n\
                无名氏,110101199001010020,,,,\n";
    let (content_type, body) = multipart(&session.csrf, "第12批.csv", list);
    let done = admin
        .post(app.url("/matching"))
        .header("content-type", content_type.clone())
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), StatusCode::OK);
    let html = done.text().await.unwrap();
    assert!(html.contains("精确 1，疑似 1，未匹配 1；核查任务 2 个"), "{html}");
    assert!(html.contains("第12批.csv"));

    let lists = app.service.store().list_match_lists(10).await.unwrap();
    assert_eq!(lists.len(), 1);
    let id = lists[0].id;
    let html =
        admin.get(app.url(&format!("/matching/{id}"))).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("王*英") && html.contains("110105********002X"), "{html}");
    assert!(!html.contains("11010519491231002X"), "the page masks documents");
    assert!(html.contains("身份证号码校验位不正确"), "the bad ID says why");
    assert!(html.contains("待核实"), "the task state");

    let file = admin.get(app.url(&format!("/matching/{id}/result.xlsx"))).send().await.unwrap();
    assert_eq!(file.status(), StatusCode::OK);
    assert_eq!(file.headers()["cache-control"], "no-store");
    assert!(file.headers()["content-disposition"].to_str().unwrap().contains("xlsx"));
    assert!(file.bytes().await.unwrap().starts_with(b"PK"));

    // Without the CSRF field the upload is refused, and nothing is stored.
    let (content_type, body) = multipart("wrong", "x.csv", list);
    let refused = admin
        .post(app.url("/matching"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.service.store().list_match_lists(10).await.unwrap().len(), 1);

    // A grid worker neither sees the page nor the list.
    let worker = app.login(WORKER_A).await;
    let page = worker.get(app.url("/matching")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::FORBIDDEN);
    let other = worker.get(app.url(&format!("/matching/{id}"))).send().await.unwrap();
    assert_ne!(other.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_file_that_is_not_a_list_is_explained() {
    let app = App::spawn().await;
    let session = app.session(ADMIN, PASSWORD).await;
    let admin = session.client(None, true);
    let (content_type, body) = multipart(&session.csrf, "x.csv", "姓名,来源地\n张三,武汉\n");
    let html = admin
        .post(app.url("/matching"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("名单中没有身份证号或联系电话列"), "{html}");
    assert!(app.service.store().list_match_lists(10).await.unwrap().is_empty());
}
