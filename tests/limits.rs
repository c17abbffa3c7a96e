//! Limits and survival: backpressure, idle timeout, connection cap, fd
//! exhaustion, abrupt peers, garbage input, graceful shutdown.

mod common;

use std::io::{BufRead, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use sockloop::Options;

#[test]
fn non_reading_client_is_held_to_the_write_buffer_while_others_are_served() {
    let write_buffer = 64 * 1024;
    let opts = Options {
        write_buffer,
        ..Options::default()
    };
    let srv = serve(&["echo=tcp://127.0.0.1:0"], opts);
    // A sends and never reads. Its writes stall once the server stops
    // reading (pending replies over --write-buffer) and every buffer fills.
    let hog = connect(srv.addrs[0]);
    hog.set_write_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut hog_w = hog.try_clone().unwrap();
    let chunk = vec![b'x'; 64 * 1024];
    let mut sent = 0usize;
    while sent < 50 << 20 {
        match hog_w.write(&chunk) {
            Ok(n) => sent += n,
            Err(_) => break, // timed out: the server is not reading
        }
    }
    assert!(
        sent < 50 << 20,
        "the server kept reading from a client that never reads"
    );
    // Meanwhile B is served as usual.
    let mut b = connect(srv.addrs[0]);
    b.write_all(b"still served\n").unwrap();
    assert_eq!(read_line(&mut b), "still served");
    // The server's own account: never more than --write-buffer plus one read.
    let peak = srv.counters.snapshot().peak_conn_pending;
    assert!(
        peak > 0 && peak <= (write_buffer + sockloop::server::READ_BUF) as u64,
        "peak {peak}"
    );
    drop(hog);
}

#[test]
fn idle_timeout_closes_the_idle_on_time_and_spares_the_active() {
    let idle_t = Duration::from_millis(300);
    let opts = Options {
        idle_timeout: Some(idle_t),
        ..Options::default()
    };
    let srv = serve(&["echo=tcp://127.0.0.1:0"], opts);
    let mut idle = connect(srv.addrs[0]);
    let mut active = connect(srv.addrs[0]);
    // Keep `active` busy (a tick every 50 ms, six per timeout) for more
    // than two timeouts' worth, on a thread of its own.
    let ticker = std::thread::spawn(move || {
        let start = Instant::now();
        while start.elapsed() < idle_t * 5 / 2 {
            active.write_all(b"tick\n").unwrap();
            assert_eq!(read_line(&mut active), "tick");
            std::thread::sleep(Duration::from_millis(50)); // pacing traffic, not synchronising
        }
        active
    });
    // The idle one's last traffic: its deadline starts in the turn that
    // read and answered this, between `sent` and `answered`.
    let sent = Instant::now();
    idle.write_all(b"x").unwrap();
    assert_eq!(read_n(&mut idle, 1), b"x");
    let answered = Instant::now();
    let (open, closed) = bracket(|| srv.counters.snapshot().closed >= 1);
    assert!(
        closed - sent >= idle_t - EARLY,
        "closed {:?} after its last traffic: early",
        closed - sent
    );
    assert!(
        open.saturating_duration_since(answered) <= idle_t + LATE,
        "still open {:?} after its last traffic: late",
        open - answered
    );
    eprintln!(
        "idle timeout: closed within [{:?}, {:?}] of its last traffic",
        open.saturating_duration_since(answered),
        closed - sent
    );
    assert!(closed_by_server(&mut idle), "idle connection closed");
    let mut active = ticker.join().unwrap();
    active.write_all(b"still here\n").unwrap();
    assert_eq!(read_line(&mut active), "still here");
    assert_eq!(srv.counters.snapshot().closed, 1, "only the idle one");
}

#[test]
fn max_conns_refuses_the_extra_connection_only() {
    let opts = Options {
        max_conns: 5,
        ..Options::default()
    };
    let srv = serve(&["count=tcp://127.0.0.1:0"], opts);
    let mut kept: Vec<TcpStream> = (0..5).map(|_| connect(srv.addrs[0])).collect();
    for c in &mut kept {
        c.write_all(b"s\n").unwrap();
        assert_eq!(read_line(c), "1");
    }
    let mut sixth = connect(srv.addrs[0]);
    assert_eq!(read_to_eof(&mut sixth), sockloop::server::MAX_CONNS_LINE);
    assert_eq!(srv.counters.snapshot().refused, 1);
    for c in &mut kept {
        c.write_all(b"ss\n").unwrap();
        assert_eq!(read_line(c), "2");
    }
    // A seat freed is a seat taken.
    drop(kept.pop());
    assert!(eventually(|| srv.counters.snapshot().open == 4));
    let mut again = connect(srv.addrs[0]);
    again.write_all(b"sss\n").unwrap();
    assert_eq!(read_line(&mut again), "3");
}

#[test]
fn reset_mid_stream_closes_only_that_connection() {
    let srv = serve(
        &["echo=tcp://127.0.0.1:0", "chat=tcp://127.0.0.1:0"],
        Options::default(),
    );
    let mut other = connect(srv.addrs[0]);
    for addr in [srv.addrs[0], srv.addrs[1]] {
        let rude = connect(addr);
        (&rude).write_all(&vec![b'y'; 100_000]).unwrap();
        // SO_LINGER 0: close() sends RST instead of FIN.
        socket2::SockRef::from(&rude)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(rude);
    }
    assert!(eventually(|| srv.counters.snapshot().closed == 2));
    other.write_all(b"fine\n").unwrap();
    assert_eq!(read_line(&mut other), "fine");
}

#[test]
fn connect_and_close_flood_leaves_nothing_behind() {
    let srv = serve(&["chat=tcp://127.0.0.1:0"], Options::default());
    for _ in 0..500 {
        drop(TcpStream::connect(srv.addrs[0]).unwrap());
    }
    assert!(eventually(|| {
        let s = srv.counters.snapshot();
        s.accepted == 500 && s.open == 0
    }));
    let mut c = connect(srv.addrs[0]);
    c.write_all(b"anyone\n").unwrap();
    let mut d = connect(srv.addrs[0]);
    assert_eq!(
        read_line(&mut c),
        format!("* {} joined", d.local_addr().unwrap())
    );
    d.write_all(b"me\n").unwrap();
    assert_eq!(
        read_line(&mut c),
        format!("{}: me", d.local_addr().unwrap())
    );
}

/// A small deterministic generator, so a failure can be replayed.
struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn random_bytes_to_every_service_never_kill_the_server() {
    let specs = [
        "upper=tcp://127.0.0.1:0",
        "echo=tcp://127.0.0.1:0",
        "count=tcp://127.0.0.1:0",
        "chat=tcp://127.0.0.1:0",
        "upper=tcp://127.0.0.1:0?framing=len32",
        "count=tcp://127.0.0.1:0?framing=len32",
        "chat=tcp://127.0.0.1:0?framing=raw",
        "upper=udp://127.0.0.1:0",
        "count=udp://127.0.0.1:0",
        "chat=udp://127.0.0.1:0",
    ];
    let opts = Options {
        max_frame: 1000,
        ..Options::default()
    };
    let srv = serve(&specs, opts);
    let mut rng = XorShift(0x5eed_1234_abcd_0001);
    let u = udp_client();
    for round in 0..20 {
        for (i, addr) in srv.addrs.iter().enumerate() {
            let len = (rng.next() % 5000) as usize;
            let junk: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            if specs[i].contains("udp") {
                u.send_to(&junk[..len.min(1400)], addr).unwrap();
            } else {
                let mut c = connect(*addr);
                let _ = c.write_all(&junk);
                if round % 2 == 0 {
                    let _ = c.shutdown(std::net::Shutdown::Write);
                    let _ = c.read_to_end(&mut Vec::new());
                }
            }
        }
    }
    // Every service still answers properly.
    let mut up = connect(srv.addrs[0]);
    up.write_all(b"alive\n").unwrap();
    assert_eq!(read_line(&mut up), "ALIVE");
    let mut count = connect(srv.addrs[2]);
    count.write_all(b"ss\n").unwrap();
    assert_eq!(read_line(&mut count), "2");
    let fresh = udp_client();
    fresh.send_to(b"sss", srv.addrs[8]).unwrap();
    let mut buf = [0u8; 16];
    let (n, _) = fresh.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"3");
}

