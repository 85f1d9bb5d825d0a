//! DescribeCluster: the cluster id, the controller and the brokers (this one).

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;

use super::{HandlerError, RequestContext};
use crate::authorized_operations;

/// Endpoint type 1 = brokers (2 = controllers, which clients reach through brokers here).
const BROKERS_ENDPOINT: i8 = 1;

pub fn handle(ctx: &RequestContext, body: Bytes) -> Result<Option<Bytes>, HandlerError> {
    let request: DescribeClusterRequest = ctx.decode(body)?;
    let config = &ctx.broker.config;
    let response = DescribeClusterResponse::default()
        .with_cluster_id(StrBytes::from_string(ctx.broker.cluster.cluster_id.clone()))
        .with_controller_id(BrokerId(config.node_id))
        .with_cluster_authorized_operations(authorized_operations::reported(
            request.include_cluster_authorized_operations,
            authorized_operations::CLUSTER,
        ));
    if request.endpoint_type != BROKERS_ENDPOINT {
        let message = "only broker endpoints are served".to_string();
        return ctx.respond(
            &response
                .with_error_code(ResponseError::UnsupportedEndpointType.code())
                .with_error_message(Some(StrBytes::from_string(message))),
        );
    }
    let broker = DescribeClusterBroker::default()
        .with_broker_id(BrokerId(config.node_id))
        .with_host(StrBytes::from_string(config.advertised_host.clone()))
        .with_port(i32::from(config.advertised_port));
    ctx.respond(&response.with_brokers(vec![broker]))
}
