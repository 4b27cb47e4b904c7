//! The GitRepository a cluster overlay's Reflector wiring applies the base from: its name, and —
//! when ocitool is to render it — where the base repository is (URL, ref, credentials Secret).
//!
//! This module validates those parameters and renders the GitRepository ([`git_repository`]); it
//! never looks at a repository (whether the named GitRepository exists is for
//! `ocitool_orchestration::flux_sources` to say) and never touches credentials: `secret` is only
//! the name of a Secret Flux reads in the cluster.
//!
//! Field facts are from source-controller's API (fluxcd/source-controller api v1.9.5,
//! `v1/gitrepository_types.go`): `spec.url` must match `^(http|https|ssh)://.*$`; `spec.ref` has
//! `branch`, `tag`, `semver`, `name` and `commit`; `spec.secretRef` names a Secret in the same namespace.

use super::render::{HEADER, check_dns_subdomain, quote};
use anyhow::{Result, bail};
use std::fmt;

/// Where a rendered GitRepository goes, relative to the overlay: next to the wiring
/// ([`super::render::OVERLAY_FILE`]) and listed in the same kustomization.
pub const SOURCE_FILE: &str = "managed-services/fluxcd/reflector-source.yaml";

/// The namespace of the wiring, and so of the GitRepository it names (`sourceRef.namespace`).
pub const NAMESPACE: &str = "flux-system";

/// `flux bootstrap`'s GitRepository for the fleet repository itself; never rendered by ocitool.
pub const BOOTSTRAP_SOURCE: &str = "flux-system";

/// The ref checked out when `base_ref` is not given: the branch openCenter and bootstrap use.
pub const DEFAULT_BRANCH: &str = "main";

/// One of `spec.ref`'s fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GitRef {
    Branch(String),
    Tag(String),
    SemVer(String),
    /// A full reference name, e.g. `refs/heads/main`.
    Name(String),
    Commit(String),
}

impl GitRef {
    /// `KIND:VALUE` with KIND one of branch, tag, semver, name, commit; a bare value is a branch
    /// (git refuses `:` in ref names, git-check-ref-format rule 4, so a bare value is never ambiguous).
    pub fn parse(param: &str, text: &str) -> Result<GitRef, String> {
        let (kind, value) = text.split_once(':').unwrap_or(("branch", text));
        let value = value.trim();
        if value.is_empty() {
            return Err(format!(
                "{param} {text:?} names no ref; e.g. \"main\", \"tag:v1.2.0\" or \"semver:>=1.0.0\""
            ));
        }
        Ok(match kind {
            "branch" => GitRef::Branch(value.into()),
            "tag" => GitRef::Tag(value.into()),
            "semver" => GitRef::SemVer(value.into()),
            "name" => GitRef::Name(value.into()),
            "commit" if is_full_sha(value) => GitRef::Commit(value.into()),
            "commit" => {
                return Err(format!(
                    "{param} {text:?}: a commit is its full hexadecimal SHA (40 digits, or 64 in a SHA-256 repository)"
                ));
            }
            other => {
                return Err(format!(
                    "{param} {text:?}: unknown ref kind `{other}`; use a branch name, or branch:, tag:, \
                     semver:, name: or commit: followed by the value (the fields of a Flux GitRepository's spec.ref)"
                ));
            }
        })
    }

    fn field(&self) -> (&'static str, &str) {
        match self {
            GitRef::Branch(v) => ("branch", v),
            GitRef::Tag(v) => ("tag", v),
            GitRef::SemVer(v) => ("semver", v),
            GitRef::Name(v) => ("name", v),
            GitRef::Commit(v) => ("commit", v),
        }
    }
}

impl fmt::Display for GitRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (field, value) = self.field();
        write!(f, "{field} {value}")
    }
}

fn is_full_sha(value: &str) -> bool {
    matches!(value.len(), 40 | 64) && value.chars().all(|c| c.is_ascii_hexdigit())
}

/// Where the base repository is, for a GitRepository ocitool renders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    pub url: String,
    pub git_ref: GitRef,
    /// A Secret in [`NAMESPACE`] with the Git credentials; None for a public repository.
    pub secret: Option<String>,
}

/// The GitRepository (in [`NAMESPACE`]) the wiring's `sourceRef` names; with a [`Remote`] ocitool
/// renders it, without one it must already exist in the overlay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseRepo {
    pub name: String,
    pub remote: Option<Remote>,
}

impl BaseRepo {
    /// A GitRepository that must already exist.
    pub fn existing(name: &str) -> Result<BaseRepo> {
        BaseRepo::new(name, None, None, None)
    }

