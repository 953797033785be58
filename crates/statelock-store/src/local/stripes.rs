//! Cross-process mutual exclusion per key, for the check-then-publish step of every write.
//!
//! A create is atomic on its own (`link` fails if the name exists), but compare-and-swap is a
//! read of the current version followed by a `rename`, and nothing in POSIX makes that pair
//! atomic. So every mutation of a key holds an exclusive `flock` on one of 256 lock files,
//! chosen by a hash of the key. `flock` locks belong to an open file description, so they
//! exclude other tasks of this process as well as other processes, and the kernel drops them
//! when a process dies: a crash never leaves a key locked.
//!
//! The hash must be the same in every build that may share a directory, hence FNV-1a, written
//! out here, rather than the standard library's unspecified hasher.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

/// Number of lock files. Keys that share one only wait for each other's short critical
/// sections; they never affect each other's results.
pub(crate) const STRIPES: u32 = 256;

fn fnv1a(bytes: &[u8]) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for &b in bytes {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

/// File name of the lock file guarding `key`, e.g. `3f.lock`.
pub(crate) fn stripe_file_name(key: &str) -> String {
    format!("{:02x}.lock", fnv1a(key.as_bytes()) % STRIPES)
}

/// An exclusive lock on a key's stripe, released on drop (closing the file releases it).
#[derive(Debug)]
pub(crate) struct StripeGuard {
    _file: File,
}

/// Blocks until this caller holds the stripe lock of `key` in `locks_dir`.
pub(crate) fn lock_key(locks_dir: &Path, key: &str) -> io::Result<StripeGuard> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(locks_dir.join(stripe_file_name(key)))?;
    file.lock()?;
    Ok(StripeGuard { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_reference_vectors() {
        // From the FNV reference test suite (32-bit FNV-1a).
        assert_eq!(fnv1a(b""), 0x811c_9dc5);
        assert_eq!(fnv1a(b"a"), 0xe40c_292c);
        assert_eq!(fnv1a(b"foobar"), 0xbf9c_f968);
    }

    #[test]
    fn a_second_open_of_the_same_stripe_waits() {
        let dir = tempfile::tempdir().unwrap();
        let guard = lock_key(dir.path(), "k").unwrap();
        let other = OpenOptions::new()
            .write(true)
            .open(dir.path().join(stripe_file_name("k")))
            .unwrap();
        assert!(matches!(
            other.try_lock(),
            Err(std::fs::TryLockError::WouldBlock)
        ));
        drop(guard);
        other.try_lock().expect("free after the guard is dropped");
    }
}
