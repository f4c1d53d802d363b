//! Entry kinds: each `RawEntry` becomes the `EntryConfig` of its kind, keeping only the keys that
//! kind takes; any other key is an error at its line, a missing one at the line of the entry's `key`.

use std::ops::Range;

use toml::Spanned;

use super::config::{
    EntryConfig, EntryKind, FieldConfig, ListEntry, ObjectsEntry, PairsEntry, PipelineConfig, RawEntry, ScalarEntry,
    ValueType,
};
use super::error::{a, ConfigError, ConfigText};

/// Checks every entry of a parsed file against its kind.
pub(super) fn typed_config(t: &ConfigText, raw: PipelineConfig<RawEntry>) -> Result<PipelineConfig, ConfigError> {
    let entries = raw.entries.into_iter().enumerate().map(|(i, e)| typed_entry(t, i, e)).collect::<Result<_, _>>()?;
    Ok(PipelineConfig { name: raw.name, page: raw.page, derive: raw.derive, output: raw.output, entries })
}

/// The keys each kind takes, as listed in messages.
fn keys_of(kind: EntryKind) -> &'static str {
    match kind {
        EntryKind::Scalar => "key, kind, value, lowercase (text only), column",
        EntryKind::List => "key, kind, column",
        EntryKind::Pairs => "key, kind, fields, column (optional: one struct column for all fields)",
        EntryKind::Objects => "key, kind, column, fields",
    }
}

/// The entry `raw` (the `i`th) as its kind, or the first key that kind does not take or lacks.
fn typed_entry(t: &ConfigText, i: usize, raw: RawEntry) -> Result<EntryConfig, ConfigError> {
    let RawEntry { key, kind, value, lowercase, column, fields } = raw;
    let kind = *kind.get_ref();
    let path = format!("entry[{i}] (key {:?})", key.get_ref());
    let taken = |name: &str, span: Option<Range<usize>>| -> Result<(), ConfigError> {
        match span {
            Some(span) => Err(t.err(
                Some(span),
                format!("{path}.{name}"),
                format!("{} entry takes no {name}; it takes {}", a(kind.name()), keys_of(kind)),
            )),
            None => Ok(()),
        }
    };
    let key_span = key.span();
    let missing =
        |name: &str, what: &str| t.err(Some(key_span.clone()), format!("{path}.{name}"), format!("missing; {what}"));
    let fields_of = |fields: Option<Spanned<Vec<FieldConfig>>>| match fields {
        None => Err(missing("fields", "expected a list of { name, value, column }")),
        Some(f) if f.get_ref().is_empty() => {
            Err(t.err(Some(f.span()), format!("{path}.fields"), "empty; expected a list of { name, value, column }"))
        }
        Some(f) => {
            let fields = f.into_inner();
            for (j, f) in fields.iter().enumerate() {
                check_case(t, &format!("{path}.fields[{j}]"), *f.value.get_ref(), f.lowercase.as_ref())?;
            }
            Ok(fields)
        }
    };
    match kind {
        EntryKind::Scalar => {
            taken("fields", span_of(&fields))?;
            let value = value.ok_or_else(|| missing("value", "expected one of text, int, score, date, flag, hash"))?;
            check_case(t, &path, *value.get_ref(), lowercase.as_ref())?;
            let column = column.ok_or_else(|| missing("column", "a scalar entry needs the posts column it fills"))?;
            let lowercase = lowercase.is_some_and(Spanned::into_inner);
            Ok(EntryConfig::Scalar(ScalarEntry { key, value, lowercase, column }))
        }
        EntryKind::List => {
            taken("value", span_of(&value))?;
            taken("lowercase", span_of(&lowercase))?;
            taken("fields", span_of(&fields))?;
            let column = column.ok_or_else(|| missing("column", "a list entry needs the posts column it fills"))?;
            Ok(EntryConfig::List(ListEntry { key, column }))
        }
        EntryKind::Pairs => {
            taken("value", span_of(&value))?;
            taken("lowercase", span_of(&lowercase))?;
            Ok(EntryConfig::Pairs(PairsEntry { key, column, fields: fields_of(fields)? }))
        }
        EntryKind::Objects => {
            taken("value", span_of(&value))?;
            taken("lowercase", span_of(&lowercase))?;
            let column = column.ok_or_else(|| missing("column", "an objects entry needs its list<struct> column"))?;
            Ok(EntryConfig::Objects(ObjectsEntry { key, column, fields: fields_of(fields)? }))
        }
    }
}

