//! The server's side of the simulated world: its sockets (a stream, a
//! welcoming socket, a UDP socket, each a handle on the shared [`Net`])
//! and the [`World`] the server is built in. Every call may fail the way
//! the kernel's can (`Interrupted`, a short write, EMFILE on accept,
//! `WouldBlock` on a full UDP send buffer); world.rs keeps the state.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use mio::{Interest, Token};

use super::world::{End, Net, SimWorld, UdpSock};
use crate::addr::Proto;
use crate::conn::Stream;
use crate::server::builder::Share;
use crate::server::world::{Bound, Sock, World};
use crate::sys::mmsg::{RecvBatch, SendBatch};

/// The server's end of a connection.
#[derive(Debug)]
pub(crate) struct SimStream {
    pub(super) net: Rc<RefCell<Net>>,
    pub id: usize,
}

/// A welcoming socket (its index) and a UDP socket (its index).
#[derive(Debug)]
pub(crate) struct SimListener(pub(super) usize);
#[derive(Debug)]
pub(crate) struct SimUdp(pub(super) usize);

impl Read for SimStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut net = self.net.borrow_mut();
        if net.interrupted() {
            return Err(io::ErrorKind::Interrupted.into());
        }
        let now = net.now_ms;
        let p = &mut net.pipes[self.id];
        if p.client_reset {
            return Err(io::ErrorKind::ConnectionReset.into());
        }
        if p.c2s.is_empty() {
            return if p.client_fin {
                Ok(0)
            } else {
                Err(io::ErrorKind::WouldBlock.into())
            };
        }
        let n = buf.len().min(p.c2s.len());
        for (b, x) in buf.iter_mut().zip(p.c2s.drain(..n)) {
            *b = x;
        }
        p.last_io = now;
        p.reads.push((now, n));
        p.read_total += n;
        p.waiting_since = None;
        if !p.c2s.is_empty() {
            let turn = net.turn;
            net.pipes[self.id].waiting_since = Some(turn);
        }
        Ok(n)
    }
}

