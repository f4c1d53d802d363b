"""End to end: import dumpgen corpora with the quarry binary and read the warehouse back."""
import json
import shutil
from collections import Counter

import duckdb
import pytest

import truthcheck
import warehouse as whr

HOLD_POINTS = ("staged", "posts", "rejects", "duplicates", "lists")
# Kills after the runs row's file is in place: the run counts, the next run completes it.
COUNTED_POINTS = ("runs-row", "committed")
HOLD_TIMEOUT_S = 120
SEED_INPUT = "tests/fixtures/seed-page.txt"


@pytest.fixture(scope="module", params=["fixture-corpus", "generated-corpus"])
def corpus(request, quarry_binary):
    return request.getfixturevalue(request.param.replace("-", "_"))


def assert_ran(result, what):
    rc, out, err = result
    assert rc == 0, f"{what}: exit {rc}\nstdout:\n{out}\nstderr:\n{err}"


def assert_same(got, want, what):
    diff = whr.snapshot_diff(got, want)
    assert not diff, f"{what}:\n{diff}"


def import_batches(warehouse, corpus, batches):
    for b in batches:
        assert_ran(whr.run_import(warehouse, corpus.batch(b)), f"import of {corpus.batch(b)}")


@pytest.fixture(scope="module")
def full_warehouse(corpus, tmp_path_factory):
    """batch-1..3 imported in order into one warehouse."""
    wh = tmp_path_factory.mktemp("wh-full") / "wh"
    import_batches(wh, corpus, range(1, corpus.batches + 1))
    return wh


@pytest.fixture(scope="module")
def batch1_warehouse(corpus, tmp_path_factory):
    wh = tmp_path_factory.mktemp("wh-batch1") / "wh"
    import_batches(wh, corpus, [1])
    return wh


def copy_warehouse(src, tmp_path):
    dst = tmp_path / "wh"
    shutil.copytree(src, dst, symlinks=True)
    return dst


def truth_totals(corpus, batches):
    rows = [r for r in truthcheck.load_truth(corpus.root) if r["batch"] <= batches]
    disp = Counter(r["disposition"] for r in rows)
    hashes = frozenset(r["record"]["hash"] for r in rows if r["disposition"] == "imported")
    return {"posts": disp["imported"], "rejects": disp["rejected"], "duplicates": disp["duplicate"],
            "runs": batches, "posts_keys": hashes}


def table_files(warehouse):
    return sorted(str(p.relative_to(warehouse)) for t in whr.DATA_TABLES
                  for p in (warehouse / t).rglob("*") if p.is_file())


def test_import_matches_truth(full_warehouse, corpus):
    report = truthcheck.check(full_warehouse, corpus.root)
    assert report.ok, report.text()


def test_plain_readers_see_exactly_the_truth(full_warehouse, corpus):
    want = truth_totals(corpus, corpus.batches)
    assert_same(whr.duck_snapshot(full_warehouse), want, "DuckDB glob")
    assert_same(whr.snapshot(full_warehouse, committed=False), want, "pyarrow dataset")
    assert whr.orphan_rows(full_warehouse) == {}


@pytest.mark.parametrize("engine", ["deltalake", "polars"])
def test_delta_readers_see_exactly_the_truth(full_warehouse, corpus, engine):
    """Each table is a Delta table (reader 1 / writer 2) that the `deltalake` package and polars'
    `scan_delta` read to the same rows as the plain readers; posts carries ingest_date as a
    partition column."""
    assert_same(whr.delta_snapshot(full_warehouse, engine), truth_totals(corpus, corpus.batches), engine)
    from deltalake import DeltaTable
    for table in whr.TABLES:
        t = DeltaTable(str(full_warehouse / table))
        p = t.protocol()
        assert (p.min_reader_version, p.min_writer_version) == (1, 2), (table, p)
        assert t.metadata().partition_columns == (["ingest_date"] if table == "posts" else []), table
        assert not list((full_warehouse / table / "_delta_log").glob("*.parquet")), f"{table}: a checkpoint"
    dates = whr.delta_table(full_warehouse, "posts", ["ingest_date"], engine)["ingest_date"]
    assert str(dates.type) == "date32[day]" and dates.null_count == 0


