//! Random idempotent and transactional appends, markers, epoch bumps, crashes, clean closes
//! and lost snapshots against a simple model of Kafka's producer-state rules.

mod common;

use common::producer_batch;
use proptest::prelude::*;
use runnel_log::{AppendError, LeaderEpoch, LogConfig, Offset, PartitionLog};
use std::collections::BTreeMap;
use std::path::Path;

const E: LeaderEpoch = LeaderEpoch(0);
const NOW: i64 = 1_000_000;

#[derive(Debug, Clone)]
enum Op {
    Append { pid: i64, n: usize, txn: bool },
    RetryLast { pid: i64 },
    Marker { pid: i64, commit: bool },
    Bump { pid: i64 },
    Reopen { close: bool, lose_snapshots: bool },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (0i64..3, 1usize..4, any::<bool>()).prop_map(|(pid, n, txn)| Op::Append { pid, n, txn }),
        2 => (0i64..3).prop_map(|pid| Op::RetryLast { pid }),
        2 => (0i64..3, any::<bool>()).prop_map(|(pid, commit)| Op::Marker { pid, commit }),
        1 => (0i64..3).prop_map(|pid| Op::Bump { pid }),
        1 => (any::<bool>(), any::<bool>()).prop_map(|(close, lose_snapshots)| Op::Reopen { close, lose_snapshots }),
    ]
}

#[derive(Debug, Default, Clone)]
struct Producer {
    epoch: i16,
    next_seq: i32,
    /// (first seq, count, first offset, last offset) of the last batch in this epoch.
    last: Option<(i32, usize, i64, i64)>,
    open_txn: Option<i64>,
}

#[derive(Debug, Default)]
struct Model {
    producers: BTreeMap<i64, Producer>,
    end: i64,
    /// (producer, first offset) in marker order.
    aborted: Vec<(i64, i64)>,
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 350,
        ..LogConfig::default()
    }
}

fn reopen(dir: &Path, log: PartitionLog, close: bool, lose_snapshots: bool) -> PartitionLog {
    if close {
        log.close().unwrap();
    } else {
        drop(log);
    }
    if lose_snapshots {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "snapshot") {
                std::fs::remove_file(path).unwrap();
            }
        }
    }
    PartitionLog::open(dir, config(), NOW).unwrap()
}

fn apply(log: &mut PartitionLog, model: &mut Model, op: &Op) -> Result<(), TestCaseError> {
    match *op {
        Op::Append { pid, n, txn } => {
            let p = model.producers.entry(pid).or_default();
            let batch = producer_batch(pid, p.epoch, p.next_seq, n, txn, NOW);
            let result = log.append_as_leader(&batch, E, NOW);
            if p.open_txn.is_some() && !txn {
                prop_assert!(
                    matches!(result, Err(AppendError::InvalidTxnState { .. })),
                    "{result:?}"
                );
                return Ok(());
            }
            let info = result.map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(info.base_offset, Offset(model.end));
            p.last = Some((p.next_seq, n, model.end, model.end + n as i64 - 1));
            p.next_seq += n as i32;
            if txn && p.open_txn.is_none() {
                p.open_txn = Some(model.end);
            }
            model.end += n as i64;
        }
        Op::RetryLast { pid } => {
            let Some(p) = model.producers.get(&pid) else {
                return Ok(());
            };
            let Some((seq, n, first, last)) = p.last else {
                return Ok(());
            };
            let batch = producer_batch(pid, p.epoch, seq, n, p.open_txn.is_some(), NOW);
            match log.append_as_leader(&batch, E, NOW) {
                Err(AppendError::Duplicate(info)) => {
                    prop_assert_eq!(
                        (info.base_offset.value(), info.last_offset.value()),
                        (first, last)
                    );
                }
                other => prop_assert!(false, "expected a duplicate, got {:?}", other),
            }
        }
        Op::Marker { pid, commit } => {
            let p = model.producers.entry(pid).or_default();
            let info = log
                .append_control(pid, p.epoch, commit, 0, E, NOW)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(info.base_offset, Offset(model.end));
            if let Some(first) = p.open_txn.take() {
                if !commit {
                    model.aborted.push((pid, first));
                }
            }
            model.end += 1;
        }
        Op::Bump { pid } => {
            let p = model.producers.entry(pid).or_default();
            if p.open_txn.is_none() {
                p.epoch += 1;
                p.next_seq = 0;
                p.last = None;
            }
        }
        Op::Reopen { .. } => unreachable!("handled by the caller"),
    }
    Ok(())
}

fn check(log: &PartitionLog, model: &Model) -> Result<(), TestCaseError> {
    prop_assert_eq!(log.log_end_offset().0, Offset(model.end));
    let first_open = model.producers.values().filter_map(|p| p.open_txn).min();
    prop_assert_eq!(log.first_unstable_offset(), first_open.map(Offset));
    let aborted: Vec<(i64, i64)> = log
        .aborted_transactions(Offset(0), Offset(model.end))
        .iter()
        .map(|t| (t.producer_id, t.first_offset.value()))
        .collect();
    prop_assert_eq!(&aborted, &model.aborted);
    for info in log.producers() {
        let p = &model.producers[&info.producer_id];
        prop_assert_eq!(info.current_txn_start_offset, p.open_txn.map(Offset));
        if p.last.is_some() {
            prop_assert_eq!(info.producer_epoch, p.epoch);
            prop_assert_eq!(info.last_sequence, p.next_seq - 1);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn producer_state_matches_a_model_across_reopens(ops in prop::collection::vec(op(), 1..50)) {
        let dir = tempfile::tempdir().unwrap();
        let mut log = PartitionLog::open(dir.path(), config(), NOW).unwrap();
        let mut model = Model::default();
        for op in &ops {
            if let Op::Reopen { close, lose_snapshots } = *op {
                log = reopen(dir.path(), log, close, lose_snapshots);
            } else {
                apply(&mut log, &mut model, op)?;
            }
            check(&log, &model)?;
        }
    }
}
