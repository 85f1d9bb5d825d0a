//! Per-topic configuration: the overrides a topic was given, on top of defaults that come from
//! the broker's configuration through Kafka's synonyms (`segment.bytes` <- `log.segment.bytes`,
//! `segment.ms` <- `log.roll.ms` <- `log.roll.hours`, ...). Only keys the log implements are
//! accepted; anything else is refused with INVALID_CONFIG, so a client never believes a
//! setting took effect when it did not.

use std::collections::BTreeMap;

use runnel_log::config::{CleanupPolicy, TimestampType, TopicCompression};
use runnel_log::LogConfig;

use super::keys::{check_value, KeyDef, Kind};
use super::{ConfigSource, RawConfig};

/// A broker key that supplies a topic key's default, and the factor that converts its unit
/// (hours to milliseconds, for example).
#[derive(Debug, Clone, Copy)]
pub struct Synonym {
    pub key: &'static str,
    pub scale: i64,
}

const fn same(key: &'static str) -> Synonym {
    Synonym { key, scale: 1 }
}

/// One topic-level key.
pub struct TopicKey {
    pub def: KeyDef,
    /// Broker keys supplying the default, most specific first (Kafka's synonym order).
    pub synonyms: &'static [Synonym],
    /// Sets the key's (validated) value on a log configuration.
    apply: fn(&mut LogConfig, &str),
}

const fn key(
    name: &'static str,
    kind: Kind,
    doc: &'static str,
    synonyms: &'static [Synonym],
    apply: fn(&mut LogConfig, &str),
) -> TopicKey {
    TopicKey {
        def: KeyDef {
            name,
            default: None,
            kind,
            doc,
        },
        synonyms,
        apply,
    }
}

/// A LONG key in Kafka's LogConfig.
const fn int(min: i64) -> Kind {
    Kind::Int { min, max: i64::MAX }
}

/// An INT key in Kafka's LogConfig: larger values are refused, and DescribeConfigs reports
/// the INT type.
const fn int32(min: i64) -> Kind {
    Kind::Int {
        min,
        max: i32::MAX as i64,
    }
}

fn number(value: &str) -> i64 {
    value.parse().expect("validated before it is applied")
}

pub const TOPIC_KEYS: &[TopicKey] = &[
    key(
        "segment.bytes",
        int32(14),
        "Segment size at which the log rolls.",
        &[same("log.segment.bytes")],
        |c, v| c.segment_bytes = number(v) as u64,
    ),
    key(
        "segment.ms",
        int(1),
        "Segment age at which the log rolls.",
        &[
            same("log.roll.ms"),
            Synonym {
                key: "log.roll.hours",
                scale: 3_600_000,
            },
        ],
        |c, v| c.segment_ms = number(v),
    ),
    key(
        "segment.index.bytes",
        int32(4),
        "Largest offset index of a segment.",
        &[same("log.index.size.max.bytes")],
        |c, v| c.segment_index_bytes = number(v) as u64,
    ),
    key(
        "index.interval.bytes",
        int32(0),
        "Bytes between offset index entries.",
        &[same("log.index.interval.bytes")],
        |c, v| c.index_interval_bytes = number(v) as u64,
    ),
    key(
        "flush.messages",
        int(1),
        "Records between fsyncs (1 = fsync before every acknowledgement).",
        &[same("log.flush.interval.messages")],
        |c, v| c.flush_messages = number(v) as u64,
    ),
    key(
        "flush.ms",
        int(0),
        "Age of unflushed data that forces an fsync.",
        &[same("log.flush.interval.ms")],
        |c, v| c.flush_ms = number(v) as u64,
    ),
    key(
        "max.message.bytes",
        int32(0),
        "Largest record batch accepted.",
        &[same("message.max.bytes")],
        |c, v| c.max_message_bytes = number(v) as u64,
    ),
    key(
        "retention.ms",
        int(-1),
        "Age after which old segments are deleted (-1 = forever); with cleanup.policy delete.",
        &[
            same("log.retention.ms"),
            Synonym {
                key: "log.retention.minutes",
                scale: 60_000,
            },
            Synonym {
                key: "log.retention.hours",
                scale: 3_600_000,
            },
        ],
        |c, v| c.retention_ms = number(v),
    ),
    key(
        "retention.bytes",
        int(-1),
        "Size above which old segments are deleted (-1 = no limit).",
        &[same("log.retention.bytes")],
        |c, v| c.retention_bytes = number(v),
    ),
    key(
        "cleanup.policy",
        Kind::ChoiceList(&["delete", "compact"]),
        "delete: retention removes old segments; compact: keep the latest record per key.",
        &[same("log.cleanup.policy")],
        |c, v| {
            c.cleanup_policy = CleanupPolicy {
                delete: v.split(',').any(|p| p.trim() == "delete"),
                compact: v.split(',').any(|p| p.trim() == "compact"),
            }
        },
    ),
    key(
        "delete.retention.ms",
        int(0),
        "How long tombstones are kept by the cleaner.",
        &[same("log.cleaner.delete.retention.ms")],
        |c, v| c.delete_retention_ms = number(v),
    ),
    key(
        "min.cleanable.dirty.ratio",
        Kind::Double { min: 0.0, max: 1.0 },
        "Dirty share of the log that makes it eligible for cleaning.",
        &[same("log.cleaner.min.cleanable.ratio")],
        |c, v| c.min_cleanable_dirty_ratio = v.parse().expect("validated"),
    ),
    key(
        "min.compaction.lag.ms",
        int(0),
        "Records younger than this are never compacted.",
        &[same("log.cleaner.min.compaction.lag.ms")],
        |c, v| c.min_compaction_lag_ms = number(v),
    ),
    key(
        "max.compaction.lag.ms",
        int(1),
        "A log whose oldest dirty record is older than this is cleaned whatever its dirty ratio.",
        &[same("log.cleaner.max.compaction.lag.ms")],
        |c, v| c.max_compaction_lag_ms = number(v),
    ),
    key(
        "compression.type",
        Kind::Choice(&["producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"]),
        "Codec batches are stored with; producer keeps what the producer sent.",
        &[same("compression.type")],
        |c, v| {
            c.compression = match v {
                "uncompressed" => TopicCompression::Uncompressed,
                "gzip" => TopicCompression::Gzip,
                "snappy" => TopicCompression::Snappy,
                "lz4" => TopicCompression::Lz4,
                "zstd" => TopicCompression::Zstd,
                _ => TopicCompression::Producer,
            }
        },
    ),
    key(
        "message.timestamp.type",
        Kind::Choice(&["CreateTime", "LogAppendTime"]),
        "CreateTime keeps the producer's timestamps; LogAppendTime stamps batches on append.",
        &[same("log.message.timestamp.type")],
        |c, v| {
            c.timestamp_type = if v == "LogAppendTime" {
                TimestampType::LogAppendTime
            } else {
                TimestampType::CreateTime
            }
        },
    ),
];

