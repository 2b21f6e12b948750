//! The event/task state machine of RULES.md §1.2 and who may move it.
//!
//! `EventState::apply` answers "does this step exist from here?" and
//! `Party::may_perform` answers "may this caller take it?". They are kept apart
//! so the service can tell a 409 (the task is not in a state for that) from a
//! 403 (not yours to do), and so each table is tested on its own.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::Role;

/// Where a task stands in the closed loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventState {
    /// 信息收集: received, not yet checked.
    Reported,
    /// 核实: confirmed as real and in scope.
    Verified,
    /// Not real, a duplicate, or not ours. Final.
    Rejected,
    /// 立案: a case with a category and priority.
    Filed,
    /// 派遣: has an assignee (a worker or the community's reserve pool).
    Dispatched,
    /// The assignee has accepted and is working on it.
    InProgress,
    /// 处理反馈: the assignee says it is done; awaiting a check.
    HandledReported,
    /// 核查结案: checked and closed; awaiting evaluation.
    Closed,
    /// The check failed; waits to be dispatched again.
    Reopened,
    /// 综合评价: scored. Final.
    Evaluated,
}

/// The stage whose time limit runs while a task waits in a state. A stage's
/// clock starts when the task enters the stage from another one; moves inside
/// a stage (File, Reassign) do not restart it, so reassigning an overdue task
/// cannot hide that it is overdue.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Reported → Verified or Rejected (field verification, 核实).
    Verify,
    /// Verified, Filed or Reopened → Dispatched (立案派遣).
    Dispatch,
    /// Dispatched or InProgress → HandledReported (处置).
    Handle,
    /// HandledReported → Closed or Reopened (核查结案).
    Close,
}

impl Stage {
    pub const ALL: [Stage; 4] = [Stage::Verify, Stage::Dispatch, Stage::Handle, Stage::Close];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Verify => "verify",
            Stage::Dispatch => "dispatch",
            Stage::Handle => "handle",
            Stage::Close => "close",
        }
    }

    pub fn parse(input: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == input)
    }
}

/// The steps without their data: what the transition table, the permission
/// table and stored history rows are keyed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TransitionKind {
    Verify,
    Reject,
    File,
    Dispatch,
    Accept,
    ReportHandled,
    Close,
    Reopen,
    Evaluate,
    Reassign,
}

/// A step with the data it needs. Who took it, when, the note and photos are
/// part of the stored history row, not of the step itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Transition {
    Verify,
    /// A rejected report must say why, so the reporter can be told.
    Reject {
        reason: Reason,
    },
    File,
    Dispatch {
        assignee: Assignee,
    },
    /// The assignee takes the task (接单).
    Accept,
    ReportHandled,
    Close,
    /// A failed check must say what is still wrong.
    Reopen {
        reason: Reason,
    },
    Evaluate {
        score: EvaluationScore,
    },
    /// Manual reassignment, always with a reason (it is audited and counted).
    Reassign {
        to: Assignee,
        reason: Reason,
    },
}

/// Who a task is dispatched to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Assignee {
    /// An account, usually a grid worker of the task's grid.
    Worker { account_id: Uuid },
    /// The reserve pool (机动力量) of a community, used when every worker of
    /// the grid is overloaded; a supervisor then reassigns from the pool.
    ReservePool { community_id: Uuid },
}

/// The party asking to take a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Party {
    /// A rule of the system or a background job.
    System,
    /// A resident without an account (public report form, hotline).
    Resident,
    /// An account. `is_assignee` is computed by the service from the task's
    /// current assignee (for a reserve pool: whether the account belongs to it).
    Staff { role: Role, is_assignee: bool },
}

/// The refusal of a step that does not exist from the current state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a task that is {} cannot take the step {}", from.as_str(), transition.as_str())]
pub struct IllegalTransition {
    pub from: EventState,
    pub transition: TransitionKind,
}

impl crate::ReasonCode for IllegalTransition {
    fn code(&self) -> &'static str {
        "task.illegal_transition"
    }
}

