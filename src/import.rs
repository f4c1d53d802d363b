//! `quarry import`: discover → read → split → extract → transform → load → commit.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use arrow::array::BooleanArray;
use arrow::array::{ArrayRef, Int64Array, ListBuilder, StringArray, StringBuilder, TimestampMicrosecondArray};
use arrow::compute::{concat_batches, filter_record_batch};
use arrow::record_batch::RecordBatch;

use crate::extract::batch::{self, DuplicateRow, RejectRow};
use crate::extract::page;
use crate::extract::read::{self, InputFile};
use crate::extract::record::{Cell, Record, Reject, RejectReason};
use crate::extract::split::{PageSplitter, RawPage, DEFAULT_MAX_PAGE_BYTES};
use crate::load::commit::{RunCommit, RunLock};
use crate::load::parquet::TableWriter;
use crate::load::schema;
use crate::load::warehouse::{Warehouse, DUPLICATES, POSTS, REJECTS};
use crate::pipeline::Pipeline;
use crate::progress::{FileCounts, Progress};
use crate::transform::dedupe::{HashIndex, PackedHash, Seen};
use crate::transform::derive::{derive, DeriveInputs};

/// Pages extracted in parallel at once (bounded by bytes too).
const CHUNK_PAGES: usize = 512;
const CHUNK_BYTES: usize = 4 << 20;
/// Buffered reject bytes before they are written out.
const REJECT_FLUSH_BYTES: usize = 16 << 20;

/// Settings of one import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The pipeline file (for the `runs` row).
    pub pipeline_path: PathBuf,
    /// The warehouse folder.
    pub output: PathBuf,
    /// Files, folders or `-`.
    pub inputs: Vec<String>,
    /// Worker threads for extraction (0 = one per core).
    pub threads: usize,
    /// Wait for the warehouse lock instead of failing.
    pub wait: bool,
    /// Largest page held in memory.
    pub max_page_bytes: usize,
}

impl ImportOptions {
    /// Options with defaults for everything but the paths.
    pub fn new(pipeline_path: PathBuf, output: PathBuf, inputs: Vec<String>) -> Self {
        ImportOptions { pipeline_path, output, inputs, threads: 0, wait: false, max_page_bytes: DEFAULT_MAX_PAGE_BYTES }
    }
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    pub run_id: String,
    pub files: u64,
    pub files_skipped: u64,
    pub bad_files: Vec<String>,
    pub bytes_read: u64,
    pub pages: u64,
    pub imported: u64,
    pub duplicates: u64,
    pub rejected: u64,
    pub rejected_by_reason: BTreeMap<&'static str, u64>,
    pub with_issues: u64,
    pub issues_by_code: BTreeMap<String, u64>,
    pub cleaned_up: usize,
    /// Rejects files whose swap a killed replay had left pending, finished by this run's clean-up.
    pub swaps_completed: usize,
    pub seconds: f64,
    /// A rejects replay: `files` counts the reject rows it took out of `rejects`, `files_skipped`
    /// those it left there (they fail the same way again), `bytes_read` the raw bytes replayed.
    pub replay: bool,
}

impl RunSummary {
    /// Decompressed dump megabytes per second.
    pub fn mb_per_s(&self) -> f64 {
        if self.seconds > 0.0 {
            self.bytes_read as f64 / 1e6 / self.seconds
        } else {
            0.0
        }
    }

    /// Share of the run's pages that were rejected (0 when it read none).
    pub fn reject_ratio(&self) -> f64 {
        if self.pages == 0 {
            0.0
        } else {
            self.rejected as f64 / self.pages as f64
        }
    }

    /// The run report written by `--report-json`.
    pub fn report(&self, warehouse: &std::path::Path) -> serde_json::Value {
        serde_json::json!({
            "run_id": self.run_id,
            "warehouse": warehouse.display().to_string(),
            "status": self.status(),
            "files": self.files,
            "files_skipped": self.files_skipped,
            "bad_files": self.bad_files,
            "bytes_read": self.bytes_read,
            "pages": self.pages,
            "imported": self.imported,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "rejected_by_reason": self.rejected_by_reason,
            "reject_ratio": self.reject_ratio(),
            "records_with_issues": self.with_issues,
            "issues_by_code": self.issues_by_code,
            "cleaned_up_files": self.cleaned_up,
            "seconds": self.seconds,
            "mb_per_s": self.mb_per_s(),
        })
    }

