//! The raw command line, as clap parses it. Read by [`crate::config`] and by the commands' dispatch,
//! which hands each command its own arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const MAIN_EXAMPLES: &str = "\
Examples:
  cloud-secrets plan                         show what would change for the only profile
  cloud-secrets plan --profile production --detailed-exitcode
  cloud-secrets apply --remote file:/tmp/store.json
  cloud-secrets apply --yes                  apply without asking (deploy pipelines)
  cloud-secrets set OPENAI_API_KEY --stdin < key.txt
  cloud-secrets init --profile local

Exit codes: 0 ok · 1 error · 2 changes pending (plan --detailed-exitcode) ·
3 remote or desired state changed since planning · 4 not confirmed · 64 usage error ·
130 interrupted (Ctrl-C or SIGTERM; the report says what was and was not done)";

const PLAN_EXAMPLES: &str = "\
Examples:
  cloud-secrets plan
  cloud-secrets plan --profile production --remote file:store.json
  cloud-secrets plan --detailed-exitcode -q; [ $? -eq 2 ] && echo drift
  cloud-secrets plan --format markdown > comment.md
  cloud-secrets plan --out plan.json         save it for cloud-secrets apply plan.json
  cloud-secrets plan --all-profiles --format markdown > comment.md   every profile, one comment";

const APPLY_EXAMPLES: &str = "\
Examples:
  cloud-secrets apply                        show the plan, then ask before writing
  cloud-secrets apply --yes                  no question: for pipelines
  cloud-secrets apply plan.json              a plan saved with plan --out, if still current
  cloud-secrets apply --yes --format json    the outcome of each change, as JSON
  cloud-secrets apply --profile staging --remote file:staging-store.json";

const SYNC_EXAMPLES: &str = "\
Examples:
  cloud-secrets sync                         the playbook's name for apply: show the plan, then ask
  cloud-secrets sync --profile production --yes
  cloud-secrets sync plan.json               a plan saved with plan --out, if still current";

const SET_EXAMPLES: &str = "\
Examples:
  cloud-secrets set anthropic=sk-ant-...     KEY may be the secrets.json key...
  cloud-secrets set ANTHROPIC_API_KEY=sk-ant-...  ...or the variable name
  cloud-secrets set K1=v1 K2=v2 --save       also write the values into secrets.json
  cloud-secrets set OPENAI_API_KEY --stdin < key.txt   keep the value out of shell history";

const UNSET_EXAMPLES: &str = "\
Examples:
  cloud-secrets unset GITHUB_TOKEN
  cloud-secrets unset OLD_KEY UNUSED_KEY --yes
  cloud-secrets unset anthropic --save       also remove the key from secrets.json";

const CLEANUP_EXAMPLES: &str = "\
Examples:
  cloud-secrets cleanup                      remove FLY_APP_NAME, SYSTEMPROMPT_API_URL... if synced
  cloud-secrets cleanup --profile production --yes";

const ROLLBACK_EXAMPLES: &str = "\
Examples:
  cloud-secrets rollback                     show the plan back to the previous version, then ask
  cloud-secrets rollback --remote vault+https://vault:8200/secret/app --yes";

const VALIDATE_EXAMPLES: &str = "\
Examples:
  cloud-secrets validate
  cloud-secrets validate --profile production";

const GENERATE_EXAMPLES: &str = "\
Examples:
  cloud-secrets generate pepper --into oauth_at_rest_pepper   the key the platform requires, unprinted
  cloud-secrets generate jwt-secret          print 48 random bytes, base64 (as openssl rand -base64 48)
  cloud-secrets generate jwt-secret --into jwt_secret   write it into secrets.json, unprinted";

const INIT_EXAMPLES: &str = "\
Examples:
  cloud-secrets init                         scaffold .systemprompt/profiles/local/
  cloud-secrets init --profile production";

const PROFILES_EXAMPLES: &str = "\
Examples:
  cloud-secrets profiles
  cloud-secrets profiles --format json | jq -c '[.profiles[] | select(.remote) | .name]'   a CI matrix";

