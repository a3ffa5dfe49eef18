//! Names kept in order. One walk over two maps sorted by the same key, in place of a lookup per
//! name: the planner and `compare` pair tens of thousands of names this way in linear time. And
//! [`Map`], values by name as a list sorted by name rather than a tree: a remote's variables (a
//! listing arrives sorted, and is kept as it comes), the desired state's, the record's digests.

use std::cmp::Ordering;
use std::fmt;
use std::iter::Peekable;

/// What the two maps hold under one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paired<'a, A, B> {
    /// Only the left map has the key.
    Left(&'a A),
    /// Only the right map has the key.
    Right(&'a B),
    /// Both maps have it.
    Both(&'a A, &'a B),
}

/// Every key of either map once, in order, with what each map holds under it: each side is a
/// map, or part of one, walked in key order.
pub fn join<'a, K: Ord + 'a, A: 'a, B: 'a>(
    left: impl IntoIterator<Item = (&'a K, &'a A)>,
    right: impl IntoIterator<Item = (&'a K, &'a B)>,
) -> impl Iterator<Item = (&'a K, Paired<'a, A, B>)> {
    Join { left: left.into_iter().peekable(), right: right.into_iter().peekable() }
}

struct Join<L: Iterator, R: Iterator> {
    left: Peekable<L>,
    right: Peekable<R>,
}

impl<'a, K: Ord + 'a, A: 'a, B: 'a, L, R> Iterator for Join<L, R>
where
    L: Iterator<Item = (&'a K, &'a A)>,
    R: Iterator<Item = (&'a K, &'a B)>,
{
    type Item = (&'a K, Paired<'a, A, B>);

    fn next(&mut self) -> Option<Self::Item> {
        let order = match (self.left.peek(), self.right.peek()) {
            (None, None) => return None,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some((l, _)), Some((r, _))) => l.cmp(r),
        };
        Some(match order {
            Ordering::Less => self.left.next().map(|(k, a)| (k, Paired::Left(a)))?,
            Ordering::Greater => self.right.next().map(|(k, b)| (k, Paired::Right(b)))?,
            Ordering::Equal => {
                let (k, a) = self.left.next()?;
                let (_, b) = self.right.next()?;
                (k, Paired::Both(a, b))
            }
        })
    }
}

/// A walk over a [`Map`], or part of one, in name order.
pub type Iter<'a, V> =
    std::iter::Map<std::slice::Iter<'a, (String, V)>, fn(&'a (String, V)) -> (&'a String, &'a V)>;

/// An entry of a [`Map`] as a pair of references.
fn pair<V>((name, value): &(String, V)) -> (&String, &V) {
    (name, value)
}

/// Values by name, in a list sorted by name: what a `BTreeMap<String, V>` does, built by one sort
/// (or from entries sorted already, as a listing gives them) without a tree, walked without one,
/// and split at a name by a search. Each name is in it once; inserting or removing one name moves
/// those after it, so a map of many names is built whole.
#[derive(Clone, PartialEq, Eq)]
pub struct Map<V> {
    entries: Vec<(String, V)>,
}

impl<V> Default for Map<V> {
    fn default() -> Self {
        Self { entries: Vec::new() }
    }
}

impl<V: fmt::Debug> fmt::Debug for Map<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<V> Map<V> {
    /// A map of `entries` that are sorted by name, each name once.
    ///
    /// # Panics
    /// In a debug build, when they are not.
    pub fn from_sorted(entries: Vec<(String, V)>) -> Self {
        debug_assert!(entries.is_sorted_by(|a, b| a.0 < b.0), "entries sorted, each name once");
        Self { entries }
    }

    /// Where `name` is, or would be.
    fn search(&self, name: &str) -> Result<usize, usize> {
        self.entries.binary_search_by(|(listed, _)| listed.as_str().cmp(name))
    }

    /// The value under `name`.
    pub fn get(&self, name: &str) -> Option<&V> {
        self.search(name).ok().map(|at| &self.entries[at].1)
    }

    /// Whether `name` is in the map.
    pub fn contains_key(&self, name: &str) -> bool {
        self.search(name).is_ok()
    }

