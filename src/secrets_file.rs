//! Reading a profile's `secrets.json` (one JSON object of snake_case keys to string values), and
//! editing it in place: values written, keys removed, every other byte kept.
//!
//! serde_json checks the syntax; the entries are then read one by one, in file order, with the
//! position of each key, so that a duplicate key (which serde_json would silently resolve to the
//! last one) or a value of the wrong type is reported at its line and column.

use std::fmt;
use std::path::Path;

use serde_json::value::RawValue;

use zeroize::Zeroizing;

use crate::error::{Error, Location, Result};
use crate::json::{Members, Scan};
use crate::secret::SecretValue;

/// The largest secrets file read. A real one is a few kilobytes.
pub const MAX_FILE_BYTES: usize = 10 * 1024 * 1024;

/// One key of secrets.json, in file order.
#[derive(Debug, Clone)]
pub struct FileEntry {
    /// The key as written.
    pub key: String,
    /// The value; `None` when null or empty ("not set").
    pub value: Option<SecretValue>,
    /// Where the key is written.
    pub location: Location,
    /// The byte range of the value in the file, to rewrite it in place.
    pub value_span: std::ops::Range<usize>,
}

/// Reads and parses a secrets file; `Ok(None)` when it does not exist.
pub fn load(path: &Path) -> Result<Option<Vec<FileEntry>>> {
    match crate::files::read_limited(path, MAX_FILE_BYTES as u64, "secrets.json")? {
        Some(bytes) => parse(path, &Zeroizing::new(bytes)).map(Some),
        None => Ok(None),
    }
}

/// Writes values into the secrets file at `path` under the given keys: a key already there gets
/// its value replaced in place, a new key is appended after the last one with the same
/// indentation. Every other byte (order, spacing, other values) is kept. The file is replaced
/// atomically with mode 0600; a missing file is created.
pub fn save_values(path: &Path, updates: &[(String, &SecretValue)]) -> Result<()> {
    let updated = match read_parsed(path)? {
        Some((text, entries)) => with_values(&text, &entries, updates),
        None => with_values("{}\n", &[], updates),
    };
    // Written only as a regular file of its own: a symbolic link in its place (which a checkout
    // can plant, pointing anywhere) is refused, not followed nor replaced.
    crate::files::write_private(path, updated.as_bytes())
}

/// Removes the members under `keys` from the secrets file at `path`, and returns the keys
/// removed, in file order (keys the file does not have are left out). Every other byte (order,
/// spacing, the other members and their separators) is kept: a member on lines of its own goes
/// with its lines, one sharing a line goes with the comma that joined it; an object left empty
/// becomes `{}`. The file is replaced atomically with mode 0600, and only a regular file: a
/// symbolic link or FIFO in its place is refused. Nothing is written when no key is there, nor
/// when the file does not exist.
pub fn remove_keys(path: &Path, keys: &[String]) -> Result<Vec<String>> {
    let Some((text, entries)) = read_parsed(path)? else { return Ok(Vec::new()) };
    let (kept, removed) = without_keys(&text, &entries, keys);
    if !removed.is_empty() {
        crate::files::write_private(path, kept.as_bytes())?;
    }
    Ok(removed)
}

/// The text of the secrets file at `path` and its entries, if it exists.
fn read_parsed(path: &Path) -> Result<Option<(Zeroizing<String>, Vec<FileEntry>)>> {
    let Some(bytes) = crate::files::read_limited(path, MAX_FILE_BYTES as u64, "secrets.json")? else {
        return Ok(None);
    };
    let mut bytes = Zeroizing::new(bytes);
    // Parsed first: it checks the UTF-8 and says where it breaks, so the conversion that moves
    // the bytes (without a copy left unzeroized) cannot fail.
    let entries = parse(path, &bytes)?;
    let text = String::from_utf8(std::mem::take(&mut *bytes)).expect("parse checked the UTF-8");
    Ok(Some((Zeroizing::new(text), entries)))
}

/// `text` without the members under `keys`, and the keys removed in file order; see
/// [`remove_keys`]. `entries` are the file's, as [`parse`] reads them from `text`.
fn without_keys(text: &str, entries: &[FileEntry], keys: &[String]) -> (Zeroizing<String>, Vec<String>) {
    let gone: Vec<bool> = entries.iter().map(|e| keys.contains(&e.key)).collect();
    let removed: Vec<String> =
        entries.iter().zip(&gone).filter(|(_, gone)| **gone).map(|(e, _)| e.key.clone()).collect();
    let mut out = Zeroizing::new(text.to_owned());
    if removed.is_empty() {
        return (out, removed);
    }
    let start = |i: usize| key_start(text, entries[i].value_span.start);
    let end = |i: usize| entries[i].value_span.end;
    // Where the line holding `offset` starts, when only blanks come before `offset` on it.
    let line_start_if_first = |offset: usize| {
        let line_start = text[..offset].rfind('\n').map(|i| i + 1)?;
        text[line_start..offset].bytes().all(|b| b == b' ' || b == b'\t').then_some(line_start)
    };
    let mut cuts: Vec<std::ops::Range<usize>> = Vec::new();
    let mut i = 0;
    while i < entries.len() {
        if !gone[i] {
            i += 1;
            continue;
        }
        // A run of removed members, i..j.
        let mut j = i + 1;
        while j < entries.len() && gone[j] {
            j += 1;
        }
        let starts_line = line_start_if_first(start(i));
        cuts.push(match (starts_line, j < entries.len(), i > 0) {
            // On lines of its own, before another member: the run goes with the separator after
            // it, and with its whole lines when the next member starts a line too.
            (Some(line_start), true, _) => match line_start_if_first(start(j)) {
                Some(next_line_start) => line_start..next_line_start,
                None => start(i)..start(j),
            },
            // After another member: the run goes with the separator before it, so that the
            // line break after it stays.
            (_, _, true) => end(i - 1)..end(j - 1),
            // First, with a member after it on its line.
            (None, true, false) => start(i)..start(j),
            // Every member goes: what is between the braces goes too, leaving `{}`.
            (_, false, false) => {
                let open = text[..start(0)].rfind('{').map_or(start(0), |o| o + 1);
                let close = text[end(j - 1)..].find('}').map_or(text.len(), |c| end(j - 1) + c);
                open..close
            }
        });
        i = j;
    }
    for cut in cuts.into_iter().rev() {
        out.replace_range(cut, "");
    }
    (out, removed)
}

