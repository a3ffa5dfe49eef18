//! The desired state: which variables the profile wants on the remote, with their values, and
//! which keys were skipped and why. Built by a pure function from the entries read from files.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry as MapEntry;

use crate::error::{Error, Location, Result};
use crate::plan::Remote;
use crate::policy::{self, VarClass};
use crate::secret::SecretValue;

/// Where a desired value came from. Shown in the plan; the value never is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    /// The profile's secrets.json.
    File,
    /// The `.env` file at the project root.
    DotEnv,
    /// The process environment.
    Environment,
    /// The command line (or standard input) of `set`.
    CommandLine,
    /// The remote's previous version (`rollback`).
    PreviousVersion,
    /// Computed by cloud-secrets (`SYSTEMPROMPT_CUSTOM_SECRETS`).
    Derived,
}

/// One key of the desired state, from wherever its value came.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The secrets.json key (for a key read from the environment, the key it maps from).
    pub key: String,
    /// The value; `None` when null or empty ("not set").
    pub value: Option<SecretValue>,
    /// Where the value came from.
    pub source: Source,
    /// Where the key is written (secrets.json), or which variable it was read from.
    pub location: Location,
}

/// A variable the profile wants on the remote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredVar {
    /// The secrets.json key it comes from; `None` for a derived variable.
    pub key: Option<String>,
    /// The value.
    pub value: SecretValue,
    /// Where the value came from.
    pub source: Source,
}

/// Why a key of the desired state is not synced.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum SkipReason {
    /// Null or empty: "not set". Never synced, never causes a removal.
    NotSet,
    /// Maps to a variable the hosting platform sets.
    SystemManaged,
    /// Maps to a variable that must no longer be synced.
    Stale,
    /// Maps to a variable the deploy step writes.
    DeployOwned,
    /// Maps to the variable cloud-secrets computes itself.
    Derived,
    /// `database_url` when `internal_database_url` is set.
    ShadowedBy(String),
    /// Matches `secrets.ignore` in profile.yaml.
    Ignored,
}

/// A key of the desired state that is not synced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The secrets.json key.
    pub key: String,
    /// The variable it maps to.
    pub name: String,
    /// Why it is skipped.
    pub reason: SkipReason,
    /// Where the key is written.
    pub location: Location,
}

/// The desired state of one profile.
#[derive(Debug, Clone, Default)]
pub struct Desired {
    /// Variables to have on the remote, by name.
    pub vars: BTreeMap<String, DesiredVar>,
    /// Keys not synced, sorted by variable name then key.
    pub skipped: Vec<Skipped>,
    /// Variables left alone on both sides (`secrets.ignore`).
    pub ignore: policy::Ignore,
}

impl Desired {
    /// Builds the desired state from secrets.json entries: maps keys to variable names, skips
    /// what must not be synced, refuses two keys that map to one variable, and derives
    /// `SYSTEMPROMPT_CUSTOM_SECRETS`.
    ///
    /// The remote is consulted for one thing only: a custom key that is not set here but whose
    /// variable the remote holds is kept there, so it stays listed in the derived variable.
    pub fn from_entries(entries: Vec<Entry>, remote: &Remote) -> Result<Self> {
        Self::from_entries_ignoring(entries, remote, policy::Ignore::default())
    }

