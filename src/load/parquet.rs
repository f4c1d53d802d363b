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

use crate::pipeline::OutputConfig;

/// False-positive rate of the `hash` bloom filter.
pub const HASH_BLOOM_FPP: f64 = 0.01;

/// How a table's columns are encoded beyond the defaults (dictionary, page statistics).
#[derive(Debug, Clone, Copy, Default)]
pub struct ColumnHints<'a> {
    /// A bloom filter (point lookups).
    pub bloom: &'a [&'a str],
    /// Nearly one value per row (hashes, titles, offsets): plain encoding, statistics kept. A
    /// dictionary of them would be as large as the values, and building it costs time.
    pub unique: &'a [&'a str],
    /// Long text or bytes nobody filters on (raw pages, bodies): plain, no statistics. A
    /// dictionary or min/max of them would hold another copy of long values while the file is written.
    pub opaque: &'a [&'a str],
}

/// The encoding hints of a warehouse table (`posts`, `rejects`, `duplicates`, `runs`).
pub fn hints(table: &str) -> ColumnHints<'static> {
    match table {
        "posts" => ColumnHints {
            bloom: &["hash"],
            unique: &[
                "hash",
                "title",
                "reference",
                "source_id",
                "seed",
                "view_count",
                "content_fingerprint",
                "source_offset",
            ],
            opaque: &["body", "summary", "ai_brief"],
        },
        "rejects" => ColumnHints { opaque: &["raw"], ..Default::default() },
        "duplicates" => ColumnHints { bloom: &["hash"], ..Default::default() },
        _ => ColumnHints::default(),
    }
}

/// Writer properties for a table: zstd, page statistics, and the encodings `hints` asks for.
pub fn properties(out: &OutputConfig, hints: &ColumnHints) -> Result<WriterProperties, ParquetError> {
    let ColumnHints { bloom, unique, opaque } = *hints;
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
