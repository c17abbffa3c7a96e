//! `load --rate` on time, and honest about it: latency counts from the due
//! time (a server stalled for 300 ms shows in it; the uncorrected figure
//! does not) to the reply's arrival (`load` itself stalled does not show),
//! sends leave within the documented lateness, and `--max-rate-at` finds
//! a target's known capacity.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

/// These tests time a generator and its server: run side by side on two
/// cores, a --max-rate-at search saturating both would be measured as the
/// lateness under test. One at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn us(v: &serde_json::Value, key: &str, q: &str) -> f64 {
    v[key][q]
        .as_f64()
        .unwrap_or_else(|| panic!("{key}.{q}: {v}"))
}

#[test]
fn a_stalled_server_shows_in_latency_from_the_due_time_not_in_uncorrected() {
    let _serial = one_at_a_time();
    let srv = spawn_serve(&["--listen", "echo=tcp://127.0.0.1:0"]);
    let (child, _progress) = load_under_way(&[
        &format!("tcp://{}", srv.addrs[0]),
        "--conns",
        "4",
        "--rate",
        "2000",
        "--duration",
        "3",
        "--json",
    ]);
    srv.signal("STOP");
    std::thread::sleep(Duration::from_millis(300));
    srv.signal("CONT");
    let out = child.wait_with_output().unwrap();
    let v = json(&out);
    assert_eq!(out.status.code(), Some(0), "{v}");
    // ~600 of ~6,000 messages came due during the stall: from their due
    // time they waited up to 300 ms.
    assert!(us(&v, "latency_us", "max") >= 250_000.0, "{v}");
    assert!(us(&v, "latency_us", "p99_9") >= 200_000.0, "{v}");
    assert!(us(&v, "latency_us", "p99") >= 100_000.0, "{v}");
    // From the actual send, only the 4 in flight at the stall waited (the
    // rest were sent after it): not at p99.9.
    assert!(us(&v, "latency_uncorrected_us", "max") >= 250_000.0, "{v}");
    assert!(us(&v, "latency_uncorrected_us", "p99_9") < 100_000.0, "{v}");
    // The sends waited on the target: late, and said so.
    assert!(us(&v, "send_lateness_us", "max") >= 200_000.0, "{v}");
}

/// A reply is timed by when it arrived (the kernel's receive stamp), not
/// by when `load` got round to reading it: `load` itself stopped for
/// 300 ms, twice, with replies arriving meanwhile, does not show in the
/// server's latency. Timed by the read, the replies that waited out a
/// stop would be ≥ 300 ms. Over TCP and over UDP.
#[test]
fn a_stalled_load_does_not_show_in_the_servers_latency() {
    let _serial = one_at_a_time();
    for scheme in ["tcp", "udp"] {
        let srv = spawn_serve(&["--listen", &format!("echo={scheme}://127.0.0.1:0")]);
        let (child, _progress) = load_under_way(&[
            &format!("{scheme}://{}", srv.addrs[0]),
            "--conns",
            "2",
            "--pipeline",
            "4",
            "--duration",
            "3",
            "--json",
        ]);
        let pid = child.id() as libc::pid_t;
        for _ in 0..2 {
            // SAFETY: kill only sends a signal to our own child.
            unsafe { libc::kill(pid, libc::SIGSTOP) };
            std::thread::sleep(Duration::from_millis(300));
            // SAFETY: as above.
            unsafe { libc::kill(pid, libc::SIGCONT) };
            std::thread::sleep(Duration::from_millis(300));
        }
        let out = child.wait_with_output().unwrap();
        let v = json(&out);
        assert_eq!(out.status.code(), Some(0), "{scheme}: {v}");
        assert!(us(&v, "latency_us", "max") < 100_000.0, "{scheme}: {v}");
    }
}

