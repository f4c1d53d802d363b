//! First-wins dedupe by hash, within a run and against every earlier run.

use std::collections::HashMap;

/// Every hash the warehouse holds (from finished runs) and those taken so far in this run.
/// The value is an index into `runs`, the run that imported the hash first.
#[derive(Debug, Default)]
pub struct HashIndex {
    first: HashMap<Box<str>, u32>,
    runs: Vec<String>,
}

/// What to do with a page's hash.
#[derive(Debug, PartialEq, Eq)]
pub enum Seen<'a> {
    /// Not seen before: this page is imported (and now holds the hash).
    New,
    /// Taken by an earlier page: in this run or in the run named.
    Duplicate { first_run_id: &'a str },
}

impl HashIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a run id and returns its index for `insert`.
    pub fn run(&mut self, run_id: &str) -> u32 {
        match self.runs.iter().position(|r| r == run_id) {
            Some(i) => i as u32,
            None => {
                self.runs.push(run_id.to_string());
                (self.runs.len() - 1) as u32
            }
        }
    }

    /// Records a hash imported by `run` (keeps the first run when seen twice).
    pub fn insert(&mut self, hash: &str, run: u32) {
        self.first.entry(hash.into()).or_insert(run);
    }

    /// Number of hashes held.
    pub fn len(&self) -> usize {
        self.first.len()
    }

    /// True when no hash is held.
    pub fn is_empty(&self) -> bool {
        self.first.is_empty()
    }

    /// Takes `hash` for `run` if it is new; otherwise says which run has it.
    pub fn check(&mut self, hash: &str, run: u32) -> Seen<'_> {
        if let Some(&r) = self.first.get(hash) {
            return Seen::Duplicate { first_run_id: &self.runs[r as usize] };
        }
        self.first.insert(hash.into(), run);
        Seen::New
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_wins_within_and_across_runs() {
        let mut idx = HashIndex::new();
        let old = idx.run("r1");
        idx.insert("aa", old);
        let now = idx.run("r2");
        assert_eq!(idx.check("bb", now), Seen::New);
        assert_eq!(idx.check("bb", now), Seen::Duplicate { first_run_id: "r2" });
        assert_eq!(idx.check("aa", now), Seen::Duplicate { first_run_id: "r1" });
        assert_eq!(idx.len(), 2);
    }
}
