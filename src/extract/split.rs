//! Cuts a stream of dump bytes into pages, keeping each page's byte offset.

use std::io::{self, BufRead};

use super::text::{bullet_item, bullet_prefix, is_ascii_ws, is_blank, trim};
use crate::pipeline::linematch::LinePattern;

/// Default largest page held in memory (4,000 times a typical page); larger pages are rejected as
/// `page_too_large`, their raw text cut to this size. It bounds memory: a page is copied a few times
/// on its way to Parquet.
pub const DEFAULT_MAX_PAGE_BYTES: usize = 16 << 20;

/// Bytes of a line always held, whatever the page limit (marker lines must stay whole).
const MIN_LINE_HELD: usize = 4096;

/// A page's bytes as read, from its first line to its last non-blank line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawPage {
    /// Byte offset of the page's first line in the decompressed file (a BOM counts).
    pub offset: u64,
    /// The page's bytes (for an oversized page, only its first `max_page` bytes).
    pub bytes: Vec<u8>,
    /// False when the file ended before the page's trailer.
    pub complete: bool,
    /// The page's length when it was larger than the limit (its bytes are cut).
    pub oversize: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Between,
    InPage,
    AfterTrailer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineKind {
    Blank,
    Bullet,
    Trailer,
    Other,
}

/// Streams pages out of a reader: the title line opens a page, the trailer line and the bullet
/// lines after it close it.
pub struct PageSplitter<'a, R> {
    reader: R,
    trailer: &'a LinePattern,
    pos: u64,
    at_start: bool,
    /// A line that spans the reader's buffer (or the file's first line), copied.
    line: Vec<u8>,
    page: PageBuf,
}

/// The page being cut, and its state.
struct PageBuf {
    max_page: usize,
    state: State,
    cur: Vec<u8>,
    cur_offset: u64,
    cur_len: u64,
    keep: usize,
    /// Capacity to start the next page with (a little over the last page's size).
    hint: usize,
}

impl<'a, R: BufRead> PageSplitter<'a, R> {
    /// A splitter over `reader` using the pipeline's trailer pattern.
    pub fn new(reader: R, trailer: &'a LinePattern) -> Self {
        Self::with_max_page(reader, trailer, DEFAULT_MAX_PAGE_BYTES)
    }

    /// A splitter that holds at most `max_page` bytes of one page.
    pub fn with_max_page(reader: R, trailer: &'a LinePattern, max_page: usize) -> Self {
        PageSplitter {
            reader,
            trailer,
            pos: 0,
            at_start: true,
            line: Vec::new(),
            page: PageBuf {
                max_page,
                state: State::Between,
                cur: Vec::new(),
                cur_offset: 0,
                cur_len: 0,
                keep: 0,
                hint: 4096,
            },
        }
    }

    /// Decompressed bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.pos
    }

    /// Bytes of the page in progress (for a reject when the stream fails), and its offset.
    pub fn take_partial(&mut self) -> Option<RawPage> {
        (self.page.state != State::Between).then(|| self.page.emit(false))
    }

    /// Reads the next line into `self.line`, holding at most `max_page` of its bytes (a longer
    /// line is consumed to its end and counted whole). Returns its offset and length.
    fn read_line(&mut self) -> io::Result<Option<(u64, u64)>> {
        self.line.clear();
        let mut len = 0usize;
        loop {
            let avail = match self.reader.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if avail.is_empty() {
                break;
            }
            let (take, done) = match memchr::memchr(b'\n', avail) {
                Some(i) => (i + 1, true),
                None => (avail.len(), false),
            };
            let room = self.page.max_page.max(MIN_LINE_HELD).saturating_sub(self.line.len());
            self.line.extend_from_slice(&avail[..take.min(room)]);
            len += take;
            self.reader.consume(take);
            if done {
                break;
            }
        }
        if len == 0 {
            return Ok(None);
        }
        if self.at_start {
            self.at_start = false;
            if self.line.starts_with(b"\xef\xbb\xbf") {
                self.line.drain(..3);
                len -= 3;
                self.pos += 3;
            }
        }
        let start = self.pos;
        self.pos += len as u64;
        Ok(Some((start, len as u64)))
    }
}

