//! Other registry Secrets of an overlay: dockerconfigjson Secrets beside the per-service
//! `oci-creds.yaml` files (e.g. `registry-credentials.yaml`) that may carry the same registries.
//! Consolidation does not move them, so a rotation of the source leaves them on the old
//! credential; consolidate, validate and rotate report them, and rotate can rotate them too.
//!
//! Finding them needs no key: sops encrypts values, never keys, so a Secret's `.dockerconfigjson`
//! key is visible in its ciphertext. Which registries they carry is read from their decrypted
//! data, in memory only. This module never stages, prints or returns a credential's value.

use crate::repo::{self, Overlay};
use anyhow::Result;
use ocitool_adapters::changeset::Changeset;
use ocitool_core::creds::Credentials;
use ocitool_core::manifest;
use ocitool_core::repo_path::RepoPath;
use ocitool_core::secret::{self, DOCKERCONFIGJSON_KEY, FILE_NAME};
use serde_yaml::Value;

/// A dockerconfigjson Secret of the overlay that is neither a per-service `oci-creds.yaml` nor
/// the consolidated source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherSecret {
    pub path: RepoPath,
    pub secret_name: String,
    pub encrypted: bool,
}

impl OtherSecret {
    /// The file name without `.yaml`/`.yml`: `registry-credentials`.
    pub fn stem(&self) -> &str {
        let name = self.path.file_name().unwrap_or_default();
        name.strip_suffix(".yaml")
            .or_else(|| name.strip_suffix(".yml"))
            .unwrap_or(name)
    }

    /// Whether `name` (as `--set also=` gives it) names this Secret: its file stem or its
    /// `metadata.name`.
    pub fn is_named(&self, name: &str) -> bool {
        self.stem() == name || self.secret_name == name
    }
}

/// An [`OtherSecret`] with the credentials it carries, or why they could not be read.
#[derive(Debug, Clone)]
pub struct OtherCredentials {
    pub secret: OtherSecret,
    pub credentials: std::result::Result<Credentials, String>,
}

impl OtherCredentials {
    /// The registries of `of` that this Secret carries too (none when it could not be read).
    pub fn shared_registries(&self, of: &Credentials) -> Vec<String> {
        let Ok(mine) = &self.credentials else {
            return Vec::new();
        };
        of.registries()
            .into_iter()
            .filter(|r| mine.get(r).is_some())
            .collect()
    }
}

/// Whether `doc` is a Secret with a `.dockerconfigjson` value (in `data` or `stringData`).
fn is_dockerconfigjson_secret(doc: &Value) -> bool {
    manifest::is(doc, "", "Secret")
        && ["data", "stringData"].iter().any(|section| {
            doc.get(*section)
                .and_then(Value::as_mapping)
                .is_some_and(|m| m.contains_key(DOCKERCONFIGJSON_KEY))
        })
}

/// Every other dockerconfigjson Secret of `overlay`, in path order. Files named `oci-creds.yaml`
/// are the scan's (per-service) or the source; a file with several Secrets is left out, since
/// ocitool rewrites only single-Secret files.
pub fn find(cs: &Changeset, overlay: &Overlay) -> Result<Vec<OtherSecret>> {
    let idx = repo::index(cs, overlay)?;
    let mut found = Vec::new();
    for (path, docs) in &idx.documents {
        if path.file_name() == Some(FILE_NAME) {
            continue;
        }
        let Ok(doc) = secret::the_secret(path.as_str(), docs) else {
            continue;
        };
        if !is_dockerconfigjson_secret(doc) {
            continue;
        }
        found.push(OtherSecret {
            path: path.clone(),
            secret_name: secret::meta(path.as_str(), doc)?.name,
            encrypted: ocitool_core::sops_format::carries_sops_metadata(docs),
        });
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_secrets_are_named_by_file_stem_or_secret_name() {
        let other = OtherSecret {
            path: RepoPath::new("o/services/a/registry-credentials.yaml").unwrap(),
            secret_name: "harbor-pull".into(),
            encrypted: true,
        };
        assert_eq!(other.stem(), "registry-credentials");
        assert!(other.is_named("registry-credentials") && other.is_named("harbor-pull"));
        assert!(!other.is_named("oci-creds"));
    }

    #[test]
    fn only_secrets_with_a_dockerconfigjson_value_count() {
        let doc = |y: &str| serde_yaml::from_str::<Value>(y).unwrap();
        assert!(is_dockerconfigjson_secret(&doc(
            "apiVersion: v1\nkind: Secret\nstringData:\n  .dockerconfigjson: ENC[x]\n"
        )));
        assert!(!is_dockerconfigjson_secret(&doc(
            "apiVersion: v1\nkind: Secret\ndata:\n  token: ENC[x]\n"
        )));
        assert!(!is_dockerconfigjson_secret(&doc(
            "apiVersion: v1\nkind: ConfigMap\ndata:\n  .dockerconfigjson: x\n"
        )));
    }
}
