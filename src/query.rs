//! `quarry query`: polars SQL over the warehouse tables `posts`, `rejects`, `duplicates` and `runs`.
//!
//! Only files of finished runs are read (a table file's stem is its run id; a run is finished once its
//! `runs` file exists), with the parquet crate's Arrow reader; the batches cross into polars without a
//! copy (`transform::ffi`). `posts` gains `ingest_date` (a date, from the `ingest_date=` folder), as
//! DuckDB's hive partitioning shows it.
//!
//! Only the columns the SQL can use are read: a table is loaded when its name appears as a word in
//! the query, and of it the columns whose names appear as words (outside string literals). A `*`
//! other than `count(*)`, `COLUMNS(…)` or `NATURAL` joins read every column; so does a retry when
//! polars reports a missing column. Over-reading is harmless, so the rule only has to never miss.

use std::collections::{BTreeSet, HashSet};
use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use arrow::array::{new_empty_array, Array, ArrayRef, AsArray, NullArray, StringArray};
use arrow::datatypes::{self as adt, DataType, Field, TimeUnit};
use arrow::temporal_conversions::{as_date, as_datetime};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;
use polars::prelude::{DataFrame, IntoLazy, PolarsError};
use polars::sql::SQLContext;

use crate::contract::Table;
use crate::load::warehouse::Warehouse;

const POSTS: &str = "posts";
const RUNS: &str = "runs";
use crate::transform::ffi;

/// The tables a query can name.
pub const TABLES: [&str; 4] = ["posts", "rejects", "duplicates", "runs"];
/// The partition column added to `posts`.
pub const INGEST_DATE: &str = "ingest_date";

/// How `quarry query` prints its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// An aligned text table with a row count.
    Table,
    /// RFC 4180 CSV with a header row; null is an empty field; lists and structs as JSON text.
    Csv,
    /// JSON Lines: one JSON object per row, keys in column order.
    Json,
}

/// A query's result: column names and Arrow arrays of equal length.
#[derive(Debug, Clone)]
pub struct ResultSet {
    /// Column names, in order.
    pub names: Vec<String>,
    /// One array per column.
    pub columns: Vec<ArrayRef>,
}

impl ResultSet {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.columns.first().map_or(0, |c| c.len())
    }

    /// Index of a column by name.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// The value at `row` of the column `name` (Null if there is no such column).
    pub fn value(&self, name: &str, row: usize) -> Val {
        self.index(name).map_or(Val::Null, |c| Val::of(&self.columns[c], row))
    }

    /// Renders the result in a format.
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Table => self.render_table(),
            Format::Csv => self.render_csv(),
            Format::Json => self.render_json(),
        }
    }

    fn render_table(&self) -> String {
        const MAX_CELL: usize = 60;
        let rows = self.rows();
        let mut cells: Vec<Vec<String>> = Vec::with_capacity(rows);
        let mut right = vec![true; self.columns.len()];
        for (c, col) in self.columns.iter().enumerate() {
            right[c] = col.data_type().is_numeric();
        }
        for r in 0..rows {
            cells.push(self.columns.iter().map(|col| truncate(&Val::of(col, r).display(), MAX_CELL)).collect());
        }
        let mut widths: Vec<usize> = self.names.iter().map(|n| n.chars().count()).collect();
        for row in &cells {
            for (c, s) in row.iter().enumerate() {
                widths[c] = widths[c].max(s.chars().count());
            }
        }
        let mut out = String::new();
        let line = |out: &mut String, vals: &[String]| {
            let mut l = String::new();
            for (c, v) in vals.iter().enumerate() {
                if c > 0 {
                    l.push_str("  ");
                }
                let pad = widths[c] - v.chars().count();
                if right[c] {
                    l.extend(std::iter::repeat_n(' ', pad));
                    l.push_str(v);
                } else {
                    l.push_str(v);
                    l.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push_str(l.trim_end());
            out.push('\n');
        };
        line(&mut out, &self.names);
        let rules: Vec<String> = widths.iter().map(|w| "─".repeat(*w)).collect();
        line(&mut out, &rules);
        for row in &cells {
            line(&mut out, row);
        }
        let _ = writeln!(out, "({rows} row{})", if rows == 1 { "" } else { "s" });
        out
    }

    fn render_csv(&self) -> String {
        let mut out = String::new();
        let header: Vec<String> = self.names.iter().map(|n| csv_field(n)).collect();
        out.push_str(&header.join(","));
        out.push_str("\r\n");
        for r in 0..self.rows() {
            let fields: Vec<String> = self
                .columns
                .iter()
                .map(|col| match Val::of(col, r) {
                    Val::Null => String::new(),
                    v => csv_field(&v.text()),
                })
                .collect();
            out.push_str(&fields.join(","));
            out.push_str("\r\n");
        }
        out
    }

    fn render_json(&self) -> String {
        let mut out = String::new();
        for r in 0..self.rows() {
            out.push('{');
            for (c, col) in self.columns.iter().enumerate() {
                if c > 0 {
                    out.push(',');
                }
                out.push_str(&json_string(&self.names[c]));
                out.push(':');
                Val::of(col, r).write_json(&mut out);
            }
            out.push_str("}\n");
        }
        out
    }
}

/// One cell as plain data.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    /// Text; also dates (`YYYY-MM-DD`), timestamps (RFC 3339) and binary (as UTF-8, lossy).
    Str(String),
    List(Vec<Val>),
    Struct(Vec<(String, Val)>),
}

