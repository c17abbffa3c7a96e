//! Adding checked shards into one run: counts summed, histograms added
//! bucket by bucket, timelines lined up by wall-clock second.

use std::time::Duration;

use hdrhistogram::Histogram;

use super::shard::Shard;
use crate::hdr;
use crate::load::report::{Failures, Report, Second};

/// The sum of the shards' µs histograms. All have the bounds
/// [`hdr::decode`] checked, so adding cannot fail.
fn sum<'a>(hists: impl Iterator<Item = &'a Histogram<u64>>) -> Histogram<u64> {
    let mut all = hdr::us_histogram();
    for h in hists {
        let _ = all.add(h);
    }
    all
}

/// The merged latency histogram, µs.
pub(crate) fn latency(shards: &[Shard]) -> Histogram<u64> {
    sum(shards.iter().map(|s| &s.latency))
}

/// The merged timeline: second `i` is wall-clock second `first + i`, with
/// every shard's figures for that second added. Its latencies are exact
/// when every shard sent that second's histogram; without them the
/// second's percentiles are left empty rather than guessed.
fn timeline(shards: &[Shard]) -> (Option<i64>, Vec<Second>, Vec<Histogram<u64>>) {
    let seconds = shards.iter().flat_map(|s| &s.timeline);
    let (Some(first), Some(last)) = (
        seconds.clone().map(|s| s.unix).min(),
        seconds.map(|s| s.unix).max(),
    ) else {
        return (None, Vec::new(), Vec::new());
    };
    let mut merged: Vec<(Second, Histogram<u64>)> = (first..=last)
        .map(|_| {
            (
                Second::new(hdr::to_ns_at(&hdr::us_histogram(), 3)),
                hdr::us_histogram(),
            )
        })
        .collect();
    for s in shards.iter().flat_map(|s| &s.timeline) {
        let (m, us) = &mut merged[(s.unix - first) as usize];
        m.messages += s.messages;
        m.errors += s.errors;
        m.open += s.open;
        if let Some(h) = &s.hist {
            let _ = us.add(h);
        }
    }
    let (seconds, us) = merged
        .into_iter()
        .map(|(mut m, us)| {
            m.hist = hdr::to_ns_at(&us, 3);
            (m, us)
        })
        .unzip();
    (Some(first), seconds, us)
}

/// The shards, checked and sorted, as one [`Report`] that `load`'s own
/// code prints; the wall-clock second its timeline starts at, and each
/// second's µs histogram.
pub(crate) fn report(
    shards: &[Shard],
    latency: &Histogram<u64>,
) -> (Report, Option<i64>, Vec<Histogram<u64>>) {
    let settings = &shards[0].settings;
    let setting = |k: &str| settings.get(k).and_then(serde_json::Value::as_u64);
    // The window: from the first shard's start to the last one's end.
    let window = {
        let starts = shards.iter().filter_map(|s| s.started_unix);
        let ends = shards
            .iter()
            .filter_map(|s| s.started_unix.map(|t| t + s.duration));
        match (starts.reduce(f64::min), ends.reduce(f64::max)) {
            (Some(a), Some(b)) if b >= a => b - a,
            _ => shards.iter().map(|s| s.duration).fold(0.0, f64::max),
        }
    };
    let mut failures = Failures::new();
    for s in shards {
        for (why, n) in &s.failures {
            *failures.entry(why.clone()).or_default() += n;
        }
    }
    let connect = shards
        .iter()
        .filter_map(|s| s.connect_latency.as_ref())
        .collect::<Vec<_>>();
    let (first_second, timeline, seconds_us) = timeline(shards);
    let total = |f: fn(&Shard) -> u64| shards.iter().map(f).sum::<u64>();
    let report = Report {
        idle: shards[0].idle,
        wanted: setting("conns").unwrap_or_else(|| total(|s| s.connections + s.failed)) as usize,
        connections: total(|s| s.connections) as usize,
        held: total(|s| s.held) as usize,
        failed: total(|s| s.failed) as usize,
        lost: total(|s| s.lost) as usize,
        failures,
        messages: total(|s| s.messages),
        elapsed: Duration::try_from_secs_f64(window).unwrap_or_default(),
        size: setting("size").unwrap_or(0) as usize,
        errors: total(|s| s.errors),
        latency_ns: hdr::to_ns(latency),
        per_thread_messages: shards
            .iter()
            .flat_map(|s| s.per_thread_messages.iter().copied())
            .collect(),
        writes: total(|s| s.writes),
        timeline,
        churn: setting("churn"),
        datagrams_lost: shards
            .iter()
            .filter_map(|s| s.datagrams_lost)
            .reduce(|a, b| a + b),
        churned: total(|s| s.churned),
        connects: total(|s| s.connects),
        connect_latency_ns: hdr::to_ns(&sum(connect.into_iter())),
    };
    (report, first_second, seconds_us)
}
