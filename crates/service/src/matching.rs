//! List matching (协查名单): a list of people sent from above, matched
//! against the registry within the uploader's scope.
//!
//! Every row is classified (exact by identity document, probable by phone or
//! by name and address, none with the reason; `epigrid_domain::matching`
//! decides), every matched person gets one `arrival_verification` task in
//! their grid, and the unmatched rows stay listed for the sub-district. The
//! lookups go to the store in batches of blind indexes (`IN (…)` lists), never
//! one query per row, so ten thousand rows take a handful of queries.
//!
//! A re-run (`rerun_match_list`) matches the stored rows again, e.g. after
//! the registry grew: the tasks' idempotency keys are the list id plus the
//! row, so nobody gets a second task. The result file reads each task's
//! state when it is downloaded, so it follows the workers' progress.

use std::collections::HashMap;

use epigrid_domain::import::{Cell, ID_SCIENTIFIC, id_text};
use epigrid_domain::mask::{mask_middle, mask_name};
use epigrid_domain::matching::{
    Candidate, ListField, ListMapping, ListRow, MatchClass, classify, detect_list_mapping,
    parse_list_row,
};
use epigrid_domain::tasks::Subject;
use epigrid_domain::{AreaPath, ReasonCode, Role};
use epigrid_store::{MatchListRecord, MatchRowRecord, ResidentRecord};
use rust_xlsxwriter::{Format, Workbook};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use crate::audit::Target;
use crate::import::read_table;
use crate::tasks::ReportEvent;
use crate::{Actor, Service, ServiceError, ServiceResult};

/// The task every matched person gets.
pub const VERIFY_CATEGORY: &str = "arrival_verification";
/// Rows a list may have: a list from above is a few thousand people; this
/// bounds memory and the time one request may hold.
pub const MAX_LIST_ROWS: usize = 100_000;

/// The counts a run ends with.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MatchSummary {
    pub list_id: Uuid,
    pub total: usize,
    pub exact: usize,
    pub probable: usize,
    pub unmatched: usize,
    /// Rows with a cell that could not be read (a bad ID number, …).
    pub problem_rows: usize,
    /// Verification tasks for the list (new and earlier ones).
    pub tasks: usize,
    /// Wall time of reading the rows and classifying them (the batched
    /// lookups), and of creating the tasks, for the performance record.
    pub match_seconds: f64,
    pub task_seconds: f64,
}

/// One row as the list page shows it: masked.
#[derive(Debug, Clone, Serialize)]
pub struct MatchRowView {
    pub row_number: i64,
    pub name: String,
    pub id_number: String,
    pub class: MatchClass,
    pub reason: String,
    pub grid_name: Option<String>,
    pub task_id: Option<Uuid>,
    pub task_state: Option<String>,
}

/// A list with its rows, for the list page.
#[derive(Debug, Clone)]
pub struct MatchListDetail {
    pub list: MatchListRecord,
    pub rows: Vec<MatchRowView>,
}

/// Lists are work for the offices that receive them: sub-district and
/// community admins (and the system, for the CLI).
fn require_office(actor: &Actor) -> ServiceResult<()> {
    match actor.role {
        Role::SubDistrictAdmin | Role::CommunityAdmin => Ok(()),
        _ => Err(ServiceError::Forbidden),
    }
}

/// A cell as the stored text it is matched from. An ID number Excel turned
/// into an imprecise number keeps its scientific form, so that matching it
/// again reports it again instead of reading the rounded digits.
fn stored_text(cell: &Cell, is_id: bool) -> String {
    match cell {
        Cell::Number(n) if is_id && id_text(cell) == Err(ID_SCIENTIFIC) => format!("{n:E}"),
        Cell::Int(i) if is_id && id_text(cell) == Err(ID_SCIENTIFIC) => format!("{:E}", *i as f64),
        other => other.display(),
    }
}

fn headers_json(mapping: &ListMapping) -> String {
    serde_json::to_string(&mapping.headers).unwrap_or_else(|_| "[]".into())
}

fn parse_json_list(text: &str) -> ServiceResult<Vec<String>> {
    serde_json::from_str(text).map_err(|e| ServiceError::Internal(format!("stored list row: {e}")))
}

