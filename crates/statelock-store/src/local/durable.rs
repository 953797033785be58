//! File-system steps that make a local write atomic and durable: stage the new file in full,
//! flush it, publish it with one `link` or `rename`, then flush the directory.
//!
//! `link` and `rename` are the only publishing steps, and both are atomic on POSIX file
//! systems, so a crash leaves each object either entirely old or entirely new; an interrupted
//! write leaves at most a `*.partial` file in the staging directory, which no reader looks at.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use crate::version_token::new_version_token;

/// Suffix of staged files, so that clean-up never touches anything else.
pub(crate) const PARTIAL_SUFFIX: &str = ".partial";

/// A fully written and flushed file in the staging directory. Dropping it removes the staged
/// name, unless [`StagedFile::rename_to`] moved it (after [`StagedFile::link_to`] the object
/// has its own name, and the staged one is no longer needed).
#[derive(Debug)]
pub(crate) struct StagedFile {
    path: PathBuf,
    renamed: bool,
}

impl StagedFile {
    /// Writes `parts` one after another into a new file under `tmp_dir` and flushes it.
    pub(crate) fn write(tmp_dir: &Path, parts: &[&[u8]]) -> io::Result<StagedFile> {
        let path = tmp_dir.join(format!("{}{PARTIAL_SUFFIX}", new_version_token()));
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&path)?;
        // From here on, dropping the guard removes the partial file on every error path.
        let staged = StagedFile {
            path,
            renamed: false,
        };
        for part in parts {
            file.write_all(part)?;
        }
        file.sync_all()?;
        super::group_sync::count_file_sync();
        Ok(staged)
    }

    /// Publishes the file at `target` only if nothing is there (`link` fails with
    /// `AlreadyExists` otherwise).
    pub(crate) fn link_to(&self, target: &Path) -> io::Result<()> {
        fs::hard_link(&self.path, target)
    }

    /// Publishes the file at `target`, atomically replacing whatever is there.
    pub(crate) fn rename_to(&mut self, target: &Path) -> io::Result<()> {
        fs::rename(&self.path, target)?;
        self.renamed = true;
        Ok(())
    }
}

