//! JSON read without a copy of every string: the listing, secrets.json and the last-applied
//! record hold up to a hundred thousand names, each borrowed from the text it was read from
//! unless it holds an escape.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};

/// A string of the text: borrowed, unless it holds an escape.
pub struct Text<'a>(pub Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, text: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(text)))
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(text.to_owned())))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

/// An object, as its members in the order written (a name written twice is kept twice).
pub struct Members<'a, V>(pub Vec<(Text<'a>, V)>);

impl<'de: 'a, 'a, V: Deserialize<'de>> Deserialize<'de> for Members<'a, V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MembersVisitor<'a, V>(PhantomData<(&'a (), V)>);
        impl<'de: 'a, 'a, V: Deserialize<'de>> Visitor<'de> for MembersVisitor<'a, V> {
            type Value = Members<'a, V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some(member) = map.next_entry::<Text<'a>, V>()? {
                    members.push(member);
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(MembersVisitor(PhantomData))
    }
}

/// A JSON text read forwards, token by token, by the one-pass readers of documents written the
/// plain way (the listing, secrets.json): blanks, an expected byte, strings without an escape.
pub struct Scan<'a> {
    /// The text's bytes.
    pub bytes: &'a [u8],
    /// Where the next byte is.
    pub at: usize,
}

impl<'a> Scan<'a> {
    /// The text from its start.
    pub fn new(text: &'a str) -> Self {
        Self { bytes: text.as_bytes(), at: 0 }
    }

    /// The next byte.
    pub fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    /// Past JSON's blanks.
    pub fn blank(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    /// Past `byte`, if it is next.
    pub fn eat(&mut self, byte: u8) -> Option<()> {
        (self.peek() == Some(byte)).then(|| self.at += 1)
    }

    /// Where the inside of the string that starts here lies, past its closing quote, if it holds
    /// no escape and no control character: then its text is the string.
    pub fn plain_string(&mut self) -> Option<std::ops::Range<usize>> {
        self.eat(b'"')?;
        let start = self.at;
        let end = start + memchr::memchr(b'"', &self.bytes[start..])?;
        // Every byte looked at, without stopping at the first bad one: the compiler then looks
        // at many at once.
        let bad = self.bytes[start..end].iter().fold(false, |bad, b| bad | (*b == b'\\') | (*b < 0x20));
        if bad {
            return None;
        }
        self.at = end + 1;
        Some(start..end)
    }
}

/// How many times `byte` is in `bytes`: a bound on the items of a large document, to size a list
/// once. Counted by a plain loop in runs of 255, which the compiler makes wide (the count of a run
/// fits a byte): a quote or a colon comes too often for a search.
pub fn count(byte: u8, bytes: &[u8]) -> usize {
    let run = |run: &[u8]| run.iter().fold(0u8, |n, b| n + u8::from(*b == byte));
    bytes.chunks(255).map(|chunk| usize::from(run(chunk))).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_counted_across_runs() {
        let text: Vec<u8> = (0..2000).map(|i| if i % 3 == 0 { b':' } else { b'a' }).collect();
        for len in [0, 1, 254, 255, 256, 510, 511, 2000] {
            assert_eq!(
                count(b':', &text[..len]),
                text[..len].iter().filter(|b| **b == b':').count(),
                "{len}"
            );
        }
        // Every byte a match: a run's count reaches 255, and no more.
        let all = [b':'; 1000];
        for len in [255, 256, 511, 1000] {
            assert_eq!(count(b':', &all[..len]), len, "{len}");
        }
    }

    #[test]
    fn strings_are_borrowed_unless_escaped_and_members_keep_their_order() {
        let text = r#"{"b": "x", "a\u0041": "y\n", "b": "z"}"#;
        let members: Members<'_, Text<'_>> = serde_json::from_str(text).unwrap();
        let read: Vec<(&str, &str)> = members.0.iter().map(|(k, v)| (k.0.as_ref(), v.0.as_ref())).collect();
        assert_eq!(read, [("b", "x"), ("aA", "y\n"), ("b", "z")]);
        assert!(matches!(members.0[0].0.0, Cow::Borrowed(_)));
        assert!(matches!(members.0[1].0.0, Cow::Owned(_)));
        assert!(serde_json::from_str::<Members<'_, Text<'_>>>(r#"{"a": 1}"#).is_err());
    }
}
