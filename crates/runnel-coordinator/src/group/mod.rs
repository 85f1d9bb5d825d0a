//! Kafka's classic consumer-group coordinator as a deterministic state machine.
//!
//! ```text
//!   broker runtime                          GroupCoordinator (this module, no I/O)
//!   ──────────────                          ──────────────────────────────────────
//!   request + now_ms ──── handle() ───────▶ validate, change in-memory state
//!   timer fires      ──── tick(now_ms) ───▶ expire sessions, complete joins, expire offsets
//!                    ◀─── Output ────────── responses to send now,
//!                                           appends to __consumer_offsets (+ responses to send
//!                                           once each append succeeds / fails)
//!   txn marker written ─ complete_transaction() ▶ commit/abort a producer's pending
//!                                           transactional offsets (TxnOffsetCommit)
//!   start-up         ──── replay(k, v) ───▶ rebuild groups and offsets from the log
//!                         replay_transactional(pid, k, v), replay_marker(..) for
//!                         transactional batches and control batches
//! ```
//!
//! State is changed when a request is handled (optimistically, before the append completes), so
//! the in-memory view matches what replaying the appended records gives.

mod config;
mod describe;
mod fetch;
mod heartbeat;
mod join;
mod leave;
mod member;
mod offsets;
mod persist;
mod rebalance;
mod responses;
mod state;
mod sync;
mod timers;
mod txn_offsets;

use std::collections::BTreeMap;

pub use config::GroupConfig;

use kafka_protocol::messages::{
    DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest, DescribeGroupsResponse,
    HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
    LeaveGroupResponse, ListGroupsRequest, ListGroupsResponse, OffsetCommitRequest,
    OffsetCommitResponse, OffsetDeleteRequest, OffsetDeleteResponse, OffsetFetchRequest,
    OffsetFetchResponse, SyncGroupRequest, SyncGroupResponse, TxnOffsetCommitRequest,
    TxnOffsetCommitResponse,
};

use crate::records;
use member::Parked;
use state::Group;
pub use state::GroupState;

/// Opaque id of a request awaiting its response, chosen by the broker, unique while pending.
pub type RequestToken = u64;

/// Who sent a request and at which API version; the version decides which response fields exist.
#[derive(Debug, Clone)]
pub struct RequestMeta {
    pub token: RequestToken,
    pub api_version: i16,
    pub client_id: String,
    pub client_host: String,
}

/// A decoded group-coordinator request.
#[derive(Debug, Clone)]
pub enum GroupRequest {
    JoinGroup(JoinGroupRequest),
    SyncGroup(SyncGroupRequest),
    Heartbeat(HeartbeatRequest),
    LeaveGroup(LeaveGroupRequest),
    OffsetCommit(OffsetCommitRequest),
    OffsetFetch(OffsetFetchRequest),
    DescribeGroups(DescribeGroupsRequest),
    ListGroups(ListGroupsRequest),
    DeleteGroups(DeleteGroupsRequest),
    OffsetDelete(OffsetDeleteRequest),
    /// A transactional producer's offset commit (versions 0-4): kept pending until the
    /// transaction's marker reaches the group's `__consumer_offsets` partition.
    TxnOffsetCommit(TxnOffsetCommitRequest),
}

/// A response to encode at the version of the request it answers.
#[derive(Debug, Clone, PartialEq)]
pub enum GroupResponse {
    JoinGroup(JoinGroupResponse),
    SyncGroup(SyncGroupResponse),
    Heartbeat(HeartbeatResponse),
    LeaveGroup(LeaveGroupResponse),
    OffsetCommit(OffsetCommitResponse),
    OffsetFetch(OffsetFetchResponse),
    DescribeGroups(DescribeGroupsResponse),
    ListGroups(ListGroupsResponse),
    DeleteGroups(DeleteGroupsResponse),
    OffsetDelete(OffsetDeleteResponse),
    TxnOffsetCommit(TxnOffsetCommitResponse),
}

/// What the broker must do. It performs `appends` in order (each to the __consumer_offsets
/// partition given, as one record batch built with `records::encode_batch`, or with
/// `records::encode_transactional_batch` when the append names a producer) and sends `then`
/// after an append succeeds or `on_failure` if it fails; `responses` are sent immediately. A
/// request whose response is not in the Output stays pending (e.g. JoinGroup waiting for the
/// rebalance) and is answered by a later Output (from another request or from `tick`).
#[derive(Debug, Default)]
pub struct Output {
    pub responses: Vec<(RequestToken, GroupResponse)>,
    pub appends: Vec<PendingAppend>,
}

