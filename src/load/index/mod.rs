//! The dedupe index on disk: every hash of the warehouse's posts with the run that imported it, in
//! immutable sorted segments (`segment`).

pub mod segment;