    /// [`Desired::from_entries`], leaving alone the variables `ignore` matches.
    pub fn from_entries_ignoring(
        entries: Vec<Entry>,
        remote: &Remote,
        ignore: policy::Ignore,
    ) -> Result<Self> {
        let entries: Vec<Entry> =
            entries.into_iter().map(|e| Entry { value: e.value.filter(|v| !v.is_empty()), ..e }).collect();
        let internal_db_set =
            entries.iter().any(|e| e.key == policy::INTERNAL_DATABASE_URL_KEY && e.value.is_some());
        let mut claimed: BTreeMap<String, (String, Location)> = BTreeMap::new();
        let mut desired = Desired { ignore, ..Desired::default() };

        for entry in entries {
            let name = policy::variable_name(&entry.key);
            let shadowed = entry.key == "database_url" && internal_db_set;
            // An unset internal_database_url leaves DATABASE_URL to database_url.
            let yields = entry.key == policy::INTERNAL_DATABASE_URL_KEY && entry.value.is_none();
            if !shadowed && !yields {
                match claimed.entry(name.clone()) {
                    MapEntry::Occupied(first) => {
                        let (first_key, first_at) = first.get();
                        let (line, column) = first_at.position.unwrap_or((0, 0));
                        return Err(Error::input(
                            entry.location,
                            format!(
                                "`{}` and `{first_key}` (at {line}:{column}) both map to the variable {name}",
                                entry.key
                            ),
                            "keep only one of the two keys",
                        ));
                    }
                    MapEntry::Vacant(slot) => {
                        slot.insert((entry.key.clone(), entry.location.clone()));
                    }
                }
            }

            let reason = if desired.ignore.matches(&name) {
                Some(SkipReason::Ignored)
            } else if shadowed {
                Some(SkipReason::ShadowedBy(policy::INTERNAL_DATABASE_URL_KEY.to_owned()))
            } else if name == policy::CUSTOM_SECRETS_VAR {
                Some(SkipReason::Derived)
            } else {
                match policy::classify(&name) {
                    VarClass::SystemManaged => Some(SkipReason::SystemManaged),
                    VarClass::Stale => Some(SkipReason::Stale),
                    VarClass::DeployOwned => Some(SkipReason::DeployOwned),
                    VarClass::Managed if entry.value.is_none() => Some(SkipReason::NotSet),
                    VarClass::Managed => None,
                }
            };
            match (reason, entry.value) {
                (None, Some(value)) => {
                    let var = DesiredVar { key: Some(entry.key), value, source: entry.source };
                    desired.vars.insert(name, var);
                }
                (reason, _) => desired.skipped.push(Skipped {
                    key: entry.key,
                    name,
                    reason: reason.unwrap_or(SkipReason::NotSet),
                    location: entry.location,
                }),
            }
        }

        let listed = desired.listed_names(remote);
        desired.derive_custom_secrets(listed.iter().map(String::as_str));
        desired.skipped.sort_by(|a, b| (&a.name, &a.key).cmp(&(&b.name, &b.key)));
        Ok(desired)
    }

    /// The variables this desired state keeps on `remote`: those it syncs, and those it leaves
    /// in place because their key is not set here. The custom-secrets list names the custom ones.
    pub fn listed_names(&self, remote: &Remote) -> Vec<String> {
        let kept = self.unset_names().filter(|name| remote.vars.contains_key(*name)).map(str::to_owned);
        self.vars.keys().filter(|n| *n != policy::CUSTOM_SECRETS_VAR).cloned().chain(kept).collect()
    }

    /// The desired state of `set`: these variables, and the custom-secrets list as it must read
    /// with them added to `listed` (the variables the profile keeps on the remote).
    /// The list is left out of it when no custom variable is set.
    pub fn for_set(vars: Vec<(String, DesiredVar)>, listed: &[String]) -> Self {
        let mut desired = Desired::default();
        desired.vars.extend(vars);
        let set: Vec<String> = desired.vars.keys().cloned().collect();
        if touches_custom_list(&set) {
            desired.derive_custom_secrets(listed.iter().chain(&set).map(String::as_str));
        }
        desired
    }

    /// The desired state of `unset`: only the custom-secrets list, as it must read once `names`
    /// are gone from `listed`.
    /// Nothing, when no custom variable is removed.
    pub fn for_unset(names: &[String], listed: &[String]) -> Self {
        let mut desired = Desired::default();
        if touches_custom_list(names) {
            desired.derive_custom_secrets(
                listed.iter().filter(|name| !names.contains(name)).map(String::as_str),
            );
        }
        desired
    }

