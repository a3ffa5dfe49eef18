//! The secrets listing, parsed without a copy of every name and digest on the way. As servers
//! write it, it is read straight into the remote's variables ([`Plain`]); otherwise serde_json
//! reads it, borrowing the strings that hold no escape, and its names and digests are paired by
//! one walk over both, sorted. Names are owned once, in the remote's variables.

use serde::Deserialize;

use crate::json::{Members, Scan, Text};
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
    match Plain::listing(text) {
        Some(parsed) => Ok(parsed),
        None => Ok(serde_json::from_str::<Listing<'_>>(text)?.paired()),
    }
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
        let salt = salt(self.digest_salt.as_ref().map(|salt| salt.0.as_ref()));
        let mut digests = self.digests.filter(|_| salt.is_some()).map(|d| d.0).unwrap_or_default();
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

/// The listing's salt, if it is hex.
fn salt(text: Option<&str>) -> Option<Vec<u8>> {
    text.and_then(|salt| hex::decode(salt).ok())
}

/// A list of the listing is sized up front for at most this many items (more grow it as they
/// come), so that a large body does not reserve several gigabytes.
const PRESIZED_ITEMS_AT_MOST: usize = 1 << 20;

/// The listing as servers write it, read without the general JSON reader (whose speed is that
/// of a reader of any document), straight into the remote's variables: the three members, each
/// at most once, in any order, with any whitespace between tokens; strings without an escape;
/// the names sorted, each once, and the same names in the same order in `keys` and `digests`.
/// For anything else (an escape, another member or a repeated one, `null`, names out of order,
/// a syntax error) it gives up, and the general reader reads the body from the start: a body
/// either reader takes is read the same by both.
struct Plain<'a> {
    text: &'a str,
    scan: Scan<'a>,
    /// The most items a list of the text can have.
    most: usize,
}

impl<'a> Plain<'a> {
    fn listing(text: &'a str) -> Option<Parsed> {
        // Each name, digest and member name is a string: half the quotes bound the items of
        // any one list, so that no list is copied as it grows (a grown list also touches pages
        // the first time twice over).
        let most = (crate::json::count(b'"', text.as_bytes()) / 2).min(PRESIZED_ITEMS_AT_MOST);
        let mut plain = Plain { text, scan: Scan::new(text), most };
        // The names with their digests, from whichever of `keys` and `digests` comes first; the
        // other must name the same, in the same order.
        let mut vars: Option<Vec<(String, RemoteValue)>> = None;
        let (mut keys, mut digests, mut digest_salt) = (false, false, None);
        plain.each(b'{', b'}', |plain| {
            let name = plain.string()?;
            plain.token(b':')?;
            match name {
                "keys" if !keys => {
                    keys = true;
                    plain.names(&mut vars, b'[', b']', |_| Some(None))
                }
                "digests" if !digests => {
                    digests = true;
                    plain.names(&mut vars, b'{', b'}', |plain| {
                        plain.token(b':')?;
                        plain.string().map(Some)
                    })
                }
                "digest_salt" if digest_salt.is_none() => {
                    digest_salt = Some(plain.string()?);
                    Some(())
                }
                _ => None,
            }
        })?;
        plain.scan.blank();
        if plain.scan.at != text.len() || !keys {
            return None;
        }
        let mut vars = vars.unwrap_or_default();
        let salt = salt(digest_salt);
        if salt.is_none() {
            // Digests under no salt that is hex are not used.
            vars.iter_mut().for_each(|(_, value)| *value = RemoteValue::Unreadable);
        }
        Some(Parsed { vars: Map::from_sorted(vars), salt, plain: true })
    }

