//! ocitool as a command-line citizen: built-in workflows run by name from anywhere, a closed pipe
//! ends quietly, colour only where wanted, kubectl's flags, paths relative to the working
//! directory, `check` resolving names, located and readable script errors, completions, man page
//! and `version`.

use crate::support::{Cmd, Fleet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// A working directory that is neither the checkout nor the fleet.
fn elsewhere() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn write_script(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

// ---- built-in workflows ----

#[test]
fn built_in_workflows_run_by_name_from_any_directory() {
    let fleet = Fleet::example();
    let cwd = elsewhere();
    Cmd::new(cwd.path())
        .env("SOPS_AGE_KEY_FILE", fleet.key_file().to_str().unwrap())
        .args(&[
            "run",
            "consolidate",
            "--repo",
            fleet.path().to_str().unwrap(),
        ])
        .set("customer", "acme")
        .set("cluster", "prod")
        .dry_run()
        .succeeds()
        .stdout_has("acme/prod: would be consolidated")
        .stderr_has("nothing was written");
    let listed = Cmd::new(cwd.path()).args(&["scripts"]).succeeds().stdout;
    for name in [
        "consolidate",
        "deploy-reflector",
        "rotate",
        "validate",
        "verify-cluster",
    ] {
        assert!(
            listed
                .lines()
                .any(|l| l.starts_with(name) && l.trim_end().ends_with('.')),
            "`ocitool scripts` lacks {name} with its summary\n{listed}"
        );
    }
    Cmd::new(cwd.path()).args(&["check", "rotate"]).succeeds();
}

#[test]
fn a_missing_script_path_points_at_the_built_in() {
    Cmd::new(elsewhere().path())
        .args(&["run", "scripts/validate.rhai"])
        .fails(2)
        .stderr_has("script scripts/validate.rhai not found")
        .stderr_has("`ocitool run validate`");
    Cmd::new(elsewhere().path())
        .args(&["run", "consolidat"])
        .fails(2)
        .stderr_has("not a built-in workflow");
}

#[test]
fn a_customer_script_reuses_one_clusters_consolidation_from_the_built_in() {
    let fleet = Fleet::example();
    let example = Path::new(REPO).join("examples/scripts/consolidate-except.rhai");
    fleet
        .ocitool()
        .args(&["run", example.to_str().unwrap(), "--repo", "."])
        .set("customer", "acme")
        .set("skip", "dev")
        .succeeds()
        .stdout_has("acme/dev: skipped")
        .stdout_has("acme/prod: consolidated")
        .stdout_has("2 cluster(s): 1 consolidated, 1 skipped");
    assert!(fleet.exists("acme/applications/overlays/prod/flux-system/oci-creds.yaml"));
    assert!(!fleet.exists("acme/applications/overlays/dev/flux-system/oci-creds.yaml"));
    assert!(fleet.exists("acme/applications/overlays/dev/services/loki/oci-creds.yaml"));
}

// ---- a closed pipe ----

/// Run `args`, read one line of stdout and close it; returns (exit code, stderr).
fn read_one_line_and_hang_up(dir: &Path, args: &[&str]) -> (i32, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ocitool"))
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(!first.is_empty(), "no output at all");
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_closed_pipe_ends_quietly() {
    let dir = elsewhere();
    // Far more than a pipe buffer holds (64 KiB on Linux), so the writes after the reader left fail.
    let script = write_script(
        dir.path(),
        "chatty.rhai",
        "for i in 0..200000 { print(`line ${i} of a long report`); }\n",
    );
    let (code, stderr) = read_one_line_and_hang_up(dir.path(), &["run", &script, "--repo", "."]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
        "{stderr}"
    );

    let repo = tempfile::tempdir().unwrap();
    let staging = r#"//! Stage many files.
//! writes
let body = ""; body.pad(400, 'x'); body += "\n";
for i in 0..400 { repo.write(`f${i}.txt`, body); }
"#;
    let stager = write_script(dir.path(), "stage.rhai", staging);
    let repo_arg = repo.path().to_str().unwrap();
    let (code, stderr) = read_one_line_and_hang_up(
        dir.path(),
        &["run", &stager, "--repo", repo_arg, "--dry-run"],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains("dry run: 400 file(s) would change"),
        "the run goes on: {stderr}"
    );
}

// ---- colour ----

#[test]
fn colour_only_when_asked_for_or_on_a_terminal() {
    let dir = elsewhere();
    let script = write_script(dir.path(), "w.rhai", "warn(\"careful\"); throw \"stop\";\n");
    let run = |extra: &[&str]| {
        let mut args = vec!["run", script.as_str(), "--repo", "."];
        args.extend_from_slice(extra);
        Cmd::new(dir.path()).args(&args)
    };
    let plain = run(&[]).fails(1);
    assert!(!plain.stderr.contains('\u{1b}'), "{}", plain.stderr);
    assert!(plain.stderr.contains("warning: careful") && plain.stderr.contains("error: "));
    let coloured = run(&["--color=always"]).fails(1);
    assert!(
        coloured.stderr.contains("\u{1b}[31"),
        "a red error: {:?}",
        coloured.stderr
    );
    assert!(
        coloured.stderr.contains("\u{1b}[33"),
        "a yellow warning: {:?}",
        coloured.stderr
    );
    let forced_off = run(&["--color=never"]).env("CLICOLOR_FORCE", "1").fails(1);
    assert!(!forced_off.stderr.contains('\u{1b}'));
    let no_color = run(&[])
        .env("NO_COLOR", "1")
        .env("CLICOLOR_FORCE", "1")
        .fails(1);
    assert!(
        !no_color.stderr.contains('\u{1b}'),
        "NO_COLOR wins over auto"
    );
}

#[test]
fn a_coloured_diff_marks_added_and_removed_lines() {
    let fleet = Fleet::example();
    let out = fleet
        .run("consolidate.rhai")
        .args(&["--color=always"])
        .set("customer", "acme")
        .set("cluster", "prod")
        .dry_run()
        .succeeds();
    assert!(out.stdout.contains("\u{1b}[32m+"), "green additions");
    assert!(out.stdout.contains("\u{1b}[31m-"), "red removals");
}

// ---- kubectl conventions and paths relative to the working directory ----

#[test]
fn context_and_kubeconfig_reach_kubectl_and_verify_cluster_needs_no_repo() {
    let dir = elsewhere();
    std::fs::write(
        dir.path().join("kc"),
        crate::support::unreachable_kubeconfig(&["other", "far-away"]),
    )
    .unwrap();
    let kubeconfig = dir.path().join("kc");
    let out = Cmd::new(dir.path())
        .env("KUBECONFIG", "/nonexistent")
        .args(&[
            "run",
            "verify-cluster",
            "--context",
            "far-away",
            "--kubeconfig",
            "kc",
        ])
        .fails(1);
    assert!(
        out.stderr.contains(&format!(
            "kubectl --kubeconfig {} --context far-away",
            kubeconfig.display()
        )),
        "{}",
        out.stderr
    );
    // A script's own context wins over the global one.
    Cmd::new(dir.path())
        .args(&[
            "run",
            "verify-cluster",
            "--kubeconfig",
            "kc",
            "--context",
            "far-away",
        ])
        .set("context", "other")
        .fails(1)
        .stderr_has("--context other");
    // Offline, no repository and no kubeconfig are needed at all.
    crate::support::kubectl_snapshot(&dir.path().join("snapshot"), "healthy");
    Cmd::new(dir.path())
        .args(&["run", "verify-cluster"])
        .set("snapshot_dir", "snapshot")
        .succeeds();
}

#[test]
fn a_relative_key_file_works_from_outside_the_repo_and_a_missing_one_is_named() {
    let fleet = Fleet::example();
    let parent = fleet.path().parent().unwrap();
    let name = fleet.path().file_name().unwrap().to_str().unwrap();
    let key = format!("{name}/demo-keys/all.agekey");
    Cmd::new(parent)
        .env("SOPS_AGE_KEY_FILE", &key)
        .args(&["run", "consolidate", "--repo", name])
        .set("customer", "acme")
        .set("cluster", "prod")
        .dry_run()
        .succeeds()
        .stdout_has("acme/prod: would be consolidated");
    let missing = parent.join(name).join("no-such.agekey");
    Cmd::new(parent)
        .env("SOPS_AGE_KEY_FILE", &format!("{name}/no-such.agekey"))
        .args(&["run", "consolidate", "--repo", name])
        .set("customer", "acme")
        .set("cluster", "prod")
        .fails(1)
        .stderr_has(&format!(
            "SOPS_AGE_KEY_FILE={}, which does not exist",
            missing.display()
        ));
}

#[test]
fn a_values_file_is_read_relative_to_the_working_directory() {
    let base = Fleet::empty();
    let cwd = elsewhere();
    std::fs::write(cwd.path().join("values.yaml"), "replicaCount: 3\n").unwrap();
    Cmd::new(cwd.path())
        .args(&[
            "run",
            "deploy-reflector",
            "--repo",
            base.path().to_str().unwrap(),
        ])
        .set("values_file", "values.yaml")
        .succeeds();
    let release = base.read("applications/base/managed-services/reflector/helmrelease.yaml");
    assert!(release.contains("replicaCount: 3"), "{release}");
}

// ---- check and script errors ----

#[test]
fn check_reports_unknown_functions_methods_and_properties_with_suggestions() {
    let dir = elsewhere();
    let script = write_script(
        dir.path(),
        "typos.rhai",
        "let o = repo.overlya(target(#{ cluster: \"prod\" }))[0];\n\
         let m = merge_credential([], []);\n\
         print(o.lable);\n\
         let r = #{ status: 1 };\n\
         print(r.status + params.anything);\n\
         import \"ocitool/consolidate\" as c;\n\
         c::consolidate_clustr(repo, o, c::settings());\n",
    );
    let out = Cmd::new(dir.path()).args(&["check", &script]).fails(1);
    for expected in [
        "typos.rhai:1:14: unknown method `overlya`; did you mean `overlays`?",
        "typos.rhai:2:9: unknown function `merge_credential`; did you mean `merge_credentials`?",
        "typos.rhai:3:9: unknown property `.lable`; did you mean `label`?",
        "typos.rhai:7:4: unknown function `c::consolidate_clustr`; did you mean `c::consolidate_cluster`?",
    ] {
        assert!(
            out.stderr.contains(expected),
            "lacks {expected}\n{}",
            out.stderr
        );
    }
    assert_eq!(out.stderr.matches("error:").count(), 4, "{}", out.stderr);
}

#[test]
fn every_example_script_passes_check() {
    for entry in std::fs::read_dir(Path::new(REPO).join("examples/scripts")).unwrap() {
        let path = entry.unwrap().path();
        Cmd::new(Path::new(REPO))
            .args(&["check", path.to_str().unwrap()])
            .succeeds();
    }
}

#[test]
fn fleet_wide_errors_keep_the_script_location() {
    let fleet = Fleet::example();
    let script = write_script(
        fleet.path(),
        "step.rhai",
        "let results = repo.for_each_cluster(target(#{ customer: \"acme\" }), |repo, overlay| {\n    repo.delete(`${overlay.path}/nothing-here.yaml`);\n});\n",
    );
    let out = fleet
        .ocitool()
        .args(&["run", &script, "--repo", "."])
        .fails(1);
    assert!(
        out.stderr.contains("error: acme/dev: ") && out.stderr.contains("step.rhai:2:10: "),
        "{}",
        out.stderr
    );
}

#[test]
fn errors_name_script_types_not_rust_types() {
    let fleet = Fleet::example();
    let script = write_script(
        fleet.path(),
        "types.rhai",
        "let o = repo.overlays(target(#{ customer: \"acme\" }))[0];\nlet s = o.label;\ns.frobnicate(1);\n",
    );
    let out = fleet
        .ocitool()
        .args(&["run", &script, "--repo", "."])
        .fails(1);
    assert!(
        out.stderr.contains("frobnicate (string, i64)"),
        "{}",
        out.stderr
    );
    let script = write_script(
        fleet.path(),
        "items.rhai",
        "merge_credentials([repo.overlays(target(#{ customer: \"acme\" }))[0]], []);\n",
    );
    let out = fleet
        .ocitool()
        .args(&["run", &script, "--repo", "."])
        .fails(1);
    assert!(
        out.stderr.contains("found an item of type Overlay"),
        "{}",
        out.stderr
    );
    for internal in ["ImmutableString", "ocitool_", "&mut"] {
        assert!(!out.stderr.contains(internal), "{}", out.stderr);
    }
}

// ---- completions, man page, version ----

#[test]
fn completions_and_man_page_come_from_the_command_definitions() {
    let cwd = elsewhere();
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef ocitool"),
        ("fish", "complete -c ocitool"),
    ] {
        let out = Cmd::new(cwd.path())
            .args(&["completions", shell])
            .succeeds();
        assert!(out.stdout.contains(marker), "{shell}: {}", out.stdout);
        assert!(
            out.stdout.contains("kubeconfig"),
            "{shell} completes the global flags"
        );
    }
    let man = Cmd::new(cwd.path()).args(&["man"]).succeeds().stdout;
    assert!(
        man.starts_with(".ie") || man.contains(".TH ocitool"),
        "{man}"
    );
    assert!(
        man.contains("completions") && man.contains("\\-\\-kubeconfig"),
        "{man}"
    );
}

#[test]
fn version_compares_the_pinned_tools_with_the_ones_found() {
    let out = Cmd::new(elsewhere().path()).args(&["version"]).succeeds();
    assert!(
        out.stdout
            .starts_with(&format!("ocitool {}\n", env!("CARGO_PKG_VERSION")))
    );
    let row = |tool: &str| {
        out.stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(tool))
            .unwrap_or_else(|| panic!("no row for {tool}\n{}", out.stdout))
            .split_whitespace()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    // cargo test puts the pinned tools first (OCITOOL_TOOLS_DIR): found == pinned.
    for tool in ["sops", "age", "kubeconform"] {
        let row = row(tool);
        assert_eq!(row[1], row[2], "{tool}\n{}", out.stdout);
    }
    assert_eq!(row("kubectl")[1], "any");
    assert!(row("flux").len() >= 3);
}
