//! kgroups-lab: a local Maelstrom-style cluster with workloads, fault injection and checkers. (Skeleton.)

/// Runs the lab's command line; returns the process exit code.
pub fn main() -> i32 {
    eprintln!("kgroups-lab: not built yet");
    2
}
