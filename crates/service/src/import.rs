//! Importing buildings, households and residents from a spreadsheet.
//!
//! Three steps, so that a user sees everything before anything is written:
//! 1. `import_mapping`: find the header row and map its columns to fields
//!    (the user may correct the mapping);
//! 2. `plan_import`: validate every row, resolve each address within the
//!    caller's scope, match residents already registered (by the blind index
//!    of their identity document) and compute what would change, writing
//!    nothing;
//! 3. `apply_import`: write the plan in chunks, each one transaction with
//!    its audit entry, under a job record.
//!
//! A crash between chunks leaves whole chunks only. Planning again from the
//! same file finds the rows already written (matched by document: they are
//! unchanged now) and writes the rest, so a re-run ends in the same state as
//! an uninterrupted run. `ImportProgress` is shared with whoever shows
//! progress (the CLI's bar, later a web page polling a background job).

pub mod read;
pub mod report;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use epigrid_domain::import::{
    Cell, ColumnMapping, Field, ImportedRow, MappingError, building_key, clean, find_header_row,
    parse_override, parse_row, room_key, unit_key,
};
use epigrid_domain::{Action, AreaKind, IdDocument, ReasonCode, Residence, Scope};
use epigrid_store::{
    AreaRecord, AuditRecord, HouseholdRecord, ImportChunk, ImportJobRecord, ResidentRecord,
    SealedField,
};
use serde::Serialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

pub use read::{ReadError, Table, read_table};

use crate::{Actor, Service, ServiceError, ServiceResult};

/// Rows per transaction: large enough that per-transaction costs (the
/// audit entry, the fsync) vanish, small enough that a chunk's memory and a
/// rollback stay modest.
pub const DEFAULT_CHUNK_ROWS: usize = 5_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportMode {
    /// Nothing is written unless every row is valid.
    AllOrNothing,
    /// Valid rows are written; the rest are reported.
    ValidOnly,
}

impl ImportMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AllOrNothing => "all_or_nothing",
            Self::ValidOnly => "valid_only",
        }
    }

    pub fn parse(input: &str) -> Option<Self> {
        match input.trim().replace('-', "_").as_str() {
            "all_or_nothing" => Some(Self::AllOrNothing),
            "valid_only" => Some(Self::ValidOnly),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub mode: ImportMode,
    /// The field of every column, by position, as the user chose it on the
    /// import page's mapping step; replaces the detected mapping.
    pub columns: Option<Vec<Option<Field>>>,
    /// `列名=field` corrections of the detected mapping (the CLI's `--map`).
    pub overrides: Vec<String>,
    pub chunk_rows: usize,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self {
            mode: ImportMode::AllOrNothing,
            columns: None,
            overrides: Vec::new(),
            chunk_rows: DEFAULT_CHUNK_ROWS,
        }
    }
}

/// Live counters of an import, updated as it goes; read from another task
/// or thread to draw progress.
#[derive(Debug, Default)]
pub struct ImportProgress {
    phase: AtomicU8,
    pub total_rows: AtomicU64,
    pub checked_rows: AtomicU64,
    pub written_rows: AtomicU64,
    pub to_write: AtomicU64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportPhase {
    Checking,
    Writing,
    Done,
}

impl ImportProgress {
    pub fn phase(&self) -> ImportPhase {
        match self.phase.load(Ordering::Relaxed) {
            0 => ImportPhase::Checking,
            1 => ImportPhase::Writing,
            _ => ImportPhase::Done,
        }
    }

    fn set_phase(&self, phase: ImportPhase) {
        self.phase.store(phase as u8, Ordering::Relaxed);
    }
}

/// One problem of one row, as the user will read it: the row number Excel
/// shows, the column header from their file, and a reason code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowError {
    pub row: usize,
    /// The header as written in the file; empty when the field has no column.
    pub column: String,
    #[serde(skip)]
    pub field: Field,
    pub code: &'static str,
    /// The first row of a duplicate.
    pub other_row: Option<usize>,
}

/// One changed field of a registered resident. Personal values (name,
/// document, phone, birth date) are shown masked or not at all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    pub field: &'static str,
    pub before: String,
    pub after: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedUpdate {
    pub row: usize,
    pub resident_id: Uuid,
    pub name_masked: String,
    pub changes: Vec<FieldChange>,
}

