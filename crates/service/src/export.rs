//! Exports (issue #7, item 3): the residents and the tasks of an area as
//! .xlsx or .csv, and the daily report upward (RULES.md §5) as .xlsx.
//!
//! Personal fields are masked unless the caller's role may unmask and gives
//! a reason; every export is audited with its counts, never its values. The
//! registry is read a keyset page at a time, so a scope of 50,000 residents
//! never sits in memory as records (the finished file does, once).
//!
//! Text that lands in a file goes through `translate` (the callers pass the
//! zh-CN catalogue: the offices' files are Chinese), so this module stays
//! free of locale files like the import report.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::NaiveDate;
use epigrid_domain::daily_report::{self, CheckFailure, Daily, Level, Unit, UnitCounts, Value};
use epigrid_domain::{Action, AreaKind, Residence, Role, Scope, Tag};
use epigrid_store::{
    AreaQuery, AreaRecord, GridDayCounter, ReportQuery, ResidentCursor, ResidentQuery,
    ResidentRecord, TaskQuery, page_size,
};
use rust_xlsxwriter::{Format, Workbook, Worksheet, XlsxError};
use serde::Serialize;
use uuid::Uuid;

use crate::audit::Target;
use crate::privacy::UnmaskReason;
use crate::{Actor, Service, ServiceError, ServiceResult};

/// Rows read from the store per query.
const PAGE: u32 = 500;

/// The catalogue category whose handled tasks count as households checked
/// at the door.
const DOOR_TO_DOOR: &str = "door_to_door_check";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportFormat {
    Xlsx,
    Csv,
}

impl ExportFormat {
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "xlsx" => Some(Self::Xlsx),
            "csv" => Some(Self::Csv),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Xlsx => "xlsx",
            Self::Csv => "csv",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            Self::Csv => "text/csv; charset=utf-8",
        }
    }
}

/// A finished export.
#[derive(Debug, Clone)]
pub struct ExportFile {
    /// A suggested file name (Chinese: the area's name and the date).
    pub file_name: String,
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
    /// Data rows written (residents, tasks, or report units).
    pub rows: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// The daily report's checks failed (`check_messages` words them).
    /// Nothing was exported.
    #[error("the daily report's checks failed ({} failures)", .0.len())]
    Checks(Vec<CheckFailure>),
}

impl From<epigrid_store::StoreError> for ExportError {
    fn from(e: epigrid_store::StoreError) -> Self {
        Self::Service(e.into())
    }
}

fn xlsx_error(e: XlsxError) -> ExportError {
    ExportError::Service(ServiceError::Internal(format!("xlsx: {e}")))
}

type Translate<'a> = &'a (dyn Fn(&str) -> String + Sync);

/// The snake-case name serde gives an enum value (`male`, `resident_id_card`).
fn snake<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

/// The same document mask as the screens (RULES.md §4.2).
fn mask_document(clear: &str) -> String {
    let (head, tail) = if clear.chars().count() == 18 { (6, 4) } else { (1, 3) };
    epigrid_domain::mask::mask_middle(clear, head, tail)
}

fn mask_phone(clear: &str) -> String {
    epigrid_domain::mask::mask_middle(clear, 3, 4)
}

/// Column headers of the residents file, as offices write them.
pub const RESIDENT_COLUMNS: [&str; 14] = [
    "name",
    "sex",
    "birth_date",
    "id_kind",
    "id_number",
    "phone",
    "community",
    "grid",
    "building",
    "unit",
    "room",
    "relation",
    "residence",
    "tags",
];

pub const TASK_COLUMNS: [&str; 9] = [
    "category",
    "priority",
    "state",
    "grid",
    "assignee",
    "created_at",
    "deadline",
    "overdue",
    "escalation_level",
];

/// Writes rows either to a worksheet or to CSV, so both formats share one
/// pass over the store.
enum Sink {
    Xlsx { workbook: Box<Workbook>, row: u32, date: Format, bold: Format },
    Csv(csv::Writer<Vec<u8>>),
}

enum Field {
    Text(String),
    Date(NaiveDate),
    Number(i64),
}

