//! Escalation of overdue tasks: first to the grid leader, then to the
//! community admin. The answer depends only on stored times (the stage's
//! deadline), the current time and the stored level, and the level only ever
//! rises, so the background pass can run any number of times, and after any
//! restart, without escalating anything twice.

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

use super::calendar::WorkCalendar;
use super::catalogue::TimeLimit;
use crate::Role;

/// How far a task's current stage has been escalated. Stored as 0, 1, 2 and
/// reset to 0 whenever a new stage clock starts (see
/// `EventState::starts_stage_clock`): an escalation is about one deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EscalationLevel {
    None = 0,
    GridLeader = 1,
    CommunityAdmin = 2,
}

impl EscalationLevel {
    pub const ALL: [EscalationLevel; 3] =
        [EscalationLevel::None, EscalationLevel::GridLeader, EscalationLevel::CommunityAdmin];

    pub fn as_u8(self) -> u8 {
        self as u8
    }

    pub fn from_u8(value: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.as_u8() == value)
    }

    /// Whom this level notifies and adds to the task's watchers.
    pub fn notifies(self) -> Option<Role> {
        match self {
            EscalationLevel::None => None,
            EscalationLevel::GridLeader => Some(Role::GridLeader),
            EscalationLevel::CommunityAdmin => Some(Role::CommunityAdmin),
        }
    }
}

/// When the second level (community admin) follows the first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecondLevelDelay {
    /// The stage's own limit again after the deadline: a task as late again
    /// as it was allowed to take.
    SameLimitAgain,
    /// A fixed limit after the deadline, whatever the stage's limit.
    After(TimeLimit),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationPolicy {
    pub community_admin_after: SecondLevelDelay,
}

impl Default for EscalationPolicy {
    fn default() -> Self {
        Self { community_admin_after: SecondLevelDelay::SameLimitAgain }
    }
}

/// The instants after which each level is due. Strictly after: a task done
/// exactly at its deadline is on time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EscalationDeadlines {
    pub grid_leader: NaiveDateTime,
    pub community_admin: NaiveDateTime,
}

impl EscalationPolicy {
    /// The escalation deadlines of a stage whose own deadline is
    /// `stage_deadline` under `stage_limit`. The second delay is counted in
    /// its limit's kind of time, from the stage deadline.
    pub fn deadlines(
        &self,
        stage_deadline: NaiveDateTime,
        stage_limit: TimeLimit,
        calendar: &WorkCalendar,
    ) -> EscalationDeadlines {
        let second = match self.community_admin_after {
            SecondLevelDelay::SameLimitAgain => stage_limit,
            SecondLevelDelay::After(limit) => limit,
        };
        EscalationDeadlines {
            grid_leader: stage_deadline,
            community_admin: second.deadline_from(stage_deadline, calendar),
        }
    }
}

impl EscalationDeadlines {
    /// The highest level due at `now`.
    pub fn level_at(&self, now: NaiveDateTime) -> EscalationLevel {
        if now > self.community_admin {
            EscalationLevel::CommunityAdmin
        } else if now > self.grid_leader {
            EscalationLevel::GridLeader
        } else {
            EscalationLevel::None
        }
    }

    /// The escalations to record now, lowest first: every level above
    /// `current` that is due. After a long outage both levels can be due at
    /// once; each is still recorded (and counted) once. Once the caller stores
    /// the last one as the new level, asking again gives nothing.
    pub fn due(&self, now: NaiveDateTime, current: EscalationLevel) -> Vec<EscalationLevel> {
        let reached = self.level_at(now);
        EscalationLevel::ALL.into_iter().filter(|&l| l > current && l <= reached).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
    }

    /// A handle limit of 4 working hours, reached Monday 2024-06-17 11:00.
    fn monday_deadlines() -> EscalationDeadlines {
        let cal = WorkCalendar::office_hours();
        let limit = TimeLimit::WorkingMinutes(240);
        let deadline = limit.deadline_from(at("2024-06-14 16:00"), &cal);
        EscalationPolicy::default().deadlines(deadline, limit, &cal)
    }