/// What an import would do, computed without writing anything.
#[derive(Debug, Clone)]
pub struct ImportPlan {
    pub mode: ImportMode,
    pub mapping: ColumnMapping,
    /// Index of the header row in the table (0-based; Excel shows it + 1).
    pub header_row: usize,
    pub file_sha256: Vec<u8>,
    pub data_rows: usize,
    pub errors: Vec<RowError>,
    /// Rows with at least one error.
    pub rejected_rows: usize,
    pub inserts: usize,
    pub updates: Vec<PlannedUpdate>,
    pub unchanged: usize,
    pub new_areas: usize,
    pub new_households: usize,
    /// The newest earlier job of the same file, when there is one.
    pub previous_job: Option<ImportJobRecord>,
    chunks: Vec<PlannedChunk>,
}

impl ImportPlan {
    /// Whether `apply_import` writes anything: always in valid-only mode,
    /// only when every row is valid in all-or-nothing mode.
    pub fn can_apply(&self) -> bool {
        self.mode == ImportMode::ValidOnly || self.rejected_rows == 0
    }
}

#[derive(Debug, Clone, Default)]
struct PlannedChunk {
    areas: Vec<AreaRecord>,
    households: Vec<HouseholdRecord>,
    inserts: Vec<ResidentRecord>,
    updates: Vec<ResidentRecord>,
}

impl PlannedChunk {
    fn rows(&self) -> usize {
        self.inserts.len() + self.updates.len()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportSummary {
    pub job_id: Uuid,
    /// `done`, or `rejected` when all-or-nothing found invalid rows.
    pub status: String,
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub rejected: u64,
}

/// SHA-256 of a file, the key that ties re-runs to their earlier job.
pub fn file_digest(bytes: &[u8]) -> Vec<u8> {
    Sha256::digest(bytes).to_vec()
}

/// The areas of the caller's scope (and the scope's ancestors, so that a
/// grid worker's file may name its community), indexed the ways rows name
/// them.
struct Areas {
    by_id: HashMap<Uuid, AreaRecord>,
    by_code: HashMap<String, Uuid>,
    communities_by_name: HashMap<String, Vec<Uuid>>,
    grids_by_name: HashMap<String, Vec<Uuid>>,
    children_by_key: HashMap<(Uuid, String), Uuid>,
}

impl Areas {
    fn new(records: Vec<AreaRecord>) -> Self {
        let mut areas = Areas {
            by_id: HashMap::new(),
            by_code: HashMap::new(),
            communities_by_name: HashMap::new(),
            grids_by_name: HashMap::new(),
            children_by_key: HashMap::new(),
        };
        for record in records {
            areas.add(record);
        }
        areas
    }

    fn add(&mut self, a: AreaRecord) {
        if let Some(code) = &a.code {
            self.by_code.insert(code.clone(), a.id);
        }
        let name = clean(&a.name);
        match a.kind {
            AreaKind::Community => {
                self.communities_by_name.entry(name.clone()).or_default().push(a.id);
                // "永安社区" is also written "永安".
                if let Some(short) = name.strip_suffix("社区").filter(|s| !s.is_empty()) {
                    self.communities_by_name.entry(short.to_owned()).or_default().push(a.id);
                }
            }
            AreaKind::Grid => {
                self.grids_by_name.entry(name.clone()).or_default().push(a.id);
                if let Some(short) = name.strip_suffix("网格").filter(|s| !s.is_empty()) {
                    self.grids_by_name.entry(short.to_owned()).or_default().push(a.id);
                }
            }
            AreaKind::Building => {
                if let Some(parent) = a.parent_id {
                    self.children_by_key.insert((parent, building_key(&a.name)), a.id);
                }
            }
            AreaKind::Unit => {
                if let Some(parent) = a.parent_id {
                    self.children_by_key.insert((parent, unit_key(&a.name)), a.id);
                }
            }
            AreaKind::SubDistrict => {}
        }
        self.by_id.insert(a.id, a);
    }

    fn of_kind(&self, id: Uuid, kind: AreaKind) -> Option<&AreaRecord> {
        self.by_id.get(&id).filter(|a| a.kind == kind)
    }

    /// The one area of `kind` a cell names (by code, or by name among
    /// `candidates`), or the reason it names none or several.
    fn pick(
        &self,
        text: &str,
        kind: AreaKind,
        by_name: &HashMap<String, Vec<Uuid>>,
        within: Option<Uuid>,
    ) -> Result<Uuid, &'static str> {
        if let Some(a) = self.by_code.get(text).and_then(|id| self.of_kind(*id, kind)) {
            return Ok(a.id);
        }
        let matches: Vec<Uuid> = by_name
            .get(text)
            .into_iter()
            .flatten()
            .copied()
            .filter(|id| within.is_none_or(|w| self.by_id[id].parent_id == Some(w)))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let (unknown, ambiguous) = match kind {
            AreaKind::Community => ("import.unknown_community", "import.community_ambiguous"),
            _ => ("import.unknown_grid", "import.grid_ambiguous"),
        };
        match matches.as_slice() {
            [one] => Ok(*one),
            [] => Err(unknown),
            _ => Err(ambiguous),
        }
    }
}

/// The display name of a new building or unit: `3` becomes `3号楼`, a name
/// with words in it stays as written.
fn new_area_name(kind: AreaKind, written: &str, key: &str) -> String {
    let numeric = !key.is_empty() && key.chars().all(|c| c.is_ascii_digit());
    match (kind, numeric) {
        (AreaKind::Building, true) => format!("{key}号楼"),
        (AreaKind::Unit, true) => format!("{key}单元"),
        _ => clean(written),
    }
}

impl Service {
    /// Finds the header row and maps its columns, with the user's
    /// corrections applied (`options.columns`, then `options.overrides`).
    /// Fails when no row looks like a header, a correction does not fit the
    /// file, or a required field has no column.
    pub fn import_mapping(
        &self,
        actor: &Actor,
        table: &Table,
        options: &ImportOptions,
    ) -> ServiceResult<(usize, ColumnMapping)> {
        let (header_row, mapping) = self.detected_mapping(actor, table)?;
        let mut mapping = mapping;
        if let Some(columns) = &options.columns {
            mapping.assign(columns).map_err(|e| {
                let field = match e {
                    MappingError::FieldTwice(f) => f.as_str(),
                    _ => "file",
                };
                ServiceError::invalid(field, e.code())
            })?;
        }
        for text in &options.overrides {
            let (column, field) =
                parse_override(text).map_err(|e| ServiceError::invalid(text.clone(), e.code()))?;
            mapping.set(&column, field).map_err(|e| ServiceError::invalid(column, e.code()))?;
        }
        if let Some(missing) = mapping.missing_required(self.grid_column_needed(actor)).first() {
            return Err(ServiceError::invalid(missing.as_str(), "import.missing_column"));
        }
        Ok((header_row, mapping))
    }