/// Records for one `__consumer_offsets` partition and the responses that wait on their append.
#[derive(Debug)]
pub struct PendingAppend {
    pub partition: i32,
    pub records: Vec<records::OffsetsRecord>,
    pub then: Vec<(RequestToken, GroupResponse)>,
    pub on_failure: Vec<(RequestToken, GroupResponse)>,
    /// Some((producer_id, producer_epoch)): the records must be written as one transactional
    /// batch of that producer (`records::encode_transactional_batch`), as Kafka writes
    /// TxnOffsetCommit records; they take effect when that producer's COMMIT marker follows
    /// in the same partition (see `GroupCoordinator::complete_transaction`). None: an ordinary
    /// batch (`records::encode_batch`).
    pub producer: Option<(i64, i16)>,
}

/// Topic metadata the coordinator needs from the broker (OffsetCommit of unknown partitions ->
/// UNKNOWN_TOPIC_OR_PARTITION).
pub trait TopicView {
    fn partition_exists(&self, topic: &str, partition: i32) -> bool;
}

/// The classic group coordinator for all groups whose `__consumer_offsets` partitions this broker
/// leads. Single-threaded: the broker runtime owns it and calls it from one task.
///
/// Lifecycle: `new`, then `replay` every record of the owned partitions in log order, then
/// `finish_loading`; from then on `handle` requests and `tick` whenever `next_deadline` passes.
#[derive(Debug)]
pub struct GroupCoordinator {
    config: GroupConfig,
    groups: BTreeMap<String, Group>,
    /// The next offsets-retention sweep; armed by the first call that carries a time.
    next_retention_check_ms: Option<i64>,
    /// Counts offset records made or replayed, in log order (see `CommittedOffset::record_seq`).
    record_seq: u64,
}

/// What a handler needs besides the group map: settings, the output being built, and the time.
pub(crate) struct Ctx<'a> {
    pub cfg: &'a GroupConfig,
    pub out: &'a mut Output,
    pub now_ms: i64,
    /// The coordinator's record counter (see `CommittedOffset::record_seq`).
    pub seq: &'a mut u64,
}

impl Ctx<'_> {
    /// Sends a response now.
    pub fn reply(&mut self, token: RequestToken, response: GroupResponse) {
        self.out.responses.push((token, response));
    }

    /// Answers a parked request now, unless its connection has gone.
    pub fn answer(&mut self, parked: Parked, response: impl FnOnce(i16) -> GroupResponse) {
        if !parked.cancelled {
            self.reply(parked.token, response(parked.api_version));
        }
    }

    /// The log-order position of the next offset record made.
    pub fn next_seq(&mut self) -> u64 {
        *self.seq += 1;
        *self.seq
    }

    /// Appends `records` to the group's `__consumer_offsets` partition.
    pub fn append(
        &mut self,
        group_id: &str,
        records: Vec<records::OffsetsRecord>,
        then: Vec<(RequestToken, GroupResponse)>,
        on_failure: Vec<(RequestToken, GroupResponse)>,
    ) {
        self.append_as(group_id, records, then, on_failure, None);
    }

    /// Appends `records` to the group's `__consumer_offsets` partition as one batch of
    /// `producer` (Some((producer_id, epoch)) = a transactional batch of that producer).
    pub fn append_as(
        &mut self,
        group_id: &str,
        records: Vec<records::OffsetsRecord>,
        then: Vec<(RequestToken, GroupResponse)>,
        on_failure: Vec<(RequestToken, GroupResponse)>,
        producer: Option<(i64, i16)>,
    ) {
        let partition = coordinator_partition(group_id, self.cfg.offsets_partitions);
        self.out.appends.push(PendingAppend {
            partition,
            records,
            then,
            on_failure,
            producer,
        });
    }
}

impl GroupCoordinator {
    pub fn new(config: GroupConfig) -> Self {
        assert!(
            config.offsets_partitions > 0,
            "offsets.topic.num.partitions must be positive"
        );
        GroupCoordinator {
            config,
            groups: BTreeMap::new(),
            next_retention_check_ms: None,
            record_seq: 0,
        }
    }

