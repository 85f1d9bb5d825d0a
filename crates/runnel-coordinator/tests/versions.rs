//! Every response the coordinator produces encodes at every version the broker advertises.
//! (The harness encodes each delivered response at its request's version and panics if the
//! codec refuses it; these scenarios drive every API at every version.)

mod common;

use common::*;
use kafka_protocol::messages::*;
use runnel_coordinator::group::GroupRequest;

/// Runs a full lifecycle with JoinGroup/SyncGroup/Heartbeat/LeaveGroup at the given versions.
fn lifecycle(join_v: i16, sync_v: i16, hb_v: i16, leave_v: i16) {
    let mut h = Harness::new();
    let protos = [("range", subscription(&["t"]))];
    let instance = (join_v >= 5).then_some("inst");
    let first = h.join_v(join_v, "g", "", instance, &protos);
    let id = if h.is_answered(first) && h.join_resp(first).error_code != 0 {
        let id = h.join_resp(first).member_id.to_string();
        let t = h.join_v(join_v, "g", &id, None, &protos);
        h.advance_until(t, 10_000);
        id
    } else {
        h.advance_until(first, 10_000);
        h.join_resp(first).member_id.to_string()
    };
    let instance_sync = instance.filter(|_| sync_v >= 3);
    let s = h.sync_v(sync_v, "g", &id, instance_sync, 1, &[(&id, b"a")]);
    assert_eq!(h.sync_resp(s).error_code, 0, "sync v{sync_v}");
    let s = h.sync_v(sync_v, "g", "nobody", None, 1, &[]);
    assert_ne!(h.sync_resp(s).error_code, 0);
    let hb = HeartbeatRequest::default()
        .with_group_id(GroupId(sb("g")))
        .with_generation_id(1)
        .with_member_id(sb(&id))
        .with_group_instance_id(instance.filter(|_| hb_v >= 3).map(sb));
    h.send(hb_v, GroupRequest::Heartbeat(hb));
    // A static member rejoining while Stable exercises the persisted-join path.
    if let Some(inst) = instance {
        let t = h.join_v(join_v, "g", "", Some(inst), &protos);
        assert!(h.is_answered(t));
    }
    let mut leave = LeaveGroupRequest::default().with_group_id(GroupId(sb("g")));
    if leave_v >= 3 {
        leave.members = vec![
            leave_group_request::MemberIdentity::default().with_member_id(sb("ghost")),
            leave_group_request::MemberIdentity::default()
                .with_member_id(sb(""))
                .with_group_instance_id(instance.map(sb)),
        ];
    } else {
        leave.member_id = sb("ghost");
    }
    h.send(leave_v, GroupRequest::LeaveGroup(leave));
    h.advance(60_000);
}

#[test]
fn membership_responses_encode_at_every_version() {
    for v in 0..=9 {
        lifecycle(v, (v % 6).min(5), (v % 5).min(4), (v % 6).min(5));
    }
    for v in 0..=5 {
        lifecycle(9, v, v.min(4), v);
    }
}

#[test]
fn offset_and_admin_responses_encode_at_every_version() {
    let mut h = Harness::new();
    let (ids, _, generation) = stable_group(&mut h, "g", 2);
    commit_at_every_version(&mut h, &ids[0], generation);
    fetch_at_every_version(&mut h);
    for v in 0..=5 {
        let req = DescribeGroupsRequest::default()
            .with_groups(vec![
                GroupId(sb("g")),
                GroupId(sb("s")),
                GroupId(sb("none")),
            ])
            .with_include_authorized_operations(v >= 3);
        h.send(v, GroupRequest::DescribeGroups(req));
        let mut req = ListGroupsRequest::default();
        if v >= 4 {
            req.states_filter = vec![sb("Stable"), sb("Empty")];
        }
        if v >= 5 {
            req.types_filter = vec![sb("classic")];
        }
        h.send(v, GroupRequest::ListGroups(req));
    }
    let od = OffsetDeleteRequest::default()
        .with_group_id(GroupId(sb("g")))
        .with_topics(vec![
            offset_delete_request::OffsetDeleteRequestTopic::default()
                .with_name(TopicName(sb("t")))
                .with_partitions(vec![
                    offset_delete_request::OffsetDeleteRequestPartition::default(),
                ]),
        ]);
    h.send(0, GroupRequest::OffsetDelete(od));
    for v in 0..=2 {
        let req = DeleteGroupsRequest::default().with_groups_names(vec![
            GroupId(sb("g")),
            GroupId(sb("s")),
            GroupId(sb("none")),
        ]);
        h.send(v, GroupRequest::DeleteGroups(req));
    }
    assert!(h.answered.len() >= 50, "{}", h.answered.len());
}

fn commit_at_every_version(h: &mut Harness, member: &str, generation: i32) {
    for v in 2..=9 {
        let part = offset_commit_request::OffsetCommitRequestPartition::default()
            .with_partition_index(0)
            .with_committed_offset(i64::from(v))
            .with_committed_metadata(Some(sb("m")));
        let topics = vec![
            offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(TopicName(sb("t")))
                .with_partitions(vec![part.clone()]),
            offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(TopicName(sb("missing")))
                .with_partitions(vec![part]),
        ];
        let req = OffsetCommitRequest::default()
            .with_group_id(GroupId(sb("g")))
            .with_generation_id_or_member_epoch(generation)
            .with_member_id(sb(member))
            .with_retention_time_ms(if v <= 4 { 60_000 } else { -1 })
            .with_topics(topics.clone());
        h.send(v, GroupRequest::OffsetCommit(req));
        let simple = OffsetCommitRequest::default()
            .with_group_id(GroupId(sb("s")))
            .with_generation_id_or_member_epoch(-1)
            .with_topics(topics);
        h.send(v, GroupRequest::OffsetCommit(simple));
    }
}

fn fetch_at_every_version(h: &mut Harness) {
    for v in 1..=9 {
        for all in [false, true] {
            let req = if v >= 8 {
                let group = |g: &str| {
                    offset_fetch_request::OffsetFetchRequestGroup::default()
                        .with_group_id(GroupId(sb(g)))
                        .with_topics((!all).then(|| {
                            vec![offset_fetch_request::OffsetFetchRequestTopics::default()
                                .with_name(TopicName(sb("t")))
                                .with_partition_indexes(vec![0, 1])]
                        }))
                };
                OffsetFetchRequest::default().with_groups(vec![
                    group("g"),
                    group("s"),
                    group("none"),
                ])
            } else {
                OffsetFetchRequest::default()
                    .with_group_id(GroupId(sb("g")))
                    .with_topics((!all || v < 2).then(|| {
                        vec![offset_fetch_request::OffsetFetchRequestTopic::default()
                            .with_name(TopicName(sb("t")))
                            .with_partition_indexes(vec![0, 1])]
                    }))
            };
            h.send(v, GroupRequest::OffsetFetch(req));
        }
    }
}
