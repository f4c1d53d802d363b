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
