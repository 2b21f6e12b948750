//! Evaluation per worker, grid and community over a period (RULES.md §1.5).
//! Computed from task summaries every time, never stored, so a corrected
//! history corrects the figures too.
//!
//! Each figure counts tasks by the event that falls in the period:
//! - handled, on time, handling time: the (last) report of handling;
//! - closing rate: the tasks filed in the period, closed by its end;
//! - rework rate: the tasks closed in the period, reopened before closing;
//! - overdue: the tasks whose handling deadline fell in the period (and has
//!   passed) without a report of handling by then.
//!
//! A rate whose denominator is zero is `None`, never 0 % or 100 %: "no tasks"
//! is not "all late" nor "all on time".

use std::collections::BTreeMap;

use chrono::{NaiveDateTime, TimeDelta};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// A half-open period `[start, end)` in local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Period {
    start: NaiveDateTime,
    end: NaiveDateTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a period must not end before it starts")]
pub struct PeriodError;

impl crate::ReasonCode for PeriodError {
    fn code(&self) -> &'static str {
        "evaluation.period_reversed"
    }
}

impl Period {
    pub fn new(start: NaiveDateTime, end: NaiveDateTime) -> Result<Self, PeriodError> {
        if start <= end { Ok(Self { start, end }) } else { Err(PeriodError) }
    }

    pub fn start(self) -> NaiveDateTime {
        self.start
    }

    pub fn end(self) -> NaiveDateTime {
        self.end
    }

    pub fn contains(self, at: NaiveDateTime) -> bool {
        self.start <= at && at < self.end
    }
}

/// What evaluation needs to know of one task, built by the service from the
/// stored history. Times are local.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSummary {
    pub task_id: Uuid,
    /// The account credited with the work: the one who last reported it
    /// handled, else the current assignee; `None` while unassigned or in the
    /// reserve pool.
    pub worker: Option<Uuid>,
    pub grid: Uuid,
    pub community: Uuid,
    pub filed_at: Option<NaiveDateTime>,
    /// The last report of handling (HandledReported).
    pub handled_at: Option<NaiveDateTime>,
    /// The deadline of the handle stage that `handled_at` ended (or that is
    /// running). `None` means no limit applied, so never late.
    pub handle_deadline: Option<NaiveDateTime>,
    /// The handle stage's duration in the limit's kind of time (working time
    /// for working limits): from its clock start to `handled_at`. In JSON,
    /// whole seconds.
    #[serde(with = "option_seconds")]
    pub handling_time: Option<TimeDelta>,
    pub closed_at: Option<NaiveDateTime>,
    /// How many times the task was reopened.
    pub reopened: u32,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    Worker,
    Grid,
    Community,
}

impl GroupBy {
    /// The group a task belongs to; `None` leaves it out (an unassigned task
    /// has no worker).
    pub fn key(self, task: &TaskSummary) -> Option<Uuid> {
        match self {
            GroupBy::Worker => task.worker,
            GroupBy::Grid => Some(task.grid),
            GroupBy::Community => Some(task.community),
        }
    }
}

/// The counts of one group over one period. Rates are methods so they are
/// derived in one place and a CSV can show both the rate and its counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Metrics {
    pub handled: u32,
    pub handled_on_time: u32,
    pub filed: u32,
    pub filed_and_closed: u32,
    pub closed: u32,
    pub closed_after_rework: u32,
    pub overdue: u32,
    /// Handled tasks that carry a handling time, and the sum of those times
    /// (in JSON, whole seconds).
    pub timed: u32,
    #[serde(with = "seconds")]
    #[schema(value_type = i64)]
    pub total_handling_time: TimeDelta,
}

fn rate(numerator: u32, denominator: u32) -> Option<f64> {
    (denominator > 0).then(|| f64::from(numerator) / f64::from(denominator))
}

