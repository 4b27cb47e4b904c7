//! The only place ocitool talks to a live cluster, through `kubectl`.
//!
//! Everything here is read-only (`get`, `logs`) except [`Kubectl::annotate`], which exists for one
//! purpose: touching the source Secret so Reflector reconciles and the lag can be measured. Output is
//! handed back to the caller as data and never printed here; Secret documents do contain base64 data,
//! so callers reduce them to hashes (see [`ocitool_core::reflector::verify`]) before showing anything.
//! Errors carry kubectl's own stderr, which names the resource but not Secret values.

use anyhow::{Context, Result, bail};
use std::process::{Command, Output};

/// A kubectl invocation target: the kubeconfig context to use, or the current one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Kubectl {
    pub context: Option<String>,
}

impl Kubectl {
    /// Use `context` (`--context`), or kubectl's current context when `None`.
    pub fn new(context: Option<String>) -> Self {
        Self { context }
    }

    /// `kubectl [--context C] get <args> -o json`, parsed.
    pub fn get_json(&self, args: &[&str]) -> Result<serde_json::Value> {
        let mut full = vec!["get"];
        full.extend_from_slice(args);
        full.extend_from_slice(&["-o", "json"]);
        let stdout = self.run(&full)?;
        serde_json::from_slice(&stdout)
            .with_context(|| format!("`{}` did not print JSON", self.describe(&full)))
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

    /// The argument list for `args`, with `--context` first when set.
    pub fn full_args<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        let mut full = Vec::with_capacity(args.len() + 2);
        if let Some(ctx) = &self.context {
            full.extend_from_slice(&["--context", ctx.as_str()]);
        }
        full.extend_from_slice(args);
        full
    }

    fn run(&self, args: &[&str]) -> Result<Vec<u8>> {
        let mut cmd: Command = crate::tools::command(crate::tools::KUBECTL)?;
        cmd.args(self.full_args(args));
        let output = cmd
            .output()
            .with_context(|| format!("could not start `{}`", self.describe(args)))?;
        check(output, &self.describe(args), self.context.as_deref())
    }

    fn describe(&self, args: &[&str]) -> String {
        format!("kubectl {}", self.full_args(args).join(" "))
    }
}

/// Turn a failed run into an error that quotes kubectl and says what to check.
fn check(output: Output, what: &str, context: Option<&str>) -> Result<Vec<u8>> {
    if output.status.success() {
        return Ok(output.stdout);
    }
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
    bail!(
        "`{what}` failed ({}): {stderr}\n{}",
        output.status,
        advice(&stderr, context)
    )
}

/// What to check for a kubectl failure, chosen from its stderr.
fn advice(stderr: &str, context: Option<&str>) -> String {
    let ctx = context.map_or("the current context".to_string(), |c| {
        format!("context `{c}`")
    });
    let lower = stderr.to_ascii_lowercase();
    if lower.contains("forbidden") {
        format!(
            "check RBAC: the user of {ctx} needs get/list (and patch, for annotate) on these resources"
        )
    } else if lower.contains("context") && lower.contains("not") {
        format!("check that {ctx} exists in your kubeconfig (`kubectl config get-contexts`)")
    } else if lower.contains("notfound") || lower.contains("not found") {
        "check the namespace and name; the resource does not exist".to_string()
    } else {
        format!(
            "check that {ctx} points at the intended cluster and is reachable (`kubectl --context <c> cluster-info`)"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;
    use std::process::ExitStatus;

    fn failed(stderr: &str) -> Output {
        Output {
            status: ExitStatus::from_raw(1 << 8),
            stdout: Vec::new(),
            stderr: stderr.as_bytes().to_vec(),
        }
    }

    #[test]
    fn context_goes_first() {
        let k = Kubectl::new(Some("prod".into()));
        assert_eq!(
            k.full_args(&["get", "ns"]),
            ["--context", "prod", "get", "ns"]
        );
        assert_eq!(Kubectl::default().full_args(&["get"]), ["get"]);
    }

    #[test]
    fn errors_quote_trimmed_stderr_and_say_what_to_check() {
        let err = check(
            failed("  Error from server (Forbidden): secrets is forbidden\n"),
            "kubectl get secrets",
            Some("prod"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("Error from server (Forbidden): secrets is forbidden\n"),
            "{err}"
        );
        assert!(err.contains("RBAC") && err.contains("`prod`"), "{err}");

        let err = check(
            failed("error: context \"x\" does not exist"),
            "k",
            Some("x"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("kubeconfig"), "{err}");

        let err = check(failed("Unable to connect to the server"), "k", None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("current context") && err.contains("reachable"),
            "{err}"
        );
    }

    #[test]
    fn success_returns_stdout() {
        let ok = Output {
            status: ExitStatus::from_raw(0),
            stdout: b"{}".to_vec(),
            stderr: Vec::new(),
        };
        assert_eq!(check(ok, "k", None).unwrap(), b"{}");
    }
}
