//! Framing: where one message ends and the next begins in a TCP byte stream.
//!
//! TCP delivers bytes, not messages: one `read` may return half a line, or
//! three lines and the start of a fourth. The boundaries are ours to draw,
//! and this module draws them. It does no I/O: the loop hands it the bytes it
//! has buffered, it answers with the first whole frame (as a range into those
//! bytes, never a copy), and the loop keeps whatever is left for the next read.
//!
//! ```text
//!   buffered bytes ──decode──▶ Frame { payload: 0..5, consumed: 7 }  "hello\r\n"
//!                         └──▶ NeedMore                               "hel"
//!                         └──▶ TooLong                                over --max-frame
//!   payload ──encode──▶ bytes on the wire                             "HELLO" → "HELLO\n"
//! ```
//!
//! The three framings (docs/protocol.md, "Framing"):
//! - `raw`: whatever one read returned is a frame — no boundaries at all, the
//!   textbook's behaviour, kept so the difference can be seen.
//! - `line`: bytes up to and including `\n`; a trailing `\r` is dropped.
//! - `len32`: a 4-byte big-endian length, then that many bytes.

use std::fmt;
use std::ops::Range;
use std::str::FromStr;

/// How a TCP listener cuts its byte stream into frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// Whatever one read returned.
    Raw,
    /// Newline-terminated lines, `\r\n` accepted.
    Line,
    /// A 4-byte big-endian length prefix, then the payload.
    Len32,
}

/// What [`Framing::decode`] found at the front of a buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decoded {
    /// A whole frame: its payload is `buf[payload]`, and `consumed` bytes of
    /// the buffer (payload plus header or terminator) are used up.
    Frame {
        /// Where the payload is in the buffer.
        payload: Range<usize>,
        /// How many bytes of the buffer the frame used up.
        consumed: usize,
    },
    /// No whole frame yet: keep the bytes and read more.
    NeedMore,
    /// The frame at the front is longer than the limit. The connection can
    /// not recover its framing from here and must be closed.
    TooLong,
}

/// The line a `line`-framed connection is sent before it is closed for a
/// frame over `--max-frame` (docs/protocol.md, "Framing").
pub(crate) const LINE_TOO_LONG: &[u8] = b"ERR frame too long\n";

/// The size of a `len32` header.
const LEN32_HEADER: usize = 4;

impl Framing {
    /// Take the first frame from the front of `buf`.
    ///
    /// `at_eof` says the peer has finished sending: then a trailing line
    /// without its `\n` is still a frame (docs/protocol.md, "Framing"), and a `len32` frame cut
    /// short can never complete (the caller discards it).
    ///
    /// This only scans; it never allocates or copies. Scanning is done again
    /// from the start of the buffer on each call, which is at most
    /// `max_frame` bytes for a frame still incomplete: the limit is what
    /// keeps that rescan cheap.
    pub fn decode(self, buf: &[u8], max_frame: usize, at_eof: bool) -> Decoded {
        match self {
            Framing::Raw if buf.is_empty() => Decoded::NeedMore,
            Framing::Raw => Decoded::Frame {
                payload: 0..buf.len(),
                consumed: buf.len(),
            },
            Framing::Line => decode_line(buf, max_frame, at_eof),
            Framing::Len32 => decode_len32(buf, max_frame),
        }
    }

    /// Append `payload`, framed, to `out`.
    pub fn encode(self, payload: &[u8], out: &mut Vec<u8>) {
        match self {
            Framing::Raw => out.extend_from_slice(payload),
            Framing::Line => {
                out.reserve(payload.len() + 1);
                out.extend_from_slice(payload);
                out.push(b'\n');
            }
            Framing::Len32 => {
                // A payload over 4 GiB cannot be framed; no service makes
                // one (replies are bounded by one read or one frame), so
                // saturating is only a guard, not a code path.
                let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
                out.reserve(payload.len() + LEN32_HEADER);
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(payload);
            }
        }
    }

