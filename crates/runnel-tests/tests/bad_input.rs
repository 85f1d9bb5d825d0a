//! Malformed, invalid and hostile input: the broker answers with the right Kafka error code or
//! closes the offending connection, and afterwards still serves well-behaved clients with the
//! data written before intact.

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreateTopicsRequest};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ProduceRequest, ResponseHeader};
use kafka_protocol::messages::{FetchRequest, MetadataRequest, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use runnel_tests::raw::{self, error_code, RawClient, SeededData};
use runnel_tests::TestBroker;

const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

const INVALID_TOPIC_NAMES: &[&str] = &["", ".", "..", "a b", "foo$"];

fn invalid_topic_names() -> Vec<String> {
    let mut names: Vec<String> = INVALID_TOPIC_NAMES.iter().map(|s| s.to_string()).collect();
    names.push("a".repeat(250));
    names
}

fn start(overrides: &[(&str, &str)], seed_topic: &str) -> (TestBroker, SeededData) {
    let broker = TestBroker::start(overrides);
    let seeded = raw::seed_data(broker.addr(), seed_topic, 3).expect("seed data");
    (broker, seeded)
}

fn connect(broker: &TestBroker) -> RawClient {
    RawClient::connect(broker.addr()).unwrap_or_else(|e| {
        let log = broker.log();
        // Skip backtrace frames (the test environment may set RUST_BACKTRACE).
        let tail: Vec<&str> = log
            .lines()
            .filter(|l| !l.starts_with(' '))
            .rev()
            .take(15)
            .collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        panic!(
            "cannot connect to the broker ({e:#}); did it crash? log tail:\n{}",
            tail.join("\n")
        )
    })
}

fn all_topic_names(c: &mut RawClient) -> Vec<String> {
    c.metadata(raw::METADATA_VERSION, None, false)
        .expect("metadata")
        .topics
        .into_iter()
        .filter_map(|t| t.name.map(|n| n.0.to_string()))
        .collect()
}

#[test]
fn invalid_topic_names_in_produce() {
    let (broker, seeded) = start(&[], "seed-produce-names");
    let mut c = connect(&broker);
    for name in invalid_topic_names() {
        let p = c
            .produce(&name, 0, raw::simple_batch("bad", 1), 1)
            .unwrap_or_else(|e| panic!("produce to {name:?}: {e:#}"));
        assert_eq!(
            p.error_code,
            error_code::INVALID_TOPIC_EXCEPTION,
            "produce to invalid topic {name:?}"
        );
    }
    let topics = all_topic_names(&mut c);
    for name in invalid_topic_names() {
        assert!(
            !topics.contains(&name),
            "invalid topic {name:?} was created"
        );
    }
    raw::assert_broker_healthy(broker.addr(), &seeded);
}

#[test]
fn invalid_topic_names_in_metadata_auto_create() {
    let (broker, seeded) = start(&[], "seed-metadata-names");
    let mut c = connect(&broker);
    for version in [1, 4, 9, 12] {
        for name in invalid_topic_names() {
            let resp = c
                .metadata(version, Some(&[name.as_str()]), true)
                .unwrap_or_else(|e| panic!("metadata v{version} for {name:?}: {e:#}"));
            assert_eq!(resp.topics.len(), 1, "v{version} {name:?}: {resp:?}");
            assert_eq!(
                resp.topics[0].error_code,
                error_code::INVALID_TOPIC_EXCEPTION,
                "metadata v{version} for invalid topic {name:?}"
            );
            assert!(resp.topics[0].partitions.is_empty());
        }
    }
    let topics = all_topic_names(&mut c);
    for name in invalid_topic_names() {
        assert!(
            !topics.contains(&name),
            "invalid topic {name:?} was created"
        );
    }
    raw::assert_broker_healthy(broker.addr(), &seeded);
}

#[test]
fn invalid_topic_names_in_create_topics() {
    let (broker, seeded) = start(&[], "seed-create-names");
    let mut c = connect(&broker);
    for version in [2, 4, 5, 7] {
        let req = CreateTopicsRequest::default()
            .with_timeout_ms(10_000)
            .with_topics(
                invalid_topic_names()
                    .iter()
                    .map(|n| {
                        CreatableTopic::default()
                            .with_name(raw::topic_name(n))
                            .with_num_partitions(1)
                            .with_replication_factor(1)
                    })
                    .collect(),
            );
        let resp = c
            .request(version, &req)
            .unwrap_or_else(|e| panic!("create topics v{version}: {e:#}"));
        assert_eq!(resp.topics.len(), invalid_topic_names().len());
        for t in &resp.topics {
            assert_eq!(
                t.error_code,
                error_code::INVALID_TOPIC_EXCEPTION,
                "create topics v{version}: {:?}",
                t.name
            );
        }
    }
    let topics = all_topic_names(&mut c);
    for name in invalid_topic_names() {
        assert!(
            !topics.contains(&name),
            "invalid topic {name:?} was created"
        );
    }
    raw::assert_broker_healthy(broker.addr(), &seeded);
}

#[test]
fn unknown_topic_without_auto_create_in_produce() {
    let (broker, seeded) = start(
        &[("auto.create.topics.enable", "false")],
        "seed-noauto-produce",
    );
    let mut c = connect(&broker);
    for version in [3, 9, 11] {
        let p = c
            .produce_at(version, "no-such-topic", 0, raw::simple_batch("x", 1), 1)
            .expect("produce");
        assert_eq!(
            p.error_code,
            error_code::UNKNOWN_TOPIC_OR_PARTITION,
            "produce v{version}"
        );
    }
    // Unknown partition of an existing topic, too.
    let p = c
        .produce(&seeded.topic, 7, raw::simple_batch("x", 1), 1)
        .expect("produce");
    assert_eq!(p.error_code, error_code::UNKNOWN_TOPIC_OR_PARTITION);
    assert!(!all_topic_names(&mut c).contains(&"no-such-topic".to_string()));
    raw::assert_broker_healthy(broker.addr(), &seeded);
}

#[test]
fn unknown_topic_without_auto_create_in_metadata() {
    let (broker, seeded) = start(
        &[("auto.create.topics.enable", "false")],
        "seed-noauto-metadata",
    );
    let mut c = connect(&broker);
    for version in [0, 4, 9, 12] {
        let resp = c
            .metadata(version, Some(&["no-such-topic"]), true)
            .expect("metadata");
        assert_eq!(resp.topics.len(), 1);
        assert_eq!(
            resp.topics[0].error_code,
            error_code::UNKNOWN_TOPIC_OR_PARTITION,
            "metadata v{version}"
        );
    }
    assert!(!all_topic_names(&mut c).contains(&"no-such-topic".to_string()));
    raw::assert_broker_healthy(broker.addr(), &seeded);
}

#[test]
fn batch_larger_than_message_max_bytes() {
    let (broker, seeded) = start(&[("message.max.bytes", "10000")], "seed-too-large");
    let mut c = connect(&broker);
    let topic = &seeded.topic;
    let big = raw::sized_batch(1, 20_000);
    assert!(big.len() > 10_000);
    let p = c.produce(topic, 0, big, 1).expect("produce");
    assert_eq!(p.error_code, error_code::MESSAGE_TOO_LARGE);
    assert_eq!(c.log_end_offset(topic, 0).unwrap(), 3, "nothing appended");
    // Many small records adding up to more than the limit in one batch: still too large.
    let many = raw::sized_batch(50, 300);
    assert!(many.len() > 10_000);
    let p = c.produce(topic, 0, many, 1).expect("produce");
    assert_eq!(p.error_code, error_code::MESSAGE_TOO_LARGE);
    // A batch under the limit is accepted.
    let small = raw::sized_batch(1, 5_000);
    let p = c.produce(topic, 0, small, 1).expect("produce");
    assert_eq!(p.error_code, error_code::NONE);
    assert_eq!(p.base_offset, 3);
    assert_eq!(c.log_end_offset(topic, 0).unwrap(), 4);
    let seeded_now = seeded.followed_by(["x".repeat(5_000)]);
    raw::assert_broker_healthy(broker.addr(), &seeded_now);
}

#[test]
fn corrupt_crc_is_rejected_and_nothing_appended() {
    let (broker, seeded) = start(&[], "seed-corrupt-crc");
    let mut c = connect(&broker);
    let topic = &seeded.topic;
    for compression in [
        kafka_protocol::records::Compression::None,
        kafka_protocol::records::Compression::Gzip,
    ] {
        let good = raw::encode_batch(
            &[
                raw::TestRecord::new(Some("k"), "corrupt-me", raw::now_ms()),
                raw::TestRecord::new(None, "corrupt-me-too", raw::now_ms()),
            ],
            compression,
        );
        let bad = raw::corrupt_crc(&good);
        let p = c.produce(topic, 0, bad, 1).expect("produce");
        assert_eq!(
            p.error_code,
            error_code::CORRUPT_MESSAGE,
            "{compression:?} batch with a bad CRC"
        );
        assert_eq!(c.log_end_offset(topic, 0).unwrap(), 3, "nothing appended");
    }
    raw::assert_broker_healthy(broker.addr(), &seeded);
}

#[test]
fn truncated_batch_inside_request_is_rejected() {
    let (broker, seeded) = start(&[], "seed-truncated-batch");
    let mut c = connect(&broker);
    let topic = &seeded.topic;
    let good = raw::simple_batch("truncated", 5);
    for keep in [good.len() - 1, good.len() - 10, 70, 61, 30, 11] {
        let bad = raw::truncate(&good, keep);
        let p = c.produce(topic, 0, bad, 1).expect("produce");
        assert!(
            p.error_code == error_code::CORRUPT_MESSAGE
                || p.error_code == error_code::INVALID_RECORD,
            "batch truncated to {keep} of {} bytes: error {} (want 2 or 87)",
            good.len(),
            p.error_code
        );
        assert_eq!(c.log_end_offset(topic, 0).unwrap(), 3, "nothing appended");
    }
    // A batch whose batchLength is larger than the records field (trailing junk after it is
    // another flavour of the same thing).
    let mut v = good.to_vec();
    let claimed = (good.len() - 12 + 100) as i32;
    v[8..12].copy_from_slice(&claimed.to_be_bytes());
    let p = c.produce(topic, 0, Bytes::from(v), 1).expect("produce");
    assert!(
        p.error_code == error_code::CORRUPT_MESSAGE || p.error_code == error_code::INVALID_RECORD,
        "batchLength beyond the records: error {}",
        p.error_code
    );
    assert_eq!(c.log_end_offset(topic, 0).unwrap(), 3, "nothing appended");
    raw::assert_broker_healthy(broker.addr(), &seeded);
}

#[test]
fn magic_1_batch_is_rejected() {
    let (broker, seeded) = start(&[], "seed-magic1");
    let mut c = connect(&broker);
    let topic = &seeded.topic;
    for magic in [0, 1, 3] {
        let bad = raw::with_magic(&raw::simple_batch("magic", 2), magic);
        let p = c.produce(topic, 0, bad, 1).expect("produce");
        assert_ne!(
            p.error_code,
            error_code::NONE,
            "magic {magic} batch accepted"
        );
        assert_eq!(c.log_end_offset(topic, 0).unwrap(), 3, "nothing appended");
    }
    raw::assert_broker_healthy(broker.addr(), &seeded);
}

#[test]
fn api_versions_at_unknown_version_answers_v0_with_unsupported_version() {
    let (broker, seeded) = start(&[], "seed-apiversions-99");
    let mut c = connect(&broker);
    // A newer client sends its own (flexible) request body; the broker must answer at v0.
    let mut body = BytesMut::new();
    ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("future-client"))
        .with_client_software_version(StrBytes::from_static_str("99.0"))
        .encode(&mut body, 3)
        .unwrap();
    let resp = c
        .request_any(ApiKey::ApiVersions, 99, &body, 0)
        .expect("ApiVersions v99 answered as v0");
    let ResponseKind::ApiVersions(resp) = resp else {
        panic!("not an ApiVersions response");
    };
    assert_eq!(resp.error_code, error_code::UNSUPPORTED_VERSION);
    assert!(!resp.api_keys.is_empty(), "KIP-511: the full api table");
    let av = resp
        .api_keys
        .iter()
        .find(|k| k.api_key == ApiKey::ApiVersions as i16)
        .expect("ApiVersions in the table");
    assert_eq!((av.min_version, av.max_version), (0, 4));
    // Like Kafka, the connection stays usable: the client retries at a version it knows.
    let again = c.api_versions().expect("retry on the same connection");
    assert_eq!(again.error_code, 0);
    raw::assert_broker_healthy(broker.addr(), &seeded);
}

