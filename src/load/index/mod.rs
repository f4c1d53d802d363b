//! The dedupe index on disk: every hash of the warehouse's posts with the run that imported it, so
//! that a run can tell a hash some earlier run took without holding them all in memory.
//!
//! ```text
//! WH/_quarry/index/MANIFEST            the files in force (manifest.rs), replaced whole by a rename
//! WH/_quarry/index/run-<run_id>.seg    a run's own hashes, placed by its commit (level 0)
//! WH/_quarry/index/<n>.seg             merged files of levels 1 and down (compact.rs)
//! ```
//!
//! A run's commit moves its segment in before its `runs` row; right after the row it adopts the
//! segment into the manifest and merges what the levels call for (`settle`). Opening the index
//! (`Index::open`, every run, under the warehouse lock) repairs what a crash or a damaged file left:
//! a segment of a run without a `runs` row is removed, one of a finished run the manifest lacks is
//! adopted, files the manifest does not list (a merge cut short) are removed, and a finished run
//! whose hashes no file holds is rebuilt from its hash list or its posts files. So the index never
//! claims a hash whose posts row is not committed, and never misses one that is.
//!
//! In memory: each open file's block index (25 bytes per 8 KB block of ~480 hashes: about 5 MB per
//! 100M hashes) and the filters of levels 0 and 1 (about 1.2 bytes a hash of those levels only).

mod compact;
pub mod manifest;
#[cfg(test)]
mod model_tests;
pub mod merge;
mod repair;
pub mod run_keys;
pub mod segment;

use std::path::{Path, PathBuf};

pub use compact::{Merged, Policy};
pub use manifest::FILE as MANIFEST;
use manifest::{FileEntry, Manifest};
pub use repair::Repairs;
use segment::{IndexError, Segment};

use crate::transform::dedupe::PackedHash;

/// The name of a run's own segment.
pub fn run_file(run_id: &str) -> String {
    format!("run-{run_id}.seg")
}

/// The run id of a run's own segment file name.
fn run_of(name: &str) -> Option<&str> {
    name.strip_prefix("run-")?.strip_suffix(".seg")
}

/// One level (1 and down) in key order: each file with its key range.
struct Level {
    files: Vec<(PackedHash, PackedHash, Segment)>,
}

/// The index of a warehouse, open for lookups.
pub struct Index {
    dir: PathBuf,
    l0: Vec<Segment>,
    levels: Vec<Level>,
    records: u64,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index")
            .field("dir", &self.dir)
            .field("hashes", &self.records)
            .field("files", &self.files())
            .finish()
    }
}

impl Index {
    /// An index of nothing (for a run that has no warehouse index to ask).
    pub fn empty(dir: &Path) -> Index {
        Index { dir: dir.to_path_buf(), l0: Vec::new(), levels: Vec::new(), records: 0 }
    }

    /// Opens the files `m` lists (filters of levels 0 and 1 loaded).
    fn from_manifest(dir: &Path, m: &Manifest) -> Result<Index, IndexError> {
        let mut index = Index::empty(dir);
        for f in m.level(0) {
            index.l0.push(Segment::open(&dir.join(&f.name), true)?);
        }
        for n in 1..=m.depth() {
            let mut level = Level { files: Vec::new() };
            for f in m.level(n) {
                let (Some(min), Some(max)) = (PackedHash::new(&f.min), PackedHash::new(&f.max)) else { continue };
                level.files.push((min, max, Segment::open(&dir.join(&f.name), n == 1)?));
            }
            index.levels.push(level);
        }
        index.records = m.files.iter().map(|f| f.records).sum();
        Ok(index)
    }

    /// The files open, each as (name, records, blocks): what tells a file from a later one of
    /// the same name (names repeat only after the index was rebuilt from scratch).
    pub fn names(&self) -> std::collections::BTreeSet<(String, u64, usize)> {
        let levels = self.levels.iter().flat_map(|l| l.files.iter().map(|(_, _, s)| s));
        self.l0.iter().chain(levels).filter_map(identity).collect()
    }

