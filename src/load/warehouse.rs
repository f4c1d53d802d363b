//! The warehouse: table layout, finished runs, the hash index, imported file digests, and the
//! clean-up of what a crashed run left. A local warehouse is a folder laid out as below; a remote
//! one (`load::location`) holds the same keys under its prefix, and its `_quarry/staging/` and the
//! copies of what a run reads live in a local working folder instead.
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

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::delta::DiskFile;
use super::location::{Location, Remote, RemoteError};
use super::parquet::{part_name, PART};
use crate::contract::Table;
/// Marker of a replaced rejects file that a replay left empty: the file is removed, not replaced.
pub const DELETE_MARKER: &str = "delete";

/// A warehouse operation that failed, with the path (or object URL) it was about.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {what}: {source}")]
pub struct WarehouseError {
    /// The file or folder, or the object's URL.
    pub path: PathBuf,
    /// What quarry was doing.
    pub what: &'static str,
    /// The cause.
    #[source]
    pub source: io::Error,
}

/// What the synced mark (`Warehouse::synced`) holds: the run (or `init`) that wrote it, and the
/// latest version of each table's Delta log it knew (one it does not know is left out: a replay's
/// rejects, synced after the swap). The next commit appends to a known log as the next version
/// without reading it (`delta::append_at`), to an unknown one through deltalake.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncedMark {
    pub run: String,
    pub versions: BTreeMap<Table, u64>,
}

impl SyncedMark {
    fn to_json(&self) -> String {
        let versions: serde_json::Map<String, serde_json::Value> =
            self.versions.iter().map(|(t, v)| (t.name().to_string(), (*v).into())).collect();
        serde_json::json!({ "run": self.run, "versions": versions }).to_string() + "\n"
    }

    fn parse(bytes: &[u8]) -> Option<SyncedMark> {
        let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
        let run = v.get("run")?.as_str()?.to_string();
        let listed = v.get("versions")?.as_object()?;
        let versions = Table::ALL.into_iter().filter_map(|t| Some((t, listed.get(t.name())?.as_u64()?))).collect();
        Some(SyncedMark { run, versions })
    }
}

/// The mark of a warehouse whose Delta logs need no recovery (`Warehouse::is_synced`).
const SYNCED: &str = "synced";

pub(crate) fn io_err<'a>(path: &'a Path, what: &'static str) -> impl FnOnce(io::Error) -> WarehouseError + 'a {
    move |source| WarehouseError { path: path.to_path_buf(), what, source }
}

/// Makes a folder's entries (a rename or removal in it) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), WarehouseError> {
    fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io_err(dir, "cannot sync folder"))
}

impl From<RemoteError> for WarehouseError {
    fn from(e: RemoteError) -> WarehouseError {
        WarehouseError { path: PathBuf::from(e.url), what: "object storage", source: io::Error::other(e.what) }
    }
}

/// The run id of a table file's name: `<run_id>.parquet` or `<run_id>-part-<n>.parquet`.
pub fn run_of_file(name: &str) -> Option<&str> {
    let stem = name.strip_suffix(".parquet")?;
    Some(stem.split_once(PART).map_or(stem, |(run, _)| run))
}

/// A data file of a table: the run it belongs to, its path relative to the table (`/` separated,
/// as the Delta log names it), its size, and for an object its version tag (a replay rewrites
/// rejects files in place: the tag tells a copy of the old version from the new one).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TableFile {
    pub run: String,
    pub rel: String,
    pub size: u64,
    pub version: Option<String>,
    /// When an object was written (ms since the epoch); `None` for a local file.
    pub written_ms: Option<i64>,
}

/// A warehouse: where it is, the local folder quarry works in, and for a remote one its client.
#[derive(Debug, Clone)]
pub struct Warehouse {
    location: Location,
    root: PathBuf,
    remote: Option<Remote>,
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
    fn at(location: &Location) -> Result<Warehouse, WarehouseError> {
        let remote = match location {
            Location::Local(_) => None,
            Location::S3 { bucket, prefix } => Some(Remote::connect(bucket, prefix)?),
        };
        Ok(Warehouse { location: location.clone(), root: location.work_dir(), remote })
    }

    /// A warehouse `s3://test/wh` on `remote` (an in-memory store), whose working folder is `root`.
    #[cfg(test)]
    pub(crate) fn on_store(root: &Path, remote: Remote) -> Warehouse {
        let location = Location::S3 { bucket: "test".into(), prefix: "wh".into() };
        Warehouse { location, root: root.to_path_buf(), remote: Some(remote) }
    }

