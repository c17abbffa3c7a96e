//! `--hlog FILE`: the run as an HdrHistogram interval log, one interval a
//! second, values in µs — the format of HdrHistogram's
//! `HistogramLogWriter` (log format 1.3), which `HistogramLogReader` in
//! Java, `hdrh.log.HistogramLogReader` in Python, the C library and the
//! Rust crate's `interval_log` read.
//!
//! ```text
//!  #[Histogram log format version 1.3]
//!  #[StartTime: 1764504000.000 (seconds since epoch)]
//!  #[BaseTime: 1764504000.000 (seconds since epoch)]
//!  "StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"
//!  0.000,1.000,812.000,HISTFAAAA…      ← second 1: start (s since BaseTime), length, max µs, histogram
//!  1.000,1.000,790.000,HISTFAAAA…
//! ```
//!
//! Timestamps are relative to `BaseTime`, the wall-clock start of the
//! measurement, so logs of shards started with one `--start-at` line up.

use std::io::{self, Write};
use std::time::{Duration, UNIX_EPOCH};

use hdrhistogram::serialization::interval_log::IntervalLogWriterBuilder;
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::Histogram;

/// Write the interval log of a run whose measurement began at `start_unix`
/// (seconds since the epoch) and lasted `elapsed`: one interval per entry
/// of `seconds`, each a histogram of ns (converted to µs here, as
/// [`super::to_us`]); the last, partial second is as long as it was.
pub fn write<'h, W: Write>(
    out: &mut W,
    start_unix: f64,
    elapsed: Duration,
    seconds: impl IntoIterator<Item = &'h Histogram<u64>>,
) -> io::Result<()> {
    let start = UNIX_EPOCH + Duration::try_from_secs_f64(start_unix).unwrap_or_default();
    writeln!(out, "#[Histogram log format version 1.3]")?;
    writeln!(out, "#[Written by sockloop load; values in microseconds]")?;
    let mut serializer = V2DeflateSerializer::new();
    // The crate's builder writes the StartTime and BaseTime headers; the
    // legend follows them, where Java's writer puts it, and every reader
    // skips it.
    IntervalLogWriterBuilder::new()
        .with_start_time(start)
        .with_base_time(start)
        .begin_log_with(out, &mut serializer)?;
    writeln!(
        out,
        "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\""
    )?;
    let mut log = IntervalLogWriterBuilder::new().begin_log_with(out, &mut serializer)?;
    for (i, ns) in seconds.into_iter().enumerate() {
        let from = Duration::from_secs(i as u64);
        let length = elapsed.saturating_sub(from).min(Duration::from_secs(1));
        log.write_histogram(&super::to_us(ns), from, length, None)
            .map_err(|e| io::Error::other(e.to_string()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};

    use super::*;

    /// The crate's own reader finds every interval, in order, with the
    /// headers' times and the µs values.
    #[test]
    fn the_crates_reader_reads_it_back() {
        let mut seconds = Vec::new();
        for s in 0..3u64 {
            let mut h = Histogram::new_with_bounds(1, 60_000_000_000, 3).unwrap();
            h.record_n(1_000_000 * (s + 1), 10).unwrap();
            seconds.push(h);
        }
        let mut text = Vec::new();
        write(
            &mut text,
            1_764_504_000.0,
            Duration::from_secs_f64(2.5),
            &seconds,
        )
        .unwrap();
        let mut intervals = Vec::new();
        let mut base = None;
        for e in IntervalLogIterator::new(&text) {
            match e.unwrap() {
                LogEntry::BaseTime(t) => base = Some(t),
                LogEntry::Interval(i) => intervals.push(i),
                LogEntry::StartTime(_) => {}
            }
        }
        assert_eq!(base, Some(Duration::from_secs(1_764_504_000)));
        assert_eq!(intervals.len(), 3);
        for (s, i) in intervals.iter().enumerate() {
            assert_eq!(i.start_timestamp(), Duration::from_secs(s as u64));
            let length = if s < 2 { 1.0 } else { 0.5 };
            assert_eq!(i.duration(), Duration::from_secs_f64(length));
            let h = super::super::decode(i.encoded_histogram()).unwrap();
            assert_eq!(h.len(), 10);
            // 1 ms × (s + 1) in µs, to HDR's 3 digits.
            assert!(h.max().abs_diff(1000 * (s as u64 + 1)) <= 2, "{}", h.max());
        }
    }
}
