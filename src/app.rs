//! The imperative shell: runs one command from a validated [`Config`], touching files, the
//! remote, the terminal and the given output streams. Everything it decides is delegated to the
//! pure core (`desired`, `plan`, `render`).

use std::io::{BufRead, Write};
use std::path::Path;
use std::time::Duration;

use crate::backend::{Access, Backend};
use crate::config::{Action, Config, Output, RemoteOrigin};
use crate::desired::{Desired, SkipReason};
use crate::error::{Error, Result, display_path, exit};
use crate::plan::{self, Plan, Remote};
use crate::project::ProfileOrigin;
use crate::render::{Detail, Subject, text};
use crate::secrets_file;

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
    if output.verbose > 0 {
        describe_config(config, streams.err).map_err(stderr_error)?;
    }
    let desired = load_desired(config)?;
    if !output.quiet {
        warn_skipped(&desired, output, streams.err).map_err(stderr_error)?;
    }
    match action {
        Action::Plan { detailed_exitcode } => {
            let mut backend = config.remote.open(Access::Read)?;
            let (_, plan) = fetch_and_plan(backend.as_mut(), &desired)?;
            show(config, output, &plan, streams.out)?;
            Ok(if detailed_exitcode && !plan.is_empty() { exit::CHANGES } else { exit::OK })
        }
        Action::Apply { yes, lock_timeout } => {
            let mut backend = open_for_write(config, lock_timeout, output, streams.err)?;
            let (remote, plan) = fetch_and_plan(backend.as_mut(), &desired)?;
            show(config, output, &plan, streams.out)?;
            if plan.is_empty() {
                return Ok(exit::OK);
            }
            streams.out.flush().map_err(stdout_error)?;
            confirm(config, yes, streams)?;
            let changes = plan.change_set(&desired);
            let applied = backend.apply(&remote, &changes)?;
            let remote_name = config.remote.to_string();
            text::write_applied(streams.out, plan.summary(), &remote_name, applied.revision, &output.stdout)
                .map_err(stdout_error)?;
            Ok(exit::OK)
        }
    }
}

/// Opens the remote for writing; if another process holds its lock, says so before waiting.
fn open_for_write(
    config: &Config,
    lock_timeout: Duration,
    output: &Output,
    err: &mut dyn Write,
) -> Result<Box<dyn Backend>> {
    match config.remote.open(Access::Write { lock_timeout: Duration::ZERO }) {
        Err(Error::Locked { path, holder }) if !lock_timeout.is_zero() => {
            if !output.quiet {
                let holder = holder.map(|pid| format!(" (pid {pid})")).unwrap_or_default();
                writeln!(
                    err,
                    "Waiting up to {}s for another cloud-secrets process{holder} to release {}...",
                    lock_timeout.as_secs(),
                    display_path(&path)
                )
                .map_err(stderr_error)?;
            }
            config.remote.open(Access::Write { lock_timeout })
        }
        other => other,
    }
}

fn load_desired(config: &Config) -> Result<Desired> {
    let path = config.profile.secrets_path();
    let entries = secrets_file::load(&path).map_err(|e| match e {
        Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => Error::config(
            format!(
                "profile `{}` has no secrets file: {} does not exist",
                config.profile.name,
                display_path(&path)
            ),
            "create it with the profile's secrets as a JSON object, for example {\"jwt_secret\": \"...\"}",
        ),
        other => other,
    })?;
    Desired::from_entries(entries)
}

fn fetch_and_plan(backend: &mut dyn Backend, desired: &Desired) -> Result<(Remote, Plan)> {
    let remote = backend.fetch()?;
    let plan = plan::plan(desired, &remote);
    Ok((remote, plan))
}

fn show(config: &Config, output: &Output, plan: &Plan, out: &mut dyn Write) -> Result<()> {
    let remote = config.remote.to_string();
    let subject = Subject { profile: &config.profile.name, remote: &remote };
    let detail = match (output.quiet, output.verbose) {
        (true, _) => Detail::Summary,
        (false, 0) => Detail::Normal,
        (false, _) => Detail::Verbose,
    };
    text::write_plan(out, plan, subject, &output.stdout, detail).map_err(stdout_error)
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

fn warn_skipped(desired: &Desired, output: &Output, err: &mut dyn Write) -> std::io::Result<()> {
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

fn describe_config(config: &Config, err: &mut dyn Write) -> std::io::Result<()> {
    let chosen = match config.profile_origin {
        ProfileOrigin::Flag => "--profile",
        ProfileOrigin::Environment => "SYSTEMPROMPT_PROFILE",
        ProfileOrigin::OnlyOne => "the only profile",
    };
    let remote_from = match config.remote_origin {
        RemoteOrigin::Flag => "--remote",
        RemoteOrigin::ProfileYaml => "profile.yaml secrets.remote",
    };
    writeln!(
        err,
        "profile: {} ({}; chosen by {chosen})",
        config.profile.name,
        display_path(&config.profile.dir)
    )?;
    writeln!(err, "remote: {} (from {remote_from})", config.remote)
}

fn stdout_error(e: std::io::Error) -> Error {
    Error::io("write to", Path::new("standard output"), e)
}

fn stderr_error(e: std::io::Error) -> Error {
    Error::io("write to", Path::new("standard error"), e)
}
