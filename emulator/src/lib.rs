//! An emulator of the systemprompt cloud secrets API, served over real HTTP on 127.0.0.1.
//!
//! It speaks the API as the product brief describes it: the RFC 8693 token exchange, bearer
//! checks (401 for a bad or expired token, 403 for a tenant the token may not touch, 404 for an
//! unknown tenant), the secrets listing in both modes (names only; names with HMAC-SHA256
//! digests, the salt and an `ETag`), a merging `PUT` honouring `If-Match` (412), and `DELETE` of
//! one key. State is kept per tenant. Every request is logged, and faults can be injected by
//! request number: an error status (with `Retry-After`), a delay, or a dropped connection.
//!
//! Tests start one emulator each with [`Emulator::start`]; `cloud-secrets-emulator` runs one by
//! hand.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, RETRY_AFTER};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

/// The `client_id` the platform's clients present in the token exchange.
pub const CLIENT_ID: &str = "sp_web";
/// The token-exchange grant type (RFC 8693).
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// The subject token type the platform's clients present.
pub const SUBJECT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// The `SYSTEMPROMPT_API_TOKEN` that [`Emulator::deploy`] writes.
pub const DEPLOY_API_TOKEN: &str = "sp-emulated-deploy-token";
/// The `SYSTEMPROMPT_USER_EMAIL` that [`Emulator::deploy`] writes.
pub const DEPLOY_USER_EMAIL: &str = "deploy@example.com";
/// The `SIGNING_KEY_PEM` that [`Emulator::deploy`] writes when the profile has none: base64 of
/// a fake PEM (`-----BEGIN PRIVATE KEY-----\nemulator\n-----END PRIVATE KEY-----\n`).
pub const DEPLOY_SIGNING_KEY_PEM: &str =
    "LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0tCmVtdWxhdG9yCi0tLS0tRU5EIFBSSVZBVEUgS0VZLS0tLS0K";

/// Names the platform's deploy never writes from a profile (compared case-insensitively).
const SYSTEM_MANAGED: [&str; 2] = ["FLY_APP_NAME", "FLY_MACHINE_ID"];
/// Names the platform's deploy leaves out of `SYSTEMPROMPT_CUSTOM_SECRETS`.
const NOT_CUSTOM: [&str; 6] = [
    "OAUTH_AT_REST_PEPPER",
    "DATABASE_URL",
    "GEMINI_API_KEY",
    "ANTHROPIC_API_KEY",
    "OPENAI_API_KEY",
    "GITHUB_TOKEN",
];

const MAX_BODY_BYTES: usize = 256 * 1024 * 1024;

/// What the secrets listing returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    /// `{"keys": [...]}` and no `ETag`, as the real service does today.
    NamesOnly,
    /// Names, `digests`, `digest_salt` and an `ETag`.
    Digests,
}

/// A fault injected into one request, chosen by its number (the first request is 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status and an error body, without processing the request.
    Status {
        /// The HTTP status.
        status: u16,
        /// A `Retry-After` header, in seconds.
        retry_after: Option<u64>,
    },
    /// Process the request, then wait this long before answering: past the client's timeout,
    /// the request takes effect but its answer is lost.
    Delay(Duration),
    /// Close the connection without answering and without processing the request.
    Drop,
    /// Process the request, then close the connection without answering.
    Lost,
}

/// One request as the emulator received it.
#[derive(Debug, Clone)]
pub struct LoggedRequest {
    /// Its number (1-based).
    pub n: usize,
    /// The method.
    pub method: String,
    /// The path and query.
    pub path: String,
    /// Every header, in order.
    pub headers: Vec<(String, String)>,
    /// The body, as text (lossily).
    pub body: String,
    /// The fault injected into it, if any.
    pub fault: Option<Fault>,
}

