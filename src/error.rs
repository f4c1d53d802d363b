//! The error every command of the library returns, and the exit code of each kind of failure: the
//! one place where a failure becomes an exit code (`Error::exit_code`).

use std::io;

use crate::extract::read::InputError;
use crate::load::commit::{CommitError, LockedError};
use crate::load::delta::DeltaError;
use crate::load::index::segment::IndexError;
use crate::load::parquet::WriteError;
use crate::load::warehouse::WarehouseError;
use crate::pipeline::ConfigError;

/// `Result` with quarry's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The exit codes of the `quarry` command (the README's table explains each to an operator).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// The command finished (a run's rejected pages are data, not failure).
    Ok = 0,
    /// An input could not be read, or the warehouse could not be written; nothing was committed.
    Failed = 1,
    /// A bad command line, pipeline file or query.
    Config = 2,
    /// Another run got in the way: the warehouse lock was not free in time, this run's lease lapsed,
    /// or another run imported the same files meanwhile. Nothing of this run counts: run it again.
    Locked = 3,
    /// The run finished, but some input could not be read to its end (see `rejects`).
    BadInput = 4,
    /// The run finished, but more pages were rejected than `--max-reject-ratio` allows.
    RejectRatio = 5,
}

impl From<Exit> for u8 {
    fn from(e: Exit) -> u8 {
        e as u8
    }
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A command-line value that makes no sense.
    #[error("{0}")]
    Usage(String),
    /// The pipeline file cannot be used.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A query that cannot run as written (bad SQL, an unknown table or column, a type error).
    #[error("{0}")]
    Query(Box<dyn std::error::Error + Send + Sync>),
    /// Reading the warehouse back (a query or the report) failed on its files or on the result.
    #[error("{0}")]
    Reader(Box<dyn std::error::Error + Send + Sync>),
    /// Another run holds the warehouse.
    #[error(transparent)]
    Locked(#[from] LockedError),
    /// An input file or folder cannot be used.
    #[error(transparent)]
    Input(#[from] InputError),
    /// A warehouse file or folder could not be read or written.
    #[error(transparent)]
    Warehouse(#[from] WarehouseError),
    /// A table file could not be written.
    #[error(transparent)]
    Write(#[from] WriteError),
    /// The dedupe index could not be read, written or repaired.
    #[error("index: {0}")]
    Index(#[from] IndexError),
    /// A table's Delta log could not be read or committed to.
    #[error("delta: {0}")]
    Delta(#[from] DeltaError),
    /// Reading or writing a file (or a stream) failed; `what` names it and what quarry was doing.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    /// A stage failed on data it was handed (Arrow, Parquet or polars); `what` says which.
    #[error("{what}: {source}")]
    Stage {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A thread of the run stopped without a result (it panicked or could not start).
    #[error("{0}")]
    Thread(String),
    /// Another run got in this one's way (it imported the same files meanwhile): nothing of this
    /// run counts; running it again does the rest.
    #[error("{0}")]
    Raced(String),
}

impl Error {
    /// The exit code of this failure.
    pub fn exit_code(&self) -> Exit {
        match self {
            Error::Usage(_) | Error::Config(_) | Error::Query(_) => Exit::Config,
            Error::Locked(_) | Error::Raced(_) => Exit::Locked,
            Error::Input(_)
            | Error::Warehouse(_)
            | Error::Write(_)
            | Error::Index(_)
            | Error::Delta(_)
            | Error::Io { .. }
            | Error::Reader(_)
            | Error::Stage { .. }
            | Error::Thread(_) => Exit::Failed,
        }
    }

    /// True when the failure is a closed output pipe (`quarry query … | head`): not a failure.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Error::Io { source, .. } if source.kind() == io::ErrorKind::BrokenPipe)
    }

    /// An I/O failure of `what`.
    pub fn io(what: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
        move |source| Error::Io { what: what.into(), source }
    }

    /// A stage's failure on `what`.
    pub fn stage<E: std::error::Error + Send + Sync + 'static>(what: impl Into<String>) -> impl FnOnce(E) -> Error {
        move |source| Error::Stage { what: what.into(), source: Box::new(source) }
    }
}

impl From<CommitError> for Error {
    fn from(e: CommitError) -> Error {
        match e {
            CommitError::Locked(e) => Error::Locked(e),
            CommitError::Warehouse(e) => Error::Warehouse(e),
            CommitError::Write(e) => Error::Write(e),
            CommitError::Delta(e) => Error::Delta(e),
            CommitError::Index(e) => Error::Index(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_has_its_exit_code() {
        assert_eq!(Error::Usage("x".into()).exit_code(), Exit::Config);
        let locked = LockedError { path: "wh".into(), holder: "pid 1".into(), lost: false };
        assert_eq!(Error::from(CommitError::Locked(locked)).exit_code(), Exit::Locked);
        let pipe = Error::io("stdout")(io::Error::from(io::ErrorKind::BrokenPipe));
        assert!(pipe.is_broken_pipe());
        assert_eq!(pipe.exit_code(), Exit::Failed);
        assert_eq!(u8::from(Exit::RejectRatio), 5);
    }
}
