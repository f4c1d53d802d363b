//! A run's hash list: the sorted hashes of its posts, written by its commit to
//! `_quarry/hashes/<run_id>.bin` and read by later runs instead of the posts file's hash column.
//!
//! Layout: the magic `QRYHASH1`, the count (u64 LE), the sorted records (32 packed digit bytes and
//! the digit count), and an xxh3-64 of the records (u64 LE). A file that fails any check is not a
//! hash list: the reader then falls back to the posts file.

use std::io::{self, Write};

use crate::transform::dedupe::PackedHash;

/// Bytes of one packed hash in the file.
const RECORD: usize = 33;
/// First bytes of the file.
const MAGIC: &[u8; 8] = b"QRYHASH1";

fn record(h: &PackedHash) -> [u8; RECORD] {
    let (bytes, digits) = h.parts();
    let mut r = [0u8; RECORD];
    r[..32].copy_from_slice(bytes);
    r[32] = digits;
    r
}

fn from_record(r: &[u8]) -> Option<PackedHash> {
    let mut bytes = [0u8; 32];
    bytes.copy_from_slice(&r[..32]);
    PackedHash::from_parts(bytes, r[32])
}

/// Writes the hash list of `hashes` (sorted, each once).
pub fn write<W: Write>(mut w: W, hashes: &[PackedHash]) -> io::Result<()> {
    w.write_all(MAGIC)?;
    w.write_all(&(hashes.len() as u64).to_le_bytes())?;
    let mut sum = xxhash_rust::xxh3::Xxh3::new();
    for h in hashes {
        let r = record(h);
        sum.update(&r);
        w.write_all(&r)?;
    }
    w.write_all(&sum.digest().to_le_bytes())?;
    w.flush()
}

/// The bytes of a hash list (`write` into memory).
pub fn encode(hashes: &[PackedHash]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + 8 + hashes.len() * RECORD + 8);
    write(&mut out, hashes).expect("writing to memory");
    out
}

/// The sorted hashes of a hash list, or `None` when `data` is not one (wrong magic, length,
/// checksum, order or record).
pub fn decode(data: &[u8]) -> Option<Vec<PackedHash>> {
    let body = data.get(16..data.len().checked_sub(8)?)?;
    let count = u64::from_le_bytes(data.get(8..16)?.try_into().ok()?);
    if &data[..8] != MAGIC || body.len() as u64 != count.checked_mul(RECORD as u64)? {
        return None;
    }
    let sum = u64::from_le_bytes(data[data.len() - 8..].try_into().ok()?);
    if xxhash_rust::xxh3::xxh3_64(body) != sum {
        return None;
    }
    let hashes: Vec<PackedHash> = body.chunks_exact(RECORD).map(from_record).collect::<Option<_>>()?;
    hashes.windows(2).all(|w| w[0] < w[1]).then_some(hashes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packed(hashes: &[&str]) -> Vec<PackedHash> {
        let mut v: Vec<PackedHash> = hashes.iter().map(|h| PackedHash::new(h).unwrap()).collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn hash_lists_round_trip_and_reject_damage() {
        let hashes = packed(&["113b8413583934d18f4af6bc", "abc", "abc0", &"f".repeat(64), "0"]);
        let data = encode(&hashes);
        assert_eq!(decode(&data), Some(hashes.clone()));
        assert_eq!(decode(&encode(&[])), Some(vec![]));
        for cut in [0, 7, 16, data.len() - 1] {
            assert_eq!(decode(&data[..cut]), None, "cut at {cut}");
        }
        let mut flipped = data.clone();
        flipped[20] ^= 1;
        assert_eq!(decode(&flipped), None, "checksum");
        // Records that no hash packs to, under a valid checksum: rejected, not a panic.
        for (digits, last) in [(0u8, 0u8), (65, 0), (200, 0), (3, 0x01)] {
            let mut rec = [0u8; RECORD];
            rec[32] = digits;
            rec[1] = last;
            let mut forged = MAGIC.to_vec();
            forged.extend_from_slice(&1u64.to_le_bytes());
            forged.extend_from_slice(&rec);
            forged.extend_from_slice(&xxhash_rust::xxh3::xxh3_64(&rec).to_le_bytes());
            assert_eq!(decode(&forged), None, "{digits} digits, second byte {last:#x}");
        }
        let mut unsorted = hashes.clone();
        unsorted.swap(0, 1);
        assert_eq!(decode(&encode(&unsorted)), None, "order");
    }
}
