//! `.sops.yaml` as sops itself reads it: which config file applies to a file, which creation rule
//! of it, and whether that rule would leave a Secret's `data`/`stringData` values in clear text.
//! Plus the one edit ocitool makes to such a file: prepending a creation rule, format-preserving.
//!
//! The rules mirror sops v3.13.2 (`github.com/getsops/sops/v3@v3.13.2`), cited where used:
//! - `config/config.go` `LookupConfigFile`/`FindConfigFile`: the config is `.sops.yaml` in the
//!   working directory or the nearest parent (`.sops.yml` is ignored with a warning), so running
//!   sops from a file's directory uses the nearest `.sops.yaml` above the file;
//! - `config/config.go` `parseCreationRuleForFile`: the file path is made relative to the config
//!   file's directory (`strings.TrimPrefix(filePath, configDir+"/")`), then the creation rules are
//!   tried in order and the FIRST whose `path_regex` matches (Go `MatchString`: unanchored search)
//!   — or that has no `path_regex` — wins; a config without `creation_rules` counts as none;
//! - `sops.go` `shouldBeEncrypted` and `cmd/sops/main.go` `getEncryptConfig`: which values are
//!   encrypted under `encrypted_regex`, `unencrypted_regex`, the suffixes and the comment regexes
//!   (at most one of them; none means the default `unencrypted_suffix: _unencrypted`).
//!
//! Pure: it reads texts it is handed and returns texts; it never looks for files (the caller walks
//! the changeset with [`candidates`]) and never runs sops.

use anyhow::{Context, Result, bail, ensure};
use serde_yaml::Value;

/// The only name sops looks for (config.go: `configFileName = ".sops.yaml"`).
pub const CONFIG_FILE: &str = ".sops.yaml";
/// sops's default when a rule sets no encryption selector (sops.go: `DefaultUnencryptedSuffix`).
const DEFAULT_UNENCRYPTED_SUFFIX: &str = "_unencrypted";
/// The selectors sops allows at most one of per rule (config.go `configFromRule`).
const SELECTORS: [&str; 6] = [
    "unencrypted_suffix",
    "encrypted_suffix",
    "unencrypted_regex",
    "encrypted_regex",
    "unencrypted_comment_regex",
    "encrypted_comment_regex",
];
/// The selector ocitool writes: only Secret values are encrypted, so names stay readable.
pub const SECRET_VALUES_REGEX: &str = "^(data|stringData)$";

/// One parsed `.sops.yaml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SopsConfig {
    /// Repo-relative path of the file, for messages.
    pub origin: String,
    pub rules: Vec<CreationRule>,
}

/// One entry of `creation_rules`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreationRule {
    /// 1-based position in `creation_rules`, as a reader counts.
    pub number: usize,
    pub path_regex: Option<String>,
    /// age recipients: the rule's `age` (comma-separated string or list), or those of its `key_groups`.
    pub age: Vec<String>,
    /// Whether the rule also names non-age keys (pgp, kms, …), which ocitool cannot copy.
    pub other_keys: bool,
    /// `(selector, value)` for each encryption selector the rule sets.
    pub selectors: Vec<(&'static str, String)>,
    pub mac_only_encrypted: bool,
}

impl SopsConfig {
    /// Parse `text` as sops would (unknown keys ignored, wrong types refused).
    pub fn parse(origin: &str, text: &str) -> Result<SopsConfig> {
        let doc: Value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_yaml::from_str(text).with_context(|| format!("{origin} is not valid YAML"))?
        };
        let rules = match doc.get("creation_rules") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Sequence(items)) => items
                .iter()
                .enumerate()
                .map(|(i, item)| CreationRule::parse(origin, i + 1, item))
                .collect::<Result<_>>()?,
            Some(_) => bail!("{origin}: `creation_rules` must be a list"),
        };
        Ok(SopsConfig {
            origin: origin.to_string(),
            rules,
        })
    }

    /// The rule sops applies to `path`, given relative to this config's directory: the first whose
    /// `path_regex` matches anywhere in it, or that has none. None when no rule matches.
    pub fn rule_for(&self, path: &str) -> Result<Option<&CreationRule>> {
        for rule in &self.rules {
            let Some(pattern) = &rule.path_regex else {
                return Ok(Some(rule));
            };
            let re = regex::Regex::new(pattern).with_context(|| {
                format!(
                    "{}: {} has a path_regex sops cannot compile",
                    self.origin,
                    rule.describe()
                )
            })?;
            if re.is_match(path) {
                return Ok(Some(rule));
            }
        }
        Ok(None)
    }
}

