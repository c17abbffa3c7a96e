//! `load --json`: the summary as one JSON object (docs/protocol.md,
//! "Command line" `load --json`; the keys other tools read are listed in
//! SPEC §3 and the coordination notes: `timeline`, `settings`, …).

use serde_json::{json, Map, Value};

use super::{five, quantile_us, Report};

/// p50, p90, p99, p99.9 and max of a histogram of ns, as µs keys.
fn five_json(h: &hdrhistogram::Histogram<u64>) -> Value {
    let [p50, p90, p99, p99_9, max] = five(h).map(round1);
    json!({ "p50": p50, "p90": p90, "p99": p99, "p99_9": p99_9, "max": max })
}

/// One decimal: µs to the tenth is as precise as the histograms are.
fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

impl Report {
    /// What was asked, as the `settings` object.
    fn settings_json(&self) -> Value {
        let c = &self.settings;
        let targets: Vec<String> = c.endpoints.iter().map(|e| e.to_string()).collect();
        json!({
            "targets": targets,
            "conns": c.conns,
            "size": c.size,
            "duration_s": c.duration.as_secs_f64(),
            "pipeline": c.pipeline,
            "rate": c.rate,
            "threads": c.threads,
            "churn": c.churn,
            "idle": c.idle,
            "connect_rate": c.connect_rate,
            "connect_timeout_s": c.connect_timeout.as_secs_f64(),
            "max_rate_at": c.max_rate_at.as_ref().map(|t| format!("{}={}us", t.name, t.limit.as_secs_f64() * 1e6)),
            "request": (!c.request.is_empty())
                .then(|| c.request.iter().map(|t| t.source()).collect::<Vec<_>>()),
            "reply": (!c.request.is_empty() || c.reply.is_some()).then(|| c.framing().to_string()),
            "expect": c.expect.as_deref().map(|e| super::super::reply::escaped(e, usize::MAX)),
            "seed": c.seed,
        })
    }

    /// One object per measured second.
    fn timeline_json(&self) -> Value {
        let rows = self.timeline.iter().enumerate().map(|(i, s)| {
            let mut row = json!({
                "second": i + 1,
                "unix": s.unix,
                "messages": s.messages,
                "p50_us": round1(quantile_us(&s.hist, 0.5)),
                "p99_us": round1(quantile_us(&s.hist, 0.99)),
                "errors": s.errors,
                "open": s.open,
            });
            if let Some(late) = &s.lateness {
                row["lateness_p99_us"] = round1(quantile_us(late, 0.99)).into();
            }
            if self.churn.is_some() {
                row["connects"] = s.connects.into();
            }
            row
        });
        Value::Array(rows.collect())
    }

    /// The summary as one JSON object, on one line.
    pub fn to_json(&self) -> String {
        self.json().to_string()
    }

    /// The summary as a JSON value.
    pub(crate) fn json(&self) -> Value {
        let mut o = Map::new();
        let mut put = |k: &str, v: Value| {
            o.insert(k.into(), v);
        };
        if self.idle {
            put("connections", self.wanted.into());
            put("held", self.held.into());
            put("failed", self.failed.into());
        } else {
            put("connections", self.connections.into());
            put("messages", self.messages.into());
            put("duration_sec", self.elapsed.as_secs_f64().into());
            put("messages_per_sec", round1(self.messages_per_sec()).into());
            put(
                "mb_per_sec",
                ((self.mb_per_sec() * 1e3).round() / 1e3).into(),
            );
            put("latency_us", five_json(&self.latency_ns));
            if let Some(late) = &self.send_lateness_ns {
                put(
                    "latency_uncorrected_us",
                    five_json(&self.latency_uncorrected_ns),
                );
                put("send_lateness_us", five_json(late));
                if let Some(notice) = self.pace_notice() {
                    put("pace_notice", notice.into());
                }
            }
            put("errors", self.errors.into());
            // `failed`: could not connect, or lost (docs/protocol.md).
            put("failed", (self.failed + self.lost).into());
            put("lost_connections", self.lost.into());
            put("per_thread_messages", json!(self.per_thread_messages));
            put("writes", self.writes.into());
            put("reply_bytes", self.reply_bytes.into());
            if self.churn.is_some() {
                put("churned", self.churned.into());
                put("connects_per_sec", round1(self.connects_per_sec()).into());
                put("connect_latency_us", five_json(&self.connect_latency_ns));
            }
            if let Some(lost) = self.datagrams_lost {
                put("lost", lost.into());
                let pct = (self.loss_percent() * 1e3).round() / 1e3;
                put("loss_percent", pct.into());
            }
            if let Some(t) = &self.replies {
                let first = t
                    .first_wrong
                    .as_ref()
                    .map(|(reply, target)| json!({ "reply": reply, "target": target }));
                put(
                    "replies",
                    json!({
                        "ok": t.ok,
                        "error_replies": t.error_replies,
                        "mismatched": t.mismatched,
                        "closes": t.closes,
                        "first_wrong": first,
                    }),
                );
                put("seed", json!(self.settings.seed));
            }
            put("timeline", self.timeline_json());
        }
        put("failures", json!(self.failures));
        put("started_unix", self.started_unix.into());
        put("settings", self.settings_json());
        self.travel_keys(&mut o);
        Value::Object(o)
    }
}

impl crate::load::Search {
    /// A search as one JSON object: the summary of the step at the answer
    /// (`settings` as asked), plus `max_rate` (`null` if none passed) and
    /// `steps` (`rate`: `null` for the closed-loop step).
    pub fn to_json(&self, settings: &crate::load::LoadConfig) -> String {
        let mut v = match self.best() {
            Some(s) => {
                let mut r = s.report.json();
                r["settings"] = Report::empty(settings).settings_json();
                r
            }
            None => json!({}),
        };
        v["max_rate"] = self.max_rate.map(round1).into();
        v["steps"] = self
            .steps
            .iter()
            .map(|s| {
                json!({
                    "rate": s.rate.map(round1),
                    "messages_per_sec": round1(s.report.messages_per_sec()),
                    "latency_us": five_json(&s.report.latency_ns),
                    "quantile_us": round1(s.latency_us),
                    "errors": s.report.errors,
                    "ok": s.ok,
                })
            })
            .collect();
        v.to_string()
    }
}
