//! The router: takes extracted chunks in their order and sends each page where it belongs — a new
//! hash to `posts`, a hash already taken (in this run or an earlier one: first wins) to
//! `duplicates`, a page that cannot be imported to `rejects` — counting everything in the summary.

use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::BooleanArray;
use arrow::compute::filter_record_batch;
use arrow::record_batch::RecordBatch;

use super::chunk::{ChunkOutput, Outcome, RunColumns};
use super::session::Session;
use super::summary::RunSummary;
use super::writer::{PostsParts, PostsSink};
use crate::contract::Table;
use crate::error::{Error, Result};
use crate::extract::batch::{duplicates_batch, rejects_batch, DuplicateRow, RejectRow};
use crate::extract::record::Reject;
use crate::extract::split::RawPage;
use crate::load::index::run_keys::{RunKeys, SPILL_HASHES};
use crate::load::parquet::TableWriter;
use crate::pipeline::Pipeline;
use crate::transform::dedupe::PackedHash;

/// Buffered reject bytes before they are written out.
const REJECT_FLUSH_BYTES: usize = 16 << 20;

/// The rows of a run in progress, before they are written.
pub(crate) struct Router<'p> {
    p: &'p Pipeline,
    run: RunColumns,
    /// The hashes this run took so far (earlier runs' are asked of the index by the workers).
    keys: RunKeys,
    /// Where the run's own index segment is written.
    segment: PathBuf,
    /// Post rows taken and not yet handed to the posts writer.
    posts: PostsParts,
    rejects: Vec<RejectRow>,
    reject_bytes: usize,
    dups: Vec<DuplicateRow>,
    posts_w: PostsSink,
    rejects_w: TableWriter,
    dups_w: TableWriter,
    pub summary: RunSummary,
}

/// What a router leaves when the run's rows are all written.
pub(crate) struct Routed {
    pub summary: RunSummary,
    /// Rows written to posts, rejects and duplicates.
    pub rows: [u64; 3],
    /// The run's own index segment (its hashes, sorted), staged; none when it took no hash.
    pub segment: Option<PathBuf>,
}

impl<'p> Router<'p> {
    /// Writers for the run's tables and an empty summary. With `writer_thread`, posts are written
    /// on a thread of their own.
    pub fn new(p: &'p Pipeline, session: &Session, writer_thread: bool) -> Result<Router<'p>> {
        let out = &p.output;
        let commit = &session.commit;
        let work = commit.index_work()?;
        Ok(Router {
            p,
            run: RunColumns { run_id: session.run_id.clone(), started: session.started },
            keys: RunKeys::new(&work, &session.run_id, crate::load::hold::spill_hashes(SPILL_HASHES)),
            segment: work.join("run.seg"),
            posts: PostsParts::default(),
            rejects: Vec::new(),
            reject_bytes: 0,
            dups: Vec::new(),
            posts_w: PostsSink::new(p, commit.writer(Table::Posts, out)?, writer_thread)?,
            rejects_w: commit.writer(Table::Rejects, out)?,
            dups_w: commit.writer(Table::Duplicates, out)?,
            summary: RunSummary {
                run_id: session.run_id.clone(),
                cleaned_up: session.cleaned.removed.len(),
                swaps_completed: session.cleaned.completed.len(),
                ..Default::default()
            },
        })
    }

    /// The run columns of this run's post rows.
    pub fn run_columns(&self) -> &RunColumns {
        &self.run
    }

    /// Room for `n` more hashes in the run's set, so it grows without copying itself (a discarded
    /// copy would stay in the peak memory).
    pub fn reserve(&mut self, n: usize) {
        self.keys.reserve(n);
    }

    /// Writes what is buffered and closes the table files.
    pub fn finish(mut self) -> Result<Routed> {
        self.flush_posts()?;
        self.flush_rejects()?;
        let Router { posts_w, rejects_w, dups_w, summary, keys, segment, .. } = self;
        let rows = [posts_w.finish()?.close()?.rows, rejects_w.close()?.rows, dups_w.close()?.rows];
        // Once the writers' buffers are free, so the merge reuses their memory.
        let segment = keys.finish(&segment)?.map(|meta| meta.path);
        Ok(Routed { summary, rows, segment })
    }

    fn flush_posts(&mut self) -> Result<()> {
        if self.posts.rows == 0 {
            return Ok(());
        }
        self.posts_w.send(std::mem::take(&mut self.posts))
    }

    fn flush_rejects(&mut self) -> Result<()> {
        if !self.rejects.is_empty() {
            let b = rejects_batch(&self.run.run_id, &self.rejects).map_err(Error::stage("building a rejects batch"))?;
            // Free the rows' raw bytes before the encoder copies the batch's.
            self.rejects = Vec::new();
            self.reject_bytes = 0;
            self.rejects_w.write(&b)?;
        }
        if !self.dups.is_empty() {
            let b =
                duplicates_batch(&self.run.run_id, &self.dups).map_err(Error::stage("building a duplicates batch"))?;
            self.dups_w.write(&b)?;
            self.dups.clear();
        }
        Ok(())
    }

    /// Takes a page that cannot be imported.
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
        if self.reject_bytes >= REJECT_FLUSH_BYTES || self.rejects.len() >= self.p.output.batch_rows.get() {
            self.flush_rejects()?;
        }
        Ok(())
    }

