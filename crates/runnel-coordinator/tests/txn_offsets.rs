//! TxnOffsetCommit (KIP-98 / KIP-447): pending transactional offsets, their completion by
//! transaction markers, OffsetFetch require_stable, replay, and their effect on DeleteGroups,
//! OffsetDelete and retention.

mod common;

use common::*;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::*;
use runnel_coordinator::group::{GroupConfig, GroupRequest, GroupResponse};

const PID: i64 = 1000;
const OTHER_PID: i64 = 2000;

fn tp(t: &str, p: i32) -> (String, i32) {
    (t.to_owned(), p)
}

fn unstable() -> i16 {
    ResponseError::UnstableOffsetCommit.code()
}

/// Offsets OffsetFetch v8 shows for `group` (all partitions).
fn visible(h: &mut Harness, group: &str) -> Vec<((String, i32), i64)> {
    h.fetch(group, None)
        .into_iter()
        .map(|(tp, (offset, _))| (tp, offset))
        .collect()
}

#[test]
fn txn_offsets_are_pending_until_the_commit_marker() {
    let mut h = Harness::new();
    let errs = h.txn_commit("g", PID, &[("t", 0, 10, Some("m0")), ("t", 1, 11, None)]);
    assert!(errs.values().all(|e| *e == 0), "{errs:?}");
    // One transactional batch of the producer in the group's partition.
    let batch = h.entries.last().cloned().expect("appended");
    let LogEntry::Batch {
        partition,
        producer,
        records,
    } = batch
    else {
        panic!("expected a batch")
    };
    assert_eq!(partition, h.partition_of("g"));
    assert_eq!(producer, Some((PID, 0)));
    assert_eq!(records.len(), 2);
    assert!(h.co.has_pending_transactional_offsets("g"));
    assert_eq!(visible(&mut h, "g"), vec![]);
    assert_eq!(h.fetch("g", Some(&[("t", &[0])]))[&tp("t", 0)].0, -1);
    // A marker of another producer or in another partition changes nothing.
    h.end_txn("g", OTHER_PID, true);
    let other = (h.partition_of("g") + 1) % h.co.config().offsets_partitions;
    let out = h.co.complete_transaction(other, PID, true, h.now);
    assert!(out.appends.is_empty() && out.responses.is_empty());
    assert!(h.co.has_pending_transactional_offsets("g"));

    h.end_txn("g", PID, true);
    assert!(!h.co.has_pending_transactional_offsets("g"));
    let all = h.fetch("g", None);
    assert_eq!(all[&tp("t", 0)], (10, "m0".to_owned()));
    assert_eq!(all[&tp("t", 1)], (11, String::new()));
    assert_eq!(h.state("g"), "Empty");
}

#[test]
fn committed_offsets_leave_out_pending_ones_until_the_marker() {
    let mut h = Harness::new();
    h.commit("g", "", -1, &[("t", 0, 5, None)]);
    h.txn_commit("g", PID, &[("t", 0, 10, None), ("t", 1, 11, None)]);
    let row = |p: i32, o: i64| ("g".to_owned(), "t".to_owned(), p, o);
    assert_eq!(h.co.committed_offsets(), vec![row(0, 5)]);
    h.end_txn("g", PID, true);
    assert_eq!(h.co.committed_offsets(), vec![row(0, 10), row(1, 11)]);
}

#[test]
fn abort_marker_discards_pending_offsets() {
    let mut h = Harness::new();
    h.commit("g", "", -1, &[("t", 0, 5, None)]);
    h.txn_commit("g", PID, &[("t", 0, 10, None), ("t", 1, 11, None)]);
    h.end_txn("g", PID, false);
    assert!(!h.co.has_pending_transactional_offsets("g"));
    assert_eq!(visible(&mut h, "g"), vec![(tp("t", 0), 5)]);

    // A group that only existed through aborted offsets is gone, as replay would find it.
    h.txn_commit("only-txn", PID, &[("t", 0, 1, None)]);
    assert_eq!(h.state("only-txn"), "Empty");
    h.end_txn("only-txn", PID, false);
    assert_eq!(h.state("only-txn"), "Dead");
    assert_eq!(h.replayed().co.group_count(), h.co.group_count());
}

