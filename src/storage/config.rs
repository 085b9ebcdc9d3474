//! A partition log's configuration: Kafka's topic configs that storage obeys.

use super::error::{Result, StorageError};

/// When a partition log rolls a new segment and what it keeps. Every field is Kafka's topic config
/// of the same name, with Kafka's default (`LogConfig.java` and `ServerLogConfigs.java` in
/// `apache/kafka`); [`Default`] gives those defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogConfig {
    /// `segment.bytes`: the active segment rolls before an append would take it past this many
    /// bytes. Default 1 GiB (1,073,741,824); from 61 (one batch header) up to `i32::MAX`, as file
    /// positions in the offset index are 32-bit.
    pub segment_bytes: u64,
    /// `segment.ms`: the active segment rolls once its batches' timestamps span more than this
    /// many ms (or, with no timestamps, once it is older than this by the caller's clock).
    /// Default 7 days (604,800,000); at least 1.
    pub segment_ms: i64,
    /// `retention.ms`: a segment whose largest timestamp is older than this many ms is deleted;
    /// -1 keeps segments forever. Default 7 days (604,800,000).
    pub retention_ms: i64,
    /// `retention.bytes`: whole segments are deleted from the start while the log is larger than
    /// this many bytes; -1 means no limit. Default -1.
    pub retention_bytes: i64,
    /// `index.interval.bytes`: an offset index entry is added once more than this many bytes
    /// were appended since the last one. Default 4096.
    pub index_interval_bytes: u32,
    /// `segment.index.bytes`: the most bytes an index file of one segment may hold; the segment
    /// rolls when its offset index (8-byte entries) or time index (12-byte entries, one kept
    /// spare for the roll) is full. Default 10 MiB (10,485,760); at least 12.
    pub segment_index_bytes: u32,
}

/// Kafka's `DEFAULT_SEGMENT_BYTES`.
pub const DEFAULT_SEGMENT_BYTES: u64 = 1 << 30;
/// Kafka's `DEFAULT_SEGMENT_MS` and `DEFAULT_RETENTION_MS`: 7 days.
pub const SEVEN_DAYS_MS: i64 = 7 * 24 * 60 * 60 * 1000;

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            segment_ms: SEVEN_DAYS_MS,
            retention_ms: SEVEN_DAYS_MS,
            retention_bytes: -1,
            index_interval_bytes: 4096,
            segment_index_bytes: 10 * 1024 * 1024,
        }
    }
}

impl LogConfig {
    /// Checks every field against its range (Kafka's `ConfigDef` bounds).
    ///
    /// # Errors
    ///
    /// [`StorageError::InvalidConfig`] naming the first field out of range.
    pub fn validate(&self) -> Result<()> {
        let bad = |why: String| Err(StorageError::InvalidConfig(why));
        if !(crate::batch::HEADER as u64..=i32::MAX as u64).contains(&self.segment_bytes) {
            return bad(format!("segment.bytes {}", self.segment_bytes));
        }
        if self.segment_ms < 1 {
            return bad(format!("segment.ms {}", self.segment_ms));
        }
        if self.retention_ms < -1 {
            return bad(format!("retention.ms {}", self.retention_ms));
        }
        if self.retention_bytes < -1 {
            return bad(format!("retention.bytes {}", self.retention_bytes));
        }
        if self.segment_index_bytes < 12 {
            return bad(format!("segment.index.bytes {}", self.segment_index_bytes));
        }
        Ok(())
    }

    /// The most entries one segment's offset index may hold.
    pub(crate) fn max_index_entries(&self) -> u64 {
        u64::from(self.segment_index_bytes)
            / <super::index::OffsetEntry as super::index::Entry>::SIZE as u64
    }

    /// The most entries one segment's time index may hold before a roll; the last slot is kept for
    /// the entry written at the roll (Kafka's `TimeIndex.isFull`).
    pub(crate) fn max_time_entries(&self) -> u64 {
        u64::from(self.segment_index_bytes)
            / <super::time_index::TimeEntry as super::index::Entry>::SIZE as u64
            - 1
    }
}

