//! Building kustomizations with the real `kubectl kustomize`.
//!
//! Editing kustomization files is pure text work and lives in `ocitool_core::kustomize`; this module
//! only runs the build and hands back the YAML or an error naming the directory. It never edits files.

use crate::tools;
use anyhow::{Context, Result, bail};
use std::path::Path;

/// `kubectl kustomize DIR`: the built YAML, or an error naming the directory with kubectl's stderr.
pub fn build(dir: &Path) -> Result<String> {
    let output = tools::command(tools::KUBECTL)?
        .arg("kustomize")
        .arg(dir)
        .output()
        .with_context(|| format!("could not run `kubectl kustomize {}`", dir.display()))?;
    if !output.status.success() {
        bail!(
            "`kubectl kustomize {}` failed: {}\nfix the kustomization in that directory and run again",
            dir.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    String::from_utf8(output.stdout).with_context(|| {
        format!(
            "`kubectl kustomize {}` printed non-UTF-8 output",
            dir.display()
        )
    })
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
