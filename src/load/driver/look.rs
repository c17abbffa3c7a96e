//! Whether a closed-loop driver looks before it sleeps: when a poll finds
//! nothing, it may poll again without sleeping for a moment ([`SPIN`]) in
//! case the next reply is that close, or sleep at once.
//!
//! Which costs less depends on the server and the machine, and is not
//! known in advance. A sleep costs a context switch and, on a VM whose
//! idle vCPU halts, a wake-up the *server* pays for too (its write must
//! send an interrupt to wake ours). Measured (BENCHMARKS.md, issue 19):
//! against nginx with one worker (20 µs a request) the look mostly finds
//! nothing and cost 20–45 % more CPU per request than sleeping; against
//! redis `load` is busy either way and neither paid; on a machine busy
//! with other work, looking paid.
//!
//! So the driver measures instead of guessing. It runs a stretch of
//! [`STRETCH`] looking and one sleeping, compares the CPU time each cost
//! per reply, keeps the cheaper for [`KEEP`] stretches, and then tries
//! both again (the server, and the load, may change under it). A stretch
//! with fewer than [`FEW`] replies says only that traffic is thin, where
//! looking cannot pay: then the driver sleeps.
//!
//! Plain code over numbers: the driver hands in the time, its thread's
//! CPU time and its count of replies, once a stretch ([`Look::check`]).

use std::time::Duration;

/// How long a look lasts before the driver sleeps.
pub(super) const SPIN: Duration = Duration::from_micros(50);
/// One stretch of a trial, and of keeping (ns).
pub(super) const STRETCH: u64 = 50_000_000;
/// Stretches the cheaper way is kept before both are tried again.
pub(super) const KEEP: u32 = 20;
/// Replies a stretch needs for its cost to count.
pub(super) const FEW: u64 = 64;

/// Where a stretch began: the time, the thread's CPU time (both ns) and
/// the replies so far.
#[derive(Clone, Copy, Debug)]
struct Mark {
    at: u64,
    cpu: u64,
    replies: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Trying looking; then trying sleeping, knowing what looking cost
    /// per reply (None: too few replies to tell).
    TryLooking,
    TrySleeping {
        looking: Option<u64>,
    },
    /// Keeping the cheaper way for this many more stretches.
    Keeping(u32),
}

#[derive(Debug)]
pub(super) struct Look {
    stage: Stage,
    looking: bool,
    from: Mark,
}

impl Look {
    /// Starts by trying to look, at `now`.
    pub(super) fn new(now: u64, cpu: u64, replies: u64) -> Self {
        Look {
            stage: Stage::TryLooking,
            looking: true,
            from: Mark {
                at: now,
                cpu,
                replies,
            },
        }
    }

    /// Whether to look before sleeping now.
    pub(super) fn looking(&self) -> bool {
        self.looking
    }

    /// When the stretch under way ends: call [`Look::check`] then.
    pub(super) fn next_check(&self) -> u64 {
        self.from.at + STRETCH
    }

    /// The stretch under way has ended at `now` (with the thread's CPU
    /// time and the replies so far): weigh it, and start the next.
    pub(super) fn check(&mut self, now: u64, cpu: u64, replies: u64) {
        let n = replies.saturating_sub(self.from.replies);
        // CPU ns per reply, when there were enough replies to tell.
        let cost = (n >= FEW).then(|| cpu.saturating_sub(self.from.cpu) / n);
        (self.stage, self.looking) = match self.stage {
            Stage::TryLooking => (Stage::TrySleeping { looking: cost }, false),
            Stage::TrySleeping { looking } => {
                let look = match (looking, cost) {
                    (Some(l), Some(s)) => l < s,
                    // Thin traffic: a look would mostly find nothing.
                    _ => false,
                };
                log::debug!(
                    "look: CPU per reply {} ns looking, {} ns sleeping: {}",
                    shown(looking),
                    shown(cost),
                    if look { "looking" } else { "sleeping" }
                );
                (Stage::Keeping(KEEP), look)
            }
            Stage::Keeping(0 | 1) => (Stage::TryLooking, true),
            Stage::Keeping(k) => (Stage::Keeping(k - 1), self.looking),
        };
        self.from = Mark {
            at: now,
            cpu,
            replies,
        };
    }
}

/// A stretch's cost for the debug log.
fn shown(cost: Option<u64>) -> String {
    cost.map_or_else(|| "(too few replies)".into(), |c| c.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A driver that gets `per` replies a stretch, each costing `look` or
    /// `sleep` CPU ns in either way: run it for `stretches` and say, for
    /// each, whether it looked through it.
    fn run(per: u64, look: u64, sleep: u64, stretches: usize) -> Vec<bool> {
        let (mut now, mut cpu, mut replies) = (0u64, 0u64, 0u64);
        let mut l = Look::new(now, cpu, replies);
        let mut ways = Vec::new();
        for _ in 0..stretches {
            let end = l.next_check();
            assert_eq!(end - now, STRETCH);
            let n = per;
            cpu += n * if l.looking() { look } else { sleep };
            replies += n;
            now = end;
            ways.push(l.looking());
            l.check(now, cpu, replies);
        }
        ways
    }

    /// What the rule says, written out: stretch 0 looks, stretch 1
    /// sleeps, the next KEEP keep the cheaper (sleeping when either trial
    /// had fewer than FEW replies), and the cycle starts again.
    fn expected(per: u64, look: u64, sleep: u64, stretches: usize) -> Vec<bool> {
        let enough = per >= FEW;
        let cycle = 2 + KEEP as usize;
        (0..stretches)
            .map(|s| match s % cycle {
                0 => true,
                1 => false,
                _ => enough && look < sleep,
            })
            .collect()
    }

    #[test]
    fn the_cheaper_way_is_kept_and_both_are_tried_again() {
        for (per, look, sleep) in [
            (50_000, 5_000, 9_000), // fast server: looking pays
            (50_000, 9_000, 5_000), // slow server: sleeping pays
            (50_000, 7_000, 7_000), // a tie: sleep
            (FEW - 1, 1, 9_000),    // too few replies to tell
            (FEW, 1, 9_000),        // enough
        ] {
            let n = 3 * (2 + KEEP as usize) + 5;
            assert_eq!(
                run(per, look, sleep, n),
                expected(per, look, sleep, n),
                "{per} a stretch, looking {look} ns, sleeping {sleep} ns a reply"
            );
        }
    }

    #[test]
    fn costs_are_per_reply_not_per_stretch() {
        // Looking costs more CPU in all but brings twice the replies
        // (the server does more when it need not wake us): it is kept.
        let (mut now, mut cpu, mut replies) = (0, 0, 0);
        let mut l = Look::new(now, cpu, replies);
        for (n, c) in [(2_000, 12_000_000), (1_000, 8_000_000)] {
            now = l.next_check();
            cpu += c;
            replies += n;
            l.check(now, cpu, replies);
        }
        assert!(l.looking(), "6 µs a reply looking against 8 sleeping");
    }
}
