//! `ConfigError`, and how a byte span or a TOML error of a pipeline text becomes one.

use std::ops::Range;
use std::path::{Path, PathBuf};

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

impl ConfigError {
    /// The pipeline file could not be read.
    pub fn unreadable(file: &Path, e: &std::io::Error) -> ConfigError {
        ConfigError {
            file: file.to_path_buf(),
            line: 0,
            key: "(file)".into(),
            message: format!("cannot read pipeline file: {e}"),
        }
    }
}

/// A pipeline text and the name it goes by in messages: turns byte spans into lines.
pub(super) struct ConfigText<'a> {
    /// The file (or built-in name) shown in messages.
    pub file: &'a Path,
    /// The whole TOML text.
    pub text: &'a str,
}

impl ConfigText<'_> {
    /// An error at the line holding `span` (line 0 without one).
    pub fn err(&self, span: Option<Range<usize>>, key: impl Into<String>, message: impl Into<String>) -> ConfigError {
        let line = span.map(|s| self.text[..s.start.min(self.text.len())].matches('\n').count() + 1).unwrap_or(0);
        ConfigError { file: self.file.to_path_buf(), line, key: key.into(), message: message.into() }
    }

    /// Parses the text as `T`; a failure names the key and line it is about.
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, ConfigError> {
        toml::from_str(self.text).map_err(|e| {
            let message = toml_error_message(&e);
            self.err(e.span(), toml_error_key(self.text, &message, e.span()), message)
        })
    }
}

