//! The validated configuration of one run, built from the raw command line and the environment.
//! Domain code reads this, never clap's types.

use std::io::IsTerminal;
use std::path::PathBuf;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::backend::{self, Connection};
use crate::cli::{ApplyArgs, Cli, RemoteArgs};
use crate::color::Palette;
use crate::diagnostics::Diagnostics;
use crate::error::{Error, Location, Result};
use crate::project::{self, Profile, ProfileOrigin, Target};
use crate::secret::SecretValue;
use crate::trust;

/// What the process environment contributes. Read once, at the edge.
#[derive(Debug, Clone, Default)]
pub struct Env {
    /// The working directory.
    pub cwd: PathBuf,
    /// `SYSTEMPROMPT_PROFILE`.
    pub profile: Option<String>,
    /// Every non-empty process environment variable (values that can override secrets.json).
    pub vars: BTreeMap<String, SecretValue>,
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
            vars: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, v)| (k, SecretValue::new(v)))
                .collect(),
            no_color: var("NO_COLOR").is_some(),
            ci: var("CI").is_some_and(|v| !matches!(v.to_ascii_lowercase().as_str(), "0" | "false" | "no")),
            home: var("HOME").map(PathBuf::from),
            // Only whether each stream is a terminal is read here; the streams are main's.
            #[allow(clippy::disallowed_methods)]
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
    /// `remote` in `.systemprompt/cloud-secrets.yaml`.
    Settings,
    /// `secrets.remote` in profile.yaml (a field of earlier versions).
    ProfileYaml,
    /// `target: cloud` in profile.yaml, with the API URL from the environment or credentials.
    Target,
}

/// Everything a command that reads a profile needs to know, validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// The directory the run acts in.
    pub cwd: PathBuf,
    /// The selected profile.
    pub profile: Profile,
    /// How it was selected.
    pub profile_origin: ProfileOrigin,
    /// The project root, if the profile lies in a project (where `.env` is read).
    pub root: Option<PathBuf>,
    /// The process environment's non-empty variables.
    pub environment: BTreeMap<String, SecretValue>,
    /// Whether a confirmation can be asked on the terminal.
    pub can_prompt: bool,
    /// Whether standard input is a terminal (a value is then typed, hidden).
    pub stdin_terminal: bool,
    /// `CI` is set: never ask.
    pub ci: bool,
    /// Variables the profile leaves alone (`ignore` in cloud-secrets.yaml).
    pub ignore: crate::policy::Ignore,
    /// cloud-secrets' own settings for the profile (`.systemprompt/cloud-secrets.yaml`).
    pub settings: crate::settings::Settings,
}

/// What selecting a profile reads from the command line and the environment.
pub fn selection<'a>(cli: &'a Cli, env: &'a Env) -> project::Selection<'a> {
    project::Selection {
        flag: cli.profile.as_deref(),
        env: env.profile.as_deref(),
        home: env.home.as_deref(),
        vars: &env.vars,
    }
}

/// The directory the run acts in: the working directory, or `-C DIR`.
pub fn working_dir(cli: &Cli, env: &Env) -> Result<PathBuf> {
    match &cli.directory {
        Some(dir) => {
            let dir = env.cwd.join(dir);
            if !dir.is_dir() {
                return Err(Error::usage(
                    format!("-C {}: no such directory", dir.display()),
                    "pass an existing directory",
                ));
            }
            Ok(dir)
        }
        None => Ok(env.cwd.clone()),
    }
}

impl Config {
    /// Selects the profile and reads its settings.
    pub fn from_cli(cli: &Cli, env: &Env) -> Result<Self> {
        let cwd = working_dir(cli, env)?;
        let (profile, profile_origin) = project::select_profile(&cwd, selection(cli, env))?;
        Self::of(cwd, (profile, profile_origin), env)
    }

    /// The configuration of the profile `name` (a name or a path, as `--profile` takes it).
    pub fn for_name(cli: &Cli, env: &Env, name: &str) -> Result<Self> {
        let cwd = working_dir(cli, env)?;
        let selection = project::Selection { flag: Some(name), ..selection(cli, env) };
        let (profile, origin) = project::select_profile(&cwd, selection)?;
        Self::of(cwd, (profile, origin), env)
    }

    /// The configuration of one profile found in the project (`plan --all-profiles`).
    pub fn for_profile(cli: &Cli, env: &Env, found: project::ProfileRef) -> Result<Self> {
        let cwd = working_dir(cli, env)?;
        let profile = project::load_profile(found, selection(cli, env))?;
        Self::of(cwd, (profile, ProfileOrigin::Flag), env)
    }

    fn of(cwd: PathBuf, (profile, profile_origin): (Profile, ProfileOrigin), env: &Env) -> Result<Self> {
        let root = project::find_root(&profile.dir);
        let settings = crate::settings::load(root.as_deref(), &profile, env.home.as_deref())?;
        let ignore = crate::policy::Ignore::new(&settings.ignore.0).map_err(|message| {
            let location = settings
                .ignore
                .1
                .as_ref()
                .map_or_else(|| Location::file(&settings.path), |origin| origin.location().clone());
            Error::input(
                location,
                format!("ignore: {message}"),
                "list glob patterns of variable names, such as LEGACY_* or FEATURE_?",
            )
        })?;
        Ok(Config {
            ignore,
            settings,
            root,
            cwd,
            profile,
            profile_origin,
            environment: env.vars.clone(),
            can_prompt: env.terminals.stdin && !env.ci,
            stdin_terminal: env.terminals.stdin,
            ci: env.ci,
        })
    }
}

