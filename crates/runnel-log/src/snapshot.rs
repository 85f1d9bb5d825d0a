//! Producer-state snapshots: `<20-digit offset>.snapshot` holds the producer states as of that
//! offset (every batch below it applied), in Kafka's `ProducerSnapshot` format version 1, so
//! Kafka's tools can read them:
//!
//! ```text
//! version i16 (1) | crc u32 (CRC-32C of everything after it) | count i32 | count x entry
//! entry: producerId i64 | epoch i16 | lastSequence i32 | lastOffset i64 (-1: no data) |
//!        offsetDelta i32 | timestamp i64 | coordinatorEpoch i32 | currentTxnFirstOffset i64
//! ```
//!
//! As in Kafka, a snapshot remembers only the last data batch of each producer (the log tail
//! replayed after it refills the five-batch window). Snapshots are written to a temporary file,
//! fsynced and renamed, so a crash leaves either no snapshot or a whole one; a snapshot that
//! fails its CRC is deleted and the previous one (or a full replay) is used instead.

use crate::offsets::Offset;
use crate::producer_state::{snapshot_batch, ProducerEntry, ProducerStates};
use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

pub(crate) const SNAPSHOT_SUFFIX: &str = "snapshot";
const VERSION: i16 = 1;
const HEADER_LEN: usize = 2 + 4 + 4;
const ENTRY_LEN: usize = 8 + 2 + 4 + 8 + 4 + 8 + 4 + 8;
/// Snapshots kept after a new one is written: the newest and one to fall back on.
pub(crate) const SNAPSHOTS_TO_KEEP: usize = 2;

pub(crate) fn snapshot_path(dir: &Path, offset: Offset) -> PathBuf {
    dir.join(format!("{:020}.{SNAPSHOT_SUFFIX}", offset.value()))
}

/// Offsets of the snapshots in `dir`, oldest first.
pub(crate) fn list(dir: &Path) -> io::Result<Vec<Offset>> {
    let mut offsets = Vec::new();
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".snapshot")) else {
            continue;
        };
        if stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(offset) = stem.parse() {
                offsets.push(Offset(offset));
            }
        }
    }
    offsets.sort();
    Ok(offsets)
}

