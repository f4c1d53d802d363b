//! The warehouse directory: table layout, finished runs, the hash index, imported file digests,
//! and the clean-up of what a crashed run left.
//!
//! ```text
//! WH/posts/ingest_date=YYYY-MM-DD/<run_id>.parquet
//! WH/rejects/<run_id>.parquet
//! WH/duplicates/<run_id>.parquet
//! WH/runs/<run_id>.parquet            one row, written last: the run counts from here on
//! WH/<table>/_delta_log/             each table's Delta log: the files above, committed (`load::delta`)
//! WH/_quarry/lock                     held by the run in progress
//! WH/_quarry/staging/<run_id>/        files in progress, never inside a table folder
//! WH/_quarry/files/<run_id>.tsv       digest and name of every file the run read
//! WH/_quarry/index/                   the dedupe index: every posts hash with its run (`load::index`)
//! WH/_quarry/replace/<run_id>/<old_run_id>/rejects.parquet | delete
//!                                     a replay's new versions of earlier rejects files, waiting
//!                                     for its runs row (then swapped in) or dropped (no runs row)
//! ```

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::delta::DiskFile;
use super::parquet::{part_name, PART};
use crate::contract::Table;
/// Marker of a replaced rejects file that a replay left empty: the file is removed, not replaced.
pub const DELETE_MARKER: &str = "delete";

/// A warehouse operation that failed, with the path it was about.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {what}: {source}")]
pub struct WarehouseError {
    /// The file or folder.
    pub path: PathBuf,
    /// What quarry was doing.
    pub what: &'static str,
    /// The cause.
    #[source]
    pub source: io::Error,
}

pub(crate) fn io_err<'a>(path: &'a Path, what: &'static str) -> impl FnOnce(io::Error) -> WarehouseError + 'a {
    move |source| WarehouseError { path: path.to_path_buf(), what, source }
}

/// The run id of a table file's name: `<run_id>.parquet` or `<run_id>-part-<n>.parquet`.
fn run_of_file(name: &str) -> Option<&str> {
    let stem = name.strip_suffix(".parquet")?;
    Some(stem.split_once(PART).map_or(stem, |(run, _)| run))
}

/// A warehouse directory.
#[derive(Debug, Clone)]
pub struct Warehouse {
    root: PathBuf,
}

/// What `cleanup` removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Cleanup {
    /// Files of runs that never wrote their `runs` row.
    pub removed: Vec<PathBuf>,
    /// Rejects files swapped for a replay's new versions that a killed replay had left pending.
    pub completed: Vec<PathBuf>,
}

impl Warehouse {
    /// Opens (creating if needed) a warehouse directory and checks it can be written.
    pub fn create(root: &Path) -> Result<Warehouse, WarehouseError> {
        let wh = Warehouse { root: root.to_path_buf() };
        let tables = Table::ALL.map(|t| wh.table(t));
        for dir in tables.iter().cloned().chain([wh.internal(), wh.files_dir()]) {
            fs::create_dir_all(&dir).map_err(io_err(&dir, "cannot create the warehouse folder"))?;
        }
        let probe = wh.internal().join(".write-probe");
        fs::write(&probe, b"").map_err(io_err(&wh.root, "the warehouse is not writable"))?;
        let _ = fs::remove_file(&probe);
        Ok(wh)
    }

    /// Opens an existing warehouse for reading.
    pub fn open(root: &Path) -> Result<Warehouse, WarehouseError> {
        let runs = root.join(Table::Runs.name());
        fs::metadata(&runs).map_err(io_err(&runs, "not a quarry warehouse (no runs folder)"))?;
        Ok(Warehouse { root: root.to_path_buf() })
    }

    /// The warehouse folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A table's folder.
    pub fn table(&self, table: Table) -> PathBuf {
        self.root.join(table.name())
    }

    /// quarry's own folder (lock, staging, digests).
    pub fn internal(&self) -> PathBuf {
        self.root.join("_quarry")
    }

