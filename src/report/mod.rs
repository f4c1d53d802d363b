//! `quarry report`: one self-contained HTML page (inline SVG, no script, no network) about a
//! warehouse, from finished runs only: runs over time, reject reasons, issue codes, score
//! distributions, `quality_composite` by topic and completeness, each chart with its numbers.
//!
//! The data comes through `query::Reader` (polars SQL over the same files `quarry query` reads).

pub mod charts;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};

use crate::query::{Reader, ResultSet, Val};
use charts::{html_escape, BoxStats};

/// Topics drawn one by one in the box plot; the rest are drawn as one group.
pub const TOP_TOPICS: usize = 15;

/// One `runs` row as the report uses it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRow {
    pub run_id: String,
    pub started_at: String,
    pub files: i64,
    pub files_skipped: i64,
    pub pages: i64,
    pub imported: i64,
    pub duplicates: i64,
    pub rejected: i64,
    pub issues: i64,
    pub status: String,
}

/// What the report shows, gathered from the warehouse.
#[derive(Debug, Clone, Default)]
pub struct ReportData {
    pub runs: Vec<RunRow>,
    pub posts: usize,
    pub duplicates: i64,
    /// Reject reasons with counts, most frequent first.
    pub reject_reasons: Vec<(String, i64)>,
    /// Issue codes with counts of posts that have them, most frequent first.
    pub issue_codes: Vec<(String, i64)>,
    /// Per score (`quality_score`, …): counts in bins 0–9, 10–19, …, 90–100; and nulls.
    pub score_bins: Vec<(String, Vec<u64>, u64)>,
    /// `quality_composite` by topic: the most common topics, then the others as one group.
    pub topics: Vec<BoxStats>,
    /// Number of distinct topics.
    pub topic_count: usize,
    /// `completeness` in bins of 0.1 (the last includes 1.0); and nulls.
    pub completeness_bins: (Vec<u64>, u64),
}

fn text(rs: &ResultSet, col: &str, row: usize) -> String {
    match rs.value(col, row) {
        Val::Null => String::new(),
        v => v.text(),
    }
}

fn int(rs: &ResultSet, col: &str, row: usize) -> i64 {
    rs.value(col, row).as_i64().unwrap_or(0)
}

fn bin_of(v: f64, lo: f64, hi: f64, bins: usize) -> usize {
    let b = ((v - lo) / (hi - lo) * bins as f64).floor();
    (b.max(0.0) as usize).min(bins - 1)
}

