//! Fetch protocol semantics, checked with the raw client: long polling, size limits (KIP-74),
//! read_committed offsets, errors, and incremental fetch sessions (KIP-227), at the version
//! boundaries the broker advertises (Fetch v4..=12; v12 is the first flexible version).

use std::time::{Duration, Instant};

use kafka_protocol::messages::fetch_request::ForgottenTopic;
use kafka_protocol::messages::{FetchRequest, FetchResponse};
use runnel_tests::raw::{self, error_code, RawClient};
use runnel_tests::TestBroker;

fn connect(broker: &TestBroker) -> RawClient {
    RawClient::connect(broker.addr()).expect("connect")
}

fn fetch_request(topic: &str, partitions: &[(i32, i64, i32)]) -> FetchRequest {
    FetchRequest::default()
        .with_max_wait_ms(0)
        .with_min_bytes(0)
        .with_max_bytes(16 * 1024 * 1024)
        .with_topics(vec![raw::fetch_topic(topic, partitions)])
}

fn produce_ok(c: &mut RawClient, topic: &str, partition: i32, batch: bytes::Bytes) -> i64 {
    let p = c.produce(topic, partition, batch, 1).expect("produce");
    assert_eq!(p.error_code, 0, "produce to {topic}-{partition}");
    p.base_offset
}

fn partition_values(resp: &FetchResponse, topic: &str, partition: i32) -> Vec<(i64, String)> {
    let p = raw::find_partition(resp, topic, partition)
        .unwrap_or_else(|| panic!("{topic}-{partition} missing from {resp:?}"));
    raw::record_values(&p.records).expect("decode records")
}

#[test]
fn fetch_every_version_returns_records_and_offsets() {
    let broker = TestBroker::start(&[]);
    let mut c = connect(&broker);
    let topic = "fetch-versions";
    c.create_topic_ok(topic, 1).unwrap();
    produce_ok(&mut c, topic, 0, raw::simple_batch(topic, 3));
    produce_ok(&mut c, topic, 0, raw::simple_batch("second", 2));
    for version in 4..=12 {
        let resp = c
            .request(version, &fetch_request(topic, &[(0, 0, 1 << 20)]))
            .unwrap_or_else(|e| panic!("fetch v{version}: {e:#}"));
        assert_eq!(resp.error_code, 0, "v{version}");
        if version >= 7 {
            assert_eq!(resp.session_id, 0, "v{version}: sessionless fetch");
        }
        let p = raw::find_partition(&resp, topic, 0).expect("partition");
        assert_eq!(p.error_code, 0, "v{version}");
        assert_eq!(p.high_watermark, 5, "v{version}");
        assert_eq!(p.last_stable_offset, 5, "v{version}");
        if version >= 5 {
            assert_eq!(p.log_start_offset, 0, "v{version}");
        }
        let values = partition_values(&resp, topic, 0);
        assert_eq!(
            values,
            vec![
                (0, format!("{topic}-0")),
                (1, format!("{topic}-1")),
                (2, format!("{topic}-2")),
                (3, "second-0".to_string()),
                (4, "second-1".to_string()),
            ],
            "v{version}"
        );
        // From the middle of the log: whole batches are returned, starting with the one that
        // contains the fetch offset.
        let resp = c
            .request(version, &fetch_request(topic, &[(0, 4, 1 << 20)]))
            .unwrap();
        let values = partition_values(&resp, topic, 0);
        assert!(
            values.iter().any(|(o, v)| *o == 4 && v == "second-1"),
            "v{version}: {values:?}"
        );
        assert!(
            values.iter().all(|(o, _)| *o >= 3),
            "v{version}: {values:?}"
        );
    }
}