def delta_versions(wh) -> dict:
    from deltalake import DeltaTable
    return {t: DeltaTable(str(wh / t)).version() for t in whr.TABLES}


def test_a_commit_of_another_writer_between_runs_is_kept_and_the_next_run_lands_after_it(
        corpus, batch1_warehouse, tmp_path):
    """A commit names each Delta log's version in `_quarry/synced`, and the next commit appends as
    the version after it without reading the log; when some other writer committed meanwhile (here
    a table property set with the `deltalake` package), quarry's append goes after the newest."""
    from deltalake import DeltaTable
    wh = copy_warehouse(batch1_warehouse, tmp_path)
    mark = json.loads((wh / "_quarry" / "synced").read_text())
    assert mark["versions"] == delta_versions(wh), mark
    DeltaTable(str(wh / "posts")).alter.set_table_properties({"delta.logRetentionDuration": "interval 60 days"})
    foreign = delta_versions(wh)["posts"]
    assert foreign == mark["versions"]["posts"] + 1
    rc, _, err = whr.run_quarry(whr.import_args(wh, corpus.batch(2), quiet=False))
    assert rc == 0, err
    assert f"version {foreign} was written by another writer" in err, err
    after = json.loads((wh / "_quarry" / "synced").read_text())["versions"]
    assert after == delta_versions(wh) and after["posts"] == foreign + 1, after
    assert DeltaTable(str(wh / "posts")).metadata().configuration["delta.logRetentionDuration"] == "interval 60 days"
    import_batches(wh, corpus, range(3, corpus.batches + 1))
    assert_same(whr.delta_snapshot(wh), truth_totals(corpus, corpus.batches), "deltalake")


def holding_globs(wh) -> dict:
    """Row counts read with the plain globs the README gives for a checkpointed warehouse."""
    con = duckdb.connect()
    out = {}
    for table in whr.TABLES:
        glob = wh / table / ("ingest_date=*/*.parquet" if table == "posts" else "*.parquet")
        files = list(wh.glob(str(glob.relative_to(wh))))
        out[table] = con.sql(f"SELECT count(*) FROM read_parquet('{glob}', hive_partitioning = true)").fetchall()[0][0] \
            if files else 0
    return out


def test_checkpoints_asked_for_keep_every_reader_and_the_recovery_right(corpus, tmp_path, monkeypatch):
    """With QUARRY_CHECKPOINT_EVERY=2 a commit that takes a log past an even version writes a Delta
    checkpoint: Delta readers (deltalake, polars) and quarry's own query read exactly the truth, a
    commit killed midway is undone on a checkpointed log (the clean-up takes no checkpoint for a
    crashed run's file, the sync reads the log from it), and the globs the README gives for such a
    warehouse read exactly the committed rows — while `posts/**/*.parquet` would also find the
    checkpoints, which is why they are off unless asked for."""
    monkeypatch.setenv("QUARRY_CHECKPOINT_EVERY", "2")
    wh = tmp_path / "wh"
    import_batches(wh, corpus, [1, 2])
    checkpoints = {p.relative_to(wh) for p in wh.glob("*/_delta_log/*.checkpoint.parquet")}
    assert {"posts", "runs"} <= {p.parts[0] for p in checkpoints}, checkpoints
    with whr.HeldImport(wh, corpus.batch(3), point="posts") as held:
        assert held.wait_held(HOLD_TIMEOUT_S), held.stderr()
        held.kill()
    rc, _, err = whr.run_quarry(whr.import_args(wh, corpus.batch(3), quiet=False))
    assert rc == 0, err
    assert "delta: posts: undid" in err, err
    assert checkpoints <= {p.relative_to(wh) for p in wh.glob("*/_delta_log/*.checkpoint.parquet")}
    want = truth_totals(corpus, 3)
    for engine in ("deltalake", "polars"):
        assert_same(whr.delta_snapshot(wh, engine), want, engine)
    report = truthcheck.check(wh, corpus.root, batches=3, committed=False)
    assert report.ok, report.text()
    assert holding_globs(wh) == {t: want[t] for t in whr.TABLES}
    assert any("_delta_log" in p.parts for p in (wh / "posts").glob("**/*.parquet"))
    rc, out, err = whr.run_quarry(["query", str(wh), "SELECT count(*) AS n FROM posts", "--csv"])
    assert rc == 0 and out.splitlines() == ["n", str(want["posts"])], (out, err)
    # A rerun adds only a runs row: version 4 of that log, checkpointed.
    rc, _, err = whr.run_quarry(whr.import_args(wh, corpus.batch(3), quiet=False))
    assert rc == 0 and "delta: runs: checkpoint at version 4" in err, err
    assert len(whr.delta_table(wh, "runs", ["run_id"])) == 4


