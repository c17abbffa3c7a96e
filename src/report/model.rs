//! One run as the report sees it, read from a `load --json` (or `merge --json`)
//! object. Every key but one of the headline ones is optional: a reader of
//! an older or newer `load` takes what is there and leaves the rest empty,
//! so a report never fails on a key it does not know or a key that is
//! missing (docs/protocol.md, "`load --json`").

use hdrhistogram::Histogram;
use serde_json::{Map, Value};

use super::hist::decode_histogram;

/// The five figures `load` gives of a distribution (µs); any may be absent
/// (`send_lateness_us` has only p50, p99 and max).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Five {
    /// Median.
    pub p50: Option<f64>,
    /// 90th percentile.
    pub p90: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
    /// 99.9th percentile.
    pub p99_9: Option<f64>,
    /// Largest value.
    pub max: Option<f64>,
}

impl Five {
    fn from(v: Option<&Value>) -> Option<Five> {
        let o = v?.as_object()?;
        let f = |k: &str| o.get(k).and_then(Value::as_f64);
        let five = Five {
            p50: f("p50"),
            p90: f("p90"),
            p99: f("p99"),
            p99_9: f("p99_9"),
            max: f("max"),
        };
        (five != Five::default()).then_some(five)
    }

    /// (quantile, value) for each percentile present, max left out: max has
    /// no place on a 1/(1−p) axis (p = 1).
    pub fn quantiles(&self) -> Vec<(f64, f64)> {
        [
            (0.5, self.p50),
            (0.9, self.p90),
            (0.99, self.p99),
            (0.999, self.p99_9),
        ]
        .into_iter()
        .filter_map(|(q, v)| Some((q, v?)))
        .collect()
    }
}

/// One measured second of a run (`timeline`); absent figures are `None`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Second {
    /// Seconds since measurement start, 1-based (the second's end).
    pub second: f64,
    /// Replies in that second (= messages/s).
    pub messages: Option<f64>,
    /// Median latency in that second, µs.
    pub p50_us: Option<f64>,
    /// 99th percentile latency in that second, µs.
    pub p99_us: Option<f64>,
    /// Errors in that second.
    pub errors: Option<f64>,
    /// Connections open at its end.
    pub open: Option<f64>,
    /// With `--rate`: 99th percentile of send lateness in that second, µs.
    pub lateness_p99_us: Option<f64>,
    /// With `--churn`: connects in that second.
    pub connects: Option<f64>,
}

/// One run: its label and what its JSON says.
#[derive(Clone, Debug)]
pub struct Run {
    /// What the run is called in legends and tables.
    pub label: String,
    /// Headline figures, in the order the table shows them: (name, value as shown).
    pub figures: Vec<(String, String)>,
    /// `latency_us`.
    pub latency: Option<Five>,
    /// `latency_uncorrected_us` (with `--rate`).
    pub latency_uncorrected: Option<Five>,
    /// `send_lateness_us` (with `--rate`).
    pub send_lateness: Option<Five>,
    /// `connect_latency_us` (with `--churn`).
    pub connect_latency: Option<Five>,
    /// `histogram`, decoded (µs), when present and readable.
    pub histogram: Option<Histogram<u64>>,
    /// Why a `histogram` key could not be used, if it could not.
    pub histogram_error: Option<String>,
    /// `timeline`, in order.
    pub timeline: Vec<Second>,
    /// `settings`: (key, value as shown), in the order of the JSON.
    pub settings: Vec<(String, String)>,
}

/// The headline keys, with the name the table gives each.
const FIGURES: &[(&str, &str)] = &[
    ("connections", "connections"),
    ("held", "held (--idle)"),
    ("messages", "messages"),
    ("duration_sec", "measured, s"),
    ("messages_per_sec", "messages/s"),
    ("mb_per_sec", "MB/s"),
    ("errors", "errors"),
    ("failed", "failed connections"),
    ("lost", "lost datagrams"),
    ("loss_percent", "lost, %"),
    ("connects_per_sec", "connects/s (--churn)"),
    ("max_rate", "max rate (--max-rate-at)"),
    ("shards", "shards"),
    ("shard", "shard"),
];

impl Run {
    /// Reads one run from a parsed JSON value. Only the shape is checked: an
    /// object with `connections` or `latency_us`; everything else is optional.
    pub fn from_json(label: &str, v: &Value) -> Result<Run, String> {
        let o = v
            .as_object()
            .ok_or("not a JSON object (expected the output of `load --json` or `merge --json`)")?;
        if !o.contains_key("connections") && !o.contains_key("latency_us") {
            return Err(
                "has neither `connections` nor `latency_us`: not `load --json` output".into(),
            );
        }
        let (histogram, histogram_error) = match o.get("histogram").and_then(Value::as_str) {
            Some(b64) => match decode_histogram(b64) {
                Ok(h) => (Some(h), None),
                Err(e) => (None, Some(e)),
            },
            None => (None, None),
        };
        Ok(Run {
            label: label.to_string(),
            figures: figures(o),
            latency: Five::from(o.get("latency_us")),
            latency_uncorrected: Five::from(o.get("latency_uncorrected_us")),
            send_lateness: Five::from(o.get("send_lateness_us")),
            connect_latency: Five::from(o.get("connect_latency_us")),
            histogram,
            histogram_error,
            timeline: timeline(o.get("timeline")),
            settings: o
                .get("settings")
                .and_then(Value::as_object)
                .map(|s| s.iter().map(|(k, v)| (k.clone(), shown(v))).collect())
                .unwrap_or_default(),
        })
    }

