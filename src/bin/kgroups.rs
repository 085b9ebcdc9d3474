//! The kgroups Maelstrom node: stdin → workers → stdout. All logic lives in the library.
fn main() {
    std::process::exit(kgroups::maelstrom::main());
}
