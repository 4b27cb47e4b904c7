//! What ocitool relies on in the Reflector Helm chart: the one chart version its mirror model is
//! taken from, and the chart values that would take away the Deployment that model describes.
//!
//! [`super::model`] is Reflector 7.1.288's behaviour, and `verify-cluster` expects what chart
//! 7.1.288 renders with its defaults: a long-running Deployment named `reflector` whose service
//! account may read Secrets, write mirrors and watch namespaces. This module refuses, with the
//! reason and the chart template it comes from, any version or value that would make that untrue.
//! It only judges parameters; it never renders (that is [`super::render`]) and never reads files.
//!
//! Source: emberstack/kubernetes-reflector at tag `v7.1.288`, `src/helm/reflector/` (the chart is
//! packaged from it with `--version` and `--app-version` 7.1.288, `.github/workflows/pipeline.yaml`).

use super::render::CHART_VERSION;
use serde_yaml::{Mapping, Value};

/// The chart's release name in ocitool's HelmRelease, and the Deployment name it gives.
const RELEASE_NAME: &str = "reflector";
/// The chart's `name` (Chart.yaml), which `reflector.fullname` falls back to.
const CHART_NAME: &str = "reflector";

/// `chart_version` must be [`CHART_VERSION`]; Err is the message naming the parameter.
pub fn check_version(param: &str, version: &str) -> Result<(), String> {
    if version == CHART_VERSION {
        return Ok(());
    }
    Err(format!(
        "{param} {version:?} is refused: ocitool supports the Reflector chart {CHART_VERSION} only. Its mirror \
         rules (which annotations Reflector reads, which namespaces get a mirror, when an existing Secret \
         blocks one) are taken from Reflector {CHART_VERSION}'s source, and another release may do otherwise \
         (the 9.x line adds label selectors, for one). Leave {param} out to use {CHART_VERSION}"
    ))
}

/// Every value in `values` (the HelmRelease's values, over the chart's defaults) that would remove
/// the Deployment, stop it mirroring, or run another Reflector than [`CHART_VERSION`]; one message each.
pub fn check_values(values: &Mapping) -> Vec<String> {
    [
        cron_replaces_the_deployment(values),
        no_pod_runs(values),
        no_rbac(values),
        renamed_deployment(values),
        other_image_tag(values),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The value at a dotted path, or None when the values leave it to the chart's default.
fn at<'a>(values: &'a Mapping, path: &[&str]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let value = values.get(*first)?;
    match rest {
        [] => Some(value),
        _ => at(value.as_mapping()?, rest),
    }
}

/// How a Go template `if` reads a value: "The empty values are false, 0, any nil pointer or
/// interface value, and any array, slice, map, or string of length zero" (Go text/template docs).
/// So the string "false" is true to Helm.
fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Sequence(s) => !s.is_empty(),
        Value::Mapping(m) => !m.is_empty(),
        Value::Tagged(t) => truthy(&t.value),
    }
}

/// A number as the template prints it into `replicas:` (a quoted number prints the same digits).
fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn shown(value: &Value) -> String {
    serde_yaml::to_string(value)
        .map(|s| s.trim_end().to_string())
        .unwrap_or_else(|_| format!("{value:?}"))
}

/// templates/deployment.yaml is wrapped in `{{- if not .Values.cron.enabled }}`, and
/// templates/cron.yaml renders a CronJob instead, which runs the same watcher for at most
/// `cron.activeDeadlineSeconds` every `cron.schedule`.
fn cron_replaces_the_deployment(values: &Mapping) -> Option<String> {
    let enabled = at(values, &["cron", "enabled"]).filter(|v| truthy(v))?;
    Some(format!(
        "values: cron.enabled: {} removes Reflector's Deployment: in chart {CHART_VERSION} \
         templates/deployment.yaml renders only `if not .Values.cron.enabled` and templates/cron.yaml \
         runs Reflector as a CronJob instead, watching for at most cron.activeDeadlineSeconds every \
         cron.schedule. Mirrors would then be created and updated only while a job runs (a rotated \
         password reaches the namespaces up to a schedule later), and verify-cluster finds no \
         Deployment. Remove cron.enabled from the values file",
        shown(enabled)
    ))
}

