//! The one way a run extracts in parallel, whatever its source (dump files for an import, stored
//! rejects for a replay). A source hands out pieces — chunks of pages, and events such as the end of a
//! file — from a thread of its own; the worker pool extracts up to `IN_FLIGHT` chunks at once, each
//! start to end on one worker; the calling thread takes chunks and events back in source order. With
//! one thread, all of it runs on the calling thread.

use std::collections::VecDeque;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;

use super::chunk::{extract_chunk, Chunk, ChunkOutput, Piece, RunColumns};
use crate::error::{Error, Result};
use crate::load::index::Index;
use crate::pipeline::Pipeline;

/// Chunks extracted at once: the pool works on the next ones while the caller takes the oldest.
pub const IN_FLIGHT: usize = 3;

/// A piece given back to the caller, in source order.
pub enum Taken<T, E> {
    /// A chunk, with what extraction made of its pages.
    Chunk(Chunk<T>, ChunkOutput),
    /// An event of the source, after every chunk before it.
    Event(E),
}

/// Extracts the chunks of any source with a run's pipeline and run columns.
pub(crate) struct Extractor<'p> {
    p: &'p Pipeline,
    run: RunColumns,
    max_page: usize,
    /// What earlier runs took, asked by the workers.
    index: Arc<Index>,
    /// The workers; none with one thread.
    pool: Option<rayon::ThreadPool>,
}

/// Threads a run uses: `requested`, or one per core when 0.
pub fn effective_threads(requested: usize) -> usize {
    if requested > 0 {
        requested
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }
}

impl<'p> Extractor<'p> {
    /// An extractor on `threads` threads (`quarry-worker-N`); pages over `max_page` bytes are rejected.
    pub fn new(
        p: &'p Pipeline,
        run: RunColumns,
        max_page: usize,
        threads: usize,
        index: Arc<Index>,
    ) -> Result<Extractor<'p>> {
        let pool = if threads > 1 {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .thread_name(|i| format!("quarry-worker-{i}"))
                .build()
                .map_err(|e| Error::Thread(format!("starting worker threads: {e}")))?;
            Some(pool)
        } else {
            None
        };
        Ok(Extractor { p, run, max_page, index, pool })
    }

    /// Extracts every chunk of `source` and hands chunks and events to `take` in source order. The
    /// source runs on a thread named `quarry-<role>` when there are workers. The first error of
    /// `take` or of extraction stops the run and is returned.
    pub fn run<T, E, S>(&self, source: S, role: &str, take: &mut dyn FnMut(Taken<T, E>) -> Result<()>) -> Result<()>
    where
        T: Send,
        E: Send,
        S: Iterator<Item = Piece<T, E>> + Send,
    {
        let Some(pool) = &self.pool else {
            for piece in source {
                match piece {
                    Piece::Chunk(chunk) => {
                        let out = extract_chunk(self.p, &chunk, self.max_page, &self.run, &self.index)?;
                        take(Taken::Chunk(chunk, out))?;
                    }
                    Piece::Event(e) => take(Taken::Event(e))?,
                }
            }
            return Ok(());
        };
        std::thread::scope(|scope| {
            let (tx, rx) = sync_channel::<Piece<T, E>>(IN_FLIGHT);
            std::thread::Builder::new()
                .name(format!("quarry-{role}"))
                .spawn_scoped(scope, move || {
                    for piece in source {
                        if tx.send(piece).is_err() {
                            break;
                        }
                    }
                })
                .map_err(Error::io(format!("starting the {role} thread")))?;
            let result = pool.in_place_scope(|jobs| self.take_in_order(&rx, jobs, take));
            // Dropped before the scope joins the source thread: a source blocked on a full channel
            // then stops instead of waiting forever after an error.
            drop(rx);
            result
        })
    }

    fn take_in_order<'s, T: Send + 's, E>(
        &'s self,
        rx: &Receiver<Piece<T, E>>,
        jobs: &rayon::Scope<'s>,
        take: &mut dyn FnMut(Taken<T, E>) -> Result<()>,
    ) -> Result<()> {
        type Job<T> = Receiver<(Chunk<T>, Result<ChunkOutput>)>;
        let mut in_flight: VecDeque<Job<T>> = VecDeque::with_capacity(IN_FLIGHT);
        let oldest = |in_flight: &mut VecDeque<Job<T>>, take: &mut dyn FnMut(Taken<T, E>) -> Result<()>| {
            let job = in_flight.pop_front().expect("a job in flight");
            let (chunk, out) = job.recv().map_err(|_| Error::Thread("an extraction worker stopped".into()))?;
            take(Taken::Chunk(chunk, out?))
        };
        for piece in rx {
            match piece {
                Piece::Chunk(chunk) => {
                    let (done, result) = sync_channel(1);
                    jobs.spawn(move |_| {
                        let out = extract_chunk(self.p, &chunk, self.max_page, &self.run, &self.index);
                        let _ = done.send((chunk, out));
                    });
                    in_flight.push_back(result);
                    if in_flight.len() >= IN_FLIGHT {
                        oldest(&mut in_flight, take)?;
                    }
                }
                Piece::Event(e) => {
                    while !in_flight.is_empty() {
                        oldest(&mut in_flight, take)?;
                    }
                    take(Taken::Event(e))?;
                }
            }
        }
        while !in_flight.is_empty() {
            oldest(&mut in_flight, take)?;
        }
        Ok(())
    }
}
