//! Idempotence and transactions on the log: transaction markers (WriteTxnMarkers), the last
//! stable offset, aborted transactions for read_committed fetches, producer-state snapshots
//! and their recovery, producer expiry and DescribeProducers. The per-producer rules live in
//! `producer_state.rs`; this file ties them to segments and files.
//!
//! Recovery on open (Kafka's `loadProducerState`): snapshots past the recovered log end are
//! deleted (they describe a torn tail), the newest readable snapshot at or below it is loaded
//! (none: start from nothing at the oldest segment), every transaction-index entry whose
//! marker lies at or after that offset is dropped, and the batch headers from there to the log
//! end are replayed, re-adding the aborted transactions to the indexes of the segments whose
//! markers they are. A transaction without a marker in the log stays open, so the last stable
//! offset stays at its first offset until the coordinator (re)sends the marker.

use crate::error::AppendError;
use crate::log::{AppendInfo, PartitionLog};
use crate::offsets::{HighWatermark, LastStableOffset, LeaderEpoch, Offset};
use crate::producer_state::{CompletedTxn, ProducerStates};
use crate::segment::Segment;
use crate::snapshot;
use crate::txn_index::AbortedTxn;
use runnel_protocol::record_batch::{validate_batch, BatchHeader};
use runnel_protocol::records::control::{
    build_marker_batch, is_marker_header, parse_marker, MarkerKind, TxnMarker,
};
use std::io;

/// One producer's state as DescribeProducers reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerInfo {
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// Sequence of the last record appended, -1 if none is remembered.
    pub last_sequence: i32,
    /// Timestamp of the producer's last write (its batch's max timestamp or marker time).
    pub last_timestamp: i64,
    /// Coordinator epoch of the last marker, -1 if none.
    pub coordinator_epoch: i32,
    pub current_txn_start_offset: Option<Offset>,
}

impl PartitionLog {
    /// Writes a transaction marker as the leader (WriteTxnMarkers): a control batch with one
    /// commit or abort record for `producer_id`, stamped with `leader_epoch`. It ends the
    /// producer's open transaction here, if any; an abort is recorded in the active segment's
    /// transaction index. A marker for a producer without an open transaction is written all
    /// the same (as Kafka does) and changes nothing else. Refused before writing with
    /// [`AppendError::ProducerFenced`] for an epoch older than the producer's and
    /// [`AppendError::CoordinatorFenced`] for an older coordinator epoch.
    pub fn append_control(
        &mut self,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        coordinator_epoch: i32,
        leader_epoch: LeaderEpoch,
        now_ms: i64,
    ) -> Result<AppendInfo, AppendError> {
        if producer_id < 0 {
            return Err(AppendError::InvalidRecord(format!(
                "transaction marker for invalid producer id {producer_id}"
            )));
        }
        self.producers
            .check_marker(producer_id, producer_epoch, coordinator_epoch)?;
        let marker = TxnMarker {
            kind: if commit {
                MarkerKind::Commit
            } else {
                MarkerKind::Abort
            },
            coordinator_epoch,
        };
        let batch = build_marker_batch(producer_id, producer_epoch, marker, now_ms);
        let header = validate_batch(&batch)?;
        let (info, stored) = self.write_batch(&batch, header, leader_epoch, now_ms)?;
        let completed = self.producers.apply_marker(
            producer_id,
            producer_epoch,
            marker,
            Offset(stored.base_offset),
            now_ms,
        );
        if let Some(txn) = completed.filter(|t| t.aborted) {
            let entry = self.producers.aborted_entry(&txn);
            self.active.segment.txn_index.append(entry)?;
        }
        self.count_unflushed(info.records, now_ms)?;
        Ok(info)
    }

    /// First offset of the oldest open transaction (never below the log start), or None.
    pub fn first_unstable_offset(&self) -> Option<Offset> {
        self.producers
            .first_unstable_offset()
            .map(|o| o.max(self.log_start))
    }