impl LoggedRequest {
    /// The value of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Default)]
struct Tenant {
    secrets: BTreeMap<String, String>,
    version: u64,
}

#[derive(Debug, Clone)]
enum Grant {
    All,
    Tenants(Vec<String>),
}

#[derive(Debug)]
struct State {
    listing: Listing,
    salt: Vec<u8>,
    expires_in: u64,
    tenants: BTreeMap<String, Tenant>,
    grants: HashMap<String, Grant>,
    access: HashMap<String, (String, Instant)>,
    faults: HashMap<usize, Fault>,
    count: usize,
    log: Vec<LoggedRequest>,
    quiet: bool,
    latency: Duration,
    in_flight: usize,
    max_in_flight: usize,
}

/// A running emulator. Dropping it stops the server.
pub struct Emulator {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Emulator {
    /// Starts an emulator on an ephemeral port of 127.0.0.1, in names-only listing mode.
    pub fn start() -> Self {
        Self::start_on(0, true)
    }

    /// Starts an emulator on `port` of 127.0.0.1 (0 for any). With `quiet` off, one line per
    /// request (method, path, status; never a header or body) goes to stdout.
    pub fn start_on(port: u16, quiet: bool) -> Self {
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind 127.0.0.1");
        listener.set_nonblocking(true).expect("non-blocking listener");
        let addr = listener.local_addr().expect("local address");
        let state = Arc::new(Mutex::new(State {
            listing: Listing::NamesOnly,
            salt: random_bytes(16),
            expires_in: 300,
            tenants: BTreeMap::new(),
            grants: HashMap::new(),
            access: HashMap::new(),
            faults: HashMap::new(),
            count: 0,
            log: Vec::new(),
            quiet,
            latency: Duration::ZERO,
            in_flight: 0,
            max_in_flight: 0,
        }));
        let (tx, rx) = tokio::sync::oneshot::channel();
        let served = Arc::clone(&state);
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("tokio runtime");
            runtime.block_on(serve(listener, served, rx));
            runtime.shutdown_background();
        });
        Self { addr, state, shutdown: Some(tx), thread: Some(thread) }
    }

    /// The base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Chooses the listing mode.
    pub fn set_listing(&self, listing: Listing) {
        self.state().listing = listing;
    }

    /// Sets the `expires_in` of the access tokens it issues.
    pub fn set_expires_in(&self, seconds: u64) {
        self.state().expires_in = seconds;
    }

    /// Accepts `api_token` in the token exchange, for every tenant.
    pub fn grant_all(&self, api_token: &str) {
        self.state().grants.insert(api_token.to_owned(), Grant::All);
    }

    /// Accepts `api_token` in the token exchange, for these tenants only.
    pub fn grant(&self, api_token: &str, tenants: &[&str]) {
        let tenants = tenants.iter().map(|t| (*t).to_owned()).collect();
        self.state().grants.insert(api_token.to_owned(), Grant::Tenants(tenants));
    }

    /// Creates a tenant (if needed) holding exactly these secrets.
    pub fn set_secrets(&self, tenant: &str, secrets: &[(&str, &str)]) {
        let mut state = self.state();
        let t = state.tenants.entry(tenant.to_owned()).or_default();
        t.secrets = secrets.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        t.version += 1;
    }

