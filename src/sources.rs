//! Where desired values come from, in order of precedence: the process environment, then a
//! `.env` file at the project root, then the profile's secrets.json, per key, by the variable
//! name the key maps to. With `secrets.source: env` the environment alone is the desired state.

use std::collections::BTreeMap;
use std::path::Path;

use crate::desired::{Entry, Source};
use crate::error::{Error, Location, Result};
use crate::policy;
use crate::secret::SecretValue;
use crate::secrets_file::FileEntry;

/// The largest `.env` read.
pub const MAX_DOTENV_BYTES: u64 = 1024 * 1024;

/// Values that override secrets.json.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// Non-empty process environment variables, by name.
    pub environment: BTreeMap<String, SecretValue>,
    /// Variables of the project's `.env`, by name, with the location of each.
    pub dotenv: BTreeMap<String, (SecretValue, Location)>,
}

/// Reads a `.env` file with a dotenv parser (quotes, escapes, `export`, comments, `${VAR}`
/// expansion). A missing file is empty. Errors name the line, never its content.
pub fn load_dotenv(path: &Path) -> Result<BTreeMap<String, (SecretValue, Location)>> {
    let Some(bytes) = crate::files::read_limited(path, MAX_DOTENV_BYTES, ".env")? else {
        return Ok(BTreeMap::new());
    };
    parse_dotenv(path, &zeroize::Zeroizing::new(bytes))
}

/// Parses the bytes of a `.env` file named `path` (the path is used in messages only).
pub fn parse_dotenv(path: &Path, bytes: &[u8]) -> Result<BTreeMap<String, (SecretValue, Location)>> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let (line, column) = crate::secrets_file::line_column(
            &String::from_utf8_lossy(&bytes[..e.valid_up_to()]),
            e.valid_up_to(),
        );
        Error::input(Location::at(path, line, column), "the file is not valid UTF-8", "save it as UTF-8")
    })?;
    let mut vars = BTreeMap::new();
    for item in dotenvy::from_read_iter(text.as_bytes()) {
        let (name, value) = item.map_err(|e| dotenv_error(path, text, &e))?;
        let location = Location::at(path, definition_line(text, &name), 1);
        if !value.is_empty() {
            vars.insert(name, (SecretValue::new(value), location));
        } else {
            vars.remove(&name);
        }
    }
    Ok(vars)
}

