//! Version parity with Apache Kafka: every API and version Runnel advertises in ApiVersions is
//! answered (with the right response header), and the semantics a version adds in Kafka are
//! implemented, not only decoded. Each test pins one answer Kafka gives at that version.

use bytes::BytesMut;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};
use runnel_tests::clients::unique_topic;
use runnel_tests::raw::{simple_batch, single_partition, topic_name, RawClient};
use runnel_tests::TestBroker;

const OFFSET_OUT_OF_RANGE: i16 = 1;
const MISMATCHED_ENDPOINT_TYPE: i16 = 114;
const UNSUPPORTED_ENDPOINT_TYPE: i16 = 115;

/// A request of `key` with every field at its default, encoded at `version`. Produce asks for
/// acks=1 (acks=0, the default, has no response).
fn default_body(key: ApiKey, version: i16) -> Vec<u8> {
    fn enc<R: Encodable>(request: R, version: i16) -> Vec<u8> {
        let mut buf = BytesMut::new();
        request
            .encode(&mut buf, version)
            .unwrap_or_else(|e| panic!("encode default request v{version}: {e}"));
        buf.to_vec()
    }
    match key {
        ApiKey::Produce => enc(ProduceRequest::default().with_acks(1), version),
        ApiKey::Fetch => enc(FetchRequest::default(), version),
        ApiKey::ListOffsets => enc(ListOffsetsRequest::default(), version),
        ApiKey::Metadata => enc(MetadataRequest::default(), version),
        ApiKey::OffsetCommit => enc(OffsetCommitRequest::default(), version),
        ApiKey::OffsetFetch => enc(OffsetFetchRequest::default(), version),
        ApiKey::FindCoordinator => enc(FindCoordinatorRequest::default(), version),
        ApiKey::JoinGroup => enc(JoinGroupRequest::default(), version),
        ApiKey::Heartbeat => enc(HeartbeatRequest::default(), version),
        ApiKey::LeaveGroup => enc(LeaveGroupRequest::default(), version),
        ApiKey::SyncGroup => enc(SyncGroupRequest::default(), version),
        ApiKey::DescribeGroups => enc(DescribeGroupsRequest::default(), version),
        ApiKey::ListGroups => enc(ListGroupsRequest::default(), version),
        ApiKey::ApiVersions => enc(ApiVersionsRequest::default(), version),
        ApiKey::CreateTopics => enc(CreateTopicsRequest::default(), version),
        ApiKey::DeleteTopics => enc(DeleteTopicsRequest::default(), version),
        ApiKey::DeleteRecords => enc(DeleteRecordsRequest::default(), version),
        ApiKey::InitProducerId => enc(InitProducerIdRequest::default(), version),
        ApiKey::OffsetForLeaderEpoch => enc(OffsetForLeaderEpochRequest::default(), version),
        ApiKey::AddPartitionsToTxn => enc(AddPartitionsToTxnRequest::default(), version),
        ApiKey::AddOffsetsToTxn => enc(AddOffsetsToTxnRequest::default(), version),
        ApiKey::EndTxn => enc(EndTxnRequest::default(), version),
        ApiKey::TxnOffsetCommit => enc(TxnOffsetCommitRequest::default(), version),
        ApiKey::DescribeConfigs => enc(DescribeConfigsRequest::default(), version),
        ApiKey::AlterConfigs => enc(AlterConfigsRequest::default(), version),
        ApiKey::DescribeLogDirs => enc(DescribeLogDirsRequest::default(), version),
        ApiKey::CreatePartitions => enc(CreatePartitionsRequest::default(), version),
        ApiKey::DeleteGroups => enc(DeleteGroupsRequest::default(), version),
        ApiKey::IncrementalAlterConfigs => enc(IncrementalAlterConfigsRequest::default(), version),
        ApiKey::OffsetDelete => enc(OffsetDeleteRequest::default(), version),
        ApiKey::DescribeCluster => enc(DescribeClusterRequest::default(), version),
        ApiKey::DescribeProducers => enc(DescribeProducersRequest::default(), version),
        ApiKey::DescribeTransactions => enc(DescribeTransactionsRequest::default(), version),
        ApiKey::ListTransactions => enc(ListTransactionsRequest::default(), version),
        other => panic!("no default request for advertised API {other:?}; add one"),
    }
}

