//! Chat rooms and slow readers: the room moves at the pace of its slowest
//! reader, a reader that keeps up is never cut, and a member stuck above
//! --write-buffer for --slow-timeout is (README, "Chat rooms and slow
//! readers").

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use sockloop::server::READ_BUF;
use sockloop::Options;

const HW: usize = 64 * 1024;
const MAX_FRAME: usize = 4096;

fn opts(slow_ms: u64) -> Options {
    Options {
        write_buffer: HW,
        max_frame: MAX_FRAME,
        slow_timeout: Duration::from_millis(slow_ms),
        ..Options::default()
    }
}

fn me(s: &TcpStream) -> String {
    s.local_addr().unwrap().to_string()
}

/// A member that reads nothing, with a tiny receive window, so what it
/// does not read backs up into the server at once.
fn non_reader(addr: SocketAddr) -> TcpStream {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.set_recv_buffer_size(4096).unwrap();
    s.connect(&addr.into()).unwrap();
    let s = TcpStream::from(s);
    s.set_read_timeout(Some(WAIT)).unwrap();
    s
}

/// The memory bound README states: --write-buffer plus what one read fans
/// out (at most 64 KiB read plus one held frame, each line with its
/// `ip:port: ` prefix — under 3 % more for these 1,000-byte lines).
fn bound() -> u64 {
    (HW + (READ_BUF + MAX_FRAME + 4) * 103 / 100) as u64
}

/// `n` lines of `len` bytes, line i starting with its number.
fn lines(n: usize, len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(n * (len + 1));
    for i in 0..n {
        let start = v.len();
        write!(v, "{i:08} ").unwrap();
        v.resize(start + len, b'x');
        v.push(b'\n');
    }
    v
}

/// Read lines until `want` lines from `from` arrived (checking each is the
/// next one), skipping announcements; returns the other lines seen.
fn read_lines_from(
    r: &mut BufReader<TcpStream>,
    from: &str,
    want: usize,
    len: usize,
) -> Vec<String> {
    let prefix = format!("{from}: ");
    let mut others = Vec::new();
    let mut got = 0;
    let mut line = String::new();
    while got < want {
        line.clear();
        let n = r.read_line(&mut line).expect("reader's read");
        assert!(n > 0, "the reader was cut off after {got} of {want} lines");
        let l = line.trim_end_matches('\n');
        if let Some(body) = l.strip_prefix(&prefix) {
            assert_eq!(body.len(), len, "line {got}");
            assert_eq!(&body[..8], format!("{got:08}"), "lines in order");
            got += 1;
        } else {
            others.push(l.to_string());
        }
    }
    others
}

#[test]
fn a_reader_that_keeps_up_gets_every_line_while_a_stuck_one_is_cut() {
    let slow_ms = 500;
    let srv = serve(&["chat=tcp://127.0.0.1:0"], opts(slow_ms));
    let addr = srv.addrs[0];
    const N: usize = 20_000;
    const LEN: usize = 999; // 1,000 bytes with the newline
    let data = lines(N, LEN);
    for run in 0..10u64 {
        let b = connect(addr);
        let mut b = BufReader::new(b);
        let c = non_reader(addr);
        let c_addr = me(&c);
        let a = connect(addr);
        let a_addr = me(&a);
        // B hears C, then A, join: the room is set before A talks.
        let mut l = String::new();
        b.read_line(&mut l).unwrap();
        assert_eq!(l.trim_end(), format!("* {c_addr} joined"));
        l.clear();
        b.read_line(&mut l).unwrap();
        assert_eq!(l.trim_end(), format!("* {a_addr} joined"));

        let reader = thread::spawn(move || read_lines_from(&mut b, &a_addr, N, LEN));
        let start = Instant::now();
        let writer = write_in_background(a, data.clone());
        // C is cut within --slow-timeout + 1 s of falling behind (it never
        // read, so it fell behind as A began).
        assert!(eventually(|| srv.counters.snapshot().slow_cut == run + 1));
        let took = start.elapsed();
        assert!(
            took <= Duration::from_millis(slow_ms + 1000),
            "run {run}: C cut after {took:?}"
        );
        let others = reader.join().expect("B received all 20,000 lines");
        assert!(
            others.contains(&format!("* {c_addr} left")),
            "run {run}: B heard C leave: {others:?}"
        );
        drop(writer.join().unwrap());
        drop(c);
        let peak = srv.counters.snapshot().peak_conn_pending;
        assert!(
            peak <= bound(),
            "run {run}: peak {peak} over the bound {}",
            bound()
        );
    }
}

