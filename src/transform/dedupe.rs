//! First-wins dedupe by hash: the packed form of a hash, and the set of the hashes a run has taken
//! so far (earlier runs' hashes live in the on-disk index, `load::index`).

use std::fmt;

/// A hash of up to 64 hex digits packed two to a byte: no allocation per hash, 33 bytes a key.
/// Ordered by its bytes, then its number of digits (the order of the hex text).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PackedHash {
    bytes: [u8; 32],
    digits: u8,
}

impl fmt::Debug for PackedHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PackedHash({})", self.to_hex())
    }
}

impl PackedHash {
    /// Packs lower-case hex of 1 to 64 digits (what the pipeline's `hash` value type accepts);
    /// `None` for anything else.
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

    /// The hash as lower-case hex, as it was written.
    pub fn to_hex(&self) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        (0..usize::from(self.digits))
            .map(|i| {
                let b = self.bytes[i / 2];
                HEX[usize::from(if i % 2 == 0 { b >> 4 } else { b & 0x0f })] as char
            })
            .collect()
    }

    /// The packed digits in use.
    fn used(&self) -> &[u8] {
        &self.bytes[..usize::from(self.digits).div_ceil(2)]
    }
}

/// The hashes a run has taken, in as few bytes as their digits need: the records back to back in
/// insertion order (digit count, packed digits: 13 bytes for a 24-digit hash) and a table of 4-byte
/// offsets into them, about 17 bytes a hash in all. What grows with a run is bounded by spilling
/// this set to disk (`load::index`) and starting it again.
#[derive(Default)]
pub struct RunHashes {
    arena: Vec<u8>,
    table: hashbrown::HashTable<u32>,
    /// `sorted`'s (prefix, offset) pairs, kept for the next spill.
    order: Vec<(u64, u32)>,
}

impl fmt::Debug for RunHashes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunHashes").field("hashes", &self.len()).field("bytes", &self.memory()).finish()
    }
}

/// The table hash of a key: its packed digits, seeded with their count.
fn table_hash(digits: u8, packed: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(packed, u64::from(digits))
}

impl RunHashes {
    /// Bytes of arena past which `insert` no longer fits 4-byte offsets.
    const ARENA_LIMIT: usize = u32::MAX as usize;

    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// The key whose record starts at `at`.
    fn key_at(arena: &[u8], at: usize) -> PackedHash {
        let digits = arena[at];
        let used = usize::from(digits).div_ceil(2);
        let mut bytes = [0u8; 32];
        bytes[..used].copy_from_slice(&arena[at + 1..at + 1 + used]);
        PackedHash { bytes, digits }
    }

    fn hash_at(arena: &[u8], at: usize) -> u64 {
        let digits = arena[at];
        table_hash(digits, &arena[at + 1..at + 1 + usize::from(digits).div_ceil(2)])
    }

    fn holds(arena: &[u8], at: usize, k: &PackedHash) -> bool {
        let used = k.used();
        arena[at] == k.digits && arena[at + 1..at + 1 + used.len()] == *used
    }

    /// Adds `k`; false when the set held it already.
    pub fn insert(&mut self, k: &PackedHash) -> bool {
        let h = table_hash(k.digits, k.used());
        let arena = &self.arena;
        if self.table.find(h, |&at| Self::holds(arena, at as usize, k)).is_some() {
            return false;
        }
        assert!(self.arena.len() + 33 <= Self::ARENA_LIMIT, "a run's hash set is spilled long before 4 GiB");
        let at = self.arena.len() as u32;
        self.arena.push(k.digits);
        self.arena.extend_from_slice(k.used());
        let arena = &self.arena;
        self.table.insert_unique(h, at, |&j| Self::hash_at(arena, j as usize));
        true
    }

    /// Room for `n` more hashes of about 24 digits, so the set grows without copying itself (a
    /// discarded copy would stay in the peak memory).
    pub fn reserve(&mut self, n: usize) {
        self.arena.reserve_exact(n * 13);
        let arena = &self.arena;
        self.table.reserve(n, |&at| Self::hash_at(arena, at as usize));
    }

    /// Whether the set holds `k`.
    pub fn contains(&self, k: &PackedHash) -> bool {
        let h = table_hash(k.digits, k.used());
        self.table.find(h, |&at| Self::holds(&self.arena, at as usize, k)).is_some()
    }

    /// Hashes held.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// True when no hash is held.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Bytes of memory the set holds (its records and its table).
    pub fn memory(&self) -> usize {
        self.arena.capacity() + self.table.capacity() * (4 + 1) + self.order.capacity() * 16
    }