/// Every (API, version) in the broker's own ApiVersions answer gets a response on the same
/// connection, framed with the response header version Kafka uses for it (v1 with tagged
/// fields for flexible versions, v0 otherwise and always for ApiVersions) and decodable at
/// that version with no trailing bytes. An advertised key without a handler, or a version the
/// handler cannot answer, closes the connection instead.
#[test]
fn every_advertised_version_of_every_api_is_answered() {
    let broker = TestBroker::start(&[]);
    let mut client = RawClient::connect(broker.addr()).unwrap();
    let advertised = client.api_versions().unwrap();
    assert_eq!(advertised.error_code, 0);
    for api in &advertised.api_keys {
        assert!(
            ![
                ApiKey::SaslHandshake as i16,
                ApiKey::SaslAuthenticate as i16
            ]
            .contains(&api.api_key),
            "SASL advertised without SASL support: {api:?}"
        );
        let key = ApiKey::try_from(api.api_key).expect("advertised key known to the codec");
        for version in api.min_version..=api.max_version {
            let body = default_body(key, version);
            let mut fresh = RawClient::connect(broker.addr()).unwrap();
            let answered = fresh.request_any(key, version, &body, version);
            assert!(
                answered.is_ok(),
                "{key:?} v{version} advertised but not answered: {:?}",
                answered.err()
            );
        }
    }
}

fn fetch_v12(
    client: &mut RawClient,
    topic: &str,
    fetch_offset: i64,
    last_fetched_epoch: i32,
) -> fetch_response::PartitionData {
    let request = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_min_bytes(0)
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(topic_name(topic))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(fetch_offset)
                .with_last_fetched_epoch(last_fetched_epoch)
                .with_partition_max_bytes(1 << 20)])]);
    let response = client.request(12, &request).expect("Fetch v12");
    assert_eq!(response.error_code, 0);
    single_partition(response, topic, 0).unwrap()
}

/// KIP-320 / KIP-595, Fetch v12: a fetch naming the epoch of the last record it fetched is
/// checked against the leader's epoch cache (Kafka's `Partition.readRecords`). When the
/// leader's end offset of that epoch is below the fetch offset, the response carries no
/// records and no error, but a diverging epoch {epoch, end offset} telling the fetcher where to
/// truncate to. Runnel ignored `last_fetched_epoch` and answered OFFSET_OUT_OF_RANGE.
#[test]
fn fetch_v12_past_the_end_of_the_last_fetched_epoch_gets_a_diverging_epoch() {
    let broker = TestBroker::start(&[]);
    let mut client = RawClient::connect(broker.addr()).unwrap();
    let topic = unique_topic("diverging");
    client.create_topic_ok(&topic, 1).unwrap();
    let produced = client.produce(&topic, 0, simple_batch("v", 3), 1).unwrap();
    assert_eq!(produced.error_code, 0);

    let diverged = fetch_v12(&mut client, &topic, 10, 0);
    assert_eq!(diverged.error_code, 0, "{diverged:?}");
    assert_eq!(diverged.diverging_epoch.epoch, 0, "{diverged:?}");
    assert_eq!(diverged.diverging_epoch.end_offset, 3, "{diverged:?}");
    assert_eq!(diverged.high_watermark, 3);
    assert!(runnel_tests::raw::records_len(&diverged.records) == 0);

    // Within the epoch: an ordinary read, with no diverging epoch (-1/-1).
    let read = fetch_v12(&mut client, &topic, 1, 0);
    assert_eq!(read.error_code, 0);
    assert_eq!(read.diverging_epoch.epoch, -1);
    assert_eq!(read.diverging_epoch.end_offset, -1);
    assert!(runnel_tests::raw::records_len(&read.records) > 0);
    // And at the end of the epoch: nothing to read yet, nothing diverged.
    let at_end = fetch_v12(&mut client, &topic, 3, 0);
    assert_eq!(at_end.error_code, 0);
    assert_eq!(at_end.diverging_epoch.epoch, -1);
}

