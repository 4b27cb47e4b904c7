//! What a sops-encrypted file looks like, without running sops: the top-level `sops` metadata
//! block with its `mac`, values as `ENC[…]`. Pure text inspection; decrypting and encrypting belong
//! to the sops adapter. Errors name the file and a key at most, never a value: the text inspected
//! may be a misbehaving sops echoing its plaintext.

use crate::manifest::{self, parse_documents};
use anyhow::{Result, bail};

/// True when `text` is a sops-encrypted YAML document (it carries sops's top-level metadata).
pub fn is_encrypted(text: &str) -> bool {
    parse_documents("", text).is_ok_and(|docs| carries_sops_metadata(&docs))
}

/// True when any of these parsed documents carries sops's top-level metadata.
pub fn carries_sops_metadata(docs: &[serde_yaml::Value]) -> bool {
    docs.iter()
        .any(|d| d.get("sops").and_then(|s| s.get("mac")).is_some())
}

/// True when `text` holds a Kubernetes Secret without sops metadata: its values are in clear.
pub fn is_plaintext_secret(text: &str) -> bool {
    parse_documents("", text).is_ok_and(|docs| {
        !carries_sops_metadata(&docs) && docs.iter().any(|d| manifest::kind(d) == Some("Secret"))
    })
}

/// Check that `ciphertext`, what sops printed when encrypting `origin`, is encrypted: YAML with
/// sops metadata and every value under `data`/`stringData` an `ENC[…]` string (a `.sops.yaml`
/// whose `encrypted_regex` misses them would leave them in clear).
pub fn check_encrypted(origin: &str, ciphertext: &str) -> Result<()> {
    let Ok(docs) = parse_documents(origin, ciphertext) else {
        bail!("{origin}: sops printed something that is not YAML when encrypting it")
    };
    if !carries_sops_metadata(&docs) {
        bail!("{origin}: what sops printed when encrypting it carries no sops metadata")
    }
    for doc in &docs {
        for field in ["data", "stringData"] {
            let Some(values) = doc.get(field) else {
                continue;
            };
            let Some(values) = values.as_mapping() else {
                bail!("{origin}: `{field}` in sops's output is not a mapping")
            };
            for (key, value) in values {
                if !value.as_str().is_some_and(is_encrypted_value) {
                    bail!(
                        "{origin}: {field}.{} is not encrypted (ENC[…]) in sops's output; check that the \
                         .sops.yaml creation rule for this path encrypts data and stringData",
                        key.as_str().unwrap_or("<key>")
                    );
                }
            }
        }
    }
    Ok(())
}

/// A sops-encrypted scalar: `ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]`.
fn is_encrypted_value(value: &str) -> bool {
    value.starts_with("ENC[") && value.ends_with(']')
}

/// Check that `decrypted` (a fresh ciphertext decrypted again) is the document that was encrypted,
/// `plaintext`, compared as YAML (sops re-emits it in its own layout).
pub fn check_round_trip(origin: &str, decrypted: &str, plaintext: &str) -> Result<()> {
    let parse = |text| parse_documents(origin, text).ok();
    match (parse(decrypted), parse(plaintext)) {
        (Some(back), Some(meant)) if back == meant => Ok(()),
        _ => bail!("{origin}: the new ciphertext does not decrypt to what was encrypted"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_sops_metadata() {
        assert!(is_encrypted(
            "kind: Secret\nsops:\n  mac: ENC[x]\n  version: 3.13.2\n"
        ));
        assert!(!is_encrypted("kind: Secret\nstringData:\n  a: b\n"));
        assert!(!is_encrypted("a: [\n"));
    }

    const PLAIN: &str = "kind: Secret\nstringData:\n  password: pw-format-1\n";

    #[test]
    fn plaintext_secrets_are_told_from_ciphertext_and_other_yaml() {
        assert!(is_plaintext_secret(PLAIN));
        assert!(!is_plaintext_secret(
            "kind: Secret\nstringData:\n  password: ENC[x]\nsops:\n  mac: ENC[y]\n"
        ));
        assert!(!is_plaintext_secret("kind: ConfigMap\ndata:\n  a: b\n"));
    }

    #[test]
    fn encrypted_output_needs_metadata_and_encrypted_values_and_never_quotes_them() {
        let good = "kind: Secret\ndata:\n  a: ENC[AES256_GCM,data:x]\nsops:\n  mac: ENC[y]\n";
        check_encrypted("s.yaml", good).unwrap();
        let half = "kind: Secret\nstringData:\n  password: pw-format-1\nsops:\n  mac: ENC[y]\n";
        for (bad, why) in [
            ("", "no sops metadata"),
            ("\u{0}garbage: [", "not YAML"),
            (PLAIN, "no sops metadata"),
            (half, "stringData.password is not encrypted"),
        ] {
            let err = check_encrypted("s.yaml", bad).unwrap_err().to_string();
            assert!(err.contains(why) && !err.contains("pw-format-1"), "{err}");
        }
    }

    #[test]
    fn round_trips_compare_as_yaml() {
        check_round_trip(
            "s",
            "kind: Secret\nstringData: {a: 'b'}\n",
            "kind: Secret\nstringData:\n  a: b\n",
        )
        .unwrap();
        let err = check_round_trip("s", "", PLAIN).unwrap_err().to_string();
        assert!(!err.contains("pw-format-1"), "{err}");
    }
}
