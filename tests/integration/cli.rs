//! The command line itself: usage errors, declared parameters, `check`, `api` and its copy in
//! docs/scripting.md, and endings that say what really happened.

use crate::support;
use ocitool::script::reference::plain_types;
use std::path::Path;
use support::{Cmd, golden};

fn cmd() -> Cmd {
    Cmd::new(std::path::Path::new(env!("CARGO_MANIFEST_DIR")))
}

/// Run `text`, saved as script `name`, against an empty repository; it must fail with exit 1.
/// Returns the script's path (as error messages name it) with the output.
#[track_caller]
fn run_inline(name: &str, text: &str) -> (String, support::Output) {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join(name);
    std::fs::write(&script, text).unwrap();
    let repo = dir.path().to_str().unwrap();
    let script = script.to_str().unwrap().to_string();
    let out = cmd().args(&["run", &script, "--repo", repo]).fails(1);
    (script, out)
}

#[test]
fn usage_errors_exit_2() {
    cmd().args(&["run"]).fails(2).stderr_has("Usage");
    cmd().args(&["frobnicate"]).fails(2);
    cmd()
        .args(&["run", "scripts/consolidate.rhai", "--set", "novalue"])
        .fails(2)
        .stderr_has("KEY=VALUE");
}

#[test]
fn a_password_on_the_command_line_is_refused() {
    cmd()
        .args(&[
            "run",
            "scripts/consolidate.rhai",
            "--set",
            "password=hunter2-cli",
        ])
        .fails(2)
        .stderr_has("password_file")
        .leaks_none(&["hunter2-cli".to_string()]);
}

#[test]
fn every_bundled_script_compiles() {
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rhai") {
            cmd().args(&["check", path.to_str().unwrap()]).succeeds();
        }
    }
}

#[test]
fn check_reports_syntax_errors_with_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("bad.rhai");
    std::fs::write(&script, "let a = 1;\nlet b = (2;\n").unwrap();
    let out = cmd().args(&["check", script.to_str().unwrap()]).fails(1);
    assert!(out.stderr.contains("bad.rhai:2:"), "{}", out.stderr);
}

#[test]
fn runtime_errors_name_script_line_and_column() {
    let (_, out) = run_inline(
        "oops.rhai",
        "let x = 1;\nlet o = repo.overlays(target(#{ cluster: \"nowhere\" }));\n",
    );
    assert!(
        out.stderr
            .contains("oops.rhai:2:14: unknown cluster `nowhere`"),
        "{}",
        out.stderr
    );
    // The script declares no `//! writes`: a read-only run never talks about changes.
    assert!(
        !out.stderr.contains("nothing was changed"),
        "{}",
        out.stderr
    );
}

#[test]
fn unknown_repeated_and_empty_parameters_are_refused_with_a_suggestion() {
    let run = |sets: &[&str]| {
        let mut args = vec!["run", "scripts/validate.rhai", "--repo", "examples/fleet"];
        for set in sets {
            args.extend(["--set", set]);
        }
        cmd().args(&args).fails(2)
    };
    run(&["clster=prod"]).stderr_has("unknown parameter `clster`; did you mean `cluster`?");
    run(&["customer=acme", "customer=beta"]).stderr_has("--set customer is given twice");
    // An unset shell variable must not widen the run to every cluster.
    run(&["customer=acme", "cluster="]).stderr_has("--set cluster= is empty");
    cmd()
        .args(&["run", "scripts/consolidate.rhai", "--set", "dry_run=true"])
        .fails(2)
        .stderr_has("unknown parameter `dry_run`");
}

#[test]
fn run_script_help_lists_the_declared_parameters() {
    let out = cmd()
        .args(&["run", "scripts/consolidate.rhai", "--help"])
        .succeeds();
    for line in [
        "Writes to the repository",
        "  require_reflector: bool = true",
        "  source_name: string = \"oci-creds\"",
        "  cluster: selector",
    ] {
        assert!(out.stdout.contains(line), "lacks {line:?}:\n{}", out.stdout);
    }
    cmd()
        .args(&["run", "scripts/validate.rhai", "--help"])
        .succeeds()
        .stdout_has("Read-only");
}

