//! The machine-readable plan: one JSON document per run, versioned by `format_version` and
//! described in docs/plan-format.md (schema: docs/plan.schema.json). This is the only place a
//! plan is serialized; saved plan files reuse it. It holds names, actions, sources and reasons,
//! never a value nor anything computed from one alone.

use std::io::{self, Write};

use serde::{Deserialize, Serialize};

use super::Subject;
use crate::desired::{SkipReason, Skipped, Source};
use crate::error::Location;
use crate::plan::{Cleanup, CleanupReason, Comparison, Plan, Write as PlanWrite};

/// The version of the document's shape. Bumped on any change a reader could notice.
pub const FORMAT_VERSION: u32 = 1;

/// A plan (or the result of applying one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanDocument {
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// `plan` or `apply`.
    pub kind: Kind,
    /// The profile's name.
    pub profile: String,
    /// The remote, as shown to people.
    pub remote: String,
    /// What the plan changes, in the order it is shown: additions, changes, removals, cleanup.
    pub changes: Vec<Change>,
    /// Desired variables the remote already holds.
    pub unchanged: Vec<Unchanged>,
    /// Keys of the desired state that are never synced.
    pub skipped: Vec<SkippedKey>,
    /// Remote variables whose key is present but not set here: left as they are.
    pub kept: Vec<String>,
    /// Deploy-owned variables on the remote: not managed here.
    pub not_managed: Vec<String>,
    /// Remote variables matching `ignore` in cloud-secrets.yaml: left as they are.
    #[serde(default)]
    pub ignored: Vec<String>,
    /// The counts.
    pub summary: Summary,
    /// For `apply`: what happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<ApplyResult>,
}

/// What a document describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A plan, not applied.
    Plan,
    /// A plan and the outcome of applying it.
    Apply,
}

/// One change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Change {
    /// `add`, `change`, `remove` or `cleanup`.
    pub action: Action,
    /// The variable on the remote.
    pub variable: String,
    /// The secrets.json key it comes from (additions and changes; `null` for the derived list).
    pub key: Option<String>,
    /// Where the desired value comes from (additions and changes).
    pub source: Option<ValueSource>,
    /// The variable's class.
    pub class: Class,
    /// How the value was compared with the remote.
    pub comparison: CompareResult,
    /// Whether the remote's value (or its digest) was compared; `false` where it cannot be read.
    pub verified: bool,
    /// For `apply`: what happened to this change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
}

/// What a change does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Create the variable.
    Add,
    /// Overwrite the variable.
    Change,
    /// Delete a managed variable the desired state no longer has.
    Remove,
    /// Delete a system-managed or stale variable.
    Cleanup,
}

/// Where a desired value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueSource {
    /// secrets.json.
    File,
    /// `.env` at the project root.
    Dotenv,
    /// The process environment.
    Environment,
    /// The command line of `set` (or its standard input).
    CommandLine,
    /// The remote's previous version (`rollback`).
    PreviousVersion,
    /// Computed by cloud-secrets.
    Derived,
}

/// A variable's class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// Owned by the profile's desired state.
    Managed,
    /// Set by the hosting platform.
    SystemManaged,
    /// Synced by mistake once.
    Stale,
}

/// How a value was compared (see [`Comparison`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompareResult {
    /// Not on the remote.
    Absent,
    /// Equal to the remote's value or digest.
    Equal,
    /// Different from the remote's value or digest.
    Differs,
    /// Different on the remote, though the desired value is the one last applied (drift).
    DriftedOnRemote,
    /// Unreadable remotely; the one last applied.
    SameAsLastApply,
    /// Unreadable remotely; not the one last applied.
    ChangedSinceLastApply,
    /// Unreadable remotely, no record: rewritten.
    Unverifiable,
    /// A removal or cleanup: nothing to compare.
    NotApplicable,
}

