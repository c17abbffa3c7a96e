//! `sockloop report` and `load --html`: runs as one self-contained HTML page
//! of charts (docs/protocol.md, "`sockloop report`").
//!
//! Data flows one way:
//!
//! ```text
//!   JSON object (load --json, merge --json)
//!     model.rs    → Run: figures, percentiles, histogram, timeline, settings
//!     charts.rs   → Chart: title, axes, series of points   (what to show)
//!     render.rs   → SVG, drawn by plotters                  (how it looks)
//!     html.rs     → the page: charts inline, a table of figures and settings
//! ```
//!
//! Nothing here does I/O but [`report_files`] (reads the JSON files) and
//! [`write()`]; the page is a `String` from [`html()`].

pub mod charts;
pub mod hist;
pub mod html;
pub mod model;
pub mod render;

use std::path::{Path, PathBuf};

pub use model::Run;

/// The page for `runs`, one chart per kind of data they have.
pub fn html(runs: &[Run]) -> Result<String, String> {
    let charts = charts::charts(runs);
    let drawn = charts
        .iter()
        .map(render::render)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(html::page(runs, &charts, &drawn))
}

/// What a file is called when no `--label` is given: its stem
/// (`runs/sockloop.json` → `sockloop`).
pub(crate) fn default_label(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// Reads each file (one JSON object: `load --json` or `merge --json`
/// output) into a run labelled by `labels[i]`, or its stem when `labels`
/// is empty. Errors name the file.
pub(crate) fn read_runs(files: &[PathBuf], labels: &[String]) -> Result<Vec<Run>, String> {
    files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let label = labels.get(i).cloned().unwrap_or_else(|| default_label(f));
            let text =
                std::fs::read_to_string(f).map_err(|e| format!("report: {}: {e}", f.display()))?;
            let v: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| format!("report: {}: not JSON: {e}", f.display()))?;
            Run::from_json(&label, &v).map_err(|e| format!("report: {}: {e}", f.display()))
        })
        .collect()
}

/// `sockloop report FILE... --html OUT`: reads the runs, writes the page.
pub fn report_files(files: &[PathBuf], labels: &[String], out: &Path) -> Result<(), String> {
    let runs = read_runs(files, labels)?;
    write(out, &runs)
}

/// Writes the page for `runs` to `out`; the error names the file.
pub fn write(out: &Path, runs: &[Run]) -> Result<(), String> {
    let page = html(runs)?;
    std::fs::write(out, page).map_err(|e| format!("--html {}: {e}", out.display()))
}

/// `load --html OUT`: the run just made, from its `--json` object and its
/// latency histogram (ns), which draws the curve when the JSON has no
/// `histogram` key of its own.
pub fn write_one(
    out: &Path,
    label: &str,
    json: &str,
    latency_ns: &hdrhistogram::Histogram<u64>,
) -> Result<(), String> {
    let v = with_histogram(json, latency_ns).map_err(|e| format!("--html: {e}"))?;
    let run = Run::from_json(label, &v).map_err(|e| format!("--html: {e}"))?;
    write(out, &[run])
}

/// A run's `--json` object with a `histogram` key made from `latency_ns`
/// when it has none (`load --html`, and the benches that save their runs
/// for `sockloop report`).
pub fn with_histogram(
    json: &str,
    latency_ns: &hdrhistogram::Histogram<u64>,
) -> Result<serde_json::Value, String> {
    let mut v: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("the run's JSON: {e}"))?;
    if let Some(o) = v.as_object_mut() {
        if !o.contains_key("histogram") && !latency_ns.is_empty() {
            o.insert(
                "histogram".into(),
                hist::encode_ns_as_us(latency_ns)?.into(),
            );
        }
    }
    Ok(v)
}
