//! One run against one repository: its [`Changeset`], the sops bound to it, the operations
//! scripts compose (decrypt credentials, write the source Secret, edit kustomizations), and the
//! per-cluster transactions a fleet-wide run is made of ([`Workspace::for_each_cluster`]).
//!
//! Each operation is a short composition of the domain modules, so a script step and a Rust test
//! call the same code. The workspace stages; only the host applies ([`Workspace::apply`]). It
//! never holds plaintext beyond the call that needed it, and never returns it.

use crate::flux_builds;
use crate::others::{self, OtherCredentials, OtherSecret};
use crate::prerequisites;
use crate::repo::{self, CredFile, Overlay};
use crate::sops_rules;
use crate::target::Target;
use anyhow::{Context, Result, bail};
use ocitool_adapters::changeset::{self, Change, Changeset, RepoLock};
use ocitool_adapters::sops::{ConfigScope, Sops};
use ocitool_core::creds::{self, Credentials};
use ocitool_core::kustomize;
use ocitool_core::reflector::SourceOptions;
use ocitool_core::repo_path::RepoPath;
use ocitool_core::secret::{self, SourceSpec};
use ocitool_core::sops_format;
use std::cell::RefCell;
use std::fmt;
use std::path::Path;

#[derive(Debug)]
pub struct Workspace {
    changes: Changeset,
    sops: Option<Sops>,
    failures: Vec<Failure>,
}

/// A unit of work (a cluster) that failed and was rolled back while the rest of the run went on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The cluster's label, `customer/cluster`.
    pub unit: String,
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.unit, self.message)
    }
}

/// One cluster's turn in [`Workspace::for_each_cluster`].
#[derive(Debug, Clone, Copy)]
pub struct Turn<'a> {
    pub overlay: &'a Overlay,
    /// 1-based position among `total` selected clusters.
    pub index: usize,
    pub total: usize,
    /// True when the cluster is its own transaction (many selected); false for a single named
    /// cluster, whose failure ends the whole run.
    pub isolated: bool,
}

/// How one selected cluster's turn ended: the step's value, or the failure it was rolled back for.
#[derive(Debug)]
pub struct ClusterRun<T> {
    pub overlay: Overlay,
    pub outcome: std::result::Result<T, Failure>,
}

impl Workspace {
    pub fn open(root: &Path) -> Result<Self> {
        Ok(Workspace {
            changes: Changeset::new(root)?,
            sops: None,
            failures: Vec::new(),
        })
    }

    /// The staged view of the repository, for reading (scans, indexes); changes go through
    /// the workspace's own methods.
    pub fn changeset(&self) -> &Changeset {
        &self.changes
    }

    /// Absolute path of the repository root.
    pub fn root(&self) -> &Path {
        self.changes.root()
    }

    /// Content of a repo-relative file as staged so far, or None when it does not exist.
    pub fn read(&self, path: &RepoPath) -> Result<Option<String>> {
        self.changes.read(path)
    }

    /// Whether a repo-relative file exists (staged view).
    pub fn exists(&self, path: &RepoPath) -> Result<bool> {
        self.changes.exists(path)
    }

    /// Stage writing `text` to a repo-relative file.
    pub fn write(&mut self, path: &RepoPath, text: &str) -> Result<()> {
        self.changes.write(path, text)
    }

    /// Stage deleting a repo-relative file; an error when it does not exist.
    pub fn delete(&mut self, path: &RepoPath) -> Result<()> {
        self.changes.delete(path)
    }

    /// The net changes staged so far.
    pub fn pending(&self) -> Result<Vec<Change>> {
        self.changes.changes()
    }

    /// The staged changes as a diff. A change to a sops-encrypted Secret is shown as what it
    /// changes (registry, username, fingerprint: old → new; decrypted in memory only) instead of
    /// ciphertext, unless `raw`; every other change as a unified diff, Secret values masked.
    pub fn diff(&self, raw: bool) -> Result<String> {
        // The run's own sops when it already decrypted something (it usually has), else found now.
        let mut sops: Option<Sops> = self.sops.clone();
        let mut out = String::new();
        for change in self.changes.changes()? {
            let encrypted = [&change.before, &change.after]
                .iter()
                .any(|text| text.as_deref().is_some_and(sops_format::is_encrypted));
            if raw || !encrypted {
                out.push_str(&changeset::unified_diff(&change));
                continue;
            }
            if sops.is_none() {
                sops = Some(Sops::locate(self.changes.root())?);
            }
            out.push_str(&changeset::diff_header(&change));
            match credential_change(sops.as_ref().expect("located above"), &change) {
                Ok(lines) if lines.is_empty() => {
                    out.push_str("  credentials unchanged (re-encrypted, or metadata only)\n")
                }
                Ok(lines) => lines.iter().for_each(|l| out.push_str(&format!("  {l}\n"))),
                Err(err) => out.push_str(&format!(
                    "  (credentials not shown: {err:#}; --diff=raw shows the file)\n"
                )),
            }
        }
        Ok(out)
    }

