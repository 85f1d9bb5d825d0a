//! The remaining Admin APIs through the raw client, with their error paths: OffsetForLeaderEpoch,
//! DescribeLogDirs, DescribeCluster, DeleteTopics by topic id, and CreateTopics with an explicit
//! replica assignment.

use kafka_protocol::messages::create_topics_request::{CreatableReplicaAssignment, CreatableTopic};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::{
    BrokerId, CreateTopicsRequest, DeleteTopicsRequest, DescribeClusterRequest,
    DescribeLogDirsRequest, OffsetForLeaderEpochRequest,
};
use runnel_tests::clients::unique_topic;
use runnel_tests::raw::{simple_batch, topic_name, RawClient};
use runnel_tests::TestBroker;

const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const UNKNOWN_TOPIC_ID: i16 = 100;
const INVALID_REPLICA_ASSIGNMENT: i16 = 39;

fn offset_for_epoch(
    client: &mut RawClient,
    topic: &str,
    partition: i32,
    epoch: i32,
) -> (i16, i32, i64) {
    let request = OffsetForLeaderEpochRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![OffsetForLeaderTopic::default()
            .with_topic(topic_name(topic))
            .with_partitions(vec![OffsetForLeaderPartition::default()
                .with_partition(partition)
                .with_current_leader_epoch(-1)
                .with_leader_epoch(epoch)])]);
    let response = client.request(4, &request).expect("OffsetForLeaderEpoch");
    let p = &response.topics[0].partitions[0];
    (p.error_code, p.leader_epoch, p.end_offset)
}

#[test]
fn offset_for_leader_epoch_reports_the_end_of_the_leaders_epoch() {
    let broker = TestBroker::start(&[]);
    let mut client = RawClient::connect(broker.addr()).unwrap();
    let topic = unique_topic("epochs");
    client.create_topic_ok(&topic, 1).unwrap();
    for _ in 0..3 {
        let response = client.produce(&topic, 0, simple_batch("r", 4), -1).unwrap();
        assert_eq!(response.error_code, 0);
    }
    assert_eq!(
        offset_for_epoch(&mut client, &topic, 0, 0),
        (0, 0, 12),
        "epoch 0 ends at the log end"
    );
    assert_eq!(
        offset_for_epoch(&mut client, &topic, 0, 5),
        (0, -1, -1),
        "an unknown later epoch"
    );
    assert_eq!(
        offset_for_epoch(&mut client, &topic, 7, 0).0,
        UNKNOWN_TOPIC_OR_PARTITION
    );
    assert_eq!(
        offset_for_epoch(&mut client, "no-such-topic", 0, 0).0,
        UNKNOWN_TOPIC_OR_PARTITION
    );
}

#[test]
fn describe_log_dirs_reports_partition_sizes() {
    let broker = TestBroker::start(&[]);
    let mut client = RawClient::connect(broker.addr()).unwrap();
    let topic = unique_topic("sizes");
    client.create_topic_ok(&topic, 2).unwrap();
    client
        .produce(&topic, 1, simple_batch("x", 10), -1)
        .unwrap();
    let response = client
        .request(4, &DescribeLogDirsRequest::default().with_topics(None))
        .unwrap();
    assert_eq!(response.results.len(), 1, "one data directory");
    let dir = &response.results[0];
    assert_eq!(dir.error_code, 0);
    assert!(
        dir.log_dir.as_str().ends_with("data"),
        "{}",
        dir.log_dir.as_str()
    );
    let described = dir
        .topics
        .iter()
        .find(|t| t.name.as_str() == topic)
        .expect("topic listed");
    let size = |p: i32| {
        described
            .partitions
            .iter()
            .find(|d| d.partition_index == p)
            .unwrap()
            .partition_size
    };
    assert_eq!(size(0), 0);
    assert!(size(1) > 0, "the produced batch is on disk");
}

#[test]
fn describe_cluster_names_this_broker_as_controller() {
    let broker = TestBroker::start(&[]);
    let mut client = RawClient::connect(broker.addr()).unwrap();
    let response = client
        .request(1, &DescribeClusterRequest::default().with_endpoint_type(1))
        .unwrap();
    assert_eq!(response.error_code, 0);
    assert_eq!(response.controller_id, BrokerId(0));
    assert_eq!(response.brokers.len(), 1);
    assert_eq!(response.brokers[0].port, i32::from(broker.addr().port()));
    let meta = std::fs::read_to_string(broker.data_dir().join("data/meta.properties")).unwrap();
    assert!(meta.contains(&format!("cluster.id={}", response.cluster_id.as_str())));
    let controllers = client
        .request(1, &DescribeClusterRequest::default().with_endpoint_type(2))
        .unwrap();
    assert_ne!(
        controllers.error_code, 0,
        "controller endpoints are not served"
    );
}

#[test]
fn delete_topics_by_id_and_unknown_ids() {
    let broker = TestBroker::start(&[]);
    let mut client = RawClient::connect(broker.addr()).unwrap();
    let topic = unique_topic("by-id");
    let created = client.create_topic(&topic, 1, &[]).unwrap();
    assert_eq!(created.error_code, 0);
    let by_id = |id| {
        DeleteTopicsRequest::default()
            .with_topics(vec![DeleteTopicState::default().with_topic_id(id)])
    };
    let response = client.request(6, &by_id(created.topic_id)).unwrap();
    assert_eq!(response.responses[0].error_code, 0);
    assert_eq!(
        response.responses[0].name.as_ref().map(|n| n.as_str()),
        Some(topic.as_str())
    );
    let again = client.request(6, &by_id(created.topic_id)).unwrap();
    assert_eq!(again.responses[0].error_code, UNKNOWN_TOPIC_ID);
}

#[test]
fn create_topics_with_a_replica_assignment() {
    let broker = TestBroker::start(&[]);
    let mut client = RawClient::connect(broker.addr()).unwrap();
    let assignment = |partition, brokers: Vec<i32>| {
        CreatableReplicaAssignment::default()
            .with_partition_index(partition)
            .with_broker_ids(brokers.into_iter().map(BrokerId).collect())
    };
    let topic = unique_topic("assigned");
    let request = |name: &str, assignments| {
        CreateTopicsRequest::default().with_topics(vec![CreatableTopic::default()
            .with_name(topic_name(name))
            .with_num_partitions(-1)
            .with_replication_factor(-1)
            .with_assignments(assignments)])
    };
    let ok = client
        .request(
            7,
            &request(&topic, vec![assignment(0, vec![0]), assignment(1, vec![0])]),
        )
        .unwrap();
    assert_eq!(ok.topics[0].error_code, 0);
    assert_eq!(ok.topics[0].num_partitions, 2);
    let elsewhere = client
        .request(
            7,
            &request(&unique_topic("bad"), vec![assignment(0, vec![3])]),
        )
        .unwrap();
    assert_eq!(elsewhere.topics[0].error_code, INVALID_REPLICA_ASSIGNMENT);
}
