//! The index against a plain map over random runs, merges and kills: whatever happened, every open
//! index answers exactly what the map of the finished runs' first hashes says.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;

use proptest::prelude::*;

use super::run_keys::RunKeys;
use super::segment::SegmentWriter;
use super::{run_file, settle_with, Index, Policy};
use crate::load::warehouse::Warehouse;
use crate::transform::dedupe::PackedHash;

/// Small enough that a few dozen hashes make several levels.
const TINY: Policy = Policy { l0_files: 3, l0_bytes: 1_000, file_bytes: 300, l1_bytes: 600 };
const UNIVERSE: u32 = 300;

fn key(i: u32) -> PackedHash {
    PackedHash::new(&format!("{:024x}", u64::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 8)).unwrap()
}

/// How a run ends.
#[derive(Debug, Clone, Copy)]
enum End {
    /// Committed, adopted, merged.
    Done,
    /// Killed after its segment moved in, before its `runs` row: it does not count.
    BeforeRunsRow,
    /// Killed after its `runs` row, before adopting its segment.
    BeforeAdoption,
    /// Done, then a merge cut short: files no manifest lists (outputs, or inputs not yet removed).
    MergeCutShort,
}

fn end() -> impl Strategy<Value = End> {
    prop_oneof![4 => Just(End::Done), 1 => Just(End::BeforeRunsRow), 1 => Just(End::BeforeAdoption), 1 => Just(End::MergeCutShort)]
}

/// Checks every key of the universe against the map.
fn check(index: &Index, truth: &BTreeMap<PackedHash, String>) {
    let mut keys: Vec<PackedHash> = (0..UNIVERSE).map(key).collect();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), UNIVERSE as usize, "distinct keys");
    let found = index.lookup(&keys).unwrap();
    for (k, f) in keys.iter().zip(found) {
        assert_eq!(f, truth.get(k).map(String::as_str), "{k:?}");
    }
}