/// Blank, bullet, trailer or any other line. Lines that start with an ASCII character that opens
/// neither a bullet nor a trailer are decided on their first bytes; the rest are read as text
/// (one UTF-8 check; lossy only when invalid).
fn classify(trailer: &LinePattern, line: &[u8]) -> LineKind {
    let ws = |b: &u8| is_ascii_ws(*b);
    let first = line.iter().position(|b| !ws(b));
    match first {
        None => return LineKind::Blank,
        Some(i) if line[i].is_ascii() && !matches!(line[i], b'-' | b'*') && !trailer.may_start_with(line[i]) => {
            return LineKind::Other;
        }
        Some(i) => {
            // A bullet character, ASCII white space, and an item that begins and ends with an ASCII
            // character other than white space: a bullet whatever else the line holds (Unicode
            // white space, which only chars can tell, cannot be at either end of the item).
            let rest = &line[i..];
            if let Some(after) = bullet_prefix(rest) {
                let item = &rest[after..];
                let start = item.iter().position(|b| !ws(b));
                let end = item.iter().rposition(|b| !ws(b));
                if let (Some(a), Some(z)) = (start, end) {
                    if a > 0 && item[a] < 0x80 && item[z] < 0x80 {
                        return LineKind::Bullet;
                    }
                }
            }
        }
    }
    classify_text(trailer, line)
}

/// `classify` on the line's text (lossy when it is not UTF-8), without shortcuts.
fn classify_text(trailer: &LinePattern, line: &[u8]) -> LineKind {
    let lossy;
    let s = match std::str::from_utf8(line) {
        Ok(s) => s,
        Err(_) => {
            lossy = String::from_utf8_lossy(line);
            &lossy
        }
    };
    if is_blank(s) {
        LineKind::Blank
    } else if bullet_item(s).is_some() {
        LineKind::Bullet
    } else if trailer.is_match(trim(s)) {
        LineKind::Trailer
    } else {
        LineKind::Other
    }
}

impl PageBuf {
    /// Bytes of the page held: a page keeps its first `max_page` bytes.
    fn held(&self) -> usize {
        self.cur_len.min(self.max_page as u64) as usize
    }

    /// Counts a line of `len` bytes into the page (its bytes are copied by `fill`, now or later).
    fn account(&mut self, len: u64, keep: bool) {
        self.cur_len += len;
        if keep {
            self.keep = self.held();
        }
    }

    /// Copies the next bytes of the page, up to the limit.
    fn fill(&mut self, bytes: &[u8]) {
        let room = self.max_page.saturating_sub(self.cur.len());
        self.cur.extend_from_slice(&bytes[..room.min(bytes.len())]);
    }

    fn begin(&mut self, offset: u64) {
        self.cur = Vec::with_capacity(self.hint.min(self.max_page));
        self.cur_len = 0;
        self.cur_offset = offset;
        self.keep = 0;
        self.state = State::InPage;
    }

    fn emit(&mut self, complete: bool) -> RawPage {
        let mut bytes = std::mem::take(&mut self.cur);
        let oversize = (self.cur_len > self.max_page as u64).then_some(self.cur_len);
        if complete && oversize.is_none() {
            bytes.truncate(self.keep);
        }
        self.hint = bytes.len() + bytes.len() / 4 + 64;
        self.state = State::Between;
        RawPage { offset: self.cur_offset, bytes, complete, oversize }
    }

    /// Takes the next line (its offset and full length) into the page's state and returns the page
    /// it closes. `unfilled` holds the bytes of the page so far that are not copied into it yet
    /// (copied before it closes); the line's own bytes are the caller's to `fill` when the line
    /// belongs to a page (the state is not `Between` after the call).
    // Inlined into the per-line loop of the buffer path: as a call it cost ~50 instructions a line.
    #[inline(always)]
    fn line(&mut self, start: u64, len: u64, kind: LineKind, unfilled: &[u8]) -> Option<RawPage> {
        match (self.state, kind) {
            (State::Between, LineKind::Blank) => {}
            (State::Between, _) => {
                self.begin(start);
                self.account(len, true);
            }
            (State::InPage | State::AfterTrailer, LineKind::Blank) => self.account(len, false),
            (State::InPage, LineKind::Bullet | LineKind::Other) | (State::AfterTrailer, LineKind::Bullet) => {
                self.account(len, true)
            }
            (State::InPage, LineKind::Trailer) => {
                self.account(len, true);
                self.state = State::AfterTrailer;
            }
            (State::AfterTrailer, LineKind::Other | LineKind::Trailer) => {
                self.fill(unfilled);
                let page = self.emit(true);
                self.begin(start);
                self.account(len, true);
                return Some(page);
            }
        }
        None
    }
}

