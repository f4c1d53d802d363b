//! What a run shows while it works: a progress bar on a terminal; plain log lines otherwise (under
//! cron or systemd), at each file's start and end and every few seconds in between.
//!
//! Log lines go to stderr as `2026-11-26T14:18:05Z  INFO quarry: …`. The level is `info` unless
//! `RUST_LOG` names another one (`error`, `warn`, `info`, `debug`, `trace`; `quarry=debug` or a
//! list such as `warn,quarry=debug` work too: the entry for `quarry` wins over a bare level);
//! `-v` raises it to at least `debug` (per-file counts), `--quiet` lowers it to `error`.
//! `QUARRY_PROGRESS_SECS` sets the seconds between periodic lines (default 5).

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Seconds between periodic progress lines when stderr is not a terminal.
pub const DEFAULT_INTERVAL_SECS: f64 = 5.0;
/// Environment variable that overrides `DEFAULT_INTERVAL_SECS` (seconds, may be fractional).
pub const INTERVAL_ENV: &str = "QUARRY_PROGRESS_SECS";

/// How much a run says; each level includes those before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl Level {
    fn parse(s: &str) -> Option<Level> {
        match s.trim().to_ascii_lowercase().as_str() {
            "error" => Some(Level::Error),
            "warn" | "warning" => Some(Level::Warn),
            "info" => Some(Level::Info),
            "debug" => Some(Level::Debug),
            "trace" => Some(Level::Trace),
            // `off` still lets errors through: quarry's one-line error message is not a log line.
            "off" => Some(Level::Error),
            _ => None,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Level::Error => "ERROR",
            Level::Warn => " WARN",
            Level::Info => " INFO",
            Level::Debug => "DEBUG",
            Level::Trace => "TRACE",
        }
    }

    /// The level a `RUST_LOG`-style value asks for: the `quarry=LEVEL` entry if there is one, else
    /// the last bare level; `None` when it names neither (other crates' entries are ignored).
    pub fn from_filter(filter: &str) -> Option<Level> {
        let mut bare = None;
        for part in filter.split(',') {
            match part.split_once('=') {
                Some((target, level)) => {
                    let target = target.trim();
                    if target == "quarry" || target.starts_with("quarry::") {
                        if let Some(l) = Level::parse(level) {
                            return Some(l);
                        }
                    }
                }
                None => bare = Level::parse(part).or(bare),
            }
        }
        bare
    }
}

/// Counts of one file, for its last log line.
#[derive(Debug, Clone, Default)]
pub struct FileCounts {
    /// Decompressed bytes read.
    pub bytes: u64,
    pub pages: u64,
    pub imported: u64,
    pub duplicates: u64,
    pub rejected: u64,
    /// Rejects by reason code, as `reason n` parts.
    pub rejected_by_reason: Vec<(String, u64)>,
    pub seconds: f64,
}

struct LogState {
    started: Instant,
    last_line: Instant,
    total: u64,
    bytes: u64,
    pages: u64,
    file: String,
}

/// Reports progress of a run on stderr.
pub struct Progress {
    bar: Option<ProgressBar>,
    level: Level,
    interval: Duration,
    state: Mutex<LogState>,
}

/// UTC wall-clock time as `YYYY-MM-DDTHH:MM:SSZ`.
fn utc_now() -> String {
    let secs =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0) as i64;
    let (y, m, d) = crate::extract::value::civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem / 60 % 60, rem % 60)
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

impl Progress {
    /// A bar when stderr is a terminal, plain lines when it is not, errors only when `quiet`.
    pub fn new(quiet: bool) -> Progress {
        Progress::for_cli(quiet, 0)
    }

