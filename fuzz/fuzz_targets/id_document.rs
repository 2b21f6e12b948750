//! The identity-document parser on arbitrary text: it must never panic, and
//! whatever it accepts must be canonical (parsing its own output gives it
//! back) with a well-formed mask.
#![no_main]

use chrono::NaiveDate;
use epigrid_domain::IdDocument;
use epigrid_domain::import::{Cell, id_text};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let today = NaiveDate::from_ymd_opt(2024, 6, 1).unwrap();
    if let Ok(doc) = IdDocument::parse(text, today) {
        assert_eq!(IdDocument::parse(doc.as_str(), today).as_ref(), Ok(&doc));
        assert_eq!(doc.masked().chars().count(), doc.as_str().chars().count());
        let _ = (doc.sex(), doc.birth_date(), doc.match_key());
    }
    // The import's cell reader in front of it, text and number cells alike.
    if let Ok(Some(clean)) = id_text(&Cell::text(text)) {
        let _ = IdDocument::parse(&clean, today);
    }
    if data.len() >= 8 {
        let n = f64::from_le_bytes(data[..8].try_into().unwrap());
        let _ = id_text(&Cell::Number(n));
    }
});
