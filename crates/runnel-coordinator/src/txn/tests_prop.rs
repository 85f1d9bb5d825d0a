//! Random request sequences: never a panic, every request answered exactly once, and the named
//! invariants hold after every step.

use std::collections::BTreeMap;

use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use proptest::prelude::*;

use super::state::TxnMetadata;
use super::tests::{txn_id, Harness};
use super::*;

const IDS: [&str; 3] = ["a", "b", "c"];
const PARTS: [(&str, i32); 3] = [("t", 0), ("t", 1), ("u", 0)];

#[derive(Debug, Clone)]
enum Op {
    Init {
        id: usize,
        version: i16,
        expected: Option<i16>,
    },
    Add {
        id: usize,
        epoch_delta: i16,
        parts: Vec<usize>,
    },
    AddOffsets {
        id: usize,
        epoch_delta: i16,
    },
    End {
        id: usize,
        epoch_delta: i16,
        commit: bool,
    },
    MarkersWritten {
        job: usize,
    },
    Advance {
        ms: i64,
    },
    Restart,
    Admin,
}

fn op() -> impl Strategy<Value = Op> {
    let id = 0..IDS.len();
    let delta = -1i16..=1;
    prop_oneof![
        (id.clone(), 0i16..=5, proptest::option::of(delta.clone())).prop_map(
            |(id, version, expected)| Op::Init {
                id,
                version,
                expected
            }
        ),
        (
            id.clone(),
            delta.clone(),
            proptest::collection::vec(0..PARTS.len(), 0..3)
        )
            .prop_map(|(id, epoch_delta, parts)| Op::Add {
                id,
                epoch_delta,
                parts
            }),
        (id.clone(), delta.clone())
            .prop_map(|(id, epoch_delta)| Op::AddOffsets { id, epoch_delta }),
        (id, delta, any::<bool>()).prop_map(|(id, epoch_delta, commit)| Op::End {
            id,
            epoch_delta,
            commit
        }),
        (0usize..4).prop_map(|job| Op::MarkersWritten { job }),
        (0i64..100_000).prop_map(|ms| Op::Advance { ms }),
        Just(Op::Restart),
        Just(Op::Admin),
    ]
}

/// The producer a client of `id` would use: the current one, with its epoch shifted.
fn producer(h: &Harness, id: usize, epoch_delta: i16) -> (i64, i16) {
    h.c.txns.get(IDS[id]).map_or((1000, 0), |t| {
        (t.producer_id, t.producer_epoch.saturating_add(epoch_delta))
    })
}

fn apply(h: &mut Harness, op: Op) {
    match op {
        Op::Init {
            id,
            version,
            expected,
        } => {
            let expected = expected
                .map(|d| producer(h, id, d))
                .filter(|(_, e)| *e >= 0);
            h.init(version, IDS[id], expected);
        }
        Op::Add {
            id,
            epoch_delta,
            parts,
        } => {
            let (pid, epoch) = producer(h, id, epoch_delta);
            let parts: Vec<_> = parts.into_iter().map(|i| PARTS[i]).collect();
            h.add(IDS[id], pid, epoch, &parts);
        }
        Op::AddOffsets { id, epoch_delta } => {
            let (pid, epoch) = producer(h, id, epoch_delta);
            let req = AddOffsetsToTxnRequest::default()
                .with_transactional_id(txn_id(IDS[id]))
                .with_producer_id(pid.into())
                .with_producer_epoch(epoch)
                .with_group_id(StrBytes::from_static_str("g").into());
            h.call(3, TxnRequest::AddOffsetsToTxn(req));
        }
        Op::End {
            id,
            epoch_delta,
            commit,
        } => {
            let (pid, epoch) = producer(h, id, epoch_delta);
            h.end(3, IDS[id], pid, epoch, commit);
        }
        Op::MarkersWritten { job } => {
            if !h.markers.is_empty() {
                let job = h.markers.remove(job % h.markers.len());
                let out = h.c.markers_written(job.id, h.now_ms);
                assert!(h.perform(out).is_empty());
            }
        }
        Op::Advance { ms } => {
            h.now_ms += ms;
            if h.c.next_deadline().is_some_and(|d| d <= h.now_ms) {
                let out = h.c.tick(h.now_ms);
                assert!(h.perform(out).is_empty(), "timers answer no request");
            }
        }
        Op::Restart => {
            let out = h.restart();
            h.perform(out);
        }
        Op::Admin => {
            let ids = IDS.iter().map(|i| txn_id(i)).collect();
            h.call(
                0,
                TxnRequest::DescribeTransactions(
                    DescribeTransactionsRequest::default().with_transactional_ids(ids),
                ),
            );
            h.call(
                1,
                TxnRequest::ListTransactions(ListTransactionsRequest::default()),
            );
        }
    }
}

/// The persisted part of a transaction, which replay must reproduce.
fn persisted(t: &TxnMetadata) -> impl PartialEq + std::fmt::Debug {
    (
        t.producer_id,
        t.producer_epoch,
        t.timeout_ms,
        t.status,
        t.partitions.clone(),
        t.start_ms,
        t.last_update_ms,
    )
}

fn check_invariants(h: &Harness, before: &BTreeMap<String, (i64, i16)>) {
    for (id, t) in &h.c.txns {
        // Epochs never go back: (producer id, epoch) only grows (new producer ids are larger).
        if let Some(old) = before.get(id) {
            assert!(
                (t.producer_id, t.producer_epoch) >= *old,
                "{id}: {old:?} -> {t:?}"
            );
        }
        // At most one open transaction, and the status says which partitions it holds.
        match t.status {
            TxnStatus::Ongoing => assert!(!t.partitions.is_empty()),
            TxnStatus::PrepareCommit | TxnStatus::PrepareAbort => {
                let job = t.job.expect("a preparing transaction has a marker job");
                assert_eq!(h.c.jobs.get(&job), Some(id));
                assert!(
                    h.markers.iter().any(|m| m.id == job),
                    "its markers are in flight"
                );
            }
            TxnStatus::Empty | TxnStatus::CompleteCommit | TxnStatus::CompleteAbort => {
                assert!(t.partitions.is_empty() && t.job.is_none());
            }
            TxnStatus::Dead | TxnStatus::PrepareEpochFence => panic!("{id} kept in {:?}", t.status),
        }
    }
    // Replaying the log gives the same state.
    let mut fresh = TxnCoordinator::new(TxnConfig::default());
    for (k, v) in &h.log {
        fresh.replay(k, v.as_deref()).expect("own records replay");
    }
    let now: Vec<_> =
        h.c.txns
            .iter()
            .map(|(id, t)| (id.clone(), persisted(t)))
            .collect();
    let replayed: Vec<_> = fresh
        .txns
        .iter()
        .map(|(id, t)| (id.clone(), persisted(t)))
        .collect();
    assert_eq!(now, replayed);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn random_request_sequences_keep_invariants(ops in proptest::collection::vec(op(), 1..60)) {
        let mut h = Harness::new();
        for op in ops {
            let before = h.c.txns.iter().map(|(id, t)| (id.clone(), (t.producer_id, t.producer_epoch))).collect();
            apply(&mut h, op);
            check_invariants(&h, &before);
        }
    }
}
