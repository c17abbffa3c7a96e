//! The report in a real browser: headless Chromium (Debian's `chromium`,
//! which `.ci/run` installs) renders a report of two real `load` runs to a
//! PNG and dumps its DOM. The picture must not be blank (both runs' colours
//! drawn), every chart title and legend entry must be in the DOM, and the
//! page must log nothing to the console. Without Chromium the test fails
//! and says how to install it: it never passes silently.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::*;
use serde_json::Value;
use sockloop::Options;

/// The Chromium binary: `$CHROMIUM`, else `chromium` on the PATH.
fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("CHROMIUM") {
        return p.into();
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("chromium"))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "this test needs Chromium and it is not installed: run `apt-get install -y chromium` \
             (.ci/run does), or point $CHROMIUM at a Chromium binary"
        )
    })
}

/// Headless Chromium on `page` with `args`, in a fresh profile, nothing
/// fetched in the background; killed after 60 s (coreutils `timeout`).
fn headless(page: &Path, profile: &Path, args: &[&str]) -> Output {
    let _ = std::fs::remove_dir_all(profile);
    let out = Command::new("timeout")
        .arg("60")
        .arg(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium failed ({:?}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Console messages in Chromium's log: `...:INFO:CONSOLE(1)] "..."` lines.
fn console_lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(str::to_string)
        .collect()
}

/// Pixels of each exact RGB colour in a PNG.
fn colours(png_path: &Path) -> std::collections::HashMap<[u8; 3], usize> {
    let decoder = png::Decoder::new(std::fs::File::open(png_path).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let step = info.color_type.samples();
    assert!(step >= 3, "an RGB screenshot, got {:?}", info.color_type);
    let mut counts = std::collections::HashMap::new();
    for px in buf[..info.buffer_size()].chunks(step) {
        *counts.entry([px[0], px[1], px[2]]).or_insert(0) += 1;
    }
    counts
}

#[test]
fn a_report_of_two_runs_renders_in_chromium_with_every_chart_and_legend() {
    let browser = chromium();
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-browser");
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();

    // Two real runs against one echo server: plain, and churning.
    let srv = serve(&["echo=tcp://127.0.0.1:0"], Options::default());
    let ep = format!("tcp://{}", srv.addrs[0]);
    let mut runs = Vec::new();
    for (name, extra) in [("steady", &[][..]), ("churning", &["--churn", "20"][..])] {
        let o = bin()
            .args(["load", &ep, "--conns", "4", "--duration", "2", "--json"])
            .args(extra)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let f = d.join(format!("{name}.json"));
        std::fs::write(&f, &o.stdout).unwrap();
        runs.push((name, f, serde_json::from_slice::<Value>(&o.stdout).unwrap()));
    }
    let page = d.join("two.html");
    let o = bin()
        .arg("report")
        .args(runs.iter().map(|r| &r.1))
        .arg("--html")
        .arg(&page)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // What must be in the DOM, worked out from the JSON, not from the report code.
    let mut titles = vec!["Latency by percentile"];
    let mut legends: Vec<String> = runs.iter().map(|r| r.0.to_string()).collect();
    let has_timeline = runs
        .iter()
        .all(|r| r.2["timeline"].as_array().is_some_and(|t| t.len() >= 2));
    assert!(has_timeline, "both runs' load --json have a timeline");
    titles.extend([
        "Messages per second",
        "Latency second by second: p50 and p99",
        "Errors per second",
        "Open connections",
    ]);
    for r in &runs {
        legends.push(format!("{} p50", r.0));
        legends.push(format!("{} p99", r.0));
    }
    assert!(runs[1].2["connect_latency_us"].is_object());
    titles.push("Connect latency by percentile (--churn)");

    let dom = headless(&page, &d.join("profile-dom"), &["--dump-dom"]);
    let html = String::from_utf8_lossy(&dom.stdout);
    assert!(html.contains("<svg"), "the DOM has the charts: {html:.300}");
    for t in &titles {
        assert!(
            html.contains(&format!(">{t}</text>")),
            "chart {t:?} not in the DOM"
        );
    }
    for l in &legends {
        assert!(
            html.contains(&format!(">{l}</text>")),
            "legend entry {l:?} not in the DOM"
        );
    }
    assert_eq!(
        console_lines(&dom),
        Vec::<String>::new(),
        "console messages"
    );

    let png = d.join("two.png");
    let shot = headless(
        &page,
        &d.join("profile-png"),
        &[
            "--window-size=1000,6000",
            &format!("--screenshot={}", png.display()),
        ],
    );
    assert_eq!(
        console_lines(&shot),
        Vec::<String>::new(),
        "console messages"
    );
    let counts = colours(&png);
    // Not blank: many colours (anti-aliased lines and text), and each run's
    // own line colour (render.rs's palette: #4E79A7, #F28E2B) well drawn.
    assert!(
        counts.len() >= 20,
        "{} distinct colours: blank?",
        counts.len()
    );
    for (name, rgb) in [
        ("steady", [0x4e, 0x79, 0xa7]),
        ("churning", [0xf2, 0x8e, 0x2b]),
    ] {
        let n = counts.get(&rgb).copied().unwrap_or(0);
        assert!(n >= 500, "{name}'s colour {rgb:02x?}: {n} pixels");
    }
    eprintln!("screenshot: {} ({browser:?})", png.display());
}
