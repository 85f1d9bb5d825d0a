//! Joins, syncs, leaves, session expiry, static members and slow members, driven with an
//! injected clock.

mod common;

use common::*;
use kafka_protocol::error::ResponseError;

fn code(e: ResponseError) -> i16 {
    e.code()
}

#[test]
fn two_step_join_hands_out_member_id_then_admits_it() {
    let mut h = Harness::new();
    let first = h.join("g", "");
    let r = h.join_resp(first);
    assert_eq!(r.error_code, code(ResponseError::MemberIdRequired));
    assert!(r.member_id.starts_with("client-"), "{}", r.member_id);
    let id = r.member_id.to_string();
    let second = h.join("g", &id);
    assert!(
        !h.is_answered(second),
        "waits for the initial rebalance delay"
    );
    h.advance(2_999);
    assert!(!h.is_answered(second));
    h.advance(1);
    let r = h.join_resp(second);
    assert_eq!((r.error_code, r.generation_id), (0, 1));
    assert_eq!(r.leader.to_string(), id);
    assert_eq!(r.protocol_name.as_deref(), Some("range"));
    assert_eq!(r.members.len(), 1);
}

#[test]
fn pending_member_expires_after_session_timeout() {
    let mut h = Harness::new();
    let first = h.join("g", "");
    let id = h.join_resp(first).member_id.to_string();
    h.advance(i64::from(SESSION_MS));
    let again = h.join("g", &id);
    assert_eq!(h.error_of(again), code(ResponseError::UnknownMemberId));
}

#[test]
fn old_clients_join_in_one_step() {
    let mut h = Harness::new();
    let t = h.join_v(3, "g", "", None, &[("range", subscription(&["t"]))]);
    h.advance(3_000);
    let r = h.join_resp(t);
    assert_eq!((r.error_code, r.generation_id), (0, 1));
    assert_eq!(r.leader, r.member_id);
}

#[test]
fn three_members_one_generation_one_leader_followers_wait_for_leader() {
    let mut h = Harness::new();
    let both = subscription(&["t"]);
    // Member a prefers roundrobin, b and c prefer range; all support both: range wins 2 to 1.
    let protos_a = [("roundrobin", both.clone()), ("range", both.clone())];
    let protos_bc = [("range", both.clone()), ("roundrobin", both.clone())];
    let mut ids = Vec::new();
    let mut tokens = Vec::new();
    for protos in [&protos_a[..], &protos_bc[..], &protos_bc[..]] {
        let first = h.join_v(9, "g", "", None, protos);
        let id = h.join_resp(first).member_id.to_string();
        tokens.push(h.join_v(9, "g", &id, None, protos));
        ids.push(id);
    }
    // Members kept arriving during the initial delay, so it was extended once.
    h.advance(3_000);
    assert!(!h.is_answered(tokens[0]));
    h.advance(3_000);
    let resps: Vec<_> = tokens.iter().map(|t| h.join_resp(*t)).collect();
    let leader = resps[0].leader.to_string();
    assert!(resps
        .iter()
        .all(|r| r.generation_id == 1 && r.leader.to_string() == leader));
    assert!(resps
        .iter()
        .all(|r| r.protocol_name.as_deref() == Some("range")));
    let with_members: Vec<_> = resps.iter().filter(|r| !r.members.is_empty()).collect();
    assert_eq!(
        with_members.len(),
        1,
        "only the leader gets the member list"
    );
    assert_eq!(with_members[0].member_id.to_string(), leader);
    assert_eq!(with_members[0].members.len(), 3);
    assert_eq!(h.state("g"), "CompletingRebalance");

    let followers: Vec<&String> = ids.iter().filter(|id| **id != leader).collect();
    let s1 = h.sync("g", followers[0], 1, &[]);
    let s2 = h.sync("g", followers[1], 1, &[]);
    assert!(
        !h.is_answered(s1) && !h.is_answered(s2),
        "followers wait for the leader"
    );
    let log_before = h.log.len();
    let assignment: Vec<(&str, &[u8])> =
        ids.iter().map(|id| (id.as_str(), id.as_bytes())).collect();
    let sl = h.sync("g", &leader, 1, &assignment);
    assert_eq!(
        h.log.len(),
        log_before + 1,
        "assignment persisted as group metadata"
    );
    for (t, id) in [(s1, followers[0]), (s2, followers[1]), (sl, &leader)] {
        let r = h.sync_resp(t);
        assert_eq!(r.error_code, 0);
        assert_eq!(&r.assignment[..], id.as_bytes());
        assert_eq!(r.protocol_name.as_deref(), Some("range"));
    }
    assert_eq!(h.state("g"), "Stable");
}

