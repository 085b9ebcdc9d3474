//! One file per API key: each has `handle` (the request's answer) and `error` (the answer that
//! puts one error code in every error field, for UNSUPPORTED_VERSION; Kafka's
//! `AbstractRequest.getErrorResponse`).
//!
//! [`dispatch`] routes a decoded request to its handler; [`error_response`] builds the error
//! answer for any request kind served here.

pub mod api_versions;
pub mod consumer_group_describe;
pub mod consumer_group_heartbeat;
pub mod create_topics;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod fetch;
pub mod find_coordinator;
pub mod heartbeat;
pub mod incremental_alter_configs;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod produce;
pub mod sync_group;

use super::context::Context;
use super::frames::Splices;
use kafka_protocol::messages::{RequestHeader, RequestKind, ResponseKind};
use kafka_protocol::protocol::StrBytes;
use std::net::SocketAddr;

/// What a handler may know about its connection.
#[derive(Debug, Clone)]
pub struct Conn {
    /// The client's address.
    pub peer: SocketAddr,
    /// `/<ip>`, as Kafka reports a member's host in DescribeGroups.
    pub client_host: String,
}

/// The answer to `request` (version `header.request_api_version`) and the stored bytes its
/// records fields stand for (Fetch, [`super::frames`]), or `None` when the protocol wants no
/// answer (Produce with acks=0). The caller has checked the version against
/// [`super::versions`].
pub async fn dispatch(
    ctx: &Context,
    conn: &Conn,
    header: &RequestHeader,
    request: RequestKind,
) -> Option<(ResponseKind, Splices)> {
    if let RequestKind::Fetch(r) = request {
        let (resp, splices) = fetch::handle(ctx, header.request_api_version, r).await;
        return Some((ResponseKind::Fetch(resp), splices));
    }
    answer(ctx, conn, header, request)
        .await
        .map(|resp| (resp, Splices::default()))
}

/// [`dispatch`] for every request but Fetch.
async fn answer(
    ctx: &Context,
    conn: &Conn,
    header: &RequestHeader,
    request: RequestKind,
) -> Option<ResponseKind> {
    let v = header.request_api_version;
    Some(match request {
        RequestKind::ApiVersions(r) => ResponseKind::ApiVersions(api_versions::handle(&r)),
        RequestKind::Metadata(r) => ResponseKind::Metadata(metadata::handle(ctx, v, r)),
        RequestKind::CreateTopics(r) => ResponseKind::CreateTopics(create_topics::handle(ctx, r)),
        RequestKind::DeleteTopics(r) => {
            ResponseKind::DeleteTopics(delete_topics::handle(ctx, v, r))
        }
        RequestKind::FindCoordinator(r) => {
            ResponseKind::FindCoordinator(find_coordinator::handle(ctx, v, r))
        }
        RequestKind::JoinGroup(r) => {
            ResponseKind::JoinGroup(join_group::handle(ctx, conn, header, r).await)
        }
        RequestKind::SyncGroup(r) => ResponseKind::SyncGroup(sync_group::handle(ctx, r).await),
        RequestKind::Heartbeat(r) => ResponseKind::Heartbeat(heartbeat::handle(ctx, r)),
        RequestKind::LeaveGroup(r) => ResponseKind::LeaveGroup(leave_group::handle(ctx, v, r)),
        RequestKind::OffsetCommit(r) => ResponseKind::OffsetCommit(offset_commit::handle(ctx, r)),
        RequestKind::OffsetFetch(r) => ResponseKind::OffsetFetch(offset_fetch::handle(ctx, v, r)),
        RequestKind::DescribeGroups(r) => {
            ResponseKind::DescribeGroups(describe_groups::handle(ctx, r))
        }
        RequestKind::ListGroups(r) => ResponseKind::ListGroups(list_groups::handle(ctx, r)),
        RequestKind::DeleteGroups(r) => ResponseKind::DeleteGroups(delete_groups::handle(ctx, r)),
        RequestKind::OffsetDelete(r) => ResponseKind::OffsetDelete(offset_delete::handle(ctx, r)),
        RequestKind::DescribeCluster(r) => {
            ResponseKind::DescribeCluster(describe_cluster::handle(ctx, r))
        }
        RequestKind::DescribeConfigs(r) => {
            ResponseKind::DescribeConfigs(describe_configs::handle(ctx, r))
        }
        RequestKind::InitProducerId(r) => {
            ResponseKind::InitProducerId(init_producer_id::handle(ctx, r))
        }
        RequestKind::IncrementalAlterConfigs(r) => {
            ResponseKind::IncrementalAlterConfigs(incremental_alter_configs::handle(ctx, r))
        }
        RequestKind::Produce(r) => {
            return blocking_if_durable(ctx, || produce::handle(ctx, r)).map(ResponseKind::Produce)
        }
        RequestKind::ListOffsets(r) => ResponseKind::ListOffsets(list_offsets::handle(ctx, v, r)),
        RequestKind::ConsumerGroupHeartbeat(r) => ResponseKind::ConsumerGroupHeartbeat(
            consumer_group_heartbeat::handle(ctx, conn, header, r),
        ),
        RequestKind::ConsumerGroupDescribe(r) => {
            ResponseKind::ConsumerGroupDescribe(consumer_group_describe::handle(ctx, r))
        }
        RequestKind::DeleteRecords(r) => {
            let resp = blocking_if_durable(ctx, || delete_records::handle(ctx, r));
            ResponseKind::DeleteRecords(resp)
        }
        other => {
            // `versions::range` admits only the kinds above; this is a bug, not bad input.
            tracing::error!("no handler for {other:?}");
            return None;
        }
    })
}

