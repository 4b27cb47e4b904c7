//! The documentation, executed: every `ocitool` command in a ```sh block of README.md and docs/*.md
//! runs, in order, against a scratch copy of examples/fleet, and must end as the doc says (exit 0,
//! or `# exits N`, or `# live cluster`). The `export NAME=…` lines shown before a command are in
//! effect for it, as they would be in the reader's shell. Also the worked example script and the alert rules the
//! operator guide ships. The live tier (`e2e::cluster`) runs the guide's cluster commands (`kubectl`
//! and `# live cluster`) against a real API server through [`DocsWorkdir`].

use crate::support;

use std::path::{Path, PathBuf};
use support::{Fleet, example_passwords};

const REPO: &str = env!("CARGO_MANIFEST_DIR");
/// What the docs' `read -rs NEW_PASSWORD` stands for in the tests.
const NEW_PASSWORD: &str = "docs-test-new-robot-password-7f3a";

/// How a documented command must end.
#[derive(Debug, PartialEq)]
pub(crate) enum Expect {
    Success,
    Exit(i32),
    /// Needs a reachable cluster; here kubectl finds none and ocitool must say so (exit 1).
    LiveCluster,
}

#[derive(Debug)]
pub(crate) struct DocCommand {
    pub(crate) line: usize,
    pub(crate) text: String,
    pub(crate) expect: Expect,
    /// The `export` lines the document showed before this command.
    pub(crate) exports: String,
}

/// The `ocitool` commands of the ```sh blocks of `markdown`, `\`-continued lines joined.
pub(crate) fn doc_commands(markdown: &str) -> Vec<DocCommand> {
    commands_where(markdown, |text| {
        text.starts_with("ocitool ") || text.contains("| ocitool ")
    })
}

/// The commands of the ```sh blocks of `markdown` for which `wanted` holds (`\`-continued lines
/// joined), and every ```sh local block whole.
pub(crate) fn commands_where(markdown: &str, wanted: impl Fn(&str) -> bool) -> Vec<DocCommand> {
    let mut commands = Vec::new();
    let mut in_sh = false;
    // A ```sh local block runs whole, as one script, where it stands in the sequence.
    let mut local_block: Option<(usize, String)> = None;
    let mut pending: Option<(usize, String)> = None;
    let mut exports = String::new();
    for (i, line) in markdown.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.starts_with("```") {
            if let Some((start, text)) = local_block.take() {
                commands.push(DocCommand {
                    line: start,
                    text,
                    expect: Expect::Success,
                    exports: exports.clone(),
                });
            } else if trimmed == "```sh local" {
                local_block = Some((i + 2, String::new()));
                continue;
            }
            in_sh = !in_sh && trimmed == "```sh";
            continue;
        }
        if let Some((_, block)) = local_block.as_mut() {
            block.push_str(line);
            block.push('\n');
            continue;
        }
        if !in_sh {
            continue;
        }
        let (start, mut text) = pending.take().unwrap_or((i + 1, String::new()));
        text.push_str(trimmed.trim_end_matches('\\').trim_end());
        if trimmed.ends_with('\\') {
            text.push(' ');
            pending = Some((start, text));
            continue;
        }
        if text.starts_with("export ") {
            exports.push_str(&text);
            exports.push('\n');
        } else if wanted(&text) {
            commands.push(DocCommand {
                line: start,
                expect: expectation(&text),
                text,
                exports: exports.clone(),
            });
        }
    }
    commands
}

fn expectation(command: &str) -> Expect {
    let comment = command.rsplit_once("  # ").map_or("", |(_, c)| c);
    if comment.starts_with("live cluster") {
        Expect::LiveCluster
    } else if let Some(code) = comment.strip_prefix("exits ") {
        let code = code.split(|c: char| !c.is_ascii_digit()).next().unwrap();
        Expect::Exit(code.parse().expect("`# exits N` needs a number"))
    } else {
        Expect::Success
    }
}

/// The working directory the docs assume: `fleet` (a copy of examples/fleet), an empty `base`,
/// the checkout's `scripts`, `examples` and `manifests`, a `snapshot` of a healthy cluster, and a kubeconfig
/// whose contexts point at a port where no cluster listens.
pub(crate) struct DocsWorkdir {
    dir: tempfile::TempDir,
    fleet: Fleet,
}

