//! Many datagrams per syscall: `recvmmsg(2)` and `sendmmsg(2)`.
//!
//! A UDP server that calls `recvfrom` and `sendto` once per datagram spends
//! most of its time entering and leaving the kernel. Linux takes a vector
//! of message headers instead: one call receives up to [`BATCH`] datagrams
//! (each into its own slot, with its sender's address), and one call sends
//! up to [`BATCH`] (each to its own address). quinn-udp batches the same
//! way, and 32 is its figure too.
//!
//! The two batches here own every buffer they use and reuse them from call
//! to call: after the first call, receiving and sending allocate nothing.
//! The headers handed to the kernel point into those buffers, so they are
//! rebuilt right before each call rather than kept (a pointer kept in a
//! struct that moves is a pointer into the past).
//!
//! Elsewhere than Linux and Android the same two types fall back to one
//! `recv_from` / `send_to` per datagram, with the same results.

use std::io;
use std::net::SocketAddr;

use mio::net::UdpSocket;

/// Datagrams per call, received or sent.
pub const BATCH: usize = 32;

/// Bytes per receive slot: the largest UDP payload (65,507 bytes over IPv4;
/// 65,527 over IPv6 without jumbograms) arrives whole.
const SLOT: usize = 65_536;

/// Up to [`BATCH`] received datagrams: what [`RecvBatch::recv`] returned.
///
/// The slots take 2 MiB of address space, allocated zeroed, so the
/// operating system maps a page only when a datagram is first written to
/// it: with 64-byte datagrams the batch is resident in 32 pages.
pub struct RecvBatch {
    bufs: Box<[u8]>,
    got: Vec<(Option<SocketAddr>, usize)>,
}

impl Default for RecvBatch {
    fn default() -> Self {
        RecvBatch {
            bufs: vec![0u8; BATCH * SLOT].into_boxed_slice(),
            got: Vec::with_capacity(BATCH),
        }
    }
}

impl RecvBatch {
    /// Datagram `i` of the last call: its sender (`None` if the kernel
    /// gave an address of a family we do not know) and its bytes.
    pub fn get(&self, i: usize) -> (Option<SocketAddr>, &[u8]) {
        let (from, n) = self.got[i];
        (from, &self.bufs[i * SLOT..i * SLOT + n])
    }

    /// Receive up to [`BATCH`] datagrams in one call. `WouldBlock` if none
    /// waits. Fewer than [`BATCH`] means the socket was drained when the
    /// kernel looked (nothing more had arrived by the last slot).
    pub fn recv(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        self.got.clear();
        imp::recv(socket, &mut self.bufs, &mut self.got)?;
        Ok(self.got.len())
    }
}

/// Datagrams waiting to go out in one call: each payload copied into one
/// reused arena, so queueing one allocates nothing once the arena has
/// grown to a batch's size.
#[derive(Default)]
pub struct SendBatch {
    arena: Vec<u8>,
    items: Vec<Item>,
}

/// One datagram in a [`SendBatch`].
#[derive(Clone, Copy, Debug)]
pub struct Item {
    /// Its destination.
    pub to: SocketAddr,
    start: usize,
    len: usize,
    /// A relay to another member (dropped, not queued, if the socket is
    /// full) rather than a reply to the sender.
    pub relay: bool,
}

impl SendBatch {
    /// Add a datagram. The caller sends the batch when it is full.
    pub fn push(&mut self, to: SocketAddr, payload: &[u8], relay: bool) {
        let start = self.arena.len();
        self.arena.extend_from_slice(payload);
        self.items.push(Item {
            to,
            start,
            len: payload.len(),
            relay,
        });
    }

    /// Datagrams in the batch.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether one call's worth is waiting.
    pub fn is_full(&self) -> bool {
        self.items.len() >= BATCH
    }

    /// Datagram `i`: where it goes and its payload.
    pub fn get(&self, i: usize) -> (Item, &[u8]) {
        let it = self.items[i];
        (it, &self.arena[it.start..it.start + it.len])
    }

    /// Empty the batch, keeping its memory.
    pub fn clear(&mut self) {
        self.arena.clear();
        self.items.clear();
    }

