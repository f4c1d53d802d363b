//! `quarry report`: one self-contained HTML page (inline SVG, no script, no network) about a
//! warehouse, from finished runs only: runs over time, reject reasons, issue codes, score
//! distributions, `quality_composite` by topic and completeness, each chart with its numbers.
//!
//! The data comes through `query::Reader`: polars SQL over the same scans `quarry query` reads, run
//! on polars' streaming engine, each chart's numbers aggregated there as the files stream by (no
//! posts row is pulled into the report, and none is held by the engine: `topics`).

pub mod charts;
mod page;
#[cfg(test)]
mod testdata;
mod topics;

use std::path::Path;

use crate::contract::schema;
use crate::error::{Error, Result};
use polars::prelude::{DataFrame, DataType};

use crate::load::location::Location;
use crate::query::{self, Reader};
use charts::BoxStats;

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

/// A result column of the report's own queries that is missing or of another type.
fn column_error(col: &str) -> impl FnOnce(polars::prelude::PolarsError) -> Error + '_ {
    move |e| Error::Reader(format!("report: result column {col}: {e}").into())
}

/// A column as whole numbers (null as 0).
fn ints(df: &DataFrame, col: &str) -> Result<Vec<i64>> {
    let c = df.column(col).and_then(|c| c.cast(&DataType::Int64)).map_err(column_error(col))?;
    Ok(c.as_materialized_series().i64().map_err(column_error(col))?.iter().map(|v| v.unwrap_or(0)).collect())
}

/// A column as floats.
fn floats(df: &DataFrame, col: &str) -> Result<Vec<Option<f64>>> {
    let c = df.column(col).and_then(|c| c.cast(&DataType::Float64)).map_err(column_error(col))?;
    Ok(c.as_materialized_series().f64().map_err(column_error(col))?.iter().collect())
}

/// A column as text, as `quarry query --csv` prints it (null as empty).
fn texts(df: &DataFrame, col: &str) -> Result<Vec<String>> {
    Ok(query::texts(df, col)?.into_iter().map(Option::unwrap_or_default).collect())
}

/// The one number of a one-row result.
fn single(reader: &Reader, sql: &str) -> Result<i64> {
    Ok(ints(&reader.sql(sql)?, "n")?.first().copied().unwrap_or(0))
}

/// Counts per bin 0..bins from a (bin, n) result, bins outside counted in the end bins; nulls apart.
fn bins(df: &DataFrame, bins: usize) -> Result<(Vec<u64>, u64)> {
    let mut counts = vec![0u64; bins];
    let mut nulls = 0;
    for (bin, n) in floats(df, "bin")?.into_iter().zip(ints(df, "n")?) {
        let n = u64::try_from(n).unwrap_or(0);
        match bin {
            Some(b) => counts[(b.max(0.0) as usize).min(bins - 1)] += n,
            None => nulls += n,
        }
    }
    Ok((counts, nulls))
}

/// The runs in order: one row per run.
const RUNS: &str = "SELECT run_id, started_at, files, files_skipped, pages, imported, duplicates, rejected, issues, \
                    status FROM runs ORDER BY run_id";
const REJECT_REASONS: &str = "SELECT reason, count(*) AS n FROM rejects GROUP BY reason ORDER BY n DESC, reason";
const DUPLICATES: &str = "SELECT count(*) AS n FROM duplicates";
const POSTS: &str = "SELECT count(*) AS n FROM posts";
const COMPLETENESS_BINS: &str = "SELECT FLOOR(completeness * 10) AS bin, count(*) AS n FROM posts GROUP BY bin";
/// Posts per issue code: a code counts once per post, so each post's list is made unique first.
const ISSUE_CODES: &str = "SELECT code, count(*) AS n \
                           FROM (SELECT UNNEST(array_unique(issues)) AS code FROM posts WHERE array_length(issues) > 0) \
                           WHERE code IS NOT NULL GROUP BY code ORDER BY n DESC, code";

/// A score column's posts per bin of ten.
fn score_bins(score: &str) -> String {
    format!("SELECT FLOOR({score} / 10.0) AS bin, count(*) AS n FROM posts GROUP BY bin")
}