/// A desired variable the remote already holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Unchanged {
    /// The variable.
    pub variable: String,
    /// The secrets.json key (`null` for the derived list).
    pub key: Option<String>,
    /// Where the value comes from.
    pub source: ValueSource,
    /// `equal` (verified) or `same_as_last_apply` (not verifiable remotely).
    pub comparison: CompareResult,
    /// Whether the remote itself was compared.
    pub verified: bool,
}

/// A key that is never synced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkippedKey {
    /// The secrets.json key.
    pub key: String,
    /// The variable it maps to.
    pub variable: String,
    /// Why.
    pub reason: SkipDoc,
    /// For `shadowed`: the key that provides the variable instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadowed_by: Option<String>,
    /// Where the key is written.
    pub location: String,
}

/// Why a key is skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipDoc {
    /// Null or empty.
    NotSet,
    /// Maps to a system-managed variable.
    SystemManaged,
    /// Maps to a stale variable.
    Stale,
    /// Maps to a deploy-owned variable.
    DeployOwned,
    /// Maps to the derived list.
    Derived,
    /// `database_url` beside a set `internal_database_url`.
    Shadowed,
    /// Matches `ignore` in cloud-secrets.yaml.
    Ignored,
}

/// The counts of a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Summary {
    /// Additions.
    pub add: usize,
    /// Changes.
    pub change: usize,
    /// Removals.
    pub remove: usize,
    /// Cleanups.
    pub cleanup: usize,
    /// Unchanged variables.
    pub unchanged: usize,
    /// Changes and unchanged variables whose remote value could not be compared.
    pub unverified: usize,
}

/// What happened to one change when applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Done.
    Applied,
    /// Not done (see the run's error).
    Failed,
}

/// What happened when a plan was applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplyResult {
    /// `applied`, `partly_applied` or `nothing_to_do`.
    pub status: ApplyStatus,
    /// The store's version afterwards, where it has one.
    pub revision: Option<u64>,
}

/// The overall outcome of an apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApplyStatus {
    /// Every change was made.
    Applied,
    /// Some deletions failed; every other change was made.
    PartlyApplied,
    /// The plan was empty.
    NothingToDo,
}

impl PlanDocument {
    /// The document of a plan.
    pub fn of(plan: &Plan, subject: Subject<'_>) -> Self {
        let mut changes: Vec<Change> = Vec::new();
        changes.extend(plan.add.iter().map(|w| write_change(Action::Add, w)));
        changes.extend(plan.change.iter().map(|w| write_change(Action::Change, w)));
        changes.extend(plan.remove.iter().map(|name| Change {
            action: Action::Remove,
            variable: name.clone(),
            key: None,
            source: None,
            class: Class::Managed,
            comparison: CompareResult::NotApplicable,
            verified: true,
            outcome: None,
        }));
        changes.extend(plan.cleanup.iter().map(|c| Change {
            action: Action::Cleanup,
            variable: c.name.clone(),
            key: None,
            source: None,
            class: match c.reason {
                CleanupReason::SystemManaged => Class::SystemManaged,
                CleanupReason::Stale => Class::Stale,
            },
            comparison: CompareResult::NotApplicable,
            verified: true,
            outcome: None,
        }));
        let unchanged: Vec<Unchanged> = plan
            .unchanged
            .iter()
            .map(|w| Unchanged {
                variable: w.name.clone(),
                key: w.key.clone(),
                source: source(w.source),
                comparison: comparison(w.comparison),
                verified: w.comparison.verified(),
            })
            .collect();
        let unverified =
            changes.iter().filter(|c| !c.verified).count() + unchanged.iter().filter(|u| !u.verified).count();
        let s = plan.summary();
        Self {
            format_version: FORMAT_VERSION,
            kind: Kind::Plan,
            profile: subject.profile.to_owned(),
            remote: subject.remote.to_owned(),
            changes,
            summary: Summary {
                add: s.add,
                change: s.change,
                remove: s.remove,
                cleanup: s.cleanup,
                unchanged: unchanged.len(),
                unverified,
            },
            unchanged,
            skipped: plan.skipped.iter().map(skipped).collect(),
            kept: plan.kept.clone(),
            not_managed: plan.unmanaged.clone(),
            ignored: plan.ignored.clone(),
            result: None,
        }
    }