#[test]
fn require_stable_fetch_reports_unstable_partitions() {
    let mut h = Harness::new();
    h.commit("g", "", -1, &[("t", 0, 5, None), ("t", 1, 6, None)]);
    h.txn_commit("g", PID, &[("t", 0, 10, None), ("t", 2, 12, None)]);
    for version in [7, 8, 9] {
        let f = h.fetch_stable(version, "g", Some(&[("t", &[0, 1, 2, 3])]), true);
        assert_eq!(f[&tp("t", 0)], (-1, unstable()), "v{version}");
        assert_eq!(f[&tp("t", 1)], (6, 0), "v{version}");
        assert_eq!(f[&tp("t", 2)], (-1, unstable()), "v{version}");
        assert_eq!(f[&tp("t", 3)], (-1, 0), "v{version}");
        // All partitions: only committed ones are listed, pending ones flagged.
        let all = h.fetch_stable(version, "g", None, true);
        assert_eq!(all.len(), 2, "v{version}");
        assert_eq!(all[&tp("t", 0)], (-1, unstable()), "v{version}");
        assert_eq!(all[&tp("t", 1)], (6, 0), "v{version}");
        // Without require_stable the last committed offset shows.
        let f = h.fetch_stable(version, "g", Some(&[("t", &[0, 2])]), false);
        assert_eq!(f[&tp("t", 0)], (5, 0), "v{version}");
        assert_eq!(f[&tp("t", 2)], (-1, 0), "v{version}");
    }
    h.end_txn("g", PID, true);
    let f = h.fetch_stable(8, "g", Some(&[("t", &[0, 2])]), true);
    assert_eq!(f[&tp("t", 0)], (10, 0));
    assert_eq!(f[&tp("t", 2)], (12, 0));
}

#[test]
fn a_later_record_wins_over_the_marker_order() {
    let mut h = Harness::new();
    // txn record, then a plain commit, then COMMIT: the plain commit is the later record.
    h.txn_commit("g", PID, &[("t", 0, 10, None)]);
    h.commit("g", "", -1, &[("t", 0, 20, None)]);
    h.end_txn("g", PID, true);
    assert_eq!(visible(&mut h, "g"), vec![(tp("t", 0), 20)]);
    // plain commit, then txn record, then COMMIT: the transactional offset wins.
    h.commit("g", "", -1, &[("t", 1, 30, None)]);
    h.txn_commit("g", PID, &[("t", 1, 40, None)]);
    h.end_txn("g", PID, true);
    // Two producers: each marker materializes its own offsets; the later record wins.
    h.txn_commit("g", PID, &[("t", 2, 50, None)]);
    h.txn_commit("g", OTHER_PID, &[("t", 2, 60, None), ("t", 3, 61, None)]);
    h.end_txn("g", OTHER_PID, true);
    h.end_txn("g", PID, true);
    let expected = vec![
        (tp("t", 0), 20),
        (tp("t", 1), 40),
        (tp("t", 2), 60),
        (tp("t", 3), 61),
    ];
    assert_eq!(visible(&mut h, "g"), expected);
    assert_eq!(visible(&mut h.replayed(), "g"), expected);
}

#[test]
fn replay_restores_pending_and_committed_state() {
    let mut h = Harness::new();
    h.commit("g", "", -1, &[("t", 0, 1, None)]);
    h.txn_commit("g", PID, &[("t", 0, 10, None)]);
    h.end_txn("g", PID, true);
    h.txn_commit("g", PID, &[("t", 1, 11, None)]);
    h.end_txn("g", PID, false);
    h.txn_commit("g", OTHER_PID, &[("t", 2, 12, None)]);
    h.txn_commit("h", PID, &[("t", 0, 13, None)]);

    let mut r = h.replayed();
    for group in ["g", "h"] {
        assert_eq!(visible(&mut r, group), visible(&mut h, group), "{group}");
        assert_eq!(
            r.co.has_pending_transactional_offsets(group),
            h.co.has_pending_transactional_offsets(group)
        );
    }
    assert!(r.co.has_pending_transactional_offsets("g"));
    assert!(r.co.has_pending_transactional_offsets("h"));
    let f = r.fetch_stable(8, "g", Some(&[("t", &[0, 2])]), true);
    assert_eq!(f[&tp("t", 0)], (10, 0));
    assert_eq!(f[&tp("t", 2)], (-1, unstable()));
    assert_eq!(r.co.group_count(), h.co.group_count());

    // The markers written after the restart complete the replayed pending offsets.
    r.end_txn("g", OTHER_PID, true);
    r.end_txn("h", PID, false);
    assert_eq!(
        visible(&mut r, "g"),
        vec![(tp("t", 0), 10), (tp("t", 2), 12)]
    );
    assert!(!r.co.has_pending_transactional_offsets("h"));
    assert_eq!(r.state("h"), "Dead");
    // And replaying that longer log gives the same again.
    let mut again = r.replayed();
    assert_eq!(visible(&mut again, "g"), visible(&mut r, "g"));
    assert_eq!(again.co.group_count(), r.co.group_count());
}

