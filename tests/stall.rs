//! Deadlines after a stall of the whole loop (SIGSTOP, a debugger, a VM or
//! container pause, heavy starvation): a connection whose bytes arrived in
//! time is not cut because the loop had not fetched their event yet when
//! its deadline came due (README, "Limits"). Before the fix, an idle
//! timeout of 3 s and a 4 s stall cut most connections; so did a frame
//! timeout of 2 s and a 3 s stall, for lines that completed within 1 s.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use common::*;

/// Many connections, more than one `epoll_wait` batch (1,024 events).
const CONNS: usize = 1500;

fn raise_nofile() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit write/read the one struct we pass.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        lim.rlim_cur = lim.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
    }
    assert!(
        lim.rlim_cur as usize > 2 * CONNS + 64,
        "this test needs {} descriptors; the hard limit is {}",
        2 * CONNS + 64,
        lim.rlim_cur
    );
}

fn signal(srv: &Child_, sig: libc::c_int) {
    // SAFETY: kill(2) on our own child, not yet waited for.
    let rc = unsafe { libc::kill(srv.child.id() as libc::pid_t, sig) };
    assert_eq!(rc, 0, "kill");
}

/// Sleep until `at`: the stall's schedule, not synchronisation.
fn until(at: Instant) {
    thread::sleep(at.saturating_duration_since(Instant::now()));
}

/// `CONNS` connections to `srv`, each having had one round trip of `req`.
fn open_all(srv: &Child_, req: &[u8], reply: &[u8]) -> Vec<TcpStream> {
    let conns: Vec<TcpStream> = (0..CONNS).map(|_| connect(srv.addrs[0])).collect();
    for c in &conns {
        (&*c).write_all(req).unwrap();
    }
    for c in &conns {
        let mut c = c;
        let mut got = vec![0u8; reply.len()];
        c.read_exact(&mut got).expect("first round trip");
        assert_eq!(got, reply);
    }
    conns
}

/// Read `want` on each connection; the ones that got something else (a
/// close, an error line) instead.
fn cut(conns: &[TcpStream], want: &[u8]) -> Vec<String> {
    let mut bad = Vec::new();
    for (i, c) in conns.iter().enumerate() {
        let mut c = c;
        let mut got = vec![0u8; want.len()];
        if let Err(e) = c.read_exact(&mut got) {
            bad.push(format!("conn {i}: {e}"));
        } else if got != want {
            bad.push(format!("conn {i}: {:?}", String::from_utf8_lossy(&got)));
        }
    }
    bad
}

#[test]
fn no_connection_is_cut_as_idle_for_data_that_arrived_during_a_stall() {
    raise_nofile();
    let srv = spawn_serve(&["--listen", "echo=tcp://127.0.0.1:0", "--idle-timeout", "3"]);
    let conns = open_all(&srv, b"x", b"x");
    let t0 = Instant::now();
    signal(&srv, libc::SIGSTOP);
    // Each connection's idle deadline is ~t0 + 3 s. Its next bytes arrive
    // at t0 + 1.5 s, in time; the loop wakes at t0 + 4 s, past the old
    // deadline: it must see those bytes before it cuts anything.
    until(t0 + Duration::from_millis(1500));
    for c in &conns {
        (&*c).write_all(b"y").unwrap();
    }
    until(t0 + Duration::from_secs(4));
    signal(&srv, libc::SIGCONT);
    let bad = cut(&conns, b"y");
    assert!(
        bad.is_empty(),
        "{} of {CONNS} cut: {:?}",
        bad.len(),
        &bad[..bad.len().min(5)]
    );
    // And they are still open: another round trip each.
    for c in &conns {
        (&*c).write_all(b"z").unwrap();
    }
    let bad = cut(&conns, b"z");
    assert!(
        bad.is_empty(),
        "{} of {CONNS} cut after: {:?}",
        bad.len(),
        &bad[..bad.len().min(5)]
    );
}

#[test]
fn no_frame_timeout_for_lines_completed_in_time_during_a_stall() {
    raise_nofile();
    let srv = spawn_serve(&[
        "--listen",
        "count=tcp://127.0.0.1:0",
        "--frame-timeout",
        "2",
    ]);
    let conns = open_all(&srv, b"s\n", b"1\n");
    // Each starts a line, which the server reads (and starts its frame
    // clock on) before the stall ...
    for c in &conns {
        (&*c).write_all(b"ss").unwrap();
    }
    thread::sleep(Duration::from_millis(300)); // the scenario: the server reads the halves
    let t0 = Instant::now();
    signal(&srv, libc::SIGSTOP);
    // ... and completes it 0.7 s later, well within --frame-timeout; the
    // loop wakes 3 s after the stall began, past every frame deadline.
    until(t0 + Duration::from_millis(700));
    for c in &conns {
        (&*c).write_all(b"s\n").unwrap();
    }
    until(t0 + Duration::from_secs(3));
    signal(&srv, libc::SIGCONT);
    let bad = cut(&conns, b"3\n");
    assert!(
        bad.is_empty(),
        "{} of {CONNS} cut: {:?}",
        bad.len(),
        &bad[..bad.len().min(5)]
    );
}

#[test]
fn a_connection_really_idle_through_the_stall_is_still_cut() {
    // The other side of the promise: catching up before a cut does not
    // keep an idle connection alive.
    let mut srv = spawn_serve(&["--listen", "echo=tcp://127.0.0.1:0", "--idle-timeout", "1"]);
    let mut c = connect(srv.addrs[0]);
    c.write_all(b"x").unwrap();
    assert_eq!(read_n(&mut c, 1), b"x");
    let t0 = Instant::now();
    signal(&srv, libc::SIGSTOP);
    until(t0 + Duration::from_millis(1500));
    signal(&srv, libc::SIGCONT);
    assert!(closed_by_server(&mut c), "the idle connection was cut");
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    srv.signal("TERM");
    assert_eq!(srv.wait(), 0);
}