    /// The whole size (header included) of the frame that starts `head`,
    /// where the framing says it before the frame is complete: `len32`
    /// once its header is there. `None` for `line` and `raw` (the end is
    /// known only when it comes) and for a header not yet whole.
    pub fn frame_size(self, head: &[u8]) -> Option<usize> {
        match self {
            Framing::Len32 => head
                .first_chunk::<LEN32_HEADER>()
                .map(|h| LEN32_HEADER + u32::from_be_bytes(*h) as usize),
            Framing::Line | Framing::Raw => None,
        }
    }

    /// The name used on the command line (`?framing=`).
    pub fn name(self) -> &'static str {
        match self {
            Framing::Raw => "raw",
            Framing::Line => "line",
            Framing::Len32 => "len32",
        }
    }
}

/// `line`: up to and including `\n`, dropping one `\r` before it.
fn decode_line(buf: &[u8], max_frame: usize, at_eof: bool) -> Decoded {
    // Only the first max_frame + 2 bytes can hold the end of an acceptable
    // line (content, `\r`, `\n`): searching further would only find a line
    // that is too long anyway.
    let window = &buf[..buf.len().min(max_frame.saturating_add(2))];
    match window.iter().position(|&b| b == b'\n') {
        Some(nl) => {
            let end = strip_cr(buf, nl);
            if end > max_frame {
                Decoded::TooLong
            } else {
                Decoded::Frame {
                    payload: 0..end,
                    consumed: nl + 1,
                }
            }
        }
        // No `\n` yet. The line is known to be too long as soon as its
        // content must exceed the limit whatever comes next: more than
        // max_frame + 1 bytes, or max_frame + 1 bytes of which the last is
        // not a `\r` that the coming `\n` would drop.
        None if buf.len() > max_frame.saturating_add(1) => Decoded::TooLong,
        None if buf.len() == max_frame.saturating_add(1) && buf.last() != Some(&b'\r') => {
            Decoded::TooLong
        }
        None if at_eof && !buf.is_empty() => {
            // A last line without its `\n` is still a frame (docs/protocol.md, "Framing"); its
            // trailing `\r`, if any, is dropped like any other.
            let end = strip_cr(buf, buf.len());
            if end > max_frame {
                return Decoded::TooLong;
            }
            Decoded::Frame {
                payload: 0..end,
                consumed: buf.len(),
            }
        }
        None => Decoded::NeedMore,
    }
}

/// The end of a line's content that stops at `end`, less one trailing `\r`.
fn strip_cr(buf: &[u8], end: usize) -> usize {
    if end > 0 && buf[end - 1] == b'\r' {
        end - 1
    } else {
        end
    }
}

/// `len32`: a big-endian u32 length, then the payload.
fn decode_len32(buf: &[u8], max_frame: usize) -> Decoded {
    let Some(header) = buf.first_chunk::<LEN32_HEADER>() else {
        return Decoded::NeedMore;
    };
    let len = u32::from_be_bytes(*header) as usize;
    if len > max_frame {
        // Refused from the header alone: the body is never buffered.
        return Decoded::TooLong;
    }
    let end = LEN32_HEADER + len;
    if buf.len() < end {
        return Decoded::NeedMore;
    }
    Decoded::Frame {
        payload: LEN32_HEADER..end,
        consumed: end,
    }
}

impl FromStr for Framing {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "raw" => Ok(Framing::Raw),
            "line" => Ok(Framing::Line),
            "len32" => Ok(Framing::Len32),
            other => Err(format!(
                "unknown framing '{other}' (expected raw, line or len32)"
            )),
        }
    }
}

impl fmt::Display for Framing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Frames copied out of a buffer.
#[doc(hidden)] // for the fuzz targets
pub type Frames = Vec<Vec<u8>>;

