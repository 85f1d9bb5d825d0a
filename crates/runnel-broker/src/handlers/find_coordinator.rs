//! FindCoordinator: on one node every group is coordinated here. v0-3 ask for one key, v4+
//! for a batch. Transaction coordinators (key type 1) arrive with exactly-once support.

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

use super::{HandlerError, RequestContext};

const GROUP_KEY_TYPE: i8 = 0;
/// The first version that takes a batch of keys.
const BATCHED_VERSION: i16 = 4;

pub fn handle(ctx: &RequestContext, body: Bytes) -> Result<Option<Bytes>, HandlerError> {
    let request: FindCoordinatorRequest = ctx.decode(body)?;
    if ctx.version() < BATCHED_VERSION {
        let found = find(ctx, &request.key, request.key_type);
        let response = FindCoordinatorResponse::default()
            .with_error_code(found.error_code)
            .with_error_message(found.error_message)
            .with_node_id(found.node_id)
            .with_host(found.host)
            .with_port(found.port);
        return ctx.respond(&response);
    }
    let coordinators = request
        .coordinator_keys
        .iter()
        .map(|key| find(ctx, key, request.key_type))
        .collect();
    ctx.respond(&FindCoordinatorResponse::default().with_coordinators(coordinators))
}

const TRANSACTION_KEY_TYPE: i8 = 1;

fn find(ctx: &RequestContext, key: &StrBytes, key_type: i8) -> Coordinator {
    let coordinator = Coordinator::default().with_key(key.clone());
    // Kafka creates the internal topic when a coordinator is first looked up.
    let topic = match key_type {
        GROUP_KEY_TYPE => ctx.broker.offsets_topic(),
        TRANSACTION_KEY_TYPE => ctx.broker.txn_state_topic(),
        other => {
            let message = format!("unknown coordinator key type {other}");
            return coordinator
                .with_node_id(BrokerId(-1))
                .with_port(-1)
                .with_error_code(ResponseError::InvalidRequest.code())
                .with_error_message(Some(StrBytes::from_string(message)));
        }
    };
    if topic.is_none() {
        return coordinator
            .with_node_id(BrokerId(-1))
            .with_port(-1)
            .with_error_code(ResponseError::CoordinatorNotAvailable.code());
    }
    let config = &ctx.broker.config;
    coordinator
        .with_node_id(BrokerId(config.node_id))
        .with_host(StrBytes::from_string(config.advertised_host.clone()))
        .with_port(i32::from(config.advertised_port))
}