    /// The `runs.status` value.
    pub fn status(&self) -> &'static str {
        if self.replay {
            "replay"
        } else if self.bad_files.is_empty() {
            "ok"
        } else {
            "bad_input"
        }
    }

    /// The summary lines printed at the end of a run.
    pub fn render(&self) -> String {
        let mut s = if self.replay {
            let mut s = format!("quarry rejects replay: run {}\n", self.run_id);
            s += &format!(
                "  rejects    {} rows replayed, {} left as they were (they fail the same way again)\n",
                self.files, self.files_skipped
            );
            s
        } else {
            let mut s = format!("quarry import: run {}\n", self.run_id);
            s += &format!("  files      {} read, {} skipped (already imported)\n", self.files, self.files_skipped);
            s
        };
        s += &format!("  pages      {}\n", self.pages);
        s += &format!("  imported   {}\n", self.imported);
        s += &format!("  duplicates {}\n", self.duplicates);
        s += &format!("  rejected   {}", self.rejected);
        if !self.rejected_by_reason.is_empty() {
            let parts: Vec<String> = self.rejected_by_reason.iter().map(|(r, n)| format!("{r} {n}")).collect();
            s += &format!(" ({})", parts.join(", "));
        }
        s += "\n";
        s += &format!("  issues     {} records with issues", self.with_issues);
        if !self.issues_by_code.is_empty() {
            let parts: Vec<String> = self.issues_by_code.iter().map(|(r, n)| format!("{r} {n}")).collect();
            s += &format!(" ({})", parts.join(", "));
        }
        s += "\n";
        s += &format!(
            "  read       {:.1} MB in {:.2} s, {:.1} MB/s\n",
            self.bytes_read as f64 / 1e6,
            self.seconds,
            self.mb_per_s()
        );
        if self.replay && self.files == 0 {
            s += "  nothing to replay: every stored reject fails the same way with this pipeline\n";
        } else if !self.replay && self.files == 0 && self.files_skipped > 0 {
            s += "  nothing new: every input was imported by an earlier run\n";
        }
        if self.cleaned_up > 0 {
            s += &format!("  cleaned up {} leftover files of a crashed run\n", self.cleaned_up);
        }
        if self.swaps_completed > 0 {
            s += &format!(
                "  finished   the swap of {} rejects files a killed replay had committed\n",
                self.swaps_completed
            );
        }
        for f in &self.bad_files {
            s += &format!("  BAD INPUT  {f}\n");
        }
        s
    }
}

/// Microseconds since the Unix epoch, now.
pub fn now_micros() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}

fn run_id_of(micros: i64) -> String {
    let days = micros.div_euclid(86_400_000_000);
    let (y, m, d) = crate::extract::value::civil_from_days(days);
    let rem = micros.rem_euclid(86_400_000_000);
    let (h, mi, s, us) = (rem / 3_600_000_000, rem / 60_000_000 % 60, rem / 1_000_000 % 60, rem % 1_000_000);
    format!("{y:04}{m:02}{d:02}T{h:02}{mi:02}{s:02}.{us:06}Z")
}

fn date_of(micros: i64) -> String {
    let (y, m, d) = crate::extract::value::civil_from_days(micros.div_euclid(86_400_000_000));
    format!("{y:04}-{m:02}-{d:02}")
}

/// What every run starts with: the warehouse locked and cleaned up, the hash of every post of the
/// finished runs, its run id and staging folder.
pub(crate) struct RunStart {
    pub wh: Warehouse,
    pub lock: RunLock,
    pub finished: BTreeSet<String>,
    pub cleaned: crate::load::warehouse::Cleanup,
    pub index: HashIndex,
    pub started: i64,
    pub run_id: String,
    pub commit: RunCommit,
}

impl RunStart {
    /// Locks the warehouse, cleans up after a crashed run, loads the hashes, picks the run id.
    pub fn begin(output: &Path, wait: bool) -> Result<RunStart> {
        let wh = Warehouse::create(output)?;
        let lock = RunLock::acquire(&wh, wait)?;
        let finished = wh.finished_runs()?;
        let cleaned = wh.cleanup(&finished)?;
        let mut index = HashIndex::new();
        wh.load_hashes(&finished, &mut index)?;
        let started = now_micros();
        let mut run_id = run_id_of(started);
        while finished.contains(&run_id) {
            run_id.push('x');
        }
        let commit = RunCommit::begin(&wh, &run_id, &date_of(started))?;
        Ok(RunStart { wh, lock, finished, cleaned, index, started, run_id, commit })
    }
}

/// Builds, derives and writes posts batches: on a thread of its own, so extraction goes on
/// meanwhile, or inline when the run has one thread. Batches arrive in order over a bounded channel;
/// the first error stops the thread and is returned by the next `send` or by `finish`.
enum PostsSink {
    Inline { p: Box<Pipeline>, writer: Box<TableWriter> },
    Thread { tx: Option<SyncSender<PostsParts>>, handle: Option<std::thread::JoinHandle<Result<TableWriter>>> },
}

/// Joins the parts into one batch, derives its metrics and writes it.
fn write_posts(p: &Pipeline, writer: &mut TableWriter, parts: PostsParts) -> Result<()> {
    let PostsParts { batches, entries_valid, ids, .. } = parts;
    let b = concat_batches(&schema::posts(), &batches).context("joining posts batches")?;
    drop(batches);
    let b = derive(p, &b, &DeriveInputs { entries_valid: &entries_valid, ids: &ids }).context("deriving metrics")?;
    Ok(writer.write(&b)?)
}

