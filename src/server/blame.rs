//! How long a chat room has waited on one member while the others were
//! done — the account that lets the room cut a member that holds a room of
//! faster readers hostage (docs/protocol.md, "Chat rooms and slow
//! readers"). No I/O, no clock of its own: `room.rs` says when an interval
//! of blame began and ended, this keeps the sum over the last 10 s.
//!
//! ```text
//!   room paused, the member above --write-buffer, every other member that got
//!   the same messages has written them all ──▶ blame runs for it
//!   anything changes (it drains below --write-buffer, new messages, it leaves)
//!   ──▶ the interval ends: its milliseconds go into the member's Window
//!   Window::total(now) + the running interval > --slow-timeout ──▶ cut
//! ```
//!
//! The window is ten one-second buckets (a member's account is 48 bytes,
//! kept only for members that were ever blamed), so "within 10 s" is
//! counted in whole seconds: the last 9 to 10 s.

/// Seconds in the window.
pub(super) const WINDOW_SECS: u64 = 10;

/// One member's blame, in milliseconds per second, over the last
/// [`WINDOW_SECS`] seconds.
#[derive(Clone, Debug, Default)]
pub(super) struct Window {
    /// Milliseconds of blame in second `s`, at `buckets[s % WINDOW_SECS]`.
    buckets: [u32; WINDOW_SECS as usize],
    /// The latest second written (ms / 1000 on the server's clock).
    last_sec: u64,
}

impl Window {
    /// Charge the interval `from..to` (ms on the server's clock).
    pub(super) fn add(&mut self, from: u64, to: u64) {
        let mut t = from;
        while t < to {
            let sec = t / 1000;
            let end = ((sec + 1) * 1000).min(to);
            self.advance(sec);
            if sec + WINDOW_SECS > self.last_sec {
                self.buckets[(sec % WINDOW_SECS) as usize] += (end - t) as u32;
            }
            t = end;
        }
    }

    /// Clear the buckets of the seconds that passed since the last write,
    /// up to `sec`.
    fn advance(&mut self, sec: u64) {
        if sec <= self.last_sec {
            return;
        }
        let gap = (sec - self.last_sec).min(WINDOW_SECS);
        for s in sec + 1 - gap..=sec {
            self.buckets[(s % WINDOW_SECS) as usize] = 0;
        }
        self.last_sec = sec;
    }

    /// Blame in the window that ends at `now` (ms), running interval not
    /// included.
    pub(super) fn total(&self, now: u64) -> u64 {
        let now_sec = now / 1000;
        (0..WINDOW_SECS)
            .filter_map(|back| {
                let sec = self.last_sec.checked_sub(back)?;
                (sec + WINDOW_SECS > now_sec).then_some(sec)
            })
            .map(|sec| u64::from(self.buckets[(sec % WINDOW_SECS) as usize]))
            .sum()
    }

    /// Whether nothing in it counts any more at `now`.
    pub(super) fn is_spent(&self, now: u64) -> bool {
        self.total(now) == 0
    }
}

/// The part of a running interval begun at `since` that lies in the
/// window ending at `now`.
pub(super) fn running(since: u64, now: u64) -> u64 {
    now.saturating_sub(since).min(WINDOW_SECS * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_what_is_in_the_last_ten_seconds() {
        let mut w = Window::default();
        w.add(1_500, 2_500); // 500 ms in second 1, 500 in second 2
        w.add(5_000, 5_300);
        assert_eq!(w.total(5_300), 1_300);
        // Second 1 leaves the window at second 11, second 2 at 12.
        assert_eq!(w.total(11_000), 800);
        assert_eq!(w.total(12_000), 300);
        assert_eq!(w.total(15_000), 0);
        assert!(w.is_spent(15_000));
    }

    #[test]
    fn old_buckets_are_cleared_when_written_again() {
        let mut w = Window::default();
        w.add(1_000, 2_000);
        w.add(11_000, 11_100); // second 11 reuses second 1's bucket
        assert_eq!(w.total(11_100), 100);
        w.add(40_000, 40_010); // long after: everything before is gone
        assert_eq!(w.total(40_010), 10);
    }

    #[test]
    fn a_long_interval_counts_at_most_the_window() {
        let mut w = Window::default();
        w.add(0, 60_000);
        // Seconds 51 to 59 whole (second 60, the window's last, is empty).
        assert_eq!(w.total(60_000), 9_000);
        assert_eq!(running(0, 60_000), 10_000);
        assert_eq!(running(59_000, 60_000), 1_000);
    }
}