#[test]
fn member_fields_are_validated_from_v3() {
    let mut h = Harness::new();
    let (ids, _, generation) = stable_group(&mut h, "g", 2);
    let code = |e: ResponseError| e.code();
    let one = [("t", 0, 1, None)];
    let e = h.txn_commit_v(3, "g", PID, (generation, "stranger", None), &one);
    assert_eq!(e[&tp("t", 0)], code(ResponseError::UnknownMemberId));
    let e = h.txn_commit_v(3, "g", PID, (generation + 1, &ids[0], None), &one);
    assert_eq!(e[&tp("t", 0)], code(ResponseError::IllegalGeneration));
    let e = h.txn_commit_v(4, "g", PID, (generation, &ids[0], None), &one);
    assert_eq!(e[&tp("t", 0)], 0);
    // Without member fields (v0-2, or generation -1 and no member) any producer may commit,
    // even while the group has members (transactional commits skip that check).
    let e = h.txn_commit_v(2, "g", PID, (generation + 5, "stranger", None), &one);
    assert_eq!(e[&tp("t", 0)], 0);
    let e = h.txn_commit_v(4, "g", PID, (-1, "", None), &one);
    assert_eq!(e[&tp("t", 0)], 0);
    // Unknown group with a generation: no such member (and no group is left behind).
    let e = h.txn_commit_v(3, "nobody", PID, (1, "m", None), &one);
    assert_eq!(e[&tp("t", 0)], code(ResponseError::UnknownMemberId));
    assert_eq!(h.state("nobody"), "Dead");
    // Refused commits leave nothing pending beyond the accepted ones.
    h.end_txn("g", PID, false);
    assert!(!h.co.has_pending_transactional_offsets("g"));
}

#[test]
fn static_members_are_fenced_by_instance_id() {
    let mut h = Harness::new();
    let t = h.join_static("s", "", "inst");
    h.advance_until(t, 10_000);
    let r = h.join_resp(t);
    let (member, generation) = (r.member_id.to_string(), r.generation_id);
    let s = h.sync_v(
        5,
        "s",
        &member,
        Some("inst"),
        generation,
        &[(&member, b"a")],
    );
    assert_eq!(h.sync_resp(s).error_code, 0);
    let one = [("t", 0, 1, None)];
    let e = h.txn_commit_v(3, "s", PID, (generation, "old-id", Some("inst")), &one);
    assert_eq!(e[&tp("t", 0)], ResponseError::FencedInstanceId.code());
    let e = h.txn_commit_v(3, "s", PID, (generation, &member, Some("other")), &one);
    assert_eq!(e[&tp("t", 0)], ResponseError::UnknownMemberId.code());
    let e = h.txn_commit_v(3, "s", PID, (generation, &member, Some("inst")), &one);
    assert_eq!(e[&tp("t", 0)], 0);
}

#[test]
fn partition_errors_unknown_topics_metadata_and_group_id() {
    let cfg = GroupConfig {
        offset_metadata_max_bytes: 4,
        ..GroupConfig::default()
    };
    let mut h = Harness::with_config(cfg);
    let e = h.txn_commit(
        "g",
        PID,
        &[
            ("t", 0, 1, Some("ok")),
            ("t", 1, 1, Some("far too long")),
            ("missing", 0, 1, None),
        ],
    );
    assert_eq!(e[&tp("t", 0)], 0);
    assert_eq!(e[&tp("t", 1)], ResponseError::OffsetMetadataTooLarge.code());
    assert_eq!(
        e[&tp("missing", 0)],
        ResponseError::UnknownTopicOrPartition.code()
    );
    h.end_txn("g", PID, true);
    assert_eq!(visible(&mut h, "g"), vec![(tp("t", 0), 1)]);
    // Only oversized metadata: nothing is written.
    let before = h.entries.len();
    let e = h.txn_commit("g", PID, &[("t", 1, 1, Some("far too long"))]);
    assert_eq!(e[&tp("t", 1)], ResponseError::OffsetMetadataTooLarge.code());
    assert_eq!(h.entries.len(), before);
    assert!(!h.co.has_pending_transactional_offsets("g"));
    let e = h.txn_commit("", PID, &[("t", 0, 1, None), ("missing", 0, 1, None)]);
    assert_eq!(e[&tp("t", 0)], ResponseError::InvalidGroupId.code());
    assert_eq!(
        e[&tp("missing", 0)],
        ResponseError::UnknownTopicOrPartition.code()
    );
}

