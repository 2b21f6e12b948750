//! Rows of a spreadsheet as offices write them, turned into registry values.
//!
//! Everything between "a cell read from a file" and "a validated resident"
//! lives here, with no IO: recognising the header row below merged title rows,
//! mapping Chinese and English column headers to fields (with user
//! overrides), and normalising cells: full-width characters, stray spaces,
//! ID numbers that Excel turned into numbers, dates as serials or text. The
//! reader (which file format, which encoding) and the writer (which store)
//! are the service's business.

use chrono::NaiveDate;

use crate::{IdDocument, MobilePhone, PersonName, ReasonCode, Relation, Residence, Sex, Tag};

/// A cell as a reader delivers it, independent of the file format.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Empty,
    Text(String),
    /// A number as Excel stores it: a binary64, whatever the cell shows.
    Number(f64),
    Int(i64),
    Bool(bool),
    /// A cell formatted as a date: the Excel serial (1900 date system).
    Date(f64),
    /// An Excel error value such as `#N/A`.
    Error(String),
}

impl Cell {
    /// Text from a file that has no types (CSV): every cell is text.
    pub fn text(value: &str) -> Self {
        if value.is_empty() { Cell::Empty } else { Cell::Text(value.to_owned()) }
    }

    /// Empty, or text that is only spaces.
    pub fn is_blank(&self) -> bool {
        match self {
            Cell::Empty => true,
            Cell::Text(t) => clean(t).is_empty(),
            _ => false,
        }
    }

    /// The cell as the user would read it, for reports and header matching.
    pub fn display(&self) -> String {
        match self {
            Cell::Empty => String::new(),
            Cell::Text(t) => t.clone(),
            Cell::Number(n) => number_text(*n),
            Cell::Int(i) => i.to_string(),
            Cell::Bool(b) => if *b { "TRUE" } else { "FALSE" }.to_owned(),
            Cell::Date(serial) => match excel_serial_to_date(*serial) {
                Some(date) => date.to_string(),
                None => number_text(*serial),
            },
            Cell::Error(e) => e.clone(),
        }
    }
}

/// A number without a spurious `.0`, and without exponent for integers that
/// a double holds exactly.
fn number_text(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < MAX_EXACT_INTEGER {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

/// 2^53: every integer below it has an exact binary64. Above it Excel's
/// numbers (which keep only 15 significant digits anyway) lose digits, so
/// an 18-digit ID number stored as a number cannot be trusted.
const MAX_EXACT_INTEGER: f64 = 9_007_199_254_740_992.0;

// ---- text normalisation -------------------------------------------------------

/// Full-width ASCII (U+FF01–U+FF5E) and the ideographic space become their
/// half-width forms: `１２３ＡＢＣ　` → `123ABC `. Chinese input methods
/// produce them in full-width mode, and they look identical on screen.
pub fn half_width(input: &str) -> String {
    input
        .chars()
        .map(|c| match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            '\u{3000}' => ' ',
            other => other,
        })
        .collect()
}

/// Half-width, with surrounding white space removed, including the
/// no-break and zero-width spaces that web pages and Word leave behind.
pub fn clean(input: &str) -> String {
    half_width(input)
        .trim_matches(|c: char| c.is_whitespace() || matches!(c, '\u{200B}' | '\u{FEFF}'))
        .to_owned()
}

// ---- fields and headers ---------------------------------------------------------

/// What a column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    Name,
    Sex,
    IdNumber,
    /// 证件类型: read for completeness; the kind is detected from the number.
    IdKind,
    Phone,
    Community,
    Grid,
    Building,
    Unit,
    Room,
    Relation,
    Residence,
    BirthDate,
    /// 民族: recognised so that it is not reported as unknown, but not
    /// stored: the registry collects the minimum (PIPL Art. 6).
    Ethnicity,
    Tags,
    ArrivedOn,
    Origin,
}

