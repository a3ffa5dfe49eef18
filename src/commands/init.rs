//! `init`: scaffolds a profile. Never overwrites a file.

use std::io::Write;
use std::path::Path;

use super::{Streams, stdout_error, warn};
use crate::cli::Cli;
use crate::config::{Env, Output, working_dir};
use crate::error::{Error, Result, display_path, exit};
use crate::project::{self, PROJECT_DIR};

const SECRETS_JSON: &str = r#"{
  "jwt_secret": "",
  "database_url": "",
  "anthropic": "",
  "openai": "",
  "gemini": ""
}
"#;

const PROFILE_YAML: &str = "\
# cloud-secrets reads the fields below; see docs/profile-yaml.md.
target: local
secrets:
  validation: warn
  # The embedded local store, next to this file. For the systemprompt cloud instead, remove
  # this line and set:  target: cloud  and  cloud: {tenant_id: <your tenant>}
  remote: file:store.json
";

const GITIGNORE: &str = "\
# Secrets never go into git (written by cloud-secrets init).
credentials.json
profiles/*/secrets.json
profiles/*/last-applied.json
profiles/*/plan-key
profiles/*/store.json
profiles/*/*.lock
";

/// Runs `init`.
pub(super) fn run(cli: &Cli, env: &Env, output: &Output, streams: &mut Streams<'_>) -> Result<i32> {
    let name = cli.profile.as_deref().unwrap_or("local");
    let valid = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && !name.starts_with('-');
    if !valid {
        return Err(Error::usage(
            format!("`{}` is not a profile name init can create", name.escape_debug()),
            "use letters, digits, `_` and `-`, as in --profile production",
        ));
    }
    let cwd = working_dir(cli, env)?;
    let root = project::find_root(&cwd).unwrap_or(cwd);
    let dir = root.join(PROJECT_DIR).join("profiles").join(name);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("create the directory", &dir, e))?;

    let files = [
        (dir.join("secrets.json"), SECRETS_JSON, true),
        (dir.join("profile.yaml"), PROFILE_YAML, false),
        (root.join(PROJECT_DIR).join(".gitignore"), GITIGNORE, false),
    ];
    let mut lines = Vec::new();
    for (path, contents, private) in &files {
        let shown = display_path(path);
        if create_new(path, contents, *private)? {
            let mode = if *private { " (mode 0600)" } else { "" };
            lines.push(format!("created  {shown}{mode}"));
        } else {
            lines.push(format!("exists   {shown} (left as it is)"));
        }
    }
    let gitignore = root.join(PROJECT_DIR).join(".gitignore");
    let ignored = std::fs::read_to_string(&gitignore).unwrap_or_default();
    if !ignored.lines().any(|l| {
        l.trim() == "profiles/*/secrets.json" || l.trim() == "secrets.json" || l.trim() == "**/secrets.json"
    }) {
        warn(
            output,
            streams.err,
            &format!(
                "{} does not seem to ignore secrets.json; add `profiles/*/secrets.json` to it",
                display_path(&gitignore)
            ),
        );
    }
    let mut print = || -> std::io::Result<()> {
        for line in &lines {
            writeln!(streams.out, "{line}")?;
        }
        writeln!(
            streams.out,
            "Profile `{name}` is ready: fill in {}, then run cloud-secrets plan --profile {name}.",
            display_path(&dir.join("secrets.json"))
        )
    };
    print().map_err(stdout_error)?;
    Ok(exit::OK)
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
