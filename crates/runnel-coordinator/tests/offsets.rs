//! Offset commits and fetches, replay of the log, retention, DeleteGroups and OffsetDelete.

mod common;

use common::*;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::*;
use runnel_coordinator::group::{GroupConfig, GroupCoordinator, GroupRequest, GroupResponse};

fn tp(t: &str, p: i32) -> (String, i32) {
    (t.to_owned(), p)
}

#[test]
fn simple_commit_for_assign_only_consumer_round_trips() {
    let mut h = Harness::new();
    let errs = h.commit(
        "solo",
        "",
        -1,
        &[
            ("t", 0, 42, Some("meta-0")),
            ("t", 1, 7, None),
            ("missing", 0, 1, None),
        ],
    );
    assert_eq!(errs[&tp("t", 0)], 0);
    assert_eq!(
        errs[&tp("missing", 0)],
        ResponseError::UnknownTopicOrPartition.code()
    );
    assert_eq!(h.log.len(), 2, "one record per stored offset");
    let all = h.fetch("solo", None);
    assert_eq!(all[&tp("t", 0)], (42, "meta-0".to_owned()));
    assert_eq!(all[&tp("t", 1)], (7, String::new()));
    let some = h.fetch("solo", Some(&[("t", &[0, 5])]));
    assert_eq!(
        some[&tp("t", 5)],
        (-1, String::new()),
        "uncommitted partitions answer -1"
    );
    let unknown = h.fetch("never", Some(&[("t", &[0])]));
    assert_eq!(
        unknown[&tp("t", 0)].0,
        -1,
        "unknown groups answer -1, not an error"
    );
    assert_eq!(h.state("solo"), "Empty");
}

#[test]
fn simple_commit_is_refused_while_the_group_has_members() {
    let mut h = Harness::new();
    let (ids, _, generation) = stable_group(&mut h, "g", 1);
    let errs = h.commit("g", "", -1, &[("t", 0, 1, None)]);
    assert_eq!(errs[&tp("t", 0)], ResponseError::UnknownMemberId.code());
    // v9 names the missing group (before v9: ILLEGAL_GENERATION, see kafka_parity.rs).
    let errs = h.commit("absent", "", 3, &[("t", 0, 1, None)]);
    assert_eq!(errs[&tp("t", 0)], ResponseError::GroupIdNotFound.code());
    let errs = h.commit("g", &ids[0], generation + 1, &[("t", 0, 1, None)]);
    assert_eq!(errs[&tp("t", 0)], ResponseError::IllegalGeneration.code());
    let errs = h.commit("g", "stranger", generation, &[("t", 0, 1, None)]);
    assert_eq!(errs[&tp("t", 0)], ResponseError::UnknownMemberId.code());
    let errs = h.commit("g", &ids[0], generation, &[("t", 0, 9, Some("m"))]);
    assert_eq!(errs[&tp("t", 0)], 0);
    assert_eq!(h.fetch("g", None)[&tp("t", 0)], (9, "m".to_owned()));
}

#[test]
fn member_commit_during_completing_rebalance_is_refused() {
    let mut h = Harness::new();
    let (id, t) = h.join_new("g");
    h.advance_until(t, 10_000);
    let errs = h.commit("g", &id, 1, &[("t", 0, 1, None)]);
    assert_eq!(errs[&tp("t", 0)], ResponseError::RebalanceInProgress.code());
}

#[test]
fn oversized_metadata_is_refused_per_partition() {
    let cfg = GroupConfig {
        offset_metadata_max_bytes: 4,
        ..Default::default()
    };
    let mut h = Harness::with_config(cfg);
    let errs = h.commit(
        "g",
        "",
        -1,
        &[("t", 0, 1, Some("12345")), ("t", 1, 2, Some("1234"))],
    );
    assert_eq!(
        errs[&tp("t", 0)],
        ResponseError::OffsetMetadataTooLarge.code()
    );
    assert_eq!(errs[&tp("t", 1)], 0);
    let fetched = h.fetch("g", None);
    assert!(!fetched.contains_key(&tp("t", 0)));
    // An earlier commit of the partition does not let an oversized one through.
    let errs = h.commit("g", "", -1, &[("t", 1, 3, Some("123456"))]);
    assert_eq!(
        errs[&tp("t", 1)],
        ResponseError::OffsetMetadataTooLarge.code()
    );
    assert_eq!(h.fetch("g", None)[&tp("t", 1)], (2, "1234".to_owned()));
}

