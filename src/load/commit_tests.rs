//! The commit from the Rust side: every table round-trips through its writer, and a commit stopped
//! at each of its steps (as a kill would stop it) is undone — or, once its `runs` row exists,
//! completed — by the next run's clean-up; either way each table's Delta log lists exactly the
//! files of the runs that count once the next run has synced it.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, ListBuilder, StringArray, StringBuilder, TimestampMicrosecondArray};
use arrow::record_batch::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::{delta, recover, sync_delta, CommitStep, RunCommit, STOP_AT};
use crate::contract::{schema, Table};
use crate::extract::batch::{duplicates_batch, rejects_batch, DuplicateRow, RejectRow};
use crate::extract::page::extract;
use crate::load::index::segment::SegmentWriter;
use crate::load::index::{self, Index};
use crate::load::parquet::{properties, TableWriter};
use crate::load::warehouse::Warehouse;
use crate::pipeline::Pipeline;
use crate::transform::dedupe::PackedHash;
use crate::transform::derive::posts_batch;

const SEED_PAGE: &[u8] = include_bytes!("../../tests/fixtures/seed-page.txt");

/// A posts batch of the seed page under `hashes` (every posts column filled, derived ones too).
fn posts(p: &Pipeline, hashes: &[&str]) -> RecordBatch {
    let rec = extract(p, SEED_PAGE, true).expect("the seed page imports");
    let records = hashes
        .iter()
        .map(|h| {
            let mut r = rec.clone().into_owned();
            r.hash = h.to_string();
            r.cells[p.cols.hash] = crate::extract::record::Cell::Text(h.to_string().into());
            r
        })
        .collect();
    posts_batch(p, records).expect("posts batch")
}

fn rejects(run: &str) -> RecordBatch {
    let row = |offset, raw: &[u8]| RejectRow {
        source_file: "dumps/a.txt".into(),
        source_offset: offset,
        reason: "no_meta",
        detail: "no meta block".into(),
        raw: raw.to_vec(),
    };
    // Raw bytes as read: a truncated page can end inside a character.
    rejects_batch(run, &[row(0, b"title\n\nbody\n"), row(12, b"caf\xc3")]).expect("rejects batch")
}

fn duplicates(run: &str, first: &str) -> RecordBatch {
    let row = DuplicateRow {
        hash: "113b8413583934d18f4af6bc".into(),
        source_file: "dumps/b.txt".into(),
        source_offset: 77,
        first_run_id: first.into(),
    };
    duplicates_batch(run, &[row]).expect("duplicates batch")
}

fn runs_row(run: &str) -> RecordBatch {
    let mut inputs = ListBuilder::new(StringBuilder::new());
    inputs.values().append_value("dumps");
    inputs.append(true);
    let ts = |v: i64| Arc::new(TimestampMicrosecondArray::from(vec![v]).with_timezone(schema::UTC)) as ArrayRef;
    let n = |v: i64| Arc::new(Int64Array::from(vec![v])) as ArrayRef;
    let text = |v: &str| Arc::new(StringArray::from(vec![v])) as ArrayRef;
    let mut cols = vec![text(run), ts(1), ts(2), text("alphanode (test)"), Arc::new(inputs.finish())];
    cols.extend([n(1), n(0), n(100), n(4), n(1), n(1), n(2), n(0)]);
    cols.push(text("ok"));
    RecordBatch::try_new(Table::Runs.schema(), cols).expect("runs row")
}

fn read_back(path: &Path) -> RecordBatch {
    let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(path).expect("open")).expect("parquet").build();
    let batches: Vec<RecordBatch> = reader.expect("reader").map(|b| b.expect("batch")).collect();
    arrow::compute::concat_batches(&batches[0].schema(), &batches).expect("concat")
}

