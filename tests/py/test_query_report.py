"""`quarry query` and `quarry report` end to end on the fixture corpus (3 runs).

Query results are compared with what DuckDB computes over the same files; the HTML report is
loaded in headless Chromium (tests/browser/ensure-chromium.sh installs it) and its DOM checked.
"""
import csv
import io
import json
import math
import os
import re
import shutil
import subprocess
import tempfile
from collections import Counter
from pathlib import Path

import duckdb
import pytest

import warehouse as whr

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOT = os.environ.get("QUARRY_REPORT_SCREENSHOT")  # also save the screenshot there (for the README)


@pytest.fixture(scope="module")
def wh(fixture_warehouse):
    return fixture_warehouse


def query(wh, sql, *flags):
    rc, out, err = whr.run_quarry(["query", str(wh), sql, *flags])
    assert rc == 0, f"quarry query {sql!r}: exit {rc}\n{err}"
    return out


def query_json(wh, sql):
    return [json.loads(line) for line in query(wh, sql, "--json").splitlines()]


def duck(wh, sql):
    """DuckDB over the table folders (posts with its hive partition), rows as dicts."""
    con = duckdb.connect()
    for t in whr.TABLES:
        if whr.duck_has_files(wh, t):
            con.sql(f"CREATE VIEW {t} AS SELECT * FROM {whr.duck_source(wh, t)}")
    rel = con.sql(sql)
    return [dict(zip(rel.columns, r)) for r in rel.fetchall()]


def norm(rows):
    """Rows comparable across engines: dates and timestamps as ISO text, floats rounded."""
    out = []
    for r in rows:
        n = {}
        for k, v in r.items():
            if hasattr(v, "isoformat"):
                v = v.isoformat()
            elif isinstance(v, float):
                v = None if math.isnan(v) else round(v, 9)
            n[k] = v
        out.append(n)
    return out


def by_key(rows, *keys):
    return sorted(norm(rows), key=lambda r: tuple(str(r[k]) for k in keys))


def test_group_by_matches_duckdb(wh):
    sql = ("SELECT difficulty, count(*) AS posts, avg(quality_composite) AS quality, "
           "sum(word_count) AS words FROM posts GROUP BY difficulty")
    got = query_json(wh, sql)
    assert len(got) >= 2
    assert by_key(got, "difficulty") == by_key(duck(wh, sql), "difficulty")


def test_runs_and_rejects_match_duckdb(wh):
    sql = ("SELECT run_id, files, files_skipped, pages, imported, duplicates, rejected, issues, status "
           "FROM runs ORDER BY run_id")
    got = query_json(wh, sql)
    assert len(got) == 3
    assert norm(got) == norm(duck(wh, sql))
    for r in got:
        assert r["pages"] == r["imported"] + r["duplicates"] + r["rejected"]
    sql = "SELECT reason, count(*) AS n, sum(source_offset) AS offsets FROM rejects GROUP BY reason"
    got = query_json(wh, sql)
    assert got and by_key(got, "reason") == by_key(duck(wh, sql), "reason")


def test_every_hash_and_ingest_date_match_duckdb(wh):
    sql = "SELECT hash, run_id, ingest_date, source_file, source_offset FROM posts"
    got = query_json(wh, sql)
    want = duck(wh, sql)
    assert len(got) == len(want) > 100
    assert by_key(got, "hash") == by_key(want, "hash")
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d", r["ingest_date"]) for r in got)


def test_select_star_nested_types_match_duckdb(wh):
    got = query_json(wh, "SELECT * FROM duplicates ORDER BY run_id, source_file, source_offset")
    want = duck(wh, "SELECT * FROM duplicates ORDER BY run_id, source_file, source_offset")
    assert got and norm(got) == norm(want)
    # Lists and structs come out as JSON arrays and objects.
    sql = "SELECT hash, headings, ai_outline, issues FROM posts ORDER BY hash LIMIT 5"
    for g, w in zip(query_json(wh, sql), duck(wh, sql)):
        assert g["hash"] == w["hash"]
        assert g["headings"] == w["headings"]
        assert g["issues"] == w["issues"]
        assert g["ai_outline"] == w["ai_outline"]


def test_csv_and_table_formats(wh):
    sql = "SELECT run_id, pages, status FROM runs ORDER BY run_id"
    as_json = query_json(wh, sql)
    out = query(wh, sql, "--csv")
    assert "\r" not in out, "CSV lines end in LF"
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["run_id"] for r in rows] == [r["run_id"] for r in as_json]
    assert [int(r["pages"]) for r in rows] == [r["pages"] for r in as_json]
    table = query(wh, sql).splitlines()
    # Borders, a header, a border, one line per row, a border, the row count.
    assert len(table) == 3 + len(as_json) + 2
    assert table[0] == table[2] == table[-2] and set(table[0]) == {"+", "-"}
    assert [c.strip() for c in table[1].strip("|").split("|")] == ["run_id", "pages", "status"]
    assert table[-1] == "(3 rows)"
    assert len({len(line) for line in table[:-1]}) == 1, "every line of the table is as wide"
    for line, r in zip(table[3:-2], as_json):
        assert [c.strip() for c in line.strip("|").split("|")] == [r["run_id"], str(r["pages"]), r["status"]]
    # CSV quotes text with commas and keeps nulls empty.
    out = query(wh, "SELECT 'a,b' AS t, NULL AS n FROM runs LIMIT 1", "--csv")
    assert out.splitlines() == ["t,n", '"a,b",']


