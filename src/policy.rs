//! The platform's rules about variable names: how a secrets.json key maps to the variable stored
//! on the remote, and which class each remote variable belongs to. All facts here come from the
//! product brief; keep them exact.

/// The variable that lists the custom (non-standard) secrets for the platform's runtime.
pub const CUSTOM_SECRETS_VAR: &str = "SYSTEMPROMPT_CUSTOM_SECRETS";

/// Variables the platform knows without being told in [`CUSTOM_SECRETS_VAR`].
pub const STANDARD_VARS: [&str; 6] = [
    "OAUTH_AT_REST_PEPPER",
    "DATABASE_URL",
    "GEMINI_API_KEY",
    "ANTHROPIC_API_KEY",
    "OPENAI_API_KEY",
    "GITHUB_TOKEN",
];

/// The secrets.json keys the platform knows by name; any other key is a custom secret.
pub const KNOWN_KEYS: [&str; 13] = [
    "oauth_at_rest_pepper",
    "database_url",
    "manifest_signing_secret_seed",
    "signing_key_pem",
    "database_write_url",
    "external_database_url",
    "internal_database_url",
    "gemini",
    "anthropic",
    "openai",
    "github",
    "moonshot",
    "qwen",
];

/// The keys the platform requires: it does not start without them.
pub const REQUIRED_KEYS: [&str; 2] = ["oauth_at_rest_pepper", "database_url"];

/// The fewest characters the platform accepts in `oauth_at_rest_pepper`.
pub const PEPPER_MIN_LENGTH: usize = 32;

/// Set by the hosting platform; never synced. Compared case-insensitively.
pub const SYSTEM_MANAGED_VARS: [&str; 2] = ["FLY_APP_NAME", "FLY_MACHINE_ID"];

/// Synced by mistake in the past; cleaned up when found on the remote.
pub const STALE_VARS: [&str; 1] = ["SYSTEMPROMPT_API_URL"];

/// Written by the platform's deploy step; never added, changed or removed by a plan.
pub const DEPLOY_OWNED_VARS: [&str; 5] = [
    "SYSTEMPROMPT_API_TOKEN",
    "SYSTEMPROMPT_USER_EMAIL",
    "SYSTEMPROMPT_CLI_REMOTE",
    "SYSTEMPROMPT_PROFILE",
    "SIGNING_KEY_PEM",
];

/// The key that, when present, takes `DATABASE_URL` from `database_url`.
pub const INTERNAL_DATABASE_URL_KEY: &str = "internal_database_url";

/// The class of a variable name, as far as syncing is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarClass {
    /// Set by the hosting platform: never synced; cleaned up when found on the remote.
    SystemManaged,
    /// Synced by mistake once: never synced; cleaned up when found on the remote.
    Stale,
    /// Written by the deploy step: left alone.
    DeployOwned,
    /// Owned by the profile's desired state.
    Managed,
}

/// Variable names a profile leaves alone (`secrets.ignore` in profile.yaml): never added,
/// changed or removed.
#[derive(Debug, Clone, Default)]
pub struct Ignore {
    patterns: Vec<String>,
    set: Option<globset::GlobSet>,
}

impl Ignore {
    /// Compiles glob patterns (`LEGACY_*`, `FEATURE_?`); the error names the bad pattern.
    pub fn new(patterns: &[String]) -> std::result::Result<Self, String> {
        if patterns.is_empty() {
            return Ok(Self::default());
        }
        let mut builder = globset::GlobSetBuilder::new();
        for pattern in patterns {
            let glob = globset::GlobBuilder::new(pattern)
                .literal_separator(false)
                .build()
                .map_err(|e| format!("`{}` is not a glob pattern: {}", pattern.escape_debug(), e.kind()))?;
            builder.add(glob);
        }
        let set = builder.build().map_err(|e| e.to_string())?;
        Ok(Self { patterns: patterns.to_vec(), set: Some(set) })
    }

