//! Two profiles compared by variable name, never by shown value: each side's value is reduced to
//! a keyed digest (a key made fresh for the run, or the remote's own salted digest), and only
//! the digests are compared. Pure.

use std::collections::{BTreeMap, BTreeSet};

/// A value reduced to what can be compared without showing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fingerprint {
    /// An HMAC under the run's own key.
    Run(String),
    /// A remote's digest under its own salt: comparable only with one under the same salt.
    Salted {
        /// The salt.
        salt: Vec<u8>,
        /// The digest.
        digest: String,
    },
}

/// What one side holds under a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Side {
    /// A value.
    Set(Fingerprint),
    /// The key is there, its value null, empty or blank.
    NotSet,
    /// The remote lists the name but its value cannot be read.
    Unreadable,
}

/// What a side shows in a report (never the value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    /// A value is set.
    Set,
    /// The key is there without a value.
    NotSet,
    /// The name is not there.
    Absent,
    /// Listed, value unreadable.
    Unreadable,
}

/// How the two sides compare under one name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The same value on both sides.
    Same,
    /// Different values.
    Different,
    /// A value on the first side only.
    OnlyInA,
    /// A value on the second side only.
    OnlyInB,
    /// No value on either side (a key without one, on one side or both).
    NotSet,
    /// Both sides have the name, but the values cannot be compared.
    Unknown,
}

/// One name, compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The variable name.
    pub name: String,
    /// What the first side holds.
    pub a: Shown,
    /// What the second side holds.
    pub b: Shown,
    /// How they compare.
    pub verdict: Verdict,
}

/// Compares two sides by name, in name order.
pub fn compare(a: &BTreeMap<String, Side>, b: &BTreeMap<String, Side>) -> Vec<Row> {
    let names: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    names
        .into_iter()
        .map(|name| {
            let (x, y) = (a.get(name), b.get(name));
            Row { name: name.clone(), a: shown(x), b: shown(y), verdict: verdict(x, y) }
        })
        .collect()
}

/// Whether the comparison found the two sides to differ.
pub fn differ(rows: &[Row]) -> bool {
    rows.iter().any(|r| matches!(r.verdict, Verdict::Different | Verdict::OnlyInA | Verdict::OnlyInB))
}

fn shown(side: Option<&Side>) -> Shown {
    match side {
        Some(Side::Set(_)) => Shown::Set,
        Some(Side::NotSet) => Shown::NotSet,
        Some(Side::Unreadable) => Shown::Unreadable,
        None => Shown::Absent,
    }
}

fn verdict(a: Option<&Side>, b: Option<&Side>) -> Verdict {
    let has_value = |s: Option<&Side>| matches!(s, Some(Side::Set(_) | Side::Unreadable));
    match (a, b) {
        (Some(Side::Set(x)), Some(Side::Set(y))) => match (x, y) {
            (Fingerprint::Run(x), Fingerprint::Run(y)) => same(x == y),
            (Fingerprint::Salted { salt: s, digest: x }, Fingerprint::Salted { salt: t, digest: y })
                if s == t =>
            {
                same(x == y)
            }
            _ => Verdict::Unknown,
        },
        (x, y) if has_value(x) && has_value(y) => Verdict::Unknown,
        (x, _) if has_value(x) => Verdict::OnlyInA,
        (_, y) if has_value(y) => Verdict::OnlyInB,
        _ => Verdict::NotSet,
    }
}

fn same(equal: bool) -> Verdict {
    if equal { Verdict::Same } else { Verdict::Different }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn side(pairs: &[(&str, Side)]) -> BTreeMap<String, Side> {
        pairs.iter().map(|(n, s)| ((*n).to_owned(), s.clone())).collect()
    }

    fn run(d: &str) -> Side {
        Side::Set(Fingerprint::Run(d.to_owned()))
    }

    fn salted(salt: u8, d: &str) -> Side {
        Side::Set(Fingerprint::Salted { salt: vec![salt], digest: d.to_owned() })
    }

    #[test]
    fn every_pair_of_sides_has_one_verdict() {
        let a = side(&[
            ("SAME", run("1")),
            ("DIFF", run("1")),
            ("ONLY_A", run("1")),
            ("EMPTY_B", run("1")),
            ("NOT_SET", Side::NotSet),
            ("LISTED", Side::Unreadable),
            ("LISTED_ONLY_A", Side::Unreadable),
            ("SALTS", salted(1, "x")),
            ("SAME_SALT", salted(1, "x")),
        ]);
        let b = side(&[
            ("SAME", run("1")),
            ("DIFF", run("2")),
            ("ONLY_B", run("1")),
            ("EMPTY_B", Side::NotSet),
            ("NOT_SET", Side::NotSet),
            ("LISTED", run("1")),
            ("SALTS", salted(2, "x")),
            ("SAME_SALT", salted(1, "y")),
        ]);
        let verdicts: BTreeMap<String, Verdict> =
            compare(&a, &b).into_iter().map(|r| (r.name, r.verdict)).collect();
        let expect = [
            ("SAME", Verdict::Same),
            ("DIFF", Verdict::Different),
            ("ONLY_A", Verdict::OnlyInA),
            ("ONLY_B", Verdict::OnlyInB),
            ("EMPTY_B", Verdict::OnlyInA),
            ("NOT_SET", Verdict::NotSet),
            ("LISTED", Verdict::Unknown),
            ("LISTED_ONLY_A", Verdict::OnlyInA),
            ("SALTS", Verdict::Unknown),
            ("SAME_SALT", Verdict::Different),
        ];
        for (name, verdict) in expect {
            assert_eq!(verdicts[name], verdict, "{name}");
        }
        assert!(differ(&compare(&a, &b)));
        assert!(!differ(&compare(&side(&[("X", run("1"))]), &side(&[("X", run("1"))]))));
    }
}