/// The field name sealed list rows are encrypted under.
const SEALED_CELLS: &str = "match_cells";

impl Service {
    /// A list row holds names, ID numbers and phones as the office received
    /// them, so it is encrypted at rest like the registry's fields: the
    /// row's cells as JSON, sealed with AES-GCM, stored as hex.
    fn seal_cells(&self, texts: &[String]) -> ServiceResult<String> {
        let json =
            serde_json::to_string(texts).map_err(|e| ServiceError::Internal(e.to_string()))?;
        Ok(hex::encode(self.cipher().seal(SEALED_CELLS, &json, "").ciphertext))
    }

    fn open_cells(&self, stored: &str) -> ServiceResult<Vec<String>> {
        let sealed = epigrid_store::SealedField {
            ciphertext: hex::decode(stored)
                .map_err(|e| ServiceError::Internal(format!("sealed list row: {e}")))?,
            blind_index: Vec::new(),
        };
        let json = self
            .cipher()
            .open(&sealed)
            .map_err(|e| ServiceError::Internal(format!("sealed list row: {e}")))?;
        parse_json_list(&json)
    }
}

impl Service {
    /// Reads a list file, matches every row within the actor's scope,
    /// creates the verification tasks and stores the result.
    pub async fn upload_match_list(
        &self,
        actor: &Actor,
        file_name: &str,
        bytes: &[u8],
    ) -> ServiceResult<MatchSummary> {
        require_office(actor)?;
        let table =
            read_table(file_name, bytes).map_err(|e| ServiceError::invalid("file", e.code()))?;
        let mapping = detect_list_mapping(&table.rows)
            .map_err(|e| ServiceError::invalid("file", e.code()))?;
        let id_column = mapping.column_of(ListField::IdNumber);
        let width = mapping.headers.len();
        let mut rows: Vec<(i64, Vec<String>)> = Vec::new();
        for (index, cells) in table.rows.iter().enumerate().skip(mapping.header_row + 1) {
            if cells.iter().all(Cell::is_blank) {
                continue;
            }
            let mut texts: Vec<String> = cells
                .iter()
                .enumerate()
                .map(|(c, cell)| stored_text(cell, Some(c) == id_column))
                .collect();
            texts.resize(width.max(texts.len()), String::new());
            rows.push((index as i64 + 1, texts));
        }
        if rows.is_empty() {
            return Err(ServiceError::invalid("file", "import.file_empty"));
        }
        if rows.len() > MAX_LIST_ROWS {
            return Err(ServiceError::invalid("file", "matching.too_many_rows"));
        }
        let now = self.now();
        let list = MatchListRecord {
            id: Uuid::now_v7(),
            name: file_name.chars().take(200).collect(),
            uploaded_by: actor.user_id,
            uploaded_by_name: actor.username.clone(),
            scope_kind: actor.scope.map(|s| s.kind),
            scope_area_id: actor.scope.map(|s| s.area_id),
            headers: headers_json(&mapping),
            total: 0,
            exact: 0,
            probable: 0,
            unmatched: 0,
            created_at: now,
            updated_at: now,
        };
        self.match_and_save(actor, list, &mapping, rows, "matching.upload").await
    }

    /// Matches a stored list again (the registry may have grown). Tasks
    /// already created are found by their keys, never doubled.
    pub async fn rerun_match_list(&self, actor: &Actor, id: Uuid) -> ServiceResult<MatchSummary> {
        require_office(actor)?;
        let list = self.visible_match_list(actor, id).await?;
        let headers = parse_json_list(&list.headers)?;
        let header_cells: Vec<Cell> = headers.iter().map(|h| Cell::text(h)).collect();
        let mapping = detect_list_mapping(&[header_cells])
            .map_err(|e| ServiceError::invalid("file", e.code()))?;
        let mut rows = Vec::new();
        for r in self.store().match_rows(id).await? {
            rows.push((r.row_number, self.open_cells(&r.cells)?));
        }
        // The rerun acts within the list's own scope, with the actor's name.
        let mut acting = actor.clone();
        acting.scope = list.scope();
        let list = MatchListRecord { updated_at: self.now(), ..list };
        self.match_and_save(&acting, list, &mapping, rows, "matching.rerun").await
    }

