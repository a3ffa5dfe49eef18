//! `apply`/`sync`, `set`, `unset`, `cleanup`, `rollback` and `apply FILE`: one pipeline.
//!
//! ```text
//! read values (set --stdin) -> load and check the desired state -> open the remote under the
//! lock and fetch it -> decide what the command covers (scope) -> plan -> show -> ask ->
//! write -> remember (last-applied record) -> report
//! ```
//!
//! Each stage is a function below, handing the next a small typed value.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::time::Duration;

use super::keys;
use super::present::{confirm, detail, report, show, subject};
use super::scope::{Inputs, Scope, cover};
use super::stages::{
    describe, load_desired, load_record, open_for_write, remember, warn_partial, warn_skipped,
};
use super::validate::{Review, gate, gate_required};
use super::{Streams, stdout_error, warn};
use crate::backend::{Applied, Backend};
use crate::cli::{ApplyArgs, Format};
use crate::config::{Config, Output, RemoteConfig};
use crate::desired::Desired;
use crate::error::{Error, Result, exit};
use crate::plan::{self, Plan};
use crate::record::LastApplied;
use crate::remote::Remote;
use crate::render::json::PlanDocument;
use crate::saved::PlanKey;
use crate::secret::SecretValue;
use crate::sources::Loaded;

/// How an apply behaves.
pub(super) struct ApplyOptions {
    yes: bool,
    format: Format,
    lock_timeout: Duration,
    allow_mass_removal: bool,
}

impl ApplyOptions {
    pub(super) fn new(args: &ApplyArgs, allow_mass_removal: bool) -> Self {
        Self {
            yes: args.yes,
            format: args.format,
            lock_timeout: Duration::from_secs(args.lock_timeout),
            allow_mass_removal,
        }
    }
}

/// The desired state as read and checked before the remote is opened.
struct Checked {
    /// The profile's desired state.
    loaded: Loaded,
    /// What the checks found, for the required-variable check after the plan.
    review: Review,
}

/// The plan, with what it was made from and the remote it will be applied to.
struct Planned {
    /// Held until the apply is over: no other apply of this profile and remote interleaves.
    _lock: std::fs::File,
    backend: Box<dyn Backend>,
    record: Option<LastApplied>,
    fetched: Remote,
    desired: Desired,
    plan: Plan,
}

/// Whether and where the plan is confirmed.
struct Asking {
    /// The plan is applied without a question (`--yes`, a saved plan).
    yes: bool,
    /// The terminal to ask on when standard input carried a value (`set --stdin`).
    tty: Option<std::fs::File>,
}

impl Asking {
    fn decide(scope: &Scope, options: &ApplyOptions, config: &Config, stdin_read: bool) -> Self {
        // A saved plan was reviewed when it was made: it is applied without a question.
        let yes = options.yes || matches!(scope, Scope::Saved(_));
        // A value piped into `set --stdin` used standard input: the question goes to the
        // terminal, if there is one, as sudo and ssh do.
        let tty = if stdin_read && !(yes || config.ci || config.stdin_terminal) {
            crate::prompt::terminal()
        } else {
            None
        };
        Self { yes, tty }
    }

    fn will_ask(&self, config: &Config) -> bool {
        !self.yes && (config.can_prompt || self.tty.is_some())
    }
}

/// Plans what `scope` covers, shows it, asks, and applies exactly that plan.
pub(super) fn apply(
    config: &Config,
    remote: &RemoteConfig,
    scope: Scope,
    options: &ApplyOptions,
    output: &Output,
    streams: &mut Streams<'_>,
) -> Result<i32> {
    describe(config, remote, output, streams.err);
    let saved_key = check_saved_for(&scope, config, remote)?;
    let stdin_read = scope.reads_stdin();
    let scope = keys::read_stdin_values(scope, config, streams)?;
    let Checked { loaded, review } = load_and_check(config, &scope, output, streams.err)?;
    let planned = make_plan(config, remote, &scope, loaded, options, output, streams.err)?;
    if let (Scope::Saved(saved), Some(key)) = (&scope, &saved_key) {
        let now = PlanDocument::of(&planned.plan, subject(config, remote, true));
        saved.check_still_holds(key, (&planned.desired, &planned.fetched), &now, &remote.spec.to_string())?;
    }
    let asking = Asking::decide(&scope, options, config, stdin_read);
    present(
        config,
        remote,
        &scope,
        &planned.plan,
        (options.format, asking.will_ask(config)),
        output,
        streams,
    )?;
    let missing = crate::validate::required_missing_after(
        &planned.desired,
        &planned.plan,
        &planned.fetched,
        scope.is_whole_remote(),
    );
    // A plan after which the platform's runtime would not start is shown, then refused.
    let rollback = matches!(scope, Scope::Rollback);
    gate_required(config, &review, &missing, (remote.display(), true, rollback), output, streams.err)?;
    if planned.plan.is_empty() {
        if options.format != Format::Text {
            let shown = (subject(config, remote, scope.is_whole()), &*remote.spec.to_string());
            let _ = report(streams.out, &planned.plan, None, shown, options.format, output);
        }
        keys::after(&scope, config, output, streams.err)?;
        return Ok(exit::OK);
    }
    refuse_mass_removal(&scope, &planned.plan, options, config, remote)?;
    let will_ask = asking.will_ask(config);
    if !asking.yes {
        confirm(config, remote, asking.tty, streams)?;
    }
    if will_ask && scope.is_whole() {
        check_desired_unchanged(config, &planned)?;
    }
    write(config, remote, &scope, planned, options.format, output, streams.out)?;
    keys::after(&scope, config, output, streams.err)?;
    Ok(exit::OK)
}

