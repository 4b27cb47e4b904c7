//! Applying a change set: in an order that never leaves a reference to a missing file, each file
//! replaced atomically, journaled first, checked against what the run planned from, undone on error.
//!
//! Order: new files, then edits that add or keep `resources:` entries, then edits that remove
//! entries, then deletes — "write the source before listing it; unlist before deleting", so at every
//! instant (and after a crash) each listed file exists and nothing loses its credentials before its
//! replacement is listed. Each file is replaced through a temp file named `.ocitool-tmp-…` in its
//! directory (fsync, rename, fsync the directory), so a killed write leaves either the old file or
//! the new one, plus at most a temp file that the next run's recovery removes. Modes are kept: a
//! replaced or restored file keeps the mode it had; new files get 0644. This module must never
//! write without the repository lock, nor over a file that changed since the run read it.

use super::journal::Journal;
use super::lock::RepoLock;
use super::{Change, Changeset, digest};
use anyhow::{Context, Result, bail};
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Prefix of every temp file ocitool creates; recovery removes files named so.
pub(super) const TEMP_PREFIX: &str = ".ocitool-tmp-";
/// Mode of a file ocitool creates (a kustomization or an encrypted Secret: readable like the rest).
const NEW_FILE_MODE: u32 = 0o644;

/// How to undo one applied change: the content and mode the file had before.
struct Undo<'a> {
    change: &'a Change,
    mode: Option<u32>,
}

impl Changeset {
    /// Apply every change under `lock` (see the module header for order and guarantees). On any
    /// failure, every file already changed is restored and the error says so.
    pub fn apply(&self, lock: &RepoLock) -> Result<Vec<Change>> {
        self.apply_with(lock, &mut |_| Ok(()))
    }

    /// [`Self::apply`], calling `before_each` before every file operation (tests inject failures).
    pub fn apply_with(
        &self,
        lock: &RepoLock,
        before_each: &mut dyn FnMut(&Change) -> Result<()>,
    ) -> Result<Vec<Change>> {
        if lock.root() != self.root() {
            bail!(
                "internal error: the lock held is for {}, not {}",
                lock.root().display(),
                self.root().display()
            );
        }
        let changes = in_apply_order(self.changes()?);
        if changes.is_empty() {
            return Ok(changes);
        }
        let journal = Journal::commit(lock.state(), &changes)?;
        let mut done: Vec<Undo> = Vec::new();
        for change in &changes {
            match before_each(change).and_then(|()| self.apply_one(change)) {
                Ok(mode) => done.push(Undo { change, mode }),
                Err(err) => return Err(self.undo(done, journal, change, err)),
            }
        }
        journal.finish()?;
        Ok(changes)
    }

    /// Replace one file, first checking it is still what the run planned from; the mode it had.
    fn apply_one(&self, change: &Change) -> Result<Option<u32>> {
        let path = self.resolve(&change.path)?;
        let now = read_if_present(&path, &change.path)?;
        if now.as_deref().map(digest) != change.before.as_deref().map(digest) {
            bail!(super::changed_on_disk(&change.path));
        }
        let mode = fs::metadata(&path).ok().map(|m| m.permissions().mode());
        match &change.after {
            Some(text) => write_atomically(&path, text, None)?,
            None => remove_durably(&path)?,
        }
        Ok(mode)
    }

    /// Restore `done` in reverse order and build the error to report. When every file is back,
    /// the journal goes too; otherwise it stays, and the next run completes the change set.
    fn undo(
        &self,
        done: Vec<Undo>,
        journal: Journal,
        failed: &Change,
        err: anyhow::Error,
    ) -> anyhow::Error {
        let mut not_restored = Vec::new();
        for undo in done.iter().rev() {
            if self.restore(undo).is_err() {
                not_restored.push(undo.change.path.clone());
            }
        }
        let mut message = format!("applying {} failed: {err:#}", failed.path);
        let journal_path = journal.path();
        if not_restored.is_empty() && journal.finish().is_ok() {
            message.push_str(&format!(
                "\nrolled back {} already-applied change(s); the repository is unchanged",
                done.len()
            ));
        } else {
            message.push_str(&format!(
                "\nrollback FAILED for: {}; the next ocitool run completes this change set from \
                 its journal ({}), or restore the files from git",
                not_restored.join(", "),
                journal_path.display()
            ));
        }
        anyhow::anyhow!("{}", ocitool_core::redact::redact(&message))
    }

