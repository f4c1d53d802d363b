//! Pipeline files: `PipelineConfig` (serde data) → `build()` → `Pipeline` (validated, regexes compiled).

pub mod config;
pub mod linematch;

use std::borrow::Cow;
use std::collections::HashSet;
use std::ops::Range;
use std::path::{Path, PathBuf};

use arrow::datatypes::DataType;
use regex::Regex;
use toml::Spanned;

pub use config::{EntryKind, OutputConfig, PipelineConfig, ValueType};

use crate::contract::schema;
use linematch::LinePattern;

/// A pipeline file that cannot be used; the message names file, line, key and what was expected.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: {key}: {message}")]
pub struct ConfigError {
    /// The pipeline file.
    pub file: PathBuf,
    /// 1-based line of the offending key (0 when unknown).
    pub line: usize,
    /// Dotted path of the key.
    pub key: String,
    /// What is wrong and what would be valid.
    pub message: String,
}

/// A compiled pipeline, ready to extract pages.
#[derive(Debug, Clone)]
pub struct Pipeline {
    /// Layout name (`name` in the file).
    pub name: String,
    /// Where it was read from.
    pub source: PathBuf,
    /// Opens the meta block.
    pub meta_start: LinePattern,
    /// Closes a page.
    pub trailer: LinePattern,
    /// An image line in the article.
    pub image_line: LinePattern,
    /// Known meta entries.
    pub entries: Vec<Entry>,
    /// Indices into `entries` of scalar entries, longest key first (so `reading time` wins over `reading`).
    pub scalar_order: Vec<usize>,
    /// Column slots of the page-level fields.
    pub cols: FixedColumns,
    /// Derived-column settings, resolved to column slots.
    pub derive: Derive,
    /// Parquet output settings.
    pub output: OutputConfig,
}

/// One known meta entry, resolved.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Folded key: lower case, single spaces.
    pub key: String,
    /// Where its value goes.
    pub target: Target,
}

/// Where an entry's value goes.
#[derive(Debug, Clone)]
pub enum Target {
    /// One value into one column.
    Scalar { col: usize, value: ValueType, lowercase: bool },
    /// Bullet items into a list<string> column.
    List { col: usize },
    /// `name: value` bullets, each known name into its own column.
    Pairs { fields: Vec<PairField> },
    /// `name: value` bullets into one struct<…: string> column.
    Struct { col: usize, fields: Vec<PairField> },
    /// Objects into a list<struct<…: string>> column; `fields[i].col` is the struct child index.
    Objects { col: usize, fields: Vec<PairField> },
}

/// A named field of a pairs or objects entry.
#[derive(Debug, Clone)]
pub struct PairField {
    /// Folded name.
    pub name: String,
    /// Value type.
    pub value: ValueType,
    /// Lower-case text values.
    pub lowercase: bool,
    /// Column slot (or struct child index).
    pub col: usize,
}

/// Column slots of the fields every page has.
#[derive(Debug, Clone)]
pub struct FixedColumns {
    pub hash: usize,
    pub title: usize,
    pub headings: usize,
    pub body: usize,
    pub similar_posts: usize,
    pub extra_meta: usize,
    pub unparsed_meta: usize,
    pub word_count: usize,
    pub paragraph_count: usize,
    pub content_fingerprint: usize,
    pub issues: usize,
    pub source_file: usize,
    pub source_offset: usize,
    pub run_id: usize,
    pub ingested_at: usize,
    pub reading_time_est_min: usize,
    pub quality_composite: usize,
    pub completeness: usize,
    pub ids_consistent: usize,
}

/// Derived-column settings.
#[derive(Debug, Clone)]
pub struct Derive {
    /// Words per minute.
    pub words_per_minute: f64,
    /// (score column, norm column, weight).
    pub scores: Vec<(usize, usize, f64)>,
    /// Columns whose first integers must agree.
    pub ids: Vec<usize>,
}

/// Folds a key: trimmed, lower case, runs of white space as one space.
pub fn fold_key(s: &str) -> String {
    fold_key_cow(s).into_owned()
}

