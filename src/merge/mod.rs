//! `sockloop merge`: several `load --shard S/N --json` outputs made into
//! the one run they were split from — exactly.
//!
//! Percentiles cannot be averaged (the mean of four hosts' p99 is not the
//! p99 of the test), but HdrHistogram histograms can be added bucket by
//! bucket, so each shard sends its whole latency histogram
//! ([`crate::hdr`]) and the merged percentiles are the ones one giant host
//! would have reported.
//!
//! ```text
//!  FILE… / stdin ──read──▶ JSON objects ──shard──▶ Shard (figures, µs histograms)
//!        ──check──▶ one whole split, same settings, one start (else exit 2)
//!        ──combine──▶ load's Report (+ shards) ──▶ load's table or JSON
//! ```
//!
//! Files: `read.rs` (finding the objects, kubectl's noise skipped),
//! `shard.rs` (one object read), `check.rs` (refusals), `combine.rs`
//! (the adding).

mod check;
mod combine;
mod read;
mod shard;

use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde_json::Value;

use crate::hdr;
use crate::load::Report;

/// Why a merge could not be made.
#[derive(Debug)]
pub enum MergeError {
    /// The inputs are not one test's shards (exit 2).
    Usage(String),
    /// An input could not be read (exit 1).
    Runtime(String),
}

/// The merged run.
#[derive(Debug)]
pub struct Merged {
    /// The run as `load` reports it.
    pub report: Report,
    /// The merged latency histogram, µs (bit for bit the sum of the
    /// shards').
    pub histogram: Histogram<u64>,
    /// `--rate`: merged latency from the actual send and sends' lateness;
    /// `--churn`: merged connect latency (µs; when every shard sent them).
    pub uncorrected: Option<Histogram<u64>>,
    /// See `uncorrected`.
    pub lateness: Option<Histogram<u64>>,
    /// See `uncorrected`.
    pub connect: Option<Histogram<u64>>,
    /// Each second's merged latency histogram, µs, in the order of
    /// `report.timeline`.
    pub seconds: Vec<Histogram<u64>>,
    /// How many shards (`N`).
    pub shards: usize,
    /// The shards that failed on their own (`S/N (where read)`).
    pub failed_shards: Vec<String>,
    /// The settings every shard shared, as they wrote them.
    pub settings: Value,
    /// `--start-at` every shard shared (or null).
    pub start_unix: Value,
}

/// Merge the shards found in `inputs` (paths; `-` is stdin).
pub fn merge_inputs(inputs: &[String]) -> Result<Merged, MergeError> {
    let found = read::read_inputs(inputs)?;
    merge_values(found.into_iter().map(|f| (f.source, f.value)))
}

/// Merge shard objects, each with a name for messages.
pub fn merge_values(
    values: impl IntoIterator<Item = (String, Value)>,
) -> Result<Merged, MergeError> {
    let mut shards = Vec::new();
    for (source, v) in values {
        shards.push(shard::read(&source, &v)?);
    }
    check::check(&mut shards)?;
    let (report, h) = combine::report(&shards);
    Ok(Merged {
        report,
        histogram: h.latency,
        uncorrected: h.uncorrected,
        lateness: h.lateness,
        connect: h.connect,
        seconds: h.seconds,
        shards: shards.len(),
        failed_shards: shards
            .iter()
            .filter(|s| s.failed_run())
            .map(|s| format!("{} ({})", s.name(), s.source))
            .collect(),
        settings: shards[0].settings.clone(),
        start_unix: shards[0].start_unix.clone(),
    })
}

impl Merged {
    /// Whether `load` would exit 0 for this run: every shard succeeded.
    pub fn ok(&self) -> bool {
        self.failed_shards.is_empty() && self.report.ok()
    }

    /// What `sockloop merge` prints: [`Merged::to_json`] and a newline, or
    /// [`Merged::to_table`].
    pub fn output(&self, json: bool) -> String {
        if json {
            self.to_json() + "\n"
        } else {
            self.to_table()
        }
    }

    /// `load`'s table, and a line for the shards.
    pub fn to_table(&self) -> String {
        let mut s = self.report.to_table();
        let _ = write!(s, "shards       {} merged", self.shards);
        if !self.failed_shards.is_empty() {
            let _ = write!(s, "; failed: {}", self.failed_shards.join(", "));
        }
        s.push('\n');
        s
    }

    /// `load`'s JSON object, plus `shards`, `failed_shards`, the shards'
    /// own `settings` and `start_unix`, and the merged histograms (so a
    /// merge can itself be reported on, or merged no further).
    pub fn to_json(&self) -> String {
        let mut v: Value = match serde_json::from_str(&self.report.to_json()) {
            Ok(v) => v,
            Err(_) => return self.report.to_json(),
        };
        let Some(o) = v.as_object_mut() else {
            return self.report.to_json();
        };
        let mut put = |k: &str, x: Value| {
            o.insert(k.into(), x);
        };
        put("shards", self.shards.into());
        put("failed_shards", self.failed_shards.clone().into());
        put("settings", self.settings.clone());
        put("start_unix", self.start_unix.clone());
        if !self.report.idle {
            put("histogram", hdr::encode(&self.histogram).into());
        }
        for (key, h) in [
            ("histogram_uncorrected", &self.uncorrected),
            ("histogram_send_lateness", &self.lateness),
            ("histogram_connect", &self.connect),
        ] {
            if let Some(h) = h {
                put(key, hdr::encode(h).into());
            }
        }
        if let Some(Value::Array(rows)) = o.get_mut("timeline") {
            for (row, h) in rows.iter_mut().zip(&self.seconds) {
                row["histogram"] = hdr::encode(h).into();
            }
        }
        v.to_string()
    }
}
