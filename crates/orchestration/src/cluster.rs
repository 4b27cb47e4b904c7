//! Gathering what cluster verification needs: a [`ClusterSnapshot`] from a live cluster (through
//! [`Kubectl`]) or from saved `kubectl get -o json` files, Reflector's log warnings, and the time
//! Reflector takes to catch up with a touched source.
//!
//! Judging the snapshot is [`ocitool_core::reflector::verify`]'s job, not this module's. Everything here is
//! read-only except [`measure_lag`], which only sets one probe annotation on the source Secret. It
//! never prints and never returns Secret data other than inside the snapshot handed to `verify`.

use anyhow::{Context, Result, bail};
use ocitool_adapters::kubectl::Kubectl;
use ocitool_core::reflector::SourceOptions;
use ocitool_core::reflector::model::ExistingSecret;
use ocitool_core::reflector::verify::{
    ClusterSnapshot, lag_caught_up, list_items, secret_from_json, summarise_logs,
};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Label selecting Reflector's pods (the Helm chart's standard name label).
const REFLECTOR_SELECTOR: &str = "app.kubernetes.io/name=reflector";
/// Annotation `measure_lag` sets on the source to make Reflector reconcile.
pub const LAG_PROBE: &str = "ocitool.io/lag-probe";
/// Longer than this between touching the source and every mirror catching up is a failure.
pub const LAG_LIMIT: Duration = Duration::from_secs(60);

/// The names [`snapshot_from_dir`] reads; a missing optional file stands for kubectl's NotFound.
pub const SNAPSHOT_FILES: [(&str, bool); 5] = [
    ("reflector-deployment.json", false),
    ("reflector-pods.json", true),
    ("source-secret.json", false),
    ("secrets.json", true),
    ("namespaces.json", true),
];

/// Run the kubectl gets `verify` needs for the source and Reflector `options` names (all
/// read-only). A missing deployment or source is an observation (the verify report says what to
/// do), not a failure.
pub fn snapshot(kubectl: &Kubectl, options: &SourceOptions) -> Result<ClusterSnapshot> {
    let reflector_ns = options.reflector_namespace();
    Ok(ClusterSnapshot {
        reflector_deployment: kubectl.get_json_if_exists(&[
            "deployment",
            "reflector",
            "-n",
            reflector_ns,
        ])?,
        reflector_pods: kubectl.get_json(&[
            "pods",
            "-n",
            reflector_ns,
            "-l",
            REFLECTOR_SELECTOR,
        ])?,
        source: kubectl.get_json_if_exists(&[
            "secret",
            options.source_name(),
            "-n",
            options.source_namespace(),
        ])?,
        secrets: mirrors_list(kubectl, options)?,
        namespaces: kubectl.get_json(&["namespaces"])?,
        options: options.clone(),
    })
}

fn source_secret(kubectl: &Kubectl, options: &SourceOptions) -> Result<Value> {
    kubectl.get_json(&[
        "secret",
        options.source_name(),
        "-n",
        options.source_namespace(),
    ])
}

/// Every Secret named like the source, in any namespace.
fn mirrors_list(kubectl: &Kubectl, options: &SourceOptions) -> Result<Value> {
    let selector = format!("--field-selector=metadata.name={}", options.source_name());
    kubectl.get_json(&["secrets", "-A", &selector])
}

