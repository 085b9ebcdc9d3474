//! The storage error enum, with the Kafka error code each maps to.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Why a storage call failed. Each variant maps to a Kafka error code ([`StorageError::code`]).
#[derive(Debug)]
#[non_exhaustive]
pub enum StorageError {
    /// A read or DeleteRecords outside `start..=end`: Kafka's OFFSET_OUT_OF_RANGE (1), so that a
    /// consumer's `auto.offset.reset` applies.
    OffsetOutOfRange {
        /// The offset asked for.
        offset: u64,
        /// The log start offset at the time.
        start: u64,
        /// The log end offset at the time.
        end: u64,
    },
    /// The bytes given to `append` are not whole RecordBatch v2 batches that continue the log
    /// (a bad header, a base offset other than the next one, a length that runs past the bytes):
    /// a bug in the caller. Nothing was written. Kafka's CORRUPT_MESSAGE (2) on the wire.
    InvalidAppend(String),
    /// A file holds bytes that cannot be what storage wrote, and no recovery applies where they
    /// were met (a garbled batch header in a trusted segment met by a read, a malformed
    /// checkpoint file): Kafka's KAFKA_STORAGE_ERROR (56).
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        why: String,
    },
    /// A [`LogConfig`](super::LogConfig) value out of its range: Kafka's INVALID_CONFIG (40).
    InvalidConfig(String),
    /// The file system failed: Kafka's KAFKA_STORAGE_ERROR (56).
    Io(io::Error),
}

impl StorageError {
    /// The Kafka protocol error code (`org.apache.kafka.common.protocol.Errors`).
    pub fn code(&self) -> i16 {
        match self {
            StorageError::OffsetOutOfRange { .. } => 1,
            StorageError::InvalidAppend(_) => 2,
            StorageError::InvalidConfig(_) => 40,
            StorageError::Corrupt { .. } | StorageError::Io(_) => 56,
        }
    }
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageError::OffsetOutOfRange { offset, start, end } => {
                write!(f, "offset {offset} is outside the log ({start}..={end})")
            }
            StorageError::InvalidAppend(why) => write!(f, "invalid append: {why}"),
            StorageError::Corrupt { path, why } => {
                write!(f, "corrupt file {}: {why}", path.display())
            }
            StorageError::InvalidConfig(why) => write!(f, "invalid log config: {why}"),
            StorageError::Io(e) => write!(f, "storage i/o: {e}"),
        }
    }
}

impl std::error::Error for StorageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StorageError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for StorageError {
    fn from(e: io::Error) -> Self {
        StorageError::Io(e)
    }
}

impl From<StorageError> for io::Error {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Io(e) => e,
            StorageError::OffsetOutOfRange { .. }
            | StorageError::InvalidAppend(_)
            | StorageError::InvalidConfig(_) => io::Error::new(io::ErrorKind::InvalidInput, e),
            StorageError::Corrupt { .. } => io::Error::new(io::ErrorKind::InvalidData, e),
        }
    }
}

/// Storage's result type.
pub type Result<T> = std::result::Result<T, StorageError>;
