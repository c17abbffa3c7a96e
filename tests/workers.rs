//! `serve --workers N` (README, "Scaling out"): N loops on the same
//! addresses, chat one room, `--max-conns` the total, every worker stopped
//! by one signal with nothing owed lost.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc;
use std::thread;

use common::*;
use sockloop::{Counters, ListenSpec, Options, Stopper, Workers};

/// `Workers` running on a thread of this process (they are built there:
/// a worker is not Send).
fn workers(
    specs: &[&str],
    opts: Options,
    n: usize,
) -> (Vec<SocketAddr>, Counters, Stopper, thread::JoinHandle<()>) {
    let specs: Vec<ListenSpec> = specs.iter().map(|s| s.parse().unwrap()).collect();
    let (tx, rx) = mpsc::channel();
    let thread = thread::spawn(move || {
        let w = Workers::bind(&specs, opts, n).expect("bind");
        let addrs = w.listeners().map(|(_, e)| e.addr).collect();
        tx.send((addrs, w.counters(), w.stopper(), w.len()))
            .unwrap();
        w.run().expect("run");
    });
    let (addrs, counters, stopper, len) = rx.recv_timeout(WAIT).expect("workers started");
    assert_eq!(len, n);
    (addrs, counters, stopper, thread)
}

#[test]
fn both_workers_accept_and_tcp_and_udp_answer() {
    let (addrs, counters, stopper, thread) = workers(
        &["echo=tcp://127.0.0.1:0", "upper=udp://127.0.0.1:0"],
        Options::default(),
        2,
    );
    // 200 connections, one round trip each: each is accepted by one worker.
    let mut conns = Vec::new();
    for i in 0..200 {
        let mut c = connect(addrs[0]);
        c.write_all(format!("hello {i}\n").as_bytes()).unwrap();
        assert_eq!(read_line(&mut c), format!("hello {i}"));
        conns.push(c);
    }
    let per: Vec<u64> = counters.per_worker().iter().map(|s| s.accepted).collect();
    assert_eq!(per.iter().sum::<u64>(), 200, "{per:?}");
    assert!(
        per.iter().all(|&n| n > 0),
        "a worker accepted nothing: {per:?}"
    );
    assert_eq!(counters.snapshot().accepted, 200);
    // UDP from 20 sockets (20 source ports: the kernel's hash spreads them).
    for i in 0..20 {
        let u = udp_client();
        u.send_to(format!("dgram {i}").as_bytes(), addrs[1])
            .unwrap();
        let mut buf = [0u8; 32];
        let (n, from) = u.recv_from(&mut buf).unwrap();
        assert_eq!(
            (&buf[..n], from),
            (format!("DGRAM {i}").as_bytes(), addrs[1])
        );
    }
    let udp_in: Vec<u64> = counters.per_worker().iter().map(|s| s.frames_in).collect();
    assert_eq!(
        udp_in.iter().sum::<u64>(),
        220,
        "200 lines and 20 datagrams: {udp_in:?}"
    );
    // A Stopper stops them all; every connection gets a clean EOF.
    stopper.stop();
    for mut c in conns {
        assert!(read_to_eof(&mut c).is_empty());
    }
    thread.join().unwrap();
}

#[test]
fn max_conns_is_the_total_over_all_workers_and_a_closed_place_is_given_back() {
    let opts = Options {
        max_conns: 10,
        ..Options::default()
    };
    let (addrs, counters, stopper, thread) = workers(&["echo=tcp://127.0.0.1:0"], opts, 2);
    // Three rounds: a place a closed connection held is free again (a
    // worker that never gave it back would refuse everyone by round two).
    for round in 0..3 {
        let mut conns: Vec<_> = (0..30).map(|_| connect(addrs[0])).collect();
        let mut answered = 0;
        for c in &mut conns {
            // A refused connection was closed at once (or reset: our ping
            // met a closed socket).
            let _ = c.write_all(b"ping\n");
            let mut line = String::new();
            let _ = BufReader::new(&mut *c).read_line(&mut line);
            match line.as_str() {
                "ping\n" => answered += 1,
                "" => {}
                other => panic!("unexpected reply {other:?}"),
            }
        }
        assert_eq!(answered, 10, "round {round}: --max-conns 10 over 2 workers");
        drop(conns);
        assert!(
            eventually(|| counters.snapshot().open == 0),
            "round {round}: every connection closed"
        );
    }
    stopper.stop();
    thread.join().unwrap();
}

