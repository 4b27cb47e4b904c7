//! Who uses a registry Secret, read from what a Flux Kustomization builds: the rules that decide
//! which namespaces need a mirror of the consolidated source.
//!
//! A namespace needs the Secret (by name) when built output there has:
//! - a Flux `HelmRepository` with `spec.type: oci` and `spec.secretRef` (Flux docs, HelmRepository
//!   "Secret reference": for OCI repositories "Kubernetes secrets of type
//!   kubernetes.io/dockerconfigjson are also supported");
//! - a Flux `OCIRepository` with `spec.secretRef` ("The Secret must be of type
//!   kubernetes.io/dockerconfigjson", OCIRepository docs);
//! - a Flux `ImageRepository` (image.toolkit.fluxcd.io) with `spec.secretRef` (a
//!   dockerconfigjson Secret, ImageRepository docs);
//! - a ServiceAccount's `imagePullSecrets`, or a workload's pod `imagePullSecrets`;
//! - a Flux `HelmRelease` whose `spec.values` set `imagePullSecrets` or `global.imagePullSecrets`,
//!   entries `{name: x}` or plain strings (charts accept both: Bitnami's
//!   `common.images.renderPullSecrets` renders either; linkerd and cert-manager take the maps).
//!
//! An HTTPS `HelmRepository` or a `GitRepository` naming the Secret is a [`Use::WrongKind`]: Flux
//! reads `username`/`password` (or SSH keys) from those, so a dockerconfigjson gives them nothing.
//!
//! The namespace is the building Flux Kustomization's `targetNamespace`, else the object's own;
//! a HelmRelease's chart objects land in its `spec.targetNamespace` when set ("Defaults to the
//! namespace of the HelmRelease", HelmRelease docs). Pure: documents in, uses out; it never reads
//! files or runs builds (orchestration builds with flux and hands the documents over).

use crate::manifest;
use serde_yaml::Value;

const FLUX_SOURCE_GROUP: &str = "source.toolkit.fluxcd.io";
const FLUX_IMAGE_GROUP: &str = "image.toolkit.fluxcd.io";
const FLUX_HELM_GROUP: &str = "helm.toolkit.fluxcd.io";

/// How an object uses the Secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Use {
    /// It pulls from a registry with it: its namespace needs the Secret.
    Pulls,
    /// It names the Secret but cannot use a dockerconfigjson; the reason says what it needs.
    WrongKind(&'static str),
}

/// One object of built output that names the Secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumer {
    /// `Kind/name`, for messages.
    pub object: String,
    /// Where it uses the Secret; None when neither the Kustomization nor the object says.
    pub namespace: Option<String>,
    pub uses: Use,
}

const HTTPS_HELM: &str = "an HTTPS chart index (spec.type is not `oci`); Flux authenticates those only with \
     `username`/`password` keys. Point spec.secretRef at a basic-auth Secret, or use the registry's oci:// URL with type: oci";
const GIT: &str = "a GitRepository; Flux authenticates Git with `username`/`password` or SSH keys, not a \
     dockerconfigjson. Point spec.secretRef at a Git credentials Secret";

/// Every object of `docs` (one Flux Kustomization's build, applied with `target_namespace`) that
/// names `secret`.
pub fn consumers(docs: &[Value], target_namespace: Option<&str>, secret: &str) -> Vec<Consumer> {
    docs.iter()
        .filter_map(|doc| {
            let uses = uses(doc, secret)?;
            Some(Consumer {
                object: format!(
                    "{}/{}",
                    manifest::kind(doc).unwrap_or_default(),
                    manifest::name(doc).unwrap_or_default()
                ),
                namespace: namespace_of(doc, target_namespace),
                uses,
            })
        })
        .collect()
}

