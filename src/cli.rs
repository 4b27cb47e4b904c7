//! The `ocitool` command line: parse arguments, run or check a script, apply or preview the
//! staged changes, and map outcomes to exit codes (0 done or nothing to do, 1 refused or failed,
//! 2 usage error). Also the ecosystem around it: the built-in workflows (`scripts`), shell
//! completions and a man page generated from these very definitions, and `version`.
//!
//! The CLI owns the moment changes hit the disk: a script only stages, and nothing is written
//! unless the whole script succeeded and `--dry-run` was not given. It also owns what the user
//! typed: paths are resolved against the working directory here, once, before any child process
//! runs elsewhere. Every message it prints goes through [`ocitool_core::redact`] and
//! [`crate::term`].
//!
//! A run holds the repository's lock from before the script reads anything until after the apply,
//! so what it planned from is what it writes over, and first completes any change set an earlier
//! run was killed in the middle of (see `ocitool_adapters::changeset::journal`). `--dry-run` takes
//! the same exclusive lock: its diff is only meaningful against a tree no one is writing, and it is
//! as short as the planning it shares with a real run. It also completes an interrupted change set
//! first, because a diff against a half-applied tree would be meaningless; that writes only what an
//! earlier run had already decided, never anything of its own.

use crate::progress;
use crate::script::builtin::{self, ScriptSource};
use crate::script::{self, Params};
use crate::term::{self, ColorWhen, Stream};
use clap::{CommandFactory, Parser, Subcommand};
use ocitool_adapters::changeset::{self, Change, RepoLock};
use ocitool_adapters::kubectl::Kubectl;
use ocitool_adapters::tools::{self, Found};
use ocitool_orchestration::workspace::Workspace;
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;

const EXIT_FAILED: i32 = 1;
const EXIT_USAGE: i32 = 2;

/// `--set` parameters that name files or directories: resolved against the working directory
/// (`-` stays standard input).
const PATH_PARAMS: &[&str] = &["password_file", "values_file", "base_repo", "snapshot_dir"];

#[derive(Parser, Debug)]
#[command(
    name = "ocitool",
    version,
    about = "Consolidate, rotate and verify OCI registry credentials in Flux/SOPS fleets"
)]
struct Cli {
    /// Colour: on a terminal unless NO_COLOR is set (auto), always, or never.
    #[arg(long, global = true, value_enum, default_value_t = ColorWhen::Auto, value_name = "WHEN")]
    color: ColorWhen,
    /// The kubeconfig context for live-cluster commands (kubectl --context); a script's own
    /// `--set context=…` wins.
    #[arg(long, global = true, value_name = "NAME")]
    context: Option<String>,
    /// The kubeconfig file for live-cluster commands (kubectl --kubeconfig).
    #[arg(long, global = true, value_name = "FILE")]
    kubeconfig: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a workflow against a repository; changes are applied only if it succeeds.
    Run {
        /// A built-in workflow by name (`ocitool scripts` lists them), or a script file (a path
        /// containing `/` or ending in .rhai).
        script: String,
        /// The fleet repository.
        #[arg(long, default_value = ".")]
        repo: PathBuf,
        /// A parameter for the script (repeatable): --set customer=acme --set cluster=prod.
        #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_key_value)]
        set: Vec<(String, String)>,
        /// Show the diff and a summary, change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Compile a script and resolve every name it uses, without running it; errors carry
    /// file:line:column.
    Check {
        /// A built-in workflow by name, or a script file.
        script: String,
    },
    /// List the built-in workflows.
    Scripts,
    /// List every function and type scripts can use, with signature and doc.
    Api,
    /// Print a shell completion script: ocitool completions bash > /etc/bash_completion.d/ocitool
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): ocitool man > ~/.local/share/man/man1/ocitool.1
    Man,
    /// Print ocitool's version and the tool versions it is tested with and finds.
    Version,
}

