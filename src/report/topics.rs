//! `quality_composite` by topic for the box plot, computed by polars without holding the posts rows.
//!
//! Exact quartiles need every value of a group, and polars' streaming engine has no streaming
//! median: grouped by topic it holds all posts. So the engine counts, per distinct value, the posts
//! of each box (one count column per box) as the scan streams by, and the quartiles are read off
//! each box's running counts in value order (linear interpolation, as DuckDB's `quantile_cont` and
//! polars' `quantile`). The table has a row per distinct value: `quality_composite` is a weighted
//! mean of a few integer scores, so about two thousand rows where the posts are millions. Keyed by
//! the value alone (not by box and value) it stays within the streaming group-by's table of hot
//! keys (4096), past which polars keeps each row of a key it has no room for until the end.

use polars::prelude::{
    col, lit, when, DataFrame, DataType, Expr, IdxSize, IntoLazy, JoinArgs, JoinBuildSide, JoinType, LazyFrame,
    SortMultipleOptions,
};

use super::{floats, ints, texts, BoxStats, TOP_TOPICS};
use crate::error::Result;
use crate::query::Reader;

/// Posts per topic, most first (ties by name).
pub(super) const TOPICS: &str =
    "SELECT topic, count(*) AS n FROM posts WHERE topic IS NOT NULL GROUP BY topic ORDER BY n DESC, topic";

/// The statistics of a box, each a column `{stat}_{box}` of the one-row result of `box_stats`.
const STATS: [&str; 7] = ["n", "mean", "min", "q1", "median", "q3", "max"];

/// `quality_composite` by topic: the `TOP_TOPICS` topics with the most posts (ties by name), then
/// the other topics as one box, then posts without a topic; and the number of topics. A box whose
/// posts all lack the value has nothing to draw and is left out.
pub(super) fn topic_boxes(reader: &Reader) -> Result<(Vec<BoxStats>, usize)> {
    // One row per topic: their number, and the top ones to draw by name.
    let topics = reader.sql(TOPICS)?;
    let top = topics.head(Some(TOP_TOPICS));
    let mut labels = texts(&top, "topic")?;
    labels.push(format!("(other {} topics)", topics.height().saturating_sub(TOP_TOPICS)));
    labels.push("(no topic)".to_string());
    let stats = reader.run(box_stats(value_counts(reader.table("posts")?, top), labels.len()))?;

    let mut boxes = Vec::new();
    for (b, label) in labels.into_iter().enumerate() {
        let stat =
            |s: &str| floats(&stats, &format!("{s}_{b}")).map(|v| v.first().copied().flatten().unwrap_or(f64::NAN));
        let n = ints(&stats, &format!("n_{b}"))?.first().copied().unwrap_or(0);
        if n == 0 {
            continue;
        }
        boxes.push(BoxStats {
            label,
            n: usize::try_from(n).unwrap_or(0),
            min: stat("min")?,
            q1: stat("q1")?,
            median: stat("median")?,
            q3: stat("q3")?,
            max: stat("max")?,
            mean: stat("mean")?,
        });
    }
    Ok((boxes, topics.height()))
}

/// Per distinct value `q`, the posts of each box with that value (`c_0`, `c_1`, …), streamed from
/// the scan. `top` has the top topics in their order (`topic`, `n`); box `k` is the k-th of them,
/// then come the other topics and no topic.
fn value_counts(posts: LazyFrame, top: DataFrame) -> LazyFrame {
    let boxes = top.height() + 2;
    let (other, none) = (lit(top.height() as IdxSize), lit((top.height() + 1) as IdxSize));
    let top = top.lazy().select([col("topic")]).with_row_index("rank", None);
    // The top topics are the few rows the join holds; the posts stream past them.
    let args = JoinArgs::new(JoinType::Left).with_build_side(Some(JoinBuildSide::ForceRight));
    let in_box = when(col("topic").is_null()).then(none).when(col("rank").is_null()).then(other).otherwise(col("rank"));
    let counts =
        (0..boxes).map(|b| col("box").eq(lit(b as IdxSize)).cast(DataType::UInt64).sum().alias(format!("c_{b}")));
    posts
        .select([col("topic"), col("quality_composite").alias("q")])
        .filter(col("q").is_not_null())
        .join(top, [col("topic")], [col("topic")], args)
        .select([in_box.alias("box"), col("q")])
        .group_by([col("q")])
        .agg(counts.collect::<Vec<_>>())
}

