//! A [`Chart`] drawn as SVG with `plotters` (its SVG backend): title, both
//! axes labelled with their units, the lines, and a legend. The SVG is text
//! that goes inline into the HTML page: no fonts, scripts or images to fetch.

use std::ops::Range;

use plotters::prelude::*;

use super::charts::{percentile_label, Chart, XAxis, PLOT_HEIGHT_PX};

/// Size of every chart, in CSS pixels.
pub const SIZE: (u32, u32) = (860, 430);

/// Line colours, one per run (Tableau 10: told apart by most colour-blind
/// readers too, and in print).
const PALETTE: [RGBColor; 10] = [
    RGBColor(0x4e, 0x79, 0xa7),
    RGBColor(0xf2, 0x8e, 0x2b),
    RGBColor(0xe1, 0x57, 0x59),
    RGBColor(0x76, 0xb7, 0xb2),
    RGBColor(0x59, 0xa1, 0x4f),
    RGBColor(0xed, 0xc9, 0x48),
    RGBColor(0xb0, 0x7a, 0xa1),
    RGBColor(0xff, 0x9d, 0xa7),
    RGBColor(0x9c, 0x75, 0x5f),
    RGBColor(0xba, 0xb0, 0xac),
];

/// A chart as SVG, and where its plotting area ended up (pixels), which
/// the tests use to check that every line stays inside the axes.
pub struct Rendered {
    /// The `<svg>` element.
    pub svg: String,
    /// The plotting area: x pixels, y pixels.
    pub plot_px: (Range<i32>, Range<i32>),
}