    /// The header row and the mapping as detected, before any correction
    /// and whether or not it is complete: what the mapping step starts from.
    pub fn detected_mapping(
        &self,
        actor: &Actor,
        table: &Table,
    ) -> ServiceResult<(usize, ColumnMapping)> {
        actor.require(Action::WriteResidents)?;
        let header_row = find_header_row(&table.rows)
            .ok_or_else(|| ServiceError::invalid("file", "import.no_header"))?;
        Ok((header_row, ColumnMapping::detect(&table.rows[header_row])))
    }

    /// A grid worker's (or anyone's below grid level) rows live in their own
    /// grid unless they say otherwise; above it, rows must name their grid.
    fn grid_column_needed(&self, actor: &Actor) -> bool {
        actor.scope.is_none_or(|s| matches!(s.kind, AreaKind::SubDistrict | AreaKind::Community))
    }

    /// Validates and resolves every row and computes what would change.
    /// Writes nothing.
    pub async fn plan_import(
        &self,
        actor: &Actor,
        table: &Table,
        file_sha256: Vec<u8>,
        options: &ImportOptions,
        progress: &ImportProgress,
    ) -> ServiceResult<ImportPlan> {
        actor.require(Action::WriteResidents)?;
        progress.set_phase(ImportPhase::Checking);
        let (header_row, mapping) = self.import_mapping(actor, table, options)?;
        let today = self.today();
        let column_name = |field: Field| mapping.header_of(field).unwrap_or_default().to_owned();
        let mut errors: Vec<RowError> = Vec::new();
        let mut push_error =
            |row: usize, field: Field, code: &'static str, other: Option<usize>| {
                errors.push(RowError {
                    row,
                    column: column_name(field),
                    field,
                    code,
                    other_row: other,
                });
            };

