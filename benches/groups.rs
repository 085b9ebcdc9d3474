//! Criterion benches (groups). Skeleton.
fn main() {}
