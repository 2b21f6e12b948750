//! What residents (and grid workers for them) submit through self-service:
//! daily health entries, arrivals, help requests and volunteer offers, each
//! validated into a type that can only hold a plausible value, and the rules
//! that turn a submission into work (RULES.md has no national thresholds for
//! these, so every number lives in `IntakeRules`, which deployments configure).
//!
//! Failures carry the field they concern and a stable `intake.` code that the
//! web layer translates, so a resident sees "体温" named in Chinese.

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::tasks::Priority;

/// A validation failure: the field it concerns (`entries[1].temperature`)
/// and a translatable code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}: {code}")]
pub struct FieldError {
    pub field: String,
    pub code: &'static str,
}

impl FieldError {
    pub fn new(field: impl Into<String>, code: &'static str) -> Self {
        Self { field: field.into(), code }
    }

    /// The same error nested under a parent field (`entries[2]`).
    pub fn within(mut self, parent: &str) -> Self {
        self.field = format!("{parent}.{}", self.field);
        self
    }
}

/// The configurable numbers of intake.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IntakeRules {
    /// The lowest and highest body temperature (°C) accepted as a reading;
    /// anything outside is a typo or a broken thermometer, not a report.
    pub temperature_min: f64,
    pub temperature_max: f64,
    /// At or above this a reading is a fever (发热), which becomes a task.
    pub fever_at: f64,
    /// Longest free-text note, in characters.
    pub note_max_chars: usize,
    /// How many days back an arrival date may lie (and none in the future).
    pub arrival_max_days_back: i64,
}

impl Default for IntakeRules {
    fn default() -> Self {
        Self {
            temperature_min: 34.0,
            temperature_max: 42.5,
            fever_at: 37.3,
            note_max_chars: 500,
            arrival_max_days_back: 30,
        }
    }
}

/// A body temperature in tenths of a degree Celsius (365 = 36.5 °C): exact
/// to compare and store, as thermometers show one decimal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TenthsCelsius(pub i32);

impl TenthsCelsius {
    pub fn celsius(self) -> f64 {
        f64::from(self.0) / 10.0
    }
}

impl std::fmt::Display for TenthsCelsius {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.1}", self.celsius())
    }
}

/// Parses a temperature as typed: `36.5`, ` 37 `, `38,2` (a comma is a
/// decimal point on many phone keyboards) or `36.5℃`. Rounded to 0.1.
pub fn parse_temperature(input: &str, rules: &IntakeRules) -> Result<TenthsCelsius, FieldError> {
    let text = input.trim().trim_end_matches(['℃', '°', 'C', 'c']).trim().replace(',', ".");
    if text.is_empty() {
        return Err(FieldError::new("temperature", "intake.temperature_required"));
    }
    let value: f64 = text
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite())
        .ok_or_else(|| FieldError::new("temperature", "intake.temperature_not_a_number"))?;
    temperature_in_range(value, rules)
}

/// Checks a number against the plausible range.
pub fn temperature_in_range(value: f64, rules: &IntakeRules) -> Result<TenthsCelsius, FieldError> {
    if !value.is_finite() {
        return Err(FieldError::new("temperature", "intake.temperature_not_a_number"));
    }
    if value < rules.temperature_min || value > rules.temperature_max {
        return Err(FieldError::new("temperature", "intake.temperature_out_of_range"));
    }
    // In range, so the cast cannot overflow.
    Ok(TenthsCelsius((value * 10.0).round() as i32))
}

macro_rules! code_enum {
    ($(#[$meta:meta])* $name:ident, $field:literal, $code:literal { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(text: &str) -> Option<Self> {
                match text.trim() { $($text => Some($name::$variant),)+ _ => None }
            }

            /// Parses or names the field and why.
            pub fn parse_field(text: &str) -> Result<Self, FieldError> {
                Self::parse(text).ok_or_else(|| FieldError::new($field, $code))
            }
        }
    };
}

