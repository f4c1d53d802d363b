//! The warehouse lock: an OS lock on `_quarry/lock` for a local warehouse, a lease object for a
//! remote one; held by a run while it recovers the warehouse at its start and while it commits.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::CommitError;
use crate::load::location::Remote;
use crate::load::warehouse::{io_err, Warehouse};

/// Another run holds the warehouse, or took it over from this one.
#[derive(Debug, thiserror::Error)]
#[error("{}", self.message())]
pub struct LockedError {
    /// The warehouse.
    pub path: PathBuf,
    /// What the lock says about its holder.
    pub holder: String,
    /// True when this run held the lock and lost it (its lease ran out before it committed).
    pub lost: bool,
}

impl LockedError {
    fn message(&self) -> String {
        if self.lost {
            format!(
                "warehouse {}: this run's lock lapsed and {} took it over before this run's runs row: the run does not count (the next run undoes what it wrote); run it again",
                self.path.display(),
                self.holder
            )
        } else {
            format!(
                "warehouse {} is locked by another quarry run ({}); wait for it to finish or pass --wait",
                self.path.display(),
                self.holder
            )
        }
    }
}

/// The warehouse lock, held while a run recovers the warehouse and while it commits (a replay: its
/// whole run); released when dropped. A local warehouse's is an OS lock on `_quarry/lock` (gone
/// with the process); a remote one's a lease (`Lease`).
#[derive(Debug)]
pub struct RunLock {
    held: Held,
}

#[derive(Debug)]
enum Held {
    /// Held while the file is open.
    Local {
        _file: File,
    },
    Remote(Lease),
}

/// How long a run waits for the warehouse lock before it gives up (exit 3) without `--wait`:
/// `QUARRY_LOCK_WAIT` seconds, 1800 by default. Other runs hold it only while they clean up after a
/// crash, open the index, or commit.
fn lock_wait() -> std::time::Duration {
    std::time::Duration::from_secs_f64(crate::load::env_seconds("QUARRY_LOCK_WAIT").unwrap_or(1800.0))
}

/// The `n`th pause (from 0) of a run waiting for the lock: 10 ms, growing by half each time up to
/// 250 ms, each jittered to 50–100% of that, different in each process and call (waiting runs do
/// not poll in step). A commit holds the lock for tens of milliseconds (a local warehouse) to a few
/// tenths of a second (object storage): fixed pauses of 50–250 ms cost a waiting run up to a
/// quarter second after each release; polls that start short cost it a few milliseconds.
fn jittered_pause(n: u32) -> std::time::Duration {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let mix = xxhash_rust::xxh3::xxh3_64(
        &[u64::from(nanos).to_le_bytes(), u64::from(std::process::id()).to_le_bytes()].concat(),
    );
    let full_us = (10_000.0 * 1.5f64.powi(n.min(16) as i32)).min(250_000.0) as u64;
    std::time::Duration::from_micros(full_us / 2 + mix % (full_us / 2 + 1))
}

/// Waits out another holder of the lock: the first time says so, past the deadline fails.
struct Waiting {
    since: std::time::Instant,
    deadline: Option<std::time::Instant>,
    said: bool,
    /// Pauses so far.
    pauses: u32,
}

impl Waiting {
    fn new(wait: bool) -> Waiting {
        let since = std::time::Instant::now();
        Waiting { since, deadline: (!wait).then(|| since + lock_wait()), said: false, pauses: 0 }
    }

    /// One more pause for `holder`; the `LockedError` once the deadline has passed.
    fn pause(&mut self, path: &Path, holder: &str) -> Result<(), LockedError> {
        if self.deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            return Err(LockedError { path: path.to_path_buf(), holder: holder.to_string(), lost: false });
        }
        if !self.said {
            tracing::info!("waiting for the warehouse lock ({holder})");
            self.said = true;
        }
        std::thread::sleep(jittered_pause(self.pauses));
        self.pauses += 1;
        Ok(())
    }

    fn done(&self) {
        let waited = self.since.elapsed().as_secs_f64();
        if self.said {
            tracing::info!("lock: taken after waiting {waited:.2} s ({} looks at it)", self.pauses + 1);
        }
    }
}

