//! A deterministic driver for the group coordinator: an injected clock, a fake log that
//! collects appended records, and a check that every response encodes at its request's version.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};
use runnel_coordinator::group::{
    coordinator_partition, GroupConfig, GroupCoordinator, GroupRequest, GroupResponse, Output,
    RequestMeta, TopicView,
};
use runnel_coordinator::records::OffsetsRecord;

pub const SESSION_MS: i32 = 10_000;
pub const REBALANCE_MS: i32 = 30_000;

pub fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

/// Every topic has partitions 0..10 except `missing`.
pub struct Topics;

impl TopicView for Topics {
    fn partition_exists(&self, topic: &str, partition: i32) -> bool {
        topic != "missing" && (0..10).contains(&partition)
    }
}

/// Encodes a response at `version`, as the broker will.
pub fn encode(resp: &GroupResponse, version: i16) -> Result<Bytes, String> {
    let mut buf = BytesMut::new();
    let r = match resp {
        GroupResponse::JoinGroup(r) => r.encode(&mut buf, version),
        GroupResponse::SyncGroup(r) => r.encode(&mut buf, version),
        GroupResponse::Heartbeat(r) => r.encode(&mut buf, version),
        GroupResponse::LeaveGroup(r) => r.encode(&mut buf, version),
        GroupResponse::OffsetCommit(r) => r.encode(&mut buf, version),
        GroupResponse::OffsetFetch(r) => r.encode(&mut buf, version),
        GroupResponse::DescribeGroups(r) => r.encode(&mut buf, version),
        GroupResponse::ListGroups(r) => r.encode(&mut buf, version),
        GroupResponse::DeleteGroups(r) => r.encode(&mut buf, version),
        GroupResponse::OffsetDelete(r) => r.encode(&mut buf, version),
        GroupResponse::TxnOffsetCommit(r) => r.encode(&mut buf, version),
    };
    r.map(|_| buf.freeze()).map_err(|e| e.to_string())
}

/// Consumer-protocol subscription metadata (version 0) for `topics`.
pub fn subscription(topics: &[&str]) -> Bytes {
    let sub =
        ConsumerProtocolSubscription::default().with_topics(topics.iter().map(|t| sb(t)).collect());
    let mut buf = BytesMut::new();
    buf.put_i16(0);
    sub.encode(&mut buf, 0).unwrap();
    buf.freeze()
}

/// One write to `__consumer_offsets`, as the log would hold it.
#[derive(Debug, Clone)]
pub enum LogEntry {
    /// A batch; `producer` Some = a transactional batch of that producer.
    Batch {
        partition: i32,
        producer: Option<(i64, i16)>,
        records: Vec<OffsetsRecord>,
    },
    /// A transaction marker written by the broker.
    Marker {
        partition: i32,
        producer_id: i64,
        commit: bool,
    },
}

pub struct Harness {
    pub co: GroupCoordinator,
    pub now: i64,
    next_token: u64,
    versions: BTreeMap<u64, i16>,
    pub answered: BTreeMap<u64, GroupResponse>,
    /// Records of successful appends, in order, as the log would hold them.
    pub log: Vec<OffsetsRecord>,
    /// Batches of successful appends and transaction markers, in log order.
    pub entries: Vec<LogEntry>,
    /// When set, appends fail and `on_failure` responses are delivered.
    pub fail_appends: bool,
    /// Protocol name SyncGroup v5 claims.
    pub protocol: String,
}

impl Harness {
    pub fn new() -> Self {
        Self::with_config(GroupConfig::default())
    }

    pub fn with_config(cfg: GroupConfig) -> Self {
        Harness {
            co: GroupCoordinator::new(cfg),
            now: 1_000_000,
            next_token: 1,
            versions: BTreeMap::new(),
            answered: BTreeMap::new(),
            log: Vec::new(),
            entries: Vec::new(),
            fail_appends: false,
            protocol: "range".into(),
        }
    }

