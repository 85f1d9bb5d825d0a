//! The group coordinator APIs on the wire (raw client, exact error codes as Apache Kafka
//! returns them): FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit,
//! OffsetFetch, DescribeGroups, ListGroups, DeleteGroups, OffsetDelete, offsets retention.
//!
//! A JoinGroup or SyncGroup can wait for other members, so every member uses its own
//! connection and blocking requests are sent with `send_request` and read later.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedTopic;
use kafka_protocol::messages::delete_groups_request::DeleteGroupsRequest;
use kafka_protocol::messages::describe_groups_request::DescribeGroupsRequest;
use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use kafka_protocol::messages::heartbeat_request::HeartbeatRequest;
use kafka_protocol::messages::join_group_request::{JoinGroupRequest, JoinGroupRequestProtocol};
use kafka_protocol::messages::join_group_response::JoinGroupResponse;
use kafka_protocol::messages::leave_group_request::{LeaveGroupRequest, MemberIdentity};
use kafka_protocol::messages::leave_group_response::LeaveGroupResponse;
use kafka_protocol::messages::list_groups_request::ListGroupsRequest;
use kafka_protocol::messages::list_groups_response::ListGroupsResponse;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequest, OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequest, OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequest, OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::sync_group_request::{SyncGroupRequest, SyncGroupRequestAssignment};
use kafka_protocol::messages::sync_group_response::SyncGroupResponse;
use kafka_protocol::messages::{ConsumerProtocolAssignment, ConsumerProtocolSubscription, GroupId};
use kafka_protocol::protocol::{Encodable, StrBytes};
use runnel_tests::clients::{raw_commit, raw_fetch_offsets, FetchedOffset};
use runnel_tests::raw::{topic_name, RawClient};
use runnel_tests::TestBroker;

const BROKER: &[(&str, &str)] = &[
    ("group.initial.rebalance.delay.ms", "0"),
    ("offsets.topic.num.partitions", "5"),
];

const JOIN_V: i16 = 9;
const SYNC_V: i16 = 5;
const HEARTBEAT_V: i16 = 4;
const LEAVE_V: i16 = 5;

/// Kafka error codes used here.
mod err {
    pub const NONE: i16 = 0;
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub const OFFSET_METADATA_TOO_LARGE: i16 = 12;
    pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
    pub const ILLEGAL_GENERATION: i16 = 22;
    pub const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
    pub const INVALID_GROUP_ID: i16 = 24;
    pub const UNKNOWN_MEMBER_ID: i16 = 25;
    pub const INVALID_SESSION_TIMEOUT: i16 = 26;
    pub const REBALANCE_IN_PROGRESS: i16 = 27;
    pub const NON_EMPTY_GROUP: i16 = 68;
    pub const GROUP_ID_NOT_FOUND: i16 = 69;
    pub const MEMBER_ID_REQUIRED: i16 = 79;
    pub const GROUP_MAX_SIZE_REACHED: i16 = 81;
    pub const FENCED_INSTANCE_ID: i16 = 82;
    pub const GROUP_SUBSCRIBED_TO_TOPIC: i16 = 86;
}

// -------------------------------------------------------------------------------------------
// Helpers.

/// (topic, partition, offset, metadata, error code) of one OffsetFetch partition.
type FetchRow = (String, i32, i64, String, i16);

fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

fn gid(s: &str) -> GroupId {
    GroupId(sb(s))
}

fn connect(addr: SocketAddr) -> RawClient {
    RawClient::connect(addr).expect("connect")
}

/// Consumer-protocol subscription metadata (version 0) for `topics`.
fn subscription(topics: &[&str]) -> Bytes {
    let sub = ConsumerProtocolSubscription::default()
        .with_topics(topics.iter().map(|t| sb(t)).collect())
        .with_user_data(None);
    let mut buf = BytesMut::new();
    buf.put_i16(0);
    sub.encode(&mut buf, 0).expect("encode subscription");
    buf.freeze()
}

/// Consumer-protocol assignment (version 0) of `partitions` of `topic`.
fn assignment(topic: &str, partitions: &[i32]) -> Bytes {
    let a = ConsumerProtocolAssignment::default()
        .with_assigned_partitions(vec![AssignedTopic::default()
            .with_topic(topic_name(topic))
            .with_partitions(partitions.to_vec())])
        .with_user_data(None);
    let mut buf = BytesMut::new();
    buf.put_i16(0);
    a.encode(&mut buf, 0).expect("encode assignment");
    buf.freeze()
}

fn join_request(
    group: &str,
    member_id: &str,
    instance: Option<&str>,
    session_ms: i32,
    topics: &[&str],
) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(gid(group))
        .with_session_timeout_ms(session_ms)
        .with_rebalance_timeout_ms(session_ms)
        .with_member_id(sb(member_id))
        .with_group_instance_id(instance.map(sb))
        .with_protocol_type(sb("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(sb("range"))
            .with_metadata(subscription(topics))])
}

fn join(c: &mut RawClient, version: i16, req: &JoinGroupRequest) -> JoinGroupResponse {
    c.request(version, req)
        .unwrap_or_else(|e| panic!("JoinGroup v{version}: {e:#}"))
}

/// Dynamic member join at v9: MEMBER_ID_REQUIRED first, then the join with the given id.
fn join_new(c: &mut RawClient, group: &str, session_ms: i32, topics: &[&str]) -> JoinGroupResponse {
    let first = join(
        c,
        JOIN_V,
        &join_request(group, "", None, session_ms, topics),
    );
    assert_eq!(first.error_code, err::MEMBER_ID_REQUIRED, "{first:?}");
    assert!(!first.member_id.is_empty(), "{first:?}");
    let second = join(
        c,
        JOIN_V,
        &join_request(group, &first.member_id, None, session_ms, topics),
    );
    assert_eq!(second.error_code, err::NONE, "{second:?}");
    assert_eq!(second.member_id, first.member_id);
    second
}

fn sync_request(
    group: &str,
    generation: i32,
    member: &str,
    instance: Option<&str>,
    assignments: &[(&str, Bytes)],
) -> SyncGroupRequest {
    // v5+: protocol type and name are mandatory (INCONSISTENT_GROUP_PROTOCOL otherwise).
    SyncGroupRequest::default()
        .with_protocol_type(Some(sb("consumer")))
        .with_protocol_name(Some(sb("range")))
        .with_group_id(gid(group))
        .with_generation_id(generation)
        .with_member_id(sb(member))
        .with_group_instance_id(instance.map(sb))
        .with_assignments(
            assignments
                .iter()
                .map(|(m, a)| {
                    SyncGroupRequestAssignment::default()
                        .with_member_id(sb(m))
                        .with_assignment(a.clone())
                })
                .collect(),
        )
}

fn sync(
    c: &mut RawClient,
    group: &str,
    generation: i32,
    member: &str,
    assignments: &[(&str, Bytes)],
) -> SyncGroupResponse {
    c.request(
        SYNC_V,
        &sync_request(group, generation, member, None, assignments),
    )
    .expect("SyncGroup")
}

