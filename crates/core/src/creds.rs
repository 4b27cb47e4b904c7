//! The credential model: which registry gets which username/password, merged across services.
//!
//! [`Credentials`] is the only place plaintext credentials live. It never prints them: `Debug` and
//! `Display` show registries and fingerprints, and the only way out is
//! [`Credentials::to_dockerconfigjson`], which [`crate::secret`] feeds straight into sops. Every
//! value decoded here is registered with [`crate::redact`] so no output path can leak it.

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::collections::HashMap;
use std::fmt;
use std::sync::{LazyLock, Mutex};

/// Username and password for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct RegistryAuth {
    username: String,
    password: String,
}

impl RegistryAuth {
    pub fn new(username: &str, password: &str) -> Self {
        for value in [
            password,
            &format!("{username}:{password}"),
            &basic_auth_token(username, password),
        ] {
            crate::redact::register(value);
        }
        RegistryAuth {
            username: username.to_string(),
            password: password.to_string(),
        }
    }

    /// A stable label for these credentials: `v2:` and 12 hex digits of an Argon2id hash of the
    /// username and password (see [`fingerprint_v2`]). Equal credentials have equal fingerprints on
    /// every machine, which is what lets a rotation be tracked across a fleet; computing one costs
    /// milliseconds and megabytes, so a fingerprint seen in a log is no cheap password oracle.
    pub fn fingerprint(&self) -> String {
        fingerprint_v2(&self.username, &self.password)
    }

    /// The fingerprint ocitool printed before v2: `sha256:` and 12 hex digits of one unsalted
    /// SHA-256. Only compared against (`carries`), never shown: it is cheap to brute-force.
    fn legacy_fingerprint(&self) -> String {
        let mut hash = Sha256::new();
        hash.update(b"ocitool-credential-v1\0");
        hash.update(self.username.as_bytes());
        hash.update(b"\0");
        hash.update(self.password.as_bytes());
        format!("{LEGACY_PREFIX}{}", hex12(&hash.finalize()))
    }

    /// Whether `fingerprint` (either version) names these credentials.
    pub fn has_fingerprint(&self, fingerprint: &str) -> bool {
        if fingerprint.starts_with(LEGACY_PREFIX) {
            self.legacy_fingerprint() == fingerprint
        } else {
            self.fingerprint() == fingerprint
        }
    }

    pub fn username(&self) -> &str {
        &self.username
    }

    /// The password, for exactly two consumers: a registry login check (which sends it to that
    /// registry only) and sops's standard input. Never format, log or store what this returns.
    pub fn expose_password(&self) -> &str {
        &self.password
    }
}

impl fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RegistryAuth({})", self.fingerprint())
    }
}

/// `auth` as `kubectl create secret docker-registry` writes it: base64 of `user:pass`.
fn basic_auth_token(username: &str, password: &str) -> String {
    BASE64.encode(format!("{username}:{password}"))
}

/// Registry → credentials, plus where they came from (a service name, a file) for messages.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Credentials {
    auths: BTreeMap<String, RegistryAuth>,
    origin: String,
}

impl Credentials {
    pub fn new(origin: &str) -> Self {
        Credentials {
            auths: BTreeMap::new(),
            origin: origin.to_string(),
        }
    }

    /// Parse a `.dockerconfigjson` document. Entries may carry `username`+`password`, `auth`, or
    /// both (then they must agree, as the kubelet would otherwise use one and the registry another).
    pub fn from_dockerconfigjson(origin: &str, json_bytes: &[u8]) -> Result<Self> {
        let invalid = || {
            format!(
                "{origin}: .dockerconfigjson is not valid JSON of the form {{\"auths\": {{\"<registry>\": {{...}}}}}}; \
                 recreate it with `kubectl create secret docker-registry --dry-run=client -o yaml`"
            )
        };
        let doc: Value = serde_json::from_slice(json_bytes).with_context(invalid)?;
        let Some(auths) = doc.get("auths").and_then(Value::as_object) else {
            bail!("{}", invalid());
        };
        let mut creds = Credentials::new(origin);
        for (registry, entry) in auths {
            let auth = parse_auth_entry(entry)
                .with_context(|| format!("{origin}: registry {registry}: {}", invalid()))?;
            creds.auths.insert(registry.clone(), auth);
        }
        if creds.auths.is_empty() {
            bail!(
                "{origin}: .dockerconfigjson has no registries in `auths`; add one or delete the file"
            );
        }
        Ok(creds)
    }

