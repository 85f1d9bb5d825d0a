//! Retention by time and size, and DeleteRecords.

mod common;

use common::*;
use runnel_log::{DeleteRecordsError, LeaderEpoch, LogConfig, Offset, PartitionLog, ReadError};

const E: LeaderEpoch = LeaderEpoch(0);

fn small_segments() -> LogConfig {
    LogConfig {
        segment_bytes: 400,
        ..LogConfig::default()
    }
}

fn fill(log: &mut PartitionLog, batches: usize, first_ts: i64) {
    for i in 0..batches {
        log.append_as_leader(&batch(3, first_ts + i as i64 * 10), E, first_ts)
            .unwrap();
    }
}

fn log_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_str()
                .unwrap()
                .ends_with(".log")
        })
        .count()
}

fn wall_clock_ms() -> i64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    since_epoch.as_millis() as i64
}

#[test]
fn records_without_timestamps_are_aged_by_when_their_segment_was_written() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        retention_ms: 60_000,
        ..small_segments()
    };
    let mut log = PartitionLog::open(dir.path(), config, 0).unwrap();
    let now = wall_clock_ms();
    for _ in 0..10 {
        // One record with timestamp -1 (NO_TIMESTAMP), which Kafka accepts.
        log.append_as_leader(&batch(1, -1), E, now).unwrap();
    }
    let segments = log.segment_count();
    assert!(segments > 1, "{segments}");

    // Written just now: kept, as Kafka keeps them by the segment file's modification time.
    let outcome = log.apply_retention(now + 1_000).unwrap();
    assert_eq!(outcome.segments_deleted, 0);
    assert_eq!(log.segment_count(), segments);
    assert_eq!(log.log_start_offset().0, Offset(0));

    // Once retention.ms has passed since the writes, every segment goes.
    let outcome = log.apply_retention(now + 120_000).unwrap();
    assert_eq!(outcome.segments_deleted, segments);
    assert_eq!(log.log_start_offset().0, Offset(10));
}

#[test]
fn retention_by_time_deletes_old_segments_and_moves_log_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        retention_ms: 1_000,
        ..small_segments()
    };
    let mut log = PartitionLog::open(dir.path(), config, 0).unwrap();
    fill(&mut log, 10, 1_000); // old
    fill(&mut log, 10, 50_000); // new
    let segments_before = log.segment_count();
    let size_before = log.size_bytes();
    assert!(segments_before > 4);
    let files_before = log_files(dir.path());

    let outcome = log.apply_retention(50_500).unwrap();
    assert!(outcome.segments_deleted > 0);
    assert!(log.size_bytes() < size_before);
    assert_eq!(size_before - log.size_bytes(), outcome.bytes_deleted);
    assert_eq!(
        log_files(dir.path()),
        files_before - outcome.segments_deleted
    );
    let start = log.log_start_offset().0;
    assert_eq!(outcome.new_log_start.0, start);
    assert!(start > Offset(0) && start <= Offset(30));
    // Everything older than retention is gone; nothing newer is.
    let first = decode_values(
        log.read(start, 1 << 20, Offset(i64::MAX), true)
            .unwrap()
            .records,
    );
    assert!(first[0].0 <= 30);
    assert!(matches!(
        log.read(Offset(0), 100, Offset(i64::MAX), true),
        Err(ReadError::OffsetOutOfRange { .. })
    ));
    // The log start survives a restart.
    drop(log);
    let log = PartitionLog::open(dir.path(), LogConfig::default(), 60_000).unwrap();
    assert_eq!(log.log_start_offset().0, start);
}

#[test]
fn retention_by_time_rolls_and_deletes_an_expired_active_segment() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        retention_ms: 1_000,
        ..LogConfig::default()
    };
    let mut log = PartitionLog::open(dir.path(), config, 0).unwrap();
    fill(&mut log, 3, 1_000);
    assert_eq!(log.segment_count(), 1);
    let outcome = log.apply_retention(100_000).unwrap();
    assert_eq!(outcome.segments_deleted, 1);
    assert_eq!(log.segment_count(), 1);
    assert_eq!(log.log_start_offset().0, Offset(9));
    assert_eq!(log.log_end_offset().0, Offset(9));
    assert_eq!(log.size_bytes(), 0);
    // Appends carry on at the old end.
    assert_eq!(
        log.append_as_leader(&batch(1, 100_000), E, 100_000)
            .unwrap()
            .base_offset,
        Offset(9)
    );
}