impl Val {
    /// The value at `row` of an Arrow array.
    pub fn of(a: &ArrayRef, row: usize) -> Val {
        if a.is_null(row) {
            return Val::Null;
        }
        match a.data_type() {
            DataType::Null => Val::Null,
            DataType::Boolean => Val::Bool(a.as_boolean().value(row)),
            DataType::Int8 => Val::Int(a.as_primitive::<adt::Int8Type>().value(row).into()),
            DataType::Int16 => Val::Int(a.as_primitive::<adt::Int16Type>().value(row).into()),
            DataType::Int32 => Val::Int(a.as_primitive::<adt::Int32Type>().value(row).into()),
            DataType::Int64 => Val::Int(a.as_primitive::<adt::Int64Type>().value(row)),
            DataType::UInt8 => Val::UInt(a.as_primitive::<adt::UInt8Type>().value(row).into()),
            DataType::UInt16 => Val::UInt(a.as_primitive::<adt::UInt16Type>().value(row).into()),
            DataType::UInt32 => Val::UInt(a.as_primitive::<adt::UInt32Type>().value(row).into()),
            DataType::UInt64 => Val::UInt(a.as_primitive::<adt::UInt64Type>().value(row)),
            DataType::Float32 => Val::Float(a.as_primitive::<adt::Float32Type>().value(row).into()),
            DataType::Float64 => Val::Float(a.as_primitive::<adt::Float64Type>().value(row)),
            DataType::Utf8 => Val::Str(a.as_string::<i32>().value(row).to_string()),
            DataType::LargeUtf8 => Val::Str(a.as_string::<i64>().value(row).to_string()),
            DataType::Utf8View => Val::Str(a.as_string_view().value(row).to_string()),
            DataType::Binary => Val::Str(String::from_utf8_lossy(a.as_binary::<i32>().value(row)).into_owned()),
            DataType::LargeBinary => Val::Str(String::from_utf8_lossy(a.as_binary::<i64>().value(row)).into_owned()),
            DataType::BinaryView => Val::Str(String::from_utf8_lossy(a.as_binary_view().value(row)).into_owned()),
            DataType::Date32 => {
                let v = a.as_primitive::<adt::Date32Type>().value(row);
                as_date::<adt::Date32Type>(v.into()).map_or(Val::Null, |d| Val::Str(d.format("%Y-%m-%d").to_string()))
            }
            DataType::Timestamp(unit, tz) => {
                let (v, dt) = match unit {
                    TimeUnit::Second => {
                        let v = a.as_primitive::<adt::TimestampSecondType>().value(row);
                        (v, as_datetime::<adt::TimestampSecondType>(v))
                    }
                    TimeUnit::Millisecond => {
                        let v = a.as_primitive::<adt::TimestampMillisecondType>().value(row);
                        (v, as_datetime::<adt::TimestampMillisecondType>(v))
                    }
                    TimeUnit::Microsecond => {
                        let v = a.as_primitive::<adt::TimestampMicrosecondType>().value(row);
                        (v, as_datetime::<adt::TimestampMicrosecondType>(v))
                    }
                    TimeUnit::Nanosecond => {
                        let v = a.as_primitive::<adt::TimestampNanosecondType>().value(row);
                        (v, as_datetime::<adt::TimestampNanosecondType>(v))
                    }
                };
                // The warehouse stores UTC only; a zone marks the value as an instant.
                let z = if tz.is_some() { "Z" } else { "" };
                dt.map_or(Val::Int(v), |d| Val::Str(format!("{}{z}", d.format("%Y-%m-%dT%H:%M:%S%.6f"))))
            }
            DataType::List(_) => list_vals(a.as_list::<i32>().value(row)),
            DataType::LargeList(_) => list_vals(a.as_list::<i64>().value(row)),
            DataType::FixedSizeList(..) => list_vals(a.as_fixed_size_list().value(row)),
            DataType::Map(..) => list_vals(Arc::new(a.as_map().value(row))),
            DataType::Struct(fields) => {
                let s = a.as_struct();
                Val::Struct(fields.iter().zip(s.columns()).map(|(f, c)| (f.name().clone(), Val::of(c, row))).collect())
            }
            _ => match ArrayFormatter::try_new(a.as_ref(), &FormatOptions::default()) {
                Ok(f) => Val::Str(f.value(row).to_string()),
                Err(_) => Val::Str(format!("<{}>", a.data_type())),
            },
        }
    }

