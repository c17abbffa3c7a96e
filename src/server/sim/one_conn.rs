//! The loop tested without sockets: a seeded simulation that drives
//! [`drive`] through a fake stream whose every read and write may be
//! short, `WouldBlock` ("call again later") or `Interrupted`, at random —
//! what smoltcp's simulation gives it. For every service and framing,
//! over thousands of seeds: every byte is answered exactly once and in
//! order, backpressure bounds what is held, a half-close gets every reply
//! owed, and a close of our own delivers what was owed before it, then
//! its FIN. The expected answers come from [`oracle`](crate::oracle), a
//! model of each service and framing written for the tests, not from the
//! `InBuf` under test.

use std::cell::Cell;
use std::io::{self, Read, Write};

use crate::conn::{BufPool, Conn, Event, State, Stream};
use crate::framing::Framing;
use crate::inbuf::{Budget, Serving};
use crate::options::Options;
use crate::oracle;
use crate::server::drive::{drive, Cx, Driven};
use crate::service::{self, ConnId, Outbox, Service};
use crate::stats::ListenerCounters;

/// xorshift64*: small, seeded, good enough to pick fates.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
}

/// A peer behind a socket: its bytes arrive in chunks of random size, its
/// writes are taken short or refused at random, and any call may be
/// interrupted.
struct FakeStream {
    rng: Rng,
    /// What the client sends, and how much of it the kernel has "received"
    /// so far (bytes arrive over time, not all at once).
    input: Vec<u8>,
    arrived: usize,
    read_pos: usize,
    /// The client half-closes once everything has arrived.
    client_fin: bool,
    /// What the server wrote.
    output: Vec<u8>,
    /// Our FIN (`shutdown_write`), and how much had been written by then.
    fin_at: Cell<Option<usize>>,
}

impl FakeStream {
    /// More of the client's bytes reach the kernel, in a chunk of random
    /// size. Returns whether anything arrived: only then does an
    /// edge-triggered poll report READABLE.
    fn arrive(&mut self) -> bool {
        let left = self.input.len() - self.arrived;
        let n = self.rng.below(left as u64 + 1) as usize;
        self.arrived += n;
        n > 0
    }
}

impl Read for FakeStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.rng.chance(5) {
            return Err(io::ErrorKind::Interrupted.into());
        }
        let avail = self.arrived - self.read_pos;
        if avail == 0 {
            if self.client_fin && self.arrived == self.input.len() {
                return Ok(0);
            }
            return Err(io::ErrorKind::WouldBlock.into());
        }
        // As Linux does for a stream socket: everything there, up to the
        // buffer's size. (A short read therefore means drained — the rule
        // the loop relies on — and a loop that forgot bytes would strand
        // them here, since no new event comes for bytes already reported.)
        let n = avail.min(buf.len());
        buf[..n].copy_from_slice(&self.input[self.read_pos..self.read_pos + n]);
        self.read_pos += n;
        Ok(n)
    }
}

