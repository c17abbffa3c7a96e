//! The simulated clients: what each kind does at its turn, and what it
//! expects (from the oracles in `crate::oracle`, never from the server's
//! own code).
//!
//! | kind | does | expects |
//! |---|---|---|
//! | `Good` | sends its frames in random chunks, reads in random amounts, stops and resumes reading, may stop sending at a frame's end for a while shorter than `--idle-timeout` (`pause`), half-closes when done (or right after sending) | every reply exactly once, in order, then the server's close; never reset |
//! | `Pauser` | sends its first frames, then stops sending (reading on) for longer than `--idle-timeout` | the replies to those frames, then cut at its last byte + `--idle-timeout`, to the ms |
//! | `Idler` | a few requests, then silence | cut at its last byte either way + `--idle-timeout`, to the ms |
//! | `Trickler` | whole frames, then a frame one byte at a time that never ends | its replies, `ERR frame timeout` (line), the server's FIN at the frame's first byte + `--frame-timeout`, to the ms |
//! | `Resetter` | sends, then resets | nothing (the others are unharmed) |
//! | `Hog` | sends and never reads | held within the memory bound |
//! | `Member` | a chat member: says its lines, reads all | every other member's lines, each once, in each sender's order; never cut |
//! | `Stuck` | a chat member that never reads | cut at going above `--write-buffer` + `--slow-timeout`, to the ms |

use std::collections::HashMap;
use std::net::SocketAddr;

use super::world::{End, Net, Rng};
use crate::framing::Framing;

/// What a client is (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Good,
    Idler,
    Pauser,
    Trickler,
    Resetter,
    Hog,
    Member,
    Stuck,
}

/// One simulated client.
#[derive(Debug)]
pub(crate) struct Client {
    pub kind: Kind,
    pub addr: SocketAddr,
    /// Its connection in the world, once it connected.
    pub pipe: Option<usize>,
    pub connect_at: u64,
    /// What it will send, and how much went.
    pub input: Vec<u8>,
    pub sent: usize,
    /// Stop sending at this byte (a frame's end) for this many ms, once;
    /// sending resumes at `resume_at` (0: the pause has not begun).
    pub pause: Option<(usize, u64)>,
    pub resume_at: u64,
    /// Where the frame that never ends begins (a trickler's).
    pub partial_at: usize,
    /// What it received.
    pub got: Vec<u8>,
    /// When it acts next.
    pub next_at: u64,
    /// Longest gap between its actions, ms.
    pub gap: u64,
    pub chunk_max: usize,
    pub read_max: usize,
    /// Reading stopped until then.
    pub reading_from: u64,
    /// Half-close as soon as everything is sent (not after the replies).
    pub fin_early: bool,
    pub fin_sent: bool,
    /// When it resets (a resetter).
    pub reset_at: u64,
    /// It saw its connection's end; nothing more to do.
    pub done: bool,
    /// It sends nothing before then (a chat member waits for the room).
    pub send_from: u64,
    /// Its socket buffers, if not the kind's.
    pub caps: Option<(usize, usize)>,
    /// A chat member's count of lines heard from each member, and how
    /// much of `got` is counted.
    pub heard: HashMap<SocketAddr, usize>,
    pub parsed: usize,
    /// What it waits for, once known (see `Sim::expect_len`).
    pub expect: Option<usize>,
}

impl Client {
    pub(crate) fn new(kind: Kind, addr: SocketAddr, connect_at: u64) -> Self {
        Client {
            kind,
            addr,
            pipe: None,
            connect_at,
            input: Vec::new(),
            sent: 0,
            partial_at: usize::MAX,
            pause: None,
            resume_at: 0,
            got: Vec::new(),
            next_at: connect_at,
            gap: 3,
            chunk_max: 32,
            read_max: 512,
            reading_from: 0,
            fin_early: false,
            fin_sent: false,
            reset_at: u64::MAX,
            done: false,
            send_from: 0,
            caps: None,
            heard: HashMap::new(),
            parsed: 0,
            expect: None,
        }
    }

    /// Count the chat lines `got` holds by now, by sender.
    pub(crate) fn hear(&mut self) {
        while let Some(nl) = self.got[self.parsed..].iter().position(|&b| b == b'\n') {
            let line = &self.got[self.parsed..self.parsed + nl];
            if let Some(colon) = line.windows(2).position(|w| w == b": ") {
                let from = std::str::from_utf8(&line[..colon])
                    .ok()
                    .and_then(|s| s.parse().ok());
                if let (Some(from), false) = (from, line.starts_with(b"* ")) {
                    *self.heard.entry(from).or_default() += 1;
                }
            }
            self.parsed += nl + 1;
        }
    }

    /// Whether it still has something to do at some time.
    pub(crate) fn active(&self) -> bool {
        !self.done
    }

