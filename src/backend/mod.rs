//! Remote secret stores behind one small trait. The engine never knows which store it talks to.

mod file;

use std::fmt;
use std::path::{Path, PathBuf};

pub use file::FileStore;

use crate::error::Result;
use crate::plan::{ChangeSet, Remote};

/// A remote secret store.
pub trait Backend {
    /// Reads every variable the store holds for this profile.
    fn fetch(&mut self) -> Result<Remote>;

    /// Carries out a whole change set, but only if the store still matches `base`, the state the
    /// plan was computed from; otherwise it writes nothing and returns [`crate::Error::Stale`].
    fn apply(&mut self, base: &Remote, changes: &ChangeSet<'_>) -> Result<Applied>;
}

/// What a backend reports after a successful apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The store's revision after the write, if it has revisions.
    pub revision: Option<u64>,
}

/// Whether a backend is opened to read or to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Plan only.
    Read,
    /// Plan and apply: the store is locked until the backend is dropped.
    Write {
        /// How long to wait for another process's lock.
        lock_timeout: std::time::Duration,
    },
}

/// Where the remote is, as named by `--remote` or `secrets.remote` in profile.yaml.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteSpec {
    /// The embedded local store: a JSON file.
    File(PathBuf),
}

impl RemoteSpec {
    /// Parses a remote address; a relative file path is taken relative to `base`.
    pub fn parse(text: &str, base: &Path) -> std::result::Result<Self, String> {
        if let Some(path) = text.strip_prefix("file:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err("`file:` needs a path, as in file:store.json".to_owned());
            }
            return Ok(RemoteSpec::File(base.join(path)));
        }
        if text.starts_with("https://") || text.starts_with("http://") {
            return Err(format!(
                "`{text}`: the systemprompt cloud remote is not available in this version of cloud-secrets"
            ));
        }
        Err(format!("`{text}` is not a remote cloud-secrets knows; use file:PATH"))
    }

    /// Opens the store.
    pub fn open(&self, access: Access) -> Result<Box<dyn Backend>> {
        match self {
            RemoteSpec::File(path) => Ok(Box::new(FileStore::open(path, access)?)),
        }
    }
}

impl fmt::Display for RemoteSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RemoteSpec::File(path) => write!(f, "file:{}", crate::error::display_path(path)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_file_remotes_relative_to_base() {
        let base = Path::new("/project/profile");
        assert_eq!(RemoteSpec::parse("file:s.json", base), Ok(RemoteSpec::File(base.join("s.json"))));
        assert_eq!(RemoteSpec::parse("file:///tmp/s.json", base), Ok(RemoteSpec::File("/tmp/s.json".into())));
        assert!(RemoteSpec::parse("file:", base).is_err());
        assert!(RemoteSpec::parse("ftp://x", base).unwrap_err().contains("file:PATH"));
    }
}
