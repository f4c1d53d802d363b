//! One page's text → a `Record` of posts cells, or a `Reject` with its reason.

use std::borrow::Cow;

use arrow::datatypes::DataType;

use super::record::{Cell, Record, Reject, RejectReason};
use super::split::RawPage;
use super::text::{
    bullet_item, clean, clean_cow, decode_entities, is_blank, is_paragraph, match_key, scalar_value, trim, trim_end,
};
use super::value::{self, ValueProblem};
use crate::contract::schema;
use crate::pipeline::{fold_key, fold_key_cow, PairField, Pipeline, Target, ValueType};

/// Issue code of a page with bytes that are not UTF-8.
pub const INVALID_UTF8: &str = "invalid_utf8";

/// Extracts one split page; a page over the size limit (`max_page`) is rejected without being parsed.
pub fn extract_raw<'a>(p: &Pipeline, pg: &'a RawPage, max_page: usize) -> Result<Record<'a>, Reject> {
    if let Some(len) = pg.oversize {
        return Err(Reject {
            reason: RejectReason::PageTooLarge,
            detail: format!(
                "the page is {len} bytes; quarry holds at most {max_page} bytes of one page (raw keeps the first {max_page})"
            ),
        });
    }
    extract(p, &pg.bytes, pg.complete)
}

/// Extracts one page. `complete` is false for a page that reached the end of its file without a trailer.
/// The record's text borrows from `raw` where nothing had to be decoded (see `Cell`).
pub fn extract<'a>(p: &Pipeline, raw: &'a [u8], complete: bool) -> Result<Record<'a>, Reject> {
    if !complete {
        return Err(Reject {
            reason: RejectReason::Truncated,
            detail: "no trailer line before the end of the file: the dump was cut while it was written".into(),
        });
    }
    // simdutf8 validates several times faster than std on long ASCII runs; the lossy text of an
    // invalid page comes from std (and its record owns its text).
    match simdutf8::basic::from_utf8(raw) {
        Ok(text) => extract_text(p, text, false),
        Err(_) => extract_text(p, &String::from_utf8_lossy(raw), true).map(Record::into_owned),
    }
}

/// Extracts a page's text; `invalid_utf8`: it was decoded with replacement characters.
fn extract_text<'t>(p: &Pipeline, text: &'t str, invalid_utf8: bool) -> Result<Record<'t>, Reject> {
    // `text.split('\n')`, with one SIMD scan for the whole page instead of a search per line.
    let mut lines: Vec<&'t str> = Vec::with_capacity(64);
    let mut from = 0;
    for nl in memchr::memchr_iter(b'\n', text.as_bytes()) {
        lines.push(&text[from..nl]);
        from = nl + 1;
    }
    lines.push(&text[from..]);
    let mut page = PageBuilder::new(p);
    if invalid_utf8 {
        page.issue(INVALID_UTF8.to_string());
    }

    // A line that is only white space once decoded (`&nbsp;`) is blank too.
    let blank = |l: &str| is_blank(l) || clean(l).is_empty();
    let mut i = 0;
    while i < lines.len() && blank(lines[i]) {
        i += 1;
    }
    let mut meta_at = None;
    if i < lines.len() {
        if p.meta_start.is_match(trim(lines[i])) {
            meta_at = Some(i);
        } else {
            page.cells[p.cols.title] = Cell::Text(clean_cow(lines[i]));
            i += 1;
        }
    }
    let mut headings = Vec::new();
    let mut paragraphs = Vec::new();
    let mut trailer_at = lines.len();
    if meta_at.is_none() {
        while i < lines.len() {
            let t = trim(lines[i]);
            if t.is_empty() || bullet_item(lines[i]).is_some() {
                i += 1;
                continue;
            }
            if p.meta_start.is_match(t) {
                meta_at = Some(i);
                break;
            }
            if p.trailer.is_match(t) {
                trailer_at = i;
                break;
            }
            let line = clean_cow(t);
            // Lines are classified trimmed and decoded: `&bull; x` is a bullet, `&nbsp;` a blank line.
            // (A line nothing was decoded in is `t`, already known not to be a bullet.)
            if line.is_empty() || (matches!(line, Cow::Owned(_)) && bullet_item(&line).is_some()) {
                i += 1;
                continue;
            }
            if !p.image_line.is_match(&line) {
                if is_paragraph(&line) {
                    paragraphs.push(line);
                } else {
                    headings.push(line);
                }
            }
            i += 1;
        }
    }
    let Some(meta_at) = meta_at else {
        return Err(Reject {
            reason: RejectReason::NoMeta,
            detail: "no meta block: no line matches page.meta_start before the trailer".into(),
        });
    };
    // Like the splitter, only a line that is neither blank nor a bullet can be the trailer.
    if let Some(k) = lines[meta_at + 1..]
        .iter()
        .position(|l| p.trailer.is_match(trim(l)) && !is_blank(l) && bullet_item(l).is_none())
    {
        trailer_at = meta_at + 1 + k;
    }
    page.meta(&lines[meta_at + 1..trailer_at.max(meta_at + 1)], meta_at + 2)?;

    let similar: Vec<Cow<'t, str>> = lines
        .get(trailer_at + 1..)
        .unwrap_or(&[])
        .iter()
        .filter_map(|l| bullet_item(l))
        .map(clean_cow)
        .filter(|s| !s.is_empty())
        .collect();
    let c = &p.cols;
    let title = match &page.cells[c.title] {
        Cell::Text(t) => t.as_ref(),
        _ => "",
    };
    let (fp, words) = fingerprint_parts(title, &paragraphs);
    page.cells[c.content_fingerprint] = Cell::Text(fp.into());
    page.cells[c.word_count] = Cell::Int(words as i64);
    page.cells[c.paragraph_count] = Cell::Int(paragraphs.len() as i64);
    page.cells[c.body] = match paragraphs.len() {
        0 => Cell::Null,
        1 => Cell::Text(paragraphs.pop().expect("one paragraph")),
        _ => Cell::Text(paragraphs.join("\n\n").into()),
    };
    page.cells[c.headings] = Cell::List(headings);
    page.cells[c.similar_posts] = Cell::List(similar);
    page.finish()
}

