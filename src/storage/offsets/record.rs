//! The records of the offsets journal and their binary form: frames of records, each frame
//! checked by a CRC-32C.
//!
//! # Frame
//!
//! | bytes | field |
//! |---|---|
//! | 0..4 | payload length `n`, u32 (5 ..= [`MAX_FRAME`]) |
//! | 4..8 | CRC-32C (Castagnoli, as Kafka's RecordBatch) of the payload, u32 |
//! | 8..8+n | payload |
//!
//! Payload: `version` u8 (= 1), `count` u32, then `count` records. A frame is written with one
//! `write`, so the records of one append (one OffsetCommit request) are kept or lost together,
//! as Kafka writes one request's offsets as one record batch.
//!
//! # Records
//!
//! Each starts with its kind, a u8. Strings are a u16 length then UTF-8 bytes (Kafka's STRING
//! is at most `i16::MAX` bytes, so every name that reaches the broker fits). All integers are
//! big-endian.
//!
//! | kind | record | fields after the kind |
//! |---|---|---|
//! | 1 | offset commit | group, topic, partition i32, offset i64, leader epoch i32, commit timestamp i64, metadata |
//! | 2 | offset delete | group, topic, partition i32 |
//! | 3 | group metadata | group, group type u8 (0 classic, 1 consumer), generation i32, protocol type, protocol (u8 0 = none, 1 = a string follows) |
//! | 4 | group delete | group |
//! | 5 | snapshot end | record count u64 (the last frame of a snapshot, alone) |
//!
//! The fields are those of Kafka's `OffsetCommitValue`, `GroupMetadataValue` (classic) and
//! `ConsumerGroupMetadataValue` (KIP-848) that kgroups needs after a restart
//! (`GroupCoordinatorRecordHelpers` and `GroupMetadataManager` in `apache/kafka`'s
//! `group-coordinator` module); deletes are Kafka's tombstones.

use std::fmt;

/// The largest payload of a frame: 64 MiB. A length above it is damage, not a frame.
pub const MAX_FRAME: usize = 64 << 20;
/// The bytes before a frame's payload.
pub const FRAME_HEADER: usize = 8;
/// The payload's format version.
const VERSION: u8 = 1;
/// A payload's bytes before its records: version and count.
const PAYLOAD_HEADER: usize = 5;

const COMMIT: u8 = 1;
const OFFSET_DELETE: u8 = 2;
const GROUP: u8 = 3;
const GROUP_DELETE: u8 = 4;
const SNAPSHOT_END: u8 = 5;

/// Which group protocol a group follows (Kafka's `Group.GroupType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupType {
    /// The classic protocol (JoinGroup and SyncGroup; the leader assigns): `classic`.
    Classic,
    /// The consumer protocol (KIP-848; the broker assigns): `consumer`. The engine's own groups
    /// (the Maelstrom front) are of this kind.
    Consumer,
}

impl GroupType {
    /// Kafka's name: `classic` or `consumer`.
    pub fn name(self) -> &'static str {
        match self {
            GroupType::Classic => "classic",
            GroupType::Consumer => "consumer",
        }
    }
}

/// A group's metadata as the journal keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GroupMetadata {
    /// The group's protocol.
    pub group_type: GroupType,
    /// A classic group's generation (`GroupMetadataValue.generation`), or a consumer group's
    /// epoch (`ConsumerGroupMetadataValue.epoch`). A group coming back after a restart continues
    /// from it, so members of an older generation stay fenced.
    pub generation: i32,
    /// A classic group's protocol type from JoinGroup (`consumer`, `connect`, …;
    /// `GroupMetadataValue.protocolType`); empty for a consumer group.
    pub protocol_type: String,
    /// The chosen protocol, i.e. the assignor's name (`range`, `cooperative-sticky`, … for a
    /// classic group, `GroupMetadataValue.protocol`; the broker's assignor, e.g. `uniform`, for a
    /// consumer group); `None` before the first generation.
    pub protocol: Option<String>,
}

/// A committed offset (Kafka's `OffsetCommitValue`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CommittedOffset {
    /// The committed offset: the next offset the group will consume.
    pub offset: i64,
    /// The leader epoch of the committed offset's record, -1 if unknown (`leaderEpoch`).
    pub leader_epoch: i32,
    /// The client's metadata string (`metadata`; Kafka bounds it by
    /// `offset.metadata.max.bytes`, 4096 by default).
    pub metadata: String,
    /// When the commit was made, ms since the Unix epoch (`commitTimestamp`).
    pub commit_timestamp_ms: i64,
}

