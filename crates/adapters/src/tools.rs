//! Locating the external programs ocitool drives: `sops`, `kubectl`, `kubeconform`, `age-keygen`.
//!
//! This module owns *where* a tool comes from and what to tell the user when it is missing. It never
//! runs a tool with arguments of its own choosing; callers build the command line.
//! Search order: `$OCITOOL_TOOLS_DIR` (set by `.cargo/config.toml` for `cargo run`/`cargo test`, so
//! the pinned tools that `.ci/install-tools` installs into `.tools/bin` win), then `PATH`.

use crate::process::ProcessError;
use std::path::{Path, PathBuf};
use std::process::Command;

/// An external program with the advice to give when it is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tool {
    pub name: &'static str,
    pub install_hint: &'static str,
}

pub const SOPS: Tool = Tool {
    name: "sops",
    install_hint: "install sops 3.9 or newer: `go install github.com/getsops/sops/v3/cmd/sops@v3.13.2` \
                   (or run `make setup` in the ocitool checkout)",
};
pub const KUBECTL: Tool = Tool {
    name: "kubectl",
    install_hint: "install kubectl (https://kubernetes.io/docs/tasks/tools/) and make sure it is on PATH",
};
pub const KUBECONFORM: Tool = Tool {
    name: "kubeconform",
    install_hint: "install kubeconform: `go install github.com/yannh/kubeconform/cmd/kubeconform@v0.7.0` \
                   (or run `make setup`)",
};
pub const AGE_KEYGEN: Tool = Tool {
    name: "age-keygen",
    install_hint: "install age: `go install filippo.io/age/cmd/...@v1.2.1` (or run `make setup`)",
};

/// Full path of `tool`, or an error that says how to install it.
pub fn find(tool: Tool) -> Result<PathBuf, ProcessError> {
    let tools_dir = std::env::var_os("OCITOOL_TOOLS_DIR").map(PathBuf::from);
    let path_dirs = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    for dir in tools_dir.iter().chain(path_dirs.iter()) {
        let candidate = dir.join(tool.name);
        if is_executable(&candidate) {
            return Ok(candidate);
        }
    }
    Err(ProcessError::NotFound { tool })
}

/// A bare `Command` for `tool`, resolved through [`find`], for the dev-only fleet generator that
/// checks ocitool independently; the product runs tools through [`crate::process::Invocation`].
pub fn command(tool: Tool) -> Result<Command, ProcessError> {
    Ok(Command::new(find(tool)?))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_tool_error_says_how_to_install() {
        let ghost = Tool {
            name: "ocitool-no-such-tool",
            install_hint: "install it with magic",
        };
        let err = find(ghost).unwrap_err().to_string();
        assert!(
            err.contains("`ocitool-no-such-tool` was not found"),
            "{err}"
        );
        assert!(err.contains("install it with magic"), "{err}");
    }

    #[test]
    fn finds_a_tool_on_path() {
        let sh = Tool {
            name: "sh",
            install_hint: "",
        };
        assert!(find(sh).unwrap().ends_with("sh"));
    }
}
