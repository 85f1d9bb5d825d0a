//! OffsetCommit, OffsetFetch and OffsetDelete, plus offset retention (Kafka's
//! `handleCommitOffsets`, `handleFetchOffsets`, `handleDeleteOffsets` and
//! `GroupMetadataManager.cleanupGroupMetadata`).

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{
    OffsetCommitRequest, OffsetCommitResponse, OffsetDeleteRequest, OffsetDeleteResponse, TopicName,
};

use super::join::validate_current_member;
use super::persist::{group_tombstone, offset_record, offset_tombstone};
use super::rebalance::schedule_session;
use super::responses::{code, s};
use super::state::{CommittedOffset, Group, GroupState};
use super::{Ctx, GroupResponse, RequestMeta, TopicView};
use crate::records::OffsetsRecord;

pub(crate) use super::fetch::fetch;

/// Per-partition outcome, grouped by topic in request order.
pub(crate) type TopicErrors = Vec<(String, Vec<(i32, Option<ResponseError>)>)>;

/// Offsets of existing partitions, to be stored: (topic, partition, offset).
pub(crate) type ValidOffsets = Vec<(String, i32, CommittedOffset)>;

/// One offset of an OffsetCommit or TxnOffsetCommit request.
pub(crate) struct RequestedOffset<'a> {
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    pub(crate) leader_epoch: i32,
    pub(crate) metadata: Option<&'a str>,
}

/// Sorts the requested offsets, per topic in request order: partitions that do not exist get
/// UNKNOWN_TOPIC_OR_PARTITION (KafkaApis answers them before the coordinator sees them), the
/// others an outcome still to be decided and their offset among those to store.
pub(crate) fn sort_requested<'a>(
    requested: impl IntoIterator<Item = (String, Vec<RequestedOffset<'a>>)>,
    topics: &dyn TopicView,
    now_ms: i64,
    expire_timestamp_ms: Option<i64>,
) -> (TopicErrors, ValidOffsets) {
    let mut result: TopicErrors = Vec::new();
    let mut valid: ValidOffsets = Vec::new();
    for (name, offsets) in requested {
        let mut partitions = Vec::new();
        for requested in offsets {
            let partition = requested.partition;
            if !topics.partition_exists(&name, partition) {
                partitions.push((partition, Some(ResponseError::UnknownTopicOrPartition)));
                continue;
            }
            partitions.push((partition, None));
            let committed = CommittedOffset {
                offset: requested.offset,
                leader_epoch: requested.leader_epoch,
                metadata: requested.metadata.unwrap_or_default().to_owned(),
                commit_timestamp_ms: now_ms,
                expire_timestamp_ms,
                record_seq: 0,
            };
            valid.push((name.clone(), partition, committed));
        }
        result.push((name, partitions));
    }
    (result, valid)
}

/// The topics of an OffsetCommit or TxnOffsetCommit response: `error` decides each partition's
/// error from its outcome so far; `partition` and `topic` build that API's response types.
pub(crate) fn response_topics<T, P>(
    result: &TopicErrors,
    error: impl Fn((&str, i32), Option<ResponseError>) -> Option<ResponseError>,
    partition: impl Fn(i32, i16) -> P,
    topic: impl Fn(TopicName, Vec<P>) -> T,
) -> Vec<T> {
    result
        .iter()
        .map(|(name, partitions)| {
            let partitions = partitions
                .iter()
                .map(|(p, e)| partition(*p, code(error((name, *p), *e))))
                .collect();
            topic(TopicName(s(name)), partitions)
        })
        .collect()
}

/// Who commits, as the checks both commit APIs start with (Kafka's `validateOffsetCommit`)
/// decide it.
pub(crate) enum Committer {
    /// Refused with this error.
    Refused(ResponseError),
    /// The current member at the group's generation.
    Member,
    /// No member named: an admin client or an `assign()` consumer. A commit without a
    /// generation to an Empty group is one whatever member fields it carries.
    Anonymous,
}

pub(crate) fn committer(
    g: &Group,
    generation: i32,
    member_id: &str,
    instance: Option<&str>,
) -> Committer {
    if g.is(GroupState::Dead) {
        return Committer::Refused(ResponseError::CoordinatorNotAvailable);
    }
    let named = generation >= 0 || !member_id.is_empty() || instance.is_some();
    if !named || (generation < 0 && g.is(GroupState::Empty)) {
        return Committer::Anonymous;
    }
    match named_member_error(g, generation, member_id, instance) {
        Some(error) => Committer::Refused(error),
        None => Committer::Member,
    }
}

