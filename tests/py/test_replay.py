"""quarry rejects replay: a fixed pipeline over the stored rejects of a broken one.

The fixture corpus is imported (3 batches, 3 runs) with a broken copy of the alphanode pipeline,
then replayed with the real one. The result is judged against a warehouse imported with the real
pipeline from the start (itself checked against truth.jsonl): the same posts (every column but the
run lineage), duplicates and rejects, every page of the corpus exactly once, exact accounting.
"""
import re
import shutil
from collections import Counter
from pathlib import Path

import pyarrow.compute as pc
import pytest

import truthcheck
import warehouse as whr

HOLD_TIMEOUT_S = 120
RUN_LINEAGE = ("run_id", "ingested_at", "ingest_date")
# Commit points of a replay: before its runs row (nothing may show) and after it (the swap pending).
PRE_COMMIT_POINTS = ("staged", "posts", "rejects", "duplicates", "replacements")


def broken_pipeline(tmp: Path, variant: str) -> Path:
    text = (whr.REPO_ROOT / whr.PIPELINE).read_text(encoding="utf-8")
    if variant == "hash-key":
        # The meta key `hash` is never found: nearly every page is missing_hash.
        new = re.sub(r'(?m)^key = "hash"$', 'key = "hsah"', text)
    else:
        # The trailer never matches: every file is one truncated page holding all its pages.
        new = re.sub(r"(?m)^trailer = .*$", r"trailer = '(?i)^similar\\s+postz$'", text)
    assert new != text, f"the {variant} edit did not apply to {whr.PIPELINE}"
    path = tmp / f"broken-{variant}.toml"
    path.write_text(new, encoding="utf-8")
    return path


def ok(result, what):
    rc, out, err = result
    assert rc == 0, f"{what}: exit {rc}\nstdout:\n{out}\nstderr:\n{err}"
    return err


@pytest.fixture(scope="module")
def baseline(fixture_corpus, quarry_binary, tmp_path_factory):
    """The corpus imported with the real pipeline, checked against truth.jsonl."""
    wh = tmp_path_factory.mktemp("replay-baseline") / "wh"
    for b in range(1, fixture_corpus.batches + 1):
        ok(whr.run_import(wh, fixture_corpus.batch(b)), f"baseline import of batch {b}")
    report = truthcheck.check(wh, fixture_corpus.root)
    assert report.ok, report.text()
    return wh


@pytest.fixture(scope="module", params=["hash-key", "trailer"])
def broken(request, fixture_corpus, quarry_binary, tmp_path_factory):
    """The corpus imported with a broken pipeline: (warehouse, variant)."""
    tmp = tmp_path_factory.mktemp(f"replay-broken-{request.param}")
    pipeline = broken_pipeline(tmp, request.param)
    wh = tmp / "wh"
    for b in range(1, fixture_corpus.batches + 1):
        args = ["import", "--pipeline", pipeline, "--output", wh, "--quiet", fixture_corpus.batch(b)]
        ok(whr.run_quarry(args), f"broken import of batch {b}")
    return wh, request.param


def copy(src, tmp_path) -> Path:
    dst = tmp_path / "wh"
    shutil.copytree(src, dst, symlinks=True)
    return dst


def table(wh, name, committed=True):
    return whr.read_table(wh, name, committed=committed)


def rows(wh, name, columns, committed=True) -> list[tuple]:
    t = table(wh, name, committed)
    if t is None:
        return []
    return sorted(zip(*(t[c].to_pylist() for c in columns)), key=repr)


def posts_without_lineage(wh, committed=True) -> list[dict]:
    t = table(wh, "posts", committed)
    t = t.drop_columns([c for c in RUN_LINEAGE if c in t.column_names])
    return sorted(t.to_pylist(), key=lambda r: r["hash"])


REJECT_COLS = ("source_file", "source_offset", "reason", "detail", "raw")
DUP_COLS = ("hash", "source_file", "source_offset")


def page_keys(wh, committed=True) -> Counter:
    """(source_file, source_offset) of every row of posts, duplicates and rejects, with multiplicity."""
    keys = Counter()
    for name in whr.DATA_TABLES:
        keys.update(rows(wh, name, ("source_file", "source_offset"), committed))
    return keys


def full_state(wh, committed=True) -> dict:
    """Everything a reader sees of the data tables (rows with their run ids) and the run ids."""
    return {
        "posts": rows(wh, "posts", ("hash", "source_file", "source_offset", "run_id"), committed),
        "duplicates": rows(wh, "duplicates", DUP_COLS + ("run_id", "first_run_id"), committed),
        "rejects": rows(wh, "rejects", REJECT_COLS + ("run_id",), committed),
        "runs": sorted(whr.run_ids(wh)),
    }


