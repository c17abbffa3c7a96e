//! `sockloop merge`: shards added exactly, and refused when they are not
//! one whole test (docs/protocol.md, "Command line", merge).

mod common;

use std::io::Write;
use std::process::{Output, Stdio};

use hdrhistogram::Histogram;
use proptest::prelude::*;
use serde_json::{json, Value};
use sockloop::hdr;
use sockloop::merge::{merge_values, MergeError};

/// A histogram of ns latencies, as `load` records them.
fn ns_hist(values: &[u64]) -> Histogram<u64> {
    let mut h = Histogram::new_with_bounds(1, 60_000_000_000, 3).unwrap();
    for &v in values {
        h.record(v).unwrap();
    }
    h
}

fn settings() -> Value {
    json!({"targets": ["tcp://10.0.0.1:7000"], "conns": 8, "size": 64, "duration_s": 2.0,
           "pipeline": 1, "rate": null, "threads": 1, "churn": null, "idle": false,
           "request": null, "reply": null})
}

/// What `load --shard S/N --json` prints for a shard that measured
/// `latencies` (ns) in wall-clock seconds `unix`.
fn shard_json(s: usize, n: usize, latencies: &[(i64, u64)]) -> Value {
    let all: Vec<u64> = latencies.iter().map(|l| l.1).collect();
    let mut timeline = Vec::new();
    for unix in 1000..1003 {
        let these: Vec<u64> = latencies
            .iter()
            .filter(|l| l.0 == unix)
            .map(|l| l.1)
            .collect();
        timeline.push(
            json!({"unix": unix, "messages": these.len(), "errors": 0, "open": 2,
                             "histogram": hdr::encode(&hdr::to_us(&ns_hist(&these)))}),
        );
    }
    json!({"shard": format!("{s}/{n}"), "settings": settings(), "start_unix": 1000,
           "started_unix": 1000.0, "duration_sec": 3.0, "connections": 2, "messages": all.len(),
           "errors": 0, "failed": 0, "lost_connections": 0, "failures": {},
           "per_thread_messages": [all.len()], "writes": all.len(),
           "histogram": hdr::encode(&hdr::to_us(&ns_hist(&all))), "timeline": timeline})
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any split of the recorded latencies, merged, is the unsplit
    /// histogram bucket for bucket — in the merged histogram, in the
    /// `histogram` merge prints, and second by second.
    #[test]
    fn any_split_merges_to_the_unsplit_histogram(
        latencies in proptest::collection::vec((1000i64..1003, 1u64..60_000_000_000), 1..300),
        n in 1usize..7,
        owner in proptest::collection::vec(0usize..64, 300),
    ) {
        let mut parts = vec![Vec::new(); n];
        for (i, l) in latencies.iter().enumerate() {
            parts[owner[i] % n].push(*l);
        }
        let shards = parts.iter().enumerate().rev()
            .map(|(s, p)| (format!("shard{s}"), shard_json(s, n, p)));
        let merged = merge_values(shards).unwrap();
        let all: Vec<u64> = latencies.iter().map(|l| l.1).collect();
        let unsplit = hdr::to_us(&ns_hist(&all));
        prop_assert_eq!(&merged.histogram, &unsplit);
        // Bucket for bucket, spelled out (PartialEq aside).
        let counts = |h: &Histogram<u64>| h.iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value())).collect::<Vec<_>>();
        prop_assert_eq!(counts(&merged.histogram), counts(&unsplit));
        let printed: Value = serde_json::from_str(&merged.to_json()).unwrap();
        prop_assert_eq!(hdr::decode(printed["histogram"].as_str().unwrap()).unwrap(), unsplit);
        prop_assert_eq!(printed["messages"].as_u64(), Some(all.len() as u64));
        prop_assert_eq!(printed["shards"].as_u64(), Some(n as u64));
        // The timeline, second by second.
        prop_assert_eq!(merged.report.timeline[0].unix, 1000);
        for (i, sec) in merged.report.timeline.iter().enumerate() {
            let these: Vec<u64> = latencies.iter()
                .filter(|l| l.0 == 1000 + i as i64).map(|l| l.1).collect();
            prop_assert_eq!(sec.messages, these.len() as u64);
            prop_assert_eq!(&merged.seconds[i], &hdr::to_us(&ns_hist(&these)));
        }
    }
}

