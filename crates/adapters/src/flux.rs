//! Building a Flux Kustomization as Flux builds it, with the pinned `flux` CLI (v2.9.5):
//! `flux build kustomization NAME --path DIR --kustomization-file - --dry-run --in-memory-build`.
//!
//! This module owns the command line and the classification of its failures into a typed
//! [`FluxError`] (from the exit status; flux exits 1 for every build failure, so its stderr is
//! carried for the reader, never matched). It never decides which Kustomizations to build or where
//! their sources are (orchestration maps sources to checkouts), never writes a file, and never
//! decrypts: flux masks the values of sops-encrypted Secrets in what it prints.
//!
//! Why these flags (flux2 v2.9.5, `internal/build/build.go`):
//! - `--dry-run` takes the Kustomization from the file instead of the cluster, so no cluster is
//!   needed; it applies `components`, `patches`, `images`, `namePrefix`/`nameSuffix`,
//!   `commonMetadata`, `targetNamespace` and inline `postBuild.substitute`, and generates a
//!   kustomization.yaml for a directory without one. `postBuild.substituteFrom` is skipped in dry
//!   runs ("variable substitutions from Secrets and ConfigMaps are skipped in dry-run mode", `flux
//!   build kustomization --help`), so callers that resolve those pass them as inline `substitute`.
//! - `--in-memory-build`: without it flux's `onDiskFsBackend` *rewrites the kustomization.yaml in
//!   the source directory* for the build and restores it afterwards, which would write into the
//!   user's checkout and race when two builds share a directory. In memory it reads through
//!   `MakeFsOnDiskSecure(cwd)`, so loads are confined to the working directory, which is therefore
//!   the source's root: the rule kustomize-controller applies (files load from anywhere in the
//!   source artifact, nothing outside it).
//! - the Kustomization document arrives on standard input (`--kustomization-file /dev/stdin`;
//!   flux reads the file with `os.ReadFile`), so a caller can hand over a resolved copy without a
//!   temporary file.

use crate::process::{Invocation, ProcessError};
use crate::tools;
use std::path::Path;
use std::time::Duration;

/// A build of one Kustomization takes about 0.3 s; a minute means something hangs.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Where flux reads the Kustomization document from: its standard input.
const STDIN_FILE: &str = "/dev/stdin";

/// One Flux Kustomization to build.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// `metadata.name` and `metadata.namespace` (flux picks the document by both).
    pub name: &'a str,
    pub namespace: &'a str,
    /// The Kustomization as YAML; more documents may surround it.
    pub kustomization: &'a str,
    /// The root of the checkout its source maps to; flux runs there and loads nothing outside it.
    pub source_root: &'a Path,
    /// `spec.path`, relative to `source_root` (empty: the root itself).
    pub path: &'a Path,
}

/// Why a build produced no YAML.
#[derive(Debug, thiserror::Error)]
pub enum FluxError {
    /// flux ran and refused (exit status non-zero): the Kustomization does not build.
    #[error("`flux build kustomization {name}` failed ({}): {stderr}", crate::process::exit_description(*code))]
    BuildFailed {
        name: String,
        code: Option<i32>,
        /// flux's own explanation, trimmed and redacted.
        stderr: String,
    },
    /// flux could not be run to an end at all (missing, timed out, unreadable output).
    #[error(transparent)]
    Process(ProcessError),
}

/// Build `request`: the multi-document YAML flux would apply.
pub fn build(request: &Request) -> Result<String, FluxError> {
    let path = if request.path.as_os_str().is_empty() {
        Path::new(".")
    } else {
        request.path
    };
    let invocation = Invocation::new(tools::FLUX, DEFAULT_TIMEOUT)
        .map_err(FluxError::Process)?
        .args(["build", "kustomization", request.name, "--namespace"])
        .args([request.namespace, "--kustomization-file", STDIN_FILE])
        .args(["--dry-run", "--in-memory-build", "--path"])
        .args([path])
        .current_dir(request.source_root)
        .stdin(request.kustomization.as_bytes().to_vec());
    invocation.run_text().map_err(|e| match e {
        ProcessError::Failed { code, stderr, .. } => FluxError::BuildFailed {
            name: request.name.to_string(),
            code,
            stderr,
        },
        other => FluxError::Process(other),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const APP: &str = "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\n\
        metadata: {name: app, namespace: flux-system}\n\
        spec:\n  path: ./apps/app\n  sourceRef: {kind: GitRepository, name: base}\n  \
        targetNamespace: team-a\n  components: [../components/extra]\n  \
        postBuild:\n    substitute: {REGISTRY: registry.example}\n";

    fn write(root: &Path, rel: &str, text: &str) {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn request<'a>(root: &'a Path, name: &'a str) -> Request<'a> {
        Request {
            name,
            namespace: "flux-system",
            kustomization: APP,
            source_root: root,
            path: Path::new("apps/app"),
        }
    }

    /// No kustomization.yaml (flux generates one), a component, a file outside the directory,
    /// targetNamespace and substitution: everything Flux does, and nothing written to the source.
    #[test]
    fn builds_as_flux_does_without_touching_the_source() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(
            root,
            "apps/app/sa.yaml",
            "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: puller}\n\
             imagePullSecrets: [{name: creds}]\n",
        );
        write(
            root,
            "apps/components/extra/kustomization.yaml",
            "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nresources: [../../shared/repo.yaml]\n",
        );
        write(
            root,
            "apps/shared/repo.yaml",
            "apiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository\nmetadata: {name: charts}\n\
             spec: {type: oci, url: 'oci://${REGISTRY}/charts', secretRef: {name: creds}}\n",
        );
        let out = build(&request(root, "app")).unwrap();
        assert!(out.contains("namespace: team-a"), "{out}");
        assert!(out.contains("oci://registry.example/charts"), "{out}");
        assert!(out.contains("kind: ServiceAccount"), "{out}");
        assert!(
            !root.join("apps/app/kustomization.yaml").exists(),
            "the generated kustomization.yaml stays in memory"
        );
    }

    #[test]
    fn a_failed_build_is_typed_and_says_why() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "apps/app/kustomization.yaml",
            "resources: [missing.yaml]\n",
        );
        match build(&request(dir.path(), "app")) {
            Err(FluxError::BuildFailed { name, code, stderr }) => {
                assert_eq!((name.as_str(), code), ("app", Some(1)));
                assert!(stderr.contains("missing.yaml"), "{stderr}");
            }
            other => panic!("expected BuildFailed, got {other:?}"),
        }
        // A name the document does not carry is refused the same way (exit status 1).
        assert!(matches!(
            build(&request(dir.path(), "other")),
            Err(FluxError::BuildFailed { code: Some(1), .. })
        ));
    }

    #[test]
    fn files_outside_the_source_root_are_refused_as_flux_refuses_them() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "outside.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
        );
        write(
            dir.path(),
            "src/apps/app/kustomization.yaml",
            "resources: [../../../outside.yaml]\n",
        );
        let mut req = request(dir.path(), "app");
        let src = dir.path().join("src");
        req.source_root = &src;
        assert!(matches!(build(&req), Err(FluxError::BuildFailed { .. })));
    }
}
