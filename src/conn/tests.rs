//! `Conn`'s state machine and flags, without a socket.

use super::*;

fn conn() -> Conn<()> {
    Conn::new((), "127.0.0.1:1".parse().unwrap(), 1, 0, 0)
}

#[test]
fn half_close_delivers_then_closes() {
    let mut c = conn();
    assert_eq!(c.on(Event::PeerFin), Next::Stay);
    assert_eq!(c.state(), State::PeerClosed);
    assert!(!c.wants_read(10), "nothing more is read after EOF");
    assert!(matches!(c.on(Event::AllDelivered), Next::Close(_)));
}

#[test]
fn we_close_then_fin_then_linger_until_the_peers_fin() {
    let mut c = conn();
    c.set_may_read(true);
    assert_eq!(c.on(Event::WeClose), Next::Stay);
    assert!(!c.wants_read(10), "closing: no new requests");
    assert!(c.wants_discard(), "but unread input is drained");
    assert_eq!(c.wanted_interest(10), Some(Interest::READABLE));
    assert_eq!(c.on(Event::AllDelivered), Next::SendFin);
    assert_eq!(c.state(), State::Lingering);
    assert_eq!(c.on(Event::WeClose), Next::Stay);
    assert!(matches!(c.on(Event::PeerFin), Next::Close(_)));
}

#[test]
fn interest_follows_backpressure() {
    let mut c = conn();
    let mut pool = BufPool::default();
    assert_eq!(c.wanted_interest(4), Some(Interest::READABLE));
    c.bufs_mut(&mut pool)
        .out
        .append_with(|v| v.extend_from_slice(b"12345"));
    assert_eq!(c.wanted_interest(4), Some(Interest::WRITABLE));
    assert_eq!(
        c.wanted_interest(8),
        Some(Interest::READABLE | Interest::WRITABLE)
    );
}

#[test]
fn flags_are_independent() {
    let mut c = conn();
    assert!(c.mark_dirty());
    assert!(!c.mark_dirty());
    assert!(c.mark_deferred());
    assert!(c.take_dirty());
    assert!(!c.take_dirty());
    assert!(c.take_deferred());
    assert!(c.mark_paused() && c.take_paused());
}

#[test]
fn due_at_is_the_earliest_deadline_and_none_when_there_is_none() {
    let mut c = conn();
    let mut pool = BufPool::default();
    assert_eq!(c.due_at(Some(50), 500), None, "no deadline at all");
    // A moment 0 is a moment, not "none" (the clock starts at 0).
    c.set_deadline(0);
    assert_eq!(c.due_at(Some(50), 500), Some(0));
    c.set_deadline(1_000);
    assert_eq!(c.due_at(Some(50), 500), Some(1_000));
    // An incomplete frame since 100: the frame timeout comes first.
    c.bufs_mut(&mut pool).frame_since = Some(100);
    assert_eq!(c.due_at(Some(50), 500), Some(150));
    assert_eq!(c.due_at(None, 500), Some(1_000), "no --frame-timeout");
    // Above --write-buffer since 0: the slow timeout, earlier still.
    c.set_over_write_buffer(true, 0);
    assert_eq!(c.due_at(Some(50), 40), Some(40));
    c.set_blame_due(Some(10));
    assert_eq!(c.due_at(Some(50), 40), Some(10));
    assert!(c.blame_expired(10) && !c.blame_expired(9));
    c.set_blame_due(None);
    c.set_over_write_buffer(false, 0);
    assert_eq!(c.due_at(Some(50), 40), Some(150));
    assert!(c.frame_expired(Some(50), 150) && !c.frame_expired(Some(50), 149));
}
