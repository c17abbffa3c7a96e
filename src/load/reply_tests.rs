//! The decoders against independent encoders: generated replies, written
//! out by the code here (not by the decoders' own logic), cut at random
//! points, must come back with the same boundaries and outcomes; any
//! bytes at all must never panic.

use super::*;
use proptest::prelude::*;

/// What a decoder reported for one reply, as the encoder predicts it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Seen {
    Reply {
        len: usize,
        error: bool,
        close: bool,
    },
    Skip(usize),
}

/// Feed `bytes` cut at `cuts` as a driver would (keep the unconsumed
/// tail, decode while something completes), then EOF.
pub(super) fn feed(
    f: &Framing,
    bytes: &[u8],
    cuts: &[usize],
    max: usize,
) -> Result<Vec<Seen>, String> {
    let mut seen = Vec::new();
    let mut buf: Vec<u8> = Vec::new();
    let mut need = 0;
    let mut points: Vec<usize> = cuts.iter().map(|&c| c % (bytes.len() + 1)).collect();
    points.push(bytes.len());
    points.sort_unstable();
    let mut at = 0;
    for (k, &p) in points.iter().enumerate() {
        buf.extend_from_slice(&bytes[at..p]);
        at = p;
        let eof = k == points.len() - 1;
        loop {
            if buf.is_empty() || (buf.len() < need && !eof) {
                break;
            }
            match f.decode(&buf, eof, max, need.saturating_sub(1)) {
                Decode::Need(n) => {
                    assert!(n > buf.len(), "Need({n}) with {} buffered", buf.len());
                    need = n;
                    break;
                }
                Decode::Reply { len, error, close } => {
                    assert!(len > 0 && len <= buf.len());
                    seen.push(Seen::Reply { len, error, close });
                    buf.drain(..len);
                    need = 0;
                }
                Decode::Skip(len) => {
                    assert!(len > 0 && len <= buf.len());
                    seen.push(Seen::Skip(len));
                    buf.drain(..len);
                    need = 0;
                }
                Decode::Malformed(why) => return Err(why),
            }
        }
    }
    Ok(seen)
}

fn ok(len: usize) -> Seen {
    Seen::Reply {
        len,
        error: false,
        close: false,
    }
}

#[test]
fn short_framings() {
    let f = |s: &str| s.parse::<Framing>().unwrap();
    assert_eq!(
        feed(&f("line"), b"a\nbc\n\n", &[1, 3], 99),
        Ok(vec![ok(2), ok(3), ok(1)])
    );
    assert_eq!(
        feed(&f("bytes:3"), b"abcdef", &[2, 4], 99),
        Ok(vec![ok(3), ok(3)])
    );
    assert_eq!(
        feed(&f("len32"), b"\0\0\0\x02hi\0\0\0\0", &[1, 5], 99),
        Ok(vec![ok(6), ok(4)])
    );
    assert_eq!(
        feed(
            &f("until:END\\r\\n"),
            b"a\r\nEND\r\nEND\r\n",
            &[4, 6, 9],
            99
        ),
        Ok(vec![ok(8), ok(5)])
    );
    // Cut off, and over the limit.
    assert!(feed(&f("line"), b"abc", &[], 99)
        .unwrap_err()
        .contains("closed in the middle"));
    assert!(feed(&f("line"), b"abcdef", &[], 4)
        .unwrap_err()
        .contains("limit"));
    assert!(feed(&f("len32"), b"\xff\0\0\0", &[], 1 << 20)
        .unwrap_err()
        .contains("limit"));
    assert!(feed(&f("until:xy"), b"aaaaaaaa", &[3], 5)
        .unwrap_err()
        .contains("limit"));
}

