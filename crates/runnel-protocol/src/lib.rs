//! Kafka wire protocol pieces Runnel needs beyond the message codecs of the `kafka-protocol`
//! crate: length-prefixed framing, request-header parsing that survives unknown keys and
//! versions, the table of API versions Runnel implements, response framing, and a view of the
//! v2 record-batch header. Nothing here does I/O or reads the clock.

pub mod frame;
pub mod header;
pub mod record_batch;
pub mod records;
pub mod response;
pub mod versions;

pub use kafka_protocol;
