//! The last-applied record: for each remote a profile was applied to, salted digests of the
//! values cloud-secrets last wrote there (never the values).
//!
//! A remote that lists names only does not let a value be compared; the record stands in for it
//! ("unchanged since the last apply"). A remote that lists digests is compared directly, and the
//! record tells a change made here from drift made on the remote. The file is
//! `<profile>/last-applied.json`, mode 0600, and should be gitignored like secrets.json.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::error::{Error, Location, Result};
use crate::json::{Members, Text};
use crate::secret::{Digester, SecretValue};
use crate::sorted;

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
    digests: sorted::Map<[u8; 32]>,
    /// The salt of the digests the remote listed when this was recorded (hex in the file; absent
    /// for a remote that lists names only): a plan digests the desired values under it while
    /// the remote is read, and compares them only if the listing brings the same salt.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "hex_bytes_or_none")]
    listing_salt: Option<Vec<u8>>,
    /// The HMAC key made from `salt`, prepared on first use.
    #[serde(skip)]
    digester: OnceLock<Digester>,
}

impl PartialEq for LastApplied {
    fn eq(&self, other: &Self) -> bool {
        self.salt == other.salt && self.digests == other.digests && self.listing_salt == other.listing_salt
    }
}

impl Eq for LastApplied {}

impl LastApplied {
    /// An empty record with this salt.
    pub fn new(salt: Vec<u8>) -> Self {
        Self { salt, digests: sorted::Map::default(), listing_salt: None, digester: OnceLock::new() }
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
    /// The plain lookup [`InOrder::matches`] is tested against (the planner walks the record).
    #[cfg(test)]
    pub fn matches(&self, name: &str, value: &SecretValue) -> Option<bool> {
        self.digests.get(name).map(|tag| self.digester().verify(value, tag))
    }

    /// The salt of the digests the remote listed at the last apply.
    pub fn listing_salt(&self) -> Option<&[u8]> {
        self.listing_salt.as_deref()
    }

    /// Notes the salt of the digests the remote lists now (`None`: it lists names only).
    pub fn note_listing_salt(&mut self, salt: Option<&[u8]>) {
        self.listing_salt = salt.map(<[u8]>::to_vec);
    }

    /// The record walked in name order from `from` (from the first name when `None`), for names
    /// asked in increasing order.
    pub fn in_order(&self, from: Option<&str>) -> InOrder<'_> {
        let digests = match from {
            Some(from) => self.digests.from(from),
            None => self.digests.iter(),
        };
        InOrder { record: self, digests: digests.peekable() }
    }

    /// Records that `value` was applied as `name`: one name at a time, the form
    /// [`LastApplied::note_apply`] is tested against (an apply notes all its names at once).
    #[cfg(test)]
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
        // Digested all at once: on every core for a large apply.
        let (names, values): (Vec<&str>, Vec<&SecretValue>) = written.into_iter().unzip();
        let tags = self.digester().tags(&values);
        let written = names.into_iter().map(str::to_owned).zip(tags);
        // Built in bulk, the record's digests first: of a name in both, or written twice, the
        // last digest wins, as it does when inserting.
        self.digests = std::mem::take(&mut self.digests).into_iter().chain(written).collect();
        let removed: HashSet<&str, foldhash::fast::RandomState> = removed.into_iter().collect();
        if !removed.is_empty() {
            self.digests.retain(|name, _| !removed.contains(name));
        }
    }

    /// Records that `name` was removed.
    #[cfg(test)]
    pub fn forget(&mut self, name: &str) {
        self.digests.remove(name);
    }
}

/// A record walked in name order: [`LastApplied::matches`] for names asked in increasing order,
/// without a lookup each (a plan of a hundred thousand names asks in order).
pub struct InOrder<'a> {
    record: &'a LastApplied,
    digests: std::iter::Peekable<sorted::Iter<'a, [u8; 32]>>,
}