code_enum!(
    /// Symptoms a resident can tick (the 9th edition's list of common
    /// COVID-19 presentations, plus "other"). Fever itself is the temperature.
    Symptom, "symptoms", "intake.unknown_symptom" {
        Cough = "cough",
        SoreThroat = "sore_throat",
        Fatigue = "fatigue",
        LossOfSmellOrTaste = "loss_of_smell_or_taste",
        RunnyNose = "runny_nose",
        MusclePain = "muscle_pain",
        Diarrhoea = "diarrhoea",
        ShortnessOfBreath = "shortness_of_breath",
        Other = "other",
    }
);

code_enum!(
    /// Where the person is today.
    Whereabouts, "whereabouts", "intake.unknown_whereabouts" {
        AtHome = "at_home",
        Away = "away",
    }
);

code_enum!(
    /// How an arrival travelled.
    TravelMeans, "travel", "intake.unknown_travel" {
        Train = "train",
        Plane = "plane",
        Coach = "coach",
        Car = "car",
        Ship = "ship",
        Other = "other",
    }
);

code_enum!(
    /// What help is asked for.
    HelpKind, "kind", "intake.unknown_help_kind" {
        Medicine = "medicine",
        Food = "food",
        MedicalCare = "medical_care",
        Other = "other",
    }
);

code_enum!(
    /// How soon help is needed.
    Urgency, "urgency", "intake.unknown_urgency" {
        Normal = "normal",
        Soon = "soon",
        Urgent = "urgent",
    }
);

code_enum!(
    /// What a volunteer can do.
    Skill, "skills", "intake.unknown_skill" {
        Delivery = "delivery",
        Driving = "driving",
        Medical = "medical",
        Testing = "testing",
        Registration = "registration",
        Translation = "translation",
        Counselling = "counselling",
        Other = "other",
    }
);

code_enum!(
    /// When a volunteer is available.
    Availability, "availability", "intake.unknown_availability" {
        WeekdayDaytime = "weekday_daytime",
        WeekdayEvening = "weekday_evening",
        Weekend = "weekend",
        AnyTime = "any_time",
    }
);

impl Urgency {
    /// The priority of the task a help request becomes.
    pub fn priority(self) -> Priority {
        match self {
            Urgency::Normal => Priority::Normal,
            Urgency::Soon => Priority::High,
            Urgency::Urgent => Priority::Urgent,
        }
    }
}

/// A region an arrival may come from: the GB/T 2260 province-level codes,
/// plus abroad. Finer origins (cities, risk areas) arrive with the risk-area
/// lists; the province is what a resident can reliably pick on a phone.
pub const REGIONS: &[(&str, &str)] = &[
    ("110000", "北京市"),
    ("120000", "天津市"),
    ("130000", "河北省"),
    ("140000", "山西省"),
    ("150000", "内蒙古自治区"),
    ("210000", "辽宁省"),
    ("220000", "吉林省"),
    ("230000", "黑龙江省"),
    ("310000", "上海市"),
    ("320000", "江苏省"),
    ("330000", "浙江省"),
    ("340000", "安徽省"),
    ("350000", "福建省"),
    ("360000", "江西省"),
    ("370000", "山东省"),
    ("410000", "河南省"),
    ("420000", "湖北省"),
    ("430000", "湖南省"),
    ("440000", "广东省"),
    ("450000", "广西壮族自治区"),
    ("460000", "海南省"),
    ("500000", "重庆市"),
    ("510000", "四川省"),
    ("520000", "贵州省"),
    ("530000", "云南省"),
    ("540000", "西藏自治区"),
    ("610000", "陕西省"),
    ("620000", "甘肃省"),
    ("630000", "青海省"),
    ("640000", "宁夏回族自治区"),
    ("650000", "新疆维吾尔自治区"),
    ("710000", "台湾省"),
    ("810000", "香港特别行政区"),
    ("820000", "澳门特别行政区"),
    ("900000", "境外"),
];

/// A region code from `REGIONS`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RegionCode(String);

