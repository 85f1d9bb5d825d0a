//! The broker configuration keys Runnel implements, with Kafka's names, defaults and bounds.
//! A key not in this table is refused at start: a silently ignored setting is worse than none.

/// How a value is parsed and checked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// An integer within `min..=max`.
    Int {
        min: i64,
        max: i64,
    },
    Bool,
    /// A decimal number within `min..=max`.
    Double {
        min: f64,
        max: f64,
    },
    /// One of the listed words.
    Choice(&'static [&'static str]),
    /// A comma-separated, non-empty list of the listed words.
    ChoiceList(&'static [&'static str]),
    /// Free text (paths, listener lists); checked where it is used.
    Text,
}

/// One configuration key.
#[derive(Debug, Clone, Copy)]
pub struct KeyDef {
    pub name: &'static str,
    /// `None` when the key has no value unless set (Kafka's `null` defaults).
    pub default: Option<&'static str>,
    pub kind: Kind,
    pub doc: &'static str,
}

const fn int(
    name: &'static str,
    default: Option<&'static str>,
    min: i64,
    max: i64,
    doc: &'static str,
) -> KeyDef {
    KeyDef {
        name,
        default,
        kind: Kind::Int { min, max },
        doc,
    }
}

const I32_MAX: i64 = i32::MAX as i64;

pub const BROKER_KEYS: &[KeyDef] = &[
    int(
        "node.id",
        Some("0"),
        0,
        I32_MAX,
        "This broker's id in the cluster.",
    ),
    KeyDef {
        name: "log.dirs",
        default: Some("./runnel-data"),
        kind: Kind::Text,
        doc: "Directory holding the partition logs and broker metadata.",
    },
    KeyDef {
        name: "listeners",
        default: Some("PLAINTEXT://127.0.0.1:9092"),
        kind: Kind::Text,
        doc: "Address the broker listens on, as PLAINTEXT://host:port.",
    },
    KeyDef {
        name: "advertised.listeners",
        default: None,
        kind: Kind::Text,
        doc: "Address given to clients in Metadata; defaults to the listener.",
    },
    int(
        "num.partitions",
        Some("1"),
        1,
        I32_MAX,
        "Partitions of an auto-created topic or of CreateTopics with -1.",
    ),
    int(
        "default.replication.factor",
        Some("1"),
        1,
        i16::MAX as i64,
        "Replication factor for CreateTopics with -1 and auto-created topics.",
    ),
    KeyDef {
        name: "auto.create.topics.enable",
        default: Some("true"),
        kind: Kind::Bool,
        doc: "Create a topic when a client asks for metadata of, or produces to, an unknown one.",
    },
    int(
        "message.max.bytes",
        Some("1048588"),
        0,
        I32_MAX,
        "Largest record batch the broker accepts.",
    ),
    int(
        "log.segment.bytes",
        Some("1073741824"),
        14,
        I32_MAX,
        "Size at which a log segment is rolled.",
    ),
    int(
        "log.roll.ms",
        None,
        1,
        i64::MAX,
        "Age at which a log segment is rolled; overrides log.roll.hours.",
    ),
    int(
        "log.roll.hours",
        Some("168"),
        1,
        I32_MAX,
        "Age in hours at which a log segment is rolled.",
    ),
    int(
        "log.index.interval.bytes",
        Some("4096"),
        0,
        I32_MAX,
        "Bytes of log between two offset index entries.",
    ),
    int(
        "log.index.size.max.bytes",
        Some("10485760"),
        4,
        I32_MAX,
        "Largest offset index; the segment rolls when it is full.",
    ),
    int(
        "log.flush.interval.messages",
        Some("9223372036854775807"),
        1,
        i64::MAX,
        "Records appended before the log is fsynced (1 = fsync before every acknowledgement).",
    ),
    int(
        "log.flush.interval.ms",
        Some("9223372036854775807"),
        0,
        i64::MAX,
        "Oldest unflushed data age before the log is fsynced.",
    ),
    int(
        "group.min.session.timeout.ms",
        Some("6000"),
        0,
        I32_MAX,
        "Shortest session timeout a group member may ask for.",
    ),
    int(
        "group.max.session.timeout.ms",
        Some("1800000"),
        0,
        I32_MAX,
        "Longest session timeout a group member may ask for.",
    ),
    int(
        "group.initial.rebalance.delay.ms",
        Some("3000"),
        0,
        I32_MAX,
        "Wait for more members before the first rebalance of an empty group.",
    ),
    int(
        "group.max.size",
        Some("2147483647"),
        1,
        I32_MAX,
        "Most members a consumer group may have.",
    ),
    int(
        "offsets.topic.num.partitions",
        Some("50"),
        1,
        I32_MAX,
        "Partitions of __consumer_offsets (fixed once the topic exists).",
    ),
    int(
        "offsets.topic.segment.bytes",
        Some("104857600"),
        14,
        I32_MAX,
        "Segment size of __consumer_offsets.",
    ),
    int(
        "offsets.retention.minutes",
        Some("10080"),
        1,
        I32_MAX,
        "How long offsets of an empty group are kept.",
    ),
    int(
        "offsets.retention.check.interval.ms",
        Some("600000"),
        1,
        i64::MAX,
        "How often expired offsets are looked for.",
    ),
    int(
        "offset.metadata.max.bytes",
        Some("4096"),
        0,
        I32_MAX,
        "Largest metadata string of an offset commit.",
    ),
    int(
        "log.retention.ms",
        None,
        -1,
        i64::MAX,
        "Age after which old log segments are deleted (-1 = forever); overrides minutes and hours.",
    ),
    int(
        "log.retention.minutes",
        None,
        -1,
        I32_MAX,
        "Age in minutes after which old log segments are deleted; overrides hours.",
    ),
    int(
        "log.retention.hours",
        Some("168"),
        -1,
        I32_MAX,
        "Age in hours after which old log segments are deleted.",
    ),
    int(
        "log.retention.bytes",
        Some("-1"),
        -1,
        i64::MAX,
        "Partition size above which old segments are deleted (-1 = no limit).",
    ),
    int(
        "log.retention.check.interval.ms",
        Some("300000"),
        1,
        i64::MAX,
        "How often retention is applied.",
    ),
    KeyDef {
        name: "log.cleanup.policy",
        default: Some("delete"),
        kind: Kind::ChoiceList(&["delete", "compact"]),
        doc: "Default cleanup policy of topics: delete, compact, or both.",
    },
    int(
        "log.cleaner.delete.retention.ms",
        Some("86400000"),
        0,
        i64::MAX,
        "How long the cleaner keeps tombstones.",
    ),
    KeyDef {
        name: "log.cleaner.min.cleanable.ratio",
        default: Some("0.5"),
        kind: Kind::Double { min: 0.0, max: 1.0 },
        doc: "Dirty share of a log that makes it eligible for cleaning.",
    },
    int(
        "log.cleaner.min.compaction.lag.ms",
        Some("0"),
        0,
        i64::MAX,
        "Records younger than this are never compacted.",
    ),
    int(
        "log.cleaner.max.compaction.lag.ms",
        Some("9223372036854775807"),
        1,
        i64::MAX,
        "Dirty records older than this force a clean.",
    ),
    int(
        "log.cleaner.backoff.ms",
        Some("15000"),
        1,
        i64::MAX,
        "Pause between cleaner passes when nothing is dirty enough.",
    ),
    KeyDef {
        name: "compression.type",
        default: Some("producer"),
        kind: Kind::Choice(&["producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"]),
        doc: "Default codec topics store batches with; producer keeps what was sent.",
    },
    KeyDef {
        name: "log.message.timestamp.type",
        default: Some("CreateTime"),
        kind: Kind::Choice(&["CreateTime", "LogAppendTime"]),
        doc: "Default timestamp type of topics.",
    },
    int(
        "transaction.max.timeout.ms",
        Some("900000"),
        1,
        I32_MAX,
        "Largest transaction timeout a producer may ask for.",
    ),
    int(
        "transactional.id.expiration.ms",
        Some("604800000"),
        1,
        I32_MAX,
        "Idle transactional ids are forgotten after this long.",
    ),
    int(
        "transaction.abort.timed.out.transaction.cleanup.interval.ms",
        Some("10000"),
        1,
        I32_MAX,
        "How often timed-out transactions are looked for and aborted.",
    ),
    int(
        "transaction.remove.expired.transaction.cleanup.interval.ms",
        Some("3600000"),
        1,
        I32_MAX,
        "How often expired transactional ids are removed.",
    ),
    int(
        "transaction.state.log.num.partitions",
        Some("50"),
        1,
        I32_MAX,
        "Partitions of __transaction_state (fixed once the topic exists).",
    ),
    int(
        "producer.id.expiration.ms",
        Some("86400000"),
        1,
        I32_MAX,
        "Idle producer state (idempotence) is forgotten after this long.",
    ),
    int(
        "socket.request.max.bytes",
        Some("104857600"),
        1,
        I32_MAX,
        "Largest request frame; a larger one closes the connection.",
    ),
];

