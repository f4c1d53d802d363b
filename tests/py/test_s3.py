"""The warehouse on object storage: `s3://bucket/prefix` on a local S3 endpoint (moto, see s3.py).

The same contracts as the local tests, judged the same way: the corpus against truth.jsonl (three
batches, each imported by a stateless importer: a new, empty working folder per run), kills at every
commit point completed or undone by the next run, the Delta tables read by `deltalake`, polars'
`scan_delta` and DuckDB's `delta_scan`, reruns that add only a `runs` row, the lock as a lease,
a replay, and no secret anywhere quarry writes. A warehouse prefix is copied into a local folder
(`S3Server.mirror`) wherever a check reads files the way the local tests do.
"""
import json
import os
import subprocess
import time

import pytest

import truthcheck
import warehouse as whr
from s3 import KEY_ID, SECRET
from test_e2e import COUNTED_POINTS, HOLD_POINTS, HOLD_TIMEOUT_S, assert_ran, assert_same, truth_totals
from test_replay import assert_delta_like_plain, assert_like_baseline, broken_pipeline


@pytest.fixture(scope="module", params=["fixture-corpus", "generated-corpus"])
def corpus(request, quarry_binary):
    return request.getfixturevalue(request.param.replace("-", "_"))


def fresh_cache(tmp_path_factory) -> dict:
    """The environment of a stateless importer: a working folder nothing has used yet. Runs here
    follow each other, so the clean-up takes a dead run's uploads at once instead of sparing them
    for QUARRY_UPLOAD_GRACE (a live run's, in test_workers.py)."""
    return {"QUARRY_CACHE_DIR": str(tmp_path_factory.mktemp("cache")), "QUARRY_UPLOAD_GRACE": "0"}


def import_all(url, corpus, tmp_path_factory, batches=None):
    for b in batches or range(1, corpus.batches + 1):
        assert_ran(whr.run_import(url, corpus.batch(b), env=fresh_cache(tmp_path_factory)),
                   f"import of batch-{b} into {url}")


@pytest.fixture(scope="module")
def s3_full(corpus, s3_server, tmp_path_factory):
    """batch-1..3 imported in order into one S3 warehouse, each run from an empty working folder."""
    url = s3_server.new_warehouse("full")
    import_all(url, corpus, tmp_path_factory)
    return url


@pytest.fixture(scope="module")
def s3_full_copy(s3_full, s3_server, tmp_path_factory):
    return s3_server.mirror(s3_full, tmp_path_factory.mktemp("mirror") / "wh")


def delta_on_s3(s3_server, url, table, columns, engine):
    path = f"{url}/{table}"
    opts = s3_server.storage_options()
    if engine == "polars":
        import polars as pl
        return pl.scan_delta(path, storage_options=opts).select(columns).collect().to_arrow()
    from deltalake import DeltaTable
    return DeltaTable(path, storage_options=opts).to_pyarrow_table(columns=columns)


def delta_snapshot_on_s3(s3_server, url, engine="deltalake") -> dict:
    out = {}
    for table, key in (("posts", ["hash"]), ("rejects", ["source_file", "source_offset"]),
                       ("duplicates", ["hash", "source_file", "source_offset"])):
        t = delta_on_s3(s3_server, url, table, key, engine)
        rows = list(zip(*(t[k].to_pylist() for k in key)))
        out[table] = len(rows)
        out[table + "_keys"] = frozenset(r[0] if len(key) == 1 else r for r in rows)
    ids = delta_on_s3(s3_server, url, "runs", ["run_id"], engine)["run_id"].to_pylist()
    out["runs"], out["runs_keys"] = len(ids), frozenset(ids)
    return out


def test_s3_import_matches_truth(s3_full_copy, corpus):
    report = truthcheck.check(s3_full_copy, corpus.root)
    assert report.ok, report.text()
    want = truth_totals(corpus, corpus.batches)
    assert_same(whr.snapshot(s3_full_copy, committed=False), want, "every object of the tables")
    assert whr.orphan_rows(s3_full_copy) == {}


