//! Deploying Reflector from scripts: render options from parameters, staging the base and
//! wiring a cluster overlay. Glue only: the decisions (what counts as a hand edit, where files go)
//! live in [`ocitool_orchestration::deploy`]; this file must never write files or print.

use rhai::plugin::*;

#[export_module]
pub mod reflector_api {
    use crate::script::Repo;
    use crate::script::api::ScriptResult;
    use crate::script::runtime_error;
    use ocitool_core::reflector::SourceOptions;
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

    /// Stage an overlay's `managed-services/fluxcd/reflector.yaml` (a Flux Kustomization applying the base from GitRepository `git_repository` in flux-system) and list it in that directory's kustomization (created, and listed in the overlay root, when missing). Hand edits to reflector.yaml are treated as in `deploy_reflector_base`.
    #[rhai_fn(global, pure, return_raw)]
    pub fn wire_reflector(
        repo: &mut Repo,
        overlay: Overlay,
        git_repository: &str,
        opts: RenderOptions,
        force: bool,
    ) -> ScriptResult<DeployReport> {
        deploy::stage_overlay_wiring(
            &mut repo.0.borrow_mut(),
            &overlay,
            git_repository,
            &opts,
            force,
        )
        .map_err(runtime_error)
    }
}