    /// Whether `name` is ignored.
    pub fn matches(&self, name: &str) -> bool {
        self.set.as_ref().is_some_and(|set| set.is_match(name))
    }

    /// The patterns, as written.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }
}

/// Classifies a variable name.
pub fn classify(name: &str) -> VarClass {
    if SYSTEM_MANAGED_VARS.iter().any(|v| v.eq_ignore_ascii_case(name)) {
        VarClass::SystemManaged
    } else if STALE_VARS.contains(&name) {
        VarClass::Stale
    } else if DEPLOY_OWNED_VARS.contains(&name) {
        VarClass::DeployOwned
    } else {
        VarClass::Managed
    }
}

/// Keys whose variable the runtime reads under a name other than the one the platform's deploy
/// step writes: (key, the runtime's name, other names the runtime also reads, deploy's name).
const RENAMED_KEYS: [(&str, &str, &[&str], &str); 4] = [
    ("github", "GITHUB_TOKEN", &[], "GITHUB"),
    ("moonshot", "MOONSHOT_API_KEY", &["KIMI_API_KEY"], "MOONSHOT"),
    ("qwen", "QWEN_API_KEY", &["DASHSCOPE_API_KEY"], "QWEN"),
    ("internal_database_url", "INTERNAL_DATABASE_URL", &[], "DATABASE_URL"),
];

/// The name under which the runtime reads a secrets.json key's value in its container, and the
/// name under which the platform's deploy step writes it. cloud-secrets writes the value under
/// both (once when they are the same), so that the runtime finds it and a deploy of the same
/// secrets.json changes nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyNames {
    /// The name the runtime reads (`GITHUB_TOKEN` for `github`): environment overrides use it.
    pub runtime: String,
    /// Names the runtime also reads, after `runtime` (`KIMI_API_KEY` for `moonshot`).
    pub also_read: &'static [&'static str],
    /// The name the deploy step writes (`GITHUB` for `github`); listed in
    /// `SYSTEMPROMPT_CUSTOM_SECRETS` when it is not a standard variable.
    pub deploy: String,
}

impl KeyNames {
    /// Every name the key's value is written under: the runtime's, then the deploy step's.
    pub fn written(&self) -> Vec<String> {
        self.written_names().map(str::to_owned).collect()
    }

    /// [`KeyNames::written`], borrowed.
    pub fn written_names(&self) -> impl Iterator<Item = &str> {
        let deploy = (self.deploy != self.runtime).then_some(self.deploy.as_str());
        std::iter::once(self.runtime.as_str()).chain(deploy)
    }
}

/// The names of a secrets.json key on the remote.
pub fn key_names(key: &str) -> KeyNames {
    if let Some((_, runtime, also_read, deploy)) = RENAMED_KEYS.iter().find(|(k, ..)| *k == key) {
        return KeyNames { runtime: (*runtime).to_owned(), also_read, deploy: (*deploy).to_owned() };
    }
    let name = variable_name(key);
    KeyNames { runtime: name.clone(), also_read: &[], deploy: name }
}

/// Maps a secrets.json key to its main variable name on the remote: the one the runtime reads
/// (see [`key_names`] for every name a key is written under).
///
/// `database_url` maps to `DATABASE_URL`; `internal_database_url` to `INTERNAL_DATABASE_URL`
/// (and, as the deploy step writes it, to `DATABASE_URL` as well: which key provides
/// `DATABASE_URL` when both are present is decided by the desired-state builder, not here).
pub fn variable_name(key: &str) -> String {
    match PROVIDER_KEYS.iter().find(|(k, _)| *k == key) {
        Some((_, name)) => (*name).to_owned(),
        None => match RENAMED_KEYS.iter().find(|(k, ..)| *k == key) {
            Some((_, runtime, ..)) => (*runtime).to_owned(),
            None => key.to_ascii_uppercase(),
        },
    }
}

