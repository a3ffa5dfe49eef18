//! The end-to-end benchmark of cloud-secrets: the release binary, run as a process from start
//! to exit, against the cloud API emulator on 127.0.0.1 (and against OpenBao and moto when their
//! addresses are given). Prints a table and, with `--out`, writes it as Markdown.
//!
//! Each run of the tool goes through a small wrapper (this binary, re-run as `__measure`) that
//! starts it, waits for it and reads its peak memory from `getrusage(RUSAGE_CHILDREN)`, so that
//! every figure belongs to exactly one process.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use cloud_secrets_emulator::Emulator;

const TOKEN: &str = "sp-bench-api-token";
const TENANT: &str = "bench";
/// Variables in the OpenBao measurements: what one request may carry to a default listener.
const VAULT_SIZE: usize = 450;
/// Variables in the Secrets Manager measurements: what one secret of 64 KB holds.
const SM_SIZE: usize = 800;
/// Variables in the Parameter Store measurements: the list of custom names fits in 4 KB.
const SSM_SIZE: usize = 300;

/// Measure plan and apply end to end.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// The cloud-secrets binary to measure
    #[arg(long, default_value = "target/release/cloud-secrets")]
    bin: PathBuf,
    /// Runs of each measurement; the median is reported
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Plan sizes, in variables
    #[arg(long, value_delimiter = ',', default_value = "100,1000,10000,50000")]
    sizes: Vec<usize>,
    /// Write the report, as Markdown, to this file
    #[arg(long)]
    out: Option<PathBuf>,
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

/// One run of the tool.
#[derive(Debug, Clone, Copy)]
struct Sample {
    wall: Duration,
    max_rss_kb: u64,
    code: i32,
}

/// One line of the report.
struct Row {
    what: String,
    wall: Duration,
    max_rss_kb: u64,
    requests: Option<usize>,
}

fn main() -> ExitCode {
    let argv: Vec<OsString> = std::env::args_os().collect();
    if argv.get(1).is_some_and(|a| a == "__measure") {
        return measure_child(&argv[2..]);
    }
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The wrapper: runs the command, then prints its wall time, peak memory and exit code.
fn measure_child(command: &[OsString]) -> ExitCode {
    let Some((program, args)) = command.split_first() else { return ExitCode::FAILURE };
    let started = Instant::now();
    let status = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let wall = started.elapsed();
    let Ok(status) = status else { return ExitCode::FAILURE };
    let Ok(usage) = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN) else {
        return ExitCode::FAILURE;
    };
    println!("{} {} {}", wall.as_nanos(), usage.max_rss(), status.code().unwrap_or(-1));
    ExitCode::SUCCESS
}

