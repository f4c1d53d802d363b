//! Opening the index under the warehouse lock, and repairing what a crash or a damaged file left
//! (see the module doc of `index`): the index then holds the hashes of exactly the finished runs.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;

use super::manifest::Manifest;
use super::run_keys::{RunKeys, SPILL_HASHES};
use super::segment::{IndexError, Segment};
use super::{entry_of, run_file, run_of, Index};
use crate::contract::Table;
use crate::load::warehouse::{TableFile, Warehouse};
use crate::transform::dedupe::PackedHash;

/// What opening the index found and did, for the run's log.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Repairs {
    /// Runs whose own segment the manifest did not list yet (a run stopped after its `runs` row).
    pub adopted: Vec<String>,
    /// Files removed: segments of runs without a `runs` row, files of a merge cut short.
    pub removed: Vec<PathBuf>,
    /// Runs whose hashes no file held, rebuilt from their posts files.
    pub rebuilt: Vec<String>,
    /// Why the whole index was rebuilt, when it was (an unreadable manifest or a damaged merged file).
    pub reset: Option<String>,
}

fn io(path: &Path, doing: &str, e: std::io::Error) -> IndexError {
    IndexError { path: path.to_path_buf(), what: format!("{doing}: {e}") }
}

impl Index {
    /// Opens the index of `wh` for a run, repairing it first; `finished` are the runs with a `runs`
    /// row. Must run under the warehouse lock.
    /// A remote warehouse's index is copied into the local folder first and what the repair
    /// changed is uploaded after it.
    pub fn open(wh: &Warehouse, finished: &BTreeSet<String>) -> Result<(Index, Repairs), IndexError> {
        let dir = wh.index_dir();
        let _copy = wh.lock_local_copy()?;
        wh.index_down()?;
        fs::create_dir_all(&dir).map_err(|e| io(&dir, "cannot create the index folder", e))?;
        let mut rep = Repairs::default();
        let mut m = match Manifest::read(&dir) {
            Ok(Some(m)) => m,
            Ok(None) => Manifest::empty(),
            Err(why) => {
                rep.reset = Some(why);
                Manifest::empty()
            }
        };
        let mut written = m.clone();
        sweep(&dir, &mut m, finished, &mut rep)?;
        // The posts table is listed only once a finished run is not indexed (a run's commit cut
        // off before its segment was adopted, a damaged or lost segment, an older quarry's
        // warehouse): a listing costs by the size of the table, a run must not.
        let (mut posts, none) = (None, BTreeMap::new());
        // Each pass either opens every file or drops the one that failed (at most once per file).
        let index = loop {
            if posts.is_none() && finished.iter().any(|r| !m.runs.contains(r)) {
                posts = Some(posts_by_run(wh, finished)?);
            }
            if let Some(listed) = &posts {
                // A finished run without posts files has nothing to index.
                m.runs.extend(finished.iter().filter(|r| !listed.contains_key(*r)).cloned());
            }
            for (run, files) in posts.as_ref().unwrap_or(&none) {
                if !m.runs.contains(run) {
                    let paths = files.iter().map(|f| wh.local_copy(Table::Posts, f)).collect::<Result<Vec<_>, _>>()?;
                    rebuild(&dir, run, &paths)?;
                    if dir.join(run_file(run)).exists() {
                        adopt(&dir, &mut m, run)?;
                    } else {
                        m.runs.insert(run.clone());
                    }
                    rep.rebuilt.push(run.clone());
                }
            }
            if m != written {
                m.write(&dir).map_err(|e| io(&dir.join(super::manifest::FILE), "cannot write", e))?;
                written = m.clone();
            }
            match Index::from_manifest(&dir, &m) {
                Ok(index) => {
                    if rep != Repairs::default() {
                        wh.index_up()?;
                    }
                    break index;
                }
                Err(e) => drop_damaged(&dir, &mut m, e, &mut rep)?,
            }
        };
        // The hash lists of an older quarry: the index now holds their hashes.
        let legacy = wh.internal().join("hashes");
        if legacy.exists() {
            fs::remove_dir_all(&legacy).map_err(|e| io(&legacy, "cannot remove", e))?;
            rep.removed.push(legacy);
        }
        Ok((index, rep))
    }

    /// Opens the index of `wh` without the warehouse lock, changing nothing in it: `None` when it
    /// would need a repair (a finished run the manifest lacks, a listed file that does not open, an
    /// unreadable manifest, an older quarry's hash lists), or when a remote copy did not come down
    /// whole (a merge landing meanwhile); the run's start then takes the lock and uses `open`.
    /// Files the manifest does not list (the segment of a run committing now, a merge in progress)
    /// are not read. The manifest lists only finished runs' hashes, so what opens is exactly those
    /// of the runs it names, `finished` among them.
    pub fn open_unlocked(wh: &Warehouse, finished: &BTreeSet<String>) -> Result<Option<Index>, IndexError> {
        let dir = wh.index_dir();
        let _copy = wh.lock_local_copy()?;
        if let Err(e) = wh.index_down() {
            tracing::debug!("index: the copy did not come down whole ({e}); opening it under the lock");
            return Ok(None);
        }
        if wh.internal().join("hashes").exists() {
            return Ok(None);
        }
        let m = match Manifest::read(&dir) {
            Ok(m) => m.unwrap_or_else(Manifest::empty),
            Err(_) => return Ok(None),
        };
        if finished.iter().any(|r| !m.runs.contains(r)) {
            return Ok(None);
        }
        Ok(Index::from_manifest(&dir, &m).ok())
    }
}

