//! `ocitool check`: beyond compiling, resolve every function call, method and property a script
//! uses against what the engine has registered, so a misspelled name is found before a run (Rhai
//! itself only finds it when the line executes, perhaps after an hour over a fleet).
//!
//! It walks Rhai's own AST (the `internals` feature) rather than scanning tokens, so strings,
//! comments and string interpolation cannot confuse it. Names resolve against the engine metadata
//! (registered and standard-library functions, getters and setters), the script's own functions,
//! Rhai's keyword functions, and the functions of each `import`ed module (resolved by the same
//! resolver a run uses, as an AST, so nothing is executed). Rhai types maps only at run time, so a
//! property is known when some type has it or some map the script (or an imported script, or the
//! host) builds has that key; `params.KEY` is never checked (any `--set` key is allowed).
//! This module only reads the AST and reports; it changes and runs nothing.

use super::ScriptError;
use super::builtin::ScriptSource;
use rhai::{AST, ASTNode, Engine, Expr, FnAccess, Stmt};
use std::collections::{BTreeMap, BTreeSet};

/// Functions Rhai handles itself (its `KEYWORD_*` constants): they are not in the metadata.
const KEYWORD_FUNCTIONS: &[&str] = &[
    "print",
    "debug",
    "type_of",
    "eval",
    "Fn",
    "call",
    "curry",
    "is_shared",
    "is_def_var",
    "is_def_fn",
];

/// Names a script can use, by kind.
#[derive(Default)]
struct Known {
    functions: BTreeSet<String>,
    properties: BTreeSet<String>,
    /// Import alias → the functions the module exports.
    modules: BTreeMap<String, BTreeSet<String>>,
    /// Aliases of imports that failed (already reported).
    unresolved: BTreeSet<String>,
}

/// One use of a name, where it is.
struct Use {
    kind: &'static str,
    name: String,
    namespace: Option<String>,
    pos: rhai::Position,
}

/// Every name in `ast` that resolves to nothing, as errors at its position (in source order).
pub fn unknown_names(engine: &Engine, ast: &AST, script: &ScriptSource) -> Vec<ScriptError> {
    let label = &script.label();
    let mut known = registered(engine);
    let mut errors = Vec::new();
    add_script(&mut known, ast);
    for (alias, path, pos) in imports(ast) {
        match super::builtin::import_ast(engine, script, &path, pos) {
            Ok(module) => {
                let exported = module
                    .iter_functions()
                    // Closures are compiled to `anon$…` functions: not callable by name.
                    .filter(|f| f.access != FnAccess::Private && !f.name.contains('$'))
                    .map(|f| f.name.to_string())
                    .collect();
                known.properties.extend(map_keys(&module));
                known.modules.insert(alias, exported);
            }
            Err(err) => {
                errors.push(ScriptError::from_rhai(label, &err));
                // Calls into it are not reported again.
                known.unresolved.insert(alias);
            }
        }
    }
    for usage in uses(ast) {
        if let Some(message) = known.explain(&usage) {
            errors.push(located(label, usage.pos, message));
        }
    }
    errors
}

fn located(label: &str, pos: rhai::Position, message: String) -> ScriptError {
    ScriptError {
        file: label.to_string(),
        line: pos.line(),
        column: pos.position(),
        message,
    }
}

/// Every function, getter and setter the engine has, standard library included.
fn registered(engine: &Engine) -> Known {
    let json = engine
        .gen_fn_metadata_to_json(true)
        .expect("metadata serializes");
    let meta: serde_json::Value = serde_json::from_str(&json).expect("rhai emits valid JSON");
    let mut known = Known::default();
    known
        .functions
        .extend(KEYWORD_FUNCTIONS.iter().map(|k| k.to_string()));
    for f in meta["functions"].as_array().into_iter().flatten() {
        let name = f["name"].as_str().unwrap_or_default();
        match name
            .strip_prefix("get$")
            .or_else(|| name.strip_prefix("set$"))
        {
            Some(property) => known.properties.insert(property.to_string()),
            None => known.functions.insert(name.to_string()),
        };
    }
    known
        .properties
        .extend(super::api::HOST_MAP_KEYS.iter().map(|k| k.to_string()));
    known
}

/// The script's functions (closures included) and every key its maps have or are given.
fn add_script(known: &mut Known, ast: &AST) {
    known
        .functions
        .extend(ast.iter_functions().map(|f| f.name.to_string()));
    known.properties.extend(map_keys(ast));
}

/// Keys of map literals and properties assigned to (`summary.status = …`).
fn map_keys(ast: &AST) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    ast.walk(&mut |path: &[ASTNode]| {
        match path.last() {
            Some(ASTNode::Expr(Expr::Map(map, _))) => {
                keys.extend(map.0.iter().map(|(ident, _)| ident.name.to_string()));
            }
            Some(ASTNode::Stmt(Stmt::Assignment(assignment))) => {
                if let Some(property) = assigned_property(&assignment.1.lhs) {
                    keys.insert(property);
                }
            }
            _ => {}
        }
        true
    });
    keys
}

