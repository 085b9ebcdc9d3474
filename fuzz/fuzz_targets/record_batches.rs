//! Arbitrary bytes as a Produce request's records: the RecordBatch v2 parser (CRC, header checks,
//! counts), then for every batch it accepts, the record decoder and the re-encoder with a new base
//! offset, and appends to a partition whose fetch must return every record the log holds.
#![no_main]

use bytes::{Buf, Bytes};
use bytes_utils::SegmentedBuf;
use kgroups::batch::Batch;
use kgroups::partition::Partition;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(batches) = Batch::parse_all(Bytes::copy_from_slice(data)) else {
        return;
    };
    let p = Partition::new();
    for b in &batches {
        if let Ok(records) = b.records(7) {
            for r in records {
                let _ = r;
            }
        }
        let again = Batch::parse_all({
            let (head, rest) = b.served(1 << 40);
            [&head[..], &rest].concat().into()
        })
            .expect("a re-based batch parses again");
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].count(), b.count());
        // An idempotent producer's repeated batch is answered with its first offsets and not
        // appended again, and an out-of-order one is refused: count what the log holds.
        let _ = p.append_batch(b.clone());
    }
    let total = p.end();
    let mut fetched = SegmentedBuf::new();
    if total > 0 {
        let n = p
            .fetch(0, usize::MAX, &mut fetched)
            .expect("offset 0 is in range");
        let back = Batch::parse_all(fetched.copy_to_bytes(n)).expect("fetched bytes parse");
        let n: u64 = back.iter().map(|b| u64::from(b.count())).sum();
        assert_eq!(n, total, "every appended record is fetched back");
    }
});
