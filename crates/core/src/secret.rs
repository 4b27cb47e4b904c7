//! Kubernetes Secret manifests that carry registry credentials: reading them into
//! [`Credentials`], and rendering the consolidated source Secret.
//!
//! Input is the *decrypted* text sops hands back; output is plaintext YAML that goes straight to
//! `sops encrypt` on standard input ([`ocitool_adapters::sops`]). This module never writes files and never
//! puts a value into an error message: errors name the file and the field.

use crate::creds::Credentials;
use crate::manifest;
use crate::reflector;
use crate::sops_format;
use anyhow::{Context, Result, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_yaml::{Mapping, Value};
use std::collections::BTreeMap;

pub const DOCKERCONFIGJSON_TYPE: &str = "kubernetes.io/dockerconfigjson";
pub const DOCKERCONFIGJSON_KEY: &str = ".dockerconfigjson";
/// The namespace of the consolidated source Secret.
pub const SOURCE_NAMESPACE: &str = "flux-system";
/// File name of every credentials file, per service and consolidated.
pub const FILE_NAME: &str = "oci-creds.yaml";

/// The parts of a Secret manifest that are not secret: readable from an encrypted file too, as long
/// as sops left them unencrypted (`encrypted_regex: ^(data|stringData)$`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SecretMeta {
    pub name: String,
    pub namespace: Option<String>,
    pub type_: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

/// Which shape of credential Secret a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialForm {
    DockerConfigJson,
    /// `username`/`password` keys (Opaque or kubernetes.io/basic-auth), which Flux accepts for OCI
    /// HelmRepositories; the registry comes from the repository URL.
    BasicAuth,
}

/// The single Secret document of a credentials file, or an error naming the file.
pub fn secret_document(origin: &str, text: &str) -> Result<Value> {
    let docs = manifest::parse_documents(origin, text)?;
    the_secret(origin, &docs).cloned()
}

/// The single Secret among already-parsed documents, or an error naming the file.
pub fn the_secret<'a>(origin: &str, docs: &'a [Value]) -> Result<&'a Value> {
    let mut secrets = docs.iter().filter(|d| manifest::is(d, "", "Secret"));
    let secret = secrets.next().with_context(|| {
        format!("{origin}: no `kind: Secret` document (apiVersion v1) in this file")
    })?;
    if secrets.next().is_some() {
        bail!(
            "{origin}: more than one Secret in this file; ocitool expects exactly one per oci-creds.yaml"
        );
    }
    Ok(secret)
}

pub fn meta(origin: &str, secret: &Value) -> Result<SecretMeta> {
    let string_map = |path: &[&str]| -> BTreeMap<String, String> {
        manifest::at(secret, path)
            .and_then(Value::as_mapping)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.as_str()?.to_string(), scalar_string(v)?)))
                    .collect()
            })
            .unwrap_or_default()
    };
    Ok(SecretMeta {
        name: manifest::name(secret)
            .with_context(|| format!("{origin}: the Secret has no metadata.name"))?
            .to_string(),
        namespace: manifest::namespace(secret).map(String::from),
        type_: manifest::str_at(secret, &["type"])
            .unwrap_or("Opaque")
            .to_string(),
        labels: string_map(&["metadata", "labels"]),
        annotations: string_map(&["metadata", "annotations"]),
    })
}

fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Decoded `data` overlaid with `stringData`, as the API server merges them (stringData wins).
fn secret_values(origin: &str, secret: &Value) -> Result<BTreeMap<String, Vec<u8>>> {
    let mut values = BTreeMap::new();
    if let Some(data) = secret.get("data").and_then(Value::as_mapping) {
        for (key, value) in data {
            let key = key.as_str().unwrap_or_default().to_string();
            let encoded = value.as_str().unwrap_or_default();
            crate::redact::register(encoded.trim());
            let decoded = BASE64
                .decode(encoded.trim())
                .with_context(|| format!("{origin}: data.{key} is not valid base64"))?;
            values.insert(key, decoded);
        }
    }
    if let Some(data) = secret.get("stringData").and_then(Value::as_mapping) {
        for (key, value) in data {
            let key = key.as_str().unwrap_or_default().to_string();
            let text = scalar_string(value).unwrap_or_default();
            crate::redact::register(&text);
            values.insert(key, text.into_bytes());
        }
    }
    Ok(values)
}

