"""Compare a quarry warehouse with the truth.jsonl that dumpgen wrote beside its corpus.

    python tests/py/truthcheck.py WAREHOUSE CORPUS_DIR [--batches N] [--all-rows]

Batch N of the corpus is the Nth run of the warehouse by started_at. By default only rows whose
run_id has a runs row are read (as quarry's own queries do); --all-rows reads every file in the
table folders, as a plain pyarrow or DuckDB reader does, and then rows of unknown runs are errors.
"""
from __future__ import annotations

import argparse
import datetime
import gzip
import json
import math
import os
import re
import sys
import tomllib
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import warehouse as whr  # noqa: E402

POSTS_COLUMNS = [
    "hash", "title", "headings", "body", "topic", "summary", "ai_brief", "ai_outline",
    "stack", "tools", "checklist", "notes", "similar_posts", "code_language", "difficulty",
    "reading_time_min", "view_count",
    "quality_score", "freshness_score", "depth_score", "clarity_score",
    "quality_norm", "freshness_norm", "depth_norm", "clarity_norm",
    "revision_status", "revision_version", "last_reviewed", "reference",
    "flag_ai_generated_style", "flag_has_images", "flag_image_heavy", "flag_needs_human_review",
    "entities", "image_sources", "source_id", "generator", "scenario", "paragraphs_declared", "seed",
    "extra_meta", "unparsed_meta",
    "word_count", "paragraph_count", "reading_time_est_min", "quality_composite", "completeness",
    "ids_consistent", "content_fingerprint", "issues",
    "source_file", "source_offset", "run_id", "ingested_at",
]
SCORES = ("quality", "freshness", "depth", "clarity")
ACCURACY_REQUIRED = 0.999
SHOW_MISMATCHES = 20


def pipeline_settings(path=None) -> dict:
    """words per minute and score weights from the pipeline file, where it names them."""
    path = Path(path or whr.REPO_ROOT / whr.PIPELINE)
    derive = tomllib.loads(path.read_text(encoding="utf-8")).get("derive", {}) if path.is_file() else {}
    scores = derive.get("score", [])
    weights = {s["norm"]: s["weight"] for s in scores if "norm" in s and "weight" in s}
    return {"words_per_minute": derive.get("words_per_minute", 200),
            "weights": weights if len(weights) == len(SCORES) else None}


