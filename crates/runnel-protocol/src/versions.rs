//! The API versions Runnel implements. ApiVersions advertises exactly this table, and a request
//! for any other API or version is refused, so a client never negotiates something untested.

use kafka_protocol::messages::ApiKey;

/// One implemented API and its inclusive version range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SupportedApi {
    pub key: ApiKey,
    /// Kafka's name of the API, for logs and metric labels.
    pub name: &'static str,
    pub min_version: i16,
    pub max_version: i16,
}

const fn api(key: ApiKey, name: &'static str, min_version: i16, max_version: i16) -> SupportedApi {
    SupportedApi {
        key,
        name,
        min_version,
        max_version,
    }
}

/// Every API the broker answers, with the versions current clients send (librdkafka 2.x,
/// kafka-python 2.x, the Java client 3.x/4.x). Produce starts at v3 (the first with v2 record
/// batches), Fetch at v4 (the first with the last stable offset), as in Kafka 4.
pub const SUPPORTED_APIS: &[SupportedApi] = &[
    api(ApiKey::Produce, "Produce", 3, 11),
    api(ApiKey::Fetch, "Fetch", 4, 12),
    api(ApiKey::ListOffsets, "ListOffsets", 1, 8),
    api(ApiKey::Metadata, "Metadata", 0, 12),
    api(ApiKey::ApiVersions, "ApiVersions", 0, 4),
    api(ApiKey::CreateTopics, "CreateTopics", 2, 7),
    api(ApiKey::DeleteTopics, "DeleteTopics", 1, 6),
    api(ApiKey::FindCoordinator, "FindCoordinator", 0, 5),
    api(ApiKey::JoinGroup, "JoinGroup", 0, 9),
    api(ApiKey::SyncGroup, "SyncGroup", 0, 5),
    api(ApiKey::Heartbeat, "Heartbeat", 0, 4),
    api(ApiKey::LeaveGroup, "LeaveGroup", 0, 5),
    api(ApiKey::OffsetCommit, "OffsetCommit", 2, 9),
    api(ApiKey::OffsetFetch, "OffsetFetch", 1, 9),
    api(ApiKey::DescribeGroups, "DescribeGroups", 0, 5),
    api(ApiKey::ListGroups, "ListGroups", 0, 5),
    api(ApiKey::DeleteGroups, "DeleteGroups", 0, 2),
    api(ApiKey::OffsetDelete, "OffsetDelete", 0, 0),
    api(ApiKey::CreatePartitions, "CreatePartitions", 0, 3),
    api(ApiKey::DescribeCluster, "DescribeCluster", 0, 1),
    api(ApiKey::DescribeLogDirs, "DescribeLogDirs", 1, 4),
    api(ApiKey::OffsetForLeaderEpoch, "OffsetForLeaderEpoch", 2, 4),
    api(ApiKey::DescribeConfigs, "DescribeConfigs", 1, 4),
    api(ApiKey::AlterConfigs, "AlterConfigs", 0, 2),
    api(
        ApiKey::IncrementalAlterConfigs,
        "IncrementalAlterConfigs",
        0,
        1,
    ),
    api(ApiKey::DeleteRecords, "DeleteRecords", 0, 2),
    api(ApiKey::InitProducerId, "InitProducerId", 0, 5),
    api(ApiKey::AddPartitionsToTxn, "AddPartitionsToTxn", 0, 5),
    api(ApiKey::AddOffsetsToTxn, "AddOffsetsToTxn", 0, 4),
    api(ApiKey::EndTxn, "EndTxn", 0, 4),
    api(ApiKey::DescribeTransactions, "DescribeTransactions", 0, 0),
    api(ApiKey::ListTransactions, "ListTransactions", 0, 1),
    api(ApiKey::DescribeProducers, "DescribeProducers", 0, 0),
    api(ApiKey::TxnOffsetCommit, "TxnOffsetCommit", 0, 4),
];

/// The implemented range for `key`, if the broker answers that API at all.
pub fn supported_range(key: ApiKey) -> Option<SupportedApi> {
    SUPPORTED_APIS.iter().copied().find(|api| api.key == key)
}

/// Kafka's name of an implemented API ("Unsupported" for others).
pub fn api_name(key: ApiKey) -> &'static str {
    supported_range(key).map_or("Unsupported", |api| api.name)
}

/// Whether `version` of `key` is implemented.
pub fn is_supported(key: ApiKey, version: i16) -> bool {
    supported_range(key).is_some_and(|api| (api.min_version..=api.max_version).contains(&version))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::protocol::Message;

    /// The codec must be able to encode and decode every version we advertise.
    #[test]
    fn every_advertised_version_is_known_to_the_codec() {
        for api in SUPPORTED_APIS {
            let codec = api.key.valid_versions();
            assert!(
                codec.min <= api.min_version && api.max_version <= codec.max,
                "{:?} {}..={} outside codec range {codec}",
                api.key,
                api.min_version,
                api.max_version
            );
        }
        assert_eq!(
            kafka_protocol::messages::ApiVersionsRequest::VERSIONS.max,
            supported_range(ApiKey::ApiVersions).unwrap().max_version
        );
    }

    #[test]
    fn refuses_versions_outside_the_table() {
        assert!(is_supported(ApiKey::Produce, 3));
        assert!(!is_supported(ApiKey::Produce, 2));
        assert!(!is_supported(ApiKey::Fetch, 99));
        assert!(!is_supported(ApiKey::SaslHandshake, 0));
    }
}
