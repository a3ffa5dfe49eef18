//! Showing a plan and its outcome, and asking before applying: in the run's format, to the
//! stream each belongs on.

use std::io::{self, Write};

use super::{Streams, stderr_error};
use crate::backend::Applied;
use crate::cli::Format;
use crate::color::Palette;
use crate::config::{Config, Output, RemoteConfig};
use crate::error::{Error, Result};
use crate::plan::Plan;
use crate::render::json::{self, PlanDocument};
use crate::render::{Detail, Subject, markdown, text};

/// How much of a plan to show: a plan awaiting a question is shown whole, even with `--quiet`.
pub(super) fn detail(output: &Output, will_ask: bool) -> Detail {
    match (output.quiet && !will_ask, output.verbose) {
        (true, _) => Detail::Summary,
        (false, 0) => Detail::Normal,
        (false, _) => Detail::Verbose,
    }
}

/// What a plan is between; the remote's name lives as long as the configuration.
pub(super) fn subject<'a>(config: &'a Config, remote: &'a RemoteConfig, whole: bool) -> Subject<'a> {
    Subject { profile: &config.profile.name, remote: remote.display(), whole }
}

/// Writes `plan` in `format` (text in `palette`, at `detail`).
pub(super) fn show(
    out: &mut dyn Write,
    plan: &Plan,
    subject: Subject<'_>,
    format: Format,
    (palette, detail): (&Palette, Detail),
) -> io::Result<()> {
    // One write per block of lines, not per line (standard output flushes at every newline); all
    // of it out before anything else is said on the other stream.
    let mut out = io::BufWriter::with_capacity(64 * 1024, out);
    match format {
        Format::Text => text::write_plan(&mut out, plan, subject, palette, detail),
        Format::Json => json::write_document(&mut out, &PlanDocument::of(plan, subject)),
        Format::Markdown => markdown::write_plan(&mut out, &PlanDocument::of(plan, subject), subject),
    }?;
    out.flush()
}

/// Asks before applying, on the terminal `answer_tty` when standard input carried a value, else
/// over the run's streams. Refuses without a terminal, and on any answer but yes.
pub(super) fn confirm(
    config: &Config,
    remote: &RemoteConfig,
    answer_tty: Option<std::fs::File>,
    streams: &mut Streams<'_>,
) -> Result<()> {
    if !config.can_prompt && answer_tty.is_none() {
        return Err(Error::NotConfirmed {
            message: "not applying: there is no terminal to confirm the plan on (standard input is not a \
                      terminal, or CI is set); nothing was changed"
                .to_owned(),
            hint: Some(
                "review the plan above, then run again with --yes to apply without a prompt".to_owned(),
            ),
        });
    }
    let question = format!("Apply these changes to {} (profile {})?", remote.spec, config.profile.name);
    let watching = crate::interrupt::AtQuestion::start(None);
    let confirmed = match answer_tty {
        Some(mut tty) => match tty.try_clone() {
            Ok(reader) => crate::prompt::confirm(&question, &mut std::io::BufReader::new(reader), &mut tty),
            Err(e) => Err(e),
        },
        None => crate::prompt::confirm(&question, streams.input, streams.err),
    }
    .map_err(stderr_error)?;
    drop(watching);
    if confirmed {
        Ok(())
    } else {
        Err(Error::NotConfirmed { message: "Apply cancelled; nothing was changed.".to_owned(), hint: None })
    }
}

/// What an apply did (`applied`: nothing, for an empty plan), in the run's format.
pub(super) fn report(
    out: &mut dyn Write,
    plan: &Plan,
    applied: Option<&Applied>,
    (subject, remote_name): (Subject<'_>, &str),
    format: Format,
    output: &Output,
) -> io::Result<()> {
    let (failed, revision) = applied.map_or((&[][..], None), |a| (&a.failed[..], a.revision));
    match format {
        Format::Json => json::write_document(out, &PlanDocument::of(plan, subject).applied(failed, revision)),
        Format::Markdown => {
            markdown::write_plan(out, &PlanDocument::of(plan, subject), subject)?;
            writeln!(out)?;
            text_report(out, plan, applied, remote_name, &Palette::plain())
        }
        Format::Text => text_report(out, plan, applied, remote_name, &output.stdout),
    }
}

fn text_report(
    out: &mut dyn Write,
    plan: &Plan,
    applied: Option<&Applied>,
    remote_name: &str,
    palette: &Palette,
) -> io::Result<()> {
    match applied {
        _ if plan.is_empty() => Ok(()),
        None => Ok(()),
        Some(applied) if applied.failed.is_empty() => {
            text::write_applied(out, plan.summary(), remote_name, applied.revision, palette)
        }
        Some(applied) => text::write_partly_applied(out, plan, &applied.failed, remote_name, palette),
    }
}