    /// This index without the files `known` lists (to ask only what was written since).
    pub fn without(mut self, known: &std::collections::BTreeSet<(String, u64, usize)>) -> Index {
        let keep = |s: &Segment| identity(s).is_none_or(|id| !known.contains(&id));
        self.l0.retain(keep);
        for level in &mut self.levels {
            level.files.retain(|(_, _, s)| keep(s));
        }
        self.records = self.l0.iter().map(Segment::records).sum::<u64>()
            + self.levels.iter().flat_map(|l| l.files.iter().map(|(_, _, s)| s.records())).sum::<u64>();
        self
    }

    /// Hashes held.
    pub fn len(&self) -> u64 {
        self.records
    }

    /// True when the index holds no hash.
    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// Files open.
    pub fn files(&self) -> usize {
        self.l0.len() + self.levels.iter().map(|l| l.files.len()).sum::<usize>()
    }

    /// Bytes of memory held: block indexes and filters.
    pub fn memory(&self) -> usize {
        let levels = self.levels.iter().flat_map(|l| l.files.iter().map(|(_, _, s)| s.memory()));
        self.l0.iter().map(Segment::memory).chain(levels).sum()
    }

    /// For keys in increasing order, the run that took each key the index holds (`None` for the
    /// others). Reads at most one block per key and level, fewer where a filter rules a key out.
    pub fn lookup(&self, keys: &[PackedHash]) -> Result<Vec<Option<&str>>, IndexError> {
        let mut found = vec![None; keys.len()];
        for s in &self.l0 {
            s.lookup(keys, &mut found)?;
        }
        for level in &self.levels {
            let mut at = 0;
            for (min, max, seg) in &level.files {
                let start = at + keys[at..].partition_point(|k| k < min);
                let end = start + keys[start..].partition_point(|k| k <= max);
                if start < end {
                    seg.lookup(&keys[start..end], &mut found[start..end])?;
                }
                at = end;
            }
        }
        Ok(found)
    }
}

/// A remote warehouse's index copy that could not be made or uploaded (naming the object or file).
impl From<crate::load::warehouse::WarehouseError> for IndexError {
    fn from(e: crate::load::warehouse::WarehouseError) -> IndexError {
        IndexError { path: e.path.clone(), what: e.to_string() }
    }
}

/// A segment as `Index::names` lists it.
fn identity(s: &Segment) -> Option<(String, u64, usize)> {
    Some((s.path().file_name()?.to_str()?.to_string(), s.records(), s.blocks()))
}

/// The index folder of a warehouse's internal folder.
pub fn dir_of(internal: &Path) -> PathBuf {
    internal.join("index")
}

/// After a run's commit: adopts its segment (already moved into the index folder; a run that took
/// no posts, `took_posts` false, has none and is listed as indexed all the same) and merges what
/// the levels call for. A failure here leaves the run committed; the next run repairs the index.
pub fn settle(dir: &Path, run_id: &str, took_posts: bool) -> Result<Merged, IndexError> {
    settle_with(dir, run_id, took_posts, &Policy::for_runs())
}

/// `settle` under another merge policy.
pub fn settle_with(dir: &Path, run_id: &str, took_posts: bool, policy: &Policy) -> Result<Merged, IndexError> {
    let mut m = Manifest::read(dir)
        .map_err(|what| IndexError { path: dir.join(manifest::FILE), what })?
        .unwrap_or_else(Manifest::empty);
    let name = run_file(run_id);
    if !m.runs.contains(run_id) && (dir.join(&name).exists() || !took_posts) {
        if took_posts {
            let seg = Segment::open(&dir.join(&name), false)?;
            m.files.push(entry_of(&seg, &name)?);
        }
        m.runs.insert(run_id.to_string());
        m.write(dir).map_err(|e| IndexError { path: dir.join(manifest::FILE), what: format!("cannot write: {e}") })?;
    }
    crate::load::hold::hold_at("adopted");
    compact::settle(dir, m, policy).map(|(_, merged)| merged)
}

/// The manifest entry of an open level-0 segment.
fn entry_of(seg: &Segment, name: &str) -> Result<FileEntry, IndexError> {
    let bytes = std::fs::metadata(seg.path())
        .map_err(|e| IndexError { path: seg.path().to_path_buf(), what: format!("cannot stat: {e}") })?
        .len();
    let (min, max) = seg.range().map_or((String::new(), String::new()), |(a, b)| (a.to_hex(), b.to_hex()));
    Ok(FileEntry { name: name.to_string(), level: 0, records: seg.records(), bytes, min, max })
}
