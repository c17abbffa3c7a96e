//! Which charts a report has and what is in them, as plain data: runs in,
//! [`Chart`]s out (title, axes, series of points, ranges), no drawing.
//! `render.rs` turns a chart into SVG. Keeping the two apart lets the tests
//! check what a chart promises (every run a series, every point inside the
//! axes) without parsing pictures.

use std::ops::Range;

use hdrhistogram::Histogram;

use super::model::{Five, Run, Second};

/// The x axis of a chart.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum XAxis {
    /// HdrHistogram's percentile axis: x = log10(1/(1−p)), so 0, 1, 2, 3, 4
    /// are 0 %, 90 %, 99 %, 99.9 %, 99.99 %.
    Percentile,
    /// Seconds since measurement start.
    Seconds,
}

/// One line of a chart.
#[derive(Clone, Debug)]
pub struct Series {
    /// The legend entry.
    pub label: String,
    /// Index into the palette: the run's colour, the same in every chart.
    pub colour: usize,
    /// Drawn thin and light (the p50 beside a run's p99).
    pub faint: bool,
    /// (x, y), in axis units (percentile axis: already log10(1/(1−p))).
    pub points: Vec<(f64, f64)>,
}

/// One chart: what it shows and its lines.
#[derive(Clone, Debug)]
pub struct Chart {
    /// The title, drawn in the picture and used as the section heading.
    pub title: String,
    /// The x axis kind.
    pub x: XAxis,
    /// The y axis label, with its unit.
    pub y_desc: &'static str,
    /// The lines, one legend entry each.
    pub series: Vec<Series>,
    /// A sentence under the chart (where the data came from), if any.
    pub note: Option<String>,
}

/// The highest percentile axis point drawn: 99.9999 % (1 in a million).
/// A histogram's last step (p = 1, the max) has no place on this axis.
pub(crate) const MAX_PERCENTILE_X: f64 = 6.0;

/// Height of the plotting area that legend headroom is reckoned against (px).
pub(crate) const PLOT_HEIGHT_PX: f64 = 300.0;

impl Chart {
    /// The x axis range: it contains every point.
    pub fn x_range(&self) -> Range<f64> {
        let hi = self.points().map(|p| p.0).fold(0.0, f64::max);
        match self.x {
            // Always at least 0 %..99.99 %, so runs of any length compare.
            XAxis::Percentile => 0.0..hi.ceil().clamp(4.0, MAX_PERCENTILE_X),
            XAxis::Seconds => 0.0..hi.max(1.0),
        }
    }

    /// The y axis range: from 0, with room above the data for the legend
    /// (drawn in the upper corner), so the legend does not hide a line.
    pub fn y_range(&self) -> Range<f64> {
        let hi = self.points().map(|p| p.1).fold(0.0, f64::max);
        let hi = if hi > 0.0 { hi } else { 1.0 };
        let legend = 22.0 * self.series.len() as f64 + 20.0;
        let room = (1.0 - legend / PLOT_HEIGHT_PX).max(0.4);
        0.0..hi / room
    }

    fn points(&self) -> impl Iterator<Item = &(f64, f64)> {
        self.series.iter().flat_map(|s| s.points.iter())
    }
}

/// A percentile as the axis shows it: x = 0 → "0%", 3 → "99.9%".
pub(crate) fn percentile_label(x: f64) -> String {
    let p = 100.0 * (1.0 - 10f64.powf(-x));
    let digits = if x <= 2.0 {
        0
    } else {
        (x - 2.0).ceil() as usize
    };
    format!("{p:.digits$}%")
}

/// (x, µs) points of a latency histogram on the percentile axis: one per
/// step of HdrHistogram's percentile iteration (five per halving of what is
/// left, as in its `.hgrm` output), up to [`MAX_PERCENTILE_X`].
fn histogram_points(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    if h.is_empty() {
        return Vec::new();
    }
    h.iter_quantiles(5)
        .map(|v| (v.quantile_iterated_to(), v.value_iterated_to() as f64))
        .filter(|&(q, _)| q < 1.0)
        .map(|(q, us)| ((1.0 / (1.0 - q)).log10(), us))
        .filter(|&(x, _)| x <= MAX_PERCENTILE_X)
        .collect()
}

/// (x, µs) points from the p50/p90/p99/p99.9 keys.
fn five_points(f: &Five) -> Vec<(f64, f64)> {
    f.quantiles()
        .into_iter()
        .map(|(q, us)| ((1.0 / (1.0 - q)).log10(), us))
        .collect()
}

