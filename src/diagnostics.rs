//! Where a network backend reports what it is doing: the `-vv` request log and the progress of a
//! long apply. The shell hands a [`Diagnostics`] in (main's writes to stderr); no backend touches
//! a stream itself.

use std::time::Duration;

/// One request to a network remote, as the `-vv` log shows it: never a header or a body.
#[derive(Debug, Clone, Copy)]
pub struct RequestEntry<'a> {
    /// The HTTP method.
    pub method: &'a str,
    /// The path (tenant and variable names only), or for AWS the operation.
    pub path: &'a str,
    /// The status, or why there was none (`timed out`, `no answer`).
    pub outcome: &'a str,
    /// How long the attempt took.
    pub took: Duration,
    /// Which attempt of the request it was (1 for the first).
    pub attempt: u32,
}

/// The progress of an apply's requests.
pub trait Progress: Send + Sync {
    /// One more request is done.
    fn advance(&self);
    /// The apply is over: remove the progress display.
    fn finish(&self);
}

/// Where backends report.
pub trait Diagnostics: Send + Sync {
    /// Whether requests are logged (`-vv`); when false, [`Diagnostics::request`] is not called.
    fn logs_requests(&self) -> bool;
    /// Logs one request.
    fn request(&self, entry: &RequestEntry<'_>);
    /// A progress display for `total` requests, or `None` where none is drawn.
    fn progress(&self, total: u64) -> Option<Box<dyn Progress>>;
}

/// Keeps the request log of work done on another thread, to be written where that work's result
/// is taken up: the log then reads in the order the command's other messages do.
pub struct Deferred {
    inner: std::sync::Arc<dyn Diagnostics>,
    kept: std::sync::Mutex<Vec<Kept>>,
}

/// One request kept by [`Deferred`].
struct Kept {
    method: String,
    path: String,
    outcome: String,
    took: Duration,
    attempt: u32,
}

impl Deferred {
    /// Keeps what would go to `inner`.
    pub fn new(inner: std::sync::Arc<dyn Diagnostics>) -> Self {
        Self { inner, kept: std::sync::Mutex::new(Vec::new()) }
    }

    /// Writes the kept log to the diagnostics it was made for, and empties it.
    pub fn replay(&self) {
        let kept = std::mem::take(&mut *self.kept.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        for k in kept {
            self.inner.request(&RequestEntry {
                method: &k.method,
                path: &k.path,
                outcome: &k.outcome,
                took: k.took,
                attempt: k.attempt,
            });
        }
    }
}

impl Diagnostics for Deferred {
    fn logs_requests(&self) -> bool {
        self.inner.logs_requests()
    }

    fn request(&self, entry: &RequestEntry<'_>) {
        let kept = Kept {
            method: entry.method.to_owned(),
            path: entry.path.to_owned(),
            outcome: entry.outcome.to_owned(),
            took: entry.took,
            attempt: entry.attempt,
        };
        self.kept.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(kept);
    }

    /// A read draws no progress display.
    fn progress(&self, _: u64) -> Option<Box<dyn Progress>> {
        None
    }
}

/// Reports nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Diagnostics for Silent {
    fn logs_requests(&self) -> bool {
        false
    }

    fn request(&self, _: &RequestEntry<'_>) {}

    fn progress(&self, _: u64) -> Option<Box<dyn Progress>> {
        None
    }
}
