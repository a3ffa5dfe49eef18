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
    /// The parsed profile.yaml, or the defaults when there is none.
    pub settings: ProfileSettings,
}

impl Profile {
    /// The profile's secrets.json.
    pub fn secrets_path(&self) -> PathBuf {
        self.dir.join("secrets.json")
    }

    /// The profile's profile.yaml.
    pub fn yaml_path(&self) -> PathBuf {
        self.dir.join("profile.yaml")
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
    /// How validation findings are treated: `strict`, `warn` (default) or `skip`.
    pub validation: Option<String>,
    /// Where the desired state comes from: `file` (default) or `env`.
    pub source: Option<String>,
    /// The remote, such as `file:store.json` (relative to the profile directory).
    pub remote: Option<String>,
}

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
    let mut names: Vec<String> = read
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.path().is_dir())
        .filter_map(|entry| entry.file_name().to_str().map(str::to_owned))
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
    let (arg, origin) = match (flag, env.filter(|s| !s.is_empty())) {
        (Some(arg), _) => (Some(arg), ProfileOrigin::Flag),
        (None, Some(arg)) => (Some(arg), ProfileOrigin::Environment),
        (None, None) => (None, ProfileOrigin::OnlyOne),
    };
    let dir = match arg {
        Some(arg) if is_profile_path(arg) => profile_dir_from_path(cwd, arg, home)?,
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
                [only] => root.join(PROJECT_DIR).join("profiles").join(only),
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
    let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("profile").to_owned();
    let settings = load_settings(&dir.join("profile.yaml"))?;
    Ok((Profile { name, dir, settings }, origin))
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

fn profile_dir_from_path(cwd: &Path, arg: &str, home: Option<&Path>) -> Result<PathBuf> {
    let path = match (arg.strip_prefix("~/").or(if arg == "~" { Some("") } else { None }), home) {
        (Some(rest), Some(home)) => home.join(rest),
        _ => cwd.join(arg),
    };
    let dir = if arg.ends_with(".yaml") || arg.ends_with(".yml") {
        path.parent().map(Path::to_path_buf).unwrap_or_else(|| cwd.to_path_buf())
    } else {
        path.clone()
    };
    if !dir.is_dir() || ((arg.ends_with(".yaml") || arg.ends_with(".yml")) && !path.is_file()) {
        return Err(Error::config(
            format!("profile path {} does not exist", display_path(&path)),
            "pass a profile name, or the path of a profile directory or its profile.yaml",
        ));
    }
    Ok(dir)
}

/// Reads profile.yaml; a missing file means every default.
pub fn load_settings(path: &Path) -> Result<ProfileSettings> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ProfileSettings::default()),
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            return Err(Error::input(
                Location::file(path),
                "the file is not valid UTF-8",
                "save it as UTF-8",
            ));
        }
        Err(e) => return Err(Error::io("read", path, e)),
    };
    if text.trim().is_empty() {
        return Ok(ProfileSettings::default());
    }
    serde_yaml_ng::from_str(&text).map_err(|e| {
        let message = e.to_string();
        let message = message.rsplit_once(" at line ").map_or(message.as_str(), |(m, _)| m).to_owned();
        let location = match e.location() {
            Some(loc) => Location::at(path, loc.line(), loc.column()),
            None => Location::file(path),
        };
        Error::input(
            location,
            format!("invalid profile.yaml: {message}"),
            "see docs/profile-yaml.md for the fields cloud-secrets reads (target, cloud.tenant_id, secrets.*)",
        )
    })
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
        assert!(e.contains("profile.yaml:1:1: invalid profile.yaml: duplicate field `target`"), "{e}");
        std::fs::write(&path, "target: moon\n").unwrap();
        let e = load_settings(&path).unwrap_err().to_string();
        assert!(e.contains("profile.yaml:1:9: invalid profile.yaml: target: unknown variant `moon`"), "{e}");
    }
}
