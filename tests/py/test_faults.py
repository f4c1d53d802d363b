"""Fault injection: SIGKILL at random moments, a full disk, unwritable outputs, unreadable inputs,
damaged compressed files, two runs at once. The warehouse must always read as a sequence of
complete runs, and every error must name its path."""
import gzip
import os
import random
import shutil
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import faults
import truthcheck
import warehouse as whr
from test_e2e import truth_totals

KILLS_PER_BATCH = int(os.environ.get("QUARRY_FAULT_KILLS", "8"))


def assert_same(got, want, what):
    diff = whr.snapshot_diff(got, want)
    assert not diff, f"{what}:\n{diff}"


def timed_import(warehouse, *inputs):
    t0 = time.monotonic()
    rc, _, err = whr.run_import(warehouse, *inputs)
    assert rc == 0, f"import of {inputs}: exit {rc}\n{err}"
    return time.monotonic() - t0


# ---- SIGKILL at random moments ---------------------------------------------------------------

def test_random_sigkills_then_a_complete_run(fixture_corpus, tmp_path):
    """K imports of each batch are SIGKILLed at random delays, then one completes. After every kill
    the warehouse, read through runs, is exactly the earlier batches; at the end it is exactly the
    truth, and no row of a killed run is left anywhere."""
    seed = int(os.environ.get("QUARRY_FAULT_SEED", time.time_ns() % 1_000_000))
    rng = random.Random(seed)
    # How long a run takes here, to spread the kills over its whole life.
    durations = [timed_import(tmp_path / "calibrate", fixture_corpus.batch(b))
                 for b in range(1, fixture_corpus.batches + 1)]
    wh = tmp_path / "wh"
    kills = 0
    for b in range(1, fixture_corpus.batches + 1):
        want = truth_totals(fixture_corpus, b - 1)
        completed = False
        for k in range(KILLS_PER_BATCH):
            delay = rng.uniform(0.0, 0.85 * durations[b - 1])
            proc = subprocess.Popen([str(whr.quarry_bin()), *whr.import_args(wh, fixture_corpus.batch(b))],
                                    cwd=whr.REPO_ROOT, env=whr._env(None), stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            time.sleep(delay)
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
            _, err = proc.communicate(timeout=60)
            where = f"seed {seed}, batch {b}, kill {k} after {delay:.3f} s"
            if proc.returncode == 0:
                # It finished before the signal: that run is this batch's complete run.
                completed = True
                break
            assert proc.returncode == -signal.SIGKILL, f"{where}: exit {proc.returncode}\n{err.decode()}"
            got = whr.snapshot(wh, committed=True)
            if got["runs"] == b:
                # Killed after its runs row was written: the run is complete, and must be exactly it.
                assert_same(got, truth_totals(fixture_corpus, b), f"{where}: killed after its commit")
                completed = True
                break
            assert_same(got, want, f"{where}: read through runs")
            if whr.duck_has_files(wh, "runs"):
                duck = whr.duck_snapshot(wh, committed=True)
                assert duck["posts_keys"] == want["posts_keys"], f"{where}: DuckDB through runs"
            problems = faults.accounting_problems(wh)
            assert not problems, f"{where}: " + "\n".join(problems)
        if not completed:
            rc, _, err = whr.run_import(wh, fixture_corpus.batch(b))
            assert rc == 0, f"seed {seed}: the run after the kills of batch {b}: exit {rc}\n{err}"
        assert whr.orphan_rows(wh) == {}, f"seed {seed}: rows of killed runs left after batch {b}"
        report = truthcheck.check(wh, fixture_corpus.root, batches=b, committed=False)
        assert report.ok, f"seed {seed}, after batch {b}:\n{report.text()}"
        problems = faults.accounting_problems(wh)
        assert not problems, "\n".join(problems)
    assert_same(whr.snapshot(wh, committed=False), truth_totals(fixture_corpus, fixture_corpus.batches), "final")
    print(f"random SIGKILLs: {kills} processes killed (seed {seed})")
    # A kill can land after the commit (the run counts) or after the exit: most, not all, are real kills.
    assert kills >= 2 * fixture_corpus.batches, f"only {kills} imports were still running when killed (seed {seed})"


# ---- disk full -------------------------------------------------------------------------------

@pytest.fixture
def small_disk(tmp_path):
    mnt = tmp_path / "disk"
    why = faults.mount_tmpfs(mnt, "2m")
    if why:
        pytest.skip(why)
    yield mnt
    faults.umount(mnt)


@pytest.mark.parametrize("room", [0.0, 0.3, 0.8])
def test_disk_full_is_a_clear_error_and_changes_nothing(fixture_corpus, small_disk, tmp_path, room):
    """Batch 1 fits; then the disk is filled so that only `room` of what batch 2 writes fits: the
    run fails with exit 1 naming a path on that disk, the warehouse read through runs is as before,
    and after the disk grows the same import works and the warehouse is exactly the truth."""
    # What batch 2 writes, measured on a roomy disk.
    ref = tmp_path / "ref"
    timed_import(ref, fixture_corpus.batch(1))
    before_size = faults.tree_bytes(ref)
    timed_import(ref, fixture_corpus.batch(2))
    needed = faults.tree_bytes(ref) - before_size

    wh = small_disk / "wh"
    timed_import(wh, fixture_corpus.batch(1))
    before = whr.snapshot(wh, committed=True)
    filler = small_disk / "filler"
    with open(filler, "wb") as fh:
        fh.write(b"\0" * max(0, faults.free_bytes(small_disk) - int(room * needed)))
    run = faults.import_measured(wh, fixture_corpus.batch(2))
    assert run.rc == 1, f"import on a full disk (room {room} of {needed} bytes): {run}"
    first = run.stderr.strip().splitlines()[0] if run.stderr.strip() else ""
    assert first.startswith("quarry: error: ") and str(wh) in first, f"the error must name a path in {wh}: {run}"
    assert "no space left" in run.stderr.lower(), f"the error must say the disk is full: {run}"
    assert "panicked" not in run.stderr, run
    assert_same(whr.snapshot(wh, committed=True), before, "warehouse read through runs after a full disk")
    assert len(whr.runs_in_order(wh)) == 1

    filler.unlink()
    faults.remount(small_disk, "64m")
    rc, _, err = whr.run_import(wh, fixture_corpus.batch(2))
    assert rc == 0, f"import after the disk grew: exit {rc}\n{err}"
    report = truthcheck.check(wh, fixture_corpus.root, batches=2, committed=False)
    assert report.ok, report.text()
    assert whr.orphan_rows(wh) == {}
    assert not list((wh / "_quarry" / "staging").glob("*/*")), "staged files of the failed run are left"


def test_disk_full_in_the_middle_of_a_large_file_ends_the_run(quarry_binary, small_disk, tmp_path):
    """The posts writer fails while the splitter still has pages of the same file to hand out (two
    threads, one 130 MB file, a 2 MB disk; the first row group fails at 16,384 rows, the next posts
    part at 20,480 comes back with the error while the splitter is chunks ahead): the run must end
    with exit 1, not wait forever on the splitter (it once did: the splitter's channel outlived the
    scope that joins it)."""
    dump = tmp_path / "big"
    p = subprocess.run([str(quarry_binary), "gen", "--pages", "40000", "--out", str(dump)], capture_output=True)
    assert p.returncode == 0, p.stderr
    run = faults.measured(["import", "--output", str(small_disk / "wh"), "--quiet", "--threads", "2", str(dump)],
                          timeout=120)
    assert run.rc == 1, f"a full disk mid-file: {run}"
    assert "no space left" in run.stderr.lower(), run
    assert "panicked" not in run.stderr, run


# ---- permissions: run as an unprivileged user (root ignores permissions) ---------------------

@pytest.fixture
def open_dir():
    with faults.world_dir() as d:
        yield d


@pytest.fixture
def as_nobody(quarry_binary, open_dir):
    bin_dir = open_dir / "bin"
    bin_dir.mkdir()
    bin_dir.chmod(0o755)
    nobody = faults.Nobody(bin_dir)
    why = nobody.why_not()
    if why:
        pytest.skip(why)
    return nobody


def nobody_import(nobody, warehouse, *inputs):
    return nobody.import_(warehouse, *inputs)


def seed_copy(dst: Path) -> Path:
    shutil.copy(whr.FIXTURES / "seed-page.txt", dst)
    dst.chmod(0o644)
    return dst


def assert_names(run, path, rc=1):
    assert run.rc == rc, f"expected exit {rc}: {run}"
    assert f"{path}" in run.stderr, f"the error must name {path}: {run}"
    assert run.stderr.startswith("quarry: error: "), run
    assert "panicked" not in run.stderr, run


def test_read_only_output_dir(as_nobody, open_dir):
    dump = seed_copy(open_dir / "page.txt")
    ro = open_dir / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    run = nobody_import(as_nobody, ro / "wh", dump)
    assert_names(run, ro / "wh")
    assert "permission denied" in run.stderr.lower(), run
    assert not (ro / "wh").exists()


def test_read_only_existing_warehouse(as_nobody, open_dir):
    """A warehouse nobody may write (made by root): exit 1 naming it, the warehouse unchanged."""
    dump = seed_copy(open_dir / "page.txt")
    wh = open_dir / "wh"
    rc, _, err = whr.run_import(wh, whr.FIXTURES / "seed-page.txt")
    assert rc == 0, err
    before = whr.snapshot(wh, committed=False)
    subprocess.run(["chmod", "-R", "a+rX,go-w", str(wh)], check=True)
    run = nobody_import(as_nobody, wh, dump)
    assert_names(run, wh)
    assert_same(whr.snapshot(wh, committed=False), before, "a refused run changed the warehouse")


def test_output_parent_that_cannot_exist(as_nobody, open_dir):
    """The output's parent is missing and cannot be made (its own parent is a file, or read-only)."""
    dump = seed_copy(open_dir / "page.txt")
    afile = open_dir / "afile"
    afile.write_text("x")
    afile.chmod(0o644)
    run = nobody_import(as_nobody, afile / "missing" / "wh", dump)
    assert_names(run, afile / "missing")
    ro = open_dir / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    run = nobody_import(as_nobody, ro / "missing" / "wh", dump)
    assert_names(run, ro / "missing")


def test_missing_output_parent_is_created(quarry_binary, tmp_path):
    """A missing parent that can be made is made (documented: the warehouse folder is created)."""
    wh = tmp_path / "a" / "b" / "wh"
    rc, _, err = whr.run_import(wh, whr.FIXTURES / "seed-page.txt")
    assert rc == 0, err
    assert len(whr.runs_in_order(wh)) == 1


def test_unreadable_input_file(as_nobody, open_dir):
    """One input nobody may read, among readable ones: exit 1 naming it, nothing committed."""
    dumps = open_dir / "dumps"
    dumps.mkdir()
    dumps.chmod(0o755)
    seed_copy(dumps / "a.txt")
    secret = seed_copy(dumps / "b.txt")
    secret.chmod(0o000)
    wh = open_dir / "wh"
    wh.mkdir()
    wh.chmod(0o777)
    for inputs in ([dumps], [dumps / "a.txt", secret]):
        run = nobody_import(as_nobody, wh, *inputs)
        assert_names(run, secret)
        assert "permission denied" in run.stderr.lower(), run
        assert whr.run_ids(wh) == set(), "a failed run committed something"
    unreadable_dir = open_dir / "locked"
    unreadable_dir.mkdir()
    seed_copy(unreadable_dir / "c.txt")
    unreadable_dir.chmod(0o700)
    run = nobody_import(as_nobody, wh, unreadable_dir)
    assert_names(run, unreadable_dir)


# ---- damaged compressed files ----------------------------------------------------------------

def gen_dump(out: Path, pages: int, seed: int) -> Path:
    rc, _, err = whr.run_quarry(["gen", "--pages", pages, "--seed", seed, "--out", out, "--noise", "0.2"])
    assert rc == 0, err
    files = sorted(p for p in out.rglob("*.txt") if p.is_file())
    assert len(files) == 1, files
    return files[0]


def zstd_bytes(data: bytes) -> bytes:
    return subprocess.run(["zstd", "-q", "-c", "-3"], input=data, capture_output=True, check=True).stdout


def test_corrupt_gz_and_truncated_zst_are_file_rejects(quarry_binary, tmp_path):
    if shutil.which("zstd") is None:
        pytest.skip("zstd command not installed")
    texts = [gen_dump(tmp_path / f"gen{i}", 200, 100 + i).read_bytes() for i in range(4)]
    good = tmp_path / "good"
    dump = tmp_path / "dump"
    good.mkdir()
    dump.mkdir()
    (dump / "a-good.txt").write_bytes(texts[0])
    (dump / "c-good.txt.zst").write_bytes(zstd_bytes(texts[2]))
    gz = bytearray(gzip.compress(texts[1]))
    for i in range(len(gz) // 2, len(gz) // 2 + 64):
        gz[i] ^= 0x5A
    (dump / "b-corrupt.txt.gz").write_bytes(bytes(gz))
    zs = zstd_bytes(texts[3])
    (dump / "d-truncated.txt.zst").write_bytes(zs[: len(zs) * 2 // 3])
    for name in ("a-good.txt", "c-good.txt.zst"):
        shutil.copy(dump / name, good / name)

    ref = tmp_path / "ref"
    rc, _, err = whr.run_import(ref, good)
    assert rc == 0, err
    wh = tmp_path / "wh"
    run = faults.import_measured(wh, dump)
    assert run.rc == 4, f"a run with a corrupt .gz and a truncated .zst: {run}"
    assert "panicked" not in run.stderr

    rejects = whr.read_table(wh, "rejects").to_pylist()
    bad = {r["source_file"].rsplit("/", 1)[-1]: r for r in rejects if r["reason"] == "unreadable_file"}
    assert set(bad) == {"b-corrupt.txt.gz", "d-truncated.txt.zst"}, (
        f"unreadable_file rejects: {sorted(bad)}; all reasons: {Counter(r['reason'] for r in rejects)}")
    for name, r in bad.items():
        assert name in r["detail"] and r["detail"], r["detail"]
    # The good files import exactly as they do alone.
    def per_file(w):
        t = whr.read_table(w, "posts", columns=["source_file", "hash"])
        return Counter(s.rsplit("/", 1)[-1] for s in t["source_file"].to_pylist())
    got, want = per_file(wh), per_file(ref)
    for name in ("a-good.txt", "c-good.txt.zst"):
        assert got[name] == want[name] > 0, f"{name}: {got[name]} posts, {want[name]} when imported alone"
    runs = whr.runs_in_order(wh)
    assert len(runs) == 1 and runs[0]["status"] == "bad_input", runs
    problems = faults.accounting_problems(wh)
    assert not problems, "\n".join(problems)

    # The damaged files were not recorded as imported: fixed copies are imported by the next run.
    (dump / "b-corrupt.txt.gz").write_bytes(gzip.compress(texts[1]))
    (dump / "d-truncated.txt.zst").write_bytes(zstd_bytes(texts[3]))
    rc, _, err = whr.run_import(wh, dump)
    assert rc == 0, err
    last = whr.runs_in_order(wh)[-1]
    assert (last["files"], last["files_skipped"]) == (2, 2), last


# ---- two runs at once ------------------------------------------------------------------------

def start(warehouse, *inputs, wait=False):
    args = whr.import_args(warehouse, *inputs) + (["--wait"] if wait else [])
    return subprocess.Popen([str(whr.quarry_bin()), *args], cwd=whr.REPO_ROOT, env=whr._env(None),
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def assert_runs_not_interleaved(warehouse):
    """Each run's rows sit in that run's own files (runs may overlap in time: only their commits
    are serialized)."""
    for table in whr.DATA_TABLES:
        for f in (warehouse / table).rglob("*.parquet"):
            ids = set(pq.read_table(f, columns=["run_id"])["run_id"].to_pylist())
            assert ids == {f.stem}, f"{f} holds rows of runs {ids}"


@pytest.mark.parametrize("round_", range(3))
def test_two_imports_of_the_same_files_at_once_import_them_once(fixture_corpus, tmp_path, round_):
    """Both run; the one that commits second either began after the first's commit (it skips every
    file) or read the same files meanwhile: then it commits nothing and exits 3 (run it again)."""
    wh = tmp_path / "wh"
    procs = [start(wh, fixture_corpus.batch(1)), start(wh, fixture_corpus.batch(1))]
    results = [(p.wait(120), p.stderr.read().decode()) for p in procs]
    codes = sorted(rc for rc, _ in results)
    assert codes in ([0, 3], [0, 0]), f"exit codes {codes}:\n" + "\n".join(e for _, e in results)
    for rc, err in results:
        if rc == 3:
            assert "were imported by a run that committed while this one worked" in err, err
    report = truthcheck.check(wh, fixture_corpus.root, batches=1, committed=False)
    if codes == [0, 0]:
        # The second started after the first finished: it skipped every file.
        runs = whr.runs_in_order(wh)
        assert [r["pages"] for r in runs][1:] == [0], runs
    else:
        assert report.ok, report.text()
    assert_runs_not_interleaved(wh)


def test_two_imports_at_once_with_wait_both_finish(fixture_corpus, tmp_path):
    """Batch 1 and batch 2 at once with --wait: both finish (their commits one after the other);
    together they hold exactly the truth of both batches."""
    wh = tmp_path / "wh"
    procs = [start(wh, fixture_corpus.batch(1), wait=True), start(wh, fixture_corpus.batch(2), wait=True)]
    results = [(p.wait(300), p.stderr.read().decode()) for p in procs]
    assert [rc for rc, _ in results] == [0, 0], "\n".join(e for _, e in results)
    want = truth_totals(fixture_corpus, 2)
    got = whr.snapshot(wh, committed=False)
    assert got["posts_keys"] == want["posts_keys"]
    assert (got["posts"], got["rejects"], got["duplicates"], got["runs"]) == (
        want["posts"], want["rejects"], want["duplicates"], 2), got
    assert whr.orphan_rows(wh) == {}
    assert_runs_not_interleaved(wh)
    problems = faults.accounting_problems(wh)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name,data", [
    ("empty.txt.gz", b""),
    ("empty.txt.zst", b""),
    ("plain-text.txt.gz", (whr.FIXTURES / "seed-page.txt").read_bytes()),
    ("plain-text.txt.zst", (whr.FIXTURES / "seed-page.txt").read_bytes()),
    ("header-only.txt.gz", gzip.compress(b"")[:10]),
])
def test_a_file_that_is_not_what_its_name_says(quarry_binary, tmp_path, name, data):
    """Not gzip or zstd at all: a file-level reject (unreadable_file) naming the file, exit 4."""
    (tmp_path / name).write_bytes(data)
    wh = tmp_path / "wh"
    run = faults.import_measured(wh, tmp_path / name)
    assert run.rc == 4 and "panicked" not in run.stderr, run
    rejects = whr.read_table(wh, "rejects").to_pylist()
    assert [r["reason"] for r in rejects] == ["unreadable_file"], rejects
    assert name in rejects[0]["detail"], rejects[0]["detail"]
    problems = faults.accounting_problems(wh)
    assert not problems, "\n".join(problems)
