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
//! left); the commit swaps the new versions in once the replay's `runs` row exists.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{Array, AsArray, BooleanArray};
use arrow::compute::filter_record_batch;
use arrow::datatypes::Int64Type;
use arrow::record_batch::RecordBatch;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};

use super::chunk::{Chunk, ChunkOutput, Outcome, Piece};
use super::extraction::Taken;
use super::progress::Progress;
use super::summary::{file_counts, RunSummary};
use super::{Run, RunOptions};
use crate::contract::Table;
use crate::error::{Error, Result};
use crate::extract::record::RejectReason;
use crate::extract::split::{PageSplitter, RawPage};
use crate::load::parquet::TableWriter;
use crate::load::warehouse::{TableFile, Warehouse};
use crate::pipeline::Pipeline;

/// Reject rows read at once (raw pages can be large): one chunk of the extractor.
const BATCH_ROWS: usize = 256;
/// The `inputs` of a replay's `runs` row.
pub const REPLAY_INPUT: &str = "rejects";

/// What a chunk of a replay carries besides its pages: the reject rows they came from.
struct Rows {
    /// The stored rows, as read.
    batch: RecordBatch,
    /// Per row: how many pages its raw gave (`None`: left as it is without a look), its reason and
    /// detail, and its raw bytes.
    rows: Vec<RowPages>,
}

struct RowPages {
    pages: Option<usize>,
    reason: String,
    detail: String,
    raw_bytes: u64,
}

/// Reject reasons whose raw text is not a whole page: a replay leaves them as they are.
fn kept_as_is(reason: &str) -> bool {
    reason == RejectReason::UnreadableFile.code() || reason == RejectReason::PageTooLarge.code()
}

/// Runs the pipeline over the stored rejects of the warehouse of `opts`, as a new run.
pub fn replay(p: &Pipeline, opts: &RunOptions, progress: &Progress) -> Result<RunSummary> {
    let clock = Instant::now();
    Warehouse::open(&opts.warehouse)?;
    let mut run = Run::begin(p, opts, clock, true)?;
    run.router.summary.replay = true;
    let files: Vec<TableFile> = run
        .session
        .wh
        .table_files(Table::Rejects)?
        .into_iter()
        .filter(|f| run.session.finished.contains(&f.run))
        .collect();
    progress.start(&run.session.run_id, files.iter().map(|f| f.size).sum());
    let mut replaced: Vec<(String, u64)> = Vec::new();
    for f in &files {
        let (old_id, size) = (&f.run, f.size);
        let name = run.session.wh.file_shown(Table::Rejects, &f.rel);
        let path = run.session.wh.local_copy(Table::Rejects, f)?;
        progress.file(&name, size);
        let file_clock = Instant::now();
        let before = run.router.summary.clone();
        let mut new_version = run.session.commit.replacement_writer(old_id, &p.output)?;
        let (taken, raw_bytes) = replay_file(p, &mut run, &path, &name, &mut new_version, progress)?;
        let kept_rows = new_version.close()?.rows;
        if taken == 0 {
            run.session.commit.discard_replacement(old_id)?;
        } else {
            replaced.push((old_id.clone(), kept_rows));
        }
        run.router.summary.bytes_read += raw_bytes;
        progress.advance(size, run.router.summary.pages);
        progress.file_done(&name, &file_counts(&before, &run.router.summary, raw_bytes, file_clock));
    }
    run.finish(&[REPLAY_INPUT.to_string()], &[], &replaced, progress)
}

/// Replays the rows of one rejects file: the rows it leaves go to `kept` (its new version); returns
/// the rows taken out and their raw bytes.
fn replay_file(
    p: &Pipeline,
    run: &mut Run,
    path: &Path,
    name: &str,
    kept: &mut TableWriter,
    progress: &Progress,
) -> Result<(u64, u64)> {
    let name = name.to_string();
    let bad = |e: parquet::errors::ParquetError| Error::stage(format!("{name}: cannot read"))(e);
    let file = File::open(path).map_err(Error::io(format!("{name}: cannot open")))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(bad)?
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(bad)?;
    let source = RejectChunks { p, reader, name: name.clone(), max_page: run.opts.max_page_bytes };
    let Run { router, extractor, .. } = run;
    let (mut taken, mut raw_bytes) = (0u64, 0u64);
    extractor.run(source, "reader", &mut |piece| {
        let (chunk, out) = match piece {
            Taken::Chunk(chunk, out) => (chunk, out),
            Taken::Event(e) => return Err(e),
        };
        let (keep, pages) = sort_rows(chunk, out);
        for (row, kept) in pages.rows.iter().zip(&keep) {
            if *kept {
                router.summary.files_skipped += 1;
            } else {
                taken += 1;
                raw_bytes += row.raw_bytes;
                router.summary.files += 1;
            }
        }
        router.take_chunk(&pages.files, pages.pages, pages.out)?;
        let left = filter_record_batch(&pages.batch, &BooleanArray::from(keep))
            .map_err(Error::stage(format!("{name}: filtering reject rows")))?;
        if left.num_rows() > 0 {
            let left = RecordBatch::try_new(Table::Rejects.schema(), left.columns().to_vec())
                .map_err(Error::stage(format!("{name}: not a rejects file")))?;
            kept.write(&left)?;
        }
        progress.advance(0, router.summary.pages);
        Ok(())
    })?;
    Ok((taken, raw_bytes))
}