/// `text` with the updates applied; see [`save_values`].
fn with_values(text: &str, entries: &[FileEntry], updates: &[(String, &SecretValue)]) -> Zeroizing<String> {
    let quote = |value: &SecretValue| {
        Zeroizing::new(serde_json::to_string(value.expose()).expect("a string serializes"))
    };
    let mut replacements: Vec<(std::ops::Range<usize>, Zeroizing<String>)> = Vec::new();
    let mut appended = Zeroizing::new(String::new());
    let last = entries.iter().max_by_key(|e| e.value_span.end);
    let indent = last
        .map(|e| {
            let line_start = text[..e.value_span.start].rfind('\n').map_or(0, |i| i + 1);
            text[line_start..].chars().take_while(|c| *c == ' ' || *c == '\t').collect::<String>()
        })
        .unwrap_or_else(|| "  ".to_owned());
    for (key, value) in updates {
        match entries.iter().find(|e| &e.key == key) {
            Some(entry) => replacements.push((entry.value_span.clone(), quote(value))),
            None => {
                let key = serde_json::to_string(key).expect("a string serializes");
                appended.push_str(&format!(",\n{indent}{key}: {}", quote(value).as_str()));
            }
        }
    }
    let mut out = Zeroizing::new(text.to_owned());
    match last {
        Some(last) if !appended.is_empty() => {
            replacements.push((last.value_span.end..last.value_span.end, appended))
        }
        None if !appended.is_empty() => {
            // An empty object: rewrite it whole, keeping anything around it.
            let open = text.find('{').unwrap_or(0);
            let close = text.rfind('}').map_or(text.len(), |i| i + 1);
            let body = Zeroizing::new(format!("{{\n{}\n}}", appended.trim_start_matches(",\n")));
            replacements.push((open..close, body));
        }
        _ => {}
    }
    replacements.sort_by_key(|(range, _)| std::cmp::Reverse(range.start));
    for (range, replacement) in replacements {
        out.replace_range(range, &replacement);
    }
    out
}

/// Parses the bytes of a secrets file named `path` (the path is used in messages only).
pub fn parse(path: &Path, bytes: &[u8]) -> Result<Vec<FileEntry>> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(Error::input(
            Location::file(path),
            format!(
                "the file is {} bytes; a secrets file holds a few keys and is read only up to {} bytes",
                bytes.len(),
                MAX_FILE_BYTES
            ),
            "check that this is the right file",
        ));
    }
    if bytes.starts_with(b"\xEF\xBB\xBF") {
        return Err(Error::input(
            Location::at(path, 1, 1),
            "the file starts with a UTF-8 byte-order mark, which JSON does not allow",
            "save the file as UTF-8 without a byte-order mark",
        ));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let (line, column) =
            line_column(&String::from_utf8_lossy(&bytes[..e.valid_up_to()]), e.valid_up_to());
        Error::input(
            Location::at(path, line, column),
            "the file is not valid UTF-8",
            "save the file as UTF-8",
        )
    })?;
    if text.trim().is_empty() {
        return Err(Error::input(
            Location::file(path),
            "the file is empty",
            "write a JSON object of keys to values, for example {\"jwt_secret\": \"...\"}",
        ));
    }

    let file = Location::file(path);
    match plain(&file, text) {
        Some(entries) => Ok(entries),
        None => read_members(path, &file, text),
    }
}

/// The entries of a file written the plain way, read in one pass; `None` for anything else,
/// which [`read_members`] reads (or reports).
///
/// Plain is how the platform writes the file, and how people do: one object, each key made of
/// letters, digits and `_` (not first a digit) and written once, each value a string without an
/// escape or a control character, or `null`.
fn plain(file: &Location, text: &str) -> Option<Vec<FileEntry>> {
    let mut scan = Scan::new(text);
    // Each member has a colon: room for as many as there are colons, so that the list is never
    // moved as it grows (the memory past the members is reserved, not touched); but no more than
    // PRESIZED_ENTRIES_AT_MOST, as a value full of colons would reserve a gigabyte.
    let room = crate::json::count(b':', scan.bytes).min(PRESIZED_ENTRIES_AT_MOST);
    let mut entries: Vec<FileEntry> = Vec::with_capacity(room);
    let mut cursor = Cursor::default();
    scan.blank();
    scan.eat(b'{')?;
    scan.blank();
    if scan.eat(b'}').is_none() {
        loop {
            let key_at = scan.at;
            scan.eat(b'"')?;
            let key = plain_key(&mut scan)?;
            scan.blank();
            scan.eat(b':')?;
            scan.blank();
            let value_at = scan.at;
            let value = match scan.peek()? {
                b'"' => {
                    let inner = scan.plain_string()?;
                    (!inner.is_empty()).then(|| SecretValue::new(&text[inner]))
                }
                b'n' if scan.bytes[value_at..].starts_with(b"null") => {
                    scan.at += 4;
                    None
                }
                _ => return None,
            };
            let (line, column) = cursor.advance(text, key_at);
            entries.push(FileEntry {
                key: text[key].to_owned(),
                value,
                location: file.at_line(line, column),
                value_span: value_at..scan.at,
            });
            scan.blank();
            if scan.eat(b',').is_some() {
                scan.blank();
            } else {
                scan.eat(b'}')?;
                break;
            }
        }
    }
    scan.blank();
    if scan.at != scan.bytes.len() {
        return None;
    }
    match crate::sorted::first_repeat(entries.iter().map(|e| e.key.as_str())) {
        Some(_) => None,
        None => Some(entries),
    }
}