/// One change to the offsets state; the journal holds a sequence of them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum OffsetRecord {
    /// `group` committed `value` for `topic`-`partition` (replaces any earlier commit).
    Commit {
        /// The group id.
        group: String,
        /// The topic name.
        topic: String,
        /// The partition index.
        partition: i32,
        /// What was committed.
        value: CommittedOffset,
    },
    /// `group`'s commit for `topic`-`partition` is gone (OffsetDelete, or the topic deleted).
    OffsetDelete {
        /// The group id.
        group: String,
        /// The topic name.
        topic: String,
        /// The partition index.
        partition: i32,
    },
    /// `group`'s metadata is now `metadata` (after each rebalance, or each new group epoch).
    Group {
        /// The group id.
        group: String,
        /// The new metadata.
        metadata: GroupMetadata,
    },
    /// `group` is deleted: its metadata and every offset it committed (DeleteGroups, Kafka's
    /// tombstones for the group and each of its offsets).
    GroupDelete {
        /// The group id.
        group: String,
    },
}

/// What a payload holds.
#[derive(Debug)]
pub(crate) enum Payload {
    Records(Vec<OffsetRecord>),
    /// The last frame of a snapshot: how many records the snapshot holds.
    SnapshotEnd(u64),
}

/// A payload that does not decode, although its CRC matched.
#[derive(Debug)]
pub(crate) struct Malformed(pub(crate) String);

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A string longer than a record can hold.
#[derive(Debug)]
pub(crate) struct TooLong(pub(crate) usize);

/// The encoded size of a string.
fn str_len(s: &str) -> usize {
    2 + s.len()
}

/// The encoded size of a commit record of `group`, `topic` and `metadata`.
pub(crate) fn commit_len(group: &str, topic: &str, metadata: &str) -> usize {
    1 + str_len(group) + str_len(topic) + 4 + 8 + 4 + 8 + str_len(metadata)
}

/// The encoded size of a group metadata record.
pub(crate) fn group_len(group: &str, m: &GroupMetadata) -> usize {
    1 + str_len(group)
        + 1
        + 4
        + str_len(&m.protocol_type)
        + 1
        + m.protocol.as_deref().map_or(0, str_len)
}

impl OffsetRecord {
    /// The record's encoded size in bytes (kind included).
    pub(crate) fn encoded_len(&self) -> usize {
        match self {
            OffsetRecord::Commit {
                group,
                topic,
                value,
                ..
            } => commit_len(group, topic, &value.metadata),
            OffsetRecord::OffsetDelete { group, topic, .. } => {
                1 + str_len(group) + str_len(topic) + 4
            }
            OffsetRecord::Group { group, metadata } => group_len(group, metadata),
            OffsetRecord::GroupDelete { group } => 1 + str_len(group),
        }
    }

    fn encode(&self, out: &mut Vec<u8>) -> Result<(), TooLong> {
        match self {
            OffsetRecord::Commit {
                group,
                topic,
                partition,
                value,
            } => {
                out.push(COMMIT);
                put_str(out, group)?;
                put_str(out, topic)?;
                out.extend_from_slice(&partition.to_be_bytes());
                out.extend_from_slice(&value.offset.to_be_bytes());
                out.extend_from_slice(&value.leader_epoch.to_be_bytes());
                out.extend_from_slice(&value.commit_timestamp_ms.to_be_bytes());
                put_str(out, &value.metadata)?;
            }
            OffsetRecord::OffsetDelete {
                group,
                topic,
                partition,
            } => {
                out.push(OFFSET_DELETE);
                put_str(out, group)?;
                put_str(out, topic)?;
                out.extend_from_slice(&partition.to_be_bytes());
            }
            OffsetRecord::Group { group, metadata } => {
                out.push(GROUP);
                put_str(out, group)?;
                out.push(match metadata.group_type {
                    GroupType::Classic => 0,
                    GroupType::Consumer => 1,
                });
                out.extend_from_slice(&metadata.generation.to_be_bytes());
                put_str(out, &metadata.protocol_type)?;
                match &metadata.protocol {
                    None => out.push(0),
                    Some(p) => {
                        out.push(1);
                        put_str(out, p)?;
                    }
                }
            }
            OffsetRecord::GroupDelete { group } => {
                out.push(GROUP_DELETE);
                put_str(out, group)?;
            }
        }
        Ok(())
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) -> Result<(), TooLong> {
    let n = u16::try_from(s.len()).map_err(|_| TooLong(s.len()))?;
    out.extend_from_slice(&n.to_be_bytes());
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

/// Appends one frame holding `records` to `out`.
pub(crate) fn encode_frame<'a>(
    records: impl IntoIterator<Item = &'a OffsetRecord>,
    out: &mut Vec<u8>,
) -> Result<(), TooLong> {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_HEADER]);
    out.push(VERSION);
    out.extend_from_slice(&[0; 4]);
    let mut count = 0u32;
    for r in records {
        r.encode(out)?;
        count += 1;
    }
    out[start + FRAME_HEADER + 1..start + FRAME_HEADER + PAYLOAD_HEADER]
        .copy_from_slice(&count.to_be_bytes());
    seal(out, start)
}

