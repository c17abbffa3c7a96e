//! deploy/: the Kubernetes Job and the recipe in deploy/README.md depend
//! on these fields of the manifest; a change that breaks the recipe fails
//! here.

mod common;

use serde_yaml::Value;

fn manifest() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/kubernetes/load-job.yaml"
    ))
    .expect("deploy/kubernetes/load-job.yaml");
    serde_yaml::from_str(&text).expect("the manifest is YAML")
}

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/README.md"))
        .expect("deploy/README.md")
}

/// The value at a path of keys, or a panic naming the path.
fn at<'a>(v: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(v, |v, k| {
        v.get(*k)
            .unwrap_or_else(|| panic!("the manifest has no {}", path.join(".")))
    })
}

/// The container's env value `name`.
fn env<'a>(container: &'a Value, name: &str) -> &'a str {
    at(container, &["env"])
        .as_sequence()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .and_then(|e| e["value"].as_str())
        .unwrap_or_else(|| panic!("no env {name}"))
}

#[test]
fn the_job_is_indexed_unretried_and_one_shard_per_node() {
    let m = manifest();
    assert_eq!(m["apiVersion"], "batch/v1");
    assert_eq!(m["kind"], "Job");
    let spec = at(&m, &["spec"]);
    assert_eq!(spec["completionMode"], "Indexed");
    assert_eq!(spec["backoffLimit"], 0, "a retried shard would start late");
    assert_eq!(
        spec["parallelism"], spec["completions"],
        "every shard runs at once"
    );
    let pod = at(spec, &["template", "spec"]);
    assert_eq!(pod["restartPolicy"], "Never");
    let labels = at(spec, &["template", "metadata", "labels"]);
    let spread = at(pod, &["topologySpreadConstraints"])
        .as_sequence()
        .unwrap();
    assert!(
        spread
            .iter()
            .any(|c| c["topologyKey"] == "kubernetes.io/hostname"
                && c["maxSkew"] == 1
                && c["whenUnsatisfiable"] == "DoNotSchedule"
                && c["labelSelector"]["matchLabels"]
                    .as_mapping()
                    .unwrap()
                    .iter()
                    .all(|(k, v)| labels.get(k) == Some(v))),
        "one shard per node: a hostname spread constraint selecting the job's own pods"
    );
}

#[test]
fn the_command_shards_by_the_completion_index_and_starts_at_one_second() {
    let m = manifest();
    let containers = at(&m, &["spec", "template", "spec", "containers"])
        .as_sequence()
        .unwrap();
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    let shards: u64 = env(c, "SHARDS").parse().unwrap();
    assert_eq!(
        Some(shards),
        m["spec"]["completions"].as_u64(),
        "SHARDS = completions"
    );
    let start_at: u64 = env(c, "START_AT").parse().unwrap();
    assert!(start_at > 1_600_000_000, "START_AT is a unix second");
    assert!(
        env(c, "TARGET").starts_with("tcp://"),
        "TARGET is a load target"
    );
    // A shell runs it, so "$JOB_COMPLETION_INDEX" is expanded.
    assert_eq!(c["command"][0], "/bin/sh");
    assert_eq!(c["command"][1], "-c");
    let script = c["args"][0].as_str().unwrap();
    for piece in [
        "sockloop load \"$TARGET\"",
        "--shard \"$JOB_COMPLETION_INDEX/$SHARDS\"",
        "--start-at \"$START_AT\"",
        "--json",
        "|| [ $? -eq 1 ]",
    ] {
        assert!(
            script.contains(piece),
            "the command lacks {piece}: {script}"
        );
    }
}

#[test]
fn the_recipe_names_this_job_and_pipes_its_logs_into_merge() {
    let m = manifest();
    let name = m["metadata"]["name"].as_str().unwrap();
    let text = readme();
    for piece in [
        "kubectl apply -f -".to_string(),
        format!("kubectl logs -l batch.kubernetes.io/job-name={name} --tail=-1"),
        "--max-log-requests".to_string(),
        "| sockloop merge -".to_string(),
        format!("kubectl wait --for=condition=complete job/{name}"),
        "podman build -f deploy/Containerfile".to_string(),
        // The sed in the recipe replaces the manifest's START_AT.
        format!(
            "s/\\\"{}\\\"/",
            m["spec"]["template"]["spec"]["containers"][0]["env"]
                .as_sequence()
                .unwrap()
                .iter()
                .find(|e| e["name"] == "START_AT")
                .unwrap()["value"]
                .as_str()
                .unwrap()
        ),
    ] {
        assert!(text.contains(&piece), "deploy/README.md lacks {piece}");
    }
    let containerfile =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/Containerfile"))
            .unwrap();
    assert!(containerfile.contains("cargo build --release --locked --bin sockloop"));
    assert!(
        containerfile.contains("debian:bookworm-slim"),
        "the image needs /bin/sh for the Job's command"
    );
}

/// The pod's command, run as the Job runs it (`/bin/sh -c`, the env the
/// manifest and the Job controller give each pod) for every index, against
/// a local echo server, with `sockloop` on PATH; its outputs, piped as
/// `kubectl logs` would, merge (exit 0) into the whole test.
#[test]
fn the_pods_command_runs_and_its_outputs_merge() {
    use std::io::Write;
    use std::process::{Command, Stdio};

    let m = manifest();
    let c = &m["spec"]["template"]["spec"]["containers"][0];
    let shards: usize = env(c, "SHARDS").parse().unwrap();
    let srv = common::serve(&["echo=tcp://127.0.0.1:0"], sockloop::Options::default());
    let bin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_sockloop"))
        .parent()
        .unwrap()
        .to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let start_at = (sockloop::load::start::now_unix() + 2.0).ceil() as u64;
    let pods: Vec<_> = (0..shards)
        .map(|index| {
            Command::new(c["command"][0].as_str().unwrap())
                .arg(c["command"][1].as_str().unwrap())
                .arg(c["args"][0].as_str().unwrap())
                .env("PATH", &path)
                .env("JOB_COMPLETION_INDEX", index.to_string())
                .env("SHARDS", shards.to_string())
                .env("START_AT", start_at.to_string())
                .env("TARGET", format!("tcp://{}", srv.addrs[0]))
                .env("CONNS", "8")
                .env("DURATION", "0.5")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("/bin/sh")
        })
        .collect();
    let mut logs = Vec::new();
    for pod in pods {
        let out = pod.wait_with_output().unwrap();
        assert!(out.status.success(), "a pod failed: {out:?}");
        // kubectl logs: a pod's stderr and stdout, one after the other.
        logs.extend_from_slice(&out.stderr);
        logs.extend_from_slice(&out.stdout);
    }
    let mut merge = common::bin()
        .args(["merge", "-", "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    merge.stdin.take().unwrap().write_all(&logs).unwrap();
    let out = merge.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["shards"], shards);
    assert_eq!(v["connections"], 8);
    assert_eq!(v["start_unix"], start_at);
}
