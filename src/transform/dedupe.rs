//! First-wins dedupe by hash, within a run and against every earlier run.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A hash of up to 64 hex digits packed two to a byte: no allocation per hash, 33 bytes a key.
/// Ordered by its bytes, then its number of digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PackedHash {
    bytes: [u8; 32],
    digits: u8,
}

impl PackedHash {
    /// Packs lower-case hex of 1 to 64 digits; anything else is kept as text instead.
    pub fn new(hash: &str) -> Option<PackedHash> {
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

    /// The packed digits (two to a byte, high nibble first, zero past the last digit) and their count.
    pub fn parts(&self) -> (&[u8; 32], u8) {
        (&self.bytes, self.digits)
    }

    /// A hash from `parts`, or `None` when no hash packs to them (a count outside 1–64, or a digit
    /// set past the count): one hash, one representation.
    pub fn from_parts(bytes: [u8; 32], digits: u8) -> Option<PackedHash> {
        if !(1..=64).contains(&digits) {
            return None;
        }
        let used = usize::from(digits).div_ceil(2);
        let tail_clear =
            bytes[used..].iter().all(|&b| b == 0) && (digits.is_multiple_of(2) || bytes[used - 1] & 0x0f == 0);
        tail_clear.then_some(PackedHash { bytes, digits })
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

/// Packed hashes with their run, in as few bytes as their digits need: the records back to back
/// in insertion order (digit count, packed digits, run as u32 LE: 17 bytes for a 24-digit hash,
/// written once) and a table of 4-byte offsets into them. This set is what grows with the size of
/// a run, so its bytes per hash are what keeps a long nightly import's memory flat. Offsets are
/// 4 bytes, so the records fill at most `limit` bytes (4 GiB, some 250 million hashes); past that
/// the set only answers lookups and the index keeps further hashes as text.
struct PackedSet {
    arena: Vec<u8>,
    len: usize,
    table: hashbrown::HashTable<u32>,
    limit: usize,
}

impl Default for PackedSet {
    fn default() -> Self {
        PackedSet { arena: Vec::new(), len: 0, table: hashbrown::HashTable::new(), limit: u32::MAX as usize }
    }
}

/// What `PackedSet::get_or_insert` did with a hash.
#[derive(Debug, PartialEq, Eq)]
enum Packed {
    /// The set holds it, for this run.
    Held(u32),
    /// It was new and is now held.
    Added,
    /// It is not held and the set is full.
    Full,
}

/// Bytes of a `PackedSet` record after its packed digits (the run).
const RUN_BYTES: usize = 4;
/// Bytes a typical record takes (24 hex digits), to reserve room from a count of hashes.
const TYPICAL_RECORD: usize = 1 + 12 + RUN_BYTES;

impl PackedSet {
    /// The packed digits of a key with its digit count.
    fn digits(k: &PackedHash) -> &[u8] {
        &k.bytes[..usize::from(k.digits).div_ceil(2)]
    }

    /// The table hash of a key: its packed digits, seeded with their count.
    fn hash_of(digits: u8, packed: &[u8]) -> u64 {
        xxhash_rust::xxh3::xxh3_64_with_seed(packed, u64::from(digits))
    }

    fn hash(k: &PackedHash) -> u64 {
        Self::hash_of(k.digits, Self::digits(k))
    }

    /// The key and run of the record at `at`, and where the next record starts.
    fn record(arena: &[u8], at: usize) -> (PackedHash, u32, usize) {
        let digits = arena[at];
        let used = usize::from(digits).div_ceil(2);
        let mut bytes = [0u8; 32];
        bytes[..used].copy_from_slice(&arena[at + 1..at + 1 + used]);
        let run_at = at + 1 + used;
        let run = u32::from_le_bytes(arena[run_at..run_at + RUN_BYTES].try_into().expect("four bytes"));
        (PackedHash { bytes, digits }, run, run_at + RUN_BYTES)
    }

    /// True when the record at `at` holds `k`.
    fn holds(arena: &[u8], at: usize, k: &PackedHash) -> bool {
        let d = Self::digits(k);
        arena[at] == k.digits && arena[at + 1..at + 1 + d.len()] == *d
    }

    fn len(&self) -> usize {
        self.len
    }

    /// `hash` of the record at `at`, read in place.
    fn hash_at(arena: &[u8], at: usize) -> u64 {
        let digits = arena[at];
        Self::hash_of(digits, &arena[at + 1..at + 1 + usize::from(digits).div_ceil(2)])
    }

    fn reserve(&mut self, n: usize) {
        self.arena.reserve(n * TYPICAL_RECORD);
        let arena = &self.arena;
        self.table.reserve(n, |&at| Self::hash_at(arena, at as usize));
    }

    /// The run holding `k`, or records it for `run` when there is room.
    fn get_or_insert(&mut self, k: PackedHash, run: u32) -> Packed {
        let h = Self::hash(&k);
        let arena = &self.arena;
        if let Some(&at) = self.table.find(h, |&at| Self::holds(arena, at as usize, &k)) {
            return Packed::Held(Self::record(arena, at as usize).1);
        }
        if self.arena.len() + 1 + Self::digits(&k).len() + RUN_BYTES > self.limit {
            return Packed::Full;
        }
        let at = self.arena.len() as u32;
        self.arena.push(k.digits);
        self.arena.extend_from_slice(Self::digits(&k));
        self.arena.extend_from_slice(&run.to_le_bytes());
        self.len += 1;
        let arena = &self.arena;
        self.table.insert_unique(h, at, |&j| Self::hash_at(arena, j as usize));
        Packed::Added
    }

    fn of_run(&self, run: u32) -> impl Iterator<Item = PackedHash> + '_ {
        let mut at = 0;
        std::iter::from_fn(move || {
            while at < self.arena.len() {
                let (k, r, next) = Self::record(&self.arena, at);
                at = next;
                if r == run {
                    return Some(k);
                }
            }
            None
        })
    }
}

/// Every hash the warehouse holds (from finished runs) and those taken so far in this run.
/// The value is an index into `runs`, the run that imported the hash first.
#[derive(Default)]
pub struct HashIndex {
    /// Hashes of earlier runs read from their hash lists, sorted, with their run (binary search:
    /// no hash table to build for a large warehouse).
    sorted: Vec<PackedHash>,
    sorted_runs: Vec<u32>,
    /// This run's hashes, and those of earlier runs read from their Parquet files.
    packed: PackedSet,
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
        let packed = PackedHash::new(hash).map(|k| self.packed.get_or_insert(k, run));
        if matches!(packed, None | Some(Packed::Full)) {
            self.other.entry(hash.into()).or_insert(run);
        }
    }

    /// Room for `n` more hashes.
    pub fn reserve(&mut self, n: usize) {
        self.packed.reserve(n);
    }

    /// Number of hashes held.
    pub fn len(&self) -> usize {
        self.sorted.len() + self.packed.len() + self.other.len()
    }

    /// Adds the sorted hash lists of earlier runs (each with its run), merged with those already
    /// held into one sorted list. A hash in two lists keeps the run it had first (the one already
    /// held, else the earlier list's).
    pub fn add_sorted(&mut self, mut lists: Vec<(u32, Vec<PackedHash>)>) {
        if !self.sorted.is_empty() {
            // `u32::MAX`: the runs of this list are in `sorted_runs`.
            lists.insert(0, (u32::MAX, std::mem::take(&mut self.sorted)));
        }
        let total = lists.iter().map(|(_, l)| l.len()).sum();
        let old_runs = std::mem::take(&mut self.sorted_runs);
        let run_of = |list: usize, pos: usize| if lists[list].0 == u32::MAX { old_runs[pos] } else { lists[list].0 };
        let (mut sorted, mut runs) = (Vec::with_capacity(total), Vec::with_capacity(total));
        let mut heads: std::collections::BinaryHeap<std::cmp::Reverse<(PackedHash, usize, usize)>> = lists
            .iter()
            .enumerate()
            .filter(|(_, (_, l))| !l.is_empty())
            .map(|(i, (_, l))| std::cmp::Reverse((l[0], i, 0)))
            .collect();
        while let Some(std::cmp::Reverse((h, list, pos))) = heads.pop() {
            if sorted.last() != Some(&h) {
                sorted.push(h);
                runs.push(run_of(list, pos));
            }
            if let Some(&next) = lists[list].1.get(pos + 1) {
                heads.push(std::cmp::Reverse((next, list, pos + 1)));
            }
        }
        self.sorted = sorted;
        self.sorted_runs = runs;
    }

    /// The hashes `run` took, sorted, for its hash list; `None` when one of them is kept as text
    /// (not lower-case hex, which a quarry run never takes, or past the packed set's limit).
    pub fn run_hashes(&self, run: u32) -> Option<Vec<PackedHash>> {
        if self.other.values().any(|&r| r == run) {
            return None;
        }
        let mut out: Vec<PackedHash> = self.packed.of_run(run).collect();
        out.sort_unstable();
        Some(out)
    }

    /// True when no hash is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes `hash` for `run` if it is new; otherwise says which run has it.
    pub fn check(&mut self, hash: &str, run: u32) -> Seen<'_> {
        use std::collections::hash_map::Entry;
        let packed = PackedHash::new(hash).map(|k| match self.sorted.binary_search(&k) {
            Ok(at) => Packed::Held(self.sorted_runs[at]),
            Err(_) => self.packed.get_or_insert(k, run),
        });
        let first = match packed {
            Some(Packed::Held(first)) => first,
            Some(Packed::Added) => return Seen::New,
            None | Some(Packed::Full) => match self.other.entry(hash.into()) {
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
    fn packed_set_keeps_hashes_of_every_length_with_their_run() {
        let mut set = PackedSet::default();
        // Every length from 1 to 64 digits, and prefixes of one another ("abc" / "abc0").
        let hashes: Vec<String> = (1..=64).flat_map(|n| ["abc0".repeat(16)[..n].to_string(), "f".repeat(n)]).collect();
        for (i, h) in hashes.iter().enumerate() {
            let k = PackedHash::new(h).unwrap();
            assert_eq!(set.get_or_insert(k, (i % 3) as u32), Packed::Added, "{h} is new");
        }
        assert_eq!(set.len(), hashes.len());
        for (i, h) in hashes.iter().enumerate() {
            assert_eq!(set.get_or_insert(PackedHash::new(h).unwrap(), 9), Packed::Held((i % 3) as u32), "{h}");
        }
        for run in 0..3u32 {
            let want: Vec<PackedHash> = hashes
                .iter()
                .enumerate()
                .filter(|(i, _)| (i % 3) as u32 == run)
                .map(|(_, h)| PackedHash::new(h).unwrap())
                .collect();
            assert_eq!(set.of_run(run).collect::<Vec<_>>(), want, "run {run}");
        }
        assert_eq!(set.of_run(9).count(), 0, "a lookup records nothing");
    }

    #[test]
    fn hashes_past_the_packed_sets_limit_are_still_deduplicated() {
        let mut idx = HashIndex::new();
        // Room for two 24-digit records (17 bytes each), then the set is full.
        idx.packed.limit = 40;
        let run = idx.run("r1");
        let hashes: Vec<String> = (0..5).map(|i| format!("{i:024x}")).collect();
        for h in &hashes {
            assert_eq!(idx.check(h, run), Seen::New, "{h}");
        }
        assert_eq!((idx.packed.len(), idx.other.len()), (2, 3), "two packed, the rest as text");
        for h in &hashes {
            assert_eq!(idx.check(h, run), Seen::Duplicate { first_run_id: "r1" }, "{h} again");
        }
        idx.insert(&hashes[4], run);
        assert_eq!(idx.len(), 5, "an insert of a held hash adds nothing");
        assert_eq!(idx.run_hashes(run), None, "no hash list when some hashes are kept as text");
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

    fn packed(hashes: &[&str]) -> Vec<PackedHash> {
        let mut v: Vec<PackedHash> = hashes.iter().map(|h| PackedHash::new(h).unwrap()).collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn sorted_lists_answer_like_the_map() {
        let mut idx = HashIndex::new();
        let (r1, r2) = (idx.run("r1"), idx.run("r2"));
        idx.add_sorted(vec![(r1, packed(&["aa", "cc"])), (r2, packed(&["bb", "cc", "dd"]))]);
        assert_eq!(idx.len(), 4, "cc once, with the first list's run");
        let now = idx.run("r3");
        assert_eq!(idx.check("cc", now), Seen::Duplicate { first_run_id: "r1" });
        assert_eq!(idx.check("dd", now), Seen::Duplicate { first_run_id: "r2" });
        assert_eq!(idx.check("ee", now), Seen::New);
        assert_eq!(idx.check("ee", now), Seen::Duplicate { first_run_id: "r3" });
        assert_eq!(idx.run_hashes(now), Some(packed(&["ee"])));
        // A later merge keeps what is there.
        let r4 = idx.run("r4");
        idx.add_sorted(vec![(r4, packed(&["ab", "cc"]))]);
        assert_eq!(idx.check("cc", now), Seen::Duplicate { first_run_id: "r1" }, "held before: keeps its run");
        assert_eq!(idx.check("aa", now), Seen::Duplicate { first_run_id: "r1" });
        assert_eq!(idx.check("ab", now), Seen::Duplicate { first_run_id: "r4" });
        assert_eq!(idx.check("ee", now), Seen::Duplicate { first_run_id: "r3" });
        idx.check("NOT-HEX", now);
        assert_eq!(idx.run_hashes(now), None, "a hash that does not pack: no list");
    }
}
