//! Criterion benches (log). Skeleton.
fn main() {}
