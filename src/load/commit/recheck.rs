//! The commit's second look, for runs that overlap: under the commit lock, the hashes of this run
//! that a run which committed since this one began took first (by commit order: first wins) move
//! from the run's staged posts to its staged duplicates, and its own index segment loses them.
//! Only the staged files that change are rewritten; the run's other work stands.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::Path;

use arrow::array::{Array, AsArray, BooleanArray};
use arrow::compute::filter_record_batch;
use arrow::datatypes::Int64Type;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::{CommitError, RunCommit};
use crate::contract::Table;
use crate::extract::batch::{duplicates_batch, DuplicateRow};
use crate::load::index::segment::{IndexError, Segment, SegmentWriter};
use crate::load::index::Index;
use crate::load::parquet::{part_name, properties, TableWriter, WriteError};
use crate::load::warehouse::io_err;
use crate::pipeline::OutputConfig;
use crate::transform::dedupe::PackedHash;

/// Hashes looked up per call.
const LOOKUP_BATCH: usize = 65_536;

/// The hashes of the run's segment that `newer` (the index files written since the run began)
/// holds, with the run that took each.
pub fn taken_meanwhile(newer: &Index, segment: &Path) -> Result<HashMap<String, String>, IndexError> {
    let seg = Segment::open(segment, false)?;
    let mut taken = HashMap::new();
    let mut keys: Vec<PackedHash> = Vec::with_capacity(LOOKUP_BATCH);
    let mut records = seg.records_iter();
    loop {
        keys.clear();
        for r in records.by_ref().take(LOOKUP_BATCH) {
            keys.push(r?.0);
        }
        if keys.is_empty() {
            return Ok(taken);
        }
        for (k, run) in keys.iter().zip(newer.lookup(&keys)?) {
            if let Some(run) = run {
                taken.insert(k.to_hex(), run.to_string());
            }
        }
    }
}

/// What `move_taken` moved: rows, and the issue codes they carried (posts count them, duplicates do not).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Moved {
    pub rows: u64,
    /// Rows with at least one issue.
    pub with_issues: u64,
    pub issues_by_code: BTreeMap<String, u64>,
}

/// Where the new version of a staged file is written before it replaces it (`TableWriter::create`
/// names its file `<stem>.parquet`).
fn beside(path: &Path) -> std::path::PathBuf {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("part");
    path.with_file_name(format!("{stem}.recheck.parquet"))
}

fn parquet_err(path: &Path) -> impl Fn(parquet::errors::ParquetError) -> WriteError + '_ {
    move |source| WriteError { path: path.to_path_buf(), source }
}

impl RunCommit {
    /// Moves the rows of `taken` (hash → the run that took it first) from the staged posts parts
    /// to the staged duplicates file and out of the staged segment.
    pub fn move_taken(
        &self,
        taken: &HashMap<String, String>,
        segment: &Path,
        out: &OutputConfig,
    ) -> Result<Moved, CommitError> {
        let mut moved: Vec<DuplicateRow> = Vec::new();
        let mut tally = Moved::default();
        let mut kept_parts = Vec::new();
        for n in 0.. {
            let part = self.staging.join(part_name(Table::Posts.name(), n));
            if !part.exists() {
                break;
            }
            if self.filter_posts(&part, taken, out, &mut moved, &mut tally)? > 0 || n == 0 {
                kept_parts.push(part);
            } else {
                fs::remove_file(&part).map_err(io_err(&part, "cannot remove an emptied staged file"))?;
            }
        }
        // Parts left empty are gone: number the rest from 0 again (part 0 stays, empty or not).
        for (n, part) in kept_parts.iter().enumerate() {
            let want = self.staging.join(part_name(Table::Posts.name(), n as u32));
            if *part != want {
                fs::rename(part, &want).map_err(io_err(&want, "cannot renumber a staged part"))?;
            }
        }
        if moved.is_empty() {
            return Ok(tally);
        }
        self.append_duplicates(&moved, taken, out)?;
        rewrite_segment(segment, taken)?;
        tally.rows = moved.len() as u64;
        Ok(tally)
    }