    /// Credentials for a single registry from a basic-auth (username/password) Secret.
    pub fn from_basic_auth(origin: &str, registry: &str, username: &str, password: &str) -> Self {
        let mut creds = Credentials::new(origin);
        creds
            .auths
            .insert(registry.to_string(), RegistryAuth::new(username, password));
        creds
    }

    /// The `.dockerconfigjson` document, in the shape `kubectl create secret docker-registry` writes.
    /// Crate-private: the only consumer is the sops encryption path in [`crate::secret`].
    pub(crate) fn to_dockerconfigjson(&self) -> String {
        let auths: Map<String, Value> = self
            .auths
            .iter()
            .map(|(registry, a)| {
                let entry = json!({
                    "username": a.username,
                    "password": a.password,
                    "auth": basic_auth_token(&a.username, &a.password),
                });
                (registry.clone(), entry)
            })
            .collect();
        json!({ "auths": auths }).to_string()
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    pub fn with_origin(mut self, origin: &str) -> Self {
        self.origin = origin.to_string();
        self
    }

    pub fn registries(&self) -> Vec<String> {
        self.auths.keys().cloned().collect()
    }

    pub fn is_empty(&self) -> bool {
        self.auths.is_empty()
    }

    pub fn get(&self, registry: &str) -> Option<&RegistryAuth> {
        self.auths.get(registry)
    }

    pub fn fingerprint(&self, registry: &str) -> Option<String> {
        self.auths.get(registry).map(RegistryAuth::fingerprint)
    }

    /// Set (add or replace) the credentials of one registry.
    pub fn set(&mut self, registry: &str, auth: RegistryAuth) {
        self.auths.insert(registry.to_string(), auth);
    }

    /// Drop one registry; true when it was there.
    pub fn remove(&mut self, registry: &str) -> bool {
        self.auths.remove(registry).is_some()
    }

    /// The registries whose credentials have this fingerprint (either version), sorted.
    pub fn registries_with(&self, fingerprint: &str) -> Vec<String> {
        self.auths
            .iter()
            .filter(|(_, auth)| auth.has_fingerprint(fingerprint))
            .map(|(registry, _)| registry.clone())
            .collect()
    }

    /// True when some registry carries credentials with this fingerprint.
    pub fn carries(&self, fingerprint: &str) -> bool {
        self.auths.values().any(|a| a.has_fingerprint(fingerprint))
    }
}

/// What changed between two sets of credentials, one line per registry that differs:
/// `registry: user v2:… → user v2:…` (or added/removed). Fingerprints and usernames only: this is
/// what a dry run shows for an encrypted Secret instead of its ciphertext.
pub fn describe_change(before: Option<&Credentials>, after: Option<&Credentials>) -> Vec<String> {
    let shown = |creds: Option<&Credentials>, registry: &str| {
        creds
            .and_then(|c| c.get(registry))
            .map(|a| format!("{} {}", a.username(), a.fingerprint()))
    };
    let mut registries: Vec<String> = before
        .into_iter()
        .chain(after)
        .flat_map(Credentials::registries)
        .collect();
    registries.sort();
    registries.dedup();
    registries
        .iter()
        .filter_map(
            |registry| match (shown(before, registry), shown(after, registry)) {
                (Some(old), Some(new)) if old == new => None,
                (Some(old), Some(new)) => Some(format!("{registry}: {old} → {new}")),
                (None, Some(new)) => Some(format!("{registry}: added, {new}")),
                (Some(old), None) => Some(format!("{registry}: removed (was {old})")),
                (None, None) => None,
            },
        )
        .collect()
}

const PREFIX: &str = "v2:";
const LEGACY_PREFIX: &str = "sha256:";

/// Argon2id with fixed, documented parameters: 8 MiB of memory, 1 pass, 1 lane, 16 output bytes,
/// and a fixed salt (a domain-separation constant, so the same credentials give the same
/// fingerprint on every machine). One guess costs about as much memory and time as the
/// fingerprint itself (milliseconds), against nanoseconds for the SHA-256 of v1. Changing any of
/// these values changes every fingerprint: that would be `v3:`.
const KDF_MEMORY_KIB: u32 = 8 * 1024;
const KDF_PASSES: u32 = 1;
const KDF_LANES: u32 = 1;
const KDF_SALT: &[u8] = b"ocitool-credential-fingerprint-v2";

/// `v2:` + 12 hex digits of Argon2id(username NUL password). Memoised per process (in memory
/// only), because one run shows the same credentials many times.
pub fn fingerprint_v2(username: &str, password: &str) -> String {
    static MEMO: LazyLock<Mutex<HashMap<[u8; 32], String>>> = LazyLock::new(Default::default);
    let key: [u8; 32] = {
        let mut hash = Sha256::new();
        hash.update(username.as_bytes());
        hash.update(b"\0");
        hash.update(password.as_bytes());
        hash.finalize().into()
    };
    if let Some(found) = MEMO.lock().ok().and_then(|m| m.get(&key).cloned()) {
        return found;
    }
    let params = argon2::Params::new(KDF_MEMORY_KIB, KDF_PASSES, KDF_LANES, Some(16))
        .expect("fixed Argon2 parameters are valid");
    let kdf = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut input = Vec::with_capacity(username.len() + password.len() + 1);
    input.extend_from_slice(username.as_bytes());
    input.push(0);
    input.extend_from_slice(password.as_bytes());
    let mut out = [0u8; 16];
    kdf.hash_password_into(&input, KDF_SALT, &mut out)
        .expect("Argon2 accepts any input with these parameters");
    let fingerprint = format!("{PREFIX}{}", hex12(&out));
    if let Ok(mut memo) = MEMO.lock() {
        memo.insert(key, fingerprint.clone());
    }
    fingerprint
}

/// Whether `text` looks like a fingerprint ocitool prints or once printed.
pub fn is_fingerprint(text: &str) -> bool {
    [PREFIX, LEGACY_PREFIX].iter().any(|prefix| {
        text.strip_prefix(prefix)
            .is_some_and(|hex| hex.len() == 12 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
    })
}

fn hex12(bytes: &[u8]) -> String {
    bytes.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

fn parse_auth_entry(entry: &Value) -> Result<RegistryAuth> {
    let field = |name: &str| {
        entry
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let from_token = match field("auth") {
        Some(token) => Some(decode_auth_token(token)?),
        None => None,
    };
    match (field("username"), field("password"), from_token) {
        (Some(u), Some(p), Some((tu, tp))) if (u, p) != (tu.as_str(), tp.as_str()) => {
            bail!("`auth` does not match `username`/`password`")
        }
        (Some(u), Some(p), _) => Ok(RegistryAuth::new(u, p)),
        (_, _, Some((u, p))) => Ok(RegistryAuth::new(&u, &p)),
        _ => bail!("entry has neither `username`+`password` nor `auth`"),
    }
}

fn decode_auth_token(token: &str) -> Result<(String, String)> {
    let bytes = BASE64
        .decode(token.trim())
        .context("`auth` is not base64")?;
    let text = String::from_utf8(bytes).context("`auth` is not UTF-8")?;
    let (user, pass) = text
        .split_once(':')
        .context("`auth` is not `user:password`")?;
    crate::redact::register(token.trim());
    Ok((user.to_string(), pass.to_string()))
}

impl fmt::Display for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let entries: Vec<String> = self
            .auths
            .iter()
            .map(|(r, a)| format!("{r} {}", a.fingerprint()))
            .collect();
        write!(f, "credentials[{}]", entries.join(", "))
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self} from {}", self.origin)
    }
}

/// A new registry password, read from a file or standard input by the password adapter. Opaque: it
/// is registered for redaction the moment it is read, prints as `<password>`, and its only way out
/// is into a [`RegistryAuth`] (so scripts can pass it along but never see it as a string).
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

/// What `password_file=-` means: read standard input.
pub const STDIN: &str = "-";

impl Password {
    /// The password in `text`, read from `source` (a file path or [`STDIN`], for messages). One
    /// trailing newline (`\n` or `\r\n`) is dropped, since `echo` and editors add one that is not
    /// part of the password. Reading is the adapters' job (`ocitool_adapters::password`).
    pub fn from_text(source: &str, mut text: String) -> Result<Password> {
        let trimmed_len = text
            .strip_suffix('\n')
            .map(|t| t.strip_suffix('\r').unwrap_or(t).len())
            .unwrap_or(text.len());
        text.truncate(trimmed_len);
        crate::redact::register(&text);
        let shown = if source == STDIN {
            "standard input"
        } else {
            source
        };
        if text.is_empty() {
            bail!("the password from {shown} is empty");
        }
        if text.contains('\n') {
            bail!("the password from {shown} spans several lines; put only the password in it");
        }
        Ok(Password(text))
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<password>")
    }
}

impl fmt::Display for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<password>")
    }
}

