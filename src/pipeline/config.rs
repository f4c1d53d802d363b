//! `PipelineConfig`: the pipeline file as plain serde data. `build()` in `build/` validates it.
//!
//! An `[[entry]]` is read as a `RawEntry` (every key of every kind, each with its span) and turned
//! into the `EntryConfig` of its kind by `kinds::typed_entry`, which rejects a key the kind does not
//! take: serde's internally tagged enums buffer their content and would lose the spans.

use std::fmt;
use std::num::NonZeroUsize;

use serde::de::{Error as _, Unexpected};
use serde::{Deserialize, Deserializer};
use toml::Spanned;

/// Default words per minute for `reading_time_est_min`.
pub const DEFAULT_WORDS_PER_MINUTE: f64 = 200.0;
/// Default number of pages per Arrow record batch.
pub const DEFAULT_BATCH_ROWS: NonZeroUsize = NonZeroUsize::new(8192).unwrap();
/// Default Parquet row group size (rows).
pub const DEFAULT_ROW_GROUP_ROWS: NonZeroUsize = NonZeroUsize::new(65536).unwrap();
/// Default zstd level for Parquet pages.
pub const DEFAULT_ZSTD_LEVEL: ZstdLevel = ZstdLevel(3);

/// A whole pipeline file; `E` is an entry as read (`RawEntry`) or checked against its kind (`EntryConfig`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig<E = EntryConfig> {
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
    pub entries: Vec<E>,
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
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeriveConfig {
    /// Words per minute for `reading_time_est_min` (`DEFAULT_WORDS_PER_MINUTE` when absent).
    #[serde(default)]
    pub words_per_minute: Option<Spanned<f64>>,
    /// Columns whose first integer must agree for `ids_consistent`.
    #[serde(default)]
    pub ids_consistent: Vec<Spanned<String>>,
    /// Score columns: their normalized column and weight in `quality_composite`.
    #[serde(default)]
    pub score: Vec<ScoreConfig>,
}

/// One score column and how it is normalized and weighted.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreConfig {
    /// The int32 score column (0–100).
    pub column: Spanned<String>,
    /// The float64 column that receives score / 100.
    pub norm: Spanned<String>,
    /// Weight in `quality_composite` (finite, ≥ 0).
    pub weight: Spanned<f64>,
}

/// Parquet output settings; every value is valid once parsed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    /// Pages per record batch.
    #[serde(default = "default_batch_rows", deserialize_with = "row_count")]
    pub batch_rows: NonZeroUsize,
    /// Rows per Parquet row group.
    #[serde(default = "default_row_group_rows", deserialize_with = "row_count")]
    pub row_group_rows: NonZeroUsize,
    /// zstd compression level.
    #[serde(default = "default_zstd_level")]
    pub zstd_level: ZstdLevel,
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

/// A count of rows: a whole number ≥ 1 (serde's own message for zero says "a nonzero usize").
fn row_count<'de, D: Deserializer<'de>>(d: D) -> Result<NonZeroUsize, D::Error> {
    let n = i64::deserialize(d)?;
    usize::try_from(n)
        .ok()
        .and_then(NonZeroUsize::new)
        .ok_or_else(|| D::Error::invalid_value(Unexpected::Signed(n), &"a number of rows ≥ 1"))
}

fn default_batch_rows() -> NonZeroUsize {
    DEFAULT_BATCH_ROWS
}
fn default_row_group_rows() -> NonZeroUsize {
    DEFAULT_ROW_GROUP_ROWS
}
fn default_zstd_level() -> ZstdLevel {
    DEFAULT_ZSTD_LEVEL
}

/// A zstd compression level, 1 to 22.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ZstdLevel(i32);

impl ZstdLevel {
    /// The levels zstd accepts.
    pub const RANGE: std::ops::RangeInclusive<i32> = 1..=22;

    /// `level`, when zstd accepts it.
    pub fn new(level: i64) -> Option<ZstdLevel> {
        i32::try_from(level).ok().filter(|l| Self::RANGE.contains(l)).map(ZstdLevel)
    }

    /// The level as zstd takes it.
    pub fn get(self) -> i32 {
        self.0
    }
}

impl fmt::Debug for ZstdLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<'de> Deserialize<'de> for ZstdLevel {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let level = i64::deserialize(d)?;
        ZstdLevel::new(level)
            .ok_or_else(|| D::Error::invalid_value(Unexpected::Signed(level), &"a zstd level from 1 to 22"))
    }
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