impl InOrder<'_> {
    /// Whether `value` is what was last applied as `name`; `None` when there is no record of it.
    /// `name` comes after every name asked before.
    pub fn matches(&mut self, name: &str, value: &SecretValue) -> Option<bool> {
        let (_, tag) = crate::sorted::take_at(&mut self.digests, name, |(listed, _)| listed.as_str())?;
        Some(self.record.digester().verify(value, tag))
    }
}

/// The record file as read to replace one remote's record: every remote's record left as its
/// JSON text, so that the others are not parsed.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordFile<'a> {
    format: u32,
    #[serde(borrow)]
    remotes: Members<'a, &'a RawValue>,
}

/// The record file as written: the remotes sorted by key, one of them new.
#[derive(Serialize)]
struct RecordOut<'a> {
    format: u32,
    remotes: BTreeMap<&'a str, Record<'a>>,
}

/// One remote's record, as read from the file or to be written.
#[derive(Serialize)]
#[serde(untagged)]
enum Record<'a> {
    Kept(&'a RawValue),
    New(&'a LastApplied),
}

/// Reads the record file at `path` and hands its remotes to `with`; no file is an empty record.
fn read<T>(path: &Path, with: impl FnOnce(&[(Text<'_>, &RawValue)]) -> Result<T>) -> Result<T> {
    let Some(bytes) = crate::files::read_limited(path, 64 * 1024 * 1024, FILE_NAME)? else {
        return with(&[]);
    };
    let file: RecordFile<'_> = serde_json::from_slice(&bytes).map_err(|e| damaged(path, &e))?;
    check_format(path, file.format)?;
    with(&file.remotes.0)
}

/// Refuses a record of a format this version does not read.
fn check_format(path: &Path, format: u32) -> Result<()> {
    if format == FORMAT {
        return Ok(());
    }
    Err(Error::input(
        Location::file(path),
        format!("the last-applied record has format {format}, which this version does not read"),
        "upgrade cloud-secrets, or delete the file",
    ))
}

/// The error for a record file that cannot be read, where serde_json stopped in it.
fn damaged(path: &Path, error: &serde_json::Error) -> Error {
    let (line, column) = (error.line().max(1), error.column().max(1));
    Error::input(
        Location::at(path, line, column),
        format!("the last-applied record is damaged: {}", crate::secrets_file::safe_json_message(error)),
        "delete the file: the next plan will then rewrite every key it cannot verify",
    )
}

/// The record of what was last applied to `remote`, from the profile's record file at `path`.
/// The file is read once: that remote's record is parsed where it stands, the others are only
/// skipped over.
pub fn load(path: &Path, remote: &str) -> Result<Option<LastApplied>> {
    let Some(bytes) = crate::files::read_limited(path, 64 * 1024 * 1024, FILE_NAME)? else { return Ok(None) };
    let mut reader = serde_json::Deserializer::from_slice(&bytes);
    let read = serde::de::DeserializeSeed::deserialize(OneRemote(remote), &mut reader)
        .and_then(|read| reader.end().map(|()| read))
        .map_err(|e| damaged(path, &e))?;
    check_format(path, read.format)?;
    Ok(read.record)
}

/// What [`load`] reads of the file: its format and one remote's record.
struct ReadOne {
    format: u32,
    record: Option<LastApplied>,
}

/// The record file, read for the remote named.
struct OneRemote<'r>(&'r str);

impl<'de> serde::de::DeserializeSeed<'de> for OneRemote<'_> {
    type Value = ReadOne;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> std::result::Result<ReadOne, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for OneRemote<'_> {
    type Value = ReadOne;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a last-applied record")
    }
    fn visit_map<M: serde::de::MapAccess<'de>>(self, mut map: M) -> std::result::Result<ReadOne, M::Error> {
        use serde::de::{Error as _, IgnoredAny};
        let (mut format, mut remotes) = (None, None);
        while let Some(field) = map.next_key::<Text<'de>>()? {
            match field.0.as_ref() {
                "format" if format.is_some() => return Err(M::Error::duplicate_field("format")),
                "remotes" if remotes.is_some() => return Err(M::Error::duplicate_field("remotes")),
                "format" => format = Some(map.next_value::<u32>()?),
                // Records of another format are not read: the format is what is reported. (The
                // file is read in one pass, so this holds when `format` comes first, as written.)
                "remotes" if format.is_some_and(|format| format != FORMAT) => {
                    map.next_value::<IgnoredAny>()?;
                    remotes = Some(None);
                }
                "remotes" => remotes = Some(map.next_value_seed(Remotes(self.0))?),
                other => return Err(M::Error::unknown_field(other, &["format", "remotes"])),
            }
        }
        let format = format.ok_or_else(|| M::Error::missing_field("format"))?;
        let record = remotes.ok_or_else(|| M::Error::missing_field("remotes"))?;
        Ok(ReadOne { format, record })
    }
}

