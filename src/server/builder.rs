//! Building a [`Server`]: listeners from specs or services of your own,
//! bound in order, with every socket option in one place.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use mio::net::{TcpListener, UdpSocket};
use slab::Slab;

use super::room::Room;
use super::udp::UdpSide;
use super::{Listener, Server, Socket, READ_BUF};
use crate::addr::{Endpoint, ListenSpec, Proto};
use crate::conn::BufPool;
use crate::framing::Framing;
use crate::options::Options;
use crate::service::{self, Outbox, Service};
use crate::stats::Counters;

/// The `listen(2)` backlog: connections the kernel completes for us while
/// the loop is busy. Linux caps it at `net.core.somaxconn`.
const LISTEN_BACKLOG: i32 = 4096;

/// Builds a [`Server`] from listeners: named services from specs, or
/// services of your own.
pub struct Builder {
    opts: Options,
    listeners: Vec<Plan>,
    error: Option<String>,
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
        }
    }

    /// A listener for a named service (one of [`service::SERVICES`]).
    pub fn listen(mut self, spec: &ListenSpec) -> Self {
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
                // The one bind error with a fix the user may not know.
                let hint = if e.kind() == io::ErrorKind::PermissionDenied
                    && endpoint.addr.port() < 1024
                {
                    " (ports below 1024 need root or CAP_NET_BIND_SERVICE; try a port above 1023)"
                } else {
                    ""
                };
                io::Error::new(e.kind(), format!("cannot bind {endpoint}: {e}{hint}"))
            };
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
                room: Room::default(),
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
            udp_batches: None,
            pool: BufPool::default(),
            deadlines: Default::default(),
            dirty: VecDeque::new(),
            deferred: VecDeque::new(),
            went_over: Vec::new(),
            counters: Arc::new(Counters::default()),
            epoch: now,
            now,
            now_ms: 1,
            next_id: 1,
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

/// A UDP socket: nonblocking, IPv6 v6-only as for TCP.
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

/// An accepted connection's options. Replies are whole messages written
/// at once: Nagle's algorithm would only hold the next one back waiting
/// for an ACK.
pub(super) fn configure_accepted(stream: &mio::net::TcpStream) {
    let _ = stream.set_nodelay(true);
}
