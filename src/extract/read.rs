//! Finding input files and opening them as decompressed byte streams.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Read buffer size for dump files.
pub const READ_BUFFER: usize = 1 << 20;

/// How a file's bytes are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Plain text.
    None,
    /// gzip (one or more members).
    Gzip,
    /// Zstandard.
    Zstd,
}

/// One input to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputFile {
    /// A file on disk; `display` is the given path joined with the path below a given directory,
    /// `key` the path below that directory (the file name for a file given itself): the same on
    /// every machine that mounts the dumps elsewhere (`--shard` hashes it).
    Path { path: PathBuf, display: String, key: String, size: u64 },
    /// Standard input.
    Stdin,
}

impl InputFile {
    /// The name stored in `source_file`.
    pub fn display(&self) -> &str {
        match self {
            InputFile::Path { display, .. } => display,
            InputFile::Stdin => "-",
        }
    }

    /// The size on disk (0 for standard input: unknown).
    pub fn size(&self) -> u64 {
        match self {
            InputFile::Path { size, .. } => *size,
            InputFile::Stdin => 0,
        }
    }
}

/// An input that cannot be used: which path and why.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct InputError {
    /// The path as given or found.
    pub path: String,
    /// What went wrong.
    pub message: String,
}

fn input_err(path: &Path, e: impl std::fmt::Display) -> InputError {
    InputError { path: path.display().to_string(), message: e.to_string() }
}

/// True for the file names a dump directory holds.
pub fn is_dump_name(name: &str) -> bool {
    name.ends_with(".txt") || name.ends_with(".txt.gz") || name.ends_with(".txt.zst")
}

/// Compression of a file, by its name.
pub fn compression_of(name: &str) -> Compression {
    if name.ends_with(".gz") {
        Compression::Gzip
    } else if name.ends_with(".zst") {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// Expands inputs into files: a directory becomes every dump file below it in byte order of the
/// path; `-` is standard input. Every file is opened once here so that an unreadable one fails the
/// run before anything is written.
pub fn discover(inputs: &[String]) -> Result<Vec<InputFile>, InputError> {
    let mut out = Vec::new();
    for input in inputs {
        if input == "-" {
            out.push(InputFile::Stdin);
            continue;
        }
        let path = Path::new(input);
        let meta = std::fs::metadata(path).map_err(|e| input_err(path, e))?;
        if meta.is_dir() {
            let mut found = walk(path)?;
            found.sort_by(|a, b| a.0.as_os_str().as_encoded_bytes().cmp(b.0.as_os_str().as_encoded_bytes()));
            for (p, size) in found {
                File::open(&p).map_err(|e| input_err(&p, e))?;
                let display = p.display().to_string();
                let below = p.strip_prefix(path).unwrap_or(&p);
                let key = below.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
                out.push(InputFile::Path { path: p, display, key, size });
            }
        } else {
            File::open(path).map_err(|e| input_err(path, e))?;
            let key = path.file_name().map_or_else(|| input.clone(), |n| n.to_string_lossy().into_owned());
            out.push(InputFile::Path { path: path.to_path_buf(), display: input.clone(), key, size: meta.len() });
        }
    }
    Ok(out)
}

/// `--shard I/N`: the share of the inputs one of N workers imports (I from 0). A file belongs to the
/// shard its `key` hashes to, so the same file always goes to the same shard, whatever the machine
/// or the other files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Shard, String> {
        let bad = || {
            format!("--shard {s:?}: expected I/N with 0 ≤ I < N, e.g. 0/4 (I counts from 0, as JOB_COMPLETION_INDEX)")
        };
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) = (i.trim().parse::<u32>().map_err(|_| bad())?, n.trim().parse::<u32>().map_err(|_| bad())?);
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// Whether this shard imports the file with this key.
    pub fn takes(&self, key: &str) -> bool {
        xxhash_rust::xxh3::xxh3_64(key.as_bytes()) % u64::from(self.count) == u64::from(self.index)
    }

    /// The files of `files` this shard imports; standard input belongs to no shard.
    pub fn select(&self, files: Vec<InputFile>) -> Result<Vec<InputFile>, String> {
        let mut out = Vec::new();
        for f in files {
            match &f {
                InputFile::Stdin => {
                    return Err("--shard: standard input (-) cannot be shared out; pass files or folders".into())
                }
                InputFile::Path { key, .. } if self.takes(key) => out.push(f),
                InputFile::Path { .. } => {}
            }
        }
        Ok(out)
    }
}