        // 1. Every row on its own.
        let data: Vec<(usize, &Vec<Cell>)> = table
            .rows
            .iter()
            .enumerate()
            .skip(header_row + 1)
            .filter(|(_, cells)| !cells.iter().all(Cell::is_blank))
            .map(|(index, cells)| (index + 1, cells))
            .collect();
        progress.total_rows.store(data.len() as u64, Ordering::Relaxed);
        let mut valid: Vec<(usize, ImportedRow)> = Vec::with_capacity(data.len());
        let mut first_row_of: HashMap<String, usize> = HashMap::new();
        for (row, cells) in &data {
            match parse_row(cells, &mapping, today) {
                Ok(parsed) => {
                    // The same person twice in one file: keep the first,
                    // since which of the two is right is the user's call.
                    let key = parsed.id_document.match_key().to_owned();
                    match first_row_of.get(&key) {
                        Some(first) => push_error(
                            *row,
                            Field::IdNumber,
                            "import.duplicate_in_file",
                            Some(*first),
                        ),
                        None => {
                            first_row_of.insert(key, *row);
                            valid.push((*row, parsed));
                        }
                    }
                }
                Err(problems) => {
                    for p in problems {
                        push_error(*row, p.field, p.code, p.other_row);
                    }
                }
            }
            progress.checked_rows.fetch_add(1, Ordering::Relaxed);
        }

        // 2. Addresses, within the caller's scope.
        let mut snapshot = self.store().areas_within(actor.scope).await?;
        let scope_path = match actor.scope {
            Some(scope) => {
                let area =
                    self.store().get_area(scope.area_id).await?.ok_or(ServiceError::NotFound)?;
                let ancestors: Vec<Uuid> =
                    [area.path.sub_district, area.path.community, area.path.grid]
                        .into_iter()
                        .flatten()
                        .filter(|id| *id != area.id)
                        .collect();
                snapshot.extend(self.store().get_areas(&ancestors).await?);
                Some(area.path)
            }
            None => None,
        };
        let mut areas = Areas::new(snapshot);
        let own_grid = scope_path.and_then(|p| p.grid);
        let may_create_areas = actor.role.allows(Action::WriteAreas);
        let households = self.store().households_within(actor.scope).await?;
        let mut household_by_key: HashMap<(Uuid, String), HouseholdRecord> =
            households.into_iter().map(|h| ((h.unit_id(), room_key(&h.room)), h)).collect();
        // The row that first needs a new area or household writes it.
        let mut new_areas: Vec<(usize, AreaRecord)> = Vec::new();
        let mut new_households: Vec<(usize, HouseholdRecord)> = Vec::new();
        let now = self.now();

