//! `count`: for each frame (or datagram), how many bytes in it are `s`
//! (0x73), as decimal ASCII. The loop frames the reply like the request, so
//! over `line` framing "mississippi\n" gets "4\n"; a datagram gets "4".

use std::io::Write;
use std::net::SocketAddr;

use super::{ConnId, Outbox, Service};

/// The `count` service.
#[derive(Clone, Copy, Debug, Default)]
pub struct Count;

impl Service for Count {
    fn on_frame(&mut self, _conn: ConnId, _peer: SocketAddr, frame: &[u8], out: &mut Outbox) {
        let n = frame.iter().filter(|&&b| b == b's').count();
        // Writing a number into a Vec cannot fail.
        out.reply_with(|buf| {
            let _ = write!(buf, "{n}");
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn count(frame: &[u8]) -> Vec<u8> {
        let mut out = Outbox::default();
        Count.on_frame(ConnId(1), "127.0.0.1:1".parse().unwrap(), frame, &mut out);
        let reply = out.messages().next().unwrap().1.to_vec();
        reply
    }

    #[test]
    fn counts_lowercase_s_only() {
        assert_eq!(count(b"mississippi"), b"4");
        assert_eq!(count(b"SSS"), b"0");
        assert_eq!(count(b""), b"0");
    }

    proptest! {
        #[test]
        fn matches_a_plain_count(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let expected = bytes.iter().filter(|&&b| b == 0x73).count().to_string();
            prop_assert_eq!(count(&bytes), expected.into_bytes());
        }
    }
}