    /// The first 8 packed bytes of the key at `at` (zero past its digits) as one number: keys in
    /// the order of their prefixes, ties to be broken by the whole key.
    fn prefix_at(arena: &[u8], at: usize) -> u64 {
        let used = usize::from(arena[at]).div_ceil(2).min(8);
        let mut b = [0u8; 8];
        b[..used].copy_from_slice(&arena[at + 1..at + 1 + used]);
        u64::from_be_bytes(b)
    }

    /// The hashes in increasing order (held until `clear`): what a spill writes. Sorts (8-byte
    /// prefix, offset) pairs, 16 bytes a hash, not 33-byte keys: comparing whole keys rebuilt from
    /// the arena took 165 ms of a run's serial end for 311k hashes; the prefixes settle nearly
    /// every comparison.
    pub fn sorted(&mut self) -> impl Iterator<Item = PackedHash> + '_ {
        let (arena, order) = (&self.arena, &mut self.order);
        order.clear();
        order.extend(self.table.iter().map(|&at| (Self::prefix_at(arena, at as usize), at)));
        order.sort_unstable_by(|a, b| {
            a.0.cmp(&b.0).then_with(|| Self::key_at(arena, a.1 as usize).cmp(&Self::key_at(arena, b.1 as usize)))
        });
        order.iter().map(move |&(_, at)| Self::key_at(arena, at as usize))
    }

    /// Empties the set and keeps its memory: a spilled set fills up again to the same size, and
    /// memory freed and taken anew at each spill grew a 16 GB run's peak by ~4 MB a spill.
    pub fn clear(&mut self) {
        self.arena.clear();
        self.table.clear();
        self.order.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_hashes_keep_every_digit_and_their_length_and_order() {
        let hashes =
            ["113b8413583934d18f4af6bc", "113b8413583934d18f4af6bc0", "0113b8413583934d18f4af6bc", "abc", "abd"];
        for h in hashes {
            assert_eq!(PackedHash::new(h).unwrap().to_hex(), h);
        }
        assert_eq!(PackedHash::new(&"f".repeat(64)).unwrap().to_hex(), "f".repeat(64));
        for bad in ["", "ABC", "xyz", &"f".repeat(65)] {
            assert_eq!(PackedHash::new(bad), None, "{bad:?}");
        }
        // The packed order is the order of the hex text.
        let mut texts: Vec<String> = (1..=64).flat_map(|n| ["a0".repeat(32)[..n].to_string(), "0".repeat(n)]).collect();
        texts.extend(["abc0", "abc", "ab1", "ab00", "ab"].map(String::from));
        let mut packed: Vec<PackedHash> = texts.iter().map(|t| PackedHash::new(t).unwrap()).collect();
        packed.sort();
        texts.sort();
        texts.dedup();
        packed.dedup();
        assert_eq!(packed.iter().map(PackedHash::to_hex).collect::<Vec<_>>(), texts);
    }

    #[test]
    fn the_run_set_takes_each_hash_once_and_drains_sorted() {
        let mut s = RunHashes::new();
        let hashes: Vec<PackedHash> = (1..=64)
            .flat_map(|n| ["abc0".repeat(16)[..n].to_string(), "f".repeat(n)])
            .map(|h| PackedHash::new(&h).unwrap())
            .collect();
        for h in &hashes {
            assert!(s.insert(h), "{h:?} is new");
        }
        for h in &hashes {
            assert!(!s.insert(h) && s.contains(h), "{h:?} again");
        }
        assert!(!s.contains(&PackedHash::new("0123").unwrap()));
        assert_eq!(s.len(), hashes.len());
        let mut want = hashes.clone();
        want.sort();
        assert_eq!(s.sorted().collect::<Vec<_>>(), want);
        assert_eq!(s.len(), hashes.len(), "held until cleared");
        s.clear();
        assert!(s.is_empty() && !s.contains(&hashes[0]), "emptied");
        assert!(s.insert(&hashes[0]), "and usable again");
    }

    #[test]
    fn the_run_set_drains_random_hashes_of_every_length_sorted() {
        let mut s = RunHashes::new();
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut want = Vec::new();
        for i in 0..5000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Many share their first 16 digits (the sort's prefix) and differ after them or in length.
            let hex = format!("{:016x}{:016x}{:032x}", x % 7, x, i);
            let k = PackedHash::new(&hex[..1 + (x as usize % 64)]).unwrap();
            if s.insert(&k) {
                want.push(k);
            }
        }
        want.sort();
        assert!(want.len() > 1000);
        assert_eq!(s.sorted().collect::<Vec<_>>(), want);
        let memory = s.memory();
        s.clear();
        for k in want.iter().rev() {
            assert!(s.insert(k));
        }
        assert_eq!(s.memory(), memory, "the same hashes again take no new memory");
        assert_eq!(s.sorted().collect::<Vec<_>>(), want);
    }
}