    fn restore(&self, undo: &Undo) -> Result<()> {
        let path = self.resolve(&undo.change.path)?;
        match &undo.change.before {
            Some(text) => write_atomically(&path, text, undo.mode),
            None => remove_durably(&path),
        }
    }
}

/// Creates, then edits that add or keep entries, then edits that remove entries, then deletes;
/// by path within each group.
fn in_apply_order(mut changes: Vec<Change>) -> Vec<Change> {
    changes.sort_by_cached_key(|c| (rank(c), c.path.clone()));
    changes
}

fn rank(change: &Change) -> u8 {
    match (&change.before, &change.after) {
        (None, _) => 0,
        (Some(_), None) => 3,
        (Some(before), Some(after)) if removes_entries(&change.path, before, after) => 2,
        _ => 1,
    }
}

/// Whether an edit drops a `resources:` entry (false for files that are not kustomizations).
fn removes_entries(path: &str, before: &str, after: &str) -> bool {
    use ocitool_core::kustomize::resources;
    match (resources(path, before), resources(path, after)) {
        (Ok(old), Ok(new)) => old.iter().any(|entry| !new.contains(entry)),
        _ => false,
    }
}

fn read_if_present(path: &Path, rel: &str) -> Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {rel}")),
    }
}

/// Write via a temp file in the same directory, fsync it, rename over the target, fsync the dir.
/// The file keeps its current mode; a new one gets `mode`, or 0644.
pub(super) fn write_atomically(path: &Path, text: &str, mode: Option<u32>) -> Result<()> {
    let dir = path.parent().context("file has no parent directory")?;
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut temp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    temp.write_all(text.as_bytes())?;
    let mode = match fs::metadata(path) {
        Ok(meta) => meta.permissions().mode(),
        Err(_) => mode.unwrap_or(NEW_FILE_MODE),
    };
    // tempfile creates 0600; set the mode before the content becomes visible under the real name.
    fs::set_permissions(temp.path(), fs::Permissions::from_mode(mode))?;
    temp.as_file().sync_all()?;
    temp.persist(path)
        .with_context(|| format!("cannot replace {}", path.display()))?;
    sync_dir(dir)
}

/// Delete a file and fsync its directory, so a later write cannot reach the disk before it.
pub(super) fn remove_durably(path: &Path) -> Result<()> {
    fs::remove_file(path).with_context(|| format!("cannot delete {}", path.display()))?;
    sync_dir(path.parent().context("file has no parent directory")?)
}

