//! Deploying Reflector from scripts: render options and the base repository's GitRepository from
//! parameters, staging the base and wiring a cluster overlay. Glue only: the decisions (what counts as a hand edit, where files go)
//! live in [`ocitool_orchestration::deploy`]; this file must never write files or print.

use rhai::plugin::*;

#[export_module]
pub mod reflector_api {
    use crate::script::Repo;
    use crate::script::api::ScriptResult;
    use crate::script::runtime_error;
    use ocitool_core::reflector::SourceOptions;
    use ocitool_core::reflector::base_repo::BaseRepo;
    use ocitool_core::reflector::render::RenderOptions;
    use ocitool_orchestration::deploy::{self, DeployReport};
    use ocitool_orchestration::repo::Overlay;
    use rhai::Map;

    /// Reflector render options from a map of parameters, usually `params`: `chart_version`, `repository_name`, `repository_url`, `values_file` (a chart values YAML, repo-relative or absolute); other keys are ignored. Reflector's namespace is `source`'s (see `source_options`). Invalid values are an error naming each parameter at fault.
    #[rhai_fn(global, pure, return_raw)]
    pub fn render_options(
        repo: &mut Repo,
        params: Map,
        source: SourceOptions,
    ) -> ScriptResult<RenderOptions> {
        let get = |key: &str| {
            params
                .get(key)
                .filter(|v| !v.is_unit())
                .map(ToString::to_string)
        };
        deploy::options_from_params(&repo.0.borrow(), &source, get).map_err(runtime_error)
    }

    /// Stage the Reflector base (namespace, HelmRepository, HelmRelease, kustomization) under `applications/base/managed-services/reflector`. A file that differs from the render is left untouched and listed in `hand_edited`, unless `force` is true (then it is overwritten).
    #[rhai_fn(global, pure, return_raw)]
    pub fn deploy_reflector_base(
        repo: &mut Repo,
        opts: RenderOptions,
        force: bool,
    ) -> ScriptResult<DeployReport> {
        deploy::stage_base(&mut repo.0.borrow_mut(), &opts, force).map_err(runtime_error)
    }

    /// The GitRepository (in flux-system) a cluster's Reflector wiring applies the base from, from a map of parameters, usually `params`: `base_source` (its name, default "base"); with `base_url` (https:// or ssh://) ocitool renders it, checking out `base_ref` (a branch, default main, or tag:, semver:, name:, commit: and the value) with the Git credentials of Secret `base_secret` (needed for ssh). Without `base_url` it must already exist in the overlay. Invalid values are an error naming each parameter at fault.
    #[rhai_fn(global, return_raw)]
    pub fn base_repo(params: Map) -> ScriptResult<BaseRepo> {
        let get = |key: &str| {
            params
                .get(key)
                .filter(|v| !v.is_unit())
                .map(ToString::to_string)
        };
        let name = get("base_source").unwrap_or_else(|| "base".to_string());
        BaseRepo::new(
            &name,
            get("base_url").as_deref(),
            get("base_ref").as_deref(),
            get("base_secret").as_deref(),
        )
        .map_err(runtime_error)
    }

    /// Stage an overlay's `managed-services/fluxcd/reflector.yaml` (a Flux Kustomization applying the base from GitRepository `base`), the GitRepository itself beside it (`reflector-source.yaml`) when `base` has a URL, and list them in that directory's kustomization (created, and listed in the overlay root, when missing). Refuses, staging nothing, a `base` without URL that Flux does not apply from the overlay (the error lists the GitRepositories that exist), and a `base` with URL whose name another file already defines. Hand edits to either file are treated as in `deploy_reflector_base`.
    #[rhai_fn(global, pure, return_raw)]
    pub fn wire_reflector(
        repo: &mut Repo,
        overlay: Overlay,
        base: BaseRepo,
        opts: RenderOptions,
        force: bool,
    ) -> ScriptResult<DeployReport> {
        deploy::stage_overlay_wiring(&mut repo.0.borrow_mut(), &overlay, &base, &opts, force)
            .map_err(runtime_error)
    }

    /// `wire_reflector` with the name of a GitRepository that must already exist in the overlay.
    #[rhai_fn(global, pure, name = "wire_reflector", return_raw)]
    pub fn wire_reflector_to(
        repo: &mut Repo,
        overlay: Overlay,
        git_repository: &str,
        opts: RenderOptions,
        force: bool,
    ) -> ScriptResult<DeployReport> {
        let base = BaseRepo::existing(git_repository).map_err(runtime_error)?;
        wire_reflector(repo, overlay, base, opts, force)
    }
}
