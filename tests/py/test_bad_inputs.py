"""The bad-input matrix: each input imports with issues or is rejected with a reason, never panics,
loses no page, and the run's peak memory stays under a bound."""
import os
import random
from collections import Counter

import pytest

import faults
import warehouse as whr

RSS_BOUND_MB = int(os.environ.get("QUARRY_RSS_BOUND_MB", "400"))
# Inputs whose one page reaches the 16 MiB page limit (page_too_large): the reject keeps those
# 16 MiB, and writing them costs copies (see test_a_page_at_the_limit_within_the_general_bound).
PAGE_LIMIT_CASES = ("line_100mb_no_newline", "line_300mb_no_newline", "page_100mb_many_lines")
PAGE_LIMIT_BOUND_MB = int(os.environ.get("QUARRY_PAGE_LIMIT_RSS_BOUND_MB", "512"))
HASH = "00aabbccddeeff0011223344"


def page(title="a title", body="a body line.\n", meta="", hash_=HASH, trailer="Similar Posts\n"):
    return (f"{title}\n{body}alphanode post meta\n{meta}hash: {hash_}\n{trailer}").encode()


def write(tmp_path, name, data: bytes):
    p = tmp_path / name
    p.write_bytes(data)
    return p


def write_stream(tmp_path, name, chunks):
    p = tmp_path / name
    with open(p, "wb") as fh:
        for c in chunks:
            fh.write(c)
    return p


def big_line(n_mb):
    block = b"a" * (1 << 20)
    for _ in range(n_mb):
        yield block


# name → (file name, how to write it, expected {disposition: count} with reasons, check of the posts row)
def cases(tmp_path):
    rng = random.Random(7)
    return {
        "empty": lambda: write(tmp_path, "empty.txt", b""),
        "binary": lambda: write(tmp_path, "binary.txt", rng.randbytes(4 << 20)),
        "nul_bytes": lambda: write(tmp_path, "nul.txt", page(
            title="ti\0tle", body="bo\0dy \0 line.\n\0\n", meta="topic: a\0b\nview count: 12\0 34\n")),
        "line_100mb_no_newline": lambda: write_stream(tmp_path, "line.txt", big_line(100)),
        # Held whole, this line alone would break the memory bound.
        "line_300mb_no_newline": lambda: write_stream(tmp_path, "line300.txt", big_line(300)),
        "page_100mb_many_lines": lambda: write_stream(tmp_path, "manylines.txt",
                                                      (b"a" * 1023 + b"\n" for _ in range(100 << 10))),
        "page_without_trailer": lambda: write(tmp_path, "notrailer.txt", page(trailer="")),
        "only_meta": lambda: write(tmp_path, "onlymeta.txt", b"alphanode post meta\nhash: " + HASH.encode()
                                   + b"\nSimilar Posts\n"),
        "repeated_key": lambda: write(tmp_path, "repeat.txt", page(
            meta="topic: first\ntopic: second\nscore\n- quality: 50\nscore\n- quality: 60\n")),
        "bullets_100k": lambda: write(tmp_path, "bullets.txt", page(
            meta="stack\n" + "".join(f"- item {i}\n" for i in range(100_000)))),
        "meta_value_10mb": lambda: write(tmp_path, "bigvalue.txt", page(
            meta="summary: " + "word " * (2 << 20) + "\n")),
    }


EXPECT = {
    "empty": {},
    "binary": None,  # whatever it is, every page accounted for
    "nul_bytes": {"imported": 1},
    "line_100mb_no_newline": {"rejected:page_too_large": 1},
    "line_300mb_no_newline": {"rejected:page_too_large": 1},
    "page_100mb_many_lines": {"rejected:page_too_large": 1},
    "page_without_trailer": {"rejected:truncated": 1},
    "only_meta": {"imported": 1},
    "repeated_key": {"imported": 1},
    "bullets_100k": {"imported": 1},
    "meta_value_10mb": {"imported": 1},
}


def dispositions(wh) -> Counter:
    out = Counter()
    posts = whr.read_table(wh, "posts", columns=["hash"])
    out["imported"] += whr.num_rows(posts)
    rejects = whr.read_table(wh, "rejects", columns=["reason"])
    for r in ([] if rejects is None else rejects["reason"].to_pylist()):
        out[f"rejected:{r}"] += 1
    dups = whr.read_table(wh, "duplicates", columns=["hash"])
    out["duplicate"] += whr.num_rows(dups)
    return Counter({k: v for k, v in out.items() if v})