    /// Whether any second has this figure.
    pub fn has(&self, f: impl Fn(&Second) -> Option<f64>) -> bool {
        self.timeline.iter().any(|s| f(s).is_some())
    }
}

/// The headline figures present in `o`, plus when the run started.
fn figures(o: &Map<String, Value>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = FIGURES
        .iter()
        .filter_map(|(k, name)| Some((name.to_string(), shown(o.get(*k)?))))
        .collect();
    let started = o.get("started_unix").or_else(|| o.get("start_unix"));
    if let Some(t) = started.and_then(Value::as_f64) {
        out.push(("started (UTC)".into(), utc(t)));
    }
    if let Some(f) = o.get("failures").and_then(Value::as_object) {
        if !f.is_empty() {
            let why: Vec<String> = f
                .iter()
                .map(|(k, v)| format!("{k}: {}", shown(v)))
                .collect();
            out.push(("failures".into(), why.join("; ")));
        }
    }
    out
}

/// The `timeline` rows that have a `second`; other keys optional.
fn timeline(v: Option<&Value>) -> Vec<Second> {
    let rows = v
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    rows.iter()
        .filter_map(|r| {
            let f = |k: &str| r.get(k).and_then(Value::as_f64);
            Some(Second {
                second: f("second")?,
                messages: f("messages"),
                p50_us: f("p50_us"),
                p99_us: f("p99_us"),
                errors: f("errors"),
                open: f("open"),
                lateness_p99_us: f("lateness_p99_us"),
                connects: f("connects"),
            })
        })
        .collect()
}

/// A JSON value as a table shows it: strings bare, whole numbers without a
/// fraction, big numbers with thousands separators, null as "—".
pub fn shown(v: &Value) -> String {
    match v {
        Value::Null => "—".into(),
        Value::String(s) => s.clone(),
        Value::Number(n) => match (n.as_u64(), n.as_f64()) {
            (Some(u), _) => thousands(u),
            (None, Some(f)) if f.fract() == 0.0 && f.abs() < 1e15 => {
                let s = thousands(f.abs() as u64);
                if f < 0.0 {
                    format!("-{s}")
                } else {
                    s
                }
            }
            // Three decimals (three significant digits below 1): 2.200000467 s
            // is 2.2 s to a reader, and 0.0004 % is not 0.
            (None, Some(f)) => {
                let digits = if f.abs() >= 1.0 {
                    3
                } else {
                    (2 - f.abs().log10().floor() as i64).clamp(3, 12) as usize
                };
                let s = format!("{f:.digits$}");
                s.trim_end_matches('0').trim_end_matches('.').to_string()
            }
            _ => n.to_string(),
        },
        Value::Array(a) => a.iter().map(shown).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

/// 1234567 → "1,234,567".
fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Unix seconds as `YYYY-MM-DD hh:mm:ss` UTC (Howard Hinnant's civil_from_days).
fn utc(t: f64) -> String {
    let secs = t.floor() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_minimal_object_reads_and_missing_keys_stay_empty() {
        let r = Run::from_json("a", &json!({"connections": 3})).unwrap();
        assert_eq!(r.figures, vec![("connections".into(), "3".into())]);
        assert!(r.latency.is_none() && r.timeline.is_empty() && r.settings.is_empty());
        assert!(r.histogram.is_none() && r.histogram_error.is_none());
    }

    #[test]
    fn not_load_output_is_refused() {
        assert!(Run::from_json("a", &json!([1, 2])).is_err());
        assert!(Run::from_json("a", &json!({"foo": 1})).is_err());
    }

    #[test]
    fn timeline_rows_without_second_are_skipped_and_others_kept() {
        let v = json!({"connections": 1, "timeline": [
            {"second": 1, "messages": 10, "p99_us": 5.5},
            {"messages": 3},
            {"second": 2, "connects": 4, "bogus": "x"}]});
        let r = Run::from_json("a", &v).unwrap();
        assert_eq!(r.timeline.len(), 2);
        assert_eq!(r.timeline[0].p99_us, Some(5.5));
        assert_eq!(r.timeline[0].p50_us, None);
        assert_eq!(r.timeline[1].connects, Some(4.0));
    }

    #[test]
    fn figures_are_shown_as_people_read_them() {
        assert_eq!(shown(&json!(1234567)), "1,234,567");
        assert_eq!(shown(&json!(12.5)), "12.5");
        assert_eq!(shown(&json!(2.200000467)), "2.2");
        assert_eq!(shown(&json!(0.0004)), "0.0004");
        assert_eq!(shown(&json!(0.12345)), "0.123");
        assert_eq!(shown(&json!(null)), "—");
        assert_eq!(shown(&json!(["tcp://a", "tcp://b"])), "tcp://a, tcp://b");
        assert_eq!(utc(0.0), "1970-01-01 00:00:00");
        assert_eq!(utc(1_796_040_000.5), "2026-11-30 12:00:00");
    }
}
