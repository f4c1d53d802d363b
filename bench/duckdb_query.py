#!/usr/bin/env python3
"""DuckDB over a quarry warehouse's Parquet files, for the readers rows of the bench's scale section.

    python duckdb_query.py --warehouse WH --sql "SELECT difficulty, count(*) FROM posts GROUP BY difficulty"
    python duckdb_query.py --warehouse WH --report

The tables are views over `read_parquet('<WH>/<table>/**/*.parquet', hive_partitioning = true)` (the
glob of shared/spec/warehouse.md). `--sql` prints the result as CSV; `--report` runs the aggregations
`quarry report` draws (the statements of src/report/mod.rs, in DuckDB's dialect) and prints one JSON
line of their row counts. DuckDB runs with its defaults (all cores, memory limit 80% of RAM).
"""
from __future__ import annotations

import argparse
import csv
import glob
import json
import os
import sys

import duckdb

TOP_TOPICS = 15  # src/report/mod.rs
SCORES = ("quality", "freshness", "depth", "clarity")

# A table without files yet (no rejects in a clean corpus): an empty table of the columns the report reads.
EMPTY = {
    "rejects": "CREATE TABLE rejects (run_id VARCHAR, reason VARCHAR)",
    "duplicates": "CREATE TABLE duplicates (run_id VARCHAR, hash VARCHAR)",
}


def open_warehouse(wh: str) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for table in ("posts", "rejects", "duplicates", "runs"):
        pattern = os.path.join(wh, table, "**", "*.parquet")
        if glob.glob(pattern, recursive=True):
            hive = ", hive_partitioning = true" if table == "posts" else ""
            con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{pattern}'{hive})")
        elif table in EMPTY:
            con.execute(EMPTY[table])
        else:
            sys.exit(f"duckdb_query: {wh}: table {table} has no Parquet files")
    return con


def report_statements() -> list[str]:
    """What `quarry report` computes (src/report/mod.rs `gather` and `topic_boxes`), statement by statement."""
    out = [
        "SELECT run_id, started_at, files, files_skipped, pages, imported, duplicates, rejected, issues, status "
        "FROM runs ORDER BY run_id",
        "SELECT reason, count(*) AS n FROM rejects GROUP BY reason ORDER BY n DESC, reason",
        "SELECT count(*) AS n FROM duplicates",
        "SELECT count(*) AS n FROM posts",
    ]
    out += [f"SELECT FLOOR({s}_score / 10.0) AS bin, count(*) AS n FROM posts GROUP BY bin" for s in SCORES]
    out += [
        "SELECT FLOOR(completeness * 10) AS bin, count(*) AS n FROM posts GROUP BY bin",
        "SELECT code, count(*) AS n FROM (SELECT DISTINCT hash, UNNEST(issues) AS code FROM posts "
        "WHERE len(issues) > 0) WHERE code IS NOT NULL GROUP BY code ORDER BY n DESC, code",
        "SELECT count(DISTINCT topic) AS n FROM posts",
        "SELECT grp, topic, count(q) AS n, avg(q) AS mean, min(q) AS min, max(q) AS max, "
        "quantile_cont(q, 0.25) AS q1, median(q) AS median, quantile_cont(q, 0.75) AS q3, max(posts) AS posts "
        "FROM (SELECT CASE WHEN p.topic IS NULL THEN 2 WHEN t.topic IS NULL THEN 1 ELSE 0 END AS grp, "
        "CASE WHEN t.topic IS NULL THEN NULL ELSE p.topic END AS topic, t.n AS posts, p.quality_composite AS q "
        "FROM posts p LEFT JOIN (SELECT topic, count(*) AS n FROM posts WHERE topic IS NOT NULL "
        f"GROUP BY topic ORDER BY n DESC, topic LIMIT {TOP_TOPICS}) t ON p.topic = t.topic) "
        "GROUP BY grp, topic ORDER BY grp, posts DESC, topic",
    ]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--warehouse", required=True)
    what = ap.add_mutually_exclusive_group(required=True)
    what.add_argument("--sql", help="one statement over posts, rejects, duplicates, runs; printed as CSV")
    what.add_argument("--report", action="store_true", help="the aggregations of `quarry report`")
    a = ap.parse_args()
    con = open_warehouse(a.warehouse)
    if a.report:
        rows = [len(con.execute(s).fetchall()) for s in report_statements()]
        print(json.dumps({"statements": len(rows), "rows": rows}))
        return
    cur = con.execute(a.sql)
    w = csv.writer(sys.stdout, lineterminator="\n")
    w.writerow([d[0] for d in cur.description])
    w.writerows(cur.fetchall())


if __name__ == "__main__":
    main()
