//! One writer at a time: an exclusive advisory lock per repository, held for a whole run.
//!
//! The lock is `flock(2)` on a lock file (`.git/ocitool.lock` in a git checkout, otherwise
//! `<root>/.ocitool.lock`), taken through std's [`File::try_lock`], which "currently corresponds to
//! the `flock` function on Unix with the `LOCK_EX` and `LOCK_NB` flags" (std docs, stable since Rust
//! 1.89). The kernel drops a `flock` lock when the last descriptor of its open file description
//! closes, so a killed process never leaves the repository locked; std opens every file with
//! `O_CLOEXEC`, so a child (sops) never inherits and prolongs it. The holder writes its pid into the
//! file so that a refused run can name it. This module owns where the lock and the journal live
//! and who holds the lock; it never reads or writes repository content.

use anyhow::{Context, Result, bail};
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Name of the lock file beside the repository's files when the root is not a git checkout.
pub const LOCK_FILE: &str = ".ocitool.lock";
/// Name of the journal directory beside the repository's files when the root is not a git checkout.
pub const JOURNAL_DIR: &str = ".ocitool-journal";
/// How long a run waits for another to finish unless `OCITOOL_LOCK_TIMEOUT` says otherwise.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(10);

/// Where ocitool keeps its own bookkeeping for a repository: inside `.git/` when there is one (git
/// never shows it there), otherwise at the root under names the changeset never lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDir {
    pub lock_file: PathBuf,
    pub journal_dir: PathBuf,
}

impl StateDir {
    pub fn of(root: &Path) -> StateDir {
        let git = root.join(".git");
        // A `.git` *file* (worktree, submodule) points elsewhere; the root is simpler and still ours.
        if git.is_dir() {
            StateDir {
                lock_file: git.join("ocitool.lock"),
                journal_dir: git.join("ocitool-journal"),
            }
        } else {
            StateDir {
                lock_file: root.join(LOCK_FILE),
                journal_dir: root.join(JOURNAL_DIR),
            }
        }
    }
}

/// The held lock of one repository. Applying a [`super::Changeset`] takes one, so nothing is
/// written without it. Dropping it removes the lock file and releases the lock.
#[derive(Debug)]
pub struct RepoLock {
    root: PathBuf,
    state: StateDir,
    file: File,
}

impl RepoLock {
    /// Lock the repository at `root`, waiting up to `wait` for another run to finish; the error
    /// names the holder's pid.
    pub fn acquire(root: &Path, wait: Duration) -> Result<RepoLock> {
        let root = super::canonical_root(root)?;
        let state = StateDir::of(&root);
        let deadline = Instant::now() + wait;
        loop {
            if let Some(file) = try_lock(&state.lock_file)? {
                let mut lock = RepoLock { root, state, file };
                lock.record_pid()?;
                return Ok(lock);
            }
            if Instant::now() >= deadline {
                bail!(
                    "another ocitool run ({}) is changing {}; waited {} s for it. Try again when it \
                     has finished, or set OCITOOL_LOCK_TIMEOUT=SECONDS to wait longer (lock file: {})",
                    holder(&state.lock_file),
                    root.display(),
                    wait.as_secs_f32(),
                    state.lock_file.display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn state(&self) -> &StateDir {
        &self.state
    }

    fn record_pid(&mut self) -> Result<()> {
        self.file.set_len(0)?;
        self.file.rewind()?;
        write!(self.file, "{}", std::process::id())?;
        self.file
            .sync_all()
            .with_context(|| format!("cannot write {}", self.state.lock_file.display()))
    }
}

impl Drop for RepoLock {
    fn drop(&mut self) {
        // Unlinked while still locked: a waiter that then locks this (now nameless) file sees that
        // the path no longer names it and tries again (see `try_lock`).
        let _ = fs::remove_file(&self.state.lock_file);
    }
}

/// Lock the file at `path`, creating it; None when someone else holds it. A lock on a file that has
/// since been unlinked (its holder finished) is let go, and the caller tries again.
fn try_lock(path: &Path) -> Result<Option<File>> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .with_context(|| format!("cannot open the lock file {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => return Ok(None),
        Err(TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("cannot lock {}", path.display()));
        }
    }
    let ours = file.metadata()?;
    match fs::metadata(path) {
        Ok(now) if now.ino() == ours.ino() && now.dev() == ours.dev() => Ok(Some(file)),
        _ => Ok(None),
    }
}

/// "pid N" from the lock file, for the refusal message.
fn holder(path: &Path) -> String {
    let mut text = String::new();
    let read = File::open(path).and_then(|mut f| f.read_to_string(&mut text));
    match read.ok().and_then(|_| text.trim().parse::<u32>().ok()) {
        Some(pid) => format!("pid {pid}"),
        None => "pid unknown".into(),
    }
}

/// The wait given by `OCITOOL_LOCK_TIMEOUT` (seconds, fractions allowed), or [`DEFAULT_WAIT`].
pub fn wait_from_env() -> Result<Duration> {
    match std::env::var("OCITOOL_LOCK_TIMEOUT") {
        Err(_) => Ok(DEFAULT_WAIT),
        Ok(text) => text
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
            .with_context(|| {
                format!("OCITOOL_LOCK_TIMEOUT={text:?} is not a number of seconds (e.g. 30)")
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_run_waits_then_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let first = RepoLock::acquire(dir.path(), Duration::ZERO).unwrap();
        assert_eq!(
            fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap(),
            std::process::id().to_string()
        );
        let started = Instant::now();
        let err = RepoLock::acquire(dir.path(), Duration::from_millis(200))
            .unwrap_err()
            .to_string();
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        drop(first);
        assert!(
            !dir.path().join(LOCK_FILE).exists(),
            "released lock leaves no file"
        );
        RepoLock::acquire(dir.path(), Duration::ZERO).unwrap();
    }

    #[test]
    fn a_git_checkout_keeps_the_lock_and_journal_in_dot_git() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join(".git")).unwrap();
        let state = StateDir::of(dir.path());
        assert_eq!(state.lock_file, dir.path().join(".git/ocitool.lock"));
        assert_eq!(state.journal_dir, dir.path().join(".git/ocitool-journal"));
    }
}
