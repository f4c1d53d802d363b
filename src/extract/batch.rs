//! Records → Arrow record batches with the warehouse schemas.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Float64Builder, Int32Builder, Int64Builder, ListArray,
    ListBuilder, MapArray, StringArray, StringBuilder, StructArray, TimestampMicrosecondBuilder,
};
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::datatypes::{DataType, Fields, SchemaRef, TimeUnit};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

use super::record::Cell;
use crate::load::schema;

/// Builds one column of `rows` (each a slice of cells) at index `col`, typed as `dt`.
pub fn column<'a, I>(dt: &DataType, cells: I) -> Result<ArrayRef, ArrowError>
where
    I: ExactSizeIterator<Item = &'a Cell> + Clone,
{
    let n = cells.len();
    Ok(match dt {
        DataType::Utf8 => {
            // Sized up front: growing a multi-megabyte body buffer by doubling copies it again and again.
            let bytes = cells.clone().map(|c| if let Cell::Text(s) = c { s.len() } else { 0 }).sum();
            let mut b = StringBuilder::with_capacity(n, bytes);
            for c in cells {
                match c {
                    Cell::Text(s) => b.append_value(s),
                    _ => b.append_null(),
                }
            }
            Arc::new(b.finish())
        }
        DataType::Int32 => {
            let mut b = Int32Builder::with_capacity(n);
            cells.for_each(|c| b.append_option(int(c).and_then(|v| i32::try_from(v).ok())));
            Arc::new(b.finish())
        }
        DataType::Int64 => {
            let mut b = Int64Builder::with_capacity(n);
            cells.for_each(|c| b.append_option(int(c)));
            Arc::new(b.finish())
        }
        DataType::Date32 => {
            let mut b = Date32Builder::with_capacity(n);
            cells.for_each(|c| b.append_option(int(c).and_then(|v| i32::try_from(v).ok())));
            Arc::new(b.finish())
        }
        DataType::Timestamp(TimeUnit::Microsecond, tz) => {
            let mut b = TimestampMicrosecondBuilder::with_capacity(n).with_timezone_opt(tz.clone());
            cells.for_each(|c| b.append_option(int(c)));
            Arc::new(b.finish())
        }
        DataType::Float64 => {
            let mut b = Float64Builder::with_capacity(n);
            cells.for_each(|c| {
                b.append_option(match c {
                    Cell::Float(v) => Some(*v),
                    _ => None,
                })
            });
            Arc::new(b.finish())
        }
        DataType::Boolean => {
            let mut b = BooleanBuilder::with_capacity(n);
            cells.for_each(|c| {
                b.append_option(match c {
                    Cell::Bool(v) => Some(*v),
                    _ => None,
                })
            });
            Arc::new(b.finish())
        }
        DataType::List(item) if item.data_type() == &DataType::Utf8 => {
            let (items, bytes) = cells.clone().fold((0, 0), |(k, b), c| match c {
                Cell::List(v) => (k + v.len(), b + v.iter().map(String::len).sum::<usize>()),
                _ => (k, b),
            });
            let mut b =
                ListBuilder::with_capacity(StringBuilder::with_capacity(items, bytes), n).with_field(item.clone());
            for c in cells {
                if let Cell::List(items) = c {
                    for s in items {
                        b.values().append_value(s);
                    }
                }
                b.append(true);
            }
            Arc::new(b.finish())
        }
        DataType::Struct(fields) => {
            let rows: Vec<Option<&[Option<String>]>> = cells
                .map(|c| match c {
                    Cell::Struct(v) => Some(v.as_slice()),
                    _ => None,
                })
                .collect();
            let nulls = NullBuffer::from(rows.iter().map(Option::is_some).collect::<Vec<_>>());
            let flat: Vec<&[Option<String>]> = rows.iter().map(|r| r.unwrap_or(&[])).collect();
            text_struct(fields, &flat, Some(nulls))?
        }
        DataType::List(item) => {
            let DataType::Struct(fields) = item.data_type() else {
                return Err(ArrowError::NotYetImplemented(format!("column type {dt}")));
            };
            let mut flat: Vec<&[Option<String>]> = Vec::new();
            let mut lens = Vec::with_capacity(n);
            for c in cells {
                let objs: &[Vec<Option<String>>] = match c {
                    Cell::Objects(o) => o,
                    _ => &[],
                };
                lens.push(objs.len());
                flat.extend(objs.iter().map(Vec::as_slice));
            }
            let values = text_struct(fields, &flat, None)?;
            Arc::new(ListArray::try_new(item.clone(), OffsetBuffer::from_lengths(lens), values, None)?)
        }
        DataType::Map(entries, _) => {
            let DataType::Struct(kv) = entries.data_type() else {
                return Err(ArrowError::NotYetImplemented(format!("column type {dt}")));
            };
            let mut keys = StringBuilder::new();
            let DataType::List(value_item) = kv[1].data_type() else {
                return Err(ArrowError::NotYetImplemented(format!("column type {dt}")));
            };
            let mut values = ListBuilder::new(StringBuilder::new()).with_field(value_item.clone());
            let mut lens = Vec::with_capacity(n);
            for c in cells {
                let pairs: &[(String, Vec<String>)] = match c {
                    Cell::Map(m) => m,
                    _ => &[],
                };
                lens.push(pairs.len());
                for (k, vs) in pairs {
                    keys.append_value(k);
                    for v in vs {
                        values.values().append_value(v);
                    }
                    values.append(true);
                }
            }
            let entries_array = StructArray::try_new(
                kv.clone(),
                vec![Arc::new(keys.finish()) as ArrayRef, Arc::new(values.finish()) as ArrayRef],
                None,
            )?;
            Arc::new(MapArray::try_new(entries.clone(), OffsetBuffer::from_lengths(lens), entries_array, None, false)?)
        }
        other => return Err(ArrowError::NotYetImplemented(format!("column type {other}"))),
    })
}

