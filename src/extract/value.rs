//! Value notations of the dump format: scores, dates, integers, flags, hashes.

/// Why a value could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueProblem {
    /// Not a value of the type at all.
    Unparsable,
    /// A number outside the allowed range.
    OutOfRange,
}

impl ValueProblem {
    /// The issue-code suffix.
    pub fn code(self) -> &'static str {
        match self {
            ValueProblem::Unparsable => "unparsable",
            ValueProblem::OutOfRange => "out_of_range",
        }
    }
}

/// A non-negative decimal `digits[.digits]` as mantissa and number of fraction digits.
fn decimal(s: &str) -> Option<(u128, u32, bool)> {
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    let frac_s = frac.unwrap_or("");
    if (int.is_empty() && frac_s.is_empty()) || frac_s.len() > 18 || int.len() > 18 {
        return None;
    }
    if frac == Some("") && int.is_empty() {
        return None;
    }
    // At most 36 digits: a u128 holds them.
    let mut m: u128 = 0;
    for b in int.bytes().chain(frac_s.bytes()) {
        if !b.is_ascii_digit() {
            return None;
        }
        m = m * 10 + u128::from(b - b'0');
    }
    Some((m, frac_s.len() as u32, frac.is_some()))
}

/// Rounds `m / 10^scale` half up to a whole number.
fn round_half_up(m: u128, scale: u32) -> u128 {
    let p = 10u128.pow(scale);
    (m * 2 + p) / (2 * p)
}

/// A 0–100 score written `95`, `95/100`, `95%` or `0.95`.
pub fn parse_score(raw: &str) -> Result<i32, ValueProblem> {
    let s = raw.trim();
    let (s, negative) = match s.strip_prefix('-') {
        Some(r) => (r.trim_start(), true),
        None => (s.strip_prefix('+').unwrap_or(s), false),
    };
    let (num, explicit_scale) = if let Some(n) = s.strip_suffix('%') {
        (n.trim_end(), true)
    } else if let Some((n, d)) = s.split_once('/') {
        if d.trim() != "100" {
            return Err(ValueProblem::Unparsable);
        }
        (n.trim_end(), true)
    } else {
        (s, false)
    };
    let (m, scale, has_point) = decimal(num).ok_or(ValueProblem::Unparsable)?;
    if negative && m > 0 {
        return Err(ValueProblem::OutOfRange);
    }
    let p = 10u128.pow(scale);
    // A decimal between 0 and 1 is a fraction; anything else is on the 0–100 scale.
    let hundredths = if has_point && !explicit_scale && m <= p { m * 100 } else { m };
    let v = round_half_up(hundredths, scale);
    if m > 100 * p {
        return Err(ValueProblem::OutOfRange);
    }
    Ok(v as i32)
}

/// An integer with optional thousands separators (`,` `_` or spaces between digits).
pub fn parse_int(raw: &str) -> Option<i64> {
    let s = raw.trim_matches(super::text::is_ws);
    let bytes = s.as_bytes();
    if bytes.is_empty() || !bytes[0].is_ascii_digit() || !bytes[bytes.len() - 1].is_ascii_digit() {
        return None;
    }
    let mut v: i64 = 0;
    let mut prev_sep = false;
    for c in s.chars() {
        if let Some(d) = c.to_digit(10).filter(|_| c.is_ascii_digit()) {
            v = v.checked_mul(10)?.checked_add(d as i64)?;
            prev_sep = false;
        } else if matches!(c, ',' | '_') || super::text::is_ws(c) {
            if prev_sep {
                return None;
            }
            prev_sep = true;
        } else {
            return None;
        }
    }
    Some(v)
}

/// `1`/`0`, `true`/`false`, `yes`/`no`, any letter case.
pub fn parse_flag(raw: &str) -> Option<bool> {
    let s = raw.trim();
    if s.eq_ignore_ascii_case("1") || s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("yes") {
        Some(true)
    } else if s.eq_ignore_ascii_case("0") || s.eq_ignore_ascii_case("false") || s.eq_ignore_ascii_case("no") {
        Some(false)
    } else {
        None
    }
}

/// A hash of 16 to 64 hexadecimal digits, lower-cased.
pub fn parse_hash(raw: &str) -> Option<String> {
    let s = raw.trim();
    ((16..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit())).then(|| s.to_ascii_lowercase())
}

const MONTHS: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const MONTH_NAMES: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

fn month(name: &str) -> Option<u32> {
    let n = name.to_ascii_lowercase();
    let n = n.strip_suffix('.').unwrap_or(&n);
    MONTHS
        .iter()
        .position(|m| *m == n)
        .or_else(|| MONTH_NAMES.iter().position(|m| *m == n))
        .or_else(|| (n == "sept").then_some(8))
        .map(|i| i as u32 + 1)
}

