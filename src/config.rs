//! The validated configuration of one run, built from the raw command line and the environment.
//! Domain code reads this, never clap's types.

use std::io::IsTerminal;
use std::path::PathBuf;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::backend::{self, Address, Connection, DEFAULT_API_URL, RemoteSpec};
use crate::cli::{ApplyArgs, Cli, PlanArgs, RemoteArgs};
use crate::color::Palette;
use crate::credentials;
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
    /// `SYSTEMPROMPT_API_TOKEN`.
    pub api_token: Option<SecretValue>,
    /// `SYSTEMPROMPT_API_URL`.
    pub api_url: Option<String>,
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
            api_token: var("SYSTEMPROMPT_API_TOKEN").map(SecretValue::new),
            api_url: var("SYSTEMPROMPT_API_URL"),
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
    pub spec: RemoteSpec,
    /// Where the remote address came from.
    pub origin: RemoteOrigin,
    /// How a network remote is reached (token, timeouts, concurrency).
    pub connection: Connection,
    /// The remote as shown to people.
    shown: String,
}

impl RemoteConfig {
    /// The remote as shown to people.
    pub fn display(&self) -> &str {
        &self.shown
    }

    /// Resolves the remote of `config`'s profile for a plan.
    pub fn for_plan(
        args: &PlanArgs,
        diagnostics: Arc<dyn Diagnostics>,
        env: &Env,
        config: &Config,
    ) -> Result<Self> {
        Self::new(&args.remote, (1, 1.0), diagnostics, env, config)
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
        let (spec, origin, token) = resolve_remote(args.remote.as_deref(), config, env)?;
        let connection = Connection {
            token,
            timeout: Duration::from_secs_f64(args.timeout),
            retries: RETRIES,
            parallelism,
            interrupted: crate::interrupt::Flag::default(),
            diagnostics,
            write_rate,
            aws: match &spec {
                RemoteSpec::SecretsManager { .. } | RemoteSpec::ParameterStore { .. } => Some(
                    std::sync::Arc::new(backend::AwsCredentials::from_env(&env.vars, env.home.as_deref())?),
                ),
                _ => None,
            },
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

/// Refuses to send a credential where [`trust::check`] says it may not go.
fn check_destination(destination: &trust::Destination<'_>) -> Result<()> {
    trust::check(destination)
        .map_err(|refusal| Error::Config { message: refusal.message, hint: Some(refusal.hint) })
}

/// How many times a transient failure of a network remote is retried.
pub const RETRIES: u32 = 4;

/// The remote, where its address came from, and the API token when it is the cloud.
fn resolve_remote(
    flag: Option<&str>,
    config: &Config,
    env: &Env,
) -> Result<(RemoteSpec, RemoteOrigin, Option<SecretValue>)> {
    let (cwd, profile): (&Path, &Profile) = (&config.cwd, &config.profile);
    let (address, origin) = if let Some(text) = flag {
        let address = Address::parse(text, cwd).map_err(|message| {
            Error::usage(
                format!("--remote {message}"),
                "name file:PATH for the local store, an https:// API URL, vault+https://HOST/MOUNT/PATH, \
                 awssm://REGION/NAME or ssm://REGION/PREFIX (plain http:// only on 127.0.0.1 or localhost)",
            )
        })?;
        (Some(address), RemoteOrigin::Flag)
    } else if let Some(remote) = &config.settings.remote {
        let (field, relative_to, origin) = match &remote.origin {
            crate::settings::Origin::Settings(_) => ("remote", "this file's folder", RemoteOrigin::Settings),
            crate::settings::Origin::ProfileYaml(_) => {
                ("secrets.remote", "the profile's folder", RemoteOrigin::ProfileYaml)
            }
        };
        let address = Address::parse(&remote.address, &remote.base).map_err(|message| {
            Error::input(
                remote.origin.location().clone(),
                format!("{field}: {message}"),
                format!(
                    "set {field} to file:PATH (relative to {relative_to}), an https:// API URL, \
                     vault+https://HOST/MOUNT/PATH, awssm://REGION/NAME or ssm://REGION/PREFIX"
                ),
            )
        })?;
        (Some(address), origin)
    } else if profile.settings.target == Some(Target::Cloud) {
        (None, RemoteOrigin::Target)
    } else {
        return Err(Error::config(
            format!("profile `{}` names no remote", profile.name),
            format!(
                "pass --remote file:PATH, or name it in {}:\n  profiles:\n    {}:\n      remote: file:profiles/{}/store.json",
                crate::error::display_path(&config.settings.path),
                profile.name,
                profile.name
            ),
        ));
    };
    let explicit_url = match address {
        Some(Address::File(path)) => return Ok((RemoteSpec::File(path), origin, None)),
        Some(Address::SecretsManager { region, name }) => {
            let endpoint = backend::aws_endpoint(
                &env.vars,
                "AWS_ENDPOINT_URL_SECRETS_MANAGER",
                "secretsmanager",
                &region,
            )
            .map_err(|message| {
                Error::config(format!("AWS endpoint: {message}"), "set AWS_ENDPOINT_URL to an https:// URL")
            })?;
            return Ok((RemoteSpec::SecretsManager { endpoint, region, name }, origin, None));
        }
        Some(Address::ParameterStore { region, prefix }) => {
            let endpoint = backend::aws_endpoint(&env.vars, "AWS_ENDPOINT_URL_SSM", "ssm", &region).map_err(
                |message| {
                    Error::config(
                        format!("AWS endpoint: {message}"),
                        "set AWS_ENDPOINT_URL to an https:// URL",
                    )
                },
            )?;
            return Ok((RemoteSpec::ParameterStore { endpoint, region, prefix }, origin, None));
        }
        Some(Address::Vault { address, mount, path }) => {
            let token = env.vars.get("VAULT_TOKEN").or_else(|| env.vars.get("BAO_TOKEN")).cloned();
            let namespace = env.vars.get("VAULT_NAMESPACE").map(|n| n.expose().to_owned());
            let printable = |text: &str| text.chars().all(|c| c.is_ascii_graphic());
            if token.as_ref().is_some_and(|t| !printable(t.expose())) {
                return Err(Error::config(
                    "VAULT_TOKEN (or BAO_TOKEN) holds characters a token cannot have (spaces, line breaks...)",
                    "set it to the token alone",
                ));
            }
            if namespace.as_deref().is_some_and(|n| !printable(n)) {
                return Err(Error::config(
                    "VAULT_NAMESPACE holds spaces or control characters",
                    "set it to the namespace's path",
                ));
            }
            if token.is_some() {
                let paired = ["VAULT_ADDR", "BAO_ADDR"]
                    .iter()
                    .find_map(|name| env.vars.get(*name))
                    .and_then(|text| reqwest::Url::parse(text.expose()).ok());
                check_destination(&trust::Destination {
                    credential: "VAULT_TOKEN",
                    credential_from: trust::From::Environment,
                    address: &address,
                    address_from: trusted_from(origin),
                    paired: paired.as_ref(),
                    default: None,
                })?;
            }
            return Ok((RemoteSpec::Vault { address, mount, path, namespace }, origin, token));
        }
        Some(Address::Api(url)) => Some(url),
        None => None,
    };

    let tenant = profile.settings.tenant_id().map(str::to_owned).filter(|t| !t.trim().is_empty());
    let tenant = match tenant {
        Some(tenant) if backend::is_plain_name(&tenant) => tenant,
        Some(_) => {
            return Err(Error::input(
                project::locate(&profile.yaml, "tenant_id"),
                // Not shown: `${VAR}` may have put anything from the environment there.
                "cloud.tenant_id is not a tenant id".to_owned(),
                "a tenant id is made of letters, digits, `_`, `-` and `.`",
            ));
        }
        None => {
            return Err(Error::input(
                project::locate(&profile.yaml, "target"),
                format!("profile `{}` uses the systemprompt cloud but names no tenant", profile.name),
                "set cloud.tenant_id in profile.yaml (the platform's CLI writes it when it creates a cloud profile)",
            ));
        }
    };
    let credentials_path = config.root.as_ref().map(|root| credentials::path(root));
    let credentials = match &credentials_path {
        Some(path) => credentials::load(path)?,
        None => credentials::Credentials::default(),
    };
    let parse = |text: &str, from: Location| {
        backend::api_url(text).map_err(|message| {
            Error::input(
                from,
                format!("api_url {message}"),
                "use the https:// address of the systemprompt API",
            )
        })
    };
    let env_url = match &env.api_url {
        Some(text) => Some(parse(text, Location::named("environment variable SYSTEMPROMPT_API_URL"))?),
        None => None,
    };
    // credentials.json's api_url is read only where it is used: as the address, or as the one
    // address its token may go to.
    let file_url = match (&credentials.api_url, &credentials_path) {
        (Some(text), Some(path))
            if (explicit_url.is_none() && env_url.is_none())
                || (env.api_token.is_none() && credentials.api_token.is_some()) =>
        {
            Some(parse(text, credentials::locate(path, "api_url"))?)
        }
        _ => None,
    };
    let default_url = parse(DEFAULT_API_URL, Location::named("the default API URL"))?;
    let (api_url, url_from) = match (explicit_url, &env_url, &file_url) {
        (Some(url), _, _) => (url, trusted_from(origin)),
        (None, Some(url), _) => (url.clone(), trust::From::Environment),
        (None, None, Some(url)) => (url.clone(), trust::From::CredentialsFile),
        (None, None, None) => (default_url.clone(), trust::From::Default),
    };
    // The token goes only where the place it came from points.
    let (token, token_from, paired) = match (env.api_token.clone(), credentials.api_token) {
        (Some(token), _) => (Some(token), trust::From::Environment, env_url.as_ref()),
        (None, Some(token)) => (Some(token), trust::From::CredentialsFile, file_url.as_ref()),
        (None, None) => (None, trust::From::Default, None),
    };
    if token.is_some() {
        check_destination(&trust::Destination {
            credential: "the API token",
            credential_from: token_from,
            address: &api_url,
            address_from: url_from,
            paired,
            default: Some(&default_url),
        })?;
    }
    Ok((RemoteSpec::Cloud { api_url, tenant }, origin, token))
}
