//! The one table of counters. Add a counter here — its help, its field
//! name, its kind, its Prometheus name — and the library's [`Stats`], the
//! `--stats` line and `/metrics` all have it (see `macros.rs`).
//!
//! Per listener (Prometheus labels `service`, `proto`, `addr`): what its
//! connections and datagrams did. Per loop (one per worker): its health.

use super::kinds::{Counter, Gauge, Histogram, Log2Histogram, Metric, Peak, Sample};
use super::Family;

/// Turn durations in nanoseconds: buckets up to 1.024 µs, 2.048 µs, …,
/// 2^30 ns (1.07 s), and above.
pub(crate) type TurnNanos = Log2Histogram<10, 22>;
/// A snapshot of the turn durations: nanoseconds, see [`Histogram`].
pub type TurnHistogram = Histogram<10, 22>;
/// Events handled per turn: buckets up to 1, 2, 4, …, 1024, and above.
pub(crate) type EventsPerTurn = Log2Histogram<0, 12>;
/// A snapshot of the events per turn, see [`Histogram`].
pub type EventsHistogram = Histogram<0, 12>;

/// Milliseconds to seconds, nanoseconds to seconds (decimal places):
/// Prometheus wants base units.
const MS: u32 = 3;
const NS: u32 = 9;

counters! {
    listener {
        /// TCP connections open now.
        open: Gauge => "connections_open",
        /// TCP connections accepted and kept.
        accepted: Counter => "connections_accepted_total",
        /// TCP connections closed (by either side or a limit).
        closed: Counter => "connections_closed_total",
        /// TCP connections closed at once for --max-conns.
        refused: Counter => "connections_refused_total",
        /// Bytes read from TCP connections and UDP sockets.
        bytes_in: Counter => "received_bytes_total",
        /// Bytes written to TCP connections and UDP sockets.
        bytes_out: Counter => "sent_bytes_total",
        /// Frames (TCP) and datagrams (UDP) handed to the service.
        frames_in: Counter => "frames_received_total",
        /// Messages the service produced (replies and relays).
        frames_out: Counter => "frames_sent_total",
        /// Reply bytes held in user space for the connections, now.
        pending_out: Gauge => "pending_bytes",
        /// The most reply bytes ever held for one connection at once.
        peak_conn_pending: Peak => "connection_pending_bytes_max",
        /// The most memory ever held for one connection's unused input.
        peak_held_input: Peak => "connection_held_input_bytes_max",
        /// The most work (replies and room deliveries) one connection did in one turn.
        peak_turn_work: Peak => "connection_turn_work_max",
        /// Chat members cut for staying above --write-buffer for --slow-timeout.
        slow_cut: Counter => "slow_members_cut_total",
        /// Times a chat room paused its senders for a member above --write-buffer.
        room_pauses: Counter => "room_pauses_total",
        /// Time chat rooms spent paused for a member above --write-buffer.
        room_paused_ms: Counter [MS] => "room_paused_seconds_total",
        /// Connections closed by --frame-timeout.
        frame_timeouts: Counter => "frame_timeouts_total",
        /// UDP datagrams received.
        udp_datagrams_in: Counter => "udp_datagrams_received_total",
        /// UDP datagrams sent.
        udp_datagrams_out: Counter => "udp_datagrams_sent_total",
        /// UDP chat relays dropped because the socket could not take them.
        udp_relays_dropped: Counter => "udp_relays_dropped_total",
        /// UDP replies and relays over the largest datagram: a reply is answered ERR reply too long, a relay dropped.
        udp_too_long: Counter => "udp_too_long_total",
        /// Receive calls on UDP sockets (recvmmsg: up to 32 datagrams each).
        udp_recv_calls: Counter => "udp_receive_calls_total",
        /// Send calls on UDP sockets (sendmmsg: up to 32 messages each).
        udp_send_calls: Counter => "udp_send_calls_total",
    }
    loop {
        /// Loop turns: one poll's events handled and the timers run.
        turns: Counter => "loop_turns_total",
        /// Time the loop spent working, not waiting in epoll_wait.
        busy_ns: Counter [NS] => "loop_busy_seconds_total",
        /// Deadlines that came due (idle, frame, slow member, linger).
        timers_fired: Counter => "loop_timers_fired_total",
        /// How long one turn took, from its first event to the end of its timers.
        turn_ns: TurnNanos [NS] => "loop_turn_duration_seconds",
        /// How many readiness events one turn handled.
        events: EventsPerTurn => "loop_events_per_turn",
    }
}