/// Fetch v12: a last fetched epoch the leader has no end offset for (newer than any epoch it
/// has led) is OFFSET_OUT_OF_RANGE in Kafka ("Could not determine the end offset of the last
/// fetched epoch"), not a read. Runnel returned the records.
#[test]
fn fetch_v12_unknown_last_fetched_epoch_is_offset_out_of_range() {
    let broker = TestBroker::start(&[]);
    let mut client = RawClient::connect(broker.addr()).unwrap();
    let topic = unique_topic("unknown-epoch");
    client.create_topic_ok(&topic, 1).unwrap();
    client.produce(&topic, 0, simple_batch("v", 3), 1).unwrap();

    let refused = fetch_v12(&mut client, &topic, 1, 7);
    assert_eq!(refused.error_code, OFFSET_OUT_OF_RANGE, "{refused:?}");
    assert_eq!(runnel_tests::raw::records_len(&refused.records), 0);
}

fn describe_cluster(client: &mut RawClient, endpoint_type: i8) -> DescribeClusterResponse {
    let request = DescribeClusterRequest::default().with_endpoint_type(endpoint_type);
    client.request(1, &request).expect("DescribeCluster v1")
}

/// DescribeCluster v1 (KIP-919): a broker asked for controller endpoints (type 2) answers
/// MISMATCHED_ENDPOINT_TYPE; an endpoint type Kafka does not know is UNSUPPORTED_ENDPOINT_TYPE.
/// Both answers carry only the error and its message. Runnel answered both with
/// UNSUPPORTED_ENDPOINT_TYPE (and the cluster id and controller).
#[test]
fn describe_cluster_v1_endpoint_types_as_kafka() {
    let broker = TestBroker::start(&[]);
    let mut client = RawClient::connect(broker.addr()).unwrap();

    let controllers = describe_cluster(&mut client, 2);
    assert_eq!(controllers.error_code, MISMATCHED_ENDPOINT_TYPE);
    assert_eq!(
        controllers.error_message.as_deref(),
        Some("The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type CONTROLLER")
    );
    assert!(controllers.brokers.is_empty());
    assert_eq!(controllers.cluster_id.as_str(), "");

    let unknown = describe_cluster(&mut client, 9);
    assert_eq!(unknown.error_code, UNSUPPORTED_ENDPOINT_TYPE);
    assert_eq!(
        unknown.error_message.as_deref(),
        Some("Unsupported endpoint type 9")
    );

    let brokers = describe_cluster(&mut client, 1);
    assert_eq!(brokers.error_code, 0);
    assert_eq!(brokers.endpoint_type, 1);
    assert_eq!(brokers.brokers.len(), 1);
    assert_ne!(brokers.cluster_id, StrBytes::from_static_str(""));
}

/// One transactional batch of one record from (producer id, epoch), at sequence 0.
fn transactional_batch((pid, epoch): (i64, i16)) -> bytes::Bytes {
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };
    let record = Record {
        transactional: true,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: pid,
        producer_epoch: epoch,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: 0,
        timestamp: runnel_tests::raw::now_ms(),
        key: None,
        value: Some(bytes::Bytes::from_static(b"v")),
        headers: Default::default(),
    };
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, [record].iter(), &options).expect("encode batch");
    buf.freeze()
}

/// Produce v11 (KIP-890): a transactional batch for a partition the transaction never added
/// fails verification with TRANSACTION_ABORTABLE, which v11 clients know (Kafka's
/// `produceRequestVersionToTransactionSupportedOperation` gives GENERIC_ERROR_SUPPORTED from
/// v11); v10 and older get INVALID_TXN_STATE. Runnel answered INVALID_TXN_STATE at v11 too.
#[test]
fn produce_v11_verification_failure_is_transaction_abortable() {
    const INVALID_TXN_STATE: i16 = 48;
    const TRANSACTION_ABORTABLE: i16 = 120;
    let broker = TestBroker::start(&[]);
    let mut client = RawClient::connect(broker.addr()).unwrap();
    let topic = unique_topic("abortable");
    client.create_topic_ok(&topic, 1).unwrap();
    let id = TransactionalId(StrBytes::from_static_str("abortable-tx"));
    let init = InitProducerIdRequest::default()
        .with_transactional_id(Some(id.clone()))
        .with_transaction_timeout_ms(60_000);
    let producer = client.request(4, &init).expect("InitProducerId");
    assert_eq!(producer.error_code, 0);
    let producer = (producer.producer_id.0, producer.producer_epoch);

    let mut produce_at = |version: i16| {
        let request =
            runnel_tests::raw::produce_request(&topic, 0, transactional_batch(producer), -1)
                .with_transactional_id(Some(id.clone()));
        let response = client.request(version, &request).expect("Produce");
        response.responses[0].partition_responses[0].error_code
    };
    assert_eq!(produce_at(10), INVALID_TXN_STATE);
    assert_eq!(produce_at(11), TRANSACTION_ABORTABLE);
}

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::metadata_response::MetadataResponseTopic;

