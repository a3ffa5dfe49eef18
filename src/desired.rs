//! The desired state: which variables the profile wants on the remote, with their values, and
//! which keys were skipped and why. Built by a pure function from the entries read from files.

use std::collections::HashSet;

use crate::error::{Error, Location, Result};
use crate::policy::{self, KeyNames, VarClass};
use crate::remote::{Remote, RemoteValue};
use crate::secret::{Digester, SecretValue};
use crate::sorted::{self, Paired};

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
    /// The variable it maps to (the name the runtime reads).
    pub name: String,
    /// Other names the key's value is written under (the deploy step's), when it differs.
    pub aliases: Vec<String>,
    /// Why it is skipped.
    pub reason: SkipReason,
    /// Where the key is written.
    pub location: Location,
}

/// The desired state of one profile.
#[derive(Debug, Clone, Default)]
pub struct Desired {
    /// Variables to have on the remote, by name.
    pub vars: sorted::Map<DesiredVar>,
    /// Keys not synced, sorted by variable name then key.
    pub skipped: Vec<Skipped>,
    /// Variables left alone on both sides (`ignore` in cloud-secrets.yaml).
    pub ignore: policy::Ignore,
    /// True when the desired state comes from the environment alone (no secrets file): it names
    /// only what the environment sets, so a managed variable it does not name is kept on the
    /// remote, never removed.
    pub partial: bool,
    /// The names `SYSTEMPROMPT_CUSTOM_SECRETS` lists for this desired state, sorted: the deploy
    /// step's names of the keys it keeps on the remote, outside the standard set.
    pub listed: Vec<String>,
}

/// The desired state but for what the remote decides: the variables it keeps that the
/// custom-secrets list must go on naming.
#[derive(Debug)]
pub struct Prepared {
    desired: Desired,
    /// The names listed so far, from the entries.
    listed: Vec<String>,
}

/// [`Prepared::foresee`] asks whether the remote has been read after each run of this many
/// digests.
const FORESEEN_IN_RUNS_OF: usize = 1024;

/// The desired values digested under the salt a remote is expected to list, made while its
/// listing is on its way (see [`Prepared::foresee`]): the planner compares them with
/// the listing's digests when it brings that salt, and passes them over for any other. They are
/// HMACs of values, like the listing's own digests: never shown.
pub struct Foreseen {
    salt: Vec<u8>,
    /// Variable names, sorted, with the digest of the value each has in the desired state.
    tags: Vec<(String, [u8; 32])>,
}

impl Foreseen {
    /// The digests `tags` (sorted by name) of values, under `salt`.
    pub fn new(salt: Vec<u8>, tags: Vec<(String, [u8; 32])>) -> Self {
        Self { salt, tags }
    }

    /// The digests by name, sorted, if they were made under `salt`; none otherwise.
    pub fn under(&self, salt: Option<&[u8]>) -> &[(String, [u8; 32])] {
        if salt == Some(self.salt.as_slice()) { &self.tags } else { &[] }
    }

    /// The digests, by name.
    #[cfg(test)]
    pub(crate) fn tags(&self) -> &[(String, [u8; 32])] {
        &self.tags
    }
}

impl std::fmt::Debug for Foreseen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Foreseen({} digests)", self.tags.len())
    }
}

impl Prepared {
    /// The digests under `salt` of the values this desired state will have, for a plan to
    /// compare with a listing's digests before the listing has arrived. [`Prepared::finish`]
    /// changes no value but that of the custom-secrets list, which it derives from the remote:
    /// that one is left out. Digested on this thread: it is made while the remote is read.
    ///
    /// Digesting stops early when `arrived` says the remote has been read (it is asked every
    /// 1,024 variables): the digests made so far are those of the first names, and the planner
    /// digests the rest, on two threads, rather than wait for this one.
    pub fn foresee(&self, salt: &[u8], arrived: impl Fn() -> bool) -> Foreseen {
        let digester = Digester::new(salt);
        let vars = (self.desired.vars.iter()).filter(|(name, _)| *name != policy::CUSTOM_SECRETS_VAR);
        let mut tags = Vec::with_capacity(self.desired.vars.len());
        for (done, (name, var)) in vars.enumerate() {
            if done % FORESEEN_IN_RUNS_OF == 0 && done > 0 && arrived() {
                break;
            }
            tags.push((name.clone(), digester.tag(&var.value)));
        }
        Foreseen::new(salt.to_vec(), tags)
    }