/// [`plain`] sizes its list up front for at most this many entries (more grow it).
const PRESIZED_ENTRIES_AT_MOST: usize = 1 << 18;

/// The key just after its opening quote, past its closing one, if it names a variable (see
/// [`key_problem`]): letters, digits and `_`, not first a digit.
fn plain_key(scan: &mut Scan<'_>) -> Option<std::ops::Range<usize>> {
    let start = scan.at;
    let length = scan.bytes[start..].iter().take_while(|b| b.is_ascii_alphanumeric() || **b == b'_').count();
    scan.at += length;
    scan.eat(b'"')?;
    (length > 0 && !scan.bytes[start].is_ascii_digit()).then_some(start..start + length)
}

/// The entries of a file of any form, in file order, each checked: serde_json checks the
/// syntax, then each member is read with the position of its key.
fn read_members(path: &Path, file: &Location, text: &str) -> Result<Vec<FileEntry>> {
    // The entries in file order, duplicates kept.
    let raw: Members<'_, &RawValue> = serde_json::from_str(text).map_err(|e| syntax_error(path, text, &e))?;

    // The first key that repeats an earlier one, found by sorting (a large file is mostly in
    // order, and its keys lie side by side in its text), and reported when the walk reaches it.
    let duplicate = crate::sorted::first_repeat(raw.0.iter().map(|(key, _)| key.0.as_ref()));
    let mut entries: Vec<FileEntry> = Vec::with_capacity(raw.0.len());
    // Entries come in file order: positions are counted on from the previous one, not from the
    // start of the file each time (which would make a large file quadratic).
    let mut cursor = Cursor::default();
    for (index, (key, value)) in raw.0.iter().enumerate() {
        let key: &str = &key.0;
        let value_offset = offset_in(text, value.get());
        let (line, column) = cursor.advance(text, key_start(text, value_offset));
        let location = file.at_line(line, column);
        if let Some((_, first)) = duplicate.filter(|(repeat, _)| *repeat == index) {
            let (first_line, first_column) = entries[first].location.position.unwrap_or_default();
            return Err(Error::input(
                location,
                format!("duplicate key `{key}` (first at {first_line}:{first_column})"),
                "remove one of them; JSON readers disagree on which one wins",
            ));
        }
        if let Some(problem) = key_problem(key) {
            return Err(Error::input(
                location,
                format!("the key {key:?} {problem}"),
                "name keys in snake_case: lowercase letters, digits and underscores, as in `jwt_secret`",
            ));
        }
        let value_span = value_offset..value_offset + value.get().len();
        let value = match json_kind(value.get()) {
            // Without a backslash, the text between the quotes is the string (serde_json has
            // checked it holds no control character).
            JsonKind::String if !value.get().contains('\\') => {
                let quoted = value.get();
                (quoted.len() > 2).then(|| SecretValue::new(&quoted[1..quoted.len() - 1]))
            }
            JsonKind::String => {
                let s: String = serde_json::from_str(value.get()).map_err(|e| {
                    // The error is positioned within the value, which is on one line.
                    let (line, column) = line_column(text, value_offset + e.column().saturating_sub(1));
                    Error::input(
                        file.at_line(line, column),
                        format!("invalid JSON: {}", safe_json_message(&e)),
                        "fix the escape sequence in this value",
                    )
                })?;
                (!s.is_empty()).then(|| SecretValue::new(s))
            }
            JsonKind::Null => None,
            other => {
                let (line, column) = line_column(text, value_offset);
                return Err(Error::input(
                    file.at_line(line, column),
                    format!("the value of `{key}` is {other}; every value must be a string"),
                    format!("quote the value (\"...\"), or use null or \"\" to leave `{key}` unset"),
                ));
            }
        };
        entries.push(FileEntry { key: key.to_owned(), value, location, value_span });
    }
    Ok(entries)
}

/// Why a key cannot name a variable, if it cannot: variable names are made of ASCII letters,
/// digits and underscores, and the platform joins them with commas.
fn key_problem(key: &str) -> Option<&'static str> {
    if key.is_empty() {
        Some("is empty")
    } else if !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Some("cannot name a variable: use only letters, digits and `_`")
    } else if key.starts_with(|c: char| c.is_ascii_digit()) {
        Some("cannot name a variable: it starts with a digit")
    } else {
        None
    }
}

enum JsonKind {
    String,
    Null,
    Number,
    Boolean,
    Array,
    Object,
}

impl fmt::Display for JsonKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JsonKind::String => "a string",
            JsonKind::Null => "null",
            JsonKind::Number => "a number",
            JsonKind::Boolean => "a boolean",
            JsonKind::Array => "an array",
            JsonKind::Object => "an object",
        })
    }
}

/// The kind of a syntactically valid JSON value, from its first byte.
fn json_kind(raw: &str) -> JsonKind {
    match raw.as_bytes().first() {
        Some(b'"') => JsonKind::String,
        Some(b'n') => JsonKind::Null,
        Some(b't' | b'f') => JsonKind::Boolean,
        Some(b'[') => JsonKind::Array,
        Some(b'{') => JsonKind::Object,
        _ => JsonKind::Number,
    }
}

/// Turns a serde_json error into one that points into the file, without serde_json's own
/// " at line L column C" suffix. serde_json messages quote no input values, only types and tokens.
fn syntax_error(path: &Path, text: &str, error: &serde_json::Error) -> Error {
    let at = text
        .lines()
        .nth(error.line().saturating_sub(1))
        .and_then(|l| l.chars().nth(error.column().saturating_sub(1)));
    let (message, hint) = match error.classify() {
        serde_json::error::Category::Syntax if at == Some('/') => (
            "JSON does not allow comments".to_owned(),
            "remove the comment (a key such as \"_comment\" would be synced as a secret, so do not add one either)",
        ),
        serde_json::error::Category::Data => (
            "the top level must be a JSON object of keys to string values".to_owned(),
            "write the file as one object, such as {\"oauth_at_rest_pepper\": \"...\"}",
        ),
        serde_json::error::Category::Eof => (
            format!("invalid JSON: {}", safe_json_message(error)),
            "the file ends too early: check for a missing closing brace or quote",
        ),
        _ => (
            format!("invalid JSON: {}", safe_json_message(error)),
            "fix the JSON at this position; the file must be one object such as {\"oauth_at_rest_pepper\": \"...\"}",
        ),
    };
    let (mut line, mut column) = (error.line().max(1), error.column().max(1));
    // serde_json notices a trailing comma at the brace after it: the fix is at the comma.
    if message.ends_with("trailing comma")
        && let Some(comma) = comma_before(text, line, column)
    {
        (line, column) = comma;
    }
    Error::input(Location::at(path, line, column), message, hint)
}

