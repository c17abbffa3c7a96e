//! Framing over real sockets: where frames begin and end however the
//! bytes are cut, and what happens to a frame that is too long.

mod common;

use std::io::Write;
use std::net::Shutdown;

use common::*;
use sockloop::Options;

fn opts_max_frame(n: usize) -> Options {
    Options {
        max_frame: n,
        ..Options::default()
    }
}

#[test]
fn mississippi_has_four_s() {
    let srv = serve(&["count=tcp://127.0.0.1:0"], Options::default());
    let mut s = connect(srv.addrs[0]);
    s.write_all(b"mississippi\n").unwrap();
    assert_eq!(read_n(&mut s, 2), b"4\n");
}

#[test]
fn several_lines_in_one_send_get_one_reply_each() {
    let srv = serve(&["count=tcp://127.0.0.1:0"], Options::default());
    let mut s = connect(srv.addrs[0]);
    s.write_all(b"s\nss\n\nsss\n").unwrap();
    assert_eq!(read_n(&mut s, 8), b"1\n2\n0\n3\n");
}

#[test]
fn one_line_over_several_sends_gets_one_reply() {
    let srv = serve(&["count=tcp://127.0.0.1:0"], Options::default());
    let mut s = connect(srv.addrs[0]);
    s.set_nodelay(true).unwrap();
    for piece in [&b"mis"[..], b"sis", b"sip", b"pi\n"] {
        s.write_all(piece).unwrap();
    }
    // Had the server answered a piece, the first reply would not be "4".
    s.write_all(b"s\n").unwrap();
    assert_eq!(read_n(&mut s, 4), b"4\n1\n");
}

#[test]
fn crlf_line_endings_drop_the_cr() {
    let srv = serve(
        &[
            "echo=tcp://127.0.0.1:0?framing=line",
            "upper=tcp://127.0.0.1:0?framing=line",
        ],
        Options::default(),
    );
    let mut e = connect(srv.addrs[0]);
    e.write_all(b"ss\r\nx\r\n").unwrap();
    assert_eq!(read_n(&mut e, 5), b"ss\nx\n");
    let mut u = connect(srv.addrs[1]);
    u.write_all(b"abc\r\n").unwrap();
    assert_eq!(read_n(&mut u, 4), b"ABC\n");
}

#[test]
fn last_line_without_newline_counts_at_half_close() {
    let srv = serve(&["count=tcp://127.0.0.1:0"], Options::default());
    let mut s = connect(srv.addrs[0]);
    s.write_all(b"s\nsss").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_eof(&mut s), b"1\n3\n");
}

#[test]
fn len32_frames_as_python_struct_pack_makes_them() {
    let srv = serve(
        &[
            "count=tcp://127.0.0.1:0?framing=len32",
            "echo=tcp://127.0.0.1:0?framing=len32",
        ],
        Options::default(),
    );
    let mut s = connect(srv.addrs[0]);
    // struct.pack('!I', 11) + b'mississippi', then an empty frame, in one send.
    s.write_all(b"\x00\x00\x00\x0bmississippi\x00\x00\x00\x00")
        .unwrap();
    assert_eq!(read_n(&mut s, 10), b"\x00\x00\x00\x014\x00\x00\x00\x010");
    // A header cut across sends.
    let mut e = connect(srv.addrs[1]);
    e.write_all(b"\x00\x00").unwrap();
    e.write_all(b"\x00\x03a\nb").unwrap();
    assert_eq!(read_n(&mut e, 7), b"\x00\x00\x00\x03a\nb");
}

#[test]
fn line_too_long_gets_an_error_line_then_close() {
    let srv = serve(&["count=tcp://127.0.0.1:0"], opts_max_frame(10));
    // Exactly the limit is fine, `\r` not counted.
    let mut ok = connect(srv.addrs[0]);
    ok.write_all(b"ssssssssss\r\n").unwrap();
    assert_eq!(read_n(&mut ok, 3), b"10\n");
    // One more byte, and no newline yet: refused as soon as it is known.
    let mut s = connect(srv.addrs[0]);
    s.write_all(b"sssssssssss").unwrap();
    assert_eq!(read_to_eof(&mut s), b"ERR frame too long\n");
    // The server goes on serving everyone else.
    ok.write_all(b"s\n").unwrap();
    assert_eq!(read_n(&mut ok, 2), b"1\n");
}

#[test]
fn len32_over_the_limit_closes_without_a_word() {
    let srv = serve(
        &["echo=tcp://127.0.0.1:0?framing=len32"],
        opts_max_frame(100),
    );
    let mut s = connect(srv.addrs[0]);
    s.write_all(b"\x00\x00\x00\x65").unwrap(); // 101
    assert_eq!(read_to_eof(&mut s), b"");
}

#[test]
fn replies_owed_before_a_too_long_line_are_delivered() {
    let srv = serve(&["count=tcp://127.0.0.1:0"], opts_max_frame(4));
    let mut s = connect(srv.addrs[0]);
    s.write_all(b"ss\nsssssss\n").unwrap();
    assert_eq!(read_to_eof(&mut s), b"2\nERR frame too long\n");
}
