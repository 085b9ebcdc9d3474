//! The idempotent producer's state of one partition (KIP-98): per producer id, its epoch and the
//! sequence numbers and offsets of its last five batches, so that a retried batch is found and
//! answered with its first offsets instead of being appended twice.
//!
//! The rules are Kafka's (`ProducerStateManager` and `ProducerAppendInfo` in
//! `storage/src/main/java/org/apache/kafka/storage/internals/log/`):
//! - a batch whose epoch, first and last sequence match one of the producer's last five batches
//!   is a duplicate: it is not appended, and the producer gets the original offsets;
//! - an epoch below the producer's current one is fenced (INVALID_PRODUCER_EPOCH);
//! - a new epoch, or a producer the partition has no state for, must start at sequence 0;
//! - otherwise the first sequence must follow the last one (wrapping from `i32::MAX` to 0), else
//!   OUT_OF_ORDER_SEQUENCE_NUMBER.

use crate::batch::ProducerBatch;
use std::collections::{HashMap, VecDeque};
use std::fmt;

/// How many batches per producer Kafka remembers for duplicate detection
/// (`ProducerStateEntry.NUM_BATCHES_TO_RETAIN`), which is also why clients keep at most five
/// requests in flight with idempotence.
const RETAINED: usize = 5;

/// Why an idempotent batch was refused. Nothing of it was appended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AppendError {
    /// The batch's first sequence is not the one that follows the producer's last batch: Kafka's
    /// OUT_OF_ORDER_SEQUENCE_NUMBER (45).
    OutOfOrderSequence {
        producer_id: i64,
        expected: i32,
        got: i32,
    },
    /// The batch's producer epoch is older than one this partition has seen from the same
    /// producer: Kafka's INVALID_PRODUCER_EPOCH (47).
    ProducerFenced {
        producer_id: i64,
        epoch: i16,
        current: i16,
    },
}

impl fmt::Display for AppendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppendError::OutOfOrderSequence {
                producer_id,
                expected,
                got,
            } => write!(
                f,
                "producer {producer_id}: sequence {got} out of order, expected {expected}"
            ),
            AppendError::ProducerFenced {
                producer_id,
                epoch,
                current,
            } => write!(
                f,
                "producer {producer_id}: epoch {epoch} is older than the current epoch {current}"
            ),
        }
    }
}

impl std::error::Error for AppendError {}

/// One retained batch: its first and last sequence and the first offset it was given.
#[derive(Debug, Clone, Copy)]
struct Retained {
    first: i32,
    last: i32,
    base: u64,
}

#[derive(Debug)]
struct Producer {
    epoch: i16,
    batches: VecDeque<Retained>,
}

/// What to do with an idempotent batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Append it.
    Append,
    /// Already appended at this first offset: answer with it and append nothing.
    Duplicate(u64),
}

/// The state of every idempotent producer that wrote to one partition.
#[derive(Debug, Default)]
pub(super) struct Producers {
    map: HashMap<i64, Producer>,
}

/// The last sequence of a batch of `count` records starting at `first`.
fn last_sequence(first: i32, count: u32) -> i32 {
    // Sequences wrap from i32::MAX to 0 (Kafka's `DefaultRecordBatch.incrementSequence`).
    ((i64::from(first) + i64::from(count) - 1) % (i64::from(i32::MAX) + 1)) as i32
}

impl Producers {
    /// Checks a batch of `count` records from `p` against the state, without changing it.
    pub(super) fn check(&self, p: ProducerBatch, count: u32) -> Result<Verdict, AppendError> {
        let last = last_sequence(p.base_sequence, count);
        let Some(state) = self.map.get(&p.id) else {
            return Self::first_batch(p);
        };
        if p.epoch < state.epoch {
            return Err(AppendError::ProducerFenced {
                producer_id: p.id,
                epoch: p.epoch,
                current: state.epoch,
            });
        }
        if p.epoch > state.epoch {
            return Self::first_batch(p);
        }
        if let Some(dup) = state
            .batches
            .iter()
            .find(|b| b.first == p.base_sequence && b.last == last)
        {
            return Ok(Verdict::Duplicate(dup.base));
        }
        let newest = state.batches.back().expect("a producer has a batch");
        let expected = if newest.last == i32::MAX {
            0
        } else {
            newest.last + 1
        };
        if p.base_sequence != expected {
            return Err(AppendError::OutOfOrderSequence {
                producer_id: p.id,
                expected,
                got: p.base_sequence,
            });
        }
        Ok(Verdict::Append)
    }

