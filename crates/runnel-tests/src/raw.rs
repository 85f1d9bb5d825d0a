//! A tiny synchronous raw Kafka protocol client for tests, built on the `kafka-protocol` crate.
//!
//! It speaks the wire protocol directly (length-prefixed frames, request/response headers at the
//! right header version, correlation ids) so that tests can send exactly the bytes they want,
//! including malformed ones, and inspect every field of every response.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, ensure, Context, Result};
use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::messages::api_versions_response::ApiVersionsResponse;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreateTopicsRequest};
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchRequest, FetchTopic};
use kafka_protocol::messages::fetch_response::{FetchResponse, PartitionData};
use kafka_protocol::messages::list_offsets_request::{
    ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic,
};
use kafka_protocol::messages::list_offsets_response::ListOffsetsPartitionResponse;
use kafka_protocol::messages::metadata_request::{MetadataRequest, MetadataRequestTopic};
use kafka_protocol::messages::metadata_response::MetadataResponse;
use kafka_protocol::messages::produce_request::{
    PartitionProduceData, ProduceRequest, TopicProduceData,
};
use kafka_protocol::messages::produce_response::PartitionProduceResponse;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, RequestHeader, ResponseHeader, ResponseKind, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, RecordSet,
    TimestampType,
};

/// Default read timeout of a [`RawClient`]: no test may hang forever on a silent broker.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(15);

/// Versions the helpers use unless a test picks one (all inside the contract's ranges).
pub const PRODUCE_VERSION: i16 = 9;
pub const FETCH_VERSION: i16 = 12;
pub const LIST_OFFSETS_VERSION: i16 = 7;
pub const METADATA_VERSION: i16 = 12;
pub const CREATE_TOPICS_VERSION: i16 = 7;
pub const API_VERSIONS_VERSION: i16 = 3;

/// Kafka error codes used by the tests.
pub mod error_code {
    pub const NONE: i16 = 0;
    pub const OFFSET_OUT_OF_RANGE: i16 = 1;
    pub const CORRUPT_MESSAGE: i16 = 2;
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub const MESSAGE_TOO_LARGE: i16 = 10;
    pub const INVALID_TOPIC_EXCEPTION: i16 = 17;
    pub const INVALID_REQUIRED_ACKS: i16 = 21;
    pub const UNSUPPORTED_VERSION: i16 = 35;
    pub const TOPIC_ALREADY_EXISTS: i16 = 36;
    pub const INVALID_REPLICATION_FACTOR: i16 = 38;
    pub const INVALID_CONFIG: i16 = 40;
    pub const FETCH_SESSION_ID_NOT_FOUND: i16 = 70;
    pub const INVALID_FETCH_SESSION_EPOCH: i16 = 71;
    pub const INVALID_RECORD: i16 = 87;
    pub const UNKNOWN_TOPIC_ID: i16 = 100;
}

/// A blocking connection to a broker that sends and receives raw Kafka frames.
pub struct RawClient {
    stream: TcpStream,
    next_correlation_id: i32,
    client_id: Option<StrBytes>,
}

impl RawClient {
    /// Connects with [`DEFAULT_READ_TIMEOUT`] as read and write timeout.
    pub fn connect(addr: SocketAddr) -> Result<RawClient> {
        Self::connect_with_timeout(addr, DEFAULT_READ_TIMEOUT)
    }

