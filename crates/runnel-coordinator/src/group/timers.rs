//! Timer-driven transitions (Kafka's DelayedJoin, InitialDelayedJoin, DelayedSync and
//! DelayedHeartbeat), fired by `tick` in deadline order within each group.

use std::collections::BTreeMap;

use super::rebalance::{
    complete_join, maybe_complete_join, prepare_rebalance, remove_member_and_update,
};
use super::state::{Group, GroupState, JoinTimer};
use super::Ctx;

/// What a due deadline belongs to.
enum Due {
    PendingMember(String),
    Session(String),
    Join,
    Sync,
}

fn next_due(g: &Group) -> Option<(i64, Due)> {
    let pending = g
        .pending_members
        .iter()
        .map(|(id, t)| (*t, Due::PendingMember(id.clone())));
    let sessions = g.members.values().filter_map(|m| {
        m.heartbeat_deadline_ms
            .map(|t| (t, Due::Session(m.id.clone())))
    });
    let join = g.join_timer.map(|t| (t.deadline_ms(), Due::Join));
    let sync = g.sync_deadline.map(|(t, _)| (t, Due::Sync));
    pending
        .chain(sessions)
        .chain(join)
        .chain(sync)
        .min_by_key(|(t, _)| *t)
}

pub(crate) fn next_group_deadline(g: &Group) -> Option<i64> {
    next_due(g).map(|(t, _)| t)
}

pub(crate) fn fire_group_timers(groups: &mut BTreeMap<String, Group>, cx: &mut Ctx<'_>) {
    let ids: Vec<String> = groups.keys().cloned().collect();
    for id in ids {
        let Some(g) = groups.get_mut(&id) else {
            continue;
        };
        // Every event clears its deadline or moves it past now, and each member, pending member
        // and timer can fire at most once per tick, so this bound is never reached.
        let bound = 2 * (g.members.len() + g.pending_members.len()) + 8;
        for _ in 0..bound {
            match next_due(g) {
                Some((t, due)) if t <= cx.now_ms => fire(g, due, cx),
                _ => break,
            }
        }
    }
}

fn fire(g: &mut Group, due: Due, cx: &mut Ctx<'_>) {
    match due {
        Due::PendingMember(id) => {
            g.pending_members.remove(&id);
            if g.is(GroupState::PreparingRebalance) {
                maybe_complete_join(g, cx);
            }
        }
        Due::Session(id) => {
            let member = g.members.get_mut(&id).expect("listed member");
            member.heartbeat_deadline_ms = None;
            if !member.waiting_satisfies_heartbeat() {
                remove_member_and_update(g, cx, &id);
            }
        }
        Due::Join => on_join_deadline(g, cx),
        Due::Sync => on_sync_deadline(g, cx),
    }
}

fn on_join_deadline(g: &mut Group, cx: &mut Ctx<'_>) {
    let timer = g.join_timer.take();
    if !g.is(GroupState::PreparingRebalance) {
        return;
    }
    match timer {
        // Members arrived during the initial delay: wait again, within the rebalance timeout.
        Some(JoinTimer::Initial {
            delay_ms,
            remaining_ms,
            ..
        }) if g.new_member_added && remaining_ms != 0 => {
            g.new_member_added = false;
            let delay = i64::from(cx.cfg.initial_rebalance_delay_ms).min(remaining_ms);
            g.join_timer = Some(JoinTimer::Initial {
                deadline_ms: cx.now_ms + delay,
                delay_ms: delay,
                remaining_ms: (remaining_ms - delay_ms).max(0),
            });
        }
        _ => complete_join(g, cx),
    }
}

/// Members that never sent SyncGroup for this generation are removed and the group rebalances.
fn on_sync_deadline(g: &mut Group, cx: &mut Ctx<'_>) {
    let Some((_, generation)) = g.sync_deadline.take() else {
        return;
    };
    let syncing = matches!(
        g.state,
        GroupState::CompletingRebalance | GroupState::Stable
    );
    if generation != g.generation_id || !syncing || g.pending_sync.is_empty() {
        return;
    }
    let missing: Vec<String> = g.pending_sync.iter().cloned().collect();
    for id in missing {
        g.remove(&id);
    }
    prepare_rebalance(g, cx);
}