/// templates/deployment.yaml sets `replicas: {{ .Values.replicaCount }}` unless
/// `autoscaling.enabled`, when templates/hpa.yaml sets `minReplicas: {{ .Values.autoscaling.minReplicas }}`.
fn no_pod_runs(values: &Mapping) -> Option<String> {
    let autoscaling = at(values, &["autoscaling", "enabled"]).is_some_and(truthy);
    let (key, template) = if autoscaling {
        (
            "autoscaling.minReplicas",
            "templates/hpa.yaml sets `minReplicas: {{ .Values.autoscaling.minReplicas }}`",
        )
    } else {
        (
            "replicaCount",
            "templates/deployment.yaml sets `replicas: {{ .Values.replicaCount }}`",
        )
    };
    let path: Vec<&str> = key.split('.').collect();
    let value = at(values, &path)?;
    let count = number(value)?;
    (count < 1.0).then(|| {
        format!(
            "values: {key}: {} leaves Reflector without a running pod ({template} in chart \
             {CHART_VERSION}), so nothing would copy the source Secret. Use at least 1",
            shown(value)
        )
    })
}

/// templates/clusterRole.yaml and clusterRoleBinding.yaml render only `if .Values.rbac.enabled`;
/// the ClusterRole grants `*` on secrets and configmaps and `watch`, `list` on namespaces.
fn no_rbac(values: &Mapping) -> Option<String> {
    let enabled = at(values, &["rbac", "enabled"]).filter(|v| !truthy(v))?;
    Some(format!(
        "values: rbac.enabled: {} removes the ClusterRole and ClusterRoleBinding that let Reflector \
         read the source Secret, write mirrors and watch namespaces (chart {CHART_VERSION} \
         templates/clusterRole.yaml and clusterRoleBinding.yaml render only `if .Values.rbac.enabled`). \
         Remove rbac.enabled from the values file",
        shown(enabled)
    ))
}

/// The Deployment is named by `reflector.fullname` (templates/_helpers.tpl): `fullnameOverride`
/// when set, else the release name when it contains `nameOverride` (default: the chart name),
/// else `<release>-<nameOverride>`; truncated to 63 characters and trimmed of a trailing `-`.
fn fullname(values: &Mapping) -> String {
    let string = |key: &str| {
        at(values, &[key])
            .filter(|v| truthy(v))
            .map(|v| v.as_str().map_or_else(|| shown(v), str::to_string))
    };
    let name = match string("fullnameOverride") {
        Some(full) => full,
        None => {
            let name = string("nameOverride").unwrap_or_else(|| CHART_NAME.to_string());
            if RELEASE_NAME.contains(&name) {
                RELEASE_NAME.to_string()
            } else {
                format!("{RELEASE_NAME}-{name}")
            }
        }
    };
    let truncated: String = name.chars().take(63).collect();
    // Sprig's trimSuffix is Go's strings.TrimSuffix: one `-` at most.
    truncated
        .strip_suffix('-')
        .unwrap_or(&truncated)
        .to_string()
}

fn renamed_deployment(values: &Mapping) -> Option<String> {
    let name = fullname(values);
    (name != RELEASE_NAME).then(|| {
        format!(
            "values: nameOverride/fullnameOverride would name Reflector's Deployment `{name}` \
             (reflector.fullname in chart {CHART_VERSION} templates/_helpers.tpl), but verify-cluster \
             checks the Deployment `{RELEASE_NAME}`. Remove nameOverride and fullnameOverride from \
             the values file"
        )
    })
}