impl RegionCode {
    pub fn parse(text: &str) -> Result<Self, FieldError> {
        let text = text.trim();
        REGIONS
            .iter()
            .find(|(code, _)| *code == text)
            .map(|(code, _)| Self((*code).to_owned()))
            .ok_or_else(|| FieldError::new("origin", "intake.unknown_region"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn name_zh(&self) -> &'static str {
        REGIONS.iter().find(|(c, _)| *c == self.0).map_or("", |(_, n)| n)
    }
}

/// A free-text note: trimmed, at most `note_max_chars` characters, empty
/// meaning none.
pub fn parse_note(
    input: Option<&str>,
    field: &str,
    rules: &IntakeRules,
) -> Result<Option<String>, FieldError> {
    let Some(text) = input.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    if text.chars().count() > rules.note_max_chars {
        return Err(FieldError::new(field, "intake.note_too_long"));
    }
    Ok(Some(text.to_owned()))
}

/// One person's daily health entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthEntry {
    pub resident_id: Uuid,
    pub temperature: TenthsCelsius,
    pub symptoms: Vec<Symptom>,
    pub whereabouts: Whereabouts,
}

impl HealthEntry {
    /// Builds an entry from raw parts; symptoms are deduplicated and sorted
    /// so that equal forms store equal entries.
    pub fn new(
        resident_id: Uuid,
        temperature: &str,
        symptoms: &[String],
        whereabouts: &str,
        rules: &IntakeRules,
    ) -> Result<Self, FieldError> {
        let temperature = parse_temperature(temperature, rules)?;
        let mut parsed =
            symptoms.iter().map(|s| Symptom::parse_field(s)).collect::<Result<Vec<_>, _>>()?;
        parsed.sort();
        parsed.dedup();
        Ok(Self {
            resident_id,
            temperature,
            symptoms: parsed,
            whereabouts: Whereabouts::parse_field(whereabouts)?,
        })
    }

    /// "Normal" for the whole-household shortcut: 36.5 °C, no symptoms, at home.
    pub fn normal(resident_id: Uuid) -> Self {
        Self {
            resident_id,
            temperature: TenthsCelsius(365),
            symptoms: Vec::new(),
            whereabouts: Whereabouts::AtHome,
        }
    }

    /// Fever or any symptom: needs a follow-up.
    pub fn needs_follow_up(&self, rules: &IntakeRules) -> bool {
        self.temperature.celsius() >= rules.fever_at - 1e-9 || !self.symptoms.is_empty()
    }
}

/// An arrival in the area.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Arrival {
    /// The member who arrived.
    pub resident_id: Uuid,
    pub origin: RegionCode,
    pub arrived_on: NaiveDate,
    pub travel: TravelMeans,
    pub note: Option<String>,
}

impl Arrival {
    pub fn new(
        resident_id: Uuid,
        origin: &str,
        arrived_on: &str,
        travel: &str,
        note: Option<&str>,
        today: NaiveDate,
        rules: &IntakeRules,
    ) -> Result<Self, FieldError> {
        let origin = RegionCode::parse(origin)?;
        let arrived_on = NaiveDate::parse_from_str(arrived_on.trim(), "%Y-%m-%d")
            .map_err(|_| FieldError::new("arrived_on", "intake.date_invalid"))?;
        if arrived_on > today {
            return Err(FieldError::new("arrived_on", "intake.date_in_future"));
        }
        if (today - arrived_on).num_days() > rules.arrival_max_days_back {
            return Err(FieldError::new("arrived_on", "intake.date_too_old"));
        }
        Ok(Self {
            resident_id,
            origin,
            arrived_on,
            travel: TravelMeans::parse_field(travel)?,
            note: parse_note(note, "note", rules)?,
        })
    }
}

/// A request for help.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelpRequest {
    /// The member it is for, when it is for one person.
    pub resident_id: Option<Uuid>,
    pub kind: HelpKind,
    pub urgency: Urgency,
    pub note: Option<String>,
}

impl HelpRequest {
    pub fn new(
        resident_id: Option<Uuid>,
        kind: &str,
        urgency: &str,
        note: Option<&str>,
        rules: &IntakeRules,
    ) -> Result<Self, FieldError> {
        let kind = HelpKind::parse_field(kind)?;
        let note = parse_note(note, "note", rules)?;
        // "Other" says nothing without words.
        if kind == HelpKind::Other && note.is_none() {
            return Err(FieldError::new("note", "intake.note_required"));
        }
        Ok(Self { resident_id, kind, urgency: Urgency::parse_field(urgency)?, note })
    }
}