fn heartbeat_at(
    c: &mut RawClient,
    version: i16,
    group: &str,
    generation: i32,
    member: &str,
    instance: Option<&str>,
) -> i16 {
    let req = HeartbeatRequest::default()
        .with_group_id(gid(group))
        .with_generation_id(generation)
        .with_member_id(sb(member))
        .with_group_instance_id(instance.map(sb));
    c.request(version, &req).expect("Heartbeat").error_code
}

fn heartbeat(c: &mut RawClient, group: &str, generation: i32, member: &str) -> i16 {
    heartbeat_at(c, HEARTBEAT_V, group, generation, member, None)
}

/// A single-member group, joined and synced: returns (connection, member id, generation).
fn stable_single(
    addr: SocketAddr,
    group: &str,
    session_ms: i32,
    topic: &str,
    partitions: &[i32],
) -> (RawClient, String, i32) {
    let mut c = connect(addr);
    let j = join_new(&mut c, group, session_ms, &[topic]);
    assert_eq!(j.leader, j.member_id, "a lone member leads");
    let member = j.member_id.to_string();
    let s = sync(
        &mut c,
        group,
        j.generation_id,
        &member,
        &[(&member, assignment(topic, partitions))],
    );
    assert_eq!(s.error_code, err::NONE, "{s:?}");
    (c, member, j.generation_id)
}

fn leave(c: &mut RawClient, group: &str, member: &str) -> LeaveGroupResponse {
    let req = LeaveGroupRequest::default()
        .with_group_id(gid(group))
        .with_members(vec![MemberIdentity::default().with_member_id(sb(member))]);
    c.request(LEAVE_V, &req).expect("LeaveGroup")
}

fn describe_at(addr: SocketAddr, version: i16, groups: &[&str]) -> Vec<DescribedGroup> {
    let req = DescribeGroupsRequest::default().with_groups(groups.iter().map(|g| gid(g)).collect());
    let resp = connect(addr)
        .request(version, &req)
        .expect("DescribeGroups");
    assert_eq!(resp.groups.len(), groups.len(), "{resp:?}");
    resp.groups
}

fn describe(addr: SocketAddr, group: &str) -> DescribedGroup {
    describe_at(addr, 5, &[group]).remove(0)
}

fn list_groups(addr: SocketAddr, version: i16, states: &[&str]) -> ListGroupsResponse {
    let req =
        ListGroupsRequest::default().with_states_filter(states.iter().map(|s| sb(s)).collect());
    let resp: ListGroupsResponse = connect(addr).request(version, &req).expect("ListGroups");
    assert_eq!(resp.error_code, err::NONE, "{resp:?}");
    resp
}

fn listed(resp: &ListGroupsResponse) -> BTreeMap<String, (String, String)> {
    resp.groups
        .iter()
        .map(|g| {
            (
                g.group_id.0.to_string(),
                (g.protocol_type.to_string(), g.group_state.to_string()),
            )
        })
        .collect()
}

fn create_topic(addr: SocketAddr, topic: &str, partitions: i32) {
    connect(addr)
        .create_topic_ok(topic, partitions)
        .expect("create topic");
}

fn commit_ok(addr: SocketAddr, group: &str, offsets: &[(&str, i32, i64, Option<&str>)]) {
    let r = raw_commit(addr, group, -1, "", offsets).expect("OffsetCommit");
    assert!(
        r.iter().all(|p| p.2 == err::NONE),
        "commit to {group}: {r:?}"
    );
}

fn fetched(addr: SocketAddr, group: &str) -> Vec<(String, i32, i64, String)> {
    let (e, v) = raw_fetch_offsets(addr, group, None).expect("OffsetFetch");
    assert_eq!(e, err::NONE, "OffsetFetch group error for {group}");
    v.into_iter()
        .map(|o| {
            assert_eq!(o.error_code, err::NONE, "{o:?}");
            (
                o.topic,
                o.partition,
                o.offset,
                o.metadata.unwrap_or_default(),
            )
        })
        .collect()
}

fn fetched_one(addr: SocketAddr, group: &str, topic: &str, partition: i32) -> FetchedOffset {
    let (e, v) =
        raw_fetch_offsets(addr, group, Some(&[(topic, &[partition])])).expect("OffsetFetch");
    assert_eq!(e, err::NONE, "OffsetFetch group error for {group}");
    assert_eq!(v.len(), 1, "{v:?}");
    v.into_iter().next().unwrap()
}

// -------------------------------------------------------------------------------------------
// FindCoordinator.

