//! `plan`, and every command that changes the remote: `apply`/`sync` (the whole desired state),
//! `set`, `unset` and `cleanup` (a plan of just some keys). Each shows a redacted plan, asks, and
//! applies exactly that plan.

use std::io::{self, Write};
use std::time::Duration;

use super::validate::{Review, gate, gate_required, load_desired};
use super::{Streams, stderr_error, stdout_error, warn};
use crate::backend::{Access, Backend};
use crate::cli::{ApplyArgs, Format, PlanArgs, ShowArgs};
use crate::config::{Config, Output, RemoteConfig, RemoteOrigin};
use crate::desired::{Desired, DesiredVar, Entry, SkipReason, Source};
use crate::error::{Error, Location, Result, display_path, exit};
use crate::plan::{self, Comparison, MassRemoval, Plan, Remote};
use crate::policy::{self, VarClass};
use crate::project::ProfileOrigin;
use crate::record::{self, LastApplied};
use crate::render::json::{self, PlanDocument};
use crate::render::{Detail, Subject, markdown, text};
use crate::saved::{PlanKey, SavedPlan};
use crate::secret::SecretValue;

/// Which part of the remote a command changes.
pub(super) enum Scope {
    /// Everything the profile owns (`apply`, `sync`).
    Everything,
    /// These variables only (`set`).
    Set {
        /// Variable name, and the value or `None` to read it from stdin.
        assignments: Vec<(String, Option<SecretValue>)>,
        /// Also write the values into secrets.json.
        save: bool,
    },
    /// Remove these variables (`unset`).
    Unset(Vec<String>),
    /// Remove the system-managed and stale variables (`cleanup`).
    Cleanup,
    /// Everything, exactly as a saved plan shows (`apply FILE`).
    Saved(Box<SavedPlan>),
    /// Back to the remote's previous version (`rollback`).
    Rollback,
}

/// How an apply behaves.
pub(super) struct ApplyOptions {
    yes: bool,
    format: Format,
    lock_timeout: Duration,
    allow_mass_removal: bool,
}

impl From<&ApplyArgs> for ApplyOptions {
    fn from(args: &ApplyArgs) -> Self {
        Self {
            yes: args.yes,
            format: args.format,
            lock_timeout: Duration::from_secs(args.lock_timeout),
            allow_mass_removal: args.allow_mass_removal,
        }
    }
}

/// Parses `set` arguments: `KEY=VALUE` each, or one `KEY` with `--stdin`. KEY is a secrets.json
/// key or a variable name; the result carries variable names.
pub(super) fn parse_assignments(args: &[String], stdin: bool) -> Result<Vec<(String, Option<SecretValue>)>> {
    if stdin {
        return match args {
            [key] if !key.contains('=') => Ok(vec![(variable_for(key, 1)?, None)]),
            _ => Err(Error::usage(
                "--stdin reads the value of exactly one KEY, given without `=`",
                "cloud-secrets set OPENAI_API_KEY --stdin < key.txt",
            )),
        };
    }
    let mut assignments: Vec<(String, Option<SecretValue>)> = Vec::with_capacity(args.len());
    for (i, arg) in args.iter().enumerate() {
        let (name, value) = match arg.split_once('=') {
            Some((key, value)) if !value.is_empty() => (variable_for(key, i + 1)?, SecretValue::new(value)),
            Some((key, _)) => {
                let name = variable_for(key, i + 1)?;
                return Err(Error::usage(
                    format!("argument {} of set gives {name} an empty value", i + 1),
                    "give a value, or remove the variable with cloud-secrets unset",
                ));
            }
            // Not repeated: without `=`, the argument may well be a value typed in the wrong place.
            None => {
                return Err(Error::usage(
                    format!("argument {} of set is not KEY=VALUE", i + 1),
                    "write KEY=VALUE, or use --stdin to read one value from standard input",
                ));
            }
        };
        if let Some((seen, _)) =
            assignments.iter().find(|(seen, _)| policy::key_for(seen) == policy::key_for(&name))
        {
            let also = if *seen == name { String::new() } else { format!(" (as {seen})") };
            return Err(Error::usage(
                format!("{name} is given more than once{also}"),
                "give each variable once (a key and its variable name are the same variable)",
            ));
        }
        assignments.push((name, Some(value)));
    }
    Ok(assignments)
}

