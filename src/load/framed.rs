//! `--request`/`--reply`/`--expect` on the drivers' seam
//! ([`protocol::Protocol`](super::protocol::Protocol)): requests rendered
//! from the templates, replies cut by the framing and judged, every reply
//! counted by its outcome in a [`Tally`].
//!
//! ```text
//!  request(conn, seq, out): templates[seq % n] rendered onto out
//!  reply(conn, seq, _, buf): Skip…(push, 1xx) then one reply →
//!      Ok(len) | Error{len, why} (error reply, --expect mismatch)
//!      | Partial(skipped) (not whole yet) | Broken(malformed)
//! ```
//!
//! State per connection: its random generator (seeded by the run's seed
//! and the connection's number, so `--seed` repeats a run whatever the
//! threads) and how many bytes the decoder needs before it is worth
//! calling again. A connection that starts over (`seq` 0: churn, or
//! replaced after `Connection: close`) starts its state over too.

use super::protocol::{Protocol, Tag, Verdict};
use super::reply::{escaped, judge, Decode, Framing, Outcome, MAX_REPLY};
use super::template::{Rng, Template};
use super::LoadConfig;

/// How replies ended, over a run (or a driver's share of it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Replies as expected.
    pub ok: u64,
    /// The server's own error replies (RESP error, HTTP ≥ 400).
    pub error_replies: u64,
    /// Replies not beginning with `--expect`.
    pub mismatched: u64,
    /// HTTP replies after which the server closed (`Connection: close`):
    /// the connection was replaced.
    pub closes: u64,
    /// The first reply that was not `ok`: escaped, at most 80 bytes, and
    /// the target it came from.
    pub first_wrong: Option<(String, String)>,
}

impl Tally {
    /// Add another driver's tally (the first wrong reply: the first
    /// driver's that has one).
    pub fn add(&mut self, o: &Tally) {
        self.ok += o.ok;
        self.error_replies += o.error_replies;
        self.mismatched += o.mismatched;
        self.closes += o.closes;
        if self.first_wrong.is_none() {
            self.first_wrong.clone_from(&o.first_wrong);
        }
    }
}

/// Why a reply counts as an error, as the summary lists it.
const MISMATCH: &str = "reply does not begin with --expect";
const ERROR_REPLY: &str =
    "error reply from the server (RESP error or HTTP status ≥ 400; --expect accepts one)";

struct ConnState {
    rng: Rng,
    /// Call the decoder again once this many bytes are offered.
    need: usize,
    /// The reply just judged said the server closes after it.
    closing: bool,
}

/// The framed protocol for one driver's connections.
pub(crate) struct Framed {
    requests: Vec<Template>,
    framing: Framing,
    expect: Option<Vec<u8>>,
    seed: u64,
    max_reply: usize,
    /// The run-wide number of this driver's first connection.
    first: usize,
    conns: Vec<ConnState>,
    /// The targets, to name the one a wrong reply came from.
    targets: Vec<String>,
    /// UDP: each datagram is one whole reply.
    datagrams: bool,
    pub(crate) tally: Tally,
}

impl Framed {
    /// For `cfg` (its `--request`, `--reply`, `--expect`; `seed` resolved
    /// by `run`), on the connections numbered from `first` of the run.
    pub(crate) fn new(cfg: &LoadConfig, seed: u64, first: usize) -> Self {
        Framed {
            requests: cfg.request.clone(),
            framing: cfg.framing(),
            expect: cfg.expect.clone(),
            seed,
            max_reply: MAX_REPLY,
            first,
            conns: Vec::new(),
            targets: cfg.endpoints.iter().map(|t| t.to_string()).collect(),
            datagrams: cfg.udp(),
            tally: Tally::default(),
        }
    }

    fn state(&mut self, conn: usize) -> &mut ConnState {
        let i = conn.saturating_sub(self.first);
        while self.conns.len() <= i {
            let n = (self.first + self.conns.len()) as u64;
            self.conns.push(ConnState {
                rng: Rng::for_conn(self.seed, n),
                need: 0,
                closing: false,
            });
        }
        &mut self.conns[i]
    }

