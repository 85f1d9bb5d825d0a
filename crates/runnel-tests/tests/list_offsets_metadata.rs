//! ListOffsets, Metadata and ApiVersions at every version boundary, with the raw client.

use std::collections::BTreeMap;

use bytes::BytesMut;
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};
use kafka_protocol::records::Compression;
use runnel_tests::raw::{self, error_code, RawClient, TestRecord};
use runnel_tests::TestBroker;

/// The API version ranges the contract promises (api key -> (min, max)).
fn contract_apis() -> BTreeMap<i16, (i16, i16)> {
    BTreeMap::from([
        (ApiKey::Produce as i16, (3, 11)),
        (ApiKey::Fetch as i16, (4, 12)),
        (ApiKey::ListOffsets as i16, (1, 8)),
        (ApiKey::Metadata as i16, (0, 12)),
        (ApiKey::ApiVersions as i16, (0, 4)),
        (ApiKey::CreateTopics as i16, (2, 7)),
        (ApiKey::DeleteTopics as i16, (1, 6)),
    ])
}

fn connect(broker: &TestBroker) -> RawClient {
    RawClient::connect(broker.addr()).expect("connect")
}

fn produce_ok(c: &mut RawClient, topic: &str, batch: bytes::Bytes) -> i64 {
    let p = c.produce(topic, 0, batch, 1).expect("produce");
    assert_eq!(p.error_code, 0, "produce to {topic}");
    p.base_offset
}

fn meta_cluster_id(broker: &TestBroker) -> String {
    let text = std::fs::read_to_string(broker.data_dir().join("data/meta.properties"))
        .expect("meta.properties in the data dir");
    text.lines()
        .find_map(|l| l.trim().strip_prefix("cluster.id="))
        .expect("cluster.id in meta.properties")
        .trim()
        .to_string()
}

#[test]
fn list_offsets_earliest_and_latest_every_version() {
    let broker = TestBroker::start(&[]);
    let topic = "lo-earliest-latest";
    let mut c = connect(&broker);
    c.create_topic_ok(topic, 1).unwrap();
    for version in 1..=8 {
        let p = c.list_offset_at(version, topic, 0, -2).unwrap();
        assert_eq!(
            (p.error_code, p.offset),
            (0, 0),
            "v{version} earliest of empty"
        );
        let p = c.list_offset_at(version, topic, 0, -1).unwrap();
        assert_eq!(
            (p.error_code, p.offset),
            (0, 0),
            "v{version} latest of empty"
        );
    }
    produce_ok(&mut c, topic, raw::simple_batch(topic, 3));
    produce_ok(&mut c, topic, raw::simple_batch(topic, 2));
    for version in 1..=8 {
        let p = c.list_offset_at(version, topic, 0, -2).unwrap();
        assert_eq!((p.error_code, p.offset), (0, 0), "v{version} earliest");
        let p = c.list_offset_at(version, topic, 0, -1).unwrap();
        assert_eq!((p.error_code, p.offset), (0, 5), "v{version} latest");
        assert_eq!(p.timestamp, -1, "v{version}: latest has no timestamp");
    }
    // Unknown topic / partition.
    let p = c.list_offset_at(8, "no-such-topic", 0, -1).unwrap();
    assert_eq!(p.error_code, error_code::UNKNOWN_TOPIC_OR_PARTITION);
    let p = c.list_offset_at(1, topic, 3, -1).unwrap();
    assert_eq!(p.error_code, error_code::UNKNOWN_TOPIC_OR_PARTITION);
}

