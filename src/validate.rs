//! The rules for a desired state, checked offline: the platform's own (the keys it requires to
//! start) first, then cloud-secrets' advice (URL shapes, key prefixes), which follows `validation`
//! in cloud-secrets.yaml. A finding names where the key is, the key and the rule; never the value.

use std::fmt;

use crate::desired::{Desired, Entry, Source};
use crate::error::Location;
use crate::plan::Plan;
use crate::policy;
use crate::project::Validation;
use crate::remote::Remote;

/// A rule of the desired state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rule {
    /// The platform requires `oauth_at_rest_pepper`.
    PepperRequired,
    /// The platform requires `oauth_at_rest_pepper` to have at least 32 characters.
    PepperLength,
    /// The platform requires `database_url`.
    DatabaseUrlRequired,
    /// A database URL is `postgres://` or `postgresql://` with user, host and database.
    DatabaseUrlFormat,
    /// `anthropic` starts `sk-ant-`.
    AnthropicFormat,
    /// `openai` starts `sk-`.
    OpenaiFormat,
    /// `gemini` starts `AIza`.
    GeminiFormat,
    /// Keys are snake_case (or, for custom keys, upper-case with underscores).
    KeyCase,
}

impl Rule {
    /// The rule's short name, shown in findings.
    pub fn id(self) -> &'static str {
        match self {
            Rule::PepperRequired => "pepper-required",
            Rule::PepperLength => "pepper-length",
            Rule::DatabaseUrlRequired => "database-url-required",
            Rule::DatabaseUrlFormat => "database-url-format",
            Rule::AnthropicFormat => "anthropic-format",
            Rule::OpenaiFormat => "openai-format",
            Rule::GeminiFormat => "gemini-format",
            Rule::KeyCase => "key-case",
        }
    }

    /// Whether the rule is the platform's own: its runtime does not start when it is broken, so
    /// a finding is an error whatever `validation` says.
    pub fn is_platform(self) -> bool {
        matches!(self, Rule::PepperRequired | Rule::PepperLength | Rule::DatabaseUrlRequired)
    }

    /// Whether the rule asks for a key to be set (whether the remote keeps a value decides how
    /// grave a finding is for a plan).
    pub fn is_required_key(self) -> bool {
        matches!(self, Rule::PepperRequired | Rule::DatabaseUrlRequired)
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Where: the key in secrets.json, the variable in the environment, or the file.
    pub location: Location,
    /// The key concerned, if one is.
    pub key: Option<String>,
    /// The rule.
    pub rule: Rule,
    /// What is wrong, without the value.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(key) => write!(f, "{}: `{key}` {} [{}]", self.location, self.message, self.rule),
            None => write!(f, "{}: {} [{}]", self.location, self.message, self.rule),
        }
    }
}

/// Checks the desired state's entries. `file` names the desired state for findings about a key
/// that is missing. The platform's rules are always checked; with [`Validation::Skip`] nothing
/// else is.
pub fn check(entries: &[Entry], file: &Location, mode: Validation) -> Vec<Finding> {
    let mut findings = Vec::new();
    let set =
        |key: &str| entries.iter().find(|e| e.key == key && e.value.as_ref().is_some_and(|v| !v.is_blank()));
    for key in policy::REQUIRED_KEYS {
        if set(key).is_some() {
            continue;
        }
        let (rule, fix) = match key {
            "oauth_at_rest_pepper" => (
                Rule::PepperRequired,
                " (cloud-secrets generate pepper --into oauth_at_rest_pepper makes one)",
            ),
            _ => (Rule::DatabaseUrlRequired, ""),
        };
        let written = entries.iter().find(|e| e.key == key);
        findings.push(Finding {
            location: written.map_or_else(|| file.clone(), |e| e.location.clone()),
            key: Some(key.to_owned()),
            rule,
            message: format!(
                "is {}: the platform requires it and does not start without it{fix}",
                if written.is_some() { "not set" } else { "missing" }
            ),
        });
    }
    findings.extend(check_values(entries, mode));
    sort(&mut findings);
    findings
}

