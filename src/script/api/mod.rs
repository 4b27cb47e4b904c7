//! The functions scripts call, as Rhai plugin modules (one file per domain): thin glue from Rhai values to library
//! calls. Each function's `///` comment is its entry in `ocitool api` (and docs/scripting.md).
//!
//! Rules for this file: no domain logic (call the library), no output except through the
//! redacting host sinks, and every library error becomes a script error at the call site.

use super::{Params, runtime_error};
use ocitool_adapters::kubectl::Kubectl;
use rhai::plugin::*;
use rhai::{Array, Engine, EvalAltResult, FuncRegistration};

pub(crate) type ScriptResult<T> = Result<T, Box<EvalAltResult>>;

mod credentials;
mod login;
mod output;
mod reflector;
mod repo;
mod rotate;
mod validate;

/// Keys of the maps the host hands scripts (`for_each_cluster` results, `changes()` entries):
/// `ocitool check` accepts them as properties.
pub(crate) const HOST_MAP_KEYS: &[&str] = &[
    repo::repo_api::CLUSTER,
    repo::repo_api::STATUS,
    repo::repo_api::ERROR,
    repo::repo_api::PATH,
    repo::repo_api::KIND,
];

pub fn register(engine: &mut Engine, params: &Params, kube: &Kubectl) {
    engine.register_global_module(exported_module!(repo::repo_api).into());
    engine.register_global_module(exported_module!(credentials::credentials_api).into());
    engine.register_global_module(exported_module!(output::output_api).into());
    engine.register_global_module(exported_module!(reflector::reflector_api).into());
    engine.register_global_module(exported_module!(validate::validate_api).into());
    engine.register_global_module(exported_module!(rotate::rotate_api).into());
    engine.register_global_module(exported_module!(login::login_api).into());
    register_params(engine, params);
    register_cluster(engine, kube);
}

/// `cluster` closes over the kubectl target of `ocitool --kubeconfig/--context`.
fn register_cluster(engine: &mut Engine, kube: &Kubectl) {
    let default = kube.clone();
    FuncRegistration::new("cluster")
        .with_params_info(["context: &str", "Cluster"])
        .with_comments(["/// A live cluster through kubectl: `context` names the kubeconfig context; \"\" means the one of `ocitool --context`, else kubectl's current one (`ocitool --kubeconfig` applies either way)."])
        .register_into_engine(engine, move |context: &str| -> Kubectl {
            default.clone().or_context(Some(context.to_string()).filter(|c| !c.is_empty()))
        });
}

/// `flag` and `param` read `--set` values with defaults; they close over this run's parameters.
fn register_params(engine: &mut Engine, params: &Params) {
    let flags = params.clone();
    FuncRegistration::new("flag")
        .with_params_info(["name: &str", "default: bool", "bool"])
        .with_comments(["/// The boolean `--set name=true|false`, or `default` when not given; any other value is an error."])
        .register_into_engine(engine, move |name: &str, default: bool| -> ScriptResult<bool> {
            match flags.get(name).map(|v| v.to_ascii_lowercase()) {
                None => Ok(default),
                Some(v) if v == "true" => Ok(true),
                Some(v) if v == "false" => Ok(false),
                Some(v) => Err(runtime_error(anyhow::anyhow!("--set {name}={v}: expected true or false"))),
            }
        });
    let values = params.clone();
    FuncRegistration::new("param")
        .with_params_info(["name: &str", "default: &str", "String"])
        .with_comments(["/// The `--set name=value` string, or `default` when not given."])
        .register_into_engine(engine, move |name: &str, default: &str| -> String {
            values
                .get(name)
                .cloned()
                .unwrap_or_else(|| default.to_string())
        });
}

pub(crate) fn items<T: Clone + 'static>(array: &Array, what: &str) -> ScriptResult<Vec<T>> {
    array
        .iter()
        .map(|item| {
            item.clone().try_cast::<T>().ok_or_else(|| {
                runtime_error(anyhow::anyhow!(
                    "expected an array of {what}, found an item of type {}",
                    super::script_type::script_names(item.type_name())
                ))
            })
        })
        .collect()
}

pub(crate) fn strings(array: &Array, what: &str) -> ScriptResult<Vec<String>> {
    array
        .iter()
        .map(|v| {
            v.clone().into_string().map_err(|t| {
                runtime_error(anyhow::anyhow!(
                    "expected {what} as strings, found {}",
                    super::script_type::script_names(t)
                ))
            })
        })
        .collect()
}
