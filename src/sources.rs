//! Where desired values come from, in order of precedence: the process environment, then a
//! `.env` file (only where cloud-secrets.yaml opts in), then the profile's secrets file, per key,
//! by the name the runtime reads. When the secrets file is absent (CI), the environment alone is
//! the desired state, and it never removes anything.

use std::collections::{BTreeMap, HashSet};
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
    /// Variables of the `.env` the settings name, by name, with the location of each.
    pub dotenv: BTreeMap<String, (SecretValue, Location)>,
}

/// The desired state's entries, and whether they are the whole of it.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// Each key with its value from the first source that sets it.
    pub entries: Vec<Entry>,
    /// True when the secrets file is absent and the entries come from the environment alone:
    /// then they name only what the environment sets, and nothing is removed for want of a key.
    pub partial: bool,
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
        if !value.trim().is_empty() {
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

/// secrets.json entries with each value taken from the first source that sets it: a non-blank
/// variable of the environment, then of the `.env`, under a name the runtime reads for the key.
pub fn layer(file: Vec<FileEntry>, overrides: &Overrides) -> Vec<Entry> {
    // The override names in lower case: a plain key in lower case that is not among them cannot
    // be overridden, and is passed over without working out its names.
    let lower: HashSet<String, foldhash::fast::RandomState> = overrides
        .environment
        .keys()
        .chain(overrides.dotenv.keys())
        .map(|name| name.to_ascii_lowercase())
        .collect();
    let passed_over = |key: &str| {
        key.bytes().all(|b| !b.is_ascii_uppercase()) && policy::is_plain_key(key) && !lower.contains(key)
    };
    file.into_iter()
        .map(|entry| {
            if passed_over(&entry.key) {
                let FileEntry { key, value, location, .. } = entry;
                return Entry { key, value, source: Source::File, location };
            }
            let names = policy::key_names(&entry.key);
            let read = || std::iter::once(names.runtime.as_str()).chain(names.also_read.iter().copied());
            let set = |value: &&SecretValue| !value.is_blank();
            let (value, source) =
                if let Some(value) = read().find_map(|n| overrides.environment.get(n).filter(set)) {
                    (Some(value.clone()), Source::Environment)
                } else if let Some((value, _)) =
                    read().find_map(|n| overrides.dotenv.get(n).filter(|(v, _)| !v.is_blank()))
                {
                    (Some(value.clone()), Source::DotEnv)
                } else {
                    (entry.value, Source::File)
                };
            Entry { key: entry.key, value, source, location: entry.location }
        })
        .collect()
}

/// The desired state when the secrets file is absent: every known key whose variable the
/// environment sets (under a name the runtime reads), and every variable named in
/// `SYSTEMPROMPT_CUSTOM_SECRETS` (not set when the environment lacks it).
pub fn from_environment(environment: &BTreeMap<String, SecretValue>) -> Result<Vec<Entry>> {
    let set = |name: &str| environment.get(name).filter(|v| !v.is_blank());
    let mut entries: Vec<Entry> = Vec::new();
    // A deploy-owned key (signing_key_pem) is the deploy step's to write, never the environment's.
    let known = policy::KNOWN_KEYS
        .iter()
        .filter(|k| policy::classify(&policy::variable_name(k)) == policy::VarClass::Managed);
    for key in known {
        let names = policy::key_names(key);
        let found = std::iter::once(names.runtime.as_str())
            .chain(names.also_read.iter().copied())
            .find_map(|name| set(name).map(|value| (name, value)));
        if let Some((name, value)) = found {
            entries.push(Entry {
                key: (*key).to_owned(),
                value: Some(value.clone()),
                source: Source::Environment,
                location: Location::named(format!("environment variable {name}")),
            });
        }
    }
    let mut names: Vec<String> = Vec::new();
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
    for name in names {
        let key = policy::key_for(&name);
        if entries.iter().any(|e| e.key == key) {
            continue;
        }
        entries.push(Entry {
            key,
            value: set(&name).cloned(),
            source: Source::Environment,
            location: Location::named(format!("environment variable {name}")),
        });
    }
    Ok(entries)
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
    fn every_name_the_runtime_reads_overrides_whatever_the_key_and_only_those() {
        let secrets = br#"{"jwt_secret": "f", "openai": "f", "moonshot": "f", "stripe_key": "f", "MY_KEY": "f", "other": "f"}"#;
        let file = crate::secrets_file::parse(Path::new("secrets.json"), secrets).unwrap();
        let set = |names: &[&str]| names.iter().map(|n| ((*n).to_owned(), SecretValue::new("e"))).collect();
        let overrides = Overrides {
            environment: set(&["JWT_SECRET", "OPENAI_API_KEY", "KIMI_API_KEY", "Other", "OPENAI"]),
            dotenv: [("MY_KEY".to_owned(), (SecretValue::new("d"), Location::named("d")))].into(),
        };
        let sources: Vec<(String, Source)> =
            layer(file, &overrides).into_iter().map(|e| (e.key, e.source)).collect();
        let expected = [
            ("jwt_secret", Source::Environment),
            ("openai", Source::Environment),
            ("moonshot", Source::Environment),
            ("stripe_key", Source::File),
            ("MY_KEY", Source::DotEnv),
            // `Other` is not the name the runtime reads for `other`.
            ("other", Source::File),
        ];
        assert_eq!(sources, expected.map(|(k, s)| (k.to_owned(), s)));
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