    async fn match_and_save(
        &self,
        actor: &Actor,
        mut list: MatchListRecord,
        mapping: &ListMapping,
        rows: Vec<(i64, Vec<String>)>,
        action: &str,
    ) -> ServiceResult<MatchSummary> {
        let started = std::time::Instant::now();
        let today = self.today();
        let parsed: Vec<ListRow> = rows
            .iter()
            .map(|(_, texts)| {
                let cells: Vec<Cell> = texts.iter().map(|t| Cell::text(t)).collect();
                parse_list_row(&cells, mapping, today)
            })
            .collect();
        let (outcomes, paths) = self.classify_rows(actor, &parsed).await?;
        let match_seconds = started.elapsed().as_secs_f64();
        let started = std::time::Instant::now();

        // One task per matched person: the first row naming them creates it
        // (keyed by list and row, as `report_event` keys it), later rows
        // share it. Tasks of an earlier run are found by their keys; the
        // new ones go in as one transaction, not one per person.
        let category = self
            .settings()
            .tasks
            .catalogue
            .get(VERIFY_CATEGORY)
            .ok_or_else(|| ServiceError::invalid("category", "task.unknown_category"))?
            .clone();
        let key_of = |row: i64| format!("match:{}:{row}", list.id);
        let mut firsts: Vec<(i64, Uuid)> = Vec::new();
        let mut seen: std::collections::HashSet<Uuid> = std::collections::HashSet::new();
        for ((row_number, _), outcome) in rows.iter().zip(&outcomes) {
            if let Some(c) = &outcome.resident
                && seen.insert(c.resident_id)
            {
                firsts.push((*row_number, c.resident_id));
            }
        }
        let keys: Vec<String> =
            firsts.iter().map(|(row, _)| format!("report:{}", key_of(*row))).collect();
        let existing: HashMap<String, Uuid> = self
            .store()
            .tasks_by_idempotency_keys(&keys)
            .await?
            .into_iter()
            .filter_map(|t| t.idempotency_key.map(|k| (k, t.id)))
            .collect();
        let now = crate::tasks::now_micros(self.now());
        let mut task_of: HashMap<Uuid, Uuid> = HashMap::new();
        let mut fresh = Vec::new();
        for ((row_number, resident_id), key) in firsts.iter().zip(keys) {
            if let Some(id) = existing.get(&key) {
                task_of.insert(*resident_id, *id);
                continue;
            }
            let path = paths.get(resident_id).copied().ok_or(ServiceError::NotFound)?;
            let (task, first) = self.reported_task(
                actor,
                &category,
                None,
                Subject::Resident(*resident_id),
                path,
                Some(format!("{} #{row_number}", list.name)),
                Some(key),
                now,
            )?;
            task_of.insert(*resident_id, task.id);
            fresh.push((task, first));
        }
        let created = fresh.len();
        match self.store().insert_tasks_bulk(&fresh).await {
            Ok(()) => {}
            // A concurrent run of the same list got there first: one at a
            // time, each key answering with the task that exists.
            Err(epigrid_store::StoreError::Conflict { .. }) => {
                for (task, _) in &fresh {
                    let row = firsts
                        .iter()
                        .find(|(_, r)| *r == task.subject_id)
                        .map_or(0, |(row, _)| *row);
                    let view = self
                        .report_event(
                            actor,
                            ReportEvent {
                                category: VERIFY_CATEGORY.into(),
                                priority: None,
                                subject: Subject::Resident(task.subject_id),
                                note: Some(format!("{} #{row}", list.name)),
                                idempotency_key: Some(key_of(row)),
                            },
                        )
                        .await?;
                    task_of.insert(task.subject_id, view.id);
                }
            }
            Err(e) => return Err(e.into()),
        }
        let mut records = Vec::with_capacity(rows.len());
        let (mut exact, mut probable, mut unmatched) = (0usize, 0usize, 0usize);
        for ((row_number, texts), outcome) in rows.iter().zip(&outcomes) {
            match outcome.class {
                MatchClass::Exact => exact += 1,
                MatchClass::Probable => probable += 1,
                MatchClass::None => unmatched += 1,
            }
            let task_id =
                outcome.resident.as_ref().and_then(|c| task_of.get(&c.resident_id)).copied();
            records.push(MatchRowRecord {
                list_id: list.id,
                row_number: *row_number,
                cells: self.seal_cells(texts)?,
                class: outcome.class.as_str().to_owned(),
                resident_id: outcome.resident.as_ref().map(|c| c.resident_id),
                grid_id: outcome.resident.as_ref().and_then(|c| c.grid_id),
                task_id,
                reason: outcome.reason.to_owned(),
                task_state: None,
            });
        }
        list.total = rows.len() as i64;
        list.exact = exact as i64;
        list.probable = probable as i64;
        list.unmatched = unmatched as i64;
        let problem_rows = parsed.iter().filter(|r| !r.problems.is_empty()).count();
        let summary = MatchSummary {
            list_id: list.id,
            total: rows.len(),
            exact,
            probable,
            unmatched,
            problem_rows,
            tasks: task_of.len(),
            match_seconds,
            task_seconds: started.elapsed().as_secs_f64(),
        };
        // Counts only: the list's people are not repeated in the log.
        let audit = self.audit_record(
            actor,
            action,
            Some(Target { kind: "match_list", id: list.id, path: None }),
            "ok",
            json!({ "total": summary.total, "exact": exact, "probable": probable,
                    "unmatched": unmatched, "problem_rows": problem_rows,
                    "tasks": summary.tasks, "tasks_created": created }),
        );
        self.store().save_match_list(&list, &records, &audit).await?;
        Ok(summary)
    }