/// An offer to volunteer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolunteerOffer {
    pub resident_id: Uuid,
    pub skills: Vec<Skill>,
    pub availability: Vec<Availability>,
    pub note: Option<String>,
}

impl VolunteerOffer {
    pub fn new(
        resident_id: Uuid,
        skills: &[String],
        availability: &[String],
        note: Option<&str>,
        rules: &IntakeRules,
    ) -> Result<Self, FieldError> {
        let mut skills =
            skills.iter().map(|s| Skill::parse_field(s)).collect::<Result<Vec<_>, _>>()?;
        skills.sort();
        skills.dedup();
        if skills.is_empty() {
            return Err(FieldError::new("skills", "intake.skills_required"));
        }
        let mut availability = availability
            .iter()
            .map(|s| Availability::parse_field(s))
            .collect::<Result<Vec<_>, _>>()?;
        availability.sort();
        availability.dedup();
        if availability.is_empty() {
            return Err(FieldError::new("availability", "intake.availability_required"));
        }
        Ok(Self { resident_id, skills, availability, note: parse_note(note, "note", rules)? })
    }
}

/// Everything intake accepts, one variant per form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
// Tagged `form`, not `kind`: a help request has a field named `kind`.
#[serde(tag = "form", rename_all = "snake_case")]
pub enum Submission {
    /// One entry per member reported (a household form, or a worker's
    /// "whole household normal").
    Health {
        entries: Vec<HealthEntry>,
    },
    Arrival(Arrival),
    Help(HelpRequest),
    Volunteer(VolunteerOffer),
}

/// The stored kind of a submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubmissionKind {
    Health,
    Arrival,
    Help,
    Volunteer,
}

impl SubmissionKind {
    pub const ALL: [SubmissionKind; 4] = [
        SubmissionKind::Health,
        SubmissionKind::Arrival,
        SubmissionKind::Help,
        SubmissionKind::Volunteer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SubmissionKind::Health => "health",
            SubmissionKind::Arrival => "arrival",
            SubmissionKind::Help => "help",
            SubmissionKind::Volunteer => "volunteer",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// The first letters of a reference, so a resident reading one out on
    /// the phone says what it was: 健康 JK, 返回 FH, 求助 QZ, 志愿 ZY.
    pub fn reference_prefix(self) -> &'static str {
        match self {
            SubmissionKind::Health => "JK",
            SubmissionKind::Arrival => "FH",
            SubmissionKind::Help => "QZ",
            SubmissionKind::Volunteer => "ZY",
        }
    }
}

impl Submission {
    pub fn kind(&self) -> SubmissionKind {
        match self {
            Submission::Health { .. } => SubmissionKind::Health,
            Submission::Arrival(_) => SubmissionKind::Arrival,
            Submission::Help(_) => SubmissionKind::Help,
            Submission::Volunteer(_) => SubmissionKind::Volunteer,
        }
    }

    /// The members this submission names, for the check that each belongs
    /// to the household.
    pub fn residents(&self) -> Vec<Uuid> {
        match self {
            Submission::Health { entries } => entries.iter().map(|e| e.resident_id).collect(),
            Submission::Arrival(a) => vec![a.resident_id],
            Submission::Help(h) => h.resident_id.into_iter().collect(),
            Submission::Volunteer(v) => vec![v.resident_id],
        }
    }

    /// The work this submission calls for, by the rules (catalogue codes of
    /// `tasks/default_catalogue.json`).
    pub fn work(&self, household_id: Uuid, rules: &IntakeRules) -> Vec<WorkItem> {
        match self {
            Submission::Health { entries } => entries
                .iter()
                .filter(|e| e.needs_follow_up(rules))
                .map(|e| WorkItem {
                    category: "fever_follow_up",
                    priority: Priority::Urgent,
                    subject: WorkSubject::Resident(e.resident_id),
                })
                .collect(),
            Submission::Arrival(a) => vec![WorkItem {
                category: "arrival_verification",
                priority: Priority::High,
                subject: WorkSubject::Resident(a.resident_id),
            }],
            Submission::Help(h) => vec![WorkItem {
                category: match h.kind {
                    HelpKind::MedicalCare => "medical_assistance",
                    _ => "help_request",
                },
                priority: h.urgency.priority(),
                subject: match h.resident_id {
                    Some(id) => WorkSubject::Resident(id),
                    None => WorkSubject::Household(household_id),
                },
            }],
            // Someone has to call back: until volunteers have a registry of
            // their own, an offer reaches the grid's worker as a task (the
            // task's page shows the skills and times offered).
            Submission::Volunteer(v) => vec![WorkItem {
                category: "volunteer_offer_contact",
                priority: Priority::Low,
                subject: WorkSubject::Resident(v.resident_id),
            }],
        }
    }
}

