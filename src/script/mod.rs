//! The Rhai host: builds the engine ocitool scripts run in, runs or checks a script, and turns
//! script errors into `file:line:column: message`.
//!
//! The API scripts see is registered here from [`api`] (plugin modules) and [`types`]
//! (`CustomType` impls over the library's own types), so every capability is a library function
//! first. [`reference`] renders `ocitool api` from the engine's own metadata, so the reference
//! cannot drift from what is registered; [`params`] reads what a script declares about itself.
//! Nothing here decides domain behaviour, and nothing here writes to the repository: scripts
//! stage into the [`Workspace`]'s changeset and the CLI applies.

pub mod api;
pub mod builtin;
pub mod check;
pub mod params;
pub mod reference;
pub mod script_type;
pub mod types;

use crate::progress;
use builtin::ScriptSource;
use ocitool_adapters::kubectl::Kubectl;
use ocitool_orchestration::workspace::Workspace;
use params::{Declaration, UsageError};
use rhai::{Dynamic, Engine, EvalAltResult, Map, Position, Scope};
use std::cell::RefCell;
use std::rc::Rc;

/// The repository handle scripts call `repo`: a shared, mutable [`Workspace`].
#[derive(Clone, Debug)]
pub struct Repo(pub Rc<RefCell<Workspace>>);

/// One run's host state the API functions share: the bound parameters, where `print` goes, and
/// the result the script hands over with `set_result`.
#[derive(Clone, Debug, Default)]
pub struct Session {
    /// The script's `params` map (declared defaults filled in, values typed).
    pub params: Map,
    /// `-o json`: stdout carries one JSON document, so `print` goes to stderr.
    pub json: bool,
    /// The cluster `kubectl("")` reaches (`ocitool --kubeconfig/--context`).
    pub kube: Kubectl,
    /// `--dry-run`: nothing will be written, so scripts speak in the conditional (`dry_run()`).
    pub dry_run: bool,
    result: Rc<RefCell<Option<serde_json::Value>>>,
}

impl Session {
    pub fn new(params: Map, json: bool, kube: Kubectl) -> Self {
        Session {
            params,
            json,
            kube,
            dry_run: false,
            result: Rc::default(),
        }
    }

    /// What the script passed to `set_result` (as JSON, strings redacted), if anything.
    pub fn result(&self) -> Option<serde_json::Value> {
        self.result.borrow().clone()
    }
}

/// Limits that stop a runaway script without getting in the way of a 1,000-cluster fleet.
fn apply_limits(engine: &mut Engine) {
    engine.set_max_operations(50_000_000);
    engine.set_max_call_levels(64);
    engine.set_max_expr_depths(64, 32);
    engine.set_max_string_size(16 * 1024 * 1024);
    engine.set_max_array_size(1_000_000);
    engine.set_max_map_size(100_000);
    // Rhai's size limits see one value at a time; values captured by closures and nested
    // containers add up past them. So the whole process's resident memory is the limit, checked
    // every 1,024 operations (a /proc read, ~10 µs): a fleet run needs well under 100 MB.
    engine.on_progress(|operations| {
        (operations % 1024 == 0)
            .then(resident_bytes)
            .flatten()
            .filter(|&bytes| bytes > MAX_SCRIPT_MEMORY)
            .map(|bytes| {
                Dynamic::from(format!(
                    "the script uses {} MiB of memory, over the {} MiB limit; it was stopped",
                    bytes >> 20,
                    MAX_SCRIPT_MEMORY >> 20
                ))
            })
    });
}

/// Resident memory a script run may grow ocitool to.
const MAX_SCRIPT_MEMORY: u64 = 1 << 30;

/// This process's resident set size (`VmRSS` of /proc/self/status), when Linux tells it.
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// An engine with ocitool's API registered, printing through `out` (stdout; stderr under
/// `-o json`) and `err` (stderr) sinks, both redacted; `kubectl("")` is the session's `kube`.
pub fn engine(session: &Session) -> Engine {
    let mut engine = Engine::new();
    apply_limits(&mut engine);
    if session.json {
        engine.on_print(|text| progress::err(&ocitool_core::redact::redact(text)));
    } else {
        engine.on_print(|text| progress::out(&ocitool_core::redact::redact(text)));
    }
    engine.on_debug(|text, source, pos| {
        progress::err(&format!(
            "debug: {}:{}: {}",
            source.unwrap_or("script"),
            pos,
            ocitool_core::redact::redact(text)
        ))
    });
    types::register(&mut engine);
    api::register(&mut engine, session);
    engine
}

