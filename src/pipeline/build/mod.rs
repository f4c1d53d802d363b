//! `build()`: a `PipelineConfig` checked against the posts table and compiled into a `Pipeline`.

mod derive;
mod entry;

use std::collections::HashSet;
use std::ops::Range;

use arrow::datatypes::{DataType, SchemaRef};
use toml::Spanned;

use super::config::{PipelineConfig, ValueType};
use super::error::{ConfigError, ConfigText};
use super::{FixedColumns, Pipeline, Target};
use crate::contract::schema;
use crate::pipeline::linematch::LinePattern;

/// Validates `cfg` (entries, then derive, then page patterns) and compiles it.
pub(super) fn build(t: &ConfigText, cfg: PipelineConfig) -> Result<Pipeline, ConfigError> {
    let cols = fixed_columns();
    let mut slots = ColumnSlots::new(&cols);
    let entries = entry::build_entries(t, &cfg.entries, &cols, &mut slots)?;
    let mut scalar_order: Vec<usize> =
        (0..entries.len()).filter(|&i| matches!(entries[i].target, Target::Scalar { .. })).collect();
    scalar_order.sort_by_key(|&i| std::cmp::Reverse(entries[i].key.len()));
    let derive = derive::build_derive(t, &cfg.derive, &slots)?;
    Ok(Pipeline {
        name: cfg.name,
        source: t.file.to_path_buf(),
        meta_start: line_pattern(t, &cfg.page.meta_start, "page.meta_start")?,
        trailer: line_pattern(t, &cfg.page.trailer, "page.trailer")?,
        image_line: line_pattern(t, &cfg.page.image_line, "page.image_line")?,
        entries,
        scalar_order,
        cols,
        derive,
        output: cfg.output,
    })
}

/// A page pattern, compiled; an invalid one names its key and the regex's complaint.
fn line_pattern(t: &ConfigText, s: &Spanned<String>, key: &str) -> Result<LinePattern, ConfigError> {
    let re = regex::Regex::new(s.get_ref()).map_err(|e| {
        let first = e.to_string().lines().last().unwrap_or("").trim().to_string();
        t.err(Some(s.span()), key, format!("invalid regular expression {:?}: {first}", s.get_ref()))
    })?;
    Ok(LinePattern::from_regex(re))
}

/// The slots of the columns every page fills, whatever its pipeline.
fn fixed_columns() -> FixedColumns {
    let posts = schema::posts_ref();
    let fixed = |n: &str| posts.index_of(n).expect("contract column");
    FixedColumns {
        hash: fixed("hash"),
        title: fixed("title"),
        headings: fixed("headings"),
        body: fixed("body"),
        similar_posts: fixed("similar_posts"),
        extra_meta: fixed("extra_meta"),
        unparsed_meta: fixed("unparsed_meta"),
        word_count: fixed("word_count"),
        paragraph_count: fixed("paragraph_count"),
        content_fingerprint: fixed("content_fingerprint"),
        issues: fixed("issues"),
        source_file: fixed("source_file"),
        source_offset: fixed("source_offset"),
        run_id: fixed("run_id"),
        ingested_at: fixed("ingested_at"),
        reading_time_est_min: fixed("reading_time_est_min"),
        quality_composite: fixed("quality_composite"),
        completeness: fixed("completeness"),
        ids_consistent: fixed("ids_consistent"),
    }
}

/// The posts columns by name, and which are taken: filled by quarry itself, or by an entry already.
struct ColumnSlots {
    posts: SchemaRef,
    reserved: HashSet<usize>,
    bound: HashSet<usize>,
}

impl ColumnSlots {
    fn new(c: &FixedColumns) -> ColumnSlots {
        // Every fixed column but `hash`, which the hash entry fills.
        let reserved = [
            c.title,
            c.headings,
            c.body,
            c.similar_posts,
            c.extra_meta,
            c.unparsed_meta,
            c.word_count,
            c.paragraph_count,
            c.content_fingerprint,
            c.issues,
            c.source_file,
            c.source_offset,
            c.run_id,
            c.ingested_at,
            c.reading_time_est_min,
            c.quality_composite,
            c.completeness,
            c.ids_consistent,
        ];
        ColumnSlots { posts: schema::posts(), reserved: reserved.into_iter().collect(), bound: HashSet::new() }
    }

    /// The slot and type of the posts column `name`; an unknown one lists the valid names.
    fn find(&self, t: &ConfigText, name: &Spanned<String>, key: &str) -> Result<(usize, DataType), ConfigError> {
        match self.posts.index_of(name.get_ref()) {
            Ok(i) => Ok((i, self.posts.field(i).data_type().clone())),
            Err(_) => {
                let names: Vec<&str> = self.posts.fields().iter().map(|f| f.name().as_str()).collect();
                Err(t.err(
                    Some(name.span()),
                    key,
                    format!("no column {:?} in the posts table; expected one of: {}", name.get_ref(), names.join(", ")),
                ))
            }
        }
    }

    /// Marks `col` as filled by the entry at `span`; a column quarry fills, or one filled already, is an error.
    fn bind(&mut self, t: &ConfigText, col: usize, span: Range<usize>, key: String) -> Result<(), ConfigError> {
        if self.reserved.contains(&col) {
            return Err(t.err(Some(span), key, "this column is filled by quarry itself, not from a meta entry"));
        }
        if !self.bound.insert(col) {
            return Err(t.err(Some(span), key, "column already filled by another entry"));
        }
        Ok(())
    }

    /// Whether no entry fills `col` and quarry does not fill it itself.
    fn is_free(&self, col: usize) -> bool {
        !self.bound.contains(&col) && !self.reserved.contains(&col)
    }
}

fn value_fits(value: ValueType, dt: &DataType) -> bool {
    match value {
        ValueType::Text | ValueType::Hash => dt == &DataType::Utf8,
        ValueType::Int => matches!(dt, DataType::Int32 | DataType::Int64),
        ValueType::Score => dt == &DataType::Int32,
        ValueType::Date => dt == &DataType::Date32,
        ValueType::Flag => dt == &DataType::Boolean,
    }
}

fn type_name(dt: &DataType) -> String {
    match dt {
        DataType::Utf8 => "string".into(),
        DataType::List(_) => "list".into(),
        DataType::Struct(_) => "struct".into(),
        other => format!("{other}").to_lowercase(),
    }
}
