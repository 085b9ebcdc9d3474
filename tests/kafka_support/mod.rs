//! Shared by the `tests/kafka_*.rs` groups: a `kgroups broker` process on a free loopback port,
//! and where the real clients are.
//!
//! Clients live where `.ci/clients` installs them: `$KGROUPS_CLIENTS_DIR` (default
//! `target/clients`) holds `venv/bin/python` (confluent-kafka, kafka-python) and
//! `node/node_modules/kafkajs`; kcat is on `PATH`. With `KGROUPS_CLIENTS=required` (set by
//! `.ci/run`) a missing client fails the test; otherwise the test says it skipped and passes.

#![allow(dead_code)]

pub mod wire;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Scenarios of one test binary run one at a time: the machine is small and clients are busy.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running broker; killed on drop. Its stderr is kept for failure messages.
pub struct Broker {
    child: Child,
    pub addr: String,
    log: Arc<Mutex<String>>,
}

impl Broker {
    /// `kgroups broker --listen 127.0.0.1:0` plus `extra` flags; waits for the address line.
    pub fn start(extra: &[&str]) -> Broker {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kgroups"))
            .args(["broker", "--listen", "127.0.0.1:0", "--log-level", "info"])
            .args([
                "--group-initial-rebalance-delay-ms",
                "300",
                "--group-min-session-timeout-ms",
                "1000",
            ])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn kgroups broker");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        // The lines before the address (start-up, recovery) are kept in the log too.
        let mut early = String::new();
        let addr = loop {
            let line = lines
                .next()
                .expect("broker exited before listening")
                .unwrap();
            if let Some(a) = line.strip_prefix("kgroups broker listening on ") {
                break a.trim().to_string();
            }
            early.push_str(&line);
            early.push('\n');
        };
        let log = Arc::new(Mutex::new(early));
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let mut s = sink.lock().unwrap();
                if s.len() < 1 << 20 {
                    s.push_str(&line);
                    s.push('\n');
                }
            }
        });
        Broker { child, addr, log }
    }

    /// What the broker logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Whether the log shows `needle` within `within` (its lines arrive through a pipe).
    pub fn logged(&self, needle: &str, within: Duration) -> bool {
        let start = std::time::Instant::now();
        loop {
            if self.log().contains(needle) {
                return true;
            }
            if start.elapsed() > within {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn clients_dir() -> PathBuf {
    std::env::var_os("KGROUPS_CLIENTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/clients"))
}

fn required() -> bool {
    std::env::var("KGROUPS_CLIENTS").is_ok_and(|v| v == "required")
}

/// `Some(path)` if it exists; else fails (clients required) or returns `None` after saying so.
fn find(what: &str, path: PathBuf) -> Option<PathBuf> {
    if path.exists() {
        return Some(path);
    }
    assert!(
        !required(),
        "{what} is required but missing at {} (run .ci/clients)",
        path.display()
    );
    eprintln!(
        "skipped: {what} is not installed at {} (run .ci/clients)",
        path.display()
    );
    None
}

/// The venv's python that has confluent-kafka and kafka-python.
pub fn python() -> Option<PathBuf> {
    find(
        "the clients' Python venv",
        clients_dir().join("venv/bin/python"),
    )
}

/// The directory whose `node_modules` has kafkajs.
pub fn kafkajs_dir() -> Option<PathBuf> {
    let dir = clients_dir().join("node");
    find("kafkajs", dir.join("node_modules/kafkajs")).map(|_| dir)
}

/// `node` with `NODE_PATH` pointing at the kafkajs install.
pub fn node() -> Option<Command> {
    let dir = kafkajs_dir()?;
    let mut cmd = Command::new("node");
    cmd.env("NODE_PATH", dir.join("node_modules"));
    Some(cmd)
}

/// kcat on PATH.
pub fn kcat() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("kcat"))
            .find(|p| p.exists())
    });
    match found {
        Some(p) => Some(p),
        None => {
            assert!(
                !required(),
                "kcat is required but not on PATH (run .ci/clients)"
            );
            eprintln!("skipped: kcat is not installed (run .ci/clients)");
            None
        }
    }
}

/// A script under `tests/clients/`.
pub fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients")
        .join(name)
}

/// Runs `cmd` with a time limit; returns its output (killed at the limit). The limit is also
/// given to the script as `KGROUPS_SCRIPT_LIMIT_S` (seconds): the Python scenarios dump every
/// thread's stack to stderr 10 s before it.
pub fn run(mut cmd: Command, limit: Duration) -> Output {
    let mut child = cmd
        .env("KGROUPS_SCRIPT_LIMIT_S", limit.as_secs().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn client");
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// Runs a client scenario script against a fresh broker and asserts it passed and the broker
/// survived.
pub fn scenario(interpreter: &std::path::Path, script_name: &str, scenario: &str, extra: &[&str]) {
    scenario_in(Command::new(interpreter), script_name, scenario, extra);
}

/// [`scenario`] with a prepared interpreter command (environment set).
pub fn scenario_in(mut cmd: Command, script_name: &str, scenario: &str, extra: &[&str]) {
    let mut broker = Broker::start(extra);
    cmd.arg(script(script_name)).arg(&broker.addr).arg(scenario);
    let out = run(cmd, Duration::from_secs(150));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(broker.alive(), "the broker died\n{}", broker.log());
    assert!(
        out.status.success(),
        "{scenario} failed ({:?})\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n--- broker\n{}",
        out.status,
        broker.log()
    );
    eprintln!("{scenario}: {}", stdout.trim());
}

impl Broker {
    /// The broker's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (`TERM`, `KILL`, …) with kill(1) and waits for the process to end; returns
    /// whether it exited with status 0.
    pub fn stop(&mut self, signal: &str) -> bool {
        let _ = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status();
        self.child.wait().is_ok_and(|s| s.success())
    }
}
