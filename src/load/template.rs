//! `--request TEMPLATE`: what a connection sends, parsed once and rendered
//! per message into the caller's buffer (no allocation per message).
//!
//! ```text
//!  "SET k{key:1000} {rand:8}\r\n"
//!    → [Lit("SET k"), Key(1000), Lit(" "), Rand(8), Lit("\r\n")]
//!    → render(seq, conn, rng, &mut out): appends b"SET k417 qzbtrkfa\r\n"
//! ```
//!
//! Escapes: `\r \n \t \\ \0 \xHH`. Placeholders: `{seq}` (the
//! connection's message number), `{conn}` (the connection's number),
//! `{key:N}` (uniform integer in 0..N, zero-padded to the width of N−1,
//! so a request's length does not vary: RESP bulk lengths and HTTP
//! `Content-Length` stay right), `{rand:N}` (N random lowercase
//! letters), `{pad:N}` (N bytes `x`), `{{` and `}}` for braces. A bad
//! template is an error naming its byte column (1-based) and what was
//! expected there. The random parts come from [`Rng`], seeded per
//! connection, so `--seed` makes a run repeatable.

use std::fmt;

/// The most bytes one placeholder may produce (`{pad:N}`, `{rand:N}`): a
/// template is a request, not a way to allocate without bound.
pub(crate) const MAX_PLACEHOLDER: u64 = 64 << 20;

/// Why a template (or an escaped string) could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateError {
    /// 1-based byte column where the problem is.
    pub column: usize,
    /// What was expected there.
    pub expected: String,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at column {}: expected {}", self.column, self.expected)
    }
}

impl std::error::Error for TemplateError {}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    /// Literal bytes: `lits[start..end]`.
    Lit(usize, usize),
    Seq,
    Conn,
    Key(u64),
    Rand(u64),
    Pad(u64),
}

/// A parsed `--request` template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    /// The template as written (for the JSON settings).
    source: String,
    parts: Vec<Part>,
    /// Every literal's bytes, one after the other.
    lits: Vec<u8>,
}

fn err(column: usize, expected: impl Into<String>) -> TemplateError {
    TemplateError {
        column,
        expected: expected.into(),
    }
}

/// Decode one escape starting at `s[i] == b'\\'`: the byte and how many
/// source bytes it took.
fn escape(s: &[u8], i: usize) -> Result<(u8, usize), TemplateError> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    match s.get(i + 1) {
        Some(b'r') => Ok((b'\r', 2)),
        Some(b'n') => Ok((b'\n', 2)),
        Some(b't') => Ok((b'\t', 2)),
        Some(b'\\') => Ok((b'\\', 2)),
        Some(b'0') => Ok((0, 2)),
        Some(b'x') => match (
            s.get(i + 2).and_then(|&b| hex(b)),
            s.get(i + 3).and_then(|&b| hex(b)),
        ) {
            (Some(h), Some(l)) => Ok((h << 4 | l, 4)),
            (None, _) => Err(err(i + 3, "two hex digits after \\x")),
            (_, None) => Err(err(i + 4, "a second hex digit after \\x")),
        },
        _ => Err(err(i + 2, "one of r n t \\ 0 xHH after \\")),
    }
}