/// The line and column of the last `,` before (1-based) `line`:`column`, past whitespace only.
fn comma_before(text: &str, line: usize, column: usize) -> Option<(usize, usize)> {
    let start: usize = text.split_inclusive('\n').take(line - 1).map(str::len).sum();
    let here = text[start..].char_indices().nth(column - 1).map_or(text.len(), |(i, _)| start + i);
    let before = text[..here].trim_end();
    before.ends_with(',').then(|| line_column(before, before.len() - 1))
}

/// serde_json's message without its " at line L column C" suffix, and without any quoted input:
/// data errors ("invalid type: string \"...\"") can quote a value, so they are replaced.
pub(crate) fn safe_json_message(error: &serde_json::Error) -> String {
    if error.classify() == serde_json::error::Category::Data {
        return "a field has the wrong type or is missing".to_owned();
    }
    let message = error.to_string();
    message.rsplit_once(" at line ").map_or(message.as_str(), |(m, _)| m).to_owned()
}

/// Byte offset of `part`, a slice borrowed from `text`.
fn offset_in(text: &str, part: &str) -> usize {
    (part.as_ptr() as usize).saturating_sub(text.as_ptr() as usize).min(text.len())
}

/// The offset of the opening quote of the key whose value starts at `value_offset`. The text is
/// valid JSON, so the key is the string just before the `:` that precedes the value.
fn key_start(text: &str, value_offset: usize) -> usize {
    let bytes = text.as_bytes();
    let mut i = value_offset;
    let skip_ws = |mut i: usize| {
        while i > 0 && bytes[i - 1].is_ascii_whitespace() {
            i -= 1;
        }
        i
    };
    i = skip_ws(i);
    if i == 0 || bytes[i - 1] != b':' {
        return value_offset;
    }
    i = skip_ws(i - 1);
    if i == 0 || bytes[i - 1] != b'"' {
        return value_offset;
    }
    // Walk back to the opening quote: a quote preceded by an even number of backslashes.
    let mut j = i - 1;
    while j > 0 {
        j -= 1;
        if bytes[j] == b'"' {
            let backslashes = bytes[..j].iter().rev().take_while(|&&b| b == b'\\').count();
            if backslashes % 2 == 0 {
                return j;
            }
        }
    }
    value_offset
}

/// A position in a text, moved forwards only.
#[derive(Default)]
struct Cursor {
    offset: usize,
    line: usize,
    line_start: usize,
    /// Characters from the line's start to `offset`.
    column: usize,
}

impl Cursor {
    /// The 1-based line and column of `offset`, which must not be before the last one asked.
    fn advance(&mut self, text: &str, offset: usize) -> (usize, usize) {
        let offset = offset.min(text.len());
        if offset < self.offset {
            return line_column(text, offset);
        }
        let skipped = &text.as_bytes()[self.offset..offset];
        // The column is counted on too: a file on one line is not counted from its start again
        // for each key.
        match memchr::memrchr(b'\n', skipped) {
            Some(last) => {
                self.line += memchr::memchr_iter(b'\n', skipped).count();
                self.line_start = self.offset + last + 1;
                self.column = text[self.line_start..offset].chars().count();
            }
            None => self.column += text[self.offset..offset].chars().count(),
        }
        self.offset = offset;
        (self.line + 1, self.column + 1)
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<Vec<FileEntry>> {
        parse(Path::new("/p/secrets.json"), text.as_bytes())
    }

    fn err(text: &str) -> String {
        let e = parse_str(text).unwrap_err();
        format!("{e} | {}", e.hint().unwrap_or_default())
    }

    #[test]
    fn reads_entries_in_order_with_positions() {
        let entries = parse_str("{\n  \"b\": \"x\",\n  \"a\": null,\n  \"c\": \"\"\n}").unwrap();
        let keys: Vec<_> = entries.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["b", "a", "c"]);
        assert_eq!(entries[0].location.position, Some((2, 3)));
        assert_eq!(entries[0].value.as_ref().map(SecretValue::expose), Some("x"));
        assert!(entries[1].value.is_none());
        assert!(entries[2].value.is_none());
    }

    #[test]
    fn positions_counted_incrementally_match_counting_from_the_start() {
        let text = "{\n  \"a\": \"1\",\n\n    \"é\u{301}b\": \"2\", \"c\": null,\n\"d\": \"4\"}";
        let mut cursor = Cursor::default();
        for (offset, _) in text.char_indices() {
            assert_eq!(cursor.advance(text, offset), line_column(text, offset), "{offset}");
        }
        // Moved on by several characters at a time, as between keys.
        for step in 2..6 {
            let mut cursor = Cursor::default();
            for (offset, _) in text.char_indices().step_by(step) {
                assert_eq!(cursor.advance(text, offset), line_column(text, offset), "{step} {offset}");
            }
        }
    }

    #[test]
    fn duplicate_key_names_both_positions() {
        let e = err("{\n  \"openai\": \"a\",\n  \"x\": \"b\",\n  \"openai\": \"c\"\n}");
        assert!(e.starts_with("/p/secrets.json:4:3: duplicate key `openai` (first at 2:3)"), "{e}");
    }

