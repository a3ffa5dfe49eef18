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

/// While a question waits for its answer: SIGINT or SIGTERM ends the process (exit 130) saying
/// that nothing was changed, rather than silently. Dropping it restores the usual handling.
pub struct AtQuestion {
    handle: signal_hook::iterator::Handle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl AtQuestion {
    /// Starts watching for SIGINT and SIGTERM; `None` when signals cannot be watched. With
    /// `restore`, a terminal and its mode: the mode is put back before the process ends.
    pub fn start(restore: Option<(std::fs::File, nix::sys::termios::Termios)>) -> Option<Self> {
        let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]).ok()?;
        let handle = signals.handle();
        let thread = std::thread::spawn(move || {
            if signals.forever().next().is_some() {
                if let Some((tty, mode)) = &restore {
                    let _ = nix::sys::termios::tcsetattr(tty, nix::sys::termios::SetArg::TCSANOW, mode);
                }
                // The main thread may hold standard error's lock while it asks: write through a
                // descriptor of our own.
                if let Ok(mut err) = std::fs::OpenOptions::new().write(true).open("/proc/self/fd/2") {
                    use std::io::Write;
                    let _ = err.write_all(b"\nInterrupted at the question: nothing was changed.\n");
                }
                std::process::exit(130);
            }
        });
        Some(Self { handle, thread: Some(thread) })
    }
}

impl Drop for AtQuestion {
    fn drop(&mut self) {
        self.handle.close();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
