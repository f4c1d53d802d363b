//! What extraction makes of one page: a record of cells (one per posts column) or a reject.

/// One column's value of one record, typed by the column it fills.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Cell {
    /// Null (or an empty list, for list columns).
    #[default]
    Null,
    /// A string.
    Text(String),
    /// An integer, date (days) or timestamp (µs).
    Int(i64),
    /// A float.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// list<string>.
    List(Vec<String>),
    /// struct<…: string>.
    Struct(Vec<Option<String>>),
    /// list<struct<…: string>>.
    Objects(Vec<Vec<Option<String>>>),
    /// map<string, list<string>>, in insertion order.
    Map(Vec<(String, Vec<String>)>),
}

/// A page that will become a posts row (unless it is a duplicate).
#[derive(Debug, Clone)]
pub struct Record {
    /// The lower-case hash (also in `cells`).
    pub hash: String,
    /// One cell per posts column.
    pub cells: Vec<Cell>,
    /// Known meta entries present with a valid value.
    pub entries_valid: u32,
    /// First integer of each `derive.ids_consistent` column.
    pub ids: Vec<Option<i64>>,
    /// True when the record has value problems.
    pub has_issues: bool,
}

/// Why a page cannot be imported, in order of precedence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    /// The page has no trailer before the end of its file.
    Truncated,
    /// The page has no meta block.
    NoMeta,
    /// The meta block has no hash.
    MissingHash,
    /// The hash is not 16–64 hex digits.
    InvalidHash,
    /// The page is larger than quarry holds in memory.
    PageTooLarge,
    /// The file could not be read to its end (a corrupt `.gz`, a truncated `.zst`, an I/O error).
    UnreadableFile,
}

impl RejectReason {
    /// The code stored in `rejects.reason`.
    pub fn code(self) -> &'static str {
        match self {
            RejectReason::Truncated => "truncated",
            RejectReason::NoMeta => "no_meta",
            RejectReason::MissingHash => "missing_hash",
            RejectReason::InvalidHash => "invalid_hash",
            RejectReason::PageTooLarge => "page_too_large",
            RejectReason::UnreadableFile => "unreadable_file",
        }
    }
}

/// A page that cannot be imported: its reason and a sentence for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    /// Reason code.
    pub reason: RejectReason,
    /// What was wrong, with the line when known.
    pub detail: String,
}