@pytest.mark.parametrize("engine", ["deltalake", "polars"])
def test_s3_delta_readers_see_exactly_the_truth(s3_server, s3_full, corpus, engine):
    assert_same(delta_snapshot_on_s3(s3_server, s3_full, engine), truth_totals(corpus, corpus.batches), engine)
    from deltalake import DeltaTable
    for table in whr.TABLES:
        p = DeltaTable(f"{s3_full}/{table}", storage_options=s3_server.storage_options()).protocol()
        assert (p.min_reader_version, p.min_writer_version) == (1, 2), (table, p)
    dates = delta_on_s3(s3_server, s3_full, "posts", ["ingest_date"], engine)["ingest_date"]
    assert str(dates.type) == "date32[day]" and dates.null_count == 0


def test_s3_checkpoints_asked_for_are_what_delta_readers_start_from(fixture_corpus, s3_server, tmp_path_factory,
                                                                     monkeypatch):
    """QUARRY_CHECKPOINT_EVERY=1: every commit checkpoints its log on S3 too (through the same log
    store), and the Delta readers and quarry's query read exactly the truth from them."""
    monkeypatch.setenv("QUARRY_CHECKPOINT_EVERY", "1")
    url = s3_server.new_warehouse("checkpoints")
    import_all(url, fixture_corpus, tmp_path_factory)
    keys = s3_server.keys(url)
    last = fixture_corpus.batches
    for table in ("posts", "runs"):
        assert f"{table}/_delta_log/{last:020}.checkpoint.parquet" in keys, sorted(keys)
        assert f"{table}/_delta_log/_last_checkpoint" in keys
    want = truth_totals(fixture_corpus, last)
    for engine in ("deltalake", "polars"):
        assert_same(delta_snapshot_on_s3(s3_server, url, engine), want, engine)
    rc, out, err = whr.run_quarry(["query", url, "SELECT count(*) AS n FROM posts", "--csv"])
    assert rc == 0 and out.splitlines() == ["n", str(want["posts"])], (out, err)


def test_s3_merged_digest_lists_let_a_stateless_rerun_skip_every_file(fixture_corpus, s3_server, tmp_path_factory,
                                                                      monkeypatch):
    """QUARRY_DIGEST_MERGE_RUNS=2: once two finished runs' digest lists are held by no merged list,
    a run's commit merges them into one object. A stateless rerun skips every file from the merged
    list with the runs' own lists gone, and from the own lists with the merged list gone."""
    monkeypatch.setenv("QUARRY_DIGEST_MERGE_RUNS", "2")
    url = s3_server.new_warehouse("digests")
    import_all(url, fixture_corpus, tmp_path_factory)
    manifest = json.loads(s3_server.get(url, "_quarry/digests/MANIFEST.json"))
    assert [len(f["runs"]) for f in manifest["files"]] == [2], manifest
    merged, runs = manifest["files"][0]["name"], manifest["files"][0]["runs"]
    n = sum(len(fixture_corpus.batch_files(b)) for b in range(1, fixture_corpus.batches + 1))

    def rerun_skips_every_file():
        every = [fixture_corpus.batch(b) for b in range(1, fixture_corpus.batches + 1)]
        rc, out, err = whr.run_quarry(whr.import_args(url, *every, quiet=False), env=fresh_cache(tmp_path_factory))
        assert rc == 0, err
        assert f"0 read, {n} skipped" in out + err, out + err

    own = {run: s3_server.get(url, f"_quarry/files/{run}.tsv") for run in runs}
    for run in runs:
        s3_server.delete(url, f"_quarry/files/{run}.tsv")
    rerun_skips_every_file()
    for run, body in own.items():
        s3_server.put(url, f"_quarry/files/{run}.tsv", body)
    s3_server.delete(url, f"_quarry/digests/{merged}")
    rerun_skips_every_file()


def test_s3_query_and_report_read_the_delta_snapshot(s3_full, corpus, tmp_path):
    rc, out, err = whr.run_quarry(["query", s3_full, "SELECT count(*) AS n FROM posts", "--csv"])
    assert rc == 0, err
    assert out.splitlines() == ["n", str(truth_totals(corpus, corpus.batches)["posts"])]
    html = tmp_path / "report.html"
    rc, _, err = whr.run_quarry(["report", s3_full, "--html", html])
    assert rc == 0 and html.stat().st_size > 1000, err
    assert s3_full in html.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def s3_fixture_warehouse(fixture_corpus, s3_server, tmp_path_factory):
    url = s3_server.new_warehouse("fixture")
    import_all(url, fixture_corpus, tmp_path_factory)
    return url


