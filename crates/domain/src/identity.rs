//! Identity documents as RULES.md §3 states them: the 18-digit resident ID
//! (GB 11643-1999), the 15-digit legacy ID (upgraded to 18), residence permits
//! for Hong Kong, Macau and Taiwan residents, the Home Return Permit, and the
//! foreigner permanent-residence card (old and new).
//!
//! An `IdDocument` can only exist in canonical form: upper-case, no spaces,
//! legacy IDs upgraded. `parse(x.as_str()) == x` for every value.

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Sex {
    Male,
    Female,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
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

/// GB 11643-1999 weights for the first 17 digits.
const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/// Check character for each value of the weighted sum mod 11.
const CHECK_CHARS: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];
/// Address codes the residence permits for HK, Macau and Taiwan residents use.
const HMT_ADDRESS_CODES: [&str; 3] = ["810000", "820000", "830000"];
/// Nobody alive (or recently dead) was born earlier; an older year in a number
/// is a typing error, not a centenarian.
const EARLIEST_BIRTH_YEAR: i32 = 1870;

impl IdDocument {
    /// Parses any supported document, detecting its kind. Surrounding spaces
    /// are ignored; a lower-case `x` check character is accepted. `today` is
    /// passed in (not read from a clock) so that this stays pure.
    pub fn parse(input: &str, today: NaiveDate) -> Result<Self, IdDocumentError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(IdDocumentError::Empty);
        }
        // Every supported format is ASCII; checking once lets the rest index bytes.
        if !s.is_ascii() {
            return Err(IdDocumentError::UnknownFormat);
        }
        let b = s.as_bytes();
        let all_digits = |bytes: &[u8]| bytes.iter().all(u8::is_ascii_digit);

        match b.len() {
            18 if all_digits(&b[..17])
                && (b[17].is_ascii_digit() || b[17] == b'X' || b[17] == b'x') =>
            {
                Self::parse_18(&s.to_ascii_uppercase(), today)
            }
            15 if all_digits(b) => {
                let date = legacy_birth_date(s).ok_or(IdDocumentError::BadBirthDate)?;
                if date > today {
                    return Err(IdDocumentError::FutureBirthDate);
                }
                let number = upgrade_legacy_id(s).ok_or(IdDocumentError::BadBirthDate)?;
                // The kind follows from the canonical 18-digit number, as for
                // any 18-digit input, so that parsing `as_str()` gives the same
                // document back (found by fuzzing: a legacy number with the
                // address code 830000 came back as an HMT permit).
                Self::parse_18(&number, today)
            }
            15 if b[..3].iter().all(u8::is_ascii_alphabetic) && all_digits(&b[3..]) => Ok(Self {
                kind: IdDocumentKind::ForeignerPermanentOld,
                number: s.to_ascii_uppercase(),
            }),
            9 | 11 if matches!(b[0], b'H' | b'h' | b'M' | b'm') && all_digits(&b[1..]) => {
                Ok(Self { kind: IdDocumentKind::HomeReturnPermit, number: s.to_ascii_uppercase() })
            }
            _ => Err(IdDocumentError::UnknownFormat),
        }
    }

    /// `number` is 17 ASCII digits plus a digit or upper-case `X`.
    fn parse_18(number: &str, today: NaiveDate) -> Result<Self, IdDocumentError> {
        let b = number.as_bytes();
        let mut first17 = [0u8; 17];
        first17.copy_from_slice(&b[..17]);
        let expected = check_character(&first17);
        if char::from(b[17]) != expected {
            return Err(IdDocumentError::BadChecksum { expected });
        }
        let kind = if b[0] == b'9' {
            IdDocumentKind::ForeignerPermanentNew
        } else if HMT_ADDRESS_CODES.contains(&&number[..6]) {
            IdDocumentKind::HkMacauTaiwanPermit
        } else {
            // The address code is deliberately not looked up: abolished codes
            // stay in people's numbers for life (RULES.md §3.1).
            IdDocumentKind::ResidentIdCard
        };
        if kind != IdDocumentKind::ForeignerPermanentNew {
            let date = birth_date_18(number).ok_or(IdDocumentError::BadBirthDate)?;
            if date.year() < EARLIEST_BIRTH_YEAR {
                return Err(IdDocumentError::BadBirthDate);
            }
            if date > today {
                return Err(IdDocumentError::FutureBirthDate);
            }
        }
        Ok(Self { kind, number: number.to_owned() })
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
        if self.carries_birth_date_and_sex() { birth_date_18(&self.number) } else { None }
    }

    /// Sex carried in the number (odd sequence = male), if any.
    pub fn sex(&self) -> Option<Sex> {
        if !self.carries_birth_date_and_sex() {
            return None;
        }
        let digit = self.number.as_bytes()[16].wrapping_sub(b'0');
        Some(if digit % 2 == 1 { Sex::Male } else { Sex::Female })
    }

    /// The part of the number people are matched on: the first 9 characters
    /// of a Home Return Permit (the 2-digit suffix counts re-issues), the whole
    /// number otherwise. The blind index is computed over this.
    pub fn match_key(&self) -> &str {
        match self.kind {
            IdDocumentKind::HomeReturnPermit => &self.number[..9],
            _ => &self.number,
        }
    }

    /// Masked for display (RULES.md §4): `370102********1234`.
    pub fn masked(&self) -> String {
        // The ends let staff tell two people's documents apart at a glance,
        // while the birth date and sequence, which identify a person, are
        // hidden. Shorter documents have no address part to keep.
        if self.number.len() == 18 {
            crate::mask::mask_middle(&self.number, 6, 4)
        } else {
            crate::mask::mask_middle(&self.number, 1, 3)
        }
    }

    fn carries_birth_date_and_sex(&self) -> bool {
        matches!(self.kind, IdDocumentKind::ResidentIdCard | IdDocumentKind::HkMacauTaiwanPermit)
    }
}

