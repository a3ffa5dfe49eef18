//! The embedded local store: a JSON document of variable name to value, kept in one file.
//!
//! Writes are atomic (temporary file, fsync, rename, fsync of the directory), the file is mode
//! 0600, and a writer holds an advisory lock on `<file>.lock` from before it reads until it is
//! dropped, so two applies never interleave. Every write increments `version`.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{Access, Applied, Backend, Connection, Refusal, Resolving};
use crate::error::{Error, Location, Result, display_path};
use crate::remote::{ChangeSet, Remote};
use crate::secret::SecretValue;
use crate::secrets_file;

/// The local store's kind: `file:PATH`.
pub(super) struct FileKind;

/// The local store, registered in [`super::KINDS`].
pub(super) static KIND: FileKind = FileKind;

impl super::Kind for FileKind {
    fn name(&self) -> &'static str {
        "the local store"
    }

    fn form(&self) -> &'static str {
        "file:PATH"
    }

    fn rolls_back(&self) -> bool {
        true
    }

    fn is_path(&self) -> bool {
        true
    }

    fn resolve(
        &self,
        text: &str,
        context: &Resolving<'_>,
    ) -> Option<std::result::Result<std::sync::Arc<dyn super::Spec>, Refusal>> {
        let path = text.strip_prefix("file:")?;
        Some(
            parse(path, context.base)
                .map(|path| std::sync::Arc::new(FileSpec(path)) as std::sync::Arc<dyn super::Spec>),
        )
    }
}

/// The path of `file:PATH` (`path` is what follows `file:`), relative to `base`.
pub(super) fn parse(path: &str, base: &Path) -> std::result::Result<PathBuf, Refusal> {
    let path = path.strip_prefix("//").unwrap_or(path);
    if path.is_empty() || path.ends_with('/') {
        return Err(Refusal::Address("`file:` needs the path of a file, as in file:store.json".to_owned()));
    }
    Ok(base.join(path))
}

/// A local store: its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct FileSpec(pub(super) PathBuf);

impl std::fmt::Display for FileSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "file:{}", display_path(&self.0))
    }
}

impl super::Spec for FileSpec {
    fn open(&self, access: Access, _: &Connection) -> Result<Box<dyn Backend>> {
        Ok(Box::new(FileStore::open(&self.0, access)?))
    }

    fn is_local_file(&self) -> bool {
        true
    }

    /// The absolute path, whether the file exists yet or not.
    fn identity(&self) -> String {
        let path = &self.0;
        let absolute = std::fs::canonicalize(path).unwrap_or_else(|_| {
            let dir = path.parent().and_then(|d| std::fs::canonicalize(d).ok());
            match (dir, path.file_name()) {
                (Some(dir), Some(name)) => dir.join(name),
                _ => path.clone(),
            }
        });
        format!("file:{}", absolute.display())
    }
}

/// A store in a file, opened for reading or, locked, for writing.
#[derive(Debug)]
pub struct FileStore {
    path: PathBuf,
    /// Held while the store is open for writing; the lock is released when it is closed.
    _lock: Option<File>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    version: u64,
    variables: BTreeMap<String, String>,
    /// The state before the last write, for `rollback`.
    #[serde(default)]
    previous: Option<Previous>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Previous {
    version: u64,
    variables: BTreeMap<String, String>,
}

#[derive(Serialize)]
struct DocumentRef<'a> {
    version: u64,
    variables: BTreeMap<&'a str, &'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    previous: Option<PreviousRef<'a>>,
}

#[derive(Serialize)]
struct PreviousRef<'a> {
    version: u64,
    variables: BTreeMap<&'a str, &'a str>,
}

fn refs(vars: &BTreeMap<String, SecretValue>) -> BTreeMap<&str, &str> {
    vars.iter().map(|(k, v)| (k.as_str(), v.expose())).collect()
}

/// A store's contents: version, variables, and the version before.
type Contents = (u64, BTreeMap<String, SecretValue>, Option<(u64, BTreeMap<String, SecretValue>)>);

impl FileStore {
    /// Opens the store at `path`; for [`Access::Write`], waits for and takes its lock.
    pub fn open(path: &Path, access: Access) -> Result<Self> {
        let path = resolve(path)?;
        let lock = match access {
            Access::Read => None,
            Access::Write { lock_timeout } => Some(take_lock(&path, lock_timeout)?),
        };
        Ok(Self { path, _lock: lock })
    }

