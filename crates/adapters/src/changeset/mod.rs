//! Staged changes to a repository: scripts never write, they stage; the host applies at the end.
//!
//! A [`Changeset`] is a log of writes and deletes over a repository root. Reads go through it, so a
//! script sees its own staged content, and each file's content at its first read is remembered
//! (as a sha256) so that nothing is written over a file that changed after the run planned from
//! it. [`unified_diff`] renders one change, values masked, for `--dry-run`. Writing belongs to the submodules:
//! [`lock`] (one run at a time per repository), [`apply`] (order, atomic replacement, undo) and
//! [`journal`] (a crash never leaves a half-applied change set). Paths are [`RepoPath`]s (normalised, never above the
//! root); this module adds what only the filesystem can tell: no symlink leading out of the root,
//! no symlinked file edited in place. It must never write or delete inside `.git/` (a script
//! writing `.git/config` or a hook would run commands at the next git invocation), and never show
//! secret values in a diff.

mod apply;
pub mod journal;
pub mod lock;

pub use journal::{Recovery, recover};
pub use lock::RepoLock;

use anyhow::{Context, Result, bail};
use ocitool_core::repo_path::RepoPath;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// One staged operation.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    Write(String),
    Delete,
}

/// A file's net change: content before (None = absent) and after (None = deleted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub path: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

impl Change {
    pub fn kind(&self) -> &'static str {
        match (&self.before, &self.after) {
            (None, Some(_)) => "create",
            (Some(_), None) => "delete",
            _ => "modify",
        }
    }
}

/// A position in the log to roll staged work back to (one cluster's all-or-nothing step).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark(usize);

#[derive(Debug)]
pub struct Changeset {
    root: PathBuf,
    log: Vec<(RepoPath, Op)>,
    /// sha256 of each file's content when this run first read it (None: absent): what it planned
    /// from. Behind a lock because reads take `&self` (and may come from several threads).
    planned_from: Mutex<BTreeMap<RepoPath, Option<String>>>,
    /// Directories a read has resolved inside the root. A scan reads thousands of files in a
    /// few dozen directories, and resolving costs a readlink per path component; writes never
    /// use this (they resolve afresh just before touching the disk).
    read_dirs: Mutex<HashSet<PathBuf>>,
}

/// A symbolic link found in the tree (the walk never follows one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Symlink {
    pub path: RepoPath,
    /// Whether it leads to a directory (which would hide a whole subtree from a scan).
    pub to_dir: bool,
}

/// The canonical path of an existing repository directory, or an error telling how to name one.
pub(crate) fn canonical_root(root: &Path) -> Result<PathBuf> {
    let canonical = root.canonicalize().with_context(|| {
        format!(
            "repository {} does not exist; pass --repo DIR",
            root.display()
        )
    })?;
    if !canonical.is_dir() {
        bail!(
            "repository {} is not a directory; pass --repo DIR",
            canonical.display()
        );
    }
    Ok(canonical)
}

