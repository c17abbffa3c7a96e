//! The loop a [`Server`] runs on a `Poll` of its own — alone
//! ([`Server::run`]) or as one of [`Workers`] — and what it needs beside the
//! server's own tokens: the signal pipe, the waker, and the [`Control`]
//! through which workers stop together.
//!
//! ```text
//!   Role::Alone      one loop: signals stop it, it prints --stats
//!   Role::Lead       the first worker: signals go to the Control (every
//!                    worker stops), it prints --stats for all of them
//!   Role::Follower   another worker: it only watches the Control
//! ```
//!
//! A host program with its own loop uses none of this: it calls the
//! embedding API in `mod.rs` (`register`, `handle_event`, `on_timer`).
//!
//! [`Workers`]: super::Workers

use std::io;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use log::{info, trace, warn};
use mio::{Events, Interest, Poll, Token, Waker};
use signal_hook_mio::v1_0::Signals;

use super::Server;

/// This loop's log lines keep the target they had when the loop lived in
/// `server/mod.rs` (docs/walkthrough.md quotes them).
const LOG_TARGET: &str = "sockloop::server";

/// What a loop is among the loops of its process.
pub(super) enum Role<'a> {
    /// The only loop: it listens for SIGINT/SIGTERM on this pipe (its
    /// handlers were installed before, see [`listen_for_signals`]) and
    /// stops itself.
    Alone(Signals),
    /// The first of several workers: it listens for the signals and passes
    /// them to every worker through the [`Control`].
    Lead(Signals, &'a Control),
    /// Another worker: a signal (or a `Stopper`) reaches it through the
    /// [`Control`].
    Follower(&'a Control),
}

/// The signal pipe's token, in the loop that listens for signals.
pub(super) const SIGNALS: Token = Token(usize::MAX - 1);
/// The waker's token: another thread asks this loop to look at its
/// [`Control`]. (`usize::MAX` itself is mio's own.)
pub(super) const WAKER: Token = Token(usize::MAX - 2);

/// A stop request, from a signal or a [`Stopper`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Stop {
    /// Keep serving.
    No = 0,
    /// Graceful shutdown: deliver what is owed for up to `--grace`.
    Graceful = 1,
    /// Close everything now.
    Now = 2,
}

/// What the workers share to stop together.
#[derive(Default)]
pub(super) struct Control {
    stop: AtomicU8,
    wakers: Mutex<Vec<Arc<Waker>>>,
}

impl Control {
    /// Ask every worker to stop (never a step back: `Now` stays `Now`),
    /// and wake each to see it.
    pub(super) fn request(&self, how: Stop) {
        self.stop.fetch_max(how as u8, Ordering::Relaxed);
        let wakers = self.wakers.lock().unwrap_or_else(|p| p.into_inner());
        for w in wakers.iter() {
            let _ = w.wake();
        }
    }

    /// What has been asked.
    pub(super) fn requested(&self) -> Stop {
        match self.stop.load(Ordering::Relaxed) {
            0 => Stop::No,
            1 => Stop::Graceful,
            _ => Stop::Now,
        }
    }

    pub(super) fn add(&self, waker: Waker) {
        let mut wakers = self.wakers.lock().unwrap_or_else(|p| p.into_inner());
        wakers.push(Arc::new(waker));
    }
}

/// Catch SIGINT and SIGTERM from now on: each becomes a byte in the pipe
/// the loop polls (their default action, death, no longer applies).
pub(super) fn listen_for_signals() -> io::Result<Signals> {
    Signals::new([signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM])
}

impl Server {
    /// The loop [`run`](Self::run) and each of [`Workers`] run: poll,
    /// hand out events, on_timer, until shutdown is over. Its [`Role`] says
    /// whether it listens for signals and whether it is one of several
    /// workers. Every `--stats` period it prints the
    /// line for all the workers' counters.
    pub(super) fn run_loop(mut self, mut poll: Poll, role: Role<'_>) -> io::Result<()> {
        let (signals, control) = match role {
            Role::Alone(s) => (Some(s), None),
            Role::Lead(s, c) => (Some(s), Some(c)),
            Role::Follower(c) => (None, Some(c)),
        };
        // The last usable tokens are the signal pipe's and the waker's (see
        // workers.rs); the server has the rest.
        self.register(poll.registry(), 0..WAKER.0)?;
        let signals_on = signals.is_some();
        let mut signal_pipe = signals;
        if let Some(s) = &mut signal_pipe {
            // A signal that came before this registration is not lost: its
            // byte waits in the pipe, and epoll reports a descriptor that is
            // already readable when it is added.
            poll.registry().register(s, SIGNALS, Interest::READABLE)?;
            trace!(
            target: LOG_TARGET,
                           "token {} (usize::MAX - 1): the signal pipe (SIGINT, SIGTERM)",
                           SIGNALS.0
                       );
        }
        let mut events = Events::with_capacity(1024);
        let mut next_stats = (signals_on || control.is_none())
            .then_some(self.opts.stats_every)
            .flatten()
            .and_then(|d| Instant::now().checked_add(d)); // Duration::MAX: never
        loop {
            let mut timeout = self.next_timeout();
            if let Some(at) = next_stats {
                let d = at.saturating_duration_since(Instant::now());
                timeout = Some(timeout.map_or(d, |t| t.min(d)));
            }
            trace!(
            target: LOG_TARGET,
                           "poll: sleeping until an event{}",
                           timeout.map_or(String::from(" (no deadline)"), |t| format!(" or {t:?}"))
                       );
            if let Err(e) = poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            trace!(
 target: LOG_TARGET,"poll: {} events", events.iter().count());
            for event in events.iter() {
                if event.token() == SIGNALS {
                    let Some(pipe) = &mut signal_pipe else {
                        continue;
                    };
                    for sig in pipe.pending() {
                        let again = match control {
                            Some(c) => c.requested() != Stop::No,
                            None => self.is_stopping(),
                        };
                        match control {
                            // Every worker, this one included, hears it
                            // through the control below.
                            Some(c) => c.request(if again { Stop::Now } else { Stop::Graceful }),
                            None if again => {
                                warn!(
 target: LOG_TARGET,"signal {sig} again: closing everything now");
                                self.stop_now();
                            }
                            None => {
                                info!(
 target: LOG_TARGET,"signal {sig}: stopping");
                                self.shutdown(self.opts.grace);
                            }
                        }
                    }
                } else if event.token() != WAKER {
                    self.handle_event(event);
                }
            }
            // A stop asked for by a signal on another worker's thread, or
            // by a Stopper: one relaxed load a turn.
            match control.map(Control::requested) {
                Some(Stop::Graceful) if !self.is_stopping() => {
                    info!(
 target: LOG_TARGET,"stop requested: stopping");
                    self.shutdown(self.opts.grace);
                }
                Some(Stop::Now) => self.stop_now(),
                _ => {}
            }
            self.on_timer();
            if let (Some(at), Some(every)) = (next_stats, self.opts.stats_every) {
                if Instant::now() >= at {
                    eprintln!("{}", self.all.line());
                    next_stats = at.checked_add(every);
                }
            }
            if self.is_finished() {
                info!(
 target: LOG_TARGET,"every connection closed; exiting");
                return Ok(());
            }
        }
    }
}
