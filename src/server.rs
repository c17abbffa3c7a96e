//! The poll loop: the only code in sockloop that touches a socket.
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
//!  listener READABLE ─▶ accept until WouldBlock (at most ACCEPT_BATCH per
//!                       turn; the rest is remembered, not lost)
//!  conn event ─▶ drive(): write what is owed ─▶ read one chunk ─▶ framing
//!                ─▶ service ─▶ replies queued ─▶ write at once ─▶ read again
//!                … until WouldBlock, until too much is owed (backpressure),
//!                or until its turn's READS_PER_TURN reads are used (then
//!                remembered for the next turn) ─▶ re-register interest
//!                only if it changed
//!  UDP READABLE ─▶ recv_from until WouldBlock ─▶ service ─▶ send_to
//! ```
//!
//! A [`Server`] can [`run`](Server::run) its own loop, or live inside
//! someone else's: [`register`](Server::register) it on a token range of
//! their `Poll`, pass it the events it [`owns`](Server::owns) with
//! [`handle_event`](Server::handle_event), sleep no longer than
//! [`next_timeout`](Server::next_timeout), and call
//! [`on_timer`](Server::on_timer) after each poll. `examples/embed.rs`
//! shows it.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::ops::Range;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{debug, info, trace, warn};
use mio::event::Event;
use mio::net::{TcpListener, TcpStream, UdpSocket};
use mio::{Events, Interest, Poll, Registry, Token};
use slab::Slab;

use crate::addr::{Endpoint, ListenSpec, Proto};
use crate::conn::{BufPool, Conn, State};
use crate::framing::{Decoded, Framing, LINE_TOO_LONG};
use crate::service::{self, Outbox, Service, ServiceOptions, To};
use crate::stats::Counters;
use crate::sys;
use crate::timer::{Deadlines, Entry};
use crate::udp::{self, UdpSide};

/// The size of the one read buffer all connections share. A read never
/// asks for more, so it also bounds what one read adds to a connection's
/// pending replies.
pub const READ_BUF: usize = 64 * 1024;

/// At most this many accepts per listener per loop turn, so a connect flood
/// cannot starve the clients already connected (Redis's
/// max-new-connections-per-cycle).
const ACCEPT_BATCH: usize = 256;

/// At most this many datagrams per UDP socket per loop turn, for the same
/// reason.
const UDP_BATCH: usize = 256;

/// At most this many reads (of up to 64 KiB) per connection per loop turn,
/// so a client that keeps its socket full cannot hold the loop.
const READS_PER_TURN: usize = 16;

/// After `EMFILE` on accept, wait this long before trying again (unless a
/// connection closes first and frees a descriptor).
const ACCEPT_PAUSE_MS: u64 = 100;

/// How long a connection we close waits for the peer's FIN.
const LINGER_MS: u64 = 2_000;

/// The `listen(2)` backlog: connections the kernel completes for us while
/// the loop is busy. Linux caps it at `net.core.somaxconn`.
const LISTEN_BACKLOG: i32 = 4096;

/// What a `line`-framed connection past `--max-conns` is told, best effort,
/// before it is closed.
pub const MAX_CONNS_LINE: &[u8] = b"ERR max connections reached\n";

/// Everything `sockloop serve` can set besides the listeners (SPEC §3).
#[derive(Clone, Copy, Debug)]
pub struct Options {
    pub max_conns: usize,
    /// `None`: never.
    pub idle_timeout: Option<Duration>,
    pub max_frame: usize,
    pub write_buffer: usize,
    pub udp_member_ttl: Duration,
    pub udp_max_members: usize,
    /// `None`: off. Used by [`Server::run`].
    pub stats_every: Option<Duration>,
    pub grace: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_conns: 100_000,
            idle_timeout: Some(Duration::from_secs(300)),
            max_frame: 65_536,
            write_buffer: 262_144,
            udp_member_ttl: Duration::from_secs(300),
            udp_max_members: 1024,
            stats_every: None,
            grace: Duration::from_secs(5),
        }
    }
}

enum Socket {
    Tcp(TcpListener),
    Udp(UdpSide),
    /// Closed for shutdown.
    Closed,
}

struct Listener {
    service_name: String,
    endpoint: Endpoint,
    framing: Framing,
    service: Box<dyn Service>,
    socket: Socket,
    /// Keys of this listener's connections: the chat room. A connection
    /// knows its place here (`member_idx`) so leaving is O(1).
    members: Vec<u32>,
    /// More may be waiting (accept or recv batch used up): come back on the
    /// next turn, because edge-triggered readiness will not say so again.
    backlog: bool,
}

/// Builds a [`Server`] from listeners: named services from specs, or
/// services of your own.
pub struct Builder {
    opts: Options,
    listeners: Vec<ListenerPlan>,
    error: Option<String>,
}

/// A listener to bind: its name, address, framing asked for, and service.
struct ListenerPlan {
    name: String,
    endpoint: Endpoint,
    framing: Option<Framing>,
    service: Box<dyn Service>,
}

impl Builder {
    /// A listener for a named service ([`service::NAMES`]).
    pub fn listen(mut self, spec: &ListenSpec) -> Self {
        let opts = ServiceOptions {
            udp_member_ttl: self.opts.udp_member_ttl,
            udp_max_members: self.opts.udp_max_members,
        };
        match service::by_name(&spec.service, &opts) {
            Some(service) => self.listeners.push(ListenerPlan {
                name: spec.service.clone(),
                endpoint: spec.endpoint,
                framing: spec.framing,
                service,
            }),
            None => self.error = Some(format!("unknown service '{}'", spec.service)),
        }
        self
    }

