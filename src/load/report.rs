//! The summary of a run: its figures ([`Report`]), merged over threads,
//! and its verdict. How it is written out: `report/text.rs` (the table,
//! `.hgrm`, the timeline CSV) and `report/json.rs` (`--json`).

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;

use super::measure::{latency_histogram, second_histogram};
use super::LoadConfig;

mod json;
mod text;
mod travel;

/// Why connections failed or replies were wrong, with the address, counted.
pub(crate) type Failures = BTreeMap<String, u64>;

/// One measured second of a run (`--timeline`, JSON `timeline`).
#[derive(Debug)]
pub struct Second {
    /// The wall-clock unix second it began in.
    pub unix: u64,
    /// Replies completed in that second.
    pub messages: u64,
    /// Errors in that second.
    pub errors: u64,
    /// Connections open at its end.
    pub open: u64,
    /// Connects completed in it (`--churn`).
    pub connects: u64,
    /// Latencies of its replies, ns (2 significant digits).
    pub hist: Histogram<u64>,
    /// With `--rate`: its sends' lateness, ns.
    pub lateness: Option<Histogram<u64>>,
}

impl Second {
    /// An empty second beginning at unix second `unix`.
    pub(crate) fn new(unix: u64, paced: bool) -> Self {
        Second {
            unix,
            messages: 0,
            errors: 0,
            open: 0,
            connects: 0,
            hist: second_histogram(),
            lateness: paced.then(second_histogram),
        }
    }

    /// Add another thread's same second.
    fn add(&mut self, s: &Second) {
        self.messages += s.messages;
        self.errors += s.errors;
        self.open += s.open;
        self.connects += s.connects;
        let _ = self.hist.add(&s.hist);
        if let (Some(a), Some(b)) = (&mut self.lateness, &s.lateness) {
            let _ = a.add(b);
        }
    }
}

/// The outcome of a run.
#[derive(Debug)]
pub struct Report {
    /// What was asked.
    pub settings: LoadConfig,
    /// It was an `--idle` run.
    pub idle: bool,
    /// Connections asked for.
    pub wanted: usize,
    /// Connections established.
    pub connections: usize,
    /// Still open at the end (what `--idle` reports as held).
    pub held: usize,
    /// Attempts that failed, and why.
    pub failed: usize,
    /// Connections established and then lost (closed or reset by the
    /// server, or dropped for wrong reply bytes).
    pub lost: usize,
    /// Why connections failed or were lost, with counts.
    pub failures: Failures,
    /// Replies completed and checked in the measured window.
    pub messages: u64,
    /// The measured window.
    pub elapsed: Duration,
    /// When it began, unix seconds (0 if it never began).
    pub started_unix: f64,
    /// Bytes per message.
    pub size: usize,
    /// Wrong replies, and connections lost mid-run.
    pub errors: u64,
    /// Round-trip latency, ns (with `--rate`, from when each was due).
    pub latency_ns: Histogram<u64>,
    /// With `--rate`: round-trip latency from the actual send, ns.
    pub latency_uncorrected_ns: Histogram<u64>,
    /// With `--rate`: how late each message left (send − due), ns.
    pub send_lateness_ns: Option<Histogram<u64>>,
    /// Messages measured by each thread (`--threads`), in order.
    pub per_thread_messages: Vec<u64>,
    /// `write` calls in the measured window (pipelined, about one per
    /// connection per turn, not one per message).
    pub writes: u64,
    /// Bytes read from the targets in the measured window: the replies
    /// (right or wrong) as they came. With `--request`, MB/s counts these.
    pub reply_bytes: u64,
    /// One row per measured second.
    pub timeline: Vec<Second>,
    /// `--churn M`, if asked.
    pub churn: Option<u64>,
    /// udp://: datagrams not answered within a second (in the measured
    /// window). `None` for TCP.
    pub datagrams_lost: Option<u64>,
    /// Connections that did their M round trips and were replaced (the
    /// whole run).
    pub churned: u64,
    /// Connects completed in the measured window.
    pub connects: u64,
    /// Connect latency (SYN to established, as the client sees it), ns.
    pub connect_latency_ns: Histogram<u64>,
    /// The busiest loop's CPU time over the measured window, as a
    /// fraction of it (1.0: a core, all the time).
    pub busy: f64,
    /// With `--request`: replies counted by outcome, and the first wrong.
    pub replies: Option<super::framed::Tally>,
}

