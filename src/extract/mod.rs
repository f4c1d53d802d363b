//! Extract: dump bytes → pages → records (or rejects) → Arrow batches.

pub mod batch;
pub mod page;
pub mod read;
pub mod record;
pub mod split;
pub mod text;
pub mod value;
