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
    let WriteHints { bloom, unique, opaque } = table.hints();
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

/// What a closed table file holds.
#[derive(Debug, Clone, Default)]
pub struct WriteMetrics {
    /// Rows written.
    pub rows: u64,
    /// Bytes of the file.
    pub bytes: u64,
}

/// One Parquet file being written (under a staging name).
pub struct TableWriter {
    path: PathBuf,
    writer: ArrowWriter<File>,
    rows: u64,
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

impl TableWriter {
    /// Creates `path` and writes a Parquet file of `schema` into it.
    pub fn create(path: &Path, schema: SchemaRef, props: WriterProperties) -> Result<TableWriter, WriteError> {
        let err = |source| WriteError { path: path.to_path_buf(), source };
        let file = File::create(path).map_err(|e| err(e.into()))?;
        let writer = ArrowWriter::try_new(file, schema, Some(props)).map_err(err)?;
        Ok(TableWriter { path: path.to_path_buf(), writer, rows: 0 })
    }

    /// Appends a batch.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), WriteError> {
        self.rows += batch.num_rows() as u64;
        self.writer.write(batch).map_err(|source| WriteError { path: self.path.clone(), source })
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Writes the footer and makes the file durable.
    pub fn close(self) -> Result<WriteMetrics, WriteError> {
        let path = self.path;
        let err = |source| WriteError { path: path.clone(), source };
        let file = self.writer.into_inner().map_err(err)?;
        file.sync_all().map_err(|e| err(e.into()))?;
        let bytes = file.metadata().map_err(|e| err(e.into()))?.len();
        Ok(WriteMetrics { rows: self.rows, bytes })
    }
}