fn by_name(name: &str) -> MetadataRequestTopic {
    MetadataRequestTopic::default().with_name(Some(topic_name(name)))
}

/// The request entry naming `topic` by its id (and no name).
fn by_id(topic: &MetadataResponseTopic) -> MetadataRequestTopic {
    MetadataRequestTopic::default()
        .with_name(None)
        .with_topic_id(topic.topic_id)
}

fn name_of(topic: &MetadataResponseTopic) -> Option<&str> {
    topic.name.as_ref().map(|n| n.0.as_str())
}

/// The topic's metadata as listed by a v12 all-topics request.
fn described(client: &mut RawClient, topic: &str) -> MetadataResponseTopic {
    let all = client
        .request(12, &MetadataRequest::default().with_topics(None))
        .unwrap();
    all.topics
        .into_iter()
        .find(|t| name_of(t) == Some(topic))
        .unwrap()
}

/// Metadata v10/v11 have a topic id field in the request but Kafka does not serve it: a topic
/// named by id (or with a null name) fails the request with INVALID_REQUEST for every topic
/// ("Topic IDs are not supported in requests for version 11"). Runnel looked the id up as v12
/// does (or ignored it).
#[test]
fn metadata_v10_and_v11_refuse_topic_ids() {
    const INVALID_REQUEST: i16 = 42;
    let broker = TestBroker::start(&[]);
    let mut client = RawClient::connect(broker.addr()).unwrap();
    let topic = unique_topic("md-ids");
    client.create_topic_ok(&topic, 1).unwrap();
    let described = described(&mut client, &topic);
    for version in [10, 11] {
        for requested in [
            by_id(&described),
            by_id(&described).with_name(Some(topic_name(&topic))),
        ] {
            let request = MetadataRequest::default().with_topics(Some(vec![requested]));
            let response = client.request(version, &request).unwrap();
            assert_eq!(response.topics.len(), 1, "v{version}");
            let answered = &response.topics[0];
            assert_eq!(
                answered.error_code, INVALID_REQUEST,
                "v{version}: {answered:?}"
            );
            assert!(answered.partitions.is_empty());
        }
        // By name alone it is an ordinary request.
        let request = MetadataRequest::default().with_topics(Some(vec![by_name(&topic)]));
        let response = client.request(version, &request).unwrap();
        assert_eq!(response.topics[0].error_code, 0);
        assert_eq!(response.topics[0].topic_id, described.topic_id);
    }
}

/// Metadata v12: once a request names topics by id, Kafka serves it by ids alone: names are
/// ignored (and so never auto-created), each id is answered once. Runnel answered every entry
/// by its name when it had one, auto-creating the named topic.
#[test]
fn metadata_v12_by_id_ignores_names() {
    let broker = TestBroker::start(&[]);
    let mut client = RawClient::connect(broker.addr()).unwrap();
    let topic = unique_topic("md-v12");
    client.create_topic_ok(&topic, 1).unwrap();
    let described = described(&mut client, &topic);
    let other = unique_topic("md-v12-named");
    let request = MetadataRequest::default()
        .with_allow_auto_topic_creation(true)
        .with_topics(Some(vec![
            by_id(&described),
            by_name(&other),
            by_id(&described),
        ]));
    let response = client.request(12, &request).unwrap();
    let names: Vec<_> = response
        .topics
        .iter()
        .map(|t| (name_of(t).map(str::to_owned), t.error_code))
        .collect();
    assert_eq!(names, vec![(Some(topic.clone()), 0)]);
    let all = client
        .request(12, &MetadataRequest::default().with_topics(None))
        .unwrap();
    assert!(
        all.topics
            .iter()
            .all(|t| name_of(t) != Some(other.as_str())),
        "a name in a by-id request was auto-created"
    );
}
