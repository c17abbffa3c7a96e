//! `--workers N`: N single-threaded loops, shared nothing, on the same
//! addresses — how nginx, Envoy and Seastar use more than one core.
//!
//! Each worker is a whole [`Server`] on a thread of its own, with its own
//! `Poll`, slab and sockets. Its TCP and UDP listeners are bound to the
//! same addresses as every other worker's with `SO_REUSEPORT`, so the
//! kernel, not a lock or a shared accept queue, spreads the work: a new
//! connection (or a datagram) goes to the socket a hash of its 4-tuple
//! picks, which spreads clients evenly and keeps a UDP peer on one worker.
//! Nothing of a connection ever moves between workers.
//!
//! What the workers do share, and why:
//!
//! ```text
//!   open_total   AtomicUsize   --max-conns is the total: one add per accept,
//!                              one subtract per close
//!   Control      AtomicU8      a stop request (graceful or now), and a
//!                + wakers      mio::Waker per worker to make it look
//!   counters     one list of every worker's counters, summed by whoever
//!                reads them (--stats, /metrics, Workers::counters)
//! ```
//!
//! A `chat` listener is a room ([`Service::shared_state`]): N copies would
//! be N rooms whose members never hear each other, so the first worker
//! alone serves it. The first worker also runs on the caller's thread,
//! listens for SIGINT/SIGTERM, and prints `--stats`; a signal stops every
//! worker through the [`Control`].
//!
//! [`Service::shared_state`]: crate::service::Service::shared_state

use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::{self, JoinHandle};

use log::{error, info};
use mio::{Poll, Waker};
use signal_hook_mio::v1_0::Signals;

use super::run::{self, Control, Role, Stop, WAKER};
use super::{Builder, Server};
use crate::addr::{Endpoint, ListenSpec};
use crate::options::Options;
use crate::service::Service;
use crate::stats::Counters;

/// Makes a worker's service for a listener ([`Workers::bind_with`]).
type Factory = dyn Fn(&ListenSpec) -> Box<dyn Service> + Send + Sync;

/// Add `spec` to a worker's builder: a named service, or one the factory
/// makes for this worker.
fn add_listener(b: Builder, spec: &ListenSpec, factory: Option<&Factory>) -> Builder {
    match factory {
        Some(make) => b.listen_with(&spec.service, spec.endpoint, spec.framing, make(spec)),
        None => b.listen(spec),
    }
}

/// Stops running workers from any thread, as SIGTERM (graceful) or a
/// second signal (at once) would.
#[derive(Clone)]
pub struct Stopper(Arc<Control>);

impl Stopper {
    /// Stop accepting, deliver owed replies for up to `--grace`, close.
    pub fn stop(&self) {
        self.0.request(Stop::Graceful);
    }

    /// Close every connection now.
    pub fn stop_now(&self) {
        self.0.request(Stop::Now);
    }
}

/// N workers bound and ready to run: see the module docs.
///
/// ```no_run
/// use sockloop::{Options, Workers};
/// let specs = ["echo=tcp://127.0.0.1:7000".parse().unwrap()];
/// let workers = Workers::bind(&specs, Options::default(), 4).expect("bind");
/// workers.run().expect("run"); // until SIGINT/SIGTERM
/// ```
pub struct Workers {
    first: Server,
    poll: Poll,
    /// SIGINT/SIGTERM, caught from before the first socket was bound.
    signals: Signals,
    control: Arc<Control>,
    /// The other workers, each waiting for the word to start.
    others: Waiting,
    /// Every worker's, in order (each worker's server adds its own).
    counters: Counters,
}

impl Workers {
    /// Bind `specs` in `n` workers (at least one). The first worker binds
    /// every listener, as [`Server::bind`] does, on this thread; each of
    /// the others binds, on a thread of its own, the first worker's real
    /// addresses (port 0 resolved) except those of services whose state
    /// cannot be split. Fails on the first listener any worker cannot bind.
    pub fn bind(specs: &[ListenSpec], opts: Options, n: usize) -> io::Result<Workers> {
        Self::bind_inner(specs, opts, n, None)
    }

