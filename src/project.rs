//! Finding the project and its profile on disk: the project root, the profile directory, and the
//! profile's `profile.yaml`.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Location, Result, display_path};

/// The directory whose presence marks a project root.
pub const PROJECT_DIR: &str = ".systemprompt";

/// A selected profile.
#[derive(Debug, Clone)]
pub struct Profile {
    /// The profile's name (its directory name).
    pub name: String,
    /// The profile directory.
    pub dir: PathBuf,
    /// The profile's settings file: `profile.yaml`, or the YAML file named by `--profile`.
    pub yaml: PathBuf,
    /// The parsed settings, or the defaults when the file does not exist.
    pub settings: ProfileSettings,
    /// Remarks about the settings (unknown fields), to show as warnings.
    pub warnings: Vec<String>,
}

impl Profile {
    /// The profile's secrets.json.
    pub fn secrets_path(&self) -> PathBuf {
        self.dir.join("secrets.json")
    }
}

/// How a profile was chosen, for `-v` output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileOrigin {
    /// `--profile`.
    Flag,
    /// `SYSTEMPROMPT_PROFILE`.
    Environment,
    /// The only profile in the project.
    OnlyOne,
}

/// `profile.yaml`. Every field is optional; fields this tool does not know are left alone.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ProfileSettings {
    /// `local` or `cloud`.
    pub target: Option<Target>,
    /// The cloud tenant.
    #[serde(default)]
    pub cloud: CloudSettings,
    /// Settings of this tool.
    #[serde(default)]
    pub secrets: SecretsSettings,
}

/// Where the profile runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// A local development setup.
    Local,
    /// The systemprompt cloud.
    Cloud,
}

/// `cloud:` in profile.yaml.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CloudSettings {
    /// The tenant whose secrets the profile manages.
    pub tenant_id: Option<String>,
}

/// `secrets:` in profile.yaml.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SecretsSettings {
    /// How validation findings are treated.
    #[serde(default)]
    pub validation: Validation,
    /// Where the desired state comes from.
    #[serde(default)]
    pub source: SourceKind,
    /// The remote, such as `file:store.json` (relative to the profile directory).
    pub remote: Option<String>,
    /// The share of the remote's managed variables a plan may remove before apply refuses it
    /// without `--allow-mass-removal` (default 0.5).
    pub mass_removal_threshold: Option<f64>,
    /// Glob patterns of variable names never added, changed or removed.
    #[serde(default)]
    pub ignore: Vec<String>,
    /// Fields this version does not know; warned about, so a typo does not pass unseen.
    #[serde(flatten)]
    pub unknown: std::collections::BTreeMap<String, serde_yaml_ng::Value>,
}

/// `secrets.validation`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Validation {
    /// A finding is an error.
    Strict,
    /// A finding is a warning.
    #[default]
    Warn,
    /// No checks.
    Skip,
}

/// `secrets.source`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// The profile's secrets.json (with environment overrides).
    #[default]
    File,
    /// The process environment alone.
    Env,
}

/// The default of `secrets.mass_removal_threshold`.
pub const DEFAULT_MASS_REMOVAL_THRESHOLD: f64 = 0.5;

/// The largest profile.yaml read.
pub const MAX_YAML_BYTES: u64 = 256 * 1024;

/// The nearest directory at or above `start` that contains `.systemprompt/`.
pub fn find_root(start: &Path) -> Option<PathBuf> {
    start.ancestors().find(|dir| dir.join(PROJECT_DIR).is_dir()).map(Path::to_path_buf)
}

/// The profile names of a project, sorted.
pub fn list_profiles(root: &Path) -> Result<Vec<String>> {
    let dir = root.join(PROJECT_DIR).join("profiles");
    let read = match std::fs::read_dir(&dir) {
        Ok(read) => read,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("list", &dir, e)),
    };
    // Names that are not UTF-8 are listed lossily rather than dropped, so that a project with
    // two profiles is never mistaken for one with only one.
    let mut names: Vec<String> = read
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.path().is_dir())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    Ok(names)
}

