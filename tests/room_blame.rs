//! One member must not hold a room of faster readers hostage (README,
//! "Chat rooms and slow readers"; issue 20 item 3): the room counts the
//! time it waits on a member above `--write-buffer` while every other
//! member that got the same messages has written them all, and cuts the
//! member when that passes `--slow-timeout` within 10 s. The four cases:
//! (a) a member that reads 1 MiB every 1.8 s among 18 fast readers is cut
//! within a few seconds, and the room's throughput stays within 2× of the
//! same room without it; (b) the only reader of a flood is never cut;
//! (c) a reader that pauses 0.3 s now and then is never cut; (d) a stuck
//! member is cut at `--slow-timeout`, as before.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use common::*;
use sockloop::Options;

/// Bytes per line sent (with its `\n`).
const LINE: usize = 100;

fn room(slow: Duration) -> (InProcess, SocketAddr) {
    let srv = serve(
        &["chat=tcp://127.0.0.1:0"],
        Options {
            slow_timeout: slow,
            ..Options::default()
        },
    );
    let addr = srv.addrs[0];
    (srv, addr)
}

/// A member that reads with `read_some` and counts the lines it got;
/// `cut` says the server closed it.
struct Member {
    lines: Arc<AtomicU64>,
    cut: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

/// Read everything as fast as it comes, until `stop`. `pace` is called
/// after each read with the lines so far and the reader's start: where a
/// member dawdles.
fn member(
    s: TcpStream,
    stop: &Arc<AtomicBool>,
    pace: impl Fn(&mut TcpStream, Instant) + Send + 'static,
) -> Member {
    let (lines, cut) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicBool::new(false)),
    );
    let (l, c, stop) = (Arc::clone(&lines), Arc::clone(&cut), Arc::clone(stop));
    let thread = thread::spawn(move || {
        let mut s = s;
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        let start = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            match s.read(&mut buf) {
                Ok(0) => return c.store(true, Ordering::Relaxed),
                Ok(n) => {
                    let nl = buf[..n].iter().filter(|&&b| b == b'\n').count();
                    l.fetch_add(nl as u64, Ordering::Relaxed);
                    pace(&mut s, start);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return c.store(true, Ordering::Relaxed),
            }
        }
    });
    Member { lines, cut, thread }
}

fn fast(s: TcpStream, stop: &Arc<AtomicBool>) -> Member {
    member(s, stop, |_, _| {})
}

/// Send lines as fast as the room takes them until `until`; how many.
fn flood(s: TcpStream, until: Instant) -> JoinHandle<u64> {
    thread::spawn(move || {
        let mut s = s;
        let chunk: Vec<u8> = {
            let mut line = vec![b'x'; LINE - 1];
            line.push(b'\n');
            line.repeat(64 * 1024 / LINE)
        };
        let per_chunk = (64 * 1024 / LINE) as u64;
        let mut sent = 0;
        while Instant::now() < until {
            if s.write_all(&chunk).is_err() {
                break;
            }
            sent += per_chunk;
        }
        sent
    })
}

/// Lines a second that `reader` got over `d` from now.
fn rate(reader: &Member, d: Duration) -> f64 {
    let start = reader.lines.load(Ordering::Relaxed);
    thread::sleep(d); // the measurement's window, not synchronisation
    (reader.lines.load(Ordering::Relaxed) - start) as f64 / d.as_secs_f64()
}

/// Case (a) without and then with the throttling member; lines a second
/// seen by one fast reader over `RUN`, and when the throttler was cut.
fn throttled_room(with_throttler: bool) -> (f64, Option<Duration>) {
    const RUN: Duration = Duration::from_secs(10);
    let (srv, addr) = room(Duration::from_secs(2));
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<Member> = (0..18).map(|_| fast(connect(addr), &stop)).collect();
    let throttler = with_throttler.then(|| {
        member(connect(addr), &stop, |s, _| {
            // 1 MiB every 1.8 s: just under --slow-timeout each time.
            let mut left = 1024 * 1024 - 64 * 1024;
            let mut buf = vec![0u8; 64 * 1024];
            while left > 0 {
                match s.read(&mut buf[..left.min(64 * 1024)]) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => left -= n,
                }
            }
            thread::sleep(Duration::from_millis(1800)); // its pace
        })
    });
    let sender = connect(addr);
    let start = Instant::now();
    let flooder = flood(sender, start + RUN);
    let r = rate(&readers[0], RUN);
    let cut_at = throttler.as_ref().and_then(|_| {
        (srv.counters.snapshot().slow_cut > 0).then(|| {
            // When: the room's own account of it (the test read the rate
            // meanwhile); bounded by RUN.
            start.elapsed()
        })
    });
    let snap = srv.counters.snapshot();
    let flooded = flooder.join().unwrap();
    stop.store(true, Ordering::Relaxed);
    for m in readers.iter() {
        assert!(
            !m.cut.load(Ordering::Relaxed),
            "a fast reader was cut: {snap:?}"
        );
    }
    for m in readers.into_iter().chain(throttler) {
        m.thread.join().unwrap();
    }
    eprintln!(
        "throttler {with_throttler}: {r:.0} lines/s at a fast reader, {flooded} sent, slow_cut={}, room_paused_ms={}",
        snap.slow_cut, snap.room_paused_ms
    );
    if !with_throttler {
        assert_eq!(
            snap.slow_cut, 0,
            "no member is cut in the room of fast readers"
        );
    }
    (r, cut_at.filter(|_| snap.slow_cut == 1))
}