    /// Write every staged change under the repository's `lock` (see [`Changeset::apply`]); the
    /// host's call alone.
    pub fn apply(&self, lock: &RepoLock) -> Result<Vec<Change>> {
        self.changes.apply(lock)
    }

    /// Clusters that failed and were rolled back in this run.
    pub fn failures(&self) -> &[Failure] {
        &self.failures
    }

    /// Run `step` for every overlay `target` selects, each cluster a transaction. A single named
    /// cluster is one unit: its error is returned and ends the run. Otherwise a cluster whose step
    /// fails has everything it staged rolled back and is recorded in [`Self::failures`] (the run
    /// then exits 1), while the others go on.
    ///
    /// Takes the workspace in its `RefCell` and borrows it only between steps, because a step
    /// (a script closure) calls back into the same workspace.
    pub fn for_each_cluster<T, E>(
        ws: &RefCell<Workspace>,
        target: &Target,
        mut step: impl FnMut(Turn<'_>) -> std::result::Result<T, E>,
    ) -> std::result::Result<Vec<ClusterRun<T>>, E>
    where
        E: From<anyhow::Error> + fmt::Display,
    {
        let overlays = target.overlays(ws.borrow().changeset())?;
        let total = overlays.len();
        let isolated = !target.is_one_overlay();
        let mut runs = Vec::with_capacity(total);
        for (i, overlay) in overlays.into_iter().enumerate() {
            let turn = Turn {
                overlay: &overlay,
                index: i + 1,
                total,
                isolated,
            };
            let mark = ws.borrow().changes.mark();
            let outcome = match step(turn) {
                Ok(value) => Ok(value),
                Err(err) if !isolated => return Err(err),
                Err(err) => {
                    let failure = Failure {
                        unit: overlay.label(),
                        message: err.to_string(),
                    };
                    let mut ws = ws.borrow_mut();
                    ws.changes.rollback(mark);
                    ws.failures.push(failure.clone());
                    Err(failure)
                }
            };
            runs.push(ClusterRun { overlay, outcome });
        }
        Ok(runs)
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

    /// The plaintext of each `(path, encrypted)` file: decrypted in parallel (in memory only)
    /// when encrypted, as it is otherwise; a failed decryption stays that file's error.
    fn plaintexts(&mut self, files: &[(&RepoPath, bool)]) -> Result<Vec<Result<String>>> {
        let contents: Vec<(String, String)> = files
            .iter()
            .map(|(path, _)| Ok((path.to_string(), self.content(path)?)))
            .collect::<Result<_>>()?;
        let encrypted: Vec<(String, String)> = files
            .iter()
            .zip(&contents)
            .filter(|((_, encrypted), _)| *encrypted)
            .map(|(_, c)| c.clone())
            .collect();
        let mut decrypted = self.sops()?.decrypt_all(&encrypted).into_iter();
        Ok(files
            .iter()
            .zip(contents)
            .map(|((_, encrypted), (_, text))| {
                if !encrypted {
                    return Ok(text);
                }
                let plaintext = decrypted.next().expect("one per encrypted file")?;
                Ok(plaintext.expose().to_string())
            })
            .collect())
    }

    /// Decrypt and read every file's credentials, in parallel; the first failure names its file.
    /// Unencrypted files are read as they are (the scan has already reported them).
    pub fn credentials_of(&mut self, files: &[CredFile]) -> Result<Vec<Credentials>> {
        let wanted: Vec<(&RepoPath, bool)> = files.iter().map(|f| (&f.path, f.encrypted)).collect();
        let plaintexts = self.plaintexts(&wanted)?;
        files
            .iter()
            .zip(plaintexts)
            .map(|(file, plaintext)| read_file_credentials(file, file.path.as_str(), &plaintext?))
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
    /// be a change with no meaning). Returns whether anything was staged. The ciphertext is staged
    /// only once proven: sops metadata, every value `ENC[…]`, and it decrypts back to `spec`
    /// ([`secret::encrypt_source`]).
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

    /// The overlay's other dockerconfigjson Secrets ([`others`]) with their credentials,
    /// decrypted in parallel and in memory only; one that cannot be read says why instead.
    pub fn other_secrets(&mut self, overlay: &Overlay) -> Result<Vec<OtherCredentials>> {
        let found = others::find(&self.changes, overlay)?;
        let wanted: Vec<(&RepoPath, bool)> = found.iter().map(|o| (&o.path, o.encrypted)).collect();
        let plaintexts = self.plaintexts(&wanted)?;
        Ok(found
            .into_iter()
            .zip(plaintexts)
            .map(|(secret, plaintext)| {
                let path = secret.path.as_str();
                let credentials = plaintext
                    .and_then(|p| secret::read_credentials(path, &p, None))
                    .map(|c| c.with_origin(path))
                    .map_err(|e| format!("{e:#}"));
                OtherCredentials {
                    secret,
                    credentials,
                }
            })
            .collect())
    }

    /// Stage `other` (a sops-encrypted dockerconfigjson Secret) carrying `credentials`, everything
    /// else kept, encrypted under the creation rule of its nearest `.sops.yaml` and proven like
    /// the source ([`secret::encrypt_proven`]). False (nothing staged) when it already carries
    /// exactly these credentials.
    pub fn rotate_other(&mut self, other: &OtherSecret, credentials: &Credentials) -> Result<bool> {
        let path = other.path.as_str();
        if !other.encrypted {
            bail!(
                "{path} is not sops-encrypted, so ocitool will not write credentials into it; encrypt it                  (sops encrypt -i, from the directory of its .sops.yaml) and run again"
            );
        }
        let text = self.content(&other.path)?;
        let plaintext = self.sops()?.decrypt(path, &text)?;
        let current = secret::read_credentials(path, plaintext.expose(), None)?;
        if current.with_origin("") == credentials.clone().with_origin("") {
            return Ok(false);
        }
        let rewritten = secret::with_dockerconfigjson(path, plaintext.expose(), credentials)?;
        let config = sops_rules::coverage(&self.changes, path, &prerequisites::SOURCE_KEYS)?
            .require(path)?;
        let encryptor = Under {
            sops: self.sops()?,
            scope: config.scope(),
        };
        let ciphertext = secret::encrypt_proven(&encryptor, path, &rewritten)?;
        self.changes.write(&other.path, &ciphertext)?;
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

    /// Stage taking per-service credentials `file` out of every kustomization listing it (the
    /// file itself is deleted by the caller). A folder left holding only a kustomization that now
    /// builds nothing (a shared credentials folder such as `services/global/<name>/`) goes as a
    /// whole: its kustomization is deleted and the folder's entry removed from every kustomization
    /// of the overlay that includes it, since kustomize refuses a `resources:` entry naming a
    /// directory without a kustomization file. Returns how many kustomization files were edited
    /// or deleted.
    pub fn unlist(&mut self, overlay: &Overlay, file: &CredFile) -> Result<usize> {
        let mut edited = 0;
        for kustomization in &file.kustomizations {
            if !self.remove_resource(kustomization, &file.path)? {
                continue;
            }
            edited += 1;
            let folder = kustomize::dir_of(kustomization);
            let idx = repo::index(&self.changes, overlay)?;
            // A folder a Flux Kustomization builds stays: removing it would leave a dangling `spec.path`.
            let built_by_flux = idx.flux_kustomizations.iter().any(|f| f.path == folder);
            if !built_by_flux && self.folder_is_spent(kustomization, &file.path)? {
                self.changes.delete(kustomization)?;
                let includers: Vec<RepoPath> = idx
                    .referencing(&folder)
                    .iter()
                    .map(|k| k.path.clone())
                    .collect();
                for includer in includers {
                    self.remove_resource(&includer, &folder)?;
                    edited += 1;
                }
            }
        }
        Ok(edited)
    }

    /// Whether `kustomization`'s folder holds nothing but it (and `leaving`, about to be deleted)
    /// and it builds nothing.
    fn folder_is_spent(&self, kustomization: &RepoPath, leaving: &RepoPath) -> Result<bool> {
        let folder = kustomize::dir_of(kustomization);
        let others = self
            .changes
            .files_under(&folder)?
            .into_iter()
            .any(|f| &f != kustomization && &f != leaving);
        Ok(!others
            && kustomize::builds_nothing(kustomization.as_str(), &self.content(kustomization)?)?)
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

    /// The namespaces `overlay`'s source must be mirrored into: those of its per-service copies
    /// and those where what its Flux Kustomizations build (with `sources` mapped) uses the Secret
    /// `options` names. flux reads the files on disk, so this is refused once the cluster has
    /// staged changes.
    pub fn plan_namespaces(
        &self,
        overlay: &Overlay,
        per_service: &[String],
        sources: &flux_builds::Sources,
        options: &SourceOptions,
    ) -> Result<flux_builds::NamespacePlan> {
        let staged = self.pending()?;
        let inside = format!("{}/", overlay.path);
        if let Some(change) = staged.iter().find(|c| c.path.starts_with(&inside)) {
            bail!(
                "{}: consumers are read from the files on disk, but {} is already staged; plan the namespaces before staging this cluster's changes",
                overlay.label(),
                change.path
            );
        }
        let idx = repo::index(&self.changes, overlay)?;
        let builds = flux_builds::build_all(self.root(), &idx, sources)?;
        let analysis =
            flux_builds::analyse(&builds, options.source_name(), options.source_namespace());
        flux_builds::plan_namespaces(per_service, &analysis, options.source_name())
    }

    pub fn scan(&self, overlay: &Overlay) -> Result<repo::Scan> {
        repo::scan(&self.changes, overlay)
    }
}

/// What a change to a credentials Secret does to its credentials, one line per registry.
fn credential_change(sops: &Sops, change: &Change) -> Result<Vec<String>> {
    let read = |text: &Option<String>| -> Result<Option<Credentials>> {
        let Some(text) = text else { return Ok(None) };
        let credentials = if sops_format::is_encrypted(text) {
            let plaintext = sops.decrypt(&change.path, text)?;
            secret::read_credentials(&change.path, plaintext.expose(), None)?
        } else {
            secret::read_credentials(&change.path, text, None)?
        };
        Ok(Some(credentials))
    };
    Ok(creds::describe_change(
        read(&change.before)?.as_ref(),
        read(&change.after)?.as_ref(),
    ))
}

/// sops bound to the `.sops.yaml` that applies to the file being encrypted.
struct Under<'a> {
    sops: &'a Sops,
    scope: ConfigScope<'a>,
}

/// Encrypts with the applicable config; decrypts (to prove the result) as any repository file.
impl secret::Cipher for Under<'_> {
    fn encrypt(&self, _path: &str, plaintext: &str) -> Result<String> {
        Ok(self.sops.encrypt_under(self.scope, plaintext)?)
    }

    fn decrypt(&self, path: &str, ciphertext: &str) -> Result<String> {
        Ok(self.sops.decrypt(path, ciphertext)?.expose().to_string())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_cluster_is_rolled_back_and_recorded_while_the_others_go_on() {
        let dir = tempfile::tempdir().unwrap();
        for cluster in ["dev", "prod", "test"] {
            std::fs::create_dir_all(
                dir.path()
                    .join(format!("acme/applications/overlays/{cluster}")),
            )
            .unwrap();
        }
        let ws = RefCell::new(Workspace::open(dir.path()).unwrap());
        let every = Target::new(Some("acme"), None).unwrap();
        let runs = Workspace::for_each_cluster(&ws, &every, |turn| {
            ws.borrow_mut().write(&turn.overlay.join("a.txt"), "x")?;
            if turn.overlay.cluster == "prod" {
                anyhow::bail!("refused");
            }
            Ok(turn.index)
        })
        .unwrap();
        let outcomes: Vec<_> = runs
            .iter()
            .map(|r| r.outcome.as_ref().ok().copied())
            .collect();
        assert_eq!(outcomes, [Some(1), None, Some(3)]);
        let ws_ref = ws.borrow();
        let staged: Vec<String> = ws_ref
            .pending()
            .unwrap()
            .into_iter()
            .map(|c| c.path)
            .collect();
        assert_eq!(
            staged,
            [
                "acme/applications/overlays/dev/a.txt",
                "acme/applications/overlays/test/a.txt"
            ]
        );
        assert_eq!(ws_ref.failures()[0].to_string(), "acme/prod: refused");
    }

    #[test]
    fn a_named_cluster_is_one_unit_whose_error_ends_the_run() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("applications/overlays/prod")).unwrap();
        let ws = RefCell::new(Workspace::open(dir.path()).unwrap());
        let prod = Target::new(None, Some("prod")).unwrap();
        let result: anyhow::Result<Vec<ClusterRun<()>>> =
            Workspace::for_each_cluster(&ws, &prod, |turn| {
                assert!(!turn.isolated);
                anyhow::bail!("refused")
            });
        assert_eq!(result.unwrap_err().to_string(), "refused");
        assert!(ws.borrow().failures().is_empty());
    }
}
