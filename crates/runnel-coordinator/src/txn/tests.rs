//! Deterministic tests of the transaction coordinator: a fake broker performs appends (always
//! durable unless told otherwise) and keeps the __transaction_state log for replay.

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};

use super::*;

pub(super) struct FakeIds(pub i64);

impl ProducerIdSource for FakeIds {
    fn next_producer_id(&mut self) -> i64 {
        self.0 += 1;
        self.0 - 1
    }
}

/// The coordinator plus what a broker would do with its output.
pub(super) struct Harness {
    pub c: TxnCoordinator,
    pub ids: FakeIds,
    pub now_ms: i64,
    pub log: Vec<(Bytes, Option<Bytes>)>,
    pub markers: Vec<MarkerJob>,
    next_token: u64,
    /// The version of the request being handled (for encoding on_failure responses).
    version: i16,
}

const CODE_OK: i16 = 0;

fn code(e: ResponseError) -> i16 {
    e.code()
}

impl Harness {
    pub fn new() -> Self {
        Harness {
            c: TxnCoordinator::new(TxnConfig::default()),
            ids: FakeIds(1000),
            now_ms: 1_000_000,
            log: Vec::new(),
            markers: Vec::new(),
            next_token: 1,
            version: 0,
        }
    }

    /// Performs an output as the broker runtime would: appends in order (all durable), then the
    /// immediate responses. Returns the responses in the order they would be sent.
    pub fn perform(&mut self, out: TxnOutput) -> Vec<(RequestToken, TxnResponse)> {
        let mut sent = Vec::new();
        for append in out.appends {
            for (_, response) in &append.on_failure {
                encode(response, self.version);
            }
            assert_eq!(
                append.partition,
                transaction_partition(&key_id(&append.records[0].0), 50)
            );
            self.log.extend(append.records);
            sent.extend(append.then);
            self.markers.extend(append.markers);
        }
        sent.extend(out.responses);
        self.markers.extend(out.markers);
        sent
    }

    pub fn call(&mut self, version: i16, request: TxnRequest) -> TxnResponse {
        let token = self.next_token;
        self.next_token += 1;
        let meta = TxnRequestMeta {
            token,
            api_version: version,
        };
        self.version = version;
        let out = self.c.handle(meta, request, &mut self.ids, self.now_ms);
        let mut sent = self.perform(out);
        assert_eq!(sent.len(), 1, "exactly one response per request");
        let (answered, response) = sent.pop().expect("one response");
        assert_eq!(answered, token);
        encode(&response, version);
        response
    }

    pub fn init(
        &mut self,
        version: i16,
        id: &str,
        expected: Option<(i64, i16)>,
    ) -> InitProducerIdResponse {
        let (pid, epoch) = expected.unwrap_or((-1, -1));
        let req = InitProducerIdRequest::default()
            .with_transactional_id(Some(txn_id(id)))
            .with_transaction_timeout_ms(60_000)
            .with_producer_id(pid.into())
            .with_producer_epoch(epoch);
        match self.call(version, TxnRequest::InitProducerId(req)) {
            TxnResponse::InitProducerId(r) => r,
            other => panic!("unexpected {other:?}"),
        }
    }

    /// AddPartitionsToTxn v3; returns the error code of every partition (all equal in v0-3).
    pub fn add(&mut self, id: &str, pid: i64, epoch: i16, parts: &[(&str, i32)]) -> i16 {
        self.add_at(3, id, pid, epoch, parts)
    }

    pub fn add_at(&mut self, v: i16, id: &str, pid: i64, epoch: i16, parts: &[(&str, i32)]) -> i16 {
        let req = AddPartitionsToTxnRequest::default()
            .with_v3_and_below_transactional_id(txn_id(id))
            .with_v3_and_below_producer_id(pid.into())
            .with_v3_and_below_producer_epoch(epoch)
            .with_v3_and_below_topics(topics(parts));
        let TxnResponse::AddPartitionsToTxn(r) = self.call(v, TxnRequest::AddPartitionsToTxn(req))
        else {
            panic!("wrong response type");
        };
        let codes: Vec<i16> = r
            .results_by_topic_v3_and_below
            .iter()
            .flat_map(|t| {
                t.results_by_partition
                    .iter()
                    .map(|p| p.partition_error_code)
            })
            .collect();
        assert!(codes.windows(2).all(|w| w[0] == w[1]));
        codes.first().copied().unwrap_or(CODE_OK)
    }

    pub fn end(&mut self, v: i16, id: &str, pid: i64, epoch: i16, commit: bool) -> i16 {
        let req = EndTxnRequest::default()
            .with_transactional_id(txn_id(id))
            .with_producer_id(pid.into())
            .with_producer_epoch(epoch)
            .with_committed(commit);
        match self.call(v, TxnRequest::EndTxn(req)) {
            TxnResponse::EndTxn(r) => r.error_code,
            other => panic!("unexpected {other:?}"),
        }
    }

