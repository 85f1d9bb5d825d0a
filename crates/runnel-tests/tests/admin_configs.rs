//! Topic and broker configuration through real admin clients (librdkafka's AdminClient and
//! kafka-python's KafkaAdminClient): create with configs, describe with sources, alter, grow
//! partitions, and the effect of each on producers and consumers.

use std::time::Duration;

use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{DescribeConfigsRequest, IncrementalAlterConfigsRequest};
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{AlterConfig, NewPartitions, ResourceSpecifier};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::util::Timeout;
use rdkafka::Offset;
use runnel_tests::clients::{
    admin, admin_opts, assign, consume_n, consumer, create_topic, producer, producer_config, send,
    unique_topic,
};
use runnel_tests::raw::RawClient;
use runnel_tests::TestBroker;

const WAIT: Duration = Duration::from_secs(20);

/// (value, source) of `key` in a topic's or broker's description.
async fn describe(
    bootstrap: &str,
    resource: ResourceSpecifier<'_>,
    key: &str,
) -> (Option<String>, String) {
    let results = admin(bootstrap)
        .describe_configs([&resource], &admin_opts())
        .await
        .expect("describe_configs request");
    let description = results
        .into_iter()
        .next()
        .expect("one result")
        .expect("resource described");
    let entry = description
        .entries
        .into_iter()
        .find(|e| e.name == key)
        .unwrap_or_else(|| panic!("{key} missing from the description"));
    (entry.value, format!("{:?}", entry.source))
}

#[tokio::test]
async fn created_configs_are_described_with_their_sources() {
    let broker = TestBroker::start(&[("log.roll.hours", "2")]);
    let bs = broker.bootstrap();
    let topic = unique_topic("described");
    create_topic(
        &bs,
        &topic,
        1,
        &[("segment.bytes", "200000"), ("flush.messages", "1")],
    )
    .await;

    let (value, source) = describe(&bs, ResourceSpecifier::Topic(&topic), "segment.bytes").await;
    assert_eq!(value.as_deref(), Some("200000"));
    assert_eq!(source, "DynamicTopic");
    // An unset topic key shows the broker value it inherits, converted to the topic's unit.
    let (value, source) = describe(&bs, ResourceSpecifier::Topic(&topic), "segment.ms").await;
    assert_eq!(value.as_deref(), Some("7200000"));
    assert_eq!(source, "StaticBroker");
    let (value, source) =
        describe(&bs, ResourceSpecifier::Topic(&topic), "max.message.bytes").await;
    assert_eq!(value.as_deref(), Some("1048588"));
    assert_eq!(source, "Default");
}

#[tokio::test]
async fn altered_max_message_bytes_changes_what_producers_may_send() {
    let broker = TestBroker::start(&[]);
    let bs = broker.bootstrap();
    let topic = unique_topic("alter-max");
    create_topic(&bs, &topic, 1, &[]).await;
    let big = "x".repeat(20_000);
    let p = producer(&bs, &[("message.timeout.ms", "5000")]);
    send(&p, &topic, None, &big).await;

    let alter =
        AlterConfig::new(ResourceSpecifier::Topic(&topic)).set("max.message.bytes", "10000");
    let results = admin(&bs)
        .alter_configs([&alter], &admin_opts())
        .await
        .expect("alter_configs");
    assert!(results[0].is_ok(), "{results:?}");
    let (value, _) = describe(&bs, ResourceSpecifier::Topic(&topic), "max.message.bytes").await;
    assert_eq!(value.as_deref(), Some("10000"));

    let refused = p
        .send(
            FutureRecord::<str, str>::to(&topic).payload(&big),
            Timeout::After(WAIT),
        )
        .await;
    match refused {
        Err((KafkaError::MessageProduction(code), _)) => {
            assert_eq!(code, RDKafkaErrorCode::MessageSizeTooLarge)
        }
        other => panic!("expected MessageSizeTooLarge, got {other:?}"),
    }
    // The change survives a restart.
    broker_restart_keeps(&bs, &topic, "max.message.bytes", "10000", broker).await;
}

