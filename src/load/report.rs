//! The summary of a run: what `load` prints, as a table or one JSON object.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;

/// Why connections failed, counted.
pub(crate) type Failures = BTreeMap<String, u64>;

/// A histogram for latencies in ns: 1 ns to 60 s, 3 significant digits.
pub(crate) fn latency_histogram() -> std::io::Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).map_err(std::io::Error::other)
}

/// One second of a run, for `--timeline`.
#[derive(Debug)]
pub struct Second {
    /// Replies completed in that second.
    pub messages: u64,
    /// Errors in that second.
    pub errors: u64,
    /// Connections open at its end.
    pub open: u64,
    /// Latencies of that second's replies, ns.
    pub hist: Histogram<u64>,
}

impl Second {
    /// An empty second recording into `hist`.
    pub(crate) fn new(hist: Histogram<u64>) -> Self {
        Second {
            messages: 0,
            errors: 0,
            open: 0,
            hist,
        }
    }
}

/// The outcome of a run.
#[derive(Debug)]
pub struct Report {
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
    /// Bytes per message.
    pub size: usize,
    /// Wrong reply bytes, and connections lost mid-run.
    pub errors: u64,
    /// Round-trip latency, ns (with `--rate`, from when each was due).
    pub latency_ns: Histogram<u64>,
    /// Messages measured by each thread (`--threads`), in order.
    pub per_thread_messages: Vec<u64>,
    /// `write` calls in the measured window (pipelined, about one per
    /// connection per turn, not one per message).
    pub writes: u64,
    /// One row per second since the start (`--timeline`).
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
}