    /// The plan this document describes (for showing a saved plan).
    pub fn to_plan(&self) -> Plan {
        let write = |c: &Change| PlanWrite {
            name: c.variable.clone(),
            key: c.key.clone(),
            source: source_back(c.source.unwrap_or(ValueSource::File)),
            comparison: comparison_back(c.comparison),
        };
        let of = |action: Action| self.changes.iter().filter(move |c| c.action == action);
        Plan {
            add: of(Action::Add).map(write).collect(),
            change: of(Action::Change).map(write).collect(),
            remove: of(Action::Remove).map(|c| c.variable.clone()).collect(),
            cleanup: of(Action::Cleanup)
                .map(|c| Cleanup {
                    name: c.variable.clone(),
                    reason: if c.class == Class::Stale {
                        CleanupReason::Stale
                    } else {
                        CleanupReason::SystemManaged
                    },
                })
                .collect(),
            unchanged: self
                .unchanged
                .iter()
                .map(|u| PlanWrite {
                    name: u.variable.clone(),
                    key: u.key.clone(),
                    source: source_back(u.source),
                    comparison: comparison_back(u.comparison),
                })
                .collect(),
            skipped: self
                .skipped
                .iter()
                .map(|s| Skipped {
                    key: s.key.clone(),
                    name: s.variable.clone(),
                    aliases: Vec::new(),
                    reason: match s.reason {
                        SkipDoc::NotSet => SkipReason::NotSet,
                        SkipDoc::SystemManaged => SkipReason::SystemManaged,
                        SkipDoc::Stale => SkipReason::Stale,
                        SkipDoc::DeployOwned => SkipReason::DeployOwned,
                        SkipDoc::Derived => SkipReason::Derived,
                        SkipDoc::Ignored => SkipReason::Ignored,
                        SkipDoc::Shadowed => {
                            SkipReason::ShadowedBy(s.shadowed_by.clone().unwrap_or_default())
                        }
                    },
                    location: Location::named(s.location.clone()),
                })
                .collect(),
            kept: self.kept.clone(),
            unmanaged: self.not_managed.clone(),
            ignored: self.ignored.clone(),
        }
    }

    /// Marks the document as the result of an apply: every change applied but the failed
    /// deletions.
    pub fn applied(mut self, failed: &[(String, String)], revision: Option<u64>) -> Self {
        self.kind = Kind::Apply;
        let mut any_failed = false;
        for change in &mut self.changes {
            let failed = failed.iter().any(|(name, _)| *name == change.variable)
                && matches!(change.action, Action::Remove | Action::Cleanup);
            any_failed |= failed;
            change.outcome = Some(if failed { Outcome::Failed } else { Outcome::Applied });
        }
        let status = match (self.changes.is_empty(), any_failed) {
            (true, _) => ApplyStatus::NothingToDo,
            (false, true) => ApplyStatus::PartlyApplied,
            (false, false) => ApplyStatus::Applied,
        };
        self.result = Some(ApplyResult { status, revision });
        self
    }
}

/// Writes a document, pretty-printed, with a final newline.
pub fn write_document<T: Serialize>(w: &mut dyn Write, document: &T) -> io::Result<()> {
    // The serializer writes a few bytes at a time: into a buffer of a known type, not through
    // `dyn Write` for each piece.
    let mut w = io::BufWriter::with_capacity(64 * 1024, w);
    serde_json::to_writer_pretty(&mut w, document).map_err(|e| match e.io_error_kind() {
        // Keep the kind (a closed pipe must still be recognised as one).
        Some(kind) => io::Error::from(kind),
        None => io::Error::other(e),
    })?;
    writeln!(w)?;
    w.flush()
}

