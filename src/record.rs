//! The last-applied record: for each remote a profile was applied to, salted digests of the
//! values cloud-secrets last wrote there (never the values).
//!
//! A remote that lists names only does not let a value be compared; the record stands in for it
//! ("unchanged since the last apply"). A remote that lists digests is compared directly, and the
//! record tells a change made here from drift made on the remote. The file is
//! `<profile>/last-applied.json`, mode 0600, and should be gitignored like secrets.json.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Location, Result};
use crate::secret::{Digester, SecretValue};

/// The record file's name, in the profile directory.
pub const FILE_NAME: &str = "last-applied.json";

const FORMAT: u32 = 1;

/// What was last applied to one remote.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LastApplied {
    /// The HMAC key of `digests`, hex. Random per record, so digests cannot be matched against
    /// a dictionary or across records.
    #[serde(with = "hex_bytes")]
    salt: Vec<u8>,
    /// Variable name to HMAC-SHA256 of the value last applied (hex in the file).
    #[serde(with = "digest_map")]
    digests: BTreeMap<String, [u8; 32]>,
    /// The HMAC key made from `salt`, prepared on first use.
    #[serde(skip)]
    digester: OnceLock<Digester>,
}

impl PartialEq for LastApplied {
    fn eq(&self, other: &Self) -> bool {
        self.salt == other.salt && self.digests == other.digests
    }
}

impl Eq for LastApplied {}

impl LastApplied {
    /// An empty record with this salt.
    pub fn new(salt: Vec<u8>) -> Self {
        Self { salt, digests: BTreeMap::new(), digester: OnceLock::new() }
    }

    /// An empty record with a fresh random salt.
    pub fn fresh() -> Result<Self> {
        use ring::rand::SecureRandom;
        let mut salt = vec![0u8; 32];
        ring::rand::SystemRandom::new().fill(&mut salt).map_err(|_| Error::Config {
            message: "the system's random number generator failed".to_owned(),
            hint: None,
        })?;
        Ok(Self::new(salt))
    }

    /// Whether `value` is what was last applied as `name`; `None` when there is no record of it.
    pub fn matches(&self, name: &str, value: &SecretValue) -> Option<bool> {
        self.digests.get(name).map(|tag| self.digester().verify(value, tag))
    }

    /// Records that `value` was applied as `name`.
    pub fn remember(&mut self, name: &str, value: &SecretValue) {
        let tag = self.digester().tag(value);
        self.digests.insert(name.to_owned(), tag);
    }

    fn digester(&self) -> &Digester {
        self.digester.get_or_init(|| Digester::new(&self.salt))
    }

    /// Records an apply: `written` are the values now on the remote (the writes made, and the
    /// values the remote showed equal), `removed` the names deleted.
    pub fn note_apply<'a>(
        &mut self,
        written: impl IntoIterator<Item = (&'a str, &'a SecretValue)>,
        removed: impl IntoIterator<Item = &'a str>,
    ) {
        for (name, value) in written {
            self.remember(name, value);
        }
        for name in removed {
            self.forget(name);
        }
    }

    /// Records that `name` was removed.
    pub fn forget(&mut self, name: &str) {
        self.digests.remove(name);
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordFile {
    format: u32,
    remotes: BTreeMap<String, LastApplied>,
}

fn read(path: &Path) -> Result<RecordFile> {
    let Some(bytes) = crate::files::read_limited(path, 64 * 1024 * 1024, FILE_NAME)? else {
        return Ok(RecordFile { format: FORMAT, remotes: BTreeMap::new() });
    };
    let file: RecordFile = serde_json::from_slice(&bytes).map_err(|e| {
        Error::input(
            Location::at(path, e.line().max(1), e.column().max(1)),
            format!("the last-applied record is damaged: {}", crate::secrets_file::safe_json_message(&e)),
            "delete the file: the next plan will then rewrite every key it cannot verify",
        )
    })?;
    if file.format != FORMAT {
        return Err(Error::input(
            Location::file(path),
            format!("the last-applied record has format {}, which this version does not read", file.format),
            "upgrade cloud-secrets, or delete the file",
        ));
    }
    Ok(file)
}

/// The record of what was last applied to `remote`, from the profile's record file at `path`.
pub fn load(path: &Path, remote: &str) -> Result<Option<LastApplied>> {
    Ok(read(path)?.remotes.remove(remote))
}

/// Stores the record of `remote`, keeping those of other remotes.
pub fn save(path: &Path, remote: &str, record: LastApplied) -> Result<()> {
    // The file holds the records of every remote of the profile: two applies to two remotes
    // read, change and write it in turn, so that neither loses the other's record.
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".lock");
    let _lock = crate::files::lock(&path.with_file_name(name), std::time::Duration::from_secs(30))?;
    let mut file = read(path)?;
    file.format = FORMAT;
    file.remotes.insert(remote.to_owned(), record);
    let mut bytes = serde_json::to_vec_pretty(&file).expect("the record serializes");
    bytes.push(b'\n');
    crate::files::write_private(path, &bytes)
}

