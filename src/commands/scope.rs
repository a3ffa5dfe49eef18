//! What a command covers: which variables `apply`, `set`, `unset`, `cleanup`, `rollback` and a
//! saved plan put in their desired state, and which part of the remote they compare it with.
//! Pure: no IO; what the reader should be told comes back as notes.

use std::collections::BTreeMap;

use crate::desired::{Desired, DesiredVar, Source};
use crate::error::{Error, Result};
use crate::policy::{self, Ignore, VarClass};
use crate::remote::Remote;
use crate::saved::SavedPlan;
use crate::secret::SecretValue;

/// One `set` argument: the variable it names, and its value (`None` until read from stdin).
pub(super) type Assignment = (String, Option<SecretValue>);

/// Which part of the remote a command changes.
pub(super) enum Scope {
    /// Everything the profile owns (`apply`, `sync`).
    Everything,
    /// These variables only (`set`).
    Set {
        /// Variable name, and the value or `None` to read it from stdin.
        assignments: Vec<Assignment>,
        /// Also write the values into secrets.json.
        save: bool,
    },
    /// Remove these variables (`unset`).
    Unset {
        /// Variable names.
        names: Vec<String>,
        /// The secrets.json keys the arguments name (what `--save` removes there).
        keys: Vec<String>,
        /// Also remove their keys from secrets.json.
        save: bool,
    },
    /// Remove the system-managed and stale variables (`cleanup`).
    Cleanup,
    /// Everything, exactly as a saved plan shows (`apply FILE`).
    Saved(Box<SavedPlan>),
    /// Back to the remote's previous version (`rollback`).
    Rollback,
}

impl Scope {
    /// The whole desired state of the profile (`apply`, `sync`, a saved plan).
    pub(super) fn is_whole(&self) -> bool {
        matches!(self, Scope::Everything | Scope::Saved(_))
    }

    /// A plan of the whole remote, checked as a whole (mass removal, required variables).
    pub(super) fn is_whole_remote(&self) -> bool {
        self.is_whole() || matches!(self, Scope::Rollback)
    }

    /// Whether the plan is built against the profile's desired state as it stands.
    pub(super) fn needs_profile_state(&self) -> bool {
        matches!(self, Scope::Everything | Scope::Saved(_) | Scope::Set { .. } | Scope::Unset { .. })
    }

    /// Whether a value is still to be read from standard input.
    pub(super) fn reads_stdin(&self) -> bool {
        matches!(self, Scope::Set { assignments, .. } if assignments.iter().any(|(_, v)| v.is_none()))
    }
}

/// What a plan covers: the desired variables and the part of the remote compared with them.
pub(super) struct Covered {
    /// The desired state of the plan.
    pub desired: Desired,
    /// The remote as the plan sees it: all of it, or only what the command is about.
    pub remote: Remote,
}

/// What a command's plan is made from.
pub(super) struct Inputs<'a> {
    /// The profile's desired state as it stands (empty where the scope does not need it).
    pub now: Desired,
    /// What the remote holds.
    pub fetched: &'a Remote,
    /// The profile's `ignore` patterns.
    pub ignore: &'a Ignore,
    /// For `rollback`: the previous version's values.
    pub previous: BTreeMap<String, SecretValue>,
    /// The secrets file, as messages name it.
    pub secrets_shown: &'a str,
}

