//! Runs the group coordinator state machine (`runnel_coordinator::group`) for the broker: feeds
//! it requests and time, appends the records it asks for to `__consumer_offsets`, and delivers
//! its responses, some of which come later (a JoinGroup waits for the rebalance).
//!
//! ```text
//!   handler ──call()──▶ [mutex: coordinator.handle() ─▶ append records ─▶ send responses]
//!   timer task ───────▶ [mutex: coordinator.tick()   ─▶ append records ─▶ send responses]
//! ```
//! Appends happen under the same mutex as the state change that produced them, so the log
//! holds records in the order the state machine made them and replay rebuilds the same state.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use runnel_coordinator::group::{
    GroupCoordinator, GroupRequest, GroupResponse, Output, RequestMeta, RequestToken, TopicView,
};
use runnel_coordinator::records::{encode_batch, encode_transactional_batch};
use tokio::sync::{oneshot, Notify};

use crate::broker::now_ms;
use crate::deadline_timer::run_at_deadlines;
use crate::internal_topics::{replay_partition, Logged, ReplayError};
use crate::topics::{Topic, TopicRegistry};

/// The internal topic holding committed offsets and group metadata.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

struct State {
    coordinator: GroupCoordinator,
    waiting: HashMap<RequestToken, oneshot::Sender<GroupResponse>>,
    next_token: RequestToken,
}

pub struct GroupRuntime {
    state: Mutex<State>,
    /// Wakes the timer task when a request may have moved the next deadline earlier.
    deadline_changed: Notify,
}

impl GroupRuntime {
    /// Builds the coordinator state by replaying `__consumer_offsets`, if it exists.
    pub fn load(
        coordinator: GroupCoordinator,
        topics: &TopicRegistry,
    ) -> Result<GroupRuntime, ReplayError> {
        let mut coordinator = coordinator;
        // Without the topic there is nothing to load (it is created on first use).
        if let Some(topic) = topics.get(OFFSETS_TOPIC) {
            for partition in &topic.partitions {
                let index = partition.index();
                replay_partition(partition, |logged| match logged {
                    Logged::Record {
                        producer_id: None,
                        key,
                        value,
                    } => coordinator.replay(key, value).map_err(|e| e.to_string()),
                    Logged::Record {
                        producer_id: Some(producer_id),
                        key,
                        value,
                    } => coordinator
                        .replay_transactional(producer_id, key, value)
                        .map_err(|e| e.to_string()),
                    Logged::Marker {
                        producer_id,
                        commit,
                    } => {
                        coordinator.replay_marker(index, producer_id, commit);
                        Ok(())
                    }
                })?;
            }
            coordinator.finish_loading(now_ms());
        }
        Ok(GroupRuntime {
            state: Mutex::new(State {
                coordinator,
                waiting: HashMap::new(),
                next_token: 0,
            }),
            deadline_changed: Notify::new(),
        })
    }

    /// Hands `request` to the coordinator and waits for its response, however late it comes.
    /// `offsets` gets (creating if needed) the `__consumer_offsets` topic for appends.
    pub async fn call(
        &self,
        offsets: &(dyn Fn() -> Option<Arc<Topic>> + Sync),
        topics: &TopicRegistry,
        api_version: i16,
        client_id: &str,
        client_host: String,
        request: GroupRequest,
    ) -> Option<GroupResponse> {
        let (sender, receiver) = oneshot::channel();
        let token = {
            let mut state = self.state.lock();
            let token = state.next_token;
            state.next_token += 1;
            state.waiting.insert(token, sender);
            let meta = RequestMeta {
                token,
                api_version,
                client_id: client_id.to_string(),
                client_host,
            };
            let output = state
                .coordinator
                .handle(meta, request, &RegistryView(topics), now_ms());
            execute(&mut state, output, offsets);
            token
        };
        self.deadline_changed.notify_one();
        // If the connection goes away while we wait, tell the coordinator to forget the request.
        let mut guard = CancelOnDrop {
            runtime: self,
            token,
            armed: true,
        };
        let response = receiver.await.ok();
        guard.armed = false;
        response
    }

    /// Fires the coordinator's timers until `shutdown` says stop.
    pub async fn run_timers(
        &self,
        offsets: &(dyn Fn() -> Option<Arc<Topic>> + Sync),
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        let next_deadline = || self.state.lock().coordinator.next_deadline();
        let fire = || {
            let mut state = self.state.lock();
            let output = state.coordinator.tick(now_ms());
            execute(&mut state, output, offsets);
        };
        run_at_deadlines(next_deadline, fire, &self.deadline_changed, shutdown).await;
    }

    /// A transaction marker of `producer_id` was written to `__consumer_offsets` partition
    /// `partition`: its pending offsets there become committed (or are dropped).
    pub fn complete_transaction(
        &self,
        offsets: &(dyn Fn() -> Option<Arc<Topic>> + Sync),
        partition: i32,
        producer_id: i64,
        commit: bool,
    ) {
        let mut state = self.state.lock();
        let output =
            state
                .coordinator
                .complete_transaction(partition, producer_id, commit, now_ms());
        execute(&mut state, output, offsets);
    }

    pub fn group_count(&self) -> usize {
        self.state.lock().coordinator.group_count()
    }

    /// A copy of every committed offset: (group, topic, partition, offset). The lock is held
    /// only while copying; pending transactional offsets are not included.
    pub fn committed_offsets(&self) -> Vec<(String, String, i32, i64)> {
        self.state.lock().coordinator.committed_offsets()
    }
}

struct CancelOnDrop<'a> {
    runtime: &'a GroupRuntime,
    token: RequestToken,
    armed: bool,
}

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let mut state = self.runtime.state.lock();
        state.waiting.remove(&self.token);
        state.coordinator.cancel(self.token);
    }
}

/// Performs an Output: appends in order (answering `then` or `on_failure`), then the direct
/// responses.
fn execute(state: &mut State, output: Output, offsets: &(dyn Fn() -> Option<Arc<Topic>> + Sync)) {
    let topic = if output.appends.is_empty() {
        None
    } else {
        offsets()
    };
    for append in output.appends {
        let batch = match append.producer {
            // Offsets of a transaction are written as that producer's transactional batch and
            // stay pending until its marker reaches this partition.
            Some((producer_id, epoch)) => {
                encode_transactional_batch(&append.records, producer_id, epoch, now_ms())
            }
            None => encode_batch(&append.records, now_ms()),
        };
        let partition = topic.as_ref().and_then(|t| t.partition(append.partition));
        let result = match partition {
            Some(partition) => partition
                .append_from_coordinator(&batch, now_ms())
                .map(|_| ())
                .map_err(|e| e.to_string()),
            None => Err(format!(
                "no partition {} in {OFFSETS_TOPIC}",
                append.partition
            )),
        };
        match result {
            Ok(()) => send_responses(state, append.then),
            Err(error) => {
                tracing::error!(partition = append.partition, %error, "cannot append to {OFFSETS_TOPIC}");
                send_responses(state, append.on_failure);
            }
        }
    }
    send_responses(state, output.responses);
}

fn send_responses(state: &mut State, responses: Vec<(RequestToken, GroupResponse)>) {
    for (token, response) in responses {
        if let Some(sender) = state.waiting.remove(&token) {
            // The receiver is gone only if its connection closed; nothing to do then.
            let _ = sender.send(response);
        }
    }
}

struct RegistryView<'a>(&'a TopicRegistry);

impl TopicView for RegistryView<'_> {
    fn partition_exists(&self, topic: &str, partition: i32) -> bool {
        self.0
            .get(topic)
            .is_some_and(|t| t.partition(partition).is_some())
    }
}