/// The digests as the file holds them: an object of names to hex.
mod digest_map {
    use std::collections::BTreeMap;

    use serde::de::{Deserializer, Error as _, MapAccess, Visitor};
    use serde::ser::{SerializeMap, Serializer};

    pub fn serialize<S: Serializer>(digests: &BTreeMap<String, [u8; 32]>, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(digests.len()))?;
        for (name, tag) in digests {
            map.serialize_entry(name, &hex::encode(tag))?;
        }
        map.end()
    }

    /// Reads the members, then builds the map in one pass: the file is written sorted, and
    /// inserting a hundred thousand names one by one costs several times more.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, [u8; 32]>, D::Error> {
        struct Members;
        impl<'de> Visitor<'de> for Members {
            type Value = BTreeMap<String, [u8; 32]>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object of names to hex digests")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some((name, digest)) = map.next_entry::<String, std::borrow::Cow<'_, str>>()? {
                    let mut tag = [0u8; 32];
                    hex::decode_to_slice(digest.as_bytes(), &mut tag)
                        .map_err(|_| M::Error::custom("a digest is not 64 hex digits"))?;
                    members.push((name, tag));
                }
                Ok(members.into_iter().collect())
            }
        }
        d.deserialize_map(Members)
    }
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        hex::decode(text).map_err(|_| serde::de::Error::custom("the salt is not hex"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_digests_not_values_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let mut record = LastApplied::fresh().unwrap();
        record.remember("A", &SecretValue::new("CANARY-record-1"));
        record.remember("B", &SecretValue::new("b"));
        record.forget("B");
        let path = dir.path().join(FILE_NAME);
        save(&path, "cloud https://x tenant t", record.clone()).unwrap();
        save(&path, "other", LastApplied::new(vec![1])).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("CANARY"), "{text}");
        let loaded = load(&path, "cloud https://x tenant t").unwrap().unwrap();
        assert_eq!(loaded, record);
        assert_eq!(loaded.matches("A", &SecretValue::new("CANARY-record-1")), Some(true));
        assert_eq!(loaded.matches("A", &SecretValue::new("other")), Some(false));
        assert_eq!(loaded.matches("B", &SecretValue::new("b")), None);
        assert!(load(&path, "nowhere").unwrap().is_none());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }

    #[test]
    fn two_records_digest_the_same_value_differently() {
        let (mut a, mut b) = (LastApplied::fresh().unwrap(), LastApplied::fresh().unwrap());
        a.remember("A", &SecretValue::new("same"));
        b.remember("A", &SecretValue::new("same"));
        assert_ne!(a.digests["A"], b.digests["A"]);
    }

    #[test]
    fn digests_are_hex_in_the_file_and_a_digest_that_is_not_is_a_damaged_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let mut record = LastApplied::new(vec![7; 32]);
        record.remember("A", &SecretValue::new("a"));
        save(&path, "r", record.clone()).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let tag = Digester::new(&[7; 32]).hex(&SecretValue::new("a"));
        assert!(text.contains(&format!("\"A\": \"{tag}\"")), "{text}");
        assert_eq!(load(&path, "r").unwrap(), Some(record));

        std::fs::write(&path, text.replace(&tag, &tag[..62])).unwrap();
        let message = load(&path, "r").unwrap_err().to_string();
        // Where, and what to do; never the text of the file.
        assert!(message.contains("last-applied.json:8:"), "{message}");
        assert!(message.contains("the last-applied record is damaged"), "{message}");
        assert!(!message.contains(&tag[..62]), "{message}");
    }
}