    /// Send datagrams `from..` (at most [`BATCH`]) in one call. Returns
    /// how many the kernel took, at least one; an error is the first
    /// datagram's (`WouldBlock`: the send buffer is full).
    pub fn send(&self, socket: &UdpSocket, from: usize) -> io::Result<usize> {
        let upto = self.items.len().min(from + BATCH);
        imp::send(socket, &self.arena, &self.items[from..upto])
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
mod imp {
    use std::io;
    use std::mem;
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
    use std::os::fd::AsRawFd;

    use mio::net::UdpSocket;

    use super::{Item, BATCH, SLOT};

    pub fn recv(
        socket: &UdpSocket,
        bufs: &mut [u8],
        got: &mut Vec<(Option<SocketAddr>, usize)>,
    ) -> io::Result<()> {
        // SAFETY: sockaddr_storage, iovec and mmsghdr are plain C structs
        // for which all-zero bytes are a valid value (null pointers, zero
        // lengths).
        let mut names: [libc::sockaddr_storage; BATCH] = unsafe { mem::zeroed() };
        let mut iovs: [libc::iovec; BATCH] = unsafe { mem::zeroed() };
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { mem::zeroed() };
        for (i, slot) in bufs.chunks_exact_mut(SLOT).enumerate().take(BATCH) {
            iovs[i] = libc::iovec {
                iov_base: slot.as_mut_ptr().cast(),
                iov_len: SLOT,
            };
            let h = &mut hdrs[i].msg_hdr;
            h.msg_name = (&mut names[i] as *mut libc::sockaddr_storage).cast();
            h.msg_namelen = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_iov = &mut iovs[i];
            h.msg_iovlen = 1;
        }
        // SAFETY: every header points at a live slot of SLOT bytes and a
        // live sockaddr_storage, all borrowed mutably for the whole call
        // and not touched by us until it returns; the kernel writes at most
        // iov_len bytes into each slot and msg_namelen into each name. The
        // socket is nonblocking, so the call returns at once (no timeout).
        let n = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                hdrs.as_mut_ptr(),
                BATCH as libc::c_uint,
                0,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        for (h, name) in hdrs.iter().zip(&names).take(n as usize) {
            got.push((to_socket_addr(name), h.msg_len as usize));
        }
        Ok(())
    }

    pub fn send(socket: &UdpSocket, arena: &[u8], items: &[Item]) -> io::Result<usize> {
        // SAFETY: as in recv: all-zero is a valid value of these C structs.
        let mut names: [libc::sockaddr_storage; BATCH] = unsafe { mem::zeroed() };
        let mut iovs: [libc::iovec; BATCH] = unsafe { mem::zeroed() };
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { mem::zeroed() };
        let n = items.len().min(BATCH);
        for (i, it) in items.iter().take(n).enumerate() {
            let payload = &arena[it.start..it.start + it.len];
            iovs[i] = libc::iovec {
                // The kernel only reads through a send's iovec.
                iov_base: payload.as_ptr() as *mut libc::c_void,
                iov_len: payload.len(),
            };
            let h = &mut hdrs[i].msg_hdr;
            h.msg_namelen = from_socket_addr(it.to, &mut names[i]);
            h.msg_name = (&mut names[i] as *mut libc::sockaddr_storage).cast();
            h.msg_iov = &mut iovs[i];
            h.msg_iovlen = 1;
        }
        // SAFETY: the first n headers point at payloads inside `arena` and
        // at addresses in `names`, all alive and unmoved for the whole
        // call; the kernel only reads them (and writes each msg_len).
        let sent =
            unsafe { libc::sendmmsg(socket.as_raw_fd(), hdrs.as_mut_ptr(), n as libc::c_uint, 0) };
        if sent < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(sent as usize)
        }
    }

    /// The address the kernel wrote, if it is IPv4 or IPv6.
    fn to_socket_addr(s: &libc::sockaddr_storage) -> Option<SocketAddr> {
        match s.ss_family as libc::c_int {
            libc::AF_INET => {
                // SAFETY: the family says the storage holds a sockaddr_in,
                // which it is large and aligned enough for.
                let a: &libc::sockaddr_in =
                    unsafe { &*(s as *const _ as *const libc::sockaddr_in) };
                Some(SocketAddr::V4(SocketAddrV4::new(
                    Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                    u16::from_be(a.sin_port),
                )))
            }
            libc::AF_INET6 => {
                // SAFETY: as above, for sockaddr_in6.
                let a: &libc::sockaddr_in6 =
                    unsafe { &*(s as *const _ as *const libc::sockaddr_in6) };
                Some(SocketAddr::V6(SocketAddrV6::new(
                    Ipv6Addr::from(a.sin6_addr.s6_addr),
                    u16::from_be(a.sin6_port),
                    u32::from_be(a.sin6_flowinfo),
                    a.sin6_scope_id,
                )))
            }
            _ => None,
        }
    }

    /// Write `addr` into `s`; returns its length.
    fn from_socket_addr(addr: SocketAddr, s: &mut libc::sockaddr_storage) -> libc::socklen_t {
        match addr {
            SocketAddr::V4(a) => {
                // SAFETY: sockaddr_storage is large and aligned enough for
                // any sockaddr; we write a whole sockaddr_in into it.
                let out = unsafe { &mut *(s as *mut _ as *mut libc::sockaddr_in) };
                out.sin_family = libc::AF_INET as libc::sa_family_t;
                out.sin_port = a.port().to_be();
                out.sin_addr = libc::in_addr {
                    s_addr: u32::from(*a.ip()).to_be(),
                };
                mem::size_of::<libc::sockaddr_in>() as libc::socklen_t
            }
            SocketAddr::V6(a) => {
                // SAFETY: as above, for sockaddr_in6.
                let out = unsafe { &mut *(s as *mut _ as *mut libc::sockaddr_in6) };
                out.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                out.sin6_port = a.port().to_be();
                out.sin6_flowinfo = a.flowinfo().to_be();
                out.sin6_addr = libc::in6_addr {
                    s6_addr: a.ip().octets(),
                };
                out.sin6_scope_id = a.scope_id();
                mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t
            }
        }
    }
}

/// One datagram per call where there is no `recvmmsg`/`sendmmsg`.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
mod imp {
    use std::io;
    use std::net::SocketAddr;