/// Reads what the report shows: every aggregate is computed by polars' streaming engine as it scans.
pub fn gather(warehouse: &Location) -> Result<ReportData> {
    let reader = Reader::open(warehouse)?;
    let mut d = ReportData::default();

    let runs = reader.sql(RUNS)?;
    let text = |c| texts(&runs, c);
    let (run_ids, started, status) = (text("run_id")?, text("started_at")?, text("status")?);
    let int = |c| ints(&runs, c);
    let (files, skipped, pages, imported) = (int("files")?, int("files_skipped")?, int("pages")?, int("imported")?);
    let (duplicates, rejected, issues) = (int("duplicates")?, int("rejected")?, int("issues")?);
    for (r, run_id) in run_ids.into_iter().enumerate() {
        d.runs.push(RunRow {
            run_id,
            started_at: started[r].clone(),
            files: files[r],
            files_skipped: skipped[r],
            pages: pages[r],
            imported: imported[r],
            duplicates: duplicates[r],
            rejected: rejected[r],
            issues: issues[r],
            status: status[r].clone(),
        });
    }

    let reasons = reader.sql(REJECT_REASONS)?;
    d.reject_reasons = texts(&reasons, "reason")?.into_iter().zip(ints(&reasons, "n")?).collect();
    d.duplicates = single(&reader, DUPLICATES)?;
    d.posts = usize::try_from(single(&reader, POSTS)?).unwrap_or(0);

    // Scores 0–100 in bins of ten (90–100 the last; out-of-range values in the end bins).
    for s in schema::SCORES.map(|s| format!("{s}_score")) {
        let (counts, nulls) = bins(&reader.sql(&score_bins(&s))?, 10)?;
        d.score_bins.push((s, counts, nulls));
    }
    d.completeness_bins = bins(&reader.sql(COMPLETENESS_BINS)?, 10)?;
    let codes = reader.sql(ISSUE_CODES)?;
    d.issue_codes = texts(&codes, "code")?.into_iter().zip(ints(&codes, "n")?).collect();

    (d.topics, d.topic_count) = topics::topic_boxes(&reader)?;
    Ok(d)
}

/// Writes the report; returns the number of charts.
pub fn write_html(warehouse: &Location, out: &Path) -> Result<usize> {
    let data = gather(warehouse)?;
    let (html, charts) = page::render(warehouse, &data);
    std::fs::write(out, html).map_err(Error::io(format!("{}: cannot write the report", out.display())))?;
    Ok(charts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::engine::physical::Plan;

    #[test]
    fn bins_and_labels() {
        let df = polars::df!("bin" => [Some(10.0), Some(0.0), Some(1.0), None, Some(-1.0)], "n" => [1i64, 2, 3, 4, 5])
            .unwrap();
        let (counts, nulls) = bins(&df, 10).unwrap();
        assert_eq!(counts, vec![7, 3, 0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(nulls, 4);
    }

    #[test]
    fn every_chart_query_aggregates_as_it_scans() {
        let dir = testdata::warehouse(&[(Some("a"), Some(0.5)), (None, None)]);
        let reader = Reader::open(&dir.path().into()).unwrap();
        let mut queries = vec![REJECT_REASONS, DUPLICATES, POSTS, COMPLETENESS_BINS, ISSUE_CODES, topics::TOPICS]
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>();
        queries.extend(schema::SCORES.map(|s| score_bins(&format!("{s}_score"))));
        for sql in queries {
            let plan = Plan::of(&reader.plan(&sql).unwrap());
            assert!(plan.kinds().iter().any(|k| k.starts_with("multi-scan")), "{sql}: {}", plan.dot());
            assert_eq!(plan.holds_scanned_rows(), None, "{sql}: {}", plan.dot());
        }
        // The runs table is one row per run, sorted as it is read.
        assert_eq!(Plan::of(&reader.plan(RUNS).unwrap()).holds_scanned_rows(), Some("sort"));
    }

    #[test]
    fn box_stats() {
        let b = BoxStats::of("t".into(), &mut [4.0, 1.0, 3.0, 2.0, 5.0]).unwrap();
        assert_eq!((b.min, b.q1, b.median, b.q3, b.max, b.mean), (1.0, 2.0, 3.0, 4.0, 5.0, 3.0));
    }
}