impl Sink {
    fn new(format: ExportFormat, sheet_name: &str) -> Result<Self, ExportError> {
        Ok(match format {
            ExportFormat::Xlsx => {
                let mut workbook = Workbook::new();
                // Rows are written in order, once: constant-memory mode
                // streams them to a temp file, so 50,000 residents do not
                // sit in memory as cells.
                let sheet = workbook.add_worksheet_with_constant_memory().map_err(xlsx_error)?;
                sheet.set_name(sheet_name).map_err(xlsx_error)?;
                Sink::Xlsx {
                    workbook: Box::new(workbook),
                    row: 0,
                    date: Format::new().set_num_format("yyyy-mm-dd"),
                    bold: Format::new().set_bold(),
                }
            }
            ExportFormat::Csv => {
                // A UTF-8 byte-order mark, or Excel opens the Chinese as mojibake.
                let mut out = Vec::with_capacity(1 << 16);
                out.extend_from_slice(b"\xEF\xBB\xBF");
                Sink::Csv(csv::WriterBuilder::new().from_writer(out))
            }
        })
    }

    fn header(&mut self, names: &[String]) -> Result<(), ExportError> {
        match self {
            Sink::Xlsx { workbook, row, bold, .. } => {
                let sheet = workbook.worksheet_from_index(0).map_err(xlsx_error)?;
                for (i, name) in names.iter().enumerate() {
                    sheet
                        .write_string_with_format(*row, i as u16, name, bold)
                        .map_err(xlsx_error)?;
                    // Autofit needs every cell in memory; fixed widths do not.
                    let width = if i == 4 { 22.0 } else { 12.0 };
                    sheet.set_column_width(i as u16, width).map_err(xlsx_error)?;
                }
                sheet.set_freeze_panes(1, 0).map_err(xlsx_error)?;
                *row += 1;
                Ok(())
            }
            Sink::Csv(w) => w.write_record(names).map_err(csv_error),
        }
    }

    fn row(&mut self, fields: &[Field]) -> Result<(), ExportError> {
        match self {
            Sink::Xlsx { workbook, row, date, .. } => {
                let sheet = workbook.worksheet_from_index(0).map_err(xlsx_error)?;
                for (i, field) in fields.iter().enumerate() {
                    let col = i as u16;
                    match field {
                        Field::Text(t) if t.is_empty() => {}
                        Field::Text(t) => {
                            sheet.write_string(*row, col, t).map_err(xlsx_error)?;
                        }
                        Field::Date(d) => {
                            let d = rust_xlsxwriter::ExcelDateTime::parse_from_str(
                                &d.format("%Y-%m-%d").to_string(),
                            )
                            .map_err(xlsx_error)?;
                            sheet
                                .write_datetime_with_format(*row, col, &d, date)
                                .map_err(xlsx_error)?;
                        }
                        Field::Number(n) => {
                            sheet.write_number(*row, col, *n as f64).map_err(xlsx_error)?;
                        }
                    }
                }
                *row += 1;
                Ok(())
            }
            Sink::Csv(w) => {
                let cells = fields.iter().map(|f| match f {
                    Field::Text(t) => defuse(t),
                    Field::Date(d) => d.format("%Y-%m-%d").to_string(),
                    Field::Number(n) => n.to_string(),
                });
                w.write_record(cells).map_err(csv_error)
            }
        }
    }

    fn finish(self) -> Result<Vec<u8>, ExportError> {
        match self {
            Sink::Xlsx { mut workbook, .. } => workbook.save_to_buffer().map_err(xlsx_error),
            Sink::Csv(w) => w.into_inner().map_err(|e| {
                ExportError::Service(ServiceError::Internal(format!("csv: {}", e.error())))
            }),
        }
    }
}

/// A text cell that a spreadsheet would run as a formula (`=`, `+`, `-`,
/// `@` first) gets a leading `'`, as the evaluation CSV does: a name typed
/// as `=HYPERLINK(…)` stays text. (.xlsx cells are written as strings, which
/// Excel never evaluates.)
fn defuse(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@']) { format!("'{text}") } else { text.to_owned() }
}

fn csv_error(e: csv::Error) -> ExportError {
    ExportError::Service(ServiceError::Internal(format!("csv: {e}")))
}

/// Sheet names: at most 31 characters, none of `[]:*?/\`.
fn sheet_name(text: &str) -> String {
    let clean: String =
        text.chars().filter(|c| !matches!(c, '[' | ']' | ':' | '*' | '?' | '/' | '\\')).collect();
    clean.chars().take(31).collect()
}

/// A file name without path separators or control characters.
fn file_name(parts: &[&str], format: ExportFormat) -> String {
    let stem: String = parts
        .join("_")
        .chars()
        .map(|c| if c.is_control() || matches!(c, '/' | '\\' | '"') { '_' } else { c })
        .collect();
    format!("{stem}.{}", format.as_str())
}

/// Area names by id, fetched in batches as pages need them.
#[derive(Default)]
struct AreaNames(HashMap<Uuid, String>);

