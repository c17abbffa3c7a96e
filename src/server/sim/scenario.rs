//! One seed's scenario: the family it tests, the service, framing and
//! options it picks, its clients and faults, and the world and server it
//! builds (`Sim::new`). turns.rs runs it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

use super::checks;
use super::clients::{requests, Client, Kind};
use super::world::{Faults, Rng, SimWorld};
use crate::framing::Framing;
use crate::options::Options;
use crate::server::Server;
use crate::service;

/// What a seed tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Family {
    /// echo/upper/count × raw/line/len32: good clients, half-closers,
    /// resets, hogs.
    Streams,
    /// Idlers and tricklers beside good clients.
    Timeouts,
    /// A chat room: members and one stuck member.
    Chat,
    /// Streams, with a shutdown and its grace.
    Shutdown,
    /// More clients than `--max-conns`.
    MaxConns,
    /// UDP clients.
    Udp,
    /// One member floods a chat room with tiny lines (heavy: not in CI's
    /// mix).
    Flood,
}

const MIXED: [Family; 6] = [
    Family::Streams,
    Family::Timeouts,
    Family::Chat,
    Family::Shutdown,
    Family::MaxConns,
    Family::Udp,
];

/// A UDP client: its datagrams, in order; from a guarded port at times,
/// some empty, one too big to answer (`upper`).
#[derive(Debug)]
pub(crate) struct UdpClient {
    pub addr: SocketAddr,
    pub datagrams: Vec<Vec<u8>>,
    pub sent: usize,
    pub next_at: u64,
}

/// The source ports the server's reflection guard refuses
/// (docs/protocol.md), written out here apart from the server's own list.
const GUARDED_PORTS: [u16; 6] = [0, 7, 9, 13, 19, 37];

impl UdpClient {
    /// Whether its port is one the guard refuses: owed no answer.
    pub(crate) fn guarded(&self) -> bool {
        GUARDED_PORTS.contains(&self.addr.port())
    }
}

/// One seed's world, server, clients and what the checks keep.
pub(crate) struct Sim {
    pub family: Family,
    pub service: &'static str,
    pub framing: Framing,
    pub opts: Options,
    pub world: SimWorld,
    pub server: Server<SimWorld>,
    pub rng: Rng,
    pub clients: Vec<Client>,
    pub udp: Vec<UdpClient>,
    pub poll_max: usize,
    /// Shutdown: when, and whether it happened yet.
    pub stop_at: Option<u64>,
    pub stopped: bool,
    /// Bytes each connection's server had read when the shutdown came.
    pub read_at_stop: HashMap<usize, usize>,
    /// Since when each connection (pipe) is above the mark, as the checks
    /// saw it after each turn.
    pub over_since: HashMap<usize, u64>,
    /// The `--max-conns` places all "workers" share (this one alone).
    pub total: Arc<AtomicUsize>,
}

/// Run `seed` (its family from the seed, or the one given).
pub(super) fn run_seed_as(seed: u64, family: Option<Family>) -> Result<(), String> {
    // RUST_LOG=sockloop=debug with a replayed seed shows the server's log.
    let _ = env_logger::builder().is_test(true).try_init();
    let mut sim = Sim::new(seed, family);
    let r = sim.run().and_then(|()| checks::at_end(&sim));
    r.map_err(|e| {
        format!(
            "{:?} {} over {:?}: {e}",
            sim.family, sim.service, sim.framing
        )
    })
}

/// What a seed's run did, to compare two runs of it.
pub(super) fn trace_of(seed: u64) -> String {
    let mut sim = Sim::new(seed, None);
    let _ = sim.run();
    let net = sim.world.0.borrow();
    let pipes: Vec<_> = net
        .pipes
        .iter()
        .map(|p| (&p.reads, p.end, p.server_fin))
        .collect();
    format!("{} {:?} {:?}", net.now_ms, pipes, net.inbox.len())
}

fn addr(i: usize) -> SocketAddr {
    (
        [10, 1, (i / 200) as u8, (i % 200 + 2) as u8],
        40_000 + i as u16,
    )
        .into()
}

