//! One file per Kafka API. Each handler decodes its request body, does the work and encodes the
//! response; `dispatch` routes by API key. A handler returns `Ok(None)` only when the protocol
//! says no response is sent (Produce with acks=0).

mod add_offsets_to_txn;
mod add_partitions_to_txn;
mod alter_configs;
pub mod api_versions;
mod create_partitions;
mod create_topics;
mod delete_groups;
mod delete_records;
mod delete_topics;
mod describe_cluster;
mod describe_configs;
mod describe_groups;
mod describe_log_dirs;
mod describe_producers;
mod describe_transactions;
mod end_txn;
mod fetch;
mod find_coordinator;
mod group;
mod heartbeat;
mod incremental_alter_configs;
mod init_producer_id;
mod join_group;
mod leave_group;
mod list_groups;
mod list_offsets;
mod list_transactions;
mod metadata;
mod offset_commit;
mod offset_delete;
mod offset_fetch;
mod offset_for_leader_epoch;
mod produce;
mod sync_group;
mod txn;
mod txn_offset_commit;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::{Decodable, Encodable};
use runnel_protocol::header::{HeaderError, ParsedRequest};
use runnel_protocol::response::encode_response;

use crate::broker::Broker;

/// Failures after which the connection is closed: the request could not be understood, or the
/// response could not be encoded. Every expected failure is an error code instead.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error(transparent)]
    Header(#[from] HeaderError),
    #[error("malformed {api:?} v{version} request: {reason}")]
    Malformed {
        api: ApiKey,
        version: i16,
        reason: String,
    },
    #[error("cannot encode {api:?} response: {reason}")]
    Encode { api: ApiKey, reason: String },
    /// acks=0 produce failed: Kafka closes the connection so the client notices.
    #[error("acks=0 produce failed with error {0}; closing so the client notices")]
    FireAndForgetFailed(i16),
}

/// What a handler knows about the request it is serving.
pub struct RequestContext<'a> {
    pub broker: &'a Arc<Broker>,
    pub api_key: ApiKey,
    pub header: RequestHeader,
    /// The client's address, as Kafka reports it in group descriptions.
    pub peer: SocketAddr,
}

impl RequestContext<'_> {
    pub fn version(&self) -> i16 {
        self.header.request_api_version
    }

    /// Decodes the request body as `R` at the request's version.
    pub fn decode<R: Decodable>(&self, mut body: Bytes) -> Result<R, HandlerError> {
        R::decode(&mut body, self.version()).map_err(|error| HandlerError::Malformed {
            api: self.api_key,
            version: self.version(),
            reason: error.to_string(),
        })
    }

    /// Frames `body` as this request's response.
    pub fn respond<R: Encodable>(&self, body: &R) -> Result<Option<Bytes>, HandlerError> {
        encode_response(
            self.api_key,
            self.version(),
            self.header.correlation_id,
            body,
        )
        .map(Some)
        .map_err(|error| HandlerError::Encode {
            api: self.api_key,
            reason: error.to_string(),
        })
    }
}

/// Whether the request in `frame` may wait before it is answered (a long-polling fetch), so
/// earlier responses must be written first.
pub fn may_wait(frame: &[u8]) -> bool {
    const WAITING_APIS: [ApiKey; 3] = [ApiKey::Fetch, ApiKey::JoinGroup, ApiKey::SyncGroup];
    frame.len() >= 2 && {
        let key = i16::from_be_bytes([frame[0], frame[1]]);
        WAITING_APIS.iter().any(|api| *api as i16 == key)
    }
}

pub async fn dispatch(
    broker: &Arc<Broker>,
    request: ParsedRequest,
    peer: SocketAddr,
) -> Result<Option<Bytes>, HandlerError> {
    let ctx = RequestContext {
        broker,
        api_key: request.api_key,
        header: request.header,
        peer,
    };
    let body = request.body;
    let started = std::time::Instant::now();
    let result = route(&ctx, body).await;
    broker
        .metrics
        .record_request(api_name(ctx.api_key), started.elapsed());
    result
}

/// The API's name as a metric label.
fn api_name(key: ApiKey) -> &'static str {
    runnel_protocol::versions::api_name(key)
}

async fn route(ctx: &RequestContext<'_>, body: Bytes) -> Result<Option<Bytes>, HandlerError> {
    match ctx.api_key {
        ApiKey::ApiVersions => api_versions::handle(ctx, body),
        ApiKey::Metadata => metadata::handle(ctx, body),
        ApiKey::Produce => produce::handle(ctx, body),
        ApiKey::Fetch => fetch::handle(ctx, body).await,
        ApiKey::ListOffsets => list_offsets::handle(ctx, body),
        ApiKey::CreateTopics => create_topics::handle(ctx, body),
        ApiKey::DeleteTopics => delete_topics::handle(ctx, body),
        ApiKey::FindCoordinator => find_coordinator::handle(ctx, body),
        ApiKey::JoinGroup => join_group::handle(ctx, body).await,
        ApiKey::SyncGroup => sync_group::handle(ctx, body).await,
        ApiKey::Heartbeat => heartbeat::handle(ctx, body).await,
        ApiKey::LeaveGroup => leave_group::handle(ctx, body).await,
        ApiKey::OffsetCommit => offset_commit::handle(ctx, body).await,
        ApiKey::OffsetFetch => offset_fetch::handle(ctx, body).await,
        ApiKey::DescribeGroups => describe_groups::handle(ctx, body).await,
        ApiKey::ListGroups => list_groups::handle(ctx, body).await,
        ApiKey::DeleteGroups => delete_groups::handle(ctx, body).await,
        ApiKey::OffsetDelete => offset_delete::handle(ctx, body).await,
        ApiKey::CreatePartitions => create_partitions::handle(ctx, body),
        ApiKey::DescribeCluster => describe_cluster::handle(ctx, body),
        ApiKey::DescribeLogDirs => describe_log_dirs::handle(ctx, body),
        ApiKey::OffsetForLeaderEpoch => offset_for_leader_epoch::handle(ctx, body),
        ApiKey::DescribeConfigs => describe_configs::handle(ctx, body),
        ApiKey::DeleteRecords => delete_records::handle(ctx, body),
        ApiKey::InitProducerId => init_producer_id::handle(ctx, body).await,
        ApiKey::AddPartitionsToTxn => add_partitions_to_txn::handle(ctx, body).await,
        ApiKey::AddOffsetsToTxn => add_offsets_to_txn::handle(ctx, body).await,
        ApiKey::EndTxn => end_txn::handle(ctx, body).await,
        ApiKey::DescribeTransactions => describe_transactions::handle(ctx, body).await,
        ApiKey::ListTransactions => list_transactions::handle(ctx, body).await,
        ApiKey::DescribeProducers => describe_producers::handle(ctx, body),
        ApiKey::TxnOffsetCommit => txn_offset_commit::handle(ctx, body).await,
        ApiKey::AlterConfigs => alter_configs::handle(ctx, body),
        ApiKey::IncrementalAlterConfigs => incremental_alter_configs::handle(ctx, body),
        other => Err(HandlerError::Header(HeaderError::UnsupportedVersion {
            api_key: other,
            version: ctx.version(),
        })),
    }
}
