//! When bytes reached a socket, not when we got round to reading them: the
//! kernel's software receive timestamp (`SO_TIMESTAMPNS`, socket(7)).
//!
//! `load` times a reply from its request to its arrival. Read with
//! `read`, the arrival would be the moment the loop looked, which adds the
//! loop's own wake-up (tens of µs when its CPU had gone idle, see issue
//! 18) and whatever else it was doing to every reply. With the option set,
//! `recvmsg` hands back, beside the bytes, the time the newest packet among
//! them entered the network stack; over loopback or a veth pair that is
//! the server's write.
//!
//! The first socket of a process to ask turns stamping on for the whole
//! stack, which the kernel does a moment later: bytes that arrive before
//! come without a stamp, and are timed by the read.
//!
//! The kernel stamps with `CLOCK_REALTIME`; `load`'s clock is monotonic.
//! So a stamp is used only against a moment read on both clocks at once
//! ([`real_now`] beside `Instant::now`): the bytes came that long before
//! (or after) it.

use std::io;
use std::os::fd::AsRawFd;
use std::time::{SystemTime, UNIX_EPOCH};

/// Ask the kernel to stamp what arrives on `sock`.
pub(crate) fn enable(sock: &impl AsRawFd) -> io::Result<()> {
    super::switch_on(sock, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS)
}

/// Read into `buf` like `read`; with the bytes, when the newest of them
/// arrived (ns since the epoch, real-time clock), if the kernel said (None
/// without a stamp: option not set, or nothing read).
pub(crate) fn recv(sock: &impl AsRawFd, buf: &mut [u8]) -> io::Result<(usize, Option<u64>)> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // Room for one cmsg holding a timespec, aligned as cmsghdr needs.
    let mut control = [0u64; 8];
    // SAFETY: a zeroed msghdr is valid (null name, no iovecs).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: msg points at `iov` (into `buf`, writable for its length)
    // and at `control`, all of which outlive the call.
    let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut stamp = None;
    // SAFETY: the CMSG_* macros walk the control buffer the kernel just
    // filled, within msg_controllen; a SCM_TIMESTAMPNS cmsg's data is a
    // timespec (socket(7)), read unaligned to be safe.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                stamp = Some(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64);
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok((n as usize, stamp))
}

/// The real-time clock, in ns since the epoch (the stamps' clock).
pub(crate) fn real_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};
    use std::time::{Duration, Instant};

    /// Bytes that waited in the socket are as old as they are: the age
    /// covers the wait, and no more than the time since they were written.
    #[test]
    fn the_age_is_the_time_the_bytes_waited() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut w = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (r, _) = l.accept().unwrap();
        super::enable(&r).unwrap();
        let mut buf = [0u8; 64];
        // The first socket of a process to ask turns stamping on for the
        // whole stack, and the kernel does that a moment later (deferred
        // work): bytes until then come unstamped.
        let stamped = (0..1000).any(|_| {
            w.write_all(b".").unwrap();
            std::thread::sleep(Duration::from_millis(1));
            super::recv(&r, &mut buf).unwrap().1.is_some()
        });
        assert!(stamped, "no receive stamp in a second");
        let written = Instant::now();
        w.write_all(b"hello").unwrap();
        std::thread::sleep(Duration::from_millis(30));
        let (n, at) = super::recv(&r, &mut buf).unwrap();
        let age = super::real_now() - at.expect("a stamp");
        let waited = written.elapsed().as_nanos() as u64;
        assert_eq!(&buf[..n], b"hello");
        assert!(
            (30_000_000..=waited).contains(&age),
            "age {age} ns, waited {waited} ns"
        );
    }

    /// Without the option there is no stamp, and the bytes still come.
    #[test]
    fn no_stamp_unless_asked() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut w = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (r, _) = l.accept().unwrap();
        w.write_all(b"hi").unwrap();
        let mut buf = [0u8; 8];
        let (n, at) = super::recv(&r, &mut buf).unwrap();
        assert_eq!((&buf[..n], at), (&b"hi"[..], None));
    }
}