    /// Bind listeners of services of your own in `n` workers. `factory`
    /// makes each worker's own service for each listener: it is called
    /// once per listener per worker, on that worker's thread (so a service
    /// need not be `Send`), with the spec that worker binds (its
    /// `service` is the listener's name, any name; a port 0 already
    /// resolved for all but the first). A service whose state is one whole
    /// ([`Service::shared_state`]) is served by the first worker alone.
    ///
    /// ```no_run
    /// use sockloop::service::{Echo, Service};
    /// use sockloop::{Options, Workers};
    /// let specs = ["mine=tcp://127.0.0.1:7000".parse().unwrap()];
    /// let workers = Workers::bind_with(&specs, Options::default(), 4, |_spec| {
    ///     Box::new(Echo) as Box<dyn Service>
    /// })
    /// .expect("bind");
    /// workers.run().expect("run");
    /// ```
    pub fn bind_with<F>(
        specs: &[ListenSpec],
        opts: Options,
        n: usize,
        factory: F,
    ) -> io::Result<Workers>
    where
        F: Fn(&ListenSpec) -> Box<dyn Service> + Send + Sync + 'static,
    {
        Self::bind_inner(specs, opts, n, Some(Arc::new(factory)))
    }

    fn bind_inner(
        specs: &[ListenSpec],
        opts: Options,
        n: usize,
        factory: Option<Arc<Factory>>,
    ) -> io::Result<Workers> {
        // First of all: from here on a SIGTERM waits in the pipe for the
        // loop instead of killing the process, so a supervisor that signals
        // as soon as the server says it is ready gets a graceful exit.
        let signals = run::listen_for_signals()?;
        let open_total = Arc::new(AtomicUsize::new(0));
        let counters = Counters::default();
        let mut builder = Server::builder(opts);
        if n > 1 {
            builder = builder.worker(true, Arc::clone(&open_total), &counters);
        }
        let first = specs
            .iter()
            .fold(builder, |b, s| add_listener(b, s, factory.as_deref()))
            .build()?;
        let shared: Vec<ListenSpec> = first
            .listeners
            .iter()
            .filter(|l| !l.service.shared_state())
            .map(|l| ListenSpec {
                service: l.service_name.clone(),
                endpoint: l.endpoint,
                framing: Some(l.framing),
            })
            .collect();
        let n = if shared.is_empty() && n > 1 {
            info!("--workers {n}: every listener is a room (chat): one worker serves them all");
            1
        } else {
            n.max(1)
        };
        let control = Arc::new(Control::default());
        let poll = Poll::new()?;
        control.add(Waker::new(poll.registry(), WAKER)?);
        let mut workers = Workers {
            counters: first.counters(),
            first,
            poll,
            signals,
            control,
            others: Waiting(Vec::new()),
        };
        for k in 1..n {
            let (ready_tx, ready_rx) = mpsc::channel();
            let (go_tx, go_rx) = mpsc::channel::<()>();
            let (specs, control, open_total, factory, counters) = (
                shared.clone(),
                Arc::clone(&workers.control),
                Arc::clone(&open_total),
                factory.clone(),
                workers.counters.clone(),
            );
            let thread = thread::Builder::new()
                .name(format!("sockloop-worker-{k}"))
                .spawn(move || -> io::Result<()> {
                    let bound = (|| {
                        let server = specs
                            .iter()
                            .fold(
                                Server::builder(opts).worker(false, open_total, &counters),
                                |b, s| add_listener(b, s, factory.as_deref()),
                            )
                            .build()?;
                        let poll = Poll::new()?;
                        let waker = Waker::new(poll.registry(), WAKER)?;
                        Ok::<_, io::Error>((server, poll, waker))
                    })();
                    let (server, poll, waker) = match bound {
                        Ok(b) => b,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return Ok(());
                        }
                    };
                    control.add(waker);
                    let _ = ready_tx.send(Ok(()));
                    if go_rx.recv().is_err() {
                        return Ok(()); // never run
                    }
                    // A worker that panics stops the others too (the
                    // guard's drop runs while unwinding).
                    let _guard = StopAllOnPanic(&control);
                    let r = server.run_loop(poll, Role::Follower(&control));
                    if let Err(e) = &r {
                        // One worker down: stop them all rather than serve
                        // a share of the clients with nobody listening.
                        error!("worker {k}: {e}; stopping every worker");
                        control.request(Stop::Graceful);
                    }
                    r
                })?;
            match ready_rx.recv() {
                Ok(Ok(())) => workers.others.0.push((go_tx, thread)),
                Ok(Err(e)) => return Err(e), // dropping `workers` ends the others
                Err(_) => {
                    return Err(io::Error::other(format!(
                        "worker {k} ended before it was ready"
                    )))
                }
            }
        }
        Ok(workers)
    }

    /// How many workers there are (fewer than asked if every listener is
    /// a room).
    pub fn len(&self) -> usize {
        self.others.0.len() + 1
    }

    /// Whether there are no workers: never (there is always the first).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Each listener's service and real address, once each, in order.
    pub fn listeners(&self) -> impl Iterator<Item = (&str, Endpoint)> + '_ {
        self.first.listeners()
    }

    /// Every worker's counters, live: summed, or one by one.
    pub fn counters(&self) -> Counters {
        self.counters.clone()
    }

    /// A handle that stops the workers from another thread.
    pub fn stopper(&self) -> Stopper {
        Stopper(Arc::clone(&self.control))
    }

    /// Run every worker until SIGINT/SIGTERM (or a [`Stopper`]) and the
    /// graceful shutdown that follows: the first on this thread, which
    /// also hears the signals and prints `--stats`. Returns when all have
    /// ended: the first error any worker met, or `Ok`.
    pub fn run(mut self) -> io::Result<()> {
        let stats_on = self.first.opts.stats_every.is_some();
        // Let the others go first, so a connection the kernel gives one of
        // them is served as soon as the first worker's is.
        let others = std::mem::take(&mut self.others.0);
        let mut threads = Vec::with_capacity(others.len());
        for (go, thread) in others {
            let _ = go.send(());
            threads.push(thread);
        }
        let Workers {
            first,
            poll,
            signals,
            control,
            counters,
            ..
        } = self;
        let mut result = first.run_loop(poll, Role::Lead(signals, &control));
        if result.is_err() {
            control.request(Stop::Graceful);
        }
        // The first worker is done; the others may still be delivering
        // what they owe. A signal now still means what it always does: a
        // second one (the first started all this) closes everything.
        let signalled = Arc::new(AtomicBool::new(false));
        let hooks: Vec<_> = [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM]
            .into_iter()
            .filter_map(|sig| signal_hook::flag::register(sig, Arc::clone(&signalled)).ok())
            .collect();
        while !threads.iter().all(|t| t.is_finished()) {
            if signalled.swap(false, Ordering::Relaxed) {
                control.request(if control.requested() == Stop::No {
                    Stop::Graceful
                } else {
                    Stop::Now
                });
            }
            thread::sleep(std::time::Duration::from_millis(20));
        }
        for id in hooks {
            signal_hook::low_level::unregister(id);
        }
        for (k, t) in threads.into_iter().enumerate() {
            let r = t
                .join()
                .unwrap_or_else(|_| Err(io::Error::other(format!("worker {} panicked", k + 1))));
            if result.is_ok() {
                result = r;
            }
        }
        if stats_on {
            // The last word: what every worker read and wrote in all.
            eprintln!("{}", counters.line());
        }
        result
    }
}

/// Asks every worker to stop if dropped while its thread panics.
struct StopAllOnPanic<'a>(&'a Control);

impl Drop for StopAllOnPanic<'_> {
    fn drop(&mut self) {
        if thread::panicking() {
            self.0.request(Stop::Graceful);
        }
    }
}

/// The other workers' threads, bound and waiting for the word to start
/// (a dropped sender means: never mind, exit).
struct Waiting(Vec<(mpsc::Sender<()>, JoinHandle<io::Result<()>>)>);

impl Drop for Waiting {
    /// Workers bound but never run (dropped, or a later worker failed to
    /// bind): tell their threads to exit, and wait for them.
    fn drop(&mut self) {
        for (go, thread) in self.0.drain(..) {
            drop(go);
            let _ = thread.join();
        }
    }
}
