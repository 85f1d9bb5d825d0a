//! Idempotence and transactions at the log level: duplicate detection, sequence and epoch
//! checks, markers, the last stable offset, aborted-transaction indexes, snapshots and their
//! recovery, producer expiry.

mod common;

use common::producer_batch;
use runnel_log::{
    AbortedTxn, AppendError, HighWatermark, LastStableOffset, LeaderEpoch, LogConfig, Offset,
    PartitionLog,
};
use std::fs;
use std::path::Path;

const E: LeaderEpoch = LeaderEpoch(0);
const NOW: i64 = 1_000_000;

fn open(dir: &Path, config: &LogConfig) -> PartitionLog {
    PartitionLog::open(dir, config.clone(), NOW).unwrap()
}

fn small_segments() -> LogConfig {
    LogConfig {
        segment_bytes: 400,
        ..LogConfig::default()
    }
}

fn append(
    log: &mut PartitionLog,
    pid: i64,
    epoch: i16,
    seq: i32,
    n: usize,
    txn: bool,
) -> (i64, i64) {
    let info = log
        .append_as_leader(&producer_batch(pid, epoch, seq, n, txn, NOW), E, NOW)
        .unwrap();
    (info.base_offset.value(), info.last_offset.value())
}

fn expect_duplicate(
    log: &mut PartitionLog,
    pid: i64,
    epoch: i16,
    seq: i32,
    n: usize,
    offsets: (i64, i64),
) {
    let end = log.log_end_offset();
    match log.append_as_leader(&producer_batch(pid, epoch, seq, n, false, NOW), E, NOW) {
        Err(AppendError::Duplicate(info)) => {
            assert_eq!(
                (info.base_offset.value(), info.last_offset.value()),
                offsets
            );
            assert_eq!(info.records as usize, n);
        }
        other => panic!("expected a duplicate of {offsets:?}, got {other:?}"),
    }
    assert_eq!(log.log_end_offset(), end, "a duplicate is not written");
}

fn snapshots(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".snapshot"))
        .collect();
    names.sort();
    names
}

fn lso(log: &PartitionLog) -> i64 {
    let hw = HighWatermark(log.log_end_offset().0);
    log.last_stable_offset(hw).0.value()
}

fn marker(log: &mut PartitionLog, pid: i64, epoch: i16, commit: bool) -> i64 {
    log.append_control(pid, epoch, commit, 0, E, NOW)
        .unwrap()
        .base_offset
        .value()
}

#[test]
fn duplicates_answer_with_the_original_offsets_also_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_segments();
    let mut log = open(dir.path(), &config);
    // Five batches of producer 7 spread over several segments, with other traffic between.
    let mut batches = Vec::new();
    for i in 0..5 {
        batches.push((i * 3, append(&mut log, 7, 0, i * 3, 3, false)));
        append(&mut log, 8, 0, i, 1, false);
    }
    assert!(log.segment_count() > 2, "rolls happened");
    for &(seq, offsets) in &batches {
        expect_duplicate(&mut log, 7, 0, seq, 3, offsets);
    }
    // A partial overlap is not a duplicate: it is out of sequence.
    assert!(matches!(
        log.append_as_leader(&producer_batch(7, 0, 3, 2, false, NOW), E, NOW),
        Err(AppendError::OutOfOrderSequence {
            received: 3,
            last_sequence: 14,
            ..
        })
    ));
    drop(log); // a crash: the last snapshot is the one of the last roll, the tail is replayed
    assert!(!snapshots(dir.path()).is_empty());
    let mut log = open(dir.path(), &config);
    let (last_seq, last) = batches[4];
    expect_duplicate(&mut log, 7, 0, last_seq, 3, last);
    log.close().unwrap();
    let mut log = open(dir.path(), &config);
    expect_duplicate(&mut log, 7, 0, last_seq, 3, last);
    assert_eq!(
        append(&mut log, 7, 0, 15, 1, false).0,
        log.log_end_offset().0.value() - 1
    );
    drop(log);
    // Without snapshots the whole log is replayed: every remembered batch is found again.
    for name in snapshots(dir.path()) {
        fs::remove_file(dir.path().join(name)).unwrap();
    }
    let mut log = open(dir.path(), &config);
    for &(seq, offsets) in &batches[1..] {
        expect_duplicate(&mut log, 7, 0, seq, 3, offsets);
    }
}