def load_truth(corpus) -> list[dict]:
    with open(Path(corpus) / "truth.jsonl", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def read_dump(corpus, rel) -> bytes:
    path = Path(corpus) / rel
    data = path.read_bytes()
    if rel.endswith(".gz"):
        return gzip.decompress(data)
    if rel.endswith(".zst"):
        import zstandard  # only needed for .zst corpora

        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    return data


class SourcePaths:
    """Maps a warehouse source_file (the path as quarry was given it) to truth's corpus-relative path."""

    def __init__(self, corpus, known):
        self.corpus = Path(corpus)
        self.known = set(known)
        self.cache = {}

    def __call__(self, source_file):
        if source_file in self.cache:
            return self.cache[source_file]
        found = self._resolve(source_file)
        self.cache[source_file] = found
        return found

    def _resolve(self, sf):
        if sf is None:
            return None
        candidates = [os.path.relpath(sf, self.corpus)]
        absolute = Path(sf) if os.path.isabs(sf) else whr.REPO_ROOT / sf
        candidates.append(os.path.relpath(os.path.normpath(absolute), os.path.abspath(self.corpus)))
        for c in candidates:
            c = c.replace(os.sep, "/")
            if c in self.known:
                return c
        norm = sf.replace(os.sep, "/")
        suffixes = [k for k in self.known if norm.endswith("/" + k)]
        return max(suffixes, key=len) if suffixes else sf


def normalize(column, value):
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if column == "extra_meta":
        if value is None:
            return None
        items = value.items() if isinstance(value, dict) else value
        return {k: list(v) if v is not None else None for k, v in items}
    if column == "issues" and value is not None:
        return sorted(value)
    return value


def same(expected, got):
    if isinstance(expected, float) or isinstance(got, float):
        if expected is None or got is None or isinstance(expected, bool) or isinstance(got, bool):
            return expected is got
        return math.isclose(expected, got, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(expected, list) and isinstance(got, list):
        return len(expected) == len(got) and all(same(e, g) for e, g in zip(expected, got))
    if isinstance(expected, dict) and isinstance(got, dict):
        return expected.keys() == got.keys() and all(same(expected[k], got[k]) for k in expected)
    if isinstance(expected, bool) != isinstance(got, bool):
        return False
    return expected == got


def first_int(text):
    m = re.search(r"\d+", text or "")
    return int(m.group()) if m else None


def expected_fields(record, settings=None) -> dict:
    """The record's own columns plus those that follow from it and the pipeline's derive settings."""
    exp = {k: v for k, v in record.items() if k in POSTS_COLUMNS}
    if record.get("body") is None:
        exp.pop("body", None)
        exp.pop("word_count", None)
    for s in SCORES:
        key = s + "_score"
        if key in record:
            exp[s + "_norm"] = None if record[key] is None else record[key] / 100
    if all(k in record for k in ("reference", "source_id", "seed")):
        ids = [first_int(record["reference"]), first_int(record["source_id"]), record["seed"]]
        exp["ids_consistent"] = None if None in ids else len(set(ids)) == 1
    settings = settings or pipeline_settings()
    if exp.get("word_count") is not None:
        exp["reading_time_est_min"] = exp["word_count"] / settings["words_per_minute"]
    weights = settings["weights"]
    if weights and all(s + "_score" in record for s in SCORES):
        present = {n: exp[n] for n in weights if exp[n] is not None}
        exp["quality_composite"] = (sum(weights[n] * v for n, v in present.items())
                                    / sum(weights[n] for n in present)) if present else None
    return {k: normalize(k, v) for k, v in exp.items()}


def short(value, limit=160):
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


class Report:
    def __init__(self):
        self.errors: list[str] = []
        self.mismatches: list[tuple[str, str, object, object]] = []
        self.compared = 0
        self.equal = 0

    def error(self, msg):
        self.errors.append(msg)

    def expect_equal(self, what, expected, got):
        if expected != got:
            self.error(f"{what}: expected {short(expected)}, got {short(got)}")

    @property
    def accuracy(self):
        return 1.0 if self.compared == 0 else self.equal / self.compared

    @property
    def ok(self):
        return not self.errors and self.compared > 0 and self.accuracy >= ACCURACY_REQUIRED

    def text(self) -> str:
        lines = [f"field accuracy: {self.equal}/{self.compared} = {self.accuracy:.5f} "
                 f"(need {ACCURACY_REQUIRED})"]
        if self.compared == 0:
            lines.append("no field was compared")
        per_column = Counter(col for _, col, _, _ in self.mismatches)
        if per_column:
            lines.append("mismatches per column: " + ", ".join(f"{c}={n}" for c, n in per_column.most_common()))
            for h, col, exp, got in self.mismatches[:SHOW_MISMATCHES]:
                lines.append(f"  {h} {col}: expected {short(exp)} vs got {short(got)}")
        lines.append(f"{len(self.errors)} errors")
        lines.extend("  " + e for e in self.errors[:200])
        if len(self.errors) > 200:
            lines.append(f"  ... {len(self.errors) - 200} more")
        return "\n".join(lines)


def _rows(warehouse, table, committed):
    t = whr.read_table(warehouse, table, committed=committed)
    return [] if t is None else t.to_pylist()


def check(warehouse, corpus, batches=None, committed=True) -> Report:
    """Compare the warehouse with truth for batches 1..batches (default: every batch in truth)."""
    rep = Report()
    truth = load_truth(corpus)
    n_batches = batches if batches is not None else max(r["batch"] for r in truth)
    truth = [r for r in truth if r["batch"] <= n_batches]
    by_batch = defaultdict(list)
    for r in truth:
        by_batch[r["batch"]].append(r)
    source = SourcePaths(corpus, {r["file"] for r in truth})

    runs = whr.runs_in_order(warehouse)
    if [r["run_id"] for r in runs] != sorted(r["run_id"] for r in runs):
        rep.error("run_id order differs from started_at order: "
                  f"{[r['run_id'] for r in runs]}")
    if len(runs) < n_batches:
        rep.error(f"runs: {len(runs)} rows for {n_batches} batches")
    batch_of_run = {}
    run_of_batch = {}
    for i, run in enumerate(runs):
        if i < n_batches:
            batch_of_run[run["run_id"]] = i + 1
            run_of_batch[i + 1] = run["run_id"]
        elif run.get("pages") != 0:
            rep.error(f"run {run['run_id']} beyond the {n_batches} batches read {run.get('pages')} pages")

    for b in range(1, n_batches + 1):
        if b not in run_of_batch:
            continue
        run = runs[b - 1]
        disp = Counter(r["disposition"] for r in by_batch[b])
        pages = run.get("pages")
        parts = (run.get("imported"), run.get("duplicates"), run.get("rejected"))
        if None in parts or pages != sum(parts):
            rep.error(f"batch {b} run {run['run_id']}: pages {pages} != imported+duplicates+rejected {parts}")
        rep.expect_equal(f"batch {b} runs.pages", len(by_batch[b]), pages)
        rep.expect_equal(f"batch {b} runs.imported", disp["imported"], run.get("imported"))
        rep.expect_equal(f"batch {b} runs.duplicates", disp["duplicate"], run.get("duplicates"))
        rep.expect_equal(f"batch {b} runs.rejected", disp["rejected"], run.get("rejected"))
        rep.expect_equal(f"batch {b} runs.files", len({r["file"] for r in by_batch[b]}), run.get("files"))
        rep.expect_equal(f"batch {b} runs.files_skipped", 0, run.get("files_skipped"))
        with_issues = sum(1 for r in by_batch[b] if r["disposition"] == "imported" and r["record"]["issues"])
        rep.expect_equal(f"batch {b} runs.issues", with_issues, run.get("issues"))

    posts = _rows(warehouse, "posts", committed)
    rejects = _rows(warehouse, "rejects", committed)
    duplicates = _rows(warehouse, "duplicates", committed)

    for table, rows in (("posts", posts), ("rejects", rejects), ("duplicates", duplicates)):
        unknown = Counter(r["run_id"] for r in rows if r["run_id"] not in batch_of_run)
        if unknown:
            rep.error(f"{table}: rows of runs that are not batch runs: {dict(unknown)}")
        counts = Counter(batch_of_run.get(r["run_id"]) for r in rows)
        want_disp = {"posts": "imported", "rejects": "rejected", "duplicates": "duplicate"}[table]
        for b in range(1, n_batches + 1):
            want = sum(1 for r in by_batch[b] if r["disposition"] == want_disp)
            rep.expect_equal(f"batch {b} {table} rows", want, counts.get(b, 0))

    imported = {r["record"]["hash"]: r for r in truth if r["disposition"] == "imported"}
    batch_of_hash = {h: r["batch"] for h, r in imported.items()}
    got_hashes = Counter(p["hash"] for p in posts)
    dup_hashes = sorted(h for h, n in got_hashes.items() if n > 1)
    if dup_hashes:
        rep.error(f"posts: {len(dup_hashes)} hashes occur more than once, e.g. {dup_hashes[:5]}")
    missing = sorted(set(imported) - set(got_hashes))
    extra = sorted(set(got_hashes) - set(imported))
    if missing:
        rep.error(f"posts: {len(missing)} truth hashes missing, e.g. {missing[:5]}")
    if extra:
        rep.error(f"posts: {len(extra)} hashes not in truth, e.g. {extra[:5]}")

    _check_rejects(rep, corpus, truth, rejects, batch_of_run, source)
    _check_duplicates(rep, truth, duplicates, batch_of_run, run_of_batch, batch_of_hash, source)
    _check_fields(rep, imported, posts, batch_of_run, source)
    return rep


def _check_rejects(rep, corpus, truth, rejects, batch_of_run, source):
    want = {(r["file"], r["offset"]): r for r in truth if r["disposition"] == "rejected"}
    want_reasons = Counter((r["batch"], r["reason"]) for r in want.values())
    got_reasons = Counter((batch_of_run.get(r["run_id"]), r["reason"]) for r in rejects)
    rep.expect_equal("rejects per (batch, reason)", dict(sorted(want_reasons.items(), key=str)),
                     dict(sorted(got_reasons.items(), key=str)))

    offsets = defaultdict(list)
    for r in truth:
        offsets[r["file"]].append(r["offset"])
    dumps = {}
    seen = set()
    for row in rejects:
        key = (source(row["source_file"]), row["source_offset"])
        t = want.get(key)
        if t is None:
            rep.error(f"reject at {row['source_file']}:{row['source_offset']} ({row['reason']}) is not a truth reject")
            continue
        seen.add(key)
        rep.expect_equal(f"reject {key} reason", t["reason"], row["reason"])
        rep.expect_equal(f"reject {key} batch", t["batch"], batch_of_run.get(row["run_id"]))
        raw = row["raw"]
        if not isinstance(raw, (bytes, bytearray)):
            rep.error(f"reject {key} raw is {type(raw).__name__}, not bytes")
            continue
        if key[0] not in dumps:
            dumps[key[0]] = read_dump(corpus, key[0])
        data = dumps[key[0]]
        offset = key[1]
        later = [o for o in offsets[key[0]] if o > offset]
        end = min(later) if later else len(data)
        if not raw:
            rep.error(f"reject {key} raw is empty")
        elif data[offset:offset + len(raw)] != raw:
            rep.error(f"reject {key} raw differs from the file bytes at that offset: "
                      f"{short(bytes(raw[:60]))} vs {short(data[offset:offset + 60])}")
        elif data[offset + len(raw):end].strip(b" \t\r\n"):
            rep.error(f"reject {key} raw stops {end - offset - len(raw)} bytes before the next page "
                      f"({short(data[offset + len(raw):end][:60])} left out)")
    for key in sorted(set(want) - seen):
        rep.error(f"truth reject {key} ({want[key]['reason']}) not in rejects")


def _check_duplicates(rep, truth, duplicates, batch_of_run, run_of_batch, batch_of_hash, source):
    want = {(r["file"], r["offset"]): r for r in truth if r["disposition"] == "duplicate"}
    seen = set()
    for row in duplicates:
        key = (source(row["source_file"]), row["source_offset"])
        t = want.get(key)
        if t is None:
            rep.error(f"duplicate at {row['source_file']}:{row['source_offset']} is not a truth duplicate")
            continue
        seen.add(key)
        h = t["record"]["hash"]
        rep.expect_equal(f"duplicate {key} hash", h, row["hash"])
        rep.expect_equal(f"duplicate {key} batch", t["batch"], batch_of_run.get(row["run_id"]))
        rep.expect_equal(f"duplicate {key} first_run_id", run_of_batch.get(batch_of_hash.get(h)),
                         row.get("first_run_id"))
    for key in sorted(set(want) - seen):
        rep.error(f"truth duplicate {key} not in duplicates")


def _check_fields(rep, imported, posts, batch_of_run, source):
    by_hash = {p["hash"]: p for p in posts}
    settings = pipeline_settings()
    columns = set(posts[0]) if posts else set()
    for h, t in imported.items():
        row = by_hash.get(h)
        if row is None:
            continue
        rep.expect_equal(f"post {h} source_file", t["file"], source(row.get("source_file")))
        rep.expect_equal(f"post {h} source_offset", t["offset"], row.get("source_offset"))
        rep.expect_equal(f"post {h} batch", t["batch"], batch_of_run.get(row.get("run_id")))
        for col, exp in expected_fields(t["record"], settings).items():
            got = normalize(col, row[col]) if col in columns else "<no such column>"
            rep.compared += 1
            if same(exp, got):
                rep.equal += 1
            else:
                rep.mismatches.append((h, col, exp, got))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("warehouse")
    ap.add_argument("corpus")
    ap.add_argument("--batches", type=int, help="compare batches 1..N only (default: all in truth)")
    ap.add_argument("--all-rows", action="store_true", help="do not filter rows by runs")
    a = ap.parse_args(argv)
    rep = check(a.warehouse, a.corpus, batches=a.batches, committed=not a.all_rows)
    print(rep.text())
    print("OK" if rep.ok else "FAILED")
    return 0 if rep.ok else 1


if __name__ == "__main__":
    sys.exit(main())
