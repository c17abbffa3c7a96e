//! `/metrics` and the counters behind it: every counter moves as the
//! traffic that should move it (and only on its own listener), the
//! exposition says what the library says, and the HTTP side answers 200,
//! 404, 405, 431 and closes (docs/protocol.md, "Metrics").

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use sockloop::stats::ListenerStats;
use sockloop::{Counters, Options};

/// One HTTP exchange: send `request`, read the answer to EOF (the server
/// closes after every answer).
fn http(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = connect(addr);
    s.write_all(request).unwrap();
    String::from_utf8(read_to_eof(&mut s)).expect("utf8 answer")
}

/// `GET /metrics`: the body, after checking the head.
fn scrape(addr: SocketAddr) -> String {
    let r = http(addr, b"GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n");
    let (head, body) = r.split_once("\r\n\r\n").expect("a head");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.contains("\r\nContent-Type: text/plain; version=0.0.4\r\n"),
        "{head}"
    );
    assert!(head.contains(&format!("\r\nContent-Length: {}\r\n", body.len())));
    body.to_string()
}

/// The value of the one sample `name{…labels…}` whose labels contain
/// `labels` (`""`: a sample without labels).
fn sample(body: &str, name: &str, labels: &str) -> f64 {
    let hits: Vec<f64> = body
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (n, ls) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let wanted = if labels.is_empty() {
                ls.is_empty()
            } else {
                ls.contains(labels)
            };
            (n == name && wanted).then(|| value.parse().unwrap())
        })
        .collect();
    assert_eq!(hits.len(), 1, "{name}{{{labels}}}: {hits:?} in\n{body}");
    hits[0]
}

fn label(proto: &str, addr: SocketAddr) -> String {
    format!("proto=\"{proto}\",addr=\"{addr}\"")
}

/// Listener `i`'s counters (in --listen order).
fn of(c: &Counters, i: usize) -> ListenerStats {
    c.per_listener()[i].1
}

#[test]
fn tcp_counters_move_with_connections_bytes_and_frames_on_their_listener_only() {
    let srv = serve(
        &[
            "echo=tcp://127.0.0.1:0",
            "count=tcp://127.0.0.1:0",
            "metrics=tcp://127.0.0.1:0",
        ],
        Options::default(),
    );
    let (echo, count, metrics) = (srv.addrs[0], srv.addrs[1], srv.addrs[2]);
    let c = &srv.counters;
    assert_eq!(of(c, 0), ListenerStats::default());
    const N: usize = 20;
    let mut conns: Vec<TcpStream> = (0..N).map(|_| connect(echo)).collect();
    for s in &mut conns {
        s.write_all(&[b'x'; 100]).unwrap();
        assert_eq!(read_n(s, 100), vec![b'x'; 100]);
    }
    // The loop counts a write after it returns: the reply may be read first.
    assert!(
        eventually(|| of(c, 0).bytes_out == 100 * N as u64),
        "{:?}",
        of(c, 0)
    );
    let e = of(c, 0);
    assert_eq!((e.accepted, e.open, e.closed), (N as u64, N as u64, 0));
    assert_eq!(e.bytes_in, 100 * N as u64);
    assert!(
        e.frames_in >= N as u64 && e.frames_out == e.frames_in,
        "{e:?}"
    );
    assert!(e.peak_conn_pending >= 1 && e.peak_turn_work >= 1, "{e:?}");
    assert_eq!(e.pending_out, 0);
    // Nothing of it on the other listeners.
    assert_eq!(of(c, 1), ListenerStats::default());
    drop(conns);
    assert!(eventually(
        || of(c, 0).closed == N as u64 && of(c, 0).open == 0
    ));

    let mut s = connect(count);
    s.write_all(b"s\nss\nsss\nssss\nno").unwrap();
    assert_eq!(read_n(&mut s, 8), b"1\n2\n3\n4\n");
    assert!(eventually(|| of(c, 1).bytes_out == 8));
    let k = of(c, 1);
    assert_eq!((k.frames_in, k.frames_out, k.bytes_in), (4, 4, 16));
    assert!(
        k.peak_held_input >= 2,
        "the incomplete frame 'no' is held: {k:?}"
    );

    // The exposition says what the library says.
    let body = scrape(metrics);
    let e = of(c, 0);
    let l = label("tcp", echo);
    assert_eq!(
        sample(&body, "sockloop_connections_accepted_total", &l),
        e.accepted as f64
    );
    assert_eq!(
        sample(&body, "sockloop_connections_closed_total", &l),
        e.closed as f64
    );
    assert_eq!(
        sample(&body, "sockloop_received_bytes_total", &l),
        e.bytes_in as f64
    );
    assert_eq!(
        sample(&body, "sockloop_sent_bytes_total", &l),
        e.bytes_out as f64
    );
    let l = label("tcp", count);
    assert_eq!(sample(&body, "sockloop_frames_received_total", &l), 4.0);
    assert_eq!(sample(&body, "sockloop_connections_open", &l), 1.0);
    // The scrape itself is a connection of the metrics listener.
    assert_eq!(
        sample(
            &body,
            "sockloop_connections_accepted_total",
            &label("tcp", metrics)
        ),
        1.0
    );
    assert!(!body.contains("worker="), "one loop: no worker label");
}