#[test]
fn every_table_round_trips_through_its_writer() {
    let p = Pipeline::builtin();
    let dir = tempfile::tempdir().unwrap();
    let batches = [
        (Table::Posts, posts(&p, &["113b8413583934d18f4af6bc", "ffff0000ffff0000ffff"])),
        (Table::Rejects, rejects("r1")),
        (Table::Duplicates, duplicates("r1", "r0")),
        (Table::Runs, runs_row("r1")),
    ];
    for (table, batch) in batches {
        let path = dir.path().join(format!("{table}.parquet"));
        let mut w = TableWriter::create(&path, table.schema(), properties(&p.output, table).unwrap()).expect("writer");
        w.write(&batch).unwrap();
        let m = w.close().unwrap();
        assert_eq!(m.rows, batch.num_rows() as u64, "{table}");
        assert_eq!(m.bytes, std::fs::metadata(&path).unwrap().len(), "{table}");
        let back = read_back(&path);
        assert_eq!(back.schema(), table.schema(), "{table}: the schema read back is the contract's");
        assert_eq!(back, batch, "{table}: every value read back as written");
        // The write hints reach the file: a bloom filter on each hinted column.
        let meta = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap()).unwrap().metadata().clone();
        for col in table.hints().bloom {
            let i = table.schema().index_of(col).unwrap();
            assert!(meta.row_group(0).column(i).bloom_filter_offset().is_some(), "{table}.{col}: bloom filter");
        }
    }
}

/// A warehouse with one finished run, and a second run staged with rows in every data table (and,
/// with `replay`, a new version of the first run's rejects file with one of its two rows).
struct Setup {
    _dir: tempfile::TempDir,
    wh: Warehouse,
    first: String,
    second: String,
}

/// Stages a run: a row in every data table, and its index segment (returned).
fn stage_run(wh: &Warehouse, p: &Pipeline, run: &str, first: &str, hash: &str) -> (RunCommit, PathBuf) {
    let c = RunCommit::begin(wh, run, "2026-12-01").unwrap();
    let segment = c.index_work().unwrap().join("run.seg");
    let mut w = SegmentWriter::create(&segment, 1).unwrap();
    w.push(&PackedHash::new(hash).unwrap(), run).unwrap();
    w.finish().unwrap();
    let write = |t: Table, b: &RecordBatch| {
        let mut w = c.writer(t, &p.output).unwrap();
        w.write(b).unwrap();
        w.close().unwrap();
    };
    write(Table::Posts, &posts(p, &[hash]));
    write(Table::Rejects, &rejects(run));
    write(Table::Duplicates, &duplicates(run, first));
    (c, segment)
}

fn setup(p: &Pipeline) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let wh = Warehouse::create(&dir.path().join("wh").into()).unwrap();
    sync_delta(&wh, &Default::default()).unwrap();
    let (first, second) = ("20261201T000000.000001Z".to_string(), "20261201T000000.000002Z".to_string());
    let (c, segment) = stage_run(&wh, p, &first, "", "aaaa0000aaaa0000aaaa");
    let files = [("d1".to_string(), "dumps/a.txt".to_string())];
    c.commit([1, 2, 1], &files, Some(&segment), &runs_row(&first), &p.output, &[]).unwrap();
    index::settle(&wh.index_dir(), &first, true).unwrap();
    Setup { _dir: dir, wh, first, second }
}

