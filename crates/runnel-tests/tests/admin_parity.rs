//! Admin API behaviour compared with Apache Kafka's (ControllerApis, ReplicationControlManager,
//! ConfigurationControlManager, ConfigHelper, ConfigAdminManager), through the raw protocol
//! client: each test pins one answer Kafka gives.

use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::DescribeConfigsResult;
use kafka_protocol::messages::{
    alter_configs_request, incremental_alter_configs_request, AlterConfigsRequest,
    ApiVersionsRequest, CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest,
    DescribeConfigsRequest, IncrementalAlterConfigsRequest, MetadataRequest,
};
use kafka_protocol::protocol::StrBytes;
use runnel_tests::clients::unique_topic;
use runnel_tests::raw::{topic_name, RawClient};
use runnel_tests::TestBroker;

const INVALID_TOPIC_EXCEPTION: i16 = 17;
const INVALID_CONFIG: i16 = 40;
const INVALID_REQUEST: i16 = 42;

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;

const SET: i8 = 0;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;

/// Kafka's DescribeConfigs source codes.
const DYNAMIC_TOPIC_CONFIG: i8 = 1;
const DYNAMIC_DEFAULT_BROKER_CONFIG: i8 = 3;
const STATIC_BROKER_CONFIG: i8 = 4;
const DEFAULT_CONFIG: i8 = 5;

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

fn describe(
    client: &mut RawClient,
    resource_type: i8,
    name: &str,
    keys: Option<&[&str]>,
) -> DescribeConfigsResult {
    let resource = DescribeConfigsResource::default()
        .with_resource_type(resource_type)
        .with_resource_name(text(name))
        .with_configuration_keys(keys.map(|keys| keys.iter().map(|k| text(k)).collect()));
    let request = DescribeConfigsRequest::default().with_resources(vec![resource]);
    let mut response = client.request(4, &request).expect("DescribeConfigs");
    response.results.remove(0)
}

/// (value, source) of one key, or None when it is not described.
fn value_of(client: &mut RawClient, resource_type: i8, name: &str, key: &str) -> Option<String> {
    let result = describe(client, resource_type, name, Some(&[key]));
    assert_eq!(result.error_code, 0, "{:?}", result.error_message);
    result
        .configs
        .iter()
        .find(|c| c.name.as_str() == key)
        .and_then(|c| c.value.as_deref().map(str::to_string))
}

type Op<'a> = (i8, &'a str, Option<&'a str>);

fn incremental_resource(
    resource_type: i8,
    name: &str,
    ops: &[Op],
) -> incremental_alter_configs_request::AlterConfigsResource {
    incremental_alter_configs_request::AlterConfigsResource::default()
        .with_resource_type(resource_type)
        .with_resource_name(text(name))
        .with_configs(
            ops.iter()
                .map(|(op, key, value)| {
                    incremental_alter_configs_request::AlterableConfig::default()
                        .with_name(text(key))
                        .with_config_operation(*op)
                        .with_value(value.map(text))
                })
                .collect(),
        )
}

/// The error code of one IncrementalAlterConfigs resource.
fn incremental(client: &mut RawClient, resource_type: i8, name: &str, ops: &[Op]) -> i16 {
    let request = IncrementalAlterConfigsRequest::default()
        .with_resources(vec![incremental_resource(resource_type, name, ops)]);
    let response = client
        .request(1, &request)
        .expect("IncrementalAlterConfigs");
    response.responses[0].error_code
}

fn topic_exists(client: &mut RawClient, topic: &str) -> bool {
    let request = MetadataRequest::default()
        .with_topics(None)
        .with_allow_auto_topic_creation(false);
    let response = client.request(12, &request).expect("Metadata");
    response
        .topics
        .iter()
        .any(|t| t.name.as_ref().map(|n| n.as_str()) == Some(topic))
}

fn partition_count(client: &mut RawClient, topic: &str) -> usize {
    let request = MetadataRequest::default()
        .with_topics(None)
        .with_allow_auto_topic_creation(false);
    let response = client.request(12, &request).expect("Metadata");
    response
        .topics
        .iter()
        .find(|t| t.name.as_ref().map(|n| n.as_str()) == Some(topic))
        .map_or(0, |t| t.partitions.len())
}

