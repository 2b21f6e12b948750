//! The intake path (DESIGN.md "Intake under load"): every self-service and
//! door-to-door submission goes into one bounded queue; one writer (a task
//! on a thread and runtime of its own, see `start_writer`)
//! takes whatever has arrived (waiting at most `batch_window` for more, up to
//! `batch_max`) and commits it as ONE transaction; each caller is answered
//! only after that commit, so an acknowledged report is durable
//! (`synchronous=FULL` on SQLite, a committed transaction on PostgreSQL).
//!
//! - A full queue is refused at once (`ServiceError::Unavailable`, which the
//!   web layer answers with 503 and `Retry-After`): memory stays bounded and
//!   the server never slows to a crawl.
//! - Idempotency keys are unique in the store (scoped to the household), so
//!   a retry, a double tap, a duplicate in the same batch or a retry after a
//!   restart all get the original reference and store nothing.
//! - Tasks the rules call for (fever, help, arrival) are created after the
//!   commit, off the writer's path, with keys derived from the report id; a
//!   report keeps `tasks_pending` until they exist, and a catch-up pass (at
//!   start and every minute) creates whatever a crash left out.
//! - Audit: ONE chained entry about once a second (`audit_interval`)
//!   summing everything the writer committed meanwhile, counts only (no
//!   personal data); each batch keeps the running summary in its own
//!   transaction, so a crash loses none of it (`intake_audit`). One entry
//!   per submission would take the audit chain's lock and hash once per
//!   report; one per batch wrote more pages than the reports did. The
//!   reports themselves are append-only records of who (household or
//!   account), what and when.

use std::sync::OnceLock;
use std::time::Duration as StdDuration;

use chrono::{DateTime, NaiveDate, SubsecRound, TimeZone, Utc};
use epigrid_domain::intake::{
    Arrival, FieldError, HealthEntry, HelpRequest, IntakeRules, Submission, VolunteerOffer,
    WorkSubject, check_idempotency_key, reference,
};
use epigrid_domain::mask::mask_name;
use epigrid_domain::tasks::{EventState, Source, Subject};
use epigrid_domain::{Action, AreaKind, AreaPath, Role, Scope};
use epigrid_store::{
    IntakeOutcome, IntakeWrite, PendingAudit, ReportRecord, ReportedResident, StoreError,
    TaskHistoryRecord, TaskRecord,
};
use serde::Serialize;
use serde_json::json;
use tokio::sync::{mpsc, oneshot};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::audit::Target;
use crate::intake_audit::{AuditKeeper, STALE_AFTER};
use crate::selfservice::{IdentifyLimits, ResidentPass, household_actor_name};
use crate::{Actor, Service, ServiceError, ServiceResult};

/// Intake's configuration.
#[derive(Debug, Clone)]
pub struct IntakeSettings {
    pub rules: IntakeRules,
    /// Submissions waiting for the writer at most; beyond, 503 at once.
    pub queue_capacity: usize,
    /// How long the writer waits for more after the first of a batch. Zero
    /// (the default): take only what is already queued. Batches still grow
    /// with the load, because submissions queue while the previous commit
    /// runs, so the commit itself is the window. Above zero, the writer
    /// sleeps that long on its own thread, then takes what has queued:
    /// fewer, larger commits and less CPU per report, for that much more
    /// latency, which at moderate load costs more rate than the CPU saves
    /// (docs/PERFORMANCE.md).
    pub batch_window: StdDuration,
    /// Most submissions per transaction.
    pub batch_max: usize,
    /// How often the writer appends its running summary to the audit chain
    /// under load (`intake_audit`); an idle writer appends it this long
    /// after its last entry.
    pub audit_interval: StdDuration,
    /// How long a resident pass stays valid.
    pub pass_lifetime: chrono::Duration,
    pub identify_limits: IdentifyLimits,
    /// Limits the web layer puts on the public routes.
    pub public: PublicLimits,
    /// Tasks made by the rules (fever, help, arrival) are verified, filed
    /// and dispatched by the system at once, so the grid worker has them on
    /// the phone within seconds; off, they wait in `reported` for the office
    /// to verify (a deployment that wants a person to look first).
    pub auto_dispatch: bool,
    /// Free space the writer keeps ahead inside the database file, topped
    /// up once it has been idle for `ROOM_IDLE` (`IntakeStore::keep_room`;
    /// SQLite only). 0, the library's default, keeps none; `epigrid serve`
    /// keeps 64 MiB unless configured.
    pub room_bytes: u64,
}

/// Overload protection of the public (self-service) routes.
#[derive(Debug, Clone)]
pub struct PublicLimits {
    /// Requests in flight at once; beyond, 503 at once (load shedding).
    pub concurrency: usize,
    /// A request taking longer is answered 503.
    pub timeout: StdDuration,
    /// Requests per second per client address, sustained (0: no limit).
    /// Generous by default: a compound's residents often share one address
    /// behind carrier NAT.
    pub rate_per_client: u32,
    pub burst_per_client: u32,
}

impl Default for PublicLimits {
    fn default() -> Self {
        Self {
            concurrency: 1024,
            timeout: StdDuration::from_secs(10),
            rate_per_client: 50,
            burst_per_client: 200,
        }
    }
}

impl Default for IntakeSettings {
    fn default() -> Self {
        Self {
            rules: IntakeRules::default(),
            queue_capacity: 4096,
            batch_window: StdDuration::ZERO,
            batch_max: 512,
            audit_interval: StdDuration::from_secs(1),
            pass_lifetime: chrono::Duration::hours(2),
            identify_limits: IdentifyLimits::default(),
            public: PublicLimits::default(),
            auto_dispatch: true,
            room_bytes: 0,
        }
    }
}

/// Where a submission's answer goes.
type Reply = oneshot::Sender<ServiceResult<IntakeOutcome>>;