/// `s` with its escapes decoded (`until:STR`, `--expect PREFIX`). Braces
/// are plain bytes here.
pub fn unescape(s: &str) -> Result<Vec<u8>, TemplateError> {
    let s = s.as_bytes();
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'\\' {
            let (b, n) = escape(s, i)?;
            out.push(b);
            i += n;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// The argument of `{name:N}` at column `col`: a decimal in 1..=max.
fn count(arg: &str, col: usize, max: u64) -> Result<u64, TemplateError> {
    match arg.parse::<u64>() {
        Ok(n) if (1..=max).contains(&n) && arg.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(err(col, format!("a number from 1 to {max}"))),
    }
}

impl Template {
    /// Parse a template; see the module doc for its syntax.
    pub fn parse(src: &str) -> Result<Template, TemplateError> {
        let s = src.as_bytes();
        let mut t = Template {
            source: src.to_string(),
            parts: Vec::new(),
            lits: Vec::new(),
        };
        let mut lit_start = 0;
        let mut i = 0;
        while i < s.len() {
            match s[i] {
                b'\\' => {
                    let (b, n) = escape(s, i)?;
                    t.lits.push(b);
                    i += n;
                }
                b'{' if s.get(i + 1) == Some(&b'{') => {
                    t.lits.push(b'{');
                    i += 2;
                }
                b'}' if s.get(i + 1) == Some(&b'}') => {
                    t.lits.push(b'}');
                    i += 2;
                }
                b'}' => return Err(err(i + 1, "`}}` for a literal brace")),
                b'{' => {
                    let Some(len) = s[i + 1..].iter().position(|&b| b == b'}') else {
                        return Err(err(s.len() + 1, "`}` closing the placeholder"));
                    };
                    // Everything between the braces is ASCII or it is not
                    // a placeholder: slicing `src` here is on char bounds.
                    let body = &src[i + 1..i + 1 + len];
                    let (name, arg) = match body.split_once(':') {
                        Some((n, a)) => (n, Some(a)),
                        None => (body, None),
                    };
                    let arg_col = i + 2 + name.len() + 1;
                    let part = match (name, arg) {
                        ("seq", None) => Part::Seq,
                        ("conn", None) => Part::Conn,
                        ("key", Some(a)) => Part::Key(count(a, arg_col, u64::MAX)?),
                        ("rand", Some(a)) => Part::Rand(count(a, arg_col, MAX_PLACEHOLDER)?),
                        ("pad", Some(a)) => Part::Pad(count(a, arg_col, MAX_PLACEHOLDER)?),
                        ("seq" | "conn", Some(_)) => {
                            return Err(err(i + 2 + name.len(), "`}` (no argument)"))
                        }
                        ("key" | "rand" | "pad", None) => {
                            return Err(err(i + 2 + name.len(), "`:N`"))
                        }
                        _ => {
                            return Err(err(
                                i + 2,
                                "a placeholder: seq, conn, key:N, rand:N or pad:N (`{{` for a literal brace)",
                            ))
                        }
                    };
                    t.close_lit(&mut lit_start);
                    t.parts.push(part);
                    i += len + 2;
                }
                b => {
                    t.lits.push(b);
                    i += 1;
                }
            }
        }
        t.close_lit(&mut lit_start);
        Ok(t)
    }

    /// End the literal run since `start`, if any.
    fn close_lit(&mut self, start: &mut usize) {
        if self.lits.len() > *start {
            self.parts.push(Part::Lit(*start, self.lits.len()));
            *start = self.lits.len();
        }
    }

    /// The template as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the template has random parts (the seed matters).
    pub fn is_random(&self) -> bool {
        self.parts
            .iter()
            .any(|p| matches!(p, Part::Key(_) | Part::Rand(_)))
    }

    /// Append message `seq` of connection `conn` to `out`.
    pub fn render(&self, seq: u64, conn: u64, rng: &mut Rng, out: &mut Vec<u8>) {
        for p in &self.parts {
            match *p {
                Part::Lit(a, b) => out.extend_from_slice(&self.lits[a..b]),
                Part::Seq => push_decimal(out, seq),
                Part::Conn => push_decimal(out, conn),
                Part::Key(n) => {
                    // Zero-padded to the width of n - 1 (see the module doc).
                    let at = out.len();
                    push_decimal(out, rng.below(n));
                    let pad = decimal_width(n - 1) - (out.len() - at);
                    out.splice(at..at, std::iter::repeat(b'0').take(pad));
                }
                Part::Rand(n) => {
                    for _ in 0..n {
                        out.push(b'a' + rng.below(26) as u8);
                    }
                }
                Part::Pad(n) => out.resize(out.len() + n as usize, b'x'),
            }
        }
    }
}

/// How many decimal digits `v` takes.
fn decimal_width(mut v: u64) -> usize {
    let mut w = 1;
    while v >= 10 {
        v /= 10;
        w += 1;
    }
    w
}

/// Append `v` in decimal, without a formatter's allocation.
fn push_decimal(out: &mut Vec<u8>, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// SplitMix64 (Steele, Lea, Flood 2014; the seeder of xoshiro): one
/// addition and a 64-bit mix per number. Statistically fine for picking
/// keys and letters, not for anything secret.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// The generator for connection `conn` of a run seeded `seed`: each
    /// connection its own stream, so a run repeats whatever the threads.
    pub fn for_conn(seed: u64, conn: u64) -> Rng {
        let mut r = Rng(seed ^ conn.wrapping_mul(0xD1B5_4A32_D192_ED03));
        r.next_u64();
        r
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` ≥ 1): Lemire's multiply-shift, with the
    /// rejection step that removes its bias.
    pub fn below(&mut self, n: u64) -> u64 {
        let threshold = n.wrapping_neg() % n;
        loop {
            let m = u128::from(self.next_u64()) * u128::from(n);
            if (m as u64) >= threshold {
                return (m >> 64) as u64;
            }
        }
    }
}

/// A seed from the clock, for a run without `--seed` (printed in the
/// summary so the run can be replayed).
pub(crate) fn seed_from_time() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Rng(t.as_nanos() as u64 ^ u64::from(std::process::id())).next_u64()
}

#[cfg(test)]
#[path = "template_tests.rs"]
mod tests;