fn namespace_of(doc: &Value, target_namespace: Option<&str>) -> Option<String> {
    let release_target = manifest::is(doc, FLUX_HELM_GROUP, "HelmRelease")
        .then(|| manifest::str_at(doc, &["spec", "targetNamespace"]))
        .flatten();
    release_target
        .or(target_namespace)
        .or_else(|| manifest::namespace(doc))
        .filter(|ns| !ns.is_empty())
        .map(String::from)
}

/// How `doc` uses `secret`, if it names it.
fn uses(doc: &Value, secret: &str) -> Option<Use> {
    let secret_ref = || manifest::str_at(doc, &["spec", "secretRef", "name"]) == Some(secret);
    if manifest::is(doc, FLUX_SOURCE_GROUP, "HelmRepository") {
        let oci = manifest::str_at(doc, &["spec", "type"]) == Some("oci");
        return secret_ref().then_some(if oci {
            Use::Pulls
        } else {
            Use::WrongKind(HTTPS_HELM)
        });
    }
    if manifest::is(doc, FLUX_SOURCE_GROUP, "GitRepository") {
        return secret_ref().then_some(Use::WrongKind(GIT));
    }
    if manifest::is(doc, FLUX_SOURCE_GROUP, "OCIRepository")
        || manifest::is(doc, FLUX_IMAGE_GROUP, "ImageRepository")
    {
        return secret_ref().then_some(Use::Pulls);
    }
    if manifest::is(doc, FLUX_HELM_GROUP, "HelmRelease") {
        let values = ["imagePullSecrets", "global.imagePullSecrets"].map(|p| {
            let path: Vec<&str> = ["spec", "values"].into_iter().chain(p.split('.')).collect();
            names(manifest::at(doc, &path), secret)
        });
        return values.contains(&true).then_some(Use::Pulls);
    }
    pod_spec_path(doc)
        .is_some_and(|path| names(manifest::at(doc, &path), secret))
        .then_some(Use::Pulls)
}

/// Where the `imagePullSecrets` of a Pod, a workload's pod template or a ServiceAccount are.
fn pod_spec_path(doc: &Value) -> Option<Vec<&'static str>> {
    let template = ["spec", "template", "spec"].as_slice();
    let prefix: &[&str] = match (manifest::api_group(doc), manifest::kind(doc)?) {
        ("", "ServiceAccount") => &[],
        ("", "Pod") => &["spec"],
        ("", "ReplicationController") => template,
        ("apps", "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet") => template,
        ("batch", "Job") => template,
        ("batch", "CronJob") => &["spec", "jobTemplate", "spec", "template", "spec"],
        _ => return None,
    };
    Some([prefix, &["imagePullSecrets"]].concat())
}

