//! Working time (RULES.md §1.2: limits count working hours and days). A
//! calendar is configuration: the working periods of each weekday, public
//! holidays, make-up working days (调休, a weekend worked to bridge a holiday)
//! and emergency days, on which every hour of the day counts.
//!
//! All times are local wall-clock times (`NaiveDateTime`); the service converts
//! from UTC with its configured offset before asking. Working time on a day is
//! a set of half-open intervals `[start, end)`: an instant at exactly 12:00 is
//! not working time when the morning ends at 12:00.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Timelike, Weekday};
use serde::{Deserialize, Serialize};

/// One working period of a day, written `"08:30-12:00"`. Start before end, so
/// a period never crosses midnight; round-the-clock work is an emergency day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct WorkPeriod {
    start: NaiveTime,
    end: NaiveTime,
}

/// The working periods of each weekday. A weekday without periods is a rest
/// day unless a date says otherwise.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WeeklyHours {
    pub mon: Vec<WorkPeriod>,
    pub tue: Vec<WorkPeriod>,
    pub wed: Vec<WorkPeriod>,
    pub thu: Vec<WorkPeriod>,
    pub fri: Vec<WorkPeriod>,
    pub sat: Vec<WorkPeriod>,
    pub sun: Vec<WorkPeriod>,
}

/// The calendar as written in configuration. Turn it into a `WorkCalendar`
/// with `WorkCalendar::new`, which checks it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarConfig {
    pub weekly_hours: WeeklyHours,
    /// Public holidays (法定节假日). A holiday on a weekend is harmless.
    #[serde(default)]
    pub holidays: BTreeSet<NaiveDate>,
    /// Make-up working days (调休上班), each working the hours of the weekday
    /// it names. In the State Council notices these are weekends.
    #[serde(default)]
    pub make_up_workdays: BTreeMap<NaiveDate, Weekday>,
    /// Days of emergency mode: all 24 hours are working time, whatever the
    /// weekday or holiday says. Emergency mode wins over everything else.
    #[serde(default)]
    pub emergency_days: BTreeSet<NaiveDate>,
}

/// A checked calendar: periods sorted and disjoint, some working time in every
/// week (so adding working time always ends), no date both holiday and
/// make-up day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "CalendarConfig", into = "CalendarConfig")]
pub struct WorkCalendar {
    config: CalendarConfig,
}

/// What a date is, in the order the calendar decides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DayKind {
    Emergency,
    Holiday,
    MakeUpWorkday,
    Workday,
    RestDay,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error("a working period is written like 08:30-12:00, not {0:?}")]
    PeriodFormat(String),
    #[error("a working period must end after it starts")]
    EmptyPeriod,
    #[error("working periods on {} overlap", weekday_key(*.0))]
    OverlappingPeriods(Weekday),
    #[error("the week has no working time, so no time limit could ever end")]
    NoWorkingTime,
    #[error("{0} is both a holiday and a make-up working day")]
    HolidayAndMakeUpDay(NaiveDate),
    #[error("make-up working day {0} names a weekday without working hours")]
    MakeUpDayWithoutHours(NaiveDate),
    #[error("the calendar is not valid JSON of the expected shape: {0}")]
    Malformed(String),
}

impl crate::ReasonCode for CalendarError {
    fn code(&self) -> &'static str {
        match self {
            CalendarError::PeriodFormat(_) => "calendar.period_format",
            CalendarError::EmptyPeriod => "calendar.period_empty",
            CalendarError::OverlappingPeriods(_) => "calendar.periods_overlap",
            CalendarError::NoWorkingTime => "calendar.no_working_time",
            CalendarError::HolidayAndMakeUpDay(_) => "calendar.holiday_is_make_up_day",
            CalendarError::MakeUpDayWithoutHours(_) => "calendar.make_up_day_without_hours",
            CalendarError::Malformed(_) => "calendar.malformed",
        }
    }
}

