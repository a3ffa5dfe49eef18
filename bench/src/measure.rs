//! Measuring one run: a wrapper process (this binary, re-run as `__measure` or `__floor`) runs
//! the measured processes and prints `NANOS MAX_RSS_KB EXIT_CODE`, so that the wall time and the
//! peak memory (`getrusage(RUSAGE_CHILDREN)`) belong to the measured processes alone.
//!
//! - `__measure PROGRAM ARGS...`: one process, its output to /dev/null (the tool).
//! - `__floor CURL URL TENANT EXCHANGE_FORM [PUT_BODY]`: the floor, `curl` processes one after
//!   the other against the same API: the token exchange, the listing, and (with `PUT_BODY`) the
//!   write. The access token (and, for the write, the listing's `ETag`) is read from the output
//!   of the curl before; that parsing takes microseconds.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// The first argument that makes this binary the wrapper of one process.
pub const MEASURE: &str = "__measure";
/// The first argument that makes this binary the wrapper of the curl floor.
pub const FLOOR: &str = "__floor";

/// Options every curl of the floor gets: no ~/.curlrc (`-q` must come first), quiet but with
/// errors, an HTTP error status as a failure, no proxy.
const CURL_BASE: [&str; 5] = ["-q", "-sS", "--fail", "--noproxy", "*"];

/// One measured run.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Wall time from the start of the first process to the exit of the last.
    pub wall: Duration,
    /// The largest peak resident set of the processes, in KiB.
    pub max_rss_kb: u64,
}

/// The floor: what curl sends, and where.
#[derive(Debug, Clone)]
pub struct Floor {
    /// The curl binary.
    pub curl: PathBuf,
    /// The API's base URL (`http://127.0.0.1:PORT`).
    pub url: String,
    /// The tenant.
    pub tenant: String,
    /// The token exchange's form body, exactly as the tool sent it.
    pub exchange: PathBuf,
    /// The body of the write, exactly as the tool sent it; `None` for a plan's floor.
    pub put: Option<PathBuf>,
}

impl Floor {
    /// The number of curl processes (and requests) it makes.
    pub fn processes(&self) -> usize {
        2 + usize::from(self.put.is_some())
    }
}

/// The wrapper of one process: runs it, then prints its wall time, peak memory and exit code.
pub fn measure_child(command: &[OsString]) -> ExitCode {
    let Some((program, args)) = command.split_first() else {
        eprintln!("{MEASURE}: no command given");
        return ExitCode::FAILURE;
    };
    let started = Instant::now();
    let status = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let wall = started.elapsed();
    match status {
        Ok(status) => print_result(wall, status.code().unwrap_or(-1)),
        Err(e) => {
            eprintln!("{MEASURE}: cannot run {}: {e}", Path::new(program).display());
            ExitCode::FAILURE
        }
    }
}

/// The wrapper of the floor: runs the curls, then prints their wall time, peak memory and the
/// exit code of the first that failed (0 when none did). A failure's stderr goes to stderr.
pub fn floor_child(args: &[OsString]) -> ExitCode {
    let [curl, url, tenant, exchange, rest @ ..] = args else {
        eprintln!("{FLOOR}: expected CURL URL TENANT EXCHANGE_FORM [PUT_BODY]");
        return ExitCode::FAILURE;
    };
    let (Some(url), Some(tenant)) = (url.to_str(), tenant.to_str()) else {
        eprintln!("{FLOOR}: the URL and the tenant must be UTF-8");
        return ExitCode::FAILURE;
    };
    let started = Instant::now();
    let outcome = floor_requests(curl, url, tenant, exchange, rest.first());
    let wall = started.elapsed();
    let code = match outcome {
        Ok(()) => 0,
        Err(failure) => {
            eprintln!("{}", failure.message);
            failure.code
        }
    };
    print_result(wall, code)
}