/// Keys whose variable is not the key in upper case: (key, variable).
const PROVIDER_KEYS: [(&str, &str); 3] =
    [("gemini", "GEMINI_API_KEY"), ("anthropic", "ANTHROPIC_API_KEY"), ("openai", "OPENAI_API_KEY")];

/// Whether the runtime reads `key` under the key in upper case alone, and the deploy step
/// writes it under that name too (most keys: not `github`, `openai` or `moonshot`).
pub fn is_plain_key(key: &str) -> bool {
    !PROVIDER_KEYS.iter().any(|(k, _)| *k == key) && !RENAMED_KEYS.iter().any(|(k, ..)| *k == key)
}

/// The secrets.json key a variable name comes from: the inverse of [`key_names`], for the
/// runtime's names, the names it also reads and the deploy step's names (`GITHUB` and
/// `GITHUB_TOKEN` both come from `github`; `DATABASE_URL` is read back as `database_url`).
pub fn key_for(name: &str) -> String {
    if let Some((key, _)) = PROVIDER_KEYS.iter().find(|(_, variable)| *variable == name) {
        return (*key).to_owned();
    }
    match RENAMED_KEYS.iter().find(|(_, runtime, also, deploy)| {
        *runtime == name || also.contains(&name) || (*deploy == name && name != "DATABASE_URL")
    }) {
        Some((key, ..)) => (*key).to_owned(),
        None => name.to_ascii_lowercase(),
    }
}

/// Whether `name` belongs in `SYSTEMPROMPT_CUSTOM_SECRETS` when the deploy step writes it: every
/// name outside the standard set (and the list itself).
pub fn is_listed_by_deploy(name: &str) -> bool {
    !is_standard(name) && name != CUSTOM_SECRETS_VAR
}

/// Whether a name is only the runtime's spelling of a key whose deploy name differs
/// (`MOONSHOT_API_KEY`, not `MOONSHOT`): the runtime reads it without a list entry, and the
/// deploy step never lists it.
pub fn is_runtime_only(name: &str) -> bool {
    RENAMED_KEYS.iter().any(|(_, runtime, _, deploy)| *runtime == name && *deploy != name)
}