impl PostsSink {
    fn new(p: &Pipeline, mut writer: TableWriter, own_thread: bool) -> PostsSink {
        let p = p.clone();
        if !own_thread {
            return PostsSink::Inline { p: Box::new(p), writer: Box::new(writer) };
        }
        let (tx, rx) = std::sync::mpsc::sync_channel::<PostsParts>(1);
        let handle = std::thread::Builder::new()
            .name("quarry-writer".into())
            .spawn(move || -> Result<TableWriter> {
                for parts in rx {
                    write_posts(&p, &mut writer, parts)?;
                }
                Ok(writer)
            })
            .expect("starting the posts writer thread");
        PostsSink::Thread { tx: Some(tx), handle: Some(handle) }
    }

    fn send(&mut self, parts: PostsParts) -> Result<()> {
        match self {
            PostsSink::Inline { p, writer } => write_posts(p, writer, parts),
            PostsSink::Thread { tx, handle } => {
                if tx.as_ref().expect("sink open until finish").send(parts).is_err() {
                    *tx = None;
                    return Err(join(handle).err().unwrap_or_else(|| anyhow::anyhow!("the posts writer stopped")));
                }
                Ok(())
            }
        }
    }

    fn finish(self) -> Result<TableWriter> {
        match self {
            PostsSink::Inline { writer, .. } => Ok(*writer),
            PostsSink::Thread { tx, mut handle } => {
                drop(tx);
                join(&mut handle)
            }
        }
    }
}

