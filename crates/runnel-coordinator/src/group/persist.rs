//! The bridge between in-memory groups and `__consumer_offsets` records: building the records a
//! change writes, and rebuilding groups from them on start-up (Kafka's
//! `GroupMetadataManager.loadGroupsAndOffsets`).

use std::collections::BTreeMap;

use super::member::Member;
use super::rebalance::{prepare_rebalance, schedule_session};
use super::state::{CommittedOffset, Group, GroupState};
use super::Ctx;
use crate::records::{
    self, GroupMetadataValue, MemberMetadataValue, OffsetCommitValue, OffsetsRecord, RecordError,
    RecordKey,
};

/// The group's membership as one record (written after an assignment, an empty generation, or a
/// static member's new id).
pub(crate) fn group_metadata_record(g: &Group) -> OffsetsRecord {
    let protocol = g.protocol_name.as_deref().unwrap_or_default();
    let members = g
        .members
        .values()
        .map(|m| MemberMetadataValue {
            member_id: m.id.clone(),
            group_instance_id: m.instance_id.clone(),
            client_id: m.client_id.clone(),
            client_host: m.client_host.clone(),
            rebalance_timeout_ms: m.rebalance_timeout_ms,
            session_timeout_ms: m.session_timeout_ms,
            subscription: m.metadata(protocol),
            assignment: m.assignment.clone(),
        })
        .collect();
    let value = GroupMetadataValue {
        protocol_type: g.protocol_type.clone().unwrap_or_default(),
        generation: g.generation_id,
        protocol: g.protocol_name.clone(),
        leader: g.leader_id.clone(),
        current_state_timestamp_ms: g.state_timestamp_ms,
        members,
    };
    OffsetsRecord {
        key: records::group_metadata_key(&g.id),
        value: Some(records::encode_group_metadata_value(&value)),
    }
}

pub(crate) fn group_tombstone(group_id: &str) -> OffsetsRecord {
    OffsetsRecord {
        key: records::group_metadata_key(group_id),
        value: None,
    }
}

pub(crate) fn offset_record(
    group: &str,
    topic: &str,
    partition: i32,
    c: &CommittedOffset,
) -> OffsetsRecord {
    let value = OffsetCommitValue {
        offset: c.offset,
        leader_epoch: c.leader_epoch,
        metadata: c.metadata.clone(),
        commit_timestamp_ms: c.commit_timestamp_ms,
        expire_timestamp_ms: c.expire_timestamp_ms,
    };
    OffsetsRecord {
        key: records::offset_commit_key(group, topic, partition),
        value: Some(records::encode_offset_commit_value(&value)),
    }
}

pub(crate) fn offset_tombstone(group: &str, topic: &str, partition: i32) -> OffsetsRecord {
    OffsetsRecord {
        key: records::offset_commit_key(group, topic, partition),
        value: None,
    }
}

/// Applies one record in log order. A group exists after replay if its last metadata record is
/// not a tombstone or it has offsets, committed or pending (then it is an Empty group, as Kafka
/// loads it).
pub(crate) fn replay(
    groups: &mut BTreeMap<String, Group>,
    seq: &mut u64,
    key: &[u8],
    value: Option<&[u8]>,
) -> Result<(), RecordError> {
    match records::decode_key(key)? {
        RecordKey::OffsetCommit {
            group,
            topic,
            partition,
        } => match value {
            Some(value) => {
                let committed = committed_offset(value, seq)?;
                let g = groups
                    .entry(group.clone())
                    .or_insert_with(|| offsets_only_group(&group));
                g.offsets.insert((topic, partition), committed);
            }
            None => {
                if let Some(g) = groups.get_mut(&group) {
                    // As in Kafka 4, a tombstone also drops pending transactional offsets.
                    g.remove_offset(&(topic, partition));
                    if g.is_offsets_only_and_bare() {
                        groups.remove(&group);
                    }
                }
            }
        },
        RecordKey::GroupMetadata { group } => {
            let (offsets, pending_txn) = groups
                .remove(&group)
                .map(|g| (g.offsets, g.pending_txn))
                .unwrap_or_default();
            let loaded = match value {
                Some(value) => load_group(&group, records::decode_group_metadata_value(value)?),
                None if offsets.is_empty() && pending_txn.is_empty() => return Ok(()),
                None => offsets_only_group(&group),
            };
            let g = Group {
                offsets,
                pending_txn,
                ..loaded
            };
            groups.insert(group, g);
        }
    }
    Ok(())
}

