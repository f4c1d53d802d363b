"""`quarry gen --minimal` and `--out -` end to end: the pages the bench prefills big warehouses with
import as posts, run after run, with no hash twice."""
import subprocess

import pyarrow.compute as pc

import warehouse as whr


def gen(out, pages, seed, *extra):
    rc, _, err = whr.run_quarry(["gen", "--minimal", "--pages", pages, "--seed", seed, "--out", out, *extra])
    assert rc == 0, f"quarry gen: exit {rc}\n{err}"


def test_minimal_corpora_import_as_posts_run_after_run(quarry_binary, tmp_path):
    wh = tmp_path / "wh"
    for seed in (1, 2, 3):
        gen(tmp_path / f"dump-{seed}", 1500, seed, "--files", "3", "--batches", "2")
        rc, _, err = whr.run_import(wh, tmp_path / f"dump-{seed}")
        assert rc == 0, f"import of seed {seed}: exit {rc}\n{err}"
    runs = whr.runs_in_order(wh)
    assert [(r["files"], r["pages"], r["imported"], r["duplicates"], r["rejected"]) for r in runs] == [
        (6, 1500, 1500, 0, 0)] * 3
    posts = whr.read_table(wh, "posts", columns=["hash", "difficulty", "quality_composite", "topic"])
    assert posts.num_rows == 4500
    assert pc.count_distinct(posts["hash"]).as_py() == 4500
    for col in ("difficulty", "quality_composite", "topic"):
        assert posts[col].null_count == 0, col


def test_stdout_stream_is_the_file_and_imports_from_stdin(quarry_binary, tmp_path):
    gen(tmp_path / "dir", 2000, 7)
    stream = subprocess.run([str(quarry_binary), "gen", "--minimal", "--pages", "2000", "--seed", "7", "--out", "-"],
                            capture_output=True, check=True).stdout
    assert stream == (tmp_path / "dir" / "dump-000.txt").read_bytes()
    wh = tmp_path / "wh"
    imp = subprocess.run([str(quarry_binary), *whr.import_args(wh, "-")], input=stream, capture_output=True)
    assert imp.returncode == 0, imp.stderr.decode()
    [run] = whr.runs_in_order(wh)
    assert (run["pages"], run["imported"]) == (2000, 2000)


def test_stdout_refuses_several_files(quarry_binary):
    rc, out, err = whr.run_quarry(["gen", "--minimal", "--pages", "10", "--out", "-", "--files", "2"])
    assert rc == 2, f"exit {rc}\n{err}"
    assert "--out -" in err and "--files" in err, err
    assert out == ""


def test_noisy_minimal_corpus_accounts_for_every_page(quarry_binary, tmp_path):
    gen(tmp_path / "dump", 3000, 11, "--noise", "1", "--files", "10")
    wh = tmp_path / "wh"
    rc, _, err = whr.run_import(wh, tmp_path / "dump")
    assert rc == 0, f"exit {rc}\n{err}"
    [run] = whr.runs_in_order(wh)
    assert run["pages"] == run["imported"] + run["duplicates"] + run["rejected"]
    assert run["pages"] >= 3000  # plus the truncated pages some files end with
    assert run["duplicates"] > 0 and run["rejected"] > 0 and run["imported"] > 2000
    reasons = set(whr.read_table(wh, "rejects", columns=["reason"])["reason"].to_pylist())
    assert reasons == {"no_meta", "missing_hash", "truncated"}
