//! The log cleaner: compaction semantics, crash safety, codecs, and a model-based property
//! test. Also the append-side checks of issue 4 (keyless records, recompression,
//! LogAppendTime).

mod common;

use bytes::Bytes;
use common::*;
use kafka_protocol::records::Compression;
use proptest::prelude::*;
use runnel_log::{
    AppendError, CleanOutcome, CleanupPolicy, CrashPoint, LeaderEpoch, LogConfig, Offset,
    PartitionLog, TopicCompression,
};
use runnel_protocol::record_batch::{validate_batch, BatchIter, TimestampType};
use std::collections::BTreeMap;

const E: LeaderEpoch = LeaderEpoch(0);
const DAY_MS: i64 = 86_400_000;

fn compacted(segment_bytes: u64) -> LogConfig {
    LogConfig {
        segment_bytes,
        cleanup_policy: CleanupPolicy {
            delete: false,
            compact: true,
        },
        min_cleanable_dirty_ratio: 0.0,
        ..LogConfig::default()
    }
}

fn clean(log: &mut PartitionLog, now_ms: i64) -> Option<CleanOutcome> {
    let plan = log.prepare_clean(now_ms)?;
    let cleaned = plan.execute(now_ms).unwrap();
    Some(log.install_cleaned(cleaned).unwrap())
}

type Entry = (i64, Option<Bytes>, Option<Bytes>);

/// Every record from the log start to the end, checking batches are valid on the way.
fn read_all(log: &PartitionLog) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut at = log.log_start_offset().0;
    let end = log.log_end_offset().0;
    // Each read advances by at least one batch.
    while at < end {
        let read = log.read(at, 1 << 20, Offset(i64::MAX), true).unwrap();
        for batch in BatchIter::new(&read.records) {
            validate_batch(batch.unwrap().1).unwrap();
        }
        if read.records.is_empty() {
            break;
        }
        out.extend(
            decode_kv(read.records)
                .into_iter()
                .filter(|e| e.0 >= at.value()),
        );
        at = read.next_offset_hint;
    }
    for pair in out.windows(2) {
        assert!(pair[0].0 < pair[1].0, "offsets must increase: {pair:?}");
    }
    out
}

/// Key -> latest value, tombstones removing the key.
fn live(entries: &[Entry]) -> BTreeMap<Bytes, Bytes> {
    let mut map = BTreeMap::new();
    for (_, k, v) in entries {
        let k = k.clone().expect("keyed");
        match v {
            Some(v) => map.insert(k, v.clone()),
            None => map.remove(&k),
        };
    }
    map
}

fn put(log: &mut PartitionLog, key: &str, value: Option<&str>, ts: i64, c: Compression) {
    log.append_as_leader(&kv_batch(&[(Some(key), value)], ts, c), E, ts)
        .unwrap();
}

/// Many updates to 5 keys, a tombstone for 2 of them, then a roll so all is sealed.
fn updates_and_tombstones(log: &mut PartitionLog, c: Compression) {
    for round in 0..40 {
        for key in 0..5 {
            put(
                log,
                &format!("k{key}"),
                Some(&format!("v{round}-{key}")),
                1_000,
                c,
            );
        }
    }
    put(log, "k1", None, 1_000, c);
    put(log, "k3", None, 1_000, c);
    log.roll(1_000).unwrap();
}

