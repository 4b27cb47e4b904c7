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
use crate::script::{self, Prepared, RunError, Session};
use crate::term::{self, ColorWhen, Stream};
use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use ocitool_adapters::changeset::{self, Change, RepoLock};
use ocitool_adapters::kubectl::Kubectl;
use ocitool_adapters::tools::{self, Found};
use ocitool_orchestration::workspace::Workspace;
use serde_json::{Value, json};
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;

const EXIT_FAILED: i32 = 1;
const EXIT_USAGE: i32 = 2;
/// `apiVersion` of every `-o json` document; docs/output.schema.json describes them.
pub const API_VERSION: &str = "ocitool/v1";

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
    /// Output format: text for people, or json (one document on stdout; progress, messages and
    /// diffs on stderr).
    #[arg(short = 'o', long = "output", global = true, value_enum, default_value_t = Output::Text)]
    output: Output,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a workflow against a repository; changes are applied only if it succeeds.
    /// `ocitool run SCRIPT --help` lists the parameters the script declares.
    #[command(disable_help_flag = true)]
    Run {
        /// A built-in workflow by name (`ocitool scripts` lists them), or a script file (a path
        /// containing `/` or ending in .rhai).
        script: Option<String>,
        /// The fleet repository.
        #[arg(long, default_value = ".")]
        repo: PathBuf,
        /// A declared parameter of the script (repeatable): --set customer=acme --set cluster=prod.
        #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_key_value)]
        set: Vec<(String, String)>,
        /// Select every customer (the same as --set customer='*'); leaving customer out never does.
        #[arg(long)]
        all_customers: bool,
        /// Show the diff and a summary, change nothing.
        #[arg(long)]
        dry_run: bool,
        /// With --dry-run: exit 1 when changes are pending (0 when the repository already matches).
        #[arg(long, requires = "dry_run")]
        exit_code: bool,
        /// With --dry-run: how an encrypted Secret's change is shown. `credentials` (the default):
        /// registry, username and fingerprint, old → new; `raw`: the file diff (values masked).
        #[arg(long, value_enum, default_value_t = DiffMode::Credentials, requires = "dry_run")]
        diff: DiffMode,
        /// Print help (with the script's parameters when a script is given).
        #[arg(short, long)]
        help: bool,
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
            all_customers,
            dry_run,
            exit_code,
            diff,
            help,
        } => {
            let Some(script) = script else {
                return run_usage(help);
            };
            if help {
                return script_help(&script);
            }
            let kube = match kube_target(cli.context, cli.kubeconfig) {
                Ok(kube) => kube,
                Err(message) => return usage_error(&message),
            };
            let request = RunRequest {
                repo,
                set,
                all_customers,
                dry_run,
                exit_code,
                raw_diff: diff == DiffMode::Raw,
                json: cli.output == Output::Json,
                kube,
            };
            run(&script, &request)
        }
        Command::Check { script } => check(&script),
        Command::Scripts => {
            for b in builtin::BUILTINS {
                progress::out(&format!("{:<17} {}", b.name, b.summary()));
            }
            0
        }
        Command::Api => {
            let engine = script::engine(&Session::default());
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

/// `ocitool run` without a script: its help when asked for, a usage error otherwise.
fn run_usage(help: bool) -> i32 {
    let mut command = Cli::command();
    let run = command
        .find_subcommand_mut("run")
        .expect("the run subcommand exists");
    if help {
        progress::out_text(&run.render_help().to_string());
        return 0;
    }
    let _ = run
        .error(
            clap::error::ErrorKind::MissingRequiredArgument,
            "the script to run is missing: ocitool run SCRIPT [--set KEY=VALUE]...",
        )
        .print();
    EXIT_USAGE
}

/// `ocitool run SCRIPT --help`: what the script declares.
fn script_help(arg: &str) -> i32 {
    let source = match ScriptSource::from_arg(arg) {
        Ok(source) => source,
        Err(message) => return usage_error(&message),
    };
    match script::declaration(&source) {
        Ok(declaration) => {
            progress::out_text(&declaration.help(&source.label()));
            progress::out(
                "\nOptions: --repo DIR, --all-customers, --dry-run [--exit-code], -o json, --context, --kubeconfig (see ocitool run --help)",
            );
            0
        }
        Err(err) => fail(&err.to_string()),
    }
}

/// Everything `ocitool run` was asked, besides the script.
struct RunRequest {
    repo: PathBuf,
    set: Vec<(String, String)>,
    all_customers: bool,
    dry_run: bool,
    exit_code: bool,
    raw_diff: bool,
    json: bool,
    kube: Kubectl,
}

/// How `--dry-run` shows an encrypted Secret's change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum DiffMode {
    Credentials,
    Raw,
}