/// ConfigHelperUtils.buildConfigEntries: a null *or empty* key list means every config.
#[test]
fn describe_configs_with_an_empty_key_list_returns_every_config() {
    let broker = TestBroker::start(&[]);
    let mut client = RawClient::connect(broker.addr()).unwrap();
    let topic = unique_topic("empty-keys");
    client.create_topic_ok(&topic, 1).unwrap();
    let all = describe(&mut client, RESOURCE_TOPIC, &topic, None);
    let empty = describe(&mut client, RESOURCE_TOPIC, &topic, Some(&[]));
    assert_eq!(empty.error_code, 0);
    assert!(!all.configs.is_empty());
    assert_eq!(
        empty.configs.len(),
        all.configs.len(),
        "an empty key list asks for every config"
    );
    let broker_all = describe(&mut client, RESOURCE_BROKER, "0", None);
    let broker_empty = describe(&mut client, RESOURCE_BROKER, "0", Some(&[]));
    assert_eq!(broker_empty.configs.len(), broker_all.configs.len());
    // Keys that do not exist are left out, not reported.
    let unknown = describe(
        &mut client,
        RESOURCE_TOPIC,
        &topic,
        Some(&["no.such.key", "retention.ms"]),
    );
    let names: Vec<&str> = unknown.configs.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["retention.ms"]);
}

/// ConfigHelper: the broker resource "" (the cluster-wide default) describes only the dynamic
/// default configs (`currentDynamicDefaultConfigs`), not every broker key.
#[test]
fn describe_configs_of_the_cluster_default_lists_only_dynamic_defaults() {
    let broker = TestBroker::start(&[]);
    let mut client = RawClient::connect(broker.addr()).unwrap();
    let before = describe(&mut client, RESOURCE_BROKER, "", None);
    assert_eq!(before.error_code, 0);
    assert!(
        before.configs.is_empty(),
        "no dynamic defaults yet, got {:?}",
        before
            .configs
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
    );
    assert_eq!(
        incremental(
            &mut client,
            RESOURCE_BROKER,
            "",
            &[(SET, "log.retention.ms", Some("7200000"))]
        ),
        0
    );
    let after = describe(&mut client, RESOURCE_BROKER, "", None);
    let entries: Vec<(&str, Option<&str>, i8)> = after
        .configs
        .iter()
        .map(|c| (c.name.as_str(), c.value.as_deref(), c.config_source))
        .collect();
    assert_eq!(
        entries,
        [(
            "log.retention.ms",
            Some("7200000"),
            DYNAMIC_DEFAULT_BROKER_CONFIG
        )]
    );
    // The broker's own resource still lists everything.
    let this_broker = describe(&mut client, RESOURCE_BROKER, "0", None);
    assert!(this_broker.configs.len() > 10);
}

/// LogConfig's types: segment.bytes, segment.index.bytes, index.interval.bytes and
/// max.message.bytes are INT (ConfigType 3), so values beyond i32 are refused.
#[test]
fn topic_configs_have_kafkas_config_types() {
    let broker = TestBroker::start(&[]);
    let mut client = RawClient::connect(broker.addr()).unwrap();
    let topic = unique_topic("types");
    client.create_topic_ok(&topic, 1).unwrap();
    let result = describe(&mut client, RESOURCE_TOPIC, &topic, None);
    let type_of = |key: &str| {
        result
            .configs
            .iter()
            .find(|c| c.name.as_str() == key)
            .unwrap_or_else(|| panic!("{key} described"))
            .config_type
    };
    const INT: i8 = 3;
    const LONG: i8 = 5;
    const DOUBLE: i8 = 6;
    const LIST: i8 = 7;
    const STRING: i8 = 2;
    for key in [
        "segment.bytes",
        "segment.index.bytes",
        "index.interval.bytes",
        "max.message.bytes",
    ] {
        assert_eq!(type_of(key), INT, "{key}");
    }
    for key in [
        "segment.ms",
        "retention.ms",
        "retention.bytes",
        "flush.messages",
        "flush.ms",
        "delete.retention.ms",
        "min.compaction.lag.ms",
        "max.compaction.lag.ms",
    ] {
        assert_eq!(type_of(key), LONG, "{key}");
    }
    assert_eq!(type_of("min.cleanable.dirty.ratio"), DOUBLE);
    assert_eq!(type_of("cleanup.policy"), LIST);
    assert_eq!(type_of("compression.type"), STRING);

    let too_big = client
        .create_topic(
            &unique_topic("int-overflow"),
            1,
            &[("segment.bytes", "3000000000")],
        )
        .unwrap();
    assert_eq!(
        too_big.error_code, INVALID_CONFIG,
        "segment.bytes is an INT"
    );
    assert_eq!(
        incremental(
            &mut client,
            RESOURCE_TOPIC,
            &topic,
            &[(SET, "max.message.bytes", Some("2147483648"))]
        ),
        INVALID_CONFIG
    );
}

