//! Which `.sops.yaml` and creation rule apply to a repository file, found as sops finds them when
//! run from the file's directory: the nearest `.sops.yaml` upward (through the [`Changeset`], so
//! staged edits count), its rules matched against the path relative to that config's directory
//! (the model is [`ocitool_core::sops_config`], which cites sops's source).
//!
//! This module only reads and decides; it never runs sops (the adapter does, with the
//! [`ConfigScope`] found here) and never edits a config (see [`crate::prerequisites`]).

use anyhow::{Result, bail};
use ocitool_adapters::changeset::Changeset;
use ocitool_adapters::sops::ConfigScope;
use ocitool_core::repo_path::RepoPath;
use ocitool_core::sops_config::{self, CreationRule, SopsConfig};

/// The `.sops.yaml` that applies to one file.
#[derive(Debug, Clone)]
pub struct Applicable {
    /// Repo-relative path of the config, e.g. `applications/overlays/prod/.sops.yaml`.
    pub config_path: String,
    pub text: String,
    pub config: SopsConfig,
    /// The file's path relative to the config's directory: what `path_regex` is matched against.
    pub relative: String,
}

impl Applicable {
    /// The rule sops applies to the file, if any rule matches.
    pub fn rule(&self) -> Result<Option<&CreationRule>> {
        self.config.rule_for(&self.relative)
    }

    /// How the sops adapter must run to use exactly this config and rule.
    pub fn scope(&self) -> ConfigScope<'_> {
        ConfigScope {
            config: &self.text,
            relative_path: &self.relative,
        }
    }
}

/// The nearest `.sops.yaml` at or above `file`'s directory, within the repository.
pub fn nearest(cs: &Changeset, file: &str) -> Result<Option<Applicable>> {
    for config_path in sops_config::candidates(file) {
        let Some(text) = cs.read(&RepoPath::new(&config_path)?)? else {
            continue;
        };
        let dir = config_path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
        return Ok(Some(Applicable {
            config: SopsConfig::parse(&config_path, &text)?,
            relative: sops_config::relative_to(dir, file).to_string(),
            config_path,
            text,
        }));
    }
    Ok(None)
}

/// Whether a Secret written to a file would have its values encrypted.
#[derive(Debug, Clone)]
pub enum Coverage {
    /// A rule applies and encrypts every value: encrypt with this config.
    Encrypted(Applicable),
    /// No `.sops.yaml` at or above the file.
    NoConfig,
    /// The nearest config has no rule matching the file.
    NoRule(Applicable),
    /// The matching rule would leave these `section.key` values in clear text.
    InClear {
        applicable: Applicable,
        rule: CreationRule,
        clear: Vec<String>,
    },
}

/// How a Secret with value `keys` (under `data` or `stringData`) written to `file` would fare.
pub fn coverage(cs: &Changeset, file: &str, keys: &[&str]) -> Result<Coverage> {
    let Some(applicable) = nearest(cs, file)? else {
        return Ok(Coverage::NoConfig);
    };
    let Some(rule) = applicable.rule()?.cloned() else {
        return Ok(Coverage::NoRule(applicable));
    };
    rule.check_selectors(&applicable.config_path)?;
    let clear = rule.secret_values_in_clear(keys);
    Ok(if clear.is_empty() {
        Coverage::Encrypted(applicable)
    } else {
        Coverage::InClear {
            applicable,
            rule,
            clear,
        }
    })
}

impl Coverage {
    /// What is wrong, naming the file, the config and the rule; None when the values are encrypted.
    pub fn problem(&self, file: &str) -> Option<String> {
        match self {
            Coverage::Encrypted(_) => None,
            Coverage::NoConfig => Some(format!(
                "no .sops.yaml applies to {file}: there is none in its directory or any parent up to \
                 the repository root, so sops has no creation rule for it"
            )),
            Coverage::NoRule(a) => Some(format!(
                "{}: no creation rule matches {file} (sops matches path_regex against `{}`, the path \
                 relative to that file's directory)",
                a.config_path, a.relative
            )),
            Coverage::InClear {
                applicable,
                rule,
                clear,
            } => Some(format!(
                "{}: {} applies to {file} and would leave {} in clear text ({}); ocitool refuses to \
                 write credentials sops would not encrypt",
                applicable.config_path,
                rule.describe(),
                clear.join(" and "),
                rule.selector_text()
            )),
        }
    }

    /// The config to encrypt with, or the problem as an error.
    pub fn require(self, file: &str) -> Result<Applicable> {
        let problem = match self {
            Coverage::Encrypted(applicable) => return Ok(applicable),
            other => other.problem(file).unwrap_or_default(),
        };
        bail!(
            "{problem}. Add a creation rule for it with `encrypted_regex: {}` ahead of the others \
             (or run consolidate.rhai with --set prepare=true)",
            sops_config::SECRET_VALUES_REGEX
        )
    }

    /// The config that applies (when there is one).
    pub fn applicable(&self) -> Option<&Applicable> {
        match self {
            Coverage::Encrypted(a) | Coverage::NoRule(a) => Some(a),
            Coverage::InClear { applicable, .. } => Some(applicable),
            Coverage::NoConfig => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(files: &[(&str, &str)]) -> (tempfile::TempDir, Changeset) {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let cs = Changeset::new(dir.path()).unwrap();
        (dir, cs)
    }

    const WEAK_ROOT: &str = "creation_rules:\n  - path_regex: overlays/.*\\.yaml$\n    encrypted_regex: ^(secret)$\n    age: root\n";
    const OVERLAY: &str = "creation_rules:\n  - path_regex: ^flux-system/.*\n    encrypted_regex: ^(data|stringData)$\n    age: own\n";

    #[test]
    fn the_nearest_config_wins_with_paths_relative_to_it() {
        let (_dir, cs) = repo(&[
            (".sops.yaml", WEAK_ROOT),
            ("overlays/prod/.sops.yaml", OVERLAY),
        ]);
        let file = "overlays/prod/flux-system/oci-creds.yaml";
        let Coverage::Encrypted(a) = coverage(&cs, file, &[".dockerconfigjson"]).unwrap() else {
            panic!("the overlay's rule encrypts data")
        };
        assert_eq!(a.config_path, "overlays/prod/.sops.yaml");
        assert_eq!(a.relative, "flux-system/oci-creds.yaml");
        assert_eq!(a.rule().unwrap().unwrap().age, ["own"]);
        // A staged config counts: deleting the overlay's leaves the weak root rule, refused by name.
        let mut cs = cs;
        cs.delete(&RepoPath::new("overlays/prod/.sops.yaml").unwrap())
            .unwrap();
        let err = coverage(&cs, file, &[".dockerconfigjson"])
            .unwrap()
            .require(file)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(".sops.yaml: creation rule #1 (path_regex `overlays/.*\\.yaml$`) applies to overlays/prod/flux-system/oci-creds.yaml and would leave data..dockerconfigjson"),
            "{err}"
        );
        let (_dir, empty) = repo(&[]);
        assert!(matches!(
            coverage(&empty, file, &[]).unwrap(),
            Coverage::NoConfig
        ));
    }
}
