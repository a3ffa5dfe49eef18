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

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::header::IF_MATCH;
use reqwest::{Method, StatusCode, Url};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

mod listing;

use super::http::{Answer, Call, Delivery, Transport};
use super::{Access, Applied, Backend, Connection, Refusal, Resolving};
use crate::error::{Error, Result};
use crate::remote::{ChangeSet, Remote, RemoteValue};
use crate::secret::{Digester, SecretValue};

const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const SUBJECT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
const CLIENT_ID: &str = "sp_web";
/// Access tokens are replaced this long before they expire.
const EXPIRY_MARGIN: Duration = Duration::from_secs(30);
/// The largest listing read (names and digests of hundreds of thousands of variables).
const MAX_LISTING_BODY: usize = 256 * 1024 * 1024;
/// A listing's body of this many bytes or more is left to the process's exit.
const FORGOTTEN_FROM: usize = 1024 * 1024;

/// The largest token or error answer read.
const MAX_ERROR_BODY: usize = 1024 * 1024;
/// Why a deletion was not made after a signal.
const NOT_SENT: &str = "not sent: the apply was interrupted";
/// Below this many requests an apply draws no progress bar.
const PROGRESS_MIN_REQUESTS: usize = 4;

/// The kind of the systemprompt cloud: an `https://` API URL (plain `http://` on loopback
/// only), or no address at all for a profile whose target is the cloud.
pub(super) struct CloudKind;

/// The systemprompt cloud, registered in [`super::KINDS`].
pub(super) static KIND: CloudKind = CloudKind;

impl super::Kind for CloudKind {
    fn name(&self) -> &'static str {
        "the systemprompt cloud"
    }

    fn form(&self) -> &'static str {
        "an https:// API URL"
    }

    fn resolve(
        &self,
        text: &str,
        context: &Resolving<'_>,
    ) -> Option<std::result::Result<std::sync::Arc<dyn super::Spec>, Refusal>> {
        if !text.starts_with("https://") && !text.starts_with("http://") {
            return None;
        }
        Some(match super::api_url(text) {
            Ok(url) => resolve(Some(url), context).map_err(Refusal::Error),
            Err(message) => Err(Refusal::Address(message)),
        })
    }
}

/// The remote of a profile whose target is the cloud and that names no address: the tenant of
/// its profile.yaml at the API URL the environment or credentials.json name.
pub fn resolve_target(context: &Resolving<'_>) -> Result<std::sync::Arc<dyn super::Spec>> {
    resolve(None, context)
}

/// The tenant, the API URL (`explicit`, else `SYSTEMPROMPT_API_URL`, else credentials.json's
/// `api_url`, else the default) and the API token, which goes only where the place it came from
/// points.
fn resolve(explicit: Option<Url>, context: &Resolving<'_>) -> Result<std::sync::Arc<dyn super::Spec>> {
    use crate::error::Location;
    use crate::{credentials, project, trust};
    let profile = context.profile;
    let tenant = profile.settings.tenant_id().map(str::to_owned).filter(|t| !t.trim().is_empty());
    let tenant = match tenant {
        Some(tenant) if is_plain_name(&tenant) => tenant,
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
    let credentials_path = context.root.map(credentials::path);
    let credentials = match &credentials_path {
        Some(path) => credentials::load(path)?,
        None => credentials::Credentials::default(),
    };
    let parse = |text: &str, from: Location| {
        super::api_url(text).map_err(|message| {
            Error::input(
                from,
                format!("api_url {message}"),
                "use the https:// address of the systemprompt API",
            )
        })
    };
    let env_token = context.vars.get("SYSTEMPROMPT_API_TOKEN").cloned();
    let env_url = match context.vars.get("SYSTEMPROMPT_API_URL") {
        Some(text) => {
            Some(parse(text.expose(), Location::named("environment variable SYSTEMPROMPT_API_URL"))?)
        }
        None => None,
    };
    // credentials.json's api_url is read only where it is used: as the address, or as the one
    // address its token may go to.
    let file_url = match (&credentials.api_url, &credentials_path) {
        (Some(text), Some(path))
            if (explicit.is_none() && env_url.is_none())
                || (env_token.is_none() && credentials.api_token.is_some()) =>
        {
            Some(parse(text, credentials::locate(path, "api_url"))?)
        }
        _ => None,
    };
    let default_url = parse(super::DEFAULT_API_URL, Location::named("the default API URL"))?;
    let (api_url, url_from) = match (explicit, &env_url, &file_url) {
        (Some(url), _, _) => (url, context.from),
        (None, Some(url), _) => (url.clone(), trust::From::Environment),
        (None, None, Some(url)) => (url.clone(), trust::From::CredentialsFile),
        (None, None, None) => (default_url.clone(), trust::From::Default),
    };
    let (token, token_from, paired) = match (env_token, credentials.api_token) {
        (Some(token), _) => (Some(token), trust::From::Environment, env_url.as_ref()),
        (None, Some(token)) => (Some(token), trust::From::CredentialsFile, file_url.as_ref()),
        (None, None) => (None, trust::From::Default, None),
    };
    if token.is_some() {
        super::check_destination(&trust::Destination {
            credential: "the API token",
            credential_from: token_from,
            address: &api_url,
            address_from: url_from,
            paired,
            default: Some(&default_url),
        })?;
    }
    Ok(std::sync::Arc::new(CloudSpec { api_url, tenant, token }))
}

/// A tenant at an API URL, and the API token.
#[derive(Debug)]
pub(super) struct CloudSpec {
    api_url: Url,
    tenant: String,
    token: Option<SecretValue>,
}

impl std::fmt::Display for CloudSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} tenant {}", self.api_url.as_str().trim_end_matches('/'), self.tenant)
    }
}

