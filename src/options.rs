//! Everything `sockloop serve` can set besides its listeners, with the one
//! list of defaults that both [`Options::default`] and the command line
//! use (see `docs/protocol.md`, "Command line").

use std::time::Duration;

/// The defaults, in one place: `Options::default()` and `--help` both read
/// them, so the two can never disagree.
pub mod defaults {
    /// `--max-conns`.
    pub const MAX_CONNS: usize = 100_000;
    /// `--idle-timeout`, seconds (0 = never).
    pub const IDLE_TIMEOUT_SECS: f64 = 300.0;
    /// `--max-frame`, bytes.
    pub const MAX_FRAME: usize = 65_536;
    /// `--write-buffer`, bytes.
    pub const WRITE_BUFFER: usize = 262_144;
    /// `--udp-member-ttl`, seconds.
    pub const UDP_MEMBER_TTL_SECS: f64 = 300.0;
    /// `--udp-max-members`.
    pub const UDP_MAX_MEMBERS: usize = 1024;
    /// `--slow-timeout`, seconds.
    pub const SLOW_TIMEOUT_SECS: f64 = 2.0;
    /// `--frame-timeout`, seconds (0 = off).
    pub const FRAME_TIMEOUT_SECS: f64 = 30.0;
    /// `--stats`, seconds (0 = off).
    pub const STATS_SECS: f64 = 0.0;
    /// `--grace`, seconds.
    pub const GRACE_SECS: f64 = 5.0;
    /// The longest duration any option takes, seconds (about 31 years): a
    /// larger one is a usage error, not a timer that wraps around and
    /// fires at once.
    pub const MAX_SECS: f64 = 1e9;
}

/// `d` in milliseconds, for the loop's clock: saturating, so a `Duration`
/// set in code beyond any sensible bound (`Duration::MAX`) means "never in
/// this process's life" instead of wrapping to a deadline already past.
pub(crate) fn millis(d: Duration) -> u64 {
    // A quarter of u64's range: still ~1.5e8 years, and adding a clock
    // reading to it can never overflow.
    d.as_millis().min(u128::from(u64::MAX / 4)) as u64
}

/// How a server behaves at its limits. Every field's default is in
/// [`defaults`].
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Connections past this many are closed right after accept (a `line`
    /// listener first writes `ERR max connections reached`). Default 100,000.
    pub max_conns: usize,
    /// A TCP connection with no traffic either way for this long is closed.
    /// `None`: never. Default 300 s.
    pub idle_timeout: Option<Duration>,
    /// The longest frame accepted, in bytes; also bounds what a connection
    /// holding an incomplete frame costs. Default 65,536.
    pub max_frame: usize,
    /// Unsent reply bytes per connection above which the server stops
    /// reading from it (backpressure). In a chat room: above it, the room
    /// pauses its senders. Default 262,144.
    pub write_buffer: usize,
    /// A UDP chat member silent this long is dropped. Default 300 s.
    pub udp_member_ttl: Duration,
    /// The most members a UDP chat room holds. Default 1024.
    pub udp_max_members: usize,
    /// A chat member that stays above `write_buffer` this long is
    /// disconnected. Default 2 s.
    pub slow_timeout: Duration,
    /// An incomplete frame whose first byte arrived this long ago closes
    /// its connection (slowloris). `None`: off. Default 30 s.
    pub frame_timeout: Option<Duration>,
    /// How often [`Server::run`](crate::Server::run) prints the counters
    /// on stderr. `None`: never (the default).
    pub stats_every: Option<Duration>,
    /// On shutdown, how long owed replies are delivered before every
    /// connection is closed regardless. Default 5 s.
    pub grace: Duration,
}

/// Seconds as a `Duration`, `None` for zero (a switched-off timer).
fn off_if_zero(secs: f64) -> Option<Duration> {
    (secs > 0.0).then(|| Duration::from_secs_f64(secs))
}

impl Default for Options {
    fn default() -> Self {
        use defaults::*;
        Options {
            max_conns: MAX_CONNS,
            idle_timeout: off_if_zero(IDLE_TIMEOUT_SECS),
            max_frame: MAX_FRAME,
            write_buffer: WRITE_BUFFER,
            udp_member_ttl: Duration::from_secs_f64(UDP_MEMBER_TTL_SECS),
            udp_max_members: UDP_MAX_MEMBERS,
            slow_timeout: Duration::from_secs_f64(SLOW_TIMEOUT_SECS),
            frame_timeout: off_if_zero(FRAME_TIMEOUT_SECS),
            stats_every: off_if_zero(STATS_SECS),
            grace: Duration::from_secs_f64(GRACE_SECS),
        }
    }
}