/// Every chart the runs have data for, in the order the report shows them.
pub fn charts(runs: &[Run]) -> Vec<Chart> {
    let mut out = vec![latency_by_percentile(runs)];
    let per_run = |pick: fn(&Second) -> Option<f64>| {
        move |i: usize, r: &Run| -> Vec<Series> { vec![timeline_series(r, i, "", false, pick)] }
    };
    out.push(over_time(
        runs,
        "Messages per second",
        "messages/s",
        per_run(|s| s.messages),
    ));
    out.push(over_time(
        runs,
        "Latency second by second: p50 and p99",
        "latency, µs",
        |i, r| {
            vec![
                timeline_series(r, i, " p99", false, |s| s.p99_us),
                timeline_series(r, i, " p50", true, |s| s.p50_us),
            ]
        },
    ));
    out.push(over_time(
        runs,
        "Errors per second",
        "errors/s",
        per_run(|s| s.errors),
    ));
    out.push(over_time(
        runs,
        "Open connections",
        "connections",
        per_run(|s| s.open),
    ));
    // --rate: how late `load` sent (its own pacing error, not the server's).
    out.push(over_time(
        runs,
        "Send lateness second by second (p99, --rate)",
        "send lateness, µs",
        per_run(|s| s.lateness_p99_us),
    ));
    out.push(by_percentile(
        runs,
        "Send lateness by percentile (--rate)",
        "send lateness, µs",
        |r| r.send_lateness.as_ref(),
    ));
    // --churn: the accept path.
    out.push(over_time(
        runs,
        "Connects per second (--churn)",
        "connects/s",
        per_run(|s| s.connects),
    ));
    out.push(by_percentile(
        runs,
        "Connect latency by percentile (--churn)",
        "connect latency, µs",
        |r| r.connect_latency.as_ref(),
    ));
    out.retain(|c| !c.series.is_empty());
    out
}

/// The chart people compare servers by: every run's latency curve.
fn latency_by_percentile(runs: &[Run]) -> Chart {
    let mut from_keys = Vec::new();
    let series = runs
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let points = match (&r.histogram, &r.latency) {
                (Some(h), _) => histogram_points(h),
                (None, Some(f)) => {
                    from_keys.push(r.label.as_str());
                    five_points(f)
                }
                (None, None) => Vec::new(),
            };
            Series {
                label: r.label.clone(),
                colour: i,
                faint: false,
                points,
            }
        })
        .filter(|s| !s.points.is_empty())
        .collect();
    let note = (!from_keys.is_empty()).then(|| {
        format!(
            "From the p50, p90, p99 and p99.9 figures only (the JSON has no `histogram`): {}.",
            from_keys.join(", ")
        )
    });
    Chart {
        title: "Latency by percentile".into(),
        x: XAxis::Percentile,
        y_desc: "latency, µs",
        series,
        note,
    }
}

/// A chart on the percentile axis from one of the five-figure keys.
fn by_percentile(
    runs: &[Run],
    title: &str,
    y_desc: &'static str,
    pick: fn(&Run) -> Option<&Five>,
) -> Chart {
    let series = runs
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            let points = five_points(pick(r)?);
            (!points.is_empty()).then(|| Series {
                label: r.label.clone(),
                colour: i,
                faint: false,
                points,
            })
        })
        .collect();
    Chart {
        title: title.into(),
        x: XAxis::Percentile,
        y_desc,
        series,
        note: Some("From the JSON's percentile figures (the maximum is in the table).".into()),
    }
}

/// A chart on the seconds axis; `make` gives each run's series.
fn over_time(
    runs: &[Run],
    title: &str,
    y_desc: &'static str,
    make: impl Fn(usize, &Run) -> Vec<Series>,
) -> Chart {
    let series = runs
        .iter()
        .enumerate()
        .flat_map(|(i, r)| make(i, r))
        .filter(|s| !s.points.is_empty())
        .collect();
    Chart {
        title: title.into(),
        x: XAxis::Seconds,
        y_desc,
        series,
        note: None,
    }
}

