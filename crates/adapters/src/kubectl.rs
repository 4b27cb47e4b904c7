//! The only place ocitool talks to a live cluster, through `kubectl`.
//!
//! Everything here is read-only (`get`, `logs`) except [`Kubectl::annotate`], which exists for one
//! purpose: touching the source Secret so Reflector reconciles and the lag can be measured. Output is
//! handed back to the caller as data and never printed here; Secret documents do contain base64 data,
//! so callers reduce them to hashes (see [`ocitool_core::reflector::verify`]) before showing anything.
//! Errors carry kubectl's own stderr, which names the resource but not Secret values, classified
//! once here into a [`KubectlError`] so callers never read kubectl's wording.

use crate::process::{Invocation, ProcessError};
use crate::tools;
use anyhow::{Context, Result};
use std::path::PathBuf;
use std::time::Duration;

/// How long one kubectl call may take (`OCITOOL_TIMEOUT` overrides). kubectl's own request
/// timeout is off by default, so an API server that accepts but never answers would hang forever.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// A kubectl invocation target: the kubeconfig context to use (or the current one), and the
/// kubeconfig file (or kubectl's own choice: `$KUBECONFIG`, then `~/.kube/config`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Kubectl {
    pub context: Option<String>,
    /// `--kubeconfig` for every call, so the command line in an error names the file; `None`
    /// leaves the choice to kubectl. The caller resolves the user's path (against their
    /// working directory) before it gets here.
    kubeconfig: Option<PathBuf>,
}

/// A failed kubectl call, classified from how kubectl reports the API server's answer (or its
/// absence). Each names the command, quotes kubectl's stderr (redacted) and says what to check.
#[derive(Debug, thiserror::Error)]
pub enum KubectlError {
    /// The server answered `NotFound`.
    #[error(
        "`{command}` failed: {stderr}\ncheck the namespace and name; the resource does not exist"
    )]
    NotFound { command: String, stderr: String },
    /// The server answered `Forbidden`: RBAC denies the user.
    #[error(
        "`{command}` failed: {stderr}\ncheck RBAC: the user of {} needs get/list (and patch, for annotate) on these resources",
        target(context)
    )]
    Forbidden {
        command: String,
        context: Option<String>,
        stderr: String,
    },
    /// The server did not accept the credentials (401).
    #[error(
        "`{command}` failed: {stderr}\ncheck the credentials of {}: log in again or renew its token",
        target(context)
    )]
    Unauthorized {
        command: String,
        context: Option<String>,
        stderr: String,
    },
    /// No server answered: connection refused, unreachable, TLS failure, or a kubeconfig that
    /// names no usable cluster.
    #[error(
        "`{command}` failed: {stderr}\ncheck that {} exists in your kubeconfig (`kubectl config get-contexts`) and points at the intended cluster, and that it is reachable (`kubectl --context <c> cluster-info`)",
        target(context)
    )]
    Unreachable {
        command: String,
        context: Option<String>,
        stderr: String,
    },
    /// Any other failure; `reason` is the server's `Status.reason` when it gave one.
    #[error(
        "`{command}` failed ({}): {stderr}\ncheck that {} in your kubeconfig points at the intended cluster",
        reason.as_deref().unwrap_or("no reason given"),
        target(context)
    )]
    Failed {
        command: String,
        context: Option<String>,
        reason: Option<String>,
        stderr: String,
    },
    /// kubectl is missing, could not start, timed out, or printed non-UTF-8.
    #[error("{0}")]
    Run(ProcessError),
}

fn target(context: &Option<String>) -> String {
    context
        .as_ref()
        .map_or("the current context".to_string(), |c| {
            format!("context `{c}`")
        })
}

/// How kubectl reported the server's answer, read from the message its `cmdutil.CheckErr` prints
/// (k8s.io/kubectl/pkg/cmd/util/helpers.go, `StandardErrorMessage` and `checkErr`, v0.34):
/// - `Error from server (<Reason>): …` — the API `Status.reason` of the answer;
/// - `error: You must be logged in to the server (…)` — the `Unauthorized` reason;
/// - `The connection to the server <host> was refused …` / `Unable to connect to the server: …` —
///   a `url.Error`, so no answer at all; `Error in configuration: …` — the kubeconfig is invalid
///   (e.g. no such context), so no server was even asked.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    Reason(String),
    NoServer,
    Unknown,
}

impl Answer {
    /// The last such line wins: klog's retry lines come first, the verdict last.
    fn read(stderr: &str) -> Self {
        stderr
            .lines()
            .rev()
            .find_map(Self::read_line)
            .unwrap_or(Answer::Unknown)
    }

