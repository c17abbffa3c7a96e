//! `sockloop send` and `sockloop chat`: their `--help` examples and their
//! exit codes (their few arguments are in `main.rs`'s command table; the
//! work is `sockloop::client`).

use std::process::ExitCode;

use sockloop::client::{self, ChatArgs, SendArgs};

/// `sockloop send`: exit 0 if every reply came, 1 if any was lost.
pub(crate) fn send(args: &SendArgs) -> Result<ExitCode, String> {
    let lost = client::send(args)?;
    Ok(if lost == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `sockloop chat`: exit 0 at the end of input.
pub(crate) fn chat(args: &ChatArgs) -> Result<ExitCode, String> {
    client::chat(args).map(|()| ExitCode::SUCCESS)
}

/// Said at the end of `send --help`.
pub(crate) const SEND_EXAMPLES: &str = "\
Examples:
  printf 'hello\\nworld\\n' | sockloop send tcp://127.0.0.1:12000
  printf 'mississippi\\n' | sockloop send tcp://127.0.0.1:7001
  printf 'ping\\n' | sockloop send udp://127.0.0.1:12000 --timeout 0.5
It ends at the end of input, once every reply has come (or timed out).
A reply that comes after its --timeout answers its own line: it is shown on
stderr as `late reply to line N ...`, never as the reply to a later line.
A server that answers a line with `ERR ...` and closes makes send exit 1.";

/// Said at the end of `chat --help`.
pub(crate) const CHAT_EXAMPLES: &str = "\
Examples:
  sockloop chat tcp://127.0.0.1:7002
  sockloop chat udp://127.0.0.1:7004
Type lines to send them; the room's lines appear as they come. Leave with
Ctrl-D (end of input; over UDP this sends /leave) or Ctrl-C. If the server
closes the connection, chat says so and exits 1.";
