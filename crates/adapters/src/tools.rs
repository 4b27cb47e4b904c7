//! Locating the external programs ocitool drives: `sops`, `kubectl`, `kubeconform`, `age-keygen`.
//!
//! This module owns *where* a tool comes from and what to tell the user when it is missing. It never
//! runs a tool with arguments of its own choosing; callers build the command line.
//! Search order: `$OCITOOL_TOOLS_DIR` (set by `.cargo/config.toml` for `cargo run`/`cargo test`, so
//! the pinned tools that `.ci/install-tools` installs into `.tools/bin` win), then `PATH`.
//! It also knows which version of each tool ocitool is tested with (`tools/versions.env`, the
//! table `.ci/install-tools` installs from) and how to ask a tool its version, for `ocitool version`;
//! it asks for structured output where the tool offers it.

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

pub const AGE: Tool = Tool {
    name: "age",
    install_hint: "install age: `go install filippo.io/age/cmd/...@v1.2.1` (or run `make setup`)",
};
pub const FLUX: Tool = Tool {
    name: "flux",
    install_hint: "install the flux CLI (https://fluxcd.io/flux/installation/) or run `make setup`",
};

/// The pinned versions, `KEY=VALUE` lines shared with `.ci/install-tools`.
const VERSIONS_ENV: &str = include_str!("../../../tools/versions.env");

/// The version `tools/versions.env` pins under `key` (e.g. `SOPS_VERSION`).
pub fn pinned(key: &str) -> Option<&'static str> {
    VERSIONS_ENV
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .find_map(|l| l.split_once('=').filter(|(k, _)| k.trim() == key))
        .map(|(_, v)| v.trim())
}

/// A tool `ocitool version` reports on.
#[derive(Debug, Clone, Copy)]
pub struct Versioned {
    pub tool: Tool,
    /// Its key in `tools/versions.env`; None when any version will do (kubectl: the machine's).
    pub pin: Option<&'static str>,
    /// The arguments that make it print its version.
    args: &'static [&'static str],
    read: fn(&str) -> Option<String>,
}

/// The tools `ocitool version` lists, in order.
pub const VERSIONED: &[Versioned] = &[
    Versioned {
        tool: SOPS,
        pin: Some("SOPS_VERSION"),
        // `sops 3.13.2` (plus ` (latest)` when it checked; --disable-version-check stops that).
        args: &["--version", "--disable-version-check"],
        read: |out| {
            out.split_whitespace()
                .nth(1)
                .map(|v| format!("v{}", v.trim_start_matches('v')))
        },
    },
    Versioned {
        tool: AGE,
        pin: Some("AGE_VERSION"),
        args: &["--version"],
        read: first_word,
    },
    Versioned {
        tool: KUBECTL,
        pin: None,
        args: &["version", "--client", "-o", "json"],
        read: |out| json_string(out, "/clientVersion/gitVersion"),
    },
    Versioned {
        tool: KUBECONFORM,
        pin: Some("KUBECONFORM_VERSION"),
        // Prints `development` when built by `go install`: the Go build info then says.
        args: &["-v"],
        read: first_word,
    },
    Versioned {
        tool: FLUX,
        pin: Some("FLUX_VERSION"),
        args: &["version", "--client", "-o", "json"],
        read: |out| json_string(out, "/flux"),
    },
];

fn first_word(out: &str) -> Option<String> {
    out.split_whitespace().next().map(str::to_string)
}

fn json_string(out: &str, pointer: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(out).ok()?;
    value.pointer(pointer)?.as_str().map(str::to_string)
}

/// What a tool found on this machine says it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    Version(String),
    Missing,
    /// It ran but said nothing readable as a version.
    Unknown,
}

impl Versioned {
    /// Run the tool and read its version.
    pub fn found(&self) -> Found {
        let Ok(bin) = find(self.tool) else {
            return Found::Missing;
        };
        let output = Command::new(&bin).args(self.args).output();
        let said = output
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| (self.read)(&String::from_utf8_lossy(&o.stdout)))
            .filter(|v| looks_like_version(v));
        match said.or_else(|| go_module_version(&bin)) {
            Some(version) => Found::Version(version),
            None => Found::Unknown,
        }
    }
}

fn looks_like_version(v: &str) -> bool {
    v.strip_prefix('v')
        .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
}

/// The main module's version from a Go binary's embedded build info (what `go version -m` shows:
/// a `mod\t<path>\t<version>\t<sum>` line, runtime/debug.BuildInfo's text form), for tools that
/// report `development` when built by `go install module@version`.
fn go_module_version(bin: &Path) -> Option<String> {
    let bytes = std::fs::read(bin).ok()?;
    let at = bytes.windows(5).position(|w| w == b"\nmod\t")?;
    let line = bytes[at + 5..].split(|b| *b == b'\n').next()?;
    let version = std::str::from_utf8(line).ok()?.split('\t').nth(1)?;
    looks_like_version(version).then(|| version.to_string())
}

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
    fn every_pin_is_in_versions_env_and_the_install_hints_agree() {
        for v in VERSIONED {
            if let Some(key) = v.pin {
                let pinned =
                    pinned(key).unwrap_or_else(|| panic!("{key} is not in tools/versions.env"));
                assert!(looks_like_version(pinned), "{key}={pinned}");
            }
        }
        for (tool, key) in [
            (SOPS, "SOPS_VERSION"),
            (AGE, "AGE_VERSION"),
            (AGE_KEYGEN, "AGE_VERSION"),
            (KUBECONFORM, "KUBECONFORM_VERSION"),
        ] {
            let pinned = pinned(key).unwrap();
            assert!(
                tool.install_hint.contains(&format!("@{pinned}")),
                "{} hint lacks {pinned}",
                tool.name
            );
        }
    }

    #[test]
    fn versions_are_read_from_each_tools_own_report() {
        let read = |name: &str, out: &str| {
            let v = VERSIONED.iter().find(|v| v.tool.name == name).unwrap();
            (v.read)(out)
        };
        assert_eq!(
            read("sops", "sops 3.13.2 (latest)\n").as_deref(),
            Some("v3.13.2")
        );
        assert_eq!(
            read("kubectl", r#"{"clientVersion":{"gitVersion":"v1.34.1"}}"#).as_deref(),
            Some("v1.34.1")
        );
        assert_eq!(
            read("flux", r#"{"flux":"v2.9.5"}"#).as_deref(),
            Some("v2.9.5")
        );
        assert!(!looks_like_version("development"));
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