/// Appends the frame that ends a snapshot of `count` records.
pub(crate) fn encode_snapshot_end(count: u64, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_HEADER]);
    out.push(VERSION);
    out.extend_from_slice(&1u32.to_be_bytes());
    out.push(SNAPSHOT_END);
    out.extend_from_slice(&count.to_be_bytes());
    seal(out, start).expect("a snapshot end frame is small");
}

/// Fills in the length and CRC of the frame that starts at `start` and runs to the end of `out`.
fn seal(out: &mut [u8], start: usize) -> Result<(), TooLong> {
    let n = out.len() - start - FRAME_HEADER;
    if n > MAX_FRAME {
        return Err(TooLong(n));
    }
    let crc = crc32c::crc32c(&out[start + FRAME_HEADER..]);
    out[start..start + 4].copy_from_slice(&(n as u32).to_be_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_be_bytes());
    Ok(())
}

/// A frame header's payload length if it is in range, `Err` with why not.
pub(crate) fn frame_len(header: &[u8; FRAME_HEADER]) -> Result<usize, String> {
    let n = u32::from_be_bytes(header[0..4].try_into().expect("4 bytes")) as usize;
    if !(PAYLOAD_HEADER..=MAX_FRAME).contains(&n) {
        return Err(format!("frame length {n}"));
    }
    Ok(n)
}

/// Whether `payload` matches the CRC in `header`.
pub(crate) fn crc_ok(header: &[u8; FRAME_HEADER], payload: &[u8]) -> bool {
    u32::from_be_bytes(header[4..8].try_into().expect("4 bytes")) == crc32c::crc32c(payload)
}

/// Decodes a payload whose CRC matched.
pub(crate) fn decode_payload(payload: &[u8]) -> Result<Payload, Malformed> {
    let mut r = Reader(payload);
    let version = r.u8()?;
    if version != VERSION {
        return Err(Malformed(format!(
            "payload version {version}, not {VERSION}"
        )));
    }
    let count = r.u32()?;
    let mut records = Vec::with_capacity((count as usize).min(payload.len() / 2));
    for _ in 0..count {
        let kind = r.u8()?;
        let record = match kind {
            COMMIT => OffsetRecord::Commit {
                group: r.str()?,
                topic: r.str()?,
                partition: r.i32()?,
                value: {
                    let offset = r.i64()?;
                    let leader_epoch = r.i32()?;
                    let commit_timestamp_ms = r.i64()?;
                    CommittedOffset {
                        offset,
                        leader_epoch,
                        metadata: r.str()?,
                        commit_timestamp_ms,
                    }
                },
            },
            OFFSET_DELETE => OffsetRecord::OffsetDelete {
                group: r.str()?,
                topic: r.str()?,
                partition: r.i32()?,
            },
            GROUP => OffsetRecord::Group {
                group: r.str()?,
                metadata: GroupMetadata {
                    group_type: match r.u8()? {
                        0 => GroupType::Classic,
                        1 => GroupType::Consumer,
                        t => return Err(Malformed(format!("group type {t}"))),
                    },
                    generation: r.i32()?,
                    protocol_type: r.str()?,
                    protocol: match r.u8()? {
                        0 => None,
                        1 => Some(r.str()?),
                        f => return Err(Malformed(format!("protocol flag {f}"))),
                    },
                },
            },
            GROUP_DELETE => OffsetRecord::GroupDelete { group: r.str()? },
            SNAPSHOT_END if count == 1 => {
                let n = r.u64()?;
                r.end()?;
                return Ok(Payload::SnapshotEnd(n));
            }
            k => return Err(Malformed(format!("record kind {k}"))),
        };
        records.push(record);
    }
    r.end()?;
    Ok(Payload::Records(records))
}