fn run(args: &Args) -> Result<(), String> {
    let bin = std::fs::canonicalize(&args.bin)
        .map_err(|e| format!("{}: {e} (build it with cargo build --release)", args.bin.display()))?;
    let bench = Bench { bin, runs: args.runs.max(1) };
    let emulator = Emulator::start();
    emulator.grant(TOKEN, &[TENANT]);
    let mut rows = Vec::new();

    let help = bench.median(|| bench.sample(Path::new("/"), &[], &["--help"]))?;
    rows.push(Row {
        what: "--help (start-up)".to_owned(),
        wall: help.wall,
        max_rss_kb: help.max_rss_kb,
        requests: None,
    });

    for &size in &args.sizes {
        let project = Project::new(size)?;
        let env = [("SYSTEMPROMPT_API_URL", emulator.url())];
        // Bring the remote to the desired state, so that the plans below find nothing to do.
        emulator.set_secrets(TENANT, &[]);
        expect_ok(bench.sample(project.root(), &env, &["apply", "--yes", "-q"])?, "the first apply")?;
        emulator.reset_log();
        let plan =
            bench.median(|| bench.sample(project.root(), &env, &["plan", "-q", "--detailed-exitcode"]))?;
        let requests = emulator.request_count() / bench.runs;
        rows.push(Row {
            what: format!("plan, {size} variables, no changes"),
            wall: plan.wall,
            max_rss_kb: plan.max_rss_kb,
            requests: Some(requests),
        });
        if size == 10_000 {
            rows.push(bench.apply_additions(&emulator, &project, size)?);
            rows.push(bench.apply_removals(&emulator, &project, 1_000)?);
        }
    }

    if let (Some(addr), Some(token)) = (&args.vault_addr, &args.vault_token) {
        // A default listener refuses JSON of more than 1000 strings: about 500 variables.
        let project = Project::new(VAULT_SIZE)?;
        let env = [("VAULT_TOKEN", token.clone())];
        rows.extend(bench.fresh_remote_rows(&project, &env, "OpenBao KV v2", |run| {
            format!("vault+{addr}/secret/bench-{}-{run}", std::process::id())
        })?);
    }
    if let Some(addr) = &args.moto_addr {
        // A Secrets Manager secret holds at most 64 KB: about 800 of these variables.
        let small = Project::new(SM_SIZE)?;
        // SYSTEMPROMPT_CUSTOM_SECRETS lists every custom name, and a parameter holds 4 KB.
        let ssm_project = Project::new(SSM_SIZE)?;
        let env = [
            ("AWS_ACCESS_KEY_ID", "bench".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "bench".to_owned()),
            ("AWS_ENDPOINT_URL", addr.clone()),
        ];
        let pid = std::process::id();
        rows.extend(bench.fresh_remote_rows(&small, &env, "Secrets Manager (moto)", |run| {
            format!("awssm://us-east-1/bench-{pid}-{run}")
        })?);
        rows.extend(bench.fresh_remote_rows(
            &ssm_project,
            &env,
            "Parameter Store (moto, --write-rate 1000)",
            |run| format!("ssm://us-east-1/bench-{pid}-{run} --write-rate 1000"),
        )?);
    }

    let report = report(&bench, &rows);
    print!("{report}");
    if let Some(out) = &args.out {
        std::fs::write(out, &report).map_err(|e| format!("{}: {e}", out.display()))?;
    }
    Ok(())
}

struct Bench {
    bin: PathBuf,
    runs: usize,
}

