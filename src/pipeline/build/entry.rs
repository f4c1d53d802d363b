//! The meta entries, one function per kind: each resolves its columns and says where its values go.

use std::collections::HashSet;

use super::{type_name, value_fits, ColumnSlots};
use crate::contract::schema;
use crate::pipeline::config::{EntryConfig, FieldConfig, ListEntry, ObjectsEntry, PairsEntry, ScalarEntry, ValueType};
use crate::pipeline::error::{a, ConfigError, ConfigText};
use crate::pipeline::{fold_key, Entry, FixedColumns, PairField, Target};
use arrow::datatypes::{DataType, Fields};

/// Every entry in file order; keys unique, columns filled once, exactly one hash entry.
pub(super) fn build_entries(
    t: &ConfigText,
    configs: &[EntryConfig],
    cols: &FixedColumns,
    slots: &mut ColumnSlots,
) -> Result<Vec<Entry>, ConfigError> {
    if configs.is_empty() {
        return Err(t.err(None, "entry", "no meta entries; expected at least one [[entry]] with value = \"hash\""));
    }
    let mut entries = Vec::with_capacity(configs.len());
    let mut seen_keys = HashSet::new();
    for (i, e) in configs.iter().enumerate() {
        let raw_key = e.key();
        let path = format!("entry[{i}] (key {:?})", raw_key.get_ref());
        let key = fold_key(raw_key.get_ref());
        if key.is_empty() {
            return Err(t.err(
                Some(raw_key.span()),
                format!("entry[{i}].key"),
                "empty key; expected the key as written in dumps",
            ));
        }
        if !seen_keys.insert(key.clone()) {
            return Err(t.err(
                Some(raw_key.span()),
                format!("{path}.key"),
                "key given twice; each key may have one entry",
            ));
        }
        let target = match e {
            EntryConfig::Scalar(s) => scalar(t, &path, s, cols, slots)?,
            EntryConfig::List(l) => list(t, &path, l, slots)?,
            EntryConfig::Pairs(p) => pairs(t, &path, p, slots)?,
            EntryConfig::Objects(o) => objects(t, &path, o, slots)?,
        };
        entries.push(Entry { key, target });
    }
    let hashes = entries.iter().filter(|e| matches!(e.target, Target::Scalar { value: ValueType::Hash, .. })).count();
    if hashes != 1 {
        return Err(t.err(
            None,
            "entry",
            "expected exactly one scalar entry with value = \"hash\" and column = \"hash\" (the page identity)",
        ));
    }
    Ok(entries)
}

fn scalar(
    t: &ConfigText,
    path: &str,
    e: &ScalarEntry,
    cols: &FixedColumns,
    slots: &mut ColumnSlots,
) -> Result<Target, ConfigError> {
    let value = *e.value.get_ref();
    let c = &e.column;
    let (col, dt) = slots.find(t, c, &format!("{path}.column"))?;
    if !value_fits(value, &dt) {
        return Err(t.err(
            Some(c.span()),
            format!("{path}.value"),
            format!("{} value cannot fill column {:?} of type {}", a(value.name()), c.get_ref(), type_name(&dt)),
        ));
    }
    if value == ValueType::Hash && col != cols.hash {
        return Err(t.err(Some(c.span()), format!("{path}.column"), "a hash value must fill the column \"hash\""));
    }
    slots.bind(t, col, c.span(), format!("{path}.column"))?;
    Ok(Target::Scalar { col, value, lowercase: e.lowercase })
}

fn list(t: &ConfigText, path: &str, e: &ListEntry, slots: &mut ColumnSlots) -> Result<Target, ConfigError> {
    let c = &e.column;
    let (col, dt) = slots.find(t, c, &format!("{path}.column"))?;
    if dt != schema::list_of(DataType::Utf8) {
        return Err(t.err(
            Some(c.span()),
            format!("{path}.column"),
            format!("a list entry needs a list<string> column; {:?} is {}", c.get_ref(), type_name(&dt)),
        ));
    }
    slots.bind(t, col, c.span(), format!("{path}.column"))?;
    Ok(Target::List { col })
}