/// What the writer's queue carries.
#[allow(
    clippy::large_enum_variant,
    reason = "nearly every job is a submission; boxing it would cost an allocation each"
)]
enum Job {
    /// A submission and where to send its answer.
    Submit { write: IntakeWrite, reply: Reply },
    /// Append the pending audit summary once everything queued before is
    /// committed, then say so (`finish_intake`).
    AppendAudit(oneshot::Sender<()>),
}

/// The queue's sending side, started on first use (inside the runtime that
/// serves requests), and the key tokens are signed with.
pub struct IntakeEngine {
    sender: OnceLock<mpsc::Sender<Job>>,
    /// This process's writer, whose pending audit summary is its own.
    writer_id: Uuid,
    /// HMAC-SHA256 already keyed: every submission's pass is checked with
    /// it, and keying costs two of the six SHA-256 blocks a check takes.
    keyed_mac: hmac::Hmac<sha2::Sha256>,
}

impl std::fmt::Debug for IntakeEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntakeEngine").field("started", &self.sender.get().is_some()).finish()
    }
}

impl IntakeEngine {
    /// `key` signs building tokens and resident passes.
    pub fn new(key: [u8; 32]) -> Self {
        let keyed_mac = <hmac::Hmac<sha2::Sha256> as hmac::KeyInit>::new_from_slice(&key)
            .expect("HMAC takes any key length");
        Self { sender: OnceLock::new(), writer_id: Uuid::now_v7(), keyed_mac }
    }
}

/// What a submission answers: the reference to show, whether this was a
/// replay of an earlier submission (nothing new stored), and what happens
/// next when the submission makes work for someone.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, ToSchema)]
pub struct Receipt {
    pub reference: String,
    pub replayed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub follow_up: Option<FollowUp>,
}

impl Receipt {
    fn of(outcome: IntakeOutcome, follow_up: Option<FollowUp>) -> Self {
        let (reference, replayed) = match outcome {
            IntakeOutcome::Stored { reference, .. } => (reference, false),
            IntakeOutcome::Duplicate { reference, .. } => (reference, true),
        };
        Self { reference, replayed, follow_up }
    }
}

/// The most urgent task a submission makes, and by when a grid worker is
/// due to have handled it: what the resident is told to expect ("a grid
/// worker will contact you by 17:30"), from the same catalogue limit and
/// working calendar that escalate the task when it is missed.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, ToSchema)]
pub struct FollowUp {
    /// The task's category: `fever_follow_up`, `help_request`, …
    pub category: String,
    /// When handling is due. Absent when the office checks reports before
    /// anyone is sent (`auto_dispatch` off): then no time can be promised.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due_by: Option<DateTime<Utc>>,
}

/// A daily health entry as a form sends it (strings, so "abc" is named as
/// the temperature's fault, not as a JSON error).
#[derive(Debug, Clone, Default)]
pub struct HealthEntryForm {
    pub resident_id: Uuid,
    pub temperature: String,
    pub symptoms: Vec<String>,
    pub whereabouts: String,
}

/// The four forms.
#[derive(Debug, Clone)]
pub enum SubmissionForm {
    Health {
        entries: Vec<HealthEntryForm>,
    },
    Arrival {
        resident_id: Uuid,
        origin: String,
        arrived_on: String,
        travel: String,
        note: Option<String>,
    },
    Help {
        resident_id: Option<Uuid>,
        kind: String,
        urgency: String,
        note: Option<String>,
    },
    Volunteer {
        resident_id: Uuid,
        skills: Vec<String>,
        availability: Vec<String>,
        note: Option<String>,
    },
}

/// A grid worker's report for a household at the door.
#[derive(Debug, Clone)]
pub enum StaffHealthForm {
    /// "Whole household normal" in one tap: every member, 36.5 °C, no
    /// symptoms, at home.
    WholeHouseholdNormal,
    Entries(Vec<HealthEntryForm>),
}

/// A resident in the "not reported today" list.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UnreportedResident {
    pub id: Uuid,
    pub masked_name: String,
    pub household_id: Uuid,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UnreportedPage {
    pub grid_id: Uuid,
    pub day: NaiveDate,
    pub residents: Vec<UnreportedResident>,
    /// Keyset cursor for the next page (`after`), absent on the last page.
    pub next_after: Option<Uuid>,
    pub residents_total: i64,
    pub residents_reported: i64,
    /// `residents_reported / residents_total`, 0 when the grid is empty.
    pub reported_share: f64,
}

/// A household as the grid worker sees it at the door
/// (`Service::household_at_the_door`).
#[derive(Debug, Clone)]
pub struct HouseholdAtTheDoor {
    pub household: crate::views::HouseholdView,
    pub members: Vec<crate::views::ResidentView>,
    /// The members with a report today.
    pub reported_today: Vec<Uuid>,
}

/// Today's reporting of one grid, for dashboards and maps.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, ToSchema)]
pub struct GridReporting {
    pub grid_id: Uuid,
    pub residents: i64,
    pub reported: i64,
    pub share: f64,
    pub flagged: i64,
    pub arrivals: i64,
    pub help_requests: i64,
}

/// What one catch-up pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CatchUp {
    pub reports: u32,
    pub tasks_created: u32,
    /// Audit summaries left pending by writers that stopped (a crash).
    pub audit_summaries: u32,
}

fn invalid(error: FieldError) -> ServiceError {
    ServiceError::Invalid { field: error.field, code: error.code }
}

fn share(part: i64, whole: i64) -> f64 {
    if whole <= 0 { 0.0 } else { (part as f64 / whole as f64).min(1.0) }
}

