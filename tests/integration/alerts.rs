//! The PrometheusRule the operator guide ships (manifests/monitoring/oci-creds-alerts.yaml), checked
//! and unit-tested with the real `promtool` on series shaped like kube-state-metrics' and Flux's:
//! each alert fires in the situation it describes, and stays quiet otherwise.

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

const RULE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/manifests/monitoring/oci-creds-alerts.yaml"
);
const PROMTOOL: ocitool_adapters::tools::Tool = ocitool_adapters::tools::Tool {
    name: "promtool",
    install_hint: "run .ci/install-tools (it installs the pinned promtool into .tools/bin)",
};

const REFLECTS: &str = "annotation_reflector_v1_k8s_emberstack_com_reflects";
const REFLECTED_VERSION: &str = "annotation_reflector_v1_k8s_emberstack_com_reflected_version";
/// A realistic resourceVersion: large enough that a float formatted with an exponent would not match.
const SOURCE_VERSION: &str = "48213977";

/// The rule's `spec` (plain Prometheus rule groups), written where promtool can read it.
fn rule_groups(dir: &Path) -> serde_yaml::Value {
    let rule: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(RULE).unwrap()).unwrap();
    let spec = rule["spec"].clone();
    std::fs::write(
        dir.join("rules.yaml"),
        serde_yaml::to_string(&spec).unwrap(),
    )
    .unwrap();
    spec
}

fn promtool(dir: &Path, args: &[&str]) -> String {
    let out =
        Command::new(ocitool_adapters::tools::find(PROMTOOL).unwrap_or_else(|e| panic!("{e:#}")))
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?}:\n{text}");
    text
}

/// `name{labels}` as a promtool series selector.
fn series(name: &str, labels: &[(&str, &str)]) -> String {
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    format!("{name}{{{}}}", inner.join(","))
}

fn mirror(namespace: &str, version: &str) -> String {
    series(
        "kube_secret_annotations",
        &[
            ("namespace", namespace),
            ("secret", "oci-creds"),
            (REFLECTS, "flux-system/oci-creds"),
            (REFLECTED_VERSION, version),
        ],
    )
}

fn source_series() -> Vec<Value> {
    vec![
        json!({"series": series("kube_secret_info", &[("namespace", "flux-system"), ("secret", "oci-creds")]), "values": "1x15"}),
        json!({"series": series("kube_secret_metadata_resource_version", &[("namespace", "flux-system"), ("secret", "oci-creds")]), "values": format!("{SOURCE_VERSION}x15")}),
    ]
}

fn reflector_available(replicas: u32) -> Value {
    json!({"series": series("kube_deployment_status_replicas_available", &[("namespace", "reflector-system"), ("deployment", "reflector")]), "values": format!("{replicas}x15")})
}

/// The alert's annotations as Prometheus renders them for `labels` (`{{ $labels.x }}` only).
fn rendered_annotations(groups: &serde_yaml::Value, alert: &str, labels: &Value) -> Value {
    let rule = groups["groups"][0]["rules"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|r| r["alert"] == alert)
        .unwrap_or_else(|| panic!("no alert {alert}"));
    let mut out = BTreeMap::new();
    for (key, template) in rule["annotations"].as_mapping().unwrap() {
        let mut text = template.as_str().unwrap().to_string();
        for (name, value) in labels.as_object().unwrap() {
            text = text.replace(
                &format!("{{{{ $labels.{name} }}}}"),
                value.as_str().unwrap(),
            );
        }
        out.insert(key.as_str().unwrap().to_string(), text);
    }
    json!(out)
}

/// Expected firing alerts: labels (the rule's `severity` included).
fn fires(groups: &serde_yaml::Value, alert: &str, labels: &[Value]) -> Vec<Value> {
    labels
        .iter()
        .map(
            |l| json!({"exp_labels": l, "exp_annotations": rendered_annotations(groups, alert, l)}),
        )
        .collect()
}

fn check(eval_time: &str, alert: &str, exp_alerts: Vec<Value>) -> Value {
    json!({"eval_time": eval_time, "alertname": alert, "exp_alerts": exp_alerts})
}

#[test]
fn the_rule_is_valid_prometheus() {
    let dir = tempfile::tempdir().unwrap();
    rule_groups(dir.path());
    let out = promtool(dir.path(), &["check", "rules", "rules.yaml"]);
    assert!(out.contains("SUCCESS: 5 rules found"), "{out}");
}

