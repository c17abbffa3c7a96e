use super::*;
use crate::load::protocol::{Protocol, Verdict};

fn framed(reqs: &[&str], reply: &str, expect: Option<&[u8]>, udp: bool) -> Framed {
    let scheme = if udp { "udp" } else { "tcp" };
    let cfg = LoadConfig {
        endpoints: vec![format!("{scheme}://127.0.0.1:9").parse().unwrap()],
        request: reqs.iter().map(|r| Template::parse(r).unwrap()).collect(),
        reply: Some(reply.parse().unwrap()),
        expect: expect.map(<[u8]>::to_vec),
        ..LoadConfig::default()
    };
    Framed::new(&cfg, 7, 0)
}

#[test]
fn templates_in_turn_and_a_connection_starting_over_repeats_itself() {
    let mut f = framed(&["A{seq}\\n", "B{conn}{key:100}\\n"], "line", None, false);
    let mut out = Vec::new();
    for seq in 0..3 {
        f.request(5, seq, &mut out);
    }
    let first = out.clone();
    assert!(
        out.starts_with(b"A0\nB5") && out.ends_with(b"A2\n"),
        "{out:?}"
    );
    out.clear();
    for seq in 0..3 {
        f.request(5, seq, &mut out);
    }
    assert_eq!(out, first, "seq 0 restarts the connection's random stream");
}

#[test]
fn replies_are_judged_pushes_skipped_and_tallied() {
    let mut f = framed(&["GET k\\r\\n"], "resp", Some(b"$"), false);
    assert_eq!(f.reply(0, 0, 0, b"$3\r\nab"), Verdict::Partial(0));
    assert_eq!(
        f.reply(0, 0, 0, b">1\r\n+p\r\n$3\r\nabc\r\n+x"),
        Verdict::Ok(17)
    );
    assert!(matches!(
        f.reply(0, 1, 0, b"-ERR x\r\n"),
        Verdict::Error { len: 8, .. }
    ));
    assert_eq!(f.reply(0, 1, 0, b">1\r\n+p\r\n"), Verdict::Partial(8));
    assert!(
        matches!(f.reply(0, 2, 0, b"garbage\r\n"), Verdict::Broken(w) if w.starts_with("malformed resp reply"))
    );
    let t = f.tally.clone();
    assert_eq!((t.ok, t.mismatched, t.error_replies), (1, 1, 0));
    assert_eq!(
        t.first_wrong,
        Some(("-ERR x\\r\\n".to_string(), "tcp://127.0.0.1:9".to_string()))
    );
    // Without --expect, a RESP error is an error reply.
    let mut g = framed(&["x"], "resp", None, false);
    assert!(matches!(
        g.reply(0, 0, 0, b"-ERR\r\n"),
        Verdict::Error { .. }
    ));
    assert_eq!(g.tally.error_replies, 1);
}

#[test]
fn http_close_is_reported_once() {
    let mut f = framed(&["GET / HTTP/1.1\\r\\n\\r\\n"], "http", None, false);
    let r = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(f.reply(3, 0, 0, r), Verdict::Ok(r.len()));
    assert!(f.closes_after(3));
    assert!(!f.closes_after(3));
    assert_eq!(f.tally.closes, 1);
}

#[test]
fn a_datagram_is_one_whole_reply() {
    let mut f = framed(&["hi\\n"], "line", Some(b"hi"), true);
    assert_eq!(f.reply(0, 0, 0, b"hi\n"), Verdict::Ok(3));
    assert!(matches!(f.reply(0, 0, 0, b"hi"), Verdict::Error { .. }));
    assert!(matches!(f.reply(0, 0, 0, b"HI\n"), Verdict::Error { .. }));
}
