//! `quarry import`: dump files (or standard input) → pages → the run's tables. Files a finished run
//! already imported (by content digest) are skipped.

use std::collections::HashSet;
use std::io::{self, BufRead, BufReader};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::time::Instant;

use super::chunk::{FileChunks, FileEvent};
use super::extraction::Taken;
use super::progress::Progress;
use super::summary::{file_counts, RunSummary};
use super::{Run, RunOptions};
use crate::error::{Error, Result};
use crate::extract::read::{self, InputFile};
use crate::extract::record::{Reject, RejectReason};
use crate::pipeline::Pipeline;

/// Pages are ~3 KB in practice: room for this many hashes per input byte is reserved up front.
const BYTES_PER_PAGE_HINT: u64 = 3000;

/// Imports `inputs` (files, folders or `-`) into the warehouse of `opts` as one run. Errors are
/// configuration, input or output failures; bad pages are data (rejects) and do not fail the run.
pub fn import(p: &Pipeline, opts: &RunOptions, inputs: &[String], progress: &Progress) -> Result<RunSummary> {
    let clock = Instant::now();
    let mut files = read::discover(inputs)?;
    if let Some(shard) = opts.shard {
        let all = files.len();
        files = shard.select(files).map_err(Error::Usage)?;
        tracing::info!("shard {shard}: {} of {all} input files", files.len());
    }
    let mut run = Run::begin(p, opts, clock, false)?;
    let digests = run.session.wh.imported_digests(&run.session.finished)?;
    let total: u64 = files.iter().map(InputFile::size).sum();
    progress.start(&run.session.run_id, total);
    run.router.reserve(usize::try_from(total / BYTES_PER_PAGE_HINT).unwrap_or(0));
    let mut read_files: Vec<(String, String)> = Vec::new();
    let mut this_run: HashSet<String> = HashSet::new();
    let ahead = digests_ahead(&files);
    for f in &files {
        let counter = Arc::new(AtomicU64::new(0));
        let digest = ahead.recv().map_err(|_| Error::Thread("the file digest thread stopped".into()))?;
        let (reader, digest): (Box<dyn BufRead + Send>, Option<String>) = match f {
            InputFile::Path { path, .. } => {
                let digest = digest
                    .unwrap_or_else(|| read::digest_file(path))
                    .map_err(Error::io(format!("{}: cannot read", path.display())))?;
                if digests.contains_key(&digest) || !this_run.insert(digest.clone()) {
                    run.router.summary.files_skipped += 1;
                    progress.skip(f.display(), f.size());
                    continue;
                }
                let file = std::fs::File::open(path).map_err(Error::io(format!("{}: cannot open", path.display())))?;
                let counted = read::CountingReader::new(file, counter.clone());
                let reader = read::decompress(counted, read::compression_of(&path.to_string_lossy()))
                    .map_err(Error::io(format!("{}: cannot read", path.display())))?;
                (reader, Some(digest))
            }
            InputFile::Stdin => {
                let mut r = BufReader::with_capacity(
                    read::READ_BUFFER,
                    read::CountingReader::new(io::stdin(), counter.clone()),
                );
                let c = read::sniff(&mut r).map_err(Error::io("-: cannot read standard input"))?;
                (read::decompress(r, c).map_err(Error::io("-: cannot read standard input"))?, None)
            }
        };
        run.router.summary.files += 1;
        import_file(p, &mut run, f, reader, &counter, progress)?;
        if let Some(d) = digest {
            read_files.push((d, f.display().to_string()));
        }
    }
    run.finish(inputs, &read_files, &[], progress)
}

/// Imports one opened file: its pages through the run, a read failure as an `unreadable_file` reject.
fn import_file(
    p: &Pipeline,
    run: &mut Run,
    f: &InputFile,
    reader: Box<dyn BufRead + Send>,
    counter: &AtomicU64,
    progress: &Progress,
) -> Result<()> {
    let name = f.display();
    progress.file(name, f.size());
    let file_clock = Instant::now();
    let Run { router, extractor, opts, .. } = run;
    let before = router.summary.clone();
    let chunks = FileChunks::new(reader, &p.trailer, opts.max_page_bytes, Arc::from(name));
    let (mut bytes_read, mut seen) = (0, 0u64);
    extractor.run(chunks, "splitter", &mut |taken| {
        match taken {
            Taken::Chunk(chunk, out) => router.take_chunk(&chunk.files, chunk.pages, out)?,
            Taken::Event(FileEvent::Failed { error, partial, at }) => {
                let offset = partial.as_ref().map_or(at, |pg| pg.offset);
                let raw = partial.map(|pg| pg.bytes).unwrap_or_default();
                let detail = format!("{name}: cannot read past byte {at} of the decompressed stream: {error}");
                progress.warn(&detail);
                router.summary.pages += 1;
                router.reject(name, offset, Reject { reason: RejectReason::UnreadableFile, detail }, raw)?;
                router.summary.bad_files.push(name.to_string());
            }
            Taken::Event(FileEvent::Done { bytes }) => bytes_read = bytes,
        }
        let now = counter.load(Ordering::Relaxed);
        progress.advance(now - seen, router.summary.pages);
        seen = now;
        Ok(())
    })?;
    let now = counter.load(Ordering::Relaxed);
    progress.advance(now.saturating_sub(seen), router.summary.pages);
    router.summary.bytes_read += bytes_read;
    progress.file_done(name, &file_counts(&before, &router.summary, bytes_read, file_clock));
    Ok(())
}

/// The content digest of each input file (`None` for standard input), in order, computed on a
/// thread of its own: a file is read once for its digest (to skip it when an earlier run imported
/// it) and once to import it, and this way the first read of the next file overlaps the import of
/// the one before. It runs one file ahead at most (a rendezvous channel), so a dump larger than
/// memory is not read far ahead and out of the page cache before its import. The thread stops when
/// the receiver is dropped.
fn digests_ahead(files: &[InputFile]) -> Receiver<Option<io::Result<String>>> {
    let paths: Vec<Option<PathBuf>> = files
        .iter()
        .map(|f| match f {
            InputFile::Path { path, .. } => Some(path.clone()),
            InputFile::Stdin => None,
        })
        .collect();
    let (tx, rx) = sync_channel(0);
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
