//! Behaviours checked against Kafka's classic group coordinator (Kafka 4's
//! `GroupMetadataManager` / `OffsetMetadataManager` classic-group paths), each a difference that was fixed.

mod common;

use common::*;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::*;
use runnel_coordinator::group::{GroupConfig, GroupRequest, GroupResponse};

fn code(e: ResponseError) -> i16 {
    e.code()
}

/// JoinGroup v9 ("range", topic "t") with explicit session and rebalance timeouts.
fn join_timeouts(
    h: &mut Harness,
    group: &str,
    member: &str,
    instance: Option<&str>,
    session_ms: i32,
    rebalance_ms: i32,
) -> u64 {
    let req = JoinGroupRequest::default()
        .with_group_id(GroupId(sb(group)))
        .with_session_timeout_ms(session_ms)
        .with_rebalance_timeout_ms(rebalance_ms)
        .with_member_id(sb(member))
        .with_group_instance_id(instance.map(sb))
        .with_protocol_type(sb("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(sb("range"))
            .with_metadata(subscription(&["t"]))]);
    h.send(9, GroupRequest::JoinGroup(req))
}

fn commit_v(h: &mut Harness, version: i16, group: &str, generation: i32, member: &str) -> i16 {
    let req = OffsetCommitRequest::default()
        .with_group_id(GroupId(sb(group)))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(sb(member))
        .with_topics(vec![
            offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(TopicName(sb("t")))
                .with_partitions(vec![
                    offset_commit_request::OffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(5),
                ]),
        ]);
    let t = h.send(version, GroupRequest::OffsetCommit(req));
    let Some(GroupResponse::OffsetCommit(r)) = h.answered.get(&t) else {
        panic!("no commit response")
    };
    r.topics[0].partitions[0].error_code
}

/// OffsetCommit v9 (KIP-848) answers GROUP_ID_NOT_FOUND for a group that does not exist when
/// the request names a generation; older versions keep ILLEGAL_GENERATION
/// (OffsetCommitResponse.json, `OffsetMetadataManager.validateOffsetCommit`).
#[test]
fn offset_commit_v9_to_a_missing_group_is_group_id_not_found() {
    let mut h = Harness::new();
    assert_eq!(
        commit_v(&mut h, 9, "absent", 3, "m"),
        code(ResponseError::GroupIdNotFound)
    );
    for version in 2..=8 {
        assert_eq!(
            commit_v(&mut h, version, "absent", 3, "m"),
            code(ResponseError::IllegalGeneration),
            "v{version}"
        );
    }
    // Without a generation the commit still creates a simple group, at every version.
    assert_eq!(commit_v(&mut h, 9, "simple", -1, ""), 0);
    assert_eq!(
        h.state("absent"),
        "Dead",
        "a refused commit creates no group"
    );
}

/// A static member that restarts with a longer session timeout keeps the new one: Kafka's
/// `updateStaticMemberThenRebalanceOrCompleteJoin` calls `updateMember` with the request's
/// rebalance and session timeouts.
#[test]
fn static_member_rejoin_adopts_the_new_session_timeout() {
    let mut h = Harness::new();
    let first = join_timeouts(&mut h, "g", "", Some("i1"), 10_000, REBALANCE_MS);
    h.advance_until(first, 10_000);
    let r = h.join_resp(first);
    assert_eq!(r.error_code, 0);
    let old_id = r.member_id.to_string();
    let s = h.sync_v(
        5,
        "g",
        &old_id,
        Some("i1"),
        r.generation_id,
        &[(&old_id, b"a")],
    );
    assert_eq!(h.sync_resp(s).error_code, 0);

    // The process restarts with session.timeout.ms = 60 s and rejoins without its id.
    let again = join_timeouts(&mut h, "g", "", Some("i1"), 60_000, REBALANCE_MS);
    let r = h.join_resp(again);
    assert_eq!(r.error_code, 0);
    let new_id = r.member_id.to_string();
    assert_ne!(new_id, old_id);
    let generation = r.generation_id;
    assert_eq!(h.heartbeat("g", &new_id, Some("i1"), generation), 0);

    // 30 s of silence is within the new 60 s session.
    h.advance(30_000);
    assert_eq!(h.heartbeat("g", &new_id, Some("i1"), generation), 0);
    assert_eq!(h.state("g"), "Stable");
}

