//! `metrics`: `GET /metrics` answers the server's counters in the
//! Prometheus text format (0.0.4), over HTTP/1.1, then closes — a listener
//! of the loop like any other (`--listen metrics=tcp://HOST:PORT`), not a
//! thread of its own.
//!
//! ```text
//!   bytes ─▶ httparse: head complete? ─no─▶ hold them (≤ 8 KiB, else 431)
//!                         │yes
//!                         ▼
//!            path /metrics? ─no─▶ 404     GET? ─no─▶ 405 (Allow: GET)
//!                         │yes                 │yes
//!                         ▼                    ▼
//!                       200 + Counters::prometheus()  ─▶ close
//! ```
//!
//! Every answer ends the connection (`Connection: close`): what else the
//! client sends is read and thrown away while the answer drains. The head
//! is parsed again from its start as bytes come in; the 8 KiB bound keeps
//! that cheap, and `--frame-timeout` and `--max-conns` apply as to any
//! listener. A scrape costs what the number of series costs, never what
//! the number of connections does.

use std::net::SocketAddr;

use super::{ConnId, Outbox, Service};
use crate::framing::Framing;
use crate::stats::{Counters, CONTENT_TYPE};

/// The name `--listen metrics=…` uses.
pub const NAME: &str = "metrics";

/// The longest request head accepted; longer is answered 431.
pub(crate) const MAX_HEAD: usize = 8 * 1024;

/// Headers accepted in one request (more: 431, as for a head too long).
const MAX_HEADERS: usize = 64;

/// Whether `spec` can be a metrics listener: TCP, and no framing (HTTP
/// draws its own boundaries). Else the usage error to print.
pub fn check(spec: &crate::ListenSpec) -> Result<(), String> {
    if spec.endpoint.proto != crate::Proto::Tcp {
        return Err(format!(
            "{NAME} is served over tcp:// only, not {}",
            spec.endpoint
        ));
    }
    if spec.framing.is_some() {
        return Err(format!("{NAME} takes no ?framing= (it speaks HTTP)"));
    }
    Ok(())
}

/// The `metrics` service: see the module docs.
#[derive(Debug)]
pub struct Metrics {
    counters: Counters,
}

impl Metrics {
    /// Serve these counters (every worker's, with `--workers`).
    pub fn new(counters: Counters) -> Metrics {
        Metrics { counters }
    }

    /// The answer to the request at the front of `bytes`, or `None` if its
    /// head is not complete yet (and may still be).
    fn answer(&self, bytes: &[u8], at_eof: bool, out: &mut Outbox) -> Option<()> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        let status = match req.parse(bytes) {
            Ok(httparse::Status::Complete(n)) if n <= MAX_HEAD => {
                let path = req.path.unwrap_or("");
                let path = path.split_once('?').map_or(path, |(p, _)| p);
                if path != "/metrics" {
                    Status::NotFound
                } else if req.method != Some("GET") {
                    Status::MethodNotAllowed
                } else {
                    Status::Ok
                }
            }
            Ok(httparse::Status::Complete(_)) => Status::HeadTooLarge,
            Ok(httparse::Status::Partial) if bytes.len() > MAX_HEAD => Status::HeadTooLarge,
            Ok(httparse::Status::Partial) if !at_eof => return None,
            Ok(httparse::Status::Partial) => Status::BadRequest,
            Err(httparse::Error::TooManyHeaders) => Status::HeadTooLarge,
            Err(_) => Status::BadRequest,
        };
        out.reply_with(|v| self.write(status, v));
        out.close_after();
        Some(())
    }

    fn write(&self, status: Status, v: &mut Vec<u8>) {
        let (line, kind, body) = match status {
            Status::Ok => ("200 OK", CONTENT_TYPE, self.counters.prometheus()),
            Status::NotFound => ("404 Not Found", TEXT, "not found: try /metrics\n".into()),
            Status::MethodNotAllowed => ("405 Method Not Allowed", TEXT, "only GET\n".into()),
            Status::HeadTooLarge => (
                "431 Request Header Fields Too Large",
                TEXT,
                "request head over 8 KiB\n".into(),
            ),
            Status::BadRequest => ("400 Bad Request", TEXT, "bad request\n".into()),
        };
        let allow = if status == Status::MethodNotAllowed {
            "Allow: GET\r\n"
        } else {
            ""
        };
        v.extend_from_slice(
            format!(
                "HTTP/1.1 {line}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\n{allow}Connection: close\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        );
        v.extend_from_slice(body.as_bytes());
    }
}

/// The `Content-Type` of the error answers.
const TEXT: &str = "text/plain; charset=utf-8";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Ok,
    NotFound,
    MethodNotAllowed,
    HeadTooLarge,
    BadRequest,
}

impl Service for Metrics {
    /// The bytes as they come: HTTP draws its own boundaries.
    fn default_framing(&self) -> Framing {
        Framing::Raw
    }