impl<R: BufRead> Iterator for PageSplitter<'_, R> {
    type Item = io::Result<RawPage>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            // Whole lines in the reader's buffer are classified there, and a page's bytes copied
            // from it in one piece when the page ends or the buffer does.
            if !self.at_start {
                let avail = match self.reader.fill_buf() {
                    Ok(b) => b,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Some(Err(e)),
                };
                let base = self.pos;
                let pg = &mut self.page;
                // avail[pending..done]: bytes of the page in progress not yet copied into it.
                let (mut pending, mut done) = (0, 0);
                let mut closed = None;
                for nl in memchr::memchr_iter(b'\n', avail) {
                    let (s, e) = (done, nl + 1);
                    let opened = pg.state == State::Between;
                    let kind = classify(self.trailer, &avail[s..e]);
                    closed = pg.line(base + s as u64, (e - s) as u64, kind, &avail[pending..s]);
                    if closed.is_some() || opened && pg.state != State::Between {
                        pending = s;
                    }
                    done = e;
                    if closed.is_some() {
                        break;
                    }
                }
                if pg.state != State::Between {
                    pg.fill(&avail[pending..done]);
                }
                self.pos += done as u64;
                self.reader.consume(done);
                if let Some(p) = closed {
                    return Some(Ok(p));
                }
                if done > 0 {
                    continue;
                }
            }
            let (start, len) = match self.read_line() {
                Ok(Some(s)) => s,
                Ok(None) => {
                    return match self.page.state {
                        State::Between => None,
                        State::InPage => Some(Ok(self.page.emit(false))),
                        State::AfterTrailer => Some(Ok(self.page.emit(true))),
                    };
                }
                Err(e) => return Some(Err(e)),
            };
            let kind = classify(self.trailer, &self.line);
            let closed = self.page.line(start, len, kind, &[]);
            if self.page.state != State::Between {
                self.page.fill(&self.line);
            }
            if let Some(p) = closed {
                return Some(Ok(p));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trailer() -> LinePattern {
        LinePattern::new(r"(?i)^similar\s+posts$").unwrap()
    }

    fn split(data: &[u8]) -> Vec<RawPage> {
        let t = trailer();
        PageSplitter::new(data, &t).map(Result::unwrap).collect()
    }

    #[test]
    fn pages_back_to_back_with_offsets() {
        let data = b"t1\nbody.\nSimilar Posts\nt2\nx\nsimilar posts\n  \xe2\x80\xa2 other\n\nt3\nSIMILAR  POSTS";
        let pages = split(data);
        assert_eq!(pages.len(), 3);
        assert_eq!(pages[0].offset, 0);
        assert_eq!(pages[0].bytes, b"t1\nbody.\nSimilar Posts\n");
        assert_eq!(pages[1].offset, 23);
        assert_eq!(pages[1].bytes, b"t2\nx\nsimilar posts\n  \xe2\x80\xa2 other\n");
        assert_eq!(pages[2].offset, 55);
        assert!(pages.iter().all(|p| p.complete));
        assert_eq!(pages[2].bytes, b"t3\nSIMILAR  POSTS");
    }

    #[test]
    fn bom_counts_in_offsets_and_crlf_is_kept() {
        let pages = split(b"\xef\xbb\xbftitle\r\n\r\nSimilar Posts\r\n\r\n\r\nnext\r\n");
        assert_eq!(pages[0].offset, 3);
        assert_eq!(pages[0].bytes, b"title\r\n\r\nSimilar Posts\r\n");
        assert_eq!(pages[1].offset, 3 + 24 + 4);
        assert!(!pages[1].complete, "no trailer before the end");
        assert_eq!(pages[1].bytes, b"next\r\n");
    }

    #[test]
    fn similar_bullets_after_blank_lines_stay_with_their_page() {
        let pages = split(b"a\nSimilar Posts\n\n- x\n\n* y\nb\nSimilar Posts\n");
        assert_eq!(pages.len(), 2);
        assert_eq!(pages[0].bytes, b"a\nSimilar Posts\n\n- x\n\n* y\n");
        assert_eq!(pages[1].offset, 26);
    }

    #[test]
    fn similar_bullets_of_every_style_and_indentation_close_the_page() {
        let data =
            "t\n\t similar\u{a0}POSTS \t\r\n•\ta\r\n  - b\n\t* c\n\u{a0}· d\n-5 starts the next page\nSimilar Posts\n";
        let pages = split(data.as_bytes());
        assert_eq!(pages.len(), 2);
        assert!(pages[0].bytes.ends_with("\u{a0}· d\n".as_bytes()));
        assert_eq!(&data.as_bytes()[pages[1].offset as usize..][..5], b"-5 st");
        assert!(pages.iter().all(|p| p.complete));
    }

    #[test]
    fn the_trailer_is_a_whole_trimmed_line_only() {
        let pages = split(b"t\nsee similar posts below\nsimilar posts:\nSimilar Posts\n");
        assert_eq!(pages.len(), 1);
        assert_eq!(pages[0].bytes, b"t\nsee similar posts below\nsimilar posts:\nSimilar Posts\n");
    }

    #[test]
    fn a_bullet_at_the_start_of_a_file_opens_a_page() {
        // Only blank lines are skipped between pages; bullets after a trailer belong to that page.
        let pages = split(b"\n  \xe2\x80\xa2 x\nt\nSimilar Posts\n* s\n");
        assert_eq!(pages.len(), 1);
        assert_eq!(pages[0].offset, 1);
        assert_eq!(pages[0].bytes, b"  \xe2\x80\xa2 x\nt\nSimilar Posts\n* s\n");
    }

    #[test]
    fn empty_and_blank_inputs_have_no_pages() {
        assert!(split(b"").is_empty());
        assert!(split(b"\n \n\t\r\n").is_empty());
        assert!(split(b"\xef\xbb\xbf").is_empty());
    }

    #[test]
    fn a_truncated_page_keeps_every_byte() {
        let pages = split(b"a\nb\n\n");
        assert_eq!(pages, vec![RawPage { offset: 0, bytes: b"a\nb\n\n".to_vec(), complete: false, oversize: None }]);
        let pages = split(b"a\nSimilar Po");
        assert!(!pages[0].complete);
    }

    #[test]
    fn no_trailing_newline_and_invalid_utf8() {
        let pages = split(b"t\xff\nSimilar Posts");
        assert_eq!(pages.len(), 1);
        assert!(pages[0].complete);
        assert_eq!(pages[0].bytes, b"t\xff\nSimilar Posts");
    }

    #[test]
    fn oversized_pages_are_cut_and_flagged() {
        let t = trailer();
        let data = b"title\nxxxxxxxxxxxxxxxxxxxx\nSimilar Posts\nnext\nSimilar Posts\n";
        let pages: Vec<_> = PageSplitter::with_max_page(&data[..], &t, 10).map(Result::unwrap).collect();
        assert_eq!(pages.len(), 2);
        assert_eq!(pages[0].bytes.len(), 10);
        assert_eq!(pages[0].oversize, Some(41));
        assert_eq!(pages[1].offset, 41);
    }

    #[test]
    fn a_line_longer_than_the_limit_is_not_held_whole() {
        let t = trailer();
        let mut data = b"title\n".to_vec();
        data.extend(std::iter::repeat_n(b'x', 1 << 20));
        data.extend_from_slice(b"\nSimilar Posts\nnext\nSimilar Posts\n");
        let mut s = PageSplitter::with_max_page(&data[..], &t, 8192);
        let first = s.next().unwrap().unwrap();
        assert!(s.line.capacity() < 64 << 10, "line buffer grew to {}", s.line.capacity());
        assert_eq!(first.bytes.len(), 8192);
        assert_eq!(first.oversize, Some(6 + (1 << 20) + 1 + 14));
        let second = s.next().unwrap().unwrap();
        assert_eq!(second.offset, 6 + (1 << 20) + 1 + 14);
        assert!(second.complete && second.oversize.is_none());
    }

    #[test]
    fn pages_do_not_depend_on_where_the_reader_buffer_ends() {
        let data =
            "\u{feff}t1\r\nbody.\nSimilar Posts\n\u{a0}\n  \u{2022} x\n-5 next\n\t similar\u{a0}POSTS \r\n* y\n\n\
                    \u{17f}imilar posts\ntitle \u{ff}\n\nsimilar posts\n  - z\nlast\nSimilar Po";
        let mut bytes = data.as_bytes().to_vec();
        bytes.extend_from_slice(b"\xff\xfe\n");
        let t = trailer();
        let whole: Vec<RawPage> = PageSplitter::new(&bytes[..], &t).map(Result::unwrap).collect();
        assert_eq!(whole.len(), 4, "{whole:?}");
        for cap in 1..24 {
            let r = std::io::BufReader::with_capacity(cap, &bytes[..]);
            let pages: Vec<RawPage> = PageSplitter::new(r, &t).map(Result::unwrap).collect();
            assert_eq!(pages, whole, "reader buffer of {cap} bytes");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4000))]
        #[test]
        fn line_shortcuts_classify_like_the_text_rules(
            parts in proptest::collection::vec(proptest::sample::select(vec![
                &b" "[..], b"\t", b"\r", b"\n", "\u{a0}".as_bytes(), "\u{feff}".as_bytes(), "\u{2003}".as_bytes(),
                "\u{2022}".as_bytes(), "\u{b7}".as_bytes(), b"-", b"*", b"x", b"5", b"\xff", b"\xe2\x80", "\u{e9}".as_bytes(),
                b"similar", b"Similar", b"posts", b"s", b"item",
            ]), 0..7),
        ) {
            let line: Vec<u8> = parts.concat();
            let t = trailer();
            proptest::prop_assert_eq!(classify(&t, &line), classify_text(&t, &line), "{:?}", String::from_utf8_lossy(&line));
        }
    }
}
