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
            if path.is_empty() || path.ends_with('/') {
                return Err("`file:` needs the path of a file, as in file:store.json".to_owned());
            }
            return Ok(RemoteSpec::File(base.join(path)));
        }
        let shown = redact_address(text);
        if text.starts_with("https://") || text.starts_with("http://") {
            return Err(format!(
                "`{shown}`: the systemprompt cloud remote is not available in this version of cloud-secrets"
            ));
        }
        Err(format!("`{shown}` is not a remote cloud-secrets knows; use file:PATH"))
    }

    /// Opens the store.
    pub fn open(&self, access: Access) -> Result<Box<dyn Backend>> {
        match self {
            RemoteSpec::File(path) => Ok(Box::new(FileStore::open(path, access)?)),
        }
    }
}

/// A remote address fit to print: credentials (`user:token@`) and the query string are masked.
pub fn redact_address(text: &str) -> String {
    let (scheme, rest) = match text.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), text),
    };
    let (authority_and_path, query) = match rest.split_once('?') {
        Some((before, _)) => (before, "?<redacted>"),
        None => (rest, ""),
    };
    let end_of_authority = authority_and_path.find('/').unwrap_or(authority_and_path.len());
    let shown = match authority_and_path[..end_of_authority].rfind('@') {
        Some(at) => format!("<redacted>@{}", &authority_and_path[at + 1..]),
        None => authority_and_path.to_owned(),
    };
    format!("{scheme}{shown}{query}")
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
        assert!(RemoteSpec::parse("file:/", base).is_err());
    }

    #[test]
    fn addresses_are_printed_without_credentials_or_query() {
        assert_eq!(
            redact_address("https://admin:CANARY@api.example.com/x"),
            "https://<redacted>@api.example.com/x"
        );
        assert_eq!(redact_address("vault://root:CANARY@h"), "vault://<redacted>@h");
        assert_eq!(redact_address("https://h/p?token=CANARY"), "https://h/p?<redacted>");
        assert_eq!(redact_address("https://h/p@x"), "https://h/p@x");
        let e = RemoteSpec::parse("https://u:CANARY@h", Path::new("/")).unwrap_err();
        assert!(!e.contains("CANARY"), "{e}");
    }
}