def pending_swaps(wh) -> list[Path]:
    d = wh / "_quarry" / "replace"
    return sorted(d.iterdir()) if d.is_dir() else []


def accounting_problems(wh) -> list[str]:
    """Per run pages = imported + duplicates + rejected; over the warehouse: posts rows = Σ imported,
    duplicates rows = Σ duplicates, rejects rows = Σ rejected − Σ files of replay runs."""
    problems = []
    runs = whr.runs_in_order(wh)
    for r in runs:
        if r["pages"] != r["imported"] + r["duplicates"] + r["rejected"]:
            problems.append(f"run {r['run_id']}: pages != imported + duplicates + rejected: {r}")
    n = {name: len(rows(wh, name, ("run_id",))) for name in whr.DATA_TABLES}
    want = {
        "posts": sum(r["imported"] for r in runs),
        "duplicates": sum(r["duplicates"] for r in runs),
        "rejects": sum(r["rejected"] for r in runs) - sum(r["files"] for r in runs if r["status"] == "replay"),
    }
    for name in whr.DATA_TABLES:
        if n[name] != want[name]:
            problems.append(f"{name} holds {n[name]} rows, the runs rows say {want[name]}")
    return problems


def assert_like_baseline(wh, baseline, committed=True):
    assert posts_without_lineage(wh, committed) == posts_without_lineage(baseline), "posts differ from the baseline"
    assert rows(wh, "duplicates", DUP_COLS, committed) == rows(baseline, "duplicates", DUP_COLS), "duplicates differ"
    assert rows(wh, "rejects", REJECT_COLS, committed) == rows(baseline, "rejects", REJECT_COLS), "rejects differ"
    keys = page_keys(wh, committed)
    assert keys == page_keys(baseline), "the pages covered differ from the baseline"
    assert max(keys.values()) == 1, f"pages twice: {[k for k, v in keys.items() if v > 1][:5]}"


def test_broken_import_rejects_most_pages(broken, baseline):
    wh, variant = broken
    assert len(rows(wh, "posts", ("hash",))) == 0, "the broken pipeline imported pages"
    reasons = Counter(r[0] for r in rows(wh, "rejects", ("reason",)))
    expected = "missing_hash" if variant == "hash-key" else "truncated"
    assert reasons[expected] >= (100 if variant == "hash-key" else 9), reasons


def test_replay_moves_the_fixed_pages(broken, baseline, fixture_corpus, tmp_path):
    wh = copy(broken[0], tmp_path)
    rejects_before = len(rows(wh, "rejects", ("run_id",)))
    runs_before = whr.run_ids(wh)

    err = ok(whr.run_quarry(whr.replay_args(wh, quiet=False)), "replay")
    assert "quarry rejects replay: run" in err, err

    assert_like_baseline(wh, baseline)
    # Every page of the corpus exactly once, by (source_file, source_offset).
    truth = Counter((f"{fixture_corpus.arg}/{r['file']}", r["offset"])
                    for r in truthcheck.load_truth(fixture_corpus.root))
    assert page_keys(wh) == truth
    assert accounting_problems(wh) == []

    [replay] = [r for r in whr.runs_in_order(wh) if r["run_id"] not in runs_before]
    assert replay["status"] == "replay" and replay["inputs"] == ["rejects"], replay
    assert replay["files"] + replay["files_skipped"] == rejects_before, replay
    assert replay["imported"] == len(rows(baseline, "posts", ("hash",))), replay
    # Posts, duplicates and new rejects belong to the replay run; the rows left keep their run.
    for name in ("posts", "duplicates"):
        assert set(r[0] for r in rows(wh, name, ("run_id",))) == {replay["run_id"]}, name
    left = set(r[0] for r in rows(wh, "rejects", ("run_id",)))
    if broken[1] == "hash-key":
        assert left <= runs_before, "rows that fail the same way were moved"
    else:
        assert left == {replay["run_id"]}, "truncated multi-page rows must all be replayed"
    assert pending_swaps(wh) == []
    assert_delta_like_plain(wh)


def assert_delta_like_plain(wh):
    """The tables' Delta logs list the files plain readers read: a replay's rewritten rejects files
    (at their new size), and nothing of a run that never finished."""
    got, want = whr.delta_snapshot(wh), whr.snapshot(wh, committed=False)
    assert got == want, whr.snapshot_diff(got, want)


