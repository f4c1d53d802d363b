//! A run: one import or rejects replay into a warehouse, from its lock to its commit.
//!
//! Every run has the same skeleton (`Run`): the session locks the warehouse, cleans up after a crashed
//! run and loads the earlier runs' hashes (`session`); a source — dump files (`import`) or stored
//! rejects (`replay`) — is cut into chunks of pages (`chunk`) that the extractor runs in parallel and
//! hands back in order (`extraction`); the router sends each page to posts, duplicates or rejects
//! (`router`), the posts writer derives metrics and writes Parquet on a thread of its own (`writer`);
//! the epilogue closes the files, builds the `runs` row (`summary`) and commits.

mod chunk;
mod extraction;
mod import;
pub mod progress;
mod replay;
mod router;
mod session;
pub mod summary;
mod writer;

use std::time::Instant;

pub use extraction::effective_threads;
pub use import::import;
pub use replay::{replay, REPLAY_INPUT};
pub use summary::RunSummary;

use extraction::Extractor;
use progress::Progress;
use router::{Routed, Router};
use session::{log_repairs, now_micros, Session};

use std::collections::BTreeSet;

use crate::error::{Error, Result};
use crate::extract::read::Shard;
use crate::extract::split::DEFAULT_MAX_PAGE_BYTES;
use crate::load::commit::{recover, taken_meanwhile, Recovered, RunLock};
use crate::load::index::segment::IndexError;
use crate::load::index::Index;
use crate::load::location::Location;
use crate::pipeline::Pipeline;

/// After a commit: adopts the run's index segment and merges what the index's levels call for. The
/// run is committed already: a failure is a warning, and the next run repairs the index.
fn settle_index(wh: &crate::load::warehouse::Warehouse, run_id: &str, took_posts: bool) {
    let clock = Instant::now();
    let settled = wh.lock_local_copy().map_err(IndexError::from).and_then(|_copy| {
        let merged = crate::load::index::settle(&wh.index_dir(), run_id, took_posts)?;
        wh.index_up()?;
        Ok(merged)
    });
    match settled {
        Ok(m) if m.steps > 0 => tracing::info!(
            "index: merged {} files ({:.1} MB) into {} in {:.2} s",
            m.files_in,
            m.bytes_in as f64 / 1e6,
            m.files_out,
            clock.elapsed().as_secs_f64()
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!("index: {e} (the run is committed; the next run repairs the index)"),
    }
}

/// After a remote run's commit: merges the digest lists of the finished runs (`now` and this run)
/// that no merged list holds, once there are `digests::merge_runs()` of them, so that a stateless
/// run copies one object for them instead of one per run. Outside the lock: a merged list only
/// saves reads (each run's own list stays), so two merges at once cost at most a merge again. A
/// failure is a warning.
fn merge_digest_lists(wh: &crate::load::warehouse::Warehouse, now: &BTreeSet<String>, run_id: &str) {
    let mut finished = now.clone();
    finished.insert(run_id.to_string());
    match wh.merge_digest_lists(&finished, crate::load::digests::merge_runs()) {
        Ok(Some(n)) => tracing::info!("digests: merged the digest lists of {n} runs into one object"),
        Ok(None) => {}
        Err(e) => tracing::warn!("digests: the lists of the finished runs stay unmerged ({e}); the run is committed"),
    }
}

/// After a commit, with `QUARRY_CHECKPOINT_EVERY` set to N: a Delta checkpoint of each log this
/// run's commit took past a multiple of N (`Landed::passes`). Outside the lock: a checkpoint is
/// written for one version and then only read. The run is committed already: a failure is a
/// warning, and readers replay the commits instead. Whether any was due.
fn checkpoint_logs(wh: &crate::load::warehouse::Warehouse, landed: &[crate::load::commit::Landed]) -> bool {
    let Some(every) = crate::load::delta::checkpoint_every() else { return false };
    let due: Vec<_> = landed.iter().filter(|l| l.passes(every)).collect();
    for l in &due {
        let clock = Instant::now();
        let done = wh
            .table_url(l.table)
            .map_err(|e| e.to_string())
            .and_then(|url| crate::load::delta::checkpoint(&url).map_err(|e| e.to_string()));
        match done {
            Ok(at) => tracing::info!(
                "delta: {}: checkpoint at version {at} in {:.2} s (this run committed version {})",
                l.table,
                clock.elapsed().as_secs_f64(),
                l.version
            ),
            Err(e) => tracing::warn!(
                "delta: {}: no checkpoint after version {} ({e}); readers replay the commits since the last one",
                l.table,
                l.version
            ),
        }
    }
    !due.is_empty()
}

/// How long each step of a run's commit took, for the debug log.
struct Phases {
    at: Instant,
    took: Vec<(&'static str, f64)>,
}

impl Phases {
    fn new() -> Phases {
        Phases { at: Instant::now(), took: Vec::new() }
    }

    /// Ends the step `name` (begun when the one before it ended).
    fn done(&mut self, name: &'static str) {
        let now = Instant::now();
        self.took.push((name, (now - self.at).as_secs_f64()));
        self.at = now;
    }
}

impl std::fmt::Display for Phases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (name, secs)) in self.took.iter().enumerate() {
            write!(f, "{}{name} {secs:.3} s", if i > 0 { ", " } else { "" })?;
        }
        Ok(())
    }
}