impl DocsWorkdir {
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let fleet = Fleet::example();
        let at = |rel: &str| dir.path().join(rel);
        std::os::unix::fs::symlink(fleet.path(), at("fleet")).unwrap();
        for linked in ["scripts", "examples", "manifests"] {
            std::os::unix::fs::symlink(Path::new(REPO).join(linked), at(linked)).unwrap();
        }
        std::fs::create_dir(at("base")).unwrap();
        support::kubectl_snapshot(&at("snapshot"), "healthy");
        std::fs::write(
            at("kubeconfig"),
            support::unreachable_kubeconfig(&["acme-prod", "acme-dev"]),
        )
        .unwrap();
        DocsWorkdir { dir, fleet }
    }

    /// The kubeconfig every command runs with (`KUBECONFIG`); the e2e tier points it at a live cluster.
    pub(crate) fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    pub(crate) fn run(&self, command: &DocCommand) -> support::Output {
        let bin_dir = PathBuf::from(env!("CARGO_BIN_EXE_ocitool"))
            .parent()
            .unwrap()
            .to_path_buf();
        // As the docs set it up: the binary and the pinned tools first (cargo sets
        // OCITOOL_TOOLS_DIR to .tools/bin, see .cargo/config.toml). The key file is the one a
        // doc's own `export SOPS_AGE_KEY_FILE=…` replaces.
        let tools_dir = std::env::var("OCITOOL_TOOLS_DIR").unwrap_or_default();
        let path = format!(
            "{}:{tools_dir}:{}",
            bin_dir.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let script = format!("{}{}", command.exports, command.text);
        support::Cmd::bash(self.dir.path(), &script)
            .env("PATH", &path)
            .env("SOPS_AGE_KEY_FILE", self.fleet.key_file().to_str().unwrap())
            .env("NEW_PASSWORD", NEW_PASSWORD)
            .env("KUBECONFIG", self.kubeconfig().to_str().unwrap())
            .output()
    }
}

/// Run every documented command of `doc` in order; returns each command with what it printed.
fn run_doc(doc: &str) -> Vec<(String, support::Output)> {
    let markdown = std::fs::read_to_string(Path::new(REPO).join(doc)).unwrap();
    let workdir = DocsWorkdir::new();
    let mut secrets = example_passwords();
    secrets.push(NEW_PASSWORD.to_string());
    let mut ran = Vec::new();
    for command in doc_commands(&markdown) {
        let out = workdir.run(&command);
        eprintln!(
            "{doc}:{}: exit {}: {}",
            command.line, out.code, command.text
        );
        let shown = format!(
            "{doc}:{}: `{}`\n--- stdout\n{}\n--- stderr\n{}",
            command.line, command.text, out.stdout, out.stderr
        );
        match command.expect {
            Expect::Success => assert_eq!(out.code, 0, "{shown}"),
            Expect::Exit(code) => assert_eq!(out.code, code, "{shown}"),
            Expect::LiveCluster => assert!(
                out.code == 1 && out.stderr.contains("kubectl") && out.stderr.contains("acme-prod"),
                "a live-cluster command without a cluster must fail naming kubectl and the context\n{shown}"
            ),
        }
        ran.push((command.text, out.leaks_none(&secrets)));
    }
    workdir.fleet.assert_no_plaintext(&secrets);
    ran
}

/// The output of the first documented command containing every one of `parts`.
fn output_of<'a>(ran: &'a [(String, support::Output)], parts: &[&str]) -> &'a support::Output {
    output_where(ran, |text| parts.iter().all(|p| text.contains(p)))
        .unwrap_or_else(|| panic!("no documented command contains {parts:?}"))
}

/// The output of the first documented command whose text satisfies `wanted`.
fn output_where(
    ran: &[(String, support::Output)],
    wanted: impl Fn(&str) -> bool,
) -> Option<&support::Output> {
    ran.iter()
        .find(|(text, _)| wanted(text))
        .map(|(_, out)| out)
}

