//! The list-matching pages (协查名单): `/matching` uploads a list (a
//! multipart form with `_csrf`, checked by the CSRF layer before this runs)
//! and lists the lists with their counts; `/matching/{id}` shows a list's
//! rows, masked, with the unmatched ones apart; `/matching/{id}/result.xlsx`
//! downloads the result with each task's current state.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use epigrid_domain::Role;
use epigrid_domain::matching::MatchClass;
use epigrid_service::ServiceError;
use epigrid_service::matching::{MatchRowView, MatchSummary};
use epigrid_store::MatchListRecord;
use uuid::Uuid;

use super::{Chrome, PageActor, or_error_page, render};
use crate::AppState;
use crate::i18n::{Lang, t};

/// A list of ten thousand people is well under a megabyte; Excel files of
/// a hundred thousand rows stay under this.
pub const MAX_LIST_BYTES: usize = 20 * 1024 * 1024;

pub fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/matching", get(show).post(upload).layer(DefaultBodyLimit::max(MAX_LIST_BYTES)))
        .route("/matching/{id}", get(detail))
        .route("/matching/{id}/rerun", post(rerun))
        .route("/matching/{id}/result.xlsx", get(download))
}

/// Who sees the page and the link in the chrome: the offices that receive
/// lists from above.
pub fn may_match(role: Role) -> bool {
    matches!(role, Role::SubDistrictAdmin | Role::CommunityAdmin)
}

#[derive(Template)]
#[template(path = "matching.html")]
struct MatchingPage {
    chrome: Chrome,
    lists: Vec<MatchListRecord>,
    error: Option<String>,
    done: Option<String>,
}

#[derive(Template)]
#[template(path = "matching_list.html")]
struct ListPage {
    chrome: Chrome,
    list: MatchListRecord,
    rows: Vec<RowLine>,
    unmatched: Vec<RowLine>,
}

struct RowLine {
    row: MatchRowView,
    class_key: String,
    reason: String,
    state_key: Option<String>,
}

fn summary_text(lang: Lang, s: &MatchSummary) -> String {
    [
        ("{exact}", s.exact),
        ("{probable}", s.probable),
        ("{unmatched}", s.unmatched),
        ("{tasks}", s.tasks),
    ]
    .iter()
    .fold(t(lang, "matching.done"), |text, (k, v)| text.replace(k, &v.to_string()))
}

async fn page(
    state: &AppState,
    pa: &PageActor,
    error: Option<String>,
    done: Option<String>,
) -> Result<Response, Response> {
    let lists = or_error_page(pa.lang, state.service.match_lists(&pa.actor).await)?;
    Ok(render(&MatchingPage { chrome: pa.chrome("matching"), lists, error, done }))
}

/// `GET /matching`
async fn show(State(state): State<AppState>, pa: PageActor) -> Result<Response, Response> {
    if !may_match(pa.role()) {
        return Err(super::error_page(pa.lang, ServiceError::Forbidden));
    }
    page(&state, &pa, None, None).await
}

/// The `file` part of a multipart body: its file name and bytes.
fn file_part(headers: &HeaderMap, body: &[u8]) -> Option<(String, Vec<u8>)> {
    crate::multipart::part(headers, body, "file")
}

/// `POST /matching` (multipart): match the uploaded list.
async fn upload(
    State(state): State<AppState>,
    pa: PageActor,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Response> {
    if !may_match(pa.role()) {
        return Err(super::error_page(pa.lang, ServiceError::Forbidden));
    }
    let lang = pa.lang;
    let Some((name, bytes)) = file_part(&headers, &body).filter(|(_, b)| !b.is_empty()) else {
        let message = format!("{}: {}", t(lang, "matching.file"), t(lang, "import.file_empty"));
        return page(&state, &pa, Some(message), None).await;
    };
    match state.service.upload_match_list(&pa.actor, &name, &bytes).await {
        Ok(summary) => page(&state, &pa, None, Some(summary_text(lang, &summary))).await,
        Err(ServiceError::Invalid { field, code }) => {
            let field = if field == "file" { t(lang, "matching.file") } else { field };
            page(&state, &pa, Some(format!("{field}: {}", t(lang, code))), None).await
        }
        Err(e) => Err(super::error_page(lang, e)),
    }
}

fn parse_id(lang: Lang, id: &str) -> Result<Uuid, Response> {
    Uuid::try_parse(id).map_err(|_| super::error_page(lang, ServiceError::NotFound))
}

/// `GET /matching/{id}`
async fn detail(
    State(state): State<AppState>,
    pa: PageActor,
    Path(id): Path<String>,
) -> Result<Response, Response> {
    let id = parse_id(pa.lang, &id)?;
    let detail = or_error_page(pa.lang, state.service.match_list_detail(&pa.actor, id).await)?;
    let line = |row: MatchRowView| RowLine {
        class_key: format!("matching.class.{}", row.class.as_str()),
        reason: t(pa.lang, &row.reason),
        state_key: row.task_state.as_ref().map(|s| format!("board.state.{s}")),
        row,
    };
    let (unmatched, rows): (Vec<_>, Vec<_>) =
        detail.rows.into_iter().partition(|r| r.class == MatchClass::None);
    Ok(render(&ListPage {
        chrome: pa.chrome("matching"),
        list: detail.list,
        rows: rows.into_iter().map(line).collect(),
        unmatched: unmatched.into_iter().map(line).collect(),
    }))
}

/// `POST /matching/{id}/rerun`: match again (no task is doubled).
async fn rerun(
    State(state): State<AppState>,
    pa: PageActor,
    Path(id): Path<String>,
) -> Result<Response, Response> {
    let id = parse_id(pa.lang, &id)?;
    or_error_page(pa.lang, state.service.rerun_match_list(&pa.actor, id).await)?;
    Ok(Redirect::to(&format!("/matching/{id}")).into_response())
}

/// `GET /matching/{id}/result.xlsx`: Chinese headers and words, as the
/// office's own file is Chinese.
async fn download(
    State(state): State<AppState>,
    pa: PageActor,
    Path(id): Path<String>,
) -> Result<Response, Response> {
    let id = parse_id(pa.lang, &id)?;
    let zh = |key: &str| t(Lang::ZhCn, key);
    let (list, bytes) =
        or_error_page(pa.lang, state.service.match_result_xlsx(&pa.actor, id, &zh).await)?;
    let stem = list.name.rsplit_once('.').map_or(list.name.as_str(), |(s, _)| s);
    let file_name = format!("{stem}.{}.xlsx", zh("matching.result"));
    Ok(super::exports::attachment(bytes, super::exports::XLSX, &file_name))
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderValue, header};

    use super::*;

    #[test]
    fn the_file_part_is_found_after_the_csrf_field() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"_csrf\"\r\n\r\ntok\r\n\
--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"C:\\\\x\\\\\xe5\x90\x8d\xe5\x8d\x95.csv\"\r\n\
Content-Type: text/csv\r\n\r\na,b\r\n1,2\r\n--XyZ--\r\n";
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("multipart/form-data; boundary=XyZ"),
        );
        let (name, bytes) = file_part(&headers, body).unwrap();
        assert_eq!(name, "名单.csv");
        assert_eq!(bytes, b"a,b\r\n1,2");
        assert!(file_part(&HeaderMap::new(), body).is_none());
    }
}