    /// Writes `secrets_json` (the text of a profile's `secrets.json`) to `tenant` as the
    /// platform's `cloud deploy` step does, creating the tenant if needed.
    ///
    /// Of the top-level entries, only those whose value is a non-empty string are kept; each is
    /// named as the platform names it (`gemini`, `anthropic` and `openai` become
    /// `GEMINI_API_KEY`, `ANTHROPIC_API_KEY` and `OPENAI_API_KEY`; `internal_database_url`
    /// becomes `DATABASE_URL`, and `database_url` does too unless `internal_database_url` is
    /// kept, in which case it is dropped; any other key is upper-cased) and the system-managed
    /// `FLY_APP_NAME` and `FLY_MACHINE_ID` are skipped. `SYSTEMPROMPT_CUSTOM_SECRETS` lists the
    /// resulting names other than the platform's own (`OAUTH_AT_REST_PEPPER`, `DATABASE_URL`,
    /// the three provider keys and `GITHUB_TOKEN`), comma-separated in *reverse* sorted order
    /// (the platform promises no order; this one is deliberately not sorted), and is written
    /// only when that list is not empty. `SIGNING_KEY_PEM` ([`DEPLOY_SIGNING_KEY_PEM`]) is added
    /// when the profile has none, and `SYSTEMPROMPT_API_TOKEN` ([`DEPLOY_API_TOKEN`]),
    /// `SYSTEMPROMPT_USER_EMAIL` ([`DEPLOY_USER_EMAIL`]), `SYSTEMPROMPT_CLI_REMOTE` (`true`) and
    /// `SYSTEMPROMPT_PROFILE` (`/app/services/profiles/<profile_name>/profile.yaml`) always are.
    ///
    /// Everything is merged in as one `PUT` merges: other keys are kept, nothing is deleted, and
    /// the version (and `ETag`) grows by one. Like [`Emulator::set_secrets`], it is a side
    /// channel: no request is counted or logged and no fault applies.
    ///
    /// # Panics
    ///
    /// If `secrets_json` is not a JSON object.
    pub fn deploy(&self, tenant: &str, profile_name: &str, secrets_json: &str) {
        let updates = deploy_secrets(profile_name, secrets_json);
        let mut state = self.state();
        merge(state.tenants.entry(tenant.to_owned()).or_default(), updates);
    }

    /// A tenant's secrets, or `None` if there is no such tenant.
    pub fn secrets(&self, tenant: &str) -> Option<BTreeMap<String, String>> {
        self.state().tenants.get(tenant).map(|t| t.secrets.clone())
    }

    /// A tenant's version (it grows on every write).
    pub fn version(&self, tenant: &str) -> Option<u64> {
        self.state().tenants.get(tenant).map(|t| t.version)
    }

    /// Injects a fault into the `n`th request from now on counted since start (1-based).
    pub fn inject(&self, n: usize, fault: Fault) {
        self.state().faults.insert(n, fault);
    }

    /// Makes every request take at least this long.
    pub fn set_latency(&self, latency: Duration) {
        self.state().latency = latency;
    }

    /// The most requests that were being handled at the same time.
    pub fn max_in_flight(&self) -> usize {
        self.state().max_in_flight
    }

    /// Forgets every access token issued, as if they had all expired.
    pub fn expire_access_tokens(&self) {
        self.state().access.clear();
    }

    /// Every request received so far.
    pub fn log(&self) -> Vec<LoggedRequest> {
        self.state().log.clone()
    }

    /// The number of requests received so far.
    pub fn request_count(&self) -> usize {
        self.state().count
    }

    /// Forgets the request log and the count (faults are numbered from the next request on).
    pub fn reset_log(&self) {
        let mut state = self.state();
        state.log.clear();
        state.count = 0;
        state.faults.clear();
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve(
    listener: std::net::TcpListener,
    state: Arc<Mutex<State>>,
    mut shutdown: tokio::sync::oneshot::Receiver<()>,
) {
    let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let state = Arc::clone(&state);
                tokio::spawn(async move {
                    let service = service_fn(move |req| handle(Arc::clone(&state), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            _ = &mut shutdown => break,
        }
    }
}

/// The error that makes hyper close the connection without an answer.
#[derive(Debug)]
struct DropConnection;

impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by an injected fault")
    }
}

impl std::error::Error for DropConnection {}

type Reply = Response<Full<Bytes>>;

async fn handle(state: Arc<Mutex<State>>, req: Request<Incoming>) -> Result<Reply, DropConnection> {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Ok(error(StatusCode::PAYLOAD_TOO_LARGE, "too_large", "the body is too large")),
    };
    let path =
        parts.uri.path_and_query().map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned());
    let (fault, latency) = {
        let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
        s.count += 1;
        s.in_flight += 1;
        s.max_in_flight = s.max_in_flight.max(s.in_flight);
        let n = s.count;
        let fault = s.faults.remove(&n);
        let headers = parts
            .headers
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        s.log.push(LoggedRequest {
            n,
            method: parts.method.to_string(),
            path: path.clone(),
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
            fault: fault.clone(),
        });
        (fault, s.latency)
    };
    let reply = answer(&state, fault, latency, &parts, &path, &body).await;
    state.lock().unwrap_or_else(|e| e.into_inner()).in_flight -= 1;
    reply
}