impl EntryKind {
    /// The name written in pipeline files.
    pub fn name(self) -> &'static str {
        match self {
            EntryKind::Scalar => "scalar",
            EntryKind::List => "list",
            EntryKind::Pairs => "pairs",
            EntryKind::Objects => "objects",
        }
    }
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

impl ValueType {
    /// The name written in pipeline files.
    pub fn name(self) -> &'static str {
        match self {
            ValueType::Text => "text",
            ValueType::Int => "int",
            ValueType::Score => "score",
            ValueType::Date => "date",
            ValueType::Flag => "flag",
            ValueType::Hash => "hash",
        }
    }

    /// Whether `lowercase` changes a value of this type (only text has case).
    pub fn has_case(self) -> bool {
        matches!(self, ValueType::Text | ValueType::Hash)
    }
}

/// One `[[entry]]` table as written: the keys of every kind, each optional and with its span.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEntry {
    /// The key as written in dumps.
    pub key: Spanned<String>,
    /// Layout of the entry; decides which of the other keys it takes.
    pub kind: Spanned<EntryKind>,
    /// Value type (scalar).
    pub value: Option<Spanned<ValueType>>,
    /// Lower-case a text value (scalar).
    pub lowercase: Option<Spanned<bool>>,
    /// The posts column (scalar, list, objects; optional on pairs).
    pub column: Option<Spanned<String>>,
    /// Named fields (pairs, objects).
    pub fields: Option<Spanned<Vec<FieldConfig>>>,
}

/// One known meta entry, with only the keys its kind takes.
#[derive(Debug)]
pub enum EntryConfig {
    /// `kind = "scalar"`.
    Scalar(ScalarEntry),
    /// `kind = "list"`.
    List(ListEntry),
    /// `kind = "pairs"`.
    Pairs(PairsEntry),
    /// `kind = "objects"`.
    Objects(ObjectsEntry),
}

impl EntryConfig {
    /// The key as written in dumps (matched case-insensitively, white space folded).
    pub fn key(&self) -> &Spanned<String> {
        match self {
            EntryConfig::Scalar(e) => &e.key,
            EntryConfig::List(e) => &e.key,
            EntryConfig::Pairs(e) => &e.key,
            EntryConfig::Objects(e) => &e.key,
        }
    }
}

/// Key glued to its value on one line; the value goes into one column.
#[derive(Debug)]
pub struct ScalarEntry {
    /// The key as written in dumps.
    pub key: Spanned<String>,
    /// How the value is parsed.
    pub value: Spanned<ValueType>,
    /// Lower-case the value (text and hash values only).
    pub lowercase: bool,
    /// The posts column it fills.
    pub column: Spanned<String>,
}

/// Key alone, then bullet lines of text, into a list<string> column.
#[derive(Debug)]
pub struct ListEntry {
    /// The key as written in dumps.
    pub key: Spanned<String>,
    /// The list<string> posts column it fills.
    pub column: Spanned<String>,
}

/// Key alone, then `name: value` bullets: each field into its own column, or all into one struct column.
#[derive(Debug)]
pub struct PairsEntry {
    /// The key as written in dumps.
    pub key: Spanned<String>,
    /// The struct<…: string> column holding all fields; without it each field fills its own column.
    pub column: Option<Spanned<String>>,
    /// The known names (at least one).
    pub fields: Vec<FieldConfig>,
}

/// Key alone, then `name: value` bullets grouped into objects, into a list<struct> column.
#[derive(Debug)]
pub struct ObjectsEntry {
    /// The key as written in dumps.
    pub key: Spanned<String>,
    /// The list<struct<…: string>> posts column.
    pub column: Spanned<String>,
    /// The known names (at least one); each a child of the struct.
    pub fields: Vec<FieldConfig>,
}

