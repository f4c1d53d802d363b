//! Page-level tests: one or more per rule of `shared/spec/dump-format.md`, including the
//! variations `dumpgen.py` never writes, and the golden seed page.

use std::path::Path;
use std::sync::OnceLock;

use arrow::datatypes::{DataType, Fields};
use serde_json::{json, Map, Value};

use super::{extract, INVALID_UTF8};
use crate::contract::schema::posts;
use crate::extract::record::{Cell, Record, Reject, RejectReason};
use crate::extract::value::days_from_civil;
use crate::pipeline::Pipeline;

const SEED_PAGE: &[u8] = include_bytes!("../../samples/seed-page.txt");
const SEED_EXPECTED: &str = include_str!("../../samples/seed-page.expected.json");
const HASH: &str = "0123456789abcdef";

fn pipeline() -> &'static Pipeline {
    static P: OnceLock<Pipeline> = OnceLock::new();
    P.get_or_init(|| {
        Pipeline::from_toml(Path::new("pipelines/alphanode.toml"), include_str!("../../pipelines/alphanode.toml"))
            .expect("alphanode pipeline builds")
    })
}

/// A page's record, owning its text (so tests can pass the page text as a temporary).
fn ok_bytes(raw: &[u8]) -> Record<'static> {
    match extract(pipeline(), raw, true) {
        Ok(r) => r.into_owned(),
        Err(e) => panic!("page rejected: {e:?}\n{}", String::from_utf8_lossy(raw)),
    }
}

fn ok(text: &str) -> Record<'static> {
    ok_bytes(text.as_bytes())
}

fn reject(text: &str, complete: bool) -> Reject {
    match extract(pipeline(), text.as_bytes(), complete) {
        Ok(r) => panic!("page imported, expected a reject: hash {}\n{text}", r.hash),
        Err(e) => e,
    }
}

/// A page with a fixed title, the given article and meta lines, and a trailer.
fn page(article: &str, meta: &str) -> String {
    format!("A title\n\n{article}\n\nalphanode post meta\n\n{meta}\n\nSimilar Posts\n")
}

/// A page whose meta block is `meta` followed by a valid hash line.
fn with_meta(meta: &str) -> Record<'static> {
    ok(&page("Some body.", &format!("{meta}\nhash{HASH}")))
}

fn col(name: &str) -> usize {
    posts().index_of(name).unwrap_or_else(|_| panic!("no posts column {name}"))
}

fn text(r: &Record, name: &str) -> Option<String> {
    match &r.cells[col(name)] {
        Cell::Null => None,
        Cell::Text(s) => Some(s.to_string()),
        other => panic!("{name}: not text: {other:?}"),
    }
}

fn int(r: &Record, name: &str) -> Option<i64> {
    match &r.cells[col(name)] {
        Cell::Null => None,
        Cell::Int(v) => Some(*v),
        other => panic!("{name}: not an integer: {other:?}"),
    }
}

fn flag(r: &Record, name: &str) -> Option<bool> {
    match &r.cells[col(name)] {
        Cell::Null => None,
        Cell::Bool(v) => Some(*v),
        other => panic!("{name}: not a bool: {other:?}"),
    }
}

/// A list<string> column; a null list cell is written as an empty list.
fn list(r: &Record, name: &str) -> Vec<String> {
    match &r.cells[col(name)] {
        Cell::Null => Vec::new(),
        Cell::List(v) => v.iter().map(|s| s.to_string()).collect(),
        other => panic!("{name}: not a list: {other:?}"),
    }
}

fn extra(r: &Record) -> Vec<(String, Vec<String>)> {
    match &r.cells[col("extra_meta")] {
        Cell::Null => Vec::new(),
        Cell::Map(m) => m.clone(),
        other => panic!("extra_meta: not a map: {other:?}"),
    }
}

