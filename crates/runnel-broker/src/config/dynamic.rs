//! Dynamic broker configuration: values set at run time with AlterConfigs or
//! IncrementalAlterConfigs, for all brokers (resource name "") or for this one (its node id),
//! layered over the static configuration and persisted in `<data>/dynamic-broker.properties`.
//! Only the broker defaults of topic configs are dynamic, as in Kafka's `kafka-configs
//! --entity-type brokers` for log settings.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::topic::TOPIC_KEYS;
use super::{parse_properties, ConfigError, ConfigSource, RawConfig};
use crate::storage::write_atomically;

const FILE_NAME: &str = "dynamic-broker.properties";
const DEFAULT_PREFIX: &str = "default.";
const BROKER_PREFIX: &str = "broker.";

/// Which dynamic layer a change targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// Resource name "": every broker's default.
    ClusterDefault,
    /// Resource name = this node's id.
    ThisBroker,
}

#[derive(Debug, Clone)]
pub struct DynamicConfig {
    path: PathBuf,
    static_config: RawConfig,
    cluster_default: BTreeMap<String, String>,
    this_broker: BTreeMap<String, String>,
}

/// Whether `name` may be changed at run time.
pub fn is_dynamic(name: &str) -> bool {
    TOPIC_KEYS
        .iter()
        .flat_map(|key| key.synonyms)
        .any(|synonym| synonym.key == name)
}

impl DynamicConfig {
    /// Loads the persisted dynamic layers over `static_config`.
    pub fn load(data_dir: &Path, static_config: RawConfig) -> Result<DynamicConfig, ConfigError> {
        let path = data_dir.join(FILE_NAME);
        let mut config = DynamicConfig {
            path: path.clone(),
            static_config,
            cluster_default: BTreeMap::new(),
            this_broker: BTreeMap::new(),
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(config),
            Err(error) => return Err(ConfigError::Read { path, error }),
        };
        let pairs = parse_properties(&text).map_err(|error| ConfigError::Syntax {
            path: path.clone(),
            error,
        })?;
        for (key, value) in pairs {
            if let Some(name) = key.strip_prefix(DEFAULT_PREFIX) {
                config.cluster_default.insert(name.to_string(), value);
            } else if let Some(name) = key.strip_prefix(BROKER_PREFIX) {
                config.this_broker.insert(name.to_string(), value);
            }
        }
        config.effective()?;
        Ok(config)
    }

    /// Static configuration with the dynamic layers applied (this broker's over the default).
    pub fn effective(&self) -> Result<RawConfig, ConfigError> {
        let mut raw = self.static_config.clone();
        for (name, value) in &self.cluster_default {
            raw.set(name, value, ConfigSource::DynamicDefault)?;
        }
        for (name, value) in &self.this_broker {
            raw.set(name, value, ConfigSource::DynamicBroker)?;
        }
        Ok(raw)
    }

    pub fn layer(&self, layer: Layer) -> &BTreeMap<String, String> {
        match layer {
            Layer::ClusterDefault => &self.cluster_default,
            Layer::ThisBroker => &self.this_broker,
        }
    }

    /// Replaces a layer after checking every key is dynamic and every value valid; returns the
    /// new effective configuration. Nothing changes on error.
    pub fn replace_layer(
        &mut self,
        layer: Layer,
        values: BTreeMap<String, String>,
    ) -> Result<RawConfig, String> {
        if let Some(name) = values.keys().find(|name| !is_dynamic(name)) {
            return Err(format!(
                "Cannot update {name} dynamically; it is not a dynamic broker config"
            ));
        }
        let mut candidate = self.clone();
        match layer {
            Layer::ClusterDefault => candidate.cluster_default = values,
            Layer::ThisBroker => candidate.this_broker = values,
        }
        let effective = candidate.effective().map_err(|e| e.to_string())?;
        *self = candidate;
        Ok(effective)
    }

    /// Writes both layers to disk.
    pub fn persist(&self) -> std::io::Result<()> {
        let mut text =
            String::from("#Written by runnel; change with kafka-configs or AlterConfigs.\n");
        for (name, value) in &self.cluster_default {
            text.push_str(&format!("{DEFAULT_PREFIX}{name}={value}\n"));
        }
        for (name, value) in &self.this_broker {
            text.push_str(&format!("{BROKER_PREFIX}{name}={value}\n"));
        }
        write_atomically(&self.path, text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_apply_in_order_and_survive_reload() {
        let dir = tempfile::tempdir().unwrap();
        let mut dynamic = DynamicConfig::load(dir.path(), RawConfig::default()).unwrap();
        let set = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        dynamic
            .replace_layer(Layer::ClusterDefault, set(&[("log.segment.bytes", "2000")]))
            .unwrap();
        let effective = dynamic
            .replace_layer(Layer::ThisBroker, set(&[("log.segment.bytes", "3000")]))
            .unwrap();
        assert_eq!(
            effective.get_with_source("log.segment.bytes"),
            Some(("3000", ConfigSource::DynamicBroker))
        );
        dynamic.persist().unwrap();
        let reloaded = DynamicConfig::load(dir.path(), RawConfig::default()).unwrap();
        assert_eq!(
            reloaded.effective().unwrap().get("log.segment.bytes"),
            Some("3000")
        );
    }

    #[test]
    fn static_only_keys_and_bad_values_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut dynamic = DynamicConfig::load(dir.path(), RawConfig::default()).unwrap();
        let one = |k: &str, v: &str| BTreeMap::from([(k.to_string(), v.to_string())]);
        assert!(dynamic
            .replace_layer(Layer::ThisBroker, one("node.id", "3"))
            .is_err());
        assert!(dynamic
            .replace_layer(Layer::ThisBroker, one("log.segment.bytes", "abc"))
            .is_err());
        assert_eq!(
            dynamic.effective().unwrap().get("log.segment.bytes"),
            Some("1073741824")
        );
    }
}