    /// Puts `value` under `name`, giving back the value it replaces.
    pub fn insert(&mut self, name: String, value: V) -> Option<V> {
        match self.search(&name) {
            Ok(at) => Some(std::mem::replace(&mut self.entries[at].1, value)),
            Err(at) => {
                self.entries.insert(at, (name, value));
                None
            }
        }
    }

    /// Takes `name` out, with its value.
    pub fn remove(&mut self, name: &str) -> Option<V> {
        self.search(name).ok().map(|at| self.entries.remove(at).1)
    }

    /// How many names.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every name with its value, in order.
    pub fn iter(&self) -> Iter<'_, V> {
        self.entries.iter().map(pair)
    }

    /// The names, in order.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &String> + ExactSizeIterator {
        self.entries.iter().map(|(name, _)| name)
    }

    /// The values, in the order of their names.
    pub fn values(&self) -> impl DoubleEndedIterator<Item = &V> + ExactSizeIterator {
        self.entries.iter().map(|(_, value)| value)
    }

    /// The values, in the order of their names, to change them.
    pub fn values_mut(&mut self) -> impl DoubleEndedIterator<Item = &mut V> + ExactSizeIterator {
        self.entries.iter_mut().map(|(_, value)| value)
    }

    /// The names before `name`, with their values, in order.
    pub fn before(&self, name: &str) -> Iter<'_, V> {
        let at = self.search(name).unwrap_or_else(|at| at);
        self.entries[..at].iter().map(pair)
    }

    /// `name` and the names after it, with their values, in order.
    pub fn from(&self, name: &str) -> Iter<'_, V> {
        let at = self.search(name).unwrap_or_else(|at| at);
        self.entries[at..].iter().map(pair)
    }

    /// Keeps only the names `keep` says to.
    pub fn retain(&mut self, mut keep: impl FnMut(&str, &V) -> bool) {
        self.entries.retain(|(name, value)| keep(name, value));
    }
}

/// The value under `name`.
///
/// # Panics
/// When `name` is not in the map.
impl<V> std::ops::Index<&str> for Map<V> {
    type Output = V;

    fn index(&self, name: &str) -> &V {
        self.get(name).expect("the name is in the map")
    }
}

/// In any order; of a name given twice, the last value, as a `BTreeMap` keeps.
impl<V> FromIterator<(String, V)> for Map<V> {
    fn from_iter<I: IntoIterator<Item = (String, V)>>(entries: I) -> Self {
        let mut entries: Vec<(String, V)> = entries.into_iter().collect();
        // Stable: of one name, the entries stay in the order given.
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        // `dedup_by` keeps the first of a run: the later value is moved into it first.
        entries.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                std::mem::swap(later, kept);
            }
            same
        });
        Self { entries }
    }
}

impl<V, const N: usize> From<[(String, V); N]> for Map<V> {
    fn from(entries: [(String, V); N]) -> Self {
        entries.into_iter().collect()
    }
}

