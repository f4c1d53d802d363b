//! Where a warehouse lives: a local folder (a path or `file://…`) or an S3 prefix
//! (`s3://bucket/prefix`), and the few object operations a remote warehouse needs.
//!
//! A remote warehouse's credentials, region and endpoint come from the standard AWS variables
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`,
//! `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`), read by object_store and deltalake alike; a location
//! never holds a secret, so what is shown of it (`Display`) is safe for log lines, errors and the
//! `runs` table. quarry works on a remote warehouse through a local working folder (the cache:
//! `QUARRY_CACHE_DIR`, else `$XDG_CACHE_HOME/quarry`, else `~/.cache/quarry`) that holds a run's
//! staged files and copies of immutable objects it read (index segments, digest lists, table files
//! a query scans); the objects in the bucket are the truth, the cache can be removed at any time.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use bytes::Bytes;
use futures::{StreamExt as _, TryStreamExt as _};
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt as _, PutMode, PutOptions, PutPayload, UpdateVersion};

/// A warehouse's location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A local folder.
    Local(PathBuf),
    /// An S3 bucket and a prefix in it (no leading or trailing `/`; empty for the bucket's root).
    S3 { bucket: String, prefix: String },
}

/// A location that cannot be used, and why.
#[derive(Debug, thiserror::Error)]
#[error("warehouse location {shown:?}: {why}")]
pub struct LocationError {
    /// The location as given, with any credentials cut out.
    pub shown: String,
    /// What is wrong with it, and what is expected.
    pub why: String,
}

impl FromStr for Location {
    type Err = LocationError;

    fn from_str(s: &str) -> Result<Location, LocationError> {
        let Some((scheme, _)) = s.split_once("://") else {
            return Ok(Location::Local(PathBuf::from(s)));
        };
        let bad = |why: &str| LocationError { shown: safe_to_show(s), why: why.to_string() };
        let url = url::Url::parse(s).map_err(|e| bad(&format!("not a URL: {e}")))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("credentials in the URL: pass them as AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad("a query or fragment in the URL: settings come from the AWS_* variables"));
        }
        match scheme {
            "file" => url
                .to_file_path()
                .map(Location::Local)
                .map_err(|()| bad("a file:// URL names an absolute local path (file:///srv/warehouse)")),
            "s3" | "s3a" => {
                let bucket =
                    url.host_str().filter(|b| !b.is_empty()).ok_or_else(|| bad("no bucket (s3://bucket/prefix)"))?;
                let prefix = url.path().trim_matches('/').to_string();
                if prefix.split('/').any(|c| c == "." || c == "..") {
                    return Err(bad("`.` or `..` in the prefix"));
                }
                Ok(Location::S3 { bucket: bucket.to_string(), prefix })
            }
            _ => Err(bad("expected a folder, file://…, or s3://bucket/prefix")),
        }
    }
}

/// `s` with anything between `://` and `@` cut out (a URL's user and password).
fn safe_to_show(s: &str) -> String {
    match (s.find("://"), s.find('@')) {
        (Some(i), Some(j)) if j > i => format!("{}://…@{}", &s[..i], &s[j + 1..]),
        _ => s.to_string(),
    }
}

impl From<&Path> for Location {
    fn from(p: &Path) -> Location {
        Location::Local(p.to_path_buf())
    }
}

impl From<PathBuf> for Location {
    fn from(p: PathBuf) -> Location {
        Location::Local(p)
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Local(p) => write!(f, "{}", p.display()),
            Location::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            Location::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

impl Location {
    /// The local folder quarry works in for this warehouse: the warehouse itself when local, a
    /// folder of the cache when remote.
    pub fn work_dir(&self) -> PathBuf {
        match self {
            Location::Local(p) => p.clone(),
            Location::S3 { bucket, prefix } => {
                let mut dir = cache_root().join("s3").join(bucket);
                for part in prefix.split('/').filter(|p| !p.is_empty()) {
                    dir.push(part);
                }
                dir
            }
        }
    }
}

/// Where remote warehouses' working folders live.
fn cache_root() -> PathBuf {
    if let Some(d) = std::env::var_os("QUARRY_CACHE_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("quarry");
    }
    match std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        Some(home) => PathBuf::from(home).join(".cache").join("quarry"),
        None => std::env::temp_dir().join("quarry-cache"),
    }
}

/// The process's one async runtime for object-store and Delta calls (current-thread: each call
/// blocks on it), made on first use; it registers deltalake's S3 support too. A runtime per call
/// started its blocking-pool threads anew each time: 8 of them per run, ~5 ms each here.
pub(crate) fn runtime() -> Result<&'static tokio::runtime::Runtime, String> {
    static RT: std::sync::OnceLock<std::io::Result<tokio::runtime::Runtime>> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        deltalake::aws::register_handlers(None);
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    })
    .as_ref()
    .map_err(|e| format!("cannot start the async runtime: {e}"))
}