def test_reimport_adds_only_runs_rows(full_warehouse, corpus, tmp_path):
    wh = copy_warehouse(full_warehouse, tmp_path)
    before = whr.snapshot(wh, committed=False)
    before_files = table_files(wh)
    runs_before = whr.run_ids(wh)
    import_batches(wh, corpus, range(1, corpus.batches + 1))

    after = whr.snapshot(wh, committed=False)
    data = {k: v for k, v in before.items() if not k.startswith("runs")}
    assert_same(after, data, "the tables changed on a rerun")
    changed = sorted(set(table_files(wh)) ^ set(before_files))
    assert not changed, f"a rerun over the same inputs changed table files: {changed}"

    new_runs = [r for r in whr.runs_in_order(wh) if r["run_id"] not in runs_before]
    assert len(new_runs) == corpus.batches
    for b, run in enumerate(new_runs, start=1):
        got = {k: run[k] for k in ("files_skipped", "pages", "imported", "duplicates", "rejected")}
        assert got == {"files_skipped": len(corpus.batch_files(b)), "pages": 0, "imported": 0,
                       "duplicates": 0, "rejected": 0}, f"rerun of batch-{b}: {run}"


@pytest.mark.parametrize("point", HOLD_POINTS)
def test_killed_import_leaves_no_trace(corpus, batch1_warehouse, tmp_path, point):
    wh = copy_warehouse(batch1_warehouse, tmp_path)
    before = whr.snapshot(wh, committed=False)
    before_duck = whr.duck_snapshot(wh)

    with whr.HeldImport(wh, corpus.batch(2), point=point) as held:
        assert held.wait_held(HOLD_TIMEOUT_S), (
            f"no '{held.hold_line}' on stderr within {HOLD_TIMEOUT_S} s "
            f"(exit {held.proc.poll()}):\n{held.stderr()}")
        held.kill()

    assert_same(whr.snapshot(wh, committed=True), before, "read through runs")
    assert_same(whr.duck_snapshot(wh, committed=True), before_duck, "DuckDB through runs")
    if point == "staged":
        assert_same(whr.snapshot(wh, committed=False), before, "staged files in a table folder")
        assert_same(whr.duck_snapshot(wh), before_duck, "DuckDB's glob sees staged files")

    assert_ran(whr.run_import(wh, corpus.batch(2)), "import after the kill")
    report = truthcheck.check(wh, corpus.root, batches=2, committed=False)
    assert report.ok, report.text()
    assert whr.orphan_rows(wh) == {}, "rows of the killed run are left in the tables"
    left = {p.name.removesuffix(".tsv") for p in (wh / "_quarry" / "files").glob("*")} - whr.run_ids(wh)
    assert not left, f"_quarry/files keeps lists of runs that never finished: {sorted(left)}"
    segs = {p.name.removeprefix("run-").removesuffix(".seg") for p in (wh / "_quarry" / "index").glob("run-*.seg")}
    assert not segs - whr.run_ids(wh), f"_quarry/index keeps segments of runs that never finished: {sorted(segs)}"
    assert_same(whr.duck_snapshot(wh), truth_totals(corpus, 2), "DuckDB glob after the rerun")
    assert_same(whr.snapshot(wh, committed=False), truth_totals(corpus, 2), "pyarrow dataset after the rerun")
    assert_same(whr.delta_snapshot(wh), truth_totals(corpus, 2), "Delta logs after the rerun")