/// `lowercase = true` only where it changes something: on a text or hash value.
fn check_case(
    t: &ConfigText,
    path: &str,
    value: ValueType,
    lowercase: Option<&Spanned<bool>>,
) -> Result<(), ConfigError> {
    match lowercase {
        Some(l) if *l.get_ref() && !value.has_case() => Err(t.err(
            Some(l.span()),
            format!("{path}.lowercase"),
            format!("{} value has no case; lowercase = true applies to text and hash values", a(value.name())),
        )),
        _ => Ok(()),
    }
}

fn span_of<T>(s: &Option<Spanned<T>>) -> Option<Range<usize>> {
    s.as_ref().map(Spanned::span)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::pipeline::{ConfigError, Pipeline, BUILTIN_TOML as ALPHANODE};

    /// `ALPHANODE` with `old` replaced once by `new`, and the error it gives.
    fn broken(old: &str, new: &str) -> (String, ConfigError) {
        assert!(ALPHANODE.contains(old), "{old:?} not in the pipeline");
        let text = ALPHANODE.replacen(old, new, 1);
        let e = Pipeline::from_toml(Path::new("p.toml"), &text).unwrap_err();
        (text, e)
    }

    /// 1-based line of the first line equal to `line`.
    fn line_of(text: &str, line: &str) -> usize {
        text.lines().position(|l| l == line).expect("line in text") + 1
    }

    /// 1-based line of the first line equal to `line` after the line `anchor`.
    fn line_after(text: &str, anchor: &str, line: &str) -> usize {
        let from = line_of(text, anchor);
        from + text.lines().skip(from).position(|l| l == line).expect("line after anchor") + 1
    }

    #[test]
    fn a_list_entry_with_a_value_names_what_a_list_takes() {
        let (text, e) =
            broken("key = \"stack\"\nkind = \"list\"\n", "key = \"stack\"\nkind = \"list\"\nvalue = \"int\"\n");
        let line = line_of(&text, "key = \"stack\"") + 2;
        assert_eq!(
            e.to_string(),
            format!("p.toml:{line}: entry[10] (key \"stack\").value: a list entry takes no value; it takes key, kind, column")
        );
    }

    #[test]
    fn a_list_entry_takes_no_fields_nor_lowercase() {
        let (text, e) =
            broken("kind = \"list\"\ncolumn = \"tools\"\n", "kind = \"list\"\ncolumn = \"tools\"\nfields = []\n");
        assert_eq!(e.key, "entry[11] (key \"tools\").fields", "{e}");
        assert_eq!(e.line, line_of(&text, "fields = []"), "{e}");
        assert!(e.message.starts_with("a list entry takes no fields; it takes key, kind, column"), "{e}");
        let (text, e) =
            broken("kind = \"list\"\ncolumn = \"notes\"\n", "kind = \"list\"\nlowercase = true\ncolumn = \"notes\"\n");
        assert_eq!(e.key, "entry[13] (key \"notes\").lowercase", "{e}");
        assert_eq!(e.line, line_after(&text, "key = \"notes\"", "lowercase = true"), "{e}");
    }

    #[test]
    fn a_scalar_entry_with_fields_is_an_error_at_the_fields() {
        let (text, e) = broken(
            "value = \"text\"\ncolumn = \"topic\"\n",
            "value = \"text\"\ncolumn = \"topic\"\nfields = [{ name = \"a\", value = \"text\", column = \"b\" }]\n",
        );
        assert_eq!(e.key, "entry[0] (key \"topic\").fields", "{e}");
        assert_eq!(e.line, line_of(&text, "column = \"topic\"") + 1, "{e}");
        assert_eq!(
            e.message,
            "a scalar entry takes no fields; it takes key, kind, value, lowercase (text only), column"
        );
    }

    #[test]
    fn a_scalar_entry_needs_a_value_and_a_column() {
        let (text, e) = broken(
            "key = \"summary\"\nkind = \"scalar\"\nvalue = \"text\"\n",
            "key = \"summary\"\nkind = \"scalar\"\n",
        );
        assert_eq!(e.key, "entry[1] (key \"summary\").value", "{e}");
        assert_eq!(e.line, line_of(&text, "key = \"summary\""), "{e}");
        assert!(e.message.contains("missing; expected one of text, int"), "{e}");
        let (_, e) = broken("value = \"text\"\ncolumn = \"summary\"\n", "value = \"text\"\n");
        assert_eq!(e.key, "entry[1] (key \"summary\").column", "{e}");
        assert!(e.message.starts_with("missing; a scalar entry needs the posts column"), "{e}");
    }

    #[test]
    fn lowercase_on_a_value_without_case_is_an_error() {
        let (text, e) = broken(
            "value = \"int\"\ncolumn = \"view_count\"",
            "value = \"int\"\nlowercase = true\ncolumn = \"view_count\"",
        );
        assert_eq!(e.key, "entry[8] (key \"view count\").lowercase", "{e}");
        assert_eq!(e.line, line_after(&text, "key = \"view count\"", "lowercase = true"), "{e}");
        assert_eq!(e.message, "an int value has no case; lowercase = true applies to text and hash values");
        let (_, e) = broken(
            "{ name = \"seed\", value = \"int\", column = \"seed\" }",
            "{ name = \"seed\", value = \"int\", lowercase = true, column = \"seed\" }",
        );
        assert_eq!(e.key, "entry[19] (key \"payload\").fields[4].lowercase", "{e}");
        // `lowercase = false` changes nothing and is accepted; on text it is kept.
        let text = ALPHANODE.replacen(
            "value = \"int\"\ncolumn = \"view_count\"",
            "value = \"int\"\nlowercase = false\ncolumn = \"view_count\"",
            1,
        );
        Pipeline::from_toml(Path::new("p.toml"), &text).unwrap();
    }

    #[test]
    fn a_pairs_entry_takes_no_value_and_needs_fields() {
        let (text, e) =
            broken("key = \"score\"\nkind = \"pairs\"\n", "key = \"score\"\nkind = \"pairs\"\nvalue = \"score\"\n");
        assert_eq!(e.key, "entry[14] (key \"score\").value", "{e}");
        assert_eq!(e.line, line_of(&text, "value = \"score\""), "{e}");
        assert_eq!(
            e.message,
            "a pairs entry takes no value; it takes key, kind, fields, column (optional: one struct column for all fields)"
        );
        let (text, e) = broken(
            "key = \"flags\"\nkind = \"pairs\"\nfields = [",
            "key = \"flags\"\nkind = \"pairs\"\nnot_fields = [",
        );
        assert!(e.message.starts_with("unknown field `not_fields`"), "{e}");
        assert_eq!(e.line, line_of(&text, "not_fields = ["), "{e}");
        let (_, e) = broken(
            "key = \"revision\"\nkind = \"pairs\"\nfields = [",
            "key = \"revision\"\nkind = \"pairs\"\nfields = []\nrest = [",
        );
        assert!(e.message.starts_with("unknown field `rest`"), "{e}");
    }

    #[test]
    fn empty_or_missing_fields_are_errors() {
        let text = ALPHANODE.replacen(
            "fields = [\n  { name = \"status\", value = \"text\", column = \"revision_status\" },\n  \
             { name = \"version\", value = \"text\", column = \"revision_version\" },\n  \
             { name = \"last reviewed\", value = \"date\", column = \"last_reviewed\" },\n]\n",
            "fields = []\n",
            1,
        );
        assert_ne!(text, ALPHANODE);
        let e = Pipeline::from_toml(Path::new("p.toml"), &text).unwrap_err();
        assert_eq!(e.key, "entry[15] (key \"revision\").fields", "{e}");
        assert_eq!(e.line, line_of(&text, "fields = []"), "{e}");
        assert_eq!(e.message, "empty; expected a list of { name, value, column }");
        let text = text.replacen("fields = []\n", "", 1);
        let e = Pipeline::from_toml(Path::new("p.toml"), &text).unwrap_err();
        assert_eq!(e.key, "entry[15] (key \"revision\").fields", "{e}");
        assert_eq!(e.line, line_of(&text, "key = \"revision\""), "{e}");
        assert!(e.message.starts_with("missing; expected a list of"), "{e}");
    }

    #[test]
    fn an_objects_entry_needs_its_column_and_takes_no_lowercase() {
        let (text, e) = broken("kind = \"objects\"\ncolumn = \"entities\"\n", "kind = \"objects\"\n");
        assert_eq!(e.key, "entry[17] (key \"entities\").column", "{e}");
        assert_eq!(e.line, line_of(&text, "key = \"entities\""), "{e}");
        assert_eq!(e.message, "missing; an objects entry needs its list<struct> column");
        let (text, e) = broken(
            "kind = \"objects\"\ncolumn = \"image_sources\"\n",
            "kind = \"objects\"\nlowercase = false\ncolumn = \"image_sources\"\n",
        );
        assert_eq!(e.key, "entry[18] (key \"image sources\").lowercase", "{e}");
        assert_eq!(e.line, line_of(&text, "lowercase = false"), "{e}");
        assert_eq!(e.message, "an objects entry takes no lowercase; it takes key, kind, column, fields");
    }

    #[test]
    fn a_list_entry_needs_its_column() {
        let (_, e) = broken("kind = \"list\"\ncolumn = \"checklist\"\n", "kind = \"list\"\n");
        assert_eq!(e.key, "entry[12] (key \"checklist\").column", "{e}");
        assert_eq!(e.message, "missing; a list entry needs the posts column it fills");
    }
}
