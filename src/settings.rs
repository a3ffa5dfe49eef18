//! cloud-secrets' own settings: `.systemprompt/cloud-secrets.yaml`, with a section per profile
//! under `profiles:` and optional `defaults:`. The platform's files (profile.yaml, secrets.json)
//! hold none of them. Fields earlier versions read from profile.yaml still work, with a warning
//! that says what to move here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Location, Result, display_path};
use crate::project::{self, DEFAULT_MASS_REMOVAL_THRESHOLD, PROJECT_DIR, Profile, Validation};

/// The settings file's name, in `.systemprompt/`.
pub const FILE_NAME: &str = "cloud-secrets.yaml";

/// The largest settings file read.
const MAX_BYTES: u64 = 256 * 1024;

/// The fields of a section (`defaults:` or a profile's), as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Section {
    remote: Option<String>,
    ignore: Option<Vec<String>>,
    validation: Option<Validation>,
    dotenv: Option<String>,
    mass_removal_threshold: Option<f64>,
}

/// The names of a section's fields, for "did you mean".
const FIELDS: [&str; 5] = ["remote", "ignore", "validation", "dotenv", "mass_removal_threshold"];

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsFile {
    defaults: Option<Section>,
    profiles: Option<BTreeMap<String, Option<Section>>>,
}

/// Where a setting was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// In cloud-secrets.yaml, at this location.
    Settings(Location),
    /// In profile.yaml (a field of earlier versions), at this location.
    ProfileYaml(Location),
}

impl Origin {
    /// Where the setting is written.
    pub fn location(&self) -> &Location {
        match self {
            Origin::Settings(location) | Origin::ProfileYaml(location) => location,
        }
    }
}

/// The remote a profile's settings name.
#[derive(Debug, Clone)]
pub struct RemoteSetting {
    /// The address as written.
    pub address: String,
    /// The folder a relative `file:` path is resolved against.
    pub base: PathBuf,
    /// Where it is written.
    pub origin: Origin,
}

/// The settings in force for one profile.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The settings file, whether or not it exists.
    pub path: PathBuf,
    /// The remote, if the settings name one.
    pub remote: Option<RemoteSetting>,
    /// Glob patterns of variables left alone, with where they are written.
    pub ignore: (Vec<String>, Option<Origin>),
    /// How cloud-secrets' own advice checks are treated (default warn).
    pub validation: Validation,
    /// A `.env` file to read as an override layer, if the settings opt in, and where that is
    /// written.
    pub dotenv: Option<(PathBuf, Location)>,
    /// The share of managed variables a plan may remove before apply refuses it.
    pub mass_removal_threshold: f64,
    /// Remarks to show as warnings (fields still in profile.yaml).
    pub warnings: Vec<String>,
}

impl Settings {
    /// The settings of a profile outside any project: every default.
    pub fn defaults(path: PathBuf) -> Self {
        Self {
            path,
            remote: None,
            ignore: (Vec::new(), None),
            validation: Validation::Warn,
            dotenv: None,
            mass_removal_threshold: DEFAULT_MASS_REMOVAL_THRESHOLD,
            warnings: Vec::new(),
        }
    }
}

/// The settings file of the project at `root`.
pub fn path(root: &Path) -> PathBuf {
    root.join(PROJECT_DIR).join(FILE_NAME)
}