/// The member checks of a commit that names a member, an instance or a generation: that
/// member must be the current one, at the group's generation.
pub(crate) fn named_member_error(
    g: &Group,
    generation: i32,
    member_id: &str,
    instance: Option<&str>,
) -> Option<ResponseError> {
    validate_current_member(g, member_id, instance)
        .or_else(|| (generation != g.generation_id).then_some(ResponseError::IllegalGeneration))
}

pub(crate) fn commit(
    groups: &mut BTreeMap<String, Group>,
    meta: &RequestMeta,
    req: OffsetCommitRequest,
    topics: &dyn TopicView,
    cx: &mut Ctx<'_>,
) {
    let group_id = req.group_id.0.to_string();
    // v2-v4 could ask for a retention time per commit; that commit then carries its own expiry.
    let expire_timestamp_ms = (meta.api_version <= 4 && req.retention_time_ms != -1)
        .then(|| cx.now_ms + req.retention_time_ms);
    let requested = req.topics.iter().map(|t| {
        let partitions = t.partitions.iter().map(|p| RequestedOffset {
            partition: p.partition_index,
            offset: p.committed_offset,
            leader_epoch: p.committed_leader_epoch,
            metadata: p.committed_metadata.as_deref(),
        });
        (t.name.0.to_string(), partitions.collect())
    });
    let (result, valid) = sort_requested(requested, topics, cx.now_ms, expire_timestamp_ms);
    if valid.is_empty() {
        return cx.reply(meta.token, commit_response(&result, |_, _| None));
    }
    let instance = req.group_instance_id.as_deref();
    let generation = req.generation_id_or_member_epoch;
    let error = match groups.get_mut(&group_id) {
        // v9 (KIP-848) names the missing group; older versions keep ILLEGAL_GENERATION.
        None if generation >= 0 && meta.api_version >= 9 => Some(ResponseError::GroupIdNotFound),
        None if generation >= 0 => Some(ResponseError::IllegalGeneration),
        // A group that does not use the coordinator for membership (assign-based consumers).
        None => {
            let g = groups
                .entry(group_id.clone())
                .or_insert_with(|| Group::new(&group_id, cx.now_ms));
            validate_commit(g, generation, &req.member_id, instance, cx.now_ms)
        }
        Some(g) => validate_commit(g, generation, &req.member_id, instance, cx.now_ms),
    };
    if let Some(error) = error {
        let response = commit_response(&result, |_, e| e.or(Some(error)));
        return cx.reply(meta.token, response);
    }
    let g = groups.get_mut(&group_id).expect("validated group exists");
    store_offsets(g, meta, result, valid, cx);
}

/// Kafka's `validateOffsetCommit` plus the per-state checks of `doCommitOffsets`.
fn validate_commit(
    g: &mut Group,
    generation: i32,
    member_id: &str,
    instance: Option<&str>,
    now_ms: i64,
) -> Option<ResponseError> {
    match committer(g, generation, member_id, instance) {
        Committer::Refused(error) => return Some(error),
        // Only members may commit while the group has members.
        Committer::Anonymous if !g.is(GroupState::Empty) => {
            return Some(ResponseError::UnknownMemberId)
        }
        Committer::Anonymous | Committer::Member => {}
    }
    match g.state {
        GroupState::Empty | GroupState::Dead => None,
        // Commits stay allowed while preparing: the heartbeat tells the member to rejoin.
        GroupState::Stable | GroupState::PreparingRebalance => {
            let member = g.members.get_mut(member_id).expect("validated member");
            schedule_session(member, now_ms);
            None
        }
        // The member has a JoinGroup answer but no assignment yet.
        GroupState::CompletingRebalance => Some(ResponseError::RebalanceInProgress),
    }
}

fn too_large(metadata: &str, max_bytes: usize) -> bool {
    // Kafka compares String.length(), i.e. UTF-16 code units.
    metadata.encode_utf16().count() > max_bytes
}

/// Takes the offsets whose metadata is over `max_bytes` (`offset.metadata.max.bytes`) out of
/// `valid`, marking them OFFSET_METADATA_TOO_LARGE in `result` unless already refused. Judged
/// by the request itself: an earlier commit of the same partition does not make one succeed.
pub(crate) fn refuse_oversized(
    result: &mut TopicErrors,
    valid: ValidOffsets,
    max_bytes: usize,
) -> ValidOffsets {
    let (oversized, kept): (ValidOffsets, ValidOffsets) = valid
        .into_iter()
        .partition(|(_, _, committed)| too_large(&committed.metadata, max_bytes));
    for (topic, partitions) in result.iter_mut() {
        for (partition, error) in partitions.iter_mut() {
            if oversized
                .iter()
                .any(|(t, p, _)| t == topic && p == partition)
            {
                error.get_or_insert(ResponseError::OffsetMetadataTooLarge);
            }
        }
    }
    kept
}