    /// The desired state against `remote`. Variables kept on the remote stay listed: those whose
    /// key is not set here, and, for a partial desired state, every managed variable it does not
    /// name.
    pub fn finish(self, remote: &Remote) -> Desired {
        let Prepared { mut desired, mut listed } = self;
        let kept: Vec<String> = if desired.partial {
            let unset: HashSet<&str, foldhash::fast::RandomState> = desired.unset_names().collect();
            sorted::join(&desired.vars, &remote.vars)
                .filter(|(_, paired)| matches!(paired, Paired::Right(_)))
                .map(|(name, _)| name)
                .filter(|name| unset.contains(name.as_str()) || is_managed(name))
                .filter(|name| is_listable(name))
                .cloned()
                .collect()
        } else {
            // Only the names of keys not set here can be kept: they are looked up, not walked to.
            let on_remote_only =
                |name: &str| remote.vars.contains_key(name) && !desired.vars.contains_key(name);
            desired
                .unset_names()
                .filter(|name| on_remote_only(name) && is_listable(name))
                .map(str::to_owned)
                .collect()
        };
        if !kept.is_empty() {
            listed.extend(kept);
            listed = desired.custom_names(listed);
        }
        desired.set_custom_secrets(listed);
        desired
    }
}

impl Desired {
    /// Zeroizes every value where it lies, leaving them empty, for a desired state whose memory
    /// goes back with the process.
    pub fn wipe(&mut self) {
        self.vars.values_mut().for_each(|var| var.value.wipe());
    }

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
        Self::build(entries, remote, ignore, false)
    }

    /// Builds the desired state. `partial` is true when the entries come from the environment
    /// alone: then a managed variable on the remote that no entry names is kept, and stays listed.
    pub fn build(
        entries: Vec<Entry>,
        remote: &Remote,
        ignore: policy::Ignore,
        partial: bool,
    ) -> Result<Self> {
        Ok(Self::prepare(entries, ignore, partial)?.finish(remote))
    }

    /// Builds all of the desired state that does not depend on the remote, which may still be
    /// being read.
    pub fn prepare(entries: Vec<Entry>, ignore: policy::Ignore, partial: bool) -> Result<Prepared> {
        // Null, empty and whitespace-only values are "not set", as the platform reads them.
        let entries: Vec<Entry> =
            entries.into_iter().map(|e| Entry { value: e.value.filter(|v| !v.is_blank()), ..e }).collect();
        // internal_database_url provides DATABASE_URL when it is set and that name is not ignored.
        let internal_db_set =
            entries.iter().any(|e| e.key == policy::INTERNAL_DATABASE_URL_KEY && e.value.is_some())
                && !ignore.matches("DATABASE_URL");
        let shadowed = |entry: &Entry| entry.key == "database_url" && internal_db_set;
        // An unset internal_database_url leaves DATABASE_URL to database_url.
        let yields = |entry: &Entry| entry.key == policy::INTERNAL_DATABASE_URL_KEY && entry.value.is_none();
        let names: Vec<KeyNames> = entries.iter().map(|entry| policy::key_names(&entry.key)).collect();
        let claiming = entries.iter().zip(&names).filter(|(entry, _)| !shadowed(entry) && !yields(entry));
        check_claims(claiming)?;
        let mut desired = Desired { ignore, partial, ..Desired::default() };
        let mut listed: Vec<String> = Vec::new();
        // Room for the custom-secrets list too, put in its place below.
        let mut vars: Vec<(String, DesiredVar)> = Vec::with_capacity(entries.len() + 1);

        for (entry, names) in entries.into_iter().zip(names) {
            let KeyNames { runtime: name, also_read, deploy } = names;
            // The deploy step's name, when it is another name the value is written under.
            let other = (deploy != name).then_some(&deploy);
            let ignored = |n: &str| desired.ignore.matches(n);
            let shadowed = shadowed(&entry);

            // A key is ignored when all its names are; otherwise the names not ignored are written
            // and the ignored ones left alone.
            let reason = if ignored(&name) && other.is_none_or(|other| ignored(other)) {
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
                    let runtime_written = !ignored(&name);
                    match other.filter(|other| !ignored(other)) {
                        // The value is copied only for a key written under two names.
                        Some(other) if runtime_written => {
                            vars.push((other.clone(), var.clone()));
                            vars.push((name, var));
                        }
                        Some(other) => vars.push((other.clone(), var)),
                        None => vars.push((name, var)),
                    }
                    listed.push(deploy);
                }
                (reason, value) => {
                    // The deploy step writes a deploy-owned key it finds set (signing_key_pem),
                    // and lists it: so does the list here, to agree with it.
                    let lists = reason == Some(SkipReason::DeployOwned) && value.is_some();
                    // A key not set here keeps every name the runtime reads it under, as well as
                    // the deploy step's (KIMI_API_KEY for moonshot too).
                    let aliases = other.cloned().into_iter().chain(also_read.iter().map(|n| (*n).to_owned()));
                    desired.skipped.push(Skipped {
                        key: entry.key,
                        name,
                        aliases: aliases.collect(),
                        reason: reason.unwrap_or(SkipReason::NotSet),
                        location: entry.location,
                    });
                    if lists {
                        listed.push(deploy);
                    }
                }
            }
        }

        // Sorted once (no name is written twice): a list, not a tree, which the planner walks.
        desired.vars = vars.into_iter().collect();
        desired.skipped.sort_by(|a, b| (&a.name, &a.key).cmp(&(&b.name, &b.key)));
        // Chosen and sorted now, while the remote may still be being read.
        let listed = desired.custom_names(listed);
        // The list's place taken now: finishing then writes its value there rather than moving
        // every variable after it to make room. It is written whenever names are listed here.
        if !listed.is_empty() && !desired.ignore.matches(policy::CUSTOM_SECRETS_VAR) {
            let placeholder = DesiredVar { key: None, value: SecretValue::new(""), source: Source::Derived };
            desired.vars.insert(policy::CUSTOM_SECRETS_VAR.to_owned(), placeholder);
        }
        Ok(Prepared { desired, listed })
    }

    /// The names the custom-secrets list names for this desired state: the deploy step's names of
    /// the keys it keeps on the remote, outside the standard set.
    pub fn listed_names(&self) -> Vec<String> {
        self.listed.clone()
    }

    /// The desired state of `set`: these variables, and the custom-secrets list as it must read
    /// with them added to `listed` (the names the list holds for what stays on the remote).
    /// The list is left out of it when no custom variable is set.
    pub fn for_set(vars: Vec<(String, DesiredVar)>, listed: &[String], ignore: policy::Ignore) -> Self {
        let mut desired = Desired { ignore, ..Desired::default() };
        desired.vars = vars.into_iter().collect();
        let set: Vec<String> = desired.vars.keys().filter(|n| is_listable(n)).cloned().collect();
        if !set.is_empty() {
            desired.derive_custom_secrets(listed.iter().chain(&set).cloned().collect());
        }
        desired
    }

    /// The desired state of `unset`: only the custom-secrets list, as it must read once `names`
    /// are gone from `listed`.
    /// Nothing, when no custom variable is removed.
    pub fn for_unset(names: &[String], listed: &[String], ignore: policy::Ignore) -> Self {
        let mut desired = Desired { ignore, ..Desired::default() };
        if touches_custom_list(names) {
            desired
                .derive_custom_secrets(listed.iter().filter(|name| !names.contains(name)).cloned().collect());
        }
        desired
    }

    /// Sets `SYSTEMPROMPT_CUSTOM_SECRETS` to the sorted, comma-joined names among `names` that the
    /// deploy step would list, or leaves it out when there are none.
    fn derive_custom_secrets(&mut self, names: Vec<String>) {
        let custom = self.custom_names(names);
        self.set_custom_secrets(custom);
    }

    /// The names among `names` that the deploy step would list, sorted, each once.
    fn custom_names(&self, mut names: Vec<String>) -> Vec<String> {
        names.retain(|name| listed_by_deploy(name) && !self.ignore.matches(name));
        // Stable: it finds the runs of names already in order (the keys of most files).
        names.sort();
        names.dedup();
        names
    }

    /// Sets `SYSTEMPROMPT_CUSTOM_SECRETS` to `custom` (the list's names, sorted, each once)
    /// joined by commas, or leaves it out when there are none.
    fn set_custom_secrets(&mut self, custom: Vec<String>) {
        self.listed = custom;
        let custom = &self.listed;
        if self.ignore.matches(policy::CUSTOM_SECRETS_VAR) {
            return;
        }
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
            .filter(|(name, _)| self.vars.contains_key(name) || extra.contains(name))
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        Remote { vars, ..remote.clone() }
    }

    /// Variable names of keys that are present but not set; such variables are never removed.
    pub fn unset_names(&self) -> impl Iterator<Item = &str> {
        self.skipped
            .iter()
            .filter(|s| s.reason == SkipReason::NotSet)
            .flat_map(|s| std::iter::once(s.name.as_str()).chain(s.aliases.iter().map(String::as_str)))
    }
}

