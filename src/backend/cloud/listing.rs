//! The secrets listing, parsed without a copy of every name and digest on the way: strings are
//! borrowed from the answer's body where they hold no escape, and owned once, in the remote's map.
//! Names and digests are paired by one walk over both, sorted.

use std::borrow::Cow;

use serde::Deserialize;

use crate::json::{Members, Text};
use crate::remote::{Digest, RemoteValue};
use crate::sorted::Map;

/// What the listing says: every name, sorted, with its digest where the answer carries digests
/// and a salt that is hex.
pub(super) struct Parsed {
    pub(super) vars: Map<RemoteValue>,
    pub(super) salt: Option<Vec<u8>>,
    /// Whether the body held the three members alone, as servers write them (names, digests and
    /// the salt, no value).
    pub(super) plain: bool,
}

/// Parses a listing's body.
pub(super) fn parse(body: &[u8]) -> serde_json::Result<Parsed> {
    // Checked as UTF-8 once, in bulk, rather than string by string.
    let text = std::str::from_utf8(body).map_err(|_| serde::de::Error::custom("the listing is not UTF-8"))?;
    let (listing, plain) = match Plain::listing(text) {
        Some(listing) => (listing, true),
        None => (serde_json::from_str(text)?, false),
    };
    Ok(Parsed { plain, ..listing.paired() })
}

#[derive(Deserialize)]
struct Listing<'a> {
    #[serde(borrow)]
    keys: Vec<Text<'a>>,
    #[serde(borrow, default)]
    digests: Option<Members<'a, Text<'a>>>,
    #[serde(borrow, default)]
    digest_salt: Option<Text<'a>>,
}

impl Listing<'_> {
    /// Every name once, sorted, with its digest: the first one written for it, and only under a
    /// salt that is hex.
    fn paired(self) -> Parsed {
        let salt = self.digest_salt.and_then(|salt| hex::decode(salt.0.as_ref()).ok());
        let mut digests = self.digests.filter(|_| salt.is_some()).map(|d| d.0).unwrap_or_default();
        // As servers write it: the names sorted once each, and a digest for each, in the same
        // order.
        let same_names = digests.len() == self.keys.len()
            && digests.iter().zip(&self.keys).all(|((listed, _), name)| listed.0 == name.0);
        if same_names && self.keys.is_sorted_by(|a, b| a.0 < b.0) {
            let vars = (self.keys.into_iter().zip(digests))
                .map(|(name, (_, digest))| {
                    (name.0.into_owned(), RemoteValue::Digest(Digest::from_hex(&digest.0)))
                })
                .collect();
            return Parsed { vars: Map::from_sorted(vars), salt, plain: false };
        }
        digests.sort_by(|a, b| a.0.0.cmp(&b.0.0));
        let mut names = self.keys;
        names.sort_by(|a, b| a.0.cmp(&b.0));
        names.dedup_by(|a, b| a.0 == b.0);
        let mut digests = digests.into_iter().peekable();
        let mut vars = Vec::with_capacity(names.len());
        for name in names {
            let value = match crate::sorted::take_at(&mut digests, name.0.as_ref(), |(listed, _)| {
                listed.0.as_ref()
            }) {
                Some((_, digest)) => RemoteValue::Digest(Digest::from_hex(&digest.0)),
                None => RemoteValue::Unreadable,
            };
            vars.push((name.0.into_owned(), value));
        }
        Parsed { vars: Map::from_sorted(vars), salt, plain: false }
    }
}

/// A list of the listing is sized up front for at most this many items (more grow it as they
/// come), so that a large body does not reserve several gigabytes.
const PRESIZED_ITEMS_AT_MOST: usize = 1 << 20;

/// The listing as servers write it, read without the general JSON reader (whose speed is that
/// of a reader of any document): the three members, each at most once, in any order, with any
/// whitespace between tokens, and strings without an escape. For anything else (an escape,
/// another member or a repeated one, `null`, a syntax error) it gives up, and the general reader
/// reads the body from the start: a body either reader takes is read the same by both.
struct Plain<'a> {
    text: &'a str,
    at: usize,
    /// The most items a list of the text can have.
    most: usize,
}

