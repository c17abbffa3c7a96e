//! The echo pattern over UDP, as a [`Protocol`]: each datagram carries its
//! sequence number in its first bytes, as uppercase hex (so `upper`
//! returns it unchanged), then letters — so a reply says which datagram
//! it answers, and replies may come back in any order.

use crate::load::pattern::WRONG_BYTES;
use crate::load::protocol::{Protocol, Tag, Verdict};

/// How many hex digits of the sequence a datagram of `size` bytes carries.
fn width(size: usize) -> usize {
    size.min(16)
}

/// The bits of a sequence number a datagram of `size` bytes can carry.
fn mask(size: usize) -> u64 {
    match width(size) {
        16 => u64::MAX,
        w => (1u64 << (4 * w)) - 1,
    }
}

/// The alphabet repeated, long enough that the letters of a datagram of
/// `size` bytes are one slice of it from any starting letter.
fn letters(size: usize) -> Vec<u8> {
    (b'A'..=b'Z').cycle().take(size + 26).collect()
}

/// The (carried part of the) sequence number a datagram says.
fn seq_of(d: &[u8]) -> Option<u64> {
    let digits = &d[..width(d.len())];
    let s = std::str::from_utf8(digits).ok()?;
    u64::from_str_radix(s, 16).ok()
}

/// Echo datagrams of `size` bytes.
pub(crate) struct EchoDatagram {
    size: usize,
    letters: Vec<u8>,
    /// The datagram a reply is compared with.
    want: Vec<u8>,
}

impl EchoDatagram {
    pub(crate) fn new(size: usize) -> Self {
        EchoDatagram {
            size,
            letters: letters(size),
            want: Vec::with_capacity(size),
        }
    }

    /// Datagram `seq`: the sequence's low hex digits (as many as fit, up
    /// to 16), then letters (byte `i` is letter `(seq + i) % 26`), copied
    /// from `letters` in one piece.
    fn datagram(&self, seq: u64, out: &mut Vec<u8>) {
        const HEX: &[u8; 16] = b"0123456789ABCDEF";
        let w = width(self.size);
        out.extend((0..w).map(|i| HEX[((seq >> (4 * (w - 1 - i))) & 0xF) as usize]));
        let first = ((seq % 26) as usize + w) % 26;
        out.extend_from_slice(&self.letters[first..first + self.size - w]);
    }
}

impl Protocol for EchoDatagram {
    fn request(&mut self, _conn: usize, seq: u64, out: &mut Vec<u8>) {
        self.datagram(seq, out);
    }

    fn reply(&mut self, _conn: usize, seq: u64, _off: u64, d: &[u8]) -> Verdict {
        let mut want = std::mem::take(&mut self.want);
        want.clear();
        self.datagram(seq, &mut want);
        let v = if d == want {
            Verdict::Ok(d.len())
        } else {
            Verdict::Broken(WRONG_BYTES.into())
        };
        self.want = want;
        v
    }

    fn reply_tag(&self, d: &[u8]) -> Tag {
        match seq_of(d) {
            Some(low) => Tag::Seq {
                low,
                mask: mask(self.size),
            },
            None => Tag::Unreadable,
        }
    }

    fn silence(&self) -> &'static str {
        "the target does not look like an echo-like service (echo, or upper)"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_datagram_says_its_sequence_and_is_upper_safe() {
        for (seq, size) in [(0, 64), (0xABCDEF, 20), (7, 5), (u64::MAX, 16), (25, 100)] {
            let mut e = EchoDatagram::new(size);
            let mut d = Vec::new();
            e.request(0, seq, &mut d);
            // Byte i past the digits is letter (seq + i) % 26.
            for (i, &b) in d.iter().enumerate().skip(width(size)) {
                assert_eq!(
                    b,
                    b'A' + ((seq % 26 + i as u64) % 26) as u8,
                    "seq {seq} size {size} byte {i}"
                );
            }
            assert_eq!(d.len(), size);
            assert_eq!(d, d.to_ascii_uppercase(), "upper returns it unchanged");
            assert!(e.reply_tag(&d).names(seq));
            assert!(!e.reply_tag(&d).names(seq.wrapping_add(1)));
            assert_eq!(e.reply(0, seq, 0, &d), Verdict::Ok(size));
            assert!(matches!(
                e.reply(0, seq.wrapping_add(1), 0, &d),
                Verdict::Broken(_)
            ));
        }
        assert_eq!(EchoDatagram::new(8).reply_tag(b"zzzzzzzz"), Tag::Unreadable);
    }
}
