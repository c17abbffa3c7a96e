//! The Prometheus text exposition format, version 0.0.4, written from the
//! table: for each counter, `# HELP` and `# TYPE` once, then one series per
//! listener (labels `service`, `proto`, `addr`) or per loop.
//!
//! With several workers each series comes once per worker (label
//! `worker="0"`, `"1"`, …) and once summed over the workers (no `worker`
//! label): one worker answers for all. In PromQL, `{worker=""}` selects the
//! sums and `{worker!=""}` the workers; summing both would count twice.
//!
//! Written here rather than with the `prometheus-client` crate: that crate
//! writes OpenMetrics (`application/openmetrics-text`, `# EOF`), not 0.0.4,
//! and wants its own metric types — locked read-modify-write atomics and
//! label maps on the hot path — where the table already has every name,
//! help, kind and value. What it takes is escaping label values and
//! writing numbers, below.
//!
//! The cost of a scrape depends on the number of series (listeners ×
//! workers), never on the number of connections: no per-connection labels.

use std::fmt::Write as _;
use std::sync::Arc;

use super::set::{ListenerInfo, ServerCounters};
use super::table::{ListenerStats, LoopStats};
use super::Family;
use crate::stats::kinds::Sample;

/// The `Content-Type` of the exposition ([`Counters::prometheus`](super::Counters::prometheus)).
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// One series: its labels (already written out) and its samples.
struct Series<'a> {
    labels: String,
    samples: Vec<&'a dyn Sample>,
}

/// Write every family for these servers (workers, in order).
pub(crate) fn render(servers: &[Arc<ServerCounters>], out: &mut String) {
    let several = servers.len() > 1;
    let worker = |k: Option<usize>| match k {
        Some(k) if several => format!(",worker=\"{k}\""),
        _ => String::new(),
    };
    // Per listener: each worker's, then (with several) the sums.
    let mut listeners: Vec<(String, ListenerStats)> = Vec::new();
    let mut sums: Vec<(&ListenerInfo, ListenerStats)> = Vec::new();
    for (k, s) in servers.iter().enumerate() {
        for (info, stats) in s.listener_snapshots() {
            listeners.push((labels(info) + &worker(Some(k)), stats));
            match sums.iter_mut().find(|(i, _)| *i == info) {
                Some((_, sum)) => *sum = sum.merge(stats),
                None => sums.push((info, stats)),
            }
        }
    }
    if several {
        listeners.extend(sums.into_iter().map(|(i, s)| (labels(i), s)));
    }
    let series: Vec<Series> = listeners
        .iter()
        .map(|(labels, s)| Series {
            labels: labels.clone(),
            samples: s.samples(),
        })
        .collect();
    families(ListenerStats::FAMILIES, &series, out);

    // Per loop: each worker's, then (with several) the sum.
    let mut loops: Vec<(String, LoopStats)> = servers
        .iter()
        .enumerate()
        .map(|(k, s)| {
            (
                worker(Some(k)).trim_start_matches(',').to_string(),
                s.health.snapshot(),
            )
        })
        .collect();
    if several {
        let sum = loops
            .iter()
            .map(|(_, s)| *s)
            .fold(LoopStats::default(), LoopStats::merge);
        loops.push((String::new(), sum));
    }
    let series: Vec<Series> = loops
        .iter()
        .map(|(labels, s)| Series {
            labels: labels.clone(),
            samples: s.samples(),
        })
        .collect();
    families(LoopStats::FAMILIES, &series, out);
}

/// Each family's header, then its sample in every series.
fn families(families: &[Family], series: &[Series], out: &mut String) {
    for (i, f) in families.iter().enumerate() {
        let _ = writeln!(out, "# HELP {} {}", f.name, escape_help(f.help.trim()));
        let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind);
        for s in series {
            s.samples[i].prom(f.name, &s.labels, f.places, out);
        }
    }
}

/// `service="…",proto="…",addr="…"`.
fn labels(info: &ListenerInfo) -> String {
    format!(
        "service=\"{}\",proto=\"{}\",addr=\"{}\"",
        escape_label(&info.service),
        info.endpoint.proto,
        info.endpoint.addr
    )
}

/// A label value: backslash, double quote and newline escaped.
fn escape_label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A `# HELP` text: backslash and newline escaped.
fn escape_help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::Endpoint;
    use crate::stats::set::ServerCounters;

    fn server(services: &[&str]) -> Arc<ServerCounters> {
        let infos = services
            .iter()
            .map(|s| ListenerInfo {
                service: s.to_string(),
                endpoint: "tcp://127.0.0.1:7000".parse::<Endpoint>().unwrap(),
            })
            .collect();
        Arc::new(ServerCounters::new(infos))
    }

    #[test]
    fn one_server_every_family_once_with_help_type_and_labels() {
        let s = server(&["echo"]);
        s[0].accepted.add(3);
        s[0].room_paused_ms.add(1500);
        s.health.busy_ns.add(2_000_000_000);
        let mut out = String::new();
        render(&[s], &mut out);
        for f in ListenerStats::FAMILIES.iter().chain(LoopStats::FAMILIES) {
            assert_eq!(
                out.matches(&format!("# HELP {} ", f.name)).count(),
                1,
                "{}",
                f.name
            );
            assert_eq!(
                out.matches(&format!("# TYPE {} ", f.name)).count(),
                1,
                "{}",
                f.name
            );
            assert!(f.name.starts_with("sockloop_"));
            if f.kind == "counter" {
                assert!(f.name.ends_with("_total"), "{}", f.name);
            }
        }
        assert!(out.contains(
            "sockloop_connections_accepted_total{service=\"echo\",proto=\"tcp\",addr=\"127.0.0.1:7000\"} 3\n"
        ));
        assert!(out.contains("sockloop_room_paused_seconds_total{service=\"echo\",proto=\"tcp\",addr=\"127.0.0.1:7000\"} 1.5\n"));
        assert!(out.contains("sockloop_loop_busy_seconds_total 2\n"));
        assert!(!out.contains("worker="));
    }

    #[test]
    fn several_workers_per_worker_series_and_sums() {
        let (a, b) = (server(&["echo", "chat"]), server(&["echo"]));
        a[0].accepted.add(2);
        b[0].accepted.add(5);
        a.health.turns.add(1);
        b.health.turns.add(4);
        let mut out = String::new();
        render(&[a, b], &mut out);
        let l = "service=\"echo\",proto=\"tcp\",addr=\"127.0.0.1:7000\"";
        assert!(out.contains(&format!(
            "sockloop_connections_accepted_total{{{l},worker=\"0\"}} 2\n"
        )));
        assert!(out.contains(&format!(
            "sockloop_connections_accepted_total{{{l},worker=\"1\"}} 5\n"
        )));
        assert!(out.contains(&format!("sockloop_connections_accepted_total{{{l}}} 7\n")));
        assert!(out.contains("sockloop_loop_turns_total{worker=\"1\"} 4\n"));
        assert!(out.contains("sockloop_loop_turns_total 5\n"));
        // The chat listener is the first worker's alone: its sum is its own.
        assert_eq!(
            out.matches("sockloop_connections_open{service=\"chat\"")
                .count(),
            2
        );
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
