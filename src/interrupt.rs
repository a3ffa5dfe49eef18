//! SIGINT and SIGTERM while an apply writes: the first signal lets the requests in flight finish
//! and stops new ones, so that the apply can say what was done and what was not; a second one
//! ends the process at once (exit 130). Outside the writing phase the signals keep their usual
//! effect.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use signal_hook::SigId;
use signal_hook::consts::{SIGINT, SIGTERM};

/// Set when a signal arrived during a [`Watch`].
#[derive(Debug, Clone, Default)]
pub struct Flag(Arc<AtomicBool>);

impl Flag {
    /// Whether the apply was asked to stop.
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Signal handling for the writing phase; dropping it restores the usual handling.
pub struct Watch {
    ids: Vec<SigId>,
}

impl Watch {
    /// Starts catching SIGINT and SIGTERM into `flag`.
    pub fn start(flag: &Flag) -> Self {
        let mut ids = Vec::new();
        for signal in [SIGINT, SIGTERM] {
            // A second signal, once the flag is set, ends the process.
            if let Ok(id) = signal_hook::flag::register_conditional_shutdown(signal, 130, Arc::clone(&flag.0))
            {
                ids.push(id);
            }
            if let Ok(id) = signal_hook::flag::register(signal, Arc::clone(&flag.0)) {
                ids.push(id);
            }
        }
        Self { ids }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}