fn join(handle: &mut Option<std::thread::JoinHandle<Result<TableWriter>>>) -> Result<TableWriter> {
    match handle.take().expect("joined once").join() {
        Ok(r) => r,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Threads a run uses: `--threads`, or one per core when 0.
pub fn effective_threads(requested: usize) -> usize {
    if requested > 0 {
        requested
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }
}

/// Records → a posts batch with its derived columns.
pub fn posts_batch(p: &Pipeline, records: Vec<Record>) -> Result<RecordBatch> {
    let entries_valid: Vec<u32> = records.iter().map(|r| r.entries_valid).collect();
    let ids: Vec<Vec<Option<i64>>> = records.iter().map(|r| r.ids.clone()).collect();
    let rows: Vec<Vec<Cell>> = records.into_iter().map(|r| r.cells).collect();
    let b = batch::batch(&schema::posts(), &rows).context("building a posts batch")?;
    drop(rows);
    derive(p, &b, &DeriveInputs { entries_valid: &entries_valid, ids: &ids }).context("deriving metrics")
}

/// The rows of a run in progress, before they are written.
pub(crate) struct RunState<'p> {
    p: &'p Pipeline,
    run_id: String,
    run_idx: u32,
    started: i64,
    index: HashIndex,
    /// Post rows taken and not yet written: batches without the derived columns, and the
    /// derivation inputs of their rows in order.
    posts: PostsParts,
    rejects: Vec<RejectRow>,
    reject_bytes: usize,
    dups: Vec<DuplicateRow>,
    posts_w: PostsSink,
    pool: Arc<rayon::ThreadPool>,
    rejects_w: TableWriter,
    dups_w: TableWriter,
    summary: RunSummary,
}

impl<'p> RunState<'p> {
    /// Writers for the run's tables, and an empty summary; takes the hash index. With one thread the
    /// posts are written inline, otherwise on a thread of their own.
    pub fn new(p: &'p Pipeline, start: &mut RunStart, threads: usize) -> Result<RunState<'p>> {
        let pool = Arc::new(
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .thread_name(|i| format!("quarry-worker-{i}"))
                .build()
                .context("starting worker threads")?,
        );
        let mut index = std::mem::take(&mut start.index);
        let run_idx = index.run(&start.run_id);
        let out = &p.output;
        Ok(RunState {
            p,
            run_id: start.run_id.clone(),
            run_idx,
            started: start.started,
            index,
            posts: PostsParts::default(),
            rejects: Vec::new(),
            reject_bytes: 0,
            dups: Vec::new(),
            posts_w: PostsSink::new(p, start.commit.writer(POSTS, out)?, threads > 1),
            pool,
            rejects_w: start.commit.writer(REJECTS, out)?,
            dups_w: start.commit.writer(DUPLICATES, out)?,
            summary: RunSummary {
                run_id: start.run_id.clone(),
                cleaned_up: start.cleaned.removed.len(),
                swaps_completed: start.cleaned.completed.len(),
                ..Default::default()
            },
        })
    }

    /// The worker pool of the run (`threads` workers) that extracts pages.
    pub fn pool(&self) -> Arc<rayon::ThreadPool> {
        self.pool.clone()
    }

    /// The run's counts so far.
    pub fn summary(&mut self) -> &mut RunSummary {
        &mut self.summary
    }

    /// Writes what is buffered and closes the table files: the summary, the rows of posts,
    /// rejects and duplicates, and the run's sorted hashes (`None` if it cannot have a hash list).
    pub fn finish(mut self) -> Result<(RunSummary, [u64; 3], Option<Vec<PackedHash>>)> {
        self.flush_posts()?;
        self.flush_rejects()?;
        let RunState { posts_w, rejects_w, dups_w, summary, index, run_idx, .. } = self;
        let rows = [posts_w.finish()?.close()?.rows, rejects_w.close()?.rows, dups_w.close()?.rows];
        // Once the writers' buffers are free, so the list reuses their memory.
        let hashes = index.run_hashes(run_idx);
        Ok((summary, rows, hashes))
    }

    fn flush_posts(&mut self) -> Result<()> {
        if self.posts.rows == 0 {
            return Ok(());
        }
        self.posts_w.send(std::mem::take(&mut self.posts))
    }

    /// The run id and start time (the run columns of its post rows).
    pub fn run_columns(&self) -> RunColumns {
        RunColumns { run_id: self.run_id.clone(), started: self.started }
    }

    fn flush_rejects(&mut self) -> Result<()> {
        if !self.rejects.is_empty() {
            let b = batch::rejects_batch(&self.run_id, &self.rejects)?;
            // Free the rows' raw bytes before the encoder copies the batch's.
            self.rejects = Vec::new();
            self.reject_bytes = 0;
            self.rejects_w.write(&b)?;
        }
        if !self.dups.is_empty() {
            let b = batch::duplicates_batch(&self.run_id, &self.dups)?;
            self.dups_w.write(&b)?;
            self.dups.clear();
        }
        Ok(())
    }

    pub fn reject(&mut self, file: &str, offset: u64, rej: Reject, raw: Vec<u8>) -> Result<()> {
        self.summary.rejected += 1;
        *self.summary.rejected_by_reason.entry(rej.reason.code()).or_default() += 1;
        self.reject_bytes += raw.len();
        self.rejects.push(RejectRow {
            source_file: file.to_string(),
            source_offset: offset,
            reason: rej.reason.code(),
            detail: rej.detail,
            raw,
        });
        if self.reject_bytes >= REJECT_FLUSH_BYTES || self.rejects.len() >= self.p.output.batch_rows {
            self.flush_rejects()?;
        }
        Ok(())
    }

    /// Takes extracted pages in order (`files`: the source file of each): each becomes a post, a
    /// duplicate or a reject.
    pub fn take(&mut self, files: &[&str], pages: Vec<RawPage>, results: Vec<Result<Record, Reject>>) -> Result<()> {
        let out = chunk_output(self.p, files, &pages, results, &self.run_columns())?;
        self.take_chunk(files, pages, out)
    }

    /// Takes a chunk of pages in order (`files`: the source file of each), with what extraction
    /// made of them.
    pub fn take_chunk(&mut self, files: &[&str], pages: Vec<RawPage>, out: ChunkOutput) -> Result<()> {
        let mut keep = Vec::with_capacity(out.posts.as_ref().map_or(0, RecordBatch::num_rows));
        for ((pg, outcome), &file) in pages.into_iter().zip(out.outcomes).zip(files) {
            self.summary.pages += 1;
            let post = match outcome {
                Outcome::Reject(rej) => {
                    self.reject(file, pg.offset, rej, pg.bytes)?;
                    continue;
                }
                Outcome::Post(post) => post,
            };
            match self.index.check(&post.hash, self.run_idx) {
                Seen::Duplicate { first_run_id } => {
                    let first_run_id = first_run_id.to_string();
                    keep.push(false);
                    self.summary.duplicates += 1;
                    self.dups.push(DuplicateRow {
                        hash: post.hash,
                        source_file: file.to_string(),
                        source_offset: pg.offset,
                        first_run_id,
                    });
                    if self.dups.len() >= self.p.output.batch_rows {
                        self.flush_rejects()?;
                    }
                }
                Seen::New => {
                    keep.push(true);
                    self.summary.imported += 1;
                    if !post.issues.is_empty() {
                        self.summary.with_issues += 1;
                        for code in post.issues {
                            *self.summary.issues_by_code.entry(code).or_default() += 1;
                        }
                    }
                    self.posts.entries_valid.push(post.entries_valid);
                    self.posts.ids.push(post.ids);
                }
            }
        }
        if let Some(b) = out.posts {
            let b = if keep.iter().all(|k| *k) { b } else { filter_record_batch(&b, &BooleanArray::from(keep))? };
            if b.num_rows() > 0 {
                self.posts.rows += b.num_rows();
                self.posts.batches.push(b);
            }
        }
        if self.posts.rows >= self.p.output.batch_rows {
            self.flush_posts()?;
        }
        Ok(())
    }
}

/// The run columns every post row of a run gets.
#[derive(Debug, Clone)]
pub struct RunColumns {
    pub run_id: String,
    pub started: i64,
}

/// What became of one extracted page, for the run.
pub enum Outcome {
    /// The page cannot be imported.
    Reject(Reject),
    /// The page is a post row (the next row of the chunk's batch), unless its hash is taken.
    Post(PostMeta),
}

/// What the run needs of a post besides its row: its hash, issue codes and derivation inputs.
pub struct PostMeta {
    pub hash: String,
    pub issues: Vec<String>,
    pub entries_valid: u32,
    pub ids: Vec<Option<i64>>,
}

/// A chunk of pages after extraction: a result per page, in order, and the post rows as one
/// batch (before dedupe and without the derived columns). Built on the worker that extracted the
/// chunk, so the per-value allocations of its records are freed where they were made.
pub struct ChunkOutput {
    pub outcomes: Vec<Outcome>,
    pub posts: Option<RecordBatch>,
}

/// Post rows waiting to be written.
#[derive(Default)]
pub(crate) struct PostsParts {
    batches: Vec<RecordBatch>,
    rows: usize,
    entries_valid: Vec<u32>,
    ids: Vec<Vec<Option<i64>>>,
}

/// Turns extraction results into a chunk output: the records' run columns set (`files`: the source
/// file of each page), their cells made into one batch.
pub fn chunk_output(
    p: &Pipeline,
    files: &[&str],
    pages: &[RawPage],
    results: Vec<Result<Record, Reject>>,
    run: &RunColumns,
) -> Result<ChunkOutput> {
    let mut b = ChunkBuilder::new(p, run, pages.len(), &[])?;
    for ((pg, res), file) in pages.iter().zip(results).zip(files) {
        b.push(file, pg, res);
    }
    Ok(b.finish()?.0)
}

/// A chunk output built a page at a time: each record's cells go into the batch's columns as soon
/// as the page is extracted, and are freed while they are still in the cache.
struct ChunkBuilder<'a> {
    p: &'a Pipeline,
    run: &'a RunColumns,
    outcomes: Vec<Outcome>,
    rows: batch::RowsBuilder,
    /// The run id cell, and the source file cell of the last page (shared by its rows).
    run_id: Cell<'static>,
    file: Cell<'static>,
}

impl<'a> ChunkBuilder<'a> {
    /// For `pages` pages; `bytes`: the text per column of an earlier chunk of as many pages (or empty).
    fn new(p: &'a Pipeline, run: &'a RunColumns, pages: usize, bytes: &[usize]) -> Result<ChunkBuilder<'a>> {
        let rows = batch::RowsBuilder::new(schema::posts_ref(), pages, bytes).context("building a posts batch")?;
        let run_id = Cell::Text(run.run_id.clone().into());
        Ok(ChunkBuilder { p, run, outcomes: Vec::with_capacity(pages), rows, run_id, file: Cell::Null })
    }

    fn push(&mut self, file: &str, pg: &RawPage, res: Result<Record, Reject>) {
        let mut rec = match res {
            Err(rej) => return self.outcomes.push(Outcome::Reject(rej)),
            Ok(rec) => rec,
        };
        let c = &self.p.cols;
        if !matches!(&self.file, Cell::Text(f) if f == file) {
            self.file = Cell::Text(file.to_string().into());
        }
        rec.cells[c.source_offset] = Cell::Int(pg.offset as i64);
        rec.cells[c.ingested_at] = Cell::Int(self.run.started);
        self.rows.append_with(&rec.cells, &[(c.source_file, &self.file), (c.run_id, &self.run_id)]);
        let issues = match std::mem::take(&mut rec.cells[c.issues]) {
            Cell::List(codes) if rec.has_issues => codes.into_iter().map(Cow::into_owned).collect(),
            _ => Vec::new(),
        };
        self.outcomes.push(Outcome::Post(PostMeta {
            hash: rec.hash,
            issues,
            entries_valid: rec.entries_valid,
            ids: rec.ids,
        }));
    }

    /// The chunk output, and the text per column of its batch (to size the next chunk's).
    fn finish(self) -> Result<(ChunkOutput, Vec<usize>)> {
        let bytes = self.rows.text_bytes();
        let posts =
            if self.rows.is_empty() { None } else { Some(self.rows.finish().context("building a posts batch")?) };
        Ok((ChunkOutput { outcomes: self.outcomes, posts }, bytes))
    }
}