/// Decides what the plan of `scope` covers. What the reader should be told (a warning a line)
/// goes to `notes`, also when the command is refused.
pub(super) fn cover(scope: &Scope, inputs: Inputs<'_>, notes: &mut Vec<String>) -> Result<Covered> {
    let Inputs { now, fetched, ignore, previous, secrets_shown } = inputs;
    match scope {
        Scope::Everything | Scope::Saved(_) => Ok(Covered { desired: now, remote: fetched.clone() }),
        Scope::Set { assignments, .. } => {
            refuse_shadowed(assignments, &now, secrets_shown)?;
            let vars = settable(assignments, ignore, notes)?;
            let desired =
                Desired::for_set(vars, &crate::desired::listed_names(&now, fetched), ignore.clone());
            let names: Vec<String> =
                desired.vars.keys().filter(|n| *n != policy::CUSTOM_SECRETS_VAR).cloned().collect();
            let remote = desired.scope_of(fetched, &crate::desired::list_if_touched(&names));
            Ok(Covered { desired, remote })
        }
        Scope::Unset { names, save, .. } => {
            let names = removable(names, fetched, ignore, notes);
            if !save {
                notes.extend(still_desired(&now, &names, secrets_shown));
            }
            let desired =
                Desired::for_unset(&names, &crate::desired::listed_names(&now, fetched), ignore.clone());
            let remote =
                desired.scope_of(fetched, &[names.clone(), crate::desired::list_if_touched(&names)].concat());
            Ok(Covered { desired, remote })
        }
        Scope::Rollback => {
            // What the platform owns or the profile ignores stays as it is now.
            let vars = (previous.into_iter())
                .filter(|(name, _)| policy::classify(name) == VarClass::Managed && !ignore.matches(name))
                .map(|(name, value)| (name, DesiredVar { key: None, value, source: Source::PreviousVersion }))
                .collect();
            let desired = Desired { vars, ignore: ignore.clone(), ..Desired::default() };
            Ok(Covered { desired, remote: fetched.clone() })
        }
        Scope::Cleanup => {
            let vars = fetched
                .vars
                .iter()
                .filter(|(n, _)| matches!(policy::classify(n), VarClass::SystemManaged | VarClass::Stale))
                .filter(|(n, _)| !ignore.matches(n))
                .map(|(n, v)| (n.clone(), v.clone()))
                .collect();
            Ok(Covered { desired: Desired::default(), remote: Remote { vars, ..fetched.clone() } })
        }
    }
}

/// Every name the key behind `name` is written under, when `name` is one of them; else `name`.
pub(super) fn written_names(name: &str) -> Vec<String> {
    let written = policy::key_names(&policy::key_for(name)).written();
    if written.iter().any(|n| n == name) { written } else { vec![name.to_owned()] }
}

/// Refuses to set a variable that the profile's desired state takes from another key written
/// under more names (`DATABASE_URL` while `internal_database_url` is set, which also writes
/// INTERNAL_DATABASE_URL): the value would go to one of them, and the next plan would undo it.
fn refuse_shadowed(assignments: &[Assignment], now: &Desired, secrets_shown: &str) -> Result<()> {
    for (name, _) in assignments {
        let Some(provider) = now.vars.get(name).and_then(|var| var.key.as_deref()) else { continue };
        let names = policy::key_names(provider).written();
        if provider == policy::key_for(name) || names == written_names(name) {
            continue;
        }
        return Err(Error::usage(
            format!(
                "{name} comes from `{provider}` in {secrets_shown}, which is also written as {}",
                names.iter().filter(|n| *n != name).cloned().collect::<Vec<_>>().join(" and ")
            ),
            format!("set that key, which changes them together: cloud-secrets set {provider}=..."),
        ));
    }
    Ok(())
}

/// The variables `set` may write, each under every name its key is written under; notes the
/// ones the platform owns or the profile ignores, and refuses two values for one variable.
fn settable(
    assignments: &[Assignment],
    ignore: &Ignore,
    notes: &mut Vec<String>,
) -> Result<Vec<(String, DesiredVar)>> {
    let mut vars: Vec<(String, DesiredVar)> = Vec::new();
    for (name, value) in assignments {
        let refusal = match policy::classify(name) {
            _ if name == policy::CUSTOM_SECRETS_VAR => {
                Some("cloud-secrets computes it from the custom secrets")
            }
            _ if ignore.matches(name) => Some("it matches `ignore` in cloud-secrets.yaml"),
            VarClass::SystemManaged => Some("the hosting platform sets it"),
            VarClass::Stale => Some("it is stale and must no longer be synced"),
            VarClass::DeployOwned => Some("the platform's deploy step writes it"),
            VarClass::Managed => None,
        };
        let (None, Some(value)) = (refusal, value) else {
            if let Some(why) = refusal {
                notes.push(format!("not setting {name}: {why}"));
            }
            continue;
        };
        // A key's value goes under every name the whole plan writes it under (the runtime's and
        // the deploy step's), so that the next plan has nothing to add.
        let key = policy::key_for(name);
        for written_name in written_names(name).into_iter().filter(|n| !ignore.matches(n)) {
            if vars.iter().any(|(n, _)| *n == written_name) {
                return Err(Error::usage(
                    format!("two of the values given would be written to {written_name}"),
                    "give one value for each variable (internal_database_url is also written to DATABASE_URL)",
                ));
            }
            let var =
                DesiredVar { key: Some(key.clone()), value: value.clone(), source: Source::CommandLine };
            vars.push((written_name, var));
        }
    }
    if vars.is_empty() {
        return Err(Error::config(
            "every variable given is one cloud-secrets must not set; nothing was changed",
            "set variables the profile owns; see docs/secrets-json.md for the classes",
        ));
    }
    Ok(vars)
}

