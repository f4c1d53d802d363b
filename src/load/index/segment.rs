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
//! A lookup reads the trailer and footer once (the block index stays in memory: about 2.5 bytes a
//! hash) and then one block per key that the filter (read only when asked for) does not rule out. A file that
//! fails a check is not a segment: `IndexError` says where.

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use parquet::bloom_filter::Sbbf;

use crate::transform::dedupe::PackedHash;

/// Bytes of one block: what a lookup reads for one key.
pub const BLOCK_BYTES: usize = 8192;
/// First bytes of a segment file and last bytes of its trailer.
const MAGIC: &[u8; 8] = b"QRYSEG01";
/// Bytes of the trailer.
const TRAILER: usize = 8 + 8 + 8 + 8;
/// False-positive rate of a segment's filter.
const FILTER_FPP: f64 = 0.01;

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

fn err(path: &Path, what: impl Into<String>) -> IndexError {
    IndexError { path: path.to_path_buf(), what: what.into() }
}

fn io_err<'a>(path: &'a Path, doing: &'static str) -> impl FnOnce(io::Error) -> IndexError + 'a {
    move |e| err(path, format!("{doing}: {e}"))
}

/// Appends a key as stored: its digit count, then its packed digits.
fn put_key(out: &mut Vec<u8>, k: &PackedHash) {
    let (bytes, digits) = k.parts();
    out.push(digits);
    out.extend_from_slice(&bytes[..usize::from(digits).div_ceil(2)]);
}

/// The key stored at the start of `data` and its length in bytes; `None` at a zero digit count (the
/// end of a block) or when the bytes are no key.
fn get_key(data: &[u8]) -> Option<(PackedHash, usize)> {
    let digits = *data.first()?;
    let used = usize::from(digits).div_ceil(2);
    let packed = data.get(1..1 + used)?;
    let mut bytes = [0u8; 32];
    bytes[..used].copy_from_slice(packed);
    Some((PackedHash::from_parts(bytes, digits)?, 1 + used))
}

/// The bytes a filter is asked about for a key (its stored form), without an allocation.
fn filter_key(k: &PackedHash) -> ([u8; 33], usize) {
    let (bytes, digits) = k.parts();
    let used = usize::from(digits).div_ceil(2);
    let mut out = [0u8; 33];
    out[0] = digits;
    out[1..1 + used].copy_from_slice(&bytes[..used]);
    (out, 1 + used)
}