/// Extracts one split page (an oversized page is rejected without being parsed).
pub fn extract_raw<'a>(p: &Pipeline, pg: &'a RawPage, max_page: usize) -> Result<Record<'a>, Reject> {
    if let Some(len) = pg.oversize {
        return Err(Reject {
            reason: RejectReason::PageTooLarge,
            detail: format!("the page is {len} bytes; quarry holds at most {max_page} bytes of one page (raw keeps the first {max_page})"),
        });
    }
    page::extract(p, &pg.bytes, pg.complete)
}

/// Extracts a chunk of pages in order on the current thread, and makes its post rows a batch.
/// Chunks run in parallel (several in flight); within one, every record is made and freed by the
/// same thread, which keeps the allocator's work local.
fn extract_chunk(p: &Pipeline, pages: &[RawPage], max: usize, file: &str, run: &RunColumns) -> Result<ChunkOutput> {
    thread_local! {
        /// Text per posts column of this thread's last chunk with posts, and that chunk's page bytes.
        static LAST: std::cell::RefCell<(Vec<usize>, usize)> = const { std::cell::RefCell::new((Vec::new(), 0)) };
    }
    let raw: usize = pages.iter().map(|pg| pg.bytes.len()).sum();
    let bytes = LAST.with_borrow(|(last, last_raw)| column_hints(last, *last_raw, raw));
    // Its own pipeline copy: a regex's cache pool is fastest on its owner thread.
    let own = p.clone();
    let mut b = ChunkBuilder::new(&own, run, pages.len(), &bytes)?;
    for pg in pages {
        b.push(file, pg, extract_raw(&own, pg, max));
    }
    let (out, bytes) = b.finish()?;
    if out.posts.is_some() {
        LAST.set((bytes, raw));
    }
    Ok(out)
}

