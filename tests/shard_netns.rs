//! `load --shard` on separate hosts: N shard processes, each in a network
//! namespace of its own, against one server in another, all started with
//! one `--start-at`; their merge is checked against the server's own
//! counters and against the shards' raw histograms added by hand.

mod common;
mod netns;

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use netns::Net;
use serde_json::Value;
use sockloop::hdr;

/// The guard removes its namespaces even when the test using them panics.
#[test]
fn namespaces_are_removed_when_a_test_fails() {
    let mut names = Vec::new();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let net = Net::new(2);
        names = net.names().to_vec();
        for n in &names {
            assert!(Net::exists(n), "{n} was not made");
        }
        panic!("a failing test");
    }));
    assert!(caught.is_err());
    assert_eq!(names.len(), 4, "sw, srv, h0, h1: {names:?}");
    for n in &names {
        assert!(!Net::exists(n), "{n} left behind");
    }
}

/// `--stats` lines of a server's stderr, read on a thread of their own so
/// the test can wait for one with a deadline.
fn stats_lines(err: std::process::ChildStderr) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if line.starts_with("stats:") && tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// Four hosts, one server, one `--start-at`: every count the merge
/// reports is the server's, and the merged histogram is the shards' raw
/// histograms added.
#[test]
fn shards_on_four_hosts_merge_to_the_servers_counts() {
    run_split(4, 402, 2.0, None);
}

/// BENCHMARKS.md, "One test on many hosts": 4 namespace hosts × 4,500
/// connections against one server, next to one host with all 18,000, each
/// three times, alternating, at one paced rate (SOCKLOOP_SHARD_RATE
/// messages/s in all; unpaced, one load process is the bottleneck and the
/// comparison measures load, not the server). Run it alone, on an idle
/// machine (on a shared one, under a `flock` that other benchmarks take too):
/// `cargo test --release --test shard_netns -- --ignored --nocapture`.
#[test]
#[ignore = "a benchmark: minutes of load; run by hand on an idle machine"]
fn four_hosts_against_one_host_benchmark() {
    let secs: f64 = env_or("SOCKLOOP_SHARD_SECS", 20.0);
    let rate: Option<f64> = std::env::var("SOCKLOOP_SHARD_RATE")
        .ok()
        .and_then(|r| r.parse().ok());
    // The one host gets as many threads as the four hosts have processes:
    // on a shared machine the scheduler gives each its share, and the
    // comparison is of one host against four, not of CPU shares.
    let rounds = env_or("SOCKLOOP_SHARD_ROUNDS", 3);
    for round in 0..rounds {
        let one = run_split_threads(1, 18_000, secs, rate, 4);
        let four = run_split(4, 18_000, secs, rate);
        println!(
            "round {round}: p99 one host {} µs, four hosts merged {} µs",
            one["latency_us"]["p99"], four["latency_us"]["p99"]
        );
    }
}

/// One test of `conns` connections for `secs` seconds split over `hosts`
/// namespace hosts, checked against the server; the merged JSON.
fn run_split(hosts: usize, conns: usize, secs: f64, rate: Option<f64>) -> Value {
    run_split_threads(hosts, conns, secs, rate, 1)
}