@pytest.mark.parametrize("point", COUNTED_POINTS)
def test_a_run_killed_after_its_runs_row_counts_and_its_log_entry_is_rolled_forward(
        corpus, batch1_warehouse, tmp_path, point):
    """Killed once its runs row's file is in place (runs-row: before that row's Delta log entry;
    committed: after it), the run counts for plain readers; the next run writes the missing log
    entry (and says so), and then Delta readers see exactly what plain readers see."""
    wh = copy_warehouse(batch1_warehouse, tmp_path)
    with whr.HeldImport(wh, corpus.batch(2), point=point) as held:
        assert held.wait_held(HOLD_TIMEOUT_S), f"no '{held.hold_line}' (exit {held.proc.poll()}):\n{held.stderr()}"
        held.kill()
    assert_same(whr.snapshot(wh, committed=True), truth_totals(corpus, 2), "plain readers after the kill")
    rc, _, err = whr.run_quarry(whr.import_args(wh, corpus.batch(3), quiet=False))
    assert rc == 0, err
    assert ("delta: runs: rolled forward" in err) == (point == "runs-row"), err
    assert_same(whr.delta_snapshot(wh), truth_totals(corpus, 3), "Delta logs after the next run")
    report = truthcheck.check(wh, corpus.root, batches=3, committed=False)
    assert report.ok, report.text()


@pytest.mark.parametrize("point", ["adopted", "merge-written", "merge-switched"])
def test_a_run_killed_while_the_index_merges_loses_nothing(corpus, tmp_path, monkeypatch, point):
    """Under a merge policy small enough that every run merges (QUARRY_TEST_INDEX_POLICY=tiny, debug
    builds only), batch 2's run is killed after its runs row: after adopting its segment, after a
    merge wrote its files, after the merge switched the manifest. The run counts; the next runs
    repair the index, and after batch 3 the warehouse is exactly the truth (every hash once)."""
    monkeypatch.setenv("QUARRY_TEST_INDEX_POLICY", "tiny")
    wh = tmp_path / "wh"
    import_batches(wh, corpus, [1])
    with whr.HeldImport(wh, corpus.batch(2), point=point) as held:
        assert held.wait_held(HOLD_TIMEOUT_S), f"no '{held.hold_line}' (exit {held.proc.poll()}):\n{held.stderr()}"
        held.kill()
    assert len(whr.runs_in_order(wh)) == 2, "the killed run had written its runs row"
    rc, _, err = whr.run_quarry(whr.import_args(wh, corpus.batch(3), quiet=False))
    assert rc == 0, err
    manifest = json.loads((wh / "_quarry" / "index" / "MANIFEST").read_text())
    assert max(f["level"] for f in manifest["files"]) >= 2, "the tiny policy made levels"
    report = truthcheck.check(wh, corpus.root, batches=3, committed=False)
    assert report.ok, report.text()


@pytest.mark.parametrize("damage", ["missing", "footer_byte", "truncated", "manifest", "block_byte"])
def test_a_damaged_index_is_rebuilt_and_dedupe_stays_exact(corpus, batch1_warehouse, tmp_path, damage):
    """The index (`_quarry/index/`) is rebuilt from the posts files when a segment is missing or
    damaged, or the manifest cannot be read; the next run says so in its log and finds the same
    duplicates. A damaged block is found only when a lookup reads it: that run stops with exit 1
    naming the file, and the run after it rebuilds."""
    wh = copy_warehouse(batch1_warehouse, tmp_path)
    segs = sorted((wh / "_quarry" / "index").glob("run-*.seg"))
    assert [p.name.removeprefix("run-").removesuffix(".seg") for p in segs] == sorted(whr.run_ids(wh))
    seg = segs[0]
    data = bytearray(seg.read_bytes())
    if damage == "missing":
        seg.unlink()
    elif damage == "footer_byte":
        data[-40] ^= 0x01
        seg.write_bytes(bytes(data))
    elif damage == "truncated":
        seg.write_bytes(bytes(data[: len(data) - 40]))
    elif damage == "manifest":
        (wh / "_quarry" / "index" / "MANIFEST").write_text("{ not json")
    else:
        data[8 + 100] ^= 0x01  # inside the first block
        seg.write_bytes(bytes(data))
        rc, _, err = whr.run_quarry(whr.import_args(wh, corpus.batch(2), quiet=False))
        assert rc == 1, err
        assert "checksum" in err and str(seg.name) in err, err
    rc, _, err = whr.run_quarry(whr.import_args(wh, corpus.batch(2), quiet=False))
    assert rc == 0, err
    assert "index: rebuil" in err, err
    report = truthcheck.check(wh, corpus.root, batches=2, committed=False)
    assert report.ok, report.text()


