//! Files the tests keep equal to what the code produces, compared exactly: the golden outputs
//! under `tests/integration/golden/`, and the generated copies the repository ships
//! (`manifests/`, the API reference in docs/scripting.md). `OCITOOL_BLESS=1` rewrites them instead
//! of failing; review the result with `git diff`. Run-specific values (temporary paths, sops
//! ciphertext, MACs and dates) are replaced by a [`Mask`] before comparing, never by a loose match.

use regex::Regex;
use std::path::{Path, PathBuf};

/// `OCITOOL_BLESS=1`: write what the code produces instead of comparing.
pub fn blessing() -> bool {
    std::env::var_os("OCITOOL_BLESS").is_some_and(|v| v == "1")
}

/// Where the golden outputs live.
pub fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/integration/golden")
}

/// Compares the file at `path` with `actual`: None when equal (or when blessing, after writing
/// `actual` there), else a unified diff naming the file.
pub fn check_file(path: &Path, actual: &str) -> Option<String> {
    if blessing() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, actual).unwrap();
        return None;
    }
    // A missing file compares as empty, so the first run of a new golden shows all of it.
    let expected = std::fs::read_to_string(path).unwrap_or_default();
    if expected == actual {
        return None;
    }
    let shown = path
        .strip_prefix(env!("CARGO_MANIFEST_DIR"))
        .unwrap_or(path)
        .display()
        .to_string();
    let diff = similar::TextDiff::from_lines(&expected, actual);
    Some(
        diff.unified_diff()
            .header(&shown, &format!("{shown} (actual)"))
            .to_string(),
    )
}

/// Panics with the diff unless the file at `path` holds exactly `actual`.
#[track_caller]
pub fn assert_file(path: &Path, actual: &str) {
    if let Some(diff) = check_file(path, actual) {
        panic!("{}\n{diff}", out_of_date(path));
    }
}

/// [`assert_file`] for `tests/integration/golden/<name>`.
#[track_caller]
pub fn assert_golden(name: &str, actual: &str) {
    assert_file(&golden_dir().join(name), actual);
}

/// The failure message: what is out of date and how to accept the new output.
pub fn out_of_date(path: &Path) -> String {
    format!(
        "{} differs from what the code produces; if the change is intended, run \
         `OCITOOL_BLESS=1 cargo test --test integration` and review `git diff`",
        path.display()
    )
}

/// Replaces the values that differ between runs with fixed placeholders.
pub struct Mask {
    literals: Vec<(String, &'static str)>,
    patterns: Vec<(Regex, &'static str)>,
}

impl Default for Mask {
    /// The checkout (`<repo>`, where the scripts are) and sops' per-encryption values: the age
    /// armor of the data key, `ENC[…]` values and MACs, and `lastmodified`.
    fn default() -> Mask {
        let patterns = [
            (
                r"-----BEGIN AGE ENCRYPTED FILE-----(?s:.*?)-----END AGE ENCRYPTED FILE-----",
                "-----BEGIN AGE ENCRYPTED FILE-----<age ciphertext>-----END AGE ENCRYPTED FILE-----",
            ),
            (r"ENC\[AES256_GCM,[^\]]*\]", "ENC[<ciphertext>]"),
            (r#"lastmodified: "[^"]*""#, r#"lastmodified: "<date>""#),
        ];
        Mask {
            literals: vec![(env!("CARGO_MANIFEST_DIR").to_string(), "<repo>")],
            patterns: patterns
                .into_iter()
                .map(|(re, with)| (Regex::new(re).unwrap(), with))
                .collect(),
        }
    }
}

impl Mask {
    /// Also replace `path` (a temporary directory) with `name`. Longer paths are replaced first,
    /// so a temporary directory is masked whole even where it lies under another masked one.
    pub fn path(mut self, path: &Path, name: &'static str) -> Mask {
        self.literals.push((path.display().to_string(), name));
        self.literals
            .sort_by_key(|(literal, _)| std::cmp::Reverse(literal.len()));
        self
    }

    pub fn apply(&self, text: &str) -> String {
        let mut text = text.to_string();
        for (literal, name) in &self.literals {
            text = text.replace(literal.as_str(), name);
        }
        for (pattern, with) in &self.patterns {
            text = pattern.replace_all(&text, *with).into_owned();
        }
        text
    }
}