impl<'a> Plain<'a> {
    fn listing(text: &'a str) -> Option<Listing<'a>> {
        // Each name, digest and member name is a string: half the quotes bound the items of
        // any one list, so that no list is copied as it grows (a grown list also touches pages
        // the first time twice over).
        // Counted in runs short enough for a byte-sized count, which the compiler does many
        // bytes at a time.
        let quotes: usize = (text.as_bytes().chunks(255))
            .map(|run| usize::from(run.iter().fold(0u8, |n, &b| n + u8::from(b == b'"'))))
            .sum();
        let most = (quotes / 2).min(PRESIZED_ITEMS_AT_MOST);
        let mut plain = Plain { text, at: 0, most };
        let (mut keys, mut digests, mut digest_salt) = (None, None, None);
        plain.each(b'{', b'}', |plain| {
            let name = plain.string()?;
            plain.token(b':')?;
            match name {
                "keys" if keys.is_none() => keys = Some(plain.list(b'[', b']', Self::text)?),
                "digests" if digests.is_none() => {
                    let members = plain.list(b'{', b'}', |plain| {
                        let name = plain.text()?;
                        plain.token(b':')?;
                        Some((name, plain.text()?))
                    })?;
                    digests = Some(Members(members));
                }
                "digest_salt" if digest_salt.is_none() => digest_salt = Some(plain.text()?),
                _ => return None,
            }
            Some(())
        })?;
        plain.space();
        (plain.at == text.len()).then_some(Listing { keys: keys?, digests, digest_salt })
    }

    /// The items of an array or object between `open` and `close`, separated by commas.
    fn list<T>(
        &mut self,
        open: u8,
        close: u8,
        mut item: impl FnMut(&mut Self) -> Option<T>,
    ) -> Option<Vec<T>> {
        let mut items = Vec::with_capacity(self.most);
        self.each(open, close, |plain| item(plain).map(|read| items.push(read)))?;
        Some(items)
    }

    fn each(&mut self, open: u8, close: u8, mut item: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.token(open)?;
        self.space();
        if self.peek()? == close {
            self.at += 1;
            return Some(());
        }
        loop {
            item(self)?;
            self.space();
            match self.peek()? {
                b',' => self.at += 1,
                byte if byte == close => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    fn text(&mut self) -> Option<Text<'a>> {
        self.string().map(|s| Text(Cow::Borrowed(s)))
    }

    /// A string without an escape or a control character.
    fn string(&mut self) -> Option<&'a str> {
        self.token(b'"')?;
        let bytes = &self.text.as_bytes()[self.at..];
        let length = memchr::memchr(b'"', bytes)?;
        // Looked at whole (no early exit), which the compiler does many bytes at a time.
        let plain = bytes[..length].iter().fold(true, |plain, &b| plain & (b != b'\\') & (b >= 0x20));
        if !plain {
            return None;
        }
        let string = self.text.get(self.at..self.at + length)?;
        self.at += length + 1;
        Some(string)
    }

    /// `byte`, after any whitespace.
    fn token(&mut self, byte: u8) -> Option<()> {
        self.space();
        (self.peek()? == byte).then(|| self.at += 1)
    }

    fn space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A digest of 64 hex digits, `pair` (two digits) repeated.
    fn digest(pair: &str) -> String {
        pair.repeat(32)
    }

    #[test]
    fn names_are_paired_with_their_digests_in_any_order_and_escapes_are_read() {
        let (aa, ab, cc) = (digest("aa"), digest("Ab"), digest("CC"));
        // Once as servers write it (the fast reader), once with an escape (the general reader).
        for a in ["A", "\\u0041"] {
            let body = format!(
                r#"{{"keys": ["B", "AB", "C", "{a}"], "digests": {{"C": "{cc}", "{a}": "{aa}", "AB": "{ab}", "A": "{cc}"}},
                "digest_salt": "00ff"}}"#
            );
            assert_eq!(Plain::listing(&body).is_some(), a == "A");
            let parsed = parse(body.as_bytes()).unwrap();
            assert_eq!(parsed.plain, a == "A");
            assert_eq!(parsed.salt, Some(vec![0, 255]));
            let shown: Vec<(&str, RemoteValue)> =
                parsed.vars.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
            assert_eq!(
                shown,
                [
                    ("A", RemoteValue::Digest(Digest::from_hex(&aa))),
                    ("AB", RemoteValue::Digest(Digest::from_hex(&ab))),
                    ("B", RemoteValue::Unreadable),
                    ("C", RemoteValue::Digest(Digest::from_hex(&cc))),
                ]
            );
        }
    }

