//! The kgroups Maelstrom node: stdin → workers → stdout. All logic lives in the library.
//! `kgroups broker …` serves the Kafka protocol instead (`kgroups::kafka`); `kgroups groups …`
//! lists, describes, resets and deletes consumer groups over it (`kgroups::tools::groups`).

/// Huge allocations (≥ 1 GiB) are `MAP_NORESERVE` mappings, so a request claiming an absurd
/// array length cannot abort the broker (see `kgroups::kafka::alloc`).
#[cfg(not(loom))]
#[global_allocator]
static ALLOC: kgroups::kafka::alloc::NoReserveHuge = kgroups::kafka::alloc::NoReserveHuge;

fn main() {
    #[cfg(not(loom))]
    if std::env::args_os().nth(1).is_some_and(|a| a == "broker") {
        std::process::exit(kgroups::kafka::main(std::env::args_os().skip(2)));
    }
    #[cfg(not(loom))]
    if std::env::args_os().nth(1).is_some_and(|a| a == "groups") {
        std::process::exit(kgroups::tools::groups::main(std::env::args_os().skip(2)));
    }
    std::process::exit(kgroups::maelstrom::main());
}
