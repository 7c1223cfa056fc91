//! [`RecentEventIds`]: the deduplication window of one customer.

use xxhash_rust::xxh3::xxh3_64;

/// The 64-bit hash an event id is remembered by (xxh3, seed 0).
pub fn event_id_hash(event_id: &str) -> u64 {
    xxh3_64(event_id.as_bytes())
}

/// Event ids seen for one customer within the deduplication window.
///
/// Kept apart from [`super::CustomerState`] so the state stays small however many events a
/// customer sends: storage may put it under its own key. Ids are held as 64-bit xxh3 hashes with
/// their arrival time (the leader's clock recorded in the raft entry, so replicas agree). Two
/// distinct ids of one customer collide with probability about `n²/2⁶⁵` for `n` ids in the window
/// (≈ 3·10⁻⁸ for a million events a day): negligible, and documented rather than hidden.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecentEventIds {
    /// `(id hash, arrival ms)`, sorted by hash.
    entries: Vec<(u64, i64)>,
}

impl RecentEventIds {
    /// Records the ids of one batch of a customer's events, all arriving at `arrival_ms`:
    /// expires the window once, then answers per id, in order, whether it is new (`false` for a
    /// duplicate of an id in the window or earlier in `event_ids`), and merges the new ids in one
    /// pass — O(n + k log k) for `n` ids in the window and `k` in the batch, where `k` calls of
    /// [`Self::insert`] cost O(k·n) (a hot customer's window can hold many thousands).
    pub fn insert_all<'a>(
        &mut self,
        event_ids: impl IntoIterator<Item = &'a str>,
        arrival_ms: i64,
        window_ms: i64,
    ) -> Vec<bool> {
        self.expire(arrival_ms, window_ms);
        let mut fresh: Vec<u64> = Vec::new();
        let answers = event_ids
            .into_iter()
            .map(|event_id| {
                let hash = event_id_hash(event_id);
                let known =
                    self.entries.binary_search_by_key(&hash, |e| e.0).is_ok() || fresh.contains(&hash);
                if !known {
                    fresh.push(hash);
                }
                !known
            })
            .collect();
        if !fresh.is_empty() {
            fresh.sort_unstable();
            let old = std::mem::take(&mut self.entries);
            let mut merged = Vec::with_capacity(old.len() + fresh.len());
            let mut fresh = fresh.into_iter().map(|hash| (hash, arrival_ms)).peekable();
            for entry in old {
                while let Some(next) = fresh.next_if(|next| next.0 < entry.0) {
                    merged.push(next);
                }
                merged.push(entry);
            }
            merged.extend(fresh);
            self.entries = merged;
        }
        answers
    }

    /// Records `event_id` arriving at `arrival_ms`; returns `false` if it is a duplicate of an id
    /// that arrived within `window_ms` before. Expired entries are dropped on the way.
    pub fn insert(&mut self, event_id: &str, arrival_ms: i64, window_ms: i64) -> bool {
        self.expire(arrival_ms, window_ms);
        let hash = xxh3_64(event_id.as_bytes());
        match self.entries.binary_search_by_key(&hash, |e| e.0) {
            Ok(_) => false,
            Err(at) => {
                self.entries.insert(at, (hash, arrival_ms));
                true
            }
        }
    }

    /// The remembered ids as `(id hash, arrival ms)`, sorted by hash.
    pub fn entries(&self) -> &[(u64, i64)] {
        &self.entries
    }

    /// Whether `event_id` is currently remembered.
    pub fn contains(&self, event_id: &str) -> bool {
        let hash = xxh3_64(event_id.as_bytes());
        self.entries.binary_search_by_key(&hash, |e| e.0).is_ok()
    }

    /// Drops ids that arrived more than `window_ms` before `now_ms`.
    pub fn expire(&mut self, now_ms: i64, window_ms: i64) {
        let horizon = now_ms.saturating_sub(window_ms);
        self.entries.retain(|&(_, arrival)| arrival >= horizon);
    }

    /// Number of remembered ids.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no id is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Binary encoding: count, then `(hash, arrival)` pairs as fixed 8 + zigzag varint bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + self.entries.len() * 12);
        super::codec::put_varint(&mut out, self.entries.len() as u64);
        for &(hash, arrival) in &self.entries {
            out.extend_from_slice(&hash.to_be_bytes());
            super::codec::put_signed(&mut out, arrival);
        }
        out
    }

    /// Decodes [`Self::encode`]'s output.
    pub fn decode(bytes: &[u8]) -> crate::Result<Self> {
        let mut reader = super::codec::Reader::new(bytes, "recent event ids");
        let count = reader.varint()?;
        let mut entries = Vec::with_capacity(count.min(1 << 16) as usize);
        for _ in 0..count {
            let hash = reader.u64_be()?;
            let arrival = reader.signed()?;
            entries.push((hash, arrival));
        }
        if !entries.windows(2).all(|w| w[0].0 < w[1].0) {
            return Err(reader.error("ids not sorted"));
        }
        Ok(Self { entries })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    #[test]
    fn duplicates_within_window_only() {
        let mut ids = RecentEventIds::default();
        assert!(ids.insert("e1", 0, DAY));
        assert!(!ids.insert("e1", DAY, DAY), "still inside the window");
        assert!(ids.insert("e2", DAY, DAY));
        assert!(ids.insert("e1", DAY + 1, DAY), "window passed");
        assert_eq!(RecentEventIds::decode(&ids.encode()).unwrap(), ids);
    }

    #[test]
    fn a_batch_insert_answers_like_single_inserts() {
        let mut one_by_one = RecentEventIds::default();
        let mut batched = RecentEventIds::default();
        let first: Vec<String> = (0..50).map(|i| format!("e{i}")).collect();
        for id in &first {
            one_by_one.insert(id, 10, DAY);
        }
        batched.insert_all(first.iter().map(String::as_str), 10, DAY);
        assert_eq!(batched, one_by_one);

        let second = ["e3", "x1", "x2", "x1", "e49", "x3"];
        let expected: Vec<bool> = second.iter().map(|id| one_by_one.insert(id, 20, DAY)).collect();
        assert_eq!(expected, [false, true, true, false, false, true]);
        assert_eq!(batched.insert_all(second, 20, DAY), expected);
        assert_eq!(batched, one_by_one, "same window, still sorted");
        assert_eq!(RecentEventIds::decode(&batched.encode()).unwrap(), batched);

        assert_eq!(batched.insert_all(["e3"], DAY + 11, DAY), [true], "expired first");
        assert_eq!(batched.len(), 4, "only the ids of arrival 20 and the new one remain");
    }

    #[test]
    fn rejects_garbage() {
        assert!(RecentEventIds::decode(&[5, 1]).is_err());
    }
}
