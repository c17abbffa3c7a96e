//! `--reply FRAMING`: where one reply ends in the bytes a connection has
//! received, and `--expect`: whether it is the reply wanted.
//!
//! Sans-I/O and incremental: the driver keeps the bytes of the reply under
//! way and calls [`Framing::decode`] when more arrive. The answer is one of
//!
//! ```text
//!  Need(n)        come back when n bytes are buffered (or at EOF)
//!  Reply{len,..}  the first len bytes are one reply; drop them, go on
//!  Skip(len)      the first len bytes are not a reply (RESP3 push,
//!                 HTTP 1xx): drop them, go on
//!  Malformed(why) the peer does not speak this framing: lose the connection
//! ```
//!
//! Every decoder is bounded by `max` (default [`MAX_REPLY`]): a reply
//! that would be longer is malformed, so a bad peer cannot make `load`
//! buffer without end. None panics on any input (proptests and
//! `fuzz/fuzz_targets/decoders.rs`). RESP is in `resp.rs`, HTTP in
//! `http.rs`; the short framings are here.

use std::fmt;
use std::str::FromStr;

use super::template::unescape;

#[path = "reply_http.rs"]
mod http;
#[path = "reply_resp.rs"]
mod resp;

/// The longest reply accepted: past this a reply is malformed.
pub const MAX_REPLY: usize = 64 << 20;

/// How replies are delimited.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Framing {
    /// The reply is the request's bytes, checked one by one (the default
    /// without `--request`; checked by the load pattern, not decoded here).
    Echo,
    /// Up to and including `\n`.
    Line,
    /// Exactly N bytes.
    Bytes(usize),
    /// A 4-byte big-endian length, then that many bytes.
    Len32,
    /// Up to and including the first occurrence of these bytes.
    Until(Vec<u8>),
    /// One RESP2/RESP3 value (Redis).
    Resp,
    /// One HTTP/1.1 response.
    Http,
}

impl FromStr for Framing {
    type Err = String;

    fn from_str(s: &str) -> Result<Framing, String> {
        Ok(match s {
            "echo" => Framing::Echo,
            "line" => Framing::Line,
            "len32" => Framing::Len32,
            "resp" => Framing::Resp,
            "http" => Framing::Http,
            _ if s.starts_with("bytes:") => match s[6..].parse::<usize>() {
                Ok(n) if (1..=MAX_REPLY).contains(&n) => Framing::Bytes(n),
                _ => return Err(format!("at column 7: expected a byte count from 1 to {MAX_REPLY} in {s:?}")),
            },
            _ if s.starts_with("until:") => {
                let end = unescape(&s[6..]).map_err(|mut e| {
                    e.column += 6;
                    format!("{e} in {s:?}")
                })?;
                if end.is_empty() {
                    return Err(format!("at column 7: expected the bytes a reply ends with in {s:?}"));
                }
                Framing::Until(end)
            }
            _ => {
                return Err(format!(
                    "unknown reply framing {s:?}: expected echo, line, bytes:N, len32, until:STR, resp or http"
                ))
            }
        })
    }
}

impl fmt::Display for Framing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Framing::Echo => f.write_str("echo"),
            Framing::Line => f.write_str("line"),
            Framing::Bytes(n) => write!(f, "bytes:{n}"),
            Framing::Len32 => f.write_str("len32"),
            Framing::Until(end) => write!(f, "until:{}", escaped(end, usize::MAX)),
            Framing::Resp => f.write_str("resp"),
            Framing::Http => f.write_str("http"),
        }
    }
}

/// What the bytes buffered so far hold; see the module doc.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decode {
    /// Not a whole reply yet: decode again once this many bytes are
    /// buffered, or at EOF.
    Need(usize),
    /// The first `len` bytes are one reply.
    Reply {
        /// Its length in bytes.
        len: usize,
        /// The server says the request failed (RESP `-ERR`/`!`, HTTP ≥ 400).
        error: bool,
        /// The server closes the connection after it (HTTP).
        close: bool,
    },
    /// The first `len` bytes are not a reply to a request: drop them.
    Skip(usize),
    /// Not this framing; why.
    Malformed(String),
}