fn parse_key_value(arg: &str) -> Result<(String, String), String> {
    let (key, value) = arg
        .split_once('=')
        .ok_or_else(|| format!("`{arg}` is not KEY=VALUE"))?;
    if key.is_empty() {
        return Err(format!("`{arg}` has an empty key"));
    }
    Ok((key.to_string(), value.to_string()))
}

/// Entry point; returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return if err.use_stderr() { EXIT_USAGE } else { 0 };
        }
    };
    term::set_color(cli.color);
    let status = dispatch(cli);
    if status == 0 && term::stdout_failed() {
        EXIT_FAILED
    } else {
        status
    }
}

fn dispatch(cli: Cli) -> i32 {
    match cli.command {
        Command::Run {
            script,
            repo,
            set,
            dry_run,
        } => {
            let kube = match kube_target(cli.context, cli.kubeconfig) {
                Ok(kube) => kube,
                Err(message) => return usage_error(&message),
            };
            run(&script, &repo, set.into_iter().collect(), &kube, dry_run)
        }
        Command::Check { script } => check(&script),
        Command::Scripts => {
            for b in builtin::BUILTINS {
                progress::out(&format!("{:<17} {}", b.name, b.summary()));
            }
            0
        }
        Command::Api => {
            let engine = script::engine(&Params::new(), &Kubectl::default());
            progress::out_text(&script::reference::render(&engine));
            0
        }
        Command::Completions { shell } => {
            let mut text = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "ocitool", &mut text);
            progress::out_text(&String::from_utf8_lossy(&text));
            0
        }
        Command::Man => man_page(),
        Command::Version => {
            version();
            0
        }
    }
}

fn fail(message: &str) -> i32 {
    progress::error(&ocitool_core::redact::redact(message));
    EXIT_FAILED
}

fn usage_error(message: &str) -> i32 {
    progress::error(message);
    EXIT_USAGE
}

/// The kubectl target of `--context` and `--kubeconfig` (made absolute, so every message names
/// the file kubectl read).
fn kube_target(context: Option<String>, kubeconfig: Option<String>) -> Result<Kubectl, String> {
    let kube = Kubectl::new(context);
    Ok(match kubeconfig {
        Some(path) => kube.with_kubeconfig(&absolute(Path::new(&path))?),
        None => kube,
    })
}

fn absolute(path: &Path) -> Result<PathBuf, String> {
    std::path::absolute(path).map_err(|e| format!("cannot resolve {}: {e}", path.display()))
}

/// `params` with every path parameter made absolute against the working directory.
fn resolve_path_params(mut params: Params) -> Result<Params, String> {
    for key in PATH_PARAMS {
        if let Some(value) = params.get_mut(*key)
            && !value.is_empty()
            && value != "-"
        {
            *value = absolute(Path::new(value.as_str()))?
                .to_string_lossy()
                .into_owned();
        }
    }
    Ok(params)
}

fn check(arg: &str) -> i32 {
    let source = match ScriptSource::from_arg(arg) {
        Ok(source) => source,
        Err(message) => return usage_error(&message),
    };
    match script::check(&source) {
        Ok(()) => {
            progress::err(&format!("{}: ok", source.label()));
            0
        }
        Err(errors) => {
            for err in &errors {
                progress::error(&ocitool_core::redact::redact(&err.to_string()));
            }
            EXIT_FAILED
        }
    }
}

fn run(script_arg: &str, repo: &Path, params: Params, kube: &Kubectl, dry_run: bool) -> i32 {
    // Checked here, not in the argument parser, because clap would echo the value in its error.
    if params.contains_key("password") {
        return usage_error(
            "a password is never accepted on the command line (it would land in shell history and \
             process lists); put it in a file and pass --set password_file=PATH, or --set password_file=- for stdin",
        );
    }
    let source = match ScriptSource::from_arg(script_arg) {
        Ok(source) => source,
        Err(message) => return usage_error(&message),
    };
    let params = match resolve_path_params(params) {
        Ok(params) => params,
        Err(message) => return usage_error(&message),
    };
    let json_output = params.get("format").is_some_and(|f| f == "json");
    let wait = match changeset::lock::wait_from_env() {
        Ok(wait) => wait,
        Err(err) => return usage_error(&format!("{err:#}")),
    };
    let lock = match lock_and_recover(repo, wait) {
        Ok(lock) => lock,
        Err(err) => return fail(&format!("{err:#}")),
    };
    let workspace = match Workspace::open(lock.root()) {
        Ok(ws) => Rc::new(RefCell::new(ws)),
        Err(err) => return fail(&format!("{err:#}")),
    };
    if let Err(err) = script::run(&source, workspace.clone(), &params, kube, dry_run) {
        return fail(&format!("{err}\nnothing was changed"));
    }
    let ws = workspace.borrow();
    finish(&ws, &lock, dry_run, json_output)
}