#[test]
fn sync_answers_wait_for_the_append_and_fail_with_it() {
    let mut h = Harness::new();
    let (id, t) = h.join_new("g");
    h.advance(3_000);
    assert_eq!(h.join_resp(t).generation_id, 1);
    h.fail_appends = true;
    let s = h.sync("g", &id, 1, &[(id.as_str(), b"x")]);
    assert_eq!(
        h.sync_resp(s).error_code,
        code(ResponseError::CoordinatorNotAvailable)
    );
}

#[test]
fn member_leaving_triggers_rebalance_of_the_rest() {
    let mut h = Harness::new();
    let (ids, leader, generation) = stable_group(&mut h, "g", 3);
    let leaving = ids.iter().find(|id| **id != leader).unwrap().clone();
    let r = h.leave("g", &[(&leaving, None)]);
    assert_eq!(r.error_code, 0);
    assert_eq!(r.members[0].error_code, 0);
    assert_eq!(h.state("g"), "PreparingRebalance");
    let others: Vec<&String> = ids.iter().filter(|id| **id != leaving).collect();
    assert_eq!(
        h.heartbeat("g", others[0], None, generation),
        code(ResponseError::RebalanceInProgress)
    );
    let t0 = h.join("g", others[0]);
    assert!(!h.is_answered(t0));
    let t1 = h.join("g", others[1]);
    let (r0, r1) = (h.join_resp(t0), h.join_resp(t1));
    assert_eq!((r0.generation_id, r1.generation_id), (2, 2));
    assert_eq!(h.member_ids("g").len(), 2);
    assert!(!h.member_ids("g").contains(&leaving));
}

#[test]
fn batch_leave_reports_each_member() {
    let mut h = Harness::new();
    let (ids, _, _) = stable_group(&mut h, "g", 2);
    let r = h.leave("g", &[(&ids[0], None), ("nobody", None), (&ids[1], None)]);
    let codes: Vec<i16> = r.members.iter().map(|m| m.error_code).collect();
    assert_eq!(codes, vec![0, code(ResponseError::UnknownMemberId), 0]);
    h.advance(i64::from(REBALANCE_MS));
    assert_eq!(h.state("g"), "Empty");
    let r = h.leave("absent", &[("x", None)]);
    assert_eq!(
        r.members[0].error_code,
        code(ResponseError::UnknownMemberId)
    );
}

#[test]
fn session_expiry_rebalances_without_the_silent_member() {
    let mut h = Harness::new();
    let (ids, _, generation) = stable_group(&mut h, "g", 2);
    for _ in 0..2 {
        h.advance(4_000);
        assert_eq!(h.heartbeat("g", &ids[0], None, generation), 0);
    }
    // ids[1] stayed silent for a whole session: gone, and the group rebalances.
    h.advance(2_000);
    assert_eq!(
        h.heartbeat("g", &ids[0], None, generation),
        code(ResponseError::RebalanceInProgress)
    );
    assert_eq!(h.state("g"), "PreparingRebalance");
    assert_eq!(
        h.heartbeat("g", &ids[1], None, generation),
        code(ResponseError::UnknownMemberId)
    );
    let t = h.join("g", &ids[0]);
    let r = h.join_resp(t);
    assert_eq!(
        (r.generation_id, r.leader.to_string()),
        (generation + 1, ids[0].clone())
    );
    assert_eq!(h.member_ids("g"), [ids[0].clone()].into());
}

