//! The server: its poll loop and the API a host program embeds it with.
//! (`server/` is where the server's sockets are driven; `load/` and
//! `client/` have sockets of their own.)
//!
//! One thread, one `mio::Poll`, edge-triggered. Every welcoming (listening)
//! TCP socket, every accepted connection and every UDP socket is registered
//! in it under a token from one range:
//!
//! ```text
//!   token_base + i            listener i (TCP or UDP)
//!   token_base + L + key      connection `key` in the slab (L = listeners)
//! ```
//!
//! What happens on a readiness event (see mio's `Poll` docs for the rules
//! obeyed here: readiness is a hint, events may be spurious, and with edge
//! triggering an event is reported once, so each socket is drained until
//! the kernel says `WouldBlock` — "call again later"):
//!
//! ```text
//!  listener READABLE ─▶ accept.rs: accept until WouldBlock (ACCEPT_BATCH a turn)
//!  conn event ───────▶ tcp.rs ─▶ drive.rs: write, read, frame, serve, write …
//!                              ─▶ room.rs: messages to the room, pacing
//!                              ─▶ interest re-registered only if it changed
//!  UDP READABLE ─────▶ udp.rs: recv until WouldBlock ─▶ service ─▶ send
//!  after the events ─▶ on_timer: deadlines.rs, turns left over (schedule.rs),
//!                     shutdown.rs
//! ```
//!
//! The loop reaches the clock, its sockets and readiness only through a
//! [`World`] (world.rs): [`Os`] is mio and `Instant::now`, and `sim/`
//! (tests only) runs the whole server in a seeded simulation of both —
//! `SOCKLOOP_SEED=<n> cargo test --release --lib sim` replays a seed.
//!
//! This file is the embedding API: a [`Server`] can [`run`](Server::run)
//! its own loop (`run.rs`: the loop and its role, alone or one of
//! [`Workers`]), or live inside
//! someone else's: [`register`](Server::register) it on a token range of
//! their `Poll`, pass it the events it [`owns`](Server::owns) with
//! [`handle_event`](Server::handle_event), sleep no longer than
//! [`next_timeout`](Server::next_timeout), and call
//! [`on_timer`](Server::on_timer) after each poll. `examples/embed.rs`
//! shows it. Or nest it in a loop that is not mio (tokio, GLib, libuv,
//! epoll) through one file descriptor: [`Nested`], and
//! `examples/in_tokio.rs`, `examples/in_epoll.rs`.

mod accept;
mod blame;
mod builder;
mod deadlines;
pub(crate) mod drive;
mod health;
mod nested;
mod room;
mod run;
mod schedule;
mod shutdown;
#[cfg(test)]
mod sim;
mod tcp;
mod timer;
pub(crate) mod udp;
mod workers;
mod world;

use std::fmt;
use std::io;
use std::ops::Range;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::trace;
use mio::event::Event;
use mio::net::TcpStream;
use mio::{Interest, Poll, Registry, Token};
use slab::Slab;

pub use builder::Builder;
#[doc(hidden)]
pub use builder::Share;
pub use nested::Nested;
use run::Role;
pub use workers::{Stopper, Workers};

use crate::addr::{Endpoint, ListenSpec};
use crate::conn::{BufPool, Conn};
use crate::framing::Framing;
use crate::options::Options;
use crate::service::{Outbox, Service};
use crate::stats::{Counters, ServerCounters};
use crate::sys::mmsg::{RecvBatch, SendBatch};
use room::Delivery;
use schedule::Queues;
use timer::TimerHeap;
use udp::UdpSide;
#[doc(hidden)]
pub use world::{Bound, Os, Ready, Sock, World};

/// The size of the one read buffer all connections share. A read never
/// asks for more, so it also bounds what one read adds to a connection's
/// pending replies.
pub const READ_BUF: usize = 64 * 1024;

/// At most this many reads (of up to 64 KiB) per connection per loop turn,
/// so a client that keeps its socket full cannot hold the loop.
const READS_PER_TURN: usize = 16;

/// At most this much work per connection per loop turn: one unit per reply,
/// one per recipient of a message to the room. A chat member sending tiny
/// lines to a large room is held to it, whatever one read brought in (one
/// 64 KiB read of two-byte lines to 200 members would be 6.5 million).
/// Not smaller: a turn's real cost is one `writev` per recipient, so a
/// smaller budget would only split the same lines over more turns and
/// more syscalls. At ~20 bytes copied a unit, a turn copies at most ~2.5 MB.
pub const WORK_PER_TURN: usize = 128 * 1024;

/// The bytes one connection costs in the slab (an idle connection owns
/// nothing else in user space): a figure `benches/idle_memory.rs` reports.
pub const CONN_SIZE: usize = std::mem::size_of::<Conn<TcpStream>>();

/// What a `line`-framed connection past `--max-conns` is told, best effort,
/// before it is closed.
pub const MAX_CONNS_LINE: &[u8] = b"ERR max connections reached\n";