/// One line of what a report said, for the people who act on it (the task
/// made from the report): a label and a value, each a translation key or
/// the text as the resident wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportLine {
    /// The label's translation key (`task.reported.…`).
    pub label: &'static str,
    pub value: ReportValue,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportValue {
    /// Translation keys of coded answers (symptoms, kind of help…), to be
    /// listed in the reader's language.
    Codes(Vec<String>),
    /// Shown as it is: a temperature, a date, a resident's note.
    Text(String),
}

impl ReportLine {
    fn codes<T: Copy>(
        label: &'static str,
        prefix: &str,
        all: &[T],
        code: fn(T) -> &'static str,
    ) -> Self {
        let keys = all.iter().map(|c| format!("{prefix}.{}", code(*c))).collect();
        Self { label, value: ReportValue::Codes(keys) }
    }

    fn text(label: &'static str, text: impl Into<String>) -> Self {
        Self { label, value: ReportValue::Text(text.into()) }
    }
}

impl Submission {
    /// What this submission said about `subject`: a health form's entry of
    /// that member only (the others are not the task's business), an
    /// arrival, a request for help, an offer.
    pub fn lines_about(&self, subject: WorkSubject) -> Vec<ReportLine> {
        let (mut lines, note) = match self {
            Submission::Health { entries } => {
                let WorkSubject::Resident(resident) = subject else { return Vec::new() };
                let Some(entry) = entries.iter().find(|e| e.resident_id == resident) else {
                    return Vec::new();
                };
                let mut lines = vec![ReportLine::text(
                    "task.reported.temperature",
                    format!("{} °C", entry.temperature),
                )];
                if !entry.symptoms.is_empty() {
                    lines.push(ReportLine::codes(
                        "task.reported.symptoms",
                        "intake.symptom",
                        &entry.symptoms,
                        Symptom::as_str,
                    ));
                }
                lines.push(ReportLine::codes(
                    "task.reported.whereabouts",
                    "intake.whereabouts",
                    &[entry.whereabouts],
                    Whereabouts::as_str,
                ));
                (lines, None)
            }
            Submission::Arrival(a) => (
                vec![
                    ReportLine::text("task.reported.origin", a.origin.name_zh()),
                    ReportLine::text(
                        "task.reported.arrived_on",
                        a.arrived_on.format("%Y-%m-%d").to_string(),
                    ),
                    ReportLine::codes(
                        "task.reported.travel",
                        "intake.travel",
                        &[a.travel],
                        TravelMeans::as_str,
                    ),
                ],
                a.note.as_ref(),
            ),
            Submission::Help(h) => (
                vec![
                    ReportLine::codes(
                        "task.reported.help_kind",
                        "intake.help_kind",
                        &[h.kind],
                        HelpKind::as_str,
                    ),
                    ReportLine::codes(
                        "task.reported.urgency",
                        "intake.urgency",
                        &[h.urgency],
                        Urgency::as_str,
                    ),
                ],
                h.note.as_ref(),
            ),
            Submission::Volunteer(v) => (
                vec![
                    ReportLine::codes(
                        "task.reported.skills",
                        "intake.skill",
                        &v.skills,
                        Skill::as_str,
                    ),
                    ReportLine::codes(
                        "task.reported.availability",
                        "intake.availability",
                        &v.availability,
                        Availability::as_str,
                    ),
                ],
                v.note.as_ref(),
            ),
        };
        // The resident's own words come last, whatever the form.
        lines.extend(note.map(|n| ReportLine::text("task.reported.note", n.clone())));
        lines
    }
}

