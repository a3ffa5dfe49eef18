//! Finding the project and its profile on disk, and reading the profile's `profile.yaml` exactly
//! as the platform reads it: the project root, the profile (either layout), the fields
//! cloud-secrets reads, and where the secrets file is. profile.yaml is the platform's file:
//! nothing here writes it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Location, Result, display_path};
use crate::secret::SecretValue;

/// The directory whose presence marks a project root.
pub const PROJECT_DIR: &str = ".systemprompt";

/// What must stand beside `.systemprompt/` for a directory to be a project root.
const ROOT_MARKERS: [&str; 3] = ["Cargo.toml", "services", "storage"];

/// The suffix of a profile file in the flat layout of platform versions up to 0.13.
pub const FLAT_SUFFIX: &str = ".profile.yaml";

/// How a profile is laid out on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `.systemprompt/profiles/<name>/profile.yaml`: the profile has a folder of its own.
    Folder,
    /// `.systemprompt/profiles/<name>.profile.yaml` (platform versions up to 0.13), or a YAML file
    /// named by `--profile PATH`: several profiles may share its folder.
    Flat,
}

/// A profile found in a project: its name and its profile.yaml.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileRef {
    /// The profile's name.
    pub name: String,
    /// Its profile.yaml.
    pub yaml: PathBuf,
    /// How it is laid out.
    pub layout: Layout,
}

/// A selected profile.
#[derive(Debug, Clone)]
pub struct Profile {
    /// The profile's name.
    pub name: String,
    /// The folder holding profile.yaml, against which its relative paths are resolved.
    pub dir: PathBuf,
    /// The profile's profile.yaml.
    pub yaml: PathBuf,
    /// How it is laid out.
    pub layout: Layout,
    /// The fields of profile.yaml that cloud-secrets reads.
    pub settings: ProfileSettings,
    /// The secrets file: `secrets.secrets_path`, resolved; `secrets.json` beside profile.yaml
    /// when the profile has no `secrets:`.
    pub secrets_file: PathBuf,
    /// How the secrets file is named in messages, when `secrets_path` is built with `${VAR}`:
    /// as written, since a value substituted from the environment may be anything (a token).
    pub secrets_shown: Option<String>,
    /// Remarks about profile.yaml (fields the platform rejects), to show as warnings.
    pub warnings: Vec<String>,
}

impl Profile {
    /// The profile's secrets file.
    pub fn secrets_path(&self) -> PathBuf {
        self.secrets_file.clone()
    }

    /// The secrets file as messages name it.
    pub fn secrets_display(&self) -> String {
        self.secrets_shown.clone().unwrap_or_else(|| display_path(&self.secrets_file))
    }

    /// `error` with the secrets file named as [`Profile::secrets_display`] does.
    pub fn shown(&self, error: Error) -> Error {
        match &self.secrets_shown {
            Some(shown) => error.showing(&self.secrets_file, shown),
            None => error,
        }
    }

    /// A file cloud-secrets keeps for this profile (records, plan key, locks): inside the
    /// profile's folder, or, in the flat layout, beside profile.yaml with the profile's name in
    /// front (`production.last-applied.json`).
    pub fn state_file(&self, file: &str) -> PathBuf {
        match self.layout {
            Layout::Folder => self.dir.join(file),
            Layout::Flat => self.dir.join(format!("{}.{file}", self.name)),
        }
    }
}

/// How a profile was chosen, for `-v` output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileOrigin {
    /// `--profile`.
    Flag,
    /// `SYSTEMPROMPT_PROFILE`.
    Environment,
    /// `active_profile_name` in `.systemprompt/sessions/index.json`.
    Session,
    /// The only profile in the project.
    OnlyOne,
}

/// The fields of `profile.yaml` cloud-secrets reads. The platform requires many more; they are
/// left alone, and nothing is ever written here.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ProfileSettings {
    /// `local` or `cloud` (default `local`).
    pub target: Option<Target>,
    /// `cloud:`; may be null.
    pub cloud: Option<CloudSettings>,
    /// `secrets:`; may be null.
    pub secrets: Option<SecretsSettings>,
}

impl ProfileSettings {
    /// `cloud.tenant_id`, if set.
    pub fn tenant_id(&self) -> Option<&str> {
        self.cloud.as_ref().and_then(|c| c.tenant_id.as_deref())
    }

    /// `secrets.source` (the platform's default when absent: `file`).
    pub fn source(&self) -> SourceKind {
        self.secrets.as_ref().and_then(|s| s.source).unwrap_or_default()
    }
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
    /// The tenant whose secrets the profile manages; may be null.
    pub tenant_id: Option<String>,
    /// The platform's `cloud.validation` (default strict); read so that it is accepted, not used.
    pub validation: Option<Validation>,
    /// Fields the platform does not define (it rejects them).
    #[serde(flatten)]
    pub unknown: BTreeMap<String, serde_yaml_ng::Value>,
}