#[test]
fn compaction_keeps_latest_per_key_and_tombstones_until_delete_retention() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), compacted(1_000), 0).unwrap();
    updates_and_tombstones(&mut log, Compression::None);
    put(&mut log, "k0", Some("in-active"), 1_000, Compression::None);
    let before = read_all(&log);
    let expected = live(&before);
    let size_before = log.size_bytes();
    let active_end = log.log_end_offset();

    let outcome = clean(&mut log, 10_000).unwrap();
    assert!(outcome.records_removed > 150, "{outcome:?}");
    assert!(log.size_bytes() < size_before / 5);
    let after = read_all(&log);
    assert_eq!(live(&after), expected);
    // Sealed part: one record per key (live ones and the 2 tombstones); active untouched.
    let sealed: Vec<_> = after.iter().filter(|e| e.0 < 202).collect();
    assert_eq!(sealed.len(), 5, "{sealed:?}");
    assert_eq!(after.last().unwrap().2.as_deref(), Some(&b"in-active"[..]));
    assert_eq!(log.log_end_offset(), active_end);
    assert_eq!(log.log_start_offset().0, Offset(0));

    // Nothing is dirty now.
    assert!(log.prepare_clean(10_000).is_none());
    // Past delete.retention.ms the tombstones go (a new dirty segment triggers the pass).
    log.roll(20_000).unwrap();
    put(&mut log, "k4", Some("late"), 20_000, Compression::None);
    log.roll(20_000).unwrap();
    clean(&mut log, 10_000 + DAY_MS - 1).unwrap();
    assert_eq!(read_all(&log).iter().filter(|e| e.2.is_none()).count(), 2);
    put(&mut log, "k2", Some("later"), 20_000, Compression::None);
    log.roll(20_000).unwrap();
    clean(&mut log, 10_000 + DAY_MS).unwrap();
    let final_entries = read_all(&log);
    assert_eq!(final_entries.iter().filter(|e| e.2.is_none()).count(), 0);
    let mut expected = expected;
    expected.insert(Bytes::from("k4"), Bytes::from("late"));
    expected.insert(Bytes::from("k2"), Bytes::from("later"));
    assert_eq!(live(&final_entries), expected);
    assert_eq!(final_entries.len(), 3);

    // And all of it survives a restart.
    drop(log);
    let log = PartitionLog::open(dir.path(), compacted(1_000), 30_000).unwrap();
    assert_eq!(read_all(&log), final_entries);
}

#[test]
fn dirty_ratio_and_compaction_lags_are_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = compacted(1_000);
    config.min_cleanable_dirty_ratio = 0.5;
    config.min_compaction_lag_ms = 5_000;
    let mut log = PartitionLog::open(dir.path(), config.clone(), 0).unwrap();
    updates_and_tombstones(&mut log, Compression::None);
    // Records at ts ~1000 are younger than the lag at now = 3000.
    assert!(log.prepare_clean(3_000).is_none());
    assert!(clean(&mut log, 7_000).is_some());
    // The checkpoint survives a restart: a little new data is below the ratio.
    drop(log);
    let mut log = PartitionLog::open(dir.path(), config.clone(), 7_000).unwrap();
    put(&mut log, "k0", Some("x"), 7_000, Compression::None);
    log.roll(7_000).unwrap();
    assert!(log.prepare_clean(100_000).is_none());
    // max.compaction.lag.ms forces the pass anyway.
    config.max_compaction_lag_ms = 10_000;
    log.set_config(config);
    assert!(log.prepare_clean(100_000).is_some());
}

#[test]
fn every_codec_goes_through_the_cleaner_and_stays_compressed() {
    for c in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut log = PartitionLog::open(dir.path(), compacted(2_000), 0).unwrap();
        for round in 0..20 {
            let values: Vec<String> = (0..4).map(|k| format!("r{round}k{k}")).collect();
            let keys: Vec<String> = (0..4).map(|k| format!("k{k}")).collect();
            let entries: Vec<_> = keys
                .iter()
                .zip(&values)
                .map(|(k, v)| (Some(k.as_str()), Some(v.as_str())))
                .collect();
            log.append_as_leader(&kv_batch(&entries, 1_000, c), E, 1_000)
                .unwrap();
        }
        put(&mut log, "k0", None, 1_000, c);
        log.roll(1_000).unwrap();
        let expected = live(&read_all(&log));
        clean(&mut log, 5_000).unwrap();
        let after = read_all(&log);
        assert_eq!(live(&after), expected, "{c:?}");
        assert_eq!(after.len(), 4, "{c:?}");
        let read = log
            .read(Offset(0), 1 << 20, Offset(i64::MAX), true)
            .unwrap();
        for batch in BatchIter::new(&read.records) {
            let h = validate_batch(batch.unwrap().1).unwrap();
            assert_eq!(format!("{:?}", h.compression().unwrap()), format!("{c:?}"));
        }
    }
}