#[test]
fn find_coordinator_every_version_returns_this_broker() {
    let broker = TestBroker::start(BROKER);
    let addr = broker.addr();
    let mut c = connect(addr);
    let deadline = Instant::now() + Duration::from_secs(20);
    for v in 0..=3i16 {
        let mut req = FindCoordinatorRequest::default().with_key(sb(&format!("fc-group-{v}")));
        if v >= 1 {
            req = req.with_key_type(0);
        }
        let resp = loop {
            let r = c.request(v, &req).expect("FindCoordinator");
            // Kafka answers COORDINATOR_NOT_AVAILABLE while it creates the offsets topic.
            if r.error_code != err::COORDINATOR_NOT_AVAILABLE || Instant::now() > deadline {
                break r;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        assert_eq!(resp.error_code, err::NONE, "v{v}: {resp:?}");
        assert_eq!(resp.node_id.0, 0, "v{v}");
        assert_eq!(resp.host.as_str(), "127.0.0.1", "v{v}");
        assert_eq!(resp.port, addr.port() as i32, "v{v}");
    }
    for v in 4..=5i16 {
        let req = FindCoordinatorRequest::default()
            .with_key_type(0)
            .with_coordinator_keys(vec![sb("fc-a"), sb("fc-b")]);
        let resp = c.request(v, &req).expect("FindCoordinator");
        let mut keys: Vec<String> = resp
            .coordinators
            .iter()
            .map(|k| k.key.to_string())
            .collect();
        keys.sort();
        assert_eq!(keys, vec!["fc-a", "fc-b"], "v{v}: {resp:?}");
        for k in &resp.coordinators {
            assert_eq!(k.error_code, err::NONE, "v{v}: {k:?}");
            assert_eq!(k.node_id.0, 0, "v{v}");
            assert_eq!(k.host.as_str(), "127.0.0.1", "v{v}");
            assert_eq!(k.port, addr.port() as i32, "v{v}");
        }
    }

    // The offsets topic now exists, is internal, with offsets.topic.num.partitions partitions.
    let md = c.metadata(12, None, false).expect("Metadata");
    let t = md
        .topics
        .iter()
        .find(|t| t.name.as_ref().map(|n| n.0.as_str()) == Some("__consumer_offsets"))
        .unwrap_or_else(|| panic!("__consumer_offsets not listed: {md:?}"));
    assert_eq!(t.error_code, 0);
    assert!(t.is_internal, "__consumer_offsets is internal");
    assert_eq!(t.partitions.len(), 5);
    assert!(t.partitions.iter().all(|p| p.leader_id.0 == 0));
}

// -------------------------------------------------------------------------------------------
// JoinGroup / SyncGroup / Heartbeat / LeaveGroup.

#[test]
fn join_sync_heartbeat_leave_at_every_version() {
    let broker = TestBroker::start(BROKER);
    let addr = broker.addr();
    create_topic(addr, "jt", 2);
    for v in 0..=9i16 {
        let group = format!("join-v{v}");
        let mut c = connect(addr);
        let mut req = join_request(&group, "", None, 10_000, &["jt"]);
        if v == 0 {
            req = req.with_rebalance_timeout_ms(-1);
        }
        let first = join(&mut c, v, &req);
        let resp = if v >= 4 {
            // KIP-394: a new dynamic member must rejoin with the member id it is given.
            assert_eq!(first.error_code, err::MEMBER_ID_REQUIRED, "v{v}: {first:?}");
            assert!(!first.member_id.is_empty(), "v{v}: member id returned");
            assert_eq!(first.generation_id, -1, "v{v}");
            assert!(first.members.is_empty(), "v{v}");
            let again = req.clone().with_member_id(first.member_id.clone());
            let r = join(&mut c, v, &again);
            assert_eq!(r.member_id, first.member_id, "v{v}");
            r
        } else {
            first
        };
        assert_eq!(resp.error_code, err::NONE, "v{v}: {resp:?}");
        assert!(!resp.member_id.is_empty());
        assert_eq!(resp.generation_id, 1, "v{v}");
        assert_eq!(resp.leader, resp.member_id, "v{v}: the only member leads");
        assert_eq!(resp.protocol_name.as_deref(), Some("range"), "v{v}");
        if v >= 7 {
            assert_eq!(resp.protocol_type.as_deref(), Some("consumer"), "v{v}");
        }
        assert_eq!(resp.members.len(), 1, "v{v}: the leader gets the members");
        assert_eq!(resp.members[0].member_id, resp.member_id);
        assert_eq!(resp.members[0].metadata, subscription(&["jt"]));
        let member = resp.member_id.to_string();

        let sv = v.min(5);
        let mut sreq = sync_request(
            &group,
            resp.generation_id,
            &member,
            None,
            &[(&member, assignment("jt", &[0, 1]))],
        );
        if sv >= 5 {
            sreq = sreq
                .with_protocol_type(Some(sb("consumer")))
                .with_protocol_name(Some(sb("range")));
        }
        let s: SyncGroupResponse = c.request(sv, &sreq).expect("SyncGroup");
        assert_eq!(s.error_code, err::NONE, "SyncGroup v{sv}: {s:?}");
        assert_eq!(s.assignment, assignment("jt", &[0, 1]), "SyncGroup v{sv}");
        if sv >= 5 {
            assert_eq!(s.protocol_type.as_deref(), Some("consumer"));
            assert_eq!(s.protocol_name.as_deref(), Some("range"));
        }
        let hv = v.min(4);
        assert_eq!(
            heartbeat_at(&mut c, hv, &group, resp.generation_id, &member, None),
            err::NONE,
            "Heartbeat v{hv}"
        );
        assert_eq!(describe(addr, &group).group_state.as_str(), "Stable");

        let lv = v.min(5);
        let lreq = if lv >= 3 {
            LeaveGroupRequest::default()
                .with_group_id(gid(&group))
                .with_members(vec![MemberIdentity::default().with_member_id(sb(&member))])
        } else {
            LeaveGroupRequest::default()
                .with_group_id(gid(&group))
                .with_member_id(sb(&member))
        };
        let l: LeaveGroupResponse = c.request(lv, &lreq).expect("LeaveGroup");
        assert_eq!(l.error_code, err::NONE, "LeaveGroup v{lv}: {l:?}");
        if lv >= 3 {
            assert_eq!(l.members.len(), 1);
            assert_eq!(l.members[0].error_code, err::NONE);
            assert_eq!(l.members[0].member_id.as_str(), member);
        }
        let d = describe(addr, &group);
        assert_eq!(d.group_state.as_str(), "Empty", "after leaving: {d:?}");
        assert!(d.members.is_empty());
    }
}

#[test]
fn join_rejects_bad_session_timeouts_empty_group_ids_and_inconsistent_protocols() {
    let broker = TestBroker::start(&[
        ("group.initial.rebalance.delay.ms", "0"),
        ("offsets.topic.num.partitions", "5"),
        ("group.max.session.timeout.ms", "30000"),
    ]);
    let addr = broker.addr();
    let mut c = connect(addr);
    for session in [1000, 5999, 30_001] {
        let r = join(
            &mut c,
            JOIN_V,
            &join_request("st-g", "", None, session, &["t"]),
        );
        assert_eq!(
            r.error_code,
            err::INVALID_SESSION_TIMEOUT,
            "session {session}: {r:?}"
        );
    }
    for session in [6000, 30_000] {
        let r = join(
            &mut c,
            JOIN_V,
            &join_request("st-g", "", None, session, &["t"]),
        );
        assert_eq!(r.error_code, err::MEMBER_ID_REQUIRED, "session {session}");
    }

    // An empty group id is invalid for the membership APIs.
    let r = join(&mut c, JOIN_V, &join_request("", "", None, 10_000, &["t"]));
    assert_eq!(r.error_code, err::INVALID_GROUP_ID, "JoinGroup: {r:?}");
    let s: SyncGroupResponse = c
        .request(SYNC_V, &sync_request("", 1, "m", None, &[]))
        .unwrap();
    assert_eq!(s.error_code, err::INVALID_GROUP_ID, "SyncGroup");
    assert_eq!(
        heartbeat(&mut c, "", 1, "m"),
        err::INVALID_GROUP_ID,
        "Heartbeat"
    );
    let l = leave(&mut c, "", "m");
    assert_eq!(l.error_code, err::INVALID_GROUP_ID, "LeaveGroup: {l:?}");

    // A new group needs a protocol type and at least one protocol.
    let no_protocols = join_request("np-g", "", None, 10_000, &["t"]).with_protocols(vec![]);
    let r = join(&mut c, JOIN_V, &no_protocols);
    assert_eq!(r.error_code, err::INCONSISTENT_GROUP_PROTOCOL, "{r:?}");
    // A member of another protocol type cannot join a consumer group.
    let (_keep, _, _) = stable_single(addr, "proto-g", 10_000, "t", &[0]);
    let other = join_request("proto-g", "", None, 10_000, &["t"]).with_protocol_type(sb("connect"));
    let r = join(&mut connect(addr), JOIN_V, &other);
    let r = if r.error_code == err::MEMBER_ID_REQUIRED {
        join(
            &mut connect(addr),
            JOIN_V,
            &other.clone().with_member_id(r.member_id),
        )
    } else {
        r
    };
    assert_eq!(r.error_code, err::INCONSISTENT_GROUP_PROTOCOL, "{r:?}");
}

#[test]
fn wrong_generation_and_unknown_member_are_rejected() {
    let broker = TestBroker::start(BROKER);
    let addr = broker.addr();
    create_topic(addr, "gen-t", 2);
    let (mut c, member, generation) = stable_single(addr, "gen-g", 10_000, "gen-t", &[0, 1]);
    assert_eq!(generation, 1);

    // ILLEGAL_GENERATION for a known member with the wrong generation.
    assert_eq!(
        heartbeat(&mut c, "gen-g", generation + 1, &member),
        err::ILLEGAL_GENERATION
    );
    let s = sync(&mut c, "gen-g", generation + 1, &member, &[]);
    assert_eq!(s.error_code, err::ILLEGAL_GENERATION, "{s:?}");
    let r = raw_commit(
        addr,
        "gen-g",
        generation + 1,
        &member,
        &[("gen-t", 0, 1, None)],
    )
    .unwrap();
    assert_eq!(r, vec![("gen-t".into(), 0, err::ILLEGAL_GENERATION)]);

    // UNKNOWN_MEMBER_ID for a member the group does not know.
    assert_eq!(
        heartbeat(&mut c, "gen-g", generation, "no-such-member"),
        err::UNKNOWN_MEMBER_ID
    );
    let s = sync(&mut c, "gen-g", generation, "no-such-member", &[]);
    assert_eq!(s.error_code, err::UNKNOWN_MEMBER_ID, "{s:?}");
    let r = raw_commit(
        addr,
        "gen-g",
        generation,
        "no-such-member",
        &[("gen-t", 0, 1, None)],
    )
    .unwrap();
    assert_eq!(r, vec![("gen-t".into(), 0, err::UNKNOWN_MEMBER_ID)]);
    // A "simple" commit (no generation, no member) is only for groups without members.
    let r = raw_commit(addr, "gen-g", -1, "", &[("gen-t", 0, 1, None)]).unwrap();
    assert_eq!(r, vec![("gen-t".into(), 0, err::UNKNOWN_MEMBER_ID)]);
    // LeaveGroup v3+: per-member error; v0-2: top-level error.
    let l = leave(&mut c, "gen-g", "no-such-member");
    assert_eq!(l.error_code, err::NONE, "{l:?}");
    assert_eq!(l.members.len(), 1);
    assert_eq!(l.members[0].error_code, err::UNKNOWN_MEMBER_ID);
    let l: LeaveGroupResponse = c
        .request(
            1,
            &LeaveGroupRequest::default()
                .with_group_id(gid("gen-g"))
                .with_member_id(sb("no-such-member")),
        )
        .unwrap();
    assert_eq!(l.error_code, err::UNKNOWN_MEMBER_ID, "v1: {l:?}");

    // The right generation and member commit fine, and the member is still there.
    let r = raw_commit(
        addr,
        "gen-g",
        generation,
        &member,
        &[("gen-t", 1, 7, Some("x"))],
    )
    .unwrap();
    assert_eq!(r, vec![("gen-t".into(), 1, err::NONE)]);
    assert_eq!(heartbeat(&mut c, "gen-g", generation, &member), err::NONE);
    assert_eq!(
        fetched(addr, "gen-g"),
        vec![("gen-t".into(), 1, 7, "x".into())]
    );
}

#[test]
fn heartbeat_during_a_pending_rebalance_gets_rebalance_in_progress() {
    let broker = TestBroker::start(BROKER);
    let addr = broker.addr();
    create_topic(addr, "rb-t", 4);
    let group = "rb-g";
    let (mut ca, a, gen1) = stable_single(addr, group, 20_000, "rb-t", &[0, 1, 2, 3]);

    // B joins: its second JoinGroup waits for A to rejoin.
    let mut cb = connect(addr);
    let first = join(
        &mut cb,
        JOIN_V,
        &join_request(group, "", None, 20_000, &["rb-t"]),
    );
    assert_eq!(first.error_code, err::MEMBER_ID_REQUIRED);
    let b = first.member_id.to_string();
    let b_join = cb
        .send_request(JOIN_V, &join_request(group, &b, None, 20_000, &["rb-t"]))
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let code = heartbeat(&mut ca, group, gen1, &a);
        if code == err::REBALANCE_IN_PROGRESS {
            break;
        }
        assert_eq!(code, err::NONE, "heartbeat before the rebalance started");
        assert!(
            Instant::now() < deadline,
            "A's heartbeat never reported REBALANCE_IN_PROGRESS"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        describe(addr, group).group_state.as_str(),
        "PreparingRebalance"
    );

    // A rejoins: both joins complete with generation 2; A stays the leader.
    let ja = join(
        &mut ca,
        JOIN_V,
        &join_request(group, &a, None, 20_000, &["rb-t"]),
    );
    let jb = cb
        .receive_response::<JoinGroupRequest>(JOIN_V, b_join)
        .expect("B's join");
    assert_eq!(ja.error_code, err::NONE, "{ja:?}");
    assert_eq!(jb.error_code, err::NONE, "{jb:?}");
    assert_eq!(ja.generation_id, gen1 + 1);
    assert_eq!(jb.generation_id, gen1 + 1);
    assert_eq!(ja.leader.as_str(), a);
    assert_eq!(jb.leader.as_str(), a);
    let mut members: Vec<String> = ja.members.iter().map(|m| m.member_id.to_string()).collect();
    members.sort();
    let mut expected = vec![a.clone(), b.clone()];
    expected.sort();
    assert_eq!(members, expected, "the leader sees both members");
    assert!(jb.members.is_empty(), "followers get no member list");
    assert_eq!(
        describe(addr, group).group_state.as_str(),
        "CompletingRebalance"
    );

    // B's SyncGroup waits for the leader's.
    let gen2 = ja.generation_id;
    let b_sync = cb
        .send_request(SYNC_V, &sync_request(group, gen2, &b, None, &[]))
        .unwrap();
    let sa = sync(
        &mut ca,
        group,
        gen2,
        &a,
        &[
            (&a, assignment("rb-t", &[0, 1])),
            (&b, assignment("rb-t", &[2, 3])),
        ],
    );
    let sbr = cb
        .receive_response::<SyncGroupRequest>(SYNC_V, b_sync)
        .expect("B's sync");
    assert_eq!(sa.error_code, err::NONE);
    assert_eq!(sbr.error_code, err::NONE);
    assert_eq!(sa.assignment, assignment("rb-t", &[0, 1]));
    assert_eq!(sbr.assignment, assignment("rb-t", &[2, 3]));
    assert_eq!(heartbeat(&mut ca, group, gen2, &a), err::NONE);
    assert_eq!(heartbeat(&mut cb, group, gen2, &b), err::NONE);
    let d = describe(addr, group);
    assert_eq!(d.group_state.as_str(), "Stable");
    assert_eq!(d.members.len(), 2);
}

#[test]
fn replaced_static_member_is_fenced() {
    let broker = TestBroker::start(BROKER);
    let addr = broker.addr();
    create_topic(addr, "static-t", 1);
    let group = "static-g";
    let inst = Some("static-1");
    let mut c1 = connect(addr);
    // Static members get no MEMBER_ID_REQUIRED round trip.
    let j1 = join(
        &mut c1,
        JOIN_V,
        &join_request(group, "", inst, 10_000, &["static-t"]),
    );
    assert_eq!(j1.error_code, err::NONE, "{j1:?}");
    let m1 = j1.member_id.to_string();
    let s: SyncGroupResponse = c1
        .request(
            SYNC_V,
            &sync_request(
                group,
                j1.generation_id,
                &m1,
                inst,
                &[(&m1, assignment("static-t", &[0]))],
            ),
        )
        .unwrap();
    assert_eq!(s.error_code, err::NONE);
    assert_eq!(
        heartbeat_at(&mut c1, HEARTBEAT_V, group, j1.generation_id, &m1, inst),
        err::NONE
    );

    // A new process with the same instance id replaces the member.
    let mut c2 = connect(addr);
    let j2 = join(
        &mut c2,
        JOIN_V,
        &join_request(group, "", inst, 10_000, &["static-t"]),
    );
    assert_eq!(j2.error_code, err::NONE, "{j2:?}");
    let m2 = j2.member_id.to_string();
    assert_ne!(m1, m2, "the replacement gets a new member id");

    // The old member id is fenced everywhere.
    assert_eq!(
        heartbeat_at(&mut c1, HEARTBEAT_V, group, j1.generation_id, &m1, inst),
        err::FENCED_INSTANCE_ID
    );
    let s: SyncGroupResponse = c1
        .request(
            SYNC_V,
            &sync_request(group, j1.generation_id, &m1, inst, &[]),
        )
        .unwrap();
    assert_eq!(s.error_code, err::FENCED_INSTANCE_ID, "SyncGroup: {s:?}");
    let r = join(
        &mut c1,
        JOIN_V,
        &join_request(group, &m1, inst, 10_000, &["static-t"]),
    );
    assert_eq!(r.error_code, err::FENCED_INSTANCE_ID, "JoinGroup: {r:?}");
    let commit = OffsetCommitRequest::default()
        .with_group_id(gid(group))
        .with_generation_id_or_member_epoch(j1.generation_id)
        .with_member_id(sb(&m1))
        .with_group_instance_id(inst.map(sb))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(topic_name("static-t"))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(1)])]);
    let cr = c1.request(8, &commit).unwrap();
    assert_eq!(
        cr.topics[0].partitions[0].error_code,
        err::FENCED_INSTANCE_ID,
        "OffsetCommit: {cr:?}"
    );
    let l: LeaveGroupResponse = c1
        .request(
            LEAVE_V,
            &LeaveGroupRequest::default()
                .with_group_id(gid(group))
                .with_members(vec![MemberIdentity::default()
                    .with_member_id(sb(&m1))
                    .with_group_instance_id(inst.map(sb))]),
        )
        .unwrap();
    assert_eq!(l.members.len(), 1, "{l:?}");
    assert_eq!(
        l.members[0].error_code,
        err::FENCED_INSTANCE_ID,
        "LeaveGroup"
    );

    // The new member id is alive (possibly while a rebalance settles).
    let code = heartbeat_at(&mut c2, HEARTBEAT_V, group, j2.generation_id, &m2, inst);
    assert!(
        code == err::NONE || code == err::REBALANCE_IN_PROGRESS,
        "heartbeat of the replacement: {code}"
    );
    let d = describe(addr, group);
    assert_eq!(d.members.len(), 1, "{d:?}");
    assert_eq!(d.members[0].member_id.as_str(), m2);
    assert_eq!(d.members[0].group_instance_id.as_deref(), inst);
}

