//! Incoming variables (a dotenv file's, a remote's) mapped back to the secrets.json keys they
//! come from, with the exact inverse of the key-to-variable rule, and compared with the file:
//! [`Changes`], names only. Pure; what `import` and `pull` plan.

use std::collections::BTreeMap;

use crate::policy::{self, INTERNAL_DATABASE_URL_KEY, Ignore, VarClass};
use crate::secret::SecretValue;
use crate::secrets_file::FileEntry;

/// Why an incoming variable is not written into secrets.json.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Skip {
    /// Set by the hosting platform.
    SystemManaged,
    /// Synced by mistake once; no longer used.
    Stale,
    /// Written by the platform's deploy step.
    DeployOwned,
    /// `SYSTEMPROMPT_CUSTOM_SECRETS`, which cloud-secrets computes from the other keys.
    Derived,
    /// Not an UPPER_CASE name: no key maps to it.
    NotAVariable,
    /// Matches `ignore` in cloud-secrets.yaml.
    Ignored,
    /// Empty or blank: not set.
    NotSet,
}

/// What happens to one key of secrets.json.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Action {
    /// The key is absent or not set: it gets the value.
    Add,
    /// The key holds another value: it is replaced.
    Change,
    /// The key holds this value already.
    Unchanged,
}

/// One key of secrets.json that incoming variables provide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct KeyChange {
    /// The key, as secrets.json spells it (or will).
    pub key: String,
    /// The variables it comes from, by name; they agree on one value.
    pub names: Vec<String>,
    /// What happens to it.
    pub action: Action,
}

/// The changes an import or a pull makes to secrets.json: names only, never a value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Changes {
    /// Each key the incoming variables provide, ordered by key.
    pub keys: Vec<KeyChange>,
    /// The incoming variables not written, with why, ordered by name.
    pub skipped: Vec<(String, Skip)>,
}

impl Changes {
    /// How many keys get `action`.
    pub(super) fn count(&self, action: Action) -> usize {
        self.keys.iter().filter(|k| k.action == action).count()
    }

    /// True when nothing is added or changed.
    pub(super) fn is_empty(&self) -> bool {
        self.keys.iter().all(|k| k.action == Action::Unchanged)
    }

    /// Each key added or changed, with its value from `incoming`.
    pub(super) fn updates<'a>(
        &self,
        incoming: &'a BTreeMap<String, SecretValue>,
    ) -> Vec<(String, &'a SecretValue)> {
        self.keys
            .iter()
            .filter(|k| k.action != Action::Unchanged)
            .filter_map(|k| incoming.get(&k.names[0]).map(|value| (k.key.clone(), value)))
            .collect()
    }
}

/// Two incoming variables that give one key different values.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Conflict {
    /// The key.
    pub key: String,
    /// The first variable giving it a value, and one giving it another.
    pub names: [String; 2],
}

/// Maps incoming variables back to secrets.json keys and compares them with the file's
/// `existing` entries. A variable goes to the key the file already has for it (an UPPER_CASE key,
/// `internal_database_url` providing DATABASE_URL), else to the key it is written from; names
/// that are written from one key (GITHUB_TOKEN and GITHUB) must agree. Pure.
pub(super) fn changes(
    incoming: &BTreeMap<String, SecretValue>,
    existing: &[FileEntry],
    ignore: &Ignore,
) -> std::result::Result<Changes, Conflict> {
    let mut skipped = Vec::new();
    let mut taken: Vec<(&str, &SecretValue)> = Vec::new();
    for (name, value) in incoming {
        match skip(name, value, ignore) {
            Some(why) => skipped.push((name.clone(), why)),
            None => taken.push((name, value)),
        }
    }
    // As the deploy step reads secrets.json: DATABASE_URL comes from internal_database_url when
    // that key is set, in the file or by this import.
    let internal = value_in(existing, INTERNAL_DATABASE_URL_KEY).is_some()
        || taken.iter().any(|(name, _)| policy::key_for(name) == INTERNAL_DATABASE_URL_KEY);
    let mut by_key: BTreeMap<String, Vec<(&str, &SecretValue)>> = BTreeMap::new();
    for (name, value) in taken {
        by_key.entry(key_in_file(existing, name, internal)).or_default().push((name, value));
    }
    let mut keys = Vec::with_capacity(by_key.len());
    for (key, given) in by_key {
        let (first, value) = given[0];
        if let Some((other, _)) = given.iter().find(|(_, v)| *v != value) {
            return Err(Conflict { key, names: [first.to_owned(), (*other).to_owned()] });
        }
        let action = match value_in(existing, &key) {
            None => Action::Add,
            Some(current) if current == value => Action::Unchanged,
            Some(_) => Action::Change,
        };
        keys.push(KeyChange { key, names: given.iter().map(|(n, _)| (*n).to_owned()).collect(), action });
    }
    Ok(Changes { keys, skipped })
}