#[test]
fn a_crash_at_any_install_step_leaves_a_valid_log_with_the_same_content() {
    for point in [
        CrashPoint::BeforeSwap,
        CrashPoint::AfterSwapRename,
        CrashPoint::MidDelete,
        CrashPoint::AfterDelete,
        CrashPoint::BeforeCheckpoint,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let config = compacted(600);
        let mut log = PartitionLog::open(dir.path(), config.clone(), 0).unwrap();
        updates_and_tombstones(&mut log, Compression::Lz4);
        put(&mut log, "k9", Some("active"), 1_000, Compression::None);
        let expected = live(&read_all(&log));
        let end = log.log_end_offset();
        // Small groups, so a pass swaps several of them.
        let mut plan_config = config.clone();
        plan_config.segment_bytes = 1_200;
        log.set_config(plan_config);
        let cleaned = log.prepare_clean(5_000).unwrap().execute(5_000).unwrap();
        assert!(log.install_cleaned_with_crash(cleaned, point).is_err());
        drop(log);

        let mut log = PartitionLog::open(dir.path(), config.clone(), 6_000).unwrap();
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".cleaned") || n.ends_with(".swap"))
            .collect();
        assert!(leftovers.is_empty(), "{point:?}: {leftovers:?}");
        assert_eq!(live(&read_all(&log)), expected, "{point:?}");
        assert_eq!(log.log_end_offset(), end, "{point:?}");
        // A new pass finishes the job.
        clean(&mut log, 7_000);
        let after = read_all(&log);
        assert_eq!(live(&after), expected, "{point:?}");
        assert_eq!(after.len(), 6, "{point:?}: {after:?}");
        put(&mut log, "k9", Some("next"), 8_000, Compression::None);
    }
}

#[test]
fn retention_or_delete_records_during_a_clean_aborts_the_pass() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = compacted(1_000);
    config.cleanup_policy.delete = true;
    let mut log = PartitionLog::open(dir.path(), config, 0).unwrap();
    updates_and_tombstones(&mut log, Compression::None);
    let plan = log.prepare_clean(5_000).unwrap();
    log.delete_records_before(Offset(100)).unwrap();
    let expected = live(&read_all(&log));
    let outcome = log.install_cleaned(plan.execute(5_000).unwrap()).unwrap();
    assert!(outcome.aborted);
    assert_eq!(live(&read_all(&log)), expected);
    assert!(clean(&mut log, 5_000).is_some_and(|o| !o.aborted));
    assert_eq!(live(&read_all(&log)), expected);
    assert_eq!(log.log_start_offset().0, Offset(100));
}

#[test]
fn a_small_key_map_cleans_in_several_passes() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), compacted(500), 0).unwrap();
    updates_and_tombstones(&mut log, Compression::None);
    let expected = live(&read_all(&log));
    let mut passes = 0;
    while let Some(plan) = log.prepare_clean(5_000) {
        let cleaned = plan.with_map_limit_bytes(1).execute(5_000).unwrap();
        log.install_cleaned(cleaned).unwrap();
        passes += 1;
        assert!(passes < 100);
    }
    assert!(passes > 1);
    let after = read_all(&log);
    assert_eq!(live(&after), expected);
    assert_eq!(after.len(), 5);
}