    /// Sets `SYSTEMPROMPT_CUSTOM_SECRETS` to the sorted, comma-joined non-standard names among
    /// `names`, or leaves it out when there are none.
    fn derive_custom_secrets<'a>(&mut self, names: impl Iterator<Item = &'a str>) {
        if self.ignore.matches(policy::CUSTOM_SECRETS_VAR) {
            return;
        }
        let mut custom: Vec<&str> = names
            .filter(|name| !policy::is_standard(name) && *name != policy::CUSTOM_SECRETS_VAR)
            .filter(|name| !self.ignore.matches(name))
            .collect();
        custom.sort_unstable();
        custom.dedup();
        if custom.is_empty() {
            self.vars.remove(policy::CUSTOM_SECRETS_VAR);
        } else {
            let value = SecretValue::new(custom.join(","));
            let var = DesiredVar { key: None, value, source: Source::Derived };
            self.vars.insert(policy::CUSTOM_SECRETS_VAR.to_owned(), var);
        }
    }

    /// A copy of `remote` restricted to the variables this desired state is about (its own, and
    /// `extra`), so that a plan over it concerns nothing else.
    pub fn scope_of(&self, remote: &Remote, extra: &[String]) -> Remote {
        let vars = remote
            .vars
            .iter()
            .filter(|(name, _)| self.vars.contains_key(*name) || extra.contains(name))
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        Remote { vars, ..remote.clone() }
    }

    /// Variable names of keys that are present but not set; such variables are never removed.
    pub fn unset_names(&self) -> impl Iterator<Item = &str> {
        self.skipped.iter().filter(|s| s.reason == SkipReason::NotSet).map(|s| s.name.as_str())
    }
}

/// Whether setting or removing `names` changes the custom-secrets list.
pub fn touches_custom_list(names: &[String]) -> bool {
    names.iter().any(|name| !policy::is_standard(name) && name != policy::CUSTOM_SECRETS_VAR)
}