/// The remote of a command that plans, and how to reach it.
#[derive(Debug, Clone)]
pub struct RemoteConfig {
    /// The remote.
    pub spec: Arc<dyn backend::Spec>,
    /// Where the remote address came from.
    pub origin: RemoteOrigin,
    /// How a network remote is reached (timeouts, retries, concurrency, pacing).
    pub connection: Connection,
    /// The remote as shown to people.
    shown: String,
}

impl RemoteConfig {
    /// The remote as shown to people.
    pub fn display(&self) -> &str {
        &self.shown
    }

    /// Resolves the remote of `config`'s profile for a command that only reads it (`plan`,
    /// `compare --remotes`, `pull`).
    pub fn for_reading(
        args: &RemoteArgs,
        diagnostics: Arc<dyn Diagnostics>,
        env: &Env,
        config: &Config,
    ) -> Result<Self> {
        Self::new(args, (1, 1.0), diagnostics, env, config)
    }

    /// Resolves the remote of `config`'s profile for a command that writes it.
    /// `parallelism`: how many removals are sent at once.
    pub fn for_apply(
        args: &ApplyArgs,
        parallelism: u16,
        diagnostics: Arc<dyn Diagnostics>,
        env: &Env,
        config: &Config,
    ) -> Result<Self> {
        Self::new(&args.remote, (usize::from(parallelism), args.write_rate), diagnostics, env, config)
    }

    fn new(
        args: &RemoteArgs,
        (parallelism, write_rate): (usize, f64),
        diagnostics: Arc<dyn Diagnostics>,
        env: &Env,
        config: &Config,
    ) -> Result<Self> {
        let (spec, origin) = resolve_remote(args.remote.as_deref(), config, env)?;
        let connection = Connection {
            timeout: Duration::from_secs_f64(args.timeout),
            retries: RETRIES,
            parallelism,
            interrupted: crate::interrupt::Flag::default(),
            diagnostics,
            write_rate,
        };
        Ok(Self { shown: spec.to_string(), spec, origin, connection })
    }
}

/// Where an address named by `origin` came from, for [`trust::check`].
fn trusted_from(origin: RemoteOrigin) -> trust::From {
    match origin {
        RemoteOrigin::Flag => trust::From::CommandLine,
        RemoteOrigin::Settings | RemoteOrigin::ProfileYaml => trust::From::Checkout,
        // Never an explicit address: the API URL is then resolved on its own.
        RemoteOrigin::Target => trust::From::Default,
    }
}

/// How many times a transient failure of a network remote is retried.
pub const RETRIES: u32 = 4;

/// What an address is resolved against: the environment, the profile, the project root.
fn resolving<'a>(
    config: &'a Config,
    env: &'a Env,
    base: &'a Path,
    origin: RemoteOrigin,
) -> backend::Resolving<'a> {
    backend::Resolving {
        vars: &env.vars,
        home: env.home.as_deref(),
        base,
        from: trusted_from(origin),
        profile: &config.profile,
        root: config.root.as_deref(),
    }
}

/// The remote (resolved by the kind its address names, with its credentials) and where its
/// address came from: `--remote`, cloud-secrets.yaml (or a legacy profile.yaml field), or the
/// profile's target.
fn resolve_remote(
    flag: Option<&str>,
    config: &Config,
    env: &Env,
) -> Result<(Arc<dyn backend::Spec>, RemoteOrigin)> {
    let profile: &Profile = &config.profile;
    let context = |base, origin| resolving(config, env, base, origin);
    let refused = |refusal: backend::Refusal, address: &dyn Fn(String) -> Error| match refusal {
        backend::Refusal::Address(message) => address(message),
        backend::Refusal::Error(error) => error,
    };
    if let Some(text) = flag {
        let spec = backend::resolve(text, &context(&config.cwd, RemoteOrigin::Flag)).map_err(|refusal| {
            refused(refusal, &|message| {
                Error::usage(
                    format!("--remote {message}"),
                    format!(
                        "name {} (plain http:// only on 127.0.0.1 or localhost)",
                        backend::forms(" for the local store")
                    ),
                )
            })
        })?;
        return Ok((spec, RemoteOrigin::Flag));
    }
    if let Some(remote) = &config.settings.remote {
        let (field, relative_to, origin) = match &remote.origin {
            crate::settings::Origin::Settings(_) => ("remote", "this file's folder", RemoteOrigin::Settings),
            crate::settings::Origin::ProfileYaml(_) => {
                ("secrets.remote", "the profile's folder", RemoteOrigin::ProfileYaml)
            }
        };
        let spec = backend::resolve(&remote.address, &context(&remote.base, origin)).map_err(|refusal| {
            refused(refusal, &|message| {
                Error::input(
                    remote.origin.location().clone(),
                    format!("{field}: {message}"),
                    format!("set {field} to {}", backend::forms(&format!(" (relative to {relative_to})"))),
                )
            })
        })?;
        return Ok((spec, origin));
    }
    if profile.settings.target == Some(Target::Cloud) {
        let spec = backend::resolve_cloud_target(&context(&config.cwd, RemoteOrigin::Target))?;
        return Ok((spec, RemoteOrigin::Target));
    }
    Err(Error::config(
        format!("profile `{}` names no remote", profile.name),
        format!(
            "pass --remote file:PATH, or name it in {}:\n  profiles:\n    {}:\n      remote: file:profiles/{}/store.json",
            crate::error::display_path(&config.settings.path),
            profile.name,
            profile.name
        ),
    ))
}
