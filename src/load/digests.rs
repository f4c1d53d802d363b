//! Which files finished runs read: each run's digest list (`_quarry/files/<run_id>.tsv`, one line
//! per file, `digest TAB name`), and, in a remote warehouse, merged lists that a stateless run
//! copies instead of one object per finished run.
//!
//! ```text
//! _quarry/digests/MANIFEST.json         the merged lists in force and the runs each holds
//! _quarry/digests/<last run>-<n>.tsv    one line per file: digest TAB run id (n runs, the last named)
//! ```
//!
//! After its commit (the lock let go), a run merges the lists of the finished runs no merged list
//! holds once there are `merge_runs()` of them: one new object, then the manifest naming it. A
//! merged list holds only finished runs' lines and is never changed or removed, and each run's own
//! list stays: a reader that finds a merged list missing (or the manifest unreadable, or a merge
//! of another run's dropped from it by a manifest written at the same time) reads those runs' own
//! lists, so a merge cut short or raced costs reads, never a digest.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::io;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::location::Remote;
use super::warehouse::{io_err, Warehouse, WarehouseError};

/// Where the merged lists live, in the bucket and in the working folder.
const KEY: &str = "_quarry/digests";
const MANIFEST: &str = "_quarry/digests/MANIFEST.json";
/// Finished runs whose lists no merged list holds, at which a run merges them after its commit
/// (`QUARRY_DIGEST_MERGE_RUNS`, default 64).
pub fn merge_runs() -> usize {
    std::env::var("QUARRY_DIGEST_MERGE_RUNS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(64)
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct Manifest {
    files: Vec<Merged>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Merged {
    name: String,
    runs: Vec<String>,
}

impl Warehouse {
    /// Digests of the files finished runs read, with the run that read each (the first by run id
    /// when several did). A remote warehouse's lists are copied once into the working folder (they
    /// never change once committed): the merged lists that hold finished runs, then the own lists
    /// of the finished runs none holds.
    pub fn imported_digests(&self, finished: &BTreeSet<String>) -> Result<HashMap<String, String>, WarehouseError> {
        let mut out: HashMap<String, String> = HashMap::new();
        let mut note = |digest: &str, run: &str| match out.get_mut(digest) {
            Some(first) if run < first.as_str() => *first = run.to_string(),
            Some(_) => {}
            None => {
                out.insert(digest.to_string(), run.to_string());
            }
        };
        let mut covered: BTreeSet<String> = BTreeSet::new();
        if let Some(r) = self.remote() {
            let manifest = read_manifest(r)?;
            let wanted: Vec<&Merged> =
                manifest.files.iter().filter(|f| f.runs.iter().any(|run| finished.contains(run))).collect();
            let copies: Vec<(PathBuf, String)> =
                wanted.iter().map(|f| (self.merged_copy(&f.name), format!("{KEY}/{}", f.name))).collect();
            self.copy_down(r, &copies)?;
            for f in wanted {
                let Some(text) = read_copy(&self.merged_copy(&f.name))? else { continue };
                for line in text.lines() {
                    if let Some((digest, run)) = line.split_once('\t').filter(|(_, run)| finished.contains(*run)) {
                        note(digest, run);
                    }
                }
                covered.extend(f.runs.iter().filter(|run| finished.contains(*run)).cloned());
            }
            let own: Vec<(PathBuf, String)> = finished
                .iter()
                .filter(|id| !covered.contains(*id))
                .map(|id| (self.files_list(id), Warehouse::files_key(id)))
                .collect();
            self.copy_down(r, &own)?;
        }
        for id in finished.iter().filter(|id| !covered.contains(*id)) {
            let Some(text) = read_copy(&self.files_list(id))? else { continue };
            for line in text.lines() {
                if let Some((digest, _)) = line.split_once('\t') {
                    note(digest, id);
                }
            }
        }
        Ok(out)
    }

    /// After a remote run's commit (`finished`: runs finished by then, the run's own among them):
    /// merges the lists of the finished runs no merged list holds, when there are at least `at` of
    /// them. The number of runs merged, if it merged.
    pub fn merge_digest_lists(&self, finished: &BTreeSet<String>, at: usize) -> Result<Option<usize>, WarehouseError> {
        let Some(r) = self.remote() else { return Ok(None) };
        let mut manifest = read_manifest(r)?;
        let covered: BTreeSet<&String> = manifest.files.iter().flat_map(|f| &f.runs).collect();
        let runs: Vec<&String> = finished.iter().filter(|id| !covered.contains(id)).collect();
        if runs.len() < at.max(1) {
            return Ok(None);
        }
        let own: Vec<(PathBuf, String)> =
            runs.iter().map(|id| (self.files_list(id), Warehouse::files_key(id))).collect();
        self.copy_down(r, &own)?;
        let mut text = String::new();
        for id in &runs {
            // A finished run without a list (an older quarry's) read no file anyone can skip.
            for line in read_copy(&self.files_list(id))?.unwrap_or_default().lines() {
                if let Some((digest, _)) = line.split_once('\t') {
                    text.push_str(&format!("{digest}\t{id}\n"));
                }
            }
        }
        let name = format!("{}-{}.tsv", runs[runs.len() - 1], runs.len());
        r.put(&format!("{KEY}/{name}"), text.into_bytes())?;
        manifest.files.push(Merged { name, runs: runs.iter().map(|s| s.to_string()).collect() });
        r.put(MANIFEST, serde_json::to_vec(&manifest).expect("a manifest serializes"))?;
        Ok(Some(runs.len()))
    }

    /// The working folder's copy of a merged list.
    fn merged_copy(&self, name: &str) -> PathBuf {
        self.internal().join("digests").join(name)
    }

    /// Copies each (local path, key) whose copy is missing (immutable objects: a copy, once
    /// there, is the object); an object not there is left out.
    fn copy_down(&self, r: &Remote, wanted: &[(PathBuf, String)]) -> Result<(), WarehouseError> {
        let missing: Vec<&(PathBuf, String)> = wanted.iter().filter(|(p, _)| !p.exists()).collect();
        let keys: Vec<String> = missing.iter().map(|(_, k)| k.clone()).collect();
        for ((p, _), got) in missing.into_iter().zip(r.get_many(&keys)?) {
            let Some(obj) = got else { continue };
            if let Some(dir) = p.parent() {
                fs::create_dir_all(dir).map_err(io_err(dir, "cannot create a folder for digest lists"))?;
            }
            // Runs sharing the working folder may copy the same list at once.
            let tmp = p.with_extension(format!("{}.tmp", std::process::id()));
            fs::write(&tmp, &obj.bytes).map_err(io_err(&tmp, "cannot keep a copy of a digest list"))?;
            fs::rename(&tmp, p).map_err(io_err(p, "cannot keep a copy of a digest list"))?;
        }
        Ok(())
    }
}

/// The merged lists' manifest; none, or one that does not parse (the runs' own lists are read
/// instead, and the next merge writes a whole new one), is an empty one.
fn read_manifest(r: &Remote) -> Result<Manifest, WarehouseError> {
    Ok(match r.get(MANIFEST)? {
        Some(o) => serde_json::from_slice(&o.bytes).unwrap_or_default(),
        None => Manifest::default(),
    })
}

/// A local copy's text; `None` when it is not there.
fn read_copy(p: &std::path::Path) -> Result<Option<String>, WarehouseError> {
    match fs::read_to_string(p) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(p, "cannot read a digest list")(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A warehouse on `remote` with a working folder of its own (a stateless run's).
    fn on(remote: &Remote) -> (tempfile::TempDir, Warehouse) {
        let dir = tempfile::tempdir().unwrap();
        let wh = Warehouse::on_store(dir.path(), remote.clone());
        (dir, wh)
    }

    #[test]
    fn merged_lists_stand_in_for_the_runs_own_and_a_missing_one_costs_nothing() {
        let remote = Remote::in_memory();
        let runs: Vec<String> = (0..70).map(|i| format!("20261201T000000.{i:06}Z")).collect();
        let mut want = HashMap::new();
        for (i, id) in runs.iter().enumerate() {
            // Every run read a file of its own; runs 3 and 5 both read the file `shared`.
            let mut text = format!("d{i}\tdumps/{i}.txt\n");
            want.insert(format!("d{i}"), id.clone());
            if i == 3 || i == 5 {
                text.push_str("shared\tdumps/shared.txt\n");
            }
            remote.put(&Warehouse::files_key(id), text.into_bytes()).unwrap();
        }
        want.insert("shared".into(), runs[3].clone());
        let finished: BTreeSet<String> = runs.iter().cloned().collect();
        let (_a, writer) = on(&remote);
        assert_eq!(writer.merge_digest_lists(&finished, 71).unwrap(), None, "fewer than asked for");
        assert_eq!(writer.merge_digest_lists(&finished, 64).unwrap(), Some(70));
        assert_eq!(writer.merge_digest_lists(&finished, 1).unwrap(), None, "every run is merged");

        // A stateless run reads the merged list: the runs' own lists are not needed.
        let own: Vec<String> = runs.iter().map(|id| Warehouse::files_key(id)).collect();
        let kept: Vec<_> = own.iter().map(|k| remote.get(k).unwrap().unwrap().bytes.to_vec()).collect();
        for k in &own {
            remote.delete(k).unwrap();
        }
        let (_b, reader) = on(&remote);
        assert_eq!(reader.imported_digests(&finished).unwrap(), want);
        // A run the merge did not hold is read from its own list; runs not finished are left out.
        let late = "20261201T000001.000000Z".to_string();
        remote.put(&Warehouse::files_key(&late), b"late\tdumps/late.txt\n".to_vec()).unwrap();
        let mut more = finished.clone();
        more.insert(late.clone());
        let mut want_more = want.clone();
        want_more.insert("late".into(), late.clone());
        assert_eq!(on(&remote).1.imported_digests(&more).unwrap(), want_more);
        let some: BTreeSet<String> = runs[..4].iter().cloned().collect();
        let got = on(&remote).1.imported_digests(&some).unwrap();
        assert_eq!(got.len(), 5, "d0..d3 and shared, of run 3: {got:?}");

        // The merged list gone (or its manifest unreadable): the runs' own lists again.
        for (k, bytes) in own.iter().zip(kept) {
            remote.put(k, bytes).unwrap();
        }
        let merged = read_manifest(&remote).unwrap().files[0].name.clone();
        remote.delete(&format!("{KEY}/{merged}")).unwrap();
        assert_eq!(on(&remote).1.imported_digests(&finished).unwrap(), want);
        remote.put(MANIFEST, b"{not json".to_vec()).unwrap();
        assert_eq!(on(&remote).1.imported_digests(&finished).unwrap(), want);
    }
}
