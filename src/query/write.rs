//! A query's result on a byte stream: CSV through arrow-csv, JSON Lines through arrow-json, and an
//! aligned table through arrow's pretty printer.
//!
//! The polars frame crosses into Arrow record batches of `BATCH_ROWS` rows, each written as soon as
//! it is converted. In every format dates are `YYYY-MM-DD` and timestamps RFC 3339 in UTC
//! (`2026-11-26T14:18:05.331773Z`; a timestamp without a zone has no `Z`); binary is hex.

use std::io::{self, Write};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, NullArray, RecordBatch, RecordBatchOptions, StringBuilder};
use arrow::datatypes::{DataType as ArrowType, Field, FieldRef, Schema};
use arrow::error::ArrowError;
use arrow::json::writer::{make_encoder, EncoderOptions, LineDelimited};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use arrow::util::pretty::pretty_format_batches_with_options;
use polars::prelude::{DataFrame, DataType};

use super::{Format, QueryError};
use crate::transform::ffi;

/// Rows per Arrow batch written.
const BATCH_ROWS: usize = 16_384;
/// Longest cell of the aligned table, in characters; longer ones end in `…`.
const MAX_CELL: usize = 60;
/// Timestamps with a zone (the warehouse's are UTC): RFC 3339 with `Z`.
const TIMESTAMP_UTC: &str = "%Y-%m-%dT%H:%M:%S%.6fZ";
/// Timestamps without a zone: the same without `Z`, since they name no instant.
const TIMESTAMP_LOCAL: &str = "%Y-%m-%dT%H:%M:%S%.6f";
/// The zone every zoned timestamp is relabelled to: an offset arrow-rs reads without a zone database.
const UTC_OFFSET: &str = "+00:00";

/// Writes a result in a format, flushing `out` at the end.
pub fn write(df: &DataFrame, format: Format, out: &mut dyn Write) -> Result<(), QueryError> {
    let mut sink = Sink { out, error: None };
    let written = match format {
        Format::Csv => write_csv(df, &mut sink),
        Format::Json => write_json(df, &mut sink),
        Format::Table => write_table(df, &mut sink),
    }
    .and_then(|()| sink.flush().map_err(QueryError::Write));
    match (written, sink.error.take()) {
        // The stream's own error (a closed pipe, say) rather than an encoder's text of it.
        (Err(_), Some(io)) => Err(QueryError::Write(io)),
        (result, _) => result,
    }
}

/// The result as Arrow record batches of at most `BATCH_ROWS` rows (one, empty, for no rows), with
/// every zoned timestamp labelled UTC.
pub fn batches(df: &DataFrame) -> impl Iterator<Item = Result<RecordBatch, QueryError>> + '_ {
    let starts = (0..df.height().max(1)).step_by(BATCH_ROWS);
    starts.map(move |start| record_batch(&df.slice(start as i64, BATCH_ROWS)))
}

fn record_batch(df: &DataFrame) -> Result<RecordBatch, QueryError> {
    let mut fields = Vec::with_capacity(df.width());
    let mut arrays = Vec::with_capacity(df.width());
    for c in df.columns() {
        // polars exports a Null column with a buffer arrow-rs refuses: build it here.
        let array = if c.dtype() == &DataType::Null {
            Arc::new(NullArray::new(c.len())) as ArrayRef
        } else {
            ffi::to_arrow(c.clone())?
        };
        let utc = in_utc(array.data_type());
        let array = if &utc == array.data_type() { array } else { arrow::compute::cast(&array, &utc)? };
        fields.push(Field::new(c.name().as_str(), array.data_type().clone(), true));
        arrays.push(array);
    }
    let options = RecordBatchOptions::new().with_row_count(Some(df.height()));
    Ok(RecordBatch::try_new_with_options(Arc::new(Schema::new(fields)), arrays, &options)?)
}

