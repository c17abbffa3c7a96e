//! `load --request/--reply` against test servers of its own: one that
//! answers garbage, one that records what it was sent (for `--seed`), the
//! UDP echo; and the usage errors of the protocol options.

mod common;

use std::io::{Read, Write};

use common::servers::{load, load_ok, target};

#[test]
fn garbage_answers_are_an_error_not_a_hang() {
    // A server that answers every read with bytes no framing wants.
    let addr = thread_per_connection(|mut s| {
        let mut b = [0u8; 4096];
        while let Ok(n) = s.read(&mut b) {
            if n == 0 || s.write_all(b"?garbage\x00\xff\r\n").is_err() {
                return;
            }
        }
    });
    let t = target(addr);
    for reply in ["resp", "http"] {
        let (code, out, err) = load(&[
            &t,
            "--conns",
            "2",
            "--duration",
            "1",
            "--request",
            "PING\\r\\n",
            "--reply",
            reply,
        ]);
        assert_eq!(code, 1, "{out}{err}");
        assert!(
            out.contains(&format!("malformed {reply} reply")),
            "{reply}: {out}"
        );
    }
}

#[test]
fn bad_template_or_framing_is_a_usage_error_naming_the_column() {
    for (args, want) in [
        (&["--request", "GET {key:0}"][..], "column 10"),
        (&["--request", "x\\q"][..], "column 3"),
        (&["--reply", "until:\\x4"][..], "column 10"),
        (&["--reply", "smtp"][..], "resp or http"),
        (&["--request", "x", "--expect", "\\z"][..], "column 2"),
    ] {
        let mut a = vec!["tcp://127.0.0.1:9"];
        a.extend_from_slice(args);
        let (code, out, err) = load(&a);
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(
            err.starts_with("error:") && err.contains(want),
            "{args:?}: {err}"
        );
    }
}

/// A server that echoes and records what its first connection sent.
fn recording_echo() -> (std::net::SocketAddr, std::sync::mpsc::Receiver<Vec<u8>>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let Ok((mut s, _)) = l.accept() else { return };
        let mut seen = Vec::new();
        let mut b = [0u8; 4096];
        while let Ok(n) = s.read(&mut b) {
            if n == 0 || s.write_all(&b[..n]).is_err() {
                break;
            }
            if seen.len() < 200 {
                seen.extend_from_slice(&b[..n]);
                if seen.len() >= 200 {
                    let _ = tx.send(seen[..200].to_vec());
                }
            }
        }
    });
    (addr, rx)
}

#[test]
fn seed_repeats_the_requests() {
    let run = |seed: &str| {
        let (addr, rx) = recording_echo();
        let t = target(addr);
        load_ok(&[
            &t,
            "--conns",
            "1",
            "--duration",
            "0.3",
            "--request",
            "k{key:1000000} {rand:6}\\n",
            "--reply",
            "line",
            "--seed",
            seed,
        ]);
        rx.recv_timeout(common::WAIT)
            .expect("200 bytes of requests")
    };
    let a = run("9");
    assert_eq!(a, run("9"));
    assert_ne!(a, run("10"));
    assert!(
        a.starts_with(b"k") && a[7] == b' ',
        "{:?}",
        String::from_utf8_lossy(&a)
    );
}

