//! Items (providers, requirement leaves) keyed by the token issuer they accept, so that a
//! token's `iss` finds its candidates with one lookup however many items there are. Issuers
//! with a `{tenant}` placeholder are found by the text around it: one more lookup per
//! distinct (head, tail) length pair in use.

use std::collections::BTreeMap;

use crate::jwt::tenant::IssuerPattern;

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
    /// Items with a `{tenant}` issuer, by the text before, then after, the placeholder
    /// (nested so that a lookup borrows the token's `iss` instead of copying it).
    by_pattern: BTreeMap<String, BTreeMap<String, (IssuerPattern, Vec<usize>)>>,
    /// The distinct (head, tail) lengths in `by_pattern`.
    shapes: Vec<(usize, usize)>,
}

impl IssuerMap {
    /// Adds `item`; items must come in ascending order.
    pub fn insert(&mut self, issuer: Option<&str>, item: usize) {
        // The configuration refused misplaced placeholders already.
        if let Some(Ok(Some(pattern))) = issuer.map(IssuerPattern::parse) {
            let (head, tail) = pattern.key();
            let shape = (head.len(), tail.len());
            if !self.shapes.contains(&shape) {
                self.shapes.push(shape);
            }
            self.by_pattern
                .entry(head.to_string())
                .or_default()
                .entry(tail.to_string())
                .or_insert_with(|| (pattern.clone(), Vec::new()))
                .1
                .push(item);
            return;
        }
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
        if let Some(iss) = iss {
            for &(h, t) in &self.shapes {
                let (Some(head), Some(tail)) = (
                    iss.get(..h),
                    iss.len().checked_sub(t).and_then(|at| iss.get(at..)),
                ) else {
                    continue;
                };
                let Some((pattern, items)) = self.by_pattern.get(head).and_then(|m| m.get(tail))
                else {
                    continue;
                };
                if pattern.tenant(iss).is_some() {
                    for item in items {
                        insert_sorted(&mut out, *item);
                    }
                }
            }
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

    #[test]
    fn tenant_patterns_are_found_by_their_head_and_tail() {
        let mut m = IssuerMap::default();
        m.insert(Some("https://login.example/{tenant}/v2.0"), 0);
        m.insert(Some("https://login.example/t1/v2.0"), 1);
        m.insert(Some("https://{tenant}.idp.example/"), 2);
        m.insert(Some("https://login.example/{tenant}/v2.0"), 3);
        assert_eq!(
            m.accepting(Some("https://login.example/t1/v2.0")),
            vec![0, 1, 3]
        );
        assert_eq!(
            m.accepting(Some("https://login.example/t2/v2.0")),
            vec![0, 3]
        );
        assert_eq!(m.accepting(Some("https://acme.idp.example/")), vec![2]);
        // The middle must be one segment, and there must be one.
        assert!(m
            .accepting(Some("https://login.example/a/b/v2.0"))
            .is_empty());
        assert!(m.accepting(Some("https://login.example//v2.0")).is_empty());
        assert!(m.accepting(Some("https://login.example/v2.0")).is_empty());
        assert!(m.accepting(Some("https://x.y.idp.example/")).is_empty());
        assert!(m.accepting(Some("h")).is_empty());
    }
}
