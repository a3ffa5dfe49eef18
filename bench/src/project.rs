//! The projects the benchmark plans: laid out as the platform's CLI lays out a real one
//! (`.systemprompt/` beside `services/`, credentials.json, `profiles/<name>/profile.yaml` in the
//! platform's own shape, secrets.json mode 0600 holding the keys the platform requires).

use std::path::{Path, PathBuf};

/// The API token in the projects' credentials.json.
pub const TOKEN: &str = "sp-bench-api-token";
/// The tenant of the cloud profile.
pub const TENANT: &str = "ten_01jbench";

/// A cloud profile as `systemprompt cloud profile create` writes it (the tests' fixture).
const CLOUD_PROFILE: &str = include_str!("../../fixtures/cloud/.systemprompt/profiles/prod/profile.yaml");
/// A local profile as the platform writes it (the tests' fixture).
const LOCAL_PROFILE: &str = include_str!("../../fixtures/platform/.systemprompt/profiles/local/profile.yaml");
/// The platform's .gitignore of `.systemprompt/`.
const GITIGNORE: &str =
    "# Ignore sensitive files\ncredentials.json\ntenants.json\n**/secrets.json\ndocker/\nstorage/\n";

/// Which remote a project's profile uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `target: cloud`, the tenant [`TENANT`] (at the address `SYSTEMPROMPT_API_URL` names).
    Cloud,
    /// `target: local`, with `remote: file:profiles/local/store.json` in cloud-secrets.yaml.
    LocalStore,
}

/// A project with one profile whose secrets.json holds `vars`.
pub struct Project {
    dir: tempfile::TempDir,
    secrets: PathBuf,
    /// secrets.json's keys and values, in file order.
    vars: Vec<(String, String)>,
}

impl Project {
    /// A project of `size` variables (at least the two the platform requires).
    pub fn new(kind: Kind, size: usize) -> Result<Self, String> {
        let dir = tempfile::Builder::new()
            .prefix("cs-bench-")
            .tempdir()
            .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
        let root = dir.path().join(".systemprompt");
        let name = match kind {
            Kind::Cloud => "prod",
            Kind::LocalStore => "local",
        };
        let profile = root.join("profiles").join(name);
        for path in [&profile, &dir.path().join("services").join("config")] {
            std::fs::create_dir_all(path).map_err(|e| format!("{}: {e}", path.display()))?;
        }
        let credentials = serde_json::json!({
            "api_token": TOKEN,
            "api_url": "https://api.systemprompt.io",
            "authenticated_at": "2026-11-01T09:00:00Z",
            "user_email": "bench@example.com",
        });
        write(&root.join("credentials.json"), &credentials.to_string(), true)?;
        write(&root.join(".gitignore"), GITIGNORE, false)?;
        write(&dir.path().join("services/config/config.yaml"), "# The project's services.\n", false)?;
        let profile_yaml = match kind {
            Kind::Cloud => cloud_profile()?,
            Kind::LocalStore => {
                let settings = "profiles:\n  local:\n    remote: file:profiles/local/store.json\n";
                write(&root.join("cloud-secrets.yaml"), settings, false)?;
                LOCAL_PROFILE.to_owned()
            }
        };
        write(&profile.join("profile.yaml"), &profile_yaml, false)?;
        let project = Self { secrets: profile.join("secrets.json"), vars: variables(size), dir };
        project.write_secrets()?;
        Ok(project)
    }

    /// The project's root directory, where the tool runs.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// The number of variables in secrets.json.
    pub fn len(&self) -> usize {
        self.vars.len()
    }

    /// Gives `count` of the custom variables, spread evenly over the sorted names, a new value
    /// (the required two keep theirs), and rewrites secrets.json.
    pub fn change(&mut self, count: usize) -> Result<(), String> {
        let customs = self.vars.len().saturating_sub(REQUIRED);
        if count > customs {
            return Err(format!("cannot change {count} of {customs} custom variables"));
        }
        let stride = customs.checked_div(count).unwrap_or(0);
        for k in 0..count {
            let (_, value) = &mut self.vars[REQUIRED + k * stride + stride / 2];
            value.push_str("-changed");
        }
        self.write_secrets()
    }

    /// Writes secrets.json (mode 0600).
    fn write_secrets(&self) -> Result<(), String> {
        let secrets: serde_json::Map<String, serde_json::Value> =
            self.vars.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect();
        let text = serde_json::to_string_pretty(&secrets)
            .map_err(|e| format!("cannot write {}: {e}", self.secrets.display()))?;
        write(&self.secrets, &text, true)
    }
}

/// How many of a project's variables are the platform's required keys.
const REQUIRED: usize = 2;

/// `size` variables: the two the platform requires, then custom ones, in sorted order.
fn variables(size: usize) -> Vec<(String, String)> {
    let mut vars = vec![
        // The platform requires at least 32 bytes.
        ("oauth_at_rest_pepper".to_owned(), "bench-pepper-0123456789abcdef0123456789abcdef".to_owned()),
        ("database_url".to_owned(), "postgres://app:bench@db.internal:5432/app".to_owned()),
    ];
    vars.extend(
        (0..size.saturating_sub(REQUIRED))
            .map(|i| (format!("var_{i:06}"), format!("bench-value-{i:06}-{:032x}", i * 7919))),
    );
    vars
}

/// The cloud fixture's profile.yaml, naming [`TENANT`].
fn cloud_profile() -> Result<String, String> {
    let mut replaced = 0;
    let text: Vec<String> = CLOUD_PROFILE
        .lines()
        .map(|line| {
            if line.trim_start().starts_with("tenant_id:") {
                replaced += 1;
                format!("  tenant_id: {TENANT}")
            } else {
                line.to_owned()
            }
        })
        .collect();
    if replaced != 1 {
        return Err(
            "fixtures/cloud's profile.yaml no longer has one `tenant_id:` line: update bench/src/project.rs"
                .to_owned(),
        );
    }
    Ok(text.join("\n") + "\n")
}

/// Writes `text` to `path`, mode 0600 when `private`.
fn write(path: &Path, text: &str, private: bool) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    if private {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| format!("cannot make {} private: {e}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenth_of_the_custom_variables_change() {
        let mut project = Project::new(Kind::Cloud, 1_002).unwrap();
        project.change(100).unwrap();
        let changed = project.vars.iter().filter(|(_, v)| v.ends_with("-changed")).count();
        assert_eq!(changed, 100);
        assert!(!project.vars[..REQUIRED].iter().any(|(_, v)| v.ends_with("-changed")));
        let yaml =
            std::fs::read_to_string(project.root().join(".systemprompt/profiles/prod/profile.yaml")).unwrap();
        assert!(yaml.contains(&format!("tenant_id: {TENANT}\n")));
    }
}
