//! The timer loop both coordinator runtimes share: sleep until the state machine's next
//! deadline, fire it, and start over; a request that may have moved the deadline earlier wakes
//! the loop through `deadline_changed`.

use std::time::Duration;

use tokio::sync::{watch, Notify};

use crate::broker::now_ms;

/// Runs until `shutdown` changes. `next_deadline` and `fire` take the runtime's lock briefly.
pub async fn run_at_deadlines(
    next_deadline: impl Fn() -> Option<i64>,
    mut fire: impl FnMut(),
    deadline_changed: &Notify,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let deadline = next_deadline();
        let sleep = async {
            match deadline {
                Some(at) => {
                    tokio::time::sleep(Duration::from_millis((at - now_ms()).max(0) as u64)).await
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = sleep => fire(),
            _ = deadline_changed.notified() => {}
            _ = shutdown.changed() => return,
        }
    }
}