impl super::Spec for CloudSpec {
    fn open(&self, _: Access, connection: &Connection) -> Result<Box<dyn Backend>> {
        let backend =
            CloudBackend::new(self.api_url.clone(), self.tenant.clone(), self.token.clone(), connection)?;
        Ok(Box::new(backend))
    }

    fn record_key(&self) -> Option<String> {
        Some(format!("systemprompt-cloud {} {}", self.api_url, self.tenant))
    }
}

/// A tenant of the systemprompt cloud.
pub struct CloudBackend {
    api: Api,
    interrupted: crate::interrupt::Flag,
    parallelism: usize,
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
    transport: Transport,
    api_url: Url,
    tenant: String,
    token: SecretValue,
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

    /// Marks the failure as possibly carried out when an earlier request of the same write was.
    fn add_unknown(&mut self, unknown: bool) {
        if let Failure::Status { maybe_delivered, .. } | Failure::Transport { maybe_delivered, .. } = self {
            *maybe_delivered |= unknown;
        }
    }

    fn op(&self) -> Op {
        match self {
            Failure::Status { op, .. } | Failure::Transport { op, .. } | Failure::Unaddressable { op } => *op,
        }
    }
}

/// What a fresh listing says of a write whose outcome was unknown.
enum Settled {
    Landed,
    NotLanded,
    Unknown,
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
    pub fn new(
        api_url: Url,
        tenant: String,
        token: Option<SecretValue>,
        connection: &Connection,
    ) -> Result<Self> {
        let token = token.ok_or_else(|| {
            Error::config(
                "no API token for the systemprompt cloud",
                "log in (which writes .systemprompt/credentials.json), or set SYSTEMPROMPT_API_TOKEN",
            )
        })?;
        Ok(Self {
            api: Api {
                transport: Transport::new(&api_url, connection)?,
                api_url,
                tenant,
                token,
                access: tokio::sync::Mutex::new(None),
            },
            parallelism: connection.parallelism.max(1),
            interrupted: connection.interrupted.clone(),
        })
    }
}

impl Backend for CloudBackend {
    fn fetch(&mut self) -> Result<Remote> {
        let api = &self.api;
        api.transport.block_on(api.list()).map_err(|f| api.error(Op::List, &f))
    }

