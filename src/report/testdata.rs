//! A small warehouse for the report's tests: one finished run whose posts have chosen topics and
//! `quality_composite` values, every other column null (rejects and duplicates one null row each).

use std::fs;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{new_null_array, ArrayRef, Float64Array, RecordBatch, StringArray};
use arrow::datatypes::SchemaRef;
use parquet::arrow::ArrowWriter;

use crate::contract::Table;

/// Writes a table file of `rows` rows: the columns `fill` gives, the rest null.
fn write(path: &Path, schema: SchemaRef, rows: usize, fill: impl Fn(&str) -> Option<ArrayRef>) {
    let columns: Vec<ArrayRef> =
        schema.fields().iter().map(|f| fill(f.name()).unwrap_or_else(|| new_null_array(f.data_type(), rows))).collect();
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut w = ArrowWriter::try_new(fs::File::create(path).unwrap(), schema.clone(), None).unwrap();
    w.write(&RecordBatch::try_new(schema, columns).unwrap()).unwrap();
    w.close().unwrap();
}

/// A warehouse whose posts are these (topic, quality_composite) pairs, with distinct hashes.
pub fn warehouse(posts: &[(Option<&str>, Option<f64>)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let run_id = |rows: usize| Some(Arc::new(StringArray::from(vec!["r1"; rows])) as ArrayRef);
    write(&dir.path().join("runs/r1.parquet"), Table::Runs.schema(), 1, |c| {
        (c == "run_id").then(|| run_id(1)).flatten()
    });
    for table in [Table::Rejects, Table::Duplicates] {
        let path = dir.path().join(format!("{table}/r1.parquet"));
        write(&path, table.schema(), 1, |c| (c == "run_id").then(|| run_id(1)).flatten());
    }
    let topics: StringArray = posts.iter().map(|p| p.0).collect();
    let values: Float64Array = posts.iter().map(|p| p.1).collect();
    let hashes = StringArray::from((0..posts.len()).map(|i| format!("h{i}")).collect::<Vec<_>>());
    let path = dir.path().join("posts/ingest_date=2026-11-26/r1.parquet");
    write(&path, Table::Posts.schema(), posts.len(), |c| match c {
        "topic" => Some(Arc::new(topics.clone()) as ArrayRef),
        "quality_composite" => Some(Arc::new(values.clone())),
        "hash" => Some(Arc::new(hashes.clone())),
        "run_id" => run_id(posts.len()),
        _ => None,
    });
    dir
}

/// Posts over 20 topics (topic `tK` has 3K + 1 posts, so the top ones are the last, but `t04` ties
/// with `t05` for the last top place), values with repeats and nulls, and a few posts without a topic.
pub fn posts() -> Vec<(Option<String>, Option<f64>)> {
    let mut posts = Vec::new();
    for k in 0..20u32 {
        let n = if k == 4 { 16 } else { 3 * k + 1 };
        for i in 0..n {
            // A few distinct values per topic, some posts without one.
            let value = (i % 7 != 3).then(|| f64::from((i * 7919 + k * 31) % 23) / 22.0);
            posts.push((Some(format!("t{k:02}")), value));
        }
    }
    posts.extend([(None, Some(0.5)), (None, Some(0.25)), (None, None), (None, Some(0.5))]);
    posts
}