    /// Opens (creating if needed) a warehouse and checks it can be written.
    pub fn create(location: &Location) -> Result<Warehouse, WarehouseError> {
        let wh = Warehouse::at(location)?;
        let dirs: Vec<PathBuf> = match wh.remote {
            None => Table::ALL.map(|t| wh.table(t)).into_iter().chain([wh.internal(), wh.files_dir()]).collect(),
            Some(_) => vec![wh.internal(), wh.files_dir()],
        };
        for dir in dirs {
            fs::create_dir_all(&dir).map_err(io_err(&dir, "cannot create the warehouse folder"))?;
        }
        let probe = wh.internal().join(".write-probe");
        fs::write(&probe, b"").map_err(io_err(&wh.root, "the warehouse is not writable"))?;
        let _ = fs::remove_file(&probe);
        if let Some(r) = &wh.remote {
            r.put("_quarry/.write-probe", Vec::new())?;
            r.delete("_quarry/.write-probe")?;
        }
        Ok(wh)
    }

    /// Opens an existing warehouse for reading.
    pub fn open(location: &Location) -> Result<Warehouse, WarehouseError> {
        let wh = Warehouse::at(location)?;
        match &wh.remote {
            None => {
                let runs = wh.table(Table::Runs);
                fs::metadata(&runs).map_err(io_err(&runs, "not a quarry warehouse (no runs folder)"))?;
            }
            Some(r) => {
                if r.list("runs")?.is_empty() {
                    return Err(WarehouseError {
                        path: PathBuf::from(r.url("runs")),
                        what: "not a quarry warehouse (no runs table)",
                        source: io::ErrorKind::NotFound.into(),
                    });
                }
            }
        }
        Ok(wh)
    }

    /// Where the warehouse is.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// The remote warehouse's client; `None` for a local warehouse.
    pub fn remote(&self) -> Option<&Remote> {
        self.remote.as_ref()
    }

    /// The local folder quarry works in: the warehouse itself, or a remote warehouse's cache folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A table's local folder (for a remote warehouse: where copies of its files are kept).
    pub fn table(&self, table: Table) -> PathBuf {
        self.root.join(table.name())
    }

    /// A table's location as Delta names it (a `file://` or `s3://` URL ending in `/`).
    pub fn table_url(&self, table: Table) -> Result<url::Url, WarehouseError> {
        let bad = |what| WarehouseError { path: self.table(table), what, source: io::ErrorKind::InvalidInput.into() };
        match &self.remote {
            None => {
                let dir = self.table(table);
                let abs = std::path::absolute(&dir).map_err(io_err(&dir, "cannot resolve the folder"))?;
                url::Url::from_directory_path(&abs).map_err(|()| bad("not a path a URL can name"))
            }
            Some(r) => {
                url::Url::parse(&format!("{}/", r.url(table.name()))).map_err(|_| bad("not a key a URL can name"))
            }
        }
    }

    /// Whether a table has a Delta log yet.
    pub fn has_delta_log(&self, table: Table) -> Result<bool, WarehouseError> {
        Ok(match &self.remote {
            None => self.table(table).join("_delta_log").is_dir(),
            Some(r) => r.any(&format!("{}/_delta_log", table.name()))?,
        })
    }

    /// A table file as shown to people: its path, or its object's URL.
    pub fn file_shown(&self, table: Table, rel: &str) -> String {
        match &self.remote {
            None => self.table(table).join(rel).display().to_string(),
            Some(r) => r.url(&table_key(table, rel)),
        }
    }

    /// quarry's own folder (lock, staging, digests).
    pub fn internal(&self) -> PathBuf {
        self.root.join("_quarry")
    }

    /// The mark `_quarry/synced`, when it is there: every table's Delta log lists exactly the
    /// files of the finished runs and nothing a crashed run left needs undoing or rolling forward.
    /// A committing run removes it before its first publishing step and writes it after its last,
    /// with the latest version of each log it committed to; a run that finds it missing under the
    /// lock recovers in full (clean-up and the Delta sync) and writes it again. A warehouse of an
    /// older quarry has none (and an unreadable one counts as none): its first run recovers in full.
    pub fn synced(&self) -> Result<Option<SyncedMark>, WarehouseError> {
        let bytes = match &self.remote {
            None => {
                let path = self.internal().join(SYNCED);
                match fs::read(&path) {
                    Ok(b) => b,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                    Err(e) => return Err(io_err(&path, "cannot read the synced mark")(e)),
                }
            }
            Some(r) => match r.get(&format!("_quarry/{SYNCED}"))? {
                Some(o) => o.bytes.to_vec(),
                None => return Ok(None),
            },
        };
        Ok(SyncedMark::parse(&bytes))
    }

    /// Whether the warehouse is marked synced (`synced`).
    pub fn is_synced(&self) -> Result<bool, WarehouseError> {
        Ok(self.synced()?.is_some())
    }