#[test]
fn a_member_that_throttles_a_room_of_faster_readers_is_cut_and_the_room_goes_on() {
    let (without, _) = throttled_room(false);
    let (with, cut) = throttled_room(true);
    assert!(cut.is_some(), "(a) the throttling member was never cut");
    assert!(
        with * 2.0 >= without,
        "(a) the room ran at {with:.0} lines/s with the throttler, {without:.0} without"
    );
}

#[test]
fn the_only_reader_of_a_flood_is_never_cut() {
    let (srv, addr) = room(Duration::from_millis(500));
    let stop = Arc::new(AtomicBool::new(false));
    // Slower than the flood: ~6 MB/s against whatever the sender can do,
    // so the room waits on it all the time — and on nobody else.
    let reader = member(connect(addr), &stop, |_, _| {
        thread::sleep(Duration::from_millis(10)); // its pace
    });
    let start = Instant::now();
    let sent = flood(connect(addr), start + Duration::from_secs(4))
        .join()
        .unwrap();
    // Everything sent reaches it (plus the sender's join announcement).
    assert!(
        eventually(|| reader.lines.load(Ordering::Relaxed) > sent),
        "got {} of {sent}",
        reader.lines.load(Ordering::Relaxed)
    );
    let snap = srv.counters.snapshot();
    stop.store(true, Ordering::Relaxed);
    reader.thread.join().unwrap();
    assert!(
        !reader.cut.load(Ordering::Relaxed),
        "(b) the only reader was cut"
    );
    assert_eq!(snap.slow_cut, 0);
    assert!(
        snap.room_paused_ms > 2000,
        "the room did wait on it: {snap:?}"
    );
}

#[test]
fn a_reader_that_pauses_now_and_then_is_never_cut() {
    let (srv, addr) = room(Duration::from_secs(2));
    let stop = Arc::new(AtomicBool::new(false));
    let fast1 = fast(connect(addr), &stop);
    let fast2 = fast(connect(addr), &stop);
    // 0.3 s without reading every 2 s, for 16 s: 2.4 s of pauses in all,
    // at most 1.5 s in any 10 s.
    let last = Arc::new(AtomicU64::new(0));
    let pauser = member(connect(addr), &stop, move |_, start| {
        let period = (start.elapsed().as_millis() / 2000) as u64;
        if last.swap(period, Ordering::Relaxed) != period {
            thread::sleep(Duration::from_millis(300)); // its pause
        }
    });
    let start = Instant::now();
    let sent = flood(connect(addr), start + Duration::from_secs(16))
        .join()
        .unwrap();
    assert!(
        eventually(|| pauser.lines.load(Ordering::Relaxed) >= sent),
        "(c) the pauser got {} of {sent} lines (cut: {})",
        pauser.lines.load(Ordering::Relaxed),
        pauser.cut.load(Ordering::Relaxed)
    );
    let snap = srv.counters.snapshot();
    stop.store(true, Ordering::Relaxed);
    for m in [fast1, fast2, pauser] {
        assert!(
            !m.cut.load(Ordering::Relaxed),
            "(c) a member was cut: {snap:?}"
        );
        m.thread.join().unwrap();
    }
    assert_eq!(snap.slow_cut, 0, "{snap:?}");
    assert!(
        snap.room_pauses > 0,
        "the pauses did back up into the room: {snap:?}"
    );
}

#[test]
fn a_stuck_member_among_fast_readers_is_cut_at_slow_timeout() {
    let slow = Duration::from_secs(1);
    let (srv, addr) = room(slow);
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<Member> = (0..2).map(|_| fast(connect(addr), &stop)).collect();
    // Reads nothing, with a small window: it is behind as soon as the
    // room talks.
    let stuck = {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        s.set_recv_buffer_size(4096).unwrap();
        s.connect(&addr.into()).unwrap();
        TcpStream::from(s)
    };
    let start = Instant::now();
    let flooder = flood(connect(addr), start + Duration::from_secs(4));
    assert!(eventually(|| srv.counters.snapshot().room_pauses > 0));
    let behind = Instant::now();
    assert!(eventually(|| srv.counters.snapshot().slow_cut == 1));
    let took = behind.elapsed();
    // Not before --slow-timeout (the room's blame of it starts no earlier
    // than its time above --write-buffer), and not much after.
    assert!(
        took + Duration::from_millis(50) >= slow && took <= slow + Duration::from_secs(1),
        "(d) cut {took:?} after it fell behind"
    );
    flooder.join().unwrap();
    stop.store(true, Ordering::Relaxed);
    for m in readers {
        assert!(!m.cut.load(Ordering::Relaxed), "a fast reader was cut");
        m.thread.join().unwrap();
    }
    drop(stuck);
}