impl Metrics {
    /// The figures of `tasks` over `period`. `now` decides which deadlines
    /// have passed when the period reaches into the future.
    pub fn over<'a>(
        tasks: impl IntoIterator<Item = &'a TaskSummary>,
        period: Period,
        now: NaiveDateTime,
    ) -> Self {
        let mut m = Metrics::default();
        for task in tasks {
            m.add(task, period, now);
        }
        m
    }

    fn add(&mut self, task: &TaskSummary, period: Period, now: NaiveDateTime) {
        if let Some(handled) = task.handled_at.filter(|&t| period.contains(t)) {
            self.handled += 1;
            if task.handle_deadline.is_none_or(|deadline| handled <= deadline) {
                self.handled_on_time += 1;
            }
            if let Some(time) = task.handling_time {
                self.timed += 1;
                self.total_handling_time += time;
            }
        }
        if task.filed_at.is_some_and(|t| period.contains(t)) {
            self.filed += 1;
            if task.closed_at.is_some_and(|t| t < period.end) {
                self.filed_and_closed += 1;
            }
        }
        if task.closed_at.is_some_and(|t| period.contains(t)) {
            self.closed += 1;
            if task.reopened > 0 {
                self.closed_after_rework += 1;
            }
        }
        if let Some(deadline) = task.handle_deadline.filter(|&d| period.contains(d) && d < now)
            && task.handled_at.is_none_or(|handled| handled > deadline)
        {
            self.overdue += 1;
        }
    }

    /// 按期处置率: handled on time ÷ handled.
    pub fn on_time_rate(&self) -> Option<f64> {
        rate(self.handled_on_time, self.handled)
    }

    /// 结案率: closed ÷ filed, over the tasks filed in the period.
    pub fn closing_rate(&self) -> Option<f64> {
        rate(self.filed_and_closed, self.filed)
    }

    /// 返工率: reopened ÷ closed, over the tasks closed in the period.
    pub fn rework_rate(&self) -> Option<f64> {
        rate(self.closed_after_rework, self.closed)
    }

    pub fn average_handling_time(&self) -> Option<TimeDelta> {
        if self.timed == 0 {
            return None;
        }
        Some(self.total_handling_time / i32::try_from(self.timed).ok()?)
    }
}

/// Durations as whole seconds: chrono's own form, `[secs, nanos]`, means
/// nothing to a chart or a CSV.
mod seconds {
    use chrono::TimeDelta;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &TimeDelta, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i64(value.num_seconds())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<TimeDelta, D::Error> {
        let secs = i64::deserialize(deserializer)?;
        TimeDelta::try_seconds(secs)
            .ok_or_else(|| serde::de::Error::custom("duration out of range"))
    }
}

mod option_seconds {
    use chrono::TimeDelta;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        value: &Option<TimeDelta>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(d) => serializer.serialize_some(&d.num_seconds()),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<TimeDelta>, D::Error> {
        Option::<i64>::deserialize(deserializer)?
            .map(|secs| {
                TimeDelta::try_seconds(secs)
                    .ok_or_else(|| serde::de::Error::custom("duration out of range"))
            })
            .transpose()
    }
}