impl Write for FakeStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        assert!(self.fin_at.get().is_none(), "wrote after our FIN");
        if self.rng.chance(5) {
            return Err(io::ErrorKind::Interrupted.into());
        }
        if buf.is_empty() {
            return Ok(0);
        }
        if self.rng.chance(30) {
            return Err(io::ErrorKind::WouldBlock.into()); // send buffer full
        }
        let n = 1 + self.rng.below(buf.len() as u64) as usize;
        self.output.extend_from_slice(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Stream for FakeStream {
    fn shutdown_write(&self) -> io::Result<()> {
        assert!(self.fin_at.get().is_none(), "a second FIN");
        self.fin_at.set(Some(self.output.len()));
        Ok(())
    }
}

/// The replies a service gives `input`, framed for the wire: the oracle's.
fn expected(name: &str, framing: Framing, input: &[u8], max_frame: usize, at_eof: bool) -> Vec<u8> {
    oracle::replies(name, framing, input, max_frame, at_eof)
}

struct Run {
    output: Vec<u8>,
    read: usize,
    end: Option<String>,
    peak_pending: usize,
    /// Our FIN: how much had been written when it went.
    fin_at: Option<usize>,
    /// Our close: the input read by then, if the connection was still
    /// open (not half-closed by the peer).
    read_at_close: Option<usize>,
}

/// Drive one connection to its end (or `close_after` turns, then a close
/// of our own) with seed `seed`.
fn simulate(
    seed: u64,
    svc: &mut dyn Service,
    framing: Framing,
    input: Vec<u8>,
    close_after: Option<usize>,
) -> Run {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let stream = FakeStream {
        rng: Rng(rng.next() | 1),
        input,
        arrived: 0,
        read_pos: 0,
        client_fin: false,
        output: Vec::new(),
        fin_at: Cell::new(None),
    };
    let mut c = Conn::new(stream, "127.0.0.1:9".parse().unwrap(), 1, 0, 0);
    let mut outbox = Outbox::default();
    let mut pool = BufPool::default();
    let counters = ListenerCounters::default();
    let mut scratch = vec![0u8; 1 + rng.below(64) as usize];
    let mut peak_pending = 0;
    let mut end = None;
    let mut read_at_close = None;
    for turn in 0..100_000 {
        if close_after == Some(turn) && end.is_none() {
            if c.state() == State::Open {
                read_at_close = Some(c.stream().read_pos);
            }
            c.on(Event::WeClose);
        }
        // The events an edge-triggered poll would report: READABLE only
        // when something new arrived, with RDHUP when the FIN did.
        let (new_bytes, new_fin) = {
            let s = c.stream_mut();
            let new_bytes = s.arrive();
            let new_fin = !s.client_fin && s.arrived == s.input.len() && rng.chance(20);
            s.client_fin |= new_fin;
            (new_bytes, new_fin)
        };
        if new_bytes || new_fin {
            c.set_may_read(true);
        }
        if new_fin {
            c.set_peer_fin_seen();
        }
        let mut cx = Cx {
            key: 0,
            serving: Serving {
                framing,
                max_frame: MAX_FRAME,
                service: svc,
                conn: ConnId(c.id()),
                peer: c.peer(),
                outbox: &mut outbox,
                budget: Budget {
                    left: 1 + rng.below(8) as usize,
                    fanout_cost: 1,
                },
            },
            write_buffer: WRITE_BUFFER,
            pool: &mut pool,
            counters: &counters,
            now_ms: 1 + turn as u64,
            reads_left: 1 + rng.below(4) as usize,
            input_paused: false,
            traffic: false,
        };
        let driven = drive(&mut c, &mut cx, &mut scratch);
        peak_pending = peak_pending.max(c.pending_out());
        match driven {
            Driven::Done(why) => {
                end = Some(why.to_string());
                break;
            }
            Driven::SentFin => assert!(c.stream().fin_at.get().is_some(), "SentFin, no FIN"),
            Driven::ToRoom => outbox.clear(),
            Driven::Blocked | Driven::Yielded | Driven::Paused => {}
        }
        if c.state() == State::Lingering
            && !c.stream().client_fin
            && c.stream().fin_at.get().is_some()
        {
            // The peer reads our FIN and closes too: its FIN arrives.
            let s = c.stream_mut();
            s.arrived = s.input.len();
            s.client_fin = true;
            c.set_may_read(true);
            c.set_peer_fin_seen();
        }
    }
    let read = c.stream().read_pos;
    Run {
        output: std::mem::take(&mut c.stream_mut().output),
        read,
        end,
        peak_pending,
        fin_at: c.stream().fin_at.get(),
        read_at_close,
    }
}

const MAX_FRAME: usize = 48;
const WRITE_BUFFER: usize = 40;

/// Random client bytes that mostly make frames for `framing`.
fn client_bytes(rng: &mut Rng, framing: Framing) -> Vec<u8> {
    let mut v = Vec::new();
    for _ in 0..rng.below(40) {
        let len = rng.below(MAX_FRAME as u64 + 1) as usize;
        let body: Vec<u8> = (0..len)
            .map(|_| match rng.below(6) {
                0 => b's',
                1 => b'\r',
                2 => 0xc3, // the first byte of a two-byte character
                3 => 0x9f,
                _ => b'a' + rng.below(26) as u8,
            })
            .filter(|&b| framing != Framing::Line || b != b'\n')
            .collect();
        match framing {
            Framing::Line => {
                v.extend_from_slice(&body);
                v.push(b'\n');
            }
            Framing::Len32 => {
                v.extend_from_slice(&(body.len() as u32).to_be_bytes());
                v.extend_from_slice(&body);
            }
            Framing::Raw => v.extend_from_slice(&body),
        }
    }
    // Half the time the client stops mid-frame: a last line without its
    // `\n` is still a frame, an incomplete len32 frame is discarded.
    if rng.chance(50) {
        v.truncate(rng.below(v.len() as u64 + 1) as usize);
    }
    v
}

const CASES: [(&str, Framing); 6] = [
    ("echo", Framing::Raw),
    ("upper", Framing::Raw),
    ("count", Framing::Line),
    ("count", Framing::Len32),
    ("upper", Framing::Line),
    ("echo", Framing::Len32),
];

#[test]
fn every_byte_is_answered_once_in_order_whatever_the_socket_does() {
    for (name, framing) in CASES {
        for seed in 0..1500 {
            let mut rng = Rng(seed * 7 + 3);
            let input = client_bytes(&mut rng, framing);
            let want = expected(name, framing, &input, MAX_FRAME, true);
            let mut svc = service::by_name(name, &Options::default()).expect("service");
            let run = simulate(seed, &mut *svc, framing, input.clone(), None);
            assert_eq!(
                run.end.as_deref(),
                Some("peer closed; every reply delivered"),
                "{name}/{framing} seed {seed}"
            );
            assert_eq!(
                run.read,
                input.len(),
                "{name}/{framing} seed {seed}: all read"
            );
            assert_eq!(
                run.output, want,
                "{name}/{framing} seed {seed}: replies differ from the whole-stream answer"
            );
        }
    }
}

#[test]
fn backpressure_bounds_what_is_held_for_the_peer() {
    for seed in 0..1500 {
        let mut rng = Rng(seed + 11);
        let input = client_bytes(&mut rng, Framing::Raw);
        let mut svc = service::by_name("echo", &Options::default()).expect("echo");
        let run = simulate(seed, &mut *svc, Framing::Raw, input, None);
        // Reading stops above --write-buffer, so what is held never exceeds it by
        // more than one read's replies (echo: one read, at most 64 bytes here).
        assert!(
            run.peak_pending <= WRITE_BUFFER + 64,
            "seed {seed}: {} bytes pending with a --write-buffer of {WRITE_BUFFER}",
            run.peak_pending
        );
    }
}

#[test]
fn a_close_of_our_own_delivers_every_reply_owed_then_fin() {
    let mut owed_something = 0;
    let mut ours = 0;
    for (name, framing) in CASES {
        for seed in 0..500 {
            let mut rng = Rng(seed * 13 + 5);
            let input = client_bytes(&mut rng, framing);
            let mut svc = service::by_name(name, &Options::default()).expect("service");
            let close_after = rng.below(12) as usize;
            let run = simulate(seed, &mut *svc, framing, input.clone(), Some(close_after));
            let at = format!("{name}/{framing} seed {seed}");
            assert!(run.end.is_some(), "{at}: it ended");
            let Some(read) = run.read_at_close else {
                // The peer's FIN came first (or it was over before our
                // close): every reply, as for any half-close.
                assert_eq!(
                    run.output,
                    expected(name, framing, &input, MAX_FRAME, true),
                    "{at}"
                );
                continue;
            };
            ours += 1;
            // Owed: the replies to every whole frame read before the
            // close — exactly those: none lost, none to bytes read after.
            let owed = expected(name, framing, &input[..read], MAX_FRAME, false);
            owed_something += usize::from(!owed.is_empty());
            assert_eq!(run.output, owed, "{at}: closed after reading {read} bytes");
            // Then our FIN, after the last of them (FakeStream refuses a
            // write after it) — or, if the peer's FIN came meanwhile, the
            // plain close that sends it once every reply is delivered.
            match run.fin_at {
                Some(n) => assert_eq!(n, owed.len(), "{at}: our FIN after every reply"),
                None => assert_eq!(
                    run.end.as_deref(),
                    Some("peer closed; every reply delivered"),
                    "{at}: no FIN"
                ),
            }
        }
    }
    // Not a vacuous pass: most closes of our own owed something.
    assert!(
        owed_something * 2 > ours,
        "{owed_something} of {ours} closes of our own owed any reply"
    );
}
