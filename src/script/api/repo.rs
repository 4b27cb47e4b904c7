//! `repo` methods: navigating the fleet, reading and staging changes.

use crate::script::api::ScriptResult;
use crate::script::runtime_error;
use ocitool_core::kustomize::dir_of;
use ocitool_core::repo_path::RepoPath;
use rhai::plugin::*;

/// A script's path string as a [`RepoPath`]: the boundary where `..` above the root, absolute
/// paths and empty strings are refused, naming the path.
fn repo_path(path: &str) -> ScriptResult<RepoPath> {
    RepoPath::new(path).map_err(|e| runtime_error(e.into()))
}

/// `file` as spelled in the kustomization `kustomization` (relative to its directory).
fn entry_target(kustomization: &RepoPath, file: &str) -> ScriptResult<RepoPath> {
    dir_of(kustomization)
        .join(file)
        .map_err(|e| runtime_error(anyhow::anyhow!("{kustomization}: {e}")))
}

#[export_module]
pub mod repo_api {
    use super::{entry_target, repo_path};
    use crate::progress::{Display, Progress};
    use crate::script::Repo;
    use crate::script::api::{ScriptResult, items, strings};
    use crate::script::runtime_error;
    use ocitool_adapters::changeset::Mark;
    use ocitool_core::creds::Credentials;
    use ocitool_core::secret::SourceSpec;
    use ocitool_orchestration::repo::{self, CredFile, Overlay, Scan};
    use rhai::{Array, Dynamic, FnPtr, NativeCallContext};

    /// Keys of the maps built here: per-cluster results and staged changes.
    pub(crate) const CLUSTER: &str = "cluster";
    pub(crate) const STATUS: &str = "status";
    pub(crate) const ERROR: &str = "error";
    pub(crate) const PATH: &str = "path";
    pub(crate) const KIND: &str = "kind";

    fn none_if_empty(customer: &str) -> Option<&str> {
        Some(customer).filter(|c| !c.is_empty())
    }

    /// The overlay of `cluster` for `customer` ("" in a single-customer repo); an error lists the clusters there are.
    #[rhai_fn(global, pure, return_raw)]
    pub fn overlay(repo: &mut Repo, customer: &str, cluster: &str) -> ScriptResult<Overlay> {
        repo::overlay(&repo.0.borrow().changes, none_if_empty(customer), cluster)
            .map_err(runtime_error)
    }

    /// Every cluster overlay of `customer`; with "" every overlay of the repo (all customers).
    #[rhai_fn(global, pure, return_raw)]
    pub fn overlays(repo: &mut Repo, customer: &str) -> ScriptResult<Array> {
        let found = repo::overlays(&repo.0.borrow().changes, none_if_empty(customer))
            .map_err(runtime_error)?;
        Ok(found.into_iter().map(Dynamic::from).collect())
    }

    /// The overlays a workflow targets: the one of `cluster`, or with cluster "" every overlay of `customer` ("" = every customer); an error when there are none.
    #[rhai_fn(global, pure, return_raw)]
    pub fn select_overlays(repo: &mut Repo, customer: &str, cluster: &str) -> ScriptResult<Array> {
        if !cluster.is_empty() {
            return Ok(vec![Dynamic::from(overlay(repo, customer, cluster)?)]);
        }
        let found = overlays(repo, customer)?;
        if found.is_empty() {
            return Err(runtime_error(anyhow::anyhow!(
                "no cluster overlays found for customer '{customer}'"
            )));
        }
        Ok(found)
    }

    /// Call `step(repo, overlay)` for the selected overlays (as `select_overlays`) and return one result map per cluster: the step's map (given a `cluster` key when it lacks one), or `#{cluster, status: "failed", error}`. A named cluster is one unit: any error stops the run and nothing is written. Otherwise each cluster is all-or-nothing: a failing one is rolled back and recorded (ocitool exits 1) while the others go on, with a progress bar on a terminal and `[i/n] cluster` lines on stderr otherwise.
    #[rhai_fn(global, pure, return_raw)]
    pub fn for_each_cluster(
        ctx: NativeCallContext,
        repo: &mut Repo,
        customer: &str,
        cluster: &str,
        step: FnPtr,
    ) -> ScriptResult<Array> {
        let selected = select_overlays(repo, customer, cluster)?;
        if !cluster.is_empty() {
            let only = selected[0].clone();
            let label = only.clone().cast::<Overlay>().label();
            let result = step.call_within_context::<Dynamic>(&ctx, (repo.clone(), only))?;
            return Ok(vec![result_map(&label, result)]);
        }
        let mut progress = Progress::start(selected.len(), Display::for_stderr());
        let mut results = Array::new();
        for item in selected {
            let label = item.clone().cast::<Overlay>().label();
            progress.begin(&label);
            // Short borrows: the step itself calls back into the repository. It gets `repo` as a
            // parameter because a closure capturing it would share the value this method runs on.
            let mark = repo.0.borrow().changes.mark();
            let result = match step.call_within_context::<Dynamic>(&ctx, (repo.clone(), item)) {
                Ok(result) => result_map(&label, result),
                Err(err) => {
                    repo.0.borrow_mut().changes.rollback(mark);
                    // Where it failed, too: a fleet-wide run does not stop at the error, so this
                    // line is all the reader gets.
                    let script = ctx.call_source().unwrap_or("script");
                    let message = crate::script::located_message(script, &err);
                    repo.record_failure(&label, &message);
                    failed_map(&label, &message)
                }
            };
            results.push(result);
        }
        Ok(results)
    }

