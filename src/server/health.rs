//! The loop's health: turns, time busy (not waiting in `epoll_wait`),
//! how long a turn takes and how many events it handles.
//!
//! A turn is what follows one poll: the events handed to
//! [`handle_event`](Server::handle_event), then
//! [`on_timer`](Server::on_timer). It begins at the first of them — whose
//! clock read (`tick`) the loop makes anyway — and ends when `on_timer`
//! returns: one more clock read per turn, and a few relaxed stores. The
//! same holds whoever runs the loop: [`Server::run`], a [`Nested`] turn,
//! or a host's own poll calling both hooks.
//!
//! [`Nested`]: super::Nested

use std::time::Instant;

use super::{Server, World};

/// The turn under way.
#[derive(Debug, Default)]
pub(super) struct Turn {
    /// When its first event (or `on_timer`) came; `None` between turns.
    began: Option<Instant>,
    /// Events handled so far.
    events: u64,
}

impl<W: World> Server<W> {
    /// An event is being handled (after `tick`): the turn's first begins it.
    pub(super) fn turn_event(&mut self) {
        self.turn_begins();
        self.turn.events += 1;
    }

    /// The turn begins now (after `tick`) unless it already has.
    pub(super) fn turn_begins(&mut self) {
        self.turn.began.get_or_insert(self.now);
    }

    /// `on_timer` is done: the turn is over. Count it.
    pub(super) fn turn_ends(&mut self) {
        let Some(began) = self.turn.began.take() else {
            return;
        };
        let ns = self.world.now().saturating_duration_since(began).as_nanos();
        let ns = u64::try_from(ns).unwrap_or(u64::MAX);
        let h = &self.counters.health;
        h.turns.add(1);
        h.busy_ns.add(ns);
        h.turn_ns.record(ns);
        h.events.record(std::mem::take(&mut self.turn.events));
    }
}
