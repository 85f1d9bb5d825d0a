//! End-to-end tests of `PartitionLog` on a real directory.

mod common;

use common::{batch, batch_with, decode_values, stored};
use kafka_protocol::records::Compression;
use runnel_log::{AppendError, LeaderEpoch, LogConfig, Offset, PartitionLog, ReadError};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;

const EPOCH: LeaderEpoch = LeaderEpoch(0);
const NO_BOUND: Offset = Offset(i64::MAX);

fn small_segments() -> LogConfig {
    LogConfig {
        segment_bytes: 600,
        index_interval_bytes: 150,
        ..LogConfig::default()
    }
}

/// Appends `n` batches of 3 records each; returns the batches as stored.
fn fill(log: &mut PartitionLog, n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let b = batch(3, 1_000 + 10 * i as i64);
            let info = log.append_as_leader(&b, EPOCH, 0).unwrap();
            stored(&b, info.base_offset.value(), EPOCH.0)
        })
        .collect()
}

/// Reads everything from `start`, one segment at a time.
fn read_all(log: &PartitionLog, mut start: Offset) -> Vec<u8> {
    let mut out = Vec::new();
    while start < log.log_end_offset().0 {
        let read = log.read(start, 1 << 20, NO_BOUND, true).unwrap();
        assert!(!read.records.is_empty(), "no progress at {start}");
        out.extend_from_slice(&read.records);
        start = read.next_offset_hint;
    }
    out
}

fn segment_file(dir: &Path, base: i64, suffix: &str) -> std::path::PathBuf {
    dir.join(format!("{base:020}.{suffix}"))
}

#[test]
fn round_trip_across_segment_rolls() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), small_segments(), 0).unwrap();
    let batches = fill(&mut log, 20);
    assert!(
        log.segment_count() > 3,
        "expected rolls, got {} segments",
        log.segment_count()
    );
    assert_eq!(log.log_end_offset().0, Offset(60));
    assert_eq!(read_all(&log, Offset(0)), batches.concat());
    // A start in the middle of a batch returns that whole batch first.
    let read = log.read(Offset(31), 1 << 20, NO_BOUND, true).unwrap();
    assert_eq!(&read.records[..batches[10].len()], &batches[10][..]);
    assert_eq!(decode_values(read.records)[0].0, 30);
    assert!(fs::metadata(segment_file(dir.path(), 0, "index"))
        .unwrap()
        .len()
        .is_multiple_of(8));
    let sizes: u64 = batches.iter().map(|b| b.len() as u64).sum();
    assert_eq!(log.size_bytes(), sizes);
}

#[test]
fn max_bytes_smaller_than_a_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), LogConfig::default(), 0).unwrap();
    let batches = fill(&mut log, 3);
    let read = log.read(Offset(0), 10, NO_BOUND, true).unwrap();
    assert_eq!(read.records, batches[0]);
    assert_eq!(read.next_offset_hint, Offset(3));
    let read = log.read(Offset(0), 10, NO_BOUND, false).unwrap();
    assert!(read.records.is_empty());
    assert_eq!(read.next_offset_hint, Offset(0));
    // max_bytes covering one and a half batches returns exactly one.
    let read = log
        .read(Offset(0), batches[0].len() * 3 / 2, NO_BOUND, false)
        .unwrap();
    assert_eq!(read.records, batches[0]);
}

#[test]
fn upper_bound_is_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), LogConfig::default(), 0).unwrap();
    let batches = fill(&mut log, 4);
    let read = log.read(Offset(0), 1 << 20, Offset(6), true).unwrap();
    assert_eq!(read.records, batches[..2].concat());
    assert_eq!(read.next_offset_hint, Offset(6));
    // A bound inside a batch still returns that batch (its base offset is below the bound).
    let read = log.read(Offset(0), 1 << 20, Offset(7), true).unwrap();
    assert_eq!(read.records, batches[..3].concat());
    assert!(log
        .read(Offset(6), 1 << 20, Offset(6), true)
        .unwrap()
        .records
        .is_empty());
}

