//! The category catalogue: what kinds of work there are, how urgent each is
//! by default, how long each stage may take, and which role handles it.
//! It is configuration, versioned by effective date like every rule
//! (RULES.md "every number is configuration"), so a task is always judged by
//! the catalogue that was in effect when it was reported.
//!
//! In the written form (`CatalogueDocument`) the catalogue gives default
//! limits once and each category overrides only the stages that differ; a
//! loaded `Catalogue` holds every category fully resolved.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{NaiveDate, NaiveDateTime, TimeDelta};
use serde::{Deserialize, Serialize};

use super::calendar::WorkCalendar;
use super::event::Priority;
use super::state::Stage;
use crate::Role;

/// A time limit, in working time against the calendar or in elapsed
/// wall-clock time. Elapsed limits are for work that cannot wait for Monday:
/// a quarantined household's food, a fever follow-up.
/// Written `{"working_minutes": 240}` or `{"elapsed_minutes": 30}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeLimit {
    WorkingMinutes(u32),
    ElapsedMinutes(u32),
}

impl TimeLimit {
    pub fn minutes(self) -> u32 {
        match self {
            TimeLimit::WorkingMinutes(m) | TimeLimit::ElapsedMinutes(m) => m,
        }
    }

    pub fn duration(self) -> TimeDelta {
        TimeDelta::minutes(self.minutes().into())
    }

    /// The deadline of a stage whose clock started at `start` (local time).
    pub fn deadline_from(self, start: NaiveDateTime, calendar: &WorkCalendar) -> NaiveDateTime {
        match self {
            TimeLimit::WorkingMinutes(_) => calendar.add_working_time(start, self.duration()),
            TimeLimit::ElapsedMinutes(_) => start + self.duration(),
        }
    }

    /// How much of this limit's kind of time lies between `a` and `b`, e.g.
    /// to show "2 working hours left".
    pub fn measure(self, a: NaiveDateTime, b: NaiveDateTime, calendar: &WorkCalendar) -> TimeDelta {
        match self {
            TimeLimit::WorkingMinutes(_) => calendar.working_time_between(a, b),
            TimeLimit::ElapsedMinutes(_) => b - a,
        }
    }
}

/// The limit of one stage, with optional overrides per priority (an urgent
/// task must be dispatched in 30 minutes, others in 4 working hours).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageLimit {
    pub default: TimeLimit,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub by_priority: BTreeMap<Priority, TimeLimit>,
}

impl StageLimit {
    pub fn new(default: TimeLimit) -> Self {
        Self { default, by_priority: BTreeMap::new() }
    }

    pub fn with(mut self, priority: Priority, limit: TimeLimit) -> Self {
        self.by_priority.insert(priority, limit);
        self
    }

    pub fn for_priority(&self, priority: Priority) -> TimeLimit {
        self.by_priority.get(&priority).copied().unwrap_or(self.default)
    }

    fn all_limits(&self) -> impl Iterator<Item = TimeLimit> + '_ {
        std::iter::once(self.default).chain(self.by_priority.values().copied())
    }
}

/// One limit for each stage of the closed loop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageLimits {
    pub verify: StageLimit,
    pub dispatch: StageLimit,
    pub handle: StageLimit,
    pub close: StageLimit,
}

impl StageLimits {
    pub fn get(&self, stage: Stage) -> &StageLimit {
        match stage {
            Stage::Verify => &self.verify,
            Stage::Dispatch => &self.dispatch,
            Stage::Handle => &self.handle,
            Stage::Close => &self.close,
        }
    }
}

/// The stages a category sets itself. An override replaces the default
/// stage limit whole, priority overrides included, so what a category says
/// is all that applies to it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StageLimitOverrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify: Option<StageLimit>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dispatch: Option<StageLimit>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handle: Option<StageLimit>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub close: Option<StageLimit>,
}

impl StageLimitOverrides {
    fn resolve(self, defaults: &StageLimits) -> StageLimits {
        StageLimits {
            verify: self.verify.unwrap_or_else(|| defaults.verify.clone()),
            dispatch: self.dispatch.unwrap_or_else(|| defaults.dispatch.clone()),
            handle: self.handle.unwrap_or_else(|| defaults.handle.clone()),
            close: self.close.unwrap_or_else(|| defaults.close.clone()),
        }
    }
}