    /// Connects (within 5 s) and uses `timeout` as read and write timeout.
    pub fn connect_with_timeout(addr: SocketAddr, timeout: Duration) -> Result<RawClient> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .with_context(|| format!("connect to {addr}"))?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.set_nodelay(true)?;
        Ok(RawClient {
            stream,
            next_correlation_id: 1,
            client_id: Some(StrBytes::from_static_str("runnel-raw-test")),
        })
    }

    /// Changes the read timeout (e.g. for long-poll fetches).
    pub fn set_read_timeout(&self, timeout: Duration) -> Result<()> {
        self.stream.set_read_timeout(Some(timeout))?;
        Ok(())
    }

    /// The underlying socket.
    pub fn stream(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// Writes `bytes` as they are, without a length prefix.
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<()> {
        self.stream.write_all(bytes).context("write raw bytes")?;
        self.stream.flush()?;
        Ok(())
    }

    /// Writes one frame: a big-endian i32 length followed by `payload`.
    pub fn send_frame(&mut self, payload: &[u8]) -> Result<()> {
        let mut buf = Vec::with_capacity(payload.len() + 4);
        buf.extend_from_slice(&(payload.len() as i32).to_be_bytes());
        buf.extend_from_slice(payload);
        self.send_raw(&buf)
    }

    /// Closes the write half (the broker sees end of stream).
    pub fn shutdown_write(&mut self) -> Result<()> {
        self.stream.shutdown(Shutdown::Write)?;
        Ok(())
    }

    /// Allocates the next correlation id.
    pub fn next_correlation_id(&mut self) -> i32 {
        let id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        id
    }

    /// Encodes header + body of a request (without the length prefix).
    pub fn encode_request<Req: Request>(
        &mut self,
        version: i16,
        req: &Req,
        correlation_id: i32,
    ) -> Result<BytesMut> {
        let header = RequestHeader::default()
            .with_request_api_key(Req::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(self.client_id.clone());
        let mut buf = BytesMut::new();
        header.encode(&mut buf, Req::header_version(version))?;
        req.encode(&mut buf, version)
            .with_context(|| format!("encode api key {} v{version}", Req::KEY))?;
        Ok(buf)
    }

    /// Encodes a request header for any api key and version followed by `body` as-is.
    pub fn encode_raw_request(
        &mut self,
        api_key: i16,
        version: i16,
        body: &[u8],
        correlation_id: i32,
    ) -> Result<BytesMut> {
        let header_version = match ApiKey::try_from(api_key) {
            Ok(key) => key.request_header_version(version),
            Err(()) => 1,
        };
        let header = RequestHeader::default()
            .with_request_api_key(api_key)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(self.client_id.clone());
        let mut buf = BytesMut::new();
        header.encode(&mut buf, header_version)?;
        buf.extend_from_slice(body);
        Ok(buf)
    }

    /// Sends a request without waiting for its response; returns its correlation id.
    pub fn send_request<Req: Request>(&mut self, version: i16, req: &Req) -> Result<i32> {
        let correlation_id = self.next_correlation_id();
        let buf = self.encode_request(version, req, correlation_id)?;
        self.send_frame(&buf)?;
        Ok(correlation_id)
    }

    /// Reads one frame and returns its payload (without the length prefix).
    pub fn read_frame(&mut self) -> Result<Bytes> {
        let mut size = [0u8; 4];
        self.stream
            .read_exact(&mut size)
            .context("read response size")?;
        let size = i32::from_be_bytes(size);
        ensure!(
            (0..=512 * 1024 * 1024).contains(&size),
            "bad response frame size {size}"
        );
        let mut payload = vec![0u8; size as usize];
        self.stream
            .read_exact(&mut payload)
            .context("read response payload")?;
        Ok(Bytes::from(payload))
    }

    /// Reads the response to the request with `correlation_id`, sent at `version`.
    pub fn receive_response<Req: Request>(
        &mut self,
        version: i16,
        correlation_id: i32,
    ) -> Result<Req::Response> {
        let mut frame = self.read_frame()?;
        let header = ResponseHeader::decode(
            &mut frame,
            <Req::Response as HeaderVersion>::header_version(version),
        )?;
        ensure!(
            header.correlation_id == correlation_id,
            "correlation id mismatch: expected {correlation_id}, got {}",
            header.correlation_id
        );
        let response = Req::Response::decode(&mut frame, version)
            .with_context(|| format!("decode response to api key {} v{version}", Req::KEY))?;
        ensure!(
            !frame.has_remaining(),
            "{} trailing bytes after response to api key {} v{version}",
            frame.remaining(),
            Req::KEY
        );
        Ok(response)
    }

    /// Sends a request and waits for its response.
    pub fn request<Req: Request>(&mut self, version: i16, req: &Req) -> Result<Req::Response> {
        let correlation_id = self.send_request(version, req)?;
        self.receive_response::<Req>(version, correlation_id)
    }

    /// Sends header + raw body for any api key/version and decodes the response as `api_key`
    /// at `response_version` (used for the KIP-511 ApiVersions fallback and generic probing).
    pub fn request_any(
        &mut self,
        api_key: ApiKey,
        version: i16,
        body: &[u8],
        response_version: i16,
    ) -> Result<ResponseKind> {
        let correlation_id = self.next_correlation_id();
        let buf = self.encode_raw_request(api_key as i16, version, body, correlation_id)?;
        self.send_frame(&buf)?;
        let mut frame = self.read_frame()?;
        let header = ResponseHeader::decode(
            &mut frame,
            api_key.response_header_version(response_version),
        )?;
        ensure!(
            header.correlation_id == correlation_id,
            "correlation id mismatch: expected {correlation_id}, got {}",
            header.correlation_id
        );
        let response = ResponseKind::decode(api_key, &mut frame, response_version)?;
        ensure!(
            !frame.has_remaining(),
            "{} trailing bytes after {api_key:?} v{response_version} response",
            frame.remaining()
        );
        Ok(response)
    }

    /// True when the peer closes the connection (read returns 0 or the connection is reset)
    /// within `timeout`. Any bytes the broker sends before closing are discarded.
    pub fn is_closed_by_peer(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 8192];
        loop {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            let left = (deadline - now).max(Duration::from_millis(1));
            if self.stream.set_read_timeout(Some(left)).is_err() {
                return true;
            }
            match self.stream.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e) => match e.kind() {
                    ErrorKind::WouldBlock | ErrorKind::TimedOut => return false,
                    ErrorKind::Interrupted => continue,
                    _ => return true,
                },
            }
        }
    }

    // ---------------------------------------------------------------------------------------
    // Convenience wrappers used by many tests.

    /// ApiVersions at [`API_VERSIONS_VERSION`].
    pub fn api_versions(&mut self) -> Result<ApiVersionsResponse> {
        let req = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("runnel-raw-test"))
            .with_client_software_version(StrBytes::from_static_str("0.1"));
        self.request(API_VERSIONS_VERSION, &req)
    }

    /// Produces `records` (one v2 batch or anything else) to one partition; returns the
    /// partition's response. With acks=0 no response is read and a default one is returned.
    pub fn produce(
        &mut self,
        topic: &str,
        partition: i32,
        records: Bytes,
        acks: i16,
    ) -> Result<PartitionProduceResponse> {
        self.produce_at(PRODUCE_VERSION, topic, partition, records, acks)
    }

    /// Like [`RawClient::produce`] at a given version.
    pub fn produce_at(
        &mut self,
        version: i16,
        topic: &str,
        partition: i32,
        records: Bytes,
        acks: i16,
    ) -> Result<PartitionProduceResponse> {
        let req = produce_request(topic, partition, records, acks);
        if acks == 0 {
            self.send_request(version, &req)?;
            return Ok(PartitionProduceResponse::default());
        }
        let resp = self.request(version, &req)?;
        let topic_resp = resp
            .responses
            .into_iter()
            .find(|t| t.name.0.as_str() == topic)
            .context("produce response lacks the topic")?;
        topic_resp
            .partition_responses
            .into_iter()
            .find(|p| p.index == partition)
            .context("produce response lacks the partition")
    }

    /// Fetches one partition from `offset` (max_wait 0, min_bytes 0 unless given).
    pub fn fetch(&mut self, topic: &str, partition: i32, offset: i64) -> Result<PartitionData> {
        let req = FetchRequest::default()
            .with_max_wait_ms(0)
            .with_min_bytes(0)
            .with_max_bytes(16 * 1024 * 1024)
            .with_topics(vec![fetch_topic(
                topic,
                &[(partition, offset, 1024 * 1024)],
            )]);
        let resp = self.request(FETCH_VERSION, &req)?;
        ensure!(
            resp.error_code == 0,
            "fetch top-level error {}",
            resp.error_code
        );
        single_partition(resp, topic, partition)
    }

    /// ListOffsets for one partition at `timestamp` (-2 earliest, -1 latest, -3 max timestamp).
    pub fn list_offset(
        &mut self,
        topic: &str,
        partition: i32,
        timestamp: i64,
    ) -> Result<ListOffsetsPartitionResponse> {
        self.list_offset_at(LIST_OFFSETS_VERSION, topic, partition, timestamp)
    }

    /// Like [`RawClient::list_offset`] at a given version.
    pub fn list_offset_at(
        &mut self,
        version: i16,
        topic: &str,
        partition: i32,
        timestamp: i64,
    ) -> Result<ListOffsetsPartitionResponse> {
        let req = ListOffsetsRequest::default()
            .with_replica_id((-1).into())
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(topic_name(topic))
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(partition)
                    .with_timestamp(timestamp)])]);
        let resp = self.request(version, &req)?;
        let t = resp
            .topics
            .into_iter()
            .find(|t| t.name.0.as_str() == topic)
            .context("list offsets response lacks the topic")?;
        t.partitions
            .into_iter()
            .find(|p| p.partition_index == partition)
            .context("list offsets response lacks the partition")
    }

    /// Latest offset (log end offset / high watermark) of a partition; panics on errors.
    pub fn log_end_offset(&mut self, topic: &str, partition: i32) -> Result<i64> {
        let p = self.list_offset(topic, partition, -1)?;
        ensure!(p.error_code == 0, "list offsets error {}", p.error_code);
        Ok(p.offset)
    }

    /// Metadata for the given topics (None = all topics). Before v4 the request has no
    /// auto-create flag (it is implicitly true), so `allow_auto_topic_creation` is ignored.
    pub fn metadata(
        &mut self,
        version: i16,
        topics: Option<&[&str]>,
        allow_auto_topic_creation: bool,
    ) -> Result<MetadataResponse> {
        let req = MetadataRequest::default()
            .with_topics(topics.map(|ts| {
                ts.iter()
                    .map(|t| MetadataRequestTopic::default().with_name(Some(topic_name(t))))
                    .collect()
            }))
            .with_allow_auto_topic_creation(allow_auto_topic_creation || version < 4);
        self.request(version, &req)
    }

    /// Creates one topic; returns its result.
    pub fn create_topic(
        &mut self,
        topic: &str,
        num_partitions: i32,
        configs: &[(&str, &str)],
    ) -> Result<CreatableTopicResult> {
        use kafka_protocol::messages::create_topics_request::CreatableTopicConfig;
        let req = CreateTopicsRequest::default()
            .with_timeout_ms(10_000)
            .with_topics(vec![CreatableTopic::default()
                .with_name(topic_name(topic))
                .with_num_partitions(num_partitions)
                .with_replication_factor(1)
                .with_configs(
                    configs
                        .iter()
                        .map(|(k, v)| {
                            CreatableTopicConfig::default()
                                .with_name(StrBytes::from_string(k.to_string()))
                                .with_value(Some(StrBytes::from_string(v.to_string())))
                        })
                        .collect(),
                )]);
        let resp = self.request(CREATE_TOPICS_VERSION, &req)?;
        resp.topics
            .into_iter()
            .next()
            .context("create topics response without topics")
    }

    /// Creates a topic and asserts success.
    pub fn create_topic_ok(&mut self, topic: &str, num_partitions: i32) -> Result<()> {
        let r = self.create_topic(topic, num_partitions, &[])?;
        ensure!(
            r.error_code == 0,
            "create topic {topic}: error {} {:?}",
            r.error_code,
            r.error_message
        );
        Ok(())
    }
}