/// The managed variables on the remote (those a profile owns).
pub fn managed_names(remote: &Remote) -> Vec<String> {
    remote.vars.keys().filter(|name| policy::classify(name) == VarClass::Managed).cloned().collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn entries(pairs: &[(&str, Option<&str>)]) -> Vec<Entry> {
        pairs
            .iter()
            .enumerate()
            .map(|(i, (k, v))| Entry {
                key: (*k).to_owned(),
                value: v.map(SecretValue::new),
                source: Source::File,
                location: Location::at(Path::new("secrets.json"), i + 2, 3),
            })
            .collect()
    }

    fn build(pairs: &[(&str, Option<&str>)]) -> Result<Desired> {
        Desired::from_entries(entries(pairs), &Remote::default())
    }

    fn value(d: &Desired, name: &str) -> Option<String> {
        d.vars.get(name).map(|v| v.value.expose().to_owned())
    }

    #[test]
    fn maps_and_derives_custom_secrets_sorted() {
        let d = build(&[("zeta_key", Some("z")), ("openai", Some("o")), ("jwt_secret", Some("j"))]).unwrap();
        let names: Vec<_> = d.vars.keys().cloned().collect();
        assert_eq!(names, ["JWT_SECRET", "OPENAI_API_KEY", "SYSTEMPROMPT_CUSTOM_SECRETS", "ZETA_KEY"]);
        assert_eq!(value(&d, "SYSTEMPROMPT_CUSTOM_SECRETS").as_deref(), Some("JWT_SECRET,ZETA_KEY"));
        assert_eq!(d.vars["SYSTEMPROMPT_CUSTOM_SECRETS"].source, Source::Derived);
    }

    #[test]
    fn a_custom_key_not_set_here_but_kept_on_the_remote_stays_listed() {
        let vars = [("JWT_SECRET", "j"), ("OTHER", "o")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), SecretValue::new(v)));
        let remote = Remote::with_values(vars.collect(), None);
        let pairs = [("jwt_secret", None), ("zeta", Some("z")), ("unknown", None)];
        let d = Desired::from_entries(entries(&pairs), &remote).unwrap();
        assert_eq!(value(&d, "SYSTEMPROMPT_CUSTOM_SECRETS").as_deref(), Some("JWT_SECRET,ZETA"));
        let only_kept = Desired::from_entries(entries(&[("jwt_secret", None)]), &remote).unwrap();
        assert_eq!(value(&only_kept, "SYSTEMPROMPT_CUSTOM_SECRETS").as_deref(), Some("JWT_SECRET"));
    }

    fn names_only(names: &[&str]) -> Remote {
        let vars = names.iter().map(|n| ((*n).to_owned(), crate::plan::RemoteValue::Unreadable)).collect();
        Remote { vars, ..Remote::default() }
    }

    #[test]
    fn set_and_unset_keep_the_custom_list_true_to_the_remote() {
        let remote = names_only(&[
            "OLD_ONE",
            "JWT_SECRET",
            "OPENAI_API_KEY",
            "FLY_APP_NAME",
            "SIGNING_KEY_PEM",
            "SYSTEMPROMPT_CUSTOM_SECRETS",
        ]);
        let var =
            |v: &str| DesiredVar { key: Some("k".into()), value: SecretValue::new(v), source: Source::File };
        let listed = managed_names(&remote);
        assert_eq!(listed, ["JWT_SECRET", "OLD_ONE", "OPENAI_API_KEY", "SYSTEMPROMPT_CUSTOM_SECRETS"]);
        let d =
            Desired::for_set(vec![("NEW_ONE".into(), var("n")), ("GITHUB_TOKEN".into(), var("g"))], &listed);
        assert_eq!(value(&d, "SYSTEMPROMPT_CUSTOM_SECRETS").as_deref(), Some("JWT_SECRET,NEW_ONE,OLD_ONE"));
        let d = Desired::for_unset(&["OLD_ONE".into()], &listed);
        assert_eq!(value(&d, "SYSTEMPROMPT_CUSTOM_SECRETS").as_deref(), Some("JWT_SECRET"));
        let d = Desired::for_unset(&["OLD_ONE".into(), "JWT_SECRET".into()], &listed);
        assert!(d.vars.is_empty(), "no custom names left: the list goes");
        let standard_only = Desired::for_set(vec![("GITHUB_TOKEN".into(), var("g"))], &listed);
        assert_eq!(
            standard_only.vars.keys().collect::<Vec<_>>(),
            ["GITHUB_TOKEN"],
            "the list is not touched"
        );
        let scoped = d.scope_of(&remote, &["OLD_ONE".into(), "SYSTEMPROMPT_CUSTOM_SECRETS".into()]);
        assert_eq!(scoped.vars.keys().collect::<Vec<_>>(), ["OLD_ONE", "SYSTEMPROMPT_CUSTOM_SECRETS"]);
    }

    #[test]
    fn no_custom_secrets_variable_when_all_are_standard() {
        let d = build(&[("openai", Some("o")), ("github", Some("g"))]).unwrap();
        assert!(!d.vars.contains_key("SYSTEMPROMPT_CUSTOM_SECRETS"));
    }

    #[test]
    fn empty_and_null_are_not_set() {
        let d = build(&[("openai", None), ("gemini", Some("g"))]).unwrap();
        let skipped: Vec<_> =
            d.skipped.iter().map(|s| (s.key.as_str(), s.name.as_str(), &s.reason)).collect();
        assert_eq!(skipped, [("openai", "OPENAI_API_KEY", &SkipReason::NotSet)]);
        assert_eq!(d.skipped[0].location.position, Some((2, 3)));
        assert_eq!(d.unset_names().collect::<Vec<_>>(), ["OPENAI_API_KEY"]);
    }

    #[test]
    fn internal_database_url_wins_over_database_url() {
        let d =
            build(&[("database_url", Some("public")), ("internal_database_url", Some("internal"))]).unwrap();
        assert_eq!(value(&d, "DATABASE_URL").as_deref(), Some("internal"));
        assert_eq!(d.skipped[0].key, "database_url");
        assert_eq!(d.skipped[0].reason, SkipReason::ShadowedBy("internal_database_url".into()));
    }

    #[test]
    fn unset_internal_database_url_leaves_database_url_in_charge() {
        let d = build(&[("internal_database_url", Some("")), ("database_url", Some("public"))]).unwrap();
        assert_eq!(value(&d, "DATABASE_URL").as_deref(), Some("public"));
    }

    #[test]
    fn two_keys_for_one_variable_is_an_error() {
        let e = build(&[("openai", Some("a")), ("openai_api_key", Some("b"))]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "secrets.json:3:3: `openai_api_key` and `openai` (at 2:3) both map to the variable OPENAI_API_KEY"
        );
    }

    #[test]
    fn platform_variables_are_skipped_not_synced() {
        let d = build(&[
            ("fly_app_name", Some("a")),
            ("systemprompt_api_url", Some("b")),
            ("signing_key_pem", Some("c")),
            ("systemprompt_custom_secrets", Some("d")),
        ])
        .unwrap();
        assert!(d.vars.is_empty());
        let reasons: Vec<_> = d.skipped.iter().map(|s| s.reason.clone()).collect();
        assert_eq!(
            reasons,
            [SkipReason::SystemManaged, SkipReason::DeployOwned, SkipReason::Stale, SkipReason::Derived]
        );
    }
}
