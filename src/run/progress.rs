//! What a run shows while it works: a progress bar on a terminal; plain log lines otherwise (under
//! cron or systemd), at each file's start and end and every few seconds in between.
//!
//! Log lines are `tracing` events, written to stderr by `tracing-subscriber` as
//! `2026-11-26T14:18:05Z  INFO quarry: …` (above a bar, on a terminal: `…`, or `warn: …`).
//! `RUST_LOG` filters them in `EnvFilter` syntax over a default of `info` (the Delta libraries
//! `warn`): `debug`,
//! `warn,quarry=debug`, or by span: each run is a span `run{id=…}` and each input file a span
//! `file{name=…}` inside it, so `quarry[file{name=dump-001.txt}]=debug` adds the per-file counts of
//! the files whose name ends in a match of the regex `dump-001.txt` (EnvFilter's value patterns
//! must match up to the end of the value). `-v` raises quarry to at least `debug`, `-vv`
//! to `trace`; `--quiet` lets only errors through, whatever `RUST_LOG` says.
//! `QUARRY_PROGRESS_SECS` sets the seconds between periodic lines (default 5).

use std::io::{self, IsTerminal};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tracing::level_filters::LevelFilter;
use tracing::{Event, Level, Span, Subscriber};
use tracing_subscriber::filter::{Directive, EnvFilter, FilterExt, Targets};
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::{FmtContext, MakeWriter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// Seconds between periodic progress lines when stderr is not a terminal.
pub const DEFAULT_INTERVAL_SECS: f64 = 5.0;
/// Environment variable that overrides `DEFAULT_INTERVAL_SECS` (seconds, may be fractional).
pub const INTERVAL_ENV: &str = "QUARRY_PROGRESS_SECS";
/// Environment variable holding the log filter, in `EnvFilter` syntax.
pub const FILTER_ENV: &str = "RUST_LOG";
/// What is logged where `RUST_LOG` says nothing else: `info`, but the Delta libraries only from
/// `warn` (they log every snapshot they build at `info`); `RUST_LOG=deltalake_core=debug` and the
/// like replace their entry.
const DEFAULT_FILTER: &str =
    "info,deltalake=warn,deltalake_core=warn,deltalake_aws=warn,buoyant_kernel=warn,buoyant_kernel_engine=warn";
/// The target prefix of quarry's own events, which `-v` raises.
const CRATE: &str = env!("CARGO_CRATE_NAME");

/// What gets logged: `env` (RUST_LOG over the default, or errors only), or what `at_least` lets
/// through for quarry (`-v`).
struct LogFilter {
    env: EnvFilter,
    at_least: Targets,
}

impl LogFilter {
    /// The filter of `RUST_LOG`, `--quiet` and `-v`, and a warning for each entry of `RUST_LOG`
    /// it ignores because `EnvFilter` cannot read it (a typo in a logging setting does not stop an
    /// unattended import; the warning says what was ignored).
    fn new(rust_log: Option<&str>, quiet: bool, verbose: u8) -> (LogFilter, Vec<String>) {
        if quiet {
            return (
                LogFilter { env: EnvFilter::new(LevelFilter::ERROR.to_string()), at_least: Targets::new() },
                vec![],
            );
        }
        // The default goes first, so that an entry of RUST_LOG for the same target replaces it;
        // parts are trimmed because EnvFilter misreads a directive with a leading space.
        let mut env = EnvFilter::new(DEFAULT_FILTER);
        let mut ignored = Vec::new();
        for part in rust_log.unwrap_or_default().split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.parse::<Directive>() {
                Ok(d) => env = env.add_directive(d),
                Err(e) => ignored.push(format!("{FILTER_ENV}: ignoring {part:?}: {e}")),
            }
        }
        let at_least = match verbose {
            0 => Targets::new(),
            1 => Targets::new().with_target(CRATE, LevelFilter::DEBUG),
            _ => Targets::new().with_target(CRATE, LevelFilter::TRACE),
        };
        (LogFilter { env, at_least }, ignored)
    }
}

