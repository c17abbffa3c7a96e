//! The driver with a framed protocol (the seam issue 19's protocols plug
//! into): replies cut across reads are kept until whole, an `Error`
//! verdict counts and the connection goes on.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::time::Duration;

use super::Driver;
use crate::load::progress::Progress;
use crate::load::protocol::{Protocol, Verdict};
use crate::load::{LoadConfig, Stop};

/// Requests `q<seq>\n`; replies `a<seq>\n`, whole lines only.
struct Lines;

impl Protocol for Lines {
    fn request(&mut self, _conn: usize, seq: u64, out: &mut Vec<u8>) {
        out.extend_from_slice(format!("q{seq}\n").as_bytes());
    }

    fn reply(&mut self, _conn: usize, seq: u64, _off: u64, buf: &[u8]) -> Verdict {
        let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
            return Verdict::Partial(0);
        };
        if buf[..=nl] == *format!("a{seq}\n").as_bytes() {
            Verdict::Ok(nl + 1)
        } else {
            Verdict::Error {
                len: nl + 1,
                why: "not the answer".into(),
            }
        }
    }

    fn silence(&self) -> &'static str {
        "not a line server"
    }
}

/// A server answering `q<n>` with `a<n>`, each answer in two writes a
/// moment apart (so it arrives cut), except that every answer to a
/// multiple of 5 is wrong.
fn line_server() -> std::net::SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            std::thread::spawn(move || {
                let _ = s.set_nodelay(true);
                let r = BufReader::new(s.try_clone().unwrap());
                for line in r.lines() {
                    let Ok(line) = line else { return };
                    let n: u64 = line[1..].parse().unwrap();
                    let answer = if n % 5 == 0 && n > 0 {
                        "x".into()
                    } else {
                        format!("a{n}")
                    };
                    let _ = s.write_all(&answer.as_bytes()[..1]);
                    std::thread::sleep(Duration::from_micros(300));
                    if s.write_all(format!("{}\n", &answer[1..]).as_bytes())
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[test]
fn a_framed_protocol_gets_whole_replies_and_errors_do_not_end_a_connection() {
    let addr = line_server();
    let cfg = LoadConfig {
        endpoints: vec![format!("tcp://{addr}").parse().unwrap()],
        conns: 2,
        pipeline: 3,
        duration: Duration::from_millis(400),
        ..LoadConfig::default()
    };
    let d = Driver::new(
        &cfg,
        Lines,
        0,
        Vec::new(),
        Progress::Print(false),
        &Stop::new(),
    )
    .unwrap();
    let r = d.run().unwrap();
    assert!(r.messages > 20, "{}", r.to_table());
    assert_eq!(r.lost, 0, "{}", r.to_table());
    // Every fifth answer (after the first) is wrong, and only those.
    let errors = r.errors as f64;
    let all = (r.messages + r.errors) as f64;
    assert!(
        errors > 0.0 && (errors / all - 0.2).abs() < 0.03,
        "{}",
        r.to_table()
    );
    assert!(r.to_table().contains("not the answer"), "{}", r.to_table());
}

/// A driver paces its connections at the whole test's due times for their
/// global numbers: shard 1/2 of 10 connections at 1,000 msg/s, on the
/// second of its threads (its local connections from 2), sends its first
/// connection's (global 5) first message 5 ms in and its next 10 ms later.
#[test]
fn a_shards_thread_sends_at_the_whole_schedules_times() {
    use crate::load::shard::{Schedule, Shard};
    let whole = LoadConfig {
        conns: 10,
        rate: Some(1000.0),
        shard: Some(Shard { index: 1, count: 2 }),
        ..LoadConfig::default()
    };
    let part = whole.shard_part();
    let sched = Schedule {
        conns: 10,
        rate: 1000.0,
    };
    let mut due = super::Due::new(sched);
    due.start(7, [(2, part.global_conn(2)), (3, part.global_conn(3))]);
    let at = |i: usize, j| due.at(i + 2, j) - 7;
    assert_eq!(at(0, 0), 5_000_000);
    assert_eq!(at(0, 1), 15_000_000);
    assert_eq!(at(1, 0), 7_000_000);
}
