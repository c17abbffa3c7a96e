//! sockloop nested in a plain `epoll` loop, with no async runtime at all —
//! the shape of a C program's loop (or libuv's, or GLib's), next to a
//! listener of the program's own.
//!
//! ```text
//! cargo run --example in_epoll
//! printf 'hi\n' | sockloop send tcp://127.0.0.1:PORT    # sockloop's echo (port printed)
//! sockloop send tcp://127.0.0.1:PORT </dev/null          # the loop's own: a greeting
//! ```
//!
//! How: the server's fd is added to the program's epoll set (level-
//! triggered: readable for as long as the server has events waiting); the
//! program waits no longer than `Nested::next_timeout()`, and when the fd
//! is readable or the time is up it calls `Nested::turn(ZERO)` until it says
//! there is no more to do. Ctrl-C stops both: the own listener closes, and
//! the server delivers what it owes (up to 5 s) before the program exits.

use std::io::{self, Write};
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sockloop::{ListenSpec, Nested, Options, Server};

const SERVER: u64 = 1;
const OWN: u64 = 2;

/// `epoll_ctl(ADD)` for reading, with `data` to tell fds apart.
fn watch(epfd: i32, fd: i32, data: u64) -> io::Result<()> {
    let mut ev = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: data,
    };
    // SAFETY: epfd and fd are open descriptors; ev lives across the call.
    if unsafe { libc::epoll_ctl(epfd, libc::EPOLL_CTL_ADD, fd, &mut ev) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn main() -> io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let spec: ListenSpec = format!("echo=tcp://127.0.0.1:{port}")
        .parse()
        .map_err(io::Error::other)?;
    let mut nested = Nested::new(Server::bind(&[spec], Options::default())?)?;
    for (name, ep) in nested.server().listeners() {
        println!("listening {name} {} {}", ep.proto, ep.addr);
    }
    let own = TcpListener::bind("127.0.0.1:0")?;
    own.set_nonblocking(true)?;
    println!("listening epoll tcp {}", own.local_addr()?);
    io::stdout().flush()?;

    let stop = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGINT, Arc::clone(&stop))?;
    signal_hook::flag::register(signal_hook::consts::SIGTERM, Arc::clone(&stop))?;
    // SAFETY: a plain syscall with a flag argument.
    let epfd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if epfd < 0 {
        return Err(io::Error::last_os_error());
    }
    watch(epfd, nested.as_raw_fd(), SERVER)?;
    watch(epfd, own.as_raw_fd(), OWN)?;
    let mut own = Some(own);
    let mut events = [libc::epoll_event { events: 0, u64: 0 }; 16];
    loop {
        while nested.turn(Duration::ZERO)? {}
        if stop.load(Ordering::Relaxed) && !nested.server().is_stopping() {
            nested.shutdown(Duration::from_secs(5));
            own = None; // closing it takes it out of the epoll set too
            continue;
        }
        if nested.is_finished() {
            println!("both stopped; bye");
            return Ok(());
        }
        let timeout_ms = nested
            .next_timeout()
            .map_or(-1, |t| t.as_millis().min(i32::MAX as u128) as i32 + 1);
        // SAFETY: `events` is a valid buffer of 16 entries for the kernel to fill.
        let n = unsafe { libc::epoll_wait(epfd, events.as_mut_ptr(), 16, timeout_ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue; // a signal: the flag says which
            }
            return Err(e);
        }
        for ev in &events[..n as usize] {
            if ev.u64 == OWN {
                // The loop's own service: a greeting, then close. Accept
                // until WouldBlock.
                while let Some(Ok((mut s, _))) = own.as_ref().map(|l| l.accept()) {
                    let _ = s.write_all(b"hello from the epoll loop\n");
                }
            }
            // SERVER: the drain at the top of the loop handles it.
        }
    }
}