/// Prints `NANOS MAX_RSS_KB EXIT_CODE` for the parent.
fn print_result(wall: Duration, code: i32) -> ExitCode {
    use nix::sys::resource::{UsageWho, getrusage};
    match getrusage(UsageWho::RUSAGE_CHILDREN) {
        Ok(usage) => {
            println!("{} {} {code}", wall.as_nanos(), usage.max_rss());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("getrusage: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A curl of the floor that failed.
struct CurlFailure {
    code: i32,
    message: String,
}

/// The floor's requests, as the tool makes them: the exchange, the listing, the write.
fn floor_requests(
    curl: &OsStr,
    url: &str,
    tenant: &str,
    exchange: &OsStr,
    put: Option<&OsString>,
) -> Result<(), CurlFailure> {
    let token_url = format!("{url}/api/v1/core/oauth/token");
    let form = at_file(exchange);
    let answer = run_curl(
        curl,
        &[
            os("-H"),
            os("Content-Type: application/x-www-form-urlencoded"),
            os("--data-binary"),
            &form,
            os(&token_url),
        ],
    )?;
    let authorization = format!("Authorization: Bearer {}", access_token(&answer)?);
    let secrets_url = format!("{url}/api/v1/tenants/{tenant}/secrets");
    let listing =
        [os("-o"), os("/dev/null"), os("-D"), os("-"), os("-H"), os(&authorization), os(&secrets_url)];
    let headers = run_curl(curl, &listing)?;
    let Some(put) = put else { return Ok(()) };
    let body = at_file(put);
    let if_match = etag(&headers).map(|etag| format!("If-Match: {etag}"));
    let mut args = vec![
        os("-o"),
        os("/dev/null"),
        os("-X"),
        os("PUT"),
        os("-H"),
        os(&authorization),
        os("-H"),
        os("Content-Type: application/json"),
        // The tool sends no `Expect: 100-continue`; curl would for a large body.
        os("-H"),
        os("Expect:"),
        os("--data-binary"),
        &body,
    ];
    if let Some(if_match) = &if_match {
        args.extend([os("-H"), os(if_match)]);
    }
    args.push(os(&secrets_url));
    run_curl(curl, &args).map(drop)
}

/// A `&str` as an argument.
fn os(text: &str) -> &OsStr {
    OsStr::new(text)
}

/// `@PATH`: curl's way to send a file as the body.
fn at_file(path: &OsStr) -> OsString {
    let mut arg = OsString::from("@");
    arg.push(path);
    arg
}

/// Runs one curl to its exit and returns its standard output.
fn run_curl(curl: &OsStr, args: &[&OsStr]) -> Result<Vec<u8>, CurlFailure> {
    let output = Command::new(curl)
        .args(CURL_BASE)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| CurlFailure { code: 127, message: format!("cannot run curl: {e}") })?;
    if output.status.success() {
        return Ok(output.stdout);
    }
    Err(CurlFailure {
        code: output.status.code().unwrap_or(-1),
        message: format!("curl failed: {}", String::from_utf8_lossy(&output.stderr).trim()),
    })
}

/// The access token of a token exchange's answer.
fn access_token(answer: &[u8]) -> Result<String, CurlFailure> {
    serde_json::from_slice::<serde_json::Value>(answer)
        .ok()
        .and_then(|v| v.get("access_token").and_then(|t| t.as_str()).map(str::to_owned))
        .ok_or_else(|| CurlFailure {
            code: 1,
            message: "the token exchange answered no access_token".to_owned(),
        })
}

/// The `ETag` among the headers curl printed (`-D -`).
fn etag(headers: &[u8]) -> Option<String> {
    String::from_utf8_lossy(headers).lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim().eq_ignore_ascii_case("etag").then(|| value.trim().to_owned())
    })
}

/// Runs the wrappers and reads what they print.
#[derive(Debug)]
pub struct Runner {
    /// This binary, to re-run as the wrapper.
    me: PathBuf,
    /// The cloud-secrets binary.
    pub bin: PathBuf,
}

impl Runner {
    /// A runner of `bin` (and of curl).
    pub fn new(bin: PathBuf) -> Result<Self, String> {
        let me =
            std::env::current_exe().map_err(|e| format!("cannot find the benchmark's own binary: {e}"))?;
        Ok(Self { me, bin })
    }

    /// One run of the tool with `args` in `dir`, which must exit with `expect`.
    pub fn tool(
        &self,
        dir: &Path,
        env: &[(&str, String)],
        args: &[&str],
        expect: i32,
    ) -> Result<Sample, String> {
        let mut command = Command::new(&self.me);
        command.arg(MEASURE).arg(&self.bin).args(args);
        let (sample, code, _) = self.wrapped(command, dir, env)?;
        if code == expect {
            return Ok(sample);
        }
        // Once more, in the open, to say why (the tool's messages never hold a value).
        let mut again = Command::new(&self.bin);
        again.args(args);
        let why = clean(&mut again, dir, env)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
            .unwrap_or_default();
        Err(format!("cloud-secrets {} exited with {code}, not {expect}:\n{why}", args.join(" ")))
    }

    /// One run of the floor, which must succeed.
    pub fn floor(&self, floor: &Floor, dir: &Path) -> Result<Sample, String> {
        let mut command = Command::new(&self.me);
        command.arg(FLOOR).arg(&floor.curl).arg(&floor.url).arg(&floor.tenant).arg(&floor.exchange);
        if let Some(put) = &floor.put {
            command.arg(put);
        }
        let (sample, code, stderr) = self.wrapped(command, dir, &[])?;
        if code == 0 {
            return Ok(sample);
        }
        Err(format!("the curl floor failed (curl exited with {code}): {}", stderr.trim()))
    }

    /// Runs a wrapper with a clean environment and reads its result line.
    fn wrapped(
        &self,
        mut command: Command,
        dir: &Path,
        env: &[(&str, String)],
    ) -> Result<(Sample, i32, String), String> {
        let output = clean(&mut command, dir, env)
            .output()
            .map_err(|e| format!("cannot run the measuring wrapper {}: {e}", self.me.display()))?;
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        let text = String::from_utf8_lossy(&output.stdout);
        let fields: Vec<i128> = text.split_whitespace().filter_map(|f| f.parse().ok()).collect();
        let [nanos, rss, code] = fields[..] else {
            return Err(format!("the measuring wrapper failed: {}", stderr.trim()));
        };
        let sample = Sample {
            wall: Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX)),
            max_rss_kb: u64::try_from(rss).unwrap_or(u64::MAX),
        };
        Ok((sample, i32::try_from(code).unwrap_or(-1), stderr))
    }
}

/// `command` in `dir` with only `PATH`, `HOME` (the project's directory) and `env`.
pub fn clean<'a>(command: &'a mut Command, dir: &Path, env: &[(&str, String)]) -> &'a mut Command {
    command.current_dir(dir).env_clear();
    command.env("PATH", std::env::var_os("PATH").unwrap_or_default()).env("HOME", dir);
    for (name, value) in env {
        command.env(name, value);
    }
    command
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_etag_is_found_whatever_its_case() {
        let headers = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nETag: \"v3\"\r\n\r\n";
        assert_eq!(etag(headers).as_deref(), Some("\"v3\""));
        assert_eq!(etag(b"HTTP/1.1 200 OK\r\n\r\n"), None);
    }

    #[test]
    fn the_access_token_is_read_from_the_answer() {
        assert_eq!(
            access_token(br#"{"access_token":"at_1","expires_in":300}"#).ok().as_deref(),
            Some("at_1")
        );
        assert!(access_token(b"{}").is_err());
    }
}
