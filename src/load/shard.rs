//! `--shard S/N`: one N-th of a test, so N hosts together run the test
//! one host cannot (docs/protocol.md, "Command line", load).
//!
//! ```text
//!  connections  S, S+N, S+2N, … of --conns (global numbers: `{conn}` and
//!               the round-robin over targets are the unsplit run's)
//!  rates        ⌊(S+1)R/N⌋ − ⌊SR/N⌋ of --rate R and of --connect-rate:
//!               the shares add up to the whole (of ⌊R⌋ when R is fractional)
//!  seed         derived from --seed and S (N = 1 keeps --seed itself)
//!  --rate       the one schedule's slice: message j of global connection
//!               g is due (j·C + g)/R s after the schedule starts, on
//!               whichever shard (and thread) g runs — see [`Schedule`]
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

/// With `--rate R` over `--conns C`, the one schedule of the whole test:
/// message `j` of global connection `g` is due (j·C + g)/R seconds after
/// the schedule's start — R a second in all, each connection's messages C/R
/// apart, the connections' interleaved. A shard or a thread sends its own
/// connections' messages at these times (its slice of the schedule), so N
/// shards together send what one process would, when one process would.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Schedule {
    /// `C`: the whole test's connections.
    pub conns: usize,
    /// `R`: the whole test's rate, messages a second.
    pub rate: f64,
}

impl Schedule {
    /// When message `j` of global connection `g` is due, ns after the
    /// schedule's start.
    pub fn due_ns(&self, g: usize, j: u64) -> u64 {
        let slot = j as f64 * self.conns as f64 + g as f64;
        (slot / self.rate * 1e9) as u64
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

    /// Shard S's first messages are due when the whole schedule has them
    /// for its connections (S, S+N, …), and two shards' due times,
    /// together, are the unsplit schedule's.
    #[test]
    fn shards_send_their_slice_of_the_one_schedule() {
        let whole = Schedule {
            conns: 10,
            rate: 1000.0,
        };
        // Unsplit: every 1 ms one message, connections in turn.
        let unsplit: Vec<u64> = (0..3u64)
            .flat_map(|j| (0..10).map(move |g| whole.due_ns(g, j)))
            .collect();
        assert_eq!(unsplit[..3], [0, 1_000_000, 2_000_000]);
        assert_eq!(unsplit[10], 10_000_000);
        let mut both = Vec::new();
        for index in 0..2 {
            let s = Shard { index, count: 2 };
            let mine: Vec<u64> = (0..3u64)
                .flat_map(|j| (0..s.conns(10)).map(move |i| whole.due_ns(s.global_conn(i), j)))
                .collect();
            // Shard 1's first message is the whole schedule's second.
            assert_eq!(
                mine[..2],
                [index as u64 * 1_000_000, (index as u64 + 2) * 1_000_000]
            );
            both.extend(mine);
        }
        both.sort_unstable();
        assert_eq!(both, unsplit);
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
