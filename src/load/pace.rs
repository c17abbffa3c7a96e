//! Waking on time for `--rate`: the loop's sleep ends when the next
//! message is due, to the microsecond, not to the millisecond.
//!
//! A poll timeout cannot do it: `epoll_wait` counts whole milliseconds and
//! mio rounds up, so a message due now could leave up to 1 ms late — and
//! since latency counts from the due time, that lateness was reported as
//! the server's. The options (`SOCKLOOP_PACE=poll|timer|spin`; the
//! default is the timer with 1 ns slack):
//!
//! - `poll`, the poll timeout alone: late by up to 1 ms by construction
//!   (about 0.5 ms on average).
//! - `timer`, a timerfd with the thread's default timer slack: the kernel
//!   may fire up to 50 µs late to batch wake-ups.
//! - the timerfd with the slack at 1 ns (the default): late by the
//!   wake-up alone.
//! - `spin`, polling without waiting while the next wake is within 1 ms:
//!   no wake-up to wait for, but a core burnt whenever messages are due
//!   every millisecond or more often — at 10,000 msg/s, always.
//!
//! Measured on this project's 2-core VM while it was shared with other
//! builds (load average 13–17, so every p99 was the machine's starvation,
//! 5–9 ms): 10 connections at 2,000 msg/s, send lateness p50 801 µs with
//! `poll`, 54 µs with the timerfd (tests/load_pacing.rs, both in the same
//! hour); at 10,000 msg/s over 50 connections all four were
//! starvation-bound (p50 0.6–3.7 ms) and `spin` took the most CPU (21 %
//! of a core against 11–18 %). BENCHMARKS.md has the figures.
//!
//! The timerfd (CLOCK_MONOTONIC, nanoseconds) registered in the same
//! `Poll` wins: it wakes the loop at the due time with no busy loop at all
//! (the thread sleeps in `epoll_wait` until then), for one `timerfd_settime`
//! per change of the next due time. Its remaining lateness is the
//! kernel's timer slack, which this thread sets to 1 ns while it paces
//! (and puts back after). Spinning saves the wake-up but burns a core
//! whenever a message is due every millisecond or more often — at 10,000
//! msg/s, always; `epoll_pwait2` (kernel ≥ 5.11) would give the
//! same as the timerfd without its syscall, but mio does not expose it.

use std::io;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};

use crate::sys::timer::{self, Timer};

/// How a paced loop waits (only the timerfd is meant for use; the others
/// are kept to measure against, via `SOCKLOOP_PACE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum How {
    /// The poll timeout alone (millisecond rounding).
    Poll,
    /// The timerfd with the thread's own timer slack.
    Timer,
    /// The timerfd with the slack at 1 ns (the default).
    TimerNoSlack,
    /// Poll without waiting while the next wake is within 1 ms.
    Spin,
}

/// Wakes a loop when its next deadline comes.
pub(crate) struct Pacer {
    how: How,
    timer: Option<Timer>,
    /// The instant the timer is set for, if set and not yet fired.
    armed: Option<Instant>,
    /// The thread's timer slack before it was lowered, to put back.
    old_slack: Option<u64>,
}

impl Pacer {
    /// A pacer for a loop; `paced` for a `--rate` run (otherwise the poll
    /// timeout is precise enough and nothing is set up). The timer's
    /// events come with `token`.
    pub(crate) fn new(registry: &Registry, token: Token, paced: bool) -> io::Result<Self> {
        let how = match std::env::var("SOCKLOOP_PACE").as_deref() {
            _ if !paced => How::Poll,
            Ok("poll") => How::Poll,
            Ok("timer") => How::Timer,
            Ok("spin") => How::Spin,
            _ => How::TimerNoSlack,
        };
        let mut pacer = Pacer {
            how,
            timer: None,
            armed: None,
            old_slack: None,
        };
        if matches!(how, How::Timer | How::TimerNoSlack) {
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
        if pacer.how == How::TimerNoSlack {
            pacer.old_slack = Some(timer::timer_slack());
            timer::set_timer_slack(1);
        }
        Ok(pacer)
    }

    /// The poll timeout for a loop that must wake at `wake`; with the
    /// timer, it is set for `wake` and the timeout is only a backstop.
    pub(crate) fn timeout(&mut self, now: Instant, wake: Instant) -> io::Result<Duration> {
        let left = wake.saturating_duration_since(now);
        match self.how {
            How::Poll => Ok(left),
            How::Spin if left < Duration::from_millis(1) => Ok(Duration::ZERO),
            How::Spin => Ok(left),
            How::Timer | How::TimerNoSlack => {
                if left.is_zero() {
                    return Ok(left);
                }
                if self.armed != Some(wake) {
                    if let Some(t) = &self.timer {
                        t.set(left)?;
                    }
                    self.armed = Some(wake);
                }
                Ok(left + Duration::from_millis(1))
            }
        }
    }

    /// The timer's event came: acknowledge it.
    pub(crate) fn fired(&mut self) {
        if let Some(t) = &self.timer {
            t.clear();
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