/// Applies one record of a transactional batch of `producer_id`: an offset commit becomes
/// pending for that producer (Kafka's loader likewise); anything else applies as usual.
pub(crate) fn replay_transactional(
    groups: &mut BTreeMap<String, Group>,
    seq: &mut u64,
    producer_id: i64,
    key: &[u8],
    value: Option<&[u8]>,
) -> Result<(), RecordError> {
    let (
        RecordKey::OffsetCommit {
            group,
            topic,
            partition,
        },
        Some(value),
    ) = (records::decode_key(key)?, value)
    else {
        return replay(groups, seq, key, value);
    };
    let committed = committed_offset(value, seq)?;
    let g = groups
        .entry(group.clone())
        .or_insert_with(|| offsets_only_group(&group));
    g.pending_txn
        .entry(producer_id)
        .or_default()
        .insert((topic, partition), committed);
    Ok(())
}

fn committed_offset(value: &[u8], seq: &mut u64) -> Result<CommittedOffset, RecordError> {
    let v = records::decode_offset_commit_value(value)?;
    *seq += 1;
    Ok(CommittedOffset {
        offset: v.offset,
        leader_epoch: v.leader_epoch,
        metadata: v.metadata,
        commit_timestamp_ms: v.commit_timestamp_ms,
        expire_timestamp_ms: v.expire_timestamp_ms,
        record_seq: *seq,
    })
}

/// A group known only through its offsets; its state timestamp is set when loading finishes.
fn offsets_only_group(group_id: &str) -> Group {
    Group {
        state_timestamp_ms: None,
        ..Group::new(group_id, 0)
    }
}

fn load_group(group_id: &str, v: GroupMetadataValue) -> Group {
    let mut g = Group::new(group_id, 0);
    g.state = if v.members.is_empty() {
        GroupState::Empty
    } else {
        GroupState::Stable
    };
    g.state_timestamp_ms = v.current_state_timestamp_ms;
    g.protocol_type = Some(v.protocol_type.clone()).filter(|t| !t.is_empty());
    g.protocol_name = v.protocol.clone();
    g.generation_id = v.generation;
    g.has_metadata_record = true;
    let protocol = v.protocol.unwrap_or_default();
    for m in v.members {
        g.add(Member {
            id: m.member_id,
            instance_id: m.group_instance_id,
            client_id: m.client_id,
            client_host: m.client_host,
            rebalance_timeout_ms: m.rebalance_timeout_ms,
            session_timeout_ms: m.session_timeout_ms,
            protocol_type: v.protocol_type.clone(),
            protocols: vec![(protocol.clone(), m.subscription)],
            assignment: m.assignment,
            awaiting_join: None,
            awaiting_sync: None,
            is_new: false,
            heartbeat_deadline_ms: None,
        });
    }
    // `add` makes the first member leader; the stored leader wins.
    g.leader_id = v.leader.or(g.leader_id);
    g.subscribed_topics = g.compute_subscribed_topics();
    g
}

/// Kafka's `onGroupLoaded`: members must heartbeat within a session from now; groups over
/// group.max.size rebalance so that members can commit before some are dropped.
pub(crate) fn finish_loading(groups: &mut BTreeMap<String, Group>, cx: &mut Ctx<'_>) {
    let max = usize::try_from(cx.cfg.max_group_size).unwrap_or(0);
    for g in groups.values_mut() {
        if g.state_timestamp_ms.is_none() && !g.has_metadata_record {
            g.state_timestamp_ms = Some(cx.now_ms);
        }
        for member in g.members.values_mut() {
            schedule_session(member, cx.now_ms);
        }
        if g.members.len() > max {
            prepare_rebalance(g, cx);
        }
    }
}