/// Whether a list of pull secrets names `secret`: `{name: x}` entries or plain strings.
fn names(list: Option<&Value>, secret: &str) -> bool {
    list.and_then(Value::as_sequence).is_some_and(|entries| {
        entries
            .iter()
            .any(|e| e.as_str().or_else(|| manifest::str_at(e, &["name"])) == Some(secret))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(yaml: &str) -> Value {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn found(yaml: &str, target: Option<&str>) -> Vec<Consumer> {
        consumers(&[doc(yaml)], target, "oci-creds")
    }

    fn pulls_in(yaml: &str, target: Option<&str>) -> Option<String> {
        match found(yaml, target).as_slice() {
            [c] if c.uses == Use::Pulls => c.namespace.clone(),
            other => panic!("expected one pulling consumer, got {other:?} for\n{yaml}"),
        }
    }

    #[test]
    fn flux_sources_pull_with_their_secret_ref() {
        let oci = "apiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository\nmetadata: {name: cloud, namespace: a}\n\
                   spec: {type: oci, secretRef: {name: oci-creds}}\n";
        assert_eq!(pulls_in(oci, None).as_deref(), Some("a"));
        assert_eq!(
            pulls_in(oci, Some("rbac-system")).as_deref(),
            Some("rbac-system"),
            "targetNamespace wins over the object's namespace"
        );
        for kind in [
            "source.toolkit.fluxcd.io/v1beta2\nkind: OCIRepository",
            "image.toolkit.fluxcd.io/v1beta2\nkind: ImageRepository",
        ] {
            let yaml = format!(
                "apiVersion: {kind}\nmetadata: {{name: x, namespace: b}}\nspec: {{secretRef: {{name: oci-creds}}}}\n"
            );
            assert_eq!(pulls_in(&yaml, None).as_deref(), Some("b"), "{kind}");
        }
        let other = "apiVersion: source.toolkit.fluxcd.io/v1\nkind: OCIRepository\nmetadata: {name: x}\n\
                     spec: {secretRef: {name: other}}\n";
        assert!(found(other, None).is_empty());
    }

    #[test]
    fn https_helm_and_git_repositories_use_the_wrong_kind_of_secret() {
        for yaml in [
            "apiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository\nmetadata: {name: idx}\nspec: {url: 'https://x', secretRef: {name: oci-creds}}\n",
            "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata: {name: git}\nspec: {secretRef: {name: oci-creds}}\n",
        ] {
            let found = found(yaml, Some("ns"));
            assert!(
                matches!(
                    found.as_slice(),
                    [Consumer {
                        uses: Use::WrongKind(_),
                        ..
                    }]
                ),
                "{found:?}"
            );
        }
    }

    #[test]
    fn pod_templates_and_service_accounts_pull_with_image_pull_secrets() {
        let cases = [
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {template: {spec: {imagePullSecrets: [{name: oci-creds}]}}}\n",
            "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: c}\nspec: {jobTemplate: {spec: {template: {spec: {imagePullSecrets: [{name: oci-creds}]}}}}}\n",
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {imagePullSecrets: [{name: oci-creds}]}\n",
            "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: sa}\nimagePullSecrets: [{name: oci-creds}]\n",
        ];
        for yaml in cases {
            assert_eq!(pulls_in(yaml, Some("ns")).as_deref(), Some("ns"));
        }
        let elsewhere = "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: sa}\nimagePullSecrets: [{name: other}]\n";
        assert!(found(elsewhere, None).is_empty());
        let not_a_pod = "apiVersion: example.com/v1\nkind: Deployment\nmetadata: {name: d}\n\
                         spec: {template: {spec: {imagePullSecrets: [{name: oci-creds}]}}}\n";
        assert!(
            found(not_a_pod, None).is_empty(),
            "a CRD that reuses a kind name"
        );
    }

    #[test]
    fn helm_release_values_set_pull_secrets_as_maps_or_strings() {
        let release = |values: &str| {
            format!(
                "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata: {{name: r, namespace: flux-system}}\n\
                 spec: {{values: {values}}}\n"
            )
        };
        for values in [
            "{imagePullSecrets: [{name: oci-creds}]}",
            "{imagePullSecrets: [oci-creds]}",
            "{global: {imagePullSecrets: [{name: oci-creds}]}}",
            "{global: {imagePullSecrets: [other, oci-creds]}}",
        ] {
            assert_eq!(
                pulls_in(&release(values), None).as_deref(),
                Some("flux-system"),
                "{values}"
            );
        }
        assert!(found(&release("{image: {pullSecrets: [oci-creds]}}"), None).is_empty());
        let targeted = "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata: {name: r, namespace: flux-system}\n\
                        spec: {targetNamespace: apps, values: {imagePullSecrets: [oci-creds]}}\n";
        assert_eq!(
            pulls_in(targeted, Some("flux-system")).as_deref(),
            Some("apps"),
            "the chart's objects land in the release's targetNamespace"
        );
    }

    #[test]
    fn an_object_without_any_namespace_is_left_unplaced() {
        let yaml = "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: sa}\nimagePullSecrets: [oci-creds]\n";
        assert_eq!(pulls_in(yaml, None), None);
    }
}