/// Reads what the report shows.
pub fn gather(warehouse: &Path) -> Result<ReportData> {
    let reader = Reader::open(warehouse)?;
    let mut d = ReportData::default();

    let runs = reader.sql(
        "SELECT run_id, started_at, files, files_skipped, pages, imported, duplicates, rejected, issues, status \
         FROM runs ORDER BY run_id",
    )?;
    for r in 0..runs.rows() {
        d.runs.push(RunRow {
            run_id: text(&runs, "run_id", r),
            started_at: text(&runs, "started_at", r),
            files: int(&runs, "files", r),
            files_skipped: int(&runs, "files_skipped", r),
            pages: int(&runs, "pages", r),
            imported: int(&runs, "imported", r),
            duplicates: int(&runs, "duplicates", r),
            rejected: int(&runs, "rejected", r),
            issues: int(&runs, "issues", r),
            status: text(&runs, "status", r),
        });
    }

    let reasons = reader.sql("SELECT reason, count(*) AS n FROM rejects GROUP BY reason ORDER BY n DESC, reason")?;
    d.reject_reasons = (0..reasons.rows()).map(|r| (text(&reasons, "reason", r), int(&reasons, "n", r))).collect();

    let dups = reader.sql("SELECT count(*) AS n FROM duplicates")?;
    d.duplicates = if dups.rows() > 0 { int(&dups, "n", 0) } else { 0 };

    let posts = reader.sql(
        "SELECT topic, quality_composite, completeness, issues, \
         quality_score, freshness_score, depth_score, clarity_score FROM posts",
    )?;
    d.posts = posts.rows();
    let scores = ["quality_score", "freshness_score", "depth_score", "clarity_score"];
    let mut score_bins: Vec<(Vec<u64>, u64)> = vec![(vec![0; 10], 0); scores.len()];
    let mut comp = (vec![0u64; 10], 0u64);
    let mut codes: BTreeMap<String, i64> = BTreeMap::new();
    let mut by_topic: BTreeMap<Option<String>, Vec<f64>> = BTreeMap::new();
    let mut topic_posts: BTreeMap<Option<String>, usize> = BTreeMap::new();
    for r in 0..posts.rows() {
        for (k, s) in scores.iter().enumerate() {
            match posts.value(s, r).as_f64() {
                Some(v) => score_bins[k].0[bin_of(v, 0.0, 100.0, 10)] += 1,
                None => score_bins[k].1 += 1,
            }
        }
        match posts.value("completeness", r).as_f64() {
            Some(v) => comp.0[bin_of(v, 0.0, 1.0, 10)] += 1,
            None => comp.1 += 1,
        }
        if let Val::List(items) = posts.value("issues", r) {
            let mut seen: Vec<String> = items.iter().filter_map(|v| v.as_str().map(str::to_string)).collect();
            seen.sort();
            seen.dedup();
            for code in seen {
                *codes.entry(code).or_default() += 1;
            }
        }
        let topic = posts.value("topic", r).as_str().map(str::to_string);
        *topic_posts.entry(topic.clone()).or_default() += 1;
        if let Some(q) = posts.value("quality_composite", r).as_f64() {
            by_topic.entry(topic).or_default().push(q);
        }
    }
    d.score_bins = scores.iter().zip(score_bins).map(|(s, (b, nulls))| (s.to_string(), b, nulls)).collect();
    d.completeness_bins = comp;
    let mut codes: Vec<(String, i64)> = codes.into_iter().collect();
    codes.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    d.issue_codes = codes;

    d.topic_count = topic_posts.keys().filter(|t| t.is_some()).count();
    let mut ranked: Vec<(Option<String>, usize)> = topic_posts.into_iter().filter(|(t, _)| t.is_some()).collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut rest: Vec<f64> = Vec::new();
    for (i, (topic, _)) in ranked.iter().enumerate() {
        let mut values = by_topic.remove(topic).unwrap_or_default();
        if i < TOP_TOPICS {
            if let Some(b) = BoxStats::of(topic.clone().unwrap_or_default(), &mut values) {
                d.topics.push(b);
            }
        } else {
            rest.append(&mut values);
        }
    }
    let others = ranked.len().saturating_sub(TOP_TOPICS);
    if let Some(b) = BoxStats::of(format!("(other {others} topics)"), &mut rest) {
        d.topics.push(b);
    }
    if let Some(mut values) = by_topic.remove(&None) {
        if let Some(b) = BoxStats::of("(no topic)".into(), &mut values) {
            d.topics.push(b);
        }
    }
    Ok(d)
}

/// A run's start as `MM-DD HH:MM` from its id (`20261126T141805.331773Z`), else the id.
fn run_label(id: &str) -> String {
    let b = id.as_bytes();
    if b.len() >= 13 && b[8] == b'T' {
        format!("{}-{} {}:{}", &id[4..6], &id[6..8], &id[9..11], &id[11..13])
    } else {
        id.to_string()
    }
}

fn bin_labels_scores() -> Vec<String> {
    (0..10).map(|i| if i == 9 { "90–100".into() } else { format!("{}–{}", i * 10, i * 10 + 9) }).collect()
}

fn bin_labels_unit() -> Vec<String> {
    (0..10).map(|i| format!("{:.1}–{:.1}", i as f64 / 10.0, (i + 1) as f64 / 10.0)).collect()
}

