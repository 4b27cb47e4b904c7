//! The command line itself: usage errors, `check`, `api` and its copy in docs/scripting.md.

mod support;
use support::Cmd;

fn cmd() -> Cmd {
    Cmd::new(std::path::Path::new(env!("CARGO_MANIFEST_DIR")))
}

/// Run `text`, saved as script `name`, against an empty repository; it must fail with exit 1.
fn run_inline(name: &str, text: &str) -> support::Output {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join(name);
    std::fs::write(&script, text).unwrap();
    let repo = dir.path().to_str().unwrap();
    cmd()
        .args(&["run", script.to_str().unwrap(), "--repo", repo])
        .fails(1)
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
    let out = run_inline(
        "oops.rhai",
        "let x = 1;\nlet o = repo.overlay(\"\", \"nowhere\");\n",
    );
    assert!(
        out.stderr
            .contains("oops.rhai:2:14: unknown cluster `nowhere`"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("nothing was changed"), "{}", out.stderr);
}

#[test]
fn runaway_scripts_hit_the_operation_limit() {
    let out = run_inline("loop.rhai", "loop { }\n");
    assert!(out.stderr.contains("loop.rhai:1:"), "{}", out.stderr);
}

#[test]
fn api_lists_every_registered_function_and_type() {
    let out = cmd().args(&["api"]).succeeds();
    for name in [
        "### `Repo`",
        "### `Credentials`",
        "### `CredFile`",
        "merge_credentials(",
        "scan(repo: Repo",
        "- `.namespace` →",
    ] {
        assert!(out.stdout.contains(name), "`ocitool api` lacks {name}");
    }
    let engine = ocitool::script::engine(&Default::default());
    for signature in engine.gen_fn_signatures(false) {
        let name = signature
            .split('(')
            .next()
            .unwrap()
            .trim_start_matches("get$");
        if !matches!(name, "to_string" | "to_debug") {
            assert!(
                out.stdout.contains(name),
                "`ocitool api` lacks registered function {name}"
            );
        }
    }
}

#[test]
fn docs_scripting_md_holds_the_current_api_reference() {
    let api = cmd().args(&["api"]).succeeds().stdout;
    let doc_path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/scripting.md");
    let doc = std::fs::read_to_string(doc_path).unwrap();
    let embedded = ocitool::script::reference::embedded_section(&doc)
        .expect("docs/scripting.md has the api markers");
    if embedded != api.trim_matches('\n') {
        if std::env::var_os("OCITOOL_BLESS").is_some() {
            let start = doc.find(ocitool::script::reference::BEGIN).unwrap()
                + ocitool::script::reference::BEGIN.len();
            let end = doc.find(ocitool::script::reference::END).unwrap();
            let updated = format!(
                "{}\n{}\n{}",
                &doc[..start],
                api.trim_matches('\n'),
                &doc[end..]
            );
            std::fs::write(doc_path, updated).unwrap();
        } else {
            let diff = similar::TextDiff::from_lines(embedded, api.trim_matches('\n'));
            panic!(
                "docs/scripting.md differs from `ocitool api`; run `OCITOOL_BLESS=1 cargo test --test cli` to update\n{}",
                diff.unified_diff()
            );
        }
    }
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