#[test]
fn sequence_gaps_and_new_epochs_not_starting_at_zero_are_out_of_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), &LogConfig::default());
    append(&mut log, 1, 0, 0, 2, false);
    let end = log.log_end_offset();
    assert!(matches!(
        log.append_as_leader(&producer_batch(1, 0, 5, 1, false, NOW), E, NOW),
        Err(AppendError::OutOfOrderSequence {
            producer_id: 1,
            last_sequence: 1,
            received: 5,
            ..
        })
    ));
    assert!(matches!(
        log.append_as_leader(&producer_batch(1, 1, 3, 1, false, NOW), E, NOW),
        Err(AppendError::OutOfOrderSequence { received: 3, .. })
    ));
    assert_eq!(log.log_end_offset(), end, "nothing written");
    append(&mut log, 1, 0, 2, 1, false);
    // An unknown producer may start anywhere (its state may have expired), as in Kafka.
    append(&mut log, 2, 4, 57, 1, false);
    assert_eq!(log.producers().len(), 2);
}

#[test]
fn stale_epochs_are_fenced_and_a_bump_resets_the_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), &LogConfig::default());
    append(&mut log, 3, 2, 0, 4, false);
    assert!(matches!(
        log.append_as_leader(&producer_batch(3, 1, 4, 1, false, NOW), E, NOW),
        Err(AppendError::ProducerFenced {
            producer_id: 3,
            epoch: 1,
            current_epoch: 2
        })
    ));
    assert!(matches!(
        log.append_control(3, 1, true, 0, E, NOW),
        Err(AppendError::ProducerFenced { .. })
    ));
    append(&mut log, 3, 3, 0, 2, false);
    let info = log.producers()[0];
    assert_eq!((info.producer_epoch, info.last_sequence), (3, 1));
    // The old epoch's batches are no longer duplicates: they are fenced.
    assert!(matches!(
        log.append_as_leader(&producer_batch(3, 2, 0, 4, false, NOW), E, NOW),
        Err(AppendError::ProducerFenced { .. })
    ));
    // A marker from an older coordinator epoch is fenced too.
    log.append_control(3, 3, false, 5, E, NOW).unwrap();
    assert!(matches!(
        log.append_control(3, 3, false, 4, E, NOW),
        Err(AppendError::CoordinatorFenced {
            coordinator_epoch: 4,
            current_coordinator_epoch: 5,
            ..
        })
    ));
    assert_eq!(log.producers()[0].coordinator_epoch, 5);
}

#[test]
fn commit_marker_moves_the_last_stable_offset_past_the_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), &LogConfig::default());
    append(&mut log, 9, 0, 0, 2, false);
    let (first, _) = append(&mut log, 1, 0, 0, 3, true);
    append(&mut log, 9, 0, 2, 2, false);
    append(&mut log, 1, 0, 3, 1, true);
    assert_eq!(log.first_unstable_offset(), Some(Offset(first)));
    assert_eq!(lso(&log), first);
    assert_eq!(
        log.last_stable_offset(HighWatermark(Offset(1))),
        LastStableOffset(Offset(1)),
        "capped by the high watermark"
    );
    let producer = log
        .producers()
        .into_iter()
        .find(|p| p.producer_id == 1)
        .unwrap();
    assert_eq!(producer.current_txn_start_offset, Some(Offset(first)));
    // Non-transactional data inside an open transaction is refused.
    assert!(matches!(
        log.append_as_leader(&producer_batch(1, 0, 4, 1, false, NOW), E, NOW),
        Err(AppendError::InvalidTxnState { producer_id: 1, .. })
    ));
    let at = marker(&mut log, 1, 0, true);
    assert_eq!(log.first_unstable_offset(), None);
    assert_eq!(lso(&log), at + 1);
    assert!(log
        .aborted_transactions(Offset(0), Offset(at + 1))
        .is_empty());
    // The next transaction continues the sequence.
    append(&mut log, 1, 0, 4, 1, true);
    assert_eq!(lso(&log), at + 1);
}

