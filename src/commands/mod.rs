//! The commands: each runs from validated configuration, touching files, the remote, the
//! terminal and the output streams it is given. What they decide is delegated to the pure core
//! (`desired`, `plan`, `validate`, `render`).

mod generate;
mod init;
mod profiles;
mod sync;
mod validate;

use std::io::{self, BufRead, Write};
use std::path::Path;

use crate::cli::{Cli, Command};
use crate::config::{Config, Env, Output, RemoteConfig};
use crate::error::{Error, Result};

/// The streams a run reads and writes.
pub struct Streams<'a> {
    /// Results: the plan, the apply report, listings.
    pub out: &'a mut dyn Write,
    /// Progress, prompts, warnings and errors.
    pub err: &'a mut dyn Write,
    /// Where answers to prompts (and `set --stdin` values) come from.
    pub input: &'a mut dyn BufRead,
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
        Command::Profiles => profiles::run(cli, env, output, streams),
        Command::Generate(args) => generate::run(cli, env, args, output, streams),
        Command::Validate => validate::run(&Config::from_cli(cli, env)?, output, streams),
        Command::Plan(args) => {
            let config = Config::from_cli(cli, env)?;
            let remote = RemoteConfig::from_cli(cli, env, &config, 1)?;
            sync::plan(&config, &remote, args, output, streams)
        }
        Command::Apply(args) | Command::Sync(args) => {
            // A saved plan is read (and its checksum checked) before anything else.
            let scope = match &args.plan_file {
                Some(path) => sync::Scope::Saved(Box::new(crate::saved::SavedPlan::read(path)?)),
                None => sync::Scope::Everything,
            };
            let config = Config::from_cli(cli, env)?;
            let remote = RemoteConfig::from_cli(cli, env, &config, usize::from(args.apply.parallelism))?;
            sync::apply(&config, &remote, scope, &(&args.apply).into(), output, streams)
        }
        Command::Show(args) => {
            // The plan key comes from the environment or the profile selected here, never from
            // the file being checked.
            let key = match crate::saved::PlanKey::from_environment(&env.vars) {
                Some(key) => Some(key?),
                None => Config::from_cli(cli, env).ok().and_then(|config| {
                    crate::saved::PlanKey::load(&config.profile.state_file("plan-key"), &env.vars, false).ok()
                }),
            };
            sync::show_saved(args, key, output, streams)
        }
        Command::Set(args) => {
            // Usage errors come before anything is read.
            let assignments = sync::parse_assignments(&args.assignments, args.stdin)?;
            let config = Config::from_cli(cli, env)?;
            let remote = RemoteConfig::from_cli(cli, env, &config, usize::from(args.apply.parallelism))?;
            let scope = sync::Scope::Set { assignments, save: args.save };
            sync::apply(&config, &remote, scope, &(&args.apply).into(), output, streams)
        }
        Command::Unset(args) => {
            let names = sync::parse_names(&args.keys)?;
            let config = Config::from_cli(cli, env)?;
            let remote = RemoteConfig::from_cli(cli, env, &config, usize::from(args.apply.parallelism))?;
            sync::apply(&config, &remote, sync::Scope::Unset(names), &(&args.apply).into(), output, streams)
        }
        Command::Rollback(args) => {
            let config = Config::from_cli(cli, env)?;
            let remote = RemoteConfig::from_cli(cli, env, &config, usize::from(args.parallelism))?;
            sync::apply(&config, &remote, sync::Scope::Rollback, &args.into(), output, streams)
        }
        Command::Cleanup(args) => {
            let config = Config::from_cli(cli, env)?;
            let remote = RemoteConfig::from_cli(cli, env, &config, usize::from(args.parallelism))?;
            sync::apply(&config, &remote, sync::Scope::Cleanup, &args.into(), output, streams)
        }
    }
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
