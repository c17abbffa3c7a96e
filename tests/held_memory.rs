//! What a trickled, incomplete frame costs the server, measured as the
//! process's resident memory (README, "Memory bounds": at most
//! `--max-frame` plus 4 KiB a connection). Before the fix a 65,000-byte
//! frame trickled at `--max-frame 65536` cost 72–84 KB a connection: the
//! buffer doubled its way up and left its old selves behind as holes.
//!
//! RSS, not a count of bytes: the holes are the allocator's, and only the
//! process's memory shows them. It is steady enough here because every
//! connection is opened and answered once before the first reading, so the
//! slab, the read buffer and the allocator's arenas are already there; what
//! grows after is the held frames (and the test's 400 connections make one
//! connection's noise small).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::Duration;

use common::*;

const CONNS: usize = 400;
const FRAME: usize = 65_000;
const MAX_FRAME: usize = 65_536;
const PIECE: usize = 500;

fn rss_bytes(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let kb: usize = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kb * 1024
}

/// Trickle a `FRAME`-byte frame, less its last byte, on `CONNS`
/// connections, piece by piece, round-robin; the server's memory growth per
/// connection.
fn per_conn(framing: &str, first: &[u8], first_reply: &[u8], frame: &[u8]) -> usize {
    let spec = format!("count=tcp://127.0.0.1:0?framing={framing}");
    let mut srv = spawn_serve(&[
        "--listen",
        &spec,
        "--max-frame",
        &MAX_FRAME.to_string(),
        "--stats",
        "0.05",
    ]);
    let mut err = BufReader::new(srv.child.stderr.take().unwrap());
    let conns: Vec<TcpStream> = (0..CONNS).map(|_| connect(srv.addrs[0])).collect();
    for c in &conns {
        (&*c).write_all(first).unwrap();
    }
    for c in &conns {
        let mut got = vec![0u8; first_reply.len()];
        (&*c).read_exact(&mut got).unwrap();
        assert_eq!(got, first_reply);
    }
    let pid = srv.child.id();
    let before = rss_bytes(pid);
    let body = &frame[..frame.len() - 1];
    for piece in body.chunks(PIECE) {
        for c in &conns {
            (&*c).write_all(piece).unwrap();
        }
        // Pacing, not synchronising: the server reads each piece on its
        // own, as a trickle arrives.
        thread::sleep(Duration::from_millis(2));
    }
    // Every byte read: bytes_in on the --stats line says so.
    let want = (CONNS * (first.len() + body.len())) as u64;
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            err.read_line(&mut line).unwrap() > 0,
            "server stderr closed"
        );
        if line.starts_with("stats:") && stat(&line, "bytes_in") >= want {
            break;
        }
    }
    let after = rss_bytes(pid);
    srv.signal("KILL");
    (after.saturating_sub(before)) / CONNS
}

#[test]
fn a_trickled_line_costs_at_most_max_frame_plus_4_kib() {
    let mut line = vec![b'a'; FRAME];
    line.push(b'\n');
    let cost = per_conn("line", b"s\n", b"1\n", &line);
    eprintln!(
        "line: {cost} bytes a connection for a {FRAME}-byte line trickled in {PIECE}-byte pieces"
    );
    assert!(cost <= MAX_FRAME + 4096, "{cost} bytes a connection");
}

#[test]
fn a_trickled_len32_frame_costs_at_most_max_frame_plus_4_kib() {
    let mut frame = (FRAME as u32).to_be_bytes().to_vec();
    frame.resize(4 + FRAME, b'a');
    let mut first = 1u32.to_be_bytes().to_vec();
    first.push(b's');
    let mut reply = 1u32.to_be_bytes().to_vec();
    reply.push(b'1');
    let cost = per_conn("len32", &first, &reply, &frame);
    eprintln!(
        "len32: {cost} bytes a connection for a {FRAME}-byte frame trickled in {PIECE}-byte pieces"
    );
    assert!(cost <= MAX_FRAME + 4096, "{cost} bytes a connection");
}