/// A script failure, located in the script.
#[derive(Debug)]
pub struct ScriptError {
    pub file: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for ScriptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "{}:{l}:{c}: {}", self.file, self.message),
            (Some(l), None) => write!(f, "{}:{l}: {}", self.file, self.message),
            _ => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for ScriptError {}

impl ScriptError {
    /// `err` located where it happened: in `script` (its label), or in the built-in module a
    /// function of which failed.
    fn from_rhai(script: &str, err: &EvalAltResult) -> Self {
        let (file, pos) = origin(script, err);
        let mut message = error_message(err);
        if let EvalAltResult::ErrorInFunctionCall(name, _, _, call) = err {
            let line = call.line().unwrap_or(0);
            // Rhai names closures `anon$<hash>`; the hash means nothing to the reader.
            let context = if name.starts_with("anon$") {
                format!("in the closure called at line {line}")
            } else {
                format!("in function `{name}`, called at line {line}")
            };
            message.push_str(&format!("\n  ({context})"));
        }
        ScriptError {
            file,
            line: pos.line(),
            column: pos.position(),
            message: ocitool_core::redact::redact(&message).into_owned(),
        }
    }
}

/// The script and position an error comes from: the innermost position of the chain, in the
/// script whose function raised it (Rhai records each called function's source), else `script`.
fn origin(script: &str, err: &EvalAltResult) -> (String, Position) {
    let mut file = script.to_string();
    let mut pos = err.position();
    let mut current = err;
    loop {
        match current {
            EvalAltResult::ErrorInFunctionCall(_, source, inner, _) => {
                if !source.is_empty() {
                    file = source.clone();
                }
                current = inner;
            }
            EvalAltResult::ErrorInModule(path, inner, _) => {
                file = path
                    .strip_prefix(builtin::IMPORT_PREFIX)
                    .and_then(builtin::find)
                    .map_or_else(|| path.clone(), builtin::Builtin::label);
                current = inner;
            }
            _ => break,
        }
        if !current.position().is_none() {
            pos = current.position();
        }
    }
    (file, pos)
}

/// `file:line:column: message` for an error raised in a script whose label is `script`: how a
/// fleet-wide run reports a failed cluster.
pub(crate) fn located_message(script: &str, err: &EvalAltResult) -> String {
    ScriptError::from_rhai(script, err).to_string()
}

/// What an error says, without Rhai's position suffix (a thrown value is shown as itself).
pub(crate) fn error_message(err: &EvalAltResult) -> String {
    match err.unwrap_inner() {
        EvalAltResult::ErrorRuntime(value, _) => value.to_string(),
        // Stopped by a limit of ours (see `apply_limits`): the token says which.
        EvalAltResult::ErrorTerminated(reason, _) if !reason.is_unit() => reason.to_string(),
        other => script_type::script_names(&strip_position(&other.to_string())),
    }
}

/// Print a warning on stderr: the one way the host warns, always redacted.
pub(crate) fn warn(message: &str) {
    progress::warning(&ocitool_core::redact::redact(message));
}

/// Rhai appends ` (line L, position P)` to messages; we print the location up front instead.
fn strip_position(message: &str) -> String {
    match message.rfind(" (line ") {
        Some(at) if message.ends_with(')') => message[..at].to_string(),
        _ => message.to_string(),
    }
}

/// Compile `script` without running it, resolve every name it uses (see [`check`]), and read its
/// declaration (see [`params`]).
pub fn check(script: &ScriptSource) -> Result<(), Vec<ScriptError>> {
    let mut engine = engine_for(script, &Session::default());
    // The AST as written: the optimizer would fold constant maps (and their keys) away.
    engine.set_optimization_level(rhai::OptimizationLevel::None);
    let ast = compile(&engine, script).map_err(|e| vec![e])?;
    declaration_of(script, &ast).map_err(|e| vec![e])?;
    let unknown = check::unknown_names(&engine, &ast, script);
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(unknown)
    }
}