#[test]
fn the_command_parser_reads_continuations_pipes_and_expectations() {
    let markdown = "text\n```sh\nexport X=1\nocitool run a.rhai --set x=1 \\\n    --dry-run\nprintf x | ocitool run b.rhai   # exits 1: because\nocitool run c.rhai   # live cluster\n```\n```text\nocitool run SCRIPT\n```\n```sh local\nX=1\necho $X\n```\n";
    let commands = doc_commands(markdown);
    let summary: Vec<_> = commands
        .iter()
        .map(|c| (c.line, c.text.as_str(), &c.expect))
        .collect();
    assert_eq!(
        summary,
        [
            (
                4,
                "ocitool run a.rhai --set x=1 --dry-run",
                &Expect::Success
            ),
            (
                6,
                "printf x | ocitool run b.rhai   # exits 1: because",
                &Expect::Exit(1)
            ),
            (
                7,
                "ocitool run c.rhai   # live cluster",
                &Expect::LiveCluster
            ),
            (13, "X=1\necho $X\n", &Expect::Success),
        ]
    );
    assert!(commands.iter().all(|c| c.exports == "export X=1\n"));
}

#[test]
fn the_operator_guide_commands_run_as_documented() {
    let ran = run_doc("docs/oci-credentials-with-reflector.md");
    assert!(
        ran.len() >= 12,
        "only {} commands found in the guide",
        ran.len()
    );
    // What the guide says these commands print.
    let previewed = output_of(
        &ran,
        &["run consolidate", "--set customer=acme", "--dry-run"],
    );
    assert!(
        previewed
            .stdout
            .contains("2 cluster(s): 2 would be consolidated")
    );
    let applied = output_where(&ran, |t| {
        t.contains("run consolidate") && !t.contains("--dry-run")
    })
    .expect("the guide applies consolidate.rhai");
    assert!(applied.stdout.contains("2 cluster(s): 2 consolidated"));
    assert!(
        applied
            .stderr
            .contains("(2 created, 26 modified, 24 deleted)"),
        "{}",
        applied.stderr
    );
    let validated = output_of(&ran, &["run validate", "base_repo=base"]);
    assert!(
        validated.stdout.contains("2 cluster(s): 2 valid"),
        "{}",
        validated.stdout
    );
    assert_eq!(
        validated
            .stdout
            .lines()
            .filter(|l| l.starts_with("warning"))
            .count(),
        4,
        "two headlamp warnings per cluster\n{}",
        validated.stdout
    );
    let rotated = output_where(&ran, |t| {
        t.contains("run rotate") && t.contains("password_file=-") && !t.contains("--dry-run")
    })
    .expect("the guide applies rotate.rhai");
    assert!(
        rotated
            .stdout
            .contains("acme/prod: rotated harbor.acme.example")
            && rotated.stdout.contains("old: v2:40e3f3ea34a1"),
        "{}",
        rotated.stdout
    );
    // The hand rotation (```sh local) keeps every registry, and ocitool sees it.
    let by_hand = output_of(&ran, &["sops set"]);
    assert_eq!(by_hand.stdout, "ghcr.io\nharbor.acme.example\n");
    let report = output_of(&ran, &["fingerprint=v2:1a5c27e19512"]);
    assert!(
        report
            .stdout
            .contains("0 of 2 consolidated cluster(s) still carry v2:1a5c27e19512"),
        "{}",
        report.stdout
    );
    let report = output_of(&ran, &["fingerprint=v2:40e3f3ea34a1"]);
    assert!(
        report
            .stdout
            .contains("0 of 2 consolidated cluster(s) still carry v2:40e3f3ea34a1"),
        "{}",
        report.stdout
    );
}

#[test]
fn the_scripting_guide_commands_run_as_documented() {
    let ran = run_doc("docs/scripting.md");
    let dry = output_of(&ran, &["mirror-namespaces.rhai", "--dry-run"]);
    assert!(
        dry.stdout.contains("2 cluster(s): 2 would be updated"),
        "{}",
        dry.stdout
    );
    let validated = output_of(&ran, &["run validate"]);
    assert!(
        validated
            .stdout
            .contains("namespace billing gets a mirror but nothing there needs it")
    );
}

#[test]
fn the_readme_commands_run_as_documented() {
    assert!(run_doc("README.md").len() >= 3);
}

