//! The resident import pages, on top of the import service: `/imports`
//! uploads a file (multipart with `_csrf`) and shows the plan (how the
//! columns were understood, the counts, the first errors and changes);
//! `/imports/{id}/mapping` checks the same file again with the columns as
//! the user corrected them (still writing nothing); `/imports/{id}/confirm`
//! starts the import in the background and `/imports/run/{id}` follows it
//! until its final counts.
//!
//! Between the plan and the confirm the parsed file is kept in this
//! process's memory (a static map, not the database): an upload is only
//! meaningful for the few minutes the user looks at its plan, and a
//! restart simply asks them to upload again. The map holds at most
//! [`MAX_PENDING`] uploads, each at most [`MAX_FILE_BYTES`], dropped after
//! [`PENDING_TTL`]; each belongs to the account that uploaded it (anyone
//! else gets 404). Running imports are kept the same way, since the job
//! record only gets its id inside `apply_import` and its counts at the end,
//! while the progress counters live in memory anyway.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use askama::Template;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Form, Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use epigrid_domain::import::Field;
use epigrid_domain::{Action, Role};
use epigrid_service::ServiceError;
use epigrid_service::import::{
    ImportMode, ImportOptions, ImportPhase, ImportProgress, ImportSummary, RowError, Table,
    file_digest, read_table, report,
};
use uuid::Uuid;

use super::{Chrome, PageActor, or_error_page, render};
use crate::AppState;
use crate::i18n::{Lang, t};

/// A hundred thousand rows of an office's spreadsheet stay under this.
pub const MAX_FILE_BYTES: usize = 20 * 1024 * 1024;
/// Uploads waiting for a confirm, across all users; the oldest goes first.
pub const MAX_PENDING: usize = 16;
/// How long a plan can be confirmed.
pub const PENDING_TTL: Duration = Duration::from_secs(30 * 60);
/// How many errors and changes the plan page lists; the report has all.
const SHOWN: usize = 20;

pub fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/imports", get(show).post(upload).layer(DefaultBodyLimit::max(MAX_FILE_BYTES)))
        .route("/imports/{id}/mapping", post(remap))
        .route("/imports/{id}/confirm", post(confirm))
        .route("/imports/{id}/errors.xlsx", get(errors_xlsx))
        .route("/imports/run/{id}", get(run_page))
}

/// Who sees the page and the link: whoever may write residents.
pub fn may_import(role: Role) -> bool {
    role.allows(Action::WriteResidents)
}

struct Pending {
    user_id: Option<Uuid>,
    file_name: String,
    digest: Vec<u8>,
    table: Arc<Table>,
    mode: ImportMode,
    /// The field of each column as the user corrected it; `None` while the
    /// detected mapping stands.
    columns: Option<Vec<Option<Field>>>,
    header_row: usize,
    errors: Arc<Vec<RowError>>,
    created: Instant,
}

type Outcome = Result<ImportSummary, (Option<String>, String)>;

struct Run {
    user_id: Option<Uuid>,
    file_name: String,
    progress: Arc<ImportProgress>,
    /// `None` while running; then the summary or the error's field and
    /// code, translated when shown (the viewer's language).
    outcome: Arc<Mutex<Option<Outcome>>>,
    created: Instant,
}

static PENDING: LazyLock<Mutex<HashMap<Uuid, Pending>>> = LazyLock::new(Default::default);
static RUNS: LazyLock<Mutex<HashMap<Uuid, Run>>> = LazyLock::new(Default::default);

/// Drops expired entries and, past `cap`, the oldest ones.
fn prune<T>(map: &mut HashMap<Uuid, T>, created: impl Fn(&T) -> Instant, cap: usize) {
    map.retain(|_, v| created(v).elapsed() < PENDING_TTL);
    while map.len() >= cap {
        let Some(oldest) = map.iter().min_by_key(|(_, v)| created(v)).map(|(k, _)| *k) else {
            break;
        };
        map.remove(&oldest);
    }
}