impl AreaNames {
    async fn load(
        &mut self,
        service: &Service,
        ids: impl Iterator<Item = Uuid>,
    ) -> ServiceResult<()> {
        let missing: Vec<Uuid> =
            ids.collect::<HashSet<_>>().into_iter().filter(|id| !self.0.contains_key(id)).collect();
        if !missing.is_empty() {
            for area in service.store().get_areas(&missing).await? {
                self.0.insert(area.id, area.name);
            }
        }
        Ok(())
    }

    fn name(&self, id: Option<Uuid>) -> String {
        id.and_then(|id| self.0.get(&id).cloned()).unwrap_or_default()
    }
}

impl Service {
    /// The area an export covers: one the actor may see (else `NotFound`).
    pub async fn export_area(&self, actor: &Actor, area_id: Uuid) -> ServiceResult<AreaRecord> {
        self.visible_area(actor, area_id).await
    }

    /// The area with this statistical or grid code, if the actor may see it.
    pub async fn export_area_by_code(
        &self,
        actor: &Actor,
        code: &str,
    ) -> ServiceResult<AreaRecord> {
        actor.require(Action::ReadAreas)?;
        self.store()
            .get_area_by_code(code.trim())
            .await?
            .filter(|a| actor.covers(&a.path))
            .ok_or(ServiceError::NotFound)
    }

    /// The areas an export may cover, for the form: the actor's scope node
    /// and the communities and grids under it, in code order (a grid's code
    /// starts with its community's, so each community heads its grids).
    pub async fn export_areas(&self, actor: &Actor) -> ServiceResult<Vec<AreaRecord>> {
        actor.require(Action::ReadAreas)?;
        let mut out = Vec::new();
        for kind in [AreaKind::SubDistrict, AreaKind::Community, AreaKind::Grid] {
            let mut after = None;
            loop {
                let page = self
                    .store()
                    .list_areas(&AreaQuery {
                        parent_id: None,
                        kind: Some(kind),
                        within: actor.scope,
                        after,
                        limit: PAGE,
                    })
                    .await?;
                let short = page.len() < page_size(PAGE) as usize;
                after = page.last().map(|a| a.id);
                out.extend(page.into_iter().filter(|a| actor.covers(&a.path)));
                if short {
                    break;
                }
            }
        }
        out.sort_by(|a, b| {
            (&a.code, a.kind.depth(), &a.name).cmp(&(&b.code, b.kind.depth(), &b.name))
        });
        Ok(out)
    }

    /// Whether the actor may export at all (the exports page's link).
    pub fn may_export(&self, actor: &Actor) -> bool {
        actor.role.allows(Action::ReadResidents)
    }

    /// The residents of an area, masked unless `unmask` gives a reason and
    /// the role may unmask. Audited as `export.residents` either way.
    pub async fn export_residents(
        &self,
        actor: &Actor,
        area_id: Uuid,
        format: ExportFormat,
        unmask: Option<UnmaskReason>,
        translate: Translate<'_>,
    ) -> Result<ExportFile, ExportError> {
        actor.require(Action::ReadResidents)?;
        let area = self.export_area(actor, area_id).await?;
        let target = Target { kind: "area", id: area.id, path: Some(&area.path) };
        let masked = unmask.is_none();
        let mut detail = serde_json::json!({
            "format": format.as_str(),
            "masked": masked,
            "area_kind": snake(&area.kind),
            "area_code": area.code,
        });
        if let Some(reason) = unmask {
            detail["reason"] = reason.as_str().into();
            if !self.may_unmask(actor.role) {
                self.audit(actor, "export.residents", Some(target), "denied", detail).await?;
                return Err(ServiceError::Forbidden.into());
            }
        }
        let mut sink = Sink::new(format, &sheet_name(&translate("export.residents.sheet")))?;
        let headers: Vec<String> =
            RESIDENT_COLUMNS.iter().map(|c| translate(&format!("export.col.{c}"))).collect();
        sink.header(&headers)?;
        let scope = Scope { kind: area.kind, area_id: area.id };
        let mut names = AreaNames::default();
        let mut after: Option<ResidentCursor> = None;
        let mut rows = 0u64;
        loop {
            let page = self
                .store()
                .search_residents(&ResidentQuery {
                    within: Some(scope),
                    after: after.take(),
                    limit: PAGE,
                    ..ResidentQuery::default()
                })
                .await?;
            let short = page.len() < page_size(PAGE) as usize;
            let household_ids: Vec<Uuid> =
                page.iter().map(|r| r.household_id).collect::<HashSet<_>>().into_iter().collect();
            let rooms: HashMap<Uuid, String> = self
                .store()
                .get_households(&household_ids)
                .await?
                .into_iter()
                .map(|h| (h.id, h.room))
                .collect();
            names
                .load(
                    self,
                    page.iter().flat_map(|r| {
                        [r.path.community, r.path.grid, r.path.building, r.path.unit]
                            .into_iter()
                            .flatten()
                    }),
                )
                .await?;
            for r in &page {
                sink.row(&self.resident_fields(r, masked, &names, &rooms, translate)?)?;
                rows += 1;
            }
            match page.last() {
                Some(last) if !short => {
                    after =
                        Some(ResidentCursor { name: last.name.as_str().to_owned(), id: last.id })
                }
                _ => break,
            }
        }
        let bytes = sink.finish()?;
        detail["rows"] = rows.into();
        // Audited before the file is handed out: no audit entry, no file.
        self.audit(actor, "export.residents", Some(target), "ok", detail).await?;
        let today = self.today().format("%Y%m%d").to_string();
        Ok(ExportFile {
            file_name: file_name(
                &[&area.name, &translate("export.residents.file"), &today],
                format,
            ),
            content_type: format.content_type(),
            bytes,
            rows,
        })
    }