// ---------------------------------------------------------------------------------------------
// The worked example script

const PROD_SOURCE: &str = "acme/applications/overlays/prod/flux-system/oci-creds.yaml";

fn annotation<'a>(secret: &'a serde_yaml::Value, key: &str) -> &'a str {
    secret["metadata"]["annotations"][format!("reflector.v1.k8s.emberstack.com/{key}").as_str()]
        .as_str()
        .unwrap()
}

#[test]
fn mirror_namespaces_example_edits_both_lists_and_keeps_the_credentials() {
    let fleet = Fleet::example();
    let consolidate = || {
        fleet
            .run("consolidate.rhai")
            .set("customer", "acme")
            .set("cluster", "prod")
    };
    consolidate().succeeds();
    let before: serde_yaml::Value = serde_yaml::from_str(&fleet.decrypt(PROD_SOURCE)).unwrap();
    let example = Path::new(REPO).join("examples/scripts/mirror-namespaces.rhai");
    let run = || {
        fleet
            .ocitool()
            .args(&["run", example.to_str().unwrap(), "--repo", "."])
            .set("customer", "acme")
            .set("cluster", "prod")
    };
    run()
        .set("add", "billing")
        .set("remove", "headlamp")
        .succeeds()
        .stdout_has("acme/prod: updated");
    let after: serde_yaml::Value = serde_yaml::from_str(&fleet.decrypt(PROD_SOURCE)).unwrap();
    let auto = annotation(&after, "reflection-auto-namespaces");
    assert_eq!(auto, annotation(&after, "reflection-allowed-namespaces"));
    assert!(
        auto.split(',').any(|n| n == "billing") && !auto.split(',').any(|n| n == "headlamp"),
        "{auto}"
    );
    assert_eq!(before["data"], after["data"], "credentials are kept");
    assert_eq!(annotation(&after, "reflection-auto-enabled"), "true");

    run()
        .set("add", "billing")
        .succeeds()
        .stdout_has("acme/prod: unchanged")
        .stderr_has("nothing to change");
    run()
        .fails(1)
        .stderr_has("mirror-namespaces.rhai:")
        .stderr_has("nothing to do");
}

// ---------------------------------------------------------------------------------------------
// The alert rules of the operator guide