/// Whether a filter may hold `k`.
fn may_hold(filter: &Sbbf, k: &PackedHash) -> bool {
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

/// Writes a segment: keys pushed in increasing order, each once, with its run.
pub struct SegmentWriter {
    path: PathBuf,
    out: BufWriter<File>,
    block: Vec<u8>,
    written: u64,
    /// The first key and checksum of each block written.
    index: Vec<u8>,
    blocks: u32,
    runs: Vec<String>,
    run_ids: std::collections::HashMap<String, u32>,
    last_run: Option<u32>,
    /// The digit count of every key so far (`Some(None)` once two differ).
    digits: Option<Option<u8>>,
    filter: Sbbf,
    records: u64,
    first: Option<PackedHash>,
    last: Option<PackedHash>,
}

impl SegmentWriter {
    /// Creates `path` for about `expected` keys (the filter is sized for them).
    pub fn create(path: &Path, expected: u64) -> Result<SegmentWriter, IndexError> {
        let file = File::create(path).map_err(io_err(path, "cannot create the segment"))?;
        let mut out = BufWriter::with_capacity(1 << 16, file);
        out.write_all(MAGIC).map_err(io_err(path, "cannot write the segment"))?;
        let filter = Sbbf::new_with_ndv_fpp(expected.max(1), FILTER_FPP).map_err(|e| err(path, e.to_string()))?;
        Ok(SegmentWriter {
            path: path.to_path_buf(),
            out,
            block: Vec::with_capacity(BLOCK_BYTES),
            written: MAGIC.len() as u64,
            index: Vec::new(),
            blocks: 0,
            runs: Vec::new(),
            run_ids: std::collections::HashMap::new(),
            last_run: None,
            digits: None,
            filter,
            records: 0,
            first: None,
            last: None,
        })
    }

    /// The index of `run` in the run table (runs come in long stretches: the last one is cached).
    fn run_index(&mut self, run: &str) -> u32 {
        if let Some(i) = self.last_run.filter(|&i| self.runs[i as usize] == run) {
            return i;
        }
        let i = match self.run_ids.get(run) {
            Some(&i) => i,
            None => {
                self.runs.push(run.to_string());
                let i = (self.runs.len() - 1) as u32;
                self.run_ids.insert(run.to_string(), i);
                i
            }
        };
        self.last_run = Some(i);
        i
    }

    /// Adds `key`, imported by `run`; keys must come in strictly increasing order.
    pub fn push(&mut self, key: &PackedHash, run: &str) -> Result<(), IndexError> {
        if self.last.is_some_and(|last| last >= *key) {
            return Err(err(&self.path, "keys out of order while writing"));
        }
        let run = self.run_index(run);
        let (_, digits) = key.parts();
        self.digits = match self.digits {
            None => Some(Some(digits)),
            Some(Some(d)) if d == digits => Some(Some(d)),
            _ => Some(None),
        };
        let len = 1 + usize::from(digits).div_ceil(2) + 4;
        if self.block.len() + len > BLOCK_BYTES {
            self.flush_block()?;
        }
        if self.block.is_empty() {
            put_key(&mut self.index, key);
        }
        put_key(&mut self.block, key);
        self.block.extend_from_slice(&run.to_le_bytes());
        let (b, n) = filter_key(key);
        self.filter.insert(&b[..n]);
        self.records += 1;
        self.first.get_or_insert(*key);
        self.last = Some(*key);
        Ok(())
    }

    fn flush_block(&mut self) -> Result<(), IndexError> {
        if self.block.is_empty() {
            return Ok(());
        }
        self.block.resize(BLOCK_BYTES, 0);
        let sum = xxhash_rust::xxh3::xxh3_64(&self.block);
        self.index.extend_from_slice(&sum.to_le_bytes());
        self.out.write_all(&self.block).map_err(io_err(&self.path, "cannot write the segment"))?;
        self.written += BLOCK_BYTES as u64;
        self.blocks += 1;
        self.block.clear();
        Ok(())
    }

    /// Writes the footer and makes the file durable.
    pub fn finish(mut self) -> Result<SegmentMeta, IndexError> {
        self.flush_block()?;
        let mut footer = Vec::new();
        footer.extend_from_slice(&(self.runs.len() as u32).to_le_bytes());
        for r in &self.runs {
            let len = u16::try_from(r.len()).map_err(|_| err(&self.path, format!("run id too long: {r}")))?;
            footer.extend_from_slice(&len.to_le_bytes());
            footer.extend_from_slice(r.as_bytes());
        }
        footer.extend_from_slice(&self.blocks.to_le_bytes());
        footer.extend_from_slice(&self.index);
        let mut bits = Vec::new();
        self.filter.write_bitset(&mut bits).map_err(|e| err(&self.path, e.to_string()))?;
        let bits_len = u32::try_from(bits.len()).map_err(|_| err(&self.path, "filter over 4 GiB"))?;
        footer.extend_from_slice(&xxhash_rust::xxh3::xxh3_64(&bits).to_le_bytes());
        footer.extend_from_slice(&bits_len.to_le_bytes());
        footer.extend_from_slice(&self.records.to_le_bytes());
        match &self.last {
            Some(k) => put_key(&mut footer, k),
            None => footer.push(0),
        }
        // The digit count all keys share (0: they differ), so a block can be searched by halves.
        footer.push(self.digits.flatten().unwrap_or(0));
        let footer_at = self.written + bits.len() as u64;
        let mut trailer = Vec::with_capacity(TRAILER);
        trailer.extend_from_slice(&footer_at.to_le_bytes());
        trailer.extend_from_slice(&(footer.len() as u64).to_le_bytes());
        trailer.extend_from_slice(&xxhash_rust::xxh3::xxh3_64(&footer).to_le_bytes());
        trailer.extend_from_slice(MAGIC);
        let path = self.path.clone();
        let write = |out: &mut BufWriter<File>| -> io::Result<File> {
            out.write_all(&bits)?;
            out.write_all(&footer)?;
            out.write_all(&trailer)?;
            out.flush()?;
            let file = out.get_ref().try_clone()?;
            file.sync_all()?;
            Ok(file)
        };
        let file = write(&mut self.out).map_err(io_err(&path, "cannot write the segment"))?;
        let bytes = file.metadata().map_err(io_err(&path, "cannot stat the segment"))?.len();
        Ok(SegmentMeta { path, records: self.records, min: self.first, max: self.last, bytes })
    }
}

/// An open segment: its run table and block index in memory, the blocks read on demand.
pub struct Segment {
    path: PathBuf,
    file: File,
    runs: Vec<String>,
    /// First key of each block, back to back (`put_key` layout), and where each starts.
    keys: Vec<u8>,
    key_at: Vec<u32>,
    sums: Vec<u64>,
    filter: Option<Sbbf>,
    records: u64,
    last: Option<PackedHash>,
    /// The digit count every key has, when they all have the same (0 when not).
    digits: u8,
}

impl std::fmt::Debug for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segment").field("path", &self.path).field("records", &self.records).finish()
    }
}