/// A task a submission calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkItem {
    pub category: &'static str,
    pub priority: Priority,
    pub subject: WorkSubject,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkSubject {
    Resident(Uuid),
    Household(Uuid),
}

/// Checks an idempotency key: 8–100 visible ASCII characters (a UUID from
/// the page's script, typically). Keys are global, so a short or guessable
/// one could collide with someone else's submission.
pub fn check_idempotency_key(key: &str) -> Result<&str, FieldError> {
    let key = key.trim();
    if key.is_empty() {
        return Err(FieldError::new("idempotency_key", "intake.idempotency_key_required"));
    }
    if key.len() < 8 || key.len() > 100 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(FieldError::new("idempotency_key", "intake.idempotency_key_invalid"));
    }
    Ok(key)
}

/// The reference shown to the resident: the kind's prefix, the local date
/// and eight base-32 characters from the report id's random bits (no I, L,
/// O, U, which are read wrongly aloud), e.g. `JK-20261129-7K3F9QXA`.
pub fn reference(kind: SubmissionKind, day: NaiveDate, id: Uuid) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    // Byte by byte rather than through `format!`: its padded fields went
    // through the formatter's machinery, a microsecond a submission at the
    // peak (docs/PERFORMANCE.md, session 10). A year outside 0..=9999
    // (which no report carries) is written as `to_string` writes it.
    let mut text = String::with_capacity(20);
    text.push_str(kind.reference_prefix());
    text.push('-');
    let year = day.year();
    if (0..=9999).contains(&year) {
        push_digits(&mut text, year.unsigned_abs(), 4);
    } else {
        text.push_str(&year.to_string());
    }
    push_digits(&mut text, day.month(), 2);
    push_digits(&mut text, day.day(), 2);
    text.push('-');
    let bits = id.as_u128();
    text.extend((0..8).map(|i| char::from(ALPHABET[((bits >> (i * 5)) & 31) as usize])));
    text
}

