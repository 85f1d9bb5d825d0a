//! Installing a cleaned pass (Kafka's swap protocol) and completing or rolling back an
//! interrupted one on open. See the parent module for the protocol.

use super::{
    remove_group_files, suffixed, CleanOutcome, CleanedGroup, CleanedSegments, CLEANED, SWAP,
};
use crate::checkpoint;
use crate::log::PartitionLog;
use crate::offsets::Offset;
use crate::recovery::{scan, ScanRules};
use crate::retention::delete_segment_files;
use crate::segment::{segment_path, SealedSegment, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX};
use crate::txn_index::TXN_INDEX_SUFFIX;
use std::fs::{self, File};
use std::io;
use std::path::Path;
use std::sync::Arc;

/// Where [`PartitionLog::install_cleaned_with_crash`] stops, to test crash recovery.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashPoint {
    /// Install everything.
    Never,
    /// Only `.cleaned` files exist.
    BeforeSwap,
    /// The first group's log was renamed to `.swap`; nothing deleted.
    AfterSwapRename,
    /// The first group's old segments were partly deleted.
    MidDelete,
    /// The first group's old segments are gone; `.swap` not yet renamed.
    AfterDelete,
    /// All groups installed; the cleaner checkpoint not yet written.
    BeforeCheckpoint,
}

fn crash(at: CrashPoint, now: CrashPoint) -> io::Result<()> {
    if at == now {
        return Err(io::Error::other(format!("injected crash at {now:?}")));
    }
    Ok(())
}

impl PartitionLog {
    /// Under the lock: swaps the cleaned segments in. If retention or DeleteRecords removed a
    /// planned segment meanwhile, the pass is abandoned (`aborted`) and its files deleted.
    pub fn install_cleaned(&mut self, cleaned: CleanedSegments) -> io::Result<CleanOutcome> {
        self.install_cleaned_with_crash(cleaned, CrashPoint::Never)
    }

    /// [`PartitionLog::install_cleaned`] that stops at `crash`, leaving the files as a crash
    /// there would. Tests drop the log afterwards and reopen it.
    #[doc(hidden)]
    pub fn install_cleaned_with_crash(
        &mut self,
        cleaned: CleanedSegments,
        crash_at: CrashPoint,
    ) -> io::Result<CleanOutcome> {
        let mut outcome = cleaned.stats;
        let unchanged = cleaned.groups.iter().flat_map(|g| &g.sources).all(|s| {
            self.sealed
                .get(&s.base)
                .is_some_and(|segment| Arc::ptr_eq(&segment.log, &s.log))
        });
        if !unchanged || cleaned.dir != self.dir {
            for group in &cleaned.groups {
                remove_group_files(&self.dir, group.base, CLEANED)?;
            }
            tracing::info!(dir = %self.dir.display(), "log changed during cleaning; pass abandoned");
            return Ok(CleanOutcome {
                aborted: true,
                ..CleanOutcome::default()
            });
        }
        crash(crash_at, CrashPoint::BeforeSwap)?;
        for (i, group) in cleaned.groups.iter().enumerate() {
            let crash_here = if i == 0 { crash_at } else { CrashPoint::Never };
            self.swap_in(group, crash_here)?;
        }
        crash(crash_at, CrashPoint::BeforeCheckpoint)?;
        self.cleaner_offset = Some(cleaned.cleaned_up_to);
        checkpoint::write(&self.dir, checkpoint::CLEANER_FILE, cleaned.cleaned_up_to)?;
        outcome.cleaned_up_to = cleaned.cleaned_up_to;
        tracing::info!(dir = %self.dir.display(), ?outcome, "installed cleaned segments");
        Ok(outcome)
    }

