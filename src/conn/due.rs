//! When a connection is due: its deadlines (idle or linger, frame, slow
//! member, its room's blame) and the questions the server's deadline code
//! asks about them (`server/deadlines.rs`). Times are ms on the server's
//! clock; "none" is `None`, and the two the connection itself holds are an
//! `Option<At>`, no bigger than the `u64` it replaced (a connection's size
//! is a measured figure: BENCHMARKS.md).

use std::num::NonZeroU64;

use super::flags::OVER_WRITE_BUFFER;
use super::Conn;

/// A moment on the server's clock, in ms since it started. Kept as the
/// milliseconds plus one in a `NonZeroU64`, so that `None` fits in the
/// zero no moment uses; the plus one lives here and nowhere else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct At(NonZeroU64);

impl At {
    /// The moment `ms` (a time within `u64::MAX - 1` ms of the start; the
    /// last millisecond of 584 million years reads as the one before).
    pub(super) fn new(ms: u64) -> At {
        At(NonZeroU64::MIN.saturating_add(ms))
    }

    /// Its milliseconds on the server's clock.
    pub(super) fn ms(self) -> u64 {
        self.0.get() - 1
    }
}

impl<S> Conn<S> {
    /// The earliest of its deadlines (ms), if it has any: idle or linger,
    /// the frame timeout while a frame is incomplete, the slow-member
    /// timeout while over `--write-buffer`, its room's blame.
    pub(crate) fn due_at(
        &self,
        frame_timeout_ms: Option<u64>,
        slow_timeout_ms: u64,
    ) -> Option<u64> {
        let deadline = self.deadline();
        let Some(b) = &self.bufs else {
            return deadline;
        };
        let frame = frame_timeout_ms.zip(b.frame_since).map(|(ft, t)| t + ft);
        let slow = b
            .over_since
            .filter(|_| self.flags.get(OVER_WRITE_BUFFER))
            .map(|t| t + slow_timeout_ms);
        [deadline, frame, slow, b.blame_due]
            .into_iter()
            .flatten()
            .min()
    }

    /// Whether its frame timeout has passed at `now`.
    pub(crate) fn frame_expired(&self, frame_timeout_ms: Option<u64>, now: u64) -> bool {
        match (frame_timeout_ms, &self.bufs) {
            (Some(ft), Some(b)) => b.frame_since.is_some_and(|t| t + ft <= now),
            _ => false,
        }
    }

    /// Whether it has been over `--write-buffer` for the slow timeout at
    /// `now`.
    pub(crate) fn slow_expired(&self, slow_timeout_ms: u64, now: u64) -> bool {
        self.flags.get(OVER_WRITE_BUFFER)
            && self
                .bufs
                .as_ref()
                .is_some_and(|b| b.over_since.is_some_and(|t| t + slow_timeout_ms <= now))
    }

    /// Whether its room's blame of it has come due at `now`.
    pub(crate) fn blame_expired(&self, now: u64) -> bool {
        self.bufs
            .as_ref()
            .is_some_and(|b| b.blame_due.is_some_and(|t| t <= now))
    }

    /// Set (`None`: clear) when its room's blame comes due.
    pub(crate) fn set_blame_due(&mut self, at: Option<u64>) {
        if let Some(b) = self.bufs.as_mut() {
            b.blame_due = at;
        }
    }

    // ---- the deadline and its heap entry --------------------------------

    pub(crate) fn deadline(&self) -> Option<u64> {
        self.deadline.map(At::ms)
    }
    pub(crate) fn set_deadline(&mut self, at: u64) {
        self.deadline = Some(At::new(at));
    }
    pub(crate) fn timer_at(&self) -> Option<u64> {
        self.timer_at.map(At::ms)
    }
    pub(crate) fn set_timer_at(&mut self, at: Option<u64>) {
        self.timer_at = at.map(At::new);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_is_a_moment_and_none_costs_nothing() {
        assert_eq!(At::new(0).ms(), 0);
        assert_eq!(At::new(12_345).ms(), 12_345);
        assert_eq!(std::mem::size_of::<Option<At>>(), 8);
    }
}
