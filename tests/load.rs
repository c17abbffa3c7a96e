//! `sockloop load`'s exits, each tried as a user would: exit 1 always comes
//! with its reason and the address; a target that refuses everything stops
//! the run at once; a target that is not echo-like is named so; a signal
//! ends the run early with the summary so far; lost connections are
//! counted as lost.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use sockloop::Options;

#[test]
fn a_target_that_never_answers_is_exit_1_with_a_reason() {
    // A chat room of one: what load sends goes to no one, nothing comes back.
    let srv = serve(&["chat=tcp://127.0.0.1:0"], Options::default());
    let ep = format!("tcp://{}", srv.addrs[0]);
    let out = load(&[&ep, "--conns", "1", "--duration", "0.5", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    assert_eq!(v["messages"], 0);
    let reasons = v["failures"].to_string();
    assert!(
        reasons.contains("no reply came back") && reasons.contains(&ep),
        "{reasons}"
    );
    // The table says it too.
    let out = load(&[&ep, "--conns", "1", "--duration", "0.5"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("why") && table.contains("echo-like"),
        "{table}"
    );
}

#[test]
fn wrong_reply_bytes_say_the_target_is_not_echo_like() {
    let srv = serve(&["count=tcp://127.0.0.1:0"], Options::default());
    let ep = format!("tcp://{}", srv.addrs[0]);
    let out = load(&[&ep, "--conns", "3", "--duration", "5", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    assert!(v["errors"].as_u64().unwrap() > 0);
    assert_eq!(v["lost_connections"], 3, "every connection lost: {v}");
    assert_eq!(v["failed"], 3, "a lost connection is a failed one: {v}");
    assert!(
        v["failures"]
            .to_string()
            .contains("does not look like an echo-like service"),
        "{v}"
    );
}

#[test]
fn a_refused_target_stops_the_run_at_once() {
    let port = common::servers::free_port();
    let start = Instant::now();
    let out = load(&[
        &format!("tcp://127.0.0.1:{port}"),
        "--conns",
        "5",
        "--duration",
        "60",
    ]);
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "waited out --duration"
    );
    assert_eq!(out.status.code(), Some(1));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("0 of 5 opened (5 failed to connect)"),
        "{table}"
    );
    assert!(
        table.contains(&format!("connection refused (tcp://127.0.0.1:{port})")),
        "{table}"
    );
}

#[test]
fn connections_that_all_died_are_not_reported_as_fine() {
    // Replies the server never sends: every connection is lost.
    let srv = serve(&["count=tcp://127.0.0.1:0"], Options::default());
    let out = load(&[
        &format!("tcp://{}", srv.addrs[0]),
        "--conns",
        "5",
        "--duration",
        "5",
    ]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("5 of 5 opened (0 failed to connect), 5 lost, 0 open at the end"),
        "{table}"
    );
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn sigint_ends_the_run_with_a_summary_that_parses() {
    let srv = serve(&["echo=tcp://127.0.0.1:0"], Options::default());
    let (child, _progress) = load_under_way(&[
        &format!("tcp://{}", srv.addrs[0]),
        "--conns",
        "4",
        "--duration",
        "60",
        "--json",
    ]);
    let start = Instant::now();
    assert!(Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let out = child.wait_with_output().unwrap();
    assert!(start.elapsed() < Duration::from_secs(20));
    let v = json(&out);
    assert!(v["messages"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(v["errors"], 0);
    assert_eq!(
        out.status.code(),
        Some(0),
        "the summary's verdict, not the signal's"
    );
}

#[test]
fn udp_load_against_a_udp_echo_counts_answers_and_loss() {
    let srv = serve(
        &["echo=udp://127.0.0.1:0", "upper=udp://127.0.0.1:0"],
        Options::default(),
    );
    // One loop on the echo listener, two threads on upper.
    for (addr, threads) in srv.addrs.iter().zip(["1", "2"]) {
        let ep = format!("udp://{addr}");
        let out = load(&[
            &ep,
            "--conns",
            "4",
            "--pipeline",
            "8",
            "--duration",
            "1",
            "--json",
            "--threads",
            threads,
        ]);
        let v = json(&out);
        assert_eq!(out.status.code(), Some(0), "{v}");
        let per = v["per_thread_messages"].as_array().unwrap();
        assert_eq!(per.len().to_string(), threads, "{v}");
        let sum: u64 = per.iter().map(|m| m.as_u64().unwrap()).sum();
        assert_eq!(sum, v["messages"].as_u64().unwrap(), "{v}");
        assert!(v["messages"].as_u64().unwrap() > 100, "{v}");
        assert_eq!(v["errors"], 0, "{v}");
        assert!(
            v["lost"].as_u64().is_some() && v["loss_percent"].as_f64().is_some(),
            "{v}"
        );
    }
}

#[test]
fn udp_load_against_nothing_is_all_lost_and_says_so() {
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = load(&[
        &format!("udp://127.0.0.1:{port}"),
        "--conns",
        "2",
        "--duration",
        "1.5",
        "--json",
    ]);
    let v = json(&out);
    assert_eq!(out.status.code(), Some(1), "{v}");
    assert_eq!(v["messages"], 0);
    assert!(
        v["lost"].as_u64().unwrap() >= 2,
        "every datagram a second old is lost: {v}"
    );
    assert_eq!(v["loss_percent"].as_f64().unwrap(), 100.0);
    assert!(
        v["failures"].to_string().contains("no reply came back"),
        "{v}"
    );
}

#[test]
fn tcp_only_options_with_udp_are_usage_errors() {
    for extra in [
        &["--churn", "5"][..],
        &["--idle"][..],
        &["--rate", "100"][..],
    ] {
        let mut args = vec!["udp://127.0.0.1:9999", "--duration", "1"];
        args.extend_from_slice(extra);
        let out = load(&args);
        assert_eq!(out.status.code(), Some(2), "{extra:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).starts_with("error:"),
            "{extra:?}"
        );
    }
}

#[test]
fn threads_merge_exactly_and_targets_share_the_connections() {
    let a = serve(&["echo=tcp://127.0.0.1:0"], Options::default());
    let b = serve(&["echo=tcp://127.0.0.1:0"], Options::default());
    let out = load(&[
        &format!("tcp://{}", a.addrs[0]),
        &format!("tcp://{}", b.addrs[0]),
        "--conns",
        "7",
        "--threads",
        "3",
        "--pipeline",
        "4",
        "--duration",
        "1",
        "--json",
    ]);
    let v = json(&out);
    assert_eq!(out.status.code(), Some(0), "{v}");
    let per: Vec<u64> = v["per_thread_messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_u64().unwrap())
        .collect();
    assert_eq!(per.len(), 3);
    assert!(per.iter().all(|&m| m > 0), "every thread measured: {per:?}");
    assert_eq!(per.iter().sum::<u64>(), v["messages"].as_u64().unwrap());
    assert_eq!(v["connections"], 7);
    // Round-robin over the two servers: 4 and 3.
    let (ca, cb) = (
        a.counters.snapshot().accepted,
        b.counters.snapshot().accepted,
    );
    assert_eq!((ca + cb, ca.max(cb), ca.min(cb)), (7, 4, 3));
}

#[test]
fn pipelined_messages_share_their_write() {
    // Counted, not timed: with 16 messages in flight per connection, a
    // write carries every message that may start, so writes per message
    // stay near 1/16 (well under 1: one per message was the old way).
    let srv = serve(&["echo=tcp://127.0.0.1:0"], Options::default());
    let out = load(&[
        &format!("tcp://{}", srv.addrs[0]),
        "--conns",
        "4",
        "--pipeline",
        "16",
        "--duration",
        "1",
        "--json",
    ]);
    let v = json(&out);
    let (writes, messages) = (
        v["writes"].as_u64().unwrap(),
        v["messages"].as_u64().unwrap(),
    );
    assert!(messages > 1000, "{v}");
    let per = writes as f64 / messages as f64;
    assert!(per <= 1.0 / 16.0 + 0.25, "{per:.3} writes per message: {v}");
}

#[test]
fn hgrm_and_timeline_files_hold_the_run() {
    let srv = serve(&["echo=tcp://127.0.0.1:0"], Options::default());
    let dir = std::env::temp_dir().join(format!("sockloop-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (hgrm, csv) = (dir.join("run.hgrm"), dir.join("run.csv"));
    let out = load(&[
        &format!("tcp://{}", srv.addrs[0]),
        "--conns",
        "4",
        "--duration",
        "1.5",
        "--threads",
        "2",
        "--json",
        "--hgrm",
        hgrm.to_str().unwrap(),
        "--timeline",
        csv.to_str().unwrap(),
    ]);
    let v = json(&out);
    assert_eq!(out.status.code(), Some(0), "{v}");
    let messages = v["messages"].as_u64().unwrap();
    // hgrm: value, percentile (rising to 1), cumulative count (ending at
    // the run's message count), then the three `#[...]` summary lines.
    let text = std::fs::read_to_string(&hgrm).unwrap();
    let rows: Vec<Vec<f64>> = text
        .lines()
        .filter(|l| {
            l.trim_start()
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_digit())
        })
        .map(|l| l.split_whitespace().map(|x| x.parse().unwrap()).collect())
        .collect();
    assert!(rows.len() > 10, "{text}");
    assert!(rows
        .windows(2)
        .all(|w| w[0][1] <= w[1][1] && w[0][0] <= w[1][0]));
    let last = rows.last().unwrap();
    assert_eq!((last[1], last[2] as u64), (1.0, messages));
    assert!(text.contains("#[Mean") && text.contains(&format!("Total count    = {messages:12}")));
    // Timeline: a row a second of the measured window, the last partial;
    // the measured messages are exactly theirs.
    let csv = std::fs::read_to_string(&csv).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("second,messages,p50_us,p99_us,errors,open")
    );
    let rows: Vec<Vec<String>> = lines
        .map(|l| l.split(',').map(String::from).collect())
        .collect();
    assert!(rows.len() >= 2, "{csv}");
    let total: u64 = rows.iter().map(|r| r[1].parse::<u64>().unwrap()).sum();
    assert_eq!(total, messages, "{csv}");
    assert!(rows.iter().all(|r| r[4] == "0" && r[5] == "4"), "{csv}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn churn_replaces_each_connection_after_exactly_m_round_trips() {
    let srv = serve(&["echo=tcp://127.0.0.1:0"], Options::default());
    const CONNS: u64 = 8;
    const M: u64 = 3;
    const SIZE: u64 = 64;
    let out = load(&[
        &format!("tcp://{}", srv.addrs[0]),
        "--conns",
        "8",
        "--churn",
        "3",
        "--duration",
        "1",
        "--json",
    ]);
    let v = json(&out);
    assert_eq!(out.status.code(), Some(0), "{v}");
    assert_eq!(v["connections"], CONNS, "connections open at once: {v}");
    assert!(v["connects_per_sec"].as_f64().unwrap() > 0.0, "{v}");
    assert!(
        v["connect_latency_us"]["p50"].as_f64().unwrap() > 0.0,
        "{v}"
    );
    let churned = v["churned"].as_u64().unwrap();
    assert!(churned > CONNS, "{v}");
    // The server's own account, once load's last sockets are closed: each
    // replaced connection sent exactly M messages, the last ones at most M.
    assert!(eventually(|| srv.counters.snapshot().open == 0));
    let s = srv.counters.snapshot();
    assert!(
        s.accepted >= churned && s.accepted <= churned + CONNS,
        "{s:?} vs {churned}"
    );
    let whole = churned * M * SIZE;
    assert!(
        s.bytes_in >= whole && s.bytes_in <= whole + CONNS * M * SIZE,
        "{s:?} vs {churned}"
    );
}
