//! The Arrow schemas of the warehouse tables (`shared/spec/warehouse.md`).
//! Analysts depend on these names and types: change them only with a migration note.

use std::sync::{Arc, OnceLock};

use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};

/// The scores of a post: each has a `<score>_score` (int32, 0–100) and a `<score>_norm` (float64) column.
pub const SCORES: [&str; 4] = ["quality", "freshness", "depth", "clarity"];

/// Time zone of every timestamp column.
pub const UTC: &str = "UTC";

fn text(name: &str) -> Field {
    Field::new(name, DataType::Utf8, true)
}

fn text_list(name: &str) -> Field {
    Field::new(name, list_of(DataType::Utf8), true)
}

/// `list<T>` with a nullable element named `item`.
pub fn list_of(item: DataType) -> DataType {
    DataType::List(Arc::new(Field::new("item", item, true)))
}

/// `struct<a, b, …: string>`.
pub fn text_struct(children: &[&str]) -> DataType {
    DataType::Struct(children.iter().map(|c| text(c)).collect::<Fields>())
}

fn timestamp(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into())), nullable)
}

/// `map<string, list<string>>` as Arrow lays out a Parquet MAP.
pub fn extra_meta_type() -> DataType {
    let entries = Field::new(
        "key_value",
        DataType::Struct(Fields::from(vec![Field::new("key", DataType::Utf8, false), text_list("value")])),
        false,
    );
    DataType::Map(Arc::new(entries), false)
}

/// The `posts` table: one row per unique hash.
pub fn posts() -> SchemaRef {
    posts_ref().clone()
}

/// The `posts` schema without touching its reference count (for hot loops).
pub fn posts_ref() -> &'static SchemaRef {
    static S: OnceLock<SchemaRef> = OnceLock::new();
    S.get_or_init(|| {
        let mut f = vec![
            Field::new("hash", DataType::Utf8, false),
            text("title"),
            text_list("headings"),
            text("body"),
            text("topic"),
            text("summary"),
            text("ai_brief"),
            Field::new("ai_outline", text_struct(&["context", "problem", "stack", "recommended_action"]), true),
            text_list("stack"),
            text_list("tools"),
            text_list("checklist"),
            text_list("notes"),
            text_list("similar_posts"),
            text("code_language"),
            text("difficulty"),
            Field::new("reading_time_min", DataType::Int32, true),
            Field::new("view_count", DataType::Int64, true),
        ];
        for s in SCORES {
            f.push(Field::new(format!("{s}_score"), DataType::Int32, true));
        }
        for s in SCORES {
            f.push(Field::new(format!("{s}_norm"), DataType::Float64, true));
        }
        f.extend([
            text("revision_status"),
            text("revision_version"),
            Field::new("last_reviewed", DataType::Date32, true),
            text("reference"),
        ]);
        for s in ["ai_generated_style", "has_images", "image_heavy", "needs_human_review"] {
            f.push(Field::new(format!("flag_{s}"), DataType::Boolean, true));
        }
        f.extend([
            Field::new("entities", list_of(text_struct(&["name", "type"])), true),
            Field::new("image_sources", list_of(text_struct(&["source", "url", "caption"])), true),
            text("source_id"),
            text("generator"),
            text("scenario"),
            Field::new("paragraphs_declared", DataType::Int32, true),
            Field::new("seed", DataType::Int64, true),
            Field::new("extra_meta", extra_meta_type(), true),
            text_list("unparsed_meta"),
            Field::new("word_count", DataType::Int32, true),
            Field::new("paragraph_count", DataType::Int32, true),
            Field::new("reading_time_est_min", DataType::Float64, true),
            Field::new("quality_composite", DataType::Float64, true),
            Field::new("completeness", DataType::Float64, true),
            Field::new("ids_consistent", DataType::Boolean, true),
            text("content_fingerprint"),
            text_list("issues"),
            text("source_file"),
            Field::new("source_offset", DataType::Int64, true),
            text("run_id"),
            timestamp("ingested_at", true),
        ]);
        Arc::new(Schema::new(f))
    })
}

/// The `rejects` table: pages that could not be imported, with their raw bytes.
pub fn rejects() -> SchemaRef {
    static S: OnceLock<SchemaRef> = OnceLock::new();
    S.get_or_init(|| {
        Arc::new(Schema::new(vec![
            text("run_id"),
            text("source_file"),
            Field::new("source_offset", DataType::Int64, true),
            text("reason"),
            text("detail"),
            Field::new("raw", DataType::Binary, true),
        ]))
    })
    .clone()
}

/// The `duplicates` table: pages whose hash was already taken.
pub fn duplicates() -> SchemaRef {
    static S: OnceLock<SchemaRef> = OnceLock::new();
    S.get_or_init(|| {
        Arc::new(Schema::new(vec![
            text("run_id"),
            text("hash"),
            text("source_file"),
            Field::new("source_offset", DataType::Int64, true),
            text("first_run_id"),
        ]))
    })
    .clone()
}

/// The `runs` table: one row per finished run.
pub fn runs() -> SchemaRef {
    static S: OnceLock<SchemaRef> = OnceLock::new();
    S.get_or_init(|| {
        let count = |n: &str| Field::new(n, DataType::Int64, true);
        Arc::new(Schema::new(vec![
            text("run_id"),
            timestamp("started_at", true),
            timestamp("finished_at", true),
            text("pipeline"),
            text_list("inputs"),
            count("files"),
            count("files_skipped"),
            count("bytes_read"),
            count("pages"),
            count("imported"),
            count("duplicates"),
            count("rejected"),
            count("issues"),
            text("status"),
        ]))
    })
    .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn posts_has_the_contract_columns_in_order() {
        let s = posts();
        let names: Vec<&str> = s.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names.len(), 54);
        assert_eq!(names[0], "hash");
        assert!(!s.field(0).is_nullable());
        assert_eq!(names.last(), Some(&"ingested_at"));
        assert!(matches!(s.field_with_name("extra_meta").unwrap().data_type(), DataType::Map(_, false)));
        assert!(!names.contains(&"ingest_date"), "ingest_date lives in the folder path only");
    }
}