    /// What a step returned, as a map that names its cluster.
    fn result_map(label: &str, result: Dynamic) -> Dynamic {
        let mut map = result.try_cast::<rhai::Map>().unwrap_or_else(|| {
            let mut done = rhai::Map::new();
            done.insert(STATUS.into(), "done".into());
            done
        });
        map.entry(CLUSTER.into()).or_insert_with(|| label.into());
        Dynamic::from_map(map)
    }

    fn failed_map(label: &str, message: &str) -> Dynamic {
        let mut map = rhai::Map::new();
        map.insert(CLUSTER.into(), label.into());
        map.insert(STATUS.into(), "failed".into());
        map.insert(
            ERROR.into(),
            ocitool_core::redact::redact(message).into_owned().into(),
        );
        Dynamic::from_map(map)
    }

    /// Scan an overlay: every per-service `oci-creds.yaml`, its namespace and references, the existing source.
    #[rhai_fn(global, pure, return_raw)]
    pub fn scan(repo: &mut Repo, overlay: Overlay) -> ScriptResult<Scan> {
        repo.0.borrow().scan(&overlay).map_err(runtime_error)
    }

    /// Check what consolidating `overlay` (scanned as `scan`) needs before anything is staged: a `.sops.yaml` creation rule that encrypts `<overlay>/flux-system/oci-creds.yaml`'s values, and decryption on the Flux Kustomization applying `flux-system/`. Unmet, it throws with the exact fix; with `prepare` true it stages those fixes instead (a rule prepended to the nearest `.sops.yaml`, a decryption patch in the bootstrap kustomization) and returns the files it edited.
    #[rhai_fn(global, pure, return_raw)]
    pub fn ensure_prerequisites(
        repo: &mut Repo,
        overlay: Overlay,
        scan: Scan,
        prepare: bool,
    ) -> ScriptResult<Array> {
        let edited = repo
            .0
            .borrow_mut()
            .ensure_prerequisites(&overlay, &scan.files, prepare)
            .map_err(runtime_error)?;
        Ok(edited.into_iter().map(Dynamic::from).collect())
    }

    /// Decrypt (in parallel) and read the credentials of an array of CredFile; one Credentials per file.
    #[rhai_fn(global, pure, return_raw)]
    pub fn credentials(repo: &mut Repo, files: Array) -> ScriptResult<Array> {
        let files: Vec<CredFile> = items(&files, "CredFile")?;
        let creds = repo
            .0
            .borrow_mut()
            .credentials_of(&files)
            .map_err(runtime_error)?;
        Ok(creds.into_iter().map(Dynamic::from).collect())
    }

    /// The overlay's existing source Secret, decrypted (a SourceSpec), or () when there is none.
    #[rhai_fn(global, pure, return_raw)]
    pub fn source(repo: &mut Repo, overlay: Overlay) -> ScriptResult<Dynamic> {
        let spec = repo
            .0
            .borrow_mut()
            .source_of(&overlay)
            .map_err(runtime_error)?;
        Ok(spec.map(Dynamic::from).unwrap_or(Dynamic::UNIT))
    }

    /// Encrypt `spec` with sops and stage it as the overlay's source once the ciphertext is proven (sops metadata, every value ENC[…], decrypts back to `spec`); false (nothing staged) when the existing source already says exactly this.
    #[rhai_fn(global, pure, return_raw)]
    pub fn write_source(repo: &mut Repo, overlay: Overlay, spec: SourceSpec) -> ScriptResult<bool> {
        repo.0
            .borrow_mut()
            .write_source(&overlay, &spec)
            .map_err(runtime_error)
    }