        let mut placed: Vec<(usize, ImportedRow, HouseholdRecord)> =
            Vec::with_capacity(valid.len());
        for (row, parsed) in valid {
            let community = match parsed.community.as_deref() {
                Some(text) => {
                    match areas.pick(text, AreaKind::Community, &areas.communities_by_name, None) {
                        Ok(id) => Some(id),
                        Err(code) => {
                            push_error(row, Field::Community, code, None);
                            continue;
                        }
                    }
                }
                None => None,
            };
            let grid = match parsed.grid.as_deref() {
                Some(text) => {
                    match areas.pick(text, AreaKind::Grid, &areas.grids_by_name, community) {
                        Ok(id) => id,
                        Err(code) => {
                            push_error(row, Field::Grid, code, None);
                            continue;
                        }
                    }
                }
                None => match own_grid {
                    Some(id) => id,
                    None => {
                        push_error(row, Field::Grid, "field.required", None);
                        continue;
                    }
                },
            };
            let grid_record = areas.by_id[&grid].clone();
            if community.is_some_and(|c| grid_record.path.community != Some(c)) {
                push_error(row, Field::Grid, "import.grid_not_in_community", None);
                continue;
            }
            let mut parent = grid_record;
            let mut failed = false;
            for (kind, written, key, field) in [
                (
                    AreaKind::Building,
                    &parsed.building,
                    building_key(&parsed.building),
                    Field::Building,
                ),
                (AreaKind::Unit, &parsed.unit, unit_key(&parsed.unit), Field::Unit),
            ] {
                let existing = areas.children_by_key.get(&(parent.id, key.clone())).copied();
                let next = match existing {
                    Some(id) => areas.by_id[&id].clone(),
                    None if may_create_areas && actor.covers(&parent.path) => {
                        let id = Uuid::now_v7();
                        let record = AreaRecord {
                            id,
                            kind,
                            parent_id: Some(parent.id),
                            path: parent.path.child(kind, id),
                            code: None,
                            name: new_area_name(kind, written, &key),
                            grid_kind: None,
                            boundary: None,
                            address: None,
                            created_at: now,
                            updated_at: now,
                        };
                        areas.add(record.clone());
                        new_areas.push((row, record.clone()));
                        record
                    }
                    None => {
                        let code = if kind == AreaKind::Building {
                            "import.unknown_building"
                        } else {
                            "import.unknown_unit"
                        };
                        push_error(row, field, code, None);
                        failed = true;
                        break;
                    }
                };
                parent = next;
            }
            if failed {
                continue;
            }
            let room = room_key(&parsed.room);
            let household = household_by_key
                .entry((parent.id, room.clone()))
                .or_insert_with(|| {
                    let h = HouseholdRecord {
                        id: Uuid::now_v7(),
                        path: parent.path,
                        room: clean(&parsed.room),
                        created_at: now,
                        updated_at: now,
                    };
                    new_households.push((row, h.clone()));
                    h
                })
                .clone();
            placed.push((row, parsed, household));
        }

        // 3. People already registered, by the blind index of their document.
        let blinds: Vec<Vec<u8>> = placed
            .iter()
            .map(|(_, p, _)| self.cipher().blind_index("id_number", p.id_document.match_key()))
            .collect();
        let existing: HashMap<Vec<u8>, ResidentRecord> = self
            .store()
            .residents_by_id_blind(&blinds)
            .await?
            .into_iter()
            .filter_map(|r| r.id_number.as_ref().map(|s| s.blind_index.clone()).map(|b| (b, r)))
            .collect();

        let mut inserts: Vec<(usize, ResidentRecord)> = Vec::new();
        let mut updates: Vec<(usize, ResidentRecord)> = Vec::new();
        let mut planned_updates: Vec<PlannedUpdate> = Vec::new();
        let mut unchanged = 0usize;
        for ((row, parsed, household), blind) in placed.into_iter().zip(blinds) {
            if let Err(code) = self.check_tags(&parsed) {
                push_error(row, Field::Tags, code, None);
                continue;
            }
            match existing.get(&blind) {
                // Someone outside the caller's scope: answered as the
                // registry's own form answers it, without saying where.
                Some(current) if !actor.covers(&current.path) => {
                    push_error(row, Field::IdNumber, "id.duplicate", None);
                }
                Some(current) => {
                    let next = self.imported_record(&parsed, &household, Some(current), now);
                    let changes = self.describe_changes(current, &next, &areas, &household);
                    if changes.is_empty() {
                        unchanged += 1;
                    } else {
                        planned_updates.push(PlannedUpdate {
                            row,
                            resident_id: current.id,
                            name_masked: current.name.masked(),
                            changes,
                        });
                        updates.push((row, next));
                    }
                }
                None => inserts.push((row, self.imported_record(&parsed, &household, None, now))),
            }
        }