/// The default calendar: office hours 08:30–12:00 and 13:30–17:30 Monday to
/// Friday, with the public holidays and make-up days of the State Council
/// notices for 2022–2026 (国办发明电, the 2026 notice of 4 Nov 2025). Add each
/// new year's notice when it is published, or configure `calendar_file`.
pub const DEFAULT_CALENDAR_JSON: &str = include_str!("default_calendar.json");

fn weekday_key(day: Weekday) -> &'static str {
    match day {
        Weekday::Mon => "mon",
        Weekday::Tue => "tue",
        Weekday::Wed => "wed",
        Weekday::Thu => "thu",
        Weekday::Fri => "fri",
        Weekday::Sat => "sat",
        Weekday::Sun => "sun",
    }
}

impl WorkPeriod {
    pub fn new(start: NaiveTime, end: NaiveTime) -> Result<Self, CalendarError> {
        if start < end { Ok(Self { start, end }) } else { Err(CalendarError::EmptyPeriod) }
    }

    /// Parses `"08:30-12:00"` (seconds allowed: `"08:30:00-12:00:00"`).
    pub fn parse(input: &str) -> Result<Self, CalendarError> {
        let format_error = || CalendarError::PeriodFormat(input.to_owned());
        let (start, end) = input.split_once('-').ok_or_else(format_error)?;
        let time = |s: &str| {
            let s = s.trim();
            NaiveTime::parse_from_str(s, "%H:%M")
                .or_else(|_| NaiveTime::parse_from_str(s, "%H:%M:%S"))
                .map_err(|_| format_error())
        };
        Self::new(time(start)?, time(end)?)
    }

    pub fn start(self) -> NaiveTime {
        self.start
    }

    pub fn end(self) -> NaiveTime {
        self.end
    }

    pub fn duration(self) -> TimeDelta {
        self.end - self.start
    }
}

impl fmt::Display for WorkPeriod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |t: NaiveTime| {
            if t.second() == 0 && t.nanosecond() == 0 {
                t.format("%H:%M").to_string()
            } else {
                t.format("%H:%M:%S").to_string()
            }
        };
        write!(f, "{}-{}", show(self.start), show(self.end))
    }
}

impl TryFrom<String> for WorkPeriod {
    type Error = CalendarError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<WorkPeriod> for String {
    fn from(value: WorkPeriod) -> String {
        value.to_string()
    }
}

impl WeeklyHours {
    /// 08:30–12:00 and 13:30–17:30, Monday to Friday: the usual hours of a
    /// sub-district office.
    pub fn office_hours() -> Self {
        let day = vec![
            WorkPeriod::parse("08:30-12:00").expect("constant period"),
            WorkPeriod::parse("13:30-17:30").expect("constant period"),
        ];
        Self {
            mon: day.clone(),
            tue: day.clone(),
            wed: day.clone(),
            thu: day.clone(),
            fri: day,
            sat: Vec::new(),
            sun: Vec::new(),
        }
    }

    pub fn on(&self, day: Weekday) -> &[WorkPeriod] {
        match day {
            Weekday::Mon => &self.mon,
            Weekday::Tue => &self.tue,
            Weekday::Wed => &self.wed,
            Weekday::Thu => &self.thu,
            Weekday::Fri => &self.fri,
            Weekday::Sat => &self.sat,
            Weekday::Sun => &self.sun,
        }
    }

