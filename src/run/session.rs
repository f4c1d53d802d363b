//! What every run starts with: the warehouse, cleaned up after a crashed run, the index of the
//! finished runs' hashes, its run id and its staging folder. On a warehouse marked synced where a
//! clean-up finds nothing to do and the index needs no repair, an import starts without the lock
//! (reading is all it does); otherwise it starts under the lock, and lets it go once it has these.
//! Either way other runs may work beside it and commit first: its commit looks again
//! (`Run::finish`). A replay, which rewrites earlier rejects files, keeps the lock to the end.

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
    /// Opens the warehouse (creating it if needed), cleans up after crashed runs, opens (and
    /// repairs) the index of the finished runs' hashes and claims the run id; without the lock
    /// when nothing needs cleaning up or repairing (`look_unlocked`), else under it. Keeps the
    /// lock when `keep_lock`.
    pub fn begin(warehouse: &Location, wait: bool, shard: Option<Shard>, keep_lock: bool) -> Result<Session> {
        let mut phases = super::Phases::new();
        let wh = Warehouse::create(warehouse)?;
        let unlocked = if keep_lock { None } else { look_unlocked(&wh)? };
        let (lock, finished, cleaned, index) = match unlocked {
            Some((finished, index)) => {
                phases.done("look and index (no lock)");
                (None, finished, Cleanup::default(), index)
            }
            None => {
                let lock = RunLock::acquire(&wh, wait)?;
                phases.done("lock");
                let finished = wh.finished_runs()?;
                // Unmarked (a commit was cut off), the clean-up lists every table; the logs are
                // synced at the commit, under the lock again (`recover`). Syncing them here would
                // open every table before the extraction: +10–20 MB of peak memory on the 1x
                // corpus, measured.
                let cleaned = wh.cleanup(&finished, !wh.is_synced()?)?;
                let (index, repairs) = Index::open(&wh, &finished)?;
                log_repairs(&repairs);
                phases.done("recovery and index");
                (Some(lock), finished, cleaned, index)
            }
        };
        let index_files = index.names();
        let index = Arc::new(index);
        let started = now_micros();
        let mut run_id = run_id_of(started);
        if let Some(s) = shard {
            // Workers that start in the same microsecond still get ids of their own.
            run_id.push_str(&format!("-{}of{}", s.index, s.count));
        }
        while finished.contains(&run_id) || !wh.claim_staging(&run_id)? {
            run_id.push('x');
        }
        let commit = RunCommit::begin(&wh, &run_id, &date_of(started))?;
        let lock = lock.filter(|_| keep_lock);
        phases.done("staging");
        tracing::debug!("begin of {run_id}: {phases}");
        Ok(Session { wh, lock, finished, cleaned, index, index_files, started, run_id, commit })
    }
}