/// The last `width` decimal digits of `value`, zero-padded.
fn push_digits(text: &mut String, value: u32, width: u32) {
    for place in (0..width).rev() {
        let digit = (value / 10u32.pow(place)) % 10;
        text.push(char::from(b'0' + digit as u8));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> IntakeRules {
        IntakeRules::default()
    }

    #[test]
    fn temperatures_parse_as_typed_and_implausible_ones_are_named() {
        assert_eq!(parse_temperature("36.5", &rules()), Ok(TenthsCelsius(365)));
        assert_eq!(parse_temperature(" 37,3℃ ", &rules()), Ok(TenthsCelsius(373)));
        assert_eq!(parse_temperature("38", &rules()), Ok(TenthsCelsius(380)));
        assert_eq!(parse_temperature("36.55", &rules()), Ok(TenthsCelsius(366)));
        let code = |s: &str| parse_temperature(s, &rules()).unwrap_err().code;
        assert_eq!(code("45"), "intake.temperature_out_of_range");
        assert_eq!(code("33.9"), "intake.temperature_out_of_range");
        assert_eq!(code("abc"), "intake.temperature_not_a_number");
        assert_eq!(code("NaN"), "intake.temperature_not_a_number");
        assert_eq!(code("inf"), "intake.temperature_not_a_number");
        assert_eq!(code(""), "intake.temperature_required");
        assert_eq!(parse_temperature("45", &rules()).unwrap_err().field, "temperature");
        let wide = IntakeRules { temperature_max: 45.0, ..rules() };
        assert_eq!(parse_temperature("45", &wide), Ok(TenthsCelsius(450)));
    }

    #[test]
    fn fever_or_any_symptom_calls_for_follow_up_at_the_configured_threshold() {
        let id = Uuid::now_v7();
        let entry = |t: &str, s: &[&str]| {
            let s: Vec<String> = s.iter().map(|x| x.to_string()).collect();
            HealthEntry::new(id, t, &s, "at_home", &rules()).unwrap()
        };
        assert!(!entry("37.2", &[]).needs_follow_up(&rules()));
        assert!(entry("37.3", &[]).needs_follow_up(&rules()));
        assert!(entry("36.4", &["cough"]).needs_follow_up(&rules()));
        let lenient = IntakeRules { fever_at: 37.5, ..rules() };
        assert!(!entry("37.3", &[]).needs_follow_up(&lenient));
        let err = HealthEntry::new(id, "36.5", &["sneezing".into()], "at_home", &rules());
        assert_eq!(err.unwrap_err().code, "intake.unknown_symptom");
        let err = HealthEntry::new(id, "36.5", &[], "moon", &rules());
        assert_eq!(err.unwrap_err().field, "whereabouts");
        let dup = entry("36.5", &["fatigue", "cough", "cough"]);
        assert_eq!(dup.symptoms, vec![Symptom::Cough, Symptom::Fatigue]);
    }

    #[test]
    fn submissions_become_work_by_the_rules() {
        let (hh, r) = (Uuid::now_v7(), Uuid::now_v7());
        let fever = Submission::Health {
            entries: vec![
                HealthEntry::normal(Uuid::now_v7()),
                HealthEntry { temperature: TenthsCelsius(385), ..HealthEntry::normal(r) },
            ],
        };
        let work = fever.work(hh, &rules());
        assert_eq!(work.len(), 1);
        assert_eq!(work[0].category, "fever_follow_up");
        assert_eq!(work[0].subject, WorkSubject::Resident(r));
        let help = Submission::Help(
            HelpRequest::new(None, "medical_care", "urgent", Some("需要透析"), &rules()).unwrap(),
        );
        let work = help.work(hh, &rules());
        assert_eq!(work[0].category, "medical_assistance");
        assert_eq!(work[0].priority, Priority::Urgent);
        assert_eq!(work[0].subject, WorkSubject::Household(hh));
        let today = NaiveDate::from_ymd_opt(2026, 11, 29).unwrap();
        let arrival = Arrival::new(r, "440000", "2026-11-28", "train", None, today, &rules());
        let work = Submission::Arrival(arrival.unwrap()).work(hh, &rules());
        assert_eq!(work[0].category, "arrival_verification");
        let offer =
            VolunteerOffer::new(r, &["driving".into()], &["weekend".into()], None, &rules());
        let work = Submission::Volunteer(offer.unwrap()).work(hh, &rules());
        assert_eq!(work.len(), 1);
        assert_eq!(work[0].category, "volunteer_offer_contact");
        assert_eq!(work[0].priority, Priority::Low);
        assert_eq!(work[0].subject, WorkSubject::Resident(r));
    }

    #[test]
    fn bad_arrivals_help_and_offers_name_their_field() {
        let r = Uuid::now_v7();
        let today = NaiveDate::from_ymd_opt(2026, 11, 29).unwrap();
        let field = |e: FieldError| (e.field, e.code);
        let arrival = |o: &str, d: &str, t: &str| {
            Arrival::new(r, o, d, t, None, today, &rules()).map_err(field).unwrap_err()
        };
        assert_eq!(arrival("999999", "2026-11-28", "train").1, "intake.unknown_region");
        assert_eq!(arrival("440000", "2026-11-30", "train").1, "intake.date_in_future");
        assert_eq!(arrival("440000", "2026-09-01", "train").1, "intake.date_too_old");
        assert_eq!(arrival("440000", "yesterday", "train").0, "arrived_on");
        assert_eq!(arrival("440000", "2026-11-28", "rocket").0, "travel");
        let long = "很".repeat(501);
        let help = HelpRequest::new(None, "food", "normal", Some(&long), &rules());
        assert_eq!(help.unwrap_err().code, "intake.note_too_long");
        let help = HelpRequest::new(None, "other", "normal", Some("  "), &rules());
        assert_eq!(help.unwrap_err().code, "intake.note_required");
        let offer = VolunteerOffer::new(r, &[], &["weekend".into()], None, &rules());
        assert_eq!(offer.unwrap_err().field, "skills");
        assert_eq!(RegionCode::parse("810000").unwrap().name_zh(), "香港特别行政区");
    }

    #[test]
    fn every_submission_round_trips_through_its_stored_json() {
        let r = Uuid::now_v7();
        let today = NaiveDate::from_ymd_opt(2026, 11, 29).unwrap();
        let all = [
            Submission::Health { entries: vec![HealthEntry::normal(r)] },
            Submission::Arrival(
                Arrival::new(r, "110000", "2026-11-29", "car", Some("自驾"), today, &rules())
                    .unwrap(),
            ),
            Submission::Help(HelpRequest::new(Some(r), "food", "urgent", None, &rules()).unwrap()),
            Submission::Volunteer(
                VolunteerOffer::new(r, &["delivery".into()], &["any_time".into()], None, &rules())
                    .unwrap(),
            ),
        ];
        for submission in all {
            let text = serde_json::to_string(&submission).unwrap();
            assert_eq!(serde_json::from_str::<Submission>(&text).unwrap(), submission, "{text}");
        }
    }

    #[test]
    fn references_and_keys() {
        let id = Uuid::now_v7();
        let day = NaiveDate::from_ymd_opt(2026, 11, 29).unwrap();
        let reference = reference(SubmissionKind::Help, day, id);
        assert!(reference.starts_with("QZ-20261129-"), "{reference}");
        assert_eq!(reference.len(), 20);
        assert!(!reference[12..].contains(['I', 'L', 'O', 'U']));
        let early = NaiveDate::from_ymd_opt(2027, 3, 5).unwrap();
        let padded = super::reference(SubmissionKind::Health, early, id);
        assert!(padded.starts_with("JK-20270305-"), "{padded}");
        let old = NaiveDate::from_ymd_opt(999, 1, 2).unwrap();
        let padded = super::reference(SubmissionKind::Arrival, old, id);
        assert!(padded.starts_with("FH-09990102-"), "{padded}");
        assert_eq!(&padded[12..], &reference[12..], "the tail depends on the id alone");
        assert!(check_idempotency_key("550e8400-e29b").is_ok());
        assert_eq!(check_idempotency_key("").unwrap_err().code, "intake.idempotency_key_required");
        assert_eq!(
            check_idempotency_key("short").unwrap_err().code,
            "intake.idempotency_key_invalid"
        );
        assert_eq!(
            check_idempotency_key("has space inside").unwrap_err().code,
            "intake.idempotency_key_invalid"
        );
    }

    #[test]
    fn a_task_shows_what_its_report_said_about_its_subject_only() {
        let rules = IntakeRules::default();
        let (ill, well) = (Uuid::now_v7(), Uuid::now_v7());
        let symptoms = ["fatigue".to_owned(), "cough".to_owned()];
        let health = Submission::Health {
            entries: vec![
                HealthEntry::new(ill, "38.46", &symptoms, "at_home", &rules).unwrap(),
                HealthEntry::normal(well),
            ],
        };
        let lines = health.lines_about(WorkSubject::Resident(ill));
        assert_eq!(
            lines,
            vec![
                ReportLine::text("task.reported.temperature", "38.5 °C"),
                ReportLine {
                    label: "task.reported.symptoms",
                    value: ReportValue::Codes(vec![
                        "intake.symptom.cough".into(),
                        "intake.symptom.fatigue".into()
                    ]),
                },
                ReportLine {
                    label: "task.reported.whereabouts",
                    value: ReportValue::Codes(vec!["intake.whereabouts.at_home".into()]),
                },
            ]
        );
        assert!(health.lines_about(WorkSubject::Household(Uuid::now_v7())).is_empty());
        assert!(health.lines_about(WorkSubject::Resident(Uuid::now_v7())).is_empty());
        let well_lines = health.lines_about(WorkSubject::Resident(well));
        assert_eq!(well_lines[0], ReportLine::text("task.reported.temperature", "36.5 °C"));

        let help = Submission::Help(
            HelpRequest::new(None, "medicine", "urgent", Some("降压药，明早前"), &rules).unwrap(),
        );
        let lines = help.lines_about(WorkSubject::Household(Uuid::now_v7()));
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].value, ReportValue::Codes(vec!["intake.help_kind.medicine".into()]));
        assert_eq!(lines[1].value, ReportValue::Codes(vec!["intake.urgency.urgent".into()]));
        assert_eq!(lines[2], ReportLine::text("task.reported.note", "降压药，明早前"));
    }
}
