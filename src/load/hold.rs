//! Test-only switches, compiled into debug builds only (the builds the tests run): a run held at a
//! named point until it is killed, a merge policy small enough for a few pages to make levels, a
//! small row limit per posts file, and a small spill threshold for a run's own hashes.

/// Environment variable that holds a run at the point it names (a commit step, a merge point).
#[cfg(debug_assertions)]
pub const TEST_HOLD_ENV: &str = "QUARRY_TEST_HOLD";
/// Environment variable that, set to `tiny`, makes the index merge after a few hundred bytes.
#[cfg(debug_assertions)]
pub const TEST_POLICY_ENV: &str = "QUARRY_TEST_INDEX_POLICY";

/// Holds here until the process is killed when `QUARRY_TEST_HOLD` names `point` (debug builds).
pub(crate) fn hold_at(point: &str) {
    #[cfg(debug_assertions)]
    if std::env::var(TEST_HOLD_ENV).is_ok_and(|v| v == point) {
        eprintln!("quarry: test hold at {point}");
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
    let _ = point;
}

/// Whether `QUARRY_TEST_INDEX_POLICY=tiny` asks for the tiny merge policy (debug builds).
pub(crate) fn tiny_policy() -> bool {
    #[cfg(debug_assertions)]
    if std::env::var(TEST_POLICY_ENV).is_ok_and(|v| v == "tiny") {
        return true;
    }
    false
}

/// Environment variable that sets the rows per posts file (to test a run that writes several).
#[cfg(debug_assertions)]
pub const TEST_FILE_ROWS_ENV: &str = "QUARRY_TEST_POSTS_FILE_ROWS";

/// The rows per file `QUARRY_TEST_POSTS_FILE_ROWS` asks for (debug builds), else `rows`.
pub(crate) fn file_rows(rows: Option<u64>) -> Option<u64> {
    #[cfg(debug_assertions)]
    if let Some(n) = std::env::var(TEST_FILE_ROWS_ENV).ok().and_then(|v| v.parse::<u64>().ok()) {
        return Some(n.max(1));
    }
    rows
}

/// Environment variable that sets how many hashes a run holds in memory before it spills them.
#[cfg(debug_assertions)]
pub const TEST_SPILL_ENV: &str = "QUARRY_TEST_SPILL_HASHES";

/// The spill threshold `QUARRY_TEST_SPILL_HASHES` asks for (debug builds), else `n`.
pub(crate) fn spill_hashes(n: usize) -> usize {
    #[cfg(debug_assertions)]
    if let Some(v) = std::env::var(TEST_SPILL_ENV).ok().and_then(|v| v.parse::<usize>().ok()) {
        return v.max(1);
    }
    n
}