/// A writing script that stages one file, saved in a scratch repository; returns its dir.
fn writing_script(text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("touch.rhai"), text).unwrap();
    dir
}

#[test]
fn a_dry_run_with_exit_code_exits_1_while_changes_are_pending() {
    let dir = writing_script("//! Touch a file.\n//! writes\nrepo.write(\"a.txt\", \"x\\n\");\n");
    let root = dir.path().to_str().unwrap();
    let script = dir.path().join("touch.rhai");
    let run = |extra: &[&str]| {
        let mut args = vec!["run", script.to_str().unwrap(), "--repo", root];
        args.extend(extra);
        cmd().args(&args)
    };
    run(&["--dry-run", "--exit-code"])
        .fails(1)
        .stderr_has("dry run: 1 file(s) would change (1 would be created, 0 modified, 0 deleted)");
    run(&["--dry-run"]).succeeds();
    run(&[]).succeeds().stderr_has("applied: 1 file(s) changed");
    run(&["--dry-run", "--exit-code"])
        .succeeds()
        .stderr_has("nothing to change");
}

#[test]
fn a_read_only_script_says_nothing_about_changes_and_may_not_stage_any() {
    let dir = writing_script("//! Look.\nprint(\"looked\");\n");
    let script = dir.path().join("touch.rhai");
    let out = cmd()
        .args(&[
            "run",
            script.to_str().unwrap(),
            "--repo",
            dir.path().to_str().unwrap(),
        ])
        .succeeds()
        .stdout_has("looked");
    assert_eq!(
        out.stderr, "",
        "a read-only run has no change-oriented ending"
    );
    std::fs::write(&script, "repo.write(\"a.txt\", \"x\");\n").unwrap();
    cmd()
        .args(&[
            "run",
            script.to_str().unwrap(),
            "--repo",
            dir.path().to_str().unwrap(),
        ])
        .fails(1)
        .stderr_has("does not declare `//! writes`");
    assert!(!dir.path().join("a.txt").exists());
}

#[test]
fn runaway_scripts_hit_the_operation_limit() {
    let (script, out) = run_inline("loop.rhai", "loop { }\n");
    // Rhai's own message for its max_operations limit; the position is the loop's body. The
    // script does not declare `//! writes`, so the ending says nothing about changes.
    out.stderr_is(&format!("error: {script}:1:6: Too many operations\n"));
}

#[test]
fn closures_holding_memory_hit_the_memory_limit() {
    // Each closure captures its own 8 MiB string: Rhai's per-value size limits never see the sum.
    let body = "let keep = [];\nlet big = \"x\";\nfor i in 0..23 { big += big; }\n\
                for i in 0..100000 {\n    let chunk = big + i;\n    keep.push(|| chunk);\n}\n";
    let (script, out) = run_inline("hog.rhai", body);
    let first = out.stderr.lines().next().unwrap_or_default();
    let prefix = format!("error: {script}:6:5: the script uses ");
    assert!(
        first.starts_with(&prefix)
            && first.ends_with("MiB of memory, over the 1024 MiB limit; it was stopped"),
        "{}",
        out.stderr
    );
}