/// Refuses two keys that claim one variable, naming both (the first pair in file order).
fn check_claims<'a>(claims: impl Iterator<Item = (&'a Entry, &'a KeyNames)>) -> Result<()> {
    let claims: Vec<(&Entry, &str)> =
        claims.flat_map(|(entry, names)| names.written_names().map(move |name| (entry, name))).collect();
    let Some((repeat, earlier)) = sorted::first_repeat(claims.iter().map(|(_, name)| *name)) else {
        return Ok(());
    };
    let ((entry, name), (first, _)) = (claims[repeat], claims[earlier]);
    let at = match first.location.position {
        Some((line, column)) => format!(" (at {line}:{column})"),
        None => format!(" ({})", first.location),
    };
    Err(Error::input(
        entry.location.clone(),
        format!("`{}` and `{}`{at} both map to the variable {name}", entry.key, first.key),
        "keep only one of the two keys",
    ))
}

fn is_managed(name: &str) -> bool {
    policy::classify(name) == VarClass::Managed && name != policy::CUSTOM_SECRETS_VAR
}

/// Whether the deploy step would list `name` had it written it: a name outside the standard set,
/// not one the hosting platform sets or that must no longer be synced.
fn listed_by_deploy(name: &str) -> bool {
    policy::is_listed_by_deploy(name)
        && !matches!(policy::classify(name), VarClass::SystemManaged | VarClass::Stale)
}