impl CreationRule {
    fn parse(origin: &str, number: usize, item: &Value) -> Result<CreationRule> {
        let field = |key: &str| -> Result<Option<String>> {
            match item.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.is_empty() => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => bail!("{origin}: creation rule #{number}: `{key}` must be a string"),
            }
        };
        let mut selectors = Vec::new();
        for key in SELECTORS {
            if let Some(value) = field(key)? {
                selectors.push((key, value));
            }
        }
        let groups: Vec<&Value> = item
            .get("key_groups")
            .and_then(Value::as_sequence)
            .map(|g| g.iter().collect())
            .unwrap_or_default();
        // config.go getKeyGroupsFromCreationRule: key_groups, when present, replace the rule's own keys.
        let key_sources: Vec<&Value> = if groups.is_empty() {
            vec![item]
        } else {
            groups
        };
        let mut age = Vec::new();
        for source in &key_sources {
            age.extend(key_list(origin, number, source.get("age"))?);
        }
        let other_keys = key_sources.iter().any(|s| {
            [
                "pgp",
                "kms",
                "gcp_kms",
                "azure_keyvault",
                "hc_vault_transit_uri",
                "hc_vault",
                "hckms",
            ]
            .iter()
            .any(|k| s.get(*k).is_some_and(|v| !v.is_null()))
        });
        Ok(CreationRule {
            number,
            path_regex: field("path_regex")?,
            age,
            other_keys,
            selectors,
            mac_only_encrypted: item
                .get("mac_only_encrypted")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        })
    }

    /// `creation rule #2 (path_regex `^services/`)`, for messages.
    pub fn describe(&self) -> String {
        match &self.path_regex {
            Some(re) => format!("creation rule #{} (path_regex `{re}`)", self.number),
            None => format!(
                "creation rule #{} (no path_regex: matches every file)",
                self.number
            ),
        }
    }

    /// sops refuses a rule with more than one selector (config.go `configFromRule`).
    pub fn check_selectors(&self, origin: &str) -> Result<()> {
        ensure!(
            self.selectors.len() <= 1,
            "{origin}: {} sets {}; sops allows at most one of them",
            self.describe(),
            self.selectors
                .iter()
                .map(|(k, _)| *k)
                .collect::<Vec<_>>()
                .join(" and ")
        );
        Ok(())
    }

    /// Whether sops encrypts the value at `path` (its keys from the document root) of a document
    /// without comments — sops.go `shouldBeEncrypted`. `mac_only_encrypted` plays no part: it
    /// only changes which values the MAC covers (sops.go `Tree.Encrypt`).
    pub fn encrypts(&self, path: &[&str]) -> bool {
        let Some((selector, value)) = self.selectors.first() else {
            return !path.iter().any(|k| k.ends_with(DEFAULT_UNENCRYPTED_SUFFIX));
        };
        let matches = |k: &&str| regex::Regex::new(value).is_ok_and(|re| re.is_match(k));
        match *selector {
            "unencrypted_suffix" => !path.iter().any(|k| k.ends_with(value.as_str())),
            "encrypted_suffix" => path.iter().any(|k| k.ends_with(value.as_str())),
            "unencrypted_regex" => !path.iter().any(matches),
            "encrypted_regex" => path.iter().any(matches),
            // Comment regexes look only at comments: without any, nothing matches.
            "unencrypted_comment_regex" => true,
            _ => false, // encrypted_comment_regex
        }
    }

    /// The `data.<key>`/`stringData.<key>` values of a Secret that this rule would leave in clear
    /// text, for each of the Secret's value `keys` (e.g. `.dockerconfigjson`).
    pub fn secret_values_in_clear(&self, keys: &[&str]) -> Vec<String> {
        ["data", "stringData"]
            .iter()
            .flat_map(|section| keys.iter().map(move |key| (*section, *key)))
            .filter(|(section, key)| !self.encrypts(&[section, key]))
            .map(|(section, key)| format!("{section}.{key}"))
            .collect()
    }

    /// Why the rule leaves values in clear, naming its selector (or sops's default).
    pub fn selector_text(&self) -> String {
        match self.selectors.first() {
            Some((key, value)) => format!("{key}: {value}"),
            None => format!(
                "no selector (sops's default unencrypted_suffix {DEFAULT_UNENCRYPTED_SUFFIX})"
            ),
        }
    }
}

