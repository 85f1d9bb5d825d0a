//! `__consumer_offsets` record formats, byte-compatible with Apache Kafka's
//! (`GroupMetadataManager` / the `OffsetCommitKey`, `OffsetCommitValue`, `GroupMetadataKey` and
//! `GroupMetadataValue` schemas). Keys and values start with an i16 schema version; strings are
//! i16-length-prefixed UTF-8 (length -1 = null), byte arrays are i32-length-prefixed.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

/// One record of `__consumer_offsets`: a versioned key and a versioned value (None = tombstone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetsRecord {
    pub key: Bytes,
    pub value: Option<Bytes>,
}

/// Why a `__consumer_offsets` record could not be read. Replay stops on these: a record we cannot
/// read means the log holds something this broker does not understand.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecordError {
    #[error("__consumer_offsets record is truncated while reading {field}")]
    Truncated { field: &'static str },
    #[error("__consumer_offsets {what} has unsupported schema version {version}")]
    UnsupportedVersion { what: &'static str, version: i16 },
    #[error("__consumer_offsets record field {field} is not valid UTF-8")]
    InvalidUtf8 { field: &'static str },
    #[error("__consumer_offsets record field {field} is null but must not be")]
    UnexpectedNull { field: &'static str },
    #[error("__consumer_offsets record field {field} has negative length {length}")]
    NegativeLength { field: &'static str, length: i32 },
}

/// A decoded `__consumer_offsets` key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordKey {
    /// Key versions 0 and 1: a committed offset of one partition.
    OffsetCommit {
        group: String,
        topic: String,
        partition: i32,
    },
    /// Key version 2: the membership metadata of one group.
    GroupMetadata { group: String },
}

/// A committed offset as stored (`OffsetCommitValue`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetCommitValue {
    pub offset: i64,
    /// -1 when unknown (values before v3 do not carry it).
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
    /// Only v1 carries an explicit expiry (commits with a retention time, OffsetCommit v2-v4).
    pub expire_timestamp_ms: Option<i64>,
}

/// One member inside a `GroupMetadataValue`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberMetadataValue {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub subscription: Bytes,
    pub assignment: Bytes,
}

/// A group's membership as stored (`GroupMetadataValue`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMetadataValue {
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    /// None when absent (values before v2) or written as -1.
    pub current_state_timestamp_ms: Option<i64>,
    pub members: Vec<MemberMetadataValue>,
}

const OFFSET_KEY_VERSION: i16 = 1;
const GROUP_KEY_VERSION: i16 = 2;
const GROUP_VALUE_VERSION: i16 = 3;

fn put_str(buf: &mut BytesMut, s: &str) {
    // Kafka strings are at most i16::MAX bytes; longer ids are rejected before they get here
    // (group ids, topics and metadata are bounded by the request codec and metadata limits).
    let len = i16::try_from(s.len()).expect("string field longer than i16::MAX bytes");
    buf.put_i16(len);
    buf.put_slice(s.as_bytes());
}

fn put_nullable_str(buf: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_str(buf, s),
        None => buf.put_i16(-1),
    }
}

fn put_bytes(buf: &mut BytesMut, b: &[u8]) {
    let len = i32::try_from(b.len()).expect("bytes field longer than i32::MAX");
    buf.put_i32(len);
    buf.put_slice(b);
}

/// Key of a committed offset (key version 1).
pub fn offset_commit_key(group: &str, topic: &str, partition: i32) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(OFFSET_KEY_VERSION);
    put_str(&mut buf, group);
    put_str(&mut buf, topic);
    buf.put_i32(partition);
    buf.freeze()
}

/// Key of a group's metadata (key version 2).
pub fn group_metadata_key(group: &str) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(GROUP_KEY_VERSION);
    put_str(&mut buf, group);
    buf.freeze()
}

/// Value of a committed offset: v1 when an explicit expiry is present (as Kafka does), else v3.
pub fn encode_offset_commit_value(value: &OffsetCommitValue) -> Bytes {
    let mut buf = BytesMut::new();
    match value.expire_timestamp_ms {
        Some(expire) => {
            buf.put_i16(1);
            buf.put_i64(value.offset);
            put_str(&mut buf, &value.metadata);
            buf.put_i64(value.commit_timestamp_ms);
            buf.put_i64(expire);
        }
        None => {
            buf.put_i16(3);
            buf.put_i64(value.offset);
            buf.put_i32(value.leader_epoch);
            put_str(&mut buf, &value.metadata);
            buf.put_i64(value.commit_timestamp_ms);
        }
    }
    buf.freeze()
}