    /// One answers for every worker (it reads all their counters).
    fn shared_state(&self) -> bool {
        true
    }

    /// Consumes nothing until the head is complete (the loop holds the
    /// bytes and hands them back with the next read), then everything.
    fn on_bytes(
        &mut self,
        _conn: ConnId,
        _peer: SocketAddr,
        bytes: &[u8],
        at_eof: bool,
        out: &mut Outbox,
    ) -> usize {
        match self.answer(bytes, at_eof, out) {
            Some(()) => bytes.len(),
            None => 0,
        }
    }

    /// A frame (a framing other than raw, or a datagram) is taken as a
    /// whole request.
    fn on_frame(&mut self, _conn: ConnId, _peer: SocketAddr, frame: &[u8], out: &mut Outbox) {
        self.answer(frame, true, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{ListenerInfo, ServerCounters};
    use std::sync::Arc;

    fn metrics() -> Metrics {
        let c = Counters::default();
        c.push(Arc::new(ServerCounters::new(vec![ListenerInfo {
            service: "echo".into(),
            endpoint: "tcp://127.0.0.1:7000".parse().unwrap(),
        }])));
        Metrics::new(c)
    }

    /// Feed `parts` as successive reads; the answer, and whether the
    /// service asked to close.
    fn ask(parts: &[&[u8]]) -> (String, bool) {
        let mut m = metrics();
        let peer = "127.0.0.1:5000".parse().unwrap();
        let mut held = Vec::new();
        let mut out = Outbox::default();
        for (i, p) in parts.iter().enumerate() {
            held.extend_from_slice(p);
            let took = m.on_bytes(
                ConnId(1),
                peer,
                &held,
                i + 1 == parts.len() && p.is_empty(),
                &mut out,
            );
            held.drain(..took);
            if !out.is_empty() {
                break;
            }
        }
        let text: Vec<u8> = out.messages().flat_map(|(_, b)| b.to_vec()).collect();
        (String::from_utf8(text).unwrap(), out.closes())
    }

    #[test]
    fn get_metrics_is_200_with_the_exposition_and_closes() {
        let (r, close) = ask(&[b"GET /metrics HTTP/1.1\r\nHost: x\r\n", b"\r\n"]);
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
        assert!(r.contains("\r\nContent-Type: text/plain; version=0.0.4\r\n"));
        assert!(r.contains("\r\nConnection: close\r\n"));
        let body = r.split_once("\r\n\r\n").unwrap().1;
        assert!(r.contains(&format!("\r\nContent-Length: {}\r\n", body.len())));
        assert!(body.contains("# TYPE sockloop_connections_accepted_total counter\n"));
        assert!(close);
    }

    #[test]
    fn other_paths_404_other_methods_405_bad_requests_400() {
        assert!(ask(&[b"GET / HTTP/1.1\r\n\r\n"])
            .0
            .starts_with("HTTP/1.1 404 "));
        assert!(ask(&[b"GET /metricsx HTTP/1.1\r\n\r\n"])
            .0
            .starts_with("HTTP/1.1 404 "));
        let (r, close) = ask(&[b"POST /metrics HTTP/1.1\r\n\r\n"]);
        assert!(r.starts_with("HTTP/1.1 405 ") && r.contains("\r\nAllow: GET\r\n") && close);
        assert!(ask(&[b"GET /metrics?x=1 HTTP/1.0\r\n\r\n"])
            .0
            .starts_with("HTTP/1.1 200 "));
        assert!(ask(&[b"\x16\x03\x01 hello\r\n\r\n"])
            .0
            .starts_with("HTTP/1.1 400 "));
        // The peer half-closed with the head unfinished.
        assert!(ask(&[b"GET /metr", b""]).0.starts_with("HTTP/1.1 400 "));
    }

    #[test]
    fn a_head_over_8_kib_is_431_as_soon_as_it_is_known() {
        let mut big = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
        big.resize(MAX_HEAD + 1, b'a');
        let (r, close) = ask(&[&big]);
        assert!(r.starts_with("HTTP/1.1 431 "), "{r}");
        assert!(close);
        // Within the limit it is still waited for.
        let mut m = metrics();
        let mut out = Outbox::default();
        let peer = "127.0.0.1:5000".parse().unwrap();
        assert_eq!(
            m.on_bytes(ConnId(1), peer, &big[..MAX_HEAD], false, &mut out),
            0
        );
        assert!(out.is_empty());
        // A complete head just over the limit, too.
        let mut head = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
        head.resize(MAX_HEAD - 3, b'a');
        head.extend_from_slice(b"\r\n\r\n");
        assert!(ask(&[&head]).0.starts_with("HTTP/1.1 431 "));
        let many: String = (0..MAX_HEADERS + 1)
            .map(|i| format!("H{i}: v\r\n"))
            .collect();
        let req = format!("GET /metrics HTTP/1.1\r\n{many}\r\n");
        assert!(ask(&[req.as_bytes()]).0.starts_with("HTTP/1.1 431 "));
    }
}
