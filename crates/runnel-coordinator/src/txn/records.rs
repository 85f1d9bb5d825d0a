//! `__transaction_state` record formats, byte-compatible with Apache Kafka's
//! (`TransactionLogKey` v0 and `TransactionLogValue` v0, written; v1, flexible, also read).
//! Keys and values start with an i16 schema version.

use bytes::{BufMut, Bytes, BytesMut};

use super::state::{TxnMetadata, TxnStatus};

const KEY_VERSION: i16 = 0;
const VALUE_VERSION: i16 = 0;

/// Why a `__transaction_state` record could not be read. Replay stops on these: a record we
/// cannot read means the log holds something this broker does not understand.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TxnRecordError {
    #[error("__transaction_state record is truncated while reading {field}")]
    Truncated { field: &'static str },
    #[error("__transaction_state {what} has unsupported schema version {version}")]
    UnsupportedVersion { what: &'static str, version: i16 },
    #[error("__transaction_state record field {field} is not valid UTF-8")]
    InvalidUtf8 { field: &'static str },
    #[error("__transaction_state record field {field} is null but must not be")]
    UnexpectedNull { field: &'static str },
    #[error("__transaction_state record has unknown transaction status {status}")]
    UnknownStatus { status: i8 },
}

/// A decoded `TransactionLogValue`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnLogValue {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub timeout_ms: i32,
    pub status: TxnStatus,
    /// topic -> partitions; None when written as null (Kafka does so for Empty).
    pub partitions: Option<Vec<(String, Vec<i32>)>>,
    pub last_update_ms: i64,
    pub start_ms: i64,
}

fn put_str(buf: &mut BytesMut, s: &str) {
    // Transactional ids and topic names are bounded by the request codec (i16 length).
    let len = i16::try_from(s.len()).expect("string field longer than i16::MAX bytes");
    buf.put_i16(len);
    buf.put_slice(s.as_bytes());
}

fn count(n: usize) -> i32 {
    i32::try_from(n).expect("array longer than i32::MAX")
}

/// `TransactionLogKey` v0: the transactional id.
pub fn encode_key(transactional_id: &str) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(KEY_VERSION);
    put_str(&mut buf, transactional_id);
    buf.freeze()
}

/// `TransactionLogValue` v0 of `txn` as it is now. Partitions are null in state Empty, as Kafka
/// writes them.
pub fn encode_value(txn: &TxnMetadata) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(VALUE_VERSION);
    buf.put_i64(txn.producer_id);
    buf.put_i16(txn.producer_epoch);
    buf.put_i32(txn.timeout_ms);
    buf.put_i8(txn.status.id());
    if txn.status == TxnStatus::Empty {
        buf.put_i32(-1);
    } else {
        let topics = group_by_topic(txn.partitions.iter().map(|(t, p)| (t.as_str(), *p)));
        buf.put_i32(count(topics.len()));
        for (topic, partitions) in topics {
            put_str(&mut buf, topic);
            buf.put_i32(count(partitions.len()));
            partitions.iter().for_each(|p| buf.put_i32(*p));
        }
    }
    buf.put_i64(txn.last_update_ms);
    buf.put_i64(txn.start_ms);
    buf.freeze()
}

/// Groups sorted (topic, partition) pairs by topic, keeping order.
pub(crate) fn group_by_topic<'a>(
    pairs: impl Iterator<Item = (&'a str, i32)>,
) -> Vec<(&'a str, Vec<i32>)> {
    let mut out: Vec<(&str, Vec<i32>)> = Vec::new();
    for (topic, partition) in pairs {
        match out.last_mut() {
            Some((t, ps)) if *t == topic => ps.push(partition),
            _ => out.push((topic, vec![partition])),
        }
    }
    out
}

pub fn decode_key(key: &[u8]) -> Result<String, TxnRecordError> {
    let mut r = Reader {
        buf: key,
        flexible: false,
    };
    let version = r.i16("key version")?;
    if version != KEY_VERSION {
        return Err(TxnRecordError::UnsupportedVersion {
            what: "key",
            version,
        });
    }
    r.string("transactional_id")
}