impl Sim {
    fn new(seed: u64, family: Option<Family>) -> Self {
        let mut rng = Rng::new(seed);
        let family = family.unwrap_or(MIXED[(seed % MIXED.len() as u64) as usize]);
        let chat = matches!(family, Family::Chat | Family::Flood);
        let service = if chat {
            "chat"
        } else {
            ["echo", "upper", "count"][rng.below(3) as usize]
        };
        let framing = match (chat, service) {
            (true, _) => Framing::Line,
            (_, "count") => [Framing::Line, Framing::Len32][rng.below(2) as usize],
            _ => [Framing::Raw, Framing::Line, Framing::Len32][rng.below(3) as usize],
        };
        let ms = Duration::from_millis;
        let mut opts = Options {
            max_frame: 64,
            write_buffer: rng.range(32, 1024) as usize,
            idle_timeout: Some(ms(rng.range(400, 1_200))),
            frame_timeout: Some(ms(rng.range(200, 400))),
            slow_timeout: ms(rng.range(60, 200)),
            grace: ms(rng.range(20, 300)),
            ..Options::default()
        };
        if family == Family::MaxConns {
            opts.max_conns = rng.range(1, 4) as usize;
        }
        if chat {
            // A room paused by its stuck member holds its senders' input,
            // half a line included, while the frame clock runs: in the
            // configurations the docs describe, --frame-timeout (30 s) is
            // far above --slow-timeout (2 s), and so it is here.
            opts.frame_timeout = Some(ms(10_000));
        }
        if family == Family::Flood {
            opts.write_buffer = 65_536;
            // The default: room to drain one turn's fan-out of 128 Ki lines.
            opts.slow_timeout = ms(2_000);
        }
        let faults = Faults {
            interrupted: 5,
            short_write: 30,
            emfile: 3,
            register: if matches!(family, Family::MaxConns | Family::Streams) {
                3
            } else {
                0
            },
            spurious: 5,
            udp_blocked: 10,
        };
        let world = SimWorld::new(seed, faults);
        world.0.borrow_mut().max_conns = opts.max_conns;
        let total = Arc::new(AtomicUsize::new(0));
        let proto = if family == Family::Udp { "udp" } else { "tcp" };
        let svc = service::by_name(service, &opts).expect("a service");
        let endpoint = format!("{proto}://10.0.0.1:7000")
            .parse()
            .expect("an endpoint");
        let mut server = Server::builder(opts)
            .worker(true, Arc::clone(&total), &Default::default())
            .listen_with(service, endpoint, Some(framing), svc)
            .build_in(world.clone())
            .expect("a simulated server");
        server.attach(0..1_000).expect("attached");
        let mut sim = Sim {
            family,
            service,
            framing,
            opts,
            world,
            server,
            rng,
            clients: Vec::new(),
            udp: Vec::new(),
            poll_max: 0,
            stop_at: None,
            stopped: false,
            read_at_stop: HashMap::new(),
            over_since: HashMap::new(),
            total,
        };
        sim.poll_max = sim.rng.range(1, 16) as usize;
        sim.populate();
        sim
    }

