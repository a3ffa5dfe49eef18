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
    let access_token = format!("at_{}", hex(&random_bytes(24)));
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
                &json!({ "keys": keys, "digests": digests, "digest_salt": hex(&s.salt) }),
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
    t.secrets.extend(updates);
    t.version += 1;
    let mut reply = json_reply(StatusCode::OK, &json!({ "updated": count }));
    if listing == Listing::Digests {
        reply.headers_mut().insert(hyper::header::ETAG, HeaderValue::from_str(&etag(t.version)).unwrap());
    }
    reply
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
    hex(ring::hmac::sign(&key, value.as_bytes()).as_ref())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn random_bytes(n: usize) -> Vec<u8> {
    use ring::rand::SecureRandom;
    let mut bytes = vec![0u8; n];
    ring::rand::SystemRandom::new().fill(&mut bytes).expect("system randomness");
    bytes
}