#[test]
fn aborted_transactions_are_listed_for_fetch_ranges_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_segments();
    let mut log = open(dir.path(), &config);
    append(&mut log, 9, 0, 0, 2, false); // 0-1
    let (a_first, _) = append(&mut log, 1, 0, 0, 3, true); // 2-4
    let (b_first, _) = append(&mut log, 2, 0, 0, 2, true); // 5-6
    let a_marker = marker(&mut log, 1, 0, false); // 7: abort while 2 is still open
    let b_marker = marker(&mut log, 2, 0, true); // 8
    for i in 0..6 {
        append(&mut log, 9, 0, 2 + i * 2, 2, false);
    }
    let (c_first, _) = append(&mut log, 1, 0, 3, 2, true);
    let c_marker = marker(&mut log, 1, 0, false);
    assert!(log.segment_count() > 2);
    let a = AbortedTxn {
        producer_id: 1,
        first_offset: Offset(a_first),
        last_offset: Offset(a_marker),
        last_stable_offset: Offset(b_first),
    };
    let c = AbortedTxn {
        producer_id: 1,
        first_offset: Offset(c_first),
        last_offset: Offset(c_marker),
        last_stable_offset: Offset(c_marker + 1),
    };
    let end = log.log_end_offset().0;
    let check = |log: &PartitionLog| {
        assert_eq!(log.aborted_transactions(Offset(0), end), vec![a, c]);
        assert_eq!(log.aborted_transactions(Offset(0), Offset(a_first)), vec![]);
        assert_eq!(log.aborted_transactions(Offset(3), Offset(4)), vec![a]);
        assert_eq!(
            log.aborted_transactions(Offset(b_marker), Offset(c_first + 1)),
            vec![c]
        );
        assert_eq!(log.aborted_transactions(Offset(c_marker + 1), end), vec![]);
        assert_eq!(log.first_unstable_offset(), None);
    };
    check(&log);
    log.close().unwrap();
    let log = open(dir.path(), &config);
    check(&log);
    drop(log);
    // Full replay: snapshots and every transaction index gone.
    for entry in fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if name.ends_with(".snapshot") || name.ends_with(".txnindex") {
            fs::remove_file(path).unwrap();
        }
    }
    let log = open(dir.path(), &config);
    check(&log);
}

#[test]
fn an_open_transaction_survives_a_crash_and_holds_the_lso_until_its_marker() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_segments();
    let mut log = open(dir.path(), &config);
    append(&mut log, 9, 0, 0, 2, false);
    let (first, _) = append(&mut log, 5, 1, 0, 3, true);
    for i in 0..8 {
        append(&mut log, 9, 0, 2 + i, 1, false);
    }
    assert!(
        log.segment_count() > 1,
        "the transaction's start is in a sealed segment"
    );
    drop(log); // crash: no marker, no snapshot at the end
    let mut log = open(dir.path(), &config);
    assert_eq!(log.first_unstable_offset(), Some(Offset(first)));
    assert_eq!(lso(&log), first);
    let at = marker(&mut log, 5, 1, false);
    assert_eq!(lso(&log), at + 1);
    assert_eq!(log.aborted_transactions(Offset(0), Offset(at + 1)).len(), 1);
    drop(log);
    let log = open(dir.path(), &config);
    assert_eq!(lso(&log), at + 1);
    assert_eq!(
        log.aborted_transactions(Offset(0), Offset(at + 1))[0].first_offset,
        Offset(first)
    );
}