/// Sends `api_key` at `version` with `body` on a fresh connection; asserts the broker closes it.
fn assert_request_closes(broker: &TestBroker, api_key: i16, version: i16, body: &[u8]) {
    let mut c = connect(broker);
    let corr = c.next_correlation_id();
    let frame = c.encode_raw_request(api_key, version, body, corr).unwrap();
    c.send_frame(&frame).unwrap();
    assert!(
        c.is_closed_by_peer(CLOSE_TIMEOUT),
        "api key {api_key} v{version}: connection not closed"
    );
}

fn encoded<T: Encodable>(msg: &T, version: i16) -> Vec<u8> {
    let mut buf = BytesMut::new();
    msg.encode(&mut buf, version).unwrap();
    buf.to_vec()
}

#[test]
fn unsupported_produce_version_closes_connection() {
    let (broker, seeded) = start(&[], "seed-produce-v2");
    let req = raw::produce_request(&seeded.topic, 0, raw::simple_batch("v2", 1), 1);
    // v2 differs from v3 only by the missing transactional id.
    let v3 = encoded(&req, 3);
    let v2_body = &v3[2..]; // drop the null transactional_id (int16 -1)
    assert_request_closes(&broker, ApiKey::Produce as i16, 2, v2_body);
    assert_request_closes(&broker, ApiKey::Produce as i16, 12, &encoded(&req, 12));
    assert_request_closes(&broker, ApiKey::Produce as i16, 99, &encoded(&req, 11));
    let mut c = connect(&broker);
    assert_eq!(c.log_end_offset(&seeded.topic, 0).unwrap(), 3);
    raw::assert_broker_healthy(broker.addr(), &seeded);
}