#[test]
fn replay_of_the_appended_records_restores_offsets_and_membership() {
    let mut h = Harness::new();
    let (ids, _, generation) = stable_group(&mut h, "g", 3);
    h.commit(
        "g",
        &ids[1],
        generation,
        &[("t", 0, 100, Some("first")), ("t", 1, 200, None)],
    );
    h.commit("g", &ids[1], generation, &[("t", 0, 101, Some("second"))]);
    h.commit("solo", "", -1, &[("u", 3, 33, Some("x"))]);
    let before_fetch = (h.fetch("g", None), h.fetch("solo", None));
    let before = h.describe("g");

    let mut restarted = Harness::new();
    restarted.now = h.now;
    let mut co = GroupCoordinator::new(GroupConfig::default());
    for r in &h.log {
        co.replay(&r.key, r.value.as_deref()).unwrap();
    }
    co.finish_loading(h.now);
    restarted.co = co;
    assert_eq!(restarted.co.group_count(), 2);
    assert_eq!(
        (restarted.fetch("g", None), restarted.fetch("solo", None)),
        before_fetch
    );
    let after = restarted.describe("g");
    assert_eq!(after.group_state, before.group_state);
    assert_eq!(after.protocol_data, before.protocol_data);
    assert_eq!(after.members, before.members);
    // Loaded members keep their generation and must heartbeat within a session.
    assert_eq!(restarted.heartbeat("g", &ids[0], None, generation), 0);
    restarted.advance(i64::from(SESSION_MS));
    assert_eq!(restarted.state("g"), "Empty", "silent members expired");
}

#[test]
fn replay_of_tombstones_forgets_deleted_state() {
    let mut h = Harness::new();
    h.commit("a", "", -1, &[("t", 0, 1, None)]);
    h.commit("b", "", -1, &[("t", 0, 1, None)]);
    let req = DeleteGroupsRequest::default().with_groups_names(vec![GroupId(sb("a"))]);
    h.send(2, GroupRequest::DeleteGroups(req));
    let mut co = GroupCoordinator::new(GroupConfig::default());
    for r in &h.log {
        co.replay(&r.key, r.value.as_deref()).unwrap();
    }
    co.finish_loading(h.now);
    assert_eq!(co.group_count(), 1);
    assert!(
        co.replay(&[0, 9], None).is_err(),
        "unknown key versions are reported"
    );
}

#[test]
fn offsets_of_an_empty_group_expire_after_retention() {
    let cfg = GroupConfig {
        offsets_retention_ms: 60_000,
        offsets_retention_check_interval_ms: 10_000,
        ..Default::default()
    };
    let mut h = Harness::with_config(cfg);
    let (ids, _, generation) = stable_group(&mut h, "g", 1);
    h.commit("g", &ids[0], generation, &[("t", 0, 5, None)]);
    // Members keep the offsets alive however old the commit is.
    for _ in 0..20 {
        h.advance(5_000);
        h.heartbeat("g", &ids[0], None, generation);
    }
    assert_eq!(h.fetch("g", None).len(), 1);
    h.leave("g", &[(&ids[0], None)]);
    assert_eq!(h.state("g"), "Empty");
    h.advance(50_000);
    assert_eq!(
        h.fetch("g", None).len(),
        1,
        "not yet: retention counts from becoming Empty"
    );
    let log_len = h.log.len();
    h.advance(20_000);
    assert!(h.fetch("g", None).is_empty());
    assert_eq!(
        h.co.group_count(),
        0,
        "the empty group without offsets is gone"
    );
    let tombstones: Vec<_> = h.log[log_len..]
        .iter()
        .filter(|r| r.value.is_none())
        .collect();
    assert_eq!(tombstones.len(), 2, "offset and group metadata tombstones");
}

