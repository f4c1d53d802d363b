//! The atomic run: a lock keeps one run per warehouse; files are staged outside the tables, then
//! each table's file appears by one rename, and the `runs` row is written last. This is the only
//! module that knows how a run becomes visible (a table format can replace it).
//!
//! A rejects replay also rewrites rejects files of earlier runs (without the rows it took out).
//! Those new versions are a redo log: they wait in `_quarry/replace/<run_id>/` until the replay's
//! `runs` row exists, and only then replace the old files. A replay killed before its `runs` row
//! leaves the old files untouched (the next clean-up drops the pending versions); one killed after
//! it has counted, and the next clean-up finishes the swap (`Warehouse::apply_replacements`).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use arrow::record_batch::RecordBatch;

use super::delta::{self, DeltaError};
use super::index;
use super::parquet::{part_name, properties, TableWriter, WriteError};
use super::warehouse::{io_err, Warehouse, WarehouseError, DELETE_MARKER};
use crate::contract::Table;
use crate::pipeline::OutputConfig;

/// The points of a commit where a kill leaves a state of its own, in commit order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CommitStep {
    /// Every table file is written and staged; nothing is in place.
    Staged,
    /// The posts file is in its table.
    Posts,
    /// The rejects file too.
    Rejects,
    /// The duplicates file too.
    Duplicates,
    /// The digest list and the run's index segment too.
    Lists,
    /// A replay's new rejects files wait in the redo log.
    Replacements,
    /// The `runs` row's file is in place: the run counts for plain-Parquet readers.
    RunsRow,
    /// The `runs` row is in its Delta log too: the run counts for every reader.
    Committed,
}

impl CommitStep {
    /// Every step, in order.
    pub const ALL: [CommitStep; 8] = [
        CommitStep::Staged,
        CommitStep::Posts,
        CommitStep::Rejects,
        CommitStep::Duplicates,
        CommitStep::Lists,
        CommitStep::Replacements,
        CommitStep::RunsRow,
        CommitStep::Committed,
    ];

    /// Its name for `QUARRY_TEST_HOLD`.
    pub fn name(self) -> &'static str {
        match self {
            CommitStep::Staged => "staged",
            CommitStep::Posts => "posts",
            CommitStep::Rejects => "rejects",
            CommitStep::Duplicates => "duplicates",
            CommitStep::Lists => "lists",
            CommitStep::Replacements => "replacements",
            CommitStep::RunsRow => "runs-row",
            CommitStep::Committed => "committed",
        }
    }

    /// The step reached once a data table's file is in place.
    fn after(table: Table) -> CommitStep {
        match table {
            Table::Posts => CommitStep::Posts,
            Table::Rejects => CommitStep::Rejects,
            Table::Duplicates | Table::Runs => CommitStep::Duplicates,
        }
    }
}

#[cfg(test)]
thread_local! {
    /// Unit tests: the step at which `commit` returns as if the process had been killed there.
    pub(crate) static STOP_AT: std::cell::Cell<Option<CommitStep>> = const { std::cell::Cell::new(None) };
}

/// Another run holds the warehouse.
#[derive(Debug, thiserror::Error)]
#[error("warehouse {path} is locked by another quarry run ({holder}); wait for it to finish or pass --wait")]
pub struct LockedError {
    /// The warehouse.
    pub path: PathBuf,
    /// What the lock file says about its holder.
    pub holder: String,
}

/// Errors of the commit stage.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error(transparent)]
    Locked(#[from] LockedError),
    #[error(transparent)]
    Warehouse(#[from] WarehouseError),
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error(transparent)]
    Delta(#[from] DeltaError),
}

/// The warehouse lock, held for the whole run; released when dropped (or when the process dies).
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

impl RunLock {
    /// Takes the lock, or fails at once (`wait = false`) or waits for it.
    pub fn acquire(wh: &Warehouse, wait: bool) -> Result<RunLock, CommitError> {
        let path = wh.internal().join("lock");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err(&path, "cannot open the lock file"))?;
        if wait {
            file.lock().map_err(io_err(&path, "cannot lock"))?;
        } else if let Err(e) = file.try_lock() {
            return match e {
                fs::TryLockError::WouldBlock => {
                    let holder = fs::read_to_string(&path).unwrap_or_default().trim().to_string();
                    Err(LockedError {
                        path: wh.root().to_path_buf(),
                        holder: if holder.is_empty() { "unknown".into() } else { holder },
                    }
                    .into())
                }
                fs::TryLockError::Error(e) => Err(io_err(&path, "cannot lock")(e).into()),
            };
        }
        file.set_len(0).map_err(io_err(&path, "cannot write the lock file"))?;
        writeln!(file, "pid {}", std::process::id()).map_err(io_err(&path, "cannot write the lock file"))?;
        Ok(RunLock { _file: file })
    }
}