    /// Reports every started marker job durable, as the broker would.
    pub fn complete_markers(&mut self) {
        for job in std::mem::take(&mut self.markers) {
            let out = self.c.markers_written(job.id, self.now_ms);
            assert!(self.perform(out).is_empty());
        }
    }

    /// A coordinator rebuilt from the log, as after a restart.
    pub fn restart(&mut self) -> TxnOutput {
        let mut fresh = TxnCoordinator::new(TxnConfig::default());
        for (k, v) in &self.log {
            fresh.replay(k, v.as_deref()).expect("replay");
        }
        self.c = fresh;
        self.markers.clear();
        self.c.finish_loading(self.now_ms)
    }

    pub fn last_value(&self) -> records::TxnLogValue {
        let (_, v) = self.log.last().expect("a record");
        records::decode_value(v.as_ref().expect("not a tombstone")).expect("decodes")
    }
}

/// Every response must encode at the version of its request (the codec refuses fields that do
/// not exist at that version).
pub(super) fn encode(response: &TxnResponse, version: i16) {
    let mut buf = bytes::BytesMut::new();
    let result = match response {
        TxnResponse::InitProducerId(r) => r.encode(&mut buf, version),
        TxnResponse::AddPartitionsToTxn(r) => r.encode(&mut buf, version),
        TxnResponse::AddOffsetsToTxn(r) => r.encode(&mut buf, version),
        TxnResponse::EndTxn(r) => r.encode(&mut buf, version),
        TxnResponse::DescribeTransactions(r) => r.encode(&mut buf, version),
        TxnResponse::ListTransactions(r) => r.encode(&mut buf, version),
    };
    result.unwrap_or_else(|e| panic!("{response:?} does not encode at v{version}: {e}"));
}

fn key_id(key: &[u8]) -> String {
    records::decode_key(key).expect("key decodes")
}

pub(super) fn txn_id(id: &str) -> TransactionalId {
    StrBytes::from_string(id.to_owned()).into()
}

pub(super) fn topics(parts: &[(&str, i32)]) -> Vec<AddPartitionsToTxnTopic> {
    let mut out: Vec<AddPartitionsToTxnTopic> = Vec::new();
    for (t, p) in parts {
        match out.iter_mut().find(|x| x.name.0.as_str() == *t) {
            Some(x) => x.partitions.push(*p),
            None => out.push(
                AddPartitionsToTxnTopic::default()
                    .with_name(StrBytes::from_string((*t).to_owned()).into())
                    .with_partitions(vec![*p]),
            ),
        }
    }
    out
}

#[test]
fn init_new_id_gets_epoch_zero_and_is_persisted() {
    let mut h = Harness::new();
    let r = h.init(3, "tx", None);
    assert_eq!(
        (r.error_code, r.producer_id.0, r.producer_epoch),
        (CODE_OK, 1000, 0)
    );
    let v = h.last_value();
    assert_eq!(
        (v.producer_id, v.producer_epoch, v.status),
        (1000, 0, TxnStatus::Empty)
    );
    assert_eq!((v.partitions, v.start_ms, v.timeout_ms), (None, -1, 60_000));
}

#[test]
fn commit_writes_prepare_then_markers_then_complete() {
    let mut h = Harness::new();
    h.init(4, "tx", None);
    assert_eq!(
        h.add("tx", 1000, 0, &[("t", 0), ("t", 1), ("u", 0)]),
        CODE_OK
    );
    assert_eq!(h.c.status("tx"), Some(TxnStatus::Ongoing));
    assert_eq!(h.c.verify_partition("tx", 1000, 0, "t", 1), Ok(()));
    let start_ms = h.last_value().start_ms;
    assert_eq!(start_ms, h.now_ms);
    // Already in the transaction: answered without a write.
    let records = h.log.len();
    assert_eq!(h.add("tx", 1000, 0, &[("t", 0)]), CODE_OK);
    assert_eq!(h.log.len(), records);

    h.now_ms += 5;
    assert_eq!(h.end(3, "tx", 1000, 0, true), CODE_OK);
    let v = h.last_value();
    assert_eq!(v.status, TxnStatus::PrepareCommit);
    assert_eq!(
        v.partitions,
        Some(vec![("t".into(), vec![0, 1]), ("u".into(), vec![0])])
    );
    assert_eq!(h.markers.len(), 1);
    let job = h.markers[0].clone();
    assert!(job.commit);
    assert_eq!(
        (job.producer_id, job.producer_epoch, job.coordinator_epoch),
        (1000, 0, 0)
    );
    assert_eq!(
        job.partitions,
        vec![("t".into(), 0), ("t".into(), 1), ("u".into(), 0)]
    );

    // While preparing: retries wait, the other outcome is invalid.
    assert_eq!(
        h.end(3, "tx", 1000, 0, true),
        code(ResponseError::ConcurrentTransactions)
    );
    assert_eq!(
        h.end(3, "tx", 1000, 0, false),
        code(ResponseError::InvalidTxnState)
    );
    assert_eq!(
        h.add("tx", 1000, 0, &[("v", 0)]),
        code(ResponseError::ConcurrentTransactions)
    );
    assert_eq!(
        h.init(4, "tx", None).error_code,
        code(ResponseError::ConcurrentTransactions)
    );

    h.complete_markers();
    let v = h.last_value();
    assert_eq!(
        (v.status, v.partitions, v.start_ms),
        (TxnStatus::CompleteCommit, Some(vec![]), start_ms)
    );
    // A retried EndTxn after completion succeeds, as in Kafka; the other outcome does not.
    assert_eq!(h.end(3, "tx", 1000, 0, true), CODE_OK);
    assert_eq!(
        h.end(3, "tx", 1000, 0, false),
        code(ResponseError::InvalidTxnState)
    );
    // A stale job report changes nothing.
    assert!(h.c.markers_written(job.id, h.now_ms).appends.is_empty());
    // The next transaction starts afresh.
    assert_eq!(h.add("tx", 1000, 0, &[("w", 3)]), CODE_OK);
    assert_eq!(h.c.status("tx"), Some(TxnStatus::Ongoing));
}

