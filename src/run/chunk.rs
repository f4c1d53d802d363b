//! Chunks: the unit a run extracts in parallel. A chunk is a few hundred pages in file order with the
//! source file of each; one worker extracts it start to end and makes its post rows one Arrow batch,
//! so every record is allocated and freed on one thread and while it is still in the cache.

use std::borrow::Cow;
use std::io::{self, BufRead};
use std::sync::Arc;

use arrow::record_batch::RecordBatch;

use crate::contract::schema;
use crate::error::{Error, Result};
use crate::extract::batch::RowsBuilder;
use crate::extract::page::extract_raw;
use crate::extract::record::{Cell, Record, Reject};
use crate::extract::split::{PageSplitter, RawPage};
use crate::load::index::Index;
use crate::pipeline::linematch::LinePattern;
use crate::pipeline::Pipeline;
use crate::transform::dedupe::PackedHash;

/// Pages in a chunk at most (a chunk is also cut at `CHUNK_BYTES`).
pub const CHUNK_PAGES: usize = 512;
/// Page bytes in a chunk at most.
pub const CHUNK_BYTES: usize = 4 << 20;

/// Pages to extract together, in order, with the source file of each and what the run carries along
/// with them (`tag`: nothing for an import, the reject rows they came from for a replay).
pub struct Chunk<T = ()> {
    pub pages: Vec<RawPage>,
    /// The `source_file` of each page.
    pub files: Vec<Arc<str>>,
    pub tag: T,
}

/// The run columns every post row of a run gets.
#[derive(Debug, Clone)]
pub struct RunColumns {
    pub run_id: String,
    /// The run's start, µs since the Unix epoch (`ingested_at`).
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
    /// The packed hash.
    pub key: PackedHash,
    /// The earlier run that took the hash, if one did (the warehouse index's answer).
    pub taken_by: Option<String>,
    pub issues: Vec<String>,
    pub entries_valid: u32,
    pub ids: Vec<Option<i64>>,
}

/// A chunk after extraction: an outcome per page, in order, and the post rows as one batch (before
/// dedupe and without the derived columns).
pub struct ChunkOutput {
    pub outcomes: Vec<Outcome>,
    pub posts: Option<RecordBatch>,
}

/// A chunk output built a page at a time: each record's cells go into the batch's columns as soon
/// as the page is extracted, and are freed while they are still in the cache.
struct ChunkBuilder<'a> {
    p: &'a Pipeline,
    run: &'a RunColumns,
    outcomes: Vec<Outcome>,
    rows: RowsBuilder,
    /// The run id cell, and the source file cell of the last page (shared by its rows).
    run_id: Cell<'static>,
    file: Cell<'static>,
}

impl<'a> ChunkBuilder<'a> {
    /// For `pages` pages; `bytes`: the text per column of an earlier chunk of as many pages (or empty).
    fn new(p: &'a Pipeline, run: &'a RunColumns, pages: usize, bytes: &[usize]) -> Result<ChunkBuilder<'a>> {
        let rows =
            RowsBuilder::new(schema::posts_ref(), pages, bytes).map_err(Error::stage("building a posts batch"))?;
        let run_id = Cell::Text(run.run_id.clone().into());
        Ok(ChunkBuilder { p, run, outcomes: Vec::with_capacity(pages), rows, run_id, file: Cell::Null })
    }

    fn push(&mut self, file: &str, pg: &RawPage, res: Result<Record, Reject>) -> Result<()> {
        let mut rec = match res {
            Err(rej) => {
                self.outcomes.push(Outcome::Reject(rej));
                return Ok(());
            }
            Ok(rec) => rec,
        };
        // The pipeline's hash type admits only lower-case hex of 16–64 digits.
        let key = PackedHash::new(&rec.hash).ok_or_else(|| Error::Stage {
            what: format!("{file}: the page at byte {}", pg.offset),
            source: format!("hash {:?} is not lower-case hex", rec.hash).into(),
        })?;
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
            key,
            taken_by: None,
            issues,
            entries_valid: rec.entries_valid,
            ids: rec.ids,
        }));
        Ok(())
    }

    /// The chunk output, and the text per column of its batch (to size the next chunk's).
    fn finish(self) -> Result<(ChunkOutput, Vec<usize>)> {
        let bytes = self.rows.text_bytes();
        let posts = if self.rows.is_empty() {
            None
        } else {
            Some(self.rows.finish().map_err(Error::stage("building a posts batch"))?)
        };
        Ok((ChunkOutput { outcomes: self.outcomes, posts }, bytes))
    }
}

