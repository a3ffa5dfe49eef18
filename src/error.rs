//! The one error type. Each variant carries the context a reader needs (file, line, key) and a
//! hint saying what to do; the variant alone decides the process exit code.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Exit codes, as documented in the README. No two outcomes share one.
pub mod exit {
    /// Success; for `plan --detailed-exitcode`, success with no changes.
    pub const OK: i32 = 0;
    /// An error.
    pub const ERROR: i32 = 1;
    /// `plan --detailed-exitcode` succeeded and there are changes.
    pub const CHANGES: i32 = 2;
    /// The remote or the desired state changed since the plan was computed.
    pub const STALE: i32 = 3;
    /// Not confirmed: declined, or no terminal and no `--yes`.
    pub const NOT_CONFIRMED: i32 = 4;
    /// The command line was wrong.
    pub const USAGE: i32 = 64;
    /// SIGINT or SIGTERM stopped an apply (128 + SIGINT, as shells report it).
    pub const INTERRUPTED: i32 = 130;
}

/// Where in the user's files something went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file, as the user would type it (relative to the working directory when under it);
    /// shared by the many locations in one file.
    pub path: Arc<str>,
    /// 1-based line and column, where the format has them.
    pub position: Option<(usize, usize)>,
}

impl Location {
    /// A whole file.
    pub fn file(path: &Path) -> Self {
        Self { path: display_path(path).into(), position: None }
    }

    /// Something that is not a file, such as an environment variable.
    pub fn named(what: impl Into<String>) -> Self {
        Self { path: what.into().into(), position: None }
    }

    /// A line and column in a file.
    pub fn at(path: &Path, line: usize, column: usize) -> Self {
        Self { path: display_path(path).into(), position: Some((line, column)) }
    }

    /// A line and column in the same file as this location (whose path is worked out once).
    pub fn at_line(&self, line: usize, column: usize) -> Self {
        Self { path: Arc::clone(&self.path), position: Some((line, column)) }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some((line, column)) => write!(f, "{}:{line}:{column}", self.path),
            None => f.write_str(&self.path),
        }
    }
}

/// A path as the user would type it: relative to the working directory when it lies below it.
pub fn display_path(path: &Path) -> String {
    let relative =
        std::env::current_dir().ok().and_then(|cwd| path.strip_prefix(&cwd).ok().map(Path::to_path_buf));
    match relative {
        Some(rel) if rel.as_os_str().is_empty() => ".".to_owned(),
        Some(rel) => rel.display().to_string(),
        None => path.display().to_string(),
    }
}

/// Everything that can stop a command. Messages never contain a secret value.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command line itself is wrong.
    #[error("{message}")]
    Usage {
        /// What is wrong.
        message: String,
        /// What to do instead.
        hint: Option<String>,
    },

    /// A user file is malformed or breaks a rule; points at the file, line and column.
    #[error("{location}: {message}")]
    Input {
        /// Where.
        location: Location,
        /// What is wrong (never the value).
        message: String,
        /// How to fix it.
        hint: Option<String>,
    },

    /// The project, profile or remote cannot be worked out.
    #[error("{message}")]
    Config {
        /// What is wrong.
        message: String,
        /// How to fix it.
        hint: Option<String>,
    },

    /// A file could not be read or written.
    #[error("cannot {action} {}: {source}", display_path(path))]
    Io {
        /// What was being done ("read", "write", "lock"...).
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: io::Error,
    },

    /// Another process holds the store's lock.
    #[error("{} is locked by another cloud-secrets process{}", display_path(path), holder_suffix(holder))]
    Locked {
        /// The lock file.
        path: PathBuf,
        /// The pid recorded by the holder, if it could be read.
        holder: Option<u32>,
    },

    /// The remote failed or refused a request.
    #[error("{message}")]
    Remote {
        /// What happened, and what was and was not written.
        message: String,
        /// What to do.
        hint: Option<String>,
    },

    /// The remote or the desired state changed since the plan was made: nothing was written.
    #[error("{message}")]
    Stale {
        /// What changed.
        message: String,
    },

    /// A signal stopped an apply part-way; what was and was not done has been reported.
    #[error("{message}")]
    Interrupted {
        /// What happened.
        message: String,
    },

    /// The user did not confirm (or could not be asked): nothing was written.
    #[error("{message}")]
    NotConfirmed {
        /// Why nothing happened.
        message: String,
        /// How to proceed.
        hint: Option<String>,
    },
}

