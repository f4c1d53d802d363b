//! Parquet files of the warehouse: one writer wrapper, configured from the pipeline's output settings.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use crate::contract::{Table, WriteHints};
use crate::pipeline::OutputConfig;

/// False-positive rate of the `hash` bloom filter.
pub const HASH_BLOOM_FPP: f64 = 0.01;

/// Writer properties for a table: zstd, page statistics, and the encodings its hints ask for.
pub fn properties(out: &OutputConfig, table: Table) -> Result<WriterProperties, ParquetError> {
    let WriteHints { bloom, unique, opaque, .. } = table.hints();
    let mut b = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(out.zstd_level.get())?))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(out.row_group_rows.get()))
        .set_created_by(concat!("quarry ", env!("CARGO_PKG_VERSION")).to_string());
    for col in bloom {
        b = b
            .set_column_bloom_filter_enabled(ColumnPath::from(*col), true)
            .set_column_bloom_filter_fpp(ColumnPath::from(*col), HASH_BLOOM_FPP)
            .set_column_bloom_filter_max_ndv(ColumnPath::from(*col), out.row_group_rows.get() as u64);
    }
    for col in unique {
        b = b.set_column_dictionary_enabled(ColumnPath::from(*col), false);
    }
    for col in opaque {
        b = b
            .set_column_dictionary_enabled(ColumnPath::from(*col), false)
            .set_column_statistics_enabled(ColumnPath::from(*col), EnabledStatistics::None);
    }
    Ok(b.build())
}

/// What a closed table writer wrote.
#[derive(Debug, Clone, Default)]
pub struct WriteMetrics {
    /// Rows written.
    pub rows: u64,
    /// Bytes of its files.
    pub bytes: u64,
    /// Files written (more than one when it rolled over to keep each file's metadata bounded).
    pub files: u32,
}

/// The file name of part `n` of a table's file stem `stem`: `stem.parquet`, then
/// `stem-part-00001.parquet`, …
pub fn part_name(stem: &str, n: u32) -> String {
    if n == 0 {
        format!("{stem}.parquet")
    } else {
        format!("{stem}{PART}{n:05}.parquet")
    }
}

/// What separates a file's stem from its part number.
pub const PART: &str = "-part-";

/// A table's Parquet file being written (under a staging name); with a row limit, a new file is
/// started once the current one holds that many rows, because a Parquet writer keeps every row
/// group's metadata (statistics, page index, bloom filter) until its file is closed.
pub struct TableWriter {
    dir: PathBuf,
    stem: String,
    schema: SchemaRef,
    props: WriterProperties,
    max_rows: Option<u64>,
    path: PathBuf,
    writer: ArrowWriter<File>,
    part: u32,
    part_rows: u64,
    rows: u64,
    /// Parts finished but not yet synced: `close` syncs them. A sync at each roll stalled the
    /// writer for the second or so a ~700 MB file takes to reach the disk, and the run's
    /// pipeline piled up behind it (a 16 GB run peaked ~20 MB higher).
    done: Vec<(PathBuf, File)>,
}
/// A write to a table file failed.
#[derive(Debug, thiserror::Error)]
#[error("writing {path}: {source}")]
pub struct WriteError {
    /// The file.
    pub path: PathBuf,
    /// The cause.
    #[source]
    pub source: ParquetError,
}

fn open(path: &Path, schema: &SchemaRef, props: &WriterProperties) -> Result<ArrowWriter<File>, WriteError> {
    let err = |source| WriteError { path: path.to_path_buf(), source };
    let file = File::create(path).map_err(|e| err(e.into()))?;
    ArrowWriter::try_new(file, schema.clone(), Some(props.clone())).map_err(err)
}

/// Writes the footer of a file; the file, not yet durable.
fn finish(path: &Path, writer: ArrowWriter<File>) -> Result<File, WriteError> {
    writer.into_inner().map_err(|source| WriteError { path: path.to_path_buf(), source })
}

/// Makes a finished file durable; its size.
fn sync(path: &Path, file: &File) -> Result<u64, WriteError> {
    let err = |e: std::io::Error| WriteError { path: path.to_path_buf(), source: e.into() };
    file.sync_all().map_err(err)?;
    Ok(file.metadata().map_err(err)?.len())
}

