//! Line-level text rules of the dump format: white space, bullets, keys, HTML character references.

use std::borrow::Cow;

/// White space as the dump format counts it: Unicode white space (tabs and U+00A0 included) and a stray BOM.
#[inline]
pub fn is_ws(c: char) -> bool {
    c.is_whitespace() || c == '\u{feff}'
}

/// ASCII white space (what `is_ws` accepts below U+0080).
#[inline]
pub(crate) fn is_ascii_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// The line without white space at either end.
#[inline(always)]
pub fn trim(s: &str) -> &str {
    // Most lines start and end in a printable ASCII byte: nothing to trim, and no need to look further.
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(&f), Some(&l)) if (0x21..0x80).contains(&f) && (0x21..0x80).contains(&l) => s,
        _ => trim_slow(s),
    }
}

#[inline(never)]
fn trim_slow(s: &str) -> &str {
    let b = s.as_bytes();
    let (mut start, mut end) = (0, b.len());
    while start < end {
        let c = b[start];
        if c < 0x80 {
            if !is_ascii_ws(c) {
                break;
            }
            start += 1;
        } else {
            match ws_prefix(&b[start..end]) {
                Some(n) => start += n,
                None => break,
            }
        }
    }
    while end > start {
        let c = b[end - 1];
        if c < 0x80 {
            if !is_ascii_ws(c) {
                break;
            }
            end -= 1;
        } else {
            match ws_suffix(&b[start..end]) {
                Some(n) => end -= n,
                None => break,
            }
        }
    }
    &s[start..end]
}

/// The length of the non-ASCII white space (`is_ws`) `b` starts with, if it does.
#[inline]
fn ws_prefix(b: &[u8]) -> Option<usize> {
    match b {
        [0xC2, 0x85 | 0xA0, ..] => Some(2),
        [0xE1, 0x9A, 0x80, ..]
        | [0xE2, 0x80, 0x80..=0x8A | 0xA8 | 0xA9 | 0xAF, ..]
        | [0xE2, 0x81, 0x9F, ..]
        | [0xE3, 0x80, 0x80, ..]
        | [0xEF, 0xBB, 0xBF, ..] => Some(3),
        _ => None,
    }
}

/// The length of the non-ASCII white space (`is_ws`) `b` ends with, if it does.
#[inline]
fn ws_suffix(b: &[u8]) -> Option<usize> {
    match b {
        [.., 0xC2, 0x85 | 0xA0] => Some(2),
        [.., 0xE1, 0x9A, 0x80]
        | [.., 0xE2, 0x80, 0x80..=0x8A | 0xA8 | 0xA9 | 0xAF]
        | [.., 0xE2, 0x81, 0x9F]
        | [.., 0xE3, 0x80, 0x80]
        | [.., 0xEF, 0xBB, 0xBF] => Some(3),
        _ => None,
    }
}

/// The line without trailing white space (and without a trailing `\r`).
#[inline]
pub fn trim_end(s: &str) -> &str {
    let b = s.as_bytes();
    let mut end = b.len();
    while end > 0 {
        if is_ascii_ws(b[end - 1]) {
            end -= 1;
        } else if let Some(n) = ws_suffix(&b[..end]).filter(|_| b[end - 1] >= 0x80) {
            end -= n;
        } else {
            break;
        }
    }
    &s[..end]
}

/// True when the line holds only white space.
#[inline]
pub fn is_blank(s: &str) -> bool {
    match s.bytes().position(|b| !is_ascii_ws(b)) {
        None => true,
        Some(i) if s.as_bytes()[i] < 0x80 => false,
        Some(i) => s[i..].chars().all(is_ws),
    }
}

const BULLETS: [char; 4] = ['•', '-', '*', '·'];

/// The length of the bullet character (of `BULLETS`) that `b` starts with, if it does.
#[inline]
pub(crate) fn bullet_prefix(b: &[u8]) -> Option<usize> {
    match b {
        [b'-' | b'*', ..] => Some(1),
        [0xE2, 0x80, 0xA2, ..] => Some(3), // •
        [0xC2, 0xB7, ..] => Some(2),       // ·
        _ => None,
    }
}

