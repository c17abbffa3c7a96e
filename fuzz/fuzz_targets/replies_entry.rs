// The `--reply` decoders against arbitrary bytes cut at an arbitrary
// place: no panic, every answer in bounds, and the replies found (and
// whether the stream is malformed) never depend on where it was cut.
// Shared by the fuzz target `replies` and by `tests/fuzz_replies.rs`,
// which runs it on stable over random inputs so it always compiles.

use sockloop::load::reply::{Decode, Framing};

/// Decode `bytes` arriving in two reads (cut at `cut`), then EOF, as the
/// load driver does: the replies' (length, error, close, skipped) in
/// order, or `Err` once malformed.
fn feed(
    f: &Framing,
    bytes: &[u8],
    cut: usize,
    max: usize,
) -> Result<Vec<(usize, bool, bool, bool)>, ()> {
    let mut got = Vec::new();
    let mut start = 0;
    let mut need = 0;
    for (end, eof) in [(cut, false), (bytes.len(), true)] {
        loop {
            let buf = &bytes[start..end];
            if buf.is_empty() || (buf.len() < need && !eof) {
                break;
            }
            match f.decode(buf, eof, max, need.saturating_sub(1)) {
                Decode::Need(n) => {
                    assert!(n > buf.len(), "Need({n}) with {} buffered", buf.len());
                    need = n;
                    break;
                }
                Decode::Reply { len, error, close } => {
                    assert!(len > 0 && len <= buf.len() && len <= max);
                    got.push((len, error, close, false));
                    start += len;
                    need = 0;
                }
                Decode::Skip(len) => {
                    assert!(len > 0 && len <= buf.len() && len <= max);
                    got.push((len, false, false, true));
                    start += len;
                    need = 0;
                }
                Decode::Malformed(_) => return Err(()),
            }
        }
    }
    Ok(got)
}

/// One fuzz input: a control byte (framing, limit, cut), then the bytes.
pub fn entry(data: &[u8]) {
    let Some((&ctl, rest)) = data.split_first() else {
        return;
    };
    let framing = match ctl % 6 {
        0 => Framing::Line,
        1 => Framing::Bytes(1 + (ctl as usize >> 3)),
        2 => Framing::Len32,
        3 => Framing::Until(b"\r\n".to_vec()),
        4 => Framing::Resp,
        _ => Framing::Http,
    };
    let max = if ctl & 0x80 != 0 { 64 } else { 1 << 20 };
    let cut = if rest.is_empty() {
        0
    } else {
        (ctl as usize * 7919) % (rest.len() + 1)
    };
    let whole = feed(&framing, rest, rest.len(), max);
    let split = feed(&framing, rest, cut, max);
    // A stream cut before a malformed part may end as malformed later
    // or at once; the replies before it are the same.
    match (&whole, &split) {
        (Ok(w), Ok(s)) => assert_eq!(w, s, "{framing} cut at {cut}"),
        (Err(()), Err(())) => {}
        (w, s) => panic!("{framing} cut at {cut}: whole {w:?} vs split {s:?}"),
    }
}
