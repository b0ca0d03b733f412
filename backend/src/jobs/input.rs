//! What people hand the assignment wizard: pasted serial numbers, or a CSV file.
//!
//! Both readers are pure and never drop anything silently: every token (pasted text) or row
//! (CSV) becomes an [`Entry`], well-formed, a duplicate of an earlier one, or malformed with
//! the reason, each with its [`Position`] so the preview can say "line 12, column 3".
//!
//! # Serial numbers
//! Apple's documentation says only that a device's id is its serial number (SPEC §7); it gives
//! no format. Serials seen in practice are 10 (2021 on) or 12 (older) letters and digits, a
//! few older ones 11. So the check is liberal: after folding to upper case, ASCII letters and
//! digits only, [`MIN_SERIAL_LEN`] to [`MAX_SERIAL_LEN`] characters. Anything else is reported
//! as malformed, never corrected behind the person's back.
//!
//! # Pasted text
//! Tokens are separated by line breaks, commas, semicolons, tabs and any other white space;
//! quotes around a token (`"C02…"`, `'C02…'`, typographic ones too) are removed. Empty tokens
//! (`a,,b`) are separators, not entries.
//!
//! # CSV
//! RFC 4180: quoted cells with `""` for a quote and line breaks inside quotes, a byte order
//! mark at the start is ignored, the delimiter is a comma, or a semicolon or tab when the
//! first line has more of those (spreadsheets in many locales write semicolons). The first row
//! is a header when a cell names a serial number (`Serial`, `serial_number`, `Serial Number`…)
//! or when none of its cells reads as one. The serial column is the one the person chose, else
//! the header that names it, else the first column whose values mostly read as serials.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Shortest serial number accepted (Apple's are 10 to 12 characters; older ones 11).
pub const MIN_SERIAL_LEN: usize = 8;
/// Longest serial number accepted.
pub const MAX_SERIAL_LEN: usize = 20;
/// Most entries one wizard run takes (one job).
pub const MAX_ENTRIES: usize = 50_000;
/// Largest input, in bytes (a CSV export of 50,000 devices with every column fits).
pub const MAX_INPUT_BYTES: usize = 12 * 1024 * 1024;

/// Where an entry stands in the input, both 1-based: for pasted text the line and the
/// character column where the token starts; for CSV the line the row starts on and the
/// number of the column (cell) it was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Position {
    pub line: u32,
    pub column: u32,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// What an entry turned out to be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EntryKind {
    /// A well-formed serial number, first time seen.
    Serial,
    /// The same serial number as an earlier entry (kept once, at `first`).
    Duplicate { first: Position },
    /// Not a serial number; `reason` says why in words.
    Malformed { reason: String },
}

/// One token of pasted text, or one row's cell of a CSV file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub position: Position,
    /// As written, without surrounding white space and quotes.
    pub text: String,
    /// The serial number (upper case) when well-formed, duplicates included.
    pub serial: Option<String>,
    pub kind: EntryKind,
}

/// The entries of one input, in input order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParsedInput {
    pub entries: Vec<Entry>,
}

impl ParsedInput {
    /// The distinct well-formed serial numbers, in input order.
    pub fn serials(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().filter_map(|e| match e.kind {
            EntryKind::Serial => e.serial.as_deref(),
            _ => None,
        })
    }

    /// How many entries are distinct serials, duplicates and malformed.
    pub fn tally(&self) -> Tally {
        let mut t = Tally::default();
        for e in &self.entries {
            match e.kind {
                EntryKind::Serial => t.serials += 1,
                EntryKind::Duplicate { .. } => t.duplicates += 1,
                EntryKind::Malformed { .. } => t.malformed += 1,
            }
        }
        t
    }
}

/// Entry counts of a [`ParsedInput`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    pub serials: usize,
    pub duplicates: usize,
    pub malformed: usize,
}

impl Tally {
    pub fn entries(&self) -> usize {
        self.serials + self.duplicates + self.malformed
    }
}

