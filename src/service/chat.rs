//! `chat`: a room. Each frame from one client goes to every *other* client
//! as `<ip:port>: <text>`.
//!
//! Over TCP the room is the set of connections on the listener: the loop
//! knows it, so the service only says [`To::Others`](super::To::Others) and
//! announces joins and leaves. Over UDP there are no connections, so the
//! room is kept here ([`UdpRoom`]): a datagram makes its sender a member, a
//! member silent for the TTL is dropped, `/leave` removes the sender, and
//! the room holds at most `max_members` (a newcomer to a full room is not
//! admitted, and its datagram is dropped; members are never evicted for it).

use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::{ConnId, Outbox, Service};

/// The `chat` service: TCP announcements and relays, plus a UDP room.
#[derive(Debug)]
pub struct Chat {
    udp: UdpRoom,
}

impl Chat {
    /// A chat service whose UDP room drops members silent for `ttl` and
    /// holds at most `max_members`.
    pub fn new(ttl: Duration, max_members: usize) -> Self {
        Chat {
            udp: UdpRoom::new(ttl, max_members),
        }
    }
}

impl Service for Chat {
    /// One room: never split over workers.
    fn shared_state(&self) -> bool {
        true
    }

    fn on_connect(&mut self, _conn: ConnId, peer: SocketAddr, out: &mut Outbox) {
        out.to_others_with(|buf| {
            let _ = write!(buf, "* {peer} joined");
        });
    }

    fn on_frame(&mut self, _conn: ConnId, peer: SocketAddr, frame: &[u8], out: &mut Outbox) {
        out.to_others_with(|buf| said(buf, peer, frame));
    }

    fn on_disconnect(&mut self, _conn: ConnId, peer: SocketAddr, out: &mut Outbox) {
        out.to_others_with(|buf| {
            let _ = write!(buf, "* {peer} left");
        });
    }

    fn on_datagram(&mut self, peer: SocketAddr, datagram: &[u8], now: Instant, out: &mut Outbox) {
        self.udp.on_datagram(peer, datagram, now, out);
    }
}

/// `<ip:port>: <text>`.
fn said(buf: &mut Vec<u8>, peer: SocketAddr, text: &[u8]) {
    let _ = write!(buf, "{peer}: ");
    buf.extend_from_slice(text);
}

/// The members of a UDP chat room and when each was last heard from.
#[derive(Debug)]
pub(crate) struct UdpRoom {
    ttl: Duration,
    max_members: usize,
    // A Vec, not a map: the room is small (1024 by default) and every relay
    // walks all of it anyway, so a lookup costs no more than the relay.
    members: Vec<(SocketAddr, Instant)>,
}

/// What a datagram of exactly this text does: leave the room.
pub(crate) const LEAVE: &[u8] = b"/leave";

impl UdpRoom {
    /// An empty room.
    pub(super) fn new(ttl: Duration, max_members: usize) -> Self {
        UdpRoom {
            ttl,
            max_members,
            members: Vec::new(),
        }
    }

    #[cfg(test)] // only the tests ask
    /// The members, in the order they joined.
    pub(super) fn members(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.members.iter().map(|&(a, _)| a)
    }

    /// A datagram from `peer`: join or refresh, relay to the others, or leave.
    pub(super) fn on_datagram(
        &mut self,
        peer: SocketAddr,
        datagram: &[u8],
        now: Instant,
        out: &mut Outbox,
    ) {
        // Silent members go first, so they get no relay and free their seat.
        let ttl = self.ttl;
        self.members
            .retain(|&(_, seen)| now.saturating_duration_since(seen) < ttl);
        let me = self.members.iter().position(|&(a, _)| a == peer);
        if datagram == LEAVE {
            if let Some(i) = me {
                self.members.remove(i);
            }
            return;
        }
        match me {
            Some(i) => self.members[i].1 = now,
            None if self.members.len() < self.max_members => self.members.push((peer, now)),
            None => {
                log::debug!(
                    "udp chat: room full ({} members), dropped datagram from {peer}",
                    self.max_members
                );
                return;
            }
        }
        let others = self.members.iter().map(|&(a, _)| a).filter(|&a| a != peer);
        out.to_addrs_with(others, |buf| said(buf, peer, datagram));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::To;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn tcp_messages_go_to_others_with_prefix() {
        let mut chat = Chat::new(Duration::from_secs(300), 10);
        let mut out = Outbox::default();
        chat.on_connect(ConnId(1), addr(1), &mut out);
        chat.on_frame(ConnId(1), addr(1), b"hi", &mut out);
        chat.on_disconnect(ConnId(1), addr(1), &mut out);
        let got: Vec<_> = out.messages().collect();
        assert_eq!(
            got,
            vec![
                (To::Others, &b"* 127.0.0.1:1 joined"[..]),
                (To::Others, &b"127.0.0.1:1: hi"[..]),
                (To::Others, &b"* 127.0.0.1:1 left"[..]),
            ]
        );
    }

    fn relay(room: &mut UdpRoom, from: u16, text: &[u8], now: Instant) -> Vec<(To, Vec<u8>)> {
        let mut out = Outbox::default();
        room.on_datagram(addr(from), text, now, &mut out);
        out.messages().map(|(t, m)| (t, m.to_vec())).collect()
    }

    #[test]
    fn udp_sender_joins_and_relays_to_others() {
        let mut room = UdpRoom::new(Duration::from_secs(300), 10);
        let t = Instant::now();
        assert!(relay(&mut room, 1, b"first", t).is_empty());
        assert_eq!(
            relay(&mut room, 2, b"hey", t),
            vec![(To::Addr(addr(1)), b"127.0.0.1:2: hey".to_vec())]
        );
        assert_eq!(
            relay(&mut room, 1, b"yo", t),
            vec![(To::Addr(addr(2)), b"127.0.0.1:1: yo".to_vec())]
        );
    }

    #[test]
    fn udp_leave_removes_sender() {
        let mut room = UdpRoom::new(Duration::from_secs(300), 10);
        let t = Instant::now();
        relay(&mut room, 1, b"a", t);
        relay(&mut room, 2, b"b", t);
        assert!(relay(&mut room, 1, LEAVE, t).is_empty());
        assert_eq!(room.members().collect::<Vec<_>>(), vec![addr(2)]);
        assert!(relay(&mut room, 2, b"alone", t).is_empty());
    }

    #[test]
    fn udp_silent_member_is_dropped_after_ttl() {
        let mut room = UdpRoom::new(Duration::from_secs(10), 10);
        let t = Instant::now();
        relay(&mut room, 1, b"a", t);
        relay(&mut room, 2, b"b", t + Duration::from_secs(5));
        // At t+10, member 1 has been silent for 10 s: gone; member 2 stays.
        assert_eq!(
            relay(&mut room, 3, b"c", t + Duration::from_secs(10)),
            vec![(To::Addr(addr(2)), b"127.0.0.1:3: c".to_vec())]
        );
    }

    #[test]
    fn udp_full_room_turns_newcomers_away() {
        let mut room = UdpRoom::new(Duration::from_secs(300), 2);
        let t = Instant::now();
        relay(&mut room, 1, b"a", t);
        relay(&mut room, 2, b"b", t);
        assert!(relay(&mut room, 3, b"c", t).is_empty());
        assert_eq!(room.members().count(), 2);
    }
}
