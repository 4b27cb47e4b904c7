//! Validation and cluster verification for scripts: `repo.validate`, `cluster(context)` and its
//! snapshot, lag and log functions, and the table/JSON renderings of findings.
//!
//! Glue only: the checks live in [`ocitool_orchestration::validate`], [`ocitool_orchestration::cluster`] and
//! [`ocitool_core::reflector::verify`]. Nothing here prints, and nothing here writes to the repository.

use rhai::plugin::*;

#[export_module]
pub mod validate_api {
    use crate::script::Repo;
    use crate::script::api::{ScriptResult, items};
    use crate::script::runtime_error;
    use ocitool_adapters::kubectl::Kubectl as Cluster;
    use ocitool_core::reflector::verify::{ClusterSnapshot as Snapshot, verify};
    use ocitool_orchestration::cluster;
    use ocitool_orchestration::repo::Overlay;
    use ocitool_orchestration::validate::{self, Finding, Options};
    use rhai::{Array, Dynamic, Map};
    use std::time::Duration;

    fn findings_array(findings: Vec<Finding>) -> Array {
        findings.into_iter().map(Dynamic::from).collect()
    }

    /// Validate one overlay statically; an array of Finding. `options`: `#{base_repo: DIR}` also builds Flux Kustomizations sourced from other GitRepositories from DIR ("" or absent: overlay only).
    #[rhai_fn(global, pure, return_raw)]
    pub fn validate(repo: &mut Repo, overlay: Overlay, options: Map) -> ScriptResult<Array> {
        let base_repo = options
            .get("base_repo")
            .and_then(|v| v.clone().into_string().ok())
            .filter(|v| !v.is_empty())
            .map(std::path::PathBuf::from);
        let findings =
            validate::validate(&mut repo.0.borrow_mut(), &overlay, &Options { base_repo })
                .map_err(runtime_error)?;
        Ok(findings_array(findings))
    }

    /// An array of Finding as an aligned plain-text table (severity, file, message), one per line.
    #[rhai_fn(global, return_raw)]
    pub fn render_findings_table(findings: Array) -> ScriptResult<String> {
        Ok(validate::render_table(&items::<Finding>(
            &findings, "Finding",
        )?))
    }

    /// Read-only: the Reflector Deployment and pods, the source Secret, every Secret named oci-creds, and the namespaces.
    #[rhai_fn(global, pure, return_raw)]
    pub fn snapshot(cluster: &mut Cluster) -> ScriptResult<Snapshot> {
        cluster::snapshot(cluster).map_err(runtime_error)
    }

    /// Offline/testing mode: a snapshot from saved `kubectl get -o json` files in `dir`: reflector-pods.json, secrets.json, namespaces.json, and optionally (absent = NotFound) reflector-deployment.json and source-secret.json.
    #[rhai_fn(global, return_raw)]
    pub fn snapshot_from_dir(dir: &str) -> ScriptResult<Snapshot> {
        cluster::snapshot_from_dir(std::path::Path::new(dir)).map_err(runtime_error)
    }

    /// Check a snapshot against the Reflector model: an array of Finding whose `file` is the namespace concerned.
    #[rhai_fn(global, return_raw)]
    pub fn verify_snapshot(snapshot: Snapshot) -> ScriptResult<Array> {
        let report = verify(&snapshot).map_err(runtime_error)?;
        Ok(findings_array(validate::from_verify(&report)))
    }

    /// Warning and error lines of Reflector's log since `since` (e.g. "10m"), duplicates counted.
    #[rhai_fn(global, pure, return_raw)]
    pub fn reflector_warnings(cluster: &mut Cluster, since: &str) -> ScriptResult<Array> {
        let lines = cluster::reflector_warnings(cluster, since).map_err(runtime_error)?;
        Ok(lines.into_iter().map(Dynamic::from).collect())
    }

    /// The one write: annotate the source with a probe timestamp and wait (at most `timeout_s`) until every mirror reflects it; the seconds it took. An error when not caught up, or when it took over 60 s.
    #[rhai_fn(global, pure, return_raw)]
    pub fn measure_lag(cluster: &mut Cluster, timeout_s: i64) -> ScriptResult<f64> {
        let timeout = Duration::from_secs(timeout_s.max(1) as u64);
        let lag = cluster::measure_lag(cluster, timeout).map_err(runtime_error)?;
        Ok(lag.as_secs_f64())
    }
}