    fn resident_fields(
        &self,
        r: &ResidentRecord,
        masked: bool,
        names: &AreaNames,
        rooms: &HashMap<Uuid, String>,
        translate: Translate<'_>,
    ) -> ServiceResult<Vec<Field>> {
        let open = |field: &Option<epigrid_store::SealedField>, mask: fn(&str) -> String| {
            field
                .as_ref()
                .map(|s| {
                    let clear =
                        self.cipher().open(s).map_err(|e| ServiceError::Internal(e.to_string()))?;
                    Ok::<_, ServiceError>(if masked { mask(&clear) } else { clear })
                })
                .transpose()
                .map(Option::unwrap_or_default)
        };
        let id_kind = r
            .id_kind
            .map(|k| {
                let key = snake(&k).replace("foreigner_permanent_old", "foreigner_permanent");
                translate(&format!(
                    "id_kind.{}",
                    key.replace("foreigner_permanent_new", "foreigner_permanent")
                ))
            })
            .unwrap_or_default();
        let residence = match r.residence {
            Residence::Registered => "residence.registered",
            Residence::Floating { .. } => "residence.floating",
        };
        let tags: Vec<String> = r
            .tags
            .iter()
            .map(|t: &Tag| {
                if Tag::BUILT_IN.contains(&t.as_str()) {
                    translate(&format!("tag.{}", t.as_str()))
                } else {
                    t.as_str().to_owned()
                }
            })
            .collect();
        Ok(vec![
            Field::Text(if masked { r.name.masked() } else { r.name.as_str().to_owned() }),
            Field::Text(translate(&format!("sex.{}", snake(&r.sex)))),
            Field::Date(r.birth_date),
            Field::Text(id_kind),
            Field::Text(open(&r.id_number, mask_document)?),
            Field::Text(open(&r.phone, mask_phone)?),
            Field::Text(names.name(r.path.community)),
            Field::Text(names.name(r.path.grid)),
            Field::Text(names.name(r.path.building)),
            Field::Text(names.name(r.path.unit)),
            Field::Text(rooms.get(&r.household_id).cloned().unwrap_or_default()),
            Field::Text(translate(&format!("relation.{}", r.relation.as_str()))),
            Field::Text(translate(residence)),
            Field::Text(tags.join("、")),
        ])
    }