/// Refuses a saved plan made for another profile or remote, or with another plan key; returns
/// the plan key, for the check once the remote is read.
fn check_saved_for(scope: &Scope, config: &Config, remote: &RemoteConfig) -> Result<Option<PlanKey>> {
    let Scope::Saved(saved) = scope else { return Ok(None) };
    saved.check_made_for(&config.profile.yaml, &remote.spec.identity())?;
    let key = PlanKey::load(&config.profile.state_file("plan-key"), &config.environment, false)?;
    saved.verify(&key)?;
    Ok(Some(key))
}

/// Loads the profile's desired state and runs the checks made before every plan: of the whole
/// desired state for `apply`; for a plan of some keys, of the profile's files and of the values
/// `set` is given.
fn load_and_check(config: &Config, scope: &Scope, output: &Output, err: &mut dyn Write) -> Result<Checked> {
    let loaded = load_desired(config)?;
    let review = Review::of(config, &loaded);
    if scope.is_whole() {
        gate(config, &review, output, err)?;
        warn_partial(config, &loaded, output, err);
        return Ok(Checked { loaded, review });
    }
    let review = if loaded.partial { review.without_findings() } else { review };
    gate(config, &review.with(keys::check_given(scope, config)), output, err)?;
    Ok(Checked { loaded, review: Review::none(config) })
}

/// Opens the remote under the apply lock, fetches it, decides what the command covers and
/// plans it.
fn make_plan(
    config: &Config,
    remote: &RemoteConfig,
    scope: &Scope,
    loaded: Loaded,
    options: &ApplyOptions,
    output: &Output,
    err: &mut dyn Write,
) -> Result<Planned> {
    let (lock, mut backend) = open_for_write(config, remote, options.lock_timeout, output, err)?;
    let record = load_record(config, remote)?;
    let fetched = backend.fetch()?;
    let now = if scope.needs_profile_state() {
        Desired::build(loaded.entries, &fetched, config.ignore.clone(), loaded.partial)?
    } else {
        Desired::default()
    };
    if scope.is_whole() {
        warn_skipped(&now, output, err);
    }
    let previous = match scope {
        Scope::Rollback => previous_version(backend.as_mut(), remote, output, err)?,
        _ => BTreeMap::new(),
    };
    let secrets_shown = config.profile.secrets_display();
    let inputs =
        Inputs { now, fetched: &fetched, ignore: &config.ignore, previous, secrets_shown: &secrets_shown };
    let mut notes = Vec::new();
    let covered = cover(scope, inputs, &mut notes);
    for note in &notes {
        warn(output, err, note);
    }
    let covered = covered?;
    let plan = plan::plan(&covered.desired, &covered.remote, record.as_ref());
    Ok(Planned { _lock: lock, backend, record, fetched, desired: covered.desired, plan })
}

/// The values of the remote's previous version, for `rollback`.
fn previous_version(
    backend: &mut dyn Backend,
    remote: &RemoteConfig,
    output: &Output,
    err: &mut dyn Write,
) -> Result<BTreeMap<String, SecretValue>> {
    let Some((version, previous)) = backend.previous()? else {
        return Err(Error::config(
            format!("{} has no earlier version to roll back to", remote.spec),
            "a rollback needs at least two writes",
        ));
    };
    if !output.quiet {
        let _ = writeln!(err, "Rolling back to version {version} of {}.", remote.spec);
    }
    Ok(previous)
}