#[test]
fn list_offsets_by_timestamp_finds_the_record_inside_a_batch() {
    let broker = TestBroker::start(&[]);
    let topic = "lo-timestamp";
    let mut c = connect(&broker);
    c.create_topic_ok(topic, 1).unwrap();
    let base = raw::now_ms() - 3_600_000;
    let rec = |i: i64| TestRecord::new(None, &format!("r{i}"), base + i * 1000);
    // Offsets 0..=3 in one batch, 4..=5 in a second, compressed one.
    produce_ok(
        &mut c,
        topic,
        raw::encode_batch(&[rec(0), rec(1), rec(2), rec(3)], Compression::None),
    );
    produce_ok(
        &mut c,
        topic,
        raw::encode_batch(&[rec(4), rec(5)], Compression::Gzip),
    );
    for version in 1..=8 {
        let cases = [
            (base - 10_000, 0, base),
            (base, 0, base),
            (base + 1, 1, base + 1000),
            (base + 2000, 2, base + 2000),
            (base + 2500, 3, base + 3000),
            (base + 3000, 3, base + 3000),
            (base + 3001, 4, base + 4000),
            (base + 5000, 5, base + 5000),
        ];
        for (ts, offset, found_ts) in cases {
            let p = c.list_offset_at(version, topic, 0, ts).unwrap();
            assert_eq!(p.error_code, 0, "v{version} ts {}", ts - base);
            assert_eq!(p.offset, offset, "v{version} ts base+{}", ts - base);
            assert_eq!(p.timestamp, found_ts, "v{version} ts base+{}", ts - base);
        }
        // Later than every record: offset -1 (and timestamp -1).
        let p = c.list_offset_at(version, topic, 0, base + 5001).unwrap();
        assert_eq!(p.error_code, 0);
        assert_eq!(
            (p.offset, p.timestamp),
            (-1, -1),
            "v{version}: after all records"
        );
    }
}

#[test]
fn list_offsets_max_timestamp_v7_and_v8() {
    let broker = TestBroker::start(&[]);
    let topic = "lo-max-timestamp";
    let mut c = connect(&broker);
    c.create_topic_ok(topic, 1).unwrap();
    let base = raw::now_ms() - 3_600_000;
    produce_ok(
        &mut c,
        topic,
        raw::encode_batch(
            &[
                TestRecord::new(None, "a", base + 1000),
                TestRecord::new(None, "b", base + 5000),
                TestRecord::new(None, "c", base + 2000),
            ],
            Compression::None,
        ),
    );
    produce_ok(
        &mut c,
        topic,
        raw::encode_batch(
            &[TestRecord::new(None, "d", base + 3000)],
            Compression::None,
        ),
    );
    for version in [7, 8] {
        let p = c.list_offset_at(version, topic, 0, -3).unwrap();
        assert_eq!(p.error_code, 0, "v{version}");
        assert_eq!(
            p.offset, 1,
            "v{version}: offset of the max timestamp record"
        );
        assert_eq!(p.timestamp, base + 5000, "v{version}");
    }
}

#[test]
fn metadata_v0_v1_v9_v12() {
    let broker = TestBroker::start(&[]);
    let port = broker.addr().port() as i32;
    let mut c = connect(&broker);
    c.create_topic_ok("md-one", 1).unwrap();
    c.create_topic_ok("md-three", 3).unwrap();
    let cluster_id = meta_cluster_id(&broker);
    for version in 0..=12 {
        // v0 has no null "all topics"; an empty list means all topics there.
        let resp = if version == 0 {
            let req = MetadataRequest::default().with_topics(Some(vec![]));
            c.request(0, &req).unwrap()
        } else {
            c.metadata(version, None, false).unwrap()
        };
        assert_eq!(resp.brokers.len(), 1, "v{version}");
        let b = &resp.brokers[0];
        assert_eq!(b.node_id.0, 0, "v{version}");
        assert_eq!(b.host.as_str(), "127.0.0.1", "v{version}");
        assert_eq!(b.port, port, "v{version}");
        if version >= 1 {
            assert_eq!(resp.controller_id.0, 0, "v{version}: controller id");
        }
        if version >= 2 {
            assert_eq!(
                resp.cluster_id.as_deref(),
                Some(cluster_id.as_str()),
                "v{version}: cluster id"
            );
        }
        for (name, partitions) in [("md-one", 1), ("md-three", 3)] {
            let t = resp
                .topics
                .iter()
                .find(|t| t.name.as_ref().map(|n| n.0.as_str()) == Some(name))
                .unwrap_or_else(|| panic!("v{version}: {name} missing"));
            assert_eq!(t.error_code, 0);
            assert!(!t.is_internal);
            assert_eq!(t.partitions.len(), partitions, "v{version} {name}");
            let mut idx: Vec<i32> = t.partitions.iter().map(|p| p.partition_index).collect();
            idx.sort();
            assert_eq!(idx, (0..partitions as i32).collect::<Vec<_>>());
            for p in &t.partitions {
                assert_eq!(p.error_code, 0);
                assert_eq!(p.leader_id.0, 0);
                assert_eq!(p.replica_nodes.iter().map(|b| b.0).collect::<Vec<_>>(), [0]);
                assert_eq!(p.isr_nodes.iter().map(|b| b.0).collect::<Vec<_>>(), [0]);
            }
            if version >= 10 {
                assert!(!t.topic_id.is_nil(), "v{version}: {name} topic id");
            }
        }
    }
    // A named topic request returns just that topic.
    let resp = c.metadata(9, Some(&["md-three"]), false).unwrap();
    assert_eq!(resp.topics.len(), 1);
    assert_eq!(resp.topics[0].partitions.len(), 3);
    // v1: empty list = no topics.
    let req = MetadataRequest::default().with_topics(Some(vec![]));
    let resp = c.request(1, &req).unwrap();
    assert!(resp.topics.is_empty(), "v1 empty list means no topics");
}