def test_replay_again_adds_only_a_runs_row(broken, baseline, tmp_path):
    wh = copy(broken[0], tmp_path)
    ok(whr.run_replay(wh), "first replay")
    before = full_state(wh)
    files_before = {p.relative_to(wh): p.read_bytes() for p in wh.glob("*/**/*.parquet") if p.parts[-2] != "runs"}

    ok(whr.run_replay(wh), "second replay")
    after = full_state(wh)
    assert len(after["runs"]) == len(before["runs"]) + 1
    assert {k: v for k, v in after.items() if k != "runs"} == {k: v for k, v in before.items() if k != "runs"}
    files_after = {p.relative_to(wh): p.read_bytes() for p in wh.glob("*/**/*.parquet") if p.parts[-2] != "runs"}
    assert files_after == files_before, "the second replay changed table files"
    last = whr.runs_in_order(wh)[-1]
    assert (last["files"], last["pages"], last["imported"], last["duplicates"], last["rejected"]) == (0, 0, 0, 0, 0)
    assert last["files_skipped"] == len(before["rejects"])
    assert accounting_problems(wh) == []
    assert_like_baseline(wh, baseline)


def test_import_after_replay_finds_its_duplicates(broken, baseline, fixture_corpus, tmp_path):
    """The replayed posts hold their hashes: importing a fresh copy of batch 1 gives only duplicates."""
    wh = copy(broken[0], tmp_path)
    ok(whr.run_replay(wh), "replay")
    fresh = tmp_path / "again"
    shutil.copytree(fixture_corpus.root / "batch-1", fresh)
    for f in fresh.iterdir():  # new bytes, so the file is not skipped as already imported
        if f.suffix == ".txt":
            f.write_bytes(f.read_bytes() + b"\n")
    ok(whr.run_import(wh, fresh), "import after the replay")
    last = whr.runs_in_order(wh)[-1]
    assert last["imported"] == 0 and last["duplicates"] > 0, last
    assert accounting_problems(wh) == []


@pytest.mark.parametrize("point", PRE_COMMIT_POINTS + ("runs-row", "committed"))
def test_killed_replay(broken, baseline, tmp_path, point):
    wh = copy(broken[0], tmp_path)
    before = full_state(wh)
    before_all = full_state(wh, committed=False)

    with whr.HeldImport(wh, point=point, args=whr.replay_args(wh)) as held:
        assert held.wait_held(HOLD_TIMEOUT_S), (
            f"no '{held.hold_line}' within {HOLD_TIMEOUT_S} s (exit {held.proc.poll()}):\n{held.stderr()}")
        held.kill()

    if point in PRE_COMMIT_POINTS:
        assert full_state(wh) == before, f"killed at {point}: the warehouse read through runs changed"
        if point == "staged":
            assert full_state(wh, committed=False) == before_all, "staged files are visible"
    else:
        # The runs row exists: the replay counts, and its swap of the rejects files is pending.
        assert len(full_state(wh)["runs"]) == len(before["runs"]) + 1
        assert pending_swaps(wh), "no pending swap after the runs row"

    # The next run (here an import with nothing new) cleans up: drops or finishes the replay.
    ok(whr.run_quarry(["import", "--pipeline", whr.PIPELINE, "--output", wh, "--quiet", "tests/fixtures/seed-page.txt"]),
       "the next run")
    assert whr.orphan_rows(wh) == {}, "rows of the killed replay are left"
    assert pending_swaps(wh) == []
    assert accounting_problems(wh) == []
    state = full_state(wh, committed=False)
    if point in PRE_COMMIT_POINTS:
        # Any reader (no runs filter) sees the warehouse as before, plus the seed page's run.
        assert {k: state[k] for k in ("duplicates", "rejects")} == {k: before[k] for k in ("duplicates", "rejects")}
        assert len(state["posts"]) == len(before["posts"]) + 1
        ok(whr.run_replay(wh), "the replay again")
    # Finished (rolled forward, or replayed again): the baseline plus the seed page.
    posts = table(wh, "posts", committed=False)
    seed = posts.filter(pc.equal(posts["source_file"], "tests/fixtures/seed-page.txt"))
    assert seed.num_rows <= 1
    keys = page_keys(wh, committed=False)
    assert max(keys.values()) == 1, "a page is in the warehouse twice"
    baseline_keys = page_keys(baseline)
    assert set(keys) - baseline_keys.keys() <= {("tests/fixtures/seed-page.txt", 0)}
    assert rows(wh, "rejects", REJECT_COLS, committed=False) == rows(baseline, "rejects", REJECT_COLS)
    assert_delta_like_plain(wh)