fn reply(len: usize) -> Decode {
    Decode::Reply {
        len,
        error: false,
        close: false,
    }
}

impl Framing {
    /// Decode the reply at the start of `buf`. `eof`: the peer has closed
    /// (a reply delimited by the close completes; any other is cut).
    /// `scanned`: how many leading bytes an earlier call already searched
    /// for a delimiter (`Need(n)` → `n - 1`), so a long line is not
    /// searched again from its start at every read.
    pub fn decode(&self, buf: &[u8], eof: bool, max: usize, scanned: usize) -> Decode {
        let d = match self {
            Framing::Echo => {
                Decode::Malformed("echo replies are checked against the pattern".into())
            }
            Framing::Line => until(buf, b"\n", max, scanned),
            Framing::Until(end) => until(buf, end, max, scanned),
            Framing::Bytes(n) => exact(buf, *n, max),
            Framing::Len32 => match buf.get(..4) {
                None => Decode::Need(4),
                Some(h) => match u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as usize {
                    n if n > max.saturating_sub(4) => Decode::Malformed(format!(
                        "len32 length {n} over the {max}-byte reply limit"
                    )),
                    n => exact(buf, n + 4, max),
                },
            },
            Framing::Resp => resp::decode(buf, max),
            Framing::Http => http::decode(buf, eof, max),
        };
        match d {
            Decode::Need(_) if eof => Decode::Malformed(format!(
                "closed in the middle of a reply ({} bytes of it received)",
                buf.len()
            )),
            d => d,
        }
    }
}

/// A reply of exactly `n` bytes.
fn exact(buf: &[u8], n: usize, max: usize) -> Decode {
    if n > max {
        Decode::Malformed(format!("a {n}-byte reply is over the {max}-byte limit"))
    } else if buf.len() < n {
        Decode::Need(n)
    } else {
        reply(n)
    }
}

/// A reply ending with `end` (not empty), searched from where the last
/// search left off.
fn until(buf: &[u8], end: &[u8], max: usize, scanned: usize) -> Decode {
    let from = scanned.saturating_sub(end.len() - 1).min(buf.len());
    let hit = if end.len() == 1 {
        buf[from..].iter().position(|&b| b == end[0])
    } else {
        buf[from..].windows(end.len()).position(|w| w == end)
    };
    match hit {
        Some(k) if from + k + end.len() <= max => reply(from + k + end.len()),
        None if buf.len() < max => Decode::Need(buf.len() + 1),
        _ => Decode::Malformed(format!(
            "no {} within the {max}-byte reply limit",
            escaped(end, 16)
        )),
    }
}

/// The outcome of one reply, as the summary counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// What was expected.
    Ok,
    /// The server's own error (RESP error, HTTP status ≥ 400), no
    /// `--expect` given.
    ErrorReply,
    /// It does not begin with `--expect`'s prefix.
    Mismatch,
}

/// Judge a reply: with `expect`, it must begin with it (whatever the
/// server's status: `--expect 'HTTP/1.1 404'` makes a 404 right);
/// without, a server error is an error.
pub(crate) fn judge(reply: &[u8], error: bool, expect: Option<&[u8]>) -> Outcome {
    match expect {
        Some(p) if reply.starts_with(p) => Outcome::Ok,
        Some(_) => Outcome::Mismatch,
        None if error => Outcome::ErrorReply,
        None => Outcome::Ok,
    }
}

/// At most `max` bytes of `b`, escaped as templates are written
/// (`\r \n \t \\ \0 \xHH`), with `…` if cut: safe to print anywhere.
pub fn escaped(b: &[u8], max: usize) -> String {
    let mut s = String::new();
    for &c in b.iter().take(max) {
        match c {
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            b'\\' => s.push_str("\\\\"),
            0 => s.push_str("\\0"),
            0x20..=0x7e => s.push(c as char),
            _ => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    if b.len() > max {
        s.push('…');
    }
    s
}

#[cfg(test)]
#[path = "reply_tests.rs"]
mod tests;