def test_a_run_waits_for_the_lock_of_a_commit_and_gives_up_after_quarry_lock_wait(corpus, tmp_path):
    """A run holds the warehouse lock while it commits (here: held there); another run waits for it
    up to QUARRY_LOCK_WAIT seconds, then exits 3 naming the holder."""
    wh = tmp_path / "wh"
    with whr.HeldImport(wh, corpus.batch(1), point="staged") as held:
        assert held.wait_held(HOLD_TIMEOUT_S), (
            f"no '{held.hold_line}' within {HOLD_TIMEOUT_S} s (exit {held.proc.poll()}):\n{held.stderr()}")
        rc, out, err = whr.run_import(wh, corpus.batch(2), env={"QUARRY_LOCK_WAIT": "1"})
        assert rc == 3, f"second import into a locked warehouse: exit {rc}\n{err}"
        assert "locked by another quarry run" in err and f"pid {held.proc.pid}" in err, err
        assert held.proc.poll() is None, "the holding import died while the second one ran"
    assert_ran(whr.run_import(wh, corpus.batch(1)), "import after the lock holder was killed")
    report = truthcheck.check(wh, corpus.root, batches=1, committed=False)
    assert report.ok, report.text()


def seed_expected():
    with open(whr.FIXTURES / "seed-page.expected.json", encoding="utf-8") as fh:
        return json.load(fh)


def test_seed_page_row_is_exactly_as_expected(quarry_binary, tmp_path):
    wh = tmp_path / "wh"
    assert_ran(whr.run_import(wh, SEED_INPUT), "import of the seed page")
    posts = whr.read_table(wh, "posts").to_pylist()
    assert len(posts) == 1
    row = posts[0]
    expected = seed_expected()
    got = {k: truthcheck.normalize(k, row[k]) if k in row else "<no such column>" for k in expected}
    want = {k: truthcheck.normalize(k, v) for k, v in expected.items()}
    diff = {k: (want[k], got[k]) for k in want if got[k] != want[k]}
    assert not diff, "column: (expected, got)\n" + "\n".join(f"{k}: {v}" for k, v in diff.items())

    assert (row["source_file"], row["source_offset"]) == (SEED_INPUT, 0)
    for s in truthcheck.SCORES:
        assert row[s + "_norm"] == pytest.approx(expected[s + "_score"] / 100)
    assert row["ids_consistent"] is True
    assert row["completeness"] == pytest.approx(1.0)
    assert row["content_fingerprint"]
    derived = truthcheck.expected_fields(expected)
    assert row["reading_time_est_min"] == pytest.approx(derived["reading_time_est_min"])
    if "quality_composite" in derived:
        assert row["quality_composite"] == pytest.approx(derived["quality_composite"])
    else:
        norms = [expected[s + "_score"] / 100 for s in truthcheck.SCORES]
        assert min(norms) <= row["quality_composite"] <= max(norms)

    runs = whr.runs_in_order(wh)
    assert len(runs) == 1
    got_run = {k: runs[0][k] for k in ("inputs", "files", "files_skipped", "pages", "imported",
                                       "duplicates", "rejected", "issues")}
    assert got_run == {"inputs": [SEED_INPUT], "files": 1, "files_skipped": 0, "pages": 1, "imported": 1,
                       "duplicates": 0, "rejected": 0, "issues": 0}
    assert row["run_id"] == runs[0]["run_id"]


def test_bad_pipeline_is_a_usage_error(quarry_binary, tmp_path):
    rc, _, err = whr.run_quarry(["import", "--pipeline", str(tmp_path / "missing.toml"),
                                 "--output", str(tmp_path / "wh"), SEED_INPUT])
    assert rc == 2, err
    rc, _, err = whr.run_quarry(["import", "--no-such-flag"])
    assert rc == 2, err


