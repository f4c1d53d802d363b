#!/usr/bin/env python3
"""`make bench`: quarry against what users would pick instead, and quarry's own goals.

    python bench/run.py --quarry target/rel/release/quarry --workdir target/bench [--size-mb 1024] [--quick]

Generates clean corpora with `quarry gen --noise 0`, runs every tool as a child process
(wall time with a monotonic clock, peak RSS from the child's rusage, ru_maxrss in KiB), prints a
markdown table and the goal checks (PASS/FAIL with numbers).  A FAIL is reported, not fatal: the
process fails only when a tool crashes or exits non-zero.  See bench/README.md.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

# Goals of the issue.
GOAL_MBPS = 400.0
GOAL_VS_ALT = 10.0
GOAL_RSS_MB = 300.0
GOAL_FLAT_RSS = 0.10
GOAL_FLAT_TIME = 4.4
GOAL_THREADS = 1.7
GOAL_DEDUPE = 2.0


class ToolCrashed(Exception):
    pass


# ---- running one child -------------------------------------------------------------------
class Run:
    def __init__(self, label, seconds, rss_kib, log, out):
        self.label, self.seconds, self.rss_kib, self.log, self.out = label, seconds, rss_kib, log, out

    @property
    def rss_mb(self):
        return self.rss_kib * 1024 / 1e6


def measure(label: str, cmd: list[str], logdir: str, env=None) -> Run:
    """Runs cmd as a child; wall time and that child's own peak RSS (os.wait4)."""
    os.makedirs(logdir, exist_ok=True)
    slug = re.sub(r"[^A-Za-z0-9]+", "-", label).strip("-")
    log_path = os.path.join(logdir, slug + ".log")
    out_path = os.path.join(logdir, slug + ".out")
    with open(log_path, "wb") as err, open(out_path, "wb") as out:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        _, status, ru = os.wait4(p.pid, 0)
        secs = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
    log = open(log_path, encoding="utf-8", errors="replace").read()
    stdout = open(out_path, encoding="utf-8", errors="replace").read()
    if p.returncode != 0:
        raise ToolCrashed(f"{label}: exit {p.returncode} ({' '.join(cmd)})\n--- stderr (last 3000 chars) ---\n"
                          f"{log[-3000:]}")
    return Run(label, secs, ru.ru_maxrss, log, stdout)


def sh(cmd: list[str], what: str, env: dict | None = None) -> str:
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise ToolCrashed(f"{what}: exit {p.returncode} ({' '.join(cmd)})\n{p.stderr[-3000:]}")
    return p.stderr + p.stdout


def warm(paths: list[str]):
    """Reads the inputs once so that every tool starts with them in the page cache."""
    for p in paths:
        with open(p, "rb", buffering=0) as f:
            while f.read(8 << 20):
                pass


def files_under(d: str) -> list[str]:
    out = [os.path.join(r, n) for r, _, ns in os.walk(d) for n in ns if n.endswith(".txt")]
    return sorted(out, key=lambda s: s.encode())