impl std::fmt::Display for IdDocument {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.number)
    }
}

/// The MOD 11-2 check character of the first 17 digits (GB 11643-1999).
///
/// `first17` holds ASCII digits, as `str::as_bytes` gives them. Digit values
/// 0–9 are accepted too: the two ranges cannot be confused, and callers that
/// build numbers arithmetically should not have to convert back and forth.
pub fn check_character(first17: &[u8; 17]) -> char {
    let sum: u32 = first17
        .iter()
        .zip(WEIGHTS)
        .map(|(&byte, weight)| {
            let digit = if byte.is_ascii_digit() { byte - b'0' } else { byte };
            u32::from(digit) * weight
        })
        .sum();
    CHECK_CHARS[(sum % 11) as usize]
}

/// Upgrades a 15-digit legacy ID to 18 digits: insert "19" after the address
/// code and append the check character.
///
/// `None` unless the input is exactly 15 ASCII digits whose birth date
/// (19YYMMDD) is a real date, so that `Some` is always a valid resident ID.
pub fn upgrade_legacy_id(legacy15: &str) -> Option<String> {
    let b = legacy15.as_bytes();
    if b.len() != 15 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    legacy_birth_date(legacy15)?;
    let mut first17 = [0u8; 17];
    first17[..6].copy_from_slice(&b[..6]);
    first17[6..8].copy_from_slice(b"19");
    first17[8..].copy_from_slice(&b[6..]);
    let check = check_character(&first17);
    let mut upgraded: String = first17.iter().map(|&d| char::from(d)).collect();
    upgraded.push(check);
    Some(upgraded)
}

/// Birth date at positions 7–14 of an 18-character number of ASCII digits.
fn birth_date_18(number: &str) -> Option<NaiveDate> {
    date_from_digits(number.get(6..10)?, number.get(10..12)?, number.get(12..14)?)
}

