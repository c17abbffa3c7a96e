//! The bytes a connection has read but not yet used, and the loop that
//! turns them into service calls. No I/O: the server reads from the socket
//! and hands the bytes here; this module does the rest.
//!
//! ```text
//!   bytes just read ─┐
//!   held from before ┴▶ framing.decode ─▶ service.on_frame / on_bytes ─▶ Outbox
//!                          │
//!                          └▶ what is left (a frame not yet complete, or
//!                             whole frames the turn's budget did not reach)
//!                             is held for next time
//! ```
//!
//! Three rules live here, for every framing (`raw` too):
//! - **Whole frames first.** Every whole frame already buffered is handed on
//!   before more is read (mini-redis's order), so a partial read is the
//!   normal case, not an error.
//! - **A budget per turn.** One 64 KiB read of two-byte lines is 32,768
//!   frames; in a chat room each goes to every member. Decoding stops when
//!   the turn's [`Budget`] of work (replies, plus room deliveries) is spent,
//!   and the rest waits here for the connection's next turn, so no client
//!   can hold the loop for longer than one budget.
//! - **Bounded memory.** Held bytes grow only to what the frame needs and
//!   never past `--max-frame` plus a small constant (no `Vec` doubling to
//!   twice the limit), and go back to the allocator once the frame is done.

use std::net::SocketAddr;

use crate::framing::{Decoded, Framing};
use crate::service::{ConnId, Outbox, Service};

/// Held bytes beyond a frame's payload: a `len32` header, or a line's
/// `\r\n`.
pub const FRAME_SLACK: usize = 4;

/// A held buffer with more capacity than this is freed once it empties,
/// rather than kept for the next partial frame.
pub const KEEP_CAPACITY: usize = 4096;

/// How much work one turn of one connection may do: every reply costs one,
/// every message to the room costs one per recipient.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    /// Work units left this turn.
    pub left: usize,
    /// What one message to the room costs: its number of recipients.
    pub fanout_cost: usize,
}

impl Budget {
    /// Charge the work one service call put in `out` (from `before`, the
    /// outbox's message counts before the call).
    fn charge(&mut self, out: &Outbox, before: (usize, usize)) {
        let messages = out.len() - before.0;
        let to_room = out.to_room_count() - before.1;
        let cost = messages - to_room + to_room * self.fanout_cost;
        // Even a call that produced nothing (a frame the service ignores)
        // costs one: decoding it was work too.
        self.left = self.left.saturating_sub(cost.max(1));
    }
}

/// Why [`InBuf::feed`] stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// Every whole frame was handed on; what is held (if anything) is the
    /// start of a frame: read more.
    NeedMore,
    /// The budget ran out with bytes left that may hold whole frames: call
    /// [`InBuf::feed`] again, with no new bytes, on the next turn.
    Budget,
    /// The frame at the front is over `--max-frame`: the stream cannot be
    /// resynchronised, so the connection must close. Nothing is held.
    TooLong,
}

/// What one [`InBuf::feed`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fed {
    /// Frames (or `raw` chunks) handed to the service.
    pub frames: u64,
    /// Why it stopped.
    pub stop: Stop,
    /// At EOF: bytes of an incomplete frame thrown away (they can never
    /// complete).
    pub discarded: usize,
}

/// One connection's held input.
#[derive(Debug, Default)]
pub struct InBuf {
    held: Vec<u8>,
    /// The budget stopped decoding: `held` may start with whole frames.
    ready: bool,
}

impl InBuf {
    /// Bytes held.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Memory held (capacity), for the counters.
    pub fn capacity(&self) -> usize {
        self.held.capacity()
    }

    /// Whether held bytes may hold whole frames (the budget stopped the
    /// last [`feed`](Self::feed)): they come before any new read.
    pub fn has_ready_frames(&self) -> bool {
        self.ready
    }

    /// Forget everything held and free the memory.
    pub fn clear(&mut self) {
        self.held = Vec::new();
        self.ready = false;
    }