#[test]
fn retention_by_size_keeps_at_least_retention_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        retention_bytes: 1_000,
        ..small_segments()
    };
    let mut log = PartitionLog::open(dir.path(), config, 0).unwrap();
    fill(&mut log, 30, 1_000);
    let outcome = log.apply_retention(2_000).unwrap();
    assert!(outcome.segments_deleted > 0);
    assert!(log.size_bytes() >= 1_000, "size {}", log.size_bytes());
    assert!(log.size_bytes() < 1_000 + 400);
    // A second pass has nothing to do.
    assert_eq!(log.apply_retention(2_000).unwrap().segments_deleted, 0);
}

#[test]
fn retention_does_nothing_for_compact_only_topics_or_unlimited() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = LogConfig {
        retention_ms: 1,
        retention_bytes: 1,
        ..small_segments()
    };
    config.cleanup_policy.delete = false;
    config.cleanup_policy.compact = true;
    let mut log = PartitionLog::open(dir.path(), config, 0).unwrap();
    for i in 0..20 {
        let b = kv_batch(
            &[(Some("k"), Some(&i.to_string()))],
            1_000,
            kafka_protocol::records::Compression::None,
        );
        log.append_as_leader(&b, E, 1_000).unwrap();
    }
    assert_eq!(log.apply_retention(1_000_000).unwrap().segments_deleted, 0);
    assert!(matches!(
        log.delete_records_before(Offset(3)),
        Err(DeleteRecordsError::PolicyViolation(_))
    ));
}

#[test]
fn delete_records_moves_log_start_deletes_segments_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), small_segments(), 0).unwrap();
    fill(&mut log, 20, 1_000);
    let segments = log.segment_count();
    assert!(matches!(
        log.delete_records_before(Offset(61)),
        Err(DeleteRecordsError::OffsetOutOfRange { .. })
    ));
    // Offset 25 is inside a batch (24..=26): that batch is still served whole.
    let start = log.delete_records_before(Offset(25)).unwrap();
    assert_eq!(start.0, Offset(25));
    assert!(log.segment_count() < segments);
    // Moving it backwards is a no-op.
    assert_eq!(log.delete_records_before(Offset(10)).unwrap().0, Offset(25));
    let read = decode_values(
        log.read(Offset(25), 1 << 20, Offset(i64::MAX), true)
            .unwrap()
            .records,
    );
    assert_eq!(read[0].0, 24);
    assert!(matches!(
        log.read(Offset(24), 100, Offset(i64::MAX), true),
        Err(ReadError::OffsetOutOfRange { .. })
    ));
    assert_eq!(
        log.offset_for_timestamp(0).unwrap().unwrap().offset,
        Offset(25)
    );
    drop(log);
    let mut log = PartitionLog::open(dir.path(), small_segments(), 0).unwrap();
    assert_eq!(log.log_start_offset().0, Offset(25));
    assert!(log.read(Offset(24), 100, Offset(i64::MAX), true).is_err());
    // Up to the log end empties the log but keeps its end.
    assert_eq!(log.delete_records_before(Offset(60)).unwrap().0, Offset(60));
    assert_eq!(log.log_end_offset().0, Offset(60));
    assert_eq!(
        log.append_as_leader(&batch(1, 5_000), E, 5_000)
            .unwrap()
            .base_offset,
        Offset(60)
    );
}

#[test]
fn moving_the_log_start_forgets_epochs_that_ended_below_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), small_segments(), 0).unwrap();
    for epoch in 0..3 {
        for _ in 0..4 {
            log.append_as_leader(&batch(3, 1_000), LeaderEpoch(epoch), 1_000)
                .unwrap();
        }
    }
    // Epochs 0, 1 and 2 start at 0, 12 and 24.
    assert_eq!(
        log.end_offset_for_epoch(LeaderEpoch(0)),
        Some((LeaderEpoch(0), Offset(12)))
    );
    log.delete_records_before(Offset(15)).unwrap();
    assert_eq!(log.end_offset_for_epoch(LeaderEpoch(0)), None);
    assert_eq!(
        log.end_offset_for_epoch(LeaderEpoch(1)),
        Some((LeaderEpoch(1), Offset(24)))
    );
    drop(log);
    let log = PartitionLog::open(dir.path(), small_segments(), 0).unwrap();
    assert_eq!(log.end_offset_for_epoch(LeaderEpoch(0)), None);
    assert_eq!(log.latest_epoch(), Some(LeaderEpoch(2)));
}
