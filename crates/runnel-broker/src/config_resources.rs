//! Configs as the Admin API sees them: topic and broker resources, each key with its value,
//! source, type and synonyms (DescribeConfigs), and changes to them (AlterConfigs,
//! IncrementalAlterConfigs) validated before anything is applied.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsSynonym,
};
use kafka_protocol::protocol::StrBytes;

use crate::config::dynamic::{is_dynamic, Layer};
use crate::config::topic::{broker_default, find_topic_key, TopicConfig, TOPIC_KEYS};
use crate::config::{find_key, ConfigSource, KeyDef, Kind, RawConfig, BROKER_KEYS};
use crate::topics::Topic;

pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;
/// Kafka's source code for a topic override.
const SOURCE_TOPIC: i8 = 1;

pub type Refusal = (ResponseError, String);

/// What DescribeConfigs should include.
pub struct DescribeOptions<'a> {
    pub keys: Option<&'a [StrBytes]>,
    pub synonyms: bool,
    pub documentation: bool,
}

impl DescribeOptions<'_> {
    fn wants(&self, name: &str) -> bool {
        self.keys
            .is_none_or(|keys| keys.iter().any(|k| k.as_str() == name))
    }
}

/// Every topic key: the override, else the broker default through its synonyms.
pub fn describe_topic(
    topic: &Topic,
    broker: &RawConfig,
    options: &DescribeOptions,
) -> Vec<DescribeConfigsResourceResult> {
    describe_topic_config(&topic.config, broker, options)
}

/// Every topic key of a topic with `config` (existing or about to be created).
pub fn describe_topic_config(
    config: &TopicConfig,
    broker: &RawConfig,
    options: &DescribeOptions,
) -> Vec<DescribeConfigsResourceResult> {
    TOPIC_KEYS
        .iter()
        .filter(|key| options.wants(key.def.name))
        .map(|key| {
            let default = broker_default(key, broker);
            let (value, source) = match config.get(key.def.name) {
                Some(value) => (Some(value.to_string()), SOURCE_TOPIC),
                None => match &default {
                    Some((value, _, source)) => (Some(value.clone()), source.kafka_code()),
                    None => (None, ConfigSource::Default.kafka_code()),
                },
            };
            let mut synonyms = Vec::new();
            if options.synonyms {
                if let Some(value) = config.get(key.def.name) {
                    synonyms.push(synonym(key.def.name, Some(value), SOURCE_TOPIC));
                }
                for broker_key in key.synonyms {
                    if let Some((value, source)) = broker.get_with_source(broker_key.key) {
                        synonyms.push(synonym(broker_key.key, Some(value), source.kafka_code()));
                    }
                }
            }
            entry(&key.def, value, source, false, synonyms, options)
        })
        .collect()
}

/// Every broker key with its effective value and where it came from.
pub fn describe_broker(
    broker: &RawConfig,
    options: &DescribeOptions,
) -> Vec<DescribeConfigsResourceResult> {
    BROKER_KEYS
        .iter()
        .filter(|key| options.wants(key.name))
        .map(|key| {
            let (value, source) = match broker.get_with_source(key.name) {
                Some((value, source)) => (Some(value.to_string()), source.kafka_code()),
                None => (None, ConfigSource::Default.kafka_code()),
            };
            let synonyms = if options.synonyms {
                vec![synonym(key.name, value.as_deref(), source)]
            } else {
                Vec::new()
            };
            entry(key, value, source, !is_dynamic(key.name), synonyms, options)
        })
        .collect()
}

/// The cluster-wide default resource (broker ""): only the dynamic default configs, as
/// Kafka's `currentDynamicDefaultConfigs`, each with that source and synonym.
pub fn describe_cluster_default(
    layer: &BTreeMap<String, String>,
    options: &DescribeOptions,
) -> Vec<DescribeConfigsResourceResult> {
    let source = ConfigSource::DynamicDefault.kafka_code();
    BROKER_KEYS
        .iter()
        .filter(|key| options.wants(key.name))
        .filter_map(|key| {
            let value = layer.get(key.name)?;
            let synonyms = if options.synonyms {
                vec![synonym(key.name, Some(value), source)]
            } else {
                Vec::new()
            };
            Some(entry(
                key,
                Some(value.clone()),
                source,
                !is_dynamic(key.name),
                synonyms,
                options,
            ))
        })
        .collect()
}

fn entry(
    key: &KeyDef,
    value: Option<String>,
    source: i8,
    read_only: bool,
    synonyms: Vec<DescribeConfigsSynonym>,
    options: &DescribeOptions,
) -> DescribeConfigsResourceResult {
    DescribeConfigsResourceResult::default()
        .with_name(StrBytes::from_static_str(key.name))
        .with_value(value.map(StrBytes::from_string))
        .with_read_only(read_only)
        .with_config_source(source)
        .with_synonyms(synonyms)
        .with_config_type(config_type(key.kind))
        .with_documentation(
            options
                .documentation
                .then(|| StrBytes::from_static_str(key.doc)),
        )
}

