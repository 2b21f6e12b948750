//! CSV bytes through the whole import front: encoding detection, delimiter
//! sniffing, parsing, header-row detection, mapping and row validation.
//! Nothing may panic, whatever the bytes.
#![no_main]

use chrono::NaiveDate;
use epigrid_domain::import::{ColumnMapping, find_header_row, parse_row};
use epigrid_service::import::read::{decode_text, parse_csv};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (text, _) = decode_text(data);
    let Ok(rows) = parse_csv(&text) else { return };
    let today = NaiveDate::from_ymd_opt(2024, 6, 1).unwrap();
    let Some(header) = find_header_row(&rows) else { return };
    let mapping = ColumnMapping::detect(&rows[header]);
    for row in rows.iter().skip(header + 1) {
        let _ = parse_row(row, &mapping, today);
    }
});
