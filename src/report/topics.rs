//! `quality_composite` by topic for the box plot, computed by polars without holding the posts rows.
//!
//! Exact quartiles need every value of a group, and polars' streaming engine has no streaming
//! median: grouped by topic it would hold all posts. So the engine counts each distinct
//! (group, value) pair as the scan streams by, and the quartiles are read off each group's running
//! counts over that frequency table (linear interpolation, as DuckDB's `quantile_cont` and polars'
//! `quantile`). Its size follows the distinct values per group: `quality_composite` is a weighted
//! mean of a few integer scores, so thousands of rows where the posts are millions.

use polars::prelude::{
    col, len, lit, when, DataFrame, DataType, Expr, IntoLazy, JoinArgs, JoinBuildSide, JoinType, LazyFrame,
    SortMultipleOptions,
};

use super::{floats, ints, texts, BoxStats, TOP_TOPICS};
use crate::error::Result;
use crate::query::Reader;

/// Box plot groups: one of the top topics (kept by name), another topic, no topic.
const GROUP_TOP: i32 = 0;
const GROUP_OTHER: i32 = 1;
const GROUP_NONE: i32 = 2;

/// Posts per topic, most first (ties by name).
pub(super) const TOPICS: &str =
    "SELECT topic, count(*) AS n FROM posts WHERE topic IS NOT NULL GROUP BY topic ORDER BY n DESC, topic";

/// `quality_composite` by topic: the `TOP_TOPICS` topics with the most posts (ties by name), then
/// the other topics as one group, then posts without a topic; and the number of topics.
pub(super) fn topic_boxes(reader: &Reader) -> Result<(Vec<BoxStats>, usize)> {
    // One row per topic: their number, and the top ones to draw by name.
    let topics = reader.sql(TOPICS)?;
    let top = topics.head(Some(TOP_TOPICS));
    let stats = reader.run(box_stats(value_counts(reader.table("posts")?, top)))?;

    let others = topics.height().saturating_sub(TOP_TOPICS);
    let (groups, labels, n) = (ints(&stats, "grp")?, texts(&stats, "topic")?, ints(&stats, "n")?);
    let float = |c| floats(&stats, c);
    let (mean, min, max) = (float("mean")?, float("min")?, float("max")?);
    let (q1, median, q3) = (float("q1")?, float("median")?, float("q3")?);
    let mut boxes = Vec::new();
    for r in 0..stats.height() {
        let label = match i32::try_from(groups[r]) {
            Ok(GROUP_TOP) => labels[r].clone(),
            Ok(GROUP_OTHER) => format!("(other {others} topics)"),
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
    Ok((boxes, topics.height()))
}

/// Posts with a value, counted per (group, topic of the group, value): streamed from the scan.
/// `top` has the top topics with their post counts (`topic`, `n`).
fn value_counts(posts: LazyFrame, top: DataFrame) -> LazyFrame {
    let top = top.lazy().select([col("topic"), col("n").alias("posts")]);
    // The top topics are the few rows the join holds; the posts stream past them.
    let args = JoinArgs::new(JoinType::Left).with_build_side(Some(JoinBuildSide::ForceRight));
    let ranked = posts.select([col("topic"), col("quality_composite").alias("q")]).filter(col("q").is_not_null()).join(
        top,
        [col("topic")],
        [col("topic")],
        args,
    );
    let group = when(col("topic").is_null())
        .then(lit(GROUP_NONE))
        .when(col("posts").is_null())
        .then(lit(GROUP_OTHER))
        .otherwise(lit(GROUP_TOP));
    let label =
        when(col("posts").is_null()).then(lit(polars::prelude::NULL).cast(DataType::String)).otherwise(col("topic"));
    ranked
        .select([group.alias("grp"), label.alias("topic"), col("posts"), col("q")])
        .group_by([col("grp"), col("topic"), col("posts"), col("q")])
        .agg([len().alias("c")])
}

/// Count, mean, min, quartiles and max per group from the value counts (`c` posts of value `q`).
fn box_stats(counts: LazyFrame) -> LazyFrame {
    let by_value = SortMultipleOptions::default();
    let n = col("c").sum().cast(DataType::Float64);
    // The value at 0-based rank r of the group: the first, in value order, whose running count passes r.
    let at_rank = |r: Expr| {
        let running = col("c").sort_by([col("q")], by_value.clone()).cum_sum(false);
        col("q").sort_by([col("q")], by_value.clone()).filter(running.gt(r)).first()
    };
    let quantile = |p: f64| {
        let h = (n.clone() - lit(1.0)) * lit(p);
        let (lo, hi) = (at_rank(h.clone().floor()), at_rank(h.clone().ceil()));
        lo.clone() + (h.clone() - h.floor()) * (hi - lo)
    };
    counts
        .group_by([col("grp"), col("topic")])
        .agg([
            col("c").sum().alias("n"),
            ((col("q") * col("c")).sum() / n.clone()).alias("mean"),
            col("q").min().alias("min"),
            col("q").max().alias("max"),
            quantile(0.25).alias("q1"),
            quantile(0.5).alias("median"),
            quantile(0.75).alias("q3"),
            col("posts").first().alias("posts"),
        ])
        .sort(
            ["grp", "posts", "topic"],
            SortMultipleOptions::default().with_order_descending_multi([false, true, false]),
        )
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
        let (boxes, topics) = topic_boxes(&Reader::open(dir.path()).unwrap()).unwrap();
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
        let reader = Reader::open(dir.path()).unwrap();
        let top = reader.sql(TOPICS).unwrap().head(Some(TOP_TOPICS));
        let plan = Plan::of(&box_stats(value_counts(reader.table("posts").unwrap(), top)));
        assert_eq!(plan.holds_scanned_rows(), None, "{}", plan.dot());
        assert!(plan.kinds().contains(&"group-by"), "{}", plan.dot());
    }
}
