//! HTTP/1.1 responses generated and written out here, then decoded.

use super::super::*;
use super::{feed, Seen};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Body {
    Length(Vec<u8>),
    /// Chunks (none empty), an extension on the first, trailers.
    Chunked(Vec<Vec<u8>>, bool, Vec<(String, String)>),
    Empty,
}

#[derive(Clone, Debug)]
struct Resp {
    interim: Option<u16>,
    code: u16,
    close: bool,
    headers: Vec<(String, String)>,
    body: Body,
}

fn write(r: &Resp, out: &mut Vec<u8>) -> Vec<Seen> {
    let mut seen = Vec::new();
    if let Some(c) = r.interim {
        let s = format!("HTTP/1.1 {c} Continue\r\nX-I: 1\r\n\r\n");
        out.extend_from_slice(s.as_bytes());
        seen.push(Seen::Skip(s.len()));
    }
    let start = out.len();
    let code = match r.body {
        Body::Empty => 204,
        _ => r.code,
    };
    out.extend_from_slice(format!("HTTP/1.1 {code} Whatever\r\n").as_bytes());
    for (k, v) in &r.headers {
        out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    if r.close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    match &r.body {
        Body::Length(b) => {
            out.extend_from_slice(format!("content-length: {}\r\n\r\n", b.len()).as_bytes());
            out.extend_from_slice(b);
        }
        Body::Chunked(chunks, ext, trailers) => {
            out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
            for (i, c) in chunks.iter().enumerate() {
                let e = if *ext && i == 0 { ";name=value" } else { "" };
                out.extend_from_slice(format!("{:X}{e}\r\n", c.len()).as_bytes());
                out.extend_from_slice(c);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n");
            for (k, v) in trailers {
                out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
            }
            out.extend_from_slice(b"\r\n");
        }
        Body::Empty => out.extend_from_slice(b"\r\n"),
    }
    seen.push(Seen::Reply {
        len: out.len() - start,
        error: code >= 400,
        close: r.close,
    });
    seen
}

fn header() -> impl Strategy<Value = (String, String)> {
    ("X-[A-Za-z]{1,8}", "[ -~]{0,20}").prop_map(|(k, v)| (k, v.trim().to_string()))
}

fn response() -> impl Strategy<Value = Resp> {
    let body = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..100).prop_map(Body::Length),
        (
            prop::collection::vec(prop::collection::vec(any::<u8>(), 1..40), 0..5),
            any::<bool>(),
            prop::collection::vec(header(), 0..3)
        )
            .prop_map(|(c, e, t)| Body::Chunked(c, e, t)),
        Just(Body::Empty),
    ];
    (
        prop::option::of(prop_oneof![Just(100u16), Just(103)]),
        prop_oneof![Just(200u16), Just(201), Just(301), Just(404), Just(500)],
        any::<bool>(),
        prop::collection::vec(header(), 0..5),
        body,
    )
        .prop_map(|(interim, code, close, headers, body)| Resp {
            interim,
            code,
            close,
            headers,
            body,
        })
}

proptest! {
    #[test]
    fn http_responses_any_cuts(rs in prop::collection::vec(response(), 1..6),
                               cuts in prop::collection::vec(any::<usize>(), 0..10)) {
        let mut bytes = Vec::new();
        let mut want = Vec::new();
        for r in &rs {
            want.extend(write(r, &mut bytes));
        }
        prop_assert_eq!(feed(&Framing::Http, &bytes, &cuts, MAX_REPLY), Ok(want));
    }
}

#[test]
fn http_by_hand() {
    let d = |b: &[u8], eof| Framing::Http.decode(b, eof, 1 << 20, 0);
    let r = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";
    assert_eq!(d(r, false), super::super::reply(r.len()));
    assert_eq!(d(&r[..r.len() - 1], false), Decode::Need(r.len()));
    // HTTP/1.0 closes unless keep-alive; no length: until the close.
    let r10 = b"HTTP/1.0 200 OK\r\n\r\nbody";
    assert_eq!(d(r10, false), Decode::Need(r10.len() + 1));
    assert_eq!(
        d(r10, true),
        Decode::Reply {
            len: r10.len(),
            error: false,
            close: true
        }
    );
    let ka = b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n";
    assert!(matches!(d(ka, false), Decode::Reply { close: false, .. }));
    assert!(matches!(
        d(b"HTTP/1.1 404 No\r\nContent-Length: 0\r\n\r\n", false),
        Decode::Reply { error: true, .. }
    ));
    assert!(matches!(
        d(b"SSH-2.0-OpenSSH\r\n\r\n", false),
        Decode::Malformed(_)
    ));
    assert!(matches!(
        d(
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            false
        ),
        Decode::Malformed(_)
    ));
    assert!(matches!(
        d(
            b"HTTP/1.1 200 OK\r\nContent-Length: 99999999\r\n\r\n",
            false
        ),
        Decode::Malformed(_)
    ));
    assert!(matches!(
        d(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            false
        ),
        Decode::Malformed(_)
    ));
    assert!(matches!(
        d(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXY",
            false
        ),
        Decode::Malformed(_)
    ));
    assert!(matches!(
        d(b"HTTP/1.1 101 Up\r\n\r\n", false),
        Decode::Malformed(_)
    ));
    let huge_head = [b"HTTP/1.1 200 OK\r\nX: ".as_slice(), &[b'a'; 70_000]].concat();
    assert!(matches!(d(&huge_head, false), Decode::Malformed(_)));
}