    /// Rewrites one staged posts part without the rows of `taken` (pushed to `moved`); rows kept.
    fn filter_posts(
        &self,
        part: &Path,
        taken: &HashMap<String, String>,
        out: &OutputConfig,
        moved: &mut Vec<DuplicateRow>,
        tally: &mut Moved,
    ) -> Result<u64, CommitError> {
        let bad = parquet_err(part);
        let file = fs::File::open(part).map_err(io_err(part, "cannot open a staged file"))?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(file).map_err(&bad)?.build().map_err(&bad)?;
        let tmp = beside(part);
        let props = properties(out, Table::Posts).map_err(&bad)?;
        let mut w = TableWriter::create(&tmp, Table::Posts.schema(), props)?;
        let mut any_moved = false;
        for batch in reader {
            let batch = batch.map_err(|e| bad(e.into()))?;
            let col = |name: &str| batch.column_by_name(name).expect("a posts column");
            let (hash, file, offset) =
                (col("hash").as_string::<i32>(), col("source_file").as_string::<i32>(), col("source_offset"));
            let offset = offset.as_primitive::<Int64Type>();
            let issues = col("issues").as_list::<i32>();
            let keep: BooleanArray = (0..batch.num_rows())
                .map(|i| {
                    let first = taken.get(hash.value(i));
                    if let Some(first) = first {
                        if issues.is_valid(i) && !issues.value(i).is_empty() {
                            tally.with_issues += 1;
                            let codes = issues.value(i);
                            for code in codes.as_string::<i32>().iter().flatten() {
                                *tally.issues_by_code.entry(code.to_string()).or_default() += 1;
                            }
                        }
                        moved.push(DuplicateRow {
                            hash: hash.value(i).to_string(),
                            source_file: if file.is_valid(i) { file.value(i).to_string() } else { String::new() },
                            source_offset: offset.value(i) as u64,
                            first_run_id: first.clone(),
                        });
                    }
                    Some(first.is_none())
                })
                .collect();
            any_moved |= keep.false_count() > 0;
            let kept = filter_record_batch(&batch, &keep).map_err(|e| bad(e.into()))?;
            if kept.num_rows() > 0 {
                w.write(&kept)?;
            }
        }
        let rows = w.close()?.rows;
        if any_moved {
            fs::rename(&tmp, part).map_err(io_err(part, "cannot replace a staged file"))?;
        } else {
            fs::remove_file(&tmp).map_err(io_err(&tmp, "cannot remove a staged file"))?;
        }
        Ok(rows)
    }

    /// Rewrites the staged duplicates file with `rows` after the ones it holds; a row it holds
    /// that named this run as the first of a hash now taken by another names that run instead.
    fn append_duplicates(
        &self,
        rows: &[DuplicateRow],
        taken: &HashMap<String, String>,
        out: &OutputConfig,
    ) -> Result<(), CommitError> {
        let path = self.staging.join(part_name(Table::Duplicates.name(), 0));
        let bad = parquet_err(&path);
        let tmp = beside(&path);
        let props = properties(out, Table::Duplicates).map_err(&bad)?;
        let mut w = TableWriter::create(&tmp, Table::Duplicates.schema(), props)?;
        if path.exists() {
            let file = fs::File::open(&path).map_err(io_err(&path, "cannot open a staged file"))?;
            for batch in ParquetRecordBatchReaderBuilder::try_new(file).map_err(&bad)?.build().map_err(&bad)? {
                let batch = batch.map_err(|e| bad(e.into()))?;
                w.write(&self.renamed_firsts(batch, taken).map_err(|e| bad(e.into()))?)?;
            }
        }
        let batch = duplicates_batch(&self.run_id, rows).map_err(|e| bad(e.into()))?;
        w.write(&batch)?;
        w.close()?;
        fs::rename(&tmp, &path).map_err(io_err(&path, "cannot replace a staged file"))?;
        Ok(())
    }
}

impl RunCommit {
    /// `batch` of the staged duplicates with `first_run_id` moved from this run to the run that
    /// took the hash first, where `taken` says one did.
    fn renamed_firsts(
        &self,
        batch: arrow::record_batch::RecordBatch,
        taken: &HashMap<String, String>,
    ) -> Result<arrow::record_batch::RecordBatch, arrow::error::ArrowError> {
        let schema = batch.schema();
        let (Ok(h), Ok(f)) = (schema.index_of("hash"), schema.index_of("first_run_id")) else { return Ok(batch) };
        let (hash, first) = (batch.column(h).as_string::<i32>(), batch.column(f).as_string::<i32>());
        let renamed: arrow::array::StringArray = (0..batch.num_rows())
            .map(|i| {
                if first.is_null(i) {
                    return None;
                }
                let mine = first.value(i) == self.run_id;
                Some(match taken.get(hash.value(i)) {
                    Some(winner) if mine => winner.as_str(),
                    _ => first.value(i),
                })
            })
            .collect();
        let mut columns = batch.columns().to_vec();
        columns[f] = std::sync::Arc::new(renamed);
        arrow::record_batch::RecordBatch::try_new(schema, columns)
    }
}

/// Rewrites the run's staged segment without the hashes of `taken` (removed when none is left).
fn rewrite_segment(segment: &Path, taken: &HashMap<String, String>) -> Result<(), IndexError> {
    let seg = Segment::open(segment, false)?;
    let tmp = segment.with_extension("recheck.tmp");
    let mut w = SegmentWriter::create(&tmp, seg.records().saturating_sub(taken.len() as u64))?;
    let mut left = 0u64;
    for r in seg.records_iter() {
        let (key, run) = r?;
        if !taken.contains_key(&key.to_hex()) {
            w.push(&key, run)?;
            left += 1;
        }
    }
    w.finish()?;
    drop(seg);
    let done = if left == 0 {
        fs::remove_file(&tmp).and_then(|()| fs::remove_file(segment))
    } else {
        fs::rename(&tmp, segment)
    };
    done.map_err(|e| IndexError { path: segment.to_path_buf(), what: format!("cannot replace the run's segment: {e}") })
}
