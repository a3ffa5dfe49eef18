//! The imperative shell: runs one command from a validated [`Config`], touching files, the
//! remote, the terminal and the given output streams. Everything it decides is delegated to the
//! pure core (`desired`, `plan`, `render`).

use std::io::{self, BufRead, Write};
use std::path::Path;
use std::time::Duration;

use crate::backend::{Access, Backend};
use crate::config::{Action, Config, Output, RemoteOrigin};
use crate::desired::{Desired, SkipReason};
use crate::error::{Error, Result, display_path, exit};
use crate::plan::{self, Comparison, MassRemoval, Plan, Remote};
use crate::project::{DEFAULT_MASS_REMOVAL_THRESHOLD, ProfileOrigin};
use crate::record::{self, LastApplied};
use crate::render::{Detail, Subject, text};
use crate::secrets_file::{self, FileEntry};

/// The streams a run reads and writes.
pub struct Streams<'a> {
    /// Results: the plan, the apply report.
    pub out: &'a mut dyn Write,
    /// Progress, prompts, warnings and errors.
    pub err: &'a mut dyn Write,
    /// Where answers to prompts come from.
    pub input: &'a mut dyn BufRead,
}

/// Runs `action` and returns the exit code.
pub fn run(config: &Config, action: Action, output: &Output, streams: &mut Streams<'_>) -> Result<i32> {
    // Diagnostics on stderr are best effort: a closed stderr must not change the outcome.
    if output.verbose > 0 {
        let _ = describe_config(config, streams.err);
    }
    if !output.quiet {
        for warning in &config.profile.warnings {
            let _ = writeln!(streams.err, "{} {warning}", output.stderr.warning().apply_to("warning:"));
        }
    }
    // Read the desired state before touching the remote, so that bad input fails fast.
    let entries = load_entries(config)?;
    match action {
        Action::Plan { detailed_exitcode } => {
            let mut backend = config.remote.open(Access::Read, &config.connection)?;
            let record = load_record(config)?;
            let (_, _, plan) =
                fetch_and_plan(backend.as_mut(), entries, record.as_ref(), output, streams.err)?;
            // A reader that stops reading (`| head`) is not an error: the plan was computed.
            match show(config, output, &plan, detail(output, false), streams.out) {
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
                other => other.map_err(stdout_error)?,
            }
            if let Some(mass) = plan.mass_removal(threshold(config)) {
                let _ = warn_mass_removal(mass, output, streams.err);
            }
            Ok(if detailed_exitcode && !plan.is_empty() { exit::CHANGES } else { exit::OK })
        }
        Action::Apply { yes, lock_timeout, allow_mass_removal } => {
            let mut backend = open_for_write(config, lock_timeout, output, streams.err)?;
            let record = load_record(config)?;
            let (remote, desired, plan) =
                fetch_and_plan(backend.as_mut(), entries, record.as_ref(), output, streams.err)?;
            let will_ask = !yes && config.can_prompt;
            // Whoever confirms sees the whole plan, even with --quiet. A plan that cannot be
            // shown is not applied.
            show(config, output, &plan, detail(output, will_ask), streams.out)
                .and_then(|()| streams.out.flush())
                .map_err(|e| match e.kind() {
                    io::ErrorKind::BrokenPipe => Error::Config {
                        message:
                            "standard output was closed before the plan could be shown; nothing was applied"
                                .to_owned(),
                        hint: Some("let the plan be read in full, or redirect it to a file".to_owned()),
                    },
                    _ => stdout_error(e),
                })?;
            if plan.is_empty() {
                return Ok(exit::OK);
            }
            if let Some(mass) = plan.mass_removal(threshold(config))
                && !allow_mass_removal
            {
                return Err(mass_removal_error(mass, config));
            }
            confirm(config, yes, streams)?;
            if will_ask {
                // The question may have waited a long time: the desired state must still be
                // the one the plan was made from.
                let again = Desired::from_entries(load_entries(config)?, &remote)?;
                if again.vars != desired.vars {
                    return Err(Error::Stale {
                        message: format!(
                            "{} changed while the question was waiting; the plan shown is no longer what \
                             would be applied, so nothing was written",
                            display_path(&config.profile.secrets_path())
                        ),
                    });
                }
            }
            let changes = plan.change_set(&desired);
            let applied = backend.apply(&remote, &changes)?;
            // What was written is remembered before anything else can fail.
            if let Some(key) = config.remote.record_key() {
                let mut record = match record {
                    Some(record) => record,
                    None => LastApplied::fresh()?,
                };
                for (name, value) in &changes.upserts {
                    record.remember(name, value);
                }
                // Values the remote itself showed equal are as good as applied.
                for write in plan.unchanged.iter().filter(|w| w.comparison == Comparison::Equal) {
                    if let Some(var) = desired.vars.get(&write.name) {
                        record.remember(&write.name, &var.value);
                    }
                }
                for name in changes.deletes.iter().filter(|n| !applied.failed.iter().any(|(f, _)| f == *n)) {
                    record.forget(name);
                }
                record::save(&config.profile.dir, &key, &record)?;
            }
            // The work is done; a reader that went away does not undo it.
            let remote_name = config.remote.to_string();
            if applied.failed.is_empty() {
                let _ = text::write_applied(
                    streams.out,
                    plan.summary(),
                    &remote_name,
                    applied.revision,
                    &output.stdout,
                );
                return Ok(exit::OK);
            }
            let _ =
                text::write_partly_applied(streams.out, &plan, &applied.failed, &remote_name, &output.stdout);
            Err(Error::Remote {
                message: format!(
                    "{} of {} deletions failed on {remote_name}; every other change in the plan was made",
                    applied.failed.len(),
                    changes.deletes.len()
                ),
                hint: Some("run apply again to finish: it plans from what the remote holds now".to_owned()),
            })
        }
    }
}

