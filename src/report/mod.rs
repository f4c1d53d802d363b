//! `quarry report`: one self-contained HTML page (inline SVG, no script, no network) about a
//! warehouse, from finished runs only: runs over time, reject reasons, issue codes, score
//! distributions, `quality_composite` by topic and completeness, each chart with its numbers.
//!
//! The data comes through `query::Reader`: polars SQL over the same scans `quarry query` reads, each
//! chart's numbers aggregated by polars (no posts row is pulled into the report).

pub mod charts;
mod page;

use std::path::Path;

use crate::contract::schema;
use crate::error::{Error, Result};
use polars::prelude::{DataFrame, DataType};

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

/// Reads what the report shows: every aggregate is computed by polars over the lazy scans.
pub fn gather(warehouse: &Path) -> Result<ReportData> {
    let reader = Reader::open(warehouse)?;
    let mut d = ReportData::default();

    let runs = reader.sql(
        "SELECT run_id, started_at, files, files_skipped, pages, imported, duplicates, rejected, issues, status \
         FROM runs ORDER BY run_id",
    )?;
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

    let reasons = reader.sql("SELECT reason, count(*) AS n FROM rejects GROUP BY reason ORDER BY n DESC, reason")?;
    d.reject_reasons = texts(&reasons, "reason")?.into_iter().zip(ints(&reasons, "n")?).collect();
    d.duplicates = single(&reader, "SELECT count(*) AS n FROM duplicates")?;
    d.posts = usize::try_from(single(&reader, "SELECT count(*) AS n FROM posts")?).unwrap_or(0);

    // Scores 0–100 in bins of ten (90–100 the last; out-of-range values in the end bins).
    for s in schema::SCORES.map(|s| format!("{s}_score")) {
        let sql = format!("SELECT FLOOR({s} / 10.0) AS bin, count(*) AS n FROM posts GROUP BY bin");
        let (counts, nulls) = bins(&reader.sql(&sql)?, 10)?;
        d.score_bins.push((s, counts, nulls));
    }
    let sql = "SELECT FLOOR(completeness * 10) AS bin, count(*) AS n FROM posts GROUP BY bin";
    d.completeness_bins = bins(&reader.sql(sql)?, 10)?;

    // Posts per issue code: a code counts once per post (hash is unique in posts).
    let codes = reader.sql(
        "SELECT code, count(*) AS n \
         FROM (SELECT DISTINCT hash, UNNEST(issues) AS code FROM posts WHERE array_length(issues) > 0) \
         WHERE code IS NOT NULL GROUP BY code ORDER BY n DESC, code",
    )?;
    d.issue_codes = texts(&codes, "code")?.into_iter().zip(ints(&codes, "n")?).collect();

    (d.topics, d.topic_count) = topic_boxes(&reader)?;
    Ok(d)
}

/// `quality_composite` by topic: the `TOP_TOPICS` topics with the most posts (ties by name), then
/// the other topics as one group, then posts without a topic; and the number of topics.
fn topic_boxes(reader: &Reader) -> Result<(Vec<BoxStats>, usize)> {
    let topic_count = usize::try_from(single(reader, "SELECT count(DISTINCT topic) AS n FROM posts")?).unwrap_or(0);
    // Group 0: one of the top topics (kept by name); 1: another topic; 2: no topic.
    let stats = reader.sql(&format!(
        "SELECT grp, topic, count(q) AS n, avg(q) AS mean, min(q) AS min, max(q) AS max, \
         quantile_cont(q, 0.25) AS q1, median(q) AS median, quantile_cont(q, 0.75) AS q3, max(posts) AS posts \
         FROM (SELECT CASE WHEN p.topic IS NULL THEN 2 WHEN t.topic IS NULL THEN 1 ELSE 0 END AS grp, \
                      CASE WHEN t.topic IS NULL THEN NULL ELSE p.topic END AS topic, \
                      t.n AS posts, p.quality_composite AS q \
               FROM posts p LEFT JOIN (SELECT topic, count(*) AS n FROM posts WHERE topic IS NOT NULL \
                                       GROUP BY topic ORDER BY n DESC, topic LIMIT {TOP_TOPICS}) t \
               ON p.topic = t.topic) \
         GROUP BY grp, topic ORDER BY grp, posts DESC, topic"
    ))?;
    let others = topic_count.saturating_sub(TOP_TOPICS);
    let (groups, topics, n) = (ints(&stats, "grp")?, texts(&stats, "topic")?, ints(&stats, "n")?);
    let float = |c| floats(&stats, c);
    let (mean, min, max) = (float("mean")?, float("min")?, float("max")?);
    let (q1, median, q3) = (float("q1")?, float("median")?, float("q3")?);
    let mut boxes = Vec::new();
    for r in 0..stats.height() {
        // A group whose posts all lack the value has nothing to draw.
        if n[r] == 0 {
            continue;
        }
        let label = match groups[r] {
            0 => topics[r].clone(),
            1 => format!("(other {others} topics)"),
            _ => "(no topic)".to_string(),
        };
        let at = |c: &[Option<f64>]| c.get(r).copied().flatten().unwrap_or(f64::NAN);
        boxes.push(BoxStats {
            label,
            n: usize::try_from(n[r]).unwrap_or(0),
            min: at(&min),
            q1: at(&q1),
            median: at(&median),
            q3: at(&q3),
            max: at(&max),
            mean: at(&mean),
        });
    }
    Ok((boxes, topic_count))
}

/// Writes the report; returns the number of charts.
pub fn write_html(warehouse: &Path, out: &Path) -> Result<usize> {
    let data = gather(warehouse)?;
    let (html, charts) = page::render(warehouse, &data);
    std::fs::write(out, html).map_err(Error::io(format!("{}: cannot write the report", out.display())))?;
    Ok(charts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_and_labels() {
        let df = polars::df!("bin" => [Some(10.0), Some(0.0), Some(1.0), None, Some(-1.0)], "n" => [1i64, 2, 3, 4, 5])
            .unwrap();
        let (counts, nulls) = bins(&df, 10).unwrap();
        assert_eq!(counts, vec![7, 3, 0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(nulls, 4);
    }

    #[test]
    fn box_stats() {
        let b = BoxStats::of("t".into(), &mut [4.0, 1.0, 3.0, 2.0, 5.0]).unwrap();
        assert_eq!((b.min, b.q1, b.median, b.q3, b.max, b.mean), (1.0, 2.0, 3.0, 4.0, 5.0, 3.0));
    }
}
