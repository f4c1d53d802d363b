"""The warehouse's files against the contract in warehouse.md, as pyarrow, DuckDB and polars see them."""
import datetime
import random
import re
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

import warehouse as whr

S, I32, I64, F64, BOOL = pa.string(), pa.int32(), pa.int64(), pa.float64(), pa.bool_()
LIST_S = pa.list_(S)
UTC_US = pa.timestamp("us", tz="UTC")


class AnyInt:
    """warehouse.md gives no width: any signed integer."""


class AnyUtcTimestamp:
    """warehouse.md gives no unit: a timestamp adjusted to UTC."""


def fields(spec):
    return [(name, typ) for names, typ in spec for name in names.split()]


POSTS = fields([
    ("hash title", S), ("headings", LIST_S), ("body topic summary ai_brief", S),
    ("ai_outline", pa.struct([(n, S) for n in ("context", "problem", "stack", "recommended_action")])),
    ("stack tools checklist notes similar_posts", LIST_S), ("code_language difficulty", S),
    ("reading_time_min", I32), ("view_count", I64),
    ("quality_score freshness_score depth_score clarity_score", I32),
    ("quality_norm freshness_norm depth_norm clarity_norm", F64),
    ("revision_status revision_version", S), ("last_reviewed", pa.date32()), ("reference", S),
    ("flag_ai_generated_style flag_has_images flag_image_heavy flag_needs_human_review", BOOL),
    ("entities", pa.list_(pa.struct([("name", S), ("type", S)]))),
    ("image_sources", pa.list_(pa.struct([("source", S), ("url", S), ("caption", S)]))),
    ("source_id generator scenario", S), ("paragraphs_declared", I32), ("seed", I64),
    ("extra_meta", pa.map_(S, LIST_S)), ("unparsed_meta", LIST_S),
    ("word_count paragraph_count", I32),
    ("reading_time_est_min quality_composite completeness", F64), ("ids_consistent", BOOL),
    ("content_fingerprint", S), ("issues", LIST_S),
    ("source_file", S), ("source_offset", I64), ("run_id", S), ("ingested_at", UTC_US),
])
REJECTS = fields([("run_id source_file", S), ("source_offset", I64), ("reason detail", S),
                  ("raw", pa.binary())])
DUPLICATES = fields([("run_id hash source_file", S), ("source_offset", I64), ("first_run_id", S)])
RUNS = fields([
    ("run_id", S), ("started_at finished_at", AnyUtcTimestamp), ("pipeline", S), ("inputs", LIST_S),
    ("files files_skipped", AnyInt), ("bytes_read", I64),
    ("pages imported duplicates rejected issues", AnyInt), ("status", S),
])
CONTRACT = {"posts": POSTS, "rejects": REJECTS, "duplicates": DUPLICATES, "runs": RUNS}
REQUIRED = {"posts": {"hash"}}

# One file per table per run, directly in the table (or partition) folder: Spark's partition
# discovery needs the files right under `ingest_date=…`, and one rename makes a table's file visible.
LAYOUT = {
    "posts": re.compile(r"ingest_date=(\d{4}-\d{2}-\d{2})/([^/]+)\.parquet"),
    "rejects": re.compile(r"([^/]+)\.parquet"),
    "duplicates": re.compile(r"([^/]+)\.parquet"),
    "runs": re.compile(r"([^/]+)\.parquet"),
}
UTC_NAMES = {"UTC", "+00:00", "Etc/UTC", "Z"}


@pytest.fixture(scope="module")
def wh(fixture_warehouse):
    return fixture_warehouse


def files_of(wh, table):
    files = sorted((wh / table).rglob("*.parquet"))
    assert files, f"no Parquet files in {wh / table}"
    return files


def canon(t) -> str:
    """An Arrow type as a reader of the Parquet logical type sees it: views and large variants folded."""
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "string"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_binary_view(t):
        return "binary"
    if pa.types.is_map(t):
        return f"map<{canon(t.key_type)}, {canon(t.item_type)}>"
    if (pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_list_view(t)
            or pa.types.is_large_list_view(t)):
        return f"list<{canon(t.value_type)}>"
    if pa.types.is_struct(t):
        return "struct<" + ", ".join(f"{f.name}: {canon(f.type)}" for f in t) + ">"
    if pa.types.is_timestamp(t):
        return f"timestamp[{t.unit}, {'UTC' if t.tz in UTC_NAMES else t.tz}]"
    return str(t)