    /// The tasks of an area, every state, in id (creation) order. Audited
    /// as `export.tasks`.
    pub async fn export_tasks(
        &self,
        actor: &Actor,
        area_id: Uuid,
        format: ExportFormat,
        translate: Translate<'_>,
    ) -> Result<ExportFile, ExportError> {
        if actor.role == Role::Volunteer {
            return Err(ServiceError::Forbidden.into());
        }
        let area = self.export_area(actor, area_id).await?;
        let mut sink = Sink::new(format, &sheet_name(&translate("export.tasks.sheet")))?;
        let headers: Vec<String> =
            TASK_COLUMNS.iter().map(|c| translate(&format!("export.col.{c}"))).collect();
        sink.header(&headers)?;
        let scope = Scope { kind: area.kind, area_id: area.id };
        let now = self.now();
        let zone = self.settings().time_zone_offset;
        let local = |t: chrono::DateTime<chrono::Utc>| {
            t.with_timezone(&zone).format("%Y-%m-%d %H:%M").to_string()
        };
        let mut names = AreaNames::default();
        let mut accounts: HashMap<Uuid, String> = HashMap::new();
        let mut after = None;
        let mut rows = 0u64;
        loop {
            let page = self
                .store()
                .list_tasks(&TaskQuery {
                    within: Some(scope),
                    after,
                    limit: PAGE,
                    ..TaskQuery::default()
                })
                .await?;
            let short = page.len() < page_size(PAGE) as usize;
            names.load(self, page.iter().filter_map(|t| t.path.grid)).await?;
            let missing: Vec<Uuid> = page
                .iter()
                .filter_map(|t| t.assignee_account_id)
                .filter(|id| !accounts.contains_key(id))
                .collect::<HashSet<_>>()
                .into_iter()
                .collect();
            if !missing.is_empty() {
                for user in self.store().get_users(&missing).await? {
                    accounts.insert(user.id, user.display_name);
                }
            }
            for t in &page {
                let overdue =
                    t.state.stage().is_some() && t.stage_deadline.is_some_and(|d| d < now);
                let assignee = match (t.assignee_account_id, t.reserve_pool_community_id) {
                    (Some(id), _) => accounts.get(&id).cloned().unwrap_or_default(),
                    (None, Some(_)) => translate("export.tasks.reserve_pool"),
                    _ => String::new(),
                };
                sink.row(&[
                    Field::Text(translate(&format!("task.category.{}", t.category))),
                    Field::Text(translate(&format!("board.priority.{}", t.priority.as_str()))),
                    Field::Text(translate(&format!("board.state.{}", t.state.as_str()))),
                    Field::Text(names.name(t.path.grid)),
                    Field::Text(assignee),
                    Field::Text(local(t.created_at)),
                    Field::Text(t.stage_deadline.map(local).unwrap_or_default()),
                    Field::Text(translate(if overdue { "export.yes" } else { "export.no" })),
                    Field::Number(i64::from(t.escalation_level)),
                ])?;
                rows += 1;
            }
            match page.last() {
                Some(last) if !short => after = Some(last.id),
                _ => break,
            }
        }
        let bytes = sink.finish()?;
        let target = Target { kind: "area", id: area.id, path: Some(&area.path) };
        let detail = serde_json::json!({
            "format": format.as_str(),
            "area_kind": snake(&area.kind),
            "area_code": area.code,
            "rows": rows,
        });
        self.audit(actor, "export.tasks", Some(target), "ok", detail).await?;
        let today = self.today().format("%Y%m%d").to_string();
        Ok(ExportFile {
            file_name: file_name(&[&area.name, &translate("export.tasks.file"), &today], format),
            content_type: format.content_type(),
            bytes,
            rows,
        })
    }
}

/// The daily report of one unit and the units below it, with its checks.
#[derive(Debug, Clone, Serialize)]
pub struct DailyReport {
    pub date: NaiveDate,
    /// `2026-11-29 17:05` when made during the day, `2026-11-29 24:00` after.
    pub cut_off: String,
    pub reporter: String,
    /// The unit asked for first, then its communities and grids.
    pub units: Vec<Unit>,
    pub failures: Vec<CheckFailure>,
}

/// Failed checks as messages in the reader's language.
pub fn check_messages(failures: &[CheckFailure], translate: Translate<'_>) -> Vec<String> {
    failures
        .iter()
        .map(|f| {
            f.params().into_iter().fold(translate(f.message_key()), |text, (k, v)| {
                let v = if v.starts_with("export.") { translate(&v) } else { v };
                text.replace(&format!("{{{k}}}"), &v)
            })
        })
        .collect()
}

