//! The planner: a pure function from the desired state and the remote state to a [`Plan`].
//!
//! `plan()` does no IO, reads no clock and no randomness, and orders everything by variable name,
//! so the same inputs always give the same plan. A [`Plan`] holds names and reasons, never a value.

use std::collections::HashSet;

use crate::desired::{Desired, DesiredVar, Foreseen, Skipped, Source};
use crate::policy::{self, VarClass};
use crate::record::{InOrder, LastApplied};
use crate::remote::{ChangeSet, Remote, RemoteValue};
use crate::secret::{Digester, SecretValue};
use crate::sorted::{self, Paired};

/// How a desired value was compared with the remote, and what came of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Comparison {
    /// Not on the remote: an addition.
    Absent,
    /// Compared with the remote's value or digest: equal.
    Equal,
    /// Compared with the remote's value or digest: different, changed here.
    Differs,
    /// Compared with the remote's digest: different, although the desired value is the one last
    /// applied, so the remote was changed outside cloud-secrets (drift).
    DriftedOnRemote,
    /// The remote's value cannot be read; the desired value is the one last applied.
    SameAsLastApply,
    /// The remote's value cannot be read; the desired value differs from the one last applied.
    ChangedSinceLastApply,
    /// The remote's value cannot be read and there is no record of the last apply.
    Unverifiable,
}

impl Comparison {
    /// Whether the remote itself was compared (its value or its digest).
    pub fn verified(self) -> bool {
        matches!(self, Comparison::Equal | Comparison::Differs | Comparison::DriftedOnRemote)
    }
}

/// A variable the plan writes (adds or changes), or leaves unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    /// The variable name on the remote.
    pub name: String,
    /// The secrets.json key it comes from; `None` for a derived variable.
    pub key: Option<String>,
    /// Where the desired value came from.
    pub source: Source,
    /// How the value was compared with the remote.
    pub comparison: Comparison,
}

/// Why a variable is cleaned up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CleanupReason {
    /// Set by the hosting platform; must never be synced.
    SystemManaged,
    /// Synced by mistake in the past; no longer used.
    Stale,
}

/// A variable on the remote that is cleaned up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cleanup {
    /// The variable name on the remote.
    pub name: String,
    /// Why it goes.
    pub reason: CleanupReason,
}

/// The difference between desired and remote state, without any value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Desired variables absent from the remote.
    pub add: Vec<Write>,
    /// Desired variables whose remote value differs.
    pub change: Vec<Write>,
    /// Managed variables on the remote that the desired state no longer has.
    pub remove: Vec<String>,
    /// System-managed or stale variables found on the remote.
    pub cleanup: Vec<Cleanup>,
    /// Desired variables the remote already holds with the desired value.
    pub unchanged: Vec<Write>,
    /// Keys of the desired state that are never synced, with the reason.
    pub skipped: Vec<Skipped>,
    /// Remote variables whose key is present here but not set: left as they are.
    pub kept: Vec<String>,
    /// Deploy-owned variables on the remote: not managed here, left as they are.
    pub unmanaged: Vec<String>,
    /// Remote variables matching `secrets.ignore`: left as they are.
    pub ignored: Vec<String>,
}

/// A plan that removes most (or all) of the managed variables on the remote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MassRemoval {
    /// Variables the plan removes.
    pub removing: usize,
    /// Managed variables on the remote before the plan.
    pub managed: usize,
}

/// Counts of a plan's changes, for the summary line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Summary {
    /// Variables to add.
    pub add: usize,
    /// Variables to change.
    pub change: usize,
    /// Variables to remove.
    pub remove: usize,
    /// Variables to clean up.
    pub cleanup: usize,
}

impl Plan {
    /// True when applying the plan would change nothing.
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.change.is_empty() && self.remove.is_empty() && self.cleanup.is_empty()
    }

    /// The counts of each kind of change.
    pub fn summary(&self) -> Summary {
        Summary {
            add: self.add.len(),
            change: self.change.len(),
            remove: self.remove.len(),
            cleanup: self.cleanup.len(),
        }
    }

    /// The managed variables on the remote (those the desired state owns) before the plan runs.
    pub fn managed_on_remote(&self) -> usize {
        self.change.len() + self.unchanged.len() + self.remove.len() + self.kept.len()
    }

    /// Whether the plan removes so much that applying it needs an explicit flag: more than
    /// `threshold` (a share, 0 to 1) of the managed variables on the remote, or all of them.
    pub fn mass_removal(&self, threshold: f64) -> Option<MassRemoval> {
        let managed = self.managed_on_remote();
        let removing = self.remove.len();
        let left = managed - removing + self.add.len();
        let too_many = removing as f64 > threshold * managed as f64;
        (removing > 0 && (left == 0 || too_many)).then_some(MassRemoval { removing, managed })
    }

    /// The writes and deletions that carry out this plan, with the desired values.
    pub fn change_set<'a>(&'a self, desired: &'a Desired) -> ChangeSet<'a> {
        let upserts = self
            .add
            .iter()
            .chain(&self.change)
            .filter_map(|w| desired.vars.get(&w.name).map(|v| (w.name.as_str(), &v.value)))
            .collect();
        let deletes = self
            .remove
            .iter()
            .map(String::as_str)
            .chain(self.cleanup.iter().map(|c| c.name.as_str()))
            .collect();
        ChangeSet { upserts, deletes }
    }
}