def type_ok(expected, actual: pa.DataType) -> bool:
    if expected is AnyInt:
        return pa.types.is_signed_integer(actual)
    if expected is AnyUtcTimestamp:
        return pa.types.is_timestamp(actual) and actual.tz in UTC_NAMES
    return canon(actual) == canon(expected)


DUCK_SCALARS = {"string": "VARCHAR", "binary": "BLOB", "int32": "INTEGER", "int64": "BIGINT",
                "double": "DOUBLE", "bool": "BOOLEAN", "date32[day]": "DATE",
                "timestamp[us, UTC]": "TIMESTAMP WITH TIME ZONE"}


def duck_type(t) -> str:
    if pa.types.is_map(t):
        return f"MAP({duck_type(t.key_type)}, {duck_type(t.item_type)})"
    if pa.types.is_list(t):
        return duck_type(t.value_type) + "[]"
    if pa.types.is_struct(t):
        return "STRUCT(" + ", ".join(f"{f.name} {duck_type(f.type)}" for f in t) + ")"
    return DUCK_SCALARS[canon(t)]


def duck_type_ok(expected, actual: str) -> bool:
    actual = actual.replace('"', "")
    if expected is AnyInt:
        return actual in {"TINYINT", "SMALLINT", "INTEGER", "BIGINT"}
    if expected is AnyUtcTimestamp:
        return actual.startswith("TIMESTAMP") and actual.endswith("WITH TIME ZONE")
    return actual == duck_type(expected)


def schema_problems(contract, names_types, ok):
    problems = []
    names = [n for n, _ in names_types]
    want = [n for n, _ in contract]
    if names != want:
        problems.append(f"columns {names}\n  expected {want}")
    got = dict(names_types)
    for name, typ in contract:
        if name in got and not ok(typ, got[name]):
            problems.append(f"{name}: {got[name]} (expected {typ if isinstance(typ, pa.DataType) else typ.__doc__})")
    return problems


@pytest.mark.parametrize("table", whr.TABLES)
def test_arrow_schema_of_every_file(wh, table):
    for f in files_of(wh, table):
        schema = pq.read_schema(f)
        problems = schema_problems(CONTRACT[table], [(x.name, x.type) for x in schema], type_ok)
        for name in REQUIRED.get(table, ()):
            if name in schema.names and schema.field(name).nullable:
                problems.append(f"{name} is nullable")
        assert not problems, f"{f.relative_to(wh)}:\n" + "\n".join(problems)


def parquet_tree(file):
    """DuckDB's parquet_schema() rows rebuilt into nested nodes."""
    rows = duckdb.sql(
        "SELECT name, type, repetition_type, num_children, converted_type, logical_type "
        f"FROM parquet_schema('{str(file).replace(chr(39), chr(39) * 2)}') ORDER BY column_id").fetchall()
    it = iter(rows)

    def node():
        name, typ, rep, n, conv, logical = next(it)
        return {"name": name, "type": typ, "rep": rep, "conv": conv, "logical": logical or "",
                "children": [node() for _ in range(n or 0)]}

    return node()


