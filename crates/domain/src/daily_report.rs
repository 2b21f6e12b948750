//! The daily report upward (RULES.md §5): which rows it has, what each cell
//! holds, and the checks that must pass before it leaves the office.
//!
//! Inputs are plain numbers the service has counted; the output is rows and
//! check failures. A figure the system does not collect yet is
//! `Value::NotCollected` (printed "暂无数据"), never a zero: a zero upward
//! means "we looked and there were none", and a made-up zero would hide a gap.

use serde::Serialize;

/// One cell of the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Value {
    Known(i64),
    /// The system does not collect this figure (yet).
    NotCollected,
    /// The column makes no sense for this row (e.g. "new today" of a
    /// registry total).
    NotApplicable,
}

impl Value {
    pub fn known(self) -> Option<i64> {
        match self {
            Value::Known(n) => Some(n),
            _ => None,
        }
    }
}

/// A figure counted per day: today's new, the cumulative total up to and
/// including today, and yesterday's cumulative (for the continuity check).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Daily {
    pub new_today: i64,
    pub cumulative: i64,
    pub yesterday_cumulative: i64,
}

/// PCR testing of the day, when a later issue collects it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Testing {
    pub due: i64,
    pub tested: i64,
}

/// What the service counted for one unit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UnitCounts {
    pub households_registered: i64,
    pub people_registered: i64,
    /// Households a grid worker reported on at the door (distinct per day).
    pub households_checked: Daily,
    /// Residents with a health entry (distinct per day).
    pub people_reported: Daily,
    /// Arrivals, all origins together: origins are not classed by risk yet.
    pub arrivals: Daily,
    /// Health entries with fever or a symptom.
    pub fever: Daily,
    pub help_requests: Daily,
    /// Residents tagged for special care (elderly living alone); `None`
    /// when the deployment has no such tag.
    pub special_care: Option<i64>,
    /// `None` until testing is collected.
    pub testing: Option<Testing>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    SubDistrict,
    Community,
    Grid,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::SubDistrict => "sub_district",
            Level::Community => "community",
            Level::Grid => "grid",
        }
    }

    /// The digits a unit's children's codes start with: 9 for a
    /// sub-district (its 12-digit form ends in 000), 12 for a community,
    /// the whole 14-digit code for a grid.
    pub fn prefix(self, code: &str) -> &str {
        let n = match self {
            Level::SubDistrict => 9,
            Level::Community => 12,
            Level::Grid => code.len(),
        };
        code.get(..n).unwrap_or(code)
    }

    fn child(self) -> Option<Level> {
        match self {
            Level::SubDistrict => Some(Level::Community),
            Level::Community => Some(Level::Grid),
            Level::Grid => None,
        }
    }
}

/// A reporting unit and its counts. `code` is the statistical code (9-digit
/// sub-district, 12-digit community) or the 14-digit grid code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unit {
    pub level: Level,
    pub code: String,
    pub name: String,
    pub counts: UnitCounts,
}

impl Unit {
    /// The 12-digit reporting code of RULES.md §5: a sub-district's 9 digits
    /// padded with 000, a community's own, a grid's community.
    pub fn reporting_code(&self) -> String {
        match self.level {
            Level::SubDistrict => format!("{:0<12}", self.code),
            Level::Community | Level::Grid => self.code.chars().take(12).collect(),
        }
    }
}

/// The rows of the report, in the order an office reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Figure {
    HouseholdsRegistered,
    PeopleRegistered,
    HouseholdsActual,
    PeopleActual,
    HouseholdsChecked,
    PeopleReported,
    Arrivals,
    ArrivalsHighRisk,
    ArrivalsMediumRisk,
    ArrivalsLowRisk,
    ArrivalsOtherCounty,
    ArrivalsAbroad,
    CloseContacts,
    SecondaryContacts,
    CentralizedQuarantine,
    HomeQuarantine,
    HomeHealthMonitoring,
    Released,
    TestingDue,
    TestingTested,
    TestingUntested,
    PoolsRetesting,
    Fever,
    HelpRequests,
    Vaccination60Due,
    Vaccination60OneDose,
    Vaccination60FullCourse,
    Vaccination60Booster,
    Vaccination60SecondBooster,
    Vaccination60Contraindicated,
    SpecialCare,
}

