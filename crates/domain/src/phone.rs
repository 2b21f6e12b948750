//! Mobile numbers (RULES.md §3.4): 11 digits matching `^1[3-9]\d{9}$`, with an
//! optional +86. Operator prefixes are deliberately not whitelisted.

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MobilePhone(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("phone number is empty")]
    Empty,
    #[error("not an 11-digit mainland mobile number")]
    Format,
}

impl crate::ReasonCode for PhoneError {
    fn code(&self) -> &'static str {
        match self {
            Self::Empty => "phone.empty",
            Self::Format => "phone.format",
        }
    }
}

impl MobilePhone {
    /// Accepts `13800138000`, `+8613800138000`, `+86 138 0013 8000`,
    /// `138-0013-8000`; stores the 11 digits.
    pub fn parse(input: &str) -> Result<Self, PhoneError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(PhoneError::Empty);
        }
        let compact: String = trimmed.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
        let national = match compact.strip_prefix("+86") {
            Some(rest) => rest,
            // Without the `+`, `86` and `0086` are only a country code when
            // what follows is itself a mobile number; otherwise they are digits.
            None => ["0086", "86"]
                .into_iter()
                .filter_map(|prefix| compact.strip_prefix(prefix))
                .find(|rest| rest.len() == 11 && rest.starts_with('1'))
                .unwrap_or(&compact),
        };
        if is_mobile_number(national) {
            Ok(Self(national.to_owned()))
        } else {
            Err(PhoneError::Format)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `138****5678`
    pub fn masked(&self) -> String {
        crate::mask::mask_middle(&self.0, 3, 4)
    }
}

/// `^1[3-9]\d{9}$`
fn is_mobile_number(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 11
        && b[0] == b'1'
        && (b'3'..=b'9').contains(&b[1])
        && b.iter().all(u8::is_ascii_digit)
}

impl std::fmt::Display for MobilePhone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parsed(input: &str) -> Result<String, PhoneError> {
        MobilePhone::parse(input).map(|p| p.as_str().to_owned())
    }

    #[test]
    fn accepts_the_documented_spellings() {
        for input in [
            "13800138000",
            "+8613800138000",
            "+86 138 0013 8000",
            "138-0013-8000",
            "  13800138000\t",
            "008613800138000",
            "8613800138000",
            "+86-138-0013-8000",
        ] {
            assert_eq!(parsed(input), Ok("13800138000".to_owned()), "{input:?}");
        }
    }

    #[test]
    fn every_second_digit_from_3_to_9_is_accepted() {
        for second in '3'..='9' {
            let number = format!("1{second}012345678");
            assert_eq!(parsed(&number), Ok(number.clone()));
        }
    }

    #[test]
    fn rejects_what_is_not_a_mainland_mobile() {
        for input in [
            "12800138000",  // second digit 2
            "1380013800",   // 10 digits
            "138001380000", // 12 digits
            "+85261234567", // Hong Kong
            "+86 12800138000",
            "010-12345678", // landline
            "1380013800a",
            "１３８００１３８０００", // full-width digits
            "---",
            "+86",
        ] {
            assert_eq!(parsed(input), Err(PhoneError::Format), "{input:?}");
        }
    }

    #[test]
    fn a_bare_86_prefix_needs_a_mobile_number_behind_it() {
        // 86 followed by 9 digits is not a prefix, and 11 digits is no mobile.
        assert_eq!(parsed("86138001380"), Err(PhoneError::Format));
        assert_eq!(parsed("0086138001380"), Err(PhoneError::Format));
    }

    #[test]
    fn empty_input_is_its_own_error() {
        assert_eq!(parsed(""), Err(PhoneError::Empty));
        assert_eq!(parsed("   "), Err(PhoneError::Empty));
    }

    #[test]
    fn masks_the_middle_four_digits() {
        let phone = MobilePhone::parse("13812345678").unwrap();
        assert_eq!(phone.masked(), "138****5678");
        assert_eq!(phone.to_string(), "13812345678");
    }

    proptest! {
        #[test]
        fn valid_numbers_round_trip(number in "1[3-9][0-9]{9}") {
            let phone = MobilePhone::parse(&number).unwrap();
            prop_assert_eq!(phone.as_str(), number.as_str());
            prop_assert_eq!(MobilePhone::parse(phone.as_str()), Ok(phone.clone()));
            let international = format!("+86 {}", number);
            prop_assert_eq!(MobilePhone::parse(&international), Ok(phone));
        }

        #[test]
        fn second_digit_0_to_2_is_rejected(number in "1[0-2][0-9]{9}") {
            prop_assert_eq!(MobilePhone::parse(&number), Err(PhoneError::Format));
        }

        #[test]
        fn arbitrary_input_never_panics(input in "\\PC{0,30}") {
            let _ = MobilePhone::parse(&input);
        }
    }
}