    /// From the parameters `base_source`, `base_url`, `base_ref`, `base_secret`; every problem at
    /// once, each naming its parameter. `base_ref` and `base_secret` only mean something with a URL.
    pub fn new(
        name: &str,
        url: Option<&str>,
        git_ref: Option<&str>,
        secret: Option<&str>,
    ) -> Result<BaseRepo> {
        let mut problems: Vec<String> = check_dns_subdomain("base_source", name)
            .err()
            .into_iter()
            .collect();
        let Some(url) = url else {
            for (param, given) in [("base_ref", git_ref), ("base_secret", secret)] {
                if given.is_some() {
                    problems.push(format!(
                        "--set {param} describes a GitRepository for ocitool to render, which needs \
                         --set base_url=URL too; without base_url, base_source names one that already exists"
                    ));
                }
            }
            return finish(problems, || BaseRepo {
                name: name.into(),
                remote: None,
            });
        };
        if name == BOOTSTRAP_SOURCE {
            problems.push(format!(
                "base_source {BOOTSTRAP_SOURCE:?} is the GitRepository flux bootstrap made for the fleet \
                 repository itself; give the base repository's source another name (e.g. \"base\")"
            ));
        }
        problems.extend(check_git_url("base_url", url, secret.is_some()).err());
        let parsed = GitRef::parse("base_ref", git_ref.unwrap_or(DEFAULT_BRANCH));
        let git_ref = parsed
            .clone()
            .unwrap_or(GitRef::Branch(DEFAULT_BRANCH.into()));
        problems.extend(parsed.err());
        if let Some(secret) = secret {
            problems.extend(check_dns_subdomain("base_secret", secret).err());
        }
        finish(problems, || BaseRepo {
            name: name.into(),
            remote: Some(Remote {
                url: url.into(),
                git_ref,
                secret: secret.map(String::from),
            }),
        })
    }
}

fn finish(problems: Vec<String>, value: impl FnOnce() -> BaseRepo) -> Result<BaseRepo> {
    if problems.is_empty() {
        return Ok(value());
    }
    bail!("invalid base repository:\n  - {}", problems.join("\n  - "))
}

impl fmt::Display for BaseRepo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GitRepository {NAMESPACE}/{}", self.name)?;
        if let Some(remote) = &self.remote {
            write!(f, " ({}, {})", remote.url, remote.git_ref)?;
        }
        Ok(())
    }
}

/// Flux accepts `http`, `https` and `ssh` URLs. Plain http is refused like the chart repository's
/// (anyone on the path could change what the cluster applies); ssh needs a Secret with a key.
fn check_git_url(param: &str, url: &str, has_secret: bool) -> Result<(), String> {
    let example = "e.g. \"https://git.example.com/platform/base.git\" or \"ssh://git@git.example.com/platform/base.git\"";
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(format!(
            "{param} {url:?} is not a URL Flux accepts (it needs https:// or ssh://; an scp-style \
             `git@host:path` is written ssh://git@host/path); {example}"
        ));
    };
    if !matches!(scheme, "https" | "ssh") {
        return Err(format!(
            "{param} {url:?} must be an https:// or ssh:// URL (plain http would let anyone on the path \
             change what the cluster applies); {example}"
        ));
    }
    let host = rest
        .split('/')
        .next()
        .unwrap_or("")
        .rsplit('@')
        .next()
        .unwrap_or("");
    if host.split(':').next().unwrap_or("").is_empty() || url.chars().any(char::is_whitespace) {
        return Err(format!(
            "{param} {url:?} has no host (or contains whitespace); {example}"
        ));
    }
    if scheme == "ssh" && !has_secret {
        return Err(format!(
            "{param} {url:?} is an ssh URL, which Flux reads with a key: add --set base_secret=NAME, a \
             Secret in {NAMESPACE} with `identity` and `known_hosts` (e.g. `flux-system`, the deploy key \
             flux bootstrap made, if it may read this repository), or use the repository's https URL"
        ));
    }
    Ok(())
}