    #[test]
    fn the_second_level_comes_the_same_limit_again_later() {
        let d = monday_deadlines();
        assert_eq!(d.grid_leader, at("2024-06-17 11:00"));
        // 11:00–12:00 and 13:30–16:30 are the next four working hours.
        assert_eq!(d.community_admin, at("2024-06-17 16:30"));
        let fixed = EscalationPolicy {
            community_admin_after: SecondLevelDelay::After(TimeLimit::ElapsedMinutes(30)),
        };
        let cal = WorkCalendar::office_hours();
        let d2 = fixed.deadlines(d.grid_leader, TimeLimit::WorkingMinutes(240), &cal);
        assert_eq!(d2.community_admin, at("2024-06-17 11:30"));
    }

    #[test]
    fn escalation_happens_once_per_level() {
        let d = monday_deadlines();
        let mut level = EscalationLevel::None;
        let mut recorded = Vec::new();
        // The background pass every 10 minutes from Monday 10:00 to 18:00,
        // storing what it records, as the service would.
        let mut now = at("2024-06-17 10:00");
        while now <= at("2024-06-17 18:00") {
            for due in d.due(now, level) {
                recorded.push((now, due));
                level = due;
            }
            now += chrono::TimeDelta::minutes(10);
        }
        assert_eq!(
            recorded,
            [
                (at("2024-06-17 11:10"), EscalationLevel::GridLeader),
                (at("2024-06-17 16:40"), EscalationLevel::CommunityAdmin),
            ]
        );
    }

    #[test]
    fn computing_twice_gives_nothing_new() {
        let d = monday_deadlines();
        let now = at("2024-06-17 11:01");
        let first = d.due(now, EscalationLevel::None);
        assert_eq!(first, [EscalationLevel::GridLeader]);
        assert_eq!(d.due(now, *first.last().unwrap()), []);
        // Exactly at the deadline nothing is due yet.
        assert_eq!(d.due(at("2024-06-17 11:00"), EscalationLevel::None), []);
    }

    #[test]
    fn after_an_outage_both_levels_are_due_at_once() {
        let d = monday_deadlines();
        let late = at("2024-06-18 09:00");
        assert_eq!(
            d.due(late, EscalationLevel::None),
            [EscalationLevel::GridLeader, EscalationLevel::CommunityAdmin]
        );
        assert_eq!(d.due(late, EscalationLevel::GridLeader), [EscalationLevel::CommunityAdmin]);
        assert_eq!(d.due(late, EscalationLevel::CommunityAdmin), []);
    }

    #[test]
    fn levels_round_trip_and_name_their_role() {
        for l in EscalationLevel::ALL {
            assert_eq!(EscalationLevel::from_u8(l.as_u8()), Some(l));
        }
        assert_eq!(EscalationLevel::from_u8(3), None);
        assert_eq!(EscalationLevel::GridLeader.notifies(), Some(Role::GridLeader));
        assert_eq!(EscalationLevel::None.notifies(), None);
        let json = serde_json::to_value(EscalationPolicy {
            community_admin_after: SecondLevelDelay::After(TimeLimit::WorkingMinutes(60)),
        })
        .unwrap();
        assert_eq!(
            json,
            serde_json::json!({"community_admin_after": {"after": {"working_minutes": 60}}})
        );
    }

    proptest! {
        #[test]
        fn levels_only_rise_and_a_second_pass_is_empty(
            start_min in 0i64..20_000, limit in 1u32..3_000, elapsed in any::<bool>(),
            checks in prop::collection::vec(0i64..40_000, 1..20),
        ) {
            let cal = WorkCalendar::office_hours();
            let start = at("2024-06-10 00:00") + chrono::TimeDelta::minutes(start_min);
            let limit = if elapsed {
                TimeLimit::ElapsedMinutes(limit)
            } else {
                TimeLimit::WorkingMinutes(limit)
            };
            let deadline = limit.deadline_from(start, &cal);
            let d = EscalationPolicy::default().deadlines(deadline, limit, &cal);
            let mut sorted = checks;
            sorted.sort();
            let mut level = EscalationLevel::None;
            let mut total = 0;
            for offset in sorted {
                let now = start + chrono::TimeDelta::minutes(offset);
                let due = d.due(now, level);
                prop_assert!(due.iter().all(|&l| l > level));
                total += due.len();
                if let Some(&last) = due.last() {
                    level = last;
                }
                prop_assert_eq!(level, d.level_at(now));
                prop_assert!(d.due(now, level).is_empty());
            }
            prop_assert!(total <= 2);
        }
    }
}