impl Report {
    /// One summary of several threads' runs: counts added, histograms
    /// merged, the longest window.
    pub fn merge(parts: Vec<Report>) -> Report {
        let mut parts = parts.into_iter();
        let Some(mut all) = parts.next() else {
            return Report {
                idle: false,
                wanted: 0,
                connections: 0,
                held: 0,
                failed: 0,
                lost: 0,
                failures: Failures::new(),
                messages: 0,
                elapsed: Duration::ZERO,
                size: 0,
                errors: 0,
                latency_ns: Histogram::new(3).expect("3 significant digits is valid"),
                per_thread_messages: Vec::new(),
                writes: 0,
                timeline: Vec::new(),
                churn: None,
                datagrams_lost: None,
                churned: 0,
                connects: 0,
                connect_latency_ns: Histogram::new(3).expect("3 significant digits is valid"),
            };
        };
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
            all.errors += p.errors;
            // Same bounds in every thread, so adding cannot fail.
            let _ = all.latency_ns.add(&p.latency_ns);
            all.per_thread_messages.extend(p.per_thread_messages);
            all.writes += p.writes;
            all.churned += p.churned;
            if let Some(l) = p.datagrams_lost {
                all.datagrams_lost = Some(all.datagrams_lost.unwrap_or(0) + l);
            }
            all.connects += p.connects;
            let _ = all.connect_latency_ns.add(&p.connect_latency_ns);
            // Second by second: counts added, histograms merged.
            for (i, s) in p.timeline.into_iter().enumerate() {
                match all.timeline.get_mut(i) {
                    Some(a) => {
                        a.messages += s.messages;
                        a.errors += s.errors;
                        a.open += s.open;
                        let _ = a.hist.add(&s.hist);
                    }
                    None => all.timeline.push(s),
                }
            }
        }
        // "No reply in the whole run" from a thread is only true of the
        // run if no thread got any.
        if all.messages > 0 {
            all.failures
                .retain(|why, _| !why.starts_with("no reply came back"));
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

    /// Reply bytes per second, in MB (10^6 bytes).
    pub fn mb_per_sec(&self) -> f64 {
        self.messages_per_sec() * self.size as f64 / 1e6
    }

    /// The latency at quantile `q`, in µs.
    pub fn latency_us(&self, q: f64) -> f64 {
        if self.latency_ns.is_empty() {
            return 0.0;
        }
        self.latency_ns.value_at_quantile(q) as f64 / 1000.0
    }

    fn failures_json(&self) -> String {
        let mut s = String::from("{");
        for (i, (why, n)) in self.failures.iter().enumerate() {
            let sep = if i > 0 { "," } else { "" };
            let _ = write!(s, "{sep}\"{}\":{n}", json_escape(why));
        }
        s.push('}');
        s
    }

    /// The summary as one JSON object (docs/protocol.md, "Command line" `load --json`).
    pub fn to_json(&self) -> String {
        if self.idle {
            return format!(
                "{{\"connections\":{},\"held\":{},\"failed\":{},\"failures\":{}}}",
                self.wanted,
                self.held,
                self.failed,
                self.failures_json()
            );
        }
        format!(
            "{{\"connections\":{},\"messages\":{},\"duration_sec\":{:.3},\"messages_per_sec\":{:.1},\"mb_per_sec\":{:.3},\"latency_us\":{{\"p50\":{:.1},\"p90\":{:.1},\"p99\":{:.1},\"p99_9\":{:.1},\"max\":{:.1}}},\"errors\":{},\"failed\":{},\"lost_connections\":{},\"failures\":{},\"per_thread_messages\":{:?},\"writes\":{}{}{}}}",
            self.connections,
            self.messages,
            self.elapsed.as_secs_f64(),
            self.messages_per_sec(),
            self.mb_per_sec(),
            self.latency_us(0.5),
            self.latency_us(0.9),
            self.latency_us(0.99),
            self.latency_us(0.999),
            self.latency_ns.max() as f64 / 1000.0,
            self.errors,
            // `failed`: could not connect, or lost (docs/protocol.md).
            self.failed + self.lost,
            self.lost,
            self.failures_json(),
            self.per_thread_messages,
            self.writes,
            self.churn_json(),
            self.udp_json()
        )
    }

    /// The latency distribution in HdrHistogram's percentile-distribution
    /// text (what wrk2 prints and HdrHistogram's plotter reads), values in
    /// microseconds.
    pub fn to_hgrm(&self) -> String {
        let h = &self.latency_ns;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{:>12} {:>14} {:>10} {:>14}\n",
            "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
        );
        let mut total = 0u64;
        for v in h.iter_quantiles(5) {
            total += v.count_since_last_iteration();
            let q = v.quantile_iterated_to();
            let value = v.value_iterated_to() as f64 / 1000.0;
            if q < 1.0 {
                let _ = writeln!(
                    s,
                    "{value:12.3} {q:2.12} {total:10} {:14.2}",
                    1.0 / (1.0 - q)
                );
            } else {
                let _ = writeln!(s, "{value:12.3} {q:2.12} {total:10}");
            }
        }
        let _ = writeln!(
            s,
            "#[Mean    = {:12.3}, StdDeviation   = {:12.3}]",
            h.mean() / 1000.0,
            h.stdev() / 1000.0
        );
        let _ = writeln!(
            s,
            "#[Max     = {:12.3}, Total count    = {:12}]",
            h.max() as f64 / 1000.0,
            h.len()
        );
        let _ = writeln!(
            s,
            "#[Buckets = {:12}, SubBuckets     = {:12}]",
            h.buckets(),
            2048
        );
        s
    }

    /// One CSV row per second since the start: the second, replies in it,
    /// their p50 and p99 in µs, errors in it, connections open at its end.
    pub fn to_timeline_csv(&self) -> String {
        let mut s = String::from("second,messages,p50_us,p99_us,errors,open\n");
        for (i, r) in self.timeline.iter().enumerate() {
            let q = |x: f64| {
                if r.hist.is_empty() {
                    0.0
                } else {
                    r.hist.value_at_quantile(x) as f64 / 1000.0
                }
            };
            let _ = writeln!(
                s,
                "{},{},{:.1},{:.1},{},{}",
                i + 1,
                r.messages,
                q(0.5),
                q(0.99),
                r.errors,
                r.open
            );
        }
        s
    }

