//! The API versions this broker advertises in ApiVersions and accepts.
//!
//! The table is ours, not `ApiKey::valid_versions()`: the crate reports OffsetCommit and
//! OffsetFetch up to 10 and InitProducerId up to 6 while its message types stop at 9, 9 and 5
//! (`shared/reference/kafka-wire.md`). Upper bounds stop where a version changes what the broker
//! must do rather than only the encoding:
//! - Produce ≤ 11 and Fetch ≤ 12: v12/v13 switch to topic IDs (KIP-516) and KIP-890 markers.
//! - OffsetCommit ≤ 9 and OffsetFetch ≤ 9: v9 carries KIP-848 member epochs (OffsetFetch v8
//!   batches groups); v10 switches to topic IDs.
//! - ConsumerGroupHeartbeat 0–1 and ConsumerGroupDescribe 0–1 (KIP-848).
//! - JoinGroup ≤ 7: v8 adds a reason (harmless), v9 the `skip_assignment` leader shortcut, which
//!   this coordinator never uses.
//! - ListOffsets ≤ 7: v8 adds tiered-storage timestamps, v9+ KIP-1005.
//! - FindCoordinator ≤ 4: v4 batches `coordinator_keys` (KIP-699); v5/v6 add share groups.
//!
//! A request whose version the crate can decode but this table does not accept gets
//! UNSUPPORTED_VERSION (35) in every error field of its response; ApiVersions above our range
//! gets the KIP-511 fallback (a v0 body with error 35). Lower bounds are the crate's: Kafka 4.0
//! removed the older versions (KIP-896), and so did the crate.

use kafka_protocol::messages::ApiKey;

/// (API key, lowest, highest) version accepted, by API key.
pub const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 11),
    (ApiKey::Fetch, 4, 12),
    (ApiKey::ListOffsets, 1, 7),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::OffsetCommit, 2, 9),
    (ApiKey::OffsetFetch, 1, 9),
    (ApiKey::FindCoordinator, 0, 4),
    (ApiKey::JoinGroup, 0, 7),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 4),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 5),
    (ApiKey::InitProducerId, 0, 4),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::DescribeCluster, 0, 1),
    (ApiKey::ConsumerGroupHeartbeat, 0, 1),
    (ApiKey::ConsumerGroupDescribe, 0, 1),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::DeleteRecords, 0, 2),
];

/// The (lowest, highest) version of `key` this broker accepts, or `None` if it does not serve it.
pub fn range(key: ApiKey) -> Option<(i16, i16)> {
    SUPPORTED
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|&(_, lo, hi)| (lo, hi))
}

/// Whether `version` of `key` is accepted.
pub fn accepts(key: ApiKey, version: i16) -> bool {
    range(key).is_some_and(|(lo, hi)| (lo..=hi).contains(&version))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::Message;

    /// Every advertised range lies within what the crate's request *and* response types encode,
    /// so no accepted version can fail to decode or encode for that reason.
    #[test]
    fn advertised_ranges_fit_the_crates_message_types() {
        fn within<Rq: Message, Rs: Message>(key: ApiKey) {
            let (lo, hi) = range(key).unwrap();
            for v in [Rq::VERSIONS, Rs::VERSIONS] {
                assert!(v.min <= lo && hi <= v.max, "{key:?} {lo}..={hi} vs {v:?}");
            }
        }
        within::<ProduceRequest, ProduceResponse>(ApiKey::Produce);
        within::<FetchRequest, FetchResponse>(ApiKey::Fetch);
        within::<ListOffsetsRequest, ListOffsetsResponse>(ApiKey::ListOffsets);
        within::<MetadataRequest, MetadataResponse>(ApiKey::Metadata);
        within::<OffsetCommitRequest, OffsetCommitResponse>(ApiKey::OffsetCommit);
        within::<OffsetFetchRequest, OffsetFetchResponse>(ApiKey::OffsetFetch);
        within::<FindCoordinatorRequest, FindCoordinatorResponse>(ApiKey::FindCoordinator);
        within::<JoinGroupRequest, JoinGroupResponse>(ApiKey::JoinGroup);
        within::<HeartbeatRequest, HeartbeatResponse>(ApiKey::Heartbeat);
        within::<LeaveGroupRequest, LeaveGroupResponse>(ApiKey::LeaveGroup);
        within::<SyncGroupRequest, SyncGroupResponse>(ApiKey::SyncGroup);
        within::<DescribeGroupsRequest, DescribeGroupsResponse>(ApiKey::DescribeGroups);
        within::<ListGroupsRequest, ListGroupsResponse>(ApiKey::ListGroups);
        within::<ApiVersionsRequest, ApiVersionsResponse>(ApiKey::ApiVersions);
        within::<CreateTopicsRequest, CreateTopicsResponse>(ApiKey::CreateTopics);
        within::<DeleteTopicsRequest, DeleteTopicsResponse>(ApiKey::DeleteTopics);
        within::<InitProducerIdRequest, InitProducerIdResponse>(ApiKey::InitProducerId);
        within::<DescribeConfigsRequest, DescribeConfigsResponse>(ApiKey::DescribeConfigs);
        within::<DeleteGroupsRequest, DeleteGroupsResponse>(ApiKey::DeleteGroups);
        within::<OffsetDeleteRequest, OffsetDeleteResponse>(ApiKey::OffsetDelete);
        within::<DescribeClusterRequest, DescribeClusterResponse>(ApiKey::DescribeCluster);
        within::<ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse>(
            ApiKey::ConsumerGroupHeartbeat,
        );
        within::<ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse>(
            ApiKey::ConsumerGroupDescribe,
        );
        within::<IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse>(
            ApiKey::IncrementalAlterConfigs,
        );
        within::<DeleteRecordsRequest, DeleteRecordsResponse>(ApiKey::DeleteRecords);
        assert_eq!(SUPPORTED.len(), 25);
    }

    #[test]
    fn accepts_only_inside_the_range() {
        assert!(accepts(ApiKey::Metadata, 4));
        assert!(!accepts(ApiKey::Produce, 12));
        assert!(accepts(ApiKey::OffsetCommit, 9));
        assert!(!accepts(ApiKey::OffsetCommit, 10));
        assert!(accepts(ApiKey::ConsumerGroupHeartbeat, 1));
        assert!(!accepts(ApiKey::SaslHandshake, 1));
    }
}
