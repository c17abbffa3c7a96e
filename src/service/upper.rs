//! `upper`: the textbook's TCPServer/UDPServer — send back what arrives,
//! uppercased.
//!
//! Uppercasing is Unicode's full case mapping without locale or context
//! rules (`char::to_uppercase`, the same as Python's `str.upper()` on valid
//! UTF-8): `ß` → `SS`, so a reply may be longer than its request. Bytes that
//! are not valid UTF-8 are sent back unchanged.
//!
//! Over TCP with `raw` framing (the default) a read may end in the middle of
//! a multi-byte character. Those last one to three bytes are left
//! unconsumed; the loop holds them and hands them back in front of the next
//! read, so the character is uppercased whole.

use std::net::SocketAddr;

use super::{ConnId, Outbox, Service};
use crate::framing::Framing;

/// The `upper` service.
#[derive(Clone, Copy, Debug, Default)]
pub struct Upper;

impl Service for Upper {
    fn default_framing(&self) -> Framing {
        Framing::Raw
    }

    fn on_bytes(
        &mut self,
        _conn: ConnId,
        _peer: SocketAddr,
        bytes: &[u8],
        at_eof: bool,
        out: &mut Outbox,
    ) -> usize {
        let take = if at_eof {
            bytes.len()
        } else {
            bytes.len() - incomplete_tail(bytes)
        };
        if take > 0 {
            out.reply_with(|buf| uppercase_into(&bytes[..take], buf));
        }
        take
    }

    fn on_frame(&mut self, _conn: ConnId, _peer: SocketAddr, frame: &[u8], out: &mut Outbox) {
        out.reply_with(|buf| uppercase_into(frame, buf));
    }
}

/// Append `input`, uppercased, to `out`. Invalid UTF-8 is copied unchanged.
#[doc(hidden)] // for the fuzz targets
pub fn uppercase_into(input: &[u8], out: &mut Vec<u8>) {
    out.reserve(input.len());
    for chunk in input.utf8_chunks() {
        let valid = chunk.valid();
        if valid.is_ascii() {
            // The common case, byte by byte: no char decoding.
            out.extend(valid.bytes().map(|b| b.to_ascii_uppercase()));
        } else {
            let mut utf8 = [0u8; 4];
            for c in valid.chars().flat_map(char::to_uppercase) {
                out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
            }
        }
        out.extend_from_slice(chunk.invalid());
    }
}

/// How many bytes at the end of `bytes` are the start of a UTF-8 character
/// that the next read may complete (0 to 3). Bytes that can never become a
/// character are not held: they are invalid, and go back unchanged now.
fn incomplete_tail(bytes: &[u8]) -> usize {
    // A character is at most 4 bytes, so an unfinished one starts in the
    // last 3. Find its lead byte by walking back over continuation bytes.
    for back in 1..=bytes.len().min(3) {
        let start = bytes.len() - back;
        let b = bytes[start];
        if b & 0b1100_0000 == 0b1000_0000 {
            continue; // a continuation byte: the lead is further back
        }
        // `from_utf8` tells "valid so far, but cut short" (error_len None)
        // apart from "invalid" (error_len Some).
        return match std::str::from_utf8(&bytes[start..]) {
            Err(e) if e.valid_up_to() == 0 && e.error_len().is_none() => back,
            _ => 0,
        };
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn upper(input: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        uppercase_into(input, &mut out);
        out
    }

    fn peer() -> SocketAddr {
        "127.0.0.1:9999".parse().unwrap()
    }

    #[test]
    fn full_case_mapping() {
        assert_eq!(upper(b"hello, world\n"), b"HELLO, WORLD\n");
        assert_eq!(upper("straße".as_bytes()), "STRASSE".as_bytes());
        assert_eq!(upper("ǆ ﬁ ŉ".as_bytes()), "Ǆ FI ʼN".as_bytes());
    }

    #[test]
    fn invalid_utf8_passes_through() {
        assert_eq!(upper(b"a\xffb\xc3"), b"A\xffB\xc3");
        assert_eq!(upper(b"\xed\xa0\x80x"), b"\xed\xa0\x80X"); // a surrogate
    }

    #[test]
    fn split_character_is_held_until_complete() {
        let mut s = Upper;
        let mut out = Outbox::default();
        // "ß" is C3 9F: the first read ends after C3.
        assert_eq!(s.on_bytes(ConnId(1), peer(), b"a\xc3", false, &mut out), 1);
        assert_eq!(
            s.on_bytes(ConnId(1), peer(), b"\xc3\x9fb", false, &mut out),
            3
        );
        let replies: Vec<u8> = out.messages().flat_map(|(_, m)| m.to_vec()).collect();
        assert_eq!(replies, "ASSB".as_bytes());
    }

    #[test]
    fn held_bytes_are_released_at_eof() {
        let mut s = Upper;
        let mut out = Outbox::default();
        assert_eq!(
            s.on_bytes(ConnId(1), peer(), b"\xe2\x82", true, &mut out),
            2
        );
        assert_eq!(out.messages().next().unwrap().1, b"\xe2\x82");
    }

    #[test]
    fn tail_that_cannot_complete_is_not_held() {
        assert_eq!(incomplete_tail(b"x\xe2\x82"), 2);
        assert_eq!(incomplete_tail(b"x\xf0\x9f\x98"), 3);
        assert_eq!(incomplete_tail(b"x\xff"), 0);
        assert_eq!(incomplete_tail(b"x\xe2\x28"), 0); // bad continuation
        assert_eq!(incomplete_tail(b"\x82\x82\x82"), 0);
        assert_eq!(incomplete_tail(b""), 0);
    }

    /// `bytes` as two reads cut at `cut`, the way the loop delivers them:
    /// what the first call leaves unconsumed goes in front of the second.
    fn in_two_reads(bytes: &[u8], cut: usize) -> Vec<u8> {
        let cut = cut % (bytes.len() + 1);
        let mut s = Upper;
        let mut out = Outbox::default();
        let used = s.on_bytes(ConnId(1), peer(), &bytes[..cut], false, &mut out);
        let mut rest = bytes[used..cut].to_vec();
        rest.extend_from_slice(&bytes[cut..]);
        assert_eq!(
            s.on_bytes(ConnId(1), peer(), &rest, true, &mut out),
            rest.len()
        );
        out.messages().flat_map(|(_, m)| m.to_vec()).collect()
    }

    proptest! {
        /// Python's str.upper() on valid text, whatever the reads' sizes.
        #[test]
        fn any_split_of_valid_text_matches_whole(text in "\\PC{0,40}", cut in 0usize..200) {
            let bytes = text.as_bytes();
            prop_assert_eq!(in_two_reads(bytes, cut), text.to_uppercase().into_bytes());
        }

        /// Arbitrary bytes, valid or not: holding a cut-off tail never
        /// changes the result, whatever the reads' sizes.
        #[test]
        fn any_split_of_any_bytes_matches_whole(
            bytes in proptest::collection::vec(prop_oneof![any::<u8>(), 0x80u8..0xc0, 0xc2u8..0xf5], 0..64),
            cut in 0usize..80,
        ) {
            prop_assert_eq!(in_two_reads(&bytes, cut), upper(&bytes));
        }
    }
}