fn issues(r: &Record) -> Vec<String> {
    let mut v = list(r, "issues");
    v.sort();
    v
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn date(y: i32, m: u32, d: u32) -> Option<i64> {
    days_from_civil(y, m, d).map(i64::from)
}

fn struct_json(children: &Fields, values: &[Option<std::borrow::Cow<'_, str>>]) -> Value {
    assert_eq!(children.len(), values.len(), "struct width");
    Value::Object(children.iter().zip(values).map(|(f, v)| (f.name().clone(), json!(v))).collect())
}

/// The record's cells as JSON, named by the posts schema: dates as `YYYY-MM-DD`, structs by child
/// name, a null list as `[]` and a null map as `{}` (as the Parquet writer stores them).
fn to_json(r: &Record) -> Map<String, Value> {
    let posts = posts();
    assert_eq!(r.cells.len(), posts.fields().len());
    let mut out = Map::new();
    for (f, c) in posts.fields().iter().zip(&r.cells) {
        let v = match (f.data_type(), c) {
            (DataType::Date32, Cell::Int(d)) => {
                let date = chrono::NaiveDate::from_num_days_from_ce_opt(*d as i32 + 719_163).expect("a date");
                json!(date.format("%Y-%m-%d").to_string())
            }
            (_, Cell::Text(s)) => json!(s),
            (_, Cell::Int(v)) => json!(v),
            (_, Cell::Float(v)) => json!(v),
            (_, Cell::Bool(v)) => json!(v),
            (_, Cell::List(v)) => json!(v),
            (DataType::Struct(children), Cell::Struct(v)) => struct_json(children, v),
            (DataType::List(item), Cell::Objects(objects)) => {
                let DataType::Struct(children) = item.data_type() else {
                    panic!("{}: objects in a plain list", f.name())
                };
                Value::Array(objects.iter().map(|o| struct_json(children, o)).collect())
            }
            (_, Cell::Map(m)) => Value::Object(m.iter().map(|(k, v)| (k.clone(), json!(v))).collect()),
            (DataType::List(_), Cell::Null) => json!([]),
            (DataType::Map(..), Cell::Null) => json!({}),
            (_, Cell::Null) => Value::Null,
            (dt, c) => panic!("{}: cell {c:?} does not fit {dt}", f.name()),
        };
        out.insert(f.name().clone(), v);
    }
    out
}

// ---- golden -------------------------------------------------------------------------------------

#[test]
fn seed_page_extracts_to_the_expected_record() {
    let r = ok_bytes(SEED_PAGE);
    let got = to_json(&r);
    let Value::Object(want) = serde_json::from_str::<Value>(SEED_EXPECTED).unwrap() else { panic!("not an object") };
    assert!(want.len() >= 40, "expected json has {} keys", want.len());
    for (k, v) in &want {
        assert_eq!(got.get(k), Some(v), "column {k}");
    }
    assert_eq!(r.hash, "113b8413583934d18f4af6bc");
    assert_eq!(r.entries_valid, 20, "every known entry present and valid");
    assert_eq!(r.ids, vec![Some(21693), Some(21693), Some(21693)]);
    assert!(!r.has_issues);
}

/// The seed page with a BOM, CRLF line ends, tab and no-break-space indentation and trailing white
/// space on every line: the same record.
#[test]
fn seed_page_with_bom_crlf_tabs_nbsp_and_trailing_space_is_the_same_record() {
    let seed = std::str::from_utf8(SEED_PAGE).unwrap();
    let mut s = String::from("\u{feff}");
    for (n, line) in seed.lines().enumerate() {
        let line = match line.strip_prefix("  ") {
            Some(rest) => format!("\t\u{a0}{rest}"),
            None => line.to_string(),
        };
        s.push_str(&line);
        s.push_str(["  ", "\t", "\u{a0}", " \t\u{a0} "][n % 4]);
        s.push_str("\r\n");
    }
    let a = to_json(&ok_bytes(SEED_PAGE));
    let b = to_json(&ok(&s));
    for (k, v) in &a {
        assert_eq!(b.get(k), Some(v), "column {k}");
    }
}

// ---- title and article ----------------------------------------------------------------------------

#[test]
fn title_is_the_first_non_blank_line_trimmed_and_decoded() {
    let r = ok(&format!(
        "\n  \n\t\u{a0}\r\n&nbsp;&#160;\n  Fish &amp; Chips: what&#39;s next \t\r\n\nFirst para.\n\nalphanode post meta\nhash{HASH}\nSimilar Posts\n"
    ));
    assert_eq!(text(&r, "title").as_deref(), Some("Fish & Chips: what's next"));
    assert_eq!(text(&r, "body").as_deref(), Some("First para."));
    assert_eq!(list(&r, "headings"), Vec::<String>::new());
}

#[test]
fn a_title_that_reads_as_a_sentence_is_still_only_the_title() {
    let r =
        ok(&format!("The title ends here.\nA heading\nA paragraph.\nalphanode post meta\nhash{HASH}\nSimilar Posts"));
    assert_eq!(text(&r, "title").as_deref(), Some("The title ends here."));
    assert_eq!(text(&r, "body").as_deref(), Some("A paragraph."));
    assert_eq!(list(&r, "headings"), strs(&["A heading"]));
    assert_eq!(int(&r, "paragraph_count"), Some(1));
}

#[test]
fn paragraphs_and_headings_by_last_character() {
    // (line as written, what it becomes, true for a paragraph and false for a heading)
    let lines = [
        ("plain sentence.", "plain sentence.", true),
        ("an exclamation!", "an exclamation!", true),
        ("a question?", "a question?", true),
        ("trailing ellipsis…", "trailing ellipsis…", true),
        ("three dots...", "three dots...", true),
        ("he said \"go.\"", "he said \"go.\"", true),
        ("(see above.)", "(see above.)", true),
        ("it’s done.’", "it’s done.’", true),
        ("really?”", "really?”", true),
        ("wow!]", "wow!]", true),
        ("nested.\")]", "nested.\")]", true),
        ("decoded &hellip;", "decoded …", true),
        ("&quot;quoted.&quot;", "\"quoted.\"", true),
        ("ends with space.   \t", "ends with space.", true),
        ("a heading", "a heading", false),
        ("version 3.5 release", "version 3.5 release", false),
        ("what next?!x", "what next?!x", false),
        ("key: value", "key: value", false),
        ("a \"quoted\" heading", "a \"quoted\" heading", false),
        ("ends with a comma,", "ends with a comma,", false),
        ("ends with a colon:", "ends with a colon:", false),
        ("(bracketed)", "(bracketed)", false),
        ("&quot;decoded quote&quot;", "\"decoded quote\"", false),
    ];
    let article = lines.map(|(written, _, _)| written).join("\n\n");
    let r = ok(&page(&article, &format!("hash{HASH}")));
    let want = |para: bool| -> Vec<&str> { lines.iter().filter(|l| l.2 == para).map(|l| l.1).collect() };
    let body = text(&r, "body").unwrap();
    assert_eq!(body.split("\n\n").collect::<Vec<_>>(), want(true));
    assert_eq!(list(&r, "headings"), strs(&want(false)));
    assert_eq!(int(&r, "paragraph_count"), Some(14));
}

#[test]
fn image_lines_in_both_forms_are_neither_body_nor_heading() {
    let article = [
        "intro.",
        "caching with python visual reference 1",
        "caching with python visual reference 12. image source: unsplash",
        "Caching With Python Visual Reference 2. Image Source: Pexels &amp; co",
        "caching with python visual reference 3   \t",
        // Tabs and no-break spaces are ordinary white space, inside the fixed words too.
        "caching\u{a0}with python visual\treference 4",
        "caching with python visual\u{a0}reference 5. image source:\u{a0}unsplash",
        // Not the image form: text after N, or a sentence mentioning one.
        "see visual reference 1 below.",
        "visual reference one",
        "final.",
    ]
    .join("\n");
    let r = ok(&page(&article, &format!("hash{HASH}")));
    assert_eq!(text(&r, "body").as_deref(), Some("intro.\n\nsee visual reference 1 below.\n\nfinal."));
    assert_eq!(list(&r, "headings"), strs(&["visual reference one"]));
}

#[test]
fn article_bullets_are_not_body_headings_or_checklist() {
    let article = [
        "intro.",
        "implementation checklist",
        "• review query plans.",
        "- add indexes",
        "* test with data",
        "· compare metrics",
        "\t•\tindented with a tab",
        "\u{a0}\u{a0}-\u{a0}indented with no-break spaces.",
        "      *   deep",
        // Decoded before it is classified: a bullet written as a reference is a bullet too.
        "&bull; written as a reference",
        // Blank once decoded: not an empty heading.
        "&nbsp;",
        " &#160; &nbsp; ",
        "-5 degrees is cold.",
        "*emphasis* heading",
        "outro.",
    ]
    .join("\n");
    let r = ok(&page(&article, &format!("hash{HASH}")));
    assert_eq!(text(&r, "body").as_deref(), Some("intro.\n\n-5 degrees is cold.\n\noutro."));
    assert_eq!(list(&r, "headings"), strs(&["implementation checklist", "*emphasis* heading"]));
    assert_eq!(list(&r, "checklist"), Vec::<String>::new(), "checklist comes from the meta block only");
    assert!(matches!(r.cells[col("checklist")], Cell::Null), "missing list");
}

#[test]
fn body_is_paragraphs_joined_by_a_blank_line_with_word_and_paragraph_counts() {
    let article = "one two  three.\n\n\n\nA heading\nfour\tfive.\nsix&nbsp;seven —  eight.";
    let r = ok(&page(article, &format!("hash{HASH}")));
    assert_eq!(text(&r, "body").as_deref(), Some("one two  three.\n\nfour\tfive.\n\nsix\u{a0}seven —  eight."));
    // Words are runs of non-white-space (Unicode white space: the no-break space separates, `—` is a word).
    assert_eq!(int(&r, "word_count"), Some(9));
    assert_eq!(int(&r, "paragraph_count"), Some(3));
}

#[test]
fn a_page_without_paragraphs_has_null_body_and_zero_counts() {
    // Ambiguous: no paragraphs → body null (not ""), counts 0.
    let r = ok(&page("only a heading\n• and a bullet", &format!("hash{HASH}")));
    assert_eq!(text(&r, "body"), None);
    assert_eq!(int(&r, "word_count"), Some(0));
    assert_eq!(int(&r, "paragraph_count"), Some(0));
    assert_eq!(list(&r, "headings"), strs(&["only a heading"]));
}

#[test]
fn marker_lines_are_trimmed_and_case_insensitive() {
    let r = ok(&format!(
        "Title\n\nbody.\n  \u{a0}ALPHANODE   Post\tMETA \t\r\ntopicT\nhash{HASH}\n\t similar\u{a0}POSTS  \r\n  • other post\n"
    ));
    assert_eq!(text(&r, "topic").as_deref(), Some("T"));
    assert_eq!(text(&r, "body").as_deref(), Some("body."));
    assert_eq!(list(&r, "similar_posts"), strs(&["other post"]));
    assert_eq!(list(&r, "unparsed_meta"), Vec::<String>::new());
}

#[test]
fn marker_words_inside_a_line_are_not_markers() {
    let r = ok(&page("the alphanode post meta block.\nsimilar posts below", &format!("hash{HASH}")));
    assert_eq!(text(&r, "body").as_deref(), Some("the alphanode post meta block."));
    assert_eq!(list(&r, "headings"), strs(&["similar posts below"]));
}

#[test]
fn similar_posts_are_the_bullets_after_the_trailer() {
    let r = ok(&format!(
        "T\nbody.\nalphanode post meta\nhash{HASH}\nnotes\n• a note\nSimilar Posts\n\n  • caching: notes &amp; more 12\n- dash\n\n* star   \n\t· middle dot\r\n• &nbsp;\n\n"
    ));
    assert_eq!(list(&r, "similar_posts"), strs(&["caching: notes & more 12", "dash", "star", "middle dot"]));
    assert_eq!(list(&r, "notes"), strs(&["a note"]), "bullets before the trailer belong to the meta block");
}

#[test]
fn a_trailer_without_bullets_gives_an_empty_list() {
    let r = ok(&format!("T\nbody.\nalphanode post meta\nhash{HASH}\nSimilar Posts"));
    assert_eq!(list(&r, "similar_posts"), Vec::<String>::new());
}

// ---- text: BOM, CRLF, white space, references, UTF-8 -----------------------------------------------

#[test]
fn bom_and_crlf_are_not_text() {
    let r = ok(&format!("\u{feff}Title\r\n\r\nBody one.\r\n\r\nHeading\r\nalphanode post meta\r\ntopicX\r\nhash{HASH}\r\nauthor: bob\r\nSimilar Posts\r\n• s\r\n"));
    assert_eq!(text(&r, "title").as_deref(), Some("Title"));
    assert_eq!(text(&r, "body").as_deref(), Some("Body one."));
    assert_eq!(list(&r, "headings"), strs(&["Heading"]));
    assert_eq!(text(&r, "topic").as_deref(), Some("X"));
    assert_eq!(list(&r, "unparsed_meta"), strs(&["author: bob"]));
    assert_eq!(list(&r, "similar_posts"), strs(&["s"]));
}

#[test]
fn html_references_are_decoded_once_everywhere_but_unparsed_meta() {
    let meta = [
        "topicFish &amp; Chips &lt;3 &gt; &quot;x&quot; &apos;y&apos; it&#39;s it&#x27;s it&#X27;s",
        "summary&amp;lt; stays once; AT&T and ?w=1&q=80 &unknown; &#; &amp",
        "ai brief&nbsp;padded&nbsp;",
        "stack",
        "  • C&amp;C",
        "tags",
        "  • a&lt;b",
        "image sources",
        "  • source: un&amp;splash",
        "  • url: https://x.test/p?auto=format&fit=crop&amp;w=1",
        "  • caption: &#8220;cap&#8221;",
        "author: bob &amp; alice\t ",
        "canonicalhttps://a.test/?a=1&amp;b=2",
    ]
    .join("\n");
    let r = ok(&format!(
        "Q&amp;A &#x2014; part&nbsp;1\nA &lt;tag&gt; heading\nBody &amp;amp; more.\nalphanode post meta\n{meta}\nhash{HASH}\nSimilar Posts\n• more &amp; more\n"
    ));
    assert_eq!(text(&r, "title").as_deref(), Some("Q&A — part\u{a0}1"));
    assert_eq!(list(&r, "headings"), strs(&["A <tag> heading"]));
    assert_eq!(text(&r, "body").as_deref(), Some("Body &amp; more."));
    assert_eq!(text(&r, "topic").as_deref(), Some("Fish & Chips <3 > \"x\" 'y' it's it's it's"));
    assert_eq!(text(&r, "summary").as_deref(), Some("&lt; stays once; AT&T and ?w=1&q=80 &unknown; &#; &amp"));
    assert_eq!(text(&r, "ai_brief").as_deref(), Some("padded"), "a decoded no-break space is trimmed");
    assert_eq!(list(&r, "stack"), strs(&["C&C"]));
    assert_eq!(extra(&r), vec![("tags".to_string(), strs(&["a<b"]))]);
    assert_eq!(
        r.cells[col("image_sources")],
        Cell::Objects(vec![vec![
            Some("un&splash".into()),
            Some("https://x.test/p?auto=format&fit=crop&w=1".into()),
            Some("“cap”".into()),
        ]])
    );
    assert_eq!(list(&r, "similar_posts"), strs(&["more & more"]));
    assert_eq!(
        list(&r, "unparsed_meta"),
        strs(&["author: bob &amp; alice", "canonicalhttps://a.test/?a=1&amp;b=2"]),
        "verbatim, not decoded"
    );
}

#[test]
fn invalid_utf8_becomes_replacement_characters_and_one_issue() {
    let mut raw = b"T\xffitle\n\nbody \xfe\xfe here.\n\nalphanode post meta\ntopic\xc3(\nhash".to_vec();
    raw.extend_from_slice(HASH.as_bytes());
    raw.extend_from_slice(b"\nSimilar Posts\n");
    let r = ok_bytes(&raw);
    assert_eq!(text(&r, "title").as_deref(), Some("T\u{fffd}itle"));
    assert_eq!(text(&r, "body").as_deref(), Some("body \u{fffd}\u{fffd} here."));
    assert_eq!(text(&r, "topic").as_deref(), Some("\u{fffd}("));
    assert_eq!(list(&r, "issues"), strs(&[INVALID_UTF8]), "listed once");
    assert!(r.has_issues);
}

#[test]
fn valid_utf8_has_no_issue() {
    let r = ok(&page("naïve café — ok.", &format!("hash{HASH}")));
    assert_eq!(list(&r, "issues"), Vec::<String>::new());
    assert!(!r.has_issues);
}

// ---- meta entries -------------------------------------------------------------------------------------

#[test]
fn scalars_glued_or_with_colon_and_spaces_any_case_and_spacing() {
    let r = ok(&page(
        "Body.",
        &[
            "topicglued value",
            "Summary: with colon",
            "AI  Brief :  spaced   inside  ",
            "code\tlanguage:Python",
            "DIFFICULTY  Beginner",
            "reference\u{a0}anp-ref-000001-1",
            "Reading Time: 6",
            "view   count544,543",
            "Hash: ABCDEF0123456789",
        ]
        .join("\n"),
    ));
    assert_eq!(text(&r, "topic").as_deref(), Some("glued value"));
    assert_eq!(text(&r, "summary").as_deref(), Some("with colon"));
    assert_eq!(text(&r, "ai_brief").as_deref(), Some("spaced   inside"));
    assert_eq!(text(&r, "code_language").as_deref(), Some("python"), "lower-cased");
    assert_eq!(text(&r, "difficulty").as_deref(), Some("beginner"), "lower-cased");
    assert_eq!(text(&r, "reference").as_deref(), Some("anp-ref-000001-1"));
    assert_eq!(int(&r, "reading_time_min"), Some(6));
    assert_eq!(int(&r, "view_count"), Some(544543));
    assert_eq!(r.hash, "abcdef0123456789");
    assert_eq!(text(&r, "hash").as_deref(), Some("abcdef0123456789"));
    assert_eq!(list(&r, "unparsed_meta"), Vec::<String>::new());
    assert_eq!(r.entries_valid, 9);
}

#[test]
fn a_value_keeps_its_own_colons() {
    let r = with_meta("summary: part one: part two");
    assert_eq!(text(&r, "summary").as_deref(), Some("part one: part two"));
}

#[test]
fn a_key_without_white_space_between_its_words_is_not_the_key() {
    let r = with_meta("viewcount5\ncodelanguagepython");
    assert_eq!(int(&r, "view_count"), None);
    assert_eq!(text(&r, "code_language"), None);
    assert_eq!(list(&r, "unparsed_meta"), strs(&["viewcount5", "codelanguagepython"]));
}

#[test]
fn lists_with_every_bullet_style_and_indentation() {
    let r = with_meta(
        &[
            "Stack:",
            "• a",
            "  - b",
            "\t* c",
            "\u{a0}\u{a0}· d",
            "",
            "    •   e  \t",
            "TOOLS",
            "-\tx",
            "*\u{a0}y",
            "checklist",
            "  • one",
            "notes",
            "  • n &amp; m",
        ]
        .join("\n"),
    );
    assert_eq!(list(&r, "stack"), strs(&["a", "b", "c", "d", "e"]));
    assert_eq!(list(&r, "tools"), strs(&["x", "y"]));
    assert_eq!(list(&r, "checklist"), strs(&["one"]));
    assert_eq!(list(&r, "notes"), strs(&["n & m"]));
    assert_eq!(r.entries_valid, 5);
}

#[test]
fn ai_outline_is_a_struct_by_name() {
    let r =
        with_meta("ai outline\n  • Context: c1\n  • problem:p1\n  • STACK :  s1\n  • recommended   action: do: this\n");
    assert_eq!(
        r.cells[col("ai_outline")],
        Cell::Struct(vec![Some("c1".into()), Some("p1".into()), Some("s1".into()), Some("do: this".into())])
    );
    let partial = with_meta("ai outline\n  • problem: p\n");
    assert_eq!(partial.cells[col("ai_outline")], Cell::Struct(vec![None, Some("p".into()), None, None]));
}

#[test]
fn pairs_fill_their_columns() {
    let r = with_meta(
        &[
            "score",
            "  • quality: 95",
            "  • freshness: 58",
            "  • depth: 79",
            "  • clarity: 83",
            "revision",
            "  • status: Drafted",
            "  • version: 1.9.5",
            "  • last reviewed: 2024-11-09",
            "flags",
            "  • ai generated style: 1",
            "  • has images: yes",
            "  • image heavy: false",
            "  • needs human review: No",
            "payload",
            "  • source id: alphanode-021693",
            "  • generator: anp content synthesizer",
            "  • paragraphs: 5",
            "  • scenario: s",
            "  • seed: 21,693",
        ]
        .join("\n"),
    );
    assert_eq!(int(&r, "quality_score"), Some(95));
    assert_eq!(int(&r, "freshness_score"), Some(58));
    assert_eq!(int(&r, "depth_score"), Some(79));
    assert_eq!(int(&r, "clarity_score"), Some(83));
    assert_eq!(text(&r, "revision_status").as_deref(), Some("Drafted"));
    assert_eq!(text(&r, "revision_version").as_deref(), Some("1.9.5"));
    assert_eq!(int(&r, "last_reviewed"), date(2024, 11, 9));
    assert_eq!(flag(&r, "flag_ai_generated_style"), Some(true));
    assert_eq!(flag(&r, "flag_has_images"), Some(true));
    assert_eq!(flag(&r, "flag_image_heavy"), Some(false));
    assert_eq!(flag(&r, "flag_needs_human_review"), Some(false));
    assert_eq!(text(&r, "source_id").as_deref(), Some("alphanode-021693"));
    assert_eq!(text(&r, "generator").as_deref(), Some("anp content synthesizer"));
    assert_eq!(int(&r, "paragraphs_declared"), Some(5));
    assert_eq!(text(&r, "scenario").as_deref(), Some("s"));
    assert_eq!(int(&r, "seed"), Some(21693));
    assert_eq!(r.entries_valid, 5);
    assert_eq!(list(&r, "unparsed_meta"), Vec::<String>::new());
}

#[test]
fn objects_group_and_a_name_seen_again_starts_the_next_object() {
    let r = with_meta(
        &[
            "entities",
            "    • name: python services",
            "    • type: stack",
            "    • name: backend",
            "    • name: lonely",
            "    • type: area",
            "    • type: orphan type",
            "image sources",
            "  - source: unsplash",
            "  - url: https://images.unsplash.com/photo?auto=format&fit=crop&w=1200&q=80",
            "  - caption: first",
            "  - caption: second, no source",
        ]
        .join("\n"),
    );
    assert_eq!(
        r.cells[col("entities")],
        Cell::Objects(vec![
            vec![Some("python services".into()), Some("stack".into())],
            vec![Some("backend".into()), None],
            vec![Some("lonely".into()), Some("area".into())],
            vec![None, Some("orphan type".into())],
        ])
    );
    assert_eq!(
        r.cells[col("image_sources")],
        Cell::Objects(vec![
            vec![
                Some("unsplash".into()),
                Some("https://images.unsplash.com/photo?auto=format&fit=crop&w=1200&q=80".into()),
                Some("first".into()),
            ],
            vec![None, None, Some("second, no source".into())],
        ])
    );
    assert_eq!(r.entries_valid, 3);
}

#[test]
fn an_empty_object_value_is_null_and_still_starts_the_next_object_when_repeated() {
    // Ambiguous: `• caption:` with no value is a null caption (as an empty pair value is null), and
    // the name counts as seen, so a second `caption` starts the next object.
    let r = with_meta("image sources\n  • source: a\n  • caption:\n  • caption: &nbsp;\n  • url: u\n");
    assert_eq!(
        r.cells[col("image_sources")],
        Cell::Objects(vec![vec![Some("a".into()), None, None], vec![None, Some("u".into()), None]])
    );
}

#[test]
fn any_line_followed_by_bullets_is_a_list_header() {
    let r = with_meta(
        &[
            // A scalar key written as a list goes to extra_meta under the header text; topic stays null.
            "topic",
            "  • a",
            "  • b",
            // An unknown list; header keys are folded like every key (lower case, single spaces).
            "Hash  Tags:",
            "  • #x",
            "tags",
            "  • caching",
            "  • ops",
            // Even a line that would be a scalar, once bullets follow it.
            "difficultyhard",
            "  • z",
        ]
        .join("\n"),
    );
    assert_eq!(text(&r, "topic"), None);
    assert_eq!(text(&r, "difficulty"), None);
    assert_eq!(
        extra(&r),
        vec![
            ("topic".to_string(), strs(&["a", "b"])),
            ("hash tags".to_string(), strs(&["#x"])),
            ("tags".to_string(), strs(&["caching", "ops"])),
            ("difficultyhard".to_string(), strs(&["z"])),
        ]
    );
    assert_eq!(list(&r, "unparsed_meta"), Vec::<String>::new());
    assert_eq!(r.entries_valid, 1, "only the hash");
}

#[test]
fn a_list_header_may_be_separated_from_its_bullets_by_blank_lines() {
    // Ambiguous: blank lines between a header and its bullets (or between bullets) do not end the list.
    let r = with_meta("tools\n\n  • a\n\n  • b\n");
    assert_eq!(list(&r, "tools"), strs(&["a", "b"]));
}

#[test]
fn unknown_names_in_known_lists_go_to_extra_meta_under_list_dot_name() {
    let r = with_meta(
        &[
            "score",
            "  • quality: 90",
            "  • Originality: 70",
            "flags",
            "  • sponsored: 1",
            "payload",
            "  • shard: 7",
            "revision",
            "  • editor: ann &amp; bo",
            "ai outline",
            "  • audience: ops",
            "entities",
            "  • name: n",
            "  • weight: 3",
            "image sources",
            "  • license: cc",
        ]
        .join("\n"),
    );
    assert_eq!(int(&r, "quality_score"), Some(90));
    assert_eq!(
        extra(&r),
        vec![
            ("score.originality".to_string(), strs(&["70"])),
            ("flags.sponsored".to_string(), strs(&["1"])),
            ("payload.shard".to_string(), strs(&["7"])),
            ("revision.editor".to_string(), strs(&["ann & bo"])),
            ("ai outline.audience".to_string(), strs(&["ops"])),
            ("entities.weight".to_string(), strs(&["3"])),
            ("image sources.license".to_string(), strs(&["cc"])),
        ]
    );
    assert_eq!(r.cells[col("entities")], Cell::Objects(vec![vec![Some("n".into()), None]]));
    assert_eq!(r.cells[col("ai_outline")], Cell::Struct(vec![None; 4]), "present, no known name");
}

#[test]
fn lines_that_fit_nothing_go_to_unparsed_meta_verbatim() {
    let r = with_meta(
        &["author: bob  \t", "  canonicalhttps://alphanode.example/p/1?a=1&amp;b=2\u{a0}\r", "stack", "- item"]
            .join("\n"),
    );
    // `stack` is followed by a bullet, so it is a list; the two unknown lines stay as written
    // (leading white space kept, trailing removed, nothing decoded).
    assert_eq!(
        list(&r, "unparsed_meta"),
        strs(&["author: bob", "  canonicalhttps://alphanode.example/p/1?a=1&amp;b=2"])
    );
    assert_eq!(list(&r, "stack"), strs(&["item"]));
}

#[test]
fn bullets_without_a_header_and_a_known_list_key_without_bullets_are_unparsed() {
    // Bullets right after the meta marker have no header line (the marker is not one); a known list
    // key with no bullets is neither a list header nor a scalar key: both go to unparsed_meta.
    let r = ok(&page("Body.", &format!("  • stray item \nnotes\nhash{HASH}")));
    assert_eq!(list(&r, "unparsed_meta"), strs(&["  • stray item", "notes"]));
    assert_eq!(list(&r, "notes"), Vec::<String>::new());
}

#[test]
fn list_bullets_without_a_colon_in_a_pairs_list_are_unparsed() {
    // Ambiguous: a pairs/objects bullet without `name:` fits no entry, so it is kept in unparsed_meta.
    let r = with_meta("score\n  • quality: 80\n  • just text\n  • : 5");
    assert_eq!(int(&r, "quality_score"), Some(80));
    assert_eq!(list(&r, "unparsed_meta"), strs(&["  • just text", "  • : 5"]));
}

#[test]
fn a_key_seen_again_sends_the_repeat_to_unparsed_meta() {
    let r = with_meta(
        &[
            "topicfirst",
            "stack",
            "  • a",
            "score",
            "  • quality: 90",
            "  • quality: 10",
            "Topic: second  ",
            "STACK",
            "  • b  ",
            "score",
            "  • depth: 50",
            "tags",
            "  • t1",
            "tags",
            "  • t2",
            "entities",
            "  • name: e",
            "entities",
            "  • name: f",
        ]
        .join("\n"),
    );
    assert_eq!(text(&r, "topic").as_deref(), Some("first"));
    assert_eq!(list(&r, "stack"), strs(&["a"]));
    assert_eq!(int(&r, "quality_score"), Some(90));
    assert_eq!(int(&r, "depth_score"), None);
    assert_eq!(extra(&r), vec![("tags".to_string(), strs(&["t1"]))]);
    assert_eq!(r.cells[col("entities")], Cell::Objects(vec![vec![Some("e".into()), None]]));
    assert_eq!(
        list(&r, "unparsed_meta"),
        strs(&[
            "  • quality: 10",
            "Topic: second",
            "STACK",
            "  • b",
            "score",
            "  • depth: 50",
            "tags",
            "  • t2",
            "entities",
            "  • name: f",
        ])
    );
}

#[test]
fn a_line_starting_with_a_scalar_key_is_that_scalar_even_when_the_word_goes_on() {
    // Literal rule 2 (keys are glued to values, so `hashtags: x` starts with the key `hash`): after
    // the real hash it is a repeat and goes to unparsed_meta; before it, it would be an invalid hash.
    let r = ok(&page("Body.", &format!("hash{HASH}\nhashtags: a, b\ntopics: x")));
    assert_eq!(list(&r, "unparsed_meta"), strs(&["hashtags: a, b"]));
    assert_eq!(text(&r, "topic").as_deref(), Some("s: x"));
    assert_eq!(reject(&page("Body.", &format!("hashtags: a\nhash{HASH}")), true).reason, RejectReason::InvalidHash);
}

#[test]
fn a_second_hash_goes_to_unparsed_meta() {
    let r = ok(&page("Body.", &format!("hash{HASH}\nhash FFFFFFFFFFFFFFFF")));
    assert_eq!(r.hash, HASH);
    assert_eq!(list(&r, "unparsed_meta"), strs(&["hash FFFFFFFFFFFFFFFF"]));
}

#[test]
fn missing_entries_are_null_empty_or_null_struct_and_not_issues() {
    let r = ok(&page("Body.", &format!("hash{HASH}")));
    let j = to_json(&r);
    for c in [
        "topic",
        "summary",
        "ai_brief",
        "code_language",
        "difficulty",
        "reference",
        "reading_time_min",
        "view_count",
        "quality_score",
        "freshness_score",
        "depth_score",
        "clarity_score",
        "revision_status",
        "revision_version",
        "last_reviewed",
        "flag_ai_generated_style",
        "flag_has_images",
        "flag_image_heavy",
        "flag_needs_human_review",
        "source_id",
        "generator",
        "scenario",
        "paragraphs_declared",
        "seed",
        "ai_outline",
    ] {
        assert_eq!(j[c], Value::Null, "{c}");
    }
    for c in [
        "stack",
        "tools",
        "checklist",
        "notes",
        "similar_posts",
        "entities",
        "image_sources",
        "unparsed_meta",
        "issues",
    ] {
        assert_eq!(j[c], json!([]), "{c}");
    }
    assert_eq!(j["extra_meta"], json!({}));
    assert!(matches!(r.cells[col("ai_outline")], Cell::Null), "a missing ai outline is a null struct");
    assert_eq!(r.entries_valid, 1);
    assert_eq!(r.ids, vec![None, None, None]);
    assert!(!r.has_issues);
}

#[test]
fn an_empty_scalar_value_is_missing_not_an_issue() {
    // Ambiguous: `view count:` with nothing after it is treated as a missing entry (null, no issue).
    let r = with_meta("view count:\ntopic  ");
    assert_eq!(int(&r, "view_count"), None);
    assert_eq!(text(&r, "topic"), None);
    assert_eq!(list(&r, "issues"), Vec::<String>::new());
    assert_eq!(r.entries_valid, 1);
}

// ---- values -----------------------------------------------------------------------------------------

fn scores(q: &str, f: &str, d: &str, c: &str) -> Record<'static> {
    with_meta(&format!("score\n  • quality: {q}\n  • freshness: {f}\n  • depth: {d}\n  • clarity: {c}"))
}

fn score_cols(r: &Record) -> [Option<i64>; 4] {
    ["quality_score", "freshness_score", "depth_score", "clarity_score"].map(|c| int(r, c))
}

#[test]
fn scores_in_all_four_notations_mean_the_same() {
    let r = scores("95", "95/100", "95%", "0.95");
    assert_eq!(score_cols(&r), [Some(95); 4]);
    assert_eq!(list(&r, "issues"), Vec::<String>::new());
    assert_eq!(r.entries_valid, 2);
}

#[test]
fn score_fractions_and_rounding_half_up() {
    let r = scores("94.5", "0.945", "0.5", "1.5");
    assert_eq!(score_cols(&r), [Some(95), Some(95), Some(50), Some(2)]);
    // Ambiguous: `1.0` has a decimal point and is "between 0 and 1" inclusive, so it is a fraction: 100.
    let r = scores("1.0", "1", "0.0", "100.0");
    assert_eq!(score_cols(&r), [Some(100), Some(1), Some(0), Some(100)]);
    let r = scores("0.005", "99.5", "0.125", "12.49");
    assert_eq!(score_cols(&r), [Some(1), Some(100), Some(13), Some(12)]);
}

#[test]
fn scores_out_of_range_and_unparsable_are_null_with_issues() {
    let r = scores("101", "-5", "140/100", "high");
    assert_eq!(score_cols(&r), [None; 4]);
    assert_eq!(
        issues(&r),
        strs(&[
            "clarity_score:unparsable",
            "depth_score:out_of_range",
            "freshness_score:out_of_range",
            "quality_score:out_of_range",
        ])
    );
    assert!(r.has_issues);
    assert_eq!(r.entries_valid, 1, "a score list with a bad value is not a valid entry");
    let r = scores("9/10", "100.5", "n/a", "80");
    assert_eq!(score_cols(&r), [None, None, None, Some(80)]);
    assert_eq!(
        issues(&r),
        strs(&["depth_score:unparsable", "freshness_score:out_of_range", "quality_score:unparsable"])
    );
}

#[test]
fn dates_in_all_five_notations() {
    for d in
        ["2024-11-09", "2024/11/09", "09 Nov 2024", "Nov 9, 2024", "November 9, 2024", "9 nov 2024", "NOV 09, 2024"]
    {
        let r = with_meta(&format!("revision\n  • last reviewed: {d}"));
        assert_eq!(int(&r, "last_reviewed"), date(2024, 11, 9), "{d}");
        assert_eq!(list(&r, "issues"), Vec::<String>::new(), "{d}");
    }
}

#[test]
fn unparsable_dates_are_null_with_an_issue() {
    for d in ["2024-13-45", "yesterday", "20xx-01-01", "2023-02-29", "Nov 9 2024", "11/09/2024"] {
        let r = with_meta(&format!("revision\n  • status: ok\n  • last reviewed: {d}"));
        assert_eq!(int(&r, "last_reviewed"), None, "{d}");
        assert_eq!(text(&r, "revision_status").as_deref(), Some("ok"));
        assert_eq!(list(&r, "issues"), strs(&["last_reviewed:unparsable"]), "{d}");
    }
}

#[test]
fn integers_with_separators() {
    for (raw, want) in [("544543", 544543), ("1,234,567", 1234567), ("1_234", 1234), ("1 234 567", 1234567)] {
        let r = with_meta(&format!("view count{raw}"));
        assert_eq!(int(&r, "view_count"), Some(want), "{raw}");
    }
    let r = with_meta("reading time: 1,200\npayload\n  • paragraphs: 1_000\n  • seed: 21 693");
    assert_eq!(int(&r, "reading_time_min"), Some(1200));
    assert_eq!(int(&r, "paragraphs_declared"), Some(1000));
    assert_eq!(int(&r, "seed"), Some(21693));
}

#[test]
fn unparsable_integers_are_null_with_column_issues() {
    let r = with_meta("view countn/a\nreading time: six\npayload\n  • paragraphs: 5x\n  • seed: -3");
    assert_eq!(int(&r, "view_count"), None);
    assert_eq!(int(&r, "reading_time_min"), None);
    assert_eq!(int(&r, "paragraphs_declared"), None);
    assert_eq!(int(&r, "seed"), None);
    assert_eq!(
        issues(&r),
        strs(&[
            "paragraphs_declared:unparsable",
            "reading_time_min:unparsable",
            "seed:unparsable",
            "view_count:unparsable"
        ])
    );
    // Ambiguous: a number too large for its int32 column is unparsable, not wrapped.
    let r = with_meta("reading time 3000000000\nview count 3000000000");
    assert_eq!(int(&r, "reading_time_min"), None);
    assert_eq!(int(&r, "view_count"), Some(3_000_000_000));
    assert_eq!(list(&r, "issues"), strs(&["reading_time_min:unparsable"]));
}

#[test]
fn flags_in_every_notation() {
    for (t, f) in [("1", "0"), ("true", "false"), ("yes", "no"), ("TRUE", "False"), ("Yes", "NO")] {
        let r = with_meta(&format!(
            "flags\n  • ai generated style: {t}\n  • has images: {f}\n  • image heavy: {t}\n  • needs human review: {f}"
        ));
        assert_eq!(flag(&r, "flag_ai_generated_style"), Some(true), "{t}");
        assert_eq!(flag(&r, "flag_has_images"), Some(false), "{f}");
        assert_eq!(flag(&r, "flag_image_heavy"), Some(true), "{t}");
        assert_eq!(flag(&r, "flag_needs_human_review"), Some(false), "{f}");
    }
    // Ambiguous: the spec has no issue code for a bad flag: it is null, with no issue.
    let r = with_meta("flags\n  • has images: maybe");
    assert_eq!(flag(&r, "flag_has_images"), None);
    assert_eq!(list(&r, "issues"), Vec::<String>::new());
}

#[test]
fn hashes_are_16_to_64_hex_digits_stored_lower_case() {
    let (long_in, long_out, too_long) = ("aB".repeat(32), "ab".repeat(32), "a".repeat(65));
    for (h, want) in [
        ("ABCDEF0123456789", "abcdef0123456789"),
        (long_in.as_str(), long_out.as_str()),
        ("113b8413583934d18f4af6bc", "113b8413583934d18f4af6bc"),
    ] {
        let r = ok(&page("Body.", &format!("hash: {h}")));
        assert_eq!(r.hash, want);
        assert_eq!(text(&r, "hash").as_deref(), Some(want));
    }
    for h in ["abcdef012345678", too_long.as_str(), "0123456789abcdeg", "0123 4567 89ab cdef", "0x0123456789abcdef"] {
        let e = reject(&page("Body.", &format!("hash{h}")), true);
        assert_eq!(e.reason, RejectReason::InvalidHash, "{h}");
    }
}

// ---- rejects ----------------------------------------------------------------------------------------

#[test]
fn reject_reasons_and_codes() {
    let full = page("Body.", &format!("hash{HASH}"));
    assert_eq!(reject(&full, false).reason, RejectReason::Truncated);
    assert_eq!(reject("Title\n\nBody.\n\nSimilar Posts\n", true).reason, RejectReason::NoMeta);
    assert_eq!(reject(&page("Body.", "topicx\nstack\n  • a"), true).reason, RejectReason::MissingHash);
    assert_eq!(reject(&page("Body.", "hashnothex"), true).reason, RejectReason::InvalidHash);
    assert_eq!(
        [RejectReason::Truncated, RejectReason::NoMeta, RejectReason::MissingHash, RejectReason::InvalidHash]
            .map(RejectReason::code),
        ["truncated", "no_meta", "missing_hash", "invalid_hash"]
    );
}

#[test]
fn reject_precedence_truncated_then_no_meta_then_missing_then_invalid_hash() {
    // Truncated wins over everything, even a page with nothing else wrong or with no meta at all.
    assert_eq!(reject("Title\nBody.\n", false).reason, RejectReason::Truncated);
    assert_eq!(reject(&page("Body.", "hashnothex"), false).reason, RejectReason::Truncated);
    // No meta wins over a missing hash.
    assert_eq!(reject("Title\nBody.\nhash0123456789abcdef\nSimilar Posts", true).reason, RejectReason::NoMeta);
    // A meta marker after the trailer does not count.
    assert_eq!(
        reject(&format!("Title\nBody.\nSimilar Posts\nalphanode post meta\nhash{HASH}"), true).reason,
        RejectReason::NoMeta
    );
    // The first hash counts: an invalid first hash rejects even with a valid repeat.
    assert_eq!(reject(&page("Body.", &format!("hashzz\nhash{HASH}")), true).reason, RejectReason::InvalidHash);
    // A hash written as a list is not a hash.
    assert_eq!(reject(&page("Body.", &format!("hash\n  • {HASH}")), true).reason, RejectReason::MissingHash);
    // Ambiguous: a `hash` key with no value is treated as no hash at all.
    assert_eq!(reject(&page("Body.", "hash:  "), true).reason, RejectReason::MissingHash);
}

#[test]
fn a_page_with_only_a_meta_block_has_no_title() {
    let r = ok(&format!("alphanode post meta\nhash{HASH}\nSimilar Posts\n"));
    assert_eq!(text(&r, "title"), None);
    assert_eq!(text(&r, "body"), None);
}

// ---- issues, ids, completeness ---------------------------------------------------------------------

#[test]
fn issues_are_listed_once_each() {
    let mut raw = b"T\xff\n\xff body.\nalphanode post meta\nview count n/a\nview count also bad\nhash".to_vec();
    raw.extend_from_slice(HASH.as_bytes());
    raw.extend_from_slice(b"\nscore\n  \xe2\x80\xa2 quality: 200\n  \xe2\x80\xa2 quality: 300\nSimilar Posts\n");
    let r = ok_bytes(&raw);
    assert_eq!(issues(&r), strs(&[INVALID_UTF8, "quality_score:out_of_range", "view_count:unparsable"]));
    assert_eq!(list(&r, "issues").len(), 3);
    assert_eq!(list(&r, "unparsed_meta"), strs(&["view count also bad", "  • quality: 300"]));
}

#[test]
fn ids_are_the_first_integers_of_reference_source_id_and_seed() {
    let r = with_meta("referenceanp-ref-021693-6802\npayload\n  • source id: alphanode-021693\n  • seed: 21693");
    assert_eq!(r.ids, vec![Some(21693), Some(21693), Some(21693)]);
    let r = with_meta("referenceanp-ref-000042-1\npayload\n  • source id: alphanode-43\n  • seed: 1_000");
    assert_eq!(r.ids, vec![Some(42), Some(43), Some(1000)]);
    let r = with_meta("referencenone\npayload\n  • seed: abc");
    assert_eq!(r.ids, vec![None, None, None], "no number, missing, unparsable");
}

#[test]
fn entries_valid_counts_known_entries_present_with_a_valid_value() {
    let r = with_meta(
        &[
            "topicT",                            // valid
            "view countlots",                    // present, not valid
            "tags\n  • x",                       // unknown: not counted
            "stack\n  • a",                      // valid
            "revision\n  • last reviewed: soon", // present, not valid
            "flags\n  • has images: 1",          // valid
            "entities\n  • name: n",             // valid
            "ai outline\n  • problem: p",        // valid
            "payload\n  • shard: 1",             // only an unknown name: not valid
            "topicagain",                        // a repeat: not counted again
        ]
        .join("\n"),
    );
    // topic, stack, flags, entities, ai outline, hash
    assert_eq!(r.entries_valid, 6);
}

/// The fingerprint folds white space and letter case the same way on its ASCII fast path as on
/// the Unicode path.
#[test]
fn fingerprint_fast_path_matches_the_unicode_rule() {
    fn reference(title: &str, body: &str) -> String {
        let norm: Vec<String> = [title, body]
            .iter()
            .map(|part| part.split_whitespace().map(str::to_lowercase).collect::<Vec<_>>().join(" "))
            .collect();
        format!("{:032x}", xxhash_rust::xxh3::xxh3_128(norm.join("\0").as_bytes()))
    }
    for (t, b) in [
        ("Title", "Body  text.\n\nSecond\tparagraph\x0bhere."),
        ("  lead and trail  ", " x "),
        ("", ""),
        ("Café Ωmega", "ÜBER  naïve\u{a0}text"),
        ("a\0b", "c \0 d"),
    ] {
        assert_eq!(super::fingerprint(t, b), reference(t, b), "{t:?} / {b:?}");
    }
}

/// The fingerprint computed paragraph by paragraph while extracting is the fingerprint of the
/// title and the stored body, on the fast path (folded ASCII) and off it (capitals, tabs, Unicode).
#[test]
fn fingerprint_while_extracting_is_the_fingerprint_of_title_and_body() {
    for article in [
        "first paragraph here.\n\nsecond one, also plain.\n\na heading\n\nthird.",
        "First Paragraph.\n\n  Second\tparagraph  with   runs.\n\nÜber naïve text…",
        "only.",
    ] {
        let r = ok(&page(article, &format!("hash{HASH}")));
        let title = text(&r, "title").unwrap();
        let body = text(&r, "body").unwrap();
        assert_eq!(text(&r, "content_fingerprint").unwrap(), super::fingerprint(&title, &body), "{article:?}");
        let words = match &r.cells[col("word_count")] {
            Cell::Int(n) => *n as usize,
            other => panic!("word_count {other:?}"),
        };
        assert_eq!(words, body.split_whitespace().count(), "{article:?}");
    }
}

#[test]
fn values_borrow_from_the_page_unless_they_were_decoded() {
    use std::borrow::Cow;
    let text = format!(
        "Plain title\n\nA para.\n\nalphanode post meta\ntopic Fish &amp; chips\nhash{HASH}\nSimilar Posts\n• x\n"
    );
    let r = extract(pipeline(), text.as_bytes(), true).expect("imported");
    assert!(matches!(&r.cells[col("title")], Cell::Text(Cow::Borrowed("Plain title"))), "{:?}", r.cells[col("title")]);
    assert!(matches!(&r.cells[col("body")], Cell::Text(Cow::Borrowed("A para."))), "one paragraph is borrowed");
    assert!(matches!(&r.cells[col("topic")], Cell::Text(Cow::Owned(t)) if t == "Fish & chips"), "decoded: owned");
    // Invalid UTF-8: the record owns its text (it outlives the lossy copy of the page).
    let mut raw = text.into_bytes();
    raw[1] = 0xff;
    let r = extract(pipeline(), &raw, true).expect("imported");
    assert!(matches!(&r.cells[col("title")], Cell::Text(Cow::Owned(t)) if t == "P\u{fffd}ain title"));
}