impl Report {
    /// An empty report for `settings` (the start of a merge).
    pub(crate) fn empty(settings: &LoadConfig) -> Report {
        Report {
            settings: settings.clone(),
            idle: settings.idle,
            wanted: 0,
            connections: 0,
            held: 0,
            failed: 0,
            lost: 0,
            failures: Failures::new(),
            messages: 0,
            elapsed: Duration::ZERO,
            started_unix: 0.0,
            size: settings.size,
            errors: 0,
            latency_ns: latency_histogram(),
            latency_uncorrected_ns: latency_histogram(),
            send_lateness_ns: settings.rate.map(|_| latency_histogram()),
            per_thread_messages: Vec::new(),
            writes: 0,
            reply_bytes: 0,
            timeline: Vec::new(),
            churn: settings.churn,
            datagrams_lost: settings.udp().then_some(0),
            churned: 0,
            connects: 0,
            connect_latency_ns: latency_histogram(),
            busy: 0.0,
            replies: None,
        }
    }

    /// One summary of several threads' runs of `settings`: counts added,
    /// histograms merged, seconds aligned by their number, the longest
    /// window.
    pub fn merge(settings: &LoadConfig, parts: Vec<Report>) -> Report {
        let mut all = Report::empty(settings);
        for p in parts {
            all.wanted += p.wanted;
            all.connections += p.connections;
            all.held += p.held;
            all.failed += p.failed;
            all.lost += p.lost;
            for (why, n) in p.failures {
                *all.failures.entry(why).or_default() += n;
            }
            all.messages += p.messages;
            all.elapsed = all.elapsed.max(p.elapsed);
            if all.started_unix == 0.0
                || (p.started_unix > 0.0 && p.started_unix < all.started_unix)
            {
                all.started_unix = p.started_unix;
            }
            all.errors += p.errors;
            // Same bounds in every thread, so adding cannot fail.
            let _ = all.latency_ns.add(&p.latency_ns);
            let _ = all.latency_uncorrected_ns.add(&p.latency_uncorrected_ns);
            if let (Some(a), Some(b)) = (&mut all.send_lateness_ns, &p.send_lateness_ns) {
                let _ = a.add(b);
            }
            all.per_thread_messages.extend(p.per_thread_messages);
            all.writes += p.writes;
            all.reply_bytes += p.reply_bytes;
            all.churned += p.churned;
            if let Some(l) = p.datagrams_lost {
                all.datagrams_lost = Some(all.datagrams_lost.unwrap_or(0) + l);
            }
            all.connects += p.connects;
            let _ = all.connect_latency_ns.add(&p.connect_latency_ns);
            all.busy = all.busy.max(p.busy);
            if let Some(t) = &p.replies {
                all.replies.get_or_insert_with(Default::default).add(t);
            }
            for (i, s) in p.timeline.into_iter().enumerate() {
                match all.timeline.get_mut(i) {
                    Some(a) => a.add(&s),
                    None => all.timeline.push(s),
                }
            }
        }
        // "No reply in the whole run" from a thread is only true of the
        // run if no thread got any.
        if all.messages > 0 {
            all.failures
                .retain(|why, _| !why.starts_with(super::NO_REPLY));
        }
        all
    }

    /// Whether the run met its goal: every connection held (`--idle`), or
    /// no error and no failed connection.
    pub fn ok(&self) -> bool {
        if self.idle {
            self.held == self.wanted
        } else {
            self.errors == 0 && self.failed == 0 && self.lost == 0 && self.messages > 0
        }
    }

