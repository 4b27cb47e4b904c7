//! Asking registries whether credentials log in (the OCI distribution auth handshake), from
//! scripts. Glue only: the checks and their verdicts are `ocitool_orchestration::login`'s.

use rhai::plugin::*;

#[export_module]
pub mod login_api {
    use crate::script::api::ScriptResult;
    use crate::script::runtime_error;
    use ocitool_adapters::registry::LoginOptions;
    use ocitool_core::creds::{Credentials, Password};
    use ocitool_orchestration::login::{self, LoginCheck};
    use rhai::{Array, Dynamic, Map};
    use std::time::Duration;

    /// Ask `registry` whether `username` with `password` (from `read_password`) logs in: what rotate checks before writing a new credential. `options` as for `check_logins`.
    #[rhai_fn(global, return_raw)]
    pub fn check_login(
        registry: &str,
        username: &str,
        password: Password,
        options: Map,
    ) -> ScriptResult<LoginCheck> {
        let credentials =
            Credentials::new("the new credential").with_registry(registry, username, &password);
        let mut checks = check_logins(credentials, options)?;
        checks
            .pop()
            .and_then(|c| c.try_cast::<LoginCheck>())
            .ok_or_else(|| {
                runtime_error(anyhow::anyhow!(
                    "check_login: no check was made for {registry}"
                ))
            })
    }

    /// Ask every registry of `credentials` whether its credential logs in (`GET /v2/`, then Basic or Bearer token auth), in parallel; one LoginCheck per registry. `options`: `ca_file` (a PEM file of extra CA certificates, added to the system roots and `SSL_CERT_FILE`), `timeout_s` (per registry, default 30), `registry` (check only this one). Proxies come from the environment. Never reveals the password.
    #[rhai_fn(global, return_raw)]
    pub fn check_logins(credentials: Credentials, options: Map) -> ScriptResult<Array> {
        let mut opts = LoginOptions::default();
        let mut only = None;
        for (key, value) in options {
            match key.as_str() {
                "ca_file" => {
                    opts.extra_ca_file =
                        Some(value.into_string().map_err(type_error("ca_file"))?.into())
                }
                "timeout_s" => {
                    let secs = value.as_int().map_err(type_error("timeout_s"))?;
                    if secs <= 0 {
                        return Err(runtime_error(anyhow::anyhow!(
                            "timeout_s must be positive, not {secs}"
                        )));
                    }
                    opts.timeout = Duration::from_secs(secs as u64);
                }
                "registry" => only = Some(value.into_string().map_err(type_error("registry"))?),
                other => {
                    return Err(runtime_error(anyhow::anyhow!(
                        "check_logins: unknown option `{other}` (expected ca_file, timeout_s, registry)"
                    )));
                }
            }
        }
        Ok(login::check(&credentials, only.as_deref(), &opts)
            .into_iter()
            .map(Dynamic::from::<LoginCheck>)
            .collect())
    }

    fn type_error(key: &'static str) -> impl Fn(&str) -> Box<rhai::EvalAltResult> {
        move |found| {
            runtime_error(anyhow::anyhow!(
                "check_logins: option `{key}` has the wrong type ({found})"
            ))
        }
    }
}