impl Field {
    pub const ALL: [Field; 17] = [
        Field::Name,
        Field::Sex,
        Field::IdNumber,
        Field::IdKind,
        Field::Phone,
        Field::Community,
        Field::Grid,
        Field::Building,
        Field::Unit,
        Field::Room,
        Field::Relation,
        Field::Residence,
        Field::BirthDate,
        Field::Ethnicity,
        Field::Tags,
        Field::ArrivedOn,
        Field::Origin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Field::Name => "name",
            Field::Sex => "sex",
            Field::IdNumber => "id_number",
            Field::IdKind => "id_kind",
            Field::Phone => "phone",
            Field::Community => "community",
            Field::Grid => "grid",
            Field::Building => "building",
            Field::Unit => "unit",
            Field::Room => "room",
            Field::Relation => "relation",
            Field::Residence => "residence",
            Field::BirthDate => "birth_date",
            Field::Ethnicity => "ethnicity",
            Field::Tags => "tags",
            Field::ArrivedOn => "arrived_on",
            Field::Origin => "origin",
        }
    }

    /// The translation key of the field's name.
    pub fn label_key(self) -> String {
        format!("import.field.{}", self.as_str())
    }

    /// A field by its English name (`id_number`) or by any header that maps
    /// to it (`身份证号`), for `--map 列名=field`.
    pub fn parse(input: &str) -> Option<Field> {
        let input = clean(input);
        Field::ALL
            .into_iter()
            .find(|f| f.as_str() == input.to_ascii_lowercase())
            .or_else(|| field_for_header(&input))
    }

    /// Headers (after `normalize_header`) that mean this field. Chinese
    /// first, as offices write them; English as other systems export them.
    fn synonyms(self) -> &'static [&'static str] {
        match self {
            Field::Name => {
                &["姓名", "名字", "居民姓名", "人员姓名", "户主姓名", "name", "fullname"]
            }
            Field::Sex => &["性别", "sex", "gender"],
            Field::IdNumber => &[
                "身份证号",
                "身份证号码",
                "身份证",
                "公民身份号码",
                "公民身份证号",
                "证件号码",
                "证件号",
                "idnumber",
                "idno",
                "idcard",
                "idcardnumber",
                "document",
                "documentnumber",
            ],
            Field::IdKind => &["证件类型", "证件种类", "idkind", "idtype", "documenttype"],
            Field::Phone => &[
                "联系电话",
                "手机号",
                "手机号码",
                "电话",
                "电话号码",
                "手机",
                "联系方式",
                "phone",
                "mobile",
                "phonenumber",
                "mobilephone",
                "tel",
            ],
            Field::Community => &["社区", "所属社区", "社区名称", "居委会", "村居", "community"],
            Field::Grid => {
                &["网格", "所属网格", "网格名称", "网格编码", "网格号", "grid", "gridcode"]
            }
            Field::Building => {
                &["楼栋", "楼号", "楼栋号", "栋号", "楼幢", "幢号", "楼", "building", "buildingno"]
            }
            Field::Unit => &["单元", "单元号", "unit", "unitno"],
            Field::Room => &[
                "门牌号",
                "房号",
                "户号",
                "房间号",
                "门牌",
                "室号",
                "room",
                "roomno",
                "door",
                "doorno",
            ],
            Field::Relation => &[
                "与户主关系",
                "与户主的关系",
                "户主关系",
                "关系",
                "relation",
                "relationtohead",
                "relationship",
            ],
            Field::Residence => &[
                "户籍/流动",
                "户籍流动",
                "人员类型",
                "人口类型",
                "居住类型",
                "户籍类型",
                "户籍",
                "流动",
                "residence",
                "residencetype",
            ],
            Field::BirthDate => {
                &["出生日期", "出生年月", "生日", "birthdate", "dateofbirth", "dob", "birthday"]
            }
            Field::Ethnicity => &["民族", "ethnicity", "nation"],
            Field::Tags => {
                &["标签", "重点人群", "人群标签", "人员标签", "特殊人群", "tags", "tag", "keygroup"]
            }
            Field::ArrivedOn => {
                &["来本地日期", "来本地时间", "到达日期", "抵达日期", "arrivedon", "arrivaldate"]
            }
            Field::Origin => {
                &["来源地", "来自", "从何地来", "户籍地", "originplace", "origin", "from"]
            }
        }
    }
}

/// A header reduced to what distinguishes it: half-width, lower-case,
/// without spaces, punctuation or notes in brackets, so that `身份证号（必填）`,
/// ` 身份证号 `, `*身份证号` and `ID Number` all reduce to a synonym.
pub fn normalize_header(header: &str) -> String {
    let mut out = String::new();
    let mut depth = 0usize;
    for c in half_width(header).chars() {
        match c {
            '(' | '[' | '【' | '〔' | '<' | '《' => depth += 1,
            ')' | ']' | '】' | '〕' | '>' | '》' => depth = depth.saturating_sub(1),
            _ if depth > 0 => {}
            c if c.is_whitespace()
                || matches!(c, '*' | ':' | '：' | '_' | '-' | '.' | '\u{200B}' | '\u{FEFF}') => {}
            c => out.extend(c.to_lowercase()),
        }
    }
    out
}

/// The field a header names, if any.
pub fn field_for_header(header: &str) -> Option<Field> {
    let key = normalize_header(header);
    if key.is_empty() {
        return None;
    }
    Field::ALL.into_iter().find(|f| f.synonyms().contains(&key.as_str()))
}

/// How many rows from the top are searched for the header: title rows
/// ("XX社区居民信息登记表", a date line, a blank line) come before it.
pub const HEADER_SCAN_ROWS: usize = 20;

/// The index of the header row: the row among the first `HEADER_SCAN_ROWS`
/// that names the most fields, with at least two (a merged title cell names
/// at most one). `None` when no row qualifies.
pub fn find_header_row(rows: &[Vec<Cell>]) -> Option<usize> {
    let mut best: Option<(usize, usize)> = None;
    for (index, row) in rows.iter().take(HEADER_SCAN_ROWS).enumerate() {
        let mut seen = Vec::new();
        for cell in row {
            if let Some(field) = field_for_header(&cell.display())
                && !seen.contains(&field)
            {
                seen.push(field);
            }
        }
        if seen.len() >= 2 && best.is_none_or(|(_, count)| seen.len() > count) {
            best = Some((index, seen.len()));
        }
    }
    best.map(|(index, _)| index)
}

/// How the columns of a file were understood: one entry per column, with
/// the header as the user wrote it. Shown to the user before anything is
/// written, and correctable with `set`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnMapping {
    pub headers: Vec<String>,
    pub fields: Vec<Option<Field>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    #[error("a mapping is written 列名=field")]
    Syntax,
    #[error("no column is headed {0:?}")]
    UnknownColumn(String),
    #[error("{0:?} is not a field")]
    UnknownField(String),
    #[error("{0:?} is chosen for more than one column")]
    FieldTwice(Field),
}

impl ReasonCode for MappingError {
    fn code(&self) -> &'static str {
        match self {
            Self::Syntax => "import.map_syntax",
            Self::UnknownColumn(_) => "import.map_unknown_column",
            Self::UnknownField(_) => "import.map_unknown_field",
            Self::FieldTwice(_) => "import.map_field_twice",
        }
    }
}

