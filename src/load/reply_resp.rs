//! `--reply resp`: one Redis RESP2/RESP3 value
//! (<https://github.com/redis/redis-specification>).
//!
//! Values are skipped, not built: a count of values still owed replaces
//! recursion, so nesting depth costs nothing and cannot overflow a stack.
//! An aggregate of n adds n (a map or attribute 2n) to the count; an
//! attribute (`|`) also still owes the value it annotates. At top level an
//! error (`-`, `!`) is an error reply, and a push (`>`) is out-of-band
//! data, not a reply: it is skipped. Streamed RESP3 aggregates and
//! strings (`$?`, `*?`) are not supported (Redis does not send them):
//! they are malformed.

use super::{escaped, Decode};

enum Stop {
    /// Come back with this many bytes.
    Need(usize),
    Bad(String),
}

use Stop::{Bad, Need};

/// The CRLF-ended line from `p`: (end of its content, start of what
/// follows).
fn line(buf: &[u8], p: usize, max: usize) -> Result<(usize, usize), Stop> {
    let rest = buf.get(p..).unwrap_or_default();
    match rest.iter().position(|&b| b == b'\n') {
        Some(k) if k > 0 && rest[k - 1] == b'\r' => Ok((p + k - 1, p + k + 1)),
        Some(_) => Err(Bad("a RESP line not ended by \\r\\n".into())),
        None if buf.len() > max => Err(Bad(format!("a RESP line over the {max}-byte limit"))),
        None => Err(Need(buf.len() + 1)),
    }
}

/// A decimal integer, optionally negative (what `str::parse::<i64>`
/// accepts, less a `+`). Read digit by digit: every bulk string's length
/// goes through here, once a reply.
pub(super) fn int(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s.strip_prefix(b"-") {
        Some(d) => (true, d),
        None => (false, s),
    };
    if digits.is_empty() {
        return None;
    }
    // Accumulated on the sign's side, so i64::MIN fits.
    let mut v: i64 = 0;
    for &b in digits {
        let d = i64::from(b.wrapping_sub(b'0'));
        if d > 9 {
            return None;
        }
        v = v.checked_mul(10)?;
        v = if neg {
            v.checked_sub(d)?
        } else {
            v.checked_add(d)?
        };
    }
    Some(v)
}

/// A RESP3 big number: a sign, then any number of digits.
fn big(s: &[u8]) -> bool {
    let digits = s.strip_prefix(b"-").or(s.strip_prefix(b"+")).unwrap_or(s);
    !digits.is_empty() && digits.iter().all(u8::is_ascii_digit)
}

/// The count of an aggregate or the length of a string: ≥ 0, or -1
/// (RESP2 null) where `null` allows it. `None` for null.
fn size(head: &[u8], null: bool, max: usize) -> Result<Option<usize>, Stop> {
    match int(head) {
        Some(-1) if null => Ok(None),
        Some(n) if n >= 0 && (n as u64) <= max as u64 => Ok(Some(n as usize)),
        Some(n) if n >= 0 => Err(Bad(format!("a RESP size {n} over the {max}-byte limit"))),
        _ => Err(Bad(format!(
            "a RESP size, not {:?}",
            String::from_utf8_lossy(&head[..head.len().min(20)])
        ))),
    }
}

/// Skip `n` whole values from `p`: where they end.
fn skip(buf: &[u8], mut p: usize, n: usize, max: usize) -> Result<usize, Stop> {
    let mut owed = n as u64;
    while owed > 0 {
        if p > max {
            return Err(Bad(format!("a RESP value over the {max}-byte limit")));
        }
        let Some(&t) = buf.get(p) else {
            return Err(Need(p + 1));
        };
        let (end, next) = line(buf, p + 1, max)?;
        let head = &buf[p + 1..end];
        let start = p;
        owed -= 1;
        p = next;
        // Each value takes at least 3 bytes, so more owed values than
        // the limit allows bytes for is malformed at once.
        let mut add = |k: u64| {
            owed += k;
            if owed > (max / 3) as u64 {
                Err(Bad(format!("a RESP aggregate over the {max}-byte limit")))
            } else {
                Ok(())
            }
        };
        match t {
            b'+' | b'-' => {}
            b':' if int(head).is_some() => {}
            b'(' if big(head) => {}
            b'_' if head.is_empty() => {}
            b'#' if head == b"t" || head == b"f" => {}
            b',' if std::str::from_utf8(head).is_ok_and(|s| s.parse::<f64>().is_ok()) => {}
            b'$' | b'!' | b'=' => {
                if let Some(len) = size(head, t == b'$', max)? {
                    let end = p.saturating_add(len).saturating_add(2);
                    if end > max {
                        return Err(Bad(format!("a RESP string over the {max}-byte limit")));
                    }
                    if buf.len() < end {
                        return Err(Need(end));
                    }
                    if &buf[end - 2..end] != b"\r\n" {
                        return Err(Bad("a RESP string not ended by \\r\\n".into()));
                    }
                    p = end;
                }
            }
            b'*' | b'~' | b'>' => {
                if let Some(n) = size(head, t == b'*', max)? {
                    add(n as u64)?;
                }
            }
            b'%' => add(2 * size(head, false, max)?.unwrap_or(0) as u64)?,
            b'|' => add(2 * size(head, false, max)?.unwrap_or(0) as u64 + 1)?,
            _ => {
                return Err(Bad(format!(
                    "not a RESP value: {}",
                    escaped(&buf[start..end], 24)
                )))
            }
        }
    }
    if p > max {
        return Err(Bad(format!("a RESP value over the {max}-byte limit")));
    }
    Ok(p)
}

/// One reply at the start of `buf`.
pub(super) fn decode(buf: &[u8], max: usize) -> Decode {
    let mut p = 0;
    let result = loop {
        let Some(&t) = buf.get(p) else {
            break Err(Need(p + 1));
        };
        if t != b'|' {
            break skip(buf, p, 1, max).map(|end| (end, t));
        }
        // A top-level attribute: skip its map; the value it annotates
        // decides what the reply is.
        match line(buf, p + 1, max).and_then(|(end, next)| {
            let n = size(&buf[p + 1..end], false, max)?.unwrap_or(0);
            skip(buf, next, 2 * n, max)
        }) {
            Ok(next) => p = next,
            Err(e) => break Err(e),
        }
    };
    match result {
        Ok((len, b'>')) => Decode::Skip(len),
        Ok((len, t)) => Decode::Reply {
            len,
            error: t == b'-' || t == b'!',
            close: false,
        },
        Err(Need(n)) => Decode::Need(n),
        Err(Bad(why)) => Decode::Malformed(why),
    }
}