#[test]
fn topic_ids_are_stable_across_restart() {
    let mut broker = TestBroker::start(&[]);
    let ids = {
        let mut c = connect(&broker);
        c.create_topic_ok("ids-a", 2).unwrap();
        c.create_topic_ok("ids-b", 1).unwrap();
        let resp = c.metadata(12, None, false).unwrap();
        let ids: BTreeMap<String, String> = resp
            .topics
            .iter()
            .map(|t| {
                (
                    t.name.clone().unwrap().0.to_string(),
                    format!("{:?}", t.topic_id),
                )
            })
            .collect();
        assert!(resp.topics.iter().all(|t| !t.topic_id.is_nil()));
        assert_ne!(ids["ids-a"], ids["ids-b"]);
        ids
    };
    let cluster_id = meta_cluster_id(&broker);
    assert!(broker.stop(), "clean stop");
    broker.restart();
    let mut c = connect(&broker);
    for version in [10, 12] {
        let resp = c.metadata(version, None, false).unwrap();
        let after: BTreeMap<String, String> = resp
            .topics
            .iter()
            .map(|t| {
                (
                    t.name.clone().unwrap().0.to_string(),
                    format!("{:?}", t.topic_id),
                )
            })
            .collect();
        assert_eq!(after, ids, "v{version}: topic ids after restart");
        assert_eq!(resp.cluster_id.as_deref(), Some(cluster_id.as_str()));
    }
    assert_eq!(meta_cluster_id(&broker), cluster_id);
}

#[test]
fn metadata_auto_creates_topics_when_allowed() {
    let broker = TestBroker::start(&[("num.partitions", "2")]);
    let mut c = connect(&broker);
    // Not allowed by the request (v4+ has the flag): not created.
    let resp = c.metadata(12, Some(&["auto-no"]), false).unwrap();
    assert_eq!(
        resp.topics[0].error_code,
        error_code::UNKNOWN_TOPIC_OR_PARTITION
    );
    // Allowed: created with num.partitions partitions (possibly after a retriable error).
    for (version, name) in [
        (1, "auto-v1"),
        (4, "auto-v4"),
        (9, "auto-v9"),
        (12, "auto-v12"),
    ] {
        let t = raw::wait_for(std::time::Duration::from_secs(10), || {
            let resp = c.metadata(version, Some(&[name]), true).ok()?;
            let t = resp.topics.into_iter().next()?;
            (t.error_code == 0 && t.partitions.len() == 2).then_some(t)
        })
        .unwrap_or_else(|e| panic!("v{version}: {name} not auto-created: {e}"));
        assert_eq!(t.name.unwrap().0.as_str(), name);
        if version >= 10 {
            assert!(!t.topic_id.is_nil());
        }
    }
    let names: Vec<String> = c
        .metadata(12, None, false)
        .unwrap()
        .topics
        .into_iter()
        .filter_map(|t| t.name.map(|n| n.0.to_string()))
        .collect();
    assert!(!names.contains(&"auto-no".to_string()), "{names:?}");
    for name in ["auto-v1", "auto-v4", "auto-v9", "auto-v12"] {
        assert!(names.contains(&name.to_string()), "{names:?}");
    }
}

#[test]
fn metadata_does_not_auto_create_when_disabled_on_the_broker() {
    let broker = TestBroker::start(&[("auto.create.topics.enable", "false")]);
    let mut c = connect(&broker);
    for version in [1, 4, 12] {
        let resp = c.metadata(version, Some(&["never-created"]), true).unwrap();
        assert_eq!(
            resp.topics[0].error_code,
            error_code::UNKNOWN_TOPIC_OR_PARTITION,
            "v{version}"
        );
    }
    let resp = c.metadata(12, None, false).unwrap();
    assert!(resp.topics.is_empty(), "{resp:?}");
}

