//! What `sockloop load` is asked to do, and the one home of the rules on
//! which options go together ([`LoadConfig::validate`]): the command line
//! calls it to turn a bad combination into a usage error, and
//! [`run`](super::run) calls it for library callers.

use std::time::Duration;

use super::knee::LatencyTarget;
use super::reply::Framing;
use super::shard::Shard;
use super::template::Template;
use crate::addr::{Endpoint, Proto};

/// What `sockloop load` is asked to do.
#[derive(Clone, Debug)]
pub struct LoadConfig {
    /// The services to drive: connection `g` goes to `endpoints[g % len]`
    /// (a server with several workers, or several servers).
    pub endpoints: Vec<Endpoint>,
    /// Poll loops (threads), each with its share of the connections.
    pub threads: usize,
    /// Connections to open.
    pub conns: usize,
    /// Bytes per message.
    pub size: usize,
    /// How long to measure, after every connection is open.
    pub duration: Duration,
    /// Messages in flight per connection.
    pub pipeline: usize,
    /// Messages per second over all connections; `None`: as fast as
    /// replies allow.
    pub rate: Option<f64>,
    /// New connections per second while ramping up.
    pub connect_rate: f64,
    /// Hold the connections without traffic.
    pub idle: bool,
    /// `--churn M`: each connection closes after M round trips and is
    /// replaced at once.
    pub churn: Option<u64>,
    /// A connection attempt still unanswered after this long has failed
    /// (never longer than `duration`: see [`connect_wait`](Self::connect_wait)).
    pub connect_timeout: Duration,
    /// `--max-rate-at pNN=DURATION`: search for the highest rate that
    /// keeps this latency ([`search`](super::search); [`run`](super::run)
    /// does one run and ignores it).
    pub max_rate_at: Option<LatencyTarget>,
    /// `--shard S/N`: run only this shard of the test the other fields
    /// describe (which stay the whole test's: `conns`, `rate`, … are
    /// split by [`LoadConfig::shard_part`]).
    pub shard: Option<Shard>,
    /// `--start-at`: the wall-clock unix second to start at.
    pub start_at: Option<u64>,
    /// `--request`: sent in turn on each connection instead of the echo
    /// pattern (empty: echo).
    pub request: Vec<Template>,
    /// `--reply`: how replies are delimited (`None`: echo, or `line` with
    /// `request`).
    pub reply: Option<Framing>,
    /// `--expect`: every reply begins with these bytes.
    pub expect: Option<Vec<u8>>,
    /// `--seed` of the requests' random parts (`None`: from the clock;
    /// `run` reports the one it used).
    pub seed: Option<u64>,
}

impl Default for LoadConfig {
    /// `sockloop load`'s defaults, with no target yet.
    fn default() -> Self {
        LoadConfig {
            endpoints: Vec::new(),
            threads: 1,
            conns: 10,
            size: 64,
            duration: Duration::from_secs(10),
            pipeline: 1,
            rate: None,
            connect_rate: 5000.0,
            idle: false,
            churn: None,
            connect_timeout: Duration::from_secs(10),
            max_rate_at: None,
            shard: None,
            start_at: None,
            request: Vec::new(),
            reply: None,
            expect: None,
            seed: None,
        }
    }
}

impl LoadConfig {
    /// Whether the targets are `udp://` (validated: all or none are).
    pub fn udp(&self) -> bool {
        self.endpoints
            .first()
            .is_some_and(|e| e.proto == Proto::Udp)
    }

    /// How long a connect may stay unanswered: `connect_timeout`, bounded
    /// by the run's `duration` (a target that never accepts then ends the
    /// run in about `duration`, not `connect_timeout` plus it).
    pub fn connect_wait(&self) -> Duration {
        self.connect_timeout.min(self.duration)
    }

    /// How replies are delimited: `--reply`, else `line` with `--request`,
    /// else echo.
    pub fn framing(&self) -> Framing {
        match (&self.reply, self.request.is_empty()) {
            (Some(f), _) => f.clone(),
            (None, true) => Framing::Echo,
            (None, false) => Framing::Line,
        }
    }