/// A compact tick label: 1500000 → "1.5M", 25000 → "25k", 0.25 → "0.25".
pub fn tick(v: f64) -> String {
    let trim = |x: f64| {
        let s = format!("{x:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    };
    match v.abs() {
        a if a >= 1e6 => format!("{}M", trim(v / 1e6)),
        a if a >= 1e3 => format!("{}k", trim(v / 1e3)),
        _ => trim(v),
    }
}

/// Draws `chart`. Errors are plotters' (none expected for an SVG string).
pub fn render(chart: &Chart) -> Result<Rendered, String> {
    let mut svg = String::new();
    let plot_px = draw(chart, &mut svg).map_err(|e| format!("{}: {e}", chart.title))?;
    Ok(Rendered {
        svg: compact(&svg),
        plot_px,
    })
}

/// plotters writes each element on its own line and a text's content on
/// lines of its own: lines trimmed and joined, so `<text ...>T</text>` is
/// one element with no stray spaces, and a fifth of the bytes go.
fn compact(svg: &str) -> String {
    let mut out = String::with_capacity(svg.len());
    for line in svg.lines().map(str::trim).filter(|l| !l.is_empty()) {
        // One element a line keeps the page's source readable; text content
        // never starts with '<' (plotters escapes it).
        if line.starts_with('<') && !line.starts_with("</text") && !out.is_empty() {
            out.push('\n');
        }
        out.push_str(line);
    }
    out
}

fn draw(
    chart: &Chart,
    out: &mut String,
) -> Result<(Range<i32>, Range<i32>), Box<dyn std::error::Error>> {
    let root = SVGBackend::with_string(out, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let (xr, yr) = (chart.x_range(), chart.y_range());
    let mut cc = ChartBuilder::on(&root)
        .caption(&chart.title, ("sans-serif", 20))
        .margin(12)
        .margin_right(34) // room for the last x label, centred on the edge
        .x_label_area_size(44)
        .y_label_area_size(70)
        .build_cartesian_2d(xr.clone(), yr)?;
    // The legend headroom in charts.rs is reckoned for this plot height.
    debug_assert!((cc.plotting_area().dim_in_pixel().1 as f64 - PLOT_HEIGHT_PX).abs() < 40.0);
    let x_desc = match chart.x {
        XAxis::Percentile => "percentile (log scale of 1/(1−p))",
        XAxis::Seconds => "time since the start of measurement, s",
    };
    let pct = |x: &f64| percentile_label(*x);
    let secs = |x: &f64| tick(*x);
    let x_fmt: &dyn Fn(&f64) -> String = match chart.x {
        XAxis::Percentile => &pct,
        XAxis::Seconds => &secs,
    };
    // One label per decade on the percentile axis (0 %, 90 %, 99 %, ...).
    let x_labels = match chart.x {
        XAxis::Percentile => (xr.end - xr.start) as usize + 1,
        XAxis::Seconds => 10,
    };
    cc.configure_mesh()
        .x_desc(x_desc)
        .y_desc(chart.y_desc)
        .x_labels(x_labels)
        .y_labels(8)
        .x_label_formatter(x_fmt)
        .y_label_formatter(&|y| tick(*y))
        .axis_desc_style(("sans-serif", 15))
        .label_style(("sans-serif", 13))
        .light_line_style(WHITE.mix(0.0))
        .bold_line_style(BLACK.mix(0.12))
        .draw()?;
    for s in &chart.series {
        let base = PALETTE[s.colour % PALETTE.len()];
        let style = if s.faint {
            base.mix(0.85).stroke_width(1)
        } else {
            base.stroke_width(2)
        };
        cc.draw_series(LineSeries::new(s.points.iter().copied(), style))?
            .label(s.label.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], style));
    }
    cc.configure_series_labels()
        .position(match chart.x {
            XAxis::Percentile => SeriesLabelPosition::UpperLeft,
            XAxis::Seconds => SeriesLabelPosition::UpperRight,
        })
        .label_font(("sans-serif", 14))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .draw()?;
    let px = cc.plotting_area().get_pixel_range();
    root.present()?;
    Ok(px)
}

#[cfg(test)]
mod tests {
    use super::super::charts::Series;
    use super::*;

    fn chart(x: XAxis, series: Vec<Vec<(f64, f64)>>) -> Chart {
        Chart {
            title: "T".into(),
            x,
            y_desc: "latency, µs",
            series: series
                .into_iter()
                .enumerate()
                .map(|(i, points)| Series {
                    label: format!("run{i}"),
                    colour: i,
                    faint: false,
                    points,
                })
                .collect(),
            note: None,
        }
    }

    /// The point lists of every `<polyline>` in an SVG, in pixels.
    /// Axes and ticks are black polylines too: only coloured ones are series.
    pub(crate) fn polylines(svg: &str) -> Vec<Vec<(i32, i32)>> {
        svg.split("<polyline")
            .skip(1)
            .map(|el| el.split("/>").next().unwrap())
            .filter(|el| !el.contains("stroke=\"#000000\""))
            .map(|el| {
                let pts = el
                    .split("points=\"")
                    .nth(1)
                    .unwrap()
                    .split('"')
                    .next()
                    .unwrap();
                pts.split_whitespace()
                    .map(|p| {
                        let (x, y) = p.split_once(',').unwrap();
                        (x.parse().unwrap(), y.parse().unwrap())
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn ticks_are_short() {
        assert_eq!(tick(1_500_000.0), "1.5M");
        assert_eq!(tick(25_000.0), "25k");
        assert_eq!(tick(1200.0), "1.2k");
        assert_eq!(tick(999.0), "999");
        assert_eq!(tick(0.25), "0.25");
        assert_eq!(tick(0.0), "0");
    }

    #[test]
    fn every_series_is_one_line_and_one_legend_entry() {
        for n in 1..=3 {
            let c = chart(
                XAxis::Percentile,
                (0..n)
                    .map(|i| vec![(0.0, 1.0 + i as f64), (4.0, 9.0)])
                    .collect(),
            );
            let r = render(&c).unwrap();
            // plotters draws a series as one polyline and its legend sample as another.
            assert_eq!(polylines(&r.svg).len(), 2 * n, "{}", r.svg);
            for i in 0..n {
                assert_eq!(r.svg.matches(&format!(">run{i}<")).count(), 1);
            }
        }
    }

    #[test]
    fn title_axis_labels_and_percentile_ticks_are_drawn() {
        let r = render(&chart(
            XAxis::Percentile,
            vec![vec![(0.0, 1.0), (3.0, 2.0)]],
        ))
        .unwrap();
        for text in [
            ">T<",
            ">latency, µs<",
            ">percentile (log scale of 1/(1−p))<",
            ">99.99%<",
            ">90%<",
        ] {
            assert!(r.svg.contains(text), "{text} missing");
        }
        let r = render(&chart(XAxis::Seconds, vec![vec![(1.0, 1.0), (60.0, 2.0)]])).unwrap();
        assert!(r.svg.contains(">time since the start of measurement, s<"));
    }

    #[test]
    fn every_drawn_point_lies_inside_the_plotting_area() {
        let c = chart(
            XAxis::Seconds,
            vec![
                (1..=45).map(|s| (s as f64, 7.0)).collect(),
                (1..=60).map(|s| (s as f64, (s * s) as f64)).collect(),
            ],
        );
        let r = render(&c).unwrap();
        let (xs, ys) = &r.plot_px;
        let lines = polylines(&r.svg);
        // The data lines are the long ones; legend samples have two points.
        let data: Vec<_> = lines.iter().filter(|l| l.len() > 2).collect();
        assert_eq!(data.len(), 2);
        for l in data {
            for &(x, y) in l {
                assert!(xs.start <= x && x <= xs.end, "x {x} outside {xs:?}");
                assert!(ys.start <= y && y <= ys.end, "y {y} outside {ys:?}");
            }
        }
        // The highest point is near the top of the area but below the legend room.
        let top = lines[1].iter().map(|p| p.1).min().unwrap();
        assert!(
            top > ys.start + 40,
            "legend room kept: top {top}, area {ys:?}"
        );
    }
}
