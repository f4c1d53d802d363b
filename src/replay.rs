//! `quarry rejects replay`: the current pipeline over the raw text of stored rejects, as a run.
//!
//! The replay's pages are the reject rows of the finished runs, in run order and, within a run's
//! file, in stored order. Each row's `raw` goes through the splitter (so a page whose trailer is
//! missing stays truncated, and a row that an old, wrong trailer pattern made of many pages gives
//! them all back, each at its own offset in the original file) and through the same extraction as
//! an import. A row is *left in place* when it is an `unreadable_file` or `page_too_large` reject
//! (its raw is not the whole page), when its raw holds no page, or when it gives one page that fails
//! exactly as before (same reason and detail). Every other row is *replayed*: it leaves its old
//! rejects file, and its pages become posts (deduplicated like any page), duplicates, or rejects of
//! the replay run, each with the original `source_file` and its own `source_offset`.
//!
//! The old rejects files that lose rows are rewritten without them (or removed when nothing is
//! left); `RunCommit::commit` swaps the new versions in once the replay's `runs` row exists.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use arrow::array::{Array, BinaryArray, BooleanArray, Int64Array, StringArray};
use arrow::compute::filter_record_batch;
use arrow::record_batch::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use rayon::prelude::*;

use crate::extract::record::{Record, Reject, RejectReason};
use crate::extract::split::{PageSplitter, RawPage, DEFAULT_MAX_PAGE_BYTES};
use crate::import::{extract_raw, file_counts, now_micros, runs_row, RunStart, RunState, RunSummary};
use crate::load::schema;
use crate::load::warehouse::{Warehouse, REJECTS};
use crate::pipeline::Pipeline;
use crate::progress::Progress;

/// Reject rows read at once (raw pages can be large).
const BATCH_ROWS: usize = 256;
/// The `inputs` of a replay's `runs` row.
pub const REPLAY_INPUT: &str = "rejects";

/// Settings of one replay.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// The pipeline file (for the `runs` row).
    pub pipeline_path: PathBuf,
    /// The warehouse folder.
    pub warehouse: PathBuf,
    /// Worker threads for extraction (0 = one per core).
    pub threads: usize,
    /// Wait for the warehouse lock instead of failing.
    pub wait: bool,
    /// Largest page held in memory.
    pub max_page_bytes: usize,
}

impl ReplayOptions {
    /// Options with defaults for everything but the paths.
    pub fn new(pipeline_path: PathBuf, warehouse: PathBuf) -> Self {
        ReplayOptions { pipeline_path, warehouse, threads: 0, wait: false, max_page_bytes: DEFAULT_MAX_PAGE_BYTES }
    }
}

/// One stored reject row.
struct Row {
    file: String,
    offset: u64,
    reason: String,
    detail: String,
    raw: Vec<u8>,
}

/// Reject reasons whose raw text is not a whole page: a replay leaves them as they are.
fn kept_as_is(reason: &str) -> bool {
    reason == RejectReason::UnreadableFile.code() || reason == RejectReason::PageTooLarge.code()
}

/// The pages of a stored raw text, with offsets in the original file.
fn split_raw(p: &Pipeline, row: &Row, max_page: usize) -> std::io::Result<Vec<RawPage>> {
    let mut pages = Vec::new();
    for pg in PageSplitter::with_max_page(&row.raw[..], &p.trailer, max_page) {
        let mut pg = pg?;
        pg.offset += row.offset;
        pages.push(pg);
    }
    Ok(pages)
}