/// The variables `unset` may remove; notes which are not there or not managed here.
fn removable(names: &[String], remote: &Remote, ignore: &Ignore, notes: &mut Vec<String>) -> Vec<String> {
    let mut kept = Vec::new();
    for name in names {
        if ignore.matches(name) {
            notes.push(format!("not removing {name}: it matches `ignore` in cloud-secrets.yaml"));
        } else if !remote.vars.contains_key(name) {
            notes.push(format!("{name} is not on the remote; nothing to remove"));
        } else if policy::classify(name) == VarClass::DeployOwned {
            notes.push(format!("not removing {name}: the platform's deploy step owns it"));
        } else if name == policy::CUSTOM_SECRETS_VAR {
            notes
                .push(format!("not removing {name}: cloud-secrets keeps it in step with the custom secrets"));
        } else if !kept.contains(name) {
            kept.push(name.clone());
        }
    }
    kept
}

/// After `unset`: which of the removed variables the desired state still sets, since the next
/// apply would add them back.
fn still_desired(now: &Desired, names: &[String], secrets_shown: &str) -> Option<String> {
    let back: Vec<&str> = names.iter().filter(|n| now.vars.contains_key(n)).map(String::as_str).collect();
    (!back.is_empty()).then(|| {
        format!(
            "{secrets_shown} still sets {}, so the next apply adds {} back; run unset with --save to remove {} \
             there too",
            back.join(", "),
            if back.len() == 1 { "it" } else { "them" },
            if back.len() == 1 { "its key" } else { "their keys" },
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::RemoteValue;

    fn remote(vars: &[(&str, &str)]) -> Remote {
        Remote {
            vars: vars
                .iter()
                .map(|(n, v)| ((*n).to_owned(), RemoteValue::Value(SecretValue::new(*v))))
                .collect(),
            ..Remote::default()
        }
    }

    fn set(pairs: &[(&str, &str)]) -> Scope {
        let assignments = pairs.iter().map(|(n, v)| ((*n).to_owned(), Some(SecretValue::new(*v)))).collect();
        Scope::Set { assignments, save: false }
    }

    fn cover(scope: &Scope, inputs: Inputs<'_>) -> Result<(Covered, Vec<String>)> {
        let mut notes = Vec::new();
        super::cover(scope, inputs, &mut notes).map(|covered| (covered, notes))
    }

    fn inputs<'a>(fetched: &'a Remote, ignore: &'a Ignore) -> Inputs<'a> {
        Inputs {
            now: Desired::default(),
            fetched,
            ignore,
            previous: BTreeMap::new(),
            secrets_shown: "secrets.json",
        }
    }

    fn names(desired: &Desired) -> Vec<&str> {
        desired.vars.keys().map(String::as_str).collect()
    }

    #[test]
    fn set_writes_a_key_under_every_name_and_lists_custom_ones() {
        let fetched = remote(&[("OTHER", "x"), ("GITHUB", "old")]);
        let (covered, notes) =
            cover(&set(&[("GITHUB_TOKEN", "a"), ("MY_TOKEN", "b")]), inputs(&fetched, &Ignore::default()))
                .unwrap();
        assert_eq!(
            names(&covered.desired),
            ["GITHUB", "GITHUB_TOKEN", "MY_TOKEN", policy::CUSTOM_SECRETS_VAR]
        );
        // The plan sees only what set is about: OTHER is not removed by it.
        assert_eq!(covered.remote.vars.keys().collect::<Vec<_>>(), ["GITHUB"]);
        assert!(notes.is_empty());
    }

    #[test]
    fn set_notes_what_it_must_not_write_and_refuses_when_nothing_is_left() {
        let fetched = remote(&[]);
        let ignore = Ignore::new(&["MY_*".to_owned()]).unwrap();
        let (covered, notes) = cover(
            &set(&[("FLY_APP_NAME", "a"), ("MY_TOKEN", "b"), ("ANTHROPIC_API_KEY", "c")]),
            inputs(&fetched, &ignore),
        )
        .unwrap();
        assert_eq!(names(&covered.desired), ["ANTHROPIC_API_KEY"]);
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes[0].starts_with("not setting FLY_APP_NAME"));
        assert!(notes[1].contains("ignore"));
        let mut notes = Vec::new();
        let refused = super::cover(&set(&[("FLY_APP_NAME", "a")]), inputs(&fetched, &ignore), &mut notes);
        assert!(refused.is_err());
        assert_eq!(notes.len(), 1, "the refusal still says why: {notes:?}");
    }

    #[test]
    fn set_refuses_two_values_for_one_variable() {
        let fetched = remote(&[]);
        let refused = cover(
            &set(&[("DATABASE_URL", "a"), ("INTERNAL_DATABASE_URL", "b")]),
            inputs(&fetched, &Ignore::default()),
        );
        assert!(refused.is_err());
    }

    #[test]
    fn unset_notes_what_is_absent_or_not_ours_and_keeps_the_list_in_step() {
        let fetched = remote(&[
            ("MY_TOKEN", "a"),
            ("OTHER_TOKEN", "b"),
            ("GITHUB", "g"),
            (policy::CUSTOM_SECRETS_VAR, "MY_TOKEN,OTHER_TOKEN"),
        ]);
        let scope = Scope::Unset {
            names: vec!["MY_TOKEN".to_owned(), "ABSENT".to_owned(), "GITHUB".to_owned()],
            keys: Vec::new(),
            save: false,
        };
        let (covered, notes) = cover(&scope, inputs(&fetched, &Ignore::default())).unwrap();
        // Only the list is desired; what is removed is in the scoped remote, so the plan removes it.
        assert_eq!(names(&covered.desired), [policy::CUSTOM_SECRETS_VAR]);
        assert_eq!(covered.desired.vars[policy::CUSTOM_SECRETS_VAR].value.expose(), "OTHER_TOKEN");
        assert_eq!(
            covered.remote.vars.keys().collect::<Vec<_>>(),
            ["GITHUB", "MY_TOKEN", policy::CUSTOM_SECRETS_VAR]
        );
        assert_eq!(notes, ["ABSENT is not on the remote; nothing to remove"]);
    }

    #[test]
    fn cleanup_covers_only_platform_owned_variables_not_ignored() {
        let fetched =
            remote(&[("FLY_APP_NAME", "a"), ("SYSTEMPROMPT_API_URL", "b"), ("ANTHROPIC_API_KEY", "c")]);
        let ignore = Ignore::new(&["FLY_*".to_owned()]).unwrap();
        let (covered, _) = cover(&Scope::Cleanup, inputs(&fetched, &ignore)).unwrap();
        assert!(covered.desired.vars.is_empty());
        assert_eq!(covered.remote.vars.keys().collect::<Vec<_>>(), ["SYSTEMPROMPT_API_URL"]);
    }

    #[test]
    fn rollback_restores_managed_variables_only() {
        let fetched = remote(&[("ANTHROPIC_API_KEY", "now"), ("FLY_APP_NAME", "x")]);
        let ignore = Ignore::default();
        let mut previous = BTreeMap::new();
        previous.insert("ANTHROPIC_API_KEY".to_owned(), SecretValue::new("before"));
        previous.insert("FLY_APP_NAME".to_owned(), SecretValue::new("old"));
        let inputs = Inputs {
            now: Desired::default(),
            fetched: &fetched,
            ignore: &ignore,
            previous,
            secrets_shown: "secrets.json",
        };
        let (covered, _) = cover(&Scope::Rollback, inputs).unwrap();
        assert_eq!(names(&covered.desired), ["ANTHROPIC_API_KEY"]);
        assert_eq!(covered.remote.vars.len(), 2);
    }
}