/// Settings of a run (import or replay).
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The warehouse (created if missing).
    pub warehouse: Location,
    /// Threads the run works on (0 = one per core; 1 runs everything on the calling thread).
    pub threads: usize,
    /// Wait for another run's lock instead of failing.
    pub wait: bool,
    /// Largest page held in memory; larger pages are rejected as `page_too_large`.
    pub max_page_bytes: usize,
    /// This worker's share of the inputs (`--shard I/N`); its run ids end in `-<I>of<N>`.
    pub shard: Option<Shard>,
}

impl RunOptions {
    /// Options with defaults for everything but the warehouse.
    pub fn new(warehouse: impl Into<Location>) -> Self {
        RunOptions {
            warehouse: warehouse.into(),
            threads: 0,
            wait: false,
            max_page_bytes: DEFAULT_MAX_PAGE_BYTES,
            shard: None,
        }
    }
}

/// A run in progress: what every command's loop works with.
pub(crate) struct Run<'p> {
    p: &'p Pipeline,
    opts: RunOptions,
    session: Session,
    router: Router<'p>,
    extractor: Extractor<'p>,
    /// When the command started (for the summary's seconds).
    clock: Instant,
}

impl<'p> Run<'p> {
    /// Starts a run: the session, the router with its table writers, the extractor's workers.
    fn begin(p: &'p Pipeline, opts: &RunOptions, clock: Instant, keep_lock: bool) -> Result<Run<'p>> {
        let session = Session::begin(&opts.warehouse, opts.wait, opts.shard, keep_lock)?;
        let threads = effective_threads(opts.threads);
        let router = Router::new(p, &session, threads > 1)?;
        let index = session.index.clone();
        let extractor = Extractor::new(p, router.run_columns().clone(), opts.max_page_bytes, threads, index)?;
        Ok(Run { p, opts: opts.clone(), session, router, extractor, clock })
    }

    /// The epilogue of every run: writes what is buffered, closes the files, writes the `runs` row
    /// and commits. `inputs` go into the `runs` row, `files` (digest, name) are the files read,
    /// `replaced` (old run id, rows kept) the rejects files a replay rewrote.
    fn finish(
        self,
        inputs: &[String],
        files: &[(String, String)],
        replaced: &[(String, u64)],
        progress: &Progress,
    ) -> Result<RunSummary> {
        let Run { p, opts, session, router, extractor, clock } = self;
        drop(extractor);
        let Routed { mut summary, mut rows, mut segment } = router.finish()?;
        progress.finish();
        let Session { wh, mut commit, lock, index, index_files, run_id, finished, started, .. } = session;
        drop(index);
        let mut phases = Phases::new();
        commit.upload_early(rows)?;
        phases.done("upload");
        let lock = match lock {
            Some(held) => held,
            None => RunLock::acquire(&wh, opts.wait)?,
        };
        phases.done("lock wait");
        commit.locked_by(&lock);
        let Recovered { finished: now, cleaned, versions } = recover(&wh)?;
        commit.knows_versions(versions);
        phases.done("recovery");
        summary.cleaned_up += cleaned.removed.len();
        summary.swaps_completed += cleaned.completed.len();
        if now != finished {
            let newer: BTreeSet<String> = now.difference(&finished).cloned().collect();
            let again: Vec<&String> = {
                let taken = wh.imported_digests(&newer)?;
                files.iter().filter(|(d, _)| taken.contains_key(d)).map(|(_, name)| name).collect()
            };
            if !again.is_empty() {
                return Err(Error::Raced(format!(
                    "{} of this run's files ({}) were imported by a run that committed while this one worked; \
                     nothing of this run was committed: run it again (those files are then skipped)",
                    again.len(),
                    again.iter().take(3).map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                )));
            }
            let (index, repairs) = Index::open(&wh, &now)?;
            log_repairs(&repairs);
            if let Some(seg) = segment.clone() {
                let taken = taken_meanwhile(&index.without(&index_files), &seg)?;
                if !taken.is_empty() {
                    let moved = commit.move_taken(&taken, &seg, &p.output)?;
                    summary.take_back(&moved);
                    rows[0] -= moved.rows;
                    rows[2] += moved.rows;
                    if !seg.exists() {
                        segment = None;
                    }
                    let firsts: BTreeSet<&String> = taken.values().collect();
                    tracing::info!(
                        "commit: {} posts were taken first by {} run(s) that committed meanwhile ({}); moved to duplicates",
                        moved.rows,
                        firsts.len(),
                        firsts.iter().take(3).map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                    );
                }
            }
        }
        phases.done("second look");
        summary.seconds = clock.elapsed().as_secs_f64();
        let pipeline = format!("{} ({})", p.name, p.source.display());
        let row = summary::runs_row(&summary, &pipeline, inputs, started, now_micros())?;
        let landed = commit.commit(rows, files, segment.as_deref(), &row, &p.output, replaced)?;
        phases.done("publish");
        settle_index(&wh, &run_id, segment.is_some());
        phases.done("index");
        drop(lock);
        phases.done("unlock");
        if checkpoint_logs(&wh, &landed) {
            phases.done("checkpoints");
        }
        if wh.remote().is_some() {
            merge_digest_lists(&wh, &now, &run_id);
            phases.done("digest lists");
        }
        tracing::debug!("commit of {run_id}: {phases}");
        Ok(summary)
    }
}
