//! Resident self-service without an app or a password (issue #6): a QR code
//! per building carries a *building token*; the resident picks their
//! household, proves who they are with a member's name and the last four
//! characters of that member's ID number, and receives a short-lived
//! *resident pass* that authorises submissions for that household.
//!
//! Both tokens are stateless HMACs under a key derived from the server's
//! secret, so any instance verifies them and a pass costs no database read
//! on the hot intake path:
//!
//! - building token: hex of `building uuid (16 bytes) ‖ HMAC[..10]`, 52
//!   characters, URL-safe, printed once on an A4 sheet and valid as long as
//!   the key;
//! - resident pass: hex of `version ‖ household ‖ path (5 ids) ‖ expiry ‖
//!   member ids ‖ HMAC[..16]`, sent back in `Authorization: Bearer`.
//!
//! Failed identifications are audited (household id and address, never the
//! name or digits typed) and counted from the audit log, like failed logins,
//! so the limits hold across instances and restarts.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use epigrid_domain::mask::mask_name;
use epigrid_domain::tasks::{EventState, Source};
use epigrid_domain::{AreaKind, AreaPath, Role, Scope};
use epigrid_store::{
    AreaQuery, AuditCount, HouseholdQuery, HouseholdRecord, ResidentQuery, ResidentRecord,
};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::audit::Target;
use crate::intake::report_of_task_key;
use crate::{Actor, Service, ServiceError, ServiceResult};

const BUILDING_MAC_LEN: usize = 10;
const PASS_MAC_LEN: usize = 16;
const PASS_VERSION: u8 = 1;
/// A household larger than this cannot be carried in a pass; none is.
const MAX_PASS_MEMBERS: usize = 32;
/// The audit action of an identification attempt.
pub const IDENTIFY_ACTION: &str = "selfservice.identify";

/// Limits on identification attempts, counted from the audit log.
#[derive(Debug, Clone, Copy)]
pub struct IdentifyLimits {
    pub window: Duration,
    /// Failures per household within the window (guessing one family's digits).
    pub per_household: i64,
    /// Failures per client address within the window (guessing across families).
    pub per_address: i64,
}

impl Default for IdentifyLimits {
    fn default() -> Self {
        Self { window: Duration::minutes(15), per_household: 5, per_address: 20 }
    }
}

/// A verified resident pass: who may submit for which household.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResidentPass {
    pub household_id: Uuid,
    /// The household's path, unit included.
    pub path: AreaPath,
    pub members: Vec<Uuid>,
    pub expires_at: DateTime<Utc>,
}

/// A household as the picker shows it: a label, no names.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, ToSchema)]
pub struct HouseholdChoice {
    pub id: Uuid,
    /// `3单元 502`.
    pub label: String,
    pub unit: String,
    pub room: String,
}

/// The building behind a QR code.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BuildingView {
    pub building_id: Uuid,
    pub name: String,
    pub address: Option<String>,
    /// Ordered by unit label, then room.
    pub households: Vec<HouseholdChoice>,
}

/// A member of the identified household, name masked (`张*三`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq, ToSchema)]
pub struct MemberView {
    pub id: Uuid,
    pub masked_name: String,
}

/// How many days of a household's own requests its menu shows.
pub const REQUESTS_SHOWN_DAYS: i64 = 14;
/// At most this many of them.
const REQUESTS_SHOWN: u32 = 10;

/// One of a household's own requests or flagged reports, as its menu shows
/// it: what kind of help, how far it has got, and the receipt's reference
/// while the report is kept.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, ToSchema)]
pub struct HouseholdRequest {
    /// The task's category: `help_request`, `fever_follow_up`, …
    pub category: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    pub progress: RequestProgress,
    pub at: DateTime<Utc>,
}

/// A task's state in the words a resident needs.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RequestProgress {
    /// Received, not yet given to anyone (or given back after a failed check).
    Received,
    /// A grid worker (or the reserve pool) has it.
    Assigned,
    /// Handled.
    Done,
    /// Not taken up (not real, a duplicate, or not the community's).
    Declined,
}

impl RequestProgress {
    pub fn of(state: EventState) -> Self {
        match state {
            EventState::Reported
            | EventState::Verified
            | EventState::Filed
            | EventState::Reopened => Self::Received,
            EventState::Dispatched | EventState::InProgress => Self::Assigned,
            EventState::HandledReported | EventState::Closed | EventState::Evaluated => Self::Done,
            EventState::Rejected => Self::Declined,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Received => "received",
            Self::Assigned => "assigned",
            Self::Done => "done",
            Self::Declined => "declined",
        }
    }
}