fn table(out: &mut String, header: &[&str], rows: &[Vec<String>]) {
    out.push_str("<table><thead><tr>");
    for h in header {
        let _ = write!(out, "<th>{}</th>", html_escape(h));
    }
    out.push_str("</tr></thead><tbody>");
    for r in rows {
        out.push_str("<tr>");
        for (i, c) in r.iter().enumerate() {
            let class = if i > 0 { " class=\"num\"" } else { "" };
            let _ = write!(out, "<td{class}>{}</td>", html_escape(c));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
}

/// A chart with its numbers: beside it, or below it when the table is `wide`.
fn section(out: &mut String, id: &str, title: &str, chart: &str, numbers: &str, wide: bool) {
    let layout = if wide { "pair wide" } else { "pair" };
    let _ = writeln!(
        out,
        "<section id=\"{id}\"><h2>{}</h2><div class=\"{layout}\"><div class=\"chart\">{chart}</div>\
         <div class=\"numbers\">{numbers}</div></div></section>",
        html_escape(title)
    );
}

/// The HTML page and the number of charts in it.
pub fn render(warehouse: &Path, d: &ReportData) -> (String, usize) {
    let mut body = String::new();
    let mut charts = 0;
    let total_pages: i64 = d.runs.iter().map(|r| r.pages).sum();
    let total_rejected: i64 = d.reject_reasons.iter().map(|(_, n)| n).sum();
    let _ = writeln!(
        body,
        "<p class=\"summary\">{} finished runs · {} pages read · <b>{}</b> posts · {} duplicates · {} rejected · \
         {} topics</p>",
        d.runs.len(),
        total_pages,
        d.posts,
        d.duplicates,
        total_rejected,
        d.topic_count
    );

    // Runs over time.
    let labels: Vec<String> =
        d.runs.iter().enumerate().map(|(i, r)| format!("#{} {}", i + 1, run_label(&r.run_id))).collect();
    let series: Vec<(&str, Vec<f64>)> = vec![
        ("pages", d.runs.iter().map(|r| r.pages as f64).collect()),
        ("imported", d.runs.iter().map(|r| r.imported as f64).collect()),
        ("duplicates", d.runs.iter().map(|r| r.duplicates as f64).collect()),
        ("rejected", d.runs.iter().map(|r| r.rejected as f64).collect()),
    ];
    let chart = charts::runs_lines("Runs over time", &labels, &series);
    let mut numbers = String::new();
    let rows: Vec<Vec<String>> = d
        .runs
        .iter()
        .map(|r| {
            vec![
                r.run_id.clone(),
                format!("{} (+{} skipped)", r.files, r.files_skipped),
                r.pages.to_string(),
                r.imported.to_string(),
                r.duplicates.to_string(),
                r.rejected.to_string(),
                r.status.clone(),
            ]
        })
        .collect();
    table(&mut numbers, &["run", "files", "pages", "imported", "duplicates", "rejected", "status"], &rows);
    section(&mut body, "runs", "Runs over time", &chart, &numbers, true);
    charts += 1;

    // Reject reasons.
    let items: Vec<(String, f64)> = d.reject_reasons.iter().map(|(r, n)| (r.clone(), *n as f64)).collect();
    let chart = charts::hbars("Reject reasons", "rejected pages", &items, charts::PALETTE[3]);
    let mut numbers = String::new();
    let rows: Vec<Vec<String>> = d.reject_reasons.iter().map(|(r, n)| vec![r.clone(), n.to_string()]).collect();
    table(&mut numbers, &["reason", "pages"], &rows);
    section(&mut body, "rejects", "Reject reasons", &chart, &numbers, false);
    charts += 1;

    // Issue codes.
    let items: Vec<(String, f64)> = d.issue_codes.iter().map(|(c, n)| (c.clone(), *n as f64)).collect();
    let chart = charts::hbars("Issue codes", "posts with the issue", &items, charts::PALETTE[2]);
    let mut numbers = String::new();
    let rows: Vec<Vec<String>> = d.issue_codes.iter().map(|(c, n)| vec![c.clone(), n.to_string()]).collect();
    table(&mut numbers, &["issue", "posts"], &rows);
    section(&mut body, "issues", "Issue codes", &chart, &numbers, false);
    charts += 1;

    // Score distributions.
    let bins = bin_labels_scores();
    let series: Vec<(&str, Vec<u64>)> = d.score_bins.iter().map(|(s, b, _)| (s.as_str(), b.clone())).collect();
    let chart = charts::histograms("Score distributions (posts per bin)", &bins, &series, 2);
    let mut numbers = String::new();
    let mut header: Vec<&str> = vec!["bin"];
    header.extend(d.score_bins.iter().map(|(s, _, _)| s.as_str()));
    let mut rows: Vec<Vec<String>> = bins
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let mut row = vec![b.clone()];
            row.extend(d.score_bins.iter().map(|(_, c, _)| c[i].to_string()));
            row
        })
        .collect();
    let mut nulls = vec!["null".to_string()];
    nulls.extend(d.score_bins.iter().map(|(_, _, n)| n.to_string()));
    rows.push(nulls);
    table(&mut numbers, &header, &rows);
    section(&mut body, "scores", "Score distributions", &chart, &numbers, true);
    charts += 1;

    // quality_composite by topic.
    let title =
        format!("quality_composite by topic (top {} of {} topics)", TOP_TOPICS.min(d.topic_count), d.topic_count);
    let chart = charts::boxes(&title, "quality_composite (box: quartiles, bar: median, dot: mean)", &d.topics);
    let mut numbers = String::new();
    let rows: Vec<Vec<String>> = d
        .topics
        .iter()
        .map(|t| {
            vec![
                t.label.clone(),
                t.n.to_string(),
                format!("{:.3}", t.mean),
                format!("{:.3}", t.median),
                format!("{:.3}", t.min),
                format!("{:.3}", t.max),
            ]
        })
        .collect();
    table(&mut numbers, &["topic", "posts", "mean", "median", "min", "max"], &rows);
    section(&mut body, "topics", "quality_composite by topic", &chart, &numbers, true);
    charts += 1;

    // Completeness.
    let bins = bin_labels_unit();
    let series = vec![("completeness", d.completeness_bins.0.clone())];
    let chart = charts::histograms("Completeness (posts per bin)", &bins, &series, 1);
    let mut numbers = String::new();
    let mut rows: Vec<Vec<String>> =
        bins.iter().zip(&d.completeness_bins.0).map(|(b, c)| vec![b.clone(), c.to_string()]).collect();
    rows.push(vec!["null".into(), d.completeness_bins.1.to_string()]);
    table(&mut numbers, &["completeness", "posts"], &rows);
    section(&mut body, "completeness", "Completeness", &chart, &numbers, false);
    charts += 1;

    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>quarry report: {title}</title><style>{CSS}</style></head>\n<body><h1>quarry report: {title}</h1>\n{body}\
         <footer>Generated by quarry {version} from finished runs only.</footer></body></html>\n",
        title = html_escape(&warehouse.display().to_string()),
        version = env!("CARGO_PKG_VERSION"),
    );
    (html, charts)
}