/// Every frame in `buf`, in order, with the bytes left over — the decoding
/// loop in one place, for clients and tests that hold a whole buffer.
/// Stops at the first frame that is too long, returning `Err` with the
/// frames before it.
#[doc(hidden)] // for the fuzz targets and tests; the server decodes in inbuf
pub fn decode_all(
    framing: Framing,
    buf: &[u8],
    max_frame: usize,
    at_eof: bool,
) -> Result<(Frames, usize), Frames> {
    let mut frames = Vec::new();
    let mut pos = 0;
    loop {
        match framing.decode(&buf[pos..], max_frame, at_eof) {
            Decoded::Frame { payload, consumed } => {
                frames.push(buf[pos + payload.start..pos + payload.end].to_vec());
                pos += consumed;
            }
            Decoded::NeedMore => return Ok((frames, buf.len() - pos)),
            Decoded::TooLong => return Err(frames),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn frames(f: Framing, buf: &[u8], max: usize, eof: bool) -> Vec<Vec<u8>> {
        decode_all(f, buf, max, eof).expect("no frame too long").0
    }

    #[test]
    fn line_drops_cr_and_keeps_rest() {
        let (got, left) = decode_all(Framing::Line, b"one\r\ntwo\nthr", 100, false).unwrap();
        assert_eq!(got, vec![b"one".to_vec(), b"two".to_vec()]);
        assert_eq!(left, 3);
    }

    #[test]
    fn line_at_eof_without_newline_is_a_frame() {
        assert_eq!(
            frames(Framing::Line, b"a\nlast", 100, true),
            vec![b"a".to_vec(), b"last".to_vec()]
        );
        assert_eq!(
            frames(Framing::Line, b"last\r", 100, true),
            vec![b"last".to_vec()]
        );
        assert!(frames(Framing::Line, b"", 100, true).is_empty());
    }

    #[test]
    fn line_limit_is_exact() {
        // Content of exactly max bytes is fine, with or without `\r`.
        assert_eq!(
            frames(Framing::Line, b"abcd\n", 4, false),
            vec![b"abcd".to_vec()]
        );
        assert_eq!(
            frames(Framing::Line, b"abcd\r\n", 4, false),
            vec![b"abcd".to_vec()]
        );
        // One more is refused, with the newline or before it arrives.
        assert_eq!(Framing::Line.decode(b"abcde\n", 4, false), Decoded::TooLong);
        assert_eq!(Framing::Line.decode(b"abcde", 4, false), Decoded::TooLong);
        // max + 1 bytes ending in `\r` may still be a line of max bytes.
        assert_eq!(Framing::Line.decode(b"abcd\r", 4, false), Decoded::NeedMore);
        assert_eq!(Framing::Line.decode(b"abcd\rx", 4, false), Decoded::TooLong);
        assert_eq!(
            Framing::Line.decode(b"abcd\r", 4, true),
            Decoded::Frame {
                payload: 0..4,
                consumed: 5
            }
        );
    }

    #[test]
    fn len32_reads_python_struct_pack_header() {
        // struct.pack('!I', 5) + b'hello'
        let wire = b"\x00\x00\x00\x05hello\x00\x00\x00\x00";
        assert_eq!(
            frames(Framing::Len32, wire, 10, false),
            vec![b"hello".to_vec(), b"".to_vec()]
        );
        assert_eq!(
            Framing::Len32.decode(b"\x00\x00\x00\x05hel", 10, false),
            Decoded::NeedMore
        );
        assert_eq!(
            Framing::Len32.decode(b"\x00\x00", 10, true),
            Decoded::NeedMore
        );
    }

    #[test]
    fn len32_refuses_from_header_alone() {
        assert_eq!(
            Framing::Len32.decode(b"\x00\x00\x00\x0b", 10, false),
            Decoded::TooLong
        );
        assert_eq!(
            Framing::Len32.decode(b"\xff\xff\xff\xff", 10, false),
            Decoded::TooLong
        );
        assert!(matches!(
            Framing::Len32.decode(b"\x00\x00\x00\x0a0123456789", 10, false),
            Decoded::Frame { .. }
        ));
    }

    #[test]
    fn raw_takes_everything() {
        assert_eq!(
            Framing::Raw.decode(b"a\nb", 1, false),
            Decoded::Frame {
                payload: 0..3,
                consumed: 3
            }
        );
        assert_eq!(Framing::Raw.decode(b"", 1, true), Decoded::NeedMore);
    }

    #[test]
    fn names_round_trip() {
        for f in [Framing::Raw, Framing::Line, Framing::Len32] {
            assert_eq!(f.name().parse::<Framing>(), Ok(f));
        }
        assert!("lines".parse::<Framing>().is_err());
    }

    /// Feed `stream` to the decoder in the pieces `cuts` gives, the way the
    /// loop does: decode what is buffered, keep the rest, append the next read.
    fn decode_in_pieces(
        f: Framing,
        stream: &[u8],
        cuts: &[usize],
        max: usize,
    ) -> Result<Vec<Vec<u8>>, ()> {
        let mut held = Vec::new();
        let mut out = Vec::new();
        let mut start = 0;
        let mut bounds: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
        bounds.sort_unstable();
        bounds.push(stream.len());
        for (i, &end) in bounds.iter().enumerate() {
            let end = end.max(start);
            held.extend_from_slice(&stream[start..end]);
            start = end;
            let eof = i == bounds.len() - 1;
            match decode_all(f, &held, max, eof) {
                Ok((got, left)) => {
                    out.extend(got);
                    held.drain(..held.len() - left);
                }
                Err(_) => return Err(()),
            }
        }
        Ok(out)
    }

    fn framing() -> impl Strategy<Value = Framing> {
        prop_oneof![Just(Framing::Line), Just(Framing::Len32)]
    }

    proptest! {
        #[test]
        fn any_split_gives_the_same_frames(
            f in framing(),
            stream in proptest::collection::vec(prop_oneof![Just(b'\n'), Just(b'\r'), any::<u8>()], 0..300),
            cuts in proptest::collection::vec(0usize..400, 0..8),
        ) {
            let whole = decode_in_pieces(f, &stream, &[], 64);
            let split = decode_in_pieces(f, &stream, &cuts, 64);
            prop_assert_eq!(whole, split);
        }

        #[test]
        fn encoded_frames_round_trip(
            f in framing(),
            payloads in proptest::collection::vec(
                proptest::collection::vec(any::<u8>().prop_filter("no newline", |b| *b != b'\n'), 0..50), 0..10),
            cuts in proptest::collection::vec(0usize..600, 0..8),
        ) {
            // `line` cannot carry a payload ending in `\r` (it is dropped).
            let payloads: Vec<Vec<u8>> = payloads.into_iter()
                .map(|mut p| { if f == Framing::Line { while p.last() == Some(&b'\r') { p.pop(); } } p })
                .collect();
            let mut wire = Vec::new();
            for p in &payloads { f.encode(p, &mut wire); }
            prop_assert_eq!(decode_in_pieces(f, &wire, &cuts, 64).unwrap(), payloads);
        }

        #[test]
        fn frames_over_the_limit_are_refused_exactly(f in framing(), len in 0usize..40, max in 0usize..30) {
            let payload = vec![b'x'; len];
            let mut wire = Vec::new();
            f.encode(&payload, &mut wire);
            let got = f.decode(&wire, max, false);
            if len > max {
                prop_assert_eq!(got, Decoded::TooLong);
            } else {
                let payload = match f {
                    Framing::Len32 => 4..wire.len(),
                    _ => 0..wire.len() - 1,
                };
                prop_assert_eq!(got, Decoded::Frame { payload, consumed: wire.len() });
            }
        }
    }
}