/// Why `name` is not written into secrets.json, if it is not.
fn skip(name: &str, value: &SecretValue, ignore: &Ignore) -> Option<Skip> {
    let upper_case = name.starts_with(|c: char| c.is_ascii_uppercase())
        && name.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    Some(match policy::classify(name) {
        VarClass::SystemManaged => Skip::SystemManaged,
        VarClass::Stale => Skip::Stale,
        VarClass::DeployOwned => Skip::DeployOwned,
        VarClass::Managed if name == policy::CUSTOM_SECRETS_VAR => Skip::Derived,
        VarClass::Managed if !upper_case => Skip::NotAVariable,
        VarClass::Managed if ignore.matches(name) => Skip::Ignored,
        VarClass::Managed if value.is_blank() => Skip::NotSet,
        VarClass::Managed => return None,
    })
}

/// The secrets.json key `name` goes to, as `set --save` chooses it: `internal_database_url` for
/// DATABASE_URL when that key is set, else the file's key for the name, else the key it maps
/// back to.
fn key_in_file(existing: &[FileEntry], name: &str, internal: bool) -> String {
    if name == "DATABASE_URL" && internal {
        return INTERNAL_DATABASE_URL_KEY.to_owned();
    }
    existing
        .iter()
        .find(|e| policy::variable_name(&e.key) == name && e.key != INTERNAL_DATABASE_URL_KEY)
        .map_or_else(|| policy::key_for(name), |e| e.key.clone())
}

