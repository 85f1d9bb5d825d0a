//! OffsetFetch (Kafka's `handleFetchOffsets` / `GroupMetadataManager.getOffsets`): v0-7 ask for
//! one group, v8+ for many. Unknown groups and partitions answer offset -1, never an error.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::responses::{code, s};
use super::state::{CommittedOffset, Group, GroupState};
use super::{Ctx, GroupResponse, RequestMeta};

/// One partition's answer.
struct Fetched {
    partition: i32,
    offset: i64,
    leader_epoch: i32,
    metadata: String,
    error: Option<ResponseError>,
}

impl Fetched {
    fn none(partition: i32, error: Option<ResponseError>) -> Self {
        Fetched {
            partition,
            offset: -1,
            leader_epoch: -1,
            metadata: String::new(),
            error,
        }
    }

    fn committed(partition: i32, c: &CommittedOffset) -> Self {
        Fetched {
            partition,
            offset: c.offset,
            leader_epoch: c.leader_epoch,
            metadata: c.metadata.clone(),
            error: None,
        }
    }
}

type Requested = Option<Vec<(String, Vec<i32>)>>;

pub(crate) fn fetch(
    groups: &mut BTreeMap<String, Group>,
    meta: &RequestMeta,
    req: OffsetFetchRequest,
    cx: &mut Ctx<'_>,
) {
    let version = meta.api_version;
    // KIP-447 (v7+): a partition with a pending transactional offset answers
    // UNSTABLE_OFFSET_COMMIT, per partition at every version as Kafka does.
    let require_stable = version >= 7 && req.require_stable;
    let response = if version >= 8 {
        let groups_out = req
            .groups
            .iter()
            .map(|rg| {
                let requested: Requested = rg.topics.as_ref().map(|ts| {
                    ts.iter()
                        .map(|t| (t.name.0.to_string(), t.partition_indexes.clone()))
                        .collect()
                });
                let topics = lookup(groups.get(&*rg.group_id.0), requested, require_stable);
                OffsetFetchResponseGroup::default()
                    .with_group_id(rg.group_id.clone())
                    .with_topics(topics.into_iter().map(|(t, ps)| topics_v8(t, ps)).collect())
            })
            .collect();
        OffsetFetchResponse::default().with_groups(groups_out)
    } else {
        let requested: Requested = req.topics.as_ref().map(|ts| {
            ts.iter()
                .map(|t| (t.name.0.to_string(), t.partition_indexes.clone()))
                .collect()
        });
        let topics = lookup(groups.get(&*req.group_id.0), requested, require_stable);
        OffsetFetchResponse::default().with_topics(
            topics
                .into_iter()
                .map(|(t, ps)| topic_v0(version, t, ps))
                .collect(),
        )
    };
    cx.reply(meta.token, GroupResponse::OffsetFetch(response));
}

/// The requested partitions (or every committed one when `requested` is None).
fn lookup(
    group: Option<&Group>,
    requested: Requested,
    require_stable: bool,
) -> Vec<(String, Vec<Fetched>)> {
    let group = group.filter(|g| !g.is(GroupState::Dead));
    let unstable = |tp: &(String, i32)| {
        (require_stable && group.is_some_and(|g| g.has_pending_txn_offset(tp)))
            .then_some(ResponseError::UnstableOffsetCommit)
    };
    let Some(requested) = requested else {
        let mut all: Vec<(String, Vec<Fetched>)> = Vec::new();
        for ((topic, partition), c) in group.map(|g| &g.offsets).into_iter().flatten() {
            if all.last().is_none_or(|(t, _)| t != topic) {
                all.push((topic.clone(), Vec::new()));
            }
            let tp = (topic.clone(), *partition);
            let fetched = match unstable(&tp) {
                Some(error) => Fetched::none(*partition, Some(error)),
                None => Fetched::committed(*partition, c),
            };
            all.last_mut().expect("pushed above").1.push(fetched);
        }
        return all;
    };
    requested
        .into_iter()
        .map(|(topic, partitions)| {
            let fetched = partitions
                .into_iter()
                .map(|partition| {
                    let tp = (topic.clone(), partition);
                    if let Some(error) = unstable(&tp) {
                        return Fetched::none(partition, Some(error));
                    }
                    match group.and_then(|g| g.offsets.get(&tp)) {
                        Some(c) => Fetched::committed(partition, c),
                        None => Fetched::none(partition, None),
                    }
                })
                .collect();
            (topic, fetched)
        })
        .collect()
}

fn topic_v0(version: i16, topic: String, partitions: Vec<Fetched>) -> OffsetFetchResponseTopic {
    let partitions = partitions
        .into_iter()
        .map(|f| {
            OffsetFetchResponsePartition::default()
                .with_partition_index(f.partition)
                .with_committed_offset(f.offset)
                .with_error_code(code(f.error))
                // The leader epoch exists from v5.
                .with_committed_leader_epoch(if version >= 5 { f.leader_epoch } else { -1 })
                .with_metadata(Some(StrBytes::from_string(f.metadata)))
        })
        .collect();
    OffsetFetchResponseTopic::default()
        .with_name(TopicName(s(&topic)))
        .with_partitions(partitions)
}

fn topics_v8(topic: String, partitions: Vec<Fetched>) -> OffsetFetchResponseTopics {
    let partitions = partitions
        .into_iter()
        .map(|f| {
            OffsetFetchResponsePartitions::default()
                .with_partition_index(f.partition)
                .with_committed_offset(f.offset)
                .with_committed_leader_epoch(f.leader_epoch)
                .with_error_code(code(f.error))
                .with_metadata(Some(StrBytes::from_string(f.metadata)))
        })
        .collect();
    OffsetFetchResponseTopics::default()
        .with_name(TopicName(s(&topic)))
        .with_partitions(partitions)
}
