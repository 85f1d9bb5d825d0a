//! A classic group's state (Kafka's `GroupMetadata`) and the transitions that need no I/O.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use kafka_protocol::messages::ConsumerProtocolSubscription;
use kafka_protocol::protocol::Decodable;

use super::member::Member;

/// The classic group states. Names are what DescribeGroups and ListGroups report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }

    /// Kafka's `validPreviousStates`: transitions outside these are logic errors.
    fn can_follow(self, previous: GroupState) -> bool {
        use GroupState::*;
        match self {
            Empty => previous == PreparingRebalance,
            PreparingRebalance => matches!(previous, Stable | CompletingRebalance | Empty),
            CompletingRebalance => previous == PreparingRebalance,
            Stable => previous == CompletingRebalance,
            Dead => true,
        }
    }
}

/// The delayed completion of the join phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JoinTimer {
    /// The first rebalance of an empty group: waits `delay_ms`, and waits again (up to
    /// `remaining_ms` in total) each time a new member joined meanwhile. Never completes early.
    Initial {
        deadline_ms: i64,
        delay_ms: i64,
        remaining_ms: i64,
    },
    /// Completes when every known member has rejoined, or at the rebalance timeout.
    Normal { deadline_ms: i64 },
}

impl JoinTimer {
    pub fn deadline_ms(self) -> i64 {
        match self {
            JoinTimer::Initial { deadline_ms, .. } | JoinTimer::Normal { deadline_ms } => {
                deadline_ms
            }
        }
    }
}

/// A committed offset held in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CommittedOffset {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
    pub expire_timestamp_ms: Option<i64>,
    /// Where the record that wrote it sits in log order (an in-memory counter, not persisted).
    /// A transactional offset replaces the committed one at its COMMIT marker only if its record
    /// is later (Kafka compares record offsets likewise), so a plain commit made while the
    /// transaction was open wins over it.
    pub record_seq: u64,
}

/// Transactional offsets awaiting their transaction's marker: producer id -> partition -> offset.
pub(crate) type PendingTxnOffsets = BTreeMap<i64, BTreeMap<(String, i32), CommittedOffset>>;

/// One group: membership, rebalance progress and committed offsets.
#[derive(Debug, Clone)]
pub(crate) struct Group {
    pub id: String,
    pub state: GroupState,
    /// When the state last changed (None for groups loaded from v0/v1 metadata).
    pub state_timestamp_ms: Option<i64>,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub generation_id: i32,
    pub leader_id: Option<String>,
    pub members: BTreeMap<String, Member>,
    /// group.instance.id -> current member id.
    pub static_members: BTreeMap<String, String>,
    /// KIP-394 member ids handed out but not yet used, with their expiry.
    pub pending_members: BTreeMap<String, i64>,
    /// Members of the new generation that have not sent SyncGroup yet.
    pub pending_sync: BTreeSet<String>,
    /// (deadline, generation) after which members still in `pending_sync` are removed.
    pub sync_deadline: Option<(i64, i32)>,
    pub join_timer: Option<JoinTimer>,
    /// A member joined during the initial delay, so the delay is extended.
    pub new_member_added: bool,
    /// Topics the members subscribe to (consumer protocol); None = unknown, assume all.
    pub subscribed_topics: Option<BTreeSet<String>>,
    pub offsets: BTreeMap<(String, i32), CommittedOffset>,
    /// TxnOffsetCommit offsets not yet committed or aborted by their producer's marker;
    /// invisible to OffsetFetch. No producer maps to an empty map.
    pub pending_txn: PendingTxnOffsets,
    /// Replay only: a metadata record (not a tombstone) was read for this group.
    pub has_metadata_record: bool,
}

impl Group {
    pub fn new(id: &str, now_ms: i64) -> Self {
        Group {
            id: id.to_owned(),
            state: GroupState::Empty,
            state_timestamp_ms: Some(now_ms),
            protocol_type: None,
            protocol_name: None,
            generation_id: 0,
            leader_id: None,
            members: BTreeMap::new(),
            static_members: BTreeMap::new(),
            pending_members: BTreeMap::new(),
            pending_sync: BTreeSet::new(),
            sync_deadline: None,
            join_timer: None,
            new_member_added: false,
            subscribed_topics: None,
            offsets: BTreeMap::new(),
            pending_txn: BTreeMap::new(),
            has_metadata_record: false,
        }
    }

    pub fn is(&self, state: GroupState) -> bool {
        self.state == state
    }

    pub fn transition_to(&mut self, state: GroupState, now_ms: i64) {
        assert!(
            state.can_follow(self.state),
            "group {} cannot move from {} to {}",
            self.id,
            self.state.name(),
            state.name()
        );
        self.state = state;
        self.state_timestamp_ms = Some(now_ms);
    }