    /// The store's version and variables; a missing file is version 0 with none.
    fn read(&self) -> Result<(u64, BTreeMap<String, SecretValue>)> {
        let (version, vars, _) = self.read_all()?;
        Ok((version, vars))
    }

    /// The store's contents with the version before the last write.
    fn read_all(&self) -> Result<Contents> {
        let bytes = match crate::files::read_limited(&self.path, MAX_STORE_BYTES, "the local store")? {
            Some(bytes) => Zeroizing::new(bytes),
            None => return Ok((0, BTreeMap::new(), None)),
        };
        let doc: Document = serde_json::from_slice(&bytes).map_err(|e| {
            Error::input(
                Location::at(&self.path, e.line().max(1), e.column().max(1)),
                format!(
                    "the local store is damaged: {}",
                    match e.classify() {
                        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                            format!("it is not JSON ({})", secrets_file::safe_json_message(&e))
                        }
                        _ => "it is JSON, but not a store of cloud-secrets".to_owned(),
                    }
                ),
                "the store is written by cloud-secrets; restore it from a backup, or delete it to start from an empty store",
            )
        })?;
        let values = |vars: BTreeMap<String, String>| {
            vars.into_iter().map(|(k, v)| (k, SecretValue::new(v))).collect()
        };
        let previous = doc.previous.map(|p| (p.version, values(p.variables)));
        Ok((doc.version, values(doc.variables), previous))
    }

    fn write(
        &self,
        version: u64,
        vars: &BTreeMap<String, SecretValue>,
        previous: (u64, &BTreeMap<String, SecretValue>),
    ) -> Result<()> {
        let doc = DocumentRef {
            version,
            variables: refs(vars),
            previous: (previous.0 > 0)
                .then(|| PreviousRef { version: previous.0, variables: refs(previous.1) }),
        };
        let mut bytes = Zeroizing::new(serde_json::to_vec_pretty(&doc).expect("a map of strings serializes"));
        bytes.push(b'\n');
        crate::files::write_private(&self.path, &bytes)
    }
}

impl Backend for FileStore {
    fn fetch(&mut self) -> Result<Remote> {
        let (version, vars) = self.read()?;
        Ok(Remote::with_values(vars, Some(version)))
    }

    fn apply(&mut self, base: &Remote, changes: &ChangeSet<'_>) -> Result<Applied> {
        let (version, mut vars) = self.read()?;
        if Remote::with_values(vars.clone(), Some(version)) != *base {
            let (then, now) = (base.revision.unwrap_or(0), version);
            let how = if then == now {
                format!("it was edited outside cloud-secrets (still version {now})")
            } else {
                format!("it went from version {then} to {now}")
            };
            return Err(Error::Stale {
                message: format!(
                    "the local store {} changed since the plan was made: {how}",
                    display_path(&self.path)
                ),
            });
        }
        let before = vars.clone();
        changes.apply_to(&mut vars);
        let old_version = version;
        let version = version.checked_add(1).ok_or_else(|| {
            Error::input(
                Location::file(&self.path),
                "the local store's version is at its maximum and cannot grow",
                "the store was edited by hand: set `version` to a smaller number",
            )
        })?;
        self.write(version, &vars, (old_version, &before))?;
        Ok(Applied { revision: Some(version), ..Applied::default() })
    }

    fn previous(&mut self) -> Result<Option<(String, BTreeMap<String, SecretValue>)>> {
        Ok(self.read_all()?.2.map(|(version, vars)| (version.to_string(), vars)))
    }
}

/// The largest store read (about 50 MB holds hundreds of thousands of variables).
pub const MAX_STORE_BYTES: u64 = 256 * 1024 * 1024;

/// The directory holding `path`.
fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The store's location, checked: a symbolic link in its place is refused (a checkout could plant
/// one pointing anywhere, and the store is replaced on every write). The directory must exist:
/// cloud-secrets creates the store, not directories.
fn resolve(path: &Path) -> Result<PathBuf> {
    if std::fs::symlink_metadata(path).is_ok_and(|meta| meta.file_type().is_symlink()) {
        return Err(Error::config(
            format!("the local store {} is a symbolic link", display_path(path)),
            "name the store's file itself (cloud-secrets never writes through a link)",
        ));
    }
    let path = path.to_path_buf();
    let dir = parent_dir(&path);
    if !dir.is_dir() {
        return Err(Error::config(
            format!("the local store's directory {} does not exist", display_path(&dir)),
            "create the directory, or name a store in an existing one",
        ));
    }
    if path.is_dir() {
        return Err(Error::config(
            format!("the local store {} is a directory", display_path(&path)),
            "name a file, as in file:store.json",
        ));
    }
    Ok(path)
}

fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".lock");
    path.with_file_name(name)
}

/// Takes the store's advisory lock, waiting up to `timeout`.
fn take_lock(path: &Path, timeout: Duration) -> Result<File> {
    crate::files::lock(&lock_path(path), timeout)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(s: &str) -> SecretValue {
        SecretValue::new(s)
    }

    #[test]
    fn missing_file_is_an_empty_store_at_version_zero() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = FileStore::open(&dir.path().join("store.json"), Access::Read).unwrap();
        let remote = store.fetch().unwrap();
        assert!(remote.vars.is_empty());
        assert_eq!(remote.revision, Some(0));
    }

    #[test]
    fn apply_writes_atomically_with_a_growing_version_and_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.json");
        let mut store = FileStore::open(&path, Access::Write { lock_timeout: Duration::ZERO }).unwrap();
        let base = store.fetch().unwrap();
        let (a, b) = (value("1"), value("2"));
        let changes = ChangeSet { upserts: vec![("A", &a), ("B", &b)], deletes: vec![] };
        assert_eq!(store.apply(&base, &changes).unwrap().revision, Some(1));
        let base = store.fetch().unwrap();
        assert_eq!(base.vars.len(), 2);
        let changes = ChangeSet { upserts: vec![], deletes: vec!["A"] };
        assert_eq!(store.apply(&base, &changes).unwrap().revision, Some(2));
        let after = store.fetch().unwrap();
        assert_eq!(after.vars.keys().collect::<Vec<_>>(), ["B"]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn a_store_changed_since_the_plan_is_stale_and_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.json");
        std::fs::write(&path, r#"{"version": 4, "variables": {"A": "1"}}"#).unwrap();
        let mut store = FileStore::open(&path, Access::Read).unwrap();
        let mut base = store.fetch().unwrap();
        base.revision = Some(3);
        let one = value("x");
        let changes = ChangeSet { upserts: vec![("A", &one)], deletes: vec![] };
        let err = store.apply(&base, &changes).unwrap_err();
        assert_eq!(err.exit_code(), 3);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), r#"{"version": 4, "variables": {"A": "1"}}"#);
    }

    #[test]
    fn a_store_planted_as_a_link_is_refused_and_its_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("victim");
        std::fs::write(&real, "precious").unwrap();
        let link = dir.path().join("store.json");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let e =
            FileStore::open(&link, Access::Write { lock_timeout: Duration::ZERO }).err().unwrap().to_string();
        assert!(e.contains("is a symbolic link"), "{e}");
        assert!(FileStore::open(&link, Access::Read).is_err());
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "precious");
    }

    #[test]
    fn a_version_at_its_maximum_is_an_error_not_a_wrap() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.json");
        std::fs::write(&path, r#"{"version": 18446744073709551615, "variables": {}}"#).unwrap();
        let mut store = FileStore::open(&path, Access::Write { lock_timeout: Duration::ZERO }).unwrap();
        let base = store.fetch().unwrap();
        let b = value("2");
        let err = store.apply(&base, &ChangeSet { upserts: vec![("B", &b)], deletes: vec![] }).unwrap_err();
        assert!(err.to_string().contains("at its maximum"), "{err}");
    }

    #[test]
    fn a_missing_directory_is_not_created() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no/such/store.json");
        let err = FileStore::open(&path, Access::Write { lock_timeout: Duration::ZERO }).unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
        assert!(!dir.path().join("no").exists());
    }

    #[test]
    fn a_damaged_store_is_reported_without_its_contents() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.json");
        std::fs::write(&path, "{\"version\": \"CANARY-store\", \"variables\": {}}").unwrap();
        let err = FileStore::open(&path, Access::Read).unwrap().fetch().unwrap_err().to_string();
        assert!(err.contains("store.json:1:"), "{err}");
        assert!(!err.contains("CANARY"), "{err}");
    }
}
