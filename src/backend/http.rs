//! The one transport of every network remote: one client builder, one runtime, one retry loop
//! (backoff with jitter, `Retry-After`), and a typed outcome for every request: an answer, a
//! failure that never reached the server, or one whose effect is unknown.
//!
//! A write is *unknown* once an attempt may have been carried out without its answer arriving:
//! a 5xx (a gateway can answer 502 or 504 after the origin committed), a timeout or a connection
//! dropped after the request went out. A refused connection, a name that does not resolve and an
//! explicit throttle (429, or the service's own throttling error) were not carried out.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{RequestBuilder, StatusCode};
use zeroize::Zeroizing;

use super::Connection;
use crate::diagnostics::{Diagnostics, RequestEntry};
use crate::error::{Error, Result};

/// The first backoff delay; it doubles on each retry, up to [`MAX_BACKOFF`].
const BASE_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// The longest `Retry-After` honoured; a server asking for more gets this.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// Whether a request changes the remote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Delivery {
    /// Reads only: an attempt that may have been carried out does no harm.
    Read,
    /// Changes the remote: an attempt that may have been carried out makes the outcome unknown
    /// until the remote is read again.
    Write,
}

/// One request: what it does, how it is shown in the `-vv` log, how much of its answer is read.
#[derive(Debug, Clone, Copy)]
pub(super) struct Call<'a> {
    /// Whether it changes the remote.
    pub delivery: Delivery,
    /// Shown in the log instead of the URL's path (AWS: the operation), if given.
    pub label: Option<&'a str>,
    /// The largest answer read, in bytes.
    pub limit: usize,
}

/// The answer to a request: a success, or an error status no further attempt was made after.
/// Not `Debug`: its body may hold values.
pub(super) struct Answer {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body (it may hold values: zeroized when dropped).
    pub body: Zeroizing<Vec<u8>>,
    /// How many attempts were made.
    pub attempts: u32,
    /// For a write: an earlier attempt, or this one (a 5xx), may have been carried out.
    pub unknown: bool,
}

/// A request that got no answer to act on.
#[derive(Debug, Clone)]
pub(super) struct Failure {
    /// What went wrong, in words ("did not answer in time").
    pub cause: &'static str,
    /// How many attempts were made.
    pub attempts: u32,
    /// For a write: some attempt may have been carried out.
    pub unknown: bool,
}

/// The client, the runtime it runs on, and the retry policy of one network remote.
pub(super) struct Transport {
    client: reqwest::Client,
    runtime: tokio::runtime::Runtime,
    retries: u32,
    diagnostics: Arc<dyn Diagnostics>,
}

impl Transport {
    /// A transport to `endpoint` with the connection's timeouts and retries.
    pub fn new(endpoint: &reqwest::Url, connection: &Connection) -> Result<Self> {
        Ok(Self {
            client: client(endpoint, connection)?,
            runtime: runtime()?,
            retries: connection.retries,
            diagnostics: connection.diagnostics.clone(),
        })
    }

    /// The client, to build requests with.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Where progress is reported.
    pub fn diagnostics(&self) -> &dyn Diagnostics {
        &*self.diagnostics
    }

    /// Runs `future` to completion: the engine stays synchronous.
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// Sends the request `build` makes, retrying what may succeed on another attempt (a failed
    /// connection, a timeout, 429, 5xx, and what `transient` says of an answer) with backoff,
    /// honouring `Retry-After`. Any final answer is returned, success or not.
    pub async fn send(
        &self,
        call: Call<'_>,
        build: impl Fn() -> RequestBuilder,
        transient: impl Fn(StatusCode, &HeaderMap, &[u8]) -> bool,
    ) -> std::result::Result<Answer, Failure> {
        let writes = call.delivery == Delivery::Write;
        let mut unknown = false;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let last = attempt > self.retries;
            let request = build().build().map_err(|_| Failure {
                cause: "could not be sent a well-formed request",
                attempts: attempt,
                unknown,
            })?;
            let (method, path) = (request.method().clone(), request.url().path().to_owned());
            let started = Instant::now();
            let sent = self.client.execute(request).await;
            let response = match sent {
                Ok(response) => {
                    Ok((response.status(), retry_after(&response), response.headers().clone(), response))
                }
                Err(e) => Err(e),
            };
            let read = match response {
                Ok((status, wait, headers, response)) => match read_body(response, call.limit).await {
                    Ok(body) => Ok((status, wait, headers, body)),
                    Err(e) => Err(e),
                },
                Err(e) => Err(Read::Transport(e)),
            };
            self.log(&method, call.label.unwrap_or(&path), &read, started.elapsed(), attempt);
            match read {
                Ok((status, wait, headers, body)) => {
                    let retry = status == StatusCode::TOO_MANY_REQUESTS
                        || status.is_server_error()
                        || transient(status, &headers, &body);
                    unknown |= writes && status.is_server_error();
                    if retry && !last {
                        tokio::time::sleep(wait.unwrap_or_else(|| backoff(attempt))).await;
                        continue;
                    }
                    return Ok(Answer { status, headers, body, attempts: attempt, unknown });
                }
                Err(Read::TooLarge) => {
                    // An answer came: a write was carried out or refused, which it says cannot
                    // be read.
                    unknown |= writes;
                    return Err(Failure {
                        cause: "sent an answer too large to read",
                        attempts: attempt,
                        unknown,
                    });
                }
                Err(Read::Transport(e)) => {
                    let (cause, retry) = transport_cause(&e);
                    // A connection that was never made carried nothing; any other failure may
                    // have come after the request went out.
                    unknown |= writes && !e.is_connect();
                    if retry && !last {
                        tokio::time::sleep(backoff(attempt)).await;
                        continue;
                    }
                    return Err(Failure { cause, attempts: attempt, unknown });
                }
            }
        }
    }

    fn log(
        &self,
        method: &reqwest::Method,
        path: &str,
        read: &std::result::Result<Received, Read>,
        took: Duration,
        attempt: u32,
    ) {
        if !self.diagnostics.logs_requests() {
            return;
        }
        let outcome = match read {
            Ok((status, ..)) => status.as_u16().to_string(),
            Err(Read::Transport(e)) if e.is_timeout() => "timed out".to_owned(),
            Err(_) => "no answer".to_owned(),
        };
        let path = crate::render::text::safe(path);
        let entry = RequestEntry { method: method.as_str(), path: &path, outcome: &outcome, took, attempt };
        self.diagnostics.request(&entry);
    }
}