impl Drop for StagedFile {
    fn drop(&mut self) {
        if !self.renamed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Flushes a directory's entries (a new, replaced or removed name) to disk, sharing the
/// `fsync` with concurrent writers of the same directory (`group_sync`).
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    super::group_sync::sync_dir(dir)
}

/// [`sync_dir`] for the directory an object was just published into or removed from. If it
/// is already gone, a concurrent delete emptied and removed it (flushing its own parent), so
/// there is nothing left of ours to flush.
pub(crate) fn sync_parent_of(target: &Path) -> io::Result<()> {
    let Some(parent) = target.parent() else {
        return Ok(());
    };
    match sync_dir(parent) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Opens a file for reading without following a symbolic link at its last component, so a
/// link planted in the data directory cannot make the store read outside it.
pub(crate) fn open_no_follow(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// One directory instance, as `stat` tells them apart: a directory removed and created again
/// under the same name has another birth time (and usually another inode).
type DirIdentity = (u64, u64, std::time::SystemTime);

/// Directories whose entry in their parent this process has flushed, by path, with the
/// identity they had then. While a path still names that same directory its entry is on disk
/// (it can only have gone with the directory itself), so it need not be flushed again.
fn durable_dirs() -> std::sync::MutexGuard<'static, HashMap<PathBuf, DirIdentity>> {
    static DIRS: OnceLock<Mutex<HashMap<PathBuf, DirIdentity>>> = OnceLock::new();
    DIRS.get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

/// Entries kept before the cache starts over (a flush too many is the only cost).
const DURABLE_DIRS_MAX: usize = 100_000;

fn identity(meta: &fs::Metadata) -> Option<DirIdentity> {
    use std::os::unix::fs::MetadataExt;
    // Without a birth time a re-created directory could look the same: then nothing is cached.
    Some((meta.dev(), meta.ino(), meta.created().ok()?))
}

fn remember_durable(dir: PathBuf, meta: &fs::Metadata) {
    if let Some(id) = identity(meta) {
        let mut dirs = durable_dirs();
        if dirs.len() >= DURABLE_DIRS_MAX {
            dirs.clear();
        }
        dirs.insert(dir, id);
    }
}

/// Creates the directories between `base` (which exists) and `target`'s parent, one level at
/// a time, refusing to pass through a symbolic link, and flushing each parent whose entries
/// changed so the new directories survive a crash. A directory that already exists is
/// flushed into its parent too (another writer may have created it and not flushed yet),
/// unless this process already flushed that very directory's entry.
pub(crate) fn ensure_parent_dirs(base: &Path, target: &Path) -> io::Result<()> {
    let Some(parent) = target.parent() else {
        return Ok(());
    };
    let relative = parent
        .strip_prefix(base)
        .map_err(|_| io::Error::other("object path is outside the store's root"))?;
    let mut dir = base.to_path_buf();
    for component in relative.components() {
        let next = dir.join(component);
        match fs::create_dir(&next) {
            Ok(()) => {
                // Read before the flush, as below.
                let meta = fs::symlink_metadata(&next).ok();
                sync_dir(&dir)?;
                if let Some(meta) = meta.filter(fs::Metadata::is_dir) {
                    remember_durable(next.clone(), &meta);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let meta = fs::symlink_metadata(&next)?;
                if meta.file_type().is_symlink() {
                    return Err(io::Error::other(format!(
                        "refusing to follow the symbolic link {}",
                        next.display()
                    )));
                }
                if !meta.is_dir() {
                    return Err(io::Error::from(io::ErrorKind::NotADirectory));
                }
                let known =
                    identity(&meta).is_some_and(|id| durable_dirs().get(&next) == Some(&id));
                if !known {
                    // Another writer may have created it and not yet flushed its parent; our
                    // success must not depend on its flush. The identity is read before the
                    // flush, so it is the directory the flush made durable or an older one.
                    sync_dir(&dir)?;
                    remember_durable(next.clone(), &meta);
                }
            }
            Err(e) => return Err(e),
        }
        dir = next;
    }
    Ok(())
}

/// Checks that no directory between `base` and `target` is a symbolic link, so reads and
/// deletes cannot be redirected outside the store (`O_NOFOLLOW` guards only the last
/// component). A missing directory is fine: then nothing exists below it.
pub(crate) fn check_no_symlinked_dirs(base: &Path, target: &Path) -> io::Result<()> {
    let Some(relative) = target.parent().and_then(|p| p.strip_prefix(base).ok()) else {
        return Ok(());
    };
    let mut dir = base.to_path_buf();
    for component in relative.components() {
        dir.push(component);
        match fs::symlink_metadata(&dir) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(io::Error::other(format!(
                    "refusing to follow the symbolic link {}",
                    dir.display()
                )));
            }
            Ok(meta) if !meta.is_dir() => {
                return Err(io::Error::from(io::ErrorKind::NotADirectory));
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Removes the now-empty directories from `target`'s parent up to (not including) `base`.
/// Best effort: a directory that another writer has just filled is simply left.
pub(crate) fn remove_empty_parents(base: &Path, target: &Path) {
    let mut dir = target.parent();
    while let Some(d) = dir {
        if d == base || !d.starts_with(base) || fs::remove_dir(d).is_err() {
            return;
        }
        dir = d.parent();
        if let Some(parent) = dir {
            let _ = sync_dir(parent);
        }
    }
}

/// Removes staged files older than `max_age` left by writers that crashed. Younger ones may
/// belong to a live writer in another process and are left alone.
pub(crate) fn remove_stale_partials(tmp_dir: &Path, max_age: std::time::Duration) -> usize {
    let Ok(entries) = fs::read_dir(tmp_dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let is_partial = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.ends_with(PARTIAL_SUFFIX));
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > max_age);
        if is_partial && old && fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_stage_leaves_nothing_and_a_rename_moves_it() {
        let dir = tempfile::tempdir().unwrap();
        drop(StagedFile::write(dir.path(), &[b"a", b"b"]).unwrap());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);

        let target = dir.path().join("t");
        let mut staged = StagedFile::write(dir.path(), &[b"a", b"b"]).unwrap();
        staged.rename_to(&target).unwrap();
        drop(staged);
        assert_eq!(fs::read(&target).unwrap(), b"ab");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_directory_is_flushed_into_its_parent_once_per_instance() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        let target = base.join("a/b/obj");
        ensure_parent_dirs(base, &target).unwrap();
        let flushes = || super::super::group_sync::counts().0;
        let before = flushes();
        ensure_parent_dirs(base, &target).unwrap();
        // Other tests in this process may flush too, but never fewer than ours.
        let again = flushes() - before;
        // Removed and made again (as another process might): flushed again.
        fs::remove_dir(base.join("a/b")).unwrap();
        fs::create_dir(base.join("a/b")).unwrap();
        let before = flushes();
        ensure_parent_dirs(base, &target).unwrap();
        assert!(flushes() - before >= 1, "a re-created directory is flushed");
        assert!(
            durable_dirs().get(&base.join("a/b"))
                == identity(&fs::symlink_metadata(base.join("a/b")).unwrap()).as_ref(),
            "and remembered as the new instance"
        );
        let _ = again;
    }

    #[test]
    fn parent_dirs_refuse_symlinks_and_files() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        std::os::unix::fs::symlink("/tmp", base.join("link")).unwrap();
        fs::write(base.join("file"), b"x").unwrap();
        assert!(ensure_parent_dirs(base, &base.join("link/x")).is_err());
        let err = ensure_parent_dirs(base, &base.join("file/x")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotADirectory);
        ensure_parent_dirs(base, &base.join("a/b/c")).unwrap();
        assert!(base.join("a/b").is_dir());
        remove_empty_parents(base, &base.join("a/b/c"));
        assert!(!base.join("a").exists());
    }
}