/// The settings in force for `profile`: its section of the settings file over `defaults:`, then
/// the fields earlier versions read from profile.yaml where the settings file is silent.
pub fn load(root: Option<&Path>, profile: &Profile, home: Option<&Path>) -> Result<Settings> {
    let file_path = match root {
        Some(root) => path(root),
        None => profile.dir.join(FILE_NAME),
    };
    let base = file_path.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let (file, text) = match root {
        Some(_) => read(&file_path)?,
        None => (SettingsFile::default(), String::new()),
    };
    let section = file.profiles.as_ref().and_then(|p| p.get(&profile.name)).cloned().flatten();
    let defaults = file.defaults.clone().unwrap_or_default();
    let at = |key: &str| -> Location {
        let in_section = section_of(&text, &profile.name, key);
        match in_section {
            Some((line, column)) => Location::at(&file_path, line, column),
            None => match section_line(&text, &["defaults"], key) {
                Some((line, column)) => Location::at(&file_path, line, column),
                None => Location::file(&file_path),
            },
        }
    };
    let pick = |get: &dyn Fn(&Section) -> bool| -> Option<Section> {
        section.as_ref().filter(|s| get(s)).or(Some(&defaults).filter(|s| get(s))).cloned()
    };

    let mut settings = Settings::defaults(file_path.clone());
    let legacy = profile.settings.secrets.clone().unwrap_or_default();

    if let Some(s) = pick(&|s| s.remote.is_some()) {
        let address = s.remote.unwrap_or_default();
        settings.remote =
            Some(RemoteSetting { address, base: base.clone(), origin: Origin::Settings(at("remote")) });
    } else if let Some(address) = &legacy.remote {
        settings.remote = Some(RemoteSetting {
            address: address.clone(),
            base: profile.dir.clone(),
            origin: Origin::ProfileYaml(project::locate(&profile.yaml, "remote")),
        });
    }
    if let Some(s) = pick(&|s| s.ignore.is_some()) {
        settings.ignore = (s.ignore.unwrap_or_default(), Some(Origin::Settings(at("ignore"))));
    } else if let Some(patterns) = &legacy.ignore {
        settings.ignore =
            (patterns.clone(), Some(Origin::ProfileYaml(project::locate(&profile.yaml, "ignore"))));
    }
    if let Some(s) = pick(&|s| s.validation.is_some()) {
        settings.validation = s.validation.unwrap_or_default();
    }
    if let Some(s) = pick(&|s| s.dotenv.is_some()) {
        let text = s.dotenv.unwrap_or_default();
        if text.trim().is_empty() {
            return Err(Error::input(
                at("dotenv"),
                "dotenv is empty",
                "give the path of a .env file (relative to this file's folder), or remove the field",
            ));
        }
        let path = project::expand_home(&text, home).unwrap_or_else(|| base.join(&text));
        settings.dotenv = Some((project::tidy(&path), at("dotenv")));
    }
    let threshold = match pick(&|s| s.mass_removal_threshold.is_some()) {
        Some(s) => s.mass_removal_threshold.map(|t| (t, at("mass_removal_threshold"))),
        None => legacy
            .mass_removal_threshold
            .map(|t| (t, project::locate(&profile.yaml, "mass_removal_threshold"))),
    };
    if let Some((threshold, location)) = threshold {
        if !(0.0..=1.0).contains(&threshold) {
            return Err(Error::input(
                location,
                "mass_removal_threshold must be between 0 and 1",
                "give the share of managed variables a plan may remove, for example 0.5",
            ));
        }
        settings.mass_removal_threshold = threshold;
    }
    if legacy.has_legacy_fields() {
        settings.warnings.push(legacy_warning(profile, &legacy, &file_path));
    }
    Ok(settings)
}

