//! The summary as text: the table `load` prints, the latency
//! distribution as `.hgrm`, and the timeline as CSV.

use std::fmt::Write as _;

use super::{five, quantile_us, Report};

impl Report {
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

    /// One CSV row per measured second: the second (from 1), replies in
    /// it, their p50 and p99 in µs, errors in it, connections open at its
    /// end.
    pub fn to_timeline_csv(&self) -> String {
        let mut s = String::from("second,messages,p50_us,p99_us,errors,open\n");
        for (i, r) in self.timeline.iter().enumerate() {
            let _ = writeln!(
                s,
                "{},{},{:.1},{:.1},{},{}",
                i + 1,
                r.messages,
                quantile_us(&r.hist, 0.5),
                quantile_us(&r.hist, 0.99),
                r.errors,
                r.open
            );
        }
        s
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
            // udp:// opens sockets, not connections: say so (the JSON key
            // stays `connections`, as SPEC §3 has it).
            let (what, one) = if self.settings.udp() {
                ("sockets     ", "socket")
            } else {
                ("connections ", "connection")
            };
            let _ = writeln!(
                s,
                "{what} {} of {} opened ({} failed to connect), {} lost, {} open at the end",
                self.connections, self.wanted, self.failed, self.lost, self.held
            );
            if self.connections == 0 {
                let _ = writeln!(s, "messages     none: no {one} opened");
            } else {
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
                if let Some(late) = &self.send_lateness_ns {
                    let [p50, p90, p99, p999, max] = five(&self.latency_uncorrected_ns);
                    let _ = writeln!(
                        s,
                        "from send µs p50 {p50:.1}  p90 {p90:.1}  p99 {p99:.1}  p99.9 {p999:.1}  max {max:.1}  (uncorrected)"
                    );
                    let [p50, _, p99, _, max] = five(late);
                    let _ = writeln!(
                        s,
                        "send late µs p50 {p50:.1}  p99 {p99:.1}  max {max:.1}  (actual send − due time)"
                    );
                }
                if let Some(notice) = self.pace_notice() {
                    let _ = writeln!(s, "not on time  {notice}");
                }
                let _ = writeln!(s, "errors       {}", self.errors);
            }
            if self.failed + self.lost > 0 {
                // Not "errors 0" alone above the reasons: failed connections
                // fail the run too.
                let _ = writeln!(
                    s,
                    "failed       {} {one}{} (could not connect: {}, lost: {}): see why",
                    self.failed + self.lost,
                    if self.failed + self.lost == 1 {
                        ""
                    } else {
                        "s"
                    },
                    self.failed,
                    self.lost
                );
            }
            if let Some(t) = &self.replies {
                let _ = writeln!(
                    s,
                    "replies      ok {}, error replies {}, mismatched {}, closes {} (connections replaced after Connection: close)",
                    t.ok, t.error_replies, t.mismatched, t.closes
                );
                if let Some((reply, target)) = &t.first_wrong {
                    let _ = writeln!(s, "first wrong  reply ({target}): {reply}");
                }
            }
            if let (Some(seed), false) = (self.settings.seed, self.settings.request.is_empty()) {
                let _ = writeln!(
                    s,
                    "seed         {seed} (--seed {seed} repeats these requests)"
                );
            }
            if let Some(lost) = self.datagrams_lost {
                let _ = writeln!(
                    s,
                    "lost         {lost} datagrams ({:.3} %) not answered within 1 s",
                    self.loss_percent()
                );
            }
            if let Some(m) = self.churn {
                let [p50, p90, p99, p999, max] = five(&self.connect_latency_ns);
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