#[test]
fn unsupported_fetch_version_closes_connection() {
    let (broker, seeded) = start(&[], "seed-fetch-v99");
    let req = FetchRequest::default()
        .with_topics(vec![raw::fetch_topic(&seeded.topic, &[(0, 0, 1 << 20)])]);
    assert_request_closes(&broker, ApiKey::Fetch as i16, 99, &encoded(&req, 12));
    assert_request_closes(&broker, ApiKey::Fetch as i16, 3, &encoded(&req, 4));
    let req13 = FetchRequest::default();
    assert_request_closes(&broker, ApiKey::Fetch as i16, 13, &encoded(&req13, 13));
    raw::assert_broker_healthy(broker.addr(), &seeded);
}

#[test]
fn unsupported_versions_of_other_apis_close_connection() {
    let (broker, seeded) = start(&[], "seed-other-versions");
    let md = MetadataRequest::default().with_topics(Some(vec![]));
    assert_request_closes(&broker, ApiKey::Metadata as i16, 13, &encoded(&md, 13));
    let ct = CreateTopicsRequest::default();
    assert_request_closes(&broker, ApiKey::CreateTopics as i16, 1, &encoded(&ct, 2));
    assert_request_closes(&broker, ApiKey::CreateTopics as i16, 8, &encoded(&ct, 7));
    let lo = kafka_protocol::messages::ListOffsetsRequest::default();
    assert_request_closes(&broker, ApiKey::ListOffsets as i16, 9, &encoded(&lo, 9));
    let dt = kafka_protocol::messages::DeleteTopicsRequest::default();
    assert_request_closes(&broker, ApiKey::DeleteTopics as i16, 7, &encoded(&dt, 6));
    raw::assert_broker_healthy(broker.addr(), &seeded);
}

