//! What the UDP side may send where: the reflection guard (no datagram to
//! a small service, a broadcast or multicast address, port 0) and the
//! largest payload one datagram can carry.

use std::net::{IpAddr, SocketAddr};

/// The largest UDP payload to `to`: 65,535 less the IPv4 and UDP headers
/// (65,507), or less the UDP header only over IPv6 (65,527, no jumbograms).
pub(super) fn max_payload(to: SocketAddr) -> usize {
    match to {
        SocketAddr::V4(_) => 65_507,
        SocketAddr::V6(v6) if v6.ip().to_ipv4_mapped().is_some() => 65_507,
        SocketAddr::V6(_) => 65_527,
    }
}

/// The ports of the classic small services that answer anything sent to
/// them: echo (7), discard (9), daytime (13), chargen (19), time (37).
const SMALL_SERVICE_PORTS: [u16; 5] = [7, 9, 13, 19, 37];

/// Why sockloop will not send to `addr`, if it will not (docs/protocol.md, "Services", the UDP
/// reflection guard): port 0, a classic small service's port, or a
/// broadcast, multicast or unspecified address. A datagram *from* such an
/// address is dropped unanswered.
pub(crate) fn blocked_peer(addr: SocketAddr) -> Option<&'static str> {
    if addr.port() == 0 {
        return Some("port 0");
    }
    if SMALL_SERVICE_PORTS.contains(&addr.port()) {
        return Some("a classic small service's port");
    }
    let ip = match addr.ip() {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    match ip {
        IpAddr::V4(v4) if v4.is_broadcast() => Some("a broadcast address"),
        ip if ip.is_multicast() => Some("a multicast address"),
        ip if ip.is_unspecified() => Some("the unspecified address"),
        _ => None,
    }
}