#[test]
fn udp_counters_move_with_datagrams() {
    let srv = serve(&["echo=udp://127.0.0.1:0"], Options::default());
    let (addr, c) = (srv.addrs[0], &srv.counters);
    let u = udp_client();
    const M: u64 = 30;
    let mut buf = [0u8; 64];
    for i in 0..M {
        u.send_to(format!("datagram{i:02}").as_bytes(), addr)
            .unwrap();
        assert_eq!(u.recv(&mut buf).unwrap(), 10);
    }
    assert!(
        eventually(|| of(c, 0).udp_datagrams_out == M),
        "{:?}",
        of(c, 0)
    );
    let s = of(c, 0);
    assert_eq!((s.udp_datagrams_in, s.udp_datagrams_out), (M, M));
    assert_eq!((s.frames_in, s.frames_out), (M, M));
    assert_eq!((s.bytes_in, s.bytes_out), (10 * M, 10 * M));
    assert!(s.udp_recv_calls >= 1 && s.udp_recv_calls <= 2 * M, "{s:?}");
    assert!(s.udp_send_calls >= 1 && s.udp_send_calls <= M, "{s:?}");
    assert_eq!((s.accepted, s.udp_relays_dropped), (0, 0));
}

#[test]
fn refused_frame_timeouts_and_timers_are_counted_and_max_conns_applies_to_metrics() {
    let opts = Options {
        max_conns: 2,
        frame_timeout: Some(Duration::from_millis(200)),
        ..Options::default()
    };
    let srv = serve(
        &["count=tcp://127.0.0.1:0", "metrics=tcp://127.0.0.1:0"],
        opts,
    );
    let (count, metrics, c) = (srv.addrs[0], srv.addrs[1], &srv.counters);
    let mut a = connect(count);
    let b = connect(count);
    assert!(eventually(|| of(c, 0).open == 2));
    // Past --max-conns, a scrape is refused like any connection.
    let mut m = connect(metrics);
    assert!(closed_by_server(&mut m));
    assert!(eventually(|| of(c, 1).refused == 1));
    assert_eq!(of(c, 0).refused, 0);
    drop(b);
    assert!(eventually(|| of(c, 0).open == 1));
    // A frame that never completes: --frame-timeout.
    let fired = c.snapshot().timers_fired;
    a.write_all(b"sss").unwrap();
    assert_eq!(read_line(&mut a), "ERR frame timeout");
    assert!(closed_by_server(&mut a));
    assert_eq!(of(c, 0).frame_timeouts, 1);
    assert!(c.snapshot().timers_fired > fired);
    let body = scrape(metrics);
    assert_eq!(
        sample(&body, "sockloop_frame_timeouts_total", &label("tcp", count)),
        1.0
    );
    assert_eq!(
        sample(
            &body,
            "sockloop_connections_refused_total",
            &label("tcp", metrics)
        ),
        1.0
    );
}

#[test]
fn chat_pauses_and_slow_cuts_are_counted_on_the_room() {
    let opts = Options {
        write_buffer: 64 * 1024,
        slow_timeout: Duration::from_millis(300),
        ..Options::default()
    };
    let srv = serve(&["chat=tcp://127.0.0.1:0", "echo=tcp://127.0.0.1:0"], opts);
    let (addr, c) = (srv.addrs[0], &srv.counters);
    // A member that reads nothing, with a tiny window.
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.set_recv_buffer_size(4096).unwrap();
    s.connect(&addr.into()).unwrap();
    let mut stuck = TcpStream::from(s);
    let talker = connect(addr);
    assert!(eventually(|| of(c, 0).open == 2));
    let line = [&[b'x'; 999][..], b"\n"].concat();
    let stop = Arc::new(AtomicBool::new(false));
    let stop_writer = Arc::clone(&stop);
    let writer = thread::spawn(move || {
        let mut t = talker;
        while !stop_writer.load(Ordering::Relaxed) && t.write_all(&line).is_ok() {}
    });
    assert!(eventually(|| of(c, 0).slow_cut == 1));
    stop.store(true, Ordering::Relaxed);
    let r = of(c, 0);
    assert!(r.room_pauses >= 1, "{r:?}");
    // Paused from the pause until the cut, at least --slow-timeout.
    assert!(r.room_paused_ms >= 250, "{r:?}");
    assert_eq!(of(c, 1), ListenerStats::default());
    assert!(closed_by_server(&mut stuck));
    writer.join().unwrap();
}