/// The figures per group. Every group with at least one task in `tasks`
/// appears, with zeros if nothing of it fell in the period; workers or grids
/// without tasks are the caller's to add.
pub fn evaluate(
    tasks: &[TaskSummary],
    period: Period,
    now: NaiveDateTime,
    group_by: GroupBy,
) -> BTreeMap<Uuid, Metrics> {
    let mut groups: BTreeMap<Uuid, Metrics> = BTreeMap::new();
    for task in tasks {
        if let Some(key) = group_by.key(task) {
            groups.entry(key).or_default().add(task, period, now);
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ReasonCode;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
    }

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    /// June 2024, evaluated on 1 July.
    fn june() -> Period {
        Period::new(at("2024-06-01 00:00"), at("2024-07-01 00:00")).unwrap()
    }

    const NOW: &str = "2024-07-01 09:00";

    fn task(n: u128, worker: u128, grid: u128) -> TaskSummary {
        TaskSummary {
            task_id: id(n),
            worker: Some(id(worker)),
            grid: id(grid),
            community: id(100),
            filed_at: None,
            handled_at: None,
            handle_deadline: None,
            handling_time: None,
            closed_at: None,
            reopened: 0,
        }
    }

    /// Four tasks of worker 1 (grid 10) and two of worker 2 (grid 20).
    fn sample() -> Vec<TaskSummary> {
        vec![
            // On time, closed, 2 working hours of handling.
            TaskSummary {
                filed_at: Some(at("2024-06-03 09:00")),
                handle_deadline: Some(at("2024-06-04 09:00")),
                handled_at: Some(at("2024-06-03 15:00")),
                handling_time: Some(TimeDelta::hours(2)),
                closed_at: Some(at("2024-06-04 10:00")),
                ..task(1, 1, 10)
            },
            // Late, reopened once, closed: overdue in June.
            TaskSummary {
                filed_at: Some(at("2024-06-10 09:00")),
                handle_deadline: Some(at("2024-06-11 09:00")),
                handled_at: Some(at("2024-06-12 09:00")),
                handling_time: Some(TimeDelta::hours(6)),
                closed_at: Some(at("2024-06-13 09:00")),
                reopened: 1,
                ..task(2, 1, 10)
            },
            // Filed in June, never handled, deadline passed: overdue.
            TaskSummary {
                filed_at: Some(at("2024-06-20 09:00")),
                handle_deadline: Some(at("2024-06-21 09:00")),
                ..task(3, 1, 10)
            },
            // Filed in May, handled on time in June, closed in July.
            TaskSummary {
                filed_at: Some(at("2024-05-30 09:00")),
                handle_deadline: Some(at("2024-06-03 09:00")),
                handled_at: Some(at("2024-06-01 10:00")),
                handling_time: Some(TimeDelta::hours(1)),
                closed_at: Some(at("2024-07-01 08:30")),
                ..task(4, 1, 10)
            },
            // Worker 2: filed late June, deadline 30 June 23:00 missed.
            TaskSummary {
                filed_at: Some(at("2024-06-30 09:00")),
                handle_deadline: Some(at("2024-06-30 23:00")),
                ..task(5, 2, 20)
            },
            // Worker 2: everything happened in May.
            TaskSummary {
                filed_at: Some(at("2024-05-02 09:00")),
                handle_deadline: Some(at("2024-05-03 09:00")),
                handled_at: Some(at("2024-05-02 15:00")),
                handling_time: Some(TimeDelta::hours(3)),
                closed_at: Some(at("2024-05-03 09:00")),
                ..task(6, 2, 20)
            },
        ]
    }

    #[test]
    fn figures_per_worker_by_hand() {
        let by_worker = evaluate(&sample(), june(), at(NOW), GroupBy::Worker);
        let w1 = by_worker[&id(1)];
        // Handled in June: tasks 1, 2, 4; on time: 1 and 4.
        assert_eq!((w1.handled, w1.handled_on_time), (3, 2));
        assert_eq!(w1.on_time_rate(), Some(2.0 / 3.0));
        // Filed in June: 1, 2, 3; closed by the end of June: 1, 2.
        assert_eq!((w1.filed, w1.filed_and_closed), (3, 2));
        assert_eq!(w1.closing_rate(), Some(2.0 / 3.0));
        // Closed in June: 1, 2; reopened before: 2.
        assert_eq!((w1.closed, w1.closed_after_rework), (2, 1));
        assert_eq!(w1.rework_rate(), Some(0.5));
        // (2 h + 6 h + 1 h) / 3 = 3 h.
        assert_eq!(w1.average_handling_time(), Some(TimeDelta::hours(3)));
        // Deadlines in June missed: 2 (handled late) and 3 (never handled).
        assert_eq!(w1.overdue, 2);

        let w2 = by_worker[&id(2)];
        // Task 5: filed in June, deadline 30 June 23:00 passed unhandled.
        assert_eq!(
            (w2.handled, w2.filed, w2.filed_and_closed, w2.closed, w2.overdue),
            (0, 1, 0, 0, 1)
        );
        assert_eq!(w2.on_time_rate(), None);
        assert_eq!(w2.closing_rate(), Some(0.0));
        assert_eq!(w2.rework_rate(), None);
        assert_eq!(w2.average_handling_time(), None);
    }

    #[test]
    fn figures_per_grid_and_community_add_up() {
        let tasks = sample();
        let by_grid = evaluate(&tasks, june(), at(NOW), GroupBy::Grid);
        assert_eq!(by_grid.len(), 2);
        assert_eq!(by_grid[&id(10)].handled, 3);
        let community = evaluate(&tasks, june(), at(NOW), GroupBy::Community)[&id(100)];
        assert_eq!(community, Metrics::over(&tasks, june(), at(NOW)));
        assert_eq!(community.filed, 4);
        assert_eq!(community.overdue, 3);
        assert_eq!(community.closing_rate(), Some(0.5));
    }

    #[test]
    fn a_deadline_not_yet_passed_is_not_overdue() {
        let tasks = sample();
        // Evaluated on 30 June at 22:00, task 5's deadline (23:00) is ahead.
        let early = evaluate(&tasks, june(), at("2024-06-30 22:00"), GroupBy::Worker);
        assert_eq!(early[&id(2)].overdue, 0);
    }

    #[test]
    fn empty_input_and_empty_groups_give_none_rates() {
        assert!(evaluate(&[], june(), at(NOW), GroupBy::Grid).is_empty());
        let empty = Metrics::over(&[], june(), at(NOW));
        assert_eq!(empty, Metrics::default());
        assert_eq!(
            (empty.on_time_rate(), empty.closing_rate(), empty.rework_rate()),
            (None, None, None)
        );
        assert_eq!(empty.average_handling_time(), None);
        // A May-only worker still appears in June, with zeros.
        let may_only = [sample()[5].clone()];
        let june_figures = evaluate(&may_only, june(), at(NOW), GroupBy::Worker);
        assert_eq!(june_figures[&id(2)], Metrics::default());
    }

    #[test]
    fn unassigned_tasks_count_for_grids_but_not_for_workers() {
        let unassigned =
            TaskSummary { worker: None, filed_at: Some(at("2024-06-05 09:00")), ..task(9, 0, 10) };
        assert!(
            evaluate(std::slice::from_ref(&unassigned), june(), at(NOW), GroupBy::Worker)
                .is_empty()
        );
        assert_eq!(evaluate(&[unassigned], june(), at(NOW), GroupBy::Grid)[&id(10)].filed, 1);
    }

    #[test]
    fn handling_exactly_at_the_deadline_is_on_time() {
        let t = TaskSummary {
            handle_deadline: Some(at("2024-06-04 09:00")),
            handled_at: Some(at("2024-06-04 09:00")),
            ..task(1, 1, 10)
        };
        let m = Metrics::over([&t], june(), at(NOW));
        assert_eq!((m.handled_on_time, m.overdue), (1, 0));
    }

    #[test]
    fn durations_serialise_as_seconds() {
        let t = sample().remove(0);
        let json = serde_json::to_value(&t).unwrap();
        assert_eq!(json["handling_time"], 7200);
        assert_eq!(serde_json::from_value::<TaskSummary>(json).unwrap(), t);
        let unhandled = serde_json::to_value(&sample()[2]).unwrap();
        assert!(unhandled["handling_time"].is_null());
        let m = Metrics::over(&sample(), june(), at(NOW));
        let json = serde_json::to_value(m).unwrap();
        assert_eq!(json["total_handling_time"], 9 * 3600);
        assert_eq!(serde_json::from_value::<Metrics>(json).unwrap(), m);
    }

    #[test]
    fn periods_are_half_open_and_ordered() {
        let p = june();
        assert!(p.contains(at("2024-06-01 00:00")));
        assert!(!p.contains(at("2024-07-01 00:00")));
        let err = Period::new(p.end(), p.start()).unwrap_err();
        assert_eq!(err.code(), "evaluation.period_reversed");
        assert!(Period::new(p.start(), p.start()).is_ok());
    }
}