    /// Takes a chunk of pages in order (`files`: the source file of each), with what extraction
    /// made of them: each page becomes a post, a duplicate or a reject. A hash is a duplicate when an
    /// earlier run took it (the index's answer, in `taken_by`) or an earlier page of this run did.
    pub fn take_chunk(&mut self, files: &[Arc<str>], pages: Vec<RawPage>, out: ChunkOutput) -> Result<()> {
        let incoming = out.outcomes.iter().filter(|o| matches!(o, Outcome::Post(_))).count();
        self.keys.make_room(incoming)?;
        let spilled = self.spilled(&out.outcomes)?;
        let mut keep = Vec::with_capacity(out.posts.as_ref().map_or(0, RecordBatch::num_rows));
        for ((pg, outcome), file) in pages.into_iter().zip(out.outcomes).zip(files) {
            self.summary.pages += 1;
            let post = match outcome {
                Outcome::Reject(rej) => {
                    self.reject(file, pg.offset, rej, pg.bytes)?;
                    continue;
                }
                Outcome::Post(post) => post,
            };
            // Taken by an earlier run, or earlier in this one: spilled to disk, or in the set in
            // memory (then `insert` says so and takes nothing).
            let first_run_id = if post.taken_by.is_some() {
                post.taken_by
            } else if spilled.binary_search(&post.key).is_ok() || !self.keys.insert(&post.key) {
                Some(self.run.run_id.clone())
            } else {
                None
            };
            if let Some(first_run_id) = first_run_id {
                keep.push(false);
                self.summary.duplicates += 1;
                self.dups.push(DuplicateRow {
                    hash: post.hash,
                    source_file: file.to_string(),
                    source_offset: pg.offset,
                    first_run_id,
                });
                if self.dups.len() >= self.p.output.batch_rows.get() {
                    self.flush_rejects()?;
                }
                continue;
            }
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
        if let Some(b) = out.posts {
            let b = if keep.iter().all(|k| *k) {
                b
            } else {
                filter_record_batch(&b, &BooleanArray::from(keep)).map_err(Error::stage("masking duplicates"))?
            };
            if b.num_rows() > 0 {
                self.posts.rows += b.num_rows();
                self.posts.batches.push(b);
            }
        }
        if self.posts.rows >= self.p.output.batch_rows.get() {
            self.flush_posts()?;
        }
        Ok(())
    }

    /// Of the chunk's hashes that no earlier run took, those this run spilled to disk, sorted.
    fn spilled(&self, outcomes: &[Outcome]) -> Result<Vec<PackedHash>> {
        if !self.keys.has_spills() {
            return Ok(Vec::new()); // most runs never spill: no sort of every chunk's keys for them
        }
        let mut keys: Vec<PackedHash> = outcomes
            .iter()
            .filter_map(|o| match o {
                Outcome::Post(p) if p.taken_by.is_none() => Some(p.key),
                _ => None,
            })
            .collect();
        keys.sort_unstable();
        keys.dedup();
        let held = self.keys.in_spills(&keys)?;
        Ok(keys.into_iter().zip(held).filter_map(|(k, h)| h.then_some(k)).collect())
    }
}
