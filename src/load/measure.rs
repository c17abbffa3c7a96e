//! One measurement for every driver (TCP and UDP alike): what is counted,
//! from when, and how a run becomes its seconds and its summary.
//!
//! ```text
//!  warm-up   from the loop's start until every connection of the loop is
//!            open (or has failed); nothing is timed, failures and errors
//!            are counted (they decide the exit code whenever they happen)
//!  measured  from start() on: replies, latencies, writes, connects; cut
//!            into seconds (second 1 begins at start()) for the timeline
//!  summary   finish(): the partial last second is a row too; the run's
//!            histograms are what the seconds recorded
//! ```
//!
//! The measured window starts at the same moment for both transports: when
//! the ramp is over. TCP's ramp is the connects at `--connect-rate`; UDP's
//! sockets are all "open" once bound, so UDP measures from its first send.
//! A message started during the warm-up and answered after it counts, with
//! its whole latency.
//!
//! Times are ns since the loop's epoch (`ns`). Per message the driver says
//! when it was due and when it was sent ([`Measure::sent`]), and when its
//! reply came ([`Measure::replies`]): latency counts from the due time
//! (no coordinated omission), the uncorrected latency from the send, and
//! the send's lateness is its own histogram. Without `--rate` a message is
//! due when it is sent, and the three collapse to one.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;

use super::report::{Failures, Report, Second};
use super::LoadConfig;

/// A histogram for latencies in ns: 1 ns to 60 s, 3 significant digits.
pub(crate) fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("fixed bounds are valid")
}

/// A second's histogram: 2 significant digits (1 %, enough for one
/// second's p50 and p99) keep a long run's timeline an eighth the size.
pub(crate) fn second_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 2).expect("fixed bounds are valid")
}

/// Everything a driver measures.
pub(crate) struct Measure {
    epoch: Instant,
    /// When measuring started (`None`: still warming up).
    from: Option<Instant>,
    /// The same moment by the wall clock (unix seconds).
    pub(crate) started_unix: f64,
    /// When the second under way ends.
    next_second: Instant,
    second: Second,
    pub(crate) timeline: Vec<Second>,
    /// With `--rate`: sends are judged against a schedule.
    paced: bool,
    /// Round trips from the due time, from the send, and the sends'
    /// lateness (ns); connect latency (SYN to established).
    pub(crate) latency: Histogram<u64>,
    pub(crate) uncorrected: Histogram<u64>,
    pub(crate) lateness: Histogram<u64>,
    pub(crate) connect: Histogram<u64>,
    /// Measured: replies checked, write calls, connects completed.
    pub(crate) messages: u64,
    pub(crate) writes: u64,
    pub(crate) connects: u64,
    /// Measured: bytes read from the targets (replies, right or wrong).
    pub(crate) read_bytes: u64,
    /// Whole run: wrong replies and connections lost mid-run (TCP, not
    /// `--idle`); connections that could not connect; lost connections.
    pub(crate) errors: u64,
    pub(crate) failed: usize,
    pub(crate) lost: usize,
    /// Why, with the address, counted.
    pub(crate) failures: Failures,
    errors_before: u64,
    /// The loop thread's CPU time when measuring began.
    cpu_from: Duration,
}

impl Measure {
    /// A measurement whose clock starts at `epoch`; `paced` with `--rate`.
    pub(crate) fn new(epoch: Instant, paced: bool) -> Self {
        Measure {
            epoch,
            from: None,
            started_unix: 0.0,
            next_second: epoch,
            second: Second::new(0, paced),
            timeline: Vec::new(),
            paced,
            latency: latency_histogram(),
            uncorrected: latency_histogram(),
            lateness: latency_histogram(),
            connect: latency_histogram(),
            messages: 0,
            writes: 0,
            connects: 0,
            read_bytes: 0,
            errors: 0,
            failed: 0,
            lost: 0,
            failures: Failures::new(),
            errors_before: 0,
            cpu_from: Duration::ZERO,
        }
    }