/// Whether a `--profile` argument names a path rather than a profile.
pub fn is_profile_path(arg: &str) -> bool {
    arg.contains('/')
        || arg.starts_with('.')
        || arg.starts_with('~')
        || arg.ends_with(".yaml")
        || arg.ends_with(".yml")
}

/// Chooses the profile: `--profile` > `SYSTEMPROMPT_PROFILE` > the only profile.
pub fn select_profile(
    cwd: &Path,
    flag: Option<&str>,
    env: Option<&str>,
    home: Option<&Path>,
) -> Result<(Profile, ProfileOrigin)> {
    if flag == Some("") {
        return Err(Error::usage(
            "--profile needs a profile name or path",
            "for example --profile production",
        ));
    }
    let (arg, origin) = match (flag, env.filter(|s| !s.is_empty())) {
        (Some(arg), _) => (Some(arg), ProfileOrigin::Flag),
        (None, Some(arg)) => (Some(arg), ProfileOrigin::Environment),
        (None, None) => (None, ProfileOrigin::OnlyOne),
    };
    let mut yaml = None;
    let dir = match arg {
        Some(arg) if is_profile_path(arg) => {
            let (dir, named_yaml) = profile_dir_from_path(cwd, arg, home)?;
            yaml = named_yaml;
            dir
        }
        Some(name) => {
            let root = require_root(cwd)?;
            let dir = root.join(PROJECT_DIR).join("profiles").join(name);
            if !dir.is_dir() {
                let names = list_profiles(&root)?;
                return Err(Error::config(
                    format!(
                        "no profile named `{name}` in {}",
                        display_path(&root.join(PROJECT_DIR).join("profiles"))
                    ),
                    available(&names),
                ));
            }
            dir
        }
        None => {
            let root = require_root(cwd)?;
            let names = list_profiles(&root)?;
            match names.as_slice() {
                [only] if !only.contains('\u{fffd}') => root.join(PROJECT_DIR).join("profiles").join(only),
                [only] => {
                    return Err(Error::config(
                        format!("the only profile's directory name, {only:?}, is not valid UTF-8"),
                        "rename the profile directory",
                    ));
                }
                [] => {
                    return Err(Error::config(
                        format!(
                            "the project has no profiles: {} is empty or missing",
                            display_path(&root.join(PROJECT_DIR).join("profiles"))
                        ),
                        "create .systemprompt/profiles/<name>/secrets.json",
                    ));
                }
                _ => {
                    return Err(Error::config(
                        format!(
                            "the project has {} profiles ({}); which one?",
                            names.len(),
                            names.join(", ")
                        ),
                        "use --profile NAME, or set SYSTEMPROMPT_PROFILE",
                    ));
                }
            }
        }
    };
    let name = dir.file_name().map_or_else(|| "profile".to_owned(), |n| n.to_string_lossy().into_owned());
    let yaml = yaml.unwrap_or_else(|| dir.join("profile.yaml"));
    let settings = load_settings(&yaml)?;
    let warnings = settings
        .secrets
        .unknown
        .keys()
        .map(|field| {
            format!(
                "{}: unknown field `secrets.{field}` is ignored (cloud-secrets reads validation, source, remote and mass_removal_threshold)",
                display_path(&yaml)
            )
        })
        .collect();
    Ok((Profile { name, dir, yaml, settings, warnings }, origin))
}

fn available(names: &[String]) -> String {
    if names.is_empty() {
        "the project has no profiles; create .systemprompt/profiles/<name>/secrets.json".to_owned()
    } else {
        format!("available profiles: {}; use --profile NAME", names.join(", "))
    }
}

fn require_root(cwd: &Path) -> Result<PathBuf> {
    find_root(cwd).ok_or_else(|| {
        Error::config(
            format!("no {PROJECT_DIR}/ directory in {} or any parent directory", display_path(cwd)),
            "run cloud-secrets inside a systemprompt project, or pass --profile PATH to a profile directory",
        )
    })
}

