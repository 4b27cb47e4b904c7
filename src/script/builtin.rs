//! The built-in workflows: `scripts/*.rhai`, compiled into the binary so `ocitool run consolidate`
//! works from any directory after `cargo install`, and importable by customer scripts as modules
//! (`import "ocitool/consolidate" as c;`).
//!
//! A script argument is a *path* when it contains `/` or ends in `.rhai` (that file is run, as
//! before), and otherwise the *name* of a built-in. Imported, a built-in is its functions only:
//! its top-level statements are the workflow `ocitool run` executes, and they need `repo` and
//! `params`, which a module does not have. This module only locates and serves script text; it
//! runs nothing itself.

use rhai::module_resolvers::{FileModuleResolver, ModuleResolversCollection};
use rhai::{Engine, EvalAltResult, Module, ModuleResolver, Position, Scope, Shared};
use std::path::{Path, PathBuf};

/// A workflow shipped inside the binary.
#[derive(Debug, PartialEq, Eq)]
pub struct Builtin {
    pub name: &'static str,
    pub source: &'static str,
}

/// Every built-in, in the order `ocitool scripts` lists them.
pub const BUILTINS: &[Builtin] = &[
    Builtin {
        name: "consolidate",
        source: include_str!("../../scripts/consolidate.rhai"),
    },
    Builtin {
        name: "deploy-reflector",
        source: include_str!("../../scripts/deploy-reflector.rhai"),
    },
    Builtin {
        name: "rotate",
        source: include_str!("../../scripts/rotate.rhai"),
    },
    Builtin {
        name: "validate",
        source: include_str!("../../scripts/validate.rhai"),
    },
    Builtin {
        name: "verify-cluster",
        source: include_str!("../../scripts/verify-cluster.rhai"),
    },
];

/// What `import` paths of built-ins start with.
pub const IMPORT_PREFIX: &str = "ocitool/";

impl Builtin {
    /// The name errors and debug lines use for it: `ocitool/consolidate.rhai`.
    pub fn label(&self) -> String {
        format!("{IMPORT_PREFIX}{}.rhai", self.name)
    }

    /// The first line of its `//!` declaration block (see [`super::params`]).
    pub fn summary(&self) -> &'static str {
        let first = self.source.lines().next().unwrap_or_default();
        first.trim_start_matches("//!").trim()
    }
}

/// The built-in called `name` (`consolidate` or `consolidate.rhai`).
pub fn find(name: &str) -> Option<&'static Builtin> {
    let name = name.strip_suffix(".rhai").unwrap_or(name);
    BUILTINS.iter().find(|b| b.name == name)
}

/// The script a `run`/`check` argument designates.
#[derive(Debug)]
pub enum ScriptSource {
    File(PathBuf),
    Builtin(&'static Builtin),
}

impl ScriptSource {
    /// A path (contains `/` or ends in `.rhai`) or a built-in name; an unknown name is an error
    /// that lists the built-ins.
    pub fn from_arg(arg: &str) -> Result<Self, String> {
        if arg.contains('/') || arg.ends_with(".rhai") {
            let path = PathBuf::from(arg);
            if path.is_file() {
                return Ok(ScriptSource::File(path));
            }
            let hint = find(file_stem(&path))
                .map(|b| format!("; the built-in is run by name: `ocitool run {}`", b.name))
                .unwrap_or_default();
            return Err(format!("script {arg} not found{hint}"));
        }
        find(arg).map(ScriptSource::Builtin).ok_or_else(|| {
            let names: Vec<&str> = BUILTINS.iter().map(|b| b.name).collect();
            format!(
                "`{arg}` is not a built-in workflow ({}; see `ocitool scripts`); give a path such as ./{arg}.rhai to run a file",
                names.join(", ")
            )
        })
    }

    /// The name errors use: the path as given, or `ocitool/NAME.rhai`.
    pub fn label(&self) -> String {
        match self {
            ScriptSource::File(path) => path.display().to_string(),
            ScriptSource::Builtin(b) => b.label(),
        }
    }

    /// The script text.
    pub fn text(&self) -> Result<String, String> {
        match self {
            ScriptSource::File(path) => {
                std::fs::read_to_string(path).map_err(|e| format!("cannot read the script: {e}"))
            }
            ScriptSource::Builtin(b) => Ok(b.source.to_string()),
        }
    }