/// The text each posts column of a chunk of `raw` page bytes is expected to hold, from an earlier
/// chunk of `last_raw` bytes whose columns held `last`: scaled to the size and a little over, so
/// a column buffer is allocated once instead of by doubling. Never more than `raw` (a column holds
/// text of the pages; one that needs more grows), so a chunk of one huge page does not make the
/// next chunk reserve hundreds of times its size.
fn column_hints(last: &[usize], last_raw: usize, raw: usize) -> Vec<usize> {
    if last_raw == 0 {
        return Vec::new();
    }
    last.iter().map(|&b| ((b as u128 * raw as u128 * 9 / 8 / last_raw as u128) as usize).min(raw)).collect()
}

/// What the splitter thread hands to the extracting thread, in file order.
enum SplitMsg {
    /// The next pages of the file.
    Pages(Vec<RawPage>),
    /// Pages and what extraction made of them.
    Extracted(Vec<RawPage>, Result<ChunkOutput>),
    /// The stream failed at decompressed byte `at`; `partial` is the page it was in.
    Failed { error: io::Error, partial: Option<RawPage>, at: u64 },
    /// The file is read: its decompressed size.
    Done { bytes: u64 },
}

/// Splits one file into chunks of pages and hands them to `emit` in order; stops early when `emit`
/// says no (the receiver is gone, or handling failed).
fn split_file(
    reader: Box<dyn BufRead + Send + '_>,
    trailer: &crate::extract::linematch::LinePattern,
    max_page: usize,
    emit: &mut dyn FnMut(SplitMsg) -> bool,
) {
    let mut splitter = PageSplitter::with_max_page(reader, trailer, max_page);
    let mut chunk: Vec<RawPage> = Vec::new();
    let mut chunk_bytes = 0;
    let mut failure = None;
    loop {
        match splitter.next() {
            Some(Ok(pg)) => {
                chunk_bytes += pg.bytes.len();
                chunk.push(pg);
                if chunk.len() < CHUNK_PAGES && chunk_bytes < CHUNK_BYTES {
                    continue;
                }
            }
            Some(Err(error)) => {
                let at = splitter.bytes_read();
                failure = Some(SplitMsg::Failed { error, partial: splitter.take_partial(), at });
            }
            None => {}
        }
        let last = failure.is_some() || chunk.len() < CHUNK_PAGES && chunk_bytes < CHUNK_BYTES;
        if !chunk.is_empty() && !emit(SplitMsg::Pages(std::mem::take(&mut chunk))) {
            return;
        }
        chunk_bytes = 0;
        if last {
            break;
        }
    }
    if let Some(f) = failure {
        if !emit(f) {
            return;
        }
    }
    emit(SplitMsg::Done { bytes: splitter.bytes_read() });
}

