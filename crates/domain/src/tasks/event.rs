//! What an event is: where it came from, what it concerns, and how urgent it
//! is. The category (see `catalogue`) says what kind of work it is.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// Where an event came from (the channels of 信息收集).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    /// A resident: the public form, a call, a neighbour at the door.
    /// `resident_id` is absent for anonymous or not-yet-registered callers.
    Resident { resident_id: Option<Uuid> },
    /// An account: usually a grid worker on patrol (网格员上报), but any staff.
    Staff { account_id: Uuid },
    /// A rule of the system, e.g. an arrival from a risk area; `rule` is the
    /// rule's stable code so the event can be traced to the policy version.
    SystemRule { rule: String },
    /// An order from above (上级交办), with the document or hotline reference.
    OrderFromAbove { reference: String },
}

impl Source {
    /// `Source::Resident { resident_id: None }` as stored (its JSON): what
    /// the retention purge writes over a named resident's source.
    pub const ANONYMOUS_RESIDENT_JSON: &'static str = r#"{"kind":"resident","resident_id":null}"#;

    /// The channel alone, for filters and statistics.
    pub fn kind_str(&self) -> &'static str {
        match self {
            Source::Resident { .. } => "resident",
            Source::Staff { .. } => "staff",
            Source::SystemRule { .. } => "system_rule",
            Source::OrderFromAbove { .. } => "order_from_above",
        }
    }
}

/// How a step taken through resident self-service names who took it: its
/// household, never a person (`household:<id>`). The retention purge
/// replaces the id with the nil UUID.
pub const HOUSEHOLD_ACTOR_PREFIX: &str = "household:";

/// The recorded name of a self-service caller: the household, never a person.
pub fn household_actor_name(household_id: Uuid) -> String {
    format!("{HOUSEHOLD_ACTOR_PREFIX}{household_id}")
}

/// Whether a recorded actor name is a self-service caller's.
pub fn is_household_actor_name(name: &str) -> bool {
    name.starts_with(HOUSEHOLD_ACTOR_PREFIX)
}

/// What an event concerns. Each id names a registry record or an area node;
/// the service resolves it to a path, which gives the task's grid and scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Subject {
    Resident(Uuid),
    Household(Uuid),
    Building(Uuid),
    /// Any other area node: a unit, a grid, a whole community.
    Area(Uuid),
}

impl Subject {
    pub fn id(self) -> Uuid {
        match self {
            Subject::Resident(id)
            | Subject::Household(id)
            | Subject::Building(id)
            | Subject::Area(id) => id,
        }
    }

    pub fn kind_str(self) -> &'static str {
        match self {
            Subject::Resident(_) => "resident",
            Subject::Household(_) => "household",
            Subject::Building(_) => "building",
            Subject::Area(_) => "area",
        }
    }
}

/// How urgent a task is. Ordered most urgent first, so sorting a list of
/// tasks by priority gives "my tasks today" in the order to do them.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Urgent,
    High,
    Normal,
    Low,
}

impl Priority {
    pub const ALL: [Priority; 4] =
        [Priority::Urgent, Priority::High, Priority::Normal, Priority::Low];

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Urgent => "urgent",
            Priority::High => "high",
            Priority::Normal => "normal",
            Priority::Low => "low",
        }
    }

    pub fn parse(input: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == input)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_sort_most_urgent_first() {
        let mut list = vec![Priority::Low, Priority::Urgent, Priority::Normal, Priority::High];
        list.sort();
        assert_eq!(list, Priority::ALL);
        for p in Priority::ALL {
            assert_eq!(Priority::parse(p.as_str()), Some(p));
            assert_eq!(serde_json::to_value(p).unwrap(), p.as_str());
        }
    }

    #[test]
    fn sources_and_subjects_serialise_as_tagged_objects() {
        let source = Source::SystemRule { rule: "arrival.from_risk_area".into() };
        let json = serde_json::to_value(&source).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"kind": "system_rule", "rule": "arrival.from_risk_area"})
        );
        assert_eq!(serde_json::from_value::<Source>(json).unwrap(), source);
        assert_eq!(source.kind_str(), "system_rule");
        let anonymous = Source::Resident { resident_id: None };
        assert_eq!(anonymous.kind_str(), "resident");
        // What the purge writes is what serde writes, and reads back.
        assert_eq!(serde_json::to_string(&anonymous).unwrap(), Source::ANONYMOUS_RESIDENT_JSON);
        assert_eq!(
            serde_json::from_str::<Source>(Source::ANONYMOUS_RESIDENT_JSON).unwrap(),
            anonymous
        );

        let id = Uuid::from_u128(42);
        let subject = Subject::Household(id);
        let json = serde_json::to_value(subject).unwrap();
        assert_eq!(json["kind"], "household");
        assert_eq!(serde_json::from_value::<Subject>(json).unwrap(), subject);
        assert_eq!(subject.id(), id);
        assert_eq!(Subject::Building(id).kind_str(), "building");
    }
}