/// Hash of the normalized title and body (lower case, white space folded), to find one text under two hashes.
pub fn fingerprint(title: &str, body: &str) -> String {
    fingerprint_parts(title, &[body]).0
}

/// The fingerprint of a title and a body given as its paragraphs (joined by blank lines in
/// `body`), and the number of words of the body.
pub fn fingerprint_parts<S: AsRef<str>>(title: &str, paragraphs: &[S]) -> (String, usize) {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    let mut buf = Vec::new();
    fold_words(title, &mut h, &mut buf, &mut false);
    h.update(&[0]);
    let mut started = false;
    let words = paragraphs.iter().map(|p| fold_words(p.as_ref(), &mut h, &mut buf, &mut started)).sum();
    (format!("{:032x}", h.digest128()), words)
}

/// Feeds the words of `text` to `h`, lower case and one space apart (a space before the first
/// when `started`: `text` continues a part after white space). Returns the number of words.
fn fold_words(text: &str, h: &mut xxhash_rust::xxh3::Xxh3, buf: &mut Vec<u8>, started: &mut bool) -> usize {
    let bytes = text.as_bytes();
    // Already folded (ASCII, no capitals, no white space but single inner spaces): as it is.
    let odd = bytes.iter().fold(false, |acc, &b| acc | !(b' '..0x7f).contains(&b) | b.is_ascii_uppercase());
    if !odd
        && bytes.first() != Some(&b' ')
        && bytes.last() != Some(&b' ')
        && memchr::memmem::find(bytes, b"  ").is_none()
    {
        if bytes.is_empty() {
            return 0;
        }
        if *started {
            h.update(b" ");
        }
        *started = true;
        h.update(bytes);
        return memchr::memchr_iter(b' ', bytes).count() + 1;
    }
    buf.clear();
    let mut words = 0;
    if text.is_ascii() {
        // The rule below, a byte at a time.
        let mut pending_space = false;
        for &b in bytes {
            if b.is_ascii_whitespace() || b == 0x0b {
                pending_space = true;
            } else {
                if pending_space || buf.is_empty() {
                    if *started {
                        buf.push(b' ');
                    }
                    words += 1;
                }
                pending_space = false;
                *started = true;
                buf.push(b.to_ascii_lowercase());
            }
        }
    } else {
        for word in text.split_whitespace() {
            if *started {
                buf.push(b' ');
            }
            *started = true;
            words += 1;
            buf.extend_from_slice(word.to_lowercase().as_bytes());
        }
    }
    h.update(buf);
    words
}