/// What a `line`-framed connection is told when its frame took longer than
/// `--frame-timeout` to arrive.
pub const FRAME_TIMEOUT_LINE: &[u8] = b"ERR frame timeout\n";

enum Socket<W: World> {
    Tcp(W::Listener),
    Udp(UdpSide<W::Udp>),
    /// Closed for shutdown.
    Closed,
}

struct Listener<W: World> {
    service_name: String,
    endpoint: Endpoint,
    framing: Framing,
    service: Box<dyn Service>,
    socket: Socket<W>,
    /// This listener's connections, and how messages reach them: the
    /// pacing of its chat room, if it is one.
    delivery: Delivery,
    /// More may be waiting (accept or recv batch used up): come back on the
    /// next turn, because edge-triggered readiness will not say so again.
    backlog: bool,
}

/// A single-threaded nonblocking server: listeners, connections, and the
/// loop that drives them.
///
/// `W` is the world it runs in: the real one, always, outside this crate's
/// own simulation tests (world.rs).
pub struct Server<W: World = Os> {
    opts: Options,
    listeners: Vec<Listener<W>>,
    conns: Slab<Conn<W::Stream>>,
    /// The clock, the sockets and readiness (world.rs).
    world: W,
    token_base: usize,
    token_end: usize,
    /// The one read buffer, shared by every connection in turn: a
    /// connection with nothing buffered owns no memory for reading.
    scratch: Vec<u8>,
    /// Where a message to the room is framed once before it is shared.
    encode_buf: Vec<u8>,
    /// Reused for every service call.
    outbox: Outbox,
    /// Datagrams received and to send in one syscall each, shared by every
    /// UDP listener (allocated at the first datagram).
    udp_batches: Option<(RecvBatch, SendBatch)>,
    pool: BufPool,
    timers: TimerHeap,
    /// Who is driven next (schedule.rs).
    queues: Queues,
    /// Recipients a fan-out just put above `--write-buffer` (reused buffer).
    went_over: Vec<usize>,
    /// This loop's counters: `counters[li]` is listener `li`'s, `.health`
    /// the loop's.
    counters: Arc<ServerCounters>,
    /// Every worker's counters (just this server's when alone): what
    /// `--stats`, `/metrics` and [`counters`](Server::counters) read.
    all: Counters,
    /// The turn under way, for the loop's health.
    turn: health::Turn,
    epoch: Instant,
    now: Instant,
    /// `now` in ms since `epoch`.
    now_ms: u64,
    /// The next connection's id: never reused while the server runs.
    next_id: u64,
    /// With `--workers`: connections open in all workers together, the
    /// count `--max-conns` caps (one atomic add per accept and close).
    open_total: Option<Arc<AtomicUsize>>,
    /// Accepting is paused until then (ms) for want of file descriptors.
    accept_paused_until: Option<u64>,
    /// In an out-of-descriptors episode (logged once at its start and end).
    fd_episode: bool,
    /// Shutting down: the grace deadline (ms).
    stopping: Option<u64>,
}

impl Server {
    /// A builder with these options and no listeners yet.
    pub fn builder(opts: Options) -> Builder {
        Builder::new(opts)
    }

    /// Bind the listeners `specs` names (`--listen`).
    pub fn bind(specs: &[ListenSpec], opts: Options) -> io::Result<Server> {
        specs
            .iter()
            .fold(Server::builder(opts), |b, s| b.listen(s))
            .build()
    }

    /// Register every listener in `registry`, on tokens from `tokens`:
    /// listener `i` gets `tokens.start + i`, connections the tokens after.
    /// The range bounds how many connections can be open at once.
    pub fn register(&mut self, registry: &Registry, tokens: Range<usize>) -> io::Result<()> {
        self.world.registry = Some(registry.try_clone()?);
        self.attach(tokens)
    }

    /// Handle one readiness event. Returns `false` if the token is not
    /// this server's (the caller's own sockets).
    pub fn handle_event(&mut self, event: &Event) -> bool {
        self.handle_ready(event.into())
    }

    /// Run the loop on a `Poll` of its own until SIGINT or SIGTERM and the
    /// graceful shutdown that follows (a second signal cuts it short).
    /// Prints the `--stats` line to stderr if asked. The signal handlers
    /// are installed here, when the loop starts ([`Workers::bind`] installs
    /// them before binding, so a ready line printed in between is safe).
    pub fn run(self) -> io::Result<()> {
        let stats = self.opts.stats_every.is_some();
        let all = self.counters();
        let signals = run::listen_for_signals()?;
        self.run_loop(Poll::new()?, Role::Alone(signals))?;
        if stats {
            // The last word: what was read and written in all.
            eprintln!("{}", all.line());
        }
        Ok(())
    }
}