    /// Hand `data` (after any held bytes) to `service` frame by frame,
    /// within `budget`, and hold what is left. `at_eof`: the peer sent FIN,
    /// so no more bytes will come (a last line without `\n` is a frame).
    #[allow(clippy::too_many_arguments)] // one call site per caller; a struct would only rename them
    pub fn feed(
        &mut self,
        data: &[u8],
        at_eof: bool,
        framing: Framing,
        max_frame: usize,
        service: &mut dyn Service,
        who: (ConnId, SocketAddr),
        out: &mut Outbox,
        budget: &mut Budget,
    ) -> Fed {
        let limit = max_frame + FRAME_SLACK;
        let mut run = Run {
            framing,
            max_frame,
            service,
            who,
            out,
            budget,
            frames: 0,
        };
        let mut held = std::mem::take(&mut self.held);
        let mut data = data;
        let mut discarded = 0;
        let stop = loop {
            if held.is_empty() {
                // Nothing held — the common case: decode straight from the
                // caller's read buffer, without a copy, and keep only the
                // tail the next read must complete.
                let (used, stop) = run.decode(data, at_eof);
                let tail = &data[used..];
                match stop {
                    Stop::TooLong => {}
                    Stop::NeedMore if at_eof => discarded = tail.len(),
                    Stop::Budget => held.extend_from_slice(tail),
                    Stop::NeedMore => {
                        // Room for the frame to double, within the limit:
                        // the rest of a big frame then lands in place, not
                        // in a second allocation that leaves the first as
                        // a hole in the heap.
                        let room = (2 * tail.len()).max(64).min(limit + 1).max(tail.len());
                        held.reserve_exact(room);
                        held.extend_from_slice(tail);
                    }
                }
                break stop;
            }
            // Bytes are held: move in only as many as the held frame can
            // still need (any valid frame fits in `limit`), so the buffer
            // never grows past the limit for a frame that is incomplete.
            let take = if held.len() > limit {
                data.len() // whole frames a budget left: no partial to bound
            } else {
                data.len().min(limit + 1 - held.len())
            };
            grow_for(&mut held, take, limit + 1);
            held.extend_from_slice(&data[..take]);
            data = &data[take..];
            let (used, stop) = run.decode(&held, at_eof && data.is_empty());
            held.drain(..used);
            match stop {
                // The held frame is done and more bytes came: go on with them.
                Stop::NeedMore if !data.is_empty() => continue,
                Stop::NeedMore if at_eof => {
                    discarded = held.len();
                    held.clear();
                }
                Stop::Budget => {
                    // The rest waits for the next turn, whole.
                    held.extend_from_slice(data);
                }
                Stop::TooLong => held.clear(),
                Stop::NeedMore => {}
            }
            break stop;
        };
        if held.is_empty() && held.capacity() > KEEP_CAPACITY {
            // The frame is done: give a large buffer back, so a connection
            // that once held a big frame does not keep paying for it.
            held = Vec::new();
        }
        self.ready = stop == Stop::Budget && !held.is_empty();
        self.held = held;
        Fed {
            frames: run.frames,
            stop,
            discarded,
        }
    }
}

/// One decoding pass: the framing, the service, and where replies go.
struct Run<'a> {
    framing: Framing,
    max_frame: usize,
    service: &'a mut dyn Service,
    /// The connection and its peer, for the service.
    who: (ConnId, SocketAddr),
    out: &'a mut Outbox,
    budget: &'a mut Budget,
    frames: u64,
}

impl Run<'_> {
    /// Hand every whole frame at the front of `buf` to the service, within
    /// the budget. Returns the bytes used and why it stopped.
    fn decode(&mut self, buf: &[u8], at_eof: bool) -> (usize, Stop) {
        let mut used = 0;
        let stop = loop {
            if used == buf.len() {
                break Stop::NeedMore;
            }
            if self.budget.left == 0 {
                break Stop::Budget;
            }
            let before = (self.out.len(), self.out.to_room_count());
            if self.framing == Framing::Raw {
                // No boundaries: the service takes what it can (upper may
                // hold back a character cut in two) in one call.
                let rest = &buf[used..];
                let took = self
                    .service
                    .on_bytes(self.who.0, self.who.1, rest, at_eof, self.out)
                    .min(rest.len());
                used += took;
                self.frames += 1;
                self.budget.charge(self.out, before);
                // A service may hold back a little, never a frame's worth.
                if rest.len() - took > self.max_frame {
                    break Stop::TooLong;
                }
                break Stop::NeedMore;
            }
            match self.framing.decode(&buf[used..], self.max_frame, at_eof) {
                Decoded::Frame { payload, consumed } => {
                    let frame = &buf[used + payload.start..used + payload.end];
                    self.service
                        .on_frame(self.who.0, self.who.1, frame, self.out);
                    used += consumed;
                    self.frames += 1;
                    self.budget.charge(self.out, before);
                }
                Decoded::NeedMore => break Stop::NeedMore,
                Decoded::TooLong => break Stop::TooLong,
            }
        };
        (used, stop)
    }
}

