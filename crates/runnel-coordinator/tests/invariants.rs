//! Random sequences of joins, syncs, heartbeats, leaves, commits and time never panic and keep
//! the group's invariants: one leader per generation, generations never decrease, every member
//! of a Stable group has an assignment, and no request is answered twice. Transactional offset
//! commits and their markers mix in; replaying the log always gives the live offsets back.

mod common;

use std::collections::BTreeMap;

use common::*;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Join(usize),
    JoinStatic(usize),
    Sync(usize),
    Heartbeat(usize),
    Leave(usize),
    Commit(usize),
    /// TxnOffsetCommit v4 by client k's producer, naming client k's membership.
    TxnCommit(usize),
    /// The COMMIT (true) or ABORT marker of client k's producer.
    EndTxn(usize, bool),
    Advance(i64),
}

fn op() -> impl Strategy<Value = Op> {
    let k = 0..4usize;
    prop_oneof![
        k.clone().prop_map(Op::Join),
        k.clone().prop_map(Op::JoinStatic),
        k.clone().prop_map(Op::Sync),
        k.clone().prop_map(Op::Heartbeat),
        k.clone().prop_map(Op::Leave),
        k.clone().prop_map(Op::Commit),
        k.clone().prop_map(Op::TxnCommit),
        (k, any::<bool>()).prop_map(|(k, commit)| Op::EndTxn(k, commit)),
        (0i64..12_000).prop_map(Op::Advance),
    ]
}

fn pid(k: usize) -> i64 {
    100 + k as i64
}

/// What the model remembers about one client.
#[derive(Default, Clone)]
struct Client {
    member_id: String,
    instance: Option<String>,
    generation: i32,
    join_token: Option<u64>,
    members_to_assign: Vec<String>,
}

struct Model {
    h: Harness,
    clients: Vec<Client>,
    leaders: BTreeMap<i32, String>,
    max_generation: i32,
}

impl Model {
    fn collect_join(&mut self, k: usize) {
        let Some(t) = self.clients[k].join_token else {
            return;
        };
        if !self.h.is_answered(t) {
            return;
        }
        self.clients[k].join_token = None;
        let r = self.h.join_resp(t);
        if r.error_code != 0 {
            if r.error_code == kafka_protocol::error::ResponseError::MemberIdRequired.code() {
                self.clients[k].member_id = r.member_id.to_string();
            } else if r.error_code == kafka_protocol::error::ResponseError::UnknownMemberId.code() {
                self.clients[k].member_id.clear();
            }
            return;
        }
        assert!(
            r.generation_id >= self.max_generation,
            "generation went back"
        );
        self.max_generation = r.generation_id;
        let leader = self
            .leaders
            .entry(r.generation_id)
            .or_insert_with(|| r.leader.to_string());
        // A static leader's replacement changes the id within a generation (KIP-345).
        if !r.skip_assignment && self.clients[k].instance.is_none() {
            assert_eq!(
                *leader,
                r.leader.to_string(),
                "two leaders in generation {}",
                r.generation_id
            );
        }
        let c = &mut self.clients[k];
        c.member_id = r.member_id.to_string();
        c.generation = r.generation_id;
        c.members_to_assign = r.members.iter().map(|m| m.member_id.to_string()).collect();
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Join(k) | Op::JoinStatic(k) => {
                if self.clients[k].join_token.is_some() {
                    return;
                }
                if matches!(op, Op::JoinStatic(_)) && self.clients[k].member_id.is_empty() {
                    self.clients[k].instance = Some(format!("inst-{k}"));
                }
                let c = self.clients[k].clone();
                let protos = [("range", subscription(&["t"]))];
                let t = self
                    .h
                    .join_v(9, "g", &c.member_id, c.instance.as_deref(), &protos);
                self.clients[k].join_token = Some(t);
            }
            Op::Sync(k) => {
                let c = self.clients[k].clone();
                let assignment: Vec<(String, Vec<u8>)> = c
                    .members_to_assign
                    .iter()
                    .map(|m| (m.clone(), m.as_bytes().to_vec()))
                    .collect();
                let refs: Vec<(&str, &[u8])> = assignment
                    .iter()
                    .map(|(m, a)| (m.as_str(), a.as_slice()))
                    .collect();
                self.h.sync_v(
                    5,
                    "g",
                    &c.member_id,
                    c.instance.as_deref(),
                    c.generation,
                    &refs,
                );
            }
            Op::Heartbeat(k) => {
                let c = self.clients[k].clone();
                self.h
                    .heartbeat("g", &c.member_id, c.instance.as_deref(), c.generation);
            }
            Op::Leave(k) => {
                let c = self.clients[k].clone();
                self.h.leave("g", &[(&c.member_id, c.instance.as_deref())]);
            }
            Op::Commit(k) => {
                let c = self.clients[k].clone();
                self.h
                    .commit("g", &c.member_id, c.generation, &[("t", 0, 1, None)]);
            }
            Op::TxnCommit(k) => {
                let c = self.clients[k].clone();
                let member = (c.generation, c.member_id.as_str(), c.instance.as_deref());
                let offset = self.h.now;
                let offsets = [("t", 0, offset, None), ("t", k as i32 + 1, offset, None)];
                self.h.txn_commit_v(4, "g", pid(k), member, &offsets);
            }
            Op::EndTxn(k, commit) => self.h.end_txn("g", pid(k), commit),
            Op::Advance(ms) => self.h.advance(ms),
        }
        for k in 0..self.clients.len() {
            self.collect_join(k);
        }
        self.check_stable_assignments();
    }

    /// Replaying everything written so far gives the same visible offsets and pending state.
    fn check_replay(&mut self) {
        let mut replayed = self.h.replayed();
        assert_eq!(replayed.fetch("g", None), self.h.fetch("g", None));
        assert_eq!(
            replayed.co.has_pending_transactional_offsets("g"),
            self.h.co.has_pending_transactional_offsets("g")
        );
        let stable =
            |h: &mut Harness| h.fetch_stable(8, "g", Some(&[("t", &[0, 1, 2, 3, 4])]), true);
        assert_eq!(stable(&mut replayed), stable(&mut self.h));
    }

    fn check_stable_assignments(&mut self) {
        let d = self.h.describe("g");
        if &*d.group_state == "Stable" {
            for m in &d.members {
                assert!(
                    !m.member_assignment.is_empty(),
                    "stable member {} has no assignment",
                    m.member_id
                );
            }
        }
        if let Some(deadline) = self.h.co.next_deadline() {
            assert!(deadline >= self.h.now - 1, "a due timer was left unfired");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn random_operations_keep_invariants(ops in proptest::collection::vec(op(), 1..80)) {
        let mut model = Model {
            h: Harness::new(),
            clients: vec![Client::default(); 4],
            leaders: BTreeMap::new(),
            max_generation: 0,
        };
        for op in ops {
            model.apply(op);
        }
        model.check_replay();
        model.h.advance(3_600_000);
        model.check_replay();
    }
}
