//! The simulated world: a clock the test moves, in-memory TCP connections
//! with bounded buffers each way, UDP sockets, and readiness computed the
//! way epoll's edge-triggered mode reports it — plus faults at random.
//!
//! ```text
//!   client (the test)            Net                      server (SimWorld)
//!   send ──────────────▶ c2s (bounded) ─── READABLE edge ──▶ read
//!   recv ◀────────────── s2c (bounded) ◀── WRITABLE edge ─── write
//!   fin / reset ───────▶ EOF / ECONNRESET on the next read
//! ```
//!
//! Edges follow epoll's: new bytes, a FIN or room to write raise an event
//! for a socket registered for it; (re)registering a socket that is ready
//! reports it at once; an error is reported whatever the interest. Events
//! are merged per token and handed out in order, a few per poll, so a
//! turn can end before every ready socket was seen. Faults: `Interrupted`
//! on any call, short writes, EMFILE on accept, spurious events. A read
//! returns all that waits (up to the buffer), as Linux does for a stream
//! socket: the loop relies on a short read meaning drained.
//!
//! The world also keeps what the oracles need and the server cannot fake:
//! when bytes last moved on each connection, when the server closed it,
//! whether that close was a reset.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Instant;

use mio::{Interest, Token};

use crate::server::world::{Ready, Sock};

/// xorshift64*: small, seeded, good enough to pick fates.
#[derive(Clone, Debug)]
pub(crate) struct Rng(pub u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// In `0..n`.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    /// In `lo..=hi`.
    pub(crate) fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    pub(crate) fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
}

/// How the server's end of a connection stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum End {
    /// In the listener's backlog.
    Waiting,
    /// Accepted and not closed.
    Open,
    /// Closed at this time (ms); `reset`: with unread input, so the kernel
    /// sent an RST (what the client had not read yet is destroyed).
    Closed { at: u64, reset: bool },
}

/// One TCP connection, both ends.
#[derive(Debug)]
pub(crate) struct Pipe {
    pub client: SocketAddr,
    pub c2s: VecDeque<u8>,
    pub c2s_cap: usize,
    pub s2c: VecDeque<u8>,
    pub s2c_cap: usize,
    pub client_fin: bool,
    pub client_reset: bool,
    /// The server's FIN (`shutdown_write`), and when.
    pub server_fin: Option<u64>,
    pub end: End,
    pub(super) reg: Option<(Token, Interest)>,
    /// When bytes last moved between the server and this connection
    /// (a read or a write of the server's): the idle timeout's start.
    pub last_io: u64,
    /// Every read of the server's: (when, bytes).
    pub reads: Vec<(u64, usize)>,
    /// Bytes the server has read.
    pub read_total: usize,
    /// Registered once (never if refused at the cap or its registration failed).
    pub registered: bool,
    pub reg_failed: bool,
    /// The turn since which input waits unread while the server may read
    /// it (for the starvation check).
    pub waiting_since: Option<u64>,
}

/// One UDP socket of the server's.
#[derive(Debug)]
pub(super) struct UdpSock {
    pub(super) addr: SocketAddr,
    pub(super) inq: VecDeque<(SocketAddr, Vec<u8>)>,
    pub(super) reg: Option<(Token, Interest)>,
    /// Its send buffer is full until the test frees it.
    pub(super) blocked: bool,
}

/// What faults to inject, in percent per call.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Faults {
    pub interrupted: u64,
    pub short_write: u64,
    pub emfile: u64,
    pub register: u64, // a new connection's registration fails
    pub spurious: u64,
    pub udp_blocked: u64,
}

/// A listening socket: its address, its backlog of pipe ids, and its
/// registration (`None`: closed, or not yet registered).
pub(super) type SimListening = (SocketAddr, VecDeque<usize>, Option<(Token, Interest)>);

/// The whole simulated network and clock.
#[derive(Debug)]
pub(crate) struct Net {
    pub now_ms: u64,
    pub(super) base: Instant,
    pub rng: Rng,
    pub faults: Faults,
    /// Listeners: address, backlog of pipe ids, registration, open.
    pub(super) listeners: Vec<SimListening>,
    pub pipes: Vec<Pipe>,
    pub(super) udps: Vec<UdpSock>,
    /// Datagrams the server sent, by destination.
    pub inbox: HashMap<SocketAddr, VecDeque<Vec<u8>>>,
    /// Events raised and not yet polled, merged per token, in order.
    pub(super) ready: Vec<Ready>,
    /// Server turns so far (the test counts them).
    pub turn: u64,
    /// `--max-conns`, to judge refusals by.
    pub max_conns: usize,
    /// A write after our FIN, or the like: what the server must never do.
    pub violations: Vec<String>,
}