async fn answer(
    state: &Mutex<State>,
    fault: Option<Fault>,
    latency: Duration,
    parts: &hyper::http::request::Parts,
    path: &str,
    body: &[u8],
) -> Result<Reply, DropConnection> {
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    match fault {
        Some(Fault::Drop) => return Err(DropConnection),
        Some(Fault::Status { status, retry_after }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut reply = error(status, "injected", "an injected fault");
            if let Some(seconds) = retry_after {
                reply.headers_mut().insert(RETRY_AFTER, HeaderValue::from(seconds));
            }
            return Ok(trace(state, &parts.method, path, reply));
        }
        Some(Fault::Delay(delay)) => {
            // A slow server: the request takes effect now, the answer comes late (and is lost
            // if the client has given up by then).
            let reply = route(state, parts, body);
            tokio::time::sleep(delay).await;
            return Ok(trace(state, &parts.method, path, reply));
        }
        Some(Fault::Lost) => {
            route(state, parts, body);
            return Err(DropConnection);
        }
        None => {}
    }
    let reply = route(state, parts, body);
    Ok(trace(state, &parts.method, path, reply))
}

fn trace(state: &Mutex<State>, method: &Method, path: &str, reply: Reply) -> Reply {
    if !state.lock().unwrap_or_else(|e| e.into_inner()).quiet {
        println!("{method} {path} -> {}", reply.status().as_u16());
    }
    reply
}

fn route(state: &Mutex<State>, parts: &hyper::http::request::Parts, body: &[u8]) -> Reply {
    let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
    let path = parts.uri.path();
    if path == "/api/v1/core/oauth/token" {
        return if parts.method == Method::POST {
            exchange(&mut s, body)
        } else {
            error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "use POST")
        };
    }
    let Some(rest) = path.strip_prefix("/api/v1/tenants/") else {
        return error(StatusCode::NOT_FOUND, "not_found", "no such route");
    };
    let segments: Vec<&str> = rest.split('/').collect();
    let (tenant, key) = match segments.as_slice() {
        [tenant, "secrets"] => (*tenant, None),
        [tenant, "secrets", key] if !key.is_empty() => (*tenant, Some(*key)),
        _ => return error(StatusCode::NOT_FOUND, "not_found", "no such route"),
    };
    if let Some(refusal) = authorize(&s, parts, tenant) {
        return refusal;
    }
    match (&parts.method, key) {
        (&Method::GET, None) => list(&s, tenant),
        (&Method::PUT, None) => put(&mut s, tenant, parts, body),
        (&Method::DELETE, Some(key)) => delete(&mut s, tenant, key),
        _ => error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "unsupported method"),
    }
}

