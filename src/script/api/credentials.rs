//! Working with decrypted credentials (never their values).

use rhai::plugin::*;

#[export_module]
pub mod credentials_api {
    use crate::script::api::{ScriptResult, items, strings};
    use crate::script::runtime_error;
    use ocitool_core::creds::{self, Credentials, Merged};
    use rhai::Array;

    /// Merge an array of Credentials into one. Equal credentials merge, registries combine; the same registry with different credentials is an error naming every holder, unless one of `prefer` (service names, first wins) holds it.
    #[rhai_fn(global, return_raw)]
    pub fn merge_credentials(inputs: Array, prefer: Array) -> ScriptResult<Merged> {
        let inputs: Vec<Credentials> = items(&inputs, "Credentials")?;
        let prefer = strings(&prefer, "prefer")?;
        creds::merge(&inputs, &prefer).map_err(runtime_error)
    }

    /// Whether `text` has the form of a credential fingerprint: `v2:` (or the older `sha256:`) and 12 hex digits.
    #[rhai_fn(global)]
    pub fn is_fingerprint(text: &str) -> bool {
        creds::is_fingerprint(text)
    }
}