def parquet_problems(path, expected, n):
    """Differences between one Parquet schema node and the logical type the contract asks for."""
    where = f"{path}: {n['type'] or 'group'} {n['conv'] or ''} {n['logical']}".rstrip()
    leaf = {pa.int32(): "INT32", pa.int64(): "INT64", pa.float64(): "DOUBLE", pa.bool_(): "BOOLEAN"}
    if expected is AnyInt:
        return [] if n["type"] in ("INT32", "INT64") and n["conv"] in (None, "INT_32", "INT_64") else [where]
    if expected is AnyUtcTimestamp:
        return [] if n["type"] == "INT64" and "isAdjustedToUTC=1" in n["logical"] else [where]
    if pa.types.is_string(expected):
        return [] if n["type"] == "BYTE_ARRAY" and "StringType" in n["logical"] else [where]
    if pa.types.is_binary(expected):
        return [] if n["type"] == "BYTE_ARRAY" and not n["conv"] and not n["logical"] else [where]
    if pa.types.is_date32(expected):
        return [] if n["type"] == "INT32" and "DateType" in n["logical"] else [where]
    if pa.types.is_timestamp(expected):
        ok = (n["type"] == "INT64" and "isAdjustedToUTC=1" in n["logical"]
              and "MICROS=MicroSeconds()" in n["logical"])
        return [] if ok else [where]
    if expected in leaf:
        ok = n["type"] == leaf[expected] and ("IntType" in n["logical"] or not n["logical"])
        return [] if ok else [where]
    if n["type"] is not None:
        return [where + f" (expected {expected})"]
    if pa.types.is_list(expected):
        rep = n["children"][0] if len(n["children"]) == 1 else None
        if n["conv"] != "LIST" or rep is None or rep["rep"] != "REPEATED" or len(rep["children"]) != 1:
            return [where + " (expected a 3-level LIST)"]
        return parquet_problems(path + "[]", expected.value_type, rep["children"][0])
    if pa.types.is_map(expected):
        kv = n["children"][0] if len(n["children"]) == 1 else None
        if n["conv"] != "MAP" or kv is None or kv["rep"] != "REPEATED" or len(kv["children"]) != 2:
            return [where + " (expected a MAP of repeated key_value)"]
        key, value = kv["children"]
        problems = [] if key["rep"] == "REQUIRED" else [f"{path}.key is {key['rep']}"]
        return (problems + parquet_problems(path + ".key", expected.key_type, key)
                + parquet_problems(path + ".value", expected.item_type, value))
    if pa.types.is_struct(expected):
        if n["conv"] or [c["name"] for c in n["children"]] != [f.name for f in expected]:
            return [where + f" children {[c['name'] for c in n['children']]} (expected {expected})"]
        return [p for f, c in zip(expected, n["children"]) for p in parquet_problems(f"{path}.{f.name}", f.type, c)]
    return [where + f" (no rule for {expected})"]


@pytest.mark.parametrize("table", whr.TABLES)
def test_parquet_logical_types_of_every_file(wh, table):
    for f in files_of(wh, table):
        root = parquet_tree(f)
        got = {c["name"]: c for c in root["children"]}
        assert [c["name"] for c in root["children"]] == [n for n, _ in CONTRACT[table]], f
        problems = []
        for name, typ in CONTRACT[table]:
            problems += parquet_problems(name, typ, got[name])
            if name in REQUIRED.get(table, ()) and got[name]["rep"] != "REQUIRED":
                problems.append(f"{name} is {got[name]['rep']}, not REQUIRED")
        assert not problems, f"{f.relative_to(wh)}:\n" + "\n".join(problems)


def test_parquet_column_descriptors_seen_by_pyarrow(wh):
    for f in files_of(wh, "posts"):
        cols = {pf.path: pf for pf in pq.ParquetFile(f).schema}
        assert cols["hash"].max_definition_level == 0, "hash is not REQUIRED"
        assert cols["hash"].logical_type.type == "STRING"
        ts = str(cols["ingested_at"].logical_type)
        assert "isAdjustedToUTC=true" in ts and "timeUnit=microseconds" in ts, ts
        assert cols["last_reviewed"].logical_type.type == "DATE"
        assert "ingest_date" not in pq.read_schema(f).names
    for f in files_of(wh, "rejects"):
        raw = {pf.path: pf for pf in pq.ParquetFile(f).schema}["raw"]
        assert (raw.physical_type, raw.logical_type.type) == ("BYTE_ARRAY", "NONE"), raw


@pytest.mark.parametrize("table", whr.TABLES)
def test_duckdb_describe_over_the_table_glob(wh, table):
    rows = duckdb.sql(f"DESCRIBE SELECT * FROM {whr.duck_source(wh, table)}").fetchall()
    got = [(r[0], r[1]) for r in rows]
    contract = CONTRACT[table]
    if table == "posts":
        assert got[-1][0] == "ingest_date" and got[-1][1] in ("DATE", "VARCHAR"), got[-1]
        got = got[:-1]
    problems = schema_problems(contract, got, duck_type_ok)
    assert not problems, "\n".join(problems)