/// An answer as read: status, `Retry-After`, `ETag`, body.
type Received = (StatusCode, Option<Duration>, HeaderMap, Zeroizing<Vec<u8>>);

/// Why an answer could not be read.
enum Read {
    Transport(reqwest::Error),
    TooLarge,
}

/// The HTTP client of every network remote: the connection's timeouts, no redirects, and no
/// proxy for plain `http://` (allowed to loopback only: a proxy would carry credentials across
/// the network in clear; over HTTPS a proxy sees only an encrypted tunnel).
fn client(endpoint: &reqwest::Url, connection: &Connection) -> Result<reqwest::Client> {
    // reqwest is built without a default crypto provider; ring is the one linked in.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder();
    if endpoint.scheme() == "http" {
        // Plain HTTP, which only a loopback address is allowed: no certificate is ever checked,
        // so the system's (some hundred, read from disk) are not loaded.
        builder = builder.no_proxy().tls_certs_only([]);
    }
    builder
        .timeout(connection.timeout)
        .connect_timeout(connection.timeout.min(Duration::from_secs(10)))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("cloud-secrets/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| {
            Error::config(format!("cannot set up the HTTP client: {e}"), "this is a bug; please report it")
        })
}

/// The current-thread runtime a network backend blocks on, so that the engine stays synchronous.
fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| {
        Error::config(format!("cannot start the async runtime: {e}"), "this is a bug; please report it")
    })
}

/// What a request's transport failure was, in words, and whether trying again can help: a host
/// name that does not resolve will not resolve on the next attempt.
pub(crate) fn transport_cause(e: &reqwest::Error) -> (&'static str, bool) {
    if e.is_timeout() {
        return ("did not answer in time", true);
    }
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(error) = source {
        if let Some(io) = error.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            return ("refused the connection (nothing listens at that address and port)", true);
        }
        let text = error.to_string();
        if text.contains("dns error") || text.contains("failed to lookup address") {
            return ("could not be found: its host name does not resolve (DNS)", false);
        }
        source = error.source();
    }
    if e.is_connect() {
        ("could not be reached", true)
    } else {
        ("closed the connection without an answer", true)
    }
}

/// The most a response body's buffer is sized to before its bytes arrive.
const PRESIZED_AT_MOST: usize = 32 * 1024 * 1024;

/// Reads a response body of at most `limit` bytes.
async fn read_body(
    mut response: reqwest::Response,
    limit: usize,
) -> std::result::Result<Zeroizing<Vec<u8>>, Read> {
    // Sized once from the announced length, up to a bound (a length announced but not sent must
    // not reserve the whole limit, which is zeroized on drop): a buffer grown chunk by chunk
    // leaves copies of its earlier contents behind, freed without being zeroized.
    let announced = response.content_length().map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX));
    let mut body = Zeroizing::new(Vec::with_capacity(announced.min(limit).min(PRESIZED_AT_MOST)));
    while let Some(chunk) = response.chunk().await.map_err(Read::Transport)? {
        if body.len() + chunk.len() > limit {
            return Err(Read::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// `Retry-After`, in seconds or as an HTTP date, capped.
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
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
fn backoff(attempt: u32) -> Duration {
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
        for attempt in 1..=20 {
            let ceiling = BASE_BACKOFF.saturating_mul(1 << (attempt - 1).min(16)).min(MAX_BACKOFF);
            let wait = backoff(attempt);
            assert!(wait >= ceiling / 2 && wait <= ceiling, "attempt {attempt}: {wait:?}");
        }
    }
}
