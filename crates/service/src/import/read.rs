//! Reading a file into rows of cells: `.xlsx` (streamed cell by cell) and
//! `.xls` through calamine, `.csv` through the csv crate after detecting its
//! encoding (UTF-8 with or without BOM, else GB18030, the superset of GBK
//! that Excel's "CSV" saves on a Chinese Windows) and its delimiter.
//!
//! Rows keep their position: index `i` is the row the user sees as `i + 1`
//! in Excel, so error messages name the row they can find.

use std::io::Cursor;

use calamine::{Data, DataRef, Reader};
use epigrid_domain::import::Cell;

/// The first sheet of a workbook, or a CSV file, as rows of cells.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    pub rows: Vec<Vec<Cell>>,
    /// What the file was: `xlsx`, `xls`, `csv (UTF-8)`, `csv (GB18030)`, …
    pub format: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("not an .xlsx, .xls or .csv file")]
    UnknownFormat,
    #[error("the file could not be read: {0}")]
    Unreadable(String),
    #[error("the file has no sheet with rows")]
    Empty,
}

impl ReadError {
    /// The translation key of the reason.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownFormat => "import.file_format",
            Self::Unreadable(_) => "import.file_unreadable",
            Self::Empty => "import.file_empty",
        }
    }
}

/// Reads `bytes`, named `file_name` (the extension decides the format;
/// spreadsheets are also recognised by their magic bytes).
pub fn read_table(file_name: &str, bytes: &[u8]) -> Result<Table, ReadError> {
    let extension = file_name.rsplit('.').next().unwrap_or_default().to_ascii_lowercase();
    let table = if bytes.starts_with(b"PK\x03\x04") || extension == "xlsx" {
        read_xlsx(bytes)?
    } else if bytes.starts_with(&[0xD0, 0xCF, 0x11, 0xE0]) || extension == "xls" {
        read_xls(bytes)?
    } else if matches!(extension.as_str(), "csv" | "txt" | "tsv") {
        read_csv(bytes)?
    } else {
        return Err(ReadError::UnknownFormat);
    };
    if table.rows.iter().all(|r| r.iter().all(Cell::is_blank)) {
        return Err(ReadError::Empty);
    }
    Ok(table)
}

fn unreadable(e: impl std::fmt::Display) -> ReadError {
    ReadError::Unreadable(e.to_string())
}

/// Excel's 1900-system serial of a date (as `Cell::Date` holds it),
/// whichever date system the workbook used.
fn serial_1900(dt: &calamine::ExcelDateTime) -> Cell {
    let (y, m, d, ..) = dt.to_ymd_hms_milli();
    match chrono::NaiveDate::from_ymd_opt(i32::from(y), u32::from(m), u32::from(d)) {
        Some(date) => {
            let days = (date - chrono::NaiveDate::from_ymd_opt(1899, 12, 30).unwrap_or_default())
                .num_days();
            // Dates before 1 March 1900 sit one serial lower (no fake leap day).
            let serial = if days <= 60 { days - 1 } else { days };
            Cell::Date(serial as f64)
        }
        None => Cell::Number(dt.as_f64()),
    }
}

fn cell_from_ref(value: &DataRef<'_>) -> Cell {
    match value {
        DataRef::Int(i) => Cell::Int(*i),
        DataRef::Float(f) => Cell::Number(*f),
        DataRef::String(s) => Cell::text(s),
        DataRef::SharedString(s) => Cell::text(s),
        DataRef::Bool(b) => Cell::Bool(*b),
        DataRef::DateTime(dt) => serial_1900(dt),
        DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => Cell::text(s),
        DataRef::Error(e) => Cell::Error(e.to_string()),
        DataRef::Empty => Cell::Empty,
    }
}

fn cell_from_data(value: &Data) -> Cell {
    match value {
        Data::Int(i) => Cell::Int(*i),
        Data::Float(f) => Cell::Number(*f),
        Data::String(s) => Cell::text(s),
        Data::Bool(b) => Cell::Bool(*b),
        Data::DateTime(dt) => serial_1900(dt),
        Data::DateTimeIso(s) | Data::DurationIso(s) => Cell::text(s),
        Data::Error(e) => Cell::Error(e.to_string()),
        Data::Empty => Cell::Empty,
    }
}

/// Puts `cell` at its absolute position, growing rows as needed.
fn place(rows: &mut Vec<Vec<Cell>>, row: usize, column: usize, cell: Cell) {
    if cell == Cell::Empty {
        return;
    }
    if rows.len() <= row {
        rows.resize_with(row + 1, Vec::new);
    }
    let cells = &mut rows[row];
    if cells.len() <= column {
        cells.resize(column + 1, Cell::Empty);
    }
    cells[column] = cell;
}