#[test]
fn loop_health_counts_turns_busy_time_and_events() {
    let started = Instant::now();
    let srv = serve(&["echo=tcp://127.0.0.1:0"], Options::default());
    let c = &srv.counters;
    let mut s = connect(srv.addrs[0]);
    for _ in 0..50 {
        s.write_all(b"ping").unwrap();
        assert_eq!(read_n(&mut s, 4), b"ping");
    }
    // A snapshot is read field by field: wait for the turn under way to end.
    assert!(eventually(|| {
        let h = c.snapshot();
        h.turn_ns.count() == h.turns && h.events.count() == h.turns && h.busy_ns == h.turn_ns.sum
    }));
    let h = c.snapshot();
    let elapsed = started.elapsed().as_nanos() as u64;
    // Each round trip is at least one turn with an event.
    assert!(h.turns >= 50, "{h:?}");
    assert_eq!(h.turn_ns.count(), h.turns);
    assert_eq!(h.events.count(), h.turns);
    assert!(h.events.sum >= 50, "{h:?}");
    // Busy is the turns' time: more than nothing, less than the wall clock.
    assert_eq!(h.busy_ns, h.turn_ns.sum);
    assert!(
        h.busy_ns > 0 && h.busy_ns < elapsed,
        "{h:?} in {elapsed} ns"
    );
    assert_eq!(c.per_loop().len(), 1);
    // Idle, the loop sleeps: turns stop.
    let before = c.snapshot().turns;
    thread::sleep(Duration::from_millis(200)); // nothing to synchronise with: it is the idleness tested
    assert!(c.snapshot().turns <= before + 2);
}

#[test]
fn other_paths_404_other_methods_405_heads_over_8_kib_431_each_then_closed() {
    let srv = serve(&["metrics=tcp://127.0.0.1:0"], Options::default());
    let m = srv.addrs[0];
    let r = http(m, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(r.starts_with("HTTP/1.1 404 Not Found\r\n"), "{r}");
    let r = http(m, b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    assert!(r.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"), "{r}");
    assert!(r.contains("\r\nAllow: GET\r\n"), "{r}");
    let r = http(m, b"HEAD /metrics HTTP/1.1\r\n\r\n");
    assert!(r.starts_with("HTTP/1.1 405 "), "{r}");
    // A head over 8 KiB, never finished: answered as soon as it is known,
    // then closed (read_to_eof returns only at the server's close).
    let mut big = b"GET /metrics HTTP/1.1\r\nX-Pad: ".to_vec();
    big.resize(8 * 1024 + 100, b'a');
    let r = http(m, &big);
    assert!(
        r.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
        "{r}"
    );
    // A head in pieces is waited for.
    let mut s = connect(m);
    for part in [
        &b"GET /met"[..],
        b"rics HTTP/1.1\r\n",
        b"Host: x\r\n",
        b"\r\n",
    ] {
        s.write_all(part).unwrap();
        thread::sleep(Duration::from_millis(20)); // pacing: separate reads
    }
    let r = String::from_utf8(read_to_eof(&mut s)).unwrap();
    assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
    assert!(r.contains("sockloop_connections_accepted_total"));
    assert!(eventually(|| of(&srv.counters, 0).open == 0));
}

#[test]
fn an_unfinished_head_is_closed_by_frame_timeout() {
    let opts = Options {
        frame_timeout: Some(Duration::from_millis(300)),
        ..Options::default()
    };
    let srv = serve(&["metrics=tcp://127.0.0.1:0"], opts);
    let mut s = connect(srv.addrs[0]);
    let t = Instant::now();
    s.write_all(b"GET /metrics HTTP/1.1\r\n").unwrap();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    let waited = t.elapsed();
    assert!(rest.is_empty(), "no answer to half a request");
    // --frame-timeout is enforced by the deadline timer (docs: within 100 ms).
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_millis(1500),
        "{waited:?}"
    );
    assert_eq!(of(&srv.counters, 0).frame_timeouts, 1);
}

#[test]
fn metrics_over_udp_or_with_a_framing_is_a_usage_error() {
    for spec in [
        "metrics=udp://127.0.0.1:0",
        "metrics=tcp://127.0.0.1:0?framing=line",
    ] {
        let out = bin().args(["serve", "--listen", spec]).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{spec}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.starts_with("error:") && err.contains("metrics"),
            "{err}"
        );
    }
}

#[test]
fn a_nested_server_counts_its_turns_through_the_same_handle() {
    let spec = "echo=tcp://127.0.0.1:0".parse().unwrap();
    let server = sockloop::Server::bind(&[spec], Options::default()).unwrap();
    let addr = server.listeners().next().unwrap().1.addr;
    let mut nested = sockloop::Nested::new(server).unwrap();
    let c: Counters = nested.counters();
    let mut s = connect(addr);
    s.set_nonblocking(true).unwrap();
    s.write_all(b"hi").unwrap();
    let (mut got, mut buf, end) = (Vec::new(), [0u8; 16], Instant::now() + WAIT);
    while got.len() < 2 {
        assert!(Instant::now() < end, "no echo from the nested server");
        nested.turn(Duration::from_millis(10)).unwrap();
        if let Ok(n) = s.read(&mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
    }
    assert_eq!(got, b"hi");
    let h = c.snapshot();
    assert_eq!(h.accepted, 1);
    assert!(h.turns >= 1 && h.turn_ns.count() == h.turns, "{h:?}");
    assert!(h.events.sum >= 2, "the accept and the read: {h:?}");
}