pub(super) fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ocitool_core::repo_path::RepoPath;

    fn p(path: &str) -> RepoPath {
        RepoPath::new(path).unwrap()
    }
    use std::time::Duration;

    fn locked(files: &[(&str, &str)]) -> (tempfile::TempDir, RepoLock, Changeset) {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let full = dir.path().join(path);
            fs::create_dir_all(full.parent().unwrap()).unwrap();
            fs::write(full, text).unwrap();
        }
        let lock = RepoLock::acquire(dir.path(), Duration::ZERO).unwrap();
        let cs = Changeset::new(dir.path()).unwrap();
        (dir, lock, cs)
    }

    const SVC_KUSTOMIZATION: &str = "resources:\n  - deploy.yaml\n  - oci-creds.yaml\n";

    #[test]
    fn sources_are_written_before_they_are_listed_and_unlisted_before_deleted() {
        let (_dir, lock, mut cs) = locked(&[
            ("flux/kustomization.yaml", "resources:\n  - a.yaml\n"),
            ("svc/kustomization.yaml", SVC_KUSTOMIZATION),
            ("svc/oci-creds.yaml", "sops-encrypted: yes\n"),
            ("z/plain.yaml", "a: 1\n"),
        ]);
        cs.write(
            &p("flux/kustomization.yaml"),
            "resources:\n  - a.yaml\n  - oci-creds.yaml\n",
        )
        .unwrap();
        cs.write(&p("flux/oci-creds.yaml"), "new: 1\n").unwrap();
        cs.write(
            &p("svc/kustomization.yaml"),
            "resources:\n  - deploy.yaml\n",
        )
        .unwrap();
        cs.write(&p("z/plain.yaml"), "a: 2\n").unwrap();
        cs.delete(&p("svc/oci-creds.yaml")).unwrap();
        let mut order = Vec::new();
        cs.apply_with(&lock, &mut |c| {
            order.push(c.path.clone());
            Ok(())
        })
        .unwrap();
        assert_eq!(
            order,
            [
                "flux/oci-creds.yaml",
                "flux/kustomization.yaml",
                "z/plain.yaml",
                "svc/kustomization.yaml",
                "svc/oci-creds.yaml"
            ]
        );
    }

    #[test]
    fn a_file_changed_since_it_was_read_refuses_the_whole_change_set() {
        let (dir, lock, mut cs) = locked(&[("a.yaml", "a: 1\n"), ("b.yaml", "b: 1\n")]);
        let a = cs.read(&p("a.yaml")).unwrap().unwrap();
        cs.write(&p("a.yaml"), &a.replace('1', "2")).unwrap();
        cs.write(&p("b.yaml"), "b: 2\n").unwrap();
        fs::write(dir.path().join("b.yaml"), "b: hand edit\n").unwrap();
        let err = cs.apply(&lock).unwrap_err().to_string();
        assert!(
            err.contains("b.yaml") && err.contains("changed on disk"),
            "{err}"
        );
        assert_eq!(
            fs::read_to_string(dir.path().join("a.yaml")).unwrap(),
            "a: 1\n"
        );
        assert_eq!(
            fs::read_to_string(dir.path().join("b.yaml")).unwrap(),
            "b: hand edit\n"
        );
        assert!(!lock.state().journal_dir.exists());
    }

    #[test]
    fn an_edit_during_apply_is_kept_and_the_rest_rolled_back() {
        let (dir, lock, mut cs) = locked(&[("a.yaml", "a: 1\n"), ("b.yaml", "b: 1\n")]);
        cs.write(&p("a.yaml"), "a: 2\n").unwrap();
        cs.write(&p("b.yaml"), "b: 2\n").unwrap();
        let b = dir.path().join("b.yaml");
        let err = cs
            .apply_with(&lock, &mut |c| {
                if c.path == "b.yaml" {
                    fs::write(&b, "b: hand edit\n")?;
                }
                Ok(())
            })
            .unwrap_err()
            .to_string();
        assert!(err.contains("rolled back 1"), "{err}");
        assert_eq!(
            fs::read_to_string(dir.path().join("a.yaml")).unwrap(),
            "a: 1\n"
        );
        assert_eq!(fs::read_to_string(&b).unwrap(), "b: hand edit\n");
    }

    #[test]
    fn modes_survive_writes_and_rollbacks() {
        let files = [
            ("a.yaml", "a: 1\n"),
            ("b.yaml", "b: 1\n"),
            ("k.yaml", "k: 1\n"),
        ];
        let (dir, lock, mut cs) = locked(&files);
        let mode = |rel: &str| {
            fs::metadata(dir.path().join(rel))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        for (rel, _) in files {
            fs::set_permissions(dir.path().join(rel), fs::Permissions::from_mode(0o600)).unwrap();
        }
        cs.delete(&p("a.yaml")).unwrap();
        cs.delete(&p("b.yaml")).unwrap();
        cs.write(&p("k.yaml"), "k: 2\n").unwrap();
        // Deletes go last: a.yaml is deleted, then the failure before b.yaml restores it.
        let err = cs.apply_with(&lock, &mut |c| {
            if c.path == "b.yaml" {
                bail!("injected")
            }
            Ok(())
        });
        assert!(err.unwrap_err().to_string().contains("rolled back 2"));
        assert_eq!((mode("a.yaml"), mode("k.yaml")), (0o600, 0o600));

        cs.write(&p("new.yaml"), "n: 1\n").unwrap();
        cs.apply(&lock).unwrap();
        assert_eq!(mode("k.yaml"), 0o600, "a replaced file keeps its mode");
        assert_eq!(mode("new.yaml"), NEW_FILE_MODE);
    }
}