    /// `t` as ns since the epoch.
    pub(crate) fn ns(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.epoch).as_nanos() as u64
    }

    /// The instant `ns` after the epoch.
    pub(crate) fn at(&self, ns: u64) -> Instant {
        self.epoch + Duration::from_nanos(ns)
    }

    /// The warm-up is over: measure from `now`.
    pub(crate) fn start(&mut self, now: Instant) {
        self.from = Some(now);
        self.started_unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        self.next_second = now + Duration::from_secs(1);
        self.second = Second::new(self.started_unix as u64, self.paced);
        self.errors_before = self.errors;
        self.cpu_from = crate::sys::thread_cpu();
    }

    /// When measuring started, if it has.
    pub(crate) fn since(&self) -> Option<Instant> {
        self.from
    }

    /// `n` messages due at `due` were handed to the kernel at `sent` (ns):
    /// their lateness, if paced and measuring.
    #[inline]
    pub(crate) fn sent(&mut self, due: u64, sent: u64, n: u64) {
        if self.paced && self.from.is_some() {
            let late = sent.saturating_sub(due).max(1);
            let _ = self.lateness.record_n(late, n);
            if let Some(h) = &mut self.second.lateness {
                let _ = h.record_n(late, n);
            }
        }
    }

    /// `n` replies came at `now` to messages due at `due` and sent at
    /// `sent` (ns).
    #[inline]
    pub(crate) fn replies(&mut self, due: u64, sent: u64, now: u64, n: u64) {
        if self.from.is_none() {
            return;
        }
        let lat = now.saturating_sub(due).max(1);
        let _ = self.latency.record_n(lat, n);
        let _ = self.second.hist.record_n(lat, n);
        if self.paced {
            let _ = self
                .uncorrected
                .record_n(now.saturating_sub(sent).max(1), n);
        }
        self.messages += n;
        self.second.messages += n;
    }

    /// `n` bytes read from a target (a read, or a datagram).
    #[inline]
    pub(crate) fn read(&mut self, n: usize) {
        if self.from.is_some() {
            self.read_bytes += n as u64;
        }
    }

    /// A write (or sendmmsg) call that sent something.
    #[inline]
    pub(crate) fn write(&mut self) {
        if self.from.is_some() {
            self.writes += 1;
        }
    }

    /// A connect completed after `took`.
    pub(crate) fn connected(&mut self, took: Duration) {
        if self.from.is_some() {
            let _ = self.connect.record((took.as_nanos() as u64).max(1));
            self.connects += 1;
            self.second.connects += 1;
        }
    }

    /// Count a reason, naming the target: every failure a user sees says
    /// what went wrong and where.
    pub(crate) fn reason(&mut self, why: &str, target: &dyn std::fmt::Display) {
        *self
            .failures
            .entry(format!("{why} ({target})"))
            .or_default() += 1;
    }

    /// A wrong reply (the connection may go on).
    pub(crate) fn error(&mut self, why: &str, target: &dyn std::fmt::Display) {
        self.errors += 1;
        self.reason(why, target);
    }

    /// A connection that could not connect.
    pub(crate) fn failed(&mut self, why: &str, target: &dyn std::fmt::Display) {
        self.failed += 1;
        self.reason(why, target);
    }

    /// An open connection was lost; with traffic that is an error too.
    pub(crate) fn lost(&mut self, why: &str, target: &dyn std::fmt::Display, traffic: bool) {
        self.lost += 1;
        if traffic {
            self.errors += 1;
        }
        self.reason(why, target);
    }

    /// When the second under way ends, if measuring.
    pub(crate) fn next_tick(&self) -> Option<Instant> {
        self.from.map(|_| self.next_second)
    }

    /// Close every second that has ended by `now` (a stalled loop closes
    /// the empty seconds it slept through too), with `open` connections.
    pub(crate) fn tick(&mut self, now: Instant, open: usize) {
        while self.from.is_some() && now >= self.next_second {
            self.close_second(open);
            self.next_second += Duration::from_secs(1);
        }
    }

    fn close_second(&mut self, open: usize) {
        let unix = self.second.unix + 1;
        let mut done = std::mem::replace(&mut self.second, Second::new(unix, self.paced));
        done.errors = self.errors - self.errors_before;
        self.errors_before = self.errors;
        done.open = open as u64;
        self.timeline.push(done);
    }

    /// The run is over at `now`: the partial second is a row too (if it
    /// saw anything). Returns the measured window.
    pub(crate) fn finish(&mut self, now: Instant, open: usize) -> Duration {
        let Some(from) = self.from else {
            return Duration::ZERO;
        };
        self.tick(now, open);
        if self.second.messages > 0 || self.errors > self.errors_before || self.timeline.is_empty()
        {
            self.close_second(open);
        }
        now.saturating_duration_since(from)
    }
}