/// After a successful script: report failed units, then show or apply the staged changes.
fn finish(ws: &Workspace, lock: &RepoLock, dry_run: bool, json_output: bool) -> i32 {
    let changes = match ws.changes.changes() {
        Ok(changes) => changes,
        Err(err) => return fail(&format!("{err:#}")),
    };
    let status = if ws.failures.is_empty() {
        0
    } else {
        progress::err(&format!(
            "{} unit(s) failed and were left untouched: {}",
            ws.failures.len(),
            ws.failures.join("; ")
        ));
        EXIT_FAILED
    };
    if changes.is_empty() {
        progress::err("nothing to change: the repository already matches");
        return status;
    }
    if dry_run {
        let diff = match ws.changes.diff() {
            Ok(diff) => term::paint_diff(&diff),
            Err(err) => return fail(&format!("{err:#}")),
        };
        // With --set format=json stdout carries the script's one JSON document and nothing else.
        let stream = if json_output {
            Stream::Err
        } else {
            Stream::Out
        };
        term::write(stream, &diff);
        progress::err(&format!(
            "dry run: {}; nothing was written",
            summary(&changes)
        ));
        return status;
    }
    match ws.changes.apply(lock) {
        Ok(applied) => {
            progress::err(&format!("applied: {}", summary(&applied)));
            status
        }
        Err(err) => fail(&format!("{err:#}")),
    }
}

/// Take the repository's lock and complete whatever an interrupted run left, saying so.
fn lock_and_recover(repo: &std::path::Path, wait: std::time::Duration) -> anyhow::Result<RepoLock> {
    let lock = RepoLock::acquire(repo, wait)?;
    for line in changeset::recover(&lock)?.report() {
        progress::err(&ocitool_core::redact::redact(&line));
    }
    Ok(lock)
}

fn summary(changes: &[Change]) -> String {
    let count = |kind: &str| changes.iter().filter(|c| c.kind() == kind).count();
    format!(
        "{} file(s) changed ({} created, {} modified, {} deleted)",
        changes.len(),
        count("create"),
        count("modify"),
        count("delete")
    )
}

fn man_page() -> i32 {
    let mut page = Vec::new();
    match clap_mangen::Man::new(Cli::command()).render(&mut page) {
        Ok(()) => {
            progress::out_text(&String::from_utf8_lossy(&page));
            0
        }
        Err(err) => fail(&format!("cannot render the man page: {err}")),
    }
}

/// ocitool's version, then one row per external tool: the version it is tested with (from
/// tools/versions.env) and the one found on this machine.
fn version() {
    progress::out(&format!("ocitool {}", env!("CARGO_PKG_VERSION")));
    progress::out(&format!("{:<12} {:<10} {}", "tool", "pinned", "found"));
    for v in tools::VERSIONED {
        let pinned = v.pin.and_then(tools::pinned).unwrap_or("any");
        let found = match v.found() {
            Found::Version(found) if v.pin.is_some() && found != pinned => {
                format!("{found} ({} differs from the pin)", term::warning_prefix())
            }
            Found::Version(found) => found,
            Found::Missing => format!("not found: {}", v.tool.install_hint),
            Found::Unknown => "found, version unknown".to_string(),
        };
        progress::out(&format!("{:<12} {pinned:<10} {found}", v.tool.name));
    }
}