/// ConfigurationControlManager.getParts: APPEND and SUBTRACT on a list config without a value
/// start from the config's default, and `log.cleanup.policy` is a list on the broker too.
#[test]
fn append_and_subtract_start_from_the_default_list() {
    let broker = TestBroker::start(&[]);
    let mut client = RawClient::connect(broker.addr()).unwrap();
    let topic = unique_topic("append");
    client.create_topic_ok(&topic, 1).unwrap();
    assert_eq!(
        incremental(
            &mut client,
            RESOURCE_TOPIC,
            &topic,
            &[(APPEND, "cleanup.policy", Some("compact"))]
        ),
        0
    );
    assert_eq!(
        value_of(&mut client, RESOURCE_TOPIC, &topic, "cleanup.policy").as_deref(),
        Some("delete,compact")
    );
    assert_eq!(
        incremental(
            &mut client,
            RESOURCE_TOPIC,
            &topic,
            &[(SUBTRACT, "cleanup.policy", Some("delete"))]
        ),
        0
    );
    assert_eq!(
        value_of(&mut client, RESOURCE_TOPIC, &topic, "cleanup.policy").as_deref(),
        Some("compact")
    );

    assert_eq!(
        incremental(
            &mut client,
            RESOURCE_BROKER,
            "0",
            &[(APPEND, "log.cleanup.policy", Some("compact"))]
        ),
        0,
        "log.cleanup.policy is a list"
    );
    assert_eq!(
        value_of(&mut client, RESOURCE_BROKER, "0", "log.cleanup.policy").as_deref(),
        Some("delete,compact")
    );
}

/// ConfigAdminManager.preprocess: duplicate keys, null values (except DELETE) and a resource
/// named twice are INVALID_REQUEST, and nothing is applied.
#[test]
fn alter_configs_refuse_duplicate_keys_null_values_and_repeated_resources() {
    let broker = TestBroker::start(&[]);
    let mut client = RawClient::connect(broker.addr()).unwrap();
    let topic = unique_topic("alter-dupes");
    client.create_topic_ok(&topic, 1).unwrap();
    let default_segment_ms = value_of(&mut client, RESOURCE_TOPIC, &topic, "segment.ms");

    let duplicate_keys = [
        (SET, "segment.ms", Some("1000")),
        (SET, "segment.ms", Some("2000")),
    ];
    assert_eq!(
        incremental(&mut client, RESOURCE_TOPIC, &topic, &duplicate_keys),
        INVALID_REQUEST
    );
    assert_eq!(
        incremental(
            &mut client,
            RESOURCE_TOPIC,
            &topic,
            &[(APPEND, "cleanup.policy", None)]
        ),
        INVALID_REQUEST,
        "APPEND with a null value"
    );
    assert_eq!(
        incremental(
            &mut client,
            RESOURCE_TOPIC,
            &topic,
            &[(SET, "segment.ms", None)]
        ),
        INVALID_REQUEST,
        "SET with a null value"
    );

    let twice = IncrementalAlterConfigsRequest::default().with_resources(vec![
        incremental_resource(RESOURCE_TOPIC, &topic, &[(SET, "segment.ms", Some("3000"))]),
        incremental_resource(RESOURCE_TOPIC, &topic, &[(SET, "flush.ms", Some("3000"))]),
    ]);
    let response = client.request(1, &twice).unwrap();
    let codes: Vec<i16> = response.responses.iter().map(|r| r.error_code).collect();
    assert_eq!(codes, [INVALID_REQUEST, INVALID_REQUEST]);

    let legacy = |configs: Vec<(&str, Option<&str>)>| {
        AlterConfigsRequest::default().with_resources(vec![
            alter_configs_request::AlterConfigsResource::default()
                .with_resource_type(RESOURCE_TOPIC)
                .with_resource_name(text(&topic))
                .with_configs(
                    configs
                        .into_iter()
                        .map(|(k, v)| {
                            alter_configs_request::AlterableConfig::default()
                                .with_name(text(k))
                                .with_value(v.map(text))
                        })
                        .collect(),
                ),
        ])
    };
    let null_value = client
        .request(
            2,
            &legacy(vec![("segment.ms", Some("4000")), ("flush.ms", None)]),
        )
        .unwrap();
    assert_eq!(null_value.responses[0].error_code, INVALID_REQUEST);
    let duplicate = client
        .request(
            2,
            &legacy(vec![
                ("segment.ms", Some("5000")),
                ("segment.ms", Some("6000")),
            ]),
        )
        .unwrap();
    assert_eq!(duplicate.responses[0].error_code, INVALID_REQUEST);

    assert_eq!(
        value_of(&mut client, RESOURCE_TOPIC, &topic, "segment.ms"),
        default_segment_ms,
        "no refused change was applied"
    );
}

