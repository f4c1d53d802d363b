//! Load: Parquet tables in a warehouse directory, committed run by run.

pub mod commit;
pub mod delta;
pub mod digests;
pub mod hold;
pub mod index;
pub mod location;
pub mod parquet;
pub mod warehouse;

/// A setting in seconds from the environment variable `name`: a number ≥ 0, else `None` (unset or
/// not a number: the caller's default holds).
pub(crate) fn env_seconds(name: &str) -> Option<f64> {
    std::env::var(name).ok().and_then(|v| v.parse::<f64>().ok()).filter(|s| *s >= 0.0)
}