/// The bar that log lines print above, once a run draws one.
type BarSlot = Arc<OnceLock<ProgressBar>>;

/// The line format: `2026-11-26T14:18:05Z  INFO quarry: message` (UTC to the second, the level
/// right-aligned, the crate); above a bar only the message, with `warn: ` or `error: ` before it.
struct LineFormat {
    bar: BarSlot,
}

impl<S, N> FormatEvent<S, N> for LineFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut w: Writer<'_>, event: &Event<'_>) -> std::fmt::Result {
        let meta = event.metadata();
        let level = *meta.level();
        if self.bar.get().is_none() {
            let source = meta.target().split("::").next().unwrap_or_default();
            write!(w, "{} {:>5} {source}: ", utc_stamp(SystemTime::now()), level.as_str())?;
        } else if level <= Level::WARN {
            write!(w, "{}: ", level.as_str().to_ascii_lowercase())?;
        }
        ctx.format_fields(w.by_ref(), event)?;
        writeln!(w)
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ`.
fn utc_stamp(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Stderr, through the bar while one is drawn so that the line goes above it.
struct StderrAboveBar(BarSlot);

impl io::Write for &StderrAboveBar {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.0.get() {
            Some(bar) if !bar.is_finished() => bar.suspend(|| io::stderr().write_all(buf))?,
            _ => io::stderr().write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

impl<'a> MakeWriter<'a> for StderrAboveBar {
    type Writer = &'a StderrAboveBar;

    fn make_writer(&'a self) -> Self::Writer {
        self
    }
}

/// The process's logger: `filter` over the line format, written to `writer`.
fn logger<W>(filter: LogFilter, bar: BarSlot, writer: W) -> impl Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::registry().with(
        tracing_subscriber::fmt::layer()
            .event_format(LineFormat { bar })
            .with_writer(writer)
            .with_filter(filter.env.or(filter.at_least)),
    )
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
    /// The run's span (`run{id}`), once `start` named the run.
    run_span: Span,
    /// The span of the file being read (`file{name}`), between `file` and `file_done`.
    file_span: Span,
}

/// Reports progress of a run on stderr.
pub struct Progress {
    /// Only while drawn on a terminal.
    bar: Option<ProgressBar>,
    /// No events at all (`hidden`).
    silent: bool,
    interval: Duration,
    state: Mutex<LogState>,
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

impl Progress {
    /// Sets the process's logger up from `RUST_LOG`, `--quiet` and `-v` (given `verbose` times),
    /// and returns what a run reports through it: a bar when stderr is a terminal and info lines
    /// are on, plain lines otherwise. Only the first call sets the logger up; later ones log
    /// through the logger already there, without a bar.
    pub fn for_cli(quiet: bool, verbose: u8) -> Progress {
        let (rust_log, mut ignored) = match std::env::var(FILTER_ENV) {
            Ok(v) => (Some(v), vec![]),
            Err(std::env::VarError::NotPresent) => (None, vec![]),
            Err(std::env::VarError::NotUnicode(_)) => (None, vec![format!("{FILTER_ENV}: ignored: not UTF-8")]),
        };
        let (filter, bad) = LogFilter::new(rust_log.as_deref(), quiet, verbose);
        ignored.extend(bad);
        let slot = BarSlot::default();
        let installed =
            tracing::subscriber::set_global_default(logger(filter, slot.clone(), StderrAboveBar(slot.clone()))).is_ok();
        for warning in ignored {
            tracing::warn!("{warning}");
        }
        let drawn = installed && io::stderr().is_terminal() && tracing::enabled!(target: CRATE, Level::INFO);
        let bar = drawn.then(|| {
            // Drawn from `start` on: a line logged before (a warning of the walk) gets no empty bar under it.
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::hidden());
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:30} {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}",
                )
                .expect("valid template"),
            );
            slot.get_or_init(|| bar.clone());
            bar
        });
        let interval = std::env::var(INTERVAL_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .unwrap_or(DEFAULT_INTERVAL_SECS);
        Progress::with(bar, false, Duration::from_secs_f64(interval))
    }

    fn with(bar: Option<ProgressBar>, silent: bool, interval: Duration) -> Progress {
        let now = Instant::now();
        Progress {
            bar,
            silent,
            interval,
            state: Mutex::new(LogState {
                started: now,
                last_line: now,
                total: 0,
                bytes: 0,
                pages: 0,
                file: String::new(),
                run_span: Span::none(),
                file_span: Span::none(),
            }),
        }
    }

    /// Reports nothing.
    pub fn hidden() -> Progress {
        Progress::with(None, true, Duration::from_secs(3600))
    }

    /// Runs `log` (which emits events) inside the run's span and the current file's span.
    fn in_spans(&self, log: impl FnOnce()) {
        if self.silent {
            return;
        }
        let (run, file) = {
            let s = self.state.lock().expect("progress state");
            (s.run_span.clone(), s.file_span.clone())
        };
        run.in_scope(|| file.in_scope(log));
    }

    /// The run `run_id` starts; `total` on-disk bytes to read.
    pub fn start(&self, run_id: &str, total: u64) {
        if let Some(b) = &self.bar {
            b.set_length(total);
            b.set_draw_target(ProgressDrawTarget::stderr());
        }
        let mut s = self.state.lock().expect("progress state");
        s.total = total;
        s.started = Instant::now();
        s.last_line = s.started;
        s.run_span = tracing::info_span!("run", id = run_id);
        s.file_span = Span::none();
    }

    /// A file starts (`size`: its size on disk, 0 if unknown).
    pub fn file(&self, name: &str, size: u64) {
        {
            let mut s = self.state.lock().expect("progress state");
            s.file = name.to_string();
            s.file_span = tracing::info_span!(parent: &s.run_span, "file", name);
        }
        if let Some(b) = &self.bar {
            b.set_message(name.to_string());
        } else if size > 0 {
            self.in_spans(|| tracing::info!("reading {name} ({} on disk)", mb(size)));
        } else {
            self.in_spans(|| tracing::info!("reading {name}"));
        }
    }

    /// A file is skipped (already imported).
    pub fn skip(&self, name: &str, size: u64) {
        if let Some(b) = &self.bar {
            b.inc(size);
        }
        let run = {
            let mut s = self.state.lock().expect("progress state");
            s.bytes += size;
            s.run_span.clone()
        };
        if self.bar.is_none() && !self.silent {
            let span = tracing::info_span!(parent: &run, "file", name);
            run.in_scope(|| span.in_scope(|| tracing::info!("skipping {name} (already imported)")));
        }
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
            if self.bar.is_none() && now.duration_since(s.last_line) >= self.interval {
                s.last_line = now;
                Some(Self::status_line(&s, now))
            } else {
                None
            }
        };
        if let Some(l) = line {
            self.in_spans(|| tracing::info!("{l}"));
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

    /// A file is done: its bytes and pages (info), and what became of its pages (debug).
    pub fn file_done(&self, name: &str, c: &FileCounts) {
        let mut msg = format!(
            "{name}: {} pages: {} imported, {} duplicates, {} rejected",
            c.pages, c.imported, c.duplicates, c.rejected
        );
        if !c.rejected_by_reason.is_empty() {
            let parts: Vec<String> = c.rejected_by_reason.iter().map(|(r, n)| format!("{r} {n}")).collect();
            msg += &format!(" ({})", parts.join(", "));
        }
        self.in_spans(|| {
            if self.bar.is_none() {
                tracing::info!("done {name}: {} pages, {} in {:.2} s", c.pages, mb(c.bytes), c.seconds);
            }
            tracing::debug!("{msg}");
        });
        self.state.lock().expect("progress state").file_span = Span::none();
    }

    /// A problem worth a line of its own, shown even with a bar.
    pub fn warn(&self, msg: &str) {
        self.in_spans(|| tracing::warn!("{msg}"));
    }

    /// Removes the bar; without one, writes a last progress line (debug).
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        } else {
            let line = Self::status_line(&self.state.lock().expect("progress state"), Instant::now());
            self.in_spans(|| tracing::debug!("{line}"));
        }
    }
}

impl Drop for Progress {
    /// A run that failed half-way leaves no bar behind its error line.
    fn drop(&mut self) {
        if let Some(b) = self.bar.as_ref().filter(|b| !b.is_finished()) {
            b.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Log output kept in memory.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;

        fn make_writer(&'a self) -> Captured {
            self.clone()
        }
    }

    /// The lines `emit` logs under the logger `for_cli` would set up for these inputs.
    fn logged(rust_log: Option<&str>, quiet: bool, verbose: u8, emit: impl FnOnce()) -> Vec<String> {
        let out = Captured::default();
        let (filter, _) = LogFilter::new(rust_log, quiet, verbose);
        tracing::subscriber::with_default(logger(filter, BarSlot::default(), out.clone()), emit);
        let bytes = out.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap().lines().map(str::to_string).collect()
    }

    /// The levels of the lines logged at each level from quarry's target.
    fn levels_shown(rust_log: Option<&str>, quiet: bool, verbose: u8) -> Vec<String> {
        let lines = logged(rust_log, quiet, verbose, || {
            tracing::error!("e");
            tracing::warn!("w");
            tracing::info!("i");
            tracing::debug!("d");
            tracing::trace!("t");
        });
        lines.iter().map(|l| l.split_whitespace().nth(1).unwrap().to_string()).collect()
    }

    #[test]
    fn plain_lines_carry_utc_time_level_and_crate() {
        let lines = logged(None, false, 0, || {
            tracing::info!("reading a.txt");
            tracing::warn!("a loop");
        });
        let re = regex::Regex::new(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ (ERROR| WARN| INFO|DEBUG|TRACE) quarry: (.*)$")
            .unwrap();
        let parsed: Vec<(String, String)> = lines
            .iter()
            .map(|l| {
                let c = re.captures(l).unwrap_or_else(|| panic!("{l:?}"));
                (c[1].to_string(), c[2].to_string())
            })
            .collect();
        assert_eq!(parsed, [(" INFO".into(), "reading a.txt".into()), (" WARN".into(), "a loop".into())]);
        assert_eq!(utc_stamp(SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_702_685)), "2026-11-26T14:18:05Z");
    }

    #[test]
    fn lines_above_a_bar_are_the_message_and_a_warning_says_so() {
        let out = Captured::default();
        let slot = BarSlot::default();
        slot.get_or_init(ProgressBar::hidden);
        let (filter, _) = LogFilter::new(None, false, 0);
        tracing::subscriber::with_default(logger(filter, slot, out.clone()), || {
            tracing::info!("reading a.txt");
            tracing::warn!("a loop");
            tracing::error!("broken");
        });
        assert_eq!(
            String::from_utf8(out.0.lock().unwrap().clone()).unwrap(),
            "reading a.txt\nwarn: a loop\nerror: broken\n"
        );
    }

    #[test]
    fn rust_log_quiet_and_verbose_set_the_level() {
        let upto = |n: usize| ["ERROR", "WARN", "INFO", "DEBUG", "TRACE"][..n].to_vec();
        assert_eq!(levels_shown(None, false, 0), upto(3));
        assert_eq!(levels_shown(Some(""), false, 0), upto(3));
        assert_eq!(levels_shown(Some("debug"), false, 0), upto(4));
        assert_eq!(levels_shown(Some("warn"), false, 0), upto(2));
        assert_eq!(levels_shown(Some("warn,quarry=debug"), false, 0), upto(4));
        assert_eq!(levels_shown(Some(" warn , quarry=debug "), false, 0), upto(4));
        assert_eq!(levels_shown(Some("quarry::run::progress=trace"), false, 0), upto(5));
        // Another crate's entry leaves quarry at the default.
        assert_eq!(levels_shown(Some("polars=debug"), false, 0), upto(3));
        assert_eq!(levels_shown(Some("off"), false, 0), upto(0));
        // -v raises quarry to at least debug, never lowers it; -vv to trace.
        assert_eq!(levels_shown(Some("quarry=warn"), false, 1), upto(4));
        assert_eq!(levels_shown(Some("quarry=trace"), false, 1), upto(5));
        assert_eq!(levels_shown(None, false, 2), upto(5));
        // --quiet wins over RUST_LOG.
        assert_eq!(levels_shown(Some("trace"), true, 0), upto(1));
    }

    #[test]
    fn a_bad_rust_log_entry_is_ignored_and_named() {
        let (_, ignored) = LogFilter::new(Some("warn,quarry=loud,debug"), false, 0);
        assert_eq!(ignored.len(), 1, "{ignored:?}");
        assert!(ignored[0].starts_with("RUST_LOG: ignoring \"quarry=loud\": "), "{ignored:?}");
        // The entries around it still count.
        assert_eq!(levels_shown(Some("quarry=loud,debug"), false, 0), ["ERROR", "WARN", "INFO", "DEBUG"]);
    }

    fn a_run(p: &Progress) {
        p.start("run-1", 0);
        for name in ["in/dump-000.txt", "in/dump-001.txt"] {
            p.file(name, 10);
            p.advance(10, 1);
            p.file_done(name, &FileCounts { pages: 1, imported: 1, ..FileCounts::default() });
        }
        p.skip("in/dump-002.txt", 10);
        p.finish();
    }

    #[test]
    fn a_span_filter_selects_the_lines_of_one_file() {
        let p = Progress::with(None, false, Duration::from_secs(3600));
        let lines = logged(Some("warn,quarry[file{name=dump-001.txt}]=debug"), false, 0, || a_run(&p));
        let msgs: Vec<&str> = lines.iter().map(|l| l.split_once(" quarry: ").unwrap().1).collect();
        assert_eq!(
            msgs,
            [
                "reading in/dump-001.txt (0.0 MB on disk)",
                "done in/dump-001.txt: 1 pages, 0.0 MB in 0.00 s",
                "in/dump-001.txt: 1 pages: 1 imported, 0 duplicates, 0 rejected"
            ]
        );
        // The run's span holds the files' spans, the skip and the last progress line.
        let lines = logged(Some("warn,quarry[run{id=run-1}]=debug"), false, 0, || a_run(&p));
        assert_eq!(lines.len(), 8, "{lines:#?}");
        assert!(lines[6].ends_with("skipping in/dump-002.txt (already imported)"), "{lines:#?}");
        assert!(lines[7].contains("DEBUG quarry: progress: 0.0 MB read, 1 pages"), "{lines:#?}");
        assert!(logged(Some("warn,quarry[run{id=run-2}]=debug"), false, 0, || a_run(&p)).is_empty());
    }

    #[test]
    fn hidden_reports_nothing() {
        let p = Progress::hidden();
        assert!(logged(Some("trace"), false, 0, || {
            a_run(&p);
            p.warn("a problem");
        })
        .is_empty());
    }

    #[test]
    fn status_line_names_bytes_pages_rate_and_file() {
        let now = Instant::now();
        let p = Progress::hidden();
        let mut s = p.state.lock().unwrap();
        s.started = now - Duration::from_secs(2);
        s.total = 4_000_000;
        s.bytes = 2_000_000;
        s.pages = 17;
        s.file = "a/b.txt".into();
        let l = Progress::status_line(&s, now);
        assert!(l.starts_with("progress: 2.0 MB of 4.0 MB (50%) read, 17 pages, 1.0 MB/s"), "{l}");
        assert!(l.ends_with("file a/b.txt"), "{l}");
    }
}
