//! The secrets listing, parsed without a copy of every name and digest on the way: strings are
//! borrowed from the answer's body where they hold no escape, and owned once, in the remote's map.
//! Names and digests are paired by one walk over both, sorted.

use serde::Deserialize;

use crate::json::{Members, Text};
use crate::remote::RemoteValue;

/// What the listing says: every name, sorted, with its digest where the answer carries digests
/// and a salt that is hex.
pub(super) struct Parsed {
    pub(super) vars: Vec<(String, RemoteValue)>,
    pub(super) salt: Option<Vec<u8>>,
}

/// Parses a listing's body.
pub(super) fn parse(body: &[u8]) -> serde_json::Result<Parsed> {
    // Checked as UTF-8 once, in bulk, rather than string by string.
    let text = std::str::from_utf8(body).map_err(|_| serde::de::Error::custom("the listing is not UTF-8"))?;
    let listing: Listing<'_> = serde_json::from_str(text)?;
    let salt = listing.digest_salt.and_then(|salt| hex::decode(salt.0.as_ref()).ok());
    let mut digests = listing.digests.filter(|_| salt.is_some()).map(|d| d.0).unwrap_or_default();
    digests.sort_by(|a, b| a.0.0.cmp(&b.0.0));
    let mut names = listing.keys;
    names.sort_by(|a, b| a.0.cmp(&b.0));
    names.dedup_by(|a, b| a.0 == b.0);
    let mut digests = digests.into_iter().peekable();
    let vars: Vec<(String, RemoteValue)> = names
        .into_iter()
        .map(|name| {
            while digests.next_if(|(listed, _)| listed.0 < name.0).is_some() {}
            let value = match digests.next_if(|(listed, _)| listed.0 == name.0) {
                Some((_, digest)) => RemoteValue::Digest(digest.0.to_ascii_lowercase()),
                None => RemoteValue::Unreadable,
            };
            (name.0.into_owned(), value)
        })
        .collect();
    Ok(Parsed { vars, salt })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_paired_with_their_digests_in_any_order_and_escapes_are_read() {
        let body = br#"{"keys": ["B", "A\u0042", "C", "A"], "digests": {"C": "CC", "A": "aa", "AB": "Ab"},
            "digest_salt": "00ff"}"#;
        let parsed = parse(body).unwrap();
        assert_eq!(parsed.salt, Some(vec![0, 255]));
        let shown: Vec<(&str, RemoteValue)> =
            parsed.vars.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        assert_eq!(
            shown,
            [
                ("A", RemoteValue::Digest("aa".to_owned())),
                ("AB", RemoteValue::Digest("ab".to_owned())),
                ("B", RemoteValue::Unreadable),
                ("C", RemoteValue::Digest("cc".to_owned())),
            ]
        );
    }

    #[test]
    fn digests_without_a_salt_that_is_hex_are_not_used() {
        for body in [
            &br#"{"keys": ["A"], "digests": {"A": "aa"}}"#[..],
            br#"{"keys": ["A"], "digests": {"A": "aa"}, "digest_salt": "zz"}"#,
        ] {
            let parsed = parse(body).unwrap();
            assert_eq!(parsed.salt, None);
            assert_eq!(parsed.vars, [("A".to_owned(), RemoteValue::Unreadable)]);
        }
    }

    #[test]
    fn a_listing_that_is_not_the_expected_json_is_refused() {
        for body in [&b"[]"[..], br#"{"keys": [1]}"#, br#"{"keys": ["A"], "digests": {"A": 1}}"#, b"{"] {
            assert!(parse(body).is_err());
        }
    }
}