fn advertised(resp: &ApiVersionsResponse) -> BTreeMap<i16, (i16, i16)> {
    let mut map = BTreeMap::new();
    for k in &resp.api_keys {
        assert!(
            map.insert(k.api_key, (k.min_version, k.max_version))
                .is_none(),
            "api key {} listed twice",
            k.api_key
        );
    }
    map
}

#[test]
fn api_versions_v0_to_v4_list_the_contract_ranges() {
    let broker = TestBroker::start(&[]);
    let mut c = connect(&broker);
    let contract = contract_apis();
    let mut tables = Vec::new();
    for version in 0..=4 {
        let req = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("runnel-tests"))
            .with_client_software_version(StrBytes::from_static_str("1.0"));
        let resp = c
            .request(version, &req)
            .unwrap_or_else(|e| panic!("ApiVersions v{version}: {e:#}"));
        assert_eq!(resp.error_code, 0, "v{version}");
        let table = advertised(&resp);
        for (key, range) in &contract {
            assert_eq!(
                table.get(key),
                Some(range),
                "v{version}: api key {key} ({:?})",
                ApiKey::try_from(*key)
            );
        }
        for (key, (min, max)) in &table {
            assert!(min <= max, "api key {key}: {min}..{max}");
        }
        tables.push(table);
    }
    assert!(
        tables.windows(2).all(|w| w[0] == w[1]),
        "same table at every version"
    );
    let extra: Vec<_> = tables[0]
        .keys()
        .filter(|k| !contract.contains_key(k))
        .collect();
    eprintln!("APIs advertised beyond the contract: {extra:?}");
}

fn default_body<T: Encodable + Default>(version: i16) -> anyhow::Result<Vec<u8>> {
    let mut buf = BytesMut::new();
    T::default().encode(&mut buf, version)?;
    Ok(buf.to_vec())
}

/// A minimal request body for APIs beyond the contract (default field values).
fn default_request_body(key: ApiKey, version: i16) -> anyhow::Result<Vec<u8>> {
    macro_rules! bodies {
        ($($name:ident => $ty:ty),* $(,)?) => {
            match key {
                $(ApiKey::$name => default_body::<$ty>(version),)*
                other => anyhow::bail!("no default request for {other:?}"),
            }
        };
    }
    bodies!(
        OffsetCommit => OffsetCommitRequest,
        OffsetFetch => OffsetFetchRequest,
        FindCoordinator => FindCoordinatorRequest,
        JoinGroup => JoinGroupRequest,
        Heartbeat => HeartbeatRequest,
        LeaveGroup => LeaveGroupRequest,
        SyncGroup => SyncGroupRequest,
        DescribeGroups => DescribeGroupsRequest,
        ListGroups => ListGroupsRequest,
        SaslHandshake => SaslHandshakeRequest,
        DeleteRecords => DeleteRecordsRequest,
        InitProducerId => InitProducerIdRequest,
        OffsetForLeaderEpoch => OffsetForLeaderEpochRequest,
        AddPartitionsToTxn => AddPartitionsToTxnRequest,
        AddOffsetsToTxn => AddOffsetsToTxnRequest,
        EndTxn => EndTxnRequest,
        TxnOffsetCommit => TxnOffsetCommitRequest,
        DescribeAcls => DescribeAclsRequest,
        CreateAcls => CreateAclsRequest,
        DeleteAcls => DeleteAclsRequest,
        DescribeConfigs => DescribeConfigsRequest,
        AlterConfigs => AlterConfigsRequest,
        DescribeLogDirs => DescribeLogDirsRequest,
        SaslAuthenticate => SaslAuthenticateRequest,
        CreatePartitions => CreatePartitionsRequest,
        DeleteGroups => DeleteGroupsRequest,
        ElectLeaders => ElectLeadersRequest,
        IncrementalAlterConfigs => IncrementalAlterConfigsRequest,
        ListPartitionReassignments => ListPartitionReassignmentsRequest,
        OffsetDelete => OffsetDeleteRequest,
        DescribeClientQuotas => DescribeClientQuotasRequest,
        DescribeUserScramCredentials => DescribeUserScramCredentialsRequest,
        DescribeCluster => DescribeClusterRequest,
        DescribeProducers => DescribeProducersRequest,
        DescribeTransactions => DescribeTransactionsRequest,
        ListTransactions => ListTransactionsRequest,
        ConsumerGroupHeartbeat => ConsumerGroupHeartbeatRequest,
        ConsumerGroupDescribe => ConsumerGroupDescribeRequest,
        GetTelemetrySubscriptions => GetTelemetrySubscriptionsRequest,
        DescribeTopicPartitions => DescribeTopicPartitionsRequest,
    )
}