/// Every file below the warehouse, relative to it, but the Delta logs (which grow by the entries
/// that undo a run: checked by `delta_lists_the_folders`), the lock and the synced mark.
fn tree(root: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n != "_delta_log") {
                    stack.push(p);
                }
            } else if p.file_name().is_some_and(|n| n != "lock" && n != "synced") {
                out.insert(p.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    out
}

/// Commits the second run (`replay`: with the first run's rejects file rewritten to one row),
/// stopped at `step`.
fn commit_stopped_at(s: &Setup, p: &Pipeline, step: CommitStep, replay: bool) {
    let (c, segment) = stage_run(&s.wh, p, &s.second, &s.first, "bbbb0000bbbb0000bbbb");
    let mut replaced = Vec::new();
    if replay {
        let mut w = c.replacement_writer(&s.first, &p.output).unwrap();
        w.write(&rejects(&s.first).slice(1, 1)).unwrap();
        replaced.push((s.first.clone(), w.close().unwrap().rows));
    }
    let files = [("d2".to_string(), "dumps/b.txt".to_string())];
    STOP_AT.set(Some(step));
    let done = c.commit([1, 2, 1], &files, Some(&segment), &runs_row(&s.second), &p.output, &replaced);
    STOP_AT.set(None);
    done.unwrap();
}

#[test]
fn a_commit_stopped_at_any_step_is_undone_or_completed_by_the_next_clean_up() {
    let p = Pipeline::builtin();
    for replay in [false, true] {
        for step in CommitStep::ALL {
            let s = setup(&p);
            let before = tree(s.wh.root());
            assert!(s.wh.is_synced().unwrap(), "the first run's commit marked the warehouse synced");
            commit_stopped_at(&s, &p, step, replay);
            // A commit cut off once it began to publish leaves the next holder a full recovery.
            let cut = step > CommitStep::Staged;
            assert_eq!(s.wh.is_synced().unwrap(), !cut, "{step:?}: the synced mark");
            let finished = s.wh.finished_runs().unwrap();
            let cleaned = s.wh.cleanup(&finished, true).unwrap();
            let (index, repairs) = Index::open(&s.wh, &finished).unwrap();
            let synced = sync_delta(&s.wh, &finished).unwrap();
            delta_lists_the_folders(&s.wh, step);
            let after = tree(s.wh.root());
            let counts = step >= CommitStep::RunsRow;
            let rolled: usize = synced.iter().map(|(_, x)| x.added.len()).sum();
            let undone: usize = synced.iter().map(|(_, x)| x.removed.len()).sum();
            if step == CommitStep::RunsRow {
                // and, for a replay, the swap the clean-up finished: the rewritten rejects file
                let want = 1 + usize::from(replay);
                assert_eq!(
                    (rolled, undone),
                    (want, 0),
                    "{step:?}: the runs row's log entry rolled forward: {synced:?}"
                );
            } else if !counts && step > CommitStep::Staged {
                assert!(rolled == 0 && undone > 0, "{step:?}: the run's log entries undone: {synced:?}");
            } else if !replay || step == CommitStep::Staged {
                assert_eq!((rolled, undone), (0, 0), "{step:?}: nothing to sync");
            }
            assert_eq!(finished.contains(&s.second), counts, "{step:?}: the run counts once its runs row exists");
            if !counts {
                assert_eq!(after, before, "{step:?} (replay {replay}): clean-up leaves the warehouse as before");
                assert!(cleaned.completed.is_empty(), "{step:?}");
            } else {
                // The run counts: its files stay, and a replay's pending swap is finished.
                for t in Table::ALL {
                    let ids: Vec<String> = s.wh.table_files(t).unwrap().into_iter().map(|f| f.run).collect();
                    assert!(ids.contains(&s.second), "{step:?}: {t} holds the second run");
                }
                assert!(!s.wh.staging(&s.second).exists(), "{step:?}: staging removed");
                let old = s.wh.table_file(Table::Rejects, &s.first, "");
                assert_eq!(read_back(&old).num_rows(), if replay { 1 } else { 2 }, "{step:?}: replay {replay}");
                assert_eq!(cleaned.completed.len(), usize::from(replay), "{step:?}: replay {replay}");
            }
            // The hashes a later run sees are those of the runs that count, no more.
            let keys = ["aaaa0000aaaa0000aaaa", "bbbb0000bbbb0000bbbb"].map(|h| PackedHash::new(h).unwrap());
            let found = index.lookup(&keys).unwrap();
            assert_eq!(found[0], Some(s.first.as_str()), "{step:?}: the first run's hash");
            let second = counts.then_some(s.second.as_str());
            assert_eq!(found[1], second, "{step:?}: the second run's hash");
            assert_eq!(repairs.rebuilt, Vec::<String>::new(), "{step:?}: nothing to rebuild");
        }
    }
}

/// Each table's Delta log lists exactly the files in its folder, at their sizes.
fn delta_lists_the_folders(wh: &Warehouse, step: CommitStep) {
    for t in Table::ALL {
        let mut on_disk: Vec<(String, i64)> =
            wh.table_files(t).unwrap().into_iter().map(|f| (f.rel, f.size as i64)).collect();
        on_disk.sort();
        assert_eq!(
            delta::files(&wh.table_url(t).unwrap()).unwrap(),
            on_disk,
            "{step:?}: {t}'s Delta log lists its folder"
        );
    }
}

#[test]
fn recovery_runs_in_full_only_after_a_commit_was_cut_off() {
    let p = Pipeline::builtin();
    let s = setup(&p);
    commit_stopped_at(&s, &p, CommitStep::Posts, false);
    // The cut-off commit removed the mark: the next holder cleans up and syncs the logs.
    let super::Recovered { finished, cleaned, versions } = recover(&s.wh).unwrap();
    assert!(!finished.contains(&s.second));
    assert_eq!(versions, log_versions(&s.wh), "the versions after the sync (the undo is a commit)");
    let posts = s.wh.table_file(Table::Posts, &s.second, "2026-12-01");
    assert!(cleaned.removed.contains(&posts), "the cut-off run's posts file is removed: {cleaned:?}");
    delta_lists_the_folders(&s.wh, CommitStep::Posts);
    // Marked again (as the next run's commit leaves it), recovery only reads: a file of an
    // unfinished run that no log names is not looked for (only a cut-off commit leaves those).
    s.wh.mark_synced(&Default::default()).unwrap();
    std::fs::create_dir_all(posts.parent().unwrap()).unwrap();
    std::fs::write(&posts, b"not looked at").unwrap();
    let cleaned = recover(&s.wh).unwrap().cleaned;
    assert!(cleaned.removed.is_empty(), "{cleaned:?}");
    assert!(posts.exists());
}

/// The latest version of each table's log, as a reader other than quarry opens it.
fn log_versions(wh: &Warehouse) -> std::collections::BTreeMap<Table, u64> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    Table::ALL
        .into_iter()
        .map(|t| (t, rt.block_on(deltalake::open_table(wh.table_url(t).unwrap())).unwrap().version().unwrap()))
        .collect()
}

