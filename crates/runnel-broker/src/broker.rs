//! The broker's shared state: configuration, cluster identity, topics and fetch sessions. One
//! `Arc<Broker>` is shared by every connection task.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use kafka_protocol::error::ResponseError;
use tokio::sync::watch;

use crate::cluster_meta::{self, ClusterMeta, MetaError};
use crate::config::topic::TopicConfig;
use crate::config::BrokerConfig;
use crate::fetch_session::FetchSessionCache;
use crate::topic_name::validate_topic_name;
use crate::topics::{Topic, TopicError, TopicRegistry};

pub struct Broker {
    pub config: BrokerConfig,
    pub cluster: ClusterMeta,
    pub topics: TopicRegistry,
    pub fetch_sessions: FetchSessionCache,
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
}

impl Broker {
    /// Opens the data directory (creating it on first start) and recovers every topic.
    pub fn open(config: BrokerConfig) -> Result<Arc<Broker>, StartError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|source| StartError::DataDir {
            path: config.data_dir.display().to_string(),
            source,
        })?;
        let cluster = cluster_meta::load_or_create(&config.data_dir, config.node_id)?;
        let topics = TopicRegistry::open(&config.data_dir, config.log_defaults.clone(), now_ms())?;
        Ok(Arc::new(Broker {
            config,
            cluster,
            topics,
            fetch_sessions: FetchSessionCache::default(),
            shutdown: watch::Sender::new(false),
        }))
    }

    /// Starts shutdown: every `shutdown_signal` receiver sees `true`.
    pub fn begin_shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    /// A receiver that changes to `true` when shutdown begins.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// The topic, auto-creating it when `auto.create.topics.enable` allows and `allow_auto_create`
    /// (the request's own wish) agrees.
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

/// Wall-clock milliseconds since the epoch, as Kafka timestamps are.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
