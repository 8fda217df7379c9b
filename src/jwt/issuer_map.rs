//! Items (providers, requirement leaves) keyed by the token issuer they accept, so that a
//! token's `iss` finds its candidates with one lookup however many items there are.

use std::collections::BTreeMap;

/// Adds `item` to an ascending list without repeats. The lists are short: this keeps the
/// .wasm free of a general sort.
pub fn insert_sorted(list: &mut Vec<usize>, item: usize) {
    if let Err(at) = list.binary_search(&item) {
        list.insert(at, item);
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IssuerMap {
    by_issuer: BTreeMap<String, Vec<usize>>,
    /// Items that accept any issuer (a provider without `issuer`).
    any_issuer: Vec<usize>,
}

impl IssuerMap {
    /// Adds `item`; items must come in ascending order.
    pub fn insert(&mut self, issuer: Option<&str>, item: usize) {
        match issuer {
            Some(iss) => self
                .by_issuer
                .entry(iss.to_string())
                .or_default()
                .push(item),
            None => self.any_issuer.push(item),
        }
    }

    /// The items that could accept a token from `iss`, ascending.
    pub fn accepting(&self, iss: Option<&str>) -> Vec<usize> {
        let named = iss.and_then(|i| self.by_issuer.get(i));
        let mut out: Vec<usize> = named.into_iter().flatten().copied().collect();
        for item in &self.any_issuer {
            insert_sorted(&mut out, *item);
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn named_and_open_items_merge_in_order() {
        let mut m = IssuerMap::default();
        for (i, iss) in [Some("a"), None, Some("b"), Some("a"), None]
            .into_iter()
            .enumerate()
        {
            m.insert(iss, i);
        }
        assert_eq!(m.accepting(Some("a")), vec![0, 1, 3, 4]);
        assert_eq!(m.accepting(Some("b")), vec![1, 2, 4]);
        assert_eq!(m.accepting(Some("z")), vec![1, 4]);
        assert_eq!(m.accepting(None), vec![1, 4]);
    }
}
