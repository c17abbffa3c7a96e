//! Where a run's progress line goes: printed by its one loop, or, with
//! `--threads`, published by each loop in a slot of its own and printed
//! once a second, summed, by the main thread.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Where a driver's progress goes.
pub(crate) enum Progress {
    /// Printed on stderr by the driver itself (one thread), or not at all.
    Print(bool),
    /// Published in slot `t` for the main thread to print (several threads).
    Shared(Arc<Vec<Slot>>, usize),
}

/// One thread's numbers for the shared progress line.
#[derive(Default)]
pub(crate) struct Slot {
    open: AtomicU64,
    failed: AtomicU64,
    messages: AtomicU64,
    errors: AtomicU64,
}

impl Slot {
    /// Publish one thread's numbers.
    pub(crate) fn set(&self, open: usize, failed: usize, messages: u64, errors: u64) {
        self.open.store(open as u64, Ordering::Relaxed);
        self.failed.store(failed as u64, Ordering::Relaxed);
        self.messages.store(messages, Ordering::Relaxed);
        self.errors.store(errors, Ordering::Relaxed);
    }
}

/// The progress line of a run on several threads: the sum of their slots.
/// `udp` names what is open as the one-thread udp:// line does: sockets.
pub(crate) fn print_shared(slots: &[Slot], t: Duration, conns: usize, udp: bool) {
    let sum = |f: fn(&Slot) -> &AtomicU64| {
        slots
            .iter()
            .map(|s| f(s).load(Ordering::Relaxed))
            .sum::<u64>()
    };
    eprintln!(
        "load: {:>5.1}s  {} {} open, {} failed of {conns}  messages {}  errors {}  ({} threads)",
        t.as_secs_f64(),
        if udp { "sockets" } else { "connections" },
        sum(|s| &s.open),
        sum(|s| &s.failed),
        sum(|s| &s.messages),
        sum(|s| &s.errors),
        slots.len()
    );
}
