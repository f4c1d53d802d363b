//! A line regex with cheap necessary conditions checked first.
//!
//! The page patterns (`meta_start`, `trailer`, `image_line`) are tried on nearly every line of a
//! dump, and almost every line fails them. Calling the regex costs tens of nanoseconds per line even
//! when it fails at the first byte, and a pattern like `^(?:.*\s)?visual…` scans the whole line.
//! From the pattern's syntax tree two conditions are derived that every match must meet:
//!
//! - for a pattern anchored at `^`, the set of bytes a match can start with, tested against the
//!   line's first byte;
//! - the longest literal every match must contain, searched for ignoring ASCII case (a superset of
//!   what the pattern accepts, whatever its case flags: Unicode case folding only adds non-ASCII
//!   variants, and a letter class with one is not taken into a literal).
//!
//! A line that fails either cannot match and the regex is not run; otherwise the regex decides, so
//! the answer is always the regex's own.

use regex::Regex;
use regex_syntax::hir::{Class, Hir, HirKind, Look};

/// A compiled line pattern: the regex and its prefilters.
#[derive(Debug, Clone)]
pub struct LinePattern {
    re: Regex,
    first: Option<Box<[bool; 256]>>,
    needle: Option<Needle>,
}

#[derive(Debug, Clone)]
struct Needle {
    /// Lower-case bytes (non-letters as written).
    lit: Vec<u8>,
    /// Index in `lit` of the byte searched for first (the rarest in English text).
    anchor: usize,
}

impl LinePattern {
    /// Compiles `pattern` (regex crate syntax).
    pub fn new(pattern: &str) -> Result<LinePattern, regex::Error> {
        let re = Regex::new(pattern)?;
        Ok(LinePattern::from_regex(re))
    }

    /// Wraps a compiled regex, deriving its prefilters.
    pub fn from_regex(re: Regex) -> LinePattern {
        // The same defaults as `Regex::new`; if the syntax crate disagrees, no prefilter.
        let (first, needle) = match regex_syntax::parse(re.as_str()) {
            Ok(hir) => (first_bytes(&hir), required_literal(&hir).and_then(Needle::new)),
            Err(_) => (None, None),
        };
        LinePattern { re, first, needle }
    }

    /// The regex.
    pub fn regex(&self) -> &Regex {
        &self.re
    }

    /// False when no match can start with byte `b` (at the start of a trimmed line); true when unsure.
    #[inline]
    pub fn may_start_with(&self, b: u8) -> bool {
        self.first.as_ref().is_none_or(|set| set[b as usize])
    }

    /// True when the regex matches `line` (same answer as `Regex::is_match`).
    #[inline]
    pub fn is_match(&self, line: &str) -> bool {
        if let Some(set) = &self.first {
            match line.as_bytes().first() {
                Some(&b) if set[b as usize] => {}
                _ => return false,
            }
        }
        if let Some(n) = &self.needle {
            if !n.found_in(line.as_bytes()) {
                return false;
            }
        }
        self.re.is_match(line)
    }
}

impl Needle {
    fn new(lit: Vec<u8>) -> Option<Needle> {
        if lit.len() < 3 {
            return None;
        }
        const COMMON: &[u8] = b" etaoinshrdlcumwfgypbvkjxqz";
        let rank = |b: u8| COMMON.iter().position(|&c| c == b).unwrap_or(COMMON.len());
        let anchor = (0..lit.len()).max_by_key(|&i| rank(lit[i])).expect("not empty");
        Some(Needle { lit, anchor })
    }

    /// True when `hay` holds the literal, ignoring ASCII case.
    fn found_in(&self, hay: &[u8]) -> bool {
        let (lit, k) = (&self.lit, self.anchor);
        if hay.len() < lit.len() {
            return false;
        }
        let b = lit[k];
        let check = |i: usize| {
            i >= k && i - k + lit.len() <= hay.len() && hay[i - k..i - k + lit.len()].eq_ignore_ascii_case(lit)
        };
        if b.is_ascii_lowercase() {
            memchr::memchr2_iter(b, b.to_ascii_uppercase(), hay).any(check)
        } else {
            memchr::memchr_iter(b, hay).any(check)
        }
    }
}