/// The warning for a profile.yaml that still holds fields earlier versions read: where they are,
/// why they must go, and the exact lines to put into cloud-secrets.yaml instead.
fn legacy_warning(profile: &Profile, legacy: &project::SecretsSettings, settings_path: &Path) -> String {
    let mut fields = Vec::new();
    let mut lines = vec!["profiles:".to_owned(), format!("  {}:", yaml_key(&profile.name))];
    if let Some(remote) = &legacy.remote {
        fields.push("remote");
        let moved = match remote.strip_prefix("file:") {
            Some(rel) if !Path::new(rel).is_absolute() => {
                let base = settings_path.parent().unwrap_or(Path::new("."));
                let target = profile.dir.join(rel);
                let shown = match target.strip_prefix(base) {
                    Ok(inside) => inside.display().to_string(),
                    Err(_) => std::path::absolute(&target).unwrap_or(target).display().to_string(),
                };
                format!("file:{shown}")
            }
            _ => crate::backend::redact_address(remote),
        };
        lines.push(format!("    remote: {}", yaml_scalar(&moved)));
    }
    if let Some(patterns) = &legacy.ignore {
        fields.push("ignore");
        let list: Vec<String> = patterns.iter().map(|p| yaml_scalar(p)).collect();
        lines.push(format!("    ignore: [{}]", list.join(", ")));
    }
    if let Some(threshold) = legacy.mass_removal_threshold {
        fields.push("mass_removal_threshold");
        lines.push(format!("    mass_removal_threshold: {threshold}"));
    }
    let fields: Vec<String> = fields.iter().map(|f| format!("secrets.{f}")).collect();
    let (belong, it) = if fields.len() == 1 { ("belongs", "it") } else { ("belong", "them") };
    format!(
        "{}: {} {belong} to cloud-secrets, not to the platform, which rejects a profile.yaml holding {it}; for \
         now cloud-secrets still reads {it}. Move {it} into {} (and remove {it} from profile.yaml):\n{}",
        project::locate(&profile.yaml, "secrets"),
        fields.join(", "),
        display_path(settings_path),
        lines.iter().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n")
    )
}

/// A profile name as a YAML key.
fn yaml_key(name: &str) -> String {
    yaml_scalar(name)
}

/// A string as a YAML scalar: plain where that reads back the same, else double-quoted.
fn yaml_scalar(text: &str) -> String {
    let plain = !text.is_empty()
        && text.chars().all(|c| c.is_ascii_alphanumeric() || "_-./:*?[]".contains(c))
        && !text.starts_with(['*', '?', '[', ']', ':', '-'])
        && !text.ends_with(':')
        && !text.contains(": ")
        && serde_yaml_ng::from_str::<serde_yaml_ng::Value>(text)
            .is_ok_and(|back| back == serde_yaml_ng::Value::String(text.to_owned()));
    if plain { text.to_owned() } else { serde_json::to_string(text).unwrap_or_default() }
}

/// Reads and parses the settings file; a missing file is empty.
fn read(path: &Path) -> Result<(SettingsFile, String)> {
    let Some(bytes) = crate::files::read_limited(path, MAX_BYTES, FILE_NAME)? else {
        return Ok((SettingsFile::default(), String::new()));
    };
    let text = String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        let (line, column) =
            crate::secrets_file::line_column(&String::from_utf8_lossy(&e.as_bytes()[..valid]), valid);
        Error::input(Location::at(path, line, column), "the file is not valid UTF-8", "save it as UTF-8")
    })?;
    if text.trim().is_empty() {
        return Ok((SettingsFile::default(), text));
    }
    let file: Option<SettingsFile> =
        serde_yaml_ng::from_str(&text).map_err(|e| parse_error(path, &text, &e))?;
    Ok((file.unwrap_or_default(), text))
}

/// A parse error at its line and column, without the value found there, with a "did you mean"
/// for a misspelt field.
fn parse_error(path: &Path, text: &str, e: &serde_yaml_ng::Error) -> Error {
    let full = e.to_string();
    let location = match e.location() {
        Some(loc) => Location::at(path, loc.line(), loc.column()),
        None => Location::file(path),
    };
    if let Some(field) = full.find("unknown field `").and_then(|at| full[at + 15..].split('`').next()) {
        let top = full.contains("expected `defaults` or `profiles`");
        let candidates: &[&str] = if top { &["defaults", "profiles"] } else { &FIELDS };
        let suggestion = candidates
            .iter()
            .map(|c| (strsim::jaro_winkler(field, c), *c))
            .filter(|(score, _)| *score > 0.8)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, c)| c);
        let location = first_key_line(text, field).map_or(location, |(l, c)| Location::at(path, l, c));
        let expected = candidates.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ");
        let hint = match suggestion {
            Some(c) => format!("did you mean `{c}`? The fields here are {expected}; see docs/settings.md"),
            None => format!("the fields here are {expected}; see docs/settings.md"),
        };
        return Error::input(
            location,
            format!("unknown field `{}` in {FILE_NAME}", field.escape_debug()),
            hint,
        );
    }
    project::yaml_error(path, (text, &[]), e, FILE_NAME, "see docs/settings.md for its fields")
}

