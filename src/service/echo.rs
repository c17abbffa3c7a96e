//! `echo` (RFC 862): every byte received is sent back, in order, at once.
//! Over UDP each datagram goes back unchanged to its sender.

use std::net::SocketAddr;

use super::{ConnId, Outbox, Service};
use crate::framing::Framing;

/// The `echo` service.
#[derive(Clone, Copy, Debug, Default)]
pub struct Echo;

impl Service for Echo {
    /// A stream transform needs no framing: whatever a read returns goes
    /// straight back.
    fn default_framing(&self) -> Framing {
        Framing::Raw
    }

    fn on_frame(&mut self, _conn: ConnId, _peer: SocketAddr, frame: &[u8], out: &mut Outbox) {
        out.reply(frame);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::To;

    #[test]
    fn echoes_bytes_unchanged() {
        let mut out = Outbox::default();
        let peer = "[::1]:7000".parse().unwrap();
        Echo.on_frame(ConnId(1), peer, b"\x00\xffhi", &mut out);
        Echo.on_datagram(peer, b"dgram", std::time::Instant::now(), &mut out);
        let got: Vec<_> = out.messages().collect();
        assert_eq!(
            got,
            vec![
                (To::Sender, &b"\x00\xffhi"[..]),
                (To::Sender, &b"dgram"[..])
            ]
        );
    }
}
