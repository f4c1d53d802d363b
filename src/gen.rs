//! `quarry gen`: deterministic synthetic dumps in the format of the spec, for load tests.
//! `shared/tools/dumpgen.py` stays the reference (with its truth); this one is fast.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

/// Settings of a generated corpus.
#[derive(Debug, Clone)]
pub struct GenOptions {
    /// Pages in all (split evenly over batches and files).
    pub pages: u64,
    /// Seed of the random stream: the same seed gives the same bytes.
    pub seed: u64,
    /// Output folder.
    pub out: PathBuf,
    /// 0 gives clean pages only; 1 mixes in every variation at its usual rate.
    pub noise: f64,
    /// Files per batch.
    pub files: u32,
    /// Batches (one folder `batch-N` each when more than one).
    pub batches: u32,
}

/// What was written.
#[derive(Debug, Clone, Default)]
pub struct GenSummary {
    pub files: u64,
    pub pages: u64,
    pub bytes: u64,
}

/// splitmix64: small, fast and good enough for test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        ((self.next() >> 32) * n) >> 32
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    fn chance(&mut self, p: f64) -> bool {
        ((self.next() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
}

const PROBLEMS: [&str; 12] = [
    "debugging cache invalidation",
    "reducing cold start latency",
    "tuning connection pools",
    "migrating database schemas",
    "handling background jobs",
    "rate limiting public apis",
    "rotating secrets safely",
    "structuring application logs",
    "profiling memory leaks",
    "indexing full text search",
    "tracing slow requests",
    "batching database writes",
];
const STACKS: [(&str, &str, &str); 6] = [
    ("python services", "backend", "python"),
    ("laravel apps", "backend", "php"),
    ("node backends", "backend", "javascript"),
    ("go microservices", "backend", "go"),
    ("rust web servers", "backend", "rust"),
    ("next.js frontends", "frontend", "typescript"),
];
const TOOLS: [&str; 8] = ["git", "logs", "pytest", "docker", "cargo", "eslint", "jest", "pprof"];
const SCENARIOS: [&str; 5] = [
    "while keeping the admin area responsive",
    "under heavy traffic",
    "without downtime",
    "on a small team",
    "during a migration",
];
const HEADINGS: [&str; 5] = ["why it matters", "common pitfalls", "what to measure", "step by step", "rollout plan"];
const SENTENCES: [&str; 10] = [
    "treat staging as a rehearsal, not just a place to click around.",
    "copy the important configuration, test the real deployment command, and confirm that a rollback can be executed without searching through old notes.",
    "developer experience also matters.",
    "if the setup requires five manual steps, put those steps in a command, a make target, or a short runbook.",
    "small automation saves time every time the project is moved to another machine.",
    "keep the implementation boring on purpose.",
    "when the feature touches user input, validate at the boundary and keep error messages specific.",
    "measure before you change anything, and write the numbers down.",
    "every retry needs a budget, or it becomes the outage.",
    "name the owner of each alert before it fires at night.",
];
const CHECKLIST: [&str; 4] =
    ["measure the baseline", "change one thing at a time", "watch error rates", "document the migration"];
const DIFFICULTIES: [&str; 3] = ["beginner", "intermediate", "advanced"];
const STATUSES: [&str; 4] = ["drafted", "reviewed", "published", "archived"];
const SCORES: [&str; 4] = ["quality", "freshness", "depth", "clarity"];
const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// What one page is about (picked before its text is written).
#[derive(Clone, Copy)]
struct Topic {
    p: &'static str,
    stack: &'static str,
    area: &'static str,
    lang: &'static str,
    c: &'static str,
}

struct PageGen {
    rng: Rng,
    noise: f64,
    seed: u64,
    hashes: Vec<u128>,
}

impl PageGen {
    fn paragraph(&mut self, out: &mut Vec<u8>) {
        let n = self.rng.range(2, 5);
        for i in 0..n {
            if i > 0 {
                out.push(b' ');
            }
            out.extend_from_slice(self.rng.pick(&SENTENCES).as_bytes());
        }
        out.push(b'\n');
    }

    fn score(&mut self, out: &mut Vec<u8>, v: u64) -> io::Result<()> {
        let r = self.rng.next() % 1000;
        let noise = (self.noise * 1000.0) as u64;
        if r < noise * 15 / 100 {
            write!(out, "{v}/100")
        } else if r < noise * 30 / 100 {
            write!(out, "{v}%")
        } else if r < noise * 35 / 100 {
            write!(out, "0.{v:02}")
        } else if r < noise * 38 / 100 {
            write!(out, "{}", 101 + v)
        } else {
            write!(out, "{v}")
        }
    }

    /// One page; `kind` 0 new, 1 duplicate, 2 missing hash, 3 garbage.
    fn page(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        let noise = self.noise;
        let r = self.rng.next() % 1000;
        let n = (noise * 1000.0) as u64;
        if r < n * 11 / 1000 {
            out.extend_from_slice(b"cookie settings\n\nwe use cookies to keep the admin area responsive.\n\naccept all\n\nSimilar Posts\n");
            return Ok(());
        }
        let missing_hash = r < n * 21 / 1000;
        let duplicate = !self.hashes.is_empty() && r < n * 80 / 1000;
        let hash = if duplicate {
            *self.rng.pick(&self.hashes)
        } else {
            let h = (self.rng.next() as u128) << 64 | self.rng.next() as u128;
            let h = h & ((1u128 << 96) - 1);
            if self.hashes.len() < 100_000 {
                self.hashes.push(h);
            }
            h
        };
        self.seed += self.rng.range(1, 50);
        let p = *self.rng.pick(&PROBLEMS);
        let (stack, area, lang) = *self.rng.pick(&STACKS);
        let c = *self.rng.pick(&SCENARIOS);
        let t = Topic { p, stack, area, lang, c };
        self.article(out, &t)?;
        self.meta(out, &t, hash, missing_hash)
    }

    /// The article: title, paragraphs, an image line, headings, a checklist.
    fn article(&mut self, out: &mut Vec<u8>, t: &Topic) -> io::Result<()> {
        let Topic { p, stack, .. } = *t;
        writeln!(out, "{p} in {stack}: a practical guide\n")?;
        self.paragraph(out);
        out.push(b'\n');
        if self.rng.chance(0.8) {
            writeln!(
                out,
                "{p} with {stack} visual reference 1\n{p} with {stack} visual reference 1. image source: unsplash\n"
            )?;
        }
        out.extend_from_slice(b"the practical approach\n\n");
        for _ in 0..self.rng.range(1, 4) {
            self.paragraph(out);
            out.push(b'\n');
        }
        let h = *self.rng.pick(&HEADINGS);
        writeln!(out, "{h}\n")?;
        self.paragraph(out);
        out.extend_from_slice(b"\nimplementation checklist\n\n");
        for item in CHECKLIST {
            writeln!(out, "  \u{2022} {item}")?;
        }
        out.extend_from_slice(b"\nfinal notes\n\n");
        self.paragraph(out);
        Ok(())
    }

    /// The meta block and the trailer (`hash` left out when `missing_hash`).
    fn meta(&mut self, out: &mut Vec<u8>, t: &Topic, hash: u128, missing_hash: bool) -> io::Result<()> {
        let Topic { p, stack, area, lang, c } = *t;
        let noise = self.noise;
        out.extend_from_slice(b"\nalphanode post meta\n\n");
        writeln!(out, "topic{p} / {stack}")?;
        writeln!(out, "summarythis ai-style technical summary explains {p} in {stack}, with emphasis on measurement and rollback planning.")?;
        writeln!(out, "ai outline\n  \u{2022} context: {c}\n  \u{2022} problem: {p}\n  \u{2022} stack: {stack}\n  \u{2022} recommended action: measure first")?;
        writeln!(out, "ai briefthe article is written like a careful ai generated engineering draft.")?;
        writeln!(out, "stack\n  \u{2022} {stack}\n  \u{2022} {area}\n  \u{2022} {lang}")?;
        out.extend_from_slice(b"tools\n");
        for _ in 0..self.rng.range(2, 4) {
            writeln!(out, "  \u{2022} {}", self.rng.pick(&TOOLS))?;
        }
        writeln!(
            out,
            "code language{lang}\ndifficulty{}\nreading time{}",
            self.rng.pick(&DIFFICULTIES),
            self.rng.range(2, 15)
        )?;
        let views = self.rng.below(2_000_000);
        if self.rng.chance(noise * 0.3) {
            writeln!(out, "view count{},{:03}", views / 1000, views % 1000)?;
        } else if self.rng.chance(noise * 0.05) {
            writeln!(out, "view countn/a")?;
        } else {
            writeln!(out, "view count{views}")?;
        }
        out.extend_from_slice(b"score\n");
        for s in SCORES {
            write!(out, "  \u{2022} {s}: ")?;
            let v = self.rng.below(101);
            self.score(out, v)?;
            out.push(b'\n');
        }
        let (y, m, d) = (2022 + self.rng.below(3), self.rng.range(1, 12), self.rng.range(1, 28));
        write!(
            out,
            "revision\n  \u{2022} status: {}\n  \u{2022} version: 1.{}.{}\n  \u{2022} last reviewed: ",
            self.rng.pick(&STATUSES),
            self.rng.below(12),
            self.rng.below(10)
        )?;
        match self.rng.below(if noise > 0.0 { 3 } else { 1 }) {
            0 => writeln!(out, "{y}-{m:02}-{d:02}")?,
            1 => writeln!(out, "{d:02} {} {y}", MONTHS[m as usize - 1])?,
            _ => writeln!(out, "{} {d}, {y}", MONTHS[m as usize - 1])?,
        }
        writeln!(out, "referenceanp-ref-{:06}-{:04}", self.seed, self.rng.below(10000))?;
        if !missing_hash {
            writeln!(out, "hash{hash:024x}")?;
        }
        let f = |b: bool| if b { '1' } else { '0' };
        writeln!(
            out,
            "flags\n  \u{2022} ai generated style: {}\n  \u{2022} has images: {}\n  \u{2022} image heavy: {}\n  \u{2022} needs human review: {}",
            f(self.rng.chance(0.9)),
            f(self.rng.chance(0.8)),
            f(self.rng.chance(0.2)),
            f(self.rng.chance(0.2))
        )?;
        writeln!(out, "entities\n    \u{2022} name: {stack}\n    \u{2022} type: stack\n    \u{2022} name: {p}\n    \u{2022} type: problem")?;
        writeln!(out, "image sources\n    \u{2022} source: unsplash\n    \u{2022} url: https://images.example.org/photo-{}?w=1200&q=80\n    \u{2022} caption: {p} visual reference 1", self.rng.below(1_000_000_000))?;
        writeln!(
            out,
            "payload\n  \u{2022} source id: alphanode-{:06}\n  \u{2022} generator: anp content synthesizer\n  \u{2022} paragraphs: {}\n  \u{2022} scenario: {c}\n  \u{2022} seed: {}",
            self.seed,
            self.rng.range(3, 8),
            self.seed
        )?;
        writeln!(out, "notes\n  \u{2022} content is generated for import/load testing")?;
        if self.rng.chance(noise * 0.1) {
            writeln!(out, "tags\n  \u{2022} caching\n  \u{2022} ops")?;
        }
        out.extend_from_slice(b"\nSimilar Posts\n");
        if self.rng.chance(noise * 0.3) {
            writeln!(out, "  \u{2022} {}: notes from the field", self.rng.pick(&PROBLEMS))?;
        }
        Ok(())
    }
}

/// Writes the corpus. The same options give the same bytes.
pub fn generate(o: &GenOptions) -> io::Result<GenSummary> {
    let mut g = PageGen {
        rng: Rng(o.seed ^ 0x5157_4152_5259),
        noise: o.noise.clamp(0.0, 1.0),
        seed: o.seed * 100_000,
        hashes: Vec::new(),
    };
    let files = u64::from(o.files.max(1)) * u64::from(o.batches.max(1));
    let per_file = o.pages.div_ceil(files).max(1);
    let mut s = GenSummary::default();
    let mut left = o.pages;
    let mut buf = Vec::with_capacity(64 << 10);
    let mut crlf_buf = Vec::with_capacity(64 << 10);
    for b in 0..o.batches.max(1) {
        let dir = if o.batches > 1 { o.out.join(format!("batch-{}", b + 1)) } else { o.out.clone() };
        fs::create_dir_all(&dir)?;
        for f in 0..o.files.max(1) {
            let path = dir.join(format!("dump-{f:03}.txt"));
            let crlf = g.rng.chance(g.noise * 0.15);
            let mut w = BufWriter::with_capacity(1 << 20, File::create(&path)?);
            if g.rng.chance(g.noise * 0.1) {
                w.write_all(b"\xef\xbb\xbf")?;
            }
            let n = per_file.min(left);
            for _ in 0..n {
                buf.clear();
                g.page(&mut buf)?;
                if crlf {
                    crlf_buf.clear();
                    for &c in &buf {
                        if c == b'\n' {
                            crlf_buf.push(b'\r');
                        }
                        crlf_buf.push(c);
                    }
                    std::mem::swap(&mut buf, &mut crlf_buf);
                }
                if g.rng.chance(0.5) {
                    buf.push(b'\n');
                }
                s.bytes += buf.len() as u64;
                w.write_all(&buf)?;
            }
            if g.rng.chance(g.noise * 0.2) {
                buf.clear();
                g.page(&mut buf)?;
                let cut = buf.len() / 2;
                w.write_all(&buf[..cut])?;
                s.bytes += cut as u64;
            }
            w.flush()?;
            left -= n;
            s.pages += n;
            s.files += 1;
            if left == 0 {
                return Ok(s);
            }
        }
    }
    Ok(s)
}
