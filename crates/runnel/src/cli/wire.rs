//! Raw Kafka exchanges for what librdkafka does not expose: the APIs a broker advertises
//! (ApiVersions v0), the controller id (Metadata v2) and IncrementalAlterConfigs v0, which
//! rust-rdkafka does not wrap. Plain TCP only; callers handle failures.
//!
//! Request: size i32, api_key i16, api_version i16, correlation_id i32, client_id string,
//! body. Response: size i32, correlation_id i32, body. These versions are non-flexible, so the
//! header needs no tagged fields. The two small bodies are read by hand; the
//! IncrementalAlterConfigs body goes through the `kafka-protocol` codec.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::{bail, ensure, Context};
use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig, IncrementalAlterConfigsRequest,
};
use kafka_protocol::messages::incremental_alter_configs_response::IncrementalAlterConfigsResponse;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

/// API key of InitProducerId, which idempotent producers need.
pub const INIT_PRODUCER_ID: i16 = 22;
/// Largest response accepted (a Metadata v2 of a huge cluster stays far below).
const RESPONSE_SIZE_MAX: usize = 64 << 20;

/// One advertised API with its inclusive version range.
#[derive(Debug, Clone, Copy)]
pub struct ApiRange {
    pub key: i16,
    pub min_version: i16,
    pub max_version: i16,
}

/// What the cluster says about itself in Metadata v2.
#[derive(Debug, Clone)]
pub struct ClusterMeta {
    pub cluster_id: Option<String>,
    pub controller_id: i32,
}

/// Connects to the first reachable address of the comma-separated bootstrap list.
fn connect(brokers: &str, timeout: Duration) -> anyhow::Result<TcpStream> {
    let mut last_error = None;
    for broker in brokers.split(',').map(str::trim).filter(|b| !b.is_empty()) {
        let host_port = broker.rsplit_once("://").map_or(broker, |(_, hp)| hp);
        let addrs = match host_port.to_socket_addrs() {
            Ok(addrs) => addrs,
            Err(e) => {
                last_error = Some(anyhow::Error::from(e).context(host_port.to_string()));
                continue;
            }
        };
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, timeout) {
                Ok(stream) => {
                    stream.set_read_timeout(Some(timeout))?;
                    stream.set_write_timeout(Some(timeout))?;
                    return Ok(stream);
                }
                Err(e) => last_error = Some(anyhow::Error::from(e).context(addr.to_string())),
            }
        }
    }
    Err(last_error.unwrap_or_else(|| anyhow::anyhow!("no broker address given")))
}

/// Sends one request and returns the response body (after the correlation id).
fn exchange(
    stream: &mut TcpStream,
    api_key: i16,
    api_version: i16,
    body: &[u8],
) -> anyhow::Result<Vec<u8>> {
    const CORRELATION_ID: i32 = 1;
    const CLIENT_ID: &[u8] = b"runnel-cli";
    let mut request = Vec::with_capacity(14 + CLIENT_ID.len() + body.len());
    request.extend_from_slice(&api_key.to_be_bytes());
    request.extend_from_slice(&api_version.to_be_bytes());
    request.extend_from_slice(&CORRELATION_ID.to_be_bytes());
    request.extend_from_slice(&(CLIENT_ID.len() as i16).to_be_bytes());
    request.extend_from_slice(CLIENT_ID);
    request.extend_from_slice(body);
    let size = i32::try_from(request.len()).context("request too large")?;
    stream.write_all(&size.to_be_bytes())?;
    stream.write_all(&request)?;
    let mut size = [0u8; 4];
    stream.read_exact(&mut size)?;
    let size = usize::try_from(i32::from_be_bytes(size)).context("negative response size")?;
    ensure!(
        (4..=RESPONSE_SIZE_MAX).contains(&size),
        "bad response size {size}"
    );
    let mut response = vec![0u8; size];
    stream.read_exact(&mut response)?;
    let mut r = Reader(&response);
    ensure!(r.i32()? == CORRELATION_ID, "response to another request");
    Ok(r.0.to_vec())
}

/// The APIs the first reachable bootstrap broker advertises (ApiVersions v0).
pub fn api_versions(brokers: &str, timeout: Duration) -> anyhow::Result<Vec<ApiRange>> {
    let mut stream = connect(brokers, timeout)?;
    let body = exchange(&mut stream, 18, 0, &[])?;
    let mut r = Reader(&body);
    let error_code = r.i16()?;
    if error_code != 0 {
        bail!("ApiVersions failed with error code {error_code}");
    }
    let n = r.array_len()?;
    (0..n)
        .map(|_| {
            Ok(ApiRange {
                key: r.i16()?,
                min_version: r.i16()?,
                max_version: r.i16()?,
            })
        })
        .collect()
}

/// Cluster id and controller id (Metadata v2 asking for no topics).
pub fn cluster_meta(brokers: &str, timeout: Duration) -> anyhow::Result<ClusterMeta> {
    let mut stream = connect(brokers, timeout)?;
    let body = exchange(&mut stream, 3, 2, &0i32.to_be_bytes())?;
    let mut r = Reader(&body);
    for _ in 0..r.array_len()? {
        r.i32()?; // node id
        r.string()?; // host
        r.i32()?; // port
        r.string()?; // rack
    }
    let cluster_id = r.string()?;
    let controller_id = r.i32()?;
    Ok(ClusterMeta {
        cluster_id,
        controller_id,
    })
}

/// API key of IncrementalAlterConfigs (KIP-339).
const INCREMENTAL_ALTER_CONFIGS: i16 = 44;
/// Resource type of a topic in the config APIs.
const RESOURCE_TOPIC: i8 = 2;

