//! [`RepoPath`]: a path inside the fleet repository, normalised once, so every layer compares and
//! joins the same spelling.
//!
//! A `RepoPath` is repo-relative with `/` separators: no leading `/`, no `.` or empty segments, and
//! `..` resolved lexically, refusing to climb above the repository root (the empty path). Lexical
//! resolution is what kustomize does with `resources:` entries (it joins the entry onto the
//! kustomization's directory and cleans it, `filepath.Join` → `filepath.Clean`) and what git does
//! with tracked paths, so two spellings of one file compare equal here. This module is pure string
//! work: it never looks at the filesystem (symlinks are the adapters' concern) and never decides
//! policy about which paths may be written.

use std::fmt;

/// Why a string is not a repository path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathError {
    /// The empty string (most often an unset variable), not a path.
    Empty,
    /// Starts with `/`: outside the repository by definition.
    Absolute(String),
    /// Its `..` segments climb above the repository root.
    EscapesRoot(String),
    /// Contains a NUL byte, which no filesystem path can hold.
    Nul(String),
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathError::Empty => write!(f, "an empty string is not a path inside the repository"),
            PathError::Absolute(p) => write!(
                f,
                "{p}: absolute paths are not allowed; paths are relative to the repository root"
            ),
            PathError::EscapesRoot(p) => write!(
                f,
                "{p}: paths must stay inside the repository (its `..` climbs above the root)"
            ),
            PathError::Nul(p) => write!(f, "{p:?}: a path cannot contain a NUL byte"),
        }
    }
}

impl std::error::Error for PathError {}

/// What `..` at the root means: an error (kustomize entries, script paths) or the root itself
/// (Flux's `spec.path`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Above {
    Refuse,
    StayAtRoot,
}

/// A normalised repo-relative path; the empty path is the repository root.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RepoPath(String);

impl RepoPath {
    /// Normalise `path` (`./a//b/../c/` → `a/c`); `.` is the root.
    pub fn new(path: &str) -> Result<RepoPath, PathError> {
        if path.is_empty() {
            return Err(PathError::Empty);
        }
        if path.starts_with('/') {
            return Err(PathError::Absolute(path.to_string()));
        }
        RepoPath::root().join(path)
    }

    /// The repository root (the empty path).
    pub fn root() -> RepoPath {
        RepoPath(String::new())
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// `rel` resolved against this directory, lexically (`a/b` + `../c` → `a/c`). An empty `rel`
    /// is this directory; `..` may climb out of `self` but never above the root.
    pub fn join(&self, rel: &str) -> Result<RepoPath, PathError> {
        if rel.starts_with('/') {
            return Err(PathError::Absolute(rel.to_string()));
        }
        self.resolve(rel, Above::Refuse)
    }

    /// `path` the way Flux resolves a Kustomization's `spec.path` in its source: a leading `/` is
    /// the root and `..` at the root stays there (kustomize-controller builds
    /// `securejoin.SecureJoin(tmpDir, obj.Spec.Path)`; SecureJoin clamps lexically at the root).
    pub fn within_root(path: &str) -> Result<RepoPath, PathError> {
        RepoPath::root().resolve(path, Above::StayAtRoot)
    }

    /// The one normaliser: `rel`'s segments applied to `self`'s, lexically.
    fn resolve(&self, rel: &str, above: Above) -> Result<RepoPath, PathError> {
        if rel.contains('\0') {
            return Err(PathError::Nul(rel.to_string()));
        }
        let mut parts: Vec<&str> = self.segments().collect();
        for part in rel.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    if parts.pop().is_none() && above == Above::Refuse {
                        return Err(PathError::EscapesRoot(self.spelled_with(rel)));
                    }
                }
                name => parts.push(name),
            }
        }
        Ok(RepoPath(parts.join("/")))
    }

    /// `self/rel` as written, for error messages.
    fn spelled_with(&self, rel: &str) -> String {
        if self.is_root() {
            rel.to_string()
        } else {
            format!("{}/{rel}", self.0)
        }
    }

    /// The directory holding this path; None for the root.
    pub fn parent(&self) -> Option<RepoPath> {
        if self.is_root() {
            return None;
        }
        Some(match self.0.rsplit_once('/') {
            Some((dir, _)) => RepoPath(dir.to_string()),
            None => RepoPath::root(),
        })
    }

    /// The last segment; None for the root.
    pub fn file_name(&self) -> Option<&str> {
        self.segments().next_back()
    }

    /// The segments, root first (none for the root).
    pub fn segments(&self) -> impl DoubleEndedIterator<Item = &str> {
        self.0.split('/').filter(|s| !s.is_empty())
    }

    /// True when `self` is `dir` or lies below it (by whole segments: `ab` is not under `a`).
    pub fn starts_with(&self, dir: &RepoPath) -> bool {
        dir.is_root()
            || self.0 == dir.0
            || (self.0.starts_with(&dir.0) && self.0.as_bytes()[dir.0.len()] == b'/')
    }

    /// How a kustomization in directory `dir` spells this path: `x` below it, `../svc/x` from a
    /// sibling, `.` for `dir` itself. `dir.join(&p.relative_to(&dir))` is always `p`.
    pub fn relative_to(&self, dir: &RepoPath) -> String {
        let mine: Vec<&str> = self.segments().collect();
        let theirs: Vec<&str> = dir.segments().collect();
        let common = mine.iter().zip(&theirs).take_while(|(a, b)| a == b).count();
        let ups = std::iter::repeat_n("..", theirs.len() - common);
        let spelled: Vec<&str> = ups.chain(mine[common..].iter().copied()).collect();
        if spelled.is_empty() {
            ".".to_string()
        } else {
            spelled.join("/")
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RepoPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.is_root() { "." } else { &self.0 })
    }
}

