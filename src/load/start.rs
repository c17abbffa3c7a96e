//! `--start-at UNIX_SECS`: start at an agreed wall-clock second, so shards
//! on several hosts (each with its own clock, kept by NTP) start together.
//!
//! The wait is measured against the wall clock, re-read after every short
//! sleep, so a clock that NTP steps during the wait still starts the run at
//! the right second (a monotonic deadline computed once would not follow).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The longest single sleep of the wait: how late a clock step or a stop
/// request is noticed.
const STEP: Duration = Duration::from_millis(50);

/// Now, as seconds since the epoch.
pub fn now_unix() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// How long until second `at` begins, at wall-clock time `now`; an error
/// if that second is already over (a usage error: the run would not start
/// with the others). Within the second itself, it is zero: start at once.
pub fn until(at: u64, now: f64) -> Result<Duration, String> {
    let at = at as f64;
    if now >= at + 1.0 {
        return Err(format!(
            "--start-at {at}: that second is already past ({:.1} s ago); give a unix second ahead (date -d '+1 min' +%s)",
            now - at
        ));
    }
    Ok(Duration::from_secs_f64((at - now).max(0.0)))
}

/// Sleep until second `at` begins by the wall clock, or until `stopped`
/// says so (then `false`).
pub(crate) fn wait_until(at: u64, stopped: impl Fn() -> bool) -> bool {
    loop {
        if stopped() {
            return false;
        }
        let left = Duration::from_secs_f64((at as f64 - now_unix()).max(0.0));
        if left.is_zero() {
            return true;
        }
        std::thread::sleep(left.min(STEP));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_past_second_is_refused_the_current_one_starts_at_once() {
        assert!(until(100, 101.0).unwrap_err().contains("already past"));
        assert_eq!(until(100, 100.5), Ok(Duration::ZERO));
        assert_eq!(until(100, 98.5), Ok(Duration::from_secs_f64(1.5)));
    }

    #[test]
    fn the_wait_ends_at_the_second_or_when_stopped() {
        let at = now_unix().ceil() as u64;
        assert!(wait_until(at, || false));
        assert!(now_unix() >= at as f64);
        assert!(!wait_until(at + 3600, || true));
    }
}