/// A type with every zoned timestamp in it relabelled `+00:00` (the same instants).
fn in_utc(t: &ArrowType) -> ArrowType {
    let field = |f: &FieldRef| -> FieldRef { Arc::new(f.as_ref().clone().with_data_type(in_utc(f.data_type()))) };
    match t {
        ArrowType::Timestamp(unit, Some(_)) => ArrowType::Timestamp(*unit, Some(UTC_OFFSET.into())),
        ArrowType::List(f) => ArrowType::List(field(f)),
        ArrowType::LargeList(f) => ArrowType::LargeList(field(f)),
        ArrowType::FixedSizeList(f, n) => ArrowType::FixedSizeList(field(f), *n),
        ArrowType::Struct(fields) => ArrowType::Struct(fields.iter().map(field).collect()),
        ArrowType::Map(f, sorted) => ArrowType::Map(field(f), *sorted),
        other => other.clone(),
    }
}

fn display_options() -> FormatOptions<'static> {
    FormatOptions::new().with_timestamp_tz_format(Some(TIMESTAMP_UTC)).with_timestamp_format(Some(TIMESTAMP_LOCAL))
}

fn json_options() -> EncoderOptions {
    EncoderOptions::default()
        .with_explicit_nulls(true)
        .with_timestamp_tz_format(TIMESTAMP_UTC.into())
        .with_timestamp_format(TIMESTAMP_LOCAL.into())
}

fn write_csv(df: &DataFrame, out: &mut Sink) -> Result<(), QueryError> {
    let mut w = arrow::csv::WriterBuilder::new()
        .with_header(true)
        .with_line_terminator(arrow::csv::writer::Terminator::Any(b'\n'))
        .with_timestamp_tz_format(TIMESTAMP_UTC.into())
        .with_timestamp_format(TIMESTAMP_LOCAL.into())
        .build(out);
    for batch in batches(df) {
        w.write(&nested_as_json(&batch?)?)?;
    }
    Ok(())
}

fn write_json(df: &DataFrame, out: &mut Sink) -> Result<(), QueryError> {
    let mut w = arrow::json::WriterBuilder::new()
        .with_explicit_nulls(true)
        .with_timestamp_tz_format(TIMESTAMP_UTC.into())
        .with_timestamp_format(TIMESTAMP_LOCAL.into())
        .build::<_, LineDelimited>(out);
    for batch in batches(df) {
        w.write(&batch?)?;
    }
    w.finish()?;
    Ok(())
}

fn write_table(df: &DataFrame, out: &mut Sink) -> Result<(), QueryError> {
    let cells = batches(df).map(|b| table_cells(&b?)).collect::<Result<Vec<_>, QueryError>>()?;
    let table = pretty_format_batches_with_options(&cells, &FormatOptions::new().with_null("null"))?;
    let rows = df.height();
    writeln!(out, "{table}\n({rows} row{})", if rows == 1 { "" } else { "s" }).map_err(QueryError::Write)
}

/// A column's values as text, as the CSV writer prints them (null as None).
pub fn texts(df: &DataFrame, column: &str) -> Result<Vec<Option<String>>, QueryError> {
    let one = df.select([column]).map_err(QueryError::Sql)?;
    let options = display_options();
    let mut out = Vec::with_capacity(df.height());
    for batch in batches(&one) {
        let batch = nested_as_json(&batch?)?;
        let array = batch.column(0);
        let formatter = ArrayFormatter::try_new(array.as_ref(), &options)?;
        for row in 0..array.len() {
            out.push(if array.is_null(row) { None } else { Some(formatter.value(row).try_to_string()?) });
        }
    }
    Ok(out)
}

