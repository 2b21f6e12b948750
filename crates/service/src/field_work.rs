//! What a grid worker does on the phone: the list of their tasks in the
//! order to do them, with where to go and whom to call; the phone number of
//! a task's contact, revealed one at a time and audited; and a door-to-door
//! visit recorded in one idempotent call, so that a phone replaying it after
//! a stairwell without signal never records the visit twice.

use std::collections::HashMap;

use epigrid_domain::tasks::{
    Assignee, EventState, Party, Priority, Subject, Transition, TransitionKind,
};
use epigrid_domain::{Action, Relation, Role};
use epigrid_store::{HouseholdRecord, ReportRecord, ResidentQuery, ResidentRecord};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::audit::Target;
use crate::tasks::{
    HealthDataRetention, HistoryView, ReportEvent, TaskDetail, TaskView, TransitionOutcome,
    task_report,
};
use crate::{Actor, Service, ServiceError, ServiceResult};

/// The catalogue category of a door-to-door check (入户排查).
pub const DOOR_TO_DOOR_CATEGORY: &str = "door_to_door_check";
/// The unmask reason recorded when a worker calls a task's contact.
pub const TASK_CONTACT_REASON: &str = "task_contact";

/// Address, household and contact of a task's subject.
type Whereabouts = (String, Option<Uuid>, Option<ResidentRecord>);

/// Whom to call about a task, with the phone masked.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ContactPreview {
    pub resident_id: Uuid,
    pub name: String,
    /// `138****5678`; `None` when the resident has no phone on record.
    pub phone_masked: Option<String>,
}

/// One task as the phone's task page shows it.
#[derive(Debug, Clone)]
pub struct FieldTaskDetail {
    pub task: FieldTask,
    pub history: Vec<HistoryView>,
    pub retention: Option<HealthDataRetention>,
}

/// A task as the phone list shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FieldTask {
    pub task: TaskView,
    /// "1号楼 1单元 101", or the area's name for an area task.
    pub address: String,
    /// The household the task concerns, for recording a visit to it.
    pub household_id: Option<Uuid>,
    pub contact: Option<ContactPreview>,
    /// What the report the task was made from said about its subject.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<crate::tasks::TaskReport>,
}

/// A task's contact with the phone in clear, for a `tel:` link.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TaskContact {
    pub resident_id: Uuid,
    pub name: String,
    pub phone: Option<String>,
}

/// A door-to-door visit to record.
#[derive(Debug, Clone)]
pub struct VisitRequest {
    pub household_id: Uuid,
    pub note: Option<String>,
    /// A retried visit with the same key is the same visit.
    pub idempotency_key: Option<String>,
}

/// Urgency order for the phone: overdue first, then priority, then the
/// nearest deadline (tasks without one last), then age.
pub fn urgency_key(t: &TaskView) -> (bool, Priority, bool, Option<i64>, Uuid) {
    (
        !t.overdue,
        t.priority,
        t.stage_deadline.is_none(),
        t.stage_deadline.map(|d| d.timestamp_micros()),
        t.id,
    )
}

impl Service {
    /// The actor's open tasks, most urgent first, each with its address and
    /// contact (phone masked).
    pub async fn field_tasks(&self, actor: &Actor) -> ServiceResult<Vec<FieldTask>> {
        let mut tasks = self.my_tasks(actor).await?;
        tasks.sort_by_key(urgency_key);
        let subjects: Vec<Subject> = tasks.iter().map(|t| t.subject).collect();
        let places = self.whereabouts_of(&subjects).await?;
        // The reports the tasks were made from, in one read (volunteers see
        // no personal records).
        let report_ids: Vec<Uuid> = tasks.iter().filter_map(|t| t.report_id).collect();
        let reports: HashMap<Uuid, ReportRecord> = if actor.role == Role::Volunteer {
            HashMap::new()
        } else {
            let stored = self.store().get_reports(&report_ids).await?;
            stored.into_iter().map(|r| (r.id, r)).collect()
        };
        Ok(tasks
            .into_iter()
            .zip(places)
            .map(|(task, (address, household_id, contact))| {
                let contact = contact.map(|r| ContactPreview {
                    resident_id: r.id,
                    name: r.name.as_str().to_owned(),
                    phone_masked: self.resident_view(&r).phone,
                });
                // A report that cannot be read costs its line, not the
                // worker's whole list (the task's page names the error).
                let report = task.report_id.and_then(|id| reports.get(&id));
                let report = report.and_then(|r| match task_report(r, task.subject) {
                    Ok(report) => Some(report),
                    Err(error) => {
                        tracing::warn!(%error, report = %r.id, "a task's report is unreadable");
                        None
                    }
                });
                FieldTask { task, address, household_id, contact, report }
            })
            .collect())
    }