/// `fold_key`, borrowing `s` when it is folded already (ASCII, no capitals, single inner spaces).
pub fn fold_key_cow(s: &str) -> Cow<'_, str> {
    // One pass: printable ASCII without capitals, spaces single and inside.
    let mut after_space = true;
    for &c in s.as_bytes() {
        if !(b' '..0x7f).contains(&c) || c.is_ascii_uppercase() || (c == b' ' && after_space) {
            return Cow::Owned(fold_key_slow(s));
        }
        after_space = c == b' ';
    }
    if after_space && !s.is_empty() {
        return Cow::Owned(fold_key_slow(s));
    }
    Cow::Borrowed(s)
}

fn fold_key_slow(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(word.chars().flat_map(char::to_lowercase));
    }
    out
}

struct Ctx<'a> {
    file: &'a Path,
    text: &'a str,
}

impl Ctx<'_> {
    fn err(&self, span: Option<Range<usize>>, key: impl Into<String>, message: impl Into<String>) -> ConfigError {
        let line = span.map(|s| self.text[..s.start.min(self.text.len())].matches('\n').count() + 1).unwrap_or(0);
        ConfigError { file: self.file.to_path_buf(), line, key: key.into(), message: message.into() }
    }

    fn regex(&self, s: &Spanned<String>, key: &str) -> Result<Regex, ConfigError> {
        Regex::new(s.get_ref()).map_err(|e| {
            let first = e.to_string().lines().last().unwrap_or("").trim().to_string();
            self.err(Some(s.span()), key, format!("invalid regular expression {:?}: {first}", s.get_ref()))
        })
    }

    fn column(&self, name: &Spanned<String>, key: &str) -> Result<(usize, DataType), ConfigError> {
        let posts = schema::posts();
        match posts.index_of(name.get_ref()) {
            Ok(i) => Ok((i, posts.field(i).data_type().clone())),
            Err(_) => Err(self.err(
                Some(name.span()),
                key,
                format!("no column {:?} in the posts table; expected one of: {}", name.get_ref(), column_names()),
            )),
        }
    }
}

fn column_names() -> String {
    schema::posts().fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>().join(", ")
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

/// The alphanode pipeline file, compiled into the binary: what runs without `--pipeline`.
pub const BUILTIN_TOML: &str = include_str!("../../pipelines/alphanode.toml");
/// How the built-in pipeline is named in messages and in the `runs` table.
pub const BUILTIN_SOURCE: &str = "pipelines/alphanode.toml (built in)";

impl Pipeline {
    /// The built-in alphanode pipeline.
    pub fn builtin() -> Result<Pipeline, ConfigError> {
        Self::from_toml(Path::new(BUILTIN_SOURCE), BUILTIN_TOML)
    }

    /// Reads, parses and validates a pipeline file.
    pub fn load(path: &Path) -> Result<Pipeline, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_path_buf(),
            line: 0,
            key: "(file)".into(),
            message: format!("cannot read pipeline file: {e}"),
        })?;
        Self::from_toml(path, &text)
    }

    /// Parses and validates pipeline text; `path` is used in messages.
    pub fn from_toml(path: &Path, text: &str) -> Result<Pipeline, ConfigError> {
        let ctx = Ctx { file: path, text };
        let cfg: PipelineConfig = toml::from_str(text).map_err(|e| {
            let message = toml_error_message(&e);
            ctx.err(e.span(), toml_error_key(text, &message, e.span()), message)
        })?;
        build(&ctx, cfg)
    }
}

/// Messages of errors in the data (the file is TOML, but not a pipeline); any other is a syntax error.
const DATA_ERRORS: [&str; 7] = [
    "unknown field",
    "missing field",
    "unknown variant",
    "invalid type",
    "invalid value",
    "invalid length",
    "duplicate",
];

/// A TOML error's message, with what valid TOML looks like when the file is not TOML at all.
fn toml_error_message(e: &toml::de::Error) -> String {
    let message = e.message().trim().lines().map(str::trim).collect::<Vec<_>>().join("; ");
    if DATA_ERRORS.iter().any(|d| message.starts_with(d)) {
        message
    } else {
        format!(
            "not valid TOML: {message}; expected `key = value` lines (strings quoted and closed on their line), \
             `[table]` and `[[array-of-tables]]` headers"
        )
    }
}