/// A kind of work, fully resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Category {
    /// Stable code stored on tasks: `[a-z][a-z0-9_]*`, at most 64 characters.
    pub code: String,
    /// Translation key of the display name, e.g. `task.category.fever_follow_up`.
    pub name_key: String,
    pub default_priority: Priority,
    pub limits: StageLimits,
    /// The role whose accounts are candidates for automatic dispatch.
    pub handler_role: Role,
    /// Its tasks' notes and photos record someone's health, movements or
    /// needs (a temperature taken at the door, a photo of a delivery to a
    /// quarantined flat): personal data under PIPL that the retention purge
    /// deletes `retention_days` after the task ended. The task's steps and
    /// times stay, for the evaluation.
    pub holds_health_data: bool,
}

impl Category {
    pub fn limit(&self, stage: Stage, priority: Priority) -> TimeLimit {
        self.limits.get(stage).for_priority(priority)
    }
}

/// A category as written in a catalogue file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoryDocument {
    pub code: String,
    pub name_key: String,
    pub default_priority: Priority,
    pub handler_role: Role,
    #[serde(default)]
    pub limits: StageLimitOverrides,
    /// See `Category::holds_health_data`; absent means false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub holds_health_data: bool,
}

/// A catalogue as written in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogueDocument {
    pub effective_from: NaiveDate,
    pub default_limits: StageLimits,
    pub categories: Vec<CategoryDocument>,
}

/// A checked catalogue: at least one category, unique well-formed codes,
/// non-empty name keys, every limit positive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "CatalogueDocument", into = "CatalogueDocument")]
pub struct Catalogue {
    effective_from: NaiveDate,
    default_limits: StageLimits,
    categories: Vec<Category>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogueError {
    #[error("the catalogue has no categories")]
    Empty,
    #[error("category code {0:?} is not of the form [a-z][a-z0-9_]*, at most 64 characters")]
    InvalidCode(String),
    #[error("category code {0:?} appears more than once")]
    DuplicateCode(String),
    #[error("category {0:?} has an empty name key")]
    EmptyNameKey(String),
    #[error("a time limit of stage {stage} of {category:?} is zero")]
    ZeroLimit { category: String, stage: &'static str },
    #[error("two catalogues take effect on {0}")]
    DuplicateEffectiveDate(NaiveDate),
    #[error("the catalogue is not valid JSON of the expected shape: {0}")]
    Malformed(String),
}

impl crate::ReasonCode for CatalogueError {
    fn code(&self) -> &'static str {
        match self {
            CatalogueError::Empty => "catalogue.empty",
            CatalogueError::InvalidCode(_) => "catalogue.invalid_code",
            CatalogueError::DuplicateCode(_) => "catalogue.duplicate_code",
            CatalogueError::EmptyNameKey(_) => "catalogue.empty_name_key",
            CatalogueError::ZeroLimit { .. } => "catalogue.zero_limit",
            CatalogueError::DuplicateEffectiveDate(_) => "catalogue.duplicate_effective_date",
            CatalogueError::Malformed(_) => "catalogue.malformed",
        }
    }
}

/// The default catalogue for the epidemic work of RULES.md, effective from
/// 28 June 2022 (the 9th edition of the prevention and control protocol).
pub const DEFAULT_CATALOGUE_JSON: &str = include_str!("default_catalogue.json");

const MAX_CODE_CHARS: usize = 64;

fn is_valid_code(code: &str) -> bool {
    let mut chars = code.chars();
    code.len() <= MAX_CODE_CHARS
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

impl Catalogue {
    /// Checks `categories` against each other and against the defaults.
    pub fn new(
        effective_from: NaiveDate,
        default_limits: StageLimits,
        categories: Vec<Category>,
    ) -> Result<Self, CatalogueError> {
        check_limits("(default)", &default_limits)?;
        if categories.is_empty() {
            return Err(CatalogueError::Empty);
        }
        let mut seen = BTreeSet::new();
        for category in &categories {
            if !is_valid_code(&category.code) {
                return Err(CatalogueError::InvalidCode(category.code.clone()));
            }
            if !seen.insert(category.code.as_str()) {
                return Err(CatalogueError::DuplicateCode(category.code.clone()));
            }
            if category.name_key.trim().is_empty() {
                return Err(CatalogueError::EmptyNameKey(category.code.clone()));
            }
            check_limits(&category.code, &category.limits)?;
        }
        Ok(Self { effective_from, default_limits, categories })
    }

    pub fn from_document(document: CatalogueDocument) -> Result<Self, CatalogueError> {
        let defaults = document.default_limits;
        let categories = document
            .categories
            .into_iter()
            .map(|c| Category {
                limits: c.limits.resolve(&defaults),
                code: c.code,
                name_key: c.name_key,
                default_priority: c.default_priority,
                handler_role: c.handler_role,
                holds_health_data: c.holds_health_data,
            })
            .collect();
        Self::new(document.effective_from, defaults, categories)
    }

    pub fn from_json(json: &str) -> Result<Self, CatalogueError> {
        let document: CatalogueDocument =
            serde_json::from_str(json).map_err(|e| CatalogueError::Malformed(e.to_string()))?;
        Self::from_document(document)
    }

    /// The embedded default (`DEFAULT_CATALOGUE_JSON`).
    pub fn default_epidemic() -> Self {
        Self::from_json(DEFAULT_CATALOGUE_JSON).expect("the embedded default catalogue is valid")
    }

    pub fn effective_from(&self) -> NaiveDate {
        self.effective_from
    }

    pub fn default_limits(&self) -> &StageLimits {
        &self.default_limits
    }

    pub fn categories(&self) -> &[Category] {
        &self.categories
    }

    pub fn get(&self, code: &str) -> Option<&Category> {
        self.categories.iter().find(|c| c.code == code)
    }

    /// The codes of the categories whose tasks hold health data, sorted.
    pub fn health_data_categories(&self) -> Vec<String> {
        let mut codes: Vec<String> = self
            .categories
            .iter()
            .filter(|c| c.holds_health_data)
            .map(|c| c.code.clone())
            .collect();
        codes.sort();
        codes
    }
}

fn check_limits(category: &str, limits: &StageLimits) -> Result<(), CatalogueError> {
    for stage in Stage::ALL {
        if limits.get(stage).all_limits().any(|l| l.minutes() == 0) {
            return Err(CatalogueError::ZeroLimit {
                category: category.to_owned(),
                stage: stage.as_str(),
            });
        }
    }
    Ok(())
}

impl TryFrom<CatalogueDocument> for Catalogue {
    type Error = CatalogueError;
    fn try_from(value: CatalogueDocument) -> Result<Self, Self::Error> {
        Self::from_document(value)
    }
}

impl From<Catalogue> for CatalogueDocument {
    /// Writes every stage of every category explicitly, so reading the
    /// document back gives the same catalogue whatever the defaults say.
    fn from(value: Catalogue) -> Self {
        let categories = value
            .categories
            .into_iter()
            .map(|c| CategoryDocument {
                code: c.code,
                name_key: c.name_key,
                default_priority: c.default_priority,
                handler_role: c.handler_role,
                limits: StageLimitOverrides {
                    verify: Some(c.limits.verify),
                    dispatch: Some(c.limits.dispatch),
                    handle: Some(c.limits.handle),
                    close: Some(c.limits.close),
                },
                holds_health_data: c.holds_health_data,
            })
            .collect();
        Self {
            effective_from: value.effective_from,
            default_limits: value.default_limits,
            categories,
        }
    }
}

/// Every version of the catalogue, so that a task is judged by the version in
/// effect on the day it was reported, even after the catalogue changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogueHistory {
    /// Sorted by `effective_from`, no two on the same date.
    versions: Vec<Catalogue>,
}

impl CatalogueHistory {
    pub fn new(mut versions: Vec<Catalogue>) -> Result<Self, CatalogueError> {
        versions.sort_by_key(Catalogue::effective_from);
        if let Some(pair) = versions.windows(2).find(|p| p[0].effective_from == p[1].effective_from)
        {
            return Err(CatalogueError::DuplicateEffectiveDate(pair[0].effective_from));
        }
        Ok(Self { versions })
    }

