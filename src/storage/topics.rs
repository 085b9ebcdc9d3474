//! The topics file: every topic with its id, partition count and config overrides, and the
//! broker's producer id reservation, rewritten atomically on every change.
//!
//! # Format
//!
//! `DIR/topics.json`, UTF-8 JSON, one object:
//!
//! ```json
//! {
//!   "version": 1,
//!   "next_producer_id": 3000,
//!   "topics": [
//!     {
//!       "name": "orders",
//!       "id": "8Jq0YfEXT2y8qTnw7L0aSw",
//!       "partitions": 8,
//!       "configs": { "retention.ms": "86400000", "segment.bytes": "1048576" }
//!     }
//!   ]
//! }
//! ```
//!
//! - `version`: 1. A file of another version is refused (it may hold what this version would
//!   drop on its next rewrite).
//! - `next_producer_id`: the first producer id not yet reserved (Kafka's `nextProducerId` of the
//!   `ProducerIdsRecord`, see [`TopicsFile::reserve_producer_ids`]).
//! - `topics`: sorted by name. `id` is the topic's 16-byte UUID as Kafka prints it
//!   (`Uuid.toString`: URL-safe base64 without padding, 22 characters); `partitions` is the
//!   partition count (1 to `i32::MAX`); `configs` holds the topic's overrides only, as Kafka's
//!   topic configs are kept: a map from config name to value text, each checked by
//!   [`LogConfig::with_overrides`]. The broker defaults are not stored: they come from the flags
//!   of each run, so changing a flag changes every topic that does not override it, as in Kafka.
//!
//! JSON, one file, rewritten whole: topic changes are rare and the file is small, an operator can
//! read it, and it is what Kafka kept per topic in ZooKeeper before KRaft (`/brokers/topics/<t>`
//! and `/config/topics/<t>` were JSON). Names are any non-empty string here: the Kafka front
//! checks Kafka's rule (`[a-zA-Z0-9._-]`, at most 249) before it creates a topic; the Maelstrom
//! front's names are free.
//!
//! # Atomicity and errors
//!
//! [`TopicsFile::store`] writes `topics.json.tmp`, fsyncs it, renames it over `topics.json` and
//! fsyncs the directory (Kafka's `Utils.atomicMoveWithFallback`, as [`Checkpoint`](super::Checkpoint)
//! does): after a crash the file is the old state or the new one, whole. A file that does not
//! parse or breaks a rule above is [`StorageError::Corrupt`] naming it: the broker must refuse to
//! start rather than start without topics that exist on disk (their partition directories would
//! be orphaned, then recreated empty under new ids). An absent file is an empty broker.

use super::checkpoint::sync_dir;
use super::config::LogConfig;
use super::error::{Result, StorageError};
use crate::loom::{lock, Mutex};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{self, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

/// The file's name in the data directory.
pub const TOPICS_FILE: &str = "topics.json";

/// How many producer ids one reservation takes: Kafka's `ProducerIdsBlock.PRODUCER_ID_BLOCK_SIZE`.
pub const PRODUCER_ID_BLOCK: i64 = 1000;

/// The format version written and accepted.
const VERSION: u32 = 1;

/// One topic as the file keeps it (its name is the key of [`TopicsState::topics`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicEntry {
    /// The topic id: a UUID's 16 bytes, as `Topic::id` gives them (never all zeros: Kafka's
    /// `Uuid.ZERO_UUID` means "no id").
    pub id: [u8; 16],
    /// The partition count, 1 to `i32::MAX`.
    pub partitions: u32,
    /// The topic's config overrides, Kafka name → value text (checked by
    /// [`LogConfig::with_overrides`]); the broker defaults apply to every other config.
    pub configs: BTreeMap<String, String>,
}

impl TopicEntry {
    /// The topic's [`LogConfig`]: its overrides over the broker `defaults`.
    ///
    /// # Errors
    ///
    /// [`StorageError::InvalidConfig`], as [`LogConfig::with_overrides`].
    pub fn log_config(&self, defaults: &LogConfig) -> Result<LogConfig> {
        defaults.with_overrides(&self.configs)
    }
}

/// Everything the topics file holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicsState {
    /// Every topic, by name.
    pub topics: BTreeMap<String, TopicEntry>,
    /// The first producer id not yet reserved: every id below it may have been handed out by
    /// some run of the broker, so none may be handed out again (Kafka's `nextProducerId`).
    /// Change it only through [`TopicsFile::reserve_producer_ids`].
    pub next_producer_id: i64,
}

