//! Finding the shards' JSON objects in the inputs `merge` is given.
//!
//! A file holds one `load --json` object (as `load` prints it, or
//! pretty-printed), or several, one per line. `-` is stdin, one object per
//! line, the way `kubectl logs -l … --tail=-1` delivers the pods' output:
//! interleaved with their stderr (progress lines, warnings), which is why
//! a line that does not begin with `{` is skipped rather than refused.
//! `kubectl logs --prefix` puts `[pod/NAME/CONTAINER] ` in front of each
//! line; that prefix is skipped too. A line that begins with `{` but is
//! not a JSON object is an error naming the line: a truncated shard output
//! must not vanish silently.

use std::io::{self, BufRead, Read};

use serde_json::Value;

use super::MergeError;

/// A JSON object and where it came from (`FILE`, `FILE line N`,
/// `stdin line N`).
pub(crate) struct Found {
    pub source: String,
    pub value: Value,
}

/// Every object in `inputs` (`-` is stdin, read once), in order.
pub(crate) fn read_inputs(inputs: &[String]) -> Result<Vec<Found>, MergeError> {
    let mut found = Vec::new();
    let mut stdin_read = false;
    for input in inputs {
        if input == "-" {
            if stdin_read {
                return Err(MergeError::Usage("`-` (stdin) is given twice".into()));
            }
            stdin_read = true;
            let lines = io::stdin().lock().lines();
            found.extend(objects_in_lines("stdin", lines)?);
            continue;
        }
        let mut text = String::new();
        std::fs::File::open(input)
            .and_then(|mut f| f.read_to_string(&mut text))
            .map_err(|e| MergeError::Runtime(format!("{input}: {e}")))?;
        // One object, however it is laid out; else one per line.
        match serde_json::from_str::<Value>(&text) {
            Ok(value @ Value::Object(_)) => found.push(Found {
                source: input.clone(),
                value,
            }),
            _ => found.extend(objects_in_lines(input, text.lines().map(|l| Ok(l.into())))?),
        }
    }
    Ok(found)
}

/// The objects on the lines of `name`, skipping lines that are not JSON
/// objects (see the module doc).
pub(crate) fn objects_in_lines(
    name: &str,
    lines: impl Iterator<Item = io::Result<String>>,
) -> Result<Vec<Found>, MergeError> {
    let mut found = Vec::new();
    for (n, line) in lines.enumerate() {
        let line = line.map_err(|e| MergeError::Runtime(format!("{name}: {e}")))?;
        let Some(json) = json_part(&line) else {
            continue;
        };
        let source = format!("{name} line {}", n + 1);
        match serde_json::from_str::<Value>(json) {
            Ok(value @ Value::Object(_)) => found.push(Found { source, value }),
            Ok(_) | Err(_) => {
                return Err(MergeError::Usage(format!(
                    "{source}: starts like a JSON object but is not one (a truncated shard output?)"
                )))
            }
        }
    }
    Ok(found)
}

/// The part of a line that should be a JSON object: the line itself, or
/// what follows a `kubectl logs --prefix` tag; `None` for anything else.
fn json_part(line: &str) -> Option<&str> {
    let line = line.trim();
    let line = match line.strip_prefix('[') {
        Some(rest) if line.starts_with("[pod/") => rest.split_once("] ")?.1.trim_start(),
        _ => line,
    };
    line.starts_with('{').then_some(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn objects(text: &str) -> Result<Vec<Found>, MergeError> {
        objects_in_lines("stdin", text.lines().map(|l| Ok(l.to_string())))
    }

    #[test]
    fn kubectl_logs_noise_is_skipped() {
        let text = "   1 s  open 10  1000 msg/s\n{\"shard\":\"0/2\"}\nwarning: something\n[pod/load-1-abc/load] {\"shard\":\"1/2\"}\n\n";
        let found = objects(text).unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].source, "stdin line 2");
        assert_eq!(found[1].value["shard"], "1/2");
    }

    #[test]
    fn a_truncated_object_is_an_error_naming_its_line() {
        let Err(MergeError::Usage(why)) = objects("progress\n{\"shard\":\"0/2\",\"mess") else {
            panic!("a truncated object was accepted");
        };
        assert!(why.contains("stdin line 2"), "{why}");
    }
}