/// Why an input cannot be read at all (as opposed to entries that are malformed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("there is nothing to read: paste serial numbers or a CSV file")]
    Empty,
    #[error(
        "the input is {size} (at most {} per run): split it into several runs",
        megabytes(MAX_INPUT_BYTES)
    )]
    TooLarge { size: String },
    #[error(
        "the input has more than {MAX_ENTRIES} entries (the limit of one run): split it into several runs"
    )]
    TooMany,
    #[error("line {line}: {message}")]
    Csv { line: u32, message: String },
    #[error("no column holds serial numbers: choose the column")]
    NoSerialColumn,
    #[error("column {chosen} does not exist: the file has {columns}")]
    NoSuchColumn { chosen: u32, columns: u32 },
}

fn megabytes(bytes: usize) -> String {
    format!("{:.1} MB", bytes as f64 / 1_000_000.0)
}

/// Checks one token as a serial number: its upper-case form, or why it is not one.
pub fn check_serial(text: &str) -> Result<String, String> {
    if let Some(bad) = text.chars().find(|c| !c.is_ascii_alphanumeric()) {
        let shown = match bad {
            ' ' => "a space".to_owned(),
            c if c.is_whitespace() || c.is_control() => format!("the character U+{:04X}", c as u32),
            c => format!("“{c}”"),
        };
        return Err(format!(
            "contains {shown}; serial numbers have letters and digits only"
        ));
    }
    let n = text.len();
    if !(MIN_SERIAL_LEN..=MAX_SERIAL_LEN).contains(&n) {
        return Err(format!(
            "has {n} character{}; serial numbers have {MIN_SERIAL_LEN} to {MAX_SERIAL_LEN} \
             (Apple's usually 10 or 12)",
            if n == 1 { "" } else { "s" }
        ));
    }
    Ok(text.to_ascii_uppercase())
}

/// Quote characters removed around a token.
fn is_quote(c: char) -> bool {
    matches!(c, '"' | '\'' | '“' | '”' | '‘' | '’' | '«' | '»' | '`')
}

/// Separators of pasted serial numbers, besides white space.
fn is_separator(c: char) -> bool {
    c.is_whitespace() || matches!(c, ',' | ';')
}

/// Collects entries, detecting duplicates, within the size limits.
struct Collector {
    entries: Vec<Entry>,
    first_seen: HashMap<String, Position>,
}

impl Collector {
    fn new() -> Self {
        Self {
            entries: Vec::new(),
            first_seen: HashMap::new(),
        }
    }

    fn push(&mut self, position: Position, text: &str) -> Result<(), InputError> {
        if self.entries.len() >= MAX_ENTRIES {
            return Err(InputError::TooMany);
        }
        let text = text
            .trim()
            .trim_matches(is_quote)
            .trim()
            .trim_start_matches('\u{feff}');
        let entry = match check_serial(text) {
            Err(reason) => Entry {
                position,
                text: text.to_owned(),
                serial: None,
                kind: EntryKind::Malformed { reason },
            },
            Ok(serial) => {
                let kind = match self.first_seen.get(&serial) {
                    Some(first) => EntryKind::Duplicate { first: *first },
                    None => {
                        self.first_seen.insert(serial.clone(), position);
                        EntryKind::Serial
                    }
                };
                Entry {
                    position,
                    text: text.to_owned(),
                    serial: Some(serial),
                    kind,
                }
            }
        };
        self.entries.push(entry);
        Ok(())
    }

    fn finish(self) -> Result<ParsedInput, InputError> {
        if self.entries.is_empty() {
            return Err(InputError::Empty);
        }
        Ok(ParsedInput {
            entries: self.entries,
        })
    }
}

