//! `scripts/fault_proxy.py` from the tests: one proxy per test (tests run in parallel, and each
//! needs its own count of requests), a fault program, and the proxy's log of what it did.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};

/// What the proxy does to the request at one position (see scripts/fault_proxy.py).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 503 without forwarding: the origin never sees the request.
    FiveXxBefore,
    /// Forwarded, the origin commits, and the client gets 502 instead of its answer.
    FiveXxAfter,
    /// The connection closed without forwarding and without an answer.
    DropBefore,
    /// Forwarded, then the connection closed without an answer.
    DropAfter,
    /// Rate limited as the remote does it (429 with `Retry-After: 1`; AWS: 400
    /// ThrottlingException), without forwarding.
    TooManyRequests,
    /// Forwarded, and the answer held past the client's `--timeout`.
    SlowAfter,
    /// Held until [`FaultProxy::release`], then forwarded.
    HoldBefore,
}

impl Fault {
    /// Every fault the conformance matrix injects (all but [`Fault::HoldBefore`]).
    pub const MATRIX: [Fault; 6] = [
        Fault::FiveXxBefore,
        Fault::FiveXxAfter,
        Fault::DropBefore,
        Fault::DropAfter,
        Fault::TooManyRequests,
        Fault::SlowAfter,
    ];

    /// The fault's name in a program.
    pub fn name(self) -> &'static str {
        match self {
            Fault::FiveXxBefore => "5xx-before",
            Fault::FiveXxAfter => "5xx-after",
            Fault::DropBefore => "drop-before",
            Fault::DropAfter => "drop-after",
            Fault::TooManyRequests => "429",
            Fault::SlowAfter => "slow-after",
            Fault::HoldBefore => "hold-before",
        }
    }
}

/// One request the proxy received, and what it did with it.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Logged {
    /// Its position since the program was set (1-based).
    pub n: usize,
    pub method: String,
    pub path: String,
    /// `X-Amz-Target`, for AWS requests.
    pub target: Option<String>,
    /// The fault injected into it, by name.
    pub fault: Option<String>,
    /// Whether the origin got it.
    pub forwarded: bool,
    /// The origin's status, if it answered.
    pub origin_status: Option<u16>,
    /// The status sent back; `None` when the connection was closed without an answer.
    pub answered: Option<u16>,
}

impl Logged {
    /// `PUT /api/v1/tenants/acme/secrets`, or the AWS operation.
    pub fn describe(&self) -> String {
        match &self.target {
            Some(target) => target.clone(),
            None => format!("{} {}", self.method, self.path),
        }
    }

    /// What the proxy did with it: `5xx-after: the origin answered 200, the client got 502`.
    pub fn did(&self) -> String {
        let fault = self.fault.as_deref().unwrap_or("no fault");
        let origin = match (self.forwarded, self.origin_status) {
            (false, _) => "not forwarded".to_owned(),
            (true, Some(status)) => format!("the origin answered {status}"),
            (true, None) => "the origin did not answer".to_owned(),
        };
        let client = self
            .answered
            .map_or_else(|| "the client got no answer".to_owned(), |s| format!("the client got {s}"));
        format!("{fault}: {origin}, {client}")
    }

    /// Whether the request writes: a method that changes, or an AWS operation that does. The
    /// cloud's token exchange (a POST) reads nothing and writes nothing of the store.
    pub fn is_write(&self) -> bool {
        match &self.target {
            Some(target) => ["Put", "Create", "Delete", "Update"]
                .iter()
                .any(|verb| target.rsplit('.').next().is_some_and(|op| op.starts_with(verb))),
            None => match self.method.as_str() {
                "PUT" | "DELETE" | "PATCH" => true,
                "POST" => !self.path.contains("/oauth/token"),
                _ => false,
            },
        }
    }
}

/// A running proxy in front of one origin. Dropping it stops it.
pub struct FaultProxy {
    child: Child,
    /// Kept open: the proxy's stdout is a pipe, and it must not break.
    _stdout: BufReader<ChildStdout>,
    port: u16,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (`http://HOST:PORT`) on a free port of 127.0.0.1, holding
    /// `slow-after` answers for `slow_seconds`.
    pub fn start(upstream: &str, slow_seconds: f64) -> Self {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/fault_proxy.py");
        let mut child = Command::new(python())
            .args([script, "--upstream", upstream, "--port", "0", "--slow", &slow_seconds.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start python3 {script}: {e}"));
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let port = line.trim().parse().unwrap_or_else(|_| panic!("the fault proxy did not start: {line:?}"));
        Self { child, _stdout: stdout, port }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Sets the fault program: the count and the log start again from here.
    pub fn program(&self, faults: &[(usize, Fault)]) {
        let steps: Vec<serde_json::Value> =
            faults.iter().map(|(at, fault)| serde_json::json!({ "at": at, "fault": fault.name() })).collect();
        let (status, body) =
            self.control("POST", "/__proxy/program", &serde_json::Value::from(steps).to_string());
        assert_eq!(status, 200, "the fault proxy refused the program: {body}");
    }

    /// Every request since the program was set, in order.
    pub fn log(&self) -> Vec<Logged> {
        let (status, body) = self.control("GET", "/__proxy/log", "");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    /// Lets held requests go on.
    pub fn release(&self) {
        assert_eq!(self.control("POST", "/__proxy/release", "").0, 200);
    }

    fn control(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        crate::support::raw_http(&format!("127.0.0.1:{}", self.port), (method, path), "", body)
    }
}

/// The Python interpreter itself, found once: `python3` on PATH may be a wrapper (pyenv's shim
/// is a shell script) that would cost every proxy a second start.
fn python() -> &'static str {
    static PYTHON: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PYTHON.get_or_init(|| {
        let found = Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .unwrap_or_else(|e| panic!("the fault proxy needs python3 on PATH: {e}"));
        let path = String::from_utf8_lossy(&found.stdout).trim().to_owned();
        if path.is_empty() { "python3".to_owned() } else { path }
    })
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
