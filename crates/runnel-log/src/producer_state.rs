//! Per-partition producer state for idempotence and transactions, after Kafka's
//! `ProducerStateManager` and `ProducerAppendInfo`.
//!
//! For every producer id that wrote to the partition it keeps the epoch, the sequence and
//! offset ranges of its last five data batches (enough to recognise a retried batch of any of
//! the five in-flight requests a producer may have), its open transaction, the coordinator
//! epoch of its last marker and the timestamp of its last write (for
//! `producer.id.expiration.ms`).
//!
//! Two paths change the state, and both run batch headers through the same `apply_*` calls:
//! - a leader append: [`ProducerStates::check_data`] / [`ProducerStates::check_marker`] validate
//!   first (nothing is written when they refuse), the `apply_*` call follows the write;
//! - recovery: `apply_*` for every batch after the snapshot, without validation (the batches
//!   were validated when they were appended), as Kafka loads with origin `Replication`.

use crate::error::AppendError;
use crate::offsets::Offset;
use crate::txn_index::AbortedTxn;
use runnel_protocol::record_batch::BatchHeader;
use runnel_protocol::records::control::{MarkerKind, TxnMarker};
use std::collections::{BTreeMap, VecDeque};

/// Data batches remembered per producer (Kafka's `NumBatchesToRetain`, matching the
/// producer's `max.in.flight.requests.per.connection` limit of 5 with idempotence).
pub(crate) const BATCHES_TO_RETAIN: usize = 5;
pub(crate) const NO_PRODUCER_EPOCH: i16 = -1;
pub(crate) const NO_SEQUENCE: i32 = -1;

/// One remembered data batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchMetadata {
    pub(crate) first_seq: i32,
    pub(crate) last_seq: i32,
    pub(crate) first_offset: Offset,
    pub(crate) last_offset: Offset,
    pub(crate) max_timestamp: i64,
}

/// What the partition knows about one producer id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProducerEntry {
    pub(crate) producer_id: i64,
    pub(crate) epoch: i16,
    /// Oldest first, at most [`BATCHES_TO_RETAIN`], all of the current epoch.
    pub(crate) batches: VecDeque<BatchMetadata>,
    pub(crate) coordinator_epoch: i32,
    pub(crate) last_timestamp: i64,
    pub(crate) current_txn_first_offset: Option<Offset>,
}

impl ProducerEntry {
    fn empty(producer_id: i64) -> ProducerEntry {
        ProducerEntry {
            producer_id,
            epoch: NO_PRODUCER_EPOCH,
            batches: VecDeque::new(),
            coordinator_epoch: -1,
            last_timestamp: -1,
            current_txn_first_offset: None,
        }
    }

    pub(crate) fn last_seq(&self) -> i32 {
        self.batches.back().map_or(NO_SEQUENCE, |b| b.last_seq)
    }

    fn update_epoch(&mut self, epoch: i16) {
        if epoch != self.epoch {
            self.batches.clear();
            self.epoch = epoch;
        }
    }

    fn find_duplicate(&self, header: &BatchHeader) -> Option<BatchMetadata> {
        if header.producer_epoch != self.epoch {
            return None;
        }
        let last_seq = last_sequence(header);
        self.batches
            .iter()
            .find(|b| b.first_seq == header.base_sequence && b.last_seq == last_seq)
            .copied()
    }
}

/// `baseSequence + lastOffsetDelta`, wrapping past `i32::MAX` to 0 as producers do.
pub(crate) fn last_sequence(header: &BatchHeader) -> i32 {
    increment_sequence(header.base_sequence, header.last_offset_delta)
}

pub(crate) fn increment_sequence(seq: i32, increment: i32) -> i32 {
    if seq > i32::MAX - increment {
        increment - (i32::MAX - seq) - 1
    } else {
        seq + increment
    }
}

fn decrement_sequence(seq: i32, decrement: i32) -> i32 {
    if seq < decrement {
        i32::MAX - (decrement - seq) + 1
    } else {
        seq - decrement
    }
}

