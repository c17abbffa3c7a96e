//! With `--rate`: which connections have messages that have come due, and
//! how many each — the pure part of pacing (no clock, no sockets).
//!
//! ```text
//!  start(base, conns)  every open connection's message 0 goes in the heap
//!  release(now, ..)    pops every connection whose next message is due by
//!                      `now`, counts ALL of its messages due by then (one
//!                      entry per connection however late the loop woke),
//!                      pushes its first message not yet due back
//!  next()              the earliest due time left: what the pacer wakes for
//! ```
//!
//! The driver then starts each released connection's messages in one write
//! (`traffic.rs`): one wake sends everything due by then, one write per
//! connection, and nothing before its due time. Connection `i` of this
//! driver is the whole test's connection `global[i]`, and its message `j`
//! is due at `base + whole.due_ns(global[i], j)` (docs/protocol.md,
//! "Pacing").

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::load::shard::Schedule;

pub(super) struct Due {
    whole: Schedule,
    /// ns since the driver's epoch when the schedule started.
    base: u64,
    /// Each local connection's global number, and the number of its next
    /// message not yet released.
    global: Vec<usize>,
    next: Vec<u64>,
    /// (due time of a connection's next message, the connection).
    heap: BinaryHeap<Reverse<(u64, usize)>>,
}

impl Due {
    pub(super) fn new(whole: Schedule) -> Self {
        Due {
            whole,
            base: 0,
            global: Vec::new(),
            next: Vec::new(),
            heap: BinaryHeap::new(),
        }
    }

    /// When message `j` of local connection `i` is due (ns since the epoch).
    pub(super) fn at(&self, i: usize, j: u64) -> u64 {
        self.base + self.whole.due_ns(self.global[i], j)
    }

    /// Start the schedule at `base`: `conns` are the local connections to
    /// pace, each with its global number.
    pub(super) fn start(&mut self, base: u64, conns: impl IntoIterator<Item = (usize, usize)>) {
        self.base = base;
        for (i, g) in conns {
            if self.global.len() <= i {
                self.global.resize(i + 1, 0);
                self.next.resize(i + 1, 0);
            }
            self.global[i] = g;
            self.next[i] = 0;
            self.heap.push(Reverse((self.at(i, 0), i)));
        }
    }

    /// The earliest due time not yet released.
    pub(super) fn next(&self) -> Option<u64> {
        self.heap.peek().map(|Reverse((due, _))| *due)
    }

    /// Release what is due by `now` into `out` (cleared first): `(i, n)`
    /// for each connection with `n` ≥ 1 messages newly due, at most one
    /// entry per connection, in the order their first one came due. A
    /// connection for which `live(i)` is false leaves the schedule.
    pub(super) fn release(
        &mut self,
        now: u64,
        mut live: impl FnMut(usize) -> bool,
        out: &mut Vec<(usize, u64)>,
    ) {
        out.clear();
        while let Some(&Reverse((due, i))) = self.heap.peek() {
            if due > now {
                break;
            }
            self.heap.pop();
            if !live(i) {
                continue;
            }
            // Every message of this connection due by now, in one entry:
            // a loop that woke late sends them in one write.
            let mut n = 0;
            while self.at(i, self.next[i]) <= now {
                self.next[i] += 1;
                n += 1;
            }
            out.push((i, n));
            self.heap.push(Reverse((self.at(i, self.next[i]), i)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The oracle: straight from docs/protocol.md's formula, message j of
    /// global connection g is due at base + (j × C + g) / R s; count those
    /// due by `t`.
    fn due_by(base: u64, conns: usize, rate: f64, g: usize, t: u64) -> u64 {
        (0u64..)
            .take_while(|&j| base + ((j as f64 * conns as f64 + g as f64) / rate * 1e9) as u64 <= t)
            .count() as u64
    }

    /// Wakes at uneven moments (some late, some several messages late):
    /// each wake releases every connection with something newly due once,
    /// with exactly what the formula says has come due since the last
    /// wake — nothing early, nothing twice, nothing left behind.
    #[test]
    fn a_wake_releases_all_that_is_due_once_per_connection_and_nothing_early() {
        let (conns, rate, base) = (5usize, 10_000.0, 1_000u64);
        let whole = Schedule { conns, rate };
        // This driver runs global connections 1, 3 (a shard's slice).
        let mine = [(0usize, 1usize), (1, 3)];
        let mut due = Due::new(whole);
        due.start(base, mine);
        let mut released = [0u64; 2];
        let mut out = Vec::new();
        // Times after base, ns: at 10,000 msg/s over 5 connections, global
        // 1 is due at 0.1 ms + k × 0.5 ms, global 3 at 0.3 ms + k × 0.5 ms.
        // Wakes just before, exactly at and just after due times, and one
        // 2.4 ms late (several messages per connection).
        let wakes = [
            0u64, 150, 99_999, 100_000, 299_990, 300_001, 599_999, 600_000, 650_000, 3_000_000,
            3_000_001, 3_099_999,
        ];
        for w in wakes {
            let t = base + w;
            due.release(t, |_| true, &mut out);
            let mut seen = Vec::new();
            for &(i, n) in &out {
                assert!(n >= 1, "an entry with nothing due");
                assert!(!seen.contains(&i), "connection {i} twice in one wake");
                seen.push(i);
                released[i] += n;
            }
            for (i, g) in mine {
                assert_eq!(
                    released[i],
                    due_by(base, conns, rate, g, t),
                    "conn {i} at {t}"
                );
            }
            // What is left is not yet due, and is the next one.
            let next = due.next().unwrap();
            assert!(next > t);
            let want = mine
                .iter()
                .map(|&(i, g)| {
                    let j = released[i] as f64;
                    base + ((j * conns as f64 + g as f64) / rate * 1e9) as u64
                })
                .min()
                .unwrap();
            assert_eq!(next, want);
        }
        assert_eq!(released, [6, 6]);
    }

    /// Released in the order their first message came due; a connection
    /// that is no longer live leaves the schedule for good.
    #[test]
    fn release_order_is_due_order_and_a_dead_connection_leaves() {
        let whole = Schedule {
            conns: 3,
            rate: 3_000.0,
        };
        let mut due = Due::new(whole);
        due.start(0, [(0, 2), (1, 0), (2, 1)]);
        let mut out = Vec::new();
        // Global 0 due at 0, global 1 at 333,333 ns, global 2 at 666,666.
        due.release(700_000, |_| true, &mut out);
        assert_eq!(out, [(1, 1), (2, 1), (0, 1)]);
        due.release(5_000_000, |i| i != 2, &mut out);
        assert!(out.iter().all(|&(i, _)| i != 2), "{out:?}");
        due.release(50_000_000, |_| true, &mut out);
        assert!(out.iter().all(|&(i, _)| i != 2), "{out:?}");
        assert_eq!(out.len(), 2);
    }
}
