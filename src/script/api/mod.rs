//! The functions scripts call, as Rhai plugin modules (one file per domain): thin glue from Rhai values to library
//! calls. Each function's `///` comment is its entry in `ocitool api` (and docs/scripting.md).
//!
//! Rules for this file: no domain logic (call the library), no output except through the
//! redacting host sinks, and every library error becomes a script error at the call site.

use super::{Session, runtime_error};
use ocitool_adapters::kubectl::Kubectl;
use rhai::plugin::*;
use rhai::{Array, Engine, EvalAltResult, FuncRegistration, Map};

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

pub fn register(engine: &mut Engine, session: &Session) {
    engine.register_global_module(exported_module!(repo::repo_api).into());
    engine.register_global_module(exported_module!(credentials::credentials_api).into());
    engine.register_global_module(exported_module!(output::output_api).into());
    engine.register_global_module(exported_module!(reflector::reflector_api).into());
    engine.register_global_module(exported_module!(validate::validate_api).into());
    engine.register_global_module(exported_module!(rotate::rotate_api).into());
    engine.register_global_module(exported_module!(login::login_api).into());
    register_session(engine, session);
    register_kubectl(engine, &session.kube);
}

/// `kubectl` closes over the target of `ocitool --kubeconfig/--context`.
fn register_kubectl(engine: &mut Engine, kube: &Kubectl) {
    let default = kube.clone();
    FuncRegistration::new("kubectl")
        .with_params_info(["context: &str", "Kubectl"])
        .with_comments(["/// kubectl against a live cluster: `context` names the kubeconfig context; \"\" means the one of `ocitool --context`, else kubectl's current one (`ocitool --kubeconfig` applies either way)."])
        .register_into_engine(engine, move |context: &str| -> Kubectl {
            default.clone().or_context(Some(context.to_string()).filter(|c| !c.is_empty()))
        });
}

/// A parameter's value: given with `--set` or the declared default.
fn declared(params: &Map, name: &str) -> Option<Dynamic> {
    params.get(name).cloned().filter(|v| !v.is_unit())
}

/// A parameter as the string `--set` gave: a list joined with commas again, so `param` and
/// `split_list` read a `list` parameter as they read any other.
fn as_given(value: Dynamic) -> String {
    match value.read_lock::<Array>() {
        Some(items) => items
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(","),
        None => value.to_string(),
    }
}

/// `flag`, `param` and `set_result` close over this run's [`Session`].
fn register_session(engine: &mut Engine, session: &Session) {
    let flags = session.params.clone();
    FuncRegistration::new("flag")
        .with_params_info(["name: &str", "default: bool", "bool"])
        .with_comments(["/// The declared boolean parameter `name`, or `default` when it has no value (the host has already checked it is true or false)."])
        .register_into_engine(engine, move |name: &str, default: bool| -> ScriptResult<bool> {
            match declared(&flags, name) {
                None => Ok(default),
                Some(v) => v.as_bool().map_err(|_| {
                    runtime_error(anyhow::anyhow!("parameter `{name}` is not declared as bool"))
                }),
            }
        });
    let values = session.params.clone();
    FuncRegistration::new("param")
        .with_params_info(["name: &str", "default: &str", "String"])
        .with_comments([
            "/// The declared parameter `name` as a string, or `default` when it has no value.",
        ])
        .register_into_engine(
            engine,
            move |name: &str, default: &str| -> ScriptResult<String> {
                Ok(declared(&values, name)
                    .map(as_given)
                    .unwrap_or_else(|| default.to_string()))
            },
        );
    let families = session.params.clone();
    FuncRegistration::new("param_map")
        .with_params_info(["name: &str", "Map"])
        .with_comments(["/// The declared parameter family `name` (`//! param name.*`, given as `--set name.KEY=VALUE`) as a map KEY → value; empty when none is given."])
        .register_into_engine(engine, move |name: &str| -> ScriptResult<Map> {
            match declared(&families, name) {
                None => Ok(Map::new()),
                Some(v) => v.try_cast::<Map>().ok_or_else(|| {
                    runtime_error(anyhow::anyhow!("parameter `{name}` is not declared as a family (`{name}.*`)"))
                }),
            }
        });
    let dry_run = session.dry_run;
    FuncRegistration::new("dry_run")
        .with_params_info(["bool"])
        .with_comments(["/// Whether this run is `--dry-run` (nothing will be written): what scripts and their functions check to speak in the conditional (\"would be written\")."])
        .register_into_engine(engine, move || dry_run);
    let result = session.result.clone();
    FuncRegistration::new("set_result")
        .with_params_info(["fields: Map", "()"])
        .with_comments(["/// The workflow's result: with `-o json` the host prints these fields as the one JSON document on stdout, with `apiVersion`, `kind` (from the script's `//! kind:`), `dryRun`, `changes` and `failures` added. Call it once, at the end."])
        .register_into_engine(engine, move |ctx: NativeCallContext, fields: Map| {
            let value = output::to_json_value(&ctx, &Dynamic::from_map(fields));
            *result.borrow_mut() = Some(value);
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