#[test]
fn the_shipped_prometheus_rule_has_the_documented_alerts() {
    let path = Path::new(REPO).join("manifests/monitoring/oci-creds-alerts.yaml");
    let rule: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(rule["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(rule["kind"], "PrometheusRule");
    let guide =
        std::fs::read_to_string(Path::new(REPO).join("docs/oci-credentials-with-reflector.md"))
            .unwrap();
    let mut names = Vec::new();
    for group in rule["spec"]["groups"].as_sequence().unwrap() {
        for alert in group["rules"].as_sequence().unwrap() {
            let name = alert["alert"].as_str().unwrap();
            assert!(alert["expr"].as_str().is_some_and(|e| !e.trim().is_empty()));
            assert!(alert["for"].as_str().is_some(), "{name} has no `for`");
            assert!(alert["labels"]["severity"].as_str().is_some());
            assert!(
                guide.contains(&format!("| `{name}` |")),
                "the guide does not document {name}"
            );
            names.push(name.to_string());
        }
    }
    assert_eq!(
        names,
        [
            "ReflectorUnavailable",
            "OciCredsSourceMissing",
            "OciCredsMirrorStale",
            "FluxRegistryAuthenticationFailed",
            "FluxHelmReleaseSourceNotReady"
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// docs/ci.md: the GitHub Actions workflow and the pre-commit hook, run as written

/// The ```yaml blocks of `markdown`, parsed.
fn yaml_blocks(markdown: &str) -> Vec<serde_yaml::Value> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match (current.as_mut(), line.trim()) {
            (None, "```yaml") => current = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(serde_yaml::from_str(block).expect("a ```yaml block parses"));
                current = None;
            }
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

fn ci_doc_block(key: &str) -> serde_yaml::Value {
    let markdown = std::fs::read_to_string(Path::new(REPO).join("docs/ci.md")).unwrap();
    yaml_blocks(&markdown)
        .into_iter()
        .find(|b| b.get(key).is_some())
        .unwrap_or_else(|| panic!("docs/ci.md has no ```yaml block with `{key}`"))
}

/// The example fleet consolidated, as a fleet that passes validate is.
fn consolidated_fleet() -> Fleet {
    let fleet = Fleet::example();
    fleet
        .run("consolidate.rhai")
        .set("customer", "acme")
        .succeeds();
    fleet
}

/// `script` run with bash in `fleet` the way CI runs it: ocitool and the pinned tools on PATH,
/// the age key in SOPS_AGE_KEY (the repository secret) instead of a key file.
fn run_in_ci(fleet: &Fleet, script: &str) -> support::Output {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_ocitool")).parent().unwrap();
    let tools_dir = std::env::var("OCITOOL_TOOLS_DIR").unwrap_or_default();
    let path = format!(
        "{}:{tools_dir}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let key = std::fs::read_to_string(fleet.key_file()).unwrap();
    support::Cmd::bash(fleet.path(), script)
        .env("PATH", &path)
        .env("SOPS_AGE_KEY", &key)
        .output()
}

/// A per-service Secret back beside the consolidated source: validate's "per-service copy" error.
fn break_fleet(fleet: &Fleet) {
    let service = "acme/applications/overlays/prod/services/loki/oci-creds.yaml";
    fleet.write(service, &fleet.read(PROD_SOURCE));
}

#[test]
fn the_ci_workflow_installs_the_pinned_tools_and_fails_a_broken_fleet() {
    let workflow = ci_doc_block("jobs");
    let steps = workflow["jobs"]["validate"]["steps"].as_sequence().unwrap();
    let pins = std::fs::read_to_string(Path::new(REPO).join("tools/versions.env")).unwrap();
    let pin = |key: &str| {
        pins.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap()
            .to_string()
    };
    let (installs, checks): (Vec<_>, Vec<_>) = steps
        .iter()
        .filter(|s| s["run"].is_string())
        .partition(|s| {
            s["id"]
                .as_str()
                .is_some_and(|id| id.starts_with("install-"))
        });
    // The install steps download; the test has its own build and tools. They must install the pins.
    let install_text: String = installs
        .iter()
        .map(|s| s["run"].as_str().unwrap())
        .collect();
    for (module, key) in [
        ("github.com/getsops/sops/v3/cmd/sops", "SOPS_VERSION"),
        (
            "github.com/yannh/kubeconform/cmd/kubeconform",
            "KUBECONFORM_VERSION",
        ),
    ] {
        assert!(
            install_text.contains(&format!("{module}@{}", pin(key))),
            "the workflow installs {module} at another version than tools/versions.env's {key}"
        );
    }
    assert!(!checks.is_empty(), "the workflow runs no check");
    let fleet = consolidated_fleet();
    for step in &checks {
        let script = step["run"].as_str().unwrap();
        let out = run_in_ci(&fleet, script);
        assert_eq!(out.code, 0, "`{script}`\n{}\n{}", out.stdout, out.stderr);
        assert!(
            out.stdout.contains("2 cluster(s): 2 valid"),
            "{}",
            out.stdout
        );
    }
    break_fleet(&fleet);
    let failed = checks
        .iter()
        .map(|step| run_in_ci(&fleet, step["run"].as_str().unwrap()))
        .find(|out| out.code != 0)
        .expect("the workflow passes a fleet with a per-service copy of the source");
    assert!(
        failed.stdout.contains("per-service copy"),
        "{}",
        failed.stdout
    );
}

#[test]
fn the_pre_commit_hook_passes_a_valid_fleet_and_stops_a_broken_one() {
    let config = ci_doc_block("repos");
    let hook = &config["repos"][0]["hooks"][0];
    assert_eq!(hook["pass_filenames"], serde_yaml::Value::Bool(false));
    let entry = hook["entry"].as_str().unwrap();
    let fleet = consolidated_fleet();
    let out = run_in_ci(&fleet, entry);
    assert_eq!(out.code, 0, "`{entry}`\n{}\n{}", out.stdout, out.stderr);
    break_fleet(&fleet);
    assert_eq!(
        run_in_ci(&fleet, entry).code,
        1,
        "`{entry}` passes a broken fleet"
    );
}