impl Write for SimStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut net = self.net.borrow_mut();
        if net.interrupted() {
            return Err(io::ErrorKind::Interrupted.into());
        }
        let pct = net.faults.short_write;
        let short = net.rng.chance(pct);
        let cut = net.rng.next();
        let now = net.now_ms;
        let p = &mut net.pipes[self.id];
        if p.server_fin.is_some() {
            let v = format!("conn {}: wrote after its FIN", self.id);
            net.violations.push(v);
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        if p.client_reset {
            return Err(io::ErrorKind::ConnectionReset.into());
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let free = p.s2c_cap - p.s2c.len();
        if free == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let mut n = buf.len().min(free);
        if short {
            n = 1 + (cut % n as u64) as usize;
        }
        p.s2c.extend(&buf[..n]);
        p.last_io = now;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Stream for SimStream {
    fn shutdown_write(&self) -> io::Result<()> {
        let mut net = self.net.borrow_mut();
        let now = net.now_ms;
        let p = &mut net.pipes[self.id];
        if p.server_fin.is_some() {
            net.violations
                .push(format!("conn {}: a second FIN", self.id));
        } else {
            p.server_fin = Some(now);
        }
        Ok(())
    }
}

impl Drop for SimStream {
    fn drop(&mut self) {
        self.net.borrow_mut().close_pipe(self.id);
    }
}

impl World for SimWorld {
    type Listener = SimListener;
    type Stream = SimStream;
    type Udp = SimUdp;

    fn now(&self) -> Instant {
        let net = self.0.borrow();
        net.base + Duration::from_millis(net.now_ms)
    }

    fn bind(
        &mut self,
        proto: Proto,
        _addr: SocketAddr,
        _share: Share,
    ) -> io::Result<(Bound<Self>, SocketAddr)> {
        let mut net = self.0.borrow_mut();
        let n = net.listeners.len() + net.udps.len();
        let addr: SocketAddr = ([10, 0, 0, 1], 7000 + n as u16).into();
        Ok(match proto {
            Proto::Tcp => {
                net.listeners.push((addr, VecDeque::new(), None));
                (Bound::Listener(SimListener(net.listeners.len() - 1)), addr)
            }
            Proto::Udp => {
                net.udps.push(UdpSock {
                    addr,
                    inq: VecDeque::new(),
                    reg: None,
                    blocked: false,
                });
                (Bound::Udp(SimUdp(net.udps.len() - 1)), addr)
            }
        })
    }

    fn accept(&mut self, l: &SimListener) -> io::Result<(SimStream, SocketAddr)> {
        let mut net = self.0.borrow_mut();
        if net.interrupted() {
            return Err(io::ErrorKind::Interrupted.into());
        }
        if net.listeners[l.0].1.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let pct = net.faults.emfile;
        if net.rng.chance(pct) {
            return Err(io::Error::from_raw_os_error(libc::EMFILE));
        }
        let id = net.listeners[l.0].1.pop_front().expect("not empty");
        net.pipes[id].end = End::Open;
        // The server's idle clock starts at the accept.
        net.pipes[id].last_io = net.now_ms;
        let peer = net.pipes[id].client;
        Ok((
            SimStream {
                net: Rc::clone(&self.0),
                id,
            },
            peer,
        ))
    }

    fn configure(&mut self, _s: &SimStream) {}

    fn register(&mut self, s: Sock<'_, Self>, token: Token, interest: Interest) -> io::Result<()> {
        let mut net = self.0.borrow_mut();
        if let Sock::Stream(st) = &s {
            let pct = net.faults.register;
            if !net.pipes[st.id].registered && net.rng.chance(pct) {
                net.pipes[st.id].reg_failed = true;
                return Err(io::Error::from_raw_os_error(libc::ENOMEM));
            }
        }
        net.set_reg(&s, Some((token, interest)));
        net.readiness(&s, token, interest);
        Ok(())
    }

    fn reregister(
        &mut self,
        s: Sock<'_, Self>,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        self.register(s, token, interest)
    }

    fn deregister(&mut self, s: Sock<'_, Self>) -> io::Result<()> {
        let mut net = self.0.borrow_mut();
        net.set_reg(&s, None);
        Ok(())
    }

    fn recv_batch(&mut self, u: &SimUdp, batch: &mut RecvBatch) -> io::Result<usize> {
        let mut net = self.0.borrow_mut();
        if net.interrupted() {
            return Err(io::ErrorKind::Interrupted.into());
        }
        let q = &mut net.udps[u.0].inq;
        if q.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = q.len().min(crate::sys::mmsg::BATCH);
        Ok(batch.fill(q.drain(..n)))
    }

    fn send_batch(&mut self, u: &SimUdp, batch: &mut SendBatch, from: usize) -> io::Result<usize> {
        let mut net = self.0.borrow_mut();
        let pct = net.faults.udp_blocked;
        if net.udps[u.0].blocked || net.rng.chance(pct) {
            net.udps[u.0].blocked = true;
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let left = batch.len() - from;
        let n = 1 + net.rng.below(left.min(crate::sys::mmsg::BATCH) as u64) as usize;
        for k in from..from + n {
            let to = batch.get(k).0.to;
            for d in batch.datagrams_of(k) {
                net.inbox.entry(to).or_default().push_back(d.to_vec());
            }
        }
        Ok(n)
    }

    fn send_to(&mut self, u: &SimUdp, payload: &[u8], to: SocketAddr) -> io::Result<usize> {
        let mut net = self.0.borrow_mut();
        if net.udps[u.0].blocked {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        net.inbox.entry(to).or_default().push_back(payload.to_vec());
        Ok(payload.len())
    }

    fn udp_local(&self, u: &SimUdp) -> io::Result<SocketAddr> {
        Ok(self.0.borrow().udps[u.0].addr)
    }
}
