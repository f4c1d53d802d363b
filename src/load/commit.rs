//! The atomic run: a lock keeps one run per warehouse (a lease on object storage); files are staged
//! outside the tables, then each table's files appear (one rename each, or an upload to their own
//! keys) and are committed to its Delta log, and the `runs` row is written and committed last. This
//! is the only module that knows how a run becomes visible, for local and remote warehouses alike.
//!
//! A rejects replay also rewrites rejects files of earlier runs (without the rows it took out).
//! Those new versions are a redo log: they wait in `_quarry/replace/<run_id>/` until the replay's
//! `runs` row exists, and only then replace the old files. A replay killed before its `runs` row
//! leaves the old files untouched (the next clean-up drops the pending versions); one killed after
//! it has counted, and the next clean-up finishes the swap (`Warehouse::apply_replacements`).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use arrow::record_batch::RecordBatch;
use deltalake::kernel::Add;

use super::delta::{self, DeltaError, DiskFile};
use super::index;
use super::location::RemoteError;
use super::parquet::{part_name, properties, TableWriter, WriteError};
use super::warehouse::{io_err, sync_dir, table_key, SyncedMark, Warehouse, WarehouseError, DELETE_MARKER};
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
    #[error(transparent)]
    Index(#[from] super::index::segment::IndexError),
}

impl From<RemoteError> for CommitError {
    fn from(e: RemoteError) -> CommitError {
        CommitError::Warehouse(e.into())
    }
}

/// `quarry init`: makes the warehouse and each of its tables' Delta logs (a table there already is
/// left as it is; creating from several processes at once makes each table once), then, under the
/// lock, recovers it in full when it is not marked synced (an older quarry's warehouse, or a
/// commit cut off) and marks it: the workers started after it find it ready.
pub fn init(location: &super::location::Location) -> Result<Warehouse, CommitError> {
    let wh = Warehouse::create(location)?;
    for table in Table::ALL {
        delta::create(&wh.table_url(table)?, table)?;
    }
    let lock = RunLock::acquire(&wh, false)?;
    if !wh.is_synced()? {
        let finished = wh.finished_runs()?;
        let (_, versions) = recover_in_full(&wh, &finished)?;
        lock.guard().check()?;
        wh.mark_synced(&SyncedMark { run: "init".into(), versions })?;
    }
    drop(lock);
    Ok(wh)
}

/// What the commit lock's holder does before it commits: the runs finished by now and, when a
/// commit was cut off since the last recovery (the warehouse is not marked synced: see
/// `Warehouse::is_synced`), the clean-up of what crashed runs left (the staging folders of live
/// runs stay) and each table's Delta log made to list exactly the committed files (logged). The
/// run's own commit removes and rewrites the mark. When the mark is there nothing needs repair, and
/// this is one listing and one read: a commit under the lock does not list every table and open
/// every log (on object storage that was ~30 requests of each commit's time under the lock).
pub fn recover(wh: &Warehouse) -> Result<Recovered, CommitError> {
    let finished = wh.finished_runs()?;
    if let Some(mark) = wh.synced()? {
        return Ok(Recovered { finished, cleaned: Default::default(), versions: mark.versions });
    }
    let (cleaned, versions) = recover_in_full(wh, &finished)?;
    Ok(Recovered { finished, cleaned, versions })
}

/// What `recover` found and did.
pub struct Recovered {
    /// The runs finished by now.
    pub finished: std::collections::BTreeSet<String>,
    /// What the clean-up removed or completed (nothing when the warehouse was marked synced).
    pub cleaned: super::warehouse::Cleanup,
    /// The latest version of each table's log: as the synced mark names them, or after the sync.
    pub versions: BTreeMap<Table, u64>,
}

/// The clean-up after crashed runs and the Delta sync: `recover` when the warehouse is not marked
/// synced, and `quarry init`; what the clean-up did, and each log's latest version after the sync.
pub fn recover_in_full(
    wh: &Warehouse,
    finished: &std::collections::BTreeSet<String>,
) -> Result<(super::warehouse::Cleanup, BTreeMap<Table, u64>), CommitError> {
    let cleaned = wh.cleanup(finished, true)?;
    let synced = sync_delta(wh, finished)?;
    log_delta(&synced);
    Ok((cleaned, synced.iter().map(|(t, s)| (*t, s.version)).collect()))
}

/// What `sync_delta` did to each table's log.
pub type Synced = Vec<(Table, delta::Synced)>;