/// The remotes' records: the one named (the last written under its key counts, as for any JSON
/// reader), the others skipped.
struct Remotes<'r>(&'r str);

impl<'de> serde::de::DeserializeSeed<'de> for Remotes<'_> {
    type Value = Option<LastApplied>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> std::result::Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Remotes<'_> {
    type Value = Option<LastApplied>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object of remotes to their records")
    }
    fn visit_map<M: serde::de::MapAccess<'de>>(
        self,
        mut map: M,
    ) -> std::result::Result<Self::Value, M::Error> {
        let mut found = None;
        while let Some(key) = map.next_key::<Text<'de>>()? {
            if key.0 == self.0 {
                found = Some(map.next_value::<LastApplied>()?);
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

/// Stores the record of `remote`, keeping those of other remotes as they are written.
pub fn save(path: &Path, remote: &str, record: LastApplied) -> Result<()> {
    // The file holds the records of every remote of the profile: two applies to two remotes
    // read, change and write it in turn, so that neither loses the other's record.
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".lock");
    let _lock = crate::files::lock(&path.with_file_name(name), std::time::Duration::from_secs(30))?;
    let bytes = read(path, |remotes| {
        let mut out = RecordOut { format: FORMAT, remotes: BTreeMap::new() };
        for (key, raw) in remotes {
            out.remotes.insert(key.0.as_ref(), Record::Kept(raw));
        }
        out.remotes.insert(remote, Record::New(&record));
        let mut bytes = serde_json::to_vec_pretty(&out).expect("the record serializes");
        bytes.push(b'\n');
        Ok(bytes)
    })?;
    crate::files::write_private(path, &bytes)
}

/// The digests as the file holds them: an object of names to hex.
mod digest_map {
    use serde::de::{Deserializer, Error as _, MapAccess, Visitor};
    use serde::ser::{SerializeMap, Serializer};

    use crate::json::Text;
    use crate::sorted::Map;

    pub fn serialize<S: Serializer>(digests: &Map<[u8; 32]>, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(digests.len()))?;
        let mut hex = [0u8; 64];
        for (name, tag) in digests {
            hex::encode_to_slice(tag, &mut hex).expect("64 bytes hold 32 in hex");
            map.serialize_entry(name, std::str::from_utf8(&hex).expect("hex is ASCII"))?;
        }
        map.end()
    }

    /// Reads the members, then sorts them (the file is written sorted: the sort only checks),
    /// keeping the last digest of a name written twice, as any JSON reader does. Each digest is
    /// decoded as it is read, so that a damaged one is reported where it stands in the file.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Map<[u8; 32]>, D::Error> {
        struct Digests;
        impl<'de> Visitor<'de> for Digests {
            type Value = Map<[u8; 32]>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object of names to hex digests")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some((name, digest)) = map.next_entry::<Text<'de>, Text<'de>>()? {
                    let mut tag = [0u8; 32];
                    hex::decode_to_slice(digest.0.as_bytes(), &mut tag)
                        .map_err(|_| M::Error::custom("a digest is not 64 hex digits"))?;
                    members.push((name.0.into_owned(), tag));
                }
                Ok(members.into_iter().collect())
            }
        }
        d.deserialize_map(Digests)
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