    /// Staging folder of a run.
    pub fn staging(&self, run_id: &str) -> PathBuf {
        self.internal().join("staging").join(run_id)
    }

    fn files_dir(&self) -> PathBuf {
        self.internal().join("files")
    }

    /// The dedupe index's folder.
    pub fn index_dir(&self) -> PathBuf {
        super::index::dir_of(&self.internal())
    }

    /// Where a replay's new versions of earlier rejects files wait for its `runs` row.
    pub fn pending_replacements(&self, run_id: &str) -> PathBuf {
        self.internal().join("replace").join(run_id)
    }

    /// Swaps a finished replay's pending new versions into `rejects` (each by one rename over the
    /// old file, or a removal for a `delete` marker), then drops its pending folder. Idempotent: a
    /// swap cut short by a kill is finished by calling it again. Returns the files it changed.
    pub fn apply_replacements(&self, run_id: &str) -> Result<Vec<PathBuf>, WarehouseError> {
        let pending = self.pending_replacements(run_id);
        let mut done = Vec::new();
        let entries = match fs::read_dir(&pending) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(done),
            Err(e) => return Err(io_err(&pending, "cannot list replaced rejects files")(e)),
        };
        let mut parts: Vec<PathBuf> = Vec::new();
        for e in entries {
            parts.push(e.map_err(io_err(&pending, "cannot list replaced rejects files"))?.path());
        }
        parts.sort();
        let table = self.table(Table::Rejects);
        for part in parts {
            let Some(old) = part.file_name().and_then(|n| n.to_str()).map(str::to_string) else { continue };
            let target = table.join(format!("{old}.parquet"));
            let new = part.join(format!("{}.parquet", Table::Rejects));
            if new.exists() {
                fs::rename(&new, &target).map_err(io_err(&target, "cannot swap in a replayed rejects file"))?;
                done.push(target);
            } else if part.join(DELETE_MARKER).exists() {
                match fs::remove_file(&target) {
                    Ok(()) => done.push(target),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_err(&target, "cannot remove a replayed rejects file")(e)),
                }
            }
        }
        fs::File::open(&table).and_then(|d| d.sync_all()).map_err(io_err(&table, "cannot sync folder"))?;
        fs::remove_dir_all(&pending).map_err(io_err(&pending, "cannot remove the replaced rejects folder"))?;
        Ok(done)
    }

    /// Where a run's digest list lives once committed.
    pub fn files_list(&self, run_id: &str) -> PathBuf {
        self.files_dir().join(format!("{run_id}.tsv"))
    }

    /// Final path of a run's file in a table.
    pub fn table_file(&self, table: Table, run_id: &str, ingest_date: &str) -> PathBuf {
        self.table_part(table, run_id, ingest_date, 0)
    }

    /// Final path of part `n` of a run's file in a table (`part_name`).
    pub fn table_part(&self, table: Table, run_id: &str, ingest_date: &str, n: u32) -> PathBuf {
        let dir = if table == Table::Posts {
            self.table(Table::Posts).join(format!("ingest_date={ingest_date}"))
        } else {
            self.table(table)
        };
        dir.join(part_name(run_id, n))
    }

    /// Run ids of finished runs (those with a `runs` row), in order.
    pub fn finished_runs(&self) -> Result<BTreeSet<String>, WarehouseError> {
        let dir = self.table(Table::Runs);
        let mut out = BTreeSet::new();
        for e in fs::read_dir(&dir).map_err(io_err(&dir, "cannot list runs"))? {
            let e = e.map_err(io_err(&dir, "cannot list runs"))?;
            if let Some(id) = e.file_name().to_str().and_then(|n| n.strip_suffix(".parquet")) {
                out.insert(id.to_string());
            }
        }
        Ok(out)
    }

    /// A file of a table as its Delta log names it: relative to the table folder, `/` separated.
    pub fn disk_file(&self, table: Table, path: PathBuf) -> Result<DiskFile, WarehouseError> {
        let size = fs::metadata(&path).map_err(io_err(&path, "cannot stat"))?.len();
        let dir = self.table(table);
        let rel = path.strip_prefix(&dir).unwrap_or(&path);
        let rel = rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
        Ok(DiskFile { rel, path, size })
    }

    /// Every Parquet file of a table with the run id it belongs to (from its name).
    pub fn table_files(&self, table: Table) -> Result<Vec<(String, PathBuf)>, WarehouseError> {
        let mut out = Vec::new();
        let dir = self.table(table);
        let mut stack = vec![dir];
        while let Some(d) = stack.pop() {
            let entries = match fs::read_dir(&d) {
                Ok(e) => e,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err(&d, "cannot list table files")(e)),
            };
            for e in entries {
                let e = e.map_err(io_err(&d, "cannot list table files"))?;
                let p = e.path();
                if e.file_type().map_err(io_err(&p, "cannot stat"))?.is_dir() {
                    stack.push(p);
                } else if let Some(id) = e.file_name().to_str().and_then(run_of_file) {
                    out.push((id.to_string(), p));
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Removes every file of a run that has no `runs` row (a crashed run), staging folders, and
    /// digest lists of such runs; drops the pending rejects replacements of a replay without a
    /// `runs` row and finishes the swap of one that has it. Must run under the lock, before
    /// anything else.
    pub fn cleanup(&self, finished: &BTreeSet<String>) -> Result<Cleanup, WarehouseError> {
        let mut c = Cleanup::default();
        let replace = self.internal().join("replace");
        if replace.exists() {
            let mut ids = Vec::new();
            for e in fs::read_dir(&replace).map_err(io_err(&replace, "cannot list replaced rejects files"))? {
                ids.push(e.map_err(io_err(&replace, "cannot list replaced rejects files"))?.path());
            }
            ids.sort();
            for p in ids {
                let id = p.file_name().and_then(|s| s.to_str()).unwrap_or("").to_string();
                if finished.contains(&id) {
                    c.completed.extend(self.apply_replacements(&id)?);
                } else {
                    fs::remove_dir_all(&p).map_err(io_err(&p, "cannot remove a crashed replay's files"))?;
                    c.removed.push(p);
                }
            }
        }
        for table in Table::DATA {
            for (id, path) in self.table_files(table)? {
                if !finished.contains(&id) {
                    fs::remove_file(&path).map_err(io_err(&path, "cannot remove a crashed run's file"))?;
                    c.removed.push(path);
                }
            }
        }
        let staging = self.internal().join("staging");
        if staging.exists() {
            for e in fs::read_dir(&staging).map_err(io_err(&staging, "cannot list staging"))? {
                let p = e.map_err(io_err(&staging, "cannot list staging"))?.path();
                fs::remove_dir_all(&p).map_err(io_err(&p, "cannot remove a crashed run's staging folder"))?;
                c.removed.push(p);
            }
        }
        let dir = self.files_dir();
        if dir.exists() {
            for e in fs::read_dir(&dir).map_err(io_err(&dir, "cannot list run files"))? {
                let p = e.map_err(io_err(&dir, "cannot list run files"))?.path();
                let id = p.file_stem().and_then(|s| s.to_str()).unwrap_or("");
                if !finished.contains(id) {
                    fs::remove_file(&p).map_err(io_err(&p, "cannot remove a crashed run's digest list"))?;
                    c.removed.push(p);
                }
            }
        }
        Ok(c)
    }

    /// Digests of the files finished runs read, with the run that read each.
    pub fn imported_digests(&self, finished: &BTreeSet<String>) -> Result<HashMap<String, String>, WarehouseError> {
        let mut out = HashMap::new();
        for id in finished {
            let p = self.files_list(id);
            let text = match fs::read_to_string(&p) {
                Ok(t) => t,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err(&p, "cannot read the digest list")(e)),
            };
            for line in text.lines() {
                if let Some((digest, _)) = line.split_once('\t') {
                    out.entry(digest.to_string()).or_insert_with(|| id.clone());
                }
            }
        }
        Ok(out)
    }
}