    fn swap_in(&mut self, group: &CleanedGroup, crash_at: CrashPoint) -> io::Result<()> {
        let dir = self.dir.clone();
        let base = group.base;
        // The transaction index cannot be rebuilt from the cleaned log alone, so it travels
        // through the swap too: `.txnindex.swap` before the commit point, renamed after it.
        rename_if_exists(
            &suffixed(&dir, base, TXN_INDEX_SUFFIX, CLEANED),
            &suffixed(&dir, base, TXN_INDEX_SUFFIX, SWAP),
        )?;
        fs::rename(
            suffixed(&dir, base, LOG_SUFFIX, CLEANED),
            suffixed(&dir, base, LOG_SUFFIX, SWAP),
        )?;
        checkpoint::sync_dir(&dir)?;
        crash(crash_at, CrashPoint::AfterSwapRename)?;
        for (i, source) in group.sources.iter().rev().enumerate() {
            self.sealed.remove(&source.base);
            delete_segment_files(&dir, source.base)?;
            if i == 0 {
                crash(crash_at, CrashPoint::MidDelete)?;
            }
        }
        crash(crash_at, CrashPoint::AfterDelete)?;
        for suffix in [INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
            fs::rename(
                suffixed(&dir, base, suffix, CLEANED),
                segment_path(&dir, base, suffix),
            )?;
        }
        rename_if_exists(
            &suffixed(&dir, base, TXN_INDEX_SUFFIX, SWAP),
            &segment_path(&dir, base, TXN_INDEX_SUFFIX),
        )?;
        fs::rename(
            suffixed(&dir, base, LOG_SUFFIX, SWAP),
            segment_path(&dir, base, LOG_SUFFIX),
        )?;
        checkpoint::sync_dir(&dir)?;
        let segment = SealedSegment::open(&dir, base, self.config.index_interval_bytes)?;
        self.sealed.insert(base, segment);
        Ok(())
    }
}

/// On open, before segments are listed: deletes `.cleaned` files (an unfinished pass) and
/// completes every `.log.swap` (a committed one).
pub(crate) fn recover_swaps(dir: &Path) -> io::Result<()> {
    let mut swaps = Vec::new();
    let mut txn_swaps = Vec::new();
    let mut logs = Vec::new();
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.ends_with(".cleaned") {
            tracing::info!(dir = %dir.display(), file = name, "removing unfinished cleaner output");
            fs::remove_file(dir.join(name))?;
        } else if let Some(txn) = name.strip_suffix(".txnindex.swap") {
            match txn.parse::<i64>() {
                Ok(base) => txn_swaps.push(Offset(base)),
                Err(_) => fs::remove_file(dir.join(name))?,
            }
        } else if let Some(log) = name.strip_suffix(".swap") {
            match crate::segment::parse_log_file_name(log) {
                Some(base) => swaps.push(base),
                None => fs::remove_file(dir.join(name))?,
            }
        } else if let Some(base) = crate::segment::parse_log_file_name(name) {
            logs.push(base);
        }
    }
    for &base in &swaps {
        let swap = suffixed(dir, base, LOG_SUFFIX, SWAP);
        let file = File::open(&swap)?;
        let size = file.metadata()?.len();
        let rules = ScanRules {
            base_offset: base,
            min_offset: base,
            verify_crc: false,
        };
        let end = scan(&file, 0, size, rules, |_, _| Ok(()))?
            .next_offset
            .unwrap_or(base)
            .max(base.next());
        for &old in logs.iter().filter(|&&b| b >= base && b < end) {
            delete_segment_files(dir, old)?;
        }
        // The swap's own indexes may be missing or stale: rebuild them on open.
        delete_segment_files(dir, base)?;
        rename_if_exists(
            &suffixed(dir, base, TXN_INDEX_SUFFIX, SWAP),
            &segment_path(dir, base, TXN_INDEX_SUFFIX),
        )?;
        fs::rename(&swap, segment_path(dir, base, LOG_SUFFIX))?;
        tracing::info!(dir = %dir.display(), segment = %base, "completed an interrupted cleaner swap");
    }
    // A transaction index swapped before its log was is from an uncommitted pass.
    for base in txn_swaps.into_iter().filter(|b| !swaps.contains(b)) {
        fs::remove_file(suffixed(dir, base, TXN_INDEX_SUFFIX, SWAP))?;
    }
    checkpoint::sync_dir(dir)
}

fn rename_if_exists(from: &Path, to: &Path) -> io::Result<()> {
    match fs::rename(from, to) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}
