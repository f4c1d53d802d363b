//! Property tests: pages generated with the variations of dump-format.md (bullet styles, key case
//! and spacing, `key: value` or glued, score and date notations, integer separators, CRLF, BOM,
//! trailing white space, HTML references, shuffled entries) extract to the fields they were
//! generated from. Shrinking gives a minimal failing page; the failure message shows its text.

use std::path::Path;
use std::sync::OnceLock;

use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::Config;
use quarry::extract::page::extract;
use quarry::extract::record::{Cell, Record};

/// A list<string> cell of owned strings.
fn list_cell(v: Vec<String>) -> Cell<'static> {
    Cell::List(v.into_iter().map(std::borrow::Cow::Owned).collect())
}
use quarry::contract::schema;
use quarry::extract::split::PageSplitter;
use quarry::pipeline::Pipeline;

fn pipeline() -> &'static Pipeline {
    static P: OnceLock<Pipeline> = OnceLock::new();
    P.get_or_init(|| {
        Pipeline::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/alphanode.toml")).expect("pipeline")
    })
}

fn col(name: &str) -> usize {
    schema::posts().index_of(name).unwrap_or_else(|_| panic!("no column {name}"))
}

// ---- building blocks ---------------------------------------------------------------------------

/// Words that are no key, marker, bullet or image line, and end no sentence.
const WORDS: &[&str] = &[
    "tuning", "pools", "latency", "queue", "rust", "cache", "index", "shard", "replica", "vacuum", "lock", "schema",
    "retry", "backoff", "budget", "trace", "metric", "alert", "deploy", "canary", "rollout", "parser", "buffer",
];

/// An HTML reference as written, and what it decodes to.
const REFS: &[(&str, &str)] =
    &[("&amp;", "&"), ("&lt;", "<"), ("&gt;", ">"), ("&quot;", "\""), ("&#39;", "'"), ("&#x41;", "A"), ("&apos;", "'")];

/// Text as written and as decoded: 1–5 words, maybe one HTML reference in the middle.
fn text() -> impl Strategy<Value = (String, String)> {
    (prop::collection::vec(select(WORDS), 1..5), prop::option::of((select(REFS), any::<prop::sample::Index>())))
        .prop_map(|(words, r)| {
            let mut raw: Vec<String> = words.iter().map(|w| w.to_string()).collect();
            let mut dec = raw.clone();
            if let Some(((w, d), at)) = r {
                let at = at.index(raw.len() + 1);
                // Glued into a word (`a&amp;b`) so that the decoded text is never just a symbol.
                let word = WORDS[at % WORDS.len()];
                raw.insert(at, format!("{word}{w}{word}"));
                dec.insert(at, format!("{word}{d}{word}"));
            }
            (raw.join(" "), dec.join(" "))
        })
}

/// White space that may trail a line.
fn trailing() -> impl Strategy<Value = &'static str> {
    select(&["", "", " ", "  ", "\t", "\u{a0}", " \t\u{a0} "][..])
}

/// A run of white space inside a key.
fn key_space() -> impl Strategy<Value = &'static str> {
    select(&[" ", " ", "  ", "\t", "\u{a0}", " \t"][..])
}

/// A key as written: each letter in random case, each space a random run of white space.
fn key_as_written(key: &'static str) -> impl Strategy<Value = String> {
    let n = key.len();
    (prop::collection::vec(any::<bool>(), n), prop::collection::vec(key_space(), n)).prop_map(move |(upper, spaces)| {
        key.chars()
            .enumerate()
            .map(|(i, c)| {
                if c == ' ' {
                    spaces[i].to_string()
                } else if upper[i] {
                    c.to_ascii_uppercase().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect()
    })
}

/// Between a scalar key and its value: glued, `:`, spaces.
fn separator() -> impl Strategy<Value = &'static str> {
    select(&["", ":", ": ", " ", "  :  ", "\t", " : ", ":\u{a0}"][..])
}

/// A bullet prefix: indentation, bullet character, one or more spaces.
fn bullet() -> impl Strategy<Value = String> {
    (
        select(&["", " ", "  ", "\t", "\u{a0}"][..]),
        select(&["•", "-", "*", "·"][..]),
        select(&[" ", "  ", "\t", "\u{a0}"][..]),
    )
        .prop_map(|(i, b, s)| format!("{i}{b}{s}"))
}

/// An integer with or without thousands separators.
fn int_as_written(v: i64) -> impl Strategy<Value = String> {
    select(&["", ",", "_", " "][..]).prop_map(move |sep| {
        let digits = v.to_string();
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push_str(sep);
            }
            out.push(c);
        }
        out
    })
}