    fn read_line(line: &str) -> Option<Self> {
        if let Some(rest) = line.strip_prefix("Error from server (") {
            let reason = rest.split_once(')')?.0;
            return Some(Answer::Reason(reason.to_string()));
        }
        if line.starts_with("error: You must be logged in to the server") {
            return Some(Answer::Reason("Unauthorized".to_string()));
        }
        let no_answer = [
            "The connection to the server ",
            "Unable to connect to the server",
            "Error in configuration",
        ];
        no_answer
            .iter()
            .any(|prefix| line.starts_with(prefix))
            .then_some(Answer::NoServer)
    }
}

impl KubectlError {
    fn classify(command: String, context: Option<String>, err: ProcessError) -> Self {
        let ProcessError::Failed { stderr, .. } = err else {
            return KubectlError::Run(err);
        };
        match Answer::read(&stderr) {
            Answer::Reason(r) if r == "NotFound" => KubectlError::NotFound { command, stderr },
            Answer::Reason(r) if r == "Forbidden" => KubectlError::Forbidden {
                command,
                context,
                stderr,
            },
            Answer::Reason(r) if r == "Unauthorized" => KubectlError::Unauthorized {
                command,
                context,
                stderr,
            },
            Answer::NoServer => KubectlError::Unreachable {
                command,
                context,
                stderr,
            },
            Answer::Reason(r) => KubectlError::Failed {
                command,
                context,
                reason: Some(r),
                stderr,
            },
            Answer::Unknown => KubectlError::Failed {
                command,
                context,
                reason: None,
                stderr,
            },
        }
    }
}

impl Kubectl {
    /// Use `context` (`--context`), or kubectl's current context when `None`.
    pub fn new(context: Option<String>) -> Self {
        Self {
            context,
            kubeconfig: None,
        }
    }

    /// `kubectl [--context C] get <args> -o json`, parsed.
    pub fn get_json(&self, args: &[&str]) -> Result<serde_json::Value> {
        let mut full = vec!["get"];
        full.extend_from_slice(args);
        full.extend_from_slice(&["-o", "json"]);
        let stdout = self.run(&full)?;
        parse_json(&stdout, || self.describe(&full))
    }

    /// Like [`get_json`](Kubectl::get_json) for one named object, `None` when it does not exist.
    /// `--ignore-not-found` makes absence structural: kubectl then prints nothing and exits 0
    /// (k8s.io/kubectl/pkg/cmd/get/get.go: no infos with IgnoreNotFound returns before printing).
    pub fn get_json_if_exists(&self, args: &[&str]) -> Result<Option<serde_json::Value>> {
        let mut full = vec!["get"];
        full.extend_from_slice(args);
        full.extend_from_slice(&["-o", "json", "--ignore-not-found"]);
        let stdout = self.run(&full)?;
        if stdout.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        parse_json(&stdout, || self.describe(&full)).map(Some)
    }
    /// Logs of the pods matching `selector` in `namespace`, from the last `since` (e.g. `"10m"`).
    pub fn logs(&self, namespace: &str, selector: &str, since: &str) -> Result<String> {
        let since = format!("--since={since}");
        let args = [
            "logs",
            "-n",
            namespace,
            "-l",
            selector,
            "--all-containers",
            "--prefix=false",
            "--tail=-1",
            since.as_str(),
        ];
        let stdout = self.run(&args)?;
        Ok(String::from_utf8_lossy(&stdout).into_owned())
    }

    /// The one write: set annotation `key=value` on `kind/name` in `namespace` (`--overwrite`).
    /// Used to touch the source Secret so Reflector sees a new resourceVersion.
    pub fn annotate(
        &self,
        namespace: &str,
        kind: &str,
        name: &str,
        key: &str,
        value: &str,
    ) -> Result<()> {
        let target = format!("{kind}/{name}");
        let pair = format!("{key}={value}");
        self.run(&["annotate", "-n", namespace, &target, &pair, "--overwrite"])?;
        Ok(())
    }

    /// The argument list for `args`, with `--kubeconfig` and `--context` first when set.
    pub fn full_args<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        let mut full = Vec::with_capacity(args.len() + 4);
        if let Some(config) = self.kubeconfig.as_deref().and_then(|p| p.to_str()) {
            full.extend_from_slice(&["--kubeconfig", config]);
        }
        if let Some(ctx) = &self.context {
            full.extend_from_slice(&["--context", ctx.as_str()]);
        }
        full.extend_from_slice(args);
        full
    }

    fn run(&self, args: &[&str]) -> Result<Vec<u8>, KubectlError> {
        let mut invocation =
            Invocation::new(tools::KUBECTL, DEFAULT_TIMEOUT).map_err(KubectlError::Run)?;
        invocation = invocation.args(self.full_args(args));
        let command = invocation.describe();
        invocation
            .run()
            .map(|output| output.stdout)
            .map_err(|e| KubectlError::classify(command, self.context.clone(), e))
    }

    fn describe(&self, args: &[&str]) -> String {
        format!("kubectl {}", self.full_args(args).join(" "))
    }

    /// This target with `--kubeconfig path`.
    pub fn with_kubeconfig(mut self, path: &std::path::Path) -> Self {
        self.kubeconfig = Some(path.to_path_buf());
        self
    }

    /// This target with `context` when given, keeping its own otherwise.
    pub fn or_context(mut self, context: Option<String>) -> Self {
        if context.is_some() {
            self.context = context;
        }
        self
    }
}