impl Service {
    /// Counts the daily report of an area (a sub-district, community or
    /// grid the actor may see) for `date`, and runs its checks.
    pub async fn daily_report(
        &self,
        actor: &Actor,
        area_id: Uuid,
        date: NaiveDate,
    ) -> ServiceResult<DailyReport> {
        actor.require(Action::ReadResidents)?;
        let top = self.export_area(actor, area_id).await?;
        if !matches!(top.kind, AreaKind::SubDistrict | AreaKind::Community | AreaKind::Grid) {
            return Err(ServiceError::invalid("area_id", "export.daily.area_level"));
        }
        if date > self.today() {
            return Err(ServiceError::invalid("date", "export.daily.future_date"));
        }
        // The unit and everything below it down to grids.
        let mut areas = vec![top.clone()];
        let mut parents = vec![top.id];
        for kind in [AreaKind::Community, AreaKind::Grid] {
            if kind.depth() <= top.kind.depth() {
                continue;
            }
            let mut next = Vec::new();
            for parent in &parents {
                let mut after = None;
                loop {
                    let page = self
                        .store()
                        .list_areas(&AreaQuery {
                            parent_id: Some(*parent),
                            kind: Some(kind),
                            within: None,
                            after,
                            limit: PAGE,
                        })
                        .await?;
                    let short = page.len() < page_size(PAGE) as usize;
                    after = page.last().map(|a| a.id);
                    next.extend(page);
                    if short {
                        break;
                    }
                }
            }
            parents = next.iter().map(|a| a.id).collect();
            areas.extend(next);
        }
        let grids: Vec<&AreaRecord> = areas.iter().filter(|a| a.kind == AreaKind::Grid).collect();
        let grid_ids: Vec<Uuid> = grids.iter().map(|g| g.id).collect();
        let scope = Scope { kind: top.kind, area_id: top.id };
        let intake = self.grid_intake(&grid_ids, scope, date).await?;
        // Registry figures per grid and per community in one grouped query
        // each, and the unit's own counted separately: the roll-up check
        // then compares independent counts, not a sum with itself.
        let mut registry: HashMap<Uuid, (i64, i64)> = HashMap::new();
        for by in [AreaKind::Community, AreaKind::Grid] {
            if by.depth() > top.kind.depth() {
                for f in self.store().area_figures(Some(scope), by).await? {
                    registry.insert(f.area_id, (f.households, f.residents));
                }
            }
        }
        let own = self.store().level_counts(Some(scope)).await?;
        registry.insert(top.id, (own.households, own.residents));
        let mut units = Vec::with_capacity(areas.len());
        for area in &areas {
            let level = match area.kind {
                AreaKind::SubDistrict => Level::SubDistrict,
                AreaKind::Community => Level::Community,
                _ => Level::Grid,
            };
            let under = Scope { kind: area.kind, area_id: area.id };
            let (households, people) = registry.get(&area.id).copied().unwrap_or_default();
            let special_care = self
                .store()
                .tag_counts(Some(under))
                .await?
                .into_iter()
                .find(|t| t.tag == Tag::ELDERLY_ALONE)
                .map_or(0, |t| t.residents);
            let mut counts = UnitCounts {
                households_registered: households,
                people_registered: people,
                special_care: Some(special_care),
                ..UnitCounts::default()
            };
            for grid in grids.iter().filter(|g| under.covers(&g.path)) {
                if let Some(g) = intake.get(&grid.id) {
                    add(&mut counts, g);
                }
            }
            units.push(Unit {
                level,
                code: area.code.clone().unwrap_or_default(),
                name: area.name.clone(),
                counts,
            });
        }
        let failures = daily_report::check(&units);
        let reporter = match actor.user_id {
            Some(id) => self
                .store()
                .get_user(id)
                .await?
                .map_or_else(|| actor.username.clone(), |u| u.display_name),
            None => actor.username.clone(),
        };
        let cut_off = if date == self.today() {
            self.now()
                .with_timezone(&self.settings().time_zone_offset)
                .format("%Y-%m-%d %H:%M")
                .to_string()
        } else {
            format!("{} 24:00", date.format("%Y-%m-%d"))
        };
        Ok(DailyReport { date, cut_off, reporter, units, failures })
    }