#[test]
fn every_advertised_api_answers_a_minimal_request_at_its_max_version() {
    let broker = TestBroker::start(&[]);
    let mut c = connect(&broker);
    c.create_topic_ok("probe", 1).unwrap();
    c.create_topic_ok("probe-delete", 1).unwrap();
    let table = advertised(&c.api_versions().unwrap());
    for (&key, &(_, max)) in &table {
        let api = ApiKey::try_from(key).unwrap_or_else(|_| panic!("unknown api key {key}"));
        // Each probe on its own connection so a close is attributed to the right API.
        let mut p = connect(&broker);
        let body: Vec<u8> = match api {
            ApiKey::Produce => {
                let req = raw::produce_request("probe", 0, raw::simple_batch("probe", 1), 1);
                let mut b = BytesMut::new();
                req.encode(&mut b, max).unwrap();
                b.to_vec()
            }
            ApiKey::Fetch => {
                let req = FetchRequest::default()
                    .with_topics(vec![raw::fetch_topic("probe", &[(0, 0, 1 << 20)])]);
                let mut b = BytesMut::new();
                req.encode(&mut b, max).unwrap();
                b.to_vec()
            }
            ApiKey::ListOffsets => {
                let req = ListOffsetsRequest::default().with_topics(vec![
                    list_offsets_request::ListOffsetsTopic::default()
                        .with_name(raw::topic_name("probe"))
                        .with_partitions(vec![
                            list_offsets_request::ListOffsetsPartition::default()
                                .with_timestamp(-1),
                        ]),
                ]);
                let mut b = BytesMut::new();
                req.encode(&mut b, max).unwrap();
                b.to_vec()
            }
            ApiKey::Metadata => default_body::<MetadataRequest>(max).unwrap(),
            ApiKey::ApiVersions => {
                let req = ApiVersionsRequest::default()
                    .with_client_software_name(StrBytes::from_static_str("runnel-tests"))
                    .with_client_software_version(StrBytes::from_static_str("1.0"));
                let mut b = BytesMut::new();
                req.encode(&mut b, max).unwrap();
                b.to_vec()
            }
            ApiKey::CreateTopics => {
                let req = CreateTopicsRequest::default()
                    .with_timeout_ms(10_000)
                    .with_topics(vec![create_topics_request::CreatableTopic::default()
                        .with_name(raw::topic_name("probe-created"))
                        .with_num_partitions(1)
                        .with_replication_factor(1)]);
                let mut b = BytesMut::new();
                req.encode(&mut b, max).unwrap();
                b.to_vec()
            }
            ApiKey::DeleteTopics => {
                let mut req = DeleteTopicsRequest::default().with_timeout_ms(10_000);
                if max >= 6 {
                    req.topics = vec![DeleteTopicState::default()
                        .with_name(Some(raw::topic_name("probe-delete")))];
                } else {
                    req.topic_names = vec![raw::topic_name("probe-delete")];
                }
                let mut b = BytesMut::new();
                req.encode(&mut b, max).unwrap();
                b.to_vec()
            }
            other => default_request_body(other, max)
                .unwrap_or_else(|e| panic!("{other:?} v{max}: {e:#}")),
        };
        let resp = p
            .request_any(api, max, &body, max)
            .unwrap_or_else(|e| panic!("{api:?} v{max}: no valid response: {e:#}"));
        match resp {
            ResponseKind::Produce(r) => {
                assert_eq!(r.responses[0].partition_responses[0].error_code, 0)
            }
            ResponseKind::Fetch(r) => assert_eq!(r.error_code, 0),
            ResponseKind::ListOffsets(r) => {
                assert_eq!(r.topics[0].partitions[0].error_code, 0)
            }
            ResponseKind::ApiVersions(r) => assert_eq!(r.error_code, 0),
            ResponseKind::CreateTopics(r) => assert_eq!(r.topics[0].error_code, 0),
            ResponseKind::DeleteTopics(r) => assert_eq!(r.responses[0].error_code, 0),
            _ => {}
        }
        // The connection is still open and usable.
        let av = p
            .api_versions()
            .unwrap_or_else(|e| panic!("after {api:?} v{max}: connection unusable: {e:#}"));
        assert_eq!(av.error_code, 0);
    }
}
