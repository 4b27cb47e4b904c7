//! One run against one repository: its [`Changeset`], the sops bound to it, and the operations
//! scripts compose (decrypt credentials, write the source Secret, edit kustomizations).
//!
//! Each operation is a short composition of the domain modules, so a script step and a Rust test
//! call the same code. The workspace stages; only the host applies ([`Changeset::apply`]). It
//! never holds plaintext beyond the call that needed it, and never returns it.

use crate::prerequisites;
use crate::repo::{self, CredFile, Overlay};
use crate::sops_rules;
use anyhow::{Context, Result, bail};
use ocitool_adapters::changeset::Changeset;
use ocitool_adapters::sops::{ConfigScope, Sops};
use ocitool_core::creds::Credentials;
use ocitool_core::kustomize;
use ocitool_core::repo_path::RepoPath;
use ocitool_core::secret::{self, SourceSpec};
use std::path::Path;

#[derive(Debug)]
pub struct Workspace {
    pub changes: Changeset,
    sops: Option<Sops>,
    /// Units of work (clusters) that failed and were rolled back while the rest went on.
    pub failures: Vec<String>,
}

impl Workspace {
    pub fn open(root: &Path) -> Result<Self> {
        Ok(Workspace {
            changes: Changeset::new(root)?,
            sops: None,
            failures: Vec::new(),
        })
    }

    /// sops, located on first use so that commands that never decrypt work without it.
    pub fn sops(&mut self) -> Result<&Sops> {
        if self.sops.is_none() {
            self.sops = Some(Sops::locate(self.changes.root())?);
        }
        Ok(self.sops.as_ref().expect("just set"))
    }

    fn content(&self, path: &RepoPath) -> Result<String> {
        self.changes
            .read(path)?
            .with_context(|| format!("{path} does not exist"))
    }

    /// Decrypt and read every file's credentials, in parallel; the first failure names its file.
    /// Unencrypted files are read as they are (the scan has already reported them).
    pub fn credentials_of(&mut self, files: &[CredFile]) -> Result<Vec<Credentials>> {
        let contents: Vec<(String, String)> = files
            .iter()
            .map(|f| Ok((f.path.to_string(), self.content(&f.path)?)))
            .collect::<Result<_>>()?;
        let encrypted: Vec<(String, String)> = files
            .iter()
            .zip(&contents)
            .filter(|(f, _)| f.encrypted)
            .map(|(_, c)| c.clone())
            .collect();
        let mut decrypted = self.sops()?.decrypt_all(&encrypted).into_iter();
        files
            .iter()
            .zip(contents)
            .map(|(file, (path, text))| {
                let plaintext = if file.encrypted {
                    decrypted
                        .next()
                        .expect("one per file")?
                        .expose()
                        .to_string()
                } else {
                    text
                };
                read_file_credentials(file, &path, &plaintext)
            })
            .collect()
    }

    /// The existing source Secret of `overlay`, decrypted, or None when there is none yet.
    pub fn source_of(&mut self, overlay: &Overlay) -> Result<Option<SourceSpec>> {
        let path = overlay.source_path();
        let Some(text) = self.changes.read(&path)? else {
            return Ok(None);
        };
        let plaintext = self.sops()?.decrypt(path.as_str(), &text)?;
        let mut spec = secret::read_source(path.as_str(), plaintext.expose())?;
        // Named so that `--set prefer=source` can settle a conflict in the existing source's favour.
        spec.credentials = spec.credentials.with_origin("source");
        Ok(Some(spec))
    }

    /// Stage `spec` as the overlay's source Secret, encrypted. When an existing source already says
    /// exactly this, nothing is staged (sops ciphertext differs on every run, so rewriting would
    /// be a change with no meaning). Returns whether anything was staged.
    pub fn write_source(&mut self, overlay: &Overlay, spec: &SourceSpec) -> Result<bool> {
        if self
            .source_of(overlay)?
            .is_some_and(|existing| existing.already_says(spec))
        {
            return Ok(false);
        }
        let path = overlay.source_path();
        // Refused before sops runs: a rule that leaves the credentials in clear, or none at all.
        let config =
            sops_rules::coverage(&self.changes, path.as_str(), &prerequisites::SOURCE_KEYS)?
                .require(path.as_str())?;
        let encryptor = Under {
            sops: self.sops()?,
            scope: config.scope(),
        };
        let ciphertext = secret::encrypt_source(&encryptor, path.as_str(), spec)?;
        self.changes.write(&path, &ciphertext)?;
        Ok(true)
    }

    /// Check what consolidating `overlay` needs before anything is staged (see
    /// [`prerequisites`]): with `prepare`, stage the fixes and return the files edited; without,
    /// refuse with the exact fix.
    pub fn ensure_prerequisites(
        &mut self,
        overlay: &Overlay,
        files: &[CredFile],
        prepare: bool,
    ) -> Result<Vec<String>> {
        let idx = repo::index(&self.changes, overlay)?;
        let paths: Vec<String> = files.iter().map(|f| f.path.to_string()).collect();
        let gaps = prerequisites::check(&self.changes, &idx, overlay, &paths)?;
        if gaps.is_empty() {
            return Ok(Vec::new());
        }
        if !prepare || gaps.iter().any(|g| g.edit.is_none()) {
            bail!(prerequisites::refusal(overlay, &gaps));
        }
        for (path, text) in gaps.iter().filter_map(|g| g.edit.as_ref()) {
            self.changes.write(&RepoPath::new(path)?, text)?;
        }
        Ok(prerequisites::describe(&gaps))
    }

    /// Remove every `resources:` entry of a kustomization resolving to `target`, however it is
    /// spelled; false when none does.
    pub fn remove_resource(&mut self, kustomization: &RepoPath, target: &RepoPath) -> Result<bool> {
        self.edit_kustomization(kustomization, |text| {
            kustomize::remove_resource(kustomization, text, target)
        })
    }

    /// Add a `resources:` entry for `target` to a kustomization; false when one already resolves to it.
    pub fn add_resource(&mut self, kustomization: &RepoPath, target: &RepoPath) -> Result<bool> {
        self.edit_kustomization(kustomization, |text| {
            kustomize::add_resource(kustomization, text, target)
        })
    }

    fn edit_kustomization(
        &mut self,
        path: &RepoPath,
        edit: impl FnOnce(&str) -> Result<Option<String>>,
    ) -> Result<bool> {
        let text = self.content(path)?;
        match edit(&text)? {
            Some(edited) => {
                self.changes.write(path, &edited)?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    pub fn scan(&self, overlay: &Overlay) -> Result<repo::Scan> {
        repo::scan(&self.changes, overlay)
    }
}

/// sops bound to the `.sops.yaml` that applies to the file being encrypted.
struct Under<'a> {
    sops: &'a Sops,
    scope: ConfigScope<'a>,
}

impl secret::Encrypt for Under<'_> {
    fn encrypt(&self, _path: &str, plaintext: &str) -> Result<String> {
        Ok(self.sops.encrypt_under(self.scope, plaintext)?)
    }
}

/// Credentials of one per-service file; basic-auth Secrets take their registry from the OCI
/// repository in the same directory whose `secretRef` names them.
fn read_file_credentials(file: &CredFile, path: &str, plaintext: &str) -> Result<Credentials> {
    let secret = secret::secret_document(path, plaintext)?;
    let name = secret::meta(path, &secret)?.name;
    let registry = file.oci_registries.get(&name).map(String::as_str);
    Ok(secret::read_credentials(path, plaintext, registry)?.with_origin(&file.service))
}
