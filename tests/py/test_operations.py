"""Operator-facing behaviour of `quarry import`: the JSON run report and the reject-ratio alarm."""
import json
import subprocess

import warehouse as whr

VARIATIONS = "samples/variations.txt"


def test_report_json_matches_the_runs_row(quarry_binary, tmp_path):
    wh, report = tmp_path / "wh", tmp_path / "report.json"
    rc, _, err = whr.run_quarry(whr.import_args(wh, VARIATIONS) + ["--report-json", str(report)])
    assert rc == 0, err
    r = json.loads(report.read_text())
    run = whr.runs_in_order(wh)[0]
    for k in ("run_id", "files", "files_skipped", "pages", "imported", "duplicates", "rejected", "bytes_read"):
        assert r[k] == run[k], k
    assert r["records_with_issues"] == run["issues"] == 1
    assert r["rejected_by_reason"] == {"invalid_hash": 1, "missing_hash": 1, "no_meta": 1, "truncated": 1}
    assert r["issues_by_code"]["view_count:unparsable"] == 1
    assert r["pages"] == r["imported"] + r["duplicates"] + r["rejected"] == 6
    assert r["reject_ratio"] == 4 / 6
    assert r["status"] == "ok" and r["seconds"] > 0 and r["mb_per_s"] >= 0


def test_reject_ratio_over_the_limit_exits_5_after_committing(quarry_binary, tmp_path):
    wh = tmp_path / "wh"
    rc, _, err = whr.run_quarry(whr.import_args(wh, VARIATIONS) + ["--max-reject-ratio", "0.5"])
    assert rc == 5, err
    assert "66.7% of pages were rejected" in err
    assert len(whr.runs_in_order(wh)) == 1, "the run is committed: rejects are data"
    rc, _, err = whr.run_quarry(whr.import_args(tmp_path / "wh2", VARIATIONS) + ["--max-reject-ratio", "0.7"])
    assert rc == 0, err


def test_reject_ratio_out_of_range_is_a_usage_error(quarry_binary, tmp_path):
    rc, _, err = whr.run_quarry(whr.import_args(tmp_path / "wh", VARIATIONS) + ["--max-reject-ratio", "1.5"])
    assert rc == 2 and "--max-reject-ratio 1.5" in err, err
    assert not (tmp_path / "wh").exists()


def test_import_with_no_other_argument_uses_the_builtin_pipeline_and_dot_warehouse(quarry_binary, tmp_path):
    """`quarry import samples/` anywhere: the built-in alphanode pipeline, into ./warehouse."""
    proc = subprocess.run([str(quarry_binary), "import", str(whr.REPO_ROOT / "samples")], cwd=tmp_path,
                          capture_output=True, text=True, env=whr._env(None))
    assert proc.returncode == 0, proc.stderr
    assert "quarry import: run" in proc.stderr
    default = tmp_path / "warehouse"
    rc, _, err = whr.run_import(tmp_path / "named", "samples")
    assert rc == 0, err
    got, want = whr.runs_in_order(default)[0], whr.runs_in_order(tmp_path / "named")[0]
    for k in ("files", "pages", "imported", "duplicates", "rejected", "issues"):
        assert got[k] == want[k], k
    assert got["pipeline"] == "alphanode (pipelines/alphanode.toml (built in))", got["pipeline"]
    hashes = lambda wh: sorted(whr.read_table(wh, "posts", columns=["hash"]).column("hash").to_pylist())
    assert hashes(default) == hashes(tmp_path / "named")


def test_check_with_no_file_checks_the_builtin_pipeline(quarry_binary):
    rc, out, err = whr.run_quarry(["check"])
    assert rc == 0, err
    assert out.startswith("pipelines/alphanode.toml (built in): ok"), out
