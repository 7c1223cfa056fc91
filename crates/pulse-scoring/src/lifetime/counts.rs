//! Grouped purchase histories: the data a BG/NBD fit needs, in a form small enough to ship.
//!
//! The likelihood depends on a customer only through `(x, t_x, T)`, and many customers share
//! one (every one-time buyer of the same day, say). Each shard counts its customers per history
//! and sends the counts; the coordinator merges them and fits. Merging is a per-key sum, so the
//! result does not depend on the order in which shards answer, and iteration is in key order, so
//! the fit over merged counts is deterministic.

use std::collections::BTreeMap;

use super::PurchaseHistory;

/// Number of customers per distinct [`PurchaseHistory`], mergeable across shards.
///
/// Zero counts are never stored, so two `HistoryCounts` describing the same customers compare
/// equal however they were built.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryCounts {
    /// Customers per history; every value is ≥ 1.
    counts: BTreeMap<PurchaseHistory, u64>,
    /// Σ of the values, kept so that [`HistoryCounts::customers`] is O(1).
    customers: u64,
}

impl HistoryCounts {
    /// No customers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts `n` more customers with `history` (saturating at `u64::MAX`; `n = 0` is a no-op).
    pub fn add(&mut self, history: PurchaseHistory, n: u64) {
        if n == 0 {
            return;
        }
        let count = self.counts.entry(history).or_insert(0);
        *count = count.saturating_add(n);
        self.customers = self.customers.saturating_add(n);
    }

    /// Adds every count of `other` (a shard's counts) into `self`.
    pub fn merge(&mut self, other: &HistoryCounts) {
        for (history, n) in other.iter() {
            self.add(history, n);
        }
    }

    /// Total customers counted.
    pub fn customers(&self) -> u64 {
        self.customers
    }

    /// Customers with exactly this history.
    pub fn get(&self, history: &PurchaseHistory) -> u64 {
        self.counts.get(history).copied().unwrap_or(0)
    }

    /// Number of distinct histories (the size of what a shard sends, and the fit's cost).
    pub fn len(&self) -> usize {
        self.counts.len()
    }

    /// Whether no customer was counted.
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// `(history, customers)` pairs in ascending history order (x, then t_x, then T).
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (PurchaseHistory, u64)> + '_ {
        self.counts.iter().map(|(history, n)| (*history, *n))
    }
}

impl Extend<PurchaseHistory> for HistoryCounts {
    /// Counts each history once.
    fn extend<I: IntoIterator<Item = PurchaseHistory>>(&mut self, histories: I) {
        for history in histories {
            self.add(history, 1);
        }
    }
}

impl FromIterator<PurchaseHistory> for HistoryCounts {
    /// One customer per item.
    fn from_iter<I: IntoIterator<Item = PurchaseHistory>>(histories: I) -> Self {
        let mut counts = Self::new();
        counts.extend(histories);
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(x: u32, t_x: u32, t: u32) -> PurchaseHistory {
        PurchaseHistory { x, t_x, t }
    }

    #[test]
    fn add_groups_equal_histories() {
        let mut counts = HistoryCounts::new();
        assert!(counts.is_empty());
        counts.add(h(1, 5, 9), 2);
        counts.add(h(0, 0, 9), 1);
        counts.add(h(1, 5, 9), 3);
        counts.add(h(2, 2, 2), 0);
        assert_eq!(counts.customers(), 6);
        assert_eq!(counts.len(), 2);
        assert_eq!(counts.get(&h(1, 5, 9)), 5);
        assert_eq!(counts.get(&h(2, 2, 2)), 0);
        let listed: Vec<_> = counts.iter().collect();
        assert_eq!(listed, vec![(h(0, 0, 9), 1), (h(1, 5, 9), 5)], "sorted, zero counts absent");
    }

    #[test]
    fn merge_is_order_independent() {
        let shard_a: HistoryCounts = [h(0, 0, 3), h(1, 2, 3), h(0, 0, 3)].into_iter().collect();
        let shard_b: HistoryCounts = [h(1, 2, 3), h(4, 9, 10)].into_iter().collect();
        let mut ab = HistoryCounts::new();
        ab.merge(&shard_a);
        ab.merge(&shard_b);
        let mut ba = shard_b.clone();
        ba.merge(&shard_a);
        assert_eq!(ab, ba);
        assert_eq!(ab.customers(), 5);
        assert_eq!(ab.get(&h(1, 2, 3)), 2);
    }

    #[test]
    fn counts_saturate_instead_of_overflowing() {
        let mut counts = HistoryCounts::new();
        counts.add(h(0, 0, 1), u64::MAX);
        counts.add(h(0, 0, 1), 7);
        counts.add(h(0, 0, 2), 1);
        assert_eq!(counts.get(&h(0, 0, 1)), u64::MAX);
        assert_eq!(counts.customers(), u64::MAX);
    }
}
