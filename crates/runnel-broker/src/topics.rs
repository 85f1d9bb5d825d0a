//! The topic registry of a single node: which topics exist, their ids, partitions and config
//! overrides, persisted as one small properties file per topic under `<data>/__topics/<topic id>.properties`.
//!
//! Creation writes the partition directories first and the topic file last, deletion removes
//! the topic file first: the topic file is the commit point, and partition directories with no
//! topic file are leftovers of an interrupted create or delete, removed on start. The Raft
//! metadata quorum will replace this file store; the registry's interface is what it must keep.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;
use runnel_log::{LogConfig, PartitionLog};

use crate::config::RawConfig;
use uuid::Uuid;

use crate::config::parse_properties;
use crate::config::topic::TopicConfig;
use crate::partition::Partition;
use crate::storage::{sync_dir, write_atomically};

const TOPICS_DIR: &str = "__topics";

/// One topic and its partitions.
pub struct Topic {
    pub name: String,
    pub id: Uuid,
    pub config: TopicConfig,
    pub partitions: Vec<Arc<Partition>>,
}

impl Topic {
    pub fn partition(&self, index: i32) -> Option<&Arc<Partition>> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.partitions.get(i))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    #[error("topic '{0}' already exists")]
    AlreadyExists(String),
    #[error("topic '{0}' does not exist")]
    Unknown(String),
    #[error("cannot open partition log {dir}: {reason}")]
    Log { dir: PathBuf, reason: String },
    #[error("topic metadata I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("topic file {path} is malformed: {reason}")]
    Malformed { path: PathBuf, reason: String },
}

pub struct TopicRegistry {
    data_dir: PathBuf,
    /// The broker configuration topic defaults come from (changes with dynamic broker configs).
    broker_defaults: RwLock<RawConfig>,
    topics: RwLock<BTreeMap<String, Arc<Topic>>>,
    /// Serialises creates and deletes so two requests cannot race on the same directories.
    admin_lock: parking_lot::Mutex<()>,
}

impl TopicRegistry {
    /// Loads every topic under `data_dir`, recovering each partition log.
    pub fn open(
        data_dir: &Path,
        broker_defaults: RawConfig,
        now_ms: i64,
    ) -> Result<TopicRegistry, TopicError> {
        std::fs::create_dir_all(data_dir.join(TOPICS_DIR))?;
        let mut topics = BTreeMap::new();
        for entry in std::fs::read_dir(data_dir.join(TOPICS_DIR))? {
            let path = entry?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("properties") {
                continue;
            }
            let topic = load_topic(data_dir, &path, &broker_defaults, now_ms)?;
            topics.insert(topic.name.clone(), Arc::new(topic));
        }
        remove_orphan_partition_dirs(data_dir, &topics)?;
        Ok(TopicRegistry {
            data_dir: data_dir.to_path_buf(),
            broker_defaults: RwLock::new(broker_defaults),
            topics: RwLock::new(topics),
            admin_lock: parking_lot::Mutex::new(()),
        })
    }

    pub fn get(&self, name: &str) -> Option<Arc<Topic>> {
        self.topics.read().get(name).cloned()
    }

    pub fn get_by_id(&self, id: Uuid) -> Option<Arc<Topic>> {
        self.topics.read().values().find(|t| t.id == id).cloned()
    }

    /// All topics, sorted by name.
    pub fn all(&self) -> Vec<Arc<Topic>> {
        self.topics.read().values().cloned().collect()
    }

    /// Creates a topic with `partitions` partitions; the caller validated name and config.
    pub fn create(
        &self,
        name: &str,
        partitions: i32,
        config: TopicConfig,
        now_ms: i64,
    ) -> Result<Arc<Topic>, TopicError> {
        let _guard = self.admin_lock.lock();
        if self.topics.read().contains_key(name) {
            return Err(TopicError::AlreadyExists(name.to_string()));
        }
        let log_config = config.log_config(&self.broker_defaults.read());
        let opened = (0..partitions)
            .map(|index| open_partition(&self.data_dir, name, index, log_config.clone(), now_ms))
            .collect::<Result<Vec<_>, _>>();
        let topic = opened.map(|partitions| Topic {
            name: name.to_string(),
            id: Uuid::new_v4(),
            config,
            partitions,
        });
        let committed = topic.and_then(|topic| {
            let text = topic_file_text(&topic);
            write_atomically(&topic_file(&self.data_dir, topic.id), text.as_bytes())?;
            Ok(topic)
        });
        let topic = match committed {
            Ok(topic) => Arc::new(topic),
            Err(error) => {
                // Nothing refers to the directories yet: remove what was made.
                for index in 0..partitions {
                    let _ = std::fs::remove_dir_all(partition_dir(&self.data_dir, name, index));
                }
                return Err(error);
            }
        };
        self.topics.write().insert(name.to_string(), topic.clone());
        Ok(topic)
    }