/// `列名=field`; an empty field, `-` or `ignore` means "do not read this column".
pub fn parse_override(input: &str) -> Result<(String, Option<Field>), MappingError> {
    let (column, field) = input.rsplit_once('=').ok_or(MappingError::Syntax)?;
    let column = clean(column);
    if column.is_empty() {
        return Err(MappingError::Syntax);
    }
    let field = clean(field);
    if field.is_empty() || field == "-" || field.eq_ignore_ascii_case("ignore") {
        return Ok((column, None));
    }
    let parsed = Field::parse(&field).ok_or(MappingError::UnknownField(field))?;
    Ok((column, Some(parsed)))
}

impl ColumnMapping {
    /// Maps each header to its field. When two columns name the same field,
    /// the first wins and the later ones are left unread (and shown so).
    pub fn detect(header_row: &[Cell]) -> Self {
        // Kept as the user wrote them (only trimmed), so that messages name
        // the column exactly as it reads in their file.
        let headers: Vec<String> = header_row
            .iter()
            .map(|c| {
                c.display()
                    .trim_matches(|ch: char| ch.is_whitespace() || ch == '\u{FEFF}')
                    .to_owned()
            })
            .collect();
        let mut fields: Vec<Option<Field>> = Vec::with_capacity(headers.len());
        for header in &headers {
            let field = field_for_header(header).filter(|f| !fields.contains(&Some(*f)));
            fields.push(field);
        }
        Self { headers, fields }
    }

    /// Points the column headed `column` at `field` (or at nothing). A column
    /// that held `field` before lets go of it, so each field is read once.
    pub fn set(&mut self, column: &str, field: Option<Field>) -> Result<(), MappingError> {
        let wanted = normalize_header(column);
        let index = self
            .headers
            .iter()
            .position(|h| h == column)
            .or_else(|| self.headers.iter().position(|h| normalize_header(h) == wanted))
            .ok_or_else(|| MappingError::UnknownColumn(column.to_owned()))?;
        if let Some(field) = field {
            for f in self.fields.iter_mut().filter(|f| **f == Some(field)) {
                *f = None;
            }
        }
        self.fields[index] = field;
        Ok(())
    }

    /// Replaces every column's field with the user's choice, column by
    /// column (the mapping step of the import page). Unlike `set`, nothing
    /// is let go silently: a field chosen for two columns is refused, since
    /// which of them was meant is the user's call.
    pub fn assign(&mut self, fields: &[Option<Field>]) -> Result<(), MappingError> {
        if fields.len() != self.headers.len() {
            return Err(MappingError::Syntax);
        }
        for (i, field) in fields.iter().enumerate() {
            if let Some(f) = field
                && fields[..i].contains(field)
            {
                return Err(MappingError::FieldTwice(*f));
            }
        }
        self.fields = fields.to_vec();
        Ok(())
    }

    pub fn column_of(&self, field: Field) -> Option<usize> {
        self.fields.iter().position(|f| *f == Some(field))
    }

    /// The header of the column holding `field`, if one does.
    pub fn header_of(&self, field: Field) -> Option<&str> {
        self.column_of(field).map(|i| self.headers[i].as_str())
    }

    /// Fields without which no row can be imported. The grid may come from
    /// the importing account's own scope, so the caller says whether it is
    /// needed.
    pub fn missing_required(&self, grid_needed: bool) -> Vec<Field> {
        let mut required = vec![Field::Name, Field::IdNumber, Field::Building, Field::Room];
        if grid_needed {
            required.push(Field::Grid);
        }
        required.into_iter().filter(|f| self.column_of(*f).is_none()).collect()
    }
}

// ---- cells to values -----------------------------------------------------------

/// A problem with one field of one row: a stable reason code, translated by
/// the front end, and for duplicates the row it duplicates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellProblem {
    pub field: Field,
    pub code: &'static str,
    /// The other row of a duplicate (as the user numbers rows).
    pub other_row: Option<usize>,
}

impl CellProblem {
    pub fn new(field: Field, code: &'static str) -> Self {
        Self { field, code, other_row: None }
    }
}

/// Reason for an ID number that Excel turned into a number too large to
/// hold every digit: the lost digits cannot be recovered, only re-exported.
pub const ID_SCIENTIFIC: &str = "import.id_scientific";

/// `3.7160219900101E+17`, `3.71602E17`, `1e5`: how Excel shows a large number.
fn looks_scientific(s: &str) -> bool {
    let Some((mantissa, exponent)) = s.split_once(['e', 'E']) else { return false };
    let exponent = exponent.strip_prefix('+').unwrap_or(exponent);
    let mantissa_ok = !mantissa.is_empty()
        && mantissa.chars().all(|c| c.is_ascii_digit() || c == '.')
        && mantissa.chars().filter(|c| *c == '.').count() <= 1
        && mantissa.chars().any(|c| c.is_ascii_digit());
    mantissa_ok && !exponent.is_empty() && exponent.chars().all(|c| c.is_ascii_digit())
}

/// General text of a cell: cleaned, `None` when blank. Numbers read as the
/// digits they show (a room `1201` typed as a number is still `1201`).
pub fn cell_text(cell: &Cell) -> Option<String> {
    let text = match cell {
        Cell::Empty => return None,
        Cell::Text(t) => clean(t),
        other => clean(&other.display()),
    };
    (!text.is_empty()).then_some(text)
}