/// The key a TOML error is about, with the table it is in (`output.bogus`, `entry[3].kind`): the
/// missing field it names, or the key written on its line.
fn toml_error_key(text: &str, message: &str, span: Option<Range<usize>>) -> String {
    let Some(span) = span else {
        return match message.strip_prefix("missing field `") {
            Some(rest) => rest.split('`').next().unwrap_or(rest).to_string(),
            None => "(file)".into(),
        };
    };
    let at = span.start.min(text.len());
    let key = if let Some(rest) = message.strip_prefix("missing field `") {
        rest.split('`').next().unwrap_or(rest).to_string()
    } else {
        let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
        let line = text[start..].lines().next().unwrap_or("");
        line.split_once('=').map_or(line, |(k, _)| k).trim().to_string()
    };
    match table_path(text, at) {
        t if t.is_empty() || key.starts_with('[') => key,
        t => format!("{t}.{key}"),
    }
}

/// The table that the line holding byte `at` belongs to: `page`, `entry[3]` (the fourth
/// `[[entry]]`), or empty at the top level.
fn table_path(text: &str, at: usize) -> String {
    let mut path = String::new();
    let mut seen: Vec<(String, usize)> = Vec::new();
    let mut start = 0;
    for line in text.split_inclusive('\n') {
        if start > at {
            break;
        }
        start += line.len();
        let t = line.trim();
        if let Some(name) = t.strip_prefix("[[").and_then(|r| r.split("]]").next()) {
            let name = name.trim().to_string();
            let n = match seen.iter_mut().find(|(k, _)| *k == name) {
                Some((_, n)) => {
                    *n += 1;
                    *n
                }
                None => {
                    seen.push((name.clone(), 0));
                    0
                }
            };
            path = format!("{name}[{n}]");
        } else if let Some(name) = t.strip_prefix('[').and_then(|r| r.split(']').next()) {
            path = name.trim().to_string();
        }
    }
    path
}