    /// As an i64 when it is a whole number.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Val::Int(v) => Some(*v),
            Val::UInt(v) => i64::try_from(*v).ok(),
            Val::Float(f) if f.fract() == 0.0 => Some(*f as i64),
            _ => None,
        }
    }

    /// As an f64 when it is a number.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Val::Int(v) => Some(*v as f64),
            Val::UInt(v) => Some(*v as f64),
            Val::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// As text: strings as they are, anything else as in `text`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Val::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The value as one line of text for CSV: strings as they are, lists and structs as JSON.
    pub fn text(&self) -> String {
        match self {
            Val::Null => String::new(),
            Val::Bool(b) => b.to_string(),
            Val::Int(v) => v.to_string(),
            Val::UInt(v) => v.to_string(),
            Val::Float(f) => float_text(*f),
            Val::Str(s) => s.clone(),
            Val::List(_) | Val::Struct(_) => {
                let mut s = String::new();
                self.write_json(&mut s);
                s
            }
        }
    }

    /// The value for an aligned table: one line, floats to 6 decimals, `null` for null.
    pub fn display(&self) -> String {
        match self {
            Val::Null => "null".into(),
            Val::Float(f) if f.is_finite() => {
                let s = format!("{f:.6}");
                let s = s.trim_end_matches('0');
                s.strip_suffix('.').unwrap_or(s).to_string()
            }
            Val::Str(s) => s.escape_debug().to_string(),
            v => v.text(),
        }
    }

    /// Appends the value as JSON.
    pub fn write_json(&self, out: &mut String) {
        match self {
            Val::Null => out.push_str("null"),
            Val::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Val::Int(v) => out.push_str(&v.to_string()),
            Val::UInt(v) => out.push_str(&v.to_string()),
            Val::Float(f) => match serde_json::Number::from_f64(*f) {
                Some(n) => out.push_str(&n.to_string()),
                None => out.push_str("null"),
            },
            Val::Str(s) => out.push_str(&json_string(s)),
            Val::List(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    v.write_json(out);
                }
                out.push(']');
            }
            Val::Struct(fields) => {
                out.push('{');
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&json_string(k));
                    out.push(':');
                    v.write_json(out);
                }
                out.push('}');
            }
        }
    }
}

