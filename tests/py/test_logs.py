"""Run logs when stderr is not a terminal (a pipe, as under cron): file lines, periodic progress
lines, -v per-file counts, RUST_LOG, --quiet."""
import re

import pytest

import warehouse as whr

STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
LINE = re.compile(rf"^{STAMP} (ERROR| WARN| INFO|DEBUG|TRACE) quarry: (.*)$")
PROGRESS = re.compile(r"^progress: ([\d.]+) MB of ([\d.]+) MB \((\d+)%\) read, (\d+) pages, "
                      r"[\d.]+ MB/s, [\d.]+ s elapsed, file (\S+)$")
DONE = re.compile(r"^done (\S+): (\d+) pages, [\d.]+ MB in [\d.]+ s$")
COUNTS = re.compile(r"^(\S+): (\d+) pages: (\d+) imported, (\d+) duplicates, (\d+) rejected( \(.*\))?$")
SUMMARY = re.compile(r"^  (pages|imported|duplicates|rejected) +(\d+)")


def run(tmp_path, *extra, env=None, inputs=None):
    wh = tmp_path / "wh"
    args = ["import", "--pipeline", whr.PIPELINE, "--output", wh, *extra, *(inputs or ["tests/fixtures/corpus/batch-1"])]
    rc, out, err = whr.run_quarry(args, env=env)
    return rc, err.splitlines()


def log_lines(lines):
    """(level, message) of the log lines; every other line must be the summary."""
    out = []
    for line in lines:
        m = LINE.match(line)
        if m:
            out.append((m.group(1).strip(), m.group(2)))
        else:
            assert line.startswith("quarry import: run") or line.startswith("  "), f"not a log line: {line!r}"
    return out


def summary(lines):
    return {m.group(1): int(m.group(2)) for m in map(SUMMARY.match, lines) if m}


def test_file_and_periodic_lines(quarry_binary, tmp_path):
    rc, lines = run(tmp_path, env={"QUARRY_PROGRESS_SECS": "0"})
    assert rc == 0, lines
    logs = log_lines(lines)
    assert {lvl for lvl, _ in logs} == {"INFO"}, logs
    msgs = [m for _, m in logs]
    files = ["tests/fixtures/corpus/batch-1/dump-000.txt", "tests/fixtures/corpus/batch-1/dump-001.txt",
             "tests/fixtures/corpus/batch-1/dump-002.txt.gz"]
    assert [m.split(" ")[1] for m in msgs if m.startswith("reading ")] == files
    done = [DONE.match(m) for m in msgs if m.startswith("done ")]
    assert [d.group(1).rstrip(":") for d in done if d] == files, msgs
    total = summary(lines)
    assert sum(int(d.group(2)) for d in done) == total["pages"]
    progress = [PROGRESS.match(m) for m in msgs if m.startswith("progress: ")]
    assert progress and all(progress), msgs
    # Each progress line names the file being read, and the page count only grows to the total.
    assert all(p.group(5) in files for p in progress)
    pages = [int(p.group(4)) for p in progress]
    assert pages == sorted(pages) and pages[-1] == total["pages"]
    assert progress[-1].group(3) == "100"


def test_no_periodic_lines_before_the_interval(quarry_binary, tmp_path):
    rc, lines = run(tmp_path, env={"QUARRY_PROGRESS_SECS": "3600"})
    assert rc == 0
    msgs = [m for _, m in log_lines(lines)]
    assert not [m for m in msgs if m.startswith("progress: ")]
    assert [m for m in msgs if m.startswith("reading ")]


@pytest.mark.parametrize("how", ["-v", "RUST_LOG"])
def test_verbose_counts_per_file(quarry_binary, tmp_path, how):
    if how == "-v":
        rc, lines = run(tmp_path, "-v")
    else:
        rc, lines = run(tmp_path, env={"RUST_LOG": "warn,quarry=debug"})
    assert rc == 0, lines
    counts = [COUNTS.match(m) for lvl, m in log_lines(lines) if lvl == "DEBUG" and COUNTS.match(m)]
    assert len(counts) == 3, lines
    total = summary(lines)
    for i, key in enumerate(("pages", "imported", "duplicates", "rejected"), start=2):
        assert sum(int(c.group(i)) for c in counts) == total[key], key


def test_rust_log_warn_hides_info(quarry_binary, tmp_path):
    rc, lines = run(tmp_path, env={"RUST_LOG": "warn", "QUARRY_PROGRESS_SECS": "0"})
    assert rc == 0
    assert log_lines(lines) == []
    assert summary(lines)["pages"] > 0, "the summary is not a log line: it stays"


def test_quiet_prints_errors_only(quarry_binary, tmp_path):
    rc, lines = run(tmp_path, "--quiet", env={"RUST_LOG": "debug", "QUARRY_PROGRESS_SECS": "0"})
    assert rc == 0 and lines == []
    rc, lines = run(tmp_path, "--quiet", inputs=["tests/fixtures/no-such-dump.txt"])
    assert rc == 1 and len(lines) == 1 and lines[0].startswith("quarry: error:"), lines


def test_replay_logs_its_rejects_files(quarry_binary, tmp_path):
    rc, _ = run(tmp_path, "--quiet")
    assert rc == 0
    rc, out, err = whr.run_quarry(["rejects", "replay", tmp_path / "wh", "--pipeline", whr.PIPELINE, "-v"])
    assert rc == 0, err
    msgs = [m for _, m in log_lines([line for line in err.splitlines() if not line.startswith("quarry rejects")])]
    assert [m for m in msgs if m.startswith("reading ") and "/rejects/" in m], msgs


@pytest.mark.parametrize("rust_log", ["quarry[file{name=dump-001.txt}]=debug",
                                      "warn,quarry[file{name=dump-001.txt}]=debug"])
def test_rust_log_span_filter_selects_one_file(quarry_binary, tmp_path, rust_log):
    """Each input file is a span `file{name=…}`: a span directive raises the level for that file only."""
    rc, lines = run(tmp_path, env={"RUST_LOG": rust_log, "QUARRY_PROGRESS_SECS": "3600"})
    assert rc == 0, lines
    logs = log_lines(lines)
    one = "tests/fixtures/corpus/batch-1/dump-001.txt"
    counts = [COUNTS.match(m) for lvl, m in logs if lvl == "DEBUG"]
    assert [c.group(1).rstrip(":") for c in counts if c] == [one] and len(counts) == 1, logs
    reading = [m.split(" ")[1] for _, m in logs if m.startswith("reading ")]
    if rust_log.startswith("warn,"):
        assert reading == [one], logs
    else:
        assert len(reading) == 3 and one in reading, logs


def test_a_bad_rust_log_entry_is_ignored_with_a_warning(quarry_binary, tmp_path):
    """A typo in a logging setting does not stop an unattended import: one warning names it."""
    rc, lines = run(tmp_path, env={"RUST_LOG": "warn,quarry=loud"})
    assert rc == 0, lines
    logs = log_lines(lines)
    assert len(logs) == 1 and logs[0][0] == "WARN", logs
    assert logs[0][1].startswith('RUST_LOG: ignoring "quarry=loud": '), logs
    assert summary(lines)["pages"] > 0