#[test]
fn keyless_records_are_refused_on_compacted_topics() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), compacted(1 << 20), 0).unwrap();
    for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let b = kv_batch(&[(Some("a"), Some("1")), (None, Some("2"))], 1_000, c);
        match log.append_as_leader(&b, E, 1_000) {
            Err(AppendError::InvalidRecord(msg)) => {
                assert!(
                    msg.contains("Compacted topic cannot accept message without key"),
                    "{msg}"
                )
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(log.log_end_offset().0, Offset(0));
    // The same batch is fine on a delete topic.
    let mut log = PartitionLog::open(dir.path(), LogConfig::default(), 0).unwrap();
    let b = kv_batch(
        &[(Some("a"), Some("1")), (None, Some("2"))],
        1_000,
        Compression::Gzip,
    );
    log.append_as_leader(&b, E, 1_000).unwrap();
}

#[test]
fn topic_compression_recompresses_other_codecs_and_keeps_matching_ones() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        compression: TopicCompression::Zstd,
        ..LogConfig::default()
    };
    let mut log = PartitionLog::open(dir.path(), config, 0).unwrap();
    let sent = [
        kv_batch(
            &[(Some("a"), Some("1")), (Some("b"), Some("2"))],
            1_000,
            Compression::Gzip,
        ),
        kv_batch(&[(Some("c"), Some("3"))], 1_000, Compression::None),
        kv_batch(&[(Some("d"), Some("4"))], 1_000, Compression::Zstd),
    ];
    for b in &sent {
        log.append_as_leader(b, E, 1_000).unwrap();
    }
    let read = log
        .read(Offset(0), 1 << 20, Offset(i64::MAX), true)
        .unwrap();
    let batches: Vec<_> = BatchIter::new(&read.records)
        .map(|b| b.unwrap().1.to_vec())
        .collect();
    assert_eq!(batches.len(), 3);
    for b in &batches {
        let h = validate_batch(b).unwrap();
        assert_eq!(
            h.compression().unwrap(),
            runnel_log::config::Compression::Zstd
        );
    }
    // The Zstd batch was stored as sent (offset and epoch patched only).
    assert_eq!(batches[2], stored(&sent[2], 3, 0));
    let values: Vec<_> = decode_kv(read.records)
        .into_iter()
        .map(|e| e.2.unwrap())
        .collect();
    assert_eq!(values, ["1", "2", "3", "4"]);
}

#[test]
fn log_append_time_stamps_the_batch() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        timestamp_type: TimestampType::LogAppendTime,
        ..LogConfig::default()
    };
    let mut log = PartitionLog::open(dir.path(), config, 0).unwrap();
    let info = log
        .append_as_leader(&batch_with(3, 1_000, Compression::Snappy, "t"), E, 77_777)
        .unwrap();
    assert_eq!(info.log_append_time_ms, 77_777);
    assert_eq!(info.max_timestamp, 77_777);
    let read = log
        .read(Offset(0), 1 << 20, Offset(i64::MAX), true)
        .unwrap();
    let h = validate_batch(&read.records).unwrap();
    assert_eq!(h.timestamp_type(), TimestampType::LogAppendTime);
    assert_eq!(h.max_timestamp, 77_777);
    assert_eq!(
        log.offset_for_timestamp(50_000).unwrap().unwrap().offset,
        Offset(0)
    );
    // CreateTime topics report -1.
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), LogConfig::default(), 0).unwrap();
    assert_eq!(
        log.append_as_leader(&batch(1, 5), E, 9)
            .unwrap()
            .log_append_time_ms,
        -1
    );
}

#[derive(Debug, Clone)]
enum Op {
    Put(u8, Option<u8>, bool),
    Roll,
    Clean,
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0u8..6, proptest::option::weighted(0.8, any::<u8>()), any::<bool>())
            .prop_map(|(k, v, gz)| Op::Put(k, v, gz)),
        2 => Just(Op::Roll),
        2 => Just(Op::Clean),
        1 => Just(Op::Reopen),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Random appends, rolls, cleans and restarts against a model (key -> latest value):
    /// reading the whole log always yields the model, with increasing offsets, and every
    /// key appears at most once in what the cleaner has covered.
    #[test]
    fn cleaner_matches_a_key_value_model(ops in proptest::collection::vec(op(), 1..60)) {
        let dir = tempfile::tempdir().unwrap();
        let config = compacted(300);
        let mut log = PartitionLog::open(dir.path(), config.clone(), 0).unwrap();
        let mut model: BTreeMap<Bytes, Bytes> = BTreeMap::new();
        let mut now = 1_000;
        for op in ops {
            now += 10;
            match op {
                Op::Put(k, v, gz) => {
                    let key = format!("key{k}");
                    let value = v.map(|v| format!("value{v}"));
                    let c = if gz { Compression::Gzip } else { Compression::None };
                    put(&mut log, &key, value.as_deref(), now, c);
                    match value {
                        Some(v) => model.insert(Bytes::from(key), Bytes::from(v)),
                        None => model.remove(key.as_bytes()),
                    };
                }
                Op::Roll => log.roll(now).unwrap(),
                Op::Clean => { clean(&mut log, now); }
                Op::Reopen => {
                    drop(log);
                    log = PartitionLog::open(dir.path(), config.clone(), now).unwrap();
                }
            }
            let entries = read_all(&log);
            prop_assert_eq!(live(&entries), model.clone());
        }
        // A final roll and clean leaves one record per key (tombstones kept: within horizon).
        log.roll(now).unwrap();
        clean(&mut log, now);
        let entries = read_all(&log);
        prop_assert_eq!(live(&entries), model.clone());
        let mut keys: Vec<_> = entries.iter().map(|e| e.1.clone()).collect();
        let n = keys.len();
        keys.sort();
        keys.dedup();
        prop_assert_eq!(keys.len(), n);
    }
}

