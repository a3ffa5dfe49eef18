//! The commands: each runs from validated configuration, touching files, the remote, the
//! terminal and the output streams it is given. What they decide is delegated to the pure core
//! (`desired`, `plan`, `validate`, `render`).

mod all;
mod apply;
mod compare;
mod generate;
mod import;
mod init;
mod keys;
mod plan;
mod present;
mod profiles;
mod pull;
mod scope;
mod stages;
mod validate;

use std::io::{self, BufRead, Write};
use std::path::Path;

use crate::cli::{ApplyArgs, Cli, Command};
use crate::config::{Config, Env, Output, RemoteConfig};
use crate::error::{Error, Result};
use scope::Scope;

/// The streams a run reads and writes.
pub struct Streams<'a> {
    /// Results: the plan, the apply report, listings.
    pub out: &'a mut dyn Write,
    /// Progress, prompts, warnings and errors.
    pub err: &'a mut dyn Write,
    /// Where answers to prompts (and `set --stdin` values) come from.
    pub input: &'a mut dyn BufRead,
    /// Where network backends log requests (`-vv`) and show an apply's progress.
    pub diagnostics: std::sync::Arc<dyn crate::diagnostics::Diagnostics>,
}

/// Runs the command line's command and returns the exit code.
pub fn run(cli: &Cli, env: &Env, output: &Output, streams: &mut Streams<'_>) -> Result<i32> {
    // Debug builds can be made to panic with a secret in the message, to prove the panic hook
    // never shows one.
    #[cfg(debug_assertions)]
    if let Some(value) = env.vars.get("CLOUD_SECRETS_DEBUG_PANIC") {
        panic!("a deliberate panic carrying {}", value.expose());
    }
    match &cli.command {
        Command::Init => init::run(cli, env, output, streams),
        Command::Profiles(args) => profiles::run(cli, env, args, output, streams),
        Command::Generate(args) => generate::run(cli, env, args, output, streams),
        Command::Validate => validate::run(&Config::from_cli(cli, env)?, output, streams),
        Command::Plan(args) if args.all_profiles => all::run(cli, env, args, output, streams),
        Command::Plan(args) => {
            let config = Config::from_cli(cli, env)?;
            let remote = RemoteConfig::for_reading(&args.remote, streams.diagnostics.clone(), env, &config)?;
            plan::plan(&config, &remote, args, output, streams)
        }
        Command::Apply(args) | Command::Sync(args) => {
            // A saved plan is read (and its checksum checked) before anything else.
            let scope = match &args.plan_file {
                Some(path) => Scope::Saved(Box::new(crate::saved::SavedPlan::read(path)?)),
                None => Scope::Everything,
            };
            let limits = (args.whole.removals.parallelism, args.whole.allow_mass_removal);
            change((cli, env), scope, &args.apply, limits, output, streams)
        }
        Command::Compare(args) => compare::run(cli, env, args, output, streams),
        Command::Show(args) => {
            // The plan key comes from the environment or the profile selected here, never from
            // the file being checked.
            let key = match crate::saved::PlanKey::from_environment(&env.vars) {
                Some(key) => Some(key?),
                None => Config::from_cli(cli, env).ok().and_then(|config| {
                    crate::saved::PlanKey::load(&config.profile.state_file("plan-key"), &env.vars, false).ok()
                }),
            };
            plan::show_saved(args, key, output, streams)
        }
        Command::Set(args) => {
            // Usage errors come before anything is read.
            let scope = Scope::Set {
                assignments: keys::parse_assignments(&args.assignments, args.stdin)?,
                save: args.save,
            };
            change((cli, env), scope, &args.apply, (1, false), output, streams)
        }
        Command::Unset(args) => {
            let (names, keys) = (keys::parse_names(&args.keys)?, keys::keys_named(&args.keys)?);
            let scope = Scope::Unset { names, keys, save: args.save };
            change((cli, env), scope, &args.apply, (args.removals.parallelism, false), output, streams)
        }
        Command::Rollback(args) => {
            let limits = (args.whole.removals.parallelism, args.whole.allow_mass_removal);
            change((cli, env), Scope::Rollback, &args.apply, limits, output, streams)
        }
        Command::Import(args) => import::run(&Config::from_cli(cli, env)?, args, output, streams),
        Command::Pull(args) => pull::run(&Config::from_cli(cli, env)?, env, args, output, streams),
        Command::Cleanup(args) => change(
            (cli, env),
            Scope::Cleanup,
            &args.apply,
            (args.removals.parallelism, false),
            output,
            streams,
        ),
    }
}

/// Runs a command that changes the remote: plans `scope`, shows it, asks, applies it.
/// `limits`: how many removals are sent at once, and whether a mass removal is allowed.
fn change(
    (cli, env): (&Cli, &Env),
    scope: Scope,
    args: &ApplyArgs,
    (parallelism, allow_mass_removal): (u16, bool),
    output: &Output,
    streams: &mut Streams<'_>,
) -> Result<i32> {
    let config = Config::from_cli(cli, env)?;
    let remote = RemoteConfig::for_apply(args, parallelism, streams.diagnostics.clone(), env, &config)?;
    let options = apply::ApplyOptions::new(args, allow_mass_removal);
    apply::apply(&config, &remote, scope, &options, output, streams)
}

fn stdout_error(e: io::Error) -> Error {
    Error::io("write to", Path::new("standard output"), e)
}

fn stderr_error(e: io::Error) -> Error {
    Error::io("write to", Path::new("standard error"), e)
}

/// Writes a warning line to stderr, best effort (a closed stderr does not change the outcome).
fn warn(output: &Output, err: &mut dyn Write, message: &str) {
    if !output.quiet {
        let _ = writeln!(err, "{} {message}", output.stderr.warning().apply_to("warning:"));
    }
}
