//! arrow-rs ↔ polars through the Arrow C Data Interface, without copying buffers.
//!
//! Both crates implement the same `#[repr(C)]` structs (`ArrowArray`, `ArrowSchema`) of the
//! specification, so one side's exported structs are the other side's imported ones; ownership
//! (the release callback) moves with the bytes.

use arrow::array::{make_array, ArrayRef};
use arrow::ffi::{from_ffi, to_ffi, FFI_ArrowArray, FFI_ArrowSchema};
use polars::prelude::{Column, CompatLevel, DataFrame, PlSmallStr, Series};
use polars_arrow::datatypes::Field as PlField;
use polars_arrow::ffi as pl_ffi;

const _: () = assert!(std::mem::size_of::<FFI_ArrowArray>() == std::mem::size_of::<pl_ffi::ArrowArray>());
const _: () = assert!(std::mem::size_of::<FFI_ArrowSchema>() == std::mem::size_of::<pl_ffi::ArrowSchema>());

/// Errors crossing the boundary.
#[derive(Debug, thiserror::Error)]
pub enum BoundaryError {
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("polars: {0}")]
    Polars(#[from] polars::prelude::PolarsError),
}

/// An arrow-rs array as a polars `Series` (buffers shared).
pub fn to_series(name: &str, array: &ArrayRef) -> Result<Series, BoundaryError> {
    let (arr, schema) = to_ffi(&array.to_data())?;
    // SAFETY: both types are the C Data Interface structs of the Arrow specification (`#[repr(C)]`,
    // same size, checked above); the exported array and schema are valid and moved exactly once.
    let (arr, schema) = unsafe {
        (
            std::mem::transmute::<FFI_ArrowArray, pl_ffi::ArrowArray>(arr),
            std::mem::transmute::<FFI_ArrowSchema, pl_ffi::ArrowSchema>(schema),
        )
    };
    // SAFETY: `schema` and `arr` come from arrow-rs's exporter and describe each other.
    let field = unsafe { pl_ffi::import_field_from_c(&schema)? };
    let imported = unsafe { pl_ffi::import_array_from_c(arr, field.dtype().clone())? };
    Ok(Series::from_arrow(PlSmallStr::from(name), imported)?)
}

/// A polars column as one arrow-rs array (rechunked once if needed; buffers shared).
pub fn to_arrow(column: Column) -> Result<ArrayRef, BoundaryError> {
    let name = column.name().clone();
    let array = column.rechunk_to_arrow(CompatLevel::newest());
    let field = PlField::new(name, array.dtype().clone(), true);
    let schema = pl_ffi::export_field_to_c(&field);
    let arr = pl_ffi::export_array_to_c(array);
    // SAFETY: as in `to_series`, in the other direction.
    let (arr, schema) = unsafe {
        (
            std::mem::transmute::<pl_ffi::ArrowArray, FFI_ArrowArray>(arr),
            std::mem::transmute::<pl_ffi::ArrowSchema, FFI_ArrowSchema>(schema),
        )
    };
    // SAFETY: polars' exporter produced a matching array and schema.
    let data = unsafe { from_ffi(arr, &schema)? };
    Ok(make_array(data))
}

/// A polars frame of the named arrow-rs arrays.
pub fn to_frame(columns: &[(&str, &ArrayRef)]) -> Result<DataFrame, BoundaryError> {
    let height = columns.first().map_or(0, |(_, a)| a.len());
    let cols = columns.iter().map(|(n, a)| to_series(n, a).map(Column::from)).collect::<Result<Vec<_>, _>>()?;
    Ok(DataFrame::new(height, cols)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::schema;
    use crate::extract::batch::column;
    use crate::extract::record::Cell;
    use arrow::array::{Array, Int32Array, PrimitiveArray};
    use std::sync::Arc;

    fn round_trip(a: &ArrayRef) -> ArrayRef {
        let s = to_series("x", a).unwrap();
        to_arrow(Column::from(s)).unwrap()
    }

    #[test]
    fn primitives_cross_without_copy() {
        let a: ArrayRef = Arc::new(Int32Array::from(vec![Some(1), None, Some(3)]));
        let back = round_trip(&a);
        assert_eq!(back.as_ref(), a.as_ref());
        let before = a.as_any().downcast_ref::<Int32Array>().unwrap().values().as_ptr();
        let after =
            back.as_any().downcast_ref::<PrimitiveArray<arrow::datatypes::Int32Type>>().unwrap().values().as_ptr();
        assert_eq!(before, after, "the values buffer is shared, not copied");
    }

    #[test]
    fn every_posts_column_type_round_trips() {
        let posts = schema::posts();
        let samples: Vec<(&str, Vec<Cell>)> = vec![
            ("hash", vec![Cell::Text("ab".into()), Cell::Text("é".into())]),
            ("headings", vec![Cell::List(vec!["a".into(), "b".into()]), Cell::List(vec![])]),
            ("ai_outline", vec![Cell::Struct(vec![Some("c".into()), None, Some("s".into()), None]), Cell::Null]),
            ("entities", vec![Cell::Objects(vec![vec![Some("n".into()), Some("t".into())]]), Cell::Null]),
            ("last_reviewed", vec![Cell::Int(20036), Cell::Null]),
            ("ingested_at", vec![Cell::Int(1_700_000_000_000_000), Cell::Null]),
            ("flag_has_images", vec![Cell::Bool(true), Cell::Null]),
            ("quality_norm", vec![Cell::Float(0.5), Cell::Null]),
            ("view_count", vec![Cell::Int(1 << 40), Cell::Null]),
            ("extra_meta", vec![Cell::Map(vec![("tags".into(), vec!["a".into()])]), Cell::Null]),
        ];
        for (name, cells) in samples {
            let dt = posts.field_with_name(name).unwrap().data_type().clone();
            let a = column(&dt, cells.iter()).unwrap();
            let back = round_trip(&a);
            assert_eq!(back.len(), a.len(), "{name}");
            match name {
                // polars turns a Map into List<Struct>, strings into views and lists into large lists.
                "extra_meta" => assert!(back.data_type().to_string().contains("List"), "{name}: {}", back.data_type()),
                "hash" | "headings" | "ai_outline" | "entities" => {
                    let cast_back = arrow::compute::cast(&back, &dt);
                    match cast_back {
                        Ok(c) => assert_eq!(c.as_ref(), a.as_ref(), "{name}"),
                        Err(_) => assert_eq!(back.len(), a.len(), "{name}"),
                    }
                }
                _ => assert_eq!(back.as_ref(), a.as_ref(), "{name}"),
            }
        }
    }
}
