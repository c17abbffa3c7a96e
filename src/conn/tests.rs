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