fn validate_entries(
    entries: &[HealthEntryForm],
    members: &[Uuid],
    rules: &IntakeRules,
) -> ServiceResult<Vec<HealthEntry>> {
    if entries.is_empty() {
        return Err(ServiceError::invalid("entries", "intake.entries_required"));
    }
    let mut seen = Vec::with_capacity(entries.len());
    let mut parsed = Vec::with_capacity(entries.len());
    for (i, e) in entries.iter().enumerate() {
        // The field's name is spelt out only for an error: this runs for
        // every entry of every submission.
        let at = || format!("entries[{i}]");
        if !members.contains(&e.resident_id) {
            return Err(ServiceError::invalid(
                format!("{}.resident_id", at()),
                "intake.not_a_member",
            ));
        }
        if seen.contains(&e.resident_id) {
            return Err(ServiceError::invalid(
                format!("{}.resident_id", at()),
                "intake.member_twice",
            ));
        }
        seen.push(e.resident_id);
        parsed.push(
            HealthEntry::new(e.resident_id, &e.temperature, &e.symptoms, &e.whereabouts, rules)
                .map_err(|err| invalid(err.within(&at())))?,
        );
    }
    Ok(parsed)
}

impl Service {
    /// The HMAC, under the intake key, of `parts` one after another:
    /// building tokens and resident passes are signed with it.
    pub(crate) fn intake_mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        use hmac::Mac;
        let mut mac = self.intake_engine().keyed_mac.clone();
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }

    fn intake_rules(&self) -> &IntakeRules {
        &self.settings().intake.rules
    }

    /// Validates a resident's form against the pass's household.
    fn validate_form(&self, form: SubmissionForm, members: &[Uuid]) -> ServiceResult<Submission> {
        let rules = self.intake_rules();
        let member = |field: &str, id: Uuid| {
            if members.contains(&id) {
                Ok(id)
            } else {
                Err(ServiceError::invalid(field, "intake.not_a_member"))
            }
        };
        Ok(match form {
            SubmissionForm::Health { entries } => {
                Submission::Health { entries: validate_entries(&entries, members, rules)? }
            }
            SubmissionForm::Arrival { resident_id, origin, arrived_on, travel, note } => {
                let id = member("resident_id", resident_id)?;
                Submission::Arrival(
                    Arrival::new(
                        id,
                        &origin,
                        &arrived_on,
                        &travel,
                        note.as_deref(),
                        self.today(),
                        rules,
                    )
                    .map_err(invalid)?,
                )
            }
            SubmissionForm::Help { resident_id, kind, urgency, note } => {
                let id = resident_id.map(|id| member("resident_id", id)).transpose()?;
                Submission::Help(
                    HelpRequest::new(id, &kind, &urgency, note.as_deref(), rules)
                        .map_err(invalid)?,
                )
            }
            SubmissionForm::Volunteer { resident_id, skills, availability, note } => {
                let id = member("resident_id", resident_id)?;
                Submission::Volunteer(
                    VolunteerOffer::new(id, &skills, &availability, note.as_deref(), rules)
                        .map_err(invalid)?,
                )
            }
        })
    }

    /// A resident's submission, authorised by their pass (verified by the
    /// caller with `verify_pass`). Answers after the batch holding it has
    /// committed.
    pub async fn submit(
        &self,
        pass: &ResidentPass,
        form: SubmissionForm,
        idempotency_key: &str,
    ) -> ServiceResult<Receipt> {
        let key = check_idempotency_key(idempotency_key).map_err(invalid)?;
        let submission = self.validate_form(form, &pass.members)?;
        let (write, follow_up) =
            self.intake_write(pass.household_id, pass.path, submission, key, "resident", None)?;
        let outcome = self.enqueue(write).await?;
        Ok(Receipt::of(outcome, follow_up))
    }

    /// A grid worker's health report for a household in their scope: the
    /// whole household normal in one call, or entries per person.
    pub async fn staff_health_report(
        &self,
        actor: &Actor,
        household_id: Uuid,
        form: StaffHealthForm,
        idempotency_key: &str,
    ) -> ServiceResult<Receipt> {
        actor.require(Action::WriteResidents)?;
        let key = check_idempotency_key(idempotency_key).map_err(invalid)?;
        let household = self
            .store()
            .get_household(household_id)
            .await?
            .filter(|h| actor.covers(&h.path))
            .ok_or(ServiceError::NotFound)?;
        let members: Vec<Uuid> = self
            .store()
            .search_residents(&epigrid_store::ResidentQuery {
                household_id: Some(household_id),
                limit: epigrid_store::MAX_PAGE,
                ..Default::default()
            })
            .await?
            .into_iter()
            .map(|r| r.id)
            .collect();
        let entries = match form {
            StaffHealthForm::WholeHouseholdNormal => {
                if members.is_empty() {
                    return Err(ServiceError::invalid("entries", "intake.household_empty"));
                }
                members.iter().copied().map(HealthEntry::normal).collect()
            }
            StaffHealthForm::Entries(entries) => {
                validate_entries(&entries, &members, self.intake_rules())?
            }
        };
        let (write, follow_up) = self.intake_write(
            household.id,
            household.path,
            Submission::Health { entries },
            key,
            "staff",
            actor.user_id,
        )?;
        let outcome = self.enqueue(write).await?;
        Ok(Receipt::of(outcome, follow_up))
    }

    fn intake_write(
        &self,
        household_id: Uuid,
        path: AreaPath,
        submission: Submission,
        key: &str,
        source: &str,
        actor_account_id: Option<Uuid>,
    ) -> ServiceResult<(IntakeWrite, Option<FollowUp>)> {
        if path.grid.is_none() || path.community.is_none() {
            // Households always hang under a unit, so this is a corrupt registry.
            return Err(ServiceError::Internal("household without a grid".into()));
        }
        let rules = self.intake_rules();
        let id = Uuid::now_v7();
        let day = self.today();
        let kind = submission.kind();
        let (flagged, residents) = match &submission {
            Submission::Health { entries } => (
                entries.iter().filter(|e| e.needs_follow_up(rules)).count(),
                entries.iter().map(|e| ReportedResident { resident_id: e.resident_id }).collect(),
            ),
            _ => (0, Vec::new()),
        };
        let work = submission.work(household_id, rules);
        let report = ReportRecord {
            id,
            kind: kind.as_str().to_owned(),
            household_id,
            path,
            day,
            created_at: self.now().trunc_subsecs(6),
            // Unique per household in the store (with the household in the
            // index), so one family's key never answers with another
            // family's reference.
            idempotency_key: key.to_owned(),
            reference: reference(kind, day, id),
            source: source.to_owned(),
            actor_account_id,
            payload: serde_json::to_string(&submission)
                .map_err(|e| ServiceError::Internal(e.to_string()))?,
            flagged: u32::try_from(flagged).unwrap_or(u32::MAX),
            tasks_pending: !work.is_empty(),
        };
        Ok((IntakeWrite { report, residents }, self.follow_up(&work)))
    }

    /// The most urgent of `work` (the first of the highest priority), and
    /// when its handling is due if it is dispatched as soon as it is made.
    fn follow_up(&self, work: &[epigrid_domain::intake::WorkItem]) -> Option<FollowUp> {
        let item = *work.iter().min_by_key(|w| w.priority)?;
        let due_by = self.settings().intake.auto_dispatch.then(|| {
            self.intake_stage_deadline(item, epigrid_domain::tasks::Stage::Handle, self.now())
        });
        Some(FollowUp { category: item.category.to_owned(), due_by })
    }

    fn intake_engine(&self) -> &IntakeEngine {
        &self.inner.intake
    }

    /// Queues a write and waits for its batch to commit. A full queue is
    /// refused at once.
    async fn enqueue(&self, write: IntakeWrite) -> ServiceResult<IntakeOutcome> {
        let sender = self.intake_engine().sender.get_or_init(|| self.start_writer());
        let (reply, answer) = oneshot::channel();
        sender.try_send(Job::Submit { write, reply }).map_err(|error| {
            // Full at a peak, or closed because the writer has stopped (its
            // thread failed): either way the caller is told to try again,
            // and the refusal is counted.
            let why = match error {
                mpsc::error::TrySendError::Full(_) => "full",
                mpsc::error::TrySendError::Closed(_) => "closed",
            };
            count_refusal(why);
            ServiceError::Unavailable
        })?;
        answer.await.map_err(|_| ServiceError::Unavailable)?
    }

    fn start_writer(&self) -> mpsc::Sender<Job> {
        let settings = &self.settings().intake;
        let (sender, receiver) = mpsc::channel(settings.queue_capacity.max(1));
        // The writer runs on a thread and runtime of its own. On the shared
        // runtime each of a batch's database round trips would wait behind
        // every connection task in the run queue, so a burst of requests
        // (or of refusals) would slow the very writer that drains them.
        // Task creation after a commit goes back to the serving runtime.
        // The writer holds a clone of the service and the service holds the
        // sender, so the thread lives as long as the process.
        let serving = tokio::runtime::Handle::current();
        let service = self.clone();
        let started = std::thread::Builder::new().name("epigrid-intake".into()).spawn(move || {
            match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(runtime) => runtime.block_on(writer(service, receiver, serving)),
                Err(error) => tracing::error!(%error, "intake writer runtime did not start"),
            }
        });
        if let Err(error) = started {
            // Without a writer every submission is refused (503), never lost.
            tracing::error!(%error, "intake writer thread did not start");
        }
        sender
    }

    /// False when the intake queue is full, so a submission would be
    /// refused: the web layer checks this before reading a body, which
    /// makes a refusal under overload cost little more than its answer.
    pub fn intake_has_room(&self) -> bool {
        self.intake_engine().sender.get().is_none_or(|sender| sender.capacity() > 0)
    }

    /// Submissions waiting for the writer now, and the most the queue holds.
    pub(crate) fn intake_queue_fill(&self) -> (usize, usize) {
        let capacity = self.settings().intake.queue_capacity.max(1);
        let waiting = self
            .intake_engine()
            .sender
            .get()
            .map_or(0, |sender| sender.max_capacity() - sender.capacity());
        (waiting, capacity)
    }

    /// Starts the writer now rather than at the first submission (`serve`
    /// calls this so the first resident does not pay for it).
    pub fn start_intake(&self) {
        self.intake_engine().sender.get_or_init(|| self.start_writer());
    }

    /// Appends the intake writer's pending audit summary, after everything
    /// queued before this call is committed: for a process about to exit
    /// (`demo --no-serve`, a graceful stop). Without it the summary is not
    /// lost, only appended later by the catch-up pass.
    pub async fn finish_intake(&self) {
        let Some(sender) = self.intake_engine().sender.get() else { return };
        let (done, finished) = oneshot::channel();
        if sender.send(Job::AppendAudit(done)).await.is_ok() {
            let _ = finished.await;
        }
    }

    /// Creates the tasks of stored reports, then clears their flag.
    async fn create_report_tasks(&self, reports: &[ReportRecord]) -> ServiceResult<u32> {
        let mut created = 0;
        let mut done = Vec::with_capacity(reports.len());
        for report in reports {
            let submission: Submission = serde_json::from_str(&report.payload)
                .map_err(|e| ServiceError::Internal(format!("stored submission: {e}")))?;
            for item in submission.work(report.household_id, self.intake_rules()) {
                if self.create_intake_task(report, item).await? {
                    created += 1;
                }
            }
            done.push(report.id);
        }
        self.store().clear_tasks_pending(&done).await?;
        Ok(created)
    }

    /// One task for one work item of a report; `false` when it already
    /// existed (its key is derived from the report and subject).
    async fn create_intake_task(
        &self,
        report: &ReportRecord,
        item: epigrid_domain::intake::WorkItem,
    ) -> ServiceResult<bool> {
        let (subject, subject_id) = match item.subject {
            WorkSubject::Resident(id) => (Subject::Resident(id), id),
            WorkSubject::Household(id) => (Subject::Household(id), id),
        };
        let key = intake_task_key(report.id, subject_id);
        if let Some(existing) = self.store().get_task_by_idempotency_key(&key).await? {
            // A crash may have come between the task and its dispatch.
            self.advance_rule_task(existing).await?;
            return Ok(false);
        }
        let source = match report.actor_account_id {
            Some(account_id) => Source::Staff { account_id },
            None => Source::Resident {
                resident_id: match item.subject {
                    WorkSubject::Resident(id) => Some(id),
                    WorkSubject::Household(_) => None,
                },
            },
        };
        let now = self.now().trunc_subsecs(6);
        let state = EventState::Reported;
        let stage = state.stage();
        let task = TaskRecord {
            id: Uuid::now_v7(),
            category: item.category.to_owned(),
            priority: item.priority,
            state,
            source_kind: source.kind_str().to_owned(),
            source_detail: serde_json::to_string(&source)
                .map_err(|e| ServiceError::Internal(e.to_string()))?,
            subject_kind: subject.kind_str().to_owned(),
            subject_id,
            path: report.path,
            assignee_account_id: None,
            reserve_pool_community_id: None,
            stage,
            stage_started_at: Some(now),
            stage_deadline: stage.map(|s| self.intake_stage_deadline(item, s, now)),
            escalation_level: 0,
            filed_at: None,
            handled_at: None,
            handled_by: None,
            handle_deadline: None,
            handling_seconds: None,
            closed_at: None,
            reopened: 0,
            created_at: now,
            updated_at: now,
            version: 1,
            idempotency_key: Some(key),
        };
        let first = TaskHistoryRecord {
            id: Uuid::now_v7(),
            task_id: task.id,
            community_id: report.path.community.unwrap_or_default(),
            transition: "report".into(),
            from_state: None,
            to_state: state,
            actor_account_id: report.actor_account_id,
            actor_name: household_actor_name(report.household_id),
            at: now,
            // The reference alone: its letters say the kind (JK, FH, QZ, ZY),
            // and the task's page shows the report itself.
            note: Some(report.reference.clone()),
            idempotency_key: None,
        };
        match self.store().insert_task(&task, &first).await {
            Ok(()) => {}
            // The catch-up pass and the writer raced: the other one made it.
            Err(StoreError::Conflict { .. }) => return Ok(false),
            Err(e) => return Err(e.into()),
        }
        let inserted = task.clone();
        self.audit(
            &Actor::system(),
            "task.report",
            Some(Target { kind: "task", id: task.id, path: Some(&task.path) }),
            "ok",
            json!({ "category": task.category, "priority": task.priority.as_str(),
                    "subject_kind": task.subject_kind, "subject_id": task.subject_id,
                    "intake_report": report.id }),
        )
        .await?;
        self.advance_rule_task(inserted).await?;
        Ok(true)
    }

    /// Verifies, files and dispatches a task the rules made, from wherever
    /// it stands (`auto_dispatch`). The rule is the verification: a resident
    /// reported a fever about themself, so there is nothing for the office to
    /// check before a grid worker calls. Each step has a key derived from the
    /// task, so the writer and the catch-up pass racing, or a retry after a
    /// crash, apply it once; a task the office has already moved on (or
    /// rejected) is left alone.
    async fn advance_rule_task(&self, mut task: TaskRecord) -> ServiceResult<()> {
        use epigrid_domain::tasks::{Party, Transition};
        if !self.settings().intake.auto_dispatch {
            return Ok(());
        }
        let system = Actor::system();
        // Verify, file, dispatch: three steps at most, a few more for races.
        for _ in 0..6 {
            let transition = match task.state {
                EventState::Reported => Transition::Verify,
                EventState::Verified => Transition::File,
                EventState::Filed => {
                    return match self.dispatch(task).await {
                        // A racing pass dispatched it first.
                        Ok(_) | Err(ServiceError::Conflict { .. }) => Ok(()),
                        Err(e) => Err(e),
                    };
                }
                _ => return Ok(()),
            };
            let kind = transition.kind();
            Party::System.authorize(kind).map_err(|_| ServiceError::Forbidden)?;
            let next = task.state.apply(&transition).map_err(|e| {
                ServiceError::invalid("transition", epigrid_domain::ReasonCode::code(&e))
            })?;
            let step_key = format!("{}:rule-{}", task.id, kind.as_str());
            let id = task.id;
            task = match self
                .apply_step(&system, task, &transition, next, None, Some(step_key), Vec::new())
                .await
            {
                Ok((updated, replayed)) => {
                    if !replayed {
                        self.audit(
                            &system,
                            &format!("task.{}", kind.as_str()),
                            Some(Target { kind: "task", id, path: Some(&updated.path) }),
                            "ok",
                            json!({ "to_state": updated.state.as_str(), "rule": true }),
                        )
                        .await?;
                    }
                    updated
                }
                // Someone else moved it meanwhile: look again.
                Err(ServiceError::Conflict { .. }) => {
                    self.store().get_task(id).await?.ok_or(ServiceError::NotFound)?
                }
                Err(e) => return Err(e),
            };
        }
        Ok(())
    }

    /// The verification deadline of an intake task, as `report_event`
    /// computes it: the catalogue's limit, on the working calendar, in
    /// local time.
    fn intake_stage_deadline(
        &self,
        item: epigrid_domain::intake::WorkItem,
        stage: epigrid_domain::tasks::Stage,
        start: DateTime<Utc>,
    ) -> DateTime<Utc> {
        let tasks = &self.settings().tasks;
        let limit = match tasks.catalogue.get(item.category) {
            Some(c) => c.limit(stage, item.priority),
            None => tasks.catalogue.default_limits().get(stage).for_priority(item.priority),
        };
        let offset = self.settings().time_zone_offset;
        let local = start.with_timezone(&offset).naive_local();
        let due = limit.deadline_from(local, &tasks.calendar);
        offset
            .from_local_datetime(&due)
            .single()
            .map_or_else(|| due.and_utc() - offset, |d| d.with_timezone(&Utc))
    }

    /// Creates every task a stored report still waits for: run at start and
    /// every minute, so a crash between a commit and its tasks loses nothing.
    pub async fn intake_catch_up(&self) -> ServiceResult<CatchUp> {
        const PAGE: u32 = 200;
        let mut counts = CatchUp::default();
        let stale = chrono::Duration::from_std(STALE_AFTER + self.settings().intake.audit_interval)
            .unwrap_or(chrono::Duration::MAX);
        counts.audit_summaries = self
            .store()
            .append_pending_audit(PendingAudit::StaleBefore {
                before: self.now() - stale,
                except: self.intake_engine().writer_id,
            })
            .await?;
        let mut after = None;
        loop {
            let page = self.store().reports_pending_tasks(after, PAGE).await?;
            after = page.last().map(|r| r.id);
            counts.reports += u32::try_from(page.len()).unwrap_or(u32::MAX);
            counts.tasks_created += self.create_report_tasks(&page).await?;
            if page.len() < PAGE as usize {
                return Ok(counts);
            }
        }
    }

    /// Residents of a grid with no health report today, names masked, a
    /// page at a time, with the share reported (from the day's counter).
    pub async fn unreported_today(
        &self,
        actor: &Actor,
        grid_id: Uuid,
        after: Option<Uuid>,
        limit: u32,
    ) -> ServiceResult<UnreportedPage> {
        actor.require(Action::ReadResidents)?;
        let grid = self
            .store()
            .get_area(grid_id)
            .await?
            .filter(|a| a.kind == AreaKind::Grid && actor.covers(&a.path))
            .ok_or(ServiceError::NotFound)?;
        let day = self.today();
        let limit = epigrid_store::page_size(if limit == 0 { 50 } else { limit });
        let page = self.store().unreported_residents(grid.id, day, after, limit).await?;
        let counter = self.store().grid_day_counters(&[grid.id], day).await?;
        let reported = counter.first().map_or(0, |c| c.residents_reported);
        let total = self
            .store()
            .level_counts(Some(Scope { kind: AreaKind::Grid, area_id: grid.id }))
            .await?
            .residents;
        let next_after =
            (page.len() == limit as usize).then(|| page.last().map(|r| r.id)).flatten();
        Ok(UnreportedPage {
            grid_id: grid.id,
            day,
            residents: page
                .iter()
                .map(|r| UnreportedResident {
                    id: r.id,
                    masked_name: mask_name(r.name.as_str()),
                    household_id: r.household_id,
                })
                .collect(),
            next_after,
            residents_total: total,
            residents_reported: reported,
            reported_share: share(reported, total),
        })
    }

    /// Today's reporting per grid within the actor's scope: residents (from
    /// the registry's grouped figures) against the day's counters, O(grids).
    pub async fn reporting_by_grid(&self, actor: &Actor) -> ServiceResult<Vec<GridReporting>> {
        actor.require(Action::ReadAreas)?;
        if actor.role == Role::Volunteer && actor.user_id.is_some() {
            return Err(ServiceError::Forbidden);
        }
        let figures = self.store().area_figures(actor.scope, AreaKind::Grid).await?;
        let grids: Vec<Uuid> = figures.iter().map(|f| f.area_id).collect();
        let mut counters = Vec::new();
        for chunk in grids.chunks(500) {
            counters.extend(self.store().grid_day_counters(chunk, self.today()).await?);
        }
        Ok(figures
            .iter()
            .map(|f| {
                let c =
                    counters.iter().find(|c| c.grid_id == f.area_id).copied().unwrap_or_default();
                GridReporting {
                    grid_id: f.area_id,
                    residents: f.residents,
                    reported: c.residents_reported,
                    share: share(c.residents_reported, f.residents),
                    flagged: c.flagged,
                    arrivals: c.arrivals,
                    help_requests: c.help_requests,
                }
            })
            .collect())
    }

    /// The door-to-door page's household: the household, its members and
    /// which of them have a health entry today (the page's marks), with one
    /// lookup of the household, and one check that the actor may see it,
    /// for all three.
    pub async fn household_at_the_door(
        &self,
        actor: &Actor,
        household_id: Uuid,
    ) -> ServiceResult<HouseholdAtTheDoor> {
        let household = self.visible_household(actor, household_id).await?;
        let members = self.members_of(household_id).await?;
        let reported_today = match household.path.grid {
            Some(grid) => {
                let ids: Vec<Uuid> = members.iter().map(|m| m.id).collect();
                self.store().reported_among(grid, self.today(), &ids).await?
            }
            None => Vec::new(),
        };
        Ok(HouseholdAtTheDoor { household: (&household).into(), members, reported_today })
    }

    /// A household's submissions, for staff in scope (newest last). It
    /// reads every report (no index leads with the household: see
    /// `ReportQuery::household_id`): for checks and tools, not for a page.
    pub async fn household_reports(
        &self,
        actor: &Actor,
        household_id: Uuid,
    ) -> ServiceResult<Vec<ReportRecord>> {
        self.visible_household(actor, household_id).await?;
        Ok(self
            .store()
            .list_reports(&epigrid_store::ReportQuery {
                household_id: Some(household_id),
                limit: epigrid_store::MAX_PAGE,
                ..Default::default()
            })
            .await?)
    }
}

