//! DescribeGroups, ListGroups and DeleteGroups: the admin view of groups.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{
    DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest, DescribeGroupsResponse,
    GroupId, ListGroupsRequest, ListGroupsResponse,
};

use super::offsets::respond_after;
use super::persist::{group_tombstone, offset_tombstone};
use super::responses::{code, s};
use super::state::{Group, GroupState};
use super::{Ctx, GroupResponse, RequestMeta};

/// The group type ListGroups v5 reports for classic groups.
const CLASSIC: &str = "classic";

pub(crate) fn describe(
    groups: &mut BTreeMap<String, Group>,
    meta: &RequestMeta,
    req: DescribeGroupsRequest,
    cx: &mut Ctx<'_>,
) {
    let described = req
        .groups
        .iter()
        .map(|id| match groups.get(&*id.0) {
            Some(g) => describe_group(g, meta.api_version),
            // Kafka describes an unknown group as Dead, without an error.
            None => DescribedGroup::default()
                .with_group_id(id.clone())
                .with_group_state(s(GroupState::Dead.name())),
        })
        .collect();
    let response = DescribeGroupsResponse::default().with_groups(described);
    cx.reply(meta.token, GroupResponse::DescribeGroups(response));
}

/// Member metadata and assignments are shown only when Stable (Kafka's `summary`).
fn describe_group(g: &Group, version: i16) -> DescribedGroup {
    let stable = g.is(GroupState::Stable);
    let protocol = if stable {
        g.protocol_name.clone().unwrap_or_default()
    } else {
        String::new()
    };
    let members = g
        .members
        .values()
        .map(|m| {
            let member = DescribedGroupMember::default()
                .with_member_id(s(&m.id))
                .with_group_instance_id(m.instance_id.as_deref().filter(|_| version >= 4).map(s))
                .with_client_id(s(&m.client_id))
                .with_client_host(s(&m.client_host));
            if stable {
                member
                    .with_member_metadata(m.metadata(&protocol))
                    .with_member_assignment(m.assignment.clone())
            } else {
                member
            }
        })
        .collect();
    DescribedGroup::default()
        .with_group_id(GroupId(s(&g.id)))
        .with_group_state(s(g.state.name()))
        .with_protocol_type(s(g.protocol_type.as_deref().unwrap_or_default()))
        .with_protocol_data(s(&protocol))
        .with_members(members)
}

pub(crate) fn list(
    groups: &mut BTreeMap<String, Group>,
    meta: &RequestMeta,
    req: ListGroupsRequest,
    cx: &mut Ctx<'_>,
) {
    let version = meta.api_version;
    // Filters match case-insensitively, as in Kafka 4.x.
    let states: Vec<String> = req.states_filter.iter().map(|x| x.to_lowercase()).collect();
    let types: Vec<String> = req.types_filter.iter().map(|x| x.to_lowercase()).collect();
    let listed = groups
        .values()
        .filter(|g| states.is_empty() || states.contains(&g.state.name().to_lowercase()))
        .filter(|_| types.is_empty() || types.iter().any(|t| t == CLASSIC))
        .map(|g| {
            let mut listed = ListedGroup::default()
                .with_group_id(GroupId(s(&g.id)))
                .with_protocol_type(s(g.protocol_type.as_deref().unwrap_or_default()));
            if version >= 4 {
                listed.group_state = s(g.state.name());
            }
            if version >= 5 {
                listed.group_type = s(CLASSIC);
            }
            listed
        })
        .collect();
    let response = ListGroupsResponse::default().with_groups(listed);
    cx.reply(meta.token, GroupResponse::ListGroups(response));
}

/// DeleteGroups: only groups without members; their offsets and metadata are tombstoned.
pub(crate) fn delete(
    groups: &mut BTreeMap<String, Group>,
    meta: &RequestMeta,
    req: DeleteGroupsRequest,
    cx: &mut Ctx<'_>,
) {
    let mut results = Vec::new();
    let mut appends = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for id in req
        .groups_names
        .iter()
        .filter(|id| seen.insert(id.0.to_string()))
    {
        let error = match groups.get(&*id.0) {
            None => Some(ResponseError::GroupIdNotFound),
            Some(g) if g.is(GroupState::Dead) => Some(ResponseError::GroupIdNotFound),
            Some(g) if !g.is(GroupState::Empty) => Some(ResponseError::NonEmptyGroup),
            Some(_) => {
                appends.push((id.0.to_string(), delete_group(groups, &id.0, cx.now_ms)));
                None
            }
        };
        results.push(
            DeletableGroupResult::default()
                .with_group_id(id.clone())
                .with_error_code(code(error)),
        );
    }
    let response =
        GroupResponse::DeleteGroups(DeleteGroupsResponse::default().with_results(results));
    // The answer waits for the last group's tombstones; earlier appends carry no response.
    let last = appends.pop();
    for (group_id, records) in appends.into_iter().filter(|(_, r)| !r.is_empty()) {
        cx.append(&group_id, records, Vec::new(), Vec::new());
    }
    match last {
        Some((group_id, records)) => respond_after(cx, &group_id, records, meta, response),
        None => cx.reply(meta.token, response),
    }
}

fn delete_group(
    groups: &mut BTreeMap<String, Group>,
    group_id: &str,
    now_ms: i64,
) -> Vec<crate::records::OffsetsRecord> {
    let mut g = groups.remove(group_id).expect("checked above");
    g.transition_to(GroupState::Dead, now_ms);
    // Partitions with only pending transactional offsets get a tombstone too, so the
    // transaction's COMMIT marker cannot bring them back (Kafka 4's `deleteAllOffsets`).
    let mut records: Vec<_> = g
        .offset_partitions()
        .iter()
        .map(|(t, p)| offset_tombstone(group_id, t, *p))
        .collect();
    if g.generation_id > 0 {
        records.push(group_tombstone(group_id));
    }
    records
}
