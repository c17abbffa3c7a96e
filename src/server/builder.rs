//! Building a [`Server`]: listeners from specs or services of your own,
//! bound in order, with every socket option in one place.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use mio::net::{TcpListener, UdpSocket};
use slab::Slab;

use super::room::Delivery;
use super::schedule::Queues;
use super::udp::UdpSide;
use super::world::{Bound, Os};
use super::{Listener, Server, Socket, World, READ_BUF};
use crate::addr::{Endpoint, ListenSpec};
use crate::conn::BufPool;
use crate::framing::Framing;
use crate::options::Options;
use crate::service::{self, metrics, Metrics, Outbox, Service};
use crate::stats::{Counters, ListenerInfo, ServerCounters};

/// The `listen(2)` backlog: connections the kernel completes for us while
/// the loop is busy. Linux caps it at `net.core.somaxconn`.
const LISTEN_BACKLOG: i32 = 4096;

/// Builds a [`Server`] from listeners: named services from specs, or
/// services of your own.
pub struct Builder {
    opts: Options,
    listeners: Vec<Plan>,
    error: Option<String>,
    /// Whether, and as which worker, to bind addresses several workers
    /// share (`SO_REUSEPORT`).
    share: Share,
    /// The connections open in all workers together (`--max-conns`).
    open_total: Option<Arc<AtomicUsize>>,
    /// Where the server's counters join every worker's (a new list when
    /// alone): what a `metrics` listener serves.
    counters: Counters,
}

/// A listener to bind: its name, address, framing asked for, and service.
struct Plan {
    name: String,
    endpoint: Endpoint,
    framing: Option<Framing>,
    service: Box<dyn Service>,
}

impl Builder {
    pub(super) fn new(opts: Options) -> Self {
        Builder {
            opts,
            listeners: Vec::new(),
            error: None,
            share: Share::No,
            open_total: None,
            counters: Counters::default(),
        }
    }

    /// One of several workers: bind every listener whose service's state
    /// can be split ([`Service::shared_state`] false) with `SO_REUSEPORT`,
    /// and count connections against `--max-conns` in `open_total`, which
    /// all workers share.
    /// `first`: this worker binds the addresses first (see [`bind_shared`]);
    /// the others join them. Its counters join `counters`, every worker's.
    pub(super) fn worker(
        mut self,
        first: bool,
        open_total: Arc<AtomicUsize>,
        counters: &Counters,
    ) -> Self {
        self.share = if first { Share::First } else { Share::Join };
        self.open_total = Some(open_total);
        self.counters = counters.clone();
        self
    }

    /// A listener for a named service (one of [`service::SERVICES`], or
    /// `metrics`: TCP only, no `?framing=`).
    pub fn listen(mut self, spec: &ListenSpec) -> Self {
        if spec.service == metrics::NAME {
            match metrics::check(spec) {
                Ok(()) => self.listeners.push(Plan {
                    name: spec.service.clone(),
                    endpoint: spec.endpoint,
                    framing: None,
                    service: Box::new(Metrics::new(self.counters.clone())),
                }),
                Err(e) => self.error = Some(e),
            }
            return self;
        }
        match service::by_name(&spec.service, &self.opts) {
            Some(service) => self.listeners.push(Plan {
                name: spec.service.clone(),
                endpoint: spec.endpoint,
                framing: spec.framing,
                service,
            }),
            None => {
                self.error = service::check_name(&spec.service).err();
            }
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
        self.listeners.push(Plan {
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
        self.build_in(Os::default())
    }

    /// [`build`](Self::build) in another world than the real one (the
    /// simulation's): its sockets, its clock.
    pub(crate) fn build_in<W: World>(self, mut world: W) -> io::Result<Server<W>> {
        if let Some(e) = self.error {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, e));
        }
        let mut listeners = Vec::with_capacity(self.listeners.len());
        for Plan {
            name,
            endpoint,
            framing,
            service,
        } in self.listeners
        {
            let named = |e: io::Error| {
                // The bind errors with a fix the user may not know.
                let hint = match e.kind() {
                    io::ErrorKind::PermissionDenied if endpoint.addr.port() < 1024 => {
                        " (ports below 1024 need root or CAP_NET_BIND_SERVICE; try a port above 1023)"
                    }
                    io::ErrorKind::AddrInUse => {
                        " (another server, perhaps another sockloop, has that port: stop it, or use another port, or port 0 for any free one)"
                    }
                    _ => "",
                };
                io::Error::new(e.kind(), format!("cannot bind {endpoint}: {e}{hint}"))
            };
            let share = if service.shared_state() {
                Share::No
            } else {
                self.share
            };
            let (bound, local) = world
                .bind(endpoint.proto, endpoint.addr, share)
                .map_err(named)?;
            let socket = match bound {
                Bound::Listener(l) => Socket::Tcp(l),
                Bound::Udp(u) => Socket::Udp(UdpSide::new(u)),
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
                delivery: Delivery::default(),
                backlog: false,
            });
        }
        let counters = Arc::new(ServerCounters::new(
            listeners
                .iter()
                .map(|l| ListenerInfo {
                    service: l.service_name.clone(),
                    endpoint: l.endpoint,
                })
                .collect(),
        ));
        self.counters.push(Arc::clone(&counters));
        let now = world.now();
        Ok(Server {
            opts: self.opts,
            listeners,
            conns: Slab::new(),
            world,
            token_base: 0,
            token_end: 0,
            scratch: vec![0; READ_BUF],
            encode_buf: Vec::new(),
            outbox: Outbox::default(),
            udp_batches: None,
            pool: BufPool::default(),
            timers: Default::default(),
            queues: Queues::default(),
            went_over: Vec::new(),
            counters,
            all: self.counters,
            turn: Default::default(),
            epoch: now,
            now,
            now_ms: 0,
            next_id: 1,
            open_total: self.open_total,
            accept_paused_until: None,
            fd_episode: false,
            stopping: None,
        })
    }
}