/// A batch with each list, struct or map column as a column of its JSON text (what arrow-csv cannot
/// write itself).
fn nested_as_json(batch: &RecordBatch) -> Result<RecordBatch, ArrowError> {
    if !batch.schema().fields().iter().any(|f| f.data_type().is_nested()) {
        return Ok(batch.clone());
    }
    let options = json_options();
    let mut fields = Vec::with_capacity(batch.num_columns());
    let mut arrays = Vec::with_capacity(batch.num_columns());
    for (field, array) in batch.schema().fields().iter().zip(batch.columns()) {
        if field.data_type().is_nested() {
            fields.push(Field::new(field.name(), ArrowType::Utf8, true));
            arrays.push(json_text(field, array, &options)?);
        } else {
            fields.push(field.as_ref().clone());
            arrays.push(array.clone());
        }
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
}

/// Each value of a column as its JSON text (null stays null).
fn json_text(field: &FieldRef, array: &ArrayRef, options: &EncoderOptions) -> Result<ArrayRef, ArrowError> {
    let mut encoder = make_encoder(field, array.as_ref(), options)?;
    let mut text = StringBuilder::with_capacity(array.len(), array.get_array_memory_size());
    let mut buf = Vec::new();
    for row in 0..array.len() {
        if encoder.is_null(row) {
            text.append_null();
            continue;
        }
        buf.clear();
        encoder.encode(row, &mut buf);
        text.append_value(std::str::from_utf8(&buf).map_err(|e| ArrowError::JsonError(e.to_string()))?);
    }
    Ok(Arc::new(text.finish()))
}

/// The aligned table's cells: each value as one line of at most `MAX_CELL` characters, floats to
/// six decimals (or six significant digits when very small or large), nested values as JSON.
fn table_cells(batch: &RecordBatch) -> Result<RecordBatch, QueryError> {
    let batch = nested_as_json(batch)?;
    let options = display_options();
    let mut fields = Vec::with_capacity(batch.num_columns());
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(batch.num_columns());
    for (field, array) in batch.schema().fields().iter().zip(batch.columns()) {
        let floats = match array.data_type() {
            ArrowType::Float16 | ArrowType::Float32 | ArrowType::Float64 => {
                Some(arrow::compute::cast(array, &ArrowType::Float64)?)
            }
            _ => None,
        };
        let formatter = ArrayFormatter::try_new(array.as_ref(), &options)?;
        let mut cells = StringBuilder::with_capacity(array.len(), array.len() * 8);
        for row in 0..array.len() {
            if array.is_null(row) {
                cells.append_null();
            } else if let Some(f) = &floats {
                cells.append_value(readable_float(f.as_primitive::<arrow::datatypes::Float64Type>().value(row)));
            } else {
                cells.append_value(one_line(&formatter.value(row).try_to_string()?, MAX_CELL));
            }
        }
        fields.push(Field::new(field.name(), ArrowType::Utf8, true));
        arrays.push(Arc::new(cells.finish()));
    }
    let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    Ok(RecordBatch::try_new_with_options(Arc::new(Schema::new(fields)), arrays, &options)?)
}

/// A float for people: six decimals without trailing zeros, or six significant digits in
/// scientific notation when that would show too little or too many digits.
fn readable_float(f: f64) -> String {
    if f == 0.0 || !f.is_finite() {
        return f.to_string();
    }
    let trim = |s: &str| s.trim_end_matches('0').trim_end_matches('.').to_string();
    if (1e-4..1e15).contains(&f.abs()) {
        trim(&format!("{f:.6}"))
    } else {
        let s = format!("{f:.5e}");
        let (mantissa, exponent) = s.split_once('e').unwrap_or((&s, "0"));
        format!("{}e{exponent}", trim(mantissa))
    }
}

/// A value on one line (control characters escaped), cut to `max` characters with `…`.
fn one_line(s: &str, max: usize) -> String {
    let max = max.max(1);
    let mut line: Vec<char> = Vec::with_capacity(max + 1);
    // Escaping stops one character past `max`: enough to know the value was cut.
    'text: for c in s.chars() {
        let escaped = c.is_control().then(|| c.escape_default());
        for e in escaped.into_iter().flatten().chain((!c.is_control()).then_some(c)) {
            if line.len() > max {
                break 'text;
            }
            line.push(e);
        }
    }
    if line.len() > max {
        line.truncate(max - 1);
        line.push('…');
    }
    line.into_iter().collect()
}