fn column<'a, T: 'static>(b: &'a RecordBatch, name: &str, path: &Path) -> Result<&'a T> {
    b.column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .with_context(|| format!("{}: column {name} is missing or of another type", path.display()))
}

fn rows_of(b: &RecordBatch, path: &Path) -> Result<Vec<Row>> {
    let file = column::<StringArray>(b, "source_file", path)?;
    let offset = column::<Int64Array>(b, "source_offset", path)?;
    let reason = column::<StringArray>(b, "reason", path)?;
    let detail = column::<StringArray>(b, "detail", path)?;
    let raw = column::<BinaryArray>(b, "raw", path)?;
    Ok((0..b.num_rows())
        .map(|i| Row {
            file: file.value(i).to_string(),
            offset: offset.value(i).max(0) as u64,
            reason: reason.value(i).to_string(),
            detail: if detail.is_valid(i) { detail.value(i).to_string() } else { String::new() },
            raw: raw.value(i).to_vec(),
        })
        .collect())
}

/// Runs the pipeline over the stored rejects of a warehouse, as a new run.
pub fn replay(p: &Pipeline, opts: &ReplayOptions, progress: &Progress) -> Result<RunSummary> {
    let clock = Instant::now();
    Warehouse::open(&opts.warehouse)?;
    let mut start = RunStart::begin(&opts.warehouse, opts.wait)?;
    let mut st = RunState::new(p, &mut start, crate::import::effective_threads(opts.threads))?;
    st.summary().replay = true;
    let out = &p.output;
    let pool = st.pool();

    let files: Vec<(String, PathBuf)> =
        start.wh.table_files(REJECTS)?.into_iter().filter(|(id, _)| start.finished.contains(id)).collect();
    let size = |path: &Path| std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    progress.start(&start.run_id, files.iter().map(|(_, path)| size(path)).sum());
    let mut replaced: Vec<(String, u64)> = Vec::new();
    for (old_id, path) in &files {
        let name = path.display().to_string();
        progress.file(&name, size(path));
        let file_clock = Instant::now();
        let before = st.summary().clone();
        let bad = |e: parquet::errors::ParquetError| anyhow::Error::new(e).context(format!("{name}: cannot read"));
        let reader = ParquetRecordBatchReaderBuilder::try_new(
            std::fs::File::open(path).with_context(|| format!("{name}: cannot open"))?,
        )
        .map_err(bad)?
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(bad)?;
        let mut new_version = start.commit.replacement_writer(old_id, out)?;
        let mut taken = 0u64;
        let mut raw_bytes = 0u64;
        for batch in reader {
            let batch = batch.with_context(|| format!("{name}: cannot read"))?;
            let rows = rows_of(&batch, path)?;
            // Split every replayable row, then extract all their pages in parallel, in order.
            let mut split: Vec<Option<Vec<RawPage>>> = Vec::with_capacity(rows.len());
            for row in &rows {
                split.push(if kept_as_is(&row.reason) {
                    None
                } else {
                    Some(
                        split_raw(p, row, opts.max_page_bytes)
                            .with_context(|| format!("{name}: splitting a raw page"))?,
                    )
                });
            }
            let max = opts.max_page_bytes;
            let results: Vec<Vec<Result<Record, Reject>>> = pool.install(|| {
                split
                    .par_iter()
                    // Owned: the records go on after their pages move into the take below.
                    .map(|pages| {
                        pages.iter().flatten().map(|pg| extract_raw(p, pg, max).map(Record::into_owned)).collect()
                    })
                    .collect()
            });
            let mut keep = Vec::with_capacity(rows.len());
            // The pages taken from this batch of rows, taken together: one posts batch, not one a row.
            let (mut files, mut taken_pages, mut taken_results) = (Vec::new(), Vec::new(), Vec::new());
            for ((row, pages), results) in rows.into_iter().zip(split).zip(results) {
                let pages = pages.unwrap_or_default();
                let same = match (pages.len(), results.first()) {
                    (0, _) => true,
                    (1, Some(Err(r))) => r.reason.code() == row.reason && r.detail == row.detail,
                    _ => false,
                };
                keep.push(same);
                if same {
                    st.summary().files_skipped += 1;
                    continue;
                }
                taken += 1;
                raw_bytes += row.raw.len() as u64;
                st.summary().files += 1;
                files.extend(std::iter::repeat_n(row.file, pages.len()));
                taken_pages.extend(pages);
                taken_results.extend(results);
            }
            let files: Vec<&str> = files.iter().map(String::as_str).collect();
            st.take(&files, taken_pages, taken_results)?;
            let kept = filter_record_batch(&batch, &BooleanArray::from(keep))?;
            if kept.num_rows() > 0 {
                new_version.write(&RecordBatch::try_new(schema::rejects(), kept.columns().to_vec())?)?;
            }
            progress.advance(0, st.summary().pages);
        }
        let kept_rows = new_version.close()?.rows;
        if taken == 0 {
            start.commit.discard_replacement(old_id)?;
        } else {
            replaced.push((old_id.clone(), kept_rows));
        }
        st.summary().bytes_read += raw_bytes;
        progress.advance(size(path), st.summary().pages);
        progress.file_done(&name, &file_counts(&before, st.summary(), raw_bytes, file_clock));
    }
    let (mut summary, rows, hash_list) = st.finish()?;
    progress.finish();
    summary.seconds = clock.elapsed().as_secs_f64();
    let inputs = [REPLAY_INPUT.to_string()];
    let runs_row = runs_row(&summary, &p.name, &opts.pipeline_path, &inputs, start.started, now_micros())?;
    start.commit.commit(rows, &[], hash_list.as_deref(), &runs_row, out, &replaced)?;
    drop(start.lock);
    Ok(summary)
}