#[test]
fn a_reader_of_1_kib_a_second_is_cut_after_slow_timeout() {
    let srv = serve(&["chat=tcp://127.0.0.1:0"], opts(1000));
    let addr = srv.addrs[0];
    let mut r = BufReader::new(connect(addr));
    let mut slow = non_reader(addr);
    let slow_addr = me(&slow);
    let a = connect(addr);
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let done = Arc::new(AtomicBool::new(false));
    let slow_done = Arc::clone(&done);
    let sender = thread::spawn(move || {
        let mut a = a;
        let line = lines(1, 999);
        // Talk until told to stop (or the room has no more patience for us).
        while stop_rx.try_recv().is_err() {
            if a.write_all(&line).is_err() {
                break;
            }
        }
    });
    let slow_reader = thread::spawn(move || {
        let mut buf = [0u8; 1024];
        // 1 KiB a second: reading, but far slower than the room talks.
        // (Once cut, what the kernel still holds for it would take minutes
        // at this pace: the test stops it.)
        while !slow_done.load(Ordering::Relaxed) {
            match slow.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(_) => thread::sleep(Duration::from_secs(1)), // pacing, not synchronising
            }
        }
    });
    let mut l = String::new();
    loop {
        l.clear();
        assert!(r.read_line(&mut l).unwrap() > 0, "the fast reader was cut");
        if l.trim_end() == format!("* {slow_addr} left") {
            break;
        }
    }
    assert_eq!(srv.counters.snapshot().slow_cut, 1);
    done.store(true, Ordering::Relaxed);
    stop_tx.send(()).unwrap();
    sender.join().unwrap();
    slow_reader.join().unwrap();
}

#[test]
fn a_reader_that_pauses_less_than_slow_timeout_is_not_cut() {
    // Also pins "no paused sender is forgotten": A is the only talker, so
    // A receives nothing and nobody leaves — when the pauser drains, only
    // the room's list of paused senders can wake A's unread input
    // (edge-triggered readiness will not report it again).
    let srv = serve(&["chat=tcp://127.0.0.1:0"], opts(1500));
    let addr = srv.addrs[0];
    let pauser = non_reader(addr);
    let a = connect(addr);
    let a_addr = me(&a);
    // Enough that the kernel's socket buffers cannot absorb it all.
    const N: usize = 20_000;
    let writer = write_in_background(a, lines(N, 999));
    let mut p = BufReader::new(pauser);
    // Let the room back up behind it, then read everything.
    assert!(eventually(|| srv.counters.snapshot().room_pauses >= 1));
    thread::sleep(Duration::from_millis(300)); // pacing: a pause shorter than --slow-timeout
    let others = read_lines_from(&mut p, &a_addr, N, 999);
    assert_eq!(others, vec![format!("* {a_addr} joined")]);
    assert_eq!(srv.counters.snapshot().slow_cut, 0);
    drop(writer.join().unwrap());
}

#[test]
fn three_senders_go_on_after_the_slow_member_is_cut() {
    let srv = serve(&["chat=tcp://127.0.0.1:0"], opts(500));
    let addr = srv.addrs[0];
    let r = connect(addr);
    let stuck = non_reader(addr);
    let senders: Vec<TcpStream> = (0..3).map(|_| connect(addr)).collect();
    let names: Vec<String> = senders.iter().map(me).collect();
    // 30 MB in all: more than the stuck member's socket buffers can take,
    // so it falls behind and is cut while the senders talk.
    const N: usize = 10_000;
    const LEN: usize = 999;
    let data = lines(N, LEN);
    let reader = thread::spawn(move || {
        let mut r = BufReader::new(r);
        let mut got = [0usize; 3];
        let mut next = [0usize; 3];
        let mut line = String::new();
        while got.iter().sum::<usize>() < 3 * N {
            line.clear();
            assert!(r.read_line(&mut line).unwrap() > 0, "reader cut: {got:?}");
            let l = line.trim_end();
            if let Some(i) = names.iter().position(|n| l.starts_with(&format!("{n}: "))) {
                let body = &l[names[i].len() + 2..];
                assert_eq!(&body[..8], format!("{:08}", next[i]));
                next[i] += 1;
                got[i] += 1;
            }
        }
        got
    });
    // Senders are members too, and read the room like any live client
    // (a member that never reads is cut, sender or not).
    for s in &senders {
        let mut r = s.try_clone().unwrap();
        thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            while matches!(r.read(&mut buf), Ok(n) if n > 0) {}
        });
    }
    let writers: Vec<_> = senders
        .into_iter()
        .map(|s| write_in_background(s, data.clone()))
        .collect();
    assert_eq!(
        reader.join().unwrap(),
        [N; 3],
        "each sender's lines all arrived"
    );
    assert_eq!(srv.counters.snapshot().slow_cut, 1);
    for w in writers {
        drop(w.join().unwrap());
    }
    drop(stuck);
    assert!(srv.counters.snapshot().peak_conn_pending <= bound());
}

