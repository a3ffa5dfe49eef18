//! `init`: scaffolds a profile. Never overwrites a file.

use std::io::Write;
use std::path::Path;

use super::{Streams, stdout_error, warn};
use crate::cli::Cli;
use crate::config::{Env, Output, working_dir};
use crate::error::{Error, Result, display_path, exit};
use crate::project::{self, PROJECT_DIR};

/// The lines of the `.gitignore` in `.systemprompt/`: what the platform's own covers, then the
/// files cloud-secrets keeps beside a profile.
const GITIGNORE_LINES: [&str; 15] = [
    "credentials.json",
    "tenants.json",
    "**/secrets.json",
    "**/*.secrets.json",
    "sessions/",
    "docker/",
    "storage/",
    "# cloud-secrets: last-applied records, plan keys, locks, local stores, temporary files",
    "**/*last-applied.json",
    "**/*plan-key",
    "**/*.lock",
    "**/*store.json",
    "**/.cloud-secrets-*.tmp",
    "**/*.previous",
    "*.tmp",
];

/// A profile.yaml the platform accepts: every section it requires, as its CLI writes a local
/// profile, with the secrets file beside it.
fn profile_yaml(name: &str, root: &Path) -> String {
    let display_name = match name {
        "local" => "Local Development".to_owned(),
        "dev" | "development" => "Development".to_owned(),
        "prod" | "production" => "Production".to_owned(),
        other => {
            let mut chars = other.chars();
            chars.next().map_or_else(String::new, |c| c.to_uppercase().chain(chars).collect())
        }
    };
    // A JSON string is a YAML double-quoted scalar: any path reads back as written.
    let root_text = root.display().to_string();
    let path = |suffix: &str| serde_json::to_string(&format!("{root_text}{suffix}")).unwrap_or_default();
    let (system, services, bin, storage) =
        (path(""), path("/services"), path("/target/release"), path("/storage"));
    format!(
        "# systemprompt.io Profile: {display_name}
# Written by cloud-secrets init in the shape the platform's CLI writes. The platform owns this
# file: cloud-secrets only reads it (its own settings are in ../../cloud-secrets.yaml).

name: {name}
display_name: {display_name}
target: local
site:
  name: systemprompt.io
  github_link: null
database:
  type: postgres
  external_db_access: false
server:
  host: 127.0.0.1
  port: 8080
  api_server_url: http://localhost:8080
  api_internal_url: http://localhost:8080
  api_external_url: http://localhost:8080
  use_https: false
  cors_allowed_origins:
  - http://localhost:8080
  - http://localhost:5173
paths:
  system: {system}
  services: {services}
  bin: {bin}
  storage: {storage}
security:
  jwt_issuer: systemprompt-local
  jwt_access_token_expiration: 2592000
  jwt_refresh_token_expiration: 15552000
  jwt_audiences:
  - web
  - api
  - a2a
  - mcp
  allowed_resource_audiences:
  - hook
rate_limits:
  disabled: true
system_admin:
  username: admin
  email: admin@localhost.localdomain
runtime:
  environment: development
  log_level: verbose
  output_format: text
cloud:
  tenant_id: null
  validation: warn
secrets:
  secrets_path: ./secrets.json
  validation: warn
  source: file
"
    )
}

/// Runs `init`.
pub(super) fn run(cli: &Cli, env: &Env, output: &Output, streams: &mut Streams<'_>) -> Result<i32> {
    let name = profile_name(cli)?;
    let cwd = working_dir(cli, env)?;
    let root = project::find_root(&cwd).unwrap_or(cwd);
    let project_dir = root.join(PROJECT_DIR);
    let dir = project_dir.join("profiles").join(name);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("create the directory", &dir, e))?;

    let mut log = Log::default();
    // A project root needs services/ (or Cargo.toml, storage/) beside .systemprompt/.
    if project::find_root(&dir).is_none() {
        let services = root.join("services");
        std::fs::create_dir_all(&services).map_err(|e| Error::io("create the directory", &services, e))?;
        log.add(true, &services, " (marks the project root)");
    }
    let secrets = dir.join("secrets.json");
    let pepper = super::generate::pepper()?;
    let secrets_text = zeroize::Zeroizing::new(format!(
        "{{\n  \"oauth_at_rest_pepper\": \"{}\",\n  \"database_url\": \"\",\n  \"anthropic\": \"\",\n  \"openai\": \"\",\n  \"gemini\": \"\"\n}}\n",
        pepper.expose()
    ));
    let created = create_new(&secrets, &secrets_text, true)?;
    log.add(created, &secrets, " (mode 0600; a new oauth_at_rest_pepper, not shown)");
    let yaml = dir.join("profile.yaml");
    log.add(create_new(&yaml, &profile_yaml(name, &root), false)?, &yaml, "");
    let settings_path = crate::settings::path(&root);
    let missing_section = settings_section(&settings_path, name, &mut log)?;
    gitignore(&project_dir.join(".gitignore"), &mut log)?;
    if let Some(section) = &missing_section {
        warn(
            output,
            streams.err,
            &format!(
                "{} has no section for `{name}`; add these lines under `profiles:` to give it a remote:\n{section}",
                display_path(&settings_path)
            ),
        );
    }
    let mut print = || -> std::io::Result<()> {
        for line in &log.lines {
            writeln!(streams.out, "{line}")?;
        }
        if created {
            writeln!(
                streams.out,
                "Profile `{name}` is ready: set database_url in {}, then run cloud-secrets plan --profile {name}.",
                display_path(&secrets)
            )
        } else {
            writeln!(
                streams.out,
                "Profile `{name}` already has its secrets file; run cloud-secrets plan --profile {name}."
            )
        }
    };
    print().map_err(stdout_error)?;
    Ok(exit::OK)
}