fn check_size(text: &str) -> Result<(), InputError> {
    if text.len() > MAX_INPUT_BYTES {
        return Err(InputError::TooLarge {
            size: megabytes(text.len()),
        });
    }
    Ok(())
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Reads pasted serial numbers (see the module note).
pub fn parse_serials(text: &str) -> Result<ParsedInput, InputError> {
    check_size(text)?;
    let mut out = Collector::new();
    for (line_index, line) in text.lines().enumerate() {
        let mut start: Option<(usize, usize)> = None; // (byte offset, column)
        let mut column = 0;
        for (offset, c) in line.char_indices() {
            column += 1;
            let separator = is_separator(c) || c == '\u{feff}';
            match (start, separator) {
                (None, false) => start = Some((offset, column)),
                (Some((from, at)), true) => {
                    push_token(&mut out, line_index, at, &line[from..offset])?;
                    start = None;
                }
                _ => {}
            }
        }
        if let Some((from, at)) = start {
            push_token(&mut out, line_index, at, &line[from..])?;
        }
    }
    out.finish()
}

fn push_token(
    out: &mut Collector,
    line_index: usize,
    column: usize,
    token: &str,
) -> Result<(), InputError> {
    // A token of quotes only (`""`) is an empty cell, not an entry.
    if token.chars().all(is_quote) {
        return Ok(());
    }
    out.push(
        Position {
            line: count(line_index + 1),
            column: count(column),
        },
        token,
    )
}

/// One CSV row: the line it starts on and its cells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvRow {
    pub line: u32,
    pub cells: Vec<String>,
}

/// Splits CSV text into rows (RFC 4180, see the module note). Blank lines are skipped.
pub fn csv_rows(text: &str) -> Result<Vec<CsvRow>, InputError> {
    check_size(text)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let delimiter = detect_delimiter(text);
    let mut rows = Vec::new();
    let mut cells: Vec<String> = Vec::new();
    let mut cell = String::new();
    let mut line: u32 = 1;
    let mut row_line: u32 = 1;
    let mut chars = text.chars().peekable();
    // State: at the start of a cell, inside an unquoted cell, inside quotes, after quotes.
    #[derive(PartialEq)]
    enum State {
        Start,
        Plain,
        Quoted,
        AfterQuote,
    }
    let mut state = State::Start;
    let mut quote_line = 1;
    let end_row = |cells: &mut Vec<String>, cell: &mut String, rows: &mut Vec<CsvRow>, at: u32| {
        cells.push(std::mem::take(cell));
        let row = std::mem::take(cells);
        if !row.iter().all(|c| c.trim().is_empty()) {
            rows.push(CsvRow {
                line: at,
                cells: row,
            });
        }
    };
    while let Some(c) = chars.next() {
        match state {
            State::Quoted => match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    cell.push('"');
                }
                '"' => state = State::AfterQuote,
                '\n' => {
                    line += 1;
                    cell.push('\n');
                }
                c => cell.push(c),
            },
            _ if c == delimiter => {
                cells.push(std::mem::take(&mut cell));
                state = State::Start;
            }
            _ if c == '\n' || c == '\r' => {
                if c == '\r' && chars.peek() == Some(&'\n') {
                    chars.next();
                }
                end_row(&mut cells, &mut cell, &mut rows, row_line);
                line += 1;
                row_line = line;
                state = State::Start;
            }
            State::Start if c == '"' => {
                state = State::Quoted;
                quote_line = line;
            }
            State::Start | State::Plain => {
                cell.push(c);
                state = State::Plain;
            }
            State::AfterQuote => {
                if c == ' ' || c == '\t' {
                    continue;
                }
                return Err(InputError::Csv {
                    line,
                    message: format!(
                        "“{c}” follows a closing quote in cell {}; a quote inside a quoted cell \
                         is written twice (\"\")",
                        cells.len() + 1
                    ),
                });
            }
        }
        if rows.len() > MAX_ENTRIES + 1 {
            return Err(InputError::TooMany);
        }
    }
    if state == State::Quoted {
        return Err(InputError::Csv {
            line: quote_line,
            message: format!(
                "the quoted cell {} is never closed (a \" is missing)",
                cells.len() + 1
            ),
        });
    }
    if !cell.is_empty() || !cells.is_empty() {
        end_row(&mut cells, &mut cell, &mut rows, row_line);
    }
    Ok(rows)
}

/// Comma, or a semicolon or tab when the first line (outside quotes) has more of those.
fn detect_delimiter(text: &str) -> char {
    let mut quoted = false;
    let mut counts = [0usize; 3];
    for c in text.chars() {
        match c {
            '"' => quoted = !quoted,
            '\n' | '\r' if !quoted => break,
            ',' if !quoted => counts[0] += 1,
            ';' if !quoted => counts[1] += 1,
            '\t' if !quoted => counts[2] += 1,
            _ => {}
        }
    }
    let best = (0..3).max_by_key(|&i| (counts[i], 3 - i)).unwrap_or(0);
    [',', ';', '\t'][best]
}

