//! Kafka's offset checkpoint files (`recovery-point-offset-checkpoint`,
//! `log-start-offset-checkpoint`, `replication-offset-checkpoint`), read and written atomically.
//!
//! # Format
//!
//! UTF-8 text, one item per line (Kafka's `CheckpointFile` with `OffsetCheckpointFile`'s
//! formatter, version 0):
//!
//! ```text
//! 0
//! <number of entries>
//! <topic> <partition> <offset>
//! …
//! ```
//!
//! # Atomicity
//!
//! [`Checkpoint::write`] writes `<path>.tmp`, fsyncs it, renames it over `<path>` and fsyncs the
//! directory (Kafka's `CheckpointFile.write` and `Utils.atomicMoveWithFallback`), so after a crash
//! the file holds either every old entry or every new one, never a mix or a torn line.

use super::error::{Result, StorageError};
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The version line Kafka writes and accepts.
const VERSION: u32 = 0;

/// One line of a checkpoint file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CheckpointEntry {
    /// The topic name (Kafka's legal characters `[a-zA-Z0-9._-]`, so never a space).
    pub topic: String,
    /// The partition index.
    pub partition: i32,
    /// The offset recorded for the partition.
    pub offset: u64,
}

/// A checkpoint file at a path. It holds no state: every call reads or replaces the whole file.
/// Callers that write one file from several threads serialize their writes.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    path: PathBuf,
}

impl Checkpoint {
    /// The checkpoint file at `path` (it need not exist).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Checkpoint { path: path.into() }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every entry of the file, in file order; no entry if the file does not exist.
    ///
    /// # Errors
    ///
    /// [`StorageError::Corrupt`] if the file is not in the format above (another version, a
    /// count that does not match the lines, a line that is not `topic partition offset`);
    /// [`StorageError::Io`] if it cannot be read.
    pub fn read(&self) -> Result<Vec<CheckpointEntry>> {
        let text = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let corrupt = |why: String| StorageError::Corrupt {
            path: self.path.clone(),
            why,
        };
        let text = std::str::from_utf8(&text).map_err(|e| corrupt(e.to_string()))?;
        let mut lines = text.lines();
        match lines.next().map(str::trim) {
            Some(v) if v.parse() == Ok(VERSION) => {}
            other => return Err(corrupt(format!("version line {other:?}, not \"0\""))),
        }
        let count: usize = lines
            .next()
            .and_then(|l| l.trim().parse().ok())
            .ok_or_else(|| corrupt("no entry count".into()))?;
        let mut entries = Vec::with_capacity(count.min(1 << 16));
        for line in lines.by_ref().take(count) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let parsed =
                match fields[..] {
                    [topic, partition, offset] => {
                        partition.parse().ok().zip(offset.parse().ok()).map(
                            |(partition, offset)| CheckpointEntry {
                                topic: topic.to_owned(),
                                partition,
                                offset,
                            },
                        )
                    }
                    _ => None,
                };
            entries.push(parsed.ok_or_else(|| corrupt(format!("malformed entry {line:?}")))?);
        }
        if entries.len() != count {
            return Err(corrupt(format!(
                "{count} entries announced, {} found",
                entries.len()
            )));
        }
        if lines.any(|l| !l.trim().is_empty()) {
            return Err(corrupt(format!("more than the {count} entries announced")));
        }
        Ok(entries)
    }

    /// Replaces the file with `entries`, atomically (see "Atomicity").
    ///
    /// # Errors
    ///
    /// [`StorageError::Io`] (`InvalidInput`) for a topic name that is empty or holds whitespace
    /// (it would not read back); [`StorageError::Io`] if a step fails (the old file then stays).
    pub fn write(&self, entries: &[CheckpointEntry]) -> Result<()> {
        let mut text = format!("{VERSION}\n{}\n", entries.len());
        for e in entries {
            if e.topic.is_empty() || e.topic.contains(char::is_whitespace) {
                return Err(StorageError::Io(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("topic name {:?} cannot go in a checkpoint file", e.topic),
                )));
            }
            text.push_str(&format!("{} {} {}\n", e.topic, e.partition, e.offset));
        }
        let mut tmp = self.path.as_os_str().to_owned();
        tmp.push(super::layout::TMP);
        let tmp = PathBuf::from(tmp);
        let mut file = File::create(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, &self.path)?;
        sync_dir(self.path.parent().unwrap_or(Path::new(".")))?;
        Ok(())
    }
}

/// fsyncs a directory, so that the names created, renamed or removed in it survive a crash.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    File::open(dir)?.sync_all()
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn entry(topic: &str, partition: i32, offset: u64) -> CheckpointEntry {
        CheckpointEntry {
            topic: topic.into(),
            partition,
            offset,
        }
    }

    #[test]
    fn writes_kafkas_format_and_reads_it_back() {
        let dir = tempfile::tempdir().unwrap();
        let cp = Checkpoint::new(dir.path().join("recovery-point-offset-checkpoint"));
        assert_eq!(cp.read().unwrap(), vec![], "a missing file has no entry");
        let entries = vec![entry("orders", 0, 42), entry("my.topic_x-1", 12, 0)];
        cp.write(&entries).unwrap();
        assert_eq!(
            std::fs::read_to_string(cp.path()).unwrap(),
            "0\n2\norders 0 42\nmy.topic_x-1 12 0\n"
        );
        assert_eq!(cp.read().unwrap(), entries);
        cp.write(&[]).unwrap();
        assert_eq!(cp.read().unwrap(), vec![]);
        assert!(!dir
            .path()
            .join("recovery-point-offset-checkpoint.tmp")
            .exists());
        assert!(cp.write(&[entry("a b", 0, 1)]).is_err());
    }

    #[test]
    fn malformed_files_are_corrupt_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let cp = Checkpoint::new(dir.path().join("cp"));
        for text in [
            "",
            "1\n0\n",
            "0\n",
            "0\nx\n",
            "0\n2\nt 0 1\n",
            "0\n1\nt 0\n",
            "0\n1\nt x 1\n",
            "0\n1\nt 0 -1\n",
            "0\n1\nt 0 1\nu 0 2\n",
            "\u{0}\u{1}garbage",
        ] {
            std::fs::write(cp.path(), text).unwrap();
            assert!(
                matches!(cp.read(), Err(StorageError::Corrupt { .. })),
                "{text:?}"
            );
        }
        std::fs::write(cp.path(), [0xff, 0xfe]).unwrap();
        assert!(matches!(cp.read(), Err(StorageError::Corrupt { .. })));
    }
}
