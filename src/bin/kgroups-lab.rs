//! kgroups-lab: a local Maelstrom-style cluster, workloads, checker and load tool.
fn main() {
    std::process::exit(kgroups::lab::main());
}
