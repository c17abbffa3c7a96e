//! The deadline heap (what `deadlines.rs` schedules on): a min-heap with
//! lazy deletion, so the work per event is O(1) and per expiry O(log n).
//!
//! Traffic on a connection only moves its deadline forward in the
//! connection itself (one store, no heap work). Each connection has at most
//! one *live* entry in the heap. When an entry comes due the loop looks at
//! the connection: closed or reused since (another id) → the entry was
//! stale, drop it; deadline moved on → push one entry at the new deadline;
//! deadline reached → close. So a busy connection costs one heap push per
//! timeout period, an idle one its close, and no tick ever walks all
//! connections.
//!
//! Entries of closed connections stay until they come due. Under a
//! connect-and-close flood they could pile up, so when stale entries
//! outnumber live connections the heap is rebuilt (O(n), paid for by the
//! n closes that made it necessary).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// One scheduled check: at `at` (ms since the server's epoch), look at
/// connection `key` if it is still connection `id` (the low 32 bits of
/// its id: with `at` also matching the connection's live entry, that tells
/// a stale entry from a live one, and keeps an entry at 16 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Entry {
    pub at: u64,
    pub key: u32,
    pub id: u32,
}

/// The deadline heap: when to look at which connection next.
#[derive(Debug, Default)]
pub(super) struct TimerHeap {
    heap: BinaryHeap<Reverse<Entry>>,
}

impl TimerHeap {
    /// Schedule a check.
    pub(super) fn push(&mut self, entry: Entry) {
        self.heap.push(Reverse(entry));
    }

    /// When the earliest check is due.
    pub(super) fn next_at(&self) -> Option<u64> {
        self.heap.peek().map(|Reverse(e)| e.at)
    }

    /// The earliest check, if it is due at `now`.
    pub(super) fn pop_due(&mut self, now: u64) -> Option<Entry> {
        match self.heap.peek() {
            Some(Reverse(e)) if e.at <= now => self.heap.pop().map(|Reverse(e)| e),
            _ => None,
        }
    }

    /// Entries, live and stale.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.heap.len()
    }

    /// Drop stale entries if they outnumber `live` ones by enough to matter.
    pub(super) fn compact_if_stale(&mut self, live: usize, is_live: impl Fn(&Entry) -> bool) {
        if self.heap.len() > 2 * live + 1024 {
            self.heap.retain(|Reverse(e)| is_live(e));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(at: u64, key: u32) -> Entry {
        Entry { at, key, id: 0 }
    }

    #[test]
    fn pops_in_deadline_order_only_when_due() {
        let mut d = TimerHeap::default();
        d.push(e(30, 1));
        d.push(e(10, 2));
        d.push(e(20, 3));
        assert_eq!(d.next_at(), Some(10));
        assert_eq!(d.pop_due(5), None);
        assert_eq!(d.pop_due(25).map(|x| x.key), Some(2));
        assert_eq!(d.pop_due(25).map(|x| x.key), Some(3));
        assert_eq!(d.pop_due(25), None);
        assert_eq!(d.len(), 1);
    }

    #[test]
    fn compaction_keeps_live_entries() {
        let mut d = TimerHeap::default();
        for k in 0..3000 {
            d.push(e(k as u64, k));
        }
        d.compact_if_stale(10, |x| x.key < 10);
        assert_eq!(d.len(), 10);
        d.compact_if_stale(10, |_| false); // too few to be worth it: untouched
        assert_eq!(d.len(), 10);
    }
}