/// Computes the plan that brings `remote` to `desired`. Pure and deterministic.
///
/// `record` is what cloud-secrets last applied to this remote: it stands in for a value the
/// remote does not let us read, and tells drift from a local change where it does.
pub fn plan(desired: &Desired, remote: &Remote, record: Option<&LastApplied>) -> Plan {
    plan_foreseen(desired, remote, record, None)
}

/// [`plan`], with the desired values digested ahead of the listing: the same plan, sooner.
/// `foreseen` must have been made from the values of `desired`.
pub fn plan_foreseen(
    desired: &Desired,
    remote: &Remote,
    record: Option<&LastApplied>,
    foreseen: Option<&Foreseen>,
) -> Plan {
    let walk = Walk {
        desired,
        record,
        digester: remote.digest_salt.as_deref().map(Digester::new),
        unset: desired.unset_names().collect(),
        foreseen: foreseen.map(|f| f.under(remote.digest_salt.as_deref())).unwrap_or_default(),
    };
    let mut plan = Plan { skipped: desired.skipped.clone(), ..Plan::default() };
    // A long plan is made in two halves of the names, on two threads (an HMAC a variable for a
    // listing of digests), and the halves put end to end: each list stays sorted.
    let middle = (desired.vars.len() >= PLAN_IN_HALVES_FROM
        && std::thread::available_parallelism().is_ok_and(|n| n.get() > 1))
    .then(|| desired.vars.keys().nth(desired.vars.len() / 2))
    .flatten();
    match middle {
        Some(middle) => {
            let (low, high) = std::thread::scope(|scope| {
                let high = scope.spawn(|| {
                    walk.plan(
                        sorted::join(desired.vars.from(middle), remote.vars.from(middle)),
                        Some(middle),
                        desired.vars.len() - desired.vars.len() / 2,
                    )
                });
                // Room for the high half's unchanged variables too, put after these in place.
                let low = walk.plan(
                    sorted::join(desired.vars.before(middle), remote.vars.before(middle)),
                    None,
                    desired.vars.len(),
                );
                (low, high.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
            });
            plan.append(low);
            plan.append(high);
        }
        None => plan.append(walk.plan(sorted::join(&desired.vars, &remote.vars), None, desired.vars.len())),
    }
    plan
}

/// Fewer desired variables than this are planned on one thread.
const PLAN_IN_HALVES_FROM: usize = 8192;

/// What a walk over (part of) the names compares with.
struct Walk<'a> {
    desired: &'a Desired,
    record: Option<&'a LastApplied>,
    digester: Option<Digester>,
    unset: HashSet<&'a str, foldhash::fast::RandomState>,
    /// Digests of desired values under the listing's salt, by name, sorted (maybe none).
    foreseen: &'a [(String, [u8; 32])],
}

