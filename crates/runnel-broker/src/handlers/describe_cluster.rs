//! DescribeCluster: the cluster id, the controller and the brokers (this one).

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;

use super::{HandlerError, RequestContext};
use crate::authorized_operations;

/// KIP-919 endpoint types: 1 = brokers, 2 = controllers (which clients reach through brokers
/// here). A broker serves type 1.
const BROKERS_ENDPOINT: i8 = 1;
const CONTROLLERS_ENDPOINT: i8 = 2;

pub fn handle(ctx: &RequestContext, body: Bytes) -> Result<Option<Bytes>, HandlerError> {
    let request: DescribeClusterRequest = ctx.decode(body)?;
    // As Kafka's `AuthHelper.computeDescribeClusterResponse`: an unknown endpoint type is
    // UNSUPPORTED_ENDPOINT_TYPE, the controllers' type MISMATCHED_ENDPOINT_TYPE (INVALID_REQUEST
    // at v0, which cannot carry the field), each alone with its message.
    let refusal = match request.endpoint_type {
        BROKERS_ENDPOINT => None,
        CONTROLLERS_ENDPOINT => Some((
            ResponseError::MismatchedEndpointType,
            "The request was sent to an endpoint of type BROKER, but we wanted an endpoint \
             of type CONTROLLER"
                .to_string(),
        )),
        other => Some((
            ResponseError::UnsupportedEndpointType,
            format!("Unsupported endpoint type {other}"),
        )),
    };
    if let Some((error, message)) = refusal {
        let error = if ctx.version() == 0 {
            ResponseError::InvalidRequest
        } else {
            error
        };
        return ctx.respond(
            &DescribeClusterResponse::default()
                .with_error_code(error.code())
                .with_error_message(Some(StrBytes::from_string(message))),
        );
    }
    let config = &ctx.broker.config;
    let response = DescribeClusterResponse::default()
        .with_cluster_id(StrBytes::from_string(ctx.broker.cluster.cluster_id.clone()))
        .with_controller_id(BrokerId(config.node_id))
        .with_endpoint_type(BROKERS_ENDPOINT)
        .with_cluster_authorized_operations(authorized_operations::reported(
            request.include_cluster_authorized_operations,
            authorized_operations::CLUSTER,
        ));
    let broker = DescribeClusterBroker::default()
        .with_broker_id(BrokerId(config.node_id))
        .with_host(StrBytes::from_string(config.advertised_host.clone()))
        .with_port(i32::from(config.advertised_port));
    ctx.respond(&response.with_brokers(vec![broker]))
}
