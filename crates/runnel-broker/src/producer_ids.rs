//! Producer id allocation for idempotent and transactional producers. Ids are handed out from
//! blocks whose end is made durable (`producer-id-block`) before any id in the block is used,
//! so a restart never reuses an id: it starts at the next block.

use std::path::{Path, PathBuf};

use crate::storage::write_atomically;

const FILE_NAME: &str = "producer-id-block";
/// Ids reserved per durable write.
const BLOCK_SIZE: i64 = 1000;

pub struct ProducerIds {
    path: PathBuf,
    next: i64,
    /// First id of the next block (exclusive end of the current one), as persisted.
    block_end: i64,
}

impl ProducerIds {
    pub fn load(data_dir: &Path) -> std::io::Result<ProducerIds> {
        let path = data_dir.join(FILE_NAME);
        let block_end = match std::fs::read_to_string(&path) {
            Ok(text) => text.trim().parse().map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{} is not a number", path.display()),
                )
            })?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => 0,
            Err(error) => return Err(error),
        };
        // Whatever the last run reserved may have been handed out: start after it.
        Ok(ProducerIds {
            path,
            next: block_end,
            block_end,
        })
    }

    /// The next producer id, reserving (durably) a new block when the current one is used up.
    pub fn next(&mut self) -> std::io::Result<i64> {
        if self.next >= self.block_end {
            let end = self.next + BLOCK_SIZE;
            write_atomically(&self.path, format!("{end}\n").as_bytes())?;
            self.block_end = end;
        }
        let id = self.next;
        self.next += 1;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let mut ids = ProducerIds::load(dir.path()).unwrap();
        let first: Vec<i64> = (0..3).map(|_| ids.next().unwrap()).collect();
        assert_eq!(first, vec![0, 1, 2]);
        let mut restarted = ProducerIds::load(dir.path()).unwrap();
        assert!(restarted.next().unwrap() > 2);
    }
}