/// What `sync_delta` did to each table's log.
pub type Synced = Vec<(Table, delta::Synced)>;

/// Makes each table a Delta table (created when missing: a new warehouse, or one written before
/// quarry kept Delta logs, whose files are then all added) and its log list exactly the files of
/// finished runs: after `cleanup`, this rolls forward the log entries a killed run did not get to
/// write and undoes those of a run that never got its `runs` row. Under the lock, after the
/// clean-up and before the run's commit (`RunCommit::sync_in_background`).
pub fn sync_delta(wh: &Warehouse) -> Result<Synced, CommitError> {
    let mut out = Vec::new();
    for table in Table::ALL {
        let dir = wh.table(table);
        if !dir.join("_delta_log").exists() {
            delta::create(&dir, table)?;
        }
        out.push((table, sync_delta_table(wh, table)?));
    }
    Ok(out)
}

/// What making the Delta logs match the committed files did: files of a run whose log entry a
/// kill cut off are rolled forward, files of a run that never finished are removed from the log.
fn log_delta(synced: &Synced) {
    let list = |files: &[String]| {
        if files.len() > 3 {
            format!("{} files ({}, …)", files.len(), files[..3].join(", "))
        } else {
            files.join(", ")
        }
    };
    for (table, s) in synced {
        if !s.added.is_empty() {
            tracing::warn!("delta: {table}: rolled forward {} (in the table, missing from its log)", list(&s.added));
        }
        if !s.removed.is_empty() {
            tracing::warn!("delta: {table}: undid {} (of a run that never finished)", list(&s.removed));
        }
    }
}

/// `sync_delta` for one table.
pub fn sync_delta_table(wh: &Warehouse, table: Table) -> Result<delta::Synced, CommitError> {
    let files =
        wh.table_files(table)?.into_iter().map(|(_, path)| wh.disk_file(table, path)).collect::<Result<Vec<_>, _>>()?;
    Ok(delta::sync(&wh.table(table), table, &files)?)
}

/// The files of one run in progress, and how they become visible.
pub struct RunCommit {
    wh: Warehouse,
    run_id: String,
    ingest_date: String,
    staging: PathBuf,
    /// The start-of-run `sync_delta`, running beside the run's work (`sync_in_background`); the
    /// commit waits for it before it touches a log.
    sync: Option<std::thread::JoinHandle<Result<Synced, CommitError>>>,
}

impl Drop for RunCommit {
    /// A run that stops before its commit waits for its background sync, so that the sync never
    /// outlives the warehouse lock (the session drops its commit before its lock).
    fn drop(&mut self) {
        if let Some(h) = self.sync.take() {
            let _ = h.join();
        }
    }
}

fn sync_dir(dir: &Path) -> Result<(), WarehouseError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_err(dir, "cannot sync folder"))
}

/// At `step`: holds until killed when the test switch names it (debug builds only, see
/// `load::hold`); true when a unit test asked the commit to stop here.
fn hold(step: CommitStep) -> bool {
    super::hold::hold_at(step.name());
    #[cfg(test)]
    if STOP_AT.get() == Some(step) {
        return true;
    }
    false
}

impl RunCommit {
    /// Starts a run: makes its staging folder.
    pub fn begin(wh: &Warehouse, run_id: &str, ingest_date: &str) -> Result<RunCommit, CommitError> {
        let staging = wh.staging(run_id);
        fs::create_dir_all(&staging).map_err(io_err(&staging, "cannot create the staging folder"))?;
        Ok(RunCommit { wh: wh.clone(), run_id: run_id.into(), ingest_date: ingest_date.into(), staging, sync: None })
    }

