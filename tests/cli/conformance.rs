//! The conformance suite: one table of scenarios, each run against every remote (the local
//! store, the cloud API emulator in both listing modes, OpenBao, and Secrets Manager and
//! Parameter Store on moto), the network ones reached through `scripts/fault_proxy.py`.
//!
//! The table is [`KINDS`] (the remotes, each a [`Store`] the suite sets up, reads and writes
//! directly, never through cloud-secrets) by the scenarios, one test each: a round trip, an empty
//! and a missing store, a concurrent writer while the question waits and just before the write,
//! rollback, and every fault of the proxy at every request position of an apply. A scenario
//! judges what cloud-secrets reports against what the store actually holds; it collects every
//! failure over every remote and fails once, at the end, with the whole list (remote, case,
//! position, exit code and the key lines of the output), so that one run shows every problem.
//! Every run goes through the harness, which checks its outputs and the project's files for
//! canary values. Each case has a project, a store and a proxy of its own, and cases run
//! [`WORKERS`] at a time: the suite takes one to two minutes on 2 cores.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cloud_secrets_emulator::{Emulator, Listing};

use crate::fault_proxy::{Fault, FaultProxy, Logged};
use crate::support::{Outcome, Project, Run};

type Vars = BTreeMap<String, String>;

/// The API token in the `cloud` fixture's credentials.json, and its tenant.
const TOKEN: &str = "sp-CANARY-api-token-4f2a9c71";
const TENANT: &str = "acme";
const SECRETS: &str = ".systemprompt/profiles/prod/secrets.json";

/// The `--timeout` of an apply with a fault injected, and how long `slow-after` holds an answer:
/// three times as long, so that the client has given up well before.
const TIMEOUT: &str = "0.5";
const SLOW_SECONDS: f64 = 1.5;

/// How many cases of a scenario run at once.
const WORKERS: usize = 10;

/// What a seeded store holds before the apply: a value to change, values to remove and to clean
/// up, one the profile skips, and two the platform's deploy owns.
use crate::cloud::BEFORE;

/// The `cloud` fixture's desired state, as every remote must hold it.
const DESIRED: [(&str, &str); 6] = [
    ("CUSTOM_API_KEY", "CANARY-custom-prod-5b9e"),
    ("DATABASE_URL", "postgres://app:CANARY-dbpass-prod-2c4e@db.internal:5432/app"),
    ("JWT_SECRET", "CANARY-jwt-prod-8e1f0a3b5c7d9e2f4a6b8c0d1e3f5a7b"),
    ("OAUTH_AT_REST_PEPPER", "CANARY-pepper-prod-3e9b1d7f5a2c8e4b6d0f"),
    ("OPENAI_API_KEY", "sk-CANARY-openai-prod-new-7d3a"),
    ("SYSTEMPROMPT_CUSTOM_SECRETS", "CUSTOM_API_KEY,JWT_SECRET"),
];

/// Variables an apply leaves as they are: `github` is null in the profile (skipped, the
/// remote's value kept), and the deploy step owns the other two.
const KEPT: [&str; 3] = ["GITHUB_TOKEN", "SIGNING_KEY_PEM", "SYSTEMPROMPT_API_TOKEN"];

/// What a concurrent writer adds.
const MEANWHILE: (&str, &str) = ("ADDED_MEANWHILE", "CANARY-meanwhile-7e2a");