#[derive(Template)]
#[template(path = "imports.html")]
struct UploadPage {
    chrome: Chrome,
    error: Option<String>,
}

/// One column of the mapping step: its header and the field chosen for it
/// (`Field::as_str`, or [`IGNORE`]).
struct ColumnLine {
    index: usize,
    header: String,
    selected: String,
}

/// An option of the mapping step's selects.
struct FieldChoice {
    value: String,
    label: String,
}

/// The mapping step's value for "do not read this column".
const IGNORE: &str = "ignore";

struct ErrorLine {
    row: usize,
    column: String,
    reason: String,
}

struct UpdateLine {
    row: usize,
    name: String,
    changes: String,
}

#[derive(Template)]
#[template(path = "imports_plan.html")]
struct PlanPage {
    chrome: Chrome,
    id: Uuid,
    file_name: String,
    format: String,
    mode_key: String,
    columns: Vec<ColumnLine>,
    choices: Vec<FieldChoice>,
    /// Why the mapping cannot be used as it stands (a required field
    /// without a column, a field chosen twice); no counts are shown then.
    mapping_error: Option<String>,
    data_rows: usize,
    inserts: usize,
    updates: usize,
    unchanged: usize,
    rejected: usize,
    errors: Vec<ErrorLine>,
    error_count: usize,
    changes: Vec<UpdateLine>,
    can_apply: bool,
}

#[derive(Template)]
#[template(path = "imports_run.html")]
struct RunPage {
    chrome: Chrome,
    file_name: String,
    running: bool,
    phase_key: String,
    done_rows: u64,
    of_rows: u64,
    summary: Option<ImportSummary>,
    failure: Option<String>,
}

fn forbidden(lang: Lang) -> Response {
    super::error_page(lang, ServiceError::Forbidden)
}

fn not_found(lang: Lang) -> Response {
    super::error_page(lang, ServiceError::NotFound)
}

fn field_label(lang: Lang, field: &str) -> String {
    if field == "file" {
        return t(lang, "import.page.file");
    }
    Field::parse(field)
        .map_or_else(|| t(lang, &format!("import.field.{field}")), |f| t(lang, &f.label_key()))
}

/// An error of the service as one line: `身份证号: 缺少必需的列`.
fn failure_text(lang: Lang, field: Option<&str>, code: &str) -> String {
    match field {
        Some(field) => format!("{}: {}", field_label(lang, field), t(lang, code)),
        None => t(lang, code),
    }
}

/// `GET /imports`
async fn show(pa: PageActor) -> Result<Response, Response> {
    if !may_import(pa.role()) {
        return Err(forbidden(pa.lang));
    }
    Ok(render(&UploadPage { chrome: pa.chrome("imports"), error: None }))
}

fn upload_error(pa: &PageActor, message: String) -> Result<Response, Response> {
    Ok(render(&UploadPage { chrome: pa.chrome("imports"), error: Some(message) }))
}

