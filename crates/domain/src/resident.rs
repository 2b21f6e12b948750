//! The person-level parts of the registry: names, relation to the head of the
//! household, registered or floating residence, and key-group tags.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A person's name as written on their document: trimmed, 1–50 characters,
/// no control characters. Chinese names, minority names with `·`, and Latin
/// names with spaces are all accepted.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PersonName(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("name is empty")]
    Empty,
    #[error("name is longer than 50 characters")]
    TooLong,
    #[error("name contains control characters")]
    ControlCharacter,
}

impl crate::ReasonCode for NameError {
    fn code(&self) -> &'static str {
        match self {
            Self::Empty => "name.empty",
            Self::TooLong => "name.too_long",
            Self::ControlCharacter => "name.control_character",
        }
    }
}

impl PersonName {
    pub const MAX_CHARS: usize = 50;

    pub fn parse(input: &str) -> Result<Self, NameError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(NameError::Empty);
        }
        if trimmed.chars().count() > Self::MAX_CHARS {
            return Err(NameError::TooLong);
        }
        if trimmed.chars().any(char::is_control) {
            return Err(NameError::ControlCharacter);
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn masked(&self) -> String {
        crate::mask::mask_name(&self.0)
    }
}

impl TryFrom<String> for PersonName {
    type Error = NameError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<PersonName> for String {
    fn from(value: PersonName) -> String {
        value.0
    }
}

/// 与户主关系, following the common categories of the household register.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Relation {
    Head,
    Spouse,
    Child,
    ChildInLaw,
    Grandchild,
    Parent,
    ParentInLaw,
    Grandparent,
    Sibling,
    Tenant,
    Other,
}

impl Relation {
    pub const ALL: [Relation; 11] = [
        Relation::Head,
        Relation::Spouse,
        Relation::Child,
        Relation::ChildInLaw,
        Relation::Grandchild,
        Relation::Parent,
        Relation::ParentInLaw,
        Relation::Grandparent,
        Relation::Sibling,
        Relation::Tenant,
        Relation::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Relation::Head => "head",
            Relation::Spouse => "spouse",
            Relation::Child => "child",
            Relation::ChildInLaw => "child_in_law",
            Relation::Grandchild => "grandchild",
            Relation::Parent => "parent",
            Relation::ParentInLaw => "parent_in_law",
            Relation::Grandparent => "grandparent",
            Relation::Sibling => "sibling",
            Relation::Tenant => "tenant",
            Relation::Other => "other",
        }
    }

    pub fn parse(input: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == input)
    }
}

/// 户籍 or 流动: a floating resident records when they arrived and from where.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Residence {
    Registered,
    Floating {
        arrived_on: NaiveDate,
        /// Where they came from, as written (a place name or a division code).
        origin: String,
    },
}

impl Residence {
    pub fn is_floating(&self) -> bool {
        matches!(self, Residence::Floating { .. })
    }
}

/// A key-group tag: a lower-case slug such as `elderly_alone`. The built-in
/// tags below are always known; deployments may configure more, and the
/// service checks a tag against that catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(try_from = "String", into = "String")]
pub struct Tag(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a tag is 1-32 characters of a-z, 0-9 and _")]
pub struct TagError;

impl crate::ReasonCode for TagError {
    fn code(&self) -> &'static str {
        "tag.format"
    }
}

impl Tag {
    pub const ELDERLY_ALONE: &'static str = "elderly_alone";
    pub const AGED_80_PLUS: &'static str = "aged_80_plus";
    pub const CHRONIC_DISEASE: &'static str = "chronic_disease";
    pub const DISABLED: &'static str = "disabled";
    pub const PREGNANT: &'static str = "pregnant";
    pub const INFANT: &'static str = "infant";

    pub const BUILT_IN: [&'static str; 6] = [
        Self::ELDERLY_ALONE,
        Self::AGED_80_PLUS,
        Self::CHRONIC_DISEASE,
        Self::DISABLED,
        Self::PREGNANT,
        Self::INFANT,
    ];

    pub fn parse(input: &str) -> Result<Self, TagError> {
        let valid = (1..=32).contains(&input.len())
            && input.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if valid { Ok(Self(input.to_owned())) } else { Err(TagError) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Tag {
    type Error = TagError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Tag> for String {
    fn from(value: Tag) -> String {
        value.0
    }
}

/// Age in whole years on `on`.
pub fn age_on(birth_date: NaiveDate, on: NaiveDate) -> u32 {
    on.years_since(birth_date).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_keep_their_punctuation() {
        assert_eq!(PersonName::parse("  张三 ").unwrap().as_str(), "张三");
        assert_eq!(PersonName::parse("买买提·艾力").unwrap().as_str(), "买买提·艾力");
        assert_eq!(PersonName::parse("John Smith").unwrap().as_str(), "John Smith");
    }

    #[test]
    fn name_limits() {
        assert_eq!(PersonName::parse(" \t"), Err(NameError::Empty));
        assert_eq!(PersonName::parse("张\n三"), Err(NameError::ControlCharacter));
        // The limit counts characters: 50 Chinese characters are 150 bytes.
        assert!(PersonName::parse(&"张".repeat(50)).is_ok());
        assert_eq!(PersonName::parse(&"张".repeat(51)), Err(NameError::TooLong));
    }

    #[test]
    fn names_mask_through_the_shared_rule() {
        assert_eq!(PersonName::parse("张小三").unwrap().masked(), "张*三");
        assert_eq!(PersonName::parse("张三").unwrap().masked(), "张*");
    }

    #[test]
    fn names_deserialise_through_validation() {
        let name: PersonName = serde_json::from_str("\" 李四 \"").unwrap();
        assert_eq!(name.as_str(), "李四");
        assert!(serde_json::from_str::<PersonName>("\"  \"").is_err());
    }

    #[test]
    fn tags_are_lower_case_slugs() {
        for built_in in Tag::BUILT_IN {
            assert_eq!(Tag::parse(built_in).unwrap().as_str(), built_in);
        }
        assert!(Tag::parse(&"a".repeat(32)).is_ok());
        for bad in ["", "Elderly", "elderly alone", "elderly-alone", "老人", &"a".repeat(33)] {
            assert_eq!(Tag::parse(bad), Err(TagError), "{bad:?}");
        }
        assert!(serde_json::from_str::<Tag>("\"Bad Tag\"").is_err());
    }

    #[test]
    fn age_counts_whole_years() {
        let birth = NaiveDate::from_ymd_opt(1944, 6, 2).unwrap();
        assert_eq!(age_on(birth, NaiveDate::from_ymd_opt(2024, 6, 1).unwrap()), 79);
        assert_eq!(age_on(birth, NaiveDate::from_ymd_opt(2024, 6, 2).unwrap()), 80);
        assert_eq!(age_on(birth, NaiveDate::from_ymd_opt(1940, 1, 1).unwrap()), 0);
    }

    #[test]
    fn relations_round_trip_through_their_names() {
        for relation in Relation::ALL {
            assert_eq!(Relation::parse(relation.as_str()), Some(relation));
        }
        assert_eq!(Relation::parse("boss"), None);
    }
}
