//! `sockloop merge`: shards' `load --json` outputs into one run; the work is
//! `sockloop::merge`, this file turns its answer into output and exit codes.

use std::process::ExitCode;

/// Said at the end of `merge --help`.
pub(crate) const EXAMPLES: &str = "\
Examples:
  sockloop merge shard-0.json shard-1.json shard-2.json shard-3.json
  kubectl logs -l batch.kubernetes.io/job-name=sockloop-load --tail=-1 --max-log-requests=20 | sockloop merge -
Exit 2 if a shard is missing or repeated or the shards' options differ (naming which); 1 if any failed.";

/// Runs `sockloop merge`.
pub(crate) fn run(inputs: &[String], json: bool) -> Result<ExitCode, String> {
    use sockloop::merge::{merge_inputs, MergeError};
    let merged = match merge_inputs(inputs) {
        Ok(m) => m,
        Err(MergeError::Usage(why)) => {
            eprintln!("error: merge: {why}");
            return Ok(ExitCode::from(2));
        }
        Err(MergeError::Runtime(why)) => return Err(why),
    };
    print!("{}", merged.output(json));
    Ok(ExitCode::from(u8::from(!merged.ok())))
}