#[test]
fn group_max_size_rejects_an_extra_member() {
    let broker = TestBroker::start(&[
        ("group.initial.rebalance.delay.ms", "0"),
        ("offsets.topic.num.partitions", "5"),
        ("group.max.size", "1"),
    ]);
    let addr = broker.addr();
    create_topic(addr, "max-t", 1);
    let (mut c, member, generation) = stable_single(addr, "max-g", 10_000, "max-t", &[0]);
    let r = join(
        &mut connect(addr),
        JOIN_V,
        &join_request("max-g", "", None, 10_000, &["max-t"]),
    );
    assert_eq!(r.error_code, err::GROUP_MAX_SIZE_REACHED, "{r:?}");
    // The existing member is unaffected.
    assert_eq!(heartbeat(&mut c, "max-g", generation, &member), err::NONE);
    let d = describe(addr, "max-g");
    assert_eq!(d.group_state.as_str(), "Stable");
    assert_eq!(d.members.len(), 1);
}

// -------------------------------------------------------------------------------------------
// OffsetCommit / OffsetFetch.

#[test]
fn simple_commits_at_every_version_are_fetched_at_every_version() {
    let broker = TestBroker::start(BROKER);
    let addr = broker.addr();
    let topic = "simple-t";
    create_topic(addr, topic, 3);
    let mut c = connect(addr);
    for cv in 2..=9i16 {
        let group = format!("simple-v{cv}");
        let epoch = if cv >= 6 { 0 } else { -1 };
        let req = OffsetCommitRequest::default()
            .with_group_id(gid(&group))
            .with_generation_id_or_member_epoch(-1)
            .with_member_id(sb(""))
            .with_topics(vec![OffsetCommitRequestTopic::default()
                .with_name(topic_name(topic))
                .with_partitions(vec![
                    OffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(10 + cv as i64)
                        .with_committed_leader_epoch(epoch)
                        .with_committed_metadata(Some(sb(&format!("meta-v{cv}")))),
                    OffsetCommitRequestPartition::default()
                        .with_partition_index(1)
                        .with_committed_offset(20 + cv as i64)
                        .with_committed_metadata(None),
                ])]);
        let resp = c.request(cv, &req).expect("OffsetCommit");
        assert_eq!(resp.topics.len(), 1, "v{cv}: {resp:?}");
        assert_eq!(resp.topics[0].name.0.as_str(), topic);
        let errs: Vec<(i32, i16)> = resp.topics[0]
            .partitions
            .iter()
            .map(|p| (p.partition_index, p.error_code))
            .collect();
        assert_eq!(errs, vec![(0, 0), (1, 0)], "OffsetCommit v{cv}");

        // Fetch at every version: committed partitions, plus partition 2 never committed.
        for fv in 1..=9i16 {
            let parts: Vec<(i32, i64, i32, Option<String>, i16)> = if fv >= 8 {
                let mut g = OffsetFetchRequestGroup::default()
                    .with_group_id(gid(&group))
                    .with_topics(Some(vec![OffsetFetchRequestTopics::default()
                        .with_name(topic_name(topic))
                        .with_partition_indexes(vec![0, 1, 2])]));
                if fv >= 9 {
                    g = g.with_member_id(None).with_member_epoch(-1);
                }
                let req = OffsetFetchRequest::default()
                    .with_topics(Some(vec![]))
                    .with_groups(vec![g]);
                let resp = c.request(fv, &req).expect("OffsetFetch");
                assert_eq!(resp.groups.len(), 1);
                assert_eq!(resp.groups[0].error_code, 0);
                resp.groups[0]
                    .topics
                    .iter()
                    .flat_map(|t| {
                        assert_eq!(t.name.0.as_str(), topic);
                        t.partitions.iter().map(|p| {
                            (
                                p.partition_index,
                                p.committed_offset,
                                p.committed_leader_epoch,
                                p.metadata.as_ref().map(|m| m.to_string()),
                                p.error_code,
                            )
                        })
                    })
                    .collect()
            } else {
                let mut req = OffsetFetchRequest::default()
                    .with_group_id(gid(&group))
                    .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                        .with_name(topic_name(topic))
                        .with_partition_indexes(vec![0, 1, 2])]));
                if fv >= 7 {
                    req = req.with_require_stable(true);
                }
                let resp = c.request(fv, &req).expect("OffsetFetch");
                if fv >= 2 {
                    assert_eq!(resp.error_code, 0, "OffsetFetch v{fv}");
                }
                resp.topics
                    .iter()
                    .flat_map(|t| {
                        assert_eq!(t.name.0.as_str(), topic);
                        t.partitions.iter().map(|p| {
                            (
                                p.partition_index,
                                p.committed_offset,
                                p.committed_leader_epoch,
                                p.metadata.as_ref().map(|m| m.to_string()),
                                p.error_code,
                            )
                        })
                    })
                    .collect()
            };
            let mut parts = parts;
            parts.sort();
            let e = |x: i32| if fv >= 5 { x } else { -1 };
            assert_eq!(
                parts,
                vec![
                    (0, 10 + cv as i64, e(epoch), Some(format!("meta-v{cv}")), 0),
                    (1, 20 + cv as i64, -1, Some(String::new()), 0),
                    (2, -1, -1, Some(String::new()), 0),
                ],
                "committed with v{cv}, fetched with v{fv}"
            );
        }
    }
    // OffsetFetch of every committed offset (topics null), and of a group that never existed.
    assert_eq!(
        fetched(addr, "simple-v9"),
        vec![
            (topic.into(), 0, 19, "meta-v9".into()),
            (topic.into(), 1, 29, String::new())
        ]
    );
    let o = fetched_one(addr, "never-committed", topic, 0);
    assert_eq!((o.offset, o.error_code), (-1, 0), "{o:?}");
    assert!(fetched(addr, "never-committed").is_empty());

    // A group used only for offsets is Empty, without protocol type or members.
    let d = describe(addr, "simple-v9");
    assert_eq!(d.error_code, 0);
    assert_eq!(d.group_state.as_str(), "Empty");
    assert_eq!(d.protocol_type.as_str(), "");
    assert!(d.members.is_empty());
}