    pub fn send(&mut self, version: i16, request: GroupRequest) -> u64 {
        let token = self.next_token;
        self.next_token += 1;
        self.versions.insert(token, version);
        let meta = RequestMeta {
            token,
            api_version: version,
            client_id: "client".into(),
            client_host: "/127.0.0.1".into(),
        };
        let out = self.co.handle(meta, request, &Topics, self.now);
        self.absorb(out);
        token
    }

    pub fn absorb(&mut self, out: Output) {
        for (t, r) in out.responses {
            self.deliver(t, r);
        }
        for append in out.appends {
            assert!((0..self.co.config().offsets_partitions).contains(&append.partition));
            if self.fail_appends {
                append
                    .on_failure
                    .into_iter()
                    .for_each(|(t, r)| self.deliver(t, r));
            } else {
                self.log.extend(append.records.iter().cloned());
                self.entries.push(LogEntry::Batch {
                    partition: append.partition,
                    producer: append.producer,
                    records: append.records,
                });
                append
                    .then
                    .into_iter()
                    .for_each(|(t, r)| self.deliver(t, r));
            }
        }
    }

    fn deliver(&mut self, token: u64, resp: GroupResponse) {
        let version = *self
            .versions
            .get(&token)
            .expect("response for an unknown token");
        if let Err(e) = encode(&resp, version) {
            panic!("response {resp:?} does not encode at v{version}: {e}");
        }
        assert!(
            self.answered.insert(token, resp).is_none(),
            "token {token} answered twice"
        );
    }

    /// Moves the clock to `now + ms` and fires every timer due on the way, in order.
    pub fn advance(&mut self, ms: i64) {
        let target = self.now + ms;
        loop {
            match self.co.next_deadline() {
                Some(d) if d <= target => {
                    self.now = self.now.max(d);
                    let out = self.co.tick(self.now);
                    self.absorb(out);
                }
                _ => break,
            }
        }
        self.now = target;
        let out = self.co.tick(self.now);
        self.absorb(out);
    }

    /// Advances in 100 ms steps until `token` is answered (at most `max_ms`).
    pub fn advance_until(&mut self, token: u64, max_ms: i64) {
        let start = self.now;
        while !self.is_answered(token) {
            assert!(
                self.now - start < max_ms,
                "token {token} not answered within {max_ms} ms"
            );
            self.advance(100);
        }
    }

    /// The `__consumer_offsets` partition of `group`.
    pub fn partition_of(&self, group: &str) -> i32 {
        coordinator_partition(group, self.co.config().offsets_partitions)
    }

    /// The broker writes `producer_id`'s COMMIT (or ABORT) marker to `group`'s partition.
    pub fn end_txn(&mut self, group: &str, producer_id: i64, commit: bool) {
        let partition = self.partition_of(group);
        self.entries.push(LogEntry::Marker {
            partition,
            producer_id,
            commit,
        });
        let out = self
            .co
            .complete_transaction(partition, producer_id, commit, self.now);
        self.absorb(out);
    }

    /// A new harness whose coordinator was rebuilt by replaying `entries` (as the broker does
    /// at start-up), at the same time.
    pub fn replayed(&self) -> Harness {
        let mut h = Harness::with_config(self.co.config().clone());
        h.now = self.now;
        h.next_token = self.next_token;
        for entry in &self.entries {
            match entry {
                LogEntry::Batch {
                    producer, records, ..
                } => {
                    for r in records {
                        match producer {
                            Some((pid, _)) => {
                                h.co.replay_transactional(*pid, &r.key, r.value.as_deref())
                                    .unwrap()
                            }
                            None => h.co.replay(&r.key, r.value.as_deref()).unwrap(),
                        }
                    }
                }
                LogEntry::Marker {
                    partition,
                    producer_id,
                    commit,
                } => h.co.replay_marker(*partition, *producer_id, *commit),
            }
        }
        h.co.finish_loading(h.now);
        h.log = self.log.clone();
        h.entries = self.entries.clone();
        h
    }