    fn first_batch(p: ProducerBatch) -> Result<Verdict, AppendError> {
        if p.base_sequence == 0 {
            Ok(Verdict::Append)
        } else {
            Err(AppendError::OutOfOrderSequence {
                producer_id: p.id,
                expected: 0,
                got: p.base_sequence,
            })
        }
    }

    /// Records that a batch of `count` records from `p` was appended at `base`.
    pub(super) fn record(&mut self, p: ProducerBatch, count: u32, base: u64) {
        let state = self.map.entry(p.id).or_insert(Producer {
            epoch: p.epoch,
            batches: VecDeque::with_capacity(RETAINED),
        });
        if p.epoch != state.epoch {
            state.epoch = p.epoch;
            state.batches.clear();
        }
        if state.batches.len() == RETAINED {
            state.batches.pop_front();
        }
        state.batches.push_back(Retained {
            first: p.base_sequence,
            last: last_sequence(p.base_sequence, count),
            base,
        });
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn batch(epoch: i16, seq: i32) -> ProducerBatch {
        ProducerBatch {
            id: 9,
            epoch,
            base_sequence: seq,
        }
    }

    #[test]
    fn retries_are_duplicates_and_gaps_are_out_of_order() {
        let mut s = Producers::default();
        assert_eq!(
            s.check(batch(0, 3), 2),
            Err(AppendError::OutOfOrderSequence {
                producer_id: 9,
                expected: 0,
                got: 3
            }),
            "a new producer starts at 0"
        );
        for (i, seq) in [0, 2, 4, 6, 8, 10].into_iter().enumerate() {
            assert_eq!(s.check(batch(0, seq), 2), Ok(Verdict::Append));
            s.record(batch(0, seq), 2, 100 + i as u64 * 2);
        }
        // The last five batches are remembered, the first one no longer.
        assert_eq!(s.check(batch(0, 2), 2), Ok(Verdict::Duplicate(102)));
        assert_eq!(s.check(batch(0, 10), 2), Ok(Verdict::Duplicate(110)));
        assert!(matches!(
            s.check(batch(0, 0), 2),
            Err(AppendError::OutOfOrderSequence { expected: 12, .. })
        ));
        assert!(matches!(
            s.check(batch(0, 14), 2),
            Err(AppendError::OutOfOrderSequence { expected: 12, .. })
        ));
        assert_eq!(s.check(batch(0, 12), 1), Ok(Verdict::Append));
        // An older epoch is fenced; a newer one starts again at 0.
        assert!(matches!(
            s.check(batch(-1, 12), 1),
            Err(AppendError::ProducerFenced { current: 0, .. })
        ));
        assert!(s.check(batch(1, 12), 1).is_err());
        assert_eq!(s.check(batch(1, 0), 1), Ok(Verdict::Append));
    }

    #[test]
    fn sequences_wrap_at_i32_max() {
        assert_eq!(last_sequence(i32::MAX, 1), i32::MAX);
        assert_eq!(last_sequence(i32::MAX, 2), 0);
        let mut s = Producers::default();
        s.map.insert(
            9,
            Producer {
                epoch: 0,
                batches: VecDeque::from([Retained {
                    first: i32::MAX - 1,
                    last: i32::MAX,
                    base: 0,
                }]),
            },
        );
        assert_eq!(s.check(batch(0, 0), 3), Ok(Verdict::Append));
    }
}