/// Every dump file below `dir` (links followed) with its size. A link back to a folder being
/// walked is skipped with a warning; any other entry that cannot be read is an error.
fn walk(dir: &Path) -> Result<Vec<(PathBuf, u64)>, InputError> {
    let mut out = Vec::new();
    for entry in walkdir::WalkDir::new(dir).follow_links(true) {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => match e.loop_ancestor() {
                Some(ancestor) => {
                    let link = e.path().unwrap_or(dir).display();
                    tracing::warn!("{link}: skipped: a symbolic link that loops back to {}", ancestor.display());
                    continue;
                }
                None => return Err(walk_err(dir, e)),
            },
        };
        if entry.file_type().is_file() && entry.file_name().to_str().is_some_and(is_dump_name) {
            let size = entry.metadata().map_err(|e| walk_err(dir, e))?.len();
            out.push((entry.into_path(), size));
        }
    }
    Ok(out)
}

/// A walk error as the path it failed on and the I/O error behind it.
fn walk_err(dir: &Path, e: walkdir::Error) -> InputError {
    let path = e.path().unwrap_or(dir);
    match e.io_error() {
        Some(io) => input_err(path, io),
        None => input_err(path, &e),
    }
}

/// Counts the bytes that pass through a reader (the on-disk bytes, before decompression).
pub struct CountingReader<R> {
    inner: R,
    count: Arc<std::sync::atomic::AtomicU64>,
}

impl<R> CountingReader<R> {
    /// Wraps `inner`, adding every byte read to `count`.
    pub fn new(inner: R, count: Arc<std::sync::atomic::AtomicU64>) -> Self {
        CountingReader { inner, count }
    }
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

/// Wraps a raw byte stream in the decompressor its compression needs.
pub fn decompress<'a>(raw: impl Read + Send + 'a, c: Compression) -> io::Result<Box<dyn BufRead + Send + 'a>> {
    Ok(match c {
        Compression::None => Box::new(BufReader::with_capacity(READ_BUFFER, raw)),
        Compression::Gzip => Box::new(BufReader::with_capacity(
            READ_BUFFER,
            flate2::read::MultiGzDecoder::new(BufReader::with_capacity(READ_BUFFER, raw)),
        )),
        Compression::Zstd => Box::new(BufReader::with_capacity(READ_BUFFER, zstd::stream::read::Decoder::new(raw)?)),
    })
}

/// Sniffs gzip or zstd magic at the start of a buffered stream (for standard input).
pub fn sniff(reader: &mut impl BufRead) -> io::Result<Compression> {
    let head = reader.fill_buf()?;
    Ok(if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    })
}