/// Make room for `extra` more bytes: doubling (so trickled bytes do not
/// copy the frame over and over), but never past `limit` unless the bytes
/// themselves need more (whole frames waiting on the budget).
fn grow_for(v: &mut Vec<u8>, extra: usize, limit: usize) {
    let needed = v.len() + extra;
    if needed <= v.capacity() {
        return;
    }
    let target = needed.max((v.capacity() * 2).min(limit));
    v.reserve_exact(target - v.len());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::{Chat, Count, To, Upper};
    use proptest::prelude::*;
    use std::time::Duration;

    fn peer() -> SocketAddr {
        "127.0.0.1:5000".parse().unwrap()
    }

    fn unlimited() -> Budget {
        Budget {
            left: usize::MAX,
            fanout_cost: 1,
        }
    }

    /// Feed `parts` one after another (then EOF), a turn at a time as the
    /// loop would, collecting the replies framed as the wire would carry them.
    fn run(
        framing: Framing,
        svc: &mut dyn Service,
        parts: &[&[u8]],
        max: usize,
        budget_per_turn: usize,
    ) -> Vec<u8> {
        let mut inb = InBuf::default();
        let mut out = Outbox::default();
        let mut got = Vec::new();
        let mut feed = |data: &[u8], eof: bool, got: &mut Vec<u8>| -> Stop {
            let mut data = data;
            loop {
                let mut b = Budget {
                    left: budget_per_turn,
                    fanout_cost: 1,
                };
                let fed = inb.feed(
                    data,
                    eof,
                    framing,
                    max,
                    svc,
                    (ConnId(1), peer()),
                    &mut out,
                    &mut b,
                );
                for (_, m) in out.messages() {
                    framing.encode(m, got);
                }
                out.clear();
                if fed.stop != Stop::Budget {
                    return fed.stop;
                }
                // The rest waits for the connection's next turn, before
                // any new bytes.
                data = &[];
            }
        };
        for p in parts {
            if feed(p, false, &mut got) == Stop::TooLong {
                return got;
            }
        }
        feed(&[], true, &mut got);
        got
    }

    /// `count` over `line` framing with a limit of 100 and `budget` units.
    fn feed_count(inb: &mut InBuf, out: &mut Outbox, data: &[u8], budget: usize) -> Fed {
        let mut b = Budget {
            left: budget,
            fanout_cost: 1,
        };
        inb.feed(
            data,
            false,
            Framing::Line,
            100,
            &mut Count,
            (ConnId(1), peer()),
            out,
            &mut b,
        )
    }

    #[test]
    fn whole_frames_before_a_partial_one_are_answered_and_the_rest_held() {
        let mut inb = InBuf::default();
        let mut out = Outbox::default();
        let fed = feed_count(&mut inb, &mut out, b"mississippi\nsas\nss", usize::MAX);
        assert_eq!(fed.frames, 2);
        assert_eq!(fed.stop, Stop::NeedMore);
        assert_eq!(inb.len(), 2, "the partial line 'ss' is held");
        let replies: Vec<_> = out.messages().map(|(_, m)| m.to_vec()).collect();
        assert_eq!(replies, vec![b"4".to_vec(), b"2".to_vec()]);
    }

    #[test]
    fn budget_stops_decoding_and_the_rest_resumes_without_a_read() {
        let mut inb = InBuf::default();
        let mut out = Outbox::default();
        let fed = feed_count(&mut inb, &mut out, b"s\ns\ns\ns\ns\n", 3);
        assert_eq!((fed.frames, fed.stop), (3, Stop::Budget));
        assert!(inb.has_ready_frames());
        let fed = feed_count(&mut inb, &mut out, &[], 3);
        assert_eq!((fed.frames, fed.stop), (2, Stop::NeedMore));
        assert!(inb.is_empty() && !inb.has_ready_frames());
        assert_eq!(out.len(), 5);
    }

    #[test]
    fn a_room_message_costs_one_per_recipient() {
        let mut inb = InBuf::default();
        let mut out = Outbox::default();
        let mut chat = Chat::new(Duration::from_secs(1), 1);
        let mut b = Budget {
            left: 1000,
            fanout_cost: 200,
        };
        let lines = b"x\n".repeat(100);
        let fed = inb.feed(
            &lines,
            false,
            Framing::Line,
            100,
            &mut chat,
            (ConnId(1), peer()),
            &mut out,
            &mut b,
        );
        // One unit per recipient: 200 a line, so five lines spend it all.
        assert_eq!((fed.frames, fed.stop), (5, Stop::Budget));
        assert!(out.messages().all(|(to, _)| to == To::Others));
        assert_eq!(inb.len(), 95 * 2);
    }

    #[test]
    fn held_partial_frame_never_costs_twice_the_limit() {
        // The case that cost 127.7 KB for a 64 KiB limit: 65,000 bytes,
        // then 535 more, of one unfinished line.
        let max = 65_536;
        for framing in [Framing::Line, Framing::Len32] {
            let mut inb = InBuf::default();
            let mut out = Outbox::default();
            let mut first = vec![b'a'; 65_000];
            if framing == Framing::Len32 {
                first[..4].copy_from_slice(&((max - 1) as u32).to_be_bytes());
            }
            for part in [&first[..], &[b'a'; 535][..]] {
                inb.feed(
                    part,
                    false,
                    framing,
                    max,
                    &mut Count,
                    (ConnId(1), peer()),
                    &mut out,
                    &mut unlimited(),
                );
            }
            assert_eq!(inb.len(), 65_535, "{framing}");
            assert!(
                inb.capacity() <= max + FRAME_SLACK + 1,
                "{framing}: capacity {} for a limit of {max}",
                inb.capacity()
            );
        }
    }

    #[test]
    fn trickled_bytes_grow_the_buffer_geometrically_up_to_the_limit() {
        let mut inb = InBuf::default();
        let mut out = Outbox::default();
        let mut grew = 0;
        let mut cap = 0;
        for _ in 0..10_000 {
            inb.feed(
                b"a",
                false,
                Framing::Line,
                10_000,
                &mut Count,
                (ConnId(1), peer()),
                &mut out,
                &mut unlimited(),
            );
            if inb.capacity() != cap {
                grew += 1;
                cap = inb.capacity();
            }
        }
        assert!(grew < 20, "grew {grew} times for 10,000 one-byte reads");
        assert!(cap <= 10_000 + FRAME_SLACK + 1);
    }

    #[test]
    fn memory_goes_back_when_a_big_frame_completes() {
        let mut inb = InBuf::default();
        let mut out = Outbox::default();
        let big = vec![b'a'; 50_000];
        for part in [&big[..], b"\n"] {
            inb.feed(
                part,
                false,
                Framing::Line,
                65_536,
                &mut Count,
                (ConnId(1), peer()),
                &mut out,
                &mut unlimited(),
            );
        }
        assert!(inb.is_empty());
        assert_eq!(inb.capacity(), 0);
    }

    #[test]
    fn raw_holds_a_split_character_and_releases_it_at_eof() {
        let got = run(Framing::Raw, &mut Upper, &[b"stra\xc3", b"\x9fe"], 100, 10);
        assert_eq!(got, "STRASSE".as_bytes());
        let got = run(Framing::Raw, &mut Upper, &[b"ab\xc3"], 100, 10);
        assert_eq!(got, b"AB\xc3", "at EOF the cut character goes back raw");
    }

    proptest! {
        /// Any split of a stream, under any budget, gives the replies the
        /// oracle gives for the whole stream.
        #[test]
        fn any_split_and_budget_answers_like_the_whole(
            bytes in proptest::collection::vec(prop_oneof![Just(b's'), Just(b'\n'), Just(b'\r'), Just(b'x'), any::<u8>()], 0..300),
            cuts in proptest::collection::vec(0usize..300, 0..8),
            budget in 1usize..6,
            framing in prop_oneof![Just(Framing::Line), Just(Framing::Len32), Just(Framing::Raw)],
        ) {
            let max = 40;
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(bytes.len())).collect();
            cuts.sort_unstable();
            let mut parts = Vec::new();
            let mut at = 0;
            for c in cuts.into_iter().chain([bytes.len()]) {
                parts.push(&bytes[at..c]);
                at = c;
            }
            // raw has no boundaries (a frame is whatever one read gave),
            // so it is checked with upper, whose output does not depend on
            // them; line and len32 with count.
            let svc = || -> Box<dyn Service> {
                if framing == Framing::Raw { Box::new(Upper) } else { Box::new(Count) }
            };
            // The expected answer is the test oracle's, not InBuf's own.
            let name = if framing == Framing::Raw { "upper" } else { "count" };
            let whole = crate::oracle::replies(name, framing, &bytes, max, true);
            let split = run(framing, &mut *svc(), &parts, max, budget);
            prop_assert_eq!(split, whole);
        }

        /// Whatever arrives, a connection holding an incomplete frame holds
        /// at most --max-frame plus a small constant.
        #[test]
        fn held_bytes_stay_within_the_limit(
            parts in proptest::collection::vec(proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'\n')], 0..80), 0..20),
            framing in prop_oneof![Just(Framing::Line), Just(Framing::Len32)],
        ) {
            let max = 64;
            let mut inb = InBuf::default();
            let mut out = Outbox::default();
            for p in &parts {
                let fed = inb.feed(p, false, framing, max, &mut Count, (ConnId(1), peer()), &mut out, &mut unlimited());
                out.clear();
                if fed.stop == Stop::TooLong { break; }
                prop_assert!(inb.len() <= max + FRAME_SLACK, "held {}", inb.len());
                prop_assert!(inb.capacity() <= (max + FRAME_SLACK + 1).max(p.len()), "capacity {}", inb.capacity());
            }
        }
    }
}