fn list_vals(a: ArrayRef) -> Val {
    Val::List((0..a.len()).map(|i| Val::of(&a, i)).collect())
}

fn float_text(f: f64) -> String {
    if f.is_finite() {
        // Shortest text that reads back as the same f64 (what Python's repr prints).
        serde_json::Number::from_f64(f).map_or_else(|| f.to_string(), |n| n.to_string())
    } else {
        f.to_string()
    }
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

fn csv_field(s: &str) -> String {
    if s.is_empty() || s.contains([',', '"', '\n', '\r']) || s.starts_with(' ') || s.ends_with(' ') {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

/// Which tables and columns a query can use, read off its words.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Referenced {
    /// Lower-cased identifiers and words outside string literals.
    pub words: HashSet<String>,
    /// The query may use columns it does not name (`*`, `COLUMNS(…)`, `NATURAL JOIN`).
    pub all_columns: bool,
}

impl Referenced {
    /// Scans a SQL text.
    pub fn scan(sql: &str) -> Referenced {
        let mut r = Referenced::default();
        let chars: Vec<char> = sql.chars().collect();
        let mut i = 0;
        let mut last_sig: Option<char> = None;
        while i < chars.len() {
            let c = chars[i];
            if c == '\'' {
                // A string literal ('' escapes a quote): its words are not identifiers.
                i += 1;
                while i < chars.len() {
                    if chars[i] == '\'' {
                        if chars.get(i + 1) == Some(&'\'') {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i += 1;
                last_sig = Some('\'');
            } else if c == '"' || c == '`' {
                let end = chars[i + 1..].iter().position(|&d| d == c).map_or(chars.len(), |p| i + 1 + p);
                r.words.insert(chars[i + 1..end].iter().collect::<String>().to_lowercase());
                i = end + 1;
                last_sig = Some('"');
            } else if c == '-' && chars.get(i + 1) == Some(&'-') {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            } else if c.is_alphanumeric() || c == '_' {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                let w: String = chars[start..i].iter().collect::<String>().to_lowercase();
                if w == "natural" || (w == "columns" && chars[i..].iter().find(|c| !c.is_whitespace()) == Some(&'(')) {
                    r.all_columns = true;
                }
                r.words.insert(w);
                last_sig = Some('a');
            } else {
                if c == '*' {
                    let next = chars[i + 1..].iter().find(|c| !c.is_whitespace());
                    if !(last_sig == Some('(') && next == Some(&')')) {
                        r.all_columns = true;
                    }
                }
                if !c.is_whitespace() {
                    last_sig = Some(c);
                }
                i += 1;
            }
        }
        r
    }

    /// Whether the query names a table.
    pub fn names_table(&self, table: &str) -> bool {
        self.words.contains(table)
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
    pub fn open(root: &Path) -> Result<Reader> {
        let wh = Warehouse::open(root)?;
        let finished = wh.finished_runs()?;
        Ok(Reader { wh, finished })
    }

    /// Run ids of the finished runs.
    pub fn finished(&self) -> &BTreeSet<String> {
        &self.finished
    }

    /// A table as a polars frame: every column (`columns` None) or those named (unknown names are
    /// ignored; `posts` always has `ingest_date`, other tables keep `run_id` when none is named).
    pub fn frame(&self, table: &str, columns: Option<&HashSet<String>>) -> Result<DataFrame> {
        let Some(t) = Table::from_name(table) else {
            anyhow::bail!("no table {table:?}; the tables are {}", TABLES.join(", "))
        };
        let contract = t.schema();
        let wanted = |name: &str, all: &[&str]| -> bool {
            match columns {
                None => true,
                Some(set) => {
                    set.contains(&name.to_lowercase())
                        || (table != POSTS && name == "run_id" && !all.iter().any(|n| set.contains(&n.to_lowercase())))
                }
            }
        };
        let mut df: Option<DataFrame> = None;
        for (run_id, path) in self.wh.table_files(t)? {
            if table != RUNS && !self.finished.contains(&run_id) {
                continue;
            }
            let file_df = read_file(&path, table, &wanted)?;
            match df.as_mut() {
                None => df = Some(file_df),
                Some(d) => {
                    d.vstack_mut_owned(file_df).with_context(|| format!("{}: schema differs", path.display()))?;
                }
            }
        }
        if let Some(d) = df {
            return Ok(d);
        }
        // No file yet: an empty frame of the contract's schema, so queries still run.
        let names: Vec<&str> = contract.fields().iter().map(|f| f.name().as_str()).collect();
        let mut arrays: Vec<(String, ArrayRef)> = contract
            .fields()
            .iter()
            .filter(|f| wanted(f.name(), &names))
            .map(|f| (f.name().clone(), new_empty_array(f.data_type())))
            .collect();
        if table == POSTS {
            arrays.push((INGEST_DATE.into(), new_empty_array(&DataType::Date32)));
        }
        let refs: Vec<(&str, &ArrayRef)> = arrays.iter().map(|(n, a)| (n.as_str(), a)).collect();
        Ok(ffi::to_frame(&refs)?)
    }

    /// Runs one SQL statement. Reads only the tables and columns the query names (see the module doc).
    pub fn sql(&self, sql: &str) -> Result<ResultSet> {
        let refs = Referenced::scan(sql);
        if !refs.all_columns {
            match self.sql_with(sql, &refs, Some(&refs.words)) {
                Ok(r) => return Ok(r),
                Err(e) if is_column_not_found(&e) => {}
                Err(e) => return Err(e),
            }
        }
        self.sql_with(sql, &refs, None)
    }

    fn sql_with(&self, sql: &str, refs: &Referenced, columns: Option<&HashSet<String>>) -> Result<ResultSet> {
        let mut ctx = SQLContext::new();
        for table in TABLES {
            if refs.names_table(table) {
                ctx.register(table, self.frame(table, columns)?.lazy());
            }
        }
        let df = ctx.execute(sql).and_then(|lf| lf.collect()).map_err(SqlError)?;
        result_set(df)
    }
}

fn is_column_not_found(e: &anyhow::Error) -> bool {
    e.chain().any(|c| matches!(c.downcast_ref::<SqlError>(), Some(SqlError(PolarsError::ColumnNotFound(_)))))
}

/// A query polars could not plan or run (bad SQL, unknown column, type error): a usage error.
#[derive(Debug, thiserror::Error)]
#[error("query: {0}")]
pub struct SqlError(#[source] pub PolarsError);

fn result_set(df: DataFrame) -> Result<ResultSet> {
    let mut names = Vec::with_capacity(df.width());
    let mut columns = Vec::with_capacity(df.width());
    for c in df.columns() {
        names.push(c.name().to_string());
        // polars exports a Null column with a buffer arrow-rs refuses: build it here.
        columns.push(if c.dtype() == &polars::prelude::DataType::Null {
            Arc::new(NullArray::new(c.len())) as ArrayRef
        } else {
            ffi::to_arrow(c.clone())?
        });
    }
    Ok(ResultSet { names, columns })
}

/// Reads one table file, projected to the wanted columns, into one polars frame (one chunk per batch).
fn read_file(path: &Path, table: &str, wanted: &dyn Fn(&str, &[&str]) -> bool) -> Result<DataFrame> {
    let ctx = || format!("{}: cannot read", path.display());
    let file = fs::File::open(path).with_context(ctx)?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).with_context(ctx)?;
    let names: Vec<String> = builder.schema().fields().iter().map(|f| f.name().clone()).collect();
    let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let keep: Vec<usize> = (0..names.len()).filter(|&i| wanted(&names[i], &name_refs)).collect();
    let mask = ProjectionMask::roots(builder.parquet_schema(), keep.iter().copied());
    let reader = builder.with_projection(mask).with_batch_size(65536).build().with_context(ctx)?;
    let ingest_date = if table == POSTS {
        path.parent()
            .and_then(|p| p.file_name())
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("ingest_date="))
            .map(str::to_string)
    } else {
        None
    };
    let mut df: Option<DataFrame> = None;
    for batch in reader {
        let batch = batch.with_context(ctx)?;
        let mut cols: Vec<(String, ArrayRef)> =
            batch.schema().fields().iter().zip(batch.columns()).map(|(f, a)| (f.name().clone(), a.clone())).collect();
        if table == POSTS {
            cols.push((INGEST_DATE.into(), date_column(ingest_date.as_deref(), batch.num_rows())?));
        }
        let refs: Vec<(&str, &ArrayRef)> = cols.iter().map(|(n, a)| (n.as_str(), a)).collect();
        let part = ffi::to_frame(&refs)?;
        match df.as_mut() {
            None => df = Some(part),
            Some(d) => {
                d.vstack_mut_owned(part)?;
            }
        }
    }
    match df {
        Some(d) => Ok(d),
        None => {
            // A file with no rows: empty columns of its schema.
            let builder =
                ParquetRecordBatchReaderBuilder::try_new(fs::File::open(path).with_context(ctx)?).with_context(ctx)?;
            let schema = builder.schema().clone();
            let mut cols: Vec<(String, ArrayRef)> = schema
                .fields()
                .iter()
                .filter(|f| wanted(f.name(), &name_refs))
                .map(|f: &Arc<Field>| (f.name().clone(), new_empty_array(f.data_type())))
                .collect();
            if table == POSTS {
                cols.push((INGEST_DATE.into(), new_empty_array(&DataType::Date32)));
            }
            let refs: Vec<(&str, &ArrayRef)> = cols.iter().map(|(n, a)| (n.as_str(), a)).collect();
            Ok(ffi::to_frame(&refs)?)
        }
    }
}

/// A Date32 column of `rows` copies of a `YYYY-MM-DD` folder date (null if it is not one).
fn date_column(date: Option<&str>, rows: usize) -> Result<ArrayRef> {
    let text: ArrayRef = Arc::new(StringArray::from(vec![date; rows]));
    Ok(arrow::compute::cast(&text, &DataType::Date32)?)
}

/// `quarry query`: runs the SQL and renders the result.
pub fn query(warehouse: &Path, sql: &str, format: Format) -> Result<String> {
    let reader = Reader::open(warehouse)?;
    let result = reader.sql(sql)?;
    Ok(result.render(format))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_finds_words_and_stars() {
        let r = Referenced::scan("SELECT topic, count(*) FROM posts WHERE title = 'body text' -- hash\n");
        assert!(r.words.contains("topic") && r.words.contains("posts"));
        assert!(!r.words.contains("body") && !r.words.contains("hash"));
        assert!(!r.all_columns);
        assert!(Referenced::scan("SELECT * FROM runs").all_columns);
        assert!(Referenced::scan("SELECT p.* FROM posts p").all_columns);
        assert!(Referenced::scan("SELECT a FROM posts NATURAL JOIN runs").all_columns);
        assert!(Referenced::scan("SELECT COUNT( * ) FROM posts WHERE \"Hash\" = 'x'").words.contains("hash"));
        assert!(!Referenced::scan("SELECT COUNT( * ) FROM posts").all_columns);
    }

    #[test]
    fn csv_quotes_only_when_needed() {
        assert_eq!(csv_field("a"), "a");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field(""), "\"\"");
    }

    #[test]
    fn values_render() {
        assert_eq!(Val::Float(0.1 + 0.2).text(), "0.30000000000000004");
        assert_eq!(Val::Float(0.5083333333).display(), "0.508333");
        assert_eq!(Val::Float(2.0).display(), "2");
        let v = Val::Struct(vec![("a".into(), Val::List(vec![Val::Str("x".into()), Val::Null]))]);
        assert_eq!(v.text(), r#"{"a":["x",null]}"#);
    }
}
