//! Usage errors are usage errors: exit 2, an `error:` line that says what
//! is wrong with what was typed, and the usage of the sub-command typed
//! (not the top level's); and the runtime errors a newcomer meets first
//! say what to do.

mod common;

use std::net::TcpListener;
use std::process::{Output, Stdio};

use common::*;

fn run(args: &[&str]) -> Output {
    bin()
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn usage_error(args: &[&str]) -> String {
    let out = run(args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(err.starts_with("error:"), "{args:?}: {err}");
    err
}

/// clap answers `--conns -5` with "tip: to pass '-5' as a value, use
/// '-- -5'", which would make `-5` a target: every number says instead
/// what it must be.
#[test]
fn negative_numbers_get_a_message_not_a_dash_dash_tip() {
    for (args, says) in [
        (
            &["load", "tcp://127.0.0.1:1", "--conns", "-5"][..],
            "'-5' is not a whole number ≥ 1",
        ),
        (
            &["load", "tcp://127.0.0.1:1", "--threads", "-1"][..],
            "'-1' is not a whole number ≥ 1",
        ),
        (
            &["load", "tcp://127.0.0.1:1", "--size", "-1"][..],
            "'-1' is not a whole number from 1 to 1048576",
        ),
        (
            &["load", "tcp://127.0.0.1:1", "--pipeline", "-3"][..],
            "'-3' is not a whole number from 1 to 1024",
        ),
        (
            &["load", "tcp://127.0.0.1:1", "--churn", "-1"][..],
            "'-1' is not a whole number ≥ 1",
        ),
        (
            &["serve", "--max-frame", "-1"][..],
            "'-1' is not a whole number ≥ 1",
        ),
        (
            &["serve", "--max-conns", "-1"][..],
            "'-1' is not a whole number ≥ 1",
        ),
        (
            &["serve", "--write-buffer", "-1"][..],
            "'-1' is not a whole number ≥ 0",
        ),
        (
            &["serve", "--udp-max-members", "-1"][..],
            "'-1' is not a whole number ≥ 1",
        ),
        (
            &["serve", "--workers", "-2"][..],
            "'-2' is not a whole number from 1 to 1024",
        ),
    ] {
        let err = usage_error(args);
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(!err.contains("-- -"), "{args:?} suggests `--`: {err}");
    }
}

/// A zero that cannot mean anything is refused as typed, not met later as
/// a misleading runtime error.
#[test]
fn zero_timeout_and_zero_duration_are_usage_errors() {
    let err = usage_error(&["send", "tcp://127.0.0.1:1", "--timeout", "0"]);
    assert!(
        err.contains("'0' is not a number of seconds above 0"),
        "{err}"
    );
    assert!(!err.contains("connect"), "{err}");
    let err = usage_error(&["load", "tcp://127.0.0.1:1", "--duration", "0"]);
    assert!(
        err.contains("'0' is not a number of seconds above 0"),
        "{err}"
    );
    assert!(!err.contains("echo-like"), "{err}");
}

#[test]
fn rules_checked_after_parsing_show_the_sub_commands_usage() {
    let err = usage_error(&[
        "serve",
        "--listen",
        "echo=tcp://127.0.0.1:7999",
        "--listen",
        "count=tcp://127.0.0.1:7999",
    ]);
    assert!(err.contains("is listed twice"), "{err}");
    assert!(err.contains("Usage: sockloop serve"), "{err}");
    let err = usage_error(&["load", "udp://127.0.0.1:1", "--churn", "3"]);
    assert!(err.contains("tcp://"), "{err}");
    assert!(err.contains("Usage: sockloop load"), "{err}");
}

#[test]
fn a_listener_typed_without_listen_gets_a_hint() {
    let err = usage_error(&["serve", "echo=tcp://127.0.0.1:0"]);
    assert!(
        err.contains("sockloop serve --listen 'echo=tcp://127.0.0.1:0'"),
        "{err}"
    );
    assert!(err.contains("Usage: sockloop serve"), "{err}");
}

#[test]
fn address_in_use_says_why_and_what_to_do() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let out = run(&["serve", "--listen", &format!("echo=tcp://127.0.0.1:{port}")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("error: cannot bind"), "{err}");
    for must in ["another server", "another port", "port 0"] {
        assert!(err.contains(must), "lacks {must:?}: {err}");
    }
}

/// When the open-file limit, not --max-conns, caps connections, the user
/// is told without asking for logs.
#[test]
fn the_fd_limit_as_the_real_cap_is_a_warning_shown_by_default() {
    let max = usize::MAX.to_string(); // above any limit the system can have
    let mut srv = spawn_serve_with(
        {
            let mut c = bin();
            c.env_remove("RUST_LOG");
            c
        },
        &["--listen", "echo=tcp://127.0.0.1:0", "--max-conns", &max],
    );
    // The warning comes before the ready line; how the server then ends
    // is not this test's business.
    srv.signal("KILL");
    srv.wait();
    let err = srv.stderr();
    assert!(err.contains("WARN"), "{err}");
    assert!(err.contains("caps connections"), "{err}");
}

#[test]
fn load_help_teaches_udp_and_marks_tcp_only_options() {
    let out = run(&["load", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("udp://HOST:PORT"), "{help}");
    assert!(
        help.contains("sockloop load udp://"),
        "no UDP example:\n{help}"
    );
    for opt in ["--churn", "--idle", "--rate"] {
        // The option's paragraph, up to the next option.
        let at = help
            .find(&format!("      {opt} "))
            .unwrap_or_else(|| panic!("{opt}"));
        let para = &help[at..];
        let para = &para[..para[2..].find("\n  -").map_or(para.len(), |e| e + 2)];
        assert!(para.contains("(tcp:// only)"), "{opt}: {para}");
    }
}