/// Streams the first sheet cell by cell: no intermediate copy of the whole
/// sheet, which matters at a million rows.
fn read_xlsx(bytes: &[u8]) -> Result<Table, ReadError> {
    let mut workbook: calamine::Xlsx<_> =
        calamine::open_workbook_from_rs(Cursor::new(bytes)).map_err(unreadable)?;
    let first = workbook.sheet_names().into_iter().next().ok_or(ReadError::Empty)?;
    let mut reader = workbook.worksheet_cells_reader(&first).map_err(unreadable)?;
    let mut rows: Vec<Vec<Cell>> = Vec::new();
    while let Some(cell) = reader.next_cell().map_err(unreadable)? {
        let (row, column) = cell.get_position();
        place(&mut rows, row as usize, column as usize, cell_from_ref(cell.get_value()));
    }
    Ok(Table { rows, format: "xlsx".into() })
}

fn read_xls(bytes: &[u8]) -> Result<Table, ReadError> {
    let mut workbook: calamine::Xls<_> =
        calamine::open_workbook_from_rs(Cursor::new(bytes)).map_err(unreadable)?;
    let range = workbook.worksheet_range_at(0).ok_or(ReadError::Empty)?.map_err(unreadable)?;
    let mut rows: Vec<Vec<Cell>> = Vec::new();
    // A range starts at its first used cell; positions are made absolute
    // again so that row numbers match what Excel shows.
    let (start_row, start_column) = range.start().unwrap_or((0, 0));
    for (row, column, value) in range.used_cells() {
        place(
            &mut rows,
            start_row as usize + row,
            start_column as usize + column,
            cell_from_data(value),
        );
    }
    Ok(Table { rows, format: "xls".into() })
}

/// Decodes CSV bytes: UTF-8 (BOM or not) when the bytes are valid UTF-8,
/// else GB18030. A GBK file is almost never valid UTF-8 (its double-byte
/// sequences break UTF-8's continuation rules within a few characters),
/// and GB18030 decodes every GBK file the same way GBK would.
pub fn decode_text(bytes: &[u8]) -> (String, &'static str) {
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        return (String::from_utf8_lossy(rest).into_owned(), "UTF-8 BOM");
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        return (text.to_owned(), "UTF-8");
    }
    let (text, _, _) = encoding_rs::GB18030.decode(bytes);
    (text.into_owned(), "GB18030")
}

/// The delimiter of the header area: whichever of `,` `\t` `;` `|` occurs
/// most often (outside quotes) in the first lines.
pub fn sniff_delimiter(text: &str) -> u8 {
    let mut counts = [0usize; 4];
    let candidates = [b',', b'\t', b';', b'|'];
    let mut in_quotes = false;
    for b in text.bytes().take(8192) {
        if b == b'"' {
            in_quotes = !in_quotes;
        } else if !in_quotes && let Some(i) = candidates.iter().position(|c| *c == b) {
            counts[i] += 1;
        }
    }
    let best = (0..4).max_by_key(|i| (counts[*i], usize::MAX - *i)).unwrap_or(0);
    if counts[best] == 0 { b',' } else { candidates[best] }
}

/// Parses decoded CSV text into rows: every cell is text, rows may have any
/// number of cells (title rows have one).
pub fn parse_csv(text: &str) -> Result<Vec<Vec<Cell>>, ReadError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(sniff_delimiter(text))
        .from_reader(text.as_bytes());
    let mut rows = Vec::new();
    let mut record = csv::StringRecord::new();
    while reader.read_record(&mut record).map_err(unreadable)? {
        rows.push(record.iter().map(Cell::text).collect());
    }
    Ok(rows)
}

fn read_csv(bytes: &[u8]) -> Result<Table, ReadError> {
    let (text, encoding) = decode_text(bytes);
    Ok(Table { rows: parse_csv(&text)?, format: format!("csv ({encoding})") })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn encodings_are_detected() {
        let (gbk, _, _) = encoding_rs::GBK.encode("姓名,身份证号\n张三,1\n");
        assert_eq!(decode_text(&gbk), ("姓名,身份证号\n张三,1\n".to_owned(), "GB18030"));
        let mut bom = b"\xEF\xBB\xBF".to_vec();
        bom.extend_from_slice("姓名".as_bytes());
        assert_eq!(decode_text(&bom), ("姓名".to_owned(), "UTF-8 BOM"));
        assert_eq!(decode_text("姓名".as_bytes()).1, "UTF-8");
    }

    #[test]
    fn delimiters_are_sniffed() {
        assert_eq!(sniff_delimiter("a,b,c\n1,2,3"), b',');
        assert_eq!(sniff_delimiter("a\tb\tc\n\"1,2\"\t2\t3"), b'\t');
        assert_eq!(sniff_delimiter("a;b;c"), b';');
        assert_eq!(sniff_delimiter("abc"), b',');
    }

    #[test]
    fn quoted_cells_keep_their_delimiters_and_newlines() {
        let rows = parse_csv("标题\n姓名,地址\n张三,\"幸福路1号,\n3楼\"\n").unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0], vec![Cell::text("标题")]);
        assert_eq!(rows[2][1], Cell::text("幸福路1号,\n3楼"));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let (text, _) = decode_text(&bytes);
            let _ = parse_csv(&text);
            let _ = read_table("x.csv", &bytes);
            let _ = read_table("x.xlsx", &bytes);
            let _ = read_table("x.xls", &bytes);
        }
    }
}