fn write_change(action: Action, w: &PlanWrite) -> Change {
    Change {
        action,
        variable: w.name.clone(),
        key: w.key.clone(),
        source: Some(source(w.source)),
        class: Class::Managed,
        comparison: comparison(w.comparison),
        verified: w.comparison.verified() || w.comparison == Comparison::Absent,
        outcome: None,
    }
}

fn skipped(s: &Skipped) -> SkippedKey {
    let (reason, shadowed_by) = match &s.reason {
        SkipReason::NotSet => (SkipDoc::NotSet, None),
        SkipReason::SystemManaged => (SkipDoc::SystemManaged, None),
        SkipReason::Stale => (SkipDoc::Stale, None),
        SkipReason::DeployOwned => (SkipDoc::DeployOwned, None),
        SkipReason::Derived => (SkipDoc::Derived, None),
        SkipReason::ShadowedBy(key) => (SkipDoc::Shadowed, Some(key.clone())),
        SkipReason::Ignored => (SkipDoc::Ignored, None),
    };
    SkippedKey {
        key: s.key.clone(),
        variable: s.name.clone(),
        reason,
        shadowed_by,
        location: s.location.to_string(),
    }
}

fn source(source: Source) -> ValueSource {
    match source {
        Source::File => ValueSource::File,
        Source::DotEnv => ValueSource::Dotenv,
        Source::Environment => ValueSource::Environment,
        Source::CommandLine => ValueSource::CommandLine,
        Source::PreviousVersion => ValueSource::PreviousVersion,
        Source::Derived => ValueSource::Derived,
    }
}

fn source_back(source: ValueSource) -> Source {
    match source {
        ValueSource::File => Source::File,
        ValueSource::Dotenv => Source::DotEnv,
        ValueSource::Environment => Source::Environment,
        ValueSource::CommandLine => Source::CommandLine,
        ValueSource::PreviousVersion => Source::PreviousVersion,
        ValueSource::Derived => Source::Derived,
    }
}

fn comparison(c: Comparison) -> CompareResult {
    match c {
        Comparison::Absent => CompareResult::Absent,
        Comparison::Equal => CompareResult::Equal,
        Comparison::Differs => CompareResult::Differs,
        Comparison::DriftedOnRemote => CompareResult::DriftedOnRemote,
        Comparison::SameAsLastApply => CompareResult::SameAsLastApply,
        Comparison::ChangedSinceLastApply => CompareResult::ChangedSinceLastApply,
        Comparison::Unverifiable => CompareResult::Unverifiable,
    }
}

fn comparison_back(c: CompareResult) -> Comparison {
    match c {
        CompareResult::Absent | CompareResult::NotApplicable => Comparison::Absent,
        CompareResult::Equal => Comparison::Equal,
        CompareResult::Differs => Comparison::Differs,
        CompareResult::DriftedOnRemote => Comparison::DriftedOnRemote,
        CompareResult::SameAsLastApply => Comparison::SameAsLastApply,
        CompareResult::ChangedSinceLastApply => Comparison::ChangedSinceLastApply,
        CompareResult::Unverifiable => Comparison::Unverifiable,
    }
}

/// The document of `compare A B`: every variable name of either side, never a value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CompareDocument {
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// Always `compare`.
    pub kind: &'static str,
    /// What was compared: `desired` (the two desired states) or `remotes`.
    pub of: &'static str,
    /// The first side.
    pub a: CompareSide,
    /// The second side.
    pub b: CompareSide,
    /// Each name, in name order.
    pub variables: Vec<CompareRow>,
    /// The counts, and whether the two differ.
    pub summary: CompareSummary,
}

/// One side of a comparison.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CompareSide {
    /// The profile's name.
    pub profile: String,
    /// Its remote, as shown to people (with `--remotes`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
}

/// One name, compared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CompareRow {
    /// The variable name.
    pub name: String,
    /// `set`, `not_set`, `absent` or `unreadable` on the first side.
    pub a: &'static str,
    /// The same on the second side.
    pub b: &'static str,
    /// `same`, `different`, `only_in_a`, `only_in_b`, `not_set` or `unknown`.
    pub result: &'static str,
}

