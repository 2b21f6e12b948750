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

/// Township parts 001–399 are assigned; 400 and above are not part of the
/// statistical scheme, and 000 denotes the county itself.
const TOWNSHIP_RANGE: std::ops::RangeInclusive<u16> = 1..=399;
/// Village-level parts 001–399 are ours; CJ/T 349's 601+ "merged" communities
/// are a grid-code convention, not a statistical division.
const VILLAGE_RANGE: std::ops::RangeInclusive<u16> = 1..=399;
const GRID_SEQUENCE_RANGE: std::ops::RangeInclusive<u8> = 1..=99;

fn is_ascii_digits(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_digit())
}

/// The number in a run of ASCII digits that has already been checked.
fn digits_value(s: &str) -> u16 {
    s.bytes().fold(0, |acc, b| acc * 10 + u16::from(b - b'0'))
}

impl SubDistrictCode {
    pub fn parse(input: &str) -> Result<Self, CodeError> {
        let s = input.trim();
        // A county code never starts with 0 (GB/T 2260 province codes are 11–82).
        if !is_ascii_digits(s, 9) || s.starts_with('0') {
            return Err(CodeError::SubDistrictFormat);
        }
        if !TOWNSHIP_RANGE.contains(&digits_value(&s[6..])) {
            return Err(CodeError::Township);
        }
        Ok(Self(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn township_kind(&self) -> TownshipKind {
        match digits_value(&self.0[6..]) {
            1..=99 => TownshipKind::Street,
            100..=199 => TownshipKind::Town,
            _ => TownshipKind::Township,
        }
    }
}

impl CommunityCode {
    pub fn parse(input: &str) -> Result<Self, CodeError> {
        let s = input.trim();
        if !is_ascii_digits(s, 12) {
            return Err(CodeError::CommunityFormat);
        }
        SubDistrictCode::parse(&s[..9]).map_err(|e| match e {
            CodeError::SubDistrictFormat => CodeError::CommunityFormat,
            other => other,
        })?;
        if !VILLAGE_RANGE.contains(&digits_value(&s[9..])) {
            return Err(CodeError::VillageLevel);
        }
        Ok(Self(s.to_owned()))
    }
    /// Parses a code that must lie under `parent`, as when importing a
    /// community into a known sub-district.
    pub fn parse_under(input: &str, parent: &SubDistrictCode) -> Result<Self, CodeError> {
        let code = Self::parse(input)?;
        if code.is_under(parent) { Ok(code) } else { Err(CodeError::NotUnderParent) }
    }
    /// Builds the code of the `village`th unit (1–399) under a sub-district.
    pub fn under(parent: &SubDistrictCode, village: u16) -> Result<Self, CodeError> {
        if !VILLAGE_RANGE.contains(&village) {
            return Err(CodeError::VillageLevel);
        }
        Ok(Self(format!("{}{village:03}", parent.0)))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn sub_district(&self) -> SubDistrictCode {
        SubDistrictCode(self.0[..9].to_owned())
    }
    pub fn is_under(&self, parent: &SubDistrictCode) -> bool {
        self.0.starts_with(parent.as_str())
    }
    pub fn village_kind(&self) -> VillageKind {
        match digits_value(&self.0[9..]) {
            1..=199 => VillageKind::ResidentsCommittee,
            _ => VillageKind::VillagersCommittee,
        }
    }
}

impl GridCode {
    pub fn parse(input: &str) -> Result<Self, CodeError> {
        let s = input.trim();
        if !is_ascii_digits(s, 14) {
            return Err(CodeError::GridFormat);
        }
        CommunityCode::parse(&s[..12]).map_err(|e| match e {
            CodeError::CommunityFormat => CodeError::GridFormat,
            other => other,
        })?;
        let sequence = digits_value(&s[12..]);
        if !GRID_SEQUENCE_RANGE.contains(&(sequence as u8)) {
            return Err(CodeError::GridSequence);
        }
        Ok(Self(s.to_owned()))
    }
    /// Parses a code that must lie under `parent`, as when importing a grid
    /// into a known community.
    pub fn parse_under(input: &str, parent: &CommunityCode) -> Result<Self, CodeError> {
        let code = Self::parse(input)?;
        if code.is_under(parent) { Ok(code) } else { Err(CodeError::NotUnderParent) }
    }
    pub fn under(parent: &CommunityCode, sequence: u8) -> Result<Self, CodeError> {
        if !GRID_SEQUENCE_RANGE.contains(&sequence) {
            return Err(CodeError::GridSequence);
        }
        Ok(Self(format!("{}{sequence:02}", parent.0)))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn community(&self) -> CommunityCode {
        CommunityCode(self.0[..12].to_owned())
    }
    pub fn is_under(&self, parent: &CommunityCode) -> bool {
        self.0.starts_with(parent.as_str())
    }
    pub fn sequence(&self) -> u8 {
        // Two validated digits always fit.
        digits_value(&self.0[12..]) as u8
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_street_code_and_its_children_parse() {
        let street = SubDistrictCode::parse("110105001").unwrap();
        assert_eq!(street.township_kind(), TownshipKind::Street);
        let community = CommunityCode::parse(" 110105001002 ").unwrap();
        assert_eq!(community.as_str(), "110105001002");
        assert_eq!(community.sub_district(), street);
        assert_eq!(community.village_kind(), VillageKind::ResidentsCommittee);
        let grid = GridCode::parse("11010500100207").unwrap();
        assert_eq!(grid.community(), community);
        assert_eq!(grid.sequence(), 7);
    }

    #[test]
    fn township_digits_give_the_kind_at_the_range_edges() {
        let kind = |code: &str| SubDistrictCode::parse(code).unwrap().township_kind();
        assert_eq!(kind("110105099"), TownshipKind::Street);
        assert_eq!(kind("110105100"), TownshipKind::Town);
        assert_eq!(kind("110105199"), TownshipKind::Town);
        assert_eq!(kind("110105200"), TownshipKind::Township);
        assert_eq!(kind("110105399"), TownshipKind::Township);
    }

    #[test]
    fn village_digits_give_the_kind_at_the_range_edges() {
        let kind = |code: &str| CommunityCode::parse(code).unwrap().village_kind();
        assert_eq!(kind("110105001199"), VillageKind::ResidentsCommittee);
        assert_eq!(kind("110105001200"), VillageKind::VillagersCommittee);
        assert_eq!(kind("110105001399"), VillageKind::VillagersCommittee);
    }

    #[test]
    fn sub_district_errors() {
        use CodeError::*;
        for (input, error) in [
            ("", SubDistrictFormat),
            ("11010500", SubDistrictFormat),
            ("1101050011", SubDistrictFormat),
            ("010105001", SubDistrictFormat),
            ("11010500a", SubDistrictFormat),
            ("１１０１０５００１", SubDistrictFormat),
            ("110105000", Township),
            ("110105400", Township),
            ("110105999", Township),
        ] {
            assert_eq!(SubDistrictCode::parse(input), Err(error), "{input:?}");
        }
    }

    #[test]
    fn community_errors_name_the_failing_part() {
        use CodeError::*;
        for (input, error) in [
            ("11010500100", CommunityFormat),
            ("010105001001", CommunityFormat),
            ("110105000001", Township),
            ("110105001000", VillageLevel),
            ("110105001400", VillageLevel),
        ] {
            assert_eq!(CommunityCode::parse(input), Err(error), "{input:?}");
        }
    }

    #[test]
    fn grid_errors_name_the_failing_part() {
        use CodeError::*;
        for (input, error) in [
            ("1101050010010", GridFormat),
            ("01010500100101", GridFormat),
            ("11010540000101", Township),
            ("11010500100001", VillageLevel),
            ("11010500100100", GridSequence),
        ] {
            assert_eq!(GridCode::parse(input), Err(error), "{input:?}");
        }
    }

    #[test]
    fn under_rejects_out_of_range_children() {
        let street = SubDistrictCode::parse("110105001").unwrap();
        assert_eq!(CommunityCode::under(&street, 0), Err(CodeError::VillageLevel));
        assert_eq!(CommunityCode::under(&street, 400), Err(CodeError::VillageLevel));
        let community = CommunityCode::under(&street, 399).unwrap();
        assert_eq!(community.as_str(), "110105001399");
        assert_eq!(GridCode::under(&community, 0), Err(CodeError::GridSequence));
        assert_eq!(GridCode::under(&community, 100), Err(CodeError::GridSequence));
        assert_eq!(GridCode::under(&community, 1).unwrap().as_str(), "11010500139901");
    }

    #[test]
    fn parse_under_checks_the_parent() {
        let street = SubDistrictCode::parse("110105001").unwrap();
        let other = SubDistrictCode::parse("110105002").unwrap();
        assert!(CommunityCode::parse_under("110105001003", &street).is_ok());
        assert_eq!(
            CommunityCode::parse_under("110105001003", &other),
            Err(CodeError::NotUnderParent)
        );
        let community = CommunityCode::under(&street, 3).unwrap();
        assert!(GridCode::parse_under("11010500100312", &community).is_ok());
        assert_eq!(
            GridCode::parse_under("11010500100412", &community),
            Err(CodeError::NotUnderParent)
        );
    }

    #[test]
    fn serde_goes_through_validation() {
        let grid: GridCode = serde_json::from_str("\"11010500100207\"").unwrap();
        assert_eq!(serde_json::to_string(&grid).unwrap(), "\"11010500100207\"");
        assert!(serde_json::from_str::<GridCode>("\"11010500100200\"").is_err());
        assert!(serde_json::from_str::<SubDistrictCode>("\"110105000\"").is_err());
    }

    fn sub_district_codes() -> impl Strategy<Value = SubDistrictCode> {
        (100_000u32..=999_999, 1u16..=399)
            .prop_map(|(county, township)| SubDistrictCode(format!("{county}{township:03}")))
    }

    proptest! {
        #[test]
        fn codes_round_trip_through_their_text(
            sub_district in sub_district_codes(), village in 1u16..=399, sequence in 1u8..=99,
        ) {
            prop_assert_eq!(SubDistrictCode::parse(sub_district.as_str()), Ok(sub_district.clone()));
            let community = CommunityCode::under(&sub_district, village).unwrap();
            prop_assert_eq!(CommunityCode::parse(community.as_str()), Ok(community.clone()));
            let grid = GridCode::under(&community, sequence).unwrap();
            prop_assert_eq!(GridCode::parse(grid.as_str()), Ok(grid.clone()));
            prop_assert_eq!(String::from(grid.clone()), grid.to_string());
        }

        #[test]
        fn under_builds_children_that_know_their_parents(
            sub_district in sub_district_codes(), village in 1u16..=399, sequence in 1u8..=99,
        ) {
            let community = CommunityCode::under(&sub_district, village).unwrap();
            prop_assert_eq!(community.sub_district(), sub_district.clone());
            prop_assert!(community.is_under(&sub_district));
            prop_assert_eq!(digits_value(&community.as_str()[9..]), village);
            let grid = GridCode::under(&community, sequence).unwrap();
            prop_assert_eq!(grid.community(), community.clone());
            prop_assert_eq!(grid.sequence(), sequence);
            prop_assert!(grid.is_under(&community));
        }

        #[test]
        fn arbitrary_input_never_panics(input in "\\PC{0,20}") {
            let _ = SubDistrictCode::parse(&input);
            let _ = CommunityCode::parse(&input);
            let _ = GridCode::parse(&input);
        }
    }
}
