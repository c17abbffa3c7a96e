//! One shard's `load --json` object, read into what merging needs.
//!
//! Keys other than the ones below are ignored, so a newer `load` that adds
//! keys can still be merged; a key that merging needs and does not find is
//! an error naming the input and the key.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde_json::Value;

use super::MergeError;
use crate::hdr;

/// One second of a shard's timeline.
pub(crate) struct ShardSecond {
    pub unix: i64,
    pub messages: u64,
    pub errors: u64,
    pub open: u64,
    pub connects: u64,
    /// Its latencies, µs, when the shard sent them (`histogram` in each
    /// timeline entry).
    pub hist: Option<Histogram<u64>>,
}

/// What one shard measured.
pub(crate) struct Shard {
    /// Where it was read (for messages).
    pub source: String,
    /// `S` of `S/N`.
    pub index: usize,
    /// `N` of `S/N`.
    pub of: usize,
    pub settings: Value,
    /// `--start-at`, or null.
    pub start_unix: Value,
    /// Wall-clock start and length of the measured window.
    pub started_unix: Option<f64>,
    pub duration: f64,
    pub idle: bool,
    pub connections: u64,
    pub held: u64,
    /// Could not connect (`failed` less `lost_connections`).
    pub failed: u64,
    pub lost: u64,
    pub messages: u64,
    pub errors: u64,
    pub writes: u64,
    /// Bytes read from the targets (0 from a `load` that did not say).
    pub reply_bytes: u64,
    pub churned: u64,
    pub connects: u64,
    pub datagrams_lost: Option<u64>,
    pub failures: BTreeMap<String, u64>,
    pub per_thread_messages: Vec<u64>,
    /// The run's latencies, µs (empty for `--idle`).
    pub latency: Histogram<u64>,
    /// Connect latencies (`--churn`), latencies from the actual send and
    /// the sends' lateness (`--rate`), µs, when the shard sent them.
    pub connect_latency: Option<Histogram<u64>>,
    pub uncorrected: Option<Histogram<u64>>,
    pub lateness: Option<Histogram<u64>>,
    pub timeline: Vec<ShardSecond>,
}

impl Shard {
    /// Whether this shard, on its own, would have made `load` exit 1.
    pub(super) fn failed_run(&self) -> bool {
        if self.idle {
            self.held < self.connections + self.failed
        } else {
            self.errors > 0 || self.failed > 0 || self.lost > 0 || self.messages == 0
        }
    }

    /// `S/N`.
    pub(super) fn name(&self) -> String {
        format!("{}/{}", self.index, self.of)
    }
}

fn count(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

/// `S/N` with 0 ≤ S < N.
pub(crate) fn parse_shard(s: &str) -> Option<(usize, usize)> {
    let (a, b) = s.split_once('/')?;
    let (s, n) = (
        a.trim().parse::<usize>().ok()?,
        b.trim().parse::<usize>().ok()?,
    );
    (s < n).then_some((s, n))
}

/// Read one shard's object.
pub(crate) fn read(source: &str, v: &Value) -> Result<Shard, MergeError> {
    let bad = |why: String| MergeError::Usage(format!("{source}: {why}"));
    let shard = v.get("shard").ok_or_else(|| {
        bad("no \"shard\" key: not the output of `load --shard S/N --json`".into())
    })?;
    let (index, of) = shard
        .as_str()
        .and_then(parse_shard)
        .ok_or_else(|| bad(format!("\"shard\" is {shard}, not \"S/N\" with 0 ≤ S < N")))?;
    let settings = v
        .get("settings")
        .filter(|s| s.is_object())
        .cloned()
        .ok_or_else(|| bad("no \"settings\" object".into()))?;
    let idle = settings.get("idle").and_then(Value::as_bool) == Some(true);
    let decode = |key: &str, text: &Value| {
        text.as_str()
            .ok_or_else(|| format!("\"{key}\" is not a string"))
            .and_then(hdr::decode)
            .map_err(|e| bad(format!("\"{key}\": {e}")))
    };
    let latency = match v.get("histogram") {
        Some(text) => decode("histogram", text)?,
        None if idle => hdr::us_histogram(),
        None => return Err(bad("no \"histogram\" (load --shard writes it)".into())),
    };
    let optional = |key: &str| match v.get(key) {
        Some(text) => decode(key, text).map(Some),
        None => Ok(None),
    };
    let connect_latency = optional("histogram_connect")?;
    let uncorrected = optional("histogram_uncorrected")?;
    let lateness = optional("histogram_send_lateness")?;
    let mut timeline = Vec::new();
    for (i, s) in v
        .get("timeline")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let unix = s
            .get("unix")
            .and_then(Value::as_i64)
            .ok_or_else(|| bad(format!("timeline entry {} has no \"unix\" second", i + 1)))?;
        let hist = match s.get("histogram") {
            Some(text) => Some(decode("timeline histogram", text)?),
            None => None,
        };
        timeline.push(ShardSecond {
            unix,
            messages: count(s, "messages"),
            errors: count(s, "errors"),
            open: count(s, "open"),
            connects: count(s, "connects"),
            hist,
        });
    }
    let failures = v
        .get("failures")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(why, n)| (why.clone(), n.as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default();
    let lost = count(v, "lost_connections");
    let duration = v.get("duration_sec").and_then(Value::as_f64).unwrap_or(0.0);
    let (connections, held) = if idle {
        // --idle reports the connections wanted as `connections`; what it
        // opened and kept is `held`.
        let held = count(v, "held");
        (
            count(v, "connections") - count(v, "failed").min(count(v, "connections")),
            held,
        )
    } else {
        (count(v, "connections"), count(v, "held"))
    };
    Ok(Shard {
        source: source.to_string(),
        index,
        of,
        start_unix: v.get("start_unix").cloned().unwrap_or(Value::Null),
        started_unix: v.get("started_unix").and_then(Value::as_f64),
        duration,
        idle,
        connections,
        held,
        failed: count(v, "failed").saturating_sub(if idle { 0 } else { lost }),
        lost: if idle { 0 } else { lost },
        messages: count(v, "messages"),
        errors: count(v, "errors"),
        writes: count(v, "writes"),
        reply_bytes: count(v, "reply_bytes"),
        churned: count(v, "churned"),
        connects: match v.get("connects").and_then(Value::as_u64) {
            Some(n) => n,
            None => v
                .get("connects_per_sec")
                .and_then(Value::as_f64)
                .map_or(0, |r| (r * duration).round() as u64),
        },
        datagrams_lost: v.get("lost").and_then(Value::as_u64),
        failures,
        per_thread_messages: v
            .get("per_thread_messages")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default(),
        latency,
        connect_latency,
        uncorrected,
        lateness,
        timeline,
        settings,
    })
}