    /// A listener for a service of your own. `framing` `None` means the
    /// service's [`default_framing`](Service::default_framing).
    pub fn listen_with(
        mut self,
        name: &str,
        endpoint: Endpoint,
        framing: Option<Framing>,
        service: Box<dyn Service>,
    ) -> Self {
        self.listeners.push(ListenerPlan {
            name: name.to_string(),
            endpoint,
            framing,
            service,
        });
        self
    }

    /// Bind every listener, in order. Fails on the first that cannot be
    /// bound, with a message naming its address.
    pub fn build(self) -> io::Result<Server> {
        if let Some(e) = self.error {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, e));
        }
        let mut listeners = Vec::with_capacity(self.listeners.len());
        for ListenerPlan {
            name,
            endpoint,
            framing,
            service,
        } in self.listeners
        {
            let named =
                |e: io::Error| io::Error::new(e.kind(), format!("cannot bind {endpoint}: {e}"));
            let (socket, local) = match endpoint.proto {
                Proto::Tcp => {
                    let l = bind_tcp(endpoint.addr).map_err(named)?;
                    let local = l.local_addr().map_err(named)?;
                    (Socket::Tcp(l), local)
                }
                Proto::Udp => {
                    let u = bind_udp(endpoint.addr).map_err(named)?;
                    let local = u.local_addr().map_err(named)?;
                    (Socket::Udp(UdpSide::new(u)), local)
                }
            };
            let framing = framing.unwrap_or_else(|| service.default_framing());
            listeners.push(Listener {
                service_name: name,
                endpoint: Endpoint {
                    proto: endpoint.proto,
                    addr: local,
                },
                framing,
                service,
                socket,
                members: Vec::new(),
                backlog: false,
            });
        }
        let now = Instant::now();
        Ok(Server {
            opts: self.opts,
            listeners,
            conns: Slab::new(),
            registry: None,
            token_base: 0,
            token_end: 0,
            scratch: vec![0; READ_BUF],
            encode_buf: Vec::new(),
            outbox: Outbox::default(),
            pool: BufPool::default(),
            deadlines: Deadlines::default(),
            dirty: VecDeque::new(),
            deferred: Vec::new(),
            fanned_out: false,
            counters: Arc::new(Counters::default()),
            epoch: now,
            now,
            now_ms: 1,
            next_serial: 0,
            accept_paused_until: None,
            fd_episode: false,
            stopping: None,
        })
    }
}

/// A TCP welcoming socket: nonblocking, address reuse (a restarted server
/// can bind while old connections sit in TIME_WAIT), IPv6 sockets v6-only
/// (so `[::]:p` and `0.0.0.0:p` can both be bound), a deep backlog.
fn bind_tcp(addr: SocketAddr) -> io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    s.set_reuse_address(true)?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(LISTEN_BACKLOG)?;
    Ok(TcpListener::from_std(s.into()))
}

fn bind_udp(addr: SocketAddr) -> io::Result<UdpSocket> {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, None)?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    Ok(UdpSocket::from_std(s.into()))
}

