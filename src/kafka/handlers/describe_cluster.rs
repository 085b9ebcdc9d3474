//! DescribeCluster (key 60, v0–1): one broker, node 0, which is also the controller.

use super::sb;
use crate::kafka::context::{Context, CLUSTER_ID, NODE_ID};
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};

/// This broker.
pub fn handle(ctx: &Context, _req: DescribeClusterRequest) -> DescribeClusterResponse {
    DescribeClusterResponse::default()
        .with_cluster_id(sb(CLUSTER_ID))
        .with_controller_id(BrokerId(NODE_ID))
        .with_brokers(vec![DescribeClusterBroker::default()
            .with_broker_id(BrokerId(NODE_ID))
            .with_host(sb(&ctx.config.advertised_host))
            .with_port(ctx.config.advertised_port)])
}

/// `code`.
pub fn error(code: i16) -> DescribeClusterResponse {
    DescribeClusterResponse::default().with_error_code(code)
}
