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

/// Maps a secrets.json key to the variable name stored on the remote.
///
/// `database_url` maps to `DATABASE_URL` like `internal_database_url`; which of the two is synced
/// when both are present is decided by the desired-state builder, not here.
pub fn variable_name(key: &str) -> String {
    match key {
        "gemini" => "GEMINI_API_KEY".to_owned(),
        "anthropic" => "ANTHROPIC_API_KEY".to_owned(),
        "openai" => "OPENAI_API_KEY".to_owned(),
        "github" => "GITHUB_TOKEN".to_owned(),
        "internal_database_url" | "database_url" => "DATABASE_URL".to_owned(),
        other => other.to_ascii_uppercase(),
    }
}

/// The secrets.json key a variable name comes from: the inverse of [`variable_name`] (with
/// `DATABASE_URL` read back as `database_url`).
pub fn key_for(name: &str) -> String {
    match name {
        "GEMINI_API_KEY" => "gemini".to_owned(),
        "ANTHROPIC_API_KEY" => "anthropic".to_owned(),
        "OPENAI_API_KEY" => "openai".to_owned(),
        "GITHUB_TOKEN" => "github".to_owned(),
        other => other.to_ascii_lowercase(),
    }
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
            ("internal_database_url", "DATABASE_URL"),
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
        for key in
            ["gemini", "anthropic", "openai", "github", "database_url", "jwt_secret", "moltbook_builder"]
        {
            assert_eq!(key_for(&variable_name(key)), key);
        }
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
