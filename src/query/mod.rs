//! `quarry query`: polars SQL over the warehouse tables `posts`, `rejects`, `duplicates` and `runs`.
//!
//! Each table the query names (case-insensitively, found by polars' own SQL parser) is a lazy scan
//! over the Parquet files of the finished runs only (a table file's stem is its run id; a run is
//! finished once its `runs` file exists), so polars reads only what the plan needs. The result goes
//! out as an aligned table, CSV or JSON Lines (`write`).

pub(crate) mod engine;
mod scan;
mod write;

use std::collections::BTreeSet;
use std::io;
use std::path::PathBuf;

use arrow::error::ArrowError;
use parquet::errors::ParquetError;
use polars::prelude::{DataFrame, LazyFrame, PolarsError};
use polars::sql::{extract_table_identifiers, SQLContext};

use crate::contract::Table;
use crate::error::Error;
use crate::load::delta::DeltaError;
use crate::load::location::Location;
use crate::load::warehouse::{Warehouse, WarehouseError};
use crate::transform::ffi::BoundaryError;

pub use engine::collect;
pub use write::{batches, texts, write};

/// The partition column added to `posts`.
pub const INGEST_DATE: &str = "ingest_date";

/// How `quarry query` prints its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// An aligned text table with a row count.
    Table,
    /// CSV with a header row and LF line ends; null is an empty field; lists and structs as JSON text.
    Csv,
    /// JSON Lines: one JSON object per row, keys in column order, null as `null`.
    Json,
}

