//! `PipelineConfig`: the pipeline file as plain serde data. `build()` in `mod.rs` validates it.

use serde::Deserialize;
use toml::Spanned;

/// Default words per minute for `reading_time_est_min`.
pub const DEFAULT_WORDS_PER_MINUTE: f64 = 200.0;
/// Default number of pages per Arrow record batch.
pub const DEFAULT_BATCH_ROWS: usize = 8192;
/// Default Parquet row group size (rows).
pub const DEFAULT_ROW_GROUP_ROWS: usize = 65536;
/// Default zstd level for Parquet pages.
pub const DEFAULT_ZSTD_LEVEL: i32 = 3;

/// A whole pipeline file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// A short name for the layout, stored in the `runs` table.
    pub name: String,
    /// How pages are cut out of a dump and how article lines are told apart.
    pub page: PageConfig,
    /// Derived columns.
    #[serde(default)]
    pub derive: DeriveConfig,
    /// Parquet output settings.
    #[serde(default)]
    pub output: OutputConfig,
    /// The known meta entries, in any order.
    #[serde(rename = "entry")]
    pub entries: Vec<EntryConfig>,
}

/// Patterns of a page, each matched against a trimmed line.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageConfig {
    /// The line that opens the meta block.
    pub meta_start: Spanned<String>,
    /// The line that closes a page (followed by optional bullet lines).
    pub trailer: Spanned<String>,
    /// An article line that is an image reference, not body text.
    pub image_line: Spanned<String>,
}

/// Settings of the derived columns.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeriveConfig {
    /// Words per minute for `reading_time_est_min`.
    #[serde(default = "default_wpm")]
    pub words_per_minute: f64,
    /// Columns whose first integer must agree for `ids_consistent`.
    #[serde(default)]
    pub ids_consistent: Vec<Spanned<String>>,
    /// Score columns: their normalized column and weight in `quality_composite`.
    #[serde(default)]
    pub score: Vec<ScoreConfig>,
}

impl Default for DeriveConfig {
    fn default() -> Self {
        DeriveConfig { words_per_minute: DEFAULT_WORDS_PER_MINUTE, ids_consistent: Vec::new(), score: Vec::new() }
    }
}

fn default_wpm() -> f64 {
    DEFAULT_WORDS_PER_MINUTE
}

/// One score column and how it is normalized and weighted.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreConfig {
    /// The int32 score column (0–100).
    pub column: Spanned<String>,
    /// The float64 column that receives score / 100.
    pub norm: Spanned<String>,
    /// Weight in `quality_composite`.
    pub weight: f64,
}

/// Parquet output settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    /// Pages per record batch.
    #[serde(default = "default_batch_rows")]
    pub batch_rows: usize,
    /// Rows per Parquet row group.
    #[serde(default = "default_row_group_rows")]
    pub row_group_rows: usize,
    /// zstd compression level (1–22).
    #[serde(default = "default_zstd_level")]
    pub zstd_level: i32,
}

impl Default for OutputConfig {
    fn default() -> Self {
        OutputConfig {
            batch_rows: DEFAULT_BATCH_ROWS,
            row_group_rows: DEFAULT_ROW_GROUP_ROWS,
            zstd_level: DEFAULT_ZSTD_LEVEL,
        }
    }
}

fn default_batch_rows() -> usize {
    DEFAULT_BATCH_ROWS
}
fn default_row_group_rows() -> usize {
    DEFAULT_ROW_GROUP_ROWS
}
fn default_zstd_level() -> i32 {
    DEFAULT_ZSTD_LEVEL
}

/// How a meta entry is laid out in the dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    /// Key glued to its value on one line.
    Scalar,
    /// Key alone, then bullet lines of text.
    List,
    /// Key alone, then bullet lines `name: value`.
    Pairs,
    /// Key alone, then `name: value` bullets grouped into objects (a name seen again starts the next).
    Objects,
}

/// How a value is parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueType {
    /// Trimmed text with HTML character references decoded.
    Text,
    /// An integer with optional thousands separators.
    Int,
    /// A 0–100 score in any of its notations.
    Score,
    /// A calendar date in any of its notations.
    Date,
    /// 1/0, true/false, yes/no.
    Flag,
    /// The page's identity: 16–64 hex digits; anything else rejects the page.
    Hash,
}

/// One known meta entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryConfig {
    /// The key as written in dumps (matched case-insensitively, white space folded).
    pub key: Spanned<String>,
    /// Layout of the entry.
    pub kind: EntryKind,
    /// Value type of a scalar entry.
    #[serde(default)]
    pub value: Option<ValueType>,
    /// Lower-case a text value.
    #[serde(default)]
    pub lowercase: bool,
    /// The posts column: a scalar's or list's column, a pairs entry's struct column (optional),
    /// an objects entry's list-of-struct column.
    #[serde(default)]
    pub column: Option<Spanned<String>>,
    /// Named fields of a pairs or objects entry.
    #[serde(default)]
    pub fields: Vec<FieldConfig>,
}

/// A named field inside a pairs or objects entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldConfig {
    /// The name before the colon.
    pub name: Spanned<String>,
    /// Its value type.
    pub value: ValueType,
    /// Lower-case a text value.
    #[serde(default)]
    pub lowercase: bool,
    /// The posts column (or the struct child, when the entry has a `column`).
    pub column: Spanned<String>,
}