fn vars(pairs: &[(&str, &str)]) -> Vars {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

fn before() -> Vars {
    vars(&BEFORE)
}

/// What a store that held `start` holds once the desired state is applied.
fn planned(start: Option<&Vars>) -> Vars {
    let mut planned = vars(&DESIRED);
    for name in KEPT {
        if let Some(value) = start.and_then(|s| s.get(name)) {
            planned.insert(name.to_owned(), value.clone());
        }
    }
    planned
}

fn with(base: &Vars, pairs: &[(&str, &str)]) -> Vars {
    let mut vars = base.clone();
    vars.extend(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    vars
}

/// What a store holds when a case begins.
#[derive(Debug, Clone, Copy)]
enum Start {
    /// [`BEFORE`]: the apply adds, changes, removes and cleans up.
    Seeded,
    /// A store that exists and holds nothing.
    Empty,
    /// Nothing, not even the store (where the remote can tell): the apply creates it.
    Missing,
}

impl Start {
    fn name(self) -> &'static str {
        match self {
            Start::Seeded => "seeded store",
            Start::Empty => "empty store",
            Start::Missing => "missing store",
        }
    }

    fn prepare(self, store: &dyn Store) {
        match self {
            Start::Seeded => store.set(&before()),
            Start::Empty => store.set(&Vars::new()),
            Start::Missing => {}
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The remotes.

/// The remotes, as the suite sets them up.
#[derive(Debug, Clone, Copy)]
enum Kind {
    File,
    Cloud(Listing),
    Vault,
    SecretsManager,
    ParameterStore,
}

const KINDS: [Kind; 6] = [
    Kind::File,
    Kind::Cloud(Listing::NamesOnly),
    Kind::Cloud(Listing::Digests),
    Kind::Vault,
    Kind::SecretsManager,
    Kind::ParameterStore,
];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::File => "file",
            Kind::Cloud(Listing::NamesOnly) => "cloud (names only)",
            Kind::Cloud(Listing::Digests) => "cloud (digests)",
            Kind::Vault => "vault",
            Kind::SecretsManager => "awssm",
            Kind::ParameterStore => "ssm",
        }
    }

    /// Whether the remote keeps versions that `rollback` can return to.
    fn keeps_versions(self) -> bool {
        matches!(self, Kind::File | Kind::Vault | Kind::SecretsManager)
    }

    fn is_network(self) -> bool {
        !matches!(self, Kind::File)
    }

    /// A fresh store of this kind, private to one case, holding nothing: no store at all where
    /// the remote can tell (the cloud cannot: its tenant exists, with no secrets yet).
    fn open(self, project: &Project) -> Box<dyn Store> {
        match self {
            Kind::File => Box::new(LocalStore { path: project.path("conformance-store.json") }),
            Kind::Cloud(listing) => {
                let emulator = Emulator::start();
                emulator.set_listing(listing);
                emulator.grant(TOKEN, &[TENANT]);
                emulator.set_secrets(TENANT, &[]);
                Box::new(CloudStore { emulator })
            }
            Kind::Vault => Box::new(VaultStore { path: unique() }),
            Kind::SecretsManager => Box::new(SecretsManagerStore { region: Region::lease(), name: unique() }),
            Kind::ParameterStore => {
                Box::new(ParameterStore { region: Region::lease(), prefix: format!("/{}", unique()) })
            }
        }
    }
}

/// A name no other case uses, on the servers every test shares.
fn unique() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("cs-{}-conformance-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// One remote's store, reached directly (never through cloud-secrets or the proxy).
trait Store: Send + Sync {
    /// Makes the store hold exactly `vars`, as another writer would.
    fn set(&self, vars: &Vars);

    /// What the store holds; `None` when there is no store at all.
    fn read(&self) -> Option<Vars>;

    /// The origin a proxy goes in front of; `None` for the local store.
    fn origin(&self) -> Option<String>;

    /// What the version before the current one holds, for a store that keeps one a concurrent
    /// write could be replaced into (Secrets Manager's AWSPREVIOUS); `None` elsewhere.
    fn previous(&self) -> Option<Vars> {
        None
    }

    /// The `--remote` address and the environment the binary needs, reaching the origin at
    /// `via` (a proxy) when given.
    fn address(&self, via: Option<&str>) -> (String, Vec<(&'static str, String)>);
}

/// The embedded local store: a file in the project.
struct LocalStore {
    path: PathBuf,
}

impl Store for LocalStore {
    fn set(&self, vars: &Vars) {
        use std::os::unix::fs::PermissionsExt;
        let version = self.document().map_or(0, |d| d["version"].as_u64().unwrap());
        let document = serde_json::json!({ "version": version + 1, "variables": vars });
        std::fs::write(&self.path, format!("{document:#}\n")).unwrap();
        std::fs::set_permissions(&self.path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    fn read(&self) -> Option<Vars> {
        self.document().map(|d| serde_json::from_value(d["variables"].clone()).unwrap())
    }

    fn origin(&self) -> Option<String> {
        None
    }

    fn address(&self, _via: Option<&str>) -> (String, Vec<(&'static str, String)>) {
        (format!("file:{}", self.path.display()), Vec::new())
    }
}

impl LocalStore {
    fn document(&self) -> Option<serde_json::Value> {
        let text = std::fs::read_to_string(&self.path).ok()?;
        Some(serde_json::from_str(&text).unwrap())
    }
}

/// A tenant of an emulator of the systemprompt cloud, started for the case.
struct CloudStore {
    emulator: Emulator,
}

impl Store for CloudStore {
    fn set(&self, vars: &Vars) {
        let pairs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        self.emulator.set_secrets(TENANT, &pairs);
    }

    fn read(&self) -> Option<Vars> {
        self.emulator.secrets(TENANT)
    }

    fn origin(&self) -> Option<String> {
        Some(self.emulator.url())
    }

    fn address(&self, via: Option<&str>) -> (String, Vec<(&'static str, String)>) {
        // The token comes from the fixture's credentials.json.
        (via.map_or_else(|| self.emulator.url(), str::to_owned), Vec::new())
    }
}

/// A KV version 2 secret on the OpenBao server.
struct VaultStore {
    path: String,
}

impl Store for VaultStore {
    fn set(&self, vars: &Vars) {
        let body = serde_json::json!({ "data": vars }).to_string();
        let (status, answer) =
            crate::vault::request("POST", &format!("/v1/secret/data/{}", self.path), &body);
        assert_eq!(status, 200, "OpenBao refused a write: {answer}");
    }

    fn read(&self) -> Option<Vars> {
        let (status, body) = crate::vault::request("GET", &format!("/v1/secret/data/{}", self.path), "");
        if status == 404 {
            return None;
        }
        assert_eq!(status, 200, "OpenBao refused a read: {body}");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        Some(serde_json::from_value(json["data"]["data"].clone()).unwrap())
    }

    fn origin(&self) -> Option<String> {
        Some(crate::vault::server().0)
    }

    fn address(&self, via: Option<&str>) -> (String, Vec<(&'static str, String)>) {
        let server = via.map_or_else(|| crate::vault::server().0, str::to_owned);
        (format!("vault+{server}/secret/{}", self.path), vec![("VAULT_TOKEN", crate::vault::server().1)])
    }
}

/// The environment of a run against moto (directly or through a proxy).
fn aws_env(via: Option<&str>) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID", "AKIDCANARY".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "CANARY-aws-secret-key".to_owned()),
        ("AWS_ENDPOINT_URL", via.map_or_else(crate::aws::server, str::to_owned)),
    ]
}

/// A Secrets Manager secret on moto, in a region of the case's own.
struct SecretsManagerStore {
    region: Region,
    name: String,
}

impl Store for SecretsManagerStore {
    fn set(&self, vars: &Vars) {
        let text = serde_json::to_string(vars).unwrap();
        let (operation, body) = match self.read() {
            None => ("CreateSecret", serde_json::json!({ "Name": self.name, "SecretString": text })),
            Some(_) => ("PutSecretValue", serde_json::json!({ "SecretId": self.name, "SecretString": text })),
        };
        let (status, answer) = crate::aws::call_in(self.region.0, operation, body);
        assert_eq!(status, 200, "moto refused a write: {answer}");
    }

    fn read(&self) -> Option<Vars> {
        let body = serde_json::json!({ "SecretId": self.name });
        let (status, answer) = crate::aws::call_in(self.region.0, "GetSecretValue", body);
        if answer["__type"].as_str().is_some_and(|t| t.ends_with("ResourceNotFoundException")) {
            return None;
        }
        assert_eq!(status, 200, "moto refused a read: {answer}");
        Some(serde_json::from_str(answer["SecretString"].as_str().unwrap()).unwrap())
    }

    fn origin(&self) -> Option<String> {
        Some(crate::aws::server())
    }

    fn previous(&self) -> Option<Vars> {
        let body = serde_json::json!({ "SecretId": self.name, "VersionStage": "AWSPREVIOUS" });
        let (status, answer) = crate::aws::call_in(self.region.0, "GetSecretValue", body);
        (status == 200).then(|| serde_json::from_str(answer["SecretString"].as_str().unwrap()).unwrap())
    }

    fn address(&self, via: Option<&str>) -> (String, Vec<(&'static str, String)>) {
        (format!("awssm://{}/{}", self.region.0, self.name), aws_env(via))
    }
}

/// The parameters under a prefix of Parameter Store on moto, in a region of the case's own.
struct ParameterStore {
    region: Region,
    prefix: String,
}

impl Store for ParameterStore {
    fn set(&self, vars: &Vars) {
        let current = self.read().unwrap_or_default();
        for (name, value) in vars.iter().filter(|(k, v)| current.get(*k) != Some(*v)) {
            let body = serde_json::json!({
                "Name": format!("{}/{name}", self.prefix), "Value": value, "Type": "SecureString", "Overwrite": true
            });
            let (status, answer) = crate::aws::ssm_in(self.region.0, "PutParameter", body);
            assert_eq!(status, 200, "moto refused a write: {answer}");
        }
        let gone: Vec<String> = current
            .keys()
            .filter(|k| !vars.contains_key(*k))
            .map(|k| format!("{}/{k}", self.prefix))
            .collect();
        for batch in gone.chunks(10) {
            let body = serde_json::json!({ "Names": batch });
            let (status, answer) = crate::aws::ssm_in(self.region.0, "DeleteParameters", body);
            assert_eq!(status, 200, "moto refused a removal: {answer}");
        }
    }

    fn read(&self) -> Option<Vars> {
        let parameters = crate::aws::parameters_in(self.region.0, &self.prefix);
        Some(parameters.into_iter().map(|(k, p)| (k, p["value"].as_str().unwrap().to_owned())).collect())
    }

    fn origin(&self) -> Option<String> {
        Some(crate::aws::server())
    }

    fn address(&self, via: Option<&str>) -> (String, Vec<(&'static str, String)>) {
        (format!("ssm://{}{}", self.region.0, self.prefix), aws_env(via))
    }
}

/// An AWS region held by one case until it is dropped. moto finds a secret, and lists the
/// parameters under a prefix, by walking every one of the region without a lock, and fails (500)
/// when another case creates one meanwhile: a region of its own keeps each case's requests to
/// the ones it makes. us-east-1, which the other AWS tests use, is not lent.
struct Region(&'static str);

const REGIONS: [&str; 24] = [
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "ca-central-1",
    "sa-east-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "ap-south-1",
    "ap-south-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "me-south-1",
    "me-central-1",
    "af-south-1",
];

static FREE_REGIONS: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
static REGION_FREED: std::sync::Condvar = std::sync::Condvar::new();

impl Region {
    /// Waits for a region no other case holds.
    fn lease() -> Self {
        static FILLED: std::sync::Once = std::sync::Once::new();
        FILLED.call_once(|| FREE_REGIONS.lock().unwrap().extend(REGIONS));
        let mut free = FREE_REGIONS.lock().unwrap();
        loop {
            if let Some(region) = free.pop() {
                return Region(region);
            }
            free = REGION_FREED.wait(free).unwrap();
        }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        FREE_REGIONS.lock().unwrap_or_else(|e| e.into_inner()).insert(0, self.0);
        REGION_FREED.notify_one();
    }
}

/// Fails, with the message saying how to start them, unless OpenBao and moto are running.
fn servers_are_running() {
    crate::vault::server();
    crate::aws::server();
}

// ---------------------------------------------------------------------------------------------
// Running a case.

/// One case: a fresh copy of the `cloud` fixture, a fresh store, and a proxy of its own in front
/// of a network store.
struct Case {
    project: Project,
    store: Box<dyn Store>,
    proxy: Option<FaultProxy>,
}

/// An apply without a question; removals one at a time, so that every run sends its requests in
/// the same order; Parameter Store's writes unpaced.
const APPLY: [&str; 6] = ["apply", "--yes", "--parallelism", "1", "--write-rate", "200"];

impl Case {
    fn new(kind: Kind) -> Self {
        let project = Project::fixture("cloud");
        let store = kind.open(&project);
        let proxy = store.origin().map(|origin| FaultProxy::start(&origin, SLOW_SECONDS));
        Self { project, store, proxy }
    }

    fn proxy(&self) -> &FaultProxy {
        self.proxy.as_ref().expect("a network remote has a proxy")
    }

    /// The binary with `args`, against this case's remote (through its proxy, if any).
    fn cs(&self, args: &[&str]) -> Run<'_> {
        let via = self.proxy.as_ref().map(FaultProxy::url);
        let (remote, env) = self.store.address(via.as_deref());
        let mut all = args.to_vec();
        all.extend(["--remote", remote.as_str()]);
        let mut run = self.project.cmd(&all);
        for (key, value) in &env {
            run = run.env(key, value);
        }
        run
    }

    fn apply(&self, extra: &[&str]) -> Outcome {
        let mut args = APPLY.to_vec();
        args.extend(extra);
        self.cs(&args).run()
    }

    fn plan(&self) -> Outcome {
        self.cs(&["plan", "--detailed-exitcode", "-q"]).run()
    }

    /// Replaces the `openai` value of the profile's secrets.json.
    fn edit_openai(&self, value: &str) {
        let path = self.project.path(SECRETS);
        let text = std::fs::read_to_string(&path).unwrap().replace(&planned(None)["OPENAI_API_KEY"], value);
        std::fs::write(&path, text).unwrap();
    }
}

/// Every failure of a scenario, over every remote.
#[derive(Default)]
struct Findings(Mutex<Vec<String>>);

impl Findings {
    /// Records a failure: the remote, the case, the exit code and the key lines of the output.
    fn fail(&self, kind: Kind, case: &str, outcome: Option<&Outcome>, why: &str) {
        let run = outcome.map(|o| format!("\n      exit {}: {}", o.code, excerpt(o))).unwrap_or_default();
        self.0.lock().unwrap().push(format!("[{}] {case}: {why}{run}", kind.name()));
    }

    fn check(&self, ok: bool, kind: Kind, case: &str, outcome: &Outcome, why: impl FnOnce() -> String) {
        if !ok {
            self.fail(kind, case, Some(outcome), &why());
        }
    }

    /// Fails with the whole list, if there is anything on it.
    fn finish(self, scenario: &str) {
        let mut list = self.0.into_inner().unwrap();
        list.sort();
        assert!(list.is_empty(), "{scenario}: {} failure(s):\n  {}\n", list.len(), list.join("\n  "));
    }
}

/// The lines of a run that say what happened: errors, hints and the apply's report.
fn excerpt(outcome: &Outcome) -> String {
    let key: Vec<&str> = outcome
        .stderr
        .lines()
        .chain(outcome.stdout.lines())
        .map(str::trim)
        .filter(|l| {
            l.starts_with("error:")
                || l.starts_with("hint:")
                || l.starts_with("Applied")
                || l.starts_with("Not removed")
                || l.starts_with("Plan:")
        })
        .collect();
    let text = if key.is_empty() {
        outcome.stderr.lines().chain(outcome.stdout.lines()).last().unwrap_or("(no output)").to_owned()
    } else {
        key.join(" | ")
    };
    let text = masked(&text);
    match text.char_indices().nth(600) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text,
    }
}

/// `text` with what differs from case to case (the store's name, a port) masked, so that two
/// runs' lists of failures can be compared.
fn masked(text: &str) -> String {
    let unique = regex::Regex::new(r"cs-\d+-conformance-\d+").unwrap();
    let port = regex::Regex::new(r"127\.0\.0\.1:\d+").unwrap();
    port.replace_all(&unique.replace_all(text, "NAME"), "127.0.0.1:PORT").into_owned()
}

/// How two states of a store differ, by name only (values are secrets).
fn difference(expected: Option<&Vars>, actual: Option<&Vars>) -> String {
    match (expected, actual) {
        (None, Some(_)) => return "the store was created".to_owned(),
        (Some(_), None) => return "the store is gone".to_owned(),
        _ => {}
    }
    let (expected, actual) = (expected.cloned().unwrap_or_default(), actual.cloned().unwrap_or_default());
    let mut parts = Vec::new();
    for name in expected.keys().chain(actual.keys().filter(|k| !expected.contains_key(*k))) {
        match (expected.get(name), actual.get(name)) {
            (Some(_), None) => parts.push(format!("{name} missing")),
            (None, Some(_)) => parts.push(format!("{name} unexpected")),
            (Some(a), Some(b)) if a != b => parts.push(format!("{name} differs")),
            _ => {}
        }
    }
    parts.join(", ")
}

/// Runs `work` on every job, `workers` at a time; a job that panics (a canary leak, the binary
/// panicking, a server refusing) is recorded under its label, and the others go on.
fn in_parallel<T: Send>(
    jobs: Vec<(Kind, String, T)>,
    workers: usize,
    findings: &Findings,
    work: impl Fn(T) + Sync,
) {
    let queue = Mutex::new(jobs.into_iter());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let Some((kind, label, job)) = queue.lock().unwrap().next() else { return };
                    if let Err(panic) = std::panic::catch_unwind(AssertUnwindSafe(|| work(job))) {
                        let text = panic
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                            .unwrap_or_default();
                        findings.fail(kind, &label, None, &format!("panicked: {text}"));
                    }
                }
            });
        }
    });
}

/// One job per remote (or per network remote).
fn per_remote(network_only: bool, scenario: &str) -> Vec<(Kind, String, Kind)> {
    KINDS
        .into_iter()
        .filter(|k| k.is_network() || !network_only)
        .map(|k| (k, scenario.to_owned(), k))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The scenarios.

#[test]
fn a_round_trip_leaves_exactly_the_desired_state_on_every_remote() {
    servers_are_running();
    let findings = Findings::default();
    in_parallel(per_remote(false, "round trip"), WORKERS, &findings, |kind| {
        let case = Case::new(kind);
        case.store.set(&before());
        let plan = case.plan();
        findings
            .check(plan.code == 2, kind, "round trip: plan", &plan, || "expected changes (exit 2)".into());
        let apply = case.apply(&[]);
        findings.check(apply.code == 0, kind, "round trip: apply", &apply, || "expected success".into());
        let after = case.store.read();
        let wanted = planned(Some(&before()));
        findings.check(after.as_ref() == Some(&wanted), kind, "round trip: the store", &apply, || {
            format!("not the desired state: {}", difference(Some(&wanted), after.as_ref()))
        });
        let again = case.plan();
        findings.check(again.code == 0, kind, "round trip: plan again", &again, || "did not converge".into());
    });
    findings.finish("round trip");
}

#[test]
fn an_empty_or_missing_store_is_filled_and_converges_on_every_remote() {
    servers_are_running();
    let findings = Findings::default();
    let mut jobs = Vec::new();
    for kind in KINDS {
        for start in [Start::Empty, Start::Missing] {
            jobs.push((kind, start.name().to_owned(), (kind, start)));
        }
    }
    in_parallel(jobs, WORKERS, &findings, |(kind, start)| {
        let label = start.name();
        let case = Case::new(kind);
        start.prepare(case.store.as_ref());
        let plan = case.plan();
        let additions = "Plan: 6 to add, 0 to change, 0 to remove, 0 to clean up.\n";
        findings.check(
            plan.code == 2 && plan.stdout == additions,
            kind,
            &format!("{label}: plan"),
            &plan,
            || "expected 6 additions (exit 2)".into(),
        );
        let apply = case.apply(&[]);
        findings
            .check(apply.code == 0, kind, &format!("{label}: apply"), &apply, || "expected success".into());
        let after = case.store.read();
        let wanted = planned(None);
        findings.check(after.as_ref() == Some(&wanted), kind, &format!("{label}: the store"), &apply, || {
            format!("not the desired state: {}", difference(Some(&wanted), after.as_ref()))
        });
        let again = case.plan();
        findings.check(again.code == 0, kind, &format!("{label}: plan again"), &again, || {
            "did not converge".into()
        });
    });
    findings.finish("empty and missing stores");
}

#[test]
fn a_concurrent_writer_while_the_question_waits_stops_the_apply_on_every_remote() {
    servers_are_running();
    let findings = Findings::default();
    in_parallel(per_remote(false, "concurrent writer at the prompt"), WORKERS, &findings, |kind| {
        let case = Case::new(kind);
        case.store.set(&before());
        // A new variable (seen even by a listing of names) and a changed value.
        let writer = with(&before(), &[MEANWHILE, ("OPENAI_API_KEY", "sk-CANARY-openai-meanwhile-2d8f")]);
        let mut args = APPLY.to_vec();
        args.retain(|a| *a != "--yes");
        let out = case.cs(&args).run_answering("y\n", || case.store.set(&writer));
        let case_name = "concurrent writer at the prompt";
        findings.check(out.code == 3, kind, case_name, &out, || "expected exit 3 (stale)".into());
        let after = case.store.read();
        findings.check(after.as_ref() == Some(&writer), kind, case_name, &out, || {
            format!("the store is not the concurrent writer's: {}", difference(Some(&writer), after.as_ref()))
        });
    });
    findings.finish("a concurrent writer at the prompt");
}

/// The requests a fault-free apply from `start` makes through the proxy, or `None` (the failure
/// recorded) if it did not do what it should.
fn learn(kind: Kind, start: Start, findings: &Findings) -> Option<Vec<Logged>> {
    let case = Case::new(kind);
    start.prepare(case.store.as_ref());
    let before = case.store.read();
    case.proxy().program(&[]);
    let out = case.apply(&["--timeout", TIMEOUT]);
    let after = case.store.read();
    let wanted = planned(before.as_ref());
    if out.code != 0 || after.as_ref() != Some(&wanted) {
        let why = format!("the fault-free apply failed: {}", difference(Some(&wanted), after.as_ref()));
        findings.fail(kind, &format!("{}: learning the requests", start.name()), Some(&out), &why);
        return None;
    }
    Some(case.proxy().log())
}

/// A request as a case names it: the method and path, or the AWS operation.
fn request_name(request: &Logged) -> String {
    masked(&request.describe())
}

#[test]
fn a_concurrent_writer_just_before_the_write_is_never_lost_silently() {
    servers_are_running();
    let findings = Findings::default();
    in_parallel(per_remote(true, "concurrent writer before the write"), WORKERS, &findings, |kind| {
        let Some(requests) = learn(kind, Start::Seeded, &findings) else { return };
        let Some(write) = requests.iter().find(|r| r.is_write()) else {
            findings.fail(kind, "concurrent writer before the write", None, "the apply sent no write");
            return;
        };
        let case_name =
            format!("concurrent writer before the write ({} at {})", request_name(write), write.n);
        let case = Case::new(kind);
        case.store.set(&before());
        case.proxy().program(&[(write.n, Fault::HoldBefore)]);
        // A variable the apply does not touch: a store that merges keeps it; one written whole
        // must see it and stop.
        let writer = with(&before(), &[MEANWHILE]);
        let out = std::thread::scope(|scope| {
            let apply = scope.spawn(|| case.apply(&[]));
            let deadline = Instant::now() + Duration::from_secs(30);
            while case.proxy().log().len() < write.n && !apply.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            case.store.set(&writer);
            case.proxy().release();
            apply.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        });
        let after = case.store.read();
        let kept = after.as_ref().and_then(|a| a.get(MEANWHILE.0)).map(String::as_str) == Some(MEANWHILE.1);
        // A store without a conditional write cannot keep the writer's version current: it must
        // say that it replaced it, and keep it where it says.
        let replaced_and_kept = out.stderr.contains("replaced that version; it is kept as AWSPREVIOUS")
            && case.store.previous().as_ref() == Some(&writer);
        match out.code {
            3 => findings.check(
                after.as_ref() == Some(&writer) || replaced_and_kept,
                kind,
                &case_name,
                &out,
                || {
                    format!(
                        "exit 3, but the store is not the writer's, nor said replaced and kept: {}",
                        difference(Some(&writer), after.as_ref())
                    )
                },
            ),
            0 => {
                let wanted = with(&planned(Some(&before())), &[MEANWHILE]);
                let why = if kept {
                    format!(
                        "the store is not the desired state: {}",
                        difference(Some(&wanted), after.as_ref())
                    )
                } else {
                    "exit 0, and the concurrent writer's change is gone: replaced silently".to_owned()
                };
                findings.check(after.as_ref() == Some(&wanted), kind, &case_name, &out, || why);
            }
            _ => findings.check(kept && admits(&out), kind, &case_name, &out, || {
                "failed without keeping the writer's change or saying what happened".into()
            }),
        }
    });
    findings.finish("a concurrent writer just before the write");
}

#[test]
fn rollback_returns_to_the_first_state_or_is_refused_with_a_reason() {
    servers_are_running();
    let findings = Findings::default();
    in_parallel(per_remote(false, "rollback"), WORKERS, &findings, |kind| {
        let case = Case::new(kind);
        let first = case.apply(&[]);
        findings.check(first.code == 0, kind, "rollback: first apply", &first, || "expected success".into());
        let first_state = case.store.read();
        case.edit_openai("sk-CANARY-openai-prod-second-5e1f");
        let second = case.apply(&[]);
        findings
            .check(second.code == 0, kind, "rollback: second apply", &second, || "expected success".into());
        let second_state = case.store.read();
        let wanted = with(&planned(None), &[("OPENAI_API_KEY", "sk-CANARY-openai-prod-second-5e1f")]);
        findings.check(
            second_state.as_ref() == Some(&wanted),
            kind,
            "rollback: second apply",
            &second,
            || format!("not the second state: {}", difference(Some(&wanted), second_state.as_ref())),
        );
        let out = case.cs(&["rollback", "--yes"]).run();
        let after = case.store.read();
        if kind.keeps_versions() {
            findings.check(out.code == 0, kind, "rollback", &out, || "expected success".into());
            findings.check(after == first_state, kind, "rollback", &out, || {
                format!(
                    "the store is not the first state: {}",
                    difference(first_state.as_ref(), after.as_ref())
                )
            });
        } else {
            let said = out.stderr.contains("keeps no earlier versions to roll back to");
            findings.check(out.code == 1 && said, kind, "rollback", &out, || {
                "expected a refusal saying the remote keeps no versions (exit 1)".into()
            });
            findings.check(after == second_state, kind, "rollback", &out, || {
                format!(
                    "refused, but the store changed: {}",
                    difference(second_state.as_ref(), after.as_ref())
                )
            });
        }
    });
    findings.finish("rollback");
}

/// Whether a failed run says what is unknown or what was made.
fn admits(outcome: &Outcome) -> bool {
    let said = format!("{}\n{}", outcome.stdout, outcome.stderr).to_lowercase();
    ["unknown", "may or may not", "may have been", "were made", "applied in part", "not removed"]
        .iter()
        .any(|words| said.contains(words))
}

/// What is wrong with an apply's report, judged against what the store held before and holds
/// now: success means the desired state; "nothing was written" (or exit 3, stale) means the
/// store as before; any other failure must say what is unknown or what was made. Whatever the
/// report, each variable is as it was or as planned.
fn misreport(outcome: &Outcome, start: Option<&Vars>, after: Option<&Vars>) -> Vec<String> {
    let wanted = planned(start);
    let said_nothing =
        format!("{}\n{}", outcome.stdout, outcome.stderr).to_lowercase().contains("nothing was written");
    let mut wrong = Vec::new();
    match outcome.code {
        0 if after != Some(&wanted) => {
            wrong.push(format!(
                "exit 0, but the store is not the desired state: {}",
                difference(Some(&wanted), after)
            ));
        }
        0 => {}
        3 if after != start => {
            wrong.push(format!("exit 3 (stale), but the store changed: {}", difference(start, after)));
        }
        1 if said_nothing && after != start => {
            wrong.push(format!(
                "said nothing was written, but the store changed: {}",
                difference(start, after)
            ));
        }
        1 if !said_nothing && !admits(outcome) => {
            wrong.push("failed without saying what is unknown or what was made".to_owned());
        }
        1 | 3 => {}
        other => wrong.push(format!("unexpected exit code {other}")),
    }
    let empty = Vars::new();
    let (start_vars, after_vars) = (start.unwrap_or(&empty), after.unwrap_or(&empty));
    for name in start_vars.keys().chain(wanted.keys()).chain(after_vars.keys()) {
        let now = after_vars.get(name);
        if now != start_vars.get(name) && now != wanted.get(name) {
            wrong.push(format!("{name} is neither as it was nor as planned"));
        }
    }
    wrong.dedup();
    wrong
}

/// One faulty apply on a fresh store, judged, then run again without faults.
fn faulty_apply(kind: Kind, start: Start, fault: Fault, request: &Logged, findings: &Findings) {
    let case_name =
        format!("{}: {} at {} ({})", start.name(), fault.name(), request.n, request_name(request));
    let case = Case::new(kind);
    start.prepare(case.store.as_ref());
    let before = case.store.read();
    case.proxy().program(&[(request.n, fault)]);
    let out = case.apply(&["--timeout", TIMEOUT]);
    let after = case.store.read();
    let hit = case.proxy().log().into_iter().nth(request.n - 1);
    let did = hit.as_ref().map_or_else(|| "the request never came".to_owned(), Logged::did);
    for why in misreport(&out, before.as_ref(), after.as_ref()) {
        findings.fail(kind, &case_name, Some(&out), &format!("{why} [proxy: {did}]"));
    }
    if hit.as_ref().map(request_name) != Some(request_name(request)) {
        let sent = hit.as_ref().map_or_else(|| "nothing".to_owned(), request_name);
        findings.fail(kind, &case_name, Some(&out), &format!("the request at {} was {sent}", request.n));
    }
    case.proxy().program(&[]);
    let rerun = case.apply(&[]);
    findings.check(rerun.code == 0, kind, &format!("{case_name}, then apply again"), &rerun, || {
        "the apply without faults did not succeed".into()
    });
    let check = case.plan();
    let now = case.store.read();
    let wanted = planned(before.as_ref());
    findings.check(
        check.code == 0 && now.as_ref() == Some(&wanted),
        kind,
        &format!("{case_name}, then plan"),
        &check,
        || format!("did not converge: {}", difference(Some(&wanted), now.as_ref())),
    );
}

#[test]
fn every_fault_at_every_request_of_an_apply_is_reported_as_it_happened() {
    servers_are_running();
    let findings = Findings::default();
    let mut starts = Vec::new();
    for kind in KINDS.into_iter().filter(|k| k.is_network()) {
        for start in [Start::Seeded, Start::Missing] {
            starts.push((kind, format!("{}: learning the requests", start.name()), (kind, start)));
        }
    }
    let learned = Mutex::new(Vec::new());
    in_parallel(starts, WORKERS, &findings, |(kind, start)| {
        if let Some(requests) = learn(kind, start, &findings) {
            learned.lock().unwrap().push((kind, start, requests));
        }
    });
    let mut jobs = Vec::new();
    for (kind, start, requests) in learned.into_inner().unwrap() {
        for request in requests {
            for fault in Fault::MATRIX {
                let label = format!(
                    "{}: {} at {} ({})",
                    start.name(),
                    fault.name(),
                    request.n,
                    request_name(&request)
                );
                jobs.push((kind, label, (kind, start, fault, request.clone())));
            }
        }
    }
    in_parallel(jobs, WORKERS, &findings, |(kind, start, fault, request)| {
        faulty_apply(kind, start, fault, &request, &findings);
    });
    findings.finish("every fault at every request of an apply");
}