fn key_list(origin: &str, number: usize, value: Option<&Value>) -> Result<Vec<String>> {
    // config.go parseKeyField: a comma-separated string or a list of strings.
    Ok(match value {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => s
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(String::from)
            .collect(),
        Some(Value::Sequence(items)) => items
            .iter()
            .map(|k| {
                k.as_str().map(|s| s.trim().to_string()).with_context(|| {
                    format!("{origin}: creation rule #{number}: `age` entries must be strings")
                })
            })
            .collect::<Result<_>>()?,
        Some(_) => bail!("{origin}: creation rule #{number}: `age` must be a string or a list"),
    })
}

/// The `.sops.yaml` paths sops would consider for repo-relative `file`, nearest first: its own
/// directory, then each parent up to the repository root (ocitool never looks above the root).
pub fn candidates(file: &str) -> Vec<String> {
    let mut dirs: Vec<&str> = Vec::new();
    let mut dir = file.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
    loop {
        dirs.push(dir);
        match dir.rsplit_once('/') {
            Some((parent, _)) => dir = parent,
            None if !dir.is_empty() => dir = "",
            None => break,
        }
    }
    dirs.into_iter().map(|d| join(d, CONFIG_FILE)).collect()
}

/// `dir/name`, or `name` at the root.
pub fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// `path` relative to `dir` (both repo-relative; `path` must lie under `dir`).
pub fn relative_to<'a>(dir: &str, path: &'a str) -> &'a str {
    if dir.is_empty() {
        path
    } else {
        path.strip_prefix(dir)
            .and_then(|p| p.strip_prefix('/'))
            .unwrap_or(path)
    }
}

/// A `path_regex` matching exactly `relative` (Go RE2 and Rust regex read it alike).
pub fn exact_path_regex(relative: &str) -> String {
    let mut out = String::from("^");
    for c in relative.chars() {
        if r"\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('$');
    out
}

/// The creation rule ocitool adds for one file: exactly that path, Secret values encrypted, for `age`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRule {
    pub path_regex: String,
    pub age: Vec<String>,
}

impl NewRule {
    /// The rule as YAML list-item lines at `indent` (the column of the `-`), with `eol` endings.
    pub fn render(&self, indent: &str, eol: &str) -> String {
        let regex = format!("'{}'", self.path_regex.replace('\'', "''"));
        [
            format!(
                "{indent}# Added by ocitool: the consolidated registry Secret, values encrypted."
            ),
            format!("{indent}- path_regex: {regex}"),
            format!("{indent}  encrypted_regex: {SECRET_VALUES_REGEX}"),
            format!("{indent}  age: {}", self.age.join(",")),
        ]
        .iter()
        .map(|l| format!("{l}{eol}"))
        .collect()
    }

    fn as_value(&self) -> Value {
        let mut map = serde_yaml::Mapping::new();
        map.insert("path_regex".into(), self.path_regex.as_str().into());
        map.insert("encrypted_regex".into(), SECRET_VALUES_REGEX.into());
        map.insert("age".into(), self.age.join(",").into());
        Value::Mapping(map)
    }
}

