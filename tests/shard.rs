//! `load --shard S/N`, `--start-at` and `--hlog` on loopback
//! (docs/protocol.md, "One test on many hosts"); many hosts:
//! tests/shard_netns.rs.

mod common;

use std::process::Output;

use serde_json::Value;
use sockloop::load::start::now_unix;
use sockloop::Options;

fn load(args: &[&str]) -> Output {
    common::bin().arg("load").args(args).output().unwrap()
}

fn json(out: &Output) -> Value {
    assert!(
        out.status.code() == Some(0),
        "load failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

#[test]
fn bad_shards_and_past_starts_are_usage_errors() {
    for args in [
        &["--shard", "4/4"][..],
        &["--shard", "1"],
        &["--shard", "0/0"],
        &["--start-at", "1000000000"],
        // More shards than connections leaves a shard with none.
        &["--conns", "2", "--shard", "2/3"],
    ] {
        let out = load(&[&["tcp://127.0.0.1:9"], args].concat());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.starts_with("error:"), "{args:?}: {err}");
    }
}

/// Connections keep their global numbers: with two targets, round-robin
/// sends global connection g to target g % 2, so shard 1 of 2 (connections
/// 1, 3, 5) talks to the second target only — as in the unsplit run.
#[test]
fn a_shard_runs_its_own_connections_by_their_global_numbers() {
    let a = common::serve(&["echo=tcp://127.0.0.1:0"], Options::default());
    let b = common::serve(&["echo=tcp://127.0.0.1:0"], Options::default());
    let (ta, tb) = (
        format!("tcp://{}", a.addrs[0]),
        format!("tcp://{}", b.addrs[0]),
    );
    let out = load(&[
        &ta,
        &tb,
        "--conns",
        "7",
        "--duration",
        "0.3",
        "--shard",
        "1/2",
        "--json",
    ]);
    let v = json(&out);
    assert_eq!(v["shard"], "1/2");
    assert_eq!(v["connections"], 3, "connections 1, 3, 5 of 7");
    assert_eq!(v["settings"]["conns"], 7, "settings are the whole test's");
    assert_eq!(v["start_unix"], Value::Null);
    assert_eq!(a.counters.snapshot().accepted, 0);
    assert_eq!(b.counters.snapshot().accepted, 3);
    // The histogram that travels holds every measured reply.
    let h = sockloop::hdr::decode(v["histogram"].as_str().unwrap()).unwrap();
    assert_eq!(h.len(), v["messages"].as_u64().unwrap());
}

/// A shard's share of --rate is ⌊(S+1)R/N⌋ − ⌊SR/N⌋: 1000 over 3 shards
/// gives shard 1 333 messages a second (the docs promise the rate within
/// 1 %; 5 % here, on a shared machine).
#[test]
fn a_shard_sends_its_share_of_the_rate() {
    let srv = common::serve(&["echo=tcp://127.0.0.1:0"], Options::default());
    let target = format!("tcp://{}", srv.addrs[0]);
    let v = json(&load(&[
        &target,
        "--conns",
        "9",
        "--rate",
        "1000",
        "--duration",
        "2",
        "--shard",
        "1/3",
        "--json",
    ]));
    let rate = v["messages_per_sec"].as_f64().unwrap();
    assert!((rate - 333.0).abs() < 333.0 * 0.05, "{rate} msg/s");
    assert_eq!(v["settings"]["rate"], 1000.0);
}

/// --start-at waits for that wall-clock second: never early, and not a
/// second late.
#[test]
fn start_at_starts_at_that_second() {
    let srv = common::serve(&["echo=tcp://127.0.0.1:0"], Options::default());
    let target = format!("tcp://{}", srv.addrs[0]);
    let at = (now_unix() + 1.5).ceil() as u64;
    let v = json(&load(&[
        &target,
        "--conns",
        "2",
        "--duration",
        "0.3",
        "--start-at",
        &at.to_string(),
        "--shard",
        "0/1",
        "--json",
    ]));
    assert_eq!(v["start_unix"], at);
    let started = v["started_unix"].as_f64().unwrap();
    assert!(
        started >= at as f64 && started < at as f64 + 1.0,
        "started at {started}, asked {at}"
    );
}