#[test]
fn out_of_range_and_log_end_reads() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), LogConfig::default(), 0).unwrap();
    fill(&mut log, 2);
    let end = log.log_end_offset().0;
    assert!(log
        .read(end, 100, NO_BOUND, true)
        .unwrap()
        .records
        .is_empty());
    match log.read(end.next(), 100, NO_BOUND, true) {
        Err(ReadError::OffsetOutOfRange {
            requested,
            log_start,
            log_end,
        }) => {
            assert_eq!(
                (requested, log_start, log_end),
                (Offset(7), Offset(0), Offset(6))
            );
        }
        other => panic!("expected OffsetOutOfRange, got {other:?}"),
    }
    assert!(matches!(
        log.read(Offset(-1), 100, NO_BOUND, true),
        Err(ReadError::OffsetOutOfRange { .. })
    ));
}

#[test]
fn append_rejects_corrupt_oversized_and_inconsistent_batches() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        max_message_bytes: 200,
        ..LogConfig::default()
    };
    let mut log = PartitionLog::open(dir.path(), config, 0).unwrap();
    let mut corrupt = batch(2, 0);
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    assert!(matches!(
        log.append_as_leader(&corrupt, EPOCH, 0),
        Err(AppendError::Corrupt(_))
    ));
    let big = batch(20, 0);
    assert!(matches!(
        log.append_as_leader(&big, EPOCH, 0),
        Err(AppendError::MessageTooLarge { .. })
    ));
    let mut wrong_count = batch(2, 0);
    wrong_count[57..61].copy_from_slice(&5i32.to_be_bytes());
    let crc = runnel_protocol::record_batch::compute_crc(&wrong_count);
    wrong_count[17..21].copy_from_slice(&crc.to_be_bytes());
    assert!(matches!(
        log.append_as_leader(&wrong_count, EPOCH, 0),
        Err(AppendError::InvalidRecord(_))
    ));
    assert_eq!(log.log_end_offset().0, Offset(0));
}

#[test]
fn reopen_after_close_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), small_segments(), 0).unwrap();
    let batches = fill(&mut log, 12);
    let segments = log.segment_count();
    log.close().unwrap();
    let log = PartitionLog::open(dir.path(), small_segments(), 0).unwrap();
    assert_eq!(log.segment_count(), segments);
    assert_eq!(log.log_end_offset().0, Offset(36));
    assert_eq!(read_all(&log, Offset(0)), batches.concat());
}

/// Appends 5 batches, damages the tail with `damage`, reopens and checks that exactly the
/// first 4 batches survive and appends continue after them.
fn torn_tail_case(damage: impl FnOnce(&Path, u64)) {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), LogConfig::default(), 0).unwrap();
    let batches = fill(&mut log, 5);
    drop(log);
    let last_start: u64 = batches[..4].iter().map(|b| b.len() as u64).sum();
    damage(&segment_file(dir.path(), 0, "log"), last_start);
    let mut log = PartitionLog::open(dir.path(), LogConfig::default(), 0).unwrap();
    assert_eq!(log.log_end_offset().0, Offset(12));
    assert_eq!(read_all(&log, Offset(0)), batches[..4].concat());
    assert_eq!(
        fs::metadata(segment_file(dir.path(), 0, "log"))
            .unwrap()
            .len(),
        last_start
    );
    let info = log.append_as_leader(&batch(1, 5), EPOCH, 0).unwrap();
    assert_eq!(info.base_offset, Offset(12));
    assert_eq!(
        log.read(Offset(12), 1000, NO_BOUND, true)
            .unwrap()
            .next_offset_hint,
        Offset(13)
    );
}

#[test]
fn torn_tail_truncated_mid_batch() {
    torn_tail_case(|path, last_start| {
        let f = OpenOptions::new().write(true).open(path).unwrap();
        f.set_len(last_start + 30).unwrap();
    });
}

#[test]
fn torn_tail_flipped_byte_in_last_batch() {
    torn_tail_case(|path, last_start| {
        let mut bytes = fs::read(path).unwrap();
        let at = last_start as usize + 70;
        bytes[at] ^= 0x01;
        fs::write(path, bytes).unwrap();
    });
}

#[test]
fn torn_tail_garbage_after_last_batch() {
    torn_tail_case(|path, last_start| {
        // Cut the fifth batch off entirely, then append junk where it was.
        let f = OpenOptions::new().write(true).open(path).unwrap();
        f.set_len(last_start).unwrap();
        let mut f = OpenOptions::new().append(true).open(path).unwrap();
        f.write_all(&[0xAB; 100]).unwrap();
    });
}