#[test]
fn the_synced_mark_names_each_logs_latest_version_and_the_next_commit_appends_after_it() {
    let p = Pipeline::builtin();
    let s = setup(&p);
    let mark = s.wh.synced().unwrap().expect("marked");
    assert_eq!((mark.run.as_str(), &mark.versions), (s.first.as_str(), &log_versions(&s.wh)));
    // The second run knows the versions (as its recovery under the lock reads them from the mark).
    let (mut c, segment) = stage_run(&s.wh, &p, &s.second, &s.first, "bbbb0000bbbb0000bbbb");
    c.knows_versions(mark.versions.clone());
    let files = [("d2".to_string(), "dumps/b.txt".to_string())];
    c.commit([1, 2, 1], &files, Some(&segment), &runs_row(&s.second), &p.output, &[]).unwrap();
    let after = s.wh.synced().unwrap().expect("marked");
    assert_eq!(after.versions, log_versions(&s.wh));
    assert!(after.versions.iter().all(|(t, v)| *v == mark.versions[t] + 1), "{after:?} after {mark:?}");
    delta_lists_the_folders(&s.wh, CommitStep::Committed);
}

#[test]
fn an_append_whose_known_version_was_taken_makes_the_log_match_the_finished_runs_first() {
    let p = Pipeline::builtin();
    let s = setup(&p);
    let mark = s.wh.synced().unwrap().expect("marked");
    // A run that lost its lease (taken over meanwhile) appended to duplicates after the mark was
    // written: its file and its log entry, and no runs row.
    let stray = "20261201T000000.000009Z";
    let table = s.wh.table(Table::Duplicates);
    let from = s.wh.table_file(Table::Duplicates, &s.first, "");
    let to = table.join(format!("{stray}.parquet"));
    std::fs::copy(&from, &to).unwrap();
    let url = s.wh.table_url(Table::Duplicates).unwrap();
    delta::append(
        &url,
        Table::Duplicates,
        stray,
        vec![delta::add_for(&s.wh.disk_file(Table::Duplicates, to).unwrap()).unwrap()],
    )
    .unwrap();
    let (mut c, segment) = stage_run(&s.wh, &p, &s.second, &s.first, "bbbb0000bbbb0000bbbb");
    c.knows_versions(mark.versions);
    let files = [("d2".to_string(), "dumps/b.txt".to_string())];
    c.commit([1, 2, 1], &files, Some(&segment), &runs_row(&s.second), &p.output, &[]).unwrap();
    let listed: Vec<String> = delta::files(&url).unwrap().into_iter().map(|(p, _)| p).collect();
    assert_eq!(listed, [format!("{}.parquet", s.first), format!("{}.parquet", s.second)]);
    assert_eq!(s.wh.synced().unwrap().unwrap().versions, log_versions(&s.wh));
}

