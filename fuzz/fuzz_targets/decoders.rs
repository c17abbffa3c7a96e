//! The framing decoders and `upper`'s held-tail logic against arbitrary
//! bytes cut at arbitrary places: no panic, and the frames found never
//! depend on where the reads were cut.
//!
//! Run by hand (needs cargo-fuzz; on a stable toolchain prefix
//! RUSTC_BOOTSTRAP=1): `cd fuzz && cargo fuzz run decoders -- -max_total_time=600`
#![no_main]

use libfuzzer_sys::fuzz_target;
use sockloop::framing::{decode_all, Framing};
use sockloop::service::{ConnId, Outbox, Service, Upper};

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, rest)) = data.split_first() else { return };
    let framing = [Framing::Raw, Framing::Line, Framing::Len32][(ctl % 3) as usize];
    let max = (ctl as usize >> 2) * 4;
    let cut = if rest.is_empty() { 0 } else { (ctl as usize * 7919) % rest.len() };

    // Whole, versus cut in two the way the loop holds a partial frame.
    let whole = decode_all(framing, rest, max, true);
    let (first, held) = match decode_all(framing, &rest[..cut], max, false) {
        Ok(r) => r,
        Err(_) => {
            assert!(whole.is_err() || framing == Framing::Raw, "too long in part, not in whole");
            return;
        }
    };
    let mut again = rest[cut - held..].to_vec();
    let second = decode_all(framing, &again, max, true);
    if framing != Framing::Raw {
        match (whole, second) {
            (Ok((w, _)), Ok((s, _))) => {
                let mut joined = first;
                joined.extend(s);
                assert_eq!(w, joined);
            }
            (Err(_), Err(_)) => {}
            (w, s) => panic!("whole {w:?} vs split {s:?}"),
        }
    }

    // upper: the same bytes out, however the stream is cut.
    let peer = "127.0.0.1:1".parse().unwrap();
    let mut out = Outbox::default();
    let used = Upper.on_bytes(ConnId(1), peer, &rest[..cut], false, &mut out);
    again.clear();
    again.extend_from_slice(&rest[used..]);
    Upper.on_bytes(ConnId(1), peer, &again, true, &mut out);
    let split: Vec<u8> = out.messages().flat_map(|(_, m)| m.to_vec()).collect();
    let mut whole = Vec::new();
    sockloop::service::uppercase_into(rest, &mut whole);
    assert_eq!(split, whole);
});
