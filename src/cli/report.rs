//! `sockloop report FILE... --html OUT [--label NAME]...`: its arguments and
//! its one usage rule (docs/protocol.md, "`sockloop report`"); the work is
//! the library's `sockloop::report`.

use std::process::ExitCode;

/// Said at the end of `report --help`.
pub(crate) const EXAMPLES: &str = "\
Examples:
  sockloop load tcp://127.0.0.1:7000 --conns 50 --html run.html   # one run, its report
  sockloop load tcp://127.0.0.1:7000 --json > sockloop.json
  sockloop load tcp://127.0.0.1:7001 --json > tokio.json
  sockloop report sockloop.json tokio.json --html compare.html
  sockloop report a.json b.json --label 'before' --label 'after' --html ab.html
The page shows latency by percentile (every run overlaid), each run second by
second, and a table of figures and settings. Open it in any browser; it needs
no network and no script.";

#[derive(clap::Args)]
pub(crate) struct ReportArgs {
    /// `load --json` (or `merge --json`) output, one JSON object a file.
    #[arg(value_name = "FILE", required = true, num_args = 1..)]
    pub(crate) files: Vec<std::path::PathBuf>,
    /// Write the report to OUT: one self-contained HTML file (inline SVG,
    /// no script, nothing fetched).
    #[arg(long, value_name = "OUT", required = true)]
    pub(crate) html: std::path::PathBuf,
    /// The name of a run in legends and tables, one per FILE in order
    /// (default: each file's name without its extension).
    #[arg(long = "label", value_name = "NAME")]
    pub(crate) labels: Vec<String>,
}

/// Runs `sockloop report`.
pub(crate) fn run(a: ReportArgs) -> Result<ExitCode, String> {
    if !a.labels.is_empty() && a.labels.len() != a.files.len() {
        clap::Error::raw(
            clap::error::ErrorKind::WrongNumberOfValues,
            format!(
                "report: {} --label for {} files (give one per file, in order, or none)\n",
                a.labels.len(),
                a.files.len()
            ),
        )
        .exit();
    }
    sockloop::report::report_files(&a.files, &a.labels, &a.html)?;
    Ok(ExitCode::SUCCESS)
}