    /// The latest version with `effective_from <= on`; `None` before the first.
    pub fn in_effect(&self, on: NaiveDate) -> Option<&Catalogue> {
        self.versions.iter().rev().find(|c| c.effective_from <= on)
    }

    pub fn versions(&self) -> &[Catalogue] {
        &self.versions
    }

    /// The codes of categories whose tasks hold health data in any version:
    /// a task is purged by what its category ever said, so a later version
    /// that drops the flag does not keep old notes past their time.
    pub fn health_data_categories(&self) -> Vec<String> {
        let codes: BTreeSet<String> =
            self.versions.iter().flat_map(Catalogue::health_data_categories).collect();
        codes.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ReasonCode;

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
    }

    /// The epidemic work RULES.md and the issue name, plus the ones residents
    /// and offices expect.
    const EXPECTED_CODES: [&str; 14] = [
        "door_to_door_check",
        "arrival_verification",
        "fever_follow_up",
        "quarantine_delivery",
        "retest_visit",
        "help_request",
        "medical_assistance",
        "elderly_welfare_check",
        "home_health_monitoring",
        "mass_testing_mobilisation",
        "vaccination_mobilisation",
        "volunteer_offer_contact",
        "sanitation_report",
        "other",
    ];

    #[test]
    fn the_default_catalogue_loads_with_the_expected_categories() {
        let catalogue = Catalogue::default_epidemic();
        assert_eq!(catalogue.effective_from(), date("2022-06-28"));
        let codes: Vec<_> = catalogue.categories().iter().map(|c| c.code.as_str()).collect();
        assert_eq!(codes, EXPECTED_CODES);
        for category in catalogue.categories() {
            assert_eq!(category.name_key, format!("task.category.{}", category.code));
        }
    }