impl TableWriter {
    /// Creates `path` and writes one Parquet file of `schema` into it.
    pub fn create(path: &Path, schema: SchemaRef, props: WriterProperties) -> Result<TableWriter, WriteError> {
        let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("part").to_string();
        Self::rolling(&dir, &stem, schema, props, None)
    }

    /// Writes `dir/stem.parquet`, then `dir/stem-part-00001.parquet` once that holds `max_rows`
    /// rows, and so on (`part_name`); no limit with `None`.
    pub fn rolling(
        dir: &Path,
        stem: &str,
        schema: SchemaRef,
        props: WriterProperties,
        max_rows: Option<u64>,
    ) -> Result<TableWriter, WriteError> {
        let path = dir.join(part_name(stem, 0));
        let writer = open(&path, &schema, &props)?;
        Ok(TableWriter {
            dir: dir.to_path_buf(),
            stem: stem.to_string(),
            schema,
            props,
            max_rows,
            path,
            writer,
            part: 0,
            part_rows: 0,
            rows: 0,
            done: Vec::new(),
        })
    }

    /// Appends a batch; with a row limit, the rows past it go into the next file.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), WriteError> {
        let Some(max) = self.max_rows.map(|m| m.max(1)) else { return self.write_part(batch) };
        let mut at = 0;
        while at < batch.num_rows() {
            if self.part_rows >= max {
                self.roll()?;
            }
            let take = (batch.num_rows() - at).min((max - self.part_rows) as usize);
            self.write_part(&batch.slice(at, take))?;
            at += take;
        }
        Ok(())
    }

    fn write_part(&mut self, batch: &RecordBatch) -> Result<(), WriteError> {
        self.rows += batch.num_rows() as u64;
        self.part_rows += batch.num_rows() as u64;
        self.writer.write(batch).map_err(|source| WriteError { path: self.path.clone(), source })
    }

    fn roll(&mut self) -> Result<(), WriteError> {
        let next = self.dir.join(part_name(&self.stem, self.part + 1));
        let writer = open(&next, &self.schema, &self.props)?;
        let done = std::mem::replace(&mut self.writer, writer);
        let path = std::mem::replace(&mut self.path, next);
        let file = finish(&path, done)?;
        self.done.push((path, file));
        self.part += 1;
        self.part_rows = 0;
        Ok(())
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Writes the last file's footer and makes every file durable.
    pub fn close(self) -> Result<WriteMetrics, WriteError> {
        let last = finish(&self.path, self.writer)?;
        let mut bytes = 0;
        for (path, file) in self.done.iter().chain([(self.path.clone(), last)].iter()) {
            bytes += sync(path, file)?;
        }
        Ok(WriteMetrics { rows: self.rows, bytes, files: self.part + 1 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    #[test]
    fn a_rolling_writer_starts_a_file_per_max_rows() {
        let dir = tempfile::tempdir().unwrap();
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        let props = WriterProperties::builder().build();
        let mut w = TableWriter::rolling(dir.path(), "posts", schema.clone(), props, Some(10)).unwrap();
        for start in (0..25).step_by(5) {
            let col = Int64Array::from_iter_values(start..start + 5);
            w.write(&RecordBatch::try_new(schema.clone(), vec![Arc::new(col)]).unwrap()).unwrap();
        }
        // A batch over the limit is split across files.
        for start in (25..40).step_by(15) {
            let col = Int64Array::from_iter_values(start..start + 15);
            w.write(&RecordBatch::try_new(schema.clone(), vec![Arc::new(col)]).unwrap()).unwrap();
        }
        let m = w.close().unwrap();
        assert_eq!((m.rows, m.files), (40, 4));
        let mut read = Vec::new();
        for n in 0..4 {
            let path = dir.path().join(part_name("posts", n));
            let r = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap())
                .unwrap()
                .build()
                .unwrap();
            let rows: usize = r.map(|b| b.unwrap().num_rows()).sum();
            read.push(rows);
        }
        assert_eq!(read, [10, 10, 10, 10]);
        assert_eq!(part_name("20261201T000000.000001Z", 2), "20261201T000000.000001Z-part-00002.parquet");
        assert!(!dir.path().join(part_name("posts", 4)).exists());
    }
}
