//! Kafka's murmur2 partitioner, byte for byte with the Java producer. (Skeleton.)

/// Kafka's `Utils.murmur2`.
pub fn murmur2(_data: &[u8]) -> i32 {
    todo!()
}

/// `(murmur2(key) & 0x7fffffff) % partitions`, Kafka's partition for a keyed record.
pub fn partition_for(_key: &[u8], _partitions: u32) -> u32 {
    todo!()
}