// ---- against the built binary ---------------------------------------------

/// How many descriptors process `pid` has open.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("/proc/PID/fd")
        .count()
}

#[test]
fn accepting_pauses_when_out_of_descriptors_and_recovers() {
    // The server under a tiny descriptor limit: a dozen connections fill it.
    const LIMIT: usize = 24;
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        "ulimit -n 24 && exec \"$0\" \"$@\"",
        env!("CARGO_BIN_EXE_sockloop"),
    ]);
    cmd.env("RUST_LOG", "info"); // the episode's end is logged at info
    let mut srv = spawn_serve_with(cmd, &["--listen", "echo=tcp://127.0.0.1:0"]);
    let (addr, pid) = (srv.addrs[0], srv.child.id());
    let mut served = Vec::new();
    let waiting = loop {
        let mut c = connect(addr);
        c.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        c.write_all(b"ping\n").unwrap();
        let mut buf = [0u8; 5];
        match c.read_exact(&mut buf) {
            Ok(()) => served.push(c),
            // Not answered yet: either the server is out of descriptors
            // and this one waits in the kernel's backlog, its request
            // already sent — or the machine is slow. Only the first counts.
            Err(_) if open_fds(pid) >= LIMIT => break c,
            Err(_) => {
                c.set_read_timeout(Some(WAIT)).unwrap();
                c.read_exact(&mut buf).expect("answered, late");
                served.push(c);
            }
        }
        assert!(served.len() < 30, "the limit never bit");
    };
    assert!(!served.is_empty());
    // Free one descriptor: the waiting connection is accepted and its
    // request answered, without anyone reconnecting. That takes the last
    // free descriptor, so the very next accept says EMFILE even though
    // nobody waits (Linux allocates the descriptor first): still the same
    // episode, not a second one.
    drop(served.pop());
    let mut waiting = waiting;
    waiting.set_read_timeout(Some(WAIT)).unwrap();
    assert_eq!(read_n(&mut waiting, 5), b"ping\n");
    // Two more: now an accept finds a descriptor to spare; the episode ends.
    served.truncate(served.len() - 2);
    for c in &mut served {
        c.set_read_timeout(Some(WAIT)).unwrap();
        c.write_all(b"again\n").unwrap();
        assert_eq!(read_line(c), "again");
    }
    let mut late = connect(addr);
    late.write_all(b"late\n").unwrap();
    assert_eq!(read_line(&mut late), "late");
    // Closed first, so the shutdown does not wait out --grace for them.
    drop((served, waiting, late));
    srv.signal("TERM");
    assert_eq!(srv.wait(), 0);
    let log = srv.stderr();
    assert_eq!(
        log.matches("out of file descriptors").count(),
        1,
        "logged once per episode:\n{log}"
    );
    assert_eq!(
        log.matches("file descriptors available again").count(),
        1,
        "its end logged once:\n{log}"
    );
}

