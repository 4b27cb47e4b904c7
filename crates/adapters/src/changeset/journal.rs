//! Crash consistency for a whole change set: a redo journal, and the recovery that every run
//! performs first.
//!
//! Before the first file of a change set is replaced, the journal (`.git/ocitool-journal/journal.json`,
//! or `<root>/.ocitool-journal/` outside git) is written to a temp file, fsynced and renamed into
//! place: from then on the change set is decided. It holds every file's new content (ciphertext or
//! non-secret YAML: a plaintext Secret is refused, so the journal never holds a credential in clear)
//! and the sha256 of the content it replaces. When a run dies, the next one rolls the change set
//! *forward*: every file still at its old content gets its new one, so the tree ends exactly as the
//! uninterrupted run would have left it. Forward rather than back because the decided change set
//! was fully planned and checked (the script succeeded); because it needs no sops (the ciphertext is
//! already there) and no old content (which, for a deleted unencrypted Secret, would be plaintext);
//! and because it is idempotent, so a recovery that itself dies is simply redone. A file whose
//! content is neither the old nor the new one was changed by someone else: recovery then writes
//! nothing and says which file. Recovery also removes, and reports, temp files that a killed write
//! left behind. This module never decides what to change; it replays what apply decided.

use super::apply::{TEMP_PREFIX, remove_durably, sync_dir, write_atomically};
use super::lock::{RepoLock, StateDir};
use super::{Change, digest};
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

const JOURNAL_FILE: &str = "journal.json";
const FORMAT: u32 = 1;

/// One file of a decided change set.
#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    path: String,
    /// sha256 of the content replaced; None when the file did not exist.
    before_sha256: Option<String>,
    /// The new content; None when the file is deleted.
    after: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Record {
    format: u32,
    entries: Vec<Entry>,
}

/// A committed journal; [`Journal::finish`] removes it once the change set is fully applied or
/// fully undone.
#[derive(Debug)]
pub(super) struct Journal {
    dir: PathBuf,
}