/// Whether a header cell names the serial number column.
pub fn names_serial(cell: &str) -> bool {
    let folded: String = cell
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect();
    folded.contains("serial") || folded == "sn" || folded == "seriennummer"
}

/// One column of a CSV file, as the column chooser shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CsvColumn {
    /// 1-based.
    pub number: u32,
    /// The header cell, when the file has a header.
    pub header: Option<String>,
    /// The first value below the header, to recognise the column by.
    pub sample: Option<String>,
    /// How many of its values read as serial numbers.
    pub serial_like: u32,
}

impl CsvColumn {
    /// "Column 2 (Serial Number)" / "Column 2 (e.g. C02XL0GSJGH5)".
    pub fn label(&self) -> String {
        match (&self.header, &self.sample) {
            (Some(h), _) if !h.trim().is_empty() => {
                format!("Column {} ({})", self.number, h.trim())
            }
            (_, Some(s)) => format!("Column {} (e.g. {})", self.number, s.trim()),
            _ => format!("Column {}", self.number),
        }
    }
}

/// A CSV file read for the wizard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvInput {
    pub has_header: bool,
    pub columns: Vec<CsvColumn>,
    /// 1-based number of the column the serials were read from.
    pub column: u32,
    /// Whether the column was chosen by the person (rather than detected).
    pub chosen: bool,
    pub parsed: ParsedInput,
}

/// The file's columns, whether it has a header, and the detected serial column.
pub fn csv_columns(rows: &[CsvRow]) -> (bool, Vec<CsvColumn>, Option<u32>) {
    let Some(first) = rows.first() else {
        return (false, Vec::new(), None);
    };
    let has_header = first.cells.iter().any(|c| names_serial(c))
        || !first
            .cells
            .iter()
            .any(|c| check_serial(cell_text(c)).is_ok());
    let body = if has_header { &rows[1..] } else { rows };
    let width = rows.iter().map(|r| r.cells.len()).max().unwrap_or(0);
    let columns: Vec<CsvColumn> = (0..width)
        .map(|i| CsvColumn {
            number: count(i + 1),
            header: has_header.then(|| first.cells.get(i).cloned().unwrap_or_default()),
            sample: body
                .iter()
                .filter_map(|r| r.cells.get(i))
                .find(|c| !c.trim().is_empty())
                .map(|c| c.chars().take(40).collect()),
            serial_like: count(
                body.iter()
                    .filter_map(|r| r.cells.get(i))
                    .filter(|c| check_serial(cell_text(c)).is_ok())
                    .count(),
            ),
        })
        .collect();
    let named = columns
        .iter()
        .filter(|c| c.header.as_deref().is_some_and(names_serial))
        .max_by_key(|c| (c.serial_like, std::cmp::Reverse(c.number)))
        .map(|c| c.number);
    let values = body.len().max(1) as u32;
    let looks = columns
        .iter()
        .find(|c| c.serial_like * 2 >= values && c.serial_like > 0)
        .map(|c| c.number);
    (has_header, columns, named.or(looks))
}

fn cell_text(cell: &str) -> &str {
    cell.trim().trim_matches(is_quote).trim()
}

/// Reads a CSV file's serial column: `column` (1-based) when the person chose one, else the
/// detected one.
pub fn parse_csv(text: &str, column: Option<u32>) -> Result<CsvInput, InputError> {
    let rows = csv_rows(text)?;
    if rows.is_empty() {
        return Err(InputError::Empty);
    }
    let (has_header, columns, detected) = csv_columns(&rows);
    let width = count(columns.len());
    let chosen = column.is_some();
    let column = match column {
        Some(c) if c == 0 || c > width => {
            return Err(InputError::NoSuchColumn {
                chosen: c,
                columns: width,
            });
        }
        Some(c) => c,
        None => detected.ok_or(InputError::NoSerialColumn)?,
    };
    let mut out = Collector::new();
    let index = column as usize - 1;
    for row in rows.iter().skip(usize::from(has_header)) {
        let position = Position {
            line: row.line,
            column,
        };
        match row.cells.get(index) {
            Some(cell) if !cell_text(cell).is_empty() => out.push(position, cell)?,
            _ => {
                if out.entries.len() >= MAX_ENTRIES {
                    return Err(InputError::TooMany);
                }
                out.entries.push(Entry {
                    position,
                    text: String::new(),
                    serial: None,
                    kind: EntryKind::Malformed {
                        reason: "the serial number cell of this row is empty".to_owned(),
                    },
                });
            }
        }
    }
    let parsed = out.finish()?;
    Ok(CsvInput {
        has_header,
        columns,
        column,
        chosen,
        parsed,
    })
}

