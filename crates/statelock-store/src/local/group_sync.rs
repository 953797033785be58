//! Group commit of directory flushes: concurrent writers that need the same directory flushed
//! share one `fsync` instead of queueing one each.
//!
//! A writer asks for a flush *after* its change (a link, rename, unlink or mkdir) and returns
//! only once a flush that *started after its request* has completed, so sharing never
//! weakens durability: whatever the writer changed was in the directory before that flush
//! began. Writers arriving while a flush runs wait for it to end and then share the next one,
//! which its first waiter runs for all of them. A failed flush satisfies nobody; each waiter
//! then tries itself and gets its own error.
//!
//! The registry is per process, so every `LocalStore` on the same directory coalesces; other
//! processes flush on their own, as before. Files' own flushes (the staged body) are one per
//! file and cannot be shared.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};

/// Flush requests and the `fsync` calls made for them, process-wide, for the benchmarks'
/// round-trip table.
static REQUESTED: AtomicU64 = AtomicU64::new(0);
static PERFORMED: AtomicU64 = AtomicU64::new(0);

/// Counts one `fsync` of a file (not coalesced).
pub(crate) fn count_file_sync() {
    REQUESTED.fetch_add(1, Ordering::Relaxed);
    PERFORMED.fetch_add(1, Ordering::Relaxed);
}

/// `(requested, performed)`: flushes asked for and `fsync` calls made, by every local store
/// in this process so far.
pub(crate) fn counts() -> (u64, u64) {
    (
        REQUESTED.load(Ordering::Relaxed),
        PERFORMED.load(Ordering::Relaxed),
    )
}

#[derive(Debug, Default)]
struct Flushes {
    /// Requests so far; each writer's request number.
    requested: u64,
    /// Every request up to this number is covered by a completed flush.
    completed: u64,
    running: bool,
}

#[derive(Debug, Default)]
struct Dir {
    flushes: Mutex<Flushes>,
    done: Condvar,
}

fn registry() -> MutexGuard<'static, HashMap<PathBuf, Arc<Dir>>> {
    static DIRS: OnceLock<Mutex<HashMap<PathBuf, Arc<Dir>>>> = OnceLock::new();
    DIRS.get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

fn lock(dir: &Dir) -> MutexGuard<'_, Flushes> {
    dir.flushes.lock().unwrap_or_else(|p| p.into_inner())
}

/// Flushes `path`'s entries to disk, sharing the `fsync` with concurrent callers (see the
/// module doc). Blocks; call from blocking threads only.
pub(crate) fn sync_dir(path: &Path) -> io::Result<()> {
    REQUESTED.fetch_add(1, Ordering::Relaxed);
    let dir = Arc::clone(registry().entry(path.to_path_buf()).or_default());
    let result = flush(&dir, path);
    // Drop the entry once nobody uses it, so the registry holds only busy directories.
    let mut dirs = registry();
    if Arc::strong_count(&dir) == 2 {
        let idle = {
            let f = lock(&dir);
            !f.running && f.completed == f.requested
        };
        if idle {
            dirs.remove(path);
        }
    }
    result
}

fn flush(dir: &Dir, path: &Path) -> io::Result<()> {
    let mut f = lock(dir);
    f.requested += 1;
    let mine = f.requested;
    loop {
        if f.completed >= mine {
            return Ok(());
        }
        if !f.running {
            f.running = true;
            // Every request up to here was made after its writer's change.
            let covers = f.requested;
            drop(f);
            PERFORMED.fetch_add(1, Ordering::Relaxed);
            let result = File::open(path).and_then(|d| d.sync_all());
            f = lock(dir);
            f.running = false;
            if result.is_ok() {
                f.completed = f.completed.max(covers);
            }
            dir.done.notify_all();
            result?;
            continue;
        }
        f = dir.done.wait(f).unwrap_or_else(|p| p.into_inner());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_flushes_of_one_directory_share_fsyncs_and_all_return() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        let threads: Vec<_> = (0..16)
            .map(|i| {
                let path = path.clone();
                std::thread::spawn(move || {
                    std::fs::write(path.join(format!("f{i}")), b"x").unwrap();
                    sync_dir(&path).unwrap();
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert!(registry().get(&path).is_none(), "idle entries are dropped");
        let err = sync_dir(&path.join("missing")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