#[test]
fn a_commit_moves_the_hashes_another_run_took_meanwhile_to_duplicates() {
    let p = Pipeline::builtin();
    let dir = tempfile::tempdir().unwrap();
    let wh = Warehouse::create(&dir.path().join("wh").into()).unwrap();
    let run = "20261201T000000.000003Z";
    let c = RunCommit::begin(&wh, run, "2026-12-01").unwrap();
    // Three posts in two parts, and a duplicate that named this run as the first of one of them.
    let (a, b, d) = ("aaaa0000aaaa0000aaaa", "bbbb0000bbbb0000bbbb", "dddd0000dddd0000dddd");
    for (n, hashes) in [(0, vec![a, b]), (1, vec![d])] {
        let path = c.staging.join(crate::load::parquet::part_name("posts", n));
        let mut w =
            TableWriter::create(&path, Table::Posts.schema(), properties(&p.output, Table::Posts).unwrap()).unwrap();
        w.write(&posts(&p, &hashes)).unwrap();
        w.close().unwrap();
    }
    let mut w = c.writer(Table::Duplicates, &p.output).unwrap();
    let own =
        DuplicateRow { hash: d.into(), source_file: "dumps/c.txt".into(), source_offset: 5, first_run_id: run.into() };
    w.write(&duplicates_batch(run, &[own]).unwrap()).unwrap();
    w.close().unwrap();
    let segment = c.index_work().unwrap().join("run.seg");
    let mut s = SegmentWriter::create(&segment, 3).unwrap();
    for h in [a, b, d] {
        s.push(&PackedHash::new(h).unwrap(), run).unwrap();
    }
    s.finish().unwrap();

    let taken = std::collections::HashMap::from([(b.to_string(), "w1".to_string()), (d.to_string(), "w2".to_string())]);
    let moved = c.move_taken(&taken, &segment, &p.output).unwrap();
    assert_eq!(moved.rows, 2);
    // Part 1 lost its only row: gone, so part 0 is the only one left.
    let part0 = read_back(&c.staging.join("posts.parquet"));
    let hashes = |b: &RecordBatch, col: &str| -> Vec<String> {
        let a = b.column_by_name(col).unwrap().as_any().downcast_ref::<StringArray>().unwrap();
        (0..arrow::array::Array::len(a)).map(|i| a.value(i).to_string()).collect()
    };
    assert_eq!(hashes(&part0, "hash"), [a]);
    assert!(!c.staging.join(crate::load::parquet::part_name("posts", 1)).exists());
    let dups = read_back(&c.staging.join("duplicates.parquet"));
    assert_eq!(hashes(&dups, "hash"), [d, b, d]);
    assert_eq!(hashes(&dups, "first_run_id"), ["w2", "w1", "w2"], "this run's own first of d now names w2");
    let seg = crate::load::index::segment::Segment::open(&segment, false).unwrap();
    let left: Vec<String> = seg.records_iter().map(|r| r.unwrap().0.to_hex()).collect();
    assert_eq!(left, [a]);
}

#[test]
fn a_checkpointed_log_is_no_data_to_the_clean_up_and_the_sync_reads_it() {
    let p = Pipeline::builtin();
    let s = setup(&p);
    let url = s.wh.table_url(Table::Posts).unwrap();
    let listed = delta::files(&url).unwrap();
    assert_eq!(delta::checkpoint(&url).unwrap(), 1);
    let checkpoint = s.wh.table(Table::Posts).join("_delta_log/00000000000000000001.checkpoint.parquet");
    assert!(checkpoint.exists());
    assert!(s.wh.table_files(Table::Posts).unwrap().iter().all(|f| !f.rel.starts_with("_delta_log")));
    // A full recovery (what follows a commit cut off) keeps the checkpoint and adds nothing.
    let finished = s.wh.finished_runs().unwrap();
    let (cleaned, versions) = super::recover_in_full(&s.wh, &finished).unwrap();
    assert!(cleaned.removed.is_empty(), "{cleaned:?}");
    assert!(checkpoint.exists());
    assert_eq!(versions[&Table::Posts], 1, "nothing to sync");
    assert_eq!(delta::files(&url).unwrap(), listed);
}

#[test]
fn a_commit_checkpoints_the_log_it_takes_past_a_multiple_of_the_interval() {
    use super::Landed;
    let at = |before, version| Landed { table: Table::Posts, before, version };
    assert!(at(Some(9), 10).passes(10) && !at(Some(10), 11).passes(10));
    assert!(at(Some(8), 11).passes(10), "another writer took version 10 meanwhile");
    assert!(at(None, 20).passes(10) && !at(None, 21).passes(10));
    assert!(at(Some(0), 1).passes(1) && !at(Some(1), 2).passes(0));
}
