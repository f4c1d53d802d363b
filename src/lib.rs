//! quarry: alphanode page dumps into a Parquet warehouse.
//!
//! The stages depend one way, each only on those above it (`tests/layering.rs` checks it):
//!
//! - `contract`: the warehouse tables, their schemas and write hints;
//! - `pipeline`: a pipeline file → a compiled `Pipeline` (patterns, entries, derive and output settings);
//! - `extract`: dump bytes → pages → records (or rejects) → Arrow batches;
//! - `transform`: derived metrics in polars, first-wins dedupe by hash;
//! - `load`: Parquet files, the warehouse layout, hash lists, the atomic commit;
//! - `error`: the library's error type and the exit code of each failure;
//! - `run`: the run that drives the stages (`import`, `rejects replay`);
//! - `query`, `report`: reading the warehouse back; `gen`: synthetic dumps.

pub mod contract;
pub mod pipeline;
pub mod extract;
pub mod transform;
pub mod load;
pub mod error;
pub mod run;
pub mod query;
pub mod report;
pub mod gen;

pub use error::{Error, Exit, Result};