@pytest.mark.parametrize("name", list(EXPECT))
def test_bad_input(quarry_binary, tmp_path, name):
    path = cases(tmp_path)[name]()
    wh = tmp_path / "wh"
    run = faults.import_measured(wh, path)
    assert "panicked" not in run.stderr, run
    assert run.rc == 0, run
    bound = PAGE_LIMIT_BOUND_MB if name in PAGE_LIMIT_CASES else RSS_BOUND_MB
    assert run.peak_rss_mb < bound, f"{name}: peak RSS over {bound} MB: {run}"
    problems = faults.accounting_problems(wh)
    assert not problems, "\n".join(problems)
    runs = whr.runs_in_order(wh)
    assert len(runs) == 1 and runs[0]["files"] == 1, runs
    got = dispositions(wh)
    if EXPECT[name] is not None:
        assert got == Counter(EXPECT[name]), f"{name}: {dict(got)}"
    else:
        assert sum(got.values()) == runs[0]["pages"]
    posts = whr.read_table(wh, "posts")
    row = posts.to_pylist()[0] if posts is not None and posts.num_rows == 1 else None
    if name == "nul_bytes":
        assert row["title"] == "ti\0tle" and row["topic"] == "a\0b", row
        assert row["view_count"] is None and row["issues"] == ["view_count:unparsable"], row
    elif name == "only_meta":
        assert row["hash"] == HASH and row["title"] is None and row["body"] is None, row
    elif name == "repeated_key":
        assert row["topic"] == "first" and row["quality_score"] == 50, row
        assert row["unparsed_meta"] == ["topic: second", "score", "- quality: 60"], row["unparsed_meta"]
    elif name == "bullets_100k":
        assert len(row["stack"]) == 100_000 and row["stack"][-1] == "item 99999"
    elif name == "meta_value_10mb":
        assert len(row["summary"]) == len("word " * (2 << 20)) - 1
    elif name in ("line_100mb_no_newline", "line_300mb_no_newline", "page_100mb_many_lines",
                  "page_without_trailer"):
        rej = whr.read_table(wh, "rejects").to_pylist()[0]
        assert rej["source_offset"] == 0 and rej["detail"], rej
        if name != "page_without_trailer":
            assert len(rej["raw"]) == 16 << 20, len(rej["raw"])


def test_memory_does_not_grow_with_the_line(quarry_binary, tmp_path):
    """A 300 MB line costs no more than a 100 MB one: the splitter holds at most the page limit."""
    c = cases(tmp_path)
    peaks = {}
    for name in ("line_100mb_no_newline", "line_300mb_no_newline"):
        path = c[name]()
        run = faults.import_measured(tmp_path / f"wh-{name}", path)
        assert run.rc == 0, run
        peaks[name] = run.peak_rss_mb
        path.unlink()
    assert peaks["line_300mb_no_newline"] < peaks["line_100mb_no_newline"] + 48, peaks


def test_a_page_at_the_limit_within_the_general_bound(quarry_binary, tmp_path):
    path = cases(tmp_path)["line_100mb_no_newline"]()
    run = faults.import_measured(tmp_path / "wh", path)
    assert run.rc == 0, run
    assert run.peak_rss_mb < RSS_BOUND_MB, f"peak RSS over {RSS_BOUND_MB} MB: {run}"



def dump_folder(root, loop):
    """The fixture batch as a folder, one dump a level down in `a/`; with `loop`, `a/loop -> ..`."""
    batch = whr.FIXTURES / "corpus" / "batch-1"
    (root / "a").mkdir(parents=True)
    for src, dst in (("dump-000.txt", "dump-000.txt"), ("dump-001.txt", "dump-001.txt"),
                     ("dump-002.txt.gz", "a/dump-002.txt.gz")):
        (root / dst).write_bytes((batch / src).read_bytes())
    if loop:
        (root / "a" / "loop").symlink_to("..")
    return root


def test_a_symlink_loop_in_a_dump_folder_is_one_warning(quarry_binary, tmp_path):
    """`a/loop -> ..` is skipped with one warning naming it; every other page imports (exit 0)."""
    counts = {}
    for loop in (False, True):
        folder = dump_folder(tmp_path / f"dumps-loop-{loop}", loop)
        wh = tmp_path / f"wh-loop-{loop}"
        rc, _, err = whr.run_quarry(["import", "--pipeline", whr.PIPELINE, "--output", wh, folder])
        assert rc == 0, err
        assert "panicked" not in err, err
        warnings = [line for line in err.splitlines() if " WARN quarry: " in line]
        if loop:
            assert len(warnings) == 1, err
            assert warnings[0].endswith(
                f" WARN quarry: {folder}/a/loop: skipped: a symbolic link that loops back to {folder}"), warnings
        else:
            assert warnings == [], err
        problems = faults.accounting_problems(wh)
        assert not problems, "\n".join(problems)
        runs = whr.runs_in_order(wh)
        assert len(runs) == 1 and runs[0]["files"] == 3, runs
        counts[loop] = (runs[0]["pages"], whr.num_rows(whr.read_table(wh, "posts")))
    assert counts[True] == counts[False] and counts[True][1] > 0, counts


def test_a_dangling_link_in_a_dump_folder_fails_the_run_naming_it(quarry_binary, tmp_path):
    """A walk error other than a loop still stops the run before anything is written."""
    folder = dump_folder(tmp_path / "dumps", loop=False)
    (folder / "a" / "gone.txt").symlink_to("missing.txt")
    wh = tmp_path / "wh"
    rc, _, err = whr.run_import(wh, folder)
    assert rc == 1, err
    assert err.startswith(f"quarry: error: {folder}/a/gone.txt: "), err
    assert whr.run_ids(wh) == set(), "a failed run committed something"
