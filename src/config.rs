//! The validated configuration of one run, built from the raw command line and the environment.
//! Domain code reads this, never clap's types.

use std::io::IsTerminal;
use std::path::PathBuf;

use crate::backend::RemoteSpec;
use crate::cli::{Cli, Command};
use crate::color::Palette;
use crate::error::{Error, Location, Result};
use crate::project::{self, Profile, ProfileOrigin, SourceKind, Target};

/// What the process environment contributes. Read once, at the edge.
#[derive(Debug, Clone, Default)]
pub struct Env {
    /// The working directory.
    pub cwd: PathBuf,
    /// `SYSTEMPROMPT_PROFILE`.
    pub profile: Option<String>,
    /// `NO_COLOR` is set to a non-empty value.
    pub no_color: bool,
    /// `CI` is set to a true value: never prompt.
    pub ci: bool,
    /// `HOME`, for `~` in profile paths.
    pub home: Option<PathBuf>,
    /// Whether stdin, stdout and stderr are terminals.
    pub terminals: Terminals,
}

/// Which standard streams are terminals.
#[derive(Debug, Clone, Copy, Default)]
pub struct Terminals {
    /// Standard input.
    pub stdin: bool,
    /// Standard output.
    pub stdout: bool,
    /// Standard error.
    pub stderr: bool,
}

impl Env {
    /// Reads the process environment.
    pub fn from_process() -> Result<Self> {
        let cwd = std::env::current_dir()
            .map_err(|e| Error::io("read the working directory", &PathBuf::from("."), e))?;
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Ok(Self {
            cwd,
            profile: var("SYSTEMPROMPT_PROFILE"),
            no_color: var("NO_COLOR").is_some(),
            ci: var("CI").is_some_and(|v| !matches!(v.to_ascii_lowercase().as_str(), "0" | "false" | "no")),
            home: var("HOME").map(PathBuf::from),
            terminals: Terminals {
                stdin: std::io::stdin().is_terminal(),
                stdout: std::io::stdout().is_terminal(),
                stderr: std::io::stderr().is_terminal(),
            },
        })
    }
}

/// How output looks.
#[derive(Debug, Clone)]
pub struct Output {
    /// Colours for standard output.
    pub stdout: Palette,
    /// Colours for standard error.
    pub stderr: Palette,
    /// Only the summary line and errors.
    pub quiet: bool,
    /// More detail.
    pub verbose: u8,
}

impl Output {
    /// Output settings from the command line and environment; needs no project.
    pub fn from_cli(cli: &Cli, env: &Env) -> Self {
        Self {
            stdout: Palette::choose(cli.color, env.terminals.stdout, env.no_color),
            stderr: Palette::choose(cli.color, env.terminals.stderr, env.no_color),
            quiet: cli.quiet,
            verbose: cli.verbose,
        }
    }
}

/// Where the remote address came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteOrigin {
    /// `--remote`.
    Flag,
    /// `secrets.remote` in profile.yaml.
    ProfileYaml,
}

/// What the run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Show the plan.
    Plan {
        /// Exit 2 when there are changes.
        detailed_exitcode: bool,
    },
    /// Show the plan, confirm, apply.
    Apply {
        /// Skip the question.
        yes: bool,
        /// How long to wait for another apply's lock on the store.
        lock_timeout: std::time::Duration,
        /// Apply a plan that removes most or all managed variables.
        allow_mass_removal: bool,
    },
}

/// Everything a command needs to know, validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// The directory the run acts in.
    pub cwd: PathBuf,
    /// The selected profile.
    pub profile: Profile,
    /// How it was selected.
    pub profile_origin: ProfileOrigin,
    /// The remote.
    pub remote: RemoteSpec,
    /// Where the remote address came from.
    pub remote_origin: RemoteOrigin,
    /// Whether a confirmation can be asked on the terminal.
    pub can_prompt: bool,
}

impl Config {
    /// Builds the configuration and the action from the command line and the environment.
    pub fn from_cli(cli: &Cli, env: &Env) -> Result<(Self, Action)> {
        let action = match &cli.command {
            Command::Plan(args) => Action::Plan { detailed_exitcode: args.detailed_exitcode },
            Command::Apply(args) | Command::Sync(args) => Action::Apply {
                yes: args.yes,
                lock_timeout: std::time::Duration::from_secs(args.lock_timeout),
                allow_mass_removal: args.allow_mass_removal,
            },
        };
        let cwd = match &cli.directory {
            Some(dir) => {
                let dir = env.cwd.join(dir);
                if !dir.is_dir() {
                    return Err(Error::usage(
                        format!("-C {}: no such directory", dir.display()),
                        "pass an existing directory",
                    ));
                }
                dir
            }
            None => env.cwd.clone(),
        };
        let (profile, profile_origin) = project::select_profile(
            &cwd,
            cli.profile.as_deref(),
            env.profile.as_deref(),
            env.home.as_deref(),
        )?;
        if profile.settings.secrets.source == SourceKind::Env {
            return Err(Error::input(
                Location::file(&profile.yaml),
                "secrets.source: env is not supported by this version of cloud-secrets",
                "remove the line to read the desired state from the profile's secrets.json",
            ));
        }
        let (remote, remote_origin) = resolve_remote(cli.remote.as_deref(), &cwd, &profile)?;
        let config = Config {
            cwd,
            profile,
            profile_origin,
            remote,
            remote_origin,
            can_prompt: env.terminals.stdin && !env.ci,
        };
        Ok((config, action))
    }
}

fn resolve_remote(
    flag: Option<&str>,
    cwd: &std::path::Path,
    profile: &Profile,
) -> Result<(RemoteSpec, RemoteOrigin)> {
    if let Some(text) = flag {
        let spec = RemoteSpec::parse(text, cwd).map_err(|message| {
            Error::usage(format!("--remote {message}"), "for example --remote file:store.json")
        })?;
        return Ok((spec, RemoteOrigin::Flag));
    }
    if let Some(text) = &profile.settings.secrets.remote {
        let spec = RemoteSpec::parse(text, &profile.dir).map_err(|message| {
            Error::input(
                Location::file(&profile.yaml),
                format!("secrets.remote: {message}"),
                "set secrets.remote to file:PATH (relative to the profile directory)",
            )
        })?;
        return Ok((spec, RemoteOrigin::ProfileYaml));
    }
    if profile.settings.target == Some(Target::Cloud) {
        return Err(Error::config(
            format!(
                "profile `{}` targets the systemprompt cloud, which this version of cloud-secrets cannot reach yet",
                profile.name
            ),
            "use the local store: pass --remote file:PATH, or set secrets.remote: file:PATH in profile.yaml",
        ));
    }
    Err(Error::config(
        format!("profile `{}` names no remote", profile.name),
        "pass --remote file:PATH, or add `secrets: {remote: file:store.json}` to the profile's profile.yaml",
    ))
}
