//! The systemprompt cloud as a remote: one tenant's secrets, over the API the product brief
//! describes.
//!
//! Before tenant calls the API token is exchanged (RFC 8693) for a short-lived access token,
//! cached until 30 seconds before it expires and exchanged again once on a 401. Every request has
//! a timeout; connection failures, timeouts, 429 and 5xx are retried with exponential backoff and
//! jitter, honouring `Retry-After`. An apply re-reads the listing and writes nothing if it moved;
//! then one `PUT` carries every addition and change (conditional on the listing's `ETag`, where
//! there is one), and the removals follow as `DELETE`s, a bounded number at a time.
//!
//! Neither token is ever formatted into a message: they live in [`SecretValue`]s, and errors are
//! built from statuses and error codes, never from response bodies or request data.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::header::{ETAG, IF_MATCH, RETRY_AFTER};
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::{Applied, Backend, Connection};
use crate::error::{Error, Result};
use crate::record::decode_hex;
use crate::remote::{ChangeSet, Remote, RemoteValue};
use crate::secret::SecretValue;

const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const SUBJECT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
const CLIENT_ID: &str = "sp_web";
/// Access tokens are replaced this long before they expire.
const EXPIRY_MARGIN: Duration = Duration::from_secs(30);
/// The first backoff delay; it doubles on each retry, up to [`MAX_BACKOFF`].
const BASE_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// The longest `Retry-After` honoured; a server asking for more gets this.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);
/// The largest listing read (names and digests of hundreds of thousands of variables).
const MAX_LISTING_BODY: usize = 256 * 1024 * 1024;
/// The largest token or error answer read.
const MAX_ERROR_BODY: usize = 1024 * 1024;
/// Why a deletion was not made after a signal.
const NOT_SENT: &str = "not sent: the apply was interrupted";
/// Below this many requests an apply draws no progress bar.
const PROGRESS_MIN_REQUESTS: usize = 4;

/// A tenant of the systemprompt cloud.
pub struct CloudBackend {
    api: Api,
    interrupted: crate::interrupt::Flag,
    runtime: tokio::runtime::Runtime,
    parallelism: usize,
    progress: bool,
}

impl std::fmt::Debug for CloudBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloudBackend")
            .field("api_url", &self.api.api_url.as_str())
            .field("tenant", &self.api.tenant)
            .finish()
    }
}

struct Api {
    log: bool,
    client: reqwest::Client,
    api_url: Url,
    tenant: String,
    token: SecretValue,
    retries: u32,
    access: tokio::sync::Mutex<Option<AccessToken>>,
}

struct AccessToken {
    value: SecretValue,
    refresh_at: Instant,
}

/// Why a request did not succeed, in terms fit for a message: a status and the server's error
/// code, or what went wrong on the way. Never a body, a header or a token.
#[derive(Debug, Clone)]
enum Failure {
    Status {
        op: Op,
        status: StatusCode,
        code: Option<String>,
        attempts: u32,
        maybe_delivered: bool,
    },
    Transport {
        op: Op,
        what: &'static str,
        attempts: u32,
        maybe_delivered: bool,
    },
    /// A name from the listing that cannot be put in a URL path without changing its meaning.
    Unaddressable {
        op: Op,
    },
}

impl Failure {
    /// Whether an attempt may have been carried out although its answer was lost.
    fn maybe_delivered(&self) -> bool {
        match self {
            Failure::Status { maybe_delivered, .. } | Failure::Transport { maybe_delivered, .. } => {
                *maybe_delivered
            }
            Failure::Unaddressable { .. } => false,
        }
    }

    fn op(&self) -> Op {
        match self {
            Failure::Status { op, .. } | Failure::Transport { op, .. } | Failure::Unaddressable { op } => *op,
        }
    }
}

/// What an operation was, for messages.
#[derive(Debug, Clone, Copy)]
enum Op {
    Exchange,
    List,
    Put,
    Delete,
}

impl CloudBackend {
    /// A client for `tenant` at `api_url`. Makes no request yet.
    pub fn new(api_url: Url, tenant: String, connection: &Connection) -> Result<Self> {
        let token = connection.token.clone().ok_or_else(|| {
            Error::config(
                "no API token for the systemprompt cloud",
                "log in (which writes .systemprompt/credentials.json), or set SYSTEMPROMPT_API_TOKEN",
            )
        })?;
        let client = super::http_client(&api_url, connection)?;
        let runtime = super::runtime()?;
        Ok(Self {
            api: Api {
                log: connection.log,
                client,
                api_url,
                tenant,
                token,
                retries: connection.retries,
                access: tokio::sync::Mutex::new(None),
            },
            runtime,
            parallelism: connection.parallelism.max(1),
            progress: connection.progress,
            interrupted: connection.interrupted.clone(),
        })
    }
}

