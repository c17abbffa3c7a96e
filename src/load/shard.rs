//! `--shard S/N`: one N-th of a test, so N hosts together run the test
//! one host cannot (docs/protocol.md, "Command line", load).
//!
//! ```text
//!  connections  S, S+N, S+2N, … of --conns (global numbers: `{conn}` and
//!               the round-robin over targets are the unsplit run's)
//!  rates        ⌊(S+1)R/N⌋ − ⌊SR/N⌋ of --rate R and of --connect-rate:
//!               the shares add up to the whole (of ⌊R⌋ when R is fractional)
//!  seed         derived from --seed and S (N = 1 keeps --seed itself)
//! ```
//!
//! Pure arithmetic: no I/O, no clock.

use std::fmt;
use std::str::FromStr;

/// Shard `index` of `count` (0 ≤ index < count).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// `S`.
    pub index: usize,
    /// `N`.
    pub count: usize,
}

impl Shard {
    /// The whole test (`0/1`).
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// How many of `total` connections are this shard's.
    pub fn conns(&self, total: usize) -> usize {
        total.saturating_sub(self.index).div_ceil(self.count)
    }

    /// The global number of this shard's `local`-th connection.
    pub fn global_conn(&self, local: usize) -> usize {
        self.index + local * self.count
    }

    /// This shard's share of a rate: ⌊(S+1)R/N⌋ − ⌊SR/N⌋.
    pub fn rate(&self, total: f64) -> f64 {
        let n = self.count as f64;
        ((self.index + 1) as f64 * total / n).floor() - (self.index as f64 * total / n).floor()
    }

    /// This shard's seed: `seed` itself for the whole test, else a
    /// SplitMix64 step of `seed` and `S` (shards draw unrelated streams).
    pub fn seed(&self, seed: u64) -> u64 {
        if self.count == 1 {
            return seed;
        }
        let mut z = seed ^ (self.index as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("'{s}' is not S/N with 0 ≤ S < N (e.g. 0/4)");
        let (a, b) = s.split_once('/').ok_or_else(bad)?;
        let index = a.parse::<usize>().map_err(|_| bad())?;
        let count = b.parse::<usize>().map_err(|_| bad())?;
        if index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_refuses() {
        assert_eq!("2/4".parse(), Ok(Shard { index: 2, count: 4 }));
        for bad in ["4/4", "1/0", "-1/4", "1", "a/b", "1/4/2", ""] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    proptest! {
        /// The shards' connections are every connection exactly once.
        #[test]
        fn connections_partition(total in 0usize..500, n in 1usize..20) {
            let mut seen = vec![0u8; total];
            for index in 0..n {
                let s = Shard { index, count: n };
                for local in 0..s.conns(total) {
                    seen[s.global_conn(local)] += 1;
                }
            }
            prop_assert!(seen.iter().all(|&c| c == 1));
        }

        /// The shares of a whole rate add up to it.
        #[test]
        fn rate_shares_add_up(r in 1u64..10_000_000, n in 1usize..64) {
            let sum: f64 = (0..n).map(|index| Shard { index, count: n }.rate(r as f64)).sum();
            prop_assert_eq!(sum, r as f64);
        }
    }

    #[test]
    fn seeds_differ_by_shard_and_keep_the_whole() {
        assert_eq!(Shard::WHOLE.seed(42), 42);
        let seeds: Vec<u64> = (0..4)
            .map(|index| Shard { index, count: 4 }.seed(42))
            .collect();
        for (i, a) in seeds.iter().enumerate() {
            assert!(seeds[i + 1..].iter().all(|b| a != b));
        }
    }
}