/// `secrets:` in profile.yaml.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SecretsSettings {
    /// Where the secrets file is, relative to the folder holding profile.yaml (`~/` expanded).
    pub secrets_path: Option<String>,
    /// The platform's `secrets.validation` (how it reports a secrets file it cannot load).
    pub validation: Option<Validation>,
    /// Where the platform's runtime reads its secrets when it runs.
    pub source: Option<SourceKind>,
    /// Earlier versions of cloud-secrets read their remote here; now in cloud-secrets.yaml.
    pub remote: Option<String>,
    /// Earlier versions' `mass_removal_threshold`; now in cloud-secrets.yaml.
    pub mass_removal_threshold: Option<f64>,
    /// Earlier versions' `ignore`; now in cloud-secrets.yaml.
    pub ignore: Option<Vec<String>>,
    /// Fields the platform does not define (it rejects them).
    #[serde(flatten)]
    pub unknown: BTreeMap<String, serde_yaml_ng::Value>,
}

impl SecretsSettings {
    /// Whether any field of earlier cloud-secrets versions is set.
    pub fn has_legacy_fields(&self) -> bool {
        self.remote.is_some() || self.mass_removal_threshold.is_some() || self.ignore.is_some()
    }
}

/// A `validation:` mode: `strict`, `warn` or `skip`.
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
    /// The runtime reads the secrets file.
    #[default]
    File,
    /// In its container the runtime reads the environment; anywhere else the file first.
    Env,
}

/// The default share of managed variables a plan may remove before apply refuses it.
pub const DEFAULT_MASS_REMOVAL_THRESHOLD: f64 = 0.5;

/// The largest profile.yaml read.
pub const MAX_YAML_BYTES: u64 = 256 * 1024;

/// The project root: the nearest directory at or above `start` that holds `.systemprompt/` and
/// also `Cargo.toml`, `services/` or `storage/`.
pub fn find_root(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .find(|dir| {
            // As the platform checks: Cargo.toml exists; services and storage are directories.
            dir.join(PROJECT_DIR).is_dir()
                && ROOT_MARKERS
                    .iter()
                    .any(|m| if *m == "Cargo.toml" { dir.join(m).exists() } else { dir.join(m).is_dir() })
        })
        .map(Path::to_path_buf)
}

/// The profiles of a project, sorted by name: every folder under `.systemprompt/profiles/` that
/// holds a profile.yaml, and every `<name>.profile.yaml` there (the flat layout). A folder
/// without profile.yaml is not a profile; a name in both layouts is the folder's.
pub fn list_profiles(root: &Path) -> Result<Vec<ProfileRef>> {
    let dir = root.join(PROJECT_DIR).join("profiles");
    let read = match std::fs::read_dir(&dir) {
        Ok(read) => read,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("list", &dir, e)),
    };
    let mut found: BTreeMap<String, ProfileRef> = BTreeMap::new();
    for entry in read.filter_map(|entry| entry.ok()) {
        let path = entry.path();
        // Names that are not UTF-8 are listed lossily rather than dropped, so that a project with
        // two profiles is never mistaken for one with only one.
        let file_name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            // Anything named profile.yaml makes a profile; reading it says what is wrong with it.
            let yaml = path.join("profile.yaml");
            if yaml.symlink_metadata().is_ok() {
                let profile = ProfileRef { name: file_name.clone(), yaml, layout: Layout::Folder };
                found.insert(file_name, profile);
            }
        } else if let Some(name) = file_name.strip_suffix(FLAT_SUFFIX).filter(|n| !n.is_empty())
            && path.is_file()
            && !found.get(name).is_some_and(|p| p.layout == Layout::Folder)
        {
            found.insert(
                name.to_owned(),
                ProfileRef { name: name.to_owned(), yaml: path, layout: Layout::Flat },
            );
        }
    }
    Ok(found.into_values().collect())
}

/// Whether a `--profile` argument names a path rather than a profile.
pub fn is_profile_path(arg: &str) -> bool {
    arg.contains('/')
        || arg.starts_with('.')
        || arg.starts_with('~')
        || arg.ends_with(".yaml")
        || arg.ends_with(".yml")
}

/// What selecting a profile needs from the environment.
#[derive(Debug, Clone, Copy)]
pub struct Selection<'a> {
    /// `--profile`.
    pub flag: Option<&'a str>,
    /// `SYSTEMPROMPT_PROFILE`.
    pub env: Option<&'a str>,
    /// `HOME`, for `~`.
    pub home: Option<&'a Path>,
    /// The process environment, for `${VAR}` in profile.yaml.
    pub vars: &'a BTreeMap<String, SecretValue>,
}

/// Chooses the profile: `--profile` > `SYSTEMPROMPT_PROFILE` > the session's active profile >
/// the only profile; then reads its profile.yaml.
pub fn select_profile(cwd: &Path, selection: Selection<'_>) -> Result<(Profile, ProfileOrigin)> {
    let (found, origin) = choose(cwd, selection)?;
    Ok((load_profile(found, selection)?, origin))
}

