//! Waking on time for `--rate`: the loop's sleep ends when the next
//! message is due, to the microsecond, not to the millisecond.
//!
//! A poll timeout cannot do it: `epoll_wait` counts whole milliseconds and
//! mio rounds up, so a message due now could leave up to 1 ms late — and
//! since latency counts from the due time, that lateness was reported as
//! the server's. The options (`SOCKLOOP_PACE=poll|timer|nospin|spin`; the
//! default is the timerfd with 1 ns slack, set early, and a short spin):
//!
//! - `poll`, the poll timeout alone: late by up to 1 ms by construction
//!   (about 0.5 ms on average).
//! - `timer`, a timerfd with the thread's default timer slack: the kernel
//!   may fire up to 50 µs late to batch wake-ups.
//! - `nospin`, the timerfd with the slack at 1 ns, set for the due time:
//!   late by the wake-up alone — on this project's VM 35–48 µs at p50 and
//!   86–119 µs at p99 (the hypervisor's, not ours: the loop's own work
//!   between the wake and the write is ~1 µs).
//! - the default: the same timerfd set early by a [`Margin`] (what the
//!   recent wake-ups were late by, bounded), and a poll without waiting
//!   (spin) from the wake to the due time. It also saves a wake when a
//!   reply comes within the margin of the next due time.
//! - `spin`, polling without waiting while the next wake is within 1 ms:
//!   a core burnt whenever messages are due every millisecond or more
//!   often — at 10,000 msg/s, always.
//!
//! Measured in one run (10,000 msg/s over 50 connections, 3 s, both under
//! `chrt -f 10`, load average 7.5; BENCHMARKS.md "batched wakes"): send
//! lateness p99 52–58 µs and 1.72–1.87 s of CPU with the default, 66–89
//! µs and 1.52–1.60 s with `nospin`; tcpkali, which paces to the
//! millisecond and times from the send, 0.64–0.77 s. A timerfd wake-up
//! costs this VM ~15 µs of CPU (the context switch) and each paced write
//! ~20 µs (it wakes the server's idle vCPU), so one wake per due time
//! already costs twice tcpkali's millisecond batches; the margin's spin
//! buys the lateness for ~10 % more. `epoll_pwait2` (kernel ≥ 5.11) would
//! save the `timerfd_settime` per wake, but mio does not expose it.
//!
//! The timerfd is never read: `timerfd_settime` resets its expiry count
//! and the poll is edge-triggered, so each expiry is a new event anyway
//! (a read per wake was a syscall for nothing). It is set only when the
//! next wake changes.

use std::io;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};

use crate::sys::timer::{self, Timer};

/// How a paced loop waits (only the default is meant for use; the others
/// are kept to measure against, via `SOCKLOOP_PACE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum How {
    /// The poll timeout alone (millisecond rounding).
    Poll,
    /// The timerfd with the thread's own timer slack, no early wake.
    Timer,
    /// The timerfd with the slack at 1 ns, no early wake (`nospin`).
    TimerNoSlack,
    /// The timerfd with the slack at 1 ns, set early by the wake-ups'
    /// own lateness, and a spin for the rest (the default).
    TimerEarly,
    /// Poll without waiting while the next wake is within 1 ms.
    Spin,
}

/// Wakes a loop when its next deadline comes.
pub(crate) struct Pacer {
    how: How,
    timer: Option<Timer>,
    /// The instant the loop must wake for, while the timer is set for it;
    /// and when the timer is to fire (`margin` earlier).
    armed: Option<Instant>,
    fires_at: Option<Instant>,
    /// How early the timer is set: what the wake-ups' lateness has been.
    margin: Margin,
    /// The thread's timer slack before it was lowered, to put back.
    old_slack: Option<u64>,
}

impl Pacer {
    /// A pacer for a loop; `rate` (its messages a second) for a `--rate`
    /// run (otherwise the poll timeout is precise enough and nothing is
    /// set up). The timer's events come with `token`.
    pub(crate) fn new(registry: &Registry, token: Token, rate: Option<f64>) -> io::Result<Self> {
        let how = match std::env::var("SOCKLOOP_PACE").as_deref() {
            _ if rate.is_none() => How::Poll,
            Ok("poll") => How::Poll,
            Ok("timer") => How::Timer,
            Ok("nospin") => How::TimerNoSlack,
            Ok("spin") => How::Spin,
            _ => How::TimerEarly,
        };
        let mut pacer = Pacer {
            how,
            timer: None,
            armed: None,
            fires_at: None,
            margin: Margin::new(Duration::from_secs_f64(1.0 / rate.unwrap_or(1.0).max(1e-3))),
            old_slack: None,
        };
        if matches!(how, How::Timer | How::TimerNoSlack | How::TimerEarly) {
            match Timer::new() {
                Ok(t) => {
                    registry.register(&mut SourceFd(&t.fd()), token, Interest::READABLE)?;
                    pacer.timer = Some(t);
                }
                // No timerfd here: the poll timeout, to the millisecond.
                Err(e) if e.kind() == io::ErrorKind::Unsupported => pacer.how = How::Poll,
                Err(e) => return Err(e),
            }
        }
        if matches!(pacer.how, How::TimerNoSlack | How::TimerEarly) {
            pacer.old_slack = Some(timer::timer_slack());
            timer::set_timer_slack(1);
        }
        Ok(pacer)
    }

