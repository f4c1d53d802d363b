//! Reading a segment: its footer once, then blocks on demand (layout in the parent module).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use parquet::bloom_filter::Sbbf;

use super::{err, get_key, io_err, may_hold, put_key, IndexError, BLOCK_BYTES, MAGIC, TRAILER};
use crate::transform::dedupe::PackedHash;

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

    /// Blocks of records.
    pub fn blocks(&self) -> usize {
        self.key_at.len()
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
        thread_local! {
            /// One block buffer per thread: lookups run once per chunk and file, most read a block
            /// or two, and a fresh zeroed buffer each time cost more than the reads.
            static BUF: std::cell::RefCell<Box<[u8; BLOCK_BYTES]>> = std::cell::RefCell::new(Box::new([0u8; BLOCK_BYTES]));
        }
        BUF.with_borrow_mut(|buf| {
            let mut loaded: Option<usize> = None;
            for (k, slot) in keys.iter().zip(found.iter_mut()) {
                if slot.is_some() || self.filter.as_ref().is_some_and(|f| !may_hold(f, k)) {
                    continue;
                }
                let Some(block) = self.block_of(k) else { continue };
                if loaded != Some(block) {
                    self.read_block(block, buf)?;
                    loaded = Some(block);
                }
                *slot = self.find_in_block(&buf[..], k, block)?;
            }
            Ok(())
        })
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
