//! Record formats, response encoding at every supported version, and the admin views.

use bytes::{BufMut, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use super::records::{decode_key, decode_value, encode_key, encode_value, TxnRecordError};
use super::state::TxnMetadata;
use super::tests::{topics, txn_id, Harness};
use super::*;

fn code(e: ResponseError) -> i16 {
    e.code()
}

#[test]
fn key_and_value_match_kafka_layout() {
    assert_eq!(&encode_key("tx")[..], &[0, 0, 0, 2, b't', b'x']);
    let mut txn = TxnMetadata::new(7, 60_000, 1234);
    txn.producer_epoch = 3;
    txn.status = TxnStatus::Ongoing;
    txn.start_ms = 1000;
    txn.partitions.extend([
        ("a".to_owned(), 1),
        ("a".to_owned(), 2),
        ("b".to_owned(), 0),
    ]);
    let mut want = BytesMut::new();
    want.put_i16(0); // value version
    want.put_i64(7);
    want.put_i16(3);
    want.put_i32(60_000);
    want.put_i8(1); // Ongoing
    want.put_i32(2); // topics
    want.put_slice(&[0, 1, b'a', 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2]);
    want.put_slice(&[0, 1, b'b', 0, 0, 0, 1, 0, 0, 0, 0]);
    want.put_i64(1234);
    want.put_i64(1000);
    assert_eq!(&encode_value(&txn)[..], &want[..]);
    let back = decode_value(&want).expect("decodes");
    assert_eq!(
        TxnMetadata::from_record(back),
        TxnMetadata {
            last_producer_epoch: -1,
            ..txn
        }
    );
    // Empty writes null partitions, as Kafka does.
    let empty = TxnMetadata::new(7, 60_000, 1234);
    assert_eq!(
        decode_value(&encode_value(&empty))
            .expect("decodes")
            .partitions,
        None
    );
}

#[test]
fn value_v1_flexible_is_read() {
    let mut v = BytesMut::new();
    v.put_i16(1);
    v.put_i64(9);
    v.put_i16(4);
    v.put_i32(1000);
    v.put_i8(2); // PrepareCommit
    v.put_u8(2); // compact array: 1 topic
    v.put_slice(&[2, b't']); // compact string "t"
    v.put_u8(3); // 2 partitions
    v.put_i32(0);
    v.put_i32(5);
    v.put_slice(&[1, 0, 1, 0xff]); // one tagged field (tag 0, 1 byte) in the topic struct
    v.put_i64(20);
    v.put_i64(10);
    v.put_u8(0); // no top-level tagged fields
    let value = decode_value(&v).expect("decodes");
    assert_eq!(value.status, TxnStatus::PrepareCommit);
    assert_eq!(value.partitions, Some(vec![("t".into(), vec![0, 5])]));
    assert_eq!((value.last_update_ms, value.start_ms), (20, 10));
}

#[test]
fn bad_records_are_errors_not_panics() {
    assert_eq!(
        decode_key(&[0, 1, 0, 5, b'x']),
        Err(TxnRecordError::UnsupportedVersion {
            what: "key",
            version: 1
        })
    );
    assert_eq!(
        decode_key(&[0, 0, 0, 5, b'x']),
        Err(TxnRecordError::Truncated {
            field: "transactional_id"
        })
    );
    let good = encode_value(&TxnMetadata::new(1, 1, 1));
    for len in 0..good.len() {
        assert!(decode_value(&good[..len]).is_err(), "prefix of {len} bytes");
    }
    let mut bad = good.to_vec();
    bad[16] = 9; // status byte
    assert_eq!(
        decode_value(&bad),
        Err(TxnRecordError::UnknownStatus { status: 9 })
    );
    let mut huge = good.to_vec();
    huge[17..21].copy_from_slice(&i32::MAX.to_be_bytes()); // partitions count
    assert!(decode_value(&huge).is_err());
    let mut c = TxnCoordinator::new(TxnConfig::default());
    assert!(c.replay(&[0xff], None).is_err());
}

/// Drives every API through its success and error answers at `version` (Harness::call encodes
/// each response at the request's version, and on_failure responses too).
fn exercise_all_apis(version_of: impl Fn(i16) -> i16) {
    let mut h = Harness::new();
    let v = |max: i16| version_of(max);
    h.init(v(5), "tx", None);
    h.init(v(5), "tx", Some((1000, 5))); // fenced (v3+) or plain bump
    let epoch = h.c.txns["tx"].producer_epoch;
    h.add_at(v(3), "tx", 1000, epoch, &[("t", 0)]);
    h.add_at(v(3), "tx", 1000, epoch + 7, &[("t", 0)]);
    let offsets = |e| {
        AddOffsetsToTxnRequest::default()
            .with_transactional_id(txn_id("tx"))
            .with_producer_id(1000.into())
            .with_producer_epoch(e)
            .with_group_id(StrBytes::from_static_str("g").into())
    };
    h.call(v(4), TxnRequest::AddOffsetsToTxn(offsets(epoch)));
    h.call(v(4), TxnRequest::AddOffsetsToTxn(offsets(epoch + 1)));
    h.init(v(5), "tx", None); // CONCURRENT_TRANSACTIONS after fencing
    h.end(v(4), "tx", 1000, epoch, true);
    h.complete_markers();
    let epoch = h.c.txns["tx"].producer_epoch;
    h.end(v(4), "tx", 1000, epoch, false);
    if v(5) >= 4 {
        let txn = add_partitions_to_txn_request::AddPartitionsToTxnTransaction::default()
            .with_transactional_id(txn_id("tx"))
            .with_producer_id(1000.into())
            .with_producer_epoch(epoch)
            .with_topics(topics(&[("t", 1)]));
        let req = AddPartitionsToTxnRequest::default()
            .with_transactions(vec![txn.clone(), txn.with_verify_only(true)]);
        h.call(v(5), TxnRequest::AddPartitionsToTxn(req));
    }
    let describe = DescribeTransactionsRequest::default()
        .with_transactional_ids(vec![txn_id("tx"), txn_id("x")]);
    h.call(0, TxnRequest::DescribeTransactions(describe));
    let states = vec![
        StrBytes::from_static_str("Ongoing"),
        StrBytes::from_static_str("?"),
    ];
    let list = ListTransactionsRequest::default().with_state_filters(states);
    h.call(v(1), TxnRequest::ListTransactions(list));
}

#[test]
fn every_response_encodes_at_every_supported_version() {
    // InitProducerId 0-5, AddPartitionsToTxn 0-5, AddOffsetsToTxn 0-4, EndTxn 0-4,
    // DescribeTransactions 0, ListTransactions 0-1: each API at each of its versions.
    for version in 0..=5 {
        exercise_all_apis(|max| version.min(max));
    }
}

#[test]
fn describe_and_list_transactions() {
    let mut h = Harness::new();
    h.init(4, "a", None);
    h.init(4, "b", None);
    h.add("b", 1001, 0, &[("u", 1), ("t", 2), ("t", 0)]);
    let req = DescribeTransactionsRequest::default()
        .with_transactional_ids(vec![txn_id("b"), txn_id("zz")]);
    let TxnResponse::DescribeTransactions(r) = h.call(0, TxnRequest::DescribeTransactions(req))
    else {
        panic!()
    };
    let (b, zz) = (&r.transaction_states[0], &r.transaction_states[1]);
    assert_eq!(
        (b.error_code, b.transaction_state.as_str(), b.producer_id.0),
        (0, "Ongoing", 1001)
    );
    assert_eq!(
        (b.transaction_timeout_ms, b.transaction_start_time_ms),
        (60_000, h.now_ms)
    );
    let topics: Vec<_> = b
        .topics
        .iter()
        .map(|t| (t.topic.0.to_string(), t.partitions.clone()))
        .collect();
    assert_eq!(
        topics,
        vec![("t".into(), vec![0, 2]), ("u".into(), vec![1])]
    );
    assert_eq!(
        (zz.error_code, zz.transactional_id.0.as_str()),
        (code(ResponseError::TransactionalIdNotFound), "zz")
    );
}

#[test]
fn list_transactions_filters() {
    let mut h = Harness::new();
    h.init(4, "a", None);
    h.init(4, "b", None);
    h.add("b", 1001, 0, &[("t", 0)]);
    let list = |h: &mut Harness, v, req: ListTransactionsRequest| {
        let TxnResponse::ListTransactions(r) = h.call(v, TxnRequest::ListTransactions(req)) else {
            panic!()
        };
        let ids = r
            .transaction_states
            .iter()
            .map(|t| t.transactional_id.0.to_string())
            .collect::<Vec<_>>();
        (
            ids,
            r.unknown_state_filters
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>(),
        )
    };
    let all = ListTransactionsRequest::default();
    assert_eq!(
        list(&mut h, 0, all.clone()),
        (vec!["a".into(), "b".into()], vec![])
    );
    let states = vec![
        StrBytes::from_static_str("Empty"),
        StrBytes::from_static_str("Bogus"),
    ];
    assert_eq!(
        list(&mut h, 0, all.clone().with_state_filters(states)),
        (vec!["a".into()], vec!["Bogus".into()])
    );
    assert_eq!(
        list(
            &mut h,
            0,
            all.clone().with_producer_id_filters(vec![1001.into()])
        )
        .0,
        vec!["b".to_string()]
    );
    h.now_ms += 100;
    // v1 duration filter: only transactions running longer than it. Empty has start -1 (as Kafka).
    assert_eq!(
        list(&mut h, 1, all.clone().with_duration_filter(99)).0,
        vec!["a", "b"]
    );
    assert_eq!(
        list(&mut h, 1, all.clone().with_duration_filter(100)).0,
        vec!["a"]
    );
}