const COMPARE_EXAMPLES: &str = "\
Examples:
  cloud-secrets compare staging production   the two desired states, by variable name
  cloud-secrets compare staging production --remotes   what the two remotes hold
  cloud-secrets compare staging production --detailed-exitcode -q; [ $? -eq 2 ] && echo differ
  cloud-secrets compare staging production --format markdown > compare.md";

const IMPORT_EXAMPLES: &str = "\
Examples:
  cloud-secrets import .env                  show the keys it would change, then ask
  cloud-secrets import .env.production --profile production --yes
  cloud-secrets import .env --yes -q         no question; only the summary line";

const PULL_EXAMPLES: &str = "\
Examples:
  cloud-secrets pull                         show the keys it would change, then ask
  cloud-secrets pull --profile staging --yes
  cloud-secrets pull --remote vault+https://vault:8200/secret/app";

const SHOW_EXAMPLES: &str = "\
Examples:
  cloud-secrets plan --out plan.json && cloud-secrets show plan.json --format markdown
  cloud-secrets apply plan.json              apply exactly the reviewed plan";

/// Plan and apply an application's secrets: a redacted plan first, changes only on confirmation.
#[derive(Debug, Parser)]
#[command(name = "cloud-secrets", version, after_help = MAIN_EXAMPLES, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,

    /// Profile to use: a name under .systemprompt/profiles/, or a path to a profile's folder or
    /// its profile.yaml [default: $SYSTEMPROMPT_PROFILE, else the active profile of
    /// .systemprompt/sessions/index.json, else the only profile]. For init: the name of the
    /// profile to create [default: local]
    #[arg(long, global = true, value_name = "NAME|PATH")]
    pub profile: Option<String>,

    /// When to use colour (NO_COLOR in the environment turns `auto` off)
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,

    /// Print only the summary line and errors
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Say more: where the profile and remote came from, unchanged variables
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Run as if started in DIR
    #[arg(short = 'C', long = "directory", global = true, value_name = "DIR")]
    pub directory: Option<PathBuf>,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show what apply would change, with every value redacted
    #[command(after_help = PLAN_EXAMPLES)]
    Plan(PlanArgs),
    /// Show the plan, ask, then make the remote match the desired state
    #[command(after_help = APPLY_EXAMPLES)]
    Apply(ApplyCommand),
    /// The same as apply (the platform playbook's name for it)
    #[command(after_help = SYNC_EXAMPLES)]
    Sync(ApplyCommand),
    /// Set variables on the remote directly: a plan of just those keys, confirmed like apply
    #[command(after_help = SET_EXAMPLES)]
    Set(SetArgs),
    /// Remove variables from the remote: a plan of just those keys, confirmed like apply
    #[command(after_help = UNSET_EXAMPLES)]
    Unset(UnsetArgs),
    /// Remove system-managed and stale variables found on the remote, confirmed like apply
    #[command(after_help = CLEANUP_EXAMPLES)]
    Cleanup(CleanupArgs),
    /// Plan a return to the remote's previous version, confirmed like apply
    #[command(after_help = ROLLBACK_EXAMPLES, about = rollback_about())]
    Rollback(RollbackArgs),
    /// Check the desired state offline, with the profile's validation rules
    #[command(after_help = VALIDATE_EXAMPLES)]
    Validate,
    /// Generate a secret
    #[command(after_help = GENERATE_EXAMPLES)]
    Generate(GenerateArgs),
    /// Scaffold a profile: profile.yaml, secrets.json (mode 0600), its cloud-secrets.yaml section
    /// and a .gitignore
    #[command(after_help = INIT_EXAMPLES)]
    Init,
    /// List the project's profiles with their target, tenant and remote
    #[command(after_help = PROFILES_EXAMPLES)]
    Profiles(ProfilesArgs),
    /// Show a plan saved with plan --out
    #[command(after_help = SHOW_EXAMPLES)]
    Show(ShowArgs),
    /// Compare two profiles by variable name, values never shown: only in one, the same, different,
    /// not set
    #[command(after_help = COMPARE_EXAMPLES)]
    Compare(CompareArgs),
    /// Copy a dotenv file's variables into secrets.json, under the keys they come from, confirmed
    /// like apply
    #[command(after_help = IMPORT_EXAMPLES)]
    Import(ImportArgs),
    /// Copy the remote's values into secrets.json, under the keys they come from, confirmed like
    /// apply
    #[command(after_help = PULL_EXAMPLES)]
    Pull(PullArgs),
}