fn int(c: &Cell) -> Option<i64> {
    match c {
        Cell::Int(v) => Some(*v),
        _ => None,
    }
}

fn text_struct(fields: &Fields, rows: &[&[Option<String>]], nulls: Option<NullBuffer>) -> Result<ArrayRef, ArrowError> {
    let children = (0..fields.len())
        .map(|k| {
            fn value(r: &[Option<String>], k: usize) -> Option<&str> {
                r.get(k).and_then(|v| v.as_deref())
            }
            let bytes = rows.iter().map(|r| value(r, k).map_or(0, str::len)).sum();
            let mut b = StringBuilder::with_capacity(rows.len(), bytes);
            rows.iter().for_each(|r| b.append_option(value(r, k)));
            Arc::new(b.finish()) as ArrayRef
        })
        .collect();
    Ok(Arc::new(StructArray::try_new(fields.clone(), children, nulls)?))
}

/// A batch of `rows` (each one cell per field of `schema`).
pub fn batch(schema: &SchemaRef, rows: &[Vec<Cell>]) -> Result<RecordBatch, ArrowError> {
    let columns = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| column(f.data_type(), rows.iter().map(|r| &r[i])))
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(schema.clone(), columns)
}

/// A rejected page, as a row of the `rejects` table.
#[derive(Debug, Clone)]
pub struct RejectRow {
    pub source_file: String,
    pub source_offset: u64,
    pub reason: &'static str,
    pub detail: String,
    pub raw: Vec<u8>,
}

/// A duplicate page, as a row of the `duplicates` table.
#[derive(Debug, Clone)]
pub struct DuplicateRow {
    pub hash: String,
    pub source_file: String,
    pub source_offset: u64,
    pub first_run_id: String,
}

/// Rejects as a batch of the `rejects` table.
pub fn rejects_batch(run_id: &str, rows: &[RejectRow]) -> Result<RecordBatch, ArrowError> {
    let run: StringArray = rows.iter().map(|_| Some(run_id)).collect();
    let file: StringArray = rows.iter().map(|r| Some(r.source_file.as_str())).collect();
    let offset: arrow::array::Int64Array = rows.iter().map(|r| Some(r.source_offset as i64)).collect();
    let reason: StringArray = rows.iter().map(|r| Some(r.reason)).collect();
    let detail: StringArray = rows.iter().map(|r| Some(r.detail.as_str())).collect();
    let mut raw = BinaryBuilder::with_capacity(rows.len(), rows.iter().map(|r| r.raw.len()).sum());
    rows.iter().for_each(|r| raw.append_value(&r.raw));
    RecordBatch::try_new(
        schema::rejects(),
        vec![
            Arc::new(run),
            Arc::new(file),
            Arc::new(offset),
            Arc::new(reason),
            Arc::new(detail),
            Arc::new(raw.finish()),
        ],
    )
}

/// Duplicates as a batch of the `duplicates` table.
pub fn duplicates_batch(run_id: &str, rows: &[DuplicateRow]) -> Result<RecordBatch, ArrowError> {
    let run: StringArray = rows.iter().map(|_| Some(run_id)).collect();
    let hash: StringArray = rows.iter().map(|r| Some(r.hash.as_str())).collect();
    let file: StringArray = rows.iter().map(|r| Some(r.source_file.as_str())).collect();
    let offset: arrow::array::Int64Array = rows.iter().map(|r| Some(r.source_offset as i64)).collect();
    let first: StringArray = rows.iter().map(|r| Some(r.first_run_id.as_str())).collect();
    RecordBatch::try_new(
        schema::duplicates(),
        vec![Arc::new(run), Arc::new(hash), Arc::new(file), Arc::new(offset), Arc::new(first)],
    )
}
