//! Spreadsheet bytes (xlsx and xls) through calamine and the row pipeline:
//! a damaged upload must be refused with an error, never a panic.
#![no_main]

use chrono::NaiveDate;
use epigrid_domain::import::{ColumnMapping, find_header_row, parse_row};
use epigrid_service::import::read_table;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let today = NaiveDate::from_ymd_opt(2024, 6, 1).unwrap();
    for name in ["upload.xlsx", "upload.xls"] {
        let Ok(table) = read_table(name, data) else { continue };
        let Some(header) = find_header_row(&table.rows) else { continue };
        let mapping = ColumnMapping::detect(&table.rows[header]);
        for row in table.rows.iter().skip(header + 1) {
            let _ = parse_row(row, &mapping, today);
        }
    }
});
