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