async fn broker_restart_keeps(
    bs: &str,
    topic: &str,
    key: &str,
    expected: &str,
    mut broker: TestBroker,
) {
    assert!(broker.stop(), "clean stop");
    broker.restart();
    let (value, _) = describe(bs, ResourceSpecifier::Topic(topic), key).await;
    assert_eq!(value.as_deref(), Some(expected), "{key} after restart");
}

/// rust-rdkafka drops per-resource AlterConfigs errors, so the error codes are checked with the
/// raw client (IncrementalAlterConfigs) and kafka-python (AlterConfigs); here: nothing changed.
#[tokio::test]
async fn invalid_and_unknown_configs_change_nothing() {
    let broker = TestBroker::start(&[]);
    let bs = broker.bootstrap();
    let topic = unique_topic("alter-bad");
    create_topic(&bs, &topic, 1, &[("segment.bytes", "300000")]).await;
    for (key, value) in [
        ("segment.bytes", "not-a-number"),
        ("no.such.config", "1"),
        ("segment.bytes", "3"),
    ] {
        let alter = AlterConfig::new(ResourceSpecifier::Topic(&topic)).set(key, value);
        admin(&bs)
            .alter_configs([&alter], &admin_opts())
            .await
            .expect("alter_configs");
    }
    let (value, _) = describe(&bs, ResourceSpecifier::Topic(&topic), "segment.bytes").await;
    assert_eq!(value.as_deref(), Some("300000"));
}

#[test]
fn incremental_alter_configs_sets_deletes_and_reports_errors() {
    let broker = TestBroker::start(&[]);
    let mut client = RawClient::connect(broker.addr()).expect("connect");
    let topic = unique_topic("incremental");
    client.create_topic_ok(&topic, 1).expect("create topic");
    let alter = |client: &mut RawClient, op: i8, key: &str, value: Option<&str>| {
        let config = AlterableConfig::default()
            .with_name(StrBytes::from_string(key.to_string()))
            .with_config_operation(op)
            .with_value(value.map(|v| StrBytes::from_string(v.to_string())));
        let resource = AlterConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(StrBytes::from_string(topic.clone()))
            .with_configs(vec![config]);
        let request = IncrementalAlterConfigsRequest::default().with_resources(vec![resource]);
        let response = client
            .request(1, &request)
            .expect("IncrementalAlterConfigs");
        response.responses[0].error_code
    };
    const SET: i8 = 0;
    const DELETE: i8 = 1;
    const APPEND: i8 = 2;
    assert_eq!(alter(&mut client, SET, "segment.ms", Some("90000")), 0);
    assert_eq!(
        topic_config(&mut client, &topic, "segment.ms"),
        ("90000".to_string(), 1)
    );
    assert_eq!(alter(&mut client, DELETE, "segment.ms", None), 0);
    assert_eq!(
        topic_config(&mut client, &topic, "segment.ms"),
        ("604800000".to_string(), 5)
    );
    assert_eq!(
        alter(&mut client, SET, "segment.ms", Some("soon")),
        40,
        "INVALID_CONFIG"
    );
    assert_eq!(
        alter(&mut client, SET, "no.such.key", Some("1")),
        40,
        "INVALID_CONFIG"
    );
    assert_eq!(
        alter(&mut client, APPEND, "segment.ms", Some("1")),
        40,
        "APPEND on a non-list"
    );
}

/// (value, source code) of a topic config through DescribeConfigs v4.
fn topic_config(client: &mut RawClient, topic: &str, key: &str) -> (String, i8) {
    let resource = DescribeConfigsResource::default()
        .with_resource_type(2)
        .with_resource_name(StrBytes::from_string(topic.to_string()))
        .with_configuration_keys(Some(vec![StrBytes::from_string(key.to_string())]));
    let request = DescribeConfigsRequest::default().with_resources(vec![resource]);
    let response = client.request(4, &request).expect("DescribeConfigs");
    let entry = &response.results[0].configs[0];
    (
        entry.value.as_deref().unwrap_or_default().to_string(),
        entry.config_source,
    )
}

