//! The secret value type: the only place a secret lives in memory.
//!
//! A [`SecretValue`] has no `Display` and no `Serialize`, and its `Debug` prints a mask, so a
//! value cannot reach output by accident. Reading it is an explicit [`SecretValue::expose`], done
//! only where a value must be compared or written to the remote. The bytes are zeroized on drop.

use std::fmt;

use zeroize::Zeroizing;

/// A secret value. Compare it, hand it to a backend, never print it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(Zeroizing<String>);

impl SecretValue {
    /// Wraps a value read from a trusted source (a secrets file, the environment, a store).
    pub fn new(value: impl Into<String>) -> Self {
        Self(Zeroizing::new(value.into()))
    }

    /// Zeroizes the value where it lies, leaving it empty (its memory is kept).
    pub fn wipe(&mut self) {
        zeroize::Zeroize::zeroize(&mut *self.0);
    }

    /// The value itself. Call only to compare it or to send it to the remote.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The hex HMAC-SHA256 of the value keyed with `salt`: how a remote's listing digests a
    /// value, and how the last-applied record remembers one. Without the salt it reveals nothing
    /// a dictionary could match. For many values under one salt, use a [`Digester`].
    pub fn digest(&self, salt: &[u8]) -> String {
        Digester::new(salt).hex(self)
    }

    /// Whether the value is empty ("not set" in the brief's terms).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// True when the value is empty or only whitespace: "not set", as the platform reads it.
    pub fn is_blank(&self) -> bool {
        self.expose().trim().is_empty()
    }
}

/// HMAC-SHA256 under one salt, its key prepared once for the many values of a listing or a
/// record.
#[derive(Clone)]
pub struct Digester(ring::hmac::Key);

impl Digester {
    /// The digester keyed with `salt`.
    pub fn new(salt: &[u8]) -> Self {
        Self(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, salt))
    }

    /// The digest of `value`, in lowercase hex.
    pub fn hex(&self, value: &SecretValue) -> String {
        hex::encode(ring::hmac::sign(&self.0, value.expose().as_bytes()))
    }

    /// The digest of `value`, as bytes.
    pub fn tag(&self, value: &SecretValue) -> [u8; 32] {
        let mut tag = [0u8; 32];
        tag.copy_from_slice(ring::hmac::sign(&self.0, value.expose().as_bytes()).as_ref());
        tag
    }

    /// Whether `tag` is the digest of `value`, compared in constant time.
    pub fn verify(&self, value: &SecretValue, tag: &[u8; 32]) -> bool {
        ring::hmac::verify(&self.0, value.expose().as_bytes(), tag).is_ok()
    }

    /// [`Digester::tag`] of each value, in order. A long list is split over the machine's
    /// cores: an apply of a hundred thousand variables records as many HMACs.
    pub fn tags(&self, values: &[&SecretValue]) -> Vec<[u8; 32]> {
        on_cores(values, |value| self.tag(value))
    }
}

/// Fewer items than this per thread are not worth a thread.
const ITEMS_PER_THREAD: usize = 4096;

/// `f` of each item, in order; on up to four threads when there are enough items.
fn on_cores<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()).min(4);
    let threads = (items.len() / ITEMS_PER_THREAD).clamp(1, cores);
    if threads == 1 {
        return items.iter().map(f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|scope| {
        let mut parts = items.chunks(chunk);
        // The first part is done on this thread, the others on threads of their own.
        let first = parts.next().unwrap_or_default();
        let others: Vec<_> =
            parts.map(|part| scope.spawn(move || part.iter().map(f).collect::<Vec<R>>())).collect();
        let mut all: Vec<R> = Vec::with_capacity(items.len());
        all.extend(first.iter().map(f));
        for other in others {
            all.extend(other.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)));
        }
        all
    })
}

impl fmt::Debug for Digester {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Digester(<key>)")
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let value = SecretValue::new("CANARY-debug-3b9e");
        let shown = format!("{value:?} {value:#?} {:?}", Some(&value));
        assert!(!shown.contains("CANARY"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }

    #[test]
    fn digest_is_hmac_sha256_in_hex() {
        // RFC 4231, test case 2.
        let value = SecretValue::new("what do ya want for nothing?");
        assert_eq!(value.digest(b"Jefe"), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }

    #[test]
    fn a_digester_gives_the_same_digest_as_hex_and_as_bytes() {
        let digester = Digester::new(b"Jefe");
        let value = SecretValue::new("what do ya want for nothing?");
        let digest = digester.hex(&value);
        assert_eq!(digest, value.digest(b"Jefe"));
        assert_eq!(hex::encode(digester.tag(&value)), digest);
        assert!(digester.verify(&value, &digester.tag(&value)));
        assert!(!digester.verify(&SecretValue::new("other"), &digester.tag(&value)));
    }

    #[test]
    fn many_values_are_digested_in_order_whatever_the_threads() {
        let digester = Digester::new(b"salt");
        let values: Vec<SecretValue> =
            (0..3 * ITEMS_PER_THREAD + 5).map(|i| SecretValue::new(i.to_string())).collect();
        let refs: Vec<&SecretValue> = values.iter().collect();
        let tags = digester.tags(&refs);
        assert_eq!(tags.len(), values.len());
        assert!(values.iter().zip(&tags).all(|(v, t)| *t == digester.tag(v)));
    }

    #[test]
    fn a_wiped_value_is_empty() {
        let mut value = SecretValue::new("CANARY-wiped");
        value.wipe();
        assert_eq!(value.expose(), "");
        assert!(value.is_empty());
    }

    #[test]
    fn equality_compares_values() {
        assert_eq!(SecretValue::new("a"), SecretValue::new("a"));
        assert_ne!(SecretValue::new("a"), SecretValue::new("b"));
    }
}