impl RunRequest {
    /// The `--set` pairs, `--all-customers` included as `customer=*`.
    fn params(&self) -> Vec<(String, String)> {
        let mut params = self.set.clone();
        if self.all_customers {
            params.push((
                "customer".to_string(),
                ocitool_orchestration::target::ALL_CUSTOMERS.to_string(),
            ));
        }
        params
    }
}

fn run(script_arg: &str, request: &RunRequest) -> i32 {
    let source = match ScriptSource::from_arg(script_arg) {
        Ok(source) => source,
        Err(message) => return usage_error(&message),
    };
    // The declaration decides what `--set` may say (a password never), before anything runs.
    let prepared = match script::prepare(&source, &request.params(), request.json, &request.kube) {
        Ok(prepared) => prepared,
        Err(RunError::Usage(err)) => return usage_error(&err.to_string()),
        Err(RunError::Script(err)) => return fail(&err.to_string()),
    };
    let wait = match changeset::lock::wait_from_env() {
        Ok(wait) => wait,
        Err(err) => return usage_error(&format!("{err:#}")),
    };
    let lock = match lock_and_recover(&request.repo, wait) {
        Ok(lock) => lock,
        Err(err) => return fail(&format!("{err:#}")),
    };
    let workspace = match Workspace::open(lock.root()) {
        Ok(ws) => Rc::new(RefCell::new(ws)),
        Err(err) => return fail(&format!("{err:#}")),
    };
    let outcome = prepared.run(workspace.clone(), request.dry_run);
    let ws = workspace.borrow();
    let report = Report {
        prepared: &prepared,
        request,
        ws: &ws,
        lock: &lock,
    };
    match outcome {
        Ok(()) => report.finish(),
        Err(err) => report.failed(&err.to_string()),
    }
}

/// How a run ends: what it says on stderr (and, with `-o json`, the one document on stdout), what
/// it writes, and its exit code. Every sentence is true of what happened: a dry run speaks in the
/// conditional, and a read-only workflow never talks about changes.
struct Report<'a> {
    prepared: &'a Prepared<'a>,
    request: &'a RunRequest,
    ws: &'a Workspace,
    lock: &'a RepoLock,
}