#[tokio::test]
async fn dynamic_broker_default_applies_to_topics_without_overrides() {
    let broker = TestBroker::start(&[]);
    let bs = broker.bootstrap();
    let topic = unique_topic("broker-default");
    create_topic(&bs, &topic, 1, &[]).await;
    let alter = AlterConfig::new(ResourceSpecifier::Broker(0)).set("message.max.bytes", "5000");
    let results = admin(&bs)
        .alter_configs([&alter], &admin_opts())
        .await
        .expect("alter broker");
    assert!(results[0].is_ok(), "{results:?}");
    let (value, source) =
        describe(&bs, ResourceSpecifier::Topic(&topic), "max.message.bytes").await;
    assert_eq!(value.as_deref(), Some("5000"));
    assert_eq!(source, "DynamicBroker");
    let p = producer(&bs, &[("message.timeout.ms", "5000")]);
    let refused = p
        .send(
            FutureRecord::<str, str>::to(&topic).payload(&"y".repeat(8000)),
            Timeout::After(WAIT),
        )
        .await;
    assert!(
        refused.is_err(),
        "a batch over the new broker default was accepted"
    );

    let static_only = AlterConfig::new(ResourceSpecifier::Broker(0)).set("num.partitions", "3");
    admin(&bs)
        .alter_configs([&static_only], &admin_opts())
        .await
        .expect("alter broker");
    let (value, _) = describe(&bs, ResourceSpecifier::Broker(0), "num.partitions").await;
    assert_eq!(
        value.as_deref(),
        Some("1"),
        "a static broker config was changed at run time"
    );
}

#[tokio::test]
async fn grown_topic_serves_new_partitions_to_producers_and_consumers() {
    let broker = TestBroker::start(&[]);
    let bs = broker.bootstrap();
    let topic = unique_topic("grow");
    create_topic(&bs, &topic, 2, &[]).await;
    let grow = NewPartitions::new(&topic, 5);
    let results = admin(&bs)
        .create_partitions([&grow], &admin_opts())
        .await
        .expect("create_partitions");
    assert!(results[0].is_ok(), "{results:?}");
    let shrink = NewPartitions::new(&topic, 3);
    let results = admin(&bs)
        .create_partitions([&shrink], &admin_opts())
        .await
        .expect("create_partitions");
    match &results[0] {
        Err((_, code)) => assert_eq!(*code, RDKafkaErrorCode::InvalidPartitions),
        Ok(_) => panic!("shrinking a topic succeeded"),
    }

    let p: FutureProducer = producer_config(&bs, &[("topic.metadata.refresh.interval.ms", "500")])
        .create()
        .expect("producer");
    for partition in 0..5 {
        let record = FutureRecord::<str, str>::to(&topic)
            .partition(partition)
            .payload("to-new-partition");
        p.send(record, Timeout::After(WAIT))
            .await
            .expect("produce to every partition");
    }
    let c = consumer(&bs, &[]);
    assign(&c, &topic, 5, Offset::Beginning);
    let records = consume_n(&c, 5, WAIT).await;
    let mut partitions: Vec<i32> = records.iter().map(|r| r.partition).collect();
    partitions.sort_unstable();
    assert_eq!(partitions, vec![0, 1, 2, 3, 4]);
}

#[test]
fn kafka_python_admin_describes_and_alters_configs() {
    let broker = TestBroker::start(&[]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/admin_configs.py");
    let output = std::process::Command::new("python3")
        .arg(script)
        .arg(broker.bootstrap())
        .arg(unique_topic("py-configs"))
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "admin_configs.py failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("OK segment.ms=60000"), "{stdout}");
    assert!(stdout.contains("OK partitions=4"), "{stdout}");
    assert!(
        stdout.contains("OK AlterConfigs replaced the override set"),
        "{stdout}"
    );
    assert!(
        stdout.contains("OK invalid value -> INVALID_CONFIG"),
        "{stdout}"
    );
    assert!(
        stdout.contains("OK static broker key -> INVALID_CONFIG"),
        "{stdout}"
    );
    assert!(
        stdout.contains("OK unknown topic -> UNKNOWN_TOPIC_OR_PARTITION"),
        "{stdout}"
    );
}