/// xxh3-128 digest of a file's bytes as stored, to know a file already imported.
pub fn digest_file(path: &Path) -> io::Result<String> {
    let mut f = File::open(path)?;
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    let mut buf = vec![0u8; READ_BUFFER];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(format!("{:032x}", h.digest128()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn directories_expand_recursively_in_path_order() {
        let d = tempfile::tempdir().unwrap();
        for name in ["b/x.txt", "a.txt.gz", "a/z.txt.zst", "c.md", "b/a.txt"] {
            let p = d.path().join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b"x").unwrap();
        }
        let root = d.path().display().to_string();
        let files = discover(std::slice::from_ref(&root)).unwrap();
        let names: Vec<String> = files.iter().map(|f| f.display().strip_prefix(&root).unwrap().to_string()).collect();
        assert_eq!(names, ["/a.txt.gz", "/a/z.txt.zst", "/b/a.txt", "/b/x.txt"]);
    }

    #[test]
    fn shards_split_the_files_by_their_path_below_the_input_and_every_file_goes_to_one() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let names: Vec<String> = (0..40).map(|i| format!("day-{}/dump-{i:03}.txt", i % 3)).collect();
        for root in [a.path(), b.path()] {
            touch(root, &names.iter().map(String::as_str).collect::<Vec<_>>());
        }
        let keys = |root: &Path, shard: Shard| -> Vec<String> {
            let files = discover(&[root.display().to_string()]).unwrap();
            shard
                .select(files)
                .unwrap()
                .iter()
                .map(|f| f.display()[root.display().to_string().len() + 1..].to_string())
                .collect()
        };
        let mut all = Vec::new();
        for i in 0..4 {
            let shard: Shard = format!("{i}/4").parse().unwrap();
            let here = keys(a.path(), shard);
            assert_eq!(here, keys(b.path(), shard), "another mount point, the same share");
            assert!(!here.is_empty() && here.len() < 40, "shard {i}: {} files", here.len());
            all.extend(here);
        }
        all.sort();
        let mut want = names.clone();
        want.sort();
        assert_eq!(all, want, "every file in exactly one shard");
        let one = discover(&[a.path().join("day-1/dump-001.txt").display().to_string()]).unwrap();
        assert!(matches!(&one[0], InputFile::Path { key, .. } if key == "dump-001.txt"));
        assert!("0/1".parse::<Shard>().unwrap().select(vec![InputFile::Stdin]).is_err());
        for bad in ["4/4", "1", "a/2", "0/0", "-1/3"] {
            assert!(bad.parse::<Shard>().unwrap_err().contains("I/N"), "{bad}");
        }
    }

    /// Writes `x` to each of `names` below `root`, making the folders on the way.
    fn touch(root: &Path, names: &[&str]) {
        for name in names {
            let p = root.join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b"x").unwrap();
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_link_loop_is_skipped_with_a_warning_naming_it() {
        let d = tempfile::tempdir().unwrap();
        touch(d.path(), &["a/x.txt", "b.txt", "c/d/y.txt.gz"]);
        std::os::unix::fs::symlink("..", d.path().join("a/loop")).unwrap();
        std::os::unix::fs::symlink("../..", d.path().join("c/d/up")).unwrap();
        // A link to a folder outside the walk is followed, as before.
        let outside = tempfile::tempdir().unwrap();
        touch(outside.path(), &["z.txt"]);
        std::os::unix::fs::symlink(outside.path(), d.path().join("elsewhere")).unwrap();
        let root = d.path().display().to_string();
        let log = Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
        let writer = {
            let log = log.clone();
            move || LogWriter(log.clone())
        };
        let subscriber = tracing_subscriber::fmt().with_writer(writer).with_ansi(false).without_time().finish();
        let files = tracing::subscriber::with_default(subscriber, || discover(std::slice::from_ref(&root))).unwrap();
        let names: Vec<String> = files.iter().map(|f| f.display().strip_prefix(&root).unwrap().to_string()).collect();
        assert_eq!(names, ["/a/x.txt", "/b.txt", "/c/d/y.txt.gz", "/elsewhere/z.txt"]);
        let log = String::from_utf8(log.lock().unwrap().clone()).unwrap();
        // The walk reads folders in the order the file system lists them.
        let mut warnings: Vec<&str> = log.lines().collect();
        warnings.sort();
        assert_eq!(warnings.len(), 2, "{log}");
        for (w, link) in warnings.iter().zip(["a/loop", "c/d/up"]) {
            assert!(w.contains(" WARN "), "{log}");
            assert!(
                w.ends_with(&format!("{root}/{link}: skipped: a symbolic link that loops back to {root}")),
                "{log}"
            );
        }
    }

    /// Log output kept in memory.
    struct LogWriter(Arc<std::sync::Mutex<Vec<u8>>>);

    impl Write for LogWriter {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_dangling_link_in_a_folder_fails_naming_it() {
        let d = tempfile::tempdir().unwrap();
        touch(d.path(), &["a/x.txt"]);
        std::os::unix::fs::symlink("missing", d.path().join("a/gone.txt")).unwrap();
        let e = discover(&[d.path().display().to_string()]).unwrap_err();
        assert_eq!(e.path, d.path().join("a/gone.txt").display().to_string(), "{e}");
        assert!(e.message.contains("No such file"), "{e}");
    }

    #[test]
    fn a_missing_input_names_its_path() {
        let e = discover(&["/no/such/dump.txt".to_string()]).unwrap_err();
        assert!(e.to_string().starts_with("/no/such/dump.txt: "), "{e}");
    }

    #[test]
    fn gzip_and_zstd_decompress_and_sniff() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"hello").unwrap();
        let gz = gz.finish().unwrap();
        let mut out = String::new();
        decompress(&gz[..], Compression::Gzip).unwrap().read_to_string(&mut out).unwrap();
        assert_eq!(out, "hello");
        let zs = zstd::encode_all(&b"zhello"[..], 1).unwrap();
        let mut out = String::new();
        decompress(&zs[..], Compression::Zstd).unwrap().read_to_string(&mut out).unwrap();
        assert_eq!(out, "zhello");
        assert_eq!(sniff(&mut &gz[..]).unwrap(), Compression::Gzip);
        assert_eq!(sniff(&mut &zs[..]).unwrap(), Compression::Zstd);
        assert_eq!(sniff(&mut &b"plain"[..]).unwrap(), Compression::None);
    }

    #[test]
    fn corrupt_gzip_is_an_error_not_a_panic() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&b"hello world ".repeat(1000)).unwrap();
        let mut gz = gz.finish().unwrap();
        let mid = gz.len() / 2;
        gz[mid] ^= 0xff;
        gz.truncate(gz.len() - 4);
        let mut out = Vec::new();
        assert!(decompress(&gz[..], Compression::Gzip).unwrap().read_to_end(&mut out).is_err());
    }
}