#[test]
fn a_torn_marker_reopens_its_transaction_and_leaves_no_index_entry() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig::default();
    let mut log = open(dir.path(), &config);
    let (first, _) = append(&mut log, 1, 0, 0, 2, true);
    let at = marker(&mut log, 1, 0, false);
    let log_file = dir.path().join("00000000000000000000.log");
    let full_len = fs::metadata(&log_file).unwrap().len();
    log.close().unwrap(); // snapshot at the log end, past the marker
                          // The marker's last bytes never reached the disk.
    fs::OpenOptions::new()
        .write(true)
        .open(&log_file)
        .unwrap()
        .set_len(full_len - 5)
        .unwrap();
    let mut log = open(dir.path(), &config);
    assert_eq!(log.log_end_offset().0, Offset(at));
    assert_eq!(log.first_unstable_offset(), Some(Offset(first)));
    assert!(log
        .aborted_transactions(Offset(0), Offset(at + 1))
        .is_empty());
    assert!(!dir.path().join("00000000000000000000.txnindex").exists());
    let again = marker(&mut log, 1, 0, false);
    assert_eq!(again, at);
    assert_eq!(log.aborted_transactions(Offset(0), Offset(at + 1)).len(), 1);
    // Garbage after a whole marker keeps the marker and its entry.
    log.close().unwrap();
    let mut f = fs::OpenOptions::new().append(true).open(&log_file).unwrap();
    std::io::Write::write_all(&mut f, &[0xAB; 17]).unwrap();
    drop(f);
    let log = open(dir.path(), &config);
    assert_eq!(log.first_unstable_offset(), None);
    assert_eq!(log.aborted_transactions(Offset(0), Offset(at + 1)).len(), 1);
}

#[test]
fn idle_producers_expire_but_open_transactions_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        producer_id_expiration_ms: 1_000,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), &config);
    append(&mut log, 1, 0, 0, 1, false); // last timestamp NOW
    append(&mut log, 2, 0, 0, 1, true);
    assert_eq!(log.expire_producers(NOW + 999), 0);
    assert_eq!(log.expire_producers(NOW + 1_000), 1);
    let left: Vec<i64> = log.producers().iter().map(|p| p.producer_id).collect();
    assert_eq!(left, vec![2]);
    // Forgotten: its retry is new data now.
    let end = log.log_end_offset().0.value();
    assert_eq!(append(&mut log, 1, 0, 0, 1, false).0, end);
}

#[test]
fn snapshots_are_kept_to_two_and_follow_the_log_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_segments();
    let mut log = open(dir.path(), &config);
    for i in 0..30 {
        append(&mut log, 4, 0, i, 1, false);
    }
    assert!(log.segment_count() > 3);
    assert_eq!(snapshots(dir.path()).len(), 2);
    let end = log.log_end_offset().0;
    log.delete_records_before(end).unwrap();
    let left = snapshots(dir.path());
    assert!(!left.is_empty());
    assert!(left
        .iter()
        .all(|n| n.as_str() >= format!("{:020}.snapshot", end.value()).as_str()));
    drop(log);
    let mut log = open(dir.path(), &config);
    expect_duplicate(&mut log, 4, 0, 29, 1, (end.value() - 1, end.value() - 1));
}

#[test]
fn clients_cannot_write_markers_or_transactional_batches_without_a_producer() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), &LogConfig::default());
    let batch = runnel_protocol::records::control::build_marker_batch(
        1,
        0,
        runnel_protocol::records::control::TxnMarker {
            kind: runnel_protocol::records::control::MarkerKind::Commit,
            coordinator_epoch: 0,
        },
        NOW,
    );
    assert!(matches!(
        log.append_as_leader(&batch, E, NOW),
        Err(AppendError::InvalidRecord(_))
    ));
    // A marker without a transaction is written and changes nothing.
    let at = marker(&mut log, 6, 0, false);
    assert_eq!(at, 0);
    assert!(log.aborted_transactions(Offset(0), Offset(1)).is_empty());
    assert_eq!(lso(&log), 1);
}