/// Options of `apply` and `sync`.
#[derive(Debug, Args)]
pub struct ApplyCommand {
    /// A plan saved with `plan --out`: apply exactly it, without a question, if neither the
    /// desired state nor the remote changed since
    #[arg(value_name = "PLAN_FILE")]
    pub plan_file: Option<PathBuf>,

    /// How the change is applied.
    #[command(flatten)]
    pub apply: ApplyArgs,

    /// A plan of the whole remote.
    #[command(flatten)]
    pub whole: WholeArgs,
}

/// Options of `profiles`.
#[derive(Debug, Args)]
pub struct ProfilesArgs {
    /// Output format (json: one document, for building a CI matrix)
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// Options of `compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The first profile (a name, or a path as --profile takes it)
    #[arg(value_name = "A")]
    pub a: String,

    /// The second profile
    #[arg(value_name = "B")]
    pub b: String,

    /// Compare what the two remotes hold instead of the two desired states
    #[arg(long)]
    pub remotes: bool,

    /// Exit 2 when the two differ, 0 when they do not (1 stays an error)
    #[arg(long)]
    pub detailed_exitcode: bool,

    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// With --remotes: seconds each request to a network remote may take before it is retried
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 30.0,
        value_parser = parse_timeout,
        allow_negative_numbers = true,
        requires = "remotes"
    )]
    pub timeout: f64,
}

/// Options of `show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The saved plan
    #[arg(value_name = "PLAN_FILE")]
    pub plan_file: PathBuf,

    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// Options of `import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The dotenv file to read (NAME=value lines: quotes, `export` and comments as dotenv reads
    /// them)
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// Write into secrets.json without asking
    #[arg(short, long)]
    pub yes: bool,
}

/// Options of `pull`.
#[derive(Debug, Args)]
pub struct PullArgs {
    /// Write into secrets.json without asking
    #[arg(short, long)]
    pub yes: bool,

    /// The remote.
    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// How a plan is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people at a terminal
    Text,
    /// One JSON document (docs/plan-format.md)
    Json,
    /// For a pull-request comment
    Markdown,
}

/// Which remote a command reads or writes, and how it is reached.
#[derive(Debug, Args)]
pub struct RemoteArgs {
    /// Remote to use, overriding `remote` in .systemprompt/cloud-secrets.yaml (e.g.
    /// file:store.json)
    #[arg(long, value_name = "REMOTE")]
    pub remote: Option<String>,

    /// Seconds each request to a network remote may take before it is retried
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 30.0,
        value_parser = parse_timeout,
        allow_negative_numbers = true
    )]
    pub timeout: f64,
}

/// Options of `plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Exit 2 when there are changes, 0 when there are none (1 stays an error)
    #[arg(long)]
    pub detailed_exitcode: bool,

    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// Also save the plan to FILE (mode 0600, no values) for `apply FILE`
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// Plan every profile of the project that names a remote, concurrently, in one report with
    /// a summary (not with --profile or --out)
    #[arg(long, conflicts_with = "out")]
    pub all_profiles: bool,

    /// The remote.
    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// Options of `apply`, `sync`, and every command that changes the remote.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Apply without asking
    #[arg(short, long)]
    pub yes: bool,

    /// Output format (with json or markdown, a plan awaiting confirmation is shown as text on
    /// stderr, and stdout carries only the final document)
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// Seconds to wait while another apply holds the store's lock
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 30,
        allow_negative_numbers = true,
        value_parser = parse_lock_timeout
    )]
    pub lock_timeout: u64,

    /// Writes per second to a remote that limits them (SSM Parameter Store)
    #[arg(long, value_name = "PER_SECOND", default_value_t = 3.0, value_parser = parse_rate)]
    pub write_rate: f64,

    /// The remote.
    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// Options of the commands that remove variables from the remote.