    /// Whether these options make a run: the reason if not, worded as a
    /// usage error names the options.
    pub fn validate(&self) -> Result<(), String> {
        let udp = self
            .endpoints
            .iter()
            .filter(|e| e.proto == Proto::Udp)
            .count();
        if self.endpoints.is_empty() {
            return Err("a target is needed (tcp://HOST:PORT or udp://HOST:PORT)".into());
        }
        if udp > 0 && udp < self.endpoints.len() {
            return Err("tcp:// and udp:// targets cannot be mixed in one run".into());
        }
        if udp > 0 && (self.churn.is_some() || self.idle || self.rate.is_some()) {
            return Err("--churn, --idle and --rate apply to tcp:// targets only".into());
        }
        if self.max_rate_at.is_some() && (udp > 0 || self.idle || self.rate.is_some()) {
            return Err("--max-rate-at searches for --rate itself, over tcp:// targets: not with --rate, --idle or udp://".into());
        }
        if self.idle && (self.churn.is_some() || self.rate.is_some()) {
            return Err("--idle sends nothing: --churn and --rate do not apply".into());
        }
        let counts = [
            ("--conns", self.conns),
            ("--threads", self.threads),
            ("--size", self.size),
            ("--pipeline", self.pipeline),
        ];
        if let Some((name, _)) = counts.iter().find(|(_, n)| *n == 0) {
            return Err(format!("{name} must be at least 1"));
        }
        let positive = |r: f64| r.is_finite() && r > 0.0;
        if !positive(self.connect_rate) || self.rate.is_some_and(|r| !positive(r)) {
            return Err("--rate and --connect-rate must be above 0".into());
        }
        if self.churn == Some(0) {
            return Err("--churn must be at least 1".into());
        }
        if self.duration.is_zero() {
            return Err("--duration must be above 0".into());
        }
        if self.connect_timeout.is_zero() {
            return Err("--connect-timeout must be above 0".into());
        }
        if let Some(shard) = self.shard {
            if self.conns < shard.count {
                return Err(format!(
                    "--shard {shard}: --conns {} leaves some of the {} shards no connection",
                    self.conns, shard.count
                ));
            }
            let share = |r: f64| shard.rate(r);
            if self.rate.is_some_and(|r| share(r) < 1.0) || share(self.connect_rate) < 1.0 {
                return Err(format!(
                    "--shard {shard}: --rate and --connect-rate must leave every shard at least 1 a second"
                ));
            }
        }
        // The echo pattern checks every byte itself: the protocol options
        // go with --request, and --request with a framing.
        if self.request.is_empty() {
            if self.reply.as_ref().is_some_and(|f| *f != Framing::Echo) {
                return Err("--reply other than echo needs --request (what to send)".into());
            }
            if self.expect.is_some() || self.seed.is_some() {
                return Err("--expect and --seed apply with --request only".into());
            }
        } else if self.reply == Some(Framing::Echo) {
            return Err("--reply echo checks the built-in pattern: with --request, choose line, bytes:N, len32, until:STR, resp or http".into());
        }
        Ok(())
    }

    /// This process's part of the test: with `--shard`, its connections
    /// and its shares of `--rate` and `--connect-rate`; without, the whole.
    pub fn shard_part(&self) -> LoadConfig {
        let Some(shard) = self.shard else {
            return self.clone();
        };
        LoadConfig {
            conns: shard.conns(self.conns),
            rate: self.rate.map(|r| shard.rate(r)),
            connect_rate: shard.rate(self.connect_rate),
            seed: self.seed.map(|s| shard.seed(s)),
            ..self.clone()
        }
    }

    /// The number in the whole test of this process's connection `local`
    /// (`{conn}`, and the round-robin over the targets): with `--shard S/N`,
    /// S + local·N.
    pub fn global_conn(&self, local: usize) -> usize {
        self.shard.map_or(local, |s| s.global_conn(local))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(targets: &[&str]) -> LoadConfig {
        LoadConfig {
            endpoints: targets.iter().map(|t| t.parse().unwrap()).collect(),
            ..LoadConfig::default()
        }
    }

    #[test]
    fn the_option_rules() {
        assert!(cfg(&["tcp://127.0.0.1:1"]).validate().is_ok());
        assert!(cfg(&[]).validate().is_err());
        assert!(cfg(&["tcp://127.0.0.1:1", "udp://127.0.0.1:1"])
            .validate()
            .unwrap_err()
            .contains("mixed"));
        let mut u = cfg(&["udp://127.0.0.1:1"]);
        assert!(u.validate().is_ok());
        u.churn = Some(3);
        assert!(u.validate().unwrap_err().contains("--churn"));
        let mut t = cfg(&["tcp://127.0.0.1:1"]);
        t.rate = Some(0.0);
        assert!(t.validate().is_err());
        t.rate = Some(f64::NAN);
        assert!(t.validate().is_err());
        t.rate = Some(10.0);
        t.idle = true;
        assert!(t.validate().unwrap_err().contains("--idle"));
        t.idle = false;
        t.max_rate_at = Some("p99=1ms".parse().unwrap());
        assert!(t.validate().unwrap_err().contains("--max-rate-at"));
        t.rate = None;
        assert!(t.validate().is_ok());
        let mut z = cfg(&["tcp://127.0.0.1:1"]);
        z.pipeline = 0;
        assert!(z.validate().unwrap_err().contains("--pipeline"));
        let mut p = cfg(&["tcp://127.0.0.1:1"]);
        p.reply = Some(Framing::Resp);
        assert!(p.validate().unwrap_err().contains("needs --request"));
        p.reply = None;
        p.expect = Some(b"+".to_vec());
        assert!(p.validate().unwrap_err().contains("--expect"));
        p.request = vec![Template::parse("PING\\r\\n").unwrap()];
        assert!(p.validate().is_ok());
        assert_eq!(p.framing(), Framing::Line);
        p.reply = Some(Framing::Echo);
        assert!(p.validate().unwrap_err().contains("--reply echo"));
    }
}