def test_ingest_date_comes_from_the_path(wh):
    con = duckdb.connect()
    posts = whr.duck_source(wh, "posts")
    total = con.sql(f"SELECT count(*) FROM {posts}").fetchall()[0][0]
    assert total == whr.num_rows(whr.read_table(wh, "posts"))
    runs = {r["run_id"]: r for r in whr.runs_in_order(wh)}
    rows = con.sql(f"SELECT DISTINCT run_id, CAST(ingest_date AS VARCHAR) FROM {posts}").fetchall()
    for run_id, day in rows:
        started = runs[run_id]["started_at"].astimezone(datetime.timezone.utc).date()
        assert day == started.isoformat(), (run_id, day, started)

    d = ds.dataset(str(wh / "posts"), format="parquet", partitioning="hive")
    assert "ingest_date" in d.schema.names
    t = d.to_table(columns=["run_id", "ingest_date"])
    assert t.num_rows == total
    assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(v)) for v in t["ingest_date"].to_pylist())

    lf = pl.scan_parquet(str(wh / "posts" / "**" / "*.parquet"), hive_partitioning=True)
    assert "ingest_date" in lf.collect_schema().names()
    assert lf.select(pl.len()).collect().item() == total


DELTA_LOG = re.compile(r"_delta_log/\d{20}\.json")


def test_layout_of_table_folders(wh):
    """Every file of a table folder is a run's Parquet file or an entry of the table's Delta log (no
    checkpoint: a `.parquet` there would be read by a `posts/**/*.parquet` glob)."""
    runs = whr.run_ids(wh)
    for table, pattern in LAYOUT.items():
        for p in sorted((wh / table).rglob("*")):
            if p.is_dir():
                continue
            rel = str(p.relative_to(wh / table))
            if DELTA_LOG.fullmatch(rel):
                continue
            m = pattern.fullmatch(rel)
            assert m, f"{table}/{rel} is not in the table layout"
            run_id = m.groups()[-1]
            assert run_id in runs, f"{table}/{rel}: no runs row for {run_id}"
            ids = set(pq.read_table(p, columns=["run_id"])["run_id"].to_pylist())
            assert ids == {run_id}, f"{table}/{rel} holds rows of runs {ids}"
            if table == "runs":
                assert pq.read_metadata(p).num_rows == 1
    for p in wh.iterdir():
        assert p.name in set(whr.TABLES) | {"_quarry"}, f"unexpected {p.name} in the warehouse root"


def test_every_column_chunk_is_zstd(wh):
    for table in whr.TABLES:
        for f in files_of(wh, table):
            md = pq.read_metadata(f)
            codecs = {md.row_group(g).column(c).compression
                      for g in range(md.num_row_groups) for c in range(md.num_columns)}
            assert codecs == {"ZSTD"}, f"{f.relative_to(wh)}: {codecs}"


def test_posts_hash_has_a_bloom_filter(wh):
    files = files_of(wh, "posts")
    for f in files:
        md = pq.read_metadata(f)
        col = md.schema.names.index("hash")
        for g in range(md.num_row_groups):
            assert md.row_group(g).column(col).bloom_filter_offset is not None, f"{f} row group {g}"
        q = str(f).replace("'", "''")
        offsets = duckdb.sql(f"SELECT bloom_filter_offset FROM parquet_metadata('{q}') "
                             "WHERE path_in_schema = 'hash'").fetchall()
        assert offsets and all(o[0] is not None for o in offsets), f

    f = files[0]
    q = str(f).replace("'", "''")
    present = pq.read_table(f, columns=["hash"])["hash"][0].as_py()
    probe = f"SELECT bool_and(bloom_filter_excludes) FROM parquet_bloom_probe('{q}', 'hash', ?)"
    assert duckdb.execute(probe, [present]).fetchall()[0][0] is False
    rng = random.Random(7)
    absent = ["%024x" % rng.getrandbits(96) for _ in range(20)]
    excluded = [duckdb.execute(probe, [h]).fetchall()[0][0] for h in absent]
    assert sum(excluded) >= 15, f"the bloom filter excludes only {sum(excluded)} of 20 absent hashes"
