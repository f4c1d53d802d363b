//! Writing a segment (layout in the parent module).

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use parquet::bloom_filter::Sbbf;

use super::{err, filter_key, io_err, put_key, IndexError, SegmentMeta, BLOCK_BYTES, FILTER_FPP, MAGIC, TRAILER};
use crate::transform::dedupe::PackedHash;

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
