//! A small fluent helper for integration tests: a scratch copy of the bundled example fleet, the
//! real `ocitool` binary run against it, and declarative expectations on its output, files and
//! secrets. Every expectation is `#[track_caller]` (and panics only outside closures), so a
//! failure points at the test line that stated it, not into this module.

pub mod golden;
pub mod kubeconform;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub const EXAMPLE_FLEET: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/fleet");

/// `tests/data`: fixtures and reference data vendored into the repository, so that a clone runs
/// every test offline.
pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

/// Every plaintext password of the bundled example (ocitool_devkit::fleetgen::FleetSpec::example()).
pub fn example_passwords() -> Vec<String> {
    ocitool_devkit::fleetgen::FleetSpec::example().passwords()
}

/// A scratch fleet repository in a temporary directory.
pub struct Fleet {
    dir: tempfile::TempDir,
    key_file: PathBuf,
    /// A base repository generated beside the fleet (openCenter fleets), kept as long as the fleet.
    _base: Option<tempfile::TempDir>,
}

/// Fill `into` (created if missing) with a saved verify-cluster snapshot from the kubectl
/// fixtures: Reflector healthy, the source present, and the `mirrors` ("healthy" or "broken")
/// state of the mirror Secrets and namespaces.
pub fn kubectl_snapshot(into: &Path, mirrors: &str) {
    std::fs::create_dir_all(into).unwrap();
    let fixtures = data_dir().join("kubectl");
    for (from, to) in [
        (
            "reflector-deployment-healthy.json".to_string(),
            "reflector-deployment.json",
        ),
        (
            "reflector-pods-healthy.json".to_string(),
            "reflector-pods.json",
        ),
        ("source-secret.json".to_string(), "source-secret.json"),
        (format!("secrets-{mirrors}.json"), "secrets.json"),
        (format!("namespaces-{mirrors}.json"), "namespaces.json"),
    ] {
        std::fs::copy(fixtures.join(&from), into.join(to)).unwrap();
    }
}

/// A kubeconfig whose `contexts` all point at 127.0.0.1:9 (discard; nothing answers there), the
/// first of them current: kubectl finds no cluster, and ocitool must say so.
pub fn unreachable_kubeconfig(contexts: &[&str]) -> String {
    let mut text = "apiVersion: v1\nkind: Config\nclusters:\n  - name: nowhere\n    \
                    cluster: {server: 'https://127.0.0.1:9', insecure-skip-tls-verify: true}\n\
                    users:\n  - name: nobody\n    user: {token: not-a-token}\ncontexts:\n"
        .to_string();
    for context in contexts {
        text.push_str(&format!(
            "  - name: {context}\n    context: {{cluster: nowhere, user: nobody}}\n"
        ));
    }
    text.push_str(&format!("current-context: {}\n", contexts[0]));
    text
}

/// The example fleet with one dev file broken, consolidated fleet-wide with `-o json`: prod is
/// consolidated, dev fails (exit 1).
#[track_caller]
pub fn consolidation_with_a_failed_cluster() -> (Fleet, Output) {
    let fleet = Fleet::example();
    fleet.write(
        "acme/applications/overlays/dev/services/kyverno/helmrelease.yaml",
        "a: [\n",
    );
    let out = fleet
        .run("consolidate.rhai")
        .set("customer", "acme")
        .json()
        .fails(1);
    (fleet, out)
}

impl Fleet {
    /// A copy of `examples/fleet`.
    pub fn example() -> Fleet {
        let dir = tempfile::tempdir().expect("tempdir");
        copy_tree(Path::new(EXAMPLE_FLEET), dir.path());
        let key_file = dir.path().join("demo-keys/all.agekey");
        Fleet {
            dir,
            key_file,
            _base: None,
        }
    }

    /// An empty repository (a fresh base repo); it has no key file.
    pub fn empty() -> Fleet {
        let dir = tempfile::tempdir().expect("tempdir");
        let key_file = dir.path().join("no.agekey");
        Fleet {
            dir,
            key_file,
            _base: None,
        }
    }

    /// A generated fleet (see ocitool_devkit::fleetgen).
    #[track_caller]
    pub fn generated(spec: &ocitool_devkit::fleetgen::FleetSpec) -> Fleet {
        let dir = tempfile::tempdir().expect("tempdir");
        let generated =
            ocitool_devkit::fleetgen::generate(dir.path(), spec).expect("generate fleet");
        Fleet {
            dir,
            key_file: generated.key_file,
            _base: None,
        }
    }