/// The item of a bullet line: optional indentation, a bullet character, one or more spaces, the item.
pub fn bullet_item(line: &str) -> Option<&str> {
    // Bytes while ASCII; where Unicode white space could be (a non-ASCII byte), chars decide.
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() && is_ascii_ws(b[i]) {
        i += 1;
    }
    let bullet_len = match (bullet_prefix(&b[i..]), b.get(i)) {
        (Some(n), _) => n,
        (None, Some(c)) if *c >= 0x80 => return bullet_item_chars(line),
        (None, _) => return None,
    };
    let after = i + bullet_len;
    let mut j = after;
    while j < b.len() && is_ascii_ws(b[j]) {
        j += 1;
    }
    if j < b.len() && b[j] >= 0x80 {
        return bullet_item_chars(line);
    }
    if j == after {
        return None;
    }
    let item = trim_end(&line[j..]);
    (!item.is_empty()).then_some(item)
}

/// `bullet_item` a char at a time.
fn bullet_item_chars(line: &str) -> Option<&str> {
    let rest = line.trim_start_matches(is_ws);
    let mut chars = rest.chars();
    let b = chars.next()?;
    if !BULLETS.contains(&b) {
        return None;
    }
    let after = &rest[b.len_utf8()..];
    let item = after.trim_start_matches(is_ws);
    if item.len() == after.len() {
        return None;
    }
    let item = trim_end(item);
    (!item.is_empty()).then_some(item)
}

/// Matches a folded key (lower case, single spaces) at the start of `line`, case-insensitively and
/// with any run of white space where the key has a space. Returns the byte length matched.
pub fn match_key(line: &str, key: &str) -> Option<usize> {
    // ASCII fast path, byte by byte; any non-ASCII byte on either side decides on chars instead.
    let (l, k) = (line.as_bytes(), key.as_bytes());
    let mut pos = 0;
    for &kb in k {
        if kb == b' ' {
            let start = pos;
            while pos < l.len() && is_ascii_ws(l[pos]) {
                pos += 1;
            }
            if l.get(pos).is_some_and(|b| *b >= 0x80) {
                return match_key_chars(line, key);
            }
            if pos == start {
                return None;
            }
            continue;
        }
        match l.get(pos) {
            Some(&b) if b < 0x80 && kb < 0x80 => {
                if b.to_ascii_lowercase() != kb {
                    return None;
                }
                pos += 1;
            }
            Some(_) => return match_key_chars(line, key),
            None => return None,
        }
    }
    Some(pos)
}

/// `match_key` a char at a time (Unicode white space and case folding).
fn match_key_chars(line: &str, key: &str) -> Option<usize> {
    let mut pos = 0;
    let bytes = line;
    for k in key.chars() {
        if k == ' ' {
            let rest = &bytes[pos..];
            let trimmed = rest.trim_start_matches(is_ws);
            if trimmed.len() == rest.len() {
                return None;
            }
            pos += rest.len() - trimmed.len();
            continue;
        }
        let c = bytes[pos..].chars().next()?;
        let mut lower = c.to_lowercase();
        if lower.next() != Some(k) || lower.next().is_some() {
            return None;
        }
        pos += c.len_utf8();
    }
    Some(pos)
}

/// The value after a scalar key: a `:` and white space between key and value mean nothing.
pub fn scalar_value(rest: &str) -> &str {
    let r = rest.trim_start_matches(is_ws);
    let r = r.strip_prefix(':').unwrap_or(r);
    trim(r)
}

