//! Builders of responses that set only the fields the request's version has, so every response
//! encodes at the version it answers (the codec refuses non-default fields a version lacks).

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{HeartbeatResponse, JoinGroupResponse, SyncGroupResponse};
use kafka_protocol::protocol::StrBytes;

use super::GroupResponse;

pub(crate) fn s(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_owned())
}

pub(crate) fn code(error: Option<ResponseError>) -> i16 {
    error.map_or(0, |e| e.code())
}

/// Kafka's `JoinGroupResult`.
#[derive(Debug, Clone)]
pub(crate) struct JoinResult {
    pub members: Vec<JoinGroupResponseMember>,
    pub member_id: String,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader_id: String,
    pub skip_assignment: bool,
    pub error: Option<ResponseError>,
}

impl JoinResult {
    pub fn error(member_id: &str, error: ResponseError) -> Self {
        JoinResult {
            members: Vec::new(),
            member_id: member_id.to_owned(),
            generation_id: -1,
            protocol_type: None,
            protocol_name: None,
            leader_id: String::new(),
            skip_assignment: false,
            error: Some(error),
        }
    }

    pub fn into_response(self, version: i16) -> GroupResponse {
        let members = self
            .members
            .into_iter()
            .map(|m| {
                if version >= 5 {
                    m
                } else {
                    m.with_group_instance_id(None)
                }
            })
            .collect();
        // Before v7 the protocol name is not nullable: Kafka sends "" for none.
        let protocol_name = match (self.protocol_name, version >= 7) {
            (Some(name), _) => Some(s(&name)),
            (None, true) => None,
            (None, false) => Some(StrBytes::default()),
        };
        GroupResponse::JoinGroup(
            JoinGroupResponse::default()
                .with_error_code(code(self.error))
                .with_generation_id(self.generation_id)
                .with_protocol_type(self.protocol_type.filter(|_| version >= 7).map(|t| s(&t)))
                .with_protocol_name(protocol_name)
                .with_leader(s(&self.leader_id))
                .with_skip_assignment(self.skip_assignment && version >= 9)
                .with_member_id(s(&self.member_id))
                .with_members(members),
        )
    }
}

/// Kafka's `SyncGroupResult`; protocol type and name exist from v5.
pub(crate) fn sync_response(
    version: i16,
    protocol: Option<(&Option<String>, &Option<String>)>,
    assignment: Bytes,
    error: Option<ResponseError>,
) -> GroupResponse {
    let mut resp = SyncGroupResponse::default()
        .with_error_code(code(error))
        .with_assignment(assignment);
    if let (Some((protocol_type, protocol_name)), true) = (protocol, version >= 5) {
        resp.protocol_type = protocol_type.as_deref().map(s);
        resp.protocol_name = protocol_name.as_deref().map(s);
    }
    GroupResponse::SyncGroup(resp)
}

pub(crate) fn sync_error(error: ResponseError) -> GroupResponse {
    sync_response(0, None, Bytes::new(), Some(error))
}

pub(crate) fn heartbeat_response(error: Option<ResponseError>) -> GroupResponse {
    GroupResponse::Heartbeat(HeartbeatResponse::default().with_error_code(code(error)))
}