impl Journal {
    /// Write and fsync the journal of `changes` (in apply order). Refuses a plaintext Secret.
    pub(super) fn commit(state: &StateDir, changes: &[Change]) -> Result<Journal> {
        let entries = changes
            .iter()
            .map(|c| {
                if let Some(text) = &c.after
                    && ocitool_core::sops_format::is_plaintext_secret(text)
                {
                    bail!(
                        "{}: refusing to write a Secret that is not sops-encrypted; nothing was written",
                        c.path
                    );
                }
                Ok(Entry {
                    path: c.path.clone(),
                    before_sha256: c.before.as_deref().map(digest),
                    after: c.after.clone(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let record = Record {
            format: FORMAT,
            entries,
        };
        let dir = state.journal_dir.clone();
        let text = serde_json::to_string(&record).context("cannot serialize the journal")?;
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        sync_dir(dir.parent().expect("the journal directory has a parent"))?;
        write_atomically(&dir.join(JOURNAL_FILE), &text, None)?;
        Ok(Journal { dir })
    }

    /// The change set is complete (or undone): forget it.
    pub(super) fn finish(self) -> Result<()> {
        remove_journal(&self.dir)
    }

    pub(super) fn path(&self) -> PathBuf {
        self.dir.join(JOURNAL_FILE)
    }
}

fn remove_journal(dir: &Path) -> Result<()> {
    let file = dir.join(JOURNAL_FILE);
    if file.exists() {
        remove_durably(&file)?;
    }
    // Only when empty: anything else in there is not ours to delete.
    if fs::remove_dir(dir).is_ok() {
        sync_dir(dir.parent().expect("the journal directory has a parent"))?;
    }
    Ok(())
}

/// What the recovery at the start of a run did; empty when the last run ended cleanly.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Files of an interrupted change set given their new content (or deleted) now.
    pub completed: Vec<String>,
    /// Files of that change set the interrupted run had already changed.
    pub already_done: usize,
    /// Temp files left by killed writes, removed (repo-relative, or absolute when outside the root).
    pub removed_temp_files: Vec<String>,
}

impl Recovery {
    pub fn is_empty(&self) -> bool {
        *self == Recovery::default()
    }

    /// What to tell the user, one line per fact; nothing when nothing was recovered.
    pub fn report(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if !self.completed.is_empty() || self.already_done > 0 {
            lines.push(format!(
                "an earlier ocitool run was interrupted while applying its changes; completed them \
                 first ({} file(s) written now, {} already written): {}",
                self.completed.len(),
                self.already_done,
                self.completed.join(", ")
            ));
        }
        if !self.removed_temp_files.is_empty() {
            lines.push(format!(
                "removed {} temporary file(s) left by an interrupted write: {}",
                self.removed_temp_files.len(),
                self.removed_temp_files.join(", ")
            ));
        }
        lines
    }
}

/// Finish an interrupted change set and remove leftover temp files. Run first, under the lock.
pub fn recover(lock: &RepoLock) -> Result<Recovery> {
    let mut recovery = Recovery::default();
    let dir = &lock.state().journal_dir;
    let file = dir.join(JOURNAL_FILE);
    if file.exists() {
        roll_forward(lock.root(), &file, &mut recovery)?;
    }
    recovery.removed_temp_files = remove_temp_files(lock.root(), dir)?;
    if dir.exists() {
        remove_journal(dir)?;
    }
    Ok(recovery)
}

fn roll_forward(root: &Path, file: &Path, recovery: &mut Recovery) -> Result<()> {
    // The journal's paths go through the changeset's own checks: outside git it sits in the work
    // tree, where anyone who can commit could plant one that points elsewhere.
    let repo = super::Changeset::new(root)?;
    let text =
        fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let record: Record = serde_json::from_str(&text)
        .ok()
        .filter(|r: &Record| r.format == FORMAT)
        .with_context(|| {
            format!(
                "{} is not a journal this ocitool can read; compare the files it names with git \
                 and delete it when the repository is as you want it",
                file.display()
            )
        })?;
    // Check every file before writing any, so a conflict leaves the tree as it was found.
    let mut pending = Vec::new();
    for entry in &record.entries {
        let path = repo.resolve(&entry.path)?;
        let now = read_if_present(&path)?;
        let now = now.as_deref().map(digest);
        if now == entry.after.as_deref().map(digest) {
            recovery.already_done += 1;
        } else if now == entry.before_sha256 {
            pending.push((path, entry));
        } else {
            bail!(
                "an earlier ocitool run was interrupted, and {} has since changed to something that \
                 is neither its content before nor after that run; nothing was written. Settle the \
                 file by hand (git diff/checkout), then delete {}",
                entry.path,
                file.display()
            );
        }
    }
    for (path, entry) in pending {
        match &entry.after {
            Some(text) => write_atomically(&path, text, None)?,
            None => remove_durably(&path)?,
        }
        recovery.completed.push(entry.path.clone());
    }
    Ok(())
}

fn read_if_present(path: &Path) -> Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Whether a file name is one of ocitool's temp files: this version's prefix, or the
/// `.ocitool-XXXXXX` names (tempfile's six random characters) that earlier versions used.
pub(super) fn is_temp_name(name: &str) -> bool {
    if name.starts_with(TEMP_PREFIX) {
        return true;
    }
    name.strip_prefix(".ocitool-")
        .is_some_and(|rest| rest.len() == 6 && rest.chars().all(|c| c.is_ascii_alphanumeric()))
}

/// Remove every ocitool temp file under `root` (outside `.git`) and in the journal directory.
fn remove_temp_files(root: &Path, journal_dir: &Path) -> Result<Vec<String>> {
    let mut found = BTreeSet::new();
    for base in [root, journal_dir] {
        if !base.is_dir() {
            continue;
        }
        let walk = walkdir::WalkDir::new(base).follow_links(false);
        for entry in walk
            .into_iter()
            .filter_entry(|e| e.depth() == 0 || e.file_name() != ".git")
        {
            let entry = entry.with_context(|| format!("cannot list {}", base.display()))?;
            let is_temp = entry.file_name().to_str().is_some_and(is_temp_name);
            if entry.file_type().is_file() && is_temp {
                found.insert(entry.into_path());
            }
        }
    }
    found
        .into_iter()
        .map(|path| {
            remove_durably(&path)?;
            Ok(path
                .strip_prefix(root)
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn change(path: &str, before: Option<&str>, after: Option<&str>) -> Change {
        Change {
            path: path.into(),
            before: before.map(String::from),
            after: after.map(String::from),
        }
    }

    fn locked() -> (tempfile::TempDir, RepoLock) {
        let dir = tempfile::tempdir().unwrap();
        let lock = RepoLock::acquire(dir.path(), Duration::ZERO).unwrap();
        (dir, lock)
    }

    #[test]
    fn an_interrupted_change_set_is_rolled_forward_and_temp_files_removed() {
        let (dir, lock) = locked();
        let root = dir.path();
        fs::write(root.join("k.yaml"), "resources: [a.yaml]\n").unwrap();
        fs::write(root.join("gone.yaml"), "old\n").unwrap();
        let changes = [
            change("new/s.yaml", None, Some("kind: ConfigMap\n")),
            change(
                "k.yaml",
                Some("resources: [a.yaml]\n"),
                Some("resources: []\n"),
            ),
            change("gone.yaml", Some("old\n"), None),
        ];
        let journal = Journal::commit(lock.state(), &changes).unwrap();
        // The run "dies" after its first write, with a temp file half-written.
        fs::create_dir(root.join("new")).unwrap();
        fs::write(root.join("new/s.yaml"), "kind: ConfigMap\n").unwrap();
        fs::write(root.join(".ocitool-tmp-abc123"), "half").unwrap();
        fs::write(root.join("new/.ocitool-Xy12Zq"), "legacy").unwrap();
        std::mem::forget(journal);

        let recovery = recover(&lock).unwrap();
        assert_eq!(recovery.completed, vec!["k.yaml", "gone.yaml"]);
        assert_eq!(recovery.already_done, 1);
        assert_eq!(
            recovery.removed_temp_files,
            vec![".ocitool-tmp-abc123", "new/.ocitool-Xy12Zq"]
        );
        assert_eq!(
            fs::read_to_string(root.join("k.yaml")).unwrap(),
            "resources: []\n"
        );
        assert!(!root.join("gone.yaml").exists());
        assert!(!lock.state().journal_dir.exists());
        assert!(
            recover(&lock).unwrap().is_empty(),
            "a second recovery has nothing to do"
        );
    }

    #[test]
    fn a_file_changed_since_the_interruption_stops_recovery_before_any_write() {
        let (dir, lock) = locked();
        let root = dir.path();
        fs::write(root.join("a.yaml"), "a: 1\n").unwrap();
        fs::write(root.join("b.yaml"), "b: 1\n").unwrap();
        let changes = [
            change("a.yaml", Some("a: 1\n"), Some("a: 2\n")),
            change("b.yaml", Some("b: 1\n"), Some("b: 2\n")),
        ];
        std::mem::forget(Journal::commit(lock.state(), &changes).unwrap());
        fs::write(root.join("b.yaml"), "b: hand edit\n").unwrap();
        let err = recover(&lock).unwrap_err().to_string();
        assert!(err.contains("b.yaml") && err.contains("neither"), "{err}");
        assert_eq!(fs::read_to_string(root.join("a.yaml")).unwrap(), "a: 1\n");
        assert!(lock.state().journal_dir.join(JOURNAL_FILE).exists());
    }

    #[test]
    fn a_plaintext_secret_is_never_journaled() {
        let (_dir, lock) = locked();
        let secret = "apiVersion: v1\nkind: Secret\nstringData:\n  password: pw-journal-1\n";
        let err = Journal::commit(lock.state(), &[change("s.yaml", None, Some(secret))])
            .unwrap_err()
            .to_string();
        assert!(err.contains("not sops-encrypted"), "{err}");
        assert!(!lock.state().journal_dir.join(JOURNAL_FILE).exists());
    }

    #[test]
    fn temp_names_are_recognised_narrowly() {
        assert!(is_temp_name(".ocitool-tmp-anything"));
        assert!(is_temp_name(".ocitool-a1B2c3"));
        assert!(!is_temp_name(".ocitool.lock"));
        assert!(!is_temp_name(".ocitool-journal"));
        assert!(!is_temp_name("ocitool-a1B2c3"));
    }
}