/// ReplicationControlManager.validateNewTopicNames: a name that equals an existing topic's
/// once '.' and '_' are unified is INVALID_TOPIC_EXCEPTION.
#[test]
fn create_topics_refuses_names_colliding_on_dot_and_underscore() {
    let broker = TestBroker::start(&[]);
    let mut client = RawClient::connect(broker.addr()).unwrap();
    let base = unique_topic("collide");
    let dotted = format!("{base}.a_b");
    client.create_topic_ok(&dotted, 1).unwrap();
    for other in [
        format!("{base}_a_b"),
        format!("{base}.a.b"),
        format!("{base}_a.b"),
    ] {
        let result = client.create_topic(&other, 1, &[]).unwrap();
        assert_eq!(result.error_code, INVALID_TOPIC_EXCEPTION, "{other}");
        assert!(!topic_exists(&mut client, &other), "{other} was created");
    }
    let unrelated = client.create_topic(&format!("{base}-a-b"), 1, &[]).unwrap();
    assert_eq!(unrelated.error_code, 0, "'-' does not collide");
}

/// ReplicationControlManager.createTopic (KIP-525): a v5+ result carries every effective topic
/// config, sorted by name, with its source, also for validate_only.
#[test]
fn create_topics_v5_reports_every_effective_config_with_its_source() {
    let broker = TestBroker::start(&[("log.segment.bytes", "2000000")]);
    let mut client = RawClient::connect(broker.addr()).unwrap();
    for validate_only in [true, false] {
        let topic = unique_topic("kip525");
        let request = CreateTopicsRequest::default()
            .with_validate_only(validate_only)
            .with_topics(vec![CreatableTopic::default()
                .with_name(topic_name(&topic))
                .with_num_partitions(2)
                .with_replication_factor(-1)
                .with_configs(vec![CreatableTopicConfig::default()
                    .with_name(text("retention.ms"))
                    .with_value(Some(text("60000")))])]);
        let response = client.request(7, &request).unwrap();
        let result = &response.topics[0];
        assert_eq!(result.error_code, 0, "{:?}", result.error_message);
        assert_eq!((result.num_partitions, result.replication_factor), (2, 1));
        let configs = result.configs.as_ref().expect("configs at v7");
        let names: Vec<&str> = configs.iter().map(|c| c.name.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted, "sorted by name");
        let entry = |key: &str| {
            let c = configs
                .iter()
                .find(|c| c.name.as_str() == key)
                .unwrap_or_else(|| panic!("{key} in {names:?}"));
            (c.value.as_deref().map(str::to_string), c.config_source)
        };
        assert_eq!(
            entry("retention.ms"),
            (Some("60000".into()), DYNAMIC_TOPIC_CONFIG)
        );
        assert_eq!(
            entry("segment.bytes"),
            (Some("2000000".into()), STATIC_BROKER_CONFIG)
        );
        assert_eq!(
            entry("cleanup.policy"),
            (Some("delete".into()), DEFAULT_CONFIG)
        );
        if !validate_only {
            let all = describe(&mut client, RESOURCE_TOPIC, &topic, None);
            assert_eq!(configs.len(), all.configs.len(), "as DescribeConfigs lists");
        }
    }
}