/// The value of `key` in the file, when set (not null, empty or blank).
fn value_in<'a>(existing: &'a [FileEntry], key: &str) -> Option<&'a SecretValue> {
    existing.iter().find(|e| e.key == key).and_then(|e| e.value.as_ref()).filter(|v| !v.is_blank())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Location;

    fn vars(list: &[(&str, &str)]) -> BTreeMap<String, SecretValue> {
        list.iter().map(|(n, v)| ((*n).to_owned(), SecretValue::new(*v))).collect()
    }

    fn file(list: &[(&str, Option<&str>)]) -> Vec<FileEntry> {
        let entry = |(key, value): &(&str, Option<&str>)| FileEntry {
            key: (*key).to_owned(),
            value: value.map(SecretValue::new),
            location: Location::named("secrets.json"),
            value_span: 0..0,
        };
        list.iter().map(entry).collect()
    }

    fn keys(changes: &Changes) -> Vec<(&str, Vec<&str>, Action)> {
        changes
            .keys
            .iter()
            .map(|k| (k.key.as_str(), k.names.iter().map(String::as_str).collect(), k.action))
            .collect()
    }

    #[test]
    fn every_name_a_key_is_written_under_maps_back_to_that_key() {
        let custom = ["jwt_secret", "moltbook_builder"];
        for key in policy::KNOWN_KEYS.iter().chain(&custom) {
            let names = policy::key_names(key);
            let incoming: BTreeMap<String, SecretValue> =
                names.written().into_iter().map(|n| (n, SecretValue::new("v"))).collect();
            let changes = changes(&incoming, &[], &Ignore::default()).unwrap();
            if policy::classify(&names.runtime) == VarClass::DeployOwned {
                assert_eq!(changes.skipped, [(names.runtime.clone(), Skip::DeployOwned)], "{key}");
                continue;
            }
            assert_eq!(changes.keys.len(), 1, "{key}: {changes:?}");
            assert_eq!(changes.keys[0].key, *key);
            assert_eq!(changes.keys[0].names.len(), incoming.len(), "{key}");
        }
    }

    #[test]
    fn names_of_one_key_must_agree() {
        let none = Ignore::default();
        let agreeing =
            vars(&[("GITHUB", "g"), ("GITHUB_TOKEN", "g"), ("KIMI_API_KEY", "m"), ("MOONSHOT", "m")]);
        let found = changes(&agreeing, &[], &none).unwrap();
        assert_eq!(
            keys(&found),
            [
                ("github", vec!["GITHUB", "GITHUB_TOKEN"], Action::Add),
                ("moonshot", vec!["KIMI_API_KEY", "MOONSHOT"], Action::Add)
            ]
        );
        let differing = vars(&[("GITHUB", "a"), ("GITHUB_TOKEN", "b")]);
        let conflict = changes(&differing, &[], &none).unwrap_err();
        assert_eq!(
            conflict,
            Conflict { key: "github".into(), names: ["GITHUB".into(), "GITHUB_TOKEN".into()] }
        );
    }

    #[test]
    fn database_url_comes_from_internal_database_url_when_that_key_is_set() {
        let none = Ignore::default();
        let both = vars(&[("DATABASE_URL", "i"), ("INTERNAL_DATABASE_URL", "i")]);
        let found = changes(&both, &file(&[("database_url", Some("d"))]), &none).unwrap();
        assert_eq!(
            keys(&found),
            [("internal_database_url", vec!["DATABASE_URL", "INTERNAL_DATABASE_URL"], Action::Add)]
        );
        let differing = vars(&[("DATABASE_URL", "d"), ("INTERNAL_DATABASE_URL", "i")]);
        assert_eq!(changes(&differing, &[], &none).unwrap_err().key, "internal_database_url");
        let alone = vars(&[("DATABASE_URL", "d")]);
        let set = file(&[("database_url", Some("d")), ("internal_database_url", Some("i"))]);
        assert_eq!(keys(&changes(&alone, &set, &none).unwrap())[0].0, "internal_database_url");
        let unset = file(&[("database_url", Some("d")), ("internal_database_url", Some(" "))]);
        assert_eq!(
            keys(&changes(&alone, &unset, &none).unwrap())[0],
            ("database_url", vec!["DATABASE_URL"], Action::Unchanged)
        );
    }

    #[test]
    fn actions_follow_the_file_and_its_own_spelling_of_a_key() {
        let incoming = vars(&[
            ("ANTHROPIC_API_KEY", "a"),
            ("JWT_SECRET", "j"),
            ("OPENAI_API_KEY", "new"),
            ("GEMINI_API_KEY", "g"),
        ]);
        let existing = file(&[("JWT_SECRET", Some("j")), ("openai", Some("old")), ("gemini", None)]);
        let found = changes(&incoming, &existing, &Ignore::default()).unwrap();
        assert_eq!(
            keys(&found),
            [
                ("JWT_SECRET", vec!["JWT_SECRET"], Action::Unchanged),
                ("anthropic", vec!["ANTHROPIC_API_KEY"], Action::Add),
                ("gemini", vec!["GEMINI_API_KEY"], Action::Add),
                ("openai", vec!["OPENAI_API_KEY"], Action::Change),
            ]
        );
        let updates = found.updates(&incoming);
        let written: Vec<&str> = updates.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(written, ["anthropic", "gemini", "openai"]);
        assert!(!found.is_empty());
        assert!(changes(&vars(&[("JWT_SECRET", "j")]), &existing, &Ignore::default()).unwrap().is_empty());
    }

    #[test]
    fn what_is_not_the_profile_s_is_skipped_with_why() {
        let incoming = vars(&[
            ("FLY_APP_NAME", "x"),
            ("SYSTEMPROMPT_API_URL", "x"),
            ("SIGNING_KEY_PEM", "x"),
            ("SYSTEMPROMPT_CUSTOM_SECRETS", "X"),
            ("lower_case", "x"),
            ("LEGACY_TOKEN", "x"),
            ("BLANK", "  "),
        ]);
        let ignore = Ignore::new(&["LEGACY_*".into()]).unwrap();
        let found = changes(&incoming, &[], &ignore).unwrap();
        assert!(found.keys.is_empty());
        let skipped: BTreeMap<&str, Skip> = found.skipped.iter().map(|(n, s)| (n.as_str(), *s)).collect();
        assert_eq!(skipped["FLY_APP_NAME"], Skip::SystemManaged);
        assert_eq!(skipped["SYSTEMPROMPT_API_URL"], Skip::Stale);
        assert_eq!(skipped["SIGNING_KEY_PEM"], Skip::DeployOwned);
        assert_eq!(skipped["SYSTEMPROMPT_CUSTOM_SECRETS"], Skip::Derived);
        assert_eq!(skipped["lower_case"], Skip::NotAVariable);
        assert_eq!(skipped["LEGACY_TOKEN"], Skip::Ignored);
        assert_eq!(skipped["BLANK"], Skip::NotSet);
    }
}