/// The counts of a comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CompareSummary {
    /// Names with the same value on both sides.
    pub same: usize,
    /// Names with different values.
    pub different: usize,
    /// Names with a value on the first side only.
    pub only_in_a: usize,
    /// Names with a value on the second side only.
    pub only_in_b: usize,
    /// Names with no value on either side.
    pub not_set: usize,
    /// Names whose values could not be compared.
    pub unknown: usize,
    /// Whether the two differ (different values, or a value on one side only).
    pub differ: bool,
}

impl CompareDocument {
    /// The document of a comparison of `a` and `b`; `remotes` when the remotes were compared.
    pub fn of(a: CompareSide, b: CompareSide, rows: &[crate::compare::Row], remotes: bool) -> Self {
        use crate::compare::{Shown, Verdict};
        let shown = |s: Shown| match s {
            Shown::Set => "set",
            Shown::NotSet => "not_set",
            Shown::Absent => "absent",
            Shown::Unreadable => "unreadable",
        };
        let result = |v: Verdict| match v {
            Verdict::Same => "same",
            Verdict::Different => "different",
            Verdict::OnlyInA => "only_in_a",
            Verdict::OnlyInB => "only_in_b",
            Verdict::NotSet => "not_set",
            Verdict::Unknown => "unknown",
        };
        let count = |v: Verdict| rows.iter().filter(|r| r.verdict == v).count();
        let summary = CompareSummary {
            same: count(Verdict::Same),
            different: count(Verdict::Different),
            only_in_a: count(Verdict::OnlyInA),
            only_in_b: count(Verdict::OnlyInB),
            not_set: count(Verdict::NotSet),
            unknown: count(Verdict::Unknown),
            differ: crate::compare::differ(rows),
        };
        let variables = rows
            .iter()
            .map(|r| CompareRow {
                name: r.name.clone(),
                a: shown(r.a),
                b: shown(r.b),
                result: result(r.verdict),
            })
            .collect();
        Self {
            format_version: FORMAT_VERSION,
            kind: "compare",
            of: if remotes { "remotes" } else { "desired" },
            a,
            b,
            variables,
            summary,
        }
    }
}

/// The document of `profiles --format json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProfileListDocument {
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// Always `profiles`.
    pub kind: &'static str,
    /// Each profile of the project, in name order.
    pub profiles: Vec<ProfileListEntry>,
}