fn synonym(name: &str, value: Option<&str>, source: i8) -> DescribeConfigsSynonym {
    DescribeConfigsSynonym::default()
        .with_name(StrBytes::from_string(name.to_string()))
        .with_value(value.map(|v| StrBytes::from_string(v.to_string())))
        .with_source(source)
}

/// Kafka's ConfigType codes (DescribeConfigs v3+).
fn config_type(kind: Kind) -> i8 {
    match kind {
        Kind::Bool => 1,
        Kind::Text | Kind::Choice(_) => 2,
        Kind::Int { max, .. } if max <= i64::from(i32::MAX) => 3,
        Kind::Int { .. } => 5,
        Kind::Double { .. } => 6,
        Kind::ChoiceList(_) => 7,
    }
}

/// One requested change, as both alter APIs express it.
pub enum Change {
    Set(String, String),
    Delete(String),
    Append(String, String),
    Subtract(String, String),
}

/// Applies `changes` to a topic's overrides; `replace_all` drops overrides not set again
/// (legacy AlterConfigs semantics).
pub fn changed_topic_config(
    current: &TopicConfig,
    changes: &[Change],
    replace_all: bool,
) -> Result<TopicConfig, Refusal> {
    let mut config = if replace_all {
        TopicConfig::default()
    } else {
        current.clone()
    };
    let invalid = |message: String| (ResponseError::InvalidConfig, message);
    for change in changes {
        match change {
            Change::Set(name, value) => config.set(name, value).map_err(invalid)?,
            Change::Delete(name) => config.remove(name).map_err(invalid)?,
            Change::Append(name, value) | Change::Subtract(name, value) => {
                let list = list_change(config.get(name), change, value, name)?;
                config.set(name, &list).map_err(invalid)?;
            }
        }
    }
    Ok(config)
}

/// Applies `changes` to one dynamic broker layer.
pub fn changed_broker_layer(
    current: &BTreeMap<String, String>,
    changes: &[Change],
    replace_all: bool,
) -> Result<BTreeMap<String, String>, Refusal> {
    let mut layer = if replace_all {
        BTreeMap::new()
    } else {
        current.clone()
    };
    for change in changes {
        match change {
            Change::Set(name, value) => {
                layer.insert(name.clone(), value.clone());
            }
            Change::Delete(name) => {
                layer.remove(name);
            }
            Change::Append(name, value) | Change::Subtract(name, value) => {
                let list = list_change(layer.get(name).map(String::as_str), change, value, name)?;
                layer.insert(name.clone(), list);
            }
        }
    }
    Ok(layer)
}

/// Whether `name` (a topic or broker key) is a list, and its static default: the value
/// APPEND and SUBTRACT start from when the resource has none (Kafka's `getParts`).
fn list_key(name: &str) -> Option<Option<&'static str>> {
    let is_list = |kind: Kind| matches!(kind, Kind::ChoiceList(_));
    if let Some(key) = find_topic_key(name) {
        // A topic key's static default is its broker synonym's (`cleanup.policy` and
        // `log.cleanup.policy` both default to `delete`).
        return is_list(key.def.kind).then(|| {
            key.synonyms
                .iter()
                .find_map(|synonym| find_key(synonym.key)?.default)
        });
    }
    find_key(name)
        .filter(|key| is_list(key.kind))
        .map(|key| key.default)
}

/// APPEND/SUBTRACT on a list value (only `cleanup.policy`-like list keys accept them).
fn list_change(
    current: Option<&str>,
    change: &Change,
    value: &str,
    name: &str,
) -> Result<String, Refusal> {
    let Some(default) = list_key(name) else {
        return Err((
            ResponseError::InvalidConfig,
            format!("{name} is not a list: APPEND and SUBTRACT do not apply"),
        ));
    };
    let mut items: Vec<String> = current
        .or(default)
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match change {
            Change::Append(..) if !items.iter().any(|i| i == item) => items.push(item.to_string()),
            Change::Subtract(..) => items.retain(|i| i != item),
            _ => {}
        }
    }
    Ok(items.join(","))
}

/// The dynamic layer a broker resource name addresses.
pub fn broker_layer(resource_name: &str, node_id: i32) -> Result<Layer, Refusal> {
    match resource_name {
        "" => Ok(Layer::ClusterDefault),
        name if name == node_id.to_string() => Ok(Layer::ThisBroker),
        name => Err((
            ResponseError::InvalidRequest,
            format!("Unknown broker '{name}'"),
        )),
    }
}
