//! What a run did: its counts, the summary printed at its end, its `--report-json`, its row of the
//! `runs` table, and its exit code.

use crate::load::location::Location;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{ArrayRef, Int64Array, ListBuilder, StringArray, StringBuilder, TimestampMicrosecondArray};
use arrow::record_batch::RecordBatch;

use super::progress::FileCounts;
use crate::contract::{schema, Table};
use crate::error::{Error, Exit, Result};

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    pub run_id: String,
    pub files: u64,
    pub files_skipped: u64,
    pub bad_files: Vec<String>,
    pub bytes_read: u64,
    pub pages: u64,
    pub imported: u64,
    pub duplicates: u64,
    pub rejected: u64,
    pub rejected_by_reason: BTreeMap<&'static str, u64>,
    pub with_issues: u64,
    pub issues_by_code: BTreeMap<String, u64>,
    pub cleaned_up: usize,
    /// Rejects files whose swap a killed replay had left pending, finished by this run's clean-up.
    pub swaps_completed: usize,
    pub seconds: f64,
    /// A rejects replay: `files` counts the reject rows it took out of `rejects`, `files_skipped`
    /// those it left there (they fail the same way again), `bytes_read` the raw bytes replayed.
    pub replay: bool,
}

impl RunSummary {
    /// Counts posts the commit moved to duplicates (another run committed their hashes first) as
    /// duplicates, with the issues they carried.
    pub fn take_back(&mut self, moved: &crate::load::commit::Moved) {
        self.imported -= moved.rows;
        self.duplicates += moved.rows;
        self.with_issues -= moved.with_issues;
        for (code, n) in &moved.issues_by_code {
            if let Some(c) = self.issues_by_code.get_mut(code) {
                *c -= n;
                if *c == 0 {
                    self.issues_by_code.remove(code);
                }
            }
        }
    }

    /// Decompressed dump megabytes per second.
    pub fn mb_per_s(&self) -> f64 {
        if self.seconds > 0.0 {
            self.bytes_read as f64 / 1e6 / self.seconds
        } else {
            0.0
        }
    }

    /// Share of the run's pages that were rejected (0 when it read none).
    pub fn reject_ratio(&self) -> f64 {
        if self.pages == 0 {
            0.0
        } else {
            self.rejected as f64 / self.pages as f64
        }
    }

    /// The run report written by `--report-json`.
    pub fn report(&self, warehouse: &Location) -> serde_json::Value {
        serde_json::json!({
            "run_id": self.run_id,
            "warehouse": warehouse.to_string(),
            "status": self.status(),
            "files": self.files,
            "files_skipped": self.files_skipped,
            "bad_files": self.bad_files,
            "bytes_read": self.bytes_read,
            "pages": self.pages,
            "imported": self.imported,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "rejected_by_reason": self.rejected_by_reason,
            "reject_ratio": self.reject_ratio(),
            "records_with_issues": self.with_issues,
            "issues_by_code": self.issues_by_code,
            "cleaned_up_files": self.cleaned_up,
            "seconds": self.seconds,
            "mb_per_s": self.mb_per_s(),
        })
    }