#[test]
fn delete_groups_only_removes_empty_groups() {
    let mut h = Harness::new();
    stable_group(&mut h, "busy", 1);
    h.commit("idle", "", -1, &[("t", 0, 1, None)]);
    let names = ["busy", "idle", "ghost"]
        .iter()
        .map(|g| GroupId(sb(g)))
        .collect();
    let t = h.send(
        2,
        GroupRequest::DeleteGroups(DeleteGroupsRequest::default().with_groups_names(names)),
    );
    let Some(GroupResponse::DeleteGroups(r)) = h.answered.get(&t) else {
        panic!()
    };
    let codes: Vec<i16> = r.results.iter().map(|r| r.error_code).collect();
    let expected = [
        ResponseError::NonEmptyGroup.code(),
        0,
        ResponseError::GroupIdNotFound.code(),
    ];
    assert_eq!(codes, expected);
    assert_eq!(
        h.log.last().unwrap().value,
        None,
        "offset tombstone written"
    );
    assert!(h.fetch("idle", None).is_empty());
    assert_eq!(h.state("idle"), "Dead");
}

#[test]
fn offset_delete_refuses_subscribed_topics() {
    let mut h = Harness::new();
    let (ids, _, generation) = stable_group(&mut h, "g", 1);
    h.commit(
        "g",
        &ids[0],
        generation,
        &[("t", 0, 1, None), ("old", 0, 2, None)],
    );
    let topic = |name: &str| {
        offset_delete_request::OffsetDeleteRequestTopic::default()
            .with_name(TopicName(sb(name)))
            .with_partitions(vec![
                offset_delete_request::OffsetDeleteRequestPartition::default(),
            ])
    };
    let req = OffsetDeleteRequest::default()
        .with_group_id(GroupId(sb("g")))
        .with_topics(vec![topic("t"), topic("old"), topic("missing")]);
    let t = h.send(0, GroupRequest::OffsetDelete(req));
    let Some(GroupResponse::OffsetDelete(r)) = h.answered.get(&t) else {
        panic!()
    };
    let codes: Vec<i16> = r
        .topics
        .iter()
        .map(|t| t.partitions[0].error_code)
        .collect();
    let expected = [
        ResponseError::GroupSubscribedToTopic.code(),
        0,
        ResponseError::UnknownTopicOrPartition.code(),
    ];
    assert_eq!(codes, expected);
    let left = h.fetch("g", None);
    assert!(left.contains_key(&tp("t", 0)) && !left.contains_key(&tp("old", 0)));
    let req = OffsetDeleteRequest::default().with_group_id(GroupId(sb("ghost")));
    let t = h.send(0, GroupRequest::OffsetDelete(req));
    let Some(GroupResponse::OffsetDelete(r)) = h.answered.get(&t) else {
        panic!()
    };
    assert_eq!(r.error_code, ResponseError::GroupIdNotFound.code());
}

#[test]
fn list_groups_filters_by_state_and_type() {
    let mut h = Harness::new();
    stable_group(&mut h, "busy", 1);
    h.commit("idle", "", -1, &[("t", 0, 1, None)]);
    let list = |h: &mut Harness, version: i16, states: &[&str], types: &[&str]| -> Vec<String> {
        let req = ListGroupsRequest::default()
            .with_states_filter(states.iter().map(|s| sb(s)).collect())
            .with_types_filter(types.iter().map(|s| sb(s)).collect());
        let t = h.send(version, GroupRequest::ListGroups(req));
        let Some(GroupResponse::ListGroups(r)) = h.answered.get(&t) else {
            panic!()
        };
        r.groups.iter().map(|g| g.group_id.0.to_string()).collect()
    };
    assert_eq!(list(&mut h, 3, &[], &[]), vec!["busy", "idle"]);
    assert_eq!(list(&mut h, 4, &["Stable"], &[]), vec!["busy"]);
    assert_eq!(list(&mut h, 4, &["empty"], &[]), vec!["idle"]);
    assert_eq!(list(&mut h, 5, &[], &["classic"]).len(), 2);
    assert!(list(&mut h, 5, &[], &["consumer"]).is_empty());
}