/// The text of an ID-number cell. A number is read back only when it is an
/// integer a double holds exactly (a 15-digit legacy ID is); beyond 2^53,
/// and in scientific notation, digits are already lost and nothing is
/// guessed.
pub fn id_text(cell: &Cell) -> Result<Option<String>, &'static str> {
    match cell {
        Cell::Empty => Ok(None),
        Cell::Text(t) => {
            let text = clean(t);
            if text.is_empty() {
                Ok(None)
            } else if looks_scientific(&text) {
                Err(ID_SCIENTIFIC)
            } else {
                Ok(Some(text))
            }
        }
        Cell::Number(n) if n.is_finite() && n.fract() == 0.0 && *n >= 0.0 => {
            if *n < MAX_EXACT_INTEGER {
                Ok(Some(format!("{}", *n as i64)))
            } else {
                Err(ID_SCIENTIFIC)
            }
        }
        Cell::Int(i) if *i >= 0 => {
            if (*i as f64) < MAX_EXACT_INTEGER {
                Ok(Some(i.to_string()))
            } else {
                Err(ID_SCIENTIFIC)
            }
        }
        Cell::Number(n) if n.is_finite() && n.abs() >= 1e15 => Err(ID_SCIENTIFIC),
        _ => Err("id.format"),
    }
}

/// An Excel serial in the 1900 date system as a date. Serial 60 is the
/// 29 February 1900 that never was (kept from Lotus 1-2-3), so serials
/// before it count from one day later.
pub fn excel_serial_to_date(serial: f64) -> Option<NaiveDate> {
    if !serial.is_finite() || !(1.0..2_958_466.0).contains(&serial) {
        return None;
    }
    let days = serial.floor() as i64;
    if days == 60 {
        return None;
    }
    let epoch = if days < 60 {
        NaiveDate::from_ymd_opt(1899, 12, 31)?
    } else {
        NaiveDate::from_ymd_opt(1899, 12, 30)?
    };
    epoch.checked_add_signed(chrono::Duration::days(days))
}

/// A date as offices type it: `2023-01-05`, `2023/1/5`, `2023.1.5`,
/// `2023年1月5日`, `20230105`, optionally followed by a time.
pub fn parse_date_text(input: &str) -> Option<NaiveDate> {
    let text = clean(input);
    let date_part = text.split([' ', 'T']).next().unwrap_or_default();
    let date_part = date_part.strip_suffix('日').unwrap_or(date_part);
    if date_part.len() == 8 && date_part.bytes().all(|b| b.is_ascii_digit()) {
        return NaiveDate::from_ymd_opt(
            date_part[..4].parse().ok()?,
            date_part[4..6].parse().ok()?,
            date_part[6..].parse().ok()?,
        );
    }
    let parts: Vec<&str> = date_part.split(['-', '/', '.', '年', '月']).collect();
    if parts.len() != 3
        || parts
            .iter()
            .any(|p| p.is_empty() || p.len() > 4 || !p.bytes().all(|b| b.is_ascii_digit()))
        || parts[0].len() != 4
    {
        return None;
    }
    NaiveDate::from_ymd_opt(parts[0].parse().ok()?, parts[1].parse().ok()?, parts[2].parse().ok()?)
}

/// A date cell: a date-formatted serial, a number that is a serial or
/// `yyyymmdd`, or text.
pub fn date_value(cell: &Cell) -> Result<Option<NaiveDate>, &'static str> {
    let bad = "import.date_format";
    match cell {
        Cell::Empty => Ok(None),
        Cell::Date(serial) => excel_serial_to_date(*serial).map(Some).ok_or(bad),
        Cell::Number(n) if (19_000_101.0..=29_991_231.0).contains(n) => {
            parse_date_text(&number_text(*n)).map(Some).ok_or(bad)
        }
        Cell::Number(n) => excel_serial_to_date(*n).map(Some).ok_or(bad),
        Cell::Int(i) if (19_000_101..=29_991_231).contains(i) => {
            parse_date_text(&i.to_string()).map(Some).ok_or(bad)
        }
        Cell::Int(i) => excel_serial_to_date(*i as f64).map(Some).ok_or(bad),
        Cell::Text(t) if clean(t).is_empty() => Ok(None),
        Cell::Text(t) => parse_date_text(t).map(Some).ok_or(bad),
        Cell::Bool(_) | Cell::Error(_) => Err(bad),
    }
}

pub fn parse_sex(input: &str) -> Option<Sex> {
    match clean(input).to_ascii_lowercase().as_str() {
        "男" | "男性" | "m" | "male" | "1" => Some(Sex::Male),
        "女" | "女性" | "f" | "female" | "2" => Some(Sex::Female),
        _ => None,
    }
}

/// 与户主关系 in the words of the household register, or the English name.
pub fn parse_relation(input: &str) -> Option<Relation> {
    let text = clean(input);
    if let Some(relation) = Relation::parse(&text.to_ascii_lowercase()) {
        return Some(relation);
    }
    Some(match text.as_str() {
        "户主" | "本人" | "户主本人" => Relation::Head,
        "配偶" | "妻" | "妻子" | "夫" | "丈夫" | "之妻" | "之夫" => Relation::Spouse,
        "子" | "女" | "子女" | "儿子" | "女儿" | "长子" | "次子" | "长女" | "次女" | "之子"
        | "之女" => Relation::Child,
        "儿媳" | "女婿" | "媳妇" => Relation::ChildInLaw,
        "孙子" | "孙女" | "外孙" | "外孙子" | "外孙女" | "孙子女" => {
            Relation::Grandchild
        }
        "父亲" | "母亲" | "父" | "母" | "父母" => Relation::Parent,
        "岳父" | "岳母" | "公公" | "婆婆" => Relation::ParentInLaw,
        "祖父" | "祖母" | "外祖父" | "外祖母" | "爷爷" | "奶奶" | "外公" | "外婆" => {
            Relation::Grandparent
        }
        "兄" | "弟" | "姐" | "妹" | "哥哥" | "弟弟" | "姐姐" | "妹妹" | "兄弟姐妹" => {
            Relation::Sibling
        }
        "租户" | "租客" | "承租人" | "房客" => Relation::Tenant,
        "其他" | "其它" | "其他亲属" | "非亲属" => Relation::Other,
        _ => return None,
    })
}

