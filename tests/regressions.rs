//! One test per bug found so far, each named after the bug it pins (as
//! mio's `tests/regressions.rs` does). Bugs whose scenario needs a bigger
//! stage have their test where that stage is:
//! - a chat reader that keeps up was cut for being over --write-buffer for a
//!   moment: `chat_pacing.rs`,
//!   `a_reader_that_keeps_up_gets_every_line_while_a_stuck_one_is_cut`;
//! - SIGTERM reset replies still in flight to a client that kept sending:
//!   `survival.rs`,
//!   `sigterm_loses_no_reply_to_a_client_still_sending_and_reading_slowly`;
//! - a held partial frame cost twice `--max-frame`: `survival.rs`,
//!   `held_partial_frames_cost_at_most_max_frame_each`;
//! - one chat member's tiny lines held the whole loop: `survival.rs`,
//!   `fan_out_per_turn_never_exceeds_the_budget_and_every_member_hears_all`.

mod common;

use std::io::Write;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::Stdio;
use std::time::Duration;

use common::*;
use mio::{Events, Poll};
use sockloop::{Options, Server};

/// A chat recipient was judged slow (and cut) before it had a chance to
/// write what one 64 KiB read had just fanned out to it.
#[test]
fn chat_recipient_cut_before_it_could_write() {
    let opts = Options {
        write_buffer: 64 * 1024,
        ..Options::default()
    };
    let srv = serve(&["chat=tcp://127.0.0.1:0"], opts);
    let mut talker = connect(srv.addrs[0]);
    let mut listener = connect(srv.addrs[0]);
    let _ = read_line(&mut talker); // the listener joined
                                    // Eight 8 KiB lines in one write: one read's worth, fanned out at once.
    let mut burst = Vec::new();
    for _ in 0..8 {
        burst.extend_from_slice(&[b'x'; 8191]);
        burst.push(b'\n');
    }
    talker.write_all(&burst).unwrap();
    for _ in 0..8 {
        assert!(read_line(&mut listener).ends_with(&"x".repeat(8191)));
    }
    assert_eq!(srv.counters.snapshot().slow_cut, 0);
}

/// After shutdown, a closed listener's leftover "more to accept" flag made
/// next_timeout() zero for the whole grace period: a busy loop.
#[test]
fn closed_listeners_backlog_flag_made_shutdown_spin() {
    let mut server = Server::bind(
        &["echo=tcp://127.0.0.1:0".parse().unwrap()],
        Options::default(),
    )
    .expect("bind");
    let addr = server.listeners().next().unwrap().1.addr;
    let mut poll = Poll::new().unwrap();
    server.register(poll.registry(), 0..100_000).unwrap();
    // More connections than one turn accepts: the listener keeps a backlog.
    let clients: Vec<TcpStream> = (0..300)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    let mut events = Events::with_capacity(64);
    poll.poll(&mut events, Some(Duration::from_secs(5)))
        .unwrap();
    for e in events.iter() {
        server.handle_event(e);
    }
    assert_eq!(
        server.next_timeout(),
        Some(Duration::ZERO),
        "a backlog is pending"
    );
    // The clients stay open, so the grace period is really waited out.
    server.shutdown(Duration::from_secs(5));
    // Closing 256 connections takes a few turns (a pass drives a bounded
    // number); after those, only the grace deadline is left to wait for.
    let mut turns = 0;
    while server.next_timeout() == Some(Duration::ZERO) && turns < 1000 {
        server.on_timer();
        turns += 1;
    }
    let t = server.next_timeout().expect("the grace deadline");
    assert!(
        t > Duration::ZERO,
        "shutdown spins: next_timeout {t:?} after {turns} turns"
    );
    drop(clients);
}

/// `serve` raised the fd limit (and warned) before binding, so an
/// address-in-use error came with a second line on stderr.
#[test]
fn bind_error_came_after_an_fd_limit_warning() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let out = bin()
        .args(["serve", "--listen", &format!("echo=tcp://{addr}")])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    // Exactly one line, even where the fd-limit warning would fire.
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<_> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].starts_with("error:"), "{err}");
    assert!(
        lines[0].contains(&addr.to_string()) && lines[0].contains("in use"),
        "{err}"
    );
}

/// A UTF-8 character cut by the peer's half-close was held forever
/// instead of being sent back as the raw bytes it is.
#[test]
fn utf8_character_cut_at_half_close_was_never_sent() {
    let srv = serve(&["upper=tcp://127.0.0.1:0"], Options::default());
    let mut c = connect(srv.addrs[0]);
    c.write_all(b"ab\xc3").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_eof(&mut c), b"AB\xc3");
}
