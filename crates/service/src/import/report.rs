//! The error report: the user's own rows, as they were, with one column
//! added that says what is wrong with each rejected row, in the user's
//! language. They fix the rows in it and import it again.

use rust_xlsxwriter::{Color, Format, Workbook, XlsxError};

use super::{RowError, Table};
use epigrid_domain::import::Cell;

/// One message per problem: `身份证号：身份证号码校验位不正确`. `translate`
/// maps a message key to text in the user's language (the web layer's and
/// the CLI's catalogue), so the service stays free of locale files.
pub fn describe(error: &RowError, translate: &dyn Fn(&str) -> String) -> String {
    let mut reason = translate(error.code);
    if let Some(other) = error.other_row {
        reason = reason.replace("{row}", &other.to_string());
    }
    let column = if error.column.is_empty() {
        translate(&error.field.label_key())
    } else {
        error.column.clone()
    };
    format!("{column}{}{reason}", translate("import.report.separator"))
}

/// All problems of one row, joined.
pub fn describe_row(errors: &[&RowError], translate: &dyn Fn(&str) -> String) -> String {
    let joiner = translate("import.report.joiner");
    errors.iter().map(|e| describe(e, translate)).collect::<Vec<_>>().join(&joiner)
}

/// Writes the report as `.xlsx` bytes: every row of `table` with its cells
/// kept as their types (an ID stays text, a date stays a date), and the
/// reasons in a column after the last one, headed on the header row.
pub fn error_report(
    table: &Table,
    header_row: usize,
    errors: &[RowError],
    translate: &dyn Fn(&str) -> String,
) -> Result<Vec<u8>, XlsxError> {
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    let date = Format::new().set_num_format("yyyy-mm-dd");
    let bold = Format::new().set_bold();
    let red = Format::new().set_font_color(Color::Red);
    let width = table.rows.iter().map(Vec::len).max().unwrap_or(0);
    let reason_column = u16::try_from(width).unwrap_or(u16::MAX - 1);
    let mut by_row: std::collections::BTreeMap<usize, Vec<&RowError>> = Default::default();
    for error in errors {
        by_row.entry(error.row).or_default().push(error);
    }
    for (index, cells) in table.rows.iter().enumerate() {
        let Ok(row) = u32::try_from(index) else { break };
        for (column, cell) in cells.iter().enumerate() {
            let Ok(column) = u16::try_from(column) else { break };
            match cell {
                Cell::Empty => {}
                Cell::Text(t) | Cell::Error(t) => {
                    sheet.write_string(row, column, t)?;
                }
                Cell::Number(n) => {
                    sheet.write_number(row, column, *n)?;
                }
                Cell::Int(i) => {
                    sheet.write_number(row, column, *i as f64)?;
                }
                Cell::Bool(b) => {
                    sheet.write_boolean(row, column, *b)?;
                }
                Cell::Date(serial) => {
                    sheet.write_number_with_format(row, column, *serial, &date)?;
                }
            }
        }
        if index == header_row {
            sheet.write_string_with_format(
                row,
                reason_column,
                translate("import.report.reason_header"),
                &bold,
            )?;
        }
        // Errors carry the row number the user sees (1-based).
        if let Some(row_errors) = by_row.get(&(index + 1)) {
            sheet.write_string_with_format(
                row,
                reason_column,
                describe_row(row_errors, translate),
                &red,
            )?;
        }
    }
    sheet.set_column_width(reason_column, 60)?;
    workbook.save_to_buffer()
}
