//! Building kustomizations with the real `kubectl kustomize`.
//!
//! Editing kustomization files is pure text work and lives in `ocitool_core::kustomize`; this module
//! only runs the build and hands back the YAML or an error naming the directory. It never edits files.

use crate::process::{Invocation, ProcessError};
use crate::{kubectl, tools};
use anyhow::{Result, bail};
use std::path::Path;

/// `kubectl kustomize DIR`: the built YAML, or an error naming the directory with kubectl's stderr.
pub fn build(dir: &Path) -> Result<String> {
    let invocation = Invocation::new(tools::KUBECTL, kubectl::DEFAULT_TIMEOUT)?
        .args([Path::new("kustomize"), dir]);
    match invocation.run_text() {
        Ok(yaml) => Ok(yaml),
        Err(ProcessError::Failed { stderr, .. }) => bail!(
            "`kubectl kustomize {}` failed: {stderr}\nfix the kustomization in that directory and run again",
            dir.display()
        ),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_renders_a_configmap() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("kustomization.yaml"),
            "resources:\n- cm.yaml\n",
        )
        .unwrap();
        let cm =
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ocitool-test\ndata:\n  k: v\n";
        std::fs::write(dir.path().join("cm.yaml"), cm).unwrap();
        let out = build(dir.path()).unwrap();
        assert!(out.contains("kind: ConfigMap"), "{out}");
        assert!(out.contains("name: ocitool-test"), "{out}");
    }

    #[test]
    fn build_error_names_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("kustomization.yaml"),
            "resources:\n- missing.yaml\n",
        )
        .unwrap();
        let err = build(dir.path()).unwrap_err().to_string();
        assert!(err.contains(&dir.path().display().to_string()), "{err}");
        assert!(err.contains("missing.yaml"), "{err}");
    }
}