    /// Grows a topic to `count` partitions (the caller checked it is larger).
    pub fn add_partitions(
        &self,
        name: &str,
        count: i32,
        now_ms: i64,
    ) -> Result<Arc<Topic>, TopicError> {
        let _guard = self.admin_lock.lock();
        let old = self
            .get(name)
            .ok_or_else(|| TopicError::Unknown(name.to_string()))?;
        let log_config = old.config.log_config(&self.broker_defaults.read());
        let mut partitions = old.partitions.clone();
        for index in partitions.len() as i32..count {
            partitions.push(open_partition(
                &self.data_dir,
                name,
                index,
                log_config.clone(),
                now_ms,
            )?);
        }
        let grown = Topic {
            name: old.name.clone(),
            id: old.id,
            config: old.config.clone(),
            partitions,
        };
        write_atomically(
            &topic_file(&self.data_dir, grown.id),
            topic_file_text(&grown).as_bytes(),
        )?;
        let grown = Arc::new(grown);
        self.topics.write().insert(name.to_string(), grown.clone());
        Ok(grown)
    }

    /// Replaces a topic's config overrides, persists them and applies them to its partitions.
    pub fn reconfigure(&self, name: &str, config: TopicConfig) -> Result<Arc<Topic>, TopicError> {
        let _guard = self.admin_lock.lock();
        let old = self
            .get(name)
            .ok_or_else(|| TopicError::Unknown(name.to_string()))?;
        let changed = Topic {
            name: old.name.clone(),
            id: old.id,
            config,
            partitions: old.partitions.clone(),
        };
        write_atomically(
            &topic_file(&self.data_dir, changed.id),
            topic_file_text(&changed).as_bytes(),
        )?;
        let log_config = changed.config.log_config(&self.broker_defaults.read());
        for partition in &changed.partitions {
            partition.set_config(log_config.clone());
        }
        let changed = Arc::new(changed);
        self.topics
            .write()
            .insert(name.to_string(), changed.clone());
        Ok(changed)
    }

    /// New broker-level defaults (a dynamic broker config change): every partition's log
    /// configuration is recomputed.
    pub fn set_broker_defaults(&self, broker: RawConfig) {
        let _guard = self.admin_lock.lock();
        for topic in self.all() {
            let log_config = topic.config.log_config(&broker);
            for partition in &topic.partitions {
                partition.set_config(log_config.clone());
            }
        }
        *self.broker_defaults.write() = broker;
    }

    /// The broker configuration topic defaults currently come from.
    pub fn broker_defaults(&self) -> RawConfig {
        self.broker_defaults.read().clone()
    }

    /// Deletes a topic and its data.
    pub fn delete(&self, name: &str) -> Result<Arc<Topic>, TopicError> {
        let _guard = self.admin_lock.lock();
        let topic = self
            .topics
            .write()
            .remove(name)
            .ok_or_else(|| TopicError::Unknown(name.to_string()))?;
        std::fs::remove_file(topic_file(&self.data_dir, topic.id))?;
        sync_dir(&self.data_dir.join(TOPICS_DIR))?;
        for partition in &topic.partitions {
            partition.mark_deleted();
            let dir = partition_dir(&self.data_dir, name, partition.index());
            if let Err(error) = std::fs::remove_dir_all(&dir) {
                tracing::warn!(dir = %dir.display(), %error, "could not remove deleted partition's directory; it is removed on next start");
            }
        }
        Ok(topic)
    }

    /// Fsyncs every partition (clean shutdown).
    pub fn flush_all(&self) {
        for topic in self.all() {
            for partition in &topic.partitions {
                if let Err(error) = partition.flush() {
                    tracing::error!(topic = %topic.name, partition = partition.index(), %error, "flush failed");
                }
            }
        }
    }