/// Which profile the selection names, without reading it.
pub fn choose(cwd: &Path, selection: Selection<'_>) -> Result<(ProfileRef, ProfileOrigin)> {
    if selection.flag == Some("") {
        return Err(Error::usage(
            "--profile needs a profile name or path",
            "for example --profile production",
        ));
    }
    let (arg, origin) = match (selection.flag, selection.env.filter(|s| !s.is_empty())) {
        (Some(arg), _) => (Some(arg), ProfileOrigin::Flag),
        (None, Some(arg)) => (Some(arg), ProfileOrigin::Environment),
        (None, None) => (None, ProfileOrigin::OnlyOne),
    };
    if let Some(arg) = arg.filter(|a| is_profile_path(a)) {
        return Ok((profile_from_path(cwd, arg, selection.home)?, origin));
    }
    let root = require_root(cwd)?;
    let profiles = list_profiles(&root)?;
    let profiles_dir = root.join(PROJECT_DIR).join("profiles");
    if let Some(name) = arg {
        return match profiles.iter().find(|p| p.name == name) {
            Some(found) => Ok((found.clone(), origin)),
            None => Err(Error::config(
                format!("no profile named `{}` in {}", name.escape_debug(), display_path(&profiles_dir)),
                available(&profiles),
            )),
        };
    }
    if let Some((name, index)) = active_profile(&root)? {
        return match profiles.iter().find(|p| p.name == name) {
            Some(found) => Ok((found.clone(), ProfileOrigin::Session)),
            None => Err(Error::input(
                index,
                format!(
                    "the active profile `{}` has no profile.yaml in {}",
                    name.escape_debug(),
                    display_path(&profiles_dir)
                ),
                format!("{}; or switch profiles with the platform's CLI", available(&profiles)),
            )),
        };
    }
    match profiles.as_slice() {
        [only] if !only.name.contains('\u{fffd}') => Ok((only.clone(), ProfileOrigin::OnlyOne)),
        [only] => Err(Error::config(
            format!("the only profile's name, {:?}, is not valid UTF-8", only.name),
            "rename the profile",
        )),
        [] => Err(Error::config(
            format!("the project has no profiles: no profile.yaml under {}", display_path(&profiles_dir)),
            "create one with cloud-secrets init (or the platform's CLI)",
        )),
        _ => Err(Error::config(
            format!(
                "the project has {} profiles ({}) and no active one; which one?",
                profiles.len(),
                profiles.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", ")
            ),
            "use --profile NAME, or set SYSTEMPROMPT_PROFILE",
        )),
    }
}

/// `active_profile_name` of `.systemprompt/sessions/index.json`, with where it is written.
fn active_profile(root: &Path) -> Result<Option<(String, Location)>> {
    #[derive(Deserialize)]
    struct Index {
        active_profile_name: Option<String>,
    }
    let path = root.join(PROJECT_DIR).join("sessions").join("index.json");
    let Some(bytes) = crate::files::read_limited(&path, 4 * 1024 * 1024, "index.json")? else {
        return Ok(None);
    };
    let index: Index = serde_json::from_slice(&bytes).map_err(|e| {
        Error::input(
            Location::at(&path, e.line().max(1), e.column().max(1)),
            format!("the session index cannot be read: {}", crate::secrets_file::safe_json_message(&e)),
            "pass --profile NAME, or log in again with the platform's CLI to rewrite it",
        )
    })?;
    let location = match key_lines(&String::from_utf8_lossy(&bytes), "\"active_profile_name\"").first() {
        Some((line, column)) => Location::at(&path, *line, *column),
        None => Location::file(&path),
    };
    Ok(index.active_profile_name.filter(|n| !n.is_empty()).map(|n| (n, location)))
}

fn available(profiles: &[ProfileRef]) -> String {
    if profiles.is_empty() {
        "the project has no profiles; create one with cloud-secrets init".to_owned()
    } else {
        let names: Vec<&str> = profiles.iter().map(|p| p.name.as_str()).collect();
        format!("available profiles: {}; use --profile NAME", names.join(", "))
    }
}

/// The project root at or above `cwd`, or an error saying there is none.
pub fn require_root(cwd: &Path) -> Result<PathBuf> {
    find_root(cwd).ok_or_else(|| {
        Error::config(
            format!(
                "no systemprompt project in {} or any parent directory (a project root holds {PROJECT_DIR}/ \
                 and one of Cargo.toml, services/ or storage/)",
                display_path(cwd)
            ),
            "run cloud-secrets inside a systemprompt project, or pass --profile PATH to a profile.yaml",
        )
    })
}

/// The profile a path names: a profile's folder (holding profile.yaml) or a YAML file.
fn profile_from_path(cwd: &Path, arg: &str, home: Option<&Path>) -> Result<ProfileRef> {
    let path = expand_home(arg, home).unwrap_or_else(|| cwd.join(arg));
    let names_yaml = arg.ends_with(".yaml") || arg.ends_with(".yml");
    if names_yaml {
        if path.symlink_metadata().is_err() {
            return Err(Error::config(
                format!("profile path {} does not exist", display_path(&path)),
                "pass a profile name, or the path of a profile's folder or of its profile.yaml",
            ));
        }
        let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if file_name == "profile.yaml" {
            let name = path
                .parent()
                .and_then(Path::file_name)
                .map_or_else(|| "profile".to_owned(), |n| n.to_string_lossy().into_owned());
            return Ok(ProfileRef { name, yaml: path, layout: Layout::Folder });
        }
        let name = file_name
            .strip_suffix(FLAT_SUFFIX)
            .or_else(|| file_name.strip_suffix(".yaml"))
            .or_else(|| file_name.strip_suffix(".yml"))
            .unwrap_or(&file_name)
            .to_owned();
        return Ok(ProfileRef { name, yaml: path, layout: Layout::Flat });
    }
    if !path.is_dir() {
        return Err(Error::config(
            format!("profile path {} does not exist", display_path(&path)),
            "pass a profile name, or the path of a profile's folder or of its profile.yaml",
        ));
    }
    let yaml = path.join("profile.yaml");
    if yaml.symlink_metadata().is_err() {
        return Err(Error::config(
            format!("{} is not a profile: it holds no profile.yaml", display_path(&path)),
            "pass the folder of a profile (it holds profile.yaml), or the path of a profile's YAML file",
        ));
    }
    let name = std::fs::canonicalize(&path)
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "profile".to_owned());
    Ok(ProfileRef { name, yaml, layout: Layout::Folder })
}