/// The container image is `{{ .Values.image.repository }}:{{ .Values.image.tag | default
/// .Chart.AppVersion }}` (templates/deployment.yaml), and the appVersion is the chart version.
/// Another repository (a registry mirror) is fine; another tag runs another Reflector.
fn other_image_tag(values: &Mapping) -> Option<String> {
    let tag = at(values, &["image", "tag"]).filter(|v| truthy(v))?;
    let text = tag.as_str().map_or_else(|| shown(tag), str::to_string);
    let pinned = text
        .strip_prefix(CHART_VERSION)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('@'));
    (!pinned).then(|| {
        format!(
            "values: image.tag: {} would run another Reflector than {CHART_VERSION} (the chart's \
             appVersion, its default tag), whose mirror rules ocitool does not know. Remove image.tag \
             (or pin {CHART_VERSION}, optionally with @sha256:…); image.repository may point at a mirror",
            shown(tag)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(yaml: &str) -> Mapping {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn refused(yaml: &str) -> Vec<String> {
        check_values(&values(yaml))
    }

    #[test]
    fn the_defaults_and_harmless_values_pass() {
        for ok in [
            "{}",
            "rbac: {enabled: true}",
            "cron: {enabled: false, schedule: '*/5 * * * *'}",
            "replicaCount: 2",
            "autoscaling: {enabled: true, minReplicas: 2}",
            "autoscaling: {enabled: false, minReplicas: 0}",
            "nameOverride: reflector",
            "nameOverride: refl",
            "fullnameOverride: reflector",
            "image: {repository: mirror.example/emberstack/kubernetes-reflector, tag: ''}",
            "image: {tag: 7.1.288}",
            "image: {tag: '7.1.288@sha256:0123'}",
        ] {
            assert!(refused(ok).is_empty(), "{ok}: {:?}", refused(ok));
        }
    }

    #[test]
    fn cron_is_refused_with_helms_truthiness() {
        for bad in [
            "cron: {enabled: true}",
            "cron: {enabled: 'false'}",
            "cron: {enabled: 1}",
        ] {
            let found = refused(bad);
            assert_eq!(found.len(), 1, "{bad}: {found:?}");
            assert!(
                found[0].contains("if not .Values.cron.enabled"),
                "{}",
                found[0]
            );
        }
    }

    #[test]
    fn zero_replicas_are_refused_by_the_key_the_template_reads() {
        let found = refused("replicaCount: 0");
        assert!(
            found[0].starts_with("values: replicaCount: 0 leaves"),
            "{found:?}"
        );
        let found = refused("replicaCount: '0'");
        assert_eq!(found.len(), 1, "{found:?}");
        let found = refused("autoscaling: {enabled: true, minReplicas: 0}\nreplicaCount: 0");
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("autoscaling.minReplicas: 0"), "{found:?}");
    }

    #[test]
    fn rbac_off_renames_and_other_tags_are_refused() {
        assert!(refused("rbac: {enabled: false}")[0].contains("clusterRole.yaml"));
        assert!(refused("rbac: {enabled: ''}")[0].contains("rbac.enabled: ''"));
        for (bad, name) in [
            ("fullnameOverride: mirrors", "mirrors"),
            ("nameOverride: mirror", "reflector-mirror"),
        ] {
            let found = refused(bad);
            assert!(
                found[0].contains(&format!("Deployment `{name}`")),
                "{found:?}"
            );
        }
        let found = refused("image: {tag: 9.1.0}");
        assert!(
            found[0].starts_with("values: image.tag: 9.1.0 would run"),
            "{found:?}"
        );
        assert_eq!(refused("image: {tag: 7.1.2880}").len(), 1);
    }

    #[test]
    fn the_helpers_fullname_rules_are_followed() {
        assert_eq!(fullname(&values("{}")), "reflector");
        assert_eq!(fullname(&values("nameOverride: flect")), "reflector");
        assert_eq!(fullname(&values("nameOverride: x")), "reflector-x");
        let long = format!("fullnameOverride: {}-", "a".repeat(62));
        assert_eq!(fullname(&values(&long)), "a".repeat(62));
    }

    #[test]
    fn only_the_pinned_version_passes() {
        assert!(check_version("chart_version", CHART_VERSION).is_ok());
        let err = check_version("chart_version", "7.2.0").unwrap_err();
        assert!(
            err.starts_with("chart_version \"7.2.0\" is refused"),
            "{err}"
        );
        assert!(err.contains("Leave chart_version out"), "{err}");
    }
}
