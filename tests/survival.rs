//! Nothing lost at shutdown, no client can hold the loop, slowloris
//! bounded (README, "Limits" and "Stopping").

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::ChildStderr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use sockloop::server::WORK_PER_TURN;
use sockloop::Options;

/// The byte at stream offset `i` of a client's data.
fn pattern(i: usize) -> u8 {
    b'a' + (i % 26) as u8
}

/// Read `--stats` lines until one satisfies `done`; returns it.
fn stats_until(err: &mut BufReader<ChildStderr>, done: impl Fn(&str) -> bool) -> String {
    loop {
        let mut line = String::new();
        assert!(
            err.read_line(&mut line).unwrap() > 0,
            "server stderr closed"
        );
        if line.starts_with("stats:") && done(&line) {
            return line;
        }
    }
}

#[test]
fn sigterm_loses_no_reply_to_a_client_still_sending_and_reading_slowly() {
    let mut srv = spawn_serve(&[
        "--listen",
        "echo=tcp://127.0.0.1:0",
        "--grace",
        "20",
        "--stats",
        "0.05",
    ]);
    let mut err = BufReader::new(srv.child.stderr.take().unwrap());
    let client = connect(srv.addrs[0]);
    let mut reader = client.try_clone().unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let stop = Arc::clone(&done);
    // 4 MB pipelined, then 1 KB every 10 ms for as long as it can.
    let writer = thread::spawn(move || {
        let mut c = client;
        let mut off = 0;
        let chunk = |n: usize, off: &mut usize| -> Vec<u8> {
            let v = (*off..*off + n).map(pattern).collect();
            *off += n;
            v
        };
        if c.write_all(&chunk(4 << 20, &mut off)).is_err() {
            return;
        }
        while !stop.load(Ordering::Relaxed) {
            if c.write_all(&chunk(1024, &mut off)).is_err() {
                return;
            }
            thread::sleep(Duration::from_millis(10)); // pacing the client, not synchronising
        }
    });
    // Read slowly (about 2 MB/s) on another thread, to EOF.
    let slow_reader = thread::spawn(move || {
        let mut got = Vec::new();
        let mut buf = vec![0u8; 20 * 1024];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => return Ok(got),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => return Err((e, got.len())),
            }
            thread::sleep(Duration::from_millis(10)); // pacing the reader
        }
    });
    // SIGTERM once the server has read the 4 MB and is still sending.
    stats_until(&mut err, |l| stat(l, "bytes_in") >= 4 << 20);
    srv.signal("TERM");
    let got = slow_reader.join().unwrap();
    done.store(true, Ordering::Relaxed);
    let got = match got {
        Ok(g) => g,
        Err((e, n)) => panic!("the connection was broken after {n} bytes: {e}"),
    };
    // Echo: what came back is exactly the start of what was sent ...
    assert!(got.len() >= 4 << 20, "only {} bytes came back", got.len());
    assert!(
        got.iter().enumerate().all(|(i, &b)| b == pattern(i)),
        "bytes in order"
    );
    writer.join().unwrap();
    assert_eq!(srv.wait(), 0);
    // ... and every byte the server wrote arrived.
    let last = last_stats_line(&mut err);
    assert_eq!(stat(&last, "bytes_out"), got.len() as u64, "{last}");
}

#[test]
fn fan_out_per_turn_never_exceeds_the_budget_and_every_member_hears_all() {
    let srv = serve(&["chat=tcp://127.0.0.1:0"], Options::default());
    const MEMBERS: usize = 20;
    let mut talker = connect(srv.addrs[0]);
    let talker_addr = talker.local_addr().unwrap().to_string();
    let n_lines = 32 * 1024; // one 64 KiB read of two-byte lines
    let each = format!("{talker_addr}: x\n").len() * n_lines;
    let listeners: Vec<_> = (1..MEMBERS)
        .map(|_| {
            let mut s = connect(srv.addrs[0]);
            // Wait until it is in the room (the talker hears it join).
            let _ = read_line(&mut talker);
            let me = s.local_addr().unwrap();
            thread::spawn(move || {
                // Skip the joins of later members, then count the talk.
                let mut r = BufReader::new(&mut s);
                let mut got = 0;
                let mut line = String::new();
                while got < each {
                    line.clear();
                    assert!(r.read_line(&mut line).unwrap() > 0, "{me} cut");
                    if !line.starts_with("* ") {
                        got += line.len();
                    }
                }
                got
            })
        })
        .collect();
    talker.write_all(&b"x\n".repeat(n_lines)).unwrap();
    for l in listeners {
        assert_eq!(l.join().unwrap(), each);
    }
    // The budget seen from outside: one turn of the talker fans out at
    // most WORK_PER_TURN units, one per recipient of a line (the line that
    // crosses the budget still goes whole), so a member is handed at most
    // that many lines in one go on top of the --write-buffer it may hold.
    // Ignoring the budget hands every member a whole 64 KiB read at once:
    // 32,768 lines, four times as many. (The server's own peak_turn_work
    // is WORK_PER_TURN minus what is left, and cannot show an overspend.)
    let snap = srv.counters.snapshot();
    let line = format!("{talker_addr}: x\n").len();
    let per_turn = WORK_PER_TURN.div_ceil(MEMBERS - 1);
    let bound = (Options::default().write_buffer + per_turn * line) as u64;
    assert!(
        snap.peak_conn_pending <= bound,
        "a member was handed {} bytes at once (bound {bound}: {per_turn} lines a turn)",
        snap.peak_conn_pending
    );
    assert!(snap.peak_turn_work > 0);
}

