//! Index segments: immutable files of hashes, each with the run that imported it, sorted by hash.
//!
//! ```text
//! header    "QRYSEG01"
//! blocks    BLOCK_BYTES each: records (digit count u8, packed digits, run u32 LE) back to back,
//!           sorted, none across a block boundary; the rest of a block is zero (a digit count of 0
//!           ends it)
//! filter    a split-block bloom filter's bits (parquet's `Sbbf`)
//! footer    the run table (u32 count, then u16 length + bytes per run id), the block index (u32
//!           count, then per block its first key and the xxh3-64 of its bytes), the filter's xxh3-64
//!           and length (u64, u32), u64 record count, the last key (a digit count of 0 when none)
//! trailer   u64 footer offset, u64 footer length, u64 xxh3-64 of the footer, "QRYSEG01"
//! ```
//!
//! A lookup reads the trailer and footer once (the block index stays in memory: 25 bytes per block
//! of ~480 hashes, about 5 MB per 100M) and then one block per key that the filter (read only when
//! asked for) does not rule out. A file that fails a check is not a segment: `IndexError` says where.

mod reader;
mod writer;

use std::io;
use std::path::{Path, PathBuf};

use parquet::bloom_filter::Sbbf;

pub use reader::{Segment, SegmentRecords};
pub use writer::SegmentWriter;

use crate::transform::dedupe::PackedHash;

/// Bytes of one block: what a lookup reads for one key.
pub const BLOCK_BYTES: usize = 8192;
/// First bytes of a segment file and last bytes of its trailer.
pub(super) const MAGIC: &[u8; 8] = b"QRYSEG01";
/// Bytes of the trailer.
pub(super) const TRAILER: usize = 8 + 8 + 8 + 8;
/// False-positive rate of a segment's filter.
pub(super) const FILTER_FPP: f64 = 0.01;

/// An index file (segment, manifest) that is not valid or could not be read or written; or a file the
/// index is rebuilt from that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{}: {what}", path.display())]
pub struct IndexError {
    /// The segment file.
    pub path: PathBuf,
    /// What is wrong, with the byte offset where it is known.
    pub what: String,
}

pub(super) fn err(path: &Path, what: impl Into<String>) -> IndexError {
    IndexError { path: path.to_path_buf(), what: what.into() }
}

pub(super) fn io_err<'a>(path: &'a Path, doing: &'static str) -> impl FnOnce(io::Error) -> IndexError + 'a {
    move |e| err(path, format!("{doing}: {e}"))
}

/// Appends a key as stored: its digit count, then its packed digits.
pub(super) fn put_key(out: &mut Vec<u8>, k: &PackedHash) {
    let (bytes, digits) = k.parts();
    out.push(digits);
    out.extend_from_slice(&bytes[..usize::from(digits).div_ceil(2)]);
}

/// The key stored at the start of `data` and its length in bytes; `None` at a zero digit count (the
/// end of a block) or when the bytes are no key.
pub(super) fn get_key(data: &[u8]) -> Option<(PackedHash, usize)> {
    let digits = *data.first()?;
    let used = usize::from(digits).div_ceil(2);
    let packed = data.get(1..1 + used)?;
    let mut bytes = [0u8; 32];
    bytes[..used].copy_from_slice(packed);
    Some((PackedHash::from_parts(bytes, digits)?, 1 + used))
}

/// The bytes a filter is asked about for a key (its stored form), without an allocation.
pub(super) fn filter_key(k: &PackedHash) -> ([u8; 33], usize) {
    let (bytes, digits) = k.parts();
    let used = usize::from(digits).div_ceil(2);
    let mut out = [0u8; 33];
    out[0] = digits;
    out[1..1 + used].copy_from_slice(&bytes[..used]);
    (out, 1 + used)
}

/// Whether a filter may hold `k`.
pub(super) fn may_hold(filter: &Sbbf, k: &PackedHash) -> bool {
    let (b, n) = filter_key(k);
    filter.check(&b[..n])
}