    /// The read_committed upper bound: the first unstable offset, capped by the high
    /// watermark.
    pub fn last_stable_offset(&self, high_watermark: HighWatermark) -> LastStableOffset {
        LastStableOffset(
            self.first_unstable_offset()
                .map_or(high_watermark.0, |o| o.min(high_watermark.0)),
        )
    }

    /// Kafka's `collectAbortedTxns`: the aborted transactions that overlap the fetched range,
    /// i.e. whose marker is at or after `fetch_offset` and whose first offset is below
    /// `upper_bound` (one past the last fetched offset), oldest marker first. Searches the
    /// transaction indexes from the segment holding `fetch_offset` on, stopping once an
    /// entry shows that no later abort can overlap.
    pub fn aborted_transactions(
        &self,
        fetch_offset: Offset,
        upper_bound: Offset,
    ) -> Vec<AbortedTxn> {
        let mut out = Vec::new();
        for segment in self.segments_from(fetch_offset) {
            if segment
                .txn_index
                .collect(fetch_offset, upper_bound, &mut out)
            {
                break;
            }
        }
        out
    }

    /// Whether `producer_id` has a transaction open in this partition (data written, no
    /// marker yet): its next transactional batch continues that transaction.
    pub fn has_open_transaction(&self, producer_id: i64) -> bool {
        self.producers
            .producers
            .get(&producer_id)
            .is_some_and(|e| e.current_txn_first_offset.is_some())
    }

    /// Every producer the partition remembers (DescribeProducers), by producer id.
    pub fn producers(&self) -> Vec<ProducerInfo> {
        self.producers
            .producers
            .values()
            .map(|e| ProducerInfo {
                producer_id: e.producer_id,
                producer_epoch: e.epoch,
                last_sequence: e.last_seq(),
                last_timestamp: e.last_timestamp,
                coordinator_epoch: e.coordinator_epoch,
                current_txn_start_offset: e.current_txn_first_offset,
            })
            .collect()
    }

    /// Forgets producers without an open transaction whose last write is at least
    /// `producer.id.expiration.ms` old (Kafka checks every
    /// `producer.id.expiration.check.interval.ms`). Returns how many were removed. A retry
    /// from a forgotten producer is then accepted as new data.
    pub fn expire_producers(&mut self, now_ms: i64) -> usize {
        let removed = self
            .producers
            .expire(now_ms, self.config.producer_id_expiration_ms);
        if removed > 0 {
            tracing::debug!(dir = %self.dir.display(), removed, "expired producer ids");
        }
        removed
    }

    /// Writes a snapshot at the log end and keeps only the newest two.
    pub(crate) fn take_snapshot(&mut self) -> io::Result<()> {
        snapshot::write(&self.dir, self.active.next_offset, &self.producers)?;
        let snapshots = snapshot::list(&self.dir)?;
        let excess = snapshots.len().saturating_sub(snapshot::SNAPSHOTS_TO_KEEP);
        for &offset in &snapshots[..excess] {
            snapshot::delete(&self.dir, offset)?;
        }
        Ok(())
    }

    /// After the log start moved: deletes snapshots below it, writing a fresh one at the log
    /// end first if none would be left (the state itself outlives the deleted data until it
    /// expires, as in Kafka since KIP-360).
    pub(crate) fn prune_snapshots_below_log_start(&mut self) -> io::Result<()> {
        let snapshots = snapshot::list(&self.dir)?;
        if snapshots.iter().all(|&s| s >= self.log_start) {
            return Ok(());
        }
        if snapshots.last().is_none_or(|&s| s < self.log_start) {
            self.take_snapshot()?;
        }
        for offset in snapshot::list(&self.dir)? {
            if offset < self.log_start {
                snapshot::delete(&self.dir, offset)?;
            }
        }
        Ok(())
    }