/// `text` with `rule` as the FIRST creation rule (first match wins, so it takes precedence over
/// any broader rule), everything else byte-for-byte as it was. The edit is checked by re-parsing:
/// unless the result reads as the original with exactly that rule prepended, it is refused.
pub fn prepend_rule(origin: &str, text: &str, rule: &NewRule) -> Result<String> {
    let refuse = || {
        anyhow::anyhow!(
            "could not edit {origin} safely (its `creation_rules:` is not a block list ocitool recognises); \
             add this rule at the top of creation_rules by hand:\n{}",
            rule.render("  ", "\n")
        )
    };
    let before: Value = serde_yaml::from_str(text).map_err(|_| refuse())?;
    let eol = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let key = lines
        .iter()
        .position(|l| is_top_level_key(l, "creation_rules"))
        .ok_or_else(refuse)?;
    let after_colon = lines[key].trim_end().split_once(':').map(|(_, v)| v.trim());
    if !after_colon.is_some_and(|v| v.is_empty() || v.starts_with('#')) {
        return Err(refuse());
    }
    // The `-` column of the existing items (sops configs use both `  - ` and `- `).
    let indent = lines[key + 1..]
        .iter()
        .map(|l| l.trim_end_matches(['\n', '\r']))
        .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .filter(|l| l.trim_start().starts_with('-'))
        .map(|l| &l[..l.len() - l.trim_start().len()])
        .unwrap_or("  ");
    let mut edited: String = lines[..=key].concat();
    if !edited.ends_with('\n') {
        edited.push_str(eol);
    }
    edited.push_str(&rule.render(indent, eol));
    edited.push_str(&lines[key + 1..].concat());

    let mut expected = before.clone();
    let rules = expected.get_mut("creation_rules").ok_or_else(refuse)?;
    match rules {
        Value::Sequence(items) => items.insert(0, rule.as_value()),
        Value::Null => *rules = Value::Sequence(vec![rule.as_value()]),
        _ => return Err(refuse()),
    }
    match serde_yaml::from_str::<Value>(&edited) {
        Ok(after) if after == expected => Ok(edited),
        _ => Err(refuse()),
    }
}

