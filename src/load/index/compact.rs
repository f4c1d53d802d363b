//! Keeping the index few files deep (leveled merges, as LSM key-value stores do): level 0 holds one
//! file per run; once it holds `l0_files` files or `l0_bytes` bytes, they are merged with the
//! level-1 files they overlap into level 1. Level n ≥ 1 holds at most `level_limit(n)` bytes, in
//! files of about `file_bytes` with disjoint key ranges; past its limit, one of its files is merged
//! with the files of level n+1 it overlaps (the next one round the key space each time). Each step
//! reads and writes at most a few tens of MB, and the work a run leaves follows the hashes it
//! added. A step writes its files, then one new manifest, then removes its inputs: a step cut short
//! leaves the old manifest, and the next run removes the files it does not list.

use std::fs;
use std::path::Path;

use super::manifest::{FileEntry, Manifest};
use super::merge::{merge, LevelWriter, Records};
use super::segment::{IndexError, Segment};
use crate::transform::dedupe::PackedHash;

/// When and how the levels are merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Level 0 is merged down once it holds this many files…
    pub l0_files: usize,
    /// …or this many bytes.
    pub l0_bytes: u64,
    /// Target size of a file of level 1 and below.
    pub file_bytes: u64,
    /// Bytes level 1 holds at most; each deeper level ten times more.
    pub l1_bytes: u64,
}

impl Default for Policy {
    /// Level 0 merged at 8 files or 32 MB, 4 MB files, level 1 up to 32 MB: a merge step reads and
    /// writes at most about 45 MB, and 100 million hashes (1.7 GB) sit in three levels.
    fn default() -> Self {
        Policy { l0_files: 8, l0_bytes: 32 << 20, file_bytes: 4 << 20, l1_bytes: 32 << 20 }
    }
}

impl Policy {
    /// The policy of a run: the default; in debug builds `QUARRY_TEST_INDEX_POLICY=tiny` asks for
    /// one under which a few pages make several levels (for the kill tests).
    pub fn for_runs() -> Policy {
        if crate::load::hold::tiny_policy() {
            Policy { l0_files: 2, l0_bytes: 2_000, file_bytes: 1_000, l1_bytes: 2_000 }
        } else {
            Policy::default()
        }
    }

    /// The most bytes level `n` (≥ 1) holds.
    pub fn level_limit(&self, n: u8) -> u64 {
        self.l1_bytes.saturating_mul(10u64.saturating_pow(u32::from(n.saturating_sub(1))))
    }
}

/// A merge to do: its input files and the level its output goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub inputs: Vec<FileEntry>,
    pub level: u8,
}

/// What merging did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Merged {
    pub steps: usize,
    pub files_in: usize,
    pub files_out: usize,
    /// Bytes read and written.
    pub bytes_in: u64,
    pub bytes_out: u64,
}

fn key(hex: &str) -> Option<PackedHash> {
    PackedHash::new(hex)
}

/// Whether two files' key ranges overlap (an empty file overlaps nothing).
fn overlaps(a: &FileEntry, lo: &PackedHash, hi: &PackedHash) -> bool {
    match (key(&a.min), key(&a.max)) {
        (Some(amin), Some(amax)) => amin <= *hi && *lo <= amax,
        _ => false,
    }
}

/// The key range of some files.
fn span(files: &[&FileEntry]) -> Option<(PackedHash, PackedHash)> {
    let lo = files.iter().filter_map(|f| key(&f.min)).min()?;
    let hi = files.iter().filter_map(|f| key(&f.max)).max()?;
    Some((lo, hi))
}

/// The next merge the manifest calls for, if any.
pub fn plan(m: &Manifest, policy: &Policy) -> Option<Step> {
    let l0 = m.level(0);
    let l0_bytes: u64 = l0.iter().map(|f| f.bytes).sum();
    if l0.len() >= policy.l0_files || (l0_bytes >= policy.l0_bytes && !l0.is_empty()) {
        let mut inputs: Vec<FileEntry> = l0.iter().map(|f| (*f).clone()).collect();
        if let Some((lo, hi)) = span(&l0) {
            inputs.extend(m.level(1).into_iter().filter(|f| overlaps(f, &lo, &hi)).cloned());
        }
        return Some(Step { inputs, level: 1 });
    }
    for n in 1..=m.depth() {
        let files = m.level(n);
        if files.iter().map(|f| f.bytes).sum::<u64>() <= policy.level_limit(n) {
            continue;
        }
        // The first file past the last one moved down, round the key space.
        let from = m.merge_from.get(usize::from(n) - 1).and_then(|k| key(k));
        let pick = files
            .iter()
            .find(|f| from.is_none_or(|from| key(&f.min).is_some_and(|min| min > from)))
            .or(files.first())
            .copied()?;
        let mut inputs = vec![pick.clone()];
        if let (Some(lo), Some(hi)) = (key(&pick.min), key(&pick.max)) {
            inputs.extend(m.level(n + 1).into_iter().filter(|f| overlaps(f, &lo, &hi)).cloned());
        }
        return Some(Step { inputs, level: n + 1 });
    }
    None
}