fn count_refusal(queue: &str) {
    crate::metrics::figures().intake_refused.inc();
    tracing::debug!(queue, "intake submission refused");
}

/// Residents known to have their "reported today" row, so the writer sends
/// each resident's row once a day rather than with every report. Only
/// residents of committed batches go in, so a row it names exists; it
/// starts empty (after a restart the store's `ON CONFLICT` still counts each
/// resident once) and holds one day at a time.
#[derive(Default)]
struct ReportedToday {
    day: Option<NaiveDate>,
    residents: std::collections::HashSet<Uuid>,
}

/// At most this many residents remembered (about 40 bytes each); past it
/// the writer simply sends their rows again.
const REPORTED_TODAY_MAX: usize = 1 << 20;

impl ReportedToday {
    /// Drops from each write the residents known to have today's row.
    fn strip(&mut self, writes: &mut [IntakeWrite]) {
        for write in writes {
            if self.day == Some(write.report.day) {
                write.residents.retain(|r| !self.residents.contains(&r.resident_id));
            }
        }
    }

    fn remember(&mut self, writes: &[IntakeWrite], outcomes: &[IntakeOutcome]) {
        for (write, outcome) in writes.iter().zip(outcomes) {
            if !matches!(outcome, IntakeOutcome::Stored { .. }) {
                continue;
            }
            if self.day != Some(write.report.day) {
                // A new day (or a late report of yesterday): start over.
                self.day = Some(write.report.day);
                self.residents.clear();
            }
            if self.residents.len() < REPORTED_TODAY_MAX {
                self.residents.extend(write.residents.iter().map(|r| r.resident_id));
            }
        }
    }
}