impl Backend for CloudBackend {
    fn fetch(&mut self) -> Result<Remote> {
        let api = &self.api;
        self.runtime.block_on(api.list()).map_err(|f| api.error(Op::List, &f))
    }

    fn apply(&mut self, base: &Remote, changes: &ChangeSet<'_>) -> Result<Applied> {
        let (api, parallelism) = (&self.api, self.parallelism);
        let interrupted = &self.interrupted;
        let requests = usize::from(!changes.upserts.is_empty()) + changes.deletes.len();
        let bar = (self.progress && requests >= PROGRESS_MIN_REQUESTS).then(|| progress_bar(requests));
        let tick = bar.as_ref();
        let result = self.runtime.block_on(async {
            // The plan is only good for the remote it was made from.
            let current = api.list().await.map_err(|f| api.error(Op::List, &f))?;
            if let Some(difference) = listing_difference(base, &current) {
                return Err(Error::Stale {
                    message: format!(
                        "{} changed since the plan was made ({difference}); nothing was written",
                        api.describe()
                    ),
                });
            }
            if interrupted.is_set() {
                return Err(Error::Interrupted {
                    message: "interrupted before anything was written".to_owned(),
                });
            }
            if !changes.upserts.is_empty() {
                api.put(base, changes).await?;
                if let Some(bar) = tick {
                    bar.inc(1);
                }
            }
            let failed: Vec<(String, String)> = futures_util::stream::iter(changes.deletes.iter().copied())
                .map(|name| async move {
                    // After a signal, the requests in flight finish; no new one is sent.
                    if interrupted.is_set() {
                        return Some((name.to_owned(), NOT_SENT.to_owned()));
                    }
                    let outcome = api.delete(name).await;
                    if let Some(bar) = tick {
                        bar.inc(1);
                    }
                    outcome.err().map(|f| (name.to_owned(), api.failure_text(&f)))
                })
                .buffer_unordered(parallelism)
                .filter_map(|failed| async move { failed })
                .collect()
                .await;
            Ok(failed)
        });
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        let mut failed = result?;
        failed.sort();
        // Interrupted only if the signal kept some request from being sent.
        let interrupted = failed.iter().any(|(_, why)| why == NOT_SENT);
        Ok(Applied { revision: None, failed, interrupted })
    }
}

/// The progress bar of a long apply, drawn on stderr only when it is a terminal and the run is
/// not quiet (`Connection::progress`); like the `-vv` log, the one place a backend writes there.
#[allow(clippy::disallowed_methods)]
fn progress_bar(total: usize) -> indicatif::ProgressBar {
    let bar =
        indicatif::ProgressBar::with_draw_target(Some(total as u64), indicatif::ProgressDrawTarget::stderr());
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{spinner} applying {bar:30} {pos}/{len} requests")
    {
        bar.set_style(style);
    }
    bar
}

/// How two listings differ, if they do: names added or gone, digests or `ETag` moved. Digests
/// under different salts cannot be compared, so a server that salts each listing anew is judged
/// by names and `ETag` alone.
fn listing_difference(base: &Remote, current: &Remote) -> Option<String> {
    let added = current.vars.keys().filter(|k| !base.vars.contains_key(*k)).count();
    let gone = base.vars.keys().filter(|k| !current.vars.contains_key(*k)).count();
    if added + gone > 0 {
        return Some(format!("{added} variable(s) appeared, {gone} disappeared"));
    }
    let changed = base.vars.iter().filter(|(k, v)| current.vars.get(*k) != Some(v)).count();
    if changed > 0 && base.digest_salt == current.digest_salt {
        return Some(format!("{changed} value(s) changed"));
    }
    (base.etag != current.etag).then(|| "its ETag moved".to_owned())
}

#[derive(Deserialize)]
struct Listing {
    keys: Vec<String>,
    #[serde(default)]
    digests: Option<BTreeMap<String, String>>,
    #[serde(default)]
    digest_salt: Option<String>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    code: Option<String>,
}