/// The name of the profile to create: `--profile`, else `local`.
fn profile_name(cli: &Cli) -> Result<&str> {
    let name = cli.profile.as_deref().unwrap_or("local");
    let valid = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && !name.starts_with('-');
    if valid {
        Ok(name)
    } else {
        Err(Error::usage(
            format!("`{}` is not a profile name init can create", name.escape_debug()),
            "use letters, digits, `_` and `-`, as in --profile production",
        ))
    }
}

/// What init did, a line per file.
#[derive(Default)]
struct Log {
    lines: Vec<String>,
}

impl Log {
    fn add(&mut self, created: bool, path: &Path, note: &str) {
        let shown = display_path(path);
        self.lines.push(if created {
            format!("created  {shown}{note}")
        } else {
            format!("exists   {shown} (left as it is)")
        });
    }
}

/// Creates cloud-secrets.yaml with the profile's section; returns the section to add by hand
/// when the file exists without one (it is never rewritten).
fn settings_section(path: &Path, name: &str, log: &mut Log) -> Result<Option<String>> {
    let section = format!("  {name}:\n    remote: file:profiles/{name}/store.json\n");
    let text = format!(
        "# cloud-secrets' own settings (see docs/settings.md); the platform's files hold none of them.\nprofiles:\n{section}"
    );
    if create_new(path, &text, false)? {
        log.add(true, path, "");
        return Ok(None);
    }
    let existing = std::fs::read_to_string(path).unwrap_or_default();
    let has_section = existing
        .lines()
        .any(|l| l.trim_end() == format!("  {name}:") || l.trim_end() == format!("    {name}:"));
    log.add(false, path, "");
    Ok((!has_section).then_some(section))
}

/// Creates `.systemprompt/.gitignore`, or appends the lines it lacks (not to one ignoring
/// everything).
fn gitignore(path: &Path, log: &mut Log) -> Result<()> {
    let Some(text) = std::fs::read_to_string(path).ok() else {
        let text = format!(
            "# Never commit these (written by cloud-secrets init).\n{}\n",
            GITIGNORE_LINES.join("\n")
        );
        log.add(create_new(path, &text, false)?, path, "");
        return Ok(());
    };
    let missing: Vec<&str> = GITIGNORE_LINES
        .iter()
        .copied()
        .filter(|l| !l.starts_with('#') && !text.lines().any(|t| t.trim() == *l))
        .collect();
    if text.lines().any(|l| l.trim() == "*") || missing.is_empty() {
        log.add(false, path, "");
    } else {
        append(path, &text, &missing)?;
        log.lines.push(format!("updated  {} (added {})", display_path(path), missing.join(", ")));
    }
    Ok(())
}

/// Appends `lines` to the `.gitignore` whose text is `text`.
fn append(path: &Path, text: &str, lines: &[&str]) -> Result<()> {
    let mut file =
        std::fs::OpenOptions::new().append(true).open(path).map_err(|e| Error::io("open", path, e))?;
    let gap = if text.is_empty() || text.ends_with('\n') { "" } else { "\n" };
    let added = format!("{gap}# Added by cloud-secrets init.\n{}\n", lines.join("\n"));
    file.write_all(added.as_bytes()).map_err(|e| Error::io("write", path, e))
}

/// Creates `path` with `contents` unless it exists; true if it was created.
fn create_new(path: &Path, contents: &str, private: bool) -> Result<bool> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if private { 0o600 } else { 0o644 });
    }
    let mut file = match options.open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(false),
        Err(e) => return Err(Error::io("create", path, e)),
    };
    file.write_all(contents.as_bytes()).map_err(|e| Error::io("write", path, e))?;
    file.sync_all().map_err(|e| Error::io("write", path, e))?;
    Ok(true)
}
