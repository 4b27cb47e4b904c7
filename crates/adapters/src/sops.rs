//! Driving the real `sops` binary (3.9 or newer): decrypt into memory, encrypt from standard input.
//!
//! Decryption runs with the repository root as working directory and a repo-relative
//! `--filename-override`. Encryption for a repository file goes through [`Sops::encrypt_under`]:
//! the caller names the `.sops.yaml` that applies (the nearest one, as staged) and the file's path
//! relative to it, and sops is run with exactly that config (`--config`, working directory = the
//! config's directory, relative `--filename-override`), so its first-matching creation rule is
//! the one running `sops -e` from the file's directory would use. Content always
//! travels through pipes: this module must never write plaintext to disk, and never put plaintext
//! into an error (sops's own stderr is passed on, through [`ocitool_core::redact`]).

use crate::process::{Invocation, ProcessError};
use crate::tools;
use anyhow::{Context, Result, bail};
use rayon::prelude::*;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Oldest sops with `sops decrypt`/`sops encrypt` subcommands and `--filename-override`.
const MIN_VERSION: (u32, u32) = (3, 9);

/// How long one sops run may take (`OCITOOL_TIMEOUT` overrides): age answers in milliseconds, but
/// a cloud KMS or a key service behind a slow network can take many seconds per call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// The exit codes of the `sops` binary this adapter tells apart, from sops v3.13.2
/// `cmd/sops/codes/codes.go`.
mod codes {
    pub const ERROR_GENERIC: i32 = 1;
    pub const MAC_MISMATCH: i32 = 51;
    pub const COULD_NOT_RETRIEVE_KEY: i32 = 128;
}

/// How many lines of sops's stderr an error quotes: the reason and the per-key details.
const REASON_LINES: usize = 12;

/// What was asked of sops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Decrypt,
    Encrypt,
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Operation::Decrypt => "decrypt",
            Operation::Encrypt => "encrypt",
        })
    }
}

/// A failed sops run, classified once from sops's exit code. `reason`/`stderr` is sops's own
/// message (first lines, redacted); it names keys and files, never plaintext values.
#[derive(Debug, thiserror::Error)]
pub enum SopsError {
    /// None of the keys available here opens (or, encrypting, seals) the data key.
    #[error(
        "sops could not {operation} {path}; check that your key for it is available ({key})\n{reason}"
    )]
    NoKey {
        operation: Operation,
        path: String,
        reason: String,
        /// The key file sops was given ([`AgeKeyFile::describe`]).
        key: String,
    },
    /// The file decrypts, but its MAC does not match: it was changed after it was encrypted.
    #[error(
        "sops could not decrypt {path}: its MAC does not match its content, so it was changed after it was encrypted; restore it (e.g. from git) or encrypt the plaintext again\n{reason}"
    )]
    MacMismatch { path: String, reason: String },
    #[error(
        "sops could not encrypt {path}; check that .sops.yaml has a creation rule whose path_regex matches it"
    )]
    NoCreationRule { path: String },
    #[error("sops could not {operation} {path}: {cause}")]
    Timeout {
        operation: Operation,
        path: String,
        cause: ProcessError,
    },
    #[error("{0}")]
    ToolMissing(ProcessError),
    /// Any other exit: `code` is sops's (`None` for a signal), `stderr` its reason.
    #[error("sops could not {operation} {path} ({}): {stderr}", crate::process::exit_description(*code))]
    Failed {
        operation: Operation,
        path: String,
        code: Option<i32>,
        stderr: String,
    },
    /// sops could not be started, or printed something other than UTF-8.
    #[error("sops could not {operation} {path}: {cause}")]
    Run {
        operation: Operation,
        path: String,
        cause: ProcessError,
    },
}

impl SopsError {
    fn classify(operation: Operation, path: &str, err: ProcessError) -> Self {
        let path = path.to_string();
        match err {
            ProcessError::NotFound { .. } => SopsError::ToolMissing(err),
            ProcessError::Timeout { .. } => SopsError::Timeout {
                operation,
                path,
                cause: err,
            },
            ProcessError::Failed { code, stderr, .. } => {
                Self::from_exit(operation, path, code, &stderr)
            }
            _ => SopsError::Run {
                operation,
                path,
                cause: err,
            },
        }
    }

