//! The sub-commands of the `sockloop` binary, one file each (`main.rs` holds
//! the command table and the dispatch): each file has its arguments, its
//! `--help` examples and the function that runs it, turning the library's
//! answers into output and exit codes. This file holds what they share: the
//! `--help` footer, the usage error after parsing, and the value parsers.

use std::time::Duration;

use clap::CommandFactory;

use sockloop::options::defaults;

pub(crate) mod client;
pub(crate) mod load;
pub(crate) mod merge;
pub(crate) mod report;
pub(crate) mod serve;

/// Said at the end of every `--help`: exit codes and logging.
pub(crate) const FOOTER: &str = "\
Exit codes: 0 success; 1 a runtime error (one line `error: ...` naming the
address), a lost reply (send) or a failed connection or wrong reply (load);
2 a usage error.

Logging: RUST_LOG=info shows the open-file limit and shutdown; RUST_LOG=sockloop=trace
narrates the loop (every event, read, write, WouldBlock, interest change),
RUST_LOG=trace adds mio's own lines. The wire contract: docs/protocol.md.";

/// A usage error found after parsing, shown as clap shows its own: the
/// `error:` line, then the usage of the sub-command `sub` (not the top
/// level's, which would not say how to write it). Exits 2.
pub(crate) fn usage_error(sub: &str, msg: impl std::fmt::Display) -> ! {
    let mut cli = crate::Cli::command();
    cli.build(); // gives each sub-command its full name, `sockloop serve`
    let cmd = cli
        .find_subcommand_mut(sub)
        .expect("usage_error names a sub-command");
    cmd.error(clap::error::ErrorKind::ArgumentConflict, msg)
        .exit()
}

/// Seconds, whole or fractional, from 0 to `MAX_SECS` (about 31 years:
/// more is a typo, and would overflow the loop's millisecond clock).
pub(crate) fn secs(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=defaults::MAX_SECS).contains(&v) => Ok(v),
        _ => Err(format!(
            "'{s}' is not a number of seconds from 0 to {}",
            defaults::MAX_SECS
        )),
    }
}

/// A count of at least 1.
pub(crate) fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("'{s}' is not a whole number ≥ 1")),
    }
}

/// A whole number from `lo` to `hi`, said the way a user reads it (and
/// for `-5` too, which clap would otherwise take for an option and answer
/// with "use `-- -5`": that would make `-5` a positional argument).
pub(crate) fn whole_in<T>(s: &str, lo: T, hi: T) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy + Bounded,
{
    match s.parse::<T>() {
        Ok(n) if lo <= n && n <= hi => Ok(n),
        _ if hi == T::MAX => Err(format!("'{s}' is not a whole number ≥ {lo}")),
        _ => Err(format!("'{s}' is not a whole number from {lo} to {hi}")),
    }
}

/// The largest value of an integer type (what "no upper bound" means to
/// [`whole_in`]).
pub(crate) trait Bounded {
    const MAX: Self;
}
impl Bounded for u32 {
    const MAX: u32 = u32::MAX;
}
impl Bounded for u64 {
    const MAX: u64 = u64::MAX;
}
impl Bounded for usize {
    const MAX: usize = usize::MAX;
}

/// A rate: a number above 0.
pub(crate) fn positive_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
        _ => Err(format!("'{s}' is not a rate above 0")),
    }
}

/// Seconds above 0, as a Duration (a wait or a run that must last).
pub(crate) fn positive_secs_duration(s: &str) -> Result<Duration, String> {
    match secs(s) {
        Ok(v) if v > 0.0 => Ok(Duration::from_secs_f64(v)),
        _ => Err(format!("'{s}' is not a number of seconds above 0")),
    }
}

/// Seconds, `None` for 0 (a timer switched off).
pub(crate) fn off_if_zero(v: f64) -> Option<Duration> {
    (v > 0.0).then(|| Duration::from_secs_f64(v))
}
