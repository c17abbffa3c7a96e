//! The echo pattern, `load`'s first [`Protocol`]: what each connection
//! sends and expects back. A message's bytes are a function of its offset
//! in the connection's stream, so neither side of the check needs a buffer
//! of its own: sending generates a slice, checking compares one.

use super::protocol::{Protocol, Verdict};

const ALPHABET: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// The byte at offset `off` of connection `conn`'s stream, for messages of
/// `size` bytes: each message is digits and capital letters ending in
/// `\n`, so `echo` and `upper` (and their `line` framings) return it as is.
/// The definition [`Pattern`] computes a slice at a time (tests compare
/// the two).
#[cfg(test)]
fn pattern(conn: usize, size: usize, off: u64) -> u8 {
    let i = (off % size as u64) as usize;
    if i == size - 1 {
        b'\n'
    } else {
        let msg = (off / size as u64) as usize;
        ALPHABET[(conn + msg.wrapping_mul(7) + i) % ALPHABET.len()]
    }
}

/// The pattern a slice at a time: the bytes of a connection's stream come
/// from one precomputed run of the alphabet, so sending copies slices and
/// checking compares them (`memcpy` and `memcmp`, not a computation per
/// byte).
pub(crate) struct Pattern {
    size: usize,
    /// The alphabet repeated, long enough for any message to be a slice of
    /// it from any rotation.
    cycle: Vec<u8>,
}

impl Pattern {
    pub(crate) fn new(size: usize) -> Self {
        let cycle = ALPHABET
            .iter()
            .copied()
            .cycle()
            .take(size + ALPHABET.len())
            .collect();
        Pattern { size, cycle }
    }

    /// The stream of connection `conn` from offset `off` for `n` bytes, as
    /// slices in order; each with whether it ends a message.
    pub(crate) fn segments(
        &self,
        conn: usize,
        off: u64,
        n: usize,
        mut f: impl FnMut(&[u8], bool) -> bool,
    ) {
        // One division to find where `off` is; then the position moves on
        // by addition (a 64-bit division per piece cost more than the
        // copying or comparing it serves).
        let mut msg = (off / self.size as u64) as usize;
        let mut i = (off % self.size as u64) as usize;
        let mut left = n;
        while left > 0 {
            let piece = if i == self.size - 1 {
                &b"\n"[..]
            } else {
                let r = (conn + msg.wrapping_mul(7)) % ALPHABET.len();
                let len = (self.size - 1 - i).min(left);
                &self.cycle[r + i..r + i + len]
            };
            i += piece.len();
            let ends = i == self.size;
            if !f(piece, ends) {
                return;
            }
            if ends {
                i = 0;
                msg += 1;
            }
            left -= piece.len();
        }
    }
}

/// Why a connection whose replies differ from what it sent is dropped.
pub(crate) const WRONG_BYTES: &str = "wrong reply bytes: the target does not look like an echo-like service (echo, or upper with these ASCII messages)";

/// The echo pattern as a [`Protocol`]: message `seq` of connection `conn`
/// is bytes `seq × size ..` of connection `conn`'s pattern, and its reply
/// is the same bytes.
pub(crate) struct Echo {
    pattern: Pattern,
    size: u64,
}

impl Echo {
    /// Messages of `size` bytes (at least 1).
    pub(crate) fn new(size: usize) -> Self {
        Echo {
            pattern: Pattern::new(size),
            size: size as u64,
        }
    }
}

impl Protocol for Echo {
    fn request(&mut self, conn: usize, seq: u64, out: &mut Vec<u8>) {
        self.pattern
            .segments(conn, seq * self.size, self.size as usize, |piece, _| {
                out.extend_from_slice(piece);
                true
            });
    }

    /// Compare what there is of the reply under way with what its offset
    /// must hold: a reply split over reads is checked piece by piece, and
    /// nothing is kept (`Partial(all)`).
    fn reply(&mut self, conn: usize, _seq: u64, off: u64, buf: &[u8]) -> Verdict {
        let left = (self.size - off % self.size) as usize;
        let n = left.min(buf.len());
        let mut pos = 0;
        let mut same = true;
        self.pattern.segments(conn, off, n, |want, _| {
            same = buf[pos..pos + want.len()] == *want;
            pos += want.len();
            same
        });
        match (same, n == left) {
            (false, _) => {
                log::debug!("load: connection {conn}: wrong reply bytes after offset {off}");
                Verdict::Broken(WRONG_BYTES.into())
            }
            (true, true) => Verdict::Ok(n),
            (true, false) => Verdict::Partial(n),
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
    fn pattern_segments_are_the_pattern() {
        for size in [1, 2, 7, 36, 37, 100] {
            let p = Pattern::new(size);
            for conn in [0, 5, 35] {
                for (off, n) in [(0, 300), (3, 1), (size as u64 - 1, 2), (97, 250)] {
                    let mut got = Vec::new();
                    p.segments(conn, off, n, |piece, _| {
                        got.extend_from_slice(piece);
                        true
                    });
                    let want: Vec<u8> = (off..off + n as u64)
                        .map(|o| pattern(conn, size, o))
                        .collect();
                    assert_eq!(got, want, "size {size} conn {conn} off {off}");
                }
            }
        }
    }

    #[test]
    fn messages_are_uppercase_safe_lines() {
        for size in [1, 2, 64] {
            let msg: Vec<u8> = (0..size as u64).map(|o| pattern(3, size, o)).collect();
            assert_eq!(msg.last(), Some(&b'\n'));
            assert!(msg[..size - 1]
                .iter()
                .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase()));
            assert_eq!(msg.to_ascii_uppercase(), msg);
        }
        // Consecutive messages differ, so a stale or repeated reply is caught.
        let a: Vec<u8> = (0..8).map(|o| pattern(0, 8, o)).collect();
        let b: Vec<u8> = (8..16).map(|o| pattern(0, 8, o)).collect();
        assert_ne!(a, b);
    }

    #[test]
    fn echo_checks_a_reply_split_anywhere_and_keeps_nothing() {
        let mut e = Echo::new(10);
        let mut sent = Vec::new();
        for seq in 0..3 {
            e.request(4, seq, &mut sent);
        }
        assert_eq!(sent.len(), 30);
        // Cut at 7 and 23: a partial, a completion, a whole one, a partial.
        let mut off = 0u64;
        let mut seq = 0;
        let mut verdicts = Vec::new();
        for chunk in [&sent[..7], &sent[7..23], &sent[23..]] {
            let mut pos = 0;
            while pos < chunk.len() {
                let v = e.reply(4, seq, off, &chunk[pos..]);
                let n = match v {
                    Verdict::Ok(n) => {
                        seq += 1;
                        n
                    }
                    Verdict::Partial(n) => n,
                    ref other => panic!("{other:?}"),
                };
                verdicts.push(v);
                pos += n;
                off += n as u64;
            }
        }
        use Verdict::*;
        assert_eq!(
            verdicts,
            [Partial(7), Ok(3), Ok(10), Partial(3), Ok(7)],
            "every byte offered once"
        );
        let mut wrong = sent[10..20].to_vec();
        wrong[4] ^= 1;
        assert!(matches!(e.reply(4, 1, 10, &wrong), Broken(_)));
        // Another connection's bytes are wrong for this one.
        assert!(matches!(e.reply(5, 0, 0, &sent[..10]), Broken(_)));
    }
}