#[test]
fn long_poll_returns_soon_after_another_connection_produces() {
    let broker = TestBroker::start(&[]);
    let topic = "long-poll-wakeup";
    let mut c = connect(&broker);
    c.create_topic_ok(topic, 1).unwrap();
    produce_ok(&mut c, topic, 0, raw::simple_batch("before", 2));
    for version in [4, 12] {
        let leo = c.log_end_offset(topic, 0).unwrap();
        let req = fetch_request(topic, &[(0, leo, 1 << 20)])
            .with_max_wait_ms(5000)
            .with_min_bytes(1);
        let addr = broker.addr();
        let value = format!("wake-v{version}");
        let producer = std::thread::spawn({
            let value = value.clone();
            move || {
                std::thread::sleep(Duration::from_millis(700));
                let mut p = RawClient::connect(addr).unwrap();
                let at = Instant::now();
                let r = p
                    .produce(topic, 0, raw::simple_batch(&value, 1), 1)
                    .unwrap();
                assert_eq!(r.error_code, 0);
                at
            }
        });
        let start = Instant::now();
        let resp = c.request(version, &req).expect("long-poll fetch");
        let returned = Instant::now();
        let produced_at = producer.join().unwrap();
        assert_eq!(resp.error_code, 0);
        let waited_after_produce = returned.saturating_duration_since(produced_at);
        assert!(
            waited_after_produce < Duration::from_millis(1500),
            "v{version}: fetch returned {waited_after_produce:?} after the produce (total {:?})",
            returned - start
        );
        assert!(returned - start < Duration::from_millis(4500));
        let values = partition_values(&resp, topic, 0);
        assert_eq!(values, vec![(leo, format!("{value}-0"))], "v{version}");
    }
}

#[test]
fn long_poll_without_data_waits_max_wait_and_returns_empty() {
    let broker = TestBroker::start(&[]);
    let topic = "long-poll-timeout";
    let mut c = connect(&broker);
    c.create_topic_ok(topic, 1).unwrap();
    produce_ok(&mut c, topic, 0, raw::simple_batch("x", 1));
    for version in [4, 11, 12] {
        let req = fetch_request(topic, &[(0, 1, 1 << 20)])
            .with_max_wait_ms(2000)
            .with_min_bytes(1);
        let start = Instant::now();
        let resp = c.request(version, &req).expect("fetch");
        let elapsed = start.elapsed();
        assert!(
            elapsed >= Duration::from_millis(1800),
            "v{version}: returned after {elapsed:?}, before max_wait"
        );
        assert!(elapsed < Duration::from_secs(6), "v{version}: {elapsed:?}");
        assert_eq!(resp.error_code, 0);
        let p = raw::find_partition(&resp, topic, 0).expect("partition");
        assert_eq!(p.error_code, 0);
        assert_eq!(p.high_watermark, 1);
        assert_eq!(raw::records_len(&p.records), 0, "v{version}: records");
    }
}

#[test]
fn min_bytes_larger_than_available_waits_then_returns_what_is_there() {
    let broker = TestBroker::start(&[]);
    let topic = "min-bytes";
    let mut c = connect(&broker);
    c.create_topic_ok(topic, 1).unwrap();
    produce_ok(&mut c, topic, 0, raw::simple_batch(topic, 2));
    for version in [4, 12] {
        let req = fetch_request(topic, &[(0, 0, 1 << 20)])
            .with_max_wait_ms(1500)
            .with_min_bytes(1_000_000);
        let start = Instant::now();
        let resp = c.request(version, &req).expect("fetch");
        let elapsed = start.elapsed();
        assert!(
            elapsed >= Duration::from_millis(1350),
            "v{version}: returned after {elapsed:?} although min_bytes was not reached"
        );
        assert!(elapsed < Duration::from_secs(6));
        assert_eq!(
            partition_values(&resp, topic, 0),
            vec![(0, format!("{topic}-0")), (1, format!("{topic}-1"))]
        );
    }
    // min_bytes reached immediately: no wait. The bound is half of max_wait, so a loaded
    // CI machine has room and a broker that waits out max_wait still fails.
    let req = fetch_request(topic, &[(0, 0, 1 << 20)])
        .with_max_wait_ms(5000)
        .with_min_bytes(10);
    let start = Instant::now();
    c.request(12, &req).unwrap();
    assert!(start.elapsed() < Duration::from_millis(2500));
}

