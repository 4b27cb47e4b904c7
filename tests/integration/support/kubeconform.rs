//! Test helper: validate manifest files with `kubeconform -strict` against the shared schemas.
//!
//! Include it with `#[path = "support/kubeconform.rs"] mod kubeconform;`. Schemas come from
//! `../shared/schemas` (relative to the project root); without them it falls back to online schema
//! locations and says so, because a validation that silently checked nothing would pass every test.
//! Do not pass kustomize.config.k8s.io `kustomization.yaml` files: no schema exists for them.

use std::path::{Path, PathBuf};

/// Flux CRD schemas on GitHub, used only when the shared schemas are missing.
const CRDS_CATALOG: &str = "https://raw.githubusercontent.com/datreeio/CRDs-catalog/main/{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json";

/// The shared reference data (`schemas/`, `reflector-chart-7.1.288/`), if present.
/// It is `../shared` from the project root; a git worktree under `<root>/wt/<branch>` sits one level
/// deeper, so the grandparent is tried too.
pub fn shared_dir() -> Option<PathBuf> {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .skip(1)
        .take(2)
        .map(|dir| dir.join("shared"))
        .find(|dir| dir.join("schemas").is_dir())
}

/// The `-schema-location` values: the shared schemas, or kubeconform's default plus the CRDs catalog.
pub fn schema_locations() -> Vec<String> {
    match shared_dir() {
        Some(shared) => {
            let schemas = shared.join("schemas");
            vec![
                format!(
                    "{}/flux-crds/{{{{.Group}}}}/{{{{.ResourceKind}}}}_{{{{.ResourceAPIVersion}}}}.json",
                    schemas.display()
                ),
                format!(
                    "{}/kubernetes-v1.33-standalone-strict/{{{{.ResourceKind}}}}{{{{.KindSuffix}}}}.json",
                    schemas.display()
                ),
            ]
        }
        None => {
            // Straight to the process's stderr: libtest captures eprintln! of passing tests, and
            // this must be visible in every run that falls back.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "kubeconform: ../shared/schemas not found, using online schema locations"
            );
            vec!["default".to_string(), CRDS_CATALOG.to_string()]
        }
    }
}

/// Runs `kubeconform -strict -summary` on `files`. Ok holds kubeconform's output (with the summary
/// line); Err holds the command line and output, ready to print in an assertion.
pub fn validate(files: &[PathBuf]) -> Result<String, String> {
    if files.is_empty() {
        // kubeconform reads stdin without file arguments; a test must name what it validates.
        return Err("kubeconform: no files to validate".to_string());
    }
    let mut cmd = ocitool_adapters::tools::command(ocitool_adapters::tools::KUBECONFORM)
        .map_err(|e| format!("{e:#}"))?;
    cmd.args(["-strict", "-summary"]);
    for location in schema_locations() {
        cmd.arg("-schema-location").arg(location);
    }
    cmd.args(files);
    let output = cmd
        .output()
        .map_err(|e| format!("kubeconform could not be started: {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if output.status.success() {
        Ok(text)
    } else {
        Err(format!("{cmd:?} failed ({}):\n{text}", output.status))
    }
}