/// An object operation that failed.
#[derive(Debug, thiserror::Error)]
#[error("{url}: {what}")]
pub struct RemoteError {
    /// The object or prefix (no credentials).
    pub url: String,
    /// What failed, with the store's reason.
    pub what: String,
}

/// An object as listed: its key relative to the warehouse, size, version tag, and when it was written.
#[derive(Debug, Clone)]
pub struct Listed {
    pub key: String,
    pub size: u64,
    pub e_tag: Option<String>,
    pub written_ms: i64,
}

/// An object as read: its bytes and its version tag (for a conditional update).
pub struct Object {
    pub bytes: Bytes,
    pub e_tag: Option<String>,
}

/// A remote warehouse's bucket and prefix, with the client that reaches them. Keys are given
/// relative to the warehouse (`runs/x.parquet`, `_quarry/lock`).
#[derive(Debug, Clone)]
pub struct Remote {
    bucket: String,
    prefix: String,
    store: Arc<dyn ObjectStore>,
}

/// Parts of an upload in flight at once, and their size: 8 MB × 4 bounds an upload's memory.
const PART_BYTES: usize = 8 << 20;
const PARTS_IN_FLIGHT: usize = 4;

impl Remote {
    /// A client for `s3://bucket/prefix`, configured from the AWS variables.
    pub fn connect(bucket: &str, prefix: &str) -> Result<Remote, RemoteError> {
        let store = object_store::aws::AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .build()
            .map_err(|e| RemoteError { url: format!("s3://{bucket}"), what: format!("cannot configure S3: {e}") })?;
        Ok(Remote { bucket: bucket.to_string(), prefix: prefix.to_string(), store: Arc::new(store) })
    }

    /// A remote in memory (the unit tests' bucket).
    #[cfg(test)]
    pub(crate) fn in_memory() -> Remote {
        let store = Arc::new(object_store::memory::InMemory::new());
        Remote { bucket: "test".into(), prefix: "wh".into(), store }
    }

    fn key(&self, rel: &str) -> Key {
        if self.prefix.is_empty() {
            Key::from(rel)
        } else {
            Key::from(format!("{}/{rel}", self.prefix))
        }
    }

    /// The URL of a key (for messages and Delta table locations).
    pub fn url(&self, rel: &str) -> String {
        format!("s3://{}/{}", self.bucket, self.key(rel))
    }

    fn fail(&self, rel: &str, what: &str, e: impl fmt::Display) -> RemoteError {
        RemoteError { url: self.url(rel), what: format!("{what}: {e}") }
    }

    fn block<T>(&self, rel: &str, f: impl std::future::Future<Output = T>) -> Result<T, RemoteError> {
        let rt = runtime().map_err(|e| RemoteError { url: self.url(rel), what: e })?;
        Ok(rt.block_on(f))
    }

    /// Writes an object (replacing one that is there).
    pub fn put(&self, rel: &str, bytes: Vec<u8>) -> Result<(), RemoteError> {
        let key = self.key(rel);
        self.block(rel, self.store.put(&key, PutPayload::from(bytes)))?
            .map_err(|e| self.fail(rel, "cannot write", e))?;
        Ok(())
    }

    /// Writes an object only if none is there: its version tag, or `None` when one was.
    pub fn put_new(&self, rel: &str, bytes: Vec<u8>) -> Result<Option<String>, RemoteError> {
        let key = self.key(rel);
        let opts = PutOptions { mode: PutMode::Create, ..Default::default() };
        match self.block(rel, self.store.put_opts(&key, PutPayload::from(bytes), opts))? {
            Ok(r) => Ok(Some(r.e_tag.unwrap_or_default())),
            Err(object_store::Error::AlreadyExists { .. }) | Err(object_store::Error::Precondition { .. }) => Ok(None),
            Err(e) => Err(self.fail(rel, "cannot create", e)),
        }
    }