/// The writer: batches, commits, answers, then hands new reports to task
/// creation off its own path. When idle with a pending audit summary, it
/// appends the summary once it is due; when the queue closes, at once.
async fn writer(
    service: Service,
    mut receiver: mpsc::Receiver<Job>,
    serving: tokio::runtime::Handle,
) {
    let settings = service.settings().intake.clone();
    // However the writer ends (its queue closed, a panic), the store keeps
    // no turn for it: every other write would wait for it.
    let _give_back = GiveBackTurn(service.clone());
    let max = settings.batch_max.max(1);
    let mut writes: Vec<IntakeWrite> = Vec::with_capacity(max);
    let mut replies: Vec<Reply> = Vec::with_capacity(max);
    let mut today = ReportedToday::default();
    let mut audit = AuditKeeper::new(service.intake_engine().writer_id, settings.audit_interval);
    let mut room = RoomKeeper::new(settings.room_bytes);
    loop {
        if receiver.is_empty() {
            // Nothing queued: give back what the store keeps between
            // back-to-back batches (other writes wait for it) before waiting.
            service.store().keep_intake_turn(false);
        }
        let first = match [audit.due(), room.due()].into_iter().flatten().min() {
            None => receiver.recv().await,
            Some(due) => match tokio::time::timeout_at(due.into(), receiver.recv()).await {
                Ok(job) => job,
                Err(_idle) => {
                    if audit.due().is_some_and(|due| due <= std::time::Instant::now()) {
                        append_pending(&service, &mut audit).await;
                    } else {
                        room.keep(&service).await;
                    }
                    continue;
                }
            },
        };
        let Some(first) = first else { break };
        let mut append_asked = Vec::new();
        // Takes a job into the batch; false when the batch must end there.
        let mut take = |job: Job, writes: &mut Vec<IntakeWrite>, replies: &mut Vec<Reply>| match job
        {
            Job::Submit { write, reply } => {
                writes.push(write);
                replies.push(reply);
                true
            }
            Job::AppendAudit(done) => {
                append_asked.push(done);
                false
            }
        };
        let mut more = take(first, &mut writes, &mut replies);
        if more && !settings.batch_window.is_zero() && receiver.len() + 1 < max {
            // The window is slept on this thread (the writer's own), not
            // waited on the queue: a wait on the queue is woken by every
            // arrival, which cost more than the larger batch saved.
            std::thread::sleep(settings.batch_window);
        }
        while more && replies.len() < max {
            match receiver.try_recv() {
                Ok(job) => more = take(job, &mut writes, &mut replies),
                Err(_) => break,
            }
        }
        if !writes.is_empty() {
            today.strip(&mut writes);
            service.store().keep_intake_turn(true);
            commit(&service, &mut writes, &mut replies, &serving, &mut today, &mut audit).await;
            room.used();
        }
        if !append_asked.is_empty() {
            if audit.due().is_some() {
                append_pending(&service, &mut audit).await;
            }
            for done in append_asked {
                let _ = done.send(());
            }
        }
    }
    if audit.due().is_some() {
        append_pending(&service, &mut audit).await;
    }
}