/// Reads little-endian fields from a footer, naming the footer in errors.
struct Fields<'a> {
    data: &'a [u8],
    at: usize,
    path: &'a Path,
}

impl<'a> Fields<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], IndexError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.data.len());
        let end = end.ok_or_else(|| err(self.path, format!("footer ends early (at footer byte {})", self.at)))?;
        let s = &self.data[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn u32(&mut self) -> Result<u32, IndexError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("four bytes")))
    }

    fn u64(&mut self) -> Result<u64, IndexError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("eight bytes")))
    }
}

impl Segment {
    /// Opens a segment and checks its trailer and footer; `with_filter` keeps its filter in memory
    /// (lookups of absent keys then read no block).
    pub fn open(path: &Path, with_filter: bool) -> Result<Segment, IndexError> {
        let mut file = File::open(path).map_err(io_err(path, "cannot open the segment"))?;
        let len = file.metadata().map_err(io_err(path, "cannot stat the segment"))?.len();
        if len < (MAGIC.len() + TRAILER) as u64 {
            return Err(err(path, format!("{len} bytes: too short for a segment")));
        }
        let mut trailer = [0u8; TRAILER];
        file.seek(SeekFrom::End(-(TRAILER as i64))).map_err(io_err(path, "cannot read the segment"))?;
        file.read_exact(&mut trailer).map_err(io_err(path, "cannot read the segment"))?;
        if &trailer[24..] != MAGIC {
            return Err(err(path, "no segment trailer at its end (written only in part?)"));
        }
        let word = |i: usize| u64::from_le_bytes(trailer[i * 8..i * 8 + 8].try_into().expect("eight bytes"));
        let (offset, footer_len, sum) = (word(0), word(1), word(2));
        if offset.checked_add(footer_len) != Some(len - TRAILER as u64) {
            return Err(err(
                path,
                format!("the trailer's footer (at byte {offset}, {footer_len} bytes) does not end the file"),
            ));
        }
        let mut footer = vec![0u8; footer_len as usize];
        file.read_exact_at(&mut footer, offset).map_err(io_err(path, "cannot read the segment footer"))?;
        if xxhash_rust::xxh3::xxh3_64(&footer) != sum {
            return Err(err(path, format!("footer checksum mismatch (footer at byte {offset})")));
        }
        let mut head = [0u8; 8];
        file.read_exact_at(&mut head, 0).map_err(io_err(path, "cannot read the segment"))?;
        if &head != MAGIC {
            return Err(err(path, "not a segment (no QRYSEG01 at its start)"));
        }
        Self::parse(path, file, &footer, offset, with_filter)
    }