/// The form of a decrypted credentials Secret, or an error saying what is wrong with its type.
pub fn form(
    origin: &str,
    meta: &SecretMeta,
    values: &BTreeMap<String, Vec<u8>>,
) -> Result<CredentialForm> {
    let has = |k: &str| values.contains_key(k);
    match meta.type_.as_str() {
        DOCKERCONFIGJSON_TYPE if has(DOCKERCONFIGJSON_KEY) => Ok(CredentialForm::DockerConfigJson),
        DOCKERCONFIGJSON_TYPE => {
            bail!("{origin}: type {DOCKERCONFIGJSON_TYPE} but no `{DOCKERCONFIGJSON_KEY}` key")
        }
        "Opaque" | "kubernetes.io/basic-auth" if has("username") && has("password") => {
            Ok(CredentialForm::BasicAuth)
        }
        other => bail!(
            "{origin}: Secret type `{other}` with keys [{}] is not a registry credential; expected type \
             {DOCKERCONFIGJSON_TYPE} with `{DOCKERCONFIGJSON_KEY}`, or Opaque with `username` and `password`",
            values.keys().cloned().collect::<Vec<_>>().join(", ")
        ),
    }
}

/// Read the credentials of a decrypted credentials Secret. `basic_auth_registry` is the registry
/// host a basic-auth Secret is for (from the `oci://` URL that references it); it is required for
/// that form and ignored otherwise.
pub fn read_credentials(
    origin: &str,
    plaintext: &str,
    basic_auth_registry: Option<&str>,
) -> Result<Credentials> {
    let secret = secret_document(origin, plaintext)?;
    let meta = meta(origin, &secret)?;
    let values = secret_values(origin, &secret)?;
    let utf8 = |key: &str| {
        String::from_utf8(values[key].clone())
            .with_context(|| format!("{origin}: {key} is not UTF-8"))
    };
    match form(origin, &meta, &values)? {
        CredentialForm::DockerConfigJson => {
            Credentials::from_dockerconfigjson(origin, &values[DOCKERCONFIGJSON_KEY])
        }
        CredentialForm::BasicAuth => {
            let Some(registry) = basic_auth_registry else {
                bail!(
                    "{origin}: a username/password Secret does not say which registry it is for, and no \
                     HelmRepository/OCIRepository with an oci:// URL in the same directory references `{}`; \
                     add `secretRef: {{name: {}}}` to that repository, or convert the Secret with \
                     `kubectl create secret docker-registry --docker-server=<registry>`",
                    meta.name,
                    meta.name
                );
            };
            Ok(Credentials::from_basic_auth(
                origin,
                registry,
                &utf8("username")?,
                &utf8("password")?,
            ))
        }
    }
}

/// What the consolidated source Secret should say: everything but the values is visible in git.
///
/// Its namespaces are always sorted, deduplicated and valid Reflector namespace-list entries (an
/// RFC 1123 name or a pattern without `,` or whitespace): [`SourceSpec::new`] is the only way in,
/// so no caller can write an annotation Reflector would split differently than we meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSpec {
    name: String,
    namespace: String,
    namespaces: Vec<String>,
    pub credentials: Credentials,
    /// Labels and annotations of an existing source to keep (the four Reflector keys are always set).
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// For a spec read from an existing Secret: every annotation exactly as found, so a source
    /// missing a Reflector annotation is seen to differ from what ocitool would write.
    found_annotations: Option<BTreeMap<String, String>>,
}