/// `~/rest` (or `~`) against `home`; `None` when `text` does not start so or there is no home.
pub fn expand_home(text: &str, home: Option<&Path>) -> Option<PathBuf> {
    let rest = text.strip_prefix("~/").or(if text == "~" { Some("") } else { None })?;
    home.map(|home| home.join(rest))
}

/// Reads a profile's profile.yaml and resolves its secrets file.
pub fn load_profile(found: ProfileRef, selection: Selection<'_>) -> Result<Profile> {
    let ProfileRef { name, yaml, layout } = found;
    let dir = yaml.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let bytes = read_yaml(&yaml)?;
    // The text as written, for what `${VAR}` must not show.
    let written = String::from_utf8_lossy(&bytes).into_owned();
    let settings = parse_settings(&yaml, bytes, selection.vars)?;
    let mut warnings = Vec::new();
    let secrets_file = match settings.secrets.as_ref().and_then(|s| s.secrets_path.as_deref()) {
        Some(text) if text.trim().is_empty() => {
            return Err(Error::input(
                locate(&yaml, "secrets_path"),
                "secrets.secrets_path is empty",
                "give the path of the profile's secrets file, such as ./secrets.json",
            ));
        }
        // `./secrets.json` is shown as `secrets.json`: `.` segments are dropped (`..` are kept:
        // resolving them is the file system's business, through symlinks).
        Some(text) if text.contains("${") => {
            return Err(Error::input(
                locate(&yaml, "secrets_path"),
                "secrets.secrets_path holds a `${VAR}` that is not set in the environment and has no default, or \
                 that names a credential or a secret (never substituted into what cloud-secrets reads)",
                "set the variable, or write a default as in `${VAR:-./secrets.json}`",
            ));
        }
        Some(text) => tidy(&match expand_home(text, selection.home) {
            Some(path) => path,
            None => dir.join(text),
        }),
        // Flat profiles share their folder: a secrets.json there would be every one's.
        None if layout == Layout::Flat => {
            return Err(Error::input(
                Location::file(&yaml),
                "a profile kept as a single YAML file must name its secrets file (secrets.secrets_path)",
                "add `secrets: {secrets_path: ../secrets/<name>.secrets.json, source: file}`, as the platform wrote it",
            ));
        }
        None => dir.join("secrets.json"),
    };
    let secrets_shown = secrets_path_as_written(&written).filter(|raw| raw.contains("${")).map(|raw| {
        let joined = if Path::new(&raw).is_absolute() || raw.starts_with('~') {
            PathBuf::from(&raw)
        } else {
            dir.join(&raw)
        };
        format!("{} (secrets.secrets_path as written)", display_path(&joined))
    });
    if let Some(secrets) = &settings.secrets {
        let mut missing = Vec::new();
        if secrets.secrets_path.is_none() {
            missing.push("secrets_path");
        }
        if secrets.source.is_none() {
            missing.push("source");
        }
        if !missing.is_empty() {
            warnings.push(format!(
                "{}: the platform requires secrets.{} in a profile's `secrets:`; it will not load this profile \
                 (add, for example, `secrets_path: ./secrets.json` and `source: file`)",
                display_path(&yaml),
                missing.join(" and secrets.")
            ));
        }
        for field in secrets.unknown.keys().map(|f| shown_field(f)) {
            warnings.push(format!(
                "{}: `secrets.{field}` is not a field the platform defines; it rejects the profile as it is \
                 (cloud-secrets ignores the field)",
                locate(&yaml, &field)
            ));
        }
    }
    for field in settings.cloud.iter().flat_map(|c| c.unknown.keys()).map(|f| shown_field(f)) {
        warnings.push(format!(
            "{}: `cloud.{field}` is not a field the platform defines; it rejects the profile as it is \
             (cloud-secrets ignores the field)",
            locate(&yaml, &field)
        ));
    }
    Ok(Profile { name, dir, yaml, layout, settings, secrets_file, secrets_shown, warnings })
}