/// The rules about each key and its value alone (not the keys that must be there): what `set`
/// checks of the values it is given.
pub fn check_values(entries: &[Entry], mode: Validation) -> Vec<Finding> {
    let mut findings = Vec::new();
    for entry in entries {
        let finding = |rule: Rule, message: String| Finding {
            location: entry.location.clone(),
            key: Some(entry.key.clone()),
            rule,
            message: format!("{message}{}", from(entry.source)),
        };
        let value = entry.value.as_ref().filter(|v| !v.is_blank()).map(|v| v.expose());
        if entry.key == "oauth_at_rest_pepper"
            && let Some(value) = value
            // The platform counts bytes.
            && value.len() < policy::PEPPER_MIN_LENGTH
        {
            findings.push(finding(
                Rule::PepperLength,
                "is shorter than 32 characters: the platform refuses it and does not start \
                 (cloud-secrets generate pepper --into oauth_at_rest_pepper makes one)"
                    .to_owned(),
            ));
        }
        if mode == Validation::Skip {
            continue;
        }
        if !is_key_case(&entry.key) {
            findings.push(Finding {
                location: entry.location.clone(),
                key: Some(entry.key.clone()),
                rule: Rule::KeyCase,
                message: "mixes cases: write keys in snake_case (or UPPER_CASE for a custom secret)"
                    .to_owned(),
            });
        }
        let Some(value) = value else { continue };
        match entry.key.as_str() {
            "database_url" | "internal_database_url" | "external_database_url" | "database_write_url" => {
                if let Some(problem) = database_url_problem(value) {
                    findings.push(finding(Rule::DatabaseUrlFormat, problem));
                }
            }
            "anthropic" if !value.starts_with("sk-ant-") => {
                findings.push(finding(Rule::AnthropicFormat, "does not start with `sk-ant-`".to_owned()))
            }
            "openai" if !value.starts_with("sk-") => {
                findings.push(finding(Rule::OpenaiFormat, "does not start with `sk-`".to_owned()))
            }
            "gemini" if !value.starts_with("AIza") => {
                findings.push(finding(Rule::GeminiFormat, "does not start with `AIza`".to_owned()))
            }
            _ => {}
        }
    }
    sort(&mut findings);
    findings
}

fn sort(findings: &mut [Finding]) {
    // The platform's rules first, in their own order; then advice, by where it is.
    let key = |f: &Finding| (!f.rule.is_platform(), f.rule.is_platform().then_some(f.rule));
    findings.sort_by(|a, b| {
        (key(a), &a.location.path, a.location.position, a.rule).cmp(&(
            key(b),
            &b.location.path,
            b.location.position,
            b.rule,
        ))
    });
}

/// The variables the platform requires that the remote would not hold once `plan` is applied:
/// neither written by it nor kept there. `whole` is true for a plan of the whole desired state;
/// a plan of some keys (`set`, `unset`) is only held to what it takes away.
pub fn required_missing_after(desired: &Desired, plan: &Plan, remote: &Remote, whole: bool) -> Vec<String> {
    policy::REQUIRED_KEYS
        .iter()
        .map(|key| policy::variable_name(key))
        .filter(|name| {
            let removed = plan.remove.contains(name) || plan.cleanup.iter().any(|c| c.name == *name);
            let present = desired.vars.contains_key(name) || (remote.vars.contains_key(name) && !removed);
            !present && (whole || removed)
        })
        .collect()
}

fn from(source: Source) -> &'static str {
    match source {
        Source::Environment => " (value from the environment)",
        Source::DotEnv => " (value from .env)",
        Source::File | Source::CommandLine | Source::PreviousVersion | Source::Derived => "",
    }
}

