//! The warehouse tables as polars lazy scans over the Parquet files of finished runs.
//!
//! Polars plans each query over these scans, so it reads only the columns and row groups the query
//! needs (projection and predicate push-down). `posts` gains `ingest_date`, a date taken from each
//! file's `ingest_date=YYYY-MM-DD` folder (null outside such a folder), as DuckDB's hive partitioning
//! shows it. The date is a literal per folder rather than polars' hive parsing, which reads `k=v`
//! out of every folder of an absolute path, the warehouse's parents included.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use arrow::array::{new_empty_array, ArrayRef};
use arrow::compute::kernels::cast_utils::Parser;
use arrow::datatypes::{DataType as ArrowType, Date32Type, SchemaRef};
use parquet::errors::ParquetError;
use parquet::file::reader::SerializedFileReader;
use polars::prelude::{concat, lit, DataType, IntoLazy, LazyFrame, PlRefPath, ScanArgsParquet, UnionArgs, NULL};

use super::{QueryError, INGEST_DATE};
use crate::contract::Table;
use crate::load::delta;
use crate::load::warehouse::{run_of_file, TableFile, Warehouse, WarehouseError};
use crate::transform::ffi;

/// The files of a table that belong to finished runs, in run order, as local paths (a remote
/// warehouse's are copied into its working folder once). The files are those the table's Delta
/// snapshot lists (the folder's, for a local warehouse an older quarry wrote without logs).
pub fn files(wh: &Warehouse, finished: &BTreeSet<String>, table: Table) -> Result<Vec<PathBuf>, QueryError> {
    let listed: Vec<TableFile> = if wh.has_delta_log(table)? {
        let rows = delta::files(&wh.table_url(table)?)?;
        // A remote table's objects, for their version tags (a local one's files need none).
        let objects: BTreeMap<String, TableFile> = match wh.remote() {
            Some(_) => wh.table_files(table)?.into_iter().map(|f| (f.rel.clone(), f)).collect(),
            None => BTreeMap::new(),
        };
        let mut out = Vec::new();
        for (rel, size) in rows {
            let Some(run) = rel.rsplit('/').next().and_then(run_of_file).map(str::to_string) else { continue };
            let version = match wh.remote() {
                None => None,
                Some(_) => match objects.get(&rel) {
                    Some(o) => o.version.clone(),
                    None => {
                        return Err(WarehouseError {
                            path: wh.file_shown(table, &rel).into(),
                            what: "the table's Delta log lists this object, the bucket does not hold it",
                            source: std::io::ErrorKind::NotFound.into(),
                        }
                        .into())
                    }
                },
            };
            out.push(TableFile { run, rel, size: size as u64, version, written_ms: None });
        }
        out
    } else {
        wh.table_files(table)?
    };
    // Every runs file is finished by definition; the other tables' files count once their run has one.
    let mut out: Vec<(String, PathBuf)> = Vec::new();
    for f in listed.into_iter().filter(|f| table == Table::Runs || finished.contains(&f.run)) {
        out.push((f.run.clone(), wh.local_copy(table, &f)?));
    }
    out.sort();
    Ok(out.into_iter().map(|(_, path)| path).collect())
}

/// The run ids of the warehouse's finished runs, as readers see them: the files the `runs` Delta
/// snapshot lists (the folder's for a warehouse without logs).
pub fn finished(wh: &Warehouse) -> Result<BTreeSet<String>, QueryError> {
    if !wh.has_delta_log(Table::Runs)? {
        return Ok(wh.finished_runs()?);
    }
    let rows = delta::files(&wh.table_url(Table::Runs)?)?;
    Ok(rows.iter().filter_map(|(rel, _)| run_of_file(rel.rsplit('/').next()?)).map(str::to_string).collect())
}

/// A table as a lazy frame over its files (from `files`).
pub fn table(table: Table, files: &[PathBuf]) -> Result<LazyFrame, QueryError> {
    if files.is_empty() {
        return empty(&table.schema(), table == Table::Posts);
    }
    if table != Table::Posts {
        return scan(files);
    }
    // One scan per ingest_date folder, each with its date as a literal column, in date order.
    let mut by_date: BTreeMap<Option<i32>, Vec<PathBuf>> = BTreeMap::new();
    for path in files {
        by_date.entry(folder_date(path)).or_default().push(path.clone());
    }
    let parts = by_date
        .into_iter()
        .map(|(date, paths)| {
            let day = match date {
                Some(days) => lit(days).cast(DataType::Date),
                None => lit(NULL).cast(DataType::Date),
            };
            Ok(scan(&paths)?.with_column(day.alias(INGEST_DATE)))
        })
        .collect::<Result<Vec<_>, QueryError>>()?;
    match <[LazyFrame; 1]>::try_from(parts) {
        Ok([one]) => Ok(one),
        Err(parts) => concat(parts, UnionArgs::default()).map_err(QueryError::Read),
    }
}

/// A lazy scan over Parquet files, taken by name (no glob expansion: `[` is a valid file name byte).
fn scan(paths: &[PathBuf]) -> Result<LazyFrame, QueryError> {
    let sources =
        paths.iter().map(|p| PlRefPath::try_from_path(p)).collect::<Result<Vec<_>, _>>().map_err(QueryError::Read)?;
    let args = ScanArgsParquet { glob: false, ..ScanArgsParquet::default() };
    LazyFrame::scan_parquet_files(sources.into(), args).map_err(QueryError::Read)
}

/// Reads a file's Parquet footer: finds the file to blame when polars fails without naming it.
pub fn check_file(path: &Path) -> Result<(), QueryError> {
    let bad = |source: ParquetError| QueryError::BadFile { path: path.to_path_buf(), source };
    let file = fs::File::open(path).map_err(|e| bad(e.into()))?;
    SerializedFileReader::new(file).map_err(bad)?;
    Ok(())
}

/// Days since the epoch of a file's `ingest_date=YYYY-MM-DD` folder, if it is in one.
fn folder_date(path: &Path) -> Option<i32> {
    let folder = path.parent()?.file_name()?.to_str()?;
    Date32Type::parse(folder.strip_prefix(&format!("{INGEST_DATE}="))?)
}

/// A table without files: no rows, the contract's columns (and `ingest_date` for posts).
fn empty(contract: &SchemaRef, with_ingest_date: bool) -> Result<LazyFrame, QueryError> {
    let mut columns: Vec<(String, ArrayRef)> =
        contract.fields().iter().map(|f| (f.name().clone(), new_empty_array(f.data_type()))).collect();
    if with_ingest_date {
        columns.push((INGEST_DATE.into(), new_empty_array(&ArrowType::Date32)));
    }
    let refs: Vec<(&str, &ArrayRef)> = columns.iter().map(|(n, a)| (n.as_str(), a)).collect();
    Ok(ffi::to_frame(&refs)?.lazy())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_dates() {
        let p = Path::new("/w/a=b/posts/ingest_date=2026-11-26/20261126T141805.331773Z.parquet");
        assert_eq!(folder_date(p), Some(20783));
        assert_eq!(folder_date(Path::new("/w/posts/ingest_date=soon/r.parquet")), None);
        assert_eq!(folder_date(Path::new("/w/posts/r.parquet")), None);
    }
}