/// A snapshot from saved `kubectl get -o json` output in `dir`, named as in [`SNAPSHOT_FILES`]:
/// the offline mode for tests and for reviewing output collected elsewhere. `options` names the
/// source and Reflector namespace the files were collected for.
pub fn snapshot_from_dir(dir: &Path, options: &SourceOptions) -> Result<ClusterSnapshot> {
    let read = |name: &str, required: bool| -> Result<Option<Value>> {
        let path = dir.join(name);
        if !path.exists() && !required {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "cannot read {}; the snapshot directory needs {}",
                path.display(),
                file_list()
            )
        })?;
        let value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", path.display()))?;
        Ok(Some(value))
    };
    let required = |name: &str| read(name, true).map(|v| v.expect("required files are present"));
    Ok(ClusterSnapshot {
        reflector_deployment: read(SNAPSHOT_FILES[0].0, false)?,
        reflector_pods: required(SNAPSHOT_FILES[1].0)?,
        source: read(SNAPSHOT_FILES[2].0, false)?,
        secrets: required(SNAPSHOT_FILES[3].0)?,
        namespaces: required(SNAPSHOT_FILES[4].0)?,
        options: options.clone(),
    })
}

fn file_list() -> String {
    SNAPSHOT_FILES
        .iter()
        .map(|(name, required)| {
            if *required {
                name.to_string()
            } else {
                format!("{name} (optional)")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Warning and error lines of Reflector's log since `since` (e.g. `"10m"`), summarised.
pub fn reflector_warnings(
    kubectl: &Kubectl,
    options: &SourceOptions,
    since: &str,
) -> Result<Vec<String>> {
    let text = kubectl.logs(options.reflector_namespace(), REFLECTOR_SELECTOR, since)?;
    Ok(summarise_logs(&text))
}

/// Touch the source with a probe annotation and wait until every mirror reflects its new
/// resourceVersion; the time that took. Fails after `timeout`, or when it took over [`LAG_LIMIT`].
pub fn measure_lag(
    kubectl: &Kubectl,
    options: &SourceOptions,
    timeout: Duration,
) -> Result<Duration> {
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    kubectl.annotate(
        options.source_namespace(),
        "secret",
        options.source_name(),
        LAG_PROBE,
        &stamp.to_string(),
    )?;
    let started = Instant::now();
    let version = secret_from_json(&source_secret(kubectl, options)?)?.resource_version;
    loop {
        let elapsed = started.elapsed();
        if lag_caught_up(&version, &mirrors(kubectl, options)?) {
            if elapsed > LAG_LIMIT {
                bail!(
                    "mirrors caught up after {elapsed:.1?}, over the {LAG_LIMIT:?} limit; check Reflector's load and logs"
                );
            }
            return Ok(elapsed);
        }
        if elapsed > timeout {
            bail!(
                "mirrors had not caught up with resourceVersion {version} after {timeout:?}; check `verify-cluster.rhai` findings and Reflector's logs"
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Every Secret named like the source outside its namespace, as the model sees it.
fn mirrors(kubectl: &Kubectl, options: &SourceOptions) -> Result<Vec<ExistingSecret>> {
    let list = mirrors_list(kubectl, options)?;
    list_items(&list)?
        .iter()
        .map(secret_from_json)
        .filter(|s| {
            s.as_ref()
                .map_or(true, |s| s.namespace != options.source_namespace())
        })
        .map(|s| {
            s.map(|s| ExistingSecret {
                namespace: s.namespace,
                name: s.name,
                annotations: s.annotations,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/kubectl");

    fn copy(dir: &Path, from: &str, to: &str) {
        std::fs::copy(Path::new(FIXTURES).join(from), dir.join(to)).unwrap();
    }

    #[test]
    fn absent_optional_files_read_as_not_found_and_required_ones_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let err = snapshot_from_dir(dir.path(), &SourceOptions::default()).unwrap_err();
        assert!(
            format!("{err:#}").contains("reflector-pods.json"),
            "{err:#}"
        );
        copy(
            dir.path(),
            "reflector-pods-healthy.json",
            "reflector-pods.json",
        );
        copy(dir.path(), "secrets-healthy.json", "secrets.json");
        copy(dir.path(), "namespaces-healthy.json", "namespaces.json");
        let snapshot = snapshot_from_dir(dir.path(), &SourceOptions::default()).unwrap();
        assert!(snapshot.source.is_none() && snapshot.reflector_deployment.is_none());
    }
}
