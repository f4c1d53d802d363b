//! Load: Parquet tables in a warehouse directory, committed run by run.

pub mod commit;
pub mod parquet;
pub mod schema;
pub mod warehouse;