impl Bench {
    /// One run of the tool in `dir`, through the wrapper.
    fn sample(&self, dir: &Path, env: &[(&str, String)], args: &[&str]) -> Result<Sample, String> {
        let me = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut command = Command::new(me);
        command.arg("__measure").arg(&self.bin).args(args).current_dir(dir).env_clear();
        command.env("PATH", std::env::var_os("PATH").unwrap_or_default()).env("HOME", dir);
        for (name, value) in env {
            command.env(name, value);
        }
        let output = command.output().map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&output.stdout);
        let fields: Vec<u128> = text.split_whitespace().filter_map(|f| f.parse().ok()).collect();
        let [nanos, rss, code] = fields[..] else {
            return Err(format!("the measuring wrapper failed for {args:?}"));
        };
        let code = i32::try_from(code).unwrap_or(-1);
        if code != 0 {
            // Once more, in the open, to say why (the tool's messages never hold a value).
            let mut again = Command::new(&self.bin);
            again.args(args).current_dir(dir).env_clear();
            again.env("PATH", std::env::var_os("PATH").unwrap_or_default()).env("HOME", dir);
            for (name, value) in env {
                again.env(name, value);
            }
            let why =
                again.output().map(|o| String::from_utf8_lossy(&o.stderr).into_owned()).unwrap_or_default();
            return Err(format!("cloud-secrets {} exited with {code}:\n{why}", args.join(" ")));
        }
        Ok(Sample {
            wall: Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX)),
            max_rss_kb: u64::try_from(rss).unwrap_or(u64::MAX),
            code,
        })
    }

    /// The median wall time (and the largest peak memory) of `runs` samples.
    fn median(&self, mut sample: impl FnMut() -> Result<Sample, String>) -> Result<Sample, String> {
        let mut samples = Vec::with_capacity(self.runs);
        for _ in 0..self.runs {
            let s = sample()?;
            if s.code != 0 {
                return Err(format!("a measured run exited with {} (run it by hand to see why)", s.code));
            }
            samples.push(s);
        }
        samples.sort_by_key(|s| s.wall);
        let max_rss_kb = samples.iter().map(|s| s.max_rss_kb).max().unwrap_or(0);
        Ok(Sample { max_rss_kb, ..samples[samples.len() / 2] })
    }

    /// `apply` of `size` additions to an empty remote.
    fn apply_additions(&self, emulator: &Emulator, project: &Project, size: usize) -> Result<Row, String> {
        let env = [("SYSTEMPROMPT_API_URL", emulator.url())];
        let mut requests = 0;
        let sample = self.median(|| {
            emulator.set_secrets(TENANT, &[]);
            emulator.reset_log();
            let s = self.sample(project.root(), &env, &["apply", "--yes", "-q"]);
            requests = emulator.request_count();
            s
        })?;
        Ok(Row {
            what: format!("apply, {size} additions"),
            wall: sample.wall,
            max_rss_kb: sample.max_rss_kb,
            requests: Some(requests),
        })
    }

    /// `apply` that removes `extra` variables from a remote otherwise in the desired state.
    fn apply_removals(&self, emulator: &Emulator, project: &Project, extra: usize) -> Result<Row, String> {
        let env = [("SYSTEMPROMPT_API_URL", emulator.url())];
        let mut remote: Vec<(String, String)> =
            project.vars.iter().map(|(name, value)| (name.to_ascii_uppercase(), value.clone())).collect();
        remote.extend((0..extra).map(|i| (format!("EXTRA_{i:06}"), format!("extra-{i:06}"))));
        let pairs: Vec<(&str, &str)> = remote.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let mut requests = 0;
        let sample = self.median(|| {
            emulator.set_secrets(TENANT, &pairs);
            emulator.reset_log();
            let s = self.sample(project.root(), &env, &["apply", "--yes", "-q"]);
            requests = emulator.request_count();
            s
        })?;
        Ok(Row {
            what: format!("apply, {extra} removals (of {})", remote.len()),
            wall: sample.wall,
            max_rss_kb: sample.max_rss_kb,
            requests: Some(requests),
        })
    }

    /// Apply of the project to a new, empty remote each run, then plans against the last one.
    fn fresh_remote_rows(
        &self,
        project: &Project,
        env: &[(&str, String)],
        name: &str,
        remote: impl Fn(usize) -> String,
    ) -> Result<Vec<Row>, String> {
        let mut run = 0;
        let mut last = String::new();
        let apply = self.median(|| {
            run += 1;
            last = remote(run);
            let mut args = vec!["apply", "--yes", "-q", "--remote"];
            args.extend(last.split(' '));
            self.sample(project.root(), env, &args)
        })?;
        // The plan reads the same remote; options of writing (`--write-rate`) are the apply's.
        let mut args = vec!["plan", "-q", "--detailed-exitcode", "--remote"];
        args.extend(last.split(' ').take(1));
        let plan = self.median(|| self.sample(project.root(), env, &args))?;
        let size = project.vars.len();
        Ok(vec![
            Row {
                what: format!("{name}: apply, {size} additions"),
                wall: apply.wall,
                max_rss_kb: apply.max_rss_kb,
                requests: None,
            },
            Row {
                what: format!("{name}: plan, {size} variables"),
                wall: plan.wall,
                max_rss_kb: plan.max_rss_kb,
                requests: None,
            },
        ])
    }
}

fn expect_ok(sample: Sample, what: &str) -> Result<(), String> {
    if sample.code == 0 { Ok(()) } else { Err(format!("{what} exited with {}", sample.code)) }
}

/// A project with one cloud profile whose secrets.json holds `size` variables.
struct Project {
    dir: tempfile::TempDir,
    /// secrets.json's keys and values.
    vars: Vec<(String, String)>,
}