/// Whether a variable found on the remote (or given to `set`) belongs in the custom-secrets list:
/// one the deploy step would list, and not only the runtime's own spelling of a renamed key
/// (`MOONSHOT_API_KEY`, whose deploy name is `MOONSHOT`).
pub fn is_listable(name: &str) -> bool {
    listed_by_deploy(name) && !policy::is_runtime_only(name)
}

/// Whether setting or removing `names` changes the custom-secrets list.
pub fn touches_custom_list(names: &[String]) -> bool {
    names.iter().any(|name| is_listable(name))
}

/// The managed variables on the remote (those a profile owns).
pub fn managed_names(remote: &Remote) -> Vec<String> {
    remote.vars.keys().filter(|name| policy::classify(name) == VarClass::Managed).cloned().collect()
}

/// The custom-secrets list's name, when changing `names` changes the list.
pub fn list_if_touched(names: &[String]) -> Vec<String> {
    if touches_custom_list(names) { vec![policy::CUSTOM_SECRETS_VAR.to_owned()] } else { Vec::new() }
}

/// The variables the profile keeps on the remote, from which `set` and `unset` derive the
/// custom-secrets list: as the profile's desired state `now` has them, so that the list is what
/// the next plan would compute, and those the remote's own list names and still holds (an
/// earlier `set`'s variables, say), where the remote lets the list be read.
pub fn listed_names(now: &Desired, remote: &Remote) -> Vec<String> {
    let mut listed = now.listed_names();
    if let Some(RemoteValue::Value(list)) = remote.vars.get(policy::CUSTOM_SECRETS_VAR) {
        listed.extend(
            list.expose()
                .split(',')
                .map(str::trim)
                .filter(|name| remote.vars.contains_key(name) && is_listable(name))
                .map(str::to_owned),
        );
    }
    listed.sort();
    listed.dedup();
    listed
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
    fn values_digested_ahead_are_those_of_the_finished_desired_state_but_the_custom_list() {
        // The remote keeps a custom key not set here: finishing changes the list's value.
        let remote =
            Remote { vars: [("BETA_KEY".to_owned(), RemoteValue::Unreadable)].into(), ..Remote::default() };
        let prepared = Desired::prepare(
            entries(&[("zeta_key", Some("z")), ("beta_key", None), ("openai", Some("o"))]),
            policy::Ignore::default(),
            false,
        )
        .unwrap();
        let foreseen = prepared.foresee(b"salt", || false);
        // Asked only after a run of digests: two values are all digested.
        assert_eq!(prepared.foresee(b"salt", || true).tags().len(), 2);
        let d = prepared.finish(&remote);
        assert_eq!(value(&d, policy::CUSTOM_SECRETS_VAR).as_deref(), Some("BETA_KEY,ZETA_KEY"));
        let digester = Digester::new(b"salt");
        let expected: Vec<(String, [u8; 32])> = (d.vars.iter())
            .filter(|(name, _)| *name != policy::CUSTOM_SECRETS_VAR)
            .map(|(name, var)| (name.clone(), digester.tag(&var.value)))
            .collect();
        assert_eq!(foreseen.tags(), expected);
        assert_eq!(expected.len(), 2);
    }

    #[test]
    fn digesting_ahead_stops_after_a_run_once_the_remote_has_been_read() {
        let pairs: Vec<(String, String)> =
            (0..3000).map(|i| (format!("key_{i:04}"), format!("v{i}"))).collect();
        let pairs: Vec<(&str, Option<&str>)> =
            pairs.iter().map(|(k, v)| (k.as_str(), Some(v.as_str()))).collect();
        let prepared = Desired::prepare(entries(&pairs), policy::Ignore::default(), false).unwrap();
        let asked = std::cell::Cell::new(0);
        let foreseen = prepared.foresee(b"salt", || {
            asked.set(asked.get() + 1);
            asked.get() == 2
        });
        // Asked after the first run (not yet read) and the second (read).
        assert_eq!(asked.get(), 2);
        let digester = Digester::new(b"salt");
        let expected: Vec<(String, [u8; 32])> = prepared
            .desired
            .vars
            .iter()
            .take(2048)
            .map(|(n, v)| (n.clone(), digester.tag(&v.value)))
            .collect();
        assert_eq!(foreseen.tags(), expected);
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
        let vars = names.iter().map(|n| ((*n).to_owned(), crate::remote::RemoteValue::Unreadable)).collect();
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
        let d = Desired::for_set(
            vec![("NEW_ONE".into(), var("n")), ("GITHUB_TOKEN".into(), var("g"))],
            &listed,
            policy::Ignore::default(),
        );
        assert_eq!(value(&d, "SYSTEMPROMPT_CUSTOM_SECRETS").as_deref(), Some("JWT_SECRET,NEW_ONE,OLD_ONE"));
        let d = Desired::for_unset(&["OLD_ONE".into()], &listed, policy::Ignore::default());
        assert_eq!(value(&d, "SYSTEMPROMPT_CUSTOM_SECRETS").as_deref(), Some("JWT_SECRET"));
        let d =
            Desired::for_unset(&["OLD_ONE".into(), "JWT_SECRET".into()], &listed, policy::Ignore::default());
        assert!(d.vars.is_empty(), "no custom names left: the list goes");
        let standard_only =
            Desired::for_set(vec![("GITHUB_TOKEN".into(), var("g"))], &listed, policy::Ignore::default());
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
        let d = build(&[("openai", Some("o")), ("gemini", Some("g"))]).unwrap();
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

    fn with_remote(pairs: &[(&str, Option<&str>)], names: &[&str], ignore: &[&str]) -> Desired {
        let remote = names_only(names);
        let ignore =
            policy::Ignore::new(&ignore.iter().map(|p| (*p).to_owned()).collect::<Vec<_>>()).unwrap();
        Desired::build(entries(pairs), &remote, ignore, false).unwrap()
    }

    #[test]
    fn ignoring_one_name_of_a_key_leaves_its_other_names_written() {
        let d = with_remote(&[("github", Some("g"))], &["GITHUB", "GITHUB_TOKEN"], &["GITHUB_TOKEN"]);
        assert_eq!(d.vars.keys().collect::<Vec<_>>(), ["GITHUB", "SYSTEMPROMPT_CUSTOM_SECRETS"]);
        let p = crate::plan::plan(&d, &names_only(&["GITHUB", "GITHUB_TOKEN"]), None);
        assert!(p.remove.is_empty() && p.ignored == ["GITHUB_TOKEN"], "{p:?}");
        let both = with_remote(
            &[("database_url", Some("public")), ("internal_database_url", Some("internal"))],
            &["DATABASE_URL", "INTERNAL_DATABASE_URL"],
            &["INTERNAL_DATABASE_URL"],
        );
        assert_eq!(value(&both, "DATABASE_URL").as_deref(), Some("internal"));
        let p = crate::plan::plan(&both, &names_only(&["DATABASE_URL", "INTERNAL_DATABASE_URL"]), None);
        assert!(p.remove.is_empty(), "{p:?}");
    }

    #[test]
    fn a_key_not_set_keeps_every_name_the_runtime_reads_it_under() {
        let d = with_remote(&[("moonshot", Some(""))], &["KIMI_API_KEY", "MOONSHOT"], &[]);
        let p = crate::plan::plan(&d, &names_only(&["KIMI_API_KEY", "MOONSHOT"]), None);
        assert!(p.remove.is_empty(), "{p:?}");
        assert_eq!(p.kept, ["KIMI_API_KEY", "MOONSHOT"]);
    }

    #[test]
    fn an_upper_case_key_is_listed_as_the_deploy_step_lists_it() {
        let d = build(&[("MOONSHOT_API_KEY", Some("m")), ("jwt_secret", Some("j"))]).unwrap();
        assert_eq!(value(&d, "SYSTEMPROMPT_CUSTOM_SECRETS").as_deref(), Some("JWT_SECRET,MOONSHOT_API_KEY"));
    }

    #[test]
    fn whitespace_is_not_a_value() {
        let d = build(&[("openai", Some("  \t")), ("gemini", Some("g"))]).unwrap();
        assert_eq!(d.skipped[0].reason, SkipReason::NotSet);
        assert!(!d.vars.contains_key("OPENAI_API_KEY"));
    }

    #[test]
    fn a_renamed_key_claims_both_its_names() {
        let e = build(&[("github", Some("a")), ("GITHUB", Some("b"))]).unwrap_err();
        assert!(
            e.to_string().contains("`GITHUB` and `github` (at 2:3) both map to the variable GITHUB"),
            "{e}"
        );
        let d = build(&[("github", Some("")), ("zeta", Some("z"))]).unwrap();
        assert_eq!(d.unset_names().collect::<Vec<_>>(), ["GITHUB_TOKEN", "GITHUB"]);
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
        // The deploy step writes a signing_key_pem it finds and lists it; the list agrees, and
        // nothing else is synced.
        assert_eq!(d.vars.keys().collect::<Vec<_>>(), ["SYSTEMPROMPT_CUSTOM_SECRETS"]);
        assert_eq!(value(&d, "SYSTEMPROMPT_CUSTOM_SECRETS").as_deref(), Some("SIGNING_KEY_PEM"));
        let reasons: Vec<_> = d.skipped.iter().map(|s| s.reason.clone()).collect();
        assert_eq!(
            reasons,
            [SkipReason::SystemManaged, SkipReason::DeployOwned, SkipReason::Stale, SkipReason::Derived]
        );
    }
}
