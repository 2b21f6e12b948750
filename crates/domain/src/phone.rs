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
        todo!("{input}")
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `138****5678`
    pub fn masked(&self) -> String {
        todo!()
    }
}

impl std::fmt::Display for MobilePhone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
