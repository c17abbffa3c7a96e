//! `sockloop merge` of real shards' outputs for the modes with counts of
//! their own: `--idle` (connections held), `--churn` (replacements, the
//! connect histogram) and `--rate` (the send-lateness histogram). Two
//! `load --shard S/2` processes run at once against one server; the merge
//! must add up what they measured, and the server must agree.

mod common;

use std::process::Stdio;

use serde_json::Value;
use sockloop::Options;

/// Run shards 0/2 and 1/2 of `load TARGET ARGS --json` at once; their
/// JSON objects, and the merge of them as `sockloop merge --json` prints it.
fn two_shards(target: &str, args: &[&str]) -> (Vec<Value>, Value) {
    let children: Vec<_> = ["0/2", "1/2"]
        .iter()
        .map(|s| {
            common::bin()
                .arg("load")
                .arg(target)
                .args(args)
                .args(["--shard", s, "--json"])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let shards: Vec<Value> = children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            assert_eq!(
                out.status.code(),
                Some(0),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            serde_json::from_slice(&out.stdout).unwrap()
        })
        .collect();
    let merged = sockloop::merge::merge_values(
        shards
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("shard{i}"), v.clone())),
    )
    .unwrap_or_else(|e| panic!("{e:?}"));
    assert!(merged.ok(), "{}", merged.to_table());
    let v = serde_json::from_str(&merged.to_json()).unwrap();
    (shards, v)
}

fn sum(shards: &[Value], key: &str) -> u64 {
    shards.iter().map(|v| v[key].as_u64().unwrap()).sum()
}

/// How many values a histogram key holds.
fn count(v: &Value, key: &str) -> u64 {
    let text = v[key].as_str().unwrap_or_else(|| panic!("no {key}: {v}"));
    sockloop::hdr::decode(text).unwrap().len()
}

fn echo() -> (common::InProcess, String) {
    let srv = common::serve(&["echo=tcp://127.0.0.1:0"], Options::default());
    let t = format!("tcp://{}", srv.addrs[0]);
    (srv, t)
}

#[test]
fn idle_shards_merge_to_every_connection_held() {
    let (srv, t) = echo();
    let (shards, m) = two_shards(&t, &["--idle", "--conns", "5", "--duration", "0.5"]);
    assert_eq!(sum(&shards, "held"), 5, "3 + 2 of 5: {shards:?}");
    assert_eq!(
        (m["connections"].as_u64(), m["held"].as_u64()),
        (Some(5), Some(5)),
        "{m}"
    );
    assert_eq!(m["failed"], 0, "{m}");
    assert_eq!(srv.counters.snapshot().accepted, 5);
}

#[test]
fn churn_shards_merge_replacements_and_connect_histograms() {
    let (srv, t) = echo();
    let (shards, m) = two_shards(&t, &["--conns", "4", "--churn", "3", "--duration", "1"]);
    let churned = sum(&shards, "churned");
    assert!(churned > 10, "{shards:?}");
    assert_eq!(m["churned"].as_u64(), Some(churned), "{m}");
    assert_eq!(
        m["messages"].as_u64(),
        Some(sum(&shards, "messages")),
        "{m}"
    );
    let connects: u64 = shards.iter().map(|s| count(s, "histogram_connect")).sum();
    assert!(connects > 10, "{shards:?}");
    assert_eq!(count(&m, "histogram_connect"), connects, "{m}");
    // Every connection the shards opened (ramp and replacements) reached
    // the server.
    assert!(
        common::eventually(|| srv.counters.snapshot().accepted == 4 + churned),
        "accepted {} of {}",
        srv.counters.snapshot().accepted,
        4 + churned
    );
}

#[test]
fn rate_shards_merge_send_lateness_and_the_rate() {
    let (_srv, t) = echo();
    let args = ["--conns", "4", "--rate", "400", "--duration", "1.5"];
    let (shards, m) = two_shards(&t, &args);
    let late: u64 = shards
        .iter()
        .map(|s| count(s, "histogram_send_lateness"))
        .sum();
    assert!(late > 300, "{shards:?}");
    assert_eq!(count(&m, "histogram_send_lateness"), late, "{m}");
    assert_eq!(count(&m, "histogram_uncorrected"), count(&m, "histogram"));
    assert_eq!(
        m["messages"].as_u64(),
        Some(sum(&shards, "messages")),
        "{m}"
    );
    assert_eq!(count(&m, "histogram"), sum(&shards, "messages"), "{m}");
    // Both shards' shares, over one window: the whole rate (10 % here,
    // the shards' windows start a little apart).
    let rate = m["messages_per_sec"].as_f64().unwrap();
    assert!((360.0..=440.0).contains(&rate), "{rate}: {m}");
}