// -------------------------------------------------------------------------------------------
// Request builders.

/// A `TopicName` from a `&str`.
pub fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

/// A produce request with one topic and one partition.
pub fn produce_request(topic: &str, partition: i32, records: Bytes, acks: i16) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic_name(topic))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(records))])])
}

/// A fetch topic with `(partition, fetch_offset, partition_max_bytes)` entries.
pub fn fetch_topic(topic: &str, partitions: &[(i32, i64, i32)]) -> FetchTopic {
    FetchTopic::default()
        .with_topic(topic_name(topic))
        .with_partitions(
            partitions
                .iter()
                .map(|&(partition, offset, max)| {
                    FetchPartition::default()
                        .with_partition(partition)
                        .with_fetch_offset(offset)
                        .with_partition_max_bytes(max)
                })
                .collect(),
        )
}

/// Extracts one partition from a fetch response.
pub fn single_partition(resp: FetchResponse, topic: &str, partition: i32) -> Result<PartitionData> {
    find_partition(&resp, topic, partition)
        .cloned()
        .with_context(|| format!("fetch response lacks {topic}-{partition}: {resp:?}"))
}

/// Finds a partition in a fetch response.
pub fn find_partition<'a>(
    resp: &'a FetchResponse,
    topic: &str,
    partition: i32,
) -> Option<&'a PartitionData> {
    resp.responses
        .iter()
        .filter(|t| t.topic.0.as_str() == topic)
        .flat_map(|t| t.partitions.iter())
        .find(|p| p.partition_index == partition)
}