def duck_delta(location) -> dict:
    python = os.environ.get("QUARRY_DUCKDB14_PYTHON")
    assert python and os.path.exists(python), (
        "QUARRY_DUCKDB14_PYTHON must name the python of the DuckDB 1.4.4 venv (`make test` makes it)")
    proc = subprocess.run([python, str(whr.REPO_ROOT / "tests" / "py" / "duck_delta.py"), str(location)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.parametrize("where", ["local", "s3"])
def test_duckdb_delta_scan_reads_the_tables(where, fixture_warehouse, s3_fixture_warehouse, fixture_corpus):
    """DuckDB 1.4.4's delta_scan (the PyPI delta and httpfs extensions, loaded offline) reads each
    table through its log, local and on S3, to exactly the truth; ingest_date is a DATE."""
    got = duck_delta(fixture_warehouse if where == "local" else s3_fixture_warehouse)
    want = truth_totals(fixture_corpus, fixture_corpus.batches)
    for table in whr.DATA_TABLES:
        assert got[table] == want[table], (table, got[table], want[table])
    assert frozenset(got["posts_keys"]) == want["posts_keys"]
    assert got["runs"] == fixture_corpus.batches
    assert got["ingest_date_types"] == ["DATE"]


def test_s3_rerun_adds_only_runs_rows(fixture_corpus, s3_server, tmp_path_factory):
    url = s3_server.new_warehouse("rerun")
    import_all(url, fixture_corpus, tmp_path_factory, [1])
    before = s3_server.keys(url)
    import_all(url, fixture_corpus, tmp_path_factory, [1])
    after = s3_server.keys(url)
    data = lambda keys: {k: v for k, v in keys.items() if k.split("/")[0] in whr.DATA_TABLES}  # noqa: E731
    assert data(after) == data(before), "a rerun over the same inputs changed the data tables"
    new = sorted(set(after) - set(before))
    assert all(k.startswith(("runs/", "_quarry/files/")) for k in new), new
    runs = s3_server.mirror(url, tmp_path_factory.mktemp("rerun") / "wh")
    last = whr.runs_in_order(runs)[-1]
    assert (last["files_skipped"], last["pages"]) == (len(fixture_corpus.batch_files(1)), 0), last


def leftovers(s3_server, url) -> list[str]:
    """Objects of runs that never finished, and locks or redo logs left behind."""
    keys = s3_server.keys(url)
    runs = {k.removeprefix("runs/").removesuffix(".parquet") for k in keys
            if k.startswith("runs/") and k.endswith(".parquet")}
    bad = []
    for k in keys:
        name = k.rsplit("/", 1)[-1]
        if k.startswith("_quarry/files/") and name.removesuffix(".tsv") not in runs:
            bad.append(k)
        elif k.startswith("_quarry/index/run-") and name.removeprefix("run-").removesuffix(".seg") not in runs:
            bad.append(k)
        elif k.startswith(("_quarry/replace/", "_quarry/lock", "_quarry/staging/", "_quarry/uploads/")):
            bad.append(k)
        elif k.split("/")[0] in whr.DATA_TABLES and "_delta_log" not in k:
            run = name.removesuffix(".parquet").split("-part-")[0]
            if run not in runs:
                bad.append(k)
    return bad


@pytest.mark.parametrize("point", HOLD_POINTS + COUNTED_POINTS)
def test_s3_killed_import_is_undone_or_completed_by_the_next_run(point, fixture_corpus, s3_server,
                                                                 tmp_path_factory):
    """A run killed at any commit point: read through `runs`, the warehouse is as before (or, once
    its runs row is in place, it counts); the next run, from an empty working folder, takes over
    the dead run's lock at once, undoes or completes it, and then every reader sees the truth."""
    url = s3_server.new_warehouse(f"kill-{point}")
    import_all(url, fixture_corpus, tmp_path_factory, [1])
    counts = point in COUNTED_POINTS
    with whr.HeldImport(url, fixture_corpus.batch(2), point=point) as held:
        assert held.wait_held(HOLD_TIMEOUT_S), f"no '{held.hold_line}' (exit {held.proc.poll()}):\n{held.stderr()}"
        held.kill()
    seen = s3_server.mirror(url, tmp_path_factory.mktemp("killed") / "wh")
    assert_same(whr.snapshot(seen, committed=True), truth_totals(fixture_corpus, 2 if counts else 1),
                "read through runs after the kill")

    last = 3 if counts else 2
    rc, _, err = whr.run_quarry(whr.import_args(url, fixture_corpus.batch(last), quiet=False),
                                env=fresh_cache(tmp_path_factory))
    assert rc == 0, err
    assert "took over the lock of pid" in err and "its process is gone" in err, err
    assert ("delta: runs: rolled forward" in err) == (point == "runs-row"), err
    after = s3_server.mirror(url, tmp_path_factory.mktemp("after") / "wh")
    report = truthcheck.check(after, fixture_corpus.root, batches=last, committed=False)
    assert report.ok, report.text()
    assert whr.orphan_rows(after) == {}
    assert_same(delta_snapshot_on_s3(s3_server, url), truth_totals(fixture_corpus, last), "Delta after the rerun")
    assert leftovers(s3_server, url) == []


def lease(host: str, pid: int, expires_in_s: float) -> bytes:
    return json.dumps({"host": host, "pid": pid, "expires_ms": int((time.time() + expires_in_s) * 1000)}).encode()


def test_s3_a_run_gives_up_on_a_lease_held_past_quarry_lock_wait(fixture_corpus, s3_server):
    url = s3_server.new_warehouse("locked")
    with whr.HeldImport(url, fixture_corpus.batch(1), point="staged") as held:
        assert held.wait_held(HOLD_TIMEOUT_S), held.stderr()
        rc, _, err = whr.run_import(url, fixture_corpus.batch(2), env={"QUARRY_LOCK_WAIT": "1"})
        assert rc == 3, err
        assert f"pid {held.proc.pid} on" in err and "lease renewed until" in err, err


def test_s3_a_live_lease_of_another_host_is_respected(fixture_corpus, s3_server):
    url = s3_server.new_warehouse("lease-live")
    s3_server.put(url, "_quarry/lock", lease("elsewhere", 1, 600))
    before = s3_server.keys(url)
    rc, _, err = whr.run_import(url, fixture_corpus.batch(1), env={"QUARRY_LOCK_WAIT": "1"})
    assert rc == 3 and "pid 1 on elsewhere" in err, err
    assert s3_server.keys(url) == before, "a refused run wrote into the warehouse"
    assert json.loads(s3_server.get(url, "_quarry/lock"))["host"] == "elsewhere"


def test_s3_an_ended_lease_is_taken_over(fixture_corpus, s3_server, tmp_path_factory):
    url = s3_server.new_warehouse("lease-ended")
    import_all(url, fixture_corpus, tmp_path_factory, [1])
    # A crashed run elsewhere: its lease ended, its posts object is left (no runs row), and the
    # note that names it (a run notes its uploads before it makes them).
    s3_server.put(url, "_quarry/lock", lease("elsewhere", 1, -5))
    left = "posts/ingest_date=2026-01-01/20260101T000000.000000Z.parquet"
    s3_server.put(url, "_quarry/uploads/20260101T000000.000000Z.json", json.dumps([left]).encode())
    s3_server.put(url, left, b"PAR1")
    rc, _, err = whr.run_quarry(whr.import_args(url, fixture_corpus.batch(2), quiet=False),
                                env={"QUARRY_UPLOAD_GRACE": "0"})
    assert rc == 0, err
    assert "took over the lock of pid 1 on elsewhere (its lease ended" in err, err
    assert leftovers(s3_server, url) == []
    after = s3_server.mirror(url, tmp_path_factory.mktemp("lease") / "wh")
    report = truthcheck.check(after, fixture_corpus.root, batches=2, committed=False)
    assert report.ok, report.text()


def test_s3_a_run_renews_its_lease_while_it_works(fixture_corpus, s3_server, tmp_path_factory):
    """With a lease of 0.4 s (renewed every 0.1 s) a whole import keeps its lock and commits."""
    url = s3_server.new_warehouse("renew")
    rc, _, err = whr.run_quarry(whr.import_args(url, fixture_corpus.batch(1), quiet=False),
                                env={"QUARRY_LOCK_TTL": "0.4", **fresh_cache(tmp_path_factory)})
    assert rc == 0 and "renew" not in err, err
    assert_same(delta_snapshot_on_s3(s3_server, url), truth_totals(fixture_corpus, 1), "Delta after the run")
    assert s3_server.get(url, "_quarry/lock") is None, "the lock is released"


def test_s3_init_from_four_processes_makes_each_table_once(fixture_corpus, s3_server, tmp_path_factory):
    url = s3_server.new_warehouse("init")
    procs = [subprocess.Popen([str(whr.quarry_bin()), "init", url], stderr=subprocess.PIPE) for _ in range(4)]
    for p in procs:
        assert p.wait(120) == 0, p.stderr.read().decode()
    keys = s3_server.keys(url)
    for table in whr.TABLES:
        logs = sorted(k for k in keys if k.startswith(f"{table}/_delta_log/"))
        assert logs == [f"{table}/_delta_log/00000000000000000000.json"], logs
    import_all(url, fixture_corpus, tmp_path_factory, [1])
    assert_same(delta_snapshot_on_s3(s3_server, url), truth_totals(fixture_corpus, 1), "Delta after init + import")


def test_no_secret_reaches_a_log_an_error_or_the_warehouse(fixture_corpus, s3_server, tmp_path_factory):
    url = s3_server.new_warehouse("secret")
    rc, out, err = whr.run_quarry(whr.import_args(url, fixture_corpus.batch(1), quiet=False),
                                  env={"RUST_LOG": "trace", **fresh_cache(tmp_path_factory)})
    assert rc == 0, err[-3000:]
    assert SECRET not in out + err and KEY_ID not in out + err
    for key in s3_server.keys(url):
        body = s3_server.get(url, key)
        assert SECRET.encode() not in body and KEY_ID.encode() not in body, key
    rc, out, err = whr.run_import("s3://no-such-bucket-here/wh", fixture_corpus.batch(1))
    assert rc == 1 and "s3://no-such-bucket-here" in err, err
    assert SECRET not in out + err and KEY_ID not in out + err
    rc, _, err = whr.run_import(f"s3://{KEY_ID}:{SECRET}@quarry-test/wh", fixture_corpus.batch(1))
    assert rc == 2 and "AWS_ACCESS_KEY_ID" in err and SECRET not in err and KEY_ID not in err, err


@pytest.mark.parametrize("point", [None, "replacements", "runs-row"])
def test_s3_replay_moves_the_fixed_pages(point, fixture_corpus, fixture_warehouse, s3_server, tmp_path_factory):
    """A replay with the fixed pipeline over an S3 warehouse a broken one filled (killed before its
    runs row, or after it with its swap pending, and then run again) ends like the baseline."""
    tmp = tmp_path_factory.mktemp("replay")
    pipeline = broken_pipeline(tmp, "hash-key")
    url = s3_server.new_warehouse("replay")
    for b in range(1, fixture_corpus.batches + 1):
        args = ["import", "--pipeline", pipeline, "--output", url, "--quiet", fixture_corpus.batch(b)]
        assert_ran(whr.run_quarry(args), f"broken import of batch {b}")
    # A reader whose working folder keeps copies of the rejects files from before the replay.
    reader = fresh_cache(tmp_path_factory)
    count = "SELECT count(*) AS n FROM rejects"
    assert whr.run_quarry(["query", url, count, "--csv"], env=reader)[0] == 0
    if point:
        with whr.HeldImport(url, point=point, args=whr.replay_args(url)) as held:
            assert held.wait_held(HOLD_TIMEOUT_S), held.stderr()
            held.kill()
    assert_ran(whr.run_quarry(whr.replay_args(url), env=fresh_cache(tmp_path_factory)), "replay")
    after = s3_server.mirror(url, tmp / "wh")
    assert_like_baseline(after, fixture_warehouse)
    assert_delta_like_plain(after)
    assert leftovers(s3_server, url) == []
    rc, out, err = whr.run_quarry(["query", url, count, "--csv"], env=reader)
    assert rc == 0, err
    assert out.splitlines()[1] == str(whr.num_rows(whr.read_table(after, "rejects"))), "a stale copy was read"