/// A cursor over a payload; every read checks the bytes left.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], Malformed> {
        if self.0.len() < n {
            return Err(Malformed(format!(
                "{n} bytes wanted, {} left in the payload",
                self.0.len()
            )));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Malformed> {
        Ok(self.take(N)?.try_into().expect("N bytes"))
    }

    fn u8(&mut self) -> Result<u8, Malformed> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, Malformed> {
        self.array().map(u32::from_be_bytes)
    }

    fn i32(&mut self) -> Result<i32, Malformed> {
        self.array().map(i32::from_be_bytes)
    }

    fn i64(&mut self) -> Result<i64, Malformed> {
        self.array().map(i64::from_be_bytes)
    }

    fn u64(&mut self) -> Result<u64, Malformed> {
        self.array().map(u64::from_be_bytes)
    }

    fn str(&mut self) -> Result<String, Malformed> {
        let n = u16::from_be_bytes(self.array()?) as usize;
        let bytes = self.take(n)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| Malformed("a string not UTF-8".into()))
    }

    fn end(&self) -> Result<(), Malformed> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Malformed(format!(
                "{} bytes after the last record",
                self.0.len()
            )))
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_frame_has_the_documented_bytes() {
        let r = OffsetRecord::Commit {
            group: "g".into(),
            topic: "t".into(),
            partition: 2,
            value: CommittedOffset {
                offset: 7,
                leader_epoch: -1,
                metadata: "m".into(),
                commit_timestamp_ms: 1000,
            },
        };
        let mut out = Vec::new();
        encode_frame([&r], &mut out).unwrap();
        let mut payload = vec![1, 0, 0, 0, 1, 1, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 2];
        payload.extend_from_slice(&7i64.to_be_bytes());
        payload.extend_from_slice(&(-1i32).to_be_bytes());
        payload.extend_from_slice(&1000i64.to_be_bytes());
        payload.extend_from_slice(&[0, 1, b'm']);
        let mut want = (payload.len() as u32).to_be_bytes().to_vec();
        want.extend_from_slice(&crc32c::crc32c(&payload).to_be_bytes());
        want.extend_from_slice(&payload);
        assert_eq!(out, want);
        assert_eq!(r.encoded_len(), payload.len() - PAYLOAD_HEADER);
    }

    #[test]
    fn every_kind_round_trips_and_bad_payloads_are_malformed() {
        let records = vec![
            OffsetRecord::OffsetDelete {
                group: "g".into(),
                topic: "t".into(),
                partition: -3,
            },
            OffsetRecord::Group {
                group: "g".into(),
                metadata: GroupMetadata {
                    group_type: GroupType::Classic,
                    generation: 9,
                    protocol_type: "consumer".into(),
                    protocol: Some("range".into()),
                },
            },
            OffsetRecord::Group {
                group: "é".into(),
                metadata: GroupMetadata {
                    group_type: GroupType::Consumer,
                    generation: 1,
                    protocol_type: String::new(),
                    protocol: None,
                },
            },
            OffsetRecord::GroupDelete { group: "g".into() },
        ];
        let mut out = Vec::new();
        encode_frame(&records, &mut out).unwrap();
        let header: [u8; 8] = out[..8].try_into().unwrap();
        assert_eq!(frame_len(&header).unwrap(), out.len() - 8);
        assert!(crc_ok(&header, &out[8..]));
        let Ok(Payload::Records(back)) = decode_payload(&out[8..]) else {
            panic!("not records")
        };
        assert_eq!(back, records);
        let total: usize = records.iter().map(OffsetRecord::encoded_len).sum();
        assert_eq!(total + PAYLOAD_HEADER, out.len() - 8);

        let mut end = Vec::new();
        encode_snapshot_end(42, &mut end);
        assert!(matches!(
            decode_payload(&end[8..]),
            Ok(Payload::SnapshotEnd(42))
        ));
        // Every strict prefix of a payload is malformed, and so are extra bytes.
        for n in 0..out.len() - 8 {
            assert!(decode_payload(&out[8..8 + n]).is_err(), "prefix of {n}");
        }
        let mut long = out[8..].to_vec();
        long.push(0);
        assert!(decode_payload(&long).is_err());
        for bad in [
            vec![2, 0, 0, 0, 0],
            vec![1, 0, 0, 0, 1, 9],
            vec![1, 0, 0, 0, 1, 4, 0, 1, 0xff],
            vec![1, 0, 0, 0, 2, 5, 0, 0, 0, 0, 0, 0, 0, 0],
            vec![1, 0xff, 0xff, 0xff, 0xff],
        ] {
            assert!(decode_payload(&bad).is_err(), "{bad:?}");
        }
        let long_name = OffsetRecord::GroupDelete {
            group: "x".repeat(70_000),
        };
        assert!(encode_frame([&long_name], &mut Vec::new()).is_err());
    }
}