/// A chunk of a replay once its rows are sorted: the pages to take (with their files and outcomes)
/// and the rows they came from.
struct TakenPages {
    pages: Vec<RawPage>,
    files: Vec<Arc<str>>,
    out: ChunkOutput,
    batch: RecordBatch,
    rows: Vec<RowPages>,
}

/// Which rows of a chunk stay in place (`true`) and the pages of the others. A row stays when it was
/// not split, gave no page, or gave one page that fails exactly as before; such a page is a reject,
/// so dropping it leaves the chunk's posts batch as it is.
fn sort_rows(chunk: Chunk<Rows>, out: ChunkOutput) -> (Vec<bool>, TakenPages) {
    let Chunk { pages, files, tag: Rows { batch, rows } } = chunk;
    let mut keep = Vec::with_capacity(rows.len());
    let mut kept_pages = vec![false; pages.len()];
    let mut at = 0;
    for row in &rows {
        let n = row.pages.unwrap_or(0);
        let same = match (row.pages, out.outcomes.get(at)) {
            (None | Some(0), _) => true,
            (Some(1), Some(Outcome::Reject(r))) => r.reason.code() == row.reason && r.detail == row.detail,
            _ => false,
        };
        if same && n == 1 {
            kept_pages[at] = true;
        }
        keep.push(same);
        at += n;
    }
    let mut taken = TakenPages {
        pages: Vec::with_capacity(pages.len()),
        files: Vec::with_capacity(pages.len()),
        out: ChunkOutput { outcomes: Vec::with_capacity(pages.len()), posts: out.posts },
        batch,
        rows,
    };
    for (((pg, file), outcome), kept) in pages.into_iter().zip(files).zip(out.outcomes).zip(kept_pages) {
        if !kept {
            taken.pages.push(pg);
            taken.files.push(file);
            taken.out.outcomes.push(outcome);
        }
    }
    (keep, taken)
}

/// The reject rows of one rejects file as chunks: each row's raw split into pages at offsets of the
/// original file; a row left as it is gives none.
struct RejectChunks<'p> {
    p: &'p Pipeline,
    reader: ParquetRecordBatchReader,
    name: String,
    max_page: usize,
}

impl Iterator for RejectChunks<'_> {
    type Item = Piece<Rows, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let batch = match self.reader.next()? {
            Ok(b) => b,
            Err(e) => return Some(Piece::Event(Error::stage(format!("{}: cannot read", self.name))(e))),
        };
        Some(match self.chunk(batch) {
            Ok(chunk) => Piece::Chunk(chunk),
            Err(e) => Piece::Event(e),
        })
    }
}

impl RejectChunks<'_> {
    fn chunk(&self, batch: RecordBatch) -> Result<Chunk<Rows>> {
        let column = |name: &str| {
            batch.column_by_name(name).ok_or_else(|| Error::Stage {
                what: format!("{}: not a rejects file", self.name),
                source: format!("no column {name}").into(),
            })
        };
        let wrong = |name: &str| Error::Stage {
            what: format!("{}: not a rejects file", self.name),
            source: format!("column {name} is of another type").into(),
        };
        let file = column("source_file")?.as_string_opt::<i32>().ok_or_else(|| wrong("source_file"))?;
        let offset = column("source_offset")?.as_primitive_opt::<Int64Type>().ok_or_else(|| wrong("source_offset"))?;
        let reason = column("reason")?.as_string_opt::<i32>().ok_or_else(|| wrong("reason"))?;
        let detail = column("detail")?.as_string_opt::<i32>().ok_or_else(|| wrong("detail"))?;
        let raw = column("raw")?.as_binary_opt::<i32>().ok_or_else(|| wrong("raw"))?;
        let (mut pages, mut files, mut rows) = (Vec::new(), Vec::new(), Vec::with_capacity(batch.num_rows()));
        for i in 0..batch.num_rows() {
            let reason = reason.value(i).to_string();
            let split =
                if kept_as_is(&reason) { None } else { Some(self.split(raw.value(i), offset.value(i).max(0) as u64)?) };
            let n = split.as_ref().map(Vec::len);
            if let Some(split) = split {
                let source: Arc<str> = Arc::from(file.value(i));
                files.extend(std::iter::repeat_n(source, split.len()));
                pages.extend(split);
            }
            let detail = if detail.is_valid(i) { detail.value(i).to_string() } else { String::new() };
            rows.push(RowPages { pages: n, reason, detail, raw_bytes: raw.value(i).len() as u64 });
        }
        Ok(Chunk { pages, files, tag: Rows { batch, rows } })
    }

    /// The pages of a stored raw text, at their offsets in the original file.
    fn split(&self, raw: &[u8], offset: u64) -> Result<Vec<RawPage>> {
        let mut pages = Vec::new();
        for pg in PageSplitter::with_max_page(raw, &self.p.trailer, self.max_page) {
            let mut pg = pg.map_err(Error::io(format!("{}: splitting a raw page", self.name)))?;
            pg.offset += offset;
            pages.push(pg);
        }
        Ok(pages)
    }
}