fn parse_json(stdout: &[u8], command: impl Fn() -> String) -> Result<serde_json::Value> {
    serde_json::from_slice(stdout).with_context(|| format!("`{}` did not print JSON", command()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;

    // kubectl's stderr, captured from kubectl v1.32.4 against a stub API server answering with a
    // metav1.Status of the given reason (see `stub_api_server`), a closed port, and a kubeconfig
    // without the requested context.
    const NOT_FOUND: &str = "Error from server (NotFound): secrets \"oci-creds\" not found\n";
    const FORBIDDEN: &str = "Error from server (Forbidden): secrets \"oci-creds\" is forbidden: User \"system:serviceaccount:default:nobody\" cannot get resource \"secrets\" in API group \"\" in the namespace \"kube-system\"\n";
    const UNAUTHORIZED: &str = "error: You must be logged in to the server (Unauthorized)\n";
    const CONFLICT: &str = "Error from server (Conflict): Operation cannot be fulfilled\n";
    const REFUSED: &str = "E1126 00:19:53.287566   14933 memcache.go:265] \"Unhandled Error\" err=\"couldn't get current server API group list: Get \\\"http://127.0.0.1:18499/api?timeout=32s\\\": dial tcp 127.0.0.1:18499: connect: connection refused\"\nE1126 00:19:53.290983   14933 memcache.go:265] \"Unhandled Error\" err=\"couldn't get current server API group list: Get \\\"http://127.0.0.1:18499/api?timeout=32s\\\": dial tcp 127.0.0.1:18499: connect: connection refused\"\nThe connection to the server 127.0.0.1:18499 was refused - did you specify the right host or port?\n";
    const NO_CONTEXT: &str =
        "Error in configuration: context was not found for specified context: nope\n";

    fn classify(stderr: &str, context: Option<&str>) -> KubectlError {
        let failed = ProcessError::Failed {
            program: "kubectl get secrets".into(),
            code: Some(1),
            stderr: stderr.trim().to_string(),
        };
        KubectlError::classify(
            "kubectl get secrets".into(),
            context.map(String::from),
            failed,
        )
    }

    #[test]
    fn context_goes_first() {
        let k = Kubectl::new(Some("prod".into()));
        assert_eq!(
            k.full_args(&["get", "ns"]),
            ["--context", "prod", "get", "ns"]
        );
        assert_eq!(Kubectl::default().full_args(&["get"]), ["get"]);
        let k = k.with_kubeconfig(std::path::Path::new("/k/config"));
        assert_eq!(
            k.full_args(&["get"]),
            ["--kubeconfig", "/k/config", "--context", "prod", "get"]
        );
        assert_eq!(k.clone().or_context(None).context.as_deref(), Some("prod"));
        assert_eq!(
            k.or_context(Some("dev".into())).context.as_deref(),
            Some("dev")
        );
    }

    #[test]
    fn captured_stderr_is_classified_by_the_server_answer() {
        assert!(matches!(
            classify(NOT_FOUND, None),
            KubectlError::NotFound { .. }
        ));
        assert!(matches!(
            classify(FORBIDDEN, None),
            KubectlError::Forbidden { .. }
        ));
        assert!(matches!(
            classify(UNAUTHORIZED, None),
            KubectlError::Unauthorized { .. }
        ));
        assert!(matches!(
            classify(REFUSED, None),
            KubectlError::Unreachable { .. }
        ));
        assert!(matches!(
            classify(NO_CONTEXT, Some("nope")),
            KubectlError::Unreachable { .. }
        ));
        let conflict = classify(CONFLICT, None);
        assert!(
            matches!(&conflict, KubectlError::Failed { reason: Some(r), .. } if r == "Conflict"),
            "{conflict:?}"
        );
        let unknown = classify("error: something else entirely", None);
        assert!(
            matches!(unknown, KubectlError::Failed { reason: None, .. }),
            "{unknown:?}"
        );
    }

    #[test]
    fn errors_quote_trimmed_stderr_and_say_what_to_check() {
        let err = classify(
            "  Error from server (Forbidden): secrets is forbidden\n",
            Some("prod"),
        )
        .to_string();
        assert!(
            err.contains("Error from server (Forbidden): secrets is forbidden\n"),
            "{err}"
        );
        assert!(err.contains("RBAC") && err.contains("`prod`"), "{err}");

        let err = classify(NO_CONTEXT, Some("nope")).to_string();
        assert!(
            err.contains("kubeconfig") && err.contains("`nope`"),
            "{err}"
        );

        let err = classify("Unable to connect to the server: EOF", None).to_string();
        assert!(
            err.contains("current context") && err.contains("reachable"),
            "{err}"
        );
    }

    /// A kubeconfig whose only cluster is `server`, written into `dir`.
    fn kubeconfig(dir: &std::path::Path, server: &str) -> std::path::PathBuf {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {{server: '{server}'}}\nusers:\n- name: u\n  user: {{token: not-a-token}}\ncontexts:\n- name: ctx\n  context: {{cluster: c, user: u}}\ncurrent-context: ctx\n"
        );
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn a_closed_port_is_unreachable() {
        let port = {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        }; // closed again here
        let dir = tempfile::tempdir().unwrap();
        let config = kubeconfig(dir.path(), &format!("https://127.0.0.1:{port}"));
        let k = Kubectl::default().with_kubeconfig(&config);
        let err = k
            .get_json(&["secret", "oci-creds", "-n", "kube-system"])
            .unwrap_err();
        let err = err.downcast_ref::<KubectlError>().expect("a KubectlError");
        assert!(matches!(err, KubectlError::Unreachable { .. }), "{err:?}");
        assert!(
            err.to_string().contains(&format!("127.0.0.1:{port}")),
            "{err}"
        );
    }

    /// An HTTP API server stub on a free port that serves discovery for core `v1` secrets and
    /// answers every other request with a `metav1.Status` of `reason` and `code`.
    fn stub_api_server(reason: &'static str, code: u16) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(&stream);
                let mut request_line = String::new();
                reader.read_line(&mut request_line).unwrap_or_default();
                let mut header = String::new();
                while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                    header.clear();
                }
                let path = request_line
                    .split(' ')
                    .nth(1)
                    .unwrap_or("")
                    .split('?')
                    .next();
                let (status, body) = match path.unwrap_or("") {
                    "/api" => (200, r#"{"kind":"APIVersions","versions":["v1"],"serverAddressByClientCIDRs":[]}"#.to_string()),
                    "/apis" => (200, r#"{"kind":"APIGroupList","apiVersion":"v1","groups":[]}"#.to_string()),
                    "/api/v1" => (200, r#"{"kind":"APIResourceList","groupVersion":"v1","resources":[{"name":"secrets","singularName":"secret","namespaced":true,"kind":"Secret","verbs":["get","list","patch"]}]}"#.to_string()),
                    _ => (code, format!(r#"{{"kind":"Status","apiVersion":"v1","metadata":{{}},"status":"Failure","message":"secrets \"oci-creds\" {reason}","reason":"{reason}","code":{code}}}"#)),
                };
                let _ = write!(
                    &stream,
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        address
    }

    #[test]
    fn real_server_answers_are_classified() {
        let dir = tempfile::tempdir().unwrap();
        let args = ["secret", "oci-creds", "-n", "kube-system"];

        let config = kubeconfig(dir.path(), &stub_api_server("NotFound", 404));
        let k = Kubectl::default().with_kubeconfig(&config);
        assert_eq!(k.get_json_if_exists(&args).unwrap(), None);
        let err = k.get_json(&args).unwrap_err();
        let err = err.downcast_ref::<KubectlError>().expect("a KubectlError");
        assert!(matches!(err, KubectlError::NotFound { .. }), "{err:?}");

        let config = kubeconfig(dir.path(), &stub_api_server("Forbidden", 403));
        let k = Kubectl::new(Some("ctx".into())).with_kubeconfig(&config);
        let err = k.get_json_if_exists(&args).unwrap_err();
        let err = err.downcast_ref::<KubectlError>().expect("a KubectlError");
        assert!(matches!(err, KubectlError::Forbidden { .. }), "{err:?}");
        assert!(err.to_string().contains("RBAC"), "{err}");
    }

    #[test]
    fn success_returns_stdout() {
        let version = Kubectl::default()
            .run(&["version", "--client", "-o", "json"])
            .unwrap();
        let version: serde_json::Value = serde_json::from_slice(&version).unwrap();
        assert!(
            version["clientVersion"]["gitVersion"].is_string(),
            "{version}"
        );
    }
}