#[test]
fn missing_or_corrupt_sealed_indexes_are_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), small_segments(), 0).unwrap();
    let batches = fill(&mut log, 12);
    log.close().unwrap();
    let index = segment_file(dir.path(), 0, "index");
    let time_index = segment_file(dir.path(), 0, "timeindex");
    let good_index = fs::read(&index).unwrap();
    let good_time_index = fs::read(&time_index).unwrap();
    assert!(good_index.len() >= 16, "want several index entries");
    fs::remove_file(&index).unwrap();
    fs::write(&time_index, [1, 2, 3, 4, 5]).unwrap();
    let mut log = PartitionLog::open(dir.path(), small_segments(), 0).unwrap();
    assert_eq!(read_all(&log, Offset(0)), batches.concat());
    assert_eq!(fs::read(&index).unwrap(), good_index);
    assert_eq!(fs::read(&time_index).unwrap(), good_time_index);
    // An index pointing past the log is rebuilt as well.
    log.flush().unwrap();
    drop(log);
    let mut bad = good_index.clone();
    bad[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
    fs::write(&index, bad).unwrap();
    let log = PartitionLog::open(dir.path(), small_segments(), 0).unwrap();
    assert_eq!(fs::read(&index).unwrap(), good_index);
    assert_eq!(read_all(&log, Offset(0)), batches.concat());
}

#[test]
fn segment_ms_rolls_with_injected_clock() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_ms: 1_000,
        ..LogConfig::default()
    };
    let mut log = PartitionLog::open(dir.path(), config, 10_000).unwrap();
    log.append_as_leader(&batch(1, 10_000), EPOCH, 10_000)
        .unwrap();
    log.append_as_leader(&batch(1, 10_500), EPOCH, 10_999)
        .unwrap();
    assert_eq!(log.segment_count(), 1);
    // Kafka rolls once strictly more than segment.ms has passed.
    log.append_as_leader(&batch(1, 11_000), EPOCH, 11_000)
        .unwrap();
    assert_eq!(log.segment_count(), 1);
    log.append_as_leader(&batch(1, 11_001), EPOCH, 11_001)
        .unwrap();
    assert_eq!(log.segment_count(), 2);
    assert!(segment_file(dir.path(), 3, "log").exists());
    // An explicit roll of an empty active segment does nothing.
    log.roll(11_002).unwrap();
    log.roll(11_003).unwrap();
    assert_eq!(log.segment_count(), 3);
}

#[test]
fn flush_policies() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        flush_messages: 1,
        ..LogConfig::default()
    };
    let mut log = PartitionLog::open(dir.path(), config, 0).unwrap();
    log.append_as_leader(&batch(2, 0), EPOCH, 0).unwrap();
    // Already flushed by flush.messages=1, so the timer has nothing to do.
    assert!(!log.flush_if_due(1_000_000).unwrap());
    log.set_config(LogConfig {
        flush_ms: 100,
        ..LogConfig::default()
    });
    log.append_as_leader(&batch(2, 0), EPOCH, 1_000).unwrap();
    assert!(!log.flush_if_due(1_099).unwrap());
    assert!(log.flush_if_due(1_100).unwrap());
    assert!(!log.flush_if_due(5_000).unwrap());
}

#[test]
fn offset_for_timestamp_finds_the_exact_record() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), small_segments(), 0).unwrap();
    // Batch i holds 4 records with timestamps 100*i .. 100*i + 3, offsets 4*i ..
    for i in 0..10 {
        log.append_as_leader(&batch(4, 100 * i), EPOCH, 0).unwrap();
    }
    let found = |ts| {
        log.offset_for_timestamp(ts)
            .unwrap()
            .map(|t| (t.offset.value(), t.timestamp))
    };
    assert_eq!(found(0), Some((0, 0)));
    assert_eq!(found(302), Some((14, 302)));
    assert_eq!(found(304), Some((16, 400)));
    assert_eq!(found(903), Some((39, 903)));
    assert_eq!(found(904), None);
    let max = log.max_timestamp_offset().unwrap();
    assert_eq!((max.offset, max.timestamp), (Offset(39), 903));
}