    #[test]
    fn default_dispatch_is_thirty_minutes_urgent_and_four_working_hours_otherwise() {
        let catalogue = Catalogue::default_epidemic();
        let help = catalogue.get("help_request").unwrap();
        assert_eq!(help.limit(Stage::Dispatch, Priority::Urgent), TimeLimit::ElapsedMinutes(30));
        for p in [Priority::High, Priority::Normal, Priority::Low] {
            assert_eq!(help.limit(Stage::Dispatch, p), TimeLimit::WorkingMinutes(240));
        }
        // Handling within one working day (3h30 + 4h of office hours).
        assert_eq!(help.limit(Stage::Handle, Priority::Normal), TimeLimit::WorkingMinutes(450));
        assert_eq!(help.handler_role, Role::GridWorker);
        // A quarantined household cannot wait for Monday.
        let delivery = catalogue.get("quarantine_delivery").unwrap();
        assert!(matches!(
            delivery.limit(Stage::Handle, Priority::High),
            TimeLimit::ElapsedMinutes(_)
        ));
        assert_eq!(catalogue.get("fever_follow_up").unwrap().default_priority, Priority::Urgent);
        assert_eq!(catalogue.get("retest_visit").unwrap().handler_role, Role::MedicalStaff);
        assert!(catalogue.get("unknown").is_none());
    }

    #[test]
    fn limits_give_deadlines_in_their_own_kind_of_time() {
        let cal = WorkCalendar::office_hours();
        // Friday 2024-06-14 16:00.
        let start = at("2024-06-14 16:00");
        assert_eq!(
            TimeLimit::WorkingMinutes(240).deadline_from(start, &cal),
            at("2024-06-17 11:00")
        );
        assert_eq!(
            TimeLimit::ElapsedMinutes(30).deadline_from(start, &cal),
            at("2024-06-14 16:30")
        );
        let monday = at("2024-06-17 08:30");
        assert_eq!(
            TimeLimit::WorkingMinutes(1).measure(start, monday, &cal),
            TimeDelta::minutes(90)
        );
        assert_eq!(
            TimeLimit::ElapsedMinutes(1).measure(start, monday, &cal),
            TimeDelta::minutes(3870)
        );
    }

    #[test]
    fn the_catalogue_round_trips_through_json() {
        let catalogue = Catalogue::default_epidemic();
        let json = serde_json::to_string(&catalogue).unwrap();
        assert_eq!(Catalogue::from_json(&json).unwrap(), catalogue);
        let via_serde: Catalogue = serde_json::from_str(&json).unwrap();
        assert_eq!(via_serde, catalogue);
    }

    #[test]
    fn health_categories_are_flagged_and_any_version_s_flag_counts() {
        let catalogue = Catalogue::default_epidemic();
        let flagged = |code: &str| catalogue.get(code).unwrap().holds_health_data;
        for code in
            ["fever_follow_up", "arrival_verification", "help_request", "quarantine_delivery"]
        {
            assert!(flagged(code), "{code}");
        }
        for code in ["volunteer_offer_contact", "sanitation_report", "other"] {
            assert!(!flagged(code), "{code}");
        }
        // Absent in a document means false, and false is not written out.
        let json = serde_json::to_string(&catalogue).unwrap();
        assert_eq!(json.matches("holds_health_data").count(), 11);
        assert_eq!(catalogue.health_data_categories().len(), 11);
        assert!(catalogue.health_data_categories().is_sorted());

        // A later version that drops the flag does not shorten the list.
        let mut old = category("tracing_call");
        old.holds_health_data = true;
        let first = Catalogue::new(date("2022-01-01"), limits(60), vec![old]).unwrap();
        let second =
            Catalogue::new(date("2023-01-01"), limits(60), vec![category("tracing_call")]).unwrap();
        let history = CatalogueHistory::new(vec![second, first]).unwrap();
        assert_eq!(history.health_data_categories(), ["tracing_call"]);
        let plain = CatalogueHistory::new(vec![
            Catalogue::new(date("2022-01-01"), limits(60), vec![category("other")]).unwrap(),
        ])
        .unwrap();
        assert!(plain.health_data_categories().is_empty());
    }