/// Sorted, deduplicated, and each entry one Reflector can read back as written: it splits the
/// list on `,` and trims (see [`reflector::split_namespace_list`]), then matches each entry as a
/// regex (Reflector's `PatternList`).
fn namespace_list(mut namespaces: Vec<String>) -> Result<Vec<String>> {
    for ns in &namespaces {
        let splits = ns.is_empty() || ns.contains(',') || ns.chars().any(char::is_whitespace);
        if splits || regex::Regex::new(ns).is_err() {
            bail!(
                "namespace {ns:?} cannot be listed in a Reflector annotation: use a namespace name \
                 (or a regex) without commas or whitespace"
            );
        }
    }
    namespaces.sort();
    namespaces.dedup();
    Ok(namespaces)
}

impl SourceSpec {
    /// The source `options` names, for `namespaces` (sorted and deduplicated here; an invalid
    /// entry is an error), carrying `credentials`.
    pub fn new(
        options: &reflector::SourceOptions,
        namespaces: Vec<String>,
        credentials: Credentials,
    ) -> Result<Self> {
        Ok(SourceSpec {
            name: options.source_name().to_string(),
            namespace: options.source_namespace().to_string(),
            namespaces: namespace_list(namespaces)?,
            credentials,
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            found_annotations: None,
        })
    }

    /// Secret name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Secret namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The namespaces Reflector mirrors into: sorted, deduplicated.
    pub fn namespaces(&self) -> &[String] {
        &self.namespaces
    }

    /// For a spec read from an existing Secret, every annotation exactly as found.
    pub fn found_annotations(&self) -> Option<&BTreeMap<String, String>> {
        self.found_annotations.as_ref()
    }

    /// This spec with the labels and extra annotations of `existing` (an earlier source).
    pub fn keeping_metadata_of(mut self, existing: &SourceSpec) -> Self {
        self.labels = existing.labels.clone();
        self.annotations = existing.annotations.clone();
        self
    }

    /// This spec carrying `credentials` instead, keeping name, namespaces, labels and annotations
    /// (what a rotation changes and nothing else).
    pub fn with_credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = credentials;
        self
    }

    /// True when this spec, read from an existing Secret, already says everything `desired`
    /// would write (credentials compared by value, not by origin).
    pub fn already_says(&self, desired: &SourceSpec) -> bool {
        let annotations = self
            .found_annotations
            .clone()
            .unwrap_or_else(|| self.all_annotations());
        self.credentials.clone().with_origin("") == desired.credentials.clone().with_origin("")
            && self.name == desired.name
            && self.namespace == desired.namespace
            && self.labels == desired.labels
            && annotations == desired.all_annotations()
    }

    /// The full annotation set: kept ones, overridden by the four Reflector annotations.
    pub fn all_annotations(&self) -> BTreeMap<String, String> {
        let mut all = self.annotations.clone();
        for (key, value) in reflector::source_annotations(&self.namespaces) {
            all.insert(key.to_string(), value);
        }
        all
    }

    /// The plaintext manifest, for sops' standard input only (see [`encrypt_source`]).
    pub(crate) fn to_plaintext_yaml(&self) -> String {
        let string_map = |m: &BTreeMap<String, String>| -> Value {
            Value::Mapping(
                m.iter()
                    .map(|(k, v)| (Value::from(k.as_str()), Value::from(v.as_str())))
                    .collect(),
            )
        };
        let mut metadata = Mapping::new();
        metadata.insert("name".into(), self.name.as_str().into());
        metadata.insert("namespace".into(), self.namespace.as_str().into());
        if !self.labels.is_empty() {
            metadata.insert("labels".into(), string_map(&self.labels));
        }
        metadata.insert("annotations".into(), string_map(&self.all_annotations()));
        let encoded = BASE64.encode(self.credentials.to_dockerconfigjson());
        crate::redact::register(&encoded);
        let mut data = Mapping::new();
        data.insert(DOCKERCONFIGJSON_KEY.into(), encoded.into());
        let mut doc = Mapping::new();
        doc.insert("apiVersion".into(), "v1".into());
        doc.insert("kind".into(), "Secret".into());
        doc.insert("metadata".into(), Value::Mapping(metadata));
        doc.insert("type".into(), DOCKERCONFIGJSON_TYPE.into());
        doc.insert("data".into(), Value::Mapping(data));
        serde_yaml::to_string(&doc).expect("a mapping of strings always serializes")
    }
}

