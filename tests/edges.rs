//! The small defects of issue 20 (item 5), each pinned: a character split
//! across reads at `--max-frame 1` and `2`, durations too large for the
//! loop's clock, and UDP replies too long for one datagram (README,
//! "Limits"; docs/protocol.md, "Services" and "Command line").

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::*;
use sockloop::Options;

#[test]
fn upper_raw_at_max_frame_1_and_2_holds_a_character_cut_in_two() {
    for max_frame in [1, 2] {
        let srv = serve(
            &["upper=tcp://127.0.0.1:0"],
            Options {
                max_frame,
                ..Options::default()
            },
        );
        let mut c = connect(srv.addrs[0]);
        // One byte a write, each answered before the next is sent where it
        // can be: the server sees the character's bytes in separate reads.
        let text = "a€😀ß";
        for b in text.as_bytes() {
            c.write_all(&[*b]).unwrap();
            std::thread::sleep(Duration::from_millis(5)); // pacing, not synchronising
        }
        let want = text.to_uppercase();
        let got = read_n(&mut c, want.len());
        assert_eq!(
            String::from_utf8_lossy(&got),
            want,
            "--max-frame {max_frame}"
        );
        c.write_all(b"ok").unwrap();
        assert_eq!(
            read_n(&mut c, 2),
            b"OK",
            "still open at --max-frame {max_frame}"
        );
    }
}

#[test]
fn a_duration_too_large_for_the_clock_is_a_usage_error() {
    for (opt, v) in [
        ("--idle-timeout", "18446744073709552"),
        ("--frame-timeout", "1e10"),
        ("--slow-timeout", "inf"),
        ("--grace", "NaN"),
        ("--udp-member-ttl", "1000000001"),
    ] {
        // A value wrongly accepted would start a server: it must not hang
        // the test, so the run is bounded and killed.
        let mut child = bin()
            .args(["serve", "--listen", "echo=tcp://127.0.0.1:0", opt, v])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let end = std::time::Instant::now() + WAIT;
        let status = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break st;
            }
            if std::time::Instant::now() > end {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{opt} {v}: accepted (the server started)");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        assert_eq!(status.code(), Some(2), "{opt} {v}: {err}");
        assert!(
            err.starts_with("error:") && err.contains("is not a number of seconds from 0 to"),
            "{opt} {v}: {err}"
        );
    }
}

#[test]
fn a_huge_idle_timeout_set_in_code_never_fires_instead_of_wrapping() {
    // 18,446,744,073,709,552 s is 384 ms once its milliseconds wrap u64:
    // the old arithmetic closed every connection at once.
    for idle in [Duration::from_secs(18_446_744_073_709_552), Duration::MAX] {
        let srv = serve(
            &["echo=tcp://127.0.0.1:0"],
            Options {
                idle_timeout: Some(idle),
                ..Options::default()
            },
        );
        let mut c = connect(srv.addrs[0]);
        c.write_all(b"x").unwrap();
        assert_eq!(read_n(&mut c, 1), b"x");
        c.set_read_timeout(Some(Duration::from_millis(1500)))
            .unwrap();
        let mut buf = [0u8; 1];
        match c.read(&mut buf) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            other => panic!("{idle:?}: the connection was closed: {other:?}"),
        }
    }
}

#[test]
fn a_udp_reply_over_65507_bytes_is_an_error_datagram_and_counted() {
    let srv = serve(&["upper=udp://127.0.0.1:0"], Options::default());
    let c = udp_client();
    // 22,000 × "ΐ" (2 bytes) uppercases to 22,000 × "Ϊ́" (6 bytes):
    // 132,000 bytes, over any datagram.
    let req = "ΐ".repeat(22_000);
    c.send_to(req.as_bytes(), srv.addrs[0]).unwrap();
    let mut buf = vec![0u8; 65_536];
    let (n, _) = c.recv_from(&mut buf).expect("an answer, not silence");
    assert_eq!(&buf[..n], b"ERR reply too long");
    assert_eq!(srv.counters.snapshot().udp_too_long, 1);
    // The largest reply that fits still goes out whole.
    let fits = "é".repeat(65_507 / 2);
    c.send_to(fits.as_bytes(), srv.addrs[0]).unwrap();
    let (n, _) = c.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], fits.to_uppercase().as_bytes());
    assert_eq!(srv.counters.snapshot().udp_too_long, 1);
}