fn holder_suffix(holder: &Option<u32>) -> String {
    holder.map(|pid| format!(" (pid {pid})")).unwrap_or_default()
}

impl Error {
    /// The process exit code this error maps to.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage { .. } => exit::USAGE,
            Error::Stale { .. } => exit::STALE,
            Error::NotConfirmed { .. } => exit::NOT_CONFIRMED,
            Error::Interrupted { .. } => exit::INTERRUPTED,
            Error::Input { .. }
            | Error::Config { .. }
            | Error::Io { .. }
            | Error::Locked { .. }
            | Error::Remote { .. } => exit::ERROR,
        }
    }

    /// What the reader should do next, if there is more to say than the message.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Usage { hint, .. }
            | Error::Input { hint, .. }
            | Error::Config { hint, .. }
            | Error::Remote { hint, .. }
            | Error::NotConfirmed { hint, .. } => hint.clone(),
            Error::Io { source, .. } => Some(
                match (source.kind(), format!("{:?}", source.kind()).as_str()) {
                    (io::ErrorKind::PermissionDenied, _) => "check the file's owner and permissions",
                    (io::ErrorKind::NotFound, _) => {
                        "check that the path exists (a symbolic link may point nowhere)"
                    }
                    (_, "FilesystemLoop") => {
                        "the path is a loop of symbolic links: point the link at a real file"
                    }
                    (_, "NotADirectory") => "a part of the path is a file where a directory is expected",
                    _ => "check the file, then try again",
                }
                .to_owned(),
            ),
            Error::Locked { .. } => Some(
                "wait for the other apply to finish, or stop it; if no cloud-secrets process is \
                 running, the lock is released automatically"
                    .to_owned(),
            ),
            Error::Stale { .. } => Some("plan again, and review the new plan before applying it".to_owned()),
            Error::Interrupted { .. } => {
                Some("run the command again to finish: it plans from what the remote holds now".to_owned())
            }
        }
    }

    /// The same error, saying that nothing was written (for a request known not to have been
    /// carried out).
    pub fn nothing_written(self) -> Self {
        match self {
            Error::Remote { message, hint } if !message.contains("nothing was written") => {
                Error::Remote { message: format!("{message}; nothing was written"), hint }
            }
            other => other,
        }
    }

    /// Shorthand for a usage error.
    pub fn usage(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Error::Usage { message: message.into(), hint: Some(hint.into()) }
    }

    /// Shorthand for a configuration error.
    pub fn config(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Error::Config { message: message.into(), hint: Some(hint.into()) }
    }

    /// Shorthand for an input error.
    pub fn input(location: Location, message: impl Into<String>, hint: impl Into<String>) -> Self {
        Error::Input { location, message: message.into(), hint: Some(hint.into()) }
    }

    /// Shorthand for an IO error on a file.
    pub fn io(action: &'static str, path: &Path, source: io::Error) -> Self {
        Error::Io { action, path: path.to_path_buf(), source }
    }

    /// The same error naming `real` as `shown` wherever it names it (for a path that must not be
    /// printed as resolved).
    pub fn showing(self, real: &Path, shown: &str) -> Self {
        let real_shown = display_path(real);
        let swap = |text: String| text.replace(&real_shown, shown);
        match self {
            Error::Input { location, message, hint } => Error::Input {
                location: Location {
                    path: swap(location.path.to_string()).into(),
                    position: location.position,
                },
                message: swap(message),
                hint: hint.map(swap),
            },
            Error::Io { action, path, source } if path == real => Error::Input {
                location: Location::named(shown),
                message: format!("cannot {action} it: {source}"),
                hint: None,
            },
            Error::Config { message, hint } => Error::Config { message: swap(message), hint: hint.map(swap) },
            other => other,
        }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_distinct_per_outcome() {
        let usage = Error::usage("x", "y");
        let stale = Error::Stale { message: "x".into() };
        let declined = Error::NotConfirmed { message: "x".into(), hint: None };
        let config = Error::config("x", "y");
        assert_eq!(usage.exit_code(), 64);
        assert_eq!(stale.exit_code(), 3);
        assert_eq!(declined.exit_code(), 4);
        assert_eq!(config.exit_code(), 1);
    }

    #[test]
    fn location_prints_line_and_column() {
        let loc = Location::at(Path::new("/nowhere/secrets.json"), 7, 3);
        assert_eq!(loc.to_string(), "/nowhere/secrets.json:7:3");
    }
}