#[test]
fn abort_completes_with_complete_abort() {
    let mut h = Harness::new();
    h.init(4, "tx", None);
    assert_eq!(
        h.end(3, "tx", 1000, 0, false),
        code(ResponseError::InvalidTxnState)
    );
    h.add("tx", 1000, 0, &[("t", 0)]);
    assert_eq!(h.end(1, "tx", 1000, 0, false), CODE_OK);
    assert!(!h.markers[0].commit);
    assert_eq!(h.c.status("tx"), Some(TxnStatus::PrepareAbort));
    h.complete_markers();
    assert_eq!(h.c.status("tx"), Some(TxnStatus::CompleteAbort));
    assert_eq!(h.end(1, "tx", 1000, 0, false), CODE_OK);
    assert_eq!(
        h.end(1, "tx", 1000, 1, false),
        code(ResponseError::InvalidProducerEpoch)
    );
    assert_eq!(
        h.end(2, "tx", 1000, 1, false),
        code(ResponseError::ProducerFenced)
    );
}

#[test]
fn timed_out_transaction_is_aborted_by_tick_with_an_epoch_bump() {
    let mut h = Harness::new();
    h.init(4, "tx", None);
    h.add("tx", 1000, 0, &[("t", 0)]);
    assert_eq!(h.c.next_deadline(), Some(h.now_ms + 10_000));
    h.now_ms += 60_000; // exactly the timeout: not yet past it
    let out = h.c.tick(h.now_ms);
    assert!(h.perform(out).is_empty());
    assert_eq!(h.c.status("tx"), Some(TxnStatus::Ongoing));
    h.now_ms += 10_000;
    let out = h.c.tick(h.now_ms);
    assert!(h.perform(out).is_empty());
    let v = h.last_value();
    assert_eq!((v.status, v.producer_epoch), (TxnStatus::PrepareAbort, 1));
    assert_eq!(
        (h.markers[0].producer_epoch, h.markers[0].commit),
        (1, false)
    );
    h.complete_markers();
    assert_eq!(h.c.status("tx"), Some(TxnStatus::CompleteAbort));
    // The timed-out producer is fenced.
    assert_eq!(
        h.end(3, "tx", 1000, 0, true),
        code(ResponseError::ProducerFenced)
    );
    assert_eq!(
        h.add("tx", 1000, 0, &[("t", 0)]),
        code(ResponseError::ProducerFenced)
    );
    // Nothing ongoing: only the expiry scan is left.
    assert_eq!(h.c.next_deadline(), Some(1_000_000 + 3_600_000));
}

#[test]
fn crash_between_prepare_and_markers_reissues_the_markers() {
    let mut h = Harness::new();
    h.init(4, "tx", None);
    h.add("tx", 1000, 0, &[("t", 0), ("u", 2)]);
    assert_eq!(h.end(3, "tx", 1000, 0, true), CODE_OK);
    let before = h.markers[0].clone();
    // Crash: the markers were never reported written.
    let out = h.restart();
    assert!(out.appends.is_empty() && out.responses.is_empty());
    assert_eq!(out.markers.len(), 1);
    let job = &out.markers[0];
    assert_eq!(
        (job.commit, job.producer_id, job.producer_epoch),
        (true, 1000, 0)
    );
    assert_eq!(job.partitions, before.partitions);
    assert_eq!(h.c.status("tx"), Some(TxnStatus::PrepareCommit));
    // The old job id means nothing to the new coordinator.
    assert!(h
        .c
        .markers_written(before.id + 100, h.now_ms)
        .appends
        .is_empty());
    h.perform(out);
    h.complete_markers();
    assert_eq!(h.c.status("tx"), Some(TxnStatus::CompleteCommit));
    assert!(h.restart().markers.is_empty());
    assert_eq!(h.c.status("tx"), Some(TxnStatus::CompleteCommit));
}