    /// Classifies every row with three batched lookups: documents, phones,
    /// names (names only for rows with an address, when nothing better hit).
    async fn classify_rows(
        &self,
        actor: &Actor,
        rows: &[ListRow],
    ) -> ServiceResult<(Vec<epigrid_domain::matching::MatchOutcome>, HashMap<Uuid, AreaPath>)> {
        let store = self.store();
        let cipher = self.cipher();
        let id_blind: Vec<Option<Vec<u8>>> = rows
            .iter()
            .map(|r| r.id_document.as_ref().map(|d| cipher.blind_index("id_number", d.match_key())))
            .collect();
        let wanted: Vec<Vec<u8>> = id_blind.iter().flatten().cloned().collect();
        let mut by_id: HashMap<Vec<u8>, ResidentRecord> = HashMap::new();
        for r in store.residents_by_id_blind(&wanted).await? {
            // Out of scope is as good as absent: nothing is said about it.
            if actor.covers(&r.path)
                && let Some(blind) = r.id_number.as_ref().map(|s| s.blind_index.clone())
            {
                by_id.insert(blind, r);
            }
        }
        let exact_hit = |i: usize| id_blind[i].as_ref().is_some_and(|b| by_id.contains_key(b));

        let phone_blind: Vec<Option<Vec<u8>>> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| {
                r.phone
                    .as_ref()
                    .filter(|_| !exact_hit(i))
                    .map(|p| cipher.blind_index("phone", p.as_str()))
            })
            .collect();
        let mut wanted: Vec<Vec<u8>> = phone_blind.iter().flatten().cloned().collect();
        wanted.sort();
        wanted.dedup();
        let mut by_phone: HashMap<Vec<u8>, Vec<ResidentRecord>> = HashMap::new();
        for r in store.residents_by_phone_blind(&wanted, actor.scope).await? {
            if let Some(blind) = r.phone.as_ref().map(|s| s.blind_index.clone()) {
                by_phone.entry(blind).or_default().push(r);
            }
        }

        let mut names: Vec<String> = rows
            .iter()
            .enumerate()
            .filter(|(i, r)| r.address.is_some() && !exact_hit(*i))
            .filter_map(|(_, r)| r.name.as_ref().map(|n| n.as_str().to_owned()))
            .collect();
        names.sort();
        names.dedup();
        let mut by_name: HashMap<String, Vec<ResidentRecord>> = HashMap::new();
        for r in store.residents_by_names(&names, actor.scope).await? {
            by_name.entry(r.name.as_str().to_owned()).or_default().push(r);
        }
        // Addresses of the name candidates only: building, unit and room.
        let mut household_ids: Vec<Uuid> =
            by_name.values().flatten().map(|r| r.household_id).collect();
        household_ids.sort();
        household_ids.dedup();
        let rooms: HashMap<Uuid, String> = store
            .get_households(&household_ids)
            .await?
            .into_iter()
            .map(|h| (h.id, h.room))
            .collect();
        let mut area_ids: Vec<Uuid> = by_name
            .values()
            .flatten()
            .flat_map(|r| [r.path.building, r.path.unit])
            .flatten()
            .collect();
        area_ids.sort();
        area_ids.dedup();
        let area_names: HashMap<Uuid, String> =
            store.get_areas(&area_ids).await?.into_iter().map(|a| (a.id, a.name)).collect();