    /// The clients of the seed's family.
    fn populate(&mut self) {
        let rng = &mut self.rng;
        let fam = self.family;
        // A flood: a flooder and eight hearers, so that its one read of
        // 32,768 lines is more than one turn's work budget (128 Ki units,
        // 8 per line) and the budget must cut it.
        let n = rng.range(1, 6) as usize;
        let n = if fam == Family::Flood { 9 } else { n };
        for i in 0..n + usize::from(fam == Family::Chat) {
            let kind = match fam {
                Family::Streams | Family::MaxConns => [
                    Kind::Good,
                    Kind::Good,
                    Kind::Good,
                    Kind::Resetter,
                    Kind::Hog,
                ][rng.below(5) as usize],
                Family::Shutdown => [Kind::Good, Kind::Good, Kind::Hog][rng.below(3) as usize],
                Family::Timeouts => {
                    [Kind::Good, Kind::Idler, Kind::Trickler, Kind::Pauser][rng.below(4) as usize]
                }
                Family::Chat if i == n => Kind::Stuck,
                Family::Chat | Family::Flood => Kind::Member,
                Family::Udp => break,
            };
            let kind = if kind == Kind::Trickler && self.framing == Framing::Raw {
                Kind::Idler // raw has no frames to time
            } else {
                kind
            };
            let mut c = Client::new(kind, addr(i), rng.range(0, 20));
            let frames = rng.range(0, 12) as usize;
            c.input = requests(rng, self.framing, frames, 24);
            c.chunk_max = rng.range(1, 64) as usize;
            c.read_max = rng.range(64, 512) as usize;
            c.fin_early = rng.chance(40);
            let idle = self.opts.idle_timeout.map_or(1_000, crate::options::millis);
            if kind == Kind::Pauser || (kind == Kind::Good && rng.chance(30)) {
                // Stop sending at a frame's end, mid-stream: a good client
                // for less than --idle-timeout (never cut for it), a pauser
                // for longer (cut, to the ms).
                let frames = rng.range(1, 4) as usize;
                let first = requests(rng, self.framing, frames, 24);
                let ms = if kind == Kind::Pauser {
                    rng.range(idle + 50, idle + 500)
                } else {
                    rng.range(1, idle - 100)
                };
                c.pause = Some((first.len(), ms));
                c.input.splice(0..0, first);
            }
            match kind {
                Kind::Trickler => {
                    c.partial_at = c.input.len();
                    let partial = rng.range(1, 30) as usize;
                    if self.framing == Framing::Len32 {
                        c.input.extend(50u32.to_be_bytes());
                    }
                    c.input.extend(std::iter::repeat_n(b'a', partial));
                    c.gap = rng.range(5, 40);
                }
                Kind::Idler => {
                    let frames = rng.range(0, 3) as usize;
                    c.input = requests(rng, self.framing, frames, 24);
                }
                Kind::Resetter => c.reset_at = rng.range(0, 200),
                Kind::Hog => {
                    c.input = requests(rng, self.framing, 200, 24);
                }
                Kind::Member => c.send_from = u64::MAX,
                Kind::Stuck => c.input.clear(),
                Kind::Good | Kind::Pauser => {}
            }
            self.clients.push(c);
        }
        if fam == Family::Flood {
            // One read of 64 KiB of one-letter lines, fanned out.
            let flooder = &mut self.clients[0];
            flooder.input = b"x\n".repeat(32_768);
            flooder.chunk_max = 65_536;
            flooder.caps = Some((65_536, 4_096));
            // Its hearers read fast enough to stay within the slow rule:
            // one turn's fan-out (all of it) drains well within the
            // flood's --slow-timeout.
            for c in &mut self.clients[1..] {
                c.input.clear();
                c.caps = Some((64, 65_536));
                c.read_max = 65_536;
                c.gap = 2;
            }
        }
        if fam == Family::Shutdown {
            self.stop_at = Some(rng.range(10, 300));
        }
        if fam == Family::Udp {
            for i in 0..rng.range(1, 5) as usize {
                let datagrams = (0..rng.range(1, 40))
                    .map(|_| {
                        let mut d = requests(rng, Framing::Raw, 1, 40);
                        if d.is_empty() {
                            d.push(b's');
                        }
                        d
                    })
                    .collect();
                let mut datagrams: Vec<Vec<u8>> = datagrams;
                if rng.chance(20) {
                    // Empty: echo and upper answer it with an empty
                    // datagram, count with "0".
                    let k = rng.below(datagrams.len() as u64 + 1) as usize;
                    datagrams.insert(k, Vec::new());
                }
                if self.service == "upper" && rng.chance(20) {
                    // `ΐ` (2 bytes) uppercases to 6: replies of exactly the
                    // largest IPv4 datagram (65,507 bytes, answered) and one
                    // byte over (answered `ERR reply too long`).
                    for ascii in [5, 6] {
                        let mut d = "ΐ".repeat(10_917).into_bytes();
                        d.extend(std::iter::repeat(b'a').take(ascii));
                        datagrams.push(d);
                    }
                }
                // A source port of the reflection guard's: never answered.
                let guarded = rng.chance(25);
                let mut addr = addr(i);
                if guarded {
                    addr.set_port(GUARDED_PORTS[rng.below(6) as usize]);
                }
                let next_at = rng.range(0, 20);
                self.udp.push(UdpClient {
                    addr,
                    datagrams,
                    sent: 0,
                    next_at,
                });
            }
        }
    }
}