fn in_sequence(last_seq: i32, next_seq: i32) -> bool {
    i64::from(next_seq) == i64::from(last_seq) + 1 || (next_seq == 0 && last_seq == i32::MAX)
}

/// A transaction that a marker just ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CompletedTxn {
    pub(crate) producer_id: i64,
    pub(crate) first_offset: Offset,
    pub(crate) marker_offset: Offset,
    pub(crate) aborted: bool,
}

/// The producer states of one partition, as of the log end.
#[derive(Debug, Default)]
pub(crate) struct ProducerStates {
    pub(crate) producers: BTreeMap<i64, ProducerEntry>,
    /// Open transactions by first offset.
    ongoing: BTreeMap<Offset, i64>,
}

impl ProducerStates {
    /// Validates a produced data batch of an idempotent or transactional producer
    /// (`producer_id >= 0`) before it is written. `Ok(Some(..))`: a duplicate of a remembered
    /// batch, which must not be written again.
    pub(crate) fn check_data(
        &self,
        header: &BatchHeader,
    ) -> Result<Option<BatchMetadata>, AppendError> {
        let pid = header.producer_id;
        let empty = ProducerEntry::empty(pid);
        let entry = self.producers.get(&pid).unwrap_or(&empty);
        if let Some(duplicate) = entry.find_duplicate(header) {
            return Ok(Some(duplicate));
        }
        let epoch = header.producer_epoch;
        check_epoch(entry, epoch)?;
        let first_seq = header.base_sequence;
        if epoch != entry.epoch {
            // A new epoch starts its sequences at 0; an unknown producer (its state expired
            // or was never here) may continue anywhere, as in Kafka since KIP-360.
            if first_seq != 0 && entry.epoch != NO_PRODUCER_EPOCH {
                return Err(AppendError::OutOfOrderSequence {
                    producer_id: pid,
                    epoch,
                    last_sequence: NO_SEQUENCE,
                    received: first_seq,
                });
            }
        } else if !(entry.epoch == NO_PRODUCER_EPOCH || in_sequence(entry.last_seq(), first_seq)) {
            // An entry with no remembered batch (it only wrote markers, or its data was
            // loaded without sequence) has last sequence -1: only 0 follows it.
            return Err(AppendError::OutOfOrderSequence {
                producer_id: pid,
                epoch,
                last_sequence: entry.last_seq(),
                received: first_seq,
            });
        }
        if entry.current_txn_first_offset.is_some() && !header.is_transactional() {
            return Err(AppendError::InvalidTxnState {
                producer_id: pid,
                reason:
                    "a non-transactional batch arrived while the producer's transaction is open",
            });
        }
        Ok(None)
    }

    /// Validates a transaction marker before it is written (WriteTxnMarkers).
    pub(crate) fn check_marker(
        &self,
        producer_id: i64,
        epoch: i16,
        coordinator_epoch: i32,
    ) -> Result<(), AppendError> {
        let Some(entry) = self.producers.get(&producer_id) else {
            return Ok(());
        };
        check_epoch(entry, epoch)?;
        if entry.coordinator_epoch > coordinator_epoch {
            return Err(AppendError::CoordinatorFenced {
                producer_id,
                coordinator_epoch,
                current_coordinator_epoch: entry.coordinator_epoch,
            });
        }
        Ok(())
    }

    /// Records a written data batch (`header.base_offset` is its assigned offset).
    pub(crate) fn apply_data(&mut self, header: &BatchHeader) {
        let pid = header.producer_id;
        let entry = self
            .producers
            .entry(pid)
            .or_insert_with(|| ProducerEntry::empty(pid));
        entry.update_epoch(header.producer_epoch);
        if entry.batches.len() == BATCHES_TO_RETAIN {
            entry.batches.pop_front();
        }
        entry.batches.push_back(BatchMetadata {
            first_seq: header.base_sequence,
            last_seq: last_sequence(header),
            first_offset: Offset(header.base_offset),
            last_offset: Offset(header.last_offset()),
            max_timestamp: header.max_timestamp,
        });
        entry.last_timestamp = header.max_timestamp;
        if header.is_transactional() && entry.current_txn_first_offset.is_none() {
            let first = Offset(header.base_offset);
            entry.current_txn_first_offset = Some(first);
            self.ongoing.insert(first, pid);
        }
    }