/// [`hex_bytes`] for a member that may be absent.
mod hex_bytes_or_none {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match bytes {
            Some(bytes) => super::hex_bytes::serialize(bytes, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        let text = <Option<String> as serde::Deserialize>::deserialize(d)?;
        text.map(|text| hex::decode(text).map_err(|_| serde::de::Error::custom("the salt is not hex")))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// An apply noted in bulk leaves the record as remembering each write in order, then
        /// forgetting each removal, does: the last digest of a name wins, and exactly the removed
        /// names go (a name written and removed too goes).
        #[test]
        fn an_apply_is_noted_as_each_write_then_each_removal_would_be(
            before in proptest::collection::vec(("[a-f]", "[xyz]"), 0..8),
            written in proptest::collection::vec(("[a-f]", "[xyz]"), 0..8),
            removed in proptest::collection::vec("[a-f]", 0..4),
        ) {
            let mut bulk = LastApplied::new(vec![7; 16]);
            for (name, value) in &before {
                bulk.remember(name, &SecretValue::new(value.as_str()));
            }
            let mut each = bulk.clone();
            let values: Vec<(String, SecretValue)> =
                written.iter().map(|(n, v)| (n.clone(), SecretValue::new(v.as_str()))).collect();
            bulk.note_apply(values.iter().map(|(n, v)| (n.as_str(), v)), removed.iter().map(String::as_str));
            for (name, value) in &values {
                each.remember(name, value);
            }
            for name in &removed {
                each.forget(name);
            }
            proptest::prop_assert_eq!(bulk, each);
        }
    }

    #[test]
    fn walked_in_order_the_record_tells_what_a_lookup_does() {
        let mut record = LastApplied::new(vec![7; 16]);
        for name in ["B", "D", "F", "H"] {
            record.remember(name, &SecretValue::new(name));
        }
        let asked = ["A", "B", "C", "D", "G", "H", "Z"];
        for from in [None, Some("C"), Some("D"), Some("Z")] {
            let mut walk = record.in_order(from);
            for name in asked.iter().filter(|n| from.is_none_or(|from| **n >= from)) {
                for value in [*name, "other"] {
                    // Asked twice for one name only in this test: a walk is asked each name once.
                    let mut again = record.in_order(Some(name));
                    let expected = record.matches(name, &SecretValue::new(value));
                    assert_eq!(again.matches(name, &SecretValue::new(value)), expected, "{name} {value}");
                }
                assert_eq!(
                    walk.matches(name, &SecretValue::new(*name)),
                    record.matches(name, &SecretValue::new(*name)),
                    "{from:?} {name}"
                );
            }
        }
    }