/// ControllerApis.deleteTopics: a name given twice, an entry with both name and id, and one
/// with neither are INVALID_REQUEST, and such a topic is not deleted.
#[test]
fn delete_topics_refuses_duplicate_and_ambiguous_entries() {
    let broker = TestBroker::start(&[]);
    let mut client = RawClient::connect(broker.addr()).unwrap();
    let topic = unique_topic("del-dupe");
    let created = client.create_topic(&topic, 1, &[]).unwrap();
    assert_eq!(created.error_code, 0);

    let by_names = DeleteTopicsRequest::default()
        .with_topic_names(vec![topic_name(&topic), topic_name(&topic)])
        .with_timeout_ms(10_000);
    let response = client.request(5, &by_names).unwrap();
    assert!(!response.responses.is_empty());
    for result in &response.responses {
        assert_eq!(result.error_code, INVALID_REQUEST, "{result:?}");
    }
    assert!(
        topic_exists(&mut client, &topic),
        "a duplicated name is not deleted"
    );

    let both = DeleteTopicsRequest::default().with_topics(vec![DeleteTopicState::default()
        .with_name(Some(topic_name(&topic)))
        .with_topic_id(created.topic_id)]);
    let response = client.request(6, &both).unwrap();
    assert_eq!(response.responses[0].error_code, INVALID_REQUEST);
    assert!(topic_exists(&mut client, &topic));

    let neither = DeleteTopicsRequest::default().with_topics(vec![DeleteTopicState::default()]);
    let response = client.request(6, &neither).unwrap();
    assert_eq!(response.responses[0].error_code, INVALID_REQUEST);

    let by_id_twice = DeleteTopicsRequest::default().with_topics(vec![
        DeleteTopicState::default().with_topic_id(created.topic_id),
        DeleteTopicState::default().with_topic_id(created.topic_id),
    ]);
    let response = client.request(6, &by_id_twice).unwrap();
    assert!(!response.responses.is_empty(), "{response:?}");
    for result in &response.responses {
        assert_eq!(result.error_code, INVALID_REQUEST, "{result:?}");
    }
    assert!(topic_exists(&mut client, &topic));
}

/// ControllerApis.createPartitions: a topic named twice is INVALID_REQUEST and not grown.
#[test]
fn create_partitions_refuses_duplicate_topic_names() {
    let broker = TestBroker::start(&[]);
    let mut client = RawClient::connect(broker.addr()).unwrap();
    let topic = unique_topic("grow-dupe");
    client.create_topic_ok(&topic, 1).unwrap();
    let grow = |count| {
        CreatePartitionsTopic::default()
            .with_name(topic_name(&topic))
            .with_count(count)
            .with_assignments(None)
    };
    let request = CreatePartitionsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![grow(2), grow(3)]);
    let response = client.request(3, &request).unwrap();
    assert!(!response.results.is_empty());
    for result in &response.results {
        assert_eq!(result.error_code, INVALID_REQUEST, "{result:?}");
    }
    assert_eq!(partition_count(&mut client, &topic), 1, "not grown");
}

/// KafkaApis.handleApiVersionsRequest / ApiVersionsRequest.isValid (KIP-511): from v3 the
/// client software name and version must match `[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?`,
/// else the answer is INVALID_REQUEST.
#[test]
fn api_versions_v3_refuses_invalid_client_software_names() {
    let broker = TestBroker::start(&[]);
    let mut client = RawClient::connect(broker.addr()).unwrap();
    let request = |name: &str, version: &str| {
        ApiVersionsRequest::default()
            .with_client_software_name(text(name))
            .with_client_software_version(text(version))
    };
    for (name, version) in [
        ("bad name", "1.0"),
        ("client", "1.0!"),
        ("", "1.0"),
        ("client", ""),
        ("-client", "1.0"),
        ("client", "1.0."),
    ] {
        let response = client.request(3, &request(name, version)).unwrap();
        assert_eq!(
            response.error_code, INVALID_REQUEST,
            "name {name:?} version {version:?}"
        );
    }
    for (name, version) in [
        ("librdkafka", "2.3.0"),
        ("a", "1"),
        ("kafka-python", "2.0.2-dev"),
    ] {
        let response = client.request(3, &request(name, version)).unwrap();
        assert_eq!(response.error_code, 0, "name {name:?} version {version:?}");
        assert!(!response.api_keys.is_empty());
    }
    // Before v3 the fields are not on the wire.
    let v2 = client.request(2, &ApiVersionsRequest::default()).unwrap();
    assert_eq!(v2.error_code, 0);
}