    /// The udp:// keys, with their leading comma (nothing for TCP).
    fn udp_json(&self) -> String {
        match self.datagrams_lost {
            Some(lost) => format!(
                ",\"lost\":{lost},\"loss_percent\":{:.3}",
                self.loss_percent()
            ),
            None => String::new(),
        }
    }

    /// Datagrams lost, as a percentage of those sent and judged (answered
    /// or timed out).
    pub fn loss_percent(&self) -> f64 {
        let lost = self.datagrams_lost.unwrap_or(0);
        100.0 * lost as f64 / (lost + self.messages).max(1) as f64
    }

    /// Connects per second in the measured window (--churn).
    pub fn connects_per_sec(&self) -> f64 {
        self.connects as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// p50, p90, p99, p99.9 and max of a histogram of ns, in µs.
    fn five(h: &Histogram<u64>) -> [f64; 5] {
        let q = |x: f64| {
            if h.is_empty() {
                0.0
            } else {
                h.value_at_quantile(x) as f64 / 1000.0
            }
        };
        [q(0.5), q(0.9), q(0.99), q(0.999), h.max() as f64 / 1000.0]
    }

    /// The --churn keys, with their leading comma (nothing without --churn).
    fn churn_json(&self) -> String {
        if self.churn.is_none() {
            return String::new();
        }
        let [p50, p90, p99, p999, max] = Self::five(&self.connect_latency_ns);
        format!(
            ",\"churned\":{},\"connects_per_sec\":{:.1},\"connect_latency_us\":{{\"p50\":{p50:.1},\"p90\":{p90:.1},\"p99\":{p99:.1},\"p99_9\":{p999:.1},\"max\":{max:.1}}}",
            self.churned,
            self.connects_per_sec()
        )
    }

    /// The summary as a small table.
    pub fn to_table(&self) -> String {
        let mut s = String::new();
        let failures = self
            .failures
            .iter()
            .map(|(why, n)| format!("{n} {why}"))
            .collect::<Vec<_>>()
            .join(", ");
        if self.idle {
            let _ = writeln!(
                s,
                "connections  {} wanted, {} held, {} failed",
                self.wanted, self.held, self.failed
            );
        } else {
            let _ = writeln!(
                s,
                "connections  {} of {} opened ({} failed to connect), {} lost, {} open at the end",
                self.connections, self.wanted, self.failed, self.lost, self.held
            );
            let _ = writeln!(
                s,
                "messages     {} in {:.2} s = {:.0} msg/s, {:.2} MB/s",
                self.messages,
                self.elapsed.as_secs_f64(),
                self.messages_per_sec(),
                self.mb_per_sec()
            );
            let _ = writeln!(
                s,
                "latency µs   p50 {:.1}  p90 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}",
                self.latency_us(0.5),
                self.latency_us(0.9),
                self.latency_us(0.99),
                self.latency_us(0.999),
                self.latency_ns.max() as f64 / 1000.0
            );
            let _ = writeln!(s, "errors       {}", self.errors);
            if let Some(lost) = self.datagrams_lost {
                let _ = writeln!(
                    s,
                    "lost         {lost} datagrams ({:.3} %) not answered within 1 s",
                    self.loss_percent()
                );
            }
            if let Some(m) = self.churn {
                let [p50, p90, p99, p999, max] = Self::five(&self.connect_latency_ns);
                let _ = writeln!(
                    s,
                    "churn        {} connections replaced after {m} round trips; {:.0} connects/s",
                    self.churned,
                    self.connects_per_sec()
                );
                let _ = writeln!(
                    s,
                    "connect µs   p50 {p50:.1}  p90 {p90:.1}  p99 {p99:.1}  p99.9 {p999:.1}  max {max:.1}"
                );
            }
        }
        if !failures.is_empty() {
            let _ = writeln!(s, "why          {failures}");
        }
        s
    }
}

fn json_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_escapes_reasons() {
        assert_eq!(json_escape("a\"b\\c\n"), "a\\\"b\\\\c\\u000a");
    }
}