/// Carries out `step` in `dir` and returns the manifest that replaces `m` (already written).
pub fn run_step(dir: &Path, m: &Manifest, step: &Step, policy: &Policy) -> Result<(Manifest, Merged), IndexError> {
    let opened: Vec<Segment> =
        step.inputs.iter().map(|f| Segment::open(&dir.join(&f.name), false)).collect::<Result<_, _>>()?;
    let inputs: Vec<Records<'_>> = opened.iter().map(|s| Box::new(s.records_iter()) as Records<'_>).collect();
    let expected: u64 = step.inputs.iter().map(|f| f.records).sum();
    let mut next = m.next_file;
    let mut out = LevelWriter::new(dir, step.level, policy.file_bytes, expected, &mut next);
    merge(inputs, |k, run| out.push(k, run))?;
    let written = out.finish()?;
    crate::load::hold::hold_at("merge-written");
    let mut new = m.clone();
    new.next_file = next;
    new.files.retain(|f| !step.inputs.iter().any(|i| i.name == f.name));
    // A merge out of level n ≥ 1 moved one file's range down: the next starts past it.
    if step.level >= 2 {
        let from = usize::from(step.level) - 2;
        if new.merge_from.len() <= from {
            new.merge_from.resize(from + 1, String::new());
        }
        new.merge_from[from] = step.inputs[0].max.clone();
    }
    let merged = Merged {
        steps: 1,
        files_in: step.inputs.len(),
        files_out: written.len(),
        bytes_in: step.inputs.iter().map(|f| f.bytes).sum(),
        bytes_out: written.iter().map(|f| f.bytes).sum(),
    };
    new.files.extend(written.into_iter().filter(|f| f.records > 0));
    new.write(dir)
        .map_err(|e| IndexError { path: dir.join(super::manifest::FILE), what: format!("cannot write: {e}") })?;
    crate::load::hold::hold_at("merge-switched");
    drop(opened);
    for f in &step.inputs {
        let _ = fs::remove_file(dir.join(&f.name));
    }
    Ok((new, merged))
}

/// Merges until no level is over its limit; returns the manifest in force and what was done.
pub fn settle(dir: &Path, mut m: Manifest, policy: &Policy) -> Result<(Manifest, Merged), IndexError> {
    let mut total = Merged::default();
    while let Some(step) = plan(&m, policy) {
        let (next, done) = run_step(dir, &m, &step, policy)?;
        total.steps += done.steps;
        total.files_in += done.files_in;
        total.files_out += done.files_out;
        total.bytes_in += done.bytes_in;
        total.bytes_out += done.bytes_out;
        m = next;
    }
    Ok((m, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, level: u8, bytes: u64, min: &str, max: &str) -> FileEntry {
        FileEntry { name: name.into(), level, records: bytes / 17, bytes, min: min.into(), max: max.into() }
    }

    #[test]
    fn plans_follow_the_levels_limits() {
        let policy = Policy::default();
        let plan = |m: &Manifest| plan(m, &policy);
        let mut m = Manifest::empty();
        assert_eq!(plan(&m), None);
        for i in 0..policy.l0_files - 1 {
            m.files.push(file(&format!("run-{i}.seg"), 0, 1000, "10", "f0"));
        }
        m.files.push(file("a.seg", 1, 1 << 20, "00", "3f"));
        m.files.push(file("b.seg", 1, 1 << 20, "40", "ff"));
        assert_eq!(plan(&m), None, "level 0 under both limits");
        m.files.push(file("run-last.seg", 0, 1000, "20", "30"));
        let step = plan(&m).unwrap();
        assert_eq!(step.level, 1);
        assert_eq!(step.inputs.len(), policy.l0_files + 2, "all of level 0 and the level-1 files it overlaps");
        // Level 1 over its limit: its first file goes down with the level-2 files it overlaps.
        let mut m = Manifest::empty();
        m.files.push(file("a.seg", 1, policy.l1_bytes, "00", "3f"));
        m.files.push(file("b.seg", 1, 1, "40", "ff"));
        m.files.push(file("c.seg", 2, 1, "00", "1f"));
        m.files.push(file("d.seg", 2, 1, "20", "4f"));
        m.files.push(file("e.seg", 2, 1, "50", "ff"));
        let step = plan(&m).unwrap();
        assert_eq!(
            (step.level, step.inputs.iter().map(|f| f.name.as_str()).collect::<Vec<_>>()),
            (2, vec!["a.seg", "c.seg", "d.seg"])
        );
        // The next merge out of level 1 starts past the last.
        m.merge_from = vec!["3f".into()];
        let step = plan(&m).unwrap();
        assert_eq!(step.inputs.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(), ["b.seg", "d.seg", "e.seg"]);
        assert_eq!(policy.level_limit(3), policy.l1_bytes * 100);
    }
}