/// Runs one import into a warehouse. Errors are configuration, input or output failures; bad pages
/// are data (rejects) and do not fail the run.
pub fn import(p: &Pipeline, opts: &ImportOptions, progress: &Progress) -> Result<RunSummary> {
    let clock = Instant::now();
    let files = read::discover(&opts.inputs)?;
    let mut start = RunStart::begin(&opts.output, opts.wait)?;
    let digests = start.wh.imported_digests(&start.finished)?;
    let threads = effective_threads(opts.threads);
    let mut st = RunState::new(p, &mut start, threads)?;
    let out = &p.output;
    let pool = st.pool();
    let run = st.run_columns();
    let total: u64 = files.iter().map(|f| if let InputFile::Path { size, .. } = f { *size } else { 0 }).sum();
    progress.start(&start.run_id, total);
    // Room for this run's hashes up front (pages are ~3 KB in practice): the hash set then grows
    // without copying itself, which would leave a discarded copy behind in the peak memory.
    st.index.reserve(usize::try_from(total / 3000).unwrap_or(0));
    let mut read_files: Vec<(String, String)> = Vec::new();
    let mut this_run: HashSet<String> = HashSet::new();
    let ahead = digests_ahead(&files);
    for f in &files {
        let counter = Arc::new(AtomicU64::new(0));
        let digest = ahead.recv().map_err(|_| anyhow::anyhow!("the file digest thread stopped"))?;
        let (reader, digest): (Box<dyn BufRead + Send>, Option<String>) = match f {
            InputFile::Path { path, .. } => {
                let digest = digest
                    .unwrap_or_else(|| read::digest_file(path))
                    .with_context(|| format!("{}: cannot read", path.display()))?;
                if digests.contains_key(&digest) || this_run.contains(&digest) {
                    st.summary.files_skipped += 1;
                    progress.skip(f.display(), f_size(f));
                    continue;
                }
                this_run.insert(digest.clone());
                let file = std::fs::File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
                let counted = read::CountingReader::new(file, counter.clone());
                (read::decompress(counted, read::compression_of(&path.to_string_lossy()))?, Some(digest))
            }
            InputFile::Stdin => {
                let mut r = BufReader::with_capacity(
                    read::READ_BUFFER,
                    read::CountingReader::new(io::stdin(), counter.clone()),
                );
                let c = read::sniff(&mut r).context("-: cannot read standard input")?;
                (read::decompress(r, c)?, None)
            }
        };
        st.summary.files += 1;
        progress.file(f.display(), f_size(f));
        let name = f.display().to_string();
        let file_clock = Instant::now();
        let before = st.summary.clone();
        let max = opts.max_page_bytes;
        let mut bytes_read = 0;
        let mut seen = 0u64;
        let mut handle = |msg: SplitMsg| -> Result<()> {
            let (pages, out) = match msg {
                // With one thread the pages come here unextracted; otherwise the pool did it.
                SplitMsg::Pages(pages) => {
                    let out = pool.install(|| extract_chunk(p, &pages, max, &name, &run));
                    (pages, out)
                }
                SplitMsg::Extracted(pages, out) => (pages, out),
                SplitMsg::Failed { error, partial, at } => {
                    let offset = partial.as_ref().map_or(at, |pg| pg.offset);
                    let raw = partial.map(|pg| pg.bytes).unwrap_or_default();
                    let detail = format!("{name}: cannot read past byte {at} of the decompressed stream: {error}");
                    progress.warn(&detail);
                    st.summary.pages += 1;
                    st.reject(&name, offset, Reject { reason: RejectReason::UnreadableFile, detail }, raw)?;
                    st.summary.bad_files.push(name.clone());
                    return Ok(());
                }
                SplitMsg::Done { bytes } => {
                    bytes_read = bytes;
                    return Ok(());
                }
            };
            st.take_chunk(&vec![name.as_str(); pages.len()], pages, out?)?;
            let now = counter.load(Ordering::Relaxed);
            progress.advance(now - seen, st.summary.pages);
            seen = now;
            Ok(())
        };
        if threads == 1 {
            let mut failed = None;
            split_file(reader, &p.trailer, max, &mut |msg| match handle(msg) {
                Ok(()) => true,
                Err(e) => {
                    failed = Some(e);
                    false
                }
            });
            if let Some(e) = failed {
                return Err(e);
            }
        } else {
            // The splitter reads ahead on its own thread; the pool extracts a chunk while this thread
            // takes the one before (dedupe, batching), so the workers do not wait for it.
            let (tx, rx) = std::sync::mpsc::sync_channel::<SplitMsg>(3);
            std::thread::scope(|scope| -> Result<()> {
                std::thread::Builder::new()
                    .name("quarry-splitter".into())
                    .spawn_scoped(scope, move || split_file(reader, &p.trailer, max, &mut |msg| tx.send(msg).is_ok()))
                    .context("starting the splitter thread")?;
                pool.in_place_scope(|jobs| -> Result<()> {
                    type Job = std::sync::mpsc::Receiver<(Vec<RawPage>, Result<ChunkOutput>)>;
                    let mut in_flight: std::collections::VecDeque<Job> = std::collections::VecDeque::new();
                    let oldest = |in_flight: &mut std::collections::VecDeque<Job>| -> Result<SplitMsg> {
                        let job = in_flight.pop_front().expect("a job in flight");
                        let (pages, out) = job.recv().map_err(|_| anyhow::anyhow!("an extraction worker stopped"))?;
                        Ok(SplitMsg::Extracted(pages, out))
                    };
                    for msg in &rx {
                        match msg {
                            SplitMsg::Pages(pages) => {
                                let (done, result) = std::sync::mpsc::sync_channel(1);
                                let (name, run) = (&name, &run);
                                jobs.spawn(move |_| {
                                    let out = extract_chunk(p, &pages, max, name, run);
                                    let _ = done.send((pages, out));
                                });
                                in_flight.push_back(result);
                                if in_flight.len() > 2 {
                                    handle(oldest(&mut in_flight)?)?;
                                }
                            }
                            other => {
                                while !in_flight.is_empty() {
                                    handle(oldest(&mut in_flight)?)?;
                                }
                                handle(other)?;
                            }
                        }
                    }
                    while !in_flight.is_empty() {
                        handle(oldest(&mut in_flight)?)?;
                    }
                    Ok(())
                })
            })?;
        }
        let now = counter.load(Ordering::Relaxed);
        progress.advance(now.saturating_sub(seen), st.summary.pages);
        st.summary.bytes_read += bytes_read;
        progress.file_done(&name, &file_counts(&before, &st.summary, bytes_read, file_clock));
        if let Some(d) = digest {
            read_files.push((d, name));
        }
    }
    let (mut summary, rows, hash_list) = st.finish()?;
    progress.finish();
    summary.seconds = clock.elapsed().as_secs_f64();
    let runs_row = runs_row(&summary, &p.name, &opts.pipeline_path, &opts.inputs, start.started, now_micros())?;
    start.commit.commit(rows, &read_files, hash_list.as_deref(), &runs_row, out, &[])?;
    drop(start.lock);
    Ok(summary)
}

