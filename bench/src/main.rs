//! The end-to-end benchmark of cloud-secrets: the release binary, run as a process from start
//! to exit, against the cloud API emulator on 127.0.0.1, each figure a ratio to a floor made of
//! `curl` processes sending the same requests to the same emulator, the two interleaved. Prints
//! the targets (tool, floor, ratio, limit, PASS or MISS), informational rows (and OpenBao and
//! moto when their addresses are given), and with `--out` writes them into docs/performance.md
//! between its markers. Exits 1 when a target is missed, 2 when something could not be measured.
//!
//! Each run goes through a small wrapper (this binary, re-run as `__measure` or `__floor`, see
//! [`measure`]) so that every figure belongs to the measured processes alone.

mod measure;
mod project;
mod report;
mod stats;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use clap::Parser;
use cloud_secrets_emulator::{Emulator, Listing, LoggedRequest};

use measure::{Floor, Runner, Sample};
use project::{Kind, Project, TENANT, TOKEN};
use report::{Row, Setup, Target};
use stats::Pairs;

/// Pairs per target at 10,000 variables and for the local store, unless `--runs` says.
const RUNS: usize = 9;
/// Pairs per target at 100,000 variables, and runs of each informational row, unless `--runs` says.
const BIG_RUNS: usize = 7;
/// Variables of the main plan and apply targets.
const SIZE: usize = 10_000;
/// Variables of the large plan target.
const BIG_SIZE: usize = 100_000;
/// The share of variables whose value changes in the plans measured: one in ten.
const CHANGED_EVERY: usize = 10;
/// Variables of the project on the local store.
const LOCAL_SIZE: usize = 20;
/// The most a plan may take, as a multiple of its floor.
const PLAN_LIMIT: f64 = 1.3;
/// The most an apply of additions may take, as a multiple of its floor.
const APPLY_LIMIT: f64 = 1.5;
/// The most the plan at [`BIG_SIZE`] may take, as a multiple of the plan at [`SIZE`].
const SCALING_LIMIT: f64 = 11.0;
/// The most memory the plan at [`BIG_SIZE`] may take, in MB (10^6 bytes).
const MEMORY_LIMIT_MB: f64 = 150.0;
/// The most the plan on the local store may take, as a multiple of `--help`.
const LOCAL_LIMIT: f64 = 1.5;
/// Variables in the OpenBao measurements: what one request may carry to a default listener.
const VAULT_SIZE: usize = 450;
/// Variables in the Secrets Manager measurements: what one secret of 64 KB holds.
const SM_SIZE: usize = 800;
/// Variables in the Parameter Store measurements: the list of custom names fits in 4 KB.
const SSM_SIZE: usize = 300;

/// Measure plan and apply end to end, as ratios to a floor of curl processes.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// The cloud-secrets binary to measure
    #[arg(long, default_value = "target/release/cloud-secrets")]
    bin: PathBuf,
    /// Interleaved pairs of every measurement (default: 9 at 10,000 variables and for the local
    /// store, 7 at 100,000 and for the informational rows)
    #[arg(long)]
    runs: Option<usize>,
    /// Write the report into this Markdown file, between its `<!-- bench:begin -->` and
    /// `<!-- bench:end -->` markers (the rest of the file is kept)
    #[arg(long)]
    out: Option<PathBuf>,
    /// The source revision measured, for the report
    #[arg(long)]
    revision: Option<String>,
    /// The curl binary of the floor
    #[arg(long, default_value = "curl")]
    curl: PathBuf,
    /// An OpenBao or Vault dev server to measure too (`http://127.0.0.1:PORT`)
    #[arg(long, env = "CLOUD_SECRETS_VAULT_ADDR")]
    vault_addr: Option<String>,
    /// Its root token
    #[arg(long, env = "CLOUD_SECRETS_VAULT_TOKEN", hide_env_values = true)]
    vault_token: Option<String>,
    /// A moto server to measure too (`http://127.0.0.1:PORT`)
    #[arg(long, env = "CLOUD_SECRETS_MOTO_ADDR")]
    moto_addr: Option<String>,
}