/// A zstd frame of `blocks` RLE blocks of 128 KiB of zeros each: 4 bytes per block, so a few
/// tens of kilobytes stand for gigabytes (the format, RFC 8878, lets any encoder emit it).
fn zstd_zero_bomb(blocks: usize) -> Vec<u8> {
    // Magic, a frame header descriptor without content size, a 128 KiB window (2^(10+7)).
    let mut frame = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x38];
    for i in 0..blocks {
        let last = u32::from(i + 1 == blocks);
        // Block header, 24 bits little-endian: last flag, type 1 (RLE), 131072 repeats.
        let header = (131_072u32 << 3) | (1 << 1) | last;
        frame.extend_from_slice(&header.to_le_bytes()[..3]);
        frame.push(0); // the repeated byte
    }
    frame
}

/// `batch` (a zstd batch) with its records section replaced by `body`, length and CRC fixed.
fn with_records_section(batch: &Bytes, body: &[u8]) -> Bytes {
    use raw::batch_layout::{ATTRIBUTES, BATCH_LENGTH, CRC, HEADER_SIZE};
    let mut v = batch[..HEADER_SIZE].to_vec();
    v.extend_from_slice(body);
    let batch_length = (v.len() - 12) as i32;
    v[BATCH_LENGTH..BATCH_LENGTH + 4].copy_from_slice(&batch_length.to_be_bytes());
    let crc = crc32c::crc32c(&v[ATTRIBUTES..]);
    v[CRC..CRC + 4].copy_from_slice(&crc.to_be_bytes());
    Bytes::from(v)
}

