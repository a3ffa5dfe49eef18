//! The platform's rules for a desired state, checked offline. A finding names where the key is,
//! the key and the rule; never the value.

use std::fmt;

use crate::desired::{Entry, Source};
use crate::error::Location;
use crate::project::Validation;

/// A rule of the desired state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rule {
    /// A database URL is set (`database_url` or `internal_database_url`).
    DatabaseUrlRequired,
    /// A signing secret is set (`jwt_secret` or `oauth_at_rest_pepper`).
    SigningSecretRequired,
    /// A signing secret has at least 32 characters.
    SigningSecretLength,
    /// A database URL is `postgres://` or `postgresql://` with user, host and database.
    DatabaseUrlFormat,
    /// `anthropic` starts `sk-ant-`.
    AnthropicFormat,
    /// `openai` starts `sk-`.
    OpenaiFormat,
    /// `gemini` starts `AIza`.
    GeminiFormat,
    /// Keys are snake_case.
    SnakeCase,
}

impl Rule {
    /// The rule's short name, shown in findings.
    pub fn id(self) -> &'static str {
        match self {
            Rule::DatabaseUrlRequired => "database-url-required",
            Rule::SigningSecretRequired => "signing-secret-required",
            Rule::SigningSecretLength => "signing-secret-length",
            Rule::DatabaseUrlFormat => "database-url-format",
            Rule::AnthropicFormat => "anthropic-format",
            Rule::OpenaiFormat => "openai-format",
            Rule::GeminiFormat => "gemini-format",
            Rule::SnakeCase => "snake-case-key",
        }
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
/// that is missing. With [`Validation::Skip`] nothing is checked.
pub fn check(entries: &[Entry], file: &Location, mode: Validation) -> Vec<Finding> {
    if mode == Validation::Skip {
        return Vec::new();
    }
    let mut findings = Vec::new();
    let set =
        |key: &str| entries.iter().find(|e| e.key == key && e.value.as_ref().is_some_and(|v| !v.is_empty()));

    if set("database_url").is_none() && set("internal_database_url").is_none() {
        findings.push(Finding {
            location: file.clone(),
            key: None,
            rule: Rule::DatabaseUrlRequired,
            message: "no database URL is set: set `database_url` (or `internal_database_url`)".to_owned(),
        });
    }
    if set("jwt_secret").is_none() && set("oauth_at_rest_pepper").is_none() {
        findings.push(Finding {
            location: file.clone(),
            key: None,
            rule: Rule::SigningSecretRequired,
            message: "no signing secret is set: set `jwt_secret` or `oauth_at_rest_pepper` \
                      (cloud-secrets generate jwt-secret makes one)"
                .to_owned(),
        });
    }

    findings.extend(check_values(entries, mode));
    findings.sort_by(|a, b| {
        (&a.location.path, a.location.position, a.rule).cmp(&(&b.location.path, b.location.position, b.rule))
    });
    findings
}

/// The rules about each key and its value alone (not the keys that must be there): what `set`
/// checks of the values it is given.
pub fn check_values(entries: &[Entry], mode: Validation) -> Vec<Finding> {
    let mut findings = Vec::new();
    if mode == Validation::Skip {
        return findings;
    }
    for entry in entries {
        let finding = |rule: Rule, message: String| Finding {
            location: entry.location.clone(),
            key: Some(entry.key.clone()),
            rule,
            message: format!("{message}{}", from(entry.source)),
        };
        if !is_snake_case(&entry.key) {
            findings.push(Finding {
                location: entry.location.clone(),
                key: Some(entry.key.clone()),
                rule: Rule::SnakeCase,
                message: "is not snake_case (lowercase letters, digits and underscores)".to_owned(),
            });
        }
        let Some(value) = entry.value.as_ref().filter(|v| !v.is_empty()) else { continue };
        let value = value.expose();
        match entry.key.as_str() {
            "jwt_secret" | "oauth_at_rest_pepper" if value.chars().count() < 32 => findings.push(finding(
                Rule::SigningSecretLength,
                "is shorter than 32 characters (cloud-secrets generate jwt-secret makes a good one)"
                    .to_owned(),
            )),
            "database_url" | "internal_database_url" => {
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
    findings.sort_by(|a, b| {
        (&a.location.path, a.location.position, a.rule).cmp(&(&b.location.path, b.location.position, b.rule))
    });
    findings
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
    const GOOD_JWT: &str = "CANARY-0123456789abcdef0123456789ab";

    #[test]
    fn a_good_state_has_no_findings() {
        let entries = [
            entry("database_url", Some(GOOD_DB)),
            entry("jwt_secret", Some(GOOD_JWT)),
            entry("anthropic", Some("sk-ant-CANARY")),
            entry("openai", Some("sk-CANARY")),
            entry("gemini", Some("AIzaCANARY")),
            entry("moltbook_builder", Some("x")),
        ];
        assert!(rules(&entries).is_empty(), "{:?}", rules(&entries));
        let alternative =
            [entry("internal_database_url", Some(GOOD_DB)), entry("oauth_at_rest_pepper", Some(GOOD_JWT))];
        assert!(rules(&alternative).is_empty());
    }

    #[test]
    fn each_rule_fires_and_never_quotes_the_value() {
        let entries = [
            entry("database_url", Some("mysql://CANARY@h/d")),
            entry("jwt_secret", Some("CANARY-short")),
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
                Rule::SigningSecretLength,
                Rule::DatabaseUrlFormat,
                Rule::AnthropicFormat,
                Rule::OpenaiFormat,
                Rule::GeminiFormat,
                Rule::SnakeCase
            ]
        );
        for f in &findings {
            assert!(!f.to_string().contains("CANARY"), "{f}");
        }
    }

    #[test]
    fn required_keys() {
        assert_eq!(rules(&[]), [Rule::DatabaseUrlRequired, Rule::SigningSecretRequired]);
        assert_eq!(
            rules(&[entry("database_url", None), entry("jwt_secret", Some(""))]),
            [Rule::DatabaseUrlRequired, Rule::SigningSecretRequired]
        );
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
    fn skip_checks_nothing() {
        assert!(check(&[], &Location::named("x"), Validation::Skip).is_empty());
    }

    #[test]
    fn snake_case() {
        for ok in ["a", "jwt_secret", "key2", "a_b_c"] {
            assert!(is_snake_case(ok), "{ok}");
        }
        for bad in ["A", "Jwt", "jwtSecret", "_a", "1a", ""] {
            assert!(!is_snake_case(bad), "{bad}");
        }
    }
}