#[test]
fn static_member_rejoin_replaces_old_id_which_is_fenced() {
    let mut h = Harness::new();
    let a = h.join_static("g", "", "inst-a");
    let b = h.join_static("g", "", "inst-b");
    h.advance_until(a, 10_000);
    let (ra, rb) = (h.join_resp(a), h.join_resp(b));
    let (id_a, id_b) = (ra.member_id.to_string(), rb.member_id.to_string());
    assert!(id_a.starts_with("inst-a-"));
    let leader = ra.leader.to_string();
    let sa = h.sync_v(
        5,
        "g",
        &id_a,
        Some("inst-a"),
        1,
        &[(&id_a, b"A"), (&id_b, b"B")],
    );
    let sb_ = h.sync_v(5, "g", &id_b, Some("inst-b"), 1, &[]);
    assert_eq!(
        (h.sync_resp(sa).error_code, h.sync_resp(sb_).error_code),
        (0, 0)
    );

    // inst-b restarts and rejoins without its member id: no rebalance, same generation.
    let t = h.join_static("g", "", "inst-b");
    let r = h.join_resp(t);
    let new_b = r.member_id.to_string();
    assert_ne!(new_b, id_b);
    assert_eq!((r.error_code, r.generation_id), (0, 1));
    assert!(!r.skip_assignment, "b is not the leader");
    assert_eq!(r.leader.to_string(), leader);
    assert_eq!(h.state("g"), "Stable");
    // The old process is fenced everywhere.
    let fenced = code(ResponseError::FencedInstanceId);
    assert_eq!(h.heartbeat("g", &id_b, Some("inst-b"), 1), fenced);
    let s = h.sync_v(5, "g", &id_b, Some("inst-b"), 1, &[]);
    assert_eq!(h.sync_resp(s).error_code, fenced);
    let c = h.commit_static("g", &id_b, "inst-b", 1);
    assert_eq!(c, fenced);
    // The new one keeps the assignment.
    let s = h.sync_v(5, "g", &new_b, Some("inst-b"), 1, &[]);
    assert_eq!(&h.sync_resp(s).assignment[..], b"B");
    assert_eq!(h.heartbeat("g", &new_b, Some("inst-b"), 1), 0);
}

#[test]
fn static_leader_rejoin_v9_is_told_to_skip_assignment() {
    let mut h = Harness::new();
    let a = h.join_static("g", "", "inst-a");
    h.advance(3_000);
    let id = h.join_resp(a).member_id.to_string();
    let s = h.sync_v(5, "g", &id, Some("inst-a"), 1, &[(&id, b"A")]);
    assert_eq!(h.sync_resp(s).error_code, 0);
    let t = h.join_static("g", "", "inst-a");
    let r = h.join_resp(t);
    assert!(r.skip_assignment);
    assert_eq!(r.leader, r.member_id);
    assert_eq!(r.members.len(), 1);
}

#[test]
fn slow_member_is_dropped_at_the_rebalance_timeout() {
    let mut h = Harness::new();
    let (ids, _, generation) = stable_group(&mut h, "g", 3);
    // ids[0] rejoins (a rebalance starts); ids[1] rejoins; ids[2] is slow but keeps heartbeating.
    let t0 = h.join("g", &ids[0]);
    let t1 = h.join("g", &ids[1]);
    for _ in 0..5 {
        h.advance(5_000);
        assert_eq!(
            h.heartbeat("g", &ids[2], None, generation),
            code(ResponseError::RebalanceInProgress)
        );
    }
    assert!(!h.is_answered(t0), "still waiting for the slow member");
    h.advance(i64::from(REBALANCE_MS) - 25_000);
    let (r0, r1) = (h.join_resp(t0), h.join_resp(t1));
    assert_eq!(
        (r0.generation_id, r1.generation_id),
        (generation + 1, generation + 1)
    );
    let leader = if r0.members.is_empty() { &r1 } else { &r0 };
    assert_eq!(leader.members.len(), 2);
    assert!(!h.member_ids("g").contains(&ids[2]));
    assert_eq!(
        h.heartbeat("g", &ids[2], None, generation),
        code(ResponseError::UnknownMemberId)
    );
    let late = h.join("g", &ids[2]);
    assert_eq!(h.error_of(late), code(ResponseError::UnknownMemberId));
}

