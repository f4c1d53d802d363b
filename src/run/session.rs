//! What every run starts with: the warehouse, cleaned up after a crashed run under the warehouse
//! lock, the index of the finished runs' hashes, its run id and its staging folder. An import lets
//! the lock go once it has these (other runs may work beside it and commit first: its commit looks
//! again, `Run::finish`); a replay, which rewrites earlier rejects files, keeps it to the end.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::Result;
use crate::extract::read::Shard;
use crate::load::commit::{RunCommit, RunLock};
use crate::load::index::{Index, Repairs};
use crate::load::location::Location;
use crate::load::warehouse::{Cleanup, Warehouse};

/// A run's hold on its warehouse, from the lock to the commit.
pub(crate) struct Session {
    pub wh: Warehouse,
    /// Run ids of the finished runs (those with a `runs` row).
    pub finished: BTreeSet<String>,
    /// What the clean-up removed or completed.
    pub cleaned: Cleanup,
    /// Every hash of the finished runs, on disk.
    pub index: Arc<Index>,
    /// The index files open at the start: the commit asks only the files written since.
    pub index_files: BTreeSet<(String, u64, usize)>,
    /// The run's start, µs since the Unix epoch.
    pub started: i64,
    pub run_id: String,
    pub commit: RunCommit,
    /// The warehouse lock, when the run keeps it to the end (a replay).
    pub lock: Option<RunLock>,
}

impl Session {
    /// Locks the warehouse (creating it if needed), cleans up after crashed runs, opens (and
    /// repairs) the index of the finished runs' hashes and picks the run id; keeps the lock when
    /// `keep_lock`.
    pub fn begin(warehouse: &Location, wait: bool, shard: Option<Shard>, keep_lock: bool) -> Result<Session> {
        let mut phases = super::Phases::new();
        let wh = Warehouse::create(warehouse)?;
        let lock = RunLock::acquire(&wh, wait)?;
        phases.done("lock");
        let finished = wh.finished_runs()?;
        // Unmarked (a commit was cut off), the clean-up lists every table; the logs are synced at
        // the commit, under the lock again (`recover`). Syncing them here would open every table
        // before the extraction: +10–20 MB of peak memory on the 1x corpus, measured.
        let cleaned = wh.cleanup(&finished, !wh.is_synced()?)?;
        let (index, repairs) = Index::open(&wh, &finished)?;
        log_repairs(&repairs);
        let index_files = index.names();
        let index = Arc::new(index);
        let started = now_micros();
        let mut run_id = run_id_of(started);
        if let Some(s) = shard {
            // Workers that start in the same microsecond still get ids of their own.
            run_id.push_str(&format!("-{}of{}", s.index, s.count));
        }
        while finished.contains(&run_id) || wh.staging(&run_id).exists() {
            run_id.push('x');
        }
        let commit = RunCommit::begin(&wh, &run_id, &date_of(started))?;
        let lock = keep_lock.then_some(lock);
        phases.done("recovery and index");
        tracing::debug!("begin of {run_id}: {phases}");
        Ok(Session { wh, lock, finished, cleaned, index, index_files, started, run_id, commit })
    }
}

/// What opening the index had to repair, for the operator: a rebuild is worth a warning (it reads
/// posts files and means something was lost), the rest an info line.
pub(crate) fn log_repairs(r: &Repairs) {
    if let Some(why) = &r.reset {
        tracing::warn!("index: rebuilding the whole index from the posts files ({why})");
    }
    if !r.rebuilt.is_empty() {
        let runs = if r.rebuilt.len() > 3 { format!("{} runs", r.rebuilt.len()) } else { r.rebuilt.join(", ") };
        tracing::warn!("index: rebuilt the hashes of {runs} from their posts files");
    }
    if !r.adopted.is_empty() {
        tracing::info!("index: adopted the segments of {} finished runs", r.adopted.len());
    }
    for p in &r.removed {
        tracing::info!(
            "index: removed {} (no part of the index: left by a crashed run or merge, or by an older quarry)",
            p.display()
        );
    }
}

/// Microseconds since the Unix epoch, now.
pub fn now_micros() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}

/// The run's start as UTC time, µs since the Unix epoch (the epoch itself if out of range).
fn utc(micros: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

/// The run id of a run started at `micros`: its UTC time, which sorts in run order.
fn run_id_of(micros: i64) -> String {
    utc(micros).format("%Y%m%dT%H%M%S%.6fZ").to_string()
}

/// The `ingest_date` of a run started at `micros` (UTC).
fn date_of(micros: i64) -> String {
    utc(micros).format("%Y-%m-%d").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_sort_in_time_order_and_dates_are_utc() {
        let a = run_id_of(1_764_165_785_123_456);
        assert_eq!(a, "20251126T140305.123456Z");
        assert!(run_id_of(1_764_165_785_123_457) > a);
        assert_eq!(date_of(1_764_165_785_123_456), "2025-11-26");
    }
}
