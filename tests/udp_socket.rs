//! The loop over UDP: whole datagrams, every service, the reflection guard,
//! datagrams received and sent in batches.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::*;
use sockloop::{Counters, ListenSpec, Options, Server};

#[test]
fn largest_datagram_comes_back_whole() {
    let srv = serve(
        &["upper=udp://127.0.0.1:0", "echo=udp://127.0.0.1:0"],
        Options::default(),
    );
    let data: Vec<u8> = (0..65_507u32).map(|i| b'a' + (i % 26) as u8).collect();
    let u = udp_client();
    let mut buf = vec![0u8; 70_000];
    u.send_to(&data, srv.addrs[0]).unwrap();
    let (n, _) = u.recv_from(&mut buf).unwrap();
    assert_eq!(n, 65_507);
    assert!(buf[..n] == data.to_ascii_uppercase()[..]);
    u.send_to(&data, srv.addrs[1]).unwrap();
    let (n, _) = u.recv_from(&mut buf).unwrap();
    assert!(buf[..n] == data[..]);
}

#[test]
fn count_and_upper_answer_each_datagram() {
    let srv = serve(
        &["count=udp://127.0.0.1:0", "upper=udp://127.0.0.1:0"],
        Options::default(),
    );
    let u = udp_client();
    let mut buf = [0u8; 256];
    u.send_to(b"mississippi", srv.addrs[0]).unwrap();
    let (n, _) = u.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"4", "count over UDP has no newline");
    u.send_to("straße".as_bytes(), srv.addrs[1]).unwrap();
    let (n, _) = u.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], "STRASSE".as_bytes());
    u.send_to(&[b'a', 0xff, b'b'], srv.addrs[1]).unwrap();
    let (n, _) = u.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"A\xffB");
}

#[test]
fn empty_datagram_gets_an_empty_reply() {
    let srv = serve(&["echo=udp://127.0.0.1:0"], Options::default());
    let u = udp_client();
    let mut buf = [0u8; 16];
    u.send_to(b"", srv.addrs[0]).unwrap();
    let (n, from) = u.recv_from(&mut buf).unwrap();
    assert_eq!((n, from), (0, srv.addrs[0]));
}

/// UDP sockets on the guarded ports 7 (echo) and 19 (chargen) of `ip`
/// (its own loopback address per test, so tests running at once do not
/// collide). Binding them needs root (or
/// `net.ipv4.ip_unprivileged_port_start` at or below 7); without it the
/// guard cannot be tested, and the test fails saying so.
fn guarded_ports(ip: &str) -> Vec<UdpSocket> {
    [7u16, 19]
        .iter()
        .map(|&port| {
            let s = UdpSocket::bind((ip, port)).unwrap_or_else(|e| {
                panic!(
                    "cannot bind udp {ip}:{port} ({e}): this test needs root or \
                     sysctl net.ipv4.ip_unprivileged_port_start=0 to play a small service"
                )
            });
            s.set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            s
        })
        .collect()
}

#[test]
fn datagrams_from_small_service_ports_are_not_answered() {
    // Pretend to be a chargen service (port 19) and an echo service (7):
    // answering would start an endless ping-pong.
    let srv = serve(
        &["echo=udp://127.0.0.1:0", "chat=udp://127.0.0.1:0"],
        Options::default(),
    );
    let (echo, chat) = (srv.addrs[0], srv.addrs[1]);
    let guarded = guarded_ports("127.0.0.2");
    let mut buf = [0u8; 64];
    for g in &guarded {
        g.send_to(b"loop me", echo).unwrap();
        assert!(
            g.recv_from(&mut buf).is_err(),
            "{:?} got a reply",
            g.local_addr()
        );
    }
    // The guard on *received* datagrams (the one on sends would stop the
    // echo anyway): a chat datagram from a guarded port makes no member
    // and is relayed to nobody. M, a member, hears N's marker next — not
    // a relay from port 7 or 19 before it.
    let (m, n) = (udp_client(), udp_client());
    m.send_to(b"hi", chat).unwrap();
    for g in &guarded {
        g.send_to(b"loop me", chat).unwrap();
    }
    n.send_to(b"marker", chat).unwrap();
    let (len, _) = m.recv_from(&mut buf).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&buf[..len]),
        format!("{}: marker", n.local_addr().unwrap()),
        "the next thing M hears"
    );
    // Dropped before any service saw them: frames are "hi" and "marker".
    assert_eq!(srv.counters.snapshot().frames_in, 2);
    // An ordinary port still gets its echo: the guard dropped only those.
    let u = udp_client();
    u.send_to(b"hi", echo).unwrap();
    assert_eq!(u.recv_from(&mut buf).unwrap().0, 2);
}

