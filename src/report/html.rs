//! The report page: one HTML file holding every chart as inline SVG and a
//! table of figures and settings. No script, no external style sheet, font
//! or image, nothing fetched: it reads the same offline, printed, or with
//! CSS switched off (headings, figures and a plain table in document order).

use std::fmt::Write;

use super::charts::Chart;
use super::model::Run;
use super::render::Rendered;

/// `&`, `<`, `>`, `"` and `'` as entities: labels and settings are the user's text.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Small and optional: the page is plain HTML without it. A chart's
/// heading is hidden while CSS is on (the picture has the same title) and
/// there for screen readers, links and CSS-off reading.
const STYLE: &str = "\
body{font-family:sans-serif;color:#222;max-width:900px;margin:1em auto;padding:0 1em}
svg{max-width:100%;height:auto}
figure{margin:0 0 1.5em 0}
figcaption{font-size:90%;color:#555}
table{border-collapse:collapse;font-size:90%}
th,td{border:1px solid #bbb;padding:2px 8px;text-align:right}
th[scope=row]{text-align:left;font-weight:normal}
tr.part th{text-align:left;background:#eee}
section{break-inside:avoid;page-break-inside:avoid}
.chart h2{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}
@media print{nav{display:none}body{max-width:none}}";

/// The whole page for `runs`, whose charts are `charts` drawn as `drawn`.
pub fn page(runs: &[Run], charts: &[Chart], drawn: &[Rendered]) -> String {
    let names: Vec<String> = runs.iter().map(|r| escape(&r.label)).collect();
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"generator\" content=\"sockloop {}\">\n\
         <title>sockloop report: {}</title>\n<style>\n{STYLE}\n</style>\n</head>\n<body>\n\
         <h1>sockloop report</h1>\n<p>Runs: {}. Latency in microseconds (µs). \
         Made by <code>sockloop report</code> from <code>load --json</code> output.</p>\n",
        env!("CARGO_PKG_VERSION"),
        names.join(", "),
        names
            .iter()
            .map(|n| format!("<b>{n}</b>"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    s.push_str("<nav>\n<ul>\n");
    for (i, c) in charts.iter().enumerate() {
        let _ = writeln!(s, "<li><a href=\"#chart{i}\">{}</a></li>", escape(&c.title));
    }
    s.push_str("<li><a href=\"#figures\">Figures and settings</a></li>\n</ul>\n</nav>\n");
    if charts.is_empty() {
        s.push_str("<p>No latency or timeline in these runs: nothing to chart.</p>\n");
    }
    for (i, (c, d)) in charts.iter().zip(drawn).enumerate() {
        let title = escape(&c.title);
        let _ = write!(
            s,
            "<section id=\"chart{i}\" class=\"chart\">\n<h2>{title}</h2>\n<figure role=\"img\" aria-label=\"{title}\">\n{}\n",
            inline_svg(&d.svg)
        );
        if let Some(note) = &c.note {
            let _ = writeln!(s, "<figcaption>{}</figcaption>", escape(note));
        }
        s.push_str("</figure>\n</section>\n");
    }
    s.push_str("<section id=\"figures\">\n<h2>Figures and settings</h2>\n");
    s.push_str(&table(runs));
    s.push_str("</section>\n</body>\n</html>\n");
    s
}

/// plotters' SVG as an element of the page: without an XML declaration.
fn inline_svg(svg: &str) -> &str {
    svg.find("<svg").map_or(svg, |i| &svg[i..])
}

/// Rows: (name, one cell per run); a row is kept if any run has it.
type Rows = Vec<(String, Vec<Option<String>>)>;

fn add(rows: &mut Rows, n: usize, i: usize, name: &str, value: String) {
    let at = match rows.iter().position(|(k, _)| k == name) {
        Some(at) => at,
        None => {
            rows.push((name.to_string(), vec![None; n]));
            rows.len() - 1
        }
    };
    rows[at].1[i] = Some(value);
}

/// The headline figures and settings of each run, one column per run.
pub fn table(runs: &[Run]) -> String {
    let n = runs.len();
    let mut figures = Rows::new();
    let mut settings = Rows::new();
    for (i, r) in runs.iter().enumerate() {
        for (k, v) in &r.figures {
            add(&mut figures, n, i, k, v.clone());
        }
        let fives = [
            ("latency", &r.latency),
            (
                "latency from the send (uncorrected)",
                &r.latency_uncorrected,
            ),
            ("send lateness", &r.send_lateness),
            ("connect latency", &r.connect_latency),
        ];
        for (what, five) in fives {
            let Some(f) = five else { continue };
            for (p, v) in [
                ("p50", f.p50),
                ("p90", f.p90),
                ("p99", f.p99),
                ("p99.9", f.p99_9),
                ("max", f.max),
            ] {
                if let Some(v) = v {
                    add(
                        &mut figures,
                        n,
                        i,
                        &format!("{what} {p}, µs"),
                        format!("{v:.1}"),
                    );
                }
            }
        }
        if let Some(e) = &r.histogram_error {
            add(&mut figures, n, i, "histogram", e.clone());
        }
        for (k, v) in &r.settings {
            add(&mut settings, n, i, k, v.clone());
        }
    }
    let mut s = String::from("<table>\n<thead><tr><th scope=\"col\">run</th>");
    for r in runs {
        let _ = write!(s, "<th scope=\"col\">{}</th>", escape(&r.label));
    }
    s.push_str("</tr></thead>\n<tbody>\n");
    let span = n + 1;
    for (part, rows) in [("figures", &figures), ("settings", &settings)] {
        if rows.is_empty() {
            continue;
        }
        let _ = writeln!(
            s,
            "<tr class=\"part\"><th colspan=\"{span}\" scope=\"rowgroup\">{part}</th></tr>"
        );
        for (k, cells) in rows {
            let _ = write!(s, "<tr><th scope=\"row\">{}</th>", escape(k));
            for c in cells {
                let _ = write!(s, "<td>{}</td>", escape(c.as_deref().unwrap_or("")));
            }
            s.push_str("</tr>\n");
        }
    }
    s.push_str("</tbody>\n</table>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn user_text_is_escaped() {
        assert_eq!(
            escape("<a href='x'>&\""),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;"
        );
    }

    #[test]
    fn the_table_has_a_column_per_run_and_a_row_per_key_any_run_has() {
        let a = Run::from_json(
            "a<b",
            &json!({"connections": 5, "errors": 0, "latency_us": {"p50": 1.25},
                    "settings": {"conns": 5, "rate": null}}),
        )
        .unwrap();
        let b = Run::from_json("b", &json!({"connections": 7, "lost": 3})).unwrap();
        let t = table(&[a, b]);
        assert!(t.contains("<th scope=\"col\">a&lt;b</th><th scope=\"col\">b</th>"));
        assert!(t.contains("<tr><th scope=\"row\">connections</th><td>5</td><td>7</td></tr>"));
        assert!(t.contains("<tr><th scope=\"row\">lost datagrams</th><td></td><td>3</td></tr>"));
        assert!(t.contains("<th scope=\"row\">latency p50, µs</th><td>1.2</td>"));
        assert!(t.contains("<th scope=\"row\">rate</th><td>—</td><td></td>"));
    }
}