fn exchange(s: &mut State, body: &[u8]) -> Reply {
    let form: HashMap<String, String> = match serde_urlencoded::from_bytes(body) {
        Ok(form) => form,
        Err(_) => return error(StatusCode::BAD_REQUEST, "invalid_request", "the body is not a form"),
    };
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    if field("grant_type") != GRANT_TYPE
        || field("subject_token_type") != SUBJECT_TOKEN_TYPE
        || field("client_id") != CLIENT_ID
        || field("resource").is_empty()
    {
        return error(StatusCode::BAD_REQUEST, "invalid_request", "not a token exchange this server accepts");
    }
    let subject = field("subject_token").to_owned();
    if !s.grants.contains_key(&subject) {
        return error(StatusCode::UNAUTHORIZED, "invalid_token", "the subject token is not valid");
    }
    let access_token = format!("at_{}", hex::encode(random_bytes(24)));
    let expires = Instant::now() + Duration::from_secs(s.expires_in);
    s.access.insert(access_token.clone(), (subject, expires));
    json_reply(
        StatusCode::OK,
        &json!({"access_token": access_token, "expires_in": s.expires_in, "token_type": "Bearer"}),
    )
}

/// The refusal for a request that may not touch `tenant`, if it may not.
fn authorize(s: &State, parts: &hyper::http::request::Parts, tenant: &str) -> Option<Reply> {
    let bearer = parts
        .headers
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let Some((subject, expires)) = bearer.and_then(|token| s.access.get(token)) else {
        return Some(error(StatusCode::UNAUTHORIZED, "unauthenticated", "missing or unknown access token"));
    };
    if Instant::now() >= *expires {
        return Some(error(StatusCode::UNAUTHORIZED, "token_expired", "the access token has expired"));
    }
    let allowed = match s.grants.get(subject) {
        Some(Grant::All) => true,
        Some(Grant::Tenants(tenants)) => tenants.iter().any(|t| t == tenant),
        None => false,
    };
    if !allowed {
        return Some(error(StatusCode::FORBIDDEN, "forbidden", "no permission on this tenant"));
    }
    if !s.tenants.contains_key(tenant) {
        return Some(error(StatusCode::NOT_FOUND, "tenant_not_found", "no such tenant"));
    }
    None
}

fn etag(version: u64) -> String {
    format!("\"v{version}\"")
}

fn list(s: &State, tenant: &str) -> Reply {
    let t = &s.tenants[tenant];
    let keys: Vec<&String> = t.secrets.keys().collect();
    match s.listing {
        Listing::NamesOnly => json_reply(StatusCode::OK, &json!({ "keys": keys })),
        Listing::Digests => {
            let digests: BTreeMap<&String, String> =
                t.secrets.iter().map(|(k, v)| (k, digest(&s.salt, v))).collect();
            let mut reply = json_reply(
                StatusCode::OK,
                &json!({ "keys": keys, "digests": digests, "digest_salt": hex::encode(&s.salt) }),
            );
            reply.headers_mut().insert(hyper::header::ETAG, HeaderValue::from_str(&etag(t.version)).unwrap());
            reply
        }
    }
}

fn put(s: &mut State, tenant: &str, parts: &hyper::http::request::Parts, body: &[u8]) -> Reply {
    let listing = s.listing;
    let t = s.tenants.get_mut(tenant).expect("authorized tenant exists");
    if let Some(expected) = parts.headers.get(hyper::header::IF_MATCH).and_then(|v| v.to_str().ok())
        && expected != etag(t.version)
        && expected != "*"
    {
        return error(
            StatusCode::PRECONDITION_FAILED,
            "precondition_failed",
            "the secrets changed meanwhile",
        );
    }
    let parsed: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(_) => return error(StatusCode::BAD_REQUEST, "invalid_json", "the body is not JSON"),
    };
    let Some(secrets) = parsed.get("secrets").and_then(Value::as_object) else {
        return error(StatusCode::BAD_REQUEST, "invalid_body", "expected {\"secrets\": {...}}");
    };
    let mut updates = Vec::with_capacity(secrets.len());
    for (name, value) in secrets {
        let Some(value) = value.as_str() else {
            return error(StatusCode::BAD_REQUEST, "invalid_body", "every value must be a string");
        };
        if name.is_empty() {
            return error(StatusCode::BAD_REQUEST, "invalid_body", "a name is empty");
        }
        updates.push((name.clone(), value.to_owned()));
    }
    let count = updates.len();
    merge(t, updates);
    let mut reply = json_reply(StatusCode::OK, &json!({ "updated": count }));
    if listing == Listing::Digests {
        reply.headers_mut().insert(hyper::header::ETAG, HeaderValue::from_str(&etag(t.version)).unwrap());
    }
    reply
}