/// The bytes a match can start with, for a pattern anchored at the start that cannot match empty.
fn first_bytes(hir: &Hir) -> Option<Box<[bool; 256]>> {
    if !hir.properties().look_set_prefix().contains(Look::Start) {
        return None;
    }
    let mut set = Box::new([false; 256]);
    if add_first(hir, &mut set) {
        return None;
    }
    Some(set)
}

/// Adds the bytes `h` can start with to `set`; true when `h` can match the empty string (the
/// caller goes on to what follows). Conservative: look-arounds count as empty.
fn add_first(h: &Hir, set: &mut [bool; 256]) -> bool {
    match h.kind() {
        HirKind::Empty | HirKind::Look(_) => true,
        HirKind::Literal(l) => match l.0.first() {
            Some(&b) => {
                set[b as usize] = true;
                false
            }
            None => true,
        },
        HirKind::Class(Class::Bytes(c)) => {
            for r in c.ranges() {
                (r.start()..=r.end()).for_each(|b| set[b as usize] = true);
            }
            false
        }
        HirKind::Class(Class::Unicode(c)) => {
            for r in c.ranges() {
                let mut buf = [0u8; 4];
                let lo = r.start().encode_utf8(&mut buf).as_bytes()[0];
                let hi = r.end().encode_utf8(&mut buf).as_bytes()[0];
                // Lead bytes grow with the code point, so this range covers every char between.
                (lo..=hi).for_each(|b| set[b as usize] = true);
            }
            false
        }
        HirKind::Repetition(r) => add_first(&r.sub, set) || r.min == 0,
        HirKind::Capture(c) => add_first(&c.sub, set),
        HirKind::Concat(items) => items.iter().all(|x| add_first(x, set)),
        HirKind::Alternation(alts) => alts.iter().fold(false, |nullable, x| add_first(x, set) | nullable),
    }
}

/// One lower-case byte standing for `h` when it is a literal byte or an ASCII letter in either case.
fn literal_byte(h: &Hir) -> Option<Vec<u8>> {
    match h.kind() {
        HirKind::Literal(l) => Some(l.0.to_ascii_lowercase()),
        HirKind::Class(Class::Unicode(c)) => {
            let chars: Vec<char> = c.iter().flat_map(|r| r.start()..=r.end()).take(3).collect();
            match chars.as_slice() {
                [a] if a.is_ascii() => Some(vec![a.to_ascii_lowercase() as u8]),
                [a, b] if a.is_ascii_alphabetic() && a.eq_ignore_ascii_case(b) => {
                    Some(vec![a.to_ascii_lowercase() as u8])
                }
                _ => None,
            }
        }
        HirKind::Class(Class::Bytes(c)) => {
            let bytes: Vec<u8> = c.iter().flat_map(|r| r.start()..=r.end()).take(3).collect();
            match bytes.as_slice() {
                [a] => Some(vec![a.to_ascii_lowercase()]),
                [a, b] if a.is_ascii_alphabetic() && a.eq_ignore_ascii_case(b) => Some(vec![a.to_ascii_lowercase()]),
                _ => None,
            }
        }
        _ => None,
    }
}