#[test]
fn chat_with_two_workers_is_one_room() {
    let srv = spawn_serve(&[
        "--listen",
        "chat=tcp://127.0.0.1:0",
        "--listen",
        "echo=tcp://127.0.0.1:0",
        "--workers",
        "2",
    ]);
    let mut members: Vec<_> = (0..3).map(|_| connect(srv.addrs[0])).collect();
    for (i, who) in ["alice", "bob", "carol"].iter().enumerate() {
        let said = format!("{who} was here");
        members[i]
            .write_all(format!("{said}\n").as_bytes())
            .unwrap();
        for (k, m) in members.iter_mut().enumerate() {
            if k == i {
                continue;
            }
            // Join notices may come first; then the line, prefixed by the
            // sender's address.
            loop {
                let line = read_line(m);
                if line.starts_with("* ") {
                    continue;
                }
                assert!(
                    line.ends_with(&format!(": {said}")),
                    "member {k} got {line:?}"
                );
                break;
            }
        }
    }
}

/// The byte at offset `i` of client `c`'s stream.
fn pattern(c: usize, i: usize) -> u8 {
    b'a' + ((c + i) % 26) as u8
}

#[test]
fn sigterm_delivers_what_both_workers_owe_and_exits_0() {
    let mut srv = spawn_serve(&[
        "--listen",
        "echo=tcp://127.0.0.1:0",
        "--workers",
        "2",
        "--grace",
        "20",
        "--stats",
        "0.05",
    ]);
    let mut err = BufReader::new(srv.child.stderr.take().unwrap());
    // 16 clients each send 2 MB and read nothing until the signal: the
    // server owes each of them replies (held, or in socket buffers).
    const EACH: usize = 2 << 20;
    let clients: Vec<_> = (0..16)
        .map(|c| {
            let s = connect(srv.addrs[0]);
            let reader = s.try_clone().unwrap();
            let data: Vec<u8> = (0..EACH).map(|i| pattern(c, i)).collect();
            (reader, write_in_background_lossy(s, data))
        })
        .collect();
    // SIGTERM once the server has read a good part of it.
    loop {
        let mut line = String::new();
        assert!(
            err.read_line(&mut line).unwrap() > 0,
            "server stderr closed"
        );
        if line.starts_with("stats:") && stat(&line, "bytes_in") >= (16 * EACH / 4) as u64 {
            break;
        }
    }
    srv.signal("TERM");
    let mut total = 0u64;
    for (c, (mut reader, writer)) in clients.into_iter().enumerate() {
        let mut got = Vec::new();
        reader
            .read_to_end(&mut got)
            .unwrap_or_else(|e| panic!("client {c}: broken after {} bytes: {e}", got.len()));
        assert!(
            got.iter().enumerate().all(|(i, &b)| b == pattern(c, i)),
            "client {c}: replies are the start of its stream, in order"
        );
        total += got.len() as u64;
        drop(writer.join());
    }
    assert_eq!(srv.wait(), 0);
    // The last stats line: every byte the workers wrote arrived, and both
    // workers had clients.
    let last = last_stats_line(&mut err);
    assert_eq!(stat(&last, "bytes_out"), total, "{last}");
    let spread = last
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("accepted_per_worker="))
        .unwrap_or_else(|| panic!("no accepted_per_worker in {last}"));
    let per: Vec<u64> = spread.split('/').map(|n| n.parse().unwrap()).collect();
    assert_eq!(per.len(), 2, "{last}");
    assert!(per.iter().all(|&n| n > 0), "a worker had no client: {last}");
}

/// Write `data` on another thread; the server may stop reading it (after
/// the signal it reads and discards, and closes at the end of --grace).
fn write_in_background_lossy(mut s: std::net::TcpStream, data: Vec<u8>) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let _ = s.write_all(&data);
        let _ = s.shutdown(std::net::Shutdown::Write);
    })
}