/// `segment.bytes`: the active segment's size limit (Kafka's `TopicConfig.SEGMENT_BYTES_CONFIG`).
pub const SEGMENT_BYTES: &str = "segment.bytes";
/// `segment.ms`: the active segment's age limit (`TopicConfig.SEGMENT_MS_CONFIG`).
pub const SEGMENT_MS: &str = "segment.ms";
/// `retention.ms`: how long segments are kept (`TopicConfig.RETENTION_MS_CONFIG`).
pub const RETENTION_MS: &str = "retention.ms";
/// `retention.bytes`: how many bytes a partition keeps (`TopicConfig.RETENTION_BYTES_CONFIG`).
pub const RETENTION_BYTES: &str = "retention.bytes";
/// `internal.segment.bytes`: Kafka's internal override of `segment.bytes` without its 1 MiB
/// floor, for tests (`LogConfig.INTERNAL_SEGMENT_BYTES_CONFIG`, Kafka 4.0). Accepted as an override;
/// not listed by [`describe_topic_configs`], as Kafka does not describe internal configs.
pub const INTERNAL_SEGMENT_BYTES: &str = "internal.segment.bytes";

/// The topic configs a topic may override, sorted: the four that storage obeys, then Kafka's
/// internal `internal.segment.bytes`. Any other name is INVALID_CONFIG (see
/// [`LogConfig::with_overrides`]).
pub const TOPIC_CONFIGS: [&str; 5] = [
    RETENTION_BYTES,
    RETENTION_MS,
    SEGMENT_BYTES,
    SEGMENT_MS,
    INTERNAL_SEGMENT_BYTES,
];

/// Kafka's floor for `segment.bytes` since 4.0 (`atLeast(1024 * 1024)` in `LogConfig.java`).
pub const MIN_SEGMENT_BYTES: i64 = 1024 * 1024;

/// One topic config as DescribeConfigs shows it ([`describe_topic_configs`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicConfigValue {
    /// Kafka's name, e.g. `retention.ms`.
    pub name: &'static str,
    /// The value in force, as text: the override as it was given, or the broker default.
    pub value: String,
    /// Whether the topic overrides it (Kafka's config source DYNAMIC_TOPIC_CONFIG, 1) or the
    /// broker default applies (DEFAULT_CONFIG, 5, or STATIC_BROKER_CONFIG, 4, when the broker was
    /// started with the flag: the caller knows which).
    pub overridden: bool,
}

impl LogConfig {
    /// The configuration of a topic: `self` (the broker defaults, from its flags) with the topic's
    /// `overrides` applied, a map from Kafka topic config name to its value as text, as
    /// CreateTopics, IncrementalAlterConfigs and the topics file carry them
    /// ([`TopicsState`](super::TopicsState)). Kafka's `LogConfig.fromProps` then `validateNames`
    /// and `ConfigDef.parse`:
    ///
    /// | name | type | range (Kafka's validator) |
    /// |---|---|---|
    /// | `retention.bytes` | long | any; every negative means no limit (stored as -1) |
    /// | `retention.ms` | long | at least -1 (-1: forever) |
    /// | `segment.bytes` | int | at least 1,048,576 |
    /// | `segment.ms` | long | at least 1 |
    /// | `internal.segment.bytes` | int | at least 61 here (one batch header); wins over `segment.bytes` |
    ///
    /// Values are trimmed of leading and trailing whitespace and control characters first (Java's
    /// `String.trim`, as `ConfigDef.parseType` does). The other fields come from `self`.
    ///
    /// # Errors
    ///
    /// [`StorageError::InvalidConfig`] (Kafka's INVALID_CONFIG, 40) with Kafka's message:
    /// `Unknown topic config name: <name>` for a name outside [`TOPIC_CONFIGS`] (Kafka's other
    /// topic configs included: kgroups does not implement them, and accepting them silently
    /// would promise what it does not do); `Invalid value <v> for configuration <name>: Not a
    /// number of type INT|LONG` for a value that does not parse; `Invalid value <v> for
    /// configuration <name>: Value must be at least <min>` below the range. Names are checked
    /// before values, as Kafka does. An invalid `self` is reported by [`LogConfig::validate`].
    pub fn with_overrides<K, V>(&self, overrides: impl IntoIterator<Item = (K, V)>) -> Result<Self>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let overrides: Vec<(K, V)> = overrides.into_iter().collect();
        if let Some((name, _)) = overrides
            .iter()
            .find(|(k, _)| !TOPIC_CONFIGS.contains(&k.as_ref()))
        {
            return Err(StorageError::InvalidConfig(format!(
                "Unknown topic config name: {}",
                name.as_ref()
            )));
        }
        let mut config = *self;
        let mut internal_segment_bytes = None;
        for (name, value) in &overrides {
            let (name, value) = (name.as_ref(), value.as_ref());
            match name {
                RETENTION_BYTES => config.retention_bytes = parse_long(name, value, None)?.max(-1),
                RETENTION_MS => config.retention_ms = parse_long(name, value, Some(-1))?,
                SEGMENT_MS => config.segment_ms = parse_long(name, value, Some(1))?,
                SEGMENT_BYTES => {
                    config.segment_bytes = parse_int(name, value, MIN_SEGMENT_BYTES)? as u64
                }
                _ => {
                    let min = crate::batch::HEADER as i64;
                    internal_segment_bytes = Some(parse_int(name, value, min)? as u64);
                }
            }
        }
        if let Some(bytes) = internal_segment_bytes {
            config.segment_bytes = bytes;
        }
        config.validate()?;
        Ok(config)
    }
}