    fn on_mut(&mut self, day: Weekday) -> &mut Vec<WorkPeriod> {
        match day {
            Weekday::Mon => &mut self.mon,
            Weekday::Tue => &mut self.tue,
            Weekday::Wed => &mut self.wed,
            Weekday::Thu => &mut self.thu,
            Weekday::Fri => &mut self.fri,
            Weekday::Sat => &mut self.sat,
            Weekday::Sun => &mut self.sun,
        }
    }
}

const WEEK: [Weekday; 7] = [
    Weekday::Mon,
    Weekday::Tue,
    Weekday::Wed,
    Weekday::Thu,
    Weekday::Fri,
    Weekday::Sat,
    Weekday::Sun,
];

impl CalendarConfig {
    /// Office hours and nothing else: no holidays, make-up or emergency days.
    pub fn office_hours() -> Self {
        Self {
            weekly_hours: WeeklyHours::office_hours(),
            holidays: BTreeSet::new(),
            make_up_workdays: BTreeMap::new(),
            emergency_days: BTreeSet::new(),
        }
    }
}

impl TryFrom<CalendarConfig> for WorkCalendar {
    type Error = CalendarError;
    fn try_from(value: CalendarConfig) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<WorkCalendar> for CalendarConfig {
    fn from(value: WorkCalendar) -> Self {
        value.config
    }
}

impl WorkCalendar {
    pub fn new(mut config: CalendarConfig) -> Result<Self, CalendarError> {
        for day in WEEK {
            let periods = config.weekly_hours.on_mut(day);
            periods.sort();
            // Touching periods (12:00-13:00, 13:00-17:00) are fine; only a
            // real overlap would count the same minutes twice.
            if periods.windows(2).any(|pair| pair[1].start < pair[0].end) {
                return Err(CalendarError::OverlappingPeriods(day));
            }
        }
        if WEEK.iter().all(|&day| config.weekly_hours.on(day).is_empty()) {
            return Err(CalendarError::NoWorkingTime);
        }
        for (&date, &works_as) in &config.make_up_workdays {
            if config.holidays.contains(&date) {
                return Err(CalendarError::HolidayAndMakeUpDay(date));
            }
            if config.weekly_hours.on(works_as).is_empty() {
                return Err(CalendarError::MakeUpDayWithoutHours(date));
            }
        }
        Ok(Self { config })
    }

    pub fn from_json(json: &str) -> Result<Self, CalendarError> {
        let config: CalendarConfig =
            serde_json::from_str(json).map_err(|e| CalendarError::Malformed(e.to_string()))?;
        Self::new(config)
    }

    /// The embedded default (`DEFAULT_CALENDAR_JSON`).
    pub fn default_china() -> Self {
        Self::from_json(DEFAULT_CALENDAR_JSON).expect("the embedded default calendar is valid")
    }

    /// Office hours with no holidays: the simplest useful calendar.
    pub fn office_hours() -> Self {
        Self::new(CalendarConfig::office_hours()).expect("office hours are a valid calendar")
    }

    pub fn config(&self) -> &CalendarConfig {
        &self.config
    }

    pub fn day_kind(&self, date: NaiveDate) -> DayKind {
        let c = &self.config;
        if c.emergency_days.contains(&date) {
            DayKind::Emergency
        } else if c.holidays.contains(&date) {
            DayKind::Holiday
        } else if c.make_up_workdays.contains_key(&date) {
            DayKind::MakeUpWorkday
        } else if c.weekly_hours.on(date.weekday()).is_empty() {
            DayKind::RestDay
        } else {
            DayKind::Workday
        }
    }

    /// The working intervals `[start, end)` of one date, in order. An
    /// emergency day is one interval from its midnight to the next.
    pub fn intervals(
        &self,
        date: NaiveDate,
    ) -> impl Iterator<Item = (NaiveDateTime, NaiveDateTime)> + '_ {
        let midnight = date.and_time(NaiveTime::MIN);
        let (whole_day, periods): (bool, &[WorkPeriod]) = match self.day_kind(date) {
            DayKind::Emergency => (true, &[]),
            DayKind::Holiday | DayKind::RestDay => (false, &[]),
            DayKind::MakeUpWorkday => {
                (false, self.config.weekly_hours.on(self.config.make_up_workdays[&date]))
            }
            DayKind::Workday => (false, self.config.weekly_hours.on(date.weekday())),
        };
        whole_day
            .then(|| (midnight, midnight + TimeDelta::days(1)))
            .into_iter()
            .chain(periods.iter().map(move |p| (date.and_time(p.start), date.and_time(p.end))))
    }

