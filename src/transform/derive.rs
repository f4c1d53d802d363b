//! Derived columns, computed by polars: `*_norm`, `quality_composite`, `reading_time_est_min`,
//! `completeness`, `ids_consistent`.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int32Array, Int64Array};
use arrow::record_batch::RecordBatch;
use polars::prelude::*;

use super::ffi::{to_arrow, to_frame, BoundaryError};
use crate::contract::schema;
use crate::extract::batch;
use crate::extract::record::{Cell, Record};
use crate::pipeline::Pipeline;

/// Per-row inputs that are not posts columns.
pub struct DeriveInputs<'a> {
    /// Known entries present with a valid value, per row.
    pub entries_valid: &'a [u32],
    /// First integers of the `ids_consistent` columns, per row.
    pub ids: &'a [Vec<Option<i64>>],
}

fn score_name(k: usize) -> String {
    format!("score{k}")
}

/// Fills the derived columns of a posts batch (which holds nulls there) and returns the new batch.
pub fn derive(p: &Pipeline, batch: &RecordBatch, inputs: &DeriveInputs) -> Result<RecordBatch, BoundaryError> {
    let d = &p.derive;
    let c = &p.cols;
    let valid: ArrayRef = Arc::new(inputs.entries_valid.iter().map(|v| Some(*v as i32)).collect::<Int32Array>());
    let ids: Vec<ArrayRef> = (0..d.ids.len())
        .map(|k| Arc::new(inputs.ids.iter().map(|row| row[k]).collect::<Int64Array>()) as ArrayRef)
        .collect();
    let score_names: Vec<String> = (0..d.scores.len()).map(score_name).collect();
    let id_names: Vec<String> = (0..d.ids.len()).map(|k| format!("id{k}")).collect();
    let mut named: Vec<(&str, &ArrayRef)> = vec![("word_count", batch.column(c.word_count)), ("valid", &valid)];
    for (k, (score, _, _)) in d.scores.iter().enumerate() {
        named.push((&score_names[k], batch.column(*score)));
    }
    for (k, a) in ids.iter().enumerate() {
        named.push((&id_names[k], a));
    }
    let frame = to_frame(&named)?;

    let mut exprs = vec![
        (col("word_count").cast(DataType::Float64) / lit(d.words_per_minute)).alias("reading_time_est_min"),
        (col("valid").cast(DataType::Float64) / lit(p.entries.len() as f64)).alias("completeness"),
    ];
    let norm = |k: usize| col(score_names[k].as_str()).cast(DataType::Float64) / lit(100.0);
    let mut weighted = lit(0.0);
    let mut weights = lit(0.0);
    for (k, (_, _, w)) in d.scores.iter().enumerate() {
        exprs.push(norm(k).alias(format!("norm{k}")));
        weighted = weighted + norm(k).fill_null(lit(0.0)) * lit(*w);
        weights = weights + col(score_names[k].as_str()).is_not_null().cast(DataType::Float64) * lit(*w);
    }
    exprs.push(
        when(weights.clone().gt(lit(0.0))).then(weighted / weights).otherwise(lit(NULL)).alias("quality_composite"),
    );
    let ids_expr = if id_names.len() < 2 {
        lit(NULL).cast(DataType::Boolean)
    } else {
        let any_missing =
            id_names.iter().map(|n| col(n.as_str()).is_null()).reduce(|a, b| a.or(b)).expect("two or more");
        let all_equal = id_names
            .windows(2)
            .map(|w| col(w[0].as_str()).eq(col(w[1].as_str())))
            .reduce(|a, b| a.and(b))
            .expect("one pair");
        when(any_missing).then(lit(NULL).cast(DataType::Boolean)).otherwise(all_equal)
    };
    exprs.push(ids_expr.alias("ids_consistent"));
    let out = frame.lazy().select(exprs).collect()?;

    let mut columns = batch.columns().to_vec();
    let take = |name: &str| -> Result<ArrayRef, BoundaryError> { to_arrow(out.column(name)?.clone()) };
    columns[c.reading_time_est_min] = take("reading_time_est_min")?;
    columns[c.completeness] = take("completeness")?;
    columns[c.quality_composite] = cast_to(take("quality_composite")?, batch, c.quality_composite)?;
    columns[c.ids_consistent] = cast_to(take("ids_consistent")?, batch, c.ids_consistent)?;
    for (k, (_, norm_col, _)) in d.scores.iter().enumerate() {
        columns[*norm_col] = take(&format!("norm{k}"))?;
    }
    Ok(RecordBatch::try_new(batch.schema(), columns)?)
}

/// Records → a posts batch with its derived columns (the stage benchmark's transform; an import
/// builds its batches a row at a time instead).
pub fn posts_batch(p: &Pipeline, records: Vec<Record>) -> Result<RecordBatch, BoundaryError> {
    let entries_valid: Vec<u32> = records.iter().map(|r| r.entries_valid).collect();
    let ids: Vec<Vec<Option<i64>>> = records.iter().map(|r| r.ids.clone()).collect();
    let rows: Vec<Vec<Cell>> = records.into_iter().map(|r| r.cells).collect();
    let b = batch::batch(schema::posts_ref(), &rows)?;
    drop(rows);
    derive(p, &b, &DeriveInputs { entries_valid: &entries_valid, ids: &ids })
}

/// Casts a polars result to the column type of the warehouse schema (an all-null result may come back as Null).
fn cast_to(a: ArrayRef, batch: &RecordBatch, col: usize) -> Result<ArrayRef, BoundaryError> {
    let dt = batch.schema().field(col).data_type().clone();
    if a.data_type() == &dt {
        Ok(a)
    } else {
        Ok(arrow::compute::cast(&a, &dt)?)
    }
}
