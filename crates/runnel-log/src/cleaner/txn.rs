//! Transactions during a cleaning pass, after Kafka's `CleanedTransactionMetadata`: which
//! transactional batches belong to aborted transactions (they are removed, and never enter
//! the key map) and which markers have become empty (no data of their transaction is left in
//! the log). An empty marker gets a delete horizon (`now + delete.retention.ms`) on the first
//! pass and is removed by the first pass after it, so a consumer that already read the data of
//! an aborted transaction still sees its marker for that long.
//!
//! Batches must be fed in offset order from `scan_start`.

use crate::offsets::Offset;
use crate::txn_index::AbortedTxn;
use runnel_protocol::record_batch::BatchHeader;
use runnel_protocol::records::control::{is_marker_header, parse_marker, MarkerKind};
use std::collections::{HashMap, HashSet, VecDeque};

/// What became of a marker.
pub(super) struct MarkerFate {
    /// Data of its transaction was seen in this pass: keep the marker as it is.
    pub(super) has_data: bool,
    /// The aborted transaction it ends (for the cleaned segment's transaction index).
    pub(super) aborted: Option<AbortedTxn>,
}

#[derive(Debug, Default)]
pub(super) struct TxnTracker {
    /// Aborted transactions not reached yet, by first offset.
    pending: VecDeque<AbortedTxn>,
    /// Aborted transactions in progress at the current offset, and whether data was seen.
    aborted: HashMap<i64, (AbortedTxn, bool)>,
    /// Producers with committed (or not aborted) transactional data since their last marker.
    committed: HashSet<i64>,
}

impl TxnTracker {
    /// `aborted`: the aborted transactions overlapping the scanned range (any order).
    pub(super) fn new(aborted: &[AbortedTxn], scan_start: Offset) -> TxnTracker {
        let mut pending: Vec<AbortedTxn> = aborted
            .iter()
            .filter(|t| t.last_offset >= scan_start)
            .copied()
            .collect();
        pending.sort_by_key(|t| t.first_offset);
        TxnTracker {
            pending: pending.into(),
            ..TxnTracker::default()
        }
    }

    fn reach(&mut self, offset: i64) {
        while self
            .pending
            .front()
            .is_some_and(|t| t.first_offset.value() <= offset)
        {
            let txn = self.pending.pop_front().expect("checked");
            self.aborted.insert(txn.producer_id, (txn, false));
        }
    }

    /// A data batch: true when it belongs to an aborted transaction and must go.
    pub(super) fn is_aborted_data(&mut self, header: &BatchHeader) -> bool {
        self.reach(header.last_offset());
        if !header.is_transactional() || header.producer_id < 0 {
            return false;
        }
        match self.aborted.get_mut(&header.producer_id) {
            Some((_, seen)) => {
                *seen = true;
                true
            }
            None => {
                self.committed.insert(header.producer_id);
                false
            }
        }
    }

    /// A control batch; None when it is not a readable commit or abort marker (kept as is).
    pub(super) fn on_control(&mut self, header: &BatchHeader, batch: &[u8]) -> Option<MarkerFate> {
        self.reach(header.last_offset());
        if !is_marker_header(header) {
            return None;
        }
        let marker = parse_marker(batch).ok().flatten()?;
        let pid = header.producer_id;
        Some(match marker.kind {
            MarkerKind::Abort => {
                let ended = self
                    .aborted
                    .remove(&pid)
                    .filter(|(t, _)| t.last_offset.value() == header.base_offset);
                MarkerFate {
                    has_data: ended.is_some_and(|(_, seen)| seen),
                    aborted: ended.map(|(t, _)| t),
                }
            }
            MarkerKind::Commit => MarkerFate {
                has_data: self.committed.remove(&pid),
                aborted: None,
            },
        })
    }
}
