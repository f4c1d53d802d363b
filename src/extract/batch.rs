//! Records → Arrow record batches with the warehouse schemas.

use std::borrow::Cow;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Float64Builder, Int32Builder, Int64Builder, ListArray,
    ListBuilder, MapArray, StringArray, StringBuilder, StructArray, TimestampMicrosecondBuilder,
};
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::datatypes::{DataType, FieldRef, Fields, SchemaRef, TimeUnit};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

use super::record::Cell;
use crate::contract::schema;

/// One column being built a cell at a time, typed by the column's Arrow type.
enum ColumnBuilder {
    Text(StringBuilder),
    Int32(Int32Builder),
    Int64(Int64Builder),
    Date32(Date32Builder),
    Timestamp(TimestampMicrosecondBuilder),
    Float64(Float64Builder),
    Boolean(BooleanBuilder),
    /// list<string>.
    TextList(ListBuilder<StringBuilder>),
    /// struct<…: string>: one builder per child, and the struct's validity.
    Struct {
        fields: Fields,
        children: Vec<StringBuilder>,
        valid: Vec<bool>,
    },
    /// list<struct<…: string>>: objects per row, one builder per child of the struct.
    Objects {
        item: FieldRef,
        fields: Fields,
        lens: Vec<usize>,
        children: Vec<StringBuilder>,
    },
    /// map<string, list<string>>: entries per row, keys, and the value lists.
    Map {
        entries: FieldRef,
        kv: Fields,
        lens: Vec<usize>,
        keys: StringBuilder,
        values: ListBuilder<StringBuilder>,
    },
}

fn int(c: &Cell) -> Option<i64> {
    match c {
        Cell::Int(v) => Some(*v),
        _ => None,
    }
}

impl ColumnBuilder {
    /// A builder for `rows` values of type `dt` holding about `bytes` bytes of text.
    fn new(dt: &DataType, rows: usize, bytes: usize) -> Result<ColumnBuilder, ArrowError> {
        let unsupported = || ArrowError::NotYetImplemented(format!("column type {dt}"));
        Ok(match dt {
            // Sized up front: growing a multi-megabyte body buffer by doubling copies it again and again.
            DataType::Utf8 => ColumnBuilder::Text(StringBuilder::with_capacity(rows, bytes)),
            DataType::Int32 => ColumnBuilder::Int32(Int32Builder::with_capacity(rows)),
            DataType::Int64 => ColumnBuilder::Int64(Int64Builder::with_capacity(rows)),
            DataType::Date32 => ColumnBuilder::Date32(Date32Builder::with_capacity(rows)),
            DataType::Timestamp(TimeUnit::Microsecond, tz) => {
                ColumnBuilder::Timestamp(TimestampMicrosecondBuilder::with_capacity(rows).with_timezone_opt(tz.clone()))
            }
            DataType::Float64 => ColumnBuilder::Float64(Float64Builder::with_capacity(rows)),
            DataType::Boolean => ColumnBuilder::Boolean(BooleanBuilder::with_capacity(rows)),
            DataType::List(item) if item.data_type() == &DataType::Utf8 => ColumnBuilder::TextList(
                ListBuilder::with_capacity(StringBuilder::with_capacity(rows, bytes), rows).with_field(item.clone()),
            ),
            DataType::Struct(fields) => ColumnBuilder::Struct {
                fields: fields.clone(),
                children: fields.iter().map(|_| StringBuilder::with_capacity(rows, bytes / fields.len())).collect(),
                valid: Vec::with_capacity(rows),
            },
            DataType::List(item) => {
                let DataType::Struct(fields) = item.data_type() else { return Err(unsupported()) };
                ColumnBuilder::Objects {
                    item: item.clone(),
                    fields: fields.clone(),
                    lens: Vec::with_capacity(rows),
                    children: fields.iter().map(|_| StringBuilder::with_capacity(rows, bytes / fields.len())).collect(),
                }
            }
            DataType::Map(entries, _) => {
                let DataType::Struct(kv) = entries.data_type() else { return Err(unsupported()) };
                let DataType::List(value_item) = kv[1].data_type() else { return Err(unsupported()) };
                ColumnBuilder::Map {
                    entries: entries.clone(),
                    kv: kv.clone(),
                    lens: Vec::with_capacity(rows),
                    keys: StringBuilder::new(),
                    values: ListBuilder::new(StringBuilder::new()).with_field(value_item.clone()),
                }
            }
            _ => return Err(unsupported()),
        })
    }