    #[test]
    fn a_duplicate_is_found_in_order_or_out_of_it() {
        // Each key on its own line (line i + 2 for the i-th): the duplicate's line, then the first's.
        type Found = Option<(usize, usize)>;
        let cases: [(&[&str], Found); 7] = [
            (&["a", "b", "c"], None),
            (&["c", "b", "a"], None),
            (&["a", "a"], Some((3, 2))),
            (&["a", "b", "c", "b"], Some((5, 3))),
            (&["b", "a", "c", "d", "a"], Some((6, 3))),
            (&["a", "c", "b", "d", "e", "c"], Some((7, 3))),
            (&["a", "b", "a", "a", "b"], Some((4, 2))),
        ];
        for (keys, duplicate) in cases {
            let body: Vec<String> = keys.iter().map(|k| format!("  \"{k}\": \"v\"")).collect();
            let text = format!("{{\n{}\n}}", body.join(",\n"));
            match duplicate {
                None => assert_eq!(parse_str(&text).unwrap().len(), keys.len(), "{keys:?}"),
                Some((line, first)) => assert!(
                    err(&text).contains(&format!(
                        ":{line}:3: duplicate key `{}` (first at {first}:3)",
                        keys[line - 2]
                    )),
                    "{keys:?}: {}",
                    err(&text)
                ),
            }
        }
    }

    #[test]
    fn escaped_quotes_in_keys_do_not_confuse_positions() {
        // The key is refused, but it is still located at its opening quote.
        let e = err("{\"c\": \"y\",\n \"a\\\"b\": \"x\"}");
        assert!(e.starts_with("/p/secrets.json:2:2: the key \"a\\\"b\" cannot name a variable"), "{e}");
    }

    #[test]
    fn non_string_values_are_refused_at_the_value() {
        let e = err("{\n  \"port\": 5432\n}");
        assert!(e.starts_with("/p/secrets.json:2:11: the value of `port` is a number"), "{e}");
        assert!(err("{\"a\": {\"b\": \"c\"}}").contains("is an object"));
        assert!(err("{\"a\": [1]}").contains("is an array"));
        assert!(err("{\"a\": true}").contains("is a boolean"));
    }

    #[test]
    fn top_level_must_be_an_object() {
        let e = err("[\"a\"]");
        assert!(e.starts_with("/p/secrets.json:1:1: the top level must be a JSON object"), "{e}");
    }

    #[test]
    fn syntax_errors_point_at_the_problem() {
        let e = err("{\n  \"a\": \"b\",\n}");
        assert!(e.starts_with("/p/secrets.json:2:11: invalid JSON: trailing comma"), "{e}");
        let e = err("{\"a\": \"b\"");
        assert!(e.contains("ends too early"), "{e}");
    }

    #[test]
    fn byte_order_mark_and_bad_utf8_are_named() {
        assert!(err("\u{feff}{}").contains("byte-order mark"));
        let e = parse(Path::new("s.json"), b"{\"a\": \"\xff\"}").unwrap_err();
        assert_eq!(e.to_string(), "s.json:1:8: the file is not valid UTF-8");
    }

    #[test]
    fn keys_that_cannot_name_a_variable_are_refused() {
        for (text, problem) in [
            ("{\"\": \"v\"}", "the key \"\" is empty"),
            ("{\"a,b\": \"v\"}", "the key \"a,b\" cannot name a variable"),
            ("{\"my-key\": \"v\"}", "the key \"my-key\" cannot name a variable"),
            ("{\"x\\n- A\": \"v\"}", "the key \"x\\n- A\" cannot name a variable"),
            ("{\"x\\u001b[8m\": \"v\"}", "the key \"x\\u{1b}[8m\" cannot name a variable"),
            ("{\"1st\": \"v\"}", "the key \"1st\" cannot name a variable: it starts with a digit"),
        ] {
            let e = err(text);
            assert!(e.starts_with(&format!("/p/secrets.json:1:2: {problem}")), "{e}");
        }
        assert!(parse_str("{\"Mixed_Case9\": \"v\"}").is_ok());
    }

    #[test]
    fn a_bad_escape_in_a_value_is_located_in_the_file() {
        let e = err("{\n  \"a\": \"x\",\n  \"b\": \"CANARY-\\ud800\"\n}");
        assert!(e.starts_with("/p/secrets.json:3:"), "{e}");
        assert!(!e.contains("CANARY"), "{e}");
    }

    fn saved(text: &str, updates: &[(&str, &str)]) -> String {
        let entries = parse_str(text).unwrap();
        let values: Vec<(String, SecretValue)> =
            updates.iter().map(|(k, v)| ((*k).to_owned(), SecretValue::new(*v))).collect();
        let refs: Vec<(String, &SecretValue)> = values.iter().map(|(k, v)| (k.clone(), v)).collect();
        with_values(text, &entries, &refs).to_string()
    }

    #[test]
    fn saving_keeps_order_and_formatting() {
        let text = "{\n    \"b\": \"1\",\n    \"a\":   null ,\n    \"c\": \"3\"\n}\n";
        assert_eq!(
            saved(text, &[("a", "new \"q\""), ("d", "4")]),
            "{\n    \"b\": \"1\",\n    \"a\":   \"new \\\"q\\\"\" ,\n    \"c\": \"3\",\n    \"d\": \"4\"\n}\n"
        );
        assert_eq!(saved("{}\n", &[("k", "v")]), "{\n  \"k\": \"v\"\n}\n");
        assert_eq!(saved("{\"x\":\"1\"}", &[("x", "2")]), "{\"x\":\"2\"}");
        let round = saved(text, &[("d", "4")]);
        assert_eq!(parse_str(&round).unwrap().len(), 4);
    }