#[test]
fn partition_max_bytes_smaller_than_first_batch_returns_that_whole_batch() {
    let broker = TestBroker::start(&[]);
    let topic = "kip-74";
    let mut c = connect(&broker);
    c.create_topic_ok(topic, 1).unwrap();
    let first = raw::sized_batch(4, 500);
    let first_len = first.len();
    produce_ok(&mut c, topic, 0, first);
    produce_ok(&mut c, topic, 0, raw::sized_batch(2, 500));
    for version in [4, 7, 11, 12] {
        let resp = c
            .request(version, &fetch_request(topic, &[(0, 0, 100)]))
            .unwrap();
        let p = raw::find_partition(&resp, topic, 0).unwrap();
        assert_eq!(p.error_code, 0);
        let records = p.records.clone().unwrap_or_default();
        let headers = raw::batch_headers(&records);
        assert_eq!(headers.len(), 1, "v{version}: exactly the first batch");
        assert_eq!(headers[0].base_offset, 0);
        assert_eq!(headers[0].record_count, 4);
        assert_eq!(
            records.len(),
            first_len,
            "v{version}: only the first batch, nothing more"
        );
        // Same with max_bytes smaller than the first batch.
        let resp = c
            .request(
                version,
                &fetch_request(topic, &[(0, 0, 1 << 20)]).with_max_bytes(10),
            )
            .unwrap();
        let p = raw::find_partition(&resp, topic, 0).unwrap();
        let records = p.records.clone().unwrap_or_default();
        assert_eq!(raw::batch_headers(&records).len(), 1, "v{version}");
        assert_eq!(records.len(), first_len, "v{version}: max_bytes=10");
    }
}

#[test]
fn max_bytes_limits_the_total_across_partitions() {
    let broker = TestBroker::start(&[]);
    let topic = "max-bytes";
    let mut c = connect(&broker);
    c.create_topic_ok(topic, 3).unwrap();
    let batch_len = raw::sized_batch(1, 1000).len();
    for partition in 0..3 {
        for _ in 0..3 {
            produce_ok(&mut c, topic, partition, raw::sized_batch(1, 1000));
        }
    }
    let partitions: Vec<(i32, i64, i32)> = (0..3).map(|p| (p, 0, 1 << 20)).collect();
    for version in [4, 12] {
        // Everything fits.
        let resp = c
            .request(version, &fetch_request(topic, &partitions))
            .unwrap();
        let total: usize = (0..3)
            .map(|p| raw::records_len(&raw::find_partition(&resp, topic, p).unwrap().records))
            .sum();
        assert_eq!(total, 9 * batch_len, "v{version}");
        // A limit of 4.5 batches.
        let limit = batch_len * 9 / 2;
        let resp = c
            .request(
                version,
                &fetch_request(topic, &partitions).with_max_bytes(limit as i32),
            )
            .unwrap();
        let mut total = 0;
        let mut complete_batches = 0;
        for p in 0..3 {
            if let Some(pd) = raw::find_partition(&resp, topic, p) {
                assert_eq!(pd.error_code, 0);
                total += raw::records_len(&pd.records);
                complete_batches +=
                    raw::batch_headers(&pd.records.clone().unwrap_or_default()).len();
            }
        }
        assert!(
            total <= limit,
            "v{version}: {total} bytes returned with max_bytes {limit}"
        );
        assert!(
            complete_batches >= 4,
            "v{version}: only {complete_batches} batches"
        );
        // The first partition gets all its data first.
        let p0 = raw::find_partition(&resp, topic, 0).unwrap();
        assert_eq!(raw::records_len(&p0.records), 3 * batch_len, "v{version}");
    }
}

#[test]
fn read_committed_offsets_and_aborted_transactions() {
    let broker = TestBroker::start(&[]);
    let topic = "read-committed";
    let mut c = connect(&broker);
    c.create_topic_ok(topic, 1).unwrap();
    produce_ok(&mut c, topic, 0, raw::simple_batch(topic, 3));
    for version in 4..=12 {
        let req = fetch_request(topic, &[(0, 0, 1 << 20)]).with_isolation_level(1);
        let resp = c.request(version, &req).unwrap();
        let p = raw::find_partition(&resp, topic, 0).unwrap();
        assert_eq!(p.error_code, 0, "v{version}");
        assert_eq!(p.high_watermark, 3, "v{version}");
        assert_eq!(p.last_stable_offset, p.high_watermark, "v{version}");
        assert_eq!(
            p.aborted_transactions,
            Some(vec![]),
            "v{version}: aborted_transactions must be an empty list, not null"
        );
        if version >= 5 {
            assert_eq!(p.log_start_offset, 0, "v{version}");
        }
        assert_eq!(partition_values(&resp, topic, 0).len(), 3);
    }
}