/// A dynamic member that rejoins with new timeouts keeps them (Kafka 4's
/// `updateMemberThenRebalanceOrCompleteJoin`).
#[test]
fn dynamic_member_rejoin_adopts_the_new_session_timeout() {
    let mut h = Harness::new();
    let (ids, leader, _) = stable_group(&mut h, "g", 1);
    assert_eq!(ids[0], leader);
    // The leader rejoins (forcing a rebalance) with a 60 s session.
    let t = join_timeouts(&mut h, "g", &leader, None, 60_000, REBALANCE_MS);
    let r = h.join_resp(t);
    assert_eq!(r.error_code, 0);
    let generation = r.generation_id;
    let s = h.sync("g", &leader, generation, &[(&leader, b"a")]);
    assert_eq!(h.sync_resp(s).error_code, 0);

    h.advance(30_000);
    assert_eq!(h.heartbeat("g", &leader, None, generation), 0);
    assert_eq!(h.state("g"), "Stable");
}

/// The initial rebalance delay is extended by members that arrive during it whenever the group
/// rebalances out of Empty, not only at generation 0 (Kafka 4: `previousState() == EMPTY`).
#[test]
fn initial_delay_extends_after_the_group_emptied_at_a_later_generation() {
    let cfg = GroupConfig::default();
    let delay = i64::from(cfg.initial_rebalance_delay_ms);
    let mut h = Harness::with_config(cfg);
    let (ids, _, _) = stable_group(&mut h, "g", 1);
    let left = h.leave("g", &[(&ids[0], None)]);
    assert_eq!(left.members[0].error_code, 0);
    assert_eq!(h.state("g"), "Empty");
    assert_eq!(h.describe("g").members.len(), 0);

    let (_, b) = h.join_new("g");
    h.advance(delay - 1_000);
    let (_, c) = h.join_new("g");
    h.advance(1_500);
    assert!(
        !h.is_answered(b) && !h.is_answered(c),
        "a member joined during the delay, so it is extended"
    );
    h.advance_until(b, delay + 1_000);
    assert!(h.is_answered(c));
    assert_eq!(h.join_resp(b).generation_id, h.join_resp(c).generation_id);
}

/// A commit without a generation is accepted by an Empty group whatever member or instance id
/// it names (Kafka's `validateOffsetCommit`: `generationId < 0 && group.is(Empty)` comes first),
/// e.g. a consumer configured with group.instance.id that uses assign().
#[test]
fn commit_without_generation_to_an_empty_group_ignores_member_fields() {
    let mut h = Harness::new();
    assert_eq!(commit_v(&mut h, 9, "simple", -1, "old-member"), 0);
    assert_eq!(h.fetch("simple", None)[&("t".to_owned(), 0)].0, 5);
    // A group whose members all left is Empty too.
    let (ids, _, _) = stable_group(&mut h, "g", 1);
    h.leave("g", &[(&ids[0], None)]);
    assert_eq!(h.state("g"), "Empty");
    assert_eq!(commit_v(&mut h, 8, "g", -1, &ids[0]), 0);
    // The transactional form, as KafkaProducer sends it for a consumer's groupMetadata()
    // outside a group: generation -1, no member id, the configured instance id.
    let e = h.txn_commit_v(
        3,
        "g",
        7,
        (-1, "", Some("instance-1")),
        &[("t", 1, 3, None)],
    );
    assert_eq!(e[&("t".to_owned(), 1)], 0);
    // While the group has members, the member fields are still checked.
    let (_, _, _) = stable_group(&mut h, "busy", 1);
    assert_eq!(
        commit_v(&mut h, 9, "busy", -1, "stranger"),
        code(ResponseError::UnknownMemberId)
    );
}

/// A static member that restarts while its first JoinGroup is still parked takes over as a
/// fresh member that is not "new" (Kafka's `replaceStaticMember` builds a new member object):
/// waiting in the rebalance keeps it alive past its session timeout, as for any known member.
#[test]
fn replaced_static_member_waiting_in_a_rebalance_outlives_its_session() {
    let mut h = Harness::new();
    let (ids, leader, _) = stable_group(&mut h, "g", 1);
    assert_eq!(ids[0], leader);
    // A static member joins: the group rebalances and waits for the leader (30 s).
    let first = h.join_static("g", "", "s");
    assert!(!h.is_answered(first));
    // Its client restarts (e.g. a request timeout) and joins again without a member id.
    h.advance(1_000);
    let second = h.join_static("g", "", "s");
    assert_eq!(
        h.join_resp(first).error_code,
        code(ResponseError::FencedInstanceId)
    );
    // The old leader heartbeats through the rebalance but never rejoins.
    for _ in 0..6 {
        h.advance(4_000);
        if h.is_answered(second) {
            break;
        }
        h.heartbeat("g", &leader, None, 1);
    }
    assert!(
        !h.is_answered(second),
        "the waiting static member is kept past its 10 s session: {:?}",
        h.answered.get(&second)
    );
    h.advance_until(second, i64::from(REBALANCE_MS));
    let r = h.join_resp(second);
    assert_eq!(r.error_code, 0);
    assert_eq!(
        r.leader, r.member_id,
        "the static member leads the new generation"
    );
}