/// `path` without `.` segments, and without `..` segments where removing them names the same
/// file (no symlink in the way), so that messages show `.systemprompt/secrets/x.json` rather than
/// `.systemprompt/profiles/p/../../secrets/x.json`.
pub fn tidy(path: &Path) -> PathBuf {
    let plain: PathBuf = path.components().collect();
    let mut lexical = PathBuf::new();
    for component in plain.components() {
        match component {
            std::path::Component::ParentDir
                if matches!(lexical.components().next_back(), Some(std::path::Component::Normal(_))) =>
            {
                lexical.pop();
            }
            other => lexical.push(other),
        }
    }
    let same = |a: &Path, b: &Path| match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    let same_folder = plain.file_name() == lexical.file_name()
        && matches!((plain.parent(), lexical.parent()), (Some(a), Some(b)) if same(a, b));
    if same(&plain, &lexical) || same_folder { lexical } else { plain }
}

/// `secrets.secrets_path` as written in profile.yaml, before substitution.
fn secrets_path_as_written(text: &str) -> Option<String> {
    let (line, _) = *key_lines(text, "secrets_path").first()?;
    let value = text.lines().nth(line - 1)?.split_once(':')?.1.trim();
    let value = value.split(" #").next().unwrap_or(value).trim();
    Some(value.trim_matches(|c| c == '"' || c == '\'').to_owned())
}

/// A field name as shown in a warning: only a plain name is (`${VAR}` may have put anything from
/// the environment there).
fn shown_field(field: &str) -> String {
    if !field.is_empty() && field.len() <= 64 && field.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        field.to_owned()
    } else {
        "<a field that is not a plain name>".to_owned()
    }
}

/// Substitutes `${VAR}` and `${VAR:-default}` in profile.yaml's text as the platform does, before
/// parsing: a variable that is set and not empty gives its value; otherwise the default, if one
/// is written; otherwise the text is left as it is. One pass; a name is any run of characters
/// other than `}` and `:`; a default ends at the first `}` on its line.
pub fn substitute(text: &str, vars: &BTreeMap<String, SecretValue>) -> String {
    substitute_noting(text, vars).0
}

/// [`substitute`], and the names of the placeholders it left as written (from the file's own
/// text, never from a substituted value).
fn substitute_noting(text: &str, vars: &BTreeMap<String, SecretValue>) -> (String, Vec<String>) {
    let mut out = String::with_capacity(text.len());
    let mut unresolved = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match placeholder(after) {
            Some((name, default, len)) => {
                // A credential or a secret's value is never put into the fields cloud-secrets reads
                // (where a message or a remote's name could show it): such a variable counts as
                // unset here.
                let value = vars.get(name).filter(|v| !v.is_empty() && !holds_a_secret(name));
                match (value, default) {
                    (Some(value), _) => out.push_str(value.expose()),
                    (None, Some(default)) => out.push_str(default),
                    (None, None) => {
                        out.push_str(&rest[start..start + 2 + len]);
                        unresolved.push(name.escape_debug().to_string());
                    }
                }
                rest = &after[len..];
            }
            None => {
                out.push('$');
                rest = &rest[start + 1..];
            }
        }
    }
    out.push_str(rest);
    (out, unresolved)
}

/// Whether an environment variable is one that holds a credential or a secret's value: the API
/// and store tokens, the plan key, AWS keys, every variable the runtime reads a secret from, and
/// any name that says token, secret, password, pepper or key.
fn holds_a_secret(name: &str) -> bool {
    const CREDENTIALS: [&str; 6] = [
        "SYSTEMPROMPT_API_TOKEN",
        "VAULT_TOKEN",
        "BAO_TOKEN",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        crate::saved::PLAN_KEY_VAR,
    ];
    let upper = name.to_ascii_uppercase();
    let runtime = crate::policy::KNOWN_KEYS.iter().any(|key| {
        let names = crate::policy::key_names(key);
        names.runtime == upper || names.deploy == upper || names.also_read.contains(&upper.as_str())
    });
    CREDENTIALS.contains(&upper.as_str())
        || runtime
        || ["TOKEN", "SECRET", "PASSWORD", "PEPPER", "DATABASE_URL"].iter().any(|w| upper.contains(w))
        || upper.ends_with("_KEY")
}