/// Drops the listed file `e` names (missing or failing its checks). A run's own segment costs only
/// its run (rebuilt on the next pass); a merged file holds hashes of runs unknown, so the whole index
/// is rebuilt. An error of no listed file is returned as it is.
fn drop_damaged(dir: &Path, m: &mut Manifest, e: IndexError, rep: &mut Repairs) -> Result<(), IndexError> {
    let name = e.path.file_name().and_then(|n| n.to_str()).map(str::to_string);
    let Some(name) = name.filter(|n| m.files.iter().any(|f| &f.name == n)) else { return Err(e) };
    let _ = fs::remove_file(dir.join(&name));
    rep.removed.push(dir.join(&name));
    match run_of(&name) {
        Some(run) => {
            m.runs.remove(run);
            m.files.retain(|f| f.name != name);
        }
        None => {
            rep.reset.get_or_insert_with(|| e.to_string());
            for f in &m.files {
                let _ = fs::remove_file(dir.join(&f.name));
            }
            *m = Manifest { next_file: m.next_file, ..Manifest::empty() };
        }
    }
    Ok(())
}

/// Removes temporary files, segments of unfinished runs and files no manifest lists; adopts the
/// segments of finished runs the manifest lacks.
fn sweep(dir: &Path, m: &mut Manifest, finished: &BTreeSet<String>, rep: &mut Repairs) -> Result<(), IndexError> {
    let listed: BTreeSet<String> = m.files.iter().map(|f| f.name.clone()).collect();
    let mut names = Vec::new();
    for e in fs::read_dir(dir).map_err(|e| io(dir, "cannot list the index folder", e))? {
        let e = e.map_err(|e| io(dir, "cannot list the index folder", e))?;
        names.push(e.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    for name in names {
        if name == super::manifest::FILE || listed.contains(&name) {
            continue;
        }
        let path = dir.join(&name);
        match run_of(&name) {
            Some(run) if finished.contains(run) && !m.runs.contains(run) => match adopt(dir, m, run) {
                Ok(()) => rep.adopted.push(run.to_string()),
                // Damaged: removed here, rebuilt from the run's posts files below.
                Err(_) => remove(&path, rep)?,
            },
            _ => remove(&path, rep)?,
        }
    }
    Ok(())
}

fn remove(path: &Path, rep: &mut Repairs) -> Result<(), IndexError> {
    let removed = if path.is_dir() { fs::remove_dir_all(path) } else { fs::remove_file(path) };
    removed.map_err(|e| io(path, "cannot remove", e))?;
    rep.removed.push(path.to_path_buf());
    Ok(())
}

/// Adds the run's own segment (in `dir`) to the manifest.
fn adopt(dir: &Path, m: &mut Manifest, run: &str) -> Result<(), IndexError> {
    let name = run_file(run);
    let seg = Segment::open(&dir.join(&name), false)?;
    m.files.push(entry_of(&seg, &name)?);
    m.runs.insert(run.to_string());
    Ok(())
}

/// The posts files of each finished run.
fn posts_by_run(wh: &Warehouse, finished: &BTreeSet<String>) -> Result<BTreeMap<String, Vec<TableFile>>, IndexError> {
    let mut out: BTreeMap<String, Vec<TableFile>> = BTreeMap::new();
    let files = wh
        .table_files(Table::Posts)
        .map_err(|e| IndexError { path: wh.table(Table::Posts), what: format!("cannot list posts files: {e}") })?;
    for f in files {
        if finished.contains(&f.run) {
            out.entry(f.run.clone()).or_default().push(f);
        }
    }
    Ok(out)
}

/// Writes the run's own segment from the hash column of its posts files (bounded memory: the
/// hashes spill to sorted files as an import's do).
fn rebuild(dir: &Path, run: &str, files: &[PathBuf]) -> Result<(), IndexError> {
    let work = dir.join(format!("rebuild-{run}.tmp"));
    fs::create_dir_all(&work).map_err(|e| io(&work, "cannot create", e))?;
    let mut keys = RunKeys::new(&work, run, SPILL_HASHES);
    for path in files {
        for_each_hash(path, |h| {
            let k = PackedHash::new(h).ok_or_else(|| IndexError {
                path: path.clone(),
                what: format!("hash {h:?} is not 1–64 lower-case hex digits"),
            })?;
            keys.make_room(1)?;
            keys.insert(&k);
            Ok(())
        })?;
    }
    let tmp = work.join("run.seg");
    if keys.finish(&tmp)?.is_some() {
        let to = dir.join(run_file(run));
        fs::rename(&tmp, &to).map_err(|e| io(&to, "cannot move the rebuilt segment", e))?;
    }
    fs::remove_dir_all(&work).map_err(|e| io(&work, "cannot remove", e))?;
    Ok(())
}

/// Calls `f` with each hash of a posts file, reading only its `hash` column.
fn for_each_hash(path: &Path, mut f: impl FnMut(&str) -> Result<(), IndexError>) -> Result<(), IndexError> {
    let bad = |e: parquet::errors::ParquetError| IndexError {
        path: path.to_path_buf(),
        what: format!("cannot read hashes: {e}"),
    };
    let file = fs::File::open(path).map_err(|e| io(path, "cannot open", e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(bad)?;
    let mask = ProjectionMask::columns(builder.parquet_schema(), ["hash"]);
    for batch in builder.with_projection(mask).with_batch_size(65536).build().map_err(bad)? {
        let batch = batch.map_err(|e| bad(e.into()))?;
        let hashes = batch.column(0).as_string_opt::<i32>().ok_or_else(|| IndexError {
            path: path.to_path_buf(),
            what: "the hash column is not a string column".into(),
        })?;
        for i in 0..hashes.len() {
            if hashes.is_valid(i) {
                f(hashes.value(i))?;
            }
        }
    }
    Ok(())
}