/// One figure of a run's timeline as a series; seconds without it are left out.
fn timeline_series(
    r: &Run,
    colour: usize,
    suffix: &str,
    faint: bool,
    pick: fn(&Second) -> Option<f64>,
) -> Series {
    Series {
        label: format!("{}{suffix}", r.label),
        colour,
        faint,
        points: r
            .timeline
            .iter()
            .filter_map(|s| Some((s.second, pick(s)?)))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(label: &str, v: serde_json::Value) -> Run {
        Run::from_json(label, &v).unwrap()
    }

    #[test]
    fn the_percentile_axis_reads_as_hdrhistogram_draws_it() {
        let labels: Vec<String> = (0..=5).map(|k| percentile_label(k as f64)).collect();
        assert_eq!(labels, ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"]);
    }

    #[test]
    fn a_histogram_curve_starts_at_0_percent_rises_and_stays_on_the_axis() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
        for v in 1..=100_000u64 {
            h.record(v).unwrap();
        }
        let p = histogram_points(&h);
        assert_eq!(p[0].0, 0.0);
        assert!(p.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1));
        // Iteration ends in the last bucket (64 values wide here, 0.064 % of
        // the samples): past 99.9 %, short of 99.99 %.
        assert!(p.last().unwrap().0 > 3.0, "{p:?}");
        assert!(p.iter().all(|&(x, _)| x <= MAX_PERCENTILE_X));
        // The p99 step is where the histogram says it is.
        let near = |x: f64| p.iter().find(|q| q.0 >= x).unwrap().1;
        assert!((near(2.0) - 99_000.0).abs() < 200.0, "{}", near(2.0));
    }

    #[test]
    fn only_charts_with_data_are_made_and_every_run_is_a_series() {
        let a = run(
            "a",
            json!({"connections": 1, "latency_us": {"p50": 10.0, "p90": 20.0, "p99": 30.0, "p99_9": 40.0, "max": 50.0},
                   "timeline": [{"second": 1, "messages": 5, "p50_us": 1.0, "p99_us": 2.0, "errors": 0, "open": 1}]}),
        );
        let b = run("b", json!({"connections": 1, "latency_us": {"p50": 11.0}}));
        let titles: Vec<String> = charts(&[a.clone(), b.clone()])
            .into_iter()
            .map(|c| c.title)
            .collect();
        assert_eq!(
            titles,
            [
                "Latency by percentile",
                "Messages per second",
                "Latency second by second: p50 and p99",
                "Errors per second",
                "Open connections"
            ]
        );
        let c = &charts(&[a, b])[0];
        assert_eq!(c.series.len(), 2);
        assert_eq!(c.series[1].points, vec![((2f64).log10(), 11.0)]);
        assert!(c.note.as_deref().unwrap().contains("a, b"));
    }

    #[test]
    fn axis_ranges_contain_every_point() {
        let big = run(
            "big",
            json!({"connections": 1, "latency_us": {"p50": 1e6, "p99_9": 9e6},
                   "send_lateness_us": {"p50": 3.0, "p99": 70.0, "max": 900.0},
                   "connect_latency_us": {"p50": 30.0, "p99": 80.0},
                   "timeline": (1..=90).map(|s| json!({"second": s, "messages": s * 1000, "p99_us": 5.0 * s as f64,
                        "lateness_p99_us": 2.0, "connects": 7, "errors": 0, "open": 50})).collect::<Vec<_>>()}),
        );
        // The small run first: a range taken from the first series alone fails.
        let small = run(
            "small",
            json!({"connections": 1, "latency_us": {"p50": 0.5},
                   "send_lateness_us": {"p50": 1.0}, "connect_latency_us": {"p50": 2.0},
                   "timeline": [{"second": 1, "messages": 1, "p99_us": 1.0, "lateness_p99_us": 0.5,
                                 "connects": 1, "errors": 0, "open": 1}]}),
        );
        let cs = charts(&[small, big]);
        assert_eq!(cs.len(), 9, "every chart kind has data here");
        for c in &cs {
            let (xr, yr) = (c.x_range(), c.y_range());
            for s in &c.series {
                for &(x, y) in &s.points {
                    assert!(
                        xr.contains(&x) || x == xr.end,
                        "{}: x {x} outside {xr:?}",
                        c.title
                    );
                    assert!(yr.contains(&y), "{}: y {y} outside {yr:?}", c.title);
                }
            }
        }
        let secs = cs
            .iter()
            .find(|c| c.title == "Messages per second")
            .unwrap();
        assert_eq!(secs.x_range(), 0.0..90.0);
        assert!(secs.y_range().end >= 90_000.0);
    }
}