/// How long the writer must have had nothing to do before it adds room:
/// never between the batches of a peak, whose gaps are milliseconds.
const ROOM_IDLE: StdDuration = StdDuration::from_secs(1);

/// The free space kept ahead in the database file (`IntakeSettings::
/// room_bytes`): a slice at a time while the writer stays idle, looked at
/// again once batches have used some.
struct RoomKeeper {
    target_bytes: u64,
    wanted: bool,
    idle_since: std::time::Instant,
}

impl RoomKeeper {
    fn new(target_bytes: u64) -> Self {
        Self { target_bytes, wanted: target_bytes > 0, idle_since: std::time::Instant::now() }
    }

    /// When to add the next slice, if room is wanted.
    fn due(&self) -> Option<std::time::Instant> {
        self.wanted.then(|| self.idle_since + ROOM_IDLE)
    }

    /// A batch was written: it may have used room, and the writer is busy.
    fn used(&mut self) {
        self.wanted = self.target_bytes > 0;
        self.idle_since = std::time::Instant::now();
    }

    async fn keep(&mut self, service: &Service) {
        // An ordinary write: the batches' kept turn at the lock is given
        // back first, or it would wait for itself.
        service.store().keep_intake_turn(false);
        match service.store().keep_room(self.target_bytes).await {
            Ok(0) => self.wanted = false,
            // More at once while nothing is queued: `due` is still past.
            Ok(_) => {}
            Err(error) => {
                // Tried again after the next batch, not every idle second
                // (a full disk would fail the same way).
                tracing::warn!(%error, "free room in the database file not added");
                self.wanted = false;
            }
        }
    }
}

