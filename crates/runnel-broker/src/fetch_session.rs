//! Incremental fetch sessions (KIP-227). A client opens a session with a full fetch (session id
//! 0, epoch 0); later fetches name only the partitions whose fetch position changed, and the
//! response names only partitions with something new. The broker remembers each session's
//! partitions and what it last told the client about them.
//!
//! | session_id | epoch | meaning                                                        |
//! |------------|-------|----------------------------------------------------------------|
//! | 0          | -1    | sessionless full fetch (librdkafka, kafka-python)              |
//! | 0          | 0     | full fetch that opens a new session                            |
//! | id         | -1    | close session `id`, then a sessionless full fetch              |
//! | id         | 0     | close session `id` and open a new one with this full fetch     |
//! | id         | n > 0 | incremental fetch: `n` must be the session's next epoch         |

use std::collections::{BTreeMap, HashMap};

use kafka_protocol::error::ResponseError;
use parking_lot::Mutex;

/// Kafka's `max.incremental.fetch.session.cache.slots` default.
const MAX_SESSIONS: usize = 1000;

/// A partition a fetch reads, with the client's position and limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchTarget {
    pub topic: String,
    pub topic_id: uuid::Uuid,
    pub partition: i32,
    pub fetch_offset: i64,
    pub partition_max_bytes: i32,
    /// KIP-320 (v9+, -1 = no check). Kept in the session, so the partitions an incremental
    /// fetch does not name are checked against the epoch the client last sent, as in Kafka.
    pub current_leader_epoch: i32,
    /// v12+ (KIP-320): the epoch of the last record the client fetched, -1 when unknown or
    /// older versions. Checked against the epoch cache for a diverging log.
    pub last_fetched_epoch: i32,
}

/// What a partition's response said, to tell whether an incremental response must include it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PartitionReport {
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
}

/// How a fetch relates to a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionMode {
    /// No session: answer every partition; respond with session id 0.
    Sessionless,
    /// A full fetch that opened session `id`: answer every partition.
    Full { id: i32 },
    /// An incremental fetch in session `id`: answer only partitions with news.
    Incremental { id: i32 },
}

impl SessionMode {
    pub fn response_session_id(self) -> i32 {
        match self {
            SessionMode::Sessionless => 0,
            SessionMode::Full { id } | SessionMode::Incremental { id } => id,
        }
    }
}

/// A fetch request's partitions, split into changes and removals.
pub struct SessionRequest {
    pub session_id: i32,
    pub epoch: i32,
    pub partitions: Vec<FetchTarget>,
    pub forgotten: Vec<(String, i32)>,
}

struct SessionPartition {
    target: FetchTarget,
    last_report: Option<PartitionReport>,
}

struct FetchSession {
    next_epoch: i32,
    partitions: BTreeMap<(String, i32), SessionPartition>,
    last_used_ms: i64,
}

#[derive(Default)]
pub struct FetchSessionCache {
    sessions: Mutex<HashMap<i32, FetchSession>>,
}

impl FetchSessionCache {
    /// Resolves a request against the cache: which session it belongs to and which partitions to
    /// read. Errors are top-level fetch errors.
    pub fn begin(
        &self,
        request: SessionRequest,
        now_ms: i64,
    ) -> Result<(SessionMode, Vec<FetchTarget>), ResponseError> {
        let mut sessions = self.sessions.lock();
        match (request.session_id, request.epoch) {
            (0, -1) => Ok((SessionMode::Sessionless, request.partitions)),
            (id, -1) => {
                sessions.remove(&id);
                Ok((SessionMode::Sessionless, request.partitions))
            }
            (id, 0) => {
                sessions.remove(&id);
                let mode = match open_session(&mut sessions, &request.partitions, now_ms) {
                    Some(new_id) => SessionMode::Full { id: new_id },
                    None => SessionMode::Sessionless,
                };
                Ok((mode, request.partitions))
            }
            (id, epoch) => {
                let session = sessions
                    .get_mut(&id)
                    .ok_or(ResponseError::FetchSessionIdNotFound)?;
                if session.next_epoch != epoch {
                    return Err(ResponseError::InvalidFetchSessionEpoch);
                }
                session.last_used_ms = now_ms;
                for key in request.forgotten {
                    session.partitions.remove(&key);
                }
                for target in request.partitions {
                    let key = (target.topic.clone(), target.partition);
                    match session.partitions.get_mut(&key) {
                        Some(existing) => existing.target = target,
                        None => {
                            session.partitions.insert(
                                key,
                                SessionPartition {
                                    target,
                                    last_report: None,
                                },
                            );
                        }
                    }
                }
                let targets = session
                    .partitions
                    .values()
                    .map(|p| p.target.clone())
                    .collect();
                Ok((SessionMode::Incremental { id }, targets))
            }
        }
    }