def test_csv_count_compares_in_the_shell(wh):
    """What a new user writes: the last CSV line is the bare number, no CR."""
    n = duck(wh, "SELECT count(*) AS n FROM posts")[0]["n"]
    script = ('n=$("$QUARRY" query "$WH" "SELECT count(*) AS n FROM posts" --csv | tail -1); '
              f'[ "$n" = "{n}" ] || {{ printf "got %q\\n" "$n"; exit 1; }}')
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, cwd=whr.REPO_ROOT,
                          env={**os.environ, "QUARRY": str(whr.quarry_bin()), "WH": str(wh)})
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_table_names_ignore_case(wh):
    want = duck(wh, "SELECT count(*) AS n FROM posts")[0]["n"]
    assert query_json(wh, "SELECT count(*) AS n FROM Posts") == [{"n": want}]
    got = query_json(wh, "SELECT count(*) AS n FROM RUNS r JOIN runs s ON r.run_id = s.run_id")
    assert got == [{"n": 3}]
    rc, out, err = whr.run_quarry(["query", str(wh), "SELECT * FROM Post"])
    assert rc == 2 and out == ""
    assert "'Post'" in err and "posts, rejects, duplicates, runs" in err, err


def test_only_finished_runs_are_read(wh, tmp_path):
    copy = tmp_path / "wh"
    shutil.copytree(wh, copy)
    posts = sorted((copy / "posts").rglob("*.parquet"))
    # A crashed run's file: its run id has no runs row.
    shutil.copy(posts[0], posts[0].with_name("20990101T000000.000000Z.parquet"))
    raw = duck(copy, "SELECT count(*) AS n FROM posts")[0]["n"]
    got = query_json(copy, "SELECT count(*) AS n FROM posts")[0]["n"]
    assert got == duck(wh, "SELECT count(*) AS n FROM posts")[0]["n"] < raw


def test_bad_sql_is_a_usage_error(wh):
    rc, out, err = whr.run_quarry(["query", str(wh), "SELECT nope FROM posts"])
    assert rc == 2 and "nope" in err and out == ""
    rc, out, err = whr.run_quarry(["query", str(wh), "SELEC 1"])
    assert rc == 2, err


def test_empty_warehouse_tables_still_query(tmp_path, fixture_corpus):
    wh = tmp_path / "wh"
    (wh / "runs").mkdir(parents=True)
    assert query_json(wh, "SELECT count(*) AS n FROM posts") == [{"n": 0}]
    assert query(wh, "SELECT reason FROM rejects").splitlines()[-1] == "(0 rows)"


# ---- report -------------------------------------------------------------------------------

def chromium() -> str:
    exe = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        pytest.fail("chromium not found: run tests/browser/ensure-chromium.sh (make py does) or set CHROMIUM")
    return exe


def run_chromium(*args):
    with tempfile.TemporaryDirectory(prefix="quarry-chromium-") as profile:
        proc = subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, timeout=180, stdin=subprocess.DEVNULL)
    return proc


@pytest.fixture(scope="module")
def report(wh, tmp_path_factory):
    html = tmp_path_factory.mktemp("report") / "report.html"
    rc, out, err = whr.run_quarry(["report", str(wh), "--html", str(html)])
    assert rc == 0, err
    assert "6 charts" in err
    return html


def test_report_is_self_contained(report):
    text = report.read_text()
    assert text.startswith("<!DOCTYPE html>")
    assert text.count("<svg") == 6
    assert "<script" not in text
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text), "no network references"
    assert "@import" not in text and "url(" not in text


def section(dom, sid):
    m = re.search(rf'<section id="{sid}">(.*?)</section>', dom, re.S)
    assert m, f"section {sid} missing"
    return m.group(1)


def table_rows(fragment):
    rows = []
    for tr in re.findall(r"<tr>(.*?)</tr>", fragment, re.S):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", tr, re.S)
        if cells:
            rows.append(cells)
    return rows


