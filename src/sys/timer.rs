//! A timer with nanosecond resolution that a `mio::Poll` can wait on
//! (`timerfd`, CLOCK_MONOTONIC), and the thread's timer slack. `load`
//! paces `--rate` with it: a poll timeout counts whole milliseconds.
//! Linux only; elsewhere [`Timer::new`] says `Unsupported`.

use std::io;
use std::time::Duration;

#[cfg(target_os = "linux")]
mod imp {
    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
    use std::time::Duration;

    pub(crate) struct Timer(OwnedFd);

    impl Timer {
        pub(crate) fn new() -> io::Result<Self> {
            // SAFETY: a plain syscall with constant flags; it returns a new
            // descriptor or -1.
            let fd = unsafe {
                libc::timerfd_create(
                    libc::CLOCK_MONOTONIC,
                    libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
                )
            };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: `fd` is a descriptor we just created and own alone.
            Ok(Timer(unsafe { OwnedFd::from_raw_fd(fd) }))
        }

        pub(crate) fn set(&self, after: Duration) -> io::Result<()> {
            // 0 would disarm the timer: the shortest wait is 1 ns.
            let after = after.max(Duration::from_nanos(1));
            let spec = libc::itimerspec {
                it_interval: libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                },
                it_value: libc::timespec {
                    tv_sec: after.as_secs() as libc::time_t,
                    tv_nsec: after.subsec_nanos() as libc::c_long,
                },
            };
            // SAFETY: the descriptor is our live timerfd; `spec` lives on
            // our stack for the call; no old value is asked for.
            let rc = unsafe {
                libc::timerfd_settime(self.0.as_raw_fd(), 0, &spec, std::ptr::null_mut())
            };
            if rc == 0 {
                Ok(())
            } else {
                Err(io::Error::last_os_error())
            }
        }

        pub(crate) fn fd(&self) -> RawFd {
            self.0.as_raw_fd()
        }
    }

    pub(crate) fn timer_slack() -> u64 {
        // SAFETY: PR_GET_TIMERSLACK reads the calling thread's slack; no
        // pointer is passed.
        unsafe { libc::prctl(libc::PR_GET_TIMERSLACK, 0, 0, 0, 0) as u64 }
    }

    pub(crate) fn set_timer_slack(ns: u64) {
        // SAFETY: PR_SET_TIMERSLACK sets the calling thread's slack from
        // a plain integer.
        let _ = unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, ns as libc::c_ulong, 0, 0, 0) };
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use std::io;
    use std::time::Duration;

    pub(crate) struct Timer;

    impl Timer {
        pub(crate) fn new() -> io::Result<Self> {
            Err(io::ErrorKind::Unsupported.into())
        }
        pub(crate) fn set(&self, _after: Duration) -> io::Result<()> {
            Ok(())
        }
        pub(crate) fn fd(&self) -> i32 {
            -1
        }
    }

    pub(crate) fn timer_slack() -> u64 {
        0
    }

    pub(crate) fn set_timer_slack(_ns: u64) {}
}

/// A one-shot timer a poll can wait on: readable once it has expired (each
/// expiry is a new edge for an edge-triggered poll, read or not).
pub(crate) struct Timer(imp::Timer);

impl Timer {
    /// A disarmed timer (CLOCK_MONOTONIC, the clock of `Instant`).
    pub(crate) fn new() -> io::Result<Self> {
        imp::Timer::new().map(Timer)
    }

    /// Expire `after` from now (to the nanosecond; at least 1 ns). This
    /// also resets the count of expiries, so a poll registered
    /// edge-triggered sees the next expiry without the count being read.
    pub(crate) fn set(&self, after: Duration) -> io::Result<()> {
        self.0.set(after)
    }

    /// The descriptor to register (read interest).
    pub(crate) fn fd(&self) -> std::os::raw::c_int {
        self.0.fd()
    }
}

/// The calling thread's timer slack, ns: how much later than asked the
/// kernel may fire its timers, to batch wake-ups (50 µs by default).
pub(crate) fn timer_slack() -> u64 {
    imp::timer_slack()
}

/// Set the calling thread's timer slack, ns (≥ 1).
pub(crate) fn set_timer_slack(ns: u64) {
    imp::set_timer_slack(ns)
}
