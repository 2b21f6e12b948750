//! Lists of people sent from above (协查名单), matched against the registry.
//!
//! A list row is read with the import normalisers (full-width digits, stray
//! spaces, ID numbers Excel turned into numbers, dates as serials or text),
//! then classified against the residents the store found for it:
//! - **exact**: the same identity document;
//! - **probable**: the same mobile phone, or the same name and the same
//!   address (only when the list has an address column);
//! - **none**, with the reason.
//!
//! A malformed ID number is reported with its reason and never repaired:
//! a guessed digit would send a grid worker to the wrong door. The row may
//! still match probably by phone or by name and address.

use chrono::NaiveDate;
use uuid::Uuid;

use crate::import::{
    Cell, Field, building_key, cell_text, clean, date_value, field_for_header, id_text,
    normalize_header, room_key, unit_key,
};
use crate::{IdDocument, MobilePhone, PersonName, ReasonCode};

/// What a column of a list holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListField {
    Name,
    IdNumber,
    Phone,
    Origin,
    ArrivedOn,
    Notes,
    /// 住址: optional; enables the name + address match.
    Address,
}

impl ListField {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::IdNumber => "id_number",
            Self::Phone => "phone",
            Self::Origin => "origin",
            Self::ArrivedOn => "arrived_on",
            Self::Notes => "notes",
            Self::Address => "address",
        }
    }
}

/// The list field a header names: the import's synonyms for the fields the
/// two share, plus the two a list has and a registry import does not.
pub fn list_field_for_header(header: &str) -> Option<ListField> {
    match field_for_header(header) {
        Some(Field::Name) => return Some(ListField::Name),
        Some(Field::IdNumber) => return Some(ListField::IdNumber),
        Some(Field::Phone) => return Some(ListField::Phone),
        Some(Field::Origin) => return Some(ListField::Origin),
        Some(Field::ArrivedOn) => return Some(ListField::ArrivedOn),
        _ => {}
    }
    match normalize_header(header).as_str() {
        "备注" | "说明" | "情况说明" | "notes" | "note" | "remarks" | "remark" | "comment" => {
            Some(ListField::Notes)
        }
        "住址" | "地址" | "现住址" | "居住地址" | "现居住地址" | "详细地址" | "address"
        | "homeaddress" => Some(ListField::Address),
        _ => None,
    }
}

/// How the columns of a list were understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListMapping {
    /// The header row's index in the table.
    pub header_row: usize,
    pub headers: Vec<String>,
    pub fields: Vec<Option<ListField>>,
}

impl ListMapping {
    pub fn column_of(&self, field: ListField) -> Option<usize> {
        self.fields.iter().position(|f| *f == Some(field))
    }
}

/// Why a list cannot be read at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListError {
    /// No row among the first twenty names two list fields.
    NoHeader,
    /// Neither an ID number nor a phone column: nothing to match on.
    NoMatchColumn,
}

impl ReasonCode for ListError {
    fn code(&self) -> &'static str {
        match self {
            Self::NoHeader => "import.no_header",
            Self::NoMatchColumn => "matching.no_match_column",
        }
    }
}

/// Finds the header row (below any merged title rows) and maps it. The
/// first column naming a field wins; later duplicates are ignored.
pub fn detect_list_mapping(rows: &[Vec<Cell>]) -> Result<ListMapping, ListError> {
    let mut best: Option<(usize, usize)> = None;
    for (index, row) in rows.iter().take(crate::import::HEADER_SCAN_ROWS).enumerate() {
        let mut seen = Vec::new();
        for cell in row {
            if let Some(f) = list_field_for_header(&cell.display())
                && !seen.contains(&f)
            {
                seen.push(f);
            }
        }
        if seen.len() >= 2 && best.is_none_or(|(_, n)| seen.len() > n) {
            best = Some((index, seen.len()));
        }
    }
    let (header_row, _) = best.ok_or(ListError::NoHeader)?;
    let headers: Vec<String> = rows[header_row].iter().map(|c| clean(&c.display())).collect();
    let mut fields = Vec::with_capacity(headers.len());
    for h in &headers {
        let f = list_field_for_header(h).filter(|f| !fields.contains(&Some(*f)));
        fields.push(f);
    }
    let mapping = ListMapping { header_row, headers, fields };
    if mapping.column_of(ListField::IdNumber).is_none()
        && mapping.column_of(ListField::Phone).is_none()
    {
        return Err(ListError::NoMatchColumn);
    }
    Ok(mapping)
}

/// A problem with one cell of a list row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListProblem {
    pub field: ListField,
    pub code: &'static str,
}

