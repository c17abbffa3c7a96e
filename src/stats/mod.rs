//! The server's counters and its loop's health, readable live from any
//! thread, on the `--stats` line, and at `/metrics` in Prometheus's text
//! format.
//!
//! ```text
//!   table.rs       the one table: each counter's help, field, kind, Prometheus name
//!   macros.rs      what is made from it: live structs, snapshots, sum, the line
//!   kinds.rs       Counter, Gauge, Peak, Log2Histogram: write, read, merge, print
//!   set.rs         one server's counters (per listener, per loop), the Counters handle
//!   prometheus.rs  the text exposition format 0.0.4
//! ```
//!
//! The loop writes; everyone else reads a snapshot ([`Stats`]) through a
//! [`Counters`] handle, the same for a [`Server`](crate::Server), a
//! [`Nested`](crate::Nested) server and [`Workers`](crate::Workers).

#[macro_use]
mod macros;
mod kinds;
pub(crate) mod prometheus;
mod set;
mod table;

pub use kinds::Histogram;
pub use prometheus::CONTENT_TYPE;
pub(crate) use set::ServerCounters;
pub use set::{Counters, ListenerInfo};
pub(crate) use table::ListenerCounters;
pub use table::{EventsHistogram, ListenerStats, LoopStats, Stats, TurnHistogram};

/// A Prometheus metric family, as the table describes it.
#[derive(Debug)]
pub(crate) struct Family {
    /// `sockloop_…`.
    pub name: &'static str,
    /// `# HELP` (the entry's doc comment).
    pub help: &'static str,
    /// `# TYPE`: counter, gauge or histogram.
    pub kind: &'static str,
    /// Decimal places from the stored value to base units (ms → s: 3,
    /// ns → s: 9).
    pub places: u32,
}