impl Figure {
    pub const ALL: [Figure; 31] = [
        Figure::HouseholdsRegistered,
        Figure::PeopleRegistered,
        Figure::HouseholdsActual,
        Figure::PeopleActual,
        Figure::HouseholdsChecked,
        Figure::PeopleReported,
        Figure::Arrivals,
        Figure::ArrivalsHighRisk,
        Figure::ArrivalsMediumRisk,
        Figure::ArrivalsLowRisk,
        Figure::ArrivalsOtherCounty,
        Figure::ArrivalsAbroad,
        Figure::CloseContacts,
        Figure::SecondaryContacts,
        Figure::CentralizedQuarantine,
        Figure::HomeQuarantine,
        Figure::HomeHealthMonitoring,
        Figure::Released,
        Figure::TestingDue,
        Figure::TestingTested,
        Figure::TestingUntested,
        Figure::PoolsRetesting,
        Figure::Fever,
        Figure::HelpRequests,
        Figure::Vaccination60Due,
        Figure::Vaccination60OneDose,
        Figure::Vaccination60FullCourse,
        Figure::Vaccination60Booster,
        Figure::Vaccination60SecondBooster,
        Figure::Vaccination60Contraindicated,
        Figure::SpecialCare,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Figure::HouseholdsRegistered => "households_registered",
            Figure::PeopleRegistered => "people_registered",
            Figure::HouseholdsActual => "households_actual",
            Figure::PeopleActual => "people_actual",
            Figure::HouseholdsChecked => "households_checked",
            Figure::PeopleReported => "people_reported",
            Figure::Arrivals => "arrivals",
            Figure::ArrivalsHighRisk => "arrivals_high_risk",
            Figure::ArrivalsMediumRisk => "arrivals_medium_risk",
            Figure::ArrivalsLowRisk => "arrivals_low_risk",
            Figure::ArrivalsOtherCounty => "arrivals_other_county",
            Figure::ArrivalsAbroad => "arrivals_abroad",
            Figure::CloseContacts => "close_contacts",
            Figure::SecondaryContacts => "secondary_contacts",
            Figure::CentralizedQuarantine => "centralized_quarantine",
            Figure::HomeQuarantine => "home_quarantine",
            Figure::HomeHealthMonitoring => "home_health_monitoring",
            Figure::Released => "released",
            Figure::TestingDue => "testing_due",
            Figure::TestingTested => "testing_tested",
            Figure::TestingUntested => "testing_untested",
            Figure::PoolsRetesting => "pools_retesting",
            Figure::Fever => "fever",
            Figure::HelpRequests => "help_requests",
            Figure::Vaccination60Due => "vaccination_60_due",
            Figure::Vaccination60OneDose => "vaccination_60_one_dose",
            Figure::Vaccination60FullCourse => "vaccination_60_full_course",
            Figure::Vaccination60Booster => "vaccination_60_booster",
            Figure::Vaccination60SecondBooster => "vaccination_60_second_booster",
            Figure::Vaccination60Contraindicated => "vaccination_60_contraindicated",
            Figure::SpecialCare => "special_care",
        }
    }

    /// Translation key of the row's label.
    pub fn label_key(self) -> String {
        format!("export.daily.figure.{}", self.as_str())
    }
}

/// The report's three columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Column {
    NewToday,
    Cumulative,
    Current,
}

