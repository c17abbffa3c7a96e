//! `--reply http`: one HTTP/1.1 response (RFC 9112). The head is parsed by
//! `httparse`; the body is found as RFC 9112 §6.3 says:
//!
//! ```text
//!  1xx (but 101)        no body; not the reply: skipped (§15.2 of RFC 9110)
//!  204, 304             no body
//!  chunked              chunks to the zero chunk, then trailers to a blank line
//!  Content-Length: n    n bytes
//!  neither              until the server closes (the reply ends at EOF)
//! ```
//!
//! `Connection: close` (or HTTP/1.0 without `keep-alive`) marks the reply
//! `close`: the driver replaces the connection after it. A status of 400
//! or more is an error reply. A response to `HEAD` (which has no body
//! whatever its headers say) cannot be told apart here: send `GET`.

use httparse::{Status, EMPTY_HEADER};

use super::Decode;

/// The longest response head (status line and headers) accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Header lines accepted in a head or in trailers.
const MAX_HEADERS: usize = 64;

/// What the head says of the body.
struct Head {
    len: usize,
    code: u16,
    close: bool,
    chunked: bool,
    length: Option<usize>,
}

fn head(buf: &[u8], max: usize) -> Result<Head, Decode> {
    let mut headers = [EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let len = match resp.parse(buf) {
        // The same limit whether the head came whole or in parts.
        Ok(Status::Complete(n)) if n <= MAX_HEAD.min(max) => n,
        Ok(_) if buf.len() > MAX_HEAD.min(max) => {
            return Err(Decode::Malformed(format!(
                "an HTTP response head over {} bytes",
                MAX_HEAD.min(max)
            )))
        }
        Ok(_) => return Err(Decode::Need(buf.len() + 1)),
        Err(e) => return Err(Decode::Malformed(format!("not an HTTP response head: {e}"))),
    };
    let mut h = Head {
        len,
        code: resp.code.unwrap_or(0),
        // HTTP/1.0 closes after each response unless told otherwise.
        close: resp.version == Some(0),
        chunked: false,
        length: None,
    };
    for hd in resp.headers.iter() {
        let tokens = || {
            hd.value
                .split(|&b| b == b',')
                .map(|t| t.trim_ascii().to_ascii_lowercase())
        };
        if hd.name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(hd.value.trim_ascii())
                .ok()
                .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|s| s.parse::<usize>().ok());
            match (n, h.length) {
                (Some(n), None) => h.length = Some(n),
                (Some(n), Some(m)) if n == m => {}
                _ => return Err(Decode::Malformed("a bad or repeated Content-Length".into())),
            }
        } else if hd.name.eq_ignore_ascii_case("transfer-encoding") {
            // Chunked is only meaningful as the last coding (§6.1).
            h.chunked = tokens().next_back().is_some_and(|t| t == b"chunked");
        } else if hd.name.eq_ignore_ascii_case("connection") {
            for t in tokens() {
                match &t[..] {
                    b"close" => h.close = true,
                    b"keep-alive" if resp.version == Some(0) => h.close = false,
                    _ => {}
                }
            }
        }
    }
    Ok(h)
}

/// The chunked body from `p`, then its trailers: where the response ends.
fn chunked(buf: &[u8], mut p: usize, max: usize) -> Result<usize, Decode> {
    loop {
        if p > max {
            return Err(Decode::Malformed(format!(
                "a chunked HTTP body over the {max}-byte limit"
            )));
        }
        let rest = buf.get(p..).unwrap_or_default();
        let (used, size) = match httparse::parse_chunk_size(rest) {
            Ok(Status::Complete(c)) if c.0 <= 1024 => c,
            Ok(_) if rest.len() > 1024 => {
                return Err(Decode::Malformed(
                    "an HTTP chunk-size line over 1 KiB".into(),
                ))
            }
            Ok(_) => return Err(Decode::Need(buf.len() + 1)),
            Err(_) => return Err(Decode::Malformed("a bad HTTP chunk size".into())),
        };
        p += used;
        if size == 0 {
            // The trailer section: header lines, then an empty line.
            let mut trailers = [EMPTY_HEADER; MAX_HEADERS];
            return match httparse::parse_headers(&buf[p..], &mut trailers) {
                Ok(Status::Complete((n, _))) if n <= MAX_HEAD => Ok(p + n),
                Ok(_) if buf.len() - p > MAX_HEAD => {
                    Err(Decode::Malformed("HTTP trailers over 64 KiB".into()))
                }
                Ok(_) => Err(Decode::Need(buf.len() + 1)),
                Err(e) => Err(Decode::Malformed(format!("bad HTTP trailers: {e}"))),
            };
        }
        let end = usize::try_from(size)
            .ok()
            .and_then(|s| p.checked_add(s)?.checked_add(2))
            .filter(|&e| e <= max)
            .ok_or_else(|| Decode::Malformed(format!("an HTTP chunk over the {max}-byte limit")))?;
        if buf.len() < end {
            return Err(Decode::Need(end));
        }
        if &buf[end - 2..end] != b"\r\n" {
            return Err(Decode::Malformed(
                "an HTTP chunk not ended by \\r\\n".into(),
            ));
        }
        p = end;
    }
}

/// One response at the start of `buf`; `eof`: the server has closed.
pub(super) fn decode(buf: &[u8], eof: bool, max: usize) -> Decode {
    let h = match head(buf, max) {
        Ok(h) => h,
        Err(d) => return d,
    };
    let done = |len| Decode::Reply {
        len,
        error: h.code >= 400,
        close: h.close,
    };
    match h.code {
        101 => return Decode::Malformed("101 Switching Protocols: no longer HTTP".into()),
        100..=199 => return Decode::Skip(h.len),
        204 | 304 => return done(h.len),
        _ => {}
    }
    if h.chunked {
        return match chunked(buf, h.len, max) {
            Ok(len) => done(len),
            Err(d) => d,
        };
    }
    match h.length {
        Some(n) => match h.len.checked_add(n).filter(|&t| t <= max) {
            None => Decode::Malformed(format!(
                "an HTTP body of {n} bytes over the {max}-byte limit"
            )),
            Some(t) if buf.len() < t => Decode::Need(t),
            Some(t) => done(t),
        },
        None if buf.len() > max => Decode::Malformed(format!(
            "an HTTP body (until close) over the {max}-byte limit"
        )),
        // Delimited by the close (§6.3 rule 8): whatever came is the body.
        None if eof => Decode::Reply {
            len: buf.len(),
            error: h.code >= 400,
            close: true,
        },
        None => Decode::Need(buf.len() + 1),
    }
}