#[test]
fn udp_requests_one_datagram_each_and_expect_applies() {
    let srv = common::serve(&["echo=udp://127.0.0.1:0"], sockloop::Options::default());
    let t = format!("udp://{}", srv.addrs[0]);
    let j = load_ok(&[
        &t,
        "--conns",
        "2",
        "--duration",
        "0.5",
        "--request",
        "hi {seq}\\n",
        "--reply",
        "line",
        "--expect",
        "hi ",
    ]);
    assert!(
        j["messages"].as_u64().unwrap() > 100 && j["errors"] == 0,
        "{j}"
    );
    let (code, out, _) = load(&[
        &t,
        "--conns",
        "1",
        "--duration",
        "0.5",
        "--request",
        "hi {seq}\\n",
        "--reply",
        "line",
        "--expect",
        "HI",
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("mismatched") && out.contains("hi 0\\n"),
        "{out}"
    );
}

/// A server answering every line it reads with `ok\n` (3 bytes), whatever
/// the line's length.
fn ok_per_line_server() -> std::net::SocketAddr {
    slow_ok_server(std::time::Duration::ZERO)
}

/// With `--request`, MB/s counts the reply bytes read (3 a reply here),
/// not `messages × --size` (101-byte requests, `--size 1000`).
#[test]
fn mb_per_sec_with_request_counts_the_reply_bytes_read() {
    let t = target(ok_per_line_server());
    let req = format!("{}\\n", "x".repeat(100));
    let v = load_ok(&[
        &t,
        "--conns",
        "2",
        "--duration",
        "1",
        "--size",
        "1000",
        "--request",
        &req,
        "--reply",
        "line",
    ]);
    let (msgs, bytes) = (
        v["messages"].as_u64().unwrap(),
        v["reply_bytes"].as_u64().unwrap(),
    );
    assert!(msgs > 100, "{v}");
    // Bytes read in the window: the replies counted, and at most a part
    // of one more per connection.
    assert!((3 * msgs..=3 * msgs + 2 * 2).contains(&bytes), "{v}");
    let secs = v["duration_sec"].as_f64().unwrap();
    let mb = v["mb_per_sec"].as_f64().unwrap();
    assert!((mb - bytes as f64 / secs / 1e6).abs() <= 0.0006, "{v}");
}

/// An HTTP/1.0-style server: reads a request head, answers `HTTP/1.0 200
/// OK\r\n\r\nbody` — no Content-Length, not chunked — and closes.
#[test]
fn an_http_body_delimited_by_the_close_completes_the_reply() {
    use std::io::BufRead;
    let addr = thread_per_connection(|mut s| {
        let mut r = std::io::BufReader::new(s.try_clone().unwrap());
        let mut line = String::new();
        while matches!(r.read_line(&mut line), Ok(n) if n > 0) {
            if line == "\r\n" {
                let _ = s.write_all(b"HTTP/1.0 200 OK\r\n\r\nbody");
                return; // dropped: closed
            }
            line.clear();
        }
    });
    let v = load_ok(&[
        &target(addr),
        "--conns",
        "2",
        "--duration",
        "1",
        "--request",
        "GET / HTTP/1.0\\r\\n\\r\\n",
        "--reply",
        "http",
        "--expect",
        "HTTP/1.0 200",
    ]);
    assert!(v["messages"].as_u64().unwrap() > 20, "{v}");
    assert_eq!(v["lost_connections"], 0, "{v}");
    let closes = v["replies"]["closes"].as_u64().unwrap();
    assert!(
        closes >= v["messages"].as_u64().unwrap(),
        "one close a reply: {v}"
    );
    assert_eq!(v["replies"]["mismatched"], 0, "{v}");
}

/// A server answering every line with `ok\n`, each after `delay`.
fn slow_ok_server(delay: std::time::Duration) -> std::net::SocketAddr {
    use std::io::BufRead;
    thread_per_connection(move |mut s| {
        let mut r = std::io::BufReader::new(s.try_clone().unwrap());
        let mut line = Vec::new();
        while matches!(r.read_until(b'\n', &mut line), Ok(n) if n > 0) {
            line.clear();
            std::thread::sleep(delay);
            if s.write_all(b"ok\n").is_err() {
                return;
            }
        }
    })
}

/// A test server on a free port of 127.0.0.1 that runs `serve` on a
/// thread of its own for each connection it accepts.
fn thread_per_connection(
    serve: impl Fn(std::net::TcpStream) + Clone + Send + 'static,
) -> std::net::SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(s) = s else { return };
            let serve = serve.clone();
            std::thread::spawn(move || serve(s));
        }
    });
    addr
}

/// CPU time of process `pid` so far, in ns: every thread's, from
/// schedstat (exact; /proc/PID/stat counts in 10 ms ticks).
fn cpu_ns(pid: u32) -> u64 {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
    tasks
        .map(|t| {
            let stat = std::fs::read_to_string(t.unwrap().path().join("schedstat")).unwrap();
            stat.split(' ').next().unwrap().parse::<u64>().unwrap()
        })
        .sum()
}

/// Closed loop with `--request`, the driver may look for the next reply
/// without sleeping for a while (50 µs) before it sleeps, and keeps
/// looking only if that cost less CPU per reply than sleeping
/// (docs/protocol.md): a server that answers every 5 ms leaves `load`
/// asleep nearly all the time. A look without its bound spins through
/// each 50 ms trial of looking (one in 22 stretches): 3–5 % of the time;
/// 50 µs looks, or sleeping at once, under 1 % (0.6–0.8 % here).
#[test]
fn waiting_for_a_slow_reply_sleeps_after_a_short_look() {
    let t = target(slow_ok_server(std::time::Duration::from_millis(5)));
    let child = common::bin()
        .args(["load", &t, "--conns", "1", "--duration", "4"])
        .args(["--request", "x\\n", "--reply", "line", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    // A window of three seconds holds at least two trials of looking.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let (t0, c0) = (std::time::Instant::now(), cpu_ns(pid));
    std::thread::sleep(std::time::Duration::from_millis(3000));
    let (t1, c1) = (std::time::Instant::now(), cpu_ns(pid));
    let out = child.wait_with_output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // Closed loop at one reply per 5 ms: it did wait for the replies.
    let msgs = v["messages"].as_u64().unwrap();
    assert!((200..=900).contains(&msgs), "{v}");
    let busy = (c1 - c0) as f64 / 1e9 / (t1 - t0).as_secs_f64();
    assert!(
        busy < 0.02,
        "load was busy {:.1} % of the time",
        busy * 100.0
    );
}
