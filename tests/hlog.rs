//! The `.hlog` interval log read by another HdrHistogram implementation:
//! Python's `hdrhistogram` package (PyPI; `.ci/run` installs it). It must
//! find every interval and agree with us on p50, p99 and p99.9.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use hdrhistogram::Histogram;
use sockloop::hdr;

/// Reads the log with `hdrh.log.HistogramLogReader` and prints, per
/// interval then for all of them added, `count p50 p99 p99.9` in µs.
const READER: &str = r#"
import sys
from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader
reader = HistogramLogReader(sys.argv[1], HdrHistogram(1, 60000000, 3))
total = HdrHistogram(1, 60000000, 3)
while True:
    h = reader.get_next_interval_histogram()
    if h is None:
        break
    print("interval", h.get_start_time_stamp() / 1000.0, h.get_total_count(),
          *(h.get_value_at_percentile(p) for p in (50, 99, 99.9)))
    total.add(h)
print("total", total.get_total_count(), *(total.get_value_at_percentile(p) for p in (50, 99, 99.9)))
"#;

/// The lines the Python reader prints for the log at `path`.
fn python_reads(path: &Path) -> Vec<Vec<f64>> {
    let probe = Command::new("python3")
        .args(["-c", "import hdrh.log"])
        .output();
    match probe {
        Ok(o) if o.status.success() => {}
        other => panic!(
            "this test needs python3 with the PyPI package `hdrhistogram` (module hdrh): `pip install hdrhistogram` (.ci/run does it); probe: {other:?}"
        ),
    }
    let out = Command::new("python3")
        .args(["-c", READER])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "python reader failed: {out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            l.split_whitespace()
                .skip(1)
                .map(|x| x.parse().unwrap())
                .collect()
        })
        .collect()
}

/// Whether `theirs` is our value at `q`, or at the rank next to it (the
/// libraries round a quantile's rank differently: Java and Python to the
/// nearest, Rust up).
fn agrees(h: &Histogram<u64>, q: f64, theirs: f64) -> bool {
    let step = 1.0 / h.len() as f64;
    [q - step, q, q + step]
        .iter()
        .any(|&q| h.value_at_quantile(q.clamp(0.0, 1.0)) as f64 == theirs)
}

fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("sockloop-{}-{name}", std::process::id()))
}

/// Check a log of the given ns seconds against what Python reads.
fn check(seconds: &[Histogram<u64>], path: &Path, start_unix: f64) {
    let lines = python_reads(path);
    assert_eq!(lines.len(), seconds.len() + 1, "{lines:?}");
    let mut total = hdr::us_histogram();
    for (i, (ns, line)) in seconds.iter().zip(&lines).enumerate() {
        let us = hdr::to_us(ns);
        assert_eq!(line[0], start_unix + i as f64, "interval {i}'s start");
        assert_eq!(line[1], us.len() as f64, "interval {i}'s count");
        total.add(&us).unwrap();
    }
    let last = lines.last().unwrap();
    assert_eq!(last[0], total.len() as f64);
    for (q, theirs) in [0.5, 0.99, 0.999].into_iter().zip(&last[1..]) {
        assert!(
            agrees(&total, q, *theirs),
            "p{}: python {theirs}, rust {}",
            q * 100.0,
            total.value_at_quantile(q)
        );
    }
}

#[test]
fn python_hdrhistogram_reads_the_log_and_agrees() {
    // Three seconds of a skewed distribution, 1 µs to 2 s, as load records
    // it (ns).
    let mut seconds = Vec::new();
    let mut x: u64 = 12345;
    for s in 0..3 {
        let mut h = Histogram::new_with_bounds(1, 60_000_000_000, 3).unwrap();
        for _ in 0..20_000 + s * 5000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = (x >> 11) as f64 / (1u64 << 53) as f64;
            // Mostly ~100 µs, a tail to seconds.
            let v = 100_000.0 / (1.0 - u).powf(0.9);
            h.record((v as u64).min(2_000_000_000)).unwrap();
        }
        seconds.push(h);
    }
    let path = temp_path("lib.hlog");
    let start = 1_764_504_000.0;
    let elapsed = std::time::Duration::from_secs(3);
    let mut file = std::fs::File::create(&path).unwrap();
    hdr::hlog::write(&mut file, start, elapsed, &seconds).unwrap();
    check(&seconds, &path, start);
    let _ = std::fs::remove_file(&path);
}

/// `load --hlog`: one interval per measured second, read by Python and by
/// the Rust crate alike, holding every measured reply.
#[test]
fn load_writes_an_hlog_python_reads() {
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
    let srv = common::serve(&["echo=tcp://127.0.0.1:0"], sockloop::Options::default());
    let path = temp_path("load.hlog");
    let out = common::bin()
        .args(["load", &format!("tcp://{}", srv.addrs[0])])
        .args([
            "--conns",
            "4",
            "--duration",
            "2.5",
            "--shard",
            "0/1",
            "--json",
        ])
        .arg("--hlog")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let text = std::fs::read(&path).unwrap();
    let mut ours = hdr::us_histogram();
    let mut intervals = 0;
    let mut base = None;
    for e in IntervalLogIterator::new(&text) {
        match e.expect("the crate reads every line") {
            LogEntry::BaseTime(t) => base = Some(t.as_secs_f64()),
            LogEntry::Interval(i) => {
                intervals += 1;
                ours.add(hdr::decode(i.encoded_histogram()).unwrap())
                    .unwrap();
            }
            LogEntry::StartTime(_) => {}
        }
    }
    let timeline = v["timeline"].as_array().unwrap();
    assert_eq!(intervals, timeline.len());
    assert_eq!(ours.len(), v["messages"].as_u64().unwrap());
    let started = v["started_unix"].as_f64().unwrap();
    assert!(
        (base.unwrap() - started).abs() < 0.001,
        "BaseTime is the start"
    );
    let lines = python_reads(&path);
    assert_eq!(lines.len(), intervals + 1);
    let last = lines.last().unwrap();
    assert_eq!(last[0], ours.len() as f64);
    for (q, theirs) in [0.5, 0.99, 0.999].into_iter().zip(&last[1..]) {
        assert!(
            agrees(&ours, q, *theirs),
            "p{}: python {theirs}, rust {}",
            q * 100.0,
            ours.value_at_quantile(q)
        );
    }
    let _ = std::fs::remove_file(&path);
}