    /// An openCenter-shaped fleet and its base repository (see ocitool_devkit::fleetgen::opencenter).
    pub fn opencenter(
        spec: &ocitool_devkit::fleetgen::opencenter::Spec,
    ) -> (Fleet, ocitool_devkit::fleetgen::opencenter::Generated) {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = tempfile::tempdir().expect("tempdir");
        let generated =
            ocitool_devkit::fleetgen::opencenter::generate(dir.path(), base.path(), spec)
                .expect("generate openCenter fleet");
        let fleet = Fleet {
            dir,
            key_file: generated.key_file.clone(),
            _base: Some(base),
        };
        (fleet, generated)
    }

    /// A scratch copy of this fleet (same keys), for runs that must start from the same tree.
    pub fn copy(&self) -> Fleet {
        let dir = tempfile::tempdir().expect("tempdir");
        copy_tree(self.path(), dir.path());
        let key_file = dir
            .path()
            .join(self.key_file.strip_prefix(self.path()).unwrap());
        Fleet {
            dir,
            key_file,
            _base: None,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The base repository generated beside an openCenter fleet (see [`Fleet::opencenter`]).
    #[track_caller]
    pub fn base(&self) -> &Path {
        match &self._base {
            Some(base) => base.path(),
            None => panic!("this fleet has no base repository; use Fleet::opencenter"),
        }
    }

    pub fn key_file(&self) -> &Path {
        &self.key_file
    }

    /// `ocitool ARGS…` against this fleet (`--repo` is added for `run`).
    pub fn ocitool(&self) -> Cmd {
        Cmd::new(self.path()).env("SOPS_AGE_KEY_FILE", self.key_file.to_str().unwrap())
    }

    /// `ocitool run scripts/<script> --repo <fleet>`.
    pub fn run(&self, script: &str) -> Cmd {
        let script = format!("{}/scripts/{script}", env!("CARGO_MANIFEST_DIR"));
        self.ocitool()
            .args(&["run", &script, "--repo", self.path().to_str().unwrap()])
    }

    #[track_caller]
    pub fn read(&self, rel: &str) -> String {
        match std::fs::read_to_string(self.path().join(rel)) {
            Ok(text) => text,
            Err(e) => panic!("read {rel}: {e}"),
        }
    }

    #[track_caller]
    pub fn write(&self, rel: &str, text: &str) {
        let path = self.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    pub fn exists(&self, rel: &str) -> bool {
        self.path().join(rel).exists()
    }

    /// Every file and its bytes: compare two snapshots to prove a tree is untouched.
    pub fn snapshot(&self) -> BTreeMap<String, Vec<u8>> {
        let mut files = BTreeMap::new();
        for entry in walkdir::WalkDir::new(self.path()).into_iter().flatten() {
            if entry.file_type().is_file() {
                let rel = entry
                    .path()
                    .strip_prefix(self.path())
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                files.insert(rel, std::fs::read(entry.path()).unwrap());
            }
        }
        files
    }

    /// The [`snapshot`](Self::snapshot) of the files under repo-relative directory `dir`.
    pub fn snapshot_under(&self, dir: &str) -> BTreeMap<String, Vec<u8>> {
        let prefix = format!("{}/", dir.trim_end_matches('/'));
        self.snapshot()
            .into_iter()
            .filter(|(path, _)| path.starts_with(&prefix))
            .collect()
    }

    /// Files named `name` anywhere in the fleet, repo-relative, sorted.
    pub fn find(&self, name: &str) -> Vec<String> {
        self.snapshot()
            .into_keys()
            .filter(|p| p.rsplit('/').next() == Some(name))
            .collect()
    }

    /// Decrypt a repo-relative file with the fleet's key (the real sops).
    #[track_caller]
    pub fn decrypt(&self, rel: &str) -> String {
        let out =
            Command::new(ocitool_adapters::tools::find(ocitool_adapters::tools::SOPS).unwrap())
                .args(["decrypt", rel])
                .current_dir(self.path())
                .env("SOPS_AGE_KEY_FILE", &self.key_file)
                .output()
                .unwrap();
        assert!(
            out.status.success(),
            "sops decrypt {rel}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Panics if any file (other than the demo keys) contains one of `secrets` in plaintext.
    #[track_caller]
    pub fn assert_no_plaintext(&self, secrets: &[String]) {
        for (path, bytes) in self.snapshot() {
            let text = String::from_utf8_lossy(&bytes);
            for secret in secrets {
                assert!(
                    !text.contains(secret.as_str()),
                    "plaintext secret found in {path}"
                );
            }
        }
    }
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from).into_iter().flatten() {
        let rel = entry.path().strip_prefix(from).unwrap();
        let target = to.join(rel);
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A command line for the real binary.
pub struct Cmd {
    command: Command,
    stdin: Option<String>,
}

impl Cmd {
    pub fn new(cwd: &Path) -> Cmd {
        let mut command = Command::new(env!("CARGO_BIN_EXE_ocitool"));
        command.current_dir(cwd);
        Cmd {
            command,
            stdin: None,
        }
    }

    /// `bash -c SCRIPT` in `cwd` with `set -euo pipefail` (for commands as documentation shows them).
    pub fn bash(cwd: &Path, script: &str) -> Cmd {
        let mut command = Command::new("bash");
        command
            .args(["-c", &format!("set -euo pipefail\n{script}")])
            .current_dir(cwd);
        Cmd {
            command,
            stdin: None,
        }
    }

    pub fn args(mut self, args: &[&str]) -> Cmd {
        self.command.args(args);
        self
    }

    /// `--set key=value`
    pub fn set(self, key: &str, value: &str) -> Cmd {
        self.args(&["--set", &format!("{key}={value}")])
    }

    pub fn dry_run(self) -> Cmd {
        self.args(&["--dry-run"])
    }

    /// `-o json`: one JSON document on stdout.
    pub fn json(self) -> Cmd {
        self.args(&["-o", "json"])
    }

    pub fn env(mut self, key: &str, value: &str) -> Cmd {
        self.command.env(key, value);
        self
    }

    pub fn stdin(mut self, text: &str) -> Cmd {
        self.stdin = Some(text.to_string());
        self
    }

    #[track_caller]
    pub fn output(self) -> Output {
        self.spawn().wait()
    }

    /// Start the command without waiting (for concurrent runs and kills).
    pub fn spawn(mut self) -> Running {
        use std::io::Write;
        self.command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = self.command.spawn().expect("spawn ocitool");
        let mut stdin = child.stdin.take().unwrap();
        if let Some(text) = self.stdin.take() {
            stdin.write_all(text.as_bytes()).unwrap();
        }
        drop(stdin);
        Running(child)
    }

    /// Run and expect exit 0.
    #[track_caller]
    pub fn succeeds(self) -> Output {
        self.output().code(0)
    }

    /// Run and expect exit `code`.
    #[track_caller]
    pub fn fails(self, code: i32) -> Output {
        self.output().code(code)
    }
}

/// A started command.
pub struct Running(std::process::Child);

impl Running {
    /// SIGKILL it (no chance to clean up) and reap it.
    pub fn kill(mut self) -> Output {
        let _ = self.0.kill();
        self.wait()
    }

    /// Whether it has exited.
    pub fn finished(&mut self) -> bool {
        self.0.try_wait().unwrap().is_some()
    }

    pub fn wait(self) -> Output {
        let out = self.0.wait_with_output().unwrap();
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// What a run printed.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    #[track_caller]
    pub fn code(self, expected: i32) -> Output {
        assert_eq!(
            self.code, expected,
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub fn stdout_has(self, needle: &str) -> Output {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    #[track_caller]
    pub fn stderr_has(self, needle: &str) -> Output {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}\n--- stderr\n{}",
            self.stderr
        );
        self
    }

    /// Expects stderr to be exactly `expected` (every line, the last newline included).
    #[track_caller]
    pub fn stderr_is(self, expected: &str) -> Output {
        assert_eq!(self.stderr, expected, "stderr");
        self
    }

    /// Expects the exit code, stdout and stderr, masked by `mask`, to equal the golden file `name`
    /// (see [`golden`]).
    #[track_caller]
    pub fn matches_golden(self, name: &str, mask: &golden::Mask) -> Output {
        let transcript = format!(
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        );
        golden::assert_golden(name, &mask.apply(&transcript));
        self
    }

    /// stdout as the one JSON document `-o json` promises.
    #[track_caller]
    pub fn document(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{}", self.stdout))
    }

    /// Panics if stdout or stderr contains any of `secrets`.
    #[track_caller]
    pub fn leaks_none(self, secrets: &[String]) -> Output {
        for secret in secrets {
            assert!(
                !self.stdout.contains(secret.as_str()) && !self.stderr.contains(secret.as_str()),
                "output leaks a secret"
            );
        }
        self
    }
}