/// Merges `updates` into a tenant's secrets (keeping every other key) and bumps its version, as
/// one `PUT` does.
fn merge(t: &mut Tenant, updates: impl IntoIterator<Item = (String, String)>) {
    t.secrets.extend(updates);
    t.version += 1;
}

/// The secrets the platform's deploy step writes for a profile's `secrets.json`.
fn deploy_secrets(profile_name: &str, secrets_json: &str) -> BTreeMap<String, String> {
    let parsed: Value = serde_json::from_str(secrets_json)
        .unwrap_or_else(|e| panic!("deploy: secrets.json is not JSON: {e}"));
    let Value::Object(entries) = parsed else {
        panic!("deploy: secrets.json is not a JSON object");
    };
    let kept: Vec<(&String, &str)> =
        entries.iter().filter_map(|(k, v)| v.as_str().filter(|v| !v.is_empty()).map(|v| (k, v))).collect();
    let has_internal_db = kept.iter().any(|(k, _)| *k == "internal_database_url");
    let mut secrets = BTreeMap::new();
    for (key, value) in kept {
        let name = match key.as_str() {
            "gemini" => "GEMINI_API_KEY".to_owned(),
            "anthropic" => "ANTHROPIC_API_KEY".to_owned(),
            "openai" => "OPENAI_API_KEY".to_owned(),
            "internal_database_url" => "DATABASE_URL".to_owned(),
            "database_url" if has_internal_db => continue,
            "database_url" => "DATABASE_URL".to_owned(),
            other => other.to_uppercase(),
        };
        if SYSTEM_MANAGED.iter().any(|m| m.eq_ignore_ascii_case(&name)) {
            continue;
        }
        secrets.insert(name, value.to_owned());
    }
    let custom: Vec<&str> =
        secrets.keys().rev().map(String::as_str).filter(|n| !NOT_CUSTOM.contains(n)).collect();
    if !custom.is_empty() {
        let custom = custom.join(",");
        secrets.insert("SYSTEMPROMPT_CUSTOM_SECRETS".to_owned(), custom);
    }
    secrets.entry("SIGNING_KEY_PEM".to_owned()).or_insert_with(|| DEPLOY_SIGNING_KEY_PEM.to_owned());
    secrets.insert("SYSTEMPROMPT_API_TOKEN".to_owned(), DEPLOY_API_TOKEN.to_owned());
    secrets.insert("SYSTEMPROMPT_USER_EMAIL".to_owned(), DEPLOY_USER_EMAIL.to_owned());
    secrets.insert("SYSTEMPROMPT_CLI_REMOTE".to_owned(), "true".to_owned());
    secrets.insert(
        "SYSTEMPROMPT_PROFILE".to_owned(),
        format!("/app/services/profiles/{profile_name}/profile.yaml"),
    );
    secrets
}

fn delete(s: &mut State, tenant: &str, key: &str) -> Reply {
    let t = s.tenants.get_mut(tenant).expect("authorized tenant exists");
    if t.secrets.remove(key).is_none() {
        return error(StatusCode::NOT_FOUND, "secret_not_found", "no such secret");
    }
    t.version += 1;
    Response::builder().status(StatusCode::NO_CONTENT).body(Full::new(Bytes::new())).unwrap()
}

fn error(status: StatusCode, code: &str, message: &str) -> Reply {
    json_reply(status, &json!({"error": {"code": code, "message": message}}))
}

