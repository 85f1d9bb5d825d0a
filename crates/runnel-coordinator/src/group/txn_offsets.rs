//! TxnOffsetCommit and the completion of transactional offsets (Kafka's
//! `handleTxnCommitOffsets` and, for pending offsets, Kafka 4's `OffsetMetadataManager`).
//!
//! A transactional producer's offsets are written to the group's `__consumer_offsets` partition
//! as a transactional batch of that producer and kept pending per (group, producer id),
//! invisible to OffsetFetch, until the broker writes the transaction's marker to that partition:
//! COMMIT makes them the committed offsets (unless a later record committed the partition),
//! ABORT drops them. Replay rebuilds the same state from the batches and markers in the log.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};

use super::offsets::{
    committer, refuse_oversized, response_topics, sort_requested, Committer, RequestedOffset,
    TopicErrors,
};
use super::persist::offset_record;
use super::state::Group;
use super::{coordinator_partition, Ctx, GroupResponse, RequestMeta, TopicView};

pub(crate) fn commit(
    groups: &mut BTreeMap<String, Group>,
    meta: &RequestMeta,
    req: TxnOffsetCommitRequest,
    topics: &dyn TopicView,
    cx: &mut Ctx<'_>,
) {
    let group_id = req.group_id.0.to_string();
    let requested = req.topics.iter().map(|t| {
        let partitions = t.partitions.iter().map(|p| RequestedOffset {
            partition: p.partition_index,
            offset: p.committed_offset,
            // The leader epoch exists from v2; the codec leaves -1 before.
            leader_epoch: p.committed_leader_epoch,
            metadata: p.committed_metadata.as_deref(),
        });
        (t.name.0.to_string(), partitions.collect())
    });
    // Transactional offsets never expire on their own (no retention time in this API).
    let (mut result, valid) = sort_requested(requested, topics, cx.now_ms, None);
    if valid.is_empty() {
        return cx.reply(meta.token, response(&result, |_, e| e));
    }
    // Only transactional API users coordinate through a group: an empty id is invalid.
    if group_id.is_empty() {
        let error = Some(ResponseError::InvalidGroupId);
        return cx.reply(meta.token, response(&result, |_, e| e.or(error)));
    }
    // KIP-447 (v3+) lets the producer name the consumer's group membership to be fenced by it.
    let (generation, member_id, instance) = if meta.api_version >= 3 {
        let instance = req.group_instance_id.as_deref().map(str::to_owned);
        (req.generation_id, req.member_id.to_string(), instance)
    } else {
        (-1, String::new(), None)
    };
    // Kafka creates a missing group (Empty) before validating; here it is created only when the
    // commit is accepted, so a refused commit leaves no empty group behind.
    let fresh;
    let g = match groups.get(&group_id) {
        Some(g) => g,
        None => {
            fresh = Group::new(&group_id, cx.now_ms);
            &fresh
        }
    };
    if let Some(error) = validate(g, generation, &member_id, instance.as_deref()) {
        return cx.reply(meta.token, response(&result, |_, e| e.or(Some(error))));
    }
    let g = groups
        .entry(group_id.clone())
        .or_insert_with(|| Group::new(&group_id, cx.now_ms));
    let producer_id = req.producer_id.0;
    let valid = refuse_oversized(&mut result, valid, cx.cfg.offset_metadata_max_bytes);
    let mut records = Vec::new();
    for (topic, partition, mut committed) in valid {
        records.push(offset_record(&group_id, &topic, partition, &committed));
        committed.record_seq = cx.next_seq();
        g.pending_txn
            .entry(producer_id)
            .or_default()
            .insert((topic, partition), committed);
    }
    let ok = response(&result, |_, e| e);
    if records.is_empty() {
        return cx.reply(meta.token, ok);
    }
    // The pending offsets stay if the append fails: the producer retries the commit or aborts,
    // and the ABORT marker drops them.
    let failed = response(&result, |_, e| {
        e.or(Some(ResponseError::CoordinatorNotAvailable))
    });
    let producer = Some((producer_id, req.producer_epoch));
    cx.append_as(
        &group_id,
        records,
        vec![(meta.token, ok)],
        vec![(meta.token, failed)],
        producer,
    );
}

/// Kafka's `validateOffsetCommit` with `isTransactional`: member checks only when the request
/// names a member or generation; no state check (a transactional commit is allowed while the
/// group rebalances) and no session refresh.
fn validate(
    g: &Group,
    generation: i32,
    member_id: &str,
    instance: Option<&str>,
) -> Option<ResponseError> {
    match committer(g, generation, member_id, instance) {
        Committer::Refused(error) => Some(error),
        Committer::Member | Committer::Anonymous => None,
    }
}

/// Builds the response; every field exists at every version (0-4), so it encodes at any.
fn response(
    result: &TopicErrors,
    error: impl Fn((&str, i32), Option<ResponseError>) -> Option<ResponseError>,
) -> GroupResponse {
    let topics = response_topics(
        result,
        error,
        |p, code| {
            TxnOffsetCommitResponsePartition::default()
                .with_partition_index(p)
                .with_error_code(code)
        },
        |name, partitions| {
            TxnOffsetCommitResponseTopic::default()
                .with_name(name)
                .with_partitions(partitions)
        },
    );
    GroupResponse::TxnOffsetCommit(TxnOffsetCommitResponse::default().with_topics(topics))
}

/// A marker of `producer_id` in `__consumer_offsets` partition `partition` (written now or
/// replayed): completes that producer's pending offsets in the partition's groups. A group that
/// only existed through those offsets and has none left is forgotten, as replay would not
/// create it.
pub(crate) fn complete(
    groups: &mut BTreeMap<String, Group>,
    offsets_partitions: i32,
    partition: i32,
    producer_id: i64,
    commit: bool,
) {
    let mut bare = Vec::new();
    for (id, g) in groups.iter_mut() {
        // The cheap check first: most groups have nothing pending for this producer.
        if !g.pending_txn.contains_key(&producer_id)
            || coordinator_partition(id, offsets_partitions) != partition
        {
            continue;
        }
        if g.complete_txn(producer_id, commit) && g.is_offsets_only_and_bare() {
            bare.push(id.clone());
        }
    }
    for id in bare {
        groups.remove(&id);
    }
}
