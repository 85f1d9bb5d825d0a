//! Broker configuration: Kafka's property names and defaults, layered as
//! defaults < `--config` file < `--override key=value` < command-line flags. Every value is
//! validated before the broker starts; an unknown key or a bad value stops the start with a
//! message that names it.

pub mod dynamic;
mod keys;
mod properties;
pub mod topic;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub use keys::{find_key, KeyDef, Kind, BROKER_KEYS};
pub use properties::{parse_pair, parse_properties};

use runnel_coordinator::group::GroupConfig;
use runnel_coordinator::txn::TxnConfig;

/// Where an effective value came from (shown by `--check-config`, and DescribeConfigs later).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ConfigSource {
    Default,
    ConfigFile,
    Override,
    Flag,
    /// Set with AlterConfigs for all brokers (resource name "").
    DynamicDefault,
    /// Set with AlterConfigs for this broker (resource name = node id).
    DynamicBroker,
}

impl ConfigSource {
    /// Kafka's DescribeConfigs source code.
    pub fn kafka_code(self) -> i8 {
        match self {
            ConfigSource::Default => 5,
            ConfigSource::ConfigFile | ConfigSource::Override | ConfigSource::Flag => 4,
            ConfigSource::DynamicDefault => 3,
            ConfigSource::DynamicBroker => 2,
        }
    }
}

impl fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConfigSource::Default => "default",
            ConfigSource::ConfigFile => "config file",
            ConfigSource::Override => "--override",
            ConfigSource::Flag => "command-line flag",
            ConfigSource::DynamicDefault => "dynamic default broker config",
            ConfigSource::DynamicBroker => "dynamic broker config",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("unknown configuration key '{0}'")]
    UnknownKey(String),
    #[error("{0}")]
    InvalidValue(String),
    /// The I/O error is part of the message, not a separate cause (printed once).
    #[error("cannot read config file {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("config file {path}: {error}")]
    Syntax {
        path: PathBuf,
        error: properties::SyntaxError,
    },
    #[error("invalid --override '{0}': expected key=value")]
    BadOverride(String),
}

/// The layered key/value view before typing: every known key with its effective value and
/// source.
#[derive(Debug, Clone)]
pub struct RawConfig {
    values: BTreeMap<&'static str, (String, ConfigSource)>,
}

impl Default for RawConfig {
    fn default() -> Self {
        let values = BROKER_KEYS
            .iter()
            .filter_map(|key| Some((key.name, (key.default?.to_string(), ConfigSource::Default))))
            .collect();
        RawConfig { values }
    }
}

impl RawConfig {
    /// Sets `name` (or its alias) from `source` after validating the value.
    pub fn set(
        &mut self,
        name: &str,
        value: &str,
        source: ConfigSource,
    ) -> Result<(), ConfigError> {
        let key = keys::find_key(keys::canonical_name(name))
            .ok_or_else(|| ConfigError::UnknownKey(name.to_string()))?;
        keys::check_value(key, value).map_err(ConfigError::InvalidValue)?;
        self.values.insert(key.name, (value.to_string(), source));
        Ok(())
    }

    /// Applies every assignment of a properties file.
    pub fn load_file(&mut self, path: &Path) -> Result<(), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            path: path.to_path_buf(),
            error,
        })?;
        let pairs = parse_properties(&text).map_err(|error| ConfigError::Syntax {
            path: path.to_path_buf(),
            error,
        })?;
        for (key, value) in pairs {
            self.set(&key, &value, ConfigSource::ConfigFile)?;
        }
        Ok(())
    }

    /// Applies one `--override key=value`.
    pub fn apply_override(&mut self, assignment: &str) -> Result<(), ConfigError> {
        let (key, value) = parse_pair(assignment)
            .ok_or_else(|| ConfigError::BadOverride(assignment.to_string()))?;
        self.set(&key, &value, ConfigSource::Override)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(|(value, _)| value.as_str())
    }

    pub fn get_with_source(&self, name: &str) -> Option<(&str, ConfigSource)> {
        self.values
            .get(name)
            .map(|(value, source)| (value.as_str(), *source))
    }

    /// Every set key with its value and source, sorted by key.
    pub fn entries(&self) -> impl Iterator<Item = (&'static str, &str, ConfigSource)> {
        self.values.iter().map(|(k, (v, s))| (*k, v.as_str(), *s))
    }

    fn int(&self, name: &str) -> Option<i64> {
        self.get(name).map(|v| v.parse().expect("validated on set"))
    }
}

/// The HTTP metrics port's default, as Redpanda's admin port.
pub const DEFAULT_METRICS_PORT: u16 = 9644;

