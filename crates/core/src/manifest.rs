//! Reading Kubernetes manifests: multi-document YAML files as generic `serde_yaml::Value`s, and
//! typed access to the few fields ocitool needs (`kind`, `apiVersion`, `metadata`, nested strings).
//!
//! Reading only: files are edited by [`crate::kustomize`] (format-preserving) or written whole.
//! Errors always name the file, because a platform engineer reads them against a repo of hundreds.

use anyhow::{Context, Result};
use serde::Deserialize;
use serde_yaml::Value;

/// The UTF-8 byte order mark some editors (Windows Notepad, VS Code "UTF-8 with BOM") write first.
pub const BOM: char = '\u{feff}';

/// Every non-empty document of a (possibly multi-document) YAML text. `origin` names the file in errors.
/// A leading byte order mark is accepted (YAML 1.2 §5.2 allows one at the start of a stream).
pub fn parse_documents(origin: &str, text: &str) -> Result<Vec<Value>> {
    let text = text.strip_prefix(BOM).unwrap_or(text);
    let mut docs = Vec::new();
    for (index, de) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let value = Value::deserialize(de).with_context(|| {
            format!(
                "{origin}: document {} is not valid YAML; fix the syntax and run again",
                index + 1
            )
        })?;
        if !value.is_null() {
            docs.push(value);
        }
    }
    Ok(docs)
}

/// The string at `path` inside `value` (`["spec", "path"]`), if every step exists and the leaf is a string.
pub fn str_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    at(value, path)?.as_str()
}

/// The value at `path` inside `value`, if every step exists.
pub fn at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, key| v.get(*key))
}

pub fn kind(doc: &Value) -> Option<&str> {
    str_at(doc, &["kind"])
}

pub fn api_version(doc: &Value) -> Option<&str> {
    str_at(doc, &["apiVersion"])
}

/// The API group of `apiVersion` (`kustomize.toolkit.fluxcd.io/v1` → `kustomize.toolkit.fluxcd.io`, `v1` → "").
pub fn api_group(doc: &Value) -> &str {
    api_version(doc)
        .and_then(|v| v.rsplit_once('/'))
        .map(|(g, _)| g)
        .unwrap_or("")
}

pub fn name(doc: &Value) -> Option<&str> {
    str_at(doc, &["metadata", "name"])
}

pub fn namespace(doc: &Value) -> Option<&str> {
    str_at(doc, &["metadata", "namespace"])
}

/// True for a document of `kind` in API group `group` ("" for the core group).
pub fn is(doc: &Value, group: &str, kind_name: &str) -> bool {
    kind(doc) == Some(kind_name) && api_group(doc) == group
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_multi_document_files_and_skips_empty_documents() {
        let docs = parse_documents(
            "x.yaml",
            "---\na: 1\n---\n---\nkind: Secret\napiVersion: v1\n",
        )
        .unwrap();
        assert_eq!(docs.len(), 2);
        assert!(is(&docs[1], "", "Secret"));
    }

    #[test]
    fn a_byte_order_mark_is_not_content() {
        let with_bom = "\u{feff}---\nkind: Secret\n---\nkind: B\n";
        let docs = parse_documents("x.yaml", with_bom).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(kind(&docs[0]), Some("Secret"));
        assert_eq!(docs, parse_documents("x.yaml", &with_bom[3..]).unwrap());
    }

    #[test]
    fn malformed_yaml_names_the_file() {
        let err = parse_documents("svc/oci-creds.yaml", "a: [1,\n").unwrap_err();
        assert!(format!("{err:#}").contains("svc/oci-creds.yaml"));
    }

    #[test]
    fn api_group_of_core_and_grouped_kinds() {
        let docs = parse_documents(
            "k.yaml",
            "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nspec:\n  path: ./a\n",
        )
        .unwrap();
        assert_eq!(api_group(&docs[0]), "kustomize.toolkit.fluxcd.io");
        assert_eq!(str_at(&docs[0], &["spec", "path"]), Some("./a"));
        assert!(is(&docs[0], "kustomize.toolkit.fluxcd.io", "Kustomization"));
    }
}
