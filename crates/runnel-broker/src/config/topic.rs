//! Per-topic configuration: the overrides a topic was created with, on top of the broker's
//! `log.*` defaults. Only keys the log implements are accepted; anything else is refused with
//! INVALID_CONFIG so a client never believes a setting took effect when it did not.

use std::collections::BTreeMap;

use runnel_log::LogConfig;

use super::keys::{check_value, KeyDef, Kind};

const fn topic_int(name: &'static str, min: i64, doc: &'static str) -> KeyDef {
    KeyDef {
        name,
        default: None,
        kind: Kind::Int { min, max: i64::MAX },
        doc,
    }
}

pub const TOPIC_KEYS: &[KeyDef] = &[
    topic_int("segment.bytes", 14, "Segment size at which the log rolls."),
    topic_int("segment.ms", 1, "Segment age at which the log rolls."),
    topic_int(
        "segment.index.bytes",
        4,
        "Largest offset index of a segment.",
    ),
    topic_int(
        "index.interval.bytes",
        0,
        "Bytes between offset index entries.",
    ),
    topic_int(
        "flush.messages",
        1,
        "Records between fsyncs (1 = fsync before every acknowledgement).",
    ),
    topic_int("flush.ms", 0, "Age of unflushed data that forces an fsync."),
    topic_int("max.message.bytes", 0, "Largest record batch accepted."),
];

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
        let mut overrides = BTreeMap::new();
        for (name, value) in pairs {
            let key = TOPIC_KEYS
                .iter()
                .find(|key| key.name == name)
                .ok_or_else(|| format!("Unknown or unsupported topic config '{name}'"))?;
            check_value(key, value)?;
            overrides.insert(name.to_string(), value.to_string());
        }
        Ok(TopicConfig { overrides })
    }

    pub fn overrides(&self) -> impl Iterator<Item = (&str, &str)> {
        self.overrides.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The log configuration: broker defaults with this topic's overrides applied.
    pub fn log_config(&self, defaults: &LogConfig) -> LogConfig {
        let int = |name: &str| {
            self.overrides
                .get(name)
                .map(|v| v.parse::<i64>().expect("validated"))
        };
        let mut config = defaults.clone();
        if let Some(v) = int("segment.bytes") {
            config.segment_bytes = v as u64;
        }
        if let Some(v) = int("segment.ms") {
            config.segment_ms = v;
        }
        if let Some(v) = int("segment.index.bytes") {
            config.segment_index_bytes = v as u64;
        }
        if let Some(v) = int("index.interval.bytes") {
            config.index_interval_bytes = v as u64;
        }
        if let Some(v) = int("flush.messages") {
            config.flush_messages = v as u64;
        }
        if let Some(v) = int("flush.ms") {
            config.flush_ms = v as u64;
        }
        if let Some(v) = int("max.message.bytes") {
            config.max_message_bytes = v as u64;
        }
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_apply_on_top_of_broker_defaults() {
        let config =
            TopicConfig::from_pairs([("segment.bytes", "1024"), ("flush.messages", "1")]).unwrap();
        let log = config.log_config(&LogConfig::default());
        assert_eq!(log.segment_bytes, 1024);
        assert_eq!(log.flush_messages, 1);
        assert_eq!(
            log.max_message_bytes,
            LogConfig::default().max_message_bytes
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