/// What a driver knows of its connections at the end, for its report.
pub(crate) struct Conns {
    /// Connections asked for, established (open at once, with --churn),
    /// open at the end, replaced (--churn).
    pub(crate) wanted: usize,
    pub(crate) established: usize,
    pub(crate) open: usize,
    pub(crate) churned: u64,
}

impl Measure {
    /// The run is over at `now`: its report. `silence` says what the
    /// target does not look like if nothing came back;
    /// `datagrams_lost` is UDP's loss count.
    pub(crate) fn into_report(
        mut self,
        cfg: &LoadConfig,
        now: Instant,
        conns: Conns,
        silence: &str,
        datagrams_lost: Option<u64>,
    ) -> Report {
        let elapsed = self.finish(now, conns.open);
        let cpu = crate::sys::thread_cpu().saturating_sub(self.cpu_from);
        if !cfg.idle && self.messages == 0 && self.errors == 0 && self.failed == 0 {
            let targets: Vec<String> = cfg.endpoints.iter().map(|e| e.to_string()).collect();
            let why = format!("{}: {silence}", super::NO_REPLY);
            self.reason(&why, &targets.join(", "));
        }
        let mut r = Report::empty(cfg);
        r.wanted = conns.wanted;
        r.connections = conns.established;
        r.held = conns.open;
        r.churned = conns.churned;
        r.failed = self.failed;
        r.lost = self.lost;
        r.failures = self.failures;
        r.messages = self.messages;
        r.elapsed = elapsed;
        r.started_unix = self.started_unix;
        r.errors = self.errors;
        r.latency_ns = self.latency;
        r.latency_uncorrected_ns = self.uncorrected;
        r.send_lateness_ns = self.paced.then_some(self.lateness);
        r.per_thread_messages = vec![self.messages];
        r.writes = self.writes;
        r.reply_bytes = self.read_bytes;
        r.timeline = self.timeline;
        r.datagrams_lost = datagrams_lost;
        r.connects = self.connects;
        r.connect_latency_ns = self.connect;
        r.busy = cpu.as_secs_f64() / elapsed.as_secs_f64().max(1e-9);
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_timed_before_the_start_and_seconds_follow_it() {
        let t0 = Instant::now();
        let mut m = Measure::new(t0, true);
        m.replies(0, 0, 5_000, 3);
        m.sent(0, 9_000, 1);
        m.write();
        m.error("wrong", &"tcp://x");
        assert_eq!((m.messages, m.writes, m.errors), (0, 0, 1));
        assert!(m.latency.is_empty() && m.lateness.is_empty());
        let from = t0 + Duration::from_millis(500);
        m.start(from);
        m.replies(1_000, 3_000, 11_000, 2);
        m.sent(1_000, 3_000, 2);
        // 2.5 s later: seconds 1 and 2 closed (the second one empty).
        m.tick(from + Duration::from_millis(2500), 7);
        assert_eq!(m.timeline.len(), 2);
        assert_eq!(m.timeline[0].messages, 2);
        assert_eq!(
            m.timeline[0].errors, 0,
            "the warm-up's error is not the first second's"
        );
        assert_eq!(m.timeline[1].messages, 0);
        assert_eq!(m.timeline[1].unix, m.timeline[0].unix + 1);
        assert_eq!(m.timeline[0].open, 7);
        assert_eq!(m.latency.max(), m.latency.highest_equivalent(10_000));
        assert_eq!(m.uncorrected.max(), m.uncorrected.highest_equivalent(8_000));
        assert_eq!(m.lateness.len(), 2);
        let window = m.finish(from + Duration::from_millis(2700), 7);
        assert_eq!(window, Duration::from_millis(2700));
        assert_eq!(m.timeline.len(), 2, "an empty partial second is not a row");
    }
}
