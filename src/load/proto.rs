//! A connection's protocol traffic with `--request`: what it sends next
//! (rendered from the templates) and what its replies were (delimited by
//! `--reply`, judged by `--expect`). Sans-I/O: the driver hands in the
//! bytes read and takes out the bytes to write.
//!
//! ```text
//!  send:  start(k)  → templates[seq % len] rendered into `out` (one
//!                     buffer for the whole batch: one write)
//!         written(n)→ the first n bytes of `out` are gone
//!  recv:  received(bytes, eof) → for each reply: Seen{outcome, close};
//!                     or Err(why) when the peer is not speaking it
//! ```
//!
//! Buffers: a connection's `out` and `held` keep their capacity between
//! messages, so a steady run renders and decodes without allocating.

use super::reply::{judge, Decode, Framing, Outcome, MAX_REPLY};
use super::template::{Rng, Template};

/// What every connection of a run sends and expects.
#[derive(Clone, Debug)]
pub struct Protocol {
    /// Sent in turn on each connection.
    pub requests: Vec<Template>,
    /// How replies are delimited.
    pub reply: Framing,
    /// `--expect`: every reply begins with this.
    pub expect: Option<Vec<u8>>,
    /// The run's seed (from `--seed`, or the clock: reported either way).
    pub seed: u64,
    /// The longest reply accepted.
    pub max_reply: usize,
}

/// What one reply to a request was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seen {
    /// Judged by `--expect` (or the server's own error status).
    pub outcome: Outcome,
    /// The server closes the connection after it (HTTP).
    pub close: bool,
}

/// One connection's protocol state.
#[derive(Debug)]
pub struct ProtoConn {
    /// This connection's number in the whole run (`{conn}`).
    conn: u64,
    /// Requests rendered so far (`{seq}` of the next).
    seq: u64,
    rng: Rng,
    /// Rendered, not yet written.
    out: Vec<u8>,
    /// Received, not yet a whole reply (the start of one).
    held: Vec<u8>,
    /// Decode again once `held` has this many bytes (see `Decode::Need`).
    need: usize,
}

impl Protocol {
    /// A protocol with the default reply limit.
    pub fn new(
        requests: Vec<Template>,
        reply: Framing,
        expect: Option<Vec<u8>>,
        seed: u64,
    ) -> Self {
        Protocol {
            requests,
            reply,
            expect,
            seed,
            max_reply: MAX_REPLY,
        }
    }

    /// The state of connection `conn` (its number in the whole run).
    pub fn conn(&self, conn: u64) -> ProtoConn {
        ProtoConn {
            conn,
            seq: 0,
            rng: Rng::for_conn(self.seed, conn),
            out: Vec::new(),
            held: Vec::new(),
            need: 0,
        }
    }

    /// Render the connection's next `k` requests after whatever is unsent.
    pub fn start(&self, c: &mut ProtoConn, k: u64) {
        for _ in 0..k {
            let t = &self.requests[(c.seq % self.requests.len() as u64) as usize];
            t.render(c.seq, c.conn, &mut c.rng, &mut c.out);
            c.seq += 1;
        }
    }

    /// Decode the bytes just read (`eof`: the peer closed after them),
    /// calling `seen` for each whole reply; `Err` once the stream is not
    /// this framing. `seen` returns `false` to stop early (the connection
    /// is being replaced); the bytes after are dropped.
    pub fn received(
        &self,
        c: &mut ProtoConn,
        bytes: &[u8],
        eof: bool,
        mut seen: impl FnMut(Seen, &[u8]) -> bool,
    ) -> Result<(), String> {
        // The common case: nothing held, the read holds whole replies;
        // decode in place and keep only a partial tail.
        let mut rest = bytes;
        if c.held.is_empty() {
            match self.drain(&mut rest, eof, &mut c.need, &mut seen)? {
                true => {}
                false => return Ok(()),
            }
            c.held.extend_from_slice(rest);
            return Ok(());
        }
        c.held.extend_from_slice(bytes);
        let mut held = std::mem::take(&mut c.held);
        let mut view = &held[..];
        let go_on = self.drain(&mut view, eof, &mut c.need, &mut seen);
        let left = view.len();
        let used = held.len() - left;
        held.drain(..used);
        c.held = held;
        if !go_on? {
            c.held.clear();
        }
        Ok(())
    }