impl TopicsState {
    /// Checks the rules of the module docs; `Err` says which is broken.
    fn check(&self) -> std::result::Result<(), String> {
        if self.next_producer_id < 0 {
            return Err(format!("next_producer_id {}", self.next_producer_id));
        }
        let mut ids = HashSet::new();
        for (name, t) in &self.topics {
            if name.is_empty() {
                return Err("a topic with an empty name".into());
            }
            if t.id == [0; 16] {
                return Err(format!("topic {name:?} has the zero id"));
            }
            if !ids.insert(t.id) {
                return Err(format!(
                    "topic {name:?}: id {} used twice",
                    uuid_string(&t.id)
                ));
            }
            if t.partitions == 0 || t.partitions > i32::MAX as u32 {
                return Err(format!("topic {name:?}: {} partitions", t.partitions));
            }
            // The defaults are valid; only the overrides are checked here.
            LogConfig::default()
                .with_overrides(&t.configs)
                .map_err(|e| format!("topic {name:?}: {e}"))?;
        }
        Ok(())
    }
}

/// The topics file of a data directory (see the module docs). It holds no state of its own:
/// the broker keeps the [`TopicsState`] (under its own lock) and changes it only through
/// [`TopicsFile::update`], so memory and disk agree.
#[derive(Debug)]
pub struct TopicsFile {
    path: PathBuf,
    /// Serializes writers of the temporary file.
    write: Mutex<()>,
}

impl TopicsFile {
    /// The topics file of the data directory `dir` (`dir/topics.json`; neither need exist).
    pub fn new(dir: &Path) -> Self {
        TopicsFile {
            path: dir.join(TOPICS_FILE),
            write: Mutex::new(()),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The state the file holds; `None` if there is no file (a new broker). A leftover
    /// `topics.json.tmp` (a crash during [`TopicsFile::store`]) is ignored; the next store
    /// replaces it.
    ///
    /// # Errors
    ///
    /// [`StorageError::Corrupt`] naming the file if it is not JSON of the format in the module
    /// docs (another version, a duplicate name or id, a zero id, a partition count out of range,
    /// an override that [`LogConfig::with_overrides`] refuses); [`StorageError::Io`] if it
    /// cannot be read. The broker should refuse to start on either.
    pub fn load(&self) -> Result<Option<TopicsState>> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let corrupt = |why: String| StorageError::Corrupt {
            path: self.path.clone(),
            why,
        };
        let file: FileV1 = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
        if file.version != VERSION {
            return Err(corrupt(format!("version {}, not {VERSION}", file.version)));
        }
        let mut state = TopicsState {
            topics: BTreeMap::new(),
            next_producer_id: file.next_producer_id,
        };
        for t in file.topics {
            let id = parse_uuid(&t.id)
                .ok_or_else(|| corrupt(format!("topic {:?}: id {:?}", t.name, t.id)))?;
            let entry = TopicEntry {
                id,
                partitions: t.partitions,
                configs: t.configs,
            };
            if state.topics.insert(t.name.clone(), entry).is_some() {
                return Err(corrupt(format!("topic {:?} listed twice", t.name)));
            }
        }
        state.check().map_err(corrupt)?;
        Ok(Some(state))
    }

    /// Replaces the file with `state`, atomically (module docs). Concurrent calls are
    /// serialized; the last to finish wins, so callers that change the state from several
    /// threads use [`TopicsFile::update`] under their own lock.
    ///
    /// # Errors
    ///
    /// [`StorageError::Io`] (`InvalidInput`) for a state that [`TopicsFile::load`] would refuse
    /// (nothing is written); [`StorageError::Io`] if a step fails (the old file then stays).
    pub fn store(&self, state: &TopicsState) -> Result<()> {
        state
            .check()
            .map_err(|why| io::Error::new(io::ErrorKind::InvalidInput, why))?;
        let file = FileV1 {
            version: VERSION,
            next_producer_id: state.next_producer_id,
            topics: state
                .topics
                .iter()
                .map(|(name, t)| TopicV1 {
                    name: name.clone(),
                    id: uuid_string(&t.id),
                    partitions: t.partitions,
                    configs: t.configs.clone(),
                })
                .collect(),
        };
        let mut text = serde_json::to_vec_pretty(&file).map_err(io::Error::other)?;
        text.push(b'\n');
        let _serial = lock(&self.write);
        let mut tmp = self.path.as_os_str().to_owned();
        tmp.push(super::layout::TMP);
        let tmp = PathBuf::from(tmp);
        let mut f = File::create(&tmp)?;
        f.write_all(&text)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, &self.path)?;
        sync_dir(self.path.parent().unwrap_or(Path::new(".")))?;
        Ok(())
    }