/// One person on a list, as far as the cells could be read. Bad cells are
/// left out and named in `problems`; the row is still matched on the rest.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ListRow {
    pub name: Option<PersonName>,
    pub id_document: Option<IdDocument>,
    pub phone: Option<MobilePhone>,
    pub origin: Option<String>,
    pub arrived_on: Option<NaiveDate>,
    pub notes: Option<String>,
    pub address: Option<String>,
    pub problems: Vec<ListProblem>,
}

impl ListRow {
    /// The reason code of a bad ID number, if the row has one.
    pub fn id_problem(&self) -> Option<&'static str> {
        self.problems.iter().find(|p| p.field == ListField::IdNumber).map(|p| p.code)
    }
}

/// Reads one data row. `today` is passed in: this stays pure.
pub fn parse_list_row(cells: &[Cell], mapping: &ListMapping, today: NaiveDate) -> ListRow {
    let cell = |f: ListField| -> &Cell {
        mapping.column_of(f).and_then(|i| cells.get(i)).unwrap_or(&Cell::Empty)
    };
    let mut row = ListRow::default();
    if let Some(text) = cell_text(cell(ListField::Name)) {
        match PersonName::parse(&text) {
            Ok(n) => row.name = Some(n),
            Err(e) => row.problems.push(ListProblem { field: ListField::Name, code: e.code() }),
        }
    }
    match id_text(cell(ListField::IdNumber)) {
        Ok(Some(text)) => match IdDocument::parse(&text, today) {
            Ok(doc) => row.id_document = Some(doc),
            Err(e) => row.problems.push(ListProblem { field: ListField::IdNumber, code: e.code() }),
        },
        Ok(None) => {}
        Err(code) => row.problems.push(ListProblem { field: ListField::IdNumber, code }),
    }
    if let Some(text) = cell_text(cell(ListField::Phone)) {
        match MobilePhone::parse(&text) {
            Ok(p) => row.phone = Some(p),
            Err(e) => row.problems.push(ListProblem { field: ListField::Phone, code: e.code() }),
        }
    }
    match date_value(cell(ListField::ArrivedOn)) {
        Ok(d) => row.arrived_on = d,
        Err(code) => row.problems.push(ListProblem { field: ListField::ArrivedOn, code }),
    }
    row.origin = cell_text(cell(ListField::Origin));
    row.notes = cell_text(cell(ListField::Notes));
    row.address = cell_text(cell(ListField::Address));
    row
}

/// An address reduced to its building, unit and room keys, so that
/// `幸福社区3号楼2单元1201室` and building `3号楼`, unit `2单元`, room `1201`
/// agree: the trailing runs of letters and digits, lower-case.
pub fn address_tokens(address: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    for c in clean(address).chars() {
        if c.is_ascii_alphanumeric() {
            current.push(c.to_ascii_lowercase());
        } else if !current.is_empty() {
            tokens.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    tokens
}

/// A resident the store found for a row, with what the rules compare.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub resident_id: Uuid,
    pub grid_id: Option<Uuid>,
    pub name: String,
    /// Building, unit and room names as registered.
    pub building: String,
    pub unit: String,
    pub room: String,
}

impl Candidate {
    /// True when the list's address names this candidate's household.
    pub fn lives_at(&self, address: &str) -> bool {
        let tokens = address_tokens(address);
        let home: Vec<String> =
            [building_key(&self.building), unit_key(&self.unit), room_key(&self.room)]
                .iter()
                .map(|k| k.to_ascii_lowercase())
                .collect();
        if home.iter().any(String::is_empty) {
            return false;
        }
        // Compare the tails: the list may start with a city or community.
        let joined = |v: &[String]| v.join("-");
        if tokens.len() >= 3 && joined(&tokens[tokens.len() - 3..]) == joined(&home) {
            return true;
        }
        // Names that are not digits (`一号楼`): the whole label, written out.
        let flat = |s: &str| clean(s).replace(' ', "").to_lowercase();
        flat(address).ends_with(&flat(&format!("{}{}{}", self.building, self.unit, self.room)))
    }
}

/// How a list row matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchClass {
    Exact,
    Probable,
    None,
}

impl MatchClass {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Exact => "exact",
            Self::Probable => "probable",
            Self::None => "none",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "exact" => Some(Self::Exact),
            "probable" => Some(Self::Probable),
            "none" => Some(Self::None),
            _ => None,
        }
    }
}

/// The outcome for one row: the class, the resident (when matched) and a
/// stable reason code the front end translates.
#[derive(Debug, Clone, PartialEq)]
pub struct MatchOutcome {
    pub class: MatchClass,
    pub resident: Option<Candidate>,
    pub reason: &'static str,
}