impl Walk<'_> {
    /// The plan of the names `pairs` walks over, in order, from `from` on (`skipped` left
    /// empty), with room for `unchanged_room` unchanged variables.
    fn plan<'n>(
        &self,
        pairs: impl Iterator<Item = (&'n String, Paired<'n, DesiredVar, RemoteValue>)>,
        from: Option<&str>,
        unchanged_room: usize,
    ) -> Plan {
        // Most desired variables are unchanged in most plans: their list is sized once rather
        // than copied as it grows (memory reserved and not written is never touched).
        let mut plan = Plan { unchanged: Vec::with_capacity(unchanged_room), ..Plan::default() };
        // The digests made ahead, and the record's, are walked along with the names.
        let foreseen = &self.foreseen
            [from.map_or(0, |from| self.foreseen.partition_point(|(name, _)| name.as_str() < from))..];
        let mut ahead = foreseen.iter().peekable();
        let mut recorded = self.record.map(|record| record.in_order(from));
        for (name, paired) in pairs {
            let (var, current) = match paired {
                Paired::Left(var) => (var, None),
                Paired::Both(var, current) => (var, Some(current)),
                Paired::Right(_) => {
                    plan.place_remote_only(name, self.desired, self.unset.contains(name.as_str()));
                    continue;
                }
            };
            let tag =
                sorted::take_at(&mut ahead, name.as_str(), |(ahead, _)| ahead.as_str()).map(|(_, tag)| tag);
            let comparison = self.compare(name, var, current, tag, recorded.as_mut());
            let write = Write { name: name.clone(), key: var.key.clone(), source: var.source, comparison };
            match comparison {
                Comparison::Absent => plan.add.push(write),
                Comparison::Equal | Comparison::SameAsLastApply => plan.unchanged.push(write),
                _ => plan.change.push(write),
            }
        }
        plan
    }

    /// How the desired value of `name` compares with what the remote holds, if anything; `tag` is
    /// its digest under the listing's salt, if made ahead.
    fn compare(
        &self,
        name: &str,
        var: &DesiredVar,
        current: Option<&RemoteValue>,
        tag: Option<&[u8; 32]>,
        recorded: Option<&mut InOrder<'_>>,
    ) -> Comparison {
        // Asked only where the remote's own value or digest does not settle it.
        let last_applied = || recorded.and_then(|r| r.matches(name, &var.value));
        // The custom-secrets list is a set: the deploy step writes it in no fixed order.
        let is_list = name == policy::CUSTOM_SECRETS_VAR;
        match current {
            None => Comparison::Absent,
            Some(RemoteValue::Value(current)) if *current == var.value => Comparison::Equal,
            Some(RemoteValue::Value(current)) if is_list && same_list(current, &var.value) => {
                Comparison::Equal
            }
            Some(RemoteValue::Value(_)) => Comparison::Differs,
            Some(RemoteValue::Digest(digest)) => {
                let equal = match tag {
                    Some(tag) => digest.is(tag),
                    None => self.digester.as_ref().is_some_and(|d| digest.is(&d.tag(&var.value))),
                };
                if equal {
                    Comparison::Equal
                } else if last_applied() != Some(true) {
                    Comparison::Differs
                } else if is_list {
                    // A digest cannot tell another order of the same names from other names: the
                    // list last applied, rewritten in another order by a deploy, is not a change,
                    // and is not claimed verified either.
                    Comparison::SameAsLastApply
                } else {
                    Comparison::DriftedOnRemote
                }
            }
            Some(RemoteValue::Unreadable) => match last_applied() {
                Some(true) => Comparison::SameAsLastApply,
                Some(false) => Comparison::ChangedSinceLastApply,
                None => Comparison::Unverifiable,
            },
        }
    }
}

impl Plan {
    /// Puts the lists of `later`, a plan of names after all of this one's, after this one's.
    fn append(&mut self, later: Plan) {
        // An empty list takes the other whole, rather than a copy of it.
        fn put_after<T>(list: &mut Vec<T>, later: Vec<T>) {
            if list.is_empty() {
                *list = later;
            } else {
                list.extend(later);
            }
        }
        let Plan { add, change, remove, cleanup, unchanged, skipped, kept, unmanaged, ignored } = later;
        put_after(&mut self.add, add);
        put_after(&mut self.change, change);
        put_after(&mut self.remove, remove);
        put_after(&mut self.cleanup, cleanup);
        put_after(&mut self.unchanged, unchanged);
        put_after(&mut self.skipped, skipped);
        put_after(&mut self.kept, kept);
        put_after(&mut self.unmanaged, unmanaged);
        put_after(&mut self.ignored, ignored);
    }

    /// Places a variable the remote holds and the desired state does not: ignored, cleaned up,
    /// left to the deploy step, kept (its key is here without a value, or the desired state is
    /// partial), or removed.
    fn place_remote_only(&mut self, name: &str, desired: &Desired, unset_here: bool) {
        if desired.ignore.matches(name) {
            self.ignored.push(name.to_owned());
            return;
        }
        match policy::classify(name) {
            VarClass::SystemManaged => {
                self.cleanup.push(Cleanup { name: name.to_owned(), reason: CleanupReason::SystemManaged })
            }
            VarClass::Stale => {
                self.cleanup.push(Cleanup { name: name.to_owned(), reason: CleanupReason::Stale })
            }
            VarClass::DeployOwned => self.unmanaged.push(name.to_owned()),
            VarClass::Managed if unset_here || desired.partial => self.kept.push(name.to_owned()),
            VarClass::Managed => self.remove.push(name.to_owned()),
        }
    }
}

