//! What extraction makes of one page: a record of cells (one per posts column) or a reject.

use std::borrow::Cow;

/// One column's value of one record, typed by the column it fills. Text borrows from the page
/// it was extracted from wherever nothing had to be decoded, folded or joined (`'a`), so most
/// values cost no allocation; `into_owned` detaches a record from its page.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Cell<'a> {
    /// Null (or an empty list, for list columns).
    #[default]
    Null,
    /// A string.
    Text(Cow<'a, str>),
    /// An integer, date (days) or timestamp (µs).
    Int(i64),
    /// A float.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// list<string>.
    List(Vec<Cow<'a, str>>),
    /// struct<…: string>.
    Struct(Vec<Option<Cow<'a, str>>>),
    /// list<struct<…: string>>.
    Objects(Vec<Vec<Option<Cow<'a, str>>>>),
    /// map<string, list<string>>, in insertion order.
    Map(Vec<(String, Vec<String>)>),
}

fn owned(s: Cow<'_, str>) -> Cow<'static, str> {
    Cow::Owned(s.into_owned())
}

impl Cell<'_> {
    /// The same value, owning its text.
    pub fn into_owned(self) -> Cell<'static> {
        let opt = |v: Vec<Option<Cow<'_, str>>>| v.into_iter().map(|s| s.map(owned)).collect();
        match self {
            Cell::Null => Cell::Null,
            Cell::Text(s) => Cell::Text(owned(s)),
            Cell::Int(v) => Cell::Int(v),
            Cell::Float(v) => Cell::Float(v),
            Cell::Bool(v) => Cell::Bool(v),
            Cell::List(v) => Cell::List(v.into_iter().map(owned).collect()),
            Cell::Struct(v) => Cell::Struct(opt(v)),
            Cell::Objects(o) => Cell::Objects(o.into_iter().map(opt).collect()),
            Cell::Map(m) => Cell::Map(m),
        }
    }
}

/// A page that will become a posts row (unless it is a duplicate).
#[derive(Debug, Clone)]
pub struct Record<'a> {
    /// The lower-case hash (also in `cells`).
    pub hash: String,
    /// One cell per posts column.
    pub cells: Vec<Cell<'a>>,
    /// Known meta entries present with a valid value.
    pub entries_valid: u32,
    /// First integer of each `derive.ids_consistent` column.
    pub ids: Vec<Option<i64>>,
    /// True when the record has value problems.
    pub has_issues: bool,
}

impl Record<'_> {
    /// The same record, owning its text (to outlive the page it was extracted from).
    pub fn into_owned(self) -> Record<'static> {
        let Record { hash, cells, entries_valid, ids, has_issues } = self;
        Record { hash, cells: cells.into_iter().map(Cell::into_owned).collect(), entries_valid, ids, has_issues }
    }
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
