//! `ocitool api`: the scripting reference, generated from the engine's own metadata (Rhai's
//! `metadata` feature keeps every registered signature and doc comment), so it cannot drift from
//! what scripts can actually call. The bundled workflows' parameters come from their own
//! declarations ([`super::params`]). docs/scripting.md embeds this text; a test keeps them equal.

use super::params::Declaration;
use rhai::Engine;
use serde_json::Value;

/// Each bundled workflow: summary, whether it writes, its JSON kind and its parameters.
fn workflows(engine: &Engine) -> String {
    let mut out = String::from("## Workflows\n\n");
    for builtin in super::builtin::BUILTINS {
        let ast = engine
            .compile(builtin.source)
            .expect("built-in scripts compile");
        let decl = Declaration::parse(ast.doc()).expect("bundled declarations parse");
        let writes = if decl.writes { "writes" } else { "read-only" };
        let kind = decl.kind.as_deref().unwrap_or("Result");
        out.push_str(&format!(
            "### `{}` (`ocitool run {}`)\n\n{} ({writes}; `-o json` kind `{kind}`)\n\n",
            builtin.label(),
            builtin.name,
            decl.summary
        ));
        for p in &decl.params {
            out.push_str(&format!("- `{}`: {}\n", p.signature(), p.doc));
        }
        out.push('\n');
    }
    out
}

/// Markers around the generated part of docs/scripting.md.
pub const BEGIN: &str = "<!-- BEGIN ocitool api -->";
pub const END: &str = "<!-- END ocitool api -->";

/// The reference as Markdown: types with their properties and methods, then functions.
pub fn render(engine: &Engine) -> String {
    let json = engine
        .gen_fn_metadata_to_json(false)
        .expect("metadata serializes");
    let meta: Value = serde_json::from_str(&json).expect("rhai emits valid JSON");
    let functions = meta["functions"].as_array().cloned().unwrap_or_default();
    let mut out = String::from("## Types\n\n");
    let mut types: Vec<&Value> = meta["customTypes"]
        .as_array()
        .map(|t| t.iter().collect())
        .unwrap_or_default();
    types.sort_by_key(|t| t["displayName"].as_str().unwrap_or_default().to_string());
    for ty in types {
        let name = ty["displayName"].as_str().unwrap_or_default();
        out.push_str(&format!(
            "### `{name}`\n\n{}\n\n",
            doc_text(&ty["docComments"])
        ));
        let mut members: Vec<&Value> = functions
            .iter()
            .filter(|f| first_param_type(f) == Some(name) && !is_printer(f))
            .collect();
        // Rhai lists functions by name; overloads of one name in no fixed order, so by signature.
        members.sort_by_key(|f| (f["name"].as_str().unwrap_or_default(), signature(f)));
        for f in members {
            out.push_str(&member_line(f));
        }
        out.push('\n');
    }
    out.push_str("## Functions\n\n");
    let mut free: Vec<String> = functions
        .iter()
        .filter(|f| first_param_type(f).is_none_or(|t| !is_custom(&meta, t)))
        .map(|f| format!("- `{}`: {}\n", signature(f), doc_text(&f["docComments"])))
        .collect();
    free.sort();
    free.dedup();
    out.extend(free);
    out.push('\n');
    out.push_str(&workflows(engine));
    out
}

fn is_custom(meta: &Value, type_name: &str) -> bool {
    meta["customTypes"]
        .as_array()
        .is_some_and(|t| t.iter().any(|ty| ty["displayName"] == type_name))
}

fn first_param_type(f: &Value) -> Option<&str> {
    let ty = f["params"].as_array()?.first()?["type"].as_str()?;
    Some(ty.trim_start_matches("&mut ").trim())
}

/// `get$field` getters become properties; everything else is a method.
fn member_line(f: &Value) -> String {
    let name = f["name"].as_str().unwrap_or_default();
    let doc = doc_text(&f["docComments"]);
    match name.strip_prefix("get$") {
        Some(prop) => format!(
            "- `.{prop}` → `{}`: {doc}\n",
            plain_types(f["returnType"].as_str().unwrap_or("?"))
        ),
        None => format!("- `{}`: {doc}\n", signature(f)),
    }
}

fn signature(f: &Value) -> String {
    plain_types(f["signature"].as_str().unwrap_or_default())
}

/// `to_string`/`to_debug` registrations: how a type prints, not something to call.
fn is_printer(f: &Value) -> bool {
    matches!(f["name"].as_str(), Some("to_string" | "to_debug"))
}

/// Script-facing type names: Rhai reports Rust spellings for plugin functions
/// (`ScriptResult<Array>`, `&str`), but scripts see `array`, `string`, `Dynamic`. Public for the
/// test that derives, from the engine's metadata, the line each function must have.
pub fn plain_types(rust: &str) -> String {
    let mut text = super::script_type::script_names(rust)
        .replace("types::dynamic::Dynamic", "Dynamic")
        .replace("_: ", "");
    while let Some(start) = text.find("ScriptResult<") {
        let inner_start = start + "ScriptResult<".len();
        let mut depth = 1;
        let end = text[inner_start..]
            .char_indices()
            .find_map(|(i, c)| {
                depth += match c {
                    '<' => 1,
                    '>' => -1,
                    _ => 0,
                };
                (depth == 0).then_some(inner_start + i)
            })
            .unwrap_or(text.len() - 1);
        text = format!(
            "{}{}{}",
            &text[..start],
            &text[inner_start..end],
            &text[end + 1..]
        );
    }
    let text = text.replace("String", "string").replace("Array", "array");
    text.strip_suffix(" -> ()").unwrap_or(&text).to_string()
}

/// The doc comment as one paragraph, without `///` markers.
fn doc_text(comments: &Value) -> String {
    let lines: Vec<&str> = comments
        .as_array()
        .map(|c| c.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    lines
        .iter()
        .map(|l| l.trim_start_matches("///").trim())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The generated section of a Markdown document, between [`BEGIN`] and [`END`].
pub fn embedded_section(markdown: &str) -> Option<&str> {
    let start = markdown.find(BEGIN)? + BEGIN.len();
    let end = markdown[start..].find(END)? + start;
    Some(markdown[start..end].trim_matches('\n'))
}
