//! The assignors: `range`, `roundrobin` and `cooperative-sticky`, per Kafka's definitions. (Skeleton.)

use std::str::FromStr;

/// Which assignor a group uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AssignorKind {
    /// Kafka's `RangeAssignor`: per topic, contiguous ranges.
    Range,
    /// Kafka's `RoundRobinAssignor`: all partitions dealt in turn.
    RoundRobin,
    /// Kafka's `CooperativeStickyAssignor`: balance first, then keep what members own.
    #[default]
    CooperativeSticky,
}

impl AssignorKind {
    /// The name clients use: `range`, `roundrobin`, `cooperative-sticky`.
    pub fn name(self) -> &'static str {
        match self {
            AssignorKind::Range => "range",
            AssignorKind::RoundRobin => "roundrobin",
            AssignorKind::CooperativeSticky => "cooperative-sticky",
        }
    }
}

impl FromStr for AssignorKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "range" => Ok(AssignorKind::Range),
            "roundrobin" | "round-robin" => Ok(AssignorKind::RoundRobin),
            "cooperative-sticky" | "sticky" => Ok(AssignorKind::CooperativeSticky),
            other => Err(format!(
                "unknown assignor {other:?} (range, roundrobin, cooperative-sticky)"
            )),
        }
    }
}