/// `Some(false)` for 户籍 (registered), `Some(true)` for 流动 (floating).
pub fn parse_floating(input: &str) -> Option<bool> {
    match clean(input).to_ascii_lowercase().as_str() {
        "户籍" | "户籍人口" | "常住" | "常住人口" | "本地" | "户籍人员" | "registered" => {
            Some(false)
        }
        "流动" | "流动人口" | "外来" | "外来人口" | "暂住" | "流动人员" | "寄住" | "floating" => {
            Some(true)
        }
        _ => None,
    }
}

/// Tags separated by commas (either width), 、, semicolons or spaces; the
/// Chinese names of the built-in key groups are understood.
pub fn parse_tags(input: &str) -> Result<Vec<Tag>, crate::resident::TagError> {
    let text = clean(input);
    let mut tags: Vec<Tag> = Vec::new();
    for part in
        text.split([',', '，', '、', ';', '；', ' ', '/']).map(str::trim).filter(|p| !p.is_empty())
    {
        let slug = match part {
            "独居老人" | "空巢老人" => Tag::ELDERLY_ALONE,
            "高龄老人" | "80岁以上" | "八十岁以上" | "高龄" => Tag::AGED_80_PLUS,
            "慢性病" | "慢病" | "基础病" | "慢性病患者" => Tag::CHRONIC_DISEASE,
            "残疾" | "残疾人" => Tag::DISABLED,
            "孕妇" | "孕产妇" => Tag::PREGNANT,
            "婴幼儿" | "婴儿" => Tag::INFANT,
            other => other,
        };
        let tag = Tag::parse(&slug.to_ascii_lowercase())?;
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    tags.sort();
    Ok(tags)
}

/// What identifies a building across spellings: `3号楼`, `3栋`, `3幢`, `3`
/// are one building.
pub fn building_key(name: &str) -> String {
    strip_suffixes(&clean(name).to_lowercase(), &["号楼", "栋", "幢", "号", "楼", "座"])
}

/// What identifies a unit across spellings: `2单元`, `2`.
pub fn unit_key(name: &str) -> String {
    strip_suffixes(&clean(name).to_lowercase(), &["单元", "门"])
}

/// What identifies a room: `1201室`, `1201`.
pub fn room_key(name: &str) -> String {
    strip_suffixes(&clean(name), &["室", "号", "房"])
}

fn strip_suffixes(text: &str, suffixes: &[&str]) -> String {
    let mut text = text.replace(' ', "");
    for suffix in suffixes {
        if let Some(rest) = text.strip_suffix(suffix).filter(|r| !r.is_empty()) {
            text = rest.to_owned();
            break;
        }
    }
    text
}

/// A row that passed every check: where the person lives, as written, and
/// who they are, as domain values.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedRow {
    pub community: Option<String>,
    pub grid: Option<String>,
    pub building: String,
    pub unit: String,
    pub room: String,
    pub name: PersonName,
    pub sex: Sex,
    pub birth_date: NaiveDate,
    pub id_document: IdDocument,
    pub phone: Option<MobilePhone>,
    pub relation: Relation,
    pub residence: Residence,
    pub tags: Vec<Tag>,
}

/// Longest origin text kept, as in the registry form.
const MAX_ORIGIN: usize = 100;
/// Longest area or room name read from a cell.
const MAX_PLACE: usize = 100;