    /// Records a written marker; returns the transaction it ended, if one was open.
    pub(crate) fn apply_marker(
        &mut self,
        producer_id: i64,
        epoch: i16,
        marker: TxnMarker,
        offset: Offset,
        timestamp: i64,
    ) -> Option<CompletedTxn> {
        let entry = self
            .producers
            .entry(producer_id)
            .or_insert_with(|| ProducerEntry::empty(producer_id));
        let completed = entry.current_txn_first_offset.take().map(|first| {
            self.ongoing.remove(&first);
            CompletedTxn {
                producer_id,
                first_offset: first,
                marker_offset: offset,
                aborted: marker.kind == MarkerKind::Abort,
            }
        });
        entry.update_epoch(epoch);
        entry.coordinator_epoch = marker.coordinator_epoch;
        entry.last_timestamp = timestamp;
        completed
    }

    /// The index entry of an aborted transaction, with the last stable offset after it: the
    /// first offset of the oldest transaction still open, or just past the marker.
    pub(crate) fn aborted_entry(&self, txn: &CompletedTxn) -> AbortedTxn {
        AbortedTxn {
            producer_id: txn.producer_id,
            first_offset: txn.first_offset,
            last_offset: txn.marker_offset,
            last_stable_offset: self
                .first_unstable_offset()
                .unwrap_or(txn.marker_offset.next()),
        }
    }

    /// First offset of the oldest open transaction.
    pub(crate) fn first_unstable_offset(&self) -> Option<Offset> {
        self.ongoing.keys().next().copied()
    }

    /// Kafka's `removeExpiredProducers`: producers without an open transaction whose last
    /// write is at least `expiration_ms` old. Returns how many were removed.
    pub(crate) fn expire(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers.retain(|_, e| {
            e.current_txn_first_offset.is_some()
                || now_ms.saturating_sub(e.last_timestamp) < expiration_ms
        });
        before - self.producers.len()
    }

    /// Restores state from snapshot entries (see `snapshot.rs`).
    pub(crate) fn from_entries(entries: Vec<ProducerEntry>) -> ProducerStates {
        let mut states = ProducerStates::default();
        for entry in entries {
            if let Some(first) = entry.current_txn_first_offset {
                states.ongoing.insert(first, entry.producer_id);
            }
            states.producers.insert(entry.producer_id, entry);
        }
        states
    }
}

/// Rebuilds the one batch a snapshot entry remembers.
pub(crate) fn snapshot_batch(
    last_seq: i32,
    last_offset: i64,
    offset_delta: i32,
    timestamp: i64,
) -> Option<BatchMetadata> {
    (last_offset >= 0).then(|| BatchMetadata {
        first_seq: decrement_sequence(last_seq, offset_delta),
        last_seq,
        first_offset: Offset(last_offset - i64::from(offset_delta)),
        last_offset: Offset(last_offset),
        max_timestamp: timestamp,
    })
}

fn check_epoch(entry: &ProducerEntry, epoch: i16) -> Result<(), AppendError> {
    if epoch < entry.epoch {
        return Err(AppendError::ProducerFenced {
            producer_id: entry.producer_id,
            epoch,
            current_epoch: entry.epoch,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_wrap_like_kafka() {
        assert_eq!(increment_sequence(i32::MAX, 1), 0);
        assert_eq!(increment_sequence(i32::MAX - 1, 3), 1);
        assert_eq!(increment_sequence(5, 2), 7);
        assert_eq!(decrement_sequence(1, 3), i32::MAX - 1);
        assert_eq!(decrement_sequence(7, 2), 5);
        assert!(in_sequence(i32::MAX, 0));
        assert!(!in_sequence(3, 5));
    }
}
