"""The scale section of `make bench` (issue 11): a warehouse that grows for years.

- prefilled warehouses of 1M, 10M and 100M posts, built as a nightly warehouse grows (many real
  `quarry import` runs of `quarry gen --minimal` pages), cached under <workdir>/scale/;
- 10,000 new (normal) pages into an empty warehouse and into a fresh copy of each prefilled one;
- one big run (5M normal pages, 16.5 GB) against a 1 GB run, both streamed from `quarry gen --out -`;
- `quarry report` and `quarry query` on the 10M-post warehouse beside DuckDB over the same files.

Imported by run.py, whose helpers (measure, gen, ...) it uses. See bench/README.md.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import time

from run import GOAL_RSS_MB, Corpus, Run, ToolCrashed, check, fmt, gen, measure, rmtree, sh, summary, warm

GOAL_SCALE_TIME = 2.0  # × the import into an empty warehouse
GOAL_BIG_RUN = 0.15  # peak RSS of the big run over the 1 GB run's
GOAL_VS_DUCKDB = 2.0
# Warehouses as they grow: (posts, runs). 100 runs of 1M for the largest: the index must stay fast over many runs.
PLAN = [(1_000_000, 10), (10_000_000, 10), (100_000_000, 100)]
QUICK_PLAN = [(100_000, 10), (1_000_000, 10)]
READERS_AT = 10_000_000
QUERY = "SELECT difficulty, count(*), avg(quality_composite) FROM posts GROUP BY difficulty"
# How a prefill run's dump is made; part of the cache key, so a change of it rebuilds the cache.
RECIPE = "quarry gen --minimal --noise 0 --files 4 --seed <1000 * posts/1e6 + run>; quarry import --threads 2"
THREADS = 2
# Disk a prefilled warehouse takes per post (posts files and hash lists of today's quarry, measured: 10M
# posts in 0.6 GB) with room to spare, to refuse a build the disk cannot hold before it starts.
DISK_PER_POST = 100


def binary_key(quarry: str) -> dict:
    """What a cached warehouse must have been written by: `quarry --version`, and the warehouse format
    version if the binary prints one (`... warehouse format N`), else a hash of the binary itself."""
    version = sh([quarry, "--version"], "quarry --version").strip()
    m = re.search(r"format\D{0,3}(\d[\w.]*)", version)
    if m:
        return {"quarry": version, "format": m[1]}
    h = hashlib.sha256()
    with open(quarry, "rb") as f:
        while chunk := f.read(8 << 20):
            h.update(chunk)
    return {"quarry": version, "binary_sha256": h.hexdigest()[:16]}


def tree_state(d: str) -> list:
    """Every file below d with its size and mtime: a cached warehouse must come out of the bench as it went in."""
    return sorted((os.path.relpath(os.path.join(r, n), d), os.path.getsize(os.path.join(r, n)),
                   os.stat(os.path.join(r, n)).st_mtime_ns) for r, _, ns in os.walk(d) for n in ns)


def all_files(d: str) -> list[str]:
    return [os.path.join(r, n) for r, _, ns in os.walk(d) for n in ns]


def du_mb(d: str) -> float:
    return sum(os.path.getsize(f) for f in all_files(d)) / 1e6


def median_run(runs: list[Run], label: str) -> Run:
    """The run of median time, with the median of the runs' peak RSS (the two spread independently)."""
    r = sorted(runs, key=lambda x: x.seconds)[len(runs) // 2]
    r.rss_kib = sorted(x.rss_kib for x in runs)[len(runs) // 2]
    r.label, r.all = label, runs
    return r


def measure_pipe(label: str, producer: list[str], consumer: list[str], logdir: str) -> Run:
    """`producer | consumer`; wall time and peak RSS of the consumer alone (its own os.wait4)."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", label).strip("-")
    log_path, gen_log = os.path.join(logdir, slug + ".log"), os.path.join(logdir, slug + ".gen.log")
    with open(log_path, "wb") as err, open(gen_log, "wb") as gerr:
        t0 = time.perf_counter()
        g = subprocess.Popen(producer, stdout=subprocess.PIPE, stderr=gerr)
        c = subprocess.Popen(consumer, stdin=g.stdout, stdout=err, stderr=err)
        g.stdout.close()  # the consumer holds the pipe's read end alone: the producer sees it close
        _, status, ru = os.wait4(c.pid, 0)
        secs = time.perf_counter() - t0
        c.returncode = os.waitstatus_to_exitcode(status)
        g.wait()
    log = open(log_path, encoding="utf-8", errors="replace").read()
    for p, cmd, text in ((g, producer, open(gen_log, errors="replace").read()), (c, consumer, log)):
        if p.returncode != 0:
            raise ToolCrashed(f"{label}: exit {p.returncode} ({' '.join(cmd)})\n{text[-3000:]}")
    r = Run(label, secs, ru.ru_maxrss, log, "")
    r.counts = summary(log)
    m = re.search(r"([\d.]+) MB in", open(gen_log, errors="replace").read())  # gen's own count of its bytes
    r.mb = float(m[1]) if m else None
    return r


class Scale:
    def __init__(self, b, a):
        self.b, self.a = b, a
        self.q = b.quarry
        self.dir = os.path.join(b.workdir, "scale")
        self.repeat = 1 if a.quick else 3
        self.key = binary_key(self.q)
        os.makedirs(self.dir, exist_ok=True)

    def import_(self, label: str, inputs: list[str], wh: str, fresh: bool) -> Run:
        return self.b.import_(label, inputs, wh, threads=THREADS, fresh=fresh)

    # ---- the prefilled warehouses ----------------------------------------------------------
    def prefilled(self, posts: int, runs: int) -> tuple[str, dict]:
        """The warehouse of `posts` posts written by `runs` runs, from the cache or built (and resumed
        from its last finished run when a build was cut short); its stamp holds each run's numbers."""
        d = os.path.join(self.dir, f"prefill-{posts}")
        wh, stamp_path = os.path.join(d, "warehouse"), os.path.join(d, "stamp.json")
        key = {"posts": posts, "runs": runs, "recipe": RECIPE, **self.key}
        try:
            stamp = json.load(open(stamp_path))
        except (OSError, ValueError):
            stamp = {}
        if not self.a.rebuild_prefill and stamp.get("key") == key and 0 < len(stamp["runs"]) < runs:
            # A build cut short resumes only if the cut came before its run committed (else that run's numbers are lost).
            rows = sh([self.q, "query", wh, "SELECT count(*) AS n FROM runs", "--csv"], f"quarry query {wh}").split()
            if rows[-1:] != [str(len(stamp["runs"]))]:
                committed = rows[-1] if rows else "no"
                print(f"  {posts:,}-post warehouse: {committed} runs committed, the stamp has {len(stamp['runs'])}: "
                      "rebuilding it", flush=True)
                stamp = {}
        if self.a.rebuild_prefill or stamp.get("key") != key:
            rmtree(d)
            stamp = {"key": key, "runs": []}
        os.makedirs(d, exist_ok=True)
        done, per_run = len(stamp["runs"]), posts // runs
        if done == runs:
            print(f"  {posts:,}-post warehouse: reusing {wh} ({du_mb(wh):,.0f} MB)", flush=True)
            return wh, stamp
        print(f"  {posts:,}-post warehouse: {runs - done} of {runs} runs of {per_run:,} minimal pages to import "
              f"(cached in {d})", flush=True)
        src = os.path.join(self.dir, "prefill-src")
        need = (runs - done) * per_run * DISK_PER_POST + per_run * 250  # the warehouse's growth + one run's dump
        free = shutil.disk_usage(self.dir).free
        if free < need + 1e9:
            raise ToolCrashed(f"{d}: building it needs about {need / 1e9:,.1f} GB and 1 GB to spare, "
                              f"{free / 1e9:,.1f} GB are free; `--scale-max` below {posts:,} leaves it out")
        for i in range(done, runs):
            t0 = time.perf_counter()
            c = self.gen_minimal(src, per_run, 1000 * (posts // 1_000_000) + i)
            gen_s = time.perf_counter() - t0
            warm(c.files)
            r = self.import_(f"prefill {posts} run {i + 1}", [src], wh, fresh=False)
            rmtree(src)
            if (r.counts["imported"], r.counts["duplicates"]) != (per_run, 0):
                raise ToolCrashed(f"prefill {posts} run {i + 1}: imported {r.counts['imported']}, duplicates "
                                  f"{r.counts['duplicates']}; expected {per_run:,} new posts (log {self.b.logs})")
            stamp["runs"].append({"posts_before": i * per_run, "pages": per_run, "bytes": c.bytes,
                                  "gen_seconds": round(gen_s, 3), "seconds": round(r.seconds, 3),
                                  "rss_mb": round(r.rss_mb, 1)})
            with open(stamp_path + ".tmp", "w") as f:
                json.dump(stamp, f, indent=1)
            os.replace(stamp_path + ".tmp", stamp_path)  # a build cut short resumes after its last whole run
            print(f"    run {i + 1}/{runs}: {r.seconds:.1f} s, peak RSS {r.rss_mb:,.0f} MB "
                  f"({i * per_run:,} posts before)", flush=True)
        return wh, stamp

    def gen_minimal(self, out: str, pages: int, seed: int) -> Corpus:
        rmtree(out)
        sh([self.q, "gen", "--minimal", "--pages", str(pages), "--seed", str(seed), "--out", out, "--noise", "0",
            "--files", "4"], f"quarry gen --minimal {out}")
        return Corpus(out, pages)

    def copy(self, src: str, dst: str):
        """A copy of a cached warehouse to import into: hard links (a run writes new files and renames
        them into place; the tree_state check proves the cache came out unchanged), the lock file (the
        one file a run rewrites in place) copied. A real copy of the 4.5 GB 100M warehouse before each
        import made that import's fresh memory ~3x dearer to fault in (0.29-0.40 s against 0.15-0.17 s
        for the same import into a hard-linked copy): the bench would measure the copy, not quarry."""
        rmtree(dst)
        try:
            sh(["cp", "-al", src, dst], f"cp -al {src}")
        except ToolCrashed:  # another file system: a real copy
            rmtree(dst)
            sh(["cp", "-r", "--reflink=auto", src, dst], f"cp {src}")
            return
        lock = os.path.join(dst, "_quarry", "lock")
        if os.path.exists(lock):
            os.remove(lock)
            shutil.copy2(os.path.join(src, "_quarry", "lock"), lock)

    # ---- 10,000 new pages into each ----------------------------------------------------------
    def new_pages(self, new: Corpus, prefills: list[tuple[int, str]]) -> list[tuple[int, Run]]:
        target = os.path.join(self.dir, "wh-new")
        empty = []
        for i in range(self.repeat):
            warm(new.files)
            empty.append(self.import_(f"scale new -> empty #{i + 1}", [new.path], target, fresh=True))
        out = [(0, median_run(empty, "empty"))]
        for posts, wh in prefills:
            before, runs = tree_state(wh), []
            for i in range(self.repeat):
                self.copy(wh, target)  # untimed: a fresh copy each time, the cache stays as built
                warm(new.files)
                r = self.import_(f"scale new -> {posts} #{i + 1}", [new.path], target, fresh=False)
                if (r.counts["imported"], r.counts["duplicates"]) != (new.pages, 0):
                    raise ToolCrashed(f"new pages into the {posts:,}-post warehouse: imported {r.counts['imported']}, "
                                      f"duplicates {r.counts['duplicates']}; expected {new.pages:,} new posts")
                runs.append(r)
            if tree_state(wh) != before:
                raise ToolCrashed(f"{wh}: the cached warehouse changed while the bench imported into its copy")
            out.append((posts, median_run(runs, f"{posts:,} posts")))
            print(f"  into {posts:,} posts: {out[-1][1].seconds:.2f} s, peak RSS {out[-1][1].rss_mb:,.0f} MB", flush=True)
        rmtree(target)
        return out

    # ---- the big run ---------------------------------------------------------------------------
    def run_of(self, label: str, pages: int, seed: int) -> Run:
        """`quarry gen --out - | quarry import -` into an empty warehouse, median of `repeat`."""
        wh = os.path.join(self.dir, "wh-big")
        producer = [self.q, "gen", "--pages", str(pages), "--seed", str(seed), "--noise", "0", "--out", "-"]
        consumer = [self.q, "import", "--pipeline", self.b.pipeline, "--output", wh, "--threads", str(THREADS), "-"]
        runs = []
        for i in range(self.repeat):
            rmtree(wh)
            runs.append(measure_pipe(f"{label} #{i + 1}", producer, consumer, self.b.logs))
            if runs[-1].counts["imported"] != pages:
                raise ToolCrashed(f"{label}: imported {runs[-1].counts['imported']} of {pages:,} pages")
        rmtree(wh)
        return median_run(runs, label)

    # ---- readers -------------------------------------------------------------------------------
    def readers(self, wh: str) -> dict[str, Run]:
        before = tree_state(wh)
        html = os.path.join(self.dir, "report.html")
        duck = [self.b.python, os.path.join(os.path.dirname(os.path.abspath(__file__)), "duckdb_query.py"),
                "--warehouse", wh]
        cmds = {
            "quarry report": [self.q, "report", wh, "--html", html],
            "DuckDB, the report's aggregations": duck + ["--report"],
            "quarry query": [self.q, "query", wh, QUERY, "--csv"],
            "DuckDB, the query": duck + ["--sql", QUERY],
        }
        out = {}
        for label, cmd in cmds.items():
            runs = []
            for i in range(self.repeat):
                warm(all_files(wh))
                runs.append(measure(f"scale {label} #{i + 1}", cmd, self.b.logs))
            out[label] = median_run(runs, label)
            print(f"  {label}: {out[label].seconds:.2f} s, peak RSS {out[label].rss_mb:,.0f} MB", flush=True)
        if tree_state(wh) != before:
            raise ToolCrashed(f"{wh}: a reader changed the cached warehouse")
        if os.path.exists(html):
            os.remove(html)
        return out


def same_answer(quarry_csv: str, duck_csv: str) -> bool:
    """The two CSV results hold the same rows (any order, floats to 9 significant digits)."""
    def rows(text):
        out = []
        for line in text.strip().splitlines()[1:]:
            cells = []
            for c in line.split(","):
                try:
                    cells.append(f"{float(c):.9g}")
                except ValueError:
                    cells.append(c)
            out.append(tuple(cells))
        return sorted(out)
    return rows(quarry_csv) == rows(duck_csv)


def run_scale(b, a, bpp_normal: float) -> str:
    started = time.time()
    load_before = os.getloadavg()[0]
    s = Scale(b, a)
    plan = [(p, n) for p, n in (QUICK_PLAN if a.quick else PLAN) if p <= a.scale_max]
    big_pages = a.big_run_pages or (200_000 if a.quick else 5_000_000)
    small_pages = min(round(1e9 / bpp_normal), big_pages // 4)
    print(f"bench scale: {s.key}; warehouses {', '.join(f'{p:,}' for p, _ in plan)}", flush=True)
    prefills, stamps = [], {}
    for posts, runs in plan:
        wh, stamp = s.prefilled(posts, runs)
        prefills.append((posts, wh))
        stamps[posts] = stamp
    new = gen(s.q, os.path.join(s.dir, "new"), a.new_pages, 7777, 1)
    print(f"bench scale: {new.pages:,} new pages into an empty warehouse and into each prefilled one", flush=True)
    news = s.new_pages(new, prefills)
    rmtree(new.path)
    print(f"bench scale: the big run ({big_pages:,} pages) and a {small_pages:,}-page run", flush=True)
    small = s.run_of("small run", small_pages, 32)
    big = s.run_of("big run", big_pages, 31)
    readers_at = max((p for p, _ in prefills if p <= (1_000_000 if a.quick else READERS_AT)), default=None)
    readers = None
    if readers_at:
        print(f"bench scale: readers on the {readers_at:,}-post warehouse", flush=True)
        readers = s.readers(dict(prefills)[readers_at])
    loads = (load_before, os.getloadavg()[0])
    return report(s, a, plan, stamps, new, news, (small_pages, small), (big_pages, big), bpp_normal,
                  readers_at, readers, time.time() - started, loads)


def fit(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least squares y = a + b x."""
    if len(xs) < 2:
        return (ys[0] if ys else 0.0), 0.0
    b = statistics.covariance(xs, ys) / statistics.variance(xs)
    return statistics.fmean(ys) - b * statistics.fmean(xs), b


def duration(secs: float) -> str:
    return f"{secs / 3600:,.1f} h" if secs >= 3600 else f"{secs / 60:,.0f} min"


def build_rows(plan, stamps, scale_max, full_plan) -> tuple[list[str], list[str]]:
    """The prefill builds' table, and an estimate for each warehouse of the plan not built."""
    rows = ["| warehouse | runs | minimal pages/s, run 1 (empty) | run 1: s / peak RSS MB | last run: s / peak RSS MB "
            "| import s in all | gen s in all |", "|---|---|---|---|---|---|---|"]
    for posts, runs in plan:
        rs = stamps[posts]["runs"]
        first, last = rs[0], rs[-1]
        rows.append(f"| {posts:,} posts | {runs} × {first['pages']:,} | {first['pages'] / first['seconds']:,.0f} | "
                    f"{first['seconds']:.1f} / {first['rss_mb']:,.0f} | {last['seconds']:.1f} / {last['rss_mb']:,.0f} | "
                    f"{sum(r['seconds'] for r in rs):,.0f} | {sum(r['gen_seconds'] for r in rs):,.0f} |")
    notes = []
    if plan:
        ref = stamps[plan[-1][0]]["runs"]
        xs = [r["posts_before"] for r in ref]
        a_t, b_t = fit(xs, [r["seconds"] + r["gen_seconds"] for r in ref])
        a_m, b_m = fit(xs, [r["rss_mb"] for r in ref])
        per_page = a_t / ref[0]["pages"]
        for posts, runs in [x for x in full_plan if x[0] > scale_max]:
            n = posts // runs
            total = sum(per_page * n + b_t * k * n for k in range(runs))
            notes.append(f"Not built: the {posts:,}-post warehouse ({runs} runs of {n:,}; `--scale-max` "
                         f"{scale_max:,}). Fitted on the {plan[-1][0]:,}-post build's runs (time = "
                         f"{a_t:.1f} s {b_t * 1e6:+.2f} s per million earlier posts, peak RSS = {a_m:,.0f} MB "
                         f"{b_m * 1e6:+,.1f} MB per million earlier posts), this binary would take about "
                         f"{duration(total)} to build it, its last run peaking near "
                         f"{(a_m + b_m * (posts - n)) / 1e3:,.1f} GB.")
    return rows, notes


def report(s: Scale, a, plan, stamps, new, news, small, big, bpp_normal, readers_at, readers, secs, loads) -> str:
    from run import machine
    bpp_min = statistics.fmean(r["bytes"] / r["pages"] for st in stamps.values() for r in st["runs"]) if stamps else 0
    key = f"`{s.key['quarry']}`, cache key " + ", ".join(f"{k} {v}" for k, v in s.key.items() if k != "quarry")
    out = [f"## Scale (issue 11){' (quick)' if a.quick else ''}", "",
           f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M UTC} · {key} · {machine()}  ",
           f"Prefilled warehouses: real `quarry import --threads {THREADS}` runs of `quarry gen --minimal` pages "
           f"({bpp_min:,.0f} bytes per page), cached in `{s.dir}`. New pages and the big run: `quarry gen --noise 0` "
           f"({bpp_normal:,.0f} bytes per page). Every row: median of {s.repeat} (time and peak RSS each), "
           f"`--threads {THREADS}`. Load average (1 min) {loads[0]:.1f} at the start, {loads[1]:.1f} at the end: "
           "anything else on the 2 cores slows every time here (peak RSS moves little).", "",
           f"### {new.pages:,} new pages into a big warehouse", "",
           "| warehouse | built by | on disk MB | seconds | × empty | peak RSS MB |", "|---|---|---|---|---|---|"]
    runs_of = dict(plan)
    empty = news[0][1]
    for posts, r in news:
        built = f"{runs_of[posts]} runs of {posts // runs_of[posts]:,}" if posts else "–"
        disk = fmt(du_mb(os.path.join(s.dir, f"prefill-{posts}", "warehouse")), 0) if posts else "–"
        ratio = "ref" if r is empty else f"{r.seconds / empty.seconds:.2f}×"
        out.append(f"| {f'{posts:,} posts' if posts else 'empty'} | {built} | {disk} | {r.seconds:.2f} | {ratio} | "
                   f"{r.rss_mb:,.0f} |")
    (small_pages, sr), (big_pages, br) = small, big
    out += ["", "### One big run", "",
            "| run | pages | corpus GB | seconds | MB/s | peak RSS MB | peak RSS ÷ small run |", "|---|---|---|---|---|---|---|"]
    for label, pages, r in (("small run", small_pages, sr), ("big run", big_pages, br)):
        gb = (r.mb or pages * bpp_normal / 1e6) / 1e3
        out.append(f"| {label} | {pages:,} | {gb:,.2f} | {r.seconds:.1f} | {gb * 1e3 / r.seconds:,.0f} | "
                   f"{r.rss_mb:,.0f} | {'ref' if r is sr else f'{r.rss_kib / sr.rss_kib:.2f}×'} |")
    out += ["", "Both runs read `quarry gen --out -` through a pipe (`quarry import -`): no corpus on disk; "
            "corpus GB as gen counted its bytes; peak RSS is the import's alone (gen runs beside it on the same 2 cores)."]
    if readers:
        out += ["", f"### Readers on the {readers_at:,}-post warehouse", "",
                "| reader | seconds | peak RSS MB | time ÷ DuckDB |", "|---|---|---|---|"]
        pairs = (("quarry report", "DuckDB, the report's aggregations"), ("quarry query", "DuckDB, the query"))
        for qn, dn in pairs:
            out.append(f"| {qn} | {readers[qn].seconds:.2f} | {readers[qn].rss_mb:,.0f} | "
                       f"{readers[qn].seconds / readers[dn].seconds:.2f}× |")
            out.append(f"| {dn} | {readers[dn].seconds:.2f} | {readers[dn].rss_mb:,.0f} | ref |")
        same = same_answer(readers["quarry query"].out, readers["DuckDB, the query"].out)
        out += ["", f"The query: `{QUERY}`; quarry and DuckDB give {'the same rows' if same else 'DIFFERENT rows'}. "
                "DuckDB (Python package, defaults: all cores) reads `read_parquet('<wh>/posts/**/*.parquet', "
                "hive_partitioning = true)`; its peak RSS includes the Python interpreter."]
    out += ["", "### Goals (issue 11)", ""]
    for posts, r in news[1:]:
        x = r.seconds / empty.seconds
        out.append(check(f"{new.pages:,} pages into {posts:,} posts < 2× into an empty warehouse", x < GOAL_SCALE_TIME,
                         f"{empty.seconds:.2f} s vs {r.seconds:.2f} s = {x:.2f}×"))
    worst = max((x for _, r in news for x in r.all), key=lambda x: x.rss_kib)
    out.append(check(f"peak RSS ≤ 300 MB importing {new.pages:,} pages, every warehouse", worst.rss_mb <= GOAL_RSS_MB,
                     f"max of every run {worst.rss_mb:,.0f} MB ({worst.label}); medians "
                     + ", ".join(f"{p:,}: {r.rss_mb:,.0f}" for p, r in news[1:])))
    dr = br.rss_kib / sr.rss_kib - 1
    out.append(check(f"big run ({big_pages:,} pages) peaks within 15% of the {small_pages:,}-page run",
                     abs(dr) <= GOAL_BIG_RUN,
                     f"{sr.rss_mb:,.0f} → {br.rss_mb:,.0f} MB ({dr:+.0%})"))
    if readers:
        for qn, dn in pairs:
            r, d = readers[qn], readers[dn]
            out.append(check(f"{qn} on {readers_at:,} posts ≤ 300 MB", r.rss_mb <= GOAL_RSS_MB, f"{r.rss_mb:,.0f} MB"))
            out.append(check(f"{qn} ≤ 2× DuckDB", r.seconds <= GOAL_VS_DUCKDB * d.seconds,
                             f"{r.seconds:.2f} s vs {d.seconds:.2f} s = {r.seconds / d.seconds:.2f}×"))
    full_plan = QUICK_PLAN if a.quick else PLAN
    for posts, runs in full_plan:
        if posts > a.scale_max:
            out.append(f"- **NOT MEASURED** {new.pages:,} pages into {posts:,} posts (`--scale-max {a.scale_max:,}`)")
    rows, notes = build_rows(plan, stamps, a.scale_max, full_plan)
    out += ["", "### Building the prefilled warehouses", "", *rows]
    out += ["", *notes] if notes else []
    out += ["", f"_scale section took {secs:.0f} s (builds included only when they ran); logs in {s.b.logs}_"]
    return "\n".join(out)
