//! Independent oracles for the tests: what each TCP service answers to a
//! whole client stream, written from docs/protocol.md ("Services",
//! "Framing") for the tests alone. They share no code with the server —
//! not `InBuf`, not `Framing::decode`/`encode`, not the services — so a
//! test that compares the server's answers with theirs can catch a bug in
//! the code under test instead of reproducing it.

use crate::framing::Framing;

/// The bytes `service` (`echo`, `upper`, `count`) sends back over
/// `framing` for the client stream `input`, with frames limited to
/// `max_frame` bytes. `at_eof`: the client half-closed after `input` (a
/// last line without its `\n` is still a frame, a character cut by the
/// FIN goes back raw); otherwise an incomplete frame at the end is not
/// answered (yet). A frame over the limit ends the answers: the server
/// closes there (its `ERR frame too long` line is not included).
pub(crate) fn replies(
    service: &str,
    framing: Framing,
    input: &[u8],
    max_frame: usize,
    at_eof: bool,
) -> Vec<u8> {
    if framing == Framing::Raw {
        // A stream transform: no frames, the answer does not depend on
        // how the stream was cut.
        return match service {
            "echo" => input.to_vec(),
            "upper" => upper(input, at_eof),
            _ => panic!("oracle: {service} over raw depends on the reads"),
        };
    }
    let mut wire = Vec::new();
    for frame in frames(framing, input, max_frame, at_eof) {
        let answer = answer(service, frame);
        if framing == Framing::Line {
            wire.extend_from_slice(&answer);
            wire.push(b'\n');
        } else {
            wire.extend_from_slice(&(answer.len() as u32).to_be_bytes());
            wire.extend_from_slice(&answer);
        }
    }
    wire
}

/// What `service` answers to one whole frame (or UDP datagram).
pub(crate) fn answer(service: &str, frame: &[u8]) -> Vec<u8> {
    match service {
        "echo" => frame.to_vec(),
        "upper" => upper(frame, true),
        "count" => frame
            .iter()
            .filter(|&&b| b == b's')
            .count()
            .to_string()
            .into_bytes(),
        _ => panic!("oracle: no model of {service}"),
    }
}

/// What a member of a TCP `chat` room over `line` receives when `from`
/// says `text` (docs/protocol.md: `IP:PORT: text`), framed.
pub(crate) fn chat_line(from: std::net::SocketAddr, text: &[u8]) -> Vec<u8> {
    let mut v = format!("{from}: ").into_bytes();
    v.extend_from_slice(text);
    v.push(b'\n');
    v
}

/// The payloads of the whole frames in `input`, up to the first one over
/// the limit.
fn frames(framing: Framing, input: &[u8], max: usize, at_eof: bool) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = input;
    if framing == Framing::Len32 {
        // A 4-byte big-endian length, then that many bytes; over the
        // limit is refused from the length alone; incomplete at EOF is
        // dropped.
        while rest.len() >= 4 {
            let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
            if len > max || rest.len() < 4 + len {
                break;
            }
            out.push(&rest[4..4 + len]);
            rest = &rest[4 + len..];
        }
        return out;
    }
    // line: up to and including `\n`, one `\r` before it dropped.
    loop {
        let (line, ended) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], true),
            None => (rest, false),
        };
        if !ended {
            // Too long as soon as the content must exceed the limit,
            // whatever comes next (a last `\r` may still be dropped).
            let must_exceed =
                line.len() > max + 1 || (line.len() == max + 1 && line.last() != Some(&b'\r'));
            if must_exceed || !at_eof || line.is_empty() {
                return out;
            }
        }
        let content = line.strip_suffix(b"\r").unwrap_or(line);
        if content.len() > max {
            return out;
        }
        out.push(content);
        if !ended {
            return out;
        }
        rest = &rest[line.len() + 1..];
    }
}

/// `upper` over a stream: UTF-8 uppercased with Unicode's full mapping,
/// bytes that are not UTF-8 unchanged; a character cut at the end is held
/// (not answered) unless the stream ended, then it goes back raw.
fn upper(input: &[u8], at_eof: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = input;
    loop {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                out.extend_from_slice(s.to_uppercase().as_bytes());
                return out;
            }
            Err(e) => {
                let (good, bad) = rest.split_at(e.valid_up_to());
                let good = std::str::from_utf8(good).expect("valid up to here");
                out.extend_from_slice(good.to_uppercase().as_bytes());
                match e.error_len() {
                    Some(n) => {
                        out.extend_from_slice(&bad[..n]);
                        rest = &bad[n..];
                    }
                    None => {
                        if at_eof {
                            out.extend_from_slice(bad);
                        }
                        return out;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_examples_of_the_protocol_doc() {
        let r = |s, f, i: &[u8], eof| replies(s, f, i, 64, eof);
        assert_eq!(r("count", Framing::Line, b"mississippi\n", true), b"4\n");
        assert_eq!(r("count", Framing::Line, b"ss\r\nx", false), b"2\n");
        assert_eq!(r("count", Framing::Line, b"ss\r\nsss\r", true), b"2\n3\n");
        assert_eq!(
            r("upper", Framing::Raw, "straße ǆ".as_bytes(), true),
            "STRASSE Ǆ".as_bytes()
        );
        assert_eq!(r("upper", Framing::Raw, b"ab\xc3", false), b"AB");
        assert_eq!(r("upper", Framing::Raw, b"ab\xc3", true), b"AB\xc3");
        assert_eq!(r("upper", Framing::Raw, b"a\xffb", false), b"A\xffB");
        assert_eq!(
            r("echo", Framing::Len32, b"\0\0\0\x02hi\0\0\0\x05abc", true),
            b"\0\0\0\x02hi"
        );
        // Over the limit (64): nothing from that frame on.
        let long = [&b"ss\n"[..], &[b'x'; 65], b"\nss\n"].concat();
        assert_eq!(r("count", Framing::Line, &long, true), b"2\n");
    }
}
