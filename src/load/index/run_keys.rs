//! The hashes one run has taken so far, in bounded memory: the newest in a set in memory, the rest
//! spilled to sorted segments in the run's staging folder before a batch of keys would take the
//! set past `spill_at` hashes (each spill's filter stays in memory, so asking a spill about a new
//! hash reads nothing). At the commit they become the run's own segment, merged in one pass.

use std::path::{Path, PathBuf};

use super::merge::{merge, Records};
use super::segment::{IndexError, Segment, SegmentMeta, SegmentWriter};
use crate::transform::dedupe::{PackedHash, RunHashes};

/// Hashes held in memory before they are spilled (about 17 bytes each, with the table): 7/8 of
/// 2^19, the most a hash table of 2^19 slots holds, so the table is 2.6 MB and not twice that.
pub const SPILL_HASHES: usize = 458_752;

/// This run's hashes; see the module doc.
pub struct RunKeys {
    dir: PathBuf,
    run_id: String,
    set: RunHashes,
    spills: Vec<Segment>,
    spill_at: usize,
    spilled: u64,
}

impl std::fmt::Debug for RunKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunKeys").field("in_memory", &self.set.len()).field("spills", &self.spills.len()).finish()
    }
}

impl RunKeys {
    /// An empty set for run `run_id`, spilling into `dir` (which must exist) every `spill_at` hashes.
    pub fn new(dir: &Path, run_id: &str, spill_at: usize) -> RunKeys {
        RunKeys {
            dir: dir.to_path_buf(),
            run_id: run_id.to_string(),
            set: RunHashes::new(),
            spills: Vec::new(),
            spill_at: spill_at.max(1),
            spilled: 0,
        }
    }

    /// Hashes taken.
    pub fn len(&self) -> u64 {
        self.spilled + self.set.len() as u64
    }

    /// True before the first hash.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of memory held: the set and the spills' filters and block indexes.
    pub fn memory(&self) -> usize {
        self.set.memory() + self.spills.iter().map(Segment::memory).sum::<usize>()
    }

    /// True once the set has spilled (before that, no key is in a spill).
    pub fn has_spills(&self) -> bool {
        !self.spills.is_empty()
    }

    /// Of `keys` (increasing), which an earlier spill holds.
    pub fn in_spills(&self, keys: &[PackedHash]) -> Result<Vec<bool>, IndexError> {
        let mut found = vec![None; keys.len()];
        for s in &self.spills {
            s.lookup(keys, &mut found)?;
        }
        Ok(found.iter().map(Option::is_some).collect())
    }

    /// Whether the set in memory holds `k` (the spills are asked with `in_spills`).
    pub fn in_memory(&self, k: &PackedHash) -> bool {
        self.set.contains(k)
    }

    /// Takes `k` (which `in_spills` said no spill holds); false when the set in memory held it.
    /// The set only spills in `make_room`, so answers stay consistent within a batch of keys.
    pub fn insert(&mut self, k: &PackedHash) -> bool {
        self.set.insert(k)
    }

    /// Room for `n` more hashes in memory (no more than a spill's worth).
    pub fn reserve(&mut self, n: usize) {
        self.set.reserve(n.min(self.spill_at));
    }

    /// Spills the set in memory to a sorted segment when `incoming` more hashes could take it past
    /// `spill_at`: called before a batch of keys is asked about and inserted, so the set never
    /// outgrows the room `reserve` made (a grown arena doubles: 13 MB instead of 6 at 500k).
    pub fn make_room(&mut self, incoming: usize) -> Result<(), IndexError> {
        if self.set.is_empty() || self.set.len() + incoming <= self.spill_at {
            return Ok(());
        }
        let n = self.set.len() as u64;
        let path = self.dir.join(format!("spill-{:04}.seg", self.spills.len()));
        let mut w = SegmentWriter::create(&path, n)?;
        for k in self.set.sorted() {
            w.push(&k, &self.run_id)?;
        }
        w.finish()?;
        self.set.clear();
        self.spills.push(Segment::open(&path, true)?);
        self.spilled += n;
        Ok(())
    }

    /// Writes every hash the run took, sorted, into a segment at `path`; `None` (and no file) when
    /// it took none. The spills are removed.
    pub fn finish(mut self, path: &Path) -> Result<Option<SegmentMeta>, IndexError> {
        if self.is_empty() {
            return Ok(None);
        }
        let expected = self.len();
        let run = self.run_id.clone();
        let mut inputs: Vec<Records<'_>> =
            self.spills.iter().map(|s| Box::new(s.records_iter()) as Records<'_>).collect();
        inputs.push(Box::new(self.set.sorted().map(|k| Ok((k, run.as_str())))));
        let mut w = SegmentWriter::create(path, expected)?;
        merge(inputs, |k, run| w.push(k, run))?;
        let meta = w.finish()?;
        for s in &self.spills {
            let _ = std::fs::remove_file(s.path());
        }
        Ok(Some(meta))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u64) -> PackedHash {
        PackedHash::new(&format!("{:024x}", i.wrapping_mul(0x2545_f491_4f6c_dd1d))).unwrap()
    }

    #[test]
    fn a_spilling_set_answers_like_a_set_and_writes_every_hash_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut keys = RunKeys::new(dir.path(), "r1", 100);
        let mut plain = std::collections::BTreeSet::new();
        for i in 0..1000u64 {
            // Every fourth hash is one taken before.
            let k = if i % 4 == 3 { key(i / 2) } else { key(i) };
            keys.make_room(1).unwrap();
            assert!(keys.set.len() < 100, "spilled before the set passes spill_at");
            let spilled = keys.in_spills(&[k]).unwrap()[0];
            let new = !spilled && keys.insert(&k);
            assert_eq!(new, plain.insert(k), "hash {i}");
        }
        assert!(keys.spills.len() >= 5, "{keys:?}");
        assert_eq!(keys.len(), plain.len() as u64);
        let path = dir.path().join("run-r1.seg");
        let meta = keys.finish(&path).unwrap().unwrap();
        assert_eq!(meta.records, plain.len() as u64);
        let seg = Segment::open(&path, false).unwrap();
        let all: Vec<PackedHash> = seg.records_iter().map(|r| r.unwrap().0).collect();
        assert_eq!(all, plain.into_iter().collect::<Vec<_>>());
        assert!(seg.runs() == ["r1"]);
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, ["run-r1.seg"], "the spills are gone");
    }

    #[test]
    fn a_run_that_took_nothing_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.seg");
        assert_eq!(RunKeys::new(dir.path(), "r", 10).finish(&path).unwrap(), None);
        assert!(!path.exists());
    }
}
