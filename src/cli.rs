//! The `ocitool` command line: parse arguments, run or check a script, apply or preview the
//! staged changes, and map outcomes to exit codes (0 done or nothing to do, 1 refused or failed,
//! 2 usage error).
//!
//! The CLI owns the moment changes hit the disk: a script only stages, and nothing is written
//! unless the whole script succeeded and `--dry-run` was not given. Every message it prints goes
//! through [`ocitool_core::redact`].
//!
//! A run holds the repository's lock from before the script reads anything until after the apply,
//! so what it planned from is what it writes over, and first completes any change set an earlier
//! run was killed in the middle of (see `ocitool_adapters::changeset::journal`). `--dry-run` takes
//! the same exclusive lock: its diff is only meaningful against a tree no one is writing, and it is
//! as short as the planning it shares with a real run. It also completes an interrupted change set
//! first, because a diff against a half-applied tree would be meaningless; that writes only what an
//! earlier run had already decided, never anything of its own.

use crate::script::{self, Params};
use clap::{Parser, Subcommand};
use ocitool_adapters::changeset::{self, Change, RepoLock};
use ocitool_orchestration::workspace::Workspace;
use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;

const EXIT_FAILED: i32 = 1;
const EXIT_USAGE: i32 = 2;

#[derive(Parser, Debug)]
#[command(
    name = "ocitool",
    version,
    about = "Consolidate, rotate and verify OCI registry credentials in Flux/SOPS fleets"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a Rhai workflow script against a repository; changes are applied only if it succeeds.
    Run {
        /// The script, e.g. scripts/consolidate.rhai.
        script: PathBuf,
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
    /// Compile a script without running it; errors carry line:column.
    Check { script: PathBuf },
    /// List every function and type scripts can use, with signature and doc.
    Api,
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
    match cli.command {
        Command::Run {
            script,
            repo,
            set,
            dry_run,
        } => run(&script, &repo, set.into_iter().collect(), dry_run),
        Command::Check { script } => match script::check(&script) {
            Ok(()) => {
                eprintln!("{}: ok", script.display());
                0
            }
            Err(err) => fail(&err.to_string()),
        },
        Command::Api => {
            print!(
                "{}",
                script::reference::render(&script::engine(&Params::new()))
            );
            0
        }
    }
}

fn fail(message: &str) -> i32 {
    eprintln!("error: {}", ocitool_core::redact::redact(message));
    EXIT_FAILED
}

fn run(
    script_path: &std::path::Path,
    repo: &std::path::Path,
    params: Params,
    dry_run: bool,
) -> i32 {
    // Checked here, not in the argument parser, because clap would echo the value in its error.
    if params.contains_key("password") {
        eprintln!(
            "error: a password is never accepted on the command line (it would land in shell history and \
             process lists); put it in a file and pass --set password_file=PATH, or --set password_file=- for stdin"
        );
        return EXIT_USAGE;
    }
    if !script_path.is_file() {
        eprintln!("error: script {} not found", script_path.display());
        return EXIT_USAGE;
    }
    let json_output = params.get("format").is_some_and(|f| f == "json");
    let wait = match changeset::lock::wait_from_env() {
        Ok(wait) => wait,
        Err(err) => {
            eprintln!("error: {err:#}");
            return EXIT_USAGE;
        }
    };
    let lock = match lock_and_recover(repo, wait) {
        Ok(lock) => lock,
        Err(err) => return fail(&format!("{err:#}")),
    };
    let workspace = match Workspace::open(lock.root()) {
        Ok(ws) => Rc::new(RefCell::new(ws)),
        Err(err) => return fail(&format!("{err:#}")),
    };
    if let Err(err) = script::run(script_path, workspace.clone(), &params, dry_run) {
        return fail(&format!("{err}\nnothing was changed"));
    }
    let ws = workspace.borrow();
    let changes = match ws.changes.changes() {
        Ok(changes) => changes,
        Err(err) => return fail(&format!("{err:#}")),
    };
    let status = if ws.failures.is_empty() {
        0
    } else {
        EXIT_FAILED
    };
    if !ws.failures.is_empty() {
        eprintln!(
            "{} unit(s) failed and were left untouched: {}",
            ws.failures.len(),
            ws.failures.join("; ")
        );
    }
    if changes.is_empty() {
        eprintln!("nothing to change: the repository already matches");
        return status;
    }
    if dry_run {
        match ws.changes.diff() {
            // With --set format=json stdout carries the script's one JSON document and nothing else.
            Ok(diff) if json_output => eprint!("{diff}"),
            Ok(diff) => print!("{diff}"),
            Err(err) => return fail(&format!("{err:#}")),
        }
        eprintln!("dry run: {}; nothing was written", summary(&changes));
        return status;
    }
    match ws.changes.apply(&lock) {
        Ok(applied) => {
            eprintln!("applied: {}", summary(&applied));
            status
        }
        Err(err) => fail(&format!("{err:#}")),
    }
}

/// Take the repository's lock and complete whatever an interrupted run left, saying so.
fn lock_and_recover(repo: &std::path::Path, wait: std::time::Duration) -> anyhow::Result<RepoLock> {
    let lock = RepoLock::acquire(repo, wait)?;
    for line in changeset::recover(&lock)?.report() {
        eprintln!("{}", ocitool_core::redact::redact(&line));
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