/// The output stream, remembering the first I/O error so that it, not an encoder's text of it,
/// reaches the caller (a closed pipe must stay recognisable).
struct Sink<'a> {
    out: &'a mut dyn Write,
    error: Option<io::Error>,
}

impl Sink<'_> {
    fn keep(&mut self, e: io::Error) -> io::Error {
        let copy = io::Error::new(e.kind(), e.to_string());
        self.error.get_or_insert(e);
        copy
    }
}

impl Write for Sink<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.write(buf).map_err(|e| self.keep(e))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush().map_err(|e| self.keep(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{
        BooleanArray, Date32Array, Float64Array, Int64Array, ListBuilder, StringArray, StructArray,
        TimestampMicrosecondArray,
    };
    use arrow::datatypes::Fields;

    /// A frame with the awkward cases: quoting, nulls, a list, a struct, a date and a UTC timestamp.
    fn sample() -> DataFrame {
        let text: ArrayRef = Arc::new(StringArray::from(vec![Some("a,b"), Some("say \"hi\"\nbye"), None]));
        let n: ArrayRef = Arc::new(Int64Array::from(vec![Some(1), None, Some(-3)]));
        let x: ArrayRef = Arc::new(Float64Array::from(vec![Some(0.1 + 0.2), Some(2.0), None]));
        let ok: ArrayRef = Arc::new(BooleanArray::from(vec![Some(true), Some(false), None]));
        let mut list = ListBuilder::new(arrow::array::StringBuilder::new());
        list.append_value([Some("x"), None]);
        list.append_value([] as [Option<&str>; 0]);
        list.append_null();
        let list: ArrayRef = Arc::new(list.finish());
        let fields = Fields::from(vec![Field::new("k", ArrowType::Utf8, true)]);
        let kids: ArrayRef = Arc::new(StringArray::from(vec![Some("v"), None, Some("w")]));
        let object: ArrayRef = Arc::new(StructArray::new(fields, vec![kids], None));
        let day: ArrayRef = Arc::new(Date32Array::from(vec![Some(20783), None, Some(0)]));
        let at: ArrayRef = Arc::new(
            TimestampMicrosecondArray::from(vec![Some(1_764_166_685_331_773), Some(0), None]).with_timezone("UTC"),
        );
        let cols = [
            ("text", &text),
            ("n", &n),
            ("x", &x),
            ("ok", &ok),
            ("list", &list),
            ("object", &object),
            ("day", &day),
            ("at", &at),
        ];
        ffi::to_frame(&cols).unwrap()
    }

    fn render(df: &DataFrame, format: Format) -> String {
        let mut out = Vec::new();
        write(df, format, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn csv_has_lf_lines_quotes_nulls_and_json_cells() {
        let csv = render(&sample(), Format::Csv);
        assert!(!csv.contains('\r'), "{csv:?}");
        assert_eq!(
            csv,
            "text,n,x,ok,list,object,day,at\n\
             \"a,b\",1,0.30000000000000004,true,\"[\"\"x\"\",null]\",\"{\"\"k\"\":\"\"v\"\"}\",2026-11-26,2025-11-26T14:18:05.331773Z\n\
             \"say \"\"hi\"\"\nbye\",,2.0,false,[],\"{\"\"k\"\":null}\",,1970-01-01T00:00:00.000000Z\n\
             ,-3,,,,\"{\"\"k\"\":\"\"w\"\"}\",1970-01-01,\n"
        );
    }

    #[test]
    fn csv_of_no_rows_is_its_header() {
        let df = sample().slice(0, 0);
        assert_eq!(render(&df, Format::Csv), "text,n,x,ok,list,object,day,at\n");
    }

    #[test]
    fn json_lines_keep_column_order_and_explicit_nulls() {
        let lines: Vec<String> = render(&sample(), Format::Json).lines().map(str::to_string).collect();
        assert_eq!(
            lines,
            [
                r#"{"text":"a,b","n":1,"x":0.30000000000000004,"ok":true,"list":["x",null],"object":{"k":"v"},"day":"2026-11-26","at":"2025-11-26T14:18:05.331773Z"}"#,
                r#"{"text":"say \"hi\"\nbye","n":null,"x":2.0,"ok":false,"list":[],"object":{"k":null},"day":null,"at":"1970-01-01T00:00:00.000000Z"}"#,
                r#"{"text":null,"n":-3,"x":null,"ok":null,"list":null,"object":{"k":"w"},"day":"1970-01-01","at":null}"#,
            ]
        );
    }

    #[test]
    fn table_is_aligned_one_line_per_row_with_a_count() {
        let table = render(&sample(), Format::Table);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 8, "{table}");
        assert_eq!(lines[0], lines[2]);
        assert_eq!(lines[0], lines[6]);
        assert!(lines.iter().take(7).all(|l| l.chars().count() == lines[0].chars().count()), "{table}");
        assert!(lines[1].starts_with("| text ") && lines[1].contains("| at "), "{}", lines[1]);
        assert!(lines[3].contains("| 0.3 ") && lines[3].contains("| 2026-11-26 "), "{}", lines[3]);
        assert!(lines[4].contains(r#"say "hi"\nbye"#) && lines[4].contains("| 2 "), "{}", lines[4]);
        assert!(lines[5].starts_with("| null "), "{}", lines[5]);
        assert_eq!(lines[7], "(3 rows)");
        assert!(render(&sample().slice(0, 1), Format::Table).ends_with("\n(1 row)\n"));
    }

    #[test]
    fn floats_and_cells_for_people() {
        assert_eq!(readable_float(0.5083333333), "0.508333");
        assert_eq!(readable_float(2.0), "2");
        assert_eq!(readable_float(-1234.5), "-1234.5");
        assert_eq!(readable_float(0.0), "0");
        assert_eq!(readable_float(1.5e-7), "1.5e-7");
        assert_eq!(readable_float(6.02214076e23), "6.02214e23");
        assert_eq!(readable_float(f64::NAN), "NaN");
        assert_eq!(one_line("a\nb\tc", 60), "a\\nb\\tc");
        assert_eq!(one_line("abcdef", 6), "abcdef");
        assert_eq!(one_line("abcdefg", 6), "abcde…");
        assert_eq!(one_line("ééééééé", 3), "éé…");
    }

    #[test]
    fn timestamps_in_any_zone_print_as_utc() {
        let at: ArrayRef = Arc::new(TimestampMicrosecondArray::from(vec![Some(0)]).with_timezone("+02:00"));
        let df = ffi::to_frame(&[("at", &at)]).unwrap();
        assert_eq!(render(&df, Format::Csv), "at\n1970-01-01T00:00:00.000000Z\n");
    }

    /// Accepts `room` bytes, then fails as a closed pipe does.
    struct ClosedPipe {
        room: usize,
    }

    impl Write for ClosedPipe {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(io::Error::from(io::ErrorKind::BrokenPipe));
            }
            let n = buf.len().min(self.room);
            self.room -= n;
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_closed_pipe_stays_an_io_error() {
        let df = sample();
        for format in [Format::Csv, Format::Json, Format::Table] {
            for room in [0, 10] {
                match write(&df, format, &mut ClosedPipe { room }) {
                    Err(QueryError::Write(e)) => assert_eq!(e.kind(), io::ErrorKind::BrokenPipe, "{format:?}"),
                    other => panic!("{format:?}: {other:?}"),
                }
            }
        }
    }
}
