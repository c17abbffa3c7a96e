//! `load --json`'s timeline and settings (the keys `report` and `merge`
//! read), and the one moment both transports measure from: when the ramp
//! is over.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::*;
use sockloop::Options;

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// The timeline's rows: numbered from 1, a wall-clock second each from
/// the start, and together exactly the run's messages.
fn check_timeline(v: &serde_json::Value, open: u64) {
    let rows = v["timeline"].as_array().expect("timeline");
    assert!(!rows.is_empty(), "{v}");
    let started = v["started_unix"].as_f64().unwrap();
    let mut sum = 0;
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r["second"], i as u64 + 1, "{r}");
        assert_eq!(
            r["unix"].as_u64().unwrap(),
            started as u64 + i as u64,
            "{r}"
        );
        assert_eq!(r["open"], open, "{r}");
        assert_eq!(r["errors"], 0, "{r}");
        let p50 = r["p50_us"].as_f64().unwrap();
        let p99 = r["p99_us"].as_f64().unwrap();
        assert!(p50 > 0.0 && p50 <= p99, "{r}");
        sum += r["messages"].as_u64().unwrap();
    }
    assert_eq!(sum, v["messages"].as_u64().unwrap(), "{v}");
}

#[test]
fn json_has_the_timeline_and_the_settings() {
    let srv = serve(&["echo=tcp://127.0.0.1:0"], Options::default());
    let ep = format!("tcp://{}", srv.addrs[0]);
    let out = load(&[
        &ep,
        "--conns",
        "3",
        "--duration",
        "1.5",
        "--pipeline",
        "2",
        "--json",
    ]);
    let v = json(&out);
    assert_eq!(out.status.code(), Some(0), "{v}");
    check_timeline(&v, 3);
    assert_eq!(
        v["timeline"].as_array().unwrap().len(),
        2,
        "1.5 s: two rows"
    );
    let s = &v["settings"];
    assert_eq!(s["targets"], serde_json::json!([ep]));
    assert_eq!(s["conns"], 3);
    assert_eq!(s["size"], 64);
    assert_eq!(s["duration_s"], 1.5);
    assert_eq!(s["pipeline"], 2);
    assert_eq!(s["threads"], 1);
    assert!(s["rate"].is_null() && s["churn"].is_null(), "{s}");
    assert_eq!(s["idle"], false);
    assert!(s["request"].is_null() && s["reply"].is_null(), "{s}");
}

#[test]
fn tcp_measures_from_the_end_of_the_ramp() {
    let srv = serve(&["echo=tcp://127.0.0.1:0"], Options::default());
    let ep = format!("tcp://{}", srv.addrs[0]);
    // 4 connections at 4 a second: the ramp takes 0.75 s.
    let before = unix_now();
    let out = load(&[
        &ep,
        "--conns",
        "4",
        "--connect-rate",
        "4",
        "--duration",
        "1",
        "--json",
    ]);
    let v = json(&out);
    assert_eq!(out.status.code(), Some(0), "{v}");
    let started = v["started_unix"].as_f64().unwrap();
    assert!(
        started - before >= 0.7,
        "measuring began {:.3} s in",
        started - before
    );
    let window = v["duration_sec"].as_f64().unwrap();
    assert!((0.95..1.3).contains(&window), "{window}");
    check_timeline(&v, 4);
}

#[test]
fn udp_measures_from_its_first_send_with_the_same_timeline() {
    let srv = serve(&["echo=udp://127.0.0.1:0"], Options::default());
    let ep = format!("udp://{}", srv.addrs[0]);
    let before = unix_now();
    let out = load(&[&ep, "--conns", "2", "--duration", "1.2", "--json"]);
    let v = json(&out);
    assert_eq!(out.status.code(), Some(0), "{v}");
    let started = v["started_unix"].as_f64().unwrap();
    assert!(
        started - before < 0.5,
        "UDP has no ramp: {:.3} s",
        started - before
    );
    check_timeline(&v, 2);
    assert_eq!(v["settings"]["targets"], serde_json::json!([ep]));
}

/// udp:// opens sockets, not connections: the table and both progress
/// lines (one loop, several threads) say so; `--json` keeps the SPEC's
/// `connections` key.
#[test]
fn udp_table_and_progress_say_sockets() {
    let srv = serve(&["echo=udp://127.0.0.1:0"], Options::default());
    let ep = format!("udp://{}", srv.addrs[0]);
    for threads in ["1", "2"] {
        let args = [&ep[..], "--conns", "2", "--duration", "1.3"];
        let out = load(&[&args[..], &["--threads", threads]].concat());
        let (table, err) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert_eq!(out.status.code(), Some(0), "{table}{err}");
        assert!(table.starts_with("sockets      2 of 2 opened"), "{table}");
        assert!(!table.contains("connection"), "{table}");
        let lines: Vec<_> = err.lines().filter(|l| l.starts_with("load:")).collect();
        assert!(!lines.is_empty(), "a progress line a second: {err}");
        for l in lines {
            assert!(l.contains("sockets") && !l.contains("connection"), "{l}");
        }
    }
    let v = json(&load(&[&ep, "--conns", "2", "--duration", "0.5", "--json"]));
    assert_eq!(v["connections"], 2, "{v}");
}
