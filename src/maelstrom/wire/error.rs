//! Maelstrom error codes and the node's error replies.

use super::request::FieldError;
use crate::error::Error;
use std::fmt;

/// The Maelstrom error codes the node answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
#[non_exhaustive]
pub enum Code {
    /// 10: the request type is not supported.
    NotSupported = 10,
    /// 11: a node the request needs is unreachable, and the operation certainly did not happen.
    TemporarilyUnavailable = 11,
    /// 12: a field is missing or has the wrong type.
    MalformedRequest = 12,
    /// 13: something went wrong and the operation may have happened (indefinite).
    Crash = 13,
    /// 20: the named topic, partition or group does not exist.
    KeyDoesNotExist = 20,
    /// 21: the topic already exists with another partition count.
    KeyAlreadyExists = 21,
    /// 22: a precondition failed: fencing, not a member, a group that still has members.
    PreconditionFailed = 22,
}

impl Code {
    /// The numeric code.
    pub fn code(self) -> u32 {
        self as u32
    }

    /// The code of number `n`, if it is one of ours.
    pub fn from_number(n: u64) -> Option<Code> {
        [
            Code::NotSupported,
            Code::TemporarilyUnavailable,
            Code::MalformedRequest,
            Code::Crash,
            Code::KeyDoesNotExist,
            Code::KeyAlreadyExists,
            Code::PreconditionFailed,
        ]
        .into_iter()
        .find(|c| u64::from(c.code()) == n)
    }

    /// Whether Maelstrom reads this code as "the operation certainly did not happen".
    pub fn is_definite(self) -> bool {
        !matches!(self, Code::Crash)
    }
}

/// An error reply: a code and a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError {
    pub code: Code,
    pub text: String,
}

impl WireError {
    /// A reply with `code` and `text`.
    pub fn new(code: Code, text: impl Into<String>) -> Self {
        WireError {
            code,
            text: text.into(),
        }
    }

    /// Error 10 for an unknown request type.
    #[cold]
    pub fn not_supported(ty: &str) -> Self {
        WireError::new(
            Code::NotSupported,
            format!("unsupported request type {ty:?}"),
        )
    }

    /// Error 12 naming an invalid field.
    #[cold]
    pub fn malformed(field: &'static str, expected: &'static str) -> Self {
        FieldError::invalid(field, expected).into()
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error {}: {}", self.code.code(), self.text)
    }
}

impl std::error::Error for WireError {}

impl From<FieldError> for WireError {
    #[cold]
    fn from(e: FieldError) -> Self {
        WireError::new(Code::MalformedRequest, e.to_string())
    }
}

impl From<Error> for WireError {
    #[cold]
    fn from(e: Error) -> Self {
        let code = match &e {
            Error::UnknownTopic(_) | Error::UnknownPartition { .. } | Error::UnknownGroup(_) => {
                Code::KeyDoesNotExist
            }
            Error::UnknownMember { .. }
            | Error::Fenced { .. }
            | Error::GroupNotEmpty(_)
            | Error::InconsistentAssignor { .. } => Code::PreconditionFailed,
            Error::TopicExists { .. } => Code::KeyAlreadyExists,
            Error::Invalid(_) | Error::InvalidConfig(_) => Code::MalformedRequest,
            // Indefinite: a failed write may have happened in part.
            Error::Storage(_) => Code::Crash,
        };
        WireError::new(code, e.to_string())
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn engine_errors_map_to_codes() {
        let fenced = Error::Fenced {
            group: "g".into(),
            member: "c1".into(),
            topic: "t".into(),
            partition: 3,
            group_epoch: 4,
        };
        let w = WireError::from(fenced);
        assert_eq!(w.code.code(), 22);
        assert!(w.text.contains("fenced"));
        assert_eq!(
            WireError::from(Error::TopicExists {
                topic: "t".into(),
                partitions: 2
            })
            .code
            .code(),
            21
        );
        assert_eq!(
            WireError::from(Error::UnknownGroup("g".into())).code.code(),
            20
        );
        assert_eq!(WireError::from(Error::Invalid("x".into())).code.code(), 12);
        assert!(Code::PreconditionFailed.is_definite());
        assert!(!Code::Crash.is_definite());
    }
}
