//! Random sequences of append / read / roll / reopen checked against a model: a Vec of the
//! batches as they should be stored. Every read must return exactly the model's batches.

mod common;

use common::{batch, stored};
use proptest::prelude::*;
use runnel_log::{LeaderEpoch, LogConfig, Offset, PartitionLog};
use std::path::Path;

#[derive(Debug, Clone)]
enum Op {
    Append {
        records: usize,
        epoch_bump: bool,
    },
    Read {
        start_pick: usize,
        max_bytes: usize,
        bound_pick: usize,
        min_one_batch: bool,
    },
    Roll,
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1usize..6, any::<bool>()).prop_map(|(records, b)| Op::Append { records, epoch_bump: b }),
        4 => (any::<usize>(), 0usize..700, any::<usize>(), any::<bool>()).prop_map(
            |(start_pick, max_bytes, bound_pick, min_one_batch)| Op::Read {
                start_pick, max_bytes, bound_pick, min_one_batch,
            }
        ),
        1 => Just(Op::Roll),
        1 => Just(Op::Reopen),
    ]
}

struct Model {
    /// (base offset, stored bytes) of every batch, in order.
    batches: Vec<(i64, Vec<u8>)>,
    end: i64,
}

impl Model {
    /// The batches a read must return: from the one containing `start`, while they fit
    /// `max_bytes` (the first always when `min_one_batch`) and start below `bound`; nothing
    /// when `start` itself is at or past `bound`.
    fn expected(
        &self,
        start: i64,
        max_bytes: usize,
        bound: i64,
        min_one: bool,
    ) -> Vec<&(i64, Vec<u8>)> {
        if start >= bound {
            return Vec::new();
        }
        let first = self
            .batches
            .iter()
            .position(|(base, b)| base + last_delta(b) >= start);
        let mut out = Vec::new();
        let mut size = 0;
        for entry in first.map_or(&[][..], |i| &self.batches[i..]) {
            let fits = size + entry.1.len() <= max_bytes || (out.is_empty() && min_one);
            if entry.0 >= bound || !fits {
                break;
            }
            size += entry.1.len();
            out.push(entry);
        }
        out
    }
}

fn last_delta(b: &[u8]) -> i64 {
    i64::from(i32::from_be_bytes(b[23..27].try_into().unwrap()))
}

fn check_read(dir: &Path, log: &PartitionLog, model: &Model, op: &Op) -> Result<(), TestCaseError> {
    let Op::Read {
        start_pick,
        max_bytes,
        bound_pick,
        min_one_batch,
    } = *op
    else {
        unreachable!()
    };
    let start = (start_pick % (model.end as usize + 1)) as i64;
    let bound = (bound_pick % (model.end as usize + 2)) as i64;
    let read = log
        .read(Offset(start), max_bytes, Offset(bound), min_one_batch)
        .unwrap();
    let allowed = model.expected(start, max_bytes, bound, min_one_batch);
    // A read stays inside one segment, so it may stop early, but only at a segment start.
    let got: Vec<u8> = read.records.to_vec();
    let mut taken = 0;
    let mut size = 0;
    while size < got.len() {
        prop_assert!(
            taken < allowed.len(),
            "read returned more than the model allows"
        );
        let expected = &allowed[taken].1;
        prop_assert_eq!(&got[size..size + expected.len()], &expected[..]);
        size += expected.len();
        taken += 1;
    }
    if let Some((next_base, _)) = allowed.get(taken) {
        let segment = dir.join(format!("{next_base:020}.log"));
        prop_assert!(
            taken > 0 && segment.exists(),
            "read stopped early at {} without a segment boundary",
            next_base
        );
    }
    let hint = allowed[..taken]
        .last()
        .map_or(start, |(base, b)| base + last_delta(b) + 1);
    prop_assert_eq!(read.next_offset_hint, Offset(hint));
    Ok(())
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 500,
        index_interval_bytes: 120,
        ..LogConfig::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn log_matches_model(ops in prop::collection::vec(op(), 1..60)) {
        let dir = tempfile::tempdir().unwrap();
        let mut log = PartitionLog::open(dir.path(), config(), 0).unwrap();
        let mut model = Model { batches: Vec::new(), end: 0 };
        let mut epoch = 0;
        for (i, op) in ops.iter().enumerate() {
            match op {
                Op::Append { records, epoch_bump } => {
                    epoch += i32::from(*epoch_bump);
                    let b = batch(*records, i as i64);
                    let info = log.append_as_leader(&b, LeaderEpoch(epoch), 0).unwrap();
                    prop_assert_eq!(info.base_offset, Offset(model.end));
                    model.batches.push((model.end, stored(&b, model.end, epoch)));
                    model.end += *records as i64;
                }
                Op::Read { .. } => check_read(dir.path(), &log, &model, op)?,
                Op::Roll => log.roll(0).unwrap(),
                Op::Reopen => {
                    log.close().unwrap();
                    log = PartitionLog::open(dir.path(), config(), 0).unwrap();
                }
            }
            prop_assert_eq!(log.log_end_offset().0, Offset(model.end));
            let size: usize = model.batches.iter().map(|(_, b)| b.len()).sum();
            prop_assert_eq!(log.size_bytes(), size as u64);
        }
        if model.end > 0 {
            prop_assert_eq!(log.latest_epoch(), Some(LeaderEpoch(epoch)));
        }
    }
}