pub fn find_topic_key(name: &str) -> Option<&'static TopicKey> {
    TOPIC_KEYS.iter().find(|key| key.def.name == name)
}

/// The broker-supplied default of `key`: its value in the topic key's unit, the broker key it
/// came from and that key's source. None when no synonym has a value (Kafka's null default).
pub fn broker_default(
    key: &TopicKey,
    broker: &RawConfig,
) -> Option<(String, &'static str, ConfigSource)> {
    key.synonyms.iter().find_map(|synonym| {
        let (value, source) = broker.get_with_source(synonym.key)?;
        let value = if synonym.scale == 1 {
            value.to_string()
        } else {
            (number(value) * synonym.scale).to_string()
        };
        Some((value, synonym.key, source))
    })
}

/// The log configuration every topic without overrides gets.
pub fn log_defaults(broker: &RawConfig) -> LogConfig {
    TopicConfig::default().log_config(broker)
}

/// A topic's explicit overrides, validated. Keys absent here follow the broker defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicConfig {
    overrides: BTreeMap<String, String>,
}

impl TopicConfig {
    /// Validates `pairs`; the error is the message for the client's INVALID_CONFIG.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<TopicConfig, String> {
        let mut config = TopicConfig::default();
        for (name, value) in pairs {
            config.set(name, value)?;
        }
        Ok(config)
    }

    /// Sets one override after validating it.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), String> {
        let key = find_topic_key(name)
            .ok_or_else(|| format!("Unknown or unsupported topic config '{name}'"))?;
        check_value(&key.def, value)?;
        self.overrides.insert(name.to_string(), value.to_string());
        Ok(())
    }

    /// Removes one override (the key then follows the broker default).
    pub fn remove(&mut self, name: &str) -> Result<(), String> {
        find_topic_key(name)
            .ok_or_else(|| format!("Unknown or unsupported topic config '{name}'"))?;
        self.overrides.remove(name);
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.overrides.get(name).map(String::as_str)
    }

    pub fn overrides(&self) -> impl Iterator<Item = (&str, &str)> {
        self.overrides.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The log configuration: broker defaults (through synonyms) with this topic's overrides.
    pub fn log_config(&self, broker: &RawConfig) -> LogConfig {
        let mut config = LogConfig::default();
        for key in TOPIC_KEYS {
            let value = match self.overrides.get(key.def.name) {
                Some(value) => Some(value.clone()),
                None => broker_default(key, broker).map(|(value, _, _)| value),
            };
            if let Some(value) = value {
                (key.apply)(&mut config, &value);
            }
        }
        // A broker-wide setting with no topic-level key in Kafka.
        if let Some(ms) = broker.get("producer.id.expiration.ms") {
            config.producer_id_expiration_ms = number(ms);
        }
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_apply_on_top_of_broker_defaults() {
        let mut broker = RawConfig::default();
        broker
            .set("log.roll.hours", "2", ConfigSource::ConfigFile)
            .unwrap();
        let config =
            TopicConfig::from_pairs([("segment.bytes", "1024"), ("flush.messages", "1")]).unwrap();
        let log = config.log_config(&broker);
        assert_eq!(log.segment_bytes, 1024);
        assert_eq!(log.flush_messages, 1);
        assert_eq!(
            log.segment_ms, 7_200_000,
            "log.roll.hours is converted to ms"
        );
        assert_eq!(log.max_message_bytes, 1_048_588);
    }

    #[test]
    fn the_most_specific_synonym_wins() {
        let mut broker = RawConfig::default();
        broker
            .set("log.roll.ms", "5000", ConfigSource::Override)
            .unwrap();
        let key = find_topic_key("segment.ms").unwrap();
        assert_eq!(
            broker_default(key, &broker),
            Some(("5000".to_string(), "log.roll.ms", ConfigSource::Override))
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        assert!(TopicConfig::from_pairs([("retention.bytes.typo", "1")])
            .unwrap_err()
            .contains("retention.bytes.typo"));
        assert!(TopicConfig::from_pairs([("segment.bytes", "abc")]).is_err());
        assert!(TopicConfig::from_pairs([("segment.bytes", "3")]).is_err());
    }
}