fn num(s: &str, min_len: usize, max_len: usize) -> Option<u32> {
    ((min_len..=max_len).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
}

/// `NaiveDate::num_days_from_ce` of 1970-01-01.
const EPOCH_DAYS_FROM_CE: i32 = 719_163;

/// Days since 1970-01-01 of a valid calendar date.
pub fn days_from_civil(y: i32, m: u32, d: u32) -> Option<i32> {
    Some(chrono::Datelike::num_days_from_ce(&chrono::NaiveDate::from_ymd_opt(y, m, d)?) - EPOCH_DAYS_FROM_CE)
}

/// A date written `2024-11-09`, `2024/11/09`, `09 Nov 2024`, `Nov 9, 2024` or `November 9, 2024`,
/// as days since 1970-01-01.
pub fn parse_date(raw: &str) -> Option<i32> {
    let s = raw.trim();
    for sep in ['-', '/'] {
        let parts: Vec<&str> = s.split(sep).collect();
        if parts.len() == 3 {
            let (y, m, d) = (num(parts[0], 4, 4)?, num(parts[1], 1, 2)?, num(parts[2], 1, 2)?);
            return days_from_civil(y as i32, m, d);
        }
    }
    let words: Vec<&str> = s.split_whitespace().collect();
    match words.as_slice() {
        [d, m, y] if d.bytes().all(|b| b.is_ascii_digit()) => {
            days_from_civil(num(y, 4, 4)? as i32, month(m)?, num(d, 1, 2)?)
        }
        [m, d, y] => {
            let d = d.strip_suffix(',')?;
            days_from_civil(num(y, 4, 4)? as i32, month(m)?, num(d, 1, 2)?)
        }
        _ => None,
    }
}

/// The first run of ASCII digits in `s`, as an integer.
pub fn first_integer(s: &str) -> Option<i64> {
    let start = s.bytes().position(|b| b.is_ascii_digit())?;
    let digits = &s[start..];
    let end = digits.bytes().position(|b| !b.is_ascii_digit()).unwrap_or(digits.len());
    let d = digits[..end].trim_start_matches('0');
    if d.is_empty() {
        return Some(0);
    }
    d.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_in_all_four_notations() {
        for s in ["95", "95/100", "95%", "0.95", " 95 ", "95 %", "95 / 100", "94.5", "0.945", "95.0"] {
            assert_eq!(parse_score(s), Ok(95), "{s}");
        }
        assert_eq!(parse_score("0"), Ok(0));
        assert_eq!(parse_score("100"), Ok(100));
        assert_eq!(parse_score("1.0"), Ok(100), "a decimal of 1 is a whole fraction");
        assert_eq!(parse_score("0.5"), Ok(50));
        assert_eq!(parse_score(".5"), Ok(50));
        assert_eq!(parse_score("1.5"), Ok(2), "above 1 is on the 0-100 scale, rounded half up");
        assert_eq!(parse_score("0.955"), Ok(96), "half up, without float error");
        assert_eq!(parse_score("0.5%"), Ok(1));
        assert_eq!(parse_score("100.0"), Ok(100));
        assert_eq!(parse_score("-0"), Ok(0));
    }

    #[test]
    fn scores_out_of_range_and_unparsable() {
        for s in ["101", "250", "999", "-1", "-0.5", "101%", "100.4", "140/100"] {
            assert_eq!(parse_score(s), Err(ValueProblem::OutOfRange), "{s}");
        }
        for s in ["", "n/a", "high", "9/10", "95 points", "1.2.3", ".", "95%%", "1e2"] {
            assert_eq!(parse_score(s), Err(ValueProblem::Unparsable), "{s}");
        }
    }

    #[test]
    fn dates_in_all_five_notations() {
        let want = days_from_civil(2024, 11, 9);
        assert_eq!(want, Some(20036));
        for s in [
            "2024-11-09",
            "2024/11/09",
            "09 Nov 2024",
            "9 nov 2024",
            "Nov 9, 2024",
            "November 9, 2024",
            "NOVEMBER 09, 2024",
            "2024-11-9",
        ] {
            assert_eq!(parse_date(s), want, "{s}");
        }
        for s in
            ["2024-13-45", "yesterday", "20xx-01-01", "2023-02-29", "Nov 9 2024", "9 November", "", "2024-11-09T00:00"]
        {
            assert_eq!(parse_date(s), None, "{s}");
        }
        assert_eq!(parse_date("2024-02-29"), days_from_civil(2024, 2, 29));
        assert_eq!(days_from_civil(2024, 11, 9), Some(20036));
        assert_eq!(days_from_civil(1970, 1, 1), Some(0));
        assert_eq!(days_from_civil(1969, 12, 31), Some(-1));
        assert_eq!(days_from_civil(2023, 2, 29), None);
        assert_eq!(days_from_civil(2024, 13, 1), None);
    }

    #[test]
    fn integers_with_separators() {
        assert_eq!(parse_int("544543"), Some(544543));
        assert_eq!(parse_int("1,234,567"), Some(1234567));
        assert_eq!(parse_int("1_234"), Some(1234));
        assert_eq!(parse_int("1 234 567"), Some(1234567));
        assert_eq!(parse_int("1\u{a0}234"), Some(1234));
        for s in ["", "n/a", "unknown", "-", "-5", "12a", "1,,2", ",12", "12,", "99999999999999999999", "١٢"] {
            assert_eq!(parse_int(s), None, "{s}");
        }
    }

    #[test]
    fn flags_and_hashes() {
        for (s, v) in [("1", true), ("0", false), ("True", true), ("false", false), ("YES", true), ("no", false)] {
            assert_eq!(parse_flag(s), Some(v));
        }
        assert_eq!(parse_flag("maybe"), None);
        assert_eq!(parse_hash("113B8413583934D18F4AF6BC").as_deref(), Some("113b8413583934d18f4af6bc"));
        assert_eq!(parse_hash("abcdef0123456789").as_deref(), Some("abcdef0123456789"));
        assert!(parse_hash("abcdef012345678").is_none(), "15 digits");
        assert!(parse_hash(&"a".repeat(65)).is_none());
        assert!(parse_hash("xyz0123456789abcdef").is_none());
        assert!(parse_hash("0123 4567 89ab cdef").is_none());
    }

    #[test]
    fn first_integers() {
        assert_eq!(first_integer("anp-ref-021693-6802"), Some(21693));
        assert_eq!(first_integer("alphanode-021693"), Some(21693));
        assert_eq!(first_integer("none"), None);
        assert_eq!(first_integer("x000"), Some(0));
    }
}