    pub fn is_working_time(&self, at: NaiveDateTime) -> bool {
        self.intervals(at.date()).any(|(start, end)| start <= at && at < end)
    }

    /// The deadline `duration` of working time after `start`: the earliest
    /// instant by which exactly `duration` of working time has passed.
    ///
    /// So for a positive duration the deadline lies in `(start, end]` of some
    /// working interval: inside working time, or exactly at the end of a
    /// period (Monday 08:30 + 3h30 is Monday 12:00, not 13:30). A start in
    /// non-working time counts from the next working instant. A zero or
    /// negative duration gives `start` itself.
    ///
    /// Panics only if the deadline lies beyond chrono's range of dates.
    pub fn add_working_time(&self, start: NaiveDateTime, duration: TimeDelta) -> NaiveDateTime {
        if duration <= TimeDelta::zero() {
            return start;
        }
        let mut remaining = duration;
        let mut date = start.date();
        // Ends because a valid calendar has working time every week and the
        // sets of holidays are finite.
        loop {
            for (from, to) in self.intervals(date) {
                let from = from.max(start);
                if from >= to {
                    continue;
                }
                let available = to - from;
                if remaining <= available {
                    return from + remaining;
                }
                remaining -= available;
            }
            date = date.succ_opt().expect("deadline within chrono's range of dates");
        }
    }

