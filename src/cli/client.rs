//! `sockloop send` and `sockloop chat`: their `--help` examples (their few
//! arguments are in `main.rs`'s command table; the work is
//! `sockloop::client`).

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
