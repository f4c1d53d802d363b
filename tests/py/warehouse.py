"""Read a quarry warehouse the way an analyst would, and run the quarry binary.

Every reader here goes through plain pyarrow or DuckDB over the table folders, or through the
tables' Delta logs (the `deltalake` package, polars' `scan_delta`), never through quarry's own
`_quarry/` state: the tests judge the warehouse by what outside tools see.
"""
from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = REPO_ROOT / "tests" / "fixtures"
PIPELINE = "pipelines/alphanode.toml"
TABLES = ("posts", "rejects", "duplicates", "runs")
DATA_TABLES = ("posts", "rejects", "duplicates")


def quarry_bin() -> Path:
    return Path(os.environ.get("QUARRY_BIN", REPO_ROOT / "target" / "debug" / "quarry"))


def shared_dir() -> Path:
    return Path(os.environ.get("QUARRY_SHARED", REPO_ROOT.parent / "shared"))


def _env(extra: dict | None) -> dict:
    env = dict(os.environ)
    env.pop("QUARRY_TEST_HOLD", None)
    env.update(extra or {})
    return env


def run_quarry(args, env=None, timeout=900):
    """Run quarry with cwd = repo root; returns (returncode, stdout, stderr) as text."""
    proc = subprocess.run(
        [str(quarry_bin()), *map(str, args)],
        cwd=REPO_ROOT,
        env=_env(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=timeout,
    )
    return (proc.returncode, proc.stdout.decode("utf-8", "replace"),
            proc.stderr.decode("utf-8", "replace"))


def import_args(warehouse, *inputs, quiet=True):
    args = ["import", "--pipeline", PIPELINE, "--output", str(warehouse)]
    if quiet:
        args.append("--quiet")
    return args + [str(i) for i in inputs]


def run_import(warehouse, *inputs, env=None):
    return run_quarry(import_args(warehouse, *inputs), env=env)


def replay_args(warehouse, pipeline=PIPELINE, quiet=True):
    args = ["rejects", "replay", str(warehouse), "--pipeline", str(pipeline)]
    return args + (["--quiet"] if quiet else [])


def run_replay(warehouse, pipeline=PIPELINE, env=None):
    return run_quarry(replay_args(warehouse, pipeline), env=env)


class HeldImport:
    """An import started with QUARRY_TEST_HOLD, read line by line from stderr."""

    def __init__(self, warehouse, *inputs, point: str, args=None):
        """`args`: another quarry command line to hold instead of importing `inputs` (a replay)."""
        self.point = point
        self.hold_line = f"quarry: test hold at {point}"
        self.lines: list[str] = []
        self._held = threading.Event()
        self.proc = subprocess.Popen(
            [str(quarry_bin()), *(args if args is not None else import_args(warehouse, *inputs))],
            cwd=REPO_ROOT,
            env=_env({"QUARRY_TEST_HOLD": point}),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            self.lines.append(line)
            if line.strip() == self.hold_line:
                self._held.set()

    def wait_held(self, timeout=120.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._held.wait(0.1):
                return True
            if self.proc.poll() is not None:
                self._reader.join(5)
                return self._held.is_set()
        return False

    def kill(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        self._reader.join(5)

    def stderr(self) -> str:
        return "\n".join(self.lines)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()


def table_dir(warehouse, table) -> Path:
    return Path(warehouse) / table


def dataset(warehouse, table) -> ds.Dataset | None:
    """pyarrow dataset over one table's folder (hive partitioning for posts); None if it has no files."""
    path = table_dir(warehouse, table)
    if not path.is_dir():
        return None
    d = ds.dataset(str(path), format="parquet", partitioning="hive" if table == "posts" else None)
    return d if d.files else None


def read_table(warehouse, table, committed=False, columns=None) -> pa.Table | None:
    """The table as pyarrow reads it; with committed=True only rows whose run_id has a runs row."""
    d = dataset(warehouse, table)
    if d is None:
        return None
    t = d.to_table(columns=columns)
    if committed and table != "runs":
        t = t.filter(pc.is_in(t["run_id"], value_set=pa.array(sorted(run_ids(warehouse)), pa.string())))
    return t


def run_ids(warehouse) -> set[str]:
    runs = read_table(warehouse, "runs", columns=["run_id"])
    return set() if runs is None else set(runs["run_id"].to_pylist())


def runs_in_order(warehouse) -> list[dict]:
    """runs rows as dicts, sorted by started_at (then run_id)."""
    runs = read_table(warehouse, "runs")
    if runs is None:
        return []
    return sorted(runs.to_pylist(), key=lambda r: (r["started_at"], r["run_id"]))


def num_rows(t: pa.Table | None) -> int:
    return 0 if t is None else t.num_rows


def snapshot(warehouse, committed=True) -> dict:
    """Row counts of every table (`posts`, ...) and row identities (`posts_keys`, ...) as pyarrow reads them."""
    out = {}
    for table, key in (("posts", ["hash"]), ("rejects", ["source_file", "source_offset"]),
                       ("duplicates", ["hash", "source_file", "source_offset"])):
        t = read_table(warehouse, table, committed, key + ["run_id"])
        rows = [] if t is None else list(zip(*(t[k].to_pylist() for k in key)))
        out[table] = len(rows)
        out[table + "_keys"] = frozenset(r[0] if len(key) == 1 else r for r in rows)
    ids = run_ids(warehouse)
    out["runs"] = len(ids)
    out["runs_keys"] = frozenset(ids)
    return out


def delta_table(warehouse, table, columns, engine="deltalake") -> pa.Table:
    """One table through its Delta log: the `deltalake` package or polars' `scan_delta`."""
    path = str(table_dir(warehouse, table))
    if engine == "polars":
        import polars as pl
        return pl.scan_delta(path).select(columns).collect().to_arrow()
    from deltalake import DeltaTable
    return DeltaTable(path).to_pyarrow_table(columns=columns)


def delta_snapshot(warehouse, engine="deltalake") -> dict:
    """`snapshot` as a Delta reader sees the warehouse: every table through its log."""
    out = {}
    for table, key in (("posts", ["hash"]), ("rejects", ["source_file", "source_offset"]),
                       ("duplicates", ["hash", "source_file", "source_offset"])):
        t = delta_table(warehouse, table, key, engine)
        rows = list(zip(*(t[k].to_pylist() for k in key)))
        out[table] = len(rows)
        out[table + "_keys"] = frozenset(r[0] if len(key) == 1 else r for r in rows)
    ids = delta_table(warehouse, "runs", ["run_id"], engine)["run_id"].to_pylist()
    out["runs"] = len(ids)
    out["runs_keys"] = frozenset(ids)
    return out


def snapshot_diff(got: dict, want: dict) -> str:
    """The differences over the keys of `want`, short enough to read in a failure."""
    lines = []
    for k, w in want.items():
        g = got.get(k)
        if g == w:
            continue
        if isinstance(w, frozenset) and isinstance(g, frozenset):
            missing, extra = sorted(w - g, key=str), sorted(g - w, key=str)
            lines.append(f"{k}: {len(missing)} missing {missing[:3]}, {len(extra)} extra {extra[:3]}")
        else:
            lines.append(f"{k}: got {g}, expected {w}")
    return "\n".join(lines)


def duck_glob(warehouse, table) -> str:
    return str(table_dir(warehouse, table) / "**" / "*.parquet").replace("'", "''")


def duck_source(warehouse, table) -> str:
    return f"read_parquet('{duck_glob(warehouse, table)}', hive_partitioning = true)"


def duck_has_files(warehouse, table) -> bool:
    return any(table_dir(warehouse, table).glob("**/*.parquet"))


def duck_snapshot(warehouse, committed=False) -> dict:
    """Row counts per table and the posts hash set (`posts_keys`), as DuckDB's glob reads them."""
    con = duckdb.connect()
    runs = duck_source(warehouse, "runs") if duck_has_files(warehouse, "runs") else None
    out = {}
    for table in TABLES:
        if not duck_has_files(warehouse, table):
            out[table] = 0
            continue
        where = ""
        if committed and table != "runs":
            where = f" WHERE run_id IN (SELECT run_id FROM {runs})" if runs else " WHERE false"
        out[table] = con.sql(f"SELECT count(*) FROM {duck_source(warehouse, table)}{where}").fetchall()[0][0]
        if table == "posts":
            rows = con.sql(f"SELECT hash FROM {duck_source(warehouse, table)}{where}").fetchall()
            out["posts_keys"] = frozenset(r[0] for r in rows)
    out.setdefault("posts_keys", frozenset())
    return out


def orphan_rows(warehouse) -> dict:
    """Rows per data table whose run_id has no runs row, read without any filtering (DuckDB)."""
    con = duckdb.connect()
    ids = run_ids(warehouse)
    out = {}
    for table in DATA_TABLES:
        if not duck_has_files(warehouse, table):
            continue
        rows = con.sql(f"SELECT DISTINCT run_id FROM {duck_source(warehouse, table)}").fetchall()
        orphans = sorted(r[0] for r in rows if r[0] not in ids)
        if orphans:
            out[table] = orphans
    return out