/// What a finished segment holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentMeta {
    pub path: PathBuf,
    pub records: u64,
    /// Smallest and largest key (none for an empty segment).
    pub min: Option<PackedHash>,
    pub max: Option<PackedHash>,
    /// Bytes of the file.
    pub bytes: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u64) -> PackedHash {
        PackedHash::new(&format!("{:024x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15))).unwrap()
    }

    fn write(path: &Path, keys: &[PackedHash], run: impl Fn(usize) -> String) -> SegmentMeta {
        let mut w = SegmentWriter::create(path, keys.len() as u64).unwrap();
        for (i, k) in keys.iter().enumerate() {
            w.push(k, &run(i)).unwrap();
        }
        w.finish().unwrap()
    }

    fn sorted(n: u64) -> Vec<PackedHash> {
        let mut v: Vec<PackedHash> = (0..n).map(key).collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn lookups_find_every_key_and_only_those() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.seg");
        let keys = sorted(20_000);
        let present: Vec<PackedHash> = keys.iter().step_by(2).copied().collect();
        let meta = write(&path, &present, |i| format!("r{}", i % 3));
        assert_eq!(meta.records, present.len() as u64);
        assert_eq!((meta.min, meta.max), (present.first().copied(), present.last().copied()));
        for with_filter in [false, true] {
            let seg = Segment::open(&path, with_filter).unwrap();
            assert!(seg.blocks() > 10, "many blocks");
            let mut found = vec![None; keys.len()];
            seg.lookup(&keys, &mut found).unwrap();
            for (i, f) in found.iter().enumerate() {
                let want = (i % 2 == 0).then(|| format!("r{}", (i / 2) % 3));
                assert_eq!(f.map(str::to_string), want, "key {i}, filter {with_filter}");
            }
            let all: Vec<(PackedHash, String)> =
                seg.records_iter().map(|r| r.map(|(k, run)| (k, run.to_string())).unwrap()).collect();
            assert_eq!(all.len(), present.len());
            assert_eq!(seg.range(), Some((present[0], *present.last().unwrap())));
            assert!(all.iter().zip(&present).all(|((k, _), p)| k == p));
        }
    }

    #[test]
    fn keys_of_every_length_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.seg");
        let mut keys: Vec<PackedHash> = (1..=64)
            .flat_map(|n| [PackedHash::new(&"f".repeat(n)), PackedHash::new(&"0a".repeat(32)[..n])])
            .flatten()
            .collect();
        keys.sort_unstable();
        keys.dedup();
        write(&path, &keys, |_| "r".into());
        let seg = Segment::open(&path, true).unwrap();
        let mut found = vec![None; keys.len()];
        seg.lookup(&keys, &mut found).unwrap();
        assert!(found.iter().all(|f| *f == Some("r")));
        let empty = dir.path().join("e.seg");
        write(&empty, &[], |_| "r".into());
        let seg = Segment::open(&empty, true).unwrap();
        let mut found = vec![None; keys.len()];
        seg.lookup(&keys, &mut found).unwrap();
        assert!(found.iter().all(Option::is_none));
        assert_eq!(seg.records_iter().count(), 0);
        assert_eq!(seg.range(), None);
    }

    #[test]
    fn damage_is_found_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.seg");
        let keys = sorted(5_000);
        write(&path, &keys, |_| "r".into());
        let good = std::fs::read(&path).unwrap();
        // A cut file, a flipped footer byte: not a segment.
        std::fs::write(&path, &good[..good.len() - 3]).unwrap();
        assert!(Segment::open(&path, false).unwrap_err().what.contains("trailer"));
        let mut bad = good.clone();
        let at = bad.len() - TRAILER - 5;
        bad[at] ^= 1;
        std::fs::write(&path, &bad).unwrap();
        assert!(Segment::open(&path, false).unwrap_err().what.contains("footer checksum"));
        // A flipped block byte: found when that block is read.
        let mut bad = good.clone();
        bad[MAGIC.len() + BLOCK_BYTES + 10] ^= 1;
        std::fs::write(&path, &bad).unwrap();
        let seg = Segment::open(&path, false).unwrap();
        let e = seg.records_iter().find_map(Result::err).expect("a damaged block");
        assert!(e.what.contains("block 1") && e.what.contains("checksum"), "{e}");
        assert!(e.to_string().starts_with(&path.display().to_string()));
    }

    #[test]
    fn keys_must_come_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SegmentWriter::create(&dir.path().join("s.seg"), 2).unwrap();
        let keys = sorted(2);
        w.push(&keys[1], "r").unwrap();
        assert!(w.push(&keys[0], "r").is_err());
        assert!(w.push(&keys[1], "r").is_err(), "each key once");
    }
}