/// A TCP welcoming socket: nonblocking, address reuse (a restarted server
/// can bind while old connections sit in TIME_WAIT), IPv6 sockets v6-only
/// (so `[::]:p` and `0.0.0.0:p` can both be bound), a deep backlog; with
/// `--workers`, one of several on the same address (see [`bind_shared`]).
pub(super) fn bind_tcp(addr: SocketAddr, share: Share) -> io::Result<TcpListener> {
    let s = bind_shared(addr, socket2::Type::STREAM, share)?;
    s.listen(LISTEN_BACKLOG)?;
    Ok(TcpListener::from_std(s.into()))
}

/// A UDP socket: nonblocking, IPv6 v6-only as for TCP.
pub(super) fn bind_udp(addr: SocketAddr, share: Share) -> io::Result<UdpSocket> {
    let s = bind_shared(addr, socket2::Type::DGRAM, share)?;
    Ok(UdpSocket::from_std(s.into()))
}

/// Whether a listener's address is shared by workers, and whose it is.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Share {
    /// One socket on the address (one worker, or a `chat` room).
    No,
    /// The first worker's: checks the address is free, then shares it.
    First,
    /// A later worker's: joins the first worker's group.
    Join,
}

/// A bound, nonblocking socket. Shared (`--workers`), each
/// worker binds its own socket to the same address with `SO_REUSEPORT`,
/// and the kernel spreads new connections and datagrams over them by a
/// hash of the 4-tuple.
///
/// `SO_REUSEPORT` would also let the first worker join a group some other
/// program of the same user already holds — silently sharing its port —
/// and an ephemeral UDP port picked for port 0 may be one such a group
/// holds. So the first worker binds once without the option first: that
/// fails with "address in use" where a plain bind would, and for port 0
/// it picks a port nobody holds; the shared sockets then bind that port.
/// The workers after it bind the first worker's real address: the group
/// is ours, so they skip the check.
fn bind_shared(addr: SocketAddr, ty: socket2::Type, share: Share) -> io::Result<socket2::Socket> {
    use socket2::{Domain, Socket};
    let open = |reuse_port: bool| -> io::Result<Socket> {
        let s = Socket::new(Domain::for_address(addr), ty, None)?;
        if ty == socket2::Type::STREAM {
            s.set_reuse_address(true)?;
        }
        if reuse_port {
            s.set_reuse_port(true)?;
        }
        if addr.is_ipv6() {
            s.set_only_v6(true)?;
        }
        s.set_nonblocking(true)?;
        Ok(s)
    };
    if share == Share::No {
        let s = open(false)?;
        s.bind(&addr.into())?;
        return Ok(s);
    }
    let mut at = addr;
    if share == Share::First {
        let probe = open(false)?;
        probe.bind(&addr.into())?;
        if let Some(a) = probe.local_addr()?.as_socket() {
            at.set_port(a.port());
        }
        drop(probe); // frees the port for the shared sockets, at once
    }
    let s = open(true)?;
    s.bind(&at.into())?;
    Ok(s)
}
