//! InitProducerId: fencing, epoch bumps, producer id rotation, KIP-360 retries; AddOffsetsToTxn.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use super::tests::{txn_id, Harness};
use super::*;

const CODE_OK: i16 = 0;

fn code(e: ResponseError) -> i16 {
    e.code()
}

#[test]
fn second_init_bumps_epoch_and_fences_the_old_producer() {
    let mut h = Harness::new();
    h.init(4, "tx", None);
    let r = h.init(4, "tx", None);
    assert_eq!((r.producer_id.0, r.producer_epoch), (1000, 1));
    assert_eq!(
        h.add_at(2, "tx", 1000, 0, &[("t", 0)]),
        code(ResponseError::ProducerFenced)
    );
    assert_eq!(
        h.add_at(1, "tx", 1000, 0, &[("t", 0)]),
        code(ResponseError::InvalidProducerEpoch)
    );
    assert_eq!(
        h.add("tx", 999, 1, &[("t", 0)]),
        code(ResponseError::InvalidProducerIdMapping)
    );
    assert_eq!(
        h.add("nope", 1000, 1, &[("t", 0)]),
        code(ResponseError::InvalidProducerIdMapping)
    );
    assert_eq!(h.add("tx", 1000, 1, &[("t", 0)]), CODE_OK);
}

#[test]
fn init_rejects_bad_timeouts_and_half_given_producer() {
    let mut h = Harness::new();
    let req = |timeout_ms| {
        InitProducerIdRequest::default()
            .with_transactional_id(Some(txn_id("tx")))
            .with_transaction_timeout_ms(timeout_ms)
    };
    for timeout_ms in [0, 900_001] {
        let TxnResponse::InitProducerId(r) = h.call(1, TxnRequest::InitProducerId(req(timeout_ms)))
        else {
            panic!()
        };
        assert_eq!(r.error_code, code(ResponseError::InvalidTransactionTimeout));
        assert_eq!((r.producer_id.0, r.producer_epoch), (-1, -1));
    }
    let half = req(1000).with_producer_id(5.into());
    let TxnResponse::InitProducerId(r) = h.call(3, TxnRequest::InitProducerId(half)) else {
        panic!()
    };
    assert_eq!(r.error_code, code(ResponseError::InvalidRequest));
    assert_eq!(h.c.transaction_count(), 0);
}

#[test]
fn init_while_ongoing_fences_aborts_and_asks_to_retry() {
    let mut h = Harness::new();
    h.init(4, "tx", None);
    h.add("tx", 1000, 0, &[("t", 0)]);
    let r = h.init(4, "tx", None);
    assert_eq!(r.error_code, code(ResponseError::ConcurrentTransactions));
    assert_eq!((r.producer_id.0, r.producer_epoch), (-1, -1));
    assert_eq!(h.last_value().status, TxnStatus::PrepareAbort);
    assert_eq!(
        (h.markers[0].producer_epoch, h.markers[0].commit),
        (1, false)
    );
    // The old producer is fenced at once.
    assert_eq!(
        h.end(3, "tx", 1000, 0, true),
        code(ResponseError::ProducerFenced)
    );
    assert_eq!(
        h.init(4, "tx", None).error_code,
        code(ResponseError::ConcurrentTransactions)
    );
    h.complete_markers();
    let r = h.init(4, "tx", None);
    assert_eq!(
        (r.error_code, r.producer_id.0, r.producer_epoch),
        (CODE_OK, 1000, 2)
    );
}

#[test]
fn exhausted_epoch_rotates_the_producer_id() {
    let mut h = Harness::new();
    h.init(4, "tx", None);
    h.c.txns.get_mut("tx").unwrap().producer_epoch = i16::MAX - 1;
    let r = h.init(4, "tx", Some((1000, i16::MAX - 1)));
    assert_eq!(
        (r.error_code, r.producer_id.0, r.producer_epoch),
        (CODE_OK, 1001, 0)
    );
    // KIP-360: a retry naming the old producer and its exhausted epoch gets the same answer.
    let r = h.init(4, "tx", Some((1000, i16::MAX - 1)));
    assert_eq!(
        (r.error_code, r.producer_id.0, r.producer_epoch),
        (CODE_OK, 1001, 0)
    );
    // A fence at i16::MAX - 1 bumps to i16::MAX, then the next InitProducerId rotates.
    h.c.txns.get_mut("tx").unwrap().producer_epoch = i16::MAX - 1;
    h.add("tx", 1001, i16::MAX - 1, &[("t", 0)]);
    assert_eq!(
        h.init(4, "tx", None).error_code,
        code(ResponseError::ConcurrentTransactions)
    );
    assert_eq!(h.markers[0].producer_epoch, i16::MAX);
    h.complete_markers();
    let r = h.init(4, "tx", None);
    assert_eq!((r.producer_id.0, r.producer_epoch), (1002, 0));
}

#[test]
fn kip360_init_with_current_producer_bumps_and_retry_is_idempotent() {
    let mut h = Harness::new();
    h.init(4, "tx", None);
    let r = h.init(4, "tx", Some((1000, 0)));
    assert_eq!((r.error_code, r.producer_epoch), (CODE_OK, 1));
    let r = h.init(4, "tx", Some((1000, 0)));
    assert_eq!(
        (r.error_code, r.producer_epoch),
        (CODE_OK, 1),
        "retry returns the same epoch"
    );
    assert_eq!(
        h.init(4, "tx", Some((1000, 7))).error_code,
        code(ResponseError::ProducerFenced)
    );
    assert_eq!(
        h.init(3, "tx", Some((1000, 7))).error_code,
        code(ResponseError::InvalidProducerEpoch)
    );
    // Another producer id is fenced too (Kafka's isValidProducerId fails: PRODUCER_FENCED,
    // which clients before v4 see as INVALID_PRODUCER_EPOCH).
    assert_eq!(
        h.init(4, "tx", Some((55, 1))).error_code,
        code(ResponseError::ProducerFenced)
    );
    assert_eq!(
        h.init(3, "tx", Some((55, 1))).error_code,
        code(ResponseError::InvalidProducerEpoch)
    );
    // An unknown id with a producer given (e.g. after expiry) starts afresh.
    let r = h.init(4, "other", Some((77, 3)));
    assert_eq!(
        (r.error_code, r.producer_id.0, r.producer_epoch),
        (CODE_OK, 1001, 0)
    );
}

#[test]
fn add_offsets_adds_the_groups_offsets_partition() {
    let mut h = Harness::new();
    h.init(4, "tx", None);
    let req = AddOffsetsToTxnRequest::default()
        .with_transactional_id(txn_id("tx"))
        .with_producer_id(1000.into())
        .with_producer_epoch(0)
        .with_group_id(StrBytes::from_static_str("abc").into());
    let TxnResponse::AddOffsetsToTxn(r) = h.call(3, TxnRequest::AddOffsetsToTxn(req.clone()))
    else {
        panic!()
    };
    assert_eq!(r.error_code, CODE_OK);
    // Java: "abc".hashCode() = 96354; 96354 % 50 = 4.
    assert_eq!(
        h.c.verify_partition("tx", 1000, 0, "__consumer_offsets", 4),
        Ok(())
    );
    let fenced = req.with_producer_epoch(5);
    let TxnResponse::AddOffsetsToTxn(r) = h.call(1, TxnRequest::AddOffsetsToTxn(fenced)) else {
        panic!()
    };
    assert_eq!(r.error_code, code(ResponseError::InvalidProducerEpoch));
}