/// A handle on the shared world: the server's [`World`], and the test's.
#[derive(Clone, Debug)]
pub(crate) struct SimWorld(pub Rc<RefCell<Net>>);

impl SimWorld {
    pub(crate) fn new(seed: u64, faults: Faults) -> Self {
        SimWorld(Rc::new(RefCell::new(Net {
            now_ms: 0,
            base: Instant::now(),
            rng: Rng::new(seed ^ 0x5EED),
            faults,
            listeners: Vec::new(),
            pipes: Vec::new(),
            udps: Vec::new(),
            inbox: HashMap::new(),
            ready: Vec::new(),
            turn: 0,
            max_conns: usize::MAX,
            violations: Vec::new(),
        })))
    }
}

fn raise(ready: &mut Vec<Ready>, token: Token, f: impl Fn(&mut Ready)) {
    if let Some(r) = ready.iter_mut().find(|r| r.token == token) {
        f(r);
        return;
    }
    let mut r = Ready {
        token,
        readable: false,
        writable: false,
        read_closed: false,
        error: false,
    };
    f(&mut r);
    ready.push(r);
}

impl Pipe {
    fn readable(&self) -> bool {
        !self.c2s.is_empty() || self.client_fin || self.client_reset
    }
    fn writable(&self) -> bool {
        self.s2c.len() < self.s2c_cap || self.client_reset
    }
}

impl Net {
    // ---- the test's side ------------------------------------------------

    /// A client connects to listener `li`: the connection waits in its
    /// backlog. Its id.
    pub(crate) fn connect(
        &mut self,
        li: usize,
        client: SocketAddr,
        c2s_cap: usize,
        s2c_cap: usize,
    ) -> usize {
        let id = self.pipes.len();
        self.pipes.push(Pipe {
            client,
            c2s: VecDeque::new(),
            c2s_cap,
            s2c: VecDeque::new(),
            s2c_cap,
            client_fin: false,
            client_reset: false,
            server_fin: None,
            end: End::Waiting,
            reg: None,
            last_io: self.now_ms,
            reads: Vec::new(),
            read_total: 0,
            waiting_since: None,
            registered: false,
            reg_failed: false,
        });
        let (_, backlog, reg) = &mut self.listeners[li];
        backlog.push_back(id);
        if let Some((t, i)) = *reg {
            if i.is_readable() {
                raise(&mut self.ready, t, |r| r.readable = true);
            }
        }
        id
    }

    /// Whether listener `li` still takes connections (not closed by a
    /// shutdown).
    pub(crate) fn listening(&self, li: usize) -> bool {
        self.listeners[li].2.is_some()
    }

    /// The client sends what fits of `bytes`; how much did.
    pub(crate) fn send(&mut self, id: usize, bytes: &[u8]) -> usize {
        let turn = self.turn;
        let p = &mut self.pipes[id];
        if p.client_fin || p.client_reset || matches!(p.end, End::Closed { .. }) {
            return 0;
        }
        let n = bytes.len().min(p.c2s_cap - p.c2s.len());
        p.c2s.extend(&bytes[..n]);
        if n > 0 {
            p.waiting_since.get_or_insert(turn);
            if let Some((t, i)) = p.reg {
                if i.is_readable() {
                    raise(&mut self.ready, t, |r| r.readable = true);
                }
            }
        }
        n
    }

    /// The client reads up to `max` bytes.
    pub(crate) fn recv(&mut self, id: usize, max: usize) -> Vec<u8> {
        let p = &mut self.pipes[id];
        let n = max.min(p.s2c.len());
        let got: Vec<u8> = p.s2c.drain(..n).collect();
        if n > 0 && p.end == End::Open {
            if let Some((t, i)) = p.reg {
                if i.is_writable() {
                    raise(&mut self.ready, t, |r| r.writable = true);
                }
            }
        }
        got
    }

    /// Whether the client has read everything there will ever be: the
    /// server sent its FIN or closed, and nothing is left to read.
    pub(crate) fn at_eof(&self, id: usize) -> bool {
        let p = &self.pipes[id];
        p.s2c.is_empty() && (p.server_fin.is_some() || matches!(p.end, End::Closed { .. }))
    }

    /// The client half-closes.
    pub(crate) fn fin(&mut self, id: usize) {
        let p = &mut self.pipes[id];
        if p.client_fin {
            return;
        }
        p.client_fin = true;
        if let Some((t, i)) = p.reg {
            if i.is_readable() {
                raise(&mut self.ready, t, |r| {
                    r.readable = true;
                    r.read_closed = true;
                });
            }
        }
    }