/// The profile directory named by a path, and the YAML file when the path names one.
fn profile_dir_from_path(cwd: &Path, arg: &str, home: Option<&Path>) -> Result<(PathBuf, Option<PathBuf>)> {
    let path = match (arg.strip_prefix("~/").or(if arg == "~" { Some("") } else { None }), home) {
        (Some(rest), Some(home)) => home.join(rest),
        _ => cwd.join(arg),
    };
    let names_yaml = arg.ends_with(".yaml") || arg.ends_with(".yml");
    let (dir, yaml) = if names_yaml {
        (path.parent().map_or_else(|| cwd.to_path_buf(), Path::to_path_buf), Some(path.clone()))
    } else {
        (path.clone(), None)
    };
    if !dir.is_dir() || (names_yaml && !path.is_file()) {
        return Err(Error::config(
            format!("profile path {} does not exist", display_path(&path)),
            "pass a profile name, or the path of a profile directory or its profile.yaml",
        ));
    }
    Ok((dir, yaml))
}

/// Every line where `key:` is written in `text` (any indentation), with its column.
fn key_lines(text: &str, key: &str) -> Vec<(usize, usize)> {
    text.lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let trimmed = line.trim_start();
            let rest = trimmed.strip_prefix(key)?;
            rest.trim_start().starts_with(':').then(|| (i + 1, line.len() - trimmed.len() + 1))
        })
        .collect()
}

/// Where `key:` is first written in a YAML file, for messages about its value; the whole file
/// when it cannot be found.
pub fn locate(path: &Path, key: &str) -> Location {
    let text =
        crate::files::read_limited(path, MAX_YAML_BYTES, "profile.yaml").ok().flatten().unwrap_or_default();
    match key_lines(&String::from_utf8_lossy(&text), key).first() {
        Some((line, column)) => Location::at(path, *line, *column),
        None => Location::file(path),
    }
}

/// Reads profile.yaml; a missing file means every default.
pub fn load_settings(path: &Path) -> Result<ProfileSettings> {
    let Some(bytes) = crate::files::read_limited(path, MAX_YAML_BYTES, "profile.yaml")? else {
        return Ok(ProfileSettings::default());
    };
    parse_settings(path, bytes)
}

/// Parses the bytes of a profile.yaml named `path` (the path is used in messages only).
pub fn parse_settings(path: &Path, bytes: Vec<u8>) -> Result<ProfileSettings> {
    let text = String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        let bytes = e.as_bytes();
        let (line, column) =
            crate::secrets_file::line_column(&String::from_utf8_lossy(&bytes[..valid]), valid);
        Error::input(Location::at(path, line, column), "the file is not valid UTF-8", "save it as UTF-8")
    })?;
    if text.trim().is_empty() {
        return Ok(ProfileSettings::default());
    }
    let settings: ProfileSettings = serde_yaml_ng::from_str(&text).map_err(|e| {
        let full = e.to_string();
        let mut message = safe_yaml_message(&full);
        let mut location = match e.location() {
            Some(loc) => Location::at(path, loc.line(), loc.column()),
            None => Location::file(path),
        };
        // libyaml ends some messages with where the construct began ("..., while scanning a
        // quoted scalar at line 3 column 11"): that is where the fix goes.
        if full.contains(", while ")
            && let Some((_, tail)) = full.rsplit_once(" at line ")
            && let Some((line, column)) = tail.split_once(" column ")
            && let (Ok(line), Ok(column)) = (line.parse::<usize>(), column.parse::<usize>())
        {
            location = Location::at(path, line, column);
            message.push_str(" that starts here");
        }
        // serde points a duplicate at the start of its mapping; point at the duplicate itself.
        if let Some(field) = message.split('`').nth(1).filter(|_| message.contains("duplicate field"))
            && let Some((line, column)) = key_lines(&text, field).get(1)
        {
            location = Location::at(path, *line, *column);
        }
        let tab = location
            .position
            .and_then(|(line, _)| text.lines().nth(line.saturating_sub(1)))
            .is_some_and(|l| l.contains('\t'));
        let hint = if tab {
            "YAML does not allow tabs for indentation: indent with spaces"
        } else {
            "see docs/profile-yaml.md for the fields cloud-secrets reads (target, cloud.tenant_id, secrets.*)"
        };
        Error::input(location, format!("invalid profile.yaml: {message}"), hint)
    })?;
    if let Some(t) = settings.secrets.mass_removal_threshold
        && !(0.0..=1.0).contains(&t)
    {
        return Err(Error::input(
            locate(path, "mass_removal_threshold"),
            "secrets.mass_removal_threshold must be between 0 and 1",
            "give the share of managed variables a plan may remove, for example 0.5",
        ));
    }
    Ok(settings)
}