    /// Per grid: today's, cumulative and yesterday's cumulative intake
    /// figures, and the households checked at the door.
    async fn grid_intake(
        &self,
        grid_ids: &[Uuid],
        within: Scope,
        date: NaiveDate,
    ) -> ServiceResult<HashMap<Uuid, UnitCounts>> {
        let mut out: HashMap<Uuid, UnitCounts> = HashMap::new();
        let mut active_days: BTreeMap<Uuid, Vec<NaiveDate>> = BTreeMap::new();
        for chunk in grid_ids.chunks(PAGE as usize) {
            for c in self.store().grid_day_counters_until(chunk, date).await? {
                let counts = out.entry(c.grid_id).or_default();
                let today = c.day == date;
                let bump = |d: &mut Daily, n: i64| {
                    d.cumulative += n;
                    if today {
                        d.new_today += n;
                    } else {
                        d.yesterday_cumulative += n;
                    }
                };
                let GridDayCounter { residents_reported, flagged, arrivals, help_requests, .. } = c;
                bump(&mut counts.people_reported, residents_reported);
                bump(&mut counts.fever, flagged);
                bump(&mut counts.arrivals, arrivals);
                bump(&mut counts.help_requests, help_requests);
                if c.health_reports > 0 {
                    active_days.entry(c.grid_id).or_default().push(c.day);
                }
            }
        }
        // Households checked at the door, per grid and day: distinct
        // households a grid worker filed a door-to-door health report for
        // (the counters do not tell self-service from door-to-door, the
        // reports do), together with the households of door-to-door check
        // tasks handled that day.
        let mut checked: HashMap<(Uuid, NaiveDate), HashSet<Uuid>> = HashMap::new();
        for (grid, days) in active_days {
            for day in days {
                let households = self.door_checked_households(grid, day).await?;
                checked.entry((grid, day)).or_default().extend(households);
            }
        }
        let zone = self.settings().time_zone_offset;
        let mut after = None;
        loop {
            let page = self
                .store()
                .list_tasks(&TaskQuery {
                    within: Some(within),
                    category: Some(DOOR_TO_DOOR.into()),
                    after,
                    limit: PAGE,
                    ..TaskQuery::default()
                })
                .await?;
            let short = page.len() < page_size(PAGE) as usize;
            after = page.last().map(|t| t.id);
            for t in page.iter().filter(|t| t.subject_kind == "household") {
                let (Some(grid), Some(handled)) = (t.path.grid, t.handled_at) else { continue };
                let day = handled.with_timezone(&zone).date_naive();
                if day <= date {
                    checked.entry((grid, day)).or_default().insert(t.subject_id);
                }
            }
            if short {
                break;
            }
        }
        for ((grid, day), households) in checked {
            let n = households.len() as i64;
            let counts = out.entry(grid).or_default();
            counts.households_checked.cumulative += n;
            if day == date {
                counts.households_checked.new_today += n;
            } else {
                counts.households_checked.yesterday_cumulative += n;
            }
        }
        Ok(out)
    }

    /// Households a grid worker filed a door-to-door health report for.
    async fn door_checked_households(
        &self,
        grid: Uuid,
        day: NaiveDate,
    ) -> ServiceResult<HashSet<Uuid>> {
        let mut households = HashSet::new();
        let mut after = None;
        loop {
            let page = self
                .store()
                .list_reports(&ReportQuery {
                    grid_id: Some(grid),
                    day: Some(day),
                    kind: Some("health".into()),
                    staff_only: true,
                    after,
                    limit: PAGE,
                    ..ReportQuery::default()
                })
                .await?;
            let short = page.len() < page_size(PAGE) as usize;
            after = page.last().map(|r| r.id);
            households.extend(page.iter().map(|r| r.household_id));
            if short {
                break;
            }
        }
        Ok(households)
    }

    /// The daily report as .xlsx, one sheet per unit (the unit asked for
    /// first), after its checks: a failing check blocks the export with
    /// the messages. Audited as `export.daily_report` (blocked ones too).
    pub async fn export_daily_report(
        &self,
        actor: &Actor,
        area_id: Uuid,
        date: NaiveDate,
        translate: Translate<'_>,
    ) -> Result<ExportFile, ExportError> {
        let report = self.daily_report(actor, area_id, date).await?;
        self.export_checked_report(actor, area_id, report, translate).await
    }

    /// Writes a counted report, or refuses it when a check failed. Public
    /// so that tests can hand it a report whose figures disagree.
    pub async fn export_checked_report(
        &self,
        actor: &Actor,
        area_id: Uuid,
        report: DailyReport,
        translate: Translate<'_>,
    ) -> Result<ExportFile, ExportError> {
        let area = self.export_area(actor, area_id).await?;
        let target = Target { kind: "area", id: area.id, path: Some(&area.path) };
        let mut detail = serde_json::json!({
            "format": "xlsx",
            "date": report.date,
            "area_kind": snake(&area.kind),
            "area_code": area.code,
            "units": report.units.len(),
        });
        if !report.failures.is_empty() {
            detail["failed_checks"] = report.failures.len().into();
            self.audit(actor, "export.daily_report", Some(target), "blocked", detail).await?;
            return Err(ExportError::Checks(report.failures));
        }
        let bytes = daily_report_xlsx(&report, translate).map_err(xlsx_error)?;
        self.audit(actor, "export.daily_report", Some(target), "ok", detail).await?;
        let day = report.date.format("%Y%m%d").to_string();
        Ok(ExportFile {
            file_name: file_name(
                &[&area.name, &translate("export.daily.file"), &day],
                ExportFormat::Xlsx,
            ),
            content_type: ExportFormat::Xlsx.content_type(),
            bytes,
            rows: report.units.len() as u64,
        })
    }
}