    /// The working time in `[a, b)`. Negative when `b` is before `a`, so that
    /// `between(a, b) + between(b, c) == between(a, c)` always holds.
    pub fn working_time_between(&self, a: NaiveDateTime, b: NaiveDateTime) -> TimeDelta {
        if b < a {
            return -self.working_time_between(b, a);
        }
        let mut total = TimeDelta::zero();
        let mut date = a.date();
        while date <= b.date() {
            for (from, to) in self.intervals(date) {
                let (from, to) = (from.max(a), to.min(b));
                if from < to {
                    total += to - from;
                }
            }
            date = date.succ_opt().expect("dates within chrono's range");
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ReasonCode;
    use proptest::prelude::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
    }

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn hours(h: i64) -> TimeDelta {
        TimeDelta::hours(h)
    }

    fn minutes(m: i64) -> TimeDelta {
        TimeDelta::minutes(m)
    }

    /// One working day of office hours: 3h30 + 4h.
    const WORKING_DAY: i64 = 450;

    #[test]
    fn friday_afternoon_plus_four_hours_is_monday_eleven() {
        let cal = WorkCalendar::office_hours();
        // 2024-06-14 is a Friday: 16:00–17:30 uses 1h30, Monday 08:30 + 2h30.
        assert_eq!(cal.add_working_time(at("2024-06-14 16:00"), hours(4)), at("2024-06-17 11:00"));
        assert_eq!(
            cal.working_time_between(at("2024-06-14 16:00"), at("2024-06-17 11:00")),
            hours(4)
        );
    }

    #[test]
    fn a_deadline_at_the_end_of_a_period_stays_there() {
        let cal = WorkCalendar::office_hours();
        assert_eq!(
            cal.add_working_time(at("2024-06-17 08:30"), minutes(210)),
            at("2024-06-17 12:00")
        );
        assert_eq!(
            cal.add_working_time(at("2024-06-17 08:30"), minutes(WORKING_DAY)),
            at("2024-06-17 17:30")
        );
        // One minute more spills into the next period, not to its start.
        assert_eq!(
            cal.add_working_time(at("2024-06-17 08:30"), minutes(211)),
            at("2024-06-17 13:31")
        );
        assert!(!cal.is_working_time(at("2024-06-17 12:00")));
        assert!(cal.is_working_time(at("2024-06-17 13:30")));
    }

    #[test]
    fn a_start_outside_working_time_counts_from_the_next_working_instant() {
        let cal = WorkCalendar::office_hours();
        // Saturday morning, lunch break, and the evening.
        assert_eq!(
            cal.add_working_time(at("2024-06-15 10:00"), minutes(30)),
            at("2024-06-17 09:00")
        );
        assert_eq!(
            cal.add_working_time(at("2024-06-17 12:15"), minutes(30)),
            at("2024-06-17 14:00")
        );
        assert_eq!(
            cal.add_working_time(at("2024-06-17 20:00"), minutes(30)),
            at("2024-06-18 09:00")
        );
        assert_eq!(
            cal.add_working_time(at("2024-06-17 20:00"), TimeDelta::zero()),
            at("2024-06-17 20:00")
        );
        assert_eq!(
            cal.add_working_time(at("2024-06-17 20:00"), minutes(-5)),
            at("2024-06-17 20:00")
        );
        assert_eq!(
            cal.working_time_between(at("2024-06-15 00:00"), at("2024-06-17 00:00")),
            minutes(0)
        );
    }

    #[test]
    fn national_day_2024_with_its_make_up_days() {
        let cal = WorkCalendar::default_china();
        // Sunday 29 September is a make-up working day; 1–7 October are off.
        assert_eq!(cal.day_kind(date("2024-09-29")), DayKind::MakeUpWorkday);
        assert_eq!(cal.day_kind(date("2024-10-03")), DayKind::Holiday);
        assert_eq!(cal.day_kind(date("2024-10-12")), DayKind::MakeUpWorkday);
        assert_eq!(cal.day_kind(date("2024-10-13")), DayKind::RestDay);
        assert_eq!(cal.day_kind(date("2024-10-08")), DayKind::Workday);
        // Sunday 29 Sept 08:30 + 4h: 3h30 before lunch, 30 min after.
        assert_eq!(cal.add_working_time(at("2024-09-29 08:30"), hours(4)), at("2024-09-29 14:00"));
        // Monday 30 Sept 16:00 + 1 working day: 1h30 that day, the holiday
        // week is skipped, 3h30 + 2h30 on Tuesday 8 October.
        assert_eq!(
            cal.add_working_time(at("2024-09-30 16:00"), minutes(WORKING_DAY)),
            at("2024-10-08 16:00")
        );
        // Friday 11 Oct 17:00 + 1h: 30 min, then Saturday 12 Oct (make-up).
        assert_eq!(cal.add_working_time(at("2024-10-11 17:00"), hours(1)), at("2024-10-12 09:00"));
        // The whole holiday week holds no working time.
        assert_eq!(
            cal.working_time_between(at("2024-10-01 00:00"), at("2024-10-08 00:00")),
            hours(0)
        );
    }

    #[test]
    fn national_day_2025_is_eight_days() {
        let cal = WorkCalendar::default_china();
        // Tuesday 30 Sept 17:00 + 1h: 30 min, then 1–8 October off, then
        // Thursday 9 October 08:30 + 30 min.
        assert_eq!(cal.add_working_time(at("2025-09-30 17:00"), hours(1)), at("2025-10-09 09:00"));
        assert_eq!(cal.day_kind(date("2025-09-28")), DayKind::MakeUpWorkday);
        assert_eq!(cal.day_kind(date("2025-10-11")), DayKind::MakeUpWorkday);
    }

    #[test]
    fn spring_festival_2026_is_nine_days_with_two_saturdays_worked() {
        let cal = WorkCalendar::default_china();
        // Saturday 14 Feb is worked; 15–23 Feb off; Tuesday 24 Feb works.
        assert_eq!(cal.day_kind(date("2026-02-14")), DayKind::MakeUpWorkday);
        assert_eq!(cal.add_working_time(at("2026-02-14 17:00"), hours(1)), at("2026-02-24 09:00"));
        assert_eq!(cal.day_kind(date("2026-02-28")), DayKind::MakeUpWorkday);
        // National Day 2026: 1–7 Oct off, Saturday 10 Oct worked.
        assert_eq!(cal.add_working_time(at("2026-09-30 17:00"), hours(1)), at("2026-10-08 09:00"));
        assert_eq!(cal.day_kind(date("2026-10-10")), DayKind::MakeUpWorkday);
    }

    #[test]
    fn spring_festival_2024() {
        let cal = WorkCalendar::default_china();
        // Sunday 4 Feb works; 10–17 Feb off; Sunday 18 Feb works.
        assert_eq!(cal.add_working_time(at("2024-02-04 17:00"), hours(1)), at("2024-02-05 09:00"));
        assert_eq!(cal.add_working_time(at("2024-02-09 17:00"), hours(1)), at("2024-02-18 09:00"));
    }

    #[test]
    fn an_emergency_day_counts_every_hour_even_on_a_holiday() {
        let mut config = WorkCalendar::default_china().config().clone();
        config.emergency_days.insert(date("2024-10-03"));
        let cal = WorkCalendar::new(config).unwrap();
        assert_eq!(cal.day_kind(date("2024-10-03")), DayKind::Emergency);
        // From the holiday of 2 October, the clock starts at midnight.
        assert_eq!(cal.add_working_time(at("2024-10-02 10:00"), hours(2)), at("2024-10-03 02:00"));
        // Inside the emergency day it is wall-clock time.
        assert_eq!(cal.add_working_time(at("2024-10-03 22:00"), hours(2)), at("2024-10-04 00:00"));
        // Past its end, the holiday week resumes: next working time 8 Oct.
        assert_eq!(cal.add_working_time(at("2024-10-03 22:00"), hours(3)), at("2024-10-08 09:30"));
        assert_eq!(
            cal.working_time_between(at("2024-10-01 00:00"), at("2024-10-08 00:00")),
            hours(24)
        );
    }

    #[test]
    fn the_default_calendar_is_consistent() {
        let cal = WorkCalendar::default_china();
        let config = cal.config();
        assert!(config.make_up_workdays.len() >= 20);
        for date in config.make_up_workdays.keys() {
            assert!(
                matches!(date.weekday(), Weekday::Sat | Weekday::Sun),
                "make-up day {date} should be a weekend"
            );
        }
        // Each year has New Year, Spring Festival (≥ 7 days), Qingming,
        // Labour Day, Dragon Boat, Mid-Autumn and National Day.
        for year in 2022..=2025 {
            let in_year = config.holidays.iter().filter(|d| d.year() == year).count();
            assert!(in_year >= 25, "{year} has only {in_year} holiday dates");
        }
        let json = serde_json::to_string(&cal).unwrap();
        assert_eq!(WorkCalendar::from_json(&json).unwrap(), cal);
    }

    #[test]
    fn periods_parse_and_print() {
        let p = WorkPeriod::parse("08:30-12:00").unwrap();
        assert_eq!(p.duration(), minutes(210));
        assert_eq!(p.to_string(), "08:30-12:00");
        assert_eq!(WorkPeriod::parse(" 08:30:15 - 12:00 ").unwrap().to_string(), "08:30:15-12:00");
        assert_eq!(WorkPeriod::parse("12:00-08:30").unwrap_err().code(), "calendar.period_empty");
        assert_eq!(WorkPeriod::parse("12:00-12:00").unwrap_err(), CalendarError::EmptyPeriod);
        for bad in ["08:30", "8h-12h", "08:30-24:00", ""] {
            assert_eq!(
                WorkPeriod::parse(bad).unwrap_err().code(),
                "calendar.period_format",
                "{bad}"
            );
        }
    }

    #[test]
    fn invalid_calendars_are_refused_with_a_code() {
        let mut overlapping = CalendarConfig::office_hours();
        overlapping.weekly_hours.tue.push(WorkPeriod::parse("11:00-14:00").unwrap());
        assert_eq!(WorkCalendar::new(overlapping).unwrap_err().code(), "calendar.periods_overlap");

        let mut touching = CalendarConfig::office_hours();
        touching.weekly_hours.sat = vec![
            WorkPeriod::parse("13:00-17:00").unwrap(),
            WorkPeriod::parse("09:00-13:00").unwrap(),
        ];
        let cal = WorkCalendar::new(touching).unwrap();
        assert_eq!(cal.config().weekly_hours.sat[0].to_string(), "09:00-13:00", "sorted");

        let none = CalendarConfig {
            weekly_hours: WeeklyHours::default(),
            ..CalendarConfig::office_hours()
        };
        assert_eq!(WorkCalendar::new(none).unwrap_err().code(), "calendar.no_working_time");

        let mut both = CalendarConfig::office_hours();
        both.holidays.insert(date("2024-10-12"));
        both.make_up_workdays.insert(date("2024-10-12"), Weekday::Mon);
        assert_eq!(WorkCalendar::new(both).unwrap_err().code(), "calendar.holiday_is_make_up_day");

        let mut as_sunday = CalendarConfig::office_hours();
        as_sunday.make_up_workdays.insert(date("2024-10-12"), Weekday::Sun);
        assert_eq!(
            WorkCalendar::new(as_sunday).unwrap_err().code(),
            "calendar.make_up_day_without_hours"
        );

        assert_eq!(WorkCalendar::from_json("{").unwrap_err().code(), "calendar.malformed");
        let unknown = r#"{"weekly_hours": {"mon": ["08:30-12:00"]}, "holydays": []}"#;
        assert_eq!(WorkCalendar::from_json(unknown).unwrap_err().code(), "calendar.malformed");
        let minimal = r#"{"weekly_hours": {"monday": []}}"#;
        assert!(WorkCalendar::from_json(minimal).is_err());
    }

    // ---- property tests ---------------------------------------------------

    /// The window the generated calendars play in: ten weeks from Sunday
    /// 1 September 2024.
    const WINDOW_DAYS: u32 = 70;

    fn window_start() -> NaiveDate {
        date("2024-09-01")
    }

    fn day(offset: u32) -> NaiveDate {
        window_start() + TimeDelta::days(offset.into())
    }

    /// Office hours plus random holidays, make-up weekend days and emergency
    /// days inside the window.
    fn calendars() -> impl Strategy<Value = WorkCalendar> {
        let offsets = || prop::collection::btree_set(0..WINDOW_DAYS, 0..12);
        (offsets(), offsets(), offsets()).prop_map(|(holidays, make_up, emergency)| {
            let mut config = CalendarConfig::office_hours();
            config.holidays = holidays.iter().map(|&o| day(o)).collect();
            config.make_up_workdays = make_up
                .iter()
                .map(|&o| day(o))
                .filter(|d| matches!(d.weekday(), Weekday::Sat | Weekday::Sun))
                .filter(|d| !config.holidays.contains(d))
                .map(|d| (d, Weekday::Mon))
                .collect();
            config.emergency_days = emergency.iter().map(|&o| day(o)).collect();
            WorkCalendar::new(config).unwrap()
        })
    }

    /// Any instant of the window, to the second.
    fn instants() -> impl Strategy<Value = NaiveDateTime> {
        (0..i64::from(WINDOW_DAYS) * 86_400)
            .prop_map(|s| window_start().and_time(NaiveTime::MIN) + TimeDelta::seconds(s))
    }

    /// Up to ten working days, to the second.
    fn durations() -> impl Strategy<Value = TimeDelta> {
        (0..10 * WORKING_DAY * 60).prop_map(TimeDelta::seconds)
    }

    proptest! {
        #[test]
        fn adding_then_measuring_gives_back_the_duration(
            cal in calendars(), start in instants(), d in durations()
        ) {
            let deadline = cal.add_working_time(start, d);
            prop_assert_eq!(cal.working_time_between(start, deadline), d);
        }

        #[test]
        fn deadlines_are_the_earliest_and_lie_in_working_time_or_at_a_period_end(
            cal in calendars(), start in instants(), d in durations()
        ) {
            prop_assume!(d > TimeDelta::zero());
            let deadline = cal.add_working_time(start, d);
            let just_before = deadline - TimeDelta::nanoseconds(1);
            // The instant just before is working time: the deadline is in
            // (start, end] of a working interval, never inside a break.
            prop_assert!(cal.is_working_time(just_before), "{} + {} = {}", start, d, deadline);
            prop_assert!(cal.working_time_between(start, just_before) < d);
            prop_assert!(deadline > start);
        }

        #[test]
        fn deadlines_grow_with_the_start(
            cal in calendars(), a in instants(), b in instants(), d in durations()
        ) {
            let (early, late) = if a <= b { (a, b) } else { (b, a) };
            prop_assert!(cal.add_working_time(early, d) <= cal.add_working_time(late, d));
        }

        #[test]
        fn deadlines_grow_with_the_duration(
            cal in calendars(), start in instants(), d1 in durations(), d2 in durations()
        ) {
            let (short, long) = if d1 <= d2 { (d1, d2) } else { (d2, d1) };
            prop_assert!(cal.add_working_time(start, short) <= cal.add_working_time(start, long));
        }

        #[test]
        fn adding_in_two_steps_is_adding_once(
            cal in calendars(), start in instants(), d1 in durations(), d2 in durations()
        ) {
            let stepwise = cal.add_working_time(cal.add_working_time(start, d1), d2);
            prop_assert_eq!(stepwise, cal.add_working_time(start, d1 + d2));
        }

        #[test]
        fn measuring_is_additive_antisymmetric_and_bounded_by_wall_clock(
            cal in calendars(), a in instants(), b in instants(), c in instants()
        ) {
            let between = |x, y| cal.working_time_between(x, y);
            prop_assert_eq!(between(a, b) + between(b, c), between(a, c));
            prop_assert_eq!(between(a, b), -between(b, a));
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            prop_assert!(between(lo, hi) >= TimeDelta::zero());
            prop_assert!(between(lo, hi) <= hi - lo);
        }

        #[test]
        fn inside_a_run_of_emergency_days_working_time_is_wall_clock(
            first in 0..WINDOW_DAYS - 10,
            len in 1u32..10,
            holidays in prop::collection::btree_set(0..WINDOW_DAYS, 0..12),
            start_s in 0..10 * 86_400i64,
            d_s in 0..10 * 86_400i64,
        ) {
            let mut config = CalendarConfig::office_hours();
            config.holidays = holidays.iter().map(|&o| day(o)).collect();
            config.emergency_days = (first..first + len).map(day).collect();
            let cal = WorkCalendar::new(config).unwrap();
            let run_start = day(first).and_time(NaiveTime::MIN);
            let run_end = day(first + len).and_time(NaiveTime::MIN);
            // Both ends inside the run, its very end included.
            let run_secs = (run_end - run_start).num_seconds();
            let start = run_start + TimeDelta::seconds(start_s % run_secs);
            let d = TimeDelta::seconds(d_s % ((run_end - start).num_seconds() + 1));
            prop_assert_eq!(cal.add_working_time(start, d), start + d);
            prop_assert_eq!(cal.working_time_between(start, start + d), d);
        }

        #[test]
        fn a_make_up_day_works_like_its_weekday_and_a_holiday_not_at_all(
            cal in calendars(), offset in 0..WINDOW_DAYS
        ) {
            let date = day(offset);
            let worked = cal.working_time_between(
                date.and_time(NaiveTime::MIN),
                (date + TimeDelta::days(1)).and_time(NaiveTime::MIN),
            );
            let expected = match cal.day_kind(date) {
                DayKind::Emergency => hours(24),
                DayKind::Holiday | DayKind::RestDay => TimeDelta::zero(),
                DayKind::MakeUpWorkday | DayKind::Workday => minutes(WORKING_DAY),
            };
            prop_assert_eq!(worked, expected);
        }
    }
}