/// A server bound but not yet running: datagrams sent now wait in its
/// socket, so its first turn finds them all at once. Returns its address,
/// its counters, and the word to start.
fn bound_not_running(spec: &str) -> (SocketAddr, Counters, mpsc::Sender<()>) {
    let spec: ListenSpec = spec.parse().unwrap();
    let (tx, rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    thread::spawn(move || {
        let server = Server::bind(&[spec], Options::default()).expect("bind");
        let addr = server.listeners().next().unwrap().1.addr;
        tx.send((addr, server.counters())).unwrap();
        if go_rx.recv().is_ok() {
            server.run().expect("run");
        }
    });
    let (addr, counters) = rx.recv_timeout(WAIT).unwrap();
    (addr, counters, go_tx)
}

#[test]
fn datagrams_waiting_together_are_received_and_answered_in_batches() {
    let (addr, counters, go) = bound_not_running("upper=udp://127.0.0.1:0");
    // 100 small datagrams from one socket, interleaved with datagrams from
    // the guarded ports 7 and 19: the guard must hold inside a batch too.
    let u = udp_client();
    let guarded = guarded_ports("127.0.0.3");
    // 200 in all: the socket's default receive buffer holds about 256
    // small datagrams, and none may be lost to it.
    for i in 0..100 {
        u.send_to(format!("dgram {i}").as_bytes(), addr).unwrap();
        for g in guarded.iter().filter(|_| i % 2 == 0) {
            g.send_to(b"loop me", addr).unwrap();
        }
    }
    go.send(()).unwrap();
    let mut buf = [0u8; 64];
    for i in 0..100 {
        let (n, from) = u.recv_from(&mut buf).unwrap();
        assert_eq!(from, addr);
        assert_eq!(
            &buf[..n],
            format!("DGRAM {i}").as_bytes(),
            "in order, once each"
        );
    }
    for g in &guarded {
        assert!(g.recv_from(&mut buf).is_err(), "a guarded port got a reply");
    }
    // Everything was waiting when the loop first looked: 32 a call, so a
    // handful of receive calls and as many sends, not 100 of each.
    let s = counters.snapshot();
    let datagrams = 100 + 50 * guarded.len() as u64;
    assert_eq!(
        s.frames_in, 100,
        "the guarded ports' datagrams reached no service"
    );
    assert_eq!(
        s.bytes_in,
        (0..100)
            .map(|i| format!("dgram {i}").len() as u64)
            .sum::<u64>()
            + 7 * (datagrams - 100)
    );
    assert!(
        s.udp_recv_calls <= datagrams / 32 + 2,
        "{} receive calls for {datagrams} datagrams",
        s.udp_recv_calls
    );
    assert!(
        s.udp_send_calls <= s.udp_recv_calls,
        "{} send calls for {} receive calls",
        s.udp_send_calls,
        s.udp_recv_calls
    );
}

#[test]
fn a_burst_of_1000_datagrams_from_10_sockets_is_answered_once_each_in_order() {
    let srv = serve(&["echo=udp://127.0.0.1:0"], Options::default());
    let addr = srv.addrs[0];
    // Each socket keeps 16 in flight: 160 at once, well inside the
    // server's receive buffer, so none is lost to the kernel and each must
    // come back exactly once.
    let clients: Vec<_> = (0..10)
        .map(|c| {
            thread::spawn(move || {
                let u = udp_client();
                let msg = |i: usize| format!("{c}:{i:03}");
                let (mut sent, mut got) = (0, Vec::new());
                while sent < 16 {
                    u.send_to(msg(sent).as_bytes(), addr).unwrap();
                    sent += 1;
                }
                let mut buf = [0u8; 64];
                while got.len() < 100 {
                    let (n, _) = u.recv_from(&mut buf).expect("a reply within WAIT");
                    got.push(String::from_utf8(buf[..n].to_vec()).unwrap());
                    if sent < 100 {
                        u.send_to(msg(sent).as_bytes(), addr).unwrap();
                        sent += 1;
                    }
                }
                // Nothing more: no datagram answered twice.
                u.set_read_timeout(Some(Duration::from_millis(200)))
                    .unwrap();
                assert!(u.recv_from(&mut buf).is_err(), "socket {c}: an extra reply");
                assert_eq!(got, (0..100).map(msg).collect::<Vec<_>>(), "socket {c}");
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    let s = srv.counters.snapshot();
    assert_eq!(s.frames_in, 1000);
    assert_eq!(s.frames_out, 1000);
}