fn add(into: &mut UnitCounts, from: &UnitCounts) {
    for (a, b) in [
        (&mut into.households_checked, from.households_checked),
        (&mut into.people_reported, from.people_reported),
        (&mut into.arrivals, from.arrivals),
        (&mut into.fever, from.fever),
        (&mut into.help_requests, from.help_requests),
    ] {
        a.new_today += b.new_today;
        a.cumulative += b.cumulative;
        a.yesterday_cumulative += b.yesterday_cumulative;
    }
}

/// The workbook: a sheet per unit with the header block (RULES.md §5) and
/// the figure rows. Column A holds labels, so a reader finds a figure by
/// its Chinese name.
pub fn daily_report_xlsx(
    report: &DailyReport,
    translate: Translate<'_>,
) -> Result<Vec<u8>, XlsxError> {
    let mut workbook = Workbook::new();
    let bold = Format::new().set_bold();
    let title = Format::new().set_bold().set_font_size(14);
    for (index, unit) in report.units.iter().enumerate() {
        let sheet: &mut Worksheet = workbook.add_worksheet();
        sheet.set_name(sheet_name(&format!("{} {}", index + 1, unit.name)))?;
        sheet.write_string_with_format(0, 0, translate("export.daily.title"), &title)?;
        let grid = match unit.level {
            Level::Grid => format!("{}（{}）", unit.name, unit.code),
            _ => {
                let prefix = unit.level.prefix(&unit.code);
                let n = report
                    .units
                    .iter()
                    .filter(|u| u.level == Level::Grid && u.code.starts_with(prefix))
                    .count();
                translate("export.daily.all_grids").replace("{n}", &n.to_string())
            }
        };
        let header = [
            ("export.daily.unit", unit.name.clone()),
            ("export.daily.code", unit.reporting_code()),
            ("export.daily.grid", grid),
            ("export.daily.reporter", report.reporter.clone()),
            ("export.daily.date", report.date.format("%Y-%m-%d").to_string()),
            ("export.daily.cut_off", report.cut_off.clone()),
            (
                "export.daily.zero_report",
                translate(if daily_report::is_zero_report(&unit.counts) {
                    "export.yes"
                } else {
                    "export.no"
                }),
            ),
        ];
        for (i, (key, value)) in header.iter().enumerate() {
            let row = 1 + i as u32;
            sheet.write_string_with_format(row, 0, translate(key), &bold)?;
            sheet.write_string(row, 1, value)?;
        }
        let first = 2 + header.len() as u32;
        for (col, key) in [
            "export.daily.column.figure",
            "export.daily.column.new_today",
            "export.daily.column.cumulative",
            "export.daily.column.current",
            "export.daily.column.note",
        ]
        .iter()
        .enumerate()
        {
            sheet.write_string_with_format(first, col as u16, translate(key), &bold)?;
        }
        for (i, row) in daily_report::rows(&unit.counts).iter().enumerate() {
            let r = first + 1 + i as u32;
            sheet.write_string(r, 0, translate(&row.figure.label_key()))?;
            for (col, value) in [row.new_today, row.cumulative, row.current].into_iter().enumerate()
            {
                let col = 1 + col as u16;
                match value {
                    Value::Known(n) => sheet.write_number(r, col, n as f64)?,
                    Value::NotCollected => {
                        sheet.write_string(r, col, translate("export.daily.not_collected"))?
                    }
                    Value::NotApplicable => sheet.write_string(r, col, "—")?,
                };
            }
            if let Some(note) = row.note {
                sheet.write_string(r, 4, translate(note))?;
            }
        }
        sheet.set_column_width(0, 28)?;
        sheet.set_column_width(1, 16)?;
        sheet.set_column_width(2, 12)?;
        sheet.set_column_width(3, 12)?;
        sheet.set_column_width(4, 40)?;
    }
    workbook.save_to_buffer()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_like_text_is_defused_in_csv() {
        assert_eq!(defuse("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(defuse("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(defuse("张三"), "张三");
    }

    #[test]
    fn sheet_and_file_names_are_safe() {
        assert_eq!(sheet_name("a[b]:c*d?e/f\\g"), "abcdefg");
        assert_eq!(sheet_name(&"长".repeat(40)).chars().count(), 31);
        assert_eq!(
            file_name(&["黄河/社区", "居民名单"], ExportFormat::Csv),
            "黄河_社区_居民名单.csv"
        );
    }
}