/// The answer to `request` with `code` in every error field.
pub fn error_response(request: &RequestKind, version: i16, code: i16) -> ResponseKind {
    match request {
        RequestKind::ApiVersions(_) => ResponseKind::ApiVersions(api_versions::error(code)),
        RequestKind::Metadata(r) => ResponseKind::Metadata(metadata::error(r, code)),
        RequestKind::CreateTopics(r) => ResponseKind::CreateTopics(create_topics::error(r, code)),
        RequestKind::DeleteTopics(r) => ResponseKind::DeleteTopics(delete_topics::error(r, code)),
        RequestKind::FindCoordinator(r) => {
            ResponseKind::FindCoordinator(find_coordinator::error(r, version, code))
        }
        RequestKind::JoinGroup(r) => ResponseKind::JoinGroup(join_group::error(r, version, code)),
        RequestKind::SyncGroup(_) => ResponseKind::SyncGroup(sync_group::error(code)),
        RequestKind::Heartbeat(_) => ResponseKind::Heartbeat(heartbeat::error(code)),
        RequestKind::LeaveGroup(r) => ResponseKind::LeaveGroup(leave_group::error(r, code)),
        RequestKind::OffsetCommit(r) => ResponseKind::OffsetCommit(offset_commit::error(r, code)),
        RequestKind::OffsetFetch(r) => ResponseKind::OffsetFetch(offset_fetch::error(r, code)),
        RequestKind::DescribeGroups(r) => {
            ResponseKind::DescribeGroups(describe_groups::error(r, code))
        }
        RequestKind::ListGroups(_) => ResponseKind::ListGroups(list_groups::error(code)),
        RequestKind::DeleteGroups(r) => ResponseKind::DeleteGroups(delete_groups::error(r, code)),
        RequestKind::OffsetDelete(_) => ResponseKind::OffsetDelete(offset_delete::error(code)),
        RequestKind::DescribeCluster(_) => {
            ResponseKind::DescribeCluster(describe_cluster::error(code))
        }
        RequestKind::DescribeConfigs(r) => {
            ResponseKind::DescribeConfigs(describe_configs::error(r, code))
        }
        RequestKind::InitProducerId(_) => {
            ResponseKind::InitProducerId(init_producer_id::error(code))
        }
        RequestKind::IncrementalAlterConfigs(r) => {
            ResponseKind::IncrementalAlterConfigs(incremental_alter_configs::error(r, code))
        }
        RequestKind::Produce(r) => ResponseKind::Produce(produce::error(r, code)),
        RequestKind::Fetch(r) => ResponseKind::Fetch(fetch::error(r, code)),
        RequestKind::ListOffsets(r) => ResponseKind::ListOffsets(list_offsets::error(r, code)),
        RequestKind::ConsumerGroupHeartbeat(_) => {
            ResponseKind::ConsumerGroupHeartbeat(consumer_group_heartbeat::error(code))
        }
        RequestKind::ConsumerGroupDescribe(r) => {
            ResponseKind::ConsumerGroupDescribe(consumer_group_describe::error(r, code))
        }
        RequestKind::DeleteRecords(r) => {
            ResponseKind::DeleteRecords(delete_records::error(r, code))
        }
        // Not reachable: the connection closes on kinds it does not serve.
        _ => ResponseKind::ApiVersions(api_versions::error(code)),
    }
}

/// Runs `f`, which does file I/O on a durable broker, without stalling the reactor: on a
/// multi-thread runtime through `block_in_place` (the worker hands its other tasks over first);
/// in memory, or on a current-thread runtime (in-process tests), directly.
pub(crate) fn blocking_if_durable<R>(ctx: &Context, f: impl FnOnce() -> R) -> R {
    let multi = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if multi && ctx.broker().topics().storage().is_some() {
        tokio::task::block_in_place(f)
    } else {
        f()
    }
}

/// Partition `index` of `topic`, if both exist (a negative index does not).
pub(crate) fn partition(
    topic: &Option<std::sync::Arc<crate::topic::Topic>>,
    index: i32,
) -> Option<&crate::partition::Partition> {
    topic.as_ref()?.partition(u32::try_from(index).ok()?).ok()
}

/// A `StrBytes` holding a copy of `s`.
pub(crate) fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// Kafka's topic-name rule (`Topic.validate`): 1 to 249 characters of `[a-zA-Z0-9._-]`, and
/// neither `.` nor `..`.
pub fn valid_topic_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 249
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_follow_kafkas_rule() {
        assert!(valid_topic_name("orders.v1_x-y"));
        assert!(!valid_topic_name(""));
        assert!(!valid_topic_name(".."));
        assert!(!valid_topic_name("a b"));
        assert!(!valid_topic_name(&"x".repeat(250)));
    }
}