/// The name, default and length (up to and including `}`) of a placeholder whose `${` was just
/// read; `None` when the text there is not one.
fn placeholder(after: &str) -> Option<(&str, Option<&str>, usize)> {
    let name_len = after.find(['}', ':'])?;
    if name_len == 0 {
        return None;
    }
    let name = &after[..name_len];
    let tail = &after[name_len..];
    if tail.starts_with('}') {
        return Some((name, None, name_len + 1));
    }
    let default_text = tail.strip_prefix(":-")?;
    let end = default_text.find(['}', '\n'])?;
    if default_text[end..].starts_with('\n') {
        return None;
    }
    Some((name, Some(&default_text[..end]), name_len + 2 + end + 1))
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

/// Reads profile.yaml, substituting `${VAR}` from `vars` as the platform does.
pub fn load_settings(path: &Path, vars: &BTreeMap<String, SecretValue>) -> Result<ProfileSettings> {
    parse_settings(path, read_yaml(path)?, vars)
}

/// The bytes of profile.yaml; a missing file is an error.
fn read_yaml(path: &Path) -> Result<Vec<u8>> {
    crate::files::read_limited(path, MAX_YAML_BYTES, "profile.yaml")?.ok_or_else(|| {
        Error::config(
            format!("{} does not exist", display_path(path)),
            "a profile is a folder holding profile.yaml; create one with cloud-secrets init",
        )
    })
}

/// Parses the bytes of a profile.yaml named `path` (the path is used in messages only).
pub fn parse_settings(
    path: &Path,
    bytes: Vec<u8>,
    vars: &BTreeMap<String, SecretValue>,
) -> Result<ProfileSettings> {
    let text = String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        let bytes = e.as_bytes();
        let (line, column) =
            crate::secrets_file::line_column(&String::from_utf8_lossy(&bytes[..valid]), valid);
        Error::input(Location::at(path, line, column), "the file is not valid UTF-8", "save it as UTF-8")
    })?;
    let (text, unresolved) = substitute_noting(&text, vars);
    if text.trim().is_empty() {
        return Ok(ProfileSettings::default());
    }
    // YAML's `null` (or `~`) for the whole document is a profile with no fields set.
    let settings: Option<ProfileSettings> = serde_yaml_ng::from_str(&text).map_err(|e| {
        yaml_error(
            path,
            (&text, &unresolved),
            &e,
            "profile.yaml",
            "see docs/profile-yaml.md for the fields cloud-secrets reads (target, cloud, secrets)",
        )
    })?;
    Ok(settings.unwrap_or_default())
}

/// A YAML parse error of `path` (whose text, after substitution, is `text`) at the line and
/// column where the fix goes, without the value found there, with a hint: about tabs, about a
/// `${VAR}` left as written, or `hint`.
pub fn yaml_error(
    path: &Path,
    (text, unresolved): (&str, &[String]),
    e: &serde_yaml_ng::Error,
    what: &str,
    hint: &str,
) -> Error {
    let full = e.to_string();
    let mut message = safe_yaml_message(&full);
    let mut location = match e.location() {
        Some(loc) => Location::at(path, loc.line(), loc.column()),
        None => Location::file(path),
    };
    // libyaml ends some messages with where the construct began ("..., while scanning a quoted
    // scalar at line 3 column 11"): that is where the fix goes.
    if full.contains(", while ")
        && let Some((_, tail)) = full.rsplit_once(" at line ")
        && let Some((line, column)) = tail.split_once(" column ")
        && let (Ok(line), Ok(column)) = (line.parse::<usize>(), column.parse::<usize>())
    {
        location = Location::at(path, line, column);
        message = match message.split_once(", while ") {
            Some((head, context)) => {
                let head = head.rsplit_once(" at line ").map_or(head, |(h, _)| h);
                let context = context.rsplit_once(" at line ").map_or(context, |(c, _)| c);
                format!("{head}, while {context} that starts here")
            }
            None => format!("{message} that starts here"),
        };
    }
    // serde points a duplicate at the start of its mapping; point at the duplicate itself.
    if let Some(field) = message.split('`').nth(1).filter(|_| message.contains("duplicate field"))
        && let Some((line, column)) = key_lines(text, field).get(1)
    {
        location = Location::at(path, *line, *column);
    }
    let message = strip_positions(&message);
    let line = location.position.and_then(|(line, _)| text.lines().nth(line.saturating_sub(1)));
    let hint = if line.is_some_and(|l| l.contains('\t')) || (message.contains("tab") && text.contains('\t')) {
        "YAML does not allow tabs for indentation: indent with spaces".to_owned()
    } else if let Some(name) =
        unresolved.iter().find(|n| line.is_some_and(|l| l.contains(&format!("${{{n}"))))
    {
        format!(
            "`${{{name}}}` was left as written because {name} is not set in the environment: set it, or write a \
             default as in `${{{name}:-value}}`"
        )
    } else {
        hint.to_owned()
    };
    Error::input(location, format!("invalid {what}: {message}"), hint)
}