fn clean(log: &mut PartitionLog, now_ms: i64) -> Option<runnel_log::CleanOutcome> {
    let plan = log.prepare_clean(now_ms)?;
    let cleaned = plan.execute(now_ms).unwrap();
    Some(log.install_cleaned(cleaned).unwrap())
}

/// `(offset, "key=value")` of every record and `(producer id, offset)` of every marker.
type Everything = (Vec<(i64, String)>, Vec<(i64, i64)>);

fn read_everything(log: &PartitionLog) -> Everything {
    use runnel_protocol::record_batch::BatchIter;
    let (mut records, mut markers) = (Vec::new(), Vec::new());
    let mut at = log.log_start_offset().0;
    let end = log.log_end_offset().0;
    while at < end {
        let read = log.read(at, 1 << 20, end, true).unwrap();
        if read.records.is_empty() {
            break;
        }
        for item in BatchIter::new(&read.records) {
            let (header, _) = item.unwrap();
            if header.is_control() {
                markers.push((header.producer_id, header.base_offset));
            }
        }
        for (offset, key, value) in common::decode_kv(read.records.clone()) {
            if let (Some(k), Some(v)) = (key, value) {
                records.push((
                    offset,
                    format!(
                        "{}={}",
                        String::from_utf8_lossy(&k),
                        String::from_utf8_lossy(&v)
                    ),
                ));
            }
        }
        at = read.next_offset_hint;
    }
    (records, markers)
}

#[test]
fn cleaner_drops_aborted_data_keeps_committed_and_stops_at_open_transactions() {
    use common::{kv_batch, txn_kv_batch};
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 300,
        cleanup_policy: runnel_log::CleanupPolicy {
            delete: false,
            compact: true,
        },
        min_cleanable_dirty_ratio: 0.0,
        delete_retention_ms: 1_000,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), &config);
    let mut filler = 0;
    let mut fill = |log: &mut PartitionLog, n: usize| {
        for _ in 0..n {
            let key = format!("f{filler}");
            log.append_as_leader(
                &kv_batch(
                    &[(Some(&key), Some("x"))],
                    NOW,
                    kafka_protocol::records::Compression::None,
                ),
                E,
                NOW,
            )
            .unwrap();
            filler += 1;
        }
    };
    let put = |log: &mut PartitionLog, pid, seq, kv: &[(&str, &str)]| {
        log.append_as_leader(&txn_kv_batch(pid, seq, kv, NOW), E, NOW)
            .unwrap();
    };
    put(&mut log, 2, 0, &[("k1", "committed-old")]);
    marker(&mut log, 2, 0, true);
    put(&mut log, 1, 0, &[("k1", "aborted")]);
    fill(&mut log, 2);
    marker(&mut log, 1, 0, false);
    put(&mut log, 2, 1, &[("k2", "committed")]);
    marker(&mut log, 2, 0, true);
    fill(&mut log, 3);
    put(&mut log, 3, 0, &[("k3", "open")]);
    let open_at = log.log_end_offset().0.value() - 1;
    fill(&mut log, 4);
    put(&mut log, 3, 1, &[("k1", "open-newer")]);
    fill(&mut log, 4);
    assert!(log.segment_count() > 5);
    assert_eq!(log.first_unstable_offset(), Some(Offset(open_at)));

    clean(&mut log, NOW).expect("dirty enough");
    let (records, _) = read_everything(&log);
    let values: Vec<&str> = records.iter().map(|(_, r)| r.as_str()).collect();
    assert!(
        !values.contains(&"k1=aborted"),
        "aborted data removed: {values:?}"
    );
    assert!(
        values.contains(&"k1=committed-old"),
        "an aborted write does not shadow the committed value"
    );
    assert!(values.contains(&"k2=committed") && values.contains(&"k3=open"));
    assert!(
        values.contains(&"k1=open-newer"),
        "nothing at or past the open transaction is cleaned"
    );

    // Once the open transaction commits, the newer k1 wins; the abort marker has lost its data,
    // gets a delete horizon and goes after delete.retention.ms.
    marker(&mut log, 3, 0, true);
    fill(&mut log, 4);
    clean(&mut log, NOW + 1).expect("new dirty segments");
    let (records, markers) = read_everything(&log);
    let values: Vec<&str> = records.iter().map(|(_, r)| r.as_str()).collect();
    assert!(
        !values.contains(&"k1=committed-old") && values.contains(&"k1=open-newer"),
        "{values:?}"
    );
    assert!(
        markers.iter().any(|m| m.0 == 1),
        "abort marker kept until its horizon"
    );
    fill(&mut log, 4);
    clean(&mut log, NOW + 5_000).expect("new dirty segments");
    let (_, markers) = read_everything(&log);
    assert!(
        markers.iter().any(|m| m.0 == 1),
        "as in Kafka, the marker stays while producer 1's emptied aborted batch (its last \
         sequence, RETAIN_EMPTY) is in the log: {markers:?}"
    );
    // Once producer 1 has expired its emptied batch goes (the marker stays on that pass, which
    // saw the batch), the next pass gives the marker its horizon, and the first pass after
    // the horizon removes it.
    assert!(log.expire_producers(NOW + 2 * 86_400_000) > 0);
    for pass_at in [NOW + 6_000, NOW + 8_000] {
        fill(&mut log, 4);
        clean(&mut log, pass_at).expect("new dirty segments");
        let (_, markers) = read_everything(&log);
        assert!(markers.iter().any(|m| m.0 == 1), "{markers:?}");
    }
    fill(&mut log, 4);
    clean(&mut log, NOW + 10_000).expect("new dirty segments");
    let (_, markers) = read_everything(&log);
    assert!(
        markers.iter().all(|m| m.0 != 1),
        "empty abort marker removed after its horizon: {markers:?}"
    );
    assert!(
        markers.iter().any(|m| m.0 == 2),
        "commit marker of data still in the log kept"
    );
    // Producer state rebuilt from the cleaned log still opens.
    drop(log);
    let log = open(dir.path(), &config);
    assert_eq!(log.first_unstable_offset(), None);
}