/// Validates one row with the registry's own types. Every problem of the
/// row is returned, not only the first, so one round of corrections fixes
/// the row. `today` is passed in: this stays pure.
pub fn parse_row(
    cells: &[Cell],
    mapping: &ColumnMapping,
    today: NaiveDate,
) -> Result<ImportedRow, Vec<CellProblem>> {
    let mut problems: Vec<CellProblem> = Vec::new();
    let cell = |field: Field| -> &Cell {
        mapping.column_of(field).and_then(|i| cells.get(i)).unwrap_or(&Cell::Empty)
    };
    let text = |field: Field, problems: &mut Vec<CellProblem>| -> Option<String> {
        let value = cell_text(cell(field))?;
        if value.chars().count() > MAX_PLACE {
            problems.push(CellProblem::new(field, "text.too_long"));
            return None;
        }
        if value.chars().any(char::is_control) {
            problems.push(CellProblem::new(field, "text.control_character"));
            return None;
        }
        Some(value)
    };

    let name = match PersonName::parse(&cell_text(cell(Field::Name)).unwrap_or_default()) {
        Ok(name) => Some(name),
        Err(e) => {
            problems.push(CellProblem::new(Field::Name, e.code()));
            None
        }
    };
    let id_document = match id_text(cell(Field::IdNumber)) {
        Ok(Some(text)) => match IdDocument::parse(&text, today) {
            Ok(doc) => Some(doc),
            Err(e) => {
                problems.push(CellProblem::new(Field::IdNumber, e.code()));
                None
            }
        },
        // Re-running a file must update, never duplicate: without a
        // document a person cannot be recognised the second time.
        Ok(None) => {
            problems.push(CellProblem::new(Field::IdNumber, "import.id_required"));
            None
        }
        Err(code) => {
            problems.push(CellProblem::new(Field::IdNumber, code));
            None
        }
    };
    let phone = match cell(Field::Phone) {
        Cell::Number(n) if n.fract() == 0.0 && *n > 0.0 && *n < MAX_EXACT_INTEGER => {
            Some(format!("{}", *n as i64))
        }
        other => cell_text(other),
    };
    let phone = match phone.map(|p| MobilePhone::parse(&p)) {
        None => None,
        Some(Ok(p)) => Some(p),
        Some(Err(e)) => {
            problems.push(CellProblem::new(Field::Phone, e.code()));
            None
        }
    };

    let given_sex = match cell_text(cell(Field::Sex)) {
        None => None,
        Some(t) => match parse_sex(&t) {
            Some(sex) => Some(sex),
            None => {
                problems.push(CellProblem::new(Field::Sex, "import.sex_unknown"));
                None
            }
        },
    };
    let given_birth = match date_value(cell(Field::BirthDate)) {
        Ok(d) => d,
        Err(code) => {
            problems.push(CellProblem::new(Field::BirthDate, code));
            None
        }
    };
    let derived_sex = id_document.as_ref().and_then(IdDocument::sex);
    let derived_birth = id_document.as_ref().and_then(IdDocument::birth_date);
    let sex = match (given_sex, derived_sex) {
        (Some(g), Some(d)) if g != d => {
            problems.push(CellProblem::new(Field::Sex, "resident.sex_mismatch"));
            None
        }
        (g, d) => g.or(d),
    };
    let birth_date = match (given_birth, derived_birth) {
        (Some(g), Some(d)) if g != d => {
            problems.push(CellProblem::new(Field::BirthDate, "resident.birth_date_mismatch"));
            None
        }
        (Some(g), _) if g > today => {
            problems.push(CellProblem::new(Field::BirthDate, "resident.birth_date_future"));
            None
        }
        (g, d) => g.or(d),
    };
    // Documents without sex or birth date (permits) need both columns.
    if id_document.is_some() && sex.is_none() && !problems.iter().any(|p| p.field == Field::Sex) {
        problems.push(CellProblem::new(Field::Sex, "field.required"));
    }
    if id_document.is_some()
        && birth_date.is_none()
        && !problems.iter().any(|p| p.field == Field::BirthDate)
    {
        problems.push(CellProblem::new(Field::BirthDate, "field.required"));
    }

    let relation = match cell_text(cell(Field::Relation)) {
        // A list without the column (a property company's) says nothing
        // about family ties; "other" claims none.
        None => Some(Relation::Other),
        Some(t) => parse_relation(&t).or_else(|| {
            problems.push(CellProblem::new(Field::Relation, "import.relation_unknown"));
            None
        }),
    };
    let floating = match cell_text(cell(Field::Residence)) {
        None => Some(false),
        Some(t) => parse_floating(&t).or_else(|| {
            problems.push(CellProblem::new(Field::Residence, "import.residence_unknown"));
            None
        }),
    };
    let residence = match floating {
        Some(true) => {
            let arrived_on = match date_value(cell(Field::ArrivedOn)) {
                Ok(Some(d)) if d > today || birth_date.is_some_and(|b| d < b) => {
                    problems.push(CellProblem::new(Field::ArrivedOn, "resident.arrival_date"));
                    None
                }
                Ok(Some(d)) => Some(d),
                Ok(None) => {
                    problems.push(CellProblem::new(Field::ArrivedOn, "field.required"));
                    None
                }
                Err(code) => {
                    problems.push(CellProblem::new(Field::ArrivedOn, code));
                    None
                }
            };
            let origin = cell_text(cell(Field::Origin));
            let origin = match origin {
                Some(o) if o.chars().count() > MAX_ORIGIN => {
                    problems.push(CellProblem::new(Field::Origin, "text.too_long"));
                    None
                }
                Some(o) => Some(o),
                None => {
                    problems.push(CellProblem::new(Field::Origin, "field.required"));
                    None
                }
            };
            arrived_on
                .zip(origin)
                .map(|(arrived_on, origin)| Residence::Floating { arrived_on, origin })
        }
        Some(false) => Some(Residence::Registered),
        None => None,
    };
    let tags = match cell_text(cell(Field::Tags)) {
        None => Some(Vec::new()),
        Some(t) => match parse_tags(&t) {
            Ok(tags) => Some(tags),
            Err(e) => {
                problems.push(CellProblem::new(Field::Tags, e.code()));
                None
            }
        },
    };

    let community = text(Field::Community, &mut problems);
    let grid = text(Field::Grid, &mut problems);
    let building = text(Field::Building, &mut problems);
    if building.is_none() && !problems.iter().any(|p| p.field == Field::Building) {
        problems.push(CellProblem::new(Field::Building, "field.required"));
    }
    // A building without units is one unit: many lists have no unit column.
    let unit = text(Field::Unit, &mut problems).unwrap_or_else(|| "1".to_owned());
    let room = text(Field::Room, &mut problems);
    if room.is_none() && !problems.iter().any(|p| p.field == Field::Room) {
        problems.push(CellProblem::new(Field::Room, "field.required"));
    }

    if !problems.is_empty() {
        return Err(problems);
    }
    match (name, sex, birth_date, id_document, relation, residence, tags, building, room) {
        (
            Some(name),
            Some(sex),
            Some(birth_date),
            Some(id_document),
            Some(relation),
            Some(residence),
            Some(tags),
            Some(building),
            Some(room),
        ) => Ok(ImportedRow {
            community,
            grid,
            building,
            unit,
            room,
            name,
            sex,
            birth_date,
            id_document,
            phone,
            relation,
            residence,
            tags,
        }),
        // Every `None` above pushed a problem; this arm is unreachable, but
        // answering with a problem beats a panic on a path a fuzzer may find.
        _ => Err(vec![CellProblem::new(Field::Name, "import.row_invalid")]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2024, 6, 1).unwrap()
    }

    fn texts(cells: &[&str]) -> Vec<Cell> {
        cells.iter().map(|c| Cell::text(c)).collect()
    }

    #[test]
    fn full_width_and_spaces_are_normalised() {
        assert_eq!(half_width("１２３ＡＢＣｘ（）"), "123ABCx()");
        assert_eq!(clean("\u{3000} １３８００１３８０００ \u{a0}"), "13800138000");
        assert_eq!(clean("\u{feff}姓名"), "姓名");
    }

    #[test]
    fn headers_are_recognised_in_their_usual_spellings() {
        for (header, field) in [
            ("姓名", Field::Name),
            (" 姓 名 ", Field::Name),
            ("*姓名", Field::Name),
            ("身份证号（必填）", Field::IdNumber),
            ("公民身份号码", Field::IdNumber),
            ("证件号码", Field::IdNumber),
            ("联系电话", Field::Phone),
            ("手机号", Field::Phone),
            ("楼栋", Field::Building),
            ("楼号", Field::Building),
            ("门牌号", Field::Room),
            ("房号", Field::Room),
            ("户籍/流动", Field::Residence),
            ("与户主关系", Field::Relation),
            ("出生日期(yyyy-mm-dd)", Field::BirthDate),
            ("ID Number", Field::IdNumber),
            ("Phone", Field::Phone),
            ("Date of birth", Field::BirthDate),
            ("重点人群", Field::Tags),
            ("民族", Field::Ethnicity),
        ] {
            assert_eq!(field_for_header(header), Some(field), "{header}");
        }
        assert_eq!(field_for_header("备注"), None);
        assert_eq!(field_for_header(""), None);
    }

    #[test]
    fn header_row_is_found_below_title_rows() {
        let rows = vec![
            texts(&["永安社区居民信息登记表"]),
            texts(&["填报日期：2024年5月1日"]),
            vec![],
            texts(&["序号", "姓名", "身份证号", "楼栋", "门牌号"]),
            texts(&["1", "张三", "11010519491231002X", "1", "101"]),
        ];
        assert_eq!(find_header_row(&rows), Some(3));
        assert_eq!(find_header_row(&[texts(&["姓名"])]), None);
    }

    #[test]
    fn mapping_can_be_overridden() {
        let mut mapping = ColumnMapping::detect(&texts(&["姓名", "证件", "电话", "电话"]));
        assert_eq!(mapping.fields, vec![Some(Field::Name), None, Some(Field::Phone), None]);
        let (column, field) = parse_override("证件=id_number").unwrap();
        mapping.set(&column, field).unwrap();
        assert_eq!(mapping.column_of(Field::IdNumber), Some(1));
        let (column, field) = parse_override("电话=身份证号").unwrap();
        mapping.set(&column, field).unwrap();
        assert_eq!(mapping.column_of(Field::IdNumber), Some(2), "the field moves, once");
        assert_eq!(mapping.fields[1], None);
        assert_eq!(parse_override("电话="), Ok(("电话".into(), None)));
        assert_eq!(parse_override("电话"), Err(MappingError::Syntax));
        assert!(matches!(parse_override("电话=邮编"), Err(MappingError::UnknownField(_))));
        assert!(matches!(mapping.set("邮编", None), Err(MappingError::UnknownColumn(_))));
        assert_eq!(mapping.missing_required(true), vec![Field::Building, Field::Room, Field::Grid]);
    }

    #[test]
    fn a_whole_mapping_can_be_assigned_column_by_column() {
        // Two columns with the same header are told apart by position.
        let mut mapping = ColumnMapping::detect(&texts(&["姓名", "电话", "电话"]));
        mapping.assign(&[Some(Field::Name), None, Some(Field::Phone)]).unwrap();
        assert_eq!(mapping.column_of(Field::Phone), Some(2));
        assert_eq!(
            mapping.assign(&[Some(Field::Phone), None, Some(Field::Phone)]),
            Err(MappingError::FieldTwice(Field::Phone))
        );
        assert_eq!(mapping.column_of(Field::Phone), Some(2), "a refused choice changes nothing");
        assert_eq!(mapping.assign(&[None, None]), Err(MappingError::Syntax));
    }

    #[test]
    fn id_numbers_stored_as_numbers() {
        // A 15-digit legacy ID fits a double exactly and survives.
        assert_eq!(
            id_text(&Cell::Number(340_524_800_101_001.0)),
            Ok(Some("340524800101001".into()))
        );
        // 18 digits do not: the value is above 2^53, digits are gone.
        assert_eq!(id_text(&Cell::Number(371_602_199_001_010_000.0)), Err(ID_SCIENTIFIC));
        assert_eq!(id_text(&Cell::Number(3.7160219900101e17)), Err(ID_SCIENTIFIC));
        assert_eq!(id_text(&Cell::text("3.7160219900101E+17")), Err(ID_SCIENTIFIC));
        assert_eq!(id_text(&Cell::text(" 3.71602E17 ")), Err(ID_SCIENTIFIC));
        assert_eq!(
            id_text(&Cell::text("１１０１０５１９４９１２３１００２Ｘ")),
            Ok(Some("11010519491231002X".into()))
        );
        assert_eq!(id_text(&Cell::text("  ")), Ok(None));
        assert_eq!(id_text(&Cell::Bool(true)), Err("id.format"));
    }

    #[test]
    fn dates_as_serials_and_text() {
        let d = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        assert_eq!(excel_serial_to_date(44931.0), Some(d(2023, 1, 5)));
        assert_eq!(excel_serial_to_date(1.0), Some(d(1900, 1, 1)));
        assert_eq!(excel_serial_to_date(59.0), Some(d(1900, 2, 28)));
        assert_eq!(excel_serial_to_date(61.0), Some(d(1900, 3, 1)));
        assert_eq!(excel_serial_to_date(60.0), None);
        for text in [
            "2023-01-05",
            "2023/1/5",
            "2023年1月5日",
            "20230105",
            "2023.1.5",
            "2023-01-05 00:00:00",
        ] {
            assert_eq!(parse_date_text(text), Some(d(2023, 1, 5)), "{text}");
        }
        for text in ["2023-13-05", "23/1/5", "5/1/2023", "yesterday", ""] {
            assert_eq!(parse_date_text(text), None, "{text}");
        }
        assert_eq!(date_value(&Cell::Date(44931.0)), Ok(Some(d(2023, 1, 5))));
        assert_eq!(date_value(&Cell::Number(20_230_105.0)), Ok(Some(d(2023, 1, 5))));
        assert_eq!(date_value(&Cell::Number(44931.0)), Ok(Some(d(2023, 1, 5))));
        assert_eq!(date_value(&Cell::text("去年")), Err("import.date_format"));
    }

    #[test]
    fn words_of_the_register() {
        assert_eq!(parse_relation("户主"), Some(Relation::Head));
        assert_eq!(parse_relation("妻子"), Some(Relation::Spouse));
        assert_eq!(parse_relation("spouse"), Some(Relation::Spouse));
        assert_eq!(parse_relation("老板"), None);
        assert_eq!(parse_sex(" 女 "), Some(Sex::Female));
        assert_eq!(parse_floating("流动人口"), Some(true));
        assert_eq!(parse_floating("户籍"), Some(false));
        assert_eq!(
            parse_tags("独居老人、慢性病, disabled")
                .unwrap()
                .iter()
                .map(Tag::as_str)
                .collect::<Vec<_>>(),
            vec!["chronic_disease", "disabled", "elderly_alone"]
        );
        assert!(parse_tags("某某人群").is_err());
        assert_eq!(building_key("3号楼"), "3");
        assert_eq!(building_key("３栋"), "3");
        assert_eq!(unit_key("2单元"), "2");
        assert_eq!(room_key("1201室"), "1201");
    }

    fn mapping() -> ColumnMapping {
        ColumnMapping::detect(&texts(&[
            "姓名",
            "身份证号",
            "性别",
            "出生日期",
            "联系电话",
            "网格",
            "楼栋",
            "单元",
            "门牌号",
            "与户主关系",
            "户籍/流动",
            "来本地日期",
            "来源地",
            "标签",
        ]))
    }

    #[test]
    fn a_good_row_becomes_domain_values() {
        let row = texts(&[
            " 张三 ",
            "11010519491231002X",
            "女",
            "1949-12-31",
            "138 0013 8000",
            "一网格",
            "3号楼",
            "2单元",
            "1201",
            "户主",
            "流动",
            "2024/5/1",
            "山东济南",
            "独居老人",
        ]);
        let parsed = parse_row(&row, &mapping(), today()).unwrap();
        assert_eq!(parsed.name.as_str(), "张三");
        assert_eq!(parsed.sex, Sex::Female);
        assert_eq!(parsed.phone.unwrap().as_str(), "13800138000");
        assert_eq!(parsed.building, "3号楼");
        assert_eq!(
            parsed.residence,
            Residence::Floating {
                arrived_on: NaiveDate::from_ymd_opt(2024, 5, 1).unwrap(),
                origin: "山东济南".into()
            }
        );
    }

    #[test]
    fn a_bad_row_names_every_problem() {
        let row = texts(&[
            "",
            "110101202311012171",
            "男",
            "",
            "12345",
            "一网格",
            "",
            "",
            "",
            "老板",
            "流动",
            "",
            "",
            "",
        ]);
        let problems = parse_row(&row, &mapping(), today()).unwrap_err();
        let codes: Vec<(Field, &str)> = problems.iter().map(|p| (p.field, p.code)).collect();
        assert_eq!(
            codes,
            vec![
                (Field::Name, "name.empty"),
                (Field::IdNumber, "id.checksum"),
                (Field::Phone, "phone.format"),
                (Field::Relation, "import.relation_unknown"),
                (Field::ArrivedOn, "field.required"),
                (Field::Origin, "field.required"),
                (Field::Building, "field.required"),
                (Field::Room, "field.required"),
            ]
        );
    }

    proptest! {
        #[test]
        fn arbitrary_rows_never_panic(cells in prop::collection::vec("\\PC{0,24}", 0..16)) {
            let row: Vec<Cell> = cells.iter().map(|c| Cell::text(c)).collect();
            let _ = parse_row(&row, &mapping(), today());
            let _ = find_header_row(std::slice::from_ref(&row));
            let mut m = ColumnMapping::detect(&row);
            for c in &cells {
                if let Ok((column, field)) = parse_override(c) {
                    let _ = m.set(&column, field);
                }
            }
        }

        #[test]
        fn arbitrary_numbers_never_panic(n in any::<f64>(), i in any::<i64>()) {
            for cell in [Cell::Number(n), Cell::Int(i), Cell::Date(n)] {
                let _ = id_text(&cell);
                let _ = date_value(&cell);
                let _ = cell.display();
            }
        }

        #[test]
        fn id_text_never_invents_digits(n in 1e15f64..1e19) {
            // Above 2^53 a number is never read as an ID.
            if n >= MAX_EXACT_INTEGER {
                prop_assert_eq!(id_text(&Cell::Number(n.floor())), Err(ID_SCIENTIFIC));
            }
        }
    }
}
