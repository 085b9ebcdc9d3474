//! Command-line tools that speak the Kafka protocol as clients, run as `kgroups <tool> …`.

pub mod groups;
