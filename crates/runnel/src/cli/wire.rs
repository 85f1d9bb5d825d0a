//! Raw Kafka exchanges for what librdkafka does not expose: the APIs a broker advertises
//! (ApiVersions v0), the controller id (Metadata v2) and IncrementalAlterConfigs v0, which
//! rust-rdkafka does not wrap. Plain TCP only; callers handle failures.
//!
//! Bodies are encoded and decoded with the `kafka-protocol` codec. These versions are
//! non-flexible, so the frame is simple: request size i32, api_key i16, api_version i16,
//! correlation_id i32, client_id string, body; response size i32, correlation_id i32, body.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::{bail, ensure, Context};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig, IncrementalAlterConfigsRequest,
};
use kafka_protocol::messages::incremental_alter_configs_response::IncrementalAlterConfigsResponse;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, MetadataRequest, MetadataResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

/// API key of InitProducerId, which idempotent producers need.
pub const INIT_PRODUCER_ID: i16 = ApiKey::InitProducerId as i16;
const METADATA: i16 = ApiKey::Metadata as i16;
const API_VERSIONS: i16 = ApiKey::ApiVersions as i16;
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

/// Sends `request` to the first reachable bootstrap broker and decodes its response.
fn call<Response: Decodable>(
    brokers: &str,
    timeout: Duration,
    api_key: i16,
    api_version: i16,
    request: &impl Encodable,
) -> anyhow::Result<Response> {
    const CORRELATION_ID: i32 = 1;
    const CLIENT_ID: &[u8] = b"runnel-cli";
    let mut frame = BytesMut::new();
    frame.put_i32(0); // the size, filled in below
    frame.put_i16(api_key);
    frame.put_i16(api_version);
    frame.put_i32(CORRELATION_ID);
    frame.put_i16(CLIENT_ID.len() as i16);
    frame.put_slice(CLIENT_ID);
    request.encode(&mut frame, api_version)?;
    let size = i32::try_from(frame.len() - 4).context("request too large")?;
    frame[..4].copy_from_slice(&size.to_be_bytes());

    let mut stream = connect(brokers, timeout)?;
    stream.write_all(&frame)?;
    let mut size = [0u8; 4];
    stream.read_exact(&mut size)?;
    let size = usize::try_from(i32::from_be_bytes(size)).context("negative response size")?;
    ensure!(
        (4..=RESPONSE_SIZE_MAX).contains(&size),
        "bad response size {size}"
    );
    let mut response = vec![0u8; size];
    stream.read_exact(&mut response)?;
    let mut response = Bytes::from(response);
    ensure!(
        response.get_i32() == CORRELATION_ID,
        "response to another request"
    );
    Response::decode(&mut response, api_version)
        .with_context(|| format!("cannot decode the {} response", api_name(api_key)))
}

/// The APIs the first reachable bootstrap broker advertises (ApiVersions v0).
pub fn api_versions(brokers: &str, timeout: Duration) -> anyhow::Result<Vec<ApiRange>> {
    let response: ApiVersionsResponse = call(
        brokers,
        timeout,
        API_VERSIONS,
        0,
        &ApiVersionsRequest::default(),
    )?;
    if response.error_code != 0 {
        bail!("ApiVersions failed with error code {}", response.error_code);
    }
    Ok(response
        .api_keys
        .iter()
        .map(|api| ApiRange {
            key: api.api_key,
            min_version: api.min_version,
            max_version: api.max_version,
        })
        .collect())
}

/// Cluster id and controller id (Metadata v2 asking for no topics).
pub fn cluster_meta(brokers: &str, timeout: Duration) -> anyhow::Result<ClusterMeta> {
    let request = MetadataRequest::default().with_topics(Some(Vec::new()));
    let response: MetadataResponse = call(brokers, timeout, METADATA, 2, &request)?;
    Ok(ClusterMeta {
        cluster_id: response.cluster_id.map(|id| id.to_string()),
        controller_id: response.controller_id.0,
    })
}

/// API key of IncrementalAlterConfigs (KIP-339).
const INCREMENTAL_ALTER_CONFIGS: i16 = ApiKey::IncrementalAlterConfigs as i16;
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
    let response: IncrementalAlterConfigsResponse = call(
        brokers,
        timeout,
        INCREMENTAL_ALTER_CONFIGS,
        VERSION,
        &request,
    )?;
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

/// Kafka's name of an API key: the `kafka-protocol` variant name (the same as Kafka's), or
/// `ApiKey{key}` for a key it does not know.
pub fn api_name(key: i16) -> String {
    match ApiKey::try_from(key) {
        Ok(api) => format!("{api:?}"),
        // Inter-broker APIs of ZooKeeper-mode Kafka, which `kafka-protocol` omits.
        Err(()) => match key {
            4 => "LeaderAndIsr".to_string(),
            5 => "StopReplica".to_string(),
            6 => "UpdateMetadata".to_string(),
            7 => "ControlledShutdown".to_string(),
            _ => format!("ApiKey{key}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::api_name;

    #[test]
    fn api_names_are_kafkas() {
        assert_eq!(api_name(0), "Produce");
        assert_eq!(api_name(5), "StopReplica");
        assert_eq!(api_name(18), "ApiVersions");
        assert_eq!(api_name(22), "InitProducerId");
        assert_eq!(api_name(44), "IncrementalAlterConfigs");
        assert_eq!(api_name(68), "ConsumerGroupHeartbeat");
        assert_eq!(api_name(-1), "ApiKey-1");
        assert_eq!(api_name(1000), "ApiKey1000");
    }
}