/// `cargo test --release -p runnel-log -- --ignored --nocapture cleaner_throughput`
#[test]
#[ignore]
fn cleaner_throughput() {
    for (name, c) in [("none", Compression::None), ("lz4", Compression::Lz4)] {
        let dir = tempfile::tempdir().unwrap();
        let mut log = PartitionLog::open(dir.path(), compacted(64 << 20), 0).unwrap();
        let value = "x".repeat(200);
        let keys: Vec<String> = (0..10_000).map(|k| format!("key-{k:06}")).collect();
        // ~1M records of ~220 bytes in batches of 100, 10k distinct keys.
        for b in 0..10_000 {
            let entries: Vec<_> = (0..100)
                .map(|i| {
                    (
                        Some(keys[(b * 100 + i) % keys.len()].as_str()),
                        Some(value.as_str()),
                    )
                })
                .collect();
            log.append_as_leader(&kv_batch(&entries, 1_000, c), E, 1_000)
                .unwrap();
        }
        log.roll(1_000).unwrap();
        let size = log.size_bytes();
        let started = std::time::Instant::now();
        let plan = log.prepare_clean(5_000).unwrap();
        let cleaned = plan.execute(5_000).unwrap();
        let outcome = log.install_cleaned(cleaned).unwrap();
        let secs = started.elapsed().as_secs_f64();
        println!(
            "cleaner_throughput codec={name}: read {:.1} MB ({} records) in {:.2} s = {:.1} MB/s; wrote {:.2} MB, removed {} records",
            outcome.bytes_read as f64 / 1e6,
            outcome.records_read,
            secs,
            size as f64 / 1e6 / secs,
            outcome.bytes_written as f64 / 1e6,
            outcome.records_removed
        );
    }
}

/// Kafka's `maxCompactionDelay`: the earliest first-batch timestamp over all dirty segments
/// (ignoring segments without one) decides whether `max.compaction.lag.ms` has passed, not
/// only the first dirty segment's.
#[test]
fn max_compaction_lag_looks_at_every_dirty_segment() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = compacted(1_000);
    let mut log = PartitionLog::open(dir.path(), config.clone(), 0).unwrap();
    for i in 0..100 {
        put(
            &mut log,
            &format!("k{i}"),
            Some("1"),
            90_000,
            Compression::None,
        );
    }
    log.roll(90_000).unwrap();
    clean(&mut log, 90_000).unwrap();
    config.min_cleanable_dirty_ratio = 0.9;
    config.max_compaction_lag_ms = 10_000;
    log.set_config(config);
    // First dirty segment: recent timestamps; second: old ones (out-of-order producer times).
    put(&mut log, "a", Some("1"), 95_000, Compression::None);
    log.roll(95_000).unwrap();
    put(&mut log, "b", Some("1"), 1_000, Compression::None);
    log.roll(95_000).unwrap();
    put(&mut log, "c", Some("1"), 95_000, Compression::None);
    // At 100_000 the second segment's records are 99 s old: overdue.
    assert!(log.prepare_clean(100_000).is_some());
}
