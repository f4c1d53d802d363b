//! Merging sorted runs of (hash, run) records into segment files: a k-way merge that holds one block
//! per input, and an output that starts a new file every `target_bytes`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::path::{Path, PathBuf};

use super::manifest::FileEntry;
use super::segment::{IndexError, SegmentMeta, SegmentWriter};
use crate::transform::dedupe::PackedHash;

/// One sorted input of a merge.
pub type Records<'a> = Box<dyn Iterator<Item = Result<(PackedHash, &'a str), IndexError>> + 'a>;

/// Merges sorted inputs into `push`, in key order. A key in two inputs (never written so by quarry,
/// but possible in a damaged warehouse) is pushed once, with the run id that sorts first — the run
/// that started first, which is the first to import it. Returns the records pushed.
pub fn merge<'a>(
    mut inputs: Vec<Records<'a>>,
    mut push: impl FnMut(&PackedHash, &str) -> Result<(), IndexError>,
) -> Result<u64, IndexError> {
    let mut heads: BinaryHeap<Reverse<(PackedHash, &'a str, usize)>> = BinaryHeap::with_capacity(inputs.len());
    for (i, input) in inputs.iter_mut().enumerate() {
        if let Some(r) = input.next() {
            let (k, run) = r?;
            heads.push(Reverse((k, run, i)));
        }
    }
    let mut pushed = 0;
    let mut last: Option<PackedHash> = None;
    while let Some(Reverse((k, run, i))) = heads.pop() {
        if last != Some(k) {
            push(&k, run)?;
            pushed += 1;
            last = Some(k);
        }
        if let Some(r) = inputs[i].next() {
            let (next, next_run) = r?;
            heads.push(Reverse((next, next_run, i)));
        }
    }
    Ok(pushed)
}

/// Segment files of one level written in key order, a new file every `target_bytes` of records.
pub struct LevelWriter<'d> {
    dir: &'d Path,
    level: u8,
    target_bytes: u64,
    expected: u64,
    next_file: &'d mut u64,
    current: Option<(SegmentWriter, PathBuf, u64)>,
    done: Vec<FileEntry>,
}

/// A finished segment as a manifest entry.
pub fn entry(meta: &SegmentMeta, level: u8) -> FileEntry {
    FileEntry {
        name: meta.path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string(),
        level,
        records: meta.records,
        bytes: meta.bytes,
        min: meta.min.map(|k| k.to_hex()).unwrap_or_default(),
        max: meta.max.map(|k| k.to_hex()).unwrap_or_default(),
    }
}

impl<'d> LevelWriter<'d> {
    /// Files of `level` in `dir`, named from `next_file` on; `expected` records in all (to size
    /// each file's filter).
    pub fn new(dir: &'d Path, level: u8, target_bytes: u64, expected: u64, next_file: &'d mut u64) -> Self {
        LevelWriter { dir, level, target_bytes, expected, next_file, current: None, done: Vec::new() }
    }

    /// The name of the file numbered `n`.
    pub fn file_name(n: u64) -> String {
        format!("{n:08}.seg")
    }

    /// Adds a record (in key order across the whole level).
    pub fn push(&mut self, k: &PackedHash, run: &str) -> Result<(), IndexError> {
        if self.current.as_ref().is_some_and(|(_, _, bytes)| *bytes >= self.target_bytes) {
            self.close_current()?;
        }
        if self.current.is_none() {
            let path = self.dir.join(Self::file_name(*self.next_file));
            *self.next_file += 1;
            // Sized for a full file, or for what is left when that is less.
            let per_file = self.target_bytes / 17 + 1;
            let done: u64 = self.done.iter().map(|e| e.records).sum();
            let w = SegmentWriter::create(&path, per_file.min(self.expected.saturating_sub(done).max(1)))?;
            self.current = Some((w, path, 0));
        }
        let (w, _, bytes) = self.current.as_mut().expect("a file open");
        w.push(k, run)?;
        let (_, digits) = k.parts();
        *bytes += 1 + u64::from(digits).div_ceil(2) + 4;
        Ok(())
    }

    fn close_current(&mut self) -> Result<(), IndexError> {
        if let Some((w, _, _)) = self.current.take() {
            let meta = w.finish()?;
            self.done.push(entry(&meta, self.level));
        }
        Ok(())
    }

    /// Closes the last file; the entries of every file written.
    pub fn finish(mut self) -> Result<Vec<FileEntry>, IndexError> {
        self.close_current()?;
        Ok(self.done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(h: &str) -> PackedHash {
        PackedHash::new(h).unwrap()
    }

    fn input(recs: &'static [(&'static str, &'static str)]) -> Records<'static> {
        let v: Vec<_> = recs.iter().map(|(k, r)| Ok((key(k), *r))).collect();
        Box::new(v.into_iter())
    }

    #[test]
    fn merge_orders_and_keeps_a_repeated_key_once_with_the_first_run() {
        let mut out = Vec::new();
        let n = merge(
            vec![input(&[("aa", "r2"), ("cc", "r2")]), input(&[("bb", "r1"), ("cc", "r1")]), input(&[])],
            |k, r| {
                out.push((k.to_hex(), r.to_string()));
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(n, 3);
        assert_eq!(out, [("aa".into(), "r2".into()), ("bb".into(), "r1".into()), ("cc".into(), "r1".into())]);
    }

    #[test]
    fn a_level_writer_cuts_files_at_the_target_size() {
        let dir = tempfile::tempdir().unwrap();
        let mut next = 7;
        let mut w = LevelWriter::new(dir.path(), 2, 17 * 100, 1000, &mut next);
        let keys: Vec<String> = (0..1000u32).map(|i| format!("{:024x}", i)).collect();
        for k in &keys {
            w.push(&key(k), "r").unwrap();
        }
        let files = w.finish().unwrap();
        assert_eq!(next, 17, "ten files, numbered from 7");
        assert_eq!(files.len(), 10);
        assert_eq!(files.iter().map(|f| f.records).sum::<u64>(), 1000);
        assert_eq!((files[0].name.as_str(), files[0].min.as_str()), ("00000007.seg", keys[0].as_str()));
        assert!(files.windows(2).all(|w| w[0].max < w[1].min && w[0].level == 2));
    }
}