#[test]
fn offset_commit_rejects_large_metadata_and_unknown_partitions() {
    let broker = TestBroker::start(BROKER);
    let addr = broker.addr();
    create_topic(addr, "oc-t", 2);
    let max = "a".repeat(4096);
    let too_big = "b".repeat(4097);
    let r = raw_commit(
        addr,
        "oc-g",
        -1,
        "",
        &[
            ("oc-t", 0, 5, Some(&max)),
            ("oc-t", 1, 6, Some(&too_big)),
            ("oc-t", 7, 1, None),
            ("no-such-topic", 0, 1, None),
        ],
    )
    .unwrap();
    assert_eq!(
        r,
        vec![
            ("no-such-topic".into(), 0, err::UNKNOWN_TOPIC_OR_PARTITION),
            ("oc-t".into(), 0, err::NONE),
            ("oc-t".into(), 1, err::OFFSET_METADATA_TOO_LARGE),
            ("oc-t".into(), 7, err::UNKNOWN_TOPIC_OR_PARTITION),
        ]
    );
    // Only the valid commit was stored.
    assert_eq!(fetched(addr, "oc-g"), vec![("oc-t".into(), 0, 5, max)]);
    let o = fetched_one(addr, "oc-g", "oc-t", 1);
    assert_eq!(o.offset, -1, "{o:?}");
    // The unknown topic was not auto-created by the commit.
    let md = connect(addr).metadata(12, None, false).unwrap();
    assert!(
        !md.topics
            .iter()
            .any(|t| t.name.as_ref().map(|n| n.0.as_str()) == Some("no-such-topic")),
        "OffsetCommit created the topic"
    );
}