    fn apply(&mut self, base: &Remote, changes: &ChangeSet<'_>) -> Result<Applied> {
        let (api, parallelism) = (&self.api, self.parallelism);
        let interrupted = &self.interrupted;
        let requests = usize::from(!changes.upserts.is_empty()) + changes.deletes.len();
        let bar = if requests >= PROGRESS_MIN_REQUESTS {
            api.transport.diagnostics().progress(requests as u64)
        } else {
            None
        };
        let tick = bar.as_deref();
        let result = api.transport.block_on(async {
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
                    bar.advance();
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
                        bar.advance();
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
            bar.finish();
        }
        let mut failed = result?;
        failed.sort();
        // Interrupted only if the signal kept some request from being sent.
        let interrupted = failed.iter().any(|(_, why)| why == NOT_SENT);
        Ok(Applied { revision: None, failed, interrupted })
    }
}

/// How two listings differ, if they do: names added or gone, digests or `ETag` moved. Digests
/// under different salts cannot be compared, so a server that salts each listing anew is judged
/// by names and `ETag` alone.
fn listing_difference(base: &Remote, current: &Remote) -> Option<String> {
    let added = current.vars.keys().filter(|k| !base.vars.contains_key(k)).count();
    let gone = base.vars.keys().filter(|k| !current.vars.contains_key(k)).count();
    if added + gone > 0 {
        return Some(format!("{added} variable(s) appeared, {gone} disappeared"));
    }
    let changed = base.vars.iter().filter(|(k, v)| current.vars.get(k) != Some(v)).count();
    if changed > 0 && base.digest_salt == current.digest_salt {
        return Some(format!("{changed} value(s) changed"));
    }
    (base.etag != current.etag).then(|| "its ETag moved".to_owned())
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
        let answer = self.send(Op::List, Method::GET, self.secrets_url(), |r| r).await?;
        let malformed = |what: &'static str| Failure::Transport {
            op: Op::List,
            what,
            attempts: 1,
            maybe_delivered: false,
        };
        // An ETag that is not plain text cannot be sent back in If-Match; better to stop than to
        // write unconditionally.
        let etag = match answer.headers.get(reqwest::header::ETAG) {
            Some(value) => Some(
                value.to_str().map_err(|_| malformed("sent an ETag that cannot be sent back"))?.to_owned(),
            ),
            None => None,
        };
        let listing::Parsed { vars, salt, plain } = listing::parse(&answer.body)
            .map_err(|_| malformed("answered with a listing that is not the expected JSON"))?;
        // A body of the three members alone holds names and digests, no value. A large one
        // (megabytes for a hundred thousand variables) goes back with the process rather than
        // being zeroized and freed while the plan waits for the map. Any other body is zeroized
        // as it is dropped.
        if plain && answer.body.len() >= FORGOTTEN_FROM {
            std::mem::forget(answer);
        }
        Ok(Remote { vars, digest_salt: salt, revision: None, etag })
    }

    async fn put(&self, base: &Remote, changes: &ChangeSet<'_>) -> Result<()> {
        let body = Zeroizing::new(put_body(&changes.upserts));
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
        let failure = match outcome {
            Ok(_) => return Ok(()),
            Err(failure) => failure,
        };
        let stale_412 = matches!(failure, Failure::Status { status: StatusCode::PRECONDITION_FAILED, .. });
        if !failure.maybe_delivered() {
            return Err(if stale_412 {
                Error::Stale {
                    message: format!(
                        "{} changed between the last read and the write (412 Precondition Failed); nothing was \
                         written",
                        self.describe()
                    ),
                }
            } else {
                self.error(Op::Put, &failure)
            });
        }
        // An attempt may have been carried out (its answer lost, or a gateway's 5xx; a retry
        // then meets it as a 412): what the remote holds now tells.
        match self.settle(base, changes).await {
            Settled::Landed => Ok(()),
            Settled::NotLanded => Err(Error::Remote {
                message: format!(
                    "the write to {} failed ({}); the remote shows it was not made: nothing was written",
                    self.describe(),
                    self.failure_text(&failure)
                ),
                hint: Some("run the command again when the service answers".to_owned()),
            }),
            Settled::Unknown => Err(Error::Remote {
                message: format!(
                    "the outcome of the write to {} is unknown ({}); the remote cannot show whether it was made; \
                     no removals were sent",
                    self.describe(),
                    self.failure_text(&failure)
                ),
                hint: Some("run cloud-secrets plan to see where things stand, then apply again".to_owned()),
            }),
        }
    }

    /// Whether a PUT whose outcome is unknown was made, from a fresh listing: its digests show
    /// the values sent, or the listing is the one planned from; without digests, the names it
    /// adds are there or not (the PUT is one atomic write).
    async fn settle(&self, base: &Remote, changes: &ChangeSet<'_>) -> Settled {
        let Ok(now) = self.list().await else { return Settled::Unknown };
        if let Some(salt) = now.digest_salt.as_deref() {
            let digester = Digester::new(salt);
            let held = changes.upserts.iter().all(|(name, value)| {
                matches!(now.vars.get(name), Some(RemoteValue::Digest(d)) if d.is(&digester.tag(value)))
            });
            return match (held, listing_difference(base, &now)) {
                (true, _) => Settled::Landed,
                (false, None) => Settled::NotLanded,
                (false, Some(_)) => Settled::Unknown,
            };
        }
        let added: Vec<&str> = changes
            .upserts
            .iter()
            .map(|(name, _)| *name)
            .filter(|name| !base.vars.contains_key(name))
            .collect();
        match (added.is_empty(), added.iter().all(|name| now.vars.contains_key(name))) {
            (true, _) => Settled::Unknown,
            (false, true) => Settled::Landed,
            (false, false) if added.iter().all(|name| !now.vars.contains_key(name)) => Settled::NotLanded,
            (false, false) => Settled::Unknown,
        }
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
        let answer = self
            .attempt(Op::Exchange, Delivery::Read, || {
                let form = [
                    ("grant_type", GRANT_TYPE),
                    ("subject_token", self.token.expose()),
                    ("subject_token_type", SUBJECT_TOKEN_TYPE),
                    ("resource", resource.as_str()),
                    ("client_id", CLIENT_ID),
                ];
                self.transport.client().post(url.clone()).form(&form)
            })
            .await?;
        let not_a_token = Failure::Transport {
            op: Op::Exchange,
            what: "answered the token exchange with something other than a token",
            attempts: 1,
            maybe_delivered: false,
        };
        let body: TokenResponse = serde_json::from_slice(&answer.body).map_err(|_| not_a_token)?;
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
    ) -> Result<Answer, Failure> {
        let delivery = if method == Method::GET { Delivery::Read } else { Delivery::Write };
        let mut rejected: Option<SecretValue> = None;
        let mut unknown = false;
        loop {
            let token = match self.access_token(rejected.as_ref()).await {
                Ok(token) => token,
                Err(mut failure) => {
                    // An earlier attempt of this write may have been carried out.
                    failure.add_unknown(unknown);
                    return Err(failure);
                }
            };
            let build = || {
                let request = self.transport.client().request(method.clone(), url.clone());
                customize(request.bearer_auth(token.expose()))
            };
            match self.attempt(op, delivery, build).await {
                Err(Failure::Status { status: StatusCode::UNAUTHORIZED, maybe_delivered, .. })
                    if rejected.is_none() =>
                {
                    unknown |= maybe_delivered;
                    rejected = Some(token);
                }
                Err(mut failure) => {
                    failure.add_unknown(unknown);
                    return Err(failure);
                }
                Ok(answer) => return Ok(answer),
            }
        }
    }

    /// Sends a request on the transport; any answer other than 2xx is a [`Failure::Status`].
    async fn attempt(
        &self,
        op: Op,
        delivery: Delivery,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Answer, Failure> {
        let limit = if matches!(op, Op::List) { MAX_LISTING_BODY } else { MAX_ERROR_BODY };
        let call = Call { delivery, label: None, limit };
        match self.transport.send(call, build, |_, _, _| false).await {
            Ok(answer) if answer.status.is_success() => Ok(answer),
            Ok(answer) => {
                let code = serde_json::from_slice::<ErrorBody>(&answer.body)
                    .ok()
                    .and_then(|b| b.error.code)
                    .map(|code| printable_code(&code));
                Err(Failure::Status {
                    op,
                    status: answer.status,
                    code,
                    attempts: answer.attempts,
                    maybe_delivered: answer.unknown,
                })
            }
            Err(failure) => Err(Failure::Transport {
                op,
                what: failure.cause,
                attempts: failure.attempts,
                maybe_delivered: failure.unknown,
            }),
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

/// The server's error code, reduced to characters that cannot disturb a terminal.
fn printable_code(code: &str) -> String {
    code.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')).take(64).collect()
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

/// The body of a write: `{"secrets": {name: value, ...}}`, names sorted (the last value given
/// for a name wins), serialized straight from the values (no `serde_json::Value` copy of each)
/// into a buffer sized for them, so that it rarely grows and leaves a copy behind.
fn put_body(upserts: &[(&str, &SecretValue)]) -> Vec<u8> {
    #[derive(Serialize)]
    struct Body<'a> {
        secrets: Pairs<'a>,
    }
    /// Names and values, sorted, each name once: an object.
    struct Pairs<'a>(Vec<(&'a str, &'a str)>);
    impl Serialize for Pairs<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
            s.collect_map(self.0.iter().map(|(name, value)| (name, value)))
        }
    }
    let mut secrets: Vec<(&str, &str)> =
        upserts.iter().rev().map(|(name, value)| (*name, value.expose())).collect();
    // Stable: of a name given twice, the last given comes first, and is the one kept.
    secrets.sort_by(|a, b| a.0.cmp(b.0));
    secrets.dedup_by(|later, kept| later.0 == kept.0);
    // Names and values, their quotes, colons and commas, and the envelope; escapes may add more.
    let size = secrets.iter().map(|(name, value)| name.len() + value.len() + 6).sum::<usize>() + 16;
    let mut body = Vec::with_capacity(size + size / 8);
    serde_json::to_writer(&mut body, &Body { secrets: Pairs(secrets) }).expect("a map of strings serializes");
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::Digest;

    #[test]
    fn the_write_body_lists_names_sorted_the_last_value_given_winning() {
        let (a, b, c) = (SecretValue::new("1"), SecretValue::new("2\"q"), SecretValue::new("3"));
        let body = put_body(&[("B", &a), ("A", &b), ("B", &c)]);
        assert_eq!(String::from_utf8(body).unwrap(), r#"{"secrets":{"A":"2\"q","B":"3"}}"#);
        assert_eq!(String::from_utf8(put_body(&[])).unwrap(), r#"{"secrets":{}}"#);
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
                .map(|(k, d)| ((*k).to_owned(), RemoteValue::Digest(Digest::from_hex(&d.repeat(64)))))
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