/// The refusal of a step the caller may not take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("this caller may not take the step {}", transition.as_str())]
pub struct TransitionForbidden {
    pub transition: TransitionKind,
}

impl crate::ReasonCode for TransitionForbidden {
    fn code(&self) -> &'static str {
        "task.transition_forbidden"
    }
}

impl EventState {
    pub const ALL: [EventState; 10] = [
        EventState::Reported,
        EventState::Verified,
        EventState::Rejected,
        EventState::Filed,
        EventState::Dispatched,
        EventState::InProgress,
        EventState::HandledReported,
        EventState::Closed,
        EventState::Reopened,
        EventState::Evaluated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventState::Reported => "reported",
            EventState::Verified => "verified",
            EventState::Rejected => "rejected",
            EventState::Filed => "filed",
            EventState::Dispatched => "dispatched",
            EventState::InProgress => "in_progress",
            EventState::HandledReported => "handled_reported",
            EventState::Closed => "closed",
            EventState::Reopened => "reopened",
            EventState::Evaluated => "evaluated",
        }
    }

    pub fn parse(input: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == input)
    }

    /// The single transition table. `None` means the step does not exist here.
    pub fn next(self, transition: TransitionKind) -> Option<EventState> {
        use EventState as S;
        use TransitionKind as T;
        match (self, transition) {
            (S::Reported, T::Verify) => Some(S::Verified),
            (S::Reported, T::Reject) => Some(S::Rejected),
            (S::Verified, T::File) => Some(S::Filed),
            (S::Filed | S::Reopened, T::Dispatch) => Some(S::Dispatched),
            (S::Dispatched, T::Accept) => Some(S::InProgress),
            // A new assignee must accept again, so reassigning always lands in
            // Dispatched, also from InProgress.
            (S::Dispatched | S::InProgress, T::Reassign) => Some(S::Dispatched),
            (S::InProgress, T::ReportHandled) => Some(S::HandledReported),
            (S::HandledReported, T::Close) => Some(S::Closed),
            (S::HandledReported, T::Reopen) => Some(S::Reopened),
            (S::Closed, T::Evaluate) => Some(S::Evaluated),
            _ => None,
        }
    }

    pub fn apply(self, transition: &Transition) -> Result<EventState, IllegalTransition> {
        let kind = transition.kind();
        self.next(kind).ok_or(IllegalTransition { from: self, transition: kind })
    }

    /// The steps that exist from here, for showing only the buttons that work.
    pub fn possible_transitions(self) -> Vec<TransitionKind> {
        TransitionKind::ALL.into_iter().filter(|&t| self.next(t).is_some()).collect()
    }

    /// Rejected and Evaluated: nothing can happen any more.
    pub fn is_final(self) -> bool {
        self.possible_transitions().is_empty()
    }

    /// Still needs someone's work: not rejected, closed or evaluated.
    pub fn is_open(self) -> bool {
        !matches!(self, EventState::Rejected | EventState::Closed | EventState::Evaluated)
    }

    /// Counts in the assignee's open workload for fair dispatch. Once handling
    /// is reported the remaining work (the check) is the supervisor's.
    pub fn counts_toward_workload(self) -> bool {
        matches!(self, EventState::Dispatched | EventState::InProgress)
    }

    /// The stage whose time limit runs in this state; `None` once closed.
    pub fn stage(self) -> Option<Stage> {
        match self {
            EventState::Reported => Some(Stage::Verify),
            EventState::Verified | EventState::Filed | EventState::Reopened => {
                Some(Stage::Dispatch)
            }
            EventState::Dispatched | EventState::InProgress => Some(Stage::Handle),
            EventState::HandledReported => Some(Stage::Close),
            EventState::Rejected | EventState::Closed | EventState::Evaluated => None,
        }
    }

    /// Whether moving from `self` to `to` starts a new stage clock (and so
    /// resets the escalation level, which belongs to one stage clock).
    pub fn starts_stage_clock(self, to: EventState) -> bool {
        to.stage().is_some() && self.stage() != to.stage()
    }
}

