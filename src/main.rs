//! The `cloud-secrets` binary: parse, run, map the outcome to an exit code.
//!
//! It owns the process's streams and hands them to the commands.
#![allow(clippy::disallowed_methods)]

use std::io::Write;

use std::sync::Arc;

use clap::Parser;
use clap::error::ErrorKind;
use cloud_secrets::cli::Cli;
use cloud_secrets::commands::{self, Streams};
use cloud_secrets::config::{Env, Output};
use cloud_secrets::diagnostics::{Diagnostics, Progress, RequestEntry};
use cloud_secrets::error::{Error, exit};

/// A plan of tens of thousands of variables makes and frees many small strings; mimalloc does so
/// at a fraction of the system allocator's cost. Its version 2 gives freed memory back to the
/// system after 10 ms (version 3 keeps it for a second, longer than a plan runs, so that the
/// peak grows by everything freed on the way); built without transparent huge pages, which
/// would zero (and count as used) two megabytes at each first touch of a small heap.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    install_panic_hook();
    std::process::exit(real_main());
}

fn real_main() -> i32 {
    let mut cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => exit::OK,
                _ => {
                    let _ = writeln!(
                        std::io::stderr(),
                        "  hint: `cloud-secrets help` lists the commands; `cloud-secrets <command> --help` shows a \
                         command's options and examples"
                    );
                    exit::USAGE
                }
            };
        }
    };
    // `-C DIR` runs as if started there (as `git -C` does), so that paths are shown relative to it.
    if let Some(dir) = cli.directory.take()
        && (!dir.is_dir() || std::env::set_current_dir(&dir).is_err())
    {
        let error = cloud_secrets::error::Error::usage(
            format!("-C {}: no such directory", dir.display()),
            "pass an existing directory",
        );
        return report(&error, &Output::from_cli(&cli, &Env::default()));
    }
    let env = match Env::from_process() {
        Ok(env) => env,
        Err(e) => return report(&e, &Output::from_cli(&cli, &Env::default())),
    };
    let output = Output::from_cli(&cli, &env);
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr());
    let mut input = std::io::stdin().lock();
    let diagnostics = Arc::new(StderrDiagnostics {
        log: output.verbose >= 2,
        progress: env.terminals.stderr && !output.quiet,
    });
    let mut streams = Streams { out: &mut out, err: &mut err, input: &mut input, diagnostics };
    let result = commands::run(&cli, &env, &output, &mut streams);
    let _ = streams.out.flush();
    match result {
        Ok(code) => code,
        Err(e) => report(&e, &output),
    }
}

/// The diagnostics of network backends, on stderr: the `-vv` request log, and a progress bar
/// when stderr is a terminal and the run is not quiet.
struct StderrDiagnostics {
    log: bool,
    progress: bool,
}

impl Diagnostics for StderrDiagnostics {
    fn logs_requests(&self) -> bool {
        self.log
    }

    fn request(&self, entry: &RequestEntry<'_>) {
        let retry = if entry.attempt > 1 { format!(", attempt {}", entry.attempt) } else { String::new() };
        let _ = writeln!(
            std::io::stderr(),
            "http: {} {} -> {} ({} ms{retry})",
            entry.method,
            entry.path,
            entry.outcome,
            entry.took.as_millis()
        );
    }

    fn progress(&self, total: u64) -> Option<Box<dyn Progress>> {
        if !self.progress {
            return None;
        }
        let bar =
            indicatif::ProgressBar::with_draw_target(Some(total), indicatif::ProgressDrawTarget::stderr());
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("{spinner} applying {bar:30} {pos}/{len} requests")
        {
            bar.set_style(style);
        }
        Some(Box::new(Bar(bar)))
    }
}

/// An indicatif progress bar.
struct Bar(indicatif::ProgressBar);

impl Progress for Bar {
    fn advance(&self) {
        self.0.inc(1);
    }

    fn finish(&self) {
        self.0.finish_and_clear();
    }
}

/// Prints an error with its hint and returns its exit code.
fn report(error: &Error, output: &Output) -> i32 {
    let mut err = std::io::stderr().lock();
    let palette = &output.stderr;
    let _ = match error {
        Error::NotConfirmed { .. } => writeln!(err, "{error}"),
        _ => writeln!(err, "{} {error}", palette.error().apply_to("error:")),
    };
    if let Some(hint) = error.hint() {
        let _ = writeln!(err, "  {} {hint}", palette.dim().apply_to("hint:"));
    }
    error.exit_code()
}

/// A panic prints where it happened, never its message: a message could carry secret material.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let location = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        let _ = writeln!(
            std::io::stderr(),
            "cloud-secrets: internal error{location}. This is a bug; please report it. \
             (The panic message is withheld because it could contain secret material.)"
        );
    }));
}
