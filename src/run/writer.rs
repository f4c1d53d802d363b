//! The posts writer: joins a run's post rows into batches, derives their metrics (polars) and writes
//! them to the posts file — on a thread of its own (`quarry-writer`), so extraction goes on meanwhile,
//! or inline when the run has one thread.

use std::sync::mpsc::SyncSender;
use std::thread::JoinHandle;

use arrow::compute::concat_batches;
use arrow::record_batch::RecordBatch;

use crate::contract::schema;
use crate::error::{Error, Result};
use crate::load::parquet::TableWriter;
use crate::pipeline::Pipeline;
use crate::transform::derive::{derive, DeriveInputs};

/// Post rows waiting to be written: chunk batches without the derived columns, and the derivation
/// inputs of their rows in order.
#[derive(Default)]
pub struct PostsParts {
    pub batches: Vec<RecordBatch>,
    pub rows: usize,
    pub entries_valid: Vec<u32>,
    pub ids: Vec<Vec<Option<i64>>>,
}

/// Joins the parts into one batch, derives its metrics and writes it.
fn write_posts(p: &Pipeline, writer: &mut TableWriter, parts: PostsParts) -> Result<()> {
    let PostsParts { batches, entries_valid, ids, .. } = parts;
    let b = concat_batches(schema::posts_ref(), &batches).map_err(Error::stage("joining posts batches"))?;
    drop(batches);
    let b = derive(p, &b, &DeriveInputs { entries_valid: &entries_valid, ids: &ids })
        .map_err(Error::stage("deriving metrics"))?;
    Ok(writer.write(&b)?)
}

/// Where a run's post rows go. Parts arrive in order; with a thread, over a bounded channel, and the
/// first error stops the thread and comes back from the next `send` or from `finish`.
pub enum PostsSink {
    Inline { p: Box<Pipeline>, writer: Box<TableWriter> },
    Thread { tx: Option<SyncSender<PostsParts>>, handle: Option<JoinHandle<Result<TableWriter>>> },
}

impl PostsSink {
    /// Writes into `writer`, on a thread of its own when `own_thread`.
    pub fn new(p: &Pipeline, mut writer: TableWriter, own_thread: bool) -> Result<PostsSink> {
        let p = p.clone();
        if !own_thread {
            return Ok(PostsSink::Inline { p: Box::new(p), writer: Box::new(writer) });
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
            .map_err(Error::io("starting the posts writer thread"))?;
        Ok(PostsSink::Thread { tx: Some(tx), handle: Some(handle) })
    }

    /// Hands over the next parts.
    pub fn send(&mut self, parts: PostsParts) -> Result<()> {
        match self {
            PostsSink::Inline { p, writer } => write_posts(p, writer, parts),
            PostsSink::Thread { tx, handle } => {
                if tx.as_ref().expect("sink open until finish").send(parts).is_err() {
                    *tx = None;
                    return Err(join(handle).err().unwrap_or_else(|| Error::Thread("the posts writer stopped".into())));
                }
                Ok(())
            }
        }
    }

    /// Waits until every part is written; the writer, to close its file.
    pub fn finish(self) -> Result<TableWriter> {
        match self {
            PostsSink::Inline { writer, .. } => Ok(*writer),
            PostsSink::Thread { tx, mut handle } => {
                drop(tx);
                join(&mut handle)
            }
        }
    }
}

fn join(handle: &mut Option<JoinHandle<Result<TableWriter>>>) -> Result<TableWriter> {
    match handle.take().expect("joined once").join() {
        Ok(r) => r,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}