/// A successful identification.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Identified {
    /// The resident pass: send as `Authorization: Bearer <pass>`.
    pub pass: String,
    pub expires_at: DateTime<Utc>,
    pub household_id: Uuid,
    pub household_label: String,
    pub members: Vec<MemberView>,
}

/// What a resident types to identify.
#[derive(Debug, Clone)]
pub struct IdentifyRequest {
    pub building_token: String,
    pub household_id: Uuid,
    pub name: String,
    /// The last four characters of the member's ID number (`X` allowed).
    pub id_last4: String,
    pub client_addr: Option<String>,
}

/// Equal in time independent of where the bytes differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn uuid_at(bytes: &[u8], at: usize) -> Option<Uuid> {
    bytes.get(at..at + 16).and_then(|b| Uuid::from_slice(b).ok())
}

fn optional_uuid(id: Uuid) -> Option<Uuid> {
    (!id.is_nil()).then_some(id)
}

/// "3单元 502", or the room alone when the unit has no name.
pub fn household_label(unit_name: &str, room: &str) -> String {
    if unit_name.is_empty() { room.to_owned() } else { format!("{unit_name} {room}") }
}

/// The value of each ASCII hex digit, either case; 0xFF for any other byte.
const HEX_VALUES: [u8; 256] = {
    let mut values = [0xFF; 256];
    let mut i = 0;
    while i < 10 {
        values[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        values[b'a' as usize + i] = 10 + i as u8;
        values[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    values
};

/// A pass's bytes from its hex text; None for an odd length or a non-hex
/// character. By table rather than through `hex::decode_to_slice`, which
/// matches each character against the digit ranges and took 1.8 % of the
/// server's time at the peak: a pass is 250-400 characters, read on every
/// submission (docs/PERFORMANCE.md, session 10).
fn decode_hex(text: &str) -> Option<Vec<u8>> {
    let text = text.as_bytes();
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let mut bytes = Vec::with_capacity(text.len() / 2);
    let mut invalid = 0u8;
    for pair in text.chunks_exact(2) {
        let (high, low) = (HEX_VALUES[usize::from(pair[0])], HEX_VALUES[usize::from(pair[1])]);
        // Any 0xFF sets the top bit; checked once, after the loop.
        invalid |= high | low;
        bytes.push((high << 4) | (low & 0x0F));
    }
    (invalid & 0x80 == 0).then_some(bytes)
}

impl Service {
    /// The token in a building's QR link.
    pub fn building_token(&self, building_id: Uuid) -> String {
        let tag = self.intake_mac(&[b"building", building_id.as_bytes()]);
        let mut bytes = building_id.as_bytes().to_vec();
        bytes.extend_from_slice(&tag[..BUILDING_MAC_LEN]);
        hex::encode(bytes)
    }

    /// The building a token names, if the token is genuine. Says nothing
    /// about whether the building still exists.
    pub fn resolve_building_token(&self, token: &str) -> Option<Uuid> {
        let bytes = hex::decode(token.trim()).ok()?;
        if bytes.len() != 16 + BUILDING_MAC_LEN {
            return None;
        }
        let id = uuid_at(&bytes, 0)?;
        let tag = self.intake_mac(&[b"building", id.as_bytes()]);
        constant_time_eq(&bytes[16..], &tag[..BUILDING_MAC_LEN]).then_some(id)
    }

    /// Signs a pass.
    pub fn issue_pass(&self, pass: &ResidentPass) -> String {
        let mut bytes = vec![PASS_VERSION];
        bytes.extend_from_slice(pass.household_id.as_bytes());
        for id in [
            pass.path.sub_district,
            pass.path.community,
            pass.path.grid,
            pass.path.building,
            pass.path.unit,
        ] {
            bytes.extend_from_slice(id.unwrap_or_default().as_bytes());
        }
        bytes.extend_from_slice(&pass.expires_at.timestamp().to_be_bytes());
        let members = &pass.members[..pass.members.len().min(MAX_PASS_MEMBERS)];
        bytes.push(u8::try_from(members.len()).unwrap_or(0));
        for id in members {
            bytes.extend_from_slice(id.as_bytes());
        }
        let tag = self.intake_mac(&[b"pass", &bytes]);
        bytes.extend_from_slice(&tag[..PASS_MAC_LEN]);
        hex::encode(bytes)
    }

    /// Checks a pass's signature and expiry: no database read.
    pub fn verify_pass(&self, token: &str) -> ServiceResult<ResidentPass> {
        let bytes = decode_hex(token.trim()).ok_or(ServiceError::Unauthenticated)?;
        let fixed = 1 + 16 * 6 + 8 + 1;
        if bytes.len() < fixed + PASS_MAC_LEN || bytes[0] != PASS_VERSION {
            return Err(ServiceError::Unauthenticated);
        }
        let (body, tag) = bytes.split_at(bytes.len() - PASS_MAC_LEN);
        let expected = self.intake_mac(&[b"pass", body]);
        if !constant_time_eq(tag, &expected[..PASS_MAC_LEN]) {
            return Err(ServiceError::Unauthenticated);
        }
        let count = usize::from(body[fixed - 1]);
        if body.len() != fixed + 16 * count {
            return Err(ServiceError::Unauthenticated);
        }
        let id = |i: usize| uuid_at(body, 1 + 16 * i).ok_or(ServiceError::Unauthenticated);
        let expiry = i64::from_be_bytes(
            body[97..105].try_into().map_err(|_| ServiceError::Unauthenticated)?,
        );
        let expires_at =
            DateTime::from_timestamp(expiry, 0).ok_or(ServiceError::Unauthenticated)?;
        if expires_at <= self.now() {
            return Err(ServiceError::Unauthenticated);
        }
        let members = (0..count)
            .map(|i| uuid_at(body, fixed + 16 * i).ok_or(ServiceError::Unauthenticated))
            .collect::<ServiceResult<Vec<_>>>()?;
        Ok(ResidentPass {
            household_id: id(0)?,
            path: AreaPath {
                sub_district: optional_uuid(id(1)?),
                community: optional_uuid(id(2)?),
                grid: optional_uuid(id(3)?),
                building: optional_uuid(id(4)?),
                unit: optional_uuid(id(5)?),
            },
            members,
            expires_at,
        })
    }

    /// The building behind a QR token, with its households as labels only
    /// (no names: anyone holding the sheet can read this).
    pub async fn building_for_token(&self, token: &str) -> ServiceResult<BuildingView> {
        let building_id = self.resolve_building_token(token).ok_or(ServiceError::NotFound)?;
        let building = self
            .store()
            .get_area(building_id)
            .await?
            .filter(|a| a.kind == AreaKind::Building)
            .ok_or(ServiceError::NotFound)?;
        let units = self.selfservice_units(building_id).await?;
        let mut households = Vec::new();
        let mut after = None;
        loop {
            let page = self
                .store()
                .list_households(&HouseholdQuery {
                    within: Some(Scope { kind: AreaKind::Building, area_id: building_id }),
                    after,
                    limit: epigrid_store::MAX_PAGE,
                })
                .await?;
            let short = page.len() < epigrid_store::MAX_PAGE as usize;
            after = page.last().map(|h| h.id);
            households.extend(page.iter().map(|h| choice(h, &units)));
            if short {
                break;
            }
        }
        households.sort_by(|a, b| {
            (natural_key(&a.unit), natural_key(&a.room))
                .cmp(&(natural_key(&b.unit), natural_key(&b.room)))
        });
        Ok(BuildingView { building_id, name: building.name, address: building.address, households })
    }

    async fn selfservice_units(&self, building_id: Uuid) -> ServiceResult<Vec<(Uuid, String)>> {
        let units = self
            .store()
            .list_areas(&AreaQuery {
                parent_id: Some(building_id),
                kind: Some(AreaKind::Unit),
                within: None,
                after: None,
                limit: epigrid_store::MAX_PAGE,
            })
            .await?;
        Ok(units.into_iter().map(|u| (u.id, u.name)).collect())
    }

    async fn selfservice_members(&self, household_id: Uuid) -> ServiceResult<Vec<ResidentRecord>> {
        Ok(self
            .store()
            .search_residents(&ResidentQuery {
                household_id: Some(household_id),
                limit: epigrid_store::MAX_PAGE,
                ..ResidentQuery::default()
            })
            .await?)
    }

    /// Checks a member's name and the last four characters of their ID
    /// number against the registry and, when they match, issues a pass for
    /// the household. Too many failures for the household or the address
    /// within the window: 429 until the oldest leaves it.
    pub async fn identify(&self, request: IdentifyRequest) -> ServiceResult<Identified> {
        let building_id =
            self.resolve_building_token(&request.building_token).ok_or(ServiceError::NotFound)?;
        let name = request.name.trim();
        if name.is_empty() {
            return Err(ServiceError::invalid("name", "intake.name_required"));
        }
        let digits = request.id_last4.trim().to_ascii_uppercase();
        if digits.chars().count() != 4
            || !digits.chars().enumerate().all(|(i, c)| c.is_ascii_digit() || (i == 3 && c == 'X'))
        {
            return Err(ServiceError::invalid("id_last4", "intake.id_last4_format"));
        }
        self.check_identify_limits(request.household_id, request.client_addr.as_deref()).await?;
        let household = self
            .store()
            .get_household(request.household_id)
            .await?
            .filter(|h| h.path.building == Some(building_id));
        let Some(household) = household else {
            self.identify_failed(
                request.household_id,
                None,
                request.client_addr,
                "unknown_household",
            )
            .await?;
            return Err(ServiceError::invalid("household_id", "intake.unknown_household"));
        };
        let members = self.selfservice_members(household.id).await?;
        let matched = members.iter().any(|m| {
            m.name.as_str() == name
                && m.id_number
                    .as_ref()
                    .and_then(|sealed| self.cipher().open(sealed).ok())
                    .is_some_and(|number| number.to_ascii_uppercase().ends_with(&digits))
        });
        if !matched {
            self.identify_failed(
                household.id,
                Some(&household.path),
                request.client_addr,
                "mismatch",
            )
            .await?;
            return Err(ServiceError::invalid("identity", "intake.identity_mismatch"));
        }
        let expires_at = self.now() + self.settings().intake.pass_lifetime;
        let pass = ResidentPass {
            household_id: household.id,
            path: household.path,
            members: members.iter().map(|m| m.id).collect(),
            expires_at,
        };
        let units = self.selfservice_units(building_id).await?;
        let anonymous = resident_actor(household.id, request.client_addr);
        self.audit(
            &anonymous,
            IDENTIFY_ACTION,
            Some(Target { kind: "household", id: household.id, path: Some(&household.path) }),
            "ok",
            json!({ "members": members.len() }),
        )
        .await?;
        Ok(Identified {
            pass: self.issue_pass(&pass),
            expires_at,
            household_id: household.id,
            household_label: choice(&household, &units).label,
            members: members.iter().map(member_view).collect(),
        })
    }

    /// The members of the pass's household with a health entry today (by
    /// themselves, a relative or a grid worker at the door): its "reported
    /// today" marks, so that nobody reports twice or not at all by mistake.
    pub async fn reported_today(&self, pass: &ResidentPass) -> ServiceResult<Vec<Uuid>> {
        let Some(grid) = pass.path.grid else { return Ok(Vec::new()) };
        Ok(self.store().reported_among(grid, self.today(), &pass.members).await?)
    }

    /// The household's own requests and flagged reports of the last
    /// `REQUESTS_SHOWN_DAYS` days (the tasks they made, about a member or
    /// the household), newest first, with how far each has got: so that a
    /// family that asked for medicine sees that someone is on the way.
    /// Tasks the office made about the household are not shown (a matched
    /// list's check is not the family's business).
    pub async fn household_requests(
        &self,
        pass: &ResidentPass,
    ) -> ServiceResult<Vec<HouseholdRequest>> {
        let mut subjects = pass.members.clone();
        subjects.push(pass.household_id);
        let since = self.now() - Duration::days(REQUESTS_SHOWN_DAYS);
        let resident = Source::Resident { resident_id: None }.kind_str();
        let tasks = self.store().tasks_about(&subjects, resident, since, REQUESTS_SHOWN).await?;
        let report_ids: Vec<Uuid> = tasks
            .iter()
            .filter_map(|t| t.idempotency_key.as_deref().and_then(report_of_task_key))
            .collect();
        // Purged reports are simply absent: their tasks show no reference.
        let references: HashMap<Uuid, String> = self
            .store()
            .get_reports(&report_ids)
            .await?
            .into_iter()
            .map(|r| (r.id, r.reference))
            .collect();
        Ok(tasks
            .iter()
            .map(|t| HouseholdRequest {
                category: t.category.clone(),
                reference: t
                    .idempotency_key
                    .as_deref()
                    .and_then(report_of_task_key)
                    .and_then(|id| references.get(&id).cloned()),
                progress: RequestProgress::of(t.state),
                at: t.created_at,
            })
            .collect())
    }

    /// The household's members, names masked, for a pass holder.
    pub async fn pass_members(&self, pass: &ResidentPass) -> ServiceResult<Vec<MemberView>> {
        let members = self.selfservice_members(pass.household_id).await?;
        Ok(members.iter().filter(|m| pass.members.contains(&m.id)).map(member_view).collect())
    }

    async fn identify_failed(
        &self,
        household_id: Uuid,
        path: Option<&AreaPath>,
        client_addr: Option<String>,
        reason: &str,
    ) -> ServiceResult<()> {
        let anonymous = resident_actor(household_id, client_addr);
        self.audit(
            &anonymous,
            IDENTIFY_ACTION,
            Some(Target { kind: "household", id: household_id, path }),
            "failed",
            json!({ "reason": reason }),
        )
        .await
    }

    async fn check_identify_limits(
        &self,
        household_id: Uuid,
        client_addr: Option<&str>,
    ) -> ServiceResult<()> {
        let limits = self.settings().intake.identify_limits;
        let now = self.now();
        let since = now - limits.window;
        let failures = |actor_name: Option<String>, client_addr: Option<String>| AuditCount {
            action: IDENTIFY_ACTION.into(),
            outcome: "failed".into(),
            actor_name,
            client_addr,
            since,
        };
        let mut wait_until = None;
        let by_household = self
            .store()
            .count_audit(&failures(Some(household_actor_name(household_id)), None))
            .await?;
        if by_household.count >= limits.per_household {
            wait_until = by_household.oldest.map(|t| t + limits.window);
        }
        if let Some(addr) = client_addr {
            let by_address =
                self.store().count_audit(&failures(None, Some(addr.to_owned()))).await?;
            if by_address.count >= limits.per_address {
                wait_until = wait_until.max(by_address.oldest.map(|t| t + limits.window));
            }
        }
        match wait_until {
            Some(until) if until > now => Err(ServiceError::TooManyAttempts {
                retry_after_secs: u64::try_from((until - now).num_seconds()).unwrap_or(0).max(1),
            }),
            _ => Ok(()),
        }
    }
}

/// The audit name of a self-service caller, and its test: the domain's,
/// as the retention purge rewrites it.
pub use epigrid_domain::tasks::{household_actor_name, is_household_actor_name};

/// The actor a self-service call is audited as.
pub fn resident_actor(household_id: Uuid, client_addr: Option<String>) -> Actor {
    Actor {
        user_id: None,
        username: household_actor_name(household_id),
        role: Role::Volunteer,
        // A resident reaches exactly their household's records.
        scope: None,
        client_addr,
    }
}

fn member_view(m: &ResidentRecord) -> MemberView {
    MemberView { id: m.id, masked_name: mask_name(m.name.as_str()) }
}

fn choice(h: &HouseholdRecord, units: &[(Uuid, String)]) -> HouseholdChoice {
    let unit = h
        .path
        .unit
        .and_then(|u| units.iter().find(|(id, _)| *id == u))
        .map(|(_, name)| name.clone())
        .unwrap_or_default();
    HouseholdChoice { id: h.id, label: household_label(&unit, &h.room), unit, room: h.room.clone() }
}

/// Sorts "2单元" before "10单元" and "502" before "1201".
fn natural_key(text: &str) -> (u64, String) {
    let digits: String = text.chars().take_while(char::is_ascii_digit).collect();
    (digits.parse().unwrap_or(u64::MAX), text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order_of_rooms() {
        let mut rooms = vec!["1201", "502", "10单元", "2单元", "B1"];
        rooms.sort_by_key(|r| natural_key(r));
        assert_eq!(rooms, vec!["2单元", "10单元", "502", "1201", "B1"]);
    }

    #[test]
    fn hex_decoding_agrees_with_the_hex_crate() {
        let all: Vec<u8> = (0..=255).collect();
        for text in [hex::encode(&all), hex::encode_upper(&all), String::new()] {
            assert_eq!(decode_hex(&text), hex::decode(&text).ok(), "{text}");
        }
        for bad in ["0", "abc", "0g", "g0", "zz", "0x12", "12 34", "é1", "12\u{0}0"] {
            assert_eq!(decode_hex(bad), None, "{bad:?}");
            assert!(hex::decode(bad).is_err(), "{bad:?}");
        }
    }
}