    /// The poll timeout for a loop that must wake at `wake`; with the
    /// timer, it is set for `wake` (less the margin) and the timeout is
    /// only a backstop. Zero: poll without waiting (spin).
    pub(crate) fn timeout(&mut self, now: Instant, wake: Instant) -> io::Result<Duration> {
        let left = wake.saturating_duration_since(now);
        match self.how {
            How::Poll => Ok(left),
            How::Spin if left < Duration::from_millis(1) => Ok(Duration::ZERO),
            How::Spin => Ok(left),
            How::Timer | How::TimerNoSlack | How::TimerEarly => {
                let margin = match self.how {
                    How::TimerEarly => self.margin.get(),
                    _ => Duration::ZERO,
                };
                if left <= margin {
                    // Due within what a wake-up would be late by: spin.
                    return Ok(Duration::ZERO);
                }
                // Set only when the wake changes: the usual wait (a reply
                // came; the next message is still ahead) costs no syscall.
                if self.armed != Some(wake) {
                    if let Some(t) = &self.timer {
                        t.set(left - margin)?;
                    }
                    self.armed = Some(wake);
                    self.fires_at = Some(now + (left - margin));
                }
                Ok(left + Duration::from_millis(1))
            }
        }
    }

    /// The timer's event came: learn how late it was. Not read: the
    /// next `timerfd_settime` resets it, and the poll is edge-triggered,
    /// so a read would be a syscall per wake for nothing.
    pub(crate) fn fired(&mut self) {
        if let Some(at) = self.fires_at.take() {
            let late = Instant::now().saturating_duration_since(at);
            self.margin.record(late);
        }
        self.armed = None;
    }
}

impl Drop for Pacer {
    fn drop(&mut self) {
        if let Some(slack) = self.old_slack {
            timer::set_timer_slack(slack);
        }
    }
}

/// How early to set the timer: the 70th percentile of the last
/// [`Margin::WINDOW`] wake-ups' lateness (when the loop ran − when the
/// timer was set to fire), at most `max`: [`Margin::MAX`], and half the
/// mean gap between due times, so the loop never spins more than half
/// the time. A machine that wakes its threads on time spins for nothing;
/// a VM that wakes them 40 µs late spins up to 40 µs before a due time
/// instead of sending 40 µs late.
///
/// Why the 70th: on this project's VM (wake-ups late by 35–48 µs at p50,
/// 86–119 µs at p99), 10,000 msg/s over 50 connections gave send lateness
/// p99 49 µs with it, 49–90 µs with the p50 (cheaper by ~5 % CPU), and the
/// p90 ran away: its margin nearly filled the 100 µs gap, the loop spun
/// all the time and, under SCHED_FIFO, the kernel's real-time throttling
/// stopped it for tens of ms (p99 26–34 ms) — hence the cap at half the
/// gap. BENCHMARKS.md has the figures.
pub(crate) struct Margin {
    recent: [u32; Margin::WINDOW],
    n: usize,
    max: Duration,
    margin: Duration,
}

impl Margin {
    pub(crate) const WINDOW: usize = 64;
    /// The index of the 70th percentile in a sorted window (⌈0.7 × 64⌉ − 1).
    const QUANTILE: usize = 44;
    /// The longest spin before a due time, whatever the rate.
    pub(crate) const MAX: Duration = Duration::from_micros(100);

    /// A margin for a loop whose messages are due `gap` apart on average.
    pub(crate) fn new(gap: Duration) -> Self {
        Margin {
            recent: [0; Margin::WINDOW],
            n: 0,
            max: Self::MAX.min(gap / 2),
            margin: Duration::ZERO,
        }
    }

    /// The margin now.
    pub(crate) fn get(&self) -> Duration {
        self.margin
    }

    /// A wake-up came `late` after the timer's time.
    pub(crate) fn record(&mut self, late: Duration) {
        let ns = late.min(self.max).as_nanos() as u32;
        self.recent[self.n % Self::WINDOW] = ns;
        self.n += 1;
        if self.n % Self::WINDOW == 0 {
            let mut sorted = self.recent;
            sorted.sort_unstable();
            self.margin = Duration::from_nanos(u64::from(sorted[Self::QUANTILE]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_margin_is_the_recent_wake_ups_p70_and_bounded() {
        let mut m = Margin::new(Duration::from_millis(1));
        assert_eq!(m.get(), Duration::ZERO);
        // 64 wake-ups, late 1..=64 µs (shuffled): p70 is the 45th, 45 µs.
        for k in 0..64u64 {
            m.record(Duration::from_micros((k * 37) % 64 + 1));
        }
        assert_eq!(m.get(), Duration::from_micros(45));
        // The machine got quicker: the margin follows within a window.
        for _ in 0..64 {
            m.record(Duration::from_micros(3));
        }
        assert_eq!(m.get(), Duration::from_micros(3));
        // A stalled machine never makes the loop spin longer than MAX.
        for _ in 0..64 {
            m.record(Duration::from_millis(30));
        }
        assert_eq!(m.get(), Margin::MAX);
        // Nor more than half the gap between due times.
        let mut m = Margin::new(Duration::from_micros(20));
        for _ in 0..64 {
            m.record(Duration::from_micros(45));
        }
        assert_eq!(m.get(), Duration::from_micros(10));
    }
}