impl<W: World> Server<W> {
    /// Each listener's service name and real bound address, in order (port
    /// 0 resolved): what the `listening` lines print.
    pub fn listeners(&self) -> impl Iterator<Item = (&str, Endpoint)> + '_ {
        self.listeners
            .iter()
            .map(|l| (l.service_name.as_str(), l.endpoint))
    }

    /// The live counters, shareable with other threads: this server's,
    /// or, if it is one of [`Workers`], every worker's.
    pub fn counters(&self) -> Counters {
        self.all.clone()
    }

    /// Watch every listener in the world's readiness, on tokens from
    /// `tokens` (see [`register`](Server::register)).
    pub(crate) fn attach(&mut self, tokens: Range<usize>) -> io::Result<()> {
        if tokens.len() <= self.listeners.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "token range {tokens:?} has no room beyond {} listeners",
                    self.listeners.len()
                ),
            ));
        }
        for (i, l) in self.listeners.iter_mut().enumerate() {
            let token = Token(tokens.start + i);
            match &mut l.socket {
                Socket::Tcp(t) => {
                    self.world
                        .register(Sock::Listener(t), token, Interest::READABLE)?
                }
                Socket::Udp(u) => {
                    self.world
                        .register(Sock::Udp(u.socket_mut()), token, Interest::READABLE)?
                }
                Socket::Closed => {}
            }
            trace!(
                "token {}: listener {} ({})",
                token.0,
                l.endpoint,
                l.service_name
            );
        }
        trace!(
            "tokens {}.. are connections: token = {} + slab key",
            tokens.start + self.listeners.len(),
            tokens.start + self.listeners.len()
        );
        self.token_base = tokens.start;
        self.token_end = tokens.end;
        Ok(())
    }

    /// Whether `token` is one of this server's.
    pub fn owns(&self, token: Token) -> bool {
        (self.token_base..self.token_end).contains(&token.0)
    }

    fn conn_token(&self, key: usize) -> Token {
        Token(self.token_base + self.listeners.len() + key)
    }

    /// Read the clock: the time this turn works with.
    fn tick(&mut self) {
        self.now = self.world.now();
        self.now_ms = self.ms_at(self.now);
    }

    fn ms_at(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.epoch).as_millis() as u64
    }

    /// Handle one readiness event (see [`handle_event`](Server::handle_event)).
    pub(crate) fn handle_ready(&mut self, event: Ready) -> bool {
        if !self.owns(event.token) {
            return false;
        }
        self.tick();
        self.turn_event();
        let i = event.token.0 - self.token_base;
        trace!(
            "event token {}: readable={} writable={} read_closed={} error={}",
            event.token.0,
            event.readable,
            event.writable,
            event.read_closed,
            event.error
        );
        if i < self.listeners.len() {
            match self.listeners[i].socket {
                Socket::Tcp(_) => self.accept_some(i),
                Socket::Udp(_) => self.udp_ready(i, event.readable, event.writable),
                Socket::Closed => {}
            }
        } else {
            self.conn_ready(i - self.listeners.len(), &event);
        }
        self.settle();
        true
    }

    /// How long the caller may sleep before [`on_timer`](Self::on_timer)
    /// has work: the earliest deadline, or zero if something was left for
    /// the next turn. `None`: until an event.
    pub fn next_timeout(&self) -> Option<Duration> {
        let paused = self.accept_paused_until.is_some();
        // A closed socket's leftover flag means nothing; a TCP backlog
        // waits while accepting is paused for want of descriptors.
        let more = self.listeners.iter().any(|l| {
            l.backlog
                && match l.socket {
                    Socket::Tcp(_) => !paused,
                    Socket::Udp(_) => true,
                    Socket::Closed => false,
                }
        });
        if more || self.queues.has_deferred() {
            return Some(Duration::ZERO);
        }
        let at = [
            self.timers.next_at(),
            self.accept_paused_until,
            self.stopping,
        ]
        .into_iter()
        .flatten()
        .min()?;
        let now = self.ms_at(self.world.now());
        Some(Duration::from_millis(at.saturating_sub(now)))
    }

    /// The timer hook: expire deadlines, continue the accepts, receives,
    /// reads and room deliveries a budget cut short, end a shutdown's grace
    /// period. Call it after every poll (it is cheap when there is nothing
    /// to do).
    pub fn on_timer(&mut self) {
        self.tick();
        self.turn_begins();
        self.expire_deadlines();
        self.drain_deferred();
        if self.accept_paused_until.is_some_and(|t| t <= self.now_ms) {
            self.accept_paused_until = None;
        }
        for li in 0..self.listeners.len() {
            if !self.listeners[li].backlog {
                continue;
            }
            match self.listeners[li].socket {
                Socket::Tcp(_) if self.accept_paused_until.is_none() => self.accept_some(li),
                Socket::Udp(_) => self.recv_some(li),
                _ => {}
            }
        }
        if self.stopping.is_some_and(|t| t <= self.now_ms) {
            self.abort_all();
        }
        self.settle();
        self.turn_ends();
    }
}

impl<W: World> fmt::Debug for Server<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field(
                "listeners",
                &self
                    .listeners
                    .iter()
                    .map(|l| l.endpoint)
                    .collect::<Vec<_>>(),
            )
            .field("conns", &self.conns.len())
            .finish()
    }
}
