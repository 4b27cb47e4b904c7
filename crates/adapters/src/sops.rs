//! Driving the real `sops` binary (3.9 or newer): decrypt into memory, encrypt from standard input.
//!
//! Every call runs with the repository root as working directory and a repo-relative
//! `--filename-override`, so sops finds the repo's `.sops.yaml` and applies its creation rules
//! (path_regex, recipients, encrypted_regex) exactly as `sops -e -i <path>` would. Content always
//! travels through pipes: this module must never write plaintext to disk, and never put plaintext
//! into an error (sops's own stderr is passed on, through [`ocitool_core::redact`]).

use crate::tools;
use anyhow::{Context, Result, bail};
use rayon::prelude::*;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Oldest sops with `sops decrypt`/`sops encrypt` subcommands and `--filename-override`.
const MIN_VERSION: (u32, u32) = (3, 9);

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

/// A located, version-checked sops for one repository.
#[derive(Debug, Clone)]
pub struct Sops {
    bin: PathBuf,
    root: PathBuf,
}

impl Sops {
    /// Find sops, check its version, and bind it to the repository at `root`.
    pub fn locate(root: &Path) -> Result<Self> {
        let bin = tools::find(tools::SOPS)?;
        let output = Command::new(&bin)
            .args(["--version", "--disable-version-check"])
            .output()
            .with_context(|| format!("could not run {}", bin.display()))?;
        let text = String::from_utf8_lossy(&output.stdout);
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
        Ok(Sops {
            bin,
            root: root.to_path_buf(),
        })
    }

    /// Decrypt `ciphertext` (the content of repo-relative `path`, possibly only staged) into memory.
    pub fn decrypt(&self, path: &str, ciphertext: &str) -> Result<Plaintext> {
        let out = self.run(&["decrypt", "--filename-override", path], ciphertext).with_context(|| {
            format!("sops could not decrypt {path}; check that your key for it is available (SOPS_AGE_KEY_FILE)")
        })?;
        Ok(Plaintext(out))
    }

    /// Decrypt many files at once, bounded by the machine's cores (sops is CPU- and start-up-bound).
    pub fn decrypt_all(&self, files: &[(String, String)]) -> Vec<Result<Plaintext>> {
        files
            .par_iter()
            .map(|(path, ciphertext)| self.decrypt(path, ciphertext))
            .collect()
    }

    /// Encrypt `plaintext` for repo-relative `path` with the creation rule `.sops.yaml` assigns to it.
    /// The plaintext goes to sops's standard input only.
    pub fn encrypt(&self, path: &str, plaintext: &str) -> Result<String> {
        self.run(&["encrypt", "--filename-override", path], plaintext).with_context(|| {
            format!("sops could not encrypt {path}; check that .sops.yaml has a creation rule whose path_regex matches it")
        })
    }
}

impl ocitool_core::secret::Cipher for Sops {
    fn encrypt(&self, path: &str, plaintext: &str) -> Result<String> {
        Sops::encrypt(self, path, plaintext)
    }

    fn decrypt(&self, path: &str, ciphertext: &str) -> Result<String> {
        Ok(Sops::decrypt(self, path, ciphertext)?.0)
    }
}

impl Sops {
    fn run(&self, args: &[&str], input: &str) -> Result<String> {
        let mut child = Command::new(&self.bin)
            .args(args)
            .current_dir(&self.root)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("could not start {}", self.bin.display()))?;
        let mut stdin = child.stdin.take().expect("stdin was piped");
        // Feed stdin from a thread: sops may start writing before it has read everything.
        let input = input.to_string();
        let feeder = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
        let output = child.wait_with_output().context("sops did not finish")?;
        let _ = feeder.join();
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            bail!(
                "sops failed: {}",
                ocitool_core::redact::redact(first_lines(stderr.trim(), 12))
            );
        }
        String::from_utf8(output.stdout).context("sops printed non-UTF-8 output")
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
mod tests {
    use super::*;

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