impl Column {
    pub fn as_str(self) -> &'static str {
        match self {
            Column::NewToday => "new_today",
            Column::Cumulative => "cumulative",
            Column::Current => "current",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Row {
    pub figure: Figure,
    pub new_today: Value,
    pub cumulative: Value,
    pub current: Value,
    /// A translation key explaining the row, if it needs one.
    pub note: Option<&'static str>,
}

impl Row {
    pub fn value(&self, column: Column) -> Value {
        match column {
            Column::NewToday => self.new_today,
            Column::Cumulative => self.cumulative,
            Column::Current => self.current,
        }
    }
}

const NOT_COLLECTED_NOTE: &str = "export.daily.note.not_collected";

fn daily(figure: Figure, d: Daily) -> Row {
    Row {
        figure,
        new_today: Value::Known(d.new_today),
        cumulative: Value::Known(d.cumulative),
        current: Value::NotApplicable,
        note: None,
    }
}

fn current(figure: Figure, n: i64) -> Row {
    Row {
        figure,
        new_today: Value::NotApplicable,
        cumulative: Value::NotApplicable,
        current: Value::Known(n),
        note: None,
    }
}

fn not_collected(figure: Figure) -> Row {
    Row {
        figure,
        new_today: Value::NotCollected,
        cumulative: Value::NotCollected,
        current: Value::NotCollected,
        note: Some(NOT_COLLECTED_NOTE),
    }
}

/// Every row of the report for one unit, in `Figure::ALL` order.
pub fn rows(counts: &UnitCounts) -> Vec<Row> {
    Figure::ALL
        .into_iter()
        .map(|figure| match figure {
            Figure::HouseholdsRegistered => current(figure, counts.households_registered),
            Figure::PeopleRegistered => current(figure, counts.people_registered),
            Figure::HouseholdsChecked => Row {
                note: Some("export.daily.note.households_checked"),
                ..daily(figure, counts.households_checked)
            },
            Figure::PeopleReported => Row {
                note: Some("export.daily.note.people_reported"),
                ..daily(figure, counts.people_reported)
            },
            Figure::Arrivals => Row {
                note: Some("export.daily.note.arrivals_total"),
                ..daily(figure, counts.arrivals)
            },
            Figure::Fever => daily(figure, counts.fever),
            Figure::HelpRequests => daily(figure, counts.help_requests),
            Figure::SpecialCare => match counts.special_care {
                Some(n) => {
                    Row { note: Some("export.daily.note.special_care"), ..current(figure, n) }
                }
                None => not_collected(figure),
            },
            Figure::TestingDue | Figure::TestingTested | Figure::TestingUntested => {
                match counts.testing {
                    Some(t) => {
                        let n = match figure {
                            Figure::TestingDue => t.due,
                            Figure::TestingTested => t.tested,
                            _ => t.due - t.tested,
                        };
                        Row {
                            figure,
                            new_today: Value::Known(n),
                            cumulative: Value::NotApplicable,
                            current: Value::NotApplicable,
                            note: None,
                        }
                    }
                    None => not_collected(figure),
                }
            }
            _ => not_collected(figure),
        })
        .collect()
}

/// True when every known figure of the day is zero: a 零报告, which is
/// allowed and says so in the header. Registry totals do not count: a
/// quiet day in a populated grid is still a zero report.
pub fn is_zero_report(counts: &UnitCounts) -> bool {
    [counts.households_checked, counts.people_reported, counts.arrivals, counts.fever]
        .iter()
        .chain(std::iter::once(&counts.help_requests))
        .all(|d| d.new_today == 0)
}

/// Why a report may not be sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "check", rename_all = "snake_case")]
pub enum CheckFailure {
    /// More people tested than were due.
    TestedOverDue { unit: String, due: i64, tested: i64 },
    /// Cumulative ≠ yesterday's cumulative + today's new.
    Cumulative { unit: String, figure: Figure, yesterday: i64, new_today: i64, cumulative: i64 },
    /// A unit's figure is not the sum of its children's.
    RollUp { unit: String, figure: Figure, column: Column, total: i64, sum_of_children: i64 },
}

impl CheckFailure {
    /// Translation key of the message; its placeholders are the fields.
    pub fn message_key(&self) -> &'static str {
        match self {
            CheckFailure::TestedOverDue { .. } => "export.daily.check.tested_over_due",
            CheckFailure::Cumulative { .. } => "export.daily.check.cumulative",
            CheckFailure::RollUp { .. } => "export.daily.check.roll_up",
        }
    }

    /// Placeholder values for the message (`{unit}`, `{figure}` as a key…).
    pub fn params(&self) -> Vec<(&'static str, String)> {
        match self {
            CheckFailure::TestedOverDue { unit, due, tested } => vec![
                ("unit", unit.clone()),
                ("due", due.to_string()),
                ("tested", tested.to_string()),
            ],
            CheckFailure::Cumulative { unit, figure, yesterday, new_today, cumulative } => vec![
                ("unit", unit.clone()),
                ("figure", figure.label_key()),
                ("yesterday", yesterday.to_string()),
                ("new_today", new_today.to_string()),
                ("cumulative", cumulative.to_string()),
            ],
            CheckFailure::RollUp { unit, figure, column, total, sum_of_children } => vec![
                ("unit", unit.clone()),
                ("figure", figure.label_key()),
                ("column", format!("export.daily.column.{}", column.as_str())),
                ("total", total.to_string()),
                ("sum", sum_of_children.to_string()),
            ],
        }
    }
}

fn unit_label(unit: &Unit) -> String {
    format!("{}（{}）", unit.name, unit.code)
}

/// Runs every check over the units of one report (the unit asked for and
/// the units below it). Empty means the report may go.
pub fn check(units: &[Unit]) -> Vec<CheckFailure> {
    let mut failures = Vec::new();
    for unit in units {
        let label = unit_label(unit);
        let c = &unit.counts;
        if let Some(t) = c.testing
            && t.tested > t.due
        {
            failures.push(CheckFailure::TestedOverDue {
                unit: label.clone(),
                due: t.due,
                tested: t.tested,
            });
        }
        for (figure, d) in [
            (Figure::HouseholdsChecked, c.households_checked),
            (Figure::PeopleReported, c.people_reported),
            (Figure::Arrivals, c.arrivals),
            (Figure::Fever, c.fever),
            (Figure::HelpRequests, c.help_requests),
        ] {
            if d.yesterday_cumulative.checked_add(d.new_today) != Some(d.cumulative) {
                failures.push(CheckFailure::Cumulative {
                    unit: label.clone(),
                    figure,
                    yesterday: d.yesterday_cumulative,
                    new_today: d.new_today,
                    cumulative: d.cumulative,
                });
            }
        }
        // Roll-up: the unit against the units one level down whose codes
        // start with its prefix. A unit with no children in the report (a
        // grid, or a report of one grid) has nothing to roll up.
        let Some(child_level) = unit.level.child() else { continue };
        let prefix = unit.level.prefix(&unit.code);
        let children: Vec<&Unit> =
            units.iter().filter(|u| u.level == child_level && u.code.starts_with(prefix)).collect();
        if children.is_empty() {
            continue;
        }
        let own = rows(c);
        let child_rows: Vec<Vec<Row>> = children.iter().map(|u| rows(&u.counts)).collect();
        for (i, row) in own.iter().enumerate() {
            for column in [Column::NewToday, Column::Cumulative, Column::Current] {
                let Some(total) = row.value(column).known() else { continue };
                let sum: i64 = child_rows.iter().filter_map(|r| r[i].value(column).known()).sum();
                if sum != total {
                    failures.push(CheckFailure::RollUp {
                        unit: label.clone(),
                        figure: row.figure,
                        column,
                        total,
                        sum_of_children: sum,
                    });
                }
            }
        }
    }
    failures
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(new_today: i64, yesterday: i64) -> Daily {
        Daily { new_today, cumulative: yesterday + new_today, yesterday_cumulative: yesterday }
    }

    fn counts(people: i64, reported: i64) -> UnitCounts {
        UnitCounts {
            households_registered: people / 2,
            people_registered: people,
            people_reported: d(reported, 10),
            fever: d(1, 2),
            special_care: Some(1),
            ..UnitCounts::default()
        }
    }

    fn unit(level: Level, code: &str, c: UnitCounts) -> Unit {
        Unit { level, code: code.into(), name: code.into(), counts: c }
    }

    fn consistent() -> Vec<Unit> {
        let g1 = counts(10, 4);
        let g2 = counts(6, 3);
        let sum = |a: &UnitCounts, b: &UnitCounts| UnitCounts {
            households_registered: a.households_registered + b.households_registered,
            people_registered: a.people_registered + b.people_registered,
            people_reported: d(
                a.people_reported.new_today + b.people_reported.new_today,
                a.people_reported.yesterday_cumulative + b.people_reported.yesterday_cumulative,
            ),
            fever: d(2, 4),
            special_care: Some(2),
            ..UnitCounts::default()
        };
        let c = sum(&g1, &g2);
        vec![
            unit(Level::SubDistrict, "370102001", c.clone()),
            unit(Level::Community, "370102001001", c),
            unit(Level::Grid, "37010200100101", g1),
            unit(Level::Grid, "37010200100102", g2),
        ]
    }

    #[test]
    fn uncollected_figures_are_not_zero() {
        let rows = rows(&counts(10, 4));
        assert_eq!(rows.len(), Figure::ALL.len());
        let close = rows.iter().find(|r| r.figure == Figure::CloseContacts).unwrap();
        assert_eq!(close.new_today, Value::NotCollected);
        assert_eq!(close.note, Some(NOT_COLLECTED_NOTE));
        let people = rows.iter().find(|r| r.figure == Figure::PeopleRegistered).unwrap();
        assert_eq!(people.current, Value::Known(10));
        assert_eq!(people.new_today, Value::NotApplicable);
        let reported = rows.iter().find(|r| r.figure == Figure::PeopleReported).unwrap();
        assert_eq!((reported.new_today, reported.cumulative), (Value::Known(4), Value::Known(14)));
        // Arrivals come as a total with a note, the risk classes are not collected.
        let arrivals = rows.iter().find(|r| r.figure == Figure::Arrivals).unwrap();
        assert_eq!(arrivals.new_today, Value::Known(0));
        assert!(arrivals.note.is_some());
        let high = rows.iter().find(|r| r.figure == Figure::ArrivalsHighRisk).unwrap();
        assert_eq!(high.new_today, Value::NotCollected);
    }

    #[test]
    fn no_special_care_tag_means_not_collected() {
        let c = UnitCounts { special_care: None, ..UnitCounts::default() };
        let row = rows(&c).into_iter().find(|r| r.figure == Figure::SpecialCare).unwrap();
        assert_eq!(row.current, Value::NotCollected);
    }

    #[test]
    fn a_consistent_report_passes() {
        assert_eq!(check(&consistent()), vec![]);
    }

    #[test]
    fn a_quiet_day_is_a_zero_report_and_passes() {
        let c = UnitCounts { people_registered: 5, ..UnitCounts::default() };
        assert!(is_zero_report(&c));
        assert!(!is_zero_report(&counts(10, 4)));
        assert_eq!(check(&[unit(Level::Grid, "37010200100101", c)]), vec![]);
    }

    #[test]
    fn a_broken_cumulative_fails() {
        let mut units = consistent();
        units[2].counts.fever.cumulative += 1;
        let failures = check(&units);
        assert!(failures.contains(&CheckFailure::Cumulative {
            unit: "37010200100101（37010200100101）".into(),
            figure: Figure::Fever,
            yesterday: 2,
            new_today: 1,
            cumulative: 4,
        }));
        let keys: Vec<_> = failures.iter().map(CheckFailure::message_key).collect();
        // The community's cumulative no longer equals its grids' either.
        assert_eq!(keys, ["export.daily.check.roll_up", "export.daily.check.cumulative"]);
    }

    #[test]
    fn totals_must_roll_up_by_code_prefix() {
        let mut units = consistent();
        units[3].counts.people_registered += 1;
        let failures = check(&units);
        assert_eq!(
            failures,
            vec![CheckFailure::RollUp {
                unit: "370102001001（370102001001）".into(),
                figure: Figure::PeopleRegistered,
                column: Column::Current,
                total: 16,
                sum_of_children: 17,
            }]
        );
        // A grid of another community does not count towards this one.
        let mut units = consistent();
        units[3].code = "37010200100201".into();
        assert!(check(&units).iter().any(|f| matches!(f, CheckFailure::RollUp { .. })));
    }

    #[test]
    fn tested_may_not_exceed_due() {
        let c = UnitCounts { testing: Some(Testing { due: 5, tested: 6 }), ..Default::default() };
        let failures = check(&[unit(Level::Grid, "37010200100101", c.clone())]);
        assert_eq!(failures.len(), 1);
        assert_eq!(failures[0].message_key(), "export.daily.check.tested_over_due");
        let ok = UnitCounts { testing: Some(Testing { due: 6, tested: 6 }), ..c };
        assert_eq!(check(&[unit(Level::Grid, "37010200100101", ok.clone())]), vec![]);
        let untested = rows(&ok).into_iter().find(|r| r.figure == Figure::TestingUntested);
        assert_eq!(untested.unwrap().new_today, Value::Known(0));
    }

    #[test]
    fn reporting_codes_have_twelve_digits() {
        let units = consistent();
        assert_eq!(units[0].reporting_code(), "370102001000");
        assert_eq!(units[1].reporting_code(), "370102001001");
        assert_eq!(units[2].reporting_code(), "370102001001");
    }
}
