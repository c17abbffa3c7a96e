//! A signal the instant the server says it is ready is a graceful stop, not
//! a death by signal (README, "Stopping"): the handlers are in place before
//! the first socket is bound, so before the ready line. A supervisor that
//! starts a server, waits for its ready line and stops it at once is the
//! case: before the fix, 61 of 200 runs with `--workers 4` died of SIGTERM.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::Instant;

use common::*;

/// Start `serve` with `workers`, SIGTERM it as soon as its ready line is
/// read, and return how it ended: `Ok(())` for exit 0, `Err` otherwise.
fn stop_at_ready(workers: &str) -> Result<(), String> {
    let mut child = bin()
        .args(["serve", "--listen", "echo=tcp://127.0.0.1:0"])
        .args(["--listen", "upper=udp://127.0.0.1:0", "--workers", workers])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn sockloop");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        if out.read_line(&mut line).unwrap() == 0 {
            let _ = child.kill();
            let _ = child.wait();
            return Err("stdout closed before the ready line".into());
        }
        if line.trim_end() == "The server is ready to receive" {
            break;
        }
    }
    // SAFETY: kill(2) on our own child's pid, which has not been waited for
    // (so the pid is still ours); no memory is involved.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(rc, 0, "kill");
    let end = Instant::now() + WAIT;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return match (st.code(), st.signal()) {
                (Some(0), _) => Ok(()),
                (code, sig) => Err(format!("exit code {code:?}, signal {sig:?}")),
            };
        }
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            return Err("did not exit".into());
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

fn runs(workers: &str, n: usize) {
    let bad: Vec<String> = (0..n)
        .filter_map(|i| {
            stop_at_ready(workers)
                .err()
                .map(|e| format!("run {i}: {e}"))
        })
        .collect();
    assert!(
        bad.is_empty(),
        "--workers {workers}: {} of {n} runs did not exit 0: {bad:?}",
        bad.len()
    );
}

#[test]
fn sigterm_at_the_ready_line_is_a_graceful_exit_with_four_workers() {
    runs("4", 200);
}

#[test]
fn sigterm_at_the_ready_line_is_a_graceful_exit_with_one_worker() {
    runs("1", 200);
}