/// A 0–100 score in one of its notations.
fn score_as_written(v: i64) -> impl Strategy<Value = String> {
    (0..6u8).prop_map(move |n| match n {
        0 => format!("{v}"),
        1 => format!("{v}/100"),
        2 => format!("{v}%"),
        3 => format!("{}.{:02}", v / 100, v % 100),
        4 if v >= 2 => format!("{v}.0"),
        5 if v >= 3 => format!("{}.5", v - 1),
        _ => format!("{v} / 100"),
    })
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// Days since 1970-01-01 (computed here independently of the importer).
fn days(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn date_as_written(y: i64, m: i64, d: i64) -> impl Strategy<Value = String> {
    (0..5u8, any::<bool>()).prop_map(move |(n, upper)| {
        let name = MONTHS[m as usize - 1];
        let short = &name[..3];
        let (name, short) =
            if upper { (name.to_uppercase(), short.to_uppercase()) } else { (name.into(), short.into()) };
        match n {
            0 => format!("{y:04}-{m:02}-{d:02}"),
            1 => format!("{y:04}/{m:02}/{d:02}"),
            2 => format!("{d:02} {short} {y:04}"),
            3 => format!("{short} {d}, {y:04}"),
            _ => format!("{name} {d}, {y:04}"),
        }
    })
}

fn flag_as_written(v: bool) -> impl Strategy<Value = String> {
    (select(&[("1", "0"), ("true", "false"), ("yes", "no")][..]), any::<bool>()).prop_map(move |((t, f), upper)| {
        let s = if v { t } else { f };
        if upper {
            s.to_uppercase()
        } else {
            s.to_string()
        }
    })
}

// ---- a page ------------------------------------------------------------------------------------

/// One meta entry: its lines as written, and the cells it must fill.
#[derive(Debug, Clone)]
struct Entry {
    lines: Vec<String>,
    expect: Vec<(&'static str, Cell<'static>)>,
    extra: Option<(String, Vec<String>)>,
}

fn scalar(key: &'static str, column: &'static str, value: (String, Cell<'static>)) -> impl Strategy<Value = Entry> {
    (key_as_written(key), separator(), trailing(), select(&["", " ", "\t"][..])).prop_map(
        move |(k, sep, tr, indent)| {
            // A glued value must not start with a separator-looking character: the words never do.
            Entry {
                lines: vec![format!("{indent}{k}{sep}{}{tr}", value.0)],
                expect: vec![(column, value.1.clone())],
                extra: None,
            }
        },
    )
}

fn text_scalar(key: &'static str, column: &'static str, lowercase: bool) -> impl Strategy<Value = Entry> {
    (text(), any::<bool>()).prop_flat_map(move |((raw, dec), upper)| {
        // Upper case only without references (`&AMP;` is no reference).
        let upper = upper && !raw.contains('&');
        let raw = if upper { raw.to_uppercase() } else { raw };
        let dec = if upper { dec.to_uppercase() } else { dec };
        let dec = if lowercase { dec.to_lowercase() } else { dec };
        scalar(key, column, (raw, Cell::Text(dec.into())))
    })
}

fn list_header(key: &'static str) -> impl Strategy<Value = String> {
    (key_as_written(key), select(&["", ":"][..]), trailing()).prop_map(|(k, colon, tr)| format!("{k}{colon}{tr}"))
}

/// A list of `name: value` bullets; `items` are (name, value as written).
fn pairs_lines(key: &'static str, items: Vec<(&'static str, String)>) -> impl Strategy<Value = Vec<String>> {
    let n = items.len();
    (
        list_header(key),
        prop::collection::vec((bullet(), trailing(), select(&[": ", ":", " : ", ":\t"][..]), any::<bool>()), n),
        any::<bool>(),
    )
        .prop_map(move |(header, styles, blank_line)| {
            let mut lines = vec![header];
            for ((name, value), (b, tr, sep, upper)) in items.iter().zip(styles) {
                let name = if upper { name.to_uppercase() } else { name.to_string() };
                lines.push(format!("{b}{name}{sep}{value}{tr}"));
                if blank_line {
                    lines.push(String::new());
                }
            }
            lines
        })
}

fn list_entry(key: &'static str, column: &'static str) -> impl Strategy<Value = Entry> {
    (list_header(key), prop::collection::vec((bullet(), text(), trailing()), 1..5)).prop_map(move |(h, items)| {
        let mut lines = vec![h];
        let mut want = Vec::new();
        for (b, (raw, dec), tr) in items {
            lines.push(format!("{b}{raw}{tr}"));
            want.push(dec);
        }
        Entry { lines, expect: vec![(column, list_cell(want))], extra: None }
    })
}

fn score_entry() -> impl Strategy<Value = Entry> {
    (0..=100i64, 0..=100i64, 0..=100i64, 0..=100i64)
        .prop_flat_map(|(q, f, d, c)| {
            (score_as_written(q), score_as_written(f), score_as_written(d), score_as_written(c))
                .prop_map(move |w| ((q, f, d, c), w))
        })
        .prop_flat_map(|((q, f, d, c), (wq, wf, wd, wc))| {
            let items = vec![("quality", wq), ("freshness", wf), ("depth", wd), ("clarity", wc)];
            pairs_lines("score", items).prop_map(move |lines| Entry {
                lines,
                expect: vec![
                    ("quality_score", Cell::Int(q)),
                    ("freshness_score", Cell::Int(f)),
                    ("depth_score", Cell::Int(d)),
                    ("clarity_score", Cell::Int(c)),
                ],
                extra: None,
            })
        })
}

fn revision_entry() -> impl Strategy<Value = Entry> {
    (1990..2040i64, 1..=12i64, 1..=28i64, select(WORDS), 1..20u32)
        .prop_flat_map(|(y, m, d, status, major)| {
            date_as_written(y, m, d).prop_map(move |w| (days(y, m, d), w, status, major))
        })
        .prop_flat_map(|(day, w, status, major)| {
            let version = format!("{major}.0.1");
            let items = vec![("status", status.to_string()), ("version", version.clone()), ("last reviewed", w)];
            pairs_lines("revision", items).prop_map(move |lines| Entry {
                lines,
                expect: vec![
                    ("revision_status", Cell::Text(status.to_string().into())),
                    ("revision_version", Cell::Text(version.clone().into())),
                    ("last_reviewed", Cell::Int(day)),
                ],
                extra: None,
            })
        })
}

fn flags_entry() -> impl Strategy<Value = Entry> {
    prop::array::uniform4(any::<bool>())
        .prop_flat_map(|v| {
            (flag_as_written(v[0]), flag_as_written(v[1]), flag_as_written(v[2]), flag_as_written(v[3]))
                .prop_map(move |w| (v, w))
        })
        .prop_flat_map(|(v, (a, b, c, d))| {
            let items =
                vec![("ai generated style", a), ("has images", b), ("image heavy", c), ("needs human review", d)];
            pairs_lines("flags", items).prop_map(move |lines| Entry {
                lines,
                expect: vec![
                    ("flag_ai_generated_style", Cell::Bool(v[0])),
                    ("flag_has_images", Cell::Bool(v[1])),
                    ("flag_image_heavy", Cell::Bool(v[2])),
                    ("flag_needs_human_review", Cell::Bool(v[3])),
                ],
                extra: None,
            })
        })
}

fn payload_entry() -> impl Strategy<Value = Entry> {
    (0..100_000i64, 0..5_000_000i64, 0..50i64)
        .prop_flat_map(|(id, seed, paras)| {
            (int_as_written(seed), int_as_written(paras), text())
                .prop_map(move |(ws, wp, t)| (id, seed, paras, ws, wp, t))
        })
        .prop_flat_map(|(id, seed, paras, ws, wp, (raw, dec))| {
            let source = format!("alphanode-{id:06}");
            let items = vec![
                ("source id", source.clone()),
                ("seed", ws),
                ("paragraphs", wp),
                ("scenario", raw),
                ("generator", "gen".into()),
            ];
            pairs_lines("payload", items).prop_map(move |lines| Entry {
                lines,
                expect: vec![
                    ("source_id", Cell::Text(source.clone().into())),
                    ("seed", Cell::Int(seed)),
                    ("paragraphs_declared", Cell::Int(paras)),
                    ("scenario", Cell::Text(dec.clone().into())),
                    ("generator", Cell::Text("gen".into())),
                ],
                extra: None,
            })
        })
}

fn outline_entry() -> impl Strategy<Value = Entry> {
    (text(), text(), text(), text()).prop_flat_map(|(a, b, c, d)| {
        let items = vec![("context", a.0), ("problem", b.0), ("stack", c.0), ("recommended action", d.0)];
        let want = Cell::Struct(vec![Some(a.1.into()), Some(b.1.into()), Some(c.1.into()), Some(d.1.into())]);
        pairs_lines("ai outline", items).prop_map(move |lines| Entry {
            lines,
            expect: vec![("ai_outline", want.clone())],
            extra: None,
        })
    })
}

fn entities_entry() -> impl Strategy<Value = Entry> {
    prop::collection::vec((text(), select(WORDS)), 1..4).prop_flat_map(|objs| {
        let items: Vec<(&'static str, String)> =
            objs.iter().flat_map(|((raw, _), ty)| [("name", raw.clone()), ("type", ty.to_string())]).collect();
        let want = Cell::Objects(
            objs.iter().map(|((_, dec), ty)| vec![Some(dec.clone().into()), Some(ty.to_string().into())]).collect(),
        );
        pairs_lines("entities", items).prop_map(move |lines| Entry {
            lines,
            expect: vec![("entities", want.clone())],
            extra: None,
        })
    })
}

fn image_sources_entry() -> impl Strategy<Value = Entry> {
    // A URL keeps an ampersand that starts no reference (`?w=1&q=80`).
    prop::collection::vec((select(WORDS), 1..999u32, text()), 1..4).prop_flat_map(|objs| {
        let url = |w: &str, n: u32| format!("https://img.example/{w}/{n}.jpg?w={n}&q=80");
        let items: Vec<(&'static str, String)> = objs
            .iter()
            .flat_map(|(w, n, (raw, _))| [("source", w.to_string()), ("url", url(w, *n)), ("caption", raw.clone())])
            .collect();
        let want = Cell::Objects(
            objs.iter()
                .map(|(w, n, (_, dec))| {
                    vec![Some(w.to_string().into()), Some(url(w, *n).into()), Some(dec.clone().into())]
                })
                .collect(),
        );
        pairs_lines("image sources", items).prop_map(move |lines| Entry {
            lines,
            expect: vec![("image_sources", want.clone())],
            extra: None,
        })
    })
}

fn tags_entry() -> impl Strategy<Value = Entry> {
    (select(&["tags", "hashtags"][..]), prop::collection::vec((bullet(), text()), 1..4)).prop_map(|(key, items)| {
        let mut lines = vec![key.to_string()];
        let mut want = Vec::new();
        for (b, (raw, dec)) in items {
            lines.push(format!("{b}{raw}"));
            want.push(dec);
        }
        Entry { lines, expect: vec![], extra: Some((key.to_string(), want)) }
    })
}

fn hash_entry() -> impl Strategy<Value = Entry> {
    (prop::collection::vec(select(&b"0123456789abcdefABCDEF"[..]), 16..=64)).prop_flat_map(|digits| {
        let raw: String = digits.iter().map(|&b| b as char).collect();
        let want = raw.to_ascii_lowercase();
        scalar("hash", "hash", (raw, Cell::Text(want.into())))
    })
}

fn int_scalar(key: &'static str, column: &'static str, max: i64) -> impl Strategy<Value = Entry> {
    (0..max).prop_flat_map(move |v| int_as_written(v).prop_flat_map(move |w| scalar(key, column, (w, Cell::Int(v)))))
}

/// Every meta entry but the hash, each present or not (boxed: the nested strategy types are big).
fn meta_entries() -> impl Strategy<Value = Vec<Entry>> {
    fn opt(s: impl Strategy<Value = Entry> + 'static) -> BoxedStrategy<Option<Entry>> {
        prop::option::of(s).boxed()
    }
    let all: Vec<BoxedStrategy<Option<Entry>>> = vec![
        opt(text_scalar("topic", "topic", false)),
        opt(text_scalar("summary", "summary", false)),
        opt(text_scalar("ai brief", "ai_brief", false)),
        opt(text_scalar("code language", "code_language", true)),
        opt(text_scalar("difficulty", "difficulty", true)),
        opt(text_scalar("reference", "reference", false)),
        opt(int_scalar("reading time", "reading_time_min", 10_000)),
        opt(int_scalar("view count", "view_count", 10_000_000_000)),
        opt(list_entry("stack", "stack")),
        opt(list_entry("tools", "tools")),
        opt(list_entry("checklist", "checklist")),
        opt(list_entry("notes", "notes")),
        opt(score_entry()),
        opt(revision_entry()),
        opt(flags_entry()),
        opt(payload_entry()),
        opt(outline_entry()),
        opt(entities_entry()),
        opt(image_sources_entry()),
        opt(tags_entry()),
    ];
    all.prop_map(|v| v.into_iter().flatten().collect())
}

/// An article line as written, and where it goes.
#[derive(Debug, Clone)]
enum Article {
    Paragraph(String, String),
    Heading(String, String),
    Image(String),
    Bullet(String),
}

fn article_line() -> impl Strategy<Value = Article> {
    prop_oneof![
        3 => (text(), select(&[".", "!", "?", "…", ".\"", ".)"][..]))
            .prop_map(|((raw, dec), end)| Article::Paragraph(format!("{raw}{end}"), format!("{dec}{end}"))),
        2 => text().prop_map(|(raw, dec)| Article::Heading(raw, dec)),
        1 => (select(WORDS), 1..9u32, any::<bool>()).prop_map(|(w, n, src)| Article::Image(if src {
            format!("{w} visual reference {n}. image source: pexels")
        } else {
            format!("{w} Visual  Reference {n}")
        })),
        1 => (bullet(), text()).prop_map(|(b, (raw, _))| Article::Bullet(format!("{b}{raw}"))),
    ]
}

#[derive(Debug, Clone)]
struct GenPage {
    title: (String, String),
    article: Vec<(Article, &'static str, bool)>,
    meta: Vec<Entry>,
    similar: Vec<(String, String, String)>,
}

fn page() -> BoxedStrategy<GenPage> {
    (
        text(),
        prop::collection::vec((article_line(), trailing(), any::<bool>()), 0..8),
        (meta_entries(), hash_entry().boxed())
            .prop_map(|(mut m, h)| {
                m.push(h);
                m
            })
            .prop_shuffle()
            .boxed(),
        prop::collection::vec((bullet(), text()).prop_map(|(b, (raw, dec))| (b, raw, dec)), 0..4),
    )
        .prop_map(|(title, article, meta, similar)| GenPage { title, article, meta, similar })
        .boxed()
}

/// The page's lines (without line ends) and what its record must hold.
fn render(g: &GenPage, meta_marker: &str, trailer: &str) -> (Vec<String>, Vec<(&'static str, Cell<'static>)>) {
    let mut lines = vec![g.title.0.clone()];
    let (mut headings, mut paragraphs) = (Vec::new(), Vec::new());
    for (a, tr, blank) in &g.article {
        let text = match a {
            Article::Paragraph(raw, dec) => {
                paragraphs.push(dec.clone());
                raw
            }
            Article::Heading(raw, dec) => {
                headings.push(dec.clone());
                raw
            }
            Article::Image(raw) | Article::Bullet(raw) => raw,
        };
        lines.push(format!("{text}{tr}"));
        if *blank {
            lines.push(String::new());
        }
    }
    lines.push(meta_marker.to_string());
    let mut expect: Vec<(&'static str, Cell<'static>)> = Vec::new();
    let mut extra = Vec::new();
    for e in &g.meta {
        lines.extend(e.lines.iter().cloned());
        expect.extend(e.expect.iter().cloned());
        extra.extend(e.extra.clone());
    }
    lines.push(trailer.to_string());
    let mut similar = Vec::new();
    for (b, raw, dec) in &g.similar {
        lines.push(format!("{b}{raw}"));
        similar.push(dec.clone());
    }
    let words = paragraphs.iter().map(|p: &String| p.split_whitespace().count()).sum::<usize>();
    expect.push(("title", Cell::Text(g.title.1.clone().into())));
    expect.push(("headings", list_cell(headings)));
    expect.push(("body", if paragraphs.is_empty() { Cell::Null } else { Cell::Text(paragraphs.join("\n\n").into()) }));
    expect.push(("paragraph_count", Cell::Int(paragraphs.len() as i64)));
    expect.push(("word_count", Cell::Int(words as i64)));
    expect.push(("similar_posts", list_cell(similar)));
    expect.push(("issues", Cell::List(vec![])));
    expect.push(("unparsed_meta", Cell::List(vec![])));
    expect.push(("extra_meta", Cell::Map(extra)));
    (lines, expect)
}

fn check_record(rec: &Record, expect: &[(&'static str, Cell<'static>)], text: &str) -> Result<(), TestCaseError> {
    for (column, want) in expect {
        let got = &rec.cells[col(column)];
        prop_assert_eq!(got, want, "column {} of the page:\n{}", column, text);
    }
    Ok(())
}

/// The line ending, the markers' spelling, and whether the file starts with a BOM.
#[derive(Debug, Clone)]
struct Layout {
    eol: &'static str,
    bom: bool,
    meta_marker: &'static str,
    trailer: &'static str,
    gap: &'static str,
}

fn layout() -> impl Strategy<Value = Layout> {
    (
        select(&["\n", "\r\n"][..]),
        any::<bool>(),
        select(&["alphanode post meta", "ALPHANODE POST META", "  Alphanode  Post\tMeta  "][..]),
        select(&["Similar Posts", "similar posts", "\tSIMILAR\u{a0}POSTS  "][..]),
        select(&["", "\n", "\n\n", " \n\t\n"][..]),
    )
        .prop_map(|(eol, bom, meta_marker, trailer, gap)| Layout { eol, bom, meta_marker, trailer, gap })
}

proptest! {
    #![proptest_config(Config { cases: 512, ..Config::default() })]

    /// One to three pages in one file, split and extracted: every field as generated.
    #[test]
    fn generated_pages_extract_to_their_fields(pages in prop::collection::vec(page(), 1..4), l in layout()) {
        let p = pipeline();
        let mut file = String::new();
        if l.bom {
            file.push('\u{feff}');
        }
        let mut expects = Vec::new();
        let mut offsets = Vec::new();
        for g in &pages {
            offsets.push(file.len() as u64);
            let (lines, expect) = render(g, l.meta_marker, l.trailer);
            for line in lines {
                file.push_str(&line);
                file.push_str(l.eol);
            }
            file.push_str(l.gap);
            expects.push(expect);
        }
        let split: Vec<_> = PageSplitter::new(file.as_bytes(), &p.trailer).collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(split.len(), pages.len(), "pages split from:\n{}", file);
        let got: Vec<u64> = split.iter().map(|r| r.offset).collect();
        prop_assert_eq!(got, offsets, "page offsets in:\n{}", file);
        for (raw, expect) in split.iter().zip(&expects) {
            prop_assert!(raw.complete);
            let text = String::from_utf8_lossy(&raw.bytes).into_owned();
            match extract(p, &raw.bytes, raw.complete) {
                Ok(rec) => check_record(&rec, expect, &text)?,
                Err(rej) => prop_assert!(false, "rejected ({:?}: {}):\n{}", rej.reason, rej.detail, text),
            }
        }
    }

    /// A scalar key repeated on one page: the first counts, the repeat goes to unparsed_meta as written.
    #[test]
    fn a_repeated_key_keeps_the_first_value(first in text_scalar("topic", "topic", false), again in text_scalar("topic", "topic", false)) {
        let p = pipeline();
        let repeat = again.lines[0].clone();
        let page = format!("t\nalphanode post meta\n{}\n{}\nhash 00aabbccddeeff00\nSimilar Posts\n", first.lines[0], repeat);
        let rec = extract(p, page.as_bytes(), true).map_err(|r| TestCaseError::fail(format!("{r:?}")))?;
        prop_assert_eq!(&rec.cells[col("topic")], &first.expect[0].1);
        prop_assert_eq!(&rec.cells[col("unparsed_meta")], &Cell::List(vec![repeat.trim_end_matches(|c: char| c.is_whitespace()).to_string().into()]));
    }
}
