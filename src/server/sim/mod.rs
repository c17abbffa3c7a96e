//! The whole server in a deterministic simulation, as FoundationDB and
//! TigerBeetle test theirs: the real [`Server`] — accept, the scheduler,
//! rooms and pacing, deadlines, shutdown with `--grace`, `--max-conns`,
//! UDP — built in a simulated [`World`](super::World) (world.rs,
//! sockets.rs) with simulated clients (clients.rs) under simulated time;
//! scenario.rs picks a seed's scenario, turns.rs runs its loop and clock.
//!
//! ```text
//!   seed ─▶ Rng ─▶ scenario: service × framing, options, clients, faults
//!   loop: clients act (now) ─▶ poll ─▶ handle_ready … ─▶ on_timer
//!         ─▶ per-turn checks (checks.rs) ─▶ advance the clock to the
//!            next deadline or client action when nothing is ready
//!   end:  every client's expectation, from crate::oracle (checks.rs)
//! ```
//!
//! Simulated: clients that send in random chunks, read slowly or never,
//! stop and resume reading, pause sending mid-stream (shorter than
//! `--idle-timeout`: never cut; longer: cut to the ms), half-close, reset,
//! trickle a frame that never ends, hog, join a chat room and get stuck;
//! UDP clients, some from a port the reflection guard refuses, some
//! sending empty datagrams or one whose reply is too big (clients.rs,
//! scenario.rs). Faults (world.rs, sockets.rs), at random: `Interrupted`,
//! short writes, spurious readiness, EMFILE on accept (every family), a
//! new connection's registration failing (Streams, MaxConns), full UDP
//! send buffers. Not simulated: IPv6 peers, several `--workers` loops
//! sharing places (one loop here), UDP chat, short reads of a datagram
//! (GRO) and `sendmmsg` errors other than `WouldBlock`.
//!
//! Everything follows from the seed, so a failure names its seed and
//! `SOCKLOOP_SEED=<n> cargo test --release --lib sim` replays it exactly.
//! CI runs [`CI_SEEDS`] seeds; a soak runs more:
//! `SOCKLOOP_SIM_SEEDS=1000000 cargo test --release --lib sim::tests::whole`
//! (every kind mixed; about four minutes here).
//! one_conn.rs is the older, narrower simulation of one connection's
//! `drive`.

mod checks;
mod clients;
mod one_conn;
mod scenario;
mod sockets;
mod turns;
mod world;

/// Whole-server seeds per CI run.
pub(crate) const CI_SEEDS: u64 = 10_000;

/// Run `seeds` seeds from `first` (or the one `SOCKLOOP_SEED` names),
/// failing with every failing seed's message and how to replay it.
fn run_seeds(first: u64, seeds: u64, family: Option<scenario::Family>) {
    if let Some(seed) = std::env::var("SOCKLOOP_SEED")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    {
        if let Err(e) = scenario::run_seed_as(seed, family) {
            panic!("seed {seed}: {e}");
        }
        return;
    }
    let seeds = std::env::var("SOCKLOOP_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(seeds);
    let started = std::time::Instant::now();
    let mut failed = Vec::new();
    for seed in first..first + seeds {
        if let Err(e) = scenario::run_seed_as(seed, family) {
            failed.push(format!("seed {seed}: {e}"));
            if failed.len() >= 5 {
                break;
            }
        }
    }
    eprintln!(
        "sim: {seeds} seeds in {:.2?} ({:.0} seeds/s)",
        started.elapsed(),
        seeds as f64 / started.elapsed().as_secs_f64()
    );
    assert!(
        failed.is_empty(),
        "{}\nreplay one with SOCKLOOP_SEED=<n> cargo test --release --lib sim",
        failed.join("\n")
    );
}

#[cfg(test)]
mod tests {
    use super::scenario::Family;
    use super::*;

    /// Every scenario family, mixed: the CI run.
    #[test]
    fn whole_server_over_many_seeds() {
        run_seeds(0, CI_SEEDS, None);
    }

    #[test]
    fn every_reply_exactly_once_in_order_and_owed_replies_after_a_half_close() {
        run_seeds(1_000_000, 300, Some(Family::Streams));
    }

    #[test]
    fn idle_and_frame_timeouts_exact_to_the_ms() {
        run_seeds(2_000_000, 300, Some(Family::Timeouts));
    }

    #[test]
    fn a_stuck_member_is_cut_at_slow_timeout_and_the_room_resumes_its_senders() {
        run_seeds(3_000_000, 300, Some(Family::Chat));
    }

    #[test]
    fn nothing_reset_before_grace_ends_and_everything_owed_delivered() {
        run_seeds(4_000_000, 300, Some(Family::Shutdown));
    }

    #[test]
    fn udp_guarded_sources_never_answered_and_odd_datagrams_as_documented() {
        run_seeds(8_000_000, 300, Some(Family::Udp));
    }

    #[test]
    fn max_conns_places_are_given_back() {
        run_seeds(5_000_000, 300, Some(Family::MaxConns));
    }

    #[test]
    fn udp_every_datagram_answered_once_in_order() {
        run_seeds(6_000_000, 300, Some(Family::Udp));
    }

    #[test]
    fn a_member_holds_at_most_one_turn_of_fanout_beyond_the_mark() {
        run_seeds(7_000_000, 4, Some(Family::Flood));
    }

    #[test]
    fn a_seed_replays_exactly() {
        let a = scenario::trace_of(42);
        let b = scenario::trace_of(42);
        assert_eq!(a, b, "the same seed, the same run");
        assert_ne!(a, scenario::trace_of(43), "another seed, another run");
    }
}