impl Api {
    fn describe(&self) -> String {
        format!("tenant {} at {}", self.tenant, self.api_url.as_str().trim_end_matches('/'))
    }

    /// `{api_url}/api/v1/...` with each segment percent-encoded.
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.api_url.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    fn secrets_url(&self) -> Url {
        self.url(&["api", "v1", "tenants", &self.tenant, "secrets"])
    }

    async fn list(&self) -> Result<Remote, Failure> {
        let response = self.send(Op::List, Method::GET, self.secrets_url(), |r| r).await?;
        let malformed = |what: &'static str| Failure::Transport {
            op: Op::List,
            what,
            attempts: 1,
            maybe_delivered: false,
        };
        // An ETag that is not plain text cannot be sent back in If-Match; better to stop than to
        // write unconditionally.
        let etag = match response.headers().get(ETAG) {
            Some(value) => Some(
                value.to_str().map_err(|_| malformed("sent an ETag that cannot be sent back"))?.to_owned(),
            ),
            None => None,
        };
        let body = read_body(response, MAX_LISTING_BODY)
            .await
            .map_err(|()| malformed("sent a listing larger than cloud-secrets reads, or broke off"))?;
        let listing: Listing = serde_json::from_slice(&body)
            .map_err(|_| malformed("answered with a listing that is not the expected JSON"))?;
        let salt = listing.digest_salt.as_deref().and_then(decode_hex);
        let digests = listing.digests.filter(|_| salt.is_some()).unwrap_or_default();
        let vars = listing
            .keys
            .into_iter()
            .map(|name| {
                let value = match digests.get(&name) {
                    Some(digest) => RemoteValue::Digest(digest.to_ascii_lowercase()),
                    None => RemoteValue::Unreadable,
                };
                (name, value)
            })
            .collect();
        Ok(Remote { vars, digest_salt: salt, revision: None, etag })
    }

    async fn put(&self, base: &Remote, changes: &ChangeSet<'_>) -> Result<()> {
        let secrets: BTreeMap<&str, &str> =
            changes.upserts.iter().map(|(name, value)| (*name, value.expose())).collect();
        let body = Zeroizing::new(
            serde_json::to_vec(&serde_json::json!({ "secrets": secrets }))
                .expect("a map of strings serializes"),
        );
        let etag = base.etag.clone();
        let outcome = self
            .send(Op::Put, Method::PUT, self.secrets_url(), |request| {
                let request =
                    request.header(reqwest::header::CONTENT_TYPE, "application/json").body(body.to_vec());
                match &etag {
                    Some(etag) => request.header(IF_MATCH, etag),
                    None => request,
                }
            })
            .await;
        match outcome {
            Ok(_) => Ok(()),
            // A retried PUT can meet its own earlier attempt, whose answer was lost: if the
            // remote now holds exactly the values sent, the write happened.
            Err(Failure::Status {
                status: StatusCode::PRECONDITION_FAILED, maybe_delivered: true, ..
            }) if self.holds(changes).await => Ok(()),
            Err(Failure::Status {
                status: StatusCode::PRECONDITION_FAILED, maybe_delivered: true, ..
            }) => Err(Error::Remote {
                message: format!(
                    "the write to {} may have been made (an earlier attempt's answer was lost), and the remote \
                         has changed since (412 Precondition Failed); nothing more was sent",
                    self.describe()
                ),
                hint: Some("run cloud-secrets plan to see where things stand, then apply again".to_owned()),
            }),
            Err(Failure::Status { status: StatusCode::PRECONDITION_FAILED, .. }) => Err(Error::Stale {
                message: format!(
                    "{} changed between the last read and the write (412 Precondition Failed); nothing was written",
                    self.describe()
                ),
            }),
            Err(failure) => Err(self.error(Op::Put, &failure)),
        }
    }

    /// Whether the remote's digests show every upsert of `changes` in place.
    async fn holds(&self, changes: &ChangeSet<'_>) -> bool {
        let Ok(remote) = self.list().await else { return false };
        let Some(salt) = remote.digest_salt.as_deref() else { return false };
        changes.upserts.iter().all(|(name, value)| {
            matches!(remote.vars.get(*name), Some(RemoteValue::Digest(d)) if *d == value.digest(salt))
        })
    }

    async fn delete(&self, name: &str) -> Result<(), Failure> {
        // `.`, `..` or an empty segment would address the collection itself, not this secret.
        if !is_plain_name(name) {
            return Err(Failure::Unaddressable { op: Op::Delete });
        }
        let url = self.url(&["api", "v1", "tenants", &self.tenant, "secrets", name]);
        match self.send(Op::Delete, Method::DELETE, url, |r| r).await {
            // Already gone, perhaps by an earlier attempt whose answer was lost.
            Err(Failure::Status { status: StatusCode::NOT_FOUND, .. }) => Ok(()),
            other => other.map(drop),
        }
    }

    /// The access token, exchanged anew when there is none, it is about to expire, or it is
    /// `rejected` (answered 401) and no other request has replaced it meanwhile.
    async fn access_token(&self, rejected: Option<&SecretValue>) -> Result<SecretValue, Failure> {
        let mut cached = self.access.lock().await;
        if let Some(token) = cached.as_ref()
            && rejected != Some(&token.value)
            && Instant::now() < token.refresh_at
        {
            return Ok(token.value.clone());
        }
        let token = self.exchange().await?;
        let value = token.value.clone();
        *cached = Some(token);
        Ok(value)
    }

    async fn exchange(&self) -> Result<AccessToken, Failure> {
        let url = self.url(&["api", "v1", "core", "oauth", "token"]);
        let resource = self.api_url.as_str().trim_end_matches('/').to_owned();
        let started = Instant::now();
        let response = self
            .attempt_loop(Op::Exchange, &mut false, || {
                let form = [
                    ("grant_type", GRANT_TYPE),
                    ("subject_token", self.token.expose()),
                    ("subject_token_type", SUBJECT_TOKEN_TYPE),
                    ("resource", resource.as_str()),
                    ("client_id", CLIENT_ID),
                ];
                self.client.post(url.clone()).form(&form)
            })
            .await?;
        let not_a_token = Failure::Transport {
            op: Op::Exchange,
            what: "answered the token exchange with something other than a token",
            attempts: 1,
            maybe_delivered: false,
        };
        let body =
            Zeroizing::new(read_body(response, MAX_ERROR_BODY).await.map_err(|()| not_a_token.clone())?);
        let body: TokenResponse = serde_json::from_slice(&body).map_err(|_| not_a_token)?;
        // The lifetime counts from the request; a day at most, whatever the server says.
        let lifetime = Duration::from_secs(body.expires_in.unwrap_or(300).min(86_400));
        Ok(AccessToken {
            value: SecretValue::new(body.access_token),
            refresh_at: started.checked_add(lifetime.saturating_sub(EXPIRY_MARGIN)).unwrap_or(started),
        })
    }

    /// Sends an authenticated tenant request; on a 401 exchanges the token again, once.
    async fn send(
        &self,
        op: Op,
        method: Method,
        url: Url,
        customize: impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, Failure> {
        let mut rejected: Option<SecretValue> = None;
        let mut delivered = false;
        loop {
            let token = self.access_token(rejected.as_ref()).await?;
            let outcome = self
                .attempt_loop(op, &mut delivered, || {
                    customize(self.client.request(method.clone(), url.clone()).bearer_auth(token.expose()))
                })
                .await;
            match outcome {
                Err(Failure::Status { status: StatusCode::UNAUTHORIZED, .. }) if rejected.is_none() => {
                    rejected = Some(token);
                }
                other => return other,
            }
        }
    }

    /// Sends a request, retrying transient failures with backoff; any other answer than 2xx is
    /// a [`Failure::Status`]. `delivered` is set once an attempt may have been carried out
    /// without its answer arriving.
    async fn attempt_loop(
        &self,
        op: Op,
        delivered: &mut bool,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, Failure> {
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let last = attempt > self.retries;
            let request = build().build().map_err(|_| Failure::Transport {
                op,
                what: "could not be sent a well-formed request",
                attempts: attempt,
                maybe_delivered: false,
            })?;
            let (method, path) = (request.method().clone(), request.url().path().to_owned());
            let started = Instant::now();
            let sent = self.client.execute(request).await;
            if self.log {
                log_request(&method, &path, &outcome_of(&sent), started.elapsed(), attempt);
            }
            match sent {
                Ok(response) if response.status().is_success() => return Ok(response),
                Ok(response) => {
                    let status = response.status();
                    let transient = status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error();
                    if transient && !last {
                        let wait = retry_after(&response).unwrap_or_else(|| backoff(attempt));
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    let code = read_body(response, MAX_ERROR_BODY)
                        .await
                        .ok()
                        .and_then(|body| serde_json::from_slice::<ErrorBody>(&body).ok())
                        .and_then(|b| b.error.code)
                        .map(|code| printable_code(&code));
                    return Err(Failure::Status {
                        op,
                        status,
                        code,
                        attempts: attempt,
                        maybe_delivered: *delivered,
                    });
                }
                Err(e) => {
                    // A timeout or a dropped connection after the request went out may have
                    // been processed; a refused connection was not.
                    let (what, retry) = super::transport_cause(&e);
                    *delivered |= !e.is_connect();
                    if !last && retry {
                        tokio::time::sleep(backoff(attempt)).await;
                        continue;
                    }
                    return Err(Failure::Transport {
                        op,
                        what,
                        attempts: attempt,
                        maybe_delivered: *delivered,
                    });
                }
            }
        }
    }

    /// A short text for a failure, for per-key reports.
    fn failure_text(&self, failure: &Failure) -> String {
        let maybe = if failure.maybe_delivered() { "; the request may have been carried out" } else { "" };
        match failure {
            Failure::Status { status, code, attempts, .. } => {
                let code = code.as_deref().map(|c| format!(", code {c}")).unwrap_or_default();
                format!("{status}{code} after {attempts} attempt(s){maybe}")
            }
            Failure::Transport { what, attempts, .. } => {
                format!("the server {what} after {attempts} attempt(s){maybe}")
            }
            Failure::Unaddressable { .. } => {
                "not sent: its name cannot be put in a URL safely; remove it with the service's own tools"
                    .to_owned()
            }
        }
    }

    /// The error for a failed operation, with what to do about it.
    fn error(&self, during: Op, failure: &Failure) -> Error {
        let target = self.describe();
        let op = failure.op();
        let api = self.api_url.as_str().trim_end_matches('/');
        let nothing = match during {
            Op::Put if failure.maybe_delivered() => {
                " The write may or may not have reached the server: run `cloud-secrets plan` to see where things \
                 stand, then apply again."
            }
            Op::Put => " Nothing was written.",
            _ => "",
        };
        let (message, hint) = match failure {
            Failure::Status { status, .. } if *status == StatusCode::UNAUTHORIZED => (
                match op {
                    Op::Exchange => format!("the systemprompt cloud at {api} rejected the API token (401)"),
                    _ => format!("the systemprompt cloud rejected the credentials for {target} (401)"),
                },
                "log in again: the token may have expired (or set SYSTEMPROMPT_API_TOKEN to a valid one)".to_owned(),
            ),
            Failure::Status { status, .. } if *status == StatusCode::FORBIDDEN => (
                format!("no permission on tenant {} (403)", self.tenant),
                format!("you need the admin role on tenant {}; check the tenant's permissions", self.tenant),
            ),
            Failure::Status { status, .. } if *status == StatusCode::NOT_FOUND && !matches!(op, Op::Exchange) => (
                format!("tenant {} not found at {api} (404)", self.tenant),
                "check cloud.tenant_id in the profile's profile.yaml".to_owned(),
            ),
            Failure::Status { status, .. } if *status == StatusCode::PRECONDITION_FAILED => {
                (format!("{target} changed meanwhile (412)"), "the remote changed: run plan again".to_owned())
            }
            Failure::Status { status, .. } => (
                format!("the systemprompt cloud answered {} for {target}: {}", op_name(op), self.failure_text(failure)),
                if status.is_server_error() || *status == StatusCode::TOO_MANY_REQUESTS {
                    "the service is failing or busy: try again later".to_owned()
                } else {
                    "check the API URL and the profile's cloud settings".to_owned()
                },
            ),
            Failure::Transport { .. } => (
                format!("the systemprompt cloud at {api} {}", {
                    let text = self.failure_text(failure);
                    text.strip_prefix("the server ").map(str::to_owned).unwrap_or(text)
                }),
                "check the network and the API URL (credentials.json api_url, SYSTEMPROMPT_API_URL or --remote), \
                 then try again"
                    .to_owned(),
            ),
            Failure::Unaddressable { .. } => (
                format!("a name on {target} cannot be addressed safely"),
                "remove it with the service's own tools".to_owned(),
            ),
        };
        Error::Remote { message: format!("{message}.{nothing}"), hint: Some(hint) }
    }
}

/// One `-vv` line: what was asked and how it went. The path holds the tenant and variable names
/// only; headers and bodies (the tokens, the values) are never logged.
#[allow(clippy::print_stderr)]
pub(super) fn log_request(method: &Method, path: &str, outcome: &str, took: Duration, attempt: u32) {
    let retry = if attempt > 1 { format!(", attempt {attempt}") } else { String::new() };
    eprintln!(
        "http: {method} {} -> {outcome} ({} ms{retry})",
        crate::render::text::safe(path),
        took.as_millis()
    );
}

/// What a request came to, for the `-vv` log: the status, or why there was none.
pub(super) fn outcome_of(sent: &reqwest::Result<reqwest::Response>) -> String {
    match sent {
        Ok(response) => response.status().as_u16().to_string(),
        Err(e) if e.is_timeout() => "timed out".to_owned(),
        Err(_) => "no answer".to_owned(),
    }
}

/// The server's error code, reduced to characters that cannot disturb a terminal.
fn printable_code(code: &str) -> String {
    code.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')).take(64).collect()
}

/// Reads a response body of at most `limit` bytes.
pub(super) async fn read_body(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, ()> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(drop)? {
        if body.len() + chunk.len() > limit {
            return Err(());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Whether a name can be a URL path segment as it is: letters, digits, `_`, `-`, `.`, but not
/// `.` or `..` alone (which would address the collection, not the secret).
pub fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn op_name(op: Op) -> &'static str {
    match op {
        Op::Exchange => "the token exchange",
        Op::List => "the listing",
        Op::Put => "the write",
        Op::Delete => "a removal",
    }
}

/// `Retry-After`, in seconds or as an HTTP date, capped.
pub(super) fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let text = response.headers().get(RETRY_AFTER)?.to_str().ok()?.trim();
    let wait = match text.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => httpdate::parse_http_date(text)
            .ok()?
            .duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// Exponential backoff with jitter: a random delay between half and all of
/// `BASE_BACKOFF * 2^(attempt-1)`, capped at [`MAX_BACKOFF`].
pub(super) fn backoff(attempt: u32) -> Duration {
    use ring::rand::SecureRandom;
    let ceiling = BASE_BACKOFF.saturating_mul(1 << attempt.saturating_sub(1).min(16)).min(MAX_BACKOFF);
    let mut byte = [0u8; 1];
    let _ = ring::rand::SystemRandom::new().fill(&mut byte);
    ceiling / 2 + ceiling / 2 * u32::from(byte[0]) / 255
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_is_capped() {
        for attempt in 1..10 {
            let ceiling = BASE_BACKOFF.saturating_mul(1 << (attempt - 1)).min(MAX_BACKOFF);
            let d = backoff(attempt);
            assert!(d >= ceiling / 2 && d <= ceiling, "{attempt}: {d:?}");
        }
        assert!(backoff(40) <= MAX_BACKOFF);
    }

    #[test]
    fn only_plain_names_are_put_in_paths() {
        for ok in ["JWT_SECRET", "acme", "tenant-1.eu"] {
            assert!(is_plain_name(ok), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "a b", "a%2F", "x?y", "é"] {
            assert!(!is_plain_name(bad), "{bad}");
        }
    }

    #[test]
    fn listings_that_differ_are_told_apart() {
        let remote = |pairs: &[(&str, &str)], etag: Option<&str>| Remote {
            vars: pairs
                .iter()
                .map(|(k, d)| ((*k).to_owned(), RemoteValue::Digest((*d).to_owned())))
                .collect(),
            digest_salt: Some(vec![1]),
            etag: etag.map(str::to_owned),
            revision: None,
        };
        let base = remote(&[("A", "1")], Some("\"v1\""));
        assert_eq!(listing_difference(&base, &base.clone()), None);
        assert!(
            listing_difference(&base, &remote(&[("A", "1"), ("B", "2")], Some("\"v1\"")))
                .unwrap()
                .contains("1 variable(s) appeared")
        );
        assert!(
            listing_difference(&base, &remote(&[("A", "9")], Some("\"v1\"")))
                .unwrap()
                .contains("1 value(s) changed")
        );
        assert!(listing_difference(&base, &remote(&[("A", "1")], Some("\"v2\""))).unwrap().contains("ETag"));
    }
}