fn store_offsets(
    g: &mut Group,
    meta: &RequestMeta,
    mut result: TopicErrors,
    valid: ValidOffsets,
    cx: &mut Ctx<'_>,
) {
    let valid = refuse_oversized(&mut result, valid, cx.cfg.offset_metadata_max_bytes);
    let mut records = Vec::new();
    for (topic, partition, mut committed) in valid {
        records.push(offset_record(&g.id, &topic, partition, &committed));
        committed.record_seq = cx.next_seq();
        g.offsets.insert((topic, partition), committed);
    }
    let ok = commit_response(&result, |_, e| e);
    if records.is_empty() {
        return cx.reply(meta.token, ok);
    }
    let failed = commit_response(&result, |_, e| {
        e.or(Some(ResponseError::CoordinatorNotAvailable))
    });
    cx.append(
        &g.id.clone(),
        records,
        vec![(meta.token, ok)],
        vec![(meta.token, failed)],
    );
}

fn commit_response(
    result: &TopicErrors,
    error: impl Fn((&str, i32), Option<ResponseError>) -> Option<ResponseError>,
) -> GroupResponse {
    let topics = response_topics(
        result,
        error,
        |p, code| {
            OffsetCommitResponsePartition::default()
                .with_partition_index(p)
                .with_error_code(code)
        },
        |name, partitions| {
            OffsetCommitResponseTopic::default()
                .with_name(name)
                .with_partitions(partitions)
        },
    );
    GroupResponse::OffsetCommit(OffsetCommitResponse::default().with_topics(topics))
}

/// OffsetDelete: only offsets of topics the group is not consuming may go.
pub(crate) fn delete(
    groups: &mut BTreeMap<String, Group>,
    meta: &RequestMeta,
    req: OffsetDeleteRequest,
    topics: &dyn TopicView,
    cx: &mut Ctx<'_>,
) {
    let group_id = req.group_id.0.to_string();
    let mut result: TopicErrors = Vec::new();
    let mut candidates = Vec::new();
    for t in &req.topics {
        let name = t.name.0.to_string();
        let partitions = t.partitions.iter().map(|p| {
            let known = topics.partition_exists(&name, p.partition_index);
            if known {
                candidates.push((name.clone(), p.partition_index));
            }
            (
                p.partition_index,
                (!known).then_some(ResponseError::UnknownTopicOrPartition),
            )
        });
        result.push((name.clone(), partitions.collect()));
    }
    let group_error = match groups.get(&group_id) {
        _ if group_id.is_empty() => Some(ResponseError::InvalidGroupId),
        None => Some(ResponseError::GroupIdNotFound),
        Some(g) => match g.state {
            GroupState::Dead => Some(ResponseError::GroupIdNotFound),
            GroupState::Empty => None,
            _ if g.protocol_type.as_deref() == Some("consumer") => None,
            _ => Some(ResponseError::NonEmptyGroup),
        },
    };
    if let Some(error) = group_error {
        let response = OffsetDeleteResponse::default().with_error_code(error.code());
        return cx.reply(meta.token, GroupResponse::OffsetDelete(response));
    }
    let g = &groups[&group_id];
    let subscribed = |topic: &str| !g.is(GroupState::Empty) && g.is_subscribed_to(topic);
    for (topic, partitions) in &mut result {
        for (_, e) in partitions.iter_mut().filter(|(_, e)| e.is_none()) {
            *e = subscribed(topic).then_some(ResponseError::GroupSubscribedToTopic);
        }
    }
    candidates.retain(|(topic, _)| !subscribed(topic));
    // Pending transactional offsets go too (Kafka 4 tombstones a partition with either).
    let records = cleanup_group(groups, &group_id, cx.now_ms, |g| {
        candidates
            .into_iter()
            .filter(|tp| g.remove_offset(tp))
            .collect()
    });
    let response = GroupResponse::OffsetDelete(
        OffsetDeleteResponse::default().with_topics(
            result
                .iter()
                .map(|(name, parts)| delete_topic(name, parts))
                .collect(),
        ),
    );
    respond_after(cx, &group_id, records, meta, response);
}

