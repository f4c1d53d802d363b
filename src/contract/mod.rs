//! The warehouse contract (`shared/spec/warehouse.md`): its tables, their Arrow schemas, and how each
//! is written. Every stage below names a table through [`Table`], never by a string; this module
//! depends on no other module of quarry.

pub mod schema;

/// The version of the warehouse's layout on disk (its tables' files and `_quarry/`): 3 keeps a
/// Delta log in each table folder; 2 added the dedupe index (`_quarry/index/`); 1 held a hash list
/// per run. `quarry --version` prints it. A run upgrades an older warehouse as it opens it.
pub const WAREHOUSE_FORMAT: u32 = 3;

use std::fmt;

use arrow::datatypes::SchemaRef;

/// A table of the warehouse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    /// One row per unique hash.
    Posts,
    /// Pages that could not be imported, with their raw bytes.
    Rejects,
    /// Pages whose hash was already taken.
    Duplicates,
    /// One row per finished run, written last.
    Runs,
}

impl Table {
    /// Every table, in the order a run commits them.
    pub const ALL: [Table; 4] = [Table::Posts, Table::Rejects, Table::Duplicates, Table::Runs];
    /// The tables a run adds rows to before its `runs` row.
    pub const DATA: [Table; 3] = [Table::Posts, Table::Rejects, Table::Duplicates];

    /// The table's name: its folder in the warehouse and its name in SQL.
    pub fn name(self) -> &'static str {
        match self {
            Table::Posts => "posts",
            Table::Rejects => "rejects",
            Table::Duplicates => "duplicates",
            Table::Runs => "runs",
        }
    }

    /// The table named `name`, in any case (`Posts` is `posts`, as in every SQL engine).
    pub fn from_name(name: &str) -> Option<Table> {
        Table::ALL.into_iter().find(|t| t.name().eq_ignore_ascii_case(name))
    }

    /// The table's Arrow schema.
    pub fn schema(self) -> SchemaRef {
        match self {
            Table::Posts => schema::posts(),
            Table::Rejects => schema::rejects(),
            Table::Duplicates => schema::duplicates(),
            Table::Runs => schema::runs(),
        }
    }

    /// How the table's columns are encoded beyond the defaults.
    pub fn hints(self) -> WriteHints {
        match self {
            Table::Posts => WriteHints {
                file_rows: Some(POSTS_FILE_ROWS),
                bloom: &["hash"],
                unique: &[
                    "hash",
                    "title",
                    "reference",
                    "source_id",
                    "seed",
                    "view_count",
                    "content_fingerprint",
                    "source_offset",
                ],
                opaque: &["body", "summary", "ai_brief"],
            },
            Table::Rejects => WriteHints { opaque: &["raw"], ..WriteHints::default() },
            Table::Duplicates => WriteHints { bloom: &["hash"], ..WriteHints::default() },
            Table::Runs => WriteHints::default(),
        }
    }

    /// The table names, for messages (`posts, rejects, duplicates, runs`).
    pub fn names() -> String {
        Table::ALL.map(Table::name).join(", ")
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Rows of one posts file at most: a run of more writes several files (a Parquet writer holds every
/// row group's metadata until its file is closed, so this bounds what a long run holds).
pub const POSTS_FILE_ROWS: u64 = 1 << 20;

/// How a table's columns are written beyond the defaults (dictionary encoding, page statistics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteHints {
    /// Rows of one file at most (`None`: one file per run).
    pub file_rows: Option<u64>,
    /// Columns with a bloom filter (point lookups by analysts and by dedupe).
    pub bloom: &'static [&'static str],
    /// Nearly one value per row (hashes, titles, offsets): plain encoding, statistics kept. A
    /// dictionary of them would be as large as the values, and building it costs time.
    pub unique: &'static [&'static str],
    /// Long text or bytes nobody filters on (raw pages, bodies): plain, no statistics. A dictionary
    /// or min/max of them would hold another copy of long values while the file is written.
    pub opaque: &'static [&'static str],
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_case_insensitive_and_round_trip() {
        for t in Table::ALL {
            assert_eq!(Table::from_name(t.name()), Some(t));
            assert_eq!(Table::from_name(&t.name().to_uppercase()), Some(t));
        }
        assert_eq!(Table::from_name("Posts"), Some(Table::Posts));
        assert_eq!(Table::from_name("post"), None);
        assert_eq!(Table::names(), "posts, rejects, duplicates, runs");
    }

    #[test]
    fn every_hinted_column_exists_in_its_table() {
        for t in Table::ALL {
            let s = t.schema();
            let h = t.hints();
            for col in h.bloom.iter().chain(h.unique).chain(h.opaque) {
                assert!(s.index_of(col).is_ok(), "{t}: no column {col}");
            }
        }
    }
}