    /// Applies `change` to a copy of `state`, stores the copy, and only then makes it `*state`:
    /// on any error `*state` and the file are as before. The way to create or delete a topic or
    /// change its configs: CreateTopics inserts a [`TopicEntry`], DeleteTopics removes one,
    /// IncrementalAlterConfigs edits `configs` (after [`LogConfig::with_overrides`] accepted
    /// the result). Hold the broker's lock on `state` across the call.
    ///
    /// # Errors
    ///
    /// `change`'s own error, or [`TopicsFile::store`]'s.
    pub fn update<R>(
        &self,
        state: &mut TopicsState,
        change: impl FnOnce(&mut TopicsState) -> Result<R>,
    ) -> Result<R> {
        let mut next = state.clone();
        let out = change(&mut next)?;
        self.store(&next)?;
        *state = next;
        Ok(out)
    }

    /// Reserves the next block of [`PRODUCER_ID_BLOCK`] producer ids and returns it, after the
    /// reservation is durable: `next_producer_id` moves past the block in the file first, so no
    /// later run can hand out an id of the block again, whatever happens to this one (Kafka's
    /// `ProducerIdManager`: a broker takes ids from a block the controller recorded as
    /// allocated). Ids of a block not handed out before a restart are skipped, never reused.
    ///
    /// Wiring: reserve a block at start; InitProducerId hands out the block's ids in order
    /// (an atomic counter); the call that finds the block used up reserves the next one under
    /// the broker's lock on `state`.
    ///
    /// # Errors
    ///
    /// [`StorageError::Io`] if the store fails (the block is not reserved, `state` is as
    /// before), or (`Other`) once the ids would pass `i64::MAX` (Kafka: "exhausted all
    /// producerIds").
    pub fn reserve_producer_ids(&self, state: &mut TopicsState) -> Result<Range<i64>> {
        self.update(state, |s| {
            let first = s.next_producer_id;
            let end = first
                .checked_add(PRODUCER_ID_BLOCK)
                .ok_or_else(|| io::Error::other("exhausted all producer ids"))?;
            s.next_producer_id = end;
            Ok(first..end)
        })
    }
}

/// The file's JSON shape, version 1.
#[derive(Serialize, Deserialize)]
struct FileV1 {
    version: u32,
    next_producer_id: i64,
    topics: Vec<TopicV1>,
}

#[derive(Serialize, Deserialize)]
struct TopicV1 {
    name: String,
    id: String,
    partitions: u32,
    #[serde(default)]
    configs: BTreeMap<String, String>,
}

/// The URL-safe base64 alphabet (RFC 4648 §5).
const BASE64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// A UUID as Kafka prints it (`Uuid.toString`): URL-safe base64 of its 16 bytes, no padding, 22
/// characters.
pub fn uuid_string(id: &[u8; 16]) -> String {
    let mut out = String::with_capacity(22);
    for chunk in id.chunks(3) {
        let mut n = 0u32;
        for (i, b) in chunk.iter().enumerate() {
            n |= u32::from(*b) << (16 - 8 * i);
        }
        for i in 0..=chunk.len() {
            out.push(BASE64URL[(n >> (18 - 6 * i)) as usize & 63] as char);
        }
    }
    out
}

/// The inverse of [`uuid_string`]: `None` unless `s` is 22 URL-safe base64 characters whose
/// unused last 4 bits are zero (so each id has one spelling).
pub fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let s = s.as_bytes();
    if s.len() != 22 {
        return None;
    }
    let mut bits = 0u32;
    let mut nbits = 0;
    let mut out = [0u8; 16];
    let mut n = 0;
    for &c in s {
        let v = BASE64URL.iter().position(|&a| a == c)? as u32;
        bits = (bits << 6) | v;
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            out[n] = (bits >> nbits) as u8;
            n += 1;
            bits &= (1 << nbits) - 1;
        }
    }
    (n == 16 && bits == 0).then_some(out)
}