    /// Replies per second in the measured window.
    pub fn messages_per_sec(&self) -> f64 {
        self.messages as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Reply bytes per second, in MB (10^6 bytes): echo's replies are
    /// `--size` bytes each; with `--request` replies have sizes of their
    /// own, so the bytes read from the targets are counted instead.
    pub fn mb_per_sec(&self) -> f64 {
        if self.settings.request.is_empty() {
            self.messages_per_sec() * self.size as f64 / 1e6
        } else {
            self.reply_bytes as f64 / self.elapsed.as_secs_f64().max(1e-9) / 1e6
        }
    }

    /// The latency at quantile `q`, in µs.
    pub fn latency_us(&self, q: f64) -> f64 {
        quantile_us(&self.latency_ns, q)
    }

    /// Datagrams lost, as a percentage of those sent and judged (answered
    /// or timed out).
    pub fn loss_percent(&self) -> f64 {
        let lost = self.datagrams_lost.unwrap_or(0);
        100.0 * lost as f64 / (lost + self.messages).max(1) as f64
    }

    /// With `--rate`, when the run was not on time — it achieved more than
    /// 1 % less than asked, or its sends' lateness p99 was over 1 ms — one
    /// line saying so, and on which side it was.
    pub fn pace_notice(&self) -> Option<String> {
        let rate = self.settings.rate?;
        let late = self.send_lateness_ns.as_ref()?;
        let achieved = self.messages_per_sec();
        let short = achieved < rate * 0.99;
        let p99 = quantile_us(late, 0.99);
        if !short && p99 <= 1000.0 {
            return None;
        }
        let what = match (short, p99 > 1000.0) {
            (true, true) => format!(
                "achieved {achieved:.0} msg/s of --rate {rate:.0} ({:.1} % short), sends late by {p99:.0} µs at p99",
                100.0 * (1.0 - achieved / rate)
            ),
            (true, false) => format!(
                "achieved {achieved:.0} msg/s of --rate {rate:.0} ({:.1} % short)",
                100.0 * (1.0 - achieved / rate)
            ),
            _ => format!("sends late by {p99:.0} µs at p99 (over 1 ms)"),
        };
        // Little's law: keeping `rate` messages a second in flight for
        // the replies' own time (from the actual send) takes rate × that
        // many slots; --conns × --pipeline is all there are. Short of
        // slots, sends waited for replies: the target's side.
        let c = &self.settings;
        let needed = rate * self.latency_uncorrected_ns.mean() / 1e9;
        let slots = (c.conns * c.pipeline) as f64;
        let side = if needed >= 0.9 * slots {
            format!(
                "replies did not come back fast enough: at {:.0} µs a reply, --rate {rate:.0} needs {needed:.0} messages in flight and --conns × --pipeline allows {slots:.0} (the target is the limit, or raise --pipeline)",
                self.latency_uncorrected_ns.mean() / 1e3
            )
        } else if self.busy >= 0.9 {
            format!(
                "the generator's own CPU was saturated (its loop busy {:.0} % of the time; try --threads)",
                self.busy * 100.0
            )
        } else {
            format!(
                "the generator was late, though its loop was busy only {:.0} % of the time: the machine did not give it the CPU when due",
                self.busy * 100.0
            )
        };
        Some(format!("{what}: {side}"))
    }

    /// Connects per second in the measured window (--churn).
    pub fn connects_per_sec(&self) -> f64 {
        self.connects as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Quantile `q` of a histogram of ns, in µs (0 when empty).
pub(crate) fn quantile_us(h: &Histogram<u64>, q: f64) -> f64 {
    if h.is_empty() {
        0.0
    } else {
        h.value_at_quantile(q) as f64 / 1000.0
    }
}

/// p50, p90, p99, p99.9 and max of a histogram of ns, in µs.
pub(crate) fn five(h: &Histogram<u64>) -> [f64; 5] {
    let q = |x| quantile_us(h, x);
    [q(0.5), q(0.9), q(0.99), q(0.999), h.max() as f64 / 1000.0]
}
