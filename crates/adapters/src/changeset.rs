//! Staged changes to a repository: scripts never write, they stage; the host applies at the end.
//!
//! A [`Changeset`] is a log of writes and deletes over a repository root. Reads go through it, so a
//! script sees its own staged content. It renders a redacted unified diff for `--dry-run`, and
//! applies the whole set per file atomically (temp file, fsync, rename), restoring every file it
//! already touched when a later one fails. Paths are [`RepoPath`]s (normalised, never above the
//! root); this module adds what only the filesystem can tell: no symlink leading out of the root,
//! no symlinked file edited in place. It must never write or delete inside `.git/` (a script
//! writing `.git/config` or a hook would run commands at the next git invocation), and never show
//! secret values in a diff.

use anyhow::{Context, Result, bail};
use ocitool_core::repo_path::RepoPath;
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

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
}

/// A symbolic link found in the tree (the walk never follows one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Symlink {
    pub path: RepoPath,
    /// Whether it leads to a directory (which would hide a whole subtree from a scan).
    pub to_dir: bool,
}

impl Changeset {
    /// A changeset over the repository at `root`, which must be an existing directory.
    pub fn new(root: &Path) -> Result<Self> {
        let root = root.canonicalize().with_context(|| {
            format!(
                "repository {} does not exist; pass --repo DIR",
                root.display()
            )
        })?;
        if !root.is_dir() {
            bail!(
                "repository {} is not a directory; pass --repo DIR",
                root.display()
            );
        }
        Ok(Changeset {
            root,
            log: Vec::new(),
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
        let path = self.resolve(rel.as_str())?;
        match fs::read_to_string(&path) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {rel}")),
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
        self.log.push((rel.clone(), Op::Write(content.to_string())));
        Ok(())
    }

    /// Stage deleting `rel`; an error when it does not exist (a script bug worth hearing about).
    pub fn delete(&mut self, rel: &RepoPath) -> Result<()> {
        refuse_git_dir(rel, "delete")?;
        if !self.exists(rel)? {
            bail!("{rel}: cannot delete a file that does not exist");
        }
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
        for entry in walker.into_iter().filter_entry(|e| e.file_name() != ".git") {
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

    /// Apply every change: writes first (so nothing is lost if a delete fails), then deletes. On any
    /// failure, every file already changed is restored and the error says so.
    pub fn apply(&self) -> Result<Vec<Change>> {
        self.apply_with(&mut |_| Ok(()))
    }

    /// [`Self::apply`], calling `before_each` before every file operation (tests inject failures).
    pub fn apply_with(
        &self,
        before_each: &mut dyn FnMut(&Change) -> Result<()>,
    ) -> Result<Vec<Change>> {
        let mut changes = self.changes()?;
        changes.sort_by_key(|c| (c.after.is_none(), c.path.clone()));
        let mut done: Vec<&Change> = Vec::new();
        for change in &changes {
            let step = before_each(change).and_then(|()| self.apply_one(change));
            if let Err(err) = step {
                let restore_errors = self.restore(&done);
                let mut message = format!("applying {} failed: {err:#}", change.path);
                if restore_errors.is_empty() {
                    message.push_str(&format!(
                        "\nrolled back {} already-applied change(s); the repository is unchanged",
                        done.len()
                    ));
                } else {
                    message.push_str(&format!(
                        "\nrollback FAILED for: {}; restore them from git",
                        restore_errors.join(", ")
                    ));
                }
                bail!("{}", ocitool_core::redact::redact(&message));
            }
            done.push(change);
        }
        Ok(changes)
    }

    fn apply_one(&self, change: &Change) -> Result<()> {
        let path = self.resolve(&change.path)?;
        match &change.after {
            Some(text) => write_atomically(&path, text),
            None => {
                fs::remove_file(&path).with_context(|| format!("cannot delete {}", change.path))
            }
        }
    }

    /// Undo applied changes in reverse order; the paths that could not be restored.
    fn restore(&self, done: &[&Change]) -> Vec<String> {
        let mut failed = Vec::new();
        for change in done.iter().rev() {
            let undo = Change {
                path: change.path.clone(),
                before: change.after.clone(),
                after: change.before.clone(),
            };
            if self.apply_one(&undo).is_err() {
                failed.push(change.path.clone());
            }
        }
        failed
    }

    /// A unified diff of all changes with Secret values masked, for `--dry-run`.
    pub fn diff(&self) -> Result<String> {
        let mut out = String::new();
        for change in self.changes()? {
            let show = |text: &Option<String>| {
                text.as_deref()
                    .map(ocitool_core::redact::mask_secret_yaml)
                    .unwrap_or_default()
            };
            let (before, after) = (show(&change.before), show(&change.after));
            let old_name = if change.before.is_some() {
                format!("a/{}", change.path)
            } else {
                "/dev/null".into()
            };
            let new_name = if change.after.is_some() {
                format!("b/{}", change.path)
            } else {
                "/dev/null".into()
            };
            let diff = similar::TextDiff::from_lines(&before, &after);
            out.push_str(&format!(
                "diff --ocitool a/{0} b/{0} ({1})\n",
                change.path,
                change.kind()
            ));
            out.push_str(
                &diff
                    .unified_diff()
                    .context_radius(3)
                    .header(&old_name, &new_name)
                    .to_string(),
            );
        }
        Ok(out)
    }
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

/// Write via a temp file in the same directory, fsync it, rename over the target, fsync the dir.
fn write_atomically(path: &Path, text: &str) -> Result<()> {
    let dir = path.parent().context("file has no parent directory")?;
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut temp = tempfile::Builder::new()
        .prefix(".ocitool-")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    temp.write_all(text.as_bytes())?;
    temp.as_file().sync_all()?;
    // Keep an existing file's mode; new files get the usual 0644 rather than tempfile's 0600.
    let permissions = match fs::metadata(path) {
        Ok(meta) => meta.permissions(),
        Err(_) => std::os::unix::fs::PermissionsExt::from_mode(0o644),
    };
    fs::set_permissions(temp.path(), permissions)?;
    temp.persist(path)
        .with_context(|| format!("cannot replace {}", path.display()))?;
    fs::File::open(dir).and_then(|d| d.sync_all()).ok();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(path: &str) -> RepoPath {
        RepoPath::new(path).unwrap()
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
        cs.apply().unwrap();
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
            .apply_with(&mut |_| {
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
        let diff = cs.diff().unwrap();
        assert!(!diff.contains("pw-in-diff-1"), "{diff}");
        assert!(diff.contains("-  password: <redacted>"), "{diff}");
        assert!(diff.contains("+a: 2"), "{diff}");
        assert!(diff.contains("(delete)"), "{diff}");
    }
}