/// The property at the end of an assignment target `a.b.c`.
fn assigned_property(target: &Expr) -> Option<String> {
    match target {
        Expr::Dot(dot, ..) => assigned_property(&dot.rhs),
        Expr::Property(property, _) => Some(property.2.to_string()),
        _ => None,
    }
}

/// `import "path" as alias;` statements with a literal path.
fn imports(ast: &AST) -> Vec<(String, String, rhai::Position)> {
    let mut found = Vec::new();
    ast.walk(&mut |path: &[ASTNode]| {
        if let Some(ASTNode::Stmt(Stmt::Import(import, pos))) = path.last()
            && let Expr::StringConstant(module, _) = &import.0
        {
            found.push((import.1.name.to_string(), module.to_string(), *pos));
        }
        true
    });
    found
}

/// Every function call, method call and property read, in source order.
fn uses(ast: &AST) -> Vec<Use> {
    let mut found = Vec::new();
    ast.walk(&mut |path: &[ASTNode]| {
        let node = match path.last() {
            Some(ASTNode::Expr(expr)) => Some(expr),
            Some(ASTNode::Stmt(Stmt::FnCall(call, pos))) => {
                found.extend(call_use(call, *pos));
                None
            }
            _ => None,
        };
        match node {
            Some(Expr::FnCall(call, pos)) => found.extend(call_use(call, *pos)),
            Some(Expr::MethodCall(call, pos)) => found.push(Use {
                kind: "method",
                name: call.name.to_string(),
                namespace: None,
                pos: *pos,
            }),
            Some(Expr::Property(property, pos)) if !reads_params(path) => found.push(Use {
                kind: "property",
                name: property.2.to_string(),
                namespace: None,
                pos: *pos,
            }),
            _ => {}
        }
        true
    });
    found.sort_by_key(|u| (u.pos.line(), u.pos.position()));
    found
}

/// A named function call; operators (`a + b`, `!x`, `x in list`) are Rhai's own.
fn call_use(call: &rhai::FnCallExpr, pos: rhai::Position) -> Option<Use> {
    let is_identifier = call
        .name
        .chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_');
    if call.op_token.is_some() || !is_identifier {
        return None;
    }
    Some(Use {
        kind: "function",
        name: call.name.to_string(),
        namespace: (!call.namespace.is_empty()).then(|| call.namespace.root().to_string()),
        pos,
    })
}

/// Whether the property at the end of `path` is read from the `params` map (`params.customer`).
fn reads_params(path: &[ASTNode]) -> bool {
    let [
        ..,
        ASTNode::Expr(Expr::Dot(dot, ..)),
        ASTNode::Expr(Expr::Property(..)),
    ] = path
    else {
        return false;
    };
    matches!(&dot.lhs, Expr::Variable(var, ..) if var.1 == "params")
}

impl Known {
    /// Why `usage` does not resolve, with the closest known name; None when it resolves.
    fn explain(&self, usage: &Use) -> Option<String> {
        let (candidates, what) = match (&usage.namespace, usage.kind) {
            (Some(alias), _) if alias == "global" || self.unresolved.contains(alias) => {
                return None;
            }
            (Some(alias), _) => match self.modules.get(alias) {
                Some(functions) if !functions.contains(&usage.name) => {
                    let hint = closest(&usage.name, functions).map_or_else(
                        || format!("it exports {}", join(functions)),
                        |c| format!("did you mean `{alias}::{c}`?"),
                    );
                    return Some(format!(
                        "unknown function `{alias}::{}`; {hint}",
                        usage.name
                    ));
                }
                Some(_) => return None,
                None => {
                    return Some(format!(
                        "unknown module `{alias}` in `{alias}::{}`; import it first: import \"…\" as {alias};",
                        usage.name
                    ));
                }
            },
            (None, "property") => (&self.properties, format!("property `.{}`", usage.name)),
            // A method may also be a map key holding a function (Rhai's OOP-style maps).
            (None, "method") if self.properties.contains(&usage.name) => return None,
            (None, kind) => (&self.functions, format!("{kind} `{}`", usage.name)),
        };
        if candidates.contains(&usage.name) {
            return None;
        }
        let hint = closest(&usage.name, candidates)
            .map(|c| format!("; did you mean `{c}`?"))
            .unwrap_or_else(|| "; `ocitool api` lists every function and type".to_string());
        Some(format!("unknown {what}{hint}"))
    }
}

fn join(names: &BTreeSet<String>) -> String {
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    names.join(", ")
}

/// The known name closest to `name`, when it is close enough to be a likely typo.
fn closest<'a>(name: &str, known: &'a BTreeSet<String>) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).max(1);
    known
        .iter()
        .filter(|k| !k.contains('$'))
        .map(|k| (strsim::damerau_levenshtein(name, k), k))
        .filter(|(distance, _)| *distance <= limit)
        .min()
        .map(|(_, k)| k.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> BTreeSet<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn suggestions_are_close_names_only() {
        let known = names(&["merge_credentials", "overlay", "overlays", "get$x"]);
        assert_eq!(
            closest("merge_credential", &known),
            Some("merge_credentials")
        );
        assert_eq!(closest("overlya", &known), Some("overlay"));
        assert_eq!(closest("frobnicate", &known), None);
    }
}
