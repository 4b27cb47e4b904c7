//! Reflector (emberstack kubernetes-reflector, Helm chart 7.1.288): the annotations it reads, what it
//! does with them ([`model`]), the chart version and values that model holds for ([`chart`]), the
//! Flux manifests that deploy it ([`render`]) and the GitRepository a cluster applies them from
//! ([`base_repo`]); staging them into a fleet repo is `ocitool_orchestration::deploy`.
//!
//! This module speaks for Reflector's behaviour as its source defines it; it never talks to a
//! cluster (that is [`ocitool_adapters::kubectl`]) and never touches credentials' values.

pub mod base_repo;
pub mod chart;
pub mod model;
pub mod render;
pub mod verify;

/// Annotation prefix Reflector watches (`Annotations.Prefix` in Reflector's source).
pub const PREFIX: &str = "reflector.v1.k8s.emberstack.com";
/// The source permits mirrors at all. Alone it only allows hand-made mirrors.
pub const ALLOWED: &str = "reflector.v1.k8s.emberstack.com/reflection-allowed";
/// Namespaces (comma-separated regexes) a mirror may live in; empty or missing means all.
pub const ALLOWED_NAMESPACES: &str =
    "reflector.v1.k8s.emberstack.com/reflection-allowed-namespaces";
/// Reflector creates mirrors automatically; without it nothing is replicated.
pub const AUTO_ENABLED: &str = "reflector.v1.k8s.emberstack.com/reflection-auto-enabled";
/// Namespaces (comma-separated regexes) automatic mirrors are created in.
pub const AUTO_NAMESPACES: &str = "reflector.v1.k8s.emberstack.com/reflection-auto-namespaces";
/// On a mirror: `<namespace>/<name>` of its source.
pub const REFLECTS: &str = "reflector.v1.k8s.emberstack.com/reflects";
/// On a mirror: `"True"` when Reflector created it automatically.
pub const AUTO_REFLECTS: &str = "reflector.v1.k8s.emberstack.com/auto-reflects";
/// On a mirror: the source's `metadata.resourceVersion` it was copied from.
pub const REFLECTED_VERSION: &str = "reflector.v1.k8s.emberstack.com/reflected-version";
/// On a mirror: when it was last copied.
pub const REFLECTED_AT: &str = "reflector.v1.k8s.emberstack.com/reflected-at";

/// Where the consolidated source Secret lives and which Reflector mirrors it: the three names
/// consolidation, deployment, validation and cluster verification share, so a fleet that renames
/// one is handled the same way by every workflow. Valid by construction ([`SourceOptions::new`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceOptions {
    source_name: String,
    source_namespace: String,
    reflector_namespace: String,
}

/// The defaults: `flux-system/oci-creds`, mirrored by the Reflector in `reflector-system`.
pub const DEFAULT_SOURCE_NAME: &str = "oci-creds";
pub const DEFAULT_SOURCE_NAMESPACE: &str = "flux-system";
pub const DEFAULT_REFLECTOR_NAMESPACE: &str = "reflector-system";

impl Default for SourceOptions {
    fn default() -> Self {
        SourceOptions {
            source_name: DEFAULT_SOURCE_NAME.to_string(),
            source_namespace: DEFAULT_SOURCE_NAMESPACE.to_string(),
            reflector_namespace: DEFAULT_REFLECTOR_NAMESPACE.to_string(),
        }
    }
}

impl SourceOptions {
    /// Validated names; every problem at once, each naming its parameter.
    pub fn new(
        source_name: &str,
        source_namespace: &str,
        reflector_namespace: &str,
    ) -> anyhow::Result<Self> {
        let problems: Vec<String> = [
            render::check_dns_subdomain("source_name", source_name),
            render::check_dns_label("source_namespace", source_namespace),
            render::check_dns_label("reflector_namespace", reflector_namespace),
        ]
        .into_iter()
        .filter_map(Result::err)
        .collect();
        if !problems.is_empty() {
            anyhow::bail!("invalid source options:\n  - {}", problems.join("\n  - "));
        }
        Ok(SourceOptions {
            source_name: source_name.to_string(),
            source_namespace: source_namespace.to_string(),
            reflector_namespace: reflector_namespace.to_string(),
        })
    }

    /// Name of the source Secret and of every mirror.
    pub fn source_name(&self) -> &str {
        &self.source_name
    }

    /// Namespace of the source Secret.
    pub fn source_namespace(&self) -> &str {
        &self.source_namespace
    }

    /// Namespace Reflector runs in.
    pub fn reflector_namespace(&self) -> &str {
        &self.reflector_namespace
    }
}

impl std::fmt::Display for SourceOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{} (Reflector in {})",
            self.source_namespace, self.source_name, self.reflector_namespace
        )
    }
}

/// The four annotations a consolidated source Secret carries, for the given namespaces (sorted, deduplicated).
pub fn source_annotations(namespaces: &[String]) -> Vec<(&'static str, String)> {
    let mut sorted: Vec<&str> = namespaces.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    sorted.dedup();
    let list = sorted.join(",");
    vec![
        (ALLOWED, "true".to_string()),
        (ALLOWED_NAMESPACES, list.clone()),
        (AUTO_ENABLED, "true".to_string()),
        (AUTO_NAMESPACES, list),
    ]
}

/// Split a Reflector namespace-list annotation the way Reflector does: on `,`, trimmed, empties dropped.
pub fn split_namespace_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_options_name_every_invalid_parameter() {
        let err = SourceOptions::new("Bad_Name", "flux-system", "-x").unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("source_name \"Bad_Name\""), "{text}");
        assert!(text.contains("reflector_namespace \"-x\""), "{text}");
        assert!(!text.contains("source_namespace"), "{text}");
        assert_eq!(
            SourceOptions::new("oci-creds", "flux-system", "reflector-system").unwrap(),
            SourceOptions::default()
        );
    }

    #[test]
    fn source_annotations_sort_and_deduplicate_namespaces() {
        let ns = vec!["b".to_string(), "a".to_string(), "b".to_string()];
        let ann = source_annotations(&ns);
        assert_eq!(ann[1], (ALLOWED_NAMESPACES, "a,b".to_string()));
        assert_eq!(ann[3], (AUTO_NAMESPACES, "a,b".to_string()));
        assert_eq!(ann[0].1, "true");
        assert_eq!(ann[2].1, "true");
    }

    #[test]
    fn namespace_lists_are_split_trimmed_and_empties_dropped() {
        assert_eq!(split_namespace_list(" a, ,b ,,"), vec!["a", "b"]);
        assert!(split_namespace_list("").is_empty());
    }
}