fn is_top_level_key(line: &str, key: &str) -> bool {
    line.strip_prefix(key)
        .map(str::trim_start)
        .is_some_and(|rest| rest.starts_with(':'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = "# Fleet-wide rules\ncreation_rules:\n  # services\n  - path_regex: applications/overlays/[^/]+/(managed-services|services)/.*/.*\\.ya?ml$\n    encrypted_regex: \"^(secret)$\"\n    age: age1root\n  - path_regex: .*\n    age:\n      - age1a\n      - age1b\n";

    fn config(text: &str) -> SopsConfig {
        SopsConfig::parse(".sops.yaml", text).unwrap()
    }

    #[test]
    fn first_matching_rule_wins_and_matching_is_unanchored() {
        let c = config(ROOT);
        let rule = c
            .rule_for("applications/overlays/prod/services/x/oci-creds.yaml")
            .unwrap()
            .unwrap();
        assert_eq!(rule.number, 1);
        assert_eq!(rule.age, ["age1root"]);
        // `.*` matches anything; a regex without anchors matches inside the path.
        let other = c.rule_for("elsewhere/file.yaml").unwrap().unwrap();
        assert_eq!(
            (other.number, other.age.clone()),
            (2, vec!["age1a".into(), "age1b".into()])
        );
        let unanchored = config("creation_rules:\n  - path_regex: services/\n    age: a\n");
        assert!(unanchored.rule_for("x/services/y.yaml").unwrap().is_some());
        assert!(unanchored.rule_for("flux-system/y.yaml").unwrap().is_none());
        assert!(config("stores: {}\n").rule_for("a").unwrap().is_none());
        let catch_all = config("creation_rules:\n  - age: a\n  - path_regex: x\n    age: b\n");
        assert_eq!(catch_all.rule_for("x").unwrap().unwrap().number, 1);
    }

    #[test]
    fn bad_configs_are_named() {
        let err = SopsConfig::parse("o/.sops.yaml", "creation_rules: {a: 1}\n").unwrap_err();
        assert!(err.to_string().contains("o/.sops.yaml"));
        let c = config("creation_rules:\n  - path_regex: '('\n    age: a\n");
        let err = c.rule_for("x").unwrap_err().to_string();
        assert!(err.contains("creation rule #1"), "{err}");
        let two = config("creation_rules:\n  - encrypted_regex: a\n    unencrypted_suffix: b\n");
        assert!(two.rules[0].check_selectors("c").is_err());
    }

    #[test]
    fn selectors_decide_which_secret_values_stay_clear() {
        let rule = |selector: &str| {
            config(&format!("creation_rules:\n  - age: a\n{selector}")).rules[0].clone()
        };
        let keys = [".dockerconfigjson"];
        let none: Vec<String> = Vec::new();
        assert_eq!(
            rule("    encrypted_regex: ^(data|stringData)$\n").secret_values_in_clear(&keys),
            none
        );
        assert_eq!(
            rule("    encrypted_regex: ^(data|stringData|credentials)$\n")
                .secret_values_in_clear(&keys),
            none
        );
        assert_eq!(
            rule("    encrypted_regex: \"^(secret)$\"\n").secret_values_in_clear(&keys),
            ["data..dockerconfigjson", "stringData..dockerconfigjson"]
        );
        // Unanchored: `data` inside `metadata` matches too, but that does not weaken data itself.
        assert_eq!(
            rule("    encrypted_regex: data\n").secret_values_in_clear(&keys),
            ["stringData..dockerconfigjson"]
        );
        assert_eq!(
            rule("    unencrypted_regex: ^data$\n").secret_values_in_clear(&keys),
            ["data..dockerconfigjson"]
        );
        assert_eq!(
            rule("    encrypted_suffix: _enc\n")
                .secret_values_in_clear(&keys)
                .len(),
            2
        );
        assert_eq!(
            rule("    unencrypted_suffix: json\n")
                .secret_values_in_clear(&keys)
                .len(),
            2
        );
        assert_eq!(
            rule("    encrypted_comment_regex: sops\n")
                .secret_values_in_clear(&keys)
                .len(),
            2
        );
        assert_eq!(
            rule("    unencrypted_comment_regex: x\n").secret_values_in_clear(&keys),
            none
        );
        assert_eq!(
            rule("    mac_only_encrypted: true\n").secret_values_in_clear(&keys),
            none
        );
        assert!(
            rule("")
                .secret_values_in_clear(&["token_unencrypted"])
                .len()
                == 2
        );
    }

    #[test]
    fn key_groups_and_lists_give_age_recipients() {
        let c = config(
            "creation_rules:\n  - key_groups:\n      - age: [g1]\n      - age: g2, g3\n        pgp: [F]\n",
        );
        assert_eq!(c.rules[0].age, ["g1", "g2", "g3"]);
        assert!(c.rules[0].other_keys);
    }

    #[test]
    fn candidates_walk_up_to_the_root() {
        assert_eq!(
            candidates("a/b/f.yaml"),
            ["a/b/.sops.yaml", "a/.sops.yaml", ".sops.yaml"]
        );
        assert_eq!(candidates("f.yaml"), [".sops.yaml"]);
        assert_eq!(relative_to("a/b", "a/b/c/f"), "c/f");
        assert_eq!(relative_to("", "c/f"), "c/f");
        assert_eq!(
            exact_path_regex("flux-system/oci-creds.yaml"),
            r"^flux-system/oci-creds\.yaml$"
        );
    }

    #[test]
    fn prepending_keeps_everything_else_and_comes_first() {
        let rule = NewRule {
            path_regex: exact_path_regex("applications/overlays/prod/flux-system/oci-creds.yaml"),
            age: vec!["age1x".into(), "age1y".into()],
        };
        let edited = prepend_rule(".sops.yaml", ROOT, &rule).unwrap();
        assert!(edited.starts_with("# Fleet-wide rules\ncreation_rules:\n  # Added by ocitool"));
        assert!(edited.ends_with(&ROOT["# Fleet-wide rules\ncreation_rules:\n".len()..]));
        let c = config(&edited);
        let chosen = c
            .rule_for("applications/overlays/prod/flux-system/oci-creds.yaml")
            .unwrap()
            .unwrap();
        assert_eq!(
            (chosen.number, chosen.age.clone()),
            (1, vec!["age1x".into(), "age1y".into()])
        );
        assert!(
            chosen
                .secret_values_in_clear(&[".dockerconfigjson"])
                .is_empty()
        );
        // Items at column 0 and CRLF line endings are kept as they are.
        let flat = "creation_rules:\r\n- path_regex: x\r\n  age: a\r\n";
        let edited = prepend_rule("c", flat, &rule).unwrap();
        assert!(
            edited.contains("\r\n- path_regex: '^applications"),
            "{edited}"
        );
        assert_eq!(edited.matches('\n').count(), edited.matches("\r\n").count());
        assert!(edited.ends_with("- path_regex: x\r\n  age: a\r\n"));
        let err = prepend_rule("c", "creation_rules: [{age: a}]\n", &rule).unwrap_err();
        assert!(err.to_string().contains("by hand"));
    }
}
