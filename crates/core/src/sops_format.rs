//! What a sops-encrypted file looks like, without running sops: the top-level `sops` metadata
//! block with its `mac`. Pure text inspection; decrypting and encrypting belong to the sops adapter.

/// True when `text` is a sops-encrypted YAML document (it carries sops's top-level metadata).
pub fn is_encrypted(text: &str) -> bool {
    crate::manifest::parse_documents("", text).is_ok_and(|docs| carries_sops_metadata(&docs))
}

/// True when any of these parsed documents carries sops's top-level metadata.
pub fn carries_sops_metadata(docs: &[serde_yaml::Value]) -> bool {
    docs.iter()
        .any(|d| d.get("sops").and_then(|s| s.get("mac")).is_some())
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
}