/// Makes each table a Delta table (created when missing: a new warehouse, or one written before
/// quarry kept Delta logs, whose files are then all added) and its log list exactly the files of
/// finished runs: after `cleanup`, this rolls forward the log entries a killed run did not get to
/// write and undoes those of a run that never got its `runs` row. Under the lock, after the
/// clean-up and before the run's commit (`recover`).
pub fn sync_delta(wh: &Warehouse, finished: &std::collections::BTreeSet<String>) -> Result<Synced, CommitError> {
    let mut out = Vec::new();
    for table in Table::ALL {
        if !wh.has_delta_log(table)? {
            delta::create(&wh.table_url(table)?, table)?;
        }
        out.push((table, sync_delta_table(wh, table, finished)?));
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

/// `sync_delta` for one table: the files of finished runs (another run's uploads that wait for its
/// commit stay out of the log). A file to roll forward has its footer read for the statistics (a
/// remote one is copied into the working folder first).
pub fn sync_delta_table(
    wh: &Warehouse,
    table: Table,
    finished: &std::collections::BTreeSet<String>,
) -> Result<delta::Synced, CommitError> {
    let mut listed = wh.table_files(table)?;
    listed.retain(|f| table == Table::Runs || finished.contains(&f.run));
    let files: Vec<(String, u64)> = listed.iter().map(|f| (f.rel.clone(), f.size)).collect();
    let add_of = |rel: &str, size: u64| {
        let f = listed.iter().find(|f| f.rel == rel).expect("a listed file");
        let path = wh.local_copy(table, f).map_err(|e| DeltaError { table: table.to_string(), what: e.to_string() })?;
        delta::add_for(&DiskFile { rel: rel.to_string(), path, size })
    };
    Ok(delta::sync(&wh.table_url(table)?, table, &files, add_of)?)
}

/// The files of one run in progress, and how they become visible.
pub struct RunCommit {
    wh: Warehouse,
    run_id: String,
    ingest_date: String,
    staging: PathBuf,
    /// Locked while the run lives (`staging/.live`): another run's clean-up leaves this staging
    /// folder alone while it is.
    _live: File,
    /// The commit lock, asked before each step that publishes (`locked_by`).
    lock: LockGuard,
    /// A remote run's table files uploaded before the commit lock (`upload_early`): the key, and
    /// the staged file's size and time when it was uploaded.
    uploaded: Mutex<BTreeMap<String, (u64, std::time::SystemTime)>>,
    /// The latest version of each table's log, when known (`knows_versions`).
    versions: BTreeMap<Table, u64>,
}

/// The marker a live run holds locked in its staging folder.
pub const LIVE_MARKER: &str = ".live";

/// A staged file's size and modification time: what tells that it was not rewritten since.
fn stamp(path: &Path) -> Result<(u64, std::time::SystemTime), WarehouseError> {
    let m = fs::metadata(path).map_err(io_err(path, "cannot stat"))?;
    Ok((m.len(), m.modified().map_err(io_err(path, "cannot stat"))?))
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
    /// Starts a run: makes its staging folder and locks its live marker (call under the warehouse
    /// lock, so that no clean-up sees the folder before its marker is locked).
    pub fn begin(wh: &Warehouse, run_id: &str, ingest_date: &str) -> Result<RunCommit, CommitError> {
        let staging = wh.staging(run_id);
        fs::create_dir_all(&staging).map_err(io_err(&staging, "cannot create the staging folder"))?;
        // The marker appears locked (made and locked under another name, then renamed): a
        // clean-up never finds it there and unlocked while this run lives.
        let (marker, made) = (staging.join(LIVE_MARKER), staging.join(format!("{LIVE_MARKER}.new")));
        let live = File::create(&made).map_err(io_err(&made, "cannot create the run's live marker"))?;
        live.lock().map_err(io_err(&made, "cannot lock the run's live marker"))?;
        fs::rename(&made, &marker).map_err(io_err(&marker, "cannot place the run's live marker"))?;
        let (run_id, ingest_date) = (run_id.into(), ingest_date.into());
        let uploaded = Mutex::new(BTreeMap::new());
        let versions = BTreeMap::new();
        Ok(RunCommit {
            wh: wh.clone(),
            run_id,
            ingest_date,
            staging,
            _live: live,
            lock: LockGuard::none(),
            uploaded,
            versions,
        })
    }

    /// The commit lock this run commits under: its lease is checked before each publishing step.
    pub fn locked_by(&mut self, lock: &RunLock) {
        self.lock = lock.guard();
    }

    /// The latest versions of the tables' logs, as the recovery under the commit lock found them
    /// (`Recovered::versions`): the commit appends to those logs without reading them.
    pub fn knows_versions(&mut self, versions: BTreeMap<Table, u64>) {
        self.versions = versions;
    }

    /// A writer for a table's file of this run, under its staging name.
    pub fn writer(&self, table: Table, out: &OutputConfig) -> Result<TableWriter, CommitError> {
        self.writer_in(&self.staging, table, out)
    }

    /// Moves every staged part of a table's file into the table (a run may write several; a remote
    /// warehouse's are uploaded), then commits them to the table's Delta log (whose latest version
    /// is `latest` when known); the version committed.
    fn move_parts(&self, table: Table, latest: Option<u64>) -> Result<u64, CommitError> {
        let mut adds = Vec::new();
        for n in 0.. {
            let from = self.staging.join(part_name(table.name(), n));
            if n > 0 && !from.exists() {
                break;
            }
            let to = self.wh.table_part(table, &self.run_id, &self.ingest_date, n);
            adds.push(self.place(table, &from, &to)?);
        }
        self.append(table, adds, latest)
    }

    /// Commits `adds` to a table's Delta log: as the version after `latest` without reading the
    /// log when that is known, else (or when that version was taken, once the lock is known to be
    /// this run's still) after the newest version; the version committed.
    fn append(&self, table: Table, adds: Vec<Add>, latest: Option<u64>) -> Result<u64, CommitError> {
        let url = self.wh.table_url(table)?;
        if let Some(latest) = latest {
            if let Some(v) = delta::append_at(&url, table, &self.run_id, &adds, latest)? {
                return Ok(v);
            }
            // Taken by another writer, or by a run that took this run's lease over: only the first
            // may go on (the second's clean-up must not meet a commit of this run after it). What
            // was written since the mark is not known: the log is made to match the finished
            // runs' files first (a run that lost its lease may have left an entry there).
            self.lock.check()?;
            log_delta(&vec![(table, sync_delta_table(&self.wh, table, &self.wh.finished_runs()?)?)]);
        }
        Ok(delta::append(&url, table, &self.run_id, adds)?)
    }

    /// A remote run, before it waits for the commit lock: uploads the staged files of the tables it
    /// adds rows to (`rows`: posts, rejects, duplicates) under their final keys, where no Delta
    /// reader sees them until the commit and other runs' clean-ups spare them for a while
    /// (`QUARRY_UPLOAD_GRACE`). The commit then uploads only what changed or went missing. The
    /// uploads of workers overlap this way instead of queueing behind the lock.
    pub fn upload_early(&self, rows: [u64; 3]) -> Result<(), CommitError> {
        let Some(r) = self.wh.remote() else { return Ok(()) };
        let parts: Vec<(PathBuf, String)> = Table::DATA
            .into_iter()
            .zip(rows)
            .flat_map(|(table, rows)| {
                let staged = move |n: &u32| self.staging.join(part_name(table.name(), *n));
                (0..)
                    .take_while(move |n| rows > 0 && staged(n).exists())
                    .map(move |n| (staged(&n), self.key_of(table, n)))
            })
            .collect();
        let keys: Vec<String> = parts.iter().map(|(_, key)| key.clone()).collect();
        self.wh.note_uploads(&self.run_id, &keys)?;
        for (from, key) in parts {
            let stamp = stamp(&from)?;
            r.upload(&key, &from)?;
            self.uploaded.lock().expect("uploads").insert(key, stamp);
        }
        Ok(())
    }

    /// The key of part `n` of a table's file of this run.
    fn key_of(&self, table: Table, n: u32) -> String {
        let to = self.wh.table_part(table, &self.run_id, &self.ingest_date, n);
        table_key(table, &self.wh.rel_of(table, &to))
    }

    /// Removes what `upload_early` uploaded that the commit did not place (a table the commit's
    /// second look emptied, a part it merged away).
    fn drop_early_leftovers(&self) -> Result<(), CommitError> {
        let Some(r) = self.wh.remote() else { return Ok(()) };
        let left = std::mem::take(&mut *self.uploaded.lock().expect("uploads"));
        for key in left.keys() {
            r.delete(key)?;
        }
        Ok(())
    }

    /// Puts the staged file `from` at its place `to` in a table (a rename into the folder, or an
    /// upload to the same path under the remote prefix, unless `upload_early` put this very file
    /// there and it still is); its `Add` for the log.
    fn place(&self, table: Table, from: &Path, to: &Path) -> Result<Add, CommitError> {
        match self.wh.remote() {
            None => {
                let dir = to.parent().expect("table file has a folder");
                fs::create_dir_all(dir).map_err(io_err(dir, "cannot create the table folder"))?;
                fs::rename(from, to).map_err(io_err(to, "cannot move the staged file into its table"))?;
                sync_dir(dir)?;
                Ok(delta::add_for(&self.wh.disk_file(table, to.to_path_buf())?)?)
            }
            Some(r) => {
                let staged = self.wh.disk_file(table, from.to_path_buf())?;
                let file = DiskFile { rel: self.wh.rel_of(table, to), ..staged };
                let add = delta::add_for(&file)?;
                let key = table_key(table, &file.rel);
                let early = self.uploaded.lock().expect("uploads").remove(&key);
                let same = early.is_some_and(|e| stamp(from).ok() == Some(e)) && r.size(&key)? == Some(file.size);
                if !same {
                    r.upload(&key, from)?;
                }
                fs::remove_file(from).map_err(io_err(from, "cannot remove an uploaded staged file"))?;
                Ok(add)
            }
        }
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
        let dir = self.replacement_dir(old_run_id);
        fs::create_dir_all(&dir).map_err(io_err(&dir, "cannot create the staging folder"))?;
        self.writer_in(&dir, Table::Rejects, out)
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

    /// A writer of this run's for a table file in another staging folder.
    fn writer_in(&self, staging: &Path, table: Table, out: &OutputConfig) -> Result<TableWriter, CommitError> {
        let props = properties(out, table).map_err(|source| WriteError { path: staging.to_path_buf(), source })?;
        let rows = table.hints().file_rows.and_then(|rows| super::hold::file_rows(Some(rows)));
        Ok(TableWriter::rolling(staging, table.name(), table.schema(), props, rows)?)
    }

    /// Makes the run visible: one rename per table, then the digest list and the run's index
    /// segment, then the `runs` row. `rows` holds the row counts of posts, rejects and duplicates;
    /// `files` (digest, name) of every file the run read; `segment` the run's own index segment (the
    /// sorted hashes of its posts, none when it took none), staged in `index_work()`; `replaced` (old
    /// run id, rows kept) the rejects files a replay rewrote, each staged by `replacement_writer`
    /// (none for an import). Returns the log versions the commit landed.
    pub fn commit(
        mut self,
        rows: [u64; 3],
        files: &[(String, String)],
        segment: Option<&Path>,
        runs_row: &RecordBatch,
        out: &OutputConfig,
        replaced: &[(String, u64)],
    ) -> Result<Vec<Landed>, CommitError> {
        if hold(CommitStep::Staged) {
            return Ok(Vec::new());
        }
        self.lock.check()?;
        // From here until the mark is written again, a run killed leaves a warehouse that the next
        // holder of the lock recovers in full.
        self.wh.mark_unsynced()?;
        let mut versions = std::mem::take(&mut self.versions);
        let mut landed = Vec::new();
        for (table, rows) in Table::DATA.into_iter().zip(rows) {
            self.lock.check()?;
            let first = self.staging.join(part_name(table.name(), 0));
            if rows == 0 {
                // A table the run adds no rows to gets no file: a rerun adds its runs row and nothing else.
                fs::remove_file(&first).map_err(io_err(&first, "cannot remove an empty staged file"))?;
            } else {
                let before = versions.get(&table).copied();
                let v = self.move_parts(table, before)?;
                versions.insert(table, v);
                landed.push(Landed { table, before, version: v });
            }
            if hold(CommitStep::after(table)) {
                return Ok(Vec::new());
            }
        }
        self.drop_early_leftovers()?;
        let list = self.staging.join("files.tsv");
        let text: String = files.iter().map(|(d, n)| format!("{d}\t{n}\n")).collect();
        fs::write(&list, text).map_err(io_err(&list, "cannot write the digest list"))?;
        File::open(&list).and_then(|f| f.sync_all()).map_err(io_err(&list, "cannot sync"))?;
        self.wh.place_files_list(&self.run_id, &list)?;
        if let Some(staged) = segment {
            let _copy = self.wh.lock_local_copy()?;
            let dir = self.wh.index_dir();
            let name = index::run_file(&self.run_id);
            let to = dir.join(&name);
            fs::create_dir_all(&dir).map_err(io_err(&dir, "cannot create the index folder"))?;
            fs::rename(staged, &to).map_err(io_err(&to, "cannot move the run's index segment"))?;
            sync_dir(&dir)?;
            self.wh.upload_segment(&name)?;
        }
        if hold(CommitStep::Lists) {
            return Ok(Vec::new());
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
            match self.wh.remote() {
                None => {
                    let pending = self.wh.pending_replacements(&self.run_id);
                    let parent = pending.parent().expect("replace folder has a parent");
                    fs::create_dir_all(parent).map_err(io_err(parent, "cannot create the replace folder"))?;
                    fs::rename(&dir, &pending).map_err(io_err(&pending, "cannot move the replaced rejects files"))?;
                    sync_dir(parent)?;
                }
                // Each new version is uploaded (or its marker written) under the redo log's key.
                Some(r) => {
                    for (old, kept) in replaced {
                        let name =
                            if *kept == 0 { DELETE_MARKER.to_string() } else { format!("{}.parquet", Table::Rejects) };
                        let key = Warehouse::pending_key(&self.run_id, old, &name);
                        r.upload(&key, &self.replacement_dir(old).join(&name))?;
                    }
                }
            }
        }
        if hold(CommitStep::Replacements) {
            return Ok(Vec::new());
        }

        self.lock.check()?;
        let staged = self.staging.join(format!("{}.parquet", Table::Runs));
        let to = self.wh.table(Table::Runs).join(format!("{}.parquet", self.run_id));
        let row = match self.wh.remote() {
            None => {
                fs::rename(&staged, &to).map_err(io_err(&to, "cannot write the runs row"))?;
                sync_dir(&self.wh.table(Table::Runs))?;
                None
            }
            Some(_) => Some(self.place(Table::Runs, &staged, &to)?),
        };
        if hold(CommitStep::RunsRow) {
            return Ok(Vec::new());
        }
        let row = match row {
            Some(add) => add,
            None => delta::add_for(&self.wh.disk_file(Table::Runs, to)?)?,
        };
        let before = versions.get(&Table::Runs).copied();
        let v = self.append(Table::Runs, vec![row], before)?;
        versions.insert(Table::Runs, v);
        landed.push(Landed { table: Table::Runs, before, version: v });
        if hold(CommitStep::Committed) {
            return Ok(Vec::new());
        }
        if !replaced.is_empty() {
            self.wh.apply_replacements(&self.run_id)?;
            sync_delta_table(&self.wh, Table::Rejects, &self.wh.finished_runs()?)?;
            versions.remove(&Table::Rejects); // the sync may have committed
        }
        // The run counts now: a mark that cannot be written (a lease that lapsed, an I/O error)
        // costs the next holder of the lock a full recovery, not this run its success.
        let mark = SyncedMark { run: self.run_id.clone(), versions };
        if let Err(e) = self.lock.check().and_then(|()| Ok(self.wh.mark_synced(&mark)?)) {
            tracing::warn!(
                "commit: the run is committed, the synced mark is not written ({e}): the next run recovers in full"
            );
        }
        if let Err(e) = self.wh.drop_upload_note(&self.run_id) {
            tracing::warn!("commit: the run is committed; its upload note stays for the next clean-up ({e})");
        }
        fs::remove_dir_all(&self.staging).map_err(io_err(&self.staging, "cannot remove the staging folder"))?;
        Ok(landed)
    }
}

/// A version of a table's log that a run's commit landed, and the latest one it knew before
/// (the synced mark's; `None` when it did not know).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Landed {
    pub table: Table,
    pub before: Option<u64>,
    pub version: u64,
}

impl Landed {
    /// Whether this commit is the one to checkpoint its log when checkpoints are written every
    /// `every` versions: it took the log past a multiple of `every` (from the version before it,
    /// which may be a few behind when another writer committed meanwhile).
    pub fn passes(&self, every: u64) -> bool {
        let before = self.before.unwrap_or(self.version.saturating_sub(1));
        every > 0 && self.version / every > before / every
    }
}

mod lock;
mod recheck;
pub use lock::{LockGuard, LockedError, RunLock};
pub use recheck::{taken_meanwhile, Moved};

#[cfg(test)]
#[path = "commit_tests.rs"]
mod tests;