/// What can go wrong in a query. `is_usage` tells the errors of the query text (exit 2) from those
/// of the warehouse or the output.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// The query reads from a relation that is neither a table nor one of its own.
    #[error("query: relation '{name}' is not a table; the tables are {}", Table::names())]
    UnknownTable { name: String },
    /// Polars could not parse, plan or run the query (bad SQL, unknown column, type error).
    #[error("query: {0}")]
    Sql(#[source] PolarsError),
    /// Polars could not read the table files.
    #[error("query: cannot read the tables: {0}")]
    Read(#[source] PolarsError),
    /// A table file is not a readable Parquet file.
    #[error("{}: cannot read this table file: {source}", path.display())]
    BadFile {
        path: PathBuf,
        #[source]
        source: ParquetError,
    },
    /// The warehouse folder could not be listed.
    #[error(transparent)]
    Warehouse(#[from] WarehouseError),
    /// A table's Delta log could not be read.
    #[error("delta: {0}")]
    Delta(#[from] DeltaError),
    /// A result column could not cross from polars to Arrow.
    #[error("query: cannot convert the result: {0}")]
    Convert(#[from] BoundaryError),
    /// A result column could not be formatted.
    #[error("query: cannot format the result: {0}")]
    Format(#[from] ArrowError),
    /// The output could not be written (a closed pipe among others).
    #[error("query: cannot write the result: {0}")]
    Write(#[source] io::Error),
}

impl QueryError {
    /// The query itself is wrong: a usage error.
    pub fn is_usage(&self) -> bool {
        matches!(self, QueryError::UnknownTable { .. } | QueryError::Sql(_))
    }

    /// A polars error: reading a file is I/O, anything else is the query's fault.
    fn from_polars(e: PolarsError) -> QueryError {
        let mut root = &e;
        while let PolarsError::Context { error, .. } | PolarsError::ExprContext { error, .. } = root {
            root = error;
        }
        if matches!(root, PolarsError::IO { .. }) {
            QueryError::Read(e)
        } else {
            QueryError::Sql(e)
        }
    }
}

/// Reads tables of finished runs from a warehouse into polars.
#[derive(Debug, Clone)]
pub struct Reader {
    wh: Warehouse,
    finished: BTreeSet<String>,
}

impl Reader {
    /// Opens a warehouse for reading.
    pub fn open(location: &Location) -> Result<Reader, QueryError> {
        let wh = Warehouse::open(location)?;
        let finished = scan::finished(&wh)?;
        Ok(Reader { wh, finished })
    }

    /// Run ids of the finished runs.
    pub fn finished(&self) -> &BTreeSet<String> {
        &self.finished
    }

    /// A table (any case) as a lazy scan of its finished runs' files; `posts` with `ingest_date`.
    pub fn table(&self, name: &str) -> Result<LazyFrame, QueryError> {
        let table = Table::from_name(name).ok_or_else(|| QueryError::UnknownTable { name: name.to_string() })?;
        scan::table(table, &scan::files(&self.wh, &self.finished, table)?)
    }

    /// One SQL statement as a lazy frame over the tables it names, each registered under every
    /// spelling the query uses.
    pub fn plan(&self, sql: &str) -> Result<LazyFrame, QueryError> {
        Ok(self.planned(sql)?.0)
    }

    /// Runs one SQL statement to its result on polars' streaming engine.
    pub fn sql(&self, sql: &str) -> Result<DataFrame, QueryError> {
        let (plan, files) = self.planned(sql)?;
        collect(plan).map_err(|e| blame(e, &files))
    }

    /// Runs a plan built on `table` frames on the streaming engine; an unreadable table file that
    /// made it fail is named.
    pub fn run(&self, plan: LazyFrame) -> Result<DataFrame, QueryError> {
        // A folder that cannot be listed now leaves the polars error as it is.
        collect(plan).map_err(|e| blame(e, &self.all_files().unwrap_or_default()))
    }

    /// The files of every table that belong to finished runs.
    fn all_files(&self) -> Result<Vec<PathBuf>, QueryError> {
        let tables = Table::ALL.into_iter().map(|t| scan::files(&self.wh, &self.finished, t));
        Ok(tables.collect::<Result<Vec<_>, _>>()?.concat())
    }

    /// The plan and the files it reads.
    fn planned(&self, sql: &str) -> Result<(LazyFrame, Vec<PathBuf>), QueryError> {
        let names = extract_table_identifiers(sql, false, true).map_err(QueryError::Sql)?;
        let mut ctx = SQLContext::new();
        let mut files = Vec::new();
        let mut others = Vec::new();
        for name in names {
            match Table::from_name(&name) {
                Some(table) => {
                    let table_files = scan::files(&self.wh, &self.finished, table)?;
                    ctx.register(&name, scan::table(table, &table_files)?);
                    files.extend(table_files);
                }
                // A common table expression, a table function, or a mistake polars will report.
                None => others.push(name),
            }
        }
        match ctx.execute(sql) {
            Ok(plan) => Ok((plan, files)),
            Err(e) => match others.iter().find(|n| is_missing_relation(&e, n)) {
                Some(name) => Err(QueryError::UnknownTable { name: name.clone() }),
                None => Err(blame(e, &files)),
            },
        }
    }
}

/// A polars error as a query error, naming the unreadable table file behind it if there is one
/// (polars' Parquet errors do not say which file).
fn blame(e: PolarsError, files: &[PathBuf]) -> QueryError {
    let of_the_query =
        matches!(e, PolarsError::SQLInterface(_) | PolarsError::SQLSyntax(_) | PolarsError::ColumnNotFound(_));
    if !of_the_query {
        if let Some(bad) = files.iter().find_map(|f| scan::check_file(f).err()) {
            return bad;
        }
    }
    QueryError::from_polars(e)
}

/// Whether polars failed because no table or common table expression has this name.
fn is_missing_relation(e: &PolarsError, name: &str) -> bool {
    matches!(e, PolarsError::SQLInterface(_)) && e.to_string().contains(&format!("relation '{name}' was not found"))
}

/// `quarry query`: runs the SQL over the warehouse and writes the result to `out` in a format.
pub fn query(warehouse: &Location, sql: &str, format: Format, out: &mut dyn io::Write) -> crate::Result<()> {
    let result = Reader::open(warehouse)?.sql(sql)?;
    Ok(write(&result, format, out)?)
}

impl From<QueryError> for Error {
    fn from(e: QueryError) -> Error {
        match e {
            QueryError::UnknownTable { .. } | QueryError::Sql(_) => Error::Query(Box::new(e)),
            QueryError::Warehouse(e) => Error::Warehouse(e),
            QueryError::Delta(e) => Error::Delta(e),
            QueryError::Write(source) => Error::Io { what: "writing the query's result".into(), source },
            QueryError::Read(_) | QueryError::BadFile { .. } | QueryError::Convert(_) | QueryError::Format(_) => {
                Error::Reader(Box::new(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::physical::Plan;
    use std::fs;
    use std::sync::Arc;

    use arrow::array::{new_null_array, ArrayRef, RecordBatch, StringArray};
    use arrow::datatypes::SchemaRef;
    use parquet::arrow::ArrowWriter;
    use std::path::Path;

    /// A table file whose `run_id`/`hash` columns are filled in and every other column is null.
    fn write_file(path: &Path, schema: SchemaRef, run_id: &str, rows: usize) {
        let columns: Vec<ArrayRef> = schema
            .fields()
            .iter()
            .map(|f| match f.name().as_str() {
                "run_id" => Arc::new(StringArray::from(vec![run_id; rows])) as ArrayRef,
                "hash" => Arc::new(StringArray::from((0..rows).map(|i| format!("{run_id}-{i}")).collect::<Vec<_>>())),
                _ => new_null_array(f.data_type(), rows),
            })
            .collect();
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut w = ArrowWriter::try_new(fs::File::create(path).unwrap(), schema.clone(), None).unwrap();
        w.write(&RecordBatch::try_new(schema, columns).unwrap()).unwrap();
        w.close().unwrap();
    }

    /// Runs `r1` (2 posts, 3 rejects) and `r3` (1 post, a day later) finished, `r2` without its runs
    /// row (1 post, 1 reject).
    fn warehouse() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let wh = dir.path();
        write_file(&wh.join("runs/r1.parquet"), Table::Runs.schema(), "r1", 1);
        write_file(&wh.join("posts/ingest_date=2026-11-26/r1.parquet"), Table::Posts.schema(), "r1", 2);
        write_file(&wh.join("runs/r3.parquet"), Table::Runs.schema(), "r3", 1);
        write_file(&wh.join("posts/ingest_date=2026-11-28/r3.parquet"), Table::Posts.schema(), "r3", 1);
        write_file(&wh.join("rejects/r1.parquet"), Table::Rejects.schema(), "r1", 3);
        write_file(&wh.join("posts/ingest_date=2026-11-27/r2.parquet"), Table::Posts.schema(), "r2", 1);
        write_file(&wh.join("rejects/r2.parquet"), Table::Rejects.schema(), "r2", 1);
        dir
    }

    fn count(reader: &Reader, sql: &str) -> Vec<Option<String>> {
        texts(&reader.sql(sql).unwrap(), "n").unwrap()
    }

    #[test]
    fn table_names_ignore_case() {
        let dir = warehouse();
        let reader = Reader::open(&dir.path().into()).unwrap();
        assert_eq!(count(&reader, "SELECT count(*) AS n FROM posts"), [Some("3".into())]);
        assert_eq!(count(&reader, "SELECT count(*) AS n FROM Posts"), [Some("3".into())]);
        assert_eq!(count(&reader, "SELECT count(*) AS n FROM REJECTS"), [Some("3".into())]);
        assert_eq!(
            count(&reader, "SELECT count(*) AS n FROM posts p JOIN Posts q ON p.hash = q.hash"),
            [Some("3".into())]
        );
        assert_eq!(count(&reader, "WITH x AS (SELECT * FROM RUNS) SELECT count(*) AS n FROM x"), [Some("2".into())]);
        // polars counts a union as a UInt128 sum of its parts (the `dtype-u128` feature).
        let union = "SELECT count(*) AS n FROM (SELECT run_id FROM runs UNION ALL SELECT run_id FROM RUNS) t";
        assert_eq!(count(&reader, union), [Some("4".into())]);
    }

    #[test]
    fn unknown_tables_and_columns_are_usage_errors() {
        let dir = warehouse();
        let reader = Reader::open(&dir.path().into()).unwrap();
        let e = reader.sql("SELECT * FROM Nope").unwrap_err();
        assert!(matches!(&e, QueryError::UnknownTable { name } if name == "Nope"), "{e:?}");
        assert!(e.is_usage());
        assert_eq!(
            e.to_string(),
            "query: relation 'Nope' is not a table; the tables are posts, rejects, duplicates, runs"
        );
        let e = reader.sql("SELECT nope FROM runs").unwrap_err();
        assert!(matches!(e, QueryError::Sql(_)) && e.is_usage(), "{e:?}");
        assert!(reader.sql("SELEC 1").unwrap_err().is_usage());
        assert_eq!(reader.table("RUNS").unwrap().collect().unwrap().height(), 2);
    }

    #[test]
    fn only_finished_runs_are_read_and_posts_have_their_ingest_date() {
        let dir = warehouse();
        let reader = Reader::open(&dir.path().into()).unwrap();
        let sql = "SELECT run_id, ingest_date, count(*) AS n FROM posts GROUP BY run_id, ingest_date ORDER BY run_id";
        let df = reader.sql(sql).unwrap();
        assert_eq!(texts(&df, "run_id").unwrap(), [Some("r1".into()), Some("r3".into())]);
        assert_eq!(texts(&df, "ingest_date").unwrap(), [Some("2026-11-26".into()), Some("2026-11-28".into())]);
        assert_eq!(texts(&df, "n").unwrap(), [Some("2".into()), Some("1".into())]);
        assert_eq!(df.column(INGEST_DATE).unwrap().dtype(), &polars::prelude::DataType::Date);
        assert_eq!(count(&reader, "SELECT count(*) AS n FROM rejects WHERE run_id = 'r2'"), [Some("0".into())]);
    }

    #[test]
    fn an_unreadable_file_is_named() {
        let dir = warehouse();
        let file = dir.path().join("rejects/r1.parquet");
        let bytes = fs::read(&file).unwrap();
        fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
        let reader = Reader::open(&dir.path().into()).unwrap();
        let e = reader.sql("SELECT count(*) AS n FROM rejects").unwrap_err();
        assert!(matches!(&e, QueryError::BadFile { path, .. } if path == &file), "{e:?}");
        assert!(!e.is_usage());
        // Queries that do not read the file still run.
        assert_eq!(count(&reader, "SELECT count(*) AS n FROM posts"), [Some("3".into())]);
    }

    #[test]
    fn a_plain_aggregation_streams_from_the_scans_that_read_only_what_it_needs() {
        let dir = warehouse();
        let reader = Reader::open(&dir.path().into()).unwrap();
        let sql = "SELECT difficulty, count(*) AS n, avg(quality_composite) AS q FROM posts \
                   WHERE run_id = 'r1' GROUP BY difficulty";
        let plan = Plan::of(&reader.plan(sql).unwrap());
        assert_eq!(plan.holds_scanned_rows(), None, "{}", plan.dot());
        assert!(plan.kinds().contains(&"group-by"), "{}", plan.dot());
        let fallbacks = ["in-memory-map", "in-memory-join", "columnar-function"];
        assert!(!plan.kinds().iter().any(|k| fallbacks.contains(k)), "{}", plan.dot());
        // The scan of each finished run's ingest_date folder reads three columns and filters as it reads.
        assert_eq!(plan.kinds().iter().filter(|k| k.starts_with("multi-scan")).count(), 2, "{}", plan.dot());
        assert_eq!(plan.dot().matches("project: 3 total, 3 from file").count(), 2, "{}", plan.dot());
        assert_eq!(plan.dot().matches(r#"filter: col(\"run_id\") == \"r1\""#).count(), 2, "{}", plan.dot());
    }

    #[test]
    fn a_median_per_group_is_held_in_memory() {
        let dir = warehouse();
        let reader = Reader::open(&dir.path().into()).unwrap();
        let plan = Plan::of(&reader.plan("SELECT topic, median(quality_composite) FROM posts GROUP BY topic").unwrap());
        assert_eq!(plan.holds_scanned_rows(), Some("in-memory-map"), "{}", plan.dot());
    }

    #[test]
    fn tables_without_files_have_the_contract_columns() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("runs")).unwrap();
        let reader = Reader::open(&dir.path().into()).unwrap();
        assert_eq!(count(&reader, "SELECT count(*) AS n FROM posts"), [Some("0".into())]);
        let posts = reader.sql("SELECT * FROM posts").unwrap();
        assert_eq!(posts.width(), Table::Posts.schema().fields().len() + 1);
        assert_eq!(posts.column(INGEST_DATE).unwrap().dtype(), &polars::prelude::DataType::Date);
        assert_eq!(reader.sql("SELECT reason FROM rejects").unwrap().height(), 0);
    }
}