#[test]
fn sigterm_delivers_a_large_owed_reply_then_exits_0() {
    // Room for the whole reply in user space, and stats lines to know when
    // the server has read the whole request.
    let mut srv = spawn_serve(&[
        "--listen",
        "echo=tcp://127.0.0.1:0",
        "--write-buffer",
        "67108864",
        "--stats",
        "0.05",
    ]);
    let size = 16 << 20;
    let data: Vec<u8> = (0..size).map(|i| b'a' + (i % 26) as u8).collect();
    let client = connect(srv.addrs[0]);
    let mut reader = client.try_clone().unwrap();
    let writer = write_in_background(client, data.clone());
    // Wait until the server reports every byte read and replies pending.
    let mut err = std::io::BufReader::new(srv.child.stderr.take().unwrap());
    let want = format!("bytes_in={size} ");
    loop {
        let mut line = String::new();
        assert!(
            err.read_line(&mut line).unwrap() > 0,
            "server stderr closed"
        );
        if line.contains(&want) && !line.contains("pending_out=0") {
            break;
        }
    }
    writer.join().unwrap();
    srv.signal("TERM");
    // Everything owed, then EOF.
    assert!(
        read_to_eof(&mut reader) == data,
        "the whole reply before EOF"
    );
    assert_eq!(srv.wait(), 0);
}

#[test]
fn sigint_with_idle_clients_exits_promptly() {
    let mut srv = spawn_serve(&["--listen", "chat=tcp://127.0.0.1:0"]);
    let mut a = connect(srv.addrs[0]);
    let _b = connect(srv.addrs[0]);
    let _ = read_line(&mut a); // b joined: both accepted
    srv.signal("INT");
    // The server sends FIN at once; a client that closes in turn lets it
    // go without waiting out the grace period.
    assert!(closed_by_server(&mut a));
    drop(a);
    drop(_b);
    assert_eq!(srv.wait(), 0);
    // New connections are refused once it stopped accepting.
    assert!(TcpStream::connect(srv.addrs[0]).is_err());
}
