//! Items (rules, policies) indexed by the request paths they can match, so that a request
//! looks at the few that could apply instead of walking them all: exact paths by hash, and
//! prefixes and suffixes by the request path's own prefixes and suffixes of the lengths in
//! use. Items the index cannot narrow (regexes, no path condition) are always candidates.
//! Candidates come out in item order, so first-match and DENY-before-ALLOW orders hold.

use std::borrow::Cow;
use std::collections::BTreeMap;

use crate::jwt::issuer_map::insert_sorted;

/// One path condition an item can match through.
#[derive(Debug, Clone, Copy)]
pub enum PathKey<'a> {
    Exact(&'a str),
    Prefix(&'a str),
    Suffix(&'a str),
    /// Any path may match (a regex, or no path condition).
    Any,
}

#[derive(Debug, Default)]
pub struct PathIndex {
    exact: BTreeMap<String, Vec<usize>>,
    prefix: BTreeMap<String, Vec<usize>>,
    /// The distinct prefix lengths in use, ascending.
    prefix_lens: Vec<usize>,
    suffix: BTreeMap<String, Vec<usize>>,
    suffix_lens: Vec<usize>,
    always: Vec<usize>,
}

impl PathIndex {
    /// `keys(i)` lists item i's path conditions; an item with none can never match.
    pub fn new<'a>(items: usize, keys: impl Fn(usize) -> Vec<PathKey<'a>>) -> Self {
        let mut index = Self::default();
        for item in 0..items {
            for key in keys(item) {
                let (map, lens, text) = match key {
                    PathKey::Exact(p) => {
                        insert_sorted(index.exact.entry(p.to_string()).or_default(), item);
                        continue;
                    }
                    PathKey::Any => {
                        insert_sorted(&mut index.always, item);
                        continue;
                    }
                    PathKey::Prefix(p) => (&mut index.prefix, &mut index.prefix_lens, p),
                    PathKey::Suffix(s) => (&mut index.suffix, &mut index.suffix_lens, s),
                };
                insert_sorted(map.entry(text.to_string()).or_default(), item);
                insert_sorted(lens, text.len());
            }
        }
        index
    }

    /// The items that could match `path`, ascending and without repeats.
    pub fn candidates(&self, path: &str) -> Cow<'_, [usize]> {
        let prefixes = self
            .prefix_lens
            .iter()
            .take_while(|l| **l <= path.len())
            .filter_map(|&len| path.get(..len).and_then(|p| self.prefix.get(p)));
        let suffixes = self
            .suffix_lens
            .iter()
            .take_while(|l| **l <= path.len())
            .filter_map(|&len| {
                path.get(path.len() - len..)
                    .and_then(|s| self.suffix.get(s))
            });
        let mut found = self
            .exact
            .get(path)
            .into_iter()
            .chain(prefixes)
            .chain(suffixes);
        // Each list is sorted and free of repeats: when only one applies (the usual case),
        // it is the answer as it stands, with no copy per request.
        let mut out = match (self.always.is_empty(), found.next()) {
            (true, None) => return Cow::Borrowed(&[]),
            (false, None) => return Cow::Borrowed(&self.always),
            (true, Some(only)) => match found.next() {
                None => return Cow::Borrowed(only),
                Some(second) => {
                    let mut out = only.clone();
                    second.iter().for_each(|i| insert_sorted(&mut out, *i));
                    out
                }
            },
            (false, Some(first)) => {
                let mut out = self.always.clone();
                first.iter().for_each(|i| insert_sorted(&mut out, *i));
                out
            }
        };
        for list in found {
            list.iter().for_each(|i| insert_sorted(&mut out, *i));
        }
        Cow::Owned(out)
    }
}

/// What the differential tests of the indexed rules and policies share.
#[cfg(test)]
#[allow(clippy::indexing_slicing)]
pub mod testing {
    pub use crate::test_rng::Rng;

    /// Paths built from few segments, so that rules and requests collide often.
    pub fn random_path(rng: &mut Rng) -> String {
        let segments = ["a", "ab", "b", "api", "x.png", "", "v1"];
        let mut p = String::new();
        for _ in 0..rng.below(4) {
            p.push('/');
            p.push_str(rng.pick(&segments));
        }
        if p.is_empty() || rng.below(5) == 0 {
            p.push('/');
        }
        p
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn candidates_are_the_items_whose_keys_match() {
        let keys = [
            vec![PathKey::Prefix("/api/")],
            vec![PathKey::Exact("/api/x")],
            vec![PathKey::Suffix(".png"), PathKey::Exact("/logo")],
            vec![PathKey::Any],
            vec![],
            vec![PathKey::Prefix("")],
            vec![PathKey::Prefix("/api/x/long/er")],
        ];
        let index = PathIndex::new(keys.len(), |i| keys[i].clone());
        assert_eq!(*index.candidates("/api/x"), [0, 1, 3, 5]);
        assert_eq!(*index.candidates("/api/y.png"), [0, 2, 3, 5]);
        assert_eq!(*index.candidates("/logo"), [2, 3, 5]);
        assert_eq!(*index.candidates(""), [3, 5]);
        // A multi-byte character where a prefix length would cut it is no match, not a panic.
        assert_eq!(*index.candidates("/ap\u{e9}/x"), [3, 5]);
    }
}
