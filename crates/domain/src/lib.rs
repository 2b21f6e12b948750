//! The rules of epigrid as plain Rust: validated newtypes for everything that
//! crosses a boundary (identity documents, phones, statistical codes, names),
//! the area hierarchy, and who may do what where. Nothing here does IO, so
//! every rule is unit- and property-testable and shared by every front end.

pub mod access;
pub mod area;
pub mod codes;
pub mod daily_report;
pub mod identity;
pub mod import;
pub mod intake;
pub mod mask;
pub mod matching;
pub mod phone;
pub mod resident;
pub mod tasks;

pub use access::{Action, Role, Scope};
pub use area::{AreaKind, AreaPath, Boundary, GridKind};
pub use codes::{CommunityCode, GridCode, SubDistrictCode};
pub use identity::{IdDocument, IdDocumentError, IdDocumentKind, Sex};
pub use phone::{MobilePhone, PhoneError};
pub use resident::{PersonName, Relation, Residence, Tag};

/// A validation failure that names a stable, translatable reason code.
/// Front ends map `code()` to a message in the user's language.
pub trait ReasonCode {
    fn code(&self) -> &'static str;
}