/// The content digest of each input file (`None` for standard input), in order, computed on a
/// thread of its own: a file is read once for its digest (to skip it when an earlier run imported
/// it) and once to import it, and this way the first read of the next file overlaps the import of
/// the one before. It runs one file ahead at most (a rendezvous channel), so a dump larger than
/// memory is not read far ahead and out of the page cache before its import. The thread stops when
/// the receiver is dropped.
fn digests_ahead(files: &[InputFile]) -> std::sync::mpsc::Receiver<Option<io::Result<String>>> {
    let paths: Vec<Option<PathBuf>> = files
        .iter()
        .map(|f| match f {
            InputFile::Path { path, .. } => Some(path.clone()),
            InputFile::Stdin => None,
        })
        .collect();
    let (tx, rx) = std::sync::mpsc::sync_channel(0);
    // If the thread cannot start, the sender is gone and the first `recv` says so.
    let _ = std::thread::Builder::new().name("quarry-digest".into()).spawn(move || {
        for path in paths {
            if tx.send(path.map(|p| read::digest_file(&p))).is_err() {
                break;
            }
        }
    });
    rx
}

/// What became of one file's pages: the difference of the run's counts after and before it.
pub(crate) fn file_counts(before: &RunSummary, after: &RunSummary, bytes: u64, clock: Instant) -> FileCounts {
    let rejected_by_reason = after
        .rejected_by_reason
        .iter()
        .filter_map(|(r, n)| {
            let d = n - before.rejected_by_reason.get(r).copied().unwrap_or(0);
            (d > 0).then(|| (r.to_string(), d))
        })
        .collect();
    FileCounts {
        bytes,
        pages: after.pages - before.pages,
        imported: after.imported - before.imported,
        duplicates: after.duplicates - before.duplicates,
        rejected: after.rejected - before.rejected,
        rejected_by_reason,
        seconds: clock.elapsed().as_secs_f64(),
    }
}

fn f_size(f: &InputFile) -> u64 {
    match f {
        InputFile::Path { size, .. } => *size,
        InputFile::Stdin => 0,
    }
}

/// The run's row of the `runs` table.
pub(crate) fn runs_row(
    s: &RunSummary,
    pipeline: &str,
    pipeline_path: &Path,
    input_names: &[String],
    started: i64,
    finished: i64,
) -> Result<RecordBatch> {
    let mut inputs = ListBuilder::new(StringBuilder::new());
    for i in input_names {
        inputs.values().append_value(i);
    }
    inputs.append(true);
    let ts = |v: i64| Arc::new(TimestampMicrosecondArray::from(vec![v]).with_timezone(schema::UTC)) as ArrayRef;
    let n = |v: u64| Arc::new(Int64Array::from(vec![v as i64])) as ArrayRef;
    let text = |v: &str| Arc::new(StringArray::from(vec![v])) as ArrayRef;
    let pipeline = format!("{pipeline} ({})", pipeline_path.display());
    Ok(RecordBatch::try_new(
        schema::runs(),
        vec![
            text(&s.run_id),
            ts(started),
            ts(finished),
            text(&pipeline),
            Arc::new(inputs.finish()),
            n(s.files),
            n(s.files_skipped),
            n(s.bytes_read),
            n(s.pages),
            n(s.imported),
            n(s.duplicates),
            n(s.rejected),
            n(s.with_issues),
            text(s.status()),
        ],
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_hints_scale_with_the_chunk_and_stay_within_it() {
        assert_eq!(column_hints(&[], 0, 1000), Vec::<usize>::new(), "no earlier chunk: no hints");
        assert_eq!(column_hints(&[400, 0, 80], 1000, 2000), [900, 0, 180], "twice the bytes, an eighth over");
        // A chunk of one 16 MB page, then a chunk of ordinary pages: hints stay within the chunk.
        assert_eq!(column_hints(&[16 << 20], 16 << 20, 4 << 20), [4 << 20]);
        assert_eq!(column_hints(&[16 << 20], 1 << 10, 4 << 20), [4 << 20]);
    }

    #[test]
    fn run_ids_sort_in_time_order_and_dates_are_utc() {
        let a = run_id_of(1_764_165_785_123_456);
        assert_eq!(a, "20251126T140305.123456Z");
        assert!(run_id_of(1_764_165_785_123_457) > a);
        assert_eq!(date_of(1_764_165_785_123_456), "2025-11-26");
    }
}
