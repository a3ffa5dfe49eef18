//! `plan` and `show`: the plan of the whole desired state against the remote, shown or saved
//! for a later `apply FILE`; a saved plan shown again. Nothing is written to the remote.

use std::io::{self, Write};

use super::present::{detail, show, subject};
use super::stages::{Fetching, describe, load_desired, load_record, warn_partial, warn_skipped};
use super::validate::{Review, gate, gate_required};
use super::{Streams, stdout_error};
use crate::cli::{Format, PlanArgs, ShowArgs};
use crate::config::{Config, Output, RemoteConfig};
use crate::desired::Desired;
use crate::error::{Error, Result, display_path, exit};
use crate::plan::{self, Plan};
use crate::record::LastApplied;
use crate::remote::Remote;
use crate::render::json::{self, PlanDocument};
use crate::render::{Subject, markdown, text};
use crate::saved::{PlanKey, SavedPlan};

/// A plan of the profile's whole desired state, with what it was made from.
pub(super) struct Computed {
    /// The plan.
    pub plan: Plan,
    desired: Desired,
    fetched: Remote,
    review: Review,
    /// The variables the platform requires that the remote would lack after the plan.
    missing: Vec<String>,
}

impl Computed {
    /// Says (on `err`) what the checks found of required variables, and refuses a plan after
    /// which the platform's runtime would not start.
    pub(super) fn check_required(
        &self,
        config: &Config,
        remote: &RemoteConfig,
        output: &Output,
        err: &mut dyn Write,
    ) -> Result<()> {
        gate_required(config, &self.review, &self.missing, (remote.display(), false, false), output, err)
    }
}

/// Loads and checks the desired state, fetches the remote and plans; warnings go to `err`.
pub(super) fn compute(
    config: &Config,
    remote: &RemoteConfig,
    output: &Output,
    err: &mut dyn Write,
) -> Result<Computed> {
    describe(config, remote, output, err);
    let fetching = Fetching::start(remote);
    let loaded = load_desired(config)?;
    let review = Review::of(config, &loaded);
    gate(config, &review, output, err)?;
    warn_partial(config, &loaded, output, err);
    let record = load_record(config, remote)?;
    let prepared = Desired::prepare(loaded.entries, config.ignore.clone(), loaded.partial)?;
    // While the remote is read, the values are digested under the salt its listing carried at
    // the last apply: a listing with the same salt is then compared without an HMAC a variable.
    // Only until the remote has been read: the planner digests the rest, on two threads.
    let foreseen = (record.as_ref().and_then(LastApplied::listing_salt))
        .map(|salt| prepared.foresee(salt, || fetching.is_done()));
    let fetched = fetching.finish()?;
    let desired = prepared.finish(&fetched);
    warn_skipped(&desired, output, err);
    let plan = plan::plan_foreseen(&desired, &fetched, record.as_ref(), foreseen.as_ref());
    // The record and the digests made ahead hold no value: their memory goes back with the
    // process (a large record is as long to free as to read).
    std::mem::forget(record);
    std::mem::forget(foreseen);
    let missing = crate::validate::required_missing_after(&desired, &plan, &fetched, true);
    Ok(Computed { plan, desired, fetched, review, missing })
}

/// From this many desired variables, the desired state is let go on a thread of its own.
const LARGE: usize = 8192;

/// `plan`: compute the plan, save it (`--out`), show it.
pub(super) fn plan(
    config: &Config,
    remote: &RemoteConfig,
    args: &PlanArgs,
    output: &Output,
    streams: &mut Streams<'_>,
) -> Result<i32> {
    let mut computed = compute(config, remote, output, streams.err)?;
    if let Some(path) = &args.out {
        // A plan the platform could not start from is not saved for a later apply.
        refuse_to_overwrite(path)?;
        computed.check_required(config, remote, output, streams.err)?;
        let key = PlanKey::load(&config.profile.state_file("plan-key"), &config.environment, true)?;
        let document = PlanDocument::of(&computed.plan, subject(config, remote, true));
        let identity = remote.spec.identity();
        SavedPlan::new(document, &key, &config.profile.yaml, identity, &computed.desired, &computed.fetched)?
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
    // The desired state's values are zeroized while the plan is written (on a thread of their own
    // when there are many), and a remote that holds values is dropped, and zeroized. The rest,
    // names and the emptied values, and a listing of names and digests, which holds no value, go
    // back with the process: freed name by name from another thread, they would be left for this
    // one to collect while it writes.
    let mut desired = std::mem::take(&mut computed.desired);
    let fetched = std::mem::take(&mut computed.fetched);
    let large = desired.vars.len() >= LARGE;
    let let_go = move || {
        desired.wipe();
        std::mem::forget(desired);
        if fetched.holds_values() {
            drop(fetched);
        } else {
            std::mem::forget(fetched);
        }
    };
    let shown = std::thread::scope(|scope| {
        if large {
            scope.spawn(let_go);
        } else {
            let_go();
        }
        show(
            streams.out,
            &computed.plan,
            subject(config, remote, true),
            args.format,
            (&output.stdout, detail(output, false)),
        )
    });
    // A reader that stops reading (`| head`) is not an error: the plan was computed.
    ignore_closed(shown)?;
    warn_mass_removal(config, &computed.plan, output, streams.err);
    if args.out.is_none() {
        computed.check_required(config, remote, output, streams.err)?;
    }
    let code = if args.detailed_exitcode && !computed.plan.is_empty() { exit::CHANGES } else { exit::OK };
    // The plan holds names and reasons, no value, and the command ends here: its memory goes
    // back with the process rather than name by name.
    std::mem::forget(computed.plan);
    Ok(code)
}

/// A write to stdout that failed because the reader went away is not an error.
pub(super) fn ignore_closed(written: io::Result<()>) -> Result<()> {
    match written {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other.map_err(stdout_error),
    }
}

/// Shown even with `--quiet`: it is the one warning a drift check must not miss.
pub(super) fn warn_mass_removal(config: &Config, plan: &Plan, output: &Output, err: &mut dyn Write) {
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
    ignore_closed(written).map(|()| exit::OK)
}
