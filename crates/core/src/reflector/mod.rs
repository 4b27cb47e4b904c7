//! Reflector (emberstack kubernetes-reflector, Helm chart 7.1.288): the annotations it reads, what it
//! does with them ([`model`]), the Flux manifests that deploy it ([`render`])
//! and staging them into a fleet repo ([`deploy`]).
//!
//! This module speaks for Reflector's behaviour as its source defines it; it never talks to a
//! cluster (that is [`ocitool_adapters::kubectl`]) and never touches credentials' values.

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