    /// Appends one cell (a cell of another type than the column's is null).
    fn append(&mut self, c: &Cell) {
        match self {
            ColumnBuilder::Text(b) => match c {
                Cell::Text(s) => b.append_value(s),
                _ => b.append_null(),
            },
            ColumnBuilder::Int32(b) => b.append_option(int(c).and_then(|v| i32::try_from(v).ok())),
            ColumnBuilder::Int64(b) => b.append_option(int(c)),
            ColumnBuilder::Date32(b) => b.append_option(int(c).and_then(|v| i32::try_from(v).ok())),
            ColumnBuilder::Timestamp(b) => b.append_option(int(c)),
            ColumnBuilder::Float64(b) => b.append_option(match c {
                Cell::Float(v) => Some(*v),
                _ => None,
            }),
            ColumnBuilder::Boolean(b) => b.append_option(match c {
                Cell::Bool(v) => Some(*v),
                _ => None,
            }),
            ColumnBuilder::TextList(b) => {
                if let Cell::List(items) = c {
                    for s in items {
                        b.values().append_value(s);
                    }
                }
                b.append(true);
            }
            ColumnBuilder::Struct { children, valid, .. } => {
                let values: &[Option<Cow<'_, str>>] = match c {
                    Cell::Struct(v) => v,
                    _ => &[],
                };
                valid.push(matches!(c, Cell::Struct(_)));
                for (k, child) in children.iter_mut().enumerate() {
                    child.append_option(values.get(k).and_then(|v| v.as_deref()));
                }
            }
            ColumnBuilder::Objects { lens, children, .. } => {
                let objects: &[Vec<Option<Cow<'_, str>>>] = match c {
                    Cell::Objects(o) => o,
                    _ => &[],
                };
                lens.push(objects.len());
                for o in objects {
                    for (k, child) in children.iter_mut().enumerate() {
                        child.append_option(o.get(k).and_then(|v| v.as_deref()));
                    }
                }
            }
            ColumnBuilder::Map { lens, keys, values, .. } => {
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
        }
    }

    /// Bytes of text appended so far.
    fn text_bytes(&self) -> usize {
        match self {
            ColumnBuilder::Text(b) => b.values_slice().len(),
            ColumnBuilder::TextList(b) => b.values_ref().values_slice().len(),
            ColumnBuilder::Struct { children, .. } | ColumnBuilder::Objects { children, .. } => {
                children.iter().map(|c| c.values_slice().len()).sum()
            }
            _ => 0,
        }
    }

    fn finish(self) -> Result<ArrayRef, ArrowError> {
        let strings = |children: Vec<StringBuilder>| -> Vec<ArrayRef> {
            children.into_iter().map(|mut c| Arc::new(c.finish()) as ArrayRef).collect()
        };
        Ok(match self {
            ColumnBuilder::Text(mut b) => Arc::new(b.finish()),
            ColumnBuilder::Int32(mut b) => Arc::new(b.finish()),
            ColumnBuilder::Int64(mut b) => Arc::new(b.finish()),
            ColumnBuilder::Date32(mut b) => Arc::new(b.finish()),
            ColumnBuilder::Timestamp(mut b) => Arc::new(b.finish()),
            ColumnBuilder::Float64(mut b) => Arc::new(b.finish()),
            ColumnBuilder::Boolean(mut b) => Arc::new(b.finish()),
            ColumnBuilder::TextList(mut b) => Arc::new(b.finish()),
            ColumnBuilder::Struct { fields, children, valid } => {
                Arc::new(StructArray::try_new(fields, strings(children), Some(NullBuffer::from(valid)))?)
            }
            ColumnBuilder::Objects { item, fields, lens, children } => {
                let values = Arc::new(StructArray::try_new(fields, strings(children), None)?);
                Arc::new(ListArray::try_new(item, OffsetBuffer::from_lengths(lens), values, None)?)
            }
            ColumnBuilder::Map { entries, kv, lens, mut keys, mut values } => {
                let entries_array = StructArray::try_new(
                    kv,
                    vec![Arc::new(keys.finish()) as ArrayRef, Arc::new(values.finish()) as ArrayRef],
                    None,
                )?;
                Arc::new(MapArray::try_new(entries, OffsetBuffer::from_lengths(lens), entries_array, None, false)?)
            }
        })
    }
}

/// Builds one column of type `dt` from its cells.
#[cfg(test)]
pub(crate) fn column<'a, I>(dt: &DataType, cells: I) -> Result<ArrayRef, ArrowError>
where
    I: ExactSizeIterator<Item = &'a Cell<'a>>,
{
    let mut b = ColumnBuilder::new(dt, cells.len(), 0)?;
    cells.for_each(|c| b.append(c));
    b.finish()
}

/// Bytes of text a cell holds (what `ColumnBuilder::text_bytes` counts for it).
fn text_bytes(c: &Cell) -> usize {
    let opt = |v: &[Option<Cow<'_, str>>]| v.iter().flatten().map(|s| s.len()).sum::<usize>();
    match c {
        Cell::Text(s) => s.len(),
        Cell::List(v) => v.iter().map(|s| s.len()).sum(),
        Cell::Struct(v) => opt(v),
        Cell::Objects(o) => o.iter().map(|v| opt(v)).sum(),
        _ => 0,
    }
}

/// Builds a batch of `schema` a row at a time, so a row's cells can be dropped as soon as they
/// are appended (its text is copied into each column's one buffer).
pub struct RowsBuilder {
    schema: SchemaRef,
    columns: Vec<ColumnBuilder>,
    rows: usize,
}

impl RowsBuilder {
    /// A builder for about `rows` rows; `bytes` (when it has one entry per field) is the text
    /// each column is expected to hold, to size its buffer once (`text_bytes` of an earlier batch).
    pub fn new(schema: &SchemaRef, rows: usize, bytes: &[usize]) -> Result<RowsBuilder, ArrowError> {
        let columns = schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| ColumnBuilder::new(f.data_type(), rows, bytes.get(i).copied().unwrap_or(0)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RowsBuilder { schema: schema.clone(), columns, rows: 0 })
    }

    /// Appends a row: one cell per field of the schema.
    pub fn append(&mut self, row: &[Cell]) {
        self.append_with(row, &[]);
    }

    /// Appends a row with the cells of some columns replaced: `set` holds (column, cell) pairs
    /// (cells the rows share, such as a run id, made once instead of once a row).
    pub fn append_with(&mut self, row: &[Cell], set: &[(usize, &Cell)]) {
        debug_assert_eq!(row.len(), self.columns.len(), "one cell per field");
        for (i, (b, c)) in self.columns.iter_mut().zip(row).enumerate() {
            b.append(set.iter().find(|(col, _)| *col == i).map_or(c, |(_, replaced)| *replaced));
        }
        self.rows += 1;
    }

    /// Rows appended so far.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// True before the first row.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// The bytes of text each column holds so far.
    pub fn text_bytes(&self) -> Vec<usize> {
        self.columns.iter().map(ColumnBuilder::text_bytes).collect()
    }

    /// The batch of the rows appended.
    pub fn finish(self) -> Result<RecordBatch, ArrowError> {
        let columns = self.columns.into_iter().map(ColumnBuilder::finish).collect::<Result<Vec<_>, _>>()?;
        RecordBatch::try_new(self.schema, columns)
    }
}

/// A batch of `rows` (each one cell per field of `schema`).
pub fn batch(schema: &SchemaRef, rows: &[Vec<Cell>]) -> Result<RecordBatch, ArrowError> {
    // Each column's text counted first: its buffer is then allocated once, at its size.
    let bytes: Vec<usize> = (0..schema.fields().len()).map(|i| rows.iter().map(|r| text_bytes(&r[i])).sum()).collect();
    let mut b = RowsBuilder::new(schema, rows.len(), &bytes)?;
    rows.iter().for_each(|r| b.append(r));
    b.finish()
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

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{Field, Schema};

    #[test]
    fn rows_take_replaced_cells_in_place_of_their_own() {
        let schema: SchemaRef = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Utf8, true),
            Field::new("b", DataType::Int64, true),
            Field::new("c", DataType::Utf8, true),
        ]));
        let mut b = RowsBuilder::new(&schema, 2, &[1, 0, 1]).unwrap();
        let shared = Cell::Text("shared".into());
        b.append_with(&[Cell::Text("x".into()), Cell::Int(1), Cell::Null], &[(0, &shared), (2, &shared)]);
        b.append(&[Cell::Text("y".into()), Cell::Null, Cell::Text("z".into())]);
        assert_eq!(b.len(), 2);
        let batch = b.finish().unwrap();
        let a = batch.column(0).as_string::<i32>();
        let c = batch.column(2).as_string::<i32>();
        assert_eq!((a.value(0), a.value(1)), ("shared", "y"));
        assert_eq!((c.value(0), c.value(1)), ("shared", "z"));
        assert!(batch.column(1).is_null(1));
    }
}