/// Tells the store to keep nothing for the writer, when dropped.
struct GiveBackTurn(Service);

impl Drop for GiveBackTurn {
    fn drop(&mut self) {
        self.0.store().keep_intake_turn(false);
    }
}

/// Appends the writer's pending audit summary on its own.
async fn append_pending(service: &Service, audit: &mut AuditKeeper) {
    // An ordinary write: the batches' kept turn at the lock is given back
    // first, or it would wait for itself.
    service.store().keep_intake_turn(false);
    match service.store().append_pending_audit(PendingAudit::Of(audit.writer)).await {
        Ok(_) => audit.appended(),
        Err(error) => {
            tracing::warn!(%error, "intake audit summary not appended; will retry");
            audit.postpone();
        }
    }
}

/// Commits the batch and answers each caller. A batch that fails for a
/// reason other than the database being unavailable is retried one
/// submission at a time, so one bad row cannot fail its neighbours.
async fn commit(
    service: &Service,
    writes: &mut Vec<IntakeWrite>,
    replies: &mut Vec<Reply>,
    serving: &tokio::runtime::Handle,
    today: &mut ReportedToday,
    audit: &mut AuditKeeper,
) {
    let figures = crate::metrics::figures();
    let started = std::time::Instant::now();
    let summary = audit.next(writes, service.now());
    let written =
        service.store().write_intake_batch(writes, Some(summary.audit(audit.writer))).await;
    match written {
        Ok(outcomes) => {
            audit.committed(summary);
            today.remember(writes, &outcomes);
            // Counted before the answers go out, so a caller who has its
            // answer finds its batch in the figures.
            figures.batch_committed(writes.len(), started.elapsed());
            answer(service, writes.drain(..), replies.drain(..), outcomes, serving);
        }
        Err(StoreError::Unavailable(detail)) => {
            tracing::warn!(%detail, size = writes.len(), "intake batch: store unavailable");
            figures.intake_failed.inc_by(writes.len() as u64);
            writes.clear();
            for reply in replies.drain(..) {
                let _ = reply.send(Err(ServiceError::Unavailable));
            }
        }
        Err(error) if writes.len() > 1 => {
            tracing::warn!(%error, size = writes.len(), "intake batch failed; retrying one by one");
            for (write, reply) in writes.drain(..).zip(replies.drain(..)) {
                let one = [write];
                let started = std::time::Instant::now();
                let summary = audit.next(&one, service.now());
                let audited = Some(summary.audit(audit.writer));
                match service.store().write_intake_batch(&one, audited).await {
                    Ok(outcomes) => {
                        audit.committed(summary);
                        today.remember(&one, &outcomes);
                        figures.batch_committed(1, started.elapsed());
                        answer(service, one.into_iter(), std::iter::once(reply), outcomes, serving);
                    }
                    Err(error) => {
                        figures.intake_failed.inc();
                        let _ = reply.send(Err(error.into()));
                    }
                }
            }
        }
        Err(error) => {
            figures.intake_failed.inc_by(writes.len() as u64);
            writes.clear();
            for reply in replies.drain(..) {
                let _ = reply.send(Err(ServiceError::from(StoreError::Other(error.to_string()))));
            }
        }
    }
}