def test_report_renders_in_chromium(report, wh, tmp_path):
    proc = run_chromium("--dump-dom", report.as_uri())
    dom = proc.stdout.decode("utf-8", "replace")
    assert proc.returncode == 0 and "</html>" in dom, proc.stderr.decode()[-2000:]
    svgs = re.findall(r"<svg.*?</svg>", dom, re.S)
    assert len(svgs) == 6
    for s in svgs:
        assert s.count("<rect") + s.count("<polyline") + s.count("<path") >= 3, s[:300]
        assert s.count("<text") >= 5, "axis labels and titles are SVG text"
    for sid, title in [("runs", "Runs over time"), ("rejects", "Reject reasons"), ("issues", "Issue codes"),
                       ("scores", "Score distributions"), ("topics", "quality_composite by topic"),
                       ("completeness", "Completeness")]:
        assert title in section(dom, sid)
    # The runs chart has one point per run and series; its table has one row per run.
    runs = section(dom, "runs")
    assert runs.count("<circle") == 4 * 3
    want_runs = duck(wh, "SELECT run_id, pages, imported, duplicates, rejected FROM runs ORDER BY run_id")
    got = table_rows(runs)
    assert [r[0] for r in got] == [r["run_id"] for r in want_runs]
    assert [int(r[2]) for r in got] == [r["pages"] for r in want_runs]
    # Reject reasons: chart labels and table equal DuckDB's counts.
    rejects = section(dom, "rejects")
    want = {r["reason"]: r["n"] for r in duck(wh, "SELECT reason, count(*) AS n FROM rejects GROUP BY reason")}
    assert {r[0]: int(r[1]) for r in table_rows(rejects)} == want
    for reason in want:
        assert re.search(rf">\s*{reason}\s*</text>", rejects), f"no chart label {reason}"
    # Issue codes: posts per code, as pyarrow reads the lists.
    issues = whr.read_table(wh, "posts", columns=["issues"])["issues"].to_pylist()
    want = Counter(c for codes in issues for c in set(codes or []))
    assert {r[0]: int(r[1]) for r in table_rows(section(dom, "issues"))} == dict(want)
    # Completeness bins add up to the posts.
    n_posts = duck(wh, "SELECT count(*) AS n FROM posts")[0]["n"]
    assert sum(int(r[1]) for r in table_rows(section(dom, "completeness"))) == n_posts

    shot = tmp_path / "report.png"
    proc = run_chromium(f"--screenshot={shot}", "--window-size=1280,2400", "--hide-scrollbars", report.as_uri())
    assert proc.returncode == 0 and shot.is_file(), proc.stderr.decode()[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    if SCREENSHOT:
        shutil.copy(shot, SCREENSHOT)


def test_report_topic_boxes_match_duckdb(report, wh):
    """The topics table (posts with a value, mean, median, min, max per box) is DuckDB's numbers."""
    dom = report.read_text()
    got = table_rows(section(dom, "topics"))
    top = [r["topic"] for r in duck(wh, "SELECT topic, count(*) AS n FROM posts WHERE topic IS NOT NULL "
                                        "GROUP BY topic ORDER BY n DESC, topic LIMIT 15")]
    others = duck(wh, "SELECT count(DISTINCT topic) AS n FROM posts")[0]["n"] - len(top)
    names = ", ".join("'" + t.replace("'", "''") + "'" for t in top)
    want = duck(wh, f"""
        SELECT CASE WHEN topic IS NULL THEN 2 WHEN topic IN ({names}) THEN 0 ELSE 1 END AS grp,
               CASE WHEN topic IN ({names}) THEN topic END AS label, count(*) AS posts,
               count(quality_composite) AS n, avg(quality_composite) AS mean,
               quantile_cont(quality_composite, 0.5) AS median,
               min(quality_composite) AS min, max(quality_composite) AS max
        FROM posts GROUP BY ALL HAVING count(quality_composite) > 0 ORDER BY grp, posts DESC, label""")
    assert len(want) >= 3
    assert [r[0] for r in got] == [r["label"] or ("(no topic)" if r["grp"] == 2 else f"(other {others} topics)")
                                   for r in want]
    for row, w in zip(got, want):
        assert int(row[1]) == w["n"], row
        for cell, key in zip(row[2:], ("mean", "median", "min", "max")):
            assert abs(float(cell) - w[key]) <= 0.0005 + 1e-9, (row, key, w[key])


def documented_queries():
    """Every `quarry query WH "SQL"` the README and deploy/README.md show an operator."""
    found = []
    for doc in ("README.md", "deploy/README.md"):
        text = (whr.REPO_ROOT / doc).read_text()
        found += [(doc, sql) for sql in re.findall(r'quarry query (?:WH|warehouse) "([^"]+)"', text)]
    return found


@pytest.mark.parametrize("doc,sql", documented_queries())
def test_every_documented_query_runs(wh, doc, sql):
    rc, out, err = whr.run_quarry(["query", str(wh), sql])
    assert rc == 0, f"{doc}: {sql}\n{err}"
    assert out.rstrip().endswith("rows)") or out.rstrip().endswith("row)"), out