#[test]
fn at_an_easy_rate_sends_leave_on_time() {
    let _serial = one_at_a_time();
    let srv = spawn_serve(&["--listen", "echo=tcp://127.0.0.1:0"]);
    // docs/protocol.md: a message leaves within 0.15 ms of its due time at
    // p50 when the machine keeps up (pacing by the poll timeout alone:
    // p50 ≈ 500–800 µs), in every run. Its p99 depends on the VM giving the
    // CPU back in time, which no test controls: the promise there is
    // honesty — a p99 over 1 ms is said in the summary, and only then.
    for _ in 0..3 {
        let out = bin()
            .args([
                "load",
                &format!("tcp://{}", srv.addrs[0]),
                "--conns",
                "10",
                "--rate",
                "2000",
                "--duration",
                "2",
                "--json",
            ])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let v = json(&out);
        assert_eq!(out.status.code(), Some(0), "{v}");
        let p50 = us(&v, "send_lateness_us", "p50");
        assert!(p50 <= 150.0, "send lateness p50 {p50} µs: {v}");
        let rate = v["messages_per_sec"].as_f64().unwrap();
        assert!((1980.0..2020.0).contains(&rate), "{rate}: {v}");
        let p99 = us(&v, "send_lateness_us", "p99");
        assert_eq!(
            v.get("pace_notice").is_some(),
            p99 > 1000.0,
            "a p99 of {p99} µs and the notice: {v}"
        );
    }
}

/// An echo server that answers at most `rate` messages a second over all
/// its connections (`size`-byte messages): each reply waits for the next
/// free slot of a shared schedule, and at least `delay`.
fn capped_echo(rate: f64, size: usize, delay: Duration) -> std::net::SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let next = Arc::new(Mutex::new(Instant::now()));
    let gap = Duration::from_secs_f64(1.0 / rate);
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            let next = Arc::clone(&next);
            std::thread::spawn(move || {
                let _ = s.set_nodelay(true);
                let mut msg = vec![0; size];
                while s.read_exact(&mut msg).is_ok() {
                    let slot = {
                        let mut n = next.lock().unwrap();
                        let slot = (*n).max(Instant::now() + delay);
                        *n = slot + gap;
                        slot
                    };
                    std::thread::sleep(slot.saturating_duration_since(Instant::now()));
                    if s.write_all(&msg).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[test]
fn max_rate_at_finds_a_known_capacity() {
    let _serial = one_at_a_time();
    let capacity = 2000.0;
    let addr = capped_echo(capacity, 64, Duration::ZERO);
    let out = bin()
        .args([
            "load",
            &format!("tcp://{addr}"),
            "--conns",
            "8",
            "--duration",
            "1",
            "--max-rate-at",
            "p99=50ms",
            "--json",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let v = json(&out);
    let steps = v["steps"].as_array().expect("steps");
    assert!(steps.len() >= 4, "{v}");
    assert!(
        steps[0]["rate"].is_null(),
        "the first step is closed-loop: {v}"
    );
    let max = v["max_rate"].as_f64().unwrap_or(0.0);
    assert!(
        (max - capacity).abs() <= 0.15 * capacity,
        "max rate {max} for a capacity of {capacity}: {v}"
    );
    assert_eq!(out.status.code(), Some(0), "{v}");
    // The steps were printed as they ended, on stderr beside the JSON.
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("step 1: closed loop") && err.contains("step 4:"),
        "{err}"
    );
}

#[test]
fn max_rate_at_prints_its_steps_and_the_answer_last() {
    let _serial = one_at_a_time();
    // Every reply takes at least 3 ms: no rate keeps p90 at 1 ms.
    let addr = capped_echo(1000.0, 64, Duration::from_millis(3));
    let out = bin()
        .args([
            "load",
            &format!("tcp://{addr}"),
            "--conns",
            "4",
            "--duration",
            "0.4",
            "--max-rate-at",
            "p90=1ms",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().last().unwrap_or("");
    assert_eq!(
        last, "max rate at p90 ≤ 1000 µs: none found (even the lowest rate tried was over)",
        "{text}"
    );
    assert!(text.starts_with("step 1: closed loop"), "{text}");
    assert!(
        text.contains("step 2: --rate") && text.contains(": over"),
        "{text}"
    );
    assert_eq!(out.status.code(), Some(1), "{text}");
    // A usage error with --rate (it searches for the rate itself).
    let out = Command::new(env!("CARGO_BIN_EXE_sockloop"))
        .args([
            "load",
            &format!("tcp://{addr}"),
            "--rate",
            "10",
            "--max-rate-at",
            "p99=1ms",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(env!("CARGO_BIN_EXE_sockloop"))
        .args(["load", &format!("tcp://{addr}"), "--max-rate-at", "p99=1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