impl Credentials {
    /// A copy with `registry` set (added or replaced) to `username` and `password`; every other
    /// registry is kept as it is.
    pub fn with_registry(
        &self,
        registry: &str,
        username: &str,
        password: &Password,
    ) -> Credentials {
        let mut creds = self.clone();
        creds.set(registry, RegistryAuth::new(username, &password.0));
        creds
    }

    /// A copy without `registry` (unchanged when it was not there).
    pub fn without_registry(&self, registry: &str) -> Credentials {
        let mut creds = self.clone();
        creds.remove(registry);
        creds
    }
}

/// Several origins carry different credentials for one registry.
#[derive(Debug, Clone)]
pub struct Conflict {
    pub registry: String,
    /// (origin, fingerprint), in input order.
    pub holders: Vec<(String, String)>,
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let holders: Vec<String> = self
            .holders
            .iter()
            .map(|(o, fp)| format!("{o} ({fp})"))
            .collect();
        write!(f, "{}: {}", self.registry, holders.join(", "))
    }
}

/// The outcome of [`merge`]: the merged credentials and what was decided on the way.
#[derive(Debug, Clone)]
pub struct Merged {
    pub credentials: Credentials,
    /// Conflicts settled by `prefer`, for the summary.
    pub resolved: Vec<(Conflict, String)>,
}