/// Compares with the normalised spelling (the root is "").
impl PartialEq<str> for RepoPath {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for RepoPath {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// For joining onto the repository's directory (`root.join(&path)`); the root joins as `root`.
impl AsRef<std::path::Path> for RepoPath {
    fn as_ref(&self) -> &std::path::Path {
        std::path::Path::new(&self.0)
    }
}

impl AsRef<str> for RepoPath {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(s: &str) -> RepoPath {
        RepoPath::new(s).unwrap()
    }

    #[test]
    fn spellings_of_one_path_are_equal() {
        for spelling in ["a/c", "./a/c", "a//c/", "a/b/../c", "a/./c", "x/../a/c"] {
            assert_eq!(p(spelling).as_str(), "a/c", "{spelling}");
        }
        assert!(p(".").is_root());
        assert_eq!(p(".").to_string(), ".");
    }

    #[test]
    fn bad_paths_get_typed_errors() {
        assert_eq!(RepoPath::new(""), Err(PathError::Empty));
        assert_eq!(
            RepoPath::new("/etc/passwd"),
            Err(PathError::Absolute("/etc/passwd".into()))
        );
        assert_eq!(
            RepoPath::new("a/../../x"),
            Err(PathError::EscapesRoot("a/../../x".into()))
        );
        assert_eq!(
            p("svc").join("../../x"),
            Err(PathError::EscapesRoot("svc/../../x".into()))
        );
        assert!(matches!(RepoPath::new("a\0b"), Err(PathError::Nul(_))));
        assert_eq!(RepoPath::within_root("/../a/./b/"), Ok(p("a/b")));
        let message = RepoPath::new("../x").unwrap_err().to_string();
        assert!(message.contains("stay inside the repository"), "{message}");
    }

    #[test]
    fn parent_file_name_starts_with() {
        let path = p("acme/svc/loki/oci-creds.yaml");
        assert_eq!(path.parent(), Some(p("acme/svc/loki")));
        assert_eq!(path.file_name(), Some("oci-creds.yaml"));
        assert_eq!(p("a").parent(), Some(RepoPath::root()));
        assert_eq!(RepoPath::root().parent(), None);
        assert_eq!(RepoPath::root().file_name(), None);
        assert!(path.starts_with(&p("acme/svc")));
        assert!(path.starts_with(&path));
        assert!(path.starts_with(&RepoPath::root()));
        assert!(!path.starts_with(&p("acme/sv")));
    }

    #[test]
    fn relative_to_spells_what_a_kustomization_would() {
        let file = p("o/services/loki/oci-creds.yaml");
        assert_eq!(file.relative_to(&p("o/services/loki")), "oci-creds.yaml");
        assert_eq!(
            file.relative_to(&p("o/services/grafana")),
            "../loki/oci-creds.yaml"
        );
        assert_eq!(file.relative_to(&file), ".");
        assert_eq!(
            file.relative_to(&RepoPath::root()),
            "o/services/loki/oci-creds.yaml"
        );
    }

    fn segment() -> impl Strategy<Value = String> {
        prop::sample::select(vec!["a", "b", "..", ".", "", "c.yaml", ".git", "a b"])
            .prop_map(String::from)
    }

    fn spelling() -> impl Strategy<Value = String> {
        prop::collection::vec(segment(), 1..8).prop_map(|s| s.join("/"))
    }

    fn path() -> impl Strategy<Value = RepoPath> {
        spelling().prop_filter_map("escapes or empty", |s| RepoPath::new(&s).ok())
    }

    proptest! {
        #[test]
        fn normalised_paths_never_escape_and_are_fixed_points(s in spelling()) {
            if let Ok(path) = RepoPath::new(&s) {
                prop_assert!(!path.as_str().starts_with('/'));
                prop_assert!(path.segments().all(|seg| !matches!(seg, "" | "." | "..")));
                prop_assert!(!path.as_str().contains("//"));
                if !path.is_root() {
                    prop_assert_eq!(RepoPath::new(path.as_str()), Ok(path.clone()));
                }
                // Display spells the root `.`, so what is shown parses back too.
                let shown = path.to_string();
                prop_assert_eq!(RepoPath::new(&shown), Ok(path));
            } else {
                // Only climbing above the root, absolute paths and the empty string are refused.
                prop_assert!(s.is_empty() || s.starts_with('/') || s.contains(".."));
            }
        }

        #[test]
        fn join_and_relative_to_round_trip(target in path(), dir in path()) {
            let spelled = target.relative_to(&dir);
            prop_assert_eq!(dir.join(&spelled), Ok(target.clone()));
            if target.starts_with(&dir) {
                prop_assert!(!spelled.starts_with(".."));
            }
        }

        #[test]
        fn parent_and_file_name_rebuild_the_path(target in path()) {
            if let (Some(parent), Some(name)) = (target.parent(), target.file_name()) {
                prop_assert_eq!(parent.join(name), Ok(target.clone()));
                prop_assert!(target.starts_with(&parent));
            }
        }
    }
}