struct PageBuilder<'p, 't> {
    p: &'p Pipeline,
    cells: Vec<Cell<'t>>,
    issues: Vec<String>,
    extra: Vec<(String, Vec<String>)>,
    unparsed: Vec<Cow<'t, str>>,
    seen: Vec<bool>,
    entries_valid: u32,
    hash: Option<Result<String, String>>,
}

impl<'p, 't> PageBuilder<'p, 't> {
    fn new(p: &'p Pipeline) -> Self {
        PageBuilder {
            p,
            cells: vec![Cell::Null; schema::posts_ref().fields().len()],
            issues: Vec::new(),
            extra: Vec::new(),
            unparsed: Vec::new(),
            seen: vec![false; p.entries.len()],
            entries_valid: 0,
            hash: None,
        }
    }

    fn issue(&mut self, code: String) {
        if !self.issues.contains(&code) {
            self.issues.push(code);
        }
    }

    /// Reads the meta block; `first_line` is the 1-based page line of `lines[0]`.
    fn meta(&mut self, lines: &[&'t str], first_line: usize) -> Result<(), Reject> {
        let mut i = 0;
        while i < lines.len() {
            let line = lines[i];
            if is_blank(line) {
                i += 1;
                continue;
            }
            if bullet_item(line).is_some() {
                self.unparsed.push(trim_end(line).into());
                i += 1;
                continue;
            }
            let mut j = i + 1;
            let mut items = Vec::new();
            while j < lines.len() {
                if is_blank(lines[j]) {
                    j += 1;
                } else if let Some(item) = bullet_item(lines[j]) {
                    items.push((item, lines[j]));
                    j += 1;
                } else {
                    break;
                }
            }
            if items.is_empty() {
                self.scalar_line(line, first_line + i)?;
            } else {
                self.list(line, &items, &lines[i..j]);
            }
            i = j;
        }
        Ok(())
    }

    fn keep_unparsed(&mut self, lines: &[&'t str]) {
        self.unparsed.extend(lines.iter().filter(|l| !is_blank(l)).map(|l| Cow::Borrowed(trim_end(l))));
    }

    fn scalar_line(&mut self, line: &'t str, line_no: usize) -> Result<(), Reject> {
        let t = trim(line);
        let p = self.p;
        // A key can only match a line that starts with its first letter (when that is ASCII).
        let first = t.as_bytes().first().filter(|b| b.is_ascii()).map(u8::to_ascii_lowercase);
        let hit = p
            .scalar_order
            .iter()
            .filter(|&&e| first.is_none_or(|f| p.entries[e].key.as_bytes().first() == Some(&f)))
            .find_map(|&e| match_key(t, &p.entries[e].key).map(|n| (e, n)));
        let Some((e, n)) = hit else {
            self.unparsed.push(trim_end(line).into());
            return Ok(());
        };
        if std::mem::replace(&mut self.seen[e], true) {
            self.unparsed.push(trim_end(line).into());
            return Ok(());
        }
        let Target::Scalar { col, value, lowercase } = p.entries[e].target else {
            unreachable!("scalar_order holds scalars")
        };
        let raw = scalar_value(&t[n..]);
        if raw.is_empty() {
            return Ok(());
        }
        if value == ValueType::Hash {
            self.hash = Some(value::parse_hash(raw).ok_or_else(|| format!("line {line_no}: {raw:?}")));
            if let Some(Ok(h)) = &self.hash {
                self.cells[col] = Cell::Text(h.clone().into());
                self.entries_valid += 1;
            }
            return Ok(());
        }
        if self.set(col, value, lowercase, raw) {
            self.entries_valid += 1;
        }
        Ok(())
    }

    /// Parses `raw` as `value` into column `col`; records an issue when it does not parse.
    fn set(&mut self, col: usize, value: ValueType, lowercase: bool, raw: &'t str) -> bool {
        let field = schema::posts_ref().field(col);
        let problem = |me: &mut Self, pr: ValueProblem| {
            me.issue(format!("{}:{}", field.name(), pr.code()));
            false
        };
        match value {
            ValueType::Text | ValueType::Hash => {
                let v = clean_cow(raw);
                let v = if lowercase { lower(v) } else { v };
                self.cells[col] = Cell::Text(v);
                true
            }
            ValueType::Int => {
                let limit = if field.data_type() == &DataType::Int32 { i32::MAX as i64 } else { i64::MAX };
                match value::parse_int(raw).filter(|v| *v <= limit) {
                    Some(v) => {
                        self.cells[col] = Cell::Int(v);
                        true
                    }
                    None => problem(self, ValueProblem::Unparsable),
                }
            }
            ValueType::Score => match value::parse_score(raw) {
                Ok(v) => {
                    self.cells[col] = Cell::Int(v as i64);
                    true
                }
                Err(e) => problem(self, e),
            },
            ValueType::Date => match value::parse_date(raw) {
                Some(d) => {
                    self.cells[col] = Cell::Int(d as i64);
                    true
                }
                None => problem(self, ValueProblem::Unparsable),
            },
            ValueType::Flag => match value::parse_flag(raw) {
                Some(b) => {
                    self.cells[col] = Cell::Bool(b);
                    true
                }
                None => false,
            },
        }
    }

    fn list(&mut self, header: &str, items: &[(&'t str, &'t str)], lines: &[&'t str]) {
        let h = decode_entities(trim(header));
        let h = h.strip_suffix(':').unwrap_or(&h);
        let key = fold_key_cow(h);
        let p = self.p;
        let entry = p.entries.iter().position(|e| e.key == key && !matches!(e.target, Target::Scalar { .. }));
        let Some(e) = entry else {
            if self.extra.iter().any(|(k, _)| **k == *key) {
                self.keep_unparsed(lines);
            } else {
                let values = items.iter().map(|(v, _)| clean(v)).collect();
                self.extra.push((key.into_owned(), values));
            }
            return;
        };
        if std::mem::replace(&mut self.seen[e], true) {
            self.keep_unparsed(lines);
            return;
        }
        let valid = match &p.entries[e].target {
            Target::Scalar { .. } => unreachable!("filtered above"),
            Target::List { col } => {
                self.cells[*col] =
                    Cell::List(items.iter().map(|(v, _)| clean_cow(v)).filter(|v| !v.is_empty()).collect());
                true
            }
            Target::Pairs { fields } => {
                let mut valid = true;
                let mut got = vec![false; fields.len()];
                for (name, value, line) in self.pairs(&key, items) {
                    match fields.iter().position(|f| f.name == name) {
                        Some(_) if value.is_empty() => {}
                        Some(k) if !got[k] => {
                            got[k] = true;
                            let f = &fields[k];
                            valid &= self.set(f.col, f.value, f.lowercase, value);
                        }
                        Some(_) => self.unparsed.push(trim_end(line).into()),
                        None => self.extra_value(format!("{key}.{name}"), value, line),
                    }
                }
                valid && got.iter().any(|g| *g)
            }
            Target::Struct { col, fields } => {
                let n = struct_width(*col);
                let mut st = vec![None; n];
                for (name, value, line) in self.pairs(&key, items) {
                    match fields.iter().find(|f| f.name == name) {
                        Some(_) if value.is_empty() => {}
                        Some(f) if st[f.col].is_none() => st[f.col] = Some(text_value(f, value)),
                        Some(_) => self.unparsed.push(trim_end(line).into()),
                        None => self.extra_value(format!("{key}.{name}"), value, line),
                    }
                }
                let any = st.iter().any(Option::is_some);
                self.cells[*col] = Cell::Struct(st);
                any
            }
            Target::Objects { col, fields } => {
                let n = struct_width(*col);
                let mut objects: Vec<Vec<Option<Cow<'t, str>>>> = Vec::new();
                let mut cur: Vec<Option<Cow<'t, str>>> = vec![None; n];
                // Names given in the current object; an empty value (`• caption:`) is null, but the
                // name still counts as seen, so its next occurrence starts the next object.
                let mut named = vec![false; n];
                let mut started = false;
                for (name, value, line) in self.pairs(&key, items) {
                    match fields.iter().find(|f| f.name == name) {
                        Some(f) => {
                            if std::mem::replace(&mut named[f.col], true) {
                                objects.push(std::mem::replace(&mut cur, vec![None; n]));
                                named = vec![false; n];
                                named[f.col] = true;
                            }
                            let v = text_value(f, value);
                            cur[f.col] = (!v.is_empty()).then_some(v);
                            started = true;
                        }
                        None => self.extra_value(format!("{key}.{name}"), value, line),
                    }
                }
                if started {
                    objects.push(cur);
                }
                let any = !objects.is_empty();
                self.cells[*col] = Cell::Objects(objects);
                any
            }
        };
        if valid {
            self.entries_valid += 1;
        }
    }

    /// The `name: value` bullets of a list; a bullet without a colon goes to `unparsed_meta`.
    fn pairs(&mut self, _key: &str, items: &[(&'t str, &'t str)]) -> Vec<(Cow<'t, str>, &'t str, &'t str)> {
        let mut out = Vec::with_capacity(items.len());
        for &(item, line) in items {
            // The colon is a few bytes in: a plain scan beats a SIMD search's setup there.
            match item.bytes().position(|b| b == b':').map(|i| (&item[..i], &item[i + 1..])) {
                Some((name, value)) if !trim(name).is_empty() => {
                    let name = match decode_entities(name) {
                        Cow::Borrowed(b) => fold_key_cow(b),
                        Cow::Owned(o) => Cow::Owned(fold_key(&o)),
                    };
                    out.push((name, trim(value), line))
                }
                _ => self.unparsed.push(trim_end(line).into()),
            }
        }
        out
    }

    fn extra_value(&mut self, key: String, value: &str, line: &'t str) {
        match self.extra.iter_mut().find(|(k, _)| *k == key) {
            Some(_) => self.unparsed.push(trim_end(line).into()),
            None => self.extra.push((key, vec![clean(value)])),
        }
    }

    fn finish(mut self) -> Result<Record<'t>, Reject> {
        let hash = match self.hash.take() {
            None => {
                return Err(Reject {
                    reason: RejectReason::MissingHash,
                    detail: "the meta block has no hash entry".into(),
                });
            }
            Some(Err(where_)) => {
                return Err(Reject {
                    reason: RejectReason::InvalidHash,
                    detail: format!("hash at {where_} is not 16 to 64 hexadecimal digits"),
                });
            }
            Some(Ok(h)) => h,
        };
        let c = &self.p.cols;
        let ids = self
            .p
            .derive
            .ids
            .iter()
            .map(|&col| match &self.cells[col] {
                Cell::Text(t) => value::first_integer(t),
                Cell::Int(v) => Some(*v),
                _ => None,
            })
            .collect();
        let has_issues = !self.issues.is_empty();
        self.cells[c.issues] = Cell::List(self.issues.into_iter().map(Cow::Owned).collect());
        self.cells[c.extra_meta] = Cell::Map(self.extra);
        self.cells[c.unparsed_meta] = Cell::List(self.unparsed);
        Ok(Record { hash, cells: self.cells, entries_valid: self.entries_valid, ids, has_issues })
    }
}

fn struct_width(col: usize) -> usize {
    match schema::posts_ref().field(col).data_type() {
        DataType::Struct(f) => f.len(),
        DataType::List(item) => match item.data_type() {
            DataType::Struct(f) => f.len(),
            _ => 0,
        },
        _ => 0,
    }
}

fn text_value<'t>(f: &PairField, raw: &'t str) -> Cow<'t, str> {
    let v = clean_cow(raw);
    if f.lowercase {
        lower(v)
    } else {
        v
    }
}

/// `v` in lower case (as it is when it has no capitals).
fn lower(v: Cow<'_, str>) -> Cow<'_, str> {
    if v.bytes().all(|b| b.is_ascii() && !b.is_ascii_uppercase()) {
        v
    } else {
        Cow::Owned(v.to_lowercase())
    }
}

#[cfg(test)]
#[path = "page_tests.rs"]
mod tests;