/// serde_yaml's message without its position suffix and without the offending value, which
/// could be anything the user typed: "invalid type: string \"x\", expected ..." keeps only the
/// kind of mistake and what was expected.
fn safe_yaml_message(message: &str) -> String {
    // Only the trailing position goes (it is in the location); libyaml's own context, such as
    // "while scanning a quoted scalar at line 3 column 11", stays.
    let message = match message.rsplit_once(" at line ") {
        Some((head, tail)) if tail.split(" column ").all(|n| n.parse::<usize>().is_ok()) => head,
        _ => message,
    };
    for prefix in ["invalid type: ", "unknown variant ", "invalid value: ", "invalid length "] {
        if let Some(start) = message.find(prefix)
            && let Some(expected) = message[start..].find(", expected ")
        {
            let kind = prefix.trim_end().trim_end_matches(':');
            return format!("{}{kind}{}", &message[..start], &message[start + expected..]);
        }
    }
    message.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_paths_are_recognised_as_the_brief_says() {
        for arg in ["./p", "a/b", "~/p", ".p", "p.yaml", "p.yml"] {
            assert!(is_profile_path(arg), "{arg}");
        }
        for arg in ["production", "local-dev", "p_yaml"] {
            assert!(!is_profile_path(arg), "{arg}");
        }
    }

    #[test]
    fn profile_yaml_fields() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("profile.yaml");
        std::fs::write(
            &path,
            "name: prod\ntarget: cloud\ncloud:\n  tenant_id: t-1\nsecrets:\n  validation: strict\n  remote: file:store.json\n",
        )
        .unwrap();
        let s = load_settings(&path).unwrap();
        assert_eq!(s.target, Some(Target::Cloud));
        assert_eq!(s.cloud.tenant_id.as_deref(), Some("t-1"));
        assert_eq!(s.secrets.remote.as_deref(), Some("file:store.json"));
    }

    #[test]
    fn bad_profile_yaml_points_at_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("profile.yaml");
        std::fs::write(&path, "target: cloud\ntarget: moon\n").unwrap();
        let e = load_settings(&path).unwrap_err().to_string();
        assert!(e.contains("profile.yaml:2:1: invalid profile.yaml: duplicate field `target`"), "{e}");
        std::fs::write(&path, "target: moon\n").unwrap();
        let e = load_settings(&path).unwrap_err().to_string();
        assert!(
            e.contains(
                "profile.yaml:1:9: invalid profile.yaml: target: unknown variant, expected `local` or `cloud`"
            ),
            "{e}"
        );
        std::fs::write(&path, "secrets: CANARY-s\n").unwrap();
        let e = load_settings(&path).unwrap_err().to_string();
        assert!(e.contains("invalid profile.yaml: secrets: invalid type, expected struct"), "{e}");
        std::fs::write(&path, "secrets:\n  validation: CANARY-v\n").unwrap();
        let e = load_settings(&path).unwrap_err().to_string();
        assert!(!e.contains("CANARY"), "{e}");
        std::fs::write(&path, "secrets:\n  mass_removal_threshold: 2\n").unwrap();
        assert!(load_settings(&path).unwrap_err().to_string().contains("between 0 and 1"));
    }
}