    /// The `runs.status` value.
    pub fn status(&self) -> &'static str {
        if self.replay {
            "replay"
        } else if self.bad_files.is_empty() {
            "ok"
        } else {
            "bad_input"
        }
    }

    /// The exit code of a finished run: rejected pages are data, an input that could not be read to
    /// its end is not, and neither is a share of rejects over `max_reject_ratio`.
    pub fn exit_code(&self, max_reject_ratio: Option<f64>) -> Exit {
        if max_reject_ratio.is_some_and(|max| self.reject_ratio() > max) {
            Exit::RejectRatio
        } else if self.bad_files.is_empty() {
            Exit::Ok
        } else {
            Exit::BadInput
        }
    }

    /// The summary lines printed at the end of a run.
    pub fn render(&self) -> String {
        let mut s = if self.replay {
            let mut s = format!("quarry rejects replay: run {}\n", self.run_id);
            s += &format!(
                "  rejects    {} rows replayed, {} left as they were (they fail the same way again)\n",
                self.files, self.files_skipped
            );
            s
        } else {
            let mut s = format!("quarry import: run {}\n", self.run_id);
            s += &format!("  files      {} read, {} skipped (already imported)\n", self.files, self.files_skipped);
            s
        };
        s += &format!("  pages      {}\n", self.pages);
        s += &format!("  imported   {}\n", self.imported);
        s += &format!("  duplicates {}\n", self.duplicates);
        s += &format!("  rejected   {}", self.rejected);
        if !self.rejected_by_reason.is_empty() {
            let parts: Vec<String> = self.rejected_by_reason.iter().map(|(r, n)| format!("{r} {n}")).collect();
            s += &format!(" ({})", parts.join(", "));
        }
        s += "\n";
        s += &format!("  issues     {} records with issues", self.with_issues);
        if !self.issues_by_code.is_empty() {
            let parts: Vec<String> = self.issues_by_code.iter().map(|(r, n)| format!("{r} {n}")).collect();
            s += &format!(" ({})", parts.join(", "));
        }
        s += "\n";
        s += &format!(
            "  read       {:.1} MB in {:.2} s, {:.1} MB/s\n",
            self.bytes_read as f64 / 1e6,
            self.seconds,
            self.mb_per_s()
        );
        if self.replay && self.files == 0 {
            s += "  nothing to replay: every stored reject fails the same way with this pipeline\n";
        } else if !self.replay && self.files == 0 && self.files_skipped > 0 {
            s += "  nothing new: every input was imported by an earlier run\n";
        }
        if self.cleaned_up > 0 {
            s += &format!("  cleaned up {} leftover files of a crashed run\n", self.cleaned_up);
        }
        if self.swaps_completed > 0 {
            s += &format!(
                "  finished   the swap of {} rejects files a killed replay had committed\n",
                self.swaps_completed
            );
        }
        for f in &self.bad_files {
            s += &format!("  BAD INPUT  {f}\n");
        }
        s
    }
}

/// What became of one file's pages: the difference of the run's counts after and before it.
pub(crate) fn file_counts(before: &RunSummary, after: &RunSummary, bytes: u64, clock: Instant) -> FileCounts {
    let rejected_by_reason = after
        .rejected_by_reason
        .iter()
        .filter_map(|(r, n)| {
            let d = n - before.rejected_by_reason.get(r).copied().unwrap_or(0);
            (d > 0).then(|| (r.to_string(), d))
        })
        .collect();
    FileCounts {
        bytes,
        pages: after.pages - before.pages,
        imported: after.imported - before.imported,
        duplicates: after.duplicates - before.duplicates,
        rejected: after.rejected - before.rejected,
        rejected_by_reason,
        seconds: clock.elapsed().as_secs_f64(),
    }
}

/// The run's row of the `runs` table; `pipeline` names the pipeline and where it came from.
pub(crate) fn runs_row(
    s: &RunSummary,
    pipeline: &str,
    inputs: &[String],
    started: i64,
    finished: i64,
) -> Result<RecordBatch> {
    let mut list = ListBuilder::new(StringBuilder::new());
    for i in inputs {
        list.values().append_value(i);
    }
    list.append(true);
    let ts = |v: i64| Arc::new(TimestampMicrosecondArray::from(vec![v]).with_timezone(schema::UTC)) as ArrayRef;
    let n = |v: u64| Arc::new(Int64Array::from(vec![v as i64])) as ArrayRef;
    let text = |v: &str| Arc::new(StringArray::from(vec![v])) as ArrayRef;
    RecordBatch::try_new(
        Table::Runs.schema(),
        vec![
            text(&s.run_id),
            ts(started),
            ts(finished),
            text(pipeline),
            Arc::new(list.finish()),
            n(s.files),
            n(s.files_skipped),
            n(s.bytes_read),
            n(s.pages),
            n(s.imported),
            n(s.duplicates),
            n(s.rejected),
            n(s.with_issues),
            text(s.status()),
        ],
    )
    .map_err(Error::stage("building the runs row"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_exits_by_its_outcome() {
        let mut s = RunSummary { pages: 10, rejected: 6, ..RunSummary::default() };
        assert_eq!(s.exit_code(None), Exit::Ok, "rejects are data");
        assert_eq!(s.exit_code(Some(0.7)), Exit::Ok);
        assert_eq!(s.exit_code(Some(0.5)), Exit::RejectRatio);
        s.bad_files.push("a.txt.gz".into());
        assert_eq!(s.exit_code(None), Exit::BadInput);
        assert_eq!(s.exit_code(Some(0.5)), Exit::RejectRatio, "the ratio is checked first");
        assert_eq!(RunSummary::default().reject_ratio(), 0.0, "no pages, no share");
    }
}