/// The line where `name` is (last) defined, for messages; 1 if it cannot be told.
fn definition_line(text: &str, name: &str) -> usize {
    text.lines()
        .enumerate()
        .filter(|(_, line)| {
            let line = line.trim_start();
            let line = line.strip_prefix("export ").map_or(line, str::trim_start);
            line.strip_prefix(name).is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .map(|(i, _)| i + 1)
        .last()
        .unwrap_or(1)
}

fn dotenv_error(path: &Path, text: &str, error: &dotenvy::Error) -> Error {
    let hint = "write NAME=value, one per line; quote values that contain spaces or #, and close every quote";
    let dotenvy::Error::LineParse(fragment, index) = error else {
        return Error::input(Location::file(path), "the file cannot be parsed as .env", hint);
    };
    // dotenvy names the offending text, not its line: find the first line at which a prefix of
    // the file stops parsing (a binary search; parsing a prefix is monotone). The text itself is
    // never repeated, as it may hold a value.
    let lines: Vec<&str> = text.lines().collect();
    let fails =
        |k: usize| dotenvy::from_read_iter(lines[..k].join("\n").as_bytes()).any(|item| item.is_err());
    let (mut good, mut bad) = (0, lines.len());
    while bad - good > 1 {
        let mid = (good + bad) / 2;
        if fails(mid) { bad = mid } else { good = mid }
    }
    let line = lines.get(bad.saturating_sub(1)).copied().unwrap_or_default();
    let column = match line.find(fragment.lines().next().unwrap_or_default()) {
        Some(start) if !fragment.is_empty() => (start + index + 1).min(line.chars().count() + 1),
        _ => 1,
    };
    Error::input(Location::at(path, bad.max(1), column), "this line of .env cannot be parsed", hint)
}

/// secrets.json entries with each value taken from the first source that sets it.
pub fn layer(file: Vec<FileEntry>, overrides: &Overrides) -> Vec<Entry> {
    file.into_iter()
        .map(|entry| {
            let name = policy::variable_name(&entry.key);
            let (value, source) = if let Some(value) = overrides.environment.get(&name) {
                (Some(value.clone()), Source::Environment)
            } else if let Some((value, _)) = overrides.dotenv.get(&name) {
                (Some(value.clone()), Source::DotEnv)
            } else {
                (entry.value, Source::File)
            };
            Entry { key: entry.key, value, source, location: entry.location }
        })
        .collect()
}

/// The desired state of a `secrets.source: env` profile: the standard variables, and those
/// named in `SYSTEMPROMPT_CUSTOM_SECRETS`, as the process environment has them.
pub fn from_environment(environment: &BTreeMap<String, SecretValue>) -> Result<Vec<Entry>> {
    let mut names: Vec<String> = policy::STANDARD_VARS.iter().map(|n| (*n).to_owned()).collect();
    if let Some(list) = environment.get(policy::CUSTOM_SECRETS_VAR) {
        for name in list.expose().split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(Error::Input {
                    location: Location::named(format!("environment variable {}", policy::CUSTOM_SECRETS_VAR)),
                    message: format!("it names `{}`, which cannot be a variable name", name.escape_debug()),
                    hint: Some(
                        "list variable names separated by commas, as in JWT_SECRET,MY_API_KEY".to_owned(),
                    ),
                });
            }
            if !names.iter().any(|n| n == name) {
                names.push(name.to_owned());
            }
        }
    }
    Ok(names
        .into_iter()
        .filter(|name| environment.contains_key(name) || !policy::is_standard(name))
        .map(|name| Entry {
            key: policy::key_for(&name),
            value: environment.get(&name).cloned(),
            source: Source::Environment,
            location: Location::named(format!("environment variable {name}")),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_env(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn dotenv_is_parsed_by_a_real_parser() {
        let (_dir, path) = write_env(
            "# comment\nexport OPENAI_API_KEY=sk-1\nQUOTED=\"a b # c\"\nSINGLE='x'\nEMPTY=\nGEMINI_API_KEY=AIza\n",
        );
        let vars = load_dotenv(&path).unwrap();
        assert_eq!(vars["OPENAI_API_KEY"].0.expose(), "sk-1");
        assert_eq!(vars["OPENAI_API_KEY"].1.position, Some((2, 1)));
        assert_eq!(vars["QUOTED"].0.expose(), "a b # c");
        assert_eq!(vars["SINGLE"].0.expose(), "x");
        assert!(!vars.contains_key("EMPTY"));
        assert_eq!(vars["GEMINI_API_KEY"].1.position, Some((6, 1)));
    }

    #[test]
    fn a_bad_line_is_located_and_not_quoted() {
        let (_dir, path) = write_env("A=1\nB=\"CANARY-unterminated\n");
        let e = load_dotenv(&path).unwrap_err();
        let text = format!("{e} {}", e.hint().unwrap_or_default());
        assert!(text.contains(".env:"), "{text}");
        assert!(!text.contains("CANARY"), "{text}");
    }

    #[test]
    fn environment_beats_dotenv_beats_the_file() {
        let loc = Location::named("x");
        let file = vec![
            FileEntry {
                key: "openai".into(),
                value: Some(SecretValue::new("file")),
                location: loc.clone(),
                value_span: 0..0,
            },
            FileEntry {
                key: "gemini".into(),
                value: Some(SecretValue::new("file")),
                location: loc.clone(),
                value_span: 0..0,
            },
            FileEntry { key: "jwt_secret".into(), value: None, location: loc.clone(), value_span: 0..0 },
            FileEntry {
                key: "github".into(),
                value: Some(SecretValue::new("file")),
                location: loc.clone(),
                value_span: 0..0,
            },
        ];
        let overrides = Overrides {
            environment: [("OPENAI_API_KEY", "env"), ("JWT_SECRET", "env")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), SecretValue::new(v)))
                .collect(),
            dotenv: [("OPENAI_API_KEY", "dot"), ("GEMINI_API_KEY", "dot")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), (SecretValue::new(v), loc.clone())))
                .collect(),
        };
        let layered: Vec<(String, Option<String>, Source)> = layer(file, &overrides)
            .into_iter()
            .map(|e| (e.key, e.value.map(|v| v.expose().to_owned()), e.source))
            .collect();
        assert_eq!(
            layered,
            [
                ("openai".into(), Some("env".into()), Source::Environment),
                ("gemini".into(), Some("dot".into()), Source::DotEnv),
                ("jwt_secret".into(), Some("env".into()), Source::Environment),
                ("github".into(), Some("file".into()), Source::File),
            ]
        );
    }

    #[test]
    fn source_env_reads_the_standard_and_listed_custom_variables() {
        let environment: BTreeMap<String, SecretValue> = [
            ("DATABASE_URL", "d"),
            ("SYSTEMPROMPT_CUSTOM_SECRETS", "JWT_SECRET,MY_KEY"),
            ("JWT_SECRET", "j"),
            ("PATH", "/bin"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), SecretValue::new(v)))
        .collect();
        let entries = from_environment(&environment).unwrap();
        let keys: Vec<(&str, bool)> = entries.iter().map(|e| (e.key.as_str(), e.value.is_some())).collect();
        assert_eq!(keys, [("database_url", true), ("jwt_secret", true), ("my_key", false)]);
        let bad: BTreeMap<String, SecretValue> =
            [("SYSTEMPROMPT_CUSTOM_SECRETS".to_owned(), SecretValue::new("A,B-C"))].into_iter().collect();
        assert!(from_environment(&bad).unwrap_err().to_string().contains("`B-C`"));
    }
}