    /// Writes the mark `synced` reads.
    pub fn mark_synced(&self, mark: &SyncedMark) -> Result<(), WarehouseError> {
        let text = mark.to_json();
        match &self.remote {
            None => {
                let dir = self.internal();
                let (tmp, to) = (dir.join(format!("{SYNCED}.tmp")), dir.join(SYNCED));
                fs::write(&tmp, &text).map_err(io_err(&tmp, "cannot write the synced mark"))?;
                fs::File::open(&tmp).and_then(|f| f.sync_all()).map_err(io_err(&tmp, "cannot sync"))?;
                fs::rename(&tmp, &to).map_err(io_err(&to, "cannot write the synced mark"))?;
                sync_dir(&dir)
            }
            Some(r) => Ok(r.put(&format!("_quarry/{SYNCED}"), text.into_bytes())?),
        }
    }

    /// Removes the mark `synced` reads (a commit is about to change what the logs must list).
    pub fn mark_unsynced(&self) -> Result<(), WarehouseError> {
        match &self.remote {
            None => {
                let (dir, path) = (self.internal(), self.internal().join(SYNCED));
                match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                    Err(e) => return Err(io_err(&path, "cannot remove the synced mark")(e)),
                }
                sync_dir(&dir)
            }
            Some(r) => Ok(r.delete(&format!("_quarry/{SYNCED}"))?),
        }
    }

    /// Staging folder of a run (local for every warehouse).
    pub fn staging(&self, run_id: &str) -> PathBuf {
        self.internal().join("staging").join(run_id)
    }

    /// Claims the staging folder of `run_id` for a new run: false when it exists (another run
    /// picked the same id: the caller picks another). One `create_dir`, so that two runs starting
    /// at once without the lock never share one.
    pub fn claim_staging(&self, run_id: &str) -> Result<bool, WarehouseError> {
        let dir = self.staging(run_id);
        let parent = self.internal().join("staging");
        fs::create_dir_all(&parent).map_err(io_err(&parent, "cannot create the staging folder"))?;
        match fs::create_dir(&dir) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(io_err(&dir, "cannot create the staging folder")(e)),
        }
    }

    /// For a remote warehouse, the local copy of its index is this machine's, shared by every
    /// run with the same working folder: what copies it down, repairs it or settles a run into it
    /// holds this lock (a file lock on `_quarry/copy.lock` there) while it does. `None` for a local
    /// warehouse, whose index is written only under the warehouse lock.
    pub fn lock_local_copy(&self) -> Result<Option<fs::File>, WarehouseError> {
        if self.remote.is_none() {
            return Ok(None);
        }
        let path = self.internal().join("copy.lock");
        let file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err(&path, "cannot open the lock of the local copy"))?;
        file.lock().map_err(io_err(&path, "cannot lock the local copy"))?;
        Ok(Some(file))
    }

    fn files_dir(&self) -> PathBuf {
        self.internal().join("files")
    }

    /// The dedupe index's folder (for a remote warehouse, the local copy of its index).
    pub fn index_dir(&self) -> PathBuf {
        super::index::dir_of(&self.internal())
    }

    /// Where a replay's new versions of earlier rejects files wait for its `runs` row.
    pub fn pending_replacements(&self, run_id: &str) -> PathBuf {
        self.internal().join("replace").join(run_id)
    }

    /// The key of a replay's pending replacement in a remote warehouse.
    pub fn pending_key(run_id: &str, old_run_id: &str, name: &str) -> String {
        format!("_quarry/replace/{run_id}/{old_run_id}/{name}")
    }

    /// Swaps a finished replay's pending new versions into `rejects` (each by one rename over the
    /// old file, or a removal for a `delete` marker; a copy over the old object in a remote
    /// warehouse), then drops its pending folder. Idempotent: a swap cut short by a kill is
    /// finished by calling it again. Returns the files it changed.
    pub fn apply_replacements(&self, run_id: &str) -> Result<Vec<PathBuf>, WarehouseError> {
        if let Some(r) = &self.remote {
            return self.apply_remote_replacements(r, run_id);
        }
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
        sync_dir(&table)?;
        fs::remove_dir_all(&pending).map_err(io_err(&pending, "cannot remove the replaced rejects folder"))?;
        Ok(done)
    }

    fn apply_remote_replacements(&self, r: &Remote, run_id: &str) -> Result<Vec<PathBuf>, WarehouseError> {
        let keys = r.list(&format!("_quarry/replace/{run_id}"))?;
        // old run id → the names its pending folder holds (rejects.parquet or the delete marker)
        let mut parts: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (key, _) in &keys {
            let mut c = key.rsplitn(3, '/');
            if let (Some(name), Some(old)) = (c.next(), c.next()) {
                parts.entry(old.to_string()).or_default().insert(name.to_string());
            }
        }
        let rejects = format!("{}.parquet", Table::Rejects);
        let mut done = Vec::new();
        for (old, names) in parts {
            let target = format!("{}/{old}.parquet", Table::Rejects.name());
            if names.contains(&rejects) {
                r.copy(&Warehouse::pending_key(run_id, &old, &rejects), &target)?;
            } else if names.contains(DELETE_MARKER) {
                r.delete(&target)?;
            } else {
                continue;
            }
            done.push(PathBuf::from(r.url(&target)));
        }
        for (key, _) in keys {
            r.delete(&key)?;
        }
        Ok(done)
    }

    /// Where a run's digest list lives once committed (for a remote warehouse, its local copy).
    pub fn files_list(&self, run_id: &str) -> PathBuf {
        self.files_dir().join(format!("{run_id}.tsv"))
    }

    pub(crate) fn files_key(run_id: &str) -> String {
        format!("_quarry/files/{run_id}.tsv")
    }

    /// Commits a run's digest list, staged at `staged`: moved into place, or uploaded.
    pub fn place_files_list(&self, run_id: &str, staged: &Path) -> Result<(), WarehouseError> {
        if let Some(r) = &self.remote {
            r.upload(&Warehouse::files_key(run_id), staged)?;
        }
        let to = self.files_list(run_id);
        fs::rename(staged, &to).map_err(io_err(&to, "cannot move the digest list"))
    }

    /// Final path of a run's file in a table.
    pub fn table_file(&self, table: Table, run_id: &str, ingest_date: &str) -> PathBuf {
        self.table_part(table, run_id, ingest_date, 0)
    }

    /// Final path of part `n` of a run's file in a table (`part_name`); for a remote warehouse,
    /// where its local copy would be (its key is the same path relative to the warehouse).
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
        if self.remote.is_some() {
            return Ok(self.table_files(Table::Runs)?.into_iter().map(|f| f.run).collect());
        }
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
        Ok(DiskFile { rel: self.rel_of(table, &path), path, size })
    }

    /// `path` (in the table's local folder) relative to it, `/` separated.
    pub fn rel_of(&self, table: Table, path: &Path) -> String {
        let dir = self.table(table);
        let rel = path.strip_prefix(&dir).unwrap_or(path);
        rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/")
    }

    /// Every Parquet file of a table (not its Delta log), sorted by run and path.
    pub fn table_files(&self, table: Table) -> Result<Vec<TableFile>, WarehouseError> {
        let mut out = Vec::new();
        if let Some(r) = &self.remote {
            let strip = table.name().len() + 1;
            for o in r.list_versions(table.name())? {
                let rel = &o.key[strip.min(o.key.len())..];
                if rel.starts_with("_delta_log/") {
                    continue;
                }
                if let Some(run) = rel.rsplit('/').next().and_then(run_of_file) {
                    let (run, rel) = (run.to_string(), rel.to_string());
                    out.push(TableFile { run, rel, size: o.size, version: o.e_tag, written_ms: Some(o.written_ms) });
                }
            }
            out.sort();
            return Ok(out);
        }
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
                let kind = e.file_type().map_err(io_err(&p, "cannot stat"))?;
                if kind.is_dir() {
                    // The Delta log is no data: its checkpoints end in `.parquet` too.
                    if e.file_name() != "_delta_log" {
                        stack.push(p);
                    }
                } else if let Some(id) = e.file_name().to_str().and_then(run_of_file) {
                    let size = e.metadata().map_err(io_err(&p, "cannot stat"))?.len();
                    let rel = self.rel_of(table, &p);
                    out.push(TableFile { run: id.to_string(), rel, size, version: None, written_ms: None });
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// A local path to read a table file at: the file itself, or for a remote warehouse a copy in
    /// the working folder, downloaded unless the copy there is of the same size and version (kept
    /// beside it in `<name>.version`).
    pub fn local_copy(&self, table: Table, f: &TableFile) -> Result<PathBuf, WarehouseError> {
        let path = self.table(table).join(&f.rel);
        if let Some(r) = &self.remote {
            let tag = path.with_extension("parquet.version");
            let version = f.version.as_deref().unwrap_or("");
            let fresh = fs::metadata(&path).map(|m| m.len()).ok() == Some(f.size)
                && fs::read_to_string(&tag).is_ok_and(|v| v == version);
            if !fresh {
                let _ = fs::remove_file(&tag);
                r.download(&table_key(table, &f.rel), &path)?;
                fs::write(&tag, version).map_err(io_err(&tag, "cannot keep a copy's version"))?;
            }
        }
        Ok(path)
    }

    fn remove_table_file(&self, table: Table, rel: &str) -> Result<PathBuf, WarehouseError> {
        let path = self.table(table).join(rel);
        match &self.remote {
            None => {
                fs::remove_file(&path).map_err(io_err(&path, "cannot remove a crashed run's file"))?;
                Ok(path)
            }
            Some(r) => {
                let key = table_key(table, rel);
                r.delete(&key)?;
                let _ = fs::remove_file(&path);
                Ok(PathBuf::from(r.url(&key)))
            }
        }
    }

    /// The key of a remote run's upload note.
    fn upload_note(run_id: &str) -> String {
        format!("_quarry/uploads/{run_id}.json")
    }

    /// Before a remote run uploads table files ahead of its commit: notes their keys, so that a
    /// clean-up finds them if the run dies before it commits (`cleanup` without listing tables).
    pub fn note_uploads(&self, run_id: &str, keys: &[String]) -> Result<(), WarehouseError> {
        let Some(r) = &self.remote else { return Ok(()) };
        Ok(r.put(&Warehouse::upload_note(run_id), serde_json::to_vec(keys).expect("keys print"))?)
    }

    /// After a run's commit: its upload note is no longer needed.
    pub fn drop_upload_note(&self, run_id: &str) -> Result<(), WarehouseError> {
        let Some(r) = &self.remote else { return Ok(()) };
        Ok(r.delete(&Warehouse::upload_note(run_id))?)
    }

    /// The upload notes: a finished run's is dropped; an unfinished run's older than the grace
    /// period (a live run's is younger) is dropped with the objects it names.
    fn cleanup_upload_notes(
        &self,
        finished: &BTreeSet<String>,
        (now_ms, grace_ms): (i64, i64),
        c: &mut Cleanup,
    ) -> Result<(), WarehouseError> {
        let Some(r) = &self.remote else { return Ok(()) };
        for (note, run) in self.due_upload_notes(finished, (now_ms, grace_ms))? {
            if finished.contains(&run) {
                r.delete(&note)?;
                continue;
            }
            let keys: Vec<String> = match r.get(&note)? {
                Some(o) => serde_json::from_slice(&o.bytes).unwrap_or_default(),
                None => continue,
            };
            // Only table files of that very run (a damaged note must not cost a committed file).
            let own = |key: &String| {
                let (table, name) = (key.split('/').next(), key.rsplit('/').next().unwrap_or(""));
                Table::DATA.iter().any(|t| Some(t.name()) == table) && run_of_file(name) == Some(run.as_str())
            };
            for key in keys.iter().filter(|k| own(k)) {
                if r.size(key)?.is_some() {
                    r.delete(key)?;
                    c.removed.push(PathBuf::from(r.url(key)));
                }
            }
            r.delete(&note)?;
        }
        Ok(())
    }

    /// The upload notes a clean-up acts on, as (key, run): a finished run's (its commit drops it
    /// right after), and an unfinished run's older than the grace period (a live run's is younger).
    fn due_upload_notes(
        &self,
        finished: &BTreeSet<String>,
        (now_ms, grace_ms): (i64, i64),
    ) -> Result<Vec<(String, String)>, WarehouseError> {
        let Some(r) = &self.remote else { return Ok(Vec::new()) };
        let mut due = Vec::new();
        for note in r.list_versions("_quarry/uploads")? {
            let Some(run) = note.key.rsplit('/').next().and_then(|n| n.strip_suffix(".json")) else { continue };
            if finished.contains(run) || now_ms - note.written_ms >= grace_ms {
                let run = run.to_string();
                due.push((note.key, run));
            }
        }
        Ok(due)
    }

    /// Staging folders of runs that are gone (a live run's marker is locked).
    fn dead_stagings(&self) -> Result<Vec<PathBuf>, WarehouseError> {
        let staging = self.internal().join("staging");
        let mut dead = Vec::new();
        if staging.exists() {
            for e in fs::read_dir(&staging).map_err(io_err(&staging, "cannot list staging"))? {
                let p = e.map_err(io_err(&staging, "cannot list staging"))?.path();
                if !is_live(&p) {
                    dead.push(p);
                }
            }
        }
        Ok(dead)
    }

    /// Digest lists in the local folder of runs without a `runs` row.
    fn stray_files_lists(&self, finished: &BTreeSet<String>) -> Result<Vec<PathBuf>, WarehouseError> {
        let dir = self.files_dir();
        let mut stray = Vec::new();
        if dir.exists() {
            for e in fs::read_dir(&dir).map_err(io_err(&dir, "cannot list run files"))? {
                let p = e.map_err(io_err(&dir, "cannot list run files"))?.path();
                if !finished.contains(p.file_stem().and_then(|s| s.to_str()).unwrap_or("")) {
                    stray.push(p);
                }
            }
        }
        Ok(stray)
    }

    /// What a clean-up that is not `full` would find to do, without doing any of it: `None` when
    /// nothing, else the first such thing (for the log). Reads only, so it needs no lock: a run's
    /// start that finds nothing (and the warehouse marked synced) starts without the lock.
    pub fn untidy(&self, finished: &BTreeSet<String>) -> Result<Option<String>, WarehouseError> {
        self.untidy_at(finished, (chrono::Utc::now().timestamp_millis(), upload_grace_ms()))
    }

    /// `untidy` at the time `now_ms`, with the upload notes' grace period `grace_ms`.
    fn untidy_at(&self, finished: &BTreeSet<String>, now: (i64, i64)) -> Result<Option<String>, WarehouseError> {
        let pending = match &self.remote {
            None => fs::read_dir(self.internal().join("replace")).is_ok_and(|mut d| d.next().is_some()),
            Some(r) => r.any("_quarry/replace")?,
        };
        if pending {
            return Ok(Some("a replay's pending rejects files".into()));
        }
        if let Some((key, _)) = self.due_upload_notes(finished, now)?.into_iter().next() {
            return Ok(Some(format!("the upload note {key}")));
        }
        if let Some(p) = self.dead_stagings()?.into_iter().next() {
            return Ok(Some(format!("the staging folder {}", p.display())));
        }
        if let Some(p) = self.stray_files_lists(finished)?.into_iter().next() {
            return Ok(Some(format!("the digest list {}", p.display())));
        }
        Ok(None)
    }

    /// Removes every file of a run that has no `runs` row (a crashed run), staging folders, and
    /// digest lists of such runs; drops the pending rejects replacements of a replay without a
    /// `runs` row and finishes the swap of one that has it. Must run under the lock, before
    /// anything else: the lock is what makes every run without a `runs` row a dead one.
    ///
    /// Not `full` (the warehouse is marked synced: no commit was cut off, so no crashed run's
    /// file is in a table but what it uploaded before its commit), the tables and digest lists are
    /// not listed: the upload notes (`upload_note`) name what such runs uploaded. A listing costs
    /// by the size of the table, a run's start must not.
    pub fn cleanup(&self, finished: &BTreeSet<String>, full: bool) -> Result<Cleanup, WarehouseError> {
        let mut c = Cleanup::default();
        match &self.remote {
            None => self.cleanup_local_replacements(finished, &mut c)?,
            Some(r) => {
                let mut runs: BTreeMap<String, Vec<String>> = BTreeMap::new();
                for (key, _) in r.list("_quarry/replace")? {
                    if let Some(id) = key.split('/').nth(2) {
                        runs.entry(id.to_string()).or_default().push(key);
                    }
                }
                for (id, keys) in runs {
                    if finished.contains(&id) {
                        c.completed.extend(self.apply_replacements(&id)?);
                    } else {
                        for key in keys {
                            r.delete(&key)?;
                            c.removed.push(PathBuf::from(r.url(&key)));
                        }
                    }
                }
            }
        }
        let (now_ms, grace_ms) = (chrono::Utc::now().timestamp_millis(), upload_grace_ms());
        self.cleanup_upload_notes(finished, (now_ms, grace_ms), &mut c)?;
        for table in Table::DATA.into_iter().filter(|_| full) {
            for f in self.table_files(table)? {
                // A remote run uploads its files before it waits for the commit lock: one younger
                // than the grace period may be a live run's (if not, a later clean-up takes it).
                let young = f.written_ms.is_some_and(|w| now_ms - w < grace_ms);
                if !finished.contains(&f.run) && !young {
                    c.removed.push(self.remove_table_file(table, &f.rel)?);
                }
            }
        }
        for p in self.dead_stagings()? {
            fs::remove_dir_all(&p).map_err(io_err(&p, "cannot remove a crashed run's staging folder"))?;
            c.removed.push(p);
        }
        if let Some(r) = self.remote.as_ref().filter(|_| full) {
            for (key, _) in r.list("_quarry/files")? {
                let id = key.rsplit('/').next().and_then(|n| n.strip_suffix(".tsv")).unwrap_or("");
                if !finished.contains(id) {
                    r.delete(&key)?;
                    c.removed.push(PathBuf::from(r.url(&key)));
                }
            }
        }
        for p in self.stray_files_lists(finished)? {
            fs::remove_file(&p).map_err(io_err(&p, "cannot remove a crashed run's digest list"))?;
            if self.remote.is_none() {
                c.removed.push(p);
            }
        }
        Ok(c)
    }

    fn cleanup_local_replacements(&self, finished: &BTreeSet<String>, c: &mut Cleanup) -> Result<(), WarehouseError> {
        let replace = self.internal().join("replace");
        if !replace.exists() {
            return Ok(());
        }
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
        Ok(())
    }

    /// Makes the local index folder a copy of a remote warehouse's index (`_quarry/index/`):
    /// downloads the files it lacks (segments never change under a name; the manifest always),
    /// removes what the bucket does not hold. A no-op for a local warehouse.
    pub fn index_down(&self) -> Result<(), WarehouseError> {
        let Some(r) = &self.remote else { return Ok(()) };
        let dir = self.index_dir();
        fs::create_dir_all(&dir).map_err(io_err(&dir, "cannot create the index folder"))?;
        let remote = remote_index(r)?;
        let local = local_files(&dir)?;
        for (name, _) in local.iter().filter(|(n, s)| remote.get(*n) != Some(s)) {
            let p = dir.join(name);
            let gone = if p.is_dir() { fs::remove_dir_all(&p) } else { fs::remove_file(&p) };
            gone.map_err(io_err(&p, "cannot remove from the index copy"))?;
        }
        for (name, size) in &remote {
            if local.get(name) != Some(size) || name == super::index::MANIFEST {
                r.download(&format!("{INDEX_KEY}/{name}"), &dir.join(name))?;
            }
        }
        Ok(())
    }

    /// Makes a remote warehouse's index what the local folder holds: uploads the files the bucket
    /// lacks, then the manifest, then removes what the manifest no longer needs (a kill in between
    /// leaves files the next `Index::open` sweeps). A no-op for a local warehouse.
    pub fn index_up(&self) -> Result<(), WarehouseError> {
        let Some(r) = &self.remote else { return Ok(()) };
        let dir = self.index_dir();
        let remote = remote_index(r)?;
        let local = local_files(&dir)?;
        let manifest = super::index::MANIFEST;
        for (name, size) in local.iter().filter(|(n, _)| n.as_str() != manifest) {
            if remote.get(name) != Some(size) && dir.join(name).is_file() {
                r.upload(&format!("{INDEX_KEY}/{name}"), &dir.join(name))?;
            }
        }
        if dir.join(manifest).is_file() {
            r.upload(&format!("{INDEX_KEY}/{manifest}"), &dir.join(manifest))?;
        }
        for name in remote.keys().filter(|n| !local.contains_key(*n)) {
            r.delete(&format!("{INDEX_KEY}/{name}"))?;
        }
        Ok(())
    }

    /// Uploads the run's own index segment (already moved into the local index folder).
    pub fn upload_segment(&self, name: &str) -> Result<(), WarehouseError> {
        match &self.remote {
            None => Ok(()),
            Some(r) => Ok(r.upload(&format!("{INDEX_KEY}/{name}"), &self.index_dir().join(name))?),
        }
    }
}

/// The key of a table file (`rel` relative to the table) in a remote warehouse.
pub fn table_key(table: Table, rel: &str) -> String {
    format!("{}/{rel}", table.name())
}

/// Whether the run whose staging folder is `dir` is alive: its live marker is locked (by the run's
/// process: the lock goes with it).
fn is_live(dir: &Path) -> bool {
    match fs::File::open(dir.join(super::commit::LIVE_MARKER)) {
        Ok(marker) => matches!(marker.try_lock_shared(), Err(fs::TryLockError::WouldBlock)),
        // A run starting without the lock has made its folder but not yet moved its locked
        // marker in (`RunCommit::begin`): a folder without one is spared for a minute.
        Err(e) if e.kind() == io::ErrorKind::NotFound => just_made(dir),
        Err(_) => false,
    }
}

/// A folder made in the last minute.
fn just_made(dir: &Path) -> bool {
    let age = fs::metadata(dir).and_then(|m| m.modified()).ok().and_then(|t| t.elapsed().ok());
    age.is_some_and(|a| a.as_secs() < 60)
}

/// How long a remote run's uploaded table objects are spared by other runs' clean-ups before its
/// `runs` row exists (`QUARRY_UPLOAD_GRACE` seconds, 3600 by default): a run uploads them before it
/// waits for the commit lock, and checks them again under it (re-uploading any that are gone).
fn upload_grace_ms() -> i64 {
    (super::env_seconds("QUARRY_UPLOAD_GRACE").unwrap_or(3600.0) * 1000.0) as i64
}

/// The index's key prefix in a remote warehouse.
const INDEX_KEY: &str = "_quarry/index";

/// The names and sizes of the files of a remote warehouse's index.
fn remote_index(r: &Remote) -> Result<BTreeMap<String, u64>, WarehouseError> {
    Ok(r.list(INDEX_KEY)?
        .into_iter()
        .filter_map(|(k, size)| Some((k.strip_prefix(INDEX_KEY)?.strip_prefix('/')?.to_string(), size)))
        .filter(|(name, _)| !name.contains('/'))
        .collect())
}

/// The names and sizes of what a folder holds (folders with size 0); empty when it is missing.
fn local_files(dir: &Path) -> Result<BTreeMap<String, u64>, WarehouseError> {
    let mut out = BTreeMap::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io_err(dir, "cannot list")(e)),
    };
    for e in entries {
        let e = e.map_err(io_err(dir, "cannot list"))?;
        let m = e.metadata().map_err(io_err(&e.path(), "cannot stat"))?;
        out.insert(e.file_name().to_string_lossy().into_owned(), if m.is_dir() { 0 } else { m.len() });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_runs_upload_note_takes_its_uploads_with_it_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let wh = Warehouse::on_store(dir.path(), Remote::in_memory());
        let r = wh.remote().unwrap();
        let (dead, done) = ("20261201T000000.000001Z-0of2", "20261201T000000.000002Z-1of2");
        let own = format!("posts/ingest_date=2026-12-01/{dead}.parquet");
        let part = format!("duplicates/{dead}-part-1.parquet");
        // A damaged note naming files that are not the run's: a committed runs row and posts file.
        let others = [format!("runs/{done}.parquet"), format!("posts/ingest_date=2026-12-01/{done}.parquet")];
        for key in [&own, &part].into_iter().chain(&others) {
            r.put(key, b"PAR1".to_vec()).unwrap();
        }
        let named: Vec<String> = [&own, &part].into_iter().chain(&others).cloned().collect();
        wh.note_uploads(dead, &named).unwrap();
        wh.note_uploads(done, &others[1..]).unwrap();
        let finished: BTreeSet<String> = [done.to_string()].into();
        let now = chrono::Utc::now().timestamp_millis();
        // Within the grace period the dead run may be a live one: its note and uploads stay.
        let mut c = Cleanup::default();
        wh.cleanup_upload_notes(&finished, (now, 3_600_000), &mut c).unwrap();
        assert!(c.removed.is_empty(), "{c:?}");
        assert!(r.size(&Warehouse::upload_note(dead)).unwrap().is_some());
        assert!(r.size(&Warehouse::upload_note(done)).unwrap().is_none(), "a finished run's note is dropped");
        // Past it: the run's own uploads and its note go; what is not the run's stays.
        wh.cleanup_upload_notes(&finished, (now + 3_600_001, 3_600_000), &mut c).unwrap();
        assert_eq!(c.removed, [r.url(&own), r.url(&part)].map(PathBuf::from));
        assert!(r.size(&own).unwrap().is_none() && r.size(&Warehouse::upload_note(dead)).unwrap().is_none());
        for key in &others {
            assert!(r.size(key).unwrap().is_some(), "{key} is not the dead run's");
        }
    }

    #[test]
    fn untidy_names_what_a_clean_up_would_do_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let wh = Warehouse::on_store(dir.path(), Remote::in_memory());
        let r = wh.remote().unwrap();
        let (live, done) = ("20261201T000000.000001Z-0of2", "20261201T000000.000002Z-1of2");
        let finished: BTreeSet<String> = [done.to_string()].into();
        let now = chrono::Utc::now().timestamp_millis();
        let untidy = |at: i64| wh.untidy_at(&finished, (at, 3_600_000)).unwrap();
        assert_eq!(untidy(now), None, "an empty warehouse");

        // A live run's note and staging folder (its marker locked), a just made folder without a
        // marker yet: nothing to do.
        wh.note_uploads(live, &[format!("posts/{live}.parquet")]).unwrap();
        let c = crate::load::commit::RunCommit::begin(&wh, live, "2026-12-01").unwrap();
        fs::create_dir_all(wh.staging("20261201T000000.000003Z")).unwrap();
        assert_eq!(untidy(now), None);
        // The note past its grace period: its run may be gone.
        assert!(untidy(now + 3_600_001).unwrap().contains("upload note"));
        // The run gone (its marker unlocked), the folder without a marker a minute old.
        drop(c);
        assert!(untidy(now).unwrap().contains("staging folder"));
        fs::remove_dir_all(wh.staging(live)).unwrap();
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(61);
        fs::File::open(wh.staging("20261201T000000.000003Z")).unwrap().set_modified(old).unwrap();
        assert!(untidy(now).unwrap().contains("staging folder"));
        fs::remove_dir_all(wh.staging("20261201T000000.000003Z")).unwrap();
        assert_eq!(untidy(now), None);
        // A finished run's note (its commit drops it right after), a digest list of a run without
        // a `runs` row, a replay's pending rejects file.
        wh.note_uploads(done, &[]).unwrap();
        assert!(untidy(now).unwrap().contains("upload note"));
        r.delete(&Warehouse::upload_note(done)).unwrap();
        fs::create_dir_all(wh.files_dir()).unwrap();
        fs::write(wh.files_list(live), "d\tf\n").unwrap();
        assert!(untidy(now).unwrap().contains("digest list"));
        fs::remove_file(wh.files_list(live)).unwrap();
        r.put(&Warehouse::pending_key(live, done, "x.parquet"), b"PAR1".to_vec()).unwrap();
        assert!(untidy(now).unwrap().contains("pending rejects"));
        // Looking changed nothing.
        assert!(r.size(&Warehouse::upload_note(live)).unwrap().is_some());
        assert!(r.size(&Warehouse::pending_key(live, done, "x.parquet")).unwrap().is_some());
    }
}