/// Whether a variable is one the platform reads without listing it in [`CUSTOM_SECRETS_VAR`].
pub fn is_standard(name: &str) -> bool {
    STANDARD_VARS.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_keys_as_the_platform_does() {
        for (key, var) in [
            ("gemini", "GEMINI_API_KEY"),
            ("anthropic", "ANTHROPIC_API_KEY"),
            ("openai", "OPENAI_API_KEY"),
            ("github", "GITHUB_TOKEN"),
            ("moonshot", "MOONSHOT_API_KEY"),
            ("qwen", "QWEN_API_KEY"),
            ("internal_database_url", "INTERNAL_DATABASE_URL"),
            ("database_url", "DATABASE_URL"),
            ("jwt_secret", "JWT_SECRET"),
            ("moltbook_builder", "MOLTBOOK_BUILDER"),
            ("oauth_at_rest_pepper", "OAUTH_AT_REST_PEPPER"),
        ] {
            assert_eq!(variable_name(key), var, "{key}");
        }
    }

    #[test]
    fn keys_for_names_invert_the_mapping() {
        for key in [
            "gemini",
            "anthropic",
            "openai",
            "github",
            "moonshot",
            "qwen",
            "internal_database_url",
            "database_url",
            "jwt_secret",
            "moltbook_builder",
        ] {
            assert_eq!(key_for(&variable_name(key)), key);
            assert_eq!(
                key_for(&key_names(key).deploy),
                if key == "internal_database_url" { "database_url" } else { key }
            );
        }
        assert_eq!(key_for("KIMI_API_KEY"), "moonshot");
        assert_eq!(key_for("DASHSCOPE_API_KEY"), "qwen");
        // Every known key, each of the names it is written under.
        for key in KNOWN_KEYS {
            for name in key_names(key).written() {
                let back = key_for(&name);
                assert!(
                    back == *key || (*key == *INTERNAL_DATABASE_URL_KEY && name == "DATABASE_URL"),
                    "{key} {name}"
                );
            }
        }
        // An UPPER_CASE key is its own variable name; mapped back it reads as the snake_case key,
        // and `set --save` finds the file's own spelling (tests/cli/save_properties.rs).
        for key in ["MY_TOKEN", "STRIPE_SECRET_KEY"] {
            assert_eq!(variable_name(key), key);
            assert_eq!(key_for(key), key.to_ascii_lowercase());
            assert_eq!(variable_name(&key_for(key)), key);
        }
    }

    #[test]
    fn keys_are_written_where_the_runtime_reads_them_and_where_deploy_writes_them() {
        assert_eq!(key_names("github").written(), ["GITHUB_TOKEN", "GITHUB"]);
        assert_eq!(key_names("moonshot").written(), ["MOONSHOT_API_KEY", "MOONSHOT"]);
        assert_eq!(key_names("moonshot").also_read, ["KIMI_API_KEY"]);
        assert_eq!(key_names("qwen").written(), ["QWEN_API_KEY", "QWEN"]);
        assert_eq!(key_names("internal_database_url").written(), ["INTERNAL_DATABASE_URL", "DATABASE_URL"]);
        assert_eq!(key_names("openai").written(), ["OPENAI_API_KEY"]);
        assert_eq!(key_names("jwt_secret").written(), ["JWT_SECRET"]);
        assert_eq!(key_names("MY_UPPER_KEY").written(), ["MY_UPPER_KEY"]);
        for key in ["github", "moonshot", "qwen", "internal_database_url", "openai", "gemini", "anthropic"] {
            assert!(!is_plain_key(key), "{key}");
        }
        for key in ["jwt_secret", "database_url", "MY_UPPER_KEY", "stripe_key"] {
            assert!(is_plain_key(key), "{key}");
            let names = key_names(key);
            assert_eq!(
                (names.runtime, names.also_read.len(), names.deploy),
                (key.to_ascii_uppercase(), 0, key.to_ascii_uppercase())
            );
        }
        assert!(is_runtime_only("MOONSHOT_API_KEY") && is_runtime_only("INTERNAL_DATABASE_URL"));
        assert!(!is_runtime_only("GITHUB") && !is_runtime_only("JWT_SECRET"));
    }

    #[test]
    fn ignore_patterns_are_globs_over_variable_names() {
        let ignore = Ignore::new(&["LEGACY_*".into(), "FEATURE_?".into(), "EXACT".into()]).unwrap();
        for name in ["LEGACY_A", "LEGACY_", "FEATURE_X", "EXACT"] {
            assert!(ignore.matches(name), "{name}");
        }
        for name in ["LEGACY", "FEATURE_XY", "EXACTLY", "A_LEGACY_B"] {
            assert!(!ignore.matches(name), "{name}");
        }
        assert!(!Ignore::default().matches("ANY"));
        assert!(Ignore::new(&["[".into()]).unwrap_err().contains("`[` is not a glob pattern"));
    }

    #[test]
    fn classes() {
        assert_eq!(classify("FLY_APP_NAME"), VarClass::SystemManaged);
        assert_eq!(classify("fly_machine_id"), VarClass::SystemManaged);
        assert_eq!(classify("SYSTEMPROMPT_API_URL"), VarClass::Stale);
        assert_eq!(classify("SIGNING_KEY_PEM"), VarClass::DeployOwned);
        assert_eq!(classify("SYSTEMPROMPT_PROFILE"), VarClass::DeployOwned);
        assert_eq!(classify("JWT_SECRET"), VarClass::Managed);
        assert_eq!(classify(CUSTOM_SECRETS_VAR), VarClass::Managed);
    }
}