impl RunLock {
    /// Takes the lock, waiting while another run holds it: up to `QUARRY_LOCK_WAIT` seconds, or
    /// as long as it takes with `wait`.
    pub fn acquire(wh: &Warehouse, wait: bool) -> Result<RunLock, CommitError> {
        if let Some(r) = wh.remote() {
            return Ok(RunLock { held: Held::Remote(Lease::acquire(r, wh.location(), wait)?) });
        }
        let path = wh.internal().join("lock");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err(&path, "cannot open the lock file"))?;
        let mut waiting = Waiting::new(wait);
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(fs::TryLockError::WouldBlock) => {
                    let holder = fs::read_to_string(&path).unwrap_or_default().trim().to_string();
                    let holder = if holder.is_empty() { "unknown".into() } else { holder };
                    waiting.pause(wh.root(), &holder)?;
                }
                Err(fs::TryLockError::Error(e)) => return Err(io_err(&path, "cannot lock")(e).into()),
            }
        }
        waiting.done();
        file.set_len(0).map_err(io_err(&path, "cannot write the lock file"))?;
        writeln!(file, "pid {}", std::process::id()).map_err(io_err(&path, "cannot write the lock file"))?;
        Ok(RunLock { held: Held::Local { _file: file } })
    }

    /// What the commit asks before each step that publishes: is the lock still this run's?
    pub fn guard(&self) -> LockGuard {
        match &self.held {
            Held::Local { .. } => LockGuard(None),
            Held::Remote(lease) => LockGuard(Some((lease.state.clone(), lease.shown.clone()))),
        }
    }
}

/// The key of a remote warehouse's lock.
const LOCK_KEY: &str = "_quarry/lock";

/// A remote warehouse's lock: the object `_quarry/lock`, created only if absent (a conditional
/// put), naming its holder and the time its lease ends. A thread renews it (a put conditional on
/// its version) every quarter of the lease (`QUARRY_LOCK_TTL` seconds, 60 by default). Another run
/// takes it over only when the lease has ended, or when its holder is a process of the same host
/// that is gone (a killed run on this machine costs no wait); the clean-up of a crashed run's
/// objects runs under the lock, so it never removes what a live run wrote. A run whose lease lapsed
/// fails before its next publishing step (`check`).
#[derive(Debug)]
struct Lease {
    remote: Remote,
    shown: PathBuf,
    state: Arc<Mutex<LeaseState>>,
    stop: Option<std::sync::mpsc::Sender<()>>,
    renewer: Option<std::thread::JoinHandle<()>>,
}

#[derive(Debug)]
struct LeaseState {
    /// The version of the lock object this run wrote last; `None` once another run took it over.
    e_tag: Option<String>,
    /// Until when the lease is certainly this run's.
    until: std::time::Instant,
    /// Who took it over, when one did.
    taken_by: Option<String>,
}

/// What a lock object holds.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct LeaseBody {
    host: String,
    pid: u32,
    /// Milliseconds since the Unix epoch when the lease ends unless renewed.
    expires_ms: i64,
}

impl LeaseBody {
    fn holder(&self) -> String {
        format!("pid {} on {}", self.pid, self.host)
    }
}

fn lease_ttl() -> std::time::Duration {
    let secs = crate::load::env_seconds("QUARRY_LOCK_TTL").filter(|s| *s > 0.0);
    std::time::Duration::from_secs_f64(secs.unwrap_or(60.0))
}

fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that many bytes.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    if rc == 0 && end > 0 {
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        "unknown-host".into()
    }
}

/// True unless no process `pid` exists on this host.
fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else { return true };
    // SAFETY: signal 0 only checks that the process exists.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

fn lease_body(ttl: std::time::Duration) -> Vec<u8> {
    let body = LeaseBody {
        host: host_name(),
        pid: std::process::id(),
        expires_ms: chrono::Utc::now().timestamp_millis() + ttl.as_millis() as i64,
    };
    serde_json::to_vec(&body).expect("a lease prints")
}

impl Lease {
    fn acquire(r: &Remote, location: &crate::load::location::Location, wait: bool) -> Result<Lease, CommitError> {
        Lease::acquire_for(r, PathBuf::from(location.to_string()), Waiting::new(wait), lease_ttl())
    }