fn delete_topic(
    name: &str,
    partitions: &[(i32, Option<ResponseError>)],
) -> OffsetDeleteResponseTopic {
    let partitions = partitions
        .iter()
        .map(|(p, e)| {
            OffsetDeleteResponsePartition::default()
                .with_partition_index(*p)
                .with_error_code(code(*e))
        })
        .collect();
    OffsetDeleteResponseTopic::default()
        .with_name(TopicName(s(name)))
        .with_partitions(partitions)
}

/// Answers after the tombstones are written; Kafka ignores a failed tombstone write (the state
/// is already gone from memory), so the answer is the same either way.
pub(crate) fn respond_after(
    cx: &mut Ctx<'_>,
    group_id: &str,
    records: Vec<OffsetsRecord>,
    meta: &RequestMeta,
    response: GroupResponse,
) {
    if records.is_empty() {
        cx.reply(meta.token, response);
    } else {
        let then = vec![(meta.token, response.clone())];
        cx.append(group_id, records, then, vec![(meta.token, response)]);
    }
}

/// Kafka's `cleanupGroupMetadata` for one group: `remove` drops offsets and names them; an Empty
/// group left without offsets (committed or pending transactional ones) is Dead and forgotten.
/// Returns the tombstones to write.
pub(crate) fn cleanup_group(
    groups: &mut BTreeMap<String, Group>,
    group_id: &str,
    now_ms: i64,
    remove: impl FnOnce(&mut Group) -> Vec<(String, i32)>,
) -> Vec<OffsetsRecord> {
    let Some(g) = groups.get_mut(group_id) else {
        return Vec::new();
    };
    let removed = remove(g);
    let mut records: Vec<OffsetsRecord> = removed
        .iter()
        .map(|(t, p)| offset_tombstone(group_id, t, *p))
        .collect();
    if g.is(GroupState::Empty) && g.offsets.is_empty() && g.pending_txn.is_empty() {
        g.transition_to(GroupState::Dead, now_ms);
        // Generation 0 never wrote a metadata record, so there is nothing to tombstone.
        if g.generation_id > 0 {
            records.push(group_tombstone(group_id));
        }
        groups.remove(group_id);
    }
    records
}

/// The periodic retention sweep over all groups.
pub(crate) fn expire_offsets(groups: &mut BTreeMap<String, Group>, cx: &mut Ctx<'_>) {
    let ids: Vec<String> = groups.keys().cloned().collect();
    for id in ids {
        let (now_ms, retention_ms) = (cx.now_ms, cx.cfg.offsets_retention_ms);
        let records = cleanup_group(groups, &id, now_ms, |g| {
            remove_expired(g, now_ms, retention_ms)
        });
        if !records.is_empty() {
            cx.append(&id, records, Vec::new(), Vec::new());
        }
    }
}

/// Kafka 2.1+ retention (KIP-211): an Empty group's offsets expire `retention_ms` after the group
/// became Empty; a Stable consumer group's offsets of topics it no longer subscribes to expire
/// after their last commit; a group without a protocol (simple commits) by last commit. Commits
/// with an explicit expiry (OffsetCommit v2-v4 retention time) keep it. An offset whose partition
/// has a pending transactional offset does not expire yet (Kafka 4's `cleanupExpiredOffsets`);
/// pending offsets themselves never expire.
fn remove_expired(g: &mut Group, now_ms: i64, retention_ms: i64) -> Vec<(String, i32)> {
    /// What an offset's age is measured from.
    enum Base {
        EmptySince(Option<i64>),
        LastCommit,
    }
    let (base, skip) = match (&g.protocol_type, g.state) {
        (Some(_), GroupState::Empty) => (Base::EmptySince(g.state_timestamp_ms), None),
        (Some(t), GroupState::Stable) if t == "consumer" && g.subscribed_topics.is_some() => {
            (Base::LastCommit, g.subscribed_topics.clone())
        }
        (None, _) => (Base::LastCommit, None),
        _ => return Vec::new(),
    };
    let base = |c: &CommittedOffset| match base {
        Base::EmptySince(since) => since.unwrap_or(c.commit_timestamp_ms),
        Base::LastCommit => c.commit_timestamp_ms,
    };
    let expired: Vec<(String, i32)> = g
        .offsets
        .iter()
        .filter(|((topic, _), _)| skip.as_ref().is_none_or(|s| !s.contains(topic)))
        .filter(|(tp, _)| !g.has_pending_txn_offset(tp))
        .filter(|(_, c)| match c.expire_timestamp_ms {
            Some(expire) => now_ms >= expire,
            None => now_ms - base(c) >= retention_ms,
        })
        .map(|(tp, _)| tp.clone())
        .collect();
    for tp in &expired {
        g.offsets.remove(tp);
    }
    expired
}
