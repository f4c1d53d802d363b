//! The index manifest (`_quarry/index/MANIFEST`): which segment files make up the index, at which
//! level, with their key ranges, and which runs' hashes they hold. It is replaced whole by one
//! rename, so a reader sees the index before or after a change, never between.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The manifest's layout version; a manifest of another version is rebuilt, not read.
pub const FORMAT: u32 = 1;
/// The manifest's file name inside the index folder.
pub const FILE: &str = "MANIFEST";

/// One segment file of the index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// File name inside the index folder.
    pub name: String,
    /// 0: a run's own hashes (files of level 0 may overlap); 1 and up: files of disjoint key ranges.
    pub level: u8,
    /// Keys held.
    pub records: u64,
    /// Bytes of the file.
    pub bytes: u64,
    /// Smallest and largest key, as hex (empty for an empty file).
    pub min: String,
    pub max: String,
}

/// The whole manifest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: u32,
    /// Runs whose hashes the files hold (each finished run with posts, once adopted).
    pub runs: BTreeSet<String>,
    /// Every file of the index.
    pub files: Vec<FileEntry>,
    /// Number of the next file a merge writes (names never repeat).
    pub next_file: u64,
    /// Per level from 1 up: the largest key already moved on to the next level, where the next
    /// merge out of that level starts (so merges go round the key space).
    pub merge_from: Vec<String>,
}

impl Manifest {
    /// An empty index.
    pub fn empty() -> Manifest {
        Manifest { format: FORMAT, ..Manifest::default() }
    }

    /// Reads the manifest of `dir`: `Ok(None)` when there is none, `Err` with what is wrong when it
    /// cannot be read as one.
    pub fn read(dir: &Path) -> Result<Option<Manifest>, String> {
        let path = dir.join(FILE);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("{}: cannot read: {e}", path.display())),
        };
        let m: Manifest =
            serde_json::from_str(&text).map_err(|e| format!("{}: not a manifest: {e}", path.display()))?;
        if m.format != FORMAT {
            return Err(format!("{}: format {} (this quarry reads format {FORMAT})", path.display(), m.format));
        }
        Ok(Some(m))
    }

    /// Writes the manifest into `dir` durably and atomically (a temporary file, then one rename).
    pub fn write(&self, dir: &Path) -> std::io::Result<PathBuf> {
        let tmp = dir.join(format!("{FILE}.tmp"));
        let to = dir.join(FILE);
        let mut f = fs::File::create(&tmp)?;
        f.write_all(serde_json::to_string_pretty(self).expect("a manifest serializes").as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        fs::rename(&tmp, &to)?;
        fs::File::open(dir)?.sync_all()?;
        Ok(to)
    }

    /// Files of a level, in key order for levels from 1 up.
    pub fn level(&self, level: u8) -> Vec<&FileEntry> {
        let mut v: Vec<&FileEntry> = self.files.iter().filter(|f| f.level == level).collect();
        if level > 0 {
            v.sort_by(|a, b| a.min.cmp(&b.min));
        }
        v
    }

    /// The deepest level with files (0 when there are none above level 0).
    pub fn depth(&self) -> u8 {
        self.files.iter().map(|f| f.level).max().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_round_trips_and_a_bad_one_says_why() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Manifest::read(dir.path()), Ok(None));
        let mut m = Manifest::empty();
        m.runs.insert("r1".into());
        m.files.push(FileEntry {
            name: "run-r1.seg".into(),
            level: 0,
            records: 3,
            bytes: 100,
            min: "0a".into(),
            max: "ff".into(),
        });
        m.write(dir.path()).unwrap();
        assert_eq!(Manifest::read(dir.path()), Ok(Some(m.clone())));
        assert!(!dir.path().join("MANIFEST.tmp").exists());
        fs::write(dir.path().join(FILE), "{\"format\": 1, \"runs\": [").unwrap();
        assert!(Manifest::read(dir.path()).unwrap_err().contains("not a manifest"));
        m.format = 99;
        m.write(dir.path()).unwrap();
        assert!(Manifest::read(dir.path()).unwrap_err().contains("format 99"));
    }
}