fn refused(shards: Vec<Value>) -> String {
    let named = shards
        .into_iter()
        .enumerate()
        .map(|(i, v)| (format!("input{i}"), v));
    match merge_values(named) {
        Err(MergeError::Usage(why)) => why,
        Err(MergeError::Runtime(why)) => panic!("runtime error, not usage: {why}"),
        Ok(_) => panic!("merged shards it should have refused"),
    }
}

#[test]
fn a_missing_shard_is_refused_by_name() {
    let why = refused(vec![shard_json(0, 3, &[]), shard_json(2, 3, &[])]);
    assert!(why.contains("shard 1/3 missing"), "{why}");
}

#[test]
fn a_repeated_shard_is_refused_naming_both_inputs() {
    let why = refused(vec![
        shard_json(0, 2, &[]),
        shard_json(1, 2, &[]),
        shard_json(1, 2, &[]),
    ]);
    assert!(
        why.contains("shard 1/2 appears twice: input1 and input2"),
        "{why}"
    );
}

#[test]
fn differing_settings_are_refused_naming_the_key() {
    let mut other = shard_json(1, 2, &[]);
    other["settings"]["conns"] = json!(9);
    let why = refused(vec![shard_json(0, 2, &[]), other]);
    assert!(
        why.contains("settings differ") && why.contains("conns: 8 vs 9"),
        "{why}"
    );
}

#[test]
fn shards_of_different_splits_or_starts_are_refused() {
    let why = refused(vec![shard_json(0, 2, &[]), shard_json(1, 3, &[])]);
    assert!(why.contains("different splits"), "{why}");
    let mut late = shard_json(1, 2, &[]);
    late["start_unix"] = json!(1001);
    let why = refused(vec![shard_json(0, 2, &[]), late]);
    assert!(why.contains("did not start together"), "{why}");
    let mut unsharded = shard_json(0, 1, &[]);
    unsharded.as_object_mut().unwrap().remove("shard");
    assert!(refused(vec![unsharded]).contains("no \"shard\""));
}

/// `sockloop merge` with `stdin` piped in.
fn merge_cli(args: &[&str], stdin: &str) -> Output {
    let mut child = common::bin()
        .arg("merge")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn stdin_as_kubectl_logs_gives_it_noise_and_all() {
    let a = shard_json(0, 2, &[(1000, 1_000_000), (1001, 3_000_000)]);
    let b = shard_json(1, 2, &[(1000, 2_000_000)]);
    let logs = format!("   1 s  open 2  3 msg/s\n{a}\nwarning: x\n[pod/load-1-x/load] {b}\n");
    let out = merge_cli(&["-", "--json"], &logs);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["messages"], 3);
    assert_eq!(v["shards"], 2);
    // The µs histogram says 3001 (3,000,000 ns is in its bucket 3000..=3001);
    // merge prints what it says, not a second rounding of it.
    assert_eq!(v["latency_us"]["max"].as_f64(), Some(3001.0));
    let table = merge_cli(&["-"], &logs);
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(table.contains("messages     3 in 3.00 s"), "{table}");
    assert!(table.contains("shards       2 merged"), "{table}");
}

#[test]
fn cli_exit_codes_say_refused_or_failed() {
    let out = merge_cli(&["-"], &format!("{}\n", shard_json(0, 2, &[])));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error:") && err.contains("1/2 missing"),
        "{err}"
    );
    // A shard that failed on its own fails the merge, named.
    let mut bad = shard_json(1, 2, &[(1000, 5_000)]);
    bad["errors"] = json!(3);
    let ok = shard_json(0, 2, &[(1000, 5_000)]);
    let out = merge_cli(&["-"], &format!("{ok}\n{bad}\n"));
    assert_eq!(out.status.code(), Some(1));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("failed: 1/2 (stdin line 2)"), "{table}");
    // Nothing that looks like a shard at all.
    let out = merge_cli(&["-"], "no json here\n");
    assert_eq!(out.status.code(), Some(2));
    // A file that is not there is a runtime error.
    let out = merge_cli(&["/nonexistent/shard.json"], "");
    assert_eq!(out.status.code(), Some(1));
}
