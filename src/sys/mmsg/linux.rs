//! `recvmmsg`/`sendmmsg` with UDP GRO and GSO: the Linux (and Android)
//! side of [`super`], and its every `unsafe` call.

use std::io;
use std::mem;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd;

use mio::net::UdpSocket;

use super::{Got, Item, BATCH, SLOT};

/// Room for the control messages of one received buffer, aligned as a
/// cmsghdr must be: an int (UDP_GRO's segment size) and a timespec
/// (SCM_TIMESTAMPNS, when `load` asked for stamps).
type Cmsg = [u64; 8];
/// Room for one sent buffer's: a u16 (UDP_SEGMENT's).
type SendCmsg = [u64; 4];

/// Ask the kernel to hand over GRO runs whole (Linux 5.0 and later).
/// `false` where it cannot: datagrams then come one a slot, as before.
pub(super) fn enable_gro(socket: &UdpSocket) -> bool {
    let on: libc::c_int = 1;
    // SAFETY: a live socket borrowed for the call; the option value is
    // a c_int on our stack, passed with its size.
    unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_UDP,
            libc::UDP_GRO,
            (&on as *const libc::c_int).cast(),
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        ) == 0
    }
}

pub(super) fn recv(socket: &UdpSocket, bufs: &mut [u8], got: &mut Vec<Got>) -> io::Result<()> {
    // SAFETY: sockaddr_storage, iovec and mmsghdr are plain C structs
    // for which all-zero bytes are a valid value (null pointers, zero
    // lengths).
    let mut names: [libc::sockaddr_storage; BATCH] = unsafe { mem::zeroed() };
    let mut iovs: [libc::iovec; BATCH] = unsafe { mem::zeroed() };
    let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { mem::zeroed() };
    let mut cmsgs: [Cmsg; BATCH] = [[0; 8]; BATCH];
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
        h.msg_control = cmsgs[i].as_mut_ptr().cast();
        h.msg_controllen = mem::size_of::<Cmsg>() as _;
    }
    // SAFETY: every header points at a live slot of SLOT bytes, a live
    // sockaddr_storage and a live control buffer of the size given,
    // all borrowed mutably for the whole call and not touched by us
    // until it returns; the kernel writes at most the lengths given.
    // The socket is nonblocking, so the call returns at once.
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
        let (segment, stamp) = control(&h.msg_hdr);
        got.push(Got {
            from: to_socket_addr(name),
            len: h.msg_len as usize,
            segment,
            stamp,
        });
    }
    Ok(())
}

/// What the control messages say: UDP_GRO's segment size, and the
/// receive stamp (ns since the epoch, real-time clock; sys/stamp.rs), if
/// the kernel sent them.
fn control(h: &libc::msghdr) -> (Option<usize>, Option<u64>) {
    let (mut segment, mut stamp) = (None, None);
    // SAFETY: `h` was filled by recvmmsg: msg_control points at our
    // live control buffer and msg_controllen says how much of it the
    // kernel wrote; the CMSG_* macros stay inside that length.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(h);
        while !c.is_null() {
            let (level, kind) = ((*c).cmsg_level, (*c).cmsg_type);
            if level == libc::SOL_UDP && kind == libc::UDP_GRO {
                let size = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::c_int);
                segment = (size > 0).then_some(size as usize);
            } else if level == libc::SOL_SOCKET && kind == libc::SCM_TIMESTAMPNS {
                let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                stamp = Some(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64);
            }
            c = libc::CMSG_NXTHDR(h, c);
        }
    }
    (segment, stamp)
}

pub(super) fn send(socket: &UdpSocket, arena: &[u8], items: &[Item]) -> io::Result<usize> {
    // SAFETY: as in recv: all-zero is a valid value of these C structs.
    let mut names: [libc::sockaddr_storage; BATCH] = unsafe { mem::zeroed() };
    let mut iovs: [libc::iovec; BATCH] = unsafe { mem::zeroed() };
    let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { mem::zeroed() };
    let mut cmsgs: [SendCmsg; BATCH] = [[0; 4]; BATCH];
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
        if it.is_run() {
            // A run: one UDP_SEGMENT control message with the size of
            // each datagram; the kernel cuts the buffer at that size.
            h.msg_control = cmsgs[i].as_mut_ptr().cast();
            // SAFETY: CMSG_SPACE only computes a size.
            h.msg_controllen = unsafe { libc::CMSG_SPACE(2) } as _;
            // SAFETY: msg_control points at our zeroed, aligned buffer
            // of 32 bytes, more than CMSG_SPACE(2) (24 on 64-bit), so
            // the header and its two data bytes are inside it.
            unsafe {
                let c = libc::CMSG_FIRSTHDR(h);
                (*c).cmsg_level = libc::SOL_UDP;
                (*c).cmsg_type = libc::UDP_SEGMENT;
                (*c).cmsg_len = libc::CMSG_LEN(2) as _;
                std::ptr::write_unaligned(libc::CMSG_DATA(c) as *mut u16, it.segment as u16);
            }
        }
    }
    // SAFETY: the first n headers point at payloads inside `arena`, at
    // addresses in `names` and at control messages in `cmsgs`, all
    // alive and unmoved for the whole call; the kernel only reads them
    // (and writes each msg_len).
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
            let a: &libc::sockaddr_in = unsafe { &*(s as *const _ as *const libc::sockaddr_in) };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let a: &libc::sockaddr_in6 = unsafe { &*(s as *const _ as *const libc::sockaddr_in6) };
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
