//! First-wins dedupe by hash, within a run and against every earlier run.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};

/// A hash of up to 64 hex digits packed two to a byte: no allocation per hash, 34 bytes a key.
#[derive(Clone, Copy, PartialEq, Eq)]
struct PackedHash {
    digits: u8,
    bytes: [u8; 32],
}

impl PackedHash {
    /// Packs lower-case hex of 1 to 64 digits; anything else is kept as text instead.
    fn new(hash: &str) -> Option<PackedHash> {
        let h = hash.as_bytes();
        if h.is_empty() || h.len() > 64 {
            return None;
        }
        let mut bytes = [0u8; 32];
        for (i, &c) in h.iter().enumerate() {
            let v = match c {
                b'0'..=b'9' => c - b'0',
                b'a'..=b'f' => c - b'a' + 10,
                _ => return None,
            };
            bytes[i / 2] |= if i % 2 == 0 { v << 4 } else { v };
        }
        Some(PackedHash { digits: h.len() as u8, bytes })
    }
}

impl Hash for PackedHash {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write(&self.bytes[..(self.digits as usize).div_ceil(2)]);
        state.write_u8(self.digits);
    }
}

/// xxh3 over a key's bytes: much cheaper than SipHash, and keys come from our own files.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0 = xxhash_rust::xxh3::xxh3_64_with_seed(bytes, self.0);
    }
    fn write_u8(&mut self, i: u8) {
        self.0 = self.0.rotate_left(5) ^ u64::from(i);
    }
}

type FastMap<K> = HashMap<K, u32, BuildHasherDefault<KeyHasher>>;

/// Every hash the warehouse holds (from finished runs) and those taken so far in this run.
/// The value is an index into `runs`, the run that imported the hash first.
#[derive(Default)]
pub struct HashIndex {
    packed: FastMap<PackedHash>,
    /// Hashes that are not lower-case hex (never written by quarry, but a warehouse may hold them).
    other: FastMap<Box<str>>,
    runs: Vec<String>,
}

impl std::fmt::Debug for HashIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashIndex").field("hashes", &self.len()).field("runs", &self.runs.len()).finish()
    }
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
        match PackedHash::new(hash) {
            Some(k) => self.packed.entry(k).or_insert(run),
            None => self.other.entry(hash.into()).or_insert(run),
        };
    }

    /// Room for `n` more hashes.
    pub fn reserve(&mut self, n: usize) {
        self.packed.reserve(n);
    }

    /// Number of hashes held.
    pub fn len(&self) -> usize {
        self.packed.len() + self.other.len()
    }

    /// True when no hash is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes `hash` for `run` if it is new; otherwise says which run has it.
    pub fn check(&mut self, hash: &str, run: u32) -> Seen<'_> {
        use std::collections::hash_map::Entry;
        let first = match PackedHash::new(hash) {
            Some(k) => match self.packed.entry(k) {
                Entry::Occupied(e) => *e.get(),
                Entry::Vacant(e) => {
                    e.insert(run);
                    return Seen::New;
                }
            },
            None => match self.other.entry(hash.into()) {
                Entry::Occupied(e) => *e.get(),
                Entry::Vacant(e) => {
                    e.insert(run);
                    return Seen::New;
                }
            },
        };
        Seen::Duplicate { first_run_id: &self.runs[first as usize] }
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

    #[test]
    fn packed_hashes_keep_every_digit_and_their_length() {
        let mut idx = HashIndex::new();
        let r = idx.run("r1");
        for h in ["113b8413583934d18f4af6bc", "113b8413583934d18f4af6bc0", "0113b8413583934d18f4af6bc", &"f".repeat(64)]
        {
            assert_eq!(idx.check(h, r), Seen::New, "{h}");
        }
        assert_eq!(idx.check("113b8413583934d18f4af6bc", r), Seen::Duplicate { first_run_id: "r1" });
        assert_eq!(idx.check(&"f".repeat(63), r), Seen::New, "63 digits differ from 64");
        assert_eq!(idx.check("NOT-HEX", r), Seen::New);
        assert_eq!(idx.check("NOT-HEX", r), Seen::Duplicate { first_run_id: "r1" });
        assert_eq!(idx.len(), 6);
    }
}