pub(crate) fn delete(dir: &Path, offset: Offset) -> io::Result<()> {
    match fs::remove_file(snapshot_path(dir, offset)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

pub(crate) fn encode(states: &ProducerStates) -> Vec<u8> {
    let entries = &states.producers;
    let mut out = Vec::with_capacity(HEADER_LEN + entries.len() * ENTRY_LEN);
    out.extend_from_slice(&VERSION.to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(&(entries.len() as i32).to_be_bytes());
    for entry in entries.values() {
        let last = entry.batches.back();
        out.extend_from_slice(&entry.producer_id.to_be_bytes());
        out.extend_from_slice(&entry.epoch.to_be_bytes());
        out.extend_from_slice(&entry.last_seq().to_be_bytes());
        out.extend_from_slice(&last.map_or(-1, |b| b.last_offset.value()).to_be_bytes());
        let delta = last.map_or(0, |b| {
            (b.last_offset.value() - b.first_offset.value()) as i32
        });
        out.extend_from_slice(&delta.to_be_bytes());
        out.extend_from_slice(&entry.last_timestamp.to_be_bytes());
        out.extend_from_slice(&entry.coordinator_epoch.to_be_bytes());
        let txn = entry.current_txn_first_offset.map_or(-1, Offset::value);
        out.extend_from_slice(&txn.to_be_bytes());
    }
    let crc = runnel_protocol::record_batch::crc32c(&out[6..]);
    out[2..6].copy_from_slice(&crc.to_be_bytes());
    out
}

pub(crate) fn decode(bytes: &[u8]) -> Result<ProducerStates, String> {
    if bytes.len() < HEADER_LEN {
        return Err(format!("{} bytes is shorter than the header", bytes.len()));
    }
    let version = i16::from_be_bytes([bytes[0], bytes[1]]);
    if version != VERSION {
        return Err(format!("unknown snapshot version {version}"));
    }
    let stored = u32::from_be_bytes(bytes[2..6].try_into().expect("4 bytes"));
    let computed = runnel_protocol::record_batch::crc32c(&bytes[6..]);
    if stored != computed {
        return Err(format!(
            "CRC mismatch: stored {stored:#010x}, computed {computed:#010x}"
        ));
    }
    let count = i32::from_be_bytes(bytes[6..10].try_into().expect("4 bytes"));
    let count = usize::try_from(count).map_err(|_| format!("negative entry count {count}"))?;
    let body = &bytes[HEADER_LEN..];
    if body.len() != count.saturating_mul(ENTRY_LEN) {
        return Err(format!(
            "{count} entries need {} bytes but {} follow the header",
            count.saturating_mul(ENTRY_LEN),
            body.len()
        ));
    }
    let entries = body
        .chunks_exact(ENTRY_LEN)
        .map(|e| {
            let i64_at = |at: usize| i64::from_be_bytes(e[at..at + 8].try_into().expect("8"));
            let i32_at = |at: usize| i32::from_be_bytes(e[at..at + 4].try_into().expect("4"));
            let last_seq = i32_at(10);
            let batch = snapshot_batch(last_seq, i64_at(14), i32_at(22), i64_at(26));
            let txn = i64_at(38);
            ProducerEntry {
                producer_id: i64_at(0),
                epoch: i16::from_be_bytes([e[8], e[9]]),
                batches: batch.into_iter().collect::<VecDeque<_>>(),
                coordinator_epoch: i32_at(34),
                last_timestamp: i64_at(26),
                current_txn_first_offset: (txn >= 0).then_some(Offset(txn)),
            }
        })
        .collect();
    Ok(ProducerStates::from_entries(entries))
}

/// Writes the snapshot for `offset` atomically (temporary file, fsync, rename).
pub(crate) fn write(dir: &Path, offset: Offset, states: &ProducerStates) -> io::Result<()> {
    let path = snapshot_path(dir, offset);
    let tmp = path.with_extension("snapshot.tmp");
    let mut file = File::create(&tmp)?;
    file.write_all(&encode(states))?;
    file.sync_all()?;
    fs::rename(&tmp, &path)?;
    crate::checkpoint::sync_dir(dir)
}

/// Reads the snapshot for `offset`.
pub(crate) fn read(dir: &Path, offset: Offset) -> io::Result<Result<ProducerStates, String>> {
    Ok(decode(&fs::read(snapshot_path(dir, offset))?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use runnel_protocol::record_batch::BatchHeader;

    #[test]
    fn round_trip_keeps_last_batch_and_open_transaction() {
        let mut states = ProducerStates::default();
        let header = |pid, base_offset, base_sequence, attributes| BatchHeader {
            base_offset,
            batch_length: 0,
            partition_leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes,
            last_offset_delta: 2,
            base_timestamp: 10,
            max_timestamp: 12,
            producer_id: pid,
            producer_epoch: 3,
            base_sequence,
            records_count: 3,
        };
        states.apply_data(&header(7, 0, 0, 0));
        states.apply_data(&header(7, 3, 3, 0));
        states.apply_data(&header(9, 6, 0, 0x10));
        let bytes = encode(&states);
        assert_eq!(bytes.len(), HEADER_LEN + 2 * ENTRY_LEN);
        let back = decode(&bytes).unwrap();
        let seven = &back.producers[&7];
        assert_eq!(seven.batches.len(), 1);
        assert_eq!(seven.batches[0], states.producers[&7].batches[1]);
        assert_eq!(back.first_unstable_offset(), Some(Offset(6)));
        let mut bad = bytes.clone();
        bad[20] ^= 1;
        assert!(decode(&bad).unwrap_err().contains("CRC"));
    }
}