#[derive(Debug, Args)]
pub struct RemovalArgs {
    /// How many removals a network remote is sent at once
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parallelism: u16,
}

/// Options of the commands that plan the whole remote (`apply`, `sync`, `rollback`).
#[derive(Debug, Args)]
pub struct WholeArgs {
    /// Apply even when the plan removes more than the profile's mass_removal_threshold (default
    /// half) of the managed variables on the remote, or all of them
    #[arg(long)]
    pub allow_mass_removal: bool,

    /// Removals.
    #[command(flatten)]
    pub removals: RemovalArgs,
}

/// Options of `cleanup`.
#[derive(Debug, Args)]
pub struct CleanupArgs {
    /// How the change is applied.
    #[command(flatten)]
    pub apply: ApplyArgs,

    /// Removals.
    #[command(flatten)]
    pub removals: RemovalArgs,
}

/// Options of `rollback`.
#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// How the change is applied.
    #[command(flatten)]
    pub apply: ApplyArgs,

    /// A plan of the whole remote.
    #[command(flatten)]
    pub whole: WholeArgs,
}

/// Options of `set`.
#[derive(Debug, Args)]
pub struct SetArgs {
    /// KEY=VALUE pairs; KEY is a secrets.json key (`anthropic`) or a variable name
    /// (`ANTHROPIC_API_KEY`). With --stdin, one KEY alone.
    #[arg(required = true, value_name = "KEY=VALUE")]
    pub assignments: Vec<String>,

    /// Read the value of the one KEY from standard input (keeps it out of shell history)
    #[arg(long)]
    pub stdin: bool,

    /// Also write the values into the profile's secrets.json (order and formatting kept)
    #[arg(long)]
    pub save: bool,

    /// How the change is applied.
    #[command(flatten)]
    pub apply: ApplyArgs,
}

/// Options of `unset`.
#[derive(Debug, Args)]
pub struct UnsetArgs {
    /// Keys to remove: secrets.json keys or variable names
    #[arg(required = true, value_name = "KEY")]
    pub keys: Vec<String>,

    /// Also remove the keys from the profile's secrets.json (order and formatting of the rest
    /// kept), so that the next apply does not add them back
    #[arg(long)]
    pub save: bool,

    /// How the change is applied.
    #[command(flatten)]
    pub apply: ApplyArgs,

    /// Removals.
    #[command(flatten)]
    pub removals: RemovalArgs,
}

/// Options of `generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// What to generate
    #[arg(value_enum)]
    pub kind: GenerateKind,

    /// Write it into the profile's secrets.json under this key instead of printing it
    #[arg(long, value_name = "KEY")]
    pub into: Option<String>,

    /// With --into: replace a value the key already has (the previous one is kept in
    /// `<secrets file>.previous`, mode 0600)
    #[arg(long, requires = "into")]
    pub force: bool,
}

/// What `generate` makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GenerateKind {
    /// An oauth_at_rest_pepper: 64 random letters and digits, as the platform makes one
    Pepper,
    /// 48 random bytes, base64-encoded (64 characters)
    JwtSecret,
}

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// Colour when writing to a terminal and NO_COLOR is not set
    Auto,
    /// Always colour
    Always,
    /// Never colour
    Never,
}

/// `rollback`'s line of help, naming the remotes that keep versions.
fn rollback_about() -> String {
    format!(
        "Plan a return to the remote's previous version ({}), confirmed like apply",
        crate::backend::rollback_kinds()
    )
}

fn parse_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if rate > 0.0 && rate <= 1000.0 => Ok(rate),
        _ => Err("expected a number of writes per second, more than 0 and at most 1000".to_owned()),
    }
}

fn parse_lock_timeout(text: &str) -> Result<u64, String> {
    text.parse::<u64>().map_err(|_| "expected a whole number of seconds, 0 (do not wait) or more".to_owned())
}

fn parse_timeout(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(seconds) if seconds > 0.0 && seconds <= 3600.0 => Ok(seconds),
        _ => Err("expected a number of seconds, more than 0 and at most 3600".to_owned()),
    }
}