    /// Decode whole replies off the front of `buf`: whether to go on.
    fn drain(
        &self,
        buf: &mut &[u8],
        eof: bool,
        need: &mut usize,
        seen: &mut impl FnMut(Seen, &[u8]) -> bool,
    ) -> Result<bool, String> {
        while !buf.is_empty() && (buf.len() >= *need || eof) {
            match self
                .reply
                .decode(buf, eof, self.max_reply, need.saturating_sub(1))
            {
                Decode::Need(n) => {
                    *need = n;
                    break;
                }
                Decode::Reply { len, error, close } => {
                    *need = 0;
                    let (r, after) = buf.split_at(len);
                    *buf = after;
                    let outcome = judge(r, error, self.expect.as_deref());
                    if !seen(Seen { outcome, close }, r) {
                        return Ok(false);
                    }
                }
                Decode::Skip(len) => {
                    *need = 0;
                    *buf = &buf[len..];
                }
                Decode::Malformed(why) => return Err(why),
            }
        }
        Ok(true)
    }
}

impl ProtoConn {
    /// The rendered bytes not yet written.
    pub fn unsent(&self) -> &[u8] {
        &self.out
    }

    /// `n` bytes of [`unsent`](Self::unsent) were written.
    pub fn written(&mut self, n: usize) {
        self.out.drain(..n.min(self.out.len()));
    }

    /// Whether part of a reply is held.
    pub fn mid_reply(&self) -> bool {
        !self.held.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proto(reqs: &[&str], reply: &str, expect: Option<&[u8]>) -> Protocol {
        let requests = reqs.iter().map(|r| Template::parse(r).unwrap()).collect();
        Protocol::new(
            requests,
            reply.parse().unwrap(),
            expect.map(<[u8]>::to_vec),
            7,
        )
    }

    #[test]
    fn templates_in_turn_into_one_buffer() {
        let p = proto(&["A{seq}\\n", "B{conn}\\n"], "line", None);
        let mut c = p.conn(5);
        p.start(&mut c, 3);
        assert_eq!(c.unsent(), b"A0\nB5\nA2\n");
        c.written(4);
        assert_eq!(c.unsent(), b"5\nA2\n");
        p.start(&mut c, 1);
        assert_eq!(c.unsent(), b"5\nA2\nB5\n");
    }

    #[test]
    fn replies_across_reads_are_judged() {
        let p = proto(&["GET k\\r\\n"], "resp", Some(b"$")); // expect a bulk string
        let mut c = p.conn(0);
        let mut got = Vec::new();
        let mut see = |s: Seen, r: &[u8]| {
            got.push((s, r.to_vec()));
            true
        };
        p.received(&mut c, b"$3\r\nab", false, &mut see).unwrap();
        assert!(c.mid_reply());
        p.received(&mut c, b"c\r\n>1\r\n+push\r\n-ERR x\r\n$0", false, &mut see)
            .unwrap();
        p.received(&mut c, b"\r\n\r\n", false, &mut see).unwrap();
        assert!(!c.mid_reply());
        let ok = Seen {
            outcome: Outcome::Ok,
            close: false,
        };
        let bad = Seen {
            outcome: Outcome::Mismatch,
            close: false,
        };
        assert_eq!(
            got,
            vec![
                (ok, b"$3\r\nabc\r\n".to_vec()),
                (bad, b"-ERR x\r\n".to_vec()),
                (ok, b"$0\r\n\r\n".to_vec())
            ]
        );
        assert!(p
            .received(&mut c, b"garbage\r\n", false, |_, _| true)
            .is_err());
    }

    #[test]
    fn stopping_early_drops_the_rest() {
        let p = proto(&["x"], "line", None);
        let mut c = p.conn(0);
        let mut n = 0;
        p.received(&mut c, b"a\nb\nc", false, |_, _| {
            n += 1;
            false
        })
        .unwrap();
        assert_eq!(n, 1);
        assert!(!c.mid_reply());
    }
}