#[test]
fn offset_fetch_v8_answers_several_groups_at_once() {
    let broker = TestBroker::start(BROKER);
    let addr = broker.addr();
    create_topic(addr, "mg-a", 2);
    create_topic(addr, "mg-b", 1);
    commit_ok(
        addr,
        "mg-1",
        &[("mg-a", 0, 1, Some("one")), ("mg-a", 1, 2, None)],
    );
    commit_ok(
        addr,
        "mg-2",
        &[("mg-a", 0, 5, None), ("mg-b", 0, 7, Some("seven"))],
    );
    for v in [8i16, 9] {
        let group = |g: &str, topics: Option<Vec<(&str, Vec<i32>)>>| {
            let mut r = OffsetFetchRequestGroup::default()
                .with_group_id(gid(g))
                .with_topics(topics.map(|ts| {
                    ts.into_iter()
                        .map(|(t, ps)| {
                            OffsetFetchRequestTopics::default()
                                .with_name(topic_name(t))
                                .with_partition_indexes(ps)
                        })
                        .collect()
                }));
            if v >= 9 {
                r = r.with_member_id(None).with_member_epoch(-1);
            }
            r
        };
        let req = OffsetFetchRequest::default()
            .with_topics(Some(vec![]))
            .with_groups(vec![
                group("mg-1", Some(vec![("mg-a", vec![0, 1])])),
                group("mg-2", None),
                group("mg-unknown", Some(vec![("mg-a", vec![0])])),
            ]);
        let resp = connect(addr).request(v, &req).expect("OffsetFetch");
        let by_group: BTreeMap<String, Vec<FetchRow>> = resp
            .groups
            .iter()
            .map(|g| {
                assert_eq!(g.error_code, 0, "v{v}: {g:?}");
                let mut ps: Vec<_> = g
                    .topics
                    .iter()
                    .flat_map(|t| {
                        t.partitions.iter().map(|p| {
                            (
                                t.name.0.to_string(),
                                p.partition_index,
                                p.committed_offset,
                                p.metadata
                                    .as_ref()
                                    .map(|m| m.to_string())
                                    .unwrap_or_default(),
                                p.error_code,
                            )
                        })
                    })
                    .collect();
                ps.sort();
                (g.group_id.0.to_string(), ps)
            })
            .collect();
        let expected: BTreeMap<String, Vec<FetchRow>> = [
            (
                "mg-1".to_string(),
                vec![
                    ("mg-a".into(), 0, 1, "one".into(), 0),
                    ("mg-a".into(), 1, 2, String::new(), 0),
                ],
            ),
            (
                "mg-2".to_string(),
                vec![
                    ("mg-a".into(), 0, 5, String::new(), 0),
                    ("mg-b".into(), 0, 7, "seven".into(), 0),
                ],
            ),
            (
                "mg-unknown".to_string(),
                vec![("mg-a".into(), 0, -1, String::new(), 0)],
            ),
        ]
        .into_iter()
        .collect();
        assert_eq!(by_group, expected, "OffsetFetch v{v}");
    }
}