#[test]
fn a_frame_trickled_a_byte_at_a_time_is_cut_at_frame_timeout() {
    let frame_t = Duration::from_millis(300);
    let opts = Options {
        frame_timeout: Some(frame_t),
        ..Options::default()
    };
    let srv = serve(
        &[
            "count=tcp://127.0.0.1:0",
            "count=tcp://127.0.0.1:0?framing=len32",
        ],
        opts,
    );
    // A whole frame (its answer tells us the server read this write),
    // then the first byte of the next frame, whose clock starts there.
    let len32_ss = [&2u32.to_be_bytes()[..], b"ss"].concat();
    for (i, (addr, first, answer, told)) in [
        (
            srv.addrs[0],
            &b"ss\nx"[..],
            &b"2\n"[..],
            &b"ERR frame timeout\n"[..],
        ),
        (
            srv.addrs[1],
            &[&len32_ss[..], &[0]].concat()[..],
            &[0, 0, 0, 1, b'2'][..],
            b"",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let mut c = connect(addr);
        c.set_nodelay(true).unwrap();
        let sent = Instant::now();
        c.write_all(first).unwrap();
        assert_eq!(read_n(&mut c, answer.len()), answer);
        let answered = Instant::now();
        // Then the rest of a frame, a byte every 50 ms (the attack's
        // pace): trickling does not move this deadline.
        let mut w = c.try_clone().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let trickler = thread::spawn(move || {
            // For len32 the rest of a header for a 100-byte body, then
            // the body; for line the same bytes just continue the line.
            // (Once cut, the server reads and throws away what still
            // comes until our FIN: the test stops it.)
            for b in [0, 0, 100].into_iter().chain([b's'; 100]) {
                thread::sleep(Duration::from_millis(50)); // the attack's pace
                if stopped.load(Ordering::Relaxed) || w.write_all(&[b]).is_err() {
                    return;
                }
            }
        });
        let (open, cut) = bracket(|| srv.counters.snapshot().frame_timeouts > i as u64);
        eprintln!(
            "frame timeout: cut within [{:?}, {:?}] of the frame's first byte",
            open.saturating_duration_since(answered),
            cut - sent
        );
        assert!(
            cut - sent >= frame_t - EARLY,
            "cut {:?} after the first byte: early",
            cut - sent
        );
        assert!(
            open.saturating_duration_since(answered) <= frame_t + LATE,
            "still uncut {:?} after the first byte: late",
            open - answered
        );
        assert_eq!(read_to_eof(&mut c), told);
        stop.store(true, Ordering::Relaxed);
        trickler.join().unwrap();
    }
}

#[test]
fn whole_lines_sent_slowly_are_not_cut_by_frame_timeout() {
    let opts = Options {
        frame_timeout: Some(Duration::from_millis(300)),
        ..Options::default()
    };
    let srv = serve(&["count=tcp://127.0.0.1:0"], opts);
    let mut c = connect(srv.addrs[0]);
    // Three timeouts' worth, each line whole.
    for _ in 0..10 {
        c.write_all(b"ss\n").unwrap();
        assert_eq!(read_line(&mut c), "2");
        thread::sleep(Duration::from_millis(100)); // slow, but each line whole
    }
    assert_eq!(srv.counters.snapshot().frame_timeouts, 0);
}

/// This process's resident memory, from /proc.
fn rss_of(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kb * 1024
}

#[test]
fn held_partial_frames_cost_at_most_max_frame_each() {
    let mut srv = spawn_serve(&[
        "--listen",
        "echo=tcp://127.0.0.1:0?framing=line",
        "--stats",
        "0.05",
    ]);
    let mut err = BufReader::new(srv.child.stderr.take().unwrap());
    const CONNS: usize = 200;
    let max_frame = 65_536;
    let mut conns: Vec<TcpStream> = (0..CONNS).map(|_| connect(srv.addrs[0])).collect();
    stats_until(&mut err, |l| stat(l, "open") == CONNS as u64);
    let before = rss_of(srv.child.id());
    // max-frame − 1 bytes of one unfinished line, in two parts.
    let first = vec![b'a'; 65_000];
    let second = vec![b'a'; max_frame - 1 - 65_000];
    for c in &mut conns {
        c.write_all(&first).unwrap();
    }
    stats_until(&mut err, |l| stat(l, "bytes_in") == (CONNS * 65_000) as u64);
    for c in &mut conns {
        c.write_all(&second).unwrap();
    }
    stats_until(&mut err, |l| {
        stat(l, "bytes_in") == (CONNS * (max_frame - 1)) as u64
    });
    let growth = rss_of(srv.child.id()).saturating_sub(before);
    let bound = (CONNS * (max_frame + 4096)) as u64;
    eprintln!(
        "RSS growth: {growth} bytes for {CONNS} held frames ({} per connection)",
        growth / CONNS as u64
    );
    assert!(
        growth <= bound,
        "RSS grew {growth} bytes for {CONNS} held frames (bound {bound})"
    );
    // Still serving: one more byte completes nothing, a newline does.
    conns[0].write_all(b"\n").unwrap();
    let echoed = read_n(&mut conns[0], max_frame);
    assert_eq!(echoed.len(), max_frame);
}