#[test]
fn workers_must_be_between_1_and_1024() {
    for bad in ["0", "1025", "two"] {
        let out = bin().args(["serve", "--workers", bad]).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "--workers {bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--workers"), "{err}");
    }
}

#[test]
fn a_udp_peer_is_answered_by_one_worker() {
    // The kernel's hash keeps one peer on one worker: 100 datagrams from
    // one socket are answered in order.
    let (addrs, counters, stopper, thread) =
        workers(&["echo=udp://127.0.0.1:0"], Options::default(), 2);
    let u: UdpSocket = udp_client();
    for i in 0..100 {
        u.send_to(format!("{i}").as_bytes(), addrs[0]).unwrap();
        let mut buf = [0u8; 8];
        let (n, _) = u.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], format!("{i}").as_bytes());
    }
    let per: Vec<u64> = counters.per_worker().iter().map(|s| s.frames_in).collect();
    assert!(per.contains(&100) && per.contains(&0), "{per:?}");
    stopper.stop();
    thread.join().unwrap();
}

#[test]
fn workers_never_join_another_servers_port() {
    // SO_REUSEPORT would let a second `serve --workers 2` on the same port
    // join the first one's group and silently take half its clients. It
    // must fail as a plain bind would: address in use, exit 1.
    let first = spawn_serve(&[
        "--listen",
        "echo=tcp://127.0.0.1:0",
        "--listen",
        "echo=udp://127.0.0.1:0",
        "--workers",
        "2",
    ]);
    for (i, proto) in ["tcp", "udp"].iter().enumerate() {
        let spec = format!("echo={proto}://{}", first.addrs[i]);
        let mut second = bin()
            .args(["serve", "--listen", &spec, "--workers", "2"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let end = std::time::Instant::now() + WAIT;
        while second.try_wait().unwrap().is_none() {
            if std::time::Instant::now() > end {
                let _ = second.kill();
                panic!("{spec}: the second server bound the first one's port and serves");
            }
            thread::sleep(std::time::Duration::from_millis(20));
        }
        let out = second.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{spec}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("in use") && err.contains(&first.addrs[i].to_string()),
            "{spec}: {err}"
        );
    }
}

/// A service of one's own on several cores: `Workers::bind_with` makes
/// each worker's service with the factory, and every worker serves.
#[test]
fn workers_run_a_custom_service_made_per_worker() {
    use sockloop::service::{ConnId, Outbox, Service};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// Answers each line with the number of the worker it runs in.
    struct Tagged(usize);
    impl Service for Tagged {
        fn on_frame(&mut self, _: ConnId, _: SocketAddr, frame: &[u8], out: &mut Outbox) {
            out.reply(format!("worker {}: {}", self.0, String::from_utf8_lossy(frame)).as_bytes());
        }
    }

    let made = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&made);
    let (tx, rx) = mpsc::channel();
    let thread = thread::spawn(move || {
        let specs = ["tagged=tcp://127.0.0.1:0".parse().unwrap()];
        let w = Workers::bind_with(&specs, Options::default(), 2, move |spec| {
            assert_eq!(spec.service, "tagged");
            Box::new(Tagged(count.fetch_add(1, Ordering::SeqCst))) as Box<dyn Service>
        })
        .expect("bind");
        tx.send((w.listeners().next().unwrap().1.addr, w.stopper()))
            .unwrap();
        w.run().expect("run");
    });
    let (addr, stopper) = rx.recv_timeout(WAIT).expect("workers started");
    assert_eq!(made.load(Ordering::SeqCst), 2, "one service per worker");
    let mut seen = std::collections::BTreeSet::new();
    // 64 connections: the kernel's hash puts all on one worker with
    // probability 2^-63.
    for _ in 0..64 {
        let mut c = connect(addr);
        c.write_all(b"hi\n").unwrap();
        let line = read_line(&mut c);
        let (tag, rest) = line.split_once(": ").unwrap();
        assert_eq!(rest, "hi");
        seen.insert(tag.to_string());
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        ["worker 0", "worker 1"],
        "both workers serve the custom service"
    );
    stopper.stop();
    thread.join().unwrap();
}