/// The first line where `key:` is written, with its column.
fn first_key_line(text: &str, key: &str) -> Option<(usize, usize)> {
    text.lines().enumerate().find_map(|(i, line)| {
        let trimmed = line.trim_start();
        let rest = trimmed.strip_prefix(key)?;
        rest.trim_start().starts_with(':').then(|| (i + 1, line.len() - trimmed.len() + 1))
    })
}

/// Where `key:` is written in the section of profile `name` under `profiles:`.
fn section_of(text: &str, name: &str, key: &str) -> Option<(usize, usize)> {
    section_line(text, &["profiles", name], key)
}

/// Where `key:` is written inside the nested block mappings `path` (by indentation).
fn section_line(text: &str, path: &[&str], key: &str) -> Option<(usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let indent = |line: &str| line.len() - line.trim_start().len();
    let is_key = |line: &str, key: &str| {
        let t = line.trim_start();
        let t = t
            .strip_prefix('"')
            .and_then(|r| r.strip_prefix(key))
            .and_then(|r| r.strip_prefix('"'))
            .or_else(|| t.strip_prefix(key));
        t.is_some_and(|r| r.trim_start().starts_with(':'))
    };
    let (mut from, mut to, mut min_indent) = (0usize, lines.len(), 0usize);
    for part in path {
        let (at, _) = lines[from..to]
            .iter()
            .enumerate()
            .find(|(_, l)| indent(l) >= min_indent && is_key(l, part) && !l.trim_start().starts_with('#'))?;
        let at = from + at;
        let own = indent(lines[at]);
        let end = lines[at + 1..to]
            .iter()
            .position(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#') && indent(l) <= own)
            .map_or(to, |p| at + 1 + p);
        (from, to, min_indent) = (at + 1, end, own + 1);
    }
    lines[from..to]
        .iter()
        .enumerate()
        .find(|(_, l)| is_key(l, key))
        .map(|(i, l)| (from + i + 1, indent(l) + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_are_found_by_indentation() {
        let text = "defaults:\n  ignore: [A]\nprofiles:\n  local:\n    remote: file:a\n  production:\n    # c\n    remote: file:b\n    ignore: [B]\n";
        assert_eq!(section_of(text, "production", "remote"), Some((8, 5)));
        assert_eq!(section_of(text, "local", "remote"), Some((5, 5)));
        assert_eq!(section_of(text, "local", "ignore"), None);
        assert_eq!(section_line(text, &["defaults"], "ignore"), Some((2, 3)));
    }

    #[test]
    fn a_misspelt_field_is_located_with_a_suggestion() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        std::fs::write(&path, "profiles:\n  local:\n    remtoe: file:CANARY-x\n").unwrap();
        let e = read(&path).unwrap_err();
        let text = format!("{e} {}", e.hint().unwrap_or_default());
        assert!(text.contains("cloud-secrets.yaml:3:5: unknown field `remtoe`"), "{text}");
        assert!(text.contains("did you mean `remote`?"), "{text}");
        assert!(!text.contains("CANARY"), "{text}");
        std::fs::write(&path, "profile:\n  local: {}\n").unwrap();
        let e = read(&path).unwrap_err();
        assert!(e.hint().unwrap_or_default().contains("did you mean `profiles`?"), "{e}");
        std::fs::write(&path, "profiles:\n  local:\n    validation: CANARY\n").unwrap();
        let e = read(&path).unwrap_err().to_string();
        assert!(e.contains("3:17") && !e.contains("CANARY"), "{e}");
    }

    #[test]
    fn yaml_scalars_read_back_as_written() {
        for text in ["file:profiles/x/store.json", "LEGACY_*", "a b", "*", "x: y", "true", "1.5", ""] {
            let shown = yaml_scalar(text);
            let back: String = serde_yaml_ng::from_str(&shown).unwrap();
            assert_eq!(back, text, "{shown}");
        }
        assert_eq!(yaml_scalar("file:store.json"), "file:store.json");
    }
}
