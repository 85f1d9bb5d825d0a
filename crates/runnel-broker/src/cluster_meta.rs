//! `meta.properties`: the node id and the cluster id, generated once and kept in the data
//! directory in Kafka's format, so a data directory is never silently adopted by another node.

use std::path::Path;

use crate::config::parse_properties;
use crate::storage::write_atomically;

const FILE_NAME: &str = "meta.properties";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterMeta {
    pub cluster_id: String,
    pub node_id: i32,
}

#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error("cannot read or write {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is malformed: {reason}")]
    Malformed { path: String, reason: String },
    #[error("data directory belongs to node {found}, but this broker is node.id={configured}")]
    NodeIdMismatch { found: i32, configured: i32 },
}

/// Loads `meta.properties`, creating it with a fresh cluster id on first start.
pub fn load_or_create(data_dir: &Path, node_id: i32) -> Result<ClusterMeta, MetaError> {
    let path = data_dir.join(FILE_NAME);
    let io = |source| MetaError::Io {
        path: path.display().to_string(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let meta = parse(&text).map_err(|reason| MetaError::Malformed {
                path: path.display().to_string(),
                reason,
            })?;
            if meta.node_id != node_id {
                return Err(MetaError::NodeIdMismatch {
                    found: meta.node_id,
                    configured: node_id,
                });
            }
            Ok(meta)
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let meta = ClusterMeta {
                cluster_id: new_cluster_id(),
                node_id,
            };
            let text = format!(
                "#Written by runnel; do not edit.\nversion=1\ncluster.id={}\nnode.id={}\n",
                meta.cluster_id, meta.node_id
            );
            write_atomically(&path, text.as_bytes()).map_err(io)?;
            Ok(meta)
        }
        Err(error) => Err(io(error)),
    }
}

fn parse(text: &str) -> Result<ClusterMeta, String> {
    let pairs = parse_properties(text).map_err(|e| e.to_string())?;
    let get = |key: &str| {
        pairs
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| format!("missing {key}"))
    };
    Ok(ClusterMeta {
        cluster_id: get("cluster.id")?,
        node_id: get("node.id")?
            .parse()
            .map_err(|_| "node.id is not a number".to_string())?,
    })
}

/// A Kafka-style cluster id: a random UUID in URL-safe base64 without padding (22 characters).
fn new_cluster_id() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let mut id = String::with_capacity(22);
    for chunk in bytes.chunks(3) {
        let group =
            chunk.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            id.push(ALPHABET[((group >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cluster_id_is_generated_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(dir.path(), 0).unwrap();
        let second = load_or_create(dir.path(), 0).unwrap();
        assert_eq!(first, second);
        assert_eq!(first.cluster_id.len(), 22);
    }

    #[test]
    fn a_data_dir_of_another_node_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        load_or_create(dir.path(), 0).unwrap();
        assert!(matches!(
            load_or_create(dir.path(), 1),
            Err(MetaError::NodeIdMismatch {
                found: 0,
                configured: 1
            })
        ));
    }
}