#[test]
fn compression_bomb_is_refused_without_inflating_it() {
    // A topic setting that makes the broker open produced batches (here: recompression to
    // lz4; compaction and LogAppendTime do too). Batches stored as sent are never inflated.
    let (broker, seeded) = start(&[("compression.type", "lz4")], "seed-bomb");
    let mut c = connect(&broker);
    let topic = &seeded.topic;
    let template = raw::encode_batch(
        &[raw::TestRecord::new(None, "v", raw::now_ms())],
        kafka_protocol::records::Compression::Zstd,
    );
    // 16384 blocks: 2 GiB of zeros in 64 KiB, under the default message.max.bytes (1 MiB).
    let bomb = with_records_section(&template, &zstd_zero_bomb(16_384));
    assert!(bomb.len() < 100_000);
    let before = vm_peak_kib(broker.pid());
    let p = c.produce(topic, 0, bomb, 1).expect("produce");
    // INVALID_RECORD (KIP-467), as for any batch whose records do not open.
    assert_eq!(p.error_code, error_code::INVALID_RECORD);
    assert_eq!(c.log_end_offset(topic, 0).unwrap(), 3, "nothing appended");
    if let (Some(before), Some(after)) = (before, vm_peak_kib(broker.pid())) {
        assert!(
            after.saturating_sub(before) < 1024 * 1024,
            "inflated the bomb: virtual memory peak grew from {before} KiB to {after} KiB"
        );
    }
    raw::assert_broker_healthy(broker.addr(), &seeded);
}

#[test]
fn unknown_api_key_closes_connection() {
    let (broker, seeded) = start(&[], "seed-unknown-key");
    for key in [9999, 93, 500, -1, i16::MAX] {
        assert_request_closes(&broker, key, 0, &[]);
    }
    raw::assert_broker_healthy(broker.addr(), &seeded);
}

fn vm_peak_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmPeak:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn frame_larger_than_socket_request_max_bytes_closes_without_allocating() {
    let (broker, seeded) = start(&[], "seed-huge-frame");
    // An established connection must not be affected.
    let mut bystander = connect(&broker);
    bystander.api_versions().unwrap();

    let mut c = connect(&broker);
    c.send_raw(&(200 * 1024 * 1024i32).to_be_bytes()).unwrap();
    assert!(
        c.is_closed_by_peer(CLOSE_TIMEOUT),
        "200 MiB frame size: connection not closed"
    );

    // Nearly 2 GiB announced: the broker must not reserve memory for it.
    let before = vm_peak_kib(broker.pid());
    let mut c = connect(&broker);
    c.send_raw(&0x7fff_fff0i32.to_be_bytes()).unwrap();
    assert!(
        c.is_closed_by_peer(CLOSE_TIMEOUT),
        "2 GiB frame size: connection not closed"
    );
    if let (Some(before), Some(after)) = (before, vm_peak_kib(broker.pid())) {
        assert!(
            after.saturating_sub(before) < 1024 * 1024,
            "broker virtual memory peak grew from {before} KiB to {after} KiB"
        );
    }

    // With a small socket.request.max.bytes the limit is the configured one.
    let (small, seeded_small) = start(
        &[("socket.request.max.bytes", "1000")],
        "seed-small-frame-limit",
    );
    let mut c = connect(&small);
    c.send_raw(&5000i32.to_be_bytes()).unwrap();
    assert!(c.is_closed_by_peer(CLOSE_TIMEOUT), "5000 > 1000 not closed");
    raw::assert_broker_healthy(small.addr(), &seeded_small);

    assert_eq!(bystander.api_versions().unwrap().error_code, 0);
    raw::assert_broker_healthy(broker.addr(), &seeded);
}

#[test]
fn negative_frame_size_closes_connection() {
    let (broker, seeded) = start(&[], "seed-negative-size");
    for size in [-1i32, -4, i32::MIN] {
        let mut c = connect(&broker);
        c.send_raw(&size.to_be_bytes()).unwrap();
        c.send_raw(&[0u8; 16]).unwrap();
        assert!(
            c.is_closed_by_peer(CLOSE_TIMEOUT),
            "frame size {size}: not closed"
        );
    }
    raw::assert_broker_healthy(broker.addr(), &seeded);
}

