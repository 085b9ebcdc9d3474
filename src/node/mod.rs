//! The Maelstrom node: reader thread, worker pool, writer thread. (Skeleton.)

/// Runs the node on stdin/stdout; returns the process exit code.
pub fn main() -> i32 {
    eprintln!("kgroups: not built yet");
    2
}