    /// The level from `--quiet`, `-v` (given `verbose` times) and `RUST_LOG`; a bar only on a terminal.
    pub fn for_cli(quiet: bool, verbose: u8) -> Progress {
        let env = std::env::var("RUST_LOG").ok().and_then(|f| Level::from_filter(&f));
        let mut level = env.unwrap_or(Level::Info);
        if verbose >= 2 {
            level = level.max(Level::Trace);
        } else if verbose == 1 {
            level = level.max(Level::Debug);
        }
        if quiet {
            level = Level::Error;
        }
        let bar = (level >= Level::Info && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:30} {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}",
                )
                .expect("valid template"),
            );
            bar
        });
        let interval = std::env::var(INTERVAL_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .unwrap_or(DEFAULT_INTERVAL_SECS);
        Progress::with(bar, level, Duration::from_secs_f64(interval))
    }

    fn with(bar: Option<ProgressBar>, level: Level, interval: Duration) -> Progress {
        let now = Instant::now();
        Progress {
            bar,
            level,
            interval,
            state: Mutex::new(LogState {
                started: now,
                last_line: now,
                total: 0,
                bytes: 0,
                pages: 0,
                file: String::new(),
            }),
        }
    }

    /// Reports nothing.
    pub fn hidden() -> Progress {
        Progress::with(None, Level::Error, Duration::from_secs(3600))
    }

    /// The level in force.
    pub fn level(&self) -> Level {
        self.level
    }

    /// Writes one log line at `level` (above a bar when there is one).
    pub fn log(&self, level: Level, msg: &str) {
        if level > self.level {
            return;
        }
        match &self.bar {
            Some(b) if level > Level::Warn => b.println(msg),
            Some(b) => b.println(format!("{}: {msg}", level.label().trim().to_lowercase())),
            None => eprintln!("{} {} quarry: {msg}", utc_now(), level.label()),
        }
    }

    /// Total on-disk bytes to read.
    pub fn start(&self, total: u64) {
        if let Some(b) = &self.bar {
            b.set_length(total);
        }
        let mut s = self.state.lock().expect("progress state");
        s.total = total;
        s.started = Instant::now();
        s.last_line = s.started;
    }

    /// A file starts (`size`: its size on disk, 0 if unknown).
    pub fn file(&self, name: &str, size: u64) {
        if let Some(b) = &self.bar {
            b.set_message(name.to_string());
        } else if size > 0 {
            self.log(Level::Info, &format!("reading {name} ({} on disk)", mb(size)));
        } else {
            self.log(Level::Info, &format!("reading {name}"));
        }
        self.state.lock().expect("progress state").file = name.to_string();
    }

    /// A file is skipped (already imported).
    pub fn skip(&self, name: &str, size: u64) {
        if let Some(b) = &self.bar {
            b.inc(size);
        } else {
            self.log(Level::Info, &format!("skipping {name} (already imported)"));
        }
        self.state.lock().expect("progress state").bytes += size;
    }

    /// On-disk bytes read and pages seen (in the whole run) since the last call / so far; writes a
    /// periodic line when the interval has passed.
    pub fn advance(&self, bytes: u64, pages: u64) {
        if let Some(b) = &self.bar {
            b.inc(bytes);
            b.set_prefix(pages.to_string());
        }
        let line = {
            let mut s = self.state.lock().expect("progress state");
            s.bytes += bytes;
            s.pages = pages;
            let now = Instant::now();
            if self.bar.is_none() && self.level >= Level::Info && now.duration_since(s.last_line) >= self.interval {
                s.last_line = now;
                Some(Self::status_line(&s, now))
            } else {
                None
            }
        };
        if let Some(l) = line {
            self.log(Level::Info, &l);
        }
    }

    fn status_line(s: &LogState, now: Instant) -> String {
        let secs = now.duration_since(s.started).as_secs_f64();
        let rate = if secs > 0.0 { s.bytes as f64 / 1e6 / secs } else { 0.0 };
        let of = if s.total > 0 {
            format!(" of {} ({:.0}%)", mb(s.total), s.bytes as f64 * 100.0 / s.total as f64)
        } else {
            String::new()
        };
        format!(
            "progress: {}{of} read, {} pages, {rate:.1} MB/s, {secs:.1} s elapsed, file {}",
            mb(s.bytes),
            s.pages,
            if s.file.is_empty() { "-" } else { &s.file }
        )
    }

    /// A file is done: its bytes and pages (info), and with `-v` what became of its pages (debug).
    pub fn file_done(&self, name: &str, c: &FileCounts) {
        if self.bar.is_none() {
            self.log(Level::Info, &format!("done {name}: {} pages, {} in {:.2} s", c.pages, mb(c.bytes), c.seconds));
        }
        let mut msg = format!(
            "{name}: {} pages: {} imported, {} duplicates, {} rejected",
            c.pages, c.imported, c.duplicates, c.rejected
        );
        if !c.rejected_by_reason.is_empty() {
            let parts: Vec<String> = c.rejected_by_reason.iter().map(|(r, n)| format!("{r} {n}")).collect();
            msg += &format!(" ({})", parts.join(", "));
        }
        self.log(Level::Debug, &msg);
    }

    /// A problem worth a line of its own, shown even with a bar.
    pub fn warn(&self, msg: &str) {
        self.log(Level::Warn, msg);
    }

    /// Removes the bar; without one, writes a last progress line.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        } else if self.level >= Level::Info {
            let line = Self::status_line(&self.state.lock().expect("progress state"), Instant::now());
            self.log(Level::Debug, &line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_log_filters() {
        assert_eq!(Level::from_filter("debug"), Some(Level::Debug));
        assert_eq!(Level::from_filter("WARN"), Some(Level::Warn));
        assert_eq!(Level::from_filter("warn,quarry=trace"), Some(Level::Trace));
        assert_eq!(Level::from_filter("quarry::import=error,info"), Some(Level::Error));
        assert_eq!(Level::from_filter("polars=debug"), None);
        assert_eq!(Level::from_filter("polars=debug,info"), Some(Level::Info));
        assert_eq!(Level::from_filter("nonsense"), None);
        assert_eq!(Level::from_filter("off"), Some(Level::Error));
    }

    #[test]
    fn status_line_names_bytes_pages_rate_and_file() {
        let now = Instant::now();
        let s = LogState {
            started: now - Duration::from_secs(2),
            last_line: now,
            total: 4_000_000,
            bytes: 2_000_000,
            pages: 17,
            file: "a/b.txt".into(),
        };
        let l = Progress::status_line(&s, now);
        assert!(l.starts_with("progress: 2.0 MB of 4.0 MB (50%) read, 17 pages, 1.0 MB/s"), "{l}");
        assert!(l.ends_with("file a/b.txt"), "{l}");
    }
}