/// One change of IncrementalAlterConfigs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigChange {
    Set(String, String),
    Delete(String),
}

/// A broker's refusal: the error and the message it gave, if any.
#[derive(Debug)]
pub struct Refusal {
    pub error: ResponseError,
    pub message: Option<String>,
}

/// Applies `changes` to a topic's configs in one IncrementalAlterConfigs v0 request: the broker
/// changes only the named configs, atomically, where the legacy AlterConfigs replaces the whole
/// set (and would lose a concurrent change to another config).
pub fn alter_topic_configs(
    brokers: &str,
    timeout: Duration,
    topic: &str,
    changes: &[ConfigChange],
) -> anyhow::Result<Result<(), Refusal>> {
    const VERSION: i16 = 0;
    const SET: i8 = 0;
    const DELETE: i8 = 1;
    let configs = changes
        .iter()
        .map(|change| {
            let (name, operation, value) = match change {
                ConfigChange::Set(name, value) => (name, SET, Some(value.as_str())),
                ConfigChange::Delete(name) => (name, DELETE, None),
            };
            AlterableConfig::default()
                .with_name(StrBytes::from_string(name.clone()))
                .with_config_operation(operation)
                .with_value(value.map(|v| StrBytes::from_string(v.to_string())))
        })
        .collect();
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(RESOURCE_TOPIC)
            .with_resource_name(StrBytes::from_string(topic.to_string()))
            .with_configs(configs),
    ]);
    let mut body = BytesMut::new();
    request.encode(&mut body, VERSION)?;
    let mut stream = connect(brokers, timeout)?;
    let response = exchange(&mut stream, INCREMENTAL_ALTER_CONFIGS, VERSION, &body)?;
    let response = IncrementalAlterConfigsResponse::decode(&mut Bytes::from(response), VERSION)?;
    let result = response
        .responses
        .into_iter()
        .find(|r| r.resource_type == RESOURCE_TOPIC && r.resource_name.as_str() == topic)
        .context("the response does not name the topic")?;
    Ok(match ResponseError::try_from_code(result.error_code) {
        None => Ok(()),
        Some(error) => Err(Refusal {
            error,
            message: result.error_message.map(|m| m.to_string()),
        }),
    })
}

/// A bounds-checked big-endian reader.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> anyhow::Result<&[u8]> {
        ensure!(self.0.len() >= n, "truncated response");
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn i16(&mut self) -> anyhow::Result<i16> {
        Ok(i16::from_be_bytes(self.take(2)?.try_into()?))
    }

    fn i32(&mut self) -> anyhow::Result<i32> {
        Ok(i32::from_be_bytes(self.take(4)?.try_into()?))
    }

    fn array_len(&mut self) -> anyhow::Result<usize> {
        let n = self.i32()?;
        // Every element is at least two bytes: a length beyond the rest is malformed.
        let n = usize::try_from(n.max(0))?;
        ensure!(n <= self.0.len() / 2, "bad array length");
        Ok(n)
    }

    fn string(&mut self) -> anyhow::Result<Option<String>> {
        let len = self.i16()?;
        if len < 0 {
            return Ok(None);
        }
        let bytes = self.take(usize::try_from(len)?)?;
        Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
    }
}

/// Kafka's API names, indexed by API key.
const API_NAMES: &[&str] = &[
    "Produce",
    "Fetch",
    "ListOffsets",
    "Metadata",
    "LeaderAndIsr",
    "StopReplica",
    "UpdateMetadata",
    "ControlledShutdown",
    "OffsetCommit",
    "OffsetFetch",
    "FindCoordinator",
    "JoinGroup",
    "Heartbeat",
    "LeaveGroup",
    "SyncGroup",
    "DescribeGroups",
    "ListGroups",
    "SaslHandshake",
    "ApiVersions",
    "CreateTopics",
    "DeleteTopics",
    "DeleteRecords",
    "InitProducerId",
    "OffsetForLeaderEpoch",
    "AddPartitionsToTxn",
    "AddOffsetsToTxn",
    "EndTxn",
    "WriteTxnMarkers",
    "TxnOffsetCommit",
    "DescribeAcls",
    "CreateAcls",
    "DeleteAcls",
    "DescribeConfigs",
    "AlterConfigs",
    "AlterReplicaLogDirs",
    "DescribeLogDirs",
    "SaslAuthenticate",
    "CreatePartitions",
    "CreateDelegationToken",
    "RenewDelegationToken",
    "ExpireDelegationToken",
    "DescribeDelegationToken",
    "DeleteGroups",
    "ElectLeaders",
    "IncrementalAlterConfigs",
    "AlterPartitionReassignments",
    "ListPartitionReassignments",
    "OffsetDelete",
    "DescribeClientQuotas",
    "AlterClientQuotas",
    "DescribeUserScramCredentials",
    "AlterUserScramCredentials",
    "Vote",
    "BeginQuorumEpoch",
    "EndQuorumEpoch",
    "DescribeQuorum",
    "AlterPartition",
    "UpdateFeatures",
    "Envelope",
    "FetchSnapshot",
    "DescribeCluster",
    "DescribeProducers",
    "BrokerRegistration",
    "BrokerHeartbeat",
    "UnregisterBroker",
    "DescribeTransactions",
    "ListTransactions",
    "AllocateProducerIds",
    "ConsumerGroupHeartbeat",
];

/// Kafka's name of an API key.
pub fn api_name(key: i16) -> String {
    usize::try_from(key)
        .ok()
        .and_then(|k| API_NAMES.get(k))
        .map_or_else(|| format!("ApiKey{key}"), |n| n.to_string())
}
