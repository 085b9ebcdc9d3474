//! kgroups-echo: the do-nothing floor node of `kgroups-lab bench`. All logic lives in the library.
fn main() {
    std::process::exit(kgroups::lab::echo::main());
}
