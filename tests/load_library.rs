//! `load` as a library: it installs no signal handler (a caller's Ctrl-C
//! stays the caller's), and a [`Stop`] handle ends a run at once.

mod common;

use std::time::{Duration, Instant};

use common::*;
use sockloop::load::{self, LoadConfig, Stop};
use sockloop::{Endpoint, Proto};

fn cfg(addr: std::net::SocketAddr, secs: f64) -> LoadConfig {
    LoadConfig {
        endpoints: vec![Endpoint {
            proto: Proto::Tcp,
            addr,
        }],
        conns: 2,
        duration: Duration::from_secs_f64(secs),
        ..LoadConfig::default()
    }
}

/// The disposition of `sig` in this process.
fn handler(sig: libc::c_int) -> libc::sighandler_t {
    // SAFETY: a query (no new action); `old` is a valid, writable sigaction.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        assert_eq!(libc::sigaction(sig, std::ptr::null(), &mut old), 0);
        old.sa_sigaction
    }
}

#[test]
fn a_library_run_leaves_the_signals_alone_and_stops_when_told() {
    // The server in a process of its own: an in-process one would take
    // the signals itself.
    let srv = spawn_serve(&["--listen", "echo=tcp://127.0.0.1:0"]);
    let stop = Stop::new();
    let s = stop.clone();
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(400));
        s.stop();
    });
    let t0 = Instant::now();
    let report = load::run_with_progress(&cfg(srv.addrs[0], 60.0), false, &stop).unwrap();
    let took = t0.elapsed();
    stopper.join().unwrap();
    assert!(took < Duration::from_millis(900), "stopped after {took:?}");
    assert!(report.ok() && report.messages > 0, "{}", report.to_table());
    // A loop with nothing to do sleeps in its poll: the stop wakes it.
    let stop = Stop::new();
    let s = stop.clone();
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        s.stop();
    });
    let idle = LoadConfig {
        idle: true,
        ..cfg(srv.addrs[0], 60.0)
    };
    let t0 = Instant::now();
    let report = load::run_with_progress(&idle, false, &stop).unwrap();
    let took = t0.elapsed();
    stopper.join().unwrap();
    assert!(
        took < Duration::from_millis(700),
        "an idle run stopped after {took:?}"
    );
    assert_eq!(report.held, 2, "{}", report.to_table());
    for sig in [libc::SIGINT, libc::SIGTERM] {
        assert_eq!(handler(sig), libc::SIG_DFL, "signal {sig} was taken over");
    }
}
