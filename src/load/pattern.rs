//! What each connection sends and expects back: a message's bytes are a
//! function of its offset in the connection's stream, so neither side of
//! the check needs a buffer of its own.

const ALPHABET: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// The byte at offset `off` of connection `conn`'s stream, for messages of
/// `size` bytes: each message is digits and capital letters ending in
/// `\n`, so `echo` and `upper` (and their `line` framings) return it as is.
pub fn pattern(conn: usize, size: usize, off: u64) -> u8 {
    let i = (off % size as u64) as usize;
    if i == size - 1 {
        b'\n'
    } else {
        let msg = (off / size as u64) as usize;
        ALPHABET[(conn + msg.wrapping_mul(7) + i) % ALPHABET.len()]
    }
}

/// [`pattern`] a slice at a time: the bytes of a connection's stream come
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
}