/// Whether a key is snake_case: a lowercase letter, then lowercase letters, digits and `_`.
pub fn is_snake_case(key: &str) -> bool {
    let mut chars = key.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Whether a key is snake_case or UPPER_CASE (custom keys in upper case exist in real projects
/// and the platform reads them).
pub fn is_key_case(key: &str) -> bool {
    let mut chars = key.chars();
    is_snake_case(key)
        || (chars.next().is_some_and(|c| c.is_ascii_uppercase())
            && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
}

/// What is wrong with a database URL, in words that do not repeat it.
fn database_url_problem(value: &str) -> Option<String> {
    let Ok(url) = url::Url::parse(value) else {
        return Some("is not a URL: expected postgres://user:password@host:5432/database".to_owned());
    };
    if !matches!(url.scheme(), "postgres" | "postgresql") {
        return Some("is not a postgres:// or postgresql:// URL".to_owned());
    }
    let missing: Vec<&str> = [
        (url.username().is_empty(), "a user"),
        (url.host_str().is_none_or(str::is_empty), "a host"),
        (url.path().trim_start_matches('/').is_empty(), "a database"),
    ]
    .into_iter()
    .filter_map(|(missing, what)| missing.then_some(what))
    .collect();
    (!missing.is_empty()).then(|| {
        format!("lacks {}: expected postgres://user:password@host:5432/database", missing.join(" and "))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::SecretValue;

    fn entry(key: &str, value: Option<&str>) -> Entry {
        Entry {
            key: key.to_owned(),
            value: value.map(SecretValue::new),
            source: Source::File,
            location: Location::named(format!("secrets.json:{key}")),
        }
    }

    fn rules(entries: &[Entry]) -> Vec<Rule> {
        check(entries, &Location::named("secrets.json"), Validation::Warn).iter().map(|f| f.rule).collect()
    }

    const GOOD_DB: &str = "postgres://app:CANARY-pw@db.internal:5432/app";
    const GOOD_PEPPER: &str = "CANARY-0123456789abcdef0123456789ab";

    #[test]
    fn a_good_state_has_no_findings() {
        let entries = [
            entry("oauth_at_rest_pepper", Some(GOOD_PEPPER)),
            entry("database_url", Some(GOOD_DB)),
            entry("jwt_secret", Some("short-is-fine-for-a-custom-secret")),
            entry("anthropic", Some("sk-ant-CANARY")),
            entry("openai", Some("sk-CANARY")),
            entry("gemini", Some("AIzaCANARY")),
            entry("moltbook_builder", Some("x")),
            entry("UPPER_CUSTOM_KEY", Some("x")),
        ];
        assert!(rules(&entries).is_empty(), "{:?}", rules(&entries));
    }

    #[test]
    fn each_rule_fires_and_never_quotes_the_value() {
        let entries = [
            entry("oauth_at_rest_pepper", Some("CANARY-short")),
            entry("database_url", Some("mysql://CANARY@h/d")),
            entry("anthropic", Some("CANARY-a")),
            entry("openai", Some("CANARY-o")),
            entry("gemini", Some("CANARY-g")),
            entry("MixedCase", Some("x")),
        ];
        let findings = check(&entries, &Location::named("secrets.json"), Validation::Strict);
        let mut got: Vec<Rule> = findings.iter().map(|f| f.rule).collect();
        got.sort();
        assert_eq!(
            got,
            [
                Rule::PepperLength,
                Rule::DatabaseUrlFormat,
                Rule::AnthropicFormat,
                Rule::OpenaiFormat,
                Rule::GeminiFormat,
                Rule::KeyCase
            ]
        );
        for f in &findings {
            assert!(!f.to_string().contains("CANARY"), "{f}");
        }
    }

    #[test]
    fn the_platform_requires_a_pepper_and_a_database_url() {
        assert_eq!(rules(&[]), [Rule::PepperRequired, Rule::DatabaseUrlRequired]);
        // Whitespace is not a value; internal_database_url does not stand in for database_url,
        // and jwt_secret is no longer a signing secret of the platform's.
        let entries = [
            entry("oauth_at_rest_pepper", Some("   ")),
            entry("internal_database_url", Some(GOOD_DB)),
            entry("jwt_secret", Some(GOOD_PEPPER)),
        ];
        assert_eq!(rules(&entries), [Rule::PepperRequired, Rule::DatabaseUrlRequired]);
        let findings = check(&entries, &Location::named("secrets.json"), Validation::Warn);
        assert!(
            findings[0]
                .to_string()
                .contains("secrets.json:oauth_at_rest_pepper: `oauth_at_rest_pepper` is not set"),
            "{}",
            findings[0]
        );
        // The platform's rules hold whatever `validation` says; advice does not.
        let skipped = check(
            &[entry("oauth_at_rest_pepper", Some("short")), entry("openai", Some("x"))],
            &Location::named("s"),
            Validation::Skip,
        );
        let got: Vec<Rule> = skipped.iter().map(|f| f.rule).collect();
        assert_eq!(got, [Rule::PepperLength, Rule::DatabaseUrlRequired]);
    }

    #[test]
    fn database_urls_need_user_host_and_database() {
        assert_eq!(database_url_problem(GOOD_DB), None);
        assert_eq!(database_url_problem("postgresql://u@h/d"), None);
        assert!(database_url_problem("postgres://h/d").unwrap().contains("a user"));
        assert!(database_url_problem("postgres://u@h").unwrap().contains("a database"));
        assert!(database_url_problem("postgres://u@h/").unwrap().contains("a database"));
        assert!(database_url_problem("not a url").unwrap().contains("is not a URL"));
        assert!(database_url_problem("https://u@h/d").unwrap().contains("postgres://"));
    }

    #[test]
    fn key_case() {
        for ok in ["a", "jwt_secret", "key2", "a_b_c", "MY_KEY", "K2"] {
            assert!(is_key_case(ok), "{ok}");
        }
        for bad in ["Jwt", "jwtSecret", "_a", "1a", "", "My_Key"] {
            assert!(!is_key_case(bad), "{bad}");
        }
    }

    #[test]
    fn required_variables_missing_after_a_plan() {
        let remote = |names: &[&str]| Remote {
            vars: names.iter().map(|n| ((*n).to_owned(), crate::remote::RemoteValue::Unreadable)).collect(),
            ..Remote::default()
        };
        let full = remote(&["OAUTH_AT_REST_PEPPER", "DATABASE_URL"]);
        let empty = Desired::default();
        let nothing = Plan::default();
        assert!(required_missing_after(&empty, &nothing, &full, true).is_empty());
        assert_eq!(
            required_missing_after(&empty, &nothing, &remote(&[]), true),
            ["OAUTH_AT_REST_PEPPER", "DATABASE_URL"]
        );
        // A plan of some keys answers only for what it removes.
        assert!(required_missing_after(&empty, &nothing, &remote(&[]), false).is_empty());
        let removing = Plan { remove: vec!["DATABASE_URL".into()], ..Plan::default() };
        assert_eq!(required_missing_after(&empty, &removing, &full, false), ["DATABASE_URL"]);
    }
}