    pub fn config(&self) -> &GroupConfig {
        &self.config
    }

    /// Rebuilds state from one __consumer_offsets record during start-up replay, in log order
    /// (value None = tombstone).
    pub fn replay(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), records::RecordError> {
        persist::replay(&mut self.groups, &mut self.record_seq, key, value)
    }

    /// End of replay: loaded groups with members start their session timers at now_ms.
    pub fn finish_loading(&mut self, now_ms: i64) {
        self.arm_retention(now_ms);
        let out = self.with_context(now_ms, persist::finish_loading);
        debug_assert!(out.responses.is_empty() && out.appends.is_empty());
    }

    pub fn handle(
        &mut self,
        meta: RequestMeta,
        request: GroupRequest,
        topics: &dyn TopicView,
        now_ms: i64,
    ) -> Output {
        self.arm_retention(now_ms);
        self.with_context(now_ms, |groups, cx| match request {
            GroupRequest::JoinGroup(r) => join::handle(groups, &meta, r, cx),
            GroupRequest::SyncGroup(r) => sync::handle(groups, &meta, r, cx),
            GroupRequest::Heartbeat(r) => heartbeat::handle(groups, &meta, r, cx),
            GroupRequest::LeaveGroup(r) => leave::handle(groups, &meta, r, cx),
            GroupRequest::OffsetCommit(r) => offsets::commit(groups, &meta, r, topics, cx),
            GroupRequest::OffsetFetch(r) => offsets::fetch(groups, &meta, r, cx),
            GroupRequest::DescribeGroups(r) => describe::describe(groups, &meta, r, cx),
            GroupRequest::ListGroups(r) => describe::list(groups, &meta, r, cx),
            GroupRequest::DeleteGroups(r) => describe::delete(groups, &meta, r, cx),
            GroupRequest::OffsetDelete(r) => offsets::delete(groups, &meta, r, topics, cx),
            GroupRequest::TxnOffsetCommit(r) => txn_offsets::commit(groups, &meta, r, topics, cx),
        })
    }

    /// Fires due timers: heartbeat/session expiry, join (rebalance timeout) completion, initial
    /// rebalance delay, pending-sync timeout, pending (KIP-394) member expiry, offset retention.
    pub fn tick(&mut self, now_ms: i64) -> Output {
        self.arm_retention(now_ms);
        let sweep = self
            .next_retention_check_ms
            .is_some_and(|due| due <= now_ms);
        if sweep {
            self.next_retention_check_ms =
                Some(now_ms + self.config.offsets_retention_check_interval_ms);
        }
        self.with_context(now_ms, |groups, cx| {
            timers::fire_group_timers(groups, cx);
            if sweep {
                offsets::expire_offsets(groups, cx);
            }
        })
    }