    #[test]
    fn save_values_writes_a_private_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.json");
        std::fs::write(&path, "{\"a\": \"1\"}\n").unwrap();
        let v = SecretValue::new("2");
        save_values(&path, &[("b".to_owned(), &v)]).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"a\": \"1\",\n\"b\": \"2\"}\n");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }

    /// `text` without `keys`, checked to parse; and the keys removed.
    fn removed(text: &str, keys: &[&str]) -> (String, Vec<String>) {
        let entries = parse_str(text).unwrap();
        let keys: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
        let (out, gone) = without_keys(text, &entries, &keys);
        let out = out.to_string();
        let left = parse_str(&out).unwrap_or_else(|e| panic!("{out:?} does not parse: {e}"));
        let expected: Vec<&str> =
            entries.iter().map(|e| e.key.as_str()).filter(|k| !gone.iter().any(|g| g == k)).collect();
        assert_eq!(left.iter().map(|e| e.key.as_str()).collect::<Vec<_>>(), expected, "{out:?}");
        (out, gone)
    }

    #[test]
    fn removing_members_on_lines_of_their_own_removes_their_lines() {
        let text = "{\n  \"a\": \"1\",\n  \"b\": null,\n  \"c\": \"3\"\n}\n";
        for (keys, expected) in [
            (&["a"][..], "{\n  \"b\": null,\n  \"c\": \"3\"\n}\n"),
            (&["b"], "{\n  \"a\": \"1\",\n  \"c\": \"3\"\n}\n"),
            (&["c"], "{\n  \"a\": \"1\",\n  \"b\": null\n}\n"),
            (&["a", "b"], "{\n  \"c\": \"3\"\n}\n"),
            (&["b", "c"], "{\n  \"a\": \"1\"\n}\n"),
            (&["a", "c"], "{\n  \"b\": null\n}\n"),
            (&["c", "a", "b"], "{}\n"),
        ] {
            assert_eq!(removed(text, keys).0, expected, "{keys:?}");
        }
        assert_eq!(removed("{\n\t\"only\": \"1\"\n}", &["only"]).0, "{}");
        // Blank lines and trailing blanks go with the member before them; CRLF lines stay CRLF.
        assert_eq!(
            removed("{\n    \"a\": \"1\",  \n\n    \"b\": \"2\"\n}", &["a"]).0,
            "{\n    \"b\": \"2\"\n}"
        );
        assert_eq!(
            removed("{\r\n  \"a\": \"1\",\r\n  \"b\": \"2\",\r\n  \"c\": \"3\"\r\n}\r\n", &["b"]).0,
            "{\r\n  \"a\": \"1\",\r\n  \"c\": \"3\"\r\n}\r\n"
        );
        assert_eq!(
            removed("{\r\n  \"a\": \"1\",\r\n  \"b\": \"2\"\r\n}", &["b"]).0,
            "{\r\n  \"a\": \"1\"\r\n}"
        );
    }

    #[test]
    fn removing_members_on_one_line_removes_one_comma() {
        let text = "{\"a\": \"1\", \"b\":\"2\" , \"c\" : \"3\"}";
        for (keys, expected) in [
            (&["a"][..], "{\"b\":\"2\" , \"c\" : \"3\"}"),
            // A member after another goes with the comma before it; the one after it stays.
            (&["b"], "{\"a\": \"1\" , \"c\" : \"3\"}"),
            (&["c"], "{\"a\": \"1\", \"b\":\"2\"}"),
            (&["a", "b"], "{\"c\" : \"3\"}"),
            (&["b", "c"], "{\"a\": \"1\"}"),
            (&["a", "c"], "{\"b\":\"2\"}"),
            (&["a", "b", "c"], "{}"),
        ] {
            assert_eq!(removed(text, keys).0, expected, "{keys:?}");
        }
        assert_eq!(removed("  { \"k\": \"v\" }  \n", &["k"]).0, "  {}  \n");
    }

    #[test]
    fn removing_from_mixed_layouts_keeps_the_line_breaks_that_remain() {
        let text = "{ \"a\": \"1\",\n  \"b\": \"2\", \"c\": \"3\",\n  \"d\": \"4\" }";
        for (keys, expected) in [
            (&["a"][..], "{ \"b\": \"2\", \"c\": \"3\",\n  \"d\": \"4\" }"),
            (&["b"], "{ \"a\": \"1\",\n  \"c\": \"3\",\n  \"d\": \"4\" }"),
            (&["c"], "{ \"a\": \"1\",\n  \"b\": \"2\",\n  \"d\": \"4\" }"),
            (&["d"], "{ \"a\": \"1\",\n  \"b\": \"2\", \"c\": \"3\" }"),
            (&["b", "c"], "{ \"a\": \"1\",\n  \"d\": \"4\" }"),
            (&["a", "d"], "{ \"b\": \"2\", \"c\": \"3\" }"),
        ] {
            assert_eq!(removed(text, keys).0, expected, "{keys:?}");
        }
        // Escapes in keys and values, and a key split from its value, do not mislead the cuts.
        let text = "{\n  \"a\": \"x\\\"}, \\\\\",\n  \"b\"\n    :\n  \"2\",\n  \"c\": \"\\u0022\"\n}";
        assert_eq!(removed(text, &["b"]).0, "{\n  \"a\": \"x\\\"}, \\\\\",\n  \"c\": \"\\u0022\"\n}");
        assert_eq!(removed(text, &["c"]).0, "{\n  \"a\": \"x\\\"}, \\\\\",\n  \"b\"\n    :\n  \"2\"\n}");
    }

    #[test]
    fn removing_says_which_keys_were_there_in_file_order() {
        let text = "{\"b\": \"1\", \"a\": \"2\"}";
        let (out, gone) = removed(text, &["a", "missing", "b", "a"]);
        assert_eq!((out.as_str(), gone), ("{}", vec!["b".to_owned(), "a".to_owned()]));
        let (out, gone) = removed(text, &["missing", "B"]);
        assert_eq!((out.as_str(), gone), (text, Vec::<String>::new()));
        assert_eq!(removed("{}", &["a"]).0, "{}");
    }

    #[cfg(unix)]
    #[test]
    fn remove_keys_rewrites_a_private_file_and_only_when_a_key_goes() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.json");
        std::fs::write(&path, "{\n  \"a\": \"CANARY-1\",\n  \"b\": \"CANARY-2\"\n}\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let inode = std::fs::metadata(&path).unwrap().ino();
        assert!(remove_keys(&path, &["c".to_owned()]).unwrap().is_empty());
        assert_eq!(std::fs::metadata(&path).unwrap().ino(), inode, "rewritten with nothing to remove");
        assert_eq!(remove_keys(&path, &["a".to_owned()]).unwrap(), ["a"]);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\n  \"b\": \"CANARY-2\"\n}\n");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        // No file: nothing to remove, and nothing created.
        let absent = dir.path().join("absent.json");
        assert!(remove_keys(&absent, &["a".to_owned()]).unwrap().is_empty());
        assert!(!absent.exists());
    }

    #[cfg(unix)]
    #[test]
    fn remove_keys_never_writes_through_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere.json");
        std::fs::write(&target, "{\"a\": \"CANARY-1\"}").unwrap();
        let link = dir.path().join("secrets.json");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        // Nothing to remove: the link is read, and nothing is written.
        assert!(remove_keys(&link, &["b".to_owned()]).unwrap().is_empty());
        let e = remove_keys(&link, &["a".to_owned()]).unwrap_err().to_string();
        assert!(e.contains("is a symbolic link"), "{e}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "{\"a\": \"CANARY-1\"}");
        assert!(link.symlink_metadata().unwrap().file_type().is_symlink(), "the link was replaced");
    }

    #[test]
    fn remove_keys_refuses_a_broken_file_without_quoting_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.json");
        for text in [
            "{\"a\": \"CANARY-1\",}",
            "{\"a\": \"CANARY-1\", \"a\": \"CANARY-2\"}",
            "{\"a\": \"CANARY-\\x\"}",
        ] {
            std::fs::write(&path, text).unwrap();
            let e = remove_keys(&path, &["a".to_owned()]).unwrap_err();
            let shown = format!("{e} | {} | {e:?}", e.hint().unwrap_or_default());
            assert!(!shown.contains("CANARY"), "{shown}");
            assert_eq!(std::fs::read_to_string(&path).unwrap(), text, "a broken file was rewritten");
        }
    }

    mod removal_properties {
        use proptest::prelude::*;

        use super::super::*;

        /// How a generated object is written: one member per line (with this indentation and
        /// line ending) or all on one line (with or without blanks inside the braces).
        #[derive(Debug, Clone)]
        enum Layout {
            Lines { indent: &'static str, newline: &'static str },
            OneLine { padded: bool },
        }

        /// One member: its key, its value (`None` for null) and how its colon is spaced.
        type Member = (String, Option<String>, &'static str);

        /// The text of an object of `members` in `layout`; an empty one is `{}`. Deterministic,
        /// so that the text expected after a removal is the same members less the removed ones.
        fn render(members: &[Member], layout: &Layout, trailing: &str) -> String {
            let member = |(key, value, colon): &Member| {
                let value = value.as_ref().map_or("null".to_owned(), |v| serde_json::to_string(v).unwrap());
                format!("{}{colon}{value}", serde_json::to_string(key).unwrap())
            };
            let body: Vec<String> = members.iter().map(member).collect();
            if body.is_empty() {
                return format!("{{}}{trailing}");
            }
            match layout {
                Layout::Lines { indent, newline } => format!(
                    "{{{newline}{indent}{}{newline}}}{trailing}",
                    body.join(&format!(",{newline}{indent}"))
                ),
                Layout::OneLine { padded: true } => format!("{{ {} }}{trailing}", body.join(", ")),
                Layout::OneLine { padded: false } => format!("{{{}}}{trailing}", body.join(",")),
            }
        }

        fn layout() -> impl Strategy<Value = Layout> {
            prop_oneof![
                (
                    prop::sample::select(vec!["  ", "    ", "\t", ""]),
                    prop::sample::select(vec!["\n", "\r\n"])
                )
                    .prop_map(|(indent, newline)| Layout::Lines { indent, newline }),
                any::<bool>().prop_map(|padded| Layout::OneLine { padded }),
            ]
        }

        fn members() -> impl Strategy<Value = Vec<Member>> {
            let member = (
                // Values with quotes, backslashes, braces and commas, which a cut must not mistake
                // for structure.
                prop::option::weighted(0.8, "[a-z\"\\\\{},: ]{0,8}"),
                prop::sample::select(vec![": ", ":", " : "]),
            );
            prop::collection::btree_map("[a-z][a-z_]{0,5}|[A-Z][A-Z_]{0,5}", member, 0..7).prop_flat_map(
                |m| {
                    let members: Vec<Member> = m.into_iter().map(|(k, (v, c))| (k, v, c)).collect();
                    Just(members).prop_shuffle()
                },
            )
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 512, max_shrink_iters: 2000, ..ProptestConfig::default() })]

            #[test]
            fn removing_keys_leaves_the_rest_exactly_as_written(
                members in members(),
                layout in layout(),
                trailing in prop::sample::select(vec!["", "\n"]),
                picks in prop::collection::vec(any::<prop::sample::Index>(), 0..5),
                absent in prop::collection::vec("[a-z]{1,3}", 0..2),
            ) {
                let text = render(&members, &layout, trailing);
                let entries = parse(Path::new("secrets.json"), text.as_bytes()).unwrap();
                let mut keys: Vec<String> = absent.into_iter().filter(|k| !members.iter().any(|m| m.0 == *k)).collect();
                if !members.is_empty() {
                    keys.extend(picks.iter().map(|i| members[i.index(members.len())].0.clone()));
                }
                let (out, gone) = without_keys(&text, &entries, &keys);
                let kept: Vec<Member> = members.iter().filter(|m| !keys.contains(&m.0)).cloned().collect();
                let expected_gone: Vec<String> =
                    members.iter().filter(|m| keys.contains(&m.0)).map(|m| m.0.clone()).collect();
                prop_assert_eq!(&gone, &expected_gone);
                prop_assert_eq!(out.as_str(), render(&kept, &layout, trailing));
                // And it reads back as the same map, in the same order.
                let left = parse(Path::new("secrets.json"), out.as_bytes()).unwrap();
                let read: Vec<(String, Option<String>)> =
                    left.iter().map(|e| (e.key.clone(), e.value.as_ref().map(|v| v.expose().to_owned()))).collect();
                let want: Vec<(String, Option<String>)> = kept
                    .iter()
                    .map(|(k, v, _)| (k.clone(), v.clone().filter(|v| !v.is_empty())))
                    .collect();
                prop_assert_eq!(read, want);
            }
        }
    }

    mod plain_reader_properties {
        use proptest::prelude::*;

        use super::super::*;

        /// What an entry reads as, value shown (the tests' values are not secrets).
        type Read = (String, Option<String>, Location, std::ops::Range<usize>);

        fn read(entries: &[FileEntry]) -> Vec<Read> {
            let shown = |e: &FileEntry| e.value.as_ref().map(|v| v.expose().to_owned());
            entries
                .iter()
                .map(|e| (e.key.clone(), shown(e), e.location.clone(), e.value_span.clone()))
                .collect()
        }

        fn file() -> Location {
            Location::file(Path::new("secrets.json"))
        }

        /// JSON's blanks, and none.
        fn blank() -> impl Strategy<Value = &'static str> {
            prop::sample::select(vec!["", " ", "  ", "\t", "\n", "\r\n", "\n    "])
        }

        /// Keys as people write them, and some that name no variable; from few letters, so that
        /// some repeat.
        fn key() -> impl Strategy<Value = String> {
            prop_oneof![
                3 => "[a-d_][a-d0-9_]{0,2}",
                // Often the same: a plain file with a key written twice.
                2 => "[ab]",
                1 => "[A-D0-9é _-]{0,3}",
            ]
        }

        /// Values as written in the file: strings written by serde_json (escapes where needed),
        /// strings written as they are (a quote or a control character breaks them), and values
        /// of other kinds.
        fn value() -> impl Strategy<Value = String> {
            let text = "[a-z0-9é\"\\\\ \u{1}\u{7f}]{0,6}";
            prop_oneof![
                4 => text.prop_map(|v| serde_json::to_string(&v).unwrap()),
                1 => text.prop_map(|v| format!("\"{v}\"")),
                1 => prop::sample::select(vec!["null", "nul", "nullx", "1", "true", "{}", "[]", "\"\""])
                    .prop_map(str::to_owned),
            ]
        }

        /// A file of `members`, each spaced by its blanks.
        fn render(members: &[(String, String, [&str; 3])], around: [&str; 3], comma: bool) -> String {
            let member =
                |(key, value, [a, b, c]): &(String, String, [&str; 3])| format!("{a}\"{key}\"{b}:{c}{value}");
            let body: Vec<String> = members.iter().map(member).collect();
            let trailing = if comma { "," } else { "" };
            format!("{}{{{}{trailing}{}}}{}", around[0], body.join(","), around[1], around[2])
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

            /// Whatever the one-pass reader takes, it reads as the general reader does: the same
            /// keys, values, positions and spans; it leaves the rest (including every error) to it.
            #[test]
            fn the_plain_reader_reads_what_it_takes_as_the_general_reader_does(
                members in prop::collection::vec((key(), value(), [blank(), blank(), blank()]), 0..8),
                around in [blank(), blank(), blank()],
                comma in prop::bool::weighted(0.1),
                cut in prop::option::weighted(0.3, (any::<prop::sample::Index>(), prop::sample::select(vec!["", "\"", ",", "}", " ", "\\"]))),
            ) {
                let mut text = render(&members, around, comma);
                if let Some((at, put)) = cut {
                    let at = at.index(text.chars().count() + 1);
                    let at = text.char_indices().nth(at).map_or(text.len(), |(i, _)| i);
                    let end = text[at..].chars().next().map_or(at, |c| at + c.len_utf8());
                    text.replace_range(at..end, put);
                }
                let general = read_members(Path::new("secrets.json"), &file(), &text);
                if let Some(entries) = plain(&file(), &text) {
                    let general = general.map_err(|e| e.to_string());
                    prop_assert!(general.is_ok(), "the general reader refused {:?}: {:?}", text, general);
                    prop_assert_eq!(read(&entries), read(&general.unwrap()));
                }
            }

            /// A file written the plain way is read in one pass.
            #[test]
            fn the_plain_reader_takes_a_plain_file(
                members in prop::collection::btree_map("[a-z_][a-z0-9_]{0,6}", prop::option::of("[a-zA-Z0-9é:/@.+= -]{0,12}"), 0..12),
                blanks in prop::collection::vec([blank(), blank(), blank()], 12),
                around in [blank(), blank(), blank()],
            ) {
                let members: Vec<(String, String, [&str; 3])> = members
                    .into_iter()
                    .zip(blanks)
                    .map(|((k, v), b)| (k, v.map_or("null".to_owned(), |v| format!("\"{v}\"")), b))
                    .collect();
                let text = render(&members, around, false);
                let entries = plain(&file(), &text);
                prop_assert!(entries.is_some(), "not taken: {:?}", text);
                let general = read_members(Path::new("secrets.json"), &file(), &text).unwrap();
                prop_assert_eq!(read(&entries.unwrap()), read(&general));
            }
        }
    }

    #[test]
    fn a_value_full_of_colons_reserves_no_room_for_them() {
        let text = format!("{{\"a\":\"{}\"}}", ":".repeat(MAX_FILE_BYTES - 16));
        let entries = plain(&Location::file(Path::new("secrets.json")), &text).unwrap();
        assert_eq!(entries.len(), 1);
        assert!(entries.capacity() <= PRESIZED_ENTRIES_AT_MOST, "{}", entries.capacity());
    }

    #[test]
    fn errors_never_quote_values() {
        for text in [
            "{\"a\": \"CANARY-1\", \"a\": \"CANARY-2\"}",
            "{\"a\": \"CANARY-1\" \"b\": 1}",
            "{\"a\": \"CANARY-1\",}",
            "{\"a\": \"CANARY-1\"",
            "{\"a\": \"CANARY-\\x\"}",
        ] {
            let e = err(text);
            assert!(!e.contains("CANARY"), "{e}");
        }
    }
}