#[test]
fn offset_for_timestamp_in_a_gzip_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), LogConfig::default(), 0).unwrap();
    log.append_as_leader(&batch(3, 10), EPOCH, 0).unwrap();
    let gz = batch_with(6, 50, Compression::Gzip, "gz");
    assert_eq!(gz[22] & 0x07, 1, "batch is gzip-compressed");
    log.append_as_leader(&gz, EPOCH, 0).unwrap();
    let at = log.offset_for_timestamp(53).unwrap().unwrap();
    assert_eq!((at.offset, at.timestamp), (Offset(6), 53));
    let max = log.max_timestamp_offset().unwrap();
    assert_eq!((max.offset, max.timestamp), (Offset(8), 55));
}

#[test]
fn epoch_cache_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), LogConfig::default(), 0).unwrap();
    assert_eq!(log.latest_epoch(), None);
    log.append_as_leader(&batch(2, 0), LeaderEpoch(1), 0)
        .unwrap();
    log.append_as_leader(&batch(2, 0), LeaderEpoch(1), 0)
        .unwrap();
    log.append_as_leader(&batch(3, 0), LeaderEpoch(4), 0)
        .unwrap();
    log.close().unwrap();
    let log = PartitionLog::open(dir.path(), LogConfig::default(), 0).unwrap();
    assert_eq!(log.latest_epoch(), Some(LeaderEpoch(4)));
    assert_eq!(
        log.end_offset_for_epoch(LeaderEpoch(1)),
        Some((LeaderEpoch(1), Offset(4)))
    );
    assert_eq!(
        log.end_offset_for_epoch(LeaderEpoch(3)),
        Some((LeaderEpoch(1), Offset(4)))
    );
    assert_eq!(
        log.end_offset_for_epoch(LeaderEpoch(4)),
        Some((LeaderEpoch(4), Offset(7)))
    );
    assert_eq!(log.end_offset_for_epoch(LeaderEpoch(0)), None);
    assert_eq!(log.end_offset_for_epoch(LeaderEpoch(5)), None);
    let read = log.read(Offset(4), 1000, NO_BOUND, true).unwrap();
    assert_eq!(
        i32::from_be_bytes(read.records[12..16].try_into().unwrap()),
        4
    );
}

#[test]
fn epoch_starting_in_a_torn_tail_is_forgotten() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), LogConfig::default(), 0).unwrap();
    let first = batch(2, 0);
    log.append_as_leader(&first, LeaderEpoch(1), 0).unwrap();
    log.append_as_leader(&batch(2, 0), LeaderEpoch(2), 0)
        .unwrap();
    drop(log);
    let f = OpenOptions::new()
        .write(true)
        .open(segment_file(dir.path(), 0, "log"))
        .unwrap();
    f.set_len(first.len() as u64 + 20).unwrap();
    let log = PartitionLog::open(dir.path(), LogConfig::default(), 0).unwrap();
    assert_eq!(log.latest_epoch(), Some(LeaderEpoch(1)));
    assert_eq!(
        log.end_offset_for_epoch(LeaderEpoch(1)),
        Some((LeaderEpoch(1), Offset(2)))
    );
}

/// Kafka's `LogSegment.shouldRoll`: once the segment has a first batch with a timestamp,
/// `segment.ms` is measured between that batch's max timestamp and the incoming batch's max
/// timestamp (not the wall clock), and the roll needs strictly more than `segment.ms`.
#[test]
fn segment_ms_compares_record_timestamps_with_the_first_batch() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_ms: 1_000,
        ..LogConfig::default()
    };
    let mut log = PartitionLog::open(dir.path(), config, 100_000).unwrap();
    // Records far newer than the first batch roll at once, whatever the clock says.
    log.append_as_leader(&batch(1, 10_000), EPOCH, 100_000)
        .unwrap();
    log.append_as_leader(&batch(1, 11_000), EPOCH, 100_001)
        .unwrap();
    assert_eq!(log.segment_count(), 1, "exactly segment.ms apart: no roll");
    log.append_as_leader(&batch(1, 11_001), EPOCH, 100_002)
        .unwrap();
    assert_eq!(log.segment_count(), 2);
    // Records whose timestamps do not advance never roll by time, however late they come.
    log.append_as_leader(&batch(1, 11_500), EPOCH, 500_000)
        .unwrap();
    log.append_as_leader(&batch(1, 12_001), EPOCH, 900_000)
        .unwrap();
    assert_eq!(log.segment_count(), 2);
}