    pub fn can_rebalance(&self) -> bool {
        GroupState::PreparingRebalance.can_follow(self.state)
    }

    pub fn is_leader(&self, member_id: &str) -> bool {
        self.leader_id.as_deref() == Some(member_id)
    }

    pub fn num_awaiting_join(&self) -> usize {
        self.members
            .values()
            .filter(|m| m.is_awaiting_join())
            .count()
    }

    pub fn has_all_members_joined(&self) -> bool {
        self.members.values().all(Member::is_awaiting_join) && self.pending_members.is_empty()
    }

    /// The largest rebalance timeout of the members: how long a rebalance may take.
    pub fn rebalance_timeout_ms(&self) -> i32 {
        self.members
            .values()
            .map(|m| m.rebalance_timeout_ms)
            .max()
            .unwrap_or(0)
    }

    pub fn add(&mut self, member: Member) {
        if let Some(instance) = &member.instance_id {
            let previous = self
                .static_members
                .insert(instance.clone(), member.id.clone());
            assert!(previous.is_none(), "static member {instance} added twice");
        }
        if self.members.is_empty() {
            self.protocol_type = Some(member.protocol_type.clone());
        }
        if self.leader_id.is_none() {
            self.leader_id = Some(member.id.clone());
        }
        self.pending_members.remove(&member.id);
        self.members.insert(member.id.clone(), member);
    }

    /// Removes a member (or pending member) without touching its parked requests.
    pub fn remove(&mut self, member_id: &str) -> Option<Member> {
        let removed = self.members.remove(member_id);
        if let Some(instance) = removed.as_ref().and_then(|m| m.instance_id.as_ref()) {
            self.static_members.remove(instance);
        }
        if self.is_leader(member_id) {
            self.leader_id = self.members.keys().next().cloned();
        }
        self.pending_members.remove(member_id);
        self.pending_sync.remove(member_id);
        removed
    }

    /// Protocols every member supports.
    fn candidate_protocols(&self) -> Vec<&str> {
        let Some(first) = self.members.values().next() else {
            return Vec::new();
        };
        first
            .protocols
            .iter()
            .map(|(name, _)| name.as_str())
            .filter(|name| self.members.values().all(|m| m.supports(name)))
            .collect()
    }

    /// Kafka's `selectProtocol`: each member votes for its preferred common protocol; the most
    /// votes win. Kafka breaks ties arbitrarily (hash order); here the first candidate in the
    /// first member's preference order wins, so the choice is deterministic.
    pub fn select_protocol(&self) -> Option<String> {
        let candidates = self.candidate_protocols();
        let mut votes: Vec<(&str, usize)> = candidates.iter().map(|c| (*c, 0)).collect();
        for member in self.members.values() {
            if let Some(choice) = member.vote(&candidates) {
                if let Some(entry) = votes.iter_mut().find(|(name, _)| *name == choice) {
                    entry.1 += 1;
                }
            }
        }
        let best = votes.iter().map(|(_, n)| *n).max()?;
        votes
            .into_iter()
            .find(|(_, n)| *n == best)
            .map(|(name, _)| name.to_owned())
    }