impl Report<'_> {
    fn writes(&self) -> bool {
        self.prepared.declaration.writes
    }

    /// The script failed: nothing is written.
    fn failed(&self, message: &str) -> i32 {
        let mut text = message.to_string();
        if self.writes() {
            text.push_str("\nnothing was changed");
        }
        self.document("failed", &[], Some(message));
        fail(&text)
    }

    fn finish(&self) -> i32 {
        let changes = match self.ws.pending() {
            Ok(changes) => changes,
            Err(err) => return self.failed(&format!("{err:#}")),
        };
        if !self.writes() && !changes.is_empty() {
            return self.failed(
                "the script staged changes but does not declare `//! writes`, so none are written",
            );
        }
        let failures = self.ws.failures();
        if !failures.is_empty() {
            let listed: Vec<String> = failures.iter().map(ToString::to_string).collect();
            progress::err(&format!(
                "{} cluster(s) failed and were left untouched: {}",
                failures.len(),
                ocitool_core::redact::redact(&listed.join("; "))
            ));
        }
        let status = if failures.is_empty() { 0 } else { EXIT_FAILED };
        if changes.is_empty() {
            if self.writes() {
                progress::err("nothing to change: the repository already matches");
            }
            self.document(status_word(status), &changes, None);
            return status;
        }
        if self.request.dry_run {
            return self.preview(&changes, status);
        }
        match self.ws.apply(self.lock) {
            Ok(applied) => {
                progress::err(&format!("applied: {}", summary(&applied, false)));
                self.document(status_word(status), &applied, None);
                status
            }
            Err(err) => self.failed(&format!("{err:#}")),
        }
    }

    /// `--dry-run` with pending changes: the diff (stderr under `-o json`) and what would happen.
    fn preview(&self, changes: &[Change], status: i32) -> i32 {
        let diff = match self.ws.diff(self.request.raw_diff) {
            Ok(diff) => term::paint_diff(&diff),
            Err(err) => return self.failed(&format!("{err:#}")),
        };
        let stream = if self.request.json {
            Stream::Err
        } else {
            Stream::Out
        };
        term::write(stream, &diff);
        progress::err(&format!(
            "dry run: {}; nothing was written",
            summary(changes, true)
        ));
        self.document(status_word(status), changes, None);
        if status == 0 && self.request.exit_code {
            EXIT_FAILED
        } else {
            status
        }
    }

    /// With `-o json`: the one document on stdout. The script's `set_result` fields come first;
    /// the envelope (apiVersion, kind, status, dryRun, changes, failures, error) is the host's.
    fn document(&self, status: &str, changes: &[Change], error: Option<&str>) {
        if !self.request.json {
            return;
        }
        let mut doc = match self.prepared.session.result() {
            Some(Value::Object(fields)) => fields,
            _ => serde_json::Map::new(),
        };
        let kind = self
            .prepared
            .declaration
            .kind
            .as_deref()
            .unwrap_or("Result");
        let failures: Vec<Value> = self
            .ws
            .failures()
            .iter()
            .map(
                |f| json!({"cluster": f.unit, "message": ocitool_core::redact::redact(&f.message)}),
            )
            .collect();
        let changes: Vec<Value> = changes
            .iter()
            .map(|c| json!({"path": c.path.to_string(), "kind": c.kind()}))
            .collect();
        let envelope = [
            ("apiVersion", json!(API_VERSION)),
            ("kind", json!(kind)),
            ("status", json!(status)),
            ("dryRun", json!(self.request.dry_run)),
            ("changes", json!(changes)),
            ("failures", json!(failures)),
        ];
        for (key, value) in envelope {
            doc.insert(key.to_string(), value);
        }
        if let Some(message) = error {
            doc.insert(
                "error".to_string(),
                json!(ocitool_core::redact::redact(message)),
            );
        }
        term::write(Stream::Out, &format!("{}\n", Value::Object(doc)));
    }
}

/// The `status` of a `-o json` document for an exit code.
fn status_word(status: i32) -> &'static str {
    if status == 0 { "succeeded" } else { "failed" }
}

/// Take the repository's lock and complete whatever an interrupted run left, saying so.
fn lock_and_recover(repo: &std::path::Path, wait: std::time::Duration) -> anyhow::Result<RepoLock> {
    let lock = RepoLock::acquire(repo, wait)?;
    for line in changeset::recover(&lock)?.report() {
        progress::err(&ocitool_core::redact::redact(&line));
    }
    Ok(lock)
}

/// `3 file(s) changed (1 created, …)`, or in the conditional for a dry run.
fn summary(changes: &[Change], conditional: bool) -> String {
    let count = |kind: &str| changes.iter().filter(|c| c.kind() == kind).count();
    let (verb, created) = if conditional {
        ("would change", "would be created")
    } else {
        ("changed", "created")
    };
    format!(
        "{} file(s) {verb} ({} {created}, {} modified, {} deleted)",
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