/// An existing source Secret, decrypted: its spec as ocitool would re-render it.
pub fn read_source(origin: &str, plaintext: &str) -> Result<SourceSpec> {
    let secret = secret_document(origin, plaintext)?;
    let meta = meta(origin, &secret)?;
    if meta.type_ != DOCKERCONFIGJSON_TYPE {
        bail!(
            "{origin}: the source Secret must have type {DOCKERCONFIGJSON_TYPE}, found `{}`",
            meta.type_
        );
    }
    let credentials = read_credentials(origin, plaintext, None)?;
    let namespaces: Vec<String> = [reflector::ALLOWED_NAMESPACES, reflector::AUTO_NAMESPACES]
        .iter()
        .filter_map(|key| meta.annotations.get(*key))
        .flat_map(|list| reflector::split_namespace_list(list))
        .collect();
    let namespaces = namespace_list(namespaces).with_context(|| origin.to_string())?;
    let reflector_keys = [
        reflector::ALLOWED,
        reflector::ALLOWED_NAMESPACES,
        reflector::AUTO_ENABLED,
        reflector::AUTO_NAMESPACES,
    ];
    let annotations = meta
        .annotations
        .iter()
        .filter(|(k, _)| !reflector_keys.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Ok(SourceSpec {
        name: meta.name,
        namespace: meta
            .namespace
            .unwrap_or_else(|| SOURCE_NAMESPACE.to_string()),
        namespaces,
        credentials,
        labels: meta.labels,
        annotations,
        found_annotations: Some(meta.annotations),
    })
}

/// A decrypted dockerconfigjson Secret carrying `credentials` instead, everything else kept:
/// the value stays in the section that held it (`data` base64-encoded, or `stringData`). For
/// sops' standard input only. Errors name the file, never a value.
pub fn with_dockerconfigjson(
    origin: &str,
    plaintext: &str,
    credentials: &Credentials,
) -> Result<String> {
    let mut secret = secret_document(origin, plaintext)?;
    let json = credentials.to_dockerconfigjson();
    let in_string_data = secret
        .get("stringData")
        .and_then(Value::as_mapping)
        .is_some_and(|m| m.contains_key(DOCKERCONFIGJSON_KEY));
    let (section, value) = if in_string_data {
        ("stringData", json)
    } else {
        ("data", BASE64.encode(json))
    };
    crate::redact::register(&value);
    let Some(values) = secret.get_mut(section).and_then(Value::as_mapping_mut) else {
        bail!(
            "{origin}: the Secret has no `data` with `{DOCKERCONFIGJSON_KEY}`; it is not a dockerconfigjson Secret"
        );
    };
    values.insert(DOCKERCONFIGJSON_KEY.into(), value.into());
    Ok(serde_yaml::to_string(&secret).expect("a parsed document serializes"))
}

/// Whatever turns a plaintext manifest into ciphertext for a repo-relative path and back (the sops
/// adapter). The core renders plaintext only into one of these, so it never leaves through any
/// other door.
pub trait Cipher {
    fn encrypt(&self, path: &str, plaintext: &str) -> Result<String>;
    /// The plaintext of `ciphertext`, in memory only.
    fn decrypt(&self, path: &str, ciphertext: &str) -> Result<String>;
}

/// Render `spec` and encrypt it for repo-relative `path`: the ciphertext to stage, proven first.
/// An encryptor that exits 0 yet prints nothing, garbage, or values a creation rule left in clear
/// must never replace a source, so the ciphertext must carry sops metadata and `ENC[…]` under
/// `data`/`stringData`, and decrypt back (in memory) to the very document that was encrypted.
pub fn encrypt_source(cipher: &impl Cipher, path: &str, spec: &SourceSpec) -> Result<String> {
    encrypt_proven(cipher, path, &spec.to_plaintext_yaml())
}

/// Encrypt the plaintext manifest `plaintext` for `path`, proven as [`encrypt_source`] proves it.
pub fn encrypt_proven(cipher: &impl Cipher, path: &str, plaintext: &str) -> Result<String> {
    let ciphertext = cipher.encrypt(path, plaintext)?;
    let proven = sops_format::check_encrypted(path, &ciphertext).and_then(|()| {
        let back = cipher.decrypt(path, &ciphertext)?;
        sops_format::check_round_trip(path, &back, plaintext)
    });
    proven.with_context(|| format!("{path} was not written"))?;
    Ok(ciphertext)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOCKER: &str = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: oci-creds\n  namespace: keycloak\ntype: kubernetes.io/dockerconfigjson\nstringData:\n  .dockerconfigjson: '{\"auths\":{\"ghcr.io\":{\"username\":\"u\",\"password\":\"pw-docker-1\"}}}'\n";

    #[test]
    fn reads_dockerconfigjson_from_string_data_and_data() {
        let from_string = read_credentials("a", DOCKER, None).unwrap();
        let encoded =
            BASE64.encode(r#"{"auths":{"ghcr.io":{"username":"u","password":"pw-docker-1"}}}"#);
        let with_data = format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: oci-creds\ntype: kubernetes.io/dockerconfigjson\ndata:\n  .dockerconfigjson: {encoded}\n"
        );
        let from_data = read_credentials("b", &with_data, None).unwrap();
        assert_eq!(
            from_string.fingerprint("ghcr.io"),
            from_data.fingerprint("ghcr.io")
        );
    }

    #[test]
    fn basic_auth_needs_a_registry() {
        let text = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: oci-creds\ntype: Opaque\nstringData:\n  username: u\n  password: pw-basic-22\n";
        let err = read_credentials("svc/oci-creds.yaml", text, None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("svc/oci-creds.yaml") && err.contains("secretRef"),
            "{err}"
        );
        assert!(!err.contains("pw-basic-22"));
        let creds = read_credentials("svc", text, Some("registry.example.com")).unwrap();
        assert_eq!(creds.registries(), vec!["registry.example.com"]);
    }

    #[test]
    fn wrong_secret_types_are_refused_with_the_file_name() {
        let tls = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: oci-creds\ntype: kubernetes.io/tls\nstringData:\n  tls.crt: x\n  tls.key: y\n";
        let err = read_credentials("svc/oci-creds.yaml", tls, Some("r"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("svc/oci-creds.yaml") && err.contains("kubernetes.io/tls"),
            "{err}"
        );
        let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n";
        assert!(
            read_credentials("f", cm, None)
                .unwrap_err()
                .to_string()
                .contains("no `kind: Secret`")
        );
    }

    #[test]
    fn other_secrets_keep_their_shape_when_their_credentials_change() {
        let old = read_credentials("a", DOCKER, None).unwrap();
        let mut new = old.clone();
        new.set("ghcr.io", crate::creds::RegistryAuth::new("u", "pw-new-3"));
        let text = with_dockerconfigjson("f", DOCKER, &new).unwrap();
        let doc: Value = serde_yaml::from_str(&text).unwrap();
        assert!(
            doc["stringData"][".dockerconfigjson"]
                .as_str()
                .unwrap()
                .contains("pw-new-3")
        );
        assert_eq!(doc["metadata"]["namespace"], "keycloak");
        assert_eq!(
            read_credentials("f", &text, None)
                .unwrap()
                .fingerprint("ghcr.io"),
            new.fingerprint("ghcr.io")
        );
        let basic = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: x\ntype: Opaque\nstringData:\n  password: pw-basic-4\n";
        let err = with_dockerconfigjson("b.yaml", basic, &new)
            .unwrap_err()
            .to_string();
        assert!(err.contains("b.yaml") && !err.contains("pw-"), "{err}");
    }

    fn docker_source() -> SourceSpec {
        let mut spec = SourceSpec::new(
            &reflector::SourceOptions::default(),
            vec!["loki".into(), "cert-manager".into(), "loki".into()],
            read_credentials("a", DOCKER, None).unwrap(),
        )
        .unwrap();
        spec.labels = BTreeMap::from([("team".to_string(), "platform".to_string())]);
        spec.annotations = BTreeMap::from([("note".to_string(), "kept".to_string())]);
        spec
    }

    #[test]
    fn source_round_trips_through_read_source() {
        let spec = docker_source();
        let text = spec.to_plaintext_yaml();
        assert!(
            text.contains("reflection-auto-namespaces: cert-manager,loki"),
            "{text}"
        );
        let back = read_source("f", &text).unwrap();
        assert!(back.already_says(&spec));
        let without_auto = text.replace("reflection-auto-enabled", "x-disabled");
        assert!(!read_source("f", &without_auto).unwrap().already_says(&spec));
        assert_eq!(back.namespaces(), ["cert-manager", "loki"]);
        assert_eq!(back.credentials, spec.credentials.clone().with_origin("f"));
        assert_eq!(back.annotations, spec.annotations);
        assert_eq!(back.labels, spec.labels);
    }

    /// A stand-in for sops whose encryption misbehaves in one chosen way.
    struct FakeCipher {
        encrypted: &'static str,
        decrypts_to: Option<String>,
    }

    impl Cipher for FakeCipher {
        fn encrypt(&self, _path: &str, plaintext: &str) -> Result<String> {
            Ok(self.encrypted.replace("{plaintext}", plaintext))
        }
        fn decrypt(&self, _path: &str, _ciphertext: &str) -> Result<String> {
            self.decrypts_to.clone().context("cannot decrypt")
        }
    }

    #[test]
    fn a_source_is_staged_only_when_its_ciphertext_is_proven() {
        let spec = docker_source();
        let sealed =
            "kind: Secret\nstringData:\n  .dockerconfigjson: ENC[x]\nsops:\n  mac: ENC[y]\n";
        let plaintext = spec.to_plaintext_yaml();
        let good = FakeCipher {
            encrypted: sealed,
            decrypts_to: Some(plaintext.clone()),
        };
        assert_eq!(encrypt_source(&good, "s.yaml", &spec).unwrap(), sealed);
        let other = plaintext.replace("name: oci-creds", "name: someone-else");
        for (encrypted, decrypts_to, why) in [
            ("", None, "no sops metadata"),
            ("{plaintext}", None, "no sops metadata"),
            ("%%garbage: [", None, "not YAML"),
            (sealed, None, "cannot decrypt"),
            (
                sealed,
                Some(other),
                "does not decrypt to what was encrypted",
            ),
        ] {
            let cipher = FakeCipher {
                encrypted,
                decrypts_to,
            };
            let err = format!(
                "{:#}",
                encrypt_source(&cipher, "s.yaml", &spec).unwrap_err()
            );
            assert!(
                err.contains(why) && err.contains("s.yaml was not written"),
                "{err}"
            );
            assert!(!err.contains("pw-docker-1"), "{err}");
        }
    }

    #[test]
    fn namespaces_are_sorted_deduplicated_and_refused_when_they_would_split() {
        let creds = read_credentials("a", DOCKER, None).unwrap();
        let options = reflector::SourceOptions::default();
        let spec = SourceSpec::new(
            &options,
            vec!["b".into(), "a".into(), "b".into()],
            creds.clone(),
        );
        assert_eq!(spec.unwrap().namespaces(), ["a", "b"]);
        for bad in ["a,b", "", "team a", "team-("] {
            let err = SourceSpec::new(&options, vec![bad.into()], creds.clone()).unwrap_err();
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }
}
