//! What a shard's `--json` adds so that `sockloop merge` can add shards
//! exactly (docs/protocol.md, "One test on many hosts"): the shard, the
//! agreed start, whole histograms (µs, HdrHistogram V2 deflate, base64;
//! [`crate::hdr`]) and the exact counts that the summary keys only show as
//! rates.

use serde_json::{Map, Value};

use super::Report;
use crate::hdr;

impl Report {
    /// The run as an HdrHistogram interval log (`--hlog`,
    /// [`crate::hdr::hlog`]): one interval per measured second.
    pub fn to_hlog(&self) -> Vec<u8> {
        let mut text = Vec::new();
        let seconds = self.timeline.iter().map(|s| &s.hist);
        // Writing to a Vec cannot fail.
        let _ = hdr::hlog::write(&mut text, self.started_unix, self.elapsed, seconds);
        text
    }

    /// Add the shard keys to `o` (the object `to_json` builds), whose
    /// `timeline` rows are this report's seconds, in order.
    pub(super) fn travel_keys(&self, o: &mut Map<String, Value>) {
        let c = &self.settings;
        if c.start_at.is_some() || c.shard.is_some() {
            o.insert("start_unix".into(), c.start_at.into());
        }
        let Some(shard) = c.shard else {
            return;
        };
        let encode = |h| Value::from(hdr::encode(&hdr::to_us(h)));
        o.insert("shard".into(), shard.to_string().into());
        o.insert("held".into(), self.held.into());
        if self.idle {
            return;
        }
        o.insert("histogram".into(), encode(&self.latency_ns));
        if let Some(late) = &self.send_lateness_ns {
            o.insert(
                "histogram_uncorrected".into(),
                encode(&self.latency_uncorrected_ns),
            );
            o.insert("histogram_send_lateness".into(), encode(late));
        }
        if self.churn.is_some() {
            o.insert("connects".into(), self.connects.into());
            o.insert("histogram_connect".into(), encode(&self.connect_latency_ns));
        }
        if let Some(Value::Array(rows)) = o.get_mut("timeline") {
            for (row, s) in rows.iter_mut().zip(&self.timeline) {
                row["histogram"] = encode(&s.hist);
            }
        }
    }
}