fn compacted_config() -> LogConfig {
    LogConfig {
        segment_bytes: 300,
        cleanup_policy: runnel_log::CleanupPolicy {
            delete: false,
            compact: true,
        },
        min_cleanable_dirty_ratio: 0.0,
        delete_retention_ms: 1_000,
        ..LogConfig::default()
    }
}

fn remove_snapshots(dir: &Path) {
    for name in snapshots(dir) {
        fs::remove_file(dir.join(name)).unwrap();
    }
}

/// Headers `(producer id, base offset, last offset, records, base sequence)` of every batch.
fn batch_headers(log: &PartitionLog) -> Vec<(i64, i64, i64, i32, i32)> {
    use runnel_protocol::record_batch::BatchIter;
    let mut out = Vec::new();
    let mut at = log.log_start_offset().0;
    let end = log.log_end_offset().0;
    while at < end {
        let read = log.read(at, 1 << 20, end, true).unwrap();
        if read.records.is_empty() {
            break;
        }
        for item in BatchIter::new(&read.records) {
            let (h, _) = item.unwrap();
            out.push((
                h.producer_id,
                h.base_offset,
                h.last_offset(),
                h.records_count,
                h.base_sequence,
            ));
        }
        at = read.next_offset_hint;
    }
    out
}

/// Kafka's cleaner keeps the batch holding an active producer's last sequence, emptied
/// (`BatchRetention.RETAIN_EMPTY`), so producer state rebuilt from the log (a replica, or a
/// restart without snapshots) still recognises the producer's retries.
#[test]
fn cleaner_keeps_an_emptied_batch_with_an_active_producers_last_sequence() {
    use common::{idempotent_kv_batch, kv_batch};
    let dir = tempfile::tempdir().unwrap();
    let config = compacted_config();
    let mut log = open(dir.path(), &config);
    let kv = [("k0", "a"), ("k1", "a"), ("k2", "a")];
    log.append_as_leader(&idempotent_kv_batch(7, 0, 0, &kv, NOW), E, NOW)
        .unwrap();
    for key in ["k0", "k1", "k2", "f0", "f1", "f2", "f3"] {
        let batch = kv_batch(
            &[(Some(key), Some("b"))],
            NOW,
            kafka_protocol::records::Compression::None,
        );
        log.append_as_leader(&batch, E, NOW).unwrap();
    }
    log.roll(NOW).unwrap();
    clean(&mut log, NOW).expect("dirty");
    let producer_batches: Vec<_> = batch_headers(&log)
        .into_iter()
        .filter(|h| h.0 == 7)
        .collect();
    assert_eq!(
        producer_batches,
        vec![(7, 0, 2, 0, 0)],
        "an empty batch stays"
    );
    // A second pass keeps it too.
    log.append_as_leader(
        &kv_batch(
            &[(Some("f9"), Some("c"))],
            NOW,
            kafka_protocol::records::Compression::None,
        ),
        E,
        NOW,
    )
    .unwrap();
    log.roll(NOW).unwrap();
    clean(&mut log, NOW + 5_000).expect("dirty");
    assert!(batch_headers(&log).contains(&(7, 0, 2, 0, 0)));

    drop(log);
    remove_snapshots(dir.path());
    let mut log = open(dir.path(), &config);
    expect_duplicate(&mut log, 7, 0, 0, 3, (0, 2));
    assert!(matches!(
        log.append_as_leader(&producer_batch(7, 0, 5, 1, false, NOW), E, NOW),
        Err(AppendError::OutOfOrderSequence { .. })
    ));
}

