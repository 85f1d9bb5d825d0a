//! One member of a classic group (Kafka's `MemberMetadata`).

use bytes::Bytes;

use super::RequestToken;

/// A request that is parked until the group reaches the point where it can be answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Parked {
    pub token: RequestToken,
    pub api_version: i16,
    /// The connection closed: the response is computed (state moves on) but never emitted.
    pub cancelled: bool,
}

impl Parked {
    pub fn new(token: RequestToken, api_version: i16) -> Self {
        Parked {
            token,
            api_version,
            cancelled: false,
        }
    }
}

/// A group member and the requests it has parked with the coordinator.
#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub protocol_type: String,
    /// (protocol name, metadata) in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    pub awaiting_join: Option<Parked>,
    pub awaiting_sync: Option<Parked>,
    /// Joined during the current rebalance and has not yet received a JoinGroup response: its
    /// heartbeat timer is the new-member join timeout, and waiting does not satisfy it.
    pub is_new: bool,
    /// When the session expires unless the member heartbeats (or is parked in a rebalance).
    pub heartbeat_deadline_ms: Option<i64>,
}

impl Member {
    pub fn is_awaiting_join(&self) -> bool {
        self.awaiting_join.is_some()
    }

    /// Kafka's `hasSatisfiedHeartbeat` at the moment the heartbeat timer fires: a member parked
    /// in JoinGroup or SyncGroup cannot heartbeat, so waiting counts as alive; a new member's
    /// wait does not, so abandoned first joins are cleaned up.
    pub fn waiting_satisfies_heartbeat(&self) -> bool {
        !self.is_new && (self.awaiting_join.is_some() || self.awaiting_sync.is_some())
    }

    /// Same protocols with the same metadata, in the same order.
    pub fn matches(&self, protocols: &[(String, Bytes)]) -> bool {
        self.protocols == protocols
    }

    pub fn supports(&self, protocol: &str) -> bool {
        self.protocols.iter().any(|(name, _)| name == protocol)
    }

    /// The member's metadata for `protocol` (empty if it does not support it).
    pub fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, metadata)| metadata.clone())
            .unwrap_or_default()
    }

    /// The member's most preferred protocol among `candidates`.
    pub fn vote<'a>(&'a self, candidates: &[&str]) -> Option<&'a str> {
        self.protocols
            .iter()
            .map(|(name, _)| name.as_str())
            .find(|name| candidates.contains(name))
    }
}