/// Decodes HTML character references once: `&name;`, `&#NNN;`, `&#xHH;`. Unknown or malformed
/// references stay as written.
pub fn decode_entities(s: &str) -> Cow<'_, str> {
    // Most values are short: a plain scan beats a SIMD search's setup there.
    let found = if s.len() < 64 { s.bytes().position(|b| b == b'&') } else { memchr::memchr(b'&', s.as_bytes()) };
    let Some(first) = found else {
        return Cow::Borrowed(s);
    };
    let mut out = String::with_capacity(s.len());
    out.push_str(&s[..first]);
    let mut rest = &s[first..];
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        match reference(rest) {
            Some((ch, len)) => {
                out.push(ch);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// A reference at the start of `s` (which starts with `&`): the character and the bytes it spans.
fn reference(s: &str) -> Option<(char, usize)> {
    let end = s.as_bytes().iter().take(34).position(|&b| b == b';')?;
    let name = &s[1..end];
    let ch = if let Some(num) = name.strip_prefix('#') {
        let code = match num.strip_prefix(['x', 'X']) {
            Some(hex) if !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
                u32::from_str_radix(hex, 16).ok()?
            }
            Some(_) => return None,
            None if !num.is_empty() && num.bytes().all(|b| b.is_ascii_digit()) => num.parse().ok()?,
            None => return None,
        };
        if code == 0 {
            return None;
        }
        char::from_u32(code)?
    } else {
        named(name)?
    };
    Some((ch, end + 1))
}

fn named(name: &str) -> Option<char> {
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => '\u{a0}',
        "copy" => '©',
        "reg" => '®',
        "trade" => '™',
        "hellip" => '…',
        "mdash" => '—',
        "ndash" => '–',
        "lsquo" => '‘',
        "rsquo" => '’',
        "ldquo" => '“',
        "rdquo" => '”',
        "laquo" => '«',
        "raquo" => '»',
        "bull" => '•',
        "middot" => '·',
        "deg" => '°',
        "times" => '×',
        "euro" => '€',
        _ => return None,
    })
}

/// Decoded and trimmed text of a value.
pub fn clean(s: &str) -> String {
    clean_cow(s).into_owned()
}

/// Decoded and trimmed text of a value, borrowed when nothing was decoded.
pub fn clean_cow(s: &str) -> Cow<'_, str> {
    match decode_entities(trim(s)) {
        Cow::Borrowed(b) => Cow::Borrowed(b),
        Cow::Owned(o) => {
            let t = trim(&o);
            if t.len() == o.len() {
                Cow::Owned(o)
            } else {
                Cow::Owned(t.to_string())
            }
        }
    }
}