fn build(ctx: &Ctx, cfg: PipelineConfig) -> Result<Pipeline, ConfigError> {
    let posts = schema::posts();
    let fixed = |n: &str| posts.index_of(n).expect("contract column");
    let cols = FixedColumns {
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
    };
    let reserved: HashSet<usize> = [
        cols.title,
        cols.headings,
        cols.body,
        cols.similar_posts,
        cols.extra_meta,
        cols.unparsed_meta,
        cols.word_count,
        cols.paragraph_count,
        cols.content_fingerprint,
        cols.issues,
        cols.source_file,
        cols.source_offset,
        cols.run_id,
        cols.ingested_at,
        cols.reading_time_est_min,
        cols.quality_composite,
        cols.completeness,
        cols.ids_consistent,
    ]
    .into_iter()
    .collect();

    if cfg.entries.is_empty() {
        return Err(ctx.err(None, "entry", "no meta entries; expected at least one [[entry]] with value = \"hash\""));
    }
    let mut entries = Vec::with_capacity(cfg.entries.len());
    let mut seen_keys = HashSet::new();
    let mut bound = HashSet::new();
    let mut hash_entries = 0;
    for (i, e) in cfg.entries.iter().enumerate() {
        let path = format!("entry[{i}] (key {:?})", e.key.get_ref());
        let key = fold_key(e.key.get_ref());
        if key.is_empty() {
            return Err(ctx.err(
                Some(e.key.span()),
                format!("entry[{i}].key"),
                "empty key; expected the key as written in dumps",
            ));
        }
        if !seen_keys.insert(key.clone()) {
            return Err(ctx.err(
                Some(e.key.span()),
                format!("{path}.key"),
                "key given twice; each key may have one entry",
            ));
        }
        let mut bind = |col: usize, span: Range<usize>, key: String| -> Result<(), ConfigError> {
            if reserved.contains(&col) {
                return Err(ctx.err(Some(span), key, "this column is filled by quarry itself, not from a meta entry"));
            }
            if !bound.insert(col) {
                return Err(ctx.err(Some(span), key, "column already filled by another entry"));
            }
            Ok(())
        };
        let need_column = |what: &str| {
            e.column.as_ref().ok_or_else(|| {
                ctx.err(
                    Some(e.key.span()),
                    format!("{path}.column"),
                    format!("missing; a {what} entry needs the posts column it fills"),
                )
            })
        };
        let target = match e.kind {
            EntryKind::Scalar => {
                let value = e.value.ok_or_else(|| {
                    ctx.err(
                        Some(e.key.span()),
                        format!("{path}.value"),
                        "missing; expected one of text, int, score, date, flag, hash",
                    )
                })?;
                let c = need_column("scalar")?;
                let (col, dt) = ctx.column(c, &format!("{path}.column"))?;
                if !value_fits(value, &dt) {
                    return Err(ctx.err(
                        Some(c.span()),
                        format!("{path}.value"),
                        format!("a {value:?} value cannot fill column {:?} of type {}", c.get_ref(), type_name(&dt))
                            .to_lowercase(),
                    ));
                }
                if value == ValueType::Hash {
                    if col != cols.hash {
                        return Err(ctx.err(
                            Some(c.span()),
                            format!("{path}.column"),
                            "a hash value must fill the column \"hash\"",
                        ));
                    }
                    hash_entries += 1;
                }
                bind(col, c.span(), format!("{path}.column"))?;
                if !e.fields.is_empty() {
                    return Err(ctx.err(Some(e.key.span()), format!("{path}.fields"), "a scalar entry has no fields"));
                }
                Target::Scalar { col, value, lowercase: e.lowercase }
            }
            EntryKind::List => {
                let c = need_column("list")?;
                let (col, dt) = ctx.column(c, &format!("{path}.column"))?;
                if dt != schema::list_of(DataType::Utf8) {
                    return Err(ctx.err(
                        Some(c.span()),
                        format!("{path}.column"),
                        format!("a list entry needs a list<string> column; {:?} is {}", c.get_ref(), type_name(&dt)),
                    ));
                }
                bind(col, c.span(), format!("{path}.column"))?;
                Target::List { col }
            }
            EntryKind::Pairs | EntryKind::Objects => {
                if e.fields.is_empty() {
                    return Err(ctx.err(
                        Some(e.key.span()),
                        format!("{path}.fields"),
                        "missing; expected a list of { name, value, column }",
                    ));
                }
                let children = match (&e.column, e.kind) {
                    (Some(c), kind) => {
                        let (col, dt) = ctx.column(c, &format!("{path}.column"))?;
                        let struct_fields = match (&dt, kind) {
                            (DataType::Struct(f), EntryKind::Pairs) => f.clone(),
                            (DataType::List(item), EntryKind::Objects) => match item.data_type() {
                                DataType::Struct(f) => f.clone(),
                                _ => {
                                    return Err(ctx.err(
                                        Some(c.span()),
                                        format!("{path}.column"),
                                        "an objects entry needs a list<struct> column",
                                    ))
                                }
                            },
                            (_, EntryKind::Pairs) => {
                                return Err(ctx.err(
                                    Some(c.span()),
                                    format!("{path}.column"),
                                    format!(
                                        "a pairs entry with a column needs a struct column; {:?} is {}",
                                        c.get_ref(),
                                        type_name(&dt)
                                    ),
                                ))
                            }
                            _ => {
                                return Err(ctx.err(
                                    Some(c.span()),
                                    format!("{path}.column"),
                                    format!(
                                        "an objects entry needs a list<struct> column; {:?} is {}",
                                        c.get_ref(),
                                        type_name(&dt)
                                    ),
                                ))
                            }
                        };
                        bind(col, c.span(), format!("{path}.column"))?;
                        Some((col, struct_fields))
                    }
                    (None, EntryKind::Objects) => {
                        return Err(ctx.err(
                            Some(e.key.span()),
                            format!("{path}.column"),
                            "missing; an objects entry needs its list<struct> column",
                        ));
                    }
                    (None, _) => None,
                };
                let mut fields = Vec::with_capacity(e.fields.len());
                let mut names = HashSet::new();
                for (j, f) in e.fields.iter().enumerate() {
                    let fpath = format!("{path}.fields[{j}]");
                    let name = fold_key(f.name.get_ref());
                    if name.is_empty() || !names.insert(name.clone()) {
                        return Err(ctx.err(
                            Some(f.name.span()),
                            format!("{fpath}.name"),
                            "empty or repeated field name",
                        ));
                    }
                    let col = match &children {
                        Some((_, sf)) => {
                            let idx = sf.iter().position(|x| x.name() == f.column.get_ref()).ok_or_else(|| {
                                let valid: Vec<&str> = sf.iter().map(|x| x.name().as_str()).collect();
                                ctx.err(
                                    Some(f.column.span()),
                                    format!("{fpath}.column"),
                                    format!(
                                        "no field {:?} in the struct; expected one of: {}",
                                        f.column.get_ref(),
                                        valid.join(", ")
                                    ),
                                )
                            })?;
                            if f.value != ValueType::Text {
                                return Err(ctx.err(
                                    Some(f.column.span()),
                                    format!("{fpath}.value"),
                                    "struct fields hold text; expected value = \"text\"",
                                ));
                            }
                            idx
                        }
                        None => {
                            let (col, dt) = ctx.column(&f.column, &format!("{fpath}.column"))?;
                            if !value_fits(f.value, &dt) || f.value == ValueType::Hash {
                                return Err(ctx.err(
                                    Some(f.column.span()),
                                    format!("{fpath}.value"),
                                    format!(
                                        "a {:?} value cannot fill column {:?} of type {}",
                                        f.value,
                                        f.column.get_ref(),
                                        type_name(&dt)
                                    )
                                    .to_lowercase(),
                                ));
                            }
                            bind(col, f.column.span(), format!("{fpath}.column"))?;
                            col
                        }
                    };
                    fields.push(PairField { name, value: f.value, lowercase: f.lowercase, col });
                }
                match (children, e.kind) {
                    (Some((col, _)), EntryKind::Pairs) => Target::Struct { col, fields },
                    (Some((col, _)), _) => Target::Objects { col, fields },
                    (None, _) => Target::Pairs { fields },
                }
            }
        };
        entries.push(Entry { key, target });
    }
    if hash_entries != 1 {
        return Err(ctx.err(
            None,
            "entry",
            "expected exactly one scalar entry with value = \"hash\" and column = \"hash\" (the page identity)",
        ));
    }
    let mut scalar_order: Vec<usize> =
        (0..entries.len()).filter(|&i| matches!(entries[i].target, Target::Scalar { .. })).collect();
    scalar_order.sort_by_key(|&i| std::cmp::Reverse(entries[i].key.len()));

    let mut scores = Vec::new();
    for (i, s) in cfg.derive.score.iter().enumerate() {
        let (c, cdt) = ctx.column(&s.column, &format!("derive.score[{i}].column"))?;
        if cdt != DataType::Int32 {
            return Err(ctx.err(
                Some(s.column.span()),
                format!("derive.score[{i}].column"),
                "expected an int32 score column",
            ));
        }
        let (n, ndt) = ctx.column(&s.norm, &format!("derive.score[{i}].norm"))?;
        if ndt != DataType::Float64 || bound.contains(&n) || reserved.contains(&n) {
            return Err(ctx.err(
                Some(s.norm.span()),
                format!("derive.score[{i}].norm"),
                "expected a float64 column that no entry fills",
            ));
        }
        if !(s.weight.is_finite() && s.weight >= 0.0) {
            return Err(ctx.err(
                Some(s.column.span()),
                format!("derive.score[{i}].weight"),
                "expected a finite weight ≥ 0",
            ));
        }
        scores.push((c, n, s.weight));
    }
    let mut ids = Vec::new();
    for (i, c) in cfg.derive.ids_consistent.iter().enumerate() {
        ids.push(ctx.column(c, &format!("derive.ids_consistent[{i}]"))?.0);
    }
    if !(cfg.derive.words_per_minute.is_finite() && cfg.derive.words_per_minute > 0.0) {
        return Err(ctx.err(None, "derive.words_per_minute", "expected a number > 0"));
    }
    if cfg.output.batch_rows == 0 || cfg.output.row_group_rows == 0 {
        return Err(ctx.err(None, "output", "batch_rows and row_group_rows must be > 0"));
    }
    if !(1..=22).contains(&cfg.output.zstd_level) {
        return Err(ctx.err(
            None,
            "output.zstd_level",
            format!("{} is out of range; expected 1 to 22", cfg.output.zstd_level),
        ));
    }
    Ok(Pipeline {
        name: cfg.name,
        source: ctx.file.to_path_buf(),
        meta_start: LinePattern::from_regex(ctx.regex(&cfg.page.meta_start, "page.meta_start")?),
        trailer: LinePattern::from_regex(ctx.regex(&cfg.page.trailer, "page.trailer")?),
        image_line: LinePattern::from_regex(ctx.regex(&cfg.page.image_line, "page.image_line")?),
        entries,
        scalar_order,
        cols,
        derive: Derive { words_per_minute: cfg.derive.words_per_minute, scores, ids },
        output: cfg.output,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALPHANODE: &str = include_str!("../../pipelines/alphanode.toml");

    fn load(text: &str) -> Result<Pipeline, ConfigError> {
        Pipeline::from_toml(Path::new("p.toml"), text)
    }

    #[test]
    fn alphanode_pipeline_builds() {
        let p = load(ALPHANODE).unwrap();
        assert_eq!(p.name, "alphanode");
        assert_eq!(p.entries.len(), 20);
        assert_eq!(p.derive.scores.len(), 4);
        let first = &p.entries[p.scalar_order[0]].key;
        assert!(first == "code language" || first == "reading time", "longest keys first, got {first}");
    }

    #[test]
    fn fold_key_lowercases_and_folds_space() {
        assert_eq!(fold_key("  View\t\u{a0}Count "), "view count");
        for k in
            ["view count", "view  count", " view", "view ", "View", "a\tb", "x\u{7f}y", "caf\u{e9}", "a\u{1}b", "", " "]
        {
            assert_eq!(fold_key_cow(k), fold_key_slow(k), "{k:?}");
        }
        assert!(matches!(fold_key_cow("last reviewed"), Cow::Borrowed(_)));
    }

    #[test]
    fn unknown_key_is_an_error_with_line() {
        let text = ALPHANODE.replacen("[output]\n", "[output]\nbogus = 1\n", 1);
        let e = load(&text).unwrap_err();
        assert!(e.message.contains("unknown field"), "{e}");
        assert_eq!(e.key, "output.bogus");
        assert!(e.line > 1, "{e}");
        assert!(e.to_string().starts_with("p.toml:"), "{e}");
    }

    #[test]
    fn bad_regex_names_the_key() {
        let text = ALPHANODE.replace(r"'(?i)^similar\s+posts$'", "'(unclosed'");
        let e = load(&text).unwrap_err();
        assert_eq!(e.key, "page.trailer");
        assert_eq!(e.line, 8);
        assert!(e.message.contains("invalid regular expression"), "{e}");
    }

    #[test]
    fn unknown_column_lists_valid_ones() {
        let text = ALPHANODE.replace("column = \"topic\"", "column = \"topics\"");
        let e = load(&text).unwrap_err();
        assert!(e.key.contains("key \"topic\""), "{e}");
        assert!(e.message.contains("expected one of") && e.message.contains("summary"), "{e}");
    }

    #[test]
    fn unknown_value_type_is_an_error() {
        let text = ALPHANODE.replacen("value = \"text\"", "value = \"txt\"", 1);
        let e = load(&text).unwrap_err();
        assert!(e.message.contains("unknown variant") && e.message.contains("text"), "{e}");
        assert!(e.line > 1);
    }

    #[test]
    fn missing_required_key_is_an_error() {
        let text = ALPHANODE.replace("name = \"alphanode\"\n", "");
        let e = load(&text).unwrap_err();
        assert!(e.message.contains("missing field `name`"), "{e}");
    }

    #[test]
    fn type_mismatch_is_an_error() {
        let text =
            ALPHANODE.replace("value = \"int\"\ncolumn = \"view_count\"", "value = \"date\"\ncolumn = \"view_count\"");
        let e = load(&text).unwrap_err();
        assert!(e.message.contains("cannot fill column"), "{e}");
    }

    #[test]
    fn pipeline_without_hash_is_an_error() {
        let text = ALPHANODE.replace("value = \"hash\"", "value = \"text\"");
        let e = load(&text).unwrap_err();
        assert!(e.message.contains("hash"), "{e}");
    }

    #[test]
    fn keys_of_errors_name_their_table() {
        let text = ALPHANODE.replacen("kind = \"list\"\n", "", 1);
        let e = load(&text).unwrap_err();
        assert_eq!(e.key, "entry[10].kind", "{e}");
        assert!(text.lines().nth(e.line - 1).unwrap().starts_with("[[entry]]"), "{e}");
        let text = ALPHANODE.replacen("value = \"int\"", "value = \"integer\"", 1);
        let e = load(&text).unwrap_err();
        assert_eq!(e.key, "entry[7].value", "{e}");
        assert!(e.message.contains("`score`"), "{e}");
    }

    #[test]
    fn a_syntax_error_says_what_toml_looks_like() {
        let text = ALPHANODE.replacen("key = \"summary\"", "key = \"summary", 1);
        let e = load(&text).unwrap_err();
        assert!(e.message.starts_with("not valid TOML: "), "{e}");
        assert!(e.message.contains("key = value"), "{e}");
        assert_eq!(e.key, "entry[1].key", "{e}");
        assert_eq!(text.lines().nth(e.line - 1), Some("key = \"summary"), "{e}");
    }
}
