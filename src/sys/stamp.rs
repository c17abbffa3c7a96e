//! When bytes reached a socket, not when we got round to reading them: the
//! kernel's software receive timestamp (`SO_TIMESTAMPNS`, socket(7)).
//!
//! `load` times a reply from its request to its arrival. Read with
//! `read`, the arrival would be the moment the loop looked, which adds the
//! loop's own wake-up (tens of µs when its CPU had gone idle, see issue
//! 18) and whatever else it was doing to every reply. With the option set,
//! `recvmsg` hands back, beside the bytes, the time the newest packet among
//! them entered the network stack; over loopback or a veth pair that is
//! the server's write. Over UDP the same stamp comes with each datagram
//! of a `recvmmsg` (mmsg.rs).
//!
//! The first socket on the machine to ask turns stamping on for the whole
//! network stack, which the kernel does a moment later: bytes that arrive
//! before come without a stamp, and are timed by the read.
//!
//! The kernel stamps with `CLOCK_REALTIME`; `load`'s clock is monotonic.
//! So a stamp is used only against a moment read on both clocks at once
//! ([`real_now`] beside `Instant::now`): the bytes came that long before
//! (or after) it.

use std::io;
use std::os::fd::AsRawFd;
use std::time::{SystemTime, UNIX_EPOCH};

/// Ask the kernel to stamp what arrives on `sock`.
#[cfg(target_os = "linux")]
pub(crate) fn enable(sock: &impl AsRawFd) -> io::Result<()> {
    super::switch_on(sock, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS)
}

/// Elsewhere no stamps: replies are timed by the read.
#[cfg(not(target_os = "linux"))]
pub(crate) fn enable(_sock: &impl AsRawFd) -> io::Result<()> {
    Ok(())
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn recv(sock: &impl AsRawFd, buf: &mut [u8]) -> io::Result<(usize, Option<u64>)> {
    // SAFETY: recv writes at most buf.len() bytes into buf.
    let n = unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok((n as usize, None))
    }
}

/// Read into `buf` like `read`; with the bytes, when the newest of them
/// arrived (ns since the epoch, real-time clock), if the kernel said (None
/// without a stamp: option not set, or nothing read).
#[cfg(target_os = "linux")]
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

/// A stamp `at` (real-time ns) on another clock, which read `now` when the
/// real-time clock read `real`: that far before or after `now` (no stamp:
/// `now`).
pub(crate) fn place(at: Option<u64>, now: u64, real: u64) -> u64 {
    match at {
        Some(at) if at >= real => now + (at - real),
        Some(at) => now.saturating_sub(real - at),
        None => now,
    }
}

/// The real-time clock, in ns since the epoch (the stamps' clock).
pub(crate) fn real_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

#[cfg(all(test, target_os = "linux"))]
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

    /// A stamp lands as far from `now` as it is from `real`, either way;
    /// none lands at `now`; nothing lands before the clock's zero.
    #[test]
    fn a_stamp_is_placed_by_its_distance_from_a_reading_of_both_clocks() {
        let real = 1_700_000_000_000_000_000u64;
        for (at, now, want) in [
            (Some(real - 300), 1_000, 700),
            (Some(real + 300), 1_000, 1_300),
            (Some(real), 1_000, 1_000),
            (None, 1_000, 1_000),
            (Some(real - 5_000), 1_000, 0),
        ] {
            assert_eq!(super::place(at, now, real), want, "{at:?} at {now}");
        }
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
