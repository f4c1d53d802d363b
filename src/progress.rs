//! What a run shows while it works: a progress bar on a terminal, one log line per file otherwise.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Reports progress of an import on stderr.
pub struct Progress {
    bar: Option<ProgressBar>,
    log: bool,
}

impl Progress {
    /// A bar when stderr is a terminal, plain lines when it is not, nothing when `quiet`.
    pub fn new(quiet: bool) -> Progress {
        if quiet {
            return Progress::hidden();
        }
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:30} {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}",
                )
                .expect("valid template"),
            );
            Progress { bar: Some(bar), log: false }
        } else {
            Progress { bar: None, log: true }
        }
    }

    /// Reports nothing.
    pub fn hidden() -> Progress {
        Progress { bar: None, log: false }
    }

    /// Total on-disk bytes to read.
    pub fn start(&self, total: u64) {
        if let Some(b) = &self.bar {
            b.set_length(total);
        }
    }

    /// A file starts.
    pub fn file(&self, name: &str) {
        match &self.bar {
            Some(b) => b.set_message(name.to_string()),
            None if self.log => eprintln!("quarry: reading {name}"),
            None => {}
        }
    }

    /// A file is skipped (already imported).
    pub fn skip(&self, name: &str, size: u64) {
        match &self.bar {
            Some(b) => b.inc(size),
            None if self.log => eprintln!("quarry: skipping {name} (already imported)"),
            None => {}
        }
    }

    /// Bytes read and pages seen so far.
    pub fn advance(&self, bytes: u64, pages: u64) {
        if let Some(b) = &self.bar {
            b.inc(bytes);
            b.set_prefix(pages.to_string());
        }
    }

    /// A problem worth a line of its own, shown even with a bar.
    pub fn warn(&self, msg: &str) {
        match &self.bar {
            Some(b) => b.println(format!("warning: {msg}")),
            None if self.log => eprintln!("quarry: warning: {msg}"),
            None => {}
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