impl TransitionKind {
    pub const ALL: [TransitionKind; 10] = [
        TransitionKind::Verify,
        TransitionKind::Reject,
        TransitionKind::File,
        TransitionKind::Dispatch,
        TransitionKind::Accept,
        TransitionKind::ReportHandled,
        TransitionKind::Close,
        TransitionKind::Reopen,
        TransitionKind::Evaluate,
        TransitionKind::Reassign,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TransitionKind::Verify => "verify",
            TransitionKind::Reject => "reject",
            TransitionKind::File => "file",
            TransitionKind::Dispatch => "dispatch",
            TransitionKind::Accept => "accept",
            TransitionKind::ReportHandled => "report_handled",
            TransitionKind::Close => "close",
            TransitionKind::Reopen => "reopen",
            TransitionKind::Evaluate => "evaluate",
            TransitionKind::Reassign => "reassign",
        }
    }

    pub fn parse(input: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == input)
    }
}

impl Transition {
    pub fn kind(&self) -> TransitionKind {
        match self {
            Transition::Verify => TransitionKind::Verify,
            Transition::Reject { .. } => TransitionKind::Reject,
            Transition::File => TransitionKind::File,
            Transition::Dispatch { .. } => TransitionKind::Dispatch,
            Transition::Accept => TransitionKind::Accept,
            Transition::ReportHandled => TransitionKind::ReportHandled,
            Transition::Close => TransitionKind::Close,
            Transition::Reopen { .. } => TransitionKind::Reopen,
            Transition::Evaluate { .. } => TransitionKind::Evaluate,
            Transition::Reassign { .. } => TransitionKind::Reassign,
        }
    }

    /// The assignee after this step, when the step names one.
    pub fn new_assignee(&self) -> Option<Assignee> {
        match self {
            Transition::Dispatch { assignee } => Some(*assignee),
            Transition::Reassign { to, .. } => Some(*to),
            _ => None,
        }
    }
}

/// Grid leaders and admins check and steer the work of others.
fn is_supervisor(role: Role) -> bool {
    matches!(role, Role::GridLeader | Role::CommunityAdmin | Role::SubDistrictAdmin)
}

impl Party {
    /// Anyone may raise an event: "nothing is forgotten" beats tidy inboxes,
    /// and a bad report costs one Reject. What the event may concern is a
    /// scope question for the service.
    pub fn may_report(self) -> bool {
        true
    }

    /// The permission table. Scope (is the task under the caller's node?) is
    /// checked separately by the service, like every other access.
    pub fn may_perform(self, transition: TransitionKind) -> bool {
        use TransitionKind as T;
        match self {
            Party::Resident => false,
            // Events raised by rules or orders from above are verified, filed
            // and dispatched automatically. Rejecting, checking and scoring
            // stay human decisions.
            Party::System => matches!(transition, T::Verify | T::File | T::Dispatch),
            Party::Staff { role, is_assignee } => match transition {
                T::Verify | T::Reject | T::File | T::Dispatch | T::Reassign => is_supervisor(role),
                // Only the person holding the task reports on it.
                T::Accept | T::ReportHandled => is_assignee,
                // Nobody checks their own work: a grid leader who handled a
                // task leaves its check to another supervisor.
                T::Close | T::Reopen => is_supervisor(role) && !is_assignee,
                T::Evaluate => {
                    matches!(role, Role::CommunityAdmin | Role::SubDistrictAdmin) && !is_assignee
                }
            },
        }
    }

    pub fn authorize(self, transition: TransitionKind) -> Result<(), TransitionForbidden> {
        if self.may_perform(transition) { Ok(()) } else { Err(TransitionForbidden { transition }) }
    }
}

/// Why a task was rejected, reopened or reassigned: trimmed, 1–500 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(try_from = "String", into = "String")]
pub struct Reason(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReasonError {
    #[error("a reason is required")]
    Empty,
    #[error("the reason is longer than 500 characters")]
    TooLong,
}

impl crate::ReasonCode for ReasonError {
    fn code(&self) -> &'static str {
        match self {
            ReasonError::Empty => "task.reason_empty",
            ReasonError::TooLong => "task.reason_too_long",
        }
    }
}