fn main() -> ExitCode {
    let argv: Vec<OsString> = std::env::args_os().collect();
    match argv.get(1).and_then(|a| a.to_str()) {
        Some(measure::MEASURE) => return measure::measure_child(&argv[2..]),
        Some(measure::FLOOR) => return measure::floor_child(&argv[2..]),
        _ => {}
    }
    let args = Args::parse();
    match run(&args) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(missed) => {
            eprintln!("{missed} target(s) missed (the report was written all the same)");
            ExitCode::from(1)
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

/// Measures everything, prints and writes the report; returns the number of targets missed.
fn run(args: &Args) -> Result<usize, String> {
    let load_at_start = report::load_average();
    if load_at_start.parse::<f64>().is_ok_and(|load| load >= 1.0) {
        eprintln!(
            "note: load average {load_at_start}: other work on this machine widens the spread of the ratios"
        );
    }
    let curl_version = curl_version(&args.curl)?;
    let bin = std::fs::canonicalize(&args.bin).map_err(|e| {
        format!("{}: {e} (build it with cargo build --release -p cloud-secrets)", args.bin.display())
    })?;
    let bench = Bench::new(bin, args)?;
    let setup = Setup {
        command: format!("./scripts/bench{}", args.runs.map(|n| format!(" --runs {n}")).unwrap_or_default()),
        runs: bench.runs,
        big_runs: bench.big_runs,
        tool_version: bench.tool_version()?,
        revision: args.revision.clone(),
        curl_version,
        load_at_start,
    };
    let (targets, mut rows) = bench.targets()?;
    rows.extend(bench.other_remotes(args)?);
    let generated = report::generate(&setup, &targets, &rows);
    print!("{generated}");
    if let Some(out) = &args.out {
        report::write(out, &generated)?;
    }
    Ok(targets.iter().filter(|t| !t.pass()).count())
}

/// `curl --version`'s first line, or an error saying to install curl.
fn curl_version(curl: &Path) -> Result<String, String> {
    let missing = |why: String| {
        format!(
            "{} {why}: the floor the tool is compared with is made of curl processes; install curl \
             (Debian: apt-get install curl) or name it with --curl",
            curl.display()
        )
    };
    let output =
        Command::new(curl).arg("--version").output().map_err(|e| missing(format!("cannot be run ({e})")))?;
    if !output.status.success() {
        return Err(missing(format!("--version exited with {}", output.status)));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let first = text.lines().next().unwrap_or("curl");
    // "curl 7.88.1 (x86_64-pc-linux-gnu) libcurl/7.88.1 ...": the name and the version.
    Ok(first.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
}

/// The emulator, the runner and the settings of one benchmark.
struct Bench {
    /// Runs the wrappers.
    runner: Runner,
    /// The remote of every cloud measurement, in this process.
    emulator: Emulator,
    /// The curl of the floor.
    curl: PathBuf,
    /// The floor's request bodies, copied from the emulator's log.
    files: tempfile::TempDir,
    /// Pairs per target at [`SIZE`] and for the local store.
    runs: usize,
    /// Pairs per target at [`BIG_SIZE`], and runs of each informational row.
    big_runs: usize,
}

/// A plan target's project, planned against a remote that holds its variables before a tenth
/// of them changed, and the floor of that plan.
struct PlanCase {
    /// The project, its secrets.json already changed.
    project: Project,
    /// The floor of its plan.
    floor: Floor,
    /// Requests per run: the tool's and the floor's.
    requests: (usize, usize),
    /// How many values changed.
    changed: usize,
}

impl Bench {
    /// An emulator listing digests, granting [`TOKEN`] on [`TENANT`], and a runner of `bin`.
    fn new(bin: PathBuf, args: &Args) -> Result<Self, String> {
        let emulator = Emulator::start();
        emulator.set_listing(Listing::Digests);
        emulator.grant(TOKEN, &[TENANT]);
        let files = tempfile::Builder::new()
            .prefix("cs-bench-floor-")
            .tempdir()
            .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
        Ok(Self {
            runner: Runner::new(bin)?,
            emulator,
            curl: args.curl.clone(),
            files,
            runs: args.runs.unwrap_or(RUNS).max(1),
            big_runs: args.runs.unwrap_or(BIG_RUNS).max(1),
        })
    }

    /// The environment that points the tool at the emulator.
    fn env(&self) -> [(&'static str, String); 1] {
        [("SYSTEMPROMPT_API_URL", self.emulator.url())]
    }

    /// `cloud-secrets --version`.
    fn tool_version(&self) -> Result<String, String> {
        let (_, stdout, _) = self.open(Path::new("/"), &[], &["--version"])?;
        Ok(String::from_utf8_lossy(&stdout).trim().to_owned())
    }

    /// Every target, and the informational rows measured on the way.
    fn targets(&self) -> Result<(Vec<Target>, Vec<Row>), String> {
        let what = |size: usize, changed: usize, args: &str| {
            format!("`plan{args}`, {} variables, {} changed", thousands(size), thousands(changed))
        };
        let small = self.plan_case(SIZE)?;
        let (text, text_pairs) =
            self.plan_target(&small, &what(SIZE, small.changed, ""), &["plan"], self.runs)?;
        let mut formats = Vec::new();
        for format in ["json", "markdown"] {
            let label = what(SIZE, small.changed, &format!(" --format {format}"));
            formats.push(self.plan_target(&small, &label, &["plan", "--format", format], self.runs)?.0);
        }
        let quiet = self.plan_quiet_row(&small)?;
        drop(small);
        let big = self.plan_case(BIG_SIZE)?;
        let (big_text, big_pairs) =
            self.plan_target(&big, &what(BIG_SIZE, big.changed, ""), &["plan"], self.big_runs)?;
        drop(big);
        let (apply, removals) = self.apply_target()?;
        let local = self.local_target()?;
        let mut targets = vec![text, big_text];
        targets.extend(formats);
        targets.extend([apply, scaling(&text_pairs, &big_pairs), memory(&big_pairs), local]);
        Ok((targets, vec![quiet, removals]))
    }

    /// Prepares a plan over `size` variables, a tenth of them changed: applies the project to
    /// an empty remote, changes the values, checks the plan reports exactly those changes, and
    /// makes its floor from the requests the tool sent.
    fn plan_case(&self, size: usize) -> Result<PlanCase, String> {
        let changed = size / CHANGED_EVERY;
        eprintln!("== preparing a plan over {} variables, {} changed", thousands(size), thousands(changed));
        let mut project = Project::new(Kind::Cloud, size)?;
        self.emulator.set_secrets(TENANT, &[]);
        self.runner.tool(project.root(), &self.env(), &["apply", "--yes", "-q"], 0)?;
        project.change(changed)?;
        self.emulator.reset_log();
        self.check_plan(&project, &self.env(), changed)?;
        let log = self.emulator.log();
        let floor = self.floor(&log, &format!("plan-{size}"), false)?;
        let floor_requests = self.check_floor(&floor, &log, &project)?;
        Ok(PlanCase { project, floor, requests: (log.len(), floor_requests), changed })
    }

    /// `plan --format json --detailed-exitcode`, run once in the open: it must exit 2 and report
    /// `changed` changes, all verified against digests, and nothing else to do.
    fn check_plan(&self, project: &Project, env: &[(&str, String)], changed: usize) -> Result<(), String> {
        let args = ["plan", "--format", "json", "--detailed-exitcode"];
        let (code, stdout, stderr) = self.open(project.root(), env, &args)?;
        if code != 2 {
            return Err(format!(
                "the check `cloud-secrets {}` exited with {code}, not 2:\n{stderr}",
                args.join(" ")
            ));
        }
        let plan: serde_json::Value =
            serde_json::from_slice(&stdout).map_err(|e| format!("the check plan is not JSON: {e}"))?;
        let count = |field: &str| plan["summary"][field].as_u64();
        let found = [count("add"), count("change"), count("remove"), count("cleanup"), count("unverified")];
        let expected = [Some(0), Some(changed as u64), Some(0), Some(0), Some(0)];
        if found != expected {
            return Err(format!(
                "the plan measured should change {changed} variables, verified, and nothing else; its summary is {}",
                plan["summary"]
            ));
        }
        Ok(())
    }

    /// The floor of the requests in `log`: its token exchange, then the listing, then (with
    /// `put`) its write, with the bodies the tool sent.
    fn floor(&self, log: &[LoggedRequest], name: &str, put: bool) -> Result<Floor, String> {
        let body_of = |method: &str, path: &str| {
            log.iter()
                .find(|r| r.method == method && r.path.ends_with(path))
                .map(|r| r.body.clone())
                .ok_or_else(|| {
                    format!(
                        "the tool sent no {method} {path} to copy for the floor (it sent {} requests)",
                        log.len()
                    )
                })
        };
        let exchange = self.files.path().join(format!("{name}.form"));
        write_private(&exchange, &body_of("POST", "/oauth/token")?)?;
        let put = if put {
            let path = self.files.path().join(format!("{name}.json"));
            write_private(&path, &body_of("PUT", "/secrets")?)?;
            Some(path)
        } else {
            None
        };
        Ok(Floor {
            curl: self.curl.clone(),
            url: self.emulator.url(),
            tenant: TENANT.to_owned(),
            exchange,
            put,
        })
    }

    /// Runs the floor once, unmeasured, and checks that each request it sent is one the tool
    /// sent (method, path and body); returns how many it sent.
    fn check_floor(&self, floor: &Floor, tool: &[LoggedRequest], project: &Project) -> Result<usize, String> {
        self.emulator.reset_log();
        self.runner.floor(floor, project.root())?;
        let sent = self.emulator.log();
        for request in &sent {
            let same = |t: &LoggedRequest| {
                t.method == request.method && t.path == request.path && t.body == request.body
            };
            if !tool.iter().any(same) {
                return Err(format!(
                    "the floor sent {} {} ({} bytes of body), which the tool did not send",
                    request.method,
                    request.path,
                    request.body.len()
                ));
            }
        }
        if sent.len() != floor.processes() {
            return Err(format!("the floor sent {} requests, not {}", sent.len(), floor.processes()));
        }
        Ok(sent.len())
    }

    /// `n` interleaved pairs of the tool's `args` and the case's floor. Returns the target and
    /// the pairs; the remote must be the same after them as before.
    fn plan_target(
        &self,
        case: &PlanCase,
        what: &str,
        args: &[&str],
        n: usize,
    ) -> Result<(Target, Pairs), String> {
        eprintln!("== {what}: {n} pairs");
        let version = self.emulator.version(TENANT);
        let root = case.project.root();
        let env = self.env();
        let pairs =
            Pairs::run(n, || self.runner.tool(root, &env, args, 0), || self.runner.floor(&case.floor, root))?;
        show_ratios(&pairs);
        if self.emulator.version(TENANT) != version {
            return Err(format!("the remote changed while `{}` was measured", args.join(" ")));
        }
        let mut target = Target::ratio(what, "2 curls", &pairs, PLAN_LIMIT);
        target.requests = Some(case.requests);
        Ok((target, pairs))
    }

    /// `plan -q` over the case's project: the plan without its rendering, for comparison.
    fn plan_quiet_row(&self, case: &PlanCase) -> Result<Row, String> {
        let what = format!(
            "`plan -q`, {} variables, {} changed",
            thousands(case.project.len()),
            thousands(case.changed)
        );
        eprintln!("== {what}: {} runs", self.big_runs);
        let samples = self.repeat(self.big_runs, || {
            self.runner.tool(case.project.root(), &self.env(), &["plan", "-q"], 0)
        })?;
        Ok(row(what, &samples, Some(case.requests.0)))
    }

    /// `apply --yes -q` of [`SIZE`] additions to an empty remote against its floor (the
    /// exchange, the listing and the same PUT); then, informational, 1,000 removals.
    fn apply_target(&self) -> Result<(Target, Row), String> {
        let what = format!("`apply --yes -q`, {} additions to an empty remote", thousands(SIZE));
        eprintln!("== preparing {what}");
        let project = Project::new(Kind::Cloud, SIZE)?;
        let env = self.env();
        let apply = ["apply", "--yes", "-q"];
        self.emulator.set_secrets(TENANT, &[]);
        self.emulator.reset_log();
        self.runner.tool(project.root(), &env, &apply, 0)?;
        let log = self.emulator.log();
        // The project's variables and the derived SYSTEMPROMPT_CUSTOM_SECRETS.
        let expected = project.len() + 1;
        self.expect_held(expected, "after the tool's apply")?;
        let floor = self.floor(&log, "apply", true)?;
        self.emulator.set_secrets(TENANT, &[]);
        let floor_requests = self.check_floor(&floor, &log, &project)?;
        self.expect_held(expected, "after the floor's PUT")?;
        eprintln!("== {what}: {} pairs", self.runs);
        let pairs = Pairs::run(
            self.runs,
            || {
                self.emulator.set_secrets(TENANT, &[]);
                let sample = self.runner.tool(project.root(), &env, &apply, 0)?;
                self.expect_held(expected, "after a measured apply").map(|()| sample)
            },
            || {
                self.emulator.set_secrets(TENANT, &[]);
                self.runner.floor(&floor, project.root())
            },
        )?;
        show_ratios(&pairs);
        let mut target = Target::ratio(&what, "3 curls", &pairs, APPLY_LIMIT);
        target.requests = Some((log.len(), floor_requests));
        let removals = self.removals_row(&project, 1_000)?;
        Ok((target, removals))
    }

    /// `apply --yes -q` that removes `extra` variables from a remote otherwise in the desired
    /// state (the one the last apply left).
    fn removals_row(&self, project: &Project, extra: usize) -> Result<Row, String> {
        let mut remote = self.emulator.secrets(TENANT).unwrap_or_default();
        let desired = remote.len();
        remote.extend((0..extra).map(|i| (format!("EXTRA_{i:06}"), format!("extra-{i:06}"))));
        let pairs: Vec<(&str, &str)> = remote.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let what =
            format!("`apply --yes -q`, {} removals (of {})", thousands(extra), thousands(remote.len()));
        eprintln!("== {what}: {} runs", self.big_runs);
        let mut requests = 0;
        let samples = self.repeat(self.big_runs, || {
            self.emulator.set_secrets(TENANT, &pairs);
            self.emulator.reset_log();
            let sample = self.runner.tool(project.root(), &self.env(), &["apply", "--yes", "-q"], 0)?;
            requests = self.emulator.request_count();
            self.expect_held(desired, "after the removals").map(|()| sample)
        })?;
        Ok(row(what, &samples, Some(requests)))
    }

    /// `plan` over [`LOCAL_SIZE`] variables on the local store (a tenth changed), against the
    /// tool's own `--help`.
    fn local_target(&self) -> Result<Target, String> {
        let changed = LOCAL_SIZE / CHANGED_EVERY;
        let what = format!("`plan`, local store, {LOCAL_SIZE} variables, {changed} changed");
        eprintln!("== {what}: {} pairs", self.runs);
        let mut project = Project::new(Kind::LocalStore, LOCAL_SIZE)?;
        self.runner.tool(project.root(), &[], &["apply", "--yes", "-q"], 0)?;
        project.change(changed)?;
        self.check_plan(&project, &[], changed)?;
        let root = project.root();
        let pairs = Pairs::run(
            self.runs,
            || self.runner.tool(root, &[], &["plan"], 0),
            || self.runner.tool(root, &[], &["--help"], 0),
        )?;
        show_ratios(&pairs);
        Ok(Target::ratio(&what, "`cloud-secrets --help`", &pairs, LOCAL_LIMIT))
    }

    /// The OpenBao and moto rows, when their servers are given.
    fn other_remotes(&self, args: &Args) -> Result<Vec<Row>, String> {
        let mut rows = Vec::new();
        if let (Some(addr), Some(token)) = (&args.vault_addr, &args.vault_token) {
            let project = Project::new(Kind::Cloud, VAULT_SIZE)?;
            let env = [("VAULT_TOKEN", token.clone())];
            rows.extend(self.fresh_remote_rows(&project, &env, "OpenBao KV v2", |run| {
                format!("vault+{addr}/secret/bench-{}-{run}", std::process::id())
            })?);
        }
        if let Some(addr) = &args.moto_addr {
            let small = Project::new(Kind::Cloud, SM_SIZE)?;
            let ssm_project = Project::new(Kind::Cloud, SSM_SIZE)?;
            let env = [
                ("AWS_ACCESS_KEY_ID", "bench".to_owned()),
                ("AWS_SECRET_ACCESS_KEY", "bench".to_owned()),
                ("AWS_ENDPOINT_URL", addr.clone()),
            ];
            let pid = std::process::id();
            rows.extend(self.fresh_remote_rows(&small, &env, "Secrets Manager (moto)", |run| {
                format!("awssm://us-east-1/bench-{pid}-{run}")
            })?);
            rows.extend(self.fresh_remote_rows(
                &ssm_project,
                &env,
                "Parameter Store (moto, --write-rate 1000)",
                |run| format!("ssm://us-east-1/bench-{pid}-{run} --write-rate 1000"),
            )?);
        }
        Ok(rows)
    }

    /// Apply of the project to a new, empty remote each run, then plans against the last one.
    fn fresh_remote_rows(
        &self,
        project: &Project,
        env: &[(&str, String)],
        name: &str,
        remote: impl Fn(usize) -> String,
    ) -> Result<Vec<Row>, String> {
        eprintln!("== {name}: {} runs", self.big_runs);
        let mut run = 0;
        let mut last = String::new();
        let apply = self.repeat(self.big_runs, || {
            run += 1;
            last = remote(run);
            let mut args = vec!["apply", "--yes", "-q", "--remote"];
            args.extend(last.split(' '));
            self.runner.tool(project.root(), env, &args, 0)
        })?;
        // The plan reads the same remote; options of writing (`--write-rate`) are the apply's.
        let mut args = vec!["plan", "-q", "--detailed-exitcode", "--remote"];
        args.extend(last.split(' ').take(1));
        let plan = self.repeat(self.big_runs, || self.runner.tool(project.root(), env, &args, 0))?;
        let size = thousands(project.len());
        Ok(vec![
            row(format!("{name}: `apply`, {size} additions"), &apply, None),
            row(format!("{name}: `plan -q`, {size} variables, no changes"), &plan, None),
        ])
    }

    /// `n` runs of `sample`.
    fn repeat(
        &self,
        n: usize,
        mut sample: impl FnMut() -> Result<Sample, String>,
    ) -> Result<Vec<Sample>, String> {
        (0..n).map(|_| sample()).collect()
    }

    /// Fails unless the tenant holds `count` variables.
    fn expect_held(&self, count: usize, when: &str) -> Result<(), String> {
        let held = self.emulator.secrets(TENANT).map_or(0, |s| s.len());
        if held == count {
            Ok(())
        } else {
            Err(format!("the remote holds {held} variables {when}, not {count}"))
        }
    }

    /// Runs the tool in the open (unmeasured): its exit code, stdout and stderr.
    fn open(
        &self,
        dir: &Path,
        env: &[(&str, String)],
        args: &[&str],
    ) -> Result<(i32, Vec<u8>, String), String> {
        let mut command = Command::new(&self.runner.bin);
        command.args(args);
        let output = measure::clean(&mut command, dir, env)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.runner.bin.display()))?;
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        Ok((output.status.code().unwrap_or(-1), output.stdout, stderr))
    }
}

/// Target: the text plan at [`BIG_SIZE`] takes at most [`SCALING_LIMIT`] times as long as at
/// [`SIZE`] (the medians of the tool's runs; the floor's own scaling is shown beside).
fn scaling(small: &Pairs, big: &Pairs) -> Target {
    let (a, b) = (stats::median_wall(&small.tool), stats::median_wall(&big.tool));
    let value = b.as_secs_f64() / a.as_secs_f64().max(f64::MIN_POSITIVE);
    let floor = stats::median_wall(&big.floor).as_secs_f64()
        / stats::median_wall(&small.floor).as_secs_f64().max(f64::MIN_POSITIVE);
    Target {
        what: format!("`plan` at {} ÷ at {} variables", thousands(BIG_SIZE), thousands(SIZE)),
        tool: format!("{} ÷ {}", report::ms(b), report::ms(a)),
        floor: format!("the floor's: {floor:.2}×"),
        value,
        shown: format!("{value:.2}×"),
        of_medians: None,
        range: None,
        requests: None,
        limit: SCALING_LIMIT,
        limit_shown: format!("≤ {SCALING_LIMIT}×"),
    }
}

/// Target: the text plan at [`BIG_SIZE`] peaks at [`MEMORY_LIMIT_MB`] at most (the largest
/// peak of its runs).
fn memory(big: &Pairs) -> Target {
    let kb = stats::max_rss_kb(&big.tool);
    Target {
        what: format!("peak memory of `plan` at {} variables", thousands(BIG_SIZE)),
        tool: report::mb(kb),
        floor: format!("curl: {}", report::mb(stats::max_rss_kb(&big.floor))),
        value: report::megabytes(kb),
        shown: report::mb(kb),
        of_medians: None,
        range: None,
        requests: None,
        limit: MEMORY_LIMIT_MB,
        limit_shown: format!("≤ {MEMORY_LIMIT_MB} MB"),
    }
}

/// Shows the pairwise ratios in run order on stderr, where a drift shows.
fn show_ratios(pairs: &Pairs) {
    let ratios: Vec<String> = pairs.ratios().iter().map(|r| format!("{r:.2}")).collect();
    eprintln!("   pairwise ratios, in run order: {}", ratios.join(" "));
}

/// An informational row of `samples`.
fn row(what: String, samples: &[Sample], requests: Option<usize>) -> Row {
    Row { what, wall: stats::median_wall(samples), max_rss_kb: stats::max_rss_kb(samples), requests }
}

/// `n` with a comma every three digits.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Writes a floor's request body, mode 0600 (it holds the bench's token or values).
fn write_private(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(20), "20");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(100_000), "100,000");
    }
}