        // 4. Chunks in row order; each new area and household goes with
        // the first row that needs it, and only when that row is written.
        errors.sort_by_key(|e| e.row);
        let rejected: HashSet<usize> = errors.iter().map(|e| e.row).collect();
        let mut writes: Vec<(usize, bool, ResidentRecord)> = inserts
            .into_iter()
            .map(|(row, r)| (row, true, r))
            .chain(updates.into_iter().map(|(row, r)| (row, false, r)))
            .collect();
        writes.sort_by_key(|(row, ..)| *row);
        let needed_households: HashSet<Uuid> =
            writes.iter().map(|(_, _, r)| r.household_id).collect();
        let needed_areas: HashSet<Uuid> =
            writes.iter().flat_map(|(_, _, r)| [r.path.building, r.path.unit]).flatten().collect();
        let mut area_by_row: HashMap<usize, Vec<AreaRecord>> = HashMap::new();
        let new_area_count = new_areas.iter().filter(|(_, a)| needed_areas.contains(&a.id)).count();
        for (row, area) in new_areas.into_iter().filter(|(_, a)| needed_areas.contains(&a.id)) {
            area_by_row.entry(row).or_default().push(area);
        }
        let mut household_by_row: HashMap<usize, Vec<HouseholdRecord>> = HashMap::new();
        let new_household_count =
            new_households.iter().filter(|(_, h)| needed_households.contains(&h.id)).count();
        for (row, h) in
            new_households.into_iter().filter(|(_, h)| needed_households.contains(&h.id))
        {
            household_by_row.entry(row).or_default().push(h);
        }
        // A new area or household first needed by a row that was rejected
        // later (say, for an unknown tag) is written with the next row that
        // uses it: carry pending ones forward.
        let mut pending_areas: Vec<AreaRecord> = Vec::new();
        let mut pending_households: Vec<HouseholdRecord> = Vec::new();
        let mut carried_rows: Vec<usize> =
            area_by_row.keys().chain(household_by_row.keys()).copied().collect();
        carried_rows.sort_unstable();
        carried_rows.dedup();
        let chunk_rows = options.chunk_rows.max(1);
        let mut chunks: Vec<PlannedChunk> = Vec::new();
        let mut current = PlannedChunk::default();
        let mut carried = carried_rows.into_iter().peekable();
        let mut written_areas: HashSet<Uuid> = HashSet::new();
        let mut written_households: HashSet<Uuid> = HashSet::new();
        for (row, is_insert, record) in writes {
            while let Some(next) = carried.next_if(|r| *r <= row) {
                pending_areas.extend(area_by_row.remove(&next).unwrap_or_default());
                pending_households.extend(household_by_row.remove(&next).unwrap_or_default());
            }
            for id in [record.path.building, record.path.unit].into_iter().flatten() {
                if let Some(i) = pending_areas.iter().position(|a| a.id == id)
                    && written_areas.insert(id)
                {
                    // Parents were pushed before children, and a unit's
                    // building is needed by the same record.
                    current.areas.push(pending_areas.remove(i));
                }
            }
            if let Some(i) = pending_households.iter().position(|h| h.id == record.household_id)
                && written_households.insert(record.household_id)
            {
                current.households.push(pending_households.remove(i));
            }
            if is_insert {
                current.inserts.push(record);
            } else {
                current.updates.push(record);
            }
            if current.rows() >= chunk_rows {
                chunks.push(std::mem::take(&mut current));
            }
        }
        if current.rows() > 0 {
            chunks.push(current);
        }
        let inserts_count = chunks.iter().map(|c| c.inserts.len()).sum();
        let previous_job = self.store().latest_import_job(&file_sha256).await?;
        Ok(ImportPlan {
            mode: options.mode,
            mapping,
            header_row,
            file_sha256,
            data_rows: data.len(),
            rejected_rows: rejected.len(),
            errors,
            inserts: inserts_count,
            updates: planned_updates,
            unchanged,
            new_areas: new_area_count,
            new_households: new_household_count,
            previous_job,
            chunks,
        })
    }