    /// Stage removing the `resources:` entry for `file` from a kustomization file, keeping its formatting; false when not listed.
    #[rhai_fn(global, pure, return_raw)]
    pub fn remove_resource(repo: &mut Repo, kustomization: &str, file: &str) -> ScriptResult<bool> {
        let kustomization = repo_path(kustomization)?;
        let target = entry_target(&kustomization, file)?;
        repo.0
            .borrow_mut()
            .remove_resource(&kustomization, &target)
            .map_err(runtime_error)
    }

    /// Stage adding a `resources:` entry for `file` to a kustomization file, keeping its formatting; false when already listed.
    #[rhai_fn(global, pure, return_raw)]
    pub fn add_resource(repo: &mut Repo, kustomization: &str, file: &str) -> ScriptResult<bool> {
        let kustomization = repo_path(kustomization)?;
        let target = entry_target(&kustomization, file)?;
        repo.0
            .borrow_mut()
            .add_resource(&kustomization, &target)
            .map_err(runtime_error)
    }

    /// Content of a repo-relative file as staged so far, or () when it does not exist.
    #[rhai_fn(global, pure, return_raw)]
    pub fn read(repo: &mut Repo, path: &str) -> ScriptResult<Dynamic> {
        let text = repo
            .0
            .borrow()
            .changes
            .read(&repo_path(path)?)
            .map_err(runtime_error)?;
        Ok(text.map(Dynamic::from).unwrap_or(Dynamic::UNIT))
    }

    /// Whether a repo-relative file exists (staged view).
    #[rhai_fn(global, pure, return_raw)]
    pub fn exists(repo: &mut Repo, path: &str) -> ScriptResult<bool> {
        repo.0
            .borrow()
            .changes
            .exists(&repo_path(path)?)
            .map_err(runtime_error)
    }

    /// Stage writing `text` to a repo-relative file (never for secrets: use write_source).
    #[rhai_fn(global, pure, return_raw)]
    pub fn write(repo: &mut Repo, path: &str, text: &str) -> ScriptResult<()> {
        repo.0
            .borrow_mut()
            .changes
            .write(&repo_path(path)?, text)
            .map_err(runtime_error)
    }

    /// Stage deleting a repo-relative file; an error when it does not exist.
    #[rhai_fn(global, pure, return_raw)]
    pub fn delete(repo: &mut Repo, path: &str) -> ScriptResult<()> {
        repo.0
            .borrow_mut()
            .changes
            .delete(&repo_path(path)?)
            .map_err(runtime_error)
    }

    /// A mark in the staged changes, to undo one cluster's work with `rollback` when it fails.
    #[rhai_fn(global, pure)]
    pub fn mark(repo: &mut Repo) -> Mark {
        repo.0.borrow().changes.mark()
    }

    /// Forget every change staged since `mark`.
    #[rhai_fn(global, pure)]
    pub fn rollback(repo: &mut Repo, mark: Mark) {
        repo.0.borrow_mut().changes.rollback(mark)
    }

    /// Record that one unit of work (a cluster) failed after rolling it back: the run goes on, its
    /// other changes are applied, and ocitool exits 1.
    #[rhai_fn(global, pure)]
    pub fn record_failure(repo: &mut Repo, unit: &str, message: &str) {
        repo.record_failure(unit, message);
    }

    /// The staged net changes so far: an array of maps `#{path, kind}` (kind: create, modify, delete).
    #[rhai_fn(global, pure, return_raw)]
    pub fn changes(repo: &mut Repo) -> ScriptResult<Array> {
        let changes = repo.0.borrow().changes.changes().map_err(runtime_error)?;
        Ok(changes
            .into_iter()
            .map(|c| {
                let mut map = rhai::Map::new();
                map.insert(PATH.into(), c.path.clone().into());
                map.insert(KIND.into(), c.kind().into());
                Dynamic::from_map(map)
            })
            .collect())
    }

    /// A source Secret named `name` for `namespaces` (sorted and deduplicated) carrying `credentials`.
    #[rhai_fn(global, return_raw)]
    pub fn source_spec(
        name: &str,
        namespaces: Array,
        credentials: Credentials,
    ) -> ScriptResult<SourceSpec> {
        let mut namespaces = strings(&namespaces, "namespaces")?;
        namespaces.sort();
        namespaces.dedup();
        Ok(SourceSpec::new(name, namespaces, credentials))
    }

    /// `spec` keeping the labels and extra annotations of an existing source (the Reflector annotations are always recomputed).
    #[rhai_fn(global)]
    pub fn keep_metadata(spec: SourceSpec, existing: SourceSpec) -> SourceSpec {
        spec.keeping_metadata_of(&existing)
    }
}