#[test]
fn every_response_encodes_at_every_version() {
    // The harness encodes each response at its request's version and fails on any error.
    for version in 0..=4i16 {
        let mut h = Harness::new();
        let (ids, _, generation) = stable_group(&mut h, "g", 1);
        let offsets = [("t", 0, 1, Some("m")), ("missing", 0, 1, None)];
        let ok = h.txn_commit_resp(version, "g", PID, (generation, &ids[0], None), &offsets);
        assert_eq!(ok.topics.len(), 2, "v{version}");
        h.txn_commit_resp(version, "g", PID, (generation + 1, &ids[0], None), &offsets);
        h.txn_commit_resp(version, "", PID, (-1, "", None), &offsets);
        h.txn_commit_resp(
            version,
            "g",
            PID,
            (-1, "", None),
            &[("missing", 1, 1, None)],
        );
        h.fail_appends = true;
        let failed = h.txn_commit_resp(version, "x", PID, (-1, "", None), &offsets);
        assert_eq!(
            failed.topics[1].partitions[0].error_code,
            ResponseError::CoordinatorNotAvailable.code(),
            "v{version}: the failed append's partition"
        );
    }
}

#[test]
fn delete_groups_drops_pending_offsets_for_good() {
    let mut h = Harness::new();
    h.commit("g", "", -1, &[("t", 0, 5, None)]);
    h.txn_commit("g", PID, &[("t", 0, 10, None), ("t", 1, 11, None)]);
    let req = DeleteGroupsRequest::default().with_groups_names(vec![GroupId(sb("g"))]);
    let t = h.send(2, GroupRequest::DeleteGroups(req));
    let Some(GroupResponse::DeleteGroups(r)) = h.answered.get(&t) else {
        panic!("no delete response")
    };
    assert_eq!(r.results[0].error_code, 0);
    // Tombstones for the committed and the pending-only partition.
    let tombstones = h.log.iter().rev().take_while(|r| r.value.is_none()).count();
    assert_eq!(tombstones, 2);
    assert!(!h.co.has_pending_transactional_offsets("g"));
    // The transaction's COMMIT marker after the delete brings nothing back, live or replayed.
    h.end_txn("g", PID, true);
    assert_eq!(h.state("g"), "Dead");
    let mut r = h.replayed();
    assert_eq!(r.state("g"), "Dead");
    assert_eq!(r.co.group_count(), 0);
}

#[test]
fn offset_delete_removes_pending_offsets_too() {
    let mut h = Harness::new();
    h.commit("g", "", -1, &[("t", 0, 5, None)]);
    h.txn_commit("g", PID, &[("u", 0, 10, None)]);
    let req = OffsetDeleteRequest::default()
        .with_group_id(GroupId(sb("g")))
        .with_topics(vec![
            offset_delete_request::OffsetDeleteRequestTopic::default()
                .with_name(TopicName(sb("u")))
                .with_partitions(vec![
                    offset_delete_request::OffsetDeleteRequestPartition::default()
                        .with_partition_index(0),
                ]),
        ]);
    let t = h.send(0, GroupRequest::OffsetDelete(req));
    let Some(GroupResponse::OffsetDelete(r)) = h.answered.get(&t) else {
        panic!("no offset delete response")
    };
    assert_eq!(r.error_code, 0);
    assert_eq!(r.topics[0].partitions[0].error_code, 0);
    assert_eq!(h.log.last().map(|r| r.value.is_none()), Some(true));
    assert!(!h.co.has_pending_transactional_offsets("g"));
    h.end_txn("g", PID, true);
    assert_eq!(visible(&mut h, "g"), vec![(tp("t", 0), 5)]);
    assert_eq!(visible(&mut h.replayed(), "g"), vec![(tp("t", 0), 5)]);
}

#[test]
fn retention_never_expires_pending_offsets() {
    let cfg = GroupConfig {
        offsets_retention_ms: 1_000,
        offsets_retention_check_interval_ms: 500,
        ..GroupConfig::default()
    };
    let mut h = Harness::with_config(cfg);
    h.commit("g", "", -1, &[("t", 0, 5, None), ("t", 1, 6, None)]);
    h.txn_commit("g", PID, &[("t", 0, 10, None)]);
    h.txn_commit("only-txn", PID, &[("t", 0, 1, None)]);
    h.advance(10_000);
    // t-1 expired; t-0 waits for its transaction; the pending-only group stays.
    assert_eq!(visible(&mut h, "g"), vec![(tp("t", 0), 5)]);
    assert_eq!(h.state("only-txn"), "Empty");
    assert!(h.co.has_pending_transactional_offsets("only-txn"));
    let mut r = h.replayed();
    assert_eq!(visible(&mut r, "g"), vec![(tp("t", 0), 5)]);
    assert!(r.co.has_pending_transactional_offsets("g"));
    h.end_txn("g", PID, true);
    h.end_txn("only-txn", PID, true);
    assert_eq!(visible(&mut h, "g"), vec![(tp("t", 0), 10)]);
    // Once materialized they age like any commit (their commit time is the TxnOffsetCommit's).
    h.advance(10_000);
    assert_eq!(h.state("g"), "Dead");
    assert_eq!(h.state("only-txn"), "Dead");
    assert_eq!(h.replayed().co.group_count(), 0);
}