const CSS: &str = "body{font-family:sans-serif;margin:24px;color:#222;background:#fafafa}\
h1{font-size:24px;margin:0 0 8px}h2{font-size:18px;margin:0 0 8px}\
section{background:#fff;border:1px solid #ddd;border-radius:6px;padding:16px;margin:16px 0}\
.pair{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}.wide{flex-direction:column}.chart{flex:0 1 820px;min-width:0}\
.chart svg{max-width:100%;height:auto}.numbers{flex:1 1 280px;max-height:480px;overflow:auto}.wide .chart{flex:none;width:100%;max-width:900px}.wide .numbers{flex:none;max-height:none}\
table{border-collapse:collapse;font-size:12px}th,td{border-bottom:1px solid #eee;padding:3px 8px;text-align:left;white-space:nowrap}\
td.num{text-align:right;font-variant-numeric:tabular-nums}.summary{font-size:15px}footer{color:#777;font-size:12px}";

/// Writes the report; returns the number of charts.
pub fn write_html(warehouse: &Path, out: &Path) -> Result<usize> {
    let data = gather(warehouse)?;
    let (html, charts) = render(warehouse, &data);
    std::fs::write(out, html).with_context(|| format!("{}: cannot write the report", out.display()))?;
    Ok(charts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_and_labels() {
        assert_eq!(bin_of(100.0, 0.0, 100.0, 10), 9);
        assert_eq!(bin_of(0.0, 0.0, 100.0, 10), 0);
        assert_eq!(bin_of(19.0, 0.0, 100.0, 10), 1);
        assert_eq!(bin_of(1.0, 0.0, 1.0, 10), 9);
        assert_eq!(run_label("20261126T141805.331773Z"), "11-26 14:18");
    }

    #[test]
    fn box_stats() {
        let b = BoxStats::of("t".into(), &mut [4.0, 1.0, 3.0, 2.0, 5.0]).unwrap();
        assert_eq!((b.min, b.q1, b.median, b.q3, b.max, b.mean), (1.0, 2.0, 3.0, 4.0, 5.0, 3.0));
    }
}