fn detail(output: &Output, will_ask: bool) -> Detail {
    match (output.quiet && !will_ask, output.verbose) {
        (true, _) => Detail::Summary,
        (false, 0) => Detail::Normal,
        (false, _) => Detail::Verbose,
    }
}

fn threshold(config: &Config) -> f64 {
    config.profile.settings.secrets.mass_removal_threshold.unwrap_or(DEFAULT_MASS_REMOVAL_THRESHOLD)
}

/// Opens the remote for writing; if another process holds its lock, says so before waiting.
fn open_for_write(
    config: &Config,
    lock_timeout: Duration,
    output: &Output,
    err: &mut dyn Write,
) -> Result<Box<dyn Backend>> {
    match config.remote.open(Access::Write { lock_timeout: Duration::ZERO }, &config.connection) {
        Err(Error::Locked { path, holder }) if !lock_timeout.is_zero() => {
            if !output.quiet {
                let holder = holder.map(|pid| format!(" (pid {pid})")).unwrap_or_default();
                let _ = writeln!(
                    err,
                    "Waiting up to {}s for another cloud-secrets process{holder} to release {}...",
                    lock_timeout.as_secs(),
                    display_path(&path)
                );
            }
            config.remote.open(Access::Write { lock_timeout }, &config.connection)
        }
        other => other,
    }
}

fn load_entries(config: &Config) -> Result<Vec<FileEntry>> {
    let path = config.profile.secrets_path();
    secrets_file::load(&path)?.ok_or_else(|| {
        Error::config(
            format!(
                "profile `{}` has no secrets file: {} does not exist",
                config.profile.name,
                display_path(&path)
            ),
            "create it with the profile's secrets as a JSON object, for example {\"jwt_secret\": \"...\"}",
        )
    })
}

/// What was last applied to this remote, for remotes whose values cannot all be read back.
fn load_record(config: &Config) -> Result<Option<LastApplied>> {
    match config.remote.record_key() {
        Some(key) => record::load(&config.profile.dir, &key),
        None => Ok(None),
    }
}

fn fetch_and_plan(
    backend: &mut dyn Backend,
    entries: Vec<FileEntry>,
    record: Option<&LastApplied>,
    output: &Output,
    err: &mut dyn Write,
) -> Result<(Remote, Desired, Plan)> {
    let remote = backend.fetch()?;
    let desired = Desired::from_entries(entries, &remote)?;
    if !output.quiet {
        let _ = warn_skipped(&desired, output, err);
    }
    let plan = plan::plan(&desired, &remote, record);
    Ok((remote, desired, plan))
}

