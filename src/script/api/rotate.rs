//! Rotating registry credentials: reading a new password (in Rust, never as a Rhai string) and
//! deriving the Credentials and source Secret that carry it.
//!
//! The password leaves this module only inside a [`Credentials`], so a script can hand it to
//! `with_registry` but has no way to print, log or concatenate it.

use rhai::plugin::*;

#[export_module]
pub mod rotate_api {
    use crate::script::api::ScriptResult;
    use crate::script::runtime_error;
    use ocitool_core::creds::{Credentials, Password};
    use ocitool_core::secret::SourceSpec;

    /// Read a registry password from a file, or from standard input with "-": one trailing newline is dropped, an empty password is an error, a file other users can read gets a warning, one over 4 KiB is refused. The result is opaque (prints as `<password>`).
    #[rhai_fn(global, return_raw)]
    pub fn read_password(path_or_dash: &str) -> ScriptResult<Password> {
        if let Some(warning) = ocitool_adapters::password::permission_warning(path_or_dash) {
            crate::script::warn(&warning);
        }
        ocitool_adapters::password::read(path_or_dash).map_err(runtime_error)
    }

    /// These credentials with `registry` set (added or replaced) to `username` and `password`; every other registry is kept.
    #[rhai_fn(global, pure)]
    pub fn with_registry(
        credentials: &mut Credentials,
        registry: &str,
        username: &str,
        password: Password,
    ) -> Credentials {
        credentials.with_registry(registry, username, &password)
    }

    /// These credentials without `registry` (unchanged when it is not there).
    #[rhai_fn(global, pure)]
    pub fn without_registry(credentials: &mut Credentials, registry: &str) -> Credentials {
        credentials.without_registry(registry)
    }

    /// This source Secret carrying `credentials` instead, keeping its name, namespaces, labels and annotations.
    #[rhai_fn(global, pure)]
    pub fn with_credentials(source: &mut SourceSpec, credentials: Credentials) -> SourceSpec {
        source.clone().with_credentials(credentials)
    }
}