/// Old names Kafka still accepts for a key.
pub const ALIASES: &[(&str, &str)] = &[("broker.id", "node.id"), ("log.dir", "log.dirs")];

pub fn find_key(name: &str) -> Option<&'static KeyDef> {
    BROKER_KEYS.iter().find(|key| key.name == name)
}

/// The canonical name of `name`, resolving aliases.
pub fn canonical_name(name: &str) -> &str {
    ALIASES
        .iter()
        .find(|(alias, _)| *alias == name)
        .map_or(name, |(_, canonical)| canonical)
}

/// Checks `value` against the key's kind, returning an operator-readable reason on failure.
pub fn check_value(key: &KeyDef, value: &str) -> Result<(), String> {
    match key.kind {
        Kind::Int { min, max } => {
            let parsed: i64 = value.parse().map_err(|_| {
                format!(
                    "invalid value '{value}' for {}: expected an integer",
                    key.name
                )
            })?;
            if !(min..=max).contains(&parsed) {
                return Err(format!(
                    "invalid value '{value}' for {}: must be between {min} and {max}",
                    key.name
                ));
            }
            Ok(())
        }
        Kind::Bool => match value {
            "true" | "false" => Ok(()),
            _ => Err(format!(
                "invalid value '{value}' for {}: expected true or false",
                key.name
            )),
        },
        Kind::Double { min, max } => match value.parse::<f64>() {
            Ok(parsed) if (min..=max).contains(&parsed) => Ok(()),
            _ => Err(format!(
                "invalid value '{value}' for {}: expected a number between {min} and {max}",
                key.name
            )),
        },
        Kind::Choice(words) => check_words(key, value, words, false),
        Kind::ChoiceList(words) => check_words(key, value, words, true),
        Kind::Text => Ok(()),
    }
}

fn check_words(key: &KeyDef, value: &str, words: &[&str], list: bool) -> Result<(), String> {
    let items: Vec<&str> = if list {
        value.split(',').map(str::trim).collect()
    } else {
        vec![value]
    };
    if !items.is_empty() && items.iter().all(|item| words.contains(item)) {
        return Ok(());
    }
    let expected = if list {
        "a comma-separated list of"
    } else {
        "one of"
    };
    Err(format!(
        "invalid value '{value}' for {}: expected {expected} {}",
        key.name,
        words.join(", ")
    ))
}