#[test]
fn a_sender_paused_by_the_room_is_resumed_and_heard() {
    // S talks until the room has paused it and its socket is full, then
    // goes quiet: no new input will ever raise an event for S again. When
    // the member that held the room drains, only the room's list of the
    // senders it paused can take up what S's socket still holds.
    let srv = serve(&["chat=tcp://127.0.0.1:0"], opts(5000));
    let addr = srv.addrs[0];
    let mut b = BufReader::new(connect(addr));
    let pauser = non_reader(addr);
    let mut s = connect(addr);
    let s_addr = me(&s);
    let mut l = String::new();
    b.read_line(&mut l).unwrap(); // the pauser joined
    l.clear();
    b.read_line(&mut l).unwrap();
    assert_eq!(l.trim_end(), format!("* {s_addr} joined"));
    s.set_write_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let data = lines(50_000, 999);
    let mut sent = 0;
    loop {
        match s.write(&data[sent..(sent + 16 * 1024).min(data.len())]) {
            Ok(n) => sent += n,
            // Blocked for 200 ms: the server stopped reading S. Quiet from
            // here on, once the room is paused (not merely slow).
            Err(_) if srv.counters.snapshot().room_pauses >= 1 => break,
            Err(_) => {}
        }
        assert!(sent < data.len(), "the room never paused S");
    }
    let whole = sent / 1000;
    // S's input is not all read: without a resume, the rest stays there.
    let taken = srv.counters.snapshot().frames_in;
    assert!(
        taken < whole as u64,
        "{taken} of {whole} lines already taken"
    );
    let joined = vec![format!("* {s_addr} joined")];
    let pauser = thread::spawn(move || {
        let mut p = BufReader::new(pauser);
        read_lines_from(&mut p, &s_addr, whole, 999)
    });
    let others = read_lines_from(&mut b, &me(&s), whole, 999);
    assert!(others.is_empty(), "{others:?}");
    assert_eq!(pauser.join().expect("the pauser heard S"), joined);
    let snap = srv.counters.snapshot();
    assert_eq!(snap.slow_cut, 0);
    drop(s);
}

#[test]
fn a_stuck_member_is_cut_at_slow_timeout_on_time() {
    let slow_t = Duration::from_millis(300);
    let srv = serve(
        &["chat=tcp://127.0.0.1:0"],
        Options {
            // Far above what one read fans out, so only the stuck member
            // ever goes above it.
            write_buffer: 256 * 1024,
            max_frame: MAX_FRAME,
            slow_timeout: slow_t,
            ..Options::default()
        },
    );
    let addr = srv.addrs[0];
    // B reads everything at once, with room to spare in its buffers.
    let b = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    b.set_recv_buffer_size(4 << 20).unwrap();
    b.connect(&addr.into()).unwrap();
    let b = TcpStream::from(b);
    b.set_read_timeout(Some(WAIT)).unwrap();
    let mut b = BufReader::new(b);
    let c = non_reader(addr);
    let c_addr = me(&c);
    let a = connect(addr);
    let a_addr = me(&a);
    let mut l = String::new();
    for who in [&c_addr, &a_addr] {
        l.clear();
        b.read_line(&mut l).unwrap();
        assert_eq!(l.trim_end(), format!("* {who} joined"));
    }
    const N: usize = 20_000;
    let reader = thread::spawn(move || read_lines_from(&mut b, &a_addr, N, 999));
    let writer = write_in_background(a, lines(N, 999));
    // C goes above --write-buffer in the turn that pauses the room: its clock
    // starts at that turn's start, which the room_pauses counter (bumped
    // later in the same turn) cannot show: from outside, the cut may seem
    // up to one turn early. A turn is allowed what LATE allows it.
    let (pausing, paused) = bracket(|| srv.counters.snapshot().room_pauses >= 1);
    let (not_yet, cut) = bracket(|| srv.counters.snapshot().slow_cut >= 1);
    let pauses = srv.counters.snapshot().room_pauses;
    eprintln!(
        "slow timeout: cut within [{:?}, {:?}] of going above --write-buffer ({pauses} pauses)",
        not_yet.saturating_duration_since(paused),
        cut - pausing
    );
    assert!(
        cut - pausing >= slow_t - EARLY - (LATE - Duration::from_millis(10)),
        "cut {:?} after going above --write-buffer: early",
        cut - pausing
    );
    assert!(
        not_yet.saturating_duration_since(paused) <= slow_t + LATE,
        "still a member {:?} after going above --write-buffer: late",
        not_yet - paused
    );
    let others = reader.join().expect("B received every line");
    assert!(others.contains(&format!("* {c_addr} left")), "{others:?}");
    drop(writer.join().unwrap());
    drop(c);
}