// -------------------------------------------------------------------------------------------
// DescribeGroups / ListGroups / DeleteGroups / OffsetDelete.

#[test]
fn describe_and_list_groups_report_states() {
    let broker = TestBroker::start(BROKER);
    let addr = broker.addr();
    create_topic(addr, "dl-t", 2);
    // Stable: one member, synced.
    let (_stable_conn, stable_member, _) =
        stable_single(addr, "dl-stable", 30_000, "dl-t", &[0, 1]);
    // CompletingRebalance: joined, never synced.
    let mut cc = connect(addr);
    let _ = join_new(&mut cc, "dl-completing", 30_000, &["dl-t"]);
    // PreparingRebalance: a stable member plus a second one waiting in JoinGroup.
    let (_ra, _, _) = stable_single(addr, "dl-rebalancing", 30_000, "dl-t", &[0, 1]);
    let mut rb = connect(addr);
    let first = join(
        &mut rb,
        JOIN_V,
        &join_request("dl-rebalancing", "", None, 30_000, &["dl-t"]),
    );
    rb.send_request(
        JOIN_V,
        &join_request("dl-rebalancing", &first.member_id, None, 30_000, &["dl-t"]),
    )
    .unwrap();
    // Empty: offsets only.
    commit_ok(addr, "dl-empty", &[("dl-t", 0, 3, None)]);

    let groups = [
        "dl-stable",
        "dl-completing",
        "dl-rebalancing",
        "dl-empty",
        "dl-unknown",
    ];
    let deadline = Instant::now() + Duration::from_secs(10);
    while describe(addr, "dl-rebalancing").group_state.as_str() != "PreparingRebalance" {
        assert!(Instant::now() < deadline, "dl-rebalancing never rebalanced");
        std::thread::sleep(Duration::from_millis(100));
    }
    for v in 0..=5i16 {
        let d = describe_at(addr, v, &groups);
        let by: BTreeMap<&str, &DescribedGroup> =
            d.iter().map(|g| (g.group_id.0.as_str(), g)).collect();
        let states: Vec<(&str, &str)> = groups
            .iter()
            .map(|g| (*g, by[g].group_state.as_str()))
            .collect();
        assert_eq!(
            states,
            vec![
                ("dl-stable", "Stable"),
                ("dl-completing", "CompletingRebalance"),
                ("dl-rebalancing", "PreparingRebalance"),
                ("dl-empty", "Empty"),
                ("dl-unknown", "Dead"),
            ],
            "DescribeGroups v{v}"
        );
        assert!(d.iter().all(|g| g.error_code == 0), "v{v}: {d:?}");
        let s = by["dl-stable"];
        assert_eq!(s.protocol_type.as_str(), "consumer");
        assert_eq!(s.protocol_data.as_str(), "range");
        assert_eq!(s.members.len(), 1);
        let m = &s.members[0];
        assert_eq!(m.member_id.as_str(), stable_member);
        assert_eq!(m.client_id.as_str(), "runnel-raw-test");
        assert!(
            m.client_host.contains("127.0.0.1"),
            "client host {:?}",
            m.client_host
        );
        assert_eq!(m.member_metadata, subscription(&["dl-t"]));
        assert_eq!(m.member_assignment, assignment("dl-t", &[0, 1]));
        if v >= 3 {
            assert_eq!(
                s.authorized_operations,
                i32::MIN,
                "v{v}: operations not requested"
            );
        }
        // Groups that are not Stable report no protocol and no member metadata.
        for g in ["dl-completing", "dl-rebalancing"] {
            assert_eq!(by[g].protocol_type.as_str(), "consumer", "v{v} {g}");
            assert_eq!(by[g].protocol_data.as_str(), "", "v{v} {g}");
        }
        assert_eq!(by["dl-completing"].members.len(), 1);
        assert_eq!(by["dl-rebalancing"].members.len(), 2);
        assert_eq!(by["dl-empty"].protocol_type.as_str(), "");
        assert!(by["dl-empty"].members.is_empty());
        assert!(by["dl-unknown"].members.is_empty());
    }

    let ours = |m: BTreeMap<String, (String, String)>| -> BTreeMap<String, (String, String)> {
        m.into_iter()
            .filter(|(g, _)| g.starts_with("dl-"))
            .collect()
    };
    for v in 0..=5i16 {
        let resp = list_groups(addr, v, &[]);
        let got = ours(listed(&resp));
        let types: Vec<(&str, &str)> = got
            .iter()
            .map(|(g, (t, _))| (g.as_str(), t.as_str()))
            .collect();
        assert_eq!(
            types,
            vec![
                ("dl-completing", "consumer"),
                ("dl-empty", ""),
                ("dl-rebalancing", "consumer"),
                ("dl-stable", "consumer"),
            ],
            "ListGroups v{v}"
        );
        if v >= 4 {
            assert_eq!(got["dl-stable"].1, "Stable");
            assert_eq!(got["dl-completing"].1, "CompletingRebalance");
            assert_eq!(got["dl-rebalancing"].1, "PreparingRebalance");
            assert_eq!(got["dl-empty"].1, "Empty");
        }
        if v >= 5 {
            assert!(
                resp.groups
                    .iter()
                    .all(|g| g.group_type.as_str() == "classic"),
                "v5 group types: {resp:?}"
            );
        }
    }
    // KIP-518 states filter.
    let only = |states: &[&str]| -> Vec<String> {
        ours(listed(&list_groups(addr, 4, states)))
            .into_keys()
            .collect()
    };
    assert_eq!(only(&["Stable"]), vec!["dl-stable"]);
    assert_eq!(
        only(&["Empty", "CompletingRebalance"]),
        vec!["dl-completing", "dl-empty"]
    );
    assert_eq!(only(&["PreparingRebalance"]), vec!["dl-rebalancing"]);
    assert!(only(&["Dead"]).is_empty());
}