impl Reason {
    pub const MAX_CHARS: usize = 500;

    pub fn parse(input: &str) -> Result<Self, ReasonError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(ReasonError::Empty);
        }
        if trimmed.chars().count() > Self::MAX_CHARS {
            return Err(ReasonError::TooLong);
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Reason {
    type Error = ReasonError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Reason> for String {
    fn from(value: Reason) -> String {
        value.0
    }
}

/// The evaluation score (综合评价), 1 = very unsatisfied … 5 = very satisfied,
/// the five-point scale of the usual resident-satisfaction call-back.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(try_from = "u8", into = "u8")]
pub struct EvaluationScore(u8);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the score must be between 1 and 5")]
pub struct ScoreError;

impl crate::ReasonCode for ScoreError {
    fn code(&self) -> &'static str {
        "task.score_out_of_range"
    }
}

impl EvaluationScore {
    pub const MIN: u8 = 1;
    pub const MAX: u8 = 5;

    pub fn new(value: u8) -> Result<Self, ScoreError> {
        if (Self::MIN..=Self::MAX).contains(&value) { Ok(Self(value)) } else { Err(ScoreError) }
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

impl TryFrom<u8> for EvaluationScore {
    type Error = ScoreError;
    fn try_from(value: u8) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<EvaluationScore> for u8 {
    fn from(value: EvaluationScore) -> u8 {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ReasonCode;
    use EventState as S;
    use TransitionKind as T;

    /// One transition of each kind, with valid data.
    fn sample(kind: TransitionKind) -> Transition {
        let worker = Assignee::Worker { account_id: Uuid::from_u128(7) };
        let reason = Reason::parse("the resident moved away").unwrap();
        match kind {
            T::Verify => Transition::Verify,
            T::Reject => Transition::Reject { reason },
            T::File => Transition::File,
            T::Dispatch => Transition::Dispatch { assignee: worker },
            T::Accept => Transition::Accept,
            T::ReportHandled => Transition::ReportHandled,
            T::Close => Transition::Close,
            T::Reopen => Transition::Reopen { reason },
            T::Evaluate => Transition::Evaluate { score: EvaluationScore::new(4).unwrap() },
            T::Reassign => Transition::Reassign { to: worker, reason },
        }
    }

    /// Checks the whole row of `from`: each listed step leads to its target,
    /// every other kind is refused with the stable code and both names.
    fn check_row(from: EventState, legal: &[(TransitionKind, EventState)]) {
        for kind in TransitionKind::ALL {
            let result = from.apply(&sample(kind));
            match legal.iter().find(|(k, _)| *k == kind) {
                Some(&(_, to)) => assert_eq!(result, Ok(to), "{from:?} --{kind:?}-->"),
                None => {
                    let err = result.expect_err(&format!("{from:?} --{kind:?}--> must be refused"));
                    assert_eq!(err, IllegalTransition { from, transition: kind });
                    assert_eq!(err.code(), "task.illegal_transition");
                    assert!(err.to_string().contains(from.as_str()));
                    assert!(err.to_string().contains(kind.as_str()));
                }
            }
        }
    }

    macro_rules! row {
        ($test:ident: $from:ident => [$($kind:ident -> $to:ident),* $(,)?]) => {
            #[test]
            fn $test() {
                check_row(S::$from, &[$((T::$kind, S::$to)),*]);
            }
        };
    }

    // The expected table, written out independently of `EventState::next`.
    // 10 states × 10 kinds = 100 pairs, 12 of them legal.
    row!(reported_is_verified_or_rejected: Reported => [Verify -> Verified, Reject -> Rejected]);
    row!(verified_is_filed: Verified => [File -> Filed]);
    row!(rejected_is_final: Rejected => []);
    row!(filed_is_dispatched: Filed => [Dispatch -> Dispatched]);
    row!(dispatched_is_accepted_or_reassigned: Dispatched => [
        Accept -> InProgress,
        Reassign -> Dispatched,
    ]);
    row!(in_progress_is_handled_or_reassigned: InProgress => [
        ReportHandled -> HandledReported,
        Reassign -> Dispatched,
    ]);
    row!(handled_is_closed_or_reopened: HandledReported => [
        Close -> Closed,
        Reopen -> Reopened,
    ]);
    row!(closed_is_evaluated: Closed => [Evaluate -> Evaluated]);
    row!(reopened_is_dispatched_again: Reopened => [Dispatch -> Dispatched]);
    row!(evaluated_is_final: Evaluated => []);

    #[test]
    fn the_table_has_exactly_twelve_legal_pairs() {
        let legal = S::ALL.iter().map(|s| s.possible_transitions().len()).sum::<usize>();
        assert_eq!(legal, 12);
        let finals: Vec<_> = S::ALL.into_iter().filter(|s| s.is_final()).collect();
        assert_eq!(finals, [S::Rejected, S::Evaluated]);
    }

    #[test]
    fn the_full_loop_with_one_rework_round() {
        let steps = [
            T::Verify,
            T::File,
            T::Dispatch,
            T::Accept,
            T::ReportHandled,
            T::Reopen,
            T::Dispatch,
            T::Reassign,
            T::Accept,
            T::ReportHandled,
            T::Close,
            T::Evaluate,
        ];
        let end = steps.into_iter().try_fold(S::Reported, |s, k| s.apply(&sample(k))).unwrap();
        assert_eq!(end, S::Evaluated);
    }

    #[test]
    fn names_round_trip() {
        for s in S::ALL {
            assert_eq!(S::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for t in T::ALL {
            assert_eq!(T::parse(t.as_str()), Some(t));
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
        for stage in Stage::ALL {
            assert_eq!(Stage::parse(stage.as_str()), Some(stage));
        }
        assert_eq!(S::parse("closed "), None);
    }

    #[test]
    fn stages_and_their_clocks() {
        assert_eq!(S::Reported.stage(), Some(Stage::Verify));
        assert_eq!(S::Filed.stage(), Some(Stage::Dispatch));
        assert_eq!(S::InProgress.stage(), Some(Stage::Handle));
        assert_eq!(S::HandledReported.stage(), Some(Stage::Close));
        assert_eq!(S::Closed.stage(), None);
        // Filing and reassigning stay in their stage: the clock keeps running.
        assert!(!S::Verified.starts_stage_clock(S::Filed));
        assert!(!S::InProgress.starts_stage_clock(S::Dispatched));
        assert!(!S::Dispatched.starts_stage_clock(S::InProgress));
        assert!(S::Reported.starts_stage_clock(S::Verified));
        assert!(S::Filed.starts_stage_clock(S::Dispatched));
        assert!(S::HandledReported.starts_stage_clock(S::Reopened));
        assert!(S::Reopened.starts_stage_clock(S::Dispatched));
        assert!(!S::HandledReported.starts_stage_clock(S::Closed));
        // Every state with a way forward except Closed has a running clock.
        for s in S::ALL {
            assert_eq!(s.stage().is_some(), !s.is_final() && s != S::Closed, "{s:?}");
        }
    }

    #[test]
    fn workload_and_openness() {
        let workload: Vec<_> = S::ALL.into_iter().filter(|s| s.counts_toward_workload()).collect();
        assert_eq!(workload, [S::Dispatched, S::InProgress]);
        let closed: Vec<_> = S::ALL.into_iter().filter(|s| !s.is_open()).collect();
        assert_eq!(closed, [S::Rejected, S::Closed, S::Evaluated]);
    }

    #[test]
    fn transitions_serialise_with_their_data() {
        let t = Transition::Reassign {
            to: Assignee::ReservePool { community_id: Uuid::from_u128(1) },
            reason: Reason::parse("  on sick leave ").unwrap(),
        };
        let json = serde_json::to_value(&t).unwrap();
        assert_eq!(json["kind"], "reassign");
        assert_eq!(json["to"]["kind"], "reserve_pool");
        assert_eq!(json["reason"], "on sick leave");
        assert_eq!(serde_json::from_value::<Transition>(json).unwrap(), t);
        let blank = serde_json::json!({"kind": "reopen", "reason": "   "});
        assert!(serde_json::from_value::<Transition>(blank).is_err());
        let score = serde_json::json!({"kind": "evaluate", "score": 6});
        assert!(serde_json::from_value::<Transition>(score).is_err());
        assert_eq!(
            t.new_assignee(),
            Some(Assignee::ReservePool { community_id: Uuid::from_u128(1) })
        );
        assert_eq!(Transition::Close.new_assignee(), None);
    }

    #[test]
    fn reasons_and_scores_are_validated() {
        assert_eq!(Reason::parse(" \n ").unwrap_err().code(), "task.reason_empty");
        assert!(Reason::parse(&"因".repeat(500)).is_ok());
        assert_eq!(Reason::parse(&"因".repeat(501)).unwrap_err().code(), "task.reason_too_long");
        assert_eq!(EvaluationScore::new(0).unwrap_err().code(), "task.score_out_of_range");
        assert_eq!(EvaluationScore::new(6), Err(ScoreError));
        assert_eq!(EvaluationScore::new(5).unwrap().get(), 5);
    }

    // ---- permissions: every party × every kind --------------------------

    /// Every party the service can present: the system, a resident, and each
    /// role both as the task's assignee and as someone else.
    fn all_parties() -> Vec<Party> {
        let mut parties = vec![Party::System, Party::Resident];
        for role in Role::ALL {
            for is_assignee in [false, true] {
                parties.push(Party::Staff { role, is_assignee });
            }
        }
        parties
    }

    /// Checks one column of the permission table against `expected`.
    fn check_column(kind: TransitionKind, expected: impl Fn(Party) -> bool) {
        for party in all_parties() {
            let allowed = expected(party);
            assert_eq!(party.may_perform(kind), allowed, "{party:?} {kind:?}");
            match party.authorize(kind) {
                Ok(()) => assert!(allowed),
                Err(e) => {
                    assert!(!allowed);
                    assert_eq!(e.code(), "task.transition_forbidden");
                }
            }
        }
    }

    fn staff(party: Party, roles: &[Role]) -> bool {
        matches!(party, Party::Staff { role, .. } if roles.contains(&role))
    }

    const SUPERVISORS: [Role; 3] = [Role::GridLeader, Role::CommunityAdmin, Role::SubDistrictAdmin];

    #[test]
    fn supervisors_or_the_system_verify_file_and_dispatch() {
        for kind in [T::Verify, T::File, T::Dispatch] {
            check_column(kind, |p| p == Party::System || staff(p, &SUPERVISORS));
        }
    }

    #[test]
    fn only_supervisors_reject_and_reassign() {
        for kind in [T::Reject, T::Reassign] {
            check_column(kind, |p| staff(p, &SUPERVISORS));
        }
    }

    #[test]
    fn only_the_assignee_accepts_and_reports_handled() {
        for kind in [T::Accept, T::ReportHandled] {
            check_column(kind, |p| matches!(p, Party::Staff { is_assignee: true, .. }));
        }
    }

    #[test]
    fn supervisors_check_work_that_is_not_their_own() {
        for kind in [T::Close, T::Reopen] {
            check_column(kind, |p| {
                staff(p, &SUPERVISORS) && matches!(p, Party::Staff { is_assignee: false, .. })
            });
        }
    }

    #[test]
    fn admins_evaluate() {
        check_column(T::Evaluate, |p| {
            staff(p, &[Role::CommunityAdmin, Role::SubDistrictAdmin])
                && matches!(p, Party::Staff { is_assignee: false, .. })
        });
    }

    #[test]
    fn everyone_may_report_and_residents_do_nothing_else() {
        assert!(all_parties().into_iter().all(Party::may_report));
        assert!(T::ALL.into_iter().all(|k| !Party::Resident.may_perform(k)));
        let worker = Party::Staff { role: Role::GridWorker, is_assignee: false };
        assert!(T::ALL.into_iter().all(|k| !worker.may_perform(k)));
    }
}