fn run_once(
    wh: &Warehouse,
    n: usize,
    keys: &[u32],
    end: End,
    finished: &mut BTreeSet<String>,
    truth: &mut BTreeMap<PackedHash, String>,
) {
    let dir = wh.index_dir();
    let (index, repairs) = Index::open(wh, finished).unwrap();
    assert!(repairs.rebuilt.is_empty() && repairs.reset.is_none(), "{repairs:?}");
    check(&index, truth);
    let run = format!("r{n:03}");
    // What a run does: a key some finished run took is a duplicate; the others are new, once.
    let work = tempfile::tempdir().unwrap();
    let mut mine = RunKeys::new(work.path(), &run, 7);
    let mut sorted: Vec<PackedHash> = keys.iter().map(|&i| key(i)).collect();
    sorted.sort_unstable();
    sorted.dedup();
    let taken = index.lookup(&sorted).unwrap();
    let mut new = Vec::new();
    for &i in keys {
        let k = key(i);
        let at = sorted.binary_search(&k).unwrap();
        mine.make_room(1).unwrap();
        if taken[at].is_none() && !mine.in_spills(&[k]).unwrap()[0] && mine.insert(&k) {
            new.push(k);
        }
    }
    drop(index);
    let staged = work.path().join("run.seg");
    if mine.finish(&staged).unwrap().is_some() {
        fs::rename(&staged, dir.join(run_file(&run))).unwrap();
    }
    if matches!(end, End::BeforeRunsRow) {
        return;
    }
    finished.insert(run.clone());
    for k in new {
        truth.insert(k, run.clone());
    }
    if matches!(end, End::BeforeAdoption) {
        return;
    }
    settle_with(&dir, &run, true, &TINY).unwrap();
    if matches!(end, End::MergeCutShort) {
        // A merge's output written but not yet listed, and an input not yet removed: both hold keys
        // of runs that never took them; the next open must drop both unread.
        for (name, from) in [("99999998.seg", 0), ("99999999.seg", UNIVERSE / 2)] {
            let mut w = SegmentWriter::create(&dir.join(name), 10).unwrap();
            let mut ks: Vec<PackedHash> = (from..from + 10).map(key).collect();
            ks.sort_unstable();
            for k in ks {
                w.push(&k, "r999").unwrap();
            }
            w.finish().unwrap();
        }
        fs::write(dir.join("MANIFEST.tmp"), "{").unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn the_index_answers_like_a_map_of_first_runs(
        runs in prop::collection::vec((prop::collection::vec(0..UNIVERSE, 0..60), end()), 1..14)
    ) {
        let dir = tempfile::tempdir().unwrap();
        let wh = Warehouse::create(&dir.path().join("wh").into()).unwrap();
        let mut finished = BTreeSet::new();
        let mut truth = BTreeMap::new();
        for (n, (keys, end)) in runs.iter().enumerate() {
            run_once(&wh, n, keys, *end, &mut finished, &mut truth);
        }
        let (index, _) = Index::open(&wh, &finished).unwrap();
        check(&index, &truth);
        prop_assert_eq!(index.len(), truth.len() as u64, "each hash once");
        let left: Vec<String> = fs::read_dir(wh.index_dir()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        prop_assert!(!left.iter().any(|n| n.ends_with(".tmp") || n.starts_with("9999")), "{:?}", left);
    }
}

#[test]
fn many_runs_make_several_levels_that_still_answer() {
    let dir = tempfile::tempdir().unwrap();
    let wh = Warehouse::create(&dir.path().join("wh").into()).unwrap();
    let (mut finished, mut truth) = (BTreeSet::new(), BTreeMap::new());
    for n in 0..14 {
        let keys: Vec<u32> = (0..40).map(|i| (n * 17 + i * 7) % UNIVERSE).collect();
        run_once(&wh, n as usize, &keys, End::Done, &mut finished, &mut truth);
    }
    let m = super::manifest::Manifest::read(&wh.index_dir()).unwrap().unwrap();
    assert!(m.depth() >= 2, "levels: {:?}", m.files.iter().map(|f| f.level).collect::<Vec<_>>());
    let (index, _) = Index::open(&wh, &finished).unwrap();
    check(&index, &truth);
}

#[test]
fn the_files_written_since_a_run_began_hold_every_hash_taken_since() {
    // A run opens the index, others commit and merge meanwhile; at its commit it asks only the
    // files that are new (`without` the ones it opened): they must hold every hash taken since.
    let dir = tempfile::tempdir().unwrap();
    let wh = Warehouse::create(&dir.path().join("wh").into()).unwrap();
    let (mut finished, mut truth) = (BTreeSet::new(), BTreeMap::new());
    for n in 0..6 {
        let keys: Vec<u32> = (0..40).map(|i| (n * 13 + i * 5) % UNIVERSE).collect();
        run_once(&wh, n as usize, &keys, End::Done, &mut finished, &mut truth);
    }
    let known = Index::open(&wh, &finished).unwrap().0.names();
    let before = truth.clone();
    for n in 6..14 {
        let keys: Vec<u32> = (0..40).map(|i| (n * 13 + i * 5) % UNIVERSE).collect();
        run_once(&wh, n as usize, &keys, End::Done, &mut finished, &mut truth);
    }
    let newer = Index::open(&wh, &finished).unwrap().0.without(&known);
    let mut since: Vec<(&PackedHash, &String)> = truth.iter().filter(|(k, _)| !before.contains_key(*k)).collect();
    since.sort();
    assert!(since.len() > 20, "later runs took hashes: {}", since.len());
    let keys: Vec<PackedHash> = since.iter().map(|(k, _)| **k).collect();
    for ((_, run), found) in since.iter().zip(newer.lookup(&keys).unwrap()) {
        assert_eq!(found, Some(run.as_str()));
    }
}

#[test]
fn an_index_that_holds_every_finished_run_opens_without_listing_the_posts_table() {
    let dir = tempfile::tempdir().unwrap();
    let wh = Warehouse::create(&dir.path().join("wh").into()).unwrap();
    let (mut finished, mut truth) = (BTreeSet::new(), BTreeMap::new());
    for n in 0..3 {
        run_once(&wh, n, &[n as u32, 100 + n as u32], End::Done, &mut finished, &mut truth);
    }
    // A run that took no posts has no segment; its settle lists it as indexed all the same.
    let empty = "20990101T000000.000000Z".to_string();
    settle_with(&wh.index_dir(), &empty, false, &TINY).unwrap();
    finished.insert(empty);
    // A posts "table" that cannot be listed: an open that listed it would fail.
    let posts = wh.table(crate::contract::Table::Posts);
    fs::create_dir_all(posts.parent().unwrap()).unwrap();
    let _ = fs::remove_dir_all(&posts);
    fs::write(&posts, b"not a folder").unwrap();
    let (index, _) = Index::open(&wh, &finished).unwrap();
    check(&index, &truth);
    // A finished run the index does not hold (a lost segment) makes it look at the posts files.
    finished.insert("20990101T000000.000001Z".to_string());
    assert!(Index::open(&wh, &finished).is_err(), "an unindexed run sends the open to the posts table");
}
