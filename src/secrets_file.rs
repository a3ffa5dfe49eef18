//! Reading a profile's `secrets.json`: one JSON object of snake_case keys to string values.
//!
//! serde_json checks the syntax; the entries are then read one by one, in file order, with the
//! position of each key, so that a duplicate key (which serde_json would silently resolve to the
//! last one) or a value of the wrong type is reported at its line and column.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use zeroize::Zeroizing;

use crate::error::{Error, Location, Result};
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
    let existing =
        crate::files::read_limited(path, MAX_FILE_BYTES as u64, "secrets.json")?.map(Zeroizing::new);
    let text = match &existing {
        Some(bytes) => std::str::from_utf8(bytes).map_err(|_| {
            Error::input(Location::file(path), "the file is not valid UTF-8", "save the file as UTF-8")
        })?,
        None => "{}\n",
    };
    let entries = parse(path, text.as_bytes())?;
    let updated = with_values(text, &entries, updates);
    // Written only as a regular file of its own: a symbolic link in its place (which a checkout
    // can plant, pointing anywhere) is refused, not followed nor replaced.
    crate::files::write_private(path, updated.as_bytes())
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

    let raw: RawEntries<'_> = serde_json::from_str(text).map_err(|e| syntax_error(path, text, &e))?;

    let mut first_seen: HashMap<&str, Location> = HashMap::new();
    let mut entries = Vec::with_capacity(raw.0.len());
    // Entries come in file order: positions are counted on from the previous one, not from the
    // start of the file each time (which would make a large file quadratic).
    let mut cursor = Cursor::default();
    for (key, value) in &raw.0 {
        let value_offset = offset_in(text, value.get());
        let (line, column) = cursor.advance(text, key_start(text, value_offset));
        let location = Location::at(path, line, column);
        if let Some(first) = first_seen.get(key.as_str()) {
            let (first_line, first_column) = first.position.unwrap_or((0, 0));
            return Err(Error::input(
                location,
                format!("duplicate key `{key}` (first at {first_line}:{first_column})"),
                "remove one of them; JSON readers disagree on which one wins",
            ));
        }
        first_seen.insert(key, location.clone());
        if let Some(problem) = key_problem(key) {
            return Err(Error::input(
                location,
                format!("the key {key:?} {problem}"),
                "name keys in snake_case: lowercase letters, digits and underscores, as in `jwt_secret`",
            ));
        }
        let value_span = value_offset..value_offset + value.get().len();
        let value = match json_kind(value.get()) {
            JsonKind::String => {
                let s: String = serde_json::from_str(value.get()).map_err(|e| {
                    // The error is positioned within the value, which is on one line.
                    let (line, column) = line_column(text, value_offset + e.column().saturating_sub(1));
                    Error::input(
                        Location::at(path, line, column),
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
                    Location::at(path, line, column),
                    format!("the value of `{key}` is {other}; every value must be a string"),
                    format!("quote the value (\"...\"), or use null or \"\" to leave `{key}` unset"),
                ));
            }
        };
        entries.push(FileEntry { key: key.clone(), value, location, value_span });
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

/// The top-level object, entries in file order, duplicates kept.
struct RawEntries<'a>(Vec<(String, &'a RawValue)>);

impl<'de: 'a, 'a> serde::Deserialize<'de> for RawEntries<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for EntriesVisitor<'a> {
            type Value = RawEntries<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object of keys to string values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    let value: &'de RawValue = map.next_value()?;
                    entries.push((key, value));
                }
                Ok(RawEntries(entries))
            }
        }
        deserializer.deserialize_map(EntriesVisitor(std::marker::PhantomData))
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
}

impl Cursor {
    /// The 1-based line and column of `offset`, which must not be before the last one asked.
    fn advance(&mut self, text: &str, offset: usize) -> (usize, usize) {
        let offset = offset.min(text.len());
        if offset < self.offset {
            return line_column(text, offset);
        }
        let skipped = &text[self.offset..offset];
        if let Some(last) = skipped.rfind('\n') {
            self.line += skipped.matches('\n').count();
            self.line_start = self.offset + last + 1;
        }
        self.offset = offset;
        (self.line + 1, text[self.line_start..offset].chars().count() + 1)
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
    }

    #[test]
    fn duplicate_key_names_both_positions() {
        let e = err("{\n  \"openai\": \"a\",\n  \"x\": \"b\",\n  \"openai\": \"c\"\n}");
        assert!(e.starts_with("/p/secrets.json:4:3: duplicate key `openai` (first at 2:3)"), "{e}");
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