/// One profile of `profiles --format json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProfileListEntry {
    /// The profile's name.
    pub name: String,
    /// Whether a command run here without `--profile` would use it.
    pub selected: bool,
    /// `folder` (`profiles/<name>/profile.yaml`) or `flat` (`profiles/<name>.profile.yaml`).
    pub layout: &'static str,
    /// Its profile.yaml, relative to the working directory where it can be.
    pub profile_yaml: String,
    /// `local` or `cloud` (profile.yaml `target`), if it could be read.
    pub target: Option<&'static str>,
    /// The tenant (profile.yaml `cloud.tenant_id`, after `${VAR}` substitution).
    pub tenant: Option<String>,
    /// The remote, credentials redacted.
    pub remote: Option<String>,
    /// Where the remote comes from: `cloud-secrets.yaml`, `profile.yaml` (a field earlier
    /// versions read there), or `target` (the systemprompt cloud of a cloud profile).
    pub remote_from: Option<&'static str>,
    /// Why the profile could not be read, if it could not.
    pub error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Plan {
        Plan {
            add: vec![PlanWrite {
                name: "A".into(),
                key: Some("a".into()),
                source: Source::DotEnv,
                comparison: Comparison::Absent,
            }],
            change: vec![PlanWrite {
                name: "B".into(),
                key: Some("b".into()),
                source: Source::File,
                comparison: Comparison::Unverifiable,
            }],
            remove: vec!["C".into()],
            cleanup: vec![Cleanup { name: "FLY_APP_NAME".into(), reason: CleanupReason::SystemManaged }],
            unchanged: vec![PlanWrite {
                name: "D".into(),
                key: None,
                source: Source::Derived,
                comparison: Comparison::SameAsLastApply,
            }],
            skipped: vec![Skipped {
                key: "database_url".into(),
                name: "DATABASE_URL".into(),
                aliases: Vec::new(),
                reason: SkipReason::ShadowedBy("internal_database_url".into()),
                location: Location::named("secrets.json:3:3"),
            }],
            kept: vec!["K".into()],
            unmanaged: vec!["SIGNING_KEY_PEM".into()],
            ignored: vec!["LEGACY_X".into()],
        }
    }

    #[test]
    fn a_document_round_trips_to_the_same_plan() {
        let plan = sample();
        let doc = PlanDocument::of(&plan, Subject { profile: "p", remote: "r", whole: true });
        assert_eq!(doc.summary.unverified, 2);
        let text = serde_json::to_string(&doc).unwrap();
        let back: PlanDocument = serde_json::from_str(&text).unwrap();
        assert_eq!(back, doc);
        assert_eq!(back.to_plan(), plan);
    }

    #[test]
    fn apply_results_mark_each_change() {
        let doc = PlanDocument::of(&sample(), Subject { profile: "p", remote: "r", whole: true })
            .applied(&[("C".into(), "503".into())], None);
        let outcomes: Vec<_> = doc.changes.iter().map(|c| (c.variable.as_str(), c.outcome)).collect();
        assert_eq!(
            outcomes,
            [
                ("A", Some(Outcome::Applied)),
                ("B", Some(Outcome::Applied)),
                ("C", Some(Outcome::Failed)),
                ("FLY_APP_NAME", Some(Outcome::Applied))
            ]
        );
        assert_eq!(doc.result.unwrap().status, ApplyStatus::PartlyApplied);
    }
}

/// The document of `plan --all-profiles`: every profile's plan, or why there is none.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProfilesDocument {
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// Always `plan_all_profiles`.
    pub kind: &'static str,
    /// Each profile of the project, by name.
    pub profiles: Vec<ProfileEntry>,
    /// The counts.
    pub summary: ProfilesSummary,
}

/// One profile of `plan --all-profiles`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProfileEntry {
    /// The profile's name.
    pub profile: String,
    /// The remote, as shown to people; empty when it could not be worked out.
    pub remote: String,
    /// What came of planning it.
    pub status: ProfileStatus,
    /// The plan, when one was made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<PlanDocument>,
    /// Why planning it failed (the plan may still be there: a plan the platform could not start
    /// from is shown and refused).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDocument>,
}

/// What came of planning one profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProfileStatus {
    /// Planned: nothing to change.
    NoChanges,
    /// Planned: changes pending.
    Changes,
    /// Not planned, or refused.
    Failed,
    /// The profile names no remote: not planned.
    NoRemote,
}

/// An error, as the terminal shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorDocument {
    /// What went wrong.
    pub message: String,
    /// What to do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// The counts of `plan --all-profiles`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ProfilesSummary {
    /// Profiles in the project.
    pub profiles: usize,
    /// Profiles planned with changes pending.
    pub with_changes: usize,
    /// Profiles planned with nothing to change.
    pub without_changes: usize,
    /// Profiles that could not be planned, or whose plan was refused.
    pub failed: usize,
    /// Profiles that name no remote.
    pub no_remote: usize,
}

impl ProfilesDocument {
    /// The document of these entries.
    pub fn of(profiles: Vec<ProfileEntry>) -> Self {
        let count = |status: ProfileStatus| profiles.iter().filter(|p| p.status == status).count();
        let summary = ProfilesSummary {
            profiles: profiles.len(),
            with_changes: count(ProfileStatus::Changes),
            without_changes: count(ProfileStatus::NoChanges),
            failed: count(ProfileStatus::Failed),
            no_remote: count(ProfileStatus::NoRemote),
        };
        Self { format_version: FORMAT_VERSION, kind: "plan_all_profiles", profiles, summary }
    }
}