    /// Records what the response reported and advances the session epoch. Returns, for an
    /// incremental fetch, whether each partition must be included in the response.
    pub fn finish(
        &self,
        mode: SessionMode,
        reports: &[(&FetchTarget, PartitionReport, bool)],
    ) -> Vec<bool> {
        let id = match mode {
            SessionMode::Sessionless => return vec![true; reports.len()],
            SessionMode::Full { id } | SessionMode::Incremental { id } => id,
        };
        let mut sessions = self.sessions.lock();
        let Some(session) = sessions.get_mut(&id) else {
            return vec![true; reports.len()];
        };
        session.next_epoch = next_epoch(session.next_epoch);
        reports
            .iter()
            .map(|(target, report, has_news)| {
                let key = (target.topic.clone(), target.partition);
                let Some(state) = session.partitions.get_mut(&key) else {
                    return true;
                };
                let changed = state.last_report != Some(*report);
                state.last_report = Some(*report);
                matches!(mode, SessionMode::Full { .. }) || *has_news || changed
            })
            .collect()
    }
}

fn open_session(
    sessions: &mut HashMap<i32, FetchSession>,
    targets: &[FetchTarget],
    now_ms: i64,
) -> Option<i32> {
    if sessions.len() >= MAX_SESSIONS {
        let oldest = sessions
            .iter()
            .min_by_key(|(_, s)| s.last_used_ms)
            .map(|(id, _)| *id)?;
        sessions.remove(&oldest);
    }
    let id = loop {
        let candidate = (uuid::Uuid::new_v4().as_u128() as i32) & i32::MAX;
        if candidate != 0 && !sessions.contains_key(&candidate) {
            break candidate;
        }
    };
    let partitions = targets
        .iter()
        .map(|t| {
            let state = SessionPartition {
                target: t.clone(),
                last_report: None,
            };
            ((t.topic.clone(), t.partition), state)
        })
        .collect();
    sessions.insert(
        id,
        FetchSession {
            next_epoch: 0,
            partitions,
            last_used_ms: now_ms,
        },
    );
    Some(id)
}

/// Epochs wrap from i32::MAX to 1 (0 and -1 have special meanings).
fn next_epoch(epoch: i32) -> i32 {
    if epoch == i32::MAX {
        1
    } else {
        epoch + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(partition: i32, offset: i64) -> FetchTarget {
        FetchTarget {
            topic: "t".into(),
            topic_id: uuid::Uuid::nil(),
            partition,
            fetch_offset: offset,
            partition_max_bytes: 1024,
            current_leader_epoch: -1,
            last_fetched_epoch: -1,
        }
    }

    fn request(session_id: i32, epoch: i32, partitions: Vec<FetchTarget>) -> SessionRequest {
        SessionRequest {
            session_id,
            epoch,
            partitions,
            forgotten: vec![],
        }
    }

    #[test]
    fn a_new_session_then_incremental_fetches_reuse_its_partitions() {
        let cache = FetchSessionCache::default();
        let (mode, targets) = cache
            .begin(request(0, 0, vec![target(0, 0), target(1, 0)]), 0)
            .unwrap();
        let SessionMode::Full { id } = mode else {
            panic!("expected a new session")
        };
        let report = PartitionReport::default();
        let reports: Vec<_> = targets.iter().map(|t| (t, report, false)).collect();
        assert_eq!(cache.finish(mode, &reports), vec![true, true]);

        let (mode, targets) = cache.begin(request(id, 1, vec![target(1, 5)]), 1).unwrap();
        assert_eq!(mode, SessionMode::Incremental { id });
        assert_eq!(targets, vec![target(0, 0), target(1, 5)]);
        let reports = vec![(&targets[0], report, false), (&targets[1], report, true)];
        assert_eq!(cache.finish(mode, &reports), vec![false, true]);
    }

    #[test]
    fn the_session_keeps_each_partitions_current_leader_epoch() {
        let cache = FetchSessionCache::default();
        let (mode, _) = cache.begin(request(0, 0, vec![target(0, 0)]), 0).unwrap();
        cache.finish(mode, &[]);
        let id = mode.response_session_id();
        let fenced = FetchTarget {
            current_leader_epoch: 3,
            ..target(0, 0)
        };
        let (mode, _) = cache
            .begin(request(id, 1, vec![fenced.clone()]), 0)
            .unwrap();
        cache.finish(mode, &[]);
        // The next incremental fetch does not name the partition: its epoch is still checked.
        let (_, targets) = cache.begin(request(id, 2, vec![]), 0).unwrap();
        assert_eq!(targets, vec![fenced]);
    }

    #[test]
    fn unknown_sessions_and_wrong_epochs_are_refused() {
        let cache = FetchSessionCache::default();
        assert_eq!(
            cache.begin(request(42, 1, vec![]), 0).unwrap_err(),
            ResponseError::FetchSessionIdNotFound
        );
        let (mode, _) = cache.begin(request(0, 0, vec![target(0, 0)]), 0).unwrap();
        cache.finish(mode, &[]);
        let id = mode.response_session_id();
        assert_eq!(
            cache.begin(request(id, 5, vec![]), 0).unwrap_err(),
            ResponseError::InvalidFetchSessionEpoch
        );
    }

    #[test]
    fn forgotten_partitions_leave_the_session() {
        let cache = FetchSessionCache::default();
        let (mode, _) = cache
            .begin(request(0, 0, vec![target(0, 0), target(1, 0)]), 0)
            .unwrap();
        cache.finish(mode, &[]);
        let mut incremental = request(mode.response_session_id(), 1, vec![]);
        incremental.forgotten = vec![("t".into(), 0)];
        let (_, targets) = cache.begin(incremental, 0).unwrap();
        assert_eq!(targets, vec![target(1, 0)]);
    }
}