/// A named field inside a pairs or objects entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldConfig {
    /// The name before the colon.
    pub name: Spanned<String>,
    /// Its value type.
    pub value: Spanned<ValueType>,
    /// Lower-case a text value.
    #[serde(default)]
    pub lowercase: Option<Spanned<bool>>,
    /// The posts column (or the struct child, when the entry has a `column`).
    pub column: Spanned<String>,
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::pipeline::{ConfigError, Pipeline, BUILTIN_TOML as ALPHANODE};

    fn with_output(output: &str) -> Result<Pipeline, ConfigError> {
        let old = "[output]\nbatch_rows = 4096\nrow_group_rows = 16384\nzstd_level = 1\n";
        assert!(ALPHANODE.contains(old));
        Pipeline::from_toml(Path::new("p.toml"), &ALPHANODE.replacen(old, output, 1))
    }

    /// 1-based line of `line` in the pipeline once `[output]` is `output`.
    fn output_line(output: &str, line: &str) -> usize {
        let at = ALPHANODE.find("[output]\n").unwrap();
        ALPHANODE[..at].matches('\n').count() + 1 + output.lines().position(|l| l == line).unwrap()
    }

    #[test]
    fn zero_rows_are_an_error_at_parse_time() {
        let output = "[output]\nbatch_rows = 0\n";
        let e = with_output(output).unwrap_err();
        assert_eq!(e.key, "output.batch_rows", "{e}");
        assert_eq!(e.line, output_line(output, "batch_rows = 0"), "{e}");
        assert_eq!(e.message, "invalid value: integer `0`, expected a number of rows ≥ 1");
        let output = "[output]\nbatch_rows = 10\nrow_group_rows = 0\n";
        let e = with_output(output).unwrap_err();
        assert_eq!(e.key, "output.row_group_rows", "{e}");
        assert_eq!(e.line, output_line(output, "row_group_rows = 0"), "{e}");
        let e = with_output("[output]\nrow_group_rows = 1.5\n").unwrap_err();
        assert!(e.message.starts_with("invalid type: floating point `1.5`, expected i64"), "{e}");
        let e = with_output("[output]\nrow_group_rows = -5\n").unwrap_err();
        assert_eq!(e.message, "invalid value: integer `-5`, expected a number of rows ≥ 1");
    }

    #[test]
    fn zstd_levels_outside_1_to_22_are_errors() {
        for bad in [0i64, 23, -1, 1 << 40] {
            let output = format!("[output]\nzstd_level = {bad}\n");
            let e = with_output(&output).unwrap_err();
            assert_eq!(e.key, "output.zstd_level", "{e}");
            assert_eq!(e.line, output_line(&output, &format!("zstd_level = {bad}")), "{e}");
            assert_eq!(e.message, format!("invalid value: integer `{bad}`, expected a zstd level from 1 to 22"));
        }
        let e = with_output("[output]\nzstd_level = \"max\"\n").unwrap_err();
        assert!(e.message.starts_with("invalid type: string \"max\""), "{e}");
        for good in [1, 22] {
            assert_eq!(with_output(&format!("[output]\nzstd_level = {good}\n")).unwrap().output.zstd_level.get(), good);
        }
    }

    #[test]
    fn absent_output_settings_take_their_defaults() {
        let p = with_output("").unwrap();
        assert_eq!(p.output.batch_rows, DEFAULT_BATCH_ROWS);
        assert_eq!(p.output.row_group_rows, DEFAULT_ROW_GROUP_ROWS);
        assert_eq!(p.output.zstd_level, DEFAULT_ZSTD_LEVEL);
        let p = with_output("[output]\nbatch_rows = 7\n").unwrap();
        assert_eq!((p.output.batch_rows.get(), p.output.row_group_rows), (7, DEFAULT_ROW_GROUP_ROWS));
        assert_eq!(ZstdLevel::new(0), None);
        assert_eq!(ZstdLevel::new(i64::from(i32::MAX) + 4), None);
    }

    #[test]
    fn words_per_minute_is_checked_at_its_line_and_defaults() {
        let e = Pipeline::from_toml(
            Path::new("p.toml"),
            &ALPHANODE.replacen("words_per_minute = 200\n", "words_per_minute = 0\n", 1),
        )
        .unwrap_err();
        assert_eq!(e.key, "derive.words_per_minute", "{e}");
        assert_eq!(e.line, ALPHANODE.lines().position(|l| l == "words_per_minute = 200").unwrap() + 1, "{e}");
        let text = ALPHANODE.replacen("words_per_minute = 200\n", "", 1);
        let p = Pipeline::from_toml(Path::new("p.toml"), &text).unwrap();
        assert_eq!(p.derive.words_per_minute, DEFAULT_WORDS_PER_MINUTE);
    }

    #[test]
    fn a_negative_weight_is_an_error_at_its_line() {
        let text = ALPHANODE.replacen("weight = 0.4\n", "weight = -0.4\n", 1);
        let e = Pipeline::from_toml(Path::new("p.toml"), &text).unwrap_err();
        assert_eq!(e.key, "derive.score[0].weight", "{e}");
        assert_eq!(e.line, text.lines().position(|l| l == "weight = -0.4").unwrap() + 1, "{e}");
    }
}