fn show(
    config: &Config,
    output: &Output,
    plan: &Plan,
    detail: Detail,
    out: &mut dyn Write,
) -> io::Result<()> {
    let remote = config.remote.to_string();
    let subject = Subject { profile: &config.profile.name, remote: &remote };
    text::write_plan(out, plan, subject, &output.stdout, detail)
}

fn confirm(config: &Config, yes: bool, streams: &mut Streams<'_>) -> Result<()> {
    if yes {
        return Ok(());
    }
    if !config.can_prompt {
        return Err(Error::NotConfirmed {
            message: "not applying: there is no terminal to confirm the plan on (standard input is not a \
                      terminal, or CI is set); nothing was changed"
                .to_owned(),
            hint: Some(
                "review the plan above, then run again with --yes to apply without a prompt".to_owned(),
            ),
        });
    }
    let question = format!("Apply these changes to {} (profile {})?", config.remote, config.profile.name);
    let confirmed = crate::prompt::confirm(&question, streams.input, streams.err).map_err(stderr_error)?;
    if confirmed {
        Ok(())
    } else {
        Err(Error::NotConfirmed { message: "Apply cancelled; nothing was changed.".to_owned(), hint: None })
    }
}

fn mass_removal_error(mass: MassRemoval, config: &Config) -> Error {
    Error::Config {
        message: format!(
            "refusing to apply: the plan removes {} of the {} managed variables on {}{}; nothing was changed",
            mass.removing,
            mass.managed,
            config.remote,
            if mass.removing == mass.managed { " (all of them)" } else { "" },
        ),
        hint: Some(format!(
            "check that {} is complete (an emptied or truncated file removes everything); if the removals \
             are intended, run again with --allow-mass-removal",
            display_path(&config.profile.secrets_path())
        )),
    }
}

fn warn_mass_removal(mass: MassRemoval, output: &Output, err: &mut dyn Write) -> io::Result<()> {
    writeln!(
        err,
        "{} this plan removes {} of the {} managed variables on the remote; apply will refuse it \
         without --allow-mass-removal",
        output.stderr.warning().apply_to("warning:"),
        mass.removing,
        mass.managed
    )
}

fn warn_skipped(desired: &Desired, output: &Output, err: &mut dyn Write) -> io::Result<()> {
    for skipped in &desired.skipped {
        let why = match &skipped.reason {
            SkipReason::SystemManaged => "which the hosting platform sets",
            SkipReason::Stale => "which is stale and must no longer be synced",
            SkipReason::DeployOwned => "which the platform's deploy step writes",
            SkipReason::Derived => "which cloud-secrets computes from the other keys",
            SkipReason::NotSet | SkipReason::ShadowedBy(_) => continue,
        };
        writeln!(
            err,
            "{} {}: `{}` maps to {}, {why}; it is skipped. Remove it from secrets.json.",
            output.stderr.warning().apply_to("warning:"),
            skipped.location,
            skipped.key,
            skipped.name
        )?;
    }
    Ok(())
}

fn describe_config(config: &Config, err: &mut dyn Write) -> io::Result<()> {
    let chosen = match config.profile_origin {
        ProfileOrigin::Flag => "--profile",
        ProfileOrigin::Environment => "SYSTEMPROMPT_PROFILE",
        ProfileOrigin::OnlyOne => "the only profile",
    };
    let remote_from = match config.remote_origin {
        RemoteOrigin::Flag => "--remote",
        RemoteOrigin::ProfileYaml => "profile.yaml secrets.remote",
        RemoteOrigin::Target => "profile.yaml target: cloud",
    };
    writeln!(
        err,
        "profile: {} ({}; chosen by {chosen})",
        config.profile.name,
        display_path(&config.profile.dir)
    )?;
    writeln!(err, "remote: {} (from {remote_from})", config.remote)
}

fn stdout_error(e: io::Error) -> Error {
    Error::io("write to", Path::new("standard output"), e)
}

fn stderr_error(e: io::Error) -> Error {
    Error::io("write to", Path::new("standard error"), e)
}