    /// Act at `net.now_ms`: send, read, half-close, as its kind does.
    /// `expect_len`: how many bytes it waits for before it half-closes
    /// (a good client's whole answer, a member's share of the room).
    pub(crate) fn act(&mut self, net: &mut Net, li: usize, rng: &mut Rng, expect_len: usize) {
        let now = net.now_ms;
        let Some(id) = self.pipe else {
            if net.listening(li) || now == self.connect_at {
                let (c2s, s2c) = self.caps.unwrap_or_else(|| caps(self.kind, rng));
                self.pipe = Some(net.connect(li, self.addr, c2s, s2c));
            } else {
                self.done = true;
            }
            self.next_at = now + rng.range(0, self.gap);
            return;
        };
        if net.pipes[id].end == End::Waiting && !net.listening(li) {
            // The welcoming socket closed (shutdown) with this connection
            // in its backlog: the kernel resets it.
            self.done = true;
            return;
        }
        let closed = matches!(net.pipes[id].end, End::Closed { .. });
        let deaf = matches!(self.kind, Kind::Hog | Kind::Stuck);
        if net.at_eof(id) || net.pipes[id].client_reset || (closed && deaf) {
            if !self.fin_sent {
                net.fin(id);
                self.fin_sent = true;
            }
            self.done = true;
            return;
        }
        if now >= self.reset_at {
            net.reset(id);
            self.done = true;
            return;
        }
        // Send.
        let silent = self.kind == Kind::Idler && self.sent == self.input.len();
        let resumed = now >= self.send_from && now >= self.resume_at;
        if self.sent < self.input.len() && !self.fin_sent && resumed {
            let max = if self.kind == Kind::Trickler && self.sent >= self.partial_at {
                1
            } else if self.kind == Kind::Trickler {
                self.partial_at - self.sent // whole frames in one go: none is late
            } else {
                rng.range(1, self.chunk_max as u64) as usize
            };
            let pause = self.pause.filter(|_| self.resume_at == 0);
            let stop = pause.map_or(self.input.len(), |(at, _)| at);
            let end = (self.sent + max).min(stop);
            self.sent += net.send(id, &self.input[self.sent..end]);
        }
        let pause = self.pause.filter(|_| self.resume_at == 0);
        if let Some((at, ms)) = pause.filter(|&(at, _)| self.sent == at) {
            if net.pipes[id].read_total >= at {
                // The pause begins (once) when the server has its last
                // byte before it: the idle clock starts then, not at our
                // send (an accept may come late).
                self.resume_at = now + ms;
            }
        }
        // Read (a hog never does; anyone may pause for a while).
        let reads = !matches!(self.kind, Kind::Hog | Kind::Stuck) && now >= self.reading_from;
        if reads && !(silent && self.got.len() >= expect_len) {
            let n = rng.range(1, self.read_max as u64) as usize;
            self.got.extend(net.recv(id, n));
            if self.kind == Kind::Good && rng.chance(3) {
                self.reading_from = now + rng.range(1, 40);
            }
        }
        let all_sent = self.sent == self.input.len();
        let fin_now = match self.kind {
            Kind::Good => all_sent && (self.fin_early || self.got.len() >= expect_len),
            Kind::Member => all_sent && self.got.len() >= expect_len,
            _ => false,
        };
        if fin_now && !self.fin_sent {
            net.fin(id);
            self.fin_sent = true;
        }
        self.next_at = now + rng.range(if self.kind == Kind::Trickler { 1 } else { 0 }, self.gap);
        if self.kind == Kind::Idler && all_sent && self.got.len() >= expect_len {
            // Silent from now on: it wakes only to see the end.
            self.next_at = now + 10_000;
        }
    }
}

/// Socket buffer sizes (client → server, server → client) for a kind.
fn caps(kind: Kind, rng: &mut Rng) -> (usize, usize) {
    match kind {
        Kind::Stuck => (256, rng.range(16, 128) as usize),
        // Room for every reply: the server's close is then its decision's
        // moment, not the moment the client made room for its last reply.
        Kind::Trickler | Kind::Idler | Kind::Pauser => (rng.range(16, 2048) as usize, 65_536),
        Kind::Hog => (rng.range(64, 1024) as usize, rng.range(16, 256) as usize),
        _ => (rng.range(16, 2048) as usize, rng.range(16, 2048) as usize),
    }
}

/// `frames` random requests over `framing`, each at most `max` bytes:
/// letters, spaces, `s` (for count), and a two-byte character (for upper).
pub(crate) fn requests(rng: &mut Rng, framing: Framing, frames: usize, max: usize) -> Vec<u8> {
    const ALPHABET: &[&str] = &["a", "b", "s", "s", "z", " ", "ß", "0"];
    let mut out = Vec::new();
    for _ in 0..frames {
        let mut text = Vec::new();
        let len = rng.below(max as u64 + 1) as usize;
        while text.len() < len {
            let c = ALPHABET[rng.below(ALPHABET.len() as u64) as usize].as_bytes();
            if text.len() + c.len() > len {
                break;
            }
            text.extend_from_slice(c);
        }
        match framing {
            Framing::Line => {
                text.push(b'\n');
                out.extend(text);
            }
            Framing::Len32 => {
                out.extend((text.len() as u32).to_be_bytes());
                out.extend(text);
            }
            Framing::Raw => out.extend(text),
        }
    }
    out
}