#[test]
fn member_missing_sync_is_removed_at_the_sync_timeout() {
    let mut h = Harness::new();
    let (a, ta) = h.join_new("g");
    let (b, tb) = h.join_new("g");
    h.advance_until(ta, 10_000);
    let leader = h.join_resp(ta).leader.to_string();
    assert_eq!(h.join_resp(tb).generation_id, 1);
    let s = h.sync("g", &leader, 1, &[(&a, b"A"), (&b, b"B")]);
    assert_eq!(h.sync_resp(s).error_code, 0);
    let other = if leader == a { &b } else { &a };
    // The follower never syncs; the leader keeps heartbeating.
    for _ in 0..6 {
        h.advance(5_000);
        h.heartbeat("g", &leader, None, 1);
    }
    assert!(!h.member_ids("g").contains(other));
}

#[test]
fn initial_delay_extends_while_members_arrive_and_is_capped() {
    let cfg = runnel_coordinator::group::GroupConfig {
        initial_rebalance_delay_ms: 3_000,
        ..Default::default()
    };
    let mut h = Harness::with_config(cfg);
    let (_, t0) = h.join_new("g");
    let start = h.now;
    // A new member every 2.5 s keeps extending the delay, up to the rebalance timeout (30 s).
    let mut last = t0;
    while !h.is_answered(t0) {
        h.advance(2_500);
        if !h.is_answered(t0) {
            last = h.join_new("g").1;
        }
        assert!(
            h.now - start <= i64::from(REBALANCE_MS) + 3_000,
            "delay must be capped"
        );
    }
    assert!(h.now - start >= 5_000, "the delay was extended");
    assert!(h.is_answered(last));
    // Without newcomers, the first rebalance completes after exactly one delay.
    let (_, t) = h.join_new("h");
    h.advance(2_999);
    assert!(!h.is_answered(t));
    h.advance(1);
    assert!(h.is_answered(t));
}

#[test]
fn heartbeat_errors_in_each_state() {
    let mut h = Harness::new();
    assert_eq!(
        h.heartbeat("", "m", None, 1),
        code(ResponseError::InvalidGroupId)
    );
    assert_eq!(
        h.heartbeat("nope", "m", None, 1),
        code(ResponseError::UnknownMemberId)
    );
    let (id, t) = h.join_new("g");
    // PreparingRebalance (gen 0).
    assert_eq!(
        h.heartbeat("g", &id, None, 0),
        code(ResponseError::RebalanceInProgress)
    );
    h.advance(3_000);
    assert_eq!(h.join_resp(t).generation_id, 1);
    // CompletingRebalance.
    assert_eq!(h.heartbeat("g", &id, None, 1), 0);
    assert_eq!(
        h.heartbeat("g", &id, None, 0),
        code(ResponseError::IllegalGeneration)
    );
    assert_eq!(
        h.heartbeat("g", "stranger", None, 1),
        code(ResponseError::UnknownMemberId)
    );
    let s = h.sync("g", &id, 1, &[(&id, b"x")]);
    assert_eq!(h.sync_resp(s).error_code, 0);
    // Stable.
    assert_eq!(h.heartbeat("g", &id, None, 1), 0);
    assert_eq!(
        h.heartbeat("g", &id, None, 2),
        code(ResponseError::IllegalGeneration)
    );
    assert_eq!(
        h.heartbeat("g", &id, Some("inst"), 1),
        code(ResponseError::UnknownMemberId)
    );
    // Empty after leaving.
    h.leave("g", &[(&id, None)]);
    assert_eq!(
        h.heartbeat("g", &id, None, 1),
        code(ResponseError::UnknownMemberId)
    );
}

#[test]
fn join_validation_errors() {
    let mut h = Harness::new();
    let t = h.join("", "");
    assert_eq!(h.error_of(t), code(ResponseError::InvalidGroupId));
    let t = h.join("g", "ghost");
    assert_eq!(h.error_of(t), code(ResponseError::UnknownMemberId));
    let req = kafka_protocol::messages::JoinGroupRequest::default()
        .with_group_id(kafka_protocol::messages::GroupId(sb("g")))
        .with_session_timeout_ms(10)
        .with_protocol_type(sb("consumer"));
    let t = h.send(5, runnel_coordinator::group::GroupRequest::JoinGroup(req));
    assert_eq!(h.error_of(t), code(ResponseError::InvalidSessionTimeout));
    let (_, _) = h.join_new("g");
    // A different protocol type, and no common protocol, are both inconsistent.
    let t = h.join_v(9, "g", "", None, &[("sticky", subscription(&["t"]))]);
    assert_eq!(
        h.error_of(t),
        code(ResponseError::InconsistentGroupProtocol)
    );
}