/// A run's start without the lock: the finished runs and the index, when the warehouse is marked
/// synced (no commit was cut off), a clean-up would find nothing to do (`Warehouse::untidy`) and
/// the index opens without a repair (`Index::open_unlocked`); `None` (the start then takes the
/// lock) otherwise. Reads only. What a commit does meanwhile is safe to see half done: a run whose
/// `runs` row is listed but not yet in the index sends the start to the lock, and one the listing
/// missed is a run the commit's second look then finds (`Run::finish`). Workers that start at once
/// do not queue for the lock: on object storage each start under it was ~10 requests.
fn look_unlocked(wh: &Warehouse) -> Result<Option<(BTreeSet<String>, Index)>> {
    if !wh.is_synced()? {
        tracing::debug!("start: under the lock (the warehouse is not marked synced)");
        return Ok(None);
    }
    let finished = wh.finished_runs()?;
    if let Some(what) = wh.untidy(&finished)? {
        tracing::debug!("start: under the lock (a clean-up has {what} to see to)");
        return Ok(None);
    }
    match Index::open_unlocked(wh, &finished)? {
        Some(index) => Ok(Some((finished, index))),
        None => {
            tracing::debug!("start: under the lock (the index needs a repair, or changed while it was read)");
            Ok(None)
        }
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

    /// Starts a run on `location` on another thread (a start that waits for a lock held here
    /// would never return on this one).
    fn begin_elsewhere(location: &Location) -> std::sync::mpsc::Receiver<Result<Session>> {
        let (tx, rx) = std::sync::mpsc::channel();
        let location = location.clone();
        std::thread::spawn(move || {
            let _ = tx.send(Session::begin(&location, false, None, false));
        });
        rx
    }

    #[test]
    fn a_start_takes_the_lock_only_when_a_clean_up_or_an_index_repair_needs_it() {
        let dir = tempfile::tempdir().unwrap();
        let dump = dir.path().join("a.txt");
        std::fs::write(&dump, include_bytes!("../../tests/fixtures/seed-page.txt")).unwrap();
        let location: Location = dir.path().join("wh").into();
        let p = crate::pipeline::Pipeline::builtin();
        let opts = super::super::RunOptions::new(location.clone());
        let inputs = [dump.display().to_string()];
        crate::run::import(&p, &opts, &inputs, &super::super::progress::Progress::hidden()).unwrap();
        let wh = Warehouse::open(&location).unwrap();
        assert!(wh.is_synced().unwrap(), "the run's commit marked the warehouse");
        let index = wh.index_dir();
        // A segment the manifest does not list: a run committing now (no `runs` row yet).
        let committing = index.join(crate::load::index::run_file("20991231T000000.000000Z"));
        std::fs::write(&committing, b"not yet adopted").unwrap();

        // Nothing to clean up, nothing to repair: the start needs no lock (one is held here).
        let held = RunLock::acquire(&wh, false).unwrap();
        let rx = begin_elsewhere(&location);
        let s = rx.recv_timeout(std::time::Duration::from_secs(60)).expect("a start without the lock").unwrap();
        assert_eq!(s.finished.len(), 1);
        assert_eq!(s.index.len(), 1, "the finished run's hash");
        assert!(s.cleaned.removed.is_empty() && s.lock.is_none());
        assert!(committing.exists(), "a start without the lock changes nothing in the index");
        let gone = |s: Session| std::fs::remove_dir_all(s.wh.staging(&s.run_id)).unwrap();
        gone(s); // as if the run had committed

        // A crashed run's staging folder (its marker no longer locked): the start cleans it up,
        // which it does only under the lock.
        let crashed = wh.staging("20261130T000000.000000Z");
        std::fs::create_dir_all(&crashed).unwrap();
        std::fs::write(crashed.join(crate::load::commit::LIVE_MARKER), b"").unwrap();
        let rx = begin_elsewhere(&location);
        assert!(rx.recv_timeout(std::time::Duration::from_millis(300)).is_err(), "it waits for the lock");
        drop(held);
        let s = rx.recv_timeout(std::time::Duration::from_secs(60)).expect("the lock is free").unwrap();
        assert!(s.cleaned.removed.contains(&crashed), "{:?}", s.cleaned);
        assert!(!committing.exists(), "under the lock, the index open sweeps what no manifest lists");
        gone(s);

        // A finished run the index lacks (its manifest lost): repaired under the lock.
        std::fs::remove_file(index.join(crate::load::index::MANIFEST)).unwrap();
        let held = RunLock::acquire(&wh, false).unwrap();
        let rx = begin_elsewhere(&location);
        assert!(rx.recv_timeout(std::time::Duration::from_millis(300)).is_err(), "it waits for the lock");
        assert!(!index.join(crate::load::index::MANIFEST).exists(), "nothing repaired without the lock");
        drop(held);
        let s = rx.recv_timeout(std::time::Duration::from_secs(60)).expect("the lock is free").unwrap();
        assert_eq!(s.index.len(), 1, "rebuilt from the posts file");
        assert!(index.join(crate::load::index::MANIFEST).exists(), "the repair wrote the manifest again");
    }

    #[test]
    fn two_runs_that_pick_the_same_id_get_a_staging_folder_each() {
        let dir = tempfile::tempdir().unwrap();
        let wh = Warehouse::create(&dir.path().join("wh").into()).unwrap();
        assert!(wh.claim_staging("r1").unwrap());
        assert!(!wh.claim_staging("r1").unwrap(), "the second claim of one id fails");
    }
}
