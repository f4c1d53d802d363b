"""deploy/nightly.sh: exit codes, log file, --quiet, report, lock (the wrapper systemd and cron run)."""
import gzip
import os
import subprocess

import pytest

import warehouse as whr

NIGHTLY = whr.REPO_ROOT / "deploy" / "nightly.sh"


def nightly(wh, dumps, *args, **env):
    e = {k: v for k, v in os.environ.items() if not k.startswith("QUARRY_")}
    e.update({"QUARRY_ENV_FILE": "/nonexistent", "QUARRY_BIN": str(whr.quarry_bin()),
              "QUARRY_WAREHOUSE": str(wh), "QUARRY_DUMPS": " ".join(map(str, dumps))})
    e.update({k: str(v) for k, v in env.items()})
    p = subprocess.run(["bash", str(NIGHTLY), *args], cwd=whr.REPO_ROOT, env=e, capture_output=True,
                       text=True, timeout=600, stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout, p.stderr


def test_nightly_imports_logs_and_reports(quarry_binary, fixture_corpus, tmp_path):
    wh, html = tmp_path / "wh", tmp_path / "report.html"
    rc, out, err = nightly(wh, [fixture_corpus.batch(1)], QUARRY_REPORT_HTML=html)
    assert rc == 0, err
    assert "quarry import: run" in err and "exit 0 (ok)" in err
    log = (wh / "_quarry" / "nightly.log").read_text()
    assert "nightly start:" in log and "quarry import: run" in log and "nightly end: exit 0 (ok)" in log
    assert html.read_text().count("<svg") == 6
    assert len(whr.run_ids(wh)) == 1
    # --quiet: nothing on a good night; the log still gets the summary.
    rc, out, err = nightly(wh, [fixture_corpus.batch(1), fixture_corpus.batch(2)], "--quiet")
    assert (rc, out, err) == (0, "", "")
    log = (wh / "_quarry" / "nightly.log").read_text()
    assert log.count("nightly end: exit 0") == 2 and log.count("quarry import: run") == 2
    assert len(whr.run_ids(wh)) == 2


def test_nightly_config_error_is_2(quarry_binary, tmp_path):
    rc, out, err = nightly(tmp_path / "wh", [], "--quiet")
    assert rc == 2 and "QUARRY_DUMPS is not set" in err
    rc, out, err = nightly(tmp_path / "wh", ["x"], QUARRY_PIPELINE=tmp_path / "missing.toml")
    assert rc == 2 and "pipeline file not found" in err
    bad = tmp_path / "bad.toml"
    bad.write_text("bogus = 1\n")
    rc, out, err = nightly(tmp_path / "wh", ["x"], "--quiet", QUARRY_PIPELINE=bad)
    assert rc == 2 and "error" in err


def test_nightly_io_error_is_1(quarry_binary, tmp_path):
    rc, out, err = nightly(tmp_path / "wh", [tmp_path / "no-such-dump"], "--quiet")
    assert rc == 1 and "no-such-dump" in err and "exit 1" in err


def test_nightly_bad_input_file_is_4(quarry_binary, fixture_corpus, tmp_path):
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    good = (fixture_corpus.root / "batch-1" / "dump-000.txt").read_bytes()
    (dumps / "broken.txt.gz").write_bytes(gzip.compress(good)[:-200])
    rc, out, err = nightly(tmp_path / "wh", [dumps], "--quiet")
    assert rc == 4, err
    assert "exit 4" in err


def test_nightly_locked_is_3_without_wait(quarry_binary, fixture_corpus, tmp_path):
    wh = tmp_path / "wh"
    with whr.HeldImport(wh, fixture_corpus.batch(1), point="staged") as held:
        if not held.wait_held():
            pytest.fail(f"the held import never reached its hold point:\n{held.stderr()}")
        rc, out, err = nightly(wh, [fixture_corpus.batch(2)], "--quiet", QUARRY_WAIT="no", QUARRY_LOCK_WAIT="1")
    assert rc == 3, err
    assert "exit 3 (locked" in err