impl Project {
    fn new(size: usize) -> Result<Self, String> {
        let dir = tempfile::Builder::new().prefix("cs-bench-").tempdir().map_err(|e| e.to_string())?;
        let root = dir.path().join(".systemprompt");
        let profile = root.join("profiles").join("bench");
        std::fs::create_dir_all(&profile).map_err(|e| e.to_string())?;
        let credentials = serde_json::json!({ "api_token": TOKEN, "api_url": "https://api.systemprompt.io" });
        let mut vars = vec![
            ("jwt_secret".to_owned(), "bench-jwt-0123456789abcdef0123456789abcdef".to_owned()),
            ("database_url".to_owned(), "postgres://app:bench@db.internal:5432/app".to_owned()),
        ];
        vars.extend(
            (vars.len()..size)
                .map(|i| (format!("var_{i:06}"), format!("bench-value-{i:06}-{:032x}", i * 7919))),
        );
        let secrets: serde_json::Map<String, serde_json::Value> =
            vars.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect();
        let files = [
            (root.join("credentials.json"), credentials.to_string()),
            (profile.join("profile.yaml"), format!("target: cloud\ncloud:\n  tenant_id: {TENANT}\n")),
            (
                profile.join("secrets.json"),
                serde_json::to_string_pretty(&secrets).map_err(|e| e.to_string())?,
            ),
        ];
        for (path, text) in files {
            std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
            set_private(&path)?;
        }
        Ok(Self { dir, vars })
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }
}

fn set_private(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(|e| e.to_string())
}

/// The report: the machine, the command and the table.
fn report(bench: &Bench, rows: &[Row]) -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines().next().and_then(|l| l.split_whitespace().nth(1)).and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or_else(|| "unknown".to_owned(), |kb| format!("{} GiB", kb / 1024 / 1024));
    let mut out = String::new();
    let _ = writeln!(out, "# Performance\n");
    let _ = writeln!(
        out,
        "Measured with `./scripts/bench --runs {}` (the release binary, run as a process against the cloud API \
         emulator on 127.0.0.1; median wall time from start to exit; peak memory is the largest max RSS of the \
         runs; requests are those the emulator received per run). The OpenBao (dev server) and moto rows are measured against \
         the servers `scripts/bench` starts on 127.0.0.1, as `scripts/test` does.\n",
        bench.runs
    );
    let _ = writeln!(out, "Machine: {cpu}, {cores} cores, {memory} memory.\n");
    let _ = writeln!(out, "| What | Wall (median) | Peak memory | Requests |");
    let _ = writeln!(out, "|---|---:|---:|---:|");
    for row in rows {
        let requests = row.requests.map_or_else(|| "—".to_owned(), |n| n.to_string());
        let _ = writeln!(
            out,
            "| {} | {:.1} ms | {:.1} MB | {requests} |",
            row.what,
            row.wall.as_secs_f64() * 1000.0,
            row.max_rss_kb as f64 / 1024.0
        );
    }
    let find = |what: &str| rows.iter().find(|r| r.what.starts_with(what));
    let ms = |row: &Row| row.wall.as_secs_f64() * 1000.0;
    let _ = writeln!(out, "\nTargets (2 cores):\n");
    if let Some(help) = find("--help") {
        let _ = writeln!(out, "- start-up to `--help` under 10 ms: {:.1} ms", ms(help));
    }
    if let Some(plan) = find("plan, 10000 ") {
        let _ = writeln!(
            out,
            "- plan over 10,000 variables at most 150 ms and 40 MB: {:.1} ms, {:.1} MB, {} requests (token exchange \
             and one listing)",
            ms(plan),
            plan.max_rss_kb as f64 / 1024.0,
            plan.requests.unwrap_or(0)
        );
        if let Some(big) = find("plan, 50000 ") {
            let _ = writeln!(
                out,
                "- plan over 50,000 at most 6 times the 10,000 figure: {:.1} times",
                ms(big) / ms(plan)
            );
        }
    }
    let _ = writeln!(
        out,
        "\nThe apply of additions sends one PUT (after the token exchange, the listing and the listing again \
         just before writing); removals are one DELETE each, 8 at once by default (`--parallelism`). OpenBao is measured with \
         {VAULT_SIZE} variables because a default listener refuses a request of more than 1000 JSON strings; \
         Secrets Manager with {SM_SIZE} because a secret holds 64 KB; Parameter Store with {SSM_SIZE} because \
         `SYSTEMPROMPT_CUSTOM_SECRETS`, the list of custom names, must fit a 4 KB parameter."
    );
    out
}