    /// Replaces an object only if it is still at version `e_tag`: its new tag, or `None` when
    /// another writer changed it meanwhile.
    pub fn put_if(&self, rel: &str, bytes: Vec<u8>, e_tag: &str) -> Result<Option<String>, RemoteError> {
        let key = self.key(rel);
        let version = UpdateVersion { e_tag: Some(e_tag.to_string()), version: None };
        let opts = PutOptions { mode: PutMode::Update(version), ..Default::default() };
        match self.block(rel, self.store.put_opts(&key, PutPayload::from(bytes), opts))? {
            Ok(r) => Ok(Some(r.e_tag.unwrap_or_default())),
            Err(object_store::Error::Precondition { .. }) | Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.fail(rel, "cannot update", e)),
        }
    }

    /// Uploads a local file as an object (in parts when large), replacing one that is there.
    pub fn upload(&self, rel: &str, from: &Path) -> Result<(), RemoteError> {
        use std::io::Read as _;
        let key = self.key(rel);
        let read_fail = |e: std::io::Error| self.fail(rel, &format!("cannot read {}", from.display()), e);
        let mut file = std::fs::File::open(from).map_err(read_fail)?;
        let size = file.metadata().map_err(read_fail)?.len();
        if size <= PART_BYTES as u64 {
            let mut buf = Vec::with_capacity(size as usize);
            file.read_to_end(&mut buf).map_err(read_fail)?;
            return self.put(rel, buf);
        }
        let done: Result<Result<(), RemoteError>, RemoteError> = self.block(rel, async {
            let upload =
                self.store.put_multipart(&key).await.map_err(|e| self.fail(rel, "cannot start an upload", e))?;
            let mut parts = object_store::WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
            let mut buf = vec![0u8; PART_BYTES];
            loop {
                let n = file.read(&mut buf).map_err(read_fail)?;
                if n == 0 {
                    break;
                }
                parts.wait_for_capacity(PARTS_IN_FLIGHT).await.map_err(|e| self.fail(rel, "cannot upload", e))?;
                parts.write(&buf[..n]);
            }
            parts.finish().await.map_err(|e| self.fail(rel, "cannot finish the upload", e))?;
            Ok(())
        });
        done?
    }

    /// Reads an object; `None` when there is none.
    pub fn get(&self, rel: &str) -> Result<Option<Object>, RemoteError> {
        self.block(rel, self.get_async(rel))?
    }

    /// Reads objects, 16 at a time; `None` for each that is not there.
    pub fn get_many(&self, rels: &[String]) -> Result<Vec<Option<Object>>, RemoteError> {
        let all = futures::stream::iter(rels.iter().map(|rel| self.get_async(rel))).buffered(16).try_collect();
        self.block("", all)?
    }

    async fn get_async(&self, rel: &str) -> Result<Option<Object>, RemoteError> {
        match self.store.get(&self.key(rel)).await {
            Ok(r) => {
                let e_tag = r.meta.e_tag.clone();
                let bytes = r.bytes().await.map_err(|e| self.fail(rel, "cannot read", e))?;
                Ok(Some(Object { bytes, e_tag }))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.fail(rel, "cannot read", e)),
        }
    }

    /// Copies an object into a local file (written beside it, then renamed over it).
    pub fn download(&self, rel: &str, to: &Path) -> Result<(), RemoteError> {
        use std::io::Write as _;
        let key = self.key(rel);
        // Runs sharing the working folder may fetch the same object at once.
        let tmp = to.with_extension(format!("download-{}.tmp", std::process::id()));
        let write_fail = |e: std::io::Error| self.fail(rel, &format!("cannot write {}", tmp.display()), e);
        if let Some(dir) = to.parent() {
            std::fs::create_dir_all(dir).map_err(write_fail)?;
        }
        let done: Result<Result<(), RemoteError>, RemoteError> = self.block(rel, async {
            let got = self.store.get(&key).await.map_err(|e| self.fail(rel, "cannot read", e))?;
            let mut out = std::io::BufWriter::new(std::fs::File::create(&tmp).map_err(write_fail)?);
            let mut stream = got.into_stream();
            while let Some(chunk) = stream.next().await {
                out.write_all(&chunk.map_err(|e| self.fail(rel, "cannot read", e))?).map_err(write_fail)?;
            }
            out.flush().map_err(write_fail)?;
            Ok(())
        });
        done??;
        std::fs::rename(&tmp, to).map_err(|e| self.fail(rel, &format!("cannot write {}", to.display()), e))
    }

    /// Every object under `rel_prefix` (a folder: `runs`, `_quarry/index`), as (key relative to
    /// the warehouse, size), sorted by key.
    pub fn list(&self, rel_prefix: &str) -> Result<Vec<(String, u64)>, RemoteError> {
        Ok(self.list_versions(rel_prefix)?.into_iter().map(|l| (l.key, l.size)).collect())
    }

    /// Whether any object is under `rel_prefix` (one listing request, however many there are).
    pub fn any(&self, rel_prefix: &str) -> Result<bool, RemoteError> {
        let key = self.key(rel_prefix);
        let first = self.block(rel_prefix, async { self.store.list(Some(&key)).try_next().await })?;
        Ok(first.map_err(|e| self.fail(rel_prefix, "cannot list", e))?.is_some())
    }

    /// `list` with each object's version tag and when it was written (ms since the epoch).
    pub fn list_versions(&self, rel_prefix: &str) -> Result<Vec<Listed>, RemoteError> {
        let key = self.key(rel_prefix);
        let strip = if self.prefix.is_empty() { 0 } else { self.prefix.len() + 1 };
        let listed: Result<Vec<object_store::ObjectMeta>, object_store::Error> =
            self.block(rel_prefix, self.store.list(Some(&key)).try_collect())?;
        let mut out: Vec<Listed> = listed
            .map_err(|e| self.fail(rel_prefix, "cannot list", e))?
            .into_iter()
            .map(|m| Listed {
                key: m.location.as_ref().get(strip..).unwrap_or_default().to_string(),
                size: m.size,
                e_tag: m.e_tag,
                written_ms: m.last_modified.timestamp_millis(),
            })
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// The size of an object; `None` when there is none.
    pub fn size(&self, rel: &str) -> Result<Option<u64>, RemoteError> {
        match self.block(rel, self.store.head(&self.key(rel)))? {
            Ok(m) => Ok(Some(m.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.fail(rel, "cannot read the size of", e)),
        }
    }

    /// Removes an object (nothing to do when it is gone already).
    pub fn delete(&self, rel: &str) -> Result<(), RemoteError> {
        let key = self.key(rel);
        match self.block(rel, self.store.delete(&key))? {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.fail(rel, "cannot remove", e)),
        }
    }

    /// Copies an object to another key (replacing one that is there).
    pub fn copy(&self, from: &str, to: &str) -> Result<(), RemoteError> {
        let (a, b) = (self.key(from), self.key(to));
        self.block(to, self.store.copy(&a, &b))?
            .map_err(|e| self.fail(to, &format!("cannot copy {} here", self.url(from)), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Location, String> {
        s.parse::<Location>().map_err(|e| e.to_string())
    }

    #[test]
    fn locations_parse_as_folders_file_urls_and_s3_prefixes() {
        assert_eq!(parse("warehouse").unwrap(), Location::Local("warehouse".into()));
        assert_eq!(parse("/srv/w h").unwrap(), Location::Local("/srv/w h".into()));
        assert_eq!(parse("file:///srv/wh").unwrap(), Location::Local("/srv/wh".into()));
        assert_eq!(parse("s3://b/a/c/").unwrap(), Location::S3 { bucket: "b".into(), prefix: "a/c".into() });
        assert_eq!(parse("s3://b").unwrap(), Location::S3 { bucket: "b".into(), prefix: String::new() });
        assert_eq!(parse("s3://b/a/c").unwrap().to_string(), "s3://b/a/c");
        assert_eq!(parse("s3://b").unwrap().to_string(), "s3://b");
    }

    #[test]
    fn a_bad_location_says_what_is_expected_and_never_shows_a_secret() {
        let e = parse("s3://AKIAX:hunter2@bucket/wh").unwrap_err();
        assert!(e.contains("AWS_ACCESS_KEY_ID"), "{e}");
        assert!(!e.contains("hunter2") && !e.contains("AKIAX"), "{e}");
        assert!(parse("gs://b/x").unwrap_err().contains("s3://bucket/prefix"));
        assert!(parse("s3:///x").unwrap_err().contains("no bucket"));
        assert!(parse("s3://b/x?secret=1").unwrap_err().contains("AWS_"));
        assert!(parse("file://host/x").is_err());
    }

    #[test]
    fn a_remote_warehouse_works_in_a_cache_folder_of_its_own() {
        let a = parse("s3://b/p/q").unwrap().work_dir();
        let b = parse("s3://b/p").unwrap().work_dir();
        assert!(a.ends_with("s3/b/p/q") && b.ends_with("s3/b/p"), "{a:?} {b:?}");
        assert_eq!(parse("x/y").unwrap().work_dir(), PathBuf::from("x/y"));
    }
}