/// `message` without any " at line N column M" in it: the location says where.
fn strip_positions(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find(" at line ") {
        let tail = &rest[at + 9..];
        let digits = |t: &str| t.chars().take_while(char::is_ascii_digit).count();
        let line_len = digits(tail);
        let column = tail[line_len..].strip_prefix(" column ").filter(|_| line_len > 0);
        match column.map(|c| (c, digits(c))) {
            Some((column, column_len)) if column_len > 0 => {
                out.push_str(&rest[..at]);
                rest = &column[column_len..];
            }
            _ => {
                out.push_str(&rest[..at + 9]);
                rest = tail;
            }
        }
    }
    out.push_str(rest);
    out
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
            // The last one: a value (substituted from the environment, say) may hold the words.
            && let Some(expected) = message[start..].rfind(", expected ")
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

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, SecretValue> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), SecretValue::new(*v))).collect()
    }

    fn load(path: &Path) -> Result<ProfileSettings> {
        load_settings(path, &BTreeMap::new())
    }

    #[test]
    fn substitution_follows_the_platform() {
        let env = vars(&[("SET", "val"), ("EMPTY", ""), ("URL", "http://x:8080/y")]);
        for (input, output) in [
            ("${SET}", "val"),
            ("${UNSET}", "${UNSET}"),
            ("${EMPTY}", "${EMPTY}"),
            ("${UNSET:-dflt}", "dflt"),
            ("${EMPTY:-dflt}", "dflt"),
            ("${UNSET:-}", ""),
            ("${UNSET-dflt}", "${UNSET-dflt}"),
            ("${UNSET:=dflt}", "${UNSET:=dflt}"),
            ("$SET", "$SET"),
            ("$${SET}", "$val"),
            ("${UNSET:-${SET}}", "${SET}"),
            ("${UNSET:-a}b}", "ab}"),
            ("${UNSET:-http://x:8080/y}", "http://x:8080/y"),
            ("a ${SET} b ${URL} c", "a val b http://x:8080/y c"),
            ("${}", "${}"),
            ("${UNSET:-a\nb}", "${UNSET:-a\nb}"),
            ("tail ${", "tail ${"),
        ] {
            assert_eq!(substitute(input, &env), output, "{input:?}");
        }
    }

    #[test]
    fn values_substituted_from_the_environment_never_reach_a_message() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("profile.yaml");
        let env = vars(&[("T", "x, expected CANARY-1 ${CANARYPART} y"), ("F", "CANARY-field")]);
        std::fs::write(&path, "target: ${T}\n").unwrap();
        let e = load_settings(&path, &env).unwrap_err();
        let text = format!("{e} {}", e.hint().unwrap_or_default());
        assert!(!text.contains("CANARY"), "{text}");
        std::fs::write(&path, "secrets:\n  ${F}: 1\n  secrets_path: s.json\n  source: file\n").unwrap();
        let found = ProfileRef { name: "p".into(), yaml: path.clone(), layout: Layout::Folder };
        let profile =
            load_profile(found, Selection { flag: None, env: None, home: None, vars: &env }).unwrap();
        assert!(profile.warnings.iter().all(|w| !w.contains("CANARY")), "{:?}", profile.warnings);
    }

    #[test]
    fn credentials_are_never_substituted_into_profile_yaml() {
        let env = vars(&[
            ("SYSTEMPROMPT_API_TOKEN", "CANARY-token"),
            ("MY_SERVICE_KEY", "CANARY-key"),
            ("GITHUB_TOKEN", "CANARY-gh"),
            ("TENANT", "acme"),
        ]);
        assert_eq!(
            substitute("${SYSTEMPROMPT_API_TOKEN} ${MY_SERVICE_KEY:-none} ${GITHUB_TOKEN} ${TENANT}", &env),
            "${SYSTEMPROMPT_API_TOKEN} none ${GITHUB_TOKEN} acme"
        );
    }

    #[test]
    fn positions_are_left_to_the_location() {
        assert_eq!(
            strip_positions("found x at line 3 column 1, while scanning y at line 2 column 10"),
            "found x, while scanning y"
        );
        assert_eq!(strip_positions("at line one"), "at line one");
    }

    #[test]
    fn profile_yaml_fields() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("profile.yaml");
        std::fs::write(
            &path,
            "name: prod\ntarget: ${TARGET:-local}\ncloud:\n  tenant_id: ${TENANT}\nsecrets:\n  secrets_path: ../../secrets/prod.json\n  validation: strict\n  source: env\nserver: {port: 8080}\n",
        )
        .unwrap();
        let s = load_settings(&path, &vars(&[("TARGET", "cloud"), ("TENANT", "t-1")])).unwrap();
        assert_eq!(s.target, Some(Target::Cloud));
        assert_eq!(s.tenant_id(), Some("t-1"));
        assert_eq!(s.source(), SourceKind::Env);
        let secrets = s.secrets.unwrap();
        assert_eq!(secrets.secrets_path.as_deref(), Some("../../secrets/prod.json"));
        assert!(!secrets.has_legacy_fields());
        // Null sections and a null tenant are the platform's defaults.
        std::fs::write(&path, "target: cloud\ncloud: null\nsecrets: null\n").unwrap();
        let s = load(&path).unwrap();
        assert!(s.cloud.is_none() && s.secrets.is_none());
        std::fs::write(&path, "cloud:\n  tenant_id: null\n  validation: skip\n").unwrap();
        assert_eq!(load(&path).unwrap().tenant_id(), None);
        std::fs::write(&path, "~\n").unwrap();
        assert!(load(&path).unwrap().target.is_none());
    }

    fn project(files: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for file in files {
            let path = dir.path().join(file);
            if file.ends_with('/') {
                std::fs::create_dir_all(&path).unwrap();
            } else {
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, "target: local\n").unwrap();
            }
        }
        dir
    }

    #[test]
    fn the_root_needs_a_marker_beside_systemprompt() {
        let bare = project(&[".systemprompt/profiles/a/profile.yaml"]);
        assert_eq!(find_root(bare.path()), None);
        for marker in ["Cargo.toml", "services/", "storage/"] {
            let dir = project(&[".systemprompt/profiles/a/profile.yaml", marker, "src/deep/"]);
            assert_eq!(find_root(&dir.path().join("src/deep")).as_deref(), Some(dir.path()), "{marker}");
        }
    }

    #[test]
    fn both_layouts_are_profiles_and_a_folder_needs_profile_yaml() {
        let dir = project(&[
            "services/",
            ".systemprompt/profiles/local/profile.yaml",
            ".systemprompt/profiles/empty/secrets.json",
            ".systemprompt/profiles/production.profile.yaml",
            ".systemprompt/profiles/local.profile.yaml",
            ".systemprompt/profiles/notes.yaml",
        ]);
        let found = list_profiles(dir.path()).unwrap();
        let names: Vec<(&str, Layout)> = found.iter().map(|p| (p.name.as_str(), p.layout)).collect();
        assert_eq!(names, [("local", Layout::Folder), ("production", Layout::Flat)]);
    }

    #[test]
    fn selection_order_flag_env_session_only() {
        let dir = project(&[
            "Cargo.toml",
            ".systemprompt/profiles/local/profile.yaml",
            ".systemprompt/profiles/production/profile.yaml",
        ]);
        let none = BTreeMap::new();
        let pick = |flag: Option<&str>, env: Option<&str>| {
            choose(dir.path(), Selection { flag, env, home: None, vars: &none }).map(|(p, o)| (p.name, o))
        };
        let e = pick(None, None).unwrap_err().to_string();
        assert!(e.contains("2 profiles (local, production) and no active one"), "{e}");
        let index = dir.path().join(".systemprompt/sessions/index.json");
        std::fs::create_dir_all(index.parent().unwrap()).unwrap();
        std::fs::write(
            &index,
            r#"{"version": 1, "sessions": {}, "active_key": null, "active_profile_name": "production"}"#,
        )
        .unwrap();
        assert_eq!(pick(None, None).unwrap(), ("production".into(), ProfileOrigin::Session));
        assert_eq!(pick(None, Some("local")).unwrap(), ("local".into(), ProfileOrigin::Environment));
        assert_eq!(pick(Some("local"), Some("production")).unwrap(), ("local".into(), ProfileOrigin::Flag));
        std::fs::write(&index, "{\n  \"version\": 1,\n  \"active_profile_name\": \"gone\"\n}\n").unwrap();
        let e = pick(None, None).unwrap_err().to_string();
        assert!(e.contains("index.json:3:3: the active profile `gone` has no profile.yaml"), "{e}");
        std::fs::write(&index, r#"{"version": 1}"#).unwrap();
        assert!(pick(None, None).is_err(), "no active profile: two to choose from");
    }

    #[test]
    fn secrets_path_is_resolved_against_the_profile_folder() {
        let dir = project(&["services/", ".systemprompt/profiles/p/profile.yaml"]);
        let yaml = dir.path().join(".systemprompt/profiles/p/profile.yaml");
        let home = dir.path().join("home");
        let none = BTreeMap::new();
        let selection = Selection { flag: None, env: None, home: Some(&home), vars: &none };
        let resolve = |text: &str| {
            std::fs::write(&yaml, text).unwrap();
            let found = ProfileRef { name: "p".into(), yaml: yaml.clone(), layout: Layout::Folder };
            load_profile(found, selection).map(|p| (p.secrets_file, p.warnings))
        };
        let folder = yaml.parent().unwrap();
        let (path, warnings) = resolve("target: local\n").unwrap();
        assert_eq!(path, folder.join("secrets.json"));
        assert!(warnings.is_empty());
        let (path, warnings) =
            resolve("secrets:\n  secrets_path: ../../secrets/p.json\n  source: env\n").unwrap();
        assert_eq!(path, folder.join("../../secrets/p.json"));
        assert!(warnings.is_empty(), "{warnings:?}");
        let (path, _) = resolve("secrets:\n  secrets_path: ~/s.json\n  source: file\n").unwrap();
        assert_eq!(path, home.join("s.json"));
        let (path, _) = resolve("secrets:\n  secrets_path: /abs/s.json\n  source: file\n").unwrap();
        assert_eq!(path, Path::new("/abs/s.json"));
        let (_, warnings) = resolve("secrets:\n  remote: file:store.json\n  bogus: 1\n").unwrap();
        assert!(warnings[0].contains("requires secrets.secrets_path and secrets.source"), "{warnings:?}");
        assert!(
            warnings[1].contains("profile.yaml:3:3: `secrets.bogus` is not a field the platform defines"),
            "{warnings:?}"
        );
    }

    #[test]
    fn bad_profile_yaml_points_at_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("profile.yaml");
        std::fs::write(&path, "target: cloud\ntarget: moon\n").unwrap();
        let e = load(&path).unwrap_err().to_string();
        assert!(e.contains("profile.yaml:2:1: invalid profile.yaml: duplicate field `target`"), "{e}");
        std::fs::write(&path, "target: moon\n").unwrap();
        let e = load(&path).unwrap_err().to_string();
        assert!(
            e.contains(
                "profile.yaml:1:9: invalid profile.yaml: target: unknown variant, expected `local` or `cloud`"
            ),
            "{e}"
        );
        std::fs::write(&path, "secrets: CANARY-s\n").unwrap();
        let e = load(&path).unwrap_err().to_string();
        assert!(e.contains("invalid profile.yaml: secrets: invalid type, expected struct"), "{e}");
        std::fs::write(&path, "secrets:\n  validation: CANARY-v\n").unwrap();
        let e = load(&path).unwrap_err().to_string();
        assert!(!e.contains("CANARY"), "{e}");
    }
}