    /// The names of a list between `open` and `close`, each followed by what `then` reads (a
    /// digest, or nothing): the variables, when they are the first list read, or checked against
    /// them, name for name, when they are the second.
    fn names(
        &mut self,
        vars: &mut Option<Vec<(String, RemoteValue)>>,
        open: u8,
        close: u8,
        then: impl Fn(&mut Self) -> Option<Option<&'a str>>,
    ) -> Option<()> {
        let value = |digest: Option<&str>| {
            digest.map_or(RemoteValue::Unreadable, |d| RemoteValue::Digest(Digest::from_hex(d)))
        };
        match vars {
            None => {
                let mut read = Vec::with_capacity(self.most);
                self.each(open, close, |plain| {
                    let name = plain.string()?;
                    let digest = then(plain)?;
                    // Sorted, each once.
                    if read.last().is_some_and(|(last, _): &(String, RemoteValue)| last.as_str() >= name) {
                        return None;
                    }
                    read.push((name.to_owned(), value(digest)));
                    Some(())
                })?;
                *vars = Some(read);
            }
            Some(read) => {
                let mut next = read.iter_mut();
                self.each(open, close, |plain| {
                    let name = plain.string()?;
                    let digest = then(plain)?;
                    let (_, held) = next.next().filter(|(listed, _)| listed == name)?;
                    if digest.is_some() {
                        *held = value(digest);
                    }
                    Some(())
                })?;
                // As many names as the first list.
                if next.next().is_some() {
                    return None;
                }
            }
        }
        Some(())
    }

