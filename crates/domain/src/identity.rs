//! Identity documents as RULES.md §3 states them: the 18-digit resident ID
//! (GB 11643-1999), the 15-digit legacy ID (upgraded to 18), residence permits
//! for Hong Kong, Macau and Taiwan residents, the Home Return Permit, and the
//! foreigner permanent-residence card (old and new).
//!
//! An `IdDocument` can only exist in canonical form: upper-case, no spaces,
//! legacy IDs upgraded. `parse(x.as_str()) == x` for every value.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sex {
    Male,
    Female,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdDocumentKind {
    /// 居民身份证, 18 digits (15-digit legacy numbers are upgraded on parse).
    ResidentIdCard,
    /// 港澳台居民居住证: 18 digits, address code 810000/820000/830000.
    HkMacauTaiwanPermit,
    /// 港澳居民来往内地通行证 (回乡证): H or M + 8 digits, optionally + 2 digits.
    HomeReturnPermit,
    /// 外国人永久居留身份证, before 2023-12-01: 3 letters + 12 digits.
    ForeignerPermanentOld,
    /// 外国人永久居留身份证, from 2023-12-01: 18 digits starting with 9, MOD 11-2 check.
    ForeignerPermanentNew,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdDocument {
    kind: IdDocumentKind,
    number: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdDocumentError {
    #[error("identity document is empty")]
    Empty,
    #[error("not a recognised identity document format")]
    UnknownFormat,
    #[error("check character should be {expected}")]
    BadChecksum { expected: char },
    #[error("birth date in the number is not a real date")]
    BadBirthDate,
    #[error("birth date in the number is in the future")]
    FutureBirthDate,
}

impl crate::ReasonCode for IdDocumentError {
    fn code(&self) -> &'static str {
        match self {
            Self::Empty => "id.empty",
            Self::UnknownFormat => "id.format",
            Self::BadChecksum { .. } => "id.checksum",
            Self::BadBirthDate => "id.birth_date",
            Self::FutureBirthDate => "id.future_birth_date",
        }
    }
}

impl IdDocument {
    /// Parses any supported document, detecting its kind. Surrounding spaces
    /// are ignored; a lower-case `x` check character is accepted. `today` is
    /// passed in (not read from a clock) so that this stays pure.
    pub fn parse(input: &str, today: NaiveDate) -> Result<Self, IdDocumentError> {
        todo!("{input} {today}")
    }

    pub fn kind(&self) -> IdDocumentKind {
        self.kind
    }

    /// The canonical number.
    pub fn as_str(&self) -> &str {
        &self.number
    }

    /// Birth date carried in the number (resident ID and HMT permit), if any.
    pub fn birth_date(&self) -> Option<NaiveDate> {
        todo!()
    }

    /// Sex carried in the number (odd sequence = male), if any.
    pub fn sex(&self) -> Option<Sex> {
        todo!()
    }

    /// The part of the number people are matched on: the first 9 characters
    /// of a Home Return Permit (the 2-digit suffix counts re-issues), the whole
    /// number otherwise. The blind index is computed over this.
    pub fn match_key(&self) -> &str {
        todo!()
    }

    /// Masked for display (RULES.md §4): `370102********1234`.
    pub fn masked(&self) -> String {
        todo!()
    }
}

impl std::fmt::Display for IdDocument {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.number)
    }
}

/// The MOD 11-2 check character of the first 17 digits (GB 11643-1999).
pub fn check_character(first17: &[u8; 17]) -> char {
    todo!("{first17:?}")
}

/// Upgrades a 15-digit legacy ID to 18 digits: insert "19" after the address
/// code and append the check character.
pub fn upgrade_legacy_id(legacy15: &str) -> Option<String> {
    todo!("{legacy15}")
}