        let candidate = |r: &ResidentRecord| {
            let area = |id: Option<Uuid>| {
                id.and_then(|id| area_names.get(&id)).cloned().unwrap_or_default()
            };
            Candidate {
                resident_id: r.id,
                grid_id: r.path.grid,
                name: r.name.as_str().to_owned(),
                building: area(r.path.building),
                unit: area(r.path.unit),
                room: rooms.get(&r.household_id).cloned().unwrap_or_default(),
            }
        };
        let mut outcomes = Vec::with_capacity(rows.len());
        for (i, row) in rows.iter().enumerate() {
            let exact = id_blind[i].as_ref().and_then(|b| by_id.get(b)).map(candidate);
            let phone: Vec<Candidate> = phone_blind[i]
                .as_ref()
                .and_then(|b| by_phone.get(b))
                .map(|v| v.iter().map(candidate).collect())
                .unwrap_or_default();
            let named: Vec<Candidate> = match (&row.name, &row.address) {
                (Some(n), Some(_)) if exact.is_none() => by_name
                    .get(n.as_str())
                    .map(|v| v.iter().map(candidate).collect())
                    .unwrap_or_default(),
                _ => Vec::new(),
            };
            outcomes.push(classify(row, exact.as_ref(), &phone, &named));
        }
        // Where each matched person lives, for their task.
        let mut paths = HashMap::new();
        for r in by_id.values().chain(by_phone.values().flatten()).chain(by_name.values().flatten())
        {
            paths.insert(r.id, r.path);
        }
        Ok((outcomes, paths))
    }

    /// A list the actor may see: one matched within their scope or below it.
    pub async fn visible_match_list(
        &self,
        actor: &Actor,
        id: Uuid,
    ) -> ServiceResult<MatchListRecord> {
        require_office(actor)?;
        let list = self.store().get_match_list(id).await?.ok_or(ServiceError::NotFound)?;
        if self.covers_list(actor, &list).await? { Ok(list) } else { Err(ServiceError::NotFound) }
    }

    async fn covers_list(&self, actor: &Actor, list: &MatchListRecord) -> ServiceResult<bool> {
        let Some(mine) = actor.scope else { return Ok(true) };
        let Some(area_id) = list.scope_area_id else { return Ok(false) };
        if area_id == mine.area_id {
            return Ok(true);
        }
        Ok(self.store().get_area(area_id).await?.is_some_and(|a| mine.covers(&a.path)))
    }

    /// The lists the actor may see, newest first.
    pub async fn match_lists(&self, actor: &Actor) -> ServiceResult<Vec<MatchListRecord>> {
        require_office(actor)?;
        let mut visible = Vec::new();
        for list in self.store().list_match_lists(200).await? {
            if self.covers_list(actor, &list).await? {
                visible.push(list);
            }
        }
        Ok(visible)
    }

    /// A list with its rows, names and documents masked, and the grid and
    /// task state of each matched row as they are now.
    pub async fn match_list_detail(
        &self,
        actor: &Actor,
        id: Uuid,
    ) -> ServiceResult<MatchListDetail> {
        let list = self.visible_match_list(actor, id).await?;
        let headers = parse_json_list(&list.headers)?;
        let header_cells: Vec<Cell> = headers.iter().map(|h| Cell::text(h)).collect();
        let mapping = detect_list_mapping(&[header_cells]).ok();
        let column = |f: ListField| mapping.as_ref().and_then(|m| m.column_of(f));
        let (name_col, id_col) = (column(ListField::Name), column(ListField::IdNumber));
        let rows = self.store().match_rows(id).await?;
        let grids = self.grid_names(&rows).await?;
        let mut views = Vec::with_capacity(rows.len());
        for r in rows {
            let cells = self.open_cells(&r.cells)?;
            let cell = |c: Option<usize>| c.and_then(|c| cells.get(c)).cloned().unwrap_or_default();
            let id_number = cell(id_col);
            views.push(MatchRowView {
                row_number: r.row_number,
                name: mask_name(cell(name_col).trim()),
                id_number: if id_number.chars().count() > 10 {
                    mask_middle(id_number.trim(), 6, 4)
                } else {
                    mask_middle(id_number.trim(), 1, 1)
                },
                class: MatchClass::parse(&r.class).unwrap_or(MatchClass::None),
                reason: r.reason,
                grid_name: r.grid_id.and_then(|g| grids.get(&g).cloned()),
                task_id: r.task_id,
                task_state: r.task_state,
            });
        }
        Ok(MatchListDetail { list, rows: views })
    }

    async fn grid_names(&self, rows: &[MatchRowRecord]) -> ServiceResult<HashMap<Uuid, String>> {
        let mut ids: Vec<Uuid> = rows.iter().filter_map(|r| r.grid_id).collect();
        ids.sort();
        ids.dedup();
        Ok(self.store().get_areas(&ids).await?.into_iter().map(|a| (a.id, a.name)).collect())
    }

    /// The result as .xlsx: the user's own columns, then 匹配结果, 所在网格
    /// and 核查任务状态, the state read now. `translate` gives the words
    /// (the callers pass the zh-CN catalogue: offices' files are Chinese).
    /// The original cells are the user's own upload, given back unmasked to
    /// an office that may see the list; the download is audited.
    pub async fn match_result_xlsx(
        &self,
        actor: &Actor,
        id: Uuid,
        translate: &(dyn Fn(&str) -> String + Sync),
    ) -> ServiceResult<(MatchListRecord, Vec<u8>)> {
        let list = self.visible_match_list(actor, id).await?;
        let headers = parse_json_list(&list.headers)?;
        let rows = self.store().match_rows(id).await?;
        let grids = self.grid_names(&rows).await?;
        let mut workbook = Workbook::new();
        let sheet = workbook.add_worksheet();
        let bold = Format::new().set_bold();
        let xl = |e: rust_xlsxwriter::XlsxError| ServiceError::Internal(e.to_string());
        let width = headers.len() as u16;
        for (c, h) in headers.iter().enumerate() {
            sheet.write_string_with_format(0, c as u16, h, &bold).map_err(xl)?;
        }
        for (i, key) in [
            "matching.col.class",
            "matching.col.grid",
            "matching.col.task_state",
            "matching.col.reason",
        ]
        .iter()
        .enumerate()
        {
            sheet
                .write_string_with_format(0, width + i as u16, translate(key), &bold)
                .map_err(xl)?;
        }
        for (i, r) in rows.iter().enumerate() {
            let line = i as u32 + 1;
            for (c, text) in self.open_cells(&r.cells)?.iter().enumerate().take(width as usize) {
                // Text, always: an ID number must not turn into a number.
                sheet.write_string(line, c as u16, text).map_err(xl)?;
            }
            sheet
                .write_string(line, width, translate(&format!("matching.class.{}", r.class)))
                .map_err(xl)?;
            let grid = r.grid_id.and_then(|g| grids.get(&g)).cloned().unwrap_or_default();
            sheet.write_string(line, width + 1, grid).map_err(xl)?;
            let state = match &r.task_state {
                Some(s) => translate(&format!("board.state.{s}")),
                None => String::new(),
            };
            sheet.write_string(line, width + 2, state).map_err(xl)?;
            let reason = if r.class == "none" { translate(&r.reason) } else { String::new() };
            sheet.write_string(line, width + 3, reason).map_err(xl)?;
        }
        let bytes = workbook.save_to_buffer().map_err(xl)?;
        self.audit(
            actor,
            "matching.download",
            Some(Target { kind: "match_list", id, path: None }),
            "ok",
            json!({ "rows": rows.len() }),
        )
        .await?;
        Ok((list, bytes))
    }
}
