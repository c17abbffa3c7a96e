//! `sockloop report` and `load --html` as a user runs them: labels, usage
//! errors, unreadable files, what the page holds and how big it gets. The
//! page in a real browser: `report_browser.rs`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use common::*;
use hdrhistogram::serialization::{Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use sockloop::Options;

/// A fresh directory for one test's files.
fn dir(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("report-{name}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn run(args: &[&str]) -> Output {
    bin().args(args).stdin(Stdio::null()).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn write_json(d: &Path, name: &str, v: &Value) -> String {
    let p = d.join(name);
    std::fs::write(&p, v.to_string()).unwrap();
    p.to_str().unwrap().to_string()
}

/// Standard base64 with padding (the `histogram` key).
fn b64(b: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in b.chunks(3) {
        let n = c.iter().fold(0u32, |a, &x| (a << 8) | x as u32) << (8 * (3 - c.len()));
        for k in 0..4 {
            s.push(if k <= c.len() {
                A[(n >> (18 - 6 * k) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    s
}

/// A 60-second `--rate --churn` run as `load --json` writes it, with a
/// latency histogram of a million wide-spread values and every timeline key.
pub fn sixty_second_run(scale: f64) -> Value {
    let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    let mut x: u64 = 12345;
    for _ in 0..1_000_000 {
        // xorshift: a long tail from 1 µs to ~1 s, every bucket range touched.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let v = 1 + (x % 1000) * (1 + (x >> 40) % 1000) / 1000 * (1 + (x >> 20) % 1000);
        h.record((v as f64 * scale) as u64 + 1).unwrap();
    }
    let mut bytes = Vec::new();
    V2DeflateSerializer::new()
        .serialize(&h, &mut bytes)
        .unwrap();
    let five = |h: &Histogram<u64>| {
        json!({"p50": h.value_at_quantile(0.5), "p90": h.value_at_quantile(0.9),
               "p99": h.value_at_quantile(0.99), "p99_9": h.value_at_quantile(0.999), "max": h.max()})
    };
    let timeline: Vec<Value> = (1..=60)
        .map(|s| {
            json!({"second": s, "unix": 1_796_040_000 + s, "messages": 50_000 + 37 * s,
                   "p50_us": 100.5 * scale, "p99_us": (300 + s) as f64 * scale, "errors": s % 7 / 6,
                   "open": 1000, "lateness_p99_us": 20.25, "connects": 5000 - s})
        })
        .collect();
    json!({
        "connections": 1000, "messages": 3_000_000, "duration_sec": 60.0,
        "messages_per_sec": 50_000.0, "mb_per_sec": 3.2, "errors": 8, "failed": 0,
        "latency_us": five(&h), "latency_uncorrected_us": five(&h),
        "send_lateness_us": {"p50": 3.0, "p99": 20.0, "max": 900.0},
        "connects_per_sec": 4970.0, "connect_latency_us": {"p50": 30.0, "p90": 40.0, "p99": 80.0, "p99_9": 200.0, "max": 900.0},
        "histogram": b64(&bytes), "started_unix": 1_796_040_000.25, "timeline": timeline,
        "settings": {"targets": ["tcp://127.0.0.1:7000"], "conns": 1000, "size": 64, "duration_s": 60.0,
                     "pipeline": 1, "rate": 50000.0, "threads": 1, "churn": 10, "idle": false,
                     "request": null, "reply": null},
    })
}

#[test]
fn labels_default_to_file_stems_and_can_be_given_one_per_file() {
    let d = dir("labels");
    let a = write_json(
        &d,
        "sockloop.json",
        &json!({"connections": 1, "latency_us": {"p50": 5.0}}),
    );
    let b = write_json(
        &d,
        "tokio.v2.json",
        &json!({"connections": 1, "latency_us": {"p50": 6.0}}),
    );
    let out = d.join("out.html");
    let o = run(&["report", &a, &b, "--html", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let page = std::fs::read_to_string(&out).unwrap();
    assert!(page.contains(">sockloop</text>") && page.contains(">tokio.v2</text>"));
    let o = run(&[
        "report",
        &a,
        &b,
        "--label",
        "one",
        "--label",
        "<two>",
        "--html",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let page = std::fs::read_to_string(&out).unwrap();
    assert!(page.contains(">one</text>") && page.contains(">&lt;two&gt;</text>"));
    assert!(!page.contains(">sockloop</text>"));
}

#[test]
fn a_label_count_that_does_not_match_the_files_is_a_usage_error() {
    let d = dir("count");
    let a = write_json(&d, "a.json", &json!({"connections": 1}));
    let out = d.join("out.html");
    let o = run(&[
        "report",
        &a,
        &a,
        "--label",
        "x",
        "--html",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).starts_with("error:"), "{}", stderr(&o));
    assert!(stderr(&o).contains("--label"), "{}", stderr(&o));
    assert!(!out.exists(), "nothing written on a usage error");
    let o = run(&["report", &a]);
    assert_eq!(o.status.code(), Some(2), "--html is required");
}

#[test]
fn an_unreadable_or_foreign_file_is_exit_1_naming_it() {
    let d = dir("bad");
    let out = d.join("out.html");
    let missing = d.join("missing.json");
    let notjson = d.join("notjson.json");
    std::fs::write(&notjson, "connections 5\n").unwrap();
    let foreign = write_json(&d, "foreign.json", &json!({"hello": "world"}));
    for f in [
        missing.to_str().unwrap(),
        notjson.to_str().unwrap(),
        &foreign,
    ] {
        let o = run(&["report", f, "--html", out.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1), "{f}");
        let e = stderr(&o);
        assert!(e.starts_with("error: ") && e.lines().count() == 1, "{e}");
        assert!(e.contains(f), "names the file: {e}");
    }
    assert!(!out.exists());
}

#[test]
fn a_sixty_second_run_makes_a_page_under_200_kb_with_every_chart() {
    let d = dir("sixty");
    let f = write_json(&d, "sixty.json", &sixty_second_run(1.0));
    let out = d.join("sixty.html");
    let o = run(&["report", &f, "--html", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let page = std::fs::read_to_string(&out).unwrap();
    assert!(page.len() < 200_000, "{} bytes", page.len());
    for title in [
        "Latency by percentile",
        "Messages per second",
        "Latency second by second: p50 and p99",
        "Errors per second",
        "Open connections",
        "Send lateness second by second (p99, --rate)",
        "Send lateness by percentile (--rate)",
        "Connects per second (--churn)",
        "Connect latency by percentile (--churn)",
    ] {
        assert_eq!(
            page.matches(&format!(">{title}</text>")).count(),
            1,
            "{title}"
        );
    }
    // The curve comes from the histogram (many points), not the four keys.
    assert!(!page.contains("has no `histogram`"));
    for row in [
        "started (UTC)</th><td>2026-11-30 12:00:00",
        "churn</th><td>10",
        "rate</th><td>50,000",
    ] {
        assert!(page.contains(row), "{row}");
    }
    // Self-contained: nothing to fetch, nothing to run.
    for bad in ["<script", "src=", "<link", "url(", "@import", "href=\"http"] {
        assert!(!page.contains(bad), "{bad}");
    }
}

#[test]
fn load_html_writes_the_report_of_the_run_just_made() {
    let srv = serve(&["echo=tcp://127.0.0.1:0"], Options::default());
    let ep = format!("tcp://{}", srv.addrs[0]);
    let d = dir("load");
    let out = d.join("run.html");
    let o = run(&[
        "load",
        &ep,
        "--conns",
        "2",
        "--duration",
        "1.2",
        "--json",
        "--html",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let page = std::fs::read_to_string(&out).unwrap();
    assert!(page.contains(">Latency by percentile</text>"));
    assert!(
        !page.contains("has no `histogram`"),
        "the curve is the run's whole histogram"
    );
    assert!(
        page.contains(&format!(">{ep}</text>")),
        "the run is labelled by its target"
    );
    let p50 = format!(
        "<th scope=\"row\">latency p50, µs</th><td>{:.1}</td>",
        v["latency_us"]["p50"].as_f64().unwrap()
    );
    assert!(
        page.contains(&p50),
        "the table has the run's own figures: {p50}"
    );
    // The run's own second-by-second data (the `timeline` key) is charted.
    assert!(
        v["timeline"].as_array().is_some_and(|t| !t.is_empty()),
        "load --json has a timeline"
    );
    assert!(page.contains(">Messages per second</text>"));
    let o = run(&[
        "load",
        &ep,
        "--conns",
        "1",
        "--duration",
        "0.2",
        "--html",
        "/nonexistent/dir/x.html",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("/nonexistent/dir/x.html"),
        "{}",
        stderr(&o)
    );
}
