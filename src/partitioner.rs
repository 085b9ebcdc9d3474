//! Kafka's murmur2 partitioner, byte for byte with the Java producer.
//!
//! Kafka's default partitioner sends a keyed record to `toPositive(murmur2(keyBytes)) % numPartitions`,
//! where `murmur2` is the 32-bit MurmurHash2 variant of `org.apache.kafka.common.utils.Utils`
//! (seed `0x9747b28c`, `m = 0x5bd1e995`, `r = 24`, little-endian 4-byte blocks, the tail mixed in
//! before the final multiply) and `toPositive(n)` is `n & 0x7fffffff`: a mask, not `abs`, so
//! `i32::MIN` maps to 0. All arithmetic is Java's wrapping `int` arithmetic; `>>>` is a logical shift,
//! which is what `u32 >>` does.

const SEED: u32 = 0x9747_b28c;
const M: u32 = 0x5bd1_e995;
const R: u32 = 24;

/// Kafka's `Utils.murmur2`.
pub fn murmur2(data: &[u8]) -> i32 {
    // Java's `seed ^ length` with `length` an `int`: only the low 32 bits of the length take part.
    let mut h = SEED ^ (data.len() as u32);
    let mut blocks = data.chunks_exact(4);
    for block in &mut blocks {
        let mut k = u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = blocks.remainder();
    if !tail.is_empty() {
        // Java's fall-through switch on `length % 4`: case 3, then 2, then 1 (which multiplies).
        if tail.len() == 3 {
            h ^= u32::from(tail[2]) << 16;
        }
        if tail.len() >= 2 {
            h ^= u32::from(tail[1]) << 8;
        }
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// Kafka's `Utils.toPositive`: clears the sign bit.
#[inline]
pub fn to_positive(n: i32) -> u32 {
    (n & 0x7fff_ffff) as u32
}

/// `(murmur2(key) & 0x7fffffff) % partitions`, Kafka's partition for a keyed record.
///
/// # Panics
///
/// If `partitions` is 0.
#[inline]
pub fn partition_for(key: &[u8], partitions: u32) -> u32 {
    assert!(partitions > 0, "a topic has at least one partition");
    let h = to_positive(murmur2(key));
    if partitions.is_power_of_two() {
        // The same value as `%` (both are non-negative), without a division (tens of cycles).
        h & (partitions - 1)
    } else {
        h % partitions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_utils_test_vectors() {
        // apache/kafka clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java (testMurmur2).
        let cases: &[(&str, i32)] = &[
            ("21", -973932308),
            ("foobar", -790332482),
            ("a-little-bit-long-string", -985981536),
            ("a-little-bit-longer-string", -1486304829),
            (
                "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58897971,
            ),
            ("abc", 479470107),
        ];
        for (key, expected) in cases {
            assert_eq!(murmur2(key.as_bytes()), *expected, "murmur2({key:?})");
        }
    }

    #[test]
    fn vectors_cited_from_kafka_by_other_clients() {
        // librdkafka's rdmurmur2.c cites 0xd067cf64 for "kafka" as Kafka's Java value.
        assert_eq!(murmur2(b"kafka"), 0xd067cf64_u32 as i32);
        // Akka's Murmur2Spec, checked against Kafka's Utils.murmur2: every tail length 1..=4 and a
        // block plus a tail of 1.
        let cases: &[(&str, i32)] = &[
            ("1", -1993445489),
            ("12", 126087238),
            ("123", -267702483),
            ("1234", -1614185708),
            ("12345", -1188365604),
        ];
        for (key, expected) in cases {
            assert_eq!(murmur2(key.as_bytes()), *expected, "murmur2({key:?})");
        }
    }

    #[test]
    fn empty_input_is_the_mixed_seed() {
        // Worked by hand from the algorithm: no blocks and no tail, so only the final mix of
        // `seed ^ 0` runs.
        let mut h = SEED;
        h ^= h >> 13;
        h = h.wrapping_mul(M);
        h ^= h >> 15;
        assert_eq!(murmur2(b""), h as i32);
    }

    #[test]
    fn partition_is_masked_not_abs() {
        assert_eq!(partition_for(b"foobar", 10), 6);
        // murmur2("foobar") is negative; `abs` would give a different answer.
        let h = murmur2(b"foobar");
        assert!(h < 0);
        assert_eq!(partition_for(b"foobar", 10), (h & 0x7fffffff) as u32 % 10);
        assert_ne!(partition_for(b"foobar", 10), h.unsigned_abs() % 10);
        assert_eq!(to_positive(i32::MIN), 0);
        assert_eq!(to_positive(-1), 0x7fff_ffff);
        assert_eq!(partition_for(b"foobar", 1), 0);
    }

    #[test]
    fn power_of_two_counts_agree_with_the_remainder() {
        for i in 0..2000u32 {
            let key = format!("key-{i}");
            let h = to_positive(murmur2(key.as_bytes()));
            for n in [1, 2, 3, 4, 8, 10, 16, 64, 1 << 20, 1 << 31] {
                assert_eq!(partition_for(key.as_bytes(), n), h % n, "{key} over {n}");
            }
        }
    }

    #[test]
    fn every_partition_is_reachable() {
        let mut hit = [false; 8];
        for i in 0..1000 {
            hit[partition_for(i.to_string().as_bytes(), 8) as usize] = true;
        }
        assert!(hit.iter().all(|h| *h), "{hit:?}");
    }
}