    /// Rebuilds producer state, open transactions and transaction indexes on open (see the
    /// module doc).
    pub(crate) fn load_producer_state(&mut self) -> io::Result<()> {
        let log_end = self.active.next_offset;
        let mut snapshots = snapshot::list(&self.dir)?;
        while let Some(&last) = snapshots.last() {
            if last <= log_end {
                break;
            }
            tracing::info!(dir = %self.dir.display(), snapshot = %last, %log_end,
                "deleting producer snapshot beyond the recovered log end");
            snapshot::delete(&self.dir, last)?;
            snapshots.pop();
        }
        let mut loaded = None;
        while let Some(offset) = snapshots.pop() {
            match snapshot::read(&self.dir, offset)? {
                Ok(states) => {
                    self.producers = states;
                    loaded = Some(offset);
                    break;
                }
                Err(reason) => {
                    tracing::warn!(dir = %self.dir.display(), snapshot = %offset, %reason,
                        "corrupt producer snapshot; deleting it and using an older one");
                    snapshot::delete(&self.dir, offset)?;
                }
            }
        }
        let first_base = self
            .sealed
            .keys()
            .next()
            .copied()
            .unwrap_or(self.active.base_offset);
        let start = loaded.map_or(first_base, |s| s.max(first_base));
        for segment in self.sealed.values_mut() {
            if segment.next_offset > start {
                segment.txn_index_mut().truncate_from(start)?;
            }
        }
        self.active.segment.txn_index.truncate_from(start)?;
        let aborted = self.replay(start)?;
        for (base, entry) in aborted {
            match self.sealed.get_mut(&base) {
                Some(segment) => segment.txn_index_mut().append(entry)?,
                None => self.active.segment.txn_index.append(entry)?,
            }
        }
        tracing::debug!(dir = %self.dir.display(), snapshot = ?loaded, replayed_from = %start,
            %log_end, producers = self.producers.producers.len(), "loaded producer state");
        Ok(())
    }

    /// Applies the producer fields of every batch from `start` to the log end; returns the
    /// aborted transactions found, with the base of the segment holding each marker.
    fn replay(&mut self, start: Offset) -> io::Result<Vec<(Offset, AbortedTxn)>> {
        let producers = &mut self.producers;
        let first_base = self
            .sealed
            .range(..=start)
            .next_back()
            .map_or(Offset(i64::MIN), |(base, _)| *base);
        let segments = self
            .sealed
            .values()
            .map(|s| &**s)
            .chain(std::iter::once(&*self.active))
            .skip_while(|s| s.base_offset < first_base);
        let mut aborted = Vec::new();
        for segment in segments {
            segment.visit_batches(start, |position, header| {
                if header.last_offset() < start.value() || header.producer_id < 0 {
                    return Ok(());
                }
                if let Some(txn) = replay_batch(producers, segment, position, header)? {
                    aborted.push((segment.base_offset, producers.aborted_entry(&txn)));
                }
                Ok(())
            })?;
        }
        Ok(aborted)
    }
}

/// Applies one stored batch; returns the transaction it aborted, if it is such a marker.
fn replay_batch(
    producers: &mut ProducerStates,
    segment: &Segment,
    position: u64,
    header: &BatchHeader,
) -> io::Result<Option<CompletedTxn>> {
    if !header.is_control() {
        producers.apply_data(header);
        return Ok(None);
    }
    if !is_marker_header(header) {
        return Ok(None);
    }
    let bytes = segment.read_bytes(position, header.total_size())?;
    let marker = match parse_marker(&bytes) {
        Ok(Some(marker)) => marker,
        Ok(None) => return Ok(None),
        Err(e) => {
            tracing::warn!(segment = %segment.base_offset, offset = header.base_offset,
                error = %e, "unreadable transaction marker skipped while loading producer state");
            return Ok(None);
        }
    };
    let completed = producers.apply_marker(
        header.producer_id,
        header.producer_epoch,
        marker,
        Offset(header.base_offset),
        header.max_timestamp,
    );
    Ok(completed.filter(|t| t.aborted))
}