    /// Starts `sync_delta` on a thread of its own, so that reading the logs (a few ms a table)
    /// overlaps the run's extraction instead of preceding it; the commit waits for it and logs
    /// what it did. Call after the clean-up: the files it syncs to do not change until the commit.
    pub fn sync_in_background(&mut self) -> Result<(), CommitError> {
        let wh = self.wh.clone();
        let handle = std::thread::Builder::new()
            .name("quarry-delta".into())
            .spawn(move || sync_delta(&wh))
            .map_err(io_err(self.wh.root(), "cannot start the Delta sync thread"))?;
        self.sync = Some(handle);
        Ok(())
    }

    /// Waits for the background sync, if one runs, and logs what it changed.
    fn finish_sync(&mut self) -> Result<(), CommitError> {
        if let Some(h) = self.sync.take() {
            let synced = h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))?;
            log_delta(&synced);
        }
        Ok(())
    }

    /// A writer for a table's file of this run, under its staging name.
    pub fn writer(&self, table: Table, out: &OutputConfig) -> Result<TableWriter, CommitError> {
        let props = properties(out, table).map_err(|source| WriteError { path: self.staging.clone(), source })?;
        let rows = table.hints().file_rows.and_then(|rows| super::hold::file_rows(Some(rows)));
        Ok(TableWriter::rolling(&self.staging, table.name(), table.schema(), props, rows)?)
    }

    /// Moves every staged part of a table's file into the table (a run may write several), then
    /// commits them to the table's Delta log.
    fn move_parts(&self, table: Table) -> Result<(), CommitError> {
        let mut moved = Vec::new();
        for n in 0.. {
            let from = self.staging.join(part_name(table.name(), n));
            if n > 0 && !from.exists() {
                break;
            }
            let to = self.wh.table_part(table, &self.run_id, &self.ingest_date, n);
            let dir = to.parent().expect("table file has a folder");
            fs::create_dir_all(dir).map_err(io_err(dir, "cannot create the table folder"))?;
            fs::rename(&from, &to).map_err(io_err(&to, "cannot move the staged file into its table"))?;
            sync_dir(dir)?;
            moved.push(self.wh.disk_file(table, to)?);
        }
        let adds = delta::adds_for(&moved)?;
        delta::append(&self.wh.table(table), table, &self.run_id, adds)?;
        Ok(())
    }

    /// The staging folder of the run's hashes (its spills and its own segment), created.
    pub fn index_work(&self) -> Result<PathBuf, CommitError> {
        let dir = self.staging.join("index");
        fs::create_dir_all(&dir).map_err(io_err(&dir, "cannot create the staging folder"))?;
        Ok(dir)
    }

    /// A writer for the new version of an earlier run's rejects file (a replay), staged as
    /// `replace/<old_run_id>/rejects.parquet`.
    pub fn replacement_writer(&self, old_run_id: &str, out: &OutputConfig) -> Result<TableWriter, CommitError> {
        let part = self.clone_parts(self.replacement_dir(old_run_id));
        fs::create_dir_all(&part.staging).map_err(io_err(&part.staging, "cannot create the staging folder"))?;
        part.writer(Table::Rejects, out)
    }

    /// Drops a staged new version that turned out not to be needed (the replay took no row of it).
    pub fn discard_replacement(&self, old_run_id: &str) -> Result<(), CommitError> {
        let p = self.replacement_dir(old_run_id);
        fs::remove_dir_all(&p).map_err(io_err(&p, "cannot remove a staged file"))?;
        Ok(())
    }

    fn replacement_dir(&self, old_run_id: &str) -> PathBuf {
        self.staging.join("replace").join(old_run_id)
    }

    /// This run's commit with another staging folder (and no background sync of its own).
    fn clone_parts(&self, staging: PathBuf) -> RunCommit {
        RunCommit {
            wh: self.wh.clone(),
            run_id: self.run_id.clone(),
            ingest_date: self.ingest_date.clone(),
            staging,
            sync: None,
        }
    }

    /// Makes the run visible: one rename per table, then the digest list and the run's index
    /// segment, then the `runs` row. `rows` holds the row counts of posts, rejects and duplicates;
    /// `files` (digest, name) of every file the run read; `segment` the run's own index segment (the
    /// sorted hashes of its posts, none when it took none), staged in `index_work()`; `replaced` (old
    /// run id, rows kept) the rejects files a replay rewrote, each staged by `replacement_writer`
    /// (none for an import).
    pub fn commit(
        mut self,
        rows: [u64; 3],
        files: &[(String, String)],
        segment: Option<&Path>,
        runs_row: &RecordBatch,
        out: &OutputConfig,
        replaced: &[(String, u64)],
    ) -> Result<(), CommitError> {
        self.finish_sync()?;
        if hold(CommitStep::Staged) {
            return Ok(());
        }
        for (table, rows) in Table::DATA.into_iter().zip(rows) {
            let first = self.staging.join(part_name(table.name(), 0));
            if rows == 0 {
                // A table the run adds no rows to gets no file: a rerun adds its runs row and nothing else.
                fs::remove_file(&first).map_err(io_err(&first, "cannot remove an empty staged file"))?;
            } else {
                self.move_parts(table)?;
            }
            if hold(CommitStep::after(table)) {
                return Ok(());
            }
        }
        let list = self.staging.join("files.tsv");
        let text: String = files.iter().map(|(d, n)| format!("{d}\t{n}\n")).collect();
        fs::write(&list, text).map_err(io_err(&list, "cannot write the digest list"))?;
        File::open(&list).and_then(|f| f.sync_all()).map_err(io_err(&list, "cannot sync"))?;
        let list_to = self.wh.files_list(&self.run_id);
        fs::rename(&list, &list_to).map_err(io_err(&list_to, "cannot move the digest list"))?;
        if let Some(staged) = segment {
            let dir = self.wh.index_dir();
            let to = dir.join(index::run_file(&self.run_id));
            fs::create_dir_all(&dir).map_err(io_err(&dir, "cannot create the index folder"))?;
            fs::rename(staged, &to).map_err(io_err(&to, "cannot move the run's index segment"))?;
            sync_dir(&dir)?;
        }
        if hold(CommitStep::Lists) {
            return Ok(());
        }

        let mut w = self.writer(Table::Runs, out)?;
        w.write(runs_row)?;
        w.close()?;

        if !replaced.is_empty() {
            // The redo log: every new version (or a `.delete` marker for a file left empty) moves to
            // `_quarry/replace/<run_id>/` by one rename of its folder, before the runs row.
            let dir = self.staging.join("replace");
            for (old, kept) in replaced {
                if *kept == 0 {
                    let part = self.replacement_dir(old);
                    let staged = part.join(format!("{}.parquet", Table::Rejects));
                    fs::remove_file(&staged).map_err(io_err(&staged, "cannot remove an empty staged file"))?;
                    let marker = part.join(DELETE_MARKER);
                    File::create(&marker)
                        .and_then(|f| f.sync_all())
                        .map_err(io_err(&marker, "cannot write a delete marker"))?;
                    sync_dir(&part)?;
                }
            }
            sync_dir(&dir)?;
            let pending = self.wh.pending_replacements(&self.run_id);
            let parent = pending.parent().expect("replace folder has a parent");
            fs::create_dir_all(parent).map_err(io_err(parent, "cannot create the replace folder"))?;
            fs::rename(&dir, &pending).map_err(io_err(&pending, "cannot move the replaced rejects files"))?;
            sync_dir(parent)?;
        }
        if hold(CommitStep::Replacements) {
            return Ok(());
        }

        let to = self.wh.table(Table::Runs).join(format!("{}.parquet", self.run_id));
        fs::rename(self.staging.join(format!("{}.parquet", Table::Runs)), &to)
            .map_err(io_err(&to, "cannot write the runs row"))?;
        sync_dir(&self.wh.table(Table::Runs))?;
        if hold(CommitStep::RunsRow) {
            return Ok(());
        }
        let row = self.wh.disk_file(Table::Runs, to)?;
        delta::append(&self.wh.table(Table::Runs), Table::Runs, &self.run_id, delta::adds_for(&[row])?)?;
        if hold(CommitStep::Committed) {
            return Ok(());
        }
        if !replaced.is_empty() {
            self.wh.apply_replacements(&self.run_id)?;
            sync_delta_table(&self.wh, Table::Rejects)?;
        }
        fs::remove_dir_all(&self.staging).map_err(io_err(&self.staging, "cannot remove the staging folder"))?;
        Ok(())
    }
}

#[cfg(test)]
#[path = "commit_tests.rs"]
mod tests;