/// The longest literal (lower case) that every match of `h` contains.
fn required_literal(h: &Hir) -> Option<Vec<u8>> {
    match h.kind() {
        HirKind::Capture(c) => required_literal(&c.sub),
        HirKind::Repetition(r) if r.min >= 1 => required_literal(&r.sub),
        HirKind::Concat(items) => {
            let mut best: Option<Vec<u8>> = None;
            let mut run: Vec<u8> = Vec::new();
            let keep = |cand: Vec<u8>, best: &mut Option<Vec<u8>>| {
                if best.as_ref().is_none_or(|b| cand.len() > b.len()) {
                    *best = Some(cand);
                }
            };
            for item in items {
                if let Some(bytes) = literal_byte(item) {
                    run.extend(bytes);
                    continue;
                }
                if !run.is_empty() {
                    keep(std::mem::take(&mut run), &mut best);
                }
                if let Some(inner) = required_literal(item) {
                    keep(inner, &mut best);
                }
            }
            if !run.is_empty() {
                keep(run, &mut best);
            }
            best
        }
        _ => literal_byte(h),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const PATTERNS: &[&str] = &[
        r"(?i)^alphanode\s+post\s+meta$",
        r"(?i)^similar\s+posts$",
        r"(?i)^(?:.*\s)?visual\s+reference\s+\d+(?:\.\s*image\s+source:.*)?$",
        r"^similar posts$",
        r"(?i)^ask\s+kit$",
        r"^a|b",
        r"(?m)^meta$",
        r"^$",
        r"^(?:)",
        r"^\d+ items$",
        r"(?i)^(?:related|similar)\s+posts?$",
        r"^x*yz",
        r"(?i)straße",
        r"^[äöü]nd$",
        r"^(?:ab)+cd",
    ];

    #[test]
    fn prefilters_are_derived_for_the_page_patterns() {
        let meta = LinePattern::new(PATTERNS[0]).unwrap();
        assert!(meta.first.as_ref().is_some_and(|s| s[b'a' as usize] && s[b'A' as usize] && !s[b's' as usize]));
        assert_eq!(meta.needle.as_ref().map(|n| n.lit.as_slice()), Some(&b"alphanode"[..]));
        let image = LinePattern::new(PATTERNS[2]).unwrap();
        assert!(image.first.as_ref().is_none_or(|s| s.iter().filter(|b| **b).count() > 200), "may start anywhere");
        assert_eq!(image.needle.as_ref().map(|n| n.lit.as_slice()), Some(&b"reference"[..]));
        // `s` folds to U+017F and `k` to U+212A under (?i): neither goes into a literal.
        let trailer = LinePattern::new(PATTERNS[1]).unwrap();
        assert!(trailer.first.as_ref().is_some_and(|s| s[b's' as usize] && s[0xC5]));
        assert_eq!(trailer.needle.as_ref().map(|n| n.lit.as_slice()), Some(&b"imilar"[..]));
        assert!(LinePattern::new(r"^a|b").unwrap().first.is_none());
        assert!(LinePattern::new(r"(?m)^meta$").unwrap().first.is_none());
    }

    #[test]
    fn unicode_case_variants_still_match() {
        let trailer = LinePattern::new(PATTERNS[1]).unwrap();
        assert!(trailer.is_match("\u{17f}imilar posts"));
        assert!(trailer.is_match("SIMILAR\tPOSTS"));
        assert!(!trailer.is_match("similar"));
        let kit = LinePattern::new(PATTERNS[4]).unwrap();
        assert!(kit.is_match("as\u{212a} kit"));
        let image = LinePattern::new(PATTERNS[2]).unwrap();
        assert!(image.is_match("a diagram, Visual  Reference 3. image source: x"));
        assert!(!image.is_match("a visual reference"));
    }

    fn line() -> impl Strategy<Value = String> {
        let pieces = prop::sample::select(vec![
            "similar",
            "SIMILAR",
            "posts",
            "Posts",
            " ",
            "\t",
            "alphanode",
            "post",
            "meta",
            "visual",
            "reference",
            "3",
            "١",
            ".",
            "image source:",
            "ſ",
            "K",
            "kit",
            "ask",
            "a",
            "b",
            "x",
            "yz",
            "items",
            "straße",
            "STRASSE",
            "ä",
            "nd",
            "ab",
            "cd",
            "related",
            "",
        ]);
        prop::collection::vec(pieces, 0..8).prop_map(|v| v.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn same_answer_as_the_regex(l in line()) {
            for p in PATTERNS {
                let lp = LinePattern::new(p).unwrap();
                prop_assert_eq!(lp.is_match(&l), lp.regex().is_match(&l), "{} on {:?}", p, l);
            }
        }
    }
}