pub fn decode_value(value: &[u8]) -> Result<TxnLogValue, TxnRecordError> {
    let mut r = Reader {
        buf: value,
        flexible: false,
    };
    let version = r.i16("value version")?;
    if !(0..=1).contains(&version) {
        return Err(TxnRecordError::UnsupportedVersion {
            what: "value",
            version,
        });
    }
    r.flexible = version >= 1;
    let producer_id = r.i64("producer_id")?;
    let producer_epoch = r.i16("producer_epoch")?;
    let timeout_ms = r.i32("transaction_timeout_ms")?;
    let raw_status = r.i8("transaction_status")?;
    let status = TxnStatus::from_id(raw_status)
        .ok_or(TxnRecordError::UnknownStatus { status: raw_status })?;
    let partitions = match r.array_len("transaction_partitions")? {
        None => None,
        Some(n) => Some(
            (0..n)
                .map(|_| r.topic_partitions())
                .collect::<Result<_, _>>()?,
        ),
    };
    let last_update_ms = r.i64("transaction_last_update_timestamp_ms")?;
    let start_ms = r.i64("transaction_start_timestamp_ms")?;
    // v1's tagged fields (previous/next producer id, client transaction version) are not used.
    Ok(TxnLogValue {
        producer_id,
        producer_epoch,
        timeout_ms,
        status,
        partitions,
        last_update_ms,
        start_ms,
    })
}

/// One uncompressed v2 record batch (base offset 0, CRC set) holding `records`, for the broker
/// to append to `__transaction_state`.
pub fn encode_batch(records: &[(Bytes, Option<Bytes>)], timestamp_ms: i64) -> Bytes {
    let records: Vec<crate::records::OffsetsRecord> = records
        .iter()
        .map(|(key, value)| crate::records::OffsetsRecord {
            key: key.clone(),
            value: value.clone(),
        })
        .collect();
    crate::records::encode_batch(&records, timestamp_ms)
}

struct Reader<'a> {
    buf: &'a [u8],
    /// TransactionLogValue v1+: compact lengths and tagged fields.
    flexible: bool,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], TxnRecordError> {
        if self.buf.len() < n {
            return Err(TxnRecordError::Truncated { field });
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], TxnRecordError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, field)?);
        Ok(a)
    }

    fn i8(&mut self, field: &'static str) -> Result<i8, TxnRecordError> {
        Ok(i8::from_be_bytes(self.array(field)?))
    }

    fn i16(&mut self, field: &'static str) -> Result<i16, TxnRecordError> {
        Ok(i16::from_be_bytes(self.array(field)?))
    }

    fn i32(&mut self, field: &'static str) -> Result<i32, TxnRecordError> {
        Ok(i32::from_be_bytes(self.array(field)?))
    }

    fn i64(&mut self, field: &'static str) -> Result<i64, TxnRecordError> {
        Ok(i64::from_be_bytes(self.array(field)?))
    }

    fn uvarint(&mut self, field: &'static str) -> Result<u32, TxnRecordError> {
        let mut value = 0u32;
        for shift in (0..35).step_by(7) {
            let b = self.i8(field)? as u8;
            value |= u32::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(TxnRecordError::Truncated { field })
    }

    /// A length: i16/i32 classic, or unsigned varint N+1 when flexible. None = null.
    fn len(
        &mut self,
        field: &'static str,
        classic_i16: bool,
    ) -> Result<Option<usize>, TxnRecordError> {
        let len = if self.flexible {
            i64::from(self.uvarint(field)?) - 1
        } else if classic_i16 {
            i64::from(self.i16(field)?)
        } else {
            i64::from(self.i32(field)?)
        };
        // A negative length is null; bound the rest by what is left (no huge pre-allocation).
        match usize::try_from(len) {
            Err(_) => Ok(None),
            Ok(n) if n > self.buf.len() => Err(TxnRecordError::Truncated { field }),
            Ok(n) => Ok(Some(n)),
        }
    }

    fn string(&mut self, field: &'static str) -> Result<String, TxnRecordError> {
        let len = self
            .len(field, true)?
            .ok_or(TxnRecordError::UnexpectedNull { field })?;
        let raw = self.take(len, field)?;
        let s = std::str::from_utf8(raw).map_err(|_| TxnRecordError::InvalidUtf8 { field })?;
        Ok(s.to_owned())
    }

    fn array_len(&mut self, field: &'static str) -> Result<Option<usize>, TxnRecordError> {
        self.len(field, false)
    }

    fn topic_partitions(&mut self) -> Result<(String, Vec<i32>), TxnRecordError> {
        let topic = self.string("topic")?;
        let n = self
            .array_len("partition_ids")?
            .ok_or(TxnRecordError::UnexpectedNull {
                field: "partition_ids",
            })?;
        let partitions = (0..n)
            .map(|_| self.i32("partition_ids"))
            .collect::<Result<_, _>>()?;
        self.skip_tagged_fields()?;
        Ok((topic, partitions))
    }

    fn skip_tagged_fields(&mut self) -> Result<(), TxnRecordError> {
        if !self.flexible {
            return Ok(());
        }
        let n = self.uvarint("tagged fields")?;
        for _ in 0..n {
            self.uvarint("tag")?;
            let size = self.uvarint("tagged field size")? as usize;
            self.take(size, "tagged field")?;
        }
        Ok(())
    }
}