    fn check_tags(&self, row: &ImportedRow) -> Result<(), &'static str> {
        if row.tags.iter().all(|t| self.tag_known(t)) { Ok(()) } else { Err("tag.unknown") }
    }

    /// The record a row makes: a new resident, or `current` with the row's
    /// values. Sealed fields whose value is unchanged keep their ciphertext,
    /// so an unchanged row compares equal.
    fn imported_record(
        &self,
        row: &ImportedRow,
        household: &HouseholdRecord,
        current: Option<&ResidentRecord>,
        now: DateTime<Utc>,
    ) -> ResidentRecord {
        let doc: &IdDocument = &row.id_document;
        let id_number = match current.and_then(|c| c.id_number.as_ref()) {
            Some(sealed) if self.cipher().open(sealed).is_ok_and(|clear| clear == doc.as_str()) => {
                sealed.clone()
            }
            _ => self.cipher().seal("id_number", doc.as_str(), doc.match_key()),
        };
        let phone: Option<SealedField> = row.phone.as_ref().map(|p| {
            let blind = self.cipher().blind_index("phone", p.as_str());
            match current.and_then(|c| c.phone.as_ref()) {
                Some(sealed) if sealed.blind_index == blind => sealed.clone(),
                _ => self.cipher().seal("phone", p.as_str(), p.as_str()),
            }
        });
        ResidentRecord {
            id: current.map_or_else(Uuid::now_v7, |c| c.id),
            household_id: household.id,
            path: household.path,
            name: row.name.clone(),
            sex: row.sex,
            birth_date: row.birth_date,
            id_kind: Some(doc.kind()),
            id_number: Some(id_number),
            // A file without a phone column (or an empty cell) keeps the
            // phone already on record: silence is not a deletion.
            phone: phone.or_else(|| current.and_then(|c| c.phone.clone())),
            relation: row.relation,
            residence: row.residence.clone(),
            tags: row.tags.clone(),
            created_at: current.map_or(now, |c| c.created_at),
            updated_at: now,
        }
    }

    fn describe_changes(
        &self,
        before: &ResidentRecord,
        after: &ResidentRecord,
        areas: &Areas,
        household: &HouseholdRecord,
    ) -> Vec<FieldChange> {
        let mut changes = Vec::new();
        let mut push = |field: &'static str, before: String, after: String| {
            changes.push(FieldChange { field, before, after });
        };
        let hidden = || "***".to_owned();
        if before.household_id != after.household_id {
            let place = |h_unit: Option<Uuid>, room: &str| {
                let unit = h_unit.and_then(|u| areas.by_id.get(&u));
                let building = unit.and_then(|u| u.parent_id).and_then(|b| areas.by_id.get(&b));
                format!(
                    "{}{}{}",
                    building.map(|b| b.name.as_str()).unwrap_or("?"),
                    unit.map(|u| u.name.as_str()).unwrap_or("?"),
                    room
                )
            };
            push(
                "household",
                place(before.path.unit, "…"),
                place(household.path.unit, &household.room),
            );
        }
        if before.name != after.name {
            push("name", before.name.masked(), after.name.masked());
        }
        if before.sex != after.sex {
            push("sex", format!("{:?}", before.sex), format!("{:?}", after.sex));
        }
        if before.birth_date != after.birth_date {
            push("birth_date", hidden(), hidden());
        }
        if before.id_number != after.id_number || before.id_kind != after.id_kind {
            push("id_number", hidden(), hidden());
        }
        let phone_blind = |r: &ResidentRecord| r.phone.as_ref().map(|s| s.blind_index.clone());
        if phone_blind(before) != phone_blind(after) {
            let masked = |r: &ResidentRecord| {
                r.phone
                    .as_ref()
                    .and_then(|s| self.cipher().open(s).ok())
                    .map(|p| epigrid_domain::mask::mask_middle(&p, 3, 4))
                    .unwrap_or_default()
            };
            push("phone", masked(before), masked(after));
        }
        if before.relation != after.relation {
            push("relation", before.relation.as_str().into(), after.relation.as_str().into());
        }
        if before.residence != after.residence {
            let text = |r: &Residence| match r {
                Residence::Registered => "registered".to_owned(),
                Residence::Floating { arrived_on, origin } => {
                    format!("floating {arrived_on} {origin}")
                }
            };
            push("residence", text(&before.residence), text(&after.residence));
        }
        if before.tags != after.tags {
            let text = |r: &ResidentRecord| {
                r.tags.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(",")
            };
            push("tags", text(before), text(after));
        }
        changes
    }

    /// Writes a plan chunk by chunk. In all-or-nothing mode a plan with
    /// rejected rows writes nothing (its job is recorded as `rejected`).
    pub async fn apply_import(
        &self,
        actor: &Actor,
        plan: &ImportPlan,
        progress: &ImportProgress,
    ) -> ServiceResult<ImportSummary> {
        actor.require(Action::WriteResidents)?;
        let now = self.now();
        let mut job = ImportJobRecord {
            id: Uuid::now_v7(),
            file_sha256: plan.file_sha256.clone(),
            actor_user_id: actor.user_id,
            actor_name: actor.username.clone(),
            mode: plan.mode.as_str().to_owned(),
            status: "running".into(),
            total_rows: plan.data_rows as i64,
            inserted: 0,
            updated: 0,
            unchanged: plan.unchanged as i64,
            rejected: plan.rejected_rows as i64,
            chunks_done: 0,
            created_at: now,
            updated_at: now,
        };
        self.store().insert_import_job(&job).await?;
        let chunks: &[PlannedChunk] = if plan.can_apply() { &plan.chunks } else { &[] };
        progress.to_write.store(chunks.iter().map(|c| c.rows() as u64).sum(), Ordering::Relaxed);
        progress.set_phase(ImportPhase::Writing);
        let (mut inserted, mut updated) = (0u64, 0u64);
        for (index, chunk) in chunks.iter().enumerate() {
            let at = self.now();
            let detail = serde_json::json!({
                "job": job.id,
                "chunk": index + 1,
                "areas": chunk.areas.len(),
                "households": chunk.households.len(),
                "inserted": chunk.inserts.len(),
                "updated": chunk.updates.len(),
            });
            let write = ImportChunk {
                job_id: job.id,
                areas: chunk.areas.clone(),
                households: chunk.households.clone(),
                inserts: chunk.inserts.clone(),
                updates: chunk.updates.clone(),
                at,
                audit: self.import_audit(actor, &job, "import.chunk", "ok", detail, at),
            };
            if let Err(error) = self.store().apply_import_chunk(&write).await {
                job.status = "failed".into();
                job.updated_at = self.now();
                // Best effort: the chunk's own failure is the error to report.
                let _ = self.store().update_import_job(&job).await;
                let detail = serde_json::json!({
                    "job": job.id, "chunks_done": index, "inserted": inserted, "updated": updated,
                });
                let entry = self.import_audit(actor, &job, "import", "failed", detail, self.now());
                let _ = self.store().append_audit(&entry).await;
                return Err(error.into());
            }
            inserted += chunk.inserts.len() as u64;
            updated += chunk.updates.len() as u64;
            progress.written_rows.fetch_add(chunk.rows() as u64, Ordering::Relaxed);
        }
        job.status = if plan.can_apply() { "done" } else { "rejected" }.into();
        job.updated_at = self.now();
        self.store().update_import_job(&job).await?;
        let detail = serde_json::json!({
            "job": job.id,
            "mode": plan.mode.as_str(),
            "rows": plan.data_rows,
            "inserted": inserted,
            "updated": updated,
            "unchanged": plan.unchanged,
            "rejected": plan.rejected_rows,
            "areas": if plan.can_apply() { plan.new_areas } else { 0 },
            "households": if plan.can_apply() { plan.new_households } else { 0 },
        });
        let outcome = if plan.can_apply() { "ok" } else { "rejected" };
        let entry = self.import_audit(actor, &job, "import", outcome, detail, self.now());
        self.store().append_audit(&entry).await?;
        progress.set_phase(ImportPhase::Done);
        Ok(ImportSummary {
            job_id: job.id,
            status: job.status,
            inserted,
            updated,
            unchanged: plan.unchanged as u64,
            rejected: plan.rejected_rows as u64,
        })
    }

    fn import_audit(
        &self,
        actor: &Actor,
        job: &ImportJobRecord,
        action: &str,
        outcome: &str,
        detail: serde_json::Value,
        at: DateTime<Utc>,
    ) -> AuditRecord {
        AuditRecord {
            id: Uuid::now_v7(),
            at,
            actor_user_id: actor.user_id,
            actor_name: actor.username.clone(),
            actor_role: actor.user_id.map(|_| actor.role),
            action: action.to_owned(),
            target_kind: Some("import_job".into()),
            target_id: Some(job.id),
            community_id: actor
                .scope
                .filter(|s| s.kind == AreaKind::Community)
                .map(|s: Scope| s.area_id),
            client_addr: actor.client_addr.clone(),
            outcome: outcome.to_owned(),
            detail: detail.to_string(),
        }
    }

    /// Reads, plans and (unless the plan says no) applies in one call.
    pub async fn import_residents(
        &self,
        actor: &Actor,
        file_name: &str,
        bytes: &[u8],
        options: &ImportOptions,
        progress: &ImportProgress,
    ) -> ServiceResult<(ImportPlan, ImportSummary)> {
        let table =
            read_table(file_name, bytes).map_err(|e| ServiceError::invalid("file", e.code()))?;
        let plan = self.plan_import(actor, &table, file_digest(bytes), options, progress).await?;
        let summary = self.apply_import(actor, &plan, progress).await?;
        Ok((plan, summary))
    }
}
