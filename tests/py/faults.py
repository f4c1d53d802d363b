"""Helpers of the fault-injection and bad-input tests: peak memory of a run, runs as an
unprivileged user, small file systems, and the accounting every run must satisfy."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import warehouse as whr

NOBODY = 65534
SETPRIV = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]


@dataclass
class Run:
    rc: int
    stderr: str
    peak_rss_mb: float
    seconds: float

    def __str__(self):
        return f"exit {self.rc}, peak RSS {self.peak_rss_mb:.0f} MB, {self.seconds:.1f} s\nstderr:\n{self.stderr[-3000:]}"


def measured(args, env=None, prefix=(), timeout=900, binary=None, cwd=None) -> Run:
    """Runs quarry (cwd = repo root) and returns its exit code, stderr and peak RSS (from wait4)."""
    with tempfile.TemporaryFile() as err:
        t0 = time.monotonic()
        proc = subprocess.Popen([*prefix, str(binary or whr.quarry_bin()), *map(str, args)], cwd=cwd or whr.REPO_ROOT,
                                env=whr._env(env), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        deadline = t0 + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.02)
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        text = err.read().decode("utf-8", "replace")
    return Run(proc.returncode, text, usage.ru_maxrss / 1024, time.monotonic() - t0)


def import_measured(warehouse, *inputs, env=None, prefix=(), pipeline=whr.PIPELINE, binary=None, cwd=None) -> Run:
    args = ["import", "--pipeline", pipeline, "--output", str(warehouse), "--quiet", *map(str, inputs)]
    return measured(args, env=env, prefix=prefix, binary=binary, cwd=cwd)


def accounting_problems(warehouse) -> list[str]:
    """Every runs row satisfies pages = imported + duplicates + rejected, and the tables hold exactly
    the rows each run counted (nothing lost, nothing extra)."""
    problems = []
    counts = {}
    for table in whr.DATA_TABLES:
        t = whr.read_table(warehouse, table, columns=["run_id"])
        for r in ([] if t is None else t["run_id"].to_pylist()):
            counts[(table, r)] = counts.get((table, r), 0) + 1
    for run in whr.runs_in_order(warehouse):
        rid = run["run_id"]
        if run["pages"] != run["imported"] + run["duplicates"] + run["rejected"]:
            problems.append(f"run {rid}: pages {run['pages']} != imported {run['imported']} + duplicates "
                            f"{run['duplicates']} + rejected {run['rejected']}")
        for table, col in (("posts", "imported"), ("duplicates", "duplicates"), ("rejects", "rejected")):
            got = counts.get((table, rid), 0)
            if got != run[col]:
                problems.append(f"run {rid}: {table} holds {got} rows, the runs row says {col} = {run[col]}")
    return problems


@contextmanager
def world_dir():
    """A temporary folder that an unprivileged user can read and traverse (pytest's tmp_path cannot)."""
    d = Path(tempfile.mkdtemp(prefix="quarry-faults-", dir="/tmp"))
    d.chmod(0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


class Nobody:
    """Runs quarry as an unprivileged user, from copies of the binary and the pipeline in a folder
    everyone can read (the repository may sit where nobody can reach, e.g. under /root)."""

    def __init__(self, home: Path):
        self.home = home
        self.binary = home / "quarry"
        self.pipeline = home / "pipeline.toml"
        shutil.copy(whr.quarry_bin(), self.binary)
        shutil.copy(whr.REPO_ROOT / whr.PIPELINE, self.pipeline)
        self.binary.chmod(0o755)
        self.pipeline.chmod(0o644)

    def why_not(self) -> str | None:
        """None when setpriv works and nobody can run the binary; otherwise why not."""
        if os.geteuid() != 0:
            return "not root: cannot switch to an unprivileged user (and permissions would apply anyway)"
        if shutil.which("setpriv") is None:
            return "setpriv not installed"
        r = subprocess.run([*SETPRIV, str(self.binary), "--version"], capture_output=True, cwd=self.home)
        if r.returncode != 0:
            return f"nobody cannot run {self.binary}: {r.stderr.decode(errors='replace').strip()}"
        return None

    def import_(self, warehouse, *inputs) -> Run:
        return import_measured(warehouse, *inputs, prefix=SETPRIV, pipeline=str(self.pipeline),
                               binary=self.binary, cwd=self.home)


def mount_tmpfs(path: Path, size: str) -> str | None:
    """Mounts a tmpfs of `size` at `path`; None on success, else the reason."""
    path.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if r.returncode != 0:
        return f"mount -t tmpfs failed ({r.stderr.decode(errors='replace').strip()}); needs root with CAP_SYS_ADMIN"
    return None


def remount(path: Path, size: str):
    subprocess.run(["mount", "-o", f"remount,size={size}", str(path)], check=True, capture_output=True)


def umount(path: Path):
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


def free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())
