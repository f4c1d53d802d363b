//! Transform: derived metrics computed by polars over the extracted batches, and dedupe.

pub mod dedupe;
pub mod derive;
pub mod ffi;