    fn judged(
        &mut self,
        conn: usize,
        reply: &[u8],
        error: bool,
        close: bool,
    ) -> Option<&'static str> {
        let outcome = judge(reply, error, self.expect.as_deref());
        if close {
            self.tally.closes += 1;
            self.state(conn).closing = true;
        }
        let why = match outcome {
            Outcome::Ok => {
                self.tally.ok += 1;
                return None;
            }
            Outcome::ErrorReply => {
                self.tally.error_replies += 1;
                ERROR_REPLY
            }
            Outcome::Mismatch => {
                self.tally.mismatched += 1;
                MISMATCH
            }
        };
        if self.tally.first_wrong.is_none() {
            let target = self.targets[conn % self.targets.len().max(1)].clone();
            self.tally.first_wrong = Some((escaped(reply, 80), target));
        }
        Some(why)
    }
}

impl Protocol for Framed {
    fn request(&mut self, conn: usize, seq: u64, out: &mut Vec<u8>) {
        let seed = self.seed;
        let st = self.state(conn);
        if seq == 0 {
            // A connection starting over: its stream starts over too.
            *st = ConnState {
                rng: Rng::for_conn(seed, conn as u64),
                need: 0,
                closing: false,
            };
        }
        let t = &self.requests[(seq % self.requests.len() as u64) as usize];
        let st = &mut self.conns[conn.saturating_sub(self.first)];
        t.render(seq, conn as u64, &mut st.rng, out);
    }

    fn reply(&mut self, conn: usize, _seq: u64, _off: u64, buf: &[u8]) -> Verdict {
        self.decoded(conn, buf, self.datagrams)
    }

    fn reply_at_close(&mut self, conn: usize, _seq: u64, _off: u64, buf: &[u8]) -> Verdict {
        // A reply the close completes (HTTP without Content-Length or
        // chunking), else what the close cuts is malformed.
        self.decoded(conn, buf, true)
    }

    fn reply_tag(&self, _d: &[u8]) -> Tag {
        Tag::Oldest
    }

    fn closes_after(&mut self, conn: usize) -> bool {
        std::mem::take(&mut self.state(conn).closing)
    }

    fn tally(&self) -> Option<Tally> {
        Some(self.tally.clone())
    }

    fn silence(&self) -> &'static str {
        "the target did not answer these requests"
    }
}

impl Framed {
    /// Judge the start of `buf`, connection `conn`'s; `eof`: no more bytes
    /// come (a datagram, or the server closed).
    fn decoded(&mut self, conn: usize, buf: &[u8], eof: bool) -> Verdict {
        let max = self.max_reply;
        let mut skipped = 0;
        loop {
            let rest = &buf[skipped..];
            let need = self.state(conn).need;
            if rest.len() < need && !eof {
                return Verdict::Partial(skipped);
            }
            // A datagram is whole: a reply cut short in it is malformed.
            let d = self.framing.decode(rest, eof, max, need.saturating_sub(1));
            match d {
                Decode::Need(n) => {
                    self.state(conn).need = n;
                    return Verdict::Partial(skipped);
                }
                Decode::Skip(n) => {
                    self.state(conn).need = 0;
                    skipped += n;
                }
                Decode::Reply { len, error, close } => {
                    self.state(conn).need = 0;
                    // A datagram is one reply: all of it.
                    let len = if self.datagrams { rest.len() } else { len };
                    let whole = skipped + len;
                    return match self.judged(conn, &rest[..len], error, close) {
                        None => Verdict::Ok(whole),
                        Some(why) => Verdict::Error {
                            len: whole,
                            why: why.to_string(),
                        },
                    };
                }
                Decode::Malformed(why) if self.datagrams => {
                    return Verdict::Error {
                        len: buf.len(),
                        why: format!("malformed {} reply: {why}", self.framing),
                    }
                }
                Decode::Malformed(why) => {
                    return Verdict::Broken(format!("malformed {} reply: {why}", self.framing))
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "framed_tests.rs"]
mod tests;