/// Birth date 19YYMMDD of a 15-digit legacy number: every legacy number was
/// issued to someone born in the twentieth century.
fn legacy_birth_date(number: &str) -> Option<NaiveDate> {
    let year = format!("19{}", number.get(6..8)?);
    date_from_digits(&year, number.get(8..10)?, number.get(10..12)?)
}

fn date_from_digits(year: &str, month: &str, day: &str) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(year.parse().ok()?, month.parse().ok()?, day.parse().ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ReasonCode;
    use proptest::prelude::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2024, 6, 1).unwrap()
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn parse(input: &str) -> Result<IdDocument, IdDocumentError> {
        IdDocument::parse(input, today())
    }

    /// Appends the correct check character to 17 digits.
    fn with_check(first17: &str) -> String {
        let bytes: [u8; 17] = first17.as_bytes().try_into().unwrap();
        format!("{first17}{}", check_character(&bytes))
    }

    #[test]
    fn rules_examples_are_valid_with_their_sex_and_birth_date() {
        for (number, sex, birth) in [
            ("11010519491231002X", Sex::Female, date(1949, 12, 31)),
            ("440524188001010014", Sex::Male, date(1880, 1, 1)),
            ("370101190102039973", Sex::Male, date(1901, 2, 3)),
            ("34052419800101001X", Sex::Male, date(1980, 1, 1)),
        ] {
            let doc = parse(number).unwrap();
            assert_eq!(doc.kind(), IdDocumentKind::ResidentIdCard, "{number}");
            assert_eq!(doc.as_str(), number);
            assert_eq!(doc.sex(), Some(sex), "{number}");
            assert_eq!(doc.birth_date(), Some(birth), "{number}");
            assert_eq!(doc.match_key(), number);
        }
    }

    #[test]
    fn rules_invalid_example_fails_its_checksum() {
        assert_eq!(
            parse("110101202311012171"),
            Err(IdDocumentError::BadChecksum { expected: '6' })
        );
    }

    #[test]
    fn abolished_address_code_is_accepted() {
        // 440524 (Chaoyang County, Guangdong) no longer exists in GB/T 2260.
        assert!(parse("440524188001010014").is_ok());
        assert!(parse(&with_check("00000019800101001")).is_ok());
    }

    #[test]
    fn lower_case_x_and_surrounding_space_are_normalised() {
        let doc = parse("  11010519491231002x\n").unwrap();
        assert_eq!(doc.as_str(), "11010519491231002X");
        assert_eq!(doc.to_string(), "11010519491231002X");
    }

    #[test]
    fn birth_date_must_be_real() {
        assert_eq!(parse(&with_check("11010519900230001")), Err(IdDocumentError::BadBirthDate));
        assert_eq!(parse(&with_check("11010519901301001")), Err(IdDocumentError::BadBirthDate));
        assert_eq!(parse(&with_check("11010500000101001")), Err(IdDocumentError::BadBirthDate));
        assert_eq!(parse(&with_check("11010518691231001")), Err(IdDocumentError::BadBirthDate));
        assert!(parse(&with_check("11010518700101001")).is_ok());
        assert!(parse(&with_check("11010520000229001")).is_ok(), "2000 was a leap year");
    }

    #[test]
    fn birth_date_must_not_be_after_today() {
        assert!(parse(&with_check("11010520240601001")).is_ok(), "born today");
        assert_eq!(parse(&with_check("11010520240602001")), Err(IdDocumentError::FutureBirthDate));
        assert_eq!(parse(&with_check("81000020300101001")), Err(IdDocumentError::FutureBirthDate));
    }

    #[test]
    fn legacy_id_is_upgraded_to_18_digits() {
        assert_eq!(upgrade_legacy_id("340524800101001").as_deref(), Some("34052419800101001X"));
        let doc = parse(" 340524800101001 ").unwrap();
        assert_eq!(doc.kind(), IdDocumentKind::ResidentIdCard);
        assert_eq!(doc.as_str(), "34052419800101001X");
        assert_eq!(doc.birth_date(), Some(date(1980, 1, 1)));
        assert_eq!(doc.sex(), Some(Sex::Male));
        assert_eq!(parse(doc.as_str()), Ok(doc));
    }

    #[test]
    fn upgraded_legacy_ids_round_trip_whatever_their_address_code() {
        // Regressions from the fuzzer: the upgraded number decides the kind.
        for legacy in ["830000100116788", "810000800101001", "910000800101001"] {
            let doc = parse(legacy).unwrap();
            assert_eq!(parse(doc.as_str()), Ok(doc.clone()), "{legacy}");
        }
    }

    #[test]
    fn legacy_id_needs_a_real_birth_date() {
        assert_eq!(parse("340524800230001"), Err(IdDocumentError::BadBirthDate));
        assert_eq!(upgrade_legacy_id("340524800230001"), None);
        assert_eq!(upgrade_legacy_id("34052480010100"), None);
        assert_eq!(upgrade_legacy_id("34052480010100A"), None);
        assert_eq!(upgrade_legacy_id("3405248001010011"), None);
    }

    #[test]
    fn hk_macau_taiwan_permits_are_recognised_by_address_code() {
        for (first17, sex) in [
            ("81000019900101002", Sex::Female),
            ("82000019851231011", Sex::Male),
            ("83000020010704020", Sex::Female),
        ] {
            let number = with_check(first17);
            let doc = parse(&number).unwrap();
            assert_eq!(doc.kind(), IdDocumentKind::HkMacauTaiwanPermit, "{number}");
            assert_eq!(doc.sex(), Some(sex));
            assert!(doc.birth_date().is_some());
            assert_eq!(doc.match_key(), number);
        }
        // Only the exact codes: 810100 is an ordinary (if unassigned) address.
        let doc = parse(&with_check("81010019900101002")).unwrap();
        assert_eq!(doc.kind(), IdDocumentKind::ResidentIdCard);
    }

    #[test]
    fn hmt_permit_checksum_is_enforced() {
        let number = with_check("81000019900101002");
        let wrong = if number.ends_with('1') { "0" } else { "1" };
        let tampered = format!("{}{wrong}", &number[..17]);
        assert!(matches!(parse(&tampered), Err(IdDocumentError::BadChecksum { .. })));
    }

    #[test]
    fn home_return_permits_match_on_their_first_nine_characters() {
        let h = parse("H12345678").unwrap();
        assert_eq!(h.kind(), IdDocumentKind::HomeReturnPermit);
        assert_eq!(h.match_key(), "H12345678");
        assert_eq!(h.sex(), None);
        assert_eq!(h.birth_date(), None);

        let m = parse("m1234567801").unwrap();
        assert_eq!(m.as_str(), "M1234567801");
        assert_eq!(m.match_key(), "M12345678");
        let reissued = parse("M1234567802").unwrap();
        assert_eq!(m.match_key(), reissued.match_key());
    }

    #[test]
    fn malformed_home_return_permits_are_unknown() {
        for input in ["H1234567", "H123456789", "H123456780123", "X12345678", "HH2345678"] {
            assert_eq!(parse(input), Err(IdDocumentError::UnknownFormat), "{input}");
        }
    }

    #[test]
    fn old_foreigner_card_is_upper_cased() {
        let doc = parse("usa123456789012").unwrap();
        assert_eq!(doc.kind(), IdDocumentKind::ForeignerPermanentOld);
        assert_eq!(doc.as_str(), "USA123456789012");
        assert_eq!(doc.match_key(), "USA123456789012");
        assert_eq!(doc.sex(), None);
        assert_eq!(parse("US1234567890123"), Err(IdDocumentError::UnknownFormat));
        assert_eq!(parse("USAB23456789012"), Err(IdDocumentError::UnknownFormat));
    }

    #[test]
    fn new_foreigner_card_starts_with_9_and_is_checked() {
        let number = with_check("93115620231201001");
        let doc = parse(&number).unwrap();
        assert_eq!(doc.kind(), IdDocumentKind::ForeignerPermanentNew);
        assert_eq!(doc.sex(), None, "its layout is not defined in RULES.md");
        assert_eq!(doc.birth_date(), None);
        // No birth-date check: positions 7–14 need not be a date.
        assert!(parse(&with_check("91234599999999999")).is_ok());
        let expected = number.chars().last().unwrap();
        let wrong = if expected == '0' { '1' } else { '0' };
        assert_eq!(
            parse(&format!("{}{wrong}", &number[..17])),
            Err(IdDocumentError::BadChecksum { expected })
        );
    }

    #[test]
    fn empty_and_unknown_inputs() {
        assert_eq!(parse(""), Err(IdDocumentError::Empty));
        assert_eq!(parse(" \t "), Err(IdDocumentError::Empty));
        for input in [
            "1101051949123100",                     // 16 digits
            "11010519491231002Y",                   // bad check character
            "110105 19491231002X",                  // inner space
            "1101051949123100X2",                   // X not last
            "１１０１０５１９４９１２３１００２Ｘ", // full-width
            "abc",
        ] {
            assert_eq!(parse(input), Err(IdDocumentError::UnknownFormat), "{input}");
        }
    }

    #[test]
    fn masking_keeps_the_ends_and_the_length() {
        assert_eq!(parse("11010519491231002X").unwrap().masked(), "110105********002X");
        assert_eq!(parse("H12345678").unwrap().masked(), "H*****678");
        assert_eq!(parse("M1234567801").unwrap().masked(), "M*******801");
        assert_eq!(parse("USA123456789012").unwrap().masked(), "U***********012");
        let new_card = parse(&with_check("93115620231201001")).unwrap();
        assert_eq!(new_card.masked().len(), 18);
        assert!(new_card.masked().starts_with("931156********"));
    }

    #[test]
    fn check_character_accepts_ascii_digits_and_digit_values() {
        let ascii: [u8; 17] = *b"11010519491231002";
        let values = ascii.map(|b| b - b'0');
        assert_eq!(check_character(&ascii), 'X');
        assert_eq!(check_character(&values), 'X');
    }

    #[test]
    fn errors_have_stable_reason_codes() {
        assert_eq!(IdDocumentError::Empty.code(), "id.empty");
        assert_eq!(IdDocumentError::BadChecksum { expected: 'X' }.code(), "id.checksum");
        assert_eq!(IdDocumentError::FutureBirthDate.code(), "id.future_birth_date");
    }

    fn birth_dates() -> impl Strategy<Value = NaiveDate> {
        let first = date(1870, 1, 1);
        let span = (today() - first).num_days();
        (0..=span).prop_map(move |days| first + chrono::Duration::days(days))
    }

    fn first17(address: u32, birth: NaiveDate, sequence: u16) -> String {
        format!("{address:06}{}{sequence:03}", birth.format("%Y%m%d"))
    }

    proptest! {
        #[test]
        fn valid_resident_ids_are_accepted(
            address in 110_000u32..=659_999, birth in birth_dates(), sequence in 0u16..=999,
        ) {
            let number = with_check(&first17(address, birth, sequence));
            let doc = parse(&number).unwrap();
            prop_assert_eq!(doc.kind(), IdDocumentKind::ResidentIdCard);
            prop_assert_eq!(doc.birth_date(), Some(birth));
            let sex = if sequence % 2 == 1 { Sex::Male } else { Sex::Female };
            prop_assert_eq!(doc.sex(), Some(sex));
            prop_assert_eq!(parse(doc.as_str()), Ok(doc.clone()));
            prop_assert_eq!(parse(&number.to_lowercase()), Ok(doc));
        }

        #[test]
        fn valid_hmt_permits_round_trip(
            address in prop::sample::select(vec![810_000u32, 820_000, 830_000]),
            birth in birth_dates(), sequence in 0u16..=999,
        ) {
            let doc = parse(&with_check(&first17(address, birth, sequence))).unwrap();
            prop_assert_eq!(doc.kind(), IdDocumentKind::HkMacauTaiwanPermit);
            prop_assert_eq!(doc.birth_date(), Some(birth));
            prop_assert_eq!(parse(doc.as_str()), Ok(doc));
        }

        #[test]
        fn any_single_digit_change_breaks_the_checksum(
            address in 110_000u32..=659_999, birth in birth_dates(), sequence in 0u16..=999,
            position in 0usize..17, shift in 1u8..=9,
        ) {
            let number = with_check(&first17(address, birth, sequence));
            let mut bytes = number.into_bytes();
            bytes[position] = b'0' + (bytes[position] - b'0' + shift) % 10;
            let changed = String::from_utf8(bytes).unwrap();
            prop_assert!(
                matches!(parse(&changed), Err(IdDocumentError::BadChecksum { .. })),
                "{} was accepted", changed
            );
        }

        #[test]
        fn legacy_ids_upgrade_and_round_trip(
            address in 110_000u32..=659_999,
            birth in (0i64..36_524).prop_map(|d| date(1900, 1, 1) + chrono::Duration::days(d)),
            sequence in 0u16..=999,
        ) {
            let legacy = format!("{address:06}{}{sequence:03}", birth.format("%y%m%d"));
            let doc = parse(&legacy).unwrap();
            prop_assert_eq!(doc.kind(), IdDocumentKind::ResidentIdCard);
            prop_assert_eq!(doc.as_str(), upgrade_legacy_id(&legacy).unwrap());
            prop_assert_eq!(&doc.as_str()[..6], &legacy[..6]);
            prop_assert_eq!(&doc.as_str()[8..17], &legacy[6..]);
            prop_assert_eq!(doc.birth_date(), Some(birth));
            let sex = if sequence % 2 == 1 { Sex::Male } else { Sex::Female };
            prop_assert_eq!(doc.sex(), Some(sex));
            prop_assert_eq!(parse(doc.as_str()), Ok(doc));
        }

        #[test]
        fn new_foreigner_cards_round_trip(rest in "[0-9]{16}") {
            let doc = parse(&with_check(&format!("9{rest}"))).unwrap();
            prop_assert_eq!(doc.kind(), IdDocumentKind::ForeignerPermanentNew);
            prop_assert_eq!(doc.sex(), None);
            prop_assert_eq!(parse(doc.as_str()), Ok(doc));
        }

        #[test]
        fn home_return_permits_round_trip(input in "[HhMm][0-9]{8}([0-9]{2})?") {
            let doc = parse(&input).unwrap();
            prop_assert_eq!(doc.kind(), IdDocumentKind::HomeReturnPermit);
            prop_assert_eq!(doc.as_str(), input.to_uppercase());
            prop_assert_eq!(doc.match_key(), &input.to_uppercase()[..9]);
            prop_assert_eq!(parse(doc.as_str()), Ok(doc));
        }

        #[test]
        fn old_foreigner_cards_round_trip(input in "[A-Za-z]{3}[0-9]{12}") {
            let doc = parse(&input).unwrap();
            prop_assert_eq!(doc.kind(), IdDocumentKind::ForeignerPermanentOld);
            prop_assert_eq!(doc.as_str(), input.to_uppercase());
            prop_assert_eq!(parse(doc.as_str()), Ok(doc));
        }

        #[test]
        fn arbitrary_input_never_panics(input in "\\PC{0,30}") {
            if let Ok(doc) = parse(&input) {
                let _ = (doc.masked(), doc.sex(), doc.birth_date(), doc.match_key());
            }
        }

        #[test]
        fn near_miss_input_never_panics(input in "[0-9XxHhMmA-Z \t]{0,20}") {
            if let Ok(doc) = parse(&input) {
                let _ = (doc.masked(), doc.sex(), doc.birth_date(), doc.match_key());
                prop_assert_eq!(parse(doc.as_str()), Ok(doc));
            }
        }
    }
}