    fn limits(minutes: u32) -> StageLimits {
        let limit = StageLimit::new(TimeLimit::WorkingMinutes(minutes));
        StageLimits {
            verify: limit.clone(),
            dispatch: limit.clone(),
            handle: limit.clone(),
            close: limit,
        }
    }

    fn category(code: &str) -> Category {
        Category {
            code: code.to_owned(),
            name_key: format!("task.category.{code}"),
            default_priority: Priority::Normal,
            limits: limits(60),
            handler_role: Role::GridWorker,
            holds_health_data: false,
        }
    }

    fn build(categories: Vec<Category>) -> Result<Catalogue, CatalogueError> {
        Catalogue::new(date("2024-01-01"), limits(60), categories)
    }

    #[test]
    fn invalid_catalogues_are_refused_with_a_code() {
        let code = |r: Result<Catalogue, CatalogueError>| r.unwrap_err().code();
        assert_eq!(code(build(vec![])), "catalogue.empty");
        assert_eq!(
            code(build(vec![category("a"), category("b"), category("a")])),
            "catalogue.duplicate_code"
        );
        for bad in ["", "Fever", "1st", "fever-follow-up", "发热", &"a".repeat(65)] {
            assert_eq!(code(build(vec![category(bad)])), "catalogue.invalid_code", "{bad:?}");
        }
        assert!(build(vec![category(&"a".repeat(64)), category("b_2")]).is_ok());
        let mut unnamed = category("a");
        unnamed.name_key = "  ".into();
        assert_eq!(code(build(vec![unnamed])), "catalogue.empty_name_key");
        let mut zero = category("a");
        zero.limits.close = zero.limits.close.with(Priority::Urgent, TimeLimit::ElapsedMinutes(0));
        let err = build(vec![zero]).unwrap_err();
        assert_eq!(err, CatalogueError::ZeroLimit { category: "a".into(), stage: "close" });
        assert_eq!(err.code(), "catalogue.zero_limit");
        assert_eq!(
            code(Catalogue::new(date("2024-01-01"), limits(0), vec![category("a")])),
            "catalogue.zero_limit"
        );
        assert_eq!(code(Catalogue::from_json("[]")), "catalogue.malformed");
    }

    #[test]
    fn a_category_overrides_whole_stages_only() {
        let json = r#"{
            "effective_from": "2024-01-01",
            "default_limits": {
                "verify": {"default": {"working_minutes": 60}},
                "dispatch": {"default": {"working_minutes": 240},
                             "by_priority": {"urgent": {"elapsed_minutes": 30}}},
                "handle": {"default": {"working_minutes": 450}},
                "close": {"default": {"working_minutes": 450}}
            },
            "categories": [{
                "code": "quick",
                "name_key": "task.category.quick",
                "default_priority": "high",
                "handler_role": "grid_worker",
                "limits": {"dispatch": {"default": {"elapsed_minutes": 60}}}
            }]
        }"#;
        let catalogue = Catalogue::from_json(json).unwrap();
        let quick = catalogue.get("quick").unwrap();
        // The override replaced the stage, the urgent override included.
        assert_eq!(quick.limit(Stage::Dispatch, Priority::Urgent), TimeLimit::ElapsedMinutes(60));
        assert_eq!(quick.limit(Stage::Handle, Priority::Urgent), TimeLimit::WorkingMinutes(450));
        let typo = json.replace("\"handler_role\"", "\"handler\"");
        assert_eq!(Catalogue::from_json(&typo).unwrap_err().code(), "catalogue.malformed");
    }

    #[test]
    fn the_version_in_effect_is_the_latest_started() {
        let v1 = build(vec![category("a")]).unwrap();
        let v2 = Catalogue::new(date("2024-07-01"), limits(30), vec![category("a")]).unwrap();
        let history = CatalogueHistory::new(vec![v2.clone(), v1.clone()]).unwrap();
        assert_eq!(history.in_effect(date("2023-12-31")), None);
        assert_eq!(history.in_effect(date("2024-01-01")), Some(&v1));
        assert_eq!(history.in_effect(date("2024-06-30")), Some(&v1));
        assert_eq!(history.in_effect(date("2024-07-01")), Some(&v2));
        assert_eq!(history.versions()[0], v1);
        let err = CatalogueHistory::new(vec![v1.clone(), v1]).unwrap_err();
        assert_eq!(err.code(), "catalogue.duplicate_effective_date");
    }
}