#[test]
fn api_lists_every_registered_function_and_type() {
    let out = cmd().args(&["api"]).succeeds();
    let lines: Vec<&str> = out.stdout.lines().collect();
    for heading in ["### `Repo`", "### `Credentials`", "### `CredFile`"] {
        assert!(lines.contains(&heading), "`ocitool api` lacks {heading}");
    }
    // Each registered function is one line of its own: its full signature (in the script-facing
    // spelling), then its documentation.
    let engine = ocitool::script::engine(&Default::default());
    let metadata: serde_json::Value =
        serde_json::from_str(&engine.gen_fn_metadata_to_json(false).unwrap()).unwrap();
    for function in metadata["functions"].as_array().unwrap() {
        let signature = function["signature"].as_str().unwrap();
        let name = function["name"].as_str().unwrap();
        if matches!(name, "to_string" | "to_debug") {
            continue;
        }
        let line_start = match name.strip_prefix("get$") {
            Some(property) => format!(
                "- `.{property}` → `{}`: ",
                plain_types(function["returnType"].as_str().unwrap())
            ),
            None => format!("- `{}`: ", plain_types(signature)),
        };
        let listed = lines
            .iter()
            .any(|l| l.starts_with(&line_start) && l.len() > line_start.len());
        assert!(
            listed,
            "`ocitool api` has no documented line {line_start:?} for {signature}"
        );
    }
    for line in [
        "- `merge_credentials(inputs: array, prefer: array) -> Merged`: ",
        "- `scan(repo: Repo, overlay: Overlay) -> Scan`: ",
        "- `.namespace` → `string`: ",
    ] {
        assert!(
            lines.iter().any(|l| l.starts_with(line)),
            "`ocitool api` lacks {line:?}"
        );
    }
}

#[test]
fn docs_scripting_md_holds_the_current_api_reference() {
    use ocitool::script::reference::{BEGIN, END, embedded_section};
    let api = cmd().args(&["api"]).succeeds().stdout;
    let doc_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/scripting.md");
    let doc = std::fs::read_to_string(&doc_path).unwrap();
    assert!(
        embedded_section(&doc).is_some(),
        "docs/scripting.md has the api markers"
    );
    // The document as it should be: its text with the section between the markers regenerated.
    let start = doc.find(BEGIN).unwrap() + BEGIN.len();
    let end = doc.find(END).unwrap();
    let expected = format!(
        "{}\n{}\n{}",
        &doc[..start],
        api.trim_matches('\n'),
        &doc[end..]
    );
    golden::assert_file(&doc_path, &expected);
}
#[test]
fn scripts_cannot_write_or_delete_inside_git_directories_or_outside_the_repo() {
    let cases = [
        (
            r#"repo.write(".git/config", "[core]\n\tfsmonitor = touch pwned\n");"#,
            ".git/config: refusing to write inside a `.git` directory",
        ),
        (
            r##"repo.write("charts/.git/hooks/post-checkout", "#!/bin/sh\n");"##,
            "refusing to write inside a `.git` directory",
        ),
        (
            r#"repo.delete("./.git/HEAD");"#,
            "refusing to delete inside a `.git`",
        ),
        (
            r#"repo.write("a/../../outside.yaml", "x: 1\n");"#,
            "a/../../outside.yaml: paths must stay inside the repository",
        ),
        (
            r#"repo.write("/etc/x.yaml", "x: 1\n");"#,
            "absolute paths are not allowed",
        ),
    ];
    for (script, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        for (rel, text) in [
            (".git/config", "[core]\n"),
            (".git/HEAD", "ref: x\n"),
            ("charts/.git/hooks/x", ""),
        ] {
            std::fs::create_dir_all(repo.join(rel).parent().unwrap()).unwrap();
            std::fs::write(repo.join(rel), text).unwrap();
        }
        let snapshot = || {
            walkdir::WalkDir::new(dir.path())
                .into_iter()
                .map(|e| {
                    let e = e.unwrap();
                    (e.path().to_path_buf(), std::fs::read(e.path()).ok())
                })
                .collect::<Vec<_>>()
        };
        let script_file = dir.path().join("write.rhai");
        std::fs::write(&script_file, script).unwrap();
        let before = snapshot();
        let out = cmd()
            .args(&[
                "run",
                script_file.to_str().unwrap(),
                "--repo",
                repo.to_str().unwrap(),
            ])
            .fails(1);
        assert!(out.stderr.contains(expected), "{script}: {}", out.stderr);
        assert_eq!(before, snapshot(), "{script}: tree changed");
        assert!(!dir.path().join("outside.yaml").exists());
    }
}