    /// Where relative `import` paths of this script are looked up.
    fn import_dir(&self) -> PathBuf {
        match self {
            ScriptSource::File(path) => path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
            ScriptSource::Builtin(_) => PathBuf::from("."),
        }
    }
}

fn file_stem(path: &Path) -> &str {
    path.file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default()
}

/// Serves `import "ocitool/NAME"`: the functions of built-in NAME.
struct BuiltinResolver;

impl ModuleResolver for BuiltinResolver {
    fn resolve(
        &self,
        engine: &Engine,
        _source: Option<&str>,
        path: &str,
        pos: Position,
    ) -> Result<Shared<Module>, Box<EvalAltResult>> {
        let builtin = path
            .strip_prefix(IMPORT_PREFIX)
            .and_then(find)
            .ok_or_else(|| Box::new(EvalAltResult::ErrorModuleNotFound(path.into(), pos)))?;
        module_of(engine, builtin)
            .map(Shared::new)
            .map_err(|err| Box::new(EvalAltResult::ErrorInModule(path.into(), err, pos)))
    }
}

/// A built-in as a module: its functions, without its top-level workflow.
pub fn module_of(engine: &Engine, builtin: &Builtin) -> Result<Module, Box<EvalAltResult>> {
    let mut ast = engine.compile(builtin.source)?.clone_functions_only();
    ast.set_source(builtin.label());
    Module::eval_ast_as_new(Scope::new(), &ast, engine)
}

/// The script behind `import "path"` in `script`, compiled and not run (for `ocitool check`).
/// Rhai's resolver collection cannot be asked this: it panics on a module that does not compile.
pub fn import_ast(
    engine: &Engine,
    script: &ScriptSource,
    path: &str,
    pos: Position,
) -> Result<rhai::AST, Box<EvalAltResult>> {
    let in_module =
        |err: Box<EvalAltResult>| Box::new(EvalAltResult::ErrorInModule(path.into(), err, pos));
    if let Some(name) = path.strip_prefix(IMPORT_PREFIX) {
        let builtin = find(name)
            .ok_or_else(|| Box::new(EvalAltResult::ErrorModuleNotFound(path.into(), pos)))?;
        return engine
            .compile(builtin.source)
            .map_err(|e| in_module(e.into()));
    }
    FileModuleResolver::new_with_path(script.import_dir())
        .resolve_ast(engine, None, path, pos)
        .unwrap_or_else(|| {
            Err(Box::new(EvalAltResult::ErrorModuleNotFound(
                path.into(),
                pos,
            )))
        })
}

/// Built-ins first (`ocitool/…`), then files relative to the script's directory (Rhai's default
/// resolver, `.rhai` appended).
pub fn install_resolver(engine: &mut Engine, script: &ScriptSource) {
    let mut resolvers = ModuleResolversCollection::new();
    resolvers.push(BuiltinResolver);
    resolvers.push(FileModuleResolver::new_with_path(script.import_dir()));
    engine.set_module_resolver(resolvers);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_script_in_scripts_is_built_in() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "rhai"))
            .map(|p| file_stem(&p).to_string())
            .collect();
        on_disk.sort();
        let built_in: Vec<&str> = BUILTINS.iter().map(|b| b.name).collect();
        assert_eq!(on_disk, built_in);
    }

    #[test]
    fn names_and_paths_are_told_apart() {
        assert!(matches!(
            ScriptSource::from_arg("consolidate"),
            Ok(ScriptSource::Builtin(b)) if b.name == "consolidate"
        ));
        let err = ScriptSource::from_arg("scripts/nowhere/validate.rhai").unwrap_err();
        assert!(err.contains("`ocitool run validate`"), "{err}");
        let err = ScriptSource::from_arg("consolidat").unwrap_err();
        assert!(
            err.contains("not a built-in") && err.contains("consolidate,"),
            "{err}"
        );
    }

    #[test]
    fn summaries_are_the_first_declaration_line() {
        for b in BUILTINS {
            let summary = b.summary();
            assert!(
                !summary.is_empty() && !summary.contains(".rhai"),
                "{}: {summary}",
                b.name
            );
            assert!(
                summary.ends_with('.'),
                "{}: a whole sentence: {summary}",
                b.name
            );
        }
    }
}