    fn from_exit(operation: Operation, path: String, code: Option<i32>, stderr: &str) -> Self {
        let reason = first_lines(stderr, REASON_LINES).to_string();
        match code {
            Some(codes::COULD_NOT_RETRIEVE_KEY) => SopsError::NoKey {
                operation,
                path,
                reason,
                key: KEY_FILE_ENV.to_string(),
            },
            Some(codes::MAC_MISMATCH) => SopsError::MacMismatch { path, reason },
            // The one case without a code of its own: config.LoadCreationRuleForFile returns a
            // plain error, "error loading config: no matching creation rules found"
            // (config/config.go), that toExitError (cmd/sops/main.go) turns into ErrorGeneric.
            // So only for an encrypt that exited 1 does sops's wording decide.
            Some(codes::ERROR_GENERIC)
                if operation == Operation::Encrypt
                    && stderr.contains("no matching creation rules found") =>
            {
                SopsError::NoCreationRule { path }
            }
            _ => SopsError::Failed {
                operation,
                path,
                code,
                stderr: reason,
            },
        }
    }

    /// A [`SopsError::NoKey`] naming the key file sops was given.
    fn with_key_file(self, key_file: &AgeKeyFile) -> Self {
        match self {
            SopsError::NoKey {
                operation,
                path,
                reason,
                ..
            } => SopsError::NoKey {
                operation,
                path,
                reason,
                key: key_file.describe(),
            },
            other => other,
        }
    }
}

/// Decrypted file content. `Debug` never shows it; read it with [`Plaintext::expose`].
pub struct Plaintext(String);

impl Plaintext {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Plaintext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Plaintext(<{} bytes redacted>)", self.0.len())
    }
}

/// The age key file sops is given. sops reads `SOPS_AGE_KEY_FILE` relative to its own working
/// directory, which is the repository root here, not the user's: a relative path is made
/// absolute against ocitool's working directory once, and that path is what sops gets and what
/// errors name. (sops v3.13.2 age/keysource.go: `SopsAgeKeyFileEnv = "SOPS_AGE_KEY_FILE"`,
/// besides `SOPS_AGE_KEY`, `SOPS_AGE_KEY_CMD` and `<user config dir>/sops/age/keys.txt`.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgeKeyFile {
    NotSet,
    Given(PathBuf),
}

const KEY_FILE_ENV: &str = "SOPS_AGE_KEY_FILE";

impl AgeKeyFile {
    /// From the environment, resolved against `cwd`.
    pub fn from_env(cwd: &Path) -> Self {
        match std::env::var_os(KEY_FILE_ENV).filter(|v| !v.is_empty()) {
            Some(path) => AgeKeyFile::Given(cwd.join(path)),
            None => AgeKeyFile::NotSet,
        }
    }

    /// What sops was given, for error messages.
    pub fn describe(&self) -> String {
        match self {
            AgeKeyFile::Given(path) if path.is_file() => {
                format!("{KEY_FILE_ENV}={}", path.display())
            }
            AgeKeyFile::Given(path) => {
                format!("{KEY_FILE_ENV}={}, which does not exist", path.display())
            }
            AgeKeyFile::NotSet => format!(
                "{KEY_FILE_ENV} is not set; sops then tries SOPS_AGE_KEY, SOPS_AGE_KEY_CMD and ~/.config/sops/age/keys.txt"
            ),
        }
    }
}

/// A located, version-checked sops for one repository.
#[derive(Debug, Clone)]
pub struct Sops {
    root: std::path::PathBuf,
    key_file: AgeKeyFile,
    /// Environment changes for every run (tests isolate the key sources sops looks at).
    env: Vec<(OsString, Option<OsString>)>,
}

