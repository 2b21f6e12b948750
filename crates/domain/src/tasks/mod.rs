//! The closed loop of grid work (RULES.md §1.2): events and the tasks they
//! become, the categories and their time limits, the working-time calendar the
//! limits are counted against, fair dispatch, escalation and evaluation.
//!
//! Everything here is a pure function of its inputs, so the service can store
//! times, recompute deadlines and escalations after a restart, and get the same
//! answer every time: nothing depends on a timer in memory.

pub mod calendar;
pub mod catalogue;
pub mod dispatch;
pub mod escalation;
pub mod evaluation;
pub mod event;
pub mod state;

pub use calendar::{
    CalendarConfig, CalendarError, DEFAULT_CALENDAR_JSON, DayKind, WeeklyHours, WorkCalendar,
    WorkPeriod,
};
pub use catalogue::{
    Catalogue, CatalogueDocument, CatalogueError, CatalogueHistory, Category, CategoryDocument,
    DEFAULT_CATALOGUE_JSON, StageLimit, StageLimitOverrides, StageLimits, TimeLimit,
};
pub use dispatch::{
    Candidate, DispatchDecision, DispatchPolicy, DispatchPolicyError, PriorityWeights,
    choose_assignee,
};
pub use escalation::{EscalationDeadlines, EscalationLevel, EscalationPolicy, SecondLevelDelay};
pub use evaluation::{GroupBy, Metrics, Period, PeriodError, TaskSummary, evaluate};
pub use event::{
    HOUSEHOLD_ACTOR_PREFIX, Priority, Source, Subject, household_actor_name,
    is_household_actor_name,
};
pub use state::{
    Assignee, EvaluationScore, EventState, IllegalTransition, Party, Reason, ReasonError,
    ScoreError, Stage, Transition, TransitionForbidden, TransitionKind,
};