/// Count, mean, min, quartiles and max of each of `boxes` boxes from the value counts, as one row.
fn box_stats(counts: LazyFrame, boxes: usize) -> LazyFrame {
    let mut stats = Vec::new();
    for b in 0..boxes {
        let c = col(format!("c_{b}"));
        let n = c.clone().sum().cast(DataType::Float64);
        // The value at 0-based rank r: the first, in value order, whose running count passes r.
        let at_rank = |r: Expr| col("q").filter(c.clone().cum_sum(false).gt(r)).first();
        let quantile = |p: f64| {
            let h = (n.clone() - lit(1.0)) * lit(p);
            let (lo, hi) = (at_rank(h.clone().floor()), at_rank(h.clone().ceil()));
            lo.clone() + (h.clone() - h.floor()) * (hi - lo)
        };
        let present = col("q").filter(c.clone().gt(lit(0)));
        let values = [
            c.clone().sum(),
            (col("q") * c.clone()).sum() / n.clone(),
            present.clone().min(),
            quantile(0.25),
            quantile(0.5),
            quantile(0.75),
            present.max(),
        ];
        stats.extend(values.into_iter().zip(STATS).map(|(v, s)| v.alias(format!("{s}_{b}"))));
    }
    counts.sort(["q"], SortMultipleOptions::default()).select(stats)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::query::engine::physical::Plan;
    use crate::report::testdata;

    /// The boxes as `BoxStats::of` draws them from all the values, grouped the way the report says.
    fn expected(posts: &[(Option<String>, Option<f64>)]) -> Vec<BoxStats> {
        let mut by_topic: BTreeMap<&str, (usize, Vec<f64>)> = BTreeMap::new();
        let mut no_topic = Vec::new();
        for (topic, value) in posts {
            match topic {
                Some(t) => {
                    let entry = by_topic.entry(t).or_default();
                    entry.0 += 1;
                    entry.1.extend(value);
                }
                None => no_topic.extend(value),
            }
        }
        let mut ranked: Vec<(&str, (usize, Vec<f64>))> = by_topic.into_iter().collect();
        ranked.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then(a.0.cmp(b.0)));
        let others = ranked.split_off(TOP_TOPICS);
        let mut other_values: Vec<f64> = others.iter().flat_map(|(_, (_, v))| v.clone()).collect();
        let mut boxes: Vec<BoxStats> =
            ranked.into_iter().filter_map(|(t, (_, mut v))| BoxStats::of(t.to_string(), &mut v)).collect();
        boxes.extend(BoxStats::of(format!("(other {} topics)", others.len()), &mut other_values));
        boxes.extend(BoxStats::of("(no topic)".into(), &mut no_topic));
        boxes
    }

    #[test]
    fn boxes_are_the_quartiles_of_every_value() {
        let posts = testdata::posts();
        let refs: Vec<(Option<&str>, Option<f64>)> = posts.iter().map(|(t, v)| (t.as_deref(), *v)).collect();
        let dir = testdata::warehouse(&refs);
        let (boxes, topics) = topic_boxes(&Reader::open(&dir.path().into()).unwrap()).unwrap();
        assert_eq!(topics, 20);
        let want = expected(&posts);
        let labels = |b: &[BoxStats]| b.iter().map(|b| b.label.clone()).collect::<Vec<_>>();
        assert_eq!(labels(&boxes), labels(&want));
        assert_eq!(boxes[TOP_TOPICS - 1].label, "t04", "a tie for the last place goes by name");
        for (got, want) in boxes.iter().zip(&want) {
            assert_eq!(got.n, want.n, "{}", want.label);
            let (g, w) = (
                [got.min, got.q1, got.median, got.q3, got.max, got.mean],
                [want.min, want.q1, want.median, want.q3, want.max, want.mean],
            );
            assert!(g.iter().zip(&w).all(|(a, b)| (a - b).abs() < 1e-12), "{}: {g:?} != {w:?}", want.label);
        }
    }

    #[test]
    fn no_engine_node_holds_the_posts_rows() {
        let dir = testdata::warehouse(&[(Some("a"), Some(0.5)), (None, Some(0.25))]);
        let reader = Reader::open(&dir.path().into()).unwrap();
        let top = reader.sql(TOPICS).unwrap().head(Some(TOP_TOPICS));
        let boxes = top.height() + 2;
        let plan = Plan::of(&box_stats(value_counts(reader.table("posts").unwrap(), top), boxes));
        assert_eq!(plan.holds_scanned_rows(), None, "{}", plan.dot());
        assert!(plan.kinds().contains(&"group-by"), "{}", plan.dot());
    }
}