fn json_reply(status: StatusCode, body: &Value) -> Reply {
    Response::builder()
        .status(status)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

/// Hex HMAC-SHA256 of `value` keyed with `salt`, as the listing's `digests` carry.
pub fn digest(salt: &[u8], value: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, salt);
    hex::encode(ring::hmac::sign(&key, value.as_bytes()))
}

fn random_bytes(n: usize) -> Vec<u8> {
    use ring::rand::SecureRandom;
    let mut bytes = vec![0u8; n];
    ring::rand::SystemRandom::new().fill(&mut bytes).expect("system randomness");
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deploy_writes_as_the_platform_does() {
        let emulator = Emulator::start();
        emulator.set_secrets("t1", &[("UNRELATED", "kept")]);
        let before = emulator.version("t1").unwrap();
        emulator.deploy(
            "t1",
            "prod",
            r#"{
                "oauth_at_rest_pepper": "pepper",
                "database_url": "postgres://external",
                "internal_database_url": "postgres://internal",
                "github": "gh",
                "moonshot": "moon",
                "jwt_secret": "jwt",
                "gemini": "",
                "openai": null,
                "fly_app_name": "app"
            }"#,
        );
        let secrets = emulator.secrets("t1").unwrap();
        assert_eq!(emulator.version("t1"), Some(before + 1), "one write, as one PUT");
        assert_eq!(secrets["UNRELATED"], "kept");
        assert_eq!(secrets["DATABASE_URL"], "postgres://internal");
        assert_eq!(secrets["OAUTH_AT_REST_PEPPER"], "pepper");
        assert_eq!(secrets["GITHUB"], "gh");
        assert_eq!(secrets["MOONSHOT"], "moon");
        assert_eq!(secrets["JWT_SECRET"], "jwt");
        for absent in ["GEMINI_API_KEY", "OPENAI_API_KEY", "FLY_APP_NAME"] {
            assert!(!secrets.contains_key(absent), "{absent} should not be written");
        }
        let custom = &secrets["SYSTEMPROMPT_CUSTOM_SECRETS"];
        let listed: Vec<&str> = custom.split(',').collect();
        let set: std::collections::BTreeSet<&str> = listed.iter().copied().collect();
        assert_eq!(set, ["GITHUB", "JWT_SECRET", "MOONSHOT"].into_iter().collect());
        assert_eq!(listed.len(), set.len());
        let mut sorted = listed.clone();
        sorted.sort_unstable();
        assert_ne!(listed, sorted, "the list should not come sorted");
        assert_eq!(secrets["SIGNING_KEY_PEM"], DEPLOY_SIGNING_KEY_PEM);
        assert_eq!(secrets["SYSTEMPROMPT_API_TOKEN"], DEPLOY_API_TOKEN);
        assert_eq!(secrets["SYSTEMPROMPT_USER_EMAIL"], DEPLOY_USER_EMAIL);
        assert_eq!(secrets["SYSTEMPROMPT_CLI_REMOTE"], "true");
        assert_eq!(secrets["SYSTEMPROMPT_PROFILE"], "/app/services/profiles/prod/profile.yaml");
        assert_eq!(emulator.request_count(), 0);
    }

    #[test]
    fn deploy_creates_the_tenant_and_keeps_a_profile_signing_key() {
        let emulator = Emulator::start();
        emulator.deploy("t2", "dev", r#"{"database_url": "postgres://db", "signing_key_pem": "mine"}"#);
        let secrets = emulator.secrets("t2").unwrap();
        assert_eq!(emulator.version("t2"), Some(1));
        assert_eq!(secrets["DATABASE_URL"], "postgres://db");
        assert_eq!(secrets["SIGNING_KEY_PEM"], "mine");
        assert_eq!(secrets["SYSTEMPROMPT_CUSTOM_SECRETS"], "SIGNING_KEY_PEM");
    }

    #[test]
    #[should_panic(expected = "not JSON")]
    fn deploy_rejects_text_that_is_not_json() {
        Emulator::start().deploy("t3", "dev", "not json");
    }
}
