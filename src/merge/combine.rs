//! Adding checked shards into one run: counts summed, histograms added
//! bucket by bucket, timelines lined up by wall-clock second.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::Value;

use super::shard::Shard;
use crate::hdr;
use crate::load::template::{self, Template};
use crate::load::{LoadConfig, Report, Second};

/// The sum of µs histograms. All have the bounds [`hdr::decode`] checked,
/// so adding cannot fail.
fn sum<'a>(hists: impl Iterator<Item = &'a Histogram<u64>>) -> Histogram<u64> {
    let mut all = hdr::us_histogram();
    for h in hists {
        let _ = all.add(h);
    }
    all
}

/// The merged µs histograms.
pub(crate) struct Histograms {
    /// Latency (from the due time with `--rate`).
    pub latency: Histogram<u64>,
    /// `--rate`: from the actual send, and the sends' lateness; `--churn`:
    /// connect latency. `None` unless every shard sent it.
    pub uncorrected: Option<Histogram<u64>>,
    pub lateness: Option<Histogram<u64>>,
    pub connect: Option<Histogram<u64>>,
    /// Each second of the merged timeline (empty where no shard sent that
    /// second's histogram).
    pub seconds: Vec<Histogram<u64>>,
}

/// Every shard's `pick`, added, if every shard has one.
fn all_of(shards: &[Shard], pick: fn(&Shard) -> &Option<Histogram<u64>>) -> Option<Histogram<u64>> {
    let parts: Option<Vec<&Histogram<u64>>> = shards.iter().map(|s| pick(s).as_ref()).collect();
    parts.map(|p| sum(p.into_iter()))
}

/// The merged timeline: second `i` is wall-clock second `first + i`, with
/// every shard's figures for that second added; its latencies are the
/// shards' histograms of that second, added.
fn timeline(shards: &[Shard], paced: bool) -> (Vec<Second>, Vec<Histogram<u64>>) {
    let seconds = shards.iter().flat_map(|s| &s.timeline);
    let (Some(first), Some(last)) = (
        seconds.clone().map(|s| s.unix).min(),
        seconds.map(|s| s.unix).max(),
    ) else {
        return (Vec::new(), Vec::new());
    };
    let mut merged: Vec<(Second, Histogram<u64>)> = (first..=last)
        .map(|unix| (Second::new(unix as u64, paced), hdr::us_histogram()))
        .collect();
    for s in shards.iter().flat_map(|s| &s.timeline) {
        let (m, us) = &mut merged[(s.unix - first) as usize];
        m.messages += s.messages;
        m.errors += s.errors;
        m.open += s.open;
        m.connects += s.connects;
        if let Some(h) = &s.hist {
            let _ = us.add(h);
        }
    }
    merged
        .into_iter()
        .map(|(mut m, us)| {
            m.hist = hdr::to_ns_at(&us, 3);
            // Lateness per second is not sent; none rather than a guess.
            m.lateness = None;
            (m, us)
        })
        .unzip()
}

/// The whole test's options, read back from a shard's `settings` (what
/// `load` prints there; a key it lacks keeps `load`'s default).
fn config(settings: &Value) -> LoadConfig {
    let d = LoadConfig::default();
    let num = |k: &str| settings.get(k).and_then(Value::as_f64);
    let count = |k: &str, or: usize| {
        settings
            .get(k)
            .and_then(Value::as_u64)
            .map_or(or, |n| n as usize)
    };
    let secs = |k: &str, or: Duration| {
        num(k)
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
            .unwrap_or(or)
    };
    LoadConfig {
        endpoints: settings
            .get("targets")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_str()?.parse().ok())
            .collect(),
        threads: count("threads", d.threads),
        conns: count("conns", d.conns),
        size: count("size", d.size),
        duration: secs("duration_s", d.duration),
        pipeline: count("pipeline", d.pipeline),
        rate: num("rate"),
        connect_rate: num("connect_rate").unwrap_or(d.connect_rate),
        idle: settings.get("idle").and_then(Value::as_bool) == Some(true),
        churn: settings.get("churn").and_then(Value::as_u64),
        connect_timeout: secs("connect_timeout_s", d.connect_timeout),
        max_rate_at: None,
        // What each shard was asked to send, read back from its settings
        // (the same on every shard), so the merged summary shows it too.
        request: settings
            .get("request")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|t| Template::parse(t.as_str()?).ok())
            .collect(),
        reply: settings
            .get("reply")
            .and_then(Value::as_str)
            .and_then(|r| r.parse().ok()),
        expect: settings
            .get("expect")
            .and_then(Value::as_str)
            .and_then(|e| template::unescape(e).ok()),
        seed: settings.get("seed").and_then(Value::as_u64),
        shard: None,
        start_at: None,
    }
}

/// The shards, checked and sorted, as one [`Report`] that `load`'s own
/// code prints, and the merged µs histograms.
pub(crate) fn report(shards: &[Shard]) -> (Report, Histograms) {
    let cfg = config(&shards[0].settings);
    let hists = {
        let (_, seconds) = timeline(shards, false);
        Histograms {
            latency: sum(shards.iter().map(|s| &s.latency)),
            uncorrected: all_of(shards, |s| &s.uncorrected),
            lateness: all_of(shards, |s| &s.lateness),
            connect: all_of(shards, |s| &s.connect_latency),
            seconds,
        }
    };
    let mut r = Report::empty(&cfg);
    // The window: from the first shard's start to the last one's end.
    let starts = shards.iter().filter_map(|s| s.started_unix);
    let ends = shards
        .iter()
        .filter_map(|s| s.started_unix.map(|t| t + s.duration));
    let window = match (starts.clone().reduce(f64::min), ends.reduce(f64::max)) {
        (Some(a), Some(b)) if b >= a => b - a,
        _ => shards.iter().map(|s| s.duration).fold(0.0, f64::max),
    };
    r.elapsed = Duration::try_from_secs_f64(window).unwrap_or_default();
    r.started_unix = starts.reduce(f64::min).unwrap_or(0.0);
    for s in shards {
        r.wanted += s.connections as usize + s.failed as usize;
        r.connections += s.connections as usize;
        r.held += s.held as usize;
        r.failed += s.failed as usize;
        r.lost += s.lost as usize;
        for (why, n) in &s.failures {
            *r.failures.entry(why.clone()).or_default() += n;
        }
        r.messages += s.messages;
        r.errors += s.errors;
        r.per_thread_messages
            .extend(s.per_thread_messages.iter().copied());
        r.writes += s.writes;
        r.reply_bytes += s.reply_bytes;
        r.churned += s.churned;
        r.connects += s.connects;
        if let Some(l) = s.datagrams_lost {
            r.datagrams_lost = Some(r.datagrams_lost.unwrap_or(0) + l);
        }
    }
    // --idle reports what was wanted: the whole test's connections.
    r.wanted = cfg.conns.max(r.wanted);
    r.latency_ns = hdr::to_ns(&hists.latency);
    if let Some(h) = &hists.uncorrected {
        r.latency_uncorrected_ns = hdr::to_ns(h);
    }
    r.send_lateness_ns = hists.lateness.as_ref().map(hdr::to_ns);
    if let Some(h) = &hists.connect {
        r.connect_latency_ns = hdr::to_ns(h);
    }
    r.timeline = timeline(shards, false).0;
    (r, hists)
}
