//! Kafka's on-disk names and the few RecordBatch v2 header fields that storage reads.
//!
//! A partition directory `<topic>-<partition>/` holds one segment per base offset, each as three
//! files named by the base offset in 20 zero-padded digits (Kafka's
//! `LogFileUtils.filenamePrefixFromOffset`):
//! `00000000000000000000.log`, `.index` and `.timeindex`. Storage reads the batch header's base
//! offset, length, magic, last offset delta and max timestamp (layout in [`crate::batch`]); the CRC
//! is checked by [`crate::batch::Batch::parse_all`].

use crate::batch::HEADER;

/// The extension of a segment's log file (Kafka's `LogFileUtils.LOG_FILE_SUFFIX`).
pub(crate) const LOG: &str = "log";
/// The extension of a segment's offset index (Kafka's `INDEX_FILE_SUFFIX`).
pub(crate) const INDEX: &str = "index";
/// The extension of a segment's time index (Kafka's `TIME_INDEX_FILE_SUFFIX`).
pub(crate) const TIME_INDEX: &str = "timeindex";
/// The per-partition log start offset checkpoint (Kafka's file name, kept per partition here).
pub(crate) const LOG_START_CHECKPOINT: &str = "log-start-offset-checkpoint";
/// The suffix of a file being written before its atomic rename (Kafka's `.tmp`).
pub(crate) const TMP: &str = ".tmp";

/// What a file of a partition directory is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileKind {
    Log,
    Index,
    TimeIndex,
}

/// `<base, 20 digits>.<ext>`.
pub(crate) fn file_name(base: u64, ext: &str) -> String {
    format!("{base:020}.{ext}")
}

/// The base offset and kind of a segment file name; `None` for any other name.
pub(crate) fn parse_name(name: &str) -> Option<(u64, FileKind)> {
    let (digits, ext) = name.split_once('.')?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let kind = match ext {
        LOG => FileKind::Log,
        INDEX => FileKind::Index,
        TIME_INDEX => FileKind::TimeIndex,
        _ => return None,
    };
    Some((digits.parse().ok()?, kind))
}

/// The header fields of one stored batch that storage needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    /// The batch's first offset (bytes 0..8).
    pub(crate) base: u64,
    /// The batch's whole size in bytes: `batchLength` (bytes 8..12) + 12.
    pub(crate) size: u64,
    /// The batch's last offset: `base + lastOffsetDelta` (bytes 23..27).
    pub(crate) last: u64,
    /// The batch's largest timestamp in ms (bytes 35..43); -1 if none.
    pub(crate) max_timestamp: i64,
}

impl Header {
    /// Reads the header at the start of `b` (at least [`HEADER`] bytes). Checks what can be checked
    /// without the body: a length that covers a header, magic 2, a non-negative base offset and
    /// last offset delta. The CRC is not checked here.
    pub(crate) fn parse(b: &[u8]) -> Result<Header, String> {
        if b.len() < HEADER {
            return Err(format!("{} bytes, less than a batch header", b.len()));
        }
        let base = i64::from_be_bytes(b[0..8].try_into().expect("8 bytes"));
        let length = i32::from_be_bytes(b[8..12].try_into().expect("4 bytes"));
        let magic = b[16] as i8;
        let delta = i32::from_be_bytes(b[23..27].try_into().expect("4 bytes"));
        let max_timestamp = i64::from_be_bytes(b[35..43].try_into().expect("8 bytes"));
        if magic != 2 {
            return Err(format!("magic {magic}, not 2"));
        }
        if length < (HEADER - 12) as i32 {
            return Err(format!("batch length {length}"));
        }
        if base < 0 || delta < 0 {
            return Err(format!("base offset {base}, last offset delta {delta}"));
        }
        Ok(Header {
            base: base as u64,
            size: length as u64 + 12,
            last: base as u64 + delta as u64,
            max_timestamp,
        })
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_others_are_refused() {
        assert_eq!(file_name(0, LOG), "00000000000000000000.log");
        assert_eq!(file_name(42, TIME_INDEX), "00000000000000000042.timeindex");
        assert_eq!(
            parse_name("00000000000000000042.index"),
            Some((42, FileKind::Index))
        );
        for bad in [
            "0000000000000000042.log",
            "000000000000000000042.log",
            "0000000000000000004x.log",
            "00000000000000000042.log.deleted",
            "00000000000000000042.swap",
            "99999999999999999999.log",
            "log-start-offset-checkpoint",
            "",
        ] {
            assert_eq!(parse_name(bad), None, "{bad}");
        }
    }
}
