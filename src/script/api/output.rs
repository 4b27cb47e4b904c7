//! Messages to the user, always redacted.

use rhai::plugin::*;

#[export_module]
pub mod output_api {
    /// Print a warning to stderr (`warning: …`); secrets are redacted.
    #[rhai_fn(global)]
    pub fn warn(message: &str) {
        crate::script::warn(message);
    }

    /// Print a progress or status line to stderr; secrets are redacted.
    #[rhai_fn(global)]
    pub fn info(message: &str) {
        eprintln!("{}", crate::redact::redact(message));
    }

    /// Join the items of an array (printed as strings) with `separator`.
    #[rhai_fn(global)]
    pub fn join(items: rhai::Array, separator: &str) -> String {
        items
            .iter()
            .map(|item| item.to_string())
            .collect::<Vec<_>>()
            .join(separator)
    }

    /// Split a comma-separated `--set` value into a trimmed array without empty items.
    #[rhai_fn(global)]
    pub fn split_list(value: &str) -> rhai::Array {
        value
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.to_string().into())
            .collect()
    }
}
