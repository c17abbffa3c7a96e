//! `load`'s reporting, one test per defect found (issue 20 item 6, issue
//! 23): each names what the run really saw.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use common::*;

/// A UDP server that answers each datagram with `answer(datagram)`, each
/// returned datagram sent in turn.
fn udp_server(answer: fn(&[u8]) -> Vec<Vec<u8>>) -> SocketAddr {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = s.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 65536];
        while let Ok((n, from)) = s.recv_from(&mut buf) {
            for d in answer(&buf[..n]) {
                let _ = s.send_to(&d, from);
            }
        }
    });
    addr
}

#[test]
fn duplicate_udp_replies_are_errors() {
    let addr = udp_server(|d| vec![d.to_vec(), d.to_vec()]);
    let out = load(&[
        &format!("udp://{addr}"),
        "--conns",
        "2",
        "--duration",
        "0.5",
        "--json",
    ]);
    let v = json(&out);
    assert_eq!(out.status.code(), Some(1), "{v}");
    assert!(v["errors"].as_u64().unwrap() > 0, "{v}");
    let why = v["failures"].to_string();
    assert!(
        why.contains("duplicate reply") && why.contains(&addr.to_string()),
        "{why}"
    );
}

#[test]
fn a_garbage_udp_reply_is_an_error_and_not_also_lost() {
    let addr = udp_server(|d| vec![vec![b'?'; d.len()]]);
    let out = load(&[
        &format!("udp://{addr}"),
        "--conns",
        "2",
        "--duration",
        "1.5",
        "--json",
    ]);
    let v = json(&out);
    assert_eq!(out.status.code(), Some(1), "{v}");
    assert!(v["errors"].as_u64().unwrap() > 10, "{v}");
    assert_eq!(v["lost"], 0, "each garbage reply answered a request: {v}");
    assert_eq!(v["messages"], 0, "{v}");
}

/// A listener whose accept queue is full and never drained: new connects
/// get no answer at all (their SYNs are dropped).
fn never_accepts() -> (socket2::Socket, Vec<TcpStream>, SocketAddr) {
    use socket2::{Domain, Socket, Type};
    let l = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    l.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    l.listen(0).unwrap();
    let addr = l.local_addr().unwrap().as_socket().unwrap();
    // listen(0) queues one; fill it (a further connect hangs: give up).
    let mut held = Vec::new();
    for _ in 0..3 {
        if let Ok(s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            held.push(s);
        }
    }
    (l, held, addr)
}

#[test]
fn a_target_that_never_accepts_ends_with_the_run() {
    let (_l, _held, addr) = never_accepts();
    let ep = format!("tcp://{addr}");
    let t0 = Instant::now();
    let out = load(&[&ep, "--conns", "2", "--duration", "1", "--json"]);
    let took = t0.elapsed();
    let v = json(&out);
    assert_eq!(out.status.code(), Some(1), "{v}");
    // The connect timeout (10 s by default) is bounded by --duration.
    assert!(took < Duration::from_secs(3), "took {took:?}: {v}");
    let why = v["failures"].to_string();
    assert!(why.contains(&format!("connect timed out ({ep})")), "{why}");
    // --connect-timeout, shorter than the run.
    let t0 = Instant::now();
    let out = load(&[
        &ep,
        "--conns",
        "2",
        "--duration",
        "30",
        "--connect-timeout",
        "0.3",
    ]);
    let took = t0.elapsed();
    assert_eq!(out.status.code(), Some(1));
    assert!(took < Duration::from_secs(2), "took {took:?}");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("2 connect timed out"), "{table}");
}

#[test]
fn a_refused_run_ends_at_once_and_its_summary_does_not_say_errors_0() {
    let port = common::servers::free_port();
    let t0 = Instant::now();
    let out = load(&[
        &format!("tcp://127.0.0.1:{port}"),
        "--conns",
        "20",
        "--duration",
        "60",
    ]);
    let took = t0.elapsed();
    assert_eq!(out.status.code(), Some(1));
    assert!(took < Duration::from_millis(500), "took {took:?}");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(!table.contains("errors       0"), "{table}");
    assert!(table.contains("failed       20 connections"), "{table}");
    assert!(table.contains("20 connection refused"), "{table}");
}

#[test]
fn half_length_replies_are_short_replies_not_no_reply() {
    // Echoes the first half of each 64-byte message, never the rest.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            std::thread::spawn(move || {
                let mut msg = [0u8; 64];
                while s.read_exact(&mut msg).is_ok() {
                    if s.write_all(&msg[..32]).is_err() {
                        return;
                    }
                }
            });
        }
    });
    let out = load(&[
        &format!("tcp://{addr}"),
        "--conns",
        "2",
        "--duration",
        "0.6",
        "--json",
    ]);
    let v = json(&out);
    assert_eq!(out.status.code(), Some(1), "{v}");
    let why = v["failures"].to_string();
    assert!(why.contains("short reply"), "{why}");
    assert!(!why.contains("no reply came back"), "{why}");
    assert_eq!(v["errors"], 2, "one short reply per connection: {v}");
}

#[test]
fn a_zero_duration_is_a_usage_error() {
    let out = load(&["tcp://127.0.0.1:9", "--duration", "0"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error:") && err.contains("--duration"),
        "{err}"
    );
}