impl Sops {
    /// Find sops, check its version, and bind it to the repository at `root`.
    pub fn locate(root: &Path) -> Result<Self> {
        let invocation = Invocation::new(tools::SOPS, DEFAULT_TIMEOUT).map_err(|e| match e {
            ProcessError::NotFound { .. } => anyhow::Error::new(SopsError::ToolMissing(e)),
            e => e.into(),
        })?;
        let bin = invocation.program().to_path_buf();
        let text = invocation
            .args(["--version", "--disable-version-check"])
            .run_text()?;
        let version = parse_version(&text).with_context(|| {
            format!(
                "could not read the version of {} from `{}`",
                bin.display(),
                text.trim()
            )
        })?;
        if version < MIN_VERSION {
            bail!(
                "{} is sops {}.{}; ocitool needs {}.{} or newer ({})",
                bin.display(),
                version.0,
                version.1,
                MIN_VERSION.0,
                MIN_VERSION.1,
                tools::SOPS.install_hint
            );
        }
        let cwd = std::env::current_dir().context("cannot read the working directory")?;
        Ok(Sops {
            root: root.to_path_buf(),
            key_file: AgeKeyFile::from_env(&cwd),
            env: Vec::new(),
        })
    }

    /// Decrypt `ciphertext` (the content of repo-relative `path`, possibly only staged) into memory.
    pub fn decrypt(&self, path: &str, ciphertext: &str) -> Result<Plaintext, SopsError> {
        self.run(Operation::Decrypt, path, ciphertext)
            .map(Plaintext)
    }

    /// Decrypt many files at once, bounded by the machine's cores (sops is CPU- and start-up-bound).
    pub fn decrypt_all(&self, files: &[(String, String)]) -> Vec<Result<Plaintext, SopsError>> {
        files
            .par_iter()
            .map(|(path, ciphertext)| self.decrypt(path, ciphertext))
            .collect()
    }

    /// Encrypt `plaintext` for repo-relative `path` with the creation rule `.sops.yaml` assigns to it.
    /// The plaintext goes to sops's standard input only.
    pub fn encrypt(&self, path: &str, plaintext: &str) -> Result<String, SopsError> {
        self.run(Operation::Encrypt, path, plaintext)
    }

    /// Encrypt `plaintext` with the creation rule `scope.config` assigns to `scope.relative_path`.
    ///
    /// sops reads the config from `--config` and matches the rule against the override path made
    /// absolute from the working directory, minus the config's directory (sops v3.13.2
    /// cmd/sops/main.go `filepath.Abs(fileNameOverride)`, config/config.go
    /// `parseCreationRuleForFile`). The config is copied into a private directory so that a
    /// staged, not yet applied edit counts: it holds recipients only, never a secret.
    pub fn encrypt_under(&self, scope: ConfigScope, plaintext: &str) -> Result<String, SopsError> {
        let path = scope.relative_path;
        let io = |e: std::io::Error| {
            SopsError::classify(
                Operation::Encrypt,
                path,
                ProcessError::Spawn {
                    program: "sops".into(),
                    cause: e,
                },
            )
        };
        let dir = tempfile::tempdir().map_err(io)?;
        let config = dir.path().join(ocitool_core::sops_config::CONFIG_FILE);
        std::fs::write(&config, scope.config).map_err(io)?;
        self.run_in(
            dir.path(),
            Some(&config),
            Operation::Encrypt,
            path,
            plaintext,
        )
    }

    fn run(&self, operation: Operation, path: &str, input: &str) -> Result<String, SopsError> {
        self.run_in(&self.root, None, operation, path, input)
    }

    fn run_in(
        &self,
        cwd: &Path,
        config: Option<&Path>,
        operation: Operation,
        path: &str,
        input: &str,
    ) -> Result<String, SopsError> {
        let subcommand = operation.to_string();
        let mut invocation = Invocation::new(tools::SOPS, DEFAULT_TIMEOUT)
            .map_err(|e| SopsError::classify(operation, path, e))?;
        if let Some(config) = config {
            invocation = invocation.args([std::ffi::OsStr::new("--config"), config.as_os_str()]);
        }
        let mut invocation = invocation
            .args([subcommand.as_str(), "--filename-override", path])
            .current_dir(cwd)
            .stdin(input);
        if let AgeKeyFile::Given(key_file) = &self.key_file {
            invocation = invocation.env(KEY_FILE_ENV, key_file);
        }
        for (key, value) in &self.env {
            invocation = match value {
                Some(value) => invocation.env(key, value),
                None => invocation.env_remove(key),
            };
        }
        invocation
            .run_text()
            .map_err(|e| SopsError::classify(operation, path, e).with_key_file(&self.key_file))
    }
}