/// Whether pasted text looks like a CSV file: its first line has a cell naming the serial
/// number column next to at least one other cell.
pub fn looks_like_csv(text: &str) -> bool {
    let text = text.trim_start_matches('\u{feff}').trim_start();
    let first = text.lines().next().unwrap_or_default();
    let delimiter = detect_delimiter(first);
    let cells: Vec<&str> = first.split(delimiter).collect();
    cells.len() > 1 && cells.iter().any(|c| names_serial(cell_text(c)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(parsed: &ParsedInput) -> Vec<(String, &EntryKind)> {
        parsed
            .entries
            .iter()
            .map(|e| (e.text.clone(), &e.kind))
            .collect()
    }

    fn at(line: u32, column: u32) -> Position {
        Position { line, column }
    }

    #[test]
    fn any_separator_splits_and_case_is_folded() {
        let parsed = parse_serials(
            "C02XL0GSJGH5\nf5kzq1m2n3p4, DMPXK2LLKXKN;G6TZ81ABCDEF\tH2WQ9XYZ12AB  J9KLMN0PQRST\r\nK7VVWW11XX22",
        )
        .unwrap();
        let serials: Vec<&str> = parsed.serials().collect();
        assert_eq!(
            serials,
            [
                "C02XL0GSJGH5",
                "F5KZQ1M2N3P4",
                "DMPXK2LLKXKN",
                "G6TZ81ABCDEF",
                "H2WQ9XYZ12AB",
                "J9KLMN0PQRST",
                "K7VVWW11XX22"
            ]
        );
        assert_eq!(parsed.entries[1].position, at(2, 1));
        assert_eq!(parsed.entries[1].text, "f5kzq1m2n3p4");
        assert_eq!(parsed.entries[2].position, at(2, 15));
        assert_eq!(parsed.entries[6].position, at(3, 1));
    }

    #[test]
    fn quotes_and_surrounding_space_are_trimmed() {
        let parsed =
            parse_serials("  \"C02XL0GSJGH5\" , 'F5KZQ1M2N3P4'\n“DMPXK2LLKXKN”  \"\" ").unwrap();
        assert_eq!(
            parsed.serials().collect::<Vec<_>>(),
            ["C02XL0GSJGH5", "F5KZQ1M2N3P4", "DMPXK2LLKXKN"]
        );
        assert_eq!(parsed.entries[0].position, at(1, 3));
        assert_eq!(parsed.tally().entries(), 3);
    }

    #[test]
    fn duplicates_are_kept_once_and_point_at_the_first() {
        let parsed =
            parse_serials("C02XL0GSJGH5\nc02xl0gsjgh5\nF5KZQ1M2N3P4 C02XL0GSJGH5").unwrap();
        assert_eq!(
            parsed.serials().collect::<Vec<_>>(),
            ["C02XL0GSJGH5", "F5KZQ1M2N3P4"]
        );
        assert_eq!(
            kinds(&parsed)[1],
            (
                "c02xl0gsjgh5".to_owned(),
                &EntryKind::Duplicate { first: at(1, 1) }
            )
        );
        assert_eq!(
            parsed.entries[3].kind,
            EntryKind::Duplicate { first: at(1, 1) }
        );
        assert_eq!(parsed.entries[3].position, at(3, 14));
        assert_eq!(
            parsed.tally(),
            Tally {
                serials: 2,
                duplicates: 2,
                malformed: 0
            }
        );
    }

    #[test]
    fn malformed_tokens_are_reported_with_position_and_reason() {
        let parsed = parse_serials("C02XL0GSJGH5\nABC C02-XL0GSJ ÉTÉ12345678\nX").unwrap();
        let malformed: Vec<(Position, String, String)> = parsed
            .entries
            .iter()
            .filter_map(|e| match &e.kind {
                EntryKind::Malformed { reason } => {
                    Some((e.position, e.text.clone(), reason.clone()))
                }
                _ => None,
            })
            .collect();
        assert_eq!(malformed.len(), 4);
        assert_eq!(malformed[0].0, at(2, 1));
        assert!(
            malformed[0].2.starts_with("has 3 characters"),
            "{}",
            malformed[0].2
        );
        assert_eq!(malformed[1].0, at(2, 5));
        assert!(malformed[1].2.contains("“-”"), "{}", malformed[1].2);
        assert_eq!(malformed[2].0, at(2, 16));
        assert!(malformed[2].2.contains("“É”"), "{}", malformed[2].2);
        assert_eq!(malformed[3].0, at(3, 1));
        assert!(
            malformed[3].2.starts_with("has 1 character;"),
            "{}",
            malformed[3].2
        );
        assert_eq!(parsed.serials().count(), 1);
    }

    #[test]
    fn the_serial_check_is_liberal_within_letters_digits_and_length() {
        for good in [
            "C02XL0GSJGH5",
            "DMPXK2LLKX",
            "abcdefgh",
            "A1234567890123456789",
        ] {
            assert!(check_serial(good).is_ok(), "{good}");
        }
        for bad in [
            "ABCDEFG",
            "A12345678901234567890",
            "C02XL0GSJGH5!",
            "C02 XL0GS",
            "",
        ] {
            assert!(check_serial(bad).is_err(), "{bad}");
        }
        assert_eq!(check_serial("c02xl0gsjgh5").unwrap(), "C02XL0GSJGH5");
    }

    #[test]
    fn empty_input_and_limits_are_errors_that_say_so() {
        assert_eq!(parse_serials(" \n , ; \t"), Err(InputError::Empty));
        assert_eq!(parse_serials(""), Err(InputError::Empty));
        let many = "ABCDEFGH12\n".repeat(MAX_ENTRIES + 1);
        assert_eq!(parse_serials(&many), Err(InputError::TooMany));
        let exactly = "ABCDEFGH12\n".repeat(MAX_ENTRIES);
        assert_eq!(parse_serials(&exactly).unwrap().entries.len(), MAX_ENTRIES);
        let huge = "x".repeat(MAX_INPUT_BYTES + 1);
        let err = parse_serials(&huge).unwrap_err();
        assert!(matches!(err, InputError::TooLarge { .. }));
        assert!(err.to_string().contains("split it"), "{err}");
    }

    #[test]
    fn csv_rows_follow_rfc_4180() {
        let rows = csv_rows(
            "\u{feff}name,serial\r\n\"Smith, Ann\",C02XL0GSJGH5\r\n\"says \"\"hi\"\"\non two lines\",F5KZQ1M2N3P4\n\n,\nlast,DMPXK2LLKXKN",
        )
        .unwrap();
        assert_eq!(
            rows,
            vec![
                CsvRow {
                    line: 1,
                    cells: vec!["name".into(), "serial".into()]
                },
                CsvRow {
                    line: 2,
                    cells: vec!["Smith, Ann".into(), "C02XL0GSJGH5".into()]
                },
                CsvRow {
                    line: 3,
                    cells: vec!["says \"hi\"\non two lines".into(), "F5KZQ1M2N3P4".into()]
                },
                CsvRow {
                    line: 7,
                    cells: vec!["last".into(), "DMPXK2LLKXKN".into()]
                },
            ]
        );
    }

    #[test]
    fn csv_errors_name_the_line() {
        let err = csv_rows("serial\nC02XL0GSJGH5\n\"F5KZQ1M2N3P4\nmore").unwrap_err();
        assert_eq!(
            err,
            InputError::Csv {
                line: 3,
                message: "the quoted cell 1 is never closed (a \" is missing)".into()
            }
        );
        assert!(err.to_string().starts_with("line 3: "));
        let err = csv_rows("a,b\n\"x\"y,z").unwrap_err();
        assert!(matches!(err, InputError::Csv { line: 2, .. }), "{err:?}");
    }

    #[test]
    fn semicolon_and_tab_files_are_recognised() {
        let rows = csv_rows("Seriennummer;Modell\nC02XL0GSJGH5;iMac, 21.5\"").unwrap();
        assert_eq!(rows[1].cells, ["C02XL0GSJGH5", "iMac, 21.5\""]);
        let rows = csv_rows("a\tb\nc\td").unwrap();
        assert_eq!(rows[1].cells, ["c", "d"]);
    }

    #[test]
    fn the_header_names_the_serial_column() {
        let csv = parse_csv(
            "Model,Serial Number,Owner\niMac,C02XL0GSJGH5,Ann\nMacBook,f5kzq1m2n3p4,Bob\niPad,,Cy\n",
            None,
        )
        .unwrap();
        assert!(csv.has_header);
        assert_eq!(csv.column, 2);
        assert!(!csv.chosen);
        assert_eq!(
            csv.parsed.serials().collect::<Vec<_>>(),
            ["C02XL0GSJGH5", "F5KZQ1M2N3P4"]
        );
        // The empty cell is reported, with its line.
        let empty = &csv.parsed.entries[2];
        assert_eq!(empty.position, at(4, 2));
        assert!(matches!(&empty.kind, EntryKind::Malformed { reason } if reason.contains("empty")));
        assert_eq!(csv.columns[1].label(), "Column 2 (Serial Number)");
        assert_eq!(csv.columns[1].serial_like, 2);
    }

    #[test]
    fn without_a_header_the_column_of_serial_looking_values_is_taken() {
        let csv = parse_csv(
            "Ann,C02XL0GSJGH5\nBob,F5KZQ1M2N3P4\nCy,DMPXK2LLKXKN\n",
            None,
        )
        .unwrap();
        assert!(!csv.has_header);
        assert_eq!(csv.column, 2);
        assert_eq!(csv.parsed.entries.len(), 3);
        assert_eq!(csv.parsed.entries[0].position, at(1, 2));
    }

    #[test]
    fn a_header_without_serial_looking_cells_is_a_header_even_unnamed() {
        let csv = parse_csv("device,owner\nC02XL0GSJGH5,Ann\nF5KZQ1M2N3P4,Bob\n", None).unwrap();
        assert!(csv.has_header);
        assert_eq!(csv.column, 1);
        assert_eq!(csv.parsed.serials().count(), 2);
    }

    #[test]
    fn the_chosen_column_wins_and_must_exist() {
        let text = "serial,asset tag\nC02XL0GSJGH5,TAG00000001\nF5KZQ1M2N3P4,TAG00000002\n";
        let csv = parse_csv(text, Some(2)).unwrap();
        assert!(csv.chosen);
        assert_eq!(
            csv.parsed.serials().collect::<Vec<_>>(),
            ["TAG00000001", "TAG00000002"]
        );
        assert_eq!(
            parse_csv(text, Some(3)),
            Err(InputError::NoSuchColumn {
                chosen: 3,
                columns: 2
            })
        );
        assert_eq!(
            parse_csv("name,owner\nAnn,Bob\n", None),
            Err(InputError::NoSerialColumn)
        );
    }

    #[test]
    fn an_orchard_export_reads_back() {
        let csv = parse_csv(
            "serial_number,model,product_family\r\nC02XL0GSJGH5,\"iMac 21.5\"\"\",Mac\r\nDMPXK2LLKXKN,iPad,iPad\r\n",
            None,
        )
        .unwrap();
        assert_eq!(csv.column, 1);
        assert_eq!(csv.parsed.serials().count(), 2);
        assert_eq!(csv.parsed.entries[1].position, at(3, 1));
    }

    #[test]
    fn csv_is_recognised_in_pasted_text_by_its_header() {
        assert!(looks_like_csv("Serial Number,Model\nC02XL0GSJGH5,iMac"));
        assert!(looks_like_csv("\u{feff}model;serial\n"));
        assert!(!looks_like_csv("C02XL0GSJGH5,F5KZQ1M2N3P4"));
        assert!(!looks_like_csv("serial\nC02XL0GSJGH5"));
    }
}