/// Shows the plan. Whoever confirms sees the whole plan, even with --quiet; with a machine
/// format, on stderr, so that stdout carries one document. A plan that cannot be shown is not
/// applied.
fn present(
    config: &Config,
    remote: &RemoteConfig,
    scope: &Scope,
    plan: &Plan,
    (format, will_ask): (Format, bool),
    output: &Output,
    streams: &mut Streams<'_>,
) -> Result<()> {
    let subject = subject(config, remote, scope.is_whole());
    let shown = match (format, will_ask) {
        (Format::Text, _) => {
            show(streams.out, plan, subject, Format::Text, (&output.stdout, detail(output, will_ask)))
                .and_then(|()| streams.out.flush())
        }
        (_, true) => show(streams.err, plan, subject, Format::Text, (&output.stderr, detail(output, true))),
        (_, false) => Ok(()),
    };
    shown.map_err(|e| match e.kind() {
        io::ErrorKind::BrokenPipe => Error::Config {
            message: "the output was closed before the plan could be shown; nothing was applied".to_owned(),
            hint: Some("let the plan be read in full, or redirect it to a file".to_owned()),
        },
        _ => stdout_error(e),
    })
}

/// Refuses a plan of the whole remote that removes too much of it, without
/// `--allow-mass-removal`.
fn refuse_mass_removal(
    scope: &Scope,
    plan: &Plan,
    options: &ApplyOptions,
    config: &Config,
    remote: &RemoteConfig,
) -> Result<()> {
    let Some(mass) = plan.mass_removal(config.settings.mass_removal_threshold) else { return Ok(()) };
    if !scope.is_whole_remote() || options.allow_mass_removal {
        return Ok(());
    }
    Err(Error::Config {
        message: format!(
            "refusing to apply: the plan removes {} of the {} managed variables on {}{}; nothing was changed",
            mass.removing,
            mass.managed,
            remote.spec,
            if mass.removing == mass.managed { " (all of them)" } else { "" },
        ),
        hint: Some(format!(
            "check that {} is complete (an emptied or truncated file removes everything); if the removals \
             are intended, run again with --allow-mass-removal",
            config.profile.secrets_display()
        )),
    })
}

/// The question may have waited a long time: the desired state must still be the one the plan
/// was made from.
fn check_desired_unchanged(config: &Config, planned: &Planned) -> Result<()> {
    let reloaded = load_desired(config)?;
    let again = Desired::build(reloaded.entries, &planned.fetched, config.ignore.clone(), reloaded.partial)?;
    if again.vars == planned.desired.vars {
        return Ok(());
    }
    Err(Error::Stale {
        message: format!(
            "{} changed while the question was waiting; the plan shown is no longer what would be applied, so \
             nothing was written",
            config.profile.secrets_display()
        ),
    })
}

/// Writes the plan's change set, remembers what was written, reports, and says what was not
/// done.
fn write(
    config: &Config,
    remote: &RemoteConfig,
    scope: &Scope,
    mut planned: Planned,
    format: Format,
    output: &Output,
    out: &mut dyn Write,
) -> Result<()> {
    let changes = planned.plan.change_set(&planned.desired);
    let applied = {
        // From here on a signal lets the requests in flight finish and stops new ones.
        let _watch = crate::interrupt::Watch::start(&remote.connection.interrupted);
        planned.backend.apply(&planned.fetched, &changes)?
    };
    // What was written is remembered before anything else is said.
    let remembered = match remote.spec.record_key() {
        Some(key) => remember(
            config,
            &key,
            planned.record.take(),
            (&planned.plan, &planned.desired, &planned.fetched),
            &changes,
            &applied,
        ),
        None => Ok(()),
    };
    let remote_name = remote.spec.to_string();
    // The work is done; a reader that went away does not undo it.
    let shown = (subject(config, remote, scope.is_whole()), remote_name.as_str());
    let _ = report(out, &planned.plan, Some(&applied), shown, format, output);
    if let Err(e) = remembered {
        return Err(Error::Remote {
            message: format!(
                "the changes were made on {remote_name}, but the last-applied record could not be saved: {e}"
            ),
            hint: Some(
                "fix the problem with the record file; until then the next plan rewrites keys it cannot verify"
                    .to_owned(),
            ),
        });
    }
    unfinished(&applied, changes.deletes.len(), &remote_name)
}

/// The error for an apply that did not make every change: interrupted, or deletions that failed.
fn unfinished(applied: &Applied, deletes: usize, remote_name: &str) -> Result<()> {
    if applied.interrupted {
        return Err(Error::Interrupted {
            message: format!(
                "interrupted: {} of {deletes} deletions on {remote_name} were not made; every other change in the \
                 plan was",
                applied.failed.len(),
            ),
        });
    }
    if !applied.failed.is_empty() {
        return Err(Error::Remote {
            message: format!(
                "{} of {deletes} deletions failed on {remote_name}; every other change in the plan was made",
                applied.failed.len(),
            ),
            hint: Some("run the command again to finish: it plans from what the remote holds now".to_owned()),
        });
    }
    Ok(())
}
