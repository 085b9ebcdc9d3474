//! The broker's durable committed offsets and group metadata (`--data-dir`): the offsets journal
//! ([`OffsetsJournal`], `<data dir>/__consumer_offsets/`) wired as "Broker state" in
//! `crate::storage` says.
//!
//! - **Start.** [`Broker::open`](super::Broker::open) opens the journal (an error stops the
//!   broker: it names the file) and commits every stored offset into the coordinator, skipping
//!   topics and partitions that no longer exist. Group metadata stays in the journal's state for
//!   the fronts: the Kafka front brings classic groups back Empty with their generation
//!   ([`Broker::stored_state`]).
//! - **Writes.** [`Broker::record_offsets`] appends records as one frame (kept or lost together),
//!   before the caller answers; with `--flush-messages 1` it fsyncs the journal too (concurrent
//!   commits share the fsync). `--flush-ms` is applied by housekeeping, and every checkpoint
//!   fsyncs the journal.
//! - **Topics.** [`Broker::delete_topic`] removes a deleted topic's offsets from the journal.

use super::Broker;
use crate::error::Error;
use crate::loom::Arc;
use crate::storage::{OffsetRecord, OffsetsConfig, OffsetsJournal, OffsetsState, OFFSETS_DIR};
use crate::topic::{Storage, Topic};

/// Opens the journal of `storage`'s data directory, logging what recovery did.
pub(super) fn open_journal(storage: &Storage) -> Result<OffsetsJournal, Error> {
    let dir = storage.dir.join(OFFSETS_DIR);
    let (journal, replay) = OffsetsJournal::open(&dir, OffsetsConfig::default())
        .map_err(|e| Error::Storage(format!("{}: {e}", dir.display())))?;
    if replay.truncated_bytes > 0 || !replay.ignored.is_empty() {
        tracing::warn!("offsets journal recovered: {replay:?}");
    } else {
        tracing::debug!("offsets journal opened: {replay:?}");
    }
    Ok(journal)
}

impl Broker {
    /// Commits the journal's offsets into the coordinator (at start).
    pub(super) fn load_offsets(&self) {
        let Some(journal) = &self.offsets else {
            return;
        };
        let mut loaded = 0usize;
        for (group, state) in journal.state().groups {
            for ((topic, partition), value) in state.offsets {
                let (Some(t), Ok(p), Ok(offset)) = (
                    self.topics.get(&topic),
                    u32::try_from(partition),
                    u64::try_from(value.offset),
                ) else {
                    continue;
                };
                match self.groups.commit_topic(&group, None, &t, p, offset) {
                    Ok(()) => loaded += 1,
                    Err(e) => tracing::debug!(group, topic, partition, "not restored: {e}"),
                }
            }
        }
        tracing::info!(offsets = loaded, "committed offsets restored");
    }

    /// What the journal holds: every group's stored metadata and committed offsets, with their
    /// leader epochs and metadata strings (empty in memory). What a front brings back after a
    /// restart beside the offsets [`Broker::open`](super::Broker::open) restored.
    pub fn stored_state(&self) -> OffsetsState {
        self.offsets
            .as_ref()
            .map(OffsetsJournal::state)
            .unwrap_or_default()
    }

    /// Whether committed offsets are kept on disk.
    pub fn durable_offsets(&self) -> bool {
        self.offsets.is_some()
    }

    /// Makes `records` durable as one frame (all kept or all lost), fsynced with
    /// `--flush-messages 1`, before the caller answers. A no-op in memory.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`]: nothing of `records` may be taken as durable (answer
    /// KAFKA_STORAGE_ERROR).
    pub fn record_offsets(&self, records: &[OffsetRecord]) -> Result<(), Error> {
        let Some(journal) = &self.offsets else {
            return Ok(());
        };
        if records.is_empty() {
            return Ok(());
        }
        journal
            .append(records)
            .map_err(|e| Error::Storage(format!("offsets journal: {e}")))?;
        let sync = self
            .topics
            .storage()
            .is_some_and(|s| s.disk.flush.messages == Some(1));
        if sync {
            journal
                .flush()
                .map_err(|e| Error::Storage(format!("offsets journal: {e}")))?;
        }
        Ok(())
    }

    /// Fsyncs the offsets journal if anything was appended since its last fsync.
    pub(super) fn flush_offsets(&self) -> Result<(), Error> {
        match &self.offsets {
            Some(j) if j.position() > j.flushed() => j
                .flush()
                .map(drop)
                .map_err(|e| Error::Storage(format!("offsets journal: {e}"))),
            _ => Ok(()),
        }
    }

    /// A clean shutdown's last step: fsyncs everything and compacts the offsets journal, so that
    /// the next start reads one snapshot.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] if an fsync or a write failed.
    pub fn close(&self) -> Result<(), Error> {
        self.checkpoint()?;
        if let Some(journal) = &self.offsets {
            journal
                .compact()
                .map_err(|e| Error::Storage(format!("offsets journal: {e}")))?;
        }
        Ok(())
    }

    /// Deletes the topic `name` (Kafka's DeleteTopics): from the registry and the topics file,
    /// then every group's committed offsets for it, then its partition directories. Returns it,
    /// or `None` if there was none (or the topics file could not be changed: logged).
    pub fn delete_topic(&self, name: &str) -> Option<Arc<Topic>> {
        let topic = self.topics.delete(name)?;
        if let Some(journal) = &self.offsets {
            if let Err(e) = journal.delete_topic(name) {
                tracing::error!("offsets journal: deleting the offsets of {name:?}: {e}");
            }
        }
        Some(topic)
    }
}