#[test]
fn batched_add_and_verify_only() {
    let mut h = Harness::new();
    h.init(4, "a", None);
    h.init(4, "b", None);
    let req = AddPartitionsToTxnRequest::default().with_transactions(vec![
        batched_txn("a", 1000, 0, false, &[("t", 0)]),
        batched_txn("b", 1001, 0, false, &[("t", 1)]),
        batched_txn("c", 5, 0, false, &[("t", 1)]),
    ]);
    let TxnResponse::AddPartitionsToTxn(r) = h.call(4, TxnRequest::AddPartitionsToTxn(req)) else {
        panic!()
    };
    let mapping = code(ResponseError::InvalidProducerIdMapping);
    let expected = vec![
        ("a".into(), vec![0]),
        ("b".into(), vec![0]),
        ("c".into(), vec![mapping]),
    ];
    assert_eq!(batched_codes(&r), expected);
    assert_eq!(h.c.verify_partition("b", 1001, 0, "t", 1), Ok(()));
    for (v, missing) in [
        (4, ResponseError::InvalidTxnState),
        (5, ResponseError::TransactionAbortable),
    ] {
        let records = h.log.len();
        let req = AddPartitionsToTxnRequest::default().with_transactions(vec![
            batched_txn("a", 1000, 0, true, &[("t", 0), ("t", 9)]),
            batched_txn("b", 1001, 3, true, &[("t", 1)]),
        ]);
        let TxnResponse::AddPartitionsToTxn(r) = h.call(v, TxnRequest::AddPartitionsToTxn(req))
        else {
            panic!()
        };
        let fenced = code(ResponseError::ProducerFenced);
        let expected = vec![
            ("a".into(), vec![0, code(missing)]),
            ("b".into(), vec![fenced]),
        ];
        assert_eq!(batched_codes(&r), expected);
        assert_eq!(h.log.len(), records, "verify_only writes nothing");
    }
}

#[test]
fn idle_transactional_ids_expire_with_a_tombstone() {
    let mut h = Harness::new();
    h.c.config.transactional_id_expiration_ms = 1_000;
    h.c.config.remove_expired_transaction_cleanup_interval_ms = 500;
    h.init(4, "idle", None);
    h.init(4, "busy", None);
    h.add("busy", 1001, 0, &[("t", 0)]);
    h.now_ms += 1_000;
    let out = h.c.tick(h.now_ms);
    h.perform(out);
    assert_eq!(h.c.status("idle"), None);
    assert_eq!(
        h.c.status("busy"),
        Some(TxnStatus::Ongoing),
        "open transactions never expire"
    );
    assert_eq!(
        h.log.last().map(|(k, v)| (key_id(k), v.is_none())),
        Some(("idle".into(), true))
    );
    h.restart();
    assert_eq!(
        (h.c.status("idle"), h.c.status("busy")),
        (None, Some(TxnStatus::Ongoing))
    );
}

#[test]
fn transaction_partition_matches_java_hash_code() {
    assert_eq!(transaction_partition("abc", 50), 96354 % 50);
    assert_eq!(transaction_partition("", 50), 0);
    // "polygenelubricants".hashCode() == i32::MIN; Kafka's Utils.abs maps it to 0.
    assert_eq!(transaction_partition("polygenelubricants", 50), 0);
    for id in ["a", "my-transactional-id", "ü-ß-漢字"] {
        assert!((0..50).contains(&transaction_partition(id, 50)));
    }
}

fn batched_txn(
    id: &str,
    pid: i64,
    epoch: i16,
    verify: bool,
    parts: &[(&str, i32)],
) -> AddPartitionsToTxnTransaction {
    AddPartitionsToTxnTransaction::default()
        .with_transactional_id(txn_id(id))
        .with_producer_id(pid.into())
        .with_producer_epoch(epoch)
        .with_verify_only(verify)
        .with_topics(topics(parts))
}

fn batched_codes(r: &AddPartitionsToTxnResponse) -> Vec<(String, Vec<i16>)> {
    r.results_by_transaction
        .iter()
        .map(|t| {
            let codes = t
                .topic_results
                .iter()
                .flat_map(|x| x.results_by_partition.iter());
            (
                t.transactional_id.0.to_string(),
                codes.map(|p| p.partition_error_code).collect(),
            )
        })
        .collect()
}
