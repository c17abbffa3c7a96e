//! Fan-out fairness: how much one chat member sending tiny lines to a big
//! room delays a client of *another* listener on the same server.
//!
//! `cargo bench --bench fanout_fairness` — knobs: FAIR_MEMBERS (200),
//! FAIR_RATE (bytes/s the talker sends, 100000), FAIR_SECS (5 per phase).
//!
//! One server (chat and count listeners, one loop) on a thread of this
//! process; the room's other members are drained by one mio reader thread;
//! the talker sends `x\n` lines at FAIR_RATE; a probe sends `ss\n` to
//! `count` and times each answer. The probe's latency is measured before
//! the talker starts and while it talks; the target is p99 during ≤ 10 ×
//! p99 before.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mio::{Events, Interest, Poll, Token};
use sockloop::{Options, Server};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Time `ss\n` → `2\n` round trips for `secs`; the histogram in µs.
fn probe(addr: SocketAddr, secs: u64) -> Histogram<u64> {
    let mut h = Histogram::<u64>::new(3).unwrap();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_nodelay(true).unwrap();
    let end = Instant::now() + Duration::from_secs(secs);
    let mut buf = [0u8; 2];
    while Instant::now() < end {
        let t = Instant::now();
        s.write_all(b"ss\n").unwrap();
        s.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"2\n");
        h.record(t.elapsed().as_micros() as u64).unwrap();
        thread::sleep(Duration::from_millis(1)); // a probe, not a load
    }
    h
}

fn main() {
    let members = env("FAIR_MEMBERS", 200) as usize;
    let rate = env("FAIR_RATE", 100_000);
    let secs = env("FAIR_SECS", 5);
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let specs = [
            "chat=tcp://127.0.0.1:0".parse().unwrap(),
            "count=tcp://127.0.0.1:0".parse().unwrap(),
        ];
        let server = Server::bind(&specs, Options::default()).unwrap();
        let addrs: Vec<SocketAddr> = server.listeners().map(|(_, e)| e.addr).collect();
        tx.send((addrs, server.counters())).unwrap();
        server.run().unwrap();
    });
    let (addrs, counters) = rx.recv().unwrap();
    let (chat, count) = (addrs[0], addrs[1]);

    // The room: members - 1 listeners drained by one thread, one talker.
    let stop = Arc::new(AtomicBool::new(false));
    let mut poll = Poll::new().unwrap();
    let mut socks = Vec::new();
    for i in 0..members - 1 {
        let s = TcpStream::connect(chat).unwrap();
        s.set_nonblocking(true).unwrap();
        let mut s = mio::net::TcpStream::from_std(s);
        poll.registry()
            .register(&mut s, Token(i), Interest::READABLE)
            .unwrap();
        socks.push(s);
    }
    let drained = {
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            let mut events = Events::with_capacity(1024);
            let mut buf = vec![0u8; 64 * 1024];
            let mut total = 0u64;
            while !stop.load(Ordering::Relaxed) {
                poll.poll(&mut events, Some(Duration::from_millis(50)))
                    .unwrap();
                for e in events.iter() {
                    // Drain until WouldBlock: edge-triggered.
                    while let Ok(n) = socks[e.token().0].read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        total += n as u64;
                    }
                }
            }
            total
        })
    };

    let before = probe(count, secs);
    let talker = {
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            let mut t = TcpStream::connect(chat).unwrap();
            // 10 ms worth of lines every 10 ms.
            let chunk = b"x\n".repeat((rate / 100 / 2) as usize);
            let mut next = Instant::now();
            let mut sent = 0u64;
            while !stop.load(Ordering::Relaxed) {
                t.write_all(&chunk).unwrap();
                sent += chunk.len() as u64;
                next += Duration::from_millis(10);
                thread::sleep(next.saturating_duration_since(Instant::now()));
            }
            sent
        })
    };
    thread::sleep(Duration::from_millis(500)); // let the talk reach full flow
    let during = probe(count, secs);
    stop.store(true, Ordering::Relaxed);
    let sent = talker.join().unwrap();
    let got = drained.join().unwrap();
    let c = counters.snapshot();
    let row = |name: &str, h: &Histogram<u64>| {
        println!(
            "| {name} | {} | {} | {} | {} |",
            h.value_at_quantile(0.5),
            h.value_at_quantile(0.99),
            h.max(),
            h.len()
        );
    };
    println!("fan-out fairness: {members}-member room, talker at {rate} B/s of 2-byte lines, probe on another listener");
    println!("| probe (count) | p50 µs | p99 µs | max µs | probes |");
    println!("|---|---|---|---|---|");
    row("before", &before);
    row("during", &during);
    println!(
        "p99 during / before: {:.2}; talker sent {sent} B; members received {got} B; peak work per turn {}; room pauses {}",
        during.value_at_quantile(0.99) as f64 / before.value_at_quantile(0.99).max(1) as f64,
        c.peak_turn_work,
        c.room_pauses
    );
}