    fn acquire_for(
        r: &Remote,
        shown: PathBuf,
        mut waiting: Waiting,
        ttl: std::time::Duration,
    ) -> Result<Lease, CommitError> {
        loop {
            let started = std::time::Instant::now();
            if let Some(tag) = r.put_new(LOCK_KEY, lease_body(ttl))? {
                waiting.done();
                return Ok(Lease::held(r, shown, tag, started + ttl, ttl));
            }
            let Some(obj) = r.get(LOCK_KEY)? else { continue }; // released meanwhile
            let body: Option<LeaseBody> = serde_json::from_slice(&obj.bytes).ok();
            let now = chrono::Utc::now().timestamp_millis();
            let stale = match &body {
                None => Some("unreadable".to_string()),
                Some(b) if b.expires_ms < now => {
                    Some(format!("its lease ended {:.0} s ago", (now - b.expires_ms) as f64 / 1e3))
                }
                Some(b) if b.host == host_name() && !process_alive(b.pid) => Some("its process is gone".into()),
                Some(_) => None,
            };
            let holder = body.as_ref().map_or("unknown".into(), LeaseBody::holder);
            if let (Some(why), Some(tag)) = (&stale, &obj.e_tag) {
                if let Some(new) = r.put_if(LOCK_KEY, lease_body(ttl), tag)? {
                    tracing::warn!("took over the lock of {holder} ({why})");
                    waiting.done();
                    return Ok(Lease::held(r, shown, new, started + ttl, ttl));
                }
                continue; // another run took it first: look again
            }
            let until = body
                .and_then(|b| chrono::DateTime::from_timestamp_millis(b.expires_ms))
                .map_or(String::new(), |t| format!(", lease renewed until {}", t.format("%Y-%m-%dT%H:%M:%SZ")));
            waiting.pause(&shown, &format!("{holder}{until}"))?;
        }
    }

    fn held(r: &Remote, shown: PathBuf, e_tag: String, until: std::time::Instant, ttl: std::time::Duration) -> Lease {
        let state = Arc::new(Mutex::new(LeaseState { e_tag: Some(e_tag), until, taken_by: None }));
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let (remote, st) = (r.clone(), state.clone());
        let renewer = std::thread::Builder::new()
            .name("quarry-lease".into())
            .spawn(move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(ttl / 4) {
                    let Some(tag) = st.lock().expect("lease state").e_tag.clone() else { return };
                    let started = std::time::Instant::now();
                    match remote.put_if(LOCK_KEY, lease_body(ttl), &tag) {
                        Ok(Some(new)) => {
                            let mut s = st.lock().expect("lease state");
                            s.e_tag = Some(new);
                            s.until = started + ttl;
                        }
                        Ok(None) => {
                            let by = remote
                                .get(LOCK_KEY)
                                .ok()
                                .flatten()
                                .and_then(|o| serde_json::from_slice::<LeaseBody>(&o.bytes).ok())
                                .map_or("another run".into(), |b| b.holder());
                            let mut s = st.lock().expect("lease state");
                            s.e_tag = None;
                            s.taken_by = Some(by);
                            return;
                        }
                        Err(e) => tracing::warn!("lock: cannot renew the lease ({e}); trying again"),
                    }
                }
            })
            .ok();
        Lease { remote: r.clone(), shown, state, stop: Some(stop), renewer }
    }
}

/// A view of a run's lock for its commit (`RunLock::guard`).
#[derive(Debug, Clone)]
pub struct LockGuard(Option<(Arc<Mutex<LeaseState>>, PathBuf)>);

impl LockGuard {
    /// The guard of a lock that cannot lapse (a local one, or none yet).
    pub fn none() -> LockGuard {
        LockGuard(None)
    }

    /// Fails when the lock is no longer this run's (a lease that lapsed and was taken over, or
    /// that could not be renewed in time).
    pub fn check(&self) -> Result<(), CommitError> {
        let Some((state, shown)) = &self.0 else { return Ok(()) };
        let s = state.lock().expect("lease state");
        let lost = match (&s.e_tag, &s.taken_by) {
            (None, by) => Some(by.clone().unwrap_or_else(|| "another run".into())),
            (Some(_), _) if std::time::Instant::now() >= s.until => {
                Some("possibly another run (the lease could not be renewed)".into())
            }
            _ => None,
        };
        match lost {
            Some(holder) => Err(LockedError { path: shown.clone(), holder, lost: true }.into()),
            None => Ok(()),
        }
    }
}