/// Every topic config that storage obeys, sorted by name, with its value in force for a topic
/// with `overrides` over the broker `defaults`: what DescribeConfigs returns for a topic
/// (Kafka's `ConfigHelper.describeConfigs`). Internal configs are left out, as Kafka leaves
/// them out.
pub fn describe_topic_configs<K, V>(
    defaults: &LogConfig,
    overrides: impl IntoIterator<Item = (K, V)>,
) -> Vec<TopicConfigValue>
where
    K: AsRef<str>,
    V: AsRef<str>,
{
    let overrides: Vec<(K, V)> = overrides.into_iter().collect();
    let given = |name: &str| {
        overrides
            .iter()
            .find(|(k, _)| k.as_ref() == name)
            .map(|(_, v)| v.as_ref().to_owned())
    };
    [
        (RETENTION_BYTES, defaults.retention_bytes.to_string()),
        (RETENTION_MS, defaults.retention_ms.to_string()),
        (SEGMENT_BYTES, defaults.segment_bytes.to_string()),
        (SEGMENT_MS, defaults.segment_ms.to_string()),
    ]
    .into_iter()
    .map(|(name, default)| match given(name) {
        Some(value) => TopicConfigValue {
            name,
            value,
            overridden: true,
        },
        None => TopicConfigValue {
            name,
            value: default,
            overridden: false,
        },
    })
    .collect()
}

/// Java's `String.trim`: strips every char up to U+0020 from both ends.
fn java_trim(value: &str) -> &str {
    value.trim_matches(|c: char| c <= ' ')
}

/// Kafka's `ConfigException(name, value, message)` text.
fn invalid(name: &str, value: &str, why: impl std::fmt::Display) -> StorageError {
    StorageError::InvalidConfig(format!(
        "Invalid value {value} for configuration {name}: {why}"
    ))
}

/// A LONG config: `Long.parseLong` of the trimmed value, then `atLeast(min)` if any.
fn parse_long(name: &str, value: &str, min: Option<i64>) -> Result<i64> {
    let v: i64 = java_trim(value)
        .parse()
        .map_err(|_| invalid(name, value, "Not a number of type LONG"))?;
    match min {
        Some(min) if v < min => Err(invalid(
            name,
            value,
            format!("Value must be at least {min}"),
        )),
        _ => Ok(v),
    }
}

/// An INT config: `Integer.parseInt` of the trimmed value, then `atLeast(min)`.
fn parse_int(name: &str, value: &str, min: i64) -> Result<i32> {
    let v: i32 = java_trim(value)
        .parse()
        .map_err(|_| invalid(name, value, "Not a number of type INT"))?;
    if i64::from(v) < min {
        return Err(invalid(
            name,
            value,
            format!("Value must be at least {min}"),
        ));
    }
    Ok(v)
}
