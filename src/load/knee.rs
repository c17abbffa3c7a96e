//! `--max-rate-at pNN=DURATION`: the highest `--rate` whose latency
//! quantile stays at or under a limit — the knee of the latency curve.
//!
//! ```text
//!  step 1      closed loop (no --rate): the rate at saturation, R
//!  steps 2…    bisection of [0, R]: a paced run at the middle; it passes
//!              if its pNN (from the due time) ≤ DURATION, it achieved
//!              ≥ 99 % of the rate asked, and no reply was wrong
//!  the answer  the highest rate that passed, once the interval is
//!              narrower than 4 % of R (or after 8 paced steps)
//! ```
//!
//! Each step is a whole run of `--duration` (its ramp included), so a
//! search takes about (2 + log2(25)) × (`--duration` + ramp).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::{run_with_progress, LoadConfig, Report, Stop};

/// A latency limit: quantile `quantile` (e.g. 0.99) at most `limit`.
#[derive(Clone, Debug, PartialEq)]
pub struct LatencyTarget {
    /// The quantile, in (0, 1).
    pub quantile: f64,
    /// The most its latency may be.
    pub limit: Duration,
    /// As the user wrote the quantile: `p99`, `p99.9`.
    pub name: String,
}

impl FromStr for LatencyTarget {
    type Err = String;

    /// `pNN=DURATION`: `p50`, `p90`, `p99`, `p99.9`, …; DURATION a number
    /// with `ns`, `us` (or `µs`), `ms` or `s`.
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("'{s}' is not pNN=DURATION (e.g. p99=1ms, p99.9=500us, p50=0.2s)");
        let (q, d) = s.split_once('=').ok_or_else(bad)?;
        let pct: f64 = q
            .strip_prefix('p')
            .and_then(|n| n.parse().ok())
            .ok_or_else(bad)?;
        if !(pct > 0.0 && pct < 100.0) {
            return Err(bad());
        }
        let units = [
            ("ns", 1e-9),
            ("us", 1e-6),
            ("µs", 1e-6),
            ("ms", 1e-3),
            ("s", 1.0),
        ];
        let (num, scale) = units
            .iter()
            .find_map(|(u, k)| d.strip_suffix(u).map(|n| (n, *k)))
            .ok_or_else(bad)?;
        let v: f64 = num.parse().map_err(|_| bad())?;
        let limit = Duration::try_from_secs_f64(v * scale).map_err(|_| bad())?;
        if limit.is_zero() {
            return Err(bad());
        }
        Ok(LatencyTarget {
            quantile: pct / 100.0,
            limit,
            name: q.to_string(),
        })
    }
}

impl fmt::Display for LatencyTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ≤ {:.0} µs",
            self.name,
            self.limit.as_secs_f64() * 1e6
        )
    }
}

/// One run of the search.
#[derive(Debug)]
pub struct Step {
    /// The rate asked (`None`: the closed-loop step).
    pub rate: Option<f64>,
    /// The run's figures.
    pub report: Report,
    /// Its latency at the target's quantile, µs.
    pub latency_us: f64,
    /// Whether it met the target (the closed-loop step: informational).
    pub ok: bool,
}

impl Step {
    /// The step as the line printed when it ends.
    pub fn line(&self, n: usize, target: &LatencyTarget) -> String {
        let asked = match self.rate {
            None => "closed loop".to_string(),
            Some(r) => format!("--rate {r:.0}"),
        };
        format!(
            "step {n}: {asked}: {:.0} msg/s, {} {:.1} µs{}",
            self.report.messages_per_sec(),
            target.name,
            self.latency_us,
            match (self.rate, self.ok) {
                (None, _) => " (saturation)",
                (Some(_), true) => ": ok",
                (Some(_), false) => ": over",
            }
        )
    }
}

/// What a search found.
#[derive(Debug)]
pub struct Search {
    /// The limit searched for.
    pub target: LatencyTarget,
    /// Every run, in order.
    pub steps: Vec<Step>,
    /// The highest rate that passed, if any did.
    pub max_rate: Option<f64>,
}

impl Search {
    /// The step whose figures stand for the answer: the one at
    /// `max_rate`, else the last.
    pub fn best(&self) -> Option<&Step> {
        self.steps
            .iter()
            .rev()
            .find(|s| s.ok && s.rate.is_some() && s.rate == self.max_rate)
            .or(self.steps.last())
    }

    /// The answer, as the last line of the output.
    pub fn answer(&self) -> String {
        match self.max_rate {
            Some(r) => format!("max rate at {}: {r:.0} msg/s", self.target),
            None => format!(
                "max rate at {}: none found (even the lowest rate tried was over)",
                self.target
            ),
        }
    }
}

/// Whether a paced step at `rate` met `target`.
fn passes(r: &Report, rate: f64, latency_us: f64, target: &LatencyTarget) -> bool {
    latency_us <= target.limit.as_secs_f64() * 1e6
        && r.messages_per_sec() >= rate * 0.99
        && r.errors == 0
        && r.failed == 0
        && r.lost == 0
}

/// Search for the highest rate that keeps `target` (see the module doc);
/// `on_step` sees each step as it ends (to print it).
pub fn search(
    cfg: &LoadConfig,
    target: &LatencyTarget,
    progress: bool,
    stop: &Stop,
    mut on_step: impl FnMut(usize, &Step),
) -> Result<Search, String> {
    let mut out = Search {
        target: target.clone(),
        steps: Vec::new(),
        max_rate: None,
    };
    let mut step = |rate: Option<f64>, out: &mut Search| -> Result<bool, String> {
        let c = LoadConfig {
            rate,
            max_rate_at: None,
            ..cfg.clone()
        };
        let report = run_with_progress(&c, progress, stop)?;
        let latency_us = report.latency_us(target.quantile);
        let ok = match rate {
            Some(r) => passes(&report, r, latency_us, target),
            None => latency_us <= target.limit.as_secs_f64() * 1e6,
        };
        let s = Step {
            rate,
            report,
            latency_us,
            ok,
        };
        on_step(out.steps.len() + 1, &s);
        out.steps.push(s);
        Ok(ok)
    };
    step(None, &mut out)?;
    let saturation = out.steps[0].report.messages_per_sec();
    if out.steps[0].report.messages == 0 || stop.is_stopped() {
        return Ok(out);
    }
    let (mut lo, mut hi) = (0.0f64, saturation);
    for _ in 0..8 {
        if hi - lo <= saturation * 0.04 || stop.is_stopped() {
            break;
        }
        let rate = (lo + hi) / 2.0;
        if step(Some(rate), &mut out)? {
            lo = rate;
            out.max_rate = Some(rate);
        } else {
            hi = rate;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_as_the_docs_say() {
        let t: LatencyTarget = "p99=1ms".parse().unwrap();
        assert_eq!((t.quantile, t.limit), (0.99, Duration::from_millis(1)));
        let t: LatencyTarget = "p99.9=500us".parse().unwrap();
        assert!((t.quantile - 0.999).abs() < 1e-12);
        assert_eq!(t.limit, Duration::from_micros(500));
        let t: LatencyTarget = "p50=0.2s".parse().unwrap();
        assert_eq!(t.limit, Duration::from_millis(200));
        assert_eq!(
            "p90=250µs".parse::<LatencyTarget>().unwrap().limit,
            Duration::from_micros(250)
        );
        for bad in [
            "99=1ms", "p99", "p99=1", "p100=1ms", "p0=1ms", "p99=-1ms", "p99=0ms", "p99=1h",
            "px=1ms",
        ] {
            assert!(bad.parse::<LatencyTarget>().is_err(), "{bad}");
        }
    }
}