#[test]
fn truncated_frame_then_close_leaves_broker_unaffected() {
    let (broker, seeded) = start(&[], "seed-truncated-frame");
    let mut bystander = connect(&broker);
    bystander.api_versions().unwrap();
    for _ in 0..5 {
        let mut s = TcpStream::connect(broker.addr()).unwrap();
        s.write_all(&100i32.to_be_bytes()).unwrap();
        s.write_all(&[7u8; 10]).unwrap();
        drop(s);
    }
    // Half-close variant: the broker sees EOF in the middle of a frame and must close.
    let mut c = connect(&broker);
    c.send_raw(&100i32.to_be_bytes()).unwrap();
    c.send_raw(&[7u8; 10]).unwrap();
    c.shutdown_write().unwrap();
    assert!(
        c.is_closed_by_peer(CLOSE_TIMEOUT),
        "EOF mid-frame: not closed"
    );
    assert_eq!(bystander.api_versions().unwrap().error_code, 0);
    raw::assert_broker_healthy(broker.addr(), &seeded);
}

#[test]
fn random_garbage_closes_connection() {
    let (broker, seeded) = start(&[], "seed-garbage");
    let mut rng = raw::XorShift::new(0x5eed_1234);
    // Garbage inside a well-formed frame: the header cannot be valid (api key >= 0x4000).
    for size in [0usize, 1, 2, 3, 5, 8, 13, 100, 1000, 10_000] {
        let mut payload = rng.bytes(size);
        if let Some(b) = payload.first_mut() {
            *b |= 0x40;
        }
        let mut c = connect(&broker);
        c.send_frame(&payload).unwrap();
        assert!(
            c.is_closed_by_peer(CLOSE_TIMEOUT),
            "framed garbage of {size} bytes: not closed"
        );
    }
    // Unframed garbage followed by end of stream.
    for size in [1usize, 4, 7, 64, 4096, 100_000] {
        let garbage = rng.bytes(size);
        let mut c = connect(&broker);
        // The broker may close before reading everything; ignore write errors.
        let _ = c.send_raw(&garbage);
        let _ = c.shutdown_write();
        assert!(
            c.is_closed_by_peer(CLOSE_TIMEOUT),
            "raw garbage of {size} bytes: not closed"
        );
    }
    raw::assert_broker_healthy(broker.addr(), &seeded);
}