    #[test]
    fn the_fast_reader_leaves_what_it_does_not_know_to_the_general_reader() {
        let d = digest("0f");
        let known = [
            format!(r#"{{"digest_salt":"00","digests":{{"A":"{d}"}},"keys":["A"]}}"#),
            " { \"keys\" :\t[ \"A\" , \"B\" ]\r\n, \"digests\":{} } \n".to_owned(),
            r#"{"keys":[]}"#.to_owned(),
        ];
        for body in &known {
            assert!(Plain::listing(body).is_some(), "{body}");
        }
        let unknown = [
            r#"{"keys":["A\"B"]}"#,
            r#"{"keys":["A"],"etag":"x"}"#,
            r#"{"keys":["A"],"keys":["B"]}"#,
            r#"{"keys":["A"],"digests":null}"#,
            r#"{"digests":{}}"#,
            r#"{"keys":["A",]}"#,
            r#"{"keys":["A"]} x"#,
            "{\"keys\":[\"A\tB\"]}",
        ];
        for body in unknown {
            assert!(Plain::listing(body).is_none(), "{body}");
        }
    }

    proptest::proptest! {
        /// A body either reader takes is read the same by both; one the general reader refuses,
        /// the fast one does not take.
        #[test]
        fn both_readers_read_a_listing_alike(
            members in proptest::collection::vec((0usize..5, proptest::collection::vec(0usize..6, 0..5)), 0..5),
            space in 0usize..3,
        ) {
            let names = ["A", "B", "\\u0041", "A\\\"", "", "Ä"];
            let gap = [" ", "", "\n\t"][space];
            let string = |i: usize| format!("{gap}\"{}\"{gap}", names[i]);
            let body = members
                .iter()
                .map(|(kind, items)| match kind {
                    0 => format!("\"keys\":[{}]", items.iter().map(|&i| string(i)).collect::<Vec<_>>().join(",")),
                    1 => format!(
                        "\"digests\":{{{}}}",
                        items.iter().map(|&i| format!("{}:\"{}\"", string(i), digest(&format!("{i}a")))).collect::<Vec<_>>().join(",")
                    ),
                    2 => "\"digest_salt\":\"0a\"".to_owned(),
                    3 => "\"digests\":null".to_owned(),
                    _ => "\"other\":1".to_owned(),
                })
                .collect::<Vec<_>>()
                .join(&format!("{gap},{gap}"));
            let body = format!("{gap}{{{gap}{body}{gap}}}{gap}");
            let general = serde_json::from_str::<Listing<'_>>(&body).map(Listing::paired);
            if let Some(fast) = Plain::listing(&body).map(Listing::paired) {
                let general = general.expect("the general reader takes what the fast one does");
                proptest::prop_assert_eq!(fast.vars, general.vars);
                proptest::prop_assert_eq!(fast.salt, general.salt);
            }
        }
    }

    #[test]
    fn digests_without_a_salt_that_is_hex_are_not_used() {
        for body in [
            &br#"{"keys": ["A"], "digests": {"A": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}}"#[..],
            br#"{"keys": ["A"], "digests": {"A": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}, "digest_salt": "zz"}"#,
        ] {
            let parsed = parse(body).unwrap();
            assert_eq!(parsed.salt, None);
            assert_eq!(parsed.vars, [("A".to_owned(), RemoteValue::Unreadable)].into());
        }
    }

    #[test]
    fn a_listing_that_is_not_the_expected_json_is_refused() {
        for body in [&b"[]"[..], br#"{"keys": [1]}"#, br#"{"keys": ["A"], "digests": {"A": 1}}"#, b"{"] {
            assert!(parse(body).is_err());
        }
    }
}
