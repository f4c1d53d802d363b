#!/usr/bin/env python3
"""Do two warehouses hold the same rows? For refactors that must not change what quarry writes.

    python bench/same_rows.py WAREHOUSE_A WAREHOUSE_B

Reads every table of both with pyarrow (posts with its hive partition dropped), replaces each run id
by its rank among the warehouse's runs (so runs of the same inputs in the same order compare equal),
drops what depends on the clock (`ingested_at`, `started_at`, `finished_at`) and on the pipeline's
path (`runs.pipeline`), sorts the rows, and compares schemas and rows. Exit 0 when equal, 1 with the
first differences otherwise.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds

TABLES = ("posts", "rejects", "duplicates", "runs")
CLOCK = {"ingested_at", "started_at", "finished_at", "pipeline"}
RUN_COLUMNS = ("run_id", "first_run_id")
SORT = {
    "posts": ["hash"],
    "rejects": ["rank_run_id", "source_file", "source_offset"],
    "duplicates": ["rank_run_id", "source_file", "source_offset"],
    "runs": ["rank_run_id"],
}


def read(wh: Path, table: str) -> pa.Table | None:
    folder = wh / table
    if not folder.is_dir():
        return None
    d = ds.dataset(str(folder), format="parquet", partitioning="hive" if table == "posts" else None)
    if not d.files:
        return None
    t = d.to_table()
    return t.drop_columns([c for c in t.column_names if c == "ingest_date"])


def ranked(t: pa.Table, ranks: dict[str, int]) -> pa.Table:
    for col in RUN_COLUMNS:
        if col in t.column_names:
            values = [ranks.get(v, -1) if v is not None else None for v in t[col].to_pylist()]
            t = t.drop_columns([col]).append_column(f"rank_{col}", pa.array(values, pa.int64()))
    return t.drop_columns([c for c in t.column_names if c in CLOCK])


def tables(wh: Path) -> dict[str, pa.Table | None]:
    runs = read(wh, "runs")
    ids = sorted(runs["run_id"].to_pylist()) if runs is not None else []
    ranks = {r: i for i, r in enumerate(ids)}
    out = {}
    for name in TABLES:
        t = read(wh, name)
        if t is not None:
            t = ranked(t, ranks)
            t = t.sort_by([(k, "ascending") for k in SORT[name]])
        out[name] = t
    return out


def main() -> int:
    a, b = (tables(Path(p)) for p in sys.argv[1:3])
    bad = 0
    for name in TABLES:
        ta, tb = a[name], b[name]
        if ta is None or tb is None:
            if (ta is None) != (tb is None):
                print(f"{name}: only one warehouse has files")
                bad += 1
            continue
        if ta.schema != tb.schema:
            print(f"{name}: schemas differ\n  {ta.schema}\n  {tb.schema}")
            bad += 1
            continue
        if ta.num_rows != tb.num_rows:
            print(f"{name}: {ta.num_rows} rows vs {tb.num_rows}")
            bad += 1
            continue
        diff = [c for c in ta.column_names if not ta[c].equals(tb[c])]
        if diff:
            print(f"{name}: columns differ: {', '.join(diff)}")
            for c in diff[:3]:
                first = next(i for i in range(ta.num_rows) if ta[c][i] != tb[c][i])
                print(f"  {c}, row {first}: {ta[c][first]!r} vs {tb[c][first]!r}")
            bad += 1
        else:
            print(f"{name}: {ta.num_rows} rows, {ta.num_columns} columns: identical")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
