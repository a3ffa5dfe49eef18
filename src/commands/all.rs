//! `plan --all-profiles`: every profile of the project that names a remote, planned
//! concurrently, in one report (a section per profile, and a summary). One profile failing does
//! not hide the others.

use std::io::Write;

use super::plan::{compute, ignore_closed};
use super::present::detail;
use super::{Streams, stdout_error};
use crate::cli::{Cli, Format, PlanArgs};
use crate::config::{Config, Env, Output, RemoteConfig, working_dir};
use crate::error::{Error, Result, exit};
use crate::project::{self, PROJECT_DIR, ProfileRef, Target};
use crate::render::json::{self, ErrorDocument, PlanDocument, ProfileEntry, ProfileStatus, ProfilesDocument};
use crate::render::{Subject, markdown, text};

/// How many profiles are planned at once.
const AT_ONCE: usize = 8;

/// One profile's section: what it said on stderr while planned, and its entry in the report.
struct Section {
    warnings: Vec<u8>,
    entry: ProfileEntry,
}

/// Runs `plan --all-profiles`.
pub(super) fn run(
    cli: &Cli,
    env: &Env,
    args: &PlanArgs,
    output: &Output,
    streams: &mut Streams<'_>,
) -> Result<i32> {
    if cli.profile.is_some() {
        return Err(Error::usage(
            "--all-profiles plans every profile; --profile chooses one",
            "drop one of the two",
        ));
    }
    if args.remote.remote.is_some() {
        return Err(Error::usage(
            "--all-profiles plans each profile against its own remote; --remote names one",
            "drop one of the two",
        ));
    }
    let root = project::require_root(&working_dir(cli, env)?)?;
    let profiles = project::list_profiles(&root)?;
    if profiles.is_empty() {
        return Err(Error::config(
            format!("no profiles in {}/{PROJECT_DIR}/profiles", root.display()),
            "cloud-secrets init creates one",
        ));
    }
    let mut sections = Vec::with_capacity(profiles.len());
    for batch in profiles.chunks(AT_ONCE) {
        std::thread::scope(|scope| {
            let handles: Vec<_> = batch
                .iter()
                .map(|found| {
                    let diagnostics = streams.diagnostics.clone();
                    let handle =
                        scope.spawn(move || plan_one(cli, env, found.clone(), (args, output, diagnostics)));
                    (found, handle)
                })
                .collect();
            // A profile whose planning panicked is a failed profile, not a lost report.
            sections.extend(handles.into_iter().map(|(found, handle)| {
                handle.join().unwrap_or_else(|_| {
                    let entry = ProfileEntry {
                        profile: found.name.clone(),
                        remote: String::new(),
                        status: ProfileStatus::Failed,
                        plan: None,
                        error: None,
                    };
                    let error = Error::config("planning this profile failed unexpectedly", "report this");
                    Section { warnings: Vec::new(), entry: failed(entry, &error) }
                })
            }));
        });
    }
    for section in &sections {
        if !section.warnings.is_empty() {
            let _ = writeln!(streams.err, "== profile {}", text::safe(&section.entry.profile));
            let _ = streams.err.write_all(&section.warnings);
        }
    }
    let document = ProfilesDocument::of(sections.into_iter().map(|s| s.entry).collect());
    ignore_closed(write(streams.out, &document, args.format, output))?;
    streams.out.flush().map_err(stdout_error)?;
    let s = document.summary;
    Ok(if s.failed > 0 {
        exit::ERROR
    } else if args.detailed_exitcode && s.with_changes > 0 {
        exit::CHANGES
    } else {
        exit::OK
    })
}

/// Plans one profile; whatever goes wrong is its section's error.
fn plan_one(
    cli: &Cli,
    env: &Env,
    found: ProfileRef,
    (args, output, diagnostics): (&PlanArgs, &Output, std::sync::Arc<dyn crate::diagnostics::Diagnostics>),
) -> Section {
    let mut warnings = Vec::new();
    let mut entry = ProfileEntry {
        profile: found.name.clone(),
        remote: String::new(),
        status: ProfileStatus::Failed,
        plan: None,
        error: None,
    };
    let config = match Config::for_profile(cli, env, found) {
        Ok(config) => config,
        Err(e) => return Section { warnings, entry: failed(entry, &e) },
    };
    let names_a_remote =
        config.settings.remote.is_some() || config.profile.settings.target == Some(Target::Cloud);
    if !names_a_remote {
        entry.status = ProfileStatus::NoRemote;
        return Section { warnings, entry };
    }
    let remote = match RemoteConfig::for_reading(&args.remote, diagnostics, env, &config) {
        Ok(remote) => remote,
        Err(e) => return Section { warnings, entry: failed(entry, &e) },
    };
    entry.remote = remote.display().to_owned();
    let computed = match compute(&config, &remote, output, &mut warnings) {
        Ok(computed) => computed,
        Err(e) => return Section { warnings, entry: failed(entry, &e) },
    };
    let subject = Subject { profile: &config.profile.name, remote: remote.display(), whole: true };
    entry.plan = Some(PlanDocument::of(&computed.plan, subject));
    entry.status = if computed.plan.is_empty() { ProfileStatus::NoChanges } else { ProfileStatus::Changes };
    super::plan::warn_mass_removal(&config, &computed.plan, output, &mut warnings);
    // A plan after which the platform's runtime would not start is shown, and counts as failed.
    if let Err(e) = computed.check_required(&config, &remote, output, &mut warnings) {
        entry = failed(entry, &e);
    }
    Section { warnings, entry }
}

fn failed(mut entry: ProfileEntry, error: &Error) -> ProfileEntry {
    entry.status = ProfileStatus::Failed;
    entry.error = Some(ErrorDocument { message: error.to_string(), hint: error.hint() });
    entry
}

/// Writes the report in `format`.
fn write(
    out: &mut dyn Write,
    document: &ProfilesDocument,
    format: Format,
    output: &Output,
) -> std::io::Result<()> {
    match format {
        Format::Json => json::write_document(out, document),
        Format::Markdown => markdown::write_profiles(out, document),
        // Quiet: the table alone says it.
        Format::Text if output.quiet => text::write_profiles_summary(out, document, &output.stdout),
        Format::Text => {
            for entry in &document.profiles {
                match (&entry.plan, &entry.error) {
                    (Some(plan), _) => {
                        let subject = Subject { profile: &entry.profile, remote: &entry.remote, whole: true };
                        text::write_plan(
                            out,
                            &plan.to_plan(),
                            subject,
                            &output.stdout,
                            detail(output, false),
                        )?;
                    }
                    (None, Some(_)) => writeln!(out, "Profile {} · not planned", text::safe(&entry.profile))?,
                    (None, None) => continue,
                }
                if let Some(error) = &entry.error {
                    writeln!(out, "{} {}", output.stdout.error().apply_to("error:"), error.message)?;
                    if let Some(hint) = &error.hint {
                        writeln!(out, "  {} {hint}", output.stdout.dim().apply_to("hint:"))?;
                    }
                }
                writeln!(out)?;
            }
            text::write_profiles_summary(out, document, &output.stdout)
        }
    }
}
