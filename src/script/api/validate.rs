//! Validation and cluster verification for scripts: `repo.validate`, `kubectl(context)` and its
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
    use ocitool_adapters::kubectl::Kubectl;
    use ocitool_core::reflector::SourceOptions;
    use ocitool_core::reflector::verify::{ClusterSnapshot, verify};
    use ocitool_orchestration::cluster;
    use ocitool_orchestration::flux_builds::Sources;
    use ocitool_orchestration::repo::Overlay;
    use ocitool_orchestration::validate::{self, Finding, Options};
    use rhai::{Array, Dynamic};
    use std::time::Duration;

    fn findings_array(findings: Vec<Finding>) -> Array {
        findings.into_iter().map(Dynamic::from).collect()
    }

    /// Validate one overlay statically against the source `source` names; an array of Finding. `base_repo`: the checkout every GitRepository other than `flux-system` maps to ("": none; those Kustomizations are reported as not checked).
    #[rhai_fn(global, pure, return_raw, name = "validate")]
    pub fn validate_with_base(
        repo: &mut Repo,
        overlay: Overlay,
        source: SourceOptions,
        base_repo: &str,
    ) -> ScriptResult<Array> {
        let base_repo = Some(base_repo)
            .filter(|b| !b.is_empty())
            .map(std::path::PathBuf::from);
        let sources = Sources::new(base_repo, Default::default());
        validate(repo, overlay, source, sources)
    }

    /// Validate one overlay statically against the source `source` names, building its Flux Kustomizations with flux from the checkouts `sources` maps (see `source_checkouts`); an array of Finding.
    #[rhai_fn(global, pure, return_raw)]
    pub fn validate(
        repo: &mut Repo,
        overlay: Overlay,
        source: SourceOptions,
        sources: Sources,
    ) -> ScriptResult<Array> {
        let options = Options { sources, source };
        let findings = validate::validate(&mut repo.0.borrow_mut(), &overlay, &options)
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

    /// Read-only: the Reflector Deployment and pods in `source`'s Reflector namespace, the source Secret, every Secret named like it, and the namespaces.
    #[rhai_fn(global, pure, return_raw)]
    pub fn snapshot(kubectl: &mut Kubectl, source: SourceOptions) -> ScriptResult<ClusterSnapshot> {
        cluster::snapshot(kubectl, &source).map_err(runtime_error)
    }

    /// Offline/testing mode: a snapshot from saved `kubectl get -o json` files in `dir`, collected for the `source` names: reflector-pods.json, secrets.json, namespaces.json, and optionally (absent = NotFound) reflector-deployment.json and source-secret.json.
    #[rhai_fn(global, return_raw)]
    pub fn snapshot_from_dir(dir: &str, source: SourceOptions) -> ScriptResult<ClusterSnapshot> {
        cluster::snapshot_from_dir(std::path::Path::new(dir), &source).map_err(runtime_error)
    }

    /// Check a snapshot against the Reflector model: an array of Finding whose `file` is the namespace concerned.
    #[rhai_fn(global, return_raw)]
    pub fn verify_snapshot(snapshot: ClusterSnapshot) -> ScriptResult<Array> {
        let report = verify(&snapshot).map_err(runtime_error)?;
        Ok(findings_array(validate::from_verify(&report)))
    }

    /// Warning and error lines of the log of the Reflector in `source`'s namespace since `since` (e.g. "10m"), duplicates counted.
    #[rhai_fn(global, pure, return_raw)]
    pub fn reflector_warnings(
        kubectl: &mut Kubectl,
        source: SourceOptions,
        since: &str,
    ) -> ScriptResult<Array> {
        let lines = cluster::reflector_warnings(kubectl, &source, since).map_err(runtime_error)?;
        Ok(lines.into_iter().map(Dynamic::from).collect())
    }

    /// The one write: annotate the `source` Secret with a probe timestamp and wait (at most `timeout_s`) until every mirror reflects it; the seconds it took. An error when not caught up, or when it took over 60 s.
    #[rhai_fn(global, pure, return_raw)]
    pub fn measure_lag(
        kubectl: &mut Kubectl,
        source: SourceOptions,
        timeout_s: i64,
    ) -> ScriptResult<f64> {
        let timeout = Duration::from_secs(timeout_s.max(1) as u64);
        let lag = cluster::measure_lag(kubectl, &source, timeout).map_err(runtime_error)?;
        Ok(lag.as_secs_f64())
    }
}