/// Parses `unset` arguments into variable names.
pub(super) fn parse_names(args: &[String]) -> Result<Vec<String>> {
    let mut names: Vec<String> = Vec::new();
    for (i, key) in args.iter().enumerate() {
        // A key goes under every name `set` and apply write it under (`github`: GITHUB_TOKEN
        // and GITHUB): removing it removes them all.
        for name in written_names(&variable_for(key, i + 1)?) {
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    Ok(names)
}

/// Every name the key behind `name` is written under, when `name` is one of them; else `name`.
fn written_names(name: &str) -> Vec<String> {
    let written = policy::key_names(&policy::key_for(name)).written();
    if written.iter().any(|n| n == name) { written } else { vec![name.to_owned()] }
}

/// The variable a command-line KEY (argument `n`) names: an upper-case name is taken as is, a
/// snake_case key is mapped. Anything else is refused without being shown: a value pasted in
/// the wrong place (a mixed-case token, `sk-...`) must never become a name that is printed and
/// sent.
fn variable_for(key: &str, n: usize) -> Result<String> {
    let valid = !key.is_empty()
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !key.starts_with(|c: char| c.is_ascii_digit())
        && crate::validate::is_key_case(key);
    if !valid {
        return Err(Error::usage(
            format!(
                "argument {n}: the part naming the variable is neither a snake_case key nor an UPPER_CASE name \
                 (not shown, in case it is a value)"
            ),
            "use a secrets.json key such as `anthropic` or a variable name such as ANTHROPIC_API_KEY",
        ));
    }
    let is_name = key.chars().any(|c| c.is_ascii_uppercase()) && !key.chars().any(|c| c.is_ascii_lowercase());
    Ok(if is_name { key.to_owned() } else { policy::variable_name(key) })
}

/// `plan`.
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
    if let Some(path) = &args.out {
        let document = PlanDocument::of(&plan, subject(config, remote, true));
        refuse_to_overwrite(path)?;
        // A plan the platform could not start from is not saved for a later apply.
        gate_required(config, &review, &missing, (remote.display(), false, false), output, streams.err)?;
        let key = PlanKey::load(&config.profile.state_file("plan-key"), &config.environment, true)?;
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
    // A reader that stops reading (`| head`) is not an error: the plan was computed.
    let shown = show(remote, config, output, (&plan, true), detail(output, false), args.format, streams.out);
    match shown {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
        other => other.map_err(stdout_error)?,
    }
    if let Some(mass) = plan.mass_removal(threshold(config)) {
        // Shown even with --quiet: it is the one warning a drift check must not miss.
        let _ = writeln!(
            streams.err,
            "{} this plan removes {} of the {} managed variables on the remote; apply will refuse it without \
             --allow-mass-removal",
            output.stderr.warning().apply_to("warning:"),
            mass.removing,
            mass.managed
        );
    }
    if args.out.is_none() {
        gate_required(config, &review, &missing, (remote.display(), false, false), output, streams.err)?;
    }
    Ok(if args.detailed_exitcode && !plan.is_empty() { exit::CHANGES } else { exit::OK })
}

/// Says, once, that the secrets file is absent and the environment alone is the desired state.
fn warn_partial(config: &Config, loaded: &crate::sources::Loaded, output: &Output, err: &mut dyn Write) {
    if loaded.partial {
        warn(
            output,
            err,
            &format!(
                "{} does not exist: the desired state is what the environment sets, and nothing on the remote is \
                 removed for want of a key",
                config.profile.secrets_display()
            ),
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

/// `apply`, `sync`, `set`, `unset`, `cleanup`: plan the scope, show it, ask, apply it.
pub(super) fn apply(
    config: &Config,
    remote: &RemoteConfig,
    scope: Scope,
    options: &ApplyOptions,
    output: &Output,
    streams: &mut Streams<'_>,
) -> Result<i32> {
    describe(config, remote, output, streams.err);
    if let Scope::Saved(saved) = &scope {
        check_saved_for(saved, config, remote)?;
    }
    let whole = matches!(scope, Scope::Everything | Scope::Saved(_));
    let loaded = if whole {
        let loaded = load_desired(config)?;
        let review = Review::of(config, &loaded);
        gate(config, &review, output, streams.err)?;
        warn_partial(config, &loaded, output, streams.err);
        Some((loaded, review))
    } else {
        None
    };
    let stdin_read =
        matches!(&scope, Scope::Set { assignments, .. } if assignments.iter().any(|(_, v)| v.is_none()));
    let scope = read_stdin_values(scope, config, streams)?;
    // A plan of some keys reads the profile's desired state once: for its checks, and for what
    // the custom-secrets list and the warnings of `set` and `unset` depend on.
    let current = if whole { None } else { Some(load_desired(config)?) };
    if let Some(current) = &current {
        // The same checks before every plan: of the profile's desired state where there is one,
        // and of the values `set` is given.
        let mut review = if current.partial {
            Review::of(config, current).without_findings()
        } else {
            Review::of(config, current)
        };
        if let Scope::Set { assignments, .. } = &scope {
            let given: Vec<Entry> = assignments
                .iter()
                .map(|(name, value)| Entry {
                    key: policy::key_for(name),
                    value: value.clone(),
                    source: Source::CommandLine,
                    location: Location::named(format!("set {name}")),
                })
                .collect();
            review = review.with(crate::validate::check_values(&given, config.settings.validation));
        }
        gate(config, &review, output, streams.err)?;
    }

    let (_lock, mut backend) = open_for_write(config, remote, options.lock_timeout, output, streams.err)?;
    let record = load_record(config, remote)?;
    let fetched = backend.fetch()?;
    let (desired, scoped) = match &scope {
        Scope::Everything | Scope::Saved(_) => {
            let (loaded, _) = loaded.as_ref().expect("a whole plan loads the desired state");
            let desired =
                Desired::build(loaded.entries.clone(), &fetched, config.ignore.clone(), loaded.partial)?;
            warn_skipped(&desired, output, streams.err);
            (desired, fetched.clone())
        }
        Scope::Set { assignments, .. } => {
            let vars = settable(assignments, &config.ignore, output, streams.err)?;
            let now = desired_now(config, current.as_ref(), &fetched)?;
            let desired = Desired::for_set(vars, &listed_names(&now, &fetched), config.ignore.clone());
            let names: Vec<String> = vars_names(&desired);
            let list = list_if_touched(&names);
            let scoped = desired.scope_of(&fetched, &list);
            (desired, scoped)
        }
        Scope::Unset(names) => {
            let names = removable(names, &fetched, &config.ignore, output, streams.err);
            let now = desired_now(config, current.as_ref(), &fetched)?;
            warn_still_desired(config, &now, &names, output, streams.err);
            let desired = Desired::for_unset(&names, &listed_names(&now, &fetched), config.ignore.clone());
            let scoped = desired.scope_of(&fetched, &[names.clone(), list_if_touched(&names)].concat());
            (desired, scoped)
        }
        Scope::Rollback => {
            let Some((version, previous)) = backend.previous()? else {
                return Err(Error::config(
                    format!("{} has no earlier version to roll back to", remote.spec),
                    "a rollback needs at least two writes",
                ));
            };
            let mut desired = Desired { ignore: config.ignore.clone(), ..Desired::default() };
            for (name, value) in previous {
                // What the platform owns or the profile ignores stays as it is now.
                if policy::classify(&name) == VarClass::Managed && !config.ignore.matches(&name) {
                    let var = DesiredVar { key: None, value, source: Source::PreviousVersion };
                    desired.vars.insert(name, var);
                }
            }
            if !output.quiet {
                let _ = writeln!(streams.err, "Rolling back to version {version} of {}.", remote.spec);
            }
            (desired, fetched.clone())
        }
        Scope::Cleanup => {
            let vars = fetched
                .vars
                .iter()
                .filter(|(n, _)| matches!(policy::classify(n), VarClass::SystemManaged | VarClass::Stale))
                .filter(|(n, _)| !config.ignore.matches(n))
                .map(|(n, v)| (n.clone(), v.clone()))
                .collect();
            (Desired::default(), Remote { vars, ..fetched.clone() })
        }
    };
    let plan = plan::plan(&desired, &scoped, record.as_ref());
    let whole_like = whole || matches!(scope, Scope::Rollback);
    let missing = crate::validate::required_missing_after(&desired, &plan, &fetched, whole_like);
    if let Scope::Saved(saved) = &scope {
        check_saved_still_holds(saved, &desired, &fetched, &plan, config, remote)?;
    }

    // A saved plan was reviewed when it was made: it is applied without a question.
    let yes = options.yes || matches!(scope, Scope::Saved(_));
    // A value piped into `set --stdin` used standard input: the question goes to the terminal,
    // if there is one, as sudo and ssh do.
    let answer_tty = match (&scope, yes || config.ci || config.stdin_terminal) {
        (Scope::Set { .. }, false) if stdin_read => crate::prompt::terminal(),
        _ => None,
    };
    let will_ask = !yes && (config.can_prompt || answer_tty.is_some());
    // Whoever confirms sees the whole plan, even with --quiet; with a machine format, on stderr,
    // so that stdout carries one document. A plan that cannot be shown is not applied.
    let shown = match (options.format, will_ask) {
        (Format::Text, _) => {
            show(remote, config, output, (&plan, whole), detail(output, will_ask), Format::Text, streams.out)
                .and_then(|()| streams.out.flush())
        }
        (_, true) => text::write_plan(
            streams.err,
            &plan,
            subject(config, remote, whole),
            &output.stderr,
            detail(output, true),
        ),
        (_, false) => Ok(()),
    };
    shown.map_err(|e| match e.kind() {
        io::ErrorKind::BrokenPipe => Error::Config {
            message: "the output was closed before the plan could be shown; nothing was applied".to_owned(),
            hint: Some("let the plan be read in full, or redirect it to a file".to_owned()),
        },
        _ => stdout_error(e),
    })?;
    // A plan after which the platform's runtime would not start is shown, then refused.
    let no_findings;
    let review = match &loaded {
        Some((_, review)) => review,
        None => {
            no_findings = Review::none(config);
            &no_findings
        }
    };
    gate_required(
        config,
        review,
        &missing,
        (remote.display(), true, matches!(scope, Scope::Rollback)),
        output,
        streams.err,
    )?;
    if plan.is_empty() {
        if options.format != Format::Text {
            let _ = report(options.format, &plan, &[], None, config, remote, whole, output, streams.out);
        }
        if let Scope::Set { assignments, save: true } = &scope {
            save(config, assignments, output, streams.err)?;
        }
        return Ok(exit::OK);
    }
    if (whole || matches!(scope, Scope::Rollback))
        && let Some(mass) = plan.mass_removal(threshold(config))
        && !options.allow_mass_removal
    {
        return Err(mass_removal_error(mass, config, remote));
    }
    confirm(config, remote, yes, answer_tty, streams)?;
    if will_ask && whole {
        // The question may have waited a long time: the desired state must still be the one
        // the plan was made from.
        let reloaded = load_desired(config)?;
        let again = Desired::build(reloaded.entries, &fetched, config.ignore.clone(), reloaded.partial)?;
        if again.vars != desired.vars {
            return Err(Error::Stale {
                message: format!(
                    "{} changed while the question was waiting; the plan shown is no longer what would be \
                     applied, so nothing was written",
                    config.profile.secrets_display()
                ),
            });
        }
    }

    let changes = plan.change_set(&desired);
    // From here on a signal lets the requests in flight finish and stops new ones.
    let _watch = crate::interrupt::Watch::start(&remote.connection.interrupted);
    let applied = backend.apply(&fetched, &changes)?;
    // What was written is remembered before anything else is said.
    let remembered = match remote.spec.record_key() {
        Some(key) => remember(config, &key, record, &plan, &desired, &changes, &applied),
        None => Ok(()),
    };
    // The work is done; a reader that went away does not undo it.
    let _ = report(
        options.format,
        &plan,
        &applied.failed,
        applied.revision,
        config,
        remote,
        whole,
        output,
        streams.out,
    );
    let remote_name = remote.spec.to_string();
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
    if applied.interrupted {
        return Err(Error::Interrupted {
            message: format!(
                "interrupted: {} of {} deletions on {remote_name} were not made; every other change in the plan \
                 was",
                applied.failed.len(),
                changes.deletes.len()
            ),
        });
    }
    if !applied.failed.is_empty() {
        return Err(Error::Remote {
            message: format!(
                "{} of {} deletions failed on {remote_name}; every other change in the plan was made",
                applied.failed.len(),
                changes.deletes.len()
            ),
            hint: Some("run the command again to finish: it plans from what the remote holds now".to_owned()),
        });
    }
    if let Scope::Set { assignments, save: want_save } = &scope {
        if *want_save {
            save(config, assignments, output, streams.err)?;
        } else {
            warn_unsaved(config, assignments, output, streams.err);
        }
    }
    Ok(exit::OK)
}

/// What an apply did, in the run's format.
#[allow(clippy::too_many_arguments)]
fn report(
    format: Format,
    plan: &Plan,
    failed: &[(String, String)],
    revision: Option<u64>,
    config: &Config,
    remote: &RemoteConfig,
    whole: bool,
    output: &Output,
    out: &mut dyn Write,
) -> io::Result<()> {
    let remote_name = remote.spec.to_string();
    let subject = subject(config, remote, whole);
    match format {
        Format::Json => json::write_document(out, &PlanDocument::of(plan, subject).applied(failed, revision)),
        Format::Markdown => {
            markdown::write_plan(out, &PlanDocument::of(plan, subject), subject)?;
            writeln!(out)?;
            text_report(plan, failed, revision, &remote_name, &crate::color::Palette::plain(), out)
        }
        Format::Text => text_report(plan, failed, revision, &remote_name, &output.stdout, out),
    }
}

fn text_report(
    plan: &Plan,
    failed: &[(String, String)],
    revision: Option<u64>,
    remote_name: &str,
    palette: &crate::color::Palette,
    out: &mut dyn Write,
) -> io::Result<()> {
    if plan.is_empty() {
        Ok(())
    } else if failed.is_empty() {
        text::write_applied(out, plan.summary(), remote_name, revision, palette)
    } else {
        text::write_partly_applied(out, plan, failed, remote_name, palette)
    }
}

/// Refuses a saved plan made for another profile or remote.
fn check_saved_for(saved: &SavedPlan, config: &Config, remote: &RemoteConfig) -> Result<()> {
    let profile_dir = crate::saved::identity_of_dir(&config.profile.yaml);
    if saved.guard.profile_dir != profile_dir {
        return Err(Error::Stale {
            message: format!(
                "the saved plan was made for the profile in {}, not {}; nothing was written",
                saved.guard.profile_dir, profile_dir
            ),
        });
    }
    if saved.guard.remote != remote.spec.identity() {
        return Err(Error::Stale {
            message: format!(
                "the saved plan was made for the remote {}, not {}; nothing was written",
                saved.guard.remote,
                remote.spec.identity()
            ),
        });
    }
    let key = PlanKey::load(&config.profile.state_file("plan-key"), &config.environment, false)?;
    saved.verify(&key)?;
    Ok(())
}

/// Refuses a saved plan whose desired state or remote moved, or that would no longer do the same.
fn check_saved_still_holds(
    saved: &SavedPlan,
    desired: &Desired,
    fetched: &Remote,
    plan: &Plan,
    config: &Config,
    remote: &RemoteConfig,
) -> Result<()> {
    let key = PlanKey::load(&config.profile.state_file("plan-key"), &config.environment, false)?;
    let salt = saved.fingerprint_key(&key);
    if crate::saved::desired_fingerprint(&salt, desired) != saved.guard.desired_fingerprint {
        return Err(Error::Stale {
            message:
                "the desired state changed since the plan was saved (secrets.json, .env or the environment); \
                      nothing was written"
                    .to_owned(),
        });
    }
    if crate::saved::remote_fingerprint(&salt, fetched) != saved.guard.remote_fingerprint {
        return Err(Error::Stale {
            message: format!(
                "the remote {} changed since the plan was saved; nothing was written",
                remote.spec
            ),
        });
    }
    if PlanDocument::of(plan, subject(config, remote, true)).changes != saved.plan.changes {
        return Err(Error::Stale {
            message:
                "applying now would not make exactly the changes the saved plan shows; nothing was written"
                    .to_owned(),
        });
    }
    Ok(())
}

fn vars_names(desired: &Desired) -> Vec<String> {
    desired.vars.keys().filter(|n| *n != policy::CUSTOM_SECRETS_VAR).cloned().collect()
}

/// The custom-secrets list's name, when changing `names` changes the list.
fn list_if_touched(names: &[String]) -> Vec<String> {
    if crate::desired::touches_custom_list(names) {
        vec![policy::CUSTOM_SECRETS_VAR.to_owned()]
    } else {
        Vec::new()
    }
}

/// The profile's desired state as it stands, for a plan of some keys.
fn desired_now(
    config: &Config,
    current: Option<&crate::sources::Loaded>,
    remote: &Remote,
) -> Result<Desired> {
    let current = current.expect("a plan of some keys loads the desired state");
    Desired::build(current.entries.clone(), remote, config.ignore.clone(), current.partial)
}

/// The variables the profile keeps on the remote, from which `set` and `unset` derive the
/// custom-secrets list: as the profile's desired state `now` has them, so that the list is what
/// the next plan would compute, and those the remote's own list names and still holds.
fn listed_names(now: &Desired, remote: &Remote) -> Vec<String> {
    let mut listed = now.listed_names();
    // What the remote's list names and the remote still holds (an earlier `set`'s variables, say)
    // stays listed, where the remote lets the list be read.
    if let Some(crate::plan::RemoteValue::Value(list)) = remote.vars.get(policy::CUSTOM_SECRETS_VAR) {
        listed.extend(
            list.expose()
                .split(',')
                .map(str::trim)
                .filter(|name| remote.vars.contains_key(*name) && crate::desired::is_listable(name))
                .map(str::to_owned),
        );
    }
    listed.sort();
    listed.dedup();
    listed
}

/// Records what the apply wrote (and what the remote showed equal), and forgets what it removed.
fn remember(
    config: &Config,
    key: &str,
    record: Option<LastApplied>,
    plan: &Plan,
    desired: &Desired,
    changes: &plan::ChangeSet<'_>,
    applied: &crate::backend::Applied,
) -> Result<()> {
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
    record::save(&config.profile.state_file(record::FILE_NAME), key, &record)
}

/// Reads the value of a `set KEY --stdin` (hidden when typed on a terminal).
fn read_stdin_values(scope: Scope, config: &Config, streams: &mut Streams<'_>) -> Result<Scope> {
    let Scope::Set { assignments, save } = scope else { return Ok(scope) };
    let mut filled = Vec::with_capacity(assignments.len());
    for (name, value) in assignments {
        let value = match value {
            Some(value) => value,
            // Typed on the terminal: read from it directly (standard input is locked by this
            // program), hidden.
            None if config.stdin_terminal
                && let Some(tty) = crate::prompt::terminal() =>
            {
                let _ = write!(streams.err, "Value for {name} (not shown): ");
                let _ = streams.err.flush();
                let line = crate::prompt::read_hidden(&tty)
                    .map_err(|e| Error::io("read", std::path::Path::new("the terminal"), e))?;
                SecretValue::new(line.as_str())
            }
            None => {
                let mut text = zeroize::Zeroizing::new(String::new());
                std::io::Read::read_to_string(&mut streams.input, &mut text)
                    .map_err(|e| Error::io("read", std::path::Path::new("standard input"), e))?;
                let trimmed =
                    text.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t)).unwrap_or(&text);
                SecretValue::new(trimmed)
            }
        };
        if value.is_empty() {
            return Err(Error::usage(
                format!("the value read for {name} is empty"),
                "pipe the value in, or use cloud-secrets unset to remove the variable",
            ));
        }
        filled.push((name, Some(value)));
    }
    Ok(Scope::Set { assignments: filled, save })
}

/// The variables `set` may write; refuses (with a warning) the ones the platform owns.
fn settable(
    assignments: &[(String, Option<SecretValue>)],
    ignore: &crate::policy::Ignore,
    output: &Output,
    err: &mut dyn Write,
) -> Result<Vec<(String, DesiredVar)>> {
    let mut vars = Vec::new();
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
        match (refusal, value) {
            (Some(why), _) => warn(output, err, &format!("not setting {name}: {why}")),
            (None, Some(value)) => {
                // A key's value goes under every name the whole plan writes it under (the
                // runtime's and the deploy step's), so that the next plan has nothing to add.
                let key = policy::key_for(name);
                for written_name in written_names(name).into_iter().filter(|n| !ignore.matches(n)) {
                    if vars.iter().any(|(n, _): &(String, DesiredVar)| *n == written_name) {
                        return Err(Error::usage(
                            format!("two of the values given would be written to {written_name}"),
                            "give one value for each variable (internal_database_url is also written to \
                             DATABASE_URL)",
                        ));
                    }
                    let var = DesiredVar {
                        key: Some(key.clone()),
                        value: value.clone(),
                        source: Source::CommandLine,
                    };
                    vars.push((written_name, var));
                }
            }
            (None, None) => {}
        }
    }
    if vars.is_empty() {
        return Err(Error::Config {
            message: "every variable given is one cloud-secrets must not set; nothing was changed".to_owned(),
            hint: Some("set variables the profile owns; see docs/secrets-json.md for the classes".to_owned()),
        });
    }
    Ok(vars)
}

/// The variables `unset` may remove; says which are not there or not managed here.
fn removable(
    names: &[String],
    remote: &Remote,
    ignore: &crate::policy::Ignore,
    output: &Output,
    err: &mut dyn Write,
) -> Vec<String> {
    let mut kept = Vec::new();
    for name in names {
        if ignore.matches(name) {
            warn(output, err, &format!("not removing {name}: it matches `ignore` in cloud-secrets.yaml"));
        } else if !remote.vars.contains_key(name) {
            warn(output, err, &format!("{name} is not on the remote; nothing to remove"));
        } else if policy::classify(name) == VarClass::DeployOwned {
            warn(output, err, &format!("not removing {name}: the platform's deploy step owns it"));
        } else if name == policy::CUSTOM_SECRETS_VAR {
            warn(
                output,
                err,
                &format!("not removing {name}: cloud-secrets keeps it in step with the custom secrets"),
            );
        } else if !kept.contains(name) {
            kept.push(name.clone());
        }
    }
    kept
}

/// After `unset`: says which of the removed variables the desired state still sets, since the
/// next apply would add them back.
fn warn_still_desired(
    config: &Config,
    now: &Desired,
    names: &[String],
    output: &Output,
    err: &mut dyn Write,
) {
    let back: Vec<&str> = names.iter().filter(|n| now.vars.contains_key(*n)).map(String::as_str).collect();
    if !back.is_empty() {
        warn(
            output,
            err,
            &format!(
                "{} still sets {}, so the next apply adds {} back; remove the key there too",
                config.profile.secrets_display(),
                back.join(", "),
                if back.len() == 1 { "it" } else { "them" }
            ),
        );
    }
}

/// Writes `set` values into secrets.json, under the key already providing each variable.
fn save(
    config: &Config,
    assignments: &[(String, Option<SecretValue>)],
    output: &Output,
    err: &mut dyn Write,
) -> Result<()> {
    let path = config.profile.secrets_path();
    let existing = crate::secrets_file::load(&path).map_err(|e| config.profile.shown(e))?.unwrap_or_default();
    let updates: Vec<(String, &SecretValue)> = assignments
        .iter()
        .filter(|(name, _)| policy::classify(name) == VarClass::Managed && name != policy::CUSTOM_SECRETS_VAR)
        .filter_map(|(name, value)| {
            let key = key_in_file(&existing, name);
            value.as_ref().map(|v| (key, v))
        })
        .collect();
    crate::secrets_file::save_values(&path, &updates).map_err(|e| config.profile.shown(e))?;
    if !output.quiet {
        let keys: Vec<&str> = updates.iter().map(|(k, _)| k.as_str()).collect();
        let _ = writeln!(err, "Saved {} to {}.", keys.join(", "), config.profile.secrets_display());
    }
    Ok(())
}

/// The secrets.json key that provides `name`: `internal_database_url` when it is set, else the
/// first key mapping to it, else the key `name` maps back to.
fn key_in_file(entries: &[crate::secrets_file::FileEntry], name: &str) -> String {
    let internal = entries.iter().find(|e| e.key == policy::INTERNAL_DATABASE_URL_KEY && e.value.is_some());
    if name == "DATABASE_URL"
        && let Some(entry) = internal
    {
        return entry.key.clone();
    }
    entries
        .iter()
        .find(|e| policy::variable_name(&e.key) == name && e.key != policy::INTERNAL_DATABASE_URL_KEY)
        .map_or_else(|| policy::key_for(name), |e| e.key.clone())
}

/// After `set` without `--save`: says which keys secrets.json still has otherwise.
fn warn_unsaved(
    config: &Config,
    assignments: &[(String, Option<SecretValue>)],
    output: &Output,
    err: &mut dyn Write,
) {
    let Ok(Some(existing)) = crate::secrets_file::load(&config.profile.secrets_path()) else { return };
    let stale: Vec<&str> = assignments
        .iter()
        .filter(|(name, value)| {
            policy::classify(name) == VarClass::Managed
                && !existing
                    .iter()
                    .any(|e| policy::variable_name(&e.key) == *name && e.value.as_ref() == value.as_ref())
        })
        .map(|(name, _)| name.as_str())
        .collect();
    if !stale.is_empty() {
        warn(
            output,
            err,
            &format!(
                "{} still holds the old state of {}, so the next plan will show the difference; use --save to \
                 write the new values there too",
                config.profile.secrets_display(),
                stale.join(", ")
            ),
        );
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
    config.settings.mass_removal_threshold
}

/// Opens the remote for writing, holding the lock of this profile and remote (so that two
/// applies on one machine never interleave, whatever the remote) and the store's own lock where
/// it has one. If another process holds a lock, says so before waiting.
fn open_for_write(
    config: &Config,
    remote: &RemoteConfig,
    lock_timeout: Duration,
    output: &Output,
    err: &mut dyn Write,
) -> Result<(std::fs::File, Box<dyn Backend>)> {
    let digest = ring::digest::digest(&ring::digest::SHA256, remote.spec.identity().as_bytes());
    let tag: String = digest.as_ref()[..6].iter().map(|b| format!("{b:02x}")).collect();
    let lock_path = config.profile.state_file(&format!("apply-{tag}.lock"));
    let waiting = |path: &std::path::Path, holder: Option<u32>, err: &mut dyn Write| {
        if !output.quiet {
            let holder = holder.map(|pid| format!(" (pid {pid})")).unwrap_or_default();
            let _ = writeln!(
                err,
                "Waiting up to {}s for another cloud-secrets process{holder} to release {}...",
                lock_timeout.as_secs(),
                display_path(path)
            );
        }
    };
    let lock = match crate::files::lock(&lock_path, Duration::ZERO) {
        Err(Error::Locked { path, holder }) if !lock_timeout.is_zero() => {
            waiting(&path, holder, err);
            crate::files::lock(&lock_path, lock_timeout)?
        }
        other => other?,
    };
    let backend = match remote.spec.open(Access::Write { lock_timeout: Duration::ZERO }, &remote.connection) {
        Err(Error::Locked { path, holder }) if !lock_timeout.is_zero() => {
            waiting(&path, holder, err);
            remote.spec.open(Access::Write { lock_timeout }, &remote.connection)?
        }
        other => other?,
    };
    Ok((lock, backend))
}

/// What was last applied to this remote, for remotes whose values cannot all be read back.
fn load_record(config: &Config, remote: &RemoteConfig) -> Result<Option<LastApplied>> {
    match remote.spec.record_key() {
        Some(key) => record::load(&config.profile.state_file(record::FILE_NAME), &key),
        None => Ok(None),
    }
}

fn show(
    remote: &RemoteConfig,
    config: &Config,
    output: &Output,
    (plan, whole): (&Plan, bool),
    detail: Detail,
    format: Format,
    out: &mut dyn Write,
) -> io::Result<()> {
    let subject = subject(config, remote, whole);
    match format {
        Format::Text => text::write_plan(out, plan, subject, &output.stdout, detail),
        Format::Json => json::write_document(out, &PlanDocument::of(plan, subject)),
        Format::Markdown => markdown::write_plan(out, &PlanDocument::of(plan, subject), subject),
    }
}

/// What a plan is between; the remote's name lives as long as the configuration.
fn subject<'a>(config: &'a Config, remote: &'a RemoteConfig, whole: bool) -> Subject<'a> {
    Subject { profile: &config.profile.name, remote: remote.display(), whole }
}

fn confirm(
    config: &Config,
    remote: &RemoteConfig,
    yes: bool,
    answer_tty: Option<std::fs::File>,
    streams: &mut Streams<'_>,
) -> Result<()> {
    if yes {
        return Ok(());
    }
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

fn mass_removal_error(mass: MassRemoval, config: &Config, remote: &RemoteConfig) -> Error {
    Error::Config {
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
    }
}

fn warn_skipped(desired: &Desired, output: &Output, err: &mut dyn Write) {
    for skipped in &desired.skipped {
        let why = match &skipped.reason {
            SkipReason::SystemManaged => {
                "which the hosting platform sets; it is skipped. Remove it from secrets.json."
            }
            SkipReason::Stale => {
                "which is stale and must no longer be synced; it is skipped. Remove it from secrets.json."
            }
            // The deploy step reads this key and writes the variable itself.
            SkipReason::DeployOwned => {
                "which the platform's deploy step writes from it; cloud-secrets leaves it to deploy."
            }
            SkipReason::Derived => {
                "which cloud-secrets computes from the other keys; it is skipped. Remove it from secrets.json."
            }
            SkipReason::NotSet | SkipReason::ShadowedBy(_) | SkipReason::Ignored => continue,
        };
        warn(
            output,
            err,
            &format!("{}: `{}` maps to {}, {why}", skipped.location, skipped.key, skipped.name),
        );
    }
}

fn describe(config: &Config, remote: &RemoteConfig, output: &Output, err: &mut dyn Write) {
    for warning in config.profile.warnings.iter().chain(&config.settings.warnings) {
        warn(output, err, warning);
    }
    if output.verbose == 0 {
        return;
    }
    let chosen = match config.profile_origin {
        ProfileOrigin::Flag => "--profile",
        ProfileOrigin::Environment => "SYSTEMPROMPT_PROFILE",
        ProfileOrigin::Session => "the active profile of .systemprompt/sessions/index.json",
        ProfileOrigin::OnlyOne => "the only profile",
    };
    let remote_from = match remote.origin {
        RemoteOrigin::Flag => "--remote",
        RemoteOrigin::Settings => "cloud-secrets.yaml",
        RemoteOrigin::ProfileYaml => "profile.yaml secrets.remote",
        RemoteOrigin::Target => "profile.yaml target: cloud",
    };
    let _ = writeln!(
        err,
        "profile: {} ({}; chosen by {chosen})",
        config.profile.name,
        display_path(&config.profile.dir)
    );
    let _ = writeln!(err, "remote: {} (from {remote_from})", remote.spec);
}