    /// Kafka's `supportsProtocols`: an empty group accepts any non-empty protocol type and list;
    /// otherwise the type must match and one protocol must be supported by every member.
    pub fn supports_protocols(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if self.is(GroupState::Empty) {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && protocols
                .iter()
                .any(|(name, _)| self.members.values().all(|m| m.supports(name)))
    }

    /// Kafka's `initNextGeneration`: bumps the generation and picks the protocol.
    pub fn init_next_generation(&mut self, now_ms: i64) {
        assert!(
            self.is(GroupState::PreparingRebalance),
            "new generation outside a rebalance"
        );
        self.generation_id += 1;
        if self.members.is_empty() {
            self.protocol_name = None;
            self.transition_to(GroupState::Empty, now_ms);
        } else {
            self.protocol_name = self.select_protocol();
            self.transition_to(GroupState::CompletingRebalance, now_ms);
        }
        self.subscribed_topics = self.compute_subscribed_topics();
        self.pending_sync.clear();
    }

    /// The topics consumer-protocol members subscribe to, read from their metadata with the v0
    /// schema (a prefix of every later version). None when unknown or unparsable.
    pub fn compute_subscribed_topics(&self) -> Option<BTreeSet<String>> {
        if self.protocol_type.as_deref() != Some("consumer") {
            return None;
        }
        if self.members.is_empty() {
            return Some(BTreeSet::new());
        }
        let protocol = self.protocol_name.as_deref()?;
        let mut topics = BTreeSet::new();
        for member in self.members.values() {
            let mut buf: Bytes = member.metadata(protocol);
            if buf.len() < 2 {
                return None;
            }
            // Skip the version prefix; v0 is read whatever it says, like Kafka does.
            bytes::Buf::advance(&mut buf, 2);
            let sub = ConsumerProtocolSubscription::decode(&mut buf, 0).ok()?;
            topics.extend(sub.topics.iter().map(|t| t.to_string()));
        }
        Some(topics)
    }

    pub fn is_subscribed_to(&self, topic: &str) -> bool {
        self.subscribed_topics
            .as_ref()
            .is_none_or(|topics| topics.contains(topic))
    }

    /// Whether some producer has a pending transactional offset for `tp`.
    pub fn has_pending_txn_offset(&self, tp: &(String, i32)) -> bool {
        self.pending_txn.values().any(|p| p.contains_key(tp))
    }

    /// What an offset tombstone does (Kafka 4's `OffsetMetadataManager.replay`): the committed
    /// offset and every pending transactional offset of the partition go. Returns whether there
    /// was anything to remove.
    pub fn remove_offset(&mut self, tp: &(String, i32)) -> bool {
        let mut removed = self.offsets.remove(tp).is_some();
        for pending in self.pending_txn.values_mut() {
            removed |= pending.remove(tp).is_some();
        }
        self.pending_txn.retain(|_, pending| !pending.is_empty());
        removed
    }

    /// Partitions with a committed or pending transactional offset, each once, in order.
    pub fn offset_partitions(&self) -> BTreeSet<(String, i32)> {
        let pending = self.pending_txn.values().flat_map(|p| p.keys());
        self.offsets.keys().chain(pending).cloned().collect()
    }

    /// A transaction marker of `producer_id` reached this group's partition: COMMIT makes its
    /// pending offsets committed unless a later record already committed the partition; ABORT
    /// drops them. Returns whether the producer had pending offsets here.
    pub fn complete_txn(&mut self, producer_id: i64, commit: bool) -> bool {
        let Some(pending) = self.pending_txn.remove(&producer_id) else {
            return false;
        };
        if commit {
            for (tp, offset) in pending {
                let newer = self
                    .offsets
                    .get(&tp)
                    .is_none_or(|current| offset.record_seq > current.record_seq);
                if newer {
                    self.offsets.insert(tp, offset);
                }
            }
        }
        true
    }

    /// A group that exists only because of offsets (never had a generation or members) and has
    /// none left: replaying the log would not create it, so it is forgotten.
    pub fn is_offsets_only_and_bare(&self) -> bool {
        self.is(GroupState::Empty)
            && self.generation_id == 0
            && !self.has_metadata_record
            && self.members.is_empty()
            && self.pending_members.is_empty()
            && self.offsets.is_empty()
            && self.pending_txn.is_empty()
    }

    /// The static-member id currently registered for `instance_id`.
    pub fn static_member_id(&self, instance_id: &str) -> Option<&str> {
        self.static_members.get(instance_id).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, protocols: &[&str]) -> Member {
        Member {
            id: id.into(),
            instance_id: None,
            client_id: "c".into(),
            client_host: "h".into(),
            rebalance_timeout_ms: 1000,
            session_timeout_ms: 1000,
            protocol_type: "consumer".into(),
            protocols: protocols
                .iter()
                .map(|p| ((*p).to_owned(), Bytes::new()))
                .collect(),
            assignment: Bytes::new(),
            awaiting_join: None,
            awaiting_sync: None,
            is_new: false,
            heartbeat_deadline_ms: None,
        }
    }

    #[test]
    fn protocol_is_chosen_by_vote_among_common_protocols() {
        let mut g = Group::new("g", 0);
        g.add(member("a", &["sticky", "range", "roundrobin"]));
        g.add(member("b", &["range", "roundrobin"]));
        g.add(member("c", &["roundrobin", "range"]));
        // sticky is not common; range gets a's and b's votes.
        assert_eq!(g.select_protocol().as_deref(), Some("range"));
        g.state = GroupState::Stable;
        let offered = [("sticky".to_owned(), Bytes::new())];
        assert!(!g.supports_protocols("consumer", &offered));
        let offered = [("roundrobin".to_owned(), Bytes::new())];
        assert!(g.supports_protocols("consumer", &offered));
        assert!(!g.supports_protocols("connect", &offered));
    }

    #[test]
    fn removing_the_leader_elects_another_and_unmaps_static_ids() {
        let mut g = Group::new("g", 0);
        let mut a = member("a", &["range"]);
        a.instance_id = Some("ia".into());
        g.add(a);
        g.add(member("b", &["range"]));
        assert!(g.is_leader("a"));
        g.remove("a");
        assert!(g.is_leader("b"));
        assert_eq!(g.static_member_id("ia"), None);
    }

    #[test]
    #[should_panic(expected = "cannot move")]
    fn invalid_transitions_are_caught() {
        let mut g = Group::new("g", 0);
        g.transition_to(GroupState::Stable, 1);
    }
}