/// `POST /imports` (multipart): read and check the file, show the plan.
async fn upload(
    State(state): State<AppState>,
    pa: PageActor,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Response> {
    if !may_import(pa.role()) {
        return Err(forbidden(pa.lang));
    }
    let lang = pa.lang;
    let tr = move |key: &str| t(lang, key);
    let file_label = tr("import.page.file");
    let Some((file_name, bytes)) =
        crate::multipart::part(&headers, &body, "file").filter(|(_, b)| !b.is_empty())
    else {
        return upload_error(&pa, format!("{file_label}: {}", tr("import.file_empty")));
    };
    let mode = crate::multipart::part(&headers, &body, "mode")
        .and_then(|(_, m)| ImportMode::parse(&String::from_utf8_lossy(&m)))
        .unwrap_or(ImportMode::AllOrNothing);
    let table = match read_table(&file_name, &bytes) {
        Ok(table) => table,
        Err(e) => return upload_error(&pa, format!("{file_label}: {}", tr(e.code()))),
    };
    let mut pending = Pending {
        user_id: pa.actor.user_id,
        file_name,
        digest: file_digest(&bytes),
        table: Arc::new(table),
        mode,
        columns: None,
        header_row: 0,
        errors: Arc::default(),
        created: Instant::now(),
    };
    let id = Uuid::now_v7();
    let page = match check(&state, &pa, id, &mut pending).await? {
        Ok(page) => page,
        Err(message) => return upload_error(&pa, message),
    };
    {
        let mut map = PENDING.lock().unwrap_or_else(|p| p.into_inner());
        prune(&mut map, |p| p.created, MAX_PENDING);
        map.insert(id, pending);
    }
    Ok(render(&page))
}

/// Plans `pending` with its current mapping and builds the plan page,
/// recording the header row and errors for the report. A mapping that
/// cannot be used (a required field without a column, a field chosen for
/// two columns) still gives a page, with the mapping step and the reason,
/// so that the user can correct it; a file without a header row gives the
/// message for the upload form instead.
async fn check(
    state: &AppState,
    pa: &PageActor,
    id: Uuid,
    pending: &mut Pending,
) -> Result<Result<PlanPage, String>, Response> {
    let lang = pa.lang;
    let tr = move |key: &str| t(lang, key);
    let (header_row, detected) = match state.service.detected_mapping(&pa.actor, &pending.table) {
        Ok(found) => found,
        Err(e @ ServiceError::Invalid { .. }) => {
            return Ok(Err(failure_text(lang, e.field(), e.code())));
        }
        Err(e) => return Err(super::error_page(lang, e)),
    };
    let options = ImportOptions {
        mode: pending.mode,
        columns: pending.columns.clone(),
        ..ImportOptions::default()
    };
    let progress = ImportProgress::default();
    let planned = state
        .service
        .plan_import(&pa.actor, &pending.table, pending.digest.clone(), &options, &progress)
        .await;
    let (plan, mapping_error) = match planned {
        Ok(plan) => (Some(plan), None),
        Err(e @ ServiceError::Invalid { .. }) => {
            (None, Some(failure_text(lang, e.field(), e.code())))
        }
        Err(e) => return Err(super::error_page(lang, e)),
    };
    let chosen = pending.columns.clone().unwrap_or_else(|| detected.fields.clone());
    let columns = detected
        .headers
        .iter()
        .zip(&chosen)
        .enumerate()
        .map(|(index, (header, field))| ColumnLine {
            index,
            header: if header.is_empty() {
                tr("import.page.column_n").replace("{n}", &(index + 1).to_string())
            } else {
                header.clone()
            },
            selected: field.map_or(IGNORE, Field::as_str).to_owned(),
        })
        .collect();
    let choices =
        std::iter::once(FieldChoice { value: IGNORE.to_owned(), label: tr("import.page.ignore") })
            .chain(
                Field::ALL.into_iter().map(|f| FieldChoice {
                    value: f.as_str().to_owned(),
                    label: tr(&f.label_key()),
                }),
            )
            .collect();
    let mut page = PlanPage {
        chrome: pa.chrome("imports"),
        id,
        file_name: pending.file_name.clone(),
        format: pending.table.format.clone(),
        mode_key: format!("import.page.mode.{}", pending.mode.as_str()),
        columns,
        choices,
        mapping_error,
        data_rows: 0,
        inserts: 0,
        updates: 0,
        unchanged: 0,
        rejected: 0,
        errors: Vec::new(),
        error_count: 0,
        changes: Vec::new(),
        can_apply: false,
    };
    pending.header_row = header_row;
    pending.errors = Arc::default();
    let Some(plan) = plan else {
        return Ok(Ok(page));
    };
    page.errors = plan
        .errors
        .iter()
        .take(SHOWN)
        .map(|e| {
            let mut reason = tr(e.code);
            if let Some(other) = e.other_row {
                reason = reason.replace("{row}", &other.to_string());
            }
            let column =
                if e.column.is_empty() { tr(&e.field.label_key()) } else { e.column.clone() };
            ErrorLine { row: e.row, column, reason }
        })
        .collect();
    page.changes = plan
        .updates
        .iter()
        .take(SHOWN)
        .map(|u| UpdateLine {
            row: u.row,
            name: u.name_masked.clone(),
            changes: u
                .changes
                .iter()
                .map(|c| format!("{}: {} → {}", field_label(lang, c.field), c.before, c.after))
                .collect::<Vec<_>>()
                .join(tr("import.report.joiner").as_str()),
        })
        .collect();
    page.data_rows = plan.data_rows;
    page.inserts = plan.inserts;
    page.updates = plan.updates.len();
    page.unchanged = plan.unchanged;
    page.rejected = plan.rejected_rows;
    page.error_count = plan.errors.len();
    page.can_apply = plan.can_apply();
    pending.header_row = plan.header_row;
    pending.errors = Arc::new(plan.errors);
    Ok(Ok(page))
}

/// Takes the caller's pending upload out of the map (put back by the
/// caller when it stays pending).
fn take_pending(pa: &PageActor, id: Uuid) -> Option<Pending> {
    let mut map = PENDING.lock().unwrap_or_else(|p| p.into_inner());
    match map.get(&id) {
        Some(p) if p.user_id == pa.actor.user_id && p.created.elapsed() < PENDING_TTL => {
            map.remove(&id)
        }
        _ => None,
    }
}

/// `POST /imports/{id}/mapping` (form: `_csrf`, `col0`, `col1`, … each a
/// field or `ignore`): the same file checked again with the columns as the
/// user set them. Writes nothing; the confirm then uses this mapping.
async fn remap(
    State(state): State<AppState>,
    pa: PageActor,
    Path(id): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response, Response> {
    if !may_import(pa.role()) {
        return Err(forbidden(pa.lang));
    }
    let id = parse_id(pa.lang, &id)?;
    let Some(mut pending) = take_pending(&pa, id) else {
        return Err(not_found(pa.lang));
    };
    let width = state
        .service
        .detected_mapping(&pa.actor, &pending.table)
        .map_or(0, |(_, mapping)| mapping.headers.len());
    let mut columns: Vec<Option<Field>> = vec![None; width];
    for (name, value) in &form {
        let Some(index) = name.strip_prefix("col").and_then(|i| i.parse::<usize>().ok()) else {
            continue;
        };
        let field = match value.as_str() {
            IGNORE => None,
            other => Field::ALL.into_iter().find(|f| f.as_str() == other),
        };
        if index >= width || (field.is_none() && value != IGNORE) {
            put_back(id, pending);
            return Err(super::error_page(
                pa.lang,
                ServiceError::invalid(name.clone(), "import.map_unknown_field"),
            ));
        }
        columns[index] = field;
    }
    pending.columns = Some(columns);
    let page = check(&state, &pa, id, &mut pending).await;
    put_back(id, pending);
    match page? {
        Ok(page) => Ok(render(&page)),
        Err(message) => upload_error(&pa, message),
    }
}

fn put_back(id: Uuid, pending: Pending) {
    PENDING.lock().unwrap_or_else(|p| p.into_inner()).insert(id, pending);
}

fn parse_id(lang: Lang, id: &str) -> Result<Uuid, Response> {
    Uuid::try_parse(id).map_err(|_| not_found(lang))
}

/// `POST /imports/{id}/confirm`: plan again (the data may have changed
/// since the plan was shown) and write, in the background.
async fn confirm(
    State(state): State<AppState>,
    pa: PageActor,
    Path(id): Path<String>,
) -> Result<Response, Response> {
    if !may_import(pa.role()) {
        return Err(forbidden(pa.lang));
    }
    let id = parse_id(pa.lang, &id)?;
    let Some(pending) = take_pending(&pa, id) else {
        return Err(not_found(pa.lang));
    };
    let progress = Arc::new(ImportProgress::default());
    let outcome = Arc::new(Mutex::new(None));
    let run_id = Uuid::now_v7();
    {
        let mut runs = RUNS.lock().unwrap_or_else(|p| p.into_inner());
        prune(&mut runs, |r| r.created, MAX_PENDING);
        runs.insert(
            run_id,
            Run {
                user_id: pa.actor.user_id,
                file_name: pending.file_name.clone(),
                progress: progress.clone(),
                outcome: outcome.clone(),
                created: Instant::now(),
            },
        );
    }
    let service = state.service.clone();
    let actor = pa.actor.clone();
    tokio::spawn(async move {
        let options = ImportOptions {
            mode: pending.mode,
            columns: pending.columns.clone(),
            ..ImportOptions::default()
        };
        let result = async {
            let plan = service
                .plan_import(&actor, &pending.table, pending.digest, &options, &progress)
                .await?;
            service.apply_import(&actor, &plan, &progress).await
        }
        .await;
        if let Err(e) = &result {
            tracing::warn!(error = %e, "import failed");
        }
        let result = result.map_err(|e| (e.field().map(str::to_owned), e.code().to_owned()));
        *outcome.lock().unwrap_or_else(|p| p.into_inner()) = Some(result);
    });
    Ok(Redirect::to(&format!("/imports/run/{run_id}")).into_response())
}

/// `GET /imports/{id}/errors.xlsx`: the user's rows with the reasons added.
async fn errors_xlsx(pa: PageActor, Path(id): Path<String>) -> Result<Response, Response> {
    let lang = pa.lang;
    let id = parse_id(lang, &id)?;
    let found = {
        let map = PENDING.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&id)
            .filter(|p| p.user_id == pa.actor.user_id)
            .map(|p| (p.file_name.clone(), p.table.clone(), p.header_row, p.errors.clone()))
    };
    let Some((file_name, table, header_row, errors)) = found else {
        return Err(not_found(lang));
    };
    let tr = move |key: &str| t(lang, key);
    let bytes = or_error_page(
        lang,
        report::error_report(&table, header_row, &errors, &tr)
            .map_err(|e| ServiceError::Internal(e.to_string())),
    )?;
    let stem = file_name.rsplit_once('.').map_or(file_name.as_str(), |(s, _)| s);
    let report_name = format!("{stem}.{}.xlsx", tr("import.page.report_file"));
    Ok(super::exports::attachment(bytes, super::exports::XLSX, &report_name))
}

/// `GET /imports/run/{id}`: progress, refreshing itself, then the counts.
async fn run_page(pa: PageActor, Path(id): Path<String>) -> Result<Response, Response> {
    let id = parse_id(pa.lang, &id)?;
    let page = {
        let runs = RUNS.lock().unwrap_or_else(|p| p.into_inner());
        let Some(run) = runs.get(&id).filter(|r| r.user_id == pa.actor.user_id) else {
            return Err(not_found(pa.lang));
        };
        let outcome = run.outcome.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let phase = run.progress.phase();
        let (done_rows, of_rows) = match phase {
            ImportPhase::Checking => (
                run.progress.checked_rows.load(Ordering::Relaxed),
                run.progress.total_rows.load(Ordering::Relaxed),
            ),
            ImportPhase::Writing | ImportPhase::Done => (
                run.progress.written_rows.load(Ordering::Relaxed),
                run.progress.to_write.load(Ordering::Relaxed),
            ),
        };
        let phase_key = match phase {
            ImportPhase::Checking => "import.page.phase.checking",
            ImportPhase::Writing => "import.page.phase.writing",
            ImportPhase::Done => "import.page.phase.done",
        };
        let (summary, failure) = match outcome.clone() {
            Some(Ok(s)) => (Some(s), None),
            Some(Err((field, code))) => {
                (None, Some(failure_text(pa.lang, field.as_deref(), &code)))
            }
            None => (None, None),
        };
        RunPage {
            chrome: pa.chrome("imports"),
            file_name: run.file_name.clone(),
            running: outcome.is_none(),
            phase_key: phase_key.to_owned(),
            done_rows,
            of_rows,
            summary,
            failure,
        }
    };
    Ok(render(&page))
}