/// True when a line reads as a sentence: its last character, after closing quotes or brackets,
/// ends a sentence.
pub fn is_paragraph(line: &str) -> bool {
    let t = line.trim_end_matches(['"', '\'', '”', '’', ')', ']']);
    matches!(t.chars().last(), Some('.' | '!' | '?' | '…'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bullets_of_every_style() {
        for line in ["• item", "- item", "* item", "· item", "  • item  ", "\t-\titem", "\u{a0}\u{a0}*\u{a0}item"]
        {
            assert_eq!(bullet_item(line), Some("item"), "{line:?}");
        }
    }

    #[test]
    fn not_bullets() {
        for line in ["-item", "•", "- ", "item", "-5 degrees", "", "+ item", "—  item"] {
            assert_eq!(bullet_item(line), None, "{line:?}");
        }
    }

    #[test]
    fn keys_match_case_insensitively_with_folded_space() {
        assert_eq!(match_key("view count544543", "view count"), Some(10));
        assert_eq!(match_key("View  Count: 5", "view count"), Some(11));
        assert_eq!(match_key("view\t\u{a0}count5", "view count"), Some(12));
        assert_eq!(match_key("viewcount5", "view count"), None);
        assert_eq!(match_key("vie", "view count"), None);
        assert_eq!(match_key("HASHab12", "hash"), Some(4));
    }

    use proptest::prelude::*;

    proptest::proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]
        #[test]
        fn ascii_fast_path_matches_keys_like_the_char_path(
            line in proptest::collection::vec(proptest::sample::select(vec![
                "view", "VIEW", "count", " ", "  ", "\t", "\u{a0}", "\u{212a}", "k", "K", "it", ":", "5", "é", "É", "\u{17f}", "s",
            ]), 0..6).prop_map(|v| v.concat()),
            key in proptest::sample::select(vec!["view count", "kit", "view", "s", "é", "count 5", "ſ"]),
        ) {
            proptest::prop_assert_eq!(match_key(&line, key), match_key_chars(&line, key), "{:?} / {:?}", line, key);
        }
    }

    proptest::proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]
        #[test]
        fn byte_fast_paths_match_the_char_rules(
            line in proptest::collection::vec(proptest::sample::select(vec![
                " ", "\t", "\r", "\n", "\u{b}", "\u{a0}", "\u{feff}", "\u{2003}", "\u{85}", "•", "·", "-", "*", "x",
                "é", "item", "\u{1c}", "\u{2022}\u{a0}", "\u{b7}", "\u{1680}", "\u{200a}", "\u{200b}", "\u{2028}",
                "\u{202f}", "\u{205f}", "\u{3000}", "\u{3001}", "\u{e2}",
            ]), 0..7).prop_map(|v| v.concat()),
        ) {
            let l = line.as_str();
            proptest::prop_assert_eq!(trim(l), l.trim_matches(is_ws));
            proptest::prop_assert_eq!(trim_end(l), l.trim_end_matches(is_ws));
            proptest::prop_assert_eq!(is_blank(l), l.chars().all(is_ws));
            let reference = {
                let rest = l.trim_start_matches(is_ws);
                rest.chars().next().filter(|b| BULLETS.contains(b)).and_then(|b| {
                    let after = &rest[b.len_utf8()..];
                    let item = after.trim_start_matches(is_ws);
                    let item = item.trim_end_matches(is_ws);
                    (after.len() != after.trim_start_matches(is_ws).len() && !item.is_empty()).then_some(item)
                })
            };
            proptest::prop_assert_eq!(bullet_item(l), reference);
        }
    }

    #[test]
    fn non_ascii_white_space_is_known_by_its_bytes() {
        for c in ('\u{80}'..=char::MAX).filter(|c| !c.is_ascii()) {
            let mut buf = [0; 4];
            let b = c.encode_utf8(&mut buf).as_bytes();
            let want = is_ws(c).then_some(b.len());
            assert_eq!(ws_prefix(b), want, "{c:?} at the start");
            assert_eq!(ws_suffix(b), want, "{c:?} at the end");
            assert_eq!(ws_prefix(&[b, b"x"].concat()), want, "{c:?} before text");
            assert_eq!(ws_suffix(&[b"x", b].concat()), want, "{c:?} after text");
        }
    }

    #[test]
    fn scalar_values_drop_colon_and_space() {
        assert_eq!(scalar_value("544543"), "544543");
        assert_eq!(scalar_value(": 544543 "), "544543");
        assert_eq!(scalar_value("  :544543"), "544543");
        assert_eq!(scalar_value(" value: with colon"), "value: with colon");
    }

    #[test]
    fn entities_decode_once() {
        assert_eq!(decode_entities("a &amp; b"), "a & b");
        assert_eq!(decode_entities("&amp;lt;"), "&lt;");
        assert_eq!(decode_entities("what&#39;s &#x27;x&#X27; &quot;q&quot; &apos;&lt;&gt;"), "what's 'x' \"q\" '<>");
        assert_eq!(decode_entities("a&nbsp;b"), "a\u{a0}b");
        assert_eq!(decode_entities("?w=1&q=80"), "?w=1&q=80");
        assert_eq!(
            decode_entities("&unknown; & &#; &#x; &#0; &#xD800; &#99999999999;"),
            "&unknown; & &#; &#x; &#0; &#xD800; &#99999999999;"
        );
        assert_eq!(decode_entities("tail &amp"), "tail &amp");
        assert!(matches!(decode_entities("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn trimming_counts_nbsp_tabs_and_bom() {
        assert_eq!(trim("\u{feff}\t\u{a0} x \u{a0}\r"), "x");
        assert!(is_blank(" \t\u{a0}\r"));
        assert_eq!(clean(" &nbsp;x&nbsp; "), "x");
    }

    #[test]
    fn paragraphs_end_in_sentence_marks() {
        for p in [
            "a.",
            "a!",
            "a?",
            "a…",
            "he said \"go.\"",
            "(see above.)",
            "it’s done.’",
            "x.]",
            "wait…”",
            "ok!')\"",
            "“why?”",
        ] {
            assert!(is_paragraph(p), "{p}");
        }
        for h in ["final notes", "what next?!x", "a: b", "3.5 release", "", "\"", "(a)", "a.»", "a;"] {
            assert!(!is_paragraph(h), "{h}");
        }
    }
}
