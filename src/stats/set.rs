//! Whose counters: one server's (a listener's counters each, and its
//! loop's health), and the handle that reads them — for one server, or
//! for every worker of [`Workers`](crate::Workers) together.
//!
//! ```text
//!   Counters (Clone, any thread) ─▶ [ServerCounters per worker, in order]
//!                                      ├─ listeners[li]: ListenerCounters   (labels: service, proto, addr)
//!                                      └─ health:        LoopCounters
//! ```
//!
//! The loop reaches its own listener's counters by the index its
//! connection already carries (`counters[li]`): no lookup, no lock on the
//! hot path. Readers take a lock on the list of workers (it grows only
//! while workers are bound) and read the relaxed atomics.

use std::ops::Index;
use std::sync::{Arc, Mutex};

use super::table::{ListenerCounters, ListenerStats, LoopCounters, LoopStats, Stats};
use crate::addr::Endpoint;

/// Which listener a series of counters belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenerInfo {
    /// The service's name (`--listen SERVICE=…`).
    pub service: String,
    /// Its protocol and real bound address.
    pub endpoint: Endpoint,
}

/// One server's (one worker's) live counters.
#[derive(Debug)]
pub(crate) struct ServerCounters {
    listeners: Box<[ListenerCounters]>,
    infos: Box<[ListenerInfo]>,
    /// The loop's health.
    pub(crate) health: LoopCounters,
}

impl ServerCounters {
    /// Zeroed counters for these listeners, in the server's order.
    pub(crate) fn new(infos: Vec<ListenerInfo>) -> ServerCounters {
        ServerCounters {
            listeners: infos.iter().map(|_| ListenerCounters::default()).collect(),
            infos: infos.into_boxed_slice(),
            health: LoopCounters::default(),
        }
    }

    pub(crate) fn listener_snapshots(
        &self,
    ) -> impl Iterator<Item = (&ListenerInfo, ListenerStats)> {
        self.infos
            .iter()
            .zip(self.listeners.iter().map(ListenerCounters::snapshot))
    }

    fn snapshot(&self) -> Stats {
        let l = self
            .listeners
            .iter()
            .map(ListenerCounters::snapshot)
            .fold(ListenerStats::default(), ListenerStats::merge);
        Stats::new(l, self.health.snapshot())
    }
}

impl Index<usize> for ServerCounters {
    type Output = ListenerCounters;
    /// Listener `li`'s counters.
    fn index(&self, li: usize) -> &ListenerCounters {
        &self.listeners[li]
    }
}

/// The live counters of a server, or of every worker together: the same
/// handle from [`Server::counters`](crate::Server::counters),
/// [`Nested::counters`](crate::Nested::counters) and
/// [`Workers::counters`](crate::Workers::counters). Cheap to clone; read
/// it from any thread.
#[derive(Clone, Debug, Default)]
pub struct Counters(Arc<Mutex<Vec<Arc<ServerCounters>>>>);

impl Counters {
    /// Add one server's counters (the next worker).
    pub(crate) fn push(&self, server: Arc<ServerCounters>) {
        self.workers_lock().push(server);
    }

    fn workers_lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<ServerCounters>>> {
        // The list is only ever pushed to: a panic elsewhere cannot leave
        // it half-written.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Each worker's counters, in order (one for a lone server).
    pub(crate) fn servers(&self) -> Vec<Arc<ServerCounters>> {
        self.workers_lock().clone()
    }

    /// How many workers (servers) these counters cover.
    pub fn workers(&self) -> usize {
        self.workers_lock().len()
    }

    /// Everything together: every listener of every worker, and the
    /// loops' health (counts summed, peaks the highest).
    pub fn snapshot(&self) -> Stats {
        Stats::sum(self.per_worker())
    }

    /// Each worker's own, the first worker first.
    pub fn per_worker(&self) -> Vec<Stats> {
        self.servers().iter().map(|s| s.snapshot()).collect()
    }

    /// Each listener's counters, summed over the workers that serve it,
    /// in the order of the listeners.
    pub fn per_listener(&self) -> Vec<(ListenerInfo, ListenerStats)> {
        let mut out: Vec<(ListenerInfo, ListenerStats)> = Vec::new();
        for s in self.servers() {
            for (info, stats) in s.listener_snapshots() {
                match out.iter_mut().find(|(i, _)| i == info) {
                    Some((_, sum)) => *sum = sum.merge(stats),
                    None => out.push((info.clone(), stats)),
                }
            }
        }
        out
    }

    /// Each worker's loop health, the first worker first.
    pub fn per_loop(&self) -> Vec<LoopStats> {
        self.servers().iter().map(|s| s.health.snapshot()).collect()
    }

    /// The `--stats` line: the sum and, with several workers, how the
    /// accepted connections spread over them (`accepted_per_worker=a/b`).
    pub fn line(&self) -> String {
        let each = self.per_worker();
        let sum = Stats::sum(each.iter().copied());
        if each.len() < 2 {
            return sum.to_string();
        }
        let spread: Vec<String> = each.iter().map(|s| s.accepted.to_string()).collect();
        format!("{sum} accepted_per_worker={}", spread.join("/"))
    }

    /// The Prometheus text exposition (format 0.0.4) of every counter:
    /// what `GET /metrics` answers.
    pub fn prometheus(&self) -> String {
        let mut out = String::new();
        super::prometheus::render(&self.servers(), &mut out);
        out
    }
}