#[test]
fn fetch_offset_beyond_log_end_is_out_of_range() {
    let broker = TestBroker::start(&[]);
    let topic = "out-of-range";
    let mut c = connect(&broker);
    c.create_topic_ok(topic, 1).unwrap();
    produce_ok(&mut c, topic, 0, raw::simple_batch(topic, 2));
    for version in [4, 12] {
        for offset in [3, 100, i64::MAX / 2, -5] {
            let resp = c
                .request(version, &fetch_request(topic, &[(0, offset, 1 << 20)]))
                .unwrap();
            let p = raw::find_partition(&resp, topic, 0).unwrap();
            assert_eq!(
                p.error_code,
                error_code::OFFSET_OUT_OF_RANGE,
                "v{version} offset {offset}"
            );
            assert_eq!(raw::records_len(&p.records), 0);
        }
        // Exactly the log end offset is valid (empty).
        let resp = c
            .request(version, &fetch_request(topic, &[(0, 2, 1 << 20)]))
            .unwrap();
        assert_eq!(raw::find_partition(&resp, topic, 0).unwrap().error_code, 0);
    }
}

#[test]
fn fetch_of_unknown_topic_or_partition() {
    let broker = TestBroker::start(&[]);
    let mut c = connect(&broker);
    c.create_topic_ok("known", 1).unwrap();
    for version in [4, 12] {
        let resp = c
            .request(version, &fetch_request("no-such-topic", &[(0, 0, 1 << 20)]))
            .unwrap();
        assert_eq!(resp.error_code, 0);
        let p = raw::find_partition(&resp, "no-such-topic", 0).expect("partition listed");
        assert_eq!(
            p.error_code,
            error_code::UNKNOWN_TOPIC_OR_PARTITION,
            "v{version}"
        );
        let resp = c
            .request(version, &fetch_request("known", &[(5, 0, 1 << 20)]))
            .unwrap();
        let p = raw::find_partition(&resp, "known", 5).expect("partition listed");
        assert_eq!(
            p.error_code,
            error_code::UNKNOWN_TOPIC_OR_PARTITION,
            "v{version}"
        );
    }
    // Fetch does not auto-create.
    let md = c.metadata(12, None, false).unwrap();
    assert!(md
        .topics
        .iter()
        .all(|t| t.name.as_ref().map(|n| n.0.as_str()) != Some("no-such-topic")));
}

