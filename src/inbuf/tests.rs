//! `InBuf`: frames, budgets, held memory, split characters.

use super::*;
use crate::service::{Chat, Count, To, Upper};
use proptest::prelude::*;
use std::time::Duration;

fn peer() -> SocketAddr {
    "127.0.0.1:5000".parse().unwrap()
}

/// What `feed` needs, for connection 1 at `peer()`.
fn serving<'a>(
    framing: Framing,
    max_frame: usize,
    service: &'a mut dyn Service,
    outbox: &'a mut Outbox,
    budget: Budget,
) -> Serving<'a> {
    Serving {
        framing,
        max_frame,
        service,
        conn: ConnId(1),
        peer: peer(),
        outbox,
        budget,
    }
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
            let b = Budget {
                left: budget_per_turn,
                fanout_cost: 1,
            };
            let fed = inb.feed(data, eof, &mut serving(framing, max, svc, &mut out, b));
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
    let b = Budget {
        left: budget,
        fanout_cost: 1,
    };
    inb.feed(
        data,
        false,
        &mut serving(Framing::Line, 100, &mut Count, out, b),
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
    let b = Budget {
        left: 1000,
        fanout_cost: 200,
    };
    let lines = b"x\n".repeat(100);
    let fed = inb.feed(
        &lines,
        false,
        &mut serving(Framing::Line, 100, &mut chat, &mut out, b),
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
                &mut serving(framing, max, &mut Count, &mut out, unlimited()),
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
            &mut serving(Framing::Line, 10_000, &mut Count, &mut out, unlimited()),
        );
        if inb.capacity() != cap {
            grew += 1;
            cap = inb.capacity();
        }
    }
    assert!(grew < 20, "grew {grew} times for 10,000 one-byte reads");
    assert!(cap <= 10_000 + FRAME_SLACK + 1);
}

/// Feed `frame` to `count` in pieces of `piece` bytes (never the last
/// byte, so it stays incomplete); every capacity the held buffer had.
fn capacities(framing: Framing, frame: &[u8], piece: usize) -> Vec<usize> {
    let mut inb = InBuf::default();
    let mut out = Outbox::default();
    let mut caps: Vec<usize> = Vec::new();
    for part in frame[..frame.len() - 1].chunks(piece) {
        inb.feed(
            part,
            false,
            &mut serving(framing, 65_536, &mut Count, &mut out, unlimited()),
        );
        if caps.last() != Some(&inb.capacity()) {
            caps.push(inb.capacity());
        }
    }
    caps
}

#[test]
fn a_trickled_len32_frame_gets_its_final_size_in_one_allocation() {
    let mut frame = (65_000u32).to_be_bytes().to_vec();
    frame.resize(4 + 65_000, b'a');
    for piece in [1, 3, 100, 1000, 4096] {
        let caps = capacities(Framing::Len32, &frame, piece);
        // Before the header is whole (1- and 3-byte pieces) a small
        // buffer holds it; then one allocation of exactly 65,004.
        assert_eq!(caps.last(), Some(&65_004), "pieces of {piece}: {caps:?}");
        assert!(caps.len() <= 2, "pieces of {piece}: {caps:?}");
    }
}

#[test]
fn a_trickled_line_leaves_under_4_kib_of_old_buffers_behind() {
    let mut line = vec![b'a'; 65_000];
    line.push(b'\n');
    for piece in [1, 100, 1000, 3000, 20_000] {
        let caps = capacities(Framing::Line, &line, piece);
        let (last, before) = caps.split_last().unwrap();
        assert_eq!(
            *last,
            65_536 + FRAME_SLACK + 1,
            "pieces of {piece}: {caps:?}"
        );
        let holes: usize = before.iter().sum();
        assert!(holes < 4096, "pieces of {piece}: {caps:?}");
    }
}

#[test]
fn bytes_after_a_held_frame_are_not_copied_into_its_buffer() {
    // A held len32 frame completes with the next frame right behind it:
    // the buffer stays at the first frame's size.
    let mut inb = InBuf::default();
    let mut out = Outbox::default();
    let mut first = (10u32).to_be_bytes().to_vec();
    first.extend_from_slice(b"sssss");
    let mut rest = b"sssss".to_vec();
    rest.extend_from_slice(&(3000u32).to_be_bytes());
    rest.extend_from_slice(&[b's'; 2000]);
    for part in [&first[..], &rest[..]] {
        inb.feed(
            part,
            false,
            &mut serving(Framing::Len32, 65_536, &mut Count, &mut out, unlimited()),
        );
    }
    assert_eq!(out.len(), 1);
    assert_eq!(inb.len(), 2004);
    assert_eq!(inb.capacity(), 3004, "the second frame's own size");
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
            &mut serving(Framing::Line, 65_536, &mut Count, &mut out, unlimited()),
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

#[test]
fn raw_holds_a_split_character_even_at_max_frame_1_and_2() {
    // "€" is E2 82 AC, "😀" F0 9F 98 80: one byte a read.
    for max in [1, 2] {
        for text in ["€", "a😀b", "ß"] {
            let parts: Vec<&[u8]> = text.as_bytes().chunks(1).collect();
            let got = run(Framing::Raw, &mut Upper, &parts, max, 10);
            assert_eq!(got, text.to_uppercase().as_bytes(), "max {max}, {text}");
        }
    }
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
            let fed = inb.feed(p, false, &mut serving(framing, max, &mut Count, &mut out, unlimited()));
            out.clear();
            if fed.stop == Stop::TooLong { break; }
            prop_assert!(inb.len() <= max + FRAME_SLACK, "held {}", inb.len());
            prop_assert!(inb.capacity() <= (max + FRAME_SLACK + 1).max(p.len()), "capacity {}", inb.capacity());
        }
    }
}
