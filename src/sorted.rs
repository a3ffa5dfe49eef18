//! One walk over two maps sorted by the same key, in place of a lookup per name: the planner and
//! `compare` pair tens of thousands of names this way in linear time.

use std::cmp::Ordering;
use std::collections::BTreeMap;
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

/// Every key of either map once, in order, with what each map holds under it.
pub fn join<'a, K: Ord, A, B>(
    left: &'a BTreeMap<K, A>,
    right: &'a BTreeMap<K, B>,
) -> impl Iterator<Item = (&'a K, Paired<'a, A, B>)> {
    Join { left: left.iter().peekable(), right: right.iter().peekable() }
}

/// [`join`] over parts of two maps, such as ranges of keys: each iterator in key order.
pub fn join_ranges<'a, K: Ord + 'a, A: 'a, B: 'a>(
    left: impl Iterator<Item = (&'a K, &'a A)>,
    right: impl Iterator<Item = (&'a K, &'a B)>,
) -> impl Iterator<Item = (&'a K, Paired<'a, A, B>)> {
    Join { left: left.peekable(), right: right.peekable() }
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

/// The item of `items` (sorted by `key`) whose key is `at`, the first if several are, after
/// passing over those before it: a lookup by walking, for keys asked in increasing order.
pub fn take_at<I: Iterator, K: Ord + ?Sized>(
    items: &mut Peekable<I>,
    at: &K,
    key: impl Fn(&I::Item) -> &K,
) -> Option<I::Item> {
    while items.next_if(|item| key(item) < at).is_some() {}
    items.next_if(|item| key(item) == at)
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