fn answer(
    service: &Service,
    writes: impl Iterator<Item = IntakeWrite>,
    replies: impl Iterator<Item = Reply>,
    outcomes: Vec<IntakeOutcome>,
    serving: &tokio::runtime::Handle,
) {
    let mut needing_tasks = Vec::new();
    let mut answers = Vec::with_capacity(outcomes.len());
    let mut stored = 0;
    for ((write, reply), outcome) in writes.zip(replies).zip(outcomes) {
        if matches!(outcome, IntakeOutcome::Stored { .. }) {
            stored += 1;
            if write.report.tasks_pending {
                needing_tasks.push(write.report);
            }
        }
        answers.push((reply, outcome));
    }
    let figures = crate::metrics::figures();
    figures.intake_stored.inc_by(stored);
    figures.intake_duplicates.inc_by(answers.len() as u64 - stored);
    // The answers are sent from one task on the serving runtime rather than
    // from this thread: a wake from outside the runtime goes through its
    // shared queue and may rouse a sleeping worker each time, while a wake
    // from one of its own tasks lands in that worker's local queue. One
    // hand-over per batch instead of one per submission.
    serving.spawn(async move {
        for (reply, outcome) in answers {
            // The caller may have gone (timeout, closed connection): the
            // report is stored all the same, and a retry gets its reference.
            let _ = reply.send(Ok(outcome));
        }
    });
    if !needing_tasks.is_empty() {
        let service = service.clone();
        serving.spawn(async move {
            if let Err(error) = service.create_report_tasks(&needing_tasks).await {
                tracing::warn!(%error, "intake tasks not created; the catch-up pass will retry");
            }
        });
    }
}

/// The idempotency key of the task made from report `report_id` about
/// `subject_id`: a report makes a task once per subject, whatever the retries.
fn intake_task_key(report_id: Uuid, subject_id: Uuid) -> String {
    format!("intake:{report_id}:{subject_id}")
}

/// The report a task was made from, read back from its key.
pub(crate) fn report_of_task_key(key: &str) -> Option<Uuid> {
    let (report, _subject) = key.strip_prefix("intake:")?.split_once(':')?;
    Uuid::parse_str(report).ok()
}