/// Without a column, each field fills its own posts column; with one, all go into that struct column.
fn pairs(t: &ConfigText, path: &str, e: &PairsEntry, slots: &mut ColumnSlots) -> Result<Target, ConfigError> {
    let Some(c) = &e.column else {
        let fields = named_fields(t, path, &e.fields, |f, fpath| own_column(t, f, fpath, slots))?;
        return Ok(Target::Pairs { fields });
    };
    let (col, dt) = slots.find(t, c, &format!("{path}.column"))?;
    let DataType::Struct(children) = &dt else {
        return Err(t.err(
            Some(c.span()),
            format!("{path}.column"),
            format!("a pairs entry with a column needs a struct column; {:?} is {}", c.get_ref(), type_name(&dt)),
        ));
    };
    slots.bind(t, col, c.span(), format!("{path}.column"))?;
    let fields = named_fields(t, path, &e.fields, |f, fpath| struct_child(t, children, f, fpath))?;
    Ok(Target::Struct { col, fields })
}

fn objects(t: &ConfigText, path: &str, e: &ObjectsEntry, slots: &mut ColumnSlots) -> Result<Target, ConfigError> {
    let c = &e.column;
    let (col, dt) = slots.find(t, c, &format!("{path}.column"))?;
    let children = match &dt {
        DataType::List(item) => match item.data_type() {
            DataType::Struct(f) => f.clone(),
            _ => {
                return Err(t.err(
                    Some(c.span()),
                    format!("{path}.column"),
                    "an objects entry needs a list<struct> column",
                ))
            }
        },
        _ => {
            return Err(t.err(
                Some(c.span()),
                format!("{path}.column"),
                format!("an objects entry needs a list<struct> column; {:?} is {}", c.get_ref(), type_name(&dt)),
            ))
        }
    };
    slots.bind(t, col, c.span(), format!("{path}.column"))?;
    let fields = named_fields(t, path, &e.fields, |f, fpath| struct_child(t, &children, f, fpath))?;
    Ok(Target::Objects { col, fields })
}

/// The fields of a pairs or objects entry, names folded and unique; `slot` resolves each one's column.
fn named_fields(
    t: &ConfigText,
    path: &str,
    configs: &[FieldConfig],
    mut slot: impl FnMut(&FieldConfig, &str) -> Result<usize, ConfigError>,
) -> Result<Vec<PairField>, ConfigError> {
    let mut fields = Vec::with_capacity(configs.len());
    let mut names = HashSet::new();
    for (j, f) in configs.iter().enumerate() {
        let fpath = format!("{path}.fields[{j}]");
        let name = fold_key(f.name.get_ref());
        if name.is_empty() || !names.insert(name.clone()) {
            return Err(t.err(Some(f.name.span()), format!("{fpath}.name"), "empty or repeated field name"));
        }
        let col = slot(f, &fpath)?;
        let lowercase = f.lowercase.as_ref().is_some_and(|l| *l.get_ref());
        fields.push(PairField { name, value: *f.value.get_ref(), lowercase, col });
    }
    Ok(fields)
}

/// A field of a pairs entry without a column: its own posts column, of a type its value fits.
fn own_column(t: &ConfigText, f: &FieldConfig, fpath: &str, slots: &mut ColumnSlots) -> Result<usize, ConfigError> {
    let value = *f.value.get_ref();
    let (col, dt) = slots.find(t, &f.column, &format!("{fpath}.column"))?;
    if !value_fits(value, &dt) || value == ValueType::Hash {
        return Err(t.err(
            Some(f.column.span()),
            format!("{fpath}.value"),
            format!("{} value cannot fill column {:?} of type {}", a(value.name()), f.column.get_ref(), type_name(&dt)),
        ));
    }
    slots.bind(t, col, f.column.span(), format!("{fpath}.column"))?;
    Ok(col)
}

/// A field of a struct column: the index of its child, which holds text.
fn struct_child(t: &ConfigText, children: &Fields, f: &FieldConfig, fpath: &str) -> Result<usize, ConfigError> {
    let column = &f.column;
    let idx = children.iter().position(|x| x.name() == column.get_ref()).ok_or_else(|| {
        let valid: Vec<&str> = children.iter().map(|x| x.name().as_str()).collect();
        t.err(
            Some(column.span()),
            format!("{fpath}.column"),
            format!("no field {:?} in the struct; expected one of: {}", column.get_ref(), valid.join(", ")),
        )
    })?;
    if *f.value.get_ref() != ValueType::Text {
        return Err(t.err(
            Some(column.span()),
            format!("{fpath}.value"),
            "struct fields hold text; expected value = \"text\"",
        ));
    }
    Ok(idx)
}
