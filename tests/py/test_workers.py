"""Many workers, one warehouse: N `quarry import --shard I/N` processes at once, local and on S3.

First wins by commit order, so which copy of a duplicated hash is imported depends on which worker
commits first; what does not depend on it, and is checked: the hash set equals the truth's, every
posts row equals the truth record of its (file, offset), every page of the corpus is in exactly one
of posts, duplicates and rejects, the counts of duplicates and rejects by reason are the truth's,
and every run's accounting is exact (pages = imported + duplicates + rejected, over the warehouse
too). The same holds when workers are SIGKILLed mid-commit and started again, in random orders.
"""
import json
import random
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

import truthcheck
import warehouse as whr
from test_e2e import HOLD_POINTS, HOLD_TIMEOUT_S

WORKERS = 4


def worker_args(warehouse, corpus, shard, of=WORKERS):
    return whr.import_args(warehouse, corpus.arg) + ["--shard", f"{shard}/{of}", "--threads", "1"]


def start(warehouse, corpus, shard, env=None):
    return subprocess.Popen([str(whr.quarry_bin()), *map(str, worker_args(warehouse, corpus, shard))],
                            cwd=whr.REPO_ROOT, env=whr._env(env), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def run_all(warehouse, corpus, shards, env_of=lambda shard: None):
    procs = {s: start(warehouse, corpus, s, env_of(s)) for s in shards}
    results = {s: (p.wait(600), p.stderr.read().decode()) for s, p in procs.items()}
    for s, (rc, err) in results.items():
        assert rc == 0, f"worker {s}/{WORKERS}: exit {rc}\n{err}"
    return results


def check_against_truth(wh, corpus):
    """The invariants of the module doc; `wh` is a local folder (an S3 warehouse's copy)."""
    truth = truthcheck.load_truth(corpus.root)
    source = truthcheck.SourcePaths(corpus.root, {r["file"] for r in truth})
    at = {(r["file"], r["offset"]): r for r in truth}
    posts = whr.read_table(wh, "posts", committed=True).to_pylist()
    dups = whr.read_table(wh, "duplicates", committed=True)
    dups = [] if dups is None else dups.to_pylist()
    rejects = whr.read_table(wh, "rejects", committed=True)
    rejects = [] if rejects is None else rejects.to_pylist()

    want_hashes = {r["record"]["hash"] for r in truth if r["disposition"] == "imported"}
    got_hashes = Counter(p["hash"] for p in posts)
    assert max(got_hashes.values()) == 1, [h for h, n in got_hashes.items() if n > 1][:5]
    assert set(got_hashes) == want_hashes, (len(got_hashes), len(want_hashes))

    settings = truthcheck.pipeline_settings()
    bad = []
    for p in posts:
        t = at.get((source(p["source_file"]), p["source_offset"]))
        assert t is not None and t["record"] is not None, (p["source_file"], p["source_offset"])
        for col, exp in truthcheck.expected_fields(t["record"], settings).items():
            if not truthcheck.same(exp, truthcheck.normalize(col, p[col])):
                bad.append((p["hash"], col, exp, p[col]))
    assert not bad, f"{len(bad)} fields differ from the truth record of their (file, offset): {bad[:3]}"

    pages = Counter((source(r["source_file"]), r["source_offset"]) for r in posts + dups + rejects)
    assert pages == Counter(at.keys()), "every page exactly once in posts, duplicates or rejects"
    disp = Counter(r["disposition"] for r in truth)
    assert (len(dups), len(rejects)) == (disp["duplicate"], disp["rejected"])
    want_reasons = Counter(r["reason"] for r in truth if r["disposition"] == "rejected")
    assert Counter(r["reason"] for r in rejects) == want_reasons
    first = {p["hash"]: p["run_id"] for p in posts}
    wrong = [d for d in dups if first.get(d["hash"]) != d["first_run_id"]]
    assert not wrong, f"duplicates naming another run than the posts row's: {wrong[:3]}"

    runs = whr.runs_in_order(wh)
    for r in runs:
        assert r["pages"] == r["imported"] + r["duplicates"] + r["rejected"], r
    for table, key in (("posts", "imported"), ("duplicates", "duplicates"), ("rejects", "rejected")):
        rows = {"posts": posts, "duplicates": dups, "rejects": rejects}[table]
        assert len(rows) == sum(r[key] for r in runs), (table, len(rows), [r[key] for r in runs])
        per_run = Counter(x["run_id"] for x in rows)
        assert all(per_run.get(r["run_id"], 0) == r[key] for r in runs), (table, per_run)
    assert whr.orphan_rows(wh) == {}
    # The last commit left the warehouse marked synced, naming each Delta log's latest version
    # (what the next commit appends after without reading the log).
    from deltalake import DeltaTable
    mark = json.loads((Path(wh) / "_quarry" / "synced").read_text())
    assert mark["versions"] == {t: DeltaTable(str(Path(wh) / t)).version() for t in whr.TABLES}, mark


@pytest.fixture(params=["local", "s3"])
def place(request, tmp_path):
    """(warehouse location, a function that gives a local folder to read it from)."""
    if request.param == "local":
        wh = tmp_path / "wh"
        return str(wh), lambda: wh
    s3_server = request.getfixturevalue("s3_server")
    url = s3_server.new_warehouse("workers")
    copies = iter(range(1000))
    return url, lambda: s3_server.mirror(url, tmp_path / f"copy-{next(copies)}")


def test_four_workers_at_once_import_every_hash_once(place, generated_corpus, tmp_path_factory):
    url, read = place
    results = run_all(url, generated_corpus, range(WORKERS),
                      env_of=lambda s: {"QUARRY_CACHE_DIR": str(tmp_path_factory.mktemp(f"cache{s}"))})
    copy = read()
    check_against_truth(copy, generated_corpus)
    runs = whr.runs_in_order(copy)
    assert sorted(r["run_id"].rsplit("-", 1)[1] for r in runs) == [f"{i}of{WORKERS}" for i in range(WORKERS)]
    assert all(rc == 0 for rc, _ in results.values())


def test_four_workers_on_one_machine_sharing_one_working_folder(s3_server, generated_corpus, tmp_path):
    """Workers on one host with one QUARRY_CACHE_DIR start without the warehouse lock and take
    turns on the index copy there (its file lock), twice over: the second round reads the copy the
    first one left."""
    url = s3_server.new_warehouse("shared-cache")
    cache = {"QUARRY_CACHE_DIR": str(tmp_path / "cache")}
    rc, _, err = whr.run_quarry(["init", url], env=cache)
    assert rc == 0, err
    run_all(url, generated_corpus, range(WORKERS), env_of=lambda s: cache)
    run_all(url, generated_corpus, range(WORKERS), env_of=lambda s: cache)  # every file skipped
    copy = s3_server.mirror(url, tmp_path / "copy")
    check_against_truth(copy, generated_corpus)
    runs = whr.runs_in_order(copy)
    assert len(runs) == 2 * WORKERS and sum(r["files_skipped"] for r in runs[WORKERS:]) == sum(
        r["files"] for r in runs[:WORKERS]), runs
    assert list((tmp_path / "cache").rglob("copy.lock")), "the index copy was taken in turns"


@pytest.mark.parametrize("point", ["posts", "lists", "runs-row"])
def test_a_worker_killed_mid_commit_and_started_again(place, generated_corpus, point):
    url, read = place
    with whr.HeldImport(url, point=point, args=worker_args(url, generated_corpus, 0)) as held:
        assert held.wait_held(HOLD_TIMEOUT_S), held.stderr()
        others = {s: start(url, generated_corpus, s) for s in range(1, WORKERS)}
        held.kill()
        for s, p in others.items():
            assert p.wait(600) == 0, f"worker {s}: {p.stderr.read().decode()}"
    # The others are done: the restart may take the dead run's early uploads (S3) at once.
    run_all(url, generated_corpus, [0], env_of=lambda s: {"QUARRY_UPLOAD_GRACE": "0"})
    check_against_truth(read(), generated_corpus)


def test_a_worker_starts_while_another_commits_and_waits_only_to_commit(place, generated_corpus):
    """A start on a warehouse marked synced only reads: worker 1 starts and extracts while worker 0
    holds the lock in its commit, and waits for the lock only to commit its own run."""
    url, read = place
    rc, _, err = whr.run_quarry(["init", url])
    assert rc == 0, err
    with whr.HeldImport(url, point="staged", args=worker_args(url, generated_corpus, 0)) as held:
        assert held.wait_held(HOLD_TIMEOUT_S), held.stderr()
        args = whr.import_args(url, generated_corpus.arg, quiet=False) + ["--shard", f"1/{WORKERS}", "--threads", "1"]
        other = subprocess.Popen([str(whr.quarry_bin()), *args], cwd=whr.REPO_ROOT,
                                 env=whr._env({"RUST_LOG": "quarry=debug"}), stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        lines, waiting = [], threading.Event()

        def read_lines():
            for raw in other.stderr:
                lines.append(raw.decode("utf-8", "replace"))
                if "waiting for the warehouse lock" in lines[-1]:
                    waiting.set()
        reader = threading.Thread(target=read_lines, daemon=True)
        reader.start()
        assert waiting.wait(HOLD_TIMEOUT_S), "".join(lines)
        held.kill()  # the lock's holder is gone: worker 1 takes it over and commits
        assert other.wait(600) == 0, "".join(lines)
        reader.join(10)
    log = "".join(lines)
    begin = next(i for i, l in enumerate(lines) if "DEBUG quarry: begin of" in l)
    assert "look and index (no lock)" in lines[begin], lines[begin]
    assert [i for i, l in enumerate(lines) if "waiting for the warehouse lock" in l] > [begin], log
    # The commit's step times end with the look for digest lists to merge (after the lock), on S3 only.
    commit = next(l for l in lines if "DEBUG quarry: commit of" in l)
    assert commit.rstrip().endswith("s") and "unlock" in commit, commit
    assert ("digest lists" in commit) == str(url).startswith("s3://"), commit
    run_all(url, generated_corpus, [0, 2, 3], env_of=lambda s: {"QUARRY_UPLOAD_GRACE": "0"})
    check_against_truth(read(), generated_corpus)


@pytest.mark.parametrize("seed", range(4))
def test_random_interleavings_and_kills_leave_every_hash_once(seed, fixture_corpus, tmp_path):
    """Workers started in a random order at random moments, some held at a random commit point and
    killed while the others run, then every killed shard started again until all finished."""
    rng = random.Random(seed)
    wh = tmp_path / "wh"
    shards = list(range(WORKERS))
    rng.shuffle(shards)
    killed = set(rng.sample(shards, rng.randint(1, 2)))
    held, shot, plain = [], [], []
    for s in shards:
        if s in killed and rng.random() < 0.5:
            point = rng.choice(HOLD_POINTS + ("runs-row",))
            held.append(whr.HeldImport(wh, point=point, args=worker_args(wh, fixture_corpus, s)))
        elif s in killed:
            shot.append((rng.uniform(0.0, 1.5), start(wh, fixture_corpus, s)))
        else:
            plain.append((s, start(wh, fixture_corpus, s)))
    for delay, p in shot:  # SIGKILL wherever the worker is by then
        time.sleep(delay)
        p.kill()
        p.wait(30)
    for h in held:  # SIGKILL at a commit point (holding the lock: the others wait meanwhile)
        h.wait_held(HOLD_TIMEOUT_S)
        h.kill()
    for s, p in plain:
        assert p.wait(600) == 0, f"worker {s}: {p.stderr.read().decode()}"
    run_all(wh, fixture_corpus, sorted(killed))
    check_against_truth(wh, fixture_corpus)


def test_the_kubernetes_jobs_create_the_tables_first_and_shard_by_completion_index():
    """deploy/k8s: the init Job runs `quarry init`; the import Job is Indexed, its index is the
    shard, its shard count is its completions, and its failure policy matches quarry's exit codes."""
    import yaml
    k8s = whr.REPO_ROOT / "deploy" / "k8s"
    init = yaml.safe_load((k8s / "init-job.yaml").read_text())
    assert init["spec"]["template"]["spec"]["containers"][0]["args"][0] == "init"
    job, config = yaml.safe_load_all((k8s / "import-job.yaml").read_text())
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed" and spec["completions"] == spec["parallelism"]
    command = " ".join(spec["template"]["spec"]["containers"][0]["args"])
    assert f'--shard "$JOB_COMPLETION_INDEX/{spec["completions"]}"' in command, command
    rules = {r["action"]: r["onExitCodes"]["values"] for r in spec["podFailurePolicy"]["rules"]}
    assert rules == {"FailJob": [2], "Ignore": [4, 5]}, rules
    assert config["kind"] == "ConfigMap" and config["data"]["QUARRY_WAREHOUSE"].startswith("s3://")
    # The command line the pods run parses (quarry's own argument check, no warehouse touched).
    rc, _, err = whr.run_quarry(["import", "--shard", "4/4", "x"])
    assert rc == 2 and "0 ≤ I < N" in err, err