/// The GitRepository `name` in [`NAMESPACE`] for `remote`, with ocitool's generated header.
pub fn git_repository(name: &str, remote: &Remote) -> Result<String> {
    let (field, value) = remote.git_ref.field();
    let secret = match &remote.secret {
        Some(secret) => format!("  secretRef:\n    name: {secret}\n"),
        None => String::new(),
    };
    Ok(format!(
        "{HEADER}# The base repository Reflector's wiring ({wiring}) applies its base from.
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: {name}
  namespace: {NAMESPACE}
spec:
  interval: 10m
  url: {url}
  ref:
    {field}: {value}
{secret}",
        wiring = super::render::OVERLAY_FILE,
        url = quote(&remote.url)?,
        value = quote(value)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(result: Result<BaseRepo>) -> String {
        format!("{:#}", result.unwrap_err())
    }

    #[test]
    fn refs_are_a_branch_or_a_named_field() {
        let parse = |t: &str| GitRef::parse("base_ref", t);
        assert_eq!(parse("main"), Ok(GitRef::Branch("main".into())));
        assert_eq!(
            parse("release/1.x"),
            Ok(GitRef::Branch("release/1.x".into()))
        );
        assert_eq!(parse("tag:v1.2.0"), Ok(GitRef::Tag("v1.2.0".into())));
        assert_eq!(
            parse("semver:>=1.0.0"),
            Ok(GitRef::SemVer(">=1.0.0".into()))
        );
        assert_eq!(
            parse("name:refs/heads/main"),
            Ok(GitRef::Name("refs/heads/main".into()))
        );
        let sha = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(
            parse(&format!("commit:{sha}")),
            Ok(GitRef::Commit(sha.into()))
        );
        assert!(
            parse("commit:abc123")
                .unwrap_err()
                .contains("full hexadecimal SHA")
        );
        assert!(
            parse("tags:v1")
                .unwrap_err()
                .contains("unknown ref kind `tags`")
        );
        assert!(parse("tag:").unwrap_err().contains("names no ref"));
    }

    #[test]
    fn a_remote_needs_a_url_flux_accepts() {
        let ok =
            BaseRepo::new("base", Some("https://git.example.com/base.git"), None, None).unwrap();
        assert_eq!(ok.remote.unwrap().git_ref, GitRef::Branch("main".into()));
        for (url, needle) in [
            (
                "http://git.example.com/base.git",
                "must be an https:// or ssh:// URL",
            ),
            ("git@git.example.com:base.git", "scp-style"),
            ("https:///base.git", "has no host"),
            (
                "ssh://git@git.example.com/base.git",
                "add --set base_secret=NAME",
            ),
        ] {
            let err = problems(BaseRepo::new("base", Some(url), None, None));
            assert!(
                err.contains(&format!("base_url {url:?}")) && err.contains(needle),
                "{err}"
            );
        }
        assert!(
            BaseRepo::new(
                "base",
                Some("ssh://git@h/base.git"),
                None,
                Some("flux-system")
            )
            .is_ok()
        );
    }

    #[test]
    fn every_problem_is_named_at_once() {
        let err = problems(BaseRepo::new(
            "Base",
            Some("http://h/x"),
            Some("tags:x"),
            Some("A_B"),
        ));
        for param in [
            "base_source \"Base\"",
            "base_url",
            "base_ref",
            "base_secret \"A_B\"",
        ] {
            assert!(err.contains(param), "{param}: {err}");
        }
        let err = problems(BaseRepo::new(
            "flux-system",
            Some("https://h/x"),
            None,
            None,
        ));
        assert!(err.contains("flux bootstrap made"), "{err}");
        let err = problems(BaseRepo::new("base", None, Some("main"), Some("s")));
        assert!(
            err.contains("--set base_ref describes") && err.contains("--set base_secret describes"),
            "{err}"
        );
    }

    #[test]
    fn the_rendered_repository_reads_back_with_every_field() {
        let remote = Remote {
            url: "ssh://git@git.example.com/platform/base.git".into(),
            git_ref: GitRef::Tag("v1.2.0".into()),
            secret: Some("flux-system".into()),
        };
        let text = git_repository("base", &remote).unwrap();
        assert!(text.starts_with(HEADER), "{text}");
        let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
        assert_eq!(doc["kind"], "GitRepository");
        assert_eq!(doc["metadata"]["namespace"], NAMESPACE);
        assert_eq!(
            doc["spec"]["url"],
            "ssh://git@git.example.com/platform/base.git"
        );
        assert_eq!(doc["spec"]["ref"]["tag"], "v1.2.0");
        assert_eq!(doc["spec"]["secretRef"]["name"], "flux-system");
        let public = Remote {
            secret: None,
            ..remote
        };
        assert!(
            !git_repository("base", &public)
                .unwrap()
                .contains("secretRef")
        );
    }

    #[test]
    fn display_says_what_is_rendered() {
        assert_eq!(
            BaseRepo::existing("base").unwrap().to_string(),
            "GitRepository flux-system/base"
        );
        let rendered = BaseRepo::new("oc", Some("https://h/b.git"), Some("tag:v1"), None).unwrap();
        assert_eq!(
            rendered.to_string(),
            "GitRepository flux-system/oc (https://h/b.git, tag v1)"
        );
    }
}
