//! Authorized-operation bit sets for Metadata and DescribeCluster. Until ACLs exist every
//! client may do everything a resource supports, which is what Kafka reports when no authorizer
//! is configured. Bits are Kafka's AclOperation codes. Delegation-token operations are left
//! out: the broker has no token APIs (and kafka-python 2.x rejects those codes).

const fn bits(operations: &[u8]) -> i32 {
    let mut set = 0;
    let mut i = 0;
    while i < operations.len() {
        set |= 1 << operations[i];
        i += 1;
    }
    set
}

const READ: u8 = 3;
const WRITE: u8 = 4;
const CREATE: u8 = 5;
const DELETE: u8 = 6;
const ALTER: u8 = 7;
const DESCRIBE: u8 = 8;
const CLUSTER_ACTION: u8 = 9;
const DESCRIBE_CONFIGS: u8 = 10;
const ALTER_CONFIGS: u8 = 11;
const IDEMPOTENT_WRITE: u8 = 12;

/// "Not requested" in Kafka's encoding.
pub const NOT_REQUESTED: i32 = i32::MIN;

pub const CLUSTER: i32 = bits(&[
    CREATE,
    ALTER,
    DESCRIBE,
    CLUSTER_ACTION,
    DESCRIBE_CONFIGS,
    ALTER_CONFIGS,
    IDEMPOTENT_WRITE,
]);

pub const TOPIC: i32 = bits(&[
    READ,
    WRITE,
    CREATE,
    DELETE,
    ALTER,
    DESCRIBE,
    DESCRIBE_CONFIGS,
    ALTER_CONFIGS,
]);

/// The set to report: the resource's operations when the client asked, else NOT_REQUESTED.
pub fn reported(requested: bool, operations: i32) -> i32 {
    if requested {
        operations
    } else {
        NOT_REQUESTED
    }
}