    #[test]
    fn remembers_digests_not_values_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let mut record = LastApplied::fresh().unwrap();
        record.remember("A", &SecretValue::new("CANARY-record-1"));
        record.remember("B", &SecretValue::new("b"));
        record.forget("B");
        record.note_listing_salt(Some(&[0xab, 0x01]));
        let path = dir.path().join(FILE_NAME);
        save(&path, "cloud https://x tenant t", record.clone()).unwrap();
        save(&path, "other", LastApplied::new(vec![1])).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("CANARY"), "{text}");
        assert!(text.contains(r#""listing_salt": "ab01""#), "{text}");
        let loaded = load(&path, "cloud https://x tenant t").unwrap().unwrap();
        assert_eq!(loaded, record);
        assert_eq!(loaded.listing_salt(), Some(&[0xab, 0x01][..]));
        // A remote that lists names only has no listing salt, and none is written.
        assert_eq!(text.matches("listing_salt").count(), 1, "{text}");
        assert_eq!(load(&path, "other").unwrap().unwrap().listing_salt(), None);
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
    fn saving_one_remote_keeps_the_others_as_written_and_reads_only_the_one_asked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let mut a = LastApplied::new(vec![1; 32]);
        a.remember("A", &SecretValue::new("a"));
        let mut b = LastApplied::new(vec![2; 32]);
        b.remember("B", &SecretValue::new("b"));
        save(&path, "remote a", a.clone()).unwrap();
        save(&path, "remote b", b.clone()).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let a_text = &text[text.find("\"remote a\"").unwrap()..text.find("\"remote b\"").unwrap()];
        assert!(a_text.contains(&Digester::new(&[1; 32]).hex(&SecretValue::new("a"))), "{text}");
        // Written again with b changed: a's part of the file is the same text.
        b.remember("B2", &SecretValue::new("b2"));
        save(&path, "remote b", b.clone()).unwrap();
        let again = std::fs::read_to_string(&path).unwrap();
        assert!(again.contains(a_text), "{again}");
        assert_eq!(load(&path, "remote a").unwrap(), Some(a));
        assert_eq!(load(&path, "remote b").unwrap(), Some(b));

        // A damaged digest under a is reported where it is in the file, and only when a is read.
        let bad = Digester::new(&[1; 32]).hex(&SecretValue::new("a"));
        std::fs::write(&path, again.replace(&bad, "xyz")).unwrap();
        let message = load(&path, "remote a").unwrap_err().to_string();
        // serde_json places it just after the digest: at the brace closing a's digests.
        let line = again.lines().position(|l| l.contains(&bad)).unwrap() + 2;
        assert!(message.contains(&format!("last-applied.json:{line}:7:")), "{message}");
        assert!(load(&path, "remote b").unwrap().is_some());
    }

    #[test]
    fn a_record_file_that_is_not_this_format_is_refused_for_what_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let refused = |text: &str| {
            std::fs::write(&path, text).unwrap();
            load(&path, "r").unwrap_err().to_string()
        };
        // Another format, whatever its remotes look like, is reported as such, read or saved.
        for text in [r#"{"format": 2, "remotes": 7}"#, r#"{"format": 2, "remotes": {"r": {"other": []}}}"#] {
            assert!(refused(text).contains("has format 2, which this version does not read"), "{text}");
        }
        let saved = save(&path, "r", LastApplied::new(vec![1])).unwrap_err().to_string();
        assert!(saved.contains("has format 2"), "{saved}");
        // Damage is placed where serde_json stopped.
        for (text, column) in [
            (r#"{"remotes": {}}"#, 15),
            (r#"{"format": 1}"#, 13),
            (r#"{"format": 1, "remotes": {}, "format": 1}"#, 37),
            (r#"{"format": 1, "remotes": {}, "extra": 1}"#, 36),
            (r#"{"format": 1, "remotes": {}} x"#, 30),
        ] {
            let message = refused(text);
            assert!(message.contains(&format!("last-applied.json:1:{column}:")), "{text}: {message}");
            assert!(message.contains("the last-applied record is damaged"), "{text}: {message}");
        }
        // The last record written under a remote's key is the one read; the others are skipped.
        let salt = |n: u8| format!(r#"{{"salt": "{n:02x}", "digests": {{}}}}"#);
        std::fs::write(
            &path,
            format!(r#"{{"format": 1, "remotes": {{"r": {}, "s": [1], "r": {}}}}}"#, salt(1), salt(2)),
        )
        .unwrap();
        assert_eq!(load(&path, "r").unwrap(), Some(LastApplied::new(vec![2])));
        assert_eq!(load(&path, "t").unwrap(), None);
        // No listing salt, written as null.
        std::fs::write(
            &path,
            r#"{"format": 1, "remotes": {"r": {"salt": "02", "digests": {}, "listing_salt": null}}}"#,
        )
        .unwrap();
        assert_eq!(load(&path, "r").unwrap(), Some(LastApplied::new(vec![2])));
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
