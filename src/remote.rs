//! The contract between the engine and the remotes: what a remote holds ([`Remote`]) as a backend
//! fetches it, and the changes a backend is handed to carry out ([`ChangeSet`]). Depends on
//! nothing but [`SecretValue`]: the planner, the desired state and every backend depend on it.

use std::collections::BTreeMap;

use crate::secret::SecretValue;
use crate::sorted::Map;

/// What the remote holds, as fetched by a backend.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Remote {
    /// Every variable on the remote, by name, with what the remote tells of its value.
    pub vars: Map<RemoteValue>,
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
        let vars = Map::from_sorted(vars.into_iter().map(|(k, v)| (k, RemoteValue::Value(v))).collect());
        Self { vars, revision, ..Self::default() }
    }
}

/// What a remote tells of one variable's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteValue {
    /// The value itself (the local store).
    Value(SecretValue),
    /// An HMAC-SHA256 of the value, keyed with [`Remote::digest_salt`].
    Digest(Digest),
    /// Nothing: a names-only listing.
    Unreadable,
}

/// A digest as a listing gives it: the HMAC-SHA256 of a value, read from 64 hex digits of either
/// case. Text that is not one is kept (in lowercase) as a digest that matches no value, and that
/// tells one such text from another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest(Result<[u8; 32], Box<str>>);

impl Digest {
    /// The digest written as `text`.
    pub fn from_hex(text: &str) -> Self {
        let mut tag = [0u8; 32];
        // Exactly 64 digits: no `0x` prefix, as a listing is compared digit for digit.
        if text.len() == 64 && hex::decode_to_slice(text, &mut tag).is_ok() {
            Self(Ok(tag))
        } else {
            Self(Err(text.to_ascii_lowercase().into()))
        }
    }

    /// Whether this is `tag`.
    pub fn is(&self, tag: &[u8; 32]) -> bool {
        self.0.as_ref() == Ok(tag)
    }

    /// The digest in lowercase hex, or the text that was not one, in lowercase.
    pub fn to_hex(&self) -> String {
        match &self.0 {
            Ok(tag) => hex::encode(tag),
            Err(text) => text.to_string(),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Digester;

    #[test]
    fn a_listed_digest_is_read_in_either_case_and_text_that_is_not_one_matches_nothing() {
        let digester = Digester::new(b"Jefe");
        let value = SecretValue::new("what do ya want for nothing?");
        let (tag, hex) = (digester.tag(&value), digester.hex(&value));
        assert!(Digest::from_hex(&hex).is(&tag));
        assert!(Digest::from_hex(&hex.to_ascii_uppercase()).is(&tag));
        assert_eq!(Digest::from_hex(&hex.to_ascii_uppercase()).to_hex(), hex);
        assert!(!Digest::from_hex(&hex).is(&digester.tag(&SecretValue::new("other"))));
        for text in [&hex[..62], "Not hex", "", &format!("0x{hex}"), &format!("0x{}", &hex[2..])] {
            let digest = Digest::from_hex(text);
            assert!(!digest.is(&tag), "{text}");
            assert!(!digest.is(&[0u8; 32]), "{text}");
            // Kept as written (in lowercase), so that two such texts are told apart.
            assert_eq!(digest.to_hex(), text.to_ascii_lowercase(), "{text}");
            assert_ne!(digest, Digest::from_hex("other"), "{text}");
        }
    }
}