/// A single-threaded nonblocking server: listeners, connections, and the
/// loop that drives them.
pub struct Server {
    opts: Options,
    listeners: Vec<Listener>,
    conns: Slab<Conn>,
    registry: Option<Registry>,
    token_base: usize,
    token_end: usize,
    /// The one read buffer, shared by every connection in turn: a
    /// connection with nothing buffered owns no memory for reading.
    scratch: Vec<u8>,
    /// Where a chat message is framed once before it is shared.
    encode_buf: Vec<u8>,
    /// Reused for every service call.
    outbox: Outbox,
    pool: BufPool,
    deadlines: Deadlines,
    /// Connections to drive before this event's handling returns, first in
    /// first out: chat recipients with new bytes, new connections greeted.
    dirty: VecDeque<usize>,
    /// Set by fan_out(): the read just handled went to other connections.
    fanned_out: bool,
    /// Connections that may still have input but used up their turn (the
    /// read budget, or a chat read that fanned out): driven again on the
    /// next on_timer(), after the poll has had its say.
    deferred: Vec<usize>,
    counters: Arc<Counters>,
    epoch: Instant,
    now: Instant,
    /// `now` in ms since `epoch`, plus one (so 0 can mean "no deadline").
    now_ms: u64,
    next_serial: u32,
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
        Builder {
            opts,
            listeners: Vec::new(),
            error: None,
        }
    }

    /// Bind the listeners `specs` names (SPEC §3 `--listen`).
    pub fn bind(specs: &[ListenSpec], opts: Options) -> io::Result<Server> {
        specs
            .iter()
            .fold(Server::builder(opts), |b, s| b.listen(s))
            .build()
    }

    /// Each listener's service name and real bound address, in order (port
    /// 0 resolved): what the `listening` lines print.
    pub fn listeners(&self) -> impl Iterator<Item = (&str, Endpoint)> + '_ {
        self.listeners
            .iter()
            .map(|l| (l.service_name.as_str(), l.endpoint))
    }

    /// The live counters, shareable with other threads.
    pub fn counters(&self) -> Arc<Counters> {
        Arc::clone(&self.counters)
    }

    /// The options in force.
    pub fn options(&self) -> &Options {
        &self.opts
    }

    /// Register every listener in `registry`, on tokens from `tokens`:
    /// listener `i` gets `tokens.start + i`, connections the tokens after.
    /// The range bounds how many connections can be open at once.
    pub fn register(&mut self, registry: &Registry, tokens: Range<usize>) -> io::Result<()> {
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
                Socket::Tcp(t) => registry.register(t, token, Interest::READABLE)?,
                Socket::Udp(u) => registry.register(&mut u.socket, token, Interest::READABLE)?,
                Socket::Closed => {}
            }
        }
        self.token_base = tokens.start;
        self.token_end = tokens.end;
        self.registry = Some(registry.try_clone()?);
        Ok(())
    }

    /// Whether `token` is one of this server's.
    pub fn owns(&self, token: Token) -> bool {
        (self.token_base..self.token_end).contains(&token.0)
    }

    fn conn_token(&self, key: usize) -> Token {
        Token(self.token_base + self.listeners.len() + key)
    }

    fn tick(&mut self) {
        self.now = Instant::now();
        self.now_ms = self.ms_at(self.now);
    }

    fn ms_at(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.epoch).as_millis() as u64 + 1
    }

    /// Handle one readiness event. Returns `false` if the token is not
    /// this server's (the caller's own sockets).
    pub fn handle_event(&mut self, event: &Event) -> bool {
        if !self.owns(event.token()) {
            return false;
        }
        self.tick();
        let i = event.token().0 - self.token_base;
        trace!(
            "event token {}: readable={} writable={} read_closed={} error={}",
            event.token().0,
            event.is_readable(),
            event.is_writable(),
            event.is_read_closed(),
            event.is_error()
        );
        if i < self.listeners.len() {
            match self.listeners[i].socket {
                Socket::Tcp(_) => self.accept_some(i),
                Socket::Udp(_) => self.udp_ready(i, event.is_readable(), event.is_writable()),
                Socket::Closed => {}
            }
        } else {
            let key = i - self.listeners.len();
            let Some(conn) = self.conns.get_mut(key) else {
                // A connection closed earlier in this same batch of events:
                // its event is stale. (If its slot was reused, the new
                // connection gets a spurious event instead, which the read
                // below answers with WouldBlock: mio allows for both.)
                trace!("event for closed connection {key}: ignored");
                return true;
            };
            // An error or hang-up is reported to the read: the next read
            // returns the error or EOF, and the connection closes there.
            if event.is_readable() || event.is_read_closed() || event.is_error() {
                conn.may_read = true;
            }
            if event.is_read_closed() {
                conn.peer_fin = true;
            }
            self.drive(key);
        }
        self.settle();
        true
    }

    // ---- TCP: accepting ------------------------------------------------

    fn accept_some(&mut self, li: usize) {
        if self.stopping.is_some() {
            return;
        }
        if self.accept_paused_until.is_some() {
            // Out of descriptors: on_timer() comes back to this listener.
            self.listeners[li].backlog = true;
            return;
        }
        for _ in 0..ACCEPT_BATCH {
            let Socket::Tcp(listener) = &self.listeners[li].socket else {
                return;
            };
            match listener.accept() {
                Ok((stream, peer)) => self.admit(li, stream, peer),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    trace!("accept on {}: WouldBlock (no more waiting; call again on the next READABLE)", self.listeners[li].endpoint);
                    self.listeners[li].backlog = false;
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if sys::is_out_of_fds(&e) => {
                    self.pause_accepting(&e);
                    self.listeners[li].backlog = true;
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => {
                    debug!(
                        "accept on {}: {e} (that connection is gone; next)",
                        self.listeners[li].endpoint
                    );
                }
                Err(e) => {
                    // Unexpected: wait for the next readiness rather than spin.
                    warn!("accept on {}: {e}", self.listeners[li].endpoint);
                    self.listeners[li].backlog = false;
                    return;
                }
            }
        }
        // The batch is used up and more may wait. Edge-triggered readiness
        // will not be reported again for them, so remember to come back:
        // next_timeout() is zero while a backlog is pending.
        trace!(
            "accept on {}: batch of {ACCEPT_BATCH} done, more may wait",
            self.listeners[li].endpoint
        );
        self.listeners[li].backlog = true;
    }

    fn pause_accepting(&mut self, e: &io::Error) {
        if !self.fd_episode {
            warn!("accept: {e}: out of file descriptors; pausing accepts until connections close");
            self.fd_episode = true;
        }
        self.accept_paused_until = Some(self.now_ms + ACCEPT_PAUSE_MS);
    }

    fn admit(&mut self, li: usize, mut stream: TcpStream, peer: SocketAddr) {
        if self.fd_episode {
            info!("accept: file descriptors available again");
            self.fd_episode = false;
        }
        let capacity = self.token_end - self.token_base - self.listeners.len();
        let limit = self.opts.max_conns.min(capacity);
        if self.conns.len() >= limit {
            self.counters.refused.add(1);
            debug!("refused {peer}: {limit} connections open (--max-conns)");
            if self.listeners[li].framing == Framing::Line {
                // Best effort, like Redis at maxclients: a new socket's send
                // buffer is empty, so this short write normally goes through.
                let _ = stream.write(MAX_CONNS_LINE);
            }
            return; // dropping the stream closes it
        }
        // Replies are whole messages written at once: Nagle's algorithm
        // would only hold the next one back waiting for an ACK.
        let _ = stream.set_nodelay(true);
        let key = self.conns.vacant_entry().key();
        let token = self.conn_token(key);
        let Some(registry) = &self.registry else {
            return;
        };
        if let Err(e) = registry.register(&mut stream, token, Interest::READABLE) {
            warn!("register {peer}: {e}; closed");
            return;
        }
        let members = &mut self.listeners[li].members;
        let member_idx = members.len() as u32;
        members.push(key as u32);
        let serial = self.next_serial;
        self.next_serial = self.next_serial.wrapping_add(1);
        self.conns.insert(Conn {
            stream,
            peer,
            bufs: None,
            deadline: 0,
            timer_at: 0,
            serial,
            member_idx,
            listener: li as u16,
            state: State::Open,
            interest: Interest::READABLE,
            // Registering a socket that already has bytes reports them as
            // an event; nothing to read until then.
            may_read: false,
            peer_fin: false,
            dirty: false,
            deferred: false,
            doomed: false,
        });
        self.counters.accepted.add(1);
        self.counters.open.add(1);
        debug!(
            "accepted {peer} on {} as connection {key}",
            self.listeners[li].endpoint
        );
        self.touch(key);
        let l = &mut self.listeners[li];
        l.service.on_connect(peer, &mut self.outbox);
        self.apply_outbox(li, Some(key));
        // A greeting is written before this event's handling returns.
        if self.conns.get(key).is_some_and(|c| c.pending_out() > 0) {
            self.mark_dirty(key);
        }
    }

    // ---- TCP: one connection -------------------------------------------

    /// Move a connection along as far as it can go without blocking: write
    /// what is owed, read and answer while reading is allowed, close when
    /// its life is over, and leave it registered for exactly what it is
    /// waiting for.
    fn drive(&mut self, key: usize) {
        let mut reads = 0;
        loop {
            if !self.write_pending(key) {
                return; // closed on a write error
            }
            let hw = self.opts.write_buffer;
            let Some(conn) = self.conns.get_mut(key) else {
                return;
            };
            match conn.state {
                State::Open => {
                    // Above the high-water mark we leave the socket unread
                    // (may_read stays set): the WRITABLE event that drains
                    // the queue brings us back here to read on.
                    if conn.may_read && conn.pending_out() <= hw {
                        if reads == READS_PER_TURN {
                            // Its turn is over; edge-triggered readiness
                            // will not report the rest, so remember it.
                            self.defer(key);
                            break;
                        }
                        self.fanned_out = false;
                        if !self.read_once(key) {
                            return;
                        }
                        reads += 1;
                        if self.fanned_out {
                            // That read went out to other connections (chat).
                            // They write, and are judged slow or not, before
                            // this one reads again: a recipient then holds at
                            // most one read's fan-out beyond --write-buffer.
                            self.defer(key);
                            break;
                        }
                        continue; // answer what was read, then read again
                    }
                }
                // Still owed: wait for WRITABLE.
                State::PeerClosed | State::Closing if conn.pending_out() > 0 => {}
                State::PeerClosed => {
                    // The peer sent FIN and has every reply it was owed. Its
                    // receive side is empty (we read to EOF), so close()
                    // sends a plain FIN.
                    self.close(key, &"peer closed; every reply delivered");
                    return;
                }
                State::Closing => {
                    // Everything owed is with the kernel: our FIN goes out
                    // after it. Then wait for the peer's FIN before closing,
                    // because closing with unread input would send an RST,
                    // and an RST can destroy replies still in flight.
                    let _ = conn.stream.shutdown(Shutdown::Write);
                    conn.state = State::Lingering;
                    conn.may_read = true;
                    let at = self
                        .stopping
                        .unwrap_or(u64::MAX)
                        .min(self.now_ms + LINGER_MS);
                    self.set_deadline(key, at);
                    continue;
                }
                State::Lingering => {
                    if conn.may_read && !self.discard_input(key) {
                        return;
                    }
                }
            }
            break;
        }
        self.update_interest(key);
    }

    /// One read, and the answers to it. Returns `false` if the connection
    /// was closed.
    fn read_once(&mut self, key: usize) -> bool {
        let mut scratch = std::mem::take(&mut self.scratch);
        let Some(conn) = self.conns.get_mut(key) else {
            return false;
        };
        let alive = match conn.stream.read(&mut scratch) {
            Ok(0) => {
                trace!("conn {key}: read 0 bytes: EOF (the peer sent FIN)");
                conn.may_read = false;
                // A last frame without its terminator is still a frame.
                self.consume(key, &[], true);
                if let Some(conn) = self.conns.get_mut(key) {
                    if conn.state == State::Open {
                        conn.state = State::PeerClosed;
                    }
                }
                true
            }
            Ok(n) => {
                trace!("conn {key}: read {n} bytes");
                // On Linux a stream socket returns less than was asked only
                // when its receive buffer is empty, so a short read proves
                // it drained (tokio relies on the same): skip the read that
                // would only say WouldBlock, one syscall per message saved.
                // Not after the peer's FIN was reported: then read on to
                // EOF, which no further event would announce.
                if n < scratch.len() && !conn.peer_fin {
                    conn.may_read = false;
                }
                self.counters.bytes_in.add(n as u64);
                self.touch(key);
                self.consume(key, &scratch[..n], false);
                true
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                trace!("conn {key}: read: WouldBlock (drained; call again on the next READABLE)");
                conn.may_read = false;
                true
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => true,
            Err(e) => {
                self.close(key, &format_args!("read: {e}"));
                false
            }
        };
        self.scratch = scratch;
        alive
    }

    /// Lingering: read and throw away until EOF (then close) or WouldBlock.
    fn discard_input(&mut self, key: usize) -> bool {
        let mut scratch = std::mem::take(&mut self.scratch);
        let mut alive = true;
        while let Some(conn) = self.conns.get_mut(key) {
            match conn.stream.read(&mut scratch) {
                Ok(0) => {
                    self.close(key, &"closed by us; the peer's FIN arrived");
                    alive = false;
                    break;
                }
                Ok(n) => trace!("conn {key}: lingering, discarded {n} bytes"),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    conn.may_read = false;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.close(key, &format_args!("lingering read: {e}"));
                    alive = false;
                    break;
                }
            }
        }
        self.scratch = scratch;
        alive
    }

    /// Hand bytes just read (after any held from before) to the framing
    /// and the service; queue the replies; keep what is left.
    fn consume(&mut self, key: usize, data: &[u8], at_eof: bool) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let li = conn.listener as usize;
        let peer = conn.peer;
        let max_frame = self.opts.max_frame;
        // Bytes held from earlier reads go in front of the new ones. When
        // none are held — the common case — decode straight from the read
        // buffer, without a copy.
        let mut held = conn
            .bufs
            .as_mut()
            .map(|b| std::mem::take(&mut b.input))
            .unwrap_or_default();
        let from_held = !held.is_empty();
        if from_held {
            held.extend_from_slice(data);
        }
        let buf: &[u8] = if from_held { &held } else { data };

        let listener = &mut self.listeners[li];
        let framing = listener.framing;
        let mut used = 0;
        let mut frames = 0;
        let mut too_long = false;
        if framing == Framing::Raw {
            if !buf.is_empty() {
                used = listener
                    .service
                    .on_bytes(peer, buf, at_eof, &mut self.outbox)
                    .min(buf.len());
                frames = 1;
                // A service may hold back a little (upper: a character cut
                // in two), but no more than a frame's worth.
                too_long = buf.len() - used > max_frame;
            }
        } else {
            // Take every whole frame already buffered before reading more.
            loop {
                match framing.decode(&buf[used..], max_frame, at_eof) {
                    Decoded::Frame { payload, consumed } => {
                        let frame = &buf[used + payload.start..used + payload.end];
                        listener.service.on_frame(peer, frame, &mut self.outbox);
                        used += consumed;
                        frames += 1;
                    }
                    Decoded::NeedMore => break,
                    Decoded::TooLong => {
                        too_long = true;
                        break;
                    }
                }
            }
        }
        let left = buf.len() - used;
        // Keep an incomplete frame for the next read: a partial read is the
        // normal case in a byte stream, not an error.
        if left > 0 && !too_long && !at_eof {
            if from_held {
                held.drain(..used);
            } else {
                held.extend_from_slice(&data[used..]);
            }
        } else {
            if at_eof && left > 0 && !too_long {
                debug!("{peer}: {left} bytes of an incomplete frame at EOF discarded");
            }
            held.clear();
        }
        self.counters.frames_in.add(frames);
        if let Some(conn) = self.conns.get_mut(key) {
            if !held.is_empty() {
                conn.bufs_mut(&mut self.pool).input = held;
            } else if let Some(b) = conn.bufs.as_mut() {
                b.input = held; // keep its capacity for the next partial frame
            }
        }
        self.apply_outbox(li, Some(key));
        if too_long {
            debug!("{peer}: frame over --max-frame ({max_frame} bytes); closing");
            if let Some(conn) = self.conns.get_mut(key) {
                if framing == Framing::Line {
                    let out = &mut conn.bufs_mut(&mut self.pool).out;
                    out.append_with(|v| v.extend_from_slice(LINE_TOO_LONG));
                    self.counters.pending_out.add(LINE_TOO_LONG.len() as u64);
                }
                self.begin_closing(key);
            }
        }
    }

    /// Write what is owed until done or `WouldBlock`. Returns `false` if
    /// the connection was closed.
    fn write_pending(&mut self, key: usize) -> bool {
        let Some(conn) = self.conns.get_mut(key) else {
            return false;
        };
        let Some(bufs) = conn.bufs.as_mut() else {
            return true;
        };
        let mut wrote = 0;
        let mut failed = None;
        while !bufs.out.is_empty() {
            match bufs.out.write_to(&mut conn.stream) {
                Ok(0) => {
                    failed = Some(io::Error::from(io::ErrorKind::WriteZero));
                    break;
                }
                // A partial write is normal: the kernel took what fit in
                // the socket's send buffer; the rest stays queued and the
                // next write (or WRITABLE) continues from there.
                Ok(n) => {
                    trace!("conn {key}: wrote {n} bytes, {} pending", bufs.out.len());
                    wrote += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    trace!(
                        "conn {key}: write: WouldBlock with {} bytes pending (send buffer full; call again on WRITABLE)",
                        bufs.out.len()
                    );
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        conn.release_bufs_if_empty(&mut self.pool);
        self.counters.bytes_out.add(wrote as u64);
        self.counters.pending_out.sub(wrote as u64);
        if let Some(e) = failed {
            self.close(key, &format_args!("write: {e}"));
            return false;
        }
        if wrote > 0 {
            self.touch(key);
        }
        true
    }

    /// Re-register only when the interest the connection needs changed, so
    /// the usual request → reply round costs no `epoll_ctl` at all.
    fn update_interest(&mut self, key: usize) {
        let hw = self.opts.write_buffer;
        let token = self.conn_token(key);
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let Some(want) = conn.wanted_interest(hw) else {
            return;
        };
        if want == conn.interest {
            return;
        }
        trace!("conn {key}: interest {:?} -> {want:?}", conn.interest);
        let Some(registry) = &self.registry else {
            return;
        };
        match registry.reregister(&mut conn.stream, token, want) {
            Ok(()) => conn.interest = want,
            Err(e) => self.close(key, &format_args!("reregister: {e}")),
        }
    }

    /// Deliver what is queued, then close (see [`State::Closing`]).
    fn begin_closing(&mut self, key: usize) {
        if let Some(conn) = self.conns.get_mut(key) {
            if conn.state == State::Open {
                conn.state = State::Closing;
                self.mark_dirty(key);
            }
        }
    }

    fn defer(&mut self, key: usize) {
        if let Some(conn) = self.conns.get_mut(key) {
            if !conn.deferred {
                conn.deferred = true;
                self.deferred.push(key);
            }
        }
    }

    fn mark_dirty(&mut self, key: usize) {
        if let Some(conn) = self.conns.get_mut(key) {
            if !conn.dirty {
                conn.dirty = true;
                self.dirty.push_back(key);
            }
        }
    }

    /// Close now; what was not written is dropped. `why` is for the log.
    fn close(&mut self, key: usize, why: &dyn fmt::Display) {
        let Some(mut conn) = self.conns.try_remove(key) else {
            return;
        };
        if let Some(r) = &self.registry {
            let _ = r.deregister(&mut conn.stream);
        }
        let li = conn.listener as usize;
        let members = &mut self.listeners[li].members;
        let idx = conn.member_idx as usize;
        members.swap_remove(idx);
        if let Some(&moved) = members.get(idx) {
            if let Some(c) = self.conns.get_mut(moved as usize) {
                c.member_idx = idx as u32;
            }
        }
        self.counters.pending_out.sub(conn.pending_out() as u64);
        if let Some(b) = conn.bufs.take() {
            self.pool.put(b);
        }
        self.counters.closed.add(1);
        self.counters.open.sub(1);
        debug!("closed {} (connection {key}): {why}", conn.peer);
        let peer = conn.peer;
        drop(conn); // closes the socket
        self.listeners[li]
            .service
            .on_disconnect(peer, &mut self.outbox);
        self.apply_outbox(li, None);
        // A descriptor is free: if accepting paused for want of one, try
        // again on the next on_timer().
        if self.accept_paused_until.is_some() {
            self.accept_paused_until = Some(self.now_ms);
        }
    }

    // ---- replies and the chat room -------------------------------------

    /// Route the messages a service call produced, framed for the
    /// listener: to the sender's queue, or shared into every other member's.
    fn apply_outbox(&mut self, li: usize, sender: Option<usize>) {
        if self.outbox.is_empty() {
            return;
        }
        let mut outbox = std::mem::take(&mut self.outbox);
        let framing = self.listeners[li].framing;
        for (to, payload) in outbox.messages() {
            self.counters.frames_out.add(1);
            match to {
                To::Sender => {
                    let Some(conn) = sender.and_then(|k| self.conns.get_mut(k)) else {
                        continue;
                    };
                    let out = &mut conn.bufs_mut(&mut self.pool).out;
                    let before = out.len();
                    out.append_with(|v| framing.encode(payload, v));
                    self.counters.pending_out.add((out.len() - before) as u64);
                    self.counters.peak_conn_pending.max(out.len() as u64);
                }
                To::Others => self.fan_out(li, sender, framing, payload),
                To::Addr(a) => debug!("tcp service addressed a datagram to {a}: ignored"),
            }
        }
        outbox.clear();
        self.outbox = outbox;
    }

    /// One message to every other open connection of listener `li`.
    fn fan_out(&mut self, li: usize, sender: Option<usize>, framing: Framing, payload: &[u8]) {
        self.encode_buf.clear();
        framing.encode(payload, &mut self.encode_buf);
        // Framed once, allocated once: each recipient's queue holds a
        // reference to the same bytes, not a copy.
        let frame: Rc<[u8]> = Rc::from(&self.encode_buf[..]);
        let hw = self.opts.write_buffer;
        self.fanned_out = true;
        for &m in &self.listeners[li].members {
            let m = m as usize;
            if Some(m) == sender {
                continue;
            }
            let Some(conn) = self.conns.get_mut(m) else {
                continue;
            };
            if conn.state != State::Open {
                continue;
            }
            let out = &mut conn.bufs_mut(&mut self.pool).out;
            out.push_shared(Rc::clone(&frame));
            self.counters.pending_out.add(frame.len() as u64);
            self.counters.peak_conn_pending.max(out.len() as u64);
            // Over the mark now is not yet too slow: one read can fan out
            // many messages before this recipient had a chance to write.
            // settle() writes first, and cuts it off only if still over.
            if out.len() > hw {
                conn.doomed = true;
            }
            if !conn.dirty {
                conn.dirty = true;
                self.dirty.push_back(m);
            }
        }
    }

    /// Finish what this event started for other connections: drive every
    /// connection marked dirty, in order, and cut off each chat recipient
    /// still over `--write-buffer` once it has written what it could — a
    /// reader that does not keep up is disconnected rather than allowed to
    /// stall the room or grow without bound (SPEC §3).
    fn settle(&mut self) {
        let hw = self.opts.write_buffer;
        while let Some(k) = self.dirty.pop_front() {
            match self.conns.get_mut(k) {
                Some(c) if c.dirty => c.dirty = false,
                _ => continue,
            }
            self.drive(k);
            let Some(c) = self.conns.get_mut(k) else {
                continue;
            };
            if std::mem::take(&mut c.doomed) && c.pending_out() > hw {
                self.close(
                    k,
                    &format_args!("chat recipient over --write-buffer ({hw} bytes unread)"),
                );
            }
        }
    }

    // ---- deadlines ------------------------------------------------------

    /// Traffic: push the idle deadline forward (O(1): the heap is only
    /// touched if the connection has no entry in it).
    fn touch(&mut self, key: usize) {
        let Some(idle) = self.opts.idle_timeout else {
            return;
        };
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.state == State::Lingering {
            return; // a lingering connection's deadline does not move
        }
        conn.deadline = self.now_ms + idle.as_millis() as u64;
        if conn.timer_at == 0 {
            conn.timer_at = conn.deadline;
            self.deadlines.push(Entry {
                at: conn.deadline,
                key: key as u32,
                serial: conn.serial,
            });
        }
    }

    /// Set a deadline that may be earlier than the current one.
    fn set_deadline(&mut self, key: usize, at: u64) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        conn.deadline = at;
        if conn.timer_at == 0 || conn.timer_at > at {
            conn.timer_at = at;
            self.deadlines.push(Entry {
                at,
                key: key as u32,
                serial: conn.serial,
            });
        }
    }

    fn expire_deadlines(&mut self) {
        while let Some(e) = self.deadlines.pop_due(self.now_ms) {
            let key = e.key as usize;
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            if conn.serial != e.serial || conn.timer_at != e.at {
                continue; // stale: closed since, or superseded
            }
            // A live entry always has its connection's deadline set.
            conn.timer_at = 0;
            if conn.deadline <= self.now_ms {
                let why = match conn.state {
                    State::Lingering => "closed by us; the peer did not close in time",
                    _ => "idle timeout",
                };
                self.close(key, &why);
            } else {
                // Traffic since: check again at the new deadline.
                conn.timer_at = conn.deadline;
                self.deadlines.push(Entry {
                    at: conn.deadline,
                    key: e.key,
                    serial: e.serial,
                });
            }
        }
        let conns = &self.conns;
        self.deadlines.compact_if_stale(conns.len(), |e| {
            conns
                .get(e.key as usize)
                .is_some_and(|c| c.serial == e.serial && c.timer_at == e.at)
        });
    }

    // ---- UDP ------------------------------------------------------------

    fn udp_ready(&mut self, li: usize, readable: bool, writable: bool) {
        let Socket::Udp(u) = &mut self.listeners[li].socket else {
            return;
        };
        if writable {
            u.flush(&self.counters);
        }
        if readable {
            u.may_read = true;
        }
        self.recv_some(li);
    }

    /// Receive and answer datagrams until `WouldBlock`, the batch limit, or
    /// too many unsent replies.
    fn recv_some(&mut self, li: usize) {
        let mut scratch = std::mem::take(&mut self.scratch);
        let hw = self.opts.write_buffer;
        let now = self.now;
        let stopping = self.stopping.is_some();
        let listener = &mut self.listeners[li];
        let Socket::Udp(u) = &mut listener.socket else {
            self.scratch = scratch;
            return;
        };
        let mut budget = UDP_BATCH;
        listener.backlog = false;
        while u.may_read && !u.paused(hw) && !stopping {
            if budget == 0 {
                listener.backlog = true; // edge-triggered: come back on our own
                break;
            }
            budget -= 1;
            // The read buffer holds 64 KiB: any UDP datagram (at most 65,507
            // bytes over IPv4) arrives whole.
            match u.socket.recv_from(&mut scratch) {
                Ok((n, peer)) => {
                    trace!("udp {}: received {n} bytes from {peer}", listener.endpoint);
                    self.counters.bytes_in.add(n as u64);
                    if let Some(why) = udp::blocked_peer(peer) {
                        debug!(
                            "udp {}: dropped datagram from {peer}: {why}",
                            listener.endpoint
                        );
                        continue;
                    }
                    self.counters.frames_in.add(1);
                    listener
                        .service
                        .on_datagram(peer, &scratch[..n], now, &mut self.outbox);
                    for (to, payload) in self.outbox.messages() {
                        self.counters.frames_out.add(1);
                        match to {
                            To::Sender => u.send(peer, payload, &self.counters),
                            To::Addr(a) => u.send(a, payload, &self.counters),
                            To::Others => debug!("udp service addressed its TCP room: ignored"),
                        }
                    }
                    self.outbox.clear();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    trace!(
                        "udp {}: recv_from: WouldBlock (drained; call again on the next READABLE)",
                        listener.endpoint
                    );
                    u.may_read = false;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // An ICMP error reported late, say: that one datagram's
                // business. The socket itself is fine.
                Err(e) => debug!("udp {}: recv_from: {e}", listener.endpoint),
            }
        }
        let want = u.wanted_interest(hw);
        if want != u.interest {
            trace!(
                "udp {}: interest {:?} -> {want:?}",
                listener.endpoint,
                u.interest
            );
            if let Some(r) = &self.registry {
                let token = Token(self.token_base + li);
                match r.reregister(&mut u.socket, token, want) {
                    Ok(()) => u.interest = want,
                    Err(e) => warn!("udp {}: reregister: {e}", listener.endpoint),
                }
            }
        }
        self.scratch = scratch;
    }

    // ---- time and shutdown ---------------------------------------------

    /// How long the caller may sleep before [`on_timer`](Self::on_timer)
    /// has work: the earliest deadline, or zero if a listener has more
    /// waiting. `None`: until an event.
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
        if more || !self.deferred.is_empty() {
            return Some(Duration::ZERO);
        }
        let at = [
            self.deadlines.next_at(),
            self.accept_paused_until,
            self.stopping,
        ]
        .into_iter()
        .flatten()
        .min()?;
        let now = self.ms_at(Instant::now());
        Some(Duration::from_millis(at.saturating_sub(now)))
    }

    /// The timer hook: expire idle connections, continue accepts, receives
    /// and reads a batch limit cut short, end a shutdown's grace period.
    /// Call it after every poll (it is cheap when there is nothing to do).
    pub fn on_timer(&mut self) {
        self.tick();
        self.expire_deadlines();
        for key in std::mem::take(&mut self.deferred) {
            if let Some(conn) = self.conns.get_mut(key) {
                if std::mem::take(&mut conn.deferred) {
                    self.drive(key);
                }
            }
        }
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
    }

    /// Stop gracefully (SIGINT/SIGTERM): close the welcoming sockets, stop
    /// reading requests, deliver every reply already owed for up to
    /// `grace`, then close. [`is_finished`](Self::is_finished) says when
    /// all is done.
    pub fn shutdown(&mut self, grace: Duration) {
        self.tick();
        if self.stopping.is_some() {
            return;
        }
        self.stopping = Some(self.now_ms + grace.as_millis() as u64);
        info!("shutting down: no new connections; delivering owed replies for up to {grace:?}");
        for l in &mut self.listeners {
            if let Socket::Tcp(t) = &mut l.socket {
                if let Some(r) = &self.registry {
                    let _ = r.deregister(t);
                }
                // Closing the welcoming socket refuses new connections at
                // once instead of leaving them in the backlog.
                l.socket = Socket::Closed;
            }
        }
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for key in keys {
            self.begin_closing(key);
        }
        self.settle();
    }

    /// Whether the server is shutting down.
    pub fn is_stopping(&self) -> bool {
        self.stopping.is_some()
    }

    /// After [`shutdown`](Self::shutdown): every connection is closed and
    /// every queued datagram sent (or the grace period is over).
    pub fn is_finished(&self) -> bool {
        self.stopping.is_some()
            && self.conns.is_empty()
            && !self
                .listeners
                .iter()
                .any(|l| matches!(&l.socket, Socket::Udp(u) if u.has_queued()))
    }

    /// End the grace period now: close everything, owed or not.
    pub fn stop_now(&mut self) {
        if self.stopping.is_none() {
            self.shutdown(Duration::ZERO);
        }
        self.abort_all();
    }

    fn abort_all(&mut self) {
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for key in keys {
            self.close(key, &"shutdown grace period over");
        }
        for l in &mut self.listeners {
            l.socket = Socket::Closed;
        }
    }

    /// Run the loop on a `Poll` of its own until SIGINT or SIGTERM and the
    /// graceful shutdown that follows (a second signal cuts it short).
    /// Prints the `--stats` line to stderr if asked.
    pub fn run(mut self) -> io::Result<()> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        use signal_hook_mio::v1_0::Signals;

        // The last usable token is the signal pipe's; the server has the rest.
        const SIGNALS: Token = Token(usize::MAX - 1);
        let mut poll = Poll::new()?;
        self.register(poll.registry(), 0..SIGNALS.0)?;
        let mut signals = Signals::new([SIGINT, SIGTERM])?;
        poll.registry()
            .register(&mut signals, SIGNALS, Interest::READABLE)?;
        let mut events = Events::with_capacity(1024);
        let mut next_stats = self.opts.stats_every.map(|d| Instant::now() + d);
        loop {
            let mut timeout = self.next_timeout();
            if let Some(at) = next_stats {
                let d = at.saturating_duration_since(Instant::now());
                timeout = Some(timeout.map_or(d, |t| t.min(d)));
            }
            if let Err(e) = poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            for event in events.iter() {
                if event.token() == SIGNALS {
                    for sig in signals.pending() {
                        if self.is_stopping() {
                            warn!("signal {sig} again: closing everything now");
                            self.stop_now();
                        } else {
                            info!("signal {sig}: stopping");
                            self.shutdown(self.opts.grace);
                        }
                    }
                } else {
                    self.handle_event(event);
                }
            }
            self.on_timer();
            if let (Some(at), Some(every)) = (next_stats, self.opts.stats_every) {
                if Instant::now() >= at {
                    eprintln!("{}", self.counters.snapshot());
                    next_stats = Some(at + every);
                }
            }
            if self.is_finished() {
                info!("every connection closed; exiting");
                return Ok(());
            }
        }
    }
}

impl fmt::Debug for Server {
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