    /// TxnOffsetCommit at `version` by producer (`pid`, epoch 0); `member` is
    /// (generation, member id, instance id). Returns per-(topic, partition) error codes.
    pub fn txn_commit_v(
        &mut self,
        version: i16,
        group: &str,
        pid: i64,
        member: (i32, &str, Option<&str>),
        offsets: &[(&str, i32, i64, Option<&str>)],
    ) -> BTreeMap<(String, i32), i16> {
        let r = self.txn_commit_resp(version, group, pid, member, offsets);
        r.topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(move |p| ((t.name.0.to_string(), p.partition_index), p.error_code))
            })
            .collect()
    }

    pub fn txn_commit_resp(
        &mut self,
        version: i16,
        group: &str,
        pid: i64,
        member: (i32, &str, Option<&str>),
        offsets: &[(&str, i32, i64, Option<&str>)],
    ) -> TxnOffsetCommitResponse {
        let mut by_topic: BTreeMap<
            &str,
            Vec<txn_offset_commit_request::TxnOffsetCommitRequestPartition>,
        > = BTreeMap::new();
        for (t, p, o, m) in offsets {
            by_topic.entry(t).or_default().push(
                txn_offset_commit_request::TxnOffsetCommitRequestPartition::default()
                    .with_partition_index(*p)
                    .with_committed_offset(*o)
                    .with_committed_leader_epoch(if version >= 2 { 4 } else { -1 })
                    .with_committed_metadata(m.map(sb)),
            );
        }
        let mut req = TxnOffsetCommitRequest::default()
            .with_transactional_id(TransactionalId(sb("tx")))
            .with_group_id(GroupId(sb(group)))
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(0)
            .with_topics(
                by_topic
                    .into_iter()
                    .map(|(t, ps)| {
                        txn_offset_commit_request::TxnOffsetCommitRequestTopic::default()
                            .with_name(TopicName(sb(t)))
                            .with_partitions(ps)
                    })
                    .collect(),
            );
        if version >= 3 {
            req.generation_id = member.0;
            req.member_id = sb(member.1);
            req.group_instance_id = member.2.map(sb);
        }
        let t = self.send(version, GroupRequest::TxnOffsetCommit(req));
        match self.answered.get(&t) {
            Some(GroupResponse::TxnOffsetCommit(r)) => r.clone(),
            other => panic!("no TxnOffsetCommit response: {other:?}"),
        }
    }

    /// TxnOffsetCommit v4 without membership (generation -1).
    pub fn txn_commit(
        &mut self,
        group: &str,
        pid: i64,
        offsets: &[(&str, i32, i64, Option<&str>)],
    ) -> BTreeMap<(String, i32), i16> {
        self.txn_commit_v(4, group, pid, (-1, "", None), offsets)
    }

    /// OffsetFetch at `version` (7 or later) for one group and the given partitions, with
    /// require_stable. Returns (topic, partition) -> (offset, error code).
    pub fn fetch_stable(
        &mut self,
        version: i16,
        group: &str,
        topics: Option<&[(&str, &[i32])]>,
        require_stable: bool,
    ) -> BTreeMap<(String, i32), (i64, i16)> {
        let mut req = OffsetFetchRequest::default().with_require_stable(require_stable);
        if version >= 8 {
            req.groups = vec![offset_fetch_request::OffsetFetchRequestGroup::default()
                .with_group_id(GroupId(sb(group)))
                .with_topics(topics.map(|ts| {
                    ts.iter()
                        .map(|(t, ps)| {
                            offset_fetch_request::OffsetFetchRequestTopics::default()
                                .with_name(TopicName(sb(t)))
                                .with_partition_indexes(ps.to_vec())
                        })
                        .collect()
                }))];
        } else {
            req.group_id = GroupId(sb(group));
            req.topics = topics.map(|ts| {
                ts.iter()
                    .map(|(t, ps)| {
                        offset_fetch_request::OffsetFetchRequestTopic::default()
                            .with_name(TopicName(sb(t)))
                            .with_partition_indexes(ps.to_vec())
                    })
                    .collect()
            });
        }
        let t = self.send(version, GroupRequest::OffsetFetch(req));
        let Some(GroupResponse::OffsetFetch(r)) = self.answered.get(&t) else {
            panic!("no fetch response")
        };
        if version >= 8 {
            assert_eq!(r.groups[0].error_code, 0, "no group-level error");
            r.groups[0]
                .topics
                .iter()
                .flat_map(|t| {
                    t.partitions.iter().map(move |p| {
                        let tp = (t.name.0.to_string(), p.partition_index);
                        (tp, (p.committed_offset, p.error_code))
                    })
                })
                .collect()
        } else {
            assert_eq!(r.error_code, 0, "no top-level error");
            r.topics
                .iter()
                .flat_map(|t| {
                    t.partitions.iter().map(move |p| {
                        let tp = (t.name.0.to_string(), p.partition_index);
                        (tp, (p.committed_offset, p.error_code))
                    })
                })
                .collect()
        }
    }

    pub fn is_answered(&self, token: u64) -> bool {
        self.answered.contains_key(&token)
    }

    pub fn join_resp(&self, token: u64) -> JoinGroupResponse {
        match self.answered.get(&token) {
            Some(GroupResponse::JoinGroup(r)) => r.clone(),
            other => panic!("token {token}: expected a JoinGroup response, got {other:?}"),
        }
    }

    pub fn sync_resp(&self, token: u64) -> SyncGroupResponse {
        match self.answered.get(&token) {
            Some(GroupResponse::SyncGroup(r)) => r.clone(),
            other => panic!("token {token}: expected a SyncGroup response, got {other:?}"),
        }
    }

    pub fn error_of(&self, token: u64) -> i16 {
        match self.answered.get(&token).expect("answered") {
            GroupResponse::JoinGroup(r) => r.error_code,
            GroupResponse::SyncGroup(r) => r.error_code,
            GroupResponse::Heartbeat(r) => r.error_code,
            GroupResponse::LeaveGroup(r) => r.error_code,
            other => panic!("no top-level error in {other:?}"),
        }
    }

    // ---- request helpers -------------------------------------------------------------

    pub fn join_v(
        &mut self,
        version: i16,
        group: &str,
        member: &str,
        instance: Option<&str>,
        protocols: &[(&str, Bytes)],
    ) -> u64 {
        let req = JoinGroupRequest::default()
            .with_group_id(GroupId(sb(group)))
            .with_session_timeout_ms(SESSION_MS)
            .with_rebalance_timeout_ms(REBALANCE_MS)
            .with_member_id(sb(member))
            .with_group_instance_id(instance.map(sb))
            .with_protocol_type(sb("consumer"))
            .with_protocols(
                protocols
                    .iter()
                    .map(|(n, m)| {
                        JoinGroupRequestProtocol::default()
                            .with_name(sb(n))
                            .with_metadata(m.clone())
                    })
                    .collect(),
            );
        self.send(version, GroupRequest::JoinGroup(req))
    }

    /// JoinGroup v9 with the "range" protocol subscribing to topic "t".
    pub fn join(&mut self, group: &str, member: &str) -> u64 {
        self.join_v(9, group, member, None, &[("range", subscription(&["t"]))])
    }

    pub fn join_static(&mut self, group: &str, member: &str, instance: &str) -> u64 {
        self.join_v(
            9,
            group,
            member,
            Some(instance),
            &[("range", subscription(&["t"]))],
        )
    }

    /// Two-step join (KIP-394): returns the member id and the token of the parked second join.
    pub fn join_new(&mut self, group: &str) -> (String, u64) {
        let first = self.join(group, "");
        let r = self.join_resp(first);
        assert_eq!(r.error_code, ResponseError::MemberIdRequired.code());
        let id = r.member_id.to_string();
        (id.clone(), self.join(group, &id))
    }

    pub fn sync(
        &mut self,
        group: &str,
        member: &str,
        generation: i32,
        assignments: &[(&str, &[u8])],
    ) -> u64 {
        self.sync_v(5, group, member, None, generation, assignments)
    }

    pub fn sync_v(
        &mut self,
        version: i16,
        group: &str,
        member: &str,
        instance: Option<&str>,
        generation: i32,
        assignments: &[(&str, &[u8])],
    ) -> u64 {
        let mut req = SyncGroupRequest::default()
            .with_group_id(GroupId(sb(group)))
            .with_generation_id(generation)
            .with_member_id(sb(member))
            .with_group_instance_id(instance.map(sb))
            .with_assignments(
                assignments
                    .iter()
                    .map(|(m, a)| {
                        SyncGroupRequestAssignment::default()
                            .with_member_id(sb(m))
                            .with_assignment(Bytes::copy_from_slice(a))
                    })
                    .collect(),
            );
        if version >= 5 {
            req.protocol_type = Some(sb("consumer"));
            req.protocol_name = Some(sb(&self.protocol));
        }
        self.send(version, GroupRequest::SyncGroup(req))
    }

    pub fn heartbeat(
        &mut self,
        group: &str,
        member: &str,
        instance: Option<&str>,
        generation: i32,
    ) -> i16 {
        let req = HeartbeatRequest::default()
            .with_group_id(GroupId(sb(group)))
            .with_generation_id(generation)
            .with_member_id(sb(member))
            .with_group_instance_id(instance.map(sb));
        let t = self.send(4, GroupRequest::Heartbeat(req));
        self.error_of(t)
    }

    pub fn leave(&mut self, group: &str, members: &[(&str, Option<&str>)]) -> LeaveGroupResponse {
        let req = LeaveGroupRequest::default()
            .with_group_id(GroupId(sb(group)))
            .with_members(
                members
                    .iter()
                    .map(|(m, i)| {
                        leave_group_request::MemberIdentity::default()
                            .with_member_id(sb(m))
                            .with_group_instance_id(i.map(sb))
                    })
                    .collect(),
            );
        let t = self.send(5, GroupRequest::LeaveGroup(req));
        match &self.answered[&t] {
            GroupResponse::LeaveGroup(r) => r.clone(),
            other => panic!("{other:?}"),
        }
    }

    /// OffsetCommit v9; returns per-(topic, partition) error codes.
    pub fn commit(
        &mut self,
        group: &str,
        member: &str,
        generation: i32,
        offsets: &[(&str, i32, i64, Option<&str>)],
    ) -> BTreeMap<(String, i32), i16> {
        let mut by_topic: BTreeMap<&str, Vec<offset_commit_request::OffsetCommitRequestPartition>> =
            BTreeMap::new();
        for (t, p, o, m) in offsets {
            by_topic.entry(t).or_default().push(
                offset_commit_request::OffsetCommitRequestPartition::default()
                    .with_partition_index(*p)
                    .with_committed_offset(*o)
                    .with_committed_leader_epoch(3)
                    .with_committed_metadata(m.map(sb)),
            );
        }
        let req = OffsetCommitRequest::default()
            .with_group_id(GroupId(sb(group)))
            .with_generation_id_or_member_epoch(generation)
            .with_member_id(sb(member))
            .with_topics(
                by_topic
                    .into_iter()
                    .map(|(t, ps)| {
                        offset_commit_request::OffsetCommitRequestTopic::default()
                            .with_name(TopicName(sb(t)))
                            .with_partitions(ps)
                    })
                    .collect(),
            );
        let t = self.send(9, GroupRequest::OffsetCommit(req));
        let Some(GroupResponse::OffsetCommit(r)) = self.answered.get(&t) else {
            panic!("no commit response")
        };
        r.topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(move |p| ((t.name.0.to_string(), p.partition_index), p.error_code))
            })
            .collect()
    }

    /// OffsetCommit v9 by a static member of one offset; returns its error code.
    pub fn commit_static(
        &mut self,
        group: &str,
        member: &str,
        instance: &str,
        generation: i32,
    ) -> i16 {
        let req = OffsetCommitRequest::default()
            .with_group_id(GroupId(sb(group)))
            .with_generation_id_or_member_epoch(generation)
            .with_member_id(sb(member))
            .with_group_instance_id(Some(sb(instance)))
            .with_topics(vec![
                offset_commit_request::OffsetCommitRequestTopic::default()
                    .with_name(TopicName(sb("t")))
                    .with_partitions(vec![
                        offset_commit_request::OffsetCommitRequestPartition::default()
                            .with_partition_index(0)
                            .with_committed_offset(1),
                    ]),
            ]);
        let t = self.send(9, GroupRequest::OffsetCommit(req));
        let Some(GroupResponse::OffsetCommit(r)) = self.answered.get(&t) else {
            panic!("no commit response")
        };
        r.topics[0].partitions[0].error_code
    }

    /// OffsetFetch v8 for one group; None topics = all. Returns (topic, partition) -> (offset, metadata).
    pub fn fetch(
        &mut self,
        group: &str,
        topics: Option<&[(&str, &[i32])]>,
    ) -> BTreeMap<(String, i32), (i64, String)> {
        let req = OffsetFetchRequest::default().with_groups(vec![
            offset_fetch_request::OffsetFetchRequestGroup::default()
                .with_group_id(GroupId(sb(group)))
                .with_topics(topics.map(|ts| {
                    ts.iter()
                        .map(|(t, ps)| {
                            offset_fetch_request::OffsetFetchRequestTopics::default()
                                .with_name(TopicName(sb(t)))
                                .with_partition_indexes(ps.to_vec())
                        })
                        .collect()
                })),
        ]);
        let t = self.send(8, GroupRequest::OffsetFetch(req));
        let Some(GroupResponse::OffsetFetch(r)) = self.answered.get(&t) else {
            panic!("no fetch response")
        };
        assert_eq!(r.groups.len(), 1);
        assert_eq!(r.groups[0].error_code, 0);
        r.groups[0]
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(move |p| {
                    let meta = p.metadata.as_deref().unwrap_or_default().to_owned();
                    (
                        (t.name.0.to_string(), p.partition_index),
                        (p.committed_offset, meta),
                    )
                })
            })
            .collect()
    }

    pub fn describe(&mut self, group: &str) -> describe_groups_response::DescribedGroup {
        let req = DescribeGroupsRequest::default().with_groups(vec![GroupId(sb(group))]);
        let t = self.send(5, GroupRequest::DescribeGroups(req));
        let Some(GroupResponse::DescribeGroups(r)) = self.answered.get(&t) else {
            panic!("no describe")
        };
        r.groups[0].clone()
    }

    pub fn state(&mut self, group: &str) -> String {
        self.describe(group).group_state.to_string()
    }

    pub fn member_ids(&mut self, group: &str) -> BTreeSet<String> {
        self.describe(group)
            .members
            .iter()
            .map(|m| m.member_id.to_string())
            .collect()
    }
}

/// Three dynamic members join an empty group and complete generation 1.
/// Returns (members, leader id, generation).
pub fn stable_group(h: &mut Harness, group: &str, n: usize) -> (Vec<String>, String, i32) {
    let mut joins = Vec::new();
    for _ in 0..n {
        joins.push(h.join_new(group));
    }
    h.advance_until(joins[0].1, i64::from(REBALANCE_MS));
    let first = h.join_resp(joins[0].1);
    let leader = first.leader.to_string();
    let generation = first.generation_id;
    let ids: Vec<String> = joins.iter().map(|(id, _)| id.clone()).collect();
    let assignments: Vec<(String, Vec<u8>)> = ids
        .iter()
        .map(|id| (id.clone(), format!("a-{id}").into_bytes()))
        .collect();
    let refs: Vec<(&str, &[u8])> = assignments
        .iter()
        .map(|(m, a)| (m.as_str(), a.as_slice()))
        .collect();
    let mut syncs = vec![h.sync(group, &leader, generation, &refs)];
    for id in ids.iter().filter(|id| **id != leader) {
        syncs.push(h.sync(group, id, generation, &[]));
    }
    for s in syncs {
        assert_eq!(h.sync_resp(s).error_code, 0);
    }
    (ids, leader, generation)
}
