//! Helpers shared by the `lab_*` integration tests: run the built `kgroups-lab` and read its results.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;

/// The lab binary Cargo built for these tests.
pub fn lab() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kgroups-lab"))
}

/// The real node binary.
pub fn kgroups() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kgroups"))
}

/// `target/<profile>/examples/toy_node`, found from this test binary's own path
/// (`target/<profile>/deps/<test>`). `cargo test` builds examples; a filtered `cargo test --test …`
/// does not, hence the hint.
pub fn toy_node() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>");
    let path = profile_dir
        .join("examples")
        .join(format!("toy_node{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is missing: run plain `cargo test` (it builds examples) or `cargo build --example toy_node`",
        path.display()
    );
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/toy_node.rs");
    let built = path.metadata().and_then(|m| m.modified()).ok();
    let edited = src.metadata().and_then(|m| m.modified()).ok();
    if let (Some(built), Some(edited)) = (built, edited) {
        assert!(
            built >= edited,
            "{} is older than its source: rebuild it (`cargo build --example toy_node`)",
            path.display()
        );
    }
    path
}

/// One finished lab run.
#[derive(Debug)]
pub struct Run {
    /// The exit code.
    pub code: i32,
    /// results.json.
    pub json: Value,
    /// What it printed.
    pub stdout: String,
    /// Its logs.
    pub stderr: String,
}

impl Run {
    /// The error kinds in results.json.
    pub fn error_kinds(&self) -> Vec<String> {
        self.json["errors"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Asserts a valid run with some work done, and the documented results.json shape.
    pub fn assert_valid(&self, min_ops: u64) {
        assert_eq!(
            self.code, 0,
            "expected a valid run:\n{}\n{}",
            self.stdout, self.stderr
        );
        assert_eq!(self.json["valid"], Value::Bool(true));
        assert!(self.error_kinds().is_empty(), "{:?}", self.json["errors"]);
        let ops = self.json["ops"].as_u64().unwrap();
        assert!(ops >= min_ops, "only {ops} operations:\n{}", self.stdout);
        assert!(self.json["ok"].as_u64().unwrap() > 0);
        self.assert_shape();
    }

    /// Asserts an invalid run that reports `kind`.
    pub fn assert_invalid_with(&self, kind: &str) {
        assert_eq!(
            self.code, 1,
            "expected an invalid run:\n{}\n{}",
            self.stdout, self.stderr
        );
        assert_eq!(self.json["valid"], Value::Bool(false));
        assert!(
            self.error_kinds().iter().any(|k| k == kind),
            "expected {kind} among {:?}\n{}",
            self.error_kinds(),
            self.stdout
        );
        assert!(self.json["errors"][kind].as_u64().unwrap() > 0);
        assert!(
            self.stdout.contains("INVALID") && self.stdout.contains(kind),
            "{}",
            self.stdout
        );
        self.assert_shape();
    }

    fn assert_shape(&self) {
        let j = &self.json;
        assert!(j["workload"].is_string());
        for k in ["ops", "ok"] {
            assert!(j[k].is_u64(), "{k}");
        }
        assert!(j["errors"].is_object());
        for k in ["p50", "p99", "max"] {
            assert!(j["latency_us"][k].is_u64(), "latency_us.{k}");
        }
        assert!(j["latency_us"]["p50"].as_u64() <= j["latency_us"]["max"].as_u64());
        assert!(j["throughput"].is_f64());
        for k in ["client_msgs", "server_msgs"] {
            assert!(j["net"][k].is_u64(), "net.{k}");
        }
        assert!(j["net"]["server_msgs_per_op"].is_f64());
    }
}

static RUNS: AtomicU64 = AtomicU64::new(0);

/// Runs workload `workload` of `kgroups-lab test` on `nodes` processes of `bin`, with the test's
/// `settings`, then the case's `extra` flags, and `node_args` for every node.
pub fn run_workload(
    workload: &str,
    bin: &Path,
    nodes: &str,
    settings: &[&str],
    extra: &[&str],
    node_args: &[&str],
) -> Run {
    let bin = bin.to_str().unwrap();
    let mut args = vec!["-w", workload, "--bin", bin, "--node-count", nodes];
    args.extend_from_slice(settings);
    args.extend_from_slice(extra);
    run_lab(&args, node_args)
}

/// Runs `kgroups-lab test <args> --results <tmp> --no-progress -- <node_args>`.
pub fn run_lab(args: &[&str], node_args: &[&str]) -> Run {
    let n = RUNS.fetch_add(1, Ordering::Relaxed);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "lab-{}-{}-{n}",
        std::process::id(),
        std::thread::current()
            .name()
            .unwrap_or("t")
            .replace("::", "-")
    ));
    let results = dir.join("results.json");
    let _ = std::fs::remove_file(&results);
    let mut cmd = Command::new(lab());
    cmd.arg("test")
        .args(args)
        .arg("--results")
        .arg(&results)
        .arg("--no-progress");
    if !node_args.is_empty() {
        cmd.arg("--").args(node_args);
    }
    let out = cmd.output().expect("run kgroups-lab");
    let json = std::fs::read_to_string(&results)
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(Value::Null);
    Run {
        code: out.status.code().unwrap_or(-1),
        json,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