impl MatchOutcome {
    fn none(reason: &'static str) -> Self {
        Self { class: MatchClass::None, resident: None, reason }
    }
}

/// Classifies a row. `by_id` is the resident holding the row's document
/// (in scope), `by_phone` those with its phone, `by_name` those with its
/// name: the caller looks them up, this decides.
pub fn classify(
    row: &ListRow,
    by_id: Option<&Candidate>,
    by_phone: &[Candidate],
    by_name: &[Candidate],
) -> MatchOutcome {
    if row.id_document.is_some()
        && let Some(c) = by_id
    {
        return MatchOutcome {
            class: MatchClass::Exact,
            resident: Some(c.clone()),
            reason: "matching.reason.id",
        };
    }
    let name = row.name.as_ref().map(PersonName::as_str);
    if row.phone.is_some() && !by_phone.is_empty() {
        // A family often shares one phone: the name picks among them.
        let named: Vec<&Candidate> =
            by_phone.iter().filter(|c| Some(c.name.as_str()) == name).collect();
        let pick = match (named.as_slice(), by_phone) {
            ([one], _) => Some(*one),
            ([], [one]) => Some(one),
            _ => None,
        };
        if let Some(c) = pick {
            return MatchOutcome {
                class: MatchClass::Probable,
                resident: Some(c.clone()),
                reason: "matching.reason.phone",
            };
        }
        if by_name.is_empty() {
            return MatchOutcome::none("matching.reason.ambiguous");
        }
    }
    if let (Some(name), Some(address)) = (name, row.address.as_deref()) {
        let here: Vec<&Candidate> =
            by_name.iter().filter(|c| c.name == name && c.lives_at(address)).collect();
        match here.as_slice() {
            [one] => {
                return MatchOutcome {
                    class: MatchClass::Probable,
                    resident: Some((*one).clone()),
                    reason: "matching.reason.name_address",
                };
            }
            [] => {}
            _ => return MatchOutcome::none("matching.reason.ambiguous"),
        }
    }
    // Nothing matched: say why the row could not be matched better.
    if let Some(code) = row.id_problem() {
        return MatchOutcome::none(code);
    }
    if row.id_document.is_none() && row.phone.is_none() {
        return MatchOutcome::none("matching.reason.nothing_to_match");
    }
    MatchOutcome::none("matching.reason.not_found")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::check_character;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 1).unwrap()
    }

    fn id(first17: &str) -> String {
        let bytes: [u8; 17] = first17.as_bytes().try_into().unwrap();
        format!("{first17}{}", check_character(&bytes))
    }

    fn t(s: &str) -> Cell {
        Cell::text(s)
    }

    fn mapping(headers: &[&str]) -> ListMapping {
        let rows = vec![vec![t("协查名单")], headers.iter().map(|h| t(h)).collect()];
        detect_list_mapping(&rows).unwrap()
    }

    fn cand(name: &str, building: &str, unit: &str, room: &str) -> Candidate {
        Candidate {
            resident_id: Uuid::now_v7(),
            grid_id: None,
            name: name.into(),
            building: building.into(),
            unit: unit.into(),
            room: room.into(),
        }
    }

    #[test]
    fn chinese_and_english_headers_map_below_a_title() {
        let m = mapping(&[
            "序号",
            "姓名",
            "身份证号",
            "联系电话",
            "来源地",
            "抵达日期",
            "备注",
            "住址",
        ]);
        assert_eq!(m.header_row, 1);
        assert_eq!(m.column_of(ListField::Name), Some(1));
        assert_eq!(m.column_of(ListField::Notes), Some(6));
        assert_eq!(m.column_of(ListField::Address), Some(7));
        let m = mapping(&["Name", "ID Number", "Phone", "Origin", "Arrival date", "Notes"]);
        assert_eq!(m.column_of(ListField::IdNumber), Some(1));
        assert_eq!(m.column_of(ListField::ArrivedOn), Some(4));
        assert_eq!(m.column_of(ListField::Address), None);
    }

    #[test]
    fn a_list_without_id_or_phone_columns_is_refused() {
        let rows = vec![vec![t("姓名"), t("来源地"), t("备注")]];
        assert_eq!(detect_list_mapping(&rows), Err(ListError::NoMatchColumn));
        assert_eq!(detect_list_mapping(&[vec![t("名单")]]), Err(ListError::NoHeader));
    }

    #[test]
    fn cells_are_normalised_and_a_scientific_id_is_reported_not_guessed() {
        let m = mapping(&["姓名", "身份证号", "联系电话", "抵达日期"]);
        let number = id("11010119900101002");
        let full_width: String = number
            .chars()
            .map(
                |c| if c.is_ascii_digit() { char::from_u32(c as u32 + 0xFEE0).unwrap() } else { c },
            )
            .collect();
        let row = parse_list_row(
            &[t(" 张三 "), t(&full_width), t("138 0013 8000"), t("2026年10月3日")],
            &m,
            today(),
        );
        assert_eq!(row.name.unwrap().as_str(), "张三");
        assert_eq!(row.id_document.unwrap().as_str(), number);
        assert_eq!(row.arrived_on, NaiveDate::from_ymd_opt(2026, 10, 3));
        assert!(row.problems.is_empty(), "{:?}", row.problems);

        let row = parse_list_row(&[t("李四"), t("1.10101199001E+17")], &m, today());
        assert_eq!(row.id_document, None);
        assert_eq!(row.id_problem(), Some(crate::import::ID_SCIENTIFIC));
        let row = parse_list_row(&[t("王五"), Cell::Number(1.1010119900101e17)], &m, today());
        assert_eq!(row.id_problem(), Some(crate::import::ID_SCIENTIFIC));
    }

    #[test]
    fn the_same_document_is_an_exact_match() {
        let m = mapping(&["姓名", "身份证号"]);
        let row = parse_list_row(&[t("张三"), t(&id("11010119900101002"))], &m, today());
        let c = cand("张三", "1号楼", "1单元", "101");
        let out = classify(&row, Some(&c), &[], &[]);
        assert_eq!(out.class, MatchClass::Exact);
        assert_eq!(out.resident.unwrap().resident_id, c.resident_id);
    }

    #[test]
    fn the_same_phone_is_probable_and_the_name_picks_within_a_family() {
        let m = mapping(&["姓名", "联系电话"]);
        let row = parse_list_row(&[t("李四"), t("13800138000")], &m, today());
        let a = cand("李四", "1", "1", "101");
        let b = cand("李小四", "1", "1", "101");
        let out = classify(&row, None, &[b.clone(), a.clone()], &[]);
        assert_eq!((out.class, out.reason), (MatchClass::Probable, "matching.reason.phone"));
        assert_eq!(out.resident.unwrap().resident_id, a.resident_id);
        // Two others share the phone and neither has the name: not guessed.
        let out = classify(&row, None, &[b.clone(), cand("赵六", "1", "1", "101")], &[]);
        assert_eq!((out.class, out.reason), (MatchClass::None, "matching.reason.ambiguous"));
    }

    #[test]
    fn name_and_address_is_probable_when_the_list_has_an_address() {
        let m = mapping(&["姓名", "联系电话", "住址"]);
        let row = parse_list_row(&[t("王五"), t(""), t("幸福社区3号楼2单元1201室")], &m, today());
        let home = cand("王五", "3号楼", "2单元", "1201");
        let elsewhere = cand("王五", "3号楼", "2单元", "1202");
        let out = classify(&row, None, &[], &[elsewhere.clone(), home.clone()]);
        assert_eq!((out.class, out.reason), (MatchClass::Probable, "matching.reason.name_address"));
        assert_eq!(out.resident.unwrap().resident_id, home.resident_id);
        let out = classify(&row, None, &[], &[elsewhere]);
        assert_eq!(out.class, MatchClass::None);
        // Without an address column a name alone never matches.
        let m = mapping(&["姓名", "联系电话"]);
        let row = parse_list_row(&[t("王五"), t("")], &m, today());
        assert_eq!(classify(&row, None, &[], &[home]).class, MatchClass::None);
    }

    #[test]
    fn no_match_says_why() {
        let m = mapping(&["姓名", "身份证号", "联系电话"]);
        let bad = parse_list_row(&[t("赵六"), t("110101199001010020")], &m, today());
        assert_eq!(classify(&bad, None, &[], &[]).reason, "id.checksum");
        let unknown = parse_list_row(&[t("赵六"), t(&id("11010119900101002"))], &m, today());
        assert_eq!(classify(&unknown, None, &[], &[]).reason, "matching.reason.not_found");
        let empty = parse_list_row(&[t("赵六")], &m, today());
        assert_eq!(classify(&empty, None, &[], &[]).reason, "matching.reason.nothing_to_match");
    }

    #[test]
    fn address_tokens_take_letters_and_digits() {
        assert_eq!(address_tokens("阳光小区A座 2单元１２０１"), ["a", "2", "1201"]);
        assert!(cand("x", "A座", "2单元", "1201").lives_at("阳光小区A座2单元1201"));
        assert!(cand("x", "一号楼", "二单元", "三室").lives_at("某区一号楼二单元三室"));
    }
}