    /// Applies every partition's `flush.ms` policy; returns the durations of the fsyncs done.
    pub fn flush_due(&self, now_ms: i64) -> Vec<std::time::Duration> {
        let mut flushes = Vec::new();
        for topic in self.all() {
            for partition in &topic.partitions {
                match partition.flush_if_due(now_ms) {
                    Ok(Some(elapsed)) => flushes.push(elapsed),
                    Ok(None) => {}
                    Err(error) => {
                        tracing::error!(topic = %topic.name, partition = partition.index(), %error, "timed flush failed");
                    }
                }
            }
        }
        flushes
    }
}

/// Named by topic id: a 249-character topic name plus a suffix would exceed the 255-byte file
/// name limit.
fn topic_file(data_dir: &Path, id: Uuid) -> PathBuf {
    data_dir.join(TOPICS_DIR).join(format!("{id}.properties"))
}

pub fn partition_dir(data_dir: &Path, topic: &str, index: i32) -> PathBuf {
    data_dir.join(format!("{topic}-{index}"))
}

fn open_partition(
    data_dir: &Path,
    topic: &str,
    index: i32,
    config: LogConfig,
    now_ms: i64,
) -> Result<Arc<Partition>, TopicError> {
    let dir = partition_dir(data_dir, topic, index);
    let log = PartitionLog::open(&dir, config, now_ms).map_err(|e| TopicError::Log {
        dir: dir.clone(),
        reason: e.to_string(),
    })?;
    Ok(Arc::new(Partition::new(topic, index, log)))
}

fn topic_file_text(topic: &Topic) -> String {
    let mut text = format!(
        "#Written by runnel; do not edit.\nname={}\ntopic.id={}\npartitions={}\n",
        topic.name,
        topic.id,
        topic.partitions.len()
    );
    for (key, value) in topic.config.overrides() {
        text.push_str(&format!("config.{key}={value}\n"));
    }
    text
}

fn load_topic(
    data_dir: &Path,
    path: &Path,
    broker_defaults: &RawConfig,
    now_ms: i64,
) -> Result<Topic, TopicError> {
    let malformed = |reason: String| TopicError::Malformed {
        path: path.to_path_buf(),
        reason,
    };
    let pairs =
        parse_properties(&std::fs::read_to_string(path)?).map_err(|e| malformed(e.to_string()))?;
    let get = |key: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| malformed(format!("missing {key}")))
    };
    let name = get("name")?.to_string();
    let id = Uuid::parse_str(get("topic.id")?).map_err(|e| malformed(e.to_string()))?;
    let count: i32 = get("partitions")?
        .parse()
        .map_err(|_| malformed("bad partitions".into()))?;
    let config = TopicConfig::from_pairs(
        pairs
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("config.")?, v.as_str()))),
    )
    .map_err(malformed)?;
    let log_config = config.log_config(broker_defaults);
    let partitions = (0..count)
        .map(|index| open_partition(data_dir, &name, index, log_config.clone(), now_ms))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Topic {
        name,
        id,
        config,
        partitions,
    })
}

/// Removes `<topic>-<n>` directories that belong to no topic (an interrupted create or delete).
fn remove_orphan_partition_dirs(
    data_dir: &Path,
    topics: &BTreeMap<String, Arc<Topic>>,
) -> Result<(), TopicError> {
    for entry in std::fs::read_dir(data_dir)? {
        let entry = entry?;
        if !entry.file_type()?.is_dir() {
            continue;
        }
        let file_name = entry.file_name();
        let Some(dir_name) = file_name.to_str() else {
            continue;
        };
        let Some((topic, index)) = dir_name.rsplit_once('-') else {
            continue;
        };
        let Ok(index) = index.parse::<usize>() else {
            continue;
        };
        let owned = topics
            .get(topic)
            .is_some_and(|t| index < t.partitions.len());
        if !owned && holds_only_log_files(&entry.path())? {
            tracing::warn!(
                dir = dir_name,
                "removing partition directory of a topic that no longer exists"
            );
            std::fs::remove_dir_all(entry.path())?;
        }
    }
    Ok(())
}

/// Whether every file in `dir` is one a partition log writes; anything else means the directory
/// is not ours to remove, whatever its name.
fn holds_only_log_files(dir: &Path) -> std::io::Result<bool> {
    const LOG_SUFFIXES: [&str; 6] = [
        ".log",
        ".index",
        ".timeindex",
        ".txnindex",
        "checkpoint",
        ".tmp",
    ];
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        if !LOG_SUFFIXES.iter().any(|suffix| name.ends_with(suffix)) {
            return Ok(false);
        }
    }
    Ok(true)
}
