//! RESP2/RESP3 values generated and encoded here, then decoded.

use super::super::*;
use super::{feed, Seen};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum V {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<V>>),
    Null,
    Bool(bool),
    Double(f64),
    Big(String),
    BlobError(Vec<u8>),
    Verbatim(Vec<u8>),
    Map(Vec<(V, V)>),
    Set(Vec<V>),
    Push(Vec<V>),
    Attr(Vec<(V, V)>, Box<V>),
}

fn encode(v: &V, out: &mut Vec<u8>) {
    let blob = |out: &mut Vec<u8>, t: char, b: &[u8]| {
        out.extend_from_slice(format!("{t}{}\r\n", b.len()).as_bytes());
        out.extend_from_slice(b);
        out.extend_from_slice(b"\r\n");
    };
    let agg = |out: &mut Vec<u8>, t: char, items: &[V]| {
        out.extend_from_slice(format!("{t}{}\r\n", items.len()).as_bytes());
        items.iter().for_each(|i| encode(i, out));
    };
    let pairs = |out: &mut Vec<u8>, t: char, kv: &[(V, V)]| {
        out.extend_from_slice(format!("{t}{}\r\n", kv.len()).as_bytes());
        for (k, v) in kv {
            encode(k, out);
            encode(v, out);
        }
    };
    match v {
        V::Simple(s) => out.extend_from_slice(format!("+{s}\r\n").as_bytes()),
        V::Error(s) => out.extend_from_slice(format!("-{s}\r\n").as_bytes()),
        V::Int(i) => out.extend_from_slice(format!(":{i}\r\n").as_bytes()),
        V::Bulk(None) => out.extend_from_slice(b"$-1\r\n"),
        V::Bulk(Some(b)) => blob(out, '$', b),
        V::Array(None) => out.extend_from_slice(b"*-1\r\n"),
        V::Array(Some(items)) => agg(out, '*', items),
        V::Null => out.extend_from_slice(b"_\r\n"),
        V::Bool(b) => out.extend_from_slice(if *b { b"#t\r\n" } else { b"#f\r\n" }),
        V::Double(d) => out.extend_from_slice(format!(",{d}\r\n").as_bytes()),
        V::Big(s) => out.extend_from_slice(format!("({s}\r\n").as_bytes()),
        V::BlobError(b) => blob(out, '!', b),
        V::Verbatim(b) => {
            let mut t = b"txt:".to_vec();
            t.extend_from_slice(b);
            blob(out, '=', &t)
        }
        V::Map(kv) => pairs(out, '%', kv),
        V::Set(items) => agg(out, '~', items),
        V::Push(items) => agg(out, '>', items),
        V::Attr(kv, inner) => {
            pairs(out, '|', kv);
            encode(inner, out);
        }
    }
}

fn value() -> impl Strategy<Value = V> {
    let leaf = prop_oneof![
        "[a-zA-Z0-9 ]{0,10}".prop_map(V::Simple),
        "ERR [a-z ]{0,10}".prop_map(V::Error),
        any::<i64>().prop_map(V::Int),
        prop::option::of(prop::collection::vec(any::<u8>(), 0..20)).prop_map(V::Bulk),
        Just(V::Null),
        any::<bool>().prop_map(V::Bool),
        any::<f64>().prop_map(V::Double),
        "-?[0-9]{1,40}".prop_map(V::Big),
        prop::collection::vec(any::<u8>(), 0..12).prop_map(V::BlobError),
        prop::collection::vec(any::<u8>(), 0..12).prop_map(V::Verbatim),
        Just(V::Array(None)),
    ];
    leaf.prop_recursive(5, 40, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(|v| V::Array(Some(v))),
            prop::collection::vec((inner.clone(), inner.clone()), 0..3).prop_map(V::Map),
            prop::collection::vec(inner.clone(), 0..4).prop_map(V::Set),
            prop::collection::vec(inner.clone(), 0..4).prop_map(V::Push),
            (
                prop::collection::vec((inner.clone(), inner.clone()), 1..3),
                inner
            )
                .prop_map(|(kv, v)| V::Attr(kv, Box::new(v))),
        ]
    })
}