// -------------------------------------------------------------------------------------------
// Record batches.

/// One record to put in a test batch.
#[derive(Clone, Debug)]
pub struct TestRecord {
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub timestamp: i64,
}

impl TestRecord {
    pub fn new(key: Option<&str>, value: &str, timestamp: i64) -> TestRecord {
        TestRecord {
            key: key.map(|k| Bytes::copy_from_slice(k.as_bytes())),
            value: Some(Bytes::copy_from_slice(value.as_bytes())),
            timestamp,
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Encodes `records` as exactly one v2 record batch (base offset 0, no producer id).
pub fn encode_batch(records: &[TestRecord], compression: Compression) -> Bytes {
    assert!(!records.is_empty(), "a batch needs at least one record");
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, r)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // offset - sequence must be constant for the encoder to keep one batch; the first
            // record gets sequence -1, so the batch's base sequence is -1 (no idempotence).
            sequence: i as i32 - 1,
            timestamp: r.timestamp,
            key: r.key.clone(),
            value: r.value.clone(),
            headers: IndexMap::new(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        records.iter(),
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .expect("encode record batch");
    let batch = buf.freeze();
    debug_assert_eq!(batch_headers(&batch).len(), 1);
    batch
}

/// A batch of `n` uncompressed records with values `"{prefix}-{i}"`, timestamps now.
pub fn simple_batch(prefix: &str, n: usize) -> Bytes {
    let ts = now_ms();
    let records: Vec<TestRecord> = (0..n)
        .map(|i| TestRecord::new(None, &format!("{prefix}-{i}"), ts))
        .collect();
    encode_batch(&records, Compression::None)
}

/// A batch of `n` records whose values are `size` bytes each.
pub fn sized_batch(n: usize, size: usize) -> Bytes {
    let ts = now_ms();
    let value = "x".repeat(size);
    let records: Vec<TestRecord> = (0..n).map(|_| TestRecord::new(None, &value, ts)).collect();
    encode_batch(&records, Compression::None)
}

/// Byte offsets inside a v2 batch.
pub mod batch_layout {
    pub const BASE_OFFSET: usize = 0;
    pub const BATCH_LENGTH: usize = 8;
    pub const PARTITION_LEADER_EPOCH: usize = 12;
    pub const MAGIC: usize = 16;
    pub const CRC: usize = 17;
    pub const ATTRIBUTES: usize = 21;
    pub const LAST_OFFSET_DELTA: usize = 23;
    pub const RECORD_COUNT: usize = 57;
    pub const HEADER_SIZE: usize = 61;
}

/// Flips a bit in the last byte of the batch (inside the CRC-covered records), so the CRC no
/// longer matches.
pub fn corrupt_crc(batch: &Bytes) -> Bytes {
    let mut v = batch.to_vec();
    let last = v.len() - 1;
    v[last] ^= 0x01;
    Bytes::from(v)
}

/// Sets the magic byte (without fixing the CRC, which does not cover it).
pub fn with_magic(batch: &Bytes, magic: i8) -> Bytes {
    let mut v = batch.to_vec();
    v[batch_layout::MAGIC] = magic as u8;
    Bytes::from(v)
}

/// Keeps only the first `len` bytes (the batchLength field still claims the full size).
pub fn truncate(batch: &Bytes, len: usize) -> Bytes {
    batch.slice(..len.min(batch.len()))
}

/// The header fields of one v2 batch as found in a records blob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub magic: i8,
    pub last_offset_delta: i32,
    pub record_count: i32,
    /// Total size including the 12-byte offset+length prefix.
    pub size: usize,
}

impl BatchHeader {
    pub fn last_offset(&self) -> i64 {
        self.base_offset + self.last_offset_delta as i64
    }
}

/// Headers of every complete batch in a records blob (a partial trailing batch, which Kafka
/// allows in fetch responses, is ignored).
pub fn batch_headers(records: &[u8]) -> Vec<BatchHeader> {
    let mut out = Vec::new();
    let mut pos = 0;
    while records.len() - pos >= batch_layout::HEADER_SIZE {
        let b = &records[pos..];
        let base_offset = i64::from_be_bytes(b[0..8].try_into().unwrap());
        let batch_length = i32::from_be_bytes(b[8..12].try_into().unwrap());
        let size = 12 + batch_length.max(0) as usize;
        if batch_length < 0 || b.len() < size {
            break;
        }
        let at = |o: usize| i32::from_be_bytes(b[o..o + 4].try_into().unwrap());
        out.push(BatchHeader {
            base_offset,
            batch_length,
            magic: b[batch_layout::MAGIC] as i8,
            last_offset_delta: at(batch_layout::LAST_OFFSET_DELTA),
            record_count: at(batch_layout::RECORD_COUNT),
            size,
        });
        pos += size;
    }
    out
}

/// Decodes every complete batch of a records blob (ignoring a partial trailing batch).
pub fn decode_records(records: &Bytes) -> Result<Vec<RecordSet>> {
    let complete: usize = batch_headers(records).iter().map(|h| h.size).sum();
    let mut buf = records.slice(..complete);
    let mut out = Vec::new();
    while buf.has_remaining() {
        out.push(RecordBatchDecoder::decode(&mut buf)?);
    }
    Ok(out)
}

/// All record values (as strings) in a records blob, with their offsets.
pub fn record_values(records: &Option<Bytes>) -> Result<Vec<(i64, String)>> {
    let Some(records) = records else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for set in decode_records(records)? {
        for r in set.records {
            let v = r
                .value
                .map(|v| String::from_utf8_lossy(&v).into_owned())
                .unwrap_or_default();
            out.push((r.offset, v));
        }
    }
    Ok(out)
}

/// Length of a records blob (0 for null).
pub fn records_len(records: &Option<Bytes>) -> usize {
    records.as_ref().map_or(0, |r| r.len())
}

// -------------------------------------------------------------------------------------------
// Misc.

/// A small deterministic PRNG (xorshift64*) for seeded garbage.
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> XorShift {
        XorShift(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

/// Polls `f` until it returns `Some` or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            bail!("condition not met within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

// -------------------------------------------------------------------------------------------
// Broker health checks shared by the bad-input tests.

/// Data written before a test's bad input, to check afterwards that it is intact.
#[derive(Clone, Debug)]
pub struct SeededData {
    pub topic: String,
    pub values: Vec<String>,
}

impl SeededData {
    /// The same data followed by `more` records the test appended itself.
    pub fn followed_by(&self, more: impl IntoIterator<Item = String>) -> SeededData {
        SeededData {
            topic: self.topic.clone(),
            values: self.values.iter().cloned().chain(more).collect(),
        }
    }
}

/// Creates `topic` (1 partition) and produces `n` records to it; returns what was written.
pub fn seed_data(addr: SocketAddr, topic: &str, n: usize) -> Result<SeededData> {
    let mut c = RawClient::connect(addr)?;
    c.create_topic_ok(topic, 1)?;
    let p = c.produce(topic, 0, simple_batch(topic, n), 1)?;
    ensure!(p.error_code == 0, "seed produce error {}", p.error_code);
    ensure!(p.base_offset == 0, "seed base offset {}", p.base_offset);
    Ok(SeededData {
        topic: topic.to_string(),
        values: (0..n).map(|i| format!("{topic}-{i}")).collect(),
    })
}

/// Fetches every record of partition 0 of `topic` from offset 0 (up to 16 MiB).
pub fn fetch_all_values(c: &mut RawClient, topic: &str) -> Result<Vec<String>> {
    let p = c.fetch(topic, 0, 0)?;
    ensure!(p.error_code == 0, "fetch {topic}: error {}", p.error_code);
    Ok(record_values(&p.records)?
        .into_iter()
        .map(|(_, v)| v)
        .collect())
}

/// Checks, on a fresh connection, that the broker still serves a well-behaved client
/// (ApiVersions, CreateTopics, Produce, Fetch) and that `seeded` data is intact.
pub fn assert_broker_healthy(addr: SocketAddr, seeded: &SeededData) {
    let check = || -> Result<()> {
        let mut c = RawClient::connect(addr)?;
        let av = c.api_versions()?;
        ensure!(av.error_code == 0, "ApiVersions error {}", av.error_code);
        ensure!(!av.api_keys.is_empty(), "ApiVersions returned no api keys");
        let topic = format!(
            "healthy-{}",
            c.next_correlation_id() as u32 ^ (now_ms() as u32)
        );
        c.create_topic_ok(&topic, 1)?;
        let p = c.produce(&topic, 0, simple_batch(&topic, 1), 1)?;
        ensure!(p.error_code == 0, "health produce error {}", p.error_code);
        let values = fetch_all_values(&mut c, &topic)?;
        ensure!(
            values == vec![format!("{topic}-0")],
            "health fetch returned {values:?}"
        );
        let values = fetch_all_values(&mut c, &seeded.topic)?;
        ensure!(
            values == seeded.values,
            "data written before the bad input changed: {values:?} != {:?}",
            seeded.values
        );
        Ok(())
    };
    if let Err(e) = check() {
        panic!("broker no longer healthy: {e:#}");
    }
}
