//! Messages to the user, always redacted.

use rhai::plugin::*;

#[export_module]
pub mod output_api {
    use rhai::Dynamic;

    /// Print a warning to stderr (`warning: …`); secrets are redacted.
    #[rhai_fn(global)]
    pub fn warn(message: &str) {
        crate::script::warn(message);
    }

    /// Print a progress or status line to stderr; secrets are redacted.
    #[rhai_fn(global)]
    pub fn info(message: &str) {
        crate::progress::err(&ocitool_core::redact::redact(message));
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

    /// `value` (maps, arrays, strings, numbers, booleans, (), and any value with a `to_map` method, such as a Finding) as one JSON document; strings are redacted.
    #[rhai_fn(global)]
    pub fn json(ctx: NativeCallContext, value: Dynamic) -> String {
        super::to_json_value(&ctx, &value).to_string()
    }

    /// A one-line report of per-cluster results (maps with a `status`, as `for_each_cluster` returns them): "3 cluster(s): 2 consolidated, 1 failed".
    #[rhai_fn(global)]
    pub fn tally(results: rhai::Array) -> String {
        let mut counts = std::collections::BTreeMap::<String, usize>::new();
        for result in &results {
            let status = result
                .read_lock::<rhai::Map>()
                .and_then(|map| map.get("status").map(|s| s.to_string()))
                .unwrap_or_else(|| "done".to_string());
            *counts.entry(status).or_default() += 1;
        }
        let parts: Vec<String> = counts
            .iter()
            .map(|(status, n)| format!("{n} {status}"))
            .collect();
        format!("{} cluster(s): {}", results.len(), parts.join(", "))
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

/// Rhai values as JSON: a custom value through its `to_map` method when it has one, anything
/// else without a JSON form as its (redacted) string.
pub(crate) fn to_json_value(ctx: &NativeCallContext, value: &rhai::Dynamic) -> serde_json::Value {
    use serde_json::Value;
    if let Some(map) = value.read_lock::<rhai::Map>() {
        return Value::Object(
            map.iter()
                .map(|(k, v)| (k.to_string(), to_json_value(ctx, v)))
                .collect(),
        );
    }
    if let Some(array) = value.read_lock::<rhai::Array>() {
        return Value::Array(array.iter().map(|v| to_json_value(ctx, v)).collect());
    }
    if value.is_variant()
        && let Ok(map) = ctx.call_native_fn::<rhai::Map>("to_map", (value.clone(),))
    {
        return to_json_value(ctx, &rhai::Dynamic::from_map(map));
    }
    if value.is_unit() {
        Value::Null
    } else if let Ok(b) = value.as_bool() {
        Value::Bool(b)
    } else if let Ok(i) = value.as_int() {
        Value::from(i)
    } else if let Ok(f) = value.as_float() {
        Value::from(f)
    } else {
        Value::String(ocitool_core::redact::redact(&value.to_string()).into_owned())
    }
}
