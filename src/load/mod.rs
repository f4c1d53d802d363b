//! Load: Parquet tables in a warehouse directory, committed run by run.

pub mod commit;
pub mod delta;
pub mod hold;
pub mod index;
pub mod location;
pub mod parquet;
pub mod warehouse;
