//! Kafka's topic-name rule: 1 to 249 characters of `[a-zA-Z0-9._-]`, and neither `.` nor `..`
//! (Kafka's `org.apache.kafka.common.internals.Topic.validate`). Every front checks a name a
//! client gives before the name reaches the engine, so a topic that could not exist in Kafka is
//! never created, nor looked up under a name that needs escaping.

use std::fmt;

/// The longest topic name Kafka allows, in characters (bytes: every allowed character is ASCII).
pub const MAX_LEN: usize = 249;

/// The rule, for error texts.
pub const RULE: &str =
    "1 to 249 characters of a-z, A-Z, 0-9, '.', '_' and '-', and not \".\" or \"..\"";

/// Why a name is not a legal topic name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidTopicName {
    /// The name is empty.
    Empty,
    /// The name is `.` or `..`.
    Dots,
    /// The name is longer than [`MAX_LEN`] characters (this many).
    TooLong(usize),
    /// The name holds a character outside `[a-zA-Z0-9._-]` (this one).
    BadChar(char),
}

impl fmt::Display for InvalidTopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InvalidTopicName::Empty => f.write_str("a topic name cannot be empty"),
            InvalidTopicName::Dots => f.write_str("a topic name cannot be \".\" or \"..\""),
            InvalidTopicName::TooLong(n) => {
                write!(f, "a topic name has at most {MAX_LEN} characters, not {n}")
            }
            InvalidTopicName::BadChar(c) => write!(
                f,
                "a topic name may hold only a-z, A-Z, 0-9, '.', '_' and '-', not {c:?}"
            ),
        }
    }
}

impl std::error::Error for InvalidTopicName {}

/// Whether `b` may appear in a topic name.
#[inline]
fn legal(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')
}

/// Checks `name` against Kafka's rule.
#[inline]
pub fn validate(name: &str) -> Result<(), InvalidTopicName> {
    if name.is_empty() {
        return Err(InvalidTopicName::Empty);
    }
    if let Some(bad) = name.bytes().position(|b| !legal(b)) {
        let c = name[bad..].chars().next().unwrap_or('\u{fffd}');
        return Err(InvalidTopicName::BadChar(c));
    }
    if name.len() > MAX_LEN {
        return Err(InvalidTopicName::TooLong(name.len()));
    }
    if name == "." || name == ".." {
        return Err(InvalidTopicName::Dots);
    }
    Ok(())
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn kafkas_rule() {
        for ok in [
            "a",
            "default",
            "lab",
            "T",
            "orders.v2",
            "a_b-c",
            "...",
            &"x".repeat(249),
        ] {
            assert_eq!(validate(ok), Ok(()), "{ok}");
        }
        assert_eq!(validate(""), Err(InvalidTopicName::Empty));
        assert_eq!(validate("."), Err(InvalidTopicName::Dots));
        assert_eq!(validate(".."), Err(InvalidTopicName::Dots));
        assert_eq!(
            validate(&"x".repeat(250)),
            Err(InvalidTopicName::TooLong(250))
        );
        assert_eq!(validate("a b"), Err(InvalidTopicName::BadChar(' ')));
        assert_eq!(validate("a/b"), Err(InvalidTopicName::BadChar('/')));
        assert_eq!(validate("é"), Err(InvalidTopicName::BadChar('é')));
        assert_eq!(validate("a\u{0}"), Err(InvalidTopicName::BadChar('\u{0}')));
        assert!(InvalidTopicName::BadChar('/').to_string().contains("'/'"));
    }
}