def comparable_rows(warehouse):
    """Every table's rows with run ids replaced by the run's ordinal and timestamps dropped."""
    order = {r["run_id"]: i for i, r in enumerate(whr.runs_in_order(warehouse))}
    out = {}
    for table in whr.DATA_TABLES + ("runs",):
        t = whr.read_table(warehouse, table)
        rows = [] if t is None else t.to_pylist()
        for r in rows:
            for k in ("ingested_at", "started_at", "finished_at", "ingest_date"):
                r.pop(k, None)
            for k in ("run_id", "first_run_id"):
                if k in r:
                    r[k] = order[r[k]]
        out[table] = sorted(rows, key=lambda r: json.dumps(r, sort_keys=True, default=str))
    return out


def test_rows_do_not_depend_on_thread_count(fixture_corpus, tmp_path):
    whs = {}
    for threads in (1, 2):
        wh = tmp_path / f"wh-{threads}"
        for b in range(1, fixture_corpus.batches + 1):
            args = whr.import_args(wh, fixture_corpus.batch(b)) + ["--threads", str(threads)]
            assert_ran(whr.run_quarry(args), f"--threads {threads} import of batch {b}")
        whs[threads] = comparable_rows(wh)
    for table in whs[1]:
        assert len(whs[1][table]) == len(whs[2][table]), table
        assert whs[1][table] == whs[2][table], f"{table} differs between --threads 1 and --threads 2"


def test_stdin_and_compressed_stdin_import(quarry_binary, tmp_path):
    import gzip
    import subprocess
    data = (whr.REPO_ROOT / SEED_INPUT).read_bytes()
    for n, payload in enumerate([data, gzip.compress(data)]):
        wh = tmp_path / f"wh-{n}"
        p = subprocess.run([str(quarry_binary)] + whr.import_args(wh, "-"), input=payload, capture_output=True,
                           cwd=whr.REPO_ROOT, timeout=300)
        assert p.returncode == 0, p.stderr.decode()
        posts = whr.read_table(wh, "posts").to_pylist()
        assert [(r["hash"], r["source_file"], r["source_offset"]) for r in posts] == \
            [("113b8413583934d18f4af6bc", "-", 0)]


def test_a_run_that_spills_its_hashes_dedupes_across_the_spills(corpus, tmp_path, monkeypatch):
    """A run's own hashes spill to sorted files every N hashes (458,752; QUARRY_TEST_SPILL_HASHES sets
    it in debug builds): with 7, every batch spills many times, its duplicates of pages
    that went to disk are found, and the runs leave the exact truth; the spills are gone after."""
    monkeypatch.setenv("QUARRY_TEST_SPILL_HASHES", "7")
    wh = tmp_path / "wh"
    import_batches(wh, corpus, [1, 2, 3])
    report = truthcheck.check(wh, corpus.root, batches=3, committed=False)
    assert report.ok, report.text()
    assert truth_totals(corpus, 1)["posts"] > 10 * 7, "batch 1 spills many times"
    assert not list((wh / "_quarry").rglob("spill-*.seg")), "spill files left behind"


def test_a_run_writes_several_posts_files_past_the_row_limit(corpus, tmp_path, monkeypatch):
    """A run's posts go into files of at most N rows (1,048,576; QUARRY_TEST_POSTS_FILE_ROWS sets it in
    debug builds): every reader sees every row of every part, a kill after the posts parts moved in
    leaves no trace, and reruns and dedupe work across parts."""
    monkeypatch.setenv("QUARRY_TEST_POSTS_FILE_ROWS", "50")
    wh = tmp_path / "wh"
    import_batches(wh, corpus, [1])
    parts = sorted((wh / "posts").rglob("*-part-*.parquet"))
    assert len(parts) >= 2, sorted((wh / "posts").rglob("*.parquet"))
    with whr.HeldImport(wh, corpus.batch(2), point="posts") as held:
        assert held.wait_held(HOLD_TIMEOUT_S), f"no hold (exit {held.proc.poll()}):\n{held.stderr()}"
        held.kill()
    import_batches(wh, corpus, [2, 3])
    report = truthcheck.check(wh, corpus.root, batches=3, committed=False)
    assert report.ok, report.text()
    assert_same(whr.duck_snapshot(wh), truth_totals(corpus, 3), "DuckDB glob over every part")
    rc, out, err = whr.run_quarry(["query", wh, "SELECT count(*) AS n FROM posts", "--csv"])
    assert rc == 0 and int(out.splitlines()[-1]) == truth_totals(corpus, 3)["posts"], (out, err)