/// The hex sha256 of a file's content, as the journal and the lost-update check compare them.
pub(crate) fn digest(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The refusal when a file is not what this run read and planned from.
fn changed_on_disk(rel: &str) -> String {
    format!(
        "{rel} changed on disk after this run read it (a hand edit, or another program); nothing \
         was written over it. Run again to plan from its new content"
    )
}

/// Files and directories of ocitool's own bookkeeping that are never part of the repository view.
fn is_bookkeeping(name: &std::ffi::OsStr) -> bool {
    name == ".git"
        || name == lock::LOCK_FILE
        || name == lock::JOURNAL_DIR
        || name.to_str().is_some_and(journal::is_temp_name)
}

impl Changeset {
    /// A changeset over the repository at `root`, which must be an existing directory.
    pub fn new(root: &Path) -> Result<Self> {
        Ok(Changeset {
            root: canonical_root(root)?,
            log: Vec::new(),
            planned_from: Mutex::default(),
            read_dirs: Mutex::default(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The [`RepoPath`] of a file spelled `rel` (`./a//b` → `a/b`), refusing anything that leaves
    /// the root and the root itself.
    pub fn normalize(&self, rel: &str) -> Result<RepoPath> {
        let path = RepoPath::new(rel)?;
        if path.is_root() {
            bail!("{rel:?} is not a file path inside the repository");
        }
        Ok(path)
    }

    /// The absolute path for `rel`, refusing symlinks anywhere along it that lead out of the root.
    pub fn resolve(&self, rel: &str) -> Result<PathBuf> {
        let rel = self.normalize(rel)?;
        let full = self.root.join(rel.as_str());
        let mut existing = full.as_path();
        while !existing.exists() {
            existing = existing.parent().unwrap_or(&self.root);
        }
        let real = existing
            .canonicalize()
            .with_context(|| format!("cannot resolve {rel}"))?;
        if !real.starts_with(&self.root) {
            bail!("{rel}: resolves outside the repository through a symlink; refusing to touch it");
        }
        if full.is_symlink() {
            bail!("{rel}: is a symlink; ocitool edits regular files only");
        }
        Ok(full)
    }

    /// [`Self::resolve`] for a read, skipping the canonicalisation of a directory an earlier read
    /// resolved. Sound because a successful `resolve` of a file that is not a symlink proves its
    /// existing directory's real path is inside the root; the file itself is still checked.
    fn resolve_for_read(&self, rel: &RepoPath) -> Result<PathBuf> {
        let full = self.root.join(rel.as_str());
        let dir = full.parent().map(Path::to_path_buf);
        let known = |dir: &PathBuf| self.read_dirs.lock().expect("never poisoned").contains(dir);
        if dir.as_ref().is_some_and(known) && !full.is_symlink() {
            return Ok(full);
        }
        let resolved = self.resolve(rel.as_str())?;
        if let Some(dir) = dir.filter(|d| d.is_dir()) {
            self.read_dirs.lock().expect("never poisoned").insert(dir);
        }
        Ok(resolved)
    }

    /// Current content of `rel`: staged if staged, otherwise on disk; None when absent or deleted.
    pub fn read(&self, rel: &RepoPath) -> Result<Option<String>> {
        match self.last_op(rel) {
            Some(Op::Write(text)) => Ok(Some(text.clone())),
            Some(Op::Delete) => Ok(None),
            None => self.read_disk(rel),
        }
    }

    /// The latest staged operation on `rel`, if any.
    fn last_op(&self, rel: &RepoPath) -> Option<&Op> {
        self.log
            .iter()
            .rev()
            .find(|(p, _)| p == rel)
            .map(|(_, op)| op)
    }

    fn read_disk(&self, rel: &RepoPath) -> Result<Option<String>> {
        let path = self.resolve_for_read(rel)?;
        let content = match fs::read_to_string(&path) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e).with_context(|| format!("cannot read {rel}")),
        };
        self.note_planned_from(rel, content.as_deref());
        Ok(content)
    }

    /// Remember `content` as what `rel` held when first read; later reads never replace it.
    fn note_planned_from(&self, rel: &RepoPath, content: Option<&str>) {
        let mut seen = self.planned_from.lock().expect("never poisoned");
        seen.entry(rel.clone())
            .or_insert_with(|| content.map(digest));
    }

    /// Read `rel` from disk unless this run already has, so that a staged change always knows
    /// what it was planned from.
    fn ensure_planned_from(&self, rel: &RepoPath) -> Result<()> {
        let seen = self
            .planned_from
            .lock()
            .expect("never poisoned")
            .contains_key(rel);
        if !seen {
            self.read_disk(rel)?;
        }
        Ok(())
    }

    /// Refuse when `rel`'s content `now` is not what the run first read.
    fn check_planned_from(&self, rel: &RepoPath, now: Option<&str>) -> Result<()> {
        let seen = self.planned_from.lock().expect("never poisoned");
        match seen.get(rel) {
            Some(first) if *first != now.map(digest) => bail!(changed_on_disk(rel.as_str())),
            _ => Ok(()),
        }
    }

    /// Whether `rel` exists as the changeset sees it; never reads the file's content.
    pub fn exists(&self, rel: &RepoPath) -> Result<bool> {
        match self.last_op(rel) {
            Some(op) => Ok(matches!(op, Op::Write(_))),
            None => Ok(self.resolve(rel.as_str())?.is_file()),
        }
    }

    /// Stage writing `content` to `rel`.
    pub fn write(&mut self, rel: &RepoPath, content: &str) -> Result<()> {
        refuse_git_dir(rel, "write")?;
        self.resolve(rel.as_str())?;
        self.ensure_planned_from(rel)?;
        self.log.push((rel.clone(), Op::Write(content.to_string())));
        Ok(())
    }

    /// Stage deleting `rel`; an error when it does not exist (a script bug worth hearing about).
    pub fn delete(&mut self, rel: &RepoPath) -> Result<()> {
        refuse_git_dir(rel, "delete")?;
        if !self.exists(rel)? {
            bail!("{rel}: cannot delete a file that does not exist");
        }
        self.ensure_planned_from(rel)?;
        self.log.push((rel.clone(), Op::Delete));
        Ok(())
    }

    /// Every file under directory `dir` (the root included) as the changeset sees the tree: on
    /// disk, plus staged creations, minus staged deletions. Sorted. Symlinks are not files here
    /// (see [`Self::symlinks_under`]).
    pub fn files_under(&self, dir: &RepoPath) -> Result<Vec<RepoPath>> {
        let mut files = std::collections::BTreeSet::new();
        self.walk(dir, &mut |entry, rel| {
            if entry.file_type().is_file() {
                files.insert(rel);
            }
        })?;
        for (path, _) in &self.log {
            if path.starts_with(dir) {
                files.insert(path.clone());
            }
        }
        // The walk saw what is on disk; only staged operations can change whether a file exists.
        Ok(files
            .into_iter()
            .filter(|path| !matches!(self.last_op(path), Some(Op::Delete)))
            .collect())
    }

    /// Every symbolic link under directory `dir` on disk, sorted; the walk lists them without
    /// following them, so a caller that must see every file can refuse what it cannot see into.
    pub fn symlinks_under(&self, dir: &RepoPath) -> Result<Vec<Symlink>> {
        let mut links = Vec::new();
        self.walk(dir, &mut |entry, path| {
            if entry.path_is_symlink() {
                let to_dir = entry.path().is_dir();
                links.push(Symlink { path, to_dir });
            }
        })?;
        Ok(links)
    }

    /// Visit every entry under `dir` on disk (not following symlinks, skipping `.git`), in name order.
    fn walk(
        &self,
        dir: &RepoPath,
        visit: &mut dyn FnMut(&walkdir::DirEntry, RepoPath),
    ) -> Result<()> {
        let base = self.root.join(dir.as_str());
        if !base.is_dir() {
            return Ok(());
        }
        let walker = walkdir::WalkDir::new(&base)
            .min_depth(1)
            .follow_links(false)
            .sort_by_file_name();
        for entry in walker
            .into_iter()
            .filter_entry(|e| !is_bookkeeping(e.file_name()))
        {
            let entry = entry.with_context(|| format!("cannot list {}", base.display()))?;
            let rel = entry
                .path()
                .strip_prefix(&self.root)
                .expect("walk stays under root");
            let rel = rel
                .to_str()
                .with_context(|| format!("{}: file name is not UTF-8", rel.display()))?;
            visit(&entry, RepoPath::new(rel)?);
        }
        Ok(())
    }

    pub fn mark(&self) -> Mark {
        Mark(self.log.len())
    }

    /// Forget everything staged since `mark`.
    pub fn rollback(&mut self, mark: Mark) {
        self.log.truncate(mark.0);
    }

    /// The net change per file, in path order, leaving out files that end as they began.
    pub fn changes(&self) -> Result<Vec<Change>> {
        let mut last: BTreeMap<&RepoPath, &Op> = BTreeMap::new();
        for (path, op) in &self.log {
            last.insert(path, op);
        }
        let mut changes = Vec::new();
        for (path, op) in last {
            let before = self.read_disk(path)?;
            self.check_planned_from(path, before.as_deref())?;
            let after = match op {
                Op::Write(text) => Some(text.clone()),
                Op::Delete => None,
            };
            if before != after {
                changes.push(Change {
                    path: path.as_str().to_string(),
                    before,
                    after,
                });
            }
        }
        Ok(changes)
    }
}

/// One change as a unified diff with Secret values masked (what `--dry-run` shows for files that
/// are not encrypted Secrets, and for every file with `--diff raw`).
pub fn unified_diff(change: &Change) -> String {
    let show = |text: &Option<String>| {
        text.as_deref()
            .map(ocitool_core::redact::mask_secret_yaml)
            .unwrap_or_default()
    };
    let (before, after) = (show(&change.before), show(&change.after));
    let side = |present: bool, prefix: &str| {
        if present {
            format!("{prefix}/{}", change.path)
        } else {
            "/dev/null".into()
        }
    };
    let diff = similar::TextDiff::from_lines(&before, &after);
    format!(
        "{}{}",
        diff_header(change),
        diff.unified_diff().context_radius(3).header(
            &side(change.before.is_some(), "a"),
            &side(change.after.is_some(), "b")
        )
    )
}

/// The first line of one change in a diff: `diff --ocitool a/PATH b/PATH (kind)`.
pub fn diff_header(change: &Change) -> String {
    format!(
        "diff --ocitool a/{0} b/{0} ({1})\n",
        change.path,
        change.kind()
    )
}

/// Refuse `op` on anything inside a `.git` directory at any depth (the repository's own, a
/// submodule's, a nested clone's): git runs what its config (`core.fsmonitor`, `core.hooksPath`)
/// and hooks say at the next `git status`. Compared without case, as git itself does on
/// case-insensitive filesystems (git's `is_ntfs_dotgit`/`is_hfs_dotgit` checks).
fn refuse_git_dir(rel: &RepoPath, op: &str) -> Result<()> {
    if rel.segments().any(|s| s.eq_ignore_ascii_case(".git")) {
        bail!(
            "{rel}: refusing to {op} inside a `.git` directory; git runs commands its config and hooks \
             name, so ocitool never changes them"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(path: &str) -> RepoPath {
        RepoPath::new(path).unwrap()
    }

    /// A directory resolved by one read spares the next reads its canonicalisation, never the
    /// check of the file itself: a symlink to outside the repository is still refused.
    #[test]
    fn reads_in_a_known_directory_still_refuse_a_symlinked_file() {
        let (dir, cs) = repo();
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("secret"), "outside\n").unwrap();
        assert_eq!(cs.read(&p("a.yaml")).unwrap().as_deref(), Some("a: 1\n"));
        std::os::unix::fs::symlink(outside.path().join("secret"), dir.path().join("b.yaml"))
            .unwrap();
        let err = cs.read(&p("b.yaml")).unwrap_err().to_string();
        assert!(err.contains("b.yaml"), "{err}");
        assert_eq!(cs.read(&p("missing.yaml")).unwrap(), None);
    }

    fn repo() -> (tempfile::TempDir, Changeset) {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a.yaml"), "a: 1\n").unwrap();
        fs::create_dir(dir.path().join("svc")).unwrap();
        fs::write(
            dir.path().join("svc/oci-creds.yaml"),
            "kind: Secret\nstringData:\n  password: pw-in-diff-1\n",
        )
        .unwrap();
        let cs = Changeset::new(dir.path()).unwrap();
        (dir, cs)
    }

    fn lock(dir: &tempfile::TempDir) -> RepoLock {
        RepoLock::acquire(dir.path(), std::time::Duration::ZERO).unwrap()
    }

    #[test]
    fn reads_see_staged_content_and_disk_is_untouched_until_apply() {
        let (dir, mut cs) = repo();
        cs.write(&p("./a.yaml"), "a: 2\n").unwrap();
        cs.delete(&p("svc/oci-creds.yaml")).unwrap();
        cs.write(&p("new/b.yaml"), "b: 1\n").unwrap();
        assert_eq!(cs.read(&p("a.yaml")).unwrap().as_deref(), Some("a: 2\n"));
        assert_eq!(cs.read(&p("svc/oci-creds.yaml")).unwrap(), None);
        assert_eq!(
            cs.files_under(&RepoPath::root()).unwrap(),
            vec!["a.yaml", "new/b.yaml"]
        );
        assert_eq!(
            fs::read_to_string(dir.path().join("a.yaml")).unwrap(),
            "a: 1\n"
        );
        cs.apply(&lock(&dir)).unwrap();
        assert_eq!(
            fs::read_to_string(dir.path().join("a.yaml")).unwrap(),
            "a: 2\n"
        );
        assert!(!dir.path().join("svc/oci-creds.yaml").exists());
        assert_eq!(
            fs::read_to_string(dir.path().join("new/b.yaml")).unwrap(),
            "b: 1\n"
        );
    }

    #[test]
    fn failure_mid_apply_restores_everything() {
        let (dir, mut cs) = repo();
        cs.write(&p("a.yaml"), "a: 2\n").unwrap();
        cs.write(&p("c.yaml"), "c: 1\n").unwrap();
        cs.delete(&p("svc/oci-creds.yaml")).unwrap();
        let mut calls = 0;
        let err = cs
            .apply_with(&lock(&dir), &mut |_| {
                calls += 1;
                if calls == 3 {
                    bail!("disk full")
                } else {
                    Ok(())
                }
            })
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("disk full") && err.contains("rolled back 2"),
            "{err}"
        );
        assert_eq!(
            fs::read_to_string(dir.path().join("a.yaml")).unwrap(),
            "a: 1\n"
        );
        assert!(!dir.path().join("c.yaml").exists());
        assert!(dir.path().join("svc/oci-creds.yaml").exists());
    }

    #[test]
    fn writes_equal_to_disk_are_not_changes_and_rollback_forgets() {
        let (_dir, mut cs) = repo();
        cs.write(&p("a.yaml"), "a: 1\n").unwrap();
        assert!(cs.changes().unwrap().is_empty());
        let mark = cs.mark();
        cs.write(&p("a.yaml"), "a: 3\n").unwrap();
        cs.rollback(mark);
        assert!(cs.changes().unwrap().is_empty());
    }

    #[test]
    fn paths_outside_the_root_are_refused() {
        let (dir, mut cs) = repo();
        for bad in ["../x.yaml", "/etc/passwd", "a/../../x", ".", "./"] {
            assert!(cs.resolve(bad).is_err(), "{bad}");
        }
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).unwrap();
        let err = cs.write(&p("link/x.yaml"), "x").unwrap_err().to_string();
        assert!(err.contains("symlink"), "{err}");
    }

    #[test]
    fn nothing_inside_a_git_directory_is_written_or_deleted() {
        let (dir, mut cs) = repo();
        fs::create_dir_all(dir.path().join("sub/.git/hooks")).unwrap();
        fs::write(dir.path().join("sub/.git/config"), "[core]\n").unwrap();
        for path in [
            ".git/config",
            "./.git/hooks/pre-commit",
            "sub/.git/config",
            "x/../.GIT/config",
        ] {
            let err = cs.write(&p(path), "x").unwrap_err().to_string();
            assert!(
                err.contains("refusing to write inside a `.git` directory"),
                "{path}: {err}"
            );
        }
        let err = cs.delete(&p("sub/.git/config")).unwrap_err().to_string();
        assert!(err.contains("refusing to delete inside a `.git`"), "{err}");
        assert!(cs.changes().unwrap().is_empty());
        // A name that merely contains `.git` is an ordinary file.
        cs.write(&p(".github/x.git/a.yaml"), "a: 1\n").unwrap();
    }

    #[test]
    fn symlinks_are_listed_not_followed() {
        let (dir, cs) = repo();
        std::os::unix::fs::symlink("svc", dir.path().join("svc-link")).unwrap();
        std::os::unix::fs::symlink("a.yaml", dir.path().join("svc/k.yaml")).unwrap();
        let links = cs.symlinks_under(&RepoPath::root()).unwrap();
        assert_eq!(
            links,
            [
                Symlink {
                    path: p("svc/k.yaml"),
                    to_dir: false
                },
                Symlink {
                    path: p("svc-link"),
                    to_dir: true
                },
            ]
        );
        assert_eq!(
            cs.files_under(&RepoPath::root()).unwrap(),
            [p("a.yaml"), p("svc/oci-creds.yaml")]
        );
    }

    #[test]
    fn diff_masks_secret_values() {
        let (_dir, mut cs) = repo();
        cs.delete(&p("svc/oci-creds.yaml")).unwrap();
        cs.write(&p("a.yaml"), "a: 2\n").unwrap();
        let diff: String = cs.changes().unwrap().iter().map(unified_diff).collect();
        assert!(!diff.contains("pw-in-diff-1"), "{diff}");
        assert!(diff.contains("-  password: <redacted>"), "{diff}");
        assert!(diff.contains("+a: 2"), "{diff}");
        assert!(diff.contains("(delete)"), "{diff}");
    }
}