fn fetch_sessions(version: i16) {
    let broker = TestBroker::start(&[]);
    let topic = "sessions";
    let mut c = connect(&broker);
    c.create_topic_ok(topic, 2).unwrap();
    let both = [(0, 0, 1 << 20), (1, 0, 1 << 20)];

    // Sessionless.
    let resp = c.request(version, &fetch_request(topic, &both)).unwrap();
    assert_eq!(resp.error_code, 0);
    assert_eq!(
        resp.session_id, 0,
        "v{version}: sessionless fetch has no session"
    );

    // Create a session: full response with every partition.
    let req = fetch_request(topic, &both)
        .with_session_id(0)
        .with_session_epoch(0);
    let resp = c.request(version, &req).unwrap();
    assert_eq!(resp.error_code, 0);
    let session = resp.session_id;
    assert_ne!(session, 0, "v{version}: a session was created");
    for p in 0..2 {
        let pd = raw::find_partition(&resp, topic, p).expect("full response has all partitions");
        assert_eq!(pd.error_code, 0);
        assert_eq!(pd.high_watermark, 0);
    }

    // New data on partition 1 only: the incremental response has partition 1, not 0.
    produce_ok(&mut c, topic, 1, raw::simple_batch("p1", 2));
    let req = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_session_id(session)
        .with_session_epoch(1);
    let resp = c.request(version, &req).unwrap();
    assert_eq!(resp.error_code, 0, "v{version}: incremental fetch");
    assert_eq!(resp.session_id, session);
    assert_eq!(
        partition_values(&resp, topic, 1),
        vec![(0, "p1-0".to_string()), (1, "p1-1".to_string())],
        "v{version}"
    );
    assert!(
        raw::find_partition(&resp, topic, 0).is_none(),
        "v{version}: partition 0 has nothing new and must be omitted: {resp:?}"
    );

    // Forget partition 1 (and move nothing else); new data on both partitions.
    produce_ok(&mut c, topic, 0, raw::simple_batch("p0", 1));
    produce_ok(&mut c, topic, 1, raw::simple_batch("p1-again", 1));
    let req = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_session_id(session)
        .with_session_epoch(2)
        .with_forgotten_topics_data(vec![ForgottenTopic::default()
            .with_topic(raw::topic_name(topic))
            .with_partitions(vec![1])]);
    let resp = c.request(version, &req).unwrap();
    assert_eq!(resp.error_code, 0, "v{version}: forget");
    assert_eq!(
        partition_values(&resp, topic, 0),
        vec![(0, "p0-0".to_string())],
        "v{version}"
    );
    assert!(
        raw::find_partition(&resp, topic, 1).is_none(),
        "v{version}: forgotten partition 1 still returned: {resp:?}"
    );

    // Partition 1 is gone from the session for good; partition 0 moves to its end.
    produce_ok(&mut c, topic, 1, raw::simple_batch("p1-third", 1));
    let req = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_session_id(session)
        .with_session_epoch(3)
        .with_topics(vec![raw::fetch_topic(topic, &[(0, 1, 1 << 20)])]);
    let resp = c.request(version, &req).unwrap();
    assert_eq!(resp.error_code, 0);
    assert!(raw::find_partition(&resp, topic, 1).is_none(), "v{version}");

    // Unknown session id.
    let req = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_session_id(session.wrapping_add(7919))
        .with_session_epoch(1);
    let resp = c.request(version, &req).unwrap();
    assert_eq!(
        resp.error_code,
        error_code::FETCH_SESSION_ID_NOT_FOUND,
        "v{version}: unknown session"
    );

    // Wrong epoch (the next one is 4).
    let req = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_session_id(session)
        .with_session_epoch(9);
    let resp = c.request(version, &req).unwrap();
    assert_eq!(
        resp.error_code,
        error_code::INVALID_FETCH_SESSION_EPOCH,
        "v{version}: wrong epoch"
    );
}

#[test]
fn fetch_sessions_v7_first_session_version() {
    fetch_sessions(7);
}

#[test]
fn fetch_sessions_v11_last_non_flexible_version() {
    fetch_sessions(11);
}

#[test]
fn fetch_sessions_v12_flexible() {
    fetch_sessions(12);
}

#[test]
fn fetch_session_fields_ignored_before_v7() {
    // v4..=6 have no session fields: every fetch is a full fetch.
    let broker = TestBroker::start(&[]);
    let topic = "pre-sessions";
    let mut c = connect(&broker);
    c.create_topic_ok(topic, 1).unwrap();
    produce_ok(&mut c, topic, 0, raw::simple_batch(topic, 1));
    for version in 4..=6 {
        let resp = c
            .request(version, &fetch_request(topic, &[(0, 0, 1 << 20)]))
            .unwrap();
        assert_eq!(partition_values(&resp, topic, 0).len(), 1, "v{version}");
    }
}

#[test]
fn produce_every_version_then_fetch_everything() {
    // Produce v3..=11 (v9 is the first flexible version), each batch read back by Fetch v4
    // (oldest) and v12 (newest).
    let broker = TestBroker::start(&[]);
    let topic = "produce-versions";
    let mut c = connect(&broker);
    c.create_topic_ok(topic, 1).unwrap();
    let mut expected = Vec::new();
    for (i, version) in (3..=11).enumerate() {
        let value = format!("produce-v{version}");
        let p = c
            .produce_at(version, topic, 0, raw::simple_batch(&value, 1), 1)
            .unwrap_or_else(|e| panic!("produce v{version}: {e:#}"));
        assert_eq!(p.error_code, 0, "produce v{version}");
        assert_eq!(p.base_offset, i as i64, "produce v{version}");
        if version >= 5 {
            assert_eq!(p.log_start_offset, 0, "produce v{version}");
        }
        expected.push((i as i64, format!("{value}-0")));
    }
    for version in [4, 12] {
        let resp = c
            .request(version, &fetch_request(topic, &[(0, 0, 1 << 20)]))
            .unwrap();
        assert_eq!(
            partition_values(&resp, topic, 0),
            expected,
            "fetch v{version}"
        );
    }
}