    /// Runs `f` on the groups with a context that collects what it outputs.
    fn with_context(
        &mut self,
        now_ms: i64,
        f: impl FnOnce(&mut BTreeMap<String, Group>, &mut Ctx<'_>),
    ) -> Output {
        let mut out = Output::default();
        let mut cx = Ctx {
            cfg: &self.config,
            out: &mut out,
            now_ms,
            seq: &mut self.record_seq,
        };
        f(&mut self.groups, &mut cx);
        out
    }

    /// The earliest instant `tick` has something to do, if any.
    pub fn next_deadline(&self) -> Option<i64> {
        let groups = self
            .groups
            .values()
            .filter_map(timers::next_group_deadline)
            .min();
        // The retention sweep only matters while there are groups to sweep.
        let retention = self
            .next_retention_check_ms
            .filter(|_| !self.groups.is_empty());
        groups.into_iter().chain(retention).min()
    }

    /// Abandons a pending request whose connection closed (its response will not be sent).
    /// The member stays as Kafka keeps it (Kafka cannot see the disconnect): its session timer
    /// removes it if it does not come back.
    pub fn cancel(&mut self, token: RequestToken) {
        let parked = self
            .groups
            .values_mut()
            .flat_map(|g| g.members.values_mut())
            .flat_map(|m| {
                [m.awaiting_join.as_mut(), m.awaiting_sync.as_mut()]
                    .into_iter()
                    .flatten()
            });
        for p in parked.filter(|p| p.token == token) {
            p.cancelled = true;
        }
    }

    /// The broker wrote a transaction marker (COMMIT when `commit`, else ABORT) for
    /// `producer_id` to `__consumer_offsets` partition `partition`: that producer's pending
    /// transactional offsets of the groups in this partition are materialized or discarded.
    /// Call it once the marker is durable, in the order markers and appends reach the log.
    /// The Output is empty today (kept so that completion may write records later).
    pub fn complete_transaction(
        &mut self,
        partition: i32,
        producer_id: i64,
        commit: bool,
        now_ms: i64,
    ) -> Output {
        self.arm_retention(now_ms);
        txn_offsets::complete(
            &mut self.groups,
            self.config.offsets_partitions,
            partition,
            producer_id,
            commit,
        );
        Output::default()
    }

    /// Replay of one record that was written in a transactional batch of `producer_id`, in
    /// log order (value None = tombstone). Offset commits stay pending until the producer's
    /// marker is replayed with `replay_marker`; other records replay as with `replay`.
    pub fn replay_transactional(
        &mut self,
        producer_id: i64,
        key: &[u8],
        value: Option<&[u8]>,
    ) -> Result<(), records::RecordError> {
        persist::replay_transactional(
            &mut self.groups,
            &mut self.record_seq,
            producer_id,
            key,
            value,
        )
    }

    /// Replay of a transaction marker (control batch) of `producer_id` found in
    /// `__consumer_offsets` partition `partition`, in log order.
    pub fn replay_marker(&mut self, partition: i32, producer_id: i64, commit: bool) {
        txn_offsets::complete(
            &mut self.groups,
            self.config.offsets_partitions,
            partition,
            producer_id,
            commit,
        );
    }

    /// Whether a group has transactional offsets waiting for their transaction's marker.
    pub fn has_pending_transactional_offsets(&self, group_id: &str) -> bool {
        self.groups
            .get(group_id)
            .is_some_and(|g| !g.pending_txn.is_empty())
    }

    pub fn group_count(&self) -> usize {
        self.groups.len()
    }

    /// Every committed offset as (group, topic, partition, offset), in group order. Pending
    /// transactional offsets are not committed yet and are left out.
    pub fn committed_offsets(&self) -> Vec<(String, String, i32, i64)> {
        self.groups
            .values()
            .flat_map(|g| {
                g.offsets.iter().map(|((topic, partition), committed)| {
                    (g.id.clone(), topic.clone(), *partition, committed.offset)
                })
            })
            .collect()
    }

    fn arm_retention(&mut self, now_ms: i64) {
        if self.next_retention_check_ms.is_none() {
            self.next_retention_check_ms =
                Some(now_ms + self.config.offsets_retention_check_interval_ms);
        }
    }
}

/// Kafka's partition for a group: Utils.abs(groupId.hashCode()) % partitions, with Java's
/// String.hashCode over UTF-16 code units.
pub fn coordinator_partition(group_id: &str, partitions: i32) -> i32 {
    let hash = group_id.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    });
    // Kafka's Utils.abs maps i32::MIN to 0 instead of overflowing.
    let abs = if hash == i32::MIN { 0 } else { hash.abs() };
    abs % partitions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coordinator_partition_matches_java_string_hash() {
        // Values from Java's String.hashCode: "foo" = 101574, "polygenelubricants" =
        // Integer.MIN_VALUE (Utils.abs maps it to 0); non-BMP text hashes UTF-16 units.
        assert_eq!(coordinator_partition("foo", 50), 24);
        assert_eq!(coordinator_partition("polygenelubricants", 50), 0);
        assert_eq!(coordinator_partition("my-consumer-group", 50), 13);
        assert_eq!(coordinator_partition("grüße-😀", 50), 27);
        assert_eq!(coordinator_partition("", 50), 0);
    }

    #[test]
    fn idle_coordinator_has_no_deadline() {
        let mut co = GroupCoordinator::new(GroupConfig::default());
        assert_eq!(co.next_deadline(), None);
        let out = co.tick(5);
        assert!(out.responses.is_empty() && out.appends.is_empty());
        assert_eq!(co.group_count(), 0);
    }
}
