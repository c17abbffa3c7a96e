//! The summary of a run: what `load` prints, as a table or one JSON object.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;

/// Why connections failed, counted.
pub(crate) type Failures = BTreeMap<String, u64>;

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
            "{{\"connections\":{},\"messages\":{},\"duration_sec\":{:.3},\"messages_per_sec\":{:.1},\"mb_per_sec\":{:.3},\"latency_us\":{{\"p50\":{:.1},\"p90\":{:.1},\"p99\":{:.1},\"p99_9\":{:.1},\"max\":{:.1}}},\"errors\":{},\"failed\":{},\"lost\":{},\"failures\":{},\"per_thread_messages\":{:?},\"writes\":{}}}",
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
            self.failed,
            self.lost,
            self.failures_json(),
            self.per_thread_messages,
            self.writes
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