    fn parse(path: &Path, file: File, footer: &[u8], footer_at: u64, with_filter: bool) -> Result<Segment, IndexError> {
        let mut f = Fields { data: footer, at: 0, path };
        let nruns = f.u32()?;
        let mut runs = Vec::with_capacity(nruns.min(1 << 16) as usize);
        for _ in 0..nruns {
            let len = u16::from_le_bytes(f.take(2)?.try_into().expect("two bytes"));
            let id = std::str::from_utf8(f.take(usize::from(len))?).map_err(|_| err(path, "a run id is not UTF-8"))?;
            runs.push(id.to_string());
        }
        let nblocks = f.u32()? as usize;
        let (mut keys, mut key_at, mut sums) = (Vec::new(), Vec::with_capacity(nblocks), Vec::with_capacity(nblocks));
        for _ in 0..nblocks {
            let rest = &f.data[f.at..];
            let (k, used) = get_key(rest).ok_or_else(|| err(path, "a block's first key is not a hash"))?;
            f.take(used)?;
            key_at.push(keys.len() as u32);
            put_key(&mut keys, &k);
            sums.push(f.u64()?);
        }
        let (filter_sum, filter_len) = (f.u64()?, f.u32()? as u64);
        let blocks_end = (MAGIC.len() + nblocks * BLOCK_BYTES) as u64;
        if blocks_end + filter_len != footer_at {
            return Err(err(path, format!("{nblocks} blocks and a {filter_len}-byte filter do not fill the {footer_at} bytes before the footer")));
        }
        let filter = if with_filter && filter_len > 0 {
            let mut bits = vec![0u8; filter_len as usize];
            file.read_exact_at(&mut bits, blocks_end).map_err(io_err(path, "cannot read the segment filter"))?;
            if xxhash_rust::xxh3::xxh3_64(&bits) != filter_sum {
                return Err(err(path, format!("filter checksum mismatch (filter at byte {blocks_end})")));
            }
            Some(Sbbf::new(&bits))
        } else {
            None
        };
        let records = f.u64()?;
        let last = match f.data.get(f.at) {
            Some(0) => {
                f.take(1)?;
                None
            }
            _ => {
                let (k, used) =
                    get_key(&f.data[f.at..]).ok_or_else(|| err(path, "the footer's last key is not a hash"))?;
                f.take(used)?;
                Some(k)
            }
        };
        let digits = f.take(1)?[0];
        if digits > 64 {
            return Err(err(path, format!("the footer's digit count {digits} is over 64")));
        }
        if last.is_some() == key_at.is_empty() {
            return Err(err(path, "the footer's last key does not match its blocks"));
        }
        Ok(Segment { path: path.to_path_buf(), file, runs, keys, key_at, sums, filter, records, last, digits })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Keys held.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Smallest and largest key (none when the segment is empty).
    pub fn range(&self) -> Option<(PackedHash, PackedHash)> {
        let last = self.last?;
        Some((self.first_key(0), last))
    }

    /// The run ids its records name.
    pub fn runs(&self) -> &[String] {
        &self.runs
    }

    /// Bytes of memory the open segment holds (block index and filter).
    pub fn memory(&self) -> usize {
        self.keys.len()
            + self.key_at.len() * 4
            + self.sums.len() * 8
            + self.filter.as_ref().map_or(0, |f| f.num_blocks() * 32)
    }

    fn first_key(&self, block: usize) -> PackedHash {
        get_key(&self.keys[self.key_at[block] as usize..]).expect("checked when opened").0
    }

    /// The block that holds `key` if any does: the last whose first key is not greater.
    fn block_of(&self, key: &PackedHash) -> Option<usize> {
        let (mut lo, mut hi) = (0, self.key_at.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.first_key(mid) <= *key {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo.checked_sub(1)
    }

    /// Reads and checks block `i`.
    fn read_block(&self, i: usize, buf: &mut [u8; BLOCK_BYTES]) -> Result<(), IndexError> {
        let at = (MAGIC.len() + i * BLOCK_BYTES) as u64;
        self.file.read_exact_at(buf, at).map_err(io_err(&self.path, "cannot read a segment block"))?;
        if xxhash_rust::xxh3::xxh3_64(buf) != self.sums[i] {
            // Moved aside, so the next run finds it missing and rebuilds what it held.
            let aside = self.path.with_extension("seg.damaged");
            let moved = std::fs::rename(&self.path, &aside).is_ok();
            let then = if moved { "; moved aside: the next run rebuilds the index from the posts files" } else { "" };
            return Err(err(&self.path, format!("block {i} (at byte {at}) fails its checksum{then}")));
        }
        Ok(())
    }

    /// For keys in increasing order, the run id of each key the segment holds, in `found` (left as
    /// it is for the others). Each block is read at most once.
    pub fn lookup<'s>(&'s self, keys: &[PackedHash], found: &mut [Option<&'s str>]) -> Result<(), IndexError> {
        debug_assert!(keys.windows(2).all(|w| w[0] < w[1]), "keys sorted and unique");
        let mut buf = Box::new([0u8; BLOCK_BYTES]);
        let mut loaded: Option<usize> = None;
        for (k, slot) in keys.iter().zip(found.iter_mut()) {
            if slot.is_some() || self.filter.as_ref().is_some_and(|f| !may_hold(f, k)) {
                continue;
            }
            let Some(block) = self.block_of(k) else { continue };
            if loaded != Some(block) {
                self.read_block(block, &mut buf)?;
                loaded = Some(block);
            }
            *slot = self.find_in_block(&buf[..], k, block)?;
        }
        Ok(())
    }

    fn find_in_block<'s>(&'s self, block: &[u8], k: &PackedHash, i: usize) -> Result<Option<&'s str>, IndexError> {
        let (bytes, digits) = k.parts();
        let used = usize::from(digits).div_ceil(2);
        let at = if self.digits > 0 {
            // Every record is as wide: search the block by halves (records first, then zeros).
            if digits != self.digits {
                return Ok(None);
            }
            let width = 1 + used + 4;
            let (mut lo, mut hi) = (0, BLOCK_BYTES / width);
            while lo < hi {
                let mid = (lo + hi) / 2;
                if block[mid * width] != 0 {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            // Same digit count: the packed bytes compare as the keys do.
            let packed = &bytes[..used];
            let (mut lo, mut hi) = (0, lo);
            loop {
                if lo >= hi {
                    return Ok(None);
                }
                let mid = (lo + hi) / 2;
                match block[mid * width + 1..mid * width + 1 + used].cmp(packed) {
                    std::cmp::Ordering::Less => lo = mid + 1,
                    std::cmp::Ordering::Greater => hi = mid,
                    std::cmp::Ordering::Equal => break mid * width,
                }
            }
        } else {
            let mut at = 0;
            loop {
                let Some((key, len)) = get_key(&block[at..]) else { return Ok(None) };
                match key.cmp(k) {
                    std::cmp::Ordering::Less => at += len + 4,
                    std::cmp::Ordering::Equal => break at,
                    std::cmp::Ordering::Greater => return Ok(None),
                }
            }
        };
        let run_at = at + 1 + used;
        let run =
            block.get(run_at..run_at + 4).ok_or_else(|| err(&self.path, format!("block {i}: a record ends early")))?;
        let run = u32::from_le_bytes(run.try_into().expect("four bytes")) as usize;
        let id = self
            .runs
            .get(run)
            .ok_or_else(|| err(&self.path, format!("block {i}: run {run} is not in the run table")))?;
        Ok(Some(id))
    }

    /// Every record in key order, read block by block (for merges and checks).
    pub fn records_iter(&self) -> SegmentRecords<'_> {
        SegmentRecords { seg: self, block: 0, buf: Box::new([0u8; BLOCK_BYTES]), at: BLOCK_BYTES, failed: false }
    }
}

/// The records of a segment in key order; see `Segment::records_iter`.
pub struct SegmentRecords<'s> {
    seg: &'s Segment,
    block: usize,
    buf: Box<[u8; BLOCK_BYTES]>,
    at: usize,
    failed: bool,
}

impl<'s> Iterator for SegmentRecords<'s> {
    type Item = Result<(PackedHash, &'s str), IndexError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        loop {
            if self.at < BLOCK_BYTES {
                if let Some((key, used)) = get_key(&self.buf[self.at..]) {
                    let run_at = self.at + used;
                    let Some(run) = self.buf.get(run_at..run_at + 4) else {
                        self.failed = true;
                        return Some(Err(err(
                            &self.seg.path,
                            format!("block {}: a record ends early", self.block - 1),
                        )));
                    };
                    let run = u32::from_le_bytes(run.try_into().expect("four bytes")) as usize;
                    self.at = run_at + 4;
                    return Some(match self.seg.runs.get(run) {
                        Some(id) => Ok((key, id.as_str())),
                        None => {
                            self.failed = true;
                            Err(err(
                                &self.seg.path,
                                format!("block {}: run {run} is not in the run table", self.block - 1),
                            ))
                        }
                    });
                }
            }
            if self.block >= self.seg.sums.len() {
                return None;
            }
            if let Err(e) = self.seg.read_block(self.block, &mut self.buf) {
                self.failed = true;
                return Some(Err(e));
            }
            self.block += 1;
            self.at = 0;
        }
    }
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
            assert!(seg.key_at.len() > 10, "many blocks");
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