impl Drop for Lease {
    /// Stops the renewer and removes the lock object, unless another run holds it by now.
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(h) = self.renewer.take() {
            let _ = h.join();
        }
        let held = self.state.lock().map(|s| s.e_tag.clone()).ok().flatten();
        if let Some(tag) = held {
            let still_ours = self.remote.get(LOCK_KEY).ok().flatten().is_some_and(|o| o.e_tag.as_deref() == Some(&tag));
            if still_ours {
                if let Err(e) = self.remote.delete(LOCK_KEY) {
                    tracing::warn!("lock: cannot release ({e}); the next run takes it over once its lease ends");
                }
            }
        }
    }
}

#[cfg(test)]
mod lease_tests {
    use super::*;
    use std::time::Duration;

    fn lock(r: &Remote, ttl_ms: u64) -> Result<Lease, CommitError> {
        let now = Waiting {
            since: std::time::Instant::now(),
            deadline: Some(std::time::Instant::now()),
            said: false,
            pauses: 0,
        };
        Lease::acquire_for(r, "s3://test/wh".into(), now, Duration::from_millis(ttl_ms))
    }

    fn body(r: &Remote) -> LeaseBody {
        serde_json::from_slice(&r.get(LOCK_KEY).unwrap().unwrap().bytes).unwrap()
    }

    #[test]
    fn a_lease_keeps_others_out_is_renewed_and_is_released() {
        let r = Remote::in_memory();
        let a = lock(&r, 200).unwrap();
        let first = body(&r).expires_ms;
        let e = lock(&r, 200).unwrap_err().to_string();
        assert!(e.contains(&format!("pid {} on", std::process::id())) && e.contains("lease renewed until"), "{e}");
        std::thread::sleep(Duration::from_millis(400));
        assert!(body(&r).expires_ms > first, "renewed every quarter of the lease");
        let guard = LockGuard(Some((a.state.clone(), a.shown.clone())));
        guard.check().unwrap();
        drop(a);
        assert!(r.get(LOCK_KEY).unwrap().is_none(), "released");
        lock(&r, 200).unwrap();
    }

    #[test]
    fn a_lease_taken_over_fails_the_check_and_is_not_released_by_its_old_holder() {
        let r = Remote::in_memory();
        let a = lock(&r, 200).unwrap();
        let guard = LockGuard(Some((a.state.clone(), a.shown.clone())));
        let other = LeaseBody { host: "elsewhere".into(), pid: 7, expires_ms: i64::MAX / 2 };
        r.put(LOCK_KEY, serde_json::to_vec(&other).unwrap()).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let e = guard.check().unwrap_err();
        assert!(e.to_string().contains("pid 7 on elsewhere took it over"), "{e}");
        assert!(matches!(e, CommitError::Locked(LockedError { lost: true, .. })));
        drop(a);
        assert_eq!(body(&r).host, "elsewhere", "the new holder's lock stays");
    }

    #[test]
    fn an_ended_lease_or_one_of_a_gone_process_here_is_taken_over() {
        let r = Remote::in_memory();
        let ended = LeaseBody { host: "elsewhere".into(), pid: 7, expires_ms: 0 };
        r.put(LOCK_KEY, serde_json::to_vec(&ended).unwrap()).unwrap();
        drop(lock(&r, 10_000).unwrap());
        // pid 0 is never a user process here: `kill(0, 0)` would signal our group, so use a
        // number far above pid_max.
        let gone = LeaseBody { host: host_name(), pid: 0x3fff_ffff, expires_ms: i64::MAX / 2 };
        r.put(LOCK_KEY, serde_json::to_vec(&gone).unwrap()).unwrap();
        drop(lock(&r, 10_000).unwrap());
        let live = LeaseBody { host: "elsewhere".into(), pid: 7, expires_ms: i64::MAX / 2 };
        r.put(LOCK_KEY, serde_json::to_vec(&live).unwrap()).unwrap();
        assert!(matches!(lock(&r, 10_000), Err(CommitError::Locked(LockedError { lost: false, .. }))));
    }
}