/// The typed configuration the broker runs with.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub node_id: i32,
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// Host and port clients are told to connect to.
    pub advertised_host: String,
    pub advertised_port: u16,
    pub num_partitions: i32,
    pub default_replication_factor: i16,
    pub auto_create_topics: bool,
    pub socket_request_max_bytes: usize,
    /// Every broker key with its value and source (DescribeConfigs, topic defaults).
    pub raw: RawConfig,
    pub groups: GroupConfig,
    pub transactions: TxnConfig,
    /// Where the Prometheus/health HTTP port listens; None turns it off. Not a Kafka
    /// property: set with `--metrics-listen` / `--no-metrics`.
    pub metrics_listen: Option<SocketAddr>,
    /// `log.retention.check.interval.ms`.
    pub retention_check_interval_ms: u64,
    /// `log.cleaner.backoff.ms`.
    pub cleaner_backoff_ms: u64,
    /// `offsets.topic.segment.bytes`.
    pub offsets_topic_segment_bytes: i64,
}

impl BrokerConfig {
    pub fn from_raw(raw: &RawConfig) -> Result<BrokerConfig, ConfigError> {
        let listen = parse_listener(raw.get("listeners").expect("has a default"))?;
        let (advertised_host, advertised_port) = match raw.get("advertised.listeners") {
            Some(text) => split_host_port(strip_listener_scheme(text)?)?,
            None => (listen.ip().to_string(), listen.port()),
        };
        Ok(BrokerConfig {
            node_id: raw.int("node.id").expect("default") as i32,
            data_dir: PathBuf::from(raw.get("log.dirs").expect("default")),
            listen,
            advertised_host,
            advertised_port,
            num_partitions: raw.int("num.partitions").expect("default") as i32,
            default_replication_factor: raw.int("default.replication.factor").expect("default")
                as i16,
            auto_create_topics: raw.get("auto.create.topics.enable") == Some("true"),
            socket_request_max_bytes: raw.int("socket.request.max.bytes").expect("default")
                as usize,
            raw: raw.clone(),
            groups: group_config(raw),
            transactions: txn_config(raw),
            retention_check_interval_ms: raw
                .int("log.retention.check.interval.ms")
                .expect("default") as u64,
            cleaner_backoff_ms: raw.int("log.cleaner.backoff.ms").expect("default") as u64,
            metrics_listen: Some(SocketAddr::from(([127, 0, 0, 1], DEFAULT_METRICS_PORT))),
            offsets_topic_segment_bytes: raw.int("offsets.topic.segment.bytes").expect("default"),
        })
    }
}

fn txn_config(raw: &RawConfig) -> TxnConfig {
    let int = |name: &str| raw.int(name).expect("has a default");
    TxnConfig {
        transaction_max_timeout_ms: int("transaction.max.timeout.ms") as i32,
        transactional_id_expiration_ms: int("transactional.id.expiration.ms"),
        abort_timed_out_transaction_cleanup_interval_ms: int(
            "transaction.abort.timed.out.transaction.cleanup.interval.ms",
        ),
        remove_expired_transaction_cleanup_interval_ms: int(
            "transaction.remove.expired.transaction.cleanup.interval.ms",
        ),
        state_partitions: int("transaction.state.log.num.partitions") as i32,
        offsets_partitions: int("offsets.topic.num.partitions") as i32,
    }
}

fn group_config(raw: &RawConfig) -> GroupConfig {
    let int = |name: &str| raw.int(name).expect("has a default");
    GroupConfig {
        min_session_timeout_ms: int("group.min.session.timeout.ms") as i32,
        max_session_timeout_ms: int("group.max.session.timeout.ms") as i32,
        initial_rebalance_delay_ms: int("group.initial.rebalance.delay.ms") as i32,
        max_group_size: int("group.max.size") as i32,
        offsets_retention_ms: int("offsets.retention.minutes") * 60_000,
        offsets_retention_check_interval_ms: int("offsets.retention.check.interval.ms"),
        offset_metadata_max_bytes: int("offset.metadata.max.bytes") as usize,
        offsets_partitions: int("offsets.topic.num.partitions") as i32,
    }
}

/// `PLAINTEXT://127.0.0.1:9092` (or a bare `host:port`) to a socket address to bind.
fn parse_listener(text: &str) -> Result<SocketAddr, ConfigError> {
    let address = strip_listener_scheme(text)?;
    address.parse().map_err(|_| {
        ConfigError::InvalidValue(format!(
            "invalid listener '{text}': expected PLAINTEXT://IP:PORT"
        ))
    })
}

fn strip_listener_scheme(text: &str) -> Result<&str, ConfigError> {
    if text.contains(',') {
        return Err(ConfigError::InvalidValue(format!(
            "listener '{text}': only one PLAINTEXT listener is supported"
        )));
    }
    match text.split_once("://") {
        None => Ok(text),
        Some(("PLAINTEXT", address)) => Ok(address),
        Some(_) => Err(ConfigError::InvalidValue(format!(
            "listener '{text}': only PLAINTEXT://host:port is supported"
        ))),
    }
}

/// `host:port` to its parts, for advertised addresses (the host may be a name).
pub fn split_host_port(text: &str) -> Result<(String, u16), ConfigError> {
    let bad = || ConfigError::InvalidValue(format!("invalid address '{text}': expected host:port"));
    let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    if host.is_empty() {
        return Err(bad());
    }
    Ok((host.trim_matches(['[', ']']).to_string(), port))
}
