//! The engine's errors: one enum, a variant per failure.

use crate::assignor::AssignorKind;
use std::fmt;

/// Everything an engine operation can refuse. The wire layer maps each to a Maelstrom error code.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The named topic does not exist (and the operation does not create topics).
    UnknownTopic(String),
    /// The partition number is not below the topic's partition count.
    UnknownPartition { topic: String, partition: u32 },
    /// The named group does not exist.
    UnknownGroup(String),
    /// The consumer is not a live member of the group.
    UnknownMember { group: String, member: String },
    /// The consumer does not own this partition in the group's current assignment: it was fenced by
    /// a rebalance (Kafka: FENCED_MEMBER_EPOCH / ILLEGAL_GENERATION).
    Fenced {
        group: String,
        member: String,
        topic: String,
        partition: u32,
        /// The group epoch of the assignment that refused it.
        group_epoch: u64,
    },
    /// The topic already exists with a different partition count.
    TopicExists { topic: String, partitions: u32 },
    /// The group still has live members, and the operation needs an empty group.
    GroupNotEmpty(String),
    /// A member asked for an assignor other than the one the group's live members use.
    InconsistentAssignor {
        group: String,
        assignor: AssignorKind,
        current: AssignorKind,
    },
    /// An argument is out of its allowed range.
    Invalid(String),
    /// The disk refused a read or a write (a broker with a data directory).
    Storage(String),
    /// A topic config override was refused (Kafka's INVALID_CONFIG); the text is Kafka's.
    InvalidConfig(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::UnknownTopic(t) => write!(f, "unknown topic {t:?}"),
            Error::UnknownPartition { topic, partition } => {
                write!(f, "topic {topic:?} has no partition {partition}")
            }
            Error::UnknownGroup(g) => write!(f, "unknown group {g:?}"),
            Error::UnknownMember { group, member } => {
                write!(f, "consumer {member:?} is not a member of group {group:?}")
            }
            Error::Fenced { group, member, topic, partition, group_epoch } => write!(
                f,
                "consumer {member:?} was fenced: it does not own {topic}-{partition} at group epoch {group_epoch} of group {group:?}"
            ),
            Error::TopicExists { topic, partitions } => {
                write!(f, "topic {topic:?} already exists with {partitions} partitions")
            }
            Error::GroupNotEmpty(g) => write!(f, "group {g:?} has live members"),
            Error::InconsistentAssignor { group, assignor, current } => write!(
                f,
                "group {group:?} uses assignor {}, not {}",
                current.name(),
                assignor.name()
            ),
            Error::Invalid(why) => write!(f, "invalid argument: {why}"),
            Error::Storage(why) => write!(f, "storage: {why}"),
            Error::InvalidConfig(why) => write!(f, "invalid config: {why}"),
        }
    }
}

impl std::error::Error for Error {}