impl<V> IntoIterator for Map<V> {
    type Item = (String, V);
    type IntoIter = std::vec::IntoIter<(String, V)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl<'a, V> IntoIterator for &'a Map<V> {
    type Item = (&'a String, &'a V);
    type IntoIter = Iter<'a, V>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// The item of `items` (sorted by `key`) whose key is `at`, the first if several are, after
/// passing over those before it: a lookup by walking, for keys asked in increasing order.
pub fn take_at<I: Iterator, K: Ord + ?Sized>(
    items: &mut Peekable<I>,
    at: &K,
    key: impl Fn(&I::Item) -> &K,
) -> Option<I::Item> {
    // One comparison an item.
    loop {
        match key(items.peek()?).cmp(at) {
            Ordering::Less => _ = items.next(),
            Ordering::Equal => return items.next(),
            Ordering::Greater => return None,
        }
    }
}

/// The first item (in order) equal to an earlier one, with the last earlier one equal to it:
/// `(repeat, earlier)` as positions in `items`. Found by a stable sort rather than a table: the
/// long lists this checks (the keys of a large secrets.json) are mostly in order already.
pub fn first_repeat<K: Ord>(items: impl IntoIterator<Item = K>) -> Option<(usize, usize)> {
    let mut keyed: Vec<(K, usize)> = items.into_iter().enumerate().map(|(i, k)| (k, i)).collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    keyed.windows(2).filter(|pair| pair[0].0 == pair[1].0).map(|pair| (pair[1].1, pair[0].1)).min()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn join_pairs_every_key_once_in_order(
            left in proptest::collection::btree_map(0u8..40, 0u8..9, 0..30),
            right in proptest::collection::btree_map(0u8..40, 0u8..9, 0..30),
        ) {
            let joined: Vec<_> = join(&left, &right).collect();
            let mut keys: Vec<u8> = left.keys().chain(right.keys()).copied().collect();
            keys.sort_unstable();
            keys.dedup();
            prop_assert_eq!(joined.iter().map(|(k, _)| **k).collect::<Vec<_>>(), keys);
            for (k, paired) in joined {
                let expected = match (left.get(k), right.get(k)) {
                    (Some(a), Some(b)) => Paired::Both(a, b),
                    (Some(a), None) => Paired::Left(a),
                    (None, Some(b)) => Paired::Right(b),
                    (None, None) => unreachable!("a joined key is in one of the maps"),
                };
                prop_assert_eq!(paired, expected);
            }
        }

        #[test]
        fn the_first_repeat_is_the_one_a_table_of_items_seen_finds(items in proptest::collection::vec(0u8..12, 0..40)) {
            // What inserting each item into a table, in order, finds first.
            let mut last_at = std::collections::HashMap::new();
            let expected = items.iter().enumerate().find_map(|(i, item)| last_at.insert(*item, i).map(|earlier| (i, earlier)));
            prop_assert_eq!(first_repeat(items.iter()), expected);
        }

        /// Built from entries in any order (names repeated), then changed, the map holds what a
        /// `BTreeMap` holds, and splits at any name where the tree's ranges do.
        #[test]
        fn the_map_holds_what_a_tree_holds(
            entries in proptest::collection::vec(("[a-e]{0,2}", any::<u8>()), 0..30),
            inserted in proptest::collection::vec(("[a-e]{0,2}", any::<u8>()), 0..8),
            removed in proptest::collection::vec("[a-e]{0,2}", 0..8),
            at in "[a-e]{0,2}",
        ) {
            let mut map: Map<u8> = entries.iter().cloned().collect();
            let mut tree: std::collections::BTreeMap<String, u8> = entries.into_iter().collect();
            for (name, value) in inserted {
                prop_assert_eq!(map.insert(name.clone(), value), tree.insert(name, value));
            }
            for name in &removed {
                prop_assert_eq!(map.remove(name), tree.remove(name));
            }
            map.retain(|name, value| name.len() != 1 || value % 3 != 0);
            tree.retain(|name, value| name.len() != 1 || *value % 3 != 0);
            prop_assert_eq!(map.iter().collect::<Vec<_>>(), tree.iter().collect::<Vec<_>>());
            prop_assert_eq!(map.len(), tree.len());
            prop_assert_eq!(map.get(&at), tree.get(&at));
            prop_assert_eq!(map.contains_key(&at), tree.contains_key(&at));
            prop_assert_eq!(map.before(&at).collect::<Vec<_>>(), tree.range(..at.clone()).collect::<Vec<_>>());
            prop_assert_eq!(map.from(&at).collect::<Vec<_>>(), tree.range(at..).collect::<Vec<_>>());
            prop_assert_eq!(Map::from_sorted(tree.into_iter().collect()), map);
        }

        /// Walked to in increasing order, each key gives what a search of the list gives.
        #[test]
        fn taking_at_keys_in_order_finds_what_a_search_finds(
            items in proptest::collection::vec((0u8..30, any::<u8>()), 0..40),
            asked in proptest::collection::btree_set(0u8..32, 0..20),
        ) {
            let mut items = items;
            items.sort_by_key(|item| item.0);
            let mut walk = items.iter().peekable();
            for key in asked {
                let expected = items.iter().find(|item| item.0 == key);
                prop_assert_eq!(take_at(&mut walk, &key, |item| &item.0), expected);
            }
        }
    }
}