#[test]
fn delete_groups_refuses_non_empty_groups_and_removes_offsets() {
    let broker = TestBroker::start(BROKER);
    let addr = broker.addr();
    create_topic(addr, "dg-t", 1);
    let (mut c, member, generation) = stable_single(addr, "dg-active", 10_000, "dg-t", &[0]);
    let r = raw_commit(
        addr,
        "dg-active",
        generation,
        &member,
        &[("dg-t", 0, 4, None)],
    )
    .unwrap();
    assert_eq!(r, vec![("dg-t".into(), 0, 0)]);
    commit_ok(addr, "dg-empty", &[("dg-t", 0, 9, Some("e"))]);

    let delete = |v: i16, groups: &[&str]| -> BTreeMap<String, i16> {
        let req = DeleteGroupsRequest::default()
            .with_groups_names(groups.iter().map(|g| gid(g)).collect());
        connect(addr)
            .request(v, &req)
            .expect("DeleteGroups")
            .results
            .iter()
            .map(|r| (r.group_id.0.to_string(), r.error_code))
            .collect()
    };
    let res = delete(0, &["dg-active", "dg-empty", "dg-unknown"]);
    assert_eq!(
        res,
        [
            ("dg-active".to_string(), err::NON_EMPTY_GROUP),
            ("dg-empty".to_string(), err::NONE),
            ("dg-unknown".to_string(), err::GROUP_ID_NOT_FOUND),
        ]
        .into_iter()
        .collect()
    );
    let o = fetched_one(addr, "dg-empty", "dg-t", 0);
    assert_eq!((o.offset, o.metadata.as_deref()), (-1, Some("")), "{o:?}");
    assert_eq!(describe(addr, "dg-empty").group_state.as_str(), "Dead");
    assert!(!listed(&list_groups(addr, 4, &[])).contains_key("dg-empty"));
    // The active group kept its offsets; once its member leaves it can be deleted.
    assert_eq!(fetched_one(addr, "dg-active", "dg-t", 0).offset, 4);
    let l = leave(&mut c, "dg-active", &member);
    assert_eq!(l.error_code, 0);
    assert_eq!(describe(addr, "dg-active").group_state.as_str(), "Empty");
    for v in [1i16, 2] {
        let res = delete(v, &["dg-active"]);
        let expected = if v == 1 {
            err::NONE
        } else {
            err::GROUP_ID_NOT_FOUND
        };
        assert_eq!(res["dg-active"], expected, "DeleteGroups v{v}");
    }
    assert_eq!(fetched_one(addr, "dg-active", "dg-t", 0).offset, -1);
}

#[test]
fn offset_delete_refuses_subscribed_topics() {
    let broker = TestBroker::start(BROKER);
    let addr = broker.addr();
    create_topic(addr, "od-sub", 1);
    create_topic(addr, "od-other", 1);
    let group = "od-g";
    let (mut c, member, generation) = stable_single(addr, group, 10_000, "od-sub", &[0]);
    let r = raw_commit(
        addr,
        group,
        generation,
        &member,
        &[("od-sub", 0, 3, None), ("od-other", 0, 4, None)],
    )
    .unwrap();
    assert!(r.iter().all(|p| p.2 == 0), "{r:?}");

    let offset_delete = |group: &str, topics: &[&str]| -> (i16, BTreeMap<String, i16>) {
        let req = OffsetDeleteRequest::default()
            .with_group_id(gid(group))
            .with_topics(
                topics
                    .iter()
                    .map(|t| {
                        OffsetDeleteRequestTopic::default()
                            .with_name(topic_name(t))
                            .with_partitions(vec![
                                OffsetDeleteRequestPartition::default().with_partition_index(0)
                            ])
                    })
                    .collect(),
            );
        let resp = connect(addr).request(0, &req).expect("OffsetDelete");
        let parts = resp
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| (t.name.0.to_string(), p.error_code))
            })
            .collect();
        (resp.error_code, parts)
    };
    let (top, parts) = offset_delete(group, &["od-sub", "od-other"]);
    assert_eq!(top, err::NONE);
    assert_eq!(
        parts,
        [
            ("od-other".to_string(), err::NONE),
            ("od-sub".to_string(), err::GROUP_SUBSCRIBED_TO_TOPIC),
        ]
        .into_iter()
        .collect()
    );
    assert_eq!(
        fetched(addr, group),
        vec![("od-sub".into(), 0, 3, String::new())]
    );
    let (top, _) = offset_delete("od-unknown", &["od-sub"]);
    assert_eq!(top, err::GROUP_ID_NOT_FOUND);

    // Once the group is empty, nothing is subscribed any more.
    assert_eq!(leave(&mut c, group, &member).error_code, 0);
    let (top, parts) = offset_delete(group, &["od-sub"]);
    assert_eq!(top, err::NONE);
    assert_eq!(parts["od-sub"], err::NONE);
    assert!(fetched(addr, group).is_empty());
}

// -------------------------------------------------------------------------------------------
// Offsets retention.

#[test]
fn offsets_of_empty_groups_expire_after_retention() {
    let broker = TestBroker::start(&[
        ("group.initial.rebalance.delay.ms", "0"),
        ("offsets.topic.num.partitions", "5"),
        ("offsets.retention.minutes", "1"),
        ("offsets.retention.check.interval.ms", "500"),
    ]);
    let addr = broker.addr();
    create_topic(addr, "ret-t", 1);
    // An active group with a live member keeps its offsets past the retention time (KIP-211).
    let (mut c, member, generation) = stable_single(addr, "ret-active", 10_000, "ret-t", &[0]);
    let r = raw_commit(
        addr,
        "ret-active",
        generation,
        &member,
        &[("ret-t", 0, 2, None)],
    )
    .unwrap();
    assert_eq!(r, vec![("ret-t".into(), 0, 0)]);
    let stop = Arc::new(AtomicBool::new(false));
    let hb_errors = Arc::new(Mutex::new(Vec::new()));
    let hb = {
        let (stop, hb_errors, member) = (stop.clone(), hb_errors.clone(), member.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let code = heartbeat(&mut c, "ret-active", generation, &member);
                if code != 0 {
                    hb_errors.lock().unwrap().push(code);
                }
                std::thread::sleep(Duration::from_millis(1000));
            }
        })
    };

    let committed_at = Instant::now();
    commit_ok(addr, "ret-g", &[("ret-t", 0, 5, Some("r"))]);
    let deadline = committed_at + Duration::from_secs(68);
    let expired_after = loop {
        let o = fetched_one(addr, "ret-g", "ret-t", 0);
        let elapsed = committed_at.elapsed();
        if o.offset == -1 {
            break elapsed;
        }
        assert_eq!(o.offset, 5, "{o:?}");
        assert!(
            Instant::now() < deadline,
            "offset of an empty group still there after {elapsed:?} (retention 1 min)"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(
        expired_after >= Duration::from_secs(55),
        "offset expired after only {expired_after:?} (retention 1 min)"
    );
    // The empty group without offsets is gone too.
    let deadline = Instant::now() + Duration::from_secs(3);
    while listed(&list_groups(addr, 4, &[])).contains_key("ret-g") {
        assert!(
            Instant::now() < deadline,
            "expired empty group still listed"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    stop.store(true, Ordering::Relaxed);
    hb.join().unwrap();
    assert!(
        hb_errors.lock().unwrap().is_empty(),
        "heartbeats failed: {:?}",
        hb_errors.lock().unwrap()
    );
    assert_eq!(
        fetched(addr, "ret-active"),
        vec![("ret-t".into(), 0, 2, String::new())],
        "offsets of a group with a live member must not expire"
    );
}
