//! Keeping credentials out of everything a person or a log can see.
//!
//! Two mechanisms, both applied by every output path (script `print`, warnings, errors, diffs):
//! a process-wide registry of sensitive strings that [`crate::creds`] fills the moment it decodes
//! a credential, and a YAML-aware masker for Secret files shown in diffs. This module must never
//! store anything but in memory and never hand a registered value back out.

use regex::Regex;
use std::borrow::Cow;
use std::collections::BTreeSet;
use std::sync::{LazyLock, Mutex};

/// What replaces a sensitive value in output.
pub const MASK: &str = "<redacted>";

/// Values shorter than this are not registered: masking every "a" would garble all output, and a
/// 3-character secret is no secret. Real registry tokens are far longer.
const MIN_SENSITIVE_LEN: usize = 4;

static SENSITIVE: LazyLock<Mutex<BTreeSet<String>>> = LazyLock::new(Default::default);

/// Remember `value` as sensitive for the rest of the process.
pub fn register(value: &str) {
    if value.len() >= MIN_SENSITIVE_LEN {
        SENSITIVE
            .lock()
            .expect("redaction registry poisoned")
            .insert(value.to_string());
    }
}

/// `text` with every registered value masked, longest first (so a token that contains another is
/// masked whole).
pub fn redact(text: &str) -> Cow<'_, str> {
    let registry = SENSITIVE.lock().expect("redaction registry poisoned");
    let mut values: Vec<&String> = registry
        .iter()
        .filter(|v| text.contains(v.as_str()))
        .collect();
    if values.is_empty() {
        return Cow::Borrowed(text);
    }
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    let mut out = text.to_string();
    for value in values {
        out = out.replace(value.as_str(), MASK);
    }
    Cow::Owned(out)
}

static SOPS_VALUE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"ENC\[AES256_GCM,[^\]]*\]").expect("static regex"));

/// Mask a Secret manifest for display: values under `data:`/`stringData:` (plaintext or base64) and
/// every sops `ENC[...]` blob. Line structure is kept so a diff of two masked files still shows
/// which keys changed.
pub fn mask_secret_yaml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut secret_block_indent: Option<usize> = None;
    for line in text.split_inclusive('\n') {
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim();
        if let Some(block) = secret_block_indent {
            if trimmed.is_empty() || indent > block {
                out.push_str(&mask_value(line));
                continue;
            }
            secret_block_indent = None;
        }
        if matches!(trimmed, "data:" | "stringData:") {
            secret_block_indent = Some(indent);
        }
        out.push_str(&SOPS_VALUE.replace_all(line, "ENC[…]"));
    }
    redact(&out).into_owned()
}

/// `  key: value` → `  key: <redacted>`; continuation lines of block scalars are masked whole.
fn mask_value(line: &str) -> String {
    let body = line.trim_end_matches(['\n', '\r']);
    let ending = &line[body.len()..];
    let indent = &body[..body.len() - body.trim_start().len()];
    match body.trim_start().split_once(':') {
        Some((key, value)) if !value.trim().is_empty() && !key.contains(' ') => {
            format!("{indent}{key}: {MASK}{ending}")
        }
        Some(_) => line.to_string(),
        None if body.trim().is_empty() => line.to_string(),
        None => format!("{indent}{MASK}{ending}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_values_are_masked_longest_first() {
        register("tok-123456");
        register("tok-123456-extended");
        let shown = redact("a tok-123456-extended and tok-123456.");
        assert_eq!(shown, format!("a {MASK} and {MASK}."));
    }

    #[test]
    fn short_values_are_not_registered() {
        register("ab");
        assert_eq!(redact("abc ab"), "abc ab");
    }

    #[test]
    fn secret_yaml_values_and_sops_blobs_are_masked() {
        let text = "kind: Secret\nstringData:\n  password: hunter2hunter2\n  note: |\n    multi\nmetadata:\n  name: x\nsops:\n  mac: ENC[AES256_GCM,data:abc,iv:x,tag:y,type:str]\n";
        let masked = mask_secret_yaml(text);
        assert!(!masked.contains("hunter2hunter2"), "{masked}");
        assert!(!masked.contains("multi"), "{masked}");
        assert!(masked.contains("  name: x"), "{masked}");
        assert!(masked.contains("mac: ENC[…]"), "{masked}");
        assert_eq!(masked.lines().count(), text.lines().count());
    }

    #[test]
    fn crlf_lines_keep_their_endings_when_masked() {
        let masked =
            mask_secret_yaml("data:\r\n  .dockerconfigjson: eyJhdXRocyI6e319\r\nkind: Secret\r\n");
        assert_eq!(
            masked,
            format!("data:\r\n  .dockerconfigjson: {MASK}\r\nkind: Secret\r\n")
        );
    }
}
