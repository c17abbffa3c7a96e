//! A moment on the server's clock as a connection stores it: `Option<At>`
//! says "no deadline" in its type, yet costs no more than the `u64` it
//! replaced (a connection's size is a measured figure: BENCHMARKS.md).

use std::num::NonZeroU64;

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
