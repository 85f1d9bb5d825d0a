//! The broker's shared state: configuration, cluster identity, topics and fetch sessions. One
//! `Arc<Broker>` is shared by every connection task.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use kafka_protocol::error::ResponseError;
use tokio::sync::watch;

use crate::cluster_meta::{self, ClusterMeta, MetaError};
use crate::config::dynamic::{DynamicConfig, Layer};
use crate::config::topic::TopicConfig;
use crate::config::{BrokerConfig, ConfigError};
use crate::fetch_session::FetchSessionCache;
use crate::group_runtime::{GroupRuntime, OFFSETS_TOPIC};
use crate::internal_topics::ReplayError;
use crate::metrics::Metrics;
use crate::producer_ids::ProducerIds;
use crate::topic_name::validate_topic_name;
use crate::topics::{Topic, TopicError, TopicRegistry};
use crate::txn_runtime::{TxnRuntime, TXN_STATE_TOPIC};
use runnel_coordinator::group::GroupCoordinator;
use runnel_coordinator::txn::TxnCoordinator;

pub struct Broker {
    pub config: BrokerConfig,
    pub cluster: ClusterMeta,
    pub topics: TopicRegistry,
    pub fetch_sessions: FetchSessionCache,
    pub groups: GroupRuntime,
    pub txns: TxnRuntime,
    pub producer_ids: parking_lot::Mutex<ProducerIds>,
    pub metrics: Metrics,
    /// Dynamic broker configs (AlterConfigs on the broker resource).
    pub dynamic: parking_lot::Mutex<DynamicConfig>,
    /// Flips to true when shutdown begins: connections stop reading and long polls return.
    shutdown: watch::Sender<bool>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Meta(#[from] MetaError),
    #[error(transparent)]
    Topics(#[from] TopicError),
    #[error(transparent)]
    Replay(#[from] ReplayError),
    #[error("dynamic broker configuration: {0}")]
    DynamicConfig(#[from] ConfigError),
}

impl Broker {
    /// Opens the data directory (creating it on first start) and recovers every topic.
    pub fn open(config: BrokerConfig) -> Result<Arc<Broker>, StartError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|source| StartError::DataDir {
            path: config.data_dir.display().to_string(),
            source,
        })?;
        let cluster = cluster_meta::load_or_create(&config.data_dir, config.node_id)?;
        let dynamic = DynamicConfig::load(&config.data_dir, config.raw.clone())?;
        let topics = TopicRegistry::open(&config.data_dir, dynamic.effective()?, now_ms())?;
        let groups = GroupRuntime::load(GroupCoordinator::new(config.groups.clone()), &topics)?;
        let txns = TxnRuntime::load(TxnCoordinator::new(config.transactions.clone()), &topics)?;
        let producer_ids =
            ProducerIds::load(&config.data_dir).map_err(|source| StartError::DataDir {
                path: config.data_dir.display().to_string(),
                source,
            })?;
        Ok(Arc::new(Broker {
            config,
            cluster,
            topics,
            fetch_sessions: FetchSessionCache::default(),
            groups,
            txns,
            producer_ids: parking_lot::Mutex::new(producer_ids),
            dynamic: parking_lot::Mutex::new(dynamic),
            metrics: Metrics::default(),
            shutdown: watch::Sender::new(false),
        }))
    }

    /// `__transaction_state`, created on first use as in Kafka; None (logged) when it cannot be.
    pub fn txn_state_topic(&self) -> Option<Arc<Topic>> {
        let partitions = self.config.transactions.state_partitions;
        self.internal_topic(TXN_STATE_TOPIC, partitions, 104_857_600)
    }

    fn internal_topic(
        &self,
        name: &str,
        partitions: i32,
        segment_bytes: i64,
    ) -> Option<Arc<Topic>> {
        if let Some(topic) = self.topics.get(name) {
            return Some(topic);
        }
        let segment_bytes = segment_bytes.to_string();
        // Compacted, as in Kafka: only the latest record per key matters.
        let pairs = [
            ("segment.bytes", segment_bytes.as_str()),
            ("cleanup.policy", "compact"),
        ];
        let config = TopicConfig::from_pairs(pairs).expect("valid internal topic config");
        match self.topics.create(name, partitions, config, now_ms()) {
            Ok(topic) => {
                tracing::info!(partitions, "created {name}");
                Some(topic)
            }
            Err(TopicError::AlreadyExists(_)) => self.topics.get(name),
            Err(error) => {
                tracing::error!(%error, "cannot create {name}");
                None
            }
        }
    }

    /// `__consumer_offsets`, created on first use as in Kafka; None (logged) when it cannot be.
    pub fn offsets_topic(&self) -> Option<Arc<Topic>> {
        let partitions = self.config.groups.offsets_partitions;
        self.internal_topic(
            OFFSETS_TOPIC,
            partitions,
            self.config.offsets_topic_segment_bytes,
        )
    }

    /// Replaces one dynamic broker layer (validated), persists it, and re-applies every
    /// partition's log configuration.
    pub fn set_dynamic_layer(
        &self,
        layer: Layer,
        values: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<(), String> {
        let mut dynamic = self.dynamic.lock();
        let mut candidate = dynamic.clone();
        let effective = candidate.replace_layer(layer, values)?;
        if validate_only {
            return Ok(());
        }
        candidate
            .persist()
            .map_err(|e| format!("cannot persist dynamic config: {e}"))?;
        *dynamic = candidate;
        self.topics.set_broker_defaults(effective);
        Ok(())
    }

    /// Starts shutdown: every `shutdown_signal` receiver sees `true`.
    pub fn begin_shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    pub fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// A receiver that changes to `true` when shutdown begins.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// The topic, auto-creating it when `auto.create.topics.enable` allows and `allow_auto_create`
    /// (the request's own wish) agrees. The internal topics are created as their coordinators
    /// create them (own partition counts, compacted), as Kafka's AutoTopicCreationManager does.
    pub fn topic_or_auto_create(
        &self,
        name: &str,
        allow_auto_create: bool,
    ) -> Result<Arc<Topic>, ResponseError> {
        if let Some(topic) = self.topics.get(name) {
            return Ok(topic);
        }
        validate_topic_name(name).map_err(|_| ResponseError::InvalidTopicException)?;
        if !(allow_auto_create && self.config.auto_create_topics) {
            return Err(ResponseError::UnknownTopicOrPartition);
        }
        let internal = match name {
            OFFSETS_TOPIC => Some(self.offsets_topic()),
            TXN_STATE_TOPIC => Some(self.txn_state_topic()),
            _ => None,
        };
        if let Some(created) = internal {
            return created.ok_or(ResponseError::KafkaStorageError);
        }
        match self.topics.create(
            name,
            self.config.num_partitions,
            TopicConfig::default(),
            now_ms(),
        ) {
            Ok(topic) => {
                tracing::info!(
                    topic = name,
                    partitions = self.config.num_partitions,
                    "auto-created topic"
                );
                Ok(topic)
            }
            // Another request created it in the meantime.
            Err(TopicError::AlreadyExists(_)) => self
                .topics
                .get(name)
                .ok_or(ResponseError::UnknownTopicOrPartition),
            Err(error) => {
                tracing::error!(topic = name, %error, "auto-create failed");
                Err(ResponseError::KafkaStorageError)
            }
        }
    }
}

/// Internal topics are written only by the broker itself.
pub fn is_internal_topic(name: &str) -> bool {
    name == OFFSETS_TOPIC || name == TXN_STATE_TOPIC
}

/// Wall-clock milliseconds since the epoch, as Kafka timestamps are.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