def cpu_seconds(pid: int) -> float:
    """User and system CPU a live process has used so far (/proc/PID/stat, in clock ticks)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rmtree(p: str):
    if os.path.lexists(p):
        shutil.rmtree(p)


# ---- corpora -----------------------------------------------------------------------------
class Corpus:
    def __init__(self, path: str, pages: int):
        self.path, self.pages = path, pages
        self.files = files_under(path)
        self.bytes = sum(os.path.getsize(f) for f in self.files)

    @property
    def mb(self):
        return self.bytes / 1e6


def gen(quarry: str, out: str, pages: int, seed: int, files: int) -> Corpus:
    """`quarry gen --noise 0`; regenerated on every bench run (gen is fast and its output may change)."""
    rmtree(out)
    sh([quarry, "gen", "--pages", str(pages), "--seed", str(seed), "--out", out, "--noise", "0",
        "--files", str(files)], f"quarry gen {out}")
    return Corpus(out, pages)


def bytes_per_page(quarry: str, workdir: str) -> float:
    c = gen(quarry, os.path.join(workdir, "probe"), 2000, 99, 1)
    rmtree(c.path)
    return c.bytes / c.pages


# ---- quarry ------------------------------------------------------------------------------
SUMMARY = {k: re.compile(rf"^\s*{k}\s+(\d+)", re.M) for k in ("pages", "imported", "duplicates", "rejected")}


def summary(log: str) -> dict:
    out = {}
    for k, rx in SUMMARY.items():
        m = rx.findall(log)
        out[k] = int(m[-1]) if m else None
    return out


class Bench:
    def __init__(self, a):
        self.a = a
        self.quarry = os.path.abspath(a.quarry)
        self.pipeline = os.path.abspath(a.pipeline)
        self.workdir = os.path.abspath(a.workdir)
        self.logs = os.path.join(self.workdir, "logs")
        self.python = a.python or sys.executable

    def import_(self, label: str, inputs: list[str], warehouse: str, threads: int | None = None,
                fresh: bool = True, env=None) -> Run:
        if fresh and "://" not in warehouse:
            rmtree(warehouse)
        cmd = [self.quarry, "import", "--pipeline", self.pipeline, "--output", warehouse]
        if threads:
            cmd += ["--threads", str(threads)]
        r = measure(label, cmd + inputs, self.logs, env=env)
        r.counts = summary(r.log)
        return r

    def quarry_runs(self, label: str, corpus: Corpus, threads: int | None = None, repeat: int = 1) -> Run:
        """Median of `repeat` imports of the corpus into an empty warehouse: the run of median time,
        with the median of the runs' peak RSS (taken on its own: peak RSS moves by ±20 MB between
        identical runs on this VM, independently of time)."""
        runs = []
        for i in range(repeat):
            warm(corpus.files)
            runs.append(self.import_(f"{label} #{i + 1}", [corpus.path], os.path.join(self.workdir, "wh"), threads))
        runs.sort(key=lambda r: r.seconds)
        r = runs[len(runs) // 2]
        r.rss_kib = sorted(x.rss_kib for x in runs)[len(runs) // 2]
        r.label = label
        r.all = runs
        rmtree(os.path.join(self.workdir, "wh"))
        return r

    def s3_runs(self, label: str, corpus: Corpus, repeat: int) -> Run:
        """`quarry_runs` into a new s3:// prefix each time, on moto's server on 127.0.0.1 (the tests'
        `s3server.py`), each run from an empty working folder (a stateless importer)."""
        sys.path.insert(0, os.path.join(REPO, "tests", "py"))
        import s3
        work = os.path.join(self.workdir, "s3")
        rmtree(work)
        os.makedirs(work)
        from pathlib import Path
        server = s3.S3Server.start(Path(work))
        try:
            runs = []
            for i in range(repeat):
                warm(corpus.files)
                cache = os.path.join(work, f"cache-{i}")
                env = dict(os.environ, **server.env, QUARRY_CACHE_DIR=cache)
                runs.append(self.import_(f"{label} #{i + 1}", [corpus.path], server.new_warehouse("bench"), env=env))
                rmtree(cache)
        finally:
            server.stop()
        runs.sort(key=lambda r: r.seconds)
        r = runs[len(runs) // 2]
        r.rss_kib = sorted(x.rss_kib for x in runs)[len(runs) // 2]
        r.label, r.all = label, runs
        return r

    def workers_runs(self, corpus: Corpus, setups=((1, False), (2, False), (4, False)), repeat: int = 5,
                     remote: bool = True) -> list[dict]:
        """N concurrent `quarry import --shard I/N --threads 1` into one new s3:// prefix on moto
        (or a new local folder) made by `quarry init` first, for each N: the wall time from the
        first start to the last exit (median of `repeat`), the workers' peak RSS and CPU seconds
        (and the server's while they ran), how many of them waited for the lock, for how long and
        how many looks at it that took, and posts moved at commit. A setup is (N, separate);
        separate: each worker into a local folder of its own (nothing shared: what N processes get
        from this machine at best). The setups take turns
        within each repeat, so that the VM's drift over a minute falls on all of them alike."""
        sys.path.insert(0, os.path.join(REPO, "tests", "py"))
        import s3
        from pathlib import Path
        work = os.path.join(self.workdir, "s3-workers")
        rmtree(work)
        os.makedirs(work)
        server = s3.S3Server.start(Path(work)) if remote else None
        tries = {setup: [] for setup in setups}
        try:
            for i in range(repeat):
                for setup in setups:
                    n, separate = setup
                    warm(corpus.files)
                    tag = f"{n}{'s' if separate else ''}"
                    url = server.new_warehouse(f"workers{tag}") if remote else os.path.join(work, f"wh-{tag}-{i}")
                    urls = [f"{url}-{shard}" if separate else url for shard in range(n)]
                    # As deploy/k8s does: the tables are made by `quarry init` before the workers start.
                    init_env = dict(os.environ, **(server.env if remote else {}),
                                    QUARRY_CACHE_DIR=os.path.join(work, f"cache-{tag}-{i}-init"))
                    for u in sorted(set(urls)):
                        sh([self.quarry, "init", u], "quarry init", env=init_env)
                    procs = []
                    server_cpu0 = cpu_seconds(server.proc.pid) if server else 0.0
                    t0 = time.perf_counter()
                    for shard in range(n):
                        cache = os.path.join(work, f"cache-{tag}-{i}-{shard}")
                        env = dict(os.environ, **(server.env if remote else {}), QUARRY_CACHE_DIR=cache)
                        cmd = [self.quarry, "import", "--pipeline", self.pipeline, "--output", urls[shard],
                               "--shard", f"{shard}/{n}", "--threads", "1", corpus.path]
                        log = open(os.path.join(work, f"w{tag}-{i}-{shard}.log"), "wb")
                        procs.append((subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, env=env), log))
                    rss, cpu = [], 0.0
                    for p, log in procs:
                        _, status, ru = os.wait4(p.pid, 0)
                        log.close()
                        if os.waitstatus_to_exitcode(status) != 0:
                            raise ToolCrashed(f"worker of {n}: exit {status}: {open(log.name).read()[-3000:]}")
                        rss.append(ru.ru_maxrss * 1024 / 1e6)
                        cpu += ru.ru_utime + ru.ru_stime
                    secs = time.perf_counter() - t0
                    server_cpu = cpu_seconds(server.proc.pid) - server_cpu0 if server else 0.0
                    logs = [open(log.name, encoding="utf-8").read() for _, log in procs]
                    waited = sum("waiting for the warehouse lock" in x for x in logs)
                    waits = [m for x in logs for m in re.findall(r"lock: taken after waiting ([0-9.]+) s \((\d+) looks", x)]
                    moved = sum(int(m) for x in logs for m in re.findall(r"commit: (\d+) posts were taken first", x))
                    imported = sum(summary(x).get("imported") or 0 for x in logs)
                    tries[setup].append({"workers": n, "seconds": secs, "rss": max(rss), "waited": waited,
                                         "cpu": cpu, "server_cpu": server_cpu,
                                         "wait_s": sum(float(w) for w, _ in waits),
                                         "looks": sum(int(k) for _, k in waits),
                                         "moved": moved, "imported": imported})
                    for cache in ["init", *range(n)]:
                        rmtree(os.path.join(work, f"cache-{tag}-{i}-{cache}"))
        finally:
            if server:
                server.stop()
        out = []
        for setup in setups:
            ts = sorted(tries[setup], key=lambda t: t["seconds"])
            out.append(ts[len(ts) // 2])
            print(f"  {setup[0]} worker(s){' apart' if setup[1] else ''}: {out[-1]['seconds']:.2f} s", flush=True)
        return out

    # ---- the 1,000,000-post warehouse, cached between runs --------------------------------
    def prefilled(self, pages: int, rebuild: bool) -> str:
        d = os.path.join(self.workdir, f"prefill-{pages}")
        wh, stamp = os.path.join(d, "warehouse"), os.path.join(d, "stamp.json")
        version = sh([self.quarry, "--version"], "quarry --version").strip()
        key = {"pages": pages, "seed": 424242, "quarry": version}
        if not rebuild and os.path.exists(stamp):
            try:
                if json.load(open(stamp)) == key:
                    print(f"  prefilled warehouse: reusing {wh}", flush=True)
                    return wh
            except ValueError:
                pass
        rmtree(d)
        src = os.path.join(self.workdir, "prefill-src")
        print(f"  prefilled warehouse: generating {pages:,} pages and importing them once (cached in {d})",
              flush=True)
        c = gen(self.quarry, src, pages, 424242, 16)
        r = self.import_("prefill import", [src], wh)
        print(f"  prefilled warehouse: {c.mb:,.0f} MB imported in {r.seconds:.1f} s "
              f"({c.mb / r.seconds:,.0f} MB/s, peak RSS {r.rss_mb:,.0f} MB, imported {r.counts['imported']})",
              flush=True)
        self.prefill_run = (c, r)
        rmtree(src)
        json.dump(key, open(stamp, "w"))
        return wh

    def dedupe_check(self, new: Corpus, prefill_pages: int, repeat: int):
        wh = self.prefilled(prefill_pages, self.a.rebuild_prefill)
        empty, full = [], []
        target = os.path.join(self.workdir, "wh-dedupe")
        for i in range(repeat):
            warm(new.files)
            empty.append(self.import_(f"dedupe empty #{i + 1}", [new.path], target))
            rmtree(target)
            shutil.copytree(wh, target)  # untimed: a fresh copy of the 1M-post warehouse each time
            warm(new.files)
            try:
                full.append(self.import_(f"dedupe prefilled #{i + 1}", [new.path], target, fresh=False))
            except ToolCrashed:
                if i or self.a.rebuild_prefill:
                    raise
                # a cached warehouse from an older quarry may not fit this one: rebuild it once
                print("  import into the cached warehouse failed: rebuilding it", flush=True)
                self.a.rebuild_prefill = True
                rmtree(target)
                return self.dedupe_check(new, prefill_pages, repeat)
            rmtree(target)
        pick = lambda rs: sorted(rs, key=lambda r: r.seconds)[len(rs) // 2]
        return pick(empty), pick(full)

    # ---- the alternatives ----------------------------------------------------------------
    def alternative(self, label: str, script: str, corpus: Corpus) -> Run:
        out = os.path.join(self.workdir, f"{label.split()[0].lower()}-posts.parquet")
        if os.path.exists(out):
            os.remove(out)
        warm(corpus.files)
        r = measure(label, [self.python, os.path.join(HERE, script), "--out", out, corpus.path], self.logs)
        try:
            res = json.loads(r.out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            res = {}
        r.counts = {"imported": res.get("imported")}
        r.parquet_mb = os.path.getsize(out) / 1e6 if os.path.exists(out) else None
        return r


# ---- report ------------------------------------------------------------------------------
def fmt(x, nd=1):
    if x is None:
        return "–"
    if isinstance(x, float) and (math.isnan(x) or math.isinf(x)):
        return "–"
    return f"{x:,.{nd}f}"


def table(rows):
    head = ["tool", "corpus", "corpus MB", "pages", "rows out", "seconds", "MB/s", "pages/s", "peak RSS MB",
            "time ÷ ref"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, corpus_name, corpus, r, ref in rows:
        imp = r.counts.get("imported")
        ratio = "ref" if r is ref else f"{r.seconds / ref.seconds:,.2f}×"
        lines.append("| " + " | ".join([
            label, corpus_name, fmt(corpus.mb, 0), f"{corpus.pages:,}", f"{imp:,}" if isinstance(imp, int) else "?",
            fmt(r.seconds, 2), fmt(corpus.mb / r.seconds, 1), fmt(corpus.pages / r.seconds, 0), fmt(r.rss_mb, 0),
            ratio,
        ]) + " |")
    lines += ["", "ref: quarry with default threads on the same corpus; for the new pages, the import into an "
              "empty warehouse. `rows out` = posts written (quarry: `imported` of its summary)."]
    return "\n".join(lines)


def spread(r) -> str:
    """The lowest and highest peak RSS of a measurement's runs, in MB."""
    mbs = [x.rss_mb for x in getattr(r, "all", [r])]
    return f"{min(mbs):,.0f}–{max(mbs):,.0f}"


def check(name: str, ok: bool, detail: str) -> str:
    return f"- **{'PASS' if ok else 'FAIL'}** {name}: {detail}"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(re.search(r"MemTotal:\s+(\d+)", open("/proc/meminfo").read())[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, TypeError):
        pass
    return f"{os.cpu_count()} cores ({cpu}){mem}, {platform.system()} {platform.release()}"


def main():
    ap = argparse.ArgumentParser(description="quarry vs the Python and DuckDB alternatives, and quarry's goals")
    ap.add_argument("--quarry", required=True, help="the quarry binary (a release build)")
    ap.add_argument("--workdir", required=True, help="corpora, warehouses and logs (the 1M-post warehouse is cached here)")
    ap.add_argument("--size-mb", type=float, default=None,
                    help="big corpus size (default 1024, quick 80); the side-by-side corpus is a quarter of it")
    ap.add_argument("--quick", action="store_true", help="small corpora, one run each, no results.md")
    ap.add_argument("--pipeline", default=os.path.join(REPO, "pipelines", "alphanode.toml"))
    ap.add_argument("--python", default=None, help="interpreter for the alternatives (default: this one)")
    ap.add_argument("--repeat", type=int, default=None, help="quarry runs per measurement, median taken (default 5, quick 1)")
    ap.add_argument("--prefill-pages", type=int, default=None, help="posts in the prefilled warehouse (default 1000000, quick 50000)")
    ap.add_argument("--new-pages", type=int, default=10_000, help="pages imported into the prefilled warehouse")
    ap.add_argument("--rebuild-prefill", action="store_true", help="regenerate the cached prefilled warehouse")
    ap.add_argument("--skip-alternatives", action="store_true", help="quarry only")
    ap.add_argument("--before-mbps", type=float, default=367.7,
                    help="quarry's 1x MB/s before the tables were Delta tables (bench/results.md of issue 11: "
                         "367.7); the local Delta case is checked against it (0: no check)")
    ap.add_argument("--results", default=None, help="markdown file to write (default bench/results.md unless --quick)")
    ap.add_argument("--skip-scale", action="store_true", help="leave out the scale section (its part of the results file stays)")
    ap.add_argument("--scale-only", action="store_true", help="only the scale section (the rest of the results file stays)")
    ap.add_argument("--scale-max", type=int, default=100_000_000,
                    help="largest prefilled warehouse of the scale section, in posts (default 100000000; the 100M "
                         "one takes long to build: 10000000 leaves it out)")
    ap.add_argument("--big-run-pages", type=int, default=None,
                    help="pages of the scale section's big run (default 5000000 = 16.5 GB; quick 200000)")
    a = ap.parse_args()
    if a.skip_scale and a.scale_only:
        ap.error("--skip-scale and --scale-only leave nothing to run")
    size_mb = a.size_mb or (80.0 if a.quick else 1024.0)
    repeat = a.repeat or (1 if a.quick else 5)
    prefill_pages = a.prefill_pages or (50_000 if a.quick else 1_000_000)
    results = a.results or (None if a.quick else os.path.join(HERE, "results.md"))
    b = Bench(a)
    os.makedirs(b.workdir, exist_ok=True)
    started = time.time()
    # scale.py imports this module by name: make that this very module, not a second copy.
    sys.modules.setdefault("run", sys.modules[__name__])
    import scale
    old_base, old_scale = split_results(results)
    try:
        report = old_base
        if not a.scale_only:
            report = run_all(b, a, size_mb, repeat, prefill_pages)
            report += f"\n\n_bench took {time.time() - started:.0f} s; logs in {b.logs}_\n"
        scale_report = old_scale
        if not a.skip_scale:
            scale_report = scale.run_scale(b, a, bytes_per_page(b.quarry, b.workdir)) + "\n"
    except ToolCrashed as e:
        print(f"\nbench: a tool failed:\n{e}", file=sys.stderr)
        sys.exit(1)
    report = "\n\n".join(x for x in (report.rstrip("\n"), scale_report.rstrip("\n")) if x) + "\n"
    print("\n" + report)
    if results:
        with open(results, "w") as f:
            f.write(report)
        print(f"written to {results}")


def split_results(path: str | None) -> tuple[str, str]:
    """An earlier results file cut into its first sections and its scale section (each run of the bench
    rewrites the part it measured and keeps the other)."""
    try:
        text = open(path, encoding="utf-8").read() if path else ""
    except FileNotFoundError:
        text = ""
    at = text.find("\n## Scale")
    return (text, "") if at < 0 else (text[:at + 1], text[at + 1:])


def run_all(b: Bench, a, size_mb: float, repeat: int, prefill_pages: int) -> str:
    q = b.quarry
    version = sh([q, "--version"], "quarry --version").strip()
    print(f"bench: {version}, {machine()}", flush=True)
    bpp = bytes_per_page(q, b.workdir)
    base_pages = max(100, math.ceil(size_mb / 4 * 1e6 / bpp))
    print(f"bench: generating corpora ({bpp:,.0f} bytes per page)", flush=True)
    base = gen(q, os.path.join(b.workdir, "corpus-1x"), base_pages, 1, 4)
    big = gen(q, os.path.join(b.workdir, "corpus-4x"), base_pages * 4, 2, 8)
    new = gen(q, os.path.join(b.workdir, "corpus-new"), a.new_pages, 7777, 1)
    print(f"  1x: {base.mb:,.0f} MB, {base.pages:,} pages; 4x: {big.mb:,.0f} MB, {big.pages:,} pages; "
          f"new: {new.mb:,.0f} MB, {new.pages:,} pages", flush=True)

    print("bench: quarry on the 1x corpus", flush=True)
    q1 = b.quarry_runs("quarry 1x", base, repeat=repeat)
    print("bench: quarry on the 1x corpus into s3:// (moto on 127.0.0.1)", flush=True)
    qs3 = b.s3_runs("quarry 1x s3", base, repeat=repeat)
    alts = []
    if not a.skip_alternatives:
        print("bench: Python script on the 1x corpus", flush=True)
        alts.append(b.alternative("Python (re + pyarrow)", "extract.py", base))
        print(f"  {alts[-1].seconds:.1f} s", flush=True)
        print("bench: DuckDB statement on the 1x corpus", flush=True)
        alts.append(b.alternative("DuckDB (one statement)", "duckdb_extract.py", base))
        print(f"  {alts[-1].seconds:.1f} s", flush=True)
    print("bench: quarry on the 4x corpus", flush=True)
    q4 = b.quarry_runs("quarry 4x", big, repeat=repeat)
    print("bench: quarry --threads 1 and --threads 2 on the 4x corpus", flush=True)
    t1 = b.quarry_runs("quarry --threads 1", big, threads=1, repeat=repeat)
    t2 = b.quarry_runs("quarry --threads 2", big, threads=2, repeat=repeat)
    print("bench: 1, 2 and 4 workers (--shard, --threads 1) into one s3:// warehouse and one local folder, 1x pages in 256 files", flush=True)
    # Many files: a shard is a hash of each file's path, so 16 files split 9/7 or worse.
    shards = gen(q, os.path.join(b.workdir, "corpus-1x-256"), base_pages, 1, 256)
    workers = b.workers_runs(shards, repeat=repeat)
    *local_workers, apart = b.workers_runs(
        shards, setups=((1, False), (2, False), (4, False), (2, True)), repeat=repeat, remote=False)
    print(f"bench: {new.pages:,} new pages into an empty and into a {prefill_pages:,}-post warehouse", flush=True)
    d_empty, d_full = b.dedupe_check(new, prefill_pages, repeat)

    rows = [("quarry", "1x", base, q1, q1), ("quarry → s3:// (moto, 127.0.0.1)", "1x", base, qs3, q1)]
    rows += [(r.label, "1x", base, r, q1) for r in alts]
    rows += [("quarry", "4x", big, q4, q4),
             ("quarry --threads 1", "4x", big, t1, q4),
             ("quarry --threads 2", "4x", big, t2, q4),
             ("quarry, new pages → empty warehouse", "new", new, d_empty, d_empty),
             (f"quarry, new pages → {prefill_pages:,}-post warehouse", "new", new, d_full, d_empty)]
    out = [f"# quarry bench{' (quick)' if a.quick else ''}", "",
           f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M UTC} · {version} · {machine()}  ",
           f"Clean corpora from `quarry gen --noise 0` ({bpp:,.0f} bytes per page). quarry: medians of {repeat} "
           f"run(s) (time and peak RSS each) into an empty warehouse (default threads unless stated); alternatives: one run each. "
           f"MB = 10^6 bytes of input; peak RSS = the child's ru_maxrss.", "",
           table(rows), ""]

    checks = []
    big_note = "" if big.bytes >= 1e9 else f" (corpus {big.mb:,.0f} MB < 1 GB: indicative only)"
    mbps = big.mb / q4.seconds
    checks.append(check("throughput ≥ 400 MB/s on a clean corpus ≥ 1 GB", mbps >= GOAL_MBPS,
                        f"{mbps:,.0f} MB/s on {big.mb:,.0f} MB{big_note}"))
    for r in alts:
        x = r.seconds / q1.seconds
        checks.append(check(f"≥ 10× {r.label}", x >= GOAL_VS_ALT,
                            f"quarry {base.mb / q1.seconds:,.0f} MB/s vs {base.mb / r.seconds:,.1f} MB/s = {x:,.1f}× "
                            f"on the same {base.mb:,.0f} MB"))
    qruns = [q1, q4, t1, t2, d_empty, d_full]
    # The goal holds for every run, not only the medians.
    worst = max((x for r in qruns for x in getattr(r, "all", [r])), key=lambda r: r.rss_kib)
    checks.append(check("peak RSS ≤ 300 MB", worst.rss_mb <= GOAL_RSS_MB,
                        f"max of every run {worst.rss_mb:,.0f} MB ({worst.label}); medians: 1x {q1.rss_mb:,.0f}, 4x {q4.rss_mb:,.0f}, "
                        f"threads 1 {t1.rss_mb:,.0f}, threads 2 {t2.rss_mb:,.0f}, into the {prefill_pages:,}-post warehouse "
                        f"{d_full.rss_mb:,.0f})"))
    drss = (q4.rss_kib - q1.rss_kib) / q1.rss_kib
    tr = q4.seconds / q1.seconds
    size_ratio = big.bytes / base.bytes
    checks.append(check("flat: 4× the input changes peak RSS < 10% and time ≤ 4.4×",
                        abs(drss) < GOAL_FLAT_RSS and tr <= GOAL_FLAT_TIME,
                        f"input ×{size_ratio:.2f}: median RSS {q1.rss_mb:,.0f} → {q4.rss_mb:,.0f} MB ({drss:+.1%}; "
                        f"runs {spread(q1)} and {spread(q4)} MB), "
                        f"time {q1.seconds:.2f} → {q4.seconds:.2f} s (×{tr:.2f})"))
    sp = t1.seconds / t2.seconds
    checks.append(check("--threads 2 ≥ 1.7× --threads 1", sp >= GOAL_THREADS,
                        f"{t1.seconds:.2f} s → {t2.seconds:.2f} s = {sp:.2f}× on {big.mb:,.0f} MB "
                        f"({os.cpu_count()} cores)"))
    dr = d_full.seconds / d_empty.seconds
    cnt = d_full.counts
    prefill_note = "" if prefill_pages >= 1_000_000 else f" (only {prefill_pages:,} posts: quick mode)"
    checks.append(check(f"{new.pages:,} pages into a {prefill_pages:,}-post warehouse < 2× into an empty one",
                        dr < GOAL_DEDUPE,
                        f"{d_empty.seconds:.2f} s vs {d_full.seconds:.2f} s = {dr:.2f}× (imported "
                        f"{cnt.get('imported')}, duplicates {cnt.get('duplicates')}){prefill_note}"))
    if a.before_mbps:
        now = base.mb / q1.seconds
        checks.append(check("1x into a local Delta warehouse within 10% of the MB/s before Delta",
                            now >= a.before_mbps * 0.9,
                            f"{now:,.0f} MB/s vs {a.before_mbps:,.0f} MB/s ({now / a.before_mbps - 1:+.1%}); "
                            f"into s3:// {base.mb / qs3.seconds:,.0f} MB/s"))
    one = workers[0]["seconds"]
    out += ["### Workers: `--shard I/N --threads 1` side by side into one `s3://` warehouse (moto on 127.0.0.1)", "",
            f"The 1x pages in 256 files ({shards.mb:,.0f} MB); wall time from the first start to the last exit, "
            f"median of {repeat}, the setups taking turns in each repeat; moto shares the {os.cpu_count()} cores.", "",
            "| workers → warehouse | seconds | MB/s in all | × one worker | CPU s: workers + server (cores busy) | peak RSS MB (max) | waited for the lock | waits: seconds, looks (all workers) | posts moved at commit | imported |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    cores = os.cpu_count() or 1
    local_one = local_workers[0]["seconds"]
    for where, rows, ref in (("s3://", workers, one), ("local folder", local_workers, local_one),
                             ("a local folder each (nothing shared)", [apart], local_one)):
        for w in rows:
            out.append(f"| {w['workers']} → {where} | {w['seconds']:.2f} | {shards.mb / w['seconds']:,.1f} | "
                       f"{ref / w['seconds']:.2f}× | {w['cpu']:.2f} + {w['server_cpu']:.2f} "
                       f"({(w['cpu'] + w['server_cpu']) / (w['seconds'] * cores):.0%}) | "
                       f"{w['rss']:,.0f} | {w['waited']} of {w['workers']} | "
                       f"{w['wait_s']:.2f} s, {w['looks']} | {w['moved']} | {w['imported']:,} |")
    out += ["", "The last row is the machine's own limit: the same two shards imported at once into two "
            "warehouses that share nothing (no lock, no index, no commit); the × is against one worker "
            "into a local folder. CPU: user and system seconds of all the workers, and of moto's process "
            f"while they ran; cores busy: that CPU over wall time × {cores} cores. Where the cores are busy "
            "near 100%, the workers wait for the machine, not for each other.", ""]
    two = next(w for w in workers if w["workers"] == 2)
    local_two = next(w for w in local_workers if w["workers"] == 2)
    checks.append(check("2 workers ≥ 1.7× one worker (one thread each, into s3://)", one / two["seconds"] >= 1.7,
                        f"{one:.2f} s → {two['seconds']:.2f} s = {one / two['seconds']:.2f}× "
                        f"({os.cpu_count()} cores, moto on them too); into a local folder "
                        f"{local_one:.2f} s → {local_two['seconds']:.2f} s = {local_one / local_two['seconds']:.2f}×; "
                        f"two processes sharing nothing {local_one / apart['seconds']:.2f}×; CPU of one worker "
                        f"{workers[0]['cpu']:.2f} s, of two {two['cpu']:.2f} s + moto {two['server_cpu']:.2f} s"))
    out += ["## Goals", ""] + checks
    if hasattr(b, "prefill_run"):
        c, r = b.prefill_run
        out += ["", f"Prefilled warehouse built in this run: {c.mb:,.0f} MB ({c.pages:,} pages) imported in "
                f"{r.seconds:.1f} s = {c.mb / r.seconds:,.0f} MB/s, peak RSS {r.rss_mb:,.0f} MB."]
    sizes = [f"{r.label}: {r.parquet_mb:,.1f} MB Parquet" for r in alts if getattr(r, "parquet_mb", None)]
    if sizes:
        out += ["", "Alternatives' output: " + "; ".join(sizes) + "."]
    return "\n".join(out)


if __name__ == "__main__":
    main()