/// What `script` declares about itself (see [`params`]), read by compiling it, never running it.
pub fn declaration(script: &ScriptSource) -> Result<Declaration, ScriptError> {
    let ast = compile(&engine_for(script, &Session::default()), script)?;
    declaration_of(script, &ast)
}

fn declaration_of(script: &ScriptSource, ast: &rhai::AST) -> Result<Declaration, ScriptError> {
    Declaration::parse(ast.doc()).map_err(|message| ScriptError {
        file: script.label(),
        line: None,
        column: None,
        message,
    })
}

fn engine_for(script: &ScriptSource, session: &Session) -> Engine {
    let mut engine = engine(session);
    builtin::install_resolver(&mut engine, script);
    engine
}

fn compile(engine: &Engine, script: &ScriptSource) -> Result<rhai::AST, ScriptError> {
    let label = script.label();
    let text = script.text().map_err(|message| ScriptError {
        file: label.clone(),
        line: None,
        column: None,
        message,
    })?;
    let mut ast = engine.compile(text).map_err(|e| {
        let err: Box<EvalAltResult> = e.into();
        ScriptError::from_rhai(&label, &err)
    })?;
    ast.set_source(label);
    Ok(ast)
}

/// Why a run did not finish: the `--set` values do not fit the declaration (nothing ran), or the
/// script failed.
#[derive(Debug)]
pub enum RunError {
    Usage(UsageError),
    Script(ScriptError),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Usage(e) => e.fmt(f),
            RunError::Script(e) => e.fmt(f),
        }
    }
}

/// A script compiled and bound to its `--set` values, ready to run.
pub struct Prepared<'s> {
    script: &'s ScriptSource,
    ast: rhai::AST,
    pub declaration: Declaration,
    pub session: Session,
}

/// Compile `script`, read its declaration and bind `given` (`--set` pairs, in order) to it; the
/// run prints JSON-style (`json`) and reaches clusters through `kube`.
pub fn prepare<'s>(
    script: &'s ScriptSource,
    given: &[(String, String)],
    json: bool,
    kube: &Kubectl,
) -> Result<Prepared<'s>, RunError> {
    let ast =
        compile(&engine_for(script, &Session::default()), script).map_err(RunError::Script)?;
    let declaration = declaration_of(script, &ast).map_err(RunError::Script)?;
    let params = declaration.bind(given).map_err(RunError::Usage)?;
    Ok(Prepared {
        script,
        ast,
        declaration,
        session: Session::new(params, json, kube.clone()),
    })
}

impl Prepared<'_> {
    /// Run against `workspace` with `repo`, `params` and `DRY_RUN` in scope.
    pub fn run(&self, workspace: Rc<RefCell<Workspace>>, dry_run: bool) -> Result<(), ScriptError> {
        let session = Session {
            dry_run,
            ..self.session.clone()
        };
        let engine = engine_for(self.script, &session);
        let mut scope = Scope::new();
        scope.push_constant("repo", Repo(workspace));
        scope.push_constant("params", self.session.params.clone());
        scope.push_constant("DRY_RUN", dry_run);
        engine
            .run_ast_with_scope(&mut scope, &self.ast)
            .map_err(|e| ScriptError::from_rhai(&self.script.label(), &e))
    }
}

/// Prepare and run `script` in one step (text output), as a benchmark or test drives it.
pub fn run(
    script: &ScriptSource,
    workspace: Rc<RefCell<Workspace>>,
    given: &[(String, String)],
    kube: &Kubectl,
    dry_run: bool,
) -> Result<(), RunError> {
    let prepared = prepare(script, given, false, kube)?;
    prepared.run(workspace, dry_run).map_err(RunError::Script)
}

/// Convert a library error into a Rhai runtime error; Rhai fills in the call site's position.
pub(crate) fn runtime_error(err: anyhow::Error) -> Box<EvalAltResult> {
    let message = ocitool_core::redact::redact(&format!("{err:#}")).into_owned();
    Box::new(EvalAltResult::ErrorRuntime(message.into(), Position::NONE))
}
