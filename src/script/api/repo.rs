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
    use ocitool_core::creds::Credentials;
    use ocitool_core::reflector::SourceOptions;
    use ocitool_core::secret::SourceSpec;
    use ocitool_orchestration::flux_builds::{NamespacePlan, Sources};
    use ocitool_orchestration::others::OtherCredentials;
    use ocitool_orchestration::repo::{CredFile, Overlay, Scan};
    use ocitool_orchestration::target::Target;
    use ocitool_orchestration::workspace::Workspace;
    use rhai::{Array, Dynamic, FnPtr, Map, NativeCallContext};

    /// Keys of the maps built here: per-cluster results and staged changes.
    pub(crate) const CLUSTER: &str = "cluster";
    pub(crate) const STATUS: &str = "status";
    pub(crate) const ERROR: &str = "error";
    pub(crate) const PATH: &str = "path";
    pub(crate) const KIND: &str = "kind";

    /// The target selection of a workflow from its `params`: `customer` (a name, or "*" for every customer, as `--all-customers` sets it; absent: the repo's own overlays of a single-customer repo) and `cluster` (absent: every cluster). An empty value is an error, never "all".
    #[rhai_fn(global, return_raw)]
    pub fn target(params: Map) -> ScriptResult<Target> {
        let get = |key: &str| {
            params
                .get(key)
                .filter(|v| !v.is_unit())
                .map(|v| v.to_string())
        };
        Target::new(get("customer").as_deref(), get("cluster").as_deref()).map_err(runtime_error)
    }

    /// The overlays `target` selects; an error when there are none (or no customer is named in a repo that has customers).
    #[rhai_fn(global, pure, return_raw)]
    pub fn overlays(repo: &mut Repo, target: Target) -> ScriptResult<Array> {
        let found = target
            .overlays(repo.0.borrow().changeset())
            .map_err(runtime_error)?;
        Ok(found.into_iter().map(Dynamic::from).collect())
    }

    /// Call `step(repo, overlay)` for the overlays `target` selects, each cluster a transaction, and return one result map per cluster: the step's map (given a `cluster` key, the overlay's label, when it lacks one), or `#{cluster, status: "failed", error}`. A single named cluster is one unit: any error stops the run and nothing is written. Otherwise a failing cluster is rolled back and recorded (ocitool exits 1) while the others go on, with a progress bar on a terminal and `[i/n] cluster` lines on stderr otherwise.
    #[rhai_fn(global, pure, return_raw)]
    pub fn for_each_cluster(
        ctx: NativeCallContext,
        repo: &mut Repo,
        target: Target,
        step: FnPtr,
    ) -> ScriptResult<Array> {
        let mut progress: Option<Progress> = None;
        // Where a step failed, too: a fleet-wide run does not stop at the error, so the recorded
        // line is all the reader gets.
        let script = ctx.call_source().unwrap_or("script").to_string();
        let runs = Workspace::for_each_cluster(&repo.0, &target, |turn| {
            if turn.isolated {
                progress
                    .get_or_insert_with(|| Progress::start(turn.total, Display::for_stderr()))
                    .begin(&turn.overlay.label());
            }
            // The step gets `repo` as a parameter because a closure capturing it would share the
            // value this method runs on.
            step.call_within_context::<Dynamic>(&ctx, (repo.clone(), turn.overlay.clone()))
                .map_err(|err| {
                    let err = super::StepError::new(&script, err);
                    if turn.isolated {
                        let message = ocitool_core::redact::redact(&err.to_string()).into_owned();
                        crate::progress::error(&format!("{}: {message}", turn.overlay.label()));
                    }
                    err
                })
        })
        .map_err(super::StepError::into_inner)?;
        drop(progress);
        Ok(runs.into_iter().map(super::result_map).collect())
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

    /// Stage taking a per-service credentials `file` (a CredFile of `repo.scan(overlay)`) out of every kustomization listing it, keeping their formatting; a folder left with nothing else (a shared credentials folder) is removed whole and unlisted from every kustomization including it. Returns how many kustomization files were edited or deleted. The file itself is deleted with `repo.delete`.
    #[rhai_fn(global, pure, return_raw)]
    pub fn unlist(repo: &mut Repo, overlay: Overlay, file: CredFile) -> ScriptResult<i64> {
        let edited = repo
            .0
            .borrow_mut()
            .unlist(&overlay, &file)
            .map_err(runtime_error)?;
        Ok(edited as i64)
    }

    /// The overlay's other dockerconfigjson Secrets (beside the per-service `oci-creds.yaml` files and the source, e.g. `registry-credentials.yaml`), each an OtherCredentials with its credentials decrypted in memory (or the reason they cannot be read).
    #[rhai_fn(global, pure, return_raw)]
    pub fn other_secrets(repo: &mut Repo, overlay: Overlay) -> ScriptResult<Array> {
        let found = repo
            .0
            .borrow_mut()
            .other_secrets(&overlay)
            .map_err(runtime_error)?;
        Ok(found.into_iter().map(Dynamic::from).collect())
    }

    /// Stage `other` (an OtherCredentials of `repo.other_secrets`) carrying `credentials`, everything else in the Secret kept, encrypted under the creation rule of its nearest `.sops.yaml` and proven (sops metadata, every value ENC[…], decrypts back to what was meant); false (nothing staged) when it already carries exactly these. An unencrypted file is refused.
    #[rhai_fn(global, pure, return_raw)]
    pub fn rotate_other(
        repo: &mut Repo,
        other: OtherCredentials,
        credentials: Credentials,
    ) -> ScriptResult<bool> {
        repo.0
            .borrow_mut()
            .rotate_other(&other.secret, &credentials)
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
            .read(&repo_path(path)?)
            .map_err(runtime_error)?;
        Ok(text.map(Dynamic::from).unwrap_or(Dynamic::UNIT))
    }

    /// Whether a repo-relative file exists (staged view).
    #[rhai_fn(global, pure, return_raw)]
    pub fn exists(repo: &mut Repo, path: &str) -> ScriptResult<bool> {
        repo.0
            .borrow()
            .exists(&repo_path(path)?)
            .map_err(runtime_error)
    }

    /// Stage writing `text` to a repo-relative file (never for secrets: use write_source).
    #[rhai_fn(global, pure, return_raw)]
    pub fn write(repo: &mut Repo, path: &str, text: &str) -> ScriptResult<()> {
        repo.0
            .borrow_mut()
            .write(&repo_path(path)?, text)
            .map_err(runtime_error)
    }

    /// Stage deleting a repo-relative file; an error when it does not exist.
    #[rhai_fn(global, pure, return_raw)]
    pub fn delete(repo: &mut Repo, path: &str) -> ScriptResult<()> {
        repo.0
            .borrow_mut()
            .delete(&repo_path(path)?)
            .map_err(runtime_error)
    }

    /// The staged net changes so far: an array of maps `#{path, kind}` (kind: create, modify, delete).
    #[rhai_fn(global, pure, return_raw)]
    pub fn changes(repo: &mut Repo) -> ScriptResult<Array> {
        let changes = repo.0.borrow().pending().map_err(runtime_error)?;
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

    /// The source Secret `options` names, for `namespaces` (the spec sorts and deduplicates them; one that cannot be listed in a Reflector annotation is an error) carrying `credentials`.
    #[rhai_fn(global, return_raw)]
    pub fn source_spec(
        options: SourceOptions,
        namespaces: Array,
        credentials: Credentials,
    ) -> ScriptResult<SourceSpec> {
        let namespaces = strings(&namespaces, "namespaces")?;
        SourceSpec::new(&options, namespaces, credentials).map_err(runtime_error)
    }

    /// The source Secret and Reflector names from `params`: `source_name` (default oci-creds), `source_namespace` (default flux-system) and `reflector_namespace` (default reflector-system); invalid values are an error naming each parameter. Consolidation, deployment, validation and verification all take it.
    #[rhai_fn(global, return_raw)]
    pub fn source_options(params: Map) -> ScriptResult<SourceOptions> {
        let defaults = SourceOptions::default();
        let get = |key: &str, default: &str| {
            params
                .get(key)
                .filter(|v| !v.is_unit())
                .map_or_else(|| default.to_string(), |v| v.to_string())
        };
        SourceOptions::new(
            &get("source_name", defaults.source_name()),
            &get("source_namespace", defaults.source_namespace()),
            &get("reflector_namespace", defaults.reflector_namespace()),
        )
        .map_err(runtime_error)
    }

    /// The checkouts Flux Kustomizations build from, from `params`: `base_repo` (a path; "" or absent: none) for every GitRepository other than `flux-system` (which is the fleet itself), and `source` (a map NAME → path, as `--set source.NAME=DIR` gives it) for single sources, which win. A path that is not a directory is an error naming the parameter.
    #[rhai_fn(global, return_raw)]
    pub fn source_checkouts(params: Map) -> ScriptResult<Sources> {
        let dir = |param: String, value: &Dynamic| -> ScriptResult<Option<std::path::PathBuf>> {
            let text = value.to_string();
            if value.is_unit() || text.is_empty() {
                return Ok(None);
            }
            let path = std::path::PathBuf::from(&text);
            if !path.is_dir() {
                return Err(runtime_error(anyhow::anyhow!(
                    "--set {param}={text}: not a directory; give the local checkout of that source"
                )));
            }
            Ok(Some(path))
        };
        let base_repo = match params.get("base_repo") {
            Some(value) => dir("base_repo".into(), value)?,
            None => None,
        };
        let mut by_name = std::collections::BTreeMap::new();
        let members = params
            .get("source")
            .and_then(|v| v.clone().try_cast::<Map>())
            .unwrap_or_default();
        for (name, value) in members {
            if let Some(path) = dir(format!("source.{name}"), &value)? {
                by_name.insert(name.to_string(), path);
            }
        }
        Ok(Sources::new(base_repo, by_name))
    }

    /// The namespaces `overlay`'s source must be mirrored into: `per_service` (the namespaces of its per-service copies: migration loses nothing) and every namespace where what its Flux Kustomizations build (flux, with `sources` mapped) uses the Secret `options` names. Call it before staging the cluster's changes (flux reads the files on disk). Throws, naming the file, when a Flux Kustomization does not build.
    #[rhai_fn(global, pure, return_raw)]
    pub fn plan_namespaces(
        repo: &mut Repo,
        overlay: Overlay,
        per_service: Array,
        sources: Sources,
        options: SourceOptions,
    ) -> ScriptResult<NamespacePlan> {
        let per_service = strings(&per_service, "per_service")?;
        repo.0
            .borrow()
            .plan_namespaces(&overlay, &per_service, &sources, &options)
            .map_err(runtime_error)
    }

    /// `spec` keeping the labels and extra annotations of an existing source (the Reflector annotations are always recomputed).
    #[rhai_fn(global)]
    pub fn keep_metadata(spec: SourceSpec, existing: SourceSpec) -> SourceSpec {
        spec.keeping_metadata_of(&existing)
    }
}

use ocitool_orchestration::workspace::ClusterRun;
use rhai::{Dynamic, Map};

/// A step's error as the workspace records it: located in the script (`file:line:column:
/// message`), since a fleet-wide run goes on past it.
pub(crate) struct StepError {
    script: String,
    err: Box<rhai::EvalAltResult>,
}

impl StepError {
    fn new(script: &str, err: Box<rhai::EvalAltResult>) -> Self {
        StepError {
            script: script.to_string(),
            err,
        }
    }

    fn into_inner(self) -> Box<rhai::EvalAltResult> {
        self.err
    }
}

impl std::fmt::Display for StepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::script::located_message(&self.script, &self.err))
    }
}

impl From<anyhow::Error> for StepError {
    fn from(err: anyhow::Error) -> Self {
        StepError::new("", runtime_error(err))
    }
}

/// What a step returned (or why it failed), as a map that names its cluster.
fn result_map(run: ClusterRun<Dynamic>) -> Dynamic {
    let label = run.overlay.label();
    let mut map = match run.outcome {
        Ok(result) => result
            .try_cast::<Map>()
            .unwrap_or_else(|| Map::from([("status".into(), "done".into())])),
        Err(failure) => {
            let message = ocitool_core::redact::redact(&failure.message).into_owned();
            Map::from([
                (repo_api::STATUS.into(), "failed".into()),
                (repo_api::ERROR.into(), message.into()),
            ])
        }
    };
    map.entry(repo_api::CLUSTER.into())
        .or_insert_with(|| label.into());
    Dynamic::from_map(map)
}