/// [`run_split`] with `--threads threads` in each shard.
fn run_split_threads(
    hosts: usize,
    conns: usize,
    secs: f64,
    rate: Option<f64>,
    threads: usize,
) -> Value {
    let net = Net::new(hosts);
    let bin = env!("CARGO_BIN_EXE_sockloop");
    let mut srv = common::spawn_serve_with(
        net.command("srv", bin),
        &[
            "--listen",
            &format!("echo=tcp://{}:0", netns::SERVER),
            "--stats",
            "0.2",
        ],
    );
    let stats = stats_lines(srv.child.stderr.take().unwrap());
    let target = format!("tcp://{}", srv.addrs[0]);
    // One start second for all, far enough ahead for every host to be
    // waiting when it comes.
    let start_at = (sockloop::load::start::now_unix() + 2.0).ceil() as u64;
    let shards: Vec<_> = (0..hosts)
        .map(|k| {
            net.command(&format!("h{k}"), bin)
                .args(["load", &target, "--json"])
                .args(["--conns", &conns.to_string()])
                .args(["--duration", &secs.to_string()])
                .args(["--shard", &format!("{k}/{hosts}")])
                .args(["--start-at", &start_at.to_string()])
                .args(rate.map(|r| format!("--rate={r}")))
                .args(["--threads", &threads.to_string()])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn load")
        })
        .collect();
    let outputs: Vec<Value> = shards
        .into_iter()
        .enumerate()
        .map(|(k, c)| {
            let out = c.wait_with_output().unwrap();
            assert_eq!(
                out.status.code(),
                Some(0),
                "shard {k}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            serde_json::from_slice(&out.stdout).expect("shard JSON")
        })
        .collect();
    if std::env::var_os("SOCKLOOP_SHARD_DUMP").is_some() {
        for o in &outputs {
            let p99: Vec<_> = o["timeline"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    (
                        r["unix"].as_u64().unwrap() % 100,
                        r["p99_us"].as_f64().unwrap() as u64,
                    )
                })
                .collect();
            println!(
                "shard {} started {} p99 by second {p99:?}",
                o["shard"], o["started_unix"]
            );
        }
    }
    // Each shard: its own part, started at the agreed second.
    for (k, o) in outputs.iter().enumerate() {
        assert_eq!(o["shard"], format!("{k}/{hosts}"));
        assert_eq!(o["start_unix"], start_at);
        assert_eq!(o["settings"]["conns"], conns);
        assert_eq!(o["connections"], (conns - k).div_ceil(hosts), "shard {k}");
        let started = o["started_unix"].as_f64().unwrap();
        assert!(
            started >= start_at as f64,
            "shard {k} started early: {started}"
        );
    }
    // Merged as the recipe does: all outputs on one stdin.
    let mut merge = common::bin()
        .args(["merge", "-", "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = merge.stdin.take().unwrap();
    for o in &outputs {
        writeln!(stdin, "{o}").unwrap();
    }
    drop(stdin);
    let out = merge.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let merged: Value = serde_json::from_slice(&out.stdout).unwrap();
    // The server's own counters, once every connection is closed.
    let deadline = Instant::now() + Duration::from_secs(10);
    let last = loop {
        let line = stats
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("a --stats line with every connection closed");
        if common::stat(&line, "open") == 0 && common::stat(&line, "accepted") > 0 {
            break line;
        }
    };
    let sum = |key: &str| {
        outputs
            .iter()
            .map(|o| o[key].as_u64().unwrap())
            .sum::<u64>()
    };
    assert_eq!(common::stat(&last, "accepted"), conns as u64, "{last}");
    assert_eq!(merged["connections"], conns, "{last}");
    assert_eq!(merged["connections"].as_u64(), Some(sum("connections")));
    assert_eq!(merged["messages"].as_u64(), Some(sum("messages")));
    assert_eq!(merged["errors"], 0);
    assert_eq!(merged["shards"], hosts);
    // Every reply the shards counted was a message the server echoed.
    assert!(
        common::stat(&last, "bytes_out") >= sum("messages") * 64,
        "{last}"
    );
    // The merged histogram is the shards' raw histograms added.
    let mut by_hand = hdr::us_histogram();
    for o in &outputs {
        by_hand
            .add(hdr::decode(o["histogram"].as_str().unwrap()).unwrap())
            .unwrap();
    }
    let merged_hist = hdr::decode(merged["histogram"].as_str().unwrap()).unwrap();
    assert_eq!(merged_hist, by_hand);
    assert_eq!(merged_hist.len(), sum("messages"));
    println!(
        "{hosts} hosts x {} connections: {} msg/s, p50 {} p99 {} p99.9 {} µs",
        conns / hosts,
        merged["messages_per_sec"],
        merged["latency_us"]["p50"],
        merged["latency_us"]["p99"],
        merged["latency_us"]["p99_9"]
    );
    srv.signal("TERM");
    merged
}

/// A number from the environment, or `default`.
fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