/// Whether two custom-secrets lists name the same variables, in any order.
fn same_list(a: &SecretValue, b: &SecretValue) -> bool {
    let names = |v: &SecretValue| -> std::collections::BTreeSet<String> {
        v.expose().split(',').map(str::trim).filter(|n| !n.is_empty()).map(str::to_owned).collect()
    };
    names(a) == names(b)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    use super::*;
    use crate::desired::Entry;
    use crate::desired::SkipReason;
    use crate::error::Location;
    use crate::remote::Digest;

    fn desired(pairs: &[(&str, &str)]) -> Desired {
        let entries = pairs
            .iter()
            .map(|(k, v)| Entry {
                key: (*k).to_owned(),
                source: Source::File,
                value: (!v.is_empty()).then(|| SecretValue::new(*v)),
                location: Location::at(Path::new("secrets.json"), 1, 1),
            })
            .collect();
        Desired::from_entries(entries, &Remote::default()).unwrap()
    }

    fn remote(pairs: &[(&str, &str)]) -> Remote {
        let vars = pairs.iter().map(|(k, v)| ((*k).to_owned(), SecretValue::new(*v))).collect();
        Remote::with_values(vars, Some(1))
    }

    fn plan(desired: &Desired, remote: &Remote) -> Plan {
        super::plan(desired, remote, None)
    }

    fn names(writes: &[Write]) -> Vec<&str> {
        writes.iter().map(|w| w.name.as_str()).collect()
    }

    #[test]
    fn every_class_in_one_plan() {
        let d = desired(&[
            ("openai", "new"),
            ("gemini", "same"),
            ("anthropic", "added"),
            ("github", ""),
            ("fly_app_name", "x"),
        ]);
        let r = remote(&[
            ("OPENAI_API_KEY", "old"),
            ("GEMINI_API_KEY", "same"),
            ("GITHUB_TOKEN", "kept"),
            ("OLD_KEY", "x"),
            ("FLY_APP_NAME", "x"),
            ("fly_machine_id", "x"),
            ("SYSTEMPROMPT_API_URL", "x"),
            ("SYSTEMPROMPT_API_TOKEN", "x"),
        ]);
        let p = plan(&d, &r);
        assert_eq!(names(&p.add), ["ANTHROPIC_API_KEY"]);
        assert_eq!(names(&p.change), ["OPENAI_API_KEY"]);
        assert_eq!(names(&p.unchanged), ["GEMINI_API_KEY"]);
        assert_eq!(p.remove, ["OLD_KEY"]);
        assert_eq!(
            p.cleanup,
            [
                Cleanup { name: "FLY_APP_NAME".into(), reason: CleanupReason::SystemManaged },
                Cleanup { name: "SYSTEMPROMPT_API_URL".into(), reason: CleanupReason::Stale },
                Cleanup { name: "fly_machine_id".into(), reason: CleanupReason::SystemManaged },
            ]
        );
        assert_eq!(p.kept, ["GITHUB_TOKEN"]);
        assert_eq!(p.unmanaged, ["SYSTEMPROMPT_API_TOKEN"]);
        let skipped: Vec<_> = p.skipped.iter().map(|s| (s.key.as_str(), s.reason.clone())).collect();
        assert_eq!(skipped, [("fly_app_name", SkipReason::SystemManaged), ("github", SkipReason::NotSet)]);
        assert_eq!(p.summary(), Summary { add: 1, change: 1, remove: 1, cleanup: 3 });
    }

    #[test]
    fn empty_desired_removes_every_managed_variable_only() {
        let p = plan(
            &Desired::default(),
            &remote(&[("A", "1"), ("SIGNING_KEY_PEM", "k"), ("FLY_APP_NAME", "f")]),
        );
        assert_eq!(p.remove, ["A"]);
        assert_eq!(p.unmanaged, ["SIGNING_KEY_PEM"]);
        assert_eq!(p.cleanup.len(), 1);
        assert!(p.add.is_empty() && p.change.is_empty());
    }

    #[test]
    fn empty_remote_adds_everything_including_the_derived_list() {
        let p = plan(&desired(&[("jwt_secret", "j"), ("openai", "o")]), &Remote::default());
        assert_eq!(names(&p.add), ["JWT_SECRET", "OPENAI_API_KEY", "SYSTEMPROMPT_CUSTOM_SECRETS"]);
        assert_eq!(p.add[2].source, Source::Derived);
        assert!(p.remove.is_empty() && p.cleanup.is_empty());
    }

    #[test]
    fn both_empty_is_an_empty_plan() {
        let p = plan(&Desired::default(), &Remote::default());
        assert!(p.is_empty());
        assert_eq!(p, Plan::default());
    }

    #[test]
    fn internal_database_url_beside_database_url() {
        let d = desired(&[("database_url", "public"), ("internal_database_url", "internal")]);
        // As the deploy step does, DATABASE_URL carries the internal URL; the runtime also reads
        // it as INTERNAL_DATABASE_URL.
        let p = plan(&d, &remote(&[("DATABASE_URL", "internal"), ("INTERNAL_DATABASE_URL", "internal")]));
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(names(&p.unchanged), ["DATABASE_URL", "INTERNAL_DATABASE_URL"]);
        assert_eq!(p.unchanged[0].key.as_deref(), Some("internal_database_url"));
        assert_eq!(p.skipped[0].reason, SkipReason::ShadowedBy("internal_database_url".into()));
        let p = plan(&d, &remote(&[("DATABASE_URL", "public")]));
        assert_eq!(names(&p.change), ["DATABASE_URL"]);
        assert_eq!(names(&p.add), ["INTERNAL_DATABASE_URL"]);
    }

    #[test]
    fn renamed_keys_are_written_where_the_runtime_reads_them_and_where_deploy_does() {
        let d = desired(&[("github", "g"), ("moonshot", "m"), ("qwen", "q"), ("jwt_secret", "j")]);
        let p = plan(&d, &Remote::default());
        assert_eq!(
            names(&p.add),
            [
                "GITHUB",
                "GITHUB_TOKEN",
                "JWT_SECRET",
                "MOONSHOT",
                "MOONSHOT_API_KEY",
                "QWEN",
                "QWEN_API_KEY",
                "SYSTEMPROMPT_CUSTOM_SECRETS"
            ]
        );
        // The list names what the deploy step lists: its names, not the runtime's own ones.
        let list = &d.vars["SYSTEMPROMPT_CUSTOM_SECRETS"].value;
        assert_eq!(list.expose(), "GITHUB,JWT_SECRET,MOONSHOT,QWEN");
    }

    #[test]
    fn the_custom_list_is_compared_as_a_set() {
        let d = desired(&[("jwt_secret", "j"), ("zeta", "z")]);
        let r = remote(&[
            ("JWT_SECRET", "j"),
            ("ZETA", "z"),
            ("SYSTEMPROMPT_CUSTOM_SECRETS", "ZETA, JWT_SECRET"),
        ]);
        assert!(plan(&d, &r).is_empty());
        let r = remote(&[("JWT_SECRET", "j"), ("ZETA", "z"), ("SYSTEMPROMPT_CUSTOM_SECRETS", "ZETA,OTHER")]);
        assert_eq!(names(&plan(&d, &r).change), ["SYSTEMPROMPT_CUSTOM_SECRETS"]);
        // A digest cannot tell another order from other names: with the list last applied on
        // record, another digest is not a change, and is not claimed verified.
        let salt = b"salt".to_vec();
        let digests = Remote {
            vars: [("JWT_SECRET", "j"), ("ZETA", "z"), ("SYSTEMPROMPT_CUSTOM_SECRETS", "ZETA,JWT_SECRET")]
                .into_iter()
                .map(|(k, v)| {
                    (k.to_owned(), RemoteValue::Digest(Digest::from_hex(&SecretValue::new(v).digest(&salt))))
                })
                .collect(),
            digest_salt: Some(salt),
            ..Remote::default()
        };
        let p = plan(&d, &digests);
        assert_eq!(names(&p.change), ["SYSTEMPROMPT_CUSTOM_SECRETS"]);
        let mut record = LastApplied::new(b"record".to_vec());
        record.remember("SYSTEMPROMPT_CUSTOM_SECRETS", &SecretValue::new("JWT_SECRET,ZETA"));
        let p = super::plan(&d, &digests, Some(&record));
        assert!(p.is_empty(), "{p:?}");
        let list = p.unchanged.iter().find(|w| w.name == "SYSTEMPROMPT_CUSTOM_SECRETS").unwrap();
        assert_eq!(list.comparison, Comparison::SameAsLastApply);
    }

    #[test]
    fn a_partial_desired_state_removes_nothing() {
        let entries = vec![Entry {
            key: "openai".into(),
            source: Source::Environment,
            value: Some(SecretValue::new("o")),
            location: Location::named("environment variable OPENAI_API_KEY"),
        }];
        let r =
            remote(&[("OPENAI_API_KEY", "old"), ("LEGACY", "x"), ("SYSTEMPROMPT_CUSTOM_SECRETS", "LEGACY")]);
        let d = Desired::build(entries, &r, crate::policy::Ignore::default(), true).unwrap();
        let p = plan(&d, &r);
        assert_eq!(names(&p.change), ["OPENAI_API_KEY"]);
        assert!(p.remove.is_empty(), "{p:?}");
        assert_eq!(p.kept, ["LEGACY"]);
        // What it keeps stays listed.
        assert_eq!(d.vars["SYSTEMPROMPT_CUSTOM_SECRETS"].value.expose(), "LEGACY");
    }

    #[test]
    fn order_is_by_name_whatever_the_input_order() {
        let a =
            plan(&desired(&[("zz", "1"), ("aa", "2"), ("mm", "3")]), &remote(&[("YY", "1"), ("BB", "1")]));
        let b =
            plan(&desired(&[("mm", "3"), ("zz", "1"), ("aa", "2")]), &remote(&[("BB", "1"), ("YY", "1")]));
        assert_eq!(a, b);
        assert_eq!(names(&a.add), ["AA", "MM", "SYSTEMPROMPT_CUSTOM_SECRETS", "ZZ"]);
        assert_eq!(a.remove, ["BB", "YY"]);
    }

    #[test]
    fn applying_the_change_set_reaches_the_desired_state() {
        let d = desired(&[("openai", "new"), ("custom", "c")]);
        let r = remote(&[
            ("OPENAI_API_KEY", "old"),
            ("GONE", "g"),
            ("FLY_APP_NAME", "f"),
            ("SIGNING_KEY_PEM", "k"),
        ]);
        let p = plan(&d, &r);
        let mut vars: BTreeMap<String, RemoteValue> = r.vars.clone().into_iter().collect();
        p.change_set(&d).apply_to(&mut vars);
        let after = Remote { vars: vars.into_iter().collect(), ..Remote::default() };
        let again = plan(&d, &after);
        assert!(again.is_empty(), "{again:?}");
        assert_eq!(again.unmanaged, ["SIGNING_KEY_PEM"]);
    }

    #[test]
    fn removing_most_or_all_managed_variables_is_a_mass_removal() {
        let r =
            remote(&[("A", "1"), ("B", "1"), ("C", "1"), ("SIGNING_KEY_PEM", "k"), ("FLY_APP_NAME", "f")]);
        // Everything goes: refused whatever the threshold.
        let all = plan(&Desired::default(), &r);
        assert_eq!(all.mass_removal(1.0), Some(MassRemoval { removing: 3, managed: 3 }));
        // Two of three (plus the derived list) is more than half.
        let two = plan(&desired(&[("a", "1")]), &r);
        assert_eq!(two.remove, ["B", "C"]);
        assert_eq!(two.mass_removal(0.5), Some(MassRemoval { removing: 2, managed: 3 }));
        assert_eq!(two.mass_removal(0.7), None);
        // One of three is not; nor is a plan that removes nothing.
        assert_eq!(plan(&desired(&[("a", "1"), ("b", "1")]), &r).mass_removal(0.5), None);
        assert_eq!(plan(&desired(&[("x", "1")]), &Remote::default()).mass_removal(0.0), None);
        // Cleanup and deploy-owned variables do not count as managed.
        assert_eq!(all.managed_on_remote(), 3);
    }

    fn names_only(names: &[&str]) -> Remote {
        let vars = names.iter().map(|n| ((*n).to_owned(), RemoteValue::Unreadable)).collect();
        Remote { vars, ..Remote::default() }
    }

    fn comparisons(p: &Plan) -> Vec<(&str, Comparison)> {
        let mut all: Vec<_> = p
            .add
            .iter()
            .chain(&p.change)
            .chain(&p.unchanged)
            .map(|w| (w.name.as_str(), w.comparison))
            .collect();
        all.sort();
        all
    }

    #[test]
    fn names_only_remotes_are_compared_with_the_last_apply() {
        let d = desired(&[
            ("openai", "o"),
            ("gemini", "g-new"),
            ("oauth_at_rest_pepper", "gh"),
            ("anthropic", "a"),
        ]);
        let r = names_only(&["OPENAI_API_KEY", "GEMINI_API_KEY", "OAUTH_AT_REST_PEPPER"]);
        let mut record = LastApplied::new(vec![7; 16]);
        record.remember("OPENAI_API_KEY", &SecretValue::new("o"));
        record.remember("GEMINI_API_KEY", &SecretValue::new("g-old"));
        let p = super::plan(&d, &r, Some(&record));
        assert_eq!(
            comparisons(&p),
            [
                ("ANTHROPIC_API_KEY", Comparison::Absent),
                ("GEMINI_API_KEY", Comparison::ChangedSinceLastApply),
                ("OAUTH_AT_REST_PEPPER", Comparison::Unverifiable),
                ("OPENAI_API_KEY", Comparison::SameAsLastApply),
            ]
        );
        assert_eq!(names(&p.unchanged), ["OPENAI_API_KEY"]);
        assert_eq!(names(&p.change), ["GEMINI_API_KEY", "OAUTH_AT_REST_PEPPER"]);
        // Without any record, every key on both sides is rewritten.
        let p = plan(&d, &r);
        assert_eq!(names(&p.change), ["GEMINI_API_KEY", "OAUTH_AT_REST_PEPPER", "OPENAI_API_KEY"]);
        assert!(p.unchanged.is_empty());
    }

    #[test]
    fn digests_compare_the_remote_and_tell_drift_from_local_change() {
        let salt = vec![3u8; 16];
        let d = desired(&[("openai", "o"), ("gemini", "g-new"), ("oauth_at_rest_pepper", "gh")]);
        let digest = |v: &str| {
            RemoteValue::Digest(Digest::from_hex(&SecretValue::new(v).digest(&salt).to_ascii_uppercase()))
        };
        let r = Remote {
            vars: [
                ("OPENAI_API_KEY".to_owned(), digest("o")),
                ("GEMINI_API_KEY".to_owned(), digest("g-old")),
                ("OAUTH_AT_REST_PEPPER".to_owned(), digest("changed-elsewhere")),
            ]
            .into_iter()
            .collect(),
            digest_salt: Some(salt.clone()),
            etag: Some("\"v1\"".into()),
            revision: None,
        };
        let mut record = LastApplied::new(vec![9; 16]);
        record.remember("OAUTH_AT_REST_PEPPER", &SecretValue::new("gh"));
        let p = super::plan(&d, &r, Some(&record));
        assert_eq!(
            comparisons(&p),
            [
                ("GEMINI_API_KEY", Comparison::Differs),
                ("OAUTH_AT_REST_PEPPER", Comparison::DriftedOnRemote),
                ("OPENAI_API_KEY", Comparison::Equal),
            ]
        );
    }

    #[test]
    fn a_long_plan_made_in_halves_is_the_plan_made_in_one_walk() {
        // Every kind of variable, spread over both halves of the names.
        let salt = vec![5u8; 16];
        let digest = |v: &str| RemoteValue::Digest(Digest::from_hex(&SecretValue::new(v).digest(&salt)));
        let n = 3 * PLAN_IN_HALVES_FROM;
        let values: Vec<(String, String)> = (0..n).map(|i| (format!("k_{i:05}"), format!("v{i}"))).collect();
        let pairs: Vec<(&str, &str)> = values.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let d = desired(&pairs);
        let mut vars: BTreeMap<String, RemoteValue> = BTreeMap::new();
        let mut record = LastApplied::new(vec![9; 16]);
        for (i, (key, value)) in values.iter().enumerate() {
            let name = key.to_ascii_uppercase();
            match i % 7 {
                0 => {}
                1 => _ = vars.insert(name, digest("other")),
                2 => {
                    record.remember(&name, &SecretValue::new(value));
                    vars.insert(name, digest("changed elsewhere"));
                }
                3 => _ = vars.insert(name, RemoteValue::Unreadable),
                _ => _ = vars.insert(name, digest(value)),
            }
            if i % 11 == 0 {
                vars.insert(format!("GONE_{i:05}"), digest("x"));
            }
        }
        vars.insert("FLY_APP_NAME".to_owned(), digest("x"));
        let r = Remote {
            vars: vars.into_iter().collect(),
            digest_salt: Some(salt.clone()),
            etag: None,
            revision: None,
        };

        let halves = super::plan(&d, &r, Some(&record));
        let walk = Walk {
            desired: &d,
            record: Some(&record),
            digester: Some(Digester::new(&salt)),
            unset: d.unset_names().collect(),
            foreseen: &[],
        };
        let whole = Plan {
            skipped: d.skipped.clone(),
            ..walk.plan(sorted::join(&d.vars, &r.vars), None, d.vars.len())
        };
        assert_eq!(halves, whole);

        // The same plan from digests made ahead under the listing's salt; digests made under
        // another salt are passed over.
        let ahead = |salt: &[u8], tag: &dyn Fn(&SecretValue) -> [u8; 32]| {
            Foreseen::new(salt.to_vec(), d.vars.iter().map(|(n, v)| (n.clone(), tag(&v.value))).collect())
        };
        let right = ahead(&salt, &|v| Digester::new(&salt).tag(v));
        assert_eq!(plan_foreseen(&d, &r, Some(&record), Some(&right)), halves);
        // Digests made ahead for the first names only (digesting stopped when the listing
        // arrived): the planner digests the rest.
        for first in [0, 1, d.vars.len() / 3, d.vars.len() / 2 + 7, d.vars.len() - 1] {
            let some = Foreseen::new(
                salt.clone(),
                d.vars
                    .iter()
                    .take(first)
                    .map(|(n, v)| (n.clone(), Digester::new(&salt).tag(&v.value)))
                    .collect(),
            );
            assert_eq!(plan_foreseen(&d, &r, Some(&record), Some(&some)), halves, "the first {first}");
        }
        // Wrong digests for the first third: used for those names, and only for those.
        let third = d.vars.len() / 3;
        let wrong_first =
            Foreseen::new(salt.clone(), d.vars.keys().take(third).map(|n| (n.clone(), [0; 32])).collect());
        let partly_wrong = plan_foreseen(&d, &r, Some(&record), Some(&wrong_first));
        let after = d.vars.keys().nth(third).expect("more than a third");
        let equal = |plan: &Plan, in_first: bool| {
            plan.unchanged
                .iter()
                .filter(|w| w.comparison == Comparison::Equal && (w.name < *after) == in_first)
                .count()
        };
        assert!(equal(&halves, true) > 0);
        assert_eq!(equal(&partly_wrong, true), 0);
        assert_eq!(equal(&partly_wrong, false), equal(&halves, false));
        let elsewhere = ahead(&[6; 16], &|v| Digester::new(&[6; 16]).tag(v));
        assert_eq!(plan_foreseen(&d, &r, Some(&record), Some(&elsewhere)), halves);
        // They are used, in both halves: digests made ahead that match nothing find nothing equal.
        let wrong = plan_foreseen(&d, &r, Some(&record), Some(&ahead(&salt, &|_| [0; 32])));
        assert!(halves.unchanged.iter().any(|w| w.comparison == Comparison::Equal));
        assert!(wrong.unchanged.iter().all(|w| w.comparison != Comparison::Equal));
        assert_eq!(wrong.change.len(), halves.change.len() + halves.unchanged.len() - wrong.unchanged.len());
        // Each kind is there.
        let kinds: std::collections::BTreeSet<Comparison> =
            halves.add.iter().chain(&halves.change).chain(&halves.unchanged).map(|w| w.comparison).collect();
        assert_eq!(kinds.len(), 5, "{kinds:?}");
        assert!(!halves.remove.is_empty() && !halves.cleanup.is_empty());
    }

    #[test]
    fn ignored_variables_are_neither_written_nor_removed() {
        let entries = vec![
            Entry {
                key: "legacy_a".into(),
                value: Some(SecretValue::new("new")),
                source: Source::File,
                location: Location::named("x"),
            },
            Entry {
                key: "kept".into(),
                value: Some(SecretValue::new("k")),
                source: Source::File,
                location: Location::named("x"),
            },
        ];
        let ignore = crate::policy::Ignore::new(&["LEGACY_*".into(), "FLY_*".into()]).unwrap();
        let r = remote(&[("LEGACY_A", "old"), ("LEGACY_B", "b"), ("FLY_APP_NAME", "f"), ("GONE", "g")]);
        let d = Desired::from_entries_ignoring(entries, &r, ignore).unwrap();
        let p = plan(&d, &r);
        assert_eq!(names(&p.add), ["KEPT", "SYSTEMPROMPT_CUSTOM_SECRETS"]);
        assert!(p.change.is_empty() && p.cleanup.is_empty());
        assert_eq!(p.remove, ["GONE"]);
        assert_eq!(p.ignored, ["FLY_APP_NAME", "LEGACY_A", "LEGACY_B"]);
        assert_eq!(p.skipped[0].reason, SkipReason::Ignored);
        assert_eq!(d.vars["SYSTEMPROMPT_CUSTOM_SECRETS"].value.expose(), "KEPT");
    }

    #[test]
    fn the_plan_holds_no_values() {
        let d = desired(&[("openai", "CANARY-plan-1"), ("x", "CANARY-plan-2")]);
        let p = plan(&d, &remote(&[("OPENAI_API_KEY", "CANARY-plan-3")]));
        assert!(!format!("{p:?}").contains("CANARY"));
    }
}