#[test]
fn framing_names_parse_and_errors_name_the_column() {
    assert_eq!("until:\\r\\n".parse(), Ok(Framing::Until(b"\r\n".to_vec())));
    assert_eq!("bytes:12".parse(), Ok(Framing::Bytes(12)));
    assert!("bytes:0"
        .parse::<Framing>()
        .unwrap_err()
        .contains("column 7"));
    assert!("until:ab\\q"
        .parse::<Framing>()
        .unwrap_err()
        .contains("column 10"));
    assert!("until:".parse::<Framing>().is_err());
    assert!("smtp"
        .parse::<Framing>()
        .unwrap_err()
        .contains("resp or http"));
    for s in [
        "echo",
        "line",
        "bytes:5",
        "len32",
        "until:END\\r\\n",
        "resp",
        "http",
    ] {
        assert_eq!(s.parse::<Framing>().unwrap().to_string(), s);
    }
}

#[test]
fn judge_and_escape() {
    assert_eq!(judge(b"+PONG\r\n", false, None), Outcome::Ok);
    assert_eq!(judge(b"-ERR x\r\n", true, None), Outcome::ErrorReply);
    assert_eq!(judge(b"-ERR x\r\n", true, Some(b"-ERR")), Outcome::Ok);
    assert_eq!(judge(b"+PONG\r\n", false, Some(b"+OK")), Outcome::Mismatch);
    assert_eq!(
        escaped(b"a\r\n\t\\\0\x7f\xff", 80),
        "a\\r\\n\\t\\\\\\0\\x7f\\xff"
    );
    let long = escaped(&[b'z'; 200], 80);
    assert!(long.starts_with(&"z".repeat(80)) && long.ends_with('…') && long.len() == 83);
}

proptest! {
    #[test]
    fn lines_any_cuts(lines in prop::collection::vec("[^\n]{0,30}", 1..20),
                      cuts in prop::collection::vec(any::<usize>(), 0..8)) {
        let bytes: Vec<u8> = lines.iter().flat_map(|l| format!("{l}\n").into_bytes()).collect();
        let want: Vec<Seen> = lines.iter().map(|l| ok(l.len() + 1)).collect();
        prop_assert_eq!(feed(&Framing::Line, &bytes, &cuts, MAX_REPLY), Ok(want));
    }

    #[test]
    fn len32_any_cuts(msgs in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 1..10),
                      cuts in prop::collection::vec(any::<usize>(), 0..8)) {
        let mut bytes = Vec::new();
        for m in &msgs {
            bytes.extend_from_slice(&(m.len() as u32).to_be_bytes());
            bytes.extend_from_slice(m);
        }
        let want: Vec<Seen> = msgs.iter().map(|m| ok(m.len() + 4)).collect();
        prop_assert_eq!(feed(&Framing::Len32, &bytes, &cuts, MAX_REPLY), Ok(want));
    }

    #[test]
    fn until_any_cuts(parts in prop::collection::vec("[ab]{0,12}", 1..10),
                      cuts in prop::collection::vec(any::<usize>(), 0..8)) {
        // The delimiter "aab": the oracle is a plain search from each start.
        let bytes: Vec<u8> = parts.iter().flat_map(|p| format!("{p}aab").into_bytes()).collect();
        let mut want = Vec::new();
        let mut at = 0;
        while let Some(k) = bytes[at..].windows(3).position(|w| w == b"aab") {
            want.push(ok(k + 3));
            at += k + 3;
        }
        let f = Framing::Until(b"aab".to_vec());
        prop_assert_eq!(feed(&f, &bytes, &cuts, MAX_REPLY), Ok(want));
    }

    #[test]
    fn any_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300),
                             cuts in prop::collection::vec(any::<usize>(), 0..6),
                             which in 0usize..6, max in 1usize..400) {
        let f = [Framing::Line, Framing::Bytes(7), Framing::Len32,
                 Framing::Until(b"\r\n".to_vec()), Framing::Resp, Framing::Http][which].clone();
        let _ = feed(&f, &bytes, &cuts, max);
    }
}

#[path = "reply_tests_http.rs"]
mod http_oracle;
#[path = "reply_tests_resp.rs"]
mod resp_oracle;