    /// One task for the phone page: as in the list, with its history and
    /// how long its notes are kept, from one read of the task.
    pub async fn field_task(&self, actor: &Actor, task_id: Uuid) -> ServiceResult<FieldTaskDetail> {
        let TaskDetail { task, history, report, retention } =
            self.task_detail(actor, task_id).await?;
        let (address, household_id, contact) = self.whereabouts(&task.subject).await?;
        let contact = contact.map(|r| ContactPreview {
            resident_id: r.id,
            name: r.name.as_str().to_owned(),
            phone_masked: self.resident_view(&r).phone,
        });
        let task = FieldTask { task, address, household_id, contact, report };
        Ok(FieldTaskDetail { task, history, retention })
    }

    /// Address, household and contact person of a task's subject. The
    /// caller has already checked that the actor may see the task.
    async fn whereabouts(&self, subject: &Subject) -> ServiceResult<Whereabouts> {
        let mut all = self.whereabouts_of(std::slice::from_ref(subject)).await?;
        Ok(all.pop().unwrap_or_default())
    }

    /// `whereabouts` of many subjects, reading households and areas in one
    /// query each (a worker's list of fifty tasks costs a query per
    /// household for its contact, not four).
    async fn whereabouts_of(&self, subjects: &[Subject]) -> ServiceResult<Vec<Whereabouts>> {
        let store = self.store();
        let mut residents: HashMap<Uuid, ResidentRecord> = HashMap::new();
        for subject in subjects {
            if let Subject::Resident(id) = *subject
                && !residents.contains_key(&id)
                && let Some(r) = store.get_resident(id).await?
            {
                residents.insert(id, r);
            }
        }
        let household_of = |subject: &Subject| match *subject {
            Subject::Resident(id) => residents.get(&id).map(|r| r.household_id),
            Subject::Household(id) => Some(id),
            Subject::Building(_) | Subject::Area(_) => None,
        };
        let mut household_ids: Vec<Uuid> = subjects.iter().filter_map(household_of).collect();
        household_ids.sort();
        household_ids.dedup();
        let households: HashMap<Uuid, HouseholdRecord> =
            store.get_households(&household_ids).await?.into_iter().map(|h| (h.id, h)).collect();
        let mut area_ids: Vec<Uuid> = households
            .values()
            .flat_map(|h| [h.path.building, h.path.unit])
            .flatten()
            .chain(subjects.iter().filter_map(|s| match *s {
                Subject::Building(id) | Subject::Area(id) => Some(id),
                _ => None,
            }))
            .collect();
        area_ids.sort();
        area_ids.dedup();
        let names: HashMap<Uuid, String> =
            store.get_areas(&area_ids).await?.into_iter().map(|a| (a.id, a.name)).collect();
        let mut contacts: HashMap<Uuid, Option<ResidentRecord>> = HashMap::new();
        let mut out = Vec::with_capacity(subjects.len());
        for subject in subjects {
            if let Subject::Building(id) | Subject::Area(id) = *subject {
                out.push((names.get(&id).cloned().unwrap_or_default(), None, None));
                continue;
            }
            let Some(household) = household_of(subject).and_then(|id| households.get(&id)) else {
                out.push(Whereabouts::default());
                continue;
            };
            let name_of = |id: Option<Uuid>| id.and_then(|id| names.get(&id)).cloned();
            let address = [
                name_of(household.path.building),
                name_of(household.path.unit),
                Some(household.room.clone()),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
            let contact = match *subject {
                Subject::Resident(id) => residents.get(&id).cloned(),
                _ => match contacts.get(&household.id) {
                    Some(known) => known.clone(),
                    None => {
                        let found = self.household_contact(household.id).await?;
                        contacts.insert(household.id, found.clone());
                        found
                    }
                },
            };
            out.push((address, Some(household.id), contact));
        }
        Ok(out)
    }

    /// Whom to call in a household: the head if they have a phone, else the
    /// first member with one, else the head.
    async fn household_contact(&self, household_id: Uuid) -> ServiceResult<Option<ResidentRecord>> {
        let members = self
            .store()
            .search_residents(&ResidentQuery {
                household_id: Some(household_id),
                limit: 200,
                ..ResidentQuery::default()
            })
            .await?;
        let is_head = |r: &&ResidentRecord| r.relation == Relation::Head;
        Ok(members
            .iter()
            .filter(|r| r.phone.is_some())
            .find(is_head)
            .or_else(|| members.iter().find(|r| r.phone.is_some()))
            .or_else(|| members.iter().find(is_head))
            .cloned())
    }

    /// The clear phone of a task's contact, for calling them. The assignee
    /// of a task they are working (dispatched or in progress) may have it
    /// whatever `unmask_roles` says: calling the household is the task.
    /// Once they report it handled, the number is a supervisor's again. Anyone else needs the unmask permission
    /// and the task in scope. Audited as an unmask with the reason
    /// `task_contact`, before the number is handed out; refusals too.
    pub async fn task_contact(&self, actor: &Actor, task_id: Uuid) -> ServiceResult<TaskContact> {
        let task = self.visible_task(actor, task_id).await?;
        let subject = crate::tasks::subject_of(&task);
        let (_, _, contact) = self.whereabouts(&subject).await?;
        let resident = contact.ok_or(ServiceError::NotFound)?;
        let holds_it = actor.user_id.is_some()
            && task.assignee_account_id == actor.user_id
            && task.state.counts_toward_workload();
        let supervises = self.may_unmask(actor.role) && actor.covers(&task.path);
        let target = Target { kind: "resident", id: resident.id, path: Some(&resident.path) };
        let detail = json!({ "field": "phone", "reason": TASK_CONTACT_REASON, "task_id": task.id });
        if !(holds_it || supervises) {
            self.audit(actor, "resident.unmask", Some(target), "denied", detail).await?;
            return Err(ServiceError::Forbidden);
        }
        let phone = resident
            .phone
            .as_ref()
            .map(|s| self.cipher().open(s).map_err(|e| ServiceError::Internal(e.to_string())))
            .transpose()?;
        self.audit(actor, "resident.unmask", Some(target), "ok", detail).await?;
        Ok(TaskContact { resident_id: resident.id, name: resident.name.as_str().to_owned(), phone })
    }

    /// Records a door-to-door visit to a household the actor covers: a
    /// `door_to_door_check` task reported by the actor, verified, filed and
    /// dispatched to them by the system (they were there; there is nobody
    /// else to send), accepted and reported handled with the note and
    /// photos. A supervisor still checks and closes it.
    ///
    /// Every step carries a key derived from the request's, and the steps
    /// are taken from wherever the task stands, so a retry (after a timeout,
    /// or replayed from the phone's queue) finishes an interrupted visit and
    /// repeats nothing of a finished one.
    pub async fn record_visit(
        &self,
        actor: &Actor,
        visit: VisitRequest,
        photos: Vec<Vec<u8>>,
    ) -> ServiceResult<TransitionOutcome> {
        let Some(me) = actor.user_id else { return Err(ServiceError::Forbidden) };
        if actor.role == Role::Volunteer || !actor.role.allows(Action::WriteResidents) {
            return Err(ServiceError::Forbidden);
        }
        // Refuse bad photos before anything is written.
        let photos = crate::photos::check_photos(&self.settings().photos, photos)?;
        let key = visit
            .idempotency_key
            .map(|k| k.trim().to_owned())
            .filter(|k| !k.is_empty())
            .unwrap_or_else(|| Uuid::now_v7().to_string());
        let reported = self
            .report_event(
                actor,
                ReportEvent {
                    category: DOOR_TO_DOOR_CATEGORY.into(),
                    priority: None,
                    subject: Subject::Household(visit.household_id),
                    note: None,
                    idempotency_key: Some(format!("visit:{key}")),
                },
            )
            .await?;
        let system = Actor::system();
        let mut applied_any = false;
        // Five steps at most; a few more for concurrent retries racing.
        for _ in 0..12 {
            let task = self.visible_task(actor, reported.id).await?;
            let mine = task.assignee_account_id == Some(me);
            let (who, party, transition) = match task.state {
                EventState::Reported => (&system, Party::System, Transition::Verify),
                EventState::Verified => (&system, Party::System, Transition::File),
                EventState::Filed => (
                    &system,
                    Party::System,
                    Transition::Dispatch { assignee: Assignee::Worker { account_id: me } },
                ),
                EventState::Dispatched if mine => (
                    actor,
                    Party::Staff { role: actor.role, is_assignee: true },
                    Transition::Accept,
                ),
                EventState::InProgress if mine => (
                    actor,
                    Party::Staff { role: actor.role, is_assignee: true },
                    Transition::ReportHandled,
                ),
                // Handled (or moved on by a supervisor): nothing left to do.
                _ => break,
            };
            let kind = transition.kind();
            party.authorize(kind).map_err(|_| ServiceError::Forbidden)?;
            let next = task.state.apply(&transition).map_err(|e| {
                ServiceError::invalid("transition", epigrid_domain::ReasonCode::code(&e))
            })?;
            let (note, step_photos) = if kind == TransitionKind::ReportHandled {
                (crate::tasks::check_note(visit.note.clone())?, photos.clone())
            } else {
                (None, Vec::new())
            };
            let photo_count = step_photos.len();
            let step_key = format!("{}:visit-{}", task.id, kind.as_str());
            let path = task.path;
            match self
                .apply_step(who, task, &transition, next, note, Some(step_key), step_photos)
                .await
            {
                Ok((_, true)) => continue,
                Ok((updated, false)) => {
                    applied_any = true;
                    self.audit(
                        who,
                        &format!("task.{}", kind.as_str()),
                        Some(Target { kind: "task", id: updated.id, path: Some(&path) }),
                        "ok",
                        json!({ "to_state": updated.state.as_str(), "visit": true,
                                "visitor": actor.username, "photos": photo_count }),
                    )
                    .await?;
                }
                // Another retry of this visit moved the task meanwhile.
                Err(ServiceError::Conflict { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        let task = self.task_detail(actor, reported.id).await?.task;
        Ok(TransitionOutcome { task, replayed: !applied_any })
    }
}