#[test]
fn garbage_body_after_valid_header_closes_connection() {
    let (broker, seeded) = start(&[], "seed-garbage-body");
    // Flexible Produce v9: the transactional id length varint never ends.
    assert_request_closes(&broker, ApiKey::Produce as i16, 9, &[0xff; 7]);
    // Fetch v12 cut in the middle of its fixed fields.
    assert_request_closes(&broker, ApiKey::Fetch as i16, 12, &[0, 0, 0, 1, 0]);
    // CreateTopics v7 with random bytes.
    let mut rng = raw::XorShift::new(77);
    let mut body = rng.bytes(64);
    body[0] = 0xff; // topics compact array length varint: continuation bits
    body[1] = 0xff;
    body[2] = 0xff;
    body[3] = 0xff;
    body[4] = 0xff;
    assert_request_closes(&broker, ApiKey::CreateTopics as i16, 7, &body);
    // Non-flexible Metadata v1: an array of 2^31-1 topics announced, none present. The
    // broker must not trust the announced length (e.g. reserve memory for it).
    assert_request_closes(
        &broker,
        ApiKey::Metadata as i16,
        1,
        &[0x7f, 0xff, 0xff, 0xff],
    );
    // Same with a flexible (compact) array length in Metadata v12.
    assert_request_closes(
        &broker,
        ApiKey::Metadata as i16,
        12,
        &[0xff, 0xff, 0xff, 0xff, 0x07],
    );
    raw::assert_broker_healthy(broker.addr(), &seeded);
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let (broker, seeded) = start(&[], "seed-pipelined");
    let topic = seeded.topic.clone();
    let mut c = connect(&broker);
    // (api key, version, correlation id) of each request, in send order.
    let mut sent: Vec<(ApiKey, i16, i32)> = Vec::new();
    let mut wire = BytesMut::new();
    for i in 0..10 {
        let corr = c.next_correlation_id();
        let (key, version, frame) = match i % 4 {
            0 => {
                let req: ProduceRequest =
                    raw::produce_request(&topic, 0, raw::simple_batch(&topic, 1), 1);
                (ApiKey::Produce, 9, c.encode_request(9, &req, corr).unwrap())
            }
            1 => {
                let req = ApiVersionsRequest::default();
                (
                    ApiKey::ApiVersions,
                    0,
                    c.encode_request(0, &req, corr).unwrap(),
                )
            }
            2 => {
                let req = MetadataRequest::default().with_topics(None);
                (
                    ApiKey::Metadata,
                    12,
                    c.encode_request(12, &req, corr).unwrap(),
                )
            }
            _ => {
                let req = FetchRequest::default()
                    .with_max_wait_ms(0)
                    .with_topics(vec![raw::fetch_topic(&topic, &[(0, 0, 1 << 20)])]);
                (ApiKey::Fetch, 7, c.encode_request(7, &req, corr).unwrap())
            }
        };
        wire.put_i32(frame.len() as i32);
        wire.extend_from_slice(&frame);
        sent.push((key, version, corr));
    }
    c.send_raw(&wire).unwrap();
    let mut produce_offsets = Vec::new();
    for (key, version, corr) in &sent {
        let mut frame = c.read_frame().expect("response");
        let header =
            ResponseHeader::decode(&mut frame, key.response_header_version(*version)).unwrap();
        assert_eq!(header.correlation_id, *corr, "responses out of order");
        let resp = ResponseKind::decode(*key, &mut frame, *version)
            .unwrap_or_else(|e| panic!("decode {key:?} v{version}: {e:#}"));
        assert_eq!(frame.remaining(), 0);
        if let ResponseKind::Produce(p) = resp {
            let part = &p.responses[0].partition_responses[0];
            assert_eq!(part.error_code, 0);
            produce_offsets.push(part.base_offset);
        }
    }
    assert_eq!(produce_offsets, vec![3, 4, 5], "produces applied in order");
    let expected = seeded.followed_by((0..3).map(|_| format!("{topic}-0")));
    raw::assert_broker_healthy(broker.addr(), &expected);
}

#[test]
fn invalid_acks_value_is_rejected() {
    let (broker, seeded) = start(&[], "seed-invalid-acks");
    let mut c = connect(&broker);
    for acks in [5, 2, -2] {
        let p = c
            .produce(&seeded.topic, 0, raw::simple_batch("acks", 1), acks)
            .expect("produce");
        assert_eq!(
            p.error_code,
            error_code::INVALID_REQUIRED_ACKS,
            "acks={acks}"
        );
    }
    assert_eq!(c.log_end_offset(&seeded.topic, 0).unwrap(), 3);
    raw::assert_broker_healthy(broker.addr(), &seeded);
}

#[test]
fn acks_0_produce_gets_no_response_but_is_stored() {
    let (broker, seeded) = start(&[], "seed-acks0");
    let topic = seeded.topic.clone();
    let mut c = connect(&broker);
    for version in [3, 9, 11] {
        c.produce_at(version, &topic, 0, raw::simple_batch(&topic, 1), 0)
            .expect("acks=0 produce");
    }
    // The next response on this connection must be the ApiVersions one (correlation id check
    // inside `request`): no response was sent for the acks=0 produces.
    let av = c.api_versions().expect("no stray produce response");
    assert_eq!(av.error_code, 0);
    let leo = raw::wait_for(Duration::from_secs(10), || {
        let leo = c.log_end_offset(&topic, 0).ok()?;
        (leo == 6).then_some(leo)
    });
    assert!(leo.is_ok(), "acks=0 records not stored");
    let expected = seeded.followed_by((0..3).map(|_| format!("{topic}-0")));
    raw::assert_broker_healthy(broker.addr(), &expected);
}

#[test]
fn control_idle_and_valid_connections_are_not_reported_closed() {
    // Guards the helper the other tests rely on: a healthy connection is not "closed".
    let (broker, seeded) = start(&[], "seed-control");
    let mut c = connect(&broker);
    assert!(!c.is_closed_by_peer(Duration::from_millis(500)));
    c.api_versions().unwrap();
    assert!(!c.is_closed_by_peer(Duration::from_millis(500)));
    // A partial frame is not closed either: the broker waits for the rest.
    c.send_raw(&100i32.to_be_bytes()).unwrap();
    assert!(!c.is_closed_by_peer(Duration::from_millis(500)));
    raw::assert_broker_healthy(broker.addr(), &seeded);
}
