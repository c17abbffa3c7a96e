//! What the standard library and mio do not wrap: the open-file limit
//! (here: every socket is a file descriptor, so this limit, not
//! `--max-conns`, is the real cap on connections), the batched UDP calls
//! `recvmmsg`/`sendmmsg` with GRO and GSO (`mmsg.rs`), a nanosecond timer a
//! `Poll` can wait on (`timer.rs`, load's `--rate` pacing), the port-sparing
//! bind for many outgoing connections, a thread's CPU time, and when bytes
//! reached a socket (`stamp.rs`, how `load` times replies).

use std::io;

/// Raise the soft `RLIMIT_NOFILE` to the hard limit. Returns the limit now
/// in force. Raising the hard limit needs privileges we do not assume.
pub fn raise_fd_limit() -> io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct we pass, which lives on our
    // stack for the whole call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: setrlimit only reads the struct we pass.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            return Err(io::Error::last_os_error());
        }
        lim = raised;
    }
    // rlim_t is u64 on Linux, not everywhere.
    #[allow(clippy::unnecessary_cast)]
    Ok(lim.rlim_cur as u64)
}

/// Whether an `accept` error means the process or system ran out of file
/// descriptors (`EMFILE`, `ENFILE`) — or the kernel of buffers for a new
/// socket (`ENOBUFS`, `ENOMEM`): all of which pass once sockets close.
pub(crate) fn is_out_of_fds(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// Set `IP_BIND_ADDRESS_NO_PORT` on a socket that will be bound to a
/// source address and then connected: the kernel then picks the port at
/// `connect`, knowing the destination, so each source address can open a
/// full ephemeral range to *each* destination. Without it, `bind(ip:0)`
/// picks a port blind and the binds collide (`EADDRINUSE`) long before
/// the range is used. Linux only; elsewhere this does nothing.
#[cfg(target_os = "linux")]
pub(crate) fn set_bind_address_no_port(sock: &impl std::os::fd::AsRawFd) -> io::Result<()> {
    switch_on(sock, libc::IPPROTO_IP, libc::IP_BIND_ADDRESS_NO_PORT)
}

/// Set a socket option whose value is an int to 1.
pub(crate) fn switch_on(
    sock: &impl std::os::fd::AsRawFd,
    level: libc::c_int,
    name: libc::c_int,
) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: the descriptor is a live socket borrowed for the call, and
    // the option value is a c_int on our stack, passed with its size.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            level,
            name,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn set_bind_address_no_port(_sock: &impl std::os::fd::AsRawFd) -> io::Result<()> {
    Ok(())
}

pub(crate) mod mmsg;
pub(crate) mod stamp;
pub(crate) mod timer;

/// CPU time (user + system) the calling thread has used.
#[cfg(target_os = "linux")]
pub(crate) fn thread_cpu() -> std::time::Duration {
    // SAFETY: getrusage writes only the struct we pass, zeroed and on our
    // stack for the whole call.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut u) } != 0 {
        return std::time::Duration::ZERO;
    }
    let tv = |t: libc::timeval| {
        std::time::Duration::from_secs(t.tv_sec as u64)
            + std::time::Duration::from_micros(t.tv_usec as u64)
    };
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// CPU time the calling thread has used (not known here: zero).
#[cfg(not(target_os = "linux"))]
pub(crate) fn thread_cpu() -> std::time::Duration {
    std::time::Duration::ZERO
}