/// Merge every input into one `auths` map. Same registry and same credentials merge; different
/// registries combine; the same registry with different credentials is a conflict, settled by the
/// first origin in `prefer` that holds that registry, and otherwise an error naming every holder.
pub fn merge(inputs: &[Credentials], prefer: &[String]) -> Result<Merged> {
    let mut by_registry: BTreeMap<&str, Vec<(&str, &RegistryAuth)>> = BTreeMap::new();
    for creds in inputs {
        for (registry, auth) in &creds.auths {
            by_registry
                .entry(registry)
                .or_default()
                .push((&creds.origin, auth));
        }
    }
    let mut merged = Merged {
        credentials: Credentials::new("merged"),
        resolved: Vec::new(),
    };
    let mut unresolved = Vec::new();
    for (registry, holders) in by_registry {
        let first = holders[0].1;
        if holders.iter().all(|(_, a)| *a == first) {
            merged.credentials.set(registry, first.clone());
            continue;
        }
        let conflict = Conflict {
            registry: registry.to_string(),
            holders: holders
                .iter()
                .map(|(o, a)| (o.to_string(), a.fingerprint()))
                .collect(),
        };
        let winner = prefer
            .iter()
            .find_map(|p| holders.iter().find(|(o, _)| o == p));
        match winner {
            Some((origin, auth)) => {
                merged.credentials.set(registry, (*auth).clone());
                merged.resolved.push((conflict, origin.to_string()));
            }
            None => unresolved.push(conflict),
        }
    }
    if !unresolved.is_empty() {
        let lines: Vec<String> = unresolved.iter().map(|c| format!("  {c}")).collect();
        bail!(
            "conflicting credentials for the same registry:\n{}\nmake them equal, or say which service wins \
             with `--set prefer=<service>` (comma-separated, first wins)",
            lines.join("\n")
        );
    }
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dockerconfig(registry: &str, user: &str, pass: &str) -> Vec<u8> {
        json!({"auths": {registry: {"username": user, "password": pass, "auth": basic_auth_token(user, pass)}}})
            .to_string()
            .into_bytes()
    }

    #[test]
    fn parses_all_entry_spellings() {
        let full =
            Credentials::from_dockerconfigjson("a", &dockerconfig("ghcr.io", "u", "p4ssw0rd-a"))
                .unwrap();
        let token_only = br#"{"auths":{"ghcr.io":{"auth":"dTpwNHNzdzByZC1h"}}}"#;
        let from_token = Credentials::from_dockerconfigjson("b", token_only).unwrap();
        assert_eq!(
            full.fingerprint("ghcr.io"),
            from_token.fingerprint("ghcr.io")
        );
        let pair_only = br#"{"auths":{"ghcr.io":{"username":"u","password":"p4ssw0rd-a"}}}"#;
        let from_pair = Credentials::from_dockerconfigjson("c", pair_only).unwrap();
        assert_eq!(
            full.fingerprint("ghcr.io"),
            from_pair.fingerprint("ghcr.io")
        );
    }

    #[test]
    fn rejects_invalid_documents_naming_the_origin() {
        for bad in [
            &b"not json"[..],
            br#"{"registries":{}}"#,
            br#"{"auths":{"x":{"email":"a@b"}}}"#,
            br#"{"auths":{"x":{"username":"u","password":"p","auth":"dTpx"}}}"#,
            br#"{"auths":{}}"#,
        ] {
            let err = format!(
                "{:#}",
                Credentials::from_dockerconfigjson("svc/oci-creds.yaml", bad).unwrap_err()
            );
            assert!(err.contains("svc/oci-creds.yaml"), "{err}");
        }
    }

    #[test]
    fn output_has_the_kubectl_shape_and_round_trips() {
        let creds =
            Credentials::from_basic_auth("a", "registry.example.com", "robot", "s3cr3t-value");
        let json: Value = serde_json::from_str(&creds.to_dockerconfigjson()).unwrap();
        let entry = &json["auths"]["registry.example.com"];
        assert_eq!(entry["username"], "robot");
        assert_eq!(entry["password"], "s3cr3t-value");
        assert_eq!(entry["auth"], BASE64.encode("robot:s3cr3t-value"));
        let back = Credentials::from_dockerconfigjson("b", creds.to_dockerconfigjson().as_bytes())
            .unwrap();
        assert_eq!(back.auths, creds.auths);
    }

    #[test]
    fn display_and_debug_never_show_the_password() {
        let creds = Credentials::from_basic_auth("svc", "ghcr.io", "robot", "very-secret-pw");
        for shown in [
            format!("{creds}"),
            format!("{creds:?}"),
            format!("{:?}", creds.get("ghcr.io")),
        ] {
            assert!(
                !shown.contains("very-secret-pw") && !shown.contains("robot:"),
                "{shown}"
            );
            assert!(shown.contains("v2:"), "{shown}");
        }
    }

    #[test]
    fn merge_combines_registries_and_deduplicates_equal_credentials() {
        let a = Credentials::from_basic_auth("a", "ghcr.io", "u", "pw-one-1");
        let b = Credentials::from_basic_auth("b", "ghcr.io", "u", "pw-one-1");
        let c = Credentials::from_basic_auth("c", "quay.io", "v", "pw-two-2");
        let merged = merge(&[a, b, c], &[]).unwrap();
        assert_eq!(merged.credentials.registries(), vec!["ghcr.io", "quay.io"]);
        assert!(merged.resolved.is_empty());
    }

    #[test]
    fn conflicts_name_every_holder_with_fingerprints_and_no_secret() {
        let a = Credentials::from_basic_auth("keycloak", "ghcr.io", "u", "pw-first-1");
        let b = Credentials::from_basic_auth("loki", "ghcr.io", "u", "pw-second-2");
        let err = merge(&[a.clone(), b.clone()], &[]).unwrap_err().to_string();
        assert!(
            err.contains("keycloak (v2:") && err.contains("loki (v2:"),
            "{err}"
        );
        assert!(err.contains("--set prefer="), "{err}");
        assert!(
            !err.contains("pw-first-1") && !err.contains("pw-second-2"),
            "{err}"
        );
        let merged = merge(&[a.clone(), b], &["loki".to_string()]).unwrap();
        assert_ne!(
            merged.credentials.fingerprint("ghcr.io"),
            a.fingerprint("ghcr.io")
        );
        assert_eq!(merged.resolved[0].1, "loki");
    }

    #[test]
    fn fingerprints_identify_credentials_not_registries() {
        let a = Credentials::from_basic_auth("a", "ghcr.io", "u", "same-pass");
        let b = Credentials::from_basic_auth("b", "quay.io", "u", "same-pass");
        assert_eq!(a.fingerprint("ghcr.io"), b.fingerprint("quay.io"));
        assert!(b.carries(&a.fingerprint("ghcr.io").unwrap()));
        assert!(is_fingerprint(&a.fingerprint("ghcr.io").unwrap()));
    }

    /// Pins the KDF and its parameters: the expected values were computed independently with
    /// argon2-cffi (`hash_secret_raw(b"u\0same-pass", b"ocitool-credential-fingerprint-v2",
    /// time_cost=1, memory_cost=8192, parallelism=1, hash_len=16, type=Type.ID)`) and Python's
    /// hashlib for v1, so fingerprints stay comparable across machines and releases.
    #[test]
    fn fingerprints_match_an_independent_argon2id_and_accept_v1() {
        let creds = Credentials::from_basic_auth("a", "ghcr.io", "u", "same-pass");
        assert_eq!(creds.fingerprint("ghcr.io").unwrap(), "v2:17e6d9646209");
        assert!(creds.carries("v2:17e6d9646209"));
        assert!(
            creds.carries("sha256:9104c909ec90"),
            "v1 fingerprints stay accepted"
        );
        assert!(!creds.carries("sha256:000000000000"));
        assert!(is_fingerprint("sha256:9104c909ec90") && !is_fingerprint("v2:17e6"));
        assert!(
            !format!("{creds} {creds:?}").contains("sha256:"),
            "v1 is never shown"
        );
    }

    #[test]
    fn changes_are_described_by_username_and_fingerprint_only() {
        let old = Credentials::from_basic_auth("a", "ghcr.io", "u", "same-pass").with_registry(
            "quay.io",
            "q",
            &Password("gone-pass-1".into()),
        );
        let new = Credentials::from_basic_auth("b", "ghcr.io", "u2", "new-pass-2").with_registry(
            "harbor.io",
            "h",
            &Password("added-pass-3".into()),
        );
        let lines = describe_change(Some(&old), Some(&new));
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(
            lines[0].starts_with("ghcr.io: u v2:17e6d9646209 → u2 v2:"),
            "{lines:?}"
        );
        assert!(lines[1].starts_with("harbor.io: added, h v2:"), "{lines:?}");
        assert!(
            lines[2].starts_with("quay.io: removed (was q v2:"),
            "{lines:?}"
        );
        let all = lines.join("\n");
        assert!(!all.contains("pass"), "{all}");
        assert!(describe_change(Some(&old), Some(&old)).is_empty());
    }

    #[test]
    fn passwords_drop_one_trailing_newline_and_never_print() {
        let pw = Password::from_text("f", "n3w-pass-word\r\n".into()).unwrap();
        assert_eq!(pw.0, "n3w-pass-word");
        assert_eq!(format!("{pw} {pw:?}"), "<password> <password>");
        assert!(Password::from_text("f", "\n".into()).is_err());
        assert!(Password::from_text("f", "a\nb\n".into()).is_err());
        assert_eq!(crate::redact::redact("x n3w-pass-word"), "x <redacted>");
    }

    #[test]
    fn with_and_without_registry_keep_the_others() {
        let creds = Credentials::from_basic_auth("s", "ghcr.io", "u", "old-pass-1");
        let pw = Password::from_text("f", "new-pass-2".into()).unwrap();
        let added = creds.with_registry("quay.io", "v", &pw);
        assert_eq!(added.registries(), vec!["ghcr.io", "quay.io"]);
        assert_eq!(added.fingerprint("ghcr.io"), creds.fingerprint("ghcr.io"));
        assert_eq!(added.without_registry("quay.io"), creds);
    }
}
