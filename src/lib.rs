//! quarry: alphanode page dumps into a Parquet warehouse.
//!
//! extract (split pages, scrape fields into Arrow) → transform (polars: derived metrics, dedupe)
//! → load (Parquet tables, committed run by run).

pub mod extract;
pub mod gen;
pub mod import;
pub mod load;
pub mod pipeline;
pub mod progress;
pub mod query;
pub mod replay;
pub mod report;
pub mod transform;
