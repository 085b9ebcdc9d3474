//! Criterion benches (node). Skeleton.
fn main() {}