/// Extracts a chunk's pages in order on the current thread, makes its post rows a batch, and asks
/// the warehouse index which of their hashes earlier runs took (in one sorted pass).
pub fn extract_chunk<T>(
    p: &Pipeline,
    chunk: &Chunk<T>,
    max_page: usize,
    run: &RunColumns,
    index: &Index,
) -> Result<ChunkOutput> {
    thread_local! {
        /// Text per posts column of this thread's last chunk with posts, and that chunk's page bytes.
        static LAST: std::cell::RefCell<(Vec<usize>, usize)> = const { std::cell::RefCell::new((Vec::new(), 0)) };
    }
    let raw: usize = chunk.pages.iter().map(|pg| pg.bytes.len()).sum();
    let bytes = LAST.with_borrow(|(last, last_raw)| column_hints(last, *last_raw, raw));
    // Its own pipeline copy: a regex's cache pool is fastest on its owner thread.
    let own = p.clone();
    let mut b = ChunkBuilder::new(&own, run, chunk.pages.len(), &bytes)?;
    for (pg, file) in chunk.pages.iter().zip(&chunk.files) {
        b.push(file, pg, extract_raw(&own, pg, max_page))?;
    }
    let (mut out, bytes) = b.finish()?;
    if out.posts.is_some() {
        LAST.set((bytes, raw));
        taken_by(index, &mut out.outcomes)?;
    }
    Ok(out)
}

/// Fills `taken_by` of the posts from the index: their hashes sorted, each asked once.
fn taken_by(index: &Index, outcomes: &mut [Outcome]) -> Result<()> {
    if index.is_empty() {
        return Ok(());
    }
    let mut keys: Vec<PackedHash> =
        outcomes.iter().filter_map(|o| if let Outcome::Post(p) = o { Some(p.key) } else { None }).collect();
    keys.sort_unstable();
    keys.dedup();
    let found = index.lookup(&keys)?;
    for o in outcomes {
        if let Outcome::Post(post) = o {
            let at = keys.binary_search(&post.key).expect("every post's key was asked");
            post.taken_by = found[at].map(str::to_string);
        }
    }
    Ok(())
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

/// What reading one file gives besides its chunks, in order with them.
pub enum FileEvent {
    /// The stream failed at decompressed byte `at`; `partial` is the page it was in.
    Failed { error: io::Error, partial: Option<RawPage>, at: u64 },
    /// The file is read: its decompressed size.
    Done { bytes: u64 },
}

/// One file cut into chunks of pages (`Piece::Chunk`), then a read failure if there was one, then
/// the end of the file (`Piece::Event`).
pub struct FileChunks<'a, R> {
    splitter: PageSplitter<'a, R>,
    file: Arc<str>,
    /// Events still to hand out after the last chunk, in reverse order.
    pending: Vec<FileEvent>,
    ended: bool,
}

impl<'a, R: BufRead> FileChunks<'a, R> {
    /// Chunks of `reader`'s pages (cut at `trailer`, pages over `max_page` bytes cut short), each
    /// page with `file` as its source.
    pub fn new(reader: R, trailer: &'a LinePattern, max_page: usize, file: Arc<str>) -> Self {
        FileChunks {
            splitter: PageSplitter::with_max_page(reader, trailer, max_page),
            file,
            pending: Vec::new(),
            ended: false,
        }
    }
}

/// What a source hands the run: chunks to extract, and events (the end of a file, a read failure)
/// that the run takes in order after every chunk before them.
pub enum Piece<T, E> {
    Chunk(Chunk<T>),
    Event(E),
}

impl<R: BufRead> Iterator for FileChunks<'_, R> {
    type Item = Piece<(), FileEvent>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.pending.pop() {
            return Some(Piece::Event(e));
        }
        if self.ended {
            return None;
        }
        let (mut pages, mut bytes) = (Vec::new(), 0);
        while pages.len() < CHUNK_PAGES && bytes < CHUNK_BYTES {
            match self.splitter.next() {
                Some(Ok(pg)) => {
                    bytes += pg.bytes.len();
                    pages.push(pg);
                }
                Some(Err(error)) => {
                    let at = self.splitter.bytes_read();
                    let partial = self.splitter.take_partial();
                    self.pending = vec![
                        FileEvent::Done { bytes: self.splitter.bytes_read() },
                        FileEvent::Failed { error, partial, at },
                    ];
                    self.ended = true;
                    break;
                }
                None => {
                    self.pending = vec![FileEvent::Done { bytes: self.splitter.bytes_read() }];
                    self.ended = true;
                    break;
                }
            }
        }
        if pages.is_empty() {
            return self.next();
        }
        let files = vec![self.file.clone(); pages.len()];
        Some(Piece::Chunk(Chunk { pages, files, tag: () }))
    }
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
}