#[test]
fn each_alert_fires_in_its_situation_and_only_there() {
    let dir = tempfile::tempdir().unwrap();
    let groups = rule_groups(dir.path());
    let stale_labels = json!({
        "namespace": "loki", "secret": "oci-creds", REFLECTS: "flux-system/oci-creds",
        REFLECTED_VERSION: "48213801", "reflected_version": "48213801", "severity": "warning",
    });
    let chart_labels = json!({
        "customresource_kind": "HelmChart", "exported_namespace": "keycloak", "name": "keycloak-keycloak",
        "ready": "False", "reason": "AuthenticationFailed", "severity": "critical",
    });
    let release_labels = json!({
        "customresource_kind": "HelmRelease", "exported_namespace": "keycloak", "name": "keycloak",
        "ready": "False", "reason": "SourceNotReady", "severity": "warning",
    });
    let series_of = |labels: &Value, name: &str| {
        let pairs: Vec<(String, String)> = labels
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| *k != "severity")
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
            .collect();
        let refs: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        json!({"series": series(name, &refs), "values": "1x15"})
    };

    // A cluster where one mirror lags, one chart cannot log in, and its release waits.
    let mut degraded = source_series();
    degraded.push(reflector_available(1));
    degraded.push(json!({"series": mirror("keycloak", SOURCE_VERSION), "values": "1x15"}));
    degraded.push(json!({"series": mirror("loki", "48213801"), "values": "1x15"}));
    degraded.push(series_of(&chart_labels, "gotk_resource_info"));
    degraded.push(series_of(&release_labels, "gotk_resource_info"));
    // A healthy chart in another namespace must not fire.
    degraded.push(json!({"series": series("gotk_resource_info", &[("customresource_kind", "HelmChart"), ("exported_namespace", "loki"), ("name", "loki-loki"), ("ready", "True"), ("reason", "ChartPullSucceeded")]), "values": "1x15"}));

    // Reflector down and the source gone: say so, and do not call every mirror stale.
    let outage = vec![
        reflector_available(0),
        json!({"series": mirror("loki", "48213801"), "values": "1x15"}),
    ];
    // No Reflector Deployment at all.
    let never_deployed = vec![source_series()[0].clone(), source_series()[1].clone()];

    let reflector =
        json!({"namespace": "reflector-system", "deployment": "reflector", "severity": "critical"});
    let source_missing =
        json!({"namespace": "flux-system", "secret": "oci-creds", "severity": "critical"});
    let tests = json!({
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": degraded,
                "alert_rule_test": [
                    check("4m", "OciCredsMirrorStale", vec![]),
                    check("6m", "OciCredsMirrorStale", fires(&groups, "OciCredsMirrorStale", &[stale_labels])),
                    check("6m", "FluxRegistryAuthenticationFailed", fires(&groups, "FluxRegistryAuthenticationFailed", &[chart_labels])),
                    check("6m", "FluxHelmReleaseSourceNotReady", vec![]),
                    check("11m", "FluxHelmReleaseSourceNotReady", fires(&groups, "FluxHelmReleaseSourceNotReady", &[release_labels])),
                    check("6m", "ReflectorUnavailable", vec![]),
                    check("6m", "OciCredsSourceMissing", vec![]),
                ],
            },
            {
                "interval": "1m",
                "input_series": outage,
                "alert_rule_test": [
                    check("6m", "ReflectorUnavailable", fires(&groups, "ReflectorUnavailable", std::slice::from_ref(&reflector))),
                    check("6m", "OciCredsSourceMissing", fires(&groups, "OciCredsSourceMissing", &[source_missing])),
                    check("6m", "OciCredsMirrorStale", vec![]),
                ],
            },
            {
                "interval": "1m",
                "input_series": never_deployed,
                "alert_rule_test": [
                    check("6m", "ReflectorUnavailable", fires(&groups, "ReflectorUnavailable", &[json!({"namespace": "reflector-system", "deployment": "reflector", "severity": "critical"})])),
                ],
            },
        ],
    });
    std::fs::write(
        dir.path().join("tests.yaml"),
        serde_yaml::to_string(&tests).unwrap(),
    )
    .unwrap();
    let out = promtool(dir.path(), &["test", "rules", "tests.yaml"]);
    assert!(out.contains("SUCCESS"), "{out}");
}
