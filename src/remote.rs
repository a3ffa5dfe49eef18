//! The contract between the engine and the remotes: what a remote holds ([`Remote`]) as a backend
//! fetches it, and the changes a backend is handed to carry out ([`ChangeSet`]). Depends on
//! nothing but [`SecretValue`]: the planner, the desired state and every backend depend on it.

use std::collections::BTreeMap;

use crate::secret::SecretValue;

/// What the remote holds, as fetched by a backend.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Remote {
    /// Every variable on the remote, by name, with what the remote tells of its value.
    pub vars: BTreeMap<String, RemoteValue>,
    /// The key of the HMAC-SHA256 digests in `vars`, when the remote lists digests.
    pub digest_salt: Option<Vec<u8>>,
    /// The store's revision when fetched, if it numbers them; apply checks it has not moved.
    pub revision: Option<u64>,
    /// The listing's `ETag`, if it gave one; writes are conditional on it.
    pub etag: Option<String>,
}

impl Remote {
    /// Whether any variable's value itself was read (the local store), not only its digest.
    pub fn holds_values(&self) -> bool {
        self.vars.values().any(|value| matches!(value, RemoteValue::Value(_)))
    }

    /// A remote whose values can all be read (the local store).
    pub fn with_values(vars: BTreeMap<String, SecretValue>, revision: Option<u64>) -> Self {
        let vars = vars.into_iter().map(|(k, v)| (k, RemoteValue::Value(v))).collect();
        Self { vars, revision, ..Self::default() }
    }
}

/// What a remote tells of one variable's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteValue {
    /// The value itself (the local store).
    Value(SecretValue),
    /// A hex HMAC-SHA256 of the value, keyed with [`Remote::digest_salt`].
    Digest(String),
    /// Nothing: a names-only listing.
    Unreadable,
}

impl From<SecretValue> for RemoteValue {
    fn from(value: SecretValue) -> Self {
        RemoteValue::Value(value)
    }
}

/// Everything a backend must do to carry out a plan, handed over whole so that a store that can
/// write atomically does.
#[derive(Debug, Clone, Default)]
pub struct ChangeSet<'a> {
    /// Variables to create or overwrite, with their values.
    pub upserts: Vec<(&'a str, &'a SecretValue)>,
    /// Variables to delete.
    pub deletes: Vec<&'a str>,
}

impl ChangeSet<'_> {
    /// Applies the changes to an in-memory copy of a store.
    pub fn apply_to<V: From<SecretValue>>(&self, vars: &mut BTreeMap<String, V>) {
        for (name, value) in &self.upserts {
            vars.insert((*name).to_owned(), V::from((*value).clone()));
        }
        for name in &self.deletes {
            vars.remove(*name);
        }
    }

    /// True when there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.upserts.is_empty() && self.deletes.is_empty()
    }
}
