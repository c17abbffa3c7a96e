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
    /// How many shards (`N`).
    pub shards: usize,
    /// The shards that failed on their own (`S/N` and where read).
    pub failed_shards: Vec<String>,
    /// The settings every shard shared.
    pub settings: Value,
    /// `--start-at` every shard shared (or null).
    pub start_unix: Value,
    /// The wall-clock second the merged timeline starts at.
    pub first_second: Option<i64>,
    /// Each second's merged latency histogram, µs (exact when every shard
    /// sent its seconds' histograms; empty where none did).
    pub seconds: Vec<Histogram<u64>>,
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
    let histogram = combine::latency(&shards);
    let (report, first_second, seconds) = combine::report(&shards, &histogram);
    Ok(Merged {
        report,
        histogram,
        shards: shards.len(),
        failed_shards: shards
            .iter()
            .filter(|s| s.failed_run())
            .map(|s| format!("{} ({})", s.name(), s.source))
            .collect(),
        settings: shards[0].settings.clone(),
        start_unix: shards[0].start_unix.clone(),
        first_second,
        seconds,
    })
}

impl Merged {
    /// Whether `load` would exit 0 for this run: every shard succeeded.
    pub fn ok(&self) -> bool {
        self.failed_shards.is_empty() && self.report.ok()
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

    /// `load`'s JSON object, plus `shards`, `failed_shards`, `settings`,
    /// `start_unix` and the merged `histogram` (so a merge can itself be
    /// reported on).
    pub fn to_json(&self) -> String {
        let mut s = self.report.to_json();
        // `to_json` is one object: open it again at its closing brace.
        s.pop();
        let _ = write!(
            s,
            ",\"shards\":{},\"failed_shards\":{},\"settings\":{},\"start_unix\":{},\"histogram\":\"{}\"}}",
            self.shards,
            Value::from(self.failed_shards.clone()),
            self.settings,
            self.start_unix,
            hdr::encode(&self.histogram)
        );
        s
    }
}
