//! Statistical division codes (RULES.md §1.3) and our grid code.
//!
//! - `SubDistrictCode`: 9 digits = 6-digit GB/T 2260 county code + 3-digit
//!   township (001–099 街道, 100–199 镇, 200–399 乡).
//! - `CommunityCode`: 12 digits = sub-district code + 3-digit village level
//!   (001–199 居委会/社区, 200–399 村委会).
//! - `GridCode`: community code + 2-digit grid sequence (01–99), 14 digits.
//!   These are exactly positions 7–20 of the CJ/T 349-2010 grid code, whose
//!   first 6 positions (object type) are a deployment setting, not ours.
//!
//! The county part is never checked against today's GB/T 2260 table: codes
//! change, and a code table (not the digits) decides what a unit is.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SubDistrictCode(String);

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CommunityCode(String);

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct GridCode(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    #[error("sub-district code must be 9 digits")]
    SubDistrictFormat,
    #[error("township part must be 001-399")]
    Township,
    #[error("community code must be 12 digits")]
    CommunityFormat,
    #[error("village-level part must be 001-399")]
    VillageLevel,
    #[error("grid code must be 14 digits")]
    GridFormat,
    #[error("grid sequence must be 01-99")]
    GridSequence,
    #[error("code does not lie under its parent's code")]
    NotUnderParent,
}

impl crate::ReasonCode for CodeError {
    fn code(&self) -> &'static str {
        match self {
            Self::SubDistrictFormat => "code.sub_district_format",
            Self::Township => "code.township",
            Self::CommunityFormat => "code.community_format",
            Self::VillageLevel => "code.village_level",
            Self::GridFormat => "code.grid_format",
            Self::GridSequence => "code.grid_sequence",
            Self::NotUnderParent => "code.not_under_parent",
        }
    }
}

/// What the township digits say a sub-district-level unit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TownshipKind {
    Street,
    Town,
    Township,
}

/// What the village-level digits say a community-level unit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VillageKind {
    ResidentsCommittee,
    VillagersCommittee,
}

impl SubDistrictCode {
    pub fn parse(input: &str) -> Result<Self, CodeError> {
        todo!("{input}")
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn township_kind(&self) -> TownshipKind {
        todo!()
    }
}

impl CommunityCode {
    pub fn parse(input: &str) -> Result<Self, CodeError> {
        todo!("{input}")
    }
    /// Builds the code of the `village`th unit (1–399) under a sub-district.
    pub fn under(parent: &SubDistrictCode, village: u16) -> Result<Self, CodeError> {
        todo!("{parent:?}{village}")
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn sub_district(&self) -> SubDistrictCode {
        todo!()
    }
    pub fn village_kind(&self) -> VillageKind {
        todo!()
    }
}

impl GridCode {
    pub fn parse(input: &str) -> Result<Self, CodeError> {
        todo!("{input}")
    }
    pub fn under(parent: &CommunityCode, sequence: u8) -> Result<Self, CodeError> {
        todo!("{parent:?}{sequence}")
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn community(&self) -> CommunityCode {
        todo!()
    }
    pub fn sequence(&self) -> u8 {
        todo!()
    }
}

macro_rules! string_conversions {
    ($($ty:ident),*) => {$(
        impl TryFrom<String> for $ty {
            type Error = CodeError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(&value)
            }
        }
        impl From<$ty> for String {
            fn from(value: $ty) -> String {
                value.0
            }
        }
        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    )*};
}
string_conversions!(SubDistrictCode, CommunityCode, GridCode);
