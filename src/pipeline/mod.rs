//! Pipeline files: text → `PipelineConfig` (serde data, each entry typed by its kind) → `build()` →
//! `Pipeline` (validated against the posts table, regexes compiled).

mod build;
pub mod config;
mod error;
mod kinds;
pub mod linematch;

use std::borrow::Cow;
use std::path::{Path, PathBuf};

pub use config::{EntryKind, OutputConfig, PipelineConfig, ValueType, ZstdLevel};
pub use error::ConfigError;

use error::ConfigText;
use linematch::LinePattern;

/// The alphanode pipeline file, compiled into the binary.
pub const BUILTIN_TOML: &str = include_str!("../../pipelines/alphanode.toml");
/// The name the built-in pipeline goes by in messages and in `Pipeline::source`.
pub const BUILTIN_SOURCE: &str = "pipelines/alphanode.toml (built in)";

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

impl Pipeline {
    /// Reads, parses and validates a pipeline file.
    pub fn load(path: &Path) -> Result<Pipeline, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::unreadable(path, &e))?;
        Self::from_toml(path, &text)
    }

    /// Parses and validates pipeline text; `path` is used in messages.
    pub fn from_toml(path: &Path, text: &str) -> Result<Pipeline, ConfigError> {
        let t = ConfigText { file: path, text };
        let cfg = kinds::typed_config(&t, t.parse()?)?;
        build::build(&t, cfg)
    }

    /// The alphanode pipeline compiled into the binary (`BUILTIN_TOML`), named `BUILTIN_SOURCE`.
    pub fn builtin() -> Pipeline {
        Self::from_toml(Path::new(BUILTIN_SOURCE), BUILTIN_TOML).expect("the built-in pipeline is valid (tested)")
    }
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

    /// Everything `build` decides, in the layout of `testdata/alphanode.compiled.txt` (the page
    /// patterns by their regex, since their prefilters are `linematch`'s business).
    fn compiled_summary(p: &Pipeline) -> String {
        let o = &p.output;
        format!(
            "name: {:?}\nsource: {:?}\nmeta_start: {:?}\ntrailer: {:?}\nimage_line: {:?}\nentries: {:#?}\n\
             scalar_order: {:?}\ncols: {:#?}\nderive: {:#?}\noutput: batch_rows {} row_group_rows {} zstd_level {}\n",
            p.name,
            p.source,
            p.meta_start.regex().as_str(),
            p.trailer.regex().as_str(),
            p.image_line.regex().as_str(),
            p.entries,
            p.scalar_order,
            p.cols,
            p.derive,
            o.batch_rows,
            o.row_group_rows,
            o.zstd_level.get()
        )
    }

    #[test]
    fn alphanode_compiles_as_before_the_typed_entries() {
        // The fixture is the summary of the build before entries became one enum variant per kind.
        let want = include_str!("testdata/alphanode.compiled.txt");
        let p = Pipeline::from_toml(Path::new("pipelines/alphanode.toml"), ALPHANODE).unwrap();
        let got = compiled_summary(&p);
        if got != want {
            let first = got.lines().zip(want.lines()).position(|(g, w)| g != w);
            panic!("compiled pipeline differs from the fixture at line {first:?}:\n{got}");
        }
    }

    #[test]
    fn builtin_text_is_the_file_on_disk() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/alphanode.toml");
        assert!(
            BUILTIN_TOML == std::fs::read_to_string(&path).unwrap(),
            "{} differs from BUILTIN_TOML",
            path.display()
        );
    }

    #[test]
    fn builtin_pipeline_is_the_alphanode_file_named_as_built_in() {
        let builtin = Pipeline::builtin();
        assert_eq!(builtin.source, Path::new(BUILTIN_SOURCE));
        assert!(builtin.source.display().to_string().contains("(built in)"));
        let from_file =
            Pipeline::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/alphanode.toml")).unwrap();
        let summary = |p: &Pipeline| {
            compiled_summary(p).lines().filter(|l| !l.starts_with("source:")).collect::<Vec<_>>().join("\n")
        };
        assert_eq!(summary(&builtin), summary(&from_file));
        // A broken built-in text would be named by its built-in name.
        let e = Pipeline::from_toml(Path::new(BUILTIN_SOURCE), &BUILTIN_TOML.replace("[page]", "[pages]")).unwrap_err();
        assert!(e.to_string().starts_with("pipelines/alphanode.toml (built in):"), "{e}");
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