/// Value of a group's metadata (value version 3).
pub fn encode_group_metadata_value(value: &GroupMetadataValue) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(GROUP_VALUE_VERSION);
    put_str(&mut buf, &value.protocol_type);
    buf.put_i32(value.generation);
    put_nullable_str(&mut buf, value.protocol.as_deref());
    put_nullable_str(&mut buf, value.leader.as_deref());
    buf.put_i64(value.current_state_timestamp_ms.unwrap_or(-1));
    let count = i32::try_from(value.members.len()).expect("more than i32::MAX members");
    buf.put_i32(count);
    for m in &value.members {
        put_str(&mut buf, &m.member_id);
        put_nullable_str(&mut buf, m.group_instance_id.as_deref());
        put_str(&mut buf, &m.client_id);
        put_str(&mut buf, &m.client_host);
        buf.put_i32(m.rebalance_timeout_ms);
        buf.put_i32(m.session_timeout_ms);
        put_bytes(&mut buf, &m.subscription);
        put_bytes(&mut buf, &m.assignment);
    }
    buf.freeze()
}

/// A bounds-checked reader over one key or value.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], RecordError> {
        if self.buf.len() < n {
            return Err(RecordError::Truncated { field });
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn i16(&mut self, field: &'static str) -> Result<i16, RecordError> {
        let b = self.take(2, field)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    fn i32(&mut self, field: &'static str) -> Result<i32, RecordError> {
        let b = self.take(4, field)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn i64(&mut self, field: &'static str) -> Result<i64, RecordError> {
        let b = self.take(8, field)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }

    fn nullable_str(&mut self, field: &'static str) -> Result<Option<String>, RecordError> {
        let len = self.i16(field)?;
        if len < 0 {
            return Ok(None);
        }
        let raw = self.take(len as usize, field)?;
        let s = std::str::from_utf8(raw).map_err(|_| RecordError::InvalidUtf8 { field })?;
        Ok(Some(s.to_owned()))
    }

    fn str(&mut self, field: &'static str) -> Result<String, RecordError> {
        self.nullable_str(field)?
            .ok_or(RecordError::UnexpectedNull { field })
    }

    fn bytes(&mut self, field: &'static str) -> Result<Bytes, RecordError> {
        let len = self.i32(field)?;
        if len < 0 {
            return Err(RecordError::NegativeLength { field, length: len });
        }
        Ok(Bytes::copy_from_slice(self.take(len as usize, field)?))
    }
}

/// Reads a key of any version Kafka writes (0 and 1: offset commit, 2: group metadata).
pub fn decode_key(key: &[u8]) -> Result<RecordKey, RecordError> {
    let mut r = Reader { buf: key };
    match r.i16("key version")? {
        0 | 1 => Ok(RecordKey::OffsetCommit {
            group: r.str("group")?,
            topic: r.str("topic")?,
            partition: r.i32("partition")?,
        }),
        2 => Ok(RecordKey::GroupMetadata {
            group: r.str("group")?,
        }),
        version => Err(RecordError::UnsupportedVersion {
            what: "key",
            version,
        }),
    }
}

/// Reads an offset commit value of versions 0 to 3.
pub fn decode_offset_commit_value(value: &[u8]) -> Result<OffsetCommitValue, RecordError> {
    let mut r = Reader { buf: value };
    let version = r.i16("offset value version")?;
    if !(0..=3).contains(&version) {
        let what = "offset commit value";
        return Err(RecordError::UnsupportedVersion { what, version });
    }
    let offset = r.i64("offset")?;
    let leader_epoch = if version >= 3 {
        r.i32("leader_epoch")?
    } else {
        -1
    };
    let metadata = r.str("metadata")?;
    let commit_timestamp_ms = r.i64("commit_timestamp")?;
    let expire_timestamp_ms = if version == 1 {
        Some(r.i64("expire_timestamp")?)
    } else {
        None
    };
    Ok(OffsetCommitValue {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp_ms,
        expire_timestamp_ms,
    })
}

/// Reads a group metadata value of versions 0 to 3.
pub fn decode_group_metadata_value(value: &[u8]) -> Result<GroupMetadataValue, RecordError> {
    let mut r = Reader { buf: value };
    let version = r.i16("group value version")?;
    if !(0..=3).contains(&version) {
        let what = "group metadata value";
        return Err(RecordError::UnsupportedVersion { what, version });
    }
    let protocol_type = r.str("protocol_type")?;
    let generation = r.i32("generation")?;
    let protocol = r.nullable_str("protocol")?;
    let leader = r.nullable_str("leader")?;
    let current_state_timestamp_ms = if version >= 2 {
        Some(r.i64("current_state_timestamp")?).filter(|ts| *ts != -1)
    } else {
        None
    };
    let count = r.i32("members")?;
    if count < 0 {
        return Err(RecordError::NegativeLength {
            field: "members",
            length: count,
        });
    }
    // Each member takes at least 20 bytes, so the count is bounded by the bytes left.
    let mut members = Vec::with_capacity((count as usize).min(r.buf.len() / 20));
    for _ in 0..count {
        members.push(decode_member(&mut r, version)?);
    }
    Ok(GroupMetadataValue {
        protocol_type,
        generation,
        protocol,
        leader,
        current_state_timestamp_ms,
        members,
    })
}

fn decode_member(r: &mut Reader<'_>, version: i16) -> Result<MemberMetadataValue, RecordError> {
    let member_id = r.str("member_id")?;
    let group_instance_id = if version >= 3 {
        r.nullable_str("group_instance_id")?
    } else {
        None
    };
    let client_id = r.str("client_id")?;
    let client_host = r.str("client_host")?;
    let rebalance = if version >= 1 {
        Some(r.i32("rebalance_timeout")?)
    } else {
        None
    };
    let session_timeout_ms = r.i32("session_timeout")?;
    Ok(MemberMetadataValue {
        member_id,
        group_instance_id,
        client_id,
        client_host,
        // v0 had no rebalance timeout; Kafka uses the session timeout in its place.
        rebalance_timeout_ms: rebalance.unwrap_or(session_timeout_ms),
        session_timeout_ms,
        subscription: r.bytes("subscription")?,
        assignment: r.bytes("assignment")?,
    })
}

/// One uncompressed v2 record batch (base offset 0, CRC set) holding `records`, for the broker
/// to append.
pub fn encode_batch(records: &[OffsetsRecord], timestamp_ms: i64) -> Bytes {
    encode(records, None, timestamp_ms)
}

/// One uncompressed v2 record batch of `records` written by the transactional producer
/// `producer_id`/`producer_epoch` (isTransactional set, base sequence -1: Kafka's coordinator
/// writes TxnOffsetCommit records with RecordBatch.NO_SEQUENCE), for the broker to append.
pub fn encode_transactional_batch(
    records: &[OffsetsRecord],
    producer_id: i64,
    producer_epoch: i16,
    timestamp_ms: i64,
) -> Bytes {
    encode(records, Some((producer_id, producer_epoch)), timestamp_ms)
}

fn encode(records: &[OffsetsRecord], producer: Option<(i64, i16)>, timestamp_ms: i64) -> Bytes {
    let (producer_id, producer_epoch) = producer.unwrap_or((-1, -1));
    let recs: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, r)| Record {
            transactional: producer.is_some(),
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id,
            producer_epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // The encoder derives the base sequence from the first record and splits batches
            // where offset - sequence changes, so the sequence counts up from -1 (no sequence).
            sequence: i as i32 - 1,
            timestamp: timestamp_ms,
            key: Some(r.key.clone()),
            value: r.value.clone(),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    // Encoding uncompressed v2 records into memory cannot fail for well-formed records.
    RecordBatchEncoder::encode(&mut buf, &recs, &options).expect("encode __consumer_offsets batch");
    buf.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::records::RecordBatchDecoder;

    #[test]
    fn offset_key_matches_kafka_layout() {
        let key = offset_commit_key("g", "t", 7);
        assert_eq!(&key[..], &[0, 1, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 7]);
        let decoded = decode_key(&key).unwrap();
        let expected = RecordKey::OffsetCommit {
            group: "g".into(),
            topic: "t".into(),
            partition: 7,
        };
        assert_eq!(decoded, expected);
        assert_eq!(&group_metadata_key("g")[..], &[0, 2, 0, 1, b'g']);
    }

    #[test]
    fn offset_value_round_trips_v3_and_v1() {
        let v3 = OffsetCommitValue {
            offset: 42,
            leader_epoch: 5,
            metadata: "meta".into(),
            commit_timestamp_ms: 1000,
            expire_timestamp_ms: None,
        };
        let bytes = encode_offset_commit_value(&v3);
        assert_eq!(&bytes[..2], &[0, 3]);
        assert_eq!(decode_offset_commit_value(&bytes).unwrap(), v3);
        let v1 = OffsetCommitValue {
            leader_epoch: -1,
            expire_timestamp_ms: Some(9),
            ..v3
        };
        let bytes = encode_offset_commit_value(&v1);
        assert_eq!(&bytes[..2], &[0, 1]);
        assert_eq!(decode_offset_commit_value(&bytes).unwrap(), v1);
    }

    #[test]
    fn group_value_round_trips_and_reads_v0() {
        let value = GroupMetadataValue {
            protocol_type: "consumer".into(),
            generation: 3,
            protocol: Some("range".into()),
            leader: Some("m1".into()),
            current_state_timestamp_ms: Some(77),
            members: vec![MemberMetadataValue {
                member_id: "m1".into(),
                group_instance_id: Some("i1".into()),
                client_id: "c".into(),
                client_host: "/h".into(),
                rebalance_timeout_ms: 300,
                session_timeout_ms: 100,
                subscription: Bytes::from_static(b"sub"),
                assignment: Bytes::from_static(b"asg"),
            }],
        };
        let bytes = encode_group_metadata_value(&value);
        assert_eq!(decode_group_metadata_value(&bytes).unwrap(), value);

        // Hand-built v0: no rebalance timeout, no timestamp, no instance id.
        let mut v0 = BytesMut::new();
        v0.put_i16(0);
        put_str(&mut v0, "consumer");
        v0.put_i32(1);
        put_nullable_str(&mut v0, Some("range"));
        put_nullable_str(&mut v0, None);
        v0.put_i32(1);
        for s in ["m", "c", "h"] {
            put_str(&mut v0, s);
        }
        v0.put_i32(6000);
        put_bytes(&mut v0, b"s");
        put_bytes(&mut v0, b"");
        let decoded = decode_group_metadata_value(&v0).unwrap();
        assert_eq!(decoded.members[0].rebalance_timeout_ms, 6000);
        assert_eq!(decoded.leader, None);
        assert_eq!(decoded.current_state_timestamp_ms, None);
    }

    #[test]
    fn truncated_and_unknown_versions_are_errors() {
        assert!(matches!(
            decode_key(&[0]),
            Err(RecordError::Truncated { .. })
        ));
        assert!(matches!(
            decode_key(&[0, 9]),
            Err(RecordError::UnsupportedVersion { .. })
        ));
        let err = decode_offset_commit_value(&[0, 3, 0]).unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");
    }

    #[test]
    fn batch_decodes_with_the_records() {
        let records = vec![
            OffsetsRecord {
                key: group_metadata_key("a"),
                value: None,
            },
            OffsetsRecord {
                key: offset_commit_key("a", "t", 0),
                value: Some(Bytes::from_static(b"x")),
            },
        ];
        let mut batch = encode_batch(&records, 123);
        let set = RecordBatchDecoder::decode(&mut batch).unwrap();
        assert_eq!(set.records.len(), 2);
        assert_eq!(set.records[0].key.as_ref(), Some(&records[0].key));
        assert_eq!(set.records[0].value, None);
        assert_eq!(set.records[1].offset, 1);
        assert_eq!(set.records[1].timestamp, 123);
    }

    #[test]
    fn transactional_batch_is_one_batch_of_the_producer() {
        let records: Vec<OffsetsRecord> = (0..3)
            .map(|p| OffsetsRecord {
                key: offset_commit_key("a", "t", p),
                value: Some(Bytes::from_static(b"x")),
            })
            .collect();
        let batch = encode_transactional_batch(&records, 4242, 7, 99);
        // v2 batch header: baseOffset(8) length(4) leaderEpoch(4) magic(1) crc(4) attributes(2)
        // lastOffsetDelta(4) baseTimestamp(8) maxTimestamp(8) producerId(8) producerEpoch(2)
        // baseSequence(4) count(4).
        assert_eq!(batch[16], 2, "magic");
        let attributes = i16::from_be_bytes([batch[21], batch[22]]);
        assert_eq!(attributes & 0x10, 0x10, "isTransactional");
        assert_eq!(attributes & 0x20, 0, "not a control batch");
        let producer_id = i64::from_be_bytes(batch[43..51].try_into().unwrap());
        let producer_epoch = i16::from_be_bytes([batch[51], batch[52]]);
        let base_sequence = i32::from_be_bytes(batch[53..57].try_into().unwrap());
        let count = i32::from_be_bytes(batch[57..61].try_into().unwrap());
        assert_eq!(
            (producer_id, producer_epoch, base_sequence, count),
            (4242, 7, -1, 3)
        );
        let length = i32::from_be_bytes(batch[8..12].try_into().unwrap());
        assert_eq!(batch.len(), 12 + length as usize, "exactly one batch");
        let mut bytes = batch.clone();
        let set = RecordBatchDecoder::decode(&mut bytes).unwrap();
        assert_eq!(set.records.len(), 3);
        assert!(set
            .records
            .iter()
            .all(|r| r.transactional && r.producer_id == 4242));
        assert_eq!(set.records[2].key.as_ref(), Some(&records[2].key));
        // The plain batch keeps no producer.
        let plain = encode_batch(&records, 99);
        assert_eq!(i16::from_be_bytes([plain[21], plain[22]]) & 0x10, 0);
        assert_eq!(i64::from_be_bytes(plain[43..51].try_into().unwrap()), -1);
    }
}