    fn each(&mut self, open: u8, close: u8, mut item: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.token(open)?;
        self.scan.blank();
        if self.scan.peek()? == close {
            self.scan.at += 1;
            return Some(());
        }
        loop {
            item(self)?;
            self.scan.blank();
            match self.scan.peek()? {
                b',' => self.scan.at += 1,
                byte if byte == close => {
                    self.scan.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// A string without an escape or a control character, after any whitespace.
    fn string(&mut self) -> Option<&'a str> {
        self.scan.blank();
        let inside = self.scan.plain_string()?;
        self.text.get(inside)
    }

    /// `byte`, after any whitespace.
    fn token(&mut self, byte: u8) -> Option<()> {
        self.scan.blank();
        self.scan.eat(byte)
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
        let expected = [
            ("A", RemoteValue::Digest(Digest::from_hex(&aa))),
            ("AB", RemoteValue::Digest(Digest::from_hex(&ab))),
            ("B", RemoteValue::Unreadable),
            ("C", RemoteValue::Digest(Digest::from_hex(&cc))),
        ];
        // Sorted, but `B` without a digest; in another order of members; out of order, with
        // an escape and a repeated digest: each the general reader's.
        let bodies = [
            format!(
                r#"{{"digest_salt": "00ff", "digests": {{"A": "{aa}", "AB": "{ab}", "C": "{cc}"}}, "keys": ["A", "AB", "B", "C"]}}"#
            ),
            format!(
                r#"{{"keys": ["A", "AB", "B", "C"], "digests": {{"A": "{aa}", "AB": "{ab}", "C": "{cc}"}}, "digest_salt": "00ff"}}"#
            ),
            format!(
                r#"{{"keys": ["B", "AB", "C", "\u0041"], "digests": {{"C": "{cc}", "\u0041": "{aa}", "AB": "{ab}", "A": "{cc}"}},
                "digest_salt": "00ff"}}"#
            ),
        ];
        for body in &bodies {
            assert!(Plain::listing(body).is_none(), "{body}");
            let parsed = parse(body.as_bytes()).unwrap();
            assert!(!parsed.plain);
            assert_eq!(parsed.salt, Some(vec![0, 255]));
            let shown: Vec<(&str, RemoteValue)> =
                parsed.vars.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
            assert_eq!(shown, expected, "{body}");
        }
        // As servers write it, every name with its digest: the fast reader's.
        let plain = format!(
            r#"{{"digest_salt": "00ff", "digests": {{"A": "{aa}", "AB": "{ab}", "B": "{cc}", "C": "{cc}"}}, "keys": ["A", "AB", "B", "C"]}}"#
        );
        let parsed = parse(plain.as_bytes()).unwrap();
        assert!(parsed.plain);
        assert_eq!(parsed.salt, Some(vec![0, 255]));
        let shown: Vec<(&str, RemoteValue)> =
            parsed.vars.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        let mut expected = expected;
        expected[2].1 = RemoteValue::Digest(Digest::from_hex(&cc));
        assert_eq!(shown, expected);
    }

    #[test]
    fn the_fast_reader_leaves_what_it_does_not_know_to_the_general_reader() {
        let d = digest("0f");
        let known = [
            format!(r#"{{"digest_salt":"00","digests":{{"A":"{d}"}},"keys":["A"]}}"#),
            format!(
                " {{ \"keys\" :\t[ \"A\" , \"B\" ]\r\n, \"digests\":{{\"A\": \"{d}\",\"B\":\"{d}\"}} }} \n"
            ),
            r#"{"keys":[]}"#.to_owned(),
            r#"{"keys":["A","B"]}"#.to_owned(),
        ];
        for body in &known {
            assert!(Plain::listing(body).is_some(), "{body}");
        }
        let unknown = [
            r#"{"keys":["A\"B"]}"#.to_owned(),
            r#"{"keys":["A"],"etag":"x"}"#.to_owned(),
            r#"{"keys":["A"],"keys":["B"]}"#.to_owned(),
            r#"{"keys":["A"],"digests":null}"#.to_owned(),
            r#"{"digests":{}}"#.to_owned(),
            r#"{"keys":["A",]}"#.to_owned(),
            r#"{"keys":["A"]} x"#.to_owned(),
            "{\"keys\":[\"A\tB\"]}".to_owned(),
            // Out of order, repeated, or not the same names in both lists.
            r#"{"keys":["B","A"]}"#.to_owned(),
            r#"{"keys":["A","A"]}"#.to_owned(),
            format!(r#"{{"keys":["A","B"],"digests":{{"A":"{d}"}}}}"#),
            format!(r#"{{"keys":["A"],"digests":{{"A":"{d}","B":"{d}"}}}}"#),
            format!(r#"{{"keys":["A"],"digests":{{"B":"{d}"}}}}"#),
            format!(r#"{{"digests":{{"B":"{d}","A":"{d}"}},"keys":["B","A"]}}"#),
        ];
        for body in &unknown {
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
            if let Some(fast) = Plain::listing(&body) {
                let general = general.expect("the general reader takes what the fast one does");
                proptest::prop_assert_eq!(fast.vars, general.vars);
                proptest::prop_assert_eq!(fast.salt, general.salt);
            }
        }
    }

    proptest::proptest! {
        /// Listings as servers write them (names sorted, each once, a digest for each, the
        /// members in any order), and such listings with one name left out, repeated or moved in
        /// one of the lists: the fast reader takes the first and reads them as the general
        /// reader does; what it takes of the others, it reads the same.
        #[test]
        fn the_fast_reader_reads_a_plain_listing_as_the_general_one(
            names in proptest::collection::btree_set("[A-D_]{1,3}", 0..12),
            order in 0usize..6,
            salt in 0usize..3,
            spoil in proptest::option::of((0usize..3, 0usize..12, proptest::bool::ANY)),
            space in 0usize..3,
        ) {
            let gap = [" ", "", "\n\t"][space];
            let names: Vec<&String> = names.iter().collect();
            let (mut keys, mut digested) = (names.clone(), names.clone());
            if let Some((how, at, in_keys)) = spoil {
                let list = if in_keys { &mut keys } else { &mut digested };
                if !list.is_empty() {
                    let at = at % list.len();
                    match how {
                        0 => _ = list.remove(at),
                        1 => list.insert(at, list[at]),
                        _ => {
                            let next = (at + 1) % list.len();
                            list.swap(at, next);
                        }
                    }
                }
            }
            let quoted = |text: &str| format!("{gap}\"{text}\"{gap}");
            let keys = format!("\"keys\":[{}]", keys.iter().map(|n| quoted(n)).collect::<Vec<_>>().join(","));
            let digests = format!(
                "\"digests\":{{{}}}",
                digested
                    .iter()
                    .map(|n| format!("{}:{}", quoted(n), quoted(&digest(&format!("{:02x}", n.len())))))
                    .collect::<Vec<_>>()
                    .join(",")
            );
            let salt = ["", "\"digest_salt\":\"0a\"", "\"digest_salt\":\"nothex\""][salt];
            let members = match order {
                0 => [keys.as_str(), &digests, salt],
                1 => [&digests, &keys, salt],
                2 => [salt, &digests, &keys],
                3 => [salt, &keys, &digests],
                4 => [&keys, salt, ""],
                _ => [&keys, "", ""],
            };
            let members: Vec<&str> = members.into_iter().filter(|m| !m.is_empty()).collect();
            let body = format!("{gap}{{{gap}{}{gap}}}{gap}", members.join(&format!("{gap},{gap}")));
            let general = serde_json::from_str::<Listing<'_>>(&body).map(Listing::paired).expect("a listing");
            let fast = Plain::listing(&body);
            if spoil.is_none() {
                proptest::prop_assert!(fast.is_some(), "{}", body);
            }
            if let Some(fast) = fast {
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