/// `word` after its indefinite article (`an int`, `a list`), for messages.
pub(super) fn a(word: &str) -> String {
    let article = if word.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" };
    format!("{article} {word}")
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

/// The key a TOML error is about, with the tables and arrays it is in (`output.bogus`,
/// `entry[3].kind`, `entry[19].fields[4].value`): the missing field it names, or the key at its span.
fn toml_error_key(text: &str, message: &str, span: Option<Range<usize>>) -> String {
    let missing = message.strip_prefix("missing field `").map(|rest| rest.split('`').next().unwrap_or(rest));
    let Some(span) = span else {
        return missing.unwrap_or("(file)").to_string();
    };
    let at = span.start.min(text.len());
    // A syntax error leaves no document to walk: the key is then found by its line.
    let Some(path) = key_path_at(text, at) else {
        return line_key_path(text, at, missing);
    };
    match missing {
        Some(field) if path.is_empty() => field.to_string(),
        Some(field) => format!("{path}.{field}"),
        None => path,
    }
}

/// The path of the key, value or table at byte `at` of a TOML document; None when it does not parse.
fn key_path_at(text: &str, at: usize) -> Option<String> {
    let doc = toml_edit::ImDocument::parse(text).ok()?;
    let mut path = String::new();
    table_path_at(doc.as_table(), at, &mut path);
    Some(path)
}

fn contains(span: Option<Range<usize>>, at: usize) -> bool {
    span.is_some_and(|s| s.contains(&at))
}

fn push_key(path: &mut String, key: &str) {
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(key);
}

/// Appends to `path` the way down `table` to byte `at`; false (and `path` unchanged) when `at` is not in it.
fn table_path_at(table: &toml_edit::Table, at: usize, path: &mut String) -> bool {
    use toml_edit::Item;
    let mark = path.len();
    for (name, item) in table.iter() {
        let key_span = table.get_key_value(name).and_then(|(k, _)| k.span());
        push_key(path, name);
        let found = contains(key_span, at)
            || match item {
                Item::Value(v) if contains(v.span(), at) => {
                    value_path_at(v, at, path);
                    true
                }
                // A table's span ends at its last own key; its sub-tables have spans of their own.
                Item::Table(t) => table_path_at(t, at, path) || contains(t.span(), at),
                Item::ArrayOfTables(a) => a.iter().enumerate().any(|(n, t)| {
                    let before = path.len();
                    path.push_str(&format!("[{n}]"));
                    let found = table_path_at(t, at, path) || contains(t.span(), at);
                    if !found {
                        path.truncate(before);
                    }
                    found
                }),
                Item::Value(_) | Item::None => false,
            };
        if found {
            return true;
        }
        path.truncate(mark);
    }
    false
}

/// Appends to `path` the way down an array or inline table `v` that holds byte `at`.
fn value_path_at(v: &toml_edit::Value, at: usize, path: &mut String) {
    match v {
        toml_edit::Value::Array(a) => {
            if let Some((j, el)) = a.iter().enumerate().find(|(_, el)| contains(el.span(), at)) {
                path.push_str(&format!("[{j}]"));
                value_path_at(el, at, path);
            }
        }
        toml_edit::Value::InlineTable(t) => {
            for (name, el) in t.iter() {
                let key_span = t.get_key_value(name).and_then(|(k, _)| k.span());
                if contains(key_span, at) || contains(el.span(), at) {
                    push_key(path, name);
                    value_path_at(el, at, path);
                    return;
                }
            }
        }
        _ => {}
    }
}

/// The key of a TOML error in a text that does not parse: the missing field, or the key written on
/// the line of `at`, in the table of that line.
fn line_key_path(text: &str, at: usize, missing: Option<&str>) -> String {
    let key = match missing {
        Some(field) => field.to_string(),
        None => {
            let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
            let line = text[start..].lines().next().unwrap_or("");
            line.split_once('=').map_or(line, |(k, _)| k).trim().to_string()
        }
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::pipeline::{ConfigError, Pipeline, BUILTIN_TOML as ALPHANODE};

    fn broken(old: &str, new: &str) -> ConfigError {
        assert!(ALPHANODE.contains(old), "{old:?} not in the pipeline");
        Pipeline::from_toml(Path::new("p.toml"), &ALPHANODE.replacen(old, new, 1)).unwrap_err()
    }

    const SEED: &str = "{ name = \"seed\", value = \"int\", column = \"seed\" }";

    #[test]
    fn errors_inside_inline_fields_name_the_field() {
        let line = ALPHANODE.lines().position(|l| l.contains(SEED)).unwrap() + 1;
        for (new, key, message) in [
            ("{ name = \"seed\", value = \"integer\", column = \"seed\" }", "value", "unknown variant `integer`"),
            ("{ name = \"seed\", value = \"int\", colum = \"seed\" }", "colum", "unknown field `colum`"),
            ("{ name = \"seed\", value = \"int\" }", "column", "missing field `column`"),
            ("{ name = \"seed\", value = \"int\", lowercase = 1, column = \"seed\" }", "lowercase", "invalid type"),
        ] {
            let e = broken(SEED, new);
            assert_eq!(e.key, format!("entry[19].fields[4].{key}"), "{e}");
            assert_eq!(e.line, line, "{e}");
            assert!(e.message.starts_with(message), "{e}");
        }
    }

    #[test]
    fn an_error_in_an_array_names_its_element() {
        let e =
            broken("ids_consistent = [\"reference\", \"source_id\", \"seed\"]", "ids_consistent = [\"reference\", 3]");
        assert_eq!(e.key, "derive.ids_consistent[1]", "{e}");
        assert!(e.message.starts_with("invalid type: integer `3`"), "{e}");
    }

    #[test]
    fn an_error_in_an_array_of_tables_names_its_table() {
        let e = broken("weight = 0.2\n", "weight = \"0.2\"\n");
        assert_eq!(e.key, "derive.score[1].weight", "{e}");
        let e = broken("norm = \"depth_norm\"\n", "");
        assert_eq!(e.key, "derive.score[2].norm", "{e}");
        assert!(e.message.starts_with("missing field `norm`"), "{e}");
        assert_eq!(ALPHANODE.lines().nth(e.line - 1), Some("[[derive.score]]"), "{e}");
    }
}