/// What a top-level value is to the driver.
fn seen(v: &V, len: usize) -> Seen {
    match v {
        V::Attr(_, inner) => seen(inner, len),
        V::Push(_) => Seen::Skip(len),
        V::Error(_) | V::BlobError(_) => Seen::Reply {
            len,
            error: true,
            close: false,
        },
        _ => Seen::Reply {
            len,
            error: false,
            close: false,
        },
    }
}

proptest! {
    #[test]
    fn resp_values_any_cuts(values in prop::collection::vec(value(), 1..8),
                            cuts in prop::collection::vec(any::<usize>(), 0..10)) {
        let mut bytes = Vec::new();
        let mut want = Vec::new();
        for v in &values {
            let before = bytes.len();
            encode(v, &mut bytes);
            want.push(seen(v, bytes.len() - before));
        }
        prop_assert_eq!(feed(&Framing::Resp, &bytes, &cuts, MAX_REPLY), Ok(want));
    }

    #[test]
    fn resp_cut_short_is_never_a_reply(v in value(), cut in any::<usize>()) {
        let mut bytes = Vec::new();
        encode(&v, &mut bytes);
        let short = &bytes[..cut % bytes.len()];
        prop_assert!(matches!(Framing::Resp.decode(short, false, MAX_REPLY, 0), Decode::Need(_)));
    }
}

#[test]
fn resp_by_hand() {
    let d = |b: &[u8]| Framing::Resp.decode(b, false, 1 << 20, 0);
    assert_eq!(d(b"+PONG\r\n"), super::super::reply(7));
    assert!(matches!(
        d(b"-ERR unknown\r\n"),
        Decode::Reply { error: true, .. }
    ));
    assert_eq!(d(b"*2\r\n$3\r\nfoo\r\n"), Decode::Need(14));
    assert_eq!(d(b"$3\r\nfoo\r\n+OK\r\n"), super::super::reply(9));
    assert!(matches!(d(b"PONG\r\n"), Decode::Malformed(_)));
    assert!(matches!(d(b"+PONG\n"), Decode::Malformed(_)));
    assert!(matches!(d(b"$3\r\nfooXX"), Decode::Malformed(_)));
    assert!(matches!(d(b"$?\r\n"), Decode::Malformed(_)));
    assert!(matches!(d(b":12a\r\n"), Decode::Malformed(_)));
    assert!(matches!(d(b"*99999999999\r\n"), Decode::Malformed(_)));
    assert!(matches!(d(b"$99999999999\r\n"), Decode::Malformed(_)));
    // The limit holds for a value whose last line ends past it.
    let long = b"+aaaaaaaaaaaaaaaaaaaa\r\n";
    assert!(matches!(
        Framing::Resp.decode(long, false, 10, 0),
        Decode::Malformed(_)
    ));
    assert!(matches!(
        Framing::Resp.decode(long, false, 23, 0),
        Decode::Reply { len: 23, .. }
    ));
    // Deep nesting is a count, not recursion.
    let deep: Vec<u8> = b"*1\r\n"
        .repeat(100_000)
        .into_iter()
        .chain(*b":1\r\n")
        .collect();
    assert_eq!(
        Framing::Resp.decode(&deep, false, MAX_REPLY, 0),
        super::super::reply(deep.len())
    );
}

/// The integer reader as first written (validate, then `str::parse`).
fn int_reference(s: &[u8]) -> Option<i64> {
    let digits = s.strip_prefix(b"-").unwrap_or(s);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

proptest! {
    /// The digit-by-digit reader agrees with `str::parse` on any bytes,
    /// on any i64 written out, and just past either end of i64.
    #[test]
    fn resp_int_reads_as_parse_does(
        raw in proptest::collection::vec(any::<u8>(), 0..24),
        n: i64,
        digits in "-?[0-9]{0,21}",
        near in "-?[/-:]{0,6}",
    ) {
        prop_assert_eq!(resp::int(&raw), int_reference(&raw));
        let s = n.to_string();
        prop_assert_eq!(resp::int(s.as_bytes()), Some(n));
        prop_assert_eq!(resp::int(digits.as_bytes()), int_reference(digits.as_bytes()));
        // Digits and the bytes either side of them ('/' and ':').
        prop_assert_eq!(resp::int(near.as_bytes()), int_reference(near.as_bytes()));
        for edge in ["9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809", "-", "", "+1", "-0", "007"] {
            prop_assert_eq!(resp::int(edge.as_bytes()), int_reference(edge.as_bytes()), "{}", edge);
        }
    }
}