/// When a producer's last write is a marker (its epoch was bumped by an abort), Kafka's
/// cleaner keeps that marker as an empty control batch (`isBatchLastRecordOfProducer`) instead
/// of removing it after its delete horizon.
#[test]
fn cleaner_keeps_an_emptied_marker_that_is_a_producers_last_write() {
    use common::{kv_batch, txn_kv_batch};
    let dir = tempfile::tempdir().unwrap();
    let config = compacted_config();
    let mut log = open(dir.path(), &config);
    let fill = |log: &mut PartitionLog, from: usize| {
        for i in from..from + 4 {
            let key = format!("f{i}");
            let batch = kv_batch(
                &[(Some(&key), Some("x"))],
                NOW,
                kafka_protocol::records::Compression::None,
            );
            log.append_as_leader(&batch, E, NOW).unwrap();
        }
        log.roll(NOW).unwrap();
    };
    log.append_as_leader(&txn_kv_batch(8, 0, &[("t", "aborted")], NOW), E, NOW)
        .unwrap();
    // The coordinator aborts with a bumped epoch (as after a transaction timeout).
    let abort_at = log
        .append_control(8, 1, false, 0, E, NOW)
        .unwrap()
        .base_offset
        .value();
    fill(&mut log, 0);
    // Pass 1 removes the aborted data, pass 2 gives the empty marker its horizon, pass 3
    // (after delete.retention.ms) would remove it.
    clean(&mut log, NOW).expect("dirty");
    fill(&mut log, 10);
    clean(&mut log, NOW + 1).expect("dirty");
    fill(&mut log, 20);
    clean(&mut log, NOW + 10_000).expect("dirty");
    let headers = batch_headers(&log);
    assert!(
        headers
            .iter()
            .any(|h| h.0 == 8 && h.1 == abort_at && h.3 == 0),
        "the producer's last marker stays, emptied: {headers:?}"
    );
    assert!(!headers.iter().any(|h| h.0 == 8 && h.1 != abort_at));

    // The empty marker is skipped by a replay from the log (as Kafka's is) and reads fine.
    drop(log);
    remove_snapshots(dir.path());
    let log = open(dir.path(), &config);
    assert_eq!(batch_headers(&log), headers);
    assert_eq!(log.first_unstable_offset(), None);
}
