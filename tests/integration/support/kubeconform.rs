//! Validate manifest files with `kubeconform -strict` against the schemas vendored in
//! `tests/data/schemas` (see its README). It never reaches the network: kubeconform is given only
//! local schema locations, so a kind without a vendored schema is an error, never a silent skip.
//! Do not pass kustomize.config.k8s.io `kustomization.yaml` files: no schema exists for them.

use std::path::PathBuf;

/// The `-schema-location` templates (kubeconform's syntax): the Flux CRDs, then the core kinds.
fn schema_locations() -> [String; 2] {
    let schemas = super::data_dir().join("schemas");
    [
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

/// Runs `kubeconform -strict -summary` on `files`. Ok holds kubeconform's output (with the summary
/// line); Err holds the command line and output, ready to print in an assertion.
pub fn validate(files: &[PathBuf]) -> Result<String, String> {
    if files.is_empty() {
        // kubeconform reads stdin without file arguments; a test must name what it validates.
        return Err("kubeconform: no files to validate".to_string());
    }
    let mut cmd = ocitool_adapters::tools::command(ocitool_adapters::tools::KUBECONFORM)
        .map_err(|e| format!("{e:#}"))?;
    // Without -ignore-missing-schemas a resource whose schema none of the locations has is an
    // error (maintainer in yannh/kubeconform#32: "If you do not pass -ignore-missing-schemas, it
    // will error when it doesnt find a schema"), and no location here is remote.
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
