//! `plan` and `show`: the plan of the whole desired state against the remote, shown or saved
//! for a later `apply FILE`; a saved plan shown again. Nothing is written to the remote.

use std::io::{self, Write};

use super::present::{detail, show, subject};
use super::stages::{describe, load_desired, load_record, warn_partial, warn_skipped};
use super::validate::{Review, gate, gate_required};
use super::{Streams, stdout_error};
use crate::backend::Access;
use crate::cli::{Format, PlanArgs, ShowArgs};
use crate::config::{Config, Output, RemoteConfig};
use crate::desired::Desired;
use crate::error::{Error, Result, display_path, exit};
use crate::plan::{self, Plan};
use crate::render::json::{self, PlanDocument};
use crate::render::{Subject, markdown, text};
use crate::saved::{PlanKey, SavedPlan};

/// `plan`: load the desired state, check it, fetch the remote, plan, save (`--out`), show.
pub(super) fn plan(
    config: &Config,
    remote: &RemoteConfig,
    args: &PlanArgs,
    output: &Output,
    streams: &mut Streams<'_>,
) -> Result<i32> {
    describe(config, remote, output, streams.err);
    let loaded = load_desired(config)?;
    let review = Review::of(config, &loaded);
    gate(config, &review, output, streams.err)?;
    warn_partial(config, &loaded, output, streams.err);
    let mut backend = remote.spec.open(Access::Read, &remote.connection)?;
    let record = load_record(config, remote)?;
    let fetched = backend.fetch()?;
    let desired = Desired::build(loaded.entries, &fetched, config.ignore.clone(), loaded.partial)?;
    warn_skipped(&desired, output, streams.err);
    let plan = plan::plan(&desired, &fetched, record.as_ref());
    let missing = crate::validate::required_missing_after(&desired, &plan, &fetched, true);
    let required = |err: &mut dyn Write| {
        gate_required(config, &review, &missing, (remote.display(), false, false), output, err)
    };
    if let Some(path) = &args.out {
        // A plan the platform could not start from is not saved for a later apply.
        refuse_to_overwrite(path)?;
        required(streams.err)?;
        let key = PlanKey::load(&config.profile.state_file("plan-key"), &config.environment, true)?;
        let document = PlanDocument::of(&plan, subject(config, remote, true));
        SavedPlan::new(document, &key, &config.profile.yaml, remote.spec.identity(), &desired, &fetched)?
            .write(path)?;
        if !output.quiet {
            let _ = writeln!(
                streams.err,
                "Saved the plan to {}; apply it with: cloud-secrets apply {}",
                display_path(path),
                display_path(path)
            );
        }
    }
    let shown = show(
        streams.out,
        &plan,
        subject(config, remote, true),
        args.format,
        (&output.stdout, detail(output, false)),
    );
    // A reader that stops reading (`| head`) is not an error: the plan was computed.
    ignore_closed(shown)?;
    warn_mass_removal(config, &plan, output, streams.err);
    if args.out.is_none() {
        required(streams.err)?;
    }
    Ok(if args.detailed_exitcode && !plan.is_empty() { exit::CHANGES } else { exit::OK })
}

/// A write to stdout that failed because the reader went away is not an error.
fn ignore_closed(written: io::Result<()>) -> Result<()> {
    match written {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other.map_err(stdout_error),
    }
}

/// Shown even with `--quiet`: it is the one warning a drift check must not miss.
fn warn_mass_removal(config: &Config, plan: &Plan, output: &Output, err: &mut dyn Write) {
    if let Some(mass) = plan.mass_removal(config.settings.mass_removal_threshold) {
        let _ = writeln!(
            err,
            "{} this plan removes {} of the {} managed variables on the remote; apply will refuse it without \
             --allow-mass-removal",
            output.stderr.warning().apply_to("warning:"),
            mass.removing,
            mass.managed
        );
    }
}

/// `plan --out` replaces a saved plan, but nothing else (a mistyped path must not swallow
/// secrets.json or the store).
fn refuse_to_overwrite(path: &std::path::Path) -> Result<()> {
    if !path.exists() {
        return Ok(());
    }
    match SavedPlan::read(path) {
        Ok(_) => Ok(()),
        Err(_) => Err(Error::usage(
            format!("{} exists and is not a saved plan", display_path(path)),
            "choose another file for --out, or remove this one first",
        )),
    }
}

/// `show FILE`: a saved plan, in any format.
pub(super) fn show_saved(
    args: &ShowArgs,
    key: Option<PlanKey>,
    output: &Output,
    streams: &mut Streams<'_>,
) -> Result<i32> {
    let saved = SavedPlan::read(&args.plan_file)?;
    // A plan file is an artifact anyone may have handed over: it is shown only if it checks out
    // with the plan key, or with a plain warning that it could not be checked.
    match &key {
        Some(key) => saved.verify(key)?,
        None => {
            let _ = writeln!(
                streams.err,
                "{} {} could not be verified: there is no plan key here ({} or the selected profile's plan-key); \
                 what follows is what the file says, not a checked plan",
                output.stderr.warning().apply_to("warning:"),
                display_path(&args.plan_file),
                crate::saved::PLAN_KEY_VAR
            );
        }
    }
    let plan = saved.plan.to_plan();
    let subject = Subject { profile: &saved.plan.profile, remote: &saved.plan.remote, whole: true };
    let written = match args.format {
        Format::Text => text::write_plan(streams.out, &plan, subject, &output.stdout, detail(output, false)),
        Format::Json => json::write_document(streams.out, &saved.plan),
        Format::Markdown => markdown::write_plan(streams.out, &saved.plan, subject),
    };
    match written {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(exit::OK),
        other => other.map(|()| exit::OK).map_err(stdout_error),
    }
}