#[test]
fn group_max_size_is_enforced() {
    let cfg = runnel_coordinator::group::GroupConfig {
        max_group_size: 2,
        ..Default::default()
    };
    let mut h = Harness::with_config(cfg);
    h.join_new("g");
    h.join_new("g");
    // While preparing, the members already waiting count against group.max.size.
    let third = h.join("g", "");
    assert_eq!(h.error_of(third), code(ResponseError::GroupMaxSizeReached));
}

#[test]
fn cooperative_rebalance_runs_two_generations() {
    // KIP-429: after a new member joins, owners revoke in generation N+1 and rejoin at once,
    // and the revoked partitions are assigned in generation N+2. The broker only has to keep
    // generations straight while members keep consuming through the first rebalance.
    let mut h = Harness::new();
    h.protocol = "cooperative-sticky".into();
    let coop = [("cooperative-sticky", subscription(&["t"]))];
    let ta = h.join_v(9, "g", "", None, &coop);
    let a = h.join_resp(ta).member_id.to_string();
    let ta = h.join_v(9, "g", &a, None, &coop);
    h.advance(3_000);
    assert_eq!(h.join_resp(ta).generation_id, 1);
    let s = h.sync("g", &a, 1, &[(&a, b"p0,p1")]);
    assert_eq!(h.sync_resp(s).error_code, 0);
    // b arrives: rebalance to generation 2; a still owns p0,p1 and may commit meanwhile.
    let tb = h.join_v(9, "g", "", None, &coop);
    let b = h.join_resp(tb).member_id.to_string();
    let tb = h.join_v(9, "g", &b, None, &coop);
    assert_eq!(
        h.commit("g", &a, 1, &[("t", 0, 5, None)])[&("t".into(), 0)],
        0
    );
    let ta = h.join_v(9, "g", &a, None, &coop);
    let (ra, rb) = (h.join_resp(ta), h.join_resp(tb));
    assert_eq!((ra.generation_id, rb.generation_id), (2, 2));
    // Leader a keeps p0, revokes p1 (assigned to nobody yet).
    let sa = h.sync("g", &a, 2, &[(&a, b"p0"), (&b, b"")]);
    let sb2 = h.sync("g", &b, 2, &[]);
    assert_eq!(&h.sync_resp(sa).assignment[..], b"p0");
    assert!(h.sync_resp(sb2).assignment.is_empty());
    // a revoked something, so it rejoins immediately: generation 3 hands p1 to b.
    let ta = h.join_v(9, "g", &a, None, &coop);
    assert!(!h.is_answered(ta), "waits for b");
    assert_eq!(
        h.heartbeat("g", &b, None, 2),
        code(ResponseError::RebalanceInProgress)
    );
    let tb = h.join_v(9, "g", &b, None, &coop);
    assert_eq!(h.join_resp(ta).generation_id, 3);
    assert_eq!(h.join_resp(tb).generation_id, 3);
    let sa = h.sync("g", &a, 3, &[(&a, b"p0"), (&b, b"p1")]);
    let sb3 = h.sync("g", &b, 3, &[]);
    assert_eq!(&h.sync_resp(sb3).assignment[..], b"p1");
    assert_eq!(h.sync_resp(sa).error_code, 0);
    assert_eq!(
        h.heartbeat("g", &a, None, 2),
        code(ResponseError::IllegalGeneration)
    );
}

#[test]
fn cancelled_join_is_never_answered() {
    let mut h = Harness::new();
    let (_, t) = h.join_new("g");
    h.co.cancel(t);
    h.advance(3_000);
    assert!(!h.is_answered(t));
    // The member, never hearing back, is expired after its session.
    h.advance(i64::from(SESSION_MS));
    assert_eq!(h.state("g"), "Empty");
}