    use mio::net::UdpSocket;

    use super::{Item, BATCH, SLOT};

    pub fn recv(
        socket: &UdpSocket,
        bufs: &mut [u8],
        got: &mut Vec<(Option<SocketAddr>, usize)>,
    ) -> io::Result<()> {
        for slot in bufs.chunks_exact_mut(SLOT).take(BATCH) {
            match socket.recv_from(slot) {
                Ok((n, from)) => got.push((Some(from), n)),
                Err(e) if got.is_empty() => return Err(e),
                Err(_) => break,
            }
        }
        Ok(())
    }

    pub fn send(socket: &UdpSocket, arena: &[u8], items: &[Item]) -> io::Result<usize> {
        let mut sent = 0;
        for it in items.iter().take(BATCH) {
            match socket.send_to(&arena[it.start..it.start + it.len], it.to) {
                Ok(_) => sent += 1,
                Err(e) if sent == 0 => return Err(e),
                Err(_) => break,
            }
        }
        Ok(sent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_goes_out_and_comes_back_whole_with_addresses() {
        for host in ["127.0.0.1:0", "[::1]:0"] {
            let Ok(a) = UdpSocket::bind(host.parse().unwrap()) else {
                continue; // no IPv6 on this machine
            };
            let b = UdpSocket::bind(host.parse().unwrap()).unwrap();
            let (a_addr, b_addr) = (a.local_addr().unwrap(), b.local_addr().unwrap());
            let mut out = SendBatch::default();
            // Sizes up to the largest datagram, which must arrive whole.
            let sizes = [0usize, 1, 64, 1500, 9000, 65_000];
            for (i, &n) in sizes.iter().enumerate() {
                out.push(b_addr, &vec![i as u8; n], false);
            }
            assert_eq!(out.send(&a, 0).unwrap(), sizes.len());
            let mut inb = RecvBatch::default();
            let mut seen = Vec::new();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            while seen.len() < sizes.len() && std::time::Instant::now() < deadline {
                match inb.recv(&b) {
                    Ok(k) => {
                        for i in 0..k {
                            let (from, bytes) = inb.get(i);
                            assert_eq!(from, Some(a_addr));
                            seen.push(bytes.to_vec());
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                    Err(e) => panic!("recv: {e}"),
                }
            }
            for (i, &n) in sizes.iter().enumerate() {
                assert_eq!(seen[i], vec![i as u8; n], "datagram {i} of {host}");
            }
            assert!(matches!(inb.recv(&b), Err(e) if e.kind() == io::ErrorKind::WouldBlock));
        }
    }
}