/// The `.sops.yaml` sops must use for one file and that file's path relative to the config's
/// directory (what sops matches `path_regex` against).
#[derive(Debug, Clone, Copy)]
pub struct ConfigScope<'a> {
    /// The config's content as ocitool sees it, staged edits included.
    pub config: &'a str,
    pub relative_path: &'a str,
}

impl ocitool_core::secret::Cipher for Sops {
    fn encrypt(&self, path: &str, plaintext: &str) -> Result<String> {
        Ok(Sops::encrypt(self, path, plaintext)?)
    }

    fn decrypt(&self, path: &str, ciphertext: &str) -> Result<String> {
        Ok(Sops::decrypt(self, path, ciphertext)?.0)
    }
}

fn parse_version(text: &str) -> Option<(u32, u32)> {
    let word = text.split_whitespace().nth(1)?;
    let mut parts = word.trim_start_matches('v').split('.');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

fn first_lines(text: &str, n: usize) -> &str {
    match text.match_indices('\n').nth(n - 1) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

#[cfg(test)]
impl Sops {
    /// This sops with `key_file` as its only age identity: the user's own keys (~/.config/sops/age,
    /// SOPS_AGE_KEY…) must not decide a test.
    fn with_only_key(mut self, key_file: &Path, home: &Path) -> Self {
        let set = |k: &str, v: &Path| (k.into(), Some(v.as_os_str().to_os_string()));
        let unset = |k: &str| (k.into(), None);
        self.key_file = AgeKeyFile::Given(key_file.to_path_buf());
        self.env = vec![
            set("SOPS_AGE_KEY_FILE", key_file),
            set("HOME", home),
            set("XDG_CONFIG_HOME", home),
            unset("SOPS_AGE_KEY"),
            unset("SOPS_AGE_KEY_CMD"),
            unset("SOPS_AGE_SSH_PRIVATE_KEY_FILE"),
        ];
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Indented as sops prints YAML, so a round trip is byte-identical.
    const SECRET: &str = "apiVersion: v1\nkind: Secret\nmetadata:\n    name: creds\nstringData:\n    password: pw-sops-adapter-4Tq8\n";

    /// A repository whose `.sops.yaml` encrypts `secret/*.yaml` (only `stringData`/`data`) for a
    /// fresh age key, with that key's file and an unrelated key's file, both from the pinned
    /// age-keygen.
    struct Repo {
        dir: tempfile::TempDir,
        owner_key: std::path::PathBuf,
        other_key: std::path::PathBuf,
    }

    impl Repo {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let keygen = || {
                Invocation::new(tools::AGE_KEYGEN, Duration::from_secs(30))
                    .unwrap()
                    .run_text()
                    .unwrap()
            };
            let (owner, other) = (keygen(), keygen());
            let recipient = owner
                .lines()
                .find_map(|l| l.strip_prefix("# public key: "))
                .unwrap();
            let write = |name: &str, text: &str| {
                std::fs::write(dir.path().join(name), text).unwrap();
                dir.path().join(name)
            };
            write(
                ".sops.yaml",
                &format!(
                    "creation_rules:\n  - path_regex: ^secret/.*\\.yaml$\n    encrypted_regex: ^(data|stringData)$\n    age: {recipient}\n"
                ),
            );
            Repo {
                owner_key: write("owner.agekey", &owner),
                other_key: write("other.agekey", &other),
                dir,
            }
        }

        fn sops(&self, key_file: &Path) -> Sops {
            Sops::locate(self.dir.path())
                .unwrap()
                .with_only_key(key_file, self.dir.path())
        }

        fn encrypted(&self) -> String {
            let sops = self.sops(&self.owner_key);
            sops.encrypt("secret/creds.yaml", SECRET).unwrap()
        }
    }

    fn assert_no_plaintext(err: &SopsError) {
        assert!(
            !format!("{err} {err:?}").contains("pw-sops-adapter-4Tq8"),
            "{err:?}"
        );
    }

    #[test]
    fn errors_name_the_key_file_sops_was_given() {
        let given = AgeKeyFile::Given("/work/fleet/keys.agekey".into());
        assert!(
            given
                .describe()
                .contains("/work/fleet/keys.agekey, which does not exist")
        );
        assert!(AgeKeyFile::NotSet.describe().contains("is not set"));
    }

    #[test]
    fn the_owner_key_round_trips() {
        let repo = Repo::new();
        let plain = repo
            .sops(&repo.owner_key)
            .decrypt("secret/creds.yaml", &repo.encrypted());
        assert_eq!(plain.unwrap().expose(), SECRET);
    }

    #[test]
    fn an_unrelated_key_is_no_key() {
        let repo = Repo::new();
        let err = repo
            .sops(&repo.other_key)
            .decrypt("secret/creds.yaml", &repo.encrypted())
            .unwrap_err();
        assert!(
            matches!(&err, SopsError::NoKey { operation: Operation::Decrypt, path, .. } if path == "secret/creds.yaml"),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(message.contains("SOPS_AGE_KEY_FILE"), "{message}");
        assert!(message.contains("Failed to get the data key"), "{message}");
        assert_no_plaintext(&err);
    }

    #[test]
    fn a_changed_unencrypted_value_is_a_mac_mismatch() {
        let repo = Repo::new();
        // `metadata.name` stays clear text (encrypted_regex) but is covered by the MAC.
        let tampered = repo.encrypted().replace("name: creds", "name: other");
        let err = repo
            .sops(&repo.owner_key)
            .decrypt("secret/creds.yaml", &tampered)
            .unwrap_err();
        assert!(matches!(&err, SopsError::MacMismatch { .. }), "{err:?}");
        assert!(
            err.to_string().contains("changed after it was encrypted"),
            "{err}"
        );
        assert_no_plaintext(&err);
    }

    #[test]
    fn a_changed_encrypted_value_fails_with_sops_code_and_reason() {
        let repo = Repo::new();
        let text = repo.encrypted();
        let at = text.find("password: ENC[AES256_GCM,data:").unwrap() + 31;
        let tampered = format!("{}A{}", &text[..at], &text[at + 1..]);
        let err = repo
            .sops(&repo.owner_key)
            .decrypt("secret/creds.yaml", &tampered)
            .unwrap_err();
        // ErrorDecryptingTree (25): the value's own AES-GCM tag fails before the MAC is checked.
        assert!(
            matches!(&err, SopsError::Failed { code: Some(25), .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("Error decrypting tree"), "{err}");
    }

    #[test]
    fn a_path_no_rule_matches_is_no_creation_rule() {
        let repo = Repo::new();
        let err = repo
            .sops(&repo.owner_key)
            .encrypt("elsewhere/creds.yaml", SECRET)
            .unwrap_err();
        assert!(
            matches!(&err, SopsError::NoCreationRule { path } if path == "elsewhere/creds.yaml"),
            "{err:?}"
        );
        assert!(err.to_string().contains("creation rule"), "{err}");
        assert_no_plaintext(&err);
    }

    #[test]
    fn versions_are_read_from_sops_output() {
        assert_eq!(parse_version("sops 3.13.2 (latest)\n"), Some((3, 13)));
        assert_eq!(parse_version("sops 3.8.1"), Some((3, 8)));
        assert!(parse_version("sops").is_none());
        assert!((3, 8) < MIN_VERSION && (3, 13) >= MIN_VERSION);
    }

    #[test]
    fn plaintext_debug_is_redacted() {
        assert_eq!(
            format!("{:?}", Plaintext("hunter2".into())),
            "Plaintext(<7 bytes redacted>)"
        );
    }
}