    /// The client resets the connection (RST): reported whatever the
    /// interest, as EPOLLERR | EPOLLHUP are.
    pub(crate) fn reset(&mut self, id: usize) {
        let p = &mut self.pipes[id];
        p.client_reset = true;
        p.c2s.clear();
        p.s2c.clear();
        if let Some((t, _)) = p.reg {
            raise(&mut self.ready, t, |r| {
                r.readable = true;
                r.read_closed = true;
                r.error = true;
            });
        }
    }

    /// A datagram from `from` reaches UDP listener socket `u`.
    pub(crate) fn send_datagram(&mut self, u: usize, from: SocketAddr, d: Vec<u8>) {
        let s = &mut self.udps[u];
        s.inq.push_back((from, d));
        if let Some((t, i)) = s.reg {
            if i.is_readable() {
                raise(&mut self.ready, t, |r| r.readable = true);
            }
        }
    }

    /// Let full UDP send buffers take datagrams again (WRITABLE edges).
    pub(crate) fn unblock_udp(&mut self) {
        for s in &mut self.udps {
            if std::mem::take(&mut s.blocked) {
                if let Some((t, i)) = s.reg {
                    if i.is_writable() {
                        raise(&mut self.ready, t, |r| r.writable = true);
                    }
                }
            }
        }
    }

    /// The address of the server's UDP socket `u`.
    pub(crate) fn udp_addr(&self, u: usize) -> SocketAddr {
        self.udps[u].addr
    }

    /// Up to `max` events (what one `epoll_wait` returns), and at random a
    /// spurious one (mio allows them: readiness is a hint).
    pub(crate) fn poll(&mut self, max: usize) -> Vec<Ready> {
        let pct = self.faults.spurious;
        if self.rng.chance(pct) {
            let regs: Vec<Token> = self
                .pipes
                .iter()
                .filter_map(|p| p.reg.map(|r| r.0))
                .collect();
            if !regs.is_empty() {
                let t = regs[self.rng.below(regs.len() as u64) as usize];
                raise(&mut self.ready, t, |r| r.readable = true);
            }
        }
        let n = max.min(self.ready.len());
        self.ready.drain(..n).collect()
    }

    /// Connections the server holds open.
    pub(crate) fn open_conns(&self) -> usize {
        self.pipes
            .iter()
            .filter(|p| p.end == End::Open && p.registered)
            .count()
    }

    /// Whether events wait to be polled.
    pub(crate) fn has_events(&self) -> bool {
        !self.ready.is_empty()
    }

    pub(super) fn interrupted(&mut self) -> bool {
        let pct = self.faults.interrupted;
        self.rng.chance(pct)
    }

    pub(super) fn close_pipe(&mut self, id: usize) {
        let now = self.now_ms;
        let p = &mut self.pipes[id];
        // Closing with unread input makes the kernel send an RST, which
        // destroys what the client had not read.
        let reset = !p.c2s.is_empty() && !p.client_reset;
        if reset {
            p.s2c.clear();
        }
        p.end = End::Closed { at: now, reset };
        p.reg = None;
        p.waiting_since = None;
        if !p.registered && !p.reg_failed {
            // Refused at the cap: only right if the cap was reached.
            let open = self.open_conns();
            if open < self.max_conns {
                self.violations.push(format!(
                    "conn {id} refused with {open} of --max-conns {} open",
                    self.max_conns
                ));
            }
        }
    }

    pub(super) fn readiness(&mut self, s: &Sock<'_, SimWorld>, token: Token, interest: Interest) {
        let (readable, writable) = match s {
            Sock::Listener(l) => (!self.listeners[l.0].1.is_empty(), false),
            Sock::Stream(s) => {
                let p = &self.pipes[s.id];
                (p.readable(), p.writable())
            }
            Sock::Udp(u) => (!self.udps[u.0].inq.is_empty(), !self.udps[u.0].blocked),
        };
        let r = readable && interest.is_readable();
        let w = writable && interest.is_writable();
        if r || w {
            raise(&mut self.ready, token, |e| {
                e.readable |= r;
                e.writable |= w;
            });
        }
    }

    pub(super) fn set_reg(&mut self, s: &Sock<'_, SimWorld>, reg: Option<(Token, Interest)>) {
        match s {
            Sock::Listener(l) => self.listeners[l.0].2 = reg,
            Sock::Stream(s) => {
                let p = &mut self.pipes[s.id];
                p.reg = reg;
                if reg.is_some() && !std::mem::replace(&mut p.registered, true) {
                    let open = self.open_conns();
                    if open > self.max_conns {
                        self.violations.push(format!(
                            "{open} connections open, over --max-conns {}",
                            self.max_conns
                        ));
                    }
                }
            }
            Sock::Udp(u) => self.udps[u.0].reg = reg,
        }
    }
}
